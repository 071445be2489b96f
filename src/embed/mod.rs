//! Embeddings through an OpenAI-compatible `/v1/embeddings` API (async-openai), with
//! request packing, retries that honour the provider's rate-limit headers, and exact usage;
//! or through the in-process model of [`local`] (`embedding.provider = "local"`), which
//! shares the batching and accounting and skips the network half. Errors and their one
//! classifier are in `error`.

mod batcher;
mod error;
mod headers;
mod limiter;
pub mod local;
mod transport;

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::{
    CreateEmbeddingRequest, EmbeddingInput, EncodingFormat as WireEncoding,
};
use async_openai::Client;
use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use half::f16;
use pgvector::HalfVector;
use secrecy::ExposeSecret;
use text_splitter::{ChunkConfig, TextSplitter};

pub use batcher::Batcher;
pub use error::EmbedError;
pub use headers::{parse_reset, RateLimitHeaders};
pub use limiter::RateLimiter;
pub use transport::ProviderFailure;

use crate::chunk::Tokenizer;
use crate::config::{EmbeddingSettings, EncodingFormat, OversizeInput};
use crate::halt::Halt;
use crate::ledger::{Entry, Ledger, Share};
use local::LocalModel;

/// What embedding cost, for usage_logs. Tokens are the provider's own count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub tokens: u64,
    pub requests: u32,
    pub retries: u32,
    pub rate_limited: u32,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.tokens += other.tokens;
        self.requests += other.requests;
        self.retries += other.retries;
        self.rate_limited += other.rate_limited;
    }
}

/// Splits inputs into consecutive requests that respect both the input-count and the
/// token limits of one request.
pub fn plan_batches(
    token_counts: &[usize],
    max_inputs: usize,
    max_tokens: usize,
) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut tokens = 0;
    for (i, &count) in token_counts.iter().enumerate() {
        let full = i - start >= max_inputs || (tokens + count > max_tokens && i > start);
        if full {
            batches.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += count;
    }
    if start < token_counts.len() {
        batches.push(start..token_counts.len());
    }
    batches
}

/// Inputs ready to send: over-long ones split into parts.
pub struct Prepared {
    pub texts: Vec<String>,
    pub counts: Vec<usize>,
    /// For each original input, the range of `texts` it became.
    pub parts: Vec<Range<usize>>,
}

/// A file's vectors (or why there are none) and what they cost.
pub type Embedded = (Result<Vec<HalfVector>, EmbedError>, Usage);

/// A 200 answer: vectors with their `index`, and the tokens the provider billed.
type Answer = (Vec<(u32, Vec<f16>)>, u64);

/// Where a request's cost is written down: the ledger, and the files the request is for.
#[derive(Clone, Copy)]
pub struct Bill<'a> {
    pub ledger: &'a Ledger,
    pub shares: &'a [Share],
}

impl Bill<'_> {
    /// Written and committed before the request goes out; if it cannot be, the request
    /// does not go out.
    async fn record(&self, retry: u32) -> Result<Entry, EmbedError> {
        self.ledger
            .record(self.shares, retry)
            .await
            .map_err(|e| EmbedError::Ledger(e.to_string()))
    }

    /// The provider's answer: its count when it billed, nothing when it refused. Without an
    /// answer (a broken connection, a timeout, an unreadable 200) the row stays `sent` and
    /// counts at our own count, since the provider may well have billed it.
    async fn answer<T>(&self, entry: Entry, outcome: &Result<(T, u64), EmbedError>) {
        match outcome {
            Ok((_, billed)) => self.ledger.confirm(entry, self.shares, *billed).await,
            Err(
                EmbedError::Api { status, .. }
                | EmbedError::ProviderInputTooLong { status, .. }
                | EmbedError::ProviderBatchTooLarge { status, .. },
            ) => self.ledger.refuse(entry, Some(*status)).await,
            // The in-process model failed: nothing was spent anywhere.
            Err(EmbedError::Local(_)) => self.ledger.refuse(entry, None).await,
            Err(_) => {}
        }
    }
}

/// Client for one configured model, shared by every file in flight: one rate limiter, one
/// concurrency cap and one circuit breaker per provider.
pub struct Embedder {
    backend: Backend,
    settings: EmbeddingSettings,
    tokenizer: Tokenizer,
    /// Set by a quota or authentication error: until then, nothing is sent.
    halted: Halt<EmbedError>,
}

enum Backend {
    Api {
        client: Client<OpenAIConfig>,
        limiter: Arc<RateLimiter>,
    },
    Local {
        model: Arc<LocalModel>,
        /// One batch at a time: a forward pass already uses every core, and two would
        /// only contend for them.
        gate: tokio::sync::Semaphore,
    },
}

impl Embedder {
    pub fn new(settings: &EmbeddingSettings) -> Result<Self, EmbedError> {
        if settings.provider == "local" {
            return Self::local(settings);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| EmbedError::Network(e.to_string()))?;
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(settings.api_key.expose_secret());
        let limiter = Arc::new(RateLimiter::new(
            settings.requests_per_minute,
            settings.tokens_per_minute,
            settings.max_concurrent_requests,
        ));
        // Our own transport replaces async-openai's built-in retry layer: retries happen in
        // `send`, where they are paced, counted and bounded; the transport feeds every
        // response's rate-limit headers to the limiter.
        let client = Client::with_config(config)
            .with_http_service(transport::ProviderService::new(http, limiter.clone()));
        Ok(Self {
            backend: Backend::Api { client, limiter },
            settings: settings.clone(),
            tokenizer: Tokenizer::cl100k().map_err(EmbedError::BadResponse)?,
            halted: Halt::new(),
        })
    }

    /// Loads the in-process model from `embedding.local_model_dir` and checks that it
    /// produces the configured dimension.
    fn local(settings: &EmbeddingSettings) -> Result<Self, EmbedError> {
        let model = Arc::new(
            LocalModel::load(&settings.local_model_dir)
                .map_err(|e| EmbedError::Local(e.to_string()))?,
        );
        if model.dimensions() != settings.dimensions as usize {
            return Err(EmbedError::Local(format!(
                "the model in {} produces {}-dimensional vectors but embedding.dimensions is {}",
                settings.local_model_dir.display(),
                model.dimensions(),
                settings.dimensions
            )));
        }
        if settings.max_input_tokens > model.max_input_tokens() {
            return Err(EmbedError::Local(format!(
                "embedding.max_input_tokens ({}) exceeds what the model reads ({} tokens): longer chunks would be cut",
                settings.max_input_tokens,
                model.max_input_tokens()
            )));
        }
        Ok(Self {
            backend: Backend::Local {
                model: model.clone(),
                gate: tokio::sync::Semaphore::new(1),
            },
            settings: settings.clone(),
            tokenizer: Tokenizer::Local(model),
            halted: Halt::new(),
        })
    }

    /// The tokenizer the model counts with, for chunking.
    pub fn tokenizer(&self) -> Tokenizer {
        self.tokenizer.clone()
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    pub fn settings(&self) -> &EmbeddingSettings {
        &self.settings
    }

    /// Tokens one request may carry: the provider's per-request limit, and no more than an
    /// eighth of its tokens-per-minute limit. A request larger than the whole minute's
    /// budget could never be accepted, and large requests make pacing lumpy.
    pub fn max_request_tokens(&self) -> usize {
        let per_request = self.settings.max_tokens_per_request;
        let Backend::Api { limiter, .. } = &self.backend else {
            return per_request;
        };
        match limiter.tokens_per_minute() {
            Some(tpm) => {
                per_request.min((tpm / 8).max(self.settings.max_input_tokens as u64) as usize)
            }
            None => per_request,
        }
    }

    /// The quota or authentication error that stopped all requests, while it holds.
    pub fn halted(&self) -> Option<EmbedError> {
        self.halted.current()
    }

    /// Embeds `inputs` in consecutive requests (no cross-file batching: for queries and
    /// one-off use), adding what was spent to `usage` as it goes.
    pub async fn embed(
        &self,
        inputs: &[(&str, usize)],
        usage: &mut Usage,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        let Prepared {
            texts,
            counts,
            parts,
        } = self.prepare(inputs)?;
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in plan_batches(
            &counts,
            self.settings.max_inputs_per_request,
            self.max_request_tokens(),
        ) {
            let tokens = counts[batch.clone()].iter().sum::<usize>() as u64;
            vectors.extend(
                self.send(texts[batch].to_vec(), tokens, usage, None)
                    .await?,
            );
        }
        Ok(combine_parts(vectors, &parts))
    }

    /// Applies `embedding.oversize_input` to inputs over the model's limit: rejects them, or
    /// splits them into parts of at most `max_input_tokens`. Returns the texts to send, their
    /// token counts, and for each original input the range of parts it became.
    pub fn prepare(&self, inputs: &[(&str, usize)]) -> Result<Prepared, EmbedError> {
        let max = self.settings.max_input_tokens;
        let mut texts = Vec::with_capacity(inputs.len());
        let mut counts = Vec::with_capacity(inputs.len());
        let mut parts = Vec::with_capacity(inputs.len());
        for (index, &(text, tokens)) in inputs.iter().enumerate() {
            let start = texts.len();
            if tokens <= max {
                texts.push(text.to_string());
                counts.push(tokens);
            } else if self.settings.oversize_input == OversizeInput::Reject {
                return Err(EmbedError::InputTooLong { index, tokens, max });
            } else {
                // Split where the text allows (paragraphs, sentences, words), sized by the
                // model's own tokenizer, as chunking does.
                let config = ChunkConfig::new(max).with_sizer(self.tokenizer.clone());
                for part in TextSplitter::new(config).chunks(text) {
                    counts.push(self.tokenizer.count(part));
                    texts.push(part.to_string());
                }
            }
            parts.push(start..texts.len());
        }
        Ok(Prepared {
            texts,
            counts,
            parts,
        })
    }

    /// Sends one request's worth of inputs, paced by the limiter and retried on transient
    /// errors; returns the vectors in input order. `usage` gets the billed tokens and the
    /// request and retry counts; with a `bill`, every try is in the ledger before it is sent.
    pub async fn send(
        &self,
        texts: Vec<String>,
        tokens: u64,
        usage: &mut Usage,
        bill: Option<Bill<'_>>,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        let (client, limiter) = match &self.backend {
            Backend::Api { client, limiter } => (client, limiter),
            Backend::Local { model, gate } => {
                return Self::send_local(model, gate, texts, usage, bill).await
            }
        };
        let tries = std::sync::atomic::AtomicU32::new(0);
        if let Some(err) = self.halted() {
            return Err(err);
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.settings.retry_min_delay_ms))
            .with_max_delay(Duration::from_secs(self.settings.retry_max_delay_secs))
            .with_max_times(self.settings.max_retries)
            .with_jitter();
        let mut retries = 0u32;
        let mut rate_limited = 0u32;
        let attempt = || async {
            if let Some(err) = self.halted() {
                return Err(err);
            }
            let _permit = limiter.acquire(tokens).await;
            let retry = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let entry = match &bill {
                Some(bill) => Some((bill, bill.record(retry).await?)),
                None => None,
            };
            let result = self
                .request(client, texts.clone())
                .await
                .map_err(|e| self.explain(e));
            if let Some((bill, entry)) = entry {
                bill.answer(entry, &result).await;
            }
            match &result {
                Ok(_) => limiter.succeeded(),
                Err(e) if e.is_rate_limit() && e.is_retryable() => {
                    limiter.rate_limited(e.retry_after())
                }
                Err(e) if e.halts_provider() => {
                    tracing::error!(error = %e, halt_s = self.settings.halt_secs, "embedding provider refused: no requests until the halt expires");
                    self.halted
                        .trip(Duration::from_secs(self.settings.halt_secs), e.clone());
                }
                Err(_) => {}
            }
            result
        };
        let result = attempt
            .retry(backoff)
            .when(EmbedError::is_retryable)
            // After a 429 the limiter already holds every request until the provider's reset;
            // backing off on top of that would only idle the quota. Other errors get the
            // capped, jittered exponential spacing.
            .adjust(|err, delay| {
                delay.map(|d| if err.is_rate_limit() { Duration::ZERO } else { d })
            })
            .notify(|err, delay| {
                retries += 1;
                if err.is_rate_limit() {
                    rate_limited += 1;
                }
                metrics::counter!("ragworker_embedding_retries_total").increment(1);
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "embedding request failed, retrying");
            })
            .await;
        usage.retries += retries;
        usage.rate_limited += rate_limited;
        usage.requests += retries + 1;
        let (indexed, billed) = result.inspect_err(|e| {
            if e.is_rate_limit() {
                usage.rate_limited += 1;
            }
        })?;
        // Billed as soon as the provider answered 200, even if the body turns out unusable.
        usage.tokens += billed;
        metrics::counter!("ragworker_embedding_tokens_total").increment(billed);
        order_by_index(indexed, texts.len(), self.settings.dimensions as usize)
    }

    /// A provider's refusal of an over-long input or of too many inputs, told as such with
    /// the setting that causes it (Ollama: "the input length exceeds the context length";
    /// TEI, vLLM: "... maximum context length ...", "batch size 64 > maximum allowed batch
    /// size 32"); other errors as they are.
    fn explain(&self, err: EmbedError) -> EmbedError {
        let (status, message) = match &err {
            EmbedError::Api {
                status: status @ (400 | 413 | 422),
                message,
                ..
            } => (*status, message.clone()),
            _ => return err,
        };
        if error::says_batch_too_large(&message) {
            let max = self.settings.max_inputs_per_request;
            EmbedError::ProviderBatchTooLarge {
                status,
                message,
                max,
            }
        } else if error::says_too_long(&message) {
            let max = self.settings.max_input_tokens;
            EmbedError::ProviderInputTooLong {
                status,
                message,
                max,
            }
        } else {
            err
        }
    }

    /// One forward pass of the local model on the blocking pool. Its usage is the tokens
    /// the model read (at no cost), so usage_logs shows local work like paid work.
    async fn send_local(
        model: &Arc<LocalModel>,
        gate: &tokio::sync::Semaphore,
        texts: Vec<String>,
        usage: &mut Usage,
        bill: Option<Bill<'_>>,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        let _turn = gate
            .acquire()
            .await
            .map_err(|_| EmbedError::EngineStopped("the local model's gate closed".into()))?;
        let entry = match &bill {
            Some(bill) => Some((bill, bill.record(0).await?)),
            None => None,
        };
        let started = Instant::now();
        let model = model.clone();
        let embedded = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            model.embed(&refs)
        })
        .await
        .map_err(|e| EmbedError::Local(format!("the model crashed: {e}")))
        .and_then(|r| r.map_err(|e| EmbedError::Local(e.to_string())))
        .map(|e| {
            let tokens = e.tokens;
            (e, tokens)
        });
        if let Some((bill, entry)) = entry {
            bill.answer(entry, &embedded).await;
        }
        let (embedded, _) = embedded?;
        usage.requests += 1;
        usage.tokens += embedded.tokens;
        metrics::histogram!("ragworker_embedding_request_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("ragworker_embedding_requests_total", "outcome" => "ok").increment(1);
        metrics::counter!("ragworker_embedding_tokens_total").increment(embedded.tokens);
        embedded
            .vectors
            .iter()
            .enumerate()
            .map(|(index, v)| {
                let vector: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
                check_values(index, &vector).map(|()| HalfVector::from(vector))
            })
            .collect()
    }

    /// One HTTP request; returns the vectors with their `index` and the tokens billed.
    async fn request(
        &self,
        client: &Client<OpenAIConfig>,
        texts: Vec<String>,
    ) -> Result<Answer, EmbedError> {
        let request = CreateEmbeddingRequest {
            model: self.settings.model.clone(),
            input: EmbeddingInput::StringArray(texts),
            encoding_format: Some(match self.settings.encoding_format {
                EncodingFormat::Base64 => WireEncoding::Base64,
                EncodingFormat::Float => WireEncoding::Float,
            }),
            user: None,
            dimensions: self
                .settings
                .sends_dimensions()
                .then_some(self.settings.dimensions),
        };
        let started = Instant::now();
        let embeddings = client.embeddings();
        let outcome: Result<Answer, EmbedError> = match self.settings.encoding_format {
            EncodingFormat::Base64 => match embeddings.create_base64(request).await {
                Ok(resp) => resp
                    .data
                    .into_iter()
                    .map(|e| decode_base64(&e.embedding.0).map(|v| (e.index, v)))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| (v, u64::from(resp.usage.prompt_tokens))),
                Err(e) => Err(e.into()),
            },
            EncodingFormat::Float => match embeddings.create(request).await {
                Ok(resp) => Ok((
                    resp.data
                        .into_iter()
                        .map(|e| {
                            (
                                e.index,
                                e.embedding.iter().map(|&x| f16::from_f32(x)).collect(),
                            )
                        })
                        .collect(),
                    u64::from(resp.usage.prompt_tokens),
                )),
                Err(e) => Err(e.into()),
            },
        };
        let label = match &outcome {
            Ok(_) => "ok",
            Err(EmbedError::Api { status: 429, .. }) => "rate_limited",
            Err(_) => "error",
        };
        metrics::histogram!("ragworker_embedding_request_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("ragworker_embedding_requests_total", "outcome" => label).increment(1);
        if label == "rate_limited" {
            metrics::counter!("ragworker_embedding_rate_limited_total").increment(1);
        }
        outcome
    }
}

/// Folds the vectors of split inputs back into one per original input: the token-weighted
/// mean of its parts, normalised (parts have equal weight per token, as in OpenAI's
/// cookbook recipe for long inputs).
pub fn combine_parts(vectors: Vec<HalfVector>, parts: &[Range<usize>]) -> Vec<HalfVector> {
    if parts.iter().all(|r| r.len() == 1) {
        return vectors;
    }
    let vectors: Vec<Vec<f16>> = vectors.into_iter().map(Vec::from).collect();
    parts
        .iter()
        .map(|range| {
            if range.len() == 1 {
                return HalfVector::from(vectors[range.start].clone());
            }
            let dims = vectors[range.start].len();
            let mut sum = vec![0f32; dims];
            for v in &vectors[range.clone()] {
                for (s, x) in sum.iter_mut().zip(v) {
                    *s += x.to_f32();
                }
            }
            let norm = sum
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            HalfVector::from(
                sum.iter()
                    .map(|x| f16::from_f32(x / norm))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Puts vectors back in input order by the response's `index` field and checks that every
/// input got exactly one vector of the configured dimension.
pub fn order_by_index(
    indexed: Vec<(u32, Vec<f16>)>,
    expected: usize,
    dimensions: usize,
) -> Result<Vec<HalfVector>, EmbedError> {
    if indexed.len() != expected {
        return Err(EmbedError::BadResponse(format!(
            "{} embeddings for {expected} inputs",
            indexed.len()
        )));
    }
    let mut slots: Vec<Option<HalfVector>> = vec![None; expected];
    for (index, vector) in indexed {
        if vector.len() != dimensions {
            return Err(EmbedError::BadResponse(format!(
                "embedding of dimension {}, but embedding.dimensions is {dimensions}",
                vector.len()
            )));
        }
        check_values(index as usize, &vector)?;
        let slot = slots.get_mut(index as usize).ok_or_else(|| {
            EmbedError::BadResponse(format!(
                "embedding index {index} out of range for {expected} inputs"
            ))
        })?;
        if slot.replace(HalfVector::from(vector)).is_some() {
            return Err(EmbedError::BadResponse(format!(
                "embedding index {index} appears twice"
            )));
        }
    }
    // Every slot is filled: the count matched and no index repeated.
    Ok(slots.into_iter().flatten().collect())
}

/// A vector that cannot be searched is the provider's fault, never stored: NaN or infinite
/// values (recent Ollama versions answer NaN for some inputs; a value beyond half
/// precision's range becomes infinite), or all zeros, whose cosine similarity is undefined.
fn check_values(index: usize, vector: &[f16]) -> Result<(), EmbedError> {
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(EmbedError::BadResponse(format!(
            "the embedding of chunk {index} has NaN or infinite values (a provider bug; nothing was stored)"
        )));
    }
    if vector.iter().all(|x| x.to_f32() == 0.0) {
        return Err(EmbedError::BadResponse(format!(
            "the embedding of chunk {index} is all zeros (a provider bug; nothing was stored)"
        )));
    }
    Ok(())
}

/// base64 of little-endian f32s, straight to f16.
fn decode_base64(encoded: &str) -> Result<Vec<f16>, EmbedError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| EmbedError::BadResponse(format!("invalid base64 embedding: {e}")))?;
    if bytes.len() % 4 != 0 {
        return Err(EmbedError::BadResponse(
            "base64 embedding is not a whole number of f32 values".into(),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_input_and_token_limits() {
        let counts = vec![100, 200, 300, 50, 50, 400, 10];
        let batches = plan_batches(&counts, 3, 500);
        assert_eq!(batches, vec![0..2, 2..5, 5..7]);
        for b in &batches {
            assert!(b.len() <= 3);
            assert!(counts[b.clone()].iter().sum::<usize>() <= 500);
        }
        // Every input appears exactly once, in order.
        let flat: Vec<usize> = batches.into_iter().flatten().collect();
        assert_eq!(flat, (0..counts.len()).collect::<Vec<_>>());
        assert!(plan_batches(&[], 3, 10).is_empty());
        assert_eq!(plan_batches(&[1; 5], 2, 100), vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn vectors_are_ordered_by_index_and_checked() {
        let v = |x: f32| vec![f16::from_f32(x); 2];
        let out = order_by_index(vec![(1, v(1.0)), (0, v(0.5))], 2, 2).unwrap();
        assert_eq!(out[0].to_vec()[0], f16::from_f32(0.5));
        assert_eq!(out[1].to_vec()[0], f16::from_f32(1.0));
        let err = order_by_index(vec![(0, v(0.5))], 2, 2).unwrap_err();
        assert!(
            err.to_string().contains("1 embeddings for 2 inputs"),
            "{err}"
        );
        let err = order_by_index(vec![(0, vec![f16::ONE; 3])], 1, 2).unwrap_err();
        assert!(err.to_string().contains("dimension 3"), "{err}");
        let err = order_by_index(vec![(0, v(0.5)), (0, v(0.5))], 2, 2).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let err = order_by_index(vec![(5, v(0.5))], 1, 2).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        for (bad, reason) in [
            (vec![f16::ONE, f16::NAN], "NaN or infinite"),
            (vec![f16::INFINITY, f16::ONE], "NaN or infinite"),
            (vec![f16::ZERO, f16::NEG_ZERO], "all zeros"),
        ] {
            let err = order_by_index(vec![(0, v(0.5)), (1, bad)], 2, 2).unwrap_err();
            assert!(
                err.to_string().contains(&format!(
                    "chunk 1 {}",
                    if reason == "all zeros" { "is" } else { "has" }
                )),
                "{err}"
            );
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn base64_decodes_little_endian_f32() {
        let raw: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(
            decode_base64(&encoded).unwrap(),
            vec![f16::from_f32(1.5), f16::from_f32(-2.0)]
        );
        assert!(decode_base64("AAA=").is_err());
    }
}
