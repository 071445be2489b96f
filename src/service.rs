//! The loops around `Worker::process`: `run` (a long-lived service woken by NOTIFY, with a
//! poll fallback) and `backfill` (drain what is eligible now, then exit). Both keep up to
//! `worker.concurrency` files in flight and share the same shutdown behaviour.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::PgListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::worker::{Outcome, Worker};

/// The channel the `files_notify_pending` trigger notifies.
pub const NOTIFY_CHANNEL: &str = "ragworker_files";

/// Counts of outcomes, printed by `backfill`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub completed: u64,
    pub failed: u64,
    pub retrying: u64,
    pub released: u64,
    pub lease_lost: u64,
    pub chunks: u64,
    pub tokens: u64,
}

impl Summary {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Completed { chunks, tokens, .. } => {
                self.completed += 1;
                self.chunks += *chunks as u64;
                self.tokens += tokens;
            }
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Retrying { .. } => self.retrying += 1,
            Outcome::Released => self.released += 1,
            Outcome::LeaseLost => self.lease_lost += 1,
        }
    }
}

/// Files always kept in flight while there are any (extraction of one overlaps the
/// embedding of another).
const MIN_IN_FLIGHT: usize = 4;

/// How many more files to claim: in flight is sized by what the provider has yet to embed.
/// While the backlog of tokens submitted and not yet embedded is below two full requests
/// (`Embedder::max_request_tokens`, itself bounded by the provider's tokens-per-minute), more
/// files would keep the provider busier and fill requests better, so slots open up to
/// `worker.concurrency`; at or above it, the provider is the limit and more files would only
/// hold leases while they wait. So many small files are in flight when requests are the
/// scarce resource (each request carries many of them), few large ones when tokens are.
fn free_slots(worker: &Worker, in_flight: usize) -> usize {
    slots(
        worker.settings.worker.concurrency,
        in_flight,
        worker.batcher.backlog_tokens(),
        2 * worker.embedder.max_request_tokens() as u64,
    )
}

/// [`free_slots`] on plain numbers.
fn slots(cap: usize, in_flight: usize, backlog: u64, enough: u64) -> usize {
    let to_floor = MIN_IN_FLIGHT.min(cap).saturating_sub(in_flight);
    // Every free slot in one claim (one transaction): a file's tokens join the backlog only
    // once it is downloaded and chunked, so claiming one at a time would not see more.
    let to_cap = if backlog < enough {
        cap.saturating_sub(in_flight)
    } else {
        0
    };
    // Above the floor, claims wait for a quarter of the slots to be free: one claim
    // transaction for several files rather than one per file that finished (a re-sync of
    // unchanged files is little more than its claims and completions).
    if to_floor == 0 && to_cap < (cap / 4).max(1) {
        return 0;
    }
    to_floor.max(to_cap)
}

/// Files in flight, with the token that cancels them when the grace period is over.
struct InFlight {
    jobs: JoinSet<Outcome>,
    stop: CancellationToken,
    summary: Summary,
}

impl InFlight {
    fn new() -> Self {
        Self {
            jobs: JoinSet::new(),
            stop: CancellationToken::new(),
            summary: Summary::default(),
        }
    }

    /// Claims files into the free slots; returns how many were claimed. See [`free_slots`].
    async fn fill(&mut self, worker: &Arc<Worker>) -> Result<usize, sqlx::Error> {
        let free = free_slots(worker, self.jobs.len());
        if free == 0 {
            return Ok(0);
        }
        let claimed = worker.claim(free).await?;
        let n = claimed.len();
        for (file, lease) in claimed {
            let worker = worker.clone();
            let stop = self.stop.clone();
            self.jobs
                .spawn(async move { worker.process(file, lease, stop).await });
        }
        Ok(n)
    }

    fn reap(&mut self, joined: Result<Outcome, tokio::task::JoinError>) {
        match joined {
            Ok(outcome) => self.summary.add(&outcome),
            // `process` handles every error itself; a panic here is a bug, and the file's
            // lease will expire so another claim retries it.
            Err(e) => tracing::error!(error = %e, "file task panicked"),
        }
    }

    /// Lets in-flight files finish for `grace`, then cancels the rest, which release their
    /// files back to `pending`.
    async fn drain(&mut self, grace: Duration) {
        if !self.jobs.is_empty() {
            tracing::info!(
                in_flight = self.jobs.len(),
                grace_s = grace.as_secs(),
                "waiting for in-flight files"
            );
        }
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = self.jobs.join_next() => match joined {
                    Some(j) => self.reap(j),
                    None => return,
                },
                _ = &mut deadline, if !self.stop.is_cancelled() => {
                    tracing::warn!(in_flight = self.jobs.len(), "grace period over; releasing unfinished files");
                    self.stop.cancel();
                }
            }
        }
    }
}

/// Runs until `shutdown` resolves: wakes on NOTIFY, polls as a fallback (retries whose time
/// has come and expired leases do not notify), and survives database restarts.
pub async fn run(worker: Arc<Worker>, shutdown: impl Future<Output = ()>) -> Summary {
    let settings = worker.settings.clone();
    let mut poll = Duration::from_secs(settings.worker.poll_interval_secs);
    let mut in_flight = InFlight::new();
    // LISTEN through a transaction pooler is worse than useless: the listening server
    // connection goes back to the pool, and when it later serves another client a
    // notification arrives in the middle of that client's query (sqlx fails it with
    // "unexpected message: NotificationResponse"). So it is never tried there.
    let pooled = settings.database.direct_url.expose_secret().is_empty()
        && crate::db::behind_transaction_pooler(&settings.database).await;
    let mut listener = if pooled {
        None
    } else {
        connect_listener(&worker).await
    };
    let mut listening = !pooled;
    if let Some(l) = listener.as_mut() {
        listening = notifications_arrive(&worker, l).await;
        if !listening {
            listener = None;
        }
    }
    // The index policy needs a session connection: the direct URL, or a database.url on
    // which LISTEN just worked (a transaction pooler fails that check reliably, where a
    // probe alone can be fooled by a pooler handing back the same server).
    let session = listening || !settings.database.direct_url.expose_secret().is_empty();
    let _index = session.then(|| {
        AbortOnDropHandle::new(tokio::spawn(crate::index::keep_applying(
            settings.database.clone(),
            settings.index.clone(),
        )))
    });
    if !session {
        tracing::warn!("{}", crate::index::NO_SESSION);
    }
    let _deferral = start_deferring(&worker).await;
    if !listening {
        // Polling often keeps pick-up quick.
        poll = poll.min(NO_NOTIFY_POLL);
        tracing::warn!(
            poll_s = poll.as_secs(),
            "notifications do not arrive (database.url is a transaction pooler? set database.direct_url / DATABASE_DIRECT_URL to a direct or session connection); polling instead"
        );
    }
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    tracing::info!(
        worker_id = worker.queue.worker_id(),
        concurrency = settings.worker.concurrency,
        "ragworker running"
    );

    'service: loop {
        if let Some(reason) = worker.engine_stopped() {
            tracing::error!(reason = %reason, "the embedding engine stopped: shutting down");
            break;
        }
        // Claim until the queue is empty or every slot is busy. A claim waiting for a pooled
        // connection (a saturated pooler) must not hold up shutdown.
        loop {
            let filled = tokio::select! {
                biased;
                _ = &mut shutdown => break 'service,
                filled = in_flight.fill(&worker) => filled,
            };
            match filled {
                Ok(n) if n > 0 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "claim failed (database unreachable?); retrying at the next poll");
                    break;
                }
            }
        }
        // Nothing in flight after claiming all there was: idle time, which merges chunks
        // waiting for the HNSW index.
        worker.deferral.set_idle(in_flight.jobs.is_empty());
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(joined) = in_flight.jobs.join_next() => in_flight.reap(joined),
            notified = recv(&mut listener) => {
                if !notified {
                    // The listener's connection is gone: poll until it is back.
                    listener = None;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = &mut shutdown => break,
                    }
                }
            }
            _ = ticker.tick() => {
                // Interruptible like the claim: a saturated pooler must not hold up shutdown.
                let tick = async {
                    if listener.is_none() && listening {
                        listener = connect_listener(&worker).await;
                    }
                    update_queue_gauges(&worker).await;
                };
                tokio::select! {
                    biased;
                    _ = &mut shutdown => break,
                    _ = tick => {}
                }
            }
        }
    }
    tracing::info!("shutdown requested: no new claims");
    in_flight
        .drain(Duration::from_secs(settings.worker.shutdown_grace_secs))
        .await;
    in_flight.summary
}

/// Pause between claims that failed while nothing was in flight.
const CLAIM_RETRY: Duration = Duration::from_secs(1);
/// Claims in a row that may fail before a backfill gives up (about half a minute).
const MAX_FAILED_CLAIMS: u32 = 30;

/// Processes files until none is eligible and none is in flight (or `shutdown` resolves).
pub async fn backfill(
    worker: Arc<Worker>,
    shutdown: impl Future<Output = ()>,
    mut on_outcome: impl FnMut(&Summary),
) -> Result<Summary, sqlx::Error> {
    let mut in_flight = InFlight::new();
    let grace = Duration::from_secs(worker.settings.worker.shutdown_grace_secs);
    let mut failed_claims = 0u32;
    // Counts only: a backfill merges at its end (`index::merge_all`), when its files are done.
    let _deferral = start_deferring(&worker).await;
    tokio::pin!(shutdown);
    loop {
        // One step: claim into the free slots, then wait for a file to finish. Shutdown
        // interrupts either half, a claim waiting for a pooled connection included.
        let step = async {
            let claimed = in_flight.fill(&worker).await;
            let finished = match &claimed {
                // Nothing in flight to wait for: pause before claiming again.
                Err(_) if in_flight.jobs.is_empty() => {
                    tokio::time::sleep(CLAIM_RETRY).await;
                    None
                }
                _ => in_flight.jobs.join_next().await,
            };
            (claimed, finished)
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                tracing::info!("interrupted: no new claims");
                in_flight.drain(grace).await;
                break;
            }
            (claimed, finished) = step => {
                // A claim that fails (a database restart, a blip) is retried like `run`
                // retries it; files in flight go on and record what they spent. Only a
                // database gone for good ends the backfill, after they finish.
                let claim_failed = claimed.is_err();
                match claimed {
                    Ok(_) => failed_claims = 0,
                    Err(e) => {
                        failed_claims += 1;
                        tracing::warn!(error = %e, failed_claims, "claim failed (database unreachable?); files in flight go on, claiming again shortly");
                        if failed_claims >= MAX_FAILED_CLAIMS {
                            in_flight.drain(grace).await;
                            return Err(e);
                        }
                    }
                }
                match finished {
                    Some(joined) => {
                        in_flight.reap(joined);
                        on_outcome(&in_flight.summary);
                    }
                    // Nothing in flight after a successful claim: nothing is eligible.
                    None if !claim_failed => break,
                    None => {}
                }
            }
        }
    }
    Ok(in_flight.summary)
}

/// Looks at the index and counts the chunks waiting for it once before the first claim (so
/// the first files already know whether to wait), then keeps doing so, merging in idle
/// time, until the handle is dropped.
async fn start_deferring(worker: &Arc<Worker>) -> AbortOnDropHandle<()> {
    let policy = worker.settings.index.clone();
    if let Err(e) = worker
        .deferral
        .refresh(worker.queue.pool(), policy.defer_max_rows)
        .await
    {
        tracing::warn!(error = %e, "counting chunks waiting for the HNSW index failed; they are indexed as written until a count succeeds");
    }
    AbortOnDropHandle::new(tokio::spawn(crate::index::keep_deferring(
        worker.queue.pool().clone(),
        policy,
        worker.deferral.clone(),
    )))
}

/// The poll period when notifications cannot be heard.
const NO_NOTIFY_POLL: Duration = Duration::from_secs(1);

/// LISTEN on its own connection to `database.direct_url` (or `url`): a transaction pooler
/// cannot keep a listening session.
async fn connect_listener(worker: &Worker) -> Option<PgListener> {
    let url = worker
        .settings
        .database
        .direct_url()
        .expose_secret()
        .to_string();
    let result = async {
        let mut listener = PgListener::connect(&url).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    }
    .await;
    match result {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "LISTEN failed; polling until the database is back");
            None
        }
    }
}

/// Sends a notification through the worker's pool, as the trigger would, and waits a few
/// seconds for it on `listener`.
async fn notifications_arrive(worker: &Worker, listener: &mut PgListener) -> bool {
    let probe = format!("probe-{}", uuid::Uuid::new_v4().simple());
    let sent = async {
        let mut tx = worker.queue.pool().begin().await?;
        sqlx::query("select pg_notify($1, $2)")
            .persistent(false)
            .bind(NOTIFY_CHANNEL)
            .bind(&probe)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    };
    if let Err(e) = sent.await {
        tracing::warn!(error = %e, "could not send a test notification");
        return false;
    }
    let heard = async {
        loop {
            match listener.recv().await {
                Ok(n) if n.payload() == probe => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), heard)
        .await
        .unwrap_or(false)
}

/// Waits for a notification; `false` when the listener is unusable. Never resolves while
/// there is no listener, so the poll tick drives reconnection.
async fn recv(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(l) => match l.try_recv().await {
            Ok(Some(_)) => true,
            // The connection dropped; notifications sent meanwhile are lost, which the poll
            // covers. try_recv reconnects on its next call, but a dead server would spin.
            Ok(None) | Err(_) => false,
        },
        None => std::future::pending().await,
    }
}

/// Queue depth by status, for /metrics.
pub async fn update_queue_gauges(worker: &Worker) {
    if let Ok(rows) = worker.queue.counts_by_status().await {
        let mut counts: BTreeMap<&str, i64> = ["pending", "processing", "completed", "failed"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
        for (status, n) in &rows {
            if let Some(c) = counts.get_mut(status.as_str()) {
                *c = *n;
            }
        }
        for (status, n) in counts {
            metrics::gauge!("ragworker_queue_files", "status" => status).set(n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_follows_the_backlog_between_the_floor_and_the_cap() {
        // Below the floor: fill it, whatever the backlog.
        assert_eq!(slots(16, 0, u64::MAX, 100), 4);
        assert_eq!(slots(16, 3, u64::MAX, 100), 1);
        assert_eq!(
            slots(16, 3, 0, 100),
            13,
            "up to the cap when the backlog is short"
        );
        // Above it: every free slot while less than two requests' worth waits...
        assert_eq!(slots(16, 4, 99, 100), 12);
        // ...none once the provider has enough to do...
        assert_eq!(slots(16, 4, 100, 100), 0);
        // ...in batches of a quarter of the cap above the floor...
        assert_eq!(slots(16, 13, 0, 100), 0);
        assert_eq!(slots(16, 12, 0, 100), 4);
        // ...and never past the cap.
        assert_eq!(slots(16, 16, 0, 100), 0);
        assert_eq!(slots(2, 0, 0, 100), 2);
        assert_eq!(slots(2, 2, 0, 100), 0);
    }
}
