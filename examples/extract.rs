//! Prints what ragworker extracts from a file, as JSON: `{"format": ..., "pages": [{"page",
//! "text"}], "seconds": ...}` or `{"error": ..., "seconds": ...}`. Used by
//! `scripts/compare_pdf_text.py` to measure extraction against poppler's pdftotext.
//!
//! cargo run --release --example extract -- FILE

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: extract FILE");
    let bytes = std::fs::read(&path).expect("readable file");
    let started = Instant::now();
    let result = ragworker::extract::extract(&bytes, &path, None, usize::MAX);
    let seconds = started.elapsed().as_secs_f64();
    let out = match result {
        Ok(doc) => serde_json::json!({
            "format": doc.format.as_str(),
            "pages": doc.sections.iter().enumerate().map(|(i, s)| serde_json::json!({
                "page": s.page.unwrap_or(i as i32 + 1),
                "text": s.text,
            })).collect::<Vec<_>>(),
            "seconds": seconds,
        }),
        Err(e) => serde_json::json!({ "error": e.to_string(), "seconds": seconds }),
    };
    println!("{out}");
}
