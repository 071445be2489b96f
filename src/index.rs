//! The index policy: the HNSW index on `document_chunks.embedding` is built once the table
//! holds `index.hnsw_min_rows` chunks, CONCURRENTLY (inserts and searches go on while it
//! builds), by one process at a time; `backfill --bulk` drops it for a large load. Search
//! is correct in every state: without the index it is an exact scan of the tenant's chunks.
//!
//! Everything here runs on a session connection (`database.direct_url`): CREATE INDEX
//! CONCURRENTLY cannot run inside a transaction, and the lock that keeps two processes
//! from building at once is a session lock.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::config::{DatabaseSettings, IndexSettings};

const INDEX: &str = "document_chunks_embedding_idx";

/// What a check did.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The index is there (or not due yet, or another process is building it).
    Nothing,
    /// Built over this many chunks, in this long.
    Built { rows: u64, took: Duration },
    /// Only a transaction pooler to reach the database through: no session for
    /// CREATE INDEX CONCURRENTLY and the build lock (set database.direct_url).
    NoSession,
}

/// The index's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Absent,
    Valid,
    /// Left by an interrupted CREATE INDEX CONCURRENTLY: maintained on every insert, used
    /// by no search. Dropped and built again.
    Invalid,
}

pub async fn state(conn: &mut PgConnection) -> Result<State, sqlx::Error> {
    let valid: Option<bool> = sqlx::query_scalar(
        "select i.indisvalid from pg_index i
         join pg_class c on c.oid = i.indexrelid
         where c.relname = $1 and c.relnamespace = 'public'::regnamespace",
    )
    .persistent(false)
    .bind(INDEX)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match valid {
        None => State::Absent,
        Some(true) => State::Valid,
        Some(false) => State::Invalid,
    })
}

/// Builds the index if the policy says it is due and it is not there; does nothing while
/// another process holds the build lock.
pub async fn apply(database: &DatabaseSettings, policy: &IndexSettings) -> anyhow::Result<Action> {
    if !session_available(database).await {
        return Ok(Action::NoSession);
    }
    apply_on_session(database, policy).await
}

/// [`apply`] when the caller knows the connection is a session one (`run`, whose LISTEN
/// works on it).
async fn apply_on_session(
    database: &DatabaseSettings,
    policy: &IndexSettings,
) -> anyhow::Result<Action> {
    let mut conn = session(database).await?;
    let locked: bool =
        sqlx::query_scalar("select pg_try_advisory_lock(hashtext('ragworker_index'))")
            .fetch_one(&mut conn)
            .await?;
    if !locked {
        return Ok(Action::Nothing);
    }
    let result = build_if_due(&mut conn, policy).await;
    // Closing the session releases the lock too; this says so sooner.
    let _ = sqlx::query("select pg_advisory_unlock(hashtext('ragworker_index'))")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

async fn build_if_due(conn: &mut PgConnection, policy: &IndexSettings) -> anyhow::Result<Action> {
    let state = state(conn).await?;
    if state == State::Valid {
        return Ok(Action::Nothing);
    }
    // Counting stops at the threshold: a large table is not scanned to the end.
    let rows: i64 = sqlx::query_scalar(
        "select count(*) from (select 1 from public.document_chunks limit $1) s",
    )
    .persistent(false)
    .bind(policy.hnsw_min_rows.max(1) as i64)
    .fetch_one(&mut *conn)
    .await?;
    if (rows as u64) < policy.hnsw_min_rows {
        return Ok(Action::Nothing);
    }
    if state == State::Invalid {
        drop_index(conn).await?;
    }
    sqlx::query("select set_config('maintenance_work_mem', $1, false)")
        .persistent(false)
        .bind(&policy.maintenance_work_mem)
        .execute(&mut *conn)
        .await?;
    sqlx::query("select set_config('max_parallel_maintenance_workers', $1, false)")
        .persistent(false)
        .bind(policy.parallel_workers.to_string())
        .execute(&mut *conn)
        .await?;
    tracing::info!(
        rows_at_least = rows,
        "building the HNSW index (concurrently; search stays exact until it is ready)"
    );
    let started = Instant::now();
    sqlx::query(&format!(
        "create index concurrently if not exists {INDEX} on public.document_chunks
         using hnsw (embedding halfvec_cosine_ops)"
    ))
    .execute(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar("select count(*) from public.document_chunks")
        .persistent(false)
        .fetch_one(&mut *conn)
        .await?;
    let took = started.elapsed();
    tracing::info!(rows = total, secs = took.as_secs_f64(), "HNSW index built");
    Ok(Action::Built {
        rows: total as u64,
        took,
    })
}

/// `backfill --bulk`: drops the index for a large load (the policy builds it again at the
/// end). Returns whether there was one.
pub async fn drop_for_bulk(database: &DatabaseSettings) -> anyhow::Result<bool> {
    let mut conn = session(database).await?;
    let had = state(&mut conn).await? != State::Absent;
    if had {
        drop_index(&mut conn).await?;
    }
    let _ = conn.close().await;
    Ok(had)
}

async fn drop_index(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("drop index concurrently if exists public.{INDEX}"))
        .persistent(false)
        .execute(conn)
        .await?;
    Ok(())
}

/// Checks the policy every `check_secs` until the process ends, on a connection the caller
/// knows to be a session one; errors are logged and tried again next time.
pub async fn keep_applying(database: DatabaseSettings, policy: IndexSettings) {
    let mut tick = tokio::time::interval(Duration::from_secs(policy.check_secs.max(1)));
    loop {
        tick.tick().await;
        if let Err(e) = apply_on_session(&database, &policy).await {
            tracing::warn!(error = %format!("{e:#}"), "index policy check failed; trying again later");
        }
    }
}

/// What a process reached only through a transaction pooler says about the index.
pub const NO_SESSION: &str = "the index policy needs a session connection to build the HNSW index (CREATE INDEX CONCURRENTLY): set database.direct_url (DATABASE_DIRECT_URL), or run `ragworker migrate` with it; search stays exact meanwhile";

/// Whether a session connection is at hand: `database.direct_url`, or a `database.url`
/// that is not a transaction pooler.
async fn session_available(database: &DatabaseSettings) -> bool {
    use secrecy::ExposeSecret;
    !database.direct_url.expose_secret().is_empty()
        || !crate::db::behind_transaction_pooler(database).await
}

async fn session(database: &DatabaseSettings) -> Result<PgConnection, sqlx::Error> {
    use secrecy::ExposeSecret;
    PgConnection::connect(database.direct_url().expose_secret()).await
}
