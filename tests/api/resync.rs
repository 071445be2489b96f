//! Documents change: re-processing embeds only what changed, sends nothing for what did
//! not, never lets an older version complete over a newer one, and cleans up rows whose
//! objects are gone.

use std::collections::HashSet;
use std::time::Duration;

use ragworker::chunk::sha256_hex;
use ragworker::db::Reembed;
use ragworker::storage::Storage;
use ragworker::worker::{Outcome, Worker};
use sqlx::Connection;
use uuid::Uuid;

use crate::support::{pdf::pdf, wait_until, TestEnv};

/// A chunk as a reader and a search see it: index, content, page, heading, tokens, vector
/// (as text) and the hash of what it embedded.
type ChunkRow = (
    i32,
    String,
    Option<i32>,
    Option<String>,
    i32,
    String,
    String,
);

async fn chunk_rows(env: &TestEnv, file: Uuid) -> Vec<ChunkRow> {
    sqlx::query_as(
        "select chunk_index, content, page_number, heading, token_count, embedding::text,
                content_hash
         from document_chunks where file_id = $1 order by chunk_index",
    )
    .bind(file)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

async fn hashes(env: &TestEnv, file: Uuid) -> HashSet<String> {
    chunk_rows(env, file)
        .await
        .into_iter()
        .map(|r| r.6)
        .collect()
}

/// Uploads `bytes` as a new file named `name`.
async fn upload(env: &TestEnv, user: Uuid, name: &str, bytes: &[u8]) -> Uuid {
    let path = env.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    env.enqueue_path(user, &path).await
}

/// Overwrites the file's object with `bytes`, as a re-upload does.
async fn overwrite(env: &TestEnv, file: Uuid, bytes: &[u8]) {
    let (bucket, path): (String, String) =
        sqlx::query_as("select storage_bucket, storage_path from files where id = $1")
            .bind(file)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    env.storage
        .put(&bucket, &path, bytes.to_vec(), "application/octet-stream")
        .await
        .unwrap();
}

/// Queues the file again, as an app does after a re-upload.
async fn requeue(env: &TestEnv, file: Uuid) {
    sqlx::query("update files set processing_status = 'pending' where id = $1")
        .bind(file)
        .execute(&env.pool)
        .await
        .unwrap();
}

async fn drain_with(worker: &Worker) {
    while worker.run_once().await.unwrap().is_some() {}
}

/// The hashes of what the fake provider received since `from` inputs.
fn sent_since(env: &TestEnv, from: usize) -> Vec<String> {
    env.fake.received()[from..]
        .iter()
        .map(|t| sha256_hex(t.as_bytes()))
        .collect()
}

/// The latest usage row of a file: tokens and metadata.
async fn last_usage(env: &TestEnv, file: Uuid) -> (i64, serde_json::Value) {
    sqlx::query_as(
        "select tokens_used, metadata from usage_logs where metadata->>'file_id' = $1::text
         order by created_at desc, (metadata->>'claim_seq')::bigint desc limit 1",
    )
    .bind(file)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// A manual of twelve sections, two paragraphs each; `edit` rewrites the first paragraph
/// of section 6.
fn manual(edit: bool) -> String {
    let words = [
        "valve", "pump", "filter", "gauge", "hose", "seal", "bracket", "rotor", "nozzle", "sensor",
        "gasket", "lever",
    ];
    let mut text = String::from("# Maintenance manual\n\n");
    for s in 0..12 {
        text.push_str(&format!("## Section {s}: the {}\n\n", words[s]));
        if edit && s == 6 {
            text.push_str(
                "Revised procedure: drain the circuit completely, isolate the supply, and \
                 replace the seal kit before restarting; record the new pressure readings \
                 in the log book and sign the entry.\n\n",
            );
        } else {
            text.push_str(&format!(
                "Inspect the {} every {} hours and clean the {} with a soft brush before \
                 checking the {} for wear, cracks or leaks around the {}.\n\n",
                words[s],
                100 + s * 25,
                words[(s + 3) % 12],
                words[(s + 5) % 12],
                words[(s + 7) % 12]
            ));
        }
        text.push_str(&format!(
            "Torque the {} bolts to {} newton metres and note the date, the operator and the \
             serial number of the {} in the maintenance record.\n\n",
            words[(s + 1) % 12],
            20 + s,
            words[(s + 2) % 12]
        ));
    }
    text
}

/// Three pages of running text; `edit` changes one word in the middle page (a corrected
/// figure), as a typical revision of a PDF does.
fn report_pdf(edit: bool) -> Vec<u8> {
    let mut words = Vec::new();
    for i in 0..1500 {
        words.push(match i % 9 {
            0 => format!("quarter{}", i / 9),
            3 => "harbour".to_string(),
            5 => "tonnage".to_string(),
            _ => ["the", "berth", "crane", "pilot", "tide", "quay"][i % 6].to_string(),
        });
    }
    if edit {
        words[750] = "quarter9999".to_string();
    }
    pdf(&words.join(" "))
}

/// Asserts that only new chunks were sent and that the file ends as a fresh ingestion of
/// the same bytes would.
async fn assert_edit_sends_only_changed_chunks(env: &TestEnv, name: &str, v1: &[u8], v2: &[u8]) {
    let user = Uuid::new_v4();
    let id = upload(env, user, name, v1).await;
    env.drain().await;
    let old = hashes(env, id).await;
    let from = env.fake.received().len();

    overwrite(env, id, v2).await;
    requeue(env, id).await;
    env.drain().await;
    let sent = sent_since(env, from);
    let new = hashes(env, id).await;
    let changed: HashSet<String> = new.difference(&old).cloned().collect();
    assert!(!changed.is_empty(), "{name}: the edit changed some chunk");
    assert_eq!(
        sent.iter().cloned().collect::<HashSet<_>>(),
        changed,
        "{name}: exactly the changed chunks were sent"
    );
    assert_eq!(sent.len(), changed.len(), "{name}: each once");
    println!(
        "{name}: {} of {} chunks embedded again",
        changed.len(),
        new.len()
    );
    assert!(
        changed.len() * 3 <= new.len(),
        "{name}: {} of {} chunks changed",
        changed.len(),
        new.len()
    );
    let (tokens, metadata) = last_usage(env, id).await;
    assert!(tokens > 0);
    assert_eq!(metadata["chunks_embedded"], changed.len());
    assert_eq!(metadata["chunks_reused"], new.len() - changed.len());

    // The same bytes ingested from scratch give the same chunks and vectors.
    let fresh = upload(env, user, &format!("fresh-{name}"), v2).await;
    env.drain().await;
    assert_eq!(
        chunk_rows(env, id).await,
        chunk_rows(env, fresh).await,
        "{name}"
    );
}

#[tokio::test]
async fn an_edited_markdown_file_sends_only_its_changed_chunks() {
    let env = TestEnv::start().await;
    assert_edit_sends_only_changed_chunks(
        &env,
        "manual.md",
        manual(false).as_bytes(),
        manual(true).as_bytes(),
    )
    .await;
}

#[tokio::test]
async fn an_edited_pdf_sends_only_its_changed_chunks() {
    let env = TestEnv::start().await;
    let (v1, v2) = (report_pdf(false), report_pdf(true));
    assert_edit_sends_only_changed_chunks(&env, "report.pdf", &v1, &v2).await;
    let pages: Option<i32> = sqlx::query_scalar("select max(page_number) from document_chunks")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(pages, Some(3), "a multi-page PDF");
}

#[tokio::test]
async fn an_unchanged_reupload_sends_nothing() {
    let env = TestEnv::start().await;
    let id = upload(&env, Uuid::new_v4(), "manual.md", manual(false).as_bytes()).await;
    env.drain().await;
    let chunk_ids =
        "select array_agg(id order by chunk_index)::text from document_chunks where file_id = $1";
    let ids_before: String = sqlx::query_scalar(chunk_ids)
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let requests = env.fake.requests();
    // The same bytes uploaded again: the same version (S3's ETag of the same bytes).
    overwrite(&env, id, manual(false).as_bytes()).await;
    requeue(&env, id).await;
    env.drain().await;
    // A new version of the same bytes (a versioned bucket): read, hashed, found the same.
    sqlx::query("update files set storage_version = 'etag:another' where id = $1")
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
    requeue(&env, id).await;
    env.drain().await;
    assert_eq!(env.fake.requests(), requests, "nothing was sent");
    let row = env.file(id).await;
    assert_eq!(row.status, "completed");
    let ids_after: String = sqlx::query_scalar(chunk_ids)
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(ids_before, ids_after, "the chunks were left as they were");
    let usage_rows = env
        .count(
            "select count(*) from usage_logs where metadata->>'file_id' = $1::text",
            id,
        )
        .await;
    assert_eq!(usage_rows, 1, "no usage row for what cost nothing");
}

#[tokio::test]
async fn a_chunk_size_change_embeds_only_chunks_whose_text_changed() {
    let env = TestEnv::start().await;
    // Short sections fit the old and the new size alike; the long one is cut differently.
    let mut text = String::from("# Guide\n\n");
    for s in 0..6 {
        text.push_str(&format!(
            "## Step {s}\n\nTurn dial {s} to position {} and wait.\n\n",
            s * 3
        ));
    }
    text.push_str("## Background\n\n");
    for p in 0..6 {
        text.push_str(&format!(
            "Paragraph {p} of the background explains why the dial positions matter for \
             calibration run {p}, and what the operator should record afterwards.\n\n"
        ));
    }
    let id = upload(&env, Uuid::new_v4(), "guide.md", text.as_bytes()).await;
    env.drain().await;
    let old = hashes(&env, id).await;
    let from = env.fake.received().len();

    let resized = env
        .worker_with("resized", "[chunking]\nmax_tokens = 64\noverlap_tokens = 8")
        .await;
    let plan = ragworker::db::reembed(&env.pool, &resized.settings.embedding, Reembed::All)
        .await
        .unwrap();
    assert_eq!(plan.files_queued, 1);
    drain_with(&resized).await;
    let new = hashes(&env, id).await;
    let sent: HashSet<String> = sent_since(&env, from).into_iter().collect();
    let changed: HashSet<String> = new.difference(&old).cloned().collect();
    assert_eq!(
        sent, changed,
        "only chunks whose text changed were embedded"
    );
    println!(
        "chunk size 40 -> 64: {} of {} chunks embedded again",
        changed.len(),
        new.len()
    );
    assert!(
        !changed.is_empty() && changed.len() < new.len(),
        "{} of {}",
        changed.len(),
        new.len()
    );
    let (_, metadata) = last_usage(&env, id).await;
    assert_eq!(metadata["chunks_reused"], new.len() - changed.len());
}

#[tokio::test]
async fn a_model_change_embeds_everything_again() {
    let env = TestEnv::start().await;
    let id = upload(&env, Uuid::new_v4(), "manual.md", manual(false).as_bytes()).await;
    env.drain().await;
    let chunks = env.chunk_count(id).await as usize;
    let from = env.fake.received().len();
    let other = env
        .worker_with("large", "[embedding]\nmodel = \"text-embedding-3-large\"")
        .await;
    let plan = ragworker::db::reembed(&env.pool, &other.settings.embedding, Reembed::Stale)
        .await
        .unwrap();
    assert_eq!(plan.files_queued, 1);
    drain_with(&other).await;
    assert_eq!(sent_since(&env, from).len(), chunks, "every chunk, once");
    let (_, metadata) = last_usage(&env, id).await;
    assert_eq!(metadata["chunks_reused"], 0);
    let models: Vec<String> =
        sqlx::query_scalar("select distinct embedding_model from document_chunks")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(models, ["text-embedding-3-large"]);
}

#[tokio::test]
async fn two_users_with_the_same_document_never_share_vectors() {
    let env = TestEnv::start().await;
    let doc = manual(false);
    let a = upload(&env, Uuid::new_v4(), "manual.md", doc.as_bytes()).await;
    env.drain().await;
    let from = env.fake.received().len();
    let b = upload(&env, Uuid::new_v4(), "manual.md", doc.as_bytes()).await;
    env.drain().await;
    let chunks = env.chunk_count(b).await as usize;
    assert_eq!(chunks, env.chunk_count(a).await as usize);
    assert_eq!(
        sent_since(&env, from).len(),
        chunks,
        "the second user's chunks were all embedded for them"
    );
}

#[tokio::test]
async fn a_new_version_arriving_mid_flight_ends_with_the_new_versions_chunks() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let id = upload(&env, user, "manual.md", manual(false).as_bytes()).await;
    env.fake.set_latency(Duration::from_millis(1500));
    let worker = env.worker.clone();
    let first = tokio::spawn(async move { worker.run_once().await.unwrap().unwrap().1 });
    wait_until(Duration::from_secs(10), "a request in flight", || async {
        env.fake
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
    })
    .await;
    // Replaced in storage while the old bytes are being embedded (plain S3: nothing tells
    // the database).
    overwrite(&env, id, manual(true).as_bytes()).await;
    let outcome = first.await.unwrap();
    let Outcome::Retrying { error, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        error.contains("the object changed while it was being processed"),
        "{error}"
    );
    assert_eq!(
        env.chunk_count(id).await,
        0,
        "the old version's chunks were not written"
    );
    env.fake.set_latency(Duration::ZERO);
    env.drain().await;
    let row = env.file(id).await;
    assert_eq!(row.status, "completed");
    assert_eq!(row.attempts, 1, "the superseded attempt was refunded");
    let fresh = upload(&env, user, "fresh.md", manual(true).as_bytes()).await;
    env.drain().await;
    assert_eq!(chunk_rows(&env, id).await, chunk_rows(&env, fresh).await);
}

/// Deletes an object behind the database's back.
async fn delete_object(env: &TestEnv, file: Uuid) {
    let path: String = sqlx::query_scalar("select storage_path from files where id = $1")
        .bind(file)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let Storage::S3(s3) = &env.storage else {
        panic!("the tests use S3")
    };
    s3.client()
        .delete_object()
        .bucket(&env.bucket)
        .key(path)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn cleanup_removes_exactly_the_rows_whose_objects_are_gone() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let kept = env.enqueue(user, "guide.md").await;
    let gone = env.enqueue(user, "notes.txt").await;
    let busy = env.enqueue(user, "page.html").await;
    env.drain().await;
    delete_object(&env, gone).await;
    delete_object(&env, busy).await;
    // A worker holds this one: its row is never touched.
    sqlx::query(
        "update files set processing_status = 'processing', locked_by = 'elsewhere',
                          locked_until = now() + interval '1 hour' where id = $1",
    )
    .bind(busy)
    .execute(&env.pool)
    .await
    .unwrap();
    let usage_rows = "select count(*) from usage_logs";
    let usage_before: i64 = sqlx::query_scalar(usage_rows)
        .fetch_one(&env.pool)
        .await
        .unwrap();

    let out = env
        .command(&["cleanup", "--dry-run"], "dry.log")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", env.log("dry.log"));
    assert!(
        stdout.contains(&format!("would remove\t{gone}\t")),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 files whose objects are gone"),
        "{stdout}"
    );
    assert!(env.chunk_count(gone).await > 0, "a dry run removes nothing");

    let out = env
        .command(&["cleanup"], "cleanup.log")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", env.log("cleanup.log"));
    assert!(stdout.contains(&format!("removed\t{gone}\t")), "{stdout}");
    let rows: Vec<Uuid> = sqlx::query_scalar("select id from files order by created_at")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        rows.iter().copied().collect::<HashSet<_>>(),
        HashSet::from([kept, busy])
    );
    assert_eq!(env.chunk_count(gone).await, 0, "its chunks went with it");
    assert!(env.chunk_count(kept).await > 0);
    let usage_after: i64 = sqlx::query_scalar(usage_rows)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(usage_after, usage_before, "usage rows stay");
}

#[tokio::test]
async fn the_sql_cleanup_reads_supabase_storage_objects() {
    let env = TestEnv::supabase("").await;
    let user = Uuid::new_v4();
    let listed = env.enqueue(user, "guide.md").await;
    let unlisted = env.enqueue(user, "notes.txt").await;
    env.drain().await;
    // Only one of the two objects is in storage.objects (the other was deleted through
    // Storage's API, which removes its row).
    let mut admin = sqlx::PgConnection::connect(&env.superuser_url)
        .await
        .unwrap();
    sqlx::query("insert into storage.buckets (id, name) values ($1, $1)")
        .bind(&env.bucket)
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(
        "insert into storage.objects (bucket_id, name)
         select storage_bucket, storage_path from files where id = $1",
    )
    .bind(listed)
    .execute(&mut admin)
    .await
    .unwrap();
    let dry: Vec<Uuid> =
        sqlx::query_scalar("select file_id from ragworker_cleanup_orphaned_files(true)")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(dry, [unlisted]);
    assert!(
        env.chunk_count(unlisted).await > 0,
        "a dry run removes nothing"
    );
    let removed: Vec<Uuid> =
        sqlx::query_scalar("select file_id from ragworker_cleanup_orphaned_files()")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(removed, [unlisted]);
    assert_eq!(env.chunk_count(unlisted).await, 0);
    assert!(env.chunk_count(listed).await > 0);
}
