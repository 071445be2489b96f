//! The `files` table as a queue: claim, heartbeat and the fenced transitions out of
//! `processing`. Every statement lives in its own file under `src/queue/`.
//!
//! Every statement on the worker's pool is unnamed (`persistent(false)`) and runs inside
//! an explicit transaction, which is what a transaction-mode pooler (Supabase's port 6543,
//! PgBouncer) can carry: it hands each transaction to any server connection, so a named
//! prepared statement would be missing on the next one or collide with another client's,
//! and sqlx's unnamed statement is parsed and executed in two round trips that only a
//! transaction keeps on one server.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgExecutor, PgPool, Postgres};
use uuid::Uuid;

use crate::config::QueueSettings;

/// Proof of ownership of one claimed file: every transition is conditioned on it.
#[derive(Debug, Clone)]
pub struct Lease {
    pub file_id: Uuid,
    pub worker_id: Arc<str>,
    /// The file's `attempts` after this claim: the retry budget spent, for decisions and
    /// reports. Not a fence: a release refunds it and a re-embed resets it.
    pub attempt: i32,
    /// The file's `claim_seq` this claim set, which only ever grows: every transition is
    /// fenced on it, so a stale lease never matches a later claim, whoever made it.
    pub claim: i64,
}

/// The fenced transitions: each matches only while this lease is the file's current one,
/// and fails with `LeaseLost` (changing nothing) once another claim has taken it. They run
/// in the caller's transaction, so what commits with them (chunks, the usage row) commits
/// or not with the status.
impl Lease {
    /// Marks the file completed, recording what its chunks were made from. Runs inside the
    /// caller's transaction so the chunks, the usage row and the status commit together or
    /// not at all.
    pub async fn complete<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        extracted_text: &str,
        chunk_count: i32,
        made_from: &Provenance,
    ) -> Result<(), QueueError> {
        let done = transition(include_str!("queue/complete.sql"), self)
            .bind(extracted_text)
            .bind(chunk_count)
            .bind(&made_from.sha256)
            .bind(&made_from.version)
            .bind(&made_from.settings)
            .execute(executor)
            .await?;
        fenced(done.rows_affected())
    }

    /// Marks the file completed as it is: its bytes and settings are those its chunks were
    /// made from. `version` is the object's current one.
    pub async fn complete_unchanged<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        version: Option<&str>,
    ) -> Result<(), QueueError> {
        let done = transition(include_str!("queue/complete_unchanged.sql"), self)
            .bind(version)
            .execute(executor)
            .await?;
        fenced(done.rows_affected())
    }

    /// Ends the file `failed` with a message for the user.
    pub async fn fail<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        message: &str,
    ) -> Result<(), QueueError> {
        let done = transition(include_str!("queue/fail.sql"), self)
            .bind(message)
            .execute(executor)
            .await?;
        fenced(done.rows_affected())
    }

    /// Hands the file back after a deployment problem, without spending an attempt; it is
    /// eligible again after `delay`, with `message` as its last_error meanwhile.
    pub async fn postpone<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        message: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let done = transition(include_str!("queue/postpone.sql"), self)
            .bind(message)
            .bind(delay.as_secs_f64())
            .execute(executor)
            .await?;
        fenced(done.rows_affected())
    }

    /// Hands the file back without spending an attempt (shutdown).
    pub async fn release<'e>(&self, executor: impl PgExecutor<'e>) -> Result<(), QueueError> {
        let done = transition(include_str!("queue/release.sql"), self)
            .execute(executor)
            .await?;
        fenced(done.rows_affected())
    }
}

/// A file this worker has claimed, with what processing it needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedFile {
    pub id: Uuid,
    pub user_id: Uuid,
    pub org_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub original_name: String,
    pub storage_bucket: String,
    pub storage_path: String,
    pub mime_type: Option<String>,
    pub file_size: Option<i64>,
    pub attempts: i32,
    pub claim_seq: i64,
    /// The file's current chunks (from its last completion), and what they were made from
    /// (none before its first completion).
    pub chunk_count: i32,
    pub content_sha256: Option<String>,
    pub storage_version: Option<String>,
    pub processed_with: Option<serde_json::Value>,
}

/// What a file's chunks are made from, written with them at completion.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// sha256 (hex) of the object's bytes.
    pub sha256: String,
    /// The storage object's version or ETag, when the backend gives one.
    pub version: Option<String>,
    /// [`crate::config::Settings::processed_with`].
    pub settings: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the lease on this file was taken over by another worker")]
    LeaseLost,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where a transiently failed file goes next.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryDecision {
    /// Back to `pending`, eligible again after this delay.
    Later(Duration),
    /// Out of attempts: `failed`.
    GiveUp,
}

/// A handle on the queue for one worker identity.
#[derive(Clone)]
pub struct Queue {
    pool: PgPool,
    worker_id: Arc<str>,
    settings: QueueSettings,
}

impl Queue {
    pub fn new(pool: PgPool, worker_id: impl Into<Arc<str>>, settings: QueueSettings) -> Self {
        Self {
            pool,
            worker_id: worker_id.into(),
            settings,
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// Claims up to `limit` files. Files whose worker vanished after their last attempt are
    /// failed first, so they are never claimed again, and what the requests of claims that
    /// are over cost (a killed worker's) is rolled up from the ledger into usage_logs.
    pub async fn claim(&self, limit: usize) -> Result<Vec<(ClaimedFile, Lease)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(include_str!("queue/give_up_expired.sql"))
            .persistent(false)
            .bind(self.settings.max_attempts)
            .execute(&mut *tx)
            .await?;
        let files: Vec<ClaimedFile> = sqlx::query_as(include_str!("queue/claim.sql"))
            .persistent(false)
            .bind(&*self.worker_id)
            .bind(limit as i64)
            .bind(self.settings.lease_secs as f64)
            .fetch_all(&mut *tx)
            .await?;
        // After the claim: a file this claim took from a dead worker has that worker's
        // requests rolled up at once.
        crate::ledger::sweep(&mut *tx).await?;
        tx.commit().await?;
        Ok(files
            .into_iter()
            .map(|f| {
                let lease = Lease {
                    file_id: f.id,
                    worker_id: self.worker_id.clone(),
                    attempt: f.attempts,
                    claim: f.claim_seq,
                };
                (f, lease)
            })
            .collect())
    }

    /// Sends completed files back to `pending` for `backfill --reembed`: every one when
    /// `all`, else those not wholly embedded by `model`. Returns how many.
    pub async fn requeue_completed<'e>(
        executor: impl PgExecutor<'e>,
        all: bool,
        model: &str,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(include_str!("queue/requeue_completed.sql"))
            .persistent(false)
            .bind(all)
            .bind(model)
            .execute(executor)
            .await?;
        Ok(done.rows_affected())
    }

    /// Up to `limit` files no worker is processing, after `after` in id order: (id,
    /// bucket, path).
    pub async fn settled_files(
        &self,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as(include_str!("queue/settled_files.sql"))
            .persistent(false)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Deletes these files (and their chunks) unless a worker is processing them; returns
    /// what was deleted: (id, bucket, path, chunks).
    pub async fn remove_files(
        &self,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, String, String, i64)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as(include_str!("queue/remove_files.sql"))
            .persistent(false)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Files a claim could take right now (the claim's own predicate), for progress totals.
    pub async fn count_claimable(&self) -> Result<u64, sqlx::Error> {
        self.count(
            "select count(*) from files
             where (processing_status = 'pending' and next_attempt_at <= now())
                or (processing_status = 'processing' and locked_until < now())",
        )
        .await
    }

    /// Files pending, due or not (what a backfill leaves for later).
    pub async fn count_pending(&self) -> Result<u64, sqlx::Error> {
        self.count("select count(*) from files where processing_status = 'pending'")
            .await
    }

    /// Files by status, for /metrics.
    pub async fn counts_by_status(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.rows("select processing_status::text, count(*) from files group by 1")
            .await
    }

    /// Files waiting (pending or processing) per bucket, for the start-up storage check.
    pub async fn queued_buckets(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.rows(
            "select storage_bucket, count(*) from files
             where processing_status in ('pending', 'processing')
             group by 1 order by 2 desc limit 100",
        )
        .await
    }

    async fn rows(&self, sql: &'static str) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as(sql)
            .persistent(false)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn count(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let n: i64 = sqlx::query_scalar(sql)
            .persistent(false)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n as u64)
    }

    /// Extends the lease by another `lease_secs`.
    pub async fn heartbeat(&self, lease: &Lease) -> Result<(), QueueError> {
        let mut tx = self.pool.begin().await?;
        let done = transition(include_str!("queue/heartbeat.sql"), lease)
            .bind(self.settings.lease_secs as f64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        fenced(done.rows_affected())
    }

    /// Sends the file back to `pending` after a transient failure, or fails it when it has
    /// used its last attempt.
    pub async fn retry_or_give_up<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        lease: &Lease,
        message: &str,
        retry_after: Option<Duration>,
    ) -> Result<RetryDecision, QueueError> {
        let decision = self.retry_decision(lease.attempt, retry_after);
        match &decision {
            RetryDecision::GiveUp => {
                let message = format!("gave up after {} attempts: {message}", lease.attempt);
                lease.fail(executor, &message).await?;
            }
            RetryDecision::Later(delay) => {
                let done = transition(include_str!("queue/retry.sql"), lease)
                    .bind(message)
                    .bind(delay.as_secs_f64())
                    .execute(executor)
                    .await?;
                fenced(done.rows_affected())?;
            }
        }
        Ok(decision)
    }

    /// Capped exponential backoff with jitter between attempts of one file; the provider's
    /// own "retry after" wins when it is longer.
    pub fn retry_decision(&self, attempt: i32, retry_after: Option<Duration>) -> RetryDecision {
        if attempt >= self.settings.max_attempts {
            return RetryDecision::GiveUp;
        }
        let delay = retry_delay(&self.settings, attempt, true);
        RetryDecision::Later(retry_after.map_or(delay, |ra| ra.max(delay)))
    }
}

/// Delay before attempt `attempt + 1`: `retry_base_secs * 2^(attempt-1)`, capped at
/// `retry_max_secs`, plus up to 100% jitter when `jitter` is on (off in tests).
pub fn retry_delay(settings: &QueueSettings, attempt: i32, jitter: bool) -> Duration {
    let mut builder = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(settings.retry_base_secs))
        .with_max_delay(Duration::from_secs(settings.retry_max_secs))
        .with_factor(2.0)
        .without_max_times();
    if jitter {
        builder = builder.with_jitter();
    }
    let n = attempt.max(1) as usize - 1;
    builder
        .build()
        .nth(n)
        .unwrap_or(Duration::from_secs(settings.retry_max_secs))
}

/// A transition out of (or within) `processing`: `sql` is fenced on `$1` file id, `$2`
/// worker id and `$3` claim sequence, which are bound here; further parameters follow. Unnamed
/// (see the module comment), so it must run inside a transaction.
fn transition<'q>(sql: &'q str, lease: &'q Lease) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(sql)
        .persistent(false)
        .bind(lease.file_id)
        .bind(&*lease.worker_id)
        .bind(lease.claim)
}

fn fenced(rows_affected: u64) -> Result<(), QueueError> {
    if rows_affected == 0 {
        Err(QueueError::LeaseLost)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> QueueSettings {
        QueueSettings {
            lease_secs: 60,
            heartbeat_secs: 20,
            max_attempts: 4,
            retry_base_secs: 10,
            retry_max_secs: 60,
        }
    }

    #[test]
    fn retry_delays_grow_exponentially_and_are_capped() {
        let s = settings();
        let delays: Vec<u64> = (1..=6)
            .map(|a| retry_delay(&s, a, false).as_secs())
            .collect();
        assert_eq!(delays, vec![10, 20, 40, 60, 60, 60]);
        // Jitter only ever lengthens the delay, by at most the delay itself.
        for _ in 0..50 {
            let d = retry_delay(&s, 2, true).as_secs_f64();
            assert!((20.0..=40.0).contains(&d), "{d}");
        }
    }
}
