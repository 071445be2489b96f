//! The Rust side of the retrieval benchmark (`scripts/retrieval_bench.sh`, described in
//! `scripts/retrieval/README.md`): makes ragworker's chunks of the benchmark's documents with
//! the library's own extraction and chunking, then embeds any system's chunks and the
//! questions with the same model (all-MiniLM-L6-v2 in process, inputs cut at its 256-token
//! window as sentence-transformers does) and ranks every document's chunks for every
//! question by exact cosine similarity.
//!
//! cargo run --release --example retrieval_bench -- WORKDIR VARIANT SYSTEM [CONFIG]
//!
//! With a CONFIG (e.g. config/local.toml, layered over the defaults like `--config`, and
//! RAGWORKER_* variables over it), SYSTEM is ragworker's run under that name: its chunks of
//! WORKDIR/corpus/VARIANT/* are written to WORKDIR/chunks/SYSTEM-VARIANT.jsonl first.
//! Without, WORKDIR/chunks/SYSTEM-VARIANT.jsonl is a peer's, already written. Either way the
//! ranking goes to WORKDIR/ranks/SYSTEM-VARIANT.json for `score.py`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ragworker::chunk::{Chunker, Tokenizer};
use ragworker::config::Settings;
use ragworker::embed::local::LocalModel;
use serde_json::{json, Value};

/// Results kept per question, as `score.py`'s MRR@10 needs.
const TOP: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [work, variant, system, rest @ ..] = args.as_slice() else {
        panic!("usage: retrieval_bench WORKDIR VARIANT SYSTEM [CONFIG]");
    };
    let work = PathBuf::from(work);
    let config = rest.first().map(PathBuf::from);
    let settings = Settings::load(Some(
        config.as_deref().unwrap_or(Path::new("config/local.toml")),
    ))
    .expect("configuration");
    let model =
        Arc::new(LocalModel::load(&settings.embedding.local_model_dir).expect("the local model"));
    let chunks_file = work.join(format!("chunks/{system}-{variant}.jsonl"));
    if config.is_some() {
        let started = Instant::now();
        let count = write_chunks(
            &settings,
            &model,
            &work.join("corpus").join(variant),
            &chunks_file,
        );
        eprintln!(
            "{system}/{variant}: {count} chunks in {:.2}s (max_tokens {}, overlap {}, template {:?})",
            started.elapsed().as_secs_f64(),
            settings.chunking.max_tokens,
            settings.chunking.overlap_tokens,
            settings.chunking.embed_template
        );
    }
    rank(&work, variant, system, &model, &chunks_file);
}

/// ragworker's chunks of every document in `dir`, one JSON line each (`doc`, `content`,
/// `embed`), as the worker makes them from the configured settings.
fn write_chunks(settings: &Settings, model: &Arc<LocalModel>, dir: &Path, out: &Path) -> usize {
    let chunker = Chunker::new(&settings.chunking, Tokenizer::Local(model.clone())).unwrap();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    docs.sort();
    let mut lines = String::new();
    let mut count = 0;
    for path in docs {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let doc = ragworker::extract::extract(&bytes, &name, None, settings.extract.max_text_bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for chunk in chunker.chunk(&doc).chunks {
            lines.push_str(
                &json!({ "doc": name, "content": chunk.content, "embed": chunk.embed_input })
                    .to_string(),
            );
            lines.push('\n');
            count += 1;
        }
    }
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(out, lines).unwrap();
    count
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn embed(model: &LocalModel, texts: &[&str]) -> Vec<Vec<f32>> {
    // In slices, so that a long run shows progress and memory stays flat.
    texts
        .chunks(256)
        .flat_map(|slice| model.embed(slice).expect("embedding").vectors)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b)).max(f32::MIN_POSITIVE)
}

fn rank(work: &Path, variant: &str, system: &str, model: &LocalModel, chunks_file: &Path) {
    let chunks = read_jsonl(chunks_file);
    let questions = read_jsonl(&work.join("qa.jsonl"));
    let started = Instant::now();
    let texts: Vec<&str> = chunks
        .iter()
        .map(|c| c["embed"].as_str().unwrap())
        .collect();
    let tokens: Vec<usize> = texts.iter().map(|t| model.count_tokens(t)).collect();
    let vectors = embed(model, &texts);
    let queries: Vec<&str> = questions
        .iter()
        .map(|q| q["question"].as_str().unwrap())
        .collect();
    let query_vectors = embed(model, &queries);
    let ranked: Vec<Value> = questions
        .iter()
        .zip(&query_vectors)
        .map(|(q, qv)| {
            // Exact search over the whole corpus, as an app's search over all its files.
            let mut scored: Vec<(f32, usize)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (cosine(qv, v), i))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let top: Vec<usize> = scored.iter().take(TOP).map(|&(_, i)| i).collect();
            json!({ "qid": q["qid"], "top": top })
        })
        .collect();
    eprintln!(
        "{system}/{variant}: embedded {} chunks and {} questions in {:.1}s",
        chunks.len(),
        questions.len(),
        started.elapsed().as_secs_f64()
    );
    let out = work.join(format!("ranks/{system}-{variant}.json"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let ranks = json!({
        "system": system,
        "variant": variant,
        "chunk_tokens": tokens,
        "queries": ranked,
    });
    std::fs::write(out, ranks.to_string()).unwrap();
}
