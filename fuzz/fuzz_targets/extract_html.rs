//! HTML extraction and text decoding.
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
    let mut bytes = b"<!doctype html>".to_vec();
    bytes.extend_from_slice(data);
    let _ = ragworker::extract::extract(&bytes, "f.html", None, 1 << 20);
    let _ = ragworker::extract::decode_text(data);
});
