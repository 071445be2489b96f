//! Changing the embedding model: `backfill --reembed` rebuilds the column at the new
//! dimension and re-embeds, with no hand-written SQL; backfill reports progress.

use uuid::Uuid;

use crate::support::{TestEnv, DIMENSIONS};

/// Rewrites the env's config file with another model and dimension.
fn switch_model(env: &TestEnv, model: &str, dimensions: u32) {
    let mut table: toml::Table = env.config_toml.parse().unwrap();
    let embedding = table["embedding"].as_table_mut().unwrap();
    embedding.insert("model".into(), model.into());
    embedding.insert("dimensions".into(), i64::from(dimensions).into());
    std::fs::write(&env.config_path, toml::to_string(&table).unwrap()).unwrap();
}

/// Exit code and stdout + stderr (`output()` captures both).
async fn run(env: &TestEnv, args: &[&str], log: &str) -> (Option<i32>, String) {
    let out = env.command(args, log).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code(),
        stdout + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn reembed_moves_every_file_to_a_new_model_and_dimension() {
    // The index kept at all times, as before the index policy: the dimension change must
    // leave one of the new dimension behind.
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0").await;
    let user = Uuid::new_v4();
    let files = [
        env.enqueue(user, "handbook.pdf").await,
        env.enqueue(user, "guide.md").await,
    ];
    env.drain().await;
    let old_chunks = env
        .count(
            "select count(*) from document_chunks where user_id = $1",
            user,
        )
        .await;
    assert!(old_chunks > 0);

    switch_model(&env, "text-embedding-3-large", 128);
    // migrate refuses to drop embeddings on its own and says what to do.
    let (code, out) = run(&env, &["migrate"], "migrate.log").await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "error: document_chunks holds {old_chunks} embeddings of dimension {DIMENSIONS}, the configuration asks for 128; re-embed with `ragworker backfill --reembed`"
        )),
        "{out}"
    );
    // A worker refuses to claim into a column of the wrong dimension.
    let (code, out) = run(&env, &["backfill"], "refused.log").await;
    assert_eq!(code, Some(1));
    assert!(
        out.contains(&format!(
            "document_chunks.embedding has dimension {DIMENSIONS}, but embedding.dimensions is 128"
        )),
        "{out}"
    );

    let (code, stdout) = run(&env, &["backfill", "--reembed"], "reembed.log").await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "embedding dimension {DIMENSIONS} -> 128: dropped {old_chunks} chunks"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 completed files queued to re-embed"),
        "{stdout}"
    );
    // Not on a terminal: progress comes as log lines.
    assert!(stdout.contains("progress: 1/2 files"), "{stdout}");

    let (models, dims): (Vec<String>, Vec<i32>) = sqlx::query_as::<_, (String, i32)>(
        "select distinct embedding_model, vector_dims(embedding::vector) from document_chunks",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
    .into_iter()
    .unzip();
    assert_eq!(models, vec!["text-embedding-3-large".to_string()]);
    assert_eq!(dims, vec![128]);
    for id in files {
        let row = env.file(id).await;
        assert_eq!(row.status, "completed");
        assert_eq!(i64::from(row.chunk_count), env.chunk_count(id).await);
        // One usage row per model: the re-embedding is billed to the large model.
        let large = env
            .count(
                "select count(*) from usage_logs
                 where metadata ->> 'file_id' = $1::text and model = 'text-embedding-3-large'",
                id,
            )
            .await;
        assert_eq!(large, 1);
    }
    // The index was built again at the new dimension (the backfill applied the policy)
    // and search works through it.
    let index: String = sqlx::query_scalar(
        "select indexdef from pg_indexes where indexname = 'document_chunks_embedding_idx'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(index.contains("hnsw"), "{index}");
    let (code, stdout) = run(
        &env,
        &["search", "--user", &user.to_string(), "vacation days"],
        "search.log",
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with("1. "), "{stdout}");

    // Nothing is stale any more; `all` re-embeds in place at the same dimension.
    let (_, stdout) = run(&env, &["backfill", "--reembed"], "again.log").await;
    assert!(stdout.contains("0 completed files queued"), "{stdout}");
    let (code, stdout) = run(&env, &["backfill", "--reembed", "all"], "all.log").await;
    assert_eq!(code, Some(0));
    assert!(!stdout.contains("dimension"), "{stdout}");
    assert!(stdout.contains("2 completed files queued"), "{stdout}");
}
