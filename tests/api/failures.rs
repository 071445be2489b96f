//! Bad input: each file fails alone, with a last_error a user understands, and the worker
//! goes on with the next file.

use ragworker::worker::Outcome;
use uuid::Uuid;

use crate::support::TestEnv;

#[tokio::test]
async fn each_bad_fixture_fails_clearly_and_good_files_still_complete() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let cases = [
        ("corrupt.pdf", "corrupt or unreadable PDF"),
        ("scanned.pdf", "OCR found no text in the scanned pages"),
        ("photo.png", "OCR found no text in the image"),
        ("empty.txt", "the document contains no text"),
        ("encrypted.pdf", "the PDF is encrypted and needs a password"),
    ];
    let mut ids = Vec::new();
    for (name, _) in &cases {
        ids.push(env.enqueue(user, name).await);
    }
    let good = env.enqueue(user, "notes.txt").await;

    let outcomes = env.drain().await;
    assert_eq!(outcomes.len(), 6);
    for (id, (name, expected)) in ids.iter().zip(cases) {
        let row = env.file(*id).await;
        assert_eq!(row.status, "failed", "{name}");
        let error = row.last_error.unwrap_or_default();
        assert!(error.starts_with(expected), "{name}: {error}");
        assert_eq!(row.attempts, 1, "{name}: permanent errors are not retried");
        assert!(row.processed);
        assert_eq!(env.chunk_count(*id).await, 0);
    }
    assert_eq!(env.file(good).await.status, "completed");
    // Nothing was sent to the paid API for the bad files, and nothing was billed for them.
    assert_eq!(env.fake.requests(), 1);
    assert_eq!(
        env.count(
            "select count(*) from usage_logs where metadata->>'file_id' <> $1::text",
            good
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_missing_object_fails_with_its_bucket_and_path() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let path = format!("{user}/uploaded/this.pdf");
    let id: Uuid = sqlx::query_scalar(
        "insert into files (user_id, original_name, storage_bucket, storage_path, mime_type)
         values ($1, 'gone.pdf', $2, $3, 'application/pdf') returning id",
    )
    .bind(user)
    .bind(&env.bucket)
    .bind(&path)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let (_, outcome) = env.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    let row = env.file(id).await;
    assert_eq!(row.status, "failed");
    assert_eq!(
        row.last_error.as_deref(),
        Some(&*format!(
            "object not found in storage: bucket {:?}, path {path:?}",
            env.bucket
        ))
    );
}

#[tokio::test]
async fn oversized_objects_and_text_are_refused_before_they_cost_anything() {
    let env =
        TestEnv::with_config("[storage]\nmax_object_bytes = 1000\n[extract]\nmax_text_bytes = 200")
            .await;
    let user = Uuid::new_v4();
    let pdf = env.enqueue(user, "handbook.pdf").await; // 1.7 kB object
    let txt = env.enqueue(user, "notes.txt").await; // under 1 kB, but over 200 bytes of text
    env.drain().await;
    let pdf_row = env.file(pdf).await;
    assert_eq!(pdf_row.status, "failed");
    assert!(
        pdf_row
            .last_error
            .as_deref()
            .unwrap()
            .ends_with("over the 1000-byte limit (storage.max_object_bytes)"),
        "{:?}",
        pdf_row.last_error
    );
    let txt_row = env.file(txt).await;
    assert_eq!(txt_row.status, "failed");
    assert!(
        txt_row
            .last_error
            .as_deref()
            .unwrap()
            .ends_with("over the 200-byte limit (extract.max_text_bytes)"),
        "{:?}",
        txt_row.last_error
    );
    assert_eq!(env.fake.requests(), 0);
}

#[tokio::test]
async fn a_pdf_encrypted_with_an_empty_user_password_is_read() {
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "restricted.pdf").await;
    env.drain().await;
    let row = env.file(id).await;
    assert_eq!(row.status, "completed", "{:?}", row.last_error);
    assert!(row
        .extracted_text
        .unwrap()
        .contains("The foghorn blasts for three seconds every thirty seconds in dense fog."));
}

#[tokio::test]
async fn unreachable_storage_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "notes.txt").await;
    // Same database and bucket, but the storage endpoint now points at a closed port.
    let mut settings = (*env.settings).clone();
    settings.storage.endpoint = format!("http://127.0.0.1:{closed}");
    let cut_off = ragworker::build_worker(
        std::sync::Arc::new(settings),
        env.pool.clone(),
        "cut-off".into(),
    )
    .await
    .unwrap();
    let (_, outcome) = cut_off.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Retrying { .. }), "{outcome:?}");
    let row = env.file(id).await;
    assert_eq!(row.status, "pending");
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .starts_with("storage unavailable"),
        "{:?}",
        row.last_error
    );
}

#[tokio::test]
async fn a_failure_warning_names_the_file() {
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "empty.txt").await;
    let out = env
        .command(&["backfill"], "unused.log")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("failed"))
        .unwrap_or_else(|| panic!("no failure warning: {stderr}"));
    // The line itself, not only its span, says which upload it was.
    let message = warning.rsplit_once(": ").map_or(warning, |(_, m)| m);
    assert!(
        message.contains("name=empty.txt") && message.contains(&id.to_string()),
        "{warning}"
    );
}

#[tokio::test]
async fn an_unreachable_database_says_what_was_refused_where() {
    let env = TestEnv::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.set_config([
        (
            "database",
            "url",
            format!("postgres://postgres:s3cret-pw@127.0.0.1:{port}/app").into(),
        ),
        ("database", "acquire_timeout_secs", 1.into()),
    ]);
    let (code, log) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(1), "{log}");
    // Not "pool timed out while waiting for an open connection".
    assert!(
        log.contains(&format!(
            "cannot connect to the database at 127.0.0.1:{port}/app"
        )) && log.contains("Connection refused"),
        "{log}"
    );
    assert!(
        !log.contains("s3cret-pw"),
        "the password is never printed: {log}"
    );
}

#[tokio::test]
async fn storage_without_credentials_names_the_settings_to_set() {
    let env = TestEnv::start().await;
    env.enqueue(Uuid::new_v4(), "guide.md").await;
    // Nothing anywhere in the SDK's chain: no settings, no environment, no profile files,
    // and instance metadata off (it would otherwise be probed at its link-local address).
    let mut cmd = env.command(&["backfill"], "no-credentials.log");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", env.dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            env.dir.path().join("no-credentials"),
        );
    let out = cmd.output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("no storage credentials found: set storage.access_key_id and storage.secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"),
        "{log}"
    );
    let pending: i64 =
        sqlx::query_scalar("select count(*) from files where processing_status = 'pending'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(pending, 1, "the file is untouched");
}

#[tokio::test]
async fn a_parser_panic_is_logged_as_one_json_event_and_the_file_is_still_read() {
    let env = TestEnv::with_config("[log]\nformat = \"json\"").await;
    let path = env.dir.path().join("tidal.pdf");
    std::fs::write(
        &path,
        crate::support::pdf::pdf_with_panicking_cmap("Tidal power stations turn the sea"),
    )
    .unwrap();
    let id = env.enqueue_path(Uuid::new_v4(), &path).await;
    let (code, stderr) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let row = env.file(id).await;
    assert_eq!(row.status, "completed", "{stderr}");
    assert!(row
        .extracted_text
        .unwrap_or_default()
        .contains("Tidal power stations"),);
    // The parser panicked (and was caught): one log event, in the log's format, instead of
    // the standard hook's lines on stderr.
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let panics: Vec<_> = events
        .iter()
        .filter(|e| e["message"] == "panicked")
        .collect();
    assert!(!panics.is_empty(), "{stderr}");
    assert!(
        panics[0]["location"]
            .as_str()
            .unwrap_or("")
            .contains(".rs:"),
        "{stderr}"
    );
}
