//! Connecting, migrating and the start-up checks that refuse to work against a database
//! that would make every file fail late (after paying for its embeddings).

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::config::{DatabaseSettings, EmbeddingSettings};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(settings.url.expose_secret())
        .await
}

/// Applies the migrations, then fixes the embedding column to the configured dimension.
pub async fn migrate(pool: &PgPool, embedding: &EmbeddingSettings) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    sqlx::query("select ragworker_set_embedding_dimension($1)")
        .bind(embedding.dimensions as i32)
        .execute(pool)
        .await?;
    Ok(())
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
    let version: Option<String> =
        sqlx::query_scalar("select extversion from pg_extension where extname = 'vector'")
            .fetch_optional(pool)
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
    .fetch_all(pool)
    .await?;
    if !missing.is_empty() {
        return Err(PreflightError::NotMigrated(missing.join(", ")));
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    if MIGRATOR.iter().any(|m| !applied.contains(&m.version)) {
        return Err(PreflightError::MigrationsPending);
    }
    let column: i32 = sqlx::query_scalar(
        "select atttypmod from pg_attribute
         where attrelid = 'public.document_chunks'::regclass and attname = 'embedding'",
    )
    .fetch_one(pool)
    .await?;
    if column != embedding.dimensions as i32 {
        return Err(PreflightError::DimensionMismatch {
            column,
            configured: embedding.dimensions,
        });
    }
    Ok(())
}
