//! OpenDocument text (ODT) and presentations (ODP) to Markdown-style text, from content.xml.
//! ODT: paragraphs in order, `text:h` headings at their outline level, list items as `- `
//! lines indented by depth, tables as rows of ` | `-separated cells; footnotes follow the
//! paragraph that cites them; tracked deletions, comments and generated tables of contents
//! (which repeat the headings) are left out. ODP: one section per `draw:page`, in document
//! order, its title frame as a `#` heading, its other frames' text, then the speaker notes
//! (`presentation:notes`) under `## Notes`.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::package::{attr, resolve_ref, Package};
use super::{ExtractError, Section};

pub(super) fn extract_text(bytes: &[u8], max_text_bytes: usize) -> Result<String, ExtractError> {
    let mut pkg = Package::open(bytes, "ODT", max_text_bytes)?;
    let xml = pkg.require("content.xml")?;
    let pages = walk(&xml).map_err(|e| pkg.corrupt(format_args!("content.xml: {e}")))?;
    Ok(pages
        .into_iter()
        .map(|p| p.body)
        .collect::<Vec<_>>()
        .join("\n\n"))
}

pub(super) fn extract_presentation(
    bytes: &[u8],
    max_text_bytes: usize,
) -> Result<Vec<Section>, ExtractError> {
    let mut pkg = Package::open(bytes, "ODP", max_text_bytes)?;
    let xml = pkg.require("content.xml")?;
    let pages = walk(&xml).map_err(|e| pkg.corrupt(format_args!("content.xml: {e}")))?;
    Ok(pages
        .into_iter()
        // Text outside any draw:page (there should be none) comes first, as page 0.
        .filter(|p| p.number > 0)
        .map(|p| {
            let mut text = if p.title.is_empty() {
                if p.body.is_empty() && p.notes.is_empty() {
                    String::new()
                } else {
                    format!("# Slide {}\n\n{}", p.number, p.body)
                }
            } else {
                format!("# {}\n\n{}", p.title, p.body)
            };
            if !p.notes.is_empty() {
                text.push_str("\n\n## Notes\n\n");
                text.push_str(&p.notes);
            }
            Section::new(text.trim().to_string(), Some(p.number))
        })
        .collect())
}

/// Text of one `draw:page` (number ≥ 1), or of a text document's body (number 0).
#[derive(Default)]
struct Page {
    number: i32,
    title: String,
    body: String,
    notes: String,
}

/// Where a finished paragraph goes.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Body,
    Title,
    Notes,
    /// Furniture: page numbers, dates, headers and footers of a presentation.
    Drop,
}

/// A paragraph being read: its text, and its Markdown prefix (`## `, `  - `).
struct Para {
    text: String,
    prefix: String,
}

/// Elements whose text is never read as content.
const SKIP: &[&str] = &[
    "tracked-changes",
    "annotation",
    "note-citation",
    "table-of-content",
    "illustration-index",
    "alphabetical-index",
    "sequence-decls",
    "variable-decls",
    "user-field-decls",
    "forms",
];

fn walk(xml: &str) -> Result<Vec<Page>, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut pages = vec![Page::default()];
    let mut target = Target::Body;
    let mut in_notes = false;
    // Open paragraphs: a footnote or a text box sits inside a paragraph.
    let mut stack: Vec<Para> = Vec::new();
    // Paragraphs finished inside an open one, written after it.
    let mut deferred: Vec<String> = Vec::new();
    let mut lists = 0usize;
    let mut fresh_item = false;
    let mut tables = 0usize;
    let mut row: Vec<String> = Vec::new();
    let mut cell: Vec<String> = Vec::new();
    let mut skip = 0usize;
    loop {
        let event = reader.read_event()?;
        if skip > 0 {
            match event {
                Event::Start(e) if SKIP.contains(&e.local_name().as_ref()) => skip += 1,
                Event::End(e) if SKIP.contains(&e.local_name().as_ref()) => skip -= 1,
                Event::Eof => break,
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                match name.as_ref() {
                    n if SKIP.contains(&n) => skip = 1,
                    "page" => {
                        let number = pages.len() as i32;
                        pages.push(Page {
                            number,
                            ..Page::default()
                        });
                        target = Target::Body;
                    }
                    "notes" => {
                        in_notes = true;
                        target = Target::Notes;
                    }
                    "frame" => target = frame_target(in_notes, attr(&e, "class").as_deref()),
                    "p" | "h" => {
                        let prefix = heading_prefix(&e, name.as_ref() == "h")
                            .or_else(|| list_prefix(lists, &mut fresh_item))
                            .unwrap_or_default();
                        stack.push(Para {
                            text: String::new(),
                            prefix,
                        });
                    }
                    "list" | "table" => {
                        // A list or table starts a block of its own: a blank line before it.
                        if lists == 0 && tables == 0 && stack.is_empty() {
                            let page = pages.last_mut().expect("pages starts non-empty");
                            out(page, target).push('\n');
                        }
                        if name.as_ref() == "list" {
                            lists += 1;
                        } else {
                            tables += 1;
                        }
                    }
                    "list-item" | "list-header" => fresh_item = true,
                    "table-row" if tables == 1 => row.clear(),
                    "table-cell" if tables == 1 => cell.clear(),
                    _ => {}
                }
            }
            Event::Empty(e) => {
                if let Some(para) = stack.last_mut() {
                    match e.local_name().as_ref() {
                        "s" => {
                            let n = attr(&e, "c").and_then(|c| c.parse().ok()).unwrap_or(1);
                            para.text.extend(std::iter::repeat_n(' ', n.min(64)));
                        }
                        "tab" => para.text.push('\t'),
                        "line-break" => para.text.push('\n'),
                        _ => {}
                    }
                }
            }
            Event::Text(t) => {
                if let Some(para) = stack.last_mut() {
                    // Outside text:s, runs of white space count as one space (ODF 6.1.2).
                    push_collapsed(&mut para.text, &t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let (Some(para), Some(s)) = (stack.last_mut(), resolve_ref(&r)) {
                    para.text.push_str(&s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "p" | "h" => {
                    let Some(para) = stack.pop() else { continue };
                    let text = para.text.trim();
                    if text.is_empty() || target == Target::Drop {
                        continue;
                    }
                    let page = pages.last_mut().expect("pages starts non-empty");
                    if tables > 0 {
                        cell.push(text.replace('\n', " "));
                        continue;
                    }
                    let line = format!("{}{}", para.prefix, text);
                    if !stack.is_empty() {
                        deferred.push(line);
                        continue;
                    }
                    if target == Target::Title {
                        push_joined(&mut page.title, &text.replace('\n', " "), " ");
                    } else {
                        push_block(out(page, target), &line, lists > 0);
                    }
                    for line in deferred.drain(..) {
                        push_block(out(page, target), &line, false);
                    }
                }
                "list" => lists = lists.saturating_sub(1),
                "table-cell" if tables == 1 && !cell.is_empty() => row.push(cell.join(" ")),
                "table-row" if tables == 1 => {
                    if !row.is_empty() {
                        let page = pages.last_mut().expect("pages starts non-empty");
                        push_block(out(page, target), &row.join(" | "), true);
                    }
                    row.clear();
                }
                "table" => {
                    tables = tables.saturating_sub(1);
                    if tables == 0 {
                        let page = pages.last_mut().expect("pages starts non-empty");
                        out(page, target).push('\n');
                    }
                }
                "frame" => {
                    target = if in_notes {
                        Target::Notes
                    } else {
                        Target::Body
                    }
                }
                "notes" => {
                    in_notes = false;
                    target = Target::Body;
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    for page in &mut pages {
        page.body = tidy(&page.body);
        page.notes = tidy(&page.notes);
    }
    Ok(pages)
}

/// The text a paragraph of `target` adds to (titles are gathered apart).
fn out(page: &mut Page, target: Target) -> &mut String {
    if target == Target::Notes {
        &mut page.notes
    } else {
        &mut page.body
    }
}

/// Where a presentation frame's paragraphs go, from its `presentation:class`.
fn frame_target(in_notes: bool, class: Option<&str>) -> Target {
    match (in_notes, class) {
        (_, Some("page-number" | "date-time" | "footer" | "header" | "page")) => Target::Drop,
        (true, Some("notes")) | (true, None) => Target::Notes,
        (true, _) => Target::Drop,
        (false, Some("title")) => Target::Title,
        (false, _) => Target::Body,
    }
}

fn heading_prefix(e: &BytesStart<'_>, heading: bool) -> Option<String> {
    if !heading {
        return None;
    }
    let level = attr(e, "outline-level")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, 6);
    Some(format!("{} ", "#".repeat(level)))
}

/// `- ` for the first paragraph of a list item, indented two spaces a level; a later
/// paragraph of the same item is indented without the dash.
fn list_prefix(lists: usize, fresh_item: &mut bool) -> Option<String> {
    if lists == 0 {
        return None;
    }
    let indent = "  ".repeat(lists - 1);
    Some(if std::mem::take(fresh_item) {
        format!("{indent}- ")
    } else {
        format!("{indent}  ")
    })
}

fn push_collapsed(out: &mut String, text: &str) {
    for (i, word) in text.split([' ', '\n', '\r', '\t']).enumerate() {
        if i > 0 && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push_str(word);
    }
}

fn push_joined(out: &mut String, text: &str, sep: &str) {
    if !out.is_empty() {
        out.push_str(sep);
    }
    out.push_str(text);
}

/// Paragraphs are separated by a blank line; list items and table rows by a line break.
fn push_block(out: &mut String, line: &str, tight: bool) {
    if !out.is_empty() {
        out.push_str(if tight { "\n" } else { "\n\n" });
    }
    out.push_str(line);
}

/// Trims the text and keeps at most one blank line in a row.
fn tidy(text: &str) -> String {
    super::one_blank_line(text.trim().lines().map(str::trim_end))
}

#[cfg(test)]
mod tests {
    use super::super::package::tests::zip_of;
    use super::super::{extract, Format};
    use super::*;

    const NS: &str = r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0""#;

    fn odf(mimetype: &str, body: &str) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content {NS}><office:body>{body}</office:body></office:document-content>"#
        );
        zip_of(&[
            ("mimetype", mimetype.as_bytes()),
            ("content.xml", content.as_bytes()),
        ])
    }

    const ODT: &str = "application/vnd.oasis.opendocument.text";
    const ODP: &str = "application/vnd.oasis.opendocument.presentation";

    #[test]
    fn odt_headings_lists_tables_and_footnotes() {
        let body = r#"<office:text><text:sequence-decls><text:sequence-decl text:name="Table"/></text:sequence-decls>
          <text:table-of-content><text:index-body><text:p>Harbour ..... 1</text:p></text:index-body></text:table-of-content>
          <text:h text:outline-level="1">Harbour</text:h>
          <text:p>Tides   run <text:span>twice</text:span><text:s text:c="2"/>a day<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation><text:note-body><text:p>Semi-diurnal.</text:p></text:note-body></text:note>.</text:p>
          <text:h text:outline-level="2">Berths &amp; quays</text:h>
          <text:list><text:list-item><text:p>North</text:p><text:list><text:list-item><text:p>Old pier</text:p></text:list-item></text:list></text:list-item><text:list-item><text:p>South</text:p></text:list-item></text:list>
          <table:table><table:table-row><table:table-cell><text:p>Day</text:p></table:table-cell><table:table-cell><text:p>Height</text:p></table:table-cell></table:table-row>
          <table:table-row><table:table-cell><text:p>Mon</text:p></table:table-cell><table:covered-table-cell/><table:table-cell table:number-columns-repeated="3"/><table:table-cell><text:p>4.1 m</text:p></table:table-cell></table:table-row></table:table>
          <text:tracked-changes><text:changed-region><text:deletion><text:p>deleted words</text:p></text:deletion></text:changed-region></text:tracked-changes>
          <text:p>End<office:annotation><text:p>a comment</text:p></office:annotation></text:p></office:text>"#;
        let doc = extract(&odf(ODT, body), "x", None, 1 << 20).unwrap();
        assert_eq!(doc.format, Format::Odt);
        assert!(doc.format.has_headings());
        assert_eq!(
            doc.sections[0].text,
            "# Harbour\n\nTides run twice  a day.\n\nSemi-diurnal.\n\n## Berths & quays\n\n- North\n  - Old pier\n- South\n\nDay | Height\nMon | 4.1 m\n\nEnd"
        );
    }

    #[test]
    fn odp_pages_titles_and_notes() {
        let frame = |class: &str, text: &str| {
            format!(
                r#"<draw:frame presentation:class="{class}"><draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame>"#
            )
        };
        let body = format!(
            r#"<office:presentation><draw:page draw:name="p1">{}{}{}<presentation:notes><draw:page-thumbnail presentation:class="page"/>{}</presentation:notes></draw:page><draw:page draw:name="p2">{}</draw:page><draw:page draw:name="p3"/></office:presentation>"#,
            frame("title", "Tides"),
            frame("outline", "Twice a day"),
            frame("page-number", "1"),
            frame("notes", "Say it slowly."),
            frame("outline", "Untitled text"),
        );
        let doc = extract(&odf(ODP, &body), "x", None, 1 << 20).unwrap();
        assert_eq!(doc.format, Format::Odp);
        let got: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.page, s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some(1),
                    "# Tides\n\nTwice a day\n\n## Notes\n\nSay it slowly."
                ),
                (Some(2), "# Slide 2\n\nUntitled text"),
            ]
        );
    }

    #[test]
    fn malformed_content_is_corrupt_odt() {
        let bytes = odf(ODT, "<office:text><text:p>a</text:h></office:text>");
        let err = extract(&bytes, "x", None, 1 << 20).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("corrupt or unreadable ODT: content.xml:"),
            "{err}"
        );
        let bytes = zip_of(&[("mimetype", ODP.as_bytes())]);
        let err = extract(&bytes, "x", None, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt or unreadable ODP: content.xml is missing"
        );
    }

    #[test]
    fn inflating_content_is_a_bomb() {
        let body = format!(
            "<office:text><text:p>{}</text:p></office:text>",
            "a".repeat(2 << 20)
        );
        let err = extract(&odf(ODT, &body), "x", None, 1000).unwrap_err();
        assert!(matches!(err, ExtractError::Bomb(_)), "{err}");
    }

    use crate::extract::fixture;

    /// odfpy's example documents (written by OpenOffice.org 2 and 3).
    #[test]
    fn real_documents() {
        let doc = extract(&fixture("odt-twolevellist.odt"), "x", None, 1 << 20).unwrap();
        assert_eq!(
            doc.sections[0].text,
            "Line 1\n\n- Item A\n- Item B\n  - Subitem B.1\n  - Subitem B.2 (bold)\n- Item C\n\nLine 4"
        );
        let doc = extract(&fixture("odt-simpletable.odt"), "x", None, 1 << 20).unwrap();
        assert_eq!(
            doc.sections[0].text,
            "Cell 1 | Cell 2\nCell 3 (bold) | Cell 4 (italic)"
        );
        let doc = extract(&fixture("odp-ol.odp"), "x", None, 1 << 20).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].page, Some(1));
        let text = &doc.sections[0].text;
        assert!(
            text.starts_with("# OL\n\n- Eins\n- Tsvey\n  - Dray\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\n        - Draytsn\n        - fertsn"),
            "{text}"
        );
    }
}
