//! What the embeddings provider does wrong, and what becomes of the file.

use std::time::Duration;

use ragworker::worker::Outcome;
use uuid::Uuid;

use crate::support::{Fault, TestEnv};

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_and_accounted() {
    let env = TestEnv::start().await;
    env.fake.push_faults([
        Fault::RateLimit {
            reset: Duration::from_millis(300),
        },
        Fault::ServerError,
    ]);
    let id = env.enqueue(Uuid::new_v4(), "guide.md").await;
    let started = std::time::Instant::now();
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    // The 429 said 300 ms; retrying sooner would only earn another 429.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(env.file(id).await.status, "completed");
    assert_eq!(env.fake.requests(), 3);
    let (tokens, metadata): (i64, serde_json::Value) =
        sqlx::query_as("select tokens_used, metadata from usage_logs")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(tokens as u64, env.fake.billed_tokens());
    assert_eq!(metadata["requests"], 3);
    assert_eq!(metadata["retries"], 2);
    assert_eq!(metadata["rate_limited"], 1);
}

#[tokio::test]
async fn a_provider_outage_sends_the_file_back_to_the_queue_with_a_delay() {
    let env = TestEnv::with_config("[embedding]\nmax_retries = 1").await;
    env.fake
        .push_faults([Fault::ServerError, Fault::ServerError]);
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Retrying { .. }), "{outcome:?}");
    let row = env.file(id).await;
    assert_eq!(row.status, "pending");
    assert!(
        row.last_error.as_deref().unwrap().contains("HTTP 500"),
        "{:?}",
        row.last_error
    );
    let delayed: bool =
        sqlx::query_scalar("select next_attempt_at > now() from files where id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(delayed, "a transient failure is retried later, not at once");
    // Not eligible yet...
    assert!(env.worker.run_once().await.unwrap().is_none());
    // ...and completes once its time has come.
    env.make_due(id).await;
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let row = env.file(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempts, row.last_error),
        ("completed", 2, None)
    );
}

/// Quota and credentials are the deployment's problem, not the document's: the file goes
/// back to `pending` with the reason and its attempt refunded, to be tried once the halt
/// (`embedding.halt_secs`) is over, and nothing is retried or claimed meanwhile.
#[tokio::test]
async fn quota_and_auth_errors_pause_work_without_failing_files() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    env.fake.push_faults([Fault::Quota]);
    let quota = env.enqueue(user, "notes.txt").await;
    env.worker.run_once().await.unwrap();
    let row = env.file(quota).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
    assert_eq!(
        row.last_error.as_deref(),
        Some("embedding API returned HTTP 429 (insufficient_quota): You exceeded your current quota, please check your plan and billing details.")
    );
    let waits: bool = sqlx::query_scalar(
        "select next_attempt_at > now() + interval '250 seconds' from files where id = $1",
    )
    .bind(quota)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(waits, "the file waits out the halt");
    assert_eq!(env.fake.requests(), 1, "quota errors are not retried");

    // The provider will refuse everything for a while: the worker stops claiming instead of
    // failing every file in the queue.
    let waiting = env.enqueue(user, "notes.txt").await;
    assert!(env.worker.run_once().await.unwrap().is_none());
    assert_eq!(env.file(waiting).await.status, "pending");
    assert_eq!(env.fake.requests(), 1);
}

/// A self-hosted server that takes fewer inputs per request than configured refuses every
/// request alike: the provider is halted with the setting to change, the file waits.
#[tokio::test]
async fn a_batch_limit_refusal_pauses_work_and_names_the_setting() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    env.fake.push_faults([Fault::BatchTooLarge]);
    let id = env.enqueue(user, "notes.txt").await;
    env.worker.run_once().await.unwrap();
    let row = env.file(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
    assert_eq!(
        row.last_error.as_deref(),
        Some("the provider refused a request of more inputs than it takes (HTTP 413: Input validation error: batch size 64 > maximum allowed batch size 32); set embedding.max_inputs_per_request (now 2048) to its limit")
    );
    assert!(env.worker.run_once().await.unwrap().is_none());
    assert_eq!(env.fake.requests(), 1);
}

#[tokio::test]
async fn an_auth_error_pauses_the_file_and_stops_requests() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    env.fake.push_faults([Fault::Unauthorized]);
    let auth = env.enqueue(user, "notes.txt").await;
    let other = env.enqueue(user, "guide.md").await;
    env.worker.run_once().await.unwrap();
    let row = env.file(auth).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
    assert!(row
        .last_error
        .as_deref()
        .unwrap()
        .contains("HTTP 401 (invalid_api_key)"));
    assert!(env.worker.run_once().await.unwrap().is_none());
    assert_eq!(env.file(other).await.status, "pending");
    assert_eq!(env.fake.requests(), 1);
}

#[tokio::test]
async fn malformed_responses_fail_the_file_clearly() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    env.fake.push_faults([Fault::WrongDimension]);
    let wrong_dim = env.enqueue(user, "notes.txt").await;
    env.worker.run_once().await.unwrap();
    let row = env.file(wrong_dim).await;
    assert_eq!(row.status, "failed");
    assert_eq!(
        row.last_error.as_deref(),
        Some("embedding API returned an unusable response: embedding of dimension 257, but embedding.dimensions is 256")
    );
    assert_eq!(env.chunk_count(wrong_dim).await, 0);
    // The provider billed that request, so it is recorded even though the file failed.
    let (tokens, outcome): (i64, String) = sqlx::query_as(
        "select tokens_used, metadata->>'outcome' from usage_logs where metadata->>'file_id' = $1::text",
    )
    .bind(wrong_dim)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(tokens as u64, env.fake.billed_tokens());
    assert_eq!(outcome, "failed");

    env.fake.push_faults([Fault::MissingVector]);
    let missing = env.enqueue(user, "guide.md").await;
    env.worker.run_once().await.unwrap();
    let row = env.file(missing).await;
    assert_eq!(row.status, "failed");
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("embeddings for"),
        "{:?}",
        row.last_error
    );
}

/// NaN (recent Ollama) and all-zero vectors would poison every search that meets them:
/// the provider's error, the file failed with the reason, nothing stored, the tokens billed.
#[tokio::test]
async fn nan_and_zero_vectors_are_rejected_never_stored() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    for (fault, reason) in [
        (Fault::NanVector, "has NaN or infinite values"),
        (Fault::ZeroVector, "is all zeros"),
    ] {
        env.fake.push_faults([fault]);
        let id = env.enqueue(user, "notes.txt").await;
        env.worker.run_once().await.unwrap();
        let row = env.file(id).await;
        assert_eq!(row.status, "failed");
        let error = row.last_error.unwrap();
        assert!(
            error.starts_with(
                "embedding API returned an unusable response: the embedding of chunk 0"
            ) && error.contains(reason),
            "{error}"
        );
        assert_eq!(env.chunk_count(id).await, 0);
    }
    let recorded = env
        .count(
            "select coalesce(sum(tokens_used), 0)::bigint from usage_logs where user_id = $1",
            user,
        )
        .await;
    assert_eq!(recorded as u64, env.fake.billed_tokens());
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let env = TestEnv::with_config("[embedding]\nrequest_timeout_secs = 1").await;
    env.fake.push_faults([Fault::Slow(Duration::from_secs(3))]);
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let metadata: serde_json::Value =
        sqlx::query_scalar("select metadata from usage_logs where metadata->>'file_id' = $1::text")
            .bind(id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(metadata["retries"], 1);
}

/// An input the provider refuses fails its file with the provider's reason; an over-long one
/// (a self-hosted model reading less than embedding.max_input_tokens, as Ollama words it)
/// also names the settings to change.
#[tokio::test]
async fn input_rejected_by_the_provider_fails_the_file() {
    let env = TestEnv::start().await;
    for (fault, expected) in [
        (Fault::BadRequest, "embedding API returned HTTP 400 (invalid_input): '$.input' is invalid. Please check the API reference."),
        (Fault::InputTooLong, "the provider refused an input as too long (HTTP 400: the input length exceeds the context length); set embedding.max_input_tokens (now 8191) and chunking.max_tokens to the model's context length or less"),
    ] {
        let before = env.fake.requests();
        env.fake.push_faults([fault]);
        let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
        env.worker.run_once().await.unwrap();
        let row = env.file(id).await;
        assert_eq!(row.status, "failed");
        assert_eq!(row.last_error.as_deref(), Some(expected));
        assert_eq!(env.fake.requests(), before + 1);
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::with_config(&format!(
        "[embedding]\nbase_url = \"http://127.0.0.1:{closed}/v1\"\nmax_retries = 1"
    ))
    .await;
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Retrying { .. }), "{outcome:?}");
    let row = env.file(id).await;
    assert_eq!(row.status, "pending");
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .starts_with("embedding API unreachable"),
        "{:?}",
        row.last_error
    );
}

#[tokio::test]
async fn a_file_over_its_processing_time_limit_fails_instead_of_hanging() {
    let env = TestEnv::with_config("[worker]\nprocessing_timeout_secs = 1").await;
    env.fake.set_latency(Duration::from_secs(5));
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert_eq!(
        env.file(id).await.last_error.as_deref(),
        Some("processing took longer than the 1s limit (worker.processing_timeout_secs)")
    );
}
