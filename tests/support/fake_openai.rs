//! A fake OpenAI-compatible embeddings server: real HTTP on 127.0.0.1, deterministic vectors
//! derived from the input words, a `usage` block counted with cl100k_base, rate-limit
//! headers, and a script of faults (429 with reset headers, 5xx, quota, slow answers,
//! malformed bodies) to play in order.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

pub const API_KEY: &str = "sk-fake-test-key";

/// What the next request gets instead of a normal answer.
#[derive(Debug, Clone)]
#[allow(dead_code)] // each test binary uses a different subset
pub enum Fault {
    /// 429 rate_limit_exceeded with `retry-after-ms` and `x-ratelimit-reset-requests`.
    RateLimit { reset: Duration },
    /// 429 insufficient_quota (billing), which no retry fixes.
    Quota,
    /// 500 with a plain-text body.
    ServerError,
    /// 401 invalid_api_key.
    Unauthorized,
    /// 400 invalid_request_error: the provider rejects the input.
    BadRequest,
    /// 400 as Ollama answers an input longer than the model's context.
    InputTooLong,
    /// 413 as text-embeddings-inference answers more inputs than its batch limit.
    BatchTooLarge,
    /// Answer normally after a delay.
    Slow(Duration),
    /// 200 with vectors one element too long.
    WrongDimension,
    /// 200 with one vector fewer than inputs.
    MissingVector,
    /// 200 with NaN in the first input's vector (as recent Ollama versions answer).
    NanVector,
    /// 200 with the first input's vector all zeros.
    ZeroVector,
}

#[derive(Default)]
pub struct Stats {
    /// Every request that reached the server.
    pub requests: AtomicU64,
    /// Requests answered 200 (and billed).
    pub billed_requests: AtomicU64,
    pub billed_tokens: AtomicU64,
    pub rate_limited: AtomicU64,
    pub max_inputs_in_request: AtomicU64,
    pub inputs: AtomicU64,
    /// Every input of every billed request, in the order they were answered.
    pub received: Mutex<Vec<String>>,
}

/// A per-minute limit that refills continuously, like OpenAI's.
struct Bucket {
    per_minute: f64,
    available: f64,
    last: std::time::Instant,
}

impl Bucket {
    fn new(per_minute: u64) -> Self {
        Self {
            per_minute: per_minute as f64,
            available: per_minute as f64,
            last: std::time::Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = std::time::Instant::now();
        self.available = (self.available
            + now.duration_since(self.last).as_secs_f64() * self.per_minute / 60.0)
            .min(self.per_minute);
        self.last = now;
    }

    /// Time until `amount` is available.
    fn reset_in(&self, amount: f64) -> Duration {
        Duration::from_secs_f64(((amount - self.available).max(0.0)) * 60.0 / self.per_minute)
    }
}

struct Limits {
    requests: Bucket,
    tokens: Bucket,
}

struct Inner {
    dimensions: usize,
    limits: Option<Mutex<Limits>>,
    /// Added to every answer, in milliseconds.
    latency_ms: AtomicU64,
    /// Added per 1,000 tokens of a request: larger requests take longer, as real ones do.
    latency_per_ktok_us: AtomicU64,
    faults: Mutex<VecDeque<Fault>>,
    stats: Stats,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

#[derive(Deserialize)]
struct Request {
    #[allow(dead_code)]
    model: String,
    input: Input,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

impl FakeOpenAi {
    /// Starts the server on an ephemeral loopback port; it stops with the test's runtime.
    /// With `limits = Some((rpm, tpm))`, requests over either limit get 429 with
    /// `x-ratelimit-*` headers, as OpenAI answers.
    pub async fn start_with_limits(dimensions: usize, limits: Option<(u64, u64)>) -> Self {
        let inner = Arc::new(Inner {
            dimensions,
            limits: limits.map(|(rpm, tpm)| {
                Mutex::new(Limits {
                    requests: Bucket::new(rpm),
                    tokens: Bucket::new(tpm),
                })
            }),
            latency_ms: AtomicU64::new(0),
            latency_per_ktok_us: AtomicU64::new(0),
            faults: Mutex::new(VecDeque::new()),
            stats: Stats::default(),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(billed_even_if_abandoned))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { inner, addr }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues faults for the next requests, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner.faults.lock().unwrap().extend(faults);
    }

    /// Makes every later answer this slow.
    /// Makes every answer take `per_ktok` longer per 1,000 tokens of its request.
    #[allow(dead_code)] // the benchmark's; tests use a fixed latency
    pub fn set_latency_per_1k_tokens(&self, per_ktok: Duration) {
        self.inner
            .latency_per_ktok_us
            .store(per_ktok.as_micros() as u64, Ordering::SeqCst);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.inner
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    pub fn billed_tokens(&self) -> u64 {
        self.inner.stats.billed_tokens.load(Ordering::SeqCst)
    }

    /// The inputs of billed requests so far.
    pub fn received(&self) -> Vec<String> {
        self.inner.stats.received.lock().unwrap().clone()
    }

    pub fn requests(&self) -> u64 {
        self.inner.stats.requests.load(Ordering::SeqCst)
    }
}

fn tokenizer() -> &'static tiktoken_rs::CoreBPE {
    static BPE: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().unwrap())
}

/// Bag-of-words vector: each lowercase word adds ±1 at a hashed position; L2-normalised.
/// Texts sharing words have a high cosine similarity, so retrieval is testable.
pub fn embed_text(text: &str, dimensions: usize) -> Vec<f32> {
    let mut v = vec![0f32; dimensions];
    // Function words carry no topic; leaving them out keeps similarity about content.
    const STOP: &[&str] = &[
        "the", "and", "for", "are", "was", "with", "when", "what", "how", "does", "each", "its",
        "this", "that", "from", "into", "use", "should", "can", "our", "you", "your", "before",
        "after", "then", "than", "there", "their", "them", "they", "which", "who", "why", "all",
    ];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP.contains(&w.as_str()))
    {
        // FNV-1a: stable across runs and platforms.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in word.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % dimensions as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[0] = 1.0;
    }
    v
}

fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })),
    )
        .into_response()
}

/// A provider finishes (and bills) a request it received whole even if its client went away
/// meanwhile, as OpenAI does: the body is read and the answer computed in a task of its own,
/// which a dropped connection does not cancel.
async fn billed_even_if_abandoned(
    state: State<Arc<Inner>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let work = async move {
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => {
                embeddings(state, headers, String::from_utf8_lossy(&bytes).into_owned()).await
            }
            // The client went away before sending all of it: not a request.
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    };
    match tokio::spawn(work).await {
        Ok(response) => response,
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn embeddings(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: String) -> Response {
    let stats = &inner.stats;
    stats.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {API_KEY}"))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        );
    }
    let latency = inner.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let fault = inner.faults.lock().unwrap().pop_front();
    match &fault {
        Some(Fault::RateLimit { reset }) => {
            stats.rate_limited.fetch_add(1, Ordering::SeqCst);
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "rate_limit_exceeded",
                "Rate limit reached for requests per min. Please try again later.",
            );
            let ms = reset.as_millis().to_string();
            let h = resp.headers_mut();
            h.insert("retry-after-ms", HeaderValue::from_str(&ms).unwrap());
            h.insert(
                "x-ratelimit-reset-requests",
                HeaderValue::from_str(&format!("{ms}ms")).unwrap(),
            );
            h.insert(
                "x-ratelimit-remaining-requests",
                HeaderValue::from_static("0"),
            );
            return resp;
        }
        Some(Fault::Quota) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details.",
            )
        }
        Some(Fault::ServerError) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response()
        }
        Some(Fault::Unauthorized) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect API key provided.",
            )
        }
        Some(Fault::BadRequest) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_input",
                "'$.input' is invalid. Please check the API reference.",
            )
        }
        Some(Fault::InputTooLong) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_input",
                "the input length exceeds the context length",
            )
        }
        Some(Fault::BatchTooLarge) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "validation",
                "validation",
                "Input validation error: batch size 64 > maximum allowed batch size 32",
            )
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let request: Request = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                &e.to_string(),
            )
        }
    };
    let inputs = match request.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v,
    };
    if inputs.is_empty() || inputs.len() > 2048 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_input",
            "'input' must have 1 to 2048 items",
        );
    }
    let mut tokens = 0u64;
    for text in &inputs {
        let n = tokenizer().encode_ordinary(text).len();
        if n > 8191 {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "context_length_exceeded",
                "This model's maximum context length is 8192 tokens.",
            );
        }
        tokens += n as u64;
    }
    let mut limit_headers: Vec<(&'static str, String)> = Vec::new();
    if let Some(limits) = &inner.limits {
        let mut l = limits.lock().unwrap();
        l.requests.refill();
        l.tokens.refill();
        let over = l.requests.available < 1.0 || l.tokens.available < tokens as f64;
        let header = |name: &'static str, value: String| (name, value);
        let reset_requests = l.requests.reset_in(1.0);
        let reset_tokens = l.tokens.reset_in(tokens as f64);
        if !over {
            l.requests.available -= 1.0;
            l.tokens.available -= tokens as f64;
        }
        limit_headers.extend([
            header(
                "x-ratelimit-limit-requests",
                format!("{}", l.requests.per_minute),
            ),
            header(
                "x-ratelimit-limit-tokens",
                format!("{}", l.tokens.per_minute),
            ),
            header(
                "x-ratelimit-remaining-requests",
                format!("{}", l.requests.available.max(0.0) as u64),
            ),
            header(
                "x-ratelimit-remaining-tokens",
                format!("{}", l.tokens.available.max(0.0) as u64),
            ),
            header(
                "x-ratelimit-reset-requests",
                format!("{}ms", reset_requests.as_millis()),
            ),
            header(
                "x-ratelimit-reset-tokens",
                format!("{}ms", reset_tokens.as_millis()),
            ),
        ]);
        drop(l);
        if over {
            stats.rate_limited.fetch_add(1, Ordering::SeqCst);
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "tokens",
                "rate_limit_exceeded",
                "Rate limit reached for text-embedding-3-small on tokens per min (TPM). Please try again later.",
            );
            for (name, value) in &limit_headers {
                resp.headers_mut()
                    .insert(*name, HeaderValue::from_str(value).unwrap());
            }
            return resp;
        }
    }
    let dims = request.dimensions.unwrap_or(inner.dimensions)
        + usize::from(matches!(fault, Some(Fault::WrongDimension)));
    let base64 = request.encoding_format.as_deref() == Some("base64");
    let per_ktok = inner.latency_per_ktok_us.load(Ordering::SeqCst);
    if per_ktok > 0 {
        tokio::time::sleep(Duration::from_micros(per_ktok * tokens / 1000)).await;
    }
    let mut data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let mut v = embed_text(text, dims);
            match fault {
                // JSON has no NaN: the float form carries null, which fails to parse, so the
                // fault is only faithful in base64, the default.
                Some(Fault::NanVector) if index == 0 => v[1] = f32::NAN,
                Some(Fault::ZeroVector) if index == 0 => v.fill(0.0),
                _ => {}
            }
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    // Real providers return data in order, but clients must not rely on it: reversing
    // catches a client that maps vectors by position instead of by `index`.
    data.reverse();
    if matches!(fault, Some(Fault::MissingVector)) {
        data.pop();
    }
    stats.billed_requests.fetch_add(1, Ordering::SeqCst);
    stats.billed_tokens.fetch_add(tokens, Ordering::SeqCst);
    stats
        .inputs
        .fetch_add(inputs.len() as u64, Ordering::SeqCst);
    stats
        .received
        .lock()
        .unwrap()
        .extend(inputs.iter().cloned());
    stats
        .max_inputs_in_request
        .fetch_max(inputs.len() as u64, Ordering::SeqCst);
    let mut resp = Json(json!({
        "object": "list",
        "data": data,
        "model": "text-embedding-3-small",
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens }
    }))
    .into_response();
    // The same headers as the real API: limits and what is left after this request.
    for (name, value) in &limit_headers {
        resp.headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    resp
}
