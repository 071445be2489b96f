//! Shared by every fuzz target (each is its own binary, so this is included with `#[path]`).

/// ragworker catches panics inside parsing crates (pdf-extract has several) and fails the
/// file; libFuzzer's hook would abort on them anyway. The hook installed here only records
/// where the last panic happened, so that [`check`] can tell a contained third-party panic
/// from a bug in ragworker's own extractors. Panics that escape `extract` are still crashes
/// (libfuzzer-sys aborts on them).
pub fn silence_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.to_string());
        }))
    });
}

static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Crates whose panics ragworker contains on purpose (a PDF attached to a message reaches
/// them): known upstream bugs, failed as "the extractor crashed on this file".
const CONTAINED: &[&str] = &[
    "pdf-extract",
    "lopdf",
    "/type1-encoding-parser",
    "/cff-parser",
];

/// Aborts (a crash libFuzzer saves) when extraction failed because code other than a
/// [`CONTAINED`] crate panicked: the new formats' extractors must fail with an error instead.
#[allow(dead_code)] // the PDF targets tolerate pdf-extract's panics
pub fn check(result: Result<ragworker::extract::Document, ragworker::extract::ExtractError>) {
    if let Err(ragworker::extract::ExtractError::Panicked(message)) = result {
        let at = LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        if !CONTAINED.iter().any(|c| at.contains(c)) {
            eprintln!("extractor panicked: {message}\n{at}");
            std::process::abort();
        }
    }
}

/// A zip of `(name, content)` parts, as the zip-based formats' targets build their input.
#[allow(dead_code)] // not every target builds a zip
pub fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for (name, content) in parts {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}
