//! PPTX extraction: the fuzz input becomes the one slide and its notes inside a package
//! whose presentation.xml and relationships are valid, so the shape walker (not only the
//! zip reader) is exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::{check, silence_caught_panics, zip_of};

const PRESENTATION: &[u8] = br#"<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>"#;
const RELS: &[u8] = br#"<Relationships><Relationship Id="rId2" Type="x/slide" Target="slides/slide1.xml"/></Relationships>"#;
const SLIDE_RELS: &[u8] = br#"<Relationships><Relationship Id="rId1" Type="x/notesSlide" Target="../notesSlides/notesSlide1.xml"/></Relationships>"#;

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let bytes = zip_of(&[
        ("ppt/presentation.xml", PRESENTATION),
        ("ppt/_rels/presentation.xml.rels", RELS),
        ("ppt/slides/slide1.xml", data),
        ("ppt/slides/_rels/slide1.xml.rels", SLIDE_RELS),
        ("ppt/notesSlides/notesSlide1.xml", data),
    ]);
    check(ragworker::extract::extract(&bytes, "f.pptx", None, 1 << 20));
    // The input as presentation.xml too (slide order, relationship ids).
    let bytes = zip_of(&[
        ("ppt/presentation.xml", data),
        ("ppt/_rels/presentation.xml.rels", RELS),
        ("ppt/slides/slide1.xml", PRESENTATION),
    ]);
    check(ragworker::extract::extract(&bytes, "f.pptx", None, 1 << 20));
});
