//! Processing one claimed file end to end: download → extract → chunk → embed → store, and
//! settling the outcome with a fenced transition. No loop here; see `service` for that.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;
use uuid::Uuid;

use crate::chunk::Chunker;
use crate::config::Settings;
use crate::embed::{Batcher, EmbedError, Embedder, Usage};
use crate::error::{ErrorClass, JobError};
use crate::extract::{self, ExtractError};
use crate::halt::Halt;
use crate::ledger::{self, Payer};
use crate::ownership;
use crate::queue::{ClaimedFile, Lease, Provenance, Queue, QueueError, RetryDecision};
use crate::storage::Storage;
use crate::store;

/// How processing one file ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed {
        chunks: usize,
        /// Of `chunks`, those whose vectors came from the file's previous version.
        reused: usize,
        tokens: u64,
    },
    Failed {
        error: String,
    },
    /// Transient failure; the file is pending again, eligible after the delay.
    Retrying {
        error: String,
        after: Duration,
    },
    /// Handed back on shutdown without spending an attempt.
    Released,
    /// Another worker owns the file now; nothing was written for it.
    LeaseLost,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::Retrying { .. } => "retrying",
            Outcome::Released => "released",
            Outcome::LeaseLost => "lease_lost",
        }
    }
}

/// What a completed file became.
struct Done {
    chunks: usize,
    reused: usize,
}

/// Everything needed to process files; cheap to share between tasks.
pub struct Worker {
    pub queue: Queue,
    pub storage: Storage,
    pub embedder: Arc<Embedder>,
    /// Shared by all files this worker processes, so their chunks share requests.
    pub batcher: Batcher,
    pub chunker: Chunker,
    /// Which objects a row may name; checked before every download.
    pub ownership: ownership::Rules,
    /// Set when storage rejects the worker's credentials: no claims until it lifts.
    pub storage_paused: Halt<String>,
    /// Whether the chunks written now wait outside the HNSW index (`index.defer_max_rows`).
    pub deferral: Arc<crate::index::Deferral>,
    pub settings: Arc<Settings>,
}

impl Worker {
    /// Claims up to `limit` files, unless the embedding provider (quota, auth) or storage
    /// (credentials) refused us: files claimed now would only meet the same refusal.
    pub async fn claim(&self, limit: usize) -> Result<Vec<(ClaimedFile, Lease)>, sqlx::Error> {
        if self.engine_stopped().is_some() {
            return Ok(Vec::new());
        }
        if let Some(err) = self.embedder.halted() {
            tracing::warn!(error = %err, "not claiming files: the embedding provider refused requests");
            return Ok(Vec::new());
        }
        if let Some(err) = self.storage_paused.current() {
            tracing::warn!(error = %err, "not claiming files: storage rejected the worker's credentials");
            return Ok(Vec::new());
        }
        self.queue.claim(limit).await
    }

    /// Why this process can embed nothing more (its embedding engine died), if so: the
    /// loops stop and the process exits with the reason, for its supervisor to restart it.
    pub fn engine_stopped(&self) -> Option<String> {
        self.batcher.stopped()
    }

    /// Claims at most one file and processes it: the step tests drive without any loop.
    pub async fn run_once(&self) -> Result<Option<(Uuid, Outcome)>, sqlx::Error> {
        let Some((file, lease)) = self.claim(1).await?.into_iter().next() else {
            return Ok(None);
        };
        let id = file.id;
        Ok(Some((
            id,
            self.process(file, lease, CancellationToken::new()).await,
        )))
    }

    /// Processes a claimed file and records the outcome. `stop` cancels the work (shutdown
    /// past its grace period); the file is then released, not failed.
    pub async fn process(
        &self,
        file: ClaimedFile,
        lease: Lease,
        stop: CancellationToken,
    ) -> Outcome {
        let span = tracing::info_span!("file", file.id = %file.id, attempt = lease.attempt);
        async move {
            tracing::info!(name = %file.original_name, "processing");
            let lost = CancellationToken::new();
            // The heartbeat is owned by this future: dropped (aborted) on every path out.
            let _heartbeat = AbortOnDropHandle::new(tokio::spawn(
                heartbeat(self.queue.clone(), lease.clone(), lost.clone()).in_current_span(),
            ));
            let mut usage = Usage::default();
            let limit = Duration::from_secs(self.settings.worker.processing_timeout_secs);
            let result = {
                let work = tokio::time::timeout(limit, self.pipeline(&file, &lease, &mut usage));
                tokio::select! {
                    r = work => r.unwrap_or(Err(JobError::Timeout(limit))),
                    _ = lost.cancelled() => Err(JobError::LeaseLost),
                    _ = stop.cancelled() => Err(JobError::Shutdown),
                }
            };
            let outcome = self.settle(&lease, result, usage).await;
            metrics::counter!("ragworker_files_total", "outcome" => outcome.label()).increment(1);
            match &outcome {
                Outcome::Completed {
                    chunks,
                    reused,
                    tokens,
                } => tracing::info!(chunks, reused, tokens, "completed"),
                // Warnings name the file themselves: above a progress bar the span's fields
                // are not shown, and a user must be able to tell which upload it was.
                Outcome::Failed { error } => {
                    tracing::warn!(name = %file.original_name, file_id = %file.id, %error, "failed")
                }
                Outcome::Retrying { error, after } => tracing::warn!(
                    name = %file.original_name,
                    file_id = %file.id,
                    %error,
                    retry_in_s = after.as_secs(),
                    "will retry"
                ),
                Outcome::Released => tracing::info!("released for another worker"),
                Outcome::LeaseLost => tracing::warn!(
                    name = %file.original_name,
                    file_id = %file.id,
                    "lease lost; another worker owns this file"
                ),
            }
            outcome
        }
        .instrument(span)
        .await
    }

    async fn pipeline(
        &self,
        file: &ClaimedFile,
        lease: &Lease,
        usage: &mut Usage,
    ) -> Result<Done, JobError> {
        // Before a byte is downloaded: the worker's credentials can read every user's
        // objects, the row's owner may not.
        self.ownership.check(self.queue.pool(), file).await?;
        let settings = self.settings.processed_with();
        let same_settings = file.processed_with.as_ref() == Some(&settings);
        let (bucket, key) = (&file.storage_bucket, &file.storage_path);
        // The object as it was when the file's chunks were made, by its version: nothing to
        // download, chunk or embed.
        if same_settings && file.storage_version.is_some() {
            let version = self.storage.version(bucket, key).await?;
            if version.is_some() && version == file.storage_version {
                return self.unchanged(file, lease, version.as_deref()).await;
            }
        }
        let object = self.storage.get(bucket, key).await?;
        let sha256 = crate::chunk::sha256_hex(&object.bytes);
        // The same bytes under a new version (uploaded again): still nothing to do.
        if same_settings && file.content_sha256.as_deref() == Some(sha256.as_str()) {
            return self.unchanged(file, lease, object.version.as_deref()).await;
        }
        let name = file.original_name.clone();
        let mime = file.mime_type.clone();
        let extract_settings = self.settings.extract.clone();
        let chunker = self.chunker.clone();
        // Parsing and tokenising are CPU work: off the async threads, and a panic in a
        // parser becomes this file's error instead of the worker's.
        let limit = self.settings.extract.time_limit();
        let bytes = object.bytes;
        let parse = tokio::task::spawn_blocking(move || {
            extract::extract_with(&bytes, &name, mime.as_deref(), &extract_settings)
                .map(|doc| chunker.chunk(&doc))
        });
        // A parser stuck in a pathological file cannot be interrupted; the file fails and
        // the worker moves on, leaving that one blocking thread to finish on its own.
        let chunked = tokio::time::timeout(limit, parse)
            .await
            .map_err(|_| ExtractError::Timeout(limit.as_secs()))?
            .map_err(|e| ExtractError::Panicked(e.to_string()))??;
        tracing::debug!(chunks = chunked.chunks.len(), "extracted");

        // Chunks that embed exactly what a chunk of the file's previous version embedded,
        // with the same model, keep its vector; only the others are sent.
        let mut previous = if file.content_sha256.is_some() {
            store::previous_vectors(self.queue.pool(), file, self.embedder.model()).await?
        } else {
            Default::default()
        };
        let mut vectors: Vec<Option<pgvector::HalfVector>> = chunked
            .chunks
            .iter()
            .map(|c| previous.get(&c.content_hash).cloned())
            .collect();
        previous.clear();
        let missing: Vec<usize> = (0..vectors.len())
            .filter(|&i| vectors[i].is_none())
            .collect();
        let inputs: Vec<(&str, usize)> = missing
            .iter()
            .map(|&i| {
                let c = &chunked.chunks[i];
                (c.embed_input.as_str(), c.token_count as usize)
            })
            .collect();
        let reuse = store::Reuse {
            chunks_embedded: missing.len(),
            chunks_reused: vectors.len() - missing.len(),
            tokens_reused: chunked
                .chunks
                .iter()
                .zip(&vectors)
                .filter(|(_, v)| v.is_some())
                .map(|(c, _)| c.token_count as u64)
                .sum(),
        };
        let payer = Arc::new(Payer::new(file, lease));
        let (embedded, spent) = self.batcher.embed(&inputs, Some(payer)).await;
        *usage += spent;
        let embedded = embedded?;
        // The engine answers one vector per input; should it not, the file fails with the
        // reason rather than storing chunks against the wrong vectors.
        if embedded.len() != inputs.len() {
            return Err(EmbedError::BadResponse(format!(
                "{} vectors for {} chunks",
                embedded.len(),
                inputs.len()
            ))
            .into());
        }
        for (i, vector) in missing.into_iter().zip(embedded) {
            vectors[i] = Some(vector);
        }
        let vectors: Vec<pgvector::HalfVector> = vectors.into_iter().flatten().collect();

        // Replaced while we worked (a second upload mid-flight): these chunks are of bytes
        // that are no longer the object's, so they are not written.
        if object.version.is_some() && self.storage.version(bucket, key).await? != object.version {
            return Err(JobError::ObjectChanged);
        }
        let made_from = Provenance {
            sha256,
            version: object.version,
            settings,
        };
        store::complete_file(
            self.queue.pool(),
            lease,
            file,
            &chunked,
            vectors,
            self.embedder.model(),
            &made_from,
            &reuse,
            self.deferral.allowed(),
        )
        .await?;
        metrics::counter!("ragworker_chunks_total").increment(chunked.chunks.len() as u64);
        metrics::counter!("ragworker_chunks_reused_total").increment(reuse.chunks_reused as u64);
        metrics::counter!("ragworker_embedding_cost_microdollars_total").increment(
            (usage.tokens as f64 * self.settings.embedding.price_per_million()).round() as u64,
        );
        Ok(Done {
            chunks: chunked.chunks.len(),
            reused: reuse.chunks_reused,
        })
    }

    /// Completes a file whose bytes and settings are those its chunks were made from.
    async fn unchanged(
        &self,
        file: &ClaimedFile,
        lease: &Lease,
        version: Option<&str>,
    ) -> Result<Done, JobError> {
        store::complete_unchanged(self.queue.pool(), lease, version).await?;
        tracing::debug!("unchanged since its last processing");
        let chunks = file.chunk_count.max(0) as usize;
        metrics::counter!("ragworker_chunks_reused_total").increment(chunks as u64);
        Ok(Done {
            chunks,
            reused: chunks,
        })
    }

    /// How long a file waits after a deployment problem. The embedder halted itself when
    /// the provider refused (quota, key); storage's refusal halts claims from here.
    fn pause(&self, err: &JobError, message: &str) -> Duration {
        if let JobError::Embed(_) = err {
            return Duration::from_secs(self.settings.embedding.halt_secs);
        }
        let after = Duration::from_secs(self.settings.storage.pause_secs);
        tracing::error!(error = %message, pause_s = after.as_secs(), "storage rejected the worker's credentials: no claims until the pause ends");
        self.storage_paused.trip(after, message.to_string());
        after
    }

    /// Records how the file ended, and rolls what its requests cost from the ledger into a
    /// usage row in the same transaction, whatever the outcome: money spent is money
    /// recorded.
    async fn settle(&self, lease: &Lease, result: Result<Done, JobError>, usage: Usage) -> Outcome {
        let err = match result {
            Ok(Done { chunks, reused }) => {
                return Outcome::Completed {
                    chunks,
                    reused,
                    tokens: usage.tokens,
                }
            }
            Err(err) => err,
        };
        let message = err.to_string();
        // One transaction: the status change and the usage row rolled up from the ledger
        // commit together or not at all.
        let settled: Result<Outcome, QueueError> = async {
            let mut tx = self.queue.pool().begin().await?;
            let outcome = match err.class() {
                ErrorClass::Permanent => {
                    lease.fail(&mut *tx, &message).await?;
                    Outcome::Failed {
                        error: message.clone(),
                    }
                }
                ErrorClass::Transient { retry_after } => {
                    match self
                        .queue
                        .retry_or_give_up(&mut *tx, lease, &message, retry_after)
                        .await?
                    {
                        RetryDecision::Later(after) => Outcome::Retrying {
                            error: message.clone(),
                            after,
                        },
                        RetryDecision::GiveUp => Outcome::Failed {
                            error: format!("gave up after {} attempts: {message}", lease.attempt),
                        },
                    }
                }
                ErrorClass::Paused => {
                    let after = self.pause(&err, &message);
                    lease.postpone(&mut *tx, &message, after).await?;
                    Outcome::Retrying {
                        error: message.clone(),
                        after,
                    }
                }
                ErrorClass::Shutdown => {
                    lease.release(&mut *tx).await?;
                    Outcome::Released
                }
                ErrorClass::Superseded => {
                    lease.release(&mut *tx).await?;
                    Outcome::Retrying {
                        error: message.clone(),
                        after: Duration::ZERO,
                    }
                }
                ErrorClass::LeaseLost => return Err(QueueError::LeaseLost),
            };
            ledger::settle(&mut *tx, lease, outcome.label(), &serde_json::json!({})).await?;
            tx.commit().await?;
            Ok(outcome)
        }
        .await;
        match settled {
            Ok(outcome) => outcome,
            Err(QueueError::LeaseLost) => {
                // Another worker will redo (and pay for) this file; what this worker spent
                // was still spent.
                self.settle_spent(lease, "lease_lost").await;
                Outcome::LeaseLost
            }
            Err(QueueError::Database(e)) => {
                // The outcome could not be written (database down). The lease will expire and
                // the file will be claimed again; nothing is lost, and the ledger's rows of
                // this claim are rolled up by whichever claim comes after the lease.
                tracing::error!(error = %e, "could not record the outcome; the file will be retried when its lease expires");
                Outcome::Retrying {
                    error: format!("{message} (and the outcome could not be recorded: {e})"),
                    after: self.queue.settings().lease(),
                }
            }
        }
    }

    /// Rolls this claim's ledger rows into a usage row outside any transition (the lease
    /// is gone; the rows are still this claim's). Should it fail, the next claim's sweep
    /// does it.
    async fn settle_spent(&self, lease: &Lease, outcome: &str) {
        let settled = async {
            let mut tx = self.queue.pool().begin().await?;
            ledger::settle(&mut *tx, lease, outcome, &serde_json::json!({})).await?;
            tx.commit().await
        };
        if let Err(e) = settled.await {
            tracing::warn!(error = %e, "could not record embedding usage now; the next claim will");
        }
    }
}

/// Extends the lease until aborted; cancels `lost` when another worker has the file.
async fn heartbeat(queue: Queue, lease: Lease, lost: CancellationToken) {
    let period = Duration::from_secs(queue.settings().heartbeat_secs);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tick.tick().await;
        match queue.heartbeat(&lease).await {
            Ok(()) => {}
            Err(QueueError::LeaseLost) => {
                lost.cancel();
                return;
            }
            // A blip: keep trying; the lease has slack for a few missed beats.
            Err(QueueError::Database(e)) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }
}
