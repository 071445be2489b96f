//! Embeddings through an OpenAI-compatible `/v1/embeddings` API (async-openai), with
//! request packing, retries that honour the provider's rate-limit headers, and exact usage.

mod headers;
mod transport;

use std::ops::Range;
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::embeddings::{
    CreateEmbeddingRequest, EmbeddingInput, EncodingFormat as WireEncoding,
};
use async_openai::Client;
use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use half::f16;
use pgvector::HalfVector;
use secrecy::ExposeSecret;

pub use headers::{parse_reset, RateLimitHeaders};
pub use transport::ProviderFailure;

use crate::config::{EmbeddingSettings, EncodingFormat};
use crate::error::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding API returned HTTP {status}{}: {message}", code_suffix(.code))]
    Api {
        status: u16,
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("embedding API unreachable: {0}")]
    Network(String),
    #[error("embedding API returned an unusable response: {0}")]
    BadResponse(String),
    #[error("chunk {index} has {tokens} tokens, over the model's limit of {max} per input")]
    InputTooLong {
        index: usize,
        tokens: usize,
        max: usize,
    },
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

impl EmbedError {
    /// Rate limits and outages pass; quota, auth and rejected input do not.
    pub fn class(&self) -> ErrorClass {
        match self {
            EmbedError::Api {
                status,
                code,
                retry_after,
                ..
            } => {
                let quota = code.as_deref() == Some("insufficient_quota");
                match status {
                    429 if quota => ErrorClass::Permanent,
                    429 | 408 | 409 => ErrorClass::Transient {
                        retry_after: *retry_after,
                    },
                    s if *s >= 500 => ErrorClass::Transient {
                        retry_after: *retry_after,
                    },
                    _ => ErrorClass::Permanent,
                }
            }
            EmbedError::Network(_) => ErrorClass::Transient { retry_after: None },
            EmbedError::BadResponse(_) | EmbedError::InputTooLong { .. } => ErrorClass::Permanent,
        }
    }

    fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::Transient { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self.class() {
            ErrorClass::Transient { retry_after } => retry_after,
            _ => None,
        }
    }

    fn is_rate_limit(&self) -> bool {
        matches!(self, EmbedError::Api { status: 429, .. })
    }
}

impl From<OpenAIError> for EmbedError {
    fn from(err: OpenAIError) -> Self {
        match err {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<ProviderFailure>() {
                Ok(f) => EmbedError::Api {
                    status: f.status,
                    code: f.code.or(f.kind),
                    message: f.message,
                    retry_after: f.rate_limits.wait_hint(),
                },
                Err(other) => match other.downcast::<reqwest::Error>() {
                    Ok(e) => EmbedError::Network(error_chain(&*e)),
                    Err(other) => EmbedError::Network(other.to_string()),
                },
            },
            OpenAIError::Reqwest(e) => EmbedError::Network(error_chain(&e)),
            OpenAIError::ApiError(api) => EmbedError::Api {
                status: api.status_code.as_u16(),
                code: api.api_error.code.or(api.api_error.r#type),
                message: api.api_error.message,
                retry_after: None,
            },
            OpenAIError::JSONDeserialize(e, _) => EmbedError::BadResponse(e.to_string()),
            other => EmbedError::BadResponse(other.to_string()),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What embedding cost, for usage_logs. Tokens are the provider's own count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub tokens: u64,
    pub requests: u32,
    pub retries: u32,
    pub rate_limited: u32,
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

/// A 200 answer: vectors with their `index`, and the tokens the provider billed.
type Answer = (Vec<(u32, Vec<f16>)>, u64);

/// Client for one configured model.
#[derive(Clone)]
pub struct Embedder {
    client: Client<OpenAIConfig>,
    settings: EmbeddingSettings,
}

impl Embedder {
    pub fn new(settings: &EmbeddingSettings) -> Result<Self, EmbedError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| EmbedError::Network(e.to_string()))?;
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(settings.api_key.expose_secret());
        // Our own transport replaces async-openai's built-in retry layer: retries happen
        // below in `request_with_retries`, where they are counted and bounded per request.
        let client =
            Client::with_config(config).with_http_service(transport::ProviderService::new(http));
        Ok(Self {
            client,
            settings: settings.clone(),
        })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    pub fn dimensions(&self) -> u32 {
        self.settings.dimensions
    }

    /// Embeds `inputs` (with their token counts), adding what was spent to `usage` as it
    /// goes, so a failure part-way still accounts for the requests that succeeded.
    pub async fn embed(
        &self,
        inputs: &[&str],
        token_counts: &[usize],
        usage: &mut Usage,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        debug_assert_eq!(inputs.len(), token_counts.len());
        let max = self.settings.max_input_tokens;
        if let Some((index, &tokens)) = token_counts.iter().enumerate().find(|(_, &t)| t > max) {
            return Err(EmbedError::InputTooLong { index, tokens, max });
        }
        let mut vectors = Vec::with_capacity(inputs.len());
        for batch in plan_batches(
            token_counts,
            self.settings.max_inputs_per_request,
            self.settings.max_tokens_per_request,
        ) {
            let texts: Vec<String> = inputs[batch].iter().map(|s| s.to_string()).collect();
            vectors.extend(self.request_with_retries(texts, usage).await?);
        }
        Ok(vectors)
    }

    async fn request_with_retries(
        &self,
        texts: Vec<String>,
        usage: &mut Usage,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.settings.retry_min_delay_ms))
            .with_max_delay(Duration::from_secs(self.settings.retry_max_delay_secs))
            .with_max_times(self.settings.max_retries)
            .with_jitter();
        let mut retries = 0u32;
        let mut rate_limited = 0u32;
        let result = (|| self.request(texts.clone()))
            .retry(backoff)
            .when(EmbedError::is_retryable)
            // The provider knows when its window resets; sleeping less only earns another 429.
            .adjust(|err, delay| delay.map(|d| err.retry_after().map_or(d, |hint| hint.max(d))))
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
        usage.requests += retries;
        usage.requests += 1;
        let (indexed, tokens) = result.inspect_err(|e| {
            if e.is_rate_limit() {
                usage.rate_limited += 1;
            }
        })?;
        // Billed as soon as the provider answered 200, even if the body turns out unusable.
        usage.tokens += tokens;
        metrics::counter!("ragworker_embedding_tokens_total").increment(tokens);
        order_by_index(indexed, texts.len(), self.settings.dimensions as usize)
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
        let out = order_by_index(vec![(1, v(1.0)), (0, v(0.0))], 2, 2).unwrap();
        assert_eq!(out[0].to_vec()[0], f16::from_f32(0.0));
        assert_eq!(out[1].to_vec()[0], f16::from_f32(1.0));
        let err = order_by_index(vec![(0, v(0.0))], 2, 2).unwrap_err();
        assert!(
            err.to_string().contains("1 embeddings for 2 inputs"),
            "{err}"
        );
        let err = order_by_index(vec![(0, vec![f16::ZERO; 3])], 1, 2).unwrap_err();
        assert!(err.to_string().contains("dimension 3"), "{err}");
        let err = order_by_index(vec![(0, v(0.0)), (0, v(0.0))], 2, 2).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let err = order_by_index(vec![(5, v(0.0))], 1, 2).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
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

    #[test]
    fn classification_rules() {
        let api = |status: u16, code: Option<&str>| EmbedError::Api {
            status,
            code: code.map(String::from),
            message: "m".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        let later = ErrorClass::Transient {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(api(429, Some("rate_limit_exceeded")).class(), later);
        assert_eq!(
            api(429, Some("insufficient_quota")).class(),
            ErrorClass::Permanent
        );
        assert_eq!(api(500, None).class(), later);
        assert_eq!(api(503, None).class(), later);
        assert_eq!(
            api(401, Some("invalid_api_key")).class(),
            ErrorClass::Permanent
        );
        assert_eq!(api(403, None).class(), ErrorClass::Permanent);
        assert_eq!(
            api(400, Some("context_length_exceeded")).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            EmbedError::Network("timed out".into()).class(),
            ErrorClass::Transient { retry_after: None }
        );
        assert_eq!(
            EmbedError::BadResponse("x".into()).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            api(429, Some("insufficient_quota")).to_string(),
            "embedding API returned HTTP 429 (insufficient_quota): m"
        );
    }
}
