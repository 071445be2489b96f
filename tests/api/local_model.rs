//! The in-process embedding model (all-MiniLM-L6-v2, src/embed/bert.rs) against vectors from an
//! independent float64 numpy forward pass (`scripts/minilm_reference.py`). Needs the model
//! files, not the database.

use std::path::Path;

use ragworker::embed::local::LocalModel;

use crate::support::model_dir;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<String>,
    token_counts: Vec<usize>,
    vectors: Vec<Vec<f32>>,
}

fn load_model() -> LocalModel {
    LocalModel::load(&model_dir()).unwrap_or_else(|e| panic!("{e}"))
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm-reference.json");
    let text = std::fs::read_to_string(&path).expect("reference vectors are committed");
    let reference: Reference = serde_json::from_str(&text).expect("reference JSON parses");
    assert_eq!(reference.sentences.len(), reference.vectors.len());
    assert_eq!(reference.sentences.len(), reference.token_counts.len());
    reference
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

#[test]
fn local_model_matches_the_reference_vectors_batched_and_one_by_one() {
    let model = load_model();
    let reference = reference();
    assert_eq!(model.dimensions(), 384);
    assert_eq!(model.max_input_tokens(), 256);
    let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();

    // One batch: inputs from 3 to 256 tokens padded together, so a masking mistake shows.
    let batch = model.embed(&texts).expect("batch embeds");
    assert_eq!(batch.vectors.len(), texts.len());
    assert_eq!(
        batch.tokens,
        reference
            .token_counts
            .iter()
            .map(|&n| n as u64)
            .sum::<u64>()
    );

    let mut min_cosine = f64::INFINITY;
    for (i, text) in texts.iter().enumerate() {
        let single = model.embed(&[text]).expect("single input embeds");
        assert_eq!(
            single.tokens as usize, reference.token_counts[i],
            "token count of sentence {i}"
        );
        let (b, s) = (&batch.vectors[i], &single.vectors[0]);
        assert_eq!(b.len(), 384);
        let norm = dot(b, b).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "sentence {i} has norm {norm}");
        let drift = b
            .iter()
            .zip(s)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            drift < 1e-4,
            "sentence {i}: batch and single differ by {drift}"
        );

        for (label, v) in [("batched", b), ("single", s)] {
            let c = cosine(v, &reference.vectors[i]);
            min_cosine = min_cosine.min(c);
            assert!(
                c >= 0.999,
                "{label} sentence {i}: cosine {c} to the reference"
            );
        }
    }
    println!(
        "minimum cosine to the reference: {min_cosine:.9} (1 - min = {:.1e})",
        1.0 - min_cosine
    );
}

#[test]
fn local_model_counts_tokens_before_truncation() {
    let model = load_model();
    let reference = reference();
    let max = model.max_input_tokens();
    let mut oversize = 0;
    for (i, text) in reference.sentences.iter().enumerate() {
        let counted = model.count_tokens(text);
        if reference.token_counts[i] < max {
            assert_eq!(counted, reference.token_counts[i], "sentence {i}");
        } else {
            // The reference counts after truncation; count_tokens must show the overflow.
            assert!(
                counted > max,
                "sentence {i}: {counted} tokens, not over {max}"
            );
            oversize += 1;
        }
    }
    assert_eq!(oversize, 1, "the reference has one sentence over the limit");
    assert_eq!(model.count_tokens(""), 2, "[CLS] and [SEP] alone");
}

#[test]
fn local_model_ranks_a_paraphrase_above_an_unrelated_sentence() {
    let model = load_model();
    let out = model
        .embed(&[
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "The quick brown fox jumps over the lazy dog.",
        ])
        .expect("embeds");
    let paraphrase = cosine(&out.vectors[0], &out.vectors[1]);
    let unrelated = cosine(&out.vectors[0], &out.vectors[2]);
    assert!(
        paraphrase > unrelated + 0.3,
        "paraphrase {paraphrase:.3} vs unrelated {unrelated:.3}"
    );
}

#[test]
fn local_model_embeds_nothing_for_no_input() {
    let model = load_model();
    let out = model.embed(&[]).expect("empty input is fine");
    assert!(out.vectors.is_empty());
    assert_eq!(out.tokens, 0);
}

/// A configuration that does not fit the model is refused when the worker starts, not
/// after the first file was chunked for the wrong model.
#[test]
fn local_provider_refuses_a_mismatched_configuration() {
    let settings = |extra: &str| {
        ragworker::config::Settings::from_toml_layers(&[&format!(
            "[embedding]\nprovider = \"local\"\nlocal_model_dir = \"{}\"\nmax_input_tokens = 256\n{extra}\n[chunking]\nmax_tokens = 128\noverlap_tokens = 16",
            model_dir().display()
        )])
        .unwrap()
        .embedding
    };
    let err = ragworker::embed::Embedder::new(&settings("dimensions = 1536"))
        .err()
        .expect("1536 dimensions cannot come from MiniLM")
        .to_string();
    assert!(
        err.contains("produces 384-dimensional vectors but embedding.dimensions is 1536"),
        "{err}"
    );
    let embedder = ragworker::embed::Embedder::new(&settings("dimensions = 384")).unwrap();
    // Chunking counts with the model's WordPiece tokenizer, [CLS] and [SEP] included.
    assert_eq!(embedder.tokenizer().count("hello world"), 4);
}

/// Chunks of a long section are sized from one tokenization of the whole text (token end
/// offsets from the tokenizer), which is only right if those offsets are byte offsets of
/// the text: accented, Cyrillic, Greek and CJK text would shift them otherwise. Every
/// chunk's recorded count is the model's own count of what it embeds, within the budget.
#[test]
fn chunks_of_non_ascii_text_count_as_the_model_counts_them() {
    use ragworker::chunk::{Chunker, Tokenizer};
    use ragworker::config::ChunkingSettings;
    use std::sync::Arc;

    let model = Arc::new(load_model());
    let settings = ChunkingSettings {
        max_tokens: 64,
        overlap_tokens: 8,
        embed_template: "{heading}\n\n{content}".into(),
    };
    let chunker = Chunker::new(&settings, Tokenizer::Local(model.clone())).unwrap();
    let paragraph = "Ünïcödé wörds — “quotes”, naïve café. Съешь же ещё этих мягких булок. \
                     Ελληνικά κείμενα εδώ. 東京は日本の首都です。 Tabs\tand  double  spaces, 3.14 and 1,000.";
    let text = format!("# Überschrift\n\n{}", [paragraph; 12].join("\n\n"));
    let doc = ragworker::extract::extract(text.as_bytes(), "notes.md", None, 1 << 20).unwrap();
    let chunks = chunker.chunk(&doc).chunks;
    assert!(
        chunks.len() > 5,
        "the section was split: {} chunks",
        chunks.len()
    );
    for chunk in &chunks {
        assert_eq!(
            chunk.token_count as usize,
            model.count_tokens(&chunk.embed_input),
            "chunk {}: {:?}",
            chunk.index,
            chunk.embed_input
        );
        assert!(
            chunk.token_count <= 64,
            "chunk {} over the budget",
            chunk.index
        );
    }
}
