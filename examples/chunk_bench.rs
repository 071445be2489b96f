//! What chunking costs, against tokenizing each document once: extracts every file under
//! the directories given (not timed), then for each tokenizer (cl100k_base with the OpenAI
//! defaults, 512/64 tokens; the local model's WordPiece with config/local.toml's 128/16, if
//! the model is in the cache) times one tokenization of every document's text and then
//! chunking every document, and prints both, their ratio, and a digest of every chunk's
//! text, embedded input, token count, heading and offset: two builds that print the same
//! digest made the same chunks.
//!
//!   cargo run --release --example chunk_bench -- fixtures ~/.cache/ragworker/pdf-corpus

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ragworker::chunk::{Chunker, Tokenizer};
use ragworker::config::ChunkingSettings;
use ragworker::embed::local::LocalModel;
use ragworker::extract::Document;

fn main() {
    let mut files: Vec<PathBuf> = std::env::args()
        .skip(1)
        .flat_map(|d| walk(Path::new(&d)))
        .collect();
    files.sort();
    let docs: Vec<Document> = files
        .iter()
        .filter_map(|f| {
            let bytes = std::fs::read(f).ok()?;
            ragworker::extract::extract(&bytes, &f.to_string_lossy(), None, 1 << 26).ok()
        })
        .collect();
    let bytes: usize = docs.iter().map(text_len).sum();
    println!(
        "{} of {} files extracted, {:.1} MiB of text",
        docs.len(),
        files.len(),
        bytes as f64 / 1048576.0
    );

    let mut tokenizers = vec![("cl100k_base, 512/64", Tokenizer::cl100k().unwrap(), 512, 64)];
    let model = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/ragworker/models/all-MiniLM-L6-v2"));
    match model.map(|dir| LocalModel::load(&dir)) {
        Ok(Ok(model)) => tokenizers.push((
            "local WordPiece, 128/16",
            Tokenizer::Local(Arc::new(model)),
            128,
            16,
        )),
        _ => println!("(local model not in the cache: bash scripts/fetch_model.sh)"),
    }
    for (label, tokenizer, max_tokens, overlap_tokens) in tokenizers {
        let settings = ChunkingSettings {
            max_tokens,
            overlap_tokens,
            embed_template: "{heading}\n\n{content}".into(),
        };
        let chunker = Chunker::new(&settings, tokenizer.clone()).unwrap();
        let started = Instant::now();
        let tokens: usize = docs
            .iter()
            .flat_map(|d| &d.sections)
            .map(|s| tokenizer.count(&s.text))
            .sum();
        let once = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        let mut chunks = 0;
        for doc in &docs {
            for c in chunker.chunk(doc).chunks {
                chunks += 1;
                (
                    c.content,
                    c.embed_input,
                    c.token_count,
                    c.heading,
                    c.start_char,
                )
                    .hash(&mut digest);
            }
        }
        let chunking = started.elapsed().as_secs_f64();
        println!(
            "{label}: {tokens} tokens in {once:.2} s (one tokenization); {chunks} chunks in \
             {chunking:.2} s = {:.2}x one tokenization; digest {:016x}",
            chunking / once,
            digest.finish()
        );
    }
}

fn text_len(doc: &Document) -> usize {
    doc.sections.iter().map(|s| s.text.len()).sum()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![dir.to_path_buf()];
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}
