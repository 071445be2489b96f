//! In-process embeddings with a sentence-transformers BERT model (all-MiniLM-L6-v2) on the
//! CPU: WordPiece tokenisation, the BERT forward pass ([`super::bert`]), mean pooling over
//! each input's tokens and L2 normalisation, the same pipeline as sentence-transformers, so
//! the vectors match those other tools compute for the same model.
//!
//! Everything here is synchronous and CPU-bound (the forward pass spreads over rayon's
//! threads, one per core unless `RAYON_NUM_THREADS` says otherwise); async callers run it
//! inside `tokio::task::spawn_blocking`, which [`Local`], the backend, does one batch at a
//! time, so the runtime's threads stay free for the worker's other stages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use half::f16;
use pgvector::HalfVector;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::bert::{Bert, Input, Layer, Norm, Packed, Shape};
use super::vectors::check_values;
use super::{Bill, EmbedError, Usage};
use crate::config::EmbeddingSettings;

const FETCH_HINT: &str = "run scripts/fetch_model.sh or point embedding.local_model_dir at a \
                          sentence-transformers snapshot";

/// The files `load` cannot do without (the rest of a snapshot is optional).
const WEIGHTS_FILE: &str = "model.safetensors";
const TOKENIZER_FILE: &str = "tokenizer.json";
const CONFIG_FILE: &str = "config.json";
/// sentence-transformers' own settings: `max_seq_length` lives here, not in config.json.
const SENTENCE_CONFIG_FILE: &str = "sentence_bert_config.json";
const POOLING_CONFIG_FILE: &str = "1_Pooling/config.json";

/// Inputs per forward pass. Inputs are not padded, so this only bounds how much work one
/// pass holds; 16 inputs of ~200 tokens already split into 33 row blocks for the cores.
const MAX_BATCH_INPUTS: usize = 16;
/// Tokens per forward pass (batch size × longest input in it): caps the activations of a
/// batch (4096 tokens × (384 + 1152 + 384) floats, 31 MB) whatever the input lengths.
const MAX_BATCH_TOKENS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum LocalModelError {
    #[error("model directory {} has no {file} ({FETCH_HINT})", .dir.display())]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a usable model configuration: {source}", .path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {reason}", .path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("cannot load the tokenizer {}: {source}", .path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },
    #[error("cannot load BERT weights from {}: {reason}", .path.display())]
    Weights { path: PathBuf, reason: String },
    #[error("tokenisation failed: {0}")]
    Tokenize(#[source] tokenizers::Error),
}

/// A sentence-transformers BERT model loaded in memory; `Send + Sync`, so one instance is
/// shared (behind an `Arc`) by every task that embeds.
pub struct LocalModel {
    model: Bert,
    /// Truncates at `max_input_tokens`, as sentence-transformers does; never pads (batches
    /// are padded here, to the longest input of each, not to a fixed length).
    tokenizer: Tokenizer,
    /// Same tokenizer without truncation, so oversize inputs show their real length.
    counter: Tokenizer,
    dimensions: usize,
    max_input_tokens: usize,
}

// The worker shares one model across threads; fail the build, not the deployment, if a
// dependency upgrade ever makes it !Send or !Sync.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LocalModel>();
};

/// Vectors for one `embed` call.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// One L2-normalised vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the model processed: after truncation, with [CLS]/[SEP], without padding.
    pub tokens: u64,
}

/// The parts of a Hugging Face BERT `config.json` the forward pass reads.
#[derive(Deserialize)]
struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_position_embedding_type")]
    position_embedding_type: String,
}

fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

#[derive(Deserialize)]
struct SentenceConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl LocalModel {
    /// Loads a sentence-transformers snapshot: `config.json`, `tokenizer.json` and
    /// `model.safetensors`, plus `sentence_bert_config.json` and `1_Pooling/config.json`
    /// when present. Weight names may carry a `bert.` prefix or not.
    pub fn load(dir: &Path) -> Result<Self, LocalModelError> {
        for file in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
            if !dir.join(file).is_file() {
                return Err(LocalModelError::MissingFile {
                    dir: dir.to_path_buf(),
                    file,
                });
            }
        }

        let config_path = dir.join(CONFIG_FILE);
        let config: Config = read_json(&config_path)?;
        check_pooling(dir)?;
        let max_input_tokens = max_input_tokens(dir, &config)?;

        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let mut counter =
            Tokenizer::from_file(&tokenizer_path).map_err(|source| LocalModelError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            })?;
        // The shipped tokenizer.json pads every input to 128 and truncates at 128;
        // sentence-transformers overrides both, and so must we to produce the same vectors.
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|source| LocalModelError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            })?;
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_input_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|source| LocalModelError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            })?;
        // A tokenizer whose vocabulary lacks its unknown token only fails on the first rare
        // word; find out now rather than in the middle of a document.
        tokenizer
            .encode_fast("ragworker \u{1F9FF} \u{2603}", true)
            .map_err(|source| LocalModelError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            })?;

        check_architecture(&config_path, &config)?;
        let model = load_weights(&dir.join(WEIGHTS_FILE), &config)?;

        tracing::debug!(
            dir = %dir.display(),
            dimensions = config.hidden_size,
            max_input_tokens,
            threads = rayon::current_num_threads(),
            instructions = ?model.arch,
            "local embedding model loaded"
        );
        Ok(Self {
            model,
            tokenizer,
            counter,
            dimensions: config.hidden_size,
            max_input_tokens,
        })
    }

    /// Length of every vector (`hidden_size`: 384 for all-MiniLM-L6-v2).
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Longest input the model reads, [CLS] and [SEP] included; `embed` truncates the rest.
    pub fn max_input_tokens(&self) -> usize {
        self.max_input_tokens
    }

    /// Tokens the model would see for `text` including [CLS]/[SEP], before truncation, so a
    /// caller can tell an oversize input from one that fits.
    pub fn count_tokens(&self, text: &str) -> usize {
        match self.counter.encode_fast(text, true) {
            Ok(encoding) => encoding.len(),
            Err(e) => {
                // Unreachable for a tokenizer that passed load()'s probe. The byte length
                // overestimates WordPiece tokens, so a caller errs towards "oversize".
                tracing::warn!(error = %e, "token count failed; using the byte length");
                text.len().saturating_add(2)
            }
        }
    }

    /// Byte offsets where each of `text`'s tokens ends, [CLS] and [SEP] left out: what
    /// `chunk`'s slice counter needs to count any slice of `text` from one tokenization.
    /// Empty when the tokenizer fails (the caller then counts slices one by one).
    pub fn token_ends(&self, text: &str) -> Vec<usize> {
        match self.counter.encode(text, false) {
            Ok(encoding) => encoding.get_offsets().iter().map(|&(_, end)| end).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "tokenizing failed; counting slices one by one");
                Vec::new()
            }
        }
    }

    /// Embeds `texts`, truncating each at `max_input_tokens`. Inputs are grouped by length
    /// so that padding stays small; vectors come back in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Embedded, LocalModelError> {
        if texts.is_empty() {
            return Ok(Embedded {
                vectors: Vec::new(),
                tokens: 0,
            });
        }
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(LocalModelError::Tokenize)?;
        let lengths: Vec<usize> = encodings.iter().map(|e| e.len()).collect();
        let tokens = lengths.iter().map(|&n| n as u64).sum();

        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in plan_batches(&lengths, MAX_BATCH_INPUTS, MAX_BATCH_TOKENS) {
            let inputs: Vec<Input<'_>> = batch
                .iter()
                .map(|&i| Input {
                    ids: encodings[i].get_ids(),
                    type_ids: encodings[i].get_type_ids(),
                })
                .collect();
            for (&i, vector) in batch.iter().zip(self.model.embed(&inputs)) {
                vectors[i] = vector;
            }
        }
        Ok(Embedded { vectors, tokens })
    }
}

/// Refuses what the forward pass does not implement, rather than computing other vectors.
fn check_architecture(path: &Path, config: &Config) -> Result<(), LocalModelError> {
    let unsupported = |reason: String| {
        Err(LocalModelError::Unsupported {
            path: path.to_path_buf(),
            reason,
        })
    };
    if config.hidden_act != "gelu" {
        return unsupported(format!(
            "hidden_act {:?}: only \"gelu\" (exact, erf) is implemented",
            config.hidden_act
        ));
    }
    if config.position_embedding_type != "absolute" {
        return unsupported(format!(
            "position_embedding_type {:?}: only \"absolute\" is implemented",
            config.position_embedding_type
        ));
    }
    let heads = config.num_attention_heads;
    let sizes_fit = heads > 0
        && config.hidden_size.is_multiple_of(heads)
        && (config.hidden_size / heads).is_multiple_of(32)
        && config.intermediate_size.is_multiple_of(32);
    if !sizes_fit {
        return unsupported(format!(
            "hidden_size {} / {heads} heads and intermediate_size {}: the matmul kernel needs \
             head sizes and widths that are multiples of 32",
            config.hidden_size, config.intermediate_size
        ));
    }
    Ok(())
}

/// Reads `model.safetensors` (float32, names with or without a `bert.` prefix) into the
/// forward pass's layout: weights packed for its matmul, Q/K/V side by side, the query
/// pre-scaled by 1/√head_dim. The file is read into memory, not mapped: mapping is `unsafe`
/// and this crate forbids unsafe code; the packed copy replaces it once loaded.
fn load_weights(path: &Path, config: &Config) -> Result<Bert, LocalModelError> {
    let bytes = std::fs::read(path).map_err(|source| LocalModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let error = |reason: String| LocalModelError::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| error(e.to_string()))?;
    let prefix = if file.names().iter().any(|n| n.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>, LocalModelError> {
        let full = format!("{prefix}{name}");
        let view = file
            .tensor(&full)
            .map_err(|e| error(format!("{full}: {e}")))?;
        if view.dtype() != Dtype::F32 {
            return Err(error(format!("{full} is {:?}, not F32", view.dtype())));
        }
        if view.shape() != shape {
            return Err(error(format!(
                "{full} has shape {:?}, expected {shape:?}",
                view.shape()
            )));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let h = config.hidden_size;
    let inner = config.intermediate_size;
    let norm = |name: &str| -> Result<Norm, LocalModelError> {
        Ok(Norm {
            gamma: tensor(&format!("{name}.weight"), &[h])?,
            beta: tensor(&format!("{name}.bias"), &[h])?,
        })
    };
    let scale = 1.0 / ((h / config.num_attention_heads) as f32).sqrt();

    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for i in 0..config.num_hidden_layers {
        let at = |part: &str| format!("encoder.layer.{i}.{part}");
        let mut qkv_weight = Vec::with_capacity(3 * h * h);
        let mut qkv_bias = Vec::with_capacity(3 * h);
        for (part, factor) in [("query", scale), ("key", 1.0), ("value", 1.0)] {
            let w = tensor(&at(&format!("attention.self.{part}.weight")), &[h, h])?;
            let b = tensor(&at(&format!("attention.self.{part}.bias")), &[h])?;
            qkv_weight.extend(w.iter().map(|x| x * factor));
            qkv_bias.extend(b.iter().map(|x| x * factor));
        }
        let linear = |name: &str, n: usize, k: usize| -> Result<Packed, LocalModelError> {
            let w = tensor(&at(&format!("{name}.weight")), &[n, k])?;
            let b = tensor(&at(&format!("{name}.bias")), &[n])?;
            Ok(Packed::new(&w, b, n, k))
        };
        layers.push(Layer {
            qkv: Packed::new(&qkv_weight, qkv_bias, 3 * h, h),
            attention_out: linear("attention.output.dense", h, h)?,
            attention_norm: norm(&at("attention.output.LayerNorm"))?,
            intermediate: linear("intermediate.dense", inner, h)?,
            output: linear("output.dense", h, inner)?,
            output_norm: norm(&at("output.LayerNorm"))?,
        });
    }
    Ok(Bert {
        shape: Shape {
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: inner,
            eps: config.layer_norm_eps as f32,
        },
        word: tensor("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
        position: tensor(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?,
        token_type: tensor(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?,
        embedding_norm: norm("embeddings.LayerNorm")?,
        layers,
        arch: pulp::Arch::new(),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LocalModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LocalModelError::Config {
        path: path.to_path_buf(),
        source,
    })
}

/// sentence-transformers' `max_seq_length` (256 for all-MiniLM-L6-v2, though the
/// architecture has 512 positions: the model was trained on 256); without that file, the
/// architecture's limit.
fn max_input_tokens(dir: &Path, config: &Config) -> Result<usize, LocalModelError> {
    let path = dir.join(SENTENCE_CONFIG_FILE);
    let wanted = if path.is_file() {
        read_json::<SentenceConfig>(&path)?.max_seq_length
    } else {
        None
    };
    let limit = wanted
        .unwrap_or(config.max_position_embeddings)
        .min(config.max_position_embeddings);
    if limit < 2 {
        return Err(LocalModelError::Unsupported {
            path,
            reason: format!("max_seq_length {limit} leaves no room for [CLS] and [SEP]"),
        });
    }
    Ok(limit)
}

/// Only mean pooling is implemented; a snapshot that asks for another would silently give
/// different vectors, so refuse it.
fn check_pooling(dir: &Path) -> Result<(), LocalModelError> {
    let path = dir.join(POOLING_CONFIG_FILE);
    if !path.is_file() {
        return Ok(());
    }
    let pooling: PoolingConfig = read_json(&path)?;
    let mean_only = pooling.pooling_mode_mean_tokens
        && !pooling.pooling_mode_cls_token
        && !pooling.pooling_mode_max_tokens
        && !pooling.pooling_mode_mean_sqrt_len_tokens;
    if mean_only {
        Ok(())
    } else {
        Err(LocalModelError::Unsupported {
            path,
            reason: "only mean pooling (pooling_mode_mean_tokens alone) is supported".into(),
        })
    }
}

/// Groups inputs (given by token length) into forward passes: longest first, each batch
/// holding inputs of similar length so it pads little, at most `max_inputs` per batch and
/// at most `max_tokens` once padded (an input longer than that goes alone). Returns input
/// indices; every index appears exactly once.
fn plan_batches(lengths: &[usize], max_inputs: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Longest first: the padded width of a batch is then its first input's length, and the
    // biggest allocation happens first, while memory is fresh.
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let max_inputs = max_inputs.max(1);

    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut width = 0;
    for i in order {
        let fits = current.len() < max_inputs && (current.len() + 1) * width <= max_tokens;
        if !current.is_empty() && !fits {
            batches.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            width = lengths[i];
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The in-process backend: the model, one forward pass at a time.
pub(super) struct Local {
    pub(super) model: Arc<LocalModel>,
    /// One batch at a time: a forward pass already uses every core, and two would only
    /// contend for them.
    gate: tokio::sync::Semaphore,
}

impl Local {
    /// Loads the model from `embedding.local_model_dir` and checks that it produces the
    /// configured dimension and reads inputs as long as the configured limit.
    pub(super) fn load(settings: &EmbeddingSettings) -> Result<Self, EmbedError> {
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
            model,
            gate: tokio::sync::Semaphore::new(1),
        })
    }

    /// One forward pass of the local model on the blocking pool. Its usage is the tokens
    /// the model read (at no cost), so usage_logs shows local work like paid work.
    pub(super) async fn send(
        &self,
        texts: Vec<String>,
        usage: &mut Usage,
        bill: Option<Bill<'_>>,
    ) -> Result<Vec<HalfVector>, EmbedError> {
        let _turn = self
            .gate
            .acquire()
            .await
            .map_err(|_| EmbedError::EngineStopped("the local model's gate closed".into()))?;
        let entry = match &bill {
            Some(bill) => Some((bill, bill.record(0).await?)),
            None => None,
        };
        let started = Instant::now();
        let model = self.model.clone();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(batches: &[Vec<usize>], n: usize) -> bool {
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        seen == (0..n).collect::<Vec<_>>()
    }

    #[test]
    fn batches_group_similar_lengths_longest_first() {
        let lengths = [5, 200, 7, 190, 6, 210];
        let batches = plan_batches(&lengths, 3, 10_000);
        assert_eq!(batches, vec![vec![5, 1, 3], vec![2, 4, 0]]);
    }

    #[test]
    fn batches_respect_the_padded_token_budget() {
        let lengths = [100, 100, 100, 10, 10, 10, 10];
        let batches = plan_batches(&lengths, 32, 250);
        assert!(covered(&batches, lengths.len()));
        for batch in &batches {
            let width = batch.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(batch.len() * width <= 250, "{batch:?} pads past the budget");
        }
        assert_eq!(batches[0], vec![0, 1]);
    }

    #[test]
    fn an_input_over_the_budget_goes_alone() {
        let batches = plan_batches(&[300, 3, 400], 32, 256);
        assert_eq!(batches, vec![vec![2], vec![0], vec![1]]);
    }

    #[test]
    fn ties_keep_input_order_and_every_index_appears_once() {
        let lengths = vec![12; 70];
        let batches = plan_batches(&lengths, 32, 8192);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [32, 32, 6]
        );
        assert!(covered(&batches, 70));
        assert_eq!(batches[0][..3], [0, 1, 2]);
    }

    #[test]
    fn no_inputs_no_batches() {
        assert!(plan_batches(&[], 32, 8192).is_empty());
    }

    #[test]
    fn a_missing_model_directory_says_how_to_get_the_model() {
        let err = LocalModel::load(Path::new("/nonexistent/minilm"))
            .err()
            .expect("loading from a missing directory must fail");
        let message = err.to_string();
        assert!(message.contains("/nonexistent/minilm"), "{message}");
        assert!(message.contains("scripts/fetch_model.sh"), "{message}");
    }
}
