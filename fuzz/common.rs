//! Shared by every fuzz target (each is its own binary, so this is included with `#[path]`).

/// ragworker catches panics inside parsing crates (pdf-extract has several) and fails the
/// file; libFuzzer's hook would abort on them anyway. Only panics that escape `extract`
/// (which libfuzzer-sys still turns into crashes) are bugs here.
pub fn silence_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
