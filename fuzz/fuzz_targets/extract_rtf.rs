//! RTF extraction: the fuzz input after the `{\rtf` prefix that selects the RTF reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::{check, silence_caught_panics};

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let mut bytes = b"{\\rtf1".to_vec();
    bytes.extend_from_slice(data);
    check(ragworker::extract::extract(&bytes, "f.rtf", None, 1 << 20));
});
