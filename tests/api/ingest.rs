use ragworker::worker::Outcome;
use uuid::Uuid;

use crate::support::{TestEnv, DIMENSIONS};

#[tokio::test]
async fn fixtures_become_chunks_with_pages_headings_and_exact_usage() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let pdf = env.enqueue(user, "handbook.pdf").await;
    let md = env.enqueue(user, "guide.md").await;
    let txt = env.enqueue(user, "notes.txt").await;

    let outcomes = env.drain().await;
    assert_eq!(outcomes.len(), 3);
    for (id, outcome) in &outcomes {
        assert!(
            matches!(outcome, Outcome::Completed { .. }),
            "{id}: {outcome:?}"
        );
    }

    for id in [pdf, md, txt] {
        let row = env.file(id).await;
        assert_eq!(row.status, "completed");
        assert_eq!(row.attempts, 1);
        assert_eq!(row.last_error, None);
        assert!(row.processed);
        assert!(row.chunk_count > 0);
        assert_eq!(i64::from(row.chunk_count), env.chunk_count(id).await);
        // chunk_index runs 0..n-1 with no gap or duplicate.
        let indexes: Vec<i32> = sqlx::query_scalar(
            "select chunk_index from document_chunks where file_id = $1 order by chunk_index",
        )
        .bind(id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
        assert_eq!(indexes, (0..row.chunk_count).collect::<Vec<_>>());
        // Offsets in metadata point at the chunk inside extracted_text.
        let mismatched = env
            .count(
                "select count(*) from document_chunks c join files f on f.id = c.file_id
                 where c.file_id = $1 and substr(f.extracted_text,
                       (c.metadata->>'start_char')::int + 1,
                       (c.metadata->>'end_char')::int - (c.metadata->>'start_char')::int) <> c.content",
                id,
            )
            .await;
        assert_eq!(mismatched, 0);
    }

    // PDF: every chunk carries the page it came from.
    let page_of = |needle: &'static str| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<i32>>(
                "select page_number from document_chunks where file_id = $1 and content like '%' || $2 || '%' limit 1",
            )
            .bind(pdf)
            .bind(needle)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(page_of("lamp must be lit").await, Some(1));
    assert_eq!(page_of("foghorn blasts for three seconds").await, Some(2));
    assert_eq!(page_of("Paraffin oil deliveries").await, Some(3));
    let pages: Vec<i32> = sqlx::query_scalar(
        "select distinct page_number from document_chunks where file_id = $1 order by 1",
    )
    .bind(pdf)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(pages, vec![1, 2, 3]);

    // Markdown: heading paths, and the front matter is not embedded.
    let heading: Option<String> = sqlx::query_scalar(
        "select heading from document_chunks where file_id = $1 and content like '%Queen cells%'",
    )
    .bind(md)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        heading.as_deref(),
        Some("Beekeeping Guide > Hive Inspection > Swarm Prevention")
    );
    assert_eq!(
        env.count(
            "select count(*) from document_chunks where file_id = $1 and content like '%author: fixture%'",
            md
        )
        .await,
        0
    );
    let txt_pages = env
        .count(
            "select count(*) from document_chunks where file_id = $1 and page_number is not null",
            txt,
        )
        .await;
    assert_eq!(txt_pages, 0);

    // Every embedding has the configured dimension and names its model.
    let dims: Vec<i32> =
        sqlx::query_scalar("select distinct vector_dims(embedding) from document_chunks")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(dims, vec![DIMENSIONS as i32]);
    let models: Vec<String> =
        sqlx::query_scalar("select distinct embedding_model from document_chunks")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(models, vec!["text-embedding-3-small".to_string()]);

    // Every stored vector is the provider's, rounded to f16 and nothing else: the multiset
    // of stored vectors equals the fake's vectors for the inputs it received.
    let bits = |v: &[f32]| -> Vec<u16> {
        v.iter()
            .map(|x| half::f16::from_f32(*x).to_bits())
            .collect()
    };
    let mut stored: Vec<Vec<u16>> =
        sqlx::query_scalar::<_, Vec<f32>>("select embedding::real[] from document_chunks")
            .fetch_all(&env.pool)
            .await
            .unwrap()
            .iter()
            .map(|v| bits(v))
            .collect();
    let mut sent: Vec<Vec<u16>> = env
        .fake
        .received()
        .iter()
        .map(|input| bits(&crate::support::fake_openai::embed_text(input, DIMENSIONS)))
        .collect();
    stored.sort();
    sent.sort();
    assert_eq!(stored.len(), sent.len());
    assert!(stored == sent, "stored vectors differ from the provider's");

    // Usage: one row per file, tokens exactly what the fake billed, cost = tokens x price.
    let rows: Vec<(Uuid, i64, bool, String, serde_json::Value)> = sqlx::query_as(
        "select user_id, tokens_used, cost_usd = tokens_used * 0.02 / 1000000, action, metadata
         from usage_logs",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    let billed: i64 = rows.iter().map(|r| r.1).sum();
    assert!(billed > 0);
    assert_eq!(billed as u64, env.fake.billed_tokens());
    for (owner, tokens, cost_exact, action, metadata) in &rows {
        assert_eq!(*owner, user);
        assert!(cost_exact, "cost_usd must be tokens x 0.02 / 1e6");
        assert_eq!(action, "embedding");
        assert_eq!(metadata["outcome"], "completed");
        assert_eq!(metadata["retries"], 0);
        let file: Uuid = metadata["file_id"].as_str().unwrap().parse().unwrap();
        // The provider's token count equals what chunking counted: nothing billed twice.
        let chunk_tokens = env
            .count(
                "select coalesce(sum(token_count), 0) from document_chunks where file_id = $1",
                file,
            )
            .await;
        assert_eq!(chunk_tokens, *tokens);
    }
    // Batching: all of a file's chunks went in one request each (well under 2048 inputs).
    assert_eq!(env.fake.requests(), 3);
}

#[tokio::test]
async fn search_returns_the_passage_that_answers_the_question() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    for f in ["handbook.pdf", "guide.md", "notes.txt"] {
        env.enqueue(user, f).await;
    }
    env.drain().await;
    let cases = [
        (
            "How long does the foghorn blast in dense fog?",
            "handbook.pdf",
            Some(2),
            "foghorn",
        ),
        (
            "When do paraffin oil deliveries arrive by boat?",
            "handbook.pdf",
            Some(3),
            "Paraffin",
        ),
        (
            "What do queen cells along the frames mean?",
            "guide.md",
            None,
            "Queen cells",
        ),
        (
            "What weights of rye flour and water feed the starter?",
            "notes.txt",
            None,
            "twelve hours",
        ),
    ];
    for (query, file, page, needle) in cases {
        let (hits, usage) = env.ask(user, query, 3).await;
        let top = &hits[0];
        assert_eq!(top.file_name, file, "{query}: {hits:#?}");
        assert_eq!(top.page_number, page, "{query}");
        assert!(top.content.contains(needle), "{query}: {}", top.content);
        assert!(top.similarity > hits.last().unwrap().similarity || hits.len() == 1);
        assert!(usage.tokens > 0);
    }
    // Another user's search sees none of these chunks.
    let (hits, _) = env.ask(Uuid::new_v4(), "foghorn", 3).await;
    assert!(hits.is_empty());
}

#[tokio::test]
async fn reprocessing_a_file_replaces_its_chunks_instead_of_duplicating_them() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let id = env.enqueue(user, "handbook.pdf").await;
    env.drain().await;
    let first = env.chunk_count(id).await;
    let requests = env.fake.requests();
    let usage_rows = "select count(*) from usage_logs where metadata->>'file_id' = $1::text";
    // Queued again with nothing changed: completed again as it is, for nothing.
    sqlx::query("update files set processing_status = 'pending' where id = $1")
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
    env.drain().await;
    assert_eq!(env.file(id).await.status, "completed");
    assert_eq!(env.fake.requests(), requests, "nothing was sent");
    assert_eq!(env.count(usage_rows, id).await, 1);
    // With what it was made from forgotten, it is processed in full again: its chunks are
    // replaced, not duplicated.
    sqlx::query("update document_chunks set content_hash = null where file_id = $1")
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query(
        "update files set content_sha256 = null, storage_version = null,
                          processing_status = 'pending' where id = $1",
    )
    .bind(id)
    .execute(&env.pool)
    .await
    .unwrap();
    env.drain().await;
    assert!(env.fake.requests() > requests);
    assert_eq!(env.chunk_count(id).await, first);
    let row = env.file(id).await;
    assert_eq!(row.status, "completed");
    assert_eq!(i64::from(row.chunk_count), first);
    // Both processings that were paid for are recorded.
    assert_eq!(env.count(usage_rows, id).await, 2);
}
