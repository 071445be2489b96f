//! PDF text per page. lopdf opens the file (and tells corrupt from encrypted); pdf-extract,
//! built on lopdf, reads the text because it maps glyphs to Unicode through ToUnicode CMaps,
//! font encodings and glyph names (ligatures such as "fi" come out as two letters) and
//! places spaces from glyph positions. Where pdf-extract fails or panics, lopdf's own
//! simpler extraction is used. Then two repairs that matter for retrieval: words hyphenated
//! across lines are joined, and running headers/footers repeated on most pages are dropped.

use std::collections::HashMap;
use std::panic::catch_unwind;

use super::{ExtractError, Section};

/// Bound on a page's decompressed content streams, so a compression bomb fails the file
/// instead of exhausting memory.
const MAX_PDF_STREAM_BYTES: usize = 256 << 20;

pub(super) fn extract(bytes: &[u8]) -> Result<Vec<Section>, ExtractError> {
    // The common case parses the file once, inside pdf-extract. Only when that fails is the
    // file opened again with lopdf, to tell encrypted from corrupt and to fall back to
    // lopdf's simpler extraction (parsing twice cost a third of the time on real PDFs).
    let texts = match catch_unwind(|| with_pdf_extract(bytes)) {
        Ok(Some(texts)) => texts,
        _ => with_lopdf(bytes)?,
    };
    let mut pages: Vec<Vec<String>> = texts
        .iter()
        .map(|(_, t)| t.lines().map(|l| l.trim_end().to_string()).collect())
        .collect();
    drop_running_lines(&mut pages);
    Ok(texts
        .into_iter()
        .zip(pages)
        .map(|((number, _), lines)| Section {
            text: join_hyphenated(&lines),
            page: Some(number),
        })
        .collect())
}

/// Text per page through pdf-extract (which decrypts empty-password files itself), or
/// `None` when it cannot read every page.
fn with_pdf_extract(bytes: &[u8]) -> Option<Vec<(i32, String)>> {
    let mut doc = pdf_extract::Document::load_mem(bytes).ok()?;
    if doc.is_encrypted() {
        doc.decrypt("").ok()?;
    }
    let pages = doc.get_pages().len();
    let mut sink = PageSink::default();
    // One pass over the document rather than pdf-extract's per-page entry point, which
    // rebuilds the page tree for every page (quadratic in the page count).
    pdf_extract::output_doc(&doc, &mut sink).ok()?;
    (sink.pages.len() == pages && pages > 0).then_some(sink.pages)
}

/// lopdf alone: classifies encrypted and corrupt files, decrypts empty user passwords while
/// loading, and extracts what it can where pdf-extract could not.
fn with_lopdf(bytes: &[u8]) -> Result<Vec<(i32, String)>, ExtractError> {
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => ExtractError::Encrypted,
        other => ExtractError::CorruptPdf(other.to_string()),
    })?;
    // A file that still reports encryption after loading needs a real password.
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(ExtractError::CorruptPdf("the document has no pages".into()));
    }
    Ok(pages
        .keys()
        .map(|&number| {
            // A page whose content cannot be decoded is kept empty rather than failing the
            // whole document; one with no readable page fails later as "no text".
            let text = doc
                .extract_text_with_limit(&[number], MAX_PDF_STREAM_BYTES)
                .unwrap_or_default();
            (number as i32, text)
        })
        .collect())
}

/// pdf-extract's `PlainTextOutput` placement rules (a newline when the baseline moves by
/// more than 1.5 font sizes or goes back left and down, a space for a gap over a tenth of
/// the font size), collecting one string per page.
#[derive(Default)]
struct PageSink {
    pages: Vec<(i32, String)>,
    current: String,
    page_height: f64,
    last_end: f64,
    last_y: f64,
    first_char: bool,
}

impl pdf_extract::OutputDev for PageSink {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &pdf_extract::MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), pdf_extract::OutputError> {
        self.pages.push((page_num as i32, String::new()));
        self.current.clear();
        self.page_height = media_box.ury - media_box.lly;
        self.last_end = 100_000.0;
        self.last_y = 0.0;
        self.first_char = false;
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), pdf_extract::OutputError> {
        if let Some((_, text)) = self.pages.last_mut() {
            *text = self.current.trim_start_matches('\n').to_string();
        }
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &pdf_extract::Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), pdf_extract::OutputError> {
        // The text matrix flipped to top-down page coordinates, written out.
        let (x, y) = (trm.m31, self.page_height - trm.m32);
        let size = ((font_size * (trm.m11 + trm.m21)) * (font_size * (trm.m12 + trm.m22))).sqrt();
        if self.first_char {
            if (y - self.last_y).abs() > size * 1.5 {
                self.current.push('\n');
            }
            if x < self.last_end && (y - self.last_y).abs() > size * 0.5 {
                self.current.push('\n');
            }
            if x > self.last_end + size * 0.1 {
                self.current.push(' ');
            }
        }
        self.current.push_str(char);
        self.first_char = false;
        self.last_y = y;
        self.last_end = x + width * size;
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.first_char = true;
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), pdf_extract::OutputError> {
        Ok(())
    }
}

/// How a header or footer line is compared across pages: page numbers and dates differ
/// from page to page, the rest does not.
fn shape(line: &str) -> String {
    line.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                '#'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Removes lines among the first and last two of each page that recur (modulo digits) on at
/// least 60% of the pages of a document of three pages or more.
fn drop_running_lines(pages: &mut [Vec<String>]) {
    let n = pages
        .iter()
        .filter(|p| p.iter().any(|l| !l.trim().is_empty()))
        .count();
    if n < 3 {
        return;
    }
    let edges = |lines: &[String]| -> Vec<usize> {
        let content: Vec<usize> = (0..lines.len())
            .filter(|&i| !lines[i].trim().is_empty())
            .collect();
        let mut idx: Vec<usize> = content
            .iter()
            .take(2)
            .chain(content.iter().rev().take(2))
            .copied()
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for page in pages.iter() {
        let mut seen: Vec<String> = edges(page).into_iter().map(|i| shape(&page[i])).collect();
        seen.sort();
        seen.dedup();
        for s in seen {
            *counts.entry(s).or_default() += 1;
        }
    }
    let threshold = (n * 6).div_ceil(10).max(3);
    for page in pages.iter_mut() {
        let drop: Vec<usize> = edges(page)
            .into_iter()
            .filter(|&i| {
                let s = shape(&page[i]);
                !s.is_empty() && counts.get(&s).copied().unwrap_or(0) >= threshold
            })
            .collect();
        for i in drop.into_iter().rev() {
            page.remove(i);
        }
    }
}

/// Joins lines, undoing end-of-line hyphenation (`inter-` + `national` → `international`)
/// when the next line continues in lower case; real hyphens before capitals or digits stay.
fn join_hyphenated(lines: &[String]) -> String {
    let mut out = String::new();
    for line in lines {
        let trimmed = line.trim_start();
        let hyphenated = out.ends_with('-')
            && out[..out.len() - 1]
                .chars()
                .last()
                .is_some_and(char::is_alphabetic)
            && trimmed.chars().next().is_some_and(char::is_lowercase);
        if hyphenated {
            out.pop();
            out.push_str(trimmed);
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn hyphenation_is_undone_only_before_lower_case() {
        let text = join_hyphenated(&lines("the inter-\nnational day\nwell-\nKnown 1990-\n2000"));
        assert_eq!(text, "the international day\nwell-\nKnown 1990-\n2000");
    }

    #[test]
    fn running_headers_and_page_numbers_are_dropped() {
        let topics = ["tides", "harbours", "ferries", "lighthouses"];
        let mut pages: Vec<Vec<String>> = topics
            .iter()
            .enumerate()
            .map(|(p, t)| lines(&format!("ACME Annual Report 2024\nThis page is about {t}.\nIt covers {t} in depth.\nPage {} of 4", p + 1)))
            .collect();
        drop_running_lines(&mut pages);
        for (page, t) in pages.iter().zip(topics) {
            assert_eq!(
                page,
                &lines(&format!("This page is about {t}.\nIt covers {t} in depth."))
            );
        }
        // Two pages are too few to tell a header from content.
        let mut two: Vec<Vec<String>> = (1..=2).map(|_| lines("Same\nSame body")).collect();
        drop_running_lines(&mut two);
        assert_eq!(two[0].len(), 2);
    }
}
