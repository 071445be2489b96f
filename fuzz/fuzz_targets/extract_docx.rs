//! DOCX extraction: the fuzz input becomes word/document.xml inside a real zip, so the XML
//! walker (not only the zip reader) is exercised.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::silence_caught_panics;

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("word/document.xml", opts).unwrap();
        zip.write_all(data).unwrap();
        zip.start_file("word/styles.xml", opts).unwrap();
        zip.write_all(data).unwrap();
        zip.finish().unwrap();
    }
    let _ = ragworker::extract::extract(&buf.into_inner(), "f.docx", None, 1 << 20);
    // The raw bytes as a zip too.
    let _ = ragworker::extract::extract(data, "f.docx", None, 1 << 20);
});
