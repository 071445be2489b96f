//! Queue semantics: claims, fencing, recovery of expired leases, NOTIFY, start-up checks.

use ragworker::queue::QueueError;
use ragworker::worker::Outcome;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::TestEnv;

async fn expire_lease(env: &TestEnv, id: Uuid) {
    sqlx::query("update files set locked_until = now() - interval '1 second' where id = $1")
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_claims_never_hand_out_the_same_file() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(env.enqueue(user, "notes.txt").await);
    }
    let a = env.another_worker("claimer-a").await;
    let b = env.another_worker("claimer-b").await;
    let (ca, cb) = tokio::join!(a.queue.claim(15), b.queue.claim(15));
    let (ca, cb) = (ca.unwrap(), cb.unwrap());
    assert_eq!(ca.len() + cb.len(), 20);
    let mut claimed: Vec<Uuid> = ca.iter().chain(&cb).map(|(f, _)| f.id).collect();
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids, "every file claimed exactly once");
    let (status, owner, attempts): (String, String, i32) = sqlx::query_as(
        "select processing_status::text, locked_by, attempts from files where id = $1",
    )
    .bind(ca[0].0.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), owner.as_str(), attempts),
        ("processing", "claimer-a", 1)
    );
    assert!(
        a.queue.claim(5).await.unwrap().is_empty(),
        "nothing left while leases are live"
    );
}

#[tokio::test]
async fn a_worker_whose_lease_was_taken_over_writes_nothing() {
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "handbook.pdf").await;
    let stale = env.another_worker("stale").await;
    let fresh = env.another_worker("fresh").await;
    let (file, stale_lease) = stale.queue.claim(1).await.unwrap().pop().unwrap();
    expire_lease(&env, id).await;
    let (file2, fresh_lease) = fresh.queue.claim(1).await.unwrap().pop().unwrap();
    assert_eq!(file2.id, id);
    assert_eq!(fresh_lease.attempt, 2);

    // Every transition of the stale worker is refused...
    assert!(matches!(
        stale.queue.heartbeat(&stale_lease).await,
        Err(QueueError::LeaseLost)
    ));
    assert!(matches!(
        stale_lease.fail(&env.pool, "stale").await,
        Err(QueueError::LeaseLost)
    ));
    assert!(matches!(
        stale_lease.release(&env.pool).await,
        Err(QueueError::LeaseLost)
    ));
    // ...and processing the file to the end writes no chunk and no status.
    let outcome = stale
        .process(file, stale_lease, CancellationToken::new())
        .await;
    assert_eq!(outcome, Outcome::LeaseLost);
    assert_eq!(env.chunk_count(id).await, 0);
    let row = env.file(id).await;
    assert_eq!((row.status.as_str(), row.last_error), ("processing", None));
    // The stale worker's embeddings were paid for: recorded as such, once.
    let lost_usage = env
        .count(
            "select count(*) from usage_logs where metadata->>'file_id' = $1::text and metadata->>'outcome' = 'lease_lost'",
            id,
        )
        .await;
    assert_eq!(lost_usage, 1);

    // The new owner completes it normally.
    let outcome = fresh
        .process(file2, fresh_lease, CancellationToken::new())
        .await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let row = env.file(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("completed", 2));
    assert_eq!(i64::from(row.chunk_count), env.chunk_count(id).await);
}

/// A release refunds the attempt and a re-embed resets the budget, so the same worker id can
/// claim a file again with the same `attempts`: the fence is `claim_seq`, which only grows,
/// and the old lease matches nothing.
#[tokio::test]
async fn a_stale_lease_of_the_same_worker_and_attempt_writes_nothing() {
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    let queue = &env.worker.queue;
    let (_, old) = queue.claim(1).await.unwrap().pop().unwrap();
    old.release(&env.pool).await.unwrap();
    let (file, released_again) = queue.claim(1).await.unwrap().pop().unwrap();
    assert_eq!(
        released_again.attempt, old.attempt,
        "the release refunded the attempt"
    );
    assert!(released_again.claim > old.claim);
    for stale in [&old] {
        assert!(matches!(
            queue.heartbeat(stale).await,
            Err(QueueError::LeaseLost)
        ));
        assert!(matches!(
            stale.release(&env.pool).await,
            Err(QueueError::LeaseLost)
        ));
    }
    // Processed, then queued for re-embedding: attempts back to 0, claimed again as 1.
    let lease = released_again;
    let outcome = env
        .worker
        .process(file, lease.clone(), CancellationToken::new())
        .await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    sqlx::query("update files set processing_status = 'pending', attempts = 0 where id = $1")
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
    let (_, reclaimed) = queue.claim(1).await.unwrap().pop().unwrap();
    assert_eq!(reclaimed.attempt, lease.attempt);
    for stale in [&old, &lease] {
        assert!(matches!(
            stale.fail(&env.pool, "stale").await,
            Err(QueueError::LeaseLost)
        ));
    }
    assert_eq!(env.file(id).await.status, "processing");
    queue.heartbeat(&reclaimed).await.unwrap();
}

#[tokio::test]
async fn expired_leases_are_recovered_until_attempts_run_out() {
    let env = TestEnv::with_config("[queue]\nmax_attempts = 2").await;
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    // Two workers "crash" in turn: claim, then vanish.
    for attempt in 1..=2 {
        let (file, lease) = env.worker.queue.claim(1).await.unwrap().pop().unwrap();
        assert_eq!((file.id, lease.attempt), (id, attempt));
        expire_lease(&env, id).await;
    }
    // The next claim gives up on it instead of handing it out a third time.
    assert!(env.worker.queue.claim(1).await.unwrap().is_empty());
    let row = env.file(id).await;
    assert_eq!(row.status, "failed");
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .starts_with("gave up after 2 attempts: the worker processing it stopped responding"),
        "{:?}",
        row.last_error
    );
}

#[tokio::test]
async fn shutdown_releases_the_file_without_spending_an_attempt() {
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    let (file, lease) = env.worker.queue.claim(1).await.unwrap().pop().unwrap();
    let stop = CancellationToken::new();
    stop.cancel();
    let outcome = env.worker.process(file, lease, stop).await;
    assert_eq!(outcome, Outcome::Released);
    let row = env.file(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
    assert_eq!(env.file(id).await.attempts, 1);
}

#[tokio::test]
async fn a_new_pending_file_is_notified() {
    let env = TestEnv::start().await;
    let mut listener = PgListener::connect_with(&env.pool).await.unwrap();
    listener
        .listen(ragworker::service::NOTIFY_CHANNEL)
        .await
        .unwrap();
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    let n = listener.recv().await.unwrap();
    assert_eq!(n.payload(), id.to_string());
    // Completing it does not notify; setting it back to pending does.
    env.drain().await;
    sqlx::query("update files set processing_status = 'pending' where id = $1")
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
    let n = listener.recv().await.unwrap();
    assert_eq!(n.payload(), id.to_string());
}

#[tokio::test]
async fn start_up_checks_refuse_a_dimension_that_does_not_match_the_column() {
    let env = TestEnv::start().await;
    ragworker::db::preflight(&env.pool, &env.settings.embedding)
        .await
        .unwrap();
    let mut other = env.settings.embedding.clone();
    other.dimensions = 1536;
    let err = ragworker::db::preflight(&env.pool, &other)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "document_chunks.embedding has dimension 256, but embedding.dimensions is 1536; run `ragworker migrate` (empty table) or `ragworker backfill --reembed` after changing the model"
    );
    // With no chunks yet, migrate may change the dimension; with chunks, it refuses.
    ragworker::db::migrate(
        &env.pool,
        &other,
        &env.settings.storage,
        &env.settings.search,
    )
    .await
    .unwrap();
    ragworker::db::preflight(&env.pool, &other).await.unwrap();
    ragworker::db::migrate(
        &env.pool,
        &env.settings.embedding,
        &env.settings.storage,
        &env.settings.search,
    )
    .await
    .unwrap();
    env.enqueue(Uuid::new_v4(), "notes.txt").await;
    env.drain().await;
    let err = ragworker::db::migrate(
        &env.pool,
        &other,
        &env.settings.storage,
        &env.settings.search,
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("re-embed"), "{err:#}");
}
