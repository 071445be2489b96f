//! PDF text per page. lopdf opens the file (and tells corrupt from encrypted); pdf-extract,
//! built on lopdf, reads the text because it maps glyphs to Unicode through ToUnicode CMaps,
//! font encodings and glyph names (ligatures such as "fi" come out as two letters) and
//! places spaces from glyph positions. Where pdf-extract fails or panics, lopdf's own
//! simpler extraction is used. Then two repairs that matter for retrieval: words hyphenated
//! across lines are joined, and running headers/footers repeated on most pages are dropped.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{ExtractError, Section};

/// Bound on a page's decompressed content streams, so a compression bomb fails the file
/// instead of exhausting memory.
const MAX_PDF_STREAM_BYTES: usize = 256 << 20;

pub(super) fn extract(bytes: &[u8]) -> Result<Vec<Section>, ExtractError> {
    // lopdf decrypts files encrypted with an empty user password while loading; a file that
    // still reports encryption afterwards needs a real password.
    let mut doc = lopdf::Document::load_mem(bytes).map_err(|e| match e {
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
    let texts = match with_pdf_extract(&mut doc, bytes, pages.len()) {
        Some(texts) => texts,
        None => pages
            .keys()
            .map(|&number| {
                // A page whose content cannot be decoded is kept empty rather than failing
                // the whole document; one with no readable page fails later as "no text".
                let text = doc
                    .extract_text_with_limit(&[number], MAX_PDF_STREAM_BYTES)
                    .unwrap_or_default();
                (number as i32, text)
            })
            .collect(),
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

/// Text per page through pdf-extract, or `None` when it cannot read the file (then lopdf's
/// extraction is used). Decrypted documents are handed over re-serialised, since
/// pdf-extract does not decrypt.
fn with_pdf_extract(
    doc: &mut lopdf::Document,
    bytes: &[u8],
    pages: usize,
) -> Option<Vec<(i32, String)>> {
    let decrypted;
    let input = if doc.encryption_state.is_some() {
        let mut out = Vec::new();
        // Saved without encryption: the objects in memory are already decrypted.
        doc.encryption_state = None;
        doc.trailer.remove(b"Encrypt");
        doc.save_to(&mut out).ok()?;
        decrypted = out;
        &decrypted[..]
    } else {
        bytes
    };
    let texts = catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem_by_pages(input)
    }))
    .ok()?
    .ok()?;
    if texts.len() != pages {
        return None;
    }
    Some(
        texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| (i as i32 + 1, t.trim_start_matches('\n').to_string()))
            .collect(),
    )
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
