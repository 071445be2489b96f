//! Through the pooler Supabase users are handed: PgBouncer (Debian's 1.18, stock but for
//! `ignore_startup_parameters`) in transaction and in session mode in front of the test
//! database, with every command run as a process the way a user would.

use std::time::Duration;

use sqlx::Connection;
use uuid::Uuid;

use crate::support::{fixture, wait_until, PgBouncer, TestEnv};

const DOCS: [&str; 4] = ["notes.txt", "guide.md", "handbook.pdf", "page.html"];

/// `ragworker enqueue` of the fixtures for `user`; returns the new files' ids.
async fn enqueue(env: &TestEnv, user: Uuid) -> Vec<Uuid> {
    let user = user.to_string();
    let paths: Vec<String> = DOCS
        .iter()
        .map(|d| fixture(d).display().to_string())
        .collect();
    let mut args = vec!["enqueue", "--user", &user];
    args.extend(paths.iter().map(String::as_str));
    let out = env.command(&args, "unused.log").output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect()
}

/// `ragworker migrate` with this `database.url` and `database.direct_url`.
async fn migrate(env: &TestEnv, url: &str, direct: &str) {
    env.set_config([
        ("database", "url", url.into()),
        ("database", "direct_url", direct.into()),
    ]);
    let (code, log) = env.run(&["migrate"]).await;
    assert_eq!(code, Some(0), "migrate: {log}");
}

async fn waiting(env: &TestEnv) -> i64 {
    sqlx::query_scalar("select count(*) from document_chunks where index_pending")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// Every other command through the pooler at `url` (`direct` for LISTEN, if given):
/// enqueue, backfill, two services at once picking up new files, search, and a clean
/// SIGTERM. `notified`: whether the services must hear the new files through NOTIFY (they
/// poll every 30 s, so a pick-up within 10 s is NOTIFY's doing).
async fn every_command_through(env: &TestEnv, url: &str, direct: &str, notified: bool) {
    env.set_config([
        ("database", "url", url.into()),
        ("database", "direct_url", direct.into()),
        ("database", "max_connections", 5.into()),
        ("worker", "poll_interval_secs", 30.into()),
        // The HNSW index from the start (where a session connection can build it), so
        // chunks wait outside it and are counted and merged through the pooler.
        ("index", "hnsw_min_rows", 0.into()),
    ]);
    let user = Uuid::new_v4();
    let ids = enqueue(env, user).await;
    assert_eq!(ids.len(), DOCS.len());
    let out = env
        .command(&["backfill"], "unused.log")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "backfill: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("4 completed, 0 failed"), "{stdout}");
    env.assert_all_completed_exactly_once(&ids).await;
    assert_eq!(
        waiting(env).await,
        0,
        "the backfill merged what waited: {stdout}"
    );

    // Two services at once, each with its own pool through the pooler.
    let mut services: Vec<_> = ["run-a.log", "run-b.log"]
        .iter()
        .map(|log| env.command(&["run"], log).spawn().unwrap())
        .collect();
    for log in ["run-a.log", "run-b.log"] {
        wait_until(Duration::from_secs(20), "the services to start", || async {
            env.log(log).contains("ragworker running")
        })
        .await;
    }
    let new = enqueue(env, user).await;
    let wait = if notified { 10 } else { 20 };
    wait_until(
        Duration::from_secs(wait),
        "the services to process the new files",
        || async {
            let done: i64 = sqlx::query_scalar(
                "select count(*) from files where id = any($1) and processing_status = 'completed'",
            )
            .bind(&new)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            done == new.len() as i64
        },
    )
    .await;
    env.assert_all_completed_exactly_once(&new).await;
    wait_until(
        Duration::from_secs(20),
        "the idle services to merge the waiting chunks",
        || async { waiting(env).await == 0 },
    )
    .await;

    // search, while the services run.
    let out = env
        .command(
            &[
                "search",
                "--user",
                &user.to_string(),
                "How long does the foghorn blast?",
            ],
            "unused.log",
        )
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("1. "),
        "search: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM: both stop promptly and cleanly.
    for service in &services {
        let pid = service.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
    }
    for service in services.iter_mut() {
        let status = tokio::time::timeout(Duration::from_secs(15), service.wait())
            .await
            .expect("a service did not stop within 15 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "{status:?}");
    }
    // Where a session connection could build the index, the new files' chunks waited
    // outside it and an idle service merged them, through the pooler.
    let indexed: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_indexes where indexname = 'document_chunks_embedding_idx')",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let logs = env.log("run-a.log") + &env.log("run-b.log");
    assert_eq!(
        logs.contains("merged waiting chunks into the HNSW index"),
        indexed,
        "{logs}"
    );
    for log in ["run-a.log", "run-b.log"] {
        let log = env.log(log);
        assert!(!log.contains("prepared statement"), "{log}");
        assert!(!log.contains("HNSW index failed"), "{log}");
        assert_eq!(
            log.contains("notifications do not arrive"),
            !notified,
            "{log}"
        );
    }
}

#[tokio::test]
async fn a_transaction_pooler_carries_every_command_with_a_direct_url_for_migrate_and_listen() {
    let env = TestEnv::start().await;
    // Two server connections for everyone: clients share them statement by statement.
    let bouncer = PgBouncer::start("transaction", 2);
    let pooled = bouncer.url(&env.database_url);
    migrate(&env, &pooled, &env.database_url).await;
    every_command_through(&env, &pooled, &env.database_url, true).await;
}

#[tokio::test]
async fn without_a_direct_url_the_service_polls_through_a_transaction_pooler() {
    let env = TestEnv::start().await;
    let bouncer = PgBouncer::start("transaction", 2);
    let pooled = bouncer.url(&env.database_url);
    migrate(&env, &pooled, &env.database_url).await;
    every_command_through(&env, &pooled, "", false).await;
}

#[tokio::test]
async fn a_session_pooler_carries_every_command() {
    let env = TestEnv::start().await;
    let bouncer = PgBouncer::start("session", 20);
    let pooled = bouncer.url(&env.database_url);
    migrate(&env, &pooled, "").await;
    every_command_through(&env, &pooled, "", true).await;
}

#[tokio::test]
async fn eight_migrates_at_once_on_a_new_database_all_succeed() {
    let env = TestEnv::start().await;
    // A database nothing has migrated yet, reached through a session pooler, as replicas
    // that each run `migrate` when they start.
    let fresh = crate::support::fresh_database("m8").await;
    let bouncer = PgBouncer::start("session", 20);
    env.set_config([("database", "url", bouncer.url(&fresh).into())]);
    let runs: Vec<_> = (0..8)
        .map(|i| {
            env.command(&["migrate"], &format!("migrate-{i}.log"))
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let out = tokio::time::timeout(Duration::from_secs(60), run.wait_with_output())
            .await
            .expect("a migrate hung")
            .unwrap();
        assert!(
            out.status.success(),
            "migrate {i}: {}",
            env.log(&format!("migrate-{i}.log"))
        );
    }
    let pool = sqlx::PgPool::connect(&fresh).await.unwrap();
    let versions: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(versions, ragworker::db::MIGRATOR.iter().count() as i64);
    // A session lock dies with its session; behind a session pooler that is when PgBouncer
    // resets the server connection (DISCARD ALL), a moment after the client has gone, so
    // the check waits for it rather than racing it.
    wait_until(
        Duration::from_secs(10),
        "no advisory lock left behind",
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "select count(*) from pg_locks where locktype = 'advisory'",
                )
                .fetch_one(&pool)
                .await
                .unwrap()
                    == 0
            }
        },
    )
    .await;
    pool.close().await;
}

#[tokio::test]
async fn sigterm_interrupts_a_claim_waiting_for_a_saturated_pooler() {
    let env = TestEnv::start().await;
    let bouncer = PgBouncer::start("transaction", 1);
    let pooled = bouncer.url(&env.database_url);
    migrate(&env, &pooled, &env.database_url).await;
    env.set_config([
        ("database", "url", pooled.clone().into()),
        ("database", "direct_url", env.database_url.clone().into()),
        ("worker", "poll_interval_secs", 30.into()),
        ("worker", "shutdown_grace_secs", 30.into()),
        // Without the interruption, the claim would wait this long for a connection.
        ("database", "acquire_timeout_secs", 60.into()),
    ]);
    let mut service = env.command(&["run"], "run.log").spawn().unwrap();
    wait_until(Duration::from_secs(20), "the service to start", || async {
        env.log("run.log").contains("ragworker running")
    })
    .await;
    // Another client holds the pooler's only server connection in an open transaction; a
    // new file wakes the service, whose claim then waits for PgBouncer to free a server.
    let mut blocker = sqlx::PgConnection::connect(&pooled).await.unwrap();
    sqlx::query("begin").execute(&mut blocker).await.unwrap();
    sqlx::query("select 1").execute(&mut blocker).await.unwrap();
    env.enqueue(Uuid::new_v4(), "notes.txt").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = service.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let stopped = tokio::time::Instant::now();
    // Without the interruption the claim waits for a connection until acquire_timeout_secs
    // (60 s here; seen ~1.5 s with it, up to 6.5 s on a loaded machine).
    let status = tokio::time::timeout(Duration::from_secs(20), service.wait())
        .await
        .expect("SIGTERM did not interrupt the waiting claim within 20 s")
        .unwrap();
    assert!(status.success(), "{status:?}: {}", env.log("run.log"));
    assert!(stopped.elapsed() < Duration::from_secs(20));
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();
}

#[tokio::test]
async fn stock_pgbouncer_refusing_sqlx_is_explained() {
    let env = TestEnv::start().await;
    let bouncer = PgBouncer::start_with("transaction", 2, "");
    env.set_config([("database", "url", bouncer.url(&env.database_url).into())]);
    let (code, log) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("add `ignore_startup_parameters = extra_float_digits`"),
        "{log}"
    );
}

#[tokio::test]
async fn a_transaction_pooler_is_recognised_without_listening() {
    let env = TestEnv::start().await;
    let behind = |url: String| {
        let mut settings = env.settings.database.clone();
        settings.url = url.into();
        async move { ragworker::db::behind_transaction_pooler(&settings).await }
    };
    for size in [1, 2] {
        let bouncer = PgBouncer::start("transaction", size);
        assert!(
            behind(bouncer.url(&env.database_url)).await,
            "pool of {size}"
        );
    }
    let session = PgBouncer::start("session", 4);
    assert!(!behind(session.url(&env.database_url)).await);
    assert!(!behind(env.database_url.clone()).await);
}
