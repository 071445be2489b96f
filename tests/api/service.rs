//! The service and backfill loops, with real `ragworker` processes: many workers, kill -9,
//! a Postgres restart, SIGTERM, metrics.

use std::sync::Arc;
use std::time::Duration;

use ragworker::service;
use uuid::Uuid;

use crate::support::{wait_until, PgCluster, TestEnv};

async fn count_status(env: &TestEnv, status: &str) -> i64 {
    sqlx::query_scalar("select count(*) from files where processing_status::text = $1")
        .bind(status)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("child is running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_workers_in_and_out_of_process_drain_500_files_exactly_once() {
    let env = TestEnv::with_config("[worker]\nconcurrency = 4").await;
    let ids = env.enqueue_generated(Uuid::new_v4(), 520).await;

    let mut procs = Vec::new();
    for i in 0..2 {
        procs.push(
            env.command(&["backfill"], &format!("backfill-{i}.log"))
                .spawn()
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for i in 0..2 {
        let worker = env.another_worker(&format!("in-process-{i}")).await;
        tasks.push(tokio::spawn(service::backfill(
            worker,
            std::future::pending(),
            |_| {},
        )));
    }
    let mut in_process = 0;
    for t in tasks {
        let summary = t.await.unwrap().unwrap();
        assert_eq!(summary.failed, 0);
        in_process += summary.completed;
    }
    for (i, p) in procs.into_iter().enumerate() {
        let out = p.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "backfill {i}: {}",
            env.log(&format!("backfill-{i}.log"))
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("backfill done:"), "{stdout}");
    }
    env.assert_all_completed_exactly_once(&ids).await;
    let attempts: i64 = sqlx::query_scalar("select sum(attempts) from files")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 520, "no file was claimed twice");
    // The processes did real work too (not just the in-process workers).
    let by_processes: i64 = sqlx::query_scalar(
        "select count(*) from usage_logs where metadata->>'worker_id' not like 'in-process-%'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        by_processes > 0 && in_process > 0,
        "processes {by_processes}, in-process {in_process}"
    );
    assert_eq!(by_processes as u64 + in_process, 520);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_a_killed_worker_are_finished_by_another_after_the_lease_expires() {
    let env = TestEnv::with_config("[worker]\nconcurrency = 3").await;
    let ids = env.enqueue_generated(Uuid::new_v4(), 12).await;
    // Slow answers keep the victim in the middle of its files.
    env.fake.set_latency(Duration::from_secs(30));
    let mut victim = env.command(&["run"], "victim.log").spawn().unwrap();
    wait_until(
        Duration::from_secs(30),
        "the victim to claim files",
        || async { count_status(&env, "processing").await == 3 },
    )
    .await;
    victim.kill().await.unwrap(); // SIGKILL: no shutdown, no release
    victim.wait().await.unwrap();
    assert_eq!(
        count_status(&env, "processing").await,
        3,
        "the dead worker's leases remain"
    );
    env.fake.set_latency(Duration::ZERO);

    // While the leases are live nobody else may take those files...
    let rescuer = env.another_worker("rescuer").await;
    let before = service::backfill(rescuer.clone(), std::future::pending(), |_| {})
        .await
        .unwrap();
    assert_eq!(before.completed, 9);
    assert_eq!(count_status(&env, "processing").await, 3);
    // ...once they expire (here: made to expire with SQL rather than by waiting), they are.
    sqlx::query("update files set locked_until = now() - interval '1 second' where processing_status = 'processing'")
        .execute(&env.pool)
        .await
        .unwrap();
    let after = service::backfill(rescuer, std::future::pending(), |_| {})
        .await
        .unwrap();
    assert_eq!(after.completed, 3);
    env.assert_all_completed_exactly_once(&ids).await;
    let retried: i64 = sqlx::query_scalar("select count(*) from files where attempts = 2")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        retried, 3,
        "exactly the killed worker's files needed a second attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_files_finish_or_releases_them() {
    let env = TestEnv::with_config(
        "[worker]\nconcurrency = 2\nshutdown_grace_secs = 1\n[log]\nformat = \"json\"",
    )
    .await;
    let ids = env.enqueue_generated(Uuid::new_v4(), 4).await;
    env.fake.set_latency(Duration::from_secs(20));
    let mut run = env.command(&["run"], "run.log").spawn().unwrap();
    wait_until(Duration::from_secs(30), "two files in flight", || async {
        count_status(&env, "processing").await == 2
    })
    .await;
    sigterm(&run);
    let status = tokio::time::timeout(Duration::from_secs(15), run.wait())
        .await
        .expect("ragworker run exits after the grace period")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        count_status(&env, "processing").await,
        0,
        "nothing left processing"
    );
    // Released files are pending with their attempt refunded.
    let refunded: i64 = sqlx::query_scalar(
        "select count(*) from files where processing_status = 'pending' and attempts = 0",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(refunded, 4);
    // JSON logs carry the file id on every line about that file.
    let log = env.log("run.log");
    let released: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("released for another worker"))
        .collect();
    assert_eq!(released.len(), 2, "{log}");
    for line in released {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id: Uuid = v["span"]["file.id"].as_str().unwrap().parse().unwrap();
        assert!(ids.contains(&id));
    }
    // And a later worker completes them all.
    env.fake.set_latency(Duration::ZERO);
    let out = env
        .command(&["backfill"], "backfill.log")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    env.assert_all_completed_exactly_once(&ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_survives_a_postgres_restart_and_drains_the_queue() {
    let cluster = PgCluster::start();
    let env = TestEnv::on_server(
        &cluster.admin_url,
        // Four files at a time, so that some are still in flight when the server goes down.
        "[queue]\nlease_secs = 3\nheartbeat_secs = 1\n[worker]\npoll_interval_secs = 1\nconcurrency = 4",
    )
    .await;
    let user = Uuid::new_v4();
    let first = env.enqueue_generated(user, 10).await;
    // Slow enough that files are in flight when the server goes down.
    env.fake.set_latency(Duration::from_millis(400));
    let mut run = env.command(&["run"], "run.log").spawn().unwrap();
    // Some files done and some in flight: between a finished batch and the next claim,
    // nothing is processing for a moment, and a restart then would test nothing.
    wait_until(
        Duration::from_secs(30),
        "the first files done and others in flight",
        || async {
            count_status(&env, "completed").await >= 3 && count_status(&env, "processing").await > 0
        },
    )
    .await;
    let in_flight = count_status(&env, "processing").await;
    cluster.restart();
    // The test's own pool reconnects too; the service was cut off mid-work.
    let mut ids = first.clone();
    ids.extend(env.enqueue_generated(user, 10).await);
    wait_until(
        Duration::from_secs(60),
        "all files after the restart",
        || async { count_status(&env, "completed").await == 20 },
    )
    .await;
    sigterm(&run);
    run.wait().await.unwrap();
    env.assert_all_completed_exactly_once(&ids).await;
    let log = env.log("run.log");
    assert!(
        in_flight > 0,
        "the restart should hit files in flight\n{log}"
    );
    eprintln!("files in flight at restart: {in_flight}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_rides_out_a_postgres_outage_without_aborting_files_in_flight() {
    let cluster = PgCluster::start();
    let env = TestEnv::on_server(
        &cluster.admin_url,
        "[queue]\nlease_secs = 3\nheartbeat_secs = 1\n[worker]\nconcurrency = 4\n\
         [database]\nacquire_timeout_secs = 1",
    )
    .await;
    let ids = env.enqueue_generated(Uuid::new_v4(), 24).await;
    // Slow enough that files are in flight when the server goes down.
    env.fake.set_latency(Duration::from_millis(400));
    let worker = env.worker.clone();
    let backfill = tokio::spawn(async move {
        ragworker::service::backfill(worker, std::future::pending(), |_| {}).await
    });
    // Some files done and some in flight: between a finished batch and the next claim,
    // nothing is processing for a moment, and an outage then would test nothing. The count
    // that satisfied the wait is the one kept: counting again could fall in that moment.
    let seen = std::sync::atomic::AtomicI64::new(0);
    wait_until(
        Duration::from_secs(30),
        "the first files done and others in flight",
        || async {
            let processing = count_status(&env, "processing").await;
            seen.store(processing, std::sync::atomic::Ordering::Relaxed);
            count_status(&env, "completed").await >= 3 && processing > 0
        },
    )
    .await;
    let in_flight = seen.load(std::sync::atomic::Ordering::Relaxed);
    // Down for several times as long as a statement waits for a connection (1 s here): the
    // files in flight finish meanwhile and the claims after them fail. Before, the first
    // failed claim ended the backfill with an error and aborted the files still in flight
    // after their embeddings were paid for.
    cluster.outage(Duration::from_secs(5));
    let summary = tokio::time::timeout(Duration::from_secs(120), backfill)
        .await
        .expect("the backfill ended")
        .unwrap()
        .expect("an outage of a few seconds does not end the backfill with an error");
    // Files whose outcome could not be written during the outage wait for their leases;
    // a second pass takes them (as a later backfill or a running service would).
    sqlx::query("update files set locked_until = now() where processing_status = 'processing'")
        .execute(&env.pool)
        .await
        .unwrap();
    env.drain().await;
    env.assert_all_completed_exactly_once(&ids).await;
    assert!(in_flight > 0, "the outage should hit files in flight");
    assert!(summary.completed > 0);
    eprintln!(
        "files in flight at the outage: {in_flight}; the backfill completed {} of 24",
        summary.completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::with_config(&format!("[http]\nlisten = \"127.0.0.1:{port}\"")).await;
    let ids = env.enqueue_generated(Uuid::new_v4(), 3).await;
    let bad = env.enqueue(Uuid::new_v4(), "photo.png").await;
    let mut run = env.command(&["run"], "run.log").spawn().unwrap();
    wait_until(Duration::from_secs(30), "files processed", || async {
        count_status(&env, "completed").await == 3 && count_status(&env, "failed").await == 1
    })
    .await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: &str| {
        let req = http.get(format!("{base}{path}"));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok".to_string()));
    assert_eq!(get("/readyz").await, (200, "ready".to_string()));
    // Counters are written just after the status; poll the endpoint for them.
    let metrics = Arc::new(tokio::sync::Mutex::new(String::new()));
    wait_until(Duration::from_secs(10), "metrics", || {
        let m = metrics.clone();
        let f = get("/metrics");
        async move {
            let (_, body) = f.await;
            let ok = body.contains("ragworker_files_total{outcome=\"completed\"} 3")
                && body.contains("ragworker_files_total{outcome=\"failed\"} 1");
            *m.lock().await = body;
            ok
        }
    })
    .await;
    let body = metrics.lock().await.clone();
    for name in [
        "ragworker_chunks_total",
        "ragworker_embedding_tokens_total",
        "ragworker_embedding_cost_microdollars_total",
        "ragworker_embedding_request_seconds",
        "ragworker_queue_files",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
    sigterm(&run);
    run.wait().await.unwrap();
    let _ = (ids, bad);
}
