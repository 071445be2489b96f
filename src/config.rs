//! Layered configuration: `config/default.toml` (compiled in) → `--config FILE` →
//! standard environment variables → `RAGWORKER_SECTION__KEY` variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults, written once, in the file users read.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Standard variable names other tools already use, and the key each one sets.
const STANDARD_ENV: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("DATABASE_DIRECT_URL", "database.direct_url"),
    ("OPENAI_API_KEY", "embedding.api_key"),
    ("OPENAI_BASE_URL", "embedding.base_url"),
    ("AWS_ENDPOINT_URL", "storage.endpoint"),
    // Listed after AWS_ENDPOINT_URL so the S3-specific one wins, as in the AWS SDKs.
    ("AWS_ENDPOINT_URL_S3", "storage.endpoint"),
    ("AWS_REGION", "storage.region"),
];

/// Every section refuses keys it does not know, so a misspelt setting (`concurency`) is an
/// error rather than silently the default. The top level does not: RAGWORKER_* variables
/// that are not settings (the test harness's, a deployment's own) must not stop the worker.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub storage: StorageSettings,
    pub extract: ExtractSettings,
    pub chunking: ChunkingSettings,
    pub embedding: EmbeddingSettings,
    pub queue: QueueSettings,
    pub worker: WorkerSettings,
    pub search: SearchSettings,
    pub index: IndexSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
}

/// When the HNSW index on `document_chunks.embedding` exists, and how it is built.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    /// Chunks the table holds before the index is built (0: always keep one).
    pub hnsw_min_rows: u64,
    /// `maintenance_work_mem` of the session that builds it (a build is several times
    /// faster when the graph fits).
    pub maintenance_work_mem: String,
    /// `max_parallel_maintenance_workers` of that session.
    pub parallel_workers: u32,
    /// How often `run` checks whether the index is due.
    pub check_secs: u64,
    /// Chunks written while the index exists that may wait outside it (merged when the
    /// worker is idle or a backfill ends; search scans them exactly); 0: none wait.
    pub defer_max_rows: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    /// Text-search configuration of the chunks' full-text index (`simple`, `english`, ...).
    pub text_search_config: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Secret: a connection string usually carries a password.
    pub url: SecretString,
    /// For `migrate` and LISTEN, which a transaction pooler cannot carry; empty: `url`.
    pub direct_url: SecretString,
    pub max_connections: u32,
    /// Seconds a statement waits for a pooled connection (or a new one) before failing.
    pub acquire_timeout_secs: u64,
}

impl DatabaseSettings {
    /// The connection string for `migrate` and LISTEN.
    pub fn direct_url(&self) -> &SecretString {
        if self.direct_url.expose_secret().is_empty() {
            &self.url
        } else {
            &self.direct_url
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: String,
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
    pub force_path_style: bool,
    pub max_object_bytes: u64,
    /// Root directory of the "fs" backend: objects are `<fs_root>/<bucket>/<path>`.
    pub fs_root: PathBuf,
    /// Buckets files rows may name besides `bucket`.
    pub buckets: Vec<String>,
    /// The rule a row's object path must follow in those buckets.
    pub ownership: Ownership,
    /// Buckets whose uploads queue themselves (a trigger on Supabase's storage.objects).
    pub register_uploads: Vec<String>,
    /// Seconds claiming pauses after storage rejected the worker's credentials.
    pub pause_secs: u64,
    /// S3 credentials; empty means the AWS SDK's own chain (AWS_ACCESS_KEY_ID, ...).
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

impl StorageSettings {
    /// The buckets files rows may name: `bucket` and `buckets`, each once.
    pub fn allowed_buckets(&self) -> Vec<&str> {
        let mut all = vec![self.bucket.as_str()];
        for b in &self.buckets {
            if !all.contains(&b.as_str()) {
                all.push(b);
            }
        }
        all
    }
}

/// Which objects a files row may name (see `ownership` and the README's security section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// Objects under `<user_id>/`, Supabase Storage's convention; app users may register
    /// their own uploads.
    UserFolder,
    /// Any plain path; only trusted roles (the server) may register files.
    ServerOnly,
}

impl Ownership {
    /// The name the database's ragworker_buckets table and the configuration use.
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::UserFolder => "user_folder",
            Ownership::ServerOnly => "server_only",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSettings {
    pub max_text_bytes: usize,
    pub timeout_secs: u64,
    pub ocr: OcrSettings,
}

/// `[extract.ocr]`: Tesseract for images and for PDF pages without a text layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcrSettings {
    pub enabled: bool,
    /// Tesseract's language codes joined by `+`, such as `eng` or `eng+deu`; each needs its
    /// Debian package (`tesseract-ocr-deu`).
    pub languages: String,
    /// Resolution PDF pages are rendered at for OCR.
    pub dpi: u32,
    /// Seconds rendering or reading one page may take.
    pub page_timeout_secs: u64,
    /// Pages (of a PDF, or of a TIFF) one file may need OCR for; more fails the file.
    pub max_pages: usize,
}

impl ExtractSettings {
    /// How long extracting one file may take: parsing, plus each page OCR may read.
    pub fn time_limit(&self) -> std::time::Duration {
        let ocr = if self.ocr.enabled {
            self.ocr.page_timeout_secs * self.ocr.max_pages as u64
        } else {
            0
        };
        std::time::Duration::from_secs(self.timeout_secs + ocr)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkingSettings {
    /// Unset (0): 512, or the model's `max_input_tokens` when that is smaller.
    #[serde(default)]
    pub max_tokens: usize,
    pub overlap_tokens: usize,
    /// What is embedded for a chunk under a heading: `{heading}` (its heading path) and
    /// `{content}` (its text).
    pub embed_template: String,
}

/// One model's limits in `[embedding.model_limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimits {
    /// Tokens one input may have, counted as ragworker counts (cl100k_base).
    pub max_input_tokens: usize,
    /// Inputs one request may carry (text-embeddings-inference caps it at 32 by default).
    #[serde(default)]
    pub max_inputs_per_request: Option<usize>,
}

/// OpenAI's limits, for models the table does not know.
const OPENAI_MAX_INPUT_TOKENS: usize = 8191;
const OPENAI_MAX_INPUTS_PER_REQUEST: usize = 2048;
/// Chunk size when `chunking.max_tokens` is unset and the model takes at least as much.
const DEFAULT_CHUNK_TOKENS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendDimensions {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    Base64,
    Float,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OversizeInput {
    Split,
    Reject,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSettings {
    pub provider: String,
    /// The "local" provider's model: a sentence-transformers directory (model.safetensors,
    /// tokenizer.json, config.json).
    pub local_model_dir: PathBuf,
    pub base_url: String,
    pub api_key: SecretString,
    pub model: String,
    pub dimensions: u32,
    pub send_dimensions: SendDimensions,
    pub encoding_format: EncodingFormat,
    /// Unset (0): the model's entry in `model_limits`, else OpenAI's 2048.
    #[serde(default)]
    pub max_inputs_per_request: usize,
    pub max_tokens_per_request: usize,
    /// Unset (0): the model's entry in `model_limits`, else OpenAI's 8191.
    #[serde(default)]
    pub max_input_tokens: usize,
    /// Known limits of common models, by the name requests carry.
    #[serde(default)]
    pub model_limits: BTreeMap<String, ModelLimits>,
    pub request_timeout_secs: u64,
    pub max_retries: usize,
    pub retry_min_delay_ms: u64,
    pub retry_max_delay_secs: u64,
    pub requests_per_minute: u64,
    pub tokens_per_minute: u64,
    pub max_concurrent_requests: usize,
    pub batch_linger_ms: u64,
    pub oversize_input: OversizeInput,
    pub halt_secs: u64,
    pub prices_per_million: BTreeMap<String, f64>,
}

impl EmbeddingSettings {
    /// Refuses an OpenAI endpoint without a key before any file is claimed (self-hosted
    /// OpenAI-compatible servers often need none).
    pub fn check_api_key(&self) -> Result<(), ConfigError> {
        if self.provider == "openai"
            && self.base_url.contains("api.openai.com")
            && self.api_key.expose_secret().trim().is_empty()
        {
            return Err(ConfigError(
                "no OpenAI API key: set OPENAI_API_KEY (embedding.api_key), or use embedding.provider = \"local\" (config/local.toml)".into(),
            ));
        }
        Ok(())
    }

    /// USD per million tokens of the configured model (0 when the table has no entry).
    pub fn price_per_million(&self) -> f64 {
        if self.provider == "local" {
            return 0.0;
        }
        self.prices_per_million
            .get(&self.model)
            .copied()
            .unwrap_or(0.0)
    }

    /// Whether requests carry the `dimensions` parameter. Only the text-embedding-3 family
    /// accepts it at OpenAI; ada-002 and most self-hosted servers reject it.
    pub fn sends_dimensions(&self) -> bool {
        match self.send_dimensions {
            SendDimensions::Always => true,
            SendDimensions::Never => false,
            SendDimensions::Auto => self.model.starts_with("text-embedding-3"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub lease_secs: u64,
    pub heartbeat_secs: u64,
    pub max_attempts: i32,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
}

impl QueueSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub poll_interval_secs: u64,
    pub processing_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads all layers. `file` is the optional `--config FILE`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        for (var, key) in STANDARD_ENV {
            let key = *key;
            figment = figment.merge(Env::raw().only(&[var]).map(move |_| key.into()));
        }
        figment = figment.merge(Env::prefixed("RAGWORKER_").split("__").ignore(&["config"]));
        Self::from_figment(figment)
    }

    /// Defaults plus TOML layers (later wins); for tests and programs embedding ragworker.
    pub fn from_toml_layers(layers: &[&str]) -> Result<Self, ConfigError> {
        let figment = layers
            .iter()
            .fold(Figment::from(Toml::string(DEFAULT_TOML)), |f, layer| {
                f.merge(Toml::string(layer))
            });
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut settings: Settings = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        settings.embedding.local_model_dir = expand_home(&settings.embedding.local_model_dir);
        settings.resolve_limits();
        settings.validate()?;
        Ok(settings)
    }

    /// What shapes a file's chunks and vectors, recorded with them (`files.processed_with`):
    /// a file whose bytes and these are unchanged is not processed again.
    pub fn processed_with(&self) -> serde_json::Value {
        serde_json::json!({
            "provider": self.embedding.provider,
            "model": self.embedding.model,
            "dimensions": self.embedding.dimensions,
            "max_tokens": self.chunking.max_tokens,
            "overlap_tokens": self.chunking.overlap_tokens,
            "embed_template": self.chunking.embed_template,
            "chunker": crate::chunk::CHUNKER_VERSION,
        })
    }

    /// Fills the limits left unset from the model's entry in `[embedding.model_limits]`
    /// (else OpenAI's), and the chunk size from them: naming a self-hosted model is enough
    /// for its chunks and requests to fit it. A value set anywhere wins.
    fn resolve_limits(&mut self) {
        let known = self
            .embedding
            .model_limits
            .get(&self.embedding.model)
            .copied();
        let e = &mut self.embedding;
        if e.max_input_tokens == 0 {
            e.max_input_tokens = known.map_or(OPENAI_MAX_INPUT_TOKENS, |k| k.max_input_tokens);
        }
        if e.max_inputs_per_request == 0 {
            e.max_inputs_per_request = known
                .and_then(|k| k.max_inputs_per_request)
                .unwrap_or(OPENAI_MAX_INPUTS_PER_REQUEST);
        }
        if self.chunking.max_tokens == 0 {
            self.chunking.max_tokens = DEFAULT_CHUNK_TOKENS.min(e.max_input_tokens);
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if !matches!(self.storage.backend.as_str(), "s3" | "fs") {
            return fail(format!(
                "storage.backend = {:?} is not supported (use \"s3\" or \"fs\")",
                self.storage.backend
            ));
        }
        for bucket in self.storage.allowed_buckets() {
            if bucket.is_empty() || bucket.contains('/') || bucket.chars().any(char::is_control) {
                return fail(format!(
                    "storage bucket name {bucket:?} is not a bucket name (storage.bucket, storage.buckets)"
                ));
            }
        }
        let allowed = self.storage.allowed_buckets();
        if let Some(b) = self
            .storage
            .register_uploads
            .iter()
            .find(|b| !allowed.contains(&b.as_str()))
        {
            return fail(format!(
                "storage.register_uploads names bucket {b:?}, which is not storage.bucket or in storage.buckets"
            ));
        }
        if self.storage.pause_secs == 0 {
            return fail("storage.pause_secs must be at least 1".into());
        }
        let ocr = &self.extract.ocr;
        let language =
            |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ocr.languages.split('+').all(language) {
            return fail(format!(
                "extract.ocr.languages = {:?} is not a list of Tesseract language codes such as \"eng\" or \"eng+deu\"",
                ocr.languages
            ));
        }
        if !(70..=1200).contains(&ocr.dpi) || ocr.page_timeout_secs == 0 {
            return fail(
                "extract.ocr.dpi must be 70 to 1200 and extract.ocr.page_timeout_secs at least 1"
                    .into(),
            );
        }
        match self.embedding.provider.as_str() {
            "openai" => {}
            "local" if self.embedding.local_model_dir.as_os_str().is_empty() => {
                return fail("embedding.provider = \"local\" needs embedding.local_model_dir (`bash scripts/fetch_model.sh` downloads all-MiniLM-L6-v2 and prints its directory)".into());
            }
            "local" => {}
            other => {
                return fail(format!(
                    "embedding.provider = {other:?} is not supported (use \"openai\" or \"local\")"
                ))
            }
        }
        if !(1..=4000).contains(&self.embedding.dimensions) {
            return fail(format!(
                "embedding.dimensions = {} is outside 1..4000, the range pgvector indexes for halfvec",
                self.embedding.dimensions
            ));
        }
        if self.chunking.max_tokens == 0 || self.chunking.overlap_tokens >= self.chunking.max_tokens
        {
            return fail(format!(
                "chunking.overlap_tokens ({}) must be smaller than chunking.max_tokens ({})",
                self.chunking.overlap_tokens, self.chunking.max_tokens
            ));
        }
        if self.chunking.max_tokens > self.embedding.max_input_tokens {
            return fail(format!(
                "chunking.max_tokens ({}) exceeds embedding.max_input_tokens ({}): chunks would be rejected by the model",
                self.chunking.max_tokens, self.embedding.max_input_tokens
            ));
        }
        if self.embedding.max_inputs_per_request == 0
            || self.embedding.max_tokens_per_request
                < self
                    .embedding
                    .max_input_tokens
                    .min(self.chunking.max_tokens)
        {
            return fail("embedding request limits are too small to send one chunk".into());
        }
        if self.worker.concurrency == 0 {
            return fail("worker.concurrency must be at least 1".into());
        }
        if self.queue.max_attempts < 1 {
            return fail("queue.max_attempts must be at least 1".into());
        }
        if self.queue.heartbeat_secs == 0 || self.queue.heartbeat_secs >= self.queue.lease_secs {
            return fail(format!(
                "queue.heartbeat_secs ({}) must be between 1 and queue.lease_secs ({})",
                self.queue.heartbeat_secs, self.queue.lease_secs
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return fail(format!(
                "log.format = {:?} (use \"text\" or \"json\")",
                self.log.format
            ));
        }
        Ok(())
    }
}

/// `~/x` → `$HOME/x`, so config files can name per-user caches portably.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_match_openai_limits() {
        let s = Settings::from_toml_layers(&[]).unwrap();
        assert_eq!(s.embedding.model, "text-embedding-3-small");
        assert_eq!(s.embedding.dimensions, 1536);
        assert_eq!(s.embedding.max_inputs_per_request, 2048);
        assert_eq!(s.embedding.price_per_million(), 0.02);
        assert!(s.embedding.sends_dimensions());
        assert_eq!(s.storage.bucket, "documents");
    }

    #[test]
    fn a_self_hosted_model_gets_its_own_limits_and_chunks_that_fit_it() {
        let s = Settings::from_toml_layers(&[]).unwrap();
        assert_eq!(
            (
                s.embedding.max_input_tokens,
                s.embedding.max_inputs_per_request,
                s.chunking.max_tokens
            ),
            (8191, 2048, 512)
        );
        // text-embeddings-inference serving a 512-token BERT model: its batch cap, and
        // chunks that fit the model's context as its own tokenizer counts.
        let s = Settings::from_toml_layers(&[
            "[embedding]\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"BAAI/bge-small-en-v1.5\"\ndimensions = 384",
        ])
        .unwrap();
        assert_eq!(
            (
                s.embedding.max_input_tokens,
                s.embedding.max_inputs_per_request,
                s.chunking.max_tokens
            ),
            (400, 32, 400)
        );
        // Ollama's name for another model; no batch cap.
        let s =
            Settings::from_toml_layers(&["[embedding]\nmodel = \"mxbai-embed-large\""]).unwrap();
        assert_eq!(s.embedding.max_inputs_per_request, 2048);
        assert_eq!(s.chunking.max_tokens, 400);
        // What the user sets wins, and an unknown model gets OpenAI's limits.
        let s = Settings::from_toml_layers(&[
            "[embedding]\nmodel = \"BAAI/bge-small-en-v1.5\"\nmax_input_tokens = 300\nmax_inputs_per_request = 8\n[chunking]\nmax_tokens = 256",
        ])
        .unwrap();
        assert_eq!(
            (
                s.embedding.max_input_tokens,
                s.embedding.max_inputs_per_request,
                s.chunking.max_tokens
            ),
            (300, 8, 256)
        );
        let s = Settings::from_toml_layers(&["[embedding]\nmodel = \"my-own-model\""]).unwrap();
        assert_eq!(s.embedding.max_input_tokens, 8191);
        // A chunk size over the model's limit is still refused, naming both settings.
        let err = Settings::from_toml_layers(&[
            "[embedding]\nmodel = \"BAAI/bge-small-en-v1.5\"\n[chunking]\nmax_tokens = 512",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("chunking.max_tokens (512) exceeds embedding.max_input_tokens (400)"),
            "{err}"
        );
    }

    #[test]
    fn a_misspelt_key_is_an_error_and_a_missing_openai_key_is_named() {
        let err = Settings::from_toml_layers(&["[worker]\nconcurency = 8"]).unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
        let s = Settings::from_toml_layers(&[]).unwrap();
        let err = s.embedding.check_api_key().unwrap_err().to_string();
        assert!(err.contains("OPENAI_API_KEY"), "{err}");
        let s = Settings::from_toml_layers(&["[embedding]\napi_key = \"sk-x\""]).unwrap();
        s.embedding.check_api_key().unwrap();
        // A self-hosted server needs no key.
        let s =
            Settings::from_toml_layers(&["[embedding]\nbase_url = \"http://127.0.0.1:8080/v1\""])
                .unwrap();
        s.embedding.check_api_key().unwrap();
    }

    #[test]
    fn the_direct_url_defaults_to_the_url() {
        let s =
            Settings::from_toml_layers(&["[database]\nurl = \"postgres://pooled/app\""]).unwrap();
        assert_eq!(
            s.database.direct_url().expose_secret(),
            "postgres://pooled/app"
        );
    }

    #[test]
    fn local_profile_is_consistent_and_free() {
        let s = Settings::from_toml_layers(&[include_str!("../config/local.toml")]).unwrap();
        assert_eq!(s.embedding.provider, "local");
        assert_eq!(s.storage.backend, "fs");
        assert_eq!(s.embedding.dimensions, 384);
        assert_eq!(s.embedding.price_per_million(), 0.0);
        assert!(s.chunking.max_tokens <= s.embedding.max_input_tokens);
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            s.embedding.local_model_dir,
            Path::new(&home).join(".cache/ragworker/models/all-MiniLM-L6-v2")
        );
        let err = Settings::from_toml_layers(&["[embedding]\nprovider = \"local\""])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs embedding.local_model_dir"), "{err}");
    }

    #[test]
    fn overrides_win_and_are_validated() {
        let s = Settings::from_toml_layers(&[
            "[embedding]\nmodel = \"text-embedding-ada-002\"",
            "[embedding]\ndimensions = 384",
        ])
        .unwrap();
        assert!(!s.embedding.sends_dimensions());
        assert_eq!(s.embedding.price_per_million(), 0.10);
        let err = Settings::from_toml_layers(&["[embedding]\ndimensions = 5000"]).unwrap_err();
        assert!(err.to_string().contains("outside 1..4000"), "{err}");
        let err =
            Settings::from_toml_layers(&["[chunking]\nmax_tokens = 100\noverlap_tokens = 100"])
                .unwrap_err();
        assert!(err.to_string().contains("overlap_tokens"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test API
    fn environment_layers_use_standard_names_and_prefix() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://u:secret@db/app");
            jail.set_env("DATABASE_DIRECT_URL", "postgres://u:secret@direct/app");
            jail.set_env("OPENAI_API_KEY", "sk-test");
            jail.set_env("AWS_ENDPOINT_URL", "http://generic");
            jail.set_env("AWS_ENDPOINT_URL_S3", "http://s3-specific");
            jail.set_env("RAGWORKER_WORKER__CONCURRENCY", "9");
            jail.create_file("extra.toml", "[queue]\nmax_attempts = 2")?;
            let s = Settings::load(Some(Path::new("extra.toml"))).unwrap();
            assert_eq!(s.database.url.expose_secret(), "postgres://u:secret@db/app");
            assert_eq!(
                s.database.direct_url().expose_secret(),
                "postgres://u:secret@direct/app"
            );
            assert_eq!(s.embedding.api_key.expose_secret(), "sk-test");
            assert_eq!(s.storage.endpoint, "http://s3-specific");
            assert_eq!(s.worker.concurrency, 9);
            assert_eq!(s.queue.max_attempts, 2);
            // Secrets are redacted in Debug output, which is what logs would show.
            let debug = format!("{s:?}");
            assert!(!debug.contains("secret@db") && !debug.contains("sk-test"));
            Ok(())
        });
    }
}
