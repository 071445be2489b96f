//! Ingestion benchmark: `bash scripts/bench.sh` (which starts Postgres and S3, then runs
//! this with `cargo run --release --example bench -- ARGS`).
//!
//! 1. Generates a reproducible corpus (default 2000 documents of mixed size, 1 in 100 a PDF).
//! 2. Starts the fake OpenAI-compatible server of the tests, with latency and enforced
//!    requests/tokens-per-minute limits (429 with x-ratelimit-* headers when exceeded).
//! 3. Runs `ragworker backfill` (the release binary, as a separate process) over it and
//!    prints wall time, files/s, chunks/s, tokens/min against the limit, 429s, retries,
//!    failed files and peak RSS; then the same for a naive baseline (sequential, batches of
//!    100, sleep 5 s and retry on 429) against the same provider, and the ratio.
//! 4. Runs ragworker again against an unlimited provider with 100 ms latency, and measures
//!    the database write path alone (the same chunk rows through the same transaction), to
//!    show which one bounds throughput.

#[path = "../tests/support/fake_openai.rs"]
#[allow(dead_code)] // the tests use the fault script; the benchmark does not
mod fake_openai;

#[path = "../tests/support/provision.rs"]
mod provision;

#[path = "../tests/support/pdf.rs"]
mod pdf;
use pdf::pdf;

#[path = "common/rng.rs"]
mod rng;

use rng::Rng;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use fake_openai::FakeOpenAi;
use ragworker::config::Settings;
use ragworker::enqueue::{enqueue_file, Owner};
use ragworker::storage::Storage;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Parser, Debug)]
struct Args {
    /// Documents in the corpus.
    #[arg(long, default_value_t = 2000)]
    docs: usize,
    /// Tokens per minute the limited provider allows.
    #[arg(long, default_value_t = 500_000)]
    tpm: u64,
    /// Requests per minute the limited provider allows.
    #[arg(long, default_value_t = 5_000)]
    rpm: u64,
    /// Latency of every provider answer, in milliseconds.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Latency added per 1,000 tokens of a request to the limited provider (larger
    /// requests take longer).
    #[arg(long, default_value_t = 20)]
    latency_per_1k_tokens_ms: u64,
    /// Embedding dimension (text-embedding-3-small's is 1536).
    #[arg(long, default_value_t = 1536)]
    dims: usize,
    /// worker.concurrency for ragworker.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Longest the naive baseline may run, in seconds.
    #[arg(long, default_value_t = 90)]
    baseline_secs: u64,
    /// Also measure ingestion into a table that already holds this many indexed chunks:
    /// the live index against `backfill --bulk` (0: skip).
    #[arg(long, default_value_t = 0)]
    preloaded_chunks: u64,
    /// Skip the TPM-limited runs (ragworker and baseline).
    #[arg(long)]
    unlimited_only: bool,
    /// Skip the unlimited-provider and database-only runs.
    #[arg(long)]
    limited_only: bool,
}

fn vocabulary() -> Vec<String> {
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qua", "bri", "dor", "fen", "gal",
        "hul", "jin", "kor", "lum", "mar", "nox", "pel", "ros", "sul", "tor", "ult", "ven", "wyn",
        "xel",
    ];
    let mut rng = Rng(7);
    (0..600)
        .map(|_| {
            let n = 2 + rng.below(2) as usize;
            (0..n)
                .map(|_| syllables[rng.below(syllables.len() as u64) as usize])
                .collect()
        })
        .collect()
}

fn paragraph(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    let mut out = String::with_capacity(words * 7);
    for i in 0..words {
        if i > 0 {
            out.push(if i % 14 == 0 { '.' } else { ' ' });
            if i % 14 == 0 {
                out.push(if i % 70 == 0 { '\n' } else { ' ' });
            }
        }
        out.push_str(&vocab[rng.below(vocab.len() as u64) as usize]);
    }
    out.push('.');
    out
}

/// Fills `document_chunks` with `n` chunks of random vectors (one file per 1,000 chunks,
/// users of 10,000 chunks), as an existing deployment's table.
async fn preload(env: &Env, n: u64, dims: usize) {
    sqlx::raw_sql(&format!(
        "begin;
         set local session_replication_role = replica;
         insert into files (id, user_id, original_name, storage_bucket, storage_path,
                            processing_status)
         select ('00000000-0000-0000-0000-' || lpad(f::text, 12, '0'))::uuid,
                ('00000000-0000-0000-0001-' || lpad((f / 10)::text, 12, '0'))::uuid,
                'old-' || f, 'preloaded', 'old/' || f, 'completed'
         from generate_series(0, ({n} - 1) / 1000) f;
         insert into document_chunks (file_id, user_id, content, chunk_index, token_count,
                                      embedding, embedding_model)
         select ('00000000-0000-0000-0000-' || lpad((g / 1000)::text, 12, '0'))::uuid,
                ('00000000-0000-0000-0001-' || lpad((g / 10000)::text, 12, '0'))::uuid,
                'chunk ' || g, g % 1000, 10,
                (select array_agg(random() - 0.5) from generate_series(1, {dims}) k where g >= 0)::halfvec,
                'text-embedding-3-small'
         from generate_series(0, {n} - 1) g;
         commit;
         analyze document_chunks;"
    ))
    .execute(&env.pool)
    .await
    .unwrap();
}

/// Edits every 20th text document in storage (a sentence added in its middle); returns how
/// many.
async fn edit_corpus(env: &Env, corpus: &[PathBuf]) -> usize {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select original_name, storage_path from files order by original_name")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let mut edited = 0;
    for (i, (name, key)) in rows.iter().enumerate() {
        if i % 20 != 0 || !name.ends_with(".txt") {
            continue;
        }
        let local = corpus
            .iter()
            .find(|p| p.file_name().and_then(|n| n.to_str()) == Some(name.as_str()))
            .unwrap();
        let text = std::fs::read_to_string(local).unwrap();
        let middle = text[..text.len() / 2].rfind(". ").map_or(0, |i| i + 2);
        let revised = format!(
            "{}This sentence was added in the second revision of the document. {}",
            &text[..middle],
            &text[middle..]
        );
        env.storage
            .put(&env.bucket, key, revised.into_bytes(), "text/plain")
            .await
            .unwrap();
        edited += 1;
    }
    edited
}

/// Writes the corpus: 70% short (40-300 words), 25% medium (300-1500), 5% long (1500-4000);
/// every 100th document is a PDF.
fn generate_corpus(dir: &Path, n: usize) -> Vec<PathBuf> {
    let vocab = vocabulary();
    let mut rng = Rng(42);
    (0..n)
        .map(|i| {
            let roll = rng.below(100);
            let words = match roll {
                0..=69 => 40 + rng.below(260),
                70..=94 => 300 + rng.below(1200),
                _ => 1500 + rng.below(2500),
            } as usize;
            let text = paragraph(&mut rng, &vocab, words);
            let path = if i % 100 == 99 {
                let p = dir.join(format!("doc-{i:05}.pdf"));
                std::fs::write(&p, pdf(&text)).unwrap();
                p
            } else {
                let p = dir.join(format!("doc-{i:05}.txt"));
                std::fs::write(&p, text).unwrap();
                p
            };
            path
        })
        .collect()
}

struct Env {
    settings: Arc<Settings>,
    config_path: PathBuf,
    pool: PgPool,
    storage: Storage,
    bucket: String,
}

async fn prepare_env(dir: &Path, name: &str, fake: &FakeOpenAi, args: &Args, extra: &str) -> Env {
    let admin_url =
        std::env::var("RAGWORKER_TEST_DATABASE_URL").expect("run through scripts/bench.sh");
    let s3 = std::env::var("RAGWORKER_TEST_S3_ENDPOINT").expect("run through scripts/bench.sh");
    let suffix = Uuid::new_v4().simple().to_string();
    let url =
        provision::create_database(&admin_url, &format!("bench_{name}_{}", &suffix[..8])).await;
    let bucket = format!("bench-{name}-{}", &suffix[..8]).replace('_', "-");
    let config = format!(
        r#"
[database]
url = "{url}"
[storage]
endpoint = "{s3}"
bucket = "{bucket}"
[embedding]
base_url = "{base}"
api_key = "{key}"
dimensions = {dims}
[worker]
concurrency = {concurrency}
[http]
listen = ""
[log]
level = "warn"
{extra}
"#,
        base = fake.base_url(),
        key = fake_openai::API_KEY,
        dims = args.dims,
        concurrency = args.concurrency,
    );
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, &config).unwrap();
    let settings = Arc::new(Settings::from_toml_layers(&[&config]).unwrap());
    let pool = ragworker::db::connect(&settings.database).await.unwrap();
    provision::migrate(&pool, &settings).await;
    // As `ragworker migrate` does: the index policy decides whether the index exists.
    ragworker::index::apply(&settings.database, &settings.index)
        .await
        .unwrap();
    let storage = Storage::from_settings(&settings.storage).await.unwrap();
    provision::create_bucket(&storage, &bucket).await;
    Env {
        settings,
        config_path,
        pool,
        storage,
        bucket,
    }
}

async fn upload(env: &Env, corpus: &[PathBuf]) -> Uuid {
    let user = Uuid::new_v4();
    let owner = Owner {
        user_id: user,
        org_id: None,
        conversation_id: None,
    };
    for path in corpus {
        enqueue_file(&env.pool, &env.storage, &env.bucket, owner, path)
            .await
            .unwrap();
    }
    user
}

struct RunFigures {
    wall: Duration,
    files: i64,
    failed: i64,
    chunks: i64,
    tokens: u64,
    requests: u64,
    rate_limited: u64,
    peak_rss_kib: u64,
    /// None for the baseline, which runs inside this process next to the fake provider.
    cpu: Option<CpuShares>,
    /// Chunks that waited outside the HNSW index and the seconds a backfill spent merging
    /// them at its end (after its last file completed), from its output.
    merged: Option<(u64, f64)>,
}

/// Where the machine's CPU went during a run, in core-seconds: the ragworker process, this
/// benchmark process (the fake provider), and everything else (Postgres, the S3 server).
#[derive(Default)]
struct CpuShares {
    worker: f64,
    provider: f64,
    storage: f64,
    busy: f64,
}

impl CpuShares {
    fn print(&self, wall: Duration) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let secs = wall.as_secs_f64();
        let pct = |x: f64| 100.0 * x / secs;
        println!(
            "  CPU (% of one core) ragworker {:.0}%, fake provider {:.0}%, S3 server {:.0}%, Postgres + rest {:.0}%; machine {:.0}% busy of {cores} cores",
            pct(self.worker),
            pct(self.provider),
            pct(self.storage),
            pct((self.busy - self.worker - self.provider - self.storage).max(0.0)),
            100.0 * self.busy / secs / cores,
        );
    }
}

const CLOCK_TICKS: f64 = 100.0;

/// utime + stime of a process, in seconds.
fn process_cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().ok()? + fields[12].parse::<f64>().ok()?;
    Some(ticks / CLOCK_TICKS)
}

/// CPU seconds of the S3 server (s3s-fs, started by scripts/services.sh).
fn storage_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "s3s-fs")
        })
        .filter_map(|e| process_cpu(e.file_name().to_str()?))
        .sum()
}

/// Busy (non-idle, non-iowait) CPU time of the whole machine, in seconds.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: f64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle) / CLOCK_TICKS
}

/// The fake provider's running totals, so a run's figures are the difference.
#[derive(Clone, Copy)]
struct ProviderCounters {
    requests: u64,
    rate_limited: u64,
    tokens: u64,
}

impl ProviderCounters {
    fn of(fake: &FakeOpenAi) -> Self {
        Self {
            requests: fake.requests(),
            rate_limited: fake.stats().rate_limited.load(Ordering::SeqCst),
            tokens: fake.billed_tokens(),
        }
    }
}

impl RunFigures {
    /// A run's figures: file and chunk counts from the database, provider counters since
    /// `before`.
    async fn measure(
        env: &Env,
        fake: &FakeOpenAi,
        before: ProviderCounters,
        wall: Duration,
        peak_rss_kib: u64,
        cpu: Option<CpuShares>,
    ) -> Self {
        let (files, failed, chunks) = counts(&env.pool).await;
        let now = ProviderCounters::of(fake);
        RunFigures {
            wall,
            files,
            failed,
            chunks,
            tokens: now.tokens - before.tokens,
            requests: now.requests - before.requests,
            rate_limited: now.rate_limited - before.rate_limited,
            peak_rss_kib,
            cpu,
            merged: None,
        }
    }

    fn print(&self, label: &str, tpm_limit: Option<u64>) {
        let secs = self.wall.as_secs_f64();
        let tpm = self.tokens as f64 / secs * 60.0;
        println!("--- {label}");
        println!("  wall time          {secs:.1} s");
        println!(
            "  files              {} completed, {} failed",
            self.files, self.failed
        );
        println!("  files/s            {:.1}", self.files as f64 / secs);
        println!("  chunks/s           {:.1}", self.chunks as f64 / secs);
        println!(
            "  tokens             {} ({:.0} tokens/min)",
            self.tokens, tpm
        );
        if let Some(limit) = tpm_limit {
            // The provider's bucket starts full (a minute's worth), so a run of a few
            // minutes gets that minute free; the sustained figure leaves it out.
            let sustained = (self.tokens as f64 - limit as f64).max(0.0) / secs * 60.0;
            println!(
                "  TPM utilisation    {:.1}% raw, {:.1}% sustained (tokens beyond the initial full bucket) of {limit}",
                100.0 * tpm / limit as f64,
                100.0 * sustained / limit as f64
            );
        }
        println!(
            "  requests           {} ({} answered 429 = {:.2}%, each retried)",
            self.requests,
            self.rate_limited,
            100.0 * self.rate_limited as f64 / self.requests.max(1) as f64
        );
        if let Some(cpu) = &self.cpu {
            cpu.print(self.wall);
        }
        if self.peak_rss_kib > 0 {
            println!(
                "  peak RSS           {:.1} MiB",
                self.peak_rss_kib as f64 / 1024.0
            );
        }
        if let Some((chunks, merge)) = self.merged {
            println!(
                "  files completed in {:.1} s; then {chunks} waiting chunks merged into the HNSW index in {merge:.1} s",
                secs - merge
            );
        }
    }

    /// Seconds until the last file completed (before a backfill's merge).
    fn files_done_secs(&self) -> f64 {
        self.wall.as_secs_f64() - self.merged.map_or(0.0, |(_, secs)| secs)
    }
}

/// Reads a backfill's "merged N chunks that waited into the HNSW index in X s" line.
fn merged_line(stdout: &str) -> Option<(u64, f64)> {
    let line = stdout.lines().find(|l| l.starts_with("merged "))?;
    let mut words = line.split_whitespace();
    let chunks = words.nth(1)?.parse().ok()?;
    let secs = line.split(" in ").last()?.split(' ').next()?.parse().ok()?;
    Some((chunks, secs))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn counts(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "select count(*) filter (where processing_status = 'completed'),
                count(*) filter (where processing_status = 'failed'),
                (select count(*) from document_chunks)
         from files",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn run_ragworker(env: &Env, fake: &FakeOpenAi) -> RunFigures {
    run_backfill(env, fake, &[]).await
}

/// `ragworker backfill` with `extra` arguments, measured.
async fn run_backfill(env: &Env, fake: &FakeOpenAi, extra: &[&str]) -> RunFigures {
    run_backfill_with(env, &env.config_path, fake, extra).await
}

/// [`run_backfill`] with another configuration file for the same database.
async fn run_backfill_with(
    env: &Env,
    config: &Path,
    fake: &FakeOpenAi,
    extra: &[&str],
) -> RunFigures {
    // RAGWORKER_BIN: another build (say, the previous version) on the same corpus and setup.
    let bin = std::env::var_os("RAGWORKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("ragworker")
        });
    let counters0 = ProviderCounters::of(fake);
    // What earlier runs left in the table (a preloaded table, a previous load) is not this
    // run's work.
    let (files0, failed0, chunks0) = counts(&env.pool).await;
    let (busy0, provider0, storage0) = (
        machine_busy(),
        process_cpu("self").unwrap_or(0.0),
        storage_cpu(),
    );
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("backfill")
        .args(extra)
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ragworker binary next to the example (cargo build --release)");
    let pid = child.id().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let output = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text)
            .await
            .unwrap();
        text
    });
    let mut peak = 0;
    let mut worker_cpu = 0.0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        // The last sample before exit: at most 100 ms of CPU go uncounted.
        if let Some(cpu) = process_cpu(&pid.to_string()) {
            worker_cpu = cpu;
        }
        tokio::select! {
            status = child.wait() => break status.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    };
    let wall = started.elapsed();
    let cpu = CpuShares {
        worker: worker_cpu,
        provider: process_cpu("self").unwrap_or(0.0) - provider0,
        storage: storage_cpu() - storage0,
        busy: machine_busy() - busy0,
    };
    assert!(
        status.code() == Some(0) || status.code() == Some(2),
        "ragworker failed: {status:?}"
    );
    let mut figures = RunFigures::measure(env, fake, counters0, wall, peak, Some(cpu)).await;
    figures.files -= files0;
    figures.failed -= failed0;
    // A re-sync replaces chunks: then this counts the chunks added, not those rewritten.
    figures.chunks = (figures.chunks - chunks0).max(0);
    figures.merged = merged_line(&output.await.unwrap());
    figures
}

/// What a hand-rolled script does: one file at a time, batches of 100 chunks, float vectors,
/// a fixed 5 s sleep on 429, one INSERT per chunk.
async fn run_naive(env: &Env, fake: &FakeOpenAi, limit: Duration) -> RunFigures {
    let chunker = ragworker::chunk::Chunker::new(
        &env.settings.chunking,
        ragworker::chunk::Tokenizer::cl100k().unwrap(),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let counters0 = ProviderCounters::of(fake);
    let files: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "select id, storage_path, original_name, coalesce(mime_type, '') from files order by original_name",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let started = Instant::now();
    for (id, key, name, mime) in files {
        if started.elapsed() > limit {
            break;
        }
        let bytes = env.storage.get(&env.bucket, &key).await.unwrap().bytes;
        let doc = ragworker::extract::extract(&bytes, &name, Some(&mime), 1 << 30).unwrap();
        let chunked = chunker.chunk(&doc);
        let mut vectors: Vec<pgvector::HalfVector> = Vec::new();
        for batch in chunked.chunks.chunks(100) {
            let input: Vec<&str> = batch.iter().map(|c| c.embed_input.as_str()).collect();
            loop {
                let resp = http
                    .post(format!("{}/embeddings", fake.base_url()))
                    .bearer_auth(fake_openai::API_KEY)
                    .json(&serde_json::json!({ "model": "text-embedding-3-small", "input": input, "dimensions": env.settings.embedding.dimensions }))
                    .send()
                    .await
                    .unwrap();
                if resp.status().as_u16() == 429 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                let body: serde_json::Value = resp.json().await.unwrap();
                let mut data = body["data"].as_array().unwrap().clone();
                data.sort_by_key(|d| d["index"].as_u64());
                for d in data {
                    let v: Vec<f32> = serde_json::from_value(d["embedding"].clone()).unwrap();
                    vectors.push(pgvector::HalfVector::from_f32_slice(&v));
                }
                break;
            }
        }
        for (chunk, vector) in chunked.chunks.iter().zip(vectors) {
            sqlx::query(
                "insert into document_chunks (file_id, user_id, content, chunk_index, page_number, token_count, embedding, embedding_model)
                 select id, user_id, $2, $3, $4, $5, $6, 'text-embedding-3-small' from files where id = $1",
            )
            .bind(id)
            .bind(&chunk.content)
            .bind(chunk.index)
            .bind(chunk.page_number)
            .bind(chunk.token_count)
            .bind(vector)
            .execute(&env.pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "update files set processing_status = 'completed', chunk_count = $2 where id = $1",
        )
        .bind(id)
        .bind(chunked.chunks.len() as i32)
        .execute(&env.pool)
        .await
        .unwrap();
    }
    RunFigures::measure(env, fake, counters0, started.elapsed(), 0, None).await
}

/// The database write path alone: the same chunk rows, with ready vectors, through the
/// worker's own claim and completion transaction, `concurrency` files at a time.
async fn run_db_only(
    env: &Env,
    corpus: &[PathBuf],
    dims: usize,
    concurrency: usize,
) -> (Duration, usize) {
    upload(env, corpus).await;
    let chunker = ragworker::chunk::Chunker::new(
        &env.settings.chunking,
        ragworker::chunk::Tokenizer::cl100k().unwrap(),
    )
    .unwrap();
    let queue =
        ragworker::queue::Queue::new(env.pool.clone(), "db-only", env.settings.queue.clone());
    let claimed = queue.claim(corpus.len()).await.unwrap();
    // Everything except the write is prepared before the clock starts.
    let mut prepared = Vec::new();
    for (file, lease) in claimed {
        let bytes = std::fs::read(
            corpus
                .iter()
                .find(|p| p.file_name().unwrap().to_str() == Some(&file.original_name))
                .unwrap(),
        )
        .unwrap();
        let doc = ragworker::extract::extract(
            &bytes,
            &file.original_name,
            file.mime_type.as_deref(),
            1 << 30,
        )
        .unwrap();
        let chunked = chunker.chunk(&doc);
        let vectors: Vec<pgvector::HalfVector> = chunked
            .chunks
            .iter()
            .map(|c| {
                pgvector::HalfVector::from_f32_slice(&fake_openai::embed_text(&c.embed_input, dims))
            })
            .collect();
        prepared.push((file, lease, chunked, vectors));
    }
    let chunks: usize = prepared.iter().map(|p| p.2.chunks.len()).sum();
    let started = Instant::now();
    let pool = env.pool.clone();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (file, lease, chunked, vectors) in prepared {
        let pool = pool.clone();
        let permit = sem.clone().acquire_owned().await.unwrap();
        let made_from = ragworker::queue::Provenance {
            sha256: String::new(),
            version: None,
            settings: serde_json::json!({}),
        };
        tasks.spawn(async move {
            ragworker::store::complete_file(
                &pool,
                &lease,
                &file,
                &chunked,
                vectors,
                "text-embedding-3-small",
                &made_from,
                &Default::default(),
                false,
            )
            .await
            .unwrap();
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    (started.elapsed(), chunks)
}

/// 1. TPM-limited provider: ragworker, then the naive baseline on the same provider.
async fn limited_runs(args: &Args, dir: &Path, corpus: &[PathBuf]) {
    let limited = FakeOpenAi::start_with_limits(args.dims, Some((args.rpm, args.tpm))).await;
    limited.set_latency(Duration::from_millis(args.latency_ms));
    limited.set_latency_per_1k_tokens(Duration::from_millis(args.latency_per_1k_tokens_ms));
    let env = prepare_env(dir, "limited", &limited, args, "").await;
    upload(&env, corpus).await;
    // The baseline's database is ready before ragworker runs, so the baseline starts right
    // after it, on the provider's drained bucket: both are measured in steady state.
    let naive_env = prepare_env(dir, "naive", &limited, args, "").await;
    upload(&naive_env, corpus).await;
    let figures = run_ragworker(&env, &limited).await;
    figures.print(
        "ragworker, TPM-limited provider (limits learned from headers)",
        Some(args.tpm),
    );

    let naive = run_naive(
        &naive_env,
        &limited,
        Duration::from_secs(args.baseline_secs),
    )
    .await;
    naive.print(
        &format!(
            "naive baseline, same provider right after (stopped after {} s)",
            args.baseline_secs
        ),
        None,
    );
    let ours_tpm = figures.tokens as f64 / figures.wall.as_secs_f64();
    let naive_tpm = naive.tokens as f64 / naive.wall.as_secs_f64();
    println!(
        "  => ragworker embeds {:.1}x the tokens per second of the baseline ({:.1}x the chunks/s)",
        ours_tpm / naive_tpm,
        (figures.chunks as f64 / figures.wall.as_secs_f64())
            / (naive.chunks as f64 / naive.wall.as_secs_f64())
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let corpus_dir = dir.path().join("corpus");
    std::fs::create_dir(&corpus_dir).unwrap();
    let t = Instant::now();
    let corpus = generate_corpus(&corpus_dir, args.docs);
    let bytes: u64 = corpus
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    println!(
        "corpus: {} documents ({} PDFs), {:.1} MiB, generated in {:.1} s",
        corpus.len(),
        corpus
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
            .count(),
        bytes as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );
    println!(
        "provider: {} ms latency (+{} ms per 1,000 tokens when limited), limits {} requests/min and {} tokens/min; ragworker concurrency {}, dimension {}",
        args.latency_ms, args.latency_per_1k_tokens_ms, args.rpm, args.tpm, args.concurrency, args.dims
    );

    if !args.unlimited_only {
        limited_runs(&args, dir.path(), &corpus).await;
    }
    if args.limited_only {
        return;
    }

    // 2. Unlimited provider with latency: is the worker or the database the bottleneck?
    let open = FakeOpenAi::start_with_limits(args.dims, None).await;
    open.set_latency(Duration::from_millis(args.latency_ms));
    let env = prepare_env(dir.path(), "unlimited", &open, &args, "").await;
    upload(&env, &corpus).await;
    let figures = run_ragworker(&env, &open).await;
    figures.print(
        &format!(
            "ragworker, unlimited provider, {} ms latency",
            args.latency_ms
        ),
        None,
    );

    // 3. Re-sync: the same corpus queued again, 5 % of it edited (a sentence added in the
    // middle of every 20th text document), as an app re-syncing a folder does.
    let edited = edit_corpus(&env, &corpus).await;
    sqlx::query("update files set processing_status = 'pending'")
        .execute(&env.pool)
        .await
        .unwrap();
    let resync = run_ragworker(&env, &open).await;
    resync.print(
        &format!(
            "re-sync: all {} documents queued again, {edited} edited",
            corpus.len()
        ),
        None,
    );
    println!(
        "  => the re-sync was billed {:.1} % of the first pass's tokens, in {:.1} % of its wall time",
        100.0 * resync.tokens as f64 / figures.tokens.max(1) as f64,
        100.0 * resync.wall.as_secs_f64() / figures.wall.as_secs_f64()
    );

    // 4. The index policy, with an instant provider (the database is the limit): a fresh
    // table under the default policy (no HNSW index below index.hnsw_min_rows), then a
    // fresh table with the index live from the start and every chunk inserted into it as
    // written (no deferral), as before the policy.
    let instant = FakeOpenAi::start_with_limits(args.dims, None).await;
    let policy_env = prepare_env(dir.path(), "policy", &instant, &args, "").await;
    upload(&policy_env, &corpus).await;
    let policy = run_ragworker(&policy_env, &instant).await;
    policy.print(
        "instant provider, fresh table, default index policy (no index yet)",
        None,
    );
    let live_env = prepare_env(
        dir.path(),
        "live",
        &instant,
        &args,
        "[index]\nhnsw_min_rows = 0\ndefer_max_rows = 0",
    )
    .await;
    upload(&live_env, &corpus).await;
    let live = run_ragworker(&live_env, &instant).await;
    live.print(
        "instant provider, fresh table, HNSW index live from the start",
        None,
    );
    let rate = |f: &RunFigures| f.files as f64 / f.wall.as_secs_f64();
    println!(
        "  => the default policy ingests {:.2}x the files/s of a live index",
        rate(&policy) / rate(&live)
    );

    // 5. A table that already holds many indexed chunks (the policy keeps the index at this
    // size): the corpus loaded with every chunk inserted into the live index (deferral off,
    // as before it existed), then again under the default policy (chunks wait outside the
    // index and are merged when the files are done), then with `--bulk` (drop, load, build
    // again), into the same table.
    if args.preloaded_chunks > 0 {
        let big = prepare_env(dir.path(), "preloaded", &instant, &args, "").await;
        let started = Instant::now();
        preload(&big, args.preloaded_chunks, args.dims).await;
        let loaded = started.elapsed();
        let started = Instant::now();
        let built = ragworker::index::apply(&big.settings.database, &big.settings.index)
            .await
            .unwrap();
        println!(
            "--- preloaded {} chunks in {:.1} s; index policy: {built:?} in {:.1} s",
            args.preloaded_chunks,
            loaded.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        let live_config = dir.path().join("preloaded-live.toml");
        std::fs::write(
            &live_config,
            std::fs::read_to_string(&big.config_path).unwrap() + "\n[index]\ndefer_max_rows = 0\n",
        )
        .unwrap();
        upload(&big, &corpus).await;
        let live = run_backfill_with(&big, &live_config, &instant, &[]).await;
        live.print(
            "instant provider, preloaded table, every chunk into the live index (index.defer_max_rows = 0)",
            None,
        );
        upload(&big, &corpus).await;
        let deferred = run_backfill(&big, &instant, &[]).await;
        deferred.print(
            "instant provider, preloaded table, default policy (chunks wait outside the index, merged at the end)",
            None,
        );
        println!(
            "  => the default policy completes files at {:.2}x the files/s of the live index ({:.2}x counting its merge); {:.1} files/s against {:.1}",
            live.files_done_secs() / deferred.files_done_secs(),
            live.wall.as_secs_f64() / deferred.wall.as_secs_f64(),
            corpus.len() as f64 / deferred.files_done_secs(),
            corpus.len() as f64 / live.files_done_secs()
        );
        upload(&big, &corpus).await;
        let bulk = run_backfill(&big, &instant, &["--bulk"]).await;
        bulk.print(
            "instant provider, preloaded table, backfill --bulk (drop, load, build again; wall time includes the build)",
            None,
        );
        let per_run = corpus.len() as f64;
        println!(
            "  => --bulk ingests {:.2}x the files/s of the live index here, its build included",
            (per_run / bulk.wall.as_secs_f64()) / (per_run / live.wall.as_secs_f64())
        );
    }

    let db_env = prepare_env(dir.path(), "dbonly", &open, &args, "").await;
    let (wall, chunks) = run_db_only(&db_env, &corpus, args.dims, args.concurrency).await;
    let db_rate = chunks as f64 / wall.as_secs_f64();
    println!(
        "--- database write path alone (same rows, index as the default policy has it: none on a fresh table; {} files at a time)",
        args.concurrency
    );
    println!("  wall time          {:.1} s", wall.as_secs_f64());
    println!("  chunks/s           {db_rate:.1}");
    println!(
        "  => ragworker end to end reaches {:.0}% of the write path's own rate",
        100.0 * (figures.chunks as f64 / figures.wall.as_secs_f64()) / db_rate
    );
}
