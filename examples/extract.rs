//! Prints what ragworker extracts from a file, as JSON: `{"format": ..., "pages": [{"page",
//! "text", "ocr"}], "seconds": ...}` or `{"error": ..., "seconds": ...}`. Used by
//! `scripts/compare_pdf_text.py` to measure extraction against poppler's pdftotext, and with
//! `--ocr` (the default `[extract.ocr]` settings, as the worker reads files) by
//! `scripts/ocr_bench.py`. With `--keep-furniture`, a PDF's pages as read before running
//! headers, footers and tables of contents are dropped (`extract::pdf_pages_as_read`).
//!
//! cargo run --release --example extract -- [--ocr | --keep-furniture] FILE

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ocr = args.iter().any(|a| a == "--ocr");
    let keep_furniture = args.iter().any(|a| a == "--keep-furniture");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .expect("usage: extract [--ocr | --keep-furniture] FILE");
    let bytes = std::fs::read(path).expect("readable file");
    let started = Instant::now();
    let result = if keep_furniture {
        ragworker::extract::pdf_pages_as_read(&bytes).map(|sections| ragworker::extract::Document {
            format: ragworker::extract::Format::Pdf,
            sections,
        })
    } else if ocr {
        let mut settings = ragworker::config::Settings::from_toml_layers(&[])
            .expect("default settings")
            .extract;
        settings.max_text_bytes = usize::MAX;
        ragworker::extract::extract_with(&bytes, path, None, &settings)
    } else {
        ragworker::extract::extract(&bytes, path, None, usize::MAX)
    };
    let seconds = started.elapsed().as_secs_f64();
    let out = match result {
        Ok(doc) => serde_json::json!({
            "format": doc.format.as_str(),
            "pages": doc.sections.iter().enumerate().map(|(i, s)| serde_json::json!({
                "page": s.page.unwrap_or(i as i32 + 1),
                "text": s.text,
                "ocr": s.ocr,
            })).collect::<Vec<_>>(),
            "seconds": seconds,
        }),
        Err(e) => serde_json::json!({ "error": e.to_string(), "seconds": seconds }),
    };
    println!("{out}");
}
