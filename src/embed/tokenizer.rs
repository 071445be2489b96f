//! Counting tokens the way the model does: cl100k_base for OpenAI's embedding models, the
//! local model's own WordPiece otherwise. Built by the embedder with its backend, so the
//! provider is chosen in one place; chunking sizes chunks with it.

use std::sync::Arc;

use text_splitter::ChunkSizer;
use tiktoken_rs::CoreBPE;

use super::local::LocalModel;

/// The cl100k_base tokenizer (OpenAI's embedding models), built once per process: loading
/// its 100k-entry vocabulary takes a noticeable fraction of a second.
pub fn cl100k() -> Result<Arc<CoreBPE>, String> {
    static BPE: std::sync::OnceLock<Result<Arc<CoreBPE>, String>> = std::sync::OnceLock::new();
    BPE.get_or_init(|| {
        tiktoken_rs::cl100k_base()
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .clone()
}

/// Counts tokens the way the embedding model will, so a chunk of `max_tokens` is exactly
/// what the model accepts.
#[derive(Clone)]
pub enum Tokenizer {
    /// OpenAI's embedding models.
    Cl100k(Arc<CoreBPE>),
    /// The in-process model; counts include its [CLS] and [SEP] tokens.
    Local(Arc<LocalModel>),
}

impl Tokenizer {
    pub fn cl100k() -> Result<Self, String> {
        cl100k().map(Tokenizer::Cl100k)
    }

    pub fn count(&self, text: &str) -> usize {
        match self {
            Tokenizer::Cl100k(bpe) => bpe.encode_ordinary(text).len(),
            Tokenizer::Local(model) => model.count_tokens(text),
        }
    }

    /// Byte offsets where each token of `text` ends, in order, without the tokens the
    /// tokenizer adds to every text (see [`Tokenizer::added`]). Empty if they cannot be had.
    pub fn token_ends(&self, text: &str) -> Vec<usize> {
        match self {
            Tokenizer::Cl100k(bpe) => {
                let mut end = 0;
                let mut ends = Vec::new();
                for token in bpe.encode_ordinary(text) {
                    match bpe.decode_bytes(&[token]) {
                        Ok(bytes) => end += bytes.len(),
                        Err(_) => return Vec::new(),
                    }
                    ends.push(end);
                }
                ends
            }
            Tokenizer::Local(model) => model.token_ends(text),
        }
    }

    /// Tokens counted for every text, even an empty one ([CLS] and [SEP] for WordPiece).
    pub fn added(&self) -> usize {
        self.count("")
    }
}

impl ChunkSizer for Tokenizer {
    fn size(&self, chunk: &str) -> usize {
        self.count(chunk)
    }
}
