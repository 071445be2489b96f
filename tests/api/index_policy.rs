//! The index policy: no HNSW index until the table holds `index.hnsw_min_rows` chunks,
//! then built concurrently; `backfill --bulk` drops and rebuilds it; search is right in
//! every state.

use ragworker::index::{self, Action, State};
use sqlx::Connection;
use uuid::Uuid;

use crate::support::TestEnv;

async fn index_state(env: &TestEnv) -> State {
    let mut conn = sqlx::PgConnection::connect(&env.database_url)
        .await
        .unwrap();
    index::state(&mut conn).await.unwrap()
}

/// The user's five nearest chunks to one of their own chunks' vectors, as an app asks.
async fn nearest(env: &TestEnv, user: Uuid) -> Vec<Uuid> {
    sqlx::query_scalar(
        "select id from search_similar_chunks(
           (select embedding from document_chunks where user_id = $1 order by chunk_index, id limit 1),
           $1, 0.0, 5)",
    )
    .bind(user)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_index_waits_for_enough_chunks_and_search_is_the_same_before_and_after() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 40").await;
    let user = Uuid::new_v4();
    env.enqueue(user, "guide.md").await;
    env.drain().await;
    let chunks: i64 = sqlx::query_scalar("select count(*) from document_chunks")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(chunks < 40, "{chunks}");
    assert_eq!(
        index::apply(&env.settings.database, &env.settings.index)
            .await
            .unwrap(),
        Action::Nothing
    );
    assert_eq!(index_state(&env).await, State::Absent, "not due yet");
    let exact = nearest(&env, user).await;
    assert_eq!(exact.len(), 5);

    // More chunks than the threshold: `backfill` builds it when it finishes.
    env.enqueue_generated(Uuid::new_v4(), 40).await;
    let (code, _) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(index_state(&env).await, State::Valid);
    let indexdef: String = sqlx::query_scalar(
        "select indexdef from pg_indexes where indexname = 'document_chunks_embedding_idx'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        indexdef.contains("hnsw (embedding halfvec_cosine_ops)"),
        "{indexdef}"
    );
    assert_eq!(
        nearest(&env, user).await,
        exact,
        "the same answer through the index"
    );
}

#[tokio::test]
async fn a_bulk_backfill_loads_without_the_index_and_builds_it_again() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0").await;
    assert!(matches!(
        index::apply(&env.settings.database, &env.settings.index)
            .await
            .unwrap(),
        Action::Built { .. }
    ));
    assert_eq!(index_state(&env).await, State::Valid);
    env.enqueue_generated(Uuid::new_v4(), 12).await;
    let out = env
        .command(&["backfill", "--bulk"], "bulk.log")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bulk load: dropped the HNSW index"),
        "{stdout}"
    );
    let chunks: i64 = sqlx::query_scalar("select count(*) from document_chunks")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(
        stdout.contains(&format!("built the HNSW index over {chunks} chunks")),
        "{stdout}"
    );
    assert_eq!(index_state(&env).await, State::Valid);
}

#[tokio::test]
async fn an_index_left_invalid_by_an_interrupted_build_is_built_again() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0").await;
    env.enqueue_generated(Uuid::new_v4(), 5).await;
    env.drain().await;
    index::apply(&env.settings.database, &env.settings.index)
        .await
        .unwrap();
    // What a CREATE INDEX CONCURRENTLY killed half-way leaves behind.
    let mut admin = sqlx::PgConnection::connect(&env.superuser_url)
        .await
        .unwrap();
    sqlx::query(
        "update pg_index set indisvalid = false
         where indexrelid = 'public.document_chunks_embedding_idx'::regclass",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(index_state(&env).await, State::Invalid);
    let chunks: i64 = sqlx::query_scalar("select count(*) from document_chunks")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let action = index::apply(&env.settings.database, &env.settings.index)
        .await
        .unwrap();
    assert!(
        matches!(action, Action::Built { rows, .. } if rows == chunks as u64),
        "{action:?}"
    );
    assert_eq!(index_state(&env).await, State::Valid);
}

#[tokio::test]
async fn the_service_builds_the_index_once_it_is_due() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 20\ncheck_secs = 1").await;
    let mut run = env.command(&["run"], "run.log").spawn().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        index_state(&env).await,
        State::Absent,
        "not due on an empty table"
    );
    env.enqueue_generated(Uuid::new_v4(), 15).await;
    crate::support::wait_until(
        std::time::Duration::from_secs(30),
        "the service to build the index",
        || async { index_state(&env).await == State::Valid },
    )
    .await;
    let pid = run.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(run.wait().await.unwrap().success());
    assert!(
        env.log("run.log").contains("HNSW index built"),
        "{}",
        env.log("run.log")
    );
}
