//! EPUB extraction: the fuzz input becomes the package document (OPF) and the chapter it
//! names, so the spine reader and the chapter path are exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::{check, silence_caught_panics, zip_of};

const CONTAINER: &[u8] = br#"<container><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;
const OPF: &[u8] = br#"<package><manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/></manifest><spine><itemref idref="c"/></spine></package>"#;

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    for (opf, chapter) in [(OPF, data), (data, OPF)] {
        let bytes = zip_of(&[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", CONTAINER),
            ("OEBPS/content.opf", opf),
            ("OEBPS/c.xhtml", chapter),
        ]);
        check(ragworker::extract::extract(&bytes, "f.epub", None, 1 << 20));
    }
});
