//! Embeddings for chunks and queries, through one of two backends: an OpenAI-compatible
//! `/v1/embeddings` API ([`api`]: transport, rate-limit headers, limiter, retry loop) or the
//! in-process model ([`local`]). Both share what is around them: the tokenizer the model
//! counts with ([`tokenizer`]), over-long inputs split into parts, one packing rule
//! ([`pack`]), one batcher for every file in flight ([`batcher`]), the cost ledger written
//! before each request ([`Bill`]), vector checks ([`vectors`]) and one error type with its
//! classifier ([`error`]).

mod api;
mod batcher;
mod bert;
mod error;
pub mod local;
mod pack;
mod tokenizer;
mod vectors;

use std::ops::Range;

use pgvector::HalfVector;
use text_splitter::{ChunkConfig, TextSplitter};

pub use batcher::Batcher;
pub use error::EmbedError;
pub use tokenizer::{cl100k, Tokenizer};

use pack::plan_batches;
use vectors::combine_parts;

use crate::config::{EmbeddingSettings, OversizeInput};
use crate::ledger::{Entry, Ledger, Share};

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

/// Inputs ready to send: over-long ones split into parts.
pub struct Prepared {
    pub texts: Vec<String>,
    pub counts: Vec<usize>,
    /// For each original input, the range of `texts` it became.
    pub parts: Vec<Range<usize>>,
}

/// A file's vectors (or why there are none) and what they cost.
pub type Embedded = (Result<Vec<HalfVector>, EmbedError>, Usage);

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
/// concurrency cap and one circuit breaker per provider, chosen here and nowhere else.
pub struct Embedder {
    backend: Backend,
    settings: EmbeddingSettings,
    tokenizer: Tokenizer,
}

enum Backend {
    /// Boxed: it carries the client and its settings, the local backend a pointer.
    Api(Box<api::Api>),
    Local(local::Local),
}

impl Embedder {
    pub fn new(settings: &EmbeddingSettings) -> Result<Self, EmbedError> {
        let (backend, tokenizer) = if settings.provider == "local" {
            let local = local::Local::load(settings)?;
            let tokenizer = Tokenizer::Local(local.model.clone());
            (Backend::Local(local), tokenizer)
        } else {
            let tokenizer = Tokenizer::cl100k().map_err(EmbedError::BadResponse)?;
            (Backend::Api(Box::new(api::Api::new(settings)?)), tokenizer)
        };
        Ok(Self {
            backend,
            settings: settings.clone(),
            tokenizer,
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

    /// Tokens one request may carry (see [`api::Api::max_request_tokens`]); the local model
    /// takes `max_tokens_per_request`.
    pub fn max_request_tokens(&self) -> usize {
        match &self.backend {
            Backend::Api(api) => api.max_request_tokens(),
            Backend::Local(_) => self.settings.max_tokens_per_request,
        }
    }

    /// Whether a request could be sent right now; the local model always takes one.
    pub fn request_ready(&self) -> bool {
        match &self.backend {
            Backend::Api(api) => api.request_ready(),
            Backend::Local(_) => true,
        }
    }

    /// The quota or authentication error that stopped all requests, while it holds.
    pub fn halted(&self) -> Option<EmbedError> {
        match &self.backend {
            Backend::Api(api) => api.halted(),
            Backend::Local(_) => None,
        }
    }

    /// Sends one request's worth of inputs through the backend; returns the vectors in
    /// input order. `usage` gets what was spent; with a `bill`, every try is in the ledger
    /// before it is sent.
    pub async fn send(
        &self,
        texts: Vec<String>,
        tokens: u64,
        usage: &mut Usage,
        bill: Option<Bill<'_>>,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        match &self.backend {
            Backend::Api(api) => api.send(texts, tokens, usage, bill).await,
            Backend::Local(local) => local.send(texts, usage, bill).await,
        }
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
}
