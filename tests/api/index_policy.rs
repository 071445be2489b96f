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

/// The index policy's check as `migrate` and `backfill` make it.
async fn apply(env: &TestEnv) -> Action {
    index::apply(&env.settings.database, &env.settings.index)
        .await
        .unwrap()
}

async fn indexdef(env: &TestEnv) -> String {
    sqlx::query_scalar(
        "select indexdef from pg_indexes where indexname = 'document_chunks_embedding_idx'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// SIGTERM to a `ragworker run`, which must stop cleanly.
async fn stop(mut run: tokio::process::Child) {
    let pid = run.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(run.wait().await.unwrap().success());
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
    assert_eq!(apply(&env).await, Action::Nothing);
    assert_eq!(index_state(&env).await, State::Absent, "not due yet");
    let exact = nearest(&env, user).await;
    assert_eq!(exact.len(), 5);

    // More chunks than the threshold: `backfill` builds it when it finishes.
    env.enqueue_generated(Uuid::new_v4(), 40).await;
    let (code, _) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(index_state(&env).await, State::Valid);
    let indexdef = indexdef(&env).await;
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
    assert!(matches!(apply(&env).await, Action::Built { .. }));
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
    apply(&env).await;
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
    let action = apply(&env).await;
    assert!(
        matches!(action, Action::Built { rows, .. } if rows == chunks as u64),
        "{action:?}"
    );
    assert_eq!(index_state(&env).await, State::Valid);
}

#[tokio::test]
async fn the_service_builds_the_index_once_it_is_due() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 20\ncheck_secs = 1").await;
    let run = env.command(&["run"], "run.log").spawn().unwrap();
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
    stop(run).await;
    assert!(
        env.log("run.log").contains("HNSW index built"),
        "{}",
        env.log("run.log")
    );
}

/// The distances of a user's `k` nearest chunks to their first chunk, every distance
/// computed (distances, not ids: the fake provider's vectors tie often).
async fn brute_force(env: &TestEnv, user: Uuid, k: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "select round(((embedding <=> (select embedding from document_chunks where user_id = $1
                                        order by chunk_index, id limit 1)) * 1e6)::numeric)::bigint
         from document_chunks where user_id = $1 order by 1 limit $2",
    )
    .bind(user)
    .bind(k)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// The same search as [`nearest`] (as distances), on one connection where the tenant
/// counts as large (above ragworker.exact_search_limit), so it goes through the HNSW
/// index branch.
async fn nearest_through_the_index(env: &TestEnv, user: Uuid) -> Vec<i64> {
    let mut conn = env.pool.acquire().await.unwrap();
    sqlx::query("set ragworker.exact_search_limit = 2")
        .execute(&mut *conn)
        .await
        .unwrap();
    let distances = sqlx::query_scalar(
        "select round(((1 - similarity) * 1e6)::numeric)::bigint from search_similar_chunks(
           (select embedding from document_chunks where user_id = $1 order by chunk_index, id limit 1),
           $1, 0.0, 5)",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    sqlx::query("reset ragworker.exact_search_limit")
        .execute(&mut *conn)
        .await
        .unwrap();
    distances
}

async fn waiting(env: &TestEnv) -> i64 {
    sqlx::query_scalar("select count(*) from document_chunks where index_pending")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn chunks_written_while_the_index_exists_wait_outside_it_and_search_finds_them_before_and_after_the_merge(
) {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0").await;
    apply(&env).await;
    assert_eq!(index_state(&env).await, State::Valid);
    let indexdef = indexdef(&env).await;
    assert!(
        indexdef.ends_with("WHERE (NOT index_pending)"),
        "{indexdef}"
    );

    // A tenant whose chunks were indexed as written, then more of them written as waiting.
    let user = Uuid::new_v4();
    env.enqueue_generated(user, 4).await;
    env.drain().await;
    assert_eq!(waiting(&env).await, 0, "no count yet: indexed as written");
    let deferral = &env.worker.deferral;
    assert_eq!(
        deferral
            .refresh(&env.pool, env.settings.index.defer_max_rows)
            .await
            .unwrap(),
        0
    );
    assert!(deferral.allowed());
    env.enqueue(user, "guide.md").await;
    env.enqueue(user, "notes.txt").await;
    env.drain().await;
    let total: i64 = sqlx::query_scalar("select count(*) from document_chunks")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let waited = waiting(&env).await;
    assert!(waited > 0 && waited < total, "{waited} of {total}");

    // Search through the index branch returns exactly what a full scan does, the waiting
    // chunks included (the query vector is the tenant's first chunk's: among the indexed).
    let exact = brute_force(&env, user, 5).await;
    assert_eq!(nearest_through_the_index(&env, user).await, exact);
    // A waiting chunk's own vector finds it first through the index branch too.
    let (id, vector): (Uuid, String) = sqlx::query_as(
        "select id, embedding::text from document_chunks where index_pending order by id limit 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let mut conn = env.pool.acquire().await.unwrap();
    sqlx::query("set ragworker.exact_search_limit = 2")
        .execute(&mut *conn)
        .await
        .unwrap();
    let first: Uuid =
        sqlx::query_scalar("select id from search_similar_chunks($1::halfvec, $2, 0.0, 3) limit 1")
            .bind(&vector)
            .bind(user)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(first, id);
    drop(conn);

    // Merged, none waits and the index answers alone, the same.
    let (merged, _) = index::merge_all(&env.pool, 2).await.unwrap();
    assert_eq!(merged as i64, waited);
    assert_eq!(waiting(&env).await, 0);
    assert_eq!(nearest_through_the_index(&env, user).await, exact);
    let mut conn = env.pool.acquire().await.unwrap();
    sqlx::query("set enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let through_index: Option<Uuid> = sqlx::query_scalar(
        "select id from document_chunks where not index_pending
         order by embedding <=> $1::halfvec limit 1",
    )
    .bind(&vector)
    .fetch_optional(&mut *conn)
    .await
    .unwrap();
    assert_eq!(through_index, Some(id), "the merged chunk is in the graph");
}

#[tokio::test]
async fn the_deferral_bound_and_an_absent_index_write_chunks_as_indexed() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0").await;
    let deferral = &env.worker.deferral;
    // No index: nothing to defer.
    deferral.refresh(&env.pool, 20_000).await.unwrap();
    assert!(!deferral.allowed());
    apply(&env).await;
    deferral.refresh(&env.pool, 20_000).await.unwrap();
    assert!(deferral.allowed());
    // defer_max_rows = 0: never.
    deferral.refresh(&env.pool, 0).await.unwrap();
    assert!(!deferral.allowed());
    // At the bound, chunks are indexed as written again.
    deferral.refresh(&env.pool, 20_000).await.unwrap();
    env.enqueue_generated(Uuid::new_v4(), 3).await;
    env.drain().await;
    let waited = waiting(&env).await;
    assert!(waited >= 3, "{waited}");
    assert_eq!(
        deferral.refresh(&env.pool, waited as u64).await.unwrap(),
        waited as u64
    );
    assert!(!deferral.allowed());
    assert_eq!(deferral.waiting(), waited as u64);
    deferral
        .refresh(&env.pool, waited as u64 + 1)
        .await
        .unwrap();
    assert!(deferral.allowed());
}

#[tokio::test]
async fn the_service_merges_waiting_chunks_when_idle_and_a_backfill_merges_at_its_end() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0").await;
    apply(&env).await;
    env.enqueue_generated(Uuid::new_v4(), 6).await;
    let out = env
        .command(&["backfill"], "backfill.log")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let total: i64 = sqlx::query_scalar("select count(*) from document_chunks")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(
        stdout.contains(&format!(
            "merged {total} chunks that waited into the HNSW index"
        )),
        "{stdout}"
    );
    assert_eq!(waiting(&env).await, 0);

    let run = env.command(&["run"], "run.log").spawn().unwrap();
    env.enqueue_generated(Uuid::new_v4(), 6).await;
    crate::support::wait_until(
        std::time::Duration::from_secs(30),
        "the service to complete the files and merge their chunks",
        || async {
            let pending: i64 = sqlx::query_scalar(
                "select count(*) from files where processing_status <> 'completed'",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            pending == 0 && waiting(&env).await == 0
        },
    )
    .await;
    stop(run).await;
    let log = env.log("run.log");
    assert!(
        log.contains("merged waiting chunks into the HNSW index"),
        "{log}"
    );
}

#[tokio::test]
async fn an_index_that_covers_every_row_is_replaced_by_one_that_leaves_waiting_rows_out() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0").await;
    env.enqueue_generated(Uuid::new_v4(), 4).await;
    env.drain().await;
    // What an earlier version built.
    sqlx::query(
        "create index document_chunks_embedding_idx on document_chunks
         using hnsw (embedding halfvec_cosine_ops)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(index_state(&env).await, State::Whole);
    // `migrate` and `backfill` leave it (replacing takes as long as building); `run` does it.
    assert_eq!(apply(&env).await, Action::Nothing);
    assert_eq!(index_state(&env).await, State::Whole);
    let action = index::apply_in_service(&env.settings.database, &env.settings.index)
        .await
        .unwrap();
    assert!(
        matches!(action, Action::Built { rows, .. } if rows > 0),
        "{action:?}"
    );
    assert_eq!(index_state(&env).await, State::Valid);
    let names: Vec<String> = sqlx::query_scalar(
        "select indexname::text from pg_indexes
         where tablename = 'document_chunks' and indexdef like '%hnsw%' order by 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(names, ["document_chunks_embedding_idx"]);

    // A replacement a crash interrupted after the old index was dropped: the new one takes
    // the name instead of a third being built.
    sqlx::query(
        "alter index document_chunks_embedding_idx rename to document_chunks_embedding_new_idx",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(index_state(&env).await, State::Absent);
    assert_eq!(apply(&env).await, Action::Nothing);
    assert_eq!(index_state(&env).await, State::Valid);
}

#[tokio::test]
async fn an_interrupted_backfill_leaves_its_waiting_chunks_to_the_service() {
    let env = TestEnv::with_config("[index]\nhnsw_min_rows = 0\n[worker]\nconcurrency = 1").await;
    apply(&env).await;
    // One file at a time, 300 ms an embedding request: the backfill is still going when
    // the first files have completed.
    env.fake.set_latency(std::time::Duration::from_millis(300));
    env.enqueue_generated(Uuid::new_v4(), 30).await;
    let backfill = env
        .command(&["backfill"], "backfill.log")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_until(
        std::time::Duration::from_secs(30),
        "some chunks to be written as waiting",
        || async { waiting(&env).await > 0 },
    )
    .await;
    let pid = backfill.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = backfill.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout
            .contains("interrupted: chunks waiting for the HNSW index are left to `ragworker run`"),
        "{stdout}"
    );
    assert!(waiting(&env).await > 0, "not merged on the way out");
}
