//! Embedding errors and their one classifier: what each means for the file (retry, fail,
//! release) and for the provider (halt), and how the OpenAI client's errors map onto them.

use std::time::Duration;

use async_openai::error::OpenAIError;

use super::api::ProviderFailure;
use crate::error::ErrorClass;

#[derive(Debug, Clone, thiserror::Error)]
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
    #[error("local embedding model failed: {0}")]
    Local(String),
    /// The provider refused an input as longer than its model reads: the configured limit
    /// is above the model's (self-hosted servers answer 400 where OpenAI truncates nothing).
    #[error("the provider refused an input as too long (HTTP {status}: {message}); set embedding.max_input_tokens (now {max}) and chunking.max_tokens to the model's context length or less")]
    ProviderInputTooLong {
        status: u16,
        message: String,
        max: usize,
    },
    /// The provider takes fewer inputs per request than `embedding.max_inputs_per_request`
    /// (self-hosted servers cap it at 32 or fewer): every request would meet it, so the
    /// provider is halted and the file waits, unharmed.
    #[error("the provider refused a request of more inputs than it takes (HTTP {status}: {message}); set embedding.max_inputs_per_request (now {max}) to its limit")]
    ProviderBatchTooLarge {
        status: u16,
        message: String,
        max: usize,
    },
    /// The batching engine's task ended (a panic): no file can be embedded by this process
    /// any more. Not the file's fault: it is released, and the worker stops claiming.
    #[error("the embedding engine stopped: {0}")]
    EngineStopped(String),
    /// The request could not be written to the cost ledger before sending (the database
    /// failed), so it was not sent: money is only spent where it is recorded.
    #[error("could not record the request in the cost ledger: {0}")]
    Ledger(String),
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

impl EmbedError {
    /// Rate limits and outages pass; quota and credentials are the deployment's problem (the
    /// file waits, unharmed, while the provider is halted); rejected input is the file's.
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
                    429 if quota => ErrorClass::Paused,
                    401 | 403 => ErrorClass::Paused,
                    429 | 408 | 409 => ErrorClass::Transient {
                        retry_after: *retry_after,
                    },
                    s if *s >= 500 => ErrorClass::Transient {
                        retry_after: *retry_after,
                    },
                    _ => ErrorClass::Permanent,
                }
            }
            EmbedError::Network(_) | EmbedError::Ledger(_) => {
                ErrorClass::Transient { retry_after: None }
            }
            // The local model is deterministic: what failed once fails again.
            EmbedError::BadResponse(_)
            | EmbedError::InputTooLong { .. }
            | EmbedError::ProviderInputTooLong { .. }
            | EmbedError::Local(_) => ErrorClass::Permanent,
            EmbedError::EngineStopped(_) => ErrorClass::Shutdown,
            EmbedError::ProviderBatchTooLarge { .. } => ErrorClass::Paused,
        }
    }

    /// Quota and authentication errors: every later request would fail the same way.
    pub(super) fn halts_provider(&self) -> bool {
        match self {
            EmbedError::Api { status, code, .. } => {
                *status == 401 || *status == 403 || code.as_deref() == Some("insufficient_quota")
            }
            EmbedError::ProviderBatchTooLarge { .. } => true,
            _ => false,
        }
    }

    pub(super) fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::Transient { .. })
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self.class() {
            ErrorClass::Transient { retry_after } => retry_after,
            _ => None,
        }
    }

    pub(super) fn is_rate_limit(&self) -> bool {
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

/// Whether a provider's refusal says a request had more inputs than it takes.
pub(super) fn says_batch_too_large(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["batch size", "too many inputs", "maximum allowed batch"]
        .iter()
        .any(|p| m.contains(p))
}

/// Whether a provider's refusal says an input was longer than its model reads (Ollama,
/// TEI and vLLM word it differently).
pub(super) fn says_too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "context length",
        "too long",
        "maximum context",
        "input length",
        "exceeds the max",
        "must have less than",
    ]
    .iter()
    .any(|p| m.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ErrorClass::Paused
        );
        assert_eq!(api(500, None).class(), later);
        assert_eq!(api(503, None).class(), later);
        assert_eq!(
            api(401, Some("invalid_api_key")).class(),
            ErrorClass::Paused
        );
        assert_eq!(api(403, None).class(), ErrorClass::Paused);
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

    #[test]
    fn over_long_refusals_are_recognised_in_each_servers_words() {
        for said in [
            "the input length exceeds the context length",
            "This model's maximum context length is 8192 tokens",
            "Input validation error: `inputs` must have less than 512 tokens. Given: 700",
        ] {
            assert!(says_too_long(said), "{said}");
        }
        assert!(!says_too_long(
            "'$.input' is invalid. Please check the API reference."
        ));
        let tei = "Input validation error: batch size 64 > maximum allowed batch size 32";
        assert!(says_batch_too_large(tei) && !says_too_long(tei));
    }
}
