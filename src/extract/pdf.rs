//! PDF text per page. lopdf opens the file (and tells corrupt from encrypted); pdf-extract,
//! built on lopdf, reads the text because it maps glyphs to Unicode through ToUnicode CMaps,
//! font encodings and glyph names (ligatures such as "fi" come out as two letters) and
//! places spaces from glyph positions. Where pdf-extract fails or panics, lopdf's own
//! simpler extraction is used. Then the repairs that matter for retrieval: words hyphenated
//! across lines are joined; running headers and footers (lines repeated at the top or bottom
//! of pages, page numbers) and table-of-contents lines are dropped; and section headings are
//! marked, from the document outline when it has one, else from numbering and font size
//! (`headings`), so that chunks carry a heading path as other formats' do.

mod fonts;
mod headings;
mod layout;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{furniture, ExtractError, Heading, Section};
use headings::OutlineEntry;

/// Bound on a page's decompressed content streams, so a compression bomb fails the file
/// instead of exhausting memory.
const MAX_PDF_STREAM_BYTES: usize = 256 << 20;

/// The pages without their furniture, and how many non-blank characters each page's text
/// layer held before furniture was dropped: OCR (`super::ocr::pdf_pages`) tells a scan from a
/// page whose only text was a running header by it.
pub(super) fn extract(bytes: &[u8]) -> Result<(Vec<Section>, Vec<usize>), ExtractError> {
    read(bytes, true)
}

/// The pages as read, page furniture included (see `super::pdf_pages_as_read`).
pub(super) fn extract_as_read(bytes: &[u8]) -> Result<Vec<Section>, ExtractError> {
    read(bytes, false).map(|(sections, _)| sections)
}

fn read(bytes: &[u8], drop_furniture: bool) -> Result<(Vec<Section>, Vec<usize>), ExtractError> {
    // The common case parses the file once, inside pdf-extract. Only when that fails is the
    // file parsed again (parsing twice cost a third of the time on real PDFs): written out by
    // lopdf 0.47 when pdf-extract's parser rejected it, read again without the font resources
    // it panicked on, and as a last resort opened with lopdf, to tell encrypted from corrupt
    // and to fall back to lopdf's simpler extraction.
    let attempt = |bytes: &[u8], repair: bool| {
        catch_unwind(AssertUnwindSafe(|| with_pdf_extract(bytes, repair)))
            .unwrap_or(Attempt::Panicked)
    };
    let read = match attempt(bytes, false) {
        Attempt::Unparsed => rewritten(bytes).map_or(Attempt::Failed, |b| attempt(&b, false)),
        Attempt::Panicked => attempt(bytes, true),
        other => other,
    };
    let (mut pages, outline) = match read {
        Attempt::Read(pages, outline) => (pages, outline),
        _ => (with_lopdf(bytes)?, Vec::new()),
    };
    let layer = pages
        .iter()
        .map(|p| {
            let chars = |l: &Line| l.text.chars().filter(|c| !c.is_whitespace()).count();
            p.lines.iter().map(chars).sum()
        })
        .collect();
    if drop_furniture {
        drop_running_lines(&mut pages);
    }
    for page in &mut pages {
        if drop_furniture {
            drop_toc_lines(&mut page.lines);
        }
        // Blank lines that stood between dropped furniture and the text.
        let lead = page.lines.iter().take_while(|l| l.text.is_empty()).count();
        page.lines.drain(..lead);
        while page.lines.last().is_some_and(|l| l.text.is_empty()) {
            page.lines.pop();
        }
    }
    let marks = headings::find(&pages, &outline);
    let sections = pages
        .into_iter()
        .enumerate()
        .map(|(index, page)| {
            let (text, starts) = join_hyphenated(&page.lines);
            let headings = marks
                .iter()
                .filter(|m| m.page == index)
                .filter_map(|m| {
                    // A heading line joined onto the line before it (a hyphenated word) is
                    // no longer a line of its own: it is text.
                    let offset = starts[m.line]?;
                    let last = m.line + m.lines - 1;
                    let end = starts[last]? + page.lines[last].text.len();
                    Some(Heading {
                        offset,
                        len: end - offset,
                        level: m.level,
                    })
                })
                .collect();
            Section {
                headings,
                ..Section::new(text, Some(page.number))
            }
        })
        .collect();
    Ok((sections, layer))
}

/// A page's text, line by line, with the size of the largest glyph on each line (0 when the
/// fallback extractor does not know it).
pub(super) struct Page {
    pub number: i32,
    pub lines: Vec<Line>,
}

pub(super) struct Line {
    pub text: String,
    pub size: f64,
}

impl Line {
    fn new(text: &str, size: f64) -> Self {
        // Cleaned here, before headings are marked by offset, so the extractor's general
        // cleaning afterwards changes nothing (see `super::extract`).
        Self {
            text: super::clean_text(text.trim_end()),
            size,
        }
    }
}

/// What pdf-extract made of a file.
enum Attempt {
    /// Every page, and the outline.
    Read(Vec<Page>, Vec<OutlineEntry>),
    /// Its parser rejected the file itself (see `rewritten`).
    Unparsed,
    /// It parsed the file but could not read every page.
    Failed,
    /// It panicked, most often on a font resource (see `fonts::drop_unreadable_maps`).
    Panicked,
}

/// Pages through pdf-extract (which decrypts empty-password files itself) and the outline;
/// with `repair`, a second attempt after a panic, without the font resources pdf-extract
/// panics on (there is none to remove: the panic would come again, so it is not tried).
fn with_pdf_extract(bytes: &[u8], repair: bool) -> Attempt {
    let Ok(mut doc) = pdf_extract::Document::load_mem(bytes) else {
        return Attempt::Unparsed;
    };
    if repair && !fonts::drop_unreadable_maps(&mut doc) {
        return Attempt::Failed;
    }
    match read_document(&mut doc) {
        Some((pages, outline)) => Attempt::Read(pages, outline),
        None => Attempt::Failed,
    }
}

/// pdf-extract parses with lopdf 0.42, which rejects files whose trailer or cross-reference
/// table is damaged or unusual, where lopdf 0.47 rebuilds them (graphviz's `dottyguide.pdf`,
/// several of pdfminer's and pypdf's test files). Written out again by lopdf 0.47, such a file
/// parses, and pdf-extract reads its text with glyph positions; without this, lopdf's own
/// extraction ran every word of a line together ("dottyisagrapheditor"). Encrypted files are
/// not rewritten: lopdf would write them decrypted under their old /Encrypt entry.
fn rewritten(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut doc = lopdf::Document::load_mem(bytes).ok()?;
    if doc.is_encrypted() || doc.trailer.has(b"Encrypt") {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    doc.save_to(&mut out).ok()?;
    Some(out)
}

fn read_document(doc: &mut pdf_extract::Document) -> Option<(Vec<Page>, Vec<OutlineEntry>)> {
    if doc.is_encrypted() {
        doc.decrypt("").ok()?;
    }
    fonts::scale_type3_widths(doc);
    fonts::encodings_from_programs(doc);
    fonts::compact_unicode_maps(doc);
    fonts::collection_unicode_maps(doc);
    let pages = doc.get_pages().len();
    let mut sink = PageSink::default();
    // One pass over the document rather than pdf-extract's per-page entry point, which
    // rebuilds the page tree for every page (quadratic in the page count).
    pdf_extract::output_doc(doc, &mut sink).ok()?;
    if sink.pages.len() != pages || pages == 0 {
        return None;
    }
    // A broken outline costs the headings it would have given, never the text.
    let outline = catch_unwind(AssertUnwindSafe(|| doc.get_toc()))
        .ok()
        .and_then(Result::ok)
        .map(|toc| {
            toc.toc
                .into_iter()
                .map(|entry| OutlineEntry {
                    level: entry.level.clamp(1, 9) as u8,
                    title: entry.title,
                    page: entry.page as i32,
                })
                .collect()
        })
        .unwrap_or_default();
    Some((sink.pages, outline))
}

/// lopdf alone: classifies encrypted and corrupt files, decrypts empty user passwords while
/// loading, and extracts what it can where pdf-extract could not.
fn with_lopdf(bytes: &[u8]) -> Result<Vec<Page>, ExtractError> {
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
            Page {
                number: number as i32,
                lines: text.lines().map(|l| Line::new(l, 0.0)).collect(),
            }
        })
        .collect())
}

/// Collects the glyphs of each page as pdf-extract draws them, each in the frame of its
/// direction, and lays the page's lines out in reading order when it ends (`layout`).
#[derive(Default)]
struct PageSink {
    pages: Vec<Page>,
    /// The text of the current page's glyphs, one after the other.
    text: String,
    glyphs: Vec<layout::Glyph>,
    page_height: f64,
    /// A space was drawn since the last glyph.
    space: bool,
}

impl pdf_extract::OutputDev for PageSink {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &pdf_extract::MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), pdf_extract::OutputError> {
        self.pages.push(Page {
            number: page_num as i32,
            lines: Vec::new(),
        });
        self.text.clear();
        self.glyphs.clear();
        self.page_height = media_box.ury - media_box.lly;
        self.space = false;
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), pdf_extract::OutputError> {
        fonts::size_from_advances(&mut self.glyphs);
        let lines = layout::lines(&self.text, &self.glyphs);
        if let Some(page) = self.pages.last_mut() {
            page.lines = lines;
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
        // A glyph without Unicode takes no place in the text; a space only separates.
        if char.is_empty() {
            return Ok(());
        }
        if char.trim().is_empty() {
            self.space = true;
            return Ok(());
        }
        // The glyph's baseline direction on the page, in top-down coordinates, snapped
        // to the nearest of four: rotated text is read in its own frame.
        let (dx, dy) = (trm.m11, -trm.m12);
        let rot = if dx.abs() >= dy.abs() {
            if dx >= 0.0 {
                0
            } else {
                2
            }
        } else if dy >= 0.0 {
            1
        } else {
            3
        };
        let (px, py) = (trm.m31, self.page_height - trm.m32);
        let (x, y) = match rot {
            0 => (px, py),
            1 => (py, -px),
            2 => (-px, -py),
            _ => (-py, px),
        };
        // The text matrix scales glyphs along both of its axes: the size is the height.
        let size = (font_size * trm.m21.hypot(trm.m22)).abs();
        let advance = (width * font_size * trm.m11.hypot(trm.m12)).abs();
        if !(x.is_finite() && y.is_finite() && size.is_finite() && advance.is_finite()) {
            return Ok(());
        }
        let start = self.text.len();
        // Lines are split on '\n' later; a glyph never starts one itself.
        if char.contains(['\n', '\r']) {
            self.text.push_str(&char.replace(['\n', '\r'], " "));
        } else {
            self.text.push_str(char);
        }
        self.glyphs.push(layout::Glyph {
            start,
            end: self.text.len(),
            rot,
            x,
            y,
            width: advance,
            size,
            space_before: std::mem::take(&mut self.space),
        });
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), pdf_extract::OutputError> {
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
/// from page to page, the rest does not. A page label alone (arabic or roman) is "#".
fn shape(line: &str) -> String {
    if furniture::is_page_label(line) {
        return "#".into();
    }
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

/// Removes running headers and footers from documents of three pages or more: lines among
/// the first and last two of a page that recur (modulo digits) there on 60 % of the pages,
/// and first or last lines with a number (the page's) that recur on three pages or more,
/// because books repeat a chapter's title only over that chapter's pages ("Chapter 2: R
/// Basics 7").
fn drop_running_lines(pages: &mut [Page]) {
    let n = pages
        .iter()
        .filter(|p| p.lines.iter().any(|l| !l.text.trim().is_empty()))
        .count();
    if n < 3 {
        return;
    }
    // (index, whether it is the very first or last line) of each edge line of a page.
    let edges = |lines: &[Line]| -> Vec<(usize, bool)> {
        let content: Vec<usize> = (0..lines.len())
            .filter(|&i| !lines[i].text.trim().is_empty())
            .collect();
        let mut idx: Vec<usize> = content
            .iter()
            .take(2)
            .chain(content.iter().rev().take(2))
            .copied()
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let outer = [content.first(), content.last()];
        idx.into_iter()
            .map(|i| (i, outer.contains(&Some(&i))))
            .collect()
    };
    let mut near_edge: HashMap<String, usize> = HashMap::new();
    let mut at_edge: HashMap<String, usize> = HashMap::new();
    for page in pages.iter() {
        let mut seen: Vec<(String, bool)> = edges(&page.lines)
            .into_iter()
            .map(|(i, outer)| (shape(&page.lines[i].text), outer))
            .collect();
        seen.sort();
        seen.dedup();
        for (s, outer) in seen {
            if outer {
                *at_edge.entry(s.clone()).or_default() += 1;
            }
            *near_edge.entry(s).or_default() += 1;
        }
    }
    let threshold = (n * 6).div_ceil(10).max(3);
    let running = |shape: &str, outer: bool| {
        !shape.is_empty()
            && (near_edge.get(shape).copied().unwrap_or(0) >= threshold
                || (outer && shape.contains('#') && at_edge.get(shape).copied().unwrap_or(0) >= 3))
    };
    for page in pages.iter_mut() {
        let drop: Vec<usize> = edges(&page.lines)
            .into_iter()
            .filter(|&(i, outer)| running(&shape(&page.lines[i].text), outer))
            .map(|(i, _)| i)
            .collect();
        for i in drop.into_iter().rev() {
            page.lines.remove(i);
        }
    }
}

/// Removes a table of contents from a page: its entries (dot leaders and a page label), the
/// first line of an entry wrapped over two ("7.18 Why does the output from anova() depend
/// on the" over "order of factors in the model? . . . 37"), and the blank lines left behind.
fn drop_toc_lines(lines: &mut Vec<Line>) {
    let toc: Vec<bool> = lines
        .iter()
        .map(|l| furniture::is_toc_line(&l.text))
        .collect();
    if !toc.contains(&true) {
        return;
    }
    let wrapped =
        |i: usize| toc.get(i + 1) == Some(&true) && headings::numbering(&lines[i].text).is_some();
    let keep: Vec<bool> = (0..lines.len()).map(|i| !toc[i] && !wrapped(i)).collect();
    let mut i = 0;
    lines.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    lines.dedup_by(|b, a| a.text.is_empty() && b.text.is_empty());
}

/// Joins lines, undoing end-of-line hyphenation (`inter-` + `national` → `international`)
/// when the next line continues in lower case; real hyphens before capitals or digits stay.
/// Also returns where each line starts in the text (`None` for a line joined onto the one
/// before it).
fn join_hyphenated(lines: &[Line]) -> (String, Vec<Option<usize>>) {
    let mut out = String::new();
    let mut starts = Vec::with_capacity(lines.len());
    for line in lines {
        let trimmed = line.text.trim_start();
        let hyphenated = out.ends_with('-')
            && out[..out.len() - 1]
                .chars()
                .last()
                .is_some_and(char::is_alphabetic)
            && trimmed.chars().next().is_some_and(char::is_lowercase);
        if hyphenated {
            out.pop();
            out.push_str(trimmed);
            starts.push(None);
        } else {
            if !starts.is_empty() {
                out.push('\n');
            }
            starts.push(Some(out.len()));
            out.push_str(&line.text);
        }
    }
    (out, starts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<Line> {
        s.lines().map(|l| Line::new(l, 10.0)).collect()
    }

    fn page(number: i32, text: &str) -> Page {
        Page {
            number,
            lines: lines(text),
        }
    }

    fn texts(page: &Page) -> Vec<&str> {
        page.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn hyphenation_is_undone_only_before_lower_case() {
        let (text, starts) =
            join_hyphenated(&lines("the inter-\nnational day\nwell-\nKnown 1990-\n2000"));
        assert_eq!(text, "the international day\nwell-\nKnown 1990-\n2000");
        assert_eq!(starts, [Some(0), None, Some(22), Some(28), Some(40)]);
    }

    #[test]
    fn running_headers_and_page_numbers_are_dropped() {
        let topics = ["tides", "harbours", "ferries", "lighthouses"];
        let mut pages: Vec<Page> = topics
            .iter()
            .enumerate()
            .map(|(p, t)| page(p as i32 + 1, &format!("ACME Annual Report 2024\nThis page is about {t}.\nIt covers {t} in depth.\nPage {} of 4", p + 1)))
            .collect();
        drop_running_lines(&mut pages);
        for (page, t) in pages.iter().zip(topics) {
            assert_eq!(
                texts(page),
                [
                    format!("This page is about {t}."),
                    format!("It covers {t} in depth.")
                ]
            );
        }
        // Two pages are too few to tell a header from content.
        let mut two: Vec<Page> = (1..=2).map(|n| page(n, "Same\nSame body")).collect();
        drop_running_lines(&mut two);
        assert_eq!(two[0].lines.len(), 2);
    }

    #[test]
    fn pages_as_read_keep_the_furniture_that_extraction_drops() {
        let bytes = crate::extract::fixture("faq-typeset.pdf");
        let text =
            |pages: Vec<Section>| -> Vec<String> { pages.into_iter().map(|p| p.text).collect() };
        let (dropped, kept) = (
            text(extract(&bytes).unwrap().0),
            text(extract_as_read(&bytes).unwrap()),
        );
        let toc = "1.1 Where can visitors moor? . . . . . . . . . . . . 2";
        assert!(kept[0].contains(toc) && kept[1].starts_with("Harbour FAQ 2"));
        assert!(!dropped[0].contains(toc) && !dropped[1].contains("Harbour FAQ 2"));
        // Nothing but furniture differs: the body text is the same.
        for (d, k) in dropped.iter().zip(&kept) {
            assert!(d.lines().all(|l| k.contains(l)), "{d:?} not within {k:?}");
        }
    }

    #[test]
    fn a_table_of_contents_goes_with_its_wrapped_entries() {
        let mut toc = lines(
            "Table of Contents\n\n1 Introduction . . . . . 1\n\n1.1 Legalese . . . . 1\n\
             7.18 Why does the output from anova() depend on the\n\
             order of factors in the model? . . . . . 37\nAn index of 1.1 terms\n\nEnd",
        );
        drop_toc_lines(&mut toc);
        let text: Vec<&str> = toc.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            text,
            ["Table of Contents", "", "An index of 1.1 terms", "", "End"]
        );
    }

    /// Headings of the typeset fixture, found with and without its outline: (page, level,
    /// heading text).
    fn headings_of(name: &str) -> Vec<(i32, u8, String)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        let (sections, _) = extract(&std::fs::read(path).unwrap()).unwrap();
        let text: String = sections.iter().map(|s| s.text.as_str()).collect();
        assert!(!text.contains(". . ."), "table of contents left: {text}");
        assert!(
            !text.contains("Harbour FAQ 2"),
            "running header left: {text}"
        );
        assert!(text.contains("Diesel is sold"), "{text}");
        sections
            .iter()
            .flat_map(|s| {
                s.headings.iter().map(|h| {
                    let line = s.text[h.offset..h.offset + h.len].to_string();
                    (s.page.unwrap(), h.level, line)
                })
            })
            .collect()
    }

    #[test]
    fn a_pdf_with_an_outline_and_one_without() {
        let expected = |title_level: Option<u8>| {
            let mut v: Vec<(i32, u8, String)> = Vec::new();
            if let Some(level) = title_level {
                v.push((1, level, "Harbour FAQ".into()));
                v.push((1, 2, "Contents".into()));
            }
            v.extend([
                (2, 1, "1 Moorings".to_string()),
                (2, 2, "1.1 Where can visitors moor?".to_string()),
                (2, 2, "1.2 When is the harbour office open?".to_string()),
                (3, 1, "2 Fuel".to_string()),
                (3, 2, "2.1 Where is the fuel pontoon?".to_string()),
            ]);
            v
        };
        // The outline names the sections (without their numbers): those, at its levels.
        let with_outline = headings_of("faq-outline.pdf");
        let outline: Vec<_> = expected(None).into_iter().map(|(p, _, t)| (p, t)).collect();
        assert_eq!(
            with_outline
                .iter()
                .map(|(p, _, t)| (*p, t.clone()))
                .collect::<Vec<_>>(),
            outline
        );
        assert!(with_outline.iter().all(|(_, level, _)| *level == 1));
        // Without: the larger type and the section numbers.
        assert_eq!(headings_of("faq-typeset.pdf"), expected(Some(1)));
    }

    /// A one-page PDF: `objects` are numbered from 4 on (4 is the page's content stream, 5
    /// its font /F1); without `xref`, the file has no cross-reference table and no
    /// `startxref`, as some producers write them (pdfminer's `simple1.pdf`).
    fn one_page_pdf(content: &str, objects: &[&str], xref: bool) -> Vec<u8> {
        let content = format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        );
        let mut bodies = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> >> >>"
                .to_string(),
            content,
        ];
        bodies.extend(objects.iter().map(|o| o.to_string()));
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).bytes());
        }
        let start = out.len();
        if xref {
            out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", bodies.len() + 1).bytes());
            for offset in offsets {
                out.extend(format!("{offset:010} 00000 n \n").bytes());
            }
        }
        out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\n", bodies.len() + 1).bytes());
        if xref {
            out.extend(format!("startxref\n{start}\n").bytes());
        }
        out.extend(b"%%EOF\n");
        out
    }

    fn text_of(pdf: &[u8]) -> String {
        let (pages, _) = extract(pdf).unwrap();
        pages
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    const HELVETICA: &str =
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";

    #[test]
    fn a_type3_font_in_its_own_glyph_space_keeps_its_words_and_lines() {
        // As dvips writes bitmap fonts: glyph space = text space (FontMatrix [1 0 0 -1 0 0]),
        // widths of 50 units, drawn at 1 Tf under a 0.12 text matrix (6 pt per letter), the
        // words placed by TJ moves of 3.3 pt.
        let widths = vec!["50"; 26].join(" ");
        let font = format!(
            "<< /Type /Font /Subtype /Type3 /FontMatrix [1 0 0 -1 0 0] /FontBBox [0 -20 50 80] \
             /CharProcs << >> /Resources << >> /FirstChar 97 /LastChar 122 /Widths [{widths}] \
             /Encoding << /Type /Encoding /Differences [97 /a /b /c /d /e /f /g /h /i /j /k /l \
             /m /n /o /p /q /r /s /t /u /v /w /x /y /z] >> >>"
        );
        let line = |y: u32, words: &[&str]| {
            let words: Vec<String> = words.iter().map(|w| format!("({w})")).collect();
            format!(
                "BT /F1 1 Tf 0.12 0 0 -0.12 72 {y} Tm [{}] TJ ET",
                words.join(" -27500 ")
            )
        };
        let content = [
            line(700, &["dotty", "is", "a", "graph", "editor"]),
            line(686, &["for", "the", "window", "system"]),
        ]
        .join("\n");
        assert_eq!(
            text_of(&one_page_pdf(&content, &[&font], true)),
            "dotty is a graph editor\nfor the window system"
        );
    }

    #[test]
    fn a_file_without_a_cross_reference_table_is_read_with_its_word_spaces() {
        // pdf-extract's parser rejects it; lopdf's, which rebuilds the table, ran the words
        // together.
        let pdf = one_page_pdf(TIDAL, &[HELVETICA], false);
        assert!(pdf_extract::Document::load_mem(&pdf).is_err());
        assert_eq!(text_of(&pdf), "Tidal power stations");
    }

    /// A ToUnicode CMap stream (object 6) with these mappings.
    fn cmap(mappings: &str) -> String {
        let cmap = format!(
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap \
             1 begincodespacerange <00> <FF> endcodespacerange {mappings} \
             endcmap CMapName currentdict /CMap defineresource pop end end"
        );
        format!("<< /Length {} >>\nstream\n{cmap}\nendstream", cmap.len())
    }

    /// Words placed by moving to each (as TeX and many producers place them, rather than by
    /// spaces); lopdf's extraction runs them together.
    const TIDAL: &str =
        "BT /F1 12 Tf 72 700 Td (Tidal) Tj 33 0 Td (power) Tj 37 0 Td (stations) Tj ET";

    #[test]
    fn a_tounicode_map_pdf_extract_panics_on_costs_only_itself() {
        // A range mapped to three UTF-16 units ("ffi"): pdf-extract's CMap parser panics, and
        // the whole file used to go to lopdf's extraction, which runs words together.
        let font = HELVETICA.replace(" >>", " /ToUnicode 6 0 R >>");
        let map = cmap("1 beginbfrange <01> <01> <006600660069> endbfrange");
        let pdf = one_page_pdf(TIDAL, &[&font, &map], true);
        assert_eq!(text_of(&pdf), "Tidal power stations");
    }

    #[test]
    fn a_glyph_name_pdf_extract_maps_to_half_a_surrogate_costs_only_itself() {
        // TeX's "emptyslot" in an encoding's differences, in a font with a ToUnicode map.
        let font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R \
                    /Encoding << /Type /Encoding /BaseEncoding /WinAnsiEncoding \
                    /Differences [1 /emptyslot] >> >>";
        let map = cmap("1 beginbfchar <54> <0054> endbfchar");
        let pdf = one_page_pdf(TIDAL, &[font, &map], true);
        assert_eq!(text_of(&pdf), "Tidal power stations");
    }

    #[test]
    fn an_embedded_type1_fonts_own_encoding_is_read_once_and_kept() {
        // A font program (/FontFile) whose built-in encoding puts "Tidal" at codes A-E, and
        // a font dictionary without an /Encoding: the program's encoding decides the text.
        let program = "%!PS-AdobeFont-1.0: Test 001\n/FontName /Test def\n\
                       /Encoding 256 array\ndup 65 /T put\ndup 66 /i put\ndup 67 /d put\n\
                       dup 68 /a put\ndup 69 /l put\nreadonly def\ncurrentdict end";
        let objects = [
            "<< /Type /Font /Subtype /Type1 /BaseFont /Test /FontDescriptor 6 0 R \
             /FirstChar 65 /LastChar 69 /Widths [600 600 600 600 600] >>"
                .to_string(),
            "<< /Type /FontDescriptor /FontName /Test /FontFile 7 0 R >>".to_string(),
            format!(
                "<< /Length {} >>\nstream\n{program}\nendstream",
                program.len()
            ),
        ];
        let content = "BT /F1 12 Tf 72 700 Td (ABCDE) Tj 0 -14 Td (EDCBA) Tj ET";
        let pdf = one_page_pdf(content, &objects.each_ref().map(String::as_str), true);
        assert_eq!(text_of(&pdf), "Tidal\nladiT");

        let mut doc = pdf_extract::Document::load_mem(&pdf).unwrap();
        fonts::encodings_from_programs(&mut doc);
        let font = doc.get_dictionary((5, 0)).unwrap();
        assert!(font
            .get(b"Encoding")
            .unwrap()
            .as_dict()
            .unwrap()
            .has(b"Differences"));
        assert!(!doc.get_dictionary((6, 0)).unwrap().has(b"FontFile"));
    }

    #[test]
    fn a_cjk_cid_font_without_a_unicode_map_is_read_through_its_collection() {
        // Japanese set in a CID font of Adobe-Japan1 with the Identity encoding and no
        // ToUnicode, as Mac OS X and many Japanese producers write it; the CIDs of 日本語の文書.
        let objects = [
            "<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light /Encoding /Identity-H \
             /DescendantFonts [6 0 R] >>",
            "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /DW 1000 \
             /CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >> \
             /FontDescriptor 7 0 R >>",
            "<< /Type /FontDescriptor /FontName /Ryumin-Light /Flags 4 /FontBBox [0 -120 1000 880] \
             /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>",
        ];
        let content = "BT /F1 12 Tf 72 700 Td <0CD40E8A07A003770E08097B> Tj ET";
        assert_eq!(
            text_of(&one_page_pdf(content, &objects, true)),
            "日本語の文書"
        );
    }

    /// The non-empty lines of a fixture's pages.
    fn lines_of(name: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        extract(&std::fs::read(path).unwrap())
            .unwrap()
            .0
            .iter()
            .flat_map(|s| s.text.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn a_landscape_page_reads_as_its_lines() {
        assert_eq!(
            lines_of("landscape.pdf"),
            [
                "Quarterly tonnage by quay, landed and shipped.",
                "The north quay handled most of the grain this spring.",
                "Timber arrived mainly at the south quay in March.",
            ]
        );
    }

    #[test]
    fn diagram_labels_are_read_box_row_by_box_row() {
        assert_eq!(
            lines_of("diagram.pdf"),
            [
                "Customer",
                "Invoice",
                "name: String",
                "number: Integer",
                "date: Date",
                "amount: Decimal",
                "places",
            ]
        );
    }

    #[test]
    fn columns_drawn_across_the_page_are_read_one_after_the_other() {
        assert_eq!(
            lines_of("columns-by-row.pdf"),
            [
                "Tidal power stations use the rise",
                "and fall of the sea to turn",
                "turbines built into a barrage",
                "across an estuary mouth.",
                "Site",
                "Rance",
                "Mutriku",
                "Wave farms instead float on the",
                "surface and capture the motion",
                "of passing swells with hinged",
                "segments and hydraulic pumps.",
                "Kind",
                "tidal",
                "wave",
                "Output",
                "240 MW",
                "0.3 MW",
            ]
        );
    }

    /// A book: roman page labels in the front matter, then each chapter's title repeated
    /// over that chapter's pages only, beside the page number.
    #[test]
    fn chapter_headers_and_roman_page_labels_are_dropped() {
        let mut pages = vec![
            page(1, "i\nContents"),
            page(2, "ii\nMore contents"),
            page(3, "iii\nEven more contents"),
        ];
        for (chapter, title) in [(1, "Basics"), (2, "Installing"), (3, "Packages")] {
            for _ in 0..3 {
                let n = pages.len() as i32 + 1;
                pages.push(page(
                    n,
                    &format!(
                        "Chapter {chapter}: {title} {n}\nAll about {title}.\nIn {title}, rules."
                    ),
                ));
            }
        }
        drop_running_lines(&mut pages);
        assert_eq!(texts(&pages[0]), ["Contents"]);
        assert_eq!(texts(&pages[2]), ["Even more contents"]);
        // The chapter's title goes; body lines repeated over a chapter stay.
        assert_eq!(
            texts(&pages[6]),
            ["All about Installing.", "In Installing, rules."]
        );
    }
}
