//! Connecting, migrating and the start-up checks that refuse to work against a database
//! that would make every file fail late (after paying for its embeddings).

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::{DatabaseSettings, EmbeddingSettings, SearchSettings, StorageSettings};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The worker's pool, on `database.url` (a transaction pooler may be in between).
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    open_pool(
        settings,
        settings.url.expose_secret(),
        settings.max_connections,
    )
    .await
}

/// A small pool on `database.direct_url` for what needs a session of its own: `migrate`
/// (sqlx's migrator takes a session advisory lock and prepares named statements).
pub async fn connect_direct(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    open_pool(settings, settings.direct_url().expose_secret(), 2).await
}

async fn open_pool(
    settings: &DatabaseSettings,
    url: &str,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let opened = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .connect(url)
        .await;
    match opened {
        // sqlx reports a refused or unreachable server as a pool timeout; one plain
        // connection attempt says what really failed ("Connection refused", a bad password).
        Err(sqlx::Error::PoolTimedOut) => {
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
                Ok(Err(real)) => Err(real),
                _ => Err(sqlx::Error::PoolTimedOut),
            }
        }
        other => other,
    }
}

/// `host:port/database` of a connection string, for messages (never its password).
pub fn server_of(url: &secrecy::SecretString) -> String {
    match url
        .expose_secret()
        .parse::<sqlx::postgres::PgConnectOptions>()
    {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        ),
        Err(_) => "an unparsable URL".to_string(),
    }
}

/// Whether `database.url` leads to a transaction-mode pooler, found without LISTEN: one
/// connection notes its server process, a second opens a transaction (holding a server),
/// and the first asks again. Directly or through a session pooler the first keeps its own
/// server; through a transaction pooler it is handed another one, or (a pool of one) must
/// wait for the held one, which the short timeout catches. Any failure counts as "no":
/// the LISTEN check that follows still catches notifications that do not arrive.
///
/// A pooler may, by chance of which idle server it hands out, give the first connection
/// its old server back (seen under load: a listening `run` behind PgBouncer, and another
/// client's query failing on its notification). A direct connection never changes server,
/// so the probe is asked three times and any change means a pooler.
pub async fn behind_transaction_pooler(settings: &DatabaseSettings) -> bool {
    for _ in 0..3 {
        if server_changes(settings).await {
            return true;
        }
    }
    false
}

/// One probe of `behind_transaction_pooler`.
async fn server_changes(settings: &DatabaseSettings) -> bool {
    let url = settings.url.expose_secret();
    let probe = async {
        let mut first = PgConnection::connect(url).await?;
        let pid = "select pg_backend_pid()";
        let before: i32 = sqlx::query_scalar(pid)
            .persistent(false)
            .fetch_one(&mut first)
            .await?;
        let mut second = PgConnection::connect(url).await?;
        let mut held = Connection::begin(&mut second).await?;
        sqlx::query_scalar::<_, i32>(pid)
            .persistent(false)
            .fetch_one(&mut *held)
            .await?;
        let again = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query_scalar::<_, i32>(pid)
                .persistent(false)
                .fetch_one(&mut first),
        )
        .await;
        held.rollback().await?;
        Ok::<_, sqlx::Error>(match again {
            Ok(after) => after? != before,
            Err(_) => true,
        })
    };
    match tokio::time::timeout(Duration::from_secs(10), probe).await {
        Ok(Ok(pooled)) => pooled,
        _ => false,
    }
}

/// Applies the migrations, fixes the embedding column to the configured dimension, sets the
/// full-text configuration and records which buckets files rows may name.
pub async fn migrate(
    pool: &PgPool,
    embedding: &EmbeddingSettings,
    storage: &StorageSettings,
    search: &SearchSettings,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    // One `migrate` at a time per database (replicas often all migrate as they start): the
    // steps around sqlx's own locked migrator would otherwise run side by side (two
    // `create extension ... with schema extensions` can collide on a duplicate key; two
    // dimension changes each rebuild the index). A session lock on this connection, which
    // is a direct or session one; released on every way out.
    sqlx::query("select pg_advisory_lock(hashtext('ragworker_migrate'))")
        .execute(&mut *conn)
        .await?;
    let migrated = migrate_locked(&mut conn, embedding, storage, search).await;
    let unlocked = sqlx::query("select pg_advisory_unlock(hashtext('ragworker_migrate'))")
        .execute(&mut *conn)
        .await;
    migrated?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(
    conn: &mut PgConnection,
    embedding: &EmbeddingSettings,
    storage: &StorageSettings,
    search: &SearchSettings,
) -> anyhow::Result<()> {
    install_vector(&mut *conn).await?;
    // On Supabase the `auth` schema belongs to Supabase, which already lets `authenticated`
    // use it; the first migration's `grant usage on schema auth` (needed on plain Postgres)
    // is then a no-op that Postgres reports with a WARNING ("no privileges were granted for
    // auth"), and that migration cannot be edited. Warnings are silenced for the migrations
    // in that case only, and the privilege the grant was for is checked below instead.
    let foreign_auth: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_namespace n where n.nspname = 'auth'
                          and not pg_has_role(current_user, n.nspowner, 'MEMBER'))",
    )
    .fetch_one(&mut *conn)
    .await?;
    if foreign_auth {
        sqlx::query("set client_min_messages = error")
            .execute(&mut *conn)
            .await?;
    }
    let migrated = MIGRATOR.run(&mut *conn).await;
    if foreign_auth {
        sqlx::query("reset client_min_messages")
            .execute(&mut *conn)
            .await?;
    }
    migrated?;
    if foreign_auth {
        let usable: bool = sqlx::query_scalar(
            "select exists (select 1 from pg_roles where rolname = 'authenticated')
                    and has_schema_privilege('authenticated', 'auth', 'usage')",
        )
        .fetch_one(&mut *conn)
        .await?;
        if !usable {
            anyhow::bail!("role authenticated may not use schema auth, so Row Level Security policies (auth.uid()) fail for app users; grant it as the schema's owner: grant usage on schema auth to authenticated");
        }
    }
    sqlx::query("select ragworker_set_embedding_dimension($1)")
        .bind(embedding.dimensions as i32)
        .execute(&mut *conn)
        .await
        .map_err(own_message)?;
    // Rebuilds the full-text index only when the configuration changed.
    sqlx::query("select ragworker_set_text_search_config($1::regconfig)")
        .bind(&search.text_search_config)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "search.text_search_config = {:?}: {}",
                search.text_search_config,
                own_message(e)
            )
        })?;
    record_buckets(conn, storage).await.map_err(own_message)?;
    Ok(())
}

/// Our SQL functions raise messages that say what to do; sqlx would wrap them in its own.
fn own_message(e: sqlx::Error) -> anyhow::Error {
    match e {
        sqlx::Error::Database(db) => anyhow::anyhow!("{}", db.message()),
        other => other.into(),
    }
}

/// Creates pgvector in the `extensions` schema where there is one on the search_path
/// (Supabase keeps extensions there); the first migration's plain `create extension if not
/// exists vector` would put it in the first schema of the search_path, public. Off the
/// search_path the migrations could not name its types, so then it is left to them.
async fn install_vector(conn: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    let (installed, extensions_schema): (bool, bool) = sqlx::query_as(
        "select exists (select 1 from pg_extension where extname = 'vector'),
                'extensions' = any(current_schemas(false))",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !installed && extensions_schema {
        sqlx::query("create extension if not exists vector with schema extensions")
            .execute(&mut *conn)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the vector extension in schema extensions (on Supabase: enable it under Database > Extensions): {e}"))?;
    }
    Ok(())
}

/// Writes the configured buckets, ownership rule and self-registering buckets to
/// `ragworker_buckets`, which the triggers read (the configuration is the source, the table
/// its copy), and installs or removes the trigger on `storage.objects`.
async fn record_buckets(
    conn: &mut PgConnection,
    storage: &StorageSettings,
) -> Result<(), sqlx::Error> {
    let buckets: Vec<String> = storage
        .allowed_buckets()
        .into_iter()
        .map(String::from)
        .collect();
    let mut tx = Connection::begin(&mut *conn).await?;
    sqlx::query("delete from ragworker_buckets where bucket <> all($1)")
        .bind(&buckets)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into ragworker_buckets (bucket, ownership, register_uploads)
         select b, $2, b = any($3) from unnest($1::text[]) b
         on conflict (bucket) do update
         set ownership = excluded.ownership, register_uploads = excluded.register_uploads",
    )
    .bind(&buckets)
    .bind(storage.ownership.as_str())
    .bind(&storage.register_uploads)
    .execute(&mut *tx)
    .await?;
    sqlx::query("select ragworker_set_upload_trigger($1)")
        .bind(!storage.register_uploads.is_empty())
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("the database has no pgvector extension with halfvec (pgvector >= 0.7 is required); run `ragworker migrate` on a server with pgvector installed")]
    NoVector,
    #[error("pgvector {0} is too old: halfvec needs pgvector >= 0.7")]
    OldVector(String),
    #[error("the database schema is not migrated (missing: {0}); run `ragworker migrate`")]
    NotMigrated(String),
    #[error("the database schema is older than this ragworker; run `ragworker migrate`")]
    MigrationsPending,
    #[error("document_chunks.embedding has dimension {column}, but embedding.dimensions is {configured}; run `ragworker migrate` (empty table) or `ragworker backfill --reembed` after changing the model")]
    DimensionMismatch { column: i32, configured: u32 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Checks extension, schema and embedding dimension before any file is claimed.
pub async fn preflight(pool: &PgPool, embedding: &EmbeddingSettings) -> Result<(), PreflightError> {
    // Unnamed statements in one transaction: see `queue`.
    let mut tx = pool.begin().await?;
    preflight_checks(&mut tx, embedding).await?;
    tx.commit().await?;
    Ok(())
}

async fn preflight_checks(
    conn: &mut PgConnection,
    embedding: &EmbeddingSettings,
) -> Result<(), PreflightError> {
    let version: Option<String> =
        sqlx::query_scalar("select extversion from pg_extension where extname = 'vector'")
            .persistent(false)
            .fetch_optional(&mut *conn)
            .await?;
    let version = version.ok_or(PreflightError::NoVector)?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (0, 7) {
        return Err(PreflightError::OldVector(version));
    }
    let missing: Vec<String> = sqlx::query_scalar(
        "select t from unnest(array['files', 'document_chunks', 'usage_logs']) t
         where to_regclass('public.' || t) is null",
    )
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?;
    if !missing.is_empty() {
        return Err(PreflightError::NotMigrated(missing.join(", ")));
    }
    // Errors here are reported as they are: a role that may not read the table (the worker
    // connecting as service_role before it was granted) must not look like an old schema.
    let applied: Vec<i64> =
        match sqlx::query_scalar("select version from _sqlx_migrations where success")
            .persistent(false)
            .fetch_all(&mut *conn)
            .await
        {
            Ok(applied) => applied,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Err(PreflightError::NotMigrated("_sqlx_migrations".into()))
            }
            Err(e) => return Err(e.into()),
        };
    if MIGRATOR.iter().any(|m| !applied.contains(&m.version)) {
        return Err(PreflightError::MigrationsPending);
    }
    let column = embedding_dimension(&mut *conn).await?;
    if column != embedding.dimensions as i32 {
        return Err(PreflightError::DimensionMismatch {
            column,
            configured: embedding.dimensions,
        });
    }
    Ok(())
}

/// The dimension `document_chunks.embedding` was declared with.
async fn embedding_dimension(conn: &mut sqlx::PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "select atttypmod from pg_attribute
         where attrelid = 'public.document_chunks'::regclass and attname = 'embedding'",
    )
    .persistent(false)
    .fetch_one(conn)
    .await
}

/// What `backfill --reembed` re-embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reembed {
    /// Completed files with chunks from another model than the configured one.
    Stale,
    /// Every completed file.
    All,
}

/// What `reembed` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReembedPlan {
    /// `Some((old, new))` when the embedding column changed dimension.
    pub dimension_change: Option<(i32, i32)>,
    pub chunks_dropped: u64,
    pub files_queued: u64,
}

impl std::fmt::Display for ReembedPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((old, new)) = self.dimension_change {
            write!(
                f,
                "embedding dimension {old} -> {new}: dropped {} chunks and the HNSW index (built again by the index policy); ",
                self.chunks_dropped
            )?;
        }
        write!(
            f,
            "{} completed files queued to re-embed",
            self.files_queued
        )
    }
}

/// Queues completed files again for the configured model, in one transaction. Chunks of
/// the same dimension stay searchable until each file's new chunks replace them (the
/// completion transaction swaps them); a new dimension cannot share the column, so then all
/// chunks go first and the column and index are rebuilt. Run it with the old model's
/// workers stopped, or they may complete files with the old model meanwhile.
pub async fn reembed(
    pool: &PgPool,
    embedding: &EmbeddingSettings,
    scope: Reembed,
) -> Result<ReembedPlan, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Two operators running this at once would each rebuild the index.
    sqlx::query("select pg_advisory_xact_lock(hashtext('ragworker_reembed'))")
        .persistent(false)
        .execute(&mut *tx)
        .await?;
    let column = embedding_dimension(&mut tx).await?;
    let dim = embedding.dimensions as i32;
    let mut plan = ReembedPlan {
        dimension_change: None,
        chunks_dropped: 0,
        files_queued: 0,
    };
    if column != dim {
        plan.dimension_change = Some((column, dim));
        plan.chunks_dropped = sqlx::query("delete from document_chunks")
            .persistent(false)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("select ragworker_set_embedding_dimension($1)")
            .bind(dim)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
    }
    plan.files_queued =
        crate::queue::Queue::requeue_completed(&mut *tx, scope == Reembed::All, &embedding.model)
            .await?;
    tx.commit().await?;
    Ok(plan)
}
