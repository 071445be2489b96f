//! Test harness: a fresh database per test on the script-started Postgres, a fresh bucket on
//! the script-started S3 server, and a fake embeddings server per test.

#![allow(dead_code)] // each test module uses its own subset

pub mod fake_openai;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ragworker::config::Settings;
use ragworker::enqueue::{enqueue_file, Owner};
use ragworker::storage::S3Storage;
use ragworker::worker::{Outcome, Worker};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

pub use fake_openai::{FakeOpenAi, Fault};

pub const DIMENSIONS: usize = 256;

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through `bash scripts/test.sh`, which starts Postgres and S3")
    })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub struct TestEnv {
    pub settings: Arc<Settings>,
    /// The merged TOML behind `settings`, for `ragworker --config` in process tests.
    pub config_toml: String,
    pub pool: PgPool,
    pub fake: FakeOpenAi,
    pub worker: Arc<Worker>,
    pub storage: S3Storage,
    pub bucket: String,
    pub database_url: String,
}

/// Deep-merges TOML tables; `extra` wins.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl TestEnv {
    pub async fn start() -> Self {
        Self::with_config("").await
    }

    /// `extra` is TOML layered over the test defaults.
    pub async fn with_config(extra: &str) -> Self {
        let admin_url = required_env("RAGWORKER_TEST_DATABASE_URL");
        let s3 = required_env("RAGWORKER_TEST_S3_ENDPOINT");
        let suffix = Uuid::new_v4().simple().to_string();
        let db_name = format!("t_{suffix}");
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("admin connection");
        // The name is generated from a UUID above, so formatting it in is safe.
        sqlx::query(&format!("create database {db_name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.ok();
        let database_url = admin_url.rsplit_once('/').unwrap().0.to_string() + "/" + &db_name;
        let fake = FakeOpenAi::start(DIMENSIONS).await;
        let bucket = format!("t-{suffix}");

        let base = format!(
            r#"
[database]
url = "{database_url}"
max_connections = 20
[storage]
endpoint = "{s3}"
bucket = "{bucket}"
[chunking]
max_tokens = 40
overlap_tokens = 8
[embedding]
base_url = "{base_url}"
api_key = "{key}"
dimensions = {DIMENSIONS}
retry_min_delay_ms = 10
retry_max_delay_secs = 1
max_retries = 4
[queue]
lease_secs = 30
heartbeat_secs = 10
retry_base_secs = 1
retry_max_secs = 2
[worker]
poll_interval_secs = 1
shutdown_grace_secs = 5
[http]
listen = ""
"#,
            base_url = fake.base_url(),
            key = fake_openai::API_KEY,
        );
        let mut table: toml::Table = base.parse().unwrap();
        merge(&mut table, extra.parse().expect("extra config is TOML"));
        let config_toml = toml::to_string(&table).unwrap();
        let settings =
            Arc::new(Settings::from_toml_layers(&[&config_toml]).expect("test settings"));

        let pool = ragworker::db::connect(&settings.database).await.unwrap();
        ragworker::db::migrate(&pool, &settings.embedding)
            .await
            .unwrap();
        let storage = S3Storage::from_settings(&settings.storage).await;
        storage
            .client()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create test bucket");
        let worker = Arc::new(Self::build_worker(&settings, &pool, "test-worker-1").await);
        Self {
            settings,
            config_toml,
            pool,
            fake,
            worker,
            storage,
            bucket,
            database_url,
        }
    }

    async fn build_worker(settings: &Arc<Settings>, pool: &PgPool, id: &str) -> Worker {
        ragworker::build_worker(settings.clone(), pool.clone(), id.to_string())
            .await
            .unwrap()
    }

    /// Another in-process worker with its own identity on the same database.
    pub async fn another_worker(&self, id: &str) -> Arc<Worker> {
        Arc::new(Self::build_worker(&self.settings, &self.pool, id).await)
    }

    pub async fn enqueue(&self, user: Uuid, fixture_name: &str) -> Uuid {
        self.enqueue_path(user, &fixture(fixture_name)).await
    }

    pub async fn enqueue_path(&self, user: Uuid, path: &Path) -> Uuid {
        let owner = Owner {
            user_id: user,
            org_id: None,
            conversation_id: None,
        };
        enqueue_file(&self.pool, &self.storage, &self.bucket, owner, path)
            .await
            .unwrap()
    }

    /// Runs the step function until nothing is claimable.
    pub async fn drain(&self) -> Vec<(Uuid, Outcome)> {
        let mut out = Vec::new();
        while let Some(done) = self.worker.run_once().await.unwrap() {
            out.push(done);
        }
        out
    }

    pub async fn file(&self, id: Uuid) -> FileRow {
        sqlx::query_as(
            "select processing_status::text as status, attempts, last_error, chunk_count,
                    extracted_text, processed_at is not null as processed
             from files where id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    pub async fn count(&self, sql: &str, id: Uuid) -> i64 {
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn chunk_count(&self, file: Uuid) -> i64 {
        self.count(
            "select count(*) from document_chunks where file_id = $1",
            file,
        )
        .await
    }

    /// Writes the merged configuration for `ragworker --config`.
    pub fn write_config(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ragworker.toml");
        std::fs::write(&path, &self.config_toml).unwrap();
        path
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct FileRow {
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub chunk_count: i32,
    pub extracted_text: Option<String>,
    pub processed: bool,
}
