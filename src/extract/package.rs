//! Zip-based documents (PPTX, OpenDocument, EPUB): which one a zip is, and its parts read
//! under one budget of decompressed bytes for the whole file, so that a zip bomb, or a book
//! of a million tiny chapters, fails the file instead of exhausting memory.

use std::io::{Cursor, Read};

use quick_xml::events::BytesStart;

use super::{ExtractError, Format};

/// The zip-based format of `bytes`, from its parts (or `mimetype`, for OpenDocument and
/// EPUB), or `None` for a zip this module does not read.
pub(super) fn format(bytes: &[u8]) -> Option<Format> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mimetype = mimetype(&mut zip);
    match mimetype.as_str() {
        "application/epub+zip" => return Some(Format::Epub),
        "application/vnd.oasis.opendocument.text" => return Some(Format::Odt),
        "application/vnd.oasis.opendocument.presentation" => return Some(Format::Odp),
        _ => {}
    }
    if zip
        .file_names()
        .any(|n| n.is_ok_and(|n| n.starts_with("ppt/")))
    {
        Some(Format::Pptx)
    } else if mimetype.is_empty() && zip.index_for_name("META-INF/container.xml").is_some() {
        Some(Format::Epub)
    } else {
        None
    }
}

/// The `mimetype` part of an OpenDocument or EPUB zip, trimmed ("" when there is none).
pub(super) fn mimetype<R: Read + std::io::Seek>(zip: &mut zip::ZipArchive<R>) -> String {
    let mut mimetype = String::new();
    if let Ok(file) = zip.by_name("mimetype") {
        // The mimetype part is a few dozen bytes; more is not a mimetype.
        let _ = file.take(256).read_to_string(&mut mimetype);
    }
    mimetype.trim().to_string()
}

/// An opened package: its parts are read with [`Package::read`] while the budget lasts.
pub(super) struct Package<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    /// Decompressed bytes that may still be read.
    budget: usize,
    /// The whole budget, for the error message.
    limit: usize,
    /// "PPTX", "ODT", …: names the format in errors.
    kind: &'static str,
}

impl<'a> Package<'a> {
    /// Opens the zip. XML markup is many times the size of its text, so the parts together
    /// may inflate to 8 × `max_text_bytes` (at least 1 MiB), as DOCX parts may one by one.
    pub(super) fn open(
        bytes: &'a [u8],
        kind: &'static str,
        max_text_bytes: usize,
    ) -> Result<Self, ExtractError> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt(kind, e))?;
        let limit = max_text_bytes.saturating_mul(8).max(1 << 20);
        Ok(Self {
            zip,
            budget: limit,
            limit,
            kind,
        })
    }

    /// The error for this package's format.
    pub(super) fn corrupt(&self, reason: impl std::fmt::Display) -> ExtractError {
        corrupt(self.kind, reason)
    }

    /// A part's bytes, or `None` when the zip has no such part.
    pub(super) fn read_bytes(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let file = match self.zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(corrupt(self.kind, format_args!("{name}: {e}"))),
        };
        let mut buf = Vec::new();
        file.take((self.budget as u64).saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| corrupt(self.kind, format_args!("{name}: {e}")))?;
        if buf.len() > self.budget {
            return Err(ExtractError::Bomb(self.limit));
        }
        self.budget -= buf.len();
        Ok(Some(buf))
    }

    /// A part that must be UTF-8 XML, or `None` when missing.
    pub(super) fn read(&mut self, name: &str) -> Result<Option<String>, ExtractError> {
        match self.read_bytes(name)? {
            None => Ok(None),
            Some(buf) => String::from_utf8(buf)
                .map(Some)
                .map_err(|e| corrupt(self.kind, format_args!("{name} is not UTF-8: {e}"))),
        }
    }

    /// A part the format cannot do without.
    pub(super) fn require(&mut self, name: &str) -> Result<String, ExtractError> {
        self.read(name)?
            .ok_or_else(|| corrupt(self.kind, format_args!("{name} is missing")))
    }
}

fn corrupt(kind: &'static str, reason: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt {
        format: kind,
        reason: reason.to_string(),
    }
}

/// An attribute's value by its local name (namespace prefixes vary between producers).
pub(super) fn attr(e: &BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The text of an entity or character reference (`&amp;`, `&#8217;`), which quick-xml
/// reports as an event of its own.
pub(super) fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> Option<String> {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return Some(c.to_string());
    }
    quick_xml::escape::resolve_predefined_entity(&r.xml10_content()).map(str::to_string)
}

/// Resolves a relationship or manifest `target` against the folder of the part `base`
/// (`ppt/presentation.xml` + `slides/slide1.xml` → `ppt/slides/slide1.xml`); a target
/// starting with `/` is from the package root. `%XX` escapes are decoded and `..` followed;
/// a fragment (`#…`) is dropped.
pub(super) fn resolve(base: &str, target: &str) -> String {
    let target = target.split('#').next().unwrap_or("");
    let target = percent_decode(target);
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').collect()
    };
    parts.pop(); // the base part's own file name (or "" for a root-level base)
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.retain(|p| !p.is_empty());
    parts.join("/")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;

    use super::*;

    /// A zip of `(name, content)` parts as producers write them: deflated, except the
    /// `mimetype` of OpenDocument and EPUB, which their specifications store uncompressed.
    pub(crate) fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            for (name, content) in parts {
                let method = if *name == "mimetype" {
                    zip::CompressionMethod::Stored
                } else {
                    zip::CompressionMethod::Deflated
                };
                zip.start_file(*name, opts.compression_method(method))
                    .unwrap();
                zip.write_all(content).unwrap();
            }
            zip.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn resolves_relative_targets() {
        assert_eq!(
            resolve("ppt/presentation.xml", "slides/slide1.xml"),
            "ppt/slides/slide1.xml"
        );
        assert_eq!(
            resolve("ppt/slides/slide1.xml", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(
            resolve("ppt/presentation.xml", "/ppt/slides/slide2.xml"),
            "ppt/slides/slide2.xml"
        );
        assert_eq!(
            resolve("OEBPS/content.opf", "Text/chapter%201.xhtml#top"),
            "OEBPS/Text/chapter 1.xhtml"
        );
        assert_eq!(resolve("content.opf", "ch1.xhtml"), "ch1.xhtml");
        assert_eq!(resolve("a.opf", "%zz%4"), "%zz%4");
    }

    #[test]
    fn detects_formats_from_parts() {
        let odt = zip_of(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", b"<x/>"),
        ]);
        assert_eq!(format(&odt), Some(Format::Odt));
        let ods = zip_of(&[(
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        )]);
        assert_eq!(format(&ods), None);
        let pptx = zip_of(&[("ppt/presentation.xml", b"<x/>")]);
        assert_eq!(format(&pptx), Some(Format::Pptx));
        let epub = zip_of(&[("META-INF/container.xml", b"<x/>")]);
        assert_eq!(format(&epub), Some(Format::Epub));
        assert_eq!(format(&zip_of(&[("a.txt", b"hi")])), None);
    }

    /// The budget is for the whole file: parts that each fit can still exceed it together.
    #[test]
    fn the_budget_covers_all_parts_together() {
        let big = vec![b'a'; 700 * 1024];
        let bytes = zip_of(&[("one.xml", &big), ("two.xml", &big)]);
        assert!(bytes.len() < 20 * 1024, "deflated: {}", bytes.len());
        let mut pkg = Package::open(&bytes, "ODT", 1000).unwrap();
        assert_eq!(pkg.read("one.xml").unwrap().unwrap().len(), big.len());
        let err = pkg.read("two.xml").unwrap_err();
        assert!(
            matches!(err, ExtractError::Bomb(l) if l == 1 << 20),
            "{err}"
        );
        assert!(pkg.read("three.xml").unwrap().is_none());
        let err = pkg.require("three.xml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt or unreadable ODT: three.xml is missing"
        );
    }
}
