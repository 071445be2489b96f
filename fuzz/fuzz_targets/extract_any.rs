//! Format detection plus whichever extractor the bytes lead to, then chunking-safe cleanup:
//! must return Ok or Err, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::silence_caught_panics;

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let _ = ragworker::extract::detect(data, "upload.md", None);
    let _ = ragworker::extract::extract(data, "upload.txt", None, 1 << 20);
});
