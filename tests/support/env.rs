//! The per-test environment: a fresh database on the script-started Postgres, a fresh bucket
//! on the script-started S3 server, a fake embeddings server, and an in-process worker and
//! the `ragworker` binary configured for them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ragworker::config::Settings;
use ragworker::enqueue::{enqueue_file, Owner};
use ragworker::storage::Storage;
use ragworker::worker::{Outcome, Worker};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::clusters::{PgCluster, SUPABASE_SQL};
use super::fake_openai::{self, FakeOpenAi};
use super::provision::{create_bucket, create_database, migrate};

pub const DIMENSIONS: usize = 256;

pub(super) fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through `bash scripts/test.sh`, which starts Postgres and S3")
    })
}

/// The all-MiniLM-L6-v2 directory for tests of the local provider. Tests fail rather than
/// skip without it: a skipped model test would let a broken embedder ship green.
pub fn model_dir() -> PathBuf {
    let dir = match std::env::var_os("RAGWORKER_TEST_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/ragworker/models/all-MiniLM-L6-v2")
        }
    };
    assert!(
        dir.join("model.safetensors").is_file(),
        "no model in {}: run `bash scripts/fetch_model.sh` (or set RAGWORKER_TEST_MODEL_DIR to a sentence-transformers snapshot)",
        dir.display()
    );
    dir
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
    pub storage: Storage,
    pub bucket: String,
    pub database_url: String,
    /// This env's database as a superuser (the same as `database_url` on plain Postgres).
    pub superuser_url: String,
    /// The private cluster of a Supabase-shaped env, held so that it stops with the env.
    _cluster: Option<PgCluster>,
    /// Holds the config file for `ragworker` processes; removed with the env.
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
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
    /// The user's `limit` best chunks for a question over all their files, as `ragworker
    /// search` finds them, and what embedding the question cost.
    pub async fn ask(
        &self,
        user: Uuid,
        question: &str,
        limit: i32,
    ) -> (Vec<ragworker::search::Hit>, ragworker::embed::Usage) {
        let worker = &self.worker;
        ragworker::search::search(
            &self.pool,
            &worker.embedder,
            &worker.settings.embedding,
            &worker.chunker,
            user,
            ragworker::search::Scope::User,
            question,
            0.0,
            limit,
        )
        .await
        .unwrap()
    }

    pub async fn start() -> Self {
        Self::with_config("").await
    }

    /// `extra` is TOML layered over the test defaults.
    pub async fn with_config(extra: &str) -> Self {
        Self::on_server(&required_env("RAGWORKER_TEST_DATABASE_URL"), extra).await
    }

    /// With a fake provider that enforces `rpm` requests and `tpm` tokens per minute.
    pub async fn with_limited_provider(extra: &str, rpm: u64, tpm: u64) -> Self {
        let admin_url = required_env("RAGWORKER_TEST_DATABASE_URL");
        Self::build(&admin_url, extra, Some((rpm, tpm)), None).await
    }

    /// Like `with_config`, on the Postgres server at `admin_url` (a private cluster).
    pub async fn on_server(admin_url: &str, extra: &str) -> Self {
        Self::build(admin_url, extra, None, None).await
    }

    /// A database set up the way Supabase sets one up (see `supabase.sql`), on a private
    /// cluster whose superuser is `supabase_admin`; the env connects as Supabase's
    /// `postgres` (no superuser, BYPASSRLS) and was migrated by the `ragworker migrate`
    /// binary, whose stderr is in `log("migrate.log")`.
    pub async fn supabase(extra: &str) -> Self {
        let cluster = PgCluster::start_as("supabase_admin");
        let admin_url = cluster.admin_url.clone();
        Self::build(&admin_url, extra, None, Some(cluster)).await
    }

    async fn build(
        admin_url: &str,
        extra: &str,
        limits: Option<(u64, u64)>,
        supabase: Option<PgCluster>,
    ) -> Self {
        let s3 = required_env("RAGWORKER_TEST_S3_ENDPOINT");
        let suffix = Uuid::new_v4().simple().to_string();
        let superuser_url = create_database(admin_url, &format!("t_{suffix}")).await;
        let database_url = if supabase.is_some() {
            let mut conn = sqlx::PgConnection::connect(&superuser_url).await.unwrap();
            sqlx::raw_sql(SUPABASE_SQL)
                .execute(&mut conn)
                .await
                .expect("Supabase-shaped setup");
            conn.close().await.ok();
            superuser_url.replacen("supabase_admin@", "postgres@", 1)
        } else {
            superuser_url.clone()
        };
        let fake = FakeOpenAi::start_with_limits(DIMENSIONS, limits).await;
        let bucket = format!("t-{suffix}");
        let dir = tempfile::tempdir().unwrap();

        let base = format!(
            r#"
[database]
url = "{database_url}"
max_connections = 20
[storage]
endpoint = "{s3}"
bucket = "{bucket}"
fs_root = "{fs_root}"
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
            fs_root = dir.path().join("storage").display(),
        );
        let mut table: toml::Table = base.parse().unwrap();
        merge(&mut table, extra.parse().expect("extra config is TOML"));
        let config_toml = toml::to_string(&table).unwrap();
        let settings =
            Arc::new(Settings::from_toml_layers(&[&config_toml]).expect("test settings"));
        let config_path = dir.path().join("ragworker.toml");
        std::fs::write(&config_path, &config_toml).unwrap();

        let pool = ragworker::db::connect(&settings.database).await.unwrap();
        if supabase.is_some() {
            // As a Supabase user would: the binary, as `postgres`.
            let log = std::fs::File::create(dir.path().join("migrate.log")).unwrap();
            let status = std::process::Command::new(env!("CARGO_BIN_EXE_ragworker"))
                .arg("--config")
                .arg(&config_path)
                .arg("migrate")
                .env_remove("DATABASE_URL")
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .status()
                .unwrap();
            assert!(
                status.success(),
                "ragworker migrate on the Supabase-shaped database: {}",
                std::fs::read_to_string(dir.path().join("migrate.log")).unwrap_or_default()
            );
        } else {
            migrate(&pool, &settings).await;
        }
        let storage = Storage::from_settings(&settings.storage).await.unwrap();
        create_bucket(&storage, &bucket).await;
        let worker = Arc::new(Self::build_worker(&settings, &pool, "test-worker-1").await);
        Self {
            superuser_url,
            _cluster: supabase,
            dir,
            config_path,
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

    /// An in-process worker on the same database with `extra` TOML over this env's
    /// configuration (another model, another chunk size).
    pub async fn worker_with(&self, id: &str, extra: &str) -> Arc<Worker> {
        let settings =
            Arc::new(Settings::from_toml_layers(&[&self.config_toml, extra]).expect("settings"));
        Arc::new(Self::build_worker(&settings, &self.pool, id).await)
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

    /// Makes a file that waits for its retry time due now.
    pub async fn make_due(&self, id: Uuid) {
        sqlx::query("update files set next_attempt_at = now() where id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .unwrap();
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

    /// A `ragworker` process on this env's configuration; stderr goes to `log_name` in the
    /// env's directory. Killed if still running when dropped.
    pub fn command(&self, args: &[&str], log_name: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ragworker"));
        cmd.arg("--config").arg(&self.config_path).args(args);
        // The test's own standard variables must not override the config file.
        for var in [
            "DATABASE_URL",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
        ] {
            cmd.env_remove(var);
        }
        let log = std::fs::File::create(self.dir.path().join(log_name)).unwrap();
        cmd.stderr(log)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `ragworker ARGS` on the env's config file; returns its exit code and stderr.
    pub async fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        // `output()` captures stderr itself (the log file stays empty).
        let out = self.command(args, "unused.log").output().await.unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Rewrites the env's config file (what `ragworker` processes read) with these [storage]
    /// keys; the in-process settings stay as they were.
    pub fn set_storage_config<const N: usize>(&self, keys: [(&str, toml::Value); N]) {
        self.set_config(keys.map(|(k, v)| ("storage", k, v)));
    }

    /// Rewrites the env's config file with these (section, key, value) settings.
    pub fn set_config<const N: usize>(&self, keys: [(&str, &str, toml::Value); N]) {
        let mut table: toml::Table = self.config_toml.parse().unwrap();
        for (section, key, value) in keys {
            let section = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(Default::default()));
            section.as_table_mut().unwrap().insert(key.into(), value);
        }
        std::fs::write(&self.config_path, toml::to_string(&table).unwrap()).unwrap();
    }

    pub fn log(&self, log_name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(log_name)).unwrap_or_default()
    }

    /// Writes `n` small distinct text documents and enqueues them.
    pub async fn enqueue_generated(&self, user: Uuid, n: usize) -> Vec<Uuid> {
        let words = [
            "amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "iris",
            "juniper",
        ];
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let path = self.dir.path().join(format!("doc-{i}.txt"));
            let body = format!(
                "Document {i} describes the {a} {b} survey number {i}. \
                 The {c} team measured {i} samples near the {a} ridge and logged them carefully. \
                 Results for sample set {i} were filed under {b} and {c}.",
                a = words[i % 10],
                b = words[(i / 10) % 10],
                c = words[(i / 100) % 10],
            );
            std::fs::write(&path, body).unwrap();
            ids.push(self.enqueue_path(user, &path).await);
        }
        ids
    }
}

/// A files row as tests look at it.
#[derive(Debug, sqlx::FromRow)]
pub struct FileRow {
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub chunk_count: i32,
    pub extracted_text: Option<String>,
    pub processed: bool,
}
