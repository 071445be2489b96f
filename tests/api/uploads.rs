//! Uploads that queue themselves: a trigger on Supabase Storage's `storage.objects` (here
//! the Supabase-shaped test database's) keeps `files` in step with the bucket.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::support::{fixture, TestEnv};

/// Supabase Storage's side of an upload: the object in the bucket, then its row in
/// storage.objects, written as Storage's own role.
struct Storage<'a> {
    env: &'a TestEnv,
    admin: PgConnection,
}

impl<'a> Storage<'a> {
    async fn new(env: &'a TestEnv) -> Self {
        let mut admin = PgConnection::connect(&env.superuser_url).await.unwrap();
        sqlx::query("insert into storage.buckets (id, name) values ($1, $1)")
            .bind(&env.bucket)
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query("set role supabase_storage_admin")
            .execute(&mut admin)
            .await
            .unwrap();
        Self { env, admin }
    }

    /// Uploads (or overwrites, with a new version) `fixture_name` at `path`.
    async fn upload(&mut self, owner: Option<Uuid>, path: &str, fixture_name: &str, version: &str) {
        let bytes = std::fs::read(fixture(fixture_name)).unwrap();
        let size = bytes.len();
        self.env
            .storage
            .put(&self.env.bucket, path, bytes, "text/plain")
            .await
            .unwrap();
        sqlx::query(
            "insert into storage.objects (bucket_id, name, owner_id, metadata, version)
             values ($1, $2, $3, jsonb_build_object('mimetype', 'text/plain', 'size', $4::bigint), $5)
             on conflict (bucket_id, name) do update
             set metadata = excluded.metadata, version = excluded.version, owner_id = excluded.owner_id",
        )
        .bind(&self.env.bucket)
        .bind(path)
        .bind(owner.map(|o| o.to_string()))
        .bind(size as i64)
        .bind(version)
        .execute(&mut self.admin)
        .await
        .unwrap();
    }

    /// Runs `sql` with `$1` = the bucket and `$2`, `$3`... = `args`.
    async fn execute(&mut self, sql: &str, args: &[&str]) {
        let mut query = sqlx::query(sql).bind(&self.env.bucket);
        for arg in args {
            query = query.bind(*arg);
        }
        query.execute(&mut self.admin).await.unwrap();
    }
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Registered {
    id: Uuid,
    user_id: Uuid,
    original_name: String,
    processing_status: String,
    attempts: i32,
    mime_type: Option<String>,
    file_size: Option<i64>,
}

async fn registered(env: &TestEnv, path: &str) -> Vec<Registered> {
    sqlx::query_as(
        "select id, user_id, original_name, processing_status::text as processing_status,
                attempts, mime_type, file_size
         from files where storage_bucket = $1 and storage_path = $2",
    )
    .bind(&env.bucket)
    .bind(path)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// A Supabase-shaped env whose bucket has `storage.register_uploads` on, migrated by the
/// binary as a user would.
async fn registering_env() -> TestEnv {
    let env = TestEnv::supabase("").await;
    env.set_storage_config([("register_uploads", vec![env.bucket.clone()].into())]);
    let (code, log) = env.run(&["migrate"]).await;
    assert_eq!(code, Some(0), "{log}");
    env
}

#[tokio::test]
async fn uploads_versions_moves_and_deletes_keep_files_in_step() {
    let env = registering_env().await;
    let alice = Uuid::new_v4();
    let mut storage = Storage::new(&env).await;
    let path = format!("{alice}/chat-1/notes.txt");
    storage.upload(Some(alice), &path, "notes.txt", "v1").await;
    let rows = registered(&env, &path).await;
    assert_eq!(rows.len(), 1, "one files row per upload");
    let file = &rows[0];
    assert_eq!(
        (
            file.user_id,
            file.original_name.as_str(),
            file.processing_status.as_str()
        ),
        (alice, "notes.txt", "pending")
    );
    assert_eq!(file.mime_type.as_deref(), Some("text/plain"));
    assert_eq!(
        file.file_size,
        Some(std::fs::metadata(fixture("notes.txt")).unwrap().len() as i64)
    );
    let id = file.id;
    env.drain().await;
    let first = env.file(id).await;
    assert_eq!(first.status, "completed");

    // Metadata touched without a new version (Storage records accesses): nothing to do.
    storage
        .execute(
            "update storage.objects set metadata = metadata || '{\"lastModified\": 1}'
             where bucket_id = $1 and name = $2",
            &[&path],
        )
        .await;
    assert_eq!(env.file(id).await.status, "completed");

    // Overwritten: the same row, pending again with a fresh attempt budget; the new text
    // replaces the old.
    storage.upload(Some(alice), &path, "guide.md", "v2").await;
    let rows = registered(&env, &path).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].id,
            rows[0].processing_status.as_str(),
            rows[0].attempts
        ),
        (id, "pending", 0)
    );
    env.drain().await;
    let second = env.file(id).await;
    assert_eq!(second.status, "completed");
    assert_ne!(second.extracted_text, first.extracted_text);
    let usage_rows = "select count(*) from usage_logs where metadata->>'file_id' = $1::text";
    let usage_before = env.count(usage_rows, id).await;
    assert_eq!(usage_before, 2, "one usage row per processing");

    // Moved: the row at the old place goes with its chunks, the new place is registered.
    let moved = format!("{alice}/chat-2/notes.txt");
    storage
        .execute(
            "update storage.objects set name = $2 where bucket_id = $1 and name = $3",
            &[&moved, &path],
        )
        .await;
    assert!(registered(&env, &path).await.is_empty());
    assert_eq!(env.chunk_count(id).await, 0);
    let rows = registered(&env, &moved).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].processing_status, "pending");

    // Deleted: the row and its chunks go; usage rows stay (money spent stays recorded).
    storage
        .execute(
            "delete from storage.objects where bucket_id = $1 and name = $2",
            &[&moved],
        )
        .await;
    assert!(registered(&env, &moved).await.is_empty());
    assert_eq!(env.count(usage_rows, id).await, usage_before);
}

#[tokio::test]
async fn uploads_that_break_the_rule_are_skipped_and_still_succeed() {
    let env = registering_env().await;
    let alice = Uuid::new_v4();
    let bob = Uuid::new_v4();
    let mut storage = Storage::new(&env).await;
    // Alice's upload into Bob's folder (a policy mistake in the app): stored, not registered.
    let into_bobs = format!("{bob}/x/notes.txt");
    storage
        .upload(Some(alice), &into_bobs, "notes.txt", "v1")
        .await;
    assert!(registered(&env, &into_bobs).await.is_empty());
    // No owner and no user folder: nobody to register it for.
    storage
        .upload(None, "shared/notes.txt", "notes.txt", "v1")
        .await;
    assert!(registered(&env, "shared/notes.txt").await.is_empty());
    // Uploaded with the service key into a user's folder: registered for that user.
    let for_alice = format!("{alice}/from-server/notes.txt");
    storage.upload(None, &for_alice, "notes.txt", "v1").await;
    let rows = registered(&env, &for_alice).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_id, alice);
    // Every object reached storage.objects (no upload failed because of ragworker).
    let mut admin = PgConnection::connect(&env.superuser_url).await.unwrap();
    let stored: i64 =
        sqlx::query_scalar("select count(*) from storage.objects where bucket_id = $1")
            .bind(&env.bucket)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(stored, 3);

    // Turned off again: the trigger stays (only storage.objects' owner may drop it) but
    // does nothing; uploads are left to the app.
    env.set_storage_config([("register_uploads", toml::Value::Array(vec![]))]);
    let (code, log) = env.run(&["migrate"]).await;
    assert_eq!(code, Some(0), "{log}");
    let later = format!("{alice}/later/notes.txt");
    storage.upload(Some(alice), &later, "notes.txt", "v1").await;
    assert!(registered(&env, &later).await.is_empty());
}

#[tokio::test]
async fn registering_uploads_needs_storage_objects() {
    let env = TestEnv::start().await;
    env.set_storage_config([("register_uploads", vec![env.bucket.clone()].into())]);
    let (code, log) = env.run(&["migrate"]).await;
    assert_eq!(code, Some(1));
    assert!(
        log.contains("storage.register_uploads needs Supabase Storage's storage.objects table"),
        "{log}"
    );
}
