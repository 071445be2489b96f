//! Spreadsheets and delimited text: the fuzz input becomes an XLSX sheet inside a real zip
//! (so calamine's cell reader, not only the zip reader, is exercised), then a CSV file.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;
use common::{check, silence_caught_panics};

fuzz_target!(|data: &[u8]| {
    silence_caught_panics();
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        // Without the package relationships calamine stops at `_rels/.rels` and the sheet is
        // never parsed (the first runs, 24,445 inputs, fuzzed only the zip and CSV readers).
        zip.start_file("_rels/.rels", opts).unwrap();
        zip.write_all(br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#).unwrap();
        zip.start_file("xl/workbook.xml", opts).unwrap();
        zip.write_all(br#"<workbook xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#).unwrap();
        zip.start_file("xl/_rels/workbook.xml.rels", opts).unwrap();
        zip.write_all(br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#).unwrap();
        zip.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
        zip.write_all(data).unwrap();
        zip.finish().unwrap();
    }
    check(ragworker::extract::extract(
        &buf.into_inner(),
        "f.xlsx",
        None,
        1 << 20,
    ));
    check(ragworker::extract::extract(data, "f.csv", None, 1 << 20));
});
