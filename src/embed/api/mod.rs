//! The OpenAI-compatible backend (`/v1/embeddings` through async-openai): our own transport
//! (`transport`) feeds every response's rate-limit headers (`headers`) to one limiter per
//! provider (`limiter`), and `send` is the retry loop: paced, counted, bounded, and halted
//! for everyone when the provider refuses the deployment (quota, key, batch limit).

mod headers;
mod limiter;
mod transport;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::{
    CreateEmbeddingRequest, EmbeddingInput, EncodingFormat as WireEncoding,
};
use async_openai::Client;
use backon::{ExponentialBuilder, Retryable};
use half::f16;
use pgvector::HalfVector;
use secrecy::ExposeSecret;

pub(super) use transport::ProviderFailure;

use limiter::RateLimiter;

use super::vectors::{decode_base64, order_by_index};
use super::{Bill, EmbedError, Usage};
use crate::config::{EmbeddingSettings, EncodingFormat};
use crate::halt::Halt;

/// A 200 answer: vectors with their `index`, and the tokens the provider billed.
type Answer = (Vec<(u32, Vec<f16>)>, u64);

/// One provider: its client, its limiter and its circuit breaker, shared by every file.
pub(super) struct Api {
    client: Client<OpenAIConfig>,
    limiter: Arc<RateLimiter>,
    settings: EmbeddingSettings,
    /// Set by a quota or authentication error: until then, nothing is sent.
    halted: Halt<EmbedError>,
}

impl Api {
    pub(super) fn new(settings: &EmbeddingSettings) -> Result<Self, EmbedError> {
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
            client,
            limiter,
            settings: settings.clone(),
            halted: Halt::new(),
        })
    }

    /// Tokens one request may carry: the provider's per-request limit, and no more than an
    /// eighth of its tokens-per-minute limit. A request larger than the whole minute's
    /// budget could never be accepted, and large requests make pacing lumpy.
    pub(super) fn max_request_tokens(&self) -> usize {
        let per_request = self.settings.max_tokens_per_request;
        match self.limiter.tokens_per_minute() {
            Some(tpm) => {
                per_request.min((tpm / 8).max(self.settings.max_input_tokens as u64) as usize)
            }
            None => per_request,
        }
    }

    /// Whether a request could be sent right now (see [`RateLimiter::request_ready`]).
    pub(super) fn request_ready(&self) -> bool {
        self.limiter.request_ready()
    }

    /// The quota or authentication error that stopped all requests, while it holds.
    pub(super) fn halted(&self) -> Option<EmbedError> {
        self.halted.current()
    }

    /// Sends one request's worth of inputs, paced by the limiter and retried on transient
    /// errors; returns the vectors in input order. `usage` gets the billed tokens and the
    /// request and retry counts; with a `bill`, every try is in the ledger before it is sent.
    pub(super) async fn send(
        &self,
        texts: Vec<String>,
        tokens: u64,
        usage: &mut Usage,
        bill: Option<Bill<'_>>,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        let limiter = &self.limiter;
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
                .request(texts.clone())
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
        if super::error::says_batch_too_large(&message) {
            let max = self.settings.max_inputs_per_request;
            EmbedError::ProviderBatchTooLarge {
                status,
                message,
                max,
            }
        } else if super::error::says_too_long(&message) {
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

    /// One HTTP request; returns the vectors with their `index` and the tokens billed.
    async fn request(&self, texts: Vec<String>) -> Result<Answer, EmbedError> {
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
        let embeddings = self.client.embeddings();
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
