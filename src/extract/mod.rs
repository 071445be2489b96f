//! Text extraction: the format is detected from the bytes, then each format yields sections
//! (a PDF page or a slide, an EPUB chapter, or the whole text) ready for chunking. HTML,
//! DOCX, ODT, EPUB and slides (PPTX, ODP) become Markdown-style text (`#` headings) so that
//! chunks carry their heading path as Markdown's do; RTF becomes plain text; a PDF's
//! headings, found from its outline or its typography, travel beside its text as
//! [`Heading`] marks. Tables of contents, running headers and footers and permalink marks
//! are left out (`furniture`).

mod docx;
mod email;
mod epub;
mod furniture;
mod html;
mod ocr;
mod odf;
mod package;
mod pdf;
mod pptx;
mod rtf;
mod sheet;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Formats ragworker can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Markdown,
    PlainText,
    Html,
    Docx,
    /// A picture of text (PNG, JPEG, TIFF, WebP, BMP, GIF), read by OCR.
    Image,
    /// XLSX, XLS or ODS: a section per sheet.
    Spreadsheet,
    /// CSV or TSV.
    Delimited,
    /// An Internet message (`.eml`), with its attachments.
    Email,
    Pptx,
    Odp,
    Odt,
    Epub,
    Rtf,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Markdown => "markdown",
            Format::PlainText => "text",
            Format::Html => "html",
            Format::Docx => "docx",
            Format::Image => "image",
            Format::Spreadsheet => "spreadsheet",
            Format::Delimited => "csv",
            Format::Email => "email",
            Format::Pptx => "pptx",
            Format::Odp => "odp",
            Format::Odt => "odt",
            Format::Epub => "epub",
            Format::Rtf => "rtf",
        }
    }

    /// Whether the extracted text uses Markdown headings (and so gets heading paths).
    pub fn has_headings(self) -> bool {
        matches!(
            self,
            Format::Markdown
                | Format::Html
                | Format::Docx
                | Format::Spreadsheet
                | Format::Delimited
                | Format::Email
                | Format::Pptx
                | Format::Odp
                | Format::Odt
                | Format::Epub
        )
    }
}

/// A run of text with the page it came from (PDF pages; `None` for formats without pages).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub text: String,
    pub page: Option<i32>,
    /// Heading lines the extractor recognised in `text` (PDFs); formats whose text marks its
    /// own headings (Markdown and what becomes Markdown) leave this empty.
    pub headings: Vec<Heading>,
    /// The text was read by OCR from a picture of the page.
    pub ocr: bool,
}

impl Section {
    pub fn new(text: String, page: Option<i32>) -> Self {
        Self {
            text,
            page,
            headings: Vec::new(),
            ocr: false,
        }
    }

    fn from_ocr(text: String, page: i32) -> Self {
        Self {
            ocr: true,
            ..Self::new(text, Some(page))
        }
    }
}

/// A heading in a section's text: `text[offset..offset + len]`, whole lines, at `level`
/// (1 is a document's top level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heading {
    pub offset: usize,
    pub len: usize,
    pub level: u8,
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
    #[error("{0}: OCR is disabled (extract.ocr.enabled)")]
    OcrDisabled(&'static str),
    #[error("OCR needs {0}, which is not installed: apt-get install tesseract-ocr tesseract-ocr-eng poppler-utils (or set extract.ocr.enabled = false)")]
    OcrUnavailable(String),
    #[error("OCR failed: {0}")]
    Ocr(String),
    #[error("OCR of {} took longer than {secs}s (extract.ocr.page_timeout_secs)", page.map_or("the image".to_string(), |p| format!("page {p}")))]
    OcrTimeout { page: Option<i32>, secs: u64 },
    #[error("{pages} pages need OCR, over the limit of {max} (extract.ocr.max_pages)")]
    OcrTooManyPages { pages: usize, max: usize },
    #[error("OCR found no text in {0}")]
    NoOcrText(&'static str),
    #[error("the document contains no text")]
    NoText,
    #[error("extracted text is {size} bytes, over the {max}-byte limit (extract.max_text_bytes)")]
    TooLarge { size: usize, max: usize },
    #[error("the extractor crashed on this file: {0}")]
    Panicked(String),
    #[error("corrupt or unreadable DOCX: {0}")]
    CorruptDocx(String),
    /// A document of another format (PPTX, ODT, EPUB, RTF, …) that cannot be read.
    #[error("corrupt or unreadable {format}: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },
    #[error("the document expands to more than {0} bytes when decompressed (zip bomb?)")]
    Bomb(usize),
    #[error("text extraction took longer than {0}s (extract.timeout_secs, and extract.ocr.page_timeout_secs for each page OCR reads)")]
    Timeout(u64),
}

/// Detects the format from magic numbers and content. Names and MIME types are only
/// consulted to tell Markdown from plain text, which share their bytes.
pub fn detect(bytes: &[u8], name: &str, mime: Option<&str>) -> Result<Format, ExtractError> {
    if bytes.starts_with(b"%PDF-") || find(&bytes[..bytes.len().min(1024)], b"%PDF-").is_some() {
        return Ok(Format::Pdf);
    }
    if sheet::kind(bytes).is_some() {
        return Ok(Format::Spreadsheet);
    }
    if bytes.starts_with(b"{\\rtf") {
        return Ok(Format::Rtf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return if docx::is_docx(bytes) {
            Ok(Format::Docx)
        } else if let Some(format) = package::format(bytes) {
            Ok(format)
        } else {
            Err(ExtractError::Unsupported(zip_kind(bytes).into()))
        };
    }
    if image_kind(bytes).is_some() {
        return Ok(Format::Image);
    }
    if let Some(kind) = binary_kind(bytes) {
        return Err(ExtractError::Unsupported(kind.to_string()));
    }
    let lower = name.to_ascii_lowercase();
    if email::looks_like_email(bytes)
        || lower.ends_with(".eml")
        || mime.is_some_and(|m| m.eq_ignore_ascii_case("message/rfc822"))
    {
        return Ok(Format::Email);
    }
    if looks_like_html(bytes) {
        return Ok(Format::Html);
    }
    let delimited = lower.ends_with(".csv")
        || lower.ends_with(".tsv")
        || mime.is_some_and(|m| {
            m.starts_with("text/csv") || m.starts_with("text/tab-separated-values")
        });
    if delimited {
        return Ok(Format::Delimited);
    }
    let markdown = lower.ends_with(".md")
        || lower.ends_with(".markdown")
        || mime.is_some_and(|m| m.starts_with("text/markdown") || m.starts_with("text/x-markdown"));
    Ok(if markdown {
        Format::Markdown
    } else {
        Format::PlainText
    })
}

/// An HTML document starts (after a BOM, whitespace and comments) with a doctype or a
/// structural tag.
fn looks_like_html(bytes: &[u8]) -> bool {
    let head = decode_text(&bytes[..bytes.len().min(2048)]).to_ascii_lowercase();
    let mut rest = head.trim_start();
    while let Some(after) = rest.strip_prefix("<!--") {
        rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
    }
    if rest.starts_with("<?xml") {
        rest = rest.split_once("?>").map_or("", |(_, r)| r).trim_start();
    }
    ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|p| rest.starts_with(p))
}

/// What a zip that no extractor reads is, for the error message.
fn zip_kind(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(4096)];
    if find(head, b"xl/").is_some() {
        "XLSX spreadsheet"
    } else if find(
        head,
        b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
    )
    .is_some()
    {
        "OpenDocument spreadsheet"
    } else if find(head, b"mimetypeapplication/vnd.oasis.opendocument").is_some() {
        "OpenDocument file (only text documents and presentations are read)"
    } else {
        "ZIP archive"
    }
}

/// The kinds of image OCR reads, from their magic numbers.
fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
        (b"II*\0", "TIFF image"),
        (b"MM\0*", "TIFF image"),
    ];
    if let Some((_, kind)) = MAGIC.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Some(kind);
    }
    if bytes.len() >= 16 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Some("WebP image");
    }
    // "BM" alone starts many a text; a BMP's header also has zero reserved bytes and a
    // known size of its second header.
    if bytes.len() >= 26 && bytes.starts_with(b"BM") && bytes[6..10] == [0; 4] {
        let info = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
        if [12, 40, 52, 56, 64, 108, 124].contains(&info) {
            return Some("BMP image");
        }
    }
    None
}

fn binary_kind(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
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

/// What OCR needs and this machine lacks (`tesseract`, `pdftoppm`), if anything.
pub fn ocr_missing() -> Option<String> {
    ocr::missing()
}

/// Extracts text without OCR (images and scanned pages fail saying OCR is off), with a
/// panic inside a parser turned into an error for this file only.
pub fn extract(
    bytes: &[u8],
    name: &str,
    mime: Option<&str>,
    max_text_bytes: usize,
) -> Result<Document, ExtractError> {
    read(bytes, name, mime, max_text_bytes, None, 0)
}

/// A PDF's pages as ragworker reads them before it leaves out page furniture (running
/// headers and footers, tables of contents). `scripts/compare_pdf_text.py` compares these with
/// pdftotext, which keeps furniture, to measure the reading apart from what is dropped on
/// purpose; the worker always drops it.
pub fn pdf_pages_as_read(bytes: &[u8]) -> Result<Vec<Section>, ExtractError> {
    catch_unwind(AssertUnwindSafe(|| pdf::extract_as_read(bytes)))
        .map_err(|panic| ExtractError::Panicked(crate::error::panic_message(&*panic)))?
}

/// Extracts text as the worker does: with `settings.ocr` for images and for PDF pages
/// without a text layer.
pub fn extract_with(
    bytes: &[u8],
    name: &str,
    mime: Option<&str>,
    settings: &crate::config::ExtractSettings,
) -> Result<Document, ExtractError> {
    let ocr = Some(&settings.ocr).filter(|o| o.enabled);
    read(bytes, name, mime, settings.max_text_bytes, ocr, 0)
}

/// Messages forwarded as attachments of attachments are read this deep.
const MAX_MESSAGE_DEPTH: u8 = 3;

/// Reads a document `depth` attachments deep inside a message (0: an uploaded file).
fn read(
    bytes: &[u8],
    name: &str,
    mime: Option<&str>,
    max_text_bytes: usize,
    ocr: Option<&crate::config::OcrSettings>,
    depth: u8,
) -> Result<Document, ExtractError> {
    let format = detect(bytes, name, mime)?;
    let whole = |text: String| Ok(vec![Section::new(text, None)]);
    let sections = catch_unwind(AssertUnwindSafe(|| match format {
        Format::Pdf => {
            let (mut pages, layer) = pdf::extract(bytes)?;
            // Pages without a text layer are read by OCR; with OCR off they are left out,
            // and a PDF that is nothing but such pages fails saying so.
            match ocr {
                Some(settings) => ocr::pdf_pages(bytes, &mut pages, &layer, settings)?,
                None if pages.iter().all(|p| p.text.trim().is_empty()) => {
                    return Err(ExtractError::OcrDisabled("scanned PDF"));
                }
                None => {}
            }
            Ok(pages)
        }
        Format::Spreadsheet => match sheet::kind(bytes) {
            Some(kind) => Ok(sheet::workbook(bytes, kind, max_text_bytes)?
                .into_iter()
                .map(|text| Section::new(text, None))
                .collect()),
            None => Err(ExtractError::Corrupt {
                format: "spreadsheet",
                reason: "not a workbook".into(),
            }),
        },
        Format::Delimited => whole(sheet::delimited(&decode_text(bytes), name, max_text_bytes)?),
        Format::Email if depth >= MAX_MESSAGE_DEPTH => Err(ExtractError::Corrupt {
            format: "e-mail",
            reason: format!("messages forwarded more than {MAX_MESSAGE_DEPTH} deep"),
        }),
        Format::Email => email::read(bytes, &|b, n, m| {
            read(b, n, m, max_text_bytes, ocr, depth + 1)
        }),
        Format::Image => match ocr {
            Some(settings) => ocr::image(bytes, settings),
            None => Err(ExtractError::OcrDisabled(
                image_kind(bytes).unwrap_or("image"),
            )),
        },
        Format::Markdown | Format::PlainText => whole(furniture::drop_toc_lines(
            decode_text(bytes),
            format == Format::Markdown,
        )),
        Format::Html => whole(html::to_markdown(&decode_text(bytes))),
        Format::Docx => docx::to_markdown(bytes, max_text_bytes).and_then(whole),
        Format::Pptx => pptx::extract(bytes, max_text_bytes),
        Format::Odp => odf::extract_presentation(bytes, max_text_bytes),
        Format::Odt => odf::extract_text(bytes, max_text_bytes).and_then(whole),
        Format::Epub => epub::extract(bytes, max_text_bytes),
        Format::Rtf => whole(rtf::to_text(bytes)),
    }))
    .map_err(|panic| ExtractError::Panicked(crate::error::panic_message(&*panic)))??;

    let sections: Vec<Section> = sections
        .into_iter()
        .map(|s| {
            let text = clean_text(&s.text);
            // The PDF extractor cleans its lines before it marks headings, so their offsets
            // hold; should cleaning still shorten such a text, the marks are dropped rather
            // than left pointing at the wrong words.
            let headings = if text.len() == s.text.len() {
                s.headings
            } else {
                Vec::new()
            };
            Section {
                text,
                headings,
                ..s
            }
        })
        .filter(|s| !s.text.trim().is_empty())
        .collect();
    if sections.is_empty() {
        return Err(match format {
            Format::Pdf if ocr.is_some() => ExtractError::NoOcrText("the scanned pages"),
            Format::Pdf => ExtractError::NoTextLayer,
            Format::Image => ExtractError::NoOcrText("the image"),
            _ => ExtractError::NoText,
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

/// Decodes text: UTF-8 (BOM stripped), UTF-16 with a BOM, otherwise the legacy encoding
/// chardetng finds most likely (windows-1252, ISO-8859-x, Shift_JIS, GBK, ...). Never fails:
/// undecodable bytes become U+FFFD.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        return encoding
            .decode_without_bom_handling(&bytes[bom..])
            .0
            .into_owned();
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Deny);
    encoding.decode_without_bom_handling(bytes).0.into_owned()
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

/// The lines joined, with runs of blank lines cut to one, and no trailing whitespace.
fn one_blank_line<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in lines {
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank > 1 {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// A file of `fixtures/`, for the extractors' tests.
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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
        let err = detect(b"\x1f\x8b\x08\0\0", "report.pdf", Some("application/pdf")).unwrap_err();
        assert_eq!(err.to_string(), "unsupported file type: gzip archive");
        assert_eq!(
            detect(b"\x89PNG\r\n\x1a\n\0\0", "report.pdf", None).unwrap(),
            Format::Image
        );
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

    /// Zips that no extractor reads name what they are; those that one does are detected
    /// whatever the file is called.
    #[test]
    fn zips_are_told_apart_by_their_parts() {
        use package::tests::zip_of;
        let xlsx = zip_of(&[("xl/workbook.xml", b"<workbook/>")]);
        assert_eq!(detect(&xlsx, "a.pptx", None).unwrap(), Format::Spreadsheet);
        let ods = zip_of(&[(
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        )]);
        assert_eq!(detect(&ods, "a.odt", None).unwrap(), Format::Spreadsheet);
        let epub = zip_of(&[("mimetype", b"application/epub+zip")]);
        assert_eq!(detect(&epub, "book.zip", None).unwrap(), Format::Epub);
        let odp = zip_of(&[(
            "mimetype",
            b"application/vnd.oasis.opendocument.presentation",
        )]);
        assert_eq!(detect(&odp, "x", None).unwrap(), Format::Odp);
        assert_eq!(
            detect(b"{\\rtf1\\ansi hi}", "notes.txt", None).unwrap(),
            Format::Rtf
        );
        let err = detect(&zip_of(&[("a.txt", b"hi")]), "a.docx", None).unwrap_err();
        assert_eq!(err.to_string(), "unsupported file type: ZIP archive");
    }

    #[test]
    fn spreadsheets_by_their_bytes_and_delimited_text_by_its_name() {
        let xlsx = fixture("sheets/founders.xlsx");
        assert_eq!(
            detect(&xlsx, "founders.docx", None).unwrap(),
            Format::Spreadsheet
        );
        assert_eq!(
            detect(&fixture("sheets/dates.xls"), "d", None).unwrap(),
            Format::Spreadsheet
        );
        assert_eq!(
            detect(&fixture("sheets/book.ods"), "b", None).unwrap(),
            Format::Spreadsheet
        );
        assert_eq!(
            detect(&fixture("report.docx"), "r.xlsx", None).unwrap(),
            Format::Docx
        );
        assert_eq!(
            detect(b"a,b\n1,2\n", "t.csv", None).unwrap(),
            Format::Delimited
        );
        assert_eq!(detect(b"a\tb\n", "t.tsv", None).unwrap(), Format::Delimited);
        assert_eq!(
            detect(b"a,b\n", "t", Some("text/csv")).unwrap(),
            Format::Delimited
        );
        assert_eq!(detect(b"a,b\n", "t.txt", None).unwrap(), Format::PlainText);
    }

    #[test]
    fn images_are_known_by_their_magic_numbers() {
        let mut webp = b"RIFF\x24\0\0\0WEBPVP8 ".to_vec();
        webp.resize(40, 0);
        let mut bmp = b"BM\x3e\0\0\0\0\0\0\0\x3e\0\0\0\x28\0\0\0".to_vec();
        bmp.resize(62, 0);
        for (bytes, kind) in [
            (&b"\xff\xd8\xff\xe0\0\x10JFIF"[..], "JPEG image"),
            (b"II*\0\x08\0\0\0", "TIFF image"),
            (b"MM\0*\0\0\0\x08", "TIFF image"),
            (b"GIF89a\x01\0", "GIF image"),
            (&webp, "WebP image"),
            (&bmp, "BMP image"),
        ] {
            assert_eq!(image_kind(bytes), Some(kind));
            assert_eq!(
                detect(bytes, "x.bin", None).unwrap(),
                Format::Image,
                "{kind}"
            );
        }
        // Text that merely starts with "BM", and a WAV file, are not images.
        assert_eq!(
            detect(
                b"BMW service notes: the car was serviced in May and June of 2025.",
                "n.txt",
                None
            )
            .unwrap(),
            Format::PlainText
        );
        let mut wav = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
        wav.resize(40, 0);
        assert!(detect(&wav, "a.wav", None).is_err());
    }

    fn ocr_on() -> crate::config::ExtractSettings {
        crate::config::Settings::from_toml_layers(&[])
            .unwrap()
            .extract
    }

    /// Words of `text`, lower-cased, letters and digits only.
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    #[test]
    fn images_are_read_by_ocr_with_their_page_number() {
        let settings = ocr_on();
        let doc = extract_with(
            &fixture("ocr/typewriter.png"),
            "recipe.png",
            None,
            &settings,
        )
        .unwrap();
        assert_eq!(doc.format, Format::Image);
        assert_eq!(doc.sections.len(), 1);
        let page = &doc.sections[0];
        assert!(page.ocr && page.page == Some(1));
        assert!(page.text.contains("Linzensoep"), "{}", page.text);
        for name in ["ocr/linn-page.jpg", "ocr/linn-page.tif"] {
            let doc = extract_with(&fixture(name), name, None, &settings).unwrap();
            let text: String = doc.sections.iter().map(|s| s.text.as_str()).collect();
            assert!(text.contains("The LinnSequencer"), "{name}: {text}");
        }
    }

    /// A real scanned brochure (two columns) against the text its publisher transcribed:
    /// most of its words come back, in order.
    #[test]
    fn a_scanned_pdf_is_read_by_ocr() {
        let doc = extract_with(&fixture("ocr/linn.pdf"), "linn.pdf", None, &ocr_on()).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert!(doc.sections[0].ocr && doc.sections[0].page == Some(1));
        let got = words(&doc.sections[0].text);
        let want = words(&String::from_utf8(fixture("ocr/linn.txt")).unwrap());
        let found = want.iter().filter(|w| got.contains(w)).count();
        let share = found as f64 / want.len() as f64;
        assert!(share > 0.9, "{found} of {} words found", want.len());
    }

    /// Three typeset pages and one scanned page: only the scanned one goes through OCR.
    #[test]
    fn a_mixed_pdf_reads_only_its_scanned_page_by_ocr() {
        let doc = extract_with(&fixture("ocr/mixed.pdf"), "mixed.pdf", None, &ocr_on()).unwrap();
        let pages: Vec<(Option<i32>, bool)> =
            doc.sections.iter().map(|s| (s.page, s.ocr)).collect();
        assert_eq!(
            pages,
            [
                (Some(1), false),
                (Some(2), false),
                (Some(3), false),
                (Some(4), true)
            ]
        );
        assert!(doc.sections[3].text.contains("LinnSequencer"));
        assert!(doc.sections[0].text.contains("Lighthouse Keeping Handbook"));
    }

    /// A scan with a page number stamped on it as text, as scanners and Bates stamping tools
    /// write them: the thin text layer does not stop the page from being read by OCR.
    #[test]
    fn a_scan_under_a_stamped_page_number_is_read_by_ocr() {
        use lopdf::{dictionary, Object, Stream};
        let mut doc = lopdf::Document::load_mem(&fixture("ocr/linn.pdf")).unwrap();
        let page = *doc.get_pages().get(&1).unwrap();
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let stamp = doc.add_object(Stream::new(
            dictionary! {},
            b"BT /Stamp 9 Tf 20 20 Td (ACME-000123) Tj ET".to_vec(),
        ));
        let (own, refs) = doc.get_page_resources(page).unwrap();
        let mut resources = own
            .cloned()
            .or_else(|| {
                refs.first()
                    .map(|r| doc.get_dictionary(*r).unwrap().clone())
            })
            .unwrap_or_default();
        resources.set("Font", dictionary! { "Stamp" => font });
        let page_dict = doc.get_dictionary_mut(page).unwrap();
        let contents = match page_dict.get(b"Contents").unwrap().clone() {
            Object::Array(mut items) => {
                items.push(stamp.into());
                items
            }
            one => vec![one, stamp.into()],
        };
        page_dict.set("Contents", contents);
        page_dict.set("Resources", resources);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();

        let without = extract(&bytes, "stamped.pdf", None, 1 << 20).unwrap();
        assert!(without.sections[0].text.contains("ACME-000123"));
        let read = extract_with(&bytes, "stamped.pdf", None, &ocr_on()).unwrap();
        assert!(read.sections[0].ocr);
        assert!(
            read.sections[0].text.contains("LinnSequencer"),
            "{}",
            read.sections[0].text
        );
    }

    #[test]
    fn without_ocr_scans_and_images_say_how_to_read_them() {
        let mut settings = ocr_on();
        settings.ocr.enabled = false;
        let err = extract_with(&fixture("ocr/linn.pdf"), "linn.pdf", None, &settings).unwrap_err();
        assert_eq!(
            err.to_string(),
            "scanned PDF: OCR is disabled (extract.ocr.enabled)"
        );
        let err =
            extract_with(&fixture("ocr/typewriter.png"), "t.png", None, &settings).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PNG image: OCR is disabled (extract.ocr.enabled)"
        );
        // A mixed PDF keeps its text pages.
        let doc = extract_with(&fixture("ocr/mixed.pdf"), "mixed.pdf", None, &settings).unwrap();
        assert_eq!(doc.sections.len(), 3);
    }

    #[test]
    fn ocr_limits_and_empty_pictures_fail_clearly() {
        let mut settings = ocr_on();
        settings.ocr.max_pages = 0;
        let err = extract_with(&fixture("ocr/linn.pdf"), "linn.pdf", None, &settings).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 pages need OCR, over the limit of 0 (extract.ocr.max_pages)"
        );
        let err = extract_with(&fixture("photo.png"), "photo.png", None, &ocr_on()).unwrap_err();
        assert_eq!(err.to_string(), "OCR found no text in the image");
        let err =
            extract_with(&fixture("scanned.pdf"), "scanned.pdf", None, &ocr_on()).unwrap_err();
        assert_eq!(err.to_string(), "OCR found no text in the scanned pages");
        let mut settings = ocr_on();
        settings.ocr.languages = "xyz".into();
        let err =
            extract_with(&fixture("ocr/typewriter.png"), "t.png", None, &settings).unwrap_err();
        assert!(
            err.to_string().contains("install tesseract-ocr-xyz"),
            "{err}"
        );
    }

    #[test]
    fn decodes_common_encodings() {
        assert_eq!(decode_text(b"\xef\xbb\xbfcaf\xc3\xa9"), "café");
        assert_eq!(decode_text(b"\xff\xfec\0a\0f\0\xe9\0"), "café");
        assert_eq!(decode_text(b"\xfe\xff\0c\0a\0f\0\xe9"), "café");
        assert_eq!(
            decode_text(b"caf\xe9 cr\xe8me br\xfbl\xe9e"),
            "café crème brûlée"
        ); // Latin-1
           // Shift_JIS Japanese is told apart from Latin-1.
        assert_eq!(
            decode_text(
                b"\x93\xfa\x96\x7b\x8c\xea\x82\xcc\x95\xb6\x8f\x91\x82\xc5\x82\xb7\x81\x42"
            ),
            "日本語の文書です。"
        );
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

    /// The real PPTX, ODP, ODT, EPUB and RTF fixtures cut short and with bytes flipped: each
    /// either reads or fails with an ordinary error, never by a panic caught in `extract`.
    #[test]
    fn mangled_documents_fail_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut tried = 0;
        for name in [
            "pptx-title.pptx",
            "pptx-notes.pptx",
            "pptx-table.pptx",
            "odt-twolevellist.odt",
            "odt-simpletable.odt",
            "odp-ol.odp",
            "odp-emb-spreadsheet.odp",
            "live-manual.epub",
            "rtf-accents.rtf",
            "rtf-cp1251.rtf",
            "rtf-turkish.rtf",
            "rtf-picture.rtf",
        ] {
            let data = std::fs::read(dir.join(name)).unwrap();
            let mut variants: Vec<Vec<u8>> = (1..8)
                .map(|k| data[..data.len() * k / 8].to_vec())
                .collect();
            for k in 0..16 {
                let mut flipped = data.clone();
                flipped[5 + (data.len() - 6) * k / 16] ^= 0xff;
                variants.push(flipped);
            }
            for bytes in variants {
                if let Err(e) = extract(&bytes, name, None, 1 << 22) {
                    assert!(!matches!(e, ExtractError::Panicked(_)), "{name}: {e}");
                }
                tried += 1;
            }
        }
        assert_eq!(tried, 12 * 23);
    }

    /// Inputs on which the fuzzers made a parsing crate (pdf-extract) panic: the panic must
    /// stay inside `extract`, which answers with an ordinary result.
    #[test]
    fn fuzzer_crashes_stay_contained() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let mut as_pdf = b"%PDF-1.4\n".to_vec();
            as_pdf.extend_from_slice(&data);
            for bytes in [&data, &as_pdf] {
                match extract(bytes, "fuzz.txt", None, 1 << 20) {
                    Ok(doc) => assert!(!doc.sections.is_empty()),
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
            }
            seen += 1;
        }
        assert!(seen >= 2);
    }

    /// The inputs a format fuzz target builds from its raw bytes (fuzz/fuzz_targets/*.rs:
    /// keep the two in step), so that a finding saved from it is replayed as it was found.
    fn fuzz_target_inputs(target: &str, data: &[u8]) -> Vec<(Vec<u8>, &'static str)> {
        use super::package::tests::zip_of;
        let after = |prefix: &[u8]| [prefix, data].concat();
        match target {
            "extract_sheet" => vec![
                (
                    zip_of(&[
                        ("_rels/.rels", br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
                        ("xl/workbook.xml", br#"<workbook xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
                        ("xl/_rels/workbook.xml.rels", br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
                        ("xl/worksheets/sheet1.xml", data),
                    ]),
                    "f.xlsx",
                ),
                (data.to_vec(), "f.csv"),
            ],
            "extract_email" => vec![(
                after(b"From: a@example.org\r\nTo: b@example.org\r\nSubject: fuzz\r\n"),
                "f.eml",
            )],
            "extract_pptx" => {
                const PRESENTATION: &[u8] = br#"<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>"#;
                const RELS: &[u8] = br#"<Relationships><Relationship Id="rId2" Type="x/slide" Target="slides/slide1.xml"/></Relationships>"#;
                const SLIDE_RELS: &[u8] = br#"<Relationships><Relationship Id="rId1" Type="x/notesSlide" Target="../notesSlides/notesSlide1.xml"/></Relationships>"#;
                vec![
                    (
                        zip_of(&[
                            ("ppt/presentation.xml", PRESENTATION),
                            ("ppt/_rels/presentation.xml.rels", RELS),
                            ("ppt/slides/slide1.xml", data),
                            ("ppt/slides/_rels/slide1.xml.rels", SLIDE_RELS),
                            ("ppt/notesSlides/notesSlide1.xml", data),
                        ]),
                        "f.pptx",
                    ),
                    (
                        zip_of(&[
                            ("ppt/presentation.xml", data),
                            ("ppt/_rels/presentation.xml.rels", RELS),
                            ("ppt/slides/slide1.xml", PRESENTATION),
                        ]),
                        "f.pptx",
                    ),
                ]
            }
            "extract_odf" => [
                &b"application/vnd.oasis.opendocument.text"[..],
                b"application/vnd.oasis.opendocument.presentation",
            ]
            .into_iter()
            .map(|m| (zip_of(&[("mimetype", m), ("content.xml", data)]), "f.odt"))
            .collect(),
            "extract_epub" => {
                const CONTAINER: &[u8] = br#"<container><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;
                const OPF: &[u8] = br#"<package><manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/></manifest><spine><itemref idref="c"/></spine></package>"#;
                [(OPF, data), (data, OPF)]
                    .into_iter()
                    .map(|(opf, chapter)| {
                        let bytes = zip_of(&[
                            ("mimetype", b"application/epub+zip"),
                            ("META-INF/container.xml", CONTAINER),
                            ("OEBPS/content.opf", opf),
                            ("OEBPS/c.xhtml", chapter),
                        ]);
                        (bytes, "f.epub")
                    })
                    .collect()
            }
            "extract_rtf" => vec![(after(b"{\\rtf1"), "f.rtf")],
            other => panic!("fuzz/regressions/{other}: no harness for this target here"),
        }
    }

    /// What the format fuzz targets found (fuzz/regressions/<target>/, copied there by
    /// scripts/fuzz_formats.sh), replayed as the target built it: each must now give a
    /// result or an ordinary error, never a panic (an infinite loop would hang the test).
    /// The harness is checked below, so that a finding is replayed as it was found.
    #[test]
    fn fuzz_regressions_fail_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let mut replayed = 0;
        for target in std::fs::read_dir(&dir).unwrap() {
            let target = target.unwrap();
            let name = target.file_name().into_string().unwrap();
            for input in std::fs::read_dir(target.path()).unwrap() {
                let path = input.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                for (bytes, file_name) in fuzz_target_inputs(&name, &data) {
                    if let Err(e) = extract(&bytes, file_name, None, 1 << 20) {
                        assert!(
                            !matches!(e, ExtractError::Panicked(_)),
                            "{}: {e}",
                            path.display()
                        );
                        assert!(!e.to_string().is_empty());
                    }
                }
                replayed += 1;
            }
        }
        // extract_sheet's three: sheet dimensions that end before they start, first and
        // second in their sheet, and a row number of 17 digits (calamine overflowed).
        assert!(replayed >= 3, "{replayed} findings replayed");
    }

    /// The replay harness builds what each fuzz target builds: an input a target's seeds
    /// stand for comes out as text through every file it makes.
    #[test]
    fn fuzz_replay_harness_matches_the_targets() {
        let cases: [(&str, &[u8]); 6] = [
            (
                "extract_sheet",
                br#"<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>tide</t></is></c></row></sheetData></worksheet>"#,
            ),
            ("extract_email", b"\r\ntide\r\n"),
            (
                "extract_pptx",
                br#"<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>tide</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#,
            ),
            (
                "extract_odf",
                br#"<office:document-content xmlns:office="o" xmlns:text="t" xmlns:draw="d"><office:body><office:text><text:p>tide</text:p></office:text><office:presentation><draw:page><draw:frame><draw:text-box><text:p>tide</text:p></draw:text-box></draw:frame></draw:page></office:presentation></office:body></office:document-content>"#,
            ),
            ("extract_epub", b"<html><body><p>tide</p></body></html>"),
            ("extract_rtf", b" tide}"),
        ];
        for (target, data) in cases {
            let inputs = fuzz_target_inputs(target, data);
            // The EPUB and PPTX targets also try the input in a second part's place, where
            // it is not a document of that part's kind: only the first is read as text.
            let readable = match target {
                "extract_epub" | "extract_pptx" => 1,
                _ => inputs.len(),
            };
            for (bytes, file_name) in &inputs[..readable] {
                let doc = extract(bytes, file_name, None, 1 << 20)
                    .unwrap_or_else(|e| panic!("{target} as {file_name}: {e}"));
                let text: String = doc.sections.iter().map(|s| s.text.as_str()).collect();
                assert!(text.contains("tide"), "{target} as {file_name}: {text:?}");
            }
        }
    }
}
