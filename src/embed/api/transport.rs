//! The HTTP layer under async-openai: sends each request once (retries are the embedder's
//! job) and turns an error response into a `ProviderFailure` that keeps the rate-limit
//! headers async-openai would otherwise drop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_openai::error::OpenAIError;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use reqwest::Response;
use serde::Deserialize;

use super::headers::RateLimitHeaders;
use super::limiter::RateLimiter;

/// An error answer from the provider, with what its headers said about rate limits.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {message}")]
pub struct ProviderFailure {
    pub status: u16,
    pub kind: Option<String>,
    pub code: Option<String>,
    pub message: String,
    pub rate_limits: RateLimitHeaders,
}

#[derive(Deserialize)]
struct Wrapped {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub(super) struct ProviderService {
    inner: ReqwestService,
    limiter: Arc<RateLimiter>,
}

impl ProviderService {
    pub(super) fn new(client: reqwest::Client, limiter: Arc<RateLimiter>) -> Self {
        Self {
            inner: ReqwestService::new(client),
            limiter,
        }
    }
}

impl tower::Service<HttpRequestFactory> for ProviderService {
    type Response = Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let fut = self.inner.call(request);
        let limiter = self.limiter.clone();
        Box::pin(async move {
            let response = fut.await.map_err(|e| match e {
                // Keep reqwest errors typed so the embedder can tell a timeout from a refusal.
                OpenAIError::Reqwest(e) => OpenAIError::Boxed(Box::new(e)),
                other => other,
            })?;
            let status = response.status();
            let rate_limits = RateLimitHeaders::parse(response.headers());
            limiter.observe(&rate_limits);
            if status.is_success() {
                return Ok(response);
            }
            let body = response.bytes().await.unwrap_or_default();
            let failure = match serde_json::from_slice::<Wrapped>(&body) {
                Ok(w) => ProviderFailure {
                    status: status.as_u16(),
                    kind: w.error.kind,
                    code: w.error.code.map(|c| match c {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
                    message: w.error.message.unwrap_or_default(),
                    rate_limits,
                },
                Err(_) => ProviderFailure {
                    status: status.as_u16(),
                    kind: None,
                    code: None,
                    message: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
                    rate_limits,
                },
            };
            Err(OpenAIError::Boxed(Box::new(failure)))
        })
    }
}
