//! E-mail: the fuzz input after a header block, so the MIME walk and the attachment
//! recursion are exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::{check, silence_caught_panics};

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let mut bytes = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: fuzz\r\n".to_vec();
    bytes.extend_from_slice(data);
    check(ragworker::extract::extract(&bytes, "f.eml", None, 1 << 20));
});
