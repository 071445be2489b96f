//! In-process embeddings with a sentence-transformers BERT model (all-MiniLM-L6-v2) on the
//! CPU, through candle: WordPiece tokenisation, the BERT forward pass, mean pooling over the
//! attention mask and L2 normalisation, the same pipeline as sentence-transformers, so the
//! vectors match those other tools compute for the same model.
//!
//! Everything here is synchronous and CPU-bound (candle spreads each matmul over all cores);
//! async callers run it inside `tokio::task::spawn_blocking`, which [`Local`], the
//! backend, does one batch at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use half::f16;
use pgvector::HalfVector;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

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

/// Inputs per forward pass. On 2 cores, 16 inputs of ~200 tokens embed as fast as 32 or 64
/// (the matmuls already keep every core busy) with half the activation memory: attention
/// scores grow with batch × length².
const MAX_BATCH_INPUTS: usize = 16;
/// Padded tokens per forward pass (batch size × longest input in it): caps memory per batch
/// whatever the input lengths. 16 inputs of 256 tokens fit exactly.
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
    #[error("cannot load BERT weights from {}: {source}", .path.display())]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("tokenisation failed: {0}")]
    Tokenize(#[source] tokenizers::Error),
    #[error("model forward pass failed: {0}")]
    Inference(#[from] candle_core::Error),
}

/// A sentence-transformers BERT model loaded in memory; `Send + Sync`, so one instance is
/// shared (behind an `Arc`) by every task that embeds.
pub struct LocalModel {
    model: BertModel,
    /// Truncates at `max_input_tokens`, as sentence-transformers does; never pads (batches
    /// are padded here, to the longest input of each, not to a fixed length).
    tokenizer: Tokenizer,
    /// Same tokenizer without truncation, so oversize inputs show their real length.
    counter: Tokenizer,
    device: Device,
    dimensions: usize,
    max_input_tokens: usize,
    pad_token_id: u32,
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

        let weights_path = dir.join(WEIGHTS_FILE);
        let device = Device::Cpu;
        let weights_error = |source| LocalModelError::Weights {
            path: weights_path.clone(),
            source,
        };
        // `safetensors::load` maps the file and copies the tensors out, so no unsafe mmap
        // lifetime leaks into this crate (which forbids unsafe code).
        let tensors =
            candle_core::safetensors::load(&weights_path, &device).map_err(weights_error)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        // BertModel::load accepts both layouts: bare names (sentence-transformers exports)
        // and `bert.`-prefixed ones (transformers' BertForX checkpoints).
        let model = BertModel::load(vb, &config).map_err(weights_error)?;

        tracing::debug!(
            dir = %dir.display(),
            dimensions = config.hidden_size,
            max_input_tokens,
            matmul_threads = candle_core::utils::get_num_threads(),
            "local embedding model loaded"
        );
        Ok(Self {
            model,
            tokenizer,
            counter,
            device,
            dimensions: config.hidden_size,
            max_input_tokens,
            // Padding is masked out, so any in-vocabulary id would do; 0 is [PAD] for BERT.
            pad_token_id: u32::try_from(config.pad_token_id).unwrap_or(0),
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
            let width = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            let mut ids = Vec::with_capacity(batch.len() * width);
            let mut type_ids = Vec::with_capacity(batch.len() * width);
            let mut mask = Vec::with_capacity(batch.len() * width);
            for &i in &batch {
                let e = &encodings[i];
                let pad = width - e.len();
                ids.extend_from_slice(e.get_ids());
                ids.extend(std::iter::repeat_n(self.pad_token_id, pad));
                type_ids.extend_from_slice(e.get_type_ids());
                type_ids.extend(std::iter::repeat_n(0, pad));
                mask.extend(std::iter::repeat_n(1u32, e.len()));
                mask.extend(std::iter::repeat_n(0u32, pad));
            }
            let shape = (batch.len(), width);
            let ids = Tensor::from_vec(ids, shape, &self.device)?;
            let type_ids = Tensor::from_vec(type_ids, shape, &self.device)?;
            let mask = Tensor::from_vec(mask, shape, &self.device)?;
            let pooled = self.forward_pooled(&ids, &type_ids, &mask)?;
            for (&i, vector) in batch.iter().zip(pooled) {
                vectors[i] = vector;
            }
        }
        Ok(Embedded { vectors, tokens })
    }

    /// One padded batch → one normalised vector per row.
    fn forward_pooled(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        // The mask matters twice: inside attention (so real tokens ignore padding) and in
        // the mean (so padding does not dilute it).
        let hidden = self.model.forward(ids, type_ids, Some(mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        // torch.nn.functional.normalize's eps, so an all-zero vector stays finite.
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
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
