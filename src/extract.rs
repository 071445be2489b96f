//! Text extraction: the format is detected from the bytes, then each format yields sections
//! (a PDF page, or the whole text) ready for chunking.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Formats ragworker can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Markdown,
    PlainText,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Markdown => "markdown",
            Format::PlainText => "text",
        }
    }
}

/// A run of text with the page it came from (PDF pages; `None` for formats without pages).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub text: String,
    pub page: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub format: Format,
    pub sections: Vec<Section>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    #[error("corrupt or unreadable PDF: {0}")]
    CorruptPdf(String),
    #[error("the PDF is encrypted and needs a password")]
    Encrypted,
    #[error("no extractable text (scanned document?)")]
    NoTextLayer,
    #[error("the document contains no text")]
    NoText,
    #[error("extracted text is {size} bytes, over the {max}-byte limit (extract.max_text_bytes)")]
    TooLarge { size: usize, max: usize },
    #[error("the extractor crashed on this file: {0}")]
    Panicked(String),
}

/// Detects the format from magic numbers. Names and MIME types are only consulted to tell
/// Markdown from plain text, which share their bytes.
pub fn detect(bytes: &[u8], name: &str, mime: Option<&str>) -> Result<Format, ExtractError> {
    if bytes.starts_with(b"%PDF-") || find(&bytes[..bytes.len().min(1024)], b"%PDF-").is_some() {
        return Ok(Format::Pdf);
    }
    if let Some(kind) = binary_kind(bytes) {
        return Err(ExtractError::Unsupported(kind.to_string()));
    }
    let lower = name.to_ascii_lowercase();
    let markdown = lower.ends_with(".md")
        || lower.ends_with(".markdown")
        || mime.is_some_and(|m| m.starts_with("text/markdown") || m.starts_with("text/x-markdown"));
    Ok(if markdown {
        Format::Markdown
    } else {
        Format::PlainText
    })
}

fn binary_kind(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
        (b"PK\x03\x04", "ZIP archive (DOCX/XLSX/ZIP)"),
        (b"\x1f\x8b", "gzip archive"),
        (b"\x7fELF", "ELF executable"),
        (b"MZ", "Windows executable"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "legacy Microsoft Office document",
        ),
        (b"Rar!", "RAR archive"),
        (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
        (b"ID3", "MP3 audio"),
        (b"OggS", "Ogg media"),
        (b"RIFF", "RIFF media (WAV/AVI/WebP)"),
        (b"SQLite format 3\0", "SQLite database"),
    ];
    if let Some((_, kind)) = MAGIC.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Some(kind);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some("MP4/QuickTime media");
    }
    let head = &bytes[..bytes.len().min(8192)];
    // UTF-16 text has NULs too; it is recognised by its byte-order mark.
    let utf16 = head.starts_with(b"\xff\xfe") || head.starts_with(b"\xfe\xff");
    if !utf16 && head.contains(&0) {
        return Some("binary data");
    }
    None
}

/// Extracts text, with a panic inside a parser turned into an error for this file only.
pub fn extract(
    bytes: &[u8],
    name: &str,
    mime: Option<&str>,
    max_text_bytes: usize,
) -> Result<Document, ExtractError> {
    let format = detect(bytes, name, mime)?;
    let sections = catch_unwind(AssertUnwindSafe(|| match format {
        Format::Pdf => extract_pdf(bytes),
        Format::Markdown | Format::PlainText => Ok(vec![Section {
            text: decode_text(bytes),
            page: None,
        }]),
    }))
    .map_err(|panic| ExtractError::Panicked(panic_message(&panic)))??;

    let sections: Vec<Section> = sections
        .into_iter()
        .map(|s| Section {
            text: clean_text(&s.text),
            page: s.page,
        })
        .filter(|s| !s.text.trim().is_empty())
        .collect();
    if sections.is_empty() {
        return Err(if format == Format::Pdf {
            ExtractError::NoTextLayer
        } else {
            ExtractError::NoText
        });
    }
    let size: usize = sections.iter().map(|s| s.text.len()).sum();
    if size > max_text_bytes {
        return Err(ExtractError::TooLarge {
            size,
            max: max_text_bytes,
        });
    }
    Ok(Document { format, sections })
}

/// Bound on a page's decompressed content streams, so a compression bomb fails the file
/// instead of exhausting memory.
const MAX_PDF_STREAM_BYTES: usize = 256 << 20;

fn extract_pdf(bytes: &[u8]) -> Result<Vec<Section>, ExtractError> {
    // lopdf decrypts files encrypted with an empty user password while loading; a file that
    // still reports encryption afterwards needs a real password.
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => ExtractError::Encrypted,
        other => ExtractError::CorruptPdf(other.to_string()),
    })?;
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(ExtractError::CorruptPdf("the document has no pages".into()));
    }
    let mut sections = Vec::with_capacity(pages.len());
    for &number in pages.keys() {
        // A page whose content cannot be decoded is skipped rather than failing the whole
        // document; a document with no readable page at all fails below as "no text".
        if let Ok(text) = doc.extract_text_with_limit(&[number], MAX_PDF_STREAM_BYTES) {
            sections.push(Section {
                text,
                page: Some(number as i32),
            });
        }
    }
    Ok(sections)
}

/// Decodes text: UTF-8 (BOM stripped), UTF-16 with a BOM, otherwise Latin-1, which maps
/// every byte and so never fails.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// Makes text storable in Postgres and pleasant to chunk: NUL bytes (which a `text` column
/// rejects) and other control characters go, line endings become `\n`.
pub fn clean_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_bytes_not_by_name() {
        assert_eq!(
            detect(b"%PDF-1.4\n...", "notes.txt", None).unwrap(),
            Format::Pdf
        );
        let err = detect(
            b"\x89PNG\r\n\x1a\n\0\0",
            "report.pdf",
            Some("application/pdf"),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "unsupported file type: PNG image");
        assert_eq!(
            detect(b"# Title\n", "a.md", None).unwrap(),
            Format::Markdown
        );
        assert_eq!(
            detect(b"# Title\n", "a", Some("text/markdown")).unwrap(),
            Format::Markdown
        );
        assert_eq!(detect(b"hello", "a.txt", None).unwrap(), Format::PlainText);
        let err = detect(b"abc\0def", "a.txt", None).unwrap_err();
        assert_eq!(err.to_string(), "unsupported file type: binary data");
    }

    #[test]
    fn decodes_common_encodings() {
        assert_eq!(decode_text(b"\xef\xbb\xbfcaf\xc3\xa9"), "café");
        assert_eq!(decode_text(b"\xff\xfec\0a\0f\0\xe9\0"), "café");
        assert_eq!(decode_text(b"\xfe\xff\0c\0a\0f\0\xe9"), "café");
        assert_eq!(decode_text(b"caf\xe9"), "café"); // Latin-1
    }

    #[test]
    fn cleaning_removes_what_postgres_rejects() {
        assert_eq!(clean_text("a\0b\r\nc\u{7}d"), "ab\ncd");
    }

    #[test]
    fn empty_and_oversized_text_fail_clearly() {
        let err = extract(b"  \n\n ", "empty.txt", None, 100).unwrap_err();
        assert_eq!(err.to_string(), "the document contains no text");
        let err = extract(&[b'a'; 200], "big.txt", None, 100).unwrap_err();
        assert!(matches!(
            err,
            ExtractError::TooLarge {
                size: 200,
                max: 100
            }
        ));
    }

    #[test]
    fn garbage_after_pdf_magic_is_a_corrupt_pdf() {
        let err = extract(b"%PDF-1.7\nthis is not a pdf", "x.pdf", None, 1 << 20).unwrap_err();
        assert!(
            err.to_string().starts_with("corrupt or unreadable PDF"),
            "{err}"
        );
    }
}
