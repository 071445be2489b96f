//! The shared batcher and the rate limiter against the fake provider.

use std::sync::atomic::Ordering;

use ragworker::embed::Usage;
use ragworker::service;
use uuid::Uuid;

use crate::support::{Fault, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_many_files_share_requests_and_come_back_to_the_right_file() {
    let env =
        TestEnv::with_config("[worker]\nconcurrency = 16\n[embedding]\nbatch_linger_ms = 200")
            .await;
    let user = Uuid::new_v4();
    let ids = env.enqueue_generated(user, 32).await;
    let summary = service::backfill(env.worker.clone(), std::future::pending(), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.completed, 32);
    env.assert_all_completed_exactly_once(&ids).await;
    let requests = env.fake.requests();
    assert!(
        requests < 16,
        "32 files in {requests} requests: chunks were not shared"
    );
    assert!(
        env.fake
            .stats()
            .max_inputs_in_request
            .load(Ordering::SeqCst)
            > 2
    );
    // Each file's usage is its own tokens, and the shares add up to the bill exactly.
    let mismatched: i64 = sqlx::query_scalar(
        "select count(*) from usage_logs u
         where u.tokens_used <> (select sum(token_count) from document_chunks c
                                 where c.file_id = (u.metadata->>'file_id')::uuid)",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    let total: i64 = sqlx::query_scalar("select sum(tokens_used)::bigint from usage_logs")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(total as u64, env.fake.billed_tokens());
    // Every stored vector is the one the provider computed for that chunk's own text: no
    // vector went to another chunk or another file.
    assert_vectors_match_content(&env).await;
}

async fn assert_vectors_match_content(env: &TestEnv) {
    let rows: Vec<(String, pgvector::HalfVector)> =
        sqlx::query_as("select content, embedding from document_chunks")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    for (content, stored) in rows {
        let expected =
            crate::support::fake_openai::embed_text(&content, crate::support::DIMENSIONS);
        let cosine: f32 = stored
            .to_vec()
            .iter()
            .zip(&expected)
            .map(|(a, b)| a.to_f32() * b)
            .sum();
        assert!(
            cosine > 0.999,
            "vector of {content:?} is not its own (cosine {cosine})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_storm_ends_with_every_file_completed_and_exact_usage() {
    let env = TestEnv::with_config(
        "[worker]\nconcurrency = 8\n[embedding]\nmax_retries = 30\nretry_max_delay_secs = 1\nbatch_linger_ms = 5\nmax_inputs_per_request = 4",
    )
    .await;
    // Thirty 429s in a row, each with a reset the worker must honour.
    env.fake.push_faults((0..30).map(|_| Fault::RateLimit {
        reset: std::time::Duration::from_millis(40),
    }));
    let ids = env.enqueue_generated(Uuid::new_v4(), 40).await;
    let summary = service::backfill(env.worker.clone(), std::future::pending(), |_| {})
        .await
        .unwrap();
    assert_eq!((summary.completed, summary.failed), (40, 0));
    env.assert_all_completed_exactly_once(&ids).await;
    assert_eq!(env.fake.stats().rate_limited.load(Ordering::SeqCst), 30);
    let total: i64 = sqlx::query_scalar("select sum(tokens_used)::bigint from usage_logs")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        total as u64,
        env.fake.billed_tokens(),
        "every billed token recorded once"
    );
    let recorded: i64 = sqlx::query_scalar(
        "select coalesce(sum((metadata->>'rate_limited')::int), 0)::bigint from usage_logs",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    // A shared request's 429s count once for each file in it.
    assert!(recorded >= 30, "recorded {recorded}");
    assert_vectors_match_content(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_learned_from_headers_keep_429s_rare() {
    // 60 requests/min, learned from the first answer's headers: after the burst of 60, the
    // worker paces itself at one request a second instead of hammering.
    let env = TestEnv::with_limited_provider(
        "[worker]\nconcurrency = 4\n[embedding]\nmax_inputs_per_request = 1\nmax_concurrent_requests = 2",
        60,
        10_000_000,
    )
    .await;
    let ids = env.enqueue_generated(Uuid::new_v4(), 31).await; // 62 chunks, 62 requests
    let summary = service::backfill(env.worker.clone(), std::future::pending(), |_| {})
        .await
        .unwrap();
    assert_eq!((summary.completed, summary.failed), (31, 0));
    env.assert_all_completed_exactly_once(&ids).await;
    let limited = env.fake.stats().rate_limited.load(Ordering::SeqCst);
    assert!(
        limited <= 2,
        "{limited} 429s: the learned limit was not respected"
    );
}

#[tokio::test]
async fn over_long_inputs_are_split_and_averaged_or_rejected() {
    let env = TestEnv::with_config("[embedding]\nmax_input_tokens = 50").await;
    let long = "The lighthouse keeper trims the wick and polishes the great lens every morning. "
        .repeat(12);
    let tokens = env.worker.chunker.count_tokens(&long);
    assert!(tokens > 100);
    let mut usage = Usage::default();
    let vectors = env
        .worker
        .embedder
        .embed(&[(&long, tokens)], &mut usage)
        .await
        .unwrap();
    assert_eq!(vectors.len(), 1);
    let v: Vec<f32> = vectors[0].to_vec().iter().map(|x| x.to_f32()).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 0.01,
        "the average is normalised: {norm}"
    );
    // It was sent in parts no longer than the limit, and every part was billed.
    assert!(env.fake.stats().inputs.load(Ordering::SeqCst) >= 3);
    assert_eq!(usage.tokens, env.fake.billed_tokens());

    let strict =
        TestEnv::with_config("[embedding]\nmax_input_tokens = 50\noversize_input = \"reject\"")
            .await;
    let err = strict
        .worker
        .embedder
        .embed(&[(&long, tokens)], &mut Usage::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("chunk 0 has {tokens} tokens, over the model's limit of 50 per input")
    );
    assert_eq!(strict.fake.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_against_a_token_limit_keeps_429s_under_one_percent() {
    // 60k tokens/min = 1000 tokens/s; 8 concurrent senders of ~250-token requests. After the
    // first minute's bucket (60k) the limiter must pace to the provider's rate.
    let env =
        TestEnv::with_limited_provider("[embedding]\nmax_concurrent_requests = 8", 100_000, 60_000)
            .await;
    let embedder = env.worker.embedder.clone();
    let text = "harbour tide ferry lighthouse ".repeat(50);
    let tokens = env.worker.chunker.count_tokens(&text);
    let total_requests = (75_000 / tokens).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total_requests {
        let embedder = embedder.clone();
        let text = text.clone();
        tasks.spawn(async move {
            let mut usage = Usage::default();
            embedder
                .send(vec![text], tokens as u64, &mut usage, None)
                .await
                .unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let limited = env.fake.stats().rate_limited.load(Ordering::SeqCst);
    let requests = env.fake.requests();
    eprintln!("{limited} 429s in {requests} requests of {tokens} tokens");
    assert!(
        limited * 100 <= requests,
        "{limited} 429s in {requests} requests"
    );
}

/// With no request out, the provider is idle and a partial request goes at once: a lone
/// file is embedded without waiting out a linger of a minute, which would otherwise hold
/// it (a request leaves early only when full or when the linger is over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_request_leaves_at_once_when_the_provider_is_idle() {
    let env = TestEnv::with_config("[embedding]\nbatch_linger_ms = 60000").await;
    let ids = env.enqueue_generated(Uuid::new_v4(), 1).await;
    let started = std::time::Instant::now();
    let processed = tokio::time::timeout(std::time::Duration::from_secs(20), env.worker.run_once())
        .await
        .expect("the file was embedded without waiting for the linger")
        .unwrap();
    assert!(matches!(
        processed,
        Some((_, ragworker::worker::Outcome::Completed { .. }))
    ));
    env.assert_all_completed_exactly_once(&ids).await;
    assert_eq!(env.fake.requests(), 1);
    eprintln!("one file in {:?}", started.elapsed());
}
