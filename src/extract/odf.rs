//! OpenDocument text (ODT) and presentations (ODP) to Markdown-style text, from content.xml.
//! ODT: paragraphs in order, `text:h` headings at their outline level, list items as `- `
//! lines indented by depth, tables as rows of ` | `-separated cells; footnotes follow the
//! paragraph that cites them; tracked deletions, comments and generated tables of contents
//! (which repeat the headings) are left out. ODP: one section per `draw:page`, in document
//! order, its title frame as a `#` heading, its other frames' text, then the speaker notes
//! (`presentation:notes`) under `## Notes`. Both: numbered lists keep their numbers (`1.`,
//! `3.1.`, `iv)`, from the list styles of content.xml and styles.xml), and embedded objects
//! (`draw:object`: a spreadsheet, chart or text inside the package, with a content.xml of
//! its own) are read where they stand.

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::package::{attr, resolve_ref, Package};
use super::{ExtractError, Section};

pub(super) fn extract_text(bytes: &[u8], max_text_bytes: usize) -> Result<String, ExtractError> {
    let mut pkg = Package::open(bytes, "ODT", max_text_bytes)?;
    let pages = read_pages(&mut pkg)?;
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
    let pages = read_pages(&mut pkg)?;
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

/// The document's pages: content.xml read with the list styles of styles.xml (where named
/// styles such as "Numbering 1" live) and of content.xml itself (automatic styles).
fn read_pages(pkg: &mut Package<'_>) -> Result<Vec<Page>, ExtractError> {
    let xml = pkg.require("content.xml")?;
    let mut lists = ListStyles::new();
    // styles.xml only adds list numbers: a document without one, or with one that is not
    // well-formed, is still read (without them). Running out of budget still fails the file.
    match pkg.read("styles.xml") {
        Ok(Some(styles)) => collect_list_styles(&styles, &mut lists),
        Ok(None) => {}
        Err(e @ ExtractError::Bomb(_)) => return Err(e),
        Err(_) => {}
    }
    collect_list_styles(&xml, &mut lists);
    let pages = walk(&xml, &lists, &mut |href| object_text(pkg, "", href, 1));
    pages.map_err(|e| match e {
        WalkError::Xml(e) => pkg.corrupt(format_args!("content.xml: {e}")),
        WalkError::Part(e) => e,
    })
}

/// Objects inside objects (a chart in an embedded text) are read this deep; deeper ones are
/// left out rather than recursed into without end.
const MAX_OBJECT_DEPTH: usize = 3;

/// The text of the embedded object `href` (relative to the object `dir` that names it, ""
/// for the document itself): its content.xml read as a document of its own, pages joined.
/// An object that is missing, external or not well-formed gives `None`, as the picture that
/// stands in for it would (`ObjectReplacements/`); only running out of the package's budget
/// is an error, so repeating one object a million times cannot get round the zip-bomb cap.
fn object_text(
    pkg: &mut Package<'_>,
    dir: &str,
    href: &str,
    depth: usize,
) -> Result<Option<String>, ExtractError> {
    let Some(path) = object_path(dir, href) else {
        return Ok(None);
    };
    if depth > MAX_OBJECT_DEPTH {
        return Ok(None);
    }
    let xml = match pkg.read(&format!("{path}/content.xml")) {
        Ok(Some(xml)) => xml,
        Ok(None) => return Ok(None),
        Err(e @ ExtractError::Bomb(_)) => return Err(e),
        Err(_) => return Ok(None),
    };
    // The object's own automatic list styles; its styles.xml is not worth the budget.
    let mut lists = ListStyles::new();
    collect_list_styles(&xml, &mut lists);
    let pages = match walk(&xml, &lists, &mut |h| object_text(pkg, &path, h, depth + 1)) {
        Ok(pages) => pages,
        Err(WalkError::Part(e)) => return Err(e),
        Err(WalkError::Xml(_)) => return Ok(None),
    };
    let text = pages
        .into_iter()
        .flat_map(|p| [p.title, p.body])
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok((!text.is_empty()).then_some(text))
}

/// The package folder of an embedded object: `./Object 1` (or `Object 1`) relative to the
/// object `dir` that refers to it. Links out of the package (URLs, absolute paths, `..`) are
/// not followed.
fn object_path(dir: &str, href: &str) -> Option<String> {
    let href = href
        .strip_prefix("./")
        .unwrap_or(href)
        .trim_end_matches('/');
    if href.is_empty() || href.starts_with('/') || href.contains(':') || href.contains("..") {
        return None;
    }
    Some(if dir.is_empty() {
        href.to_string()
    } else {
        format!("{dir}/{href}")
    })
}

/// How one level of a list style numbers its items (`text:list-level-style-number`).
#[derive(Clone, Debug, Default, PartialEq)]
struct Numbering {
    /// `style:num-format`: "1", "a", "A", "i", "I" ("" shows no number).
    format: String,
    prefix: String,
    suffix: String,
    /// `text:start-value`: the first item's number.
    start: u32,
    /// `text:display-levels`: how many levels the label shows ("3.1." is 2).
    display_levels: usize,
}

/// List styles by name: per level (index 0 is level 1), its numbering, or `None` for a
/// bullet or picture.
type ListStyles = HashMap<String, Vec<Option<Numbering>>>;

/// ODF list styles have ten levels.
const LIST_LEVELS: usize = 10;

/// Adds the named `text:list-style`s of `xml` (styles.xml or content.xml's automatic
/// styles) to `styles`. Reading stops quietly at malformed XML: the numbers are a nicety,
/// and content.xml's own errors are reported by [`walk`].
fn collect_list_styles(xml: &str, styles: &mut ListStyles) {
    let mut reader = Reader::from_str(xml);
    let mut current: Option<(String, Vec<Option<Numbering>>)> = None;
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "list-style" => {
                    current = attr(&e, "name").map(|name| (name, vec![None; LIST_LEVELS]));
                }
                "list-level-style-number" => {
                    let Some((_, levels)) = current.as_mut() else {
                        continue;
                    };
                    let level = attr(&e, "level").and_then(|l| l.parse::<usize>().ok());
                    if let Some(slot) = level.and_then(|l| levels.get_mut(l.wrapping_sub(1))) {
                        *slot = Some(Numbering {
                            format: attr(&e, "num-format").unwrap_or_default(),
                            prefix: attr(&e, "num-prefix").unwrap_or_default(),
                            suffix: attr(&e, "num-suffix").unwrap_or_default(),
                            start: attr(&e, "start-value")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(1),
                            display_levels: attr(&e, "display-levels")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(1),
                        });
                    }
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "list-style" => {
                if let Some((name, levels)) = current.take() {
                    styles.insert(name, levels);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
}

/// The label of the current item of a list `depth` levels deep (`counters[i]` numbers level
/// i + 1), or `None` where that level of `style` is a bullet.
fn list_label(styles: &ListStyles, style: Option<&str>, counters: &[u32]) -> Option<String> {
    let levels = styles.get(style?)?;
    let depth = counters.len();
    let numbering = levels.get(depth.checked_sub(1)?)?.as_ref()?;
    if numbering.format.is_empty() {
        return None;
    }
    let shown = numbering.display_levels.clamp(1, depth);
    let number = (depth - shown..depth)
        .map(|i| {
            let format = levels[i].as_ref().map_or("1", |n| n.format.as_str());
            format_number(counters[i], format)
        })
        .collect::<Vec<_>>()
        .join(".");
    Some(format!("{}{number}{}", numbering.prefix, numbering.suffix))
}

/// `n` in an ODF number format: decimal, letters (`a`…`z`, `aa`…) or roman numerals; formats
/// of other scripts are written as decimal.
fn format_number(n: u32, format: &str) -> String {
    match format.chars().next() {
        Some(c @ ('a' | 'A')) if n > 0 => {
            let mut n = n;
            let mut letters = Vec::new();
            while n > 0 {
                n -= 1;
                letters.push(char::from(c as u8 + (n % 26) as u8));
                n /= 26;
            }
            letters.iter().rev().collect()
        }
        Some(c @ ('i' | 'I')) if (1..4000).contains(&n) => {
            const ROMAN: [(u32, &str); 13] = [
                (1000, "m"),
                (900, "cm"),
                (500, "d"),
                (400, "cd"),
                (100, "c"),
                (90, "xc"),
                (50, "l"),
                (40, "xl"),
                (10, "x"),
                (9, "ix"),
                (5, "v"),
                (4, "iv"),
                (1, "i"),
            ];
            let mut n = n;
            let mut out = String::new();
            for (value, digits) in ROMAN {
                while n >= value {
                    out.push_str(digits);
                    n -= value;
                }
            }
            if c == 'I' {
                out.make_ascii_uppercase();
            }
            out
        }
        _ => n.to_string(),
    }
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

/// Why [`walk`] stopped: content.xml is not well-formed, or reading an embedded object
/// failed the file (the package's budget ran out).
enum WalkError {
    Xml(quick_xml::Error),
    Part(ExtractError),
}

impl From<quick_xml::Error> for WalkError {
    fn from(e: quick_xml::Error) -> Self {
        WalkError::Xml(e)
    }
}

/// Numbering state of the open lists.
#[derive(Default)]
struct Lists {
    /// The list style in force at each open level: the list's own, else its parent's.
    styles: Vec<Option<String>>,
    /// The number of the current item at each open level (0 before the first).
    counters: Vec<u32>,
    /// The counters of the last list closed at the top level, for `continue-numbering`.
    last: Vec<u32>,
    /// The same by `xml:id`, for `continue-list`.
    by_id: HashMap<String, Vec<u32>>,
    /// The open top-level list's `xml:id`.
    id: Option<String>,
    /// The label of the item just opened, for its first paragraph.
    label: Option<String>,
}

impl Lists {
    fn depth(&self) -> usize {
        self.styles.len()
    }

    fn open(&mut self, e: &BytesStart<'_>) {
        let style = attr(e, "style-name").or_else(|| self.styles.last().cloned().flatten());
        if self.styles.is_empty() {
            // A list may carry on the numbers of an earlier one ("Some text in between",
            // then item 2), named by id or simply the one before.
            self.counters = match attr(e, "continue-list") {
                Some(id) => self.by_id.get(&id).cloned().unwrap_or_default(),
                None if attr(e, "continue-numbering").as_deref() == Some("true") => {
                    self.last.clone()
                }
                None => Vec::new(),
            };
            self.counters.truncate(1);
            self.id = attr(e, "id");
        } else {
            // A nested list numbers its level afresh.
            self.counters.truncate(self.styles.len());
        }
        self.styles.push(style);
        self.counters.resize(self.styles.len(), 0);
    }

    fn close(&mut self) {
        if self.styles.pop().is_some() && self.styles.is_empty() {
            self.last = std::mem::take(&mut self.counters);
            if let Some(id) = self.id.take() {
                self.by_id.insert(id, self.last.clone());
            }
        }
    }

    /// A `text:list-item` (numbered) or `text:list-header` (not) opens.
    fn item(&mut self, e: &BytesStart<'_>, styles: &ListStyles, header: bool) {
        let depth = self.depth();
        self.label = None;
        if header || depth == 0 {
            return;
        }
        let style = self.styles[depth - 1].as_deref();
        self.counters.truncate(depth);
        let first = style
            .and_then(|s| styles.get(s))
            .and_then(|levels| levels.get(depth - 1)?.as_ref())
            .map_or(1, |n| n.start);
        let n = match attr(e, "start-value").and_then(|v| v.parse().ok()) {
            Some(n) => n,
            None if self.counters[depth - 1] == 0 => first,
            None => self.counters[depth - 1].saturating_add(1),
        };
        self.counters[depth - 1] = n;
        self.label = list_label(styles, style, &self.counters);
    }
}

fn walk(
    xml: &str,
    list_styles: &ListStyles,
    object: &mut dyn FnMut(&str) -> Result<Option<String>, ExtractError>,
) -> Result<Vec<Page>, WalkError> {
    let mut reader = Reader::from_str(xml);
    let mut pages = vec![Page::default()];
    let mut target = Target::Body;
    let mut in_notes = false;
    // Open paragraphs: a footnote or a text box sits inside a paragraph.
    let mut stack: Vec<Para> = Vec::new();
    // Paragraphs finished inside an open one, written after it.
    let mut deferred: Vec<String> = Vec::new();
    let mut lists = Lists::default();
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
            // An embedded object, written either way: read where it stands.
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "object" => {
                let page = pages.last_mut().expect("pages starts non-empty");
                embed(
                    object,
                    &e,
                    page,
                    target,
                    tables,
                    &stack,
                    &mut cell,
                    &mut deferred,
                )?;
            }
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
                            .or_else(|| list_prefix(&lists, &mut fresh_item))
                            .unwrap_or_default();
                        stack.push(Para {
                            text: String::new(),
                            prefix,
                        });
                    }
                    "list" | "table" => {
                        // A list or table starts a block of its own: a blank line before it.
                        if lists.depth() == 0 && tables == 0 && stack.is_empty() {
                            let page = pages.last_mut().expect("pages starts non-empty");
                            out(page, target).push('\n');
                        }
                        if name.as_ref() == "list" {
                            lists.open(&e);
                        } else {
                            tables += 1;
                        }
                    }
                    "list-item" | "list-header" => {
                        lists.item(&e, list_styles, name.as_ref() == "list-header");
                        fresh_item = true;
                    }
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
                    if target == Target::Drop {
                        continue;
                    }
                    let page = pages.last_mut().expect("pages starts non-empty");
                    if tables > 0 {
                        if !text.is_empty() {
                            cell.push(text.replace('\n', " "));
                        }
                        continue;
                    }
                    if !stack.is_empty() {
                        if !text.is_empty() {
                            deferred.push(format!("{}{}", para.prefix, text));
                        }
                        continue;
                    }
                    if text.is_empty() {
                        // Nothing of its own; what it anchors follows below.
                    } else if target == Target::Title {
                        push_joined(&mut page.title, &text.replace('\n', " "), " ");
                    } else {
                        let line = format!("{}{}", para.prefix, text);
                        push_block(out(page, target), &line, lists.depth() > 0);
                    }
                    // Even when the paragraph has no text of its own: a paragraph that only
                    // anchors a frame (an image with its caption) has its text in there.
                    for line in deferred.drain(..) {
                        push_block(out(page, target), &line, false);
                    }
                }
                "list" => lists.close(),
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

/// Reads the embedded object a `draw:object` names and puts its text where the object
/// stands: in the table cell, after the paragraph that anchors it, or as a block.
#[allow(clippy::too_many_arguments)] // walk's state, passed apart so the borrows stay short
fn embed(
    object: &mut dyn FnMut(&str) -> Result<Option<String>, ExtractError>,
    e: &BytesStart<'_>,
    page: &mut Page,
    target: Target,
    tables: usize,
    stack: &[Para],
    cell: &mut Vec<String>,
    deferred: &mut Vec<String>,
) -> Result<(), WalkError> {
    let Some(href) = attr(e, "href") else {
        return Ok(());
    };
    if target == Target::Drop {
        return Ok(());
    }
    let Some(text) = object(&href).map_err(WalkError::Part)? else {
        return Ok(());
    };
    if tables > 0 {
        cell.push(text.replace('\n', " "));
    } else if !stack.is_empty() {
        deferred.push(text);
    } else if target == Target::Title {
        push_joined(&mut page.title, &text.replace('\n', " "), " ");
    } else {
        push_block(out(page, target), &text, false);
    }
    Ok(())
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

/// `- ` (or the item's number, `2. `) for the first paragraph of a list item, indented two
/// spaces a level; a later paragraph of the same item is indented without the mark.
fn list_prefix(lists: &Lists, fresh_item: &mut bool) -> Option<String> {
    let depth = lists.depth();
    if depth == 0 {
        return None;
    }
    let indent = "  ".repeat(depth - 1);
    Some(if std::mem::take(fresh_item) {
        match &lists.label {
            Some(label) => format!("{indent}{label} "),
            None => format!("{indent}- "),
        }
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

    /// A package of `content.xml` (the body inside the usual wrapper) and other parts.
    fn odf_with(mimetype: &str, body: &str, parts: &[(&str, &str)]) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content {NS}>{body}</office:document-content>"#
        );
        let mut all = vec![
            ("mimetype", mimetype.as_bytes()),
            ("content.xml", content.as_bytes()),
        ];
        all.extend(parts.iter().map(|(n, c)| (*n, c.as_bytes())));
        zip_of(&all)
    }

    #[test]
    fn numbered_lists_keep_their_numbers() {
        // A named style in styles.xml (as LibreOffice's "Numbering 1"), automatic ones in
        // content.xml: decimal, "3.1." (two levels shown), letters, roman from IV, bullets.
        let styles = format!(
            r#"<office:document-styles {NS} xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"><office:styles><text:list-style style:name="Numbering_20_1"><text:list-level-style-number text:level="1" style:num-suffix="." style:num-format="1"/><text:list-level-style-number text:level="2" style:num-suffix="." style:num-format="1" text:display-levels="2"/><text:list-level-style-number text:level="3" style:num-suffix=")" style:num-format="a"/></text:list-style></office:styles></office:document-styles>"#
        );
        let body = r#"<office:automatic-styles><text:list-style style:name="L1"><text:list-level-style-number text:level="1" style:num-suffix="." style:num-format="I" text:start-value="4"/></text:list-style><text:list-style style:name="L2"><text:list-level-style-bullet text:level="1" text:bullet-char="•"/></text:list-style></office:automatic-styles><office:body><office:text>
          <text:list text:style-name="Numbering_20_1"><text:list-header><text:p>Steps</text:p></text:list-header><text:list-item><text:p>Fill</text:p></text:list-item><text:list-item><text:p>Boil</text:p><text:list><text:list-item><text:p>Wait</text:p><text:list><text:list-item><text:p>Stir</text:p></text:list-item><text:list-item><text:p>Taste</text:p></text:list-item></text:list></text:list-item><text:list-item><text:p>Pour</text:p></text:list-item></text:list></text:list-item></text:list>
          <text:p>Meanwhile</text:p>
          <text:list text:continue-numbering="true" text:style-name="Numbering_20_1"><text:list-item><text:p>Serve</text:p></text:list-item><text:list-item text:start-value="9"><text:p>Wash</text:p></text:list-item></text:list>
          <text:list text:style-name="L1"><text:list-item><text:p>Four</text:p></text:list-item><text:list-item><text:p>Five</text:p></text:list-item></text:list>
          <text:list text:style-name="L2"><text:list-item><text:p>Dot</text:p></text:list-item></text:list>
          <text:list text:style-name="Unknown"><text:list-item><text:p>Dash</text:p></text:list-item></text:list>
        </office:text></office:body>"#;
        let doc = extract(
            &odf_with(ODT, body, &[("styles.xml", &styles)]),
            "x",
            None,
            1 << 20,
        )
        .unwrap();
        assert_eq!(
            doc.sections[0].text,
            "- Steps\n1. Fill\n2. Boil\n  2.1. Wait\n    a) Stir\n    b) Taste\n  2.2. Pour\n\nMeanwhile\n\n3. Serve\n9. Wash\n\nIV. Four\nV. Five\n\n- Dot\n\n- Dash"
        );
    }

    #[test]
    fn number_formats() {
        let got: Vec<_> = [
            (1, "1"),
            (27, "a"),
            (28, "A"),
            (14, "i"),
            (1994, "I"),
            (0, "i"),
            (5, "١"),
        ]
        .into_iter()
        .map(|(n, f)| format_number(n, f))
        .collect();
        assert_eq!(got, ["1", "aa", "AB", "xiv", "MCMXCIV", "0", "5"]);
    }

    #[test]
    fn embedded_objects_are_read_where_they_stand() {
        let object = |body: &str| {
            format!(
                r#"<office:document-content {NS}><office:body>{body}</office:body></office:document-content>"#
            )
        };
        // A spreadsheet on a slide, a chart inside it (an object of the object's own), and
        // links that do not lead to a part of this package.
        let sheet = object(
            r#"<office:spreadsheet><table:table table:name="Sheet1"><table:table-row><table:table-cell><text:p>port</text:p></table:table-cell><table:table-cell><text:p>depth</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1021"/></table:table-row><table:table-row><table:table-cell><text:p>Hull</text:p></table:table-cell><table:table-cell><text:p>9 m</text:p></table:table-cell></table:table-row></table:table><draw:frame><draw:object xlink:href="./Object 2" xmlns:xlink="http://www.w3.org/1999/xlink"/></draw:frame></office:spreadsheet>"#,
        );
        let chart = object(
            r#"<office:chart><chart:chart xmlns:chart="c"><chart:title><text:p>Depth by port</text:p></chart:title></chart:chart></office:chart>"#,
        );
        let body = r#"<office:body><office:presentation><draw:page><draw:frame presentation:class="title"><draw:text-box><text:p>Harbours</text:p></draw:text-box></draw:frame>
          <draw:frame><draw:object xlink:href="./Object 1" xmlns:xlink="http://www.w3.org/1999/xlink"/><draw:image xlink:href="./ObjectReplacements/Object 1" xmlns:xlink="http://www.w3.org/1999/xlink"/></draw:frame>
          <draw:frame><draw:object xlink:href="../Object 1" xmlns:xlink="http://www.w3.org/1999/xlink"/></draw:frame>
          <draw:frame><draw:object xlink:href="http://example.org/Object 1" xmlns:xlink="http://www.w3.org/1999/xlink"/></draw:frame>
          <draw:frame><draw:object xlink:href="./Object 9" xmlns:xlink="http://www.w3.org/1999/xlink"/></draw:frame>
          <draw:frame><draw:object xlink:href="./Object 3" xmlns:xlink="http://www.w3.org/1999/xlink"/></draw:frame>
        </draw:page></office:presentation></office:body>"#;
        let bytes = odf_with(
            ODP,
            body,
            &[
                ("Object 1/content.xml", &sheet),
                ("Object 1/Object 2/content.xml", &chart),
                // Not well-formed: left out, like a missing object, the slide still read.
                (
                    "Object 3/content.xml",
                    "<office:document-content><text:p>x</office",
                ),
            ],
        );
        let doc = extract(&bytes, "x", None, 1 << 20).unwrap();
        assert_eq!(
            doc.sections[0].text,
            "# Harbours\n\nport | depth\nHull | 9 m\n\nDepth by port"
        );
        // In a text document the object's text follows the paragraph that anchors it.
        let body = r#"<office:body><office:text><text:p>See <draw:frame text:anchor-type="as-char"><draw:object xlink:href="./Object 1" xmlns:xlink="http://www.w3.org/1999/xlink"/></draw:frame> below.</text:p><text:p>End</text:p></office:text></office:body>"#;
        let bytes = odf_with(
            ODT,
            body,
            &[
                ("Object 1/content.xml", &sheet),
                ("Object 1/Object 2/content.xml", &chart),
            ],
        );
        let doc = extract(&bytes, "x", None, 1 << 20).unwrap();
        assert_eq!(
            doc.sections[0].text,
            "See below.\n\nport | depth\nHull | 9 m\n\nDepth by port\n\nEnd"
        );
    }

    #[test]
    fn embedded_objects_count_against_the_budget() {
        // One small object named many times must not read past the zip-bomb cap.
        let sheet = format!(
            r#"<office:document-content {NS}><office:body><office:spreadsheet><table:table><table:table-row><table:table-cell><text:p>{}</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#,
            "a".repeat(100_000)
        );
        let frames = r#"<text:p><draw:frame><draw:object xlink:href="./Object 1" xmlns:xlink="x"/></draw:frame></text:p>"#.repeat(20);
        let body = format!("<office:body><office:text>{frames}</office:text></office:body>");
        let err = extract(
            &odf_with(ODT, &body, &[("Object 1/content.xml", &sheet)]),
            "x",
            None,
            1000,
        )
        .unwrap_err();
        assert!(matches!(err, ExtractError::Bomb(_)), "{err}");
    }

    #[test]
    fn caption_in_a_frame_of_an_empty_paragraph() {
        // pandoc's imageWithCaption.odt: the paragraph only anchors a frame, whose text box
        // holds the picture and its caption.
        let body = r#"<office:text><text:p text:style-name="Standard"><draw:frame draw:name="Rahmen1"><draw:text-box><text:p text:style-name="Illustration"><draw:frame draw:name="Grafik1"><draw:image xlink:href="Pictures/1.jpg" xmlns:xlink="x"/></draw:frame>Abbildung <text:sequence text:name="Illustration">1</text:sequence>: Image caption</text:p></draw:text-box></draw:frame></text:p></office:text>"#;
        let doc = extract(&odf(ODT, body), "x", None, 1 << 20).unwrap();
        assert_eq!(doc.sections[0].text, "Abbildung 1: Image caption");
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
        // The outline is numbered where its list styles say so (level 1 "1.", level 2 of
        // the nested lists' style "1.", …), as LibreOffice shows it.
        let doc = extract(&fixture("odp-ol.odp"), "x", None, 1 << 20).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].page, Some(1));
        let text = &doc.sections[0].text;
        assert_eq!(
            text,
            "# OL\n\n1. Eins\n2. Tsvey\n  1. Dray\n  2. Fir\n3. Finf\n4. Zeks\n  1. Zibn\n  2. Akht\n    1. Nayn\n    2. Tsen\n      1. Elf\n      2. Tsvelf\n        1. Draytsn\n        2. fertsn"
        );
        // odfpy's embedded spreadsheet (OpenOffice.org 3): the sheet's cells, which are only
        // in "Object 1/content.xml", follow the slide's title.
        let doc = extract(&fixture("odp-emb-spreadsheet.odp"), "x", None, 1 << 20).unwrap();
        assert_eq!(
            doc.sections[0].text,
            "# Embedded Spreadsheet\n\ncol1 | col2 | col3\nval11 | val21 | val31\nval12 | val22 | val32\nval13 | val23 | val33"
        );
    }
}
