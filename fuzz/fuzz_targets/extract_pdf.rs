//! PDF extraction on inputs that start like a PDF.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::silence_caught_panics;

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend_from_slice(data);
    let _ = ragworker::extract::extract(&bytes, "f.pdf", None, 1 << 20);
});
