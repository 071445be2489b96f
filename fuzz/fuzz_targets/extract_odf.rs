//! OpenDocument extraction: the fuzz input becomes content.xml of a text document and of a
//! presentation.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::{check, silence_caught_panics, zip_of};

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    for mimetype in [
        &b"application/vnd.oasis.opendocument.text"[..],
        b"application/vnd.oasis.opendocument.presentation",
    ] {
        let bytes = zip_of(&[("mimetype", mimetype), ("content.xml", data)]);
        check(ragworker::extract::extract(&bytes, "f.odt", None, 1 << 20));
    }
});
