//! Format detection plus whichever extractor the bytes lead to, then chunking-safe cleanup:
//! must return Ok or Err, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

/// ragworker catches panics inside parsing crates (pdf-extract has several) and fails the
/// file; libFuzzer's hook would abort on them anyway. Only panics that escape `extract`
/// (which libfuzzer-sys still turns into crashes) are bugs here.
fn silence_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let _ = ragworker::extract::detect(data, "upload.md", None);
    let _ = ragworker::extract::extract(data, "upload.txt", None, 1 << 20);
});
