//! One batcher for all files in flight: their chunks share requests packed up to the
//! provider's limits, so a stream of small files costs few requests and keeps the provider
//! busy. Each vector goes back to its file by position; each request's billed tokens are
//! split among the files in it, exactly (the shares add up to what the provider reported).

use crate::lock::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pgvector::HalfVector;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::vectors::combine_parts;
use super::{pack, Bill, EmbedError, Embedded, Embedder, Prepared, Usage};
use crate::ledger::{split_exactly, Ledger, Payer, Share};

/// What one file asked for.
struct Job {
    slots: Mutex<JobState>,
    /// Who pays: with the engine's ledger, each request is recorded against it.
    payer: Option<Arc<Payer>>,
}

struct JobState {
    vectors: Vec<Option<HalfVector>>,
    missing: usize,
    usage: Usage,
    error: Option<EmbedError>,
    reply: Option<oneshot::Sender<Embedded>>,
}

/// One input waiting for a request.
struct Item {
    job: Arc<Job>,
    index: usize,
    text: String,
    tokens: usize,
}

enum Submission {
    Items(Vec<Item>),
    /// Makes the engine's task panic, as a bug would (tests only).
    #[cfg(test)]
    Panic,
}

/// Why the engine stopped, once it has.
type Stopped = Arc<OnceLock<String>>;

/// Handle to the batching task; cheap to clone. The task ends when every handle is gone.
#[derive(Clone)]
pub struct Batcher {
    embedder: Arc<Embedder>,
    tx: mpsc::UnboundedSender<Submission>,
    stopped: Stopped,
    /// Tokens submitted by files still waiting for their vectors: what the provider has yet
    /// to embed, which decides whether claiming more files would keep it busier.
    backlog: Arc<std::sync::atomic::AtomicU64>,
}

/// Takes a file's tokens off the backlog however its embedding ends (answered, failed,
/// cancelled).
struct Backlogged {
    backlog: Arc<std::sync::atomic::AtomicU64>,
    tokens: u64,
}

impl Drop for Backlogged {
    fn drop(&mut self) {
        self.backlog
            .fetch_sub(self.tokens, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What the engine's request tasks share.
struct Engine {
    embedder: Arc<Embedder>,
    /// Where requests made for files are recorded before they are sent (none: not recorded,
    /// as in benchmarks of the engine alone).
    ledger: Option<Ledger>,
}

impl Batcher {
    /// Starts the engine's task, and a watcher that owns it: should the task end by a
    /// panic (the only way it ends while handles remain), the reason is kept, every file
    /// waiting for it gets `EngineStopped`, and [`Batcher::stopped`] tells the worker to
    /// claim nothing more, rather than failing file after file "transiently".
    pub fn spawn(embedder: Arc<Embedder>, ledger: Option<Ledger>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stopped: Stopped = Arc::default();
        let shared = Arc::new(Engine {
            embedder: embedder.clone(),
            ledger,
        });
        let engine = tokio::spawn(run(shared, rx, stopped.clone()));
        let watch = stopped.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.await {
                let reason = if e.is_panic() {
                    format!(
                        "its task panicked: {}",
                        crate::error::panic_message(&*e.into_panic())
                    )
                } else {
                    "its task was cancelled".into()
                };
                record_stop(&watch, reason);
            }
        });
        Self {
            embedder,
            tx,
            stopped,
            backlog: Arc::default(),
        }
    }

    /// Tokens waiting to be embedded for files in flight.
    pub fn backlog_tokens(&self) -> u64 {
        self.backlog.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Why the engine stopped, if it has: nothing more can be embedded by this process.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.get().cloned()
    }

    fn stopped_error(&self) -> EmbedError {
        EmbedError::EngineStopped(self.stopped().unwrap_or_else(|| "its task is gone".into()))
    }

    /// Embeds one file's chunks; returns the vectors in input order and this file's share of
    /// what was spent (also when it fails part-way). Requests are recorded in the ledger
    /// against `payer`.
    pub async fn embed(&self, inputs: &[(&str, usize)], payer: Option<Arc<Payer>>) -> Embedded {
        if inputs.is_empty() {
            return (Ok(Vec::new()), Usage::default());
        }
        let Prepared {
            texts,
            counts,
            parts,
        } = match self.embedder.prepare(inputs) {
            Ok(p) => p,
            Err(e) => return (Err(e), Usage::default()),
        };
        let tokens = counts.iter().map(|&c| c as u64).sum();
        self.backlog
            .fetch_add(tokens, std::sync::atomic::Ordering::Relaxed);
        let _backlogged = Backlogged {
            backlog: self.backlog.clone(),
            tokens,
        };
        let (reply, answer) = oneshot::channel();
        let job = Arc::new(Job {
            slots: Mutex::new(JobState {
                vectors: vec![None; texts.len()],
                missing: texts.len(),
                usage: Usage::default(),
                error: None,
                reply: Some(reply),
            }),
            payer,
        });
        let items = texts
            .into_iter()
            .zip(counts)
            .enumerate()
            .map(|(index, (text, tokens))| Item {
                job: job.clone(),
                index,
                text,
                tokens,
            })
            .collect();
        // Only the items may hold the job (and so its reply): were the engine to die with
        // them, the reply would drop and this file would hear of it, not wait forever.
        drop(job);
        if self.tx.send(Submission::Items(items)).is_err() {
            return (Err(self.stopped_error()), Usage::default());
        }
        match answer.await {
            Ok((result, usage)) => (result.map(|v| combine_parts(v, &parts)), usage),
            // The engine dropped the job unanswered: it died. Its watcher may record why a
            // moment later.
            Err(_) => {
                tokio::task::yield_now().await;
                (Err(self.stopped_error()), Usage::default())
            }
        }
    }
}

fn record_stop(stopped: &Stopped, reason: String) {
    tracing::error!(reason = %reason, "the embedding engine stopped: no more files are claimed; restart the process");
    let _ = stopped.set(reason);
}

/// Collects items and sends a request whenever one is full, and a partial one when no
/// request is out (the provider is idle) or its oldest item has waited `batch_linger_ms`,
/// if the provider's limits would let it leave at once. Requests run concurrently, owned
/// here; the embedder's limiter paces them. A request task that panics stops the engine (its files, and every later one, get
/// `EngineStopped`): the state it shared with the others can no longer be trusted.
async fn run(engine: Arc<Engine>, mut rx: mpsc::UnboundedReceiver<Submission>, stopped: Stopped) {
    let settings = engine.embedder.settings().clone();
    let linger = Duration::from_millis(settings.batch_linger_ms);
    let mut queue: VecDeque<Item> = VecDeque::new();
    let mut requests: JoinSet<()> = JoinSet::new();
    let mut oldest: Option<Instant> = None;
    let mut open = true;
    while open || !queue.is_empty() || !requests.is_empty() {
        let deadline = oldest.map(|t| t + linger);
        tokio::select! {
            sub = rx.recv(), if open => match sub {
                Some(Submission::Items(items)) => {
                    if queue.is_empty() {
                        oldest = Some(Instant::now());
                    }
                    queue.extend(items);
                }
                #[cfg(test)]
                Some(Submission::Panic) => panic!("injected fault"),
                None => open = false,
            },
            Some(joined) = requests.join_next(), if !requests.is_empty() => {
                if let Err(e) = joined {
                    if e.is_panic() {
                        let why = crate::error::panic_message(&*e.into_panic());
                        record_stop(&stopped, format!("an embedding request panicked: {why}"));
                        // Dropping the queue and the other requests drops every waiting
                        // file's reply: each gets `EngineStopped`.
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                // A partial request goes when its oldest input has lingered, unless the
                // provider's limits would hold it anyway (requests are the scarce resource):
                // then it keeps filling, and leaves fuller when a request can.
                let ready = engine.embedder.request_ready();
                flush(&engine, &mut queue, &settings, ready, &mut requests);
                oldest = (!queue.is_empty()).then(Instant::now);
                continue;
            }
        }
        // Lingering fills requests while one is out; with none out the provider is idle,
        // and a partial request waiting for company would only leave it idle longer (an
        // instant provider, a local GPU server): it goes at once, if the limits let it.
        let idle = requests.is_empty() && engine.embedder.request_ready();
        flush(&engine, &mut queue, &settings, !open || idle, &mut requests);
        if queue.is_empty() {
            oldest = None;
        }
    }
}

/// Sends every full request in the queue, and the partial rest too when `all`.
fn flush(
    engine: &Arc<Engine>,
    queue: &mut VecDeque<Item>,
    settings: &crate::config::EmbeddingSettings,
    all: bool,
    requests: &mut JoinSet<()>,
) {
    loop {
        // Items of files that already failed are dropped rather than paid for.
        queue.retain(|item| {
            let mut state = lock(&item.job.slots);
            if state.error.is_none() {
                return true;
            }
            state.missing -= 1;
            finish_if_done(&mut state);
            false
        });
        let (count, tokens) = pack::fits(
            queue.iter().map(|item| item.tokens),
            settings.max_inputs_per_request,
            engine.embedder.max_request_tokens(),
        );
        // Full: at the input limit, or the next item would exceed the token limit.
        let full = count == settings.max_inputs_per_request || count < queue.len();
        if count == 0 || !(full || all) {
            return;
        }
        let batch: Vec<Item> = queue.drain(..count).collect();
        requests.spawn(send(engine.clone(), batch, tokens as u64));
    }
}

async fn send(engine: Arc<Engine>, batch: Vec<Item>, tokens: u64) {
    let texts: Vec<String> = batch.iter().map(|i| i.text.clone()).collect();
    let mut usage = Usage::default();
    let result = engine.send(&batch, texts, tokens, &mut usage).await;
    let jobs = distinct_jobs(&batch);
    // A request the provider rejected for its input fails only the file whose input it was:
    // with several files in the request, each is retried on its own once.
    let input_refused = matches!(
        &result,
        Err(EmbedError::Api { status: 400, .. } | EmbedError::ProviderInputTooLong { .. })
    );
    if input_refused && jobs.len() > 1 {
        // Only the spend of the refused request is recorded; each file then goes alone.
        deliver(&batch, result, usage, true);
        for job in jobs {
            let own: Vec<Item> = batch
                .iter()
                .filter(|i| Arc::ptr_eq(&i.job, &job))
                .map(|i| Item {
                    job: i.job.clone(),
                    index: i.index,
                    text: i.text.clone(),
                    tokens: i.tokens,
                })
                .collect();
            let tokens = own.iter().map(|i| i.tokens as u64).sum();
            let texts = own.iter().map(|i| i.text.clone()).collect();
            let mut usage = Usage::default();
            let result = engine.send(&own, texts, tokens, &mut usage).await;
            deliver(&own, result, usage, false);
        }
        return;
    }
    deliver(&batch, result, usage, false);
}

impl Engine {
    /// One request for `batch`, recorded in the ledger against each file in it (those
    /// with a payer), with that file's inputs and tokens.
    async fn send(
        &self,
        batch: &[Item],
        texts: Vec<String>,
        tokens: u64,
        usage: &mut Usage,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        let shares: Vec<Share> = distinct_jobs(batch)
            .iter()
            .filter_map(|job| {
                let payer = job.payer.clone()?;
                let own = batch.iter().filter(|i| Arc::ptr_eq(&i.job, job));
                let (inputs, tokens) = own.fold((0, 0), |(n, t), i| (n + 1, t + i.tokens as u64));
                Some(Share {
                    payer,
                    inputs,
                    tokens,
                })
            })
            .collect();
        let bill = match &self.ledger {
            Some(ledger) if !shares.is_empty() => Some(Bill {
                ledger,
                shares: &shares,
            }),
            _ => None,
        };
        self.embedder.send(texts, tokens, usage, bill).await
    }
}

fn distinct_jobs(batch: &[Item]) -> Vec<Arc<Job>> {
    let mut jobs: Vec<Arc<Job>> = Vec::new();
    for item in batch {
        if !jobs.iter().any(|j| Arc::ptr_eq(j, &item.job)) {
            jobs.push(item.job.clone());
        }
    }
    jobs
}

/// Routes a request's outcome to its files. With `usage_only`, only the spend is recorded
/// (the items will be retried separately).
fn deliver(
    batch: &[Item],
    result: Result<Vec<HalfVector>, EmbedError>,
    usage: Usage,
    usage_only: bool,
) {
    let jobs = distinct_jobs(batch);
    let own_tokens: Vec<u64> = jobs
        .iter()
        .map(|j| {
            batch
                .iter()
                .filter(|i| Arc::ptr_eq(&i.job, j))
                .map(|i| i.tokens as u64)
                .sum()
        })
        .collect();
    let shares = split_exactly(usage.tokens, &own_tokens);
    for (job, share) in jobs.iter().zip(shares) {
        let mut state = lock(&job.slots);
        state.usage += Usage {
            tokens: share,
            ..usage
        };
        if usage_only {
            continue;
        }
        let items = batch.iter().filter(|i| Arc::ptr_eq(&i.job, job));
        match &result {
            Ok(vectors) => {
                for (item, vector) in batch.iter().zip(vectors) {
                    if Arc::ptr_eq(&item.job, job) && state.vectors[item.index].is_none() {
                        state.vectors[item.index] = Some(vector.clone());
                        state.missing -= 1;
                    }
                }
            }
            Err(e) => {
                state.missing -= items.count();
                state.error.get_or_insert_with(|| e.clone());
            }
        }
        finish_if_done(&mut state);
    }
}

fn finish_if_done(state: &mut JobState) {
    // A failed file still waits for its requests already in flight, so what they cost is
    // reported with it; its queued items are dropped by `flush` instead of being sent.
    if state.missing > 0 {
        return;
    }
    if let Some(reply) = state.reply.take() {
        let result = match &state.error {
            Some(e) => Err(e.clone()),
            // Every slot is filled when none is missing; should that ever not hold, the file
            // fails with a reason instead of the engine panicking.
            None => state
                .vectors
                .iter_mut()
                .map(Option::take)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| EmbedError::BadResponse("a vector went missing".into())),
        };
        let _ = reply.send((result, state.usage));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's task dying is reported, with its reason, to every file waiting and to
    /// every later one, as an error that releases the file (not the file's fault) and stops
    /// the worker claiming; a std mutex it held does not take the rest down with it.
    #[tokio::test]
    async fn a_panic_in_the_engine_stops_it_with_the_reason() {
        let settings =
            crate::config::Settings::from_toml_layers(&["[embedding]\napi_key = \"sk-test\""])
                .unwrap();
        let batcher = Batcher::spawn(Arc::new(Embedder::new(&settings.embedding).unwrap()), None);
        assert_eq!(batcher.stopped(), None);
        batcher.tx.send(Submission::Panic).unwrap();
        let (result, usage) = batcher.embed(&[("a question", 2)], None).await;
        let err = result.unwrap_err();
        // The watcher records the reason as the task ends; the file may have been refused
        // just before.
        for _ in 0..100 {
            if batcher.stopped().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            batcher.stopped().as_deref(),
            Some("its task panicked: injected fault")
        );
        assert!(matches!(err, EmbedError::EngineStopped(_)), "{err:?}");
        assert_eq!(err.class(), crate::error::ErrorClass::Shutdown);
        assert_eq!(usage, Usage::default());
        let (later, _) = batcher.embed(&[("another", 2)], None).await;
        assert_eq!(
            later.unwrap_err().to_string(),
            "the embedding engine stopped: its task panicked: injected fault"
        );
    }

    #[test]
    fn a_poisoned_lock_is_still_usable() {
        let job = Arc::new(Mutex::new(1));
        let held = job.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("while holding the lock");
        })
        .join();
        assert!(job.is_poisoned());
        *lock(&job) += 1;
        assert_eq!(*lock(&job), 2);
    }
}
