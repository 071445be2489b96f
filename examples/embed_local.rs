//! Throughput of the in-process embedding model: chunks/s and tokens/s for N synthetic texts
//! of about TOKENS tokens, handed to `LocalModel::embed` in calls of each batch size.
//!
//! cargo run --release --example embed_local -- [N=256] [BATCH_SIZES=1,8,16,32] [MODEL_DIR] [TOKENS=200]
//!
//! (an empty MODEL_DIR takes the default).
//!
//! With EMBED_LOCAL_TEXTS_OUT=PATH the texts are also written there, one JSON string a line,
//! so `scripts/bench_sentence_transformers.py` can encode exactly the same ones.
//!
//! MODEL_DIR defaults to $RAGWORKER_MODEL_DIR, then ~/.cache/ragworker/models/all-MiniLM-L6-v2
//! (`bash scripts/fetch_model.sh` puts it there). Calls above 16 texts are split into
//! forward passes of at most 16 inside `embed`.

use std::path::PathBuf;
use std::time::Instant;

use ragworker::embed::local::LocalModel;

/// The same allocator as the `ragworker` binary (an example is a crate root of its own), so
/// these figures are the ones the worker gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WORDS: &[&str] = &[
    "the",
    "report",
    "describes",
    "quarterly",
    "revenue",
    "growth",
    "across",
    "regions",
    "while",
    "customer",
    "retention",
    "improved",
    "after",
    "pricing",
    "changes",
    "engineers",
    "migrated",
    "storage",
    "to",
    "a",
    "replicated",
    "cluster",
    "with",
    "automatic",
    "failover",
    "latency",
    "dropped",
    "by",
    "twelve",
    "percent",
    "during",
    "peak",
    "hours",
    "and",
    "the",
    "support",
    "team",
    "resolved",
    "tickets",
    "faster",
    "than",
    "last",
    "year",
    "documents",
    "are",
    "split",
    "into",
    "chunks",
    "embedded",
    "stored",
    "in",
    "postgres",
    "for",
    "search",
    "photosynthesis",
    "converts",
    "light",
    "energy",
    "chemical",
    "plants",
    "algae",
    "of",
    "contract",
    "terms",
    "require",
    "notice",
    "before",
    "termination",
    "invoices",
    "payable",
    "within",
    "thirty",
    "days",
    "unless",
    "otherwise",
    "agreed",
    "writing",
    "is",
    "on",
];

fn synthetic_texts(model: &LocalModel, n: usize, target_tokens: usize) -> Vec<String> {
    // A fixed LCG: the same texts on every run, so figures are comparable across builds.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    (0..n)
        .map(|_| {
            let mut text = String::new();
            while model.count_tokens(&text) < target_tokens {
                for _ in 0..8 {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(WORDS[next() % WORDS.len()]);
                }
            }
            text
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse().expect("N is a number of texts"))
        .unwrap_or(256);
    let batch_sizes: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "1,8,16,32".into())
        .split(',')
        .map(|s| s.trim().parse().expect("batch sizes are numbers"))
        .collect();
    let dir = args
        .next()
        .filter(|a| !a.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("RAGWORKER_MODEL_DIR").map(PathBuf::from))
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/ragworker/models/all-MiniLM-L6-v2")
        });

    let started = Instant::now();
    let model = LocalModel::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "loaded {} in {:.2}s: {} dimensions, {} max tokens, {} threads, {} resident",
        dir.display(),
        started.elapsed().as_secs_f64(),
        model.dimensions(),
        model.max_input_tokens(),
        rayon::current_num_threads(),
        memory("VmRSS"),
    );

    let target_tokens: usize = args
        .next()
        .map(|a| a.parse().expect("TOKENS is a number of tokens"))
        .unwrap_or(200);
    let texts = synthetic_texts(&model, n, target_tokens);
    if let Some(path) = std::env::var_os("EMBED_LOCAL_TEXTS_OUT") {
        let lines: Vec<String> = texts
            .iter()
            .map(|t| serde_json::to_string(t).expect("a string serialises"))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", PathBuf::from(&path).display()));
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    let counted: usize = refs.iter().map(|t| model.count_tokens(t)).sum();
    println!(
        "{n} texts, {:.1} tokens each on average; count_tokens: {:.0} texts/s",
        counted as f64 / n as f64,
        n as f64 / started.elapsed().as_secs_f64(),
    );

    // Warm-up: first-touch allocations and thread-pool start-up are not throughput.
    model
        .embed(&refs[..refs.len().min(8)])
        .unwrap_or_else(|e| panic!("{e}"));

    for &batch in &batch_sizes {
        let started = Instant::now();
        let mut tokens = 0u64;
        for call in refs.chunks(batch.max(1)) {
            tokens += model.embed(call).unwrap_or_else(|e| panic!("{e}")).tokens;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "batch {batch:>3}: {:>7.1} chunks/s {:>9.0} tokens/s ({seconds:.2}s)",
            n as f64 / seconds,
            tokens as f64 / seconds,
        );
    }
    println!("peak resident memory: {}", memory("VmHWM"));
}

/// A line of /proc/self/status (Linux), e.g. the peak resident set `VmHWM`.
fn memory(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::trim))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}
