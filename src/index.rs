//! The index policy: the HNSW index on `document_chunks.embedding` is built once the table
//! holds `index.hnsw_min_rows` chunks, CONCURRENTLY (inserts and searches go on while it
//! builds), by one process at a time; `backfill --bulk` drops it for a large load. Search
//! is correct in every state: without the index it is an exact scan of the tenant's chunks.
//!
//! Building runs on a session connection (`database.direct_url`): CREATE INDEX
//! CONCURRENTLY cannot run inside a transaction, and the lock that keeps two processes
//! from building at once is a session lock.
//!
//! Once the index exists, chunks the worker writes may wait outside it ([`Deferral`]):
//! the index leaves out rows flagged `index_pending`, search scans a tenant's waiting rows
//! exactly beside it, and [`merge`] clears the flag (which is when the graph insert
//! happens) while the worker is idle or a backfill ends. Those are plain statements, so
//! they also run through a transaction pooler.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};

use crate::config::{DatabaseSettings, IndexSettings};

const INDEX: &str = "document_chunks_embedding_idx";
/// The replacement of an index that covers every row, while it is built (see
/// [`replace_whole_index`]).
const NEW_INDEX: &str = "document_chunks_embedding_new_idx";
/// What the policy builds: the graph over the rows that are not waiting to be merged.
const INDEX_DEFINITION: &str =
    "on public.document_chunks using hnsw (embedding halfvec_cosine_ops) where not index_pending";

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
    /// Built by the policy: it leaves out rows waiting to be merged.
    Valid,
    /// Built before deferral existed: it covers every row, so writing a row as waiting
    /// saves nothing. Replaced once, concurrently.
    Whole,
    /// Left by an interrupted CREATE INDEX CONCURRENTLY: maintained on every insert, used
    /// by no search. Dropped and built again.
    Invalid,
}

pub async fn state(conn: &mut PgConnection) -> Result<State, sqlx::Error> {
    index_state(conn, INDEX).await
}

async fn index_state(conn: &mut PgConnection, name: &str) -> Result<State, sqlx::Error> {
    let found: Option<(bool, bool)> = sqlx::query_as(
        "select i.indisvalid, i.indpred is not null from pg_index i
         join pg_class c on c.oid = i.indexrelid
         where c.relname = $1 and c.relnamespace = 'public'::regnamespace",
    )
    .persistent(false)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match found {
        None => State::Absent,
        Some((true, true)) => State::Valid,
        Some((true, false)) => State::Whole,
        Some((false, _)) => State::Invalid,
    })
}

/// Builds the index if the policy says it is due and it is not there; does nothing while
/// another process holds the build lock. An index an earlier version built over every row
/// is left to `run` ([`apply_in_service`]): replacing it takes as long as building it, which
/// `migrate` and `backfill` should not wait for.
pub async fn apply(database: &DatabaseSettings, policy: &IndexSettings) -> anyhow::Result<Action> {
    apply_if_session(database, policy, false).await
}

/// [`apply`] as `run` does it in the background, replacing an index that covers every row.
pub async fn apply_in_service(
    database: &DatabaseSettings,
    policy: &IndexSettings,
) -> anyhow::Result<Action> {
    apply_if_session(database, policy, true).await
}

async fn apply_if_session(
    database: &DatabaseSettings,
    policy: &IndexSettings,
    replace_whole: bool,
) -> anyhow::Result<Action> {
    if !session_available(database).await {
        return Ok(Action::NoSession);
    }
    apply_on_session(database, policy, replace_whole).await
}

/// [`apply`] when the caller knows the connection is a session one (`run`, whose LISTEN
/// works on it).
async fn apply_on_session(
    database: &DatabaseSettings,
    policy: &IndexSettings,
    replace_whole: bool,
) -> anyhow::Result<Action> {
    let mut conn = session(database).await?;
    let locked: bool =
        sqlx::query_scalar("select pg_try_advisory_lock(hashtext('ragworker_index'))")
            .fetch_one(&mut conn)
            .await?;
    if !locked {
        return Ok(Action::Nothing);
    }
    let result = build_if_due(&mut conn, policy, replace_whole).await;
    // Closing the session releases the lock too; this says so sooner.
    let _ = sqlx::query("select pg_advisory_unlock(hashtext('ragworker_index'))")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

async fn build_if_due(
    conn: &mut PgConnection,
    policy: &IndexSettings,
    replace_whole: bool,
) -> anyhow::Result<Action> {
    let state = finish_replacement(conn).await?;
    match state {
        State::Valid => return Ok(Action::Nothing),
        State::Whole if replace_whole => return replace_whole_index(conn, policy).await,
        State::Whole => return Ok(Action::Nothing),
        State::Absent | State::Invalid => {}
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
    tracing::info!(
        rows_at_least = rows,
        "building the HNSW index (concurrently; search stays exact until it is ready)"
    );
    build(conn, policy, INDEX).await
}

/// CREATE INDEX CONCURRENTLY `name` with the policy's memory and workers.
async fn build(
    conn: &mut PgConnection,
    policy: &IndexSettings,
    name: &str,
) -> anyhow::Result<Action> {
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
    let started = Instant::now();
    sqlx::query(&format!(
        "create index concurrently if not exists {name} {INDEX_DEFINITION}"
    ))
    .execute(&mut *conn)
    .await?;
    let total: i64 =
        sqlx::query_scalar("select count(*) from public.document_chunks where not index_pending")
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

/// An index an earlier version built covers every row, so a chunk written as waiting would
/// still pay for the graph insert. It is replaced once: the new index is built beside it
/// (searches and writes go on with the old one), then the old one is dropped and the new
/// one takes its name. [`finish_replacement`] completes a replacement a crash interrupted.
async fn replace_whole_index(
    conn: &mut PgConnection,
    policy: &IndexSettings,
) -> anyhow::Result<Action> {
    tracing::info!(
        "replacing the HNSW index with one that leaves chunks waiting to be merged out (concurrently; the old one serves meanwhile)"
    );
    let built = build(conn, policy, NEW_INDEX).await?;
    drop_index(conn).await?;
    finish_replacement(conn).await?;
    Ok(built)
}

/// Tidies what an interrupted [`replace_whole_index`] left and returns the index's state:
/// a new index left alone takes the name, one left beside the old index (or half built)
/// is dropped.
async fn finish_replacement(conn: &mut PgConnection) -> Result<State, sqlx::Error> {
    let current = state(conn).await?;
    match (current, index_state(conn, NEW_INDEX).await?) {
        (_, State::Absent) => Ok(current),
        (State::Absent, State::Valid) => {
            sqlx::query(&format!("alter index public.{NEW_INDEX} rename to {INDEX}"))
                .persistent(false)
                .execute(&mut *conn)
                .await?;
            Ok(State::Valid)
        }
        _ => {
            sqlx::query(&format!(
                "drop index concurrently if exists public.{NEW_INDEX}"
            ))
            .persistent(false)
            .execute(&mut *conn)
            .await?;
            Ok(current)
        }
    }
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
        if let Err(e) = apply_on_session(&database, &policy, true).await {
            tracing::warn!(error = %format!("{e:#}"), "index policy check failed; trying again later");
        }
    }
}

/// Whether chunks written now wait outside the HNSW index: only when the index exists and
/// leaves waiting rows out (without one, search is exact anyway and there is nothing to
/// defer), and while fewer than `index.defer_max_rows` wait. Each process learns it from a
/// count every [`REFRESH`], so the bound can be passed by what the processes write in that
/// time; it only bounds how much a search scans exactly.
#[derive(Debug, Default)]
pub struct Deferral {
    allowed: AtomicBool,
    waiting: AtomicU64,
    /// Set by `run` while no file is in flight: the merge uses idle time only.
    idle: AtomicBool,
}

/// How often a process counts the waiting chunks.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Chunks one merge statement moves into the index: about a quarter of a second of graph
/// inserts at 1536 dimensions, so an idle merge yields soon to new work, holds few row
/// locks, and stays under sqlx's 1 s slow-statement warning on a busy machine (200 took
/// 1-2.8 s with five merging side by side on 2 cores). A round trip per 50 is nothing
/// beside their inserts.
const MERGE_BATCH: i64 = 50;

impl Deferral {
    /// Whether the chunks of a file completed now should wait.
    pub fn allowed(&self) -> bool {
        self.allowed.load(Ordering::Relaxed)
    }

    /// Chunks waiting at the last count (up to `defer_max_rows` + 1).
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Counts the waiting chunks and looks at the index; returns the count.
    pub async fn refresh(&self, pool: &PgPool, max_rows: u64) -> Result<u64, sqlx::Error> {
        // In a transaction, as every statement on the worker's pool (see `queue`): a
        // transaction pooler keeps an unnamed statement's two round trips on one server
        // only inside one.
        let mut tx = pool.begin().await?;
        let (partial, waiting): (bool, i64) = sqlx::query_as(
            "select coalesce((select i.indisvalid and i.indpred is not null from pg_index i
                              where i.indexrelid = to_regclass($1)), false),
                    (select count(*) from (select 1 from public.document_chunks
                                           where index_pending limit $2) s)",
        )
        .persistent(false)
        .bind(format!("public.{INDEX}"))
        .bind(max_rows.saturating_add(1).min(i64::MAX as u64) as i64)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let waiting = waiting as u64;
        self.waiting.store(waiting, Ordering::Relaxed);
        self.allowed
            .store(partial && waiting < max_rows, Ordering::Relaxed);
        metrics::gauge!("ragworker_index_waiting_chunks").set(waiting as f64);
        Ok(waiting)
    }
}

/// Moves up to [`MERGE_BATCH`] waiting chunks into the index; returns how many. Rows
/// another merge holds are skipped, so processes merge side by side without waiting on
/// each other, and a merge never waits on a row lock (a file being rewritten keeps its
/// rows, and they are merged in a later batch or deleted).
pub async fn merge(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "update public.document_chunks set index_pending = false
         where id in (select id from public.document_chunks where index_pending
                      limit $1 for update skip locked)",
    )
    .persistent(false)
    .bind(MERGE_BATCH)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Merges batch after batch while `go_on` says so and chunks wait; returns how many.
async fn merge_while(pool: &PgPool, go_on: impl Fn() -> bool) -> Result<u64, sqlx::Error> {
    let mut merged = 0;
    while go_on() {
        match merge(pool).await? {
            0 => break,
            n => merged += n,
        }
    }
    Ok(merged)
}

/// Merges every waiting chunk, on `connections` connections at once (a backfill's end,
/// when the files are done and the pool is free). Returns how many and how long it took.
pub async fn merge_all(pool: &PgPool, connections: usize) -> Result<(u64, Duration), sqlx::Error> {
    let started = Instant::now();
    let lanes = (0..connections.max(1)).map(|_| merge_while(pool, || true));
    let merged: u64 = futures::future::try_join_all(lanes)
        .await?
        .into_iter()
        .sum();
    Ok((merged, started.elapsed()))
}

/// `run`'s side of deferral, until the process ends: counts every [`REFRESH`] and, while
/// the worker has no file in flight, merges batch by batch. Errors are logged and tried
/// again at the next count.
pub async fn keep_deferring(
    pool: PgPool,
    policy: IndexSettings,
    deferral: std::sync::Arc<Deferral>,
) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match deferral.refresh(&pool, policy.defer_max_rows).await {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "counting chunks waiting for the HNSW index failed; trying again");
                continue;
            }
        }
        let started = Instant::now();
        match merge_while(&pool, || deferral.idle.load(Ordering::Relaxed)).await {
            Ok(0) => {}
            Ok(merged) => tracing::info!(
                chunks = merged,
                secs = started.elapsed().as_secs_f64(),
                "merged waiting chunks into the HNSW index"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "merging chunks into the HNSW index failed; trying again")
            }
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
