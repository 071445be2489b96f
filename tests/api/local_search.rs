//! The zero-account setup end to end: the fs storage backend and the in-process model, no
//! S3 and no embeddings API. A question finds the passage that answers it.

use ragworker::embed::Usage;
use ragworker::search::Hit;
use ragworker::worker::Outcome;
use uuid::Uuid;

use crate::support::{model_dir, TestEnv};

/// The fs backend and the local model, with small chunks so that documents span many.
async fn local_env() -> TestEnv {
    TestEnv::with_config(&format!(
        r#"
[storage]
backend = "fs"
[embedding]
provider = "local"
local_model_dir = "{}"
model = "sentence-transformers/all-MiniLM-L6-v2"
dimensions = 384
max_input_tokens = 256
max_inputs_per_request = 64
max_tokens_per_request = 16384
[chunking]
max_tokens = 64
overlap_tokens = 8
"#,
        model_dir().display()
    ))
    .await
}

/// The user's three best chunks for a question, and what embedding it cost.
async fn ask(env: &TestEnv, user: Uuid, question: &str) -> (Vec<Hit>, Usage) {
    env.ask(user, question, 3).await
}

#[tokio::test]
async fn questions_find_their_passage_with_the_local_model_and_fs_storage() {
    let env = local_env().await;
    let user = Uuid::new_v4();
    let fixtures = [
        "handbook.pdf",
        "guide.md",
        "notes.txt",
        "page.html",
        "report.docx",
        "two-column.pdf",
    ];
    let mut ids = Vec::new();
    for name in fixtures {
        ids.push(env.enqueue(user, name).await);
    }
    // The objects went to the directory, not to S3.
    let stored = env
        .dir
        .path()
        .join("storage")
        .join(&env.bucket)
        .join(user.to_string());
    assert_eq!(std::fs::read_dir(&stored).unwrap().count(), fixtures.len());

    for (id, outcome) in env.drain().await {
        assert!(
            matches!(outcome, Outcome::Completed { .. }),
            "{id}: {outcome:?}"
        );
    }
    for id in &ids {
        // Local work is accounted like paid work, at no cost: the tokens are the ones the
        // model read, which are the chunks' own counts ([CLS] and [SEP] included).
        let (provider, tokens, cost): (String, i64, f64) = sqlx::query_as(
            "select provider, tokens_used, cost_usd::float8 from usage_logs
             where metadata ->> 'file_id' = $1::text",
        )
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        let chunk_tokens = env
            .count(
                "select coalesce(sum(token_count), 0) from document_chunks where file_id = $1",
                *id,
            )
            .await;
        assert_eq!(provider, "local");
        assert_eq!(cost, 0.0);
        assert!(tokens > 0);
        assert_eq!(tokens, chunk_tokens, "file {id}");
    }

    // (question, file, page, words of the answer, heading path where the answer has one)
    let cases = [
        (
            "When does the foghorn sound?",
            "handbook.pdf",
            Some(2),
            "visibility drops",
            None,
        ),
        (
            "Who delivers paraffin oil and how?",
            "handbook.pdf",
            Some(3),
            "arrive by boat",
            None,
        ),
        (
            "How can I stop my bee colony from swarming?",
            "guide.md",
            None,
            "Add a super",
            Some("Beekeeping Guide > Hive Inspection > Swarm Prevention"),
        ),
        (
            "How often should a sourdough starter be fed?",
            "notes.txt",
            None,
            "every twelve hours",
            None,
        ),
        (
            "What gear is needed for crevasse rescue?",
            "page.html",
            None,
            "prusik loop",
            None,
        ),
        (
            "How deep was the shipping channel dredged?",
            "report.docx",
            None,
            "twelve metres",
            None,
        ),
        (
            "How do wave farms generate electricity?",
            "two-column.pdf",
            Some(1),
            "hydraulic pumps",
            None,
        ),
    ];
    for (question, file, page, answer, heading) in cases {
        let (hits, usage) = ask(&env, user, question).await;
        let top = &hits[0];
        assert_eq!(top.file_name, file, "{question}: {hits:#?}");
        assert!(top.content.contains(answer), "{question}: {hits:#?}");
        if page.is_some() {
            assert_eq!(top.page_number, page, "{question}: {hits:#?}");
        }
        if let Some(heading) = heading {
            assert_eq!(
                top.heading.as_deref(),
                Some(heading),
                "{question}: {hits:#?}"
            );
        }
        assert!(top.similarity > 0.3, "{question}: {hits:#?}");
        assert!(usage.tokens > 0);
    }
}

/// A question heading after a long section: split by size alone (the first version), the
/// heading ended one chunk and its answer began the next, and the question found its own
/// heading. Now the heading starts the chunk of its answer, and the heading path is
/// embedded with every later part of the answer.
#[tokio::test]
async fn a_question_finds_its_answer_across_what_was_a_chunk_boundary() {
    let env = local_env().await;
    let user = Uuid::new_v4();
    let faq = format!(
        "# Harbour FAQ\n\n## What do the harbour dues pay for?\n\n{}\n\n\
         ## Can I moor overnight at the fuel pontoon?\n\n\
         No. The fuel pontoon must stay clear for refuelling boats at all hours; \
         visiting yachts moor on the visitors' pontoon by the lifeboat station instead. \
         {}\n",
        "The dues pay for dredging the channel, lighting the breakwater, the harbour \
         master's office, the fresh water taps and the rubbish collection on the quay. "
            .repeat(3),
        "Rafting up is allowed there, three boats deep at most, bow to stern. ".repeat(4),
    );
    let path = env.dir.path().join("harbour-faq.md");
    std::fs::write(&path, faq).unwrap();
    let id = env.enqueue_path(user, &path).await;
    for (_, outcome) in env.drain().await {
        assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    }
    // The heading starts its answer's chunk; no chunk ends with a heading.
    let chunks: Vec<(String, Option<String>, serde_json::Value)> = sqlx::query_as(
        "select content, heading, metadata from document_chunks where file_id = $1
         order by chunk_index",
    )
    .bind(id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    for (content, _, _) in &chunks {
        assert!(
            !content.lines().last().unwrap().starts_with('#'),
            "{chunks:#?}"
        );
    }
    let question = "Can I moor overnight at the fuel pontoon?";
    let later: Vec<_> = chunks
        .iter()
        .filter(|(c, h, _)| {
            h.as_deref() == Some("Harbour FAQ > Can I moor overnight at the fuel pontoon?")
                && !c.starts_with("##")
        })
        .collect();
    assert!(!later.is_empty(), "the answer spans chunks: {chunks:#?}");
    for (_, _, metadata) in later {
        assert_eq!(
            metadata["embed_heading"],
            "Harbour FAQ > Can I moor overnight at the fuel pontoon?"
        );
        assert_eq!(metadata["embed_template"], "{heading}\n\n{content}");
    }
    let (hits, _) = ask(&env, user, question).await;
    // The answer ranks first: a chunk of the question's section with the answer's words.
    assert_eq!(
        hits[0].heading.as_deref(),
        Some("Harbour FAQ > Can I moor overnight at the fuel pontoon?"),
        "{hits:#?}"
    );
    assert!(
        hits[0].content.contains("pontoon by the lifeboat station"),
        "{hits:#?}"
    );
}
