//! HTML extraction and text decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::silence_caught_panics;

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let mut bytes = b"<!doctype html>".to_vec();
    bytes.extend_from_slice(data);
    let _ = ragworker::extract::extract(&bytes, "f.html", None, 1 << 20);
    let _ = ragworker::extract::decode_text(data);
});
