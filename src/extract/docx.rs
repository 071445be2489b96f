//! DOCX (Office Open XML) to Markdown-style text: paragraphs in order, headings from their
//! paragraph style (`Heading 1`… or `Title`, resolved through styles.xml), tables as rows of
//! ` | `-separated cells. Every part is read with a size cap, so a zip bomb fails the file
//! instead of exhausting memory.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::package::attr;

use super::ExtractError;

/// True when the zip holds a Word document body.
pub(super) fn is_docx(bytes: &[u8]) -> bool {
    zip::ZipArchive::new(Cursor::new(bytes))
        .map(|mut z| z.by_name("word/document.xml").is_ok())
        .unwrap_or(false)
}

/// Reads one part, refusing to inflate it past `limit` bytes.
fn read_part(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: usize,
) -> Result<Option<String>, ExtractError> {
    let file = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ExtractError::CorruptDocx(e.to_string())),
    };
    let mut buf = Vec::new();
    file.take((limit as u64).saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| ExtractError::CorruptDocx(e.to_string()))?;
    if buf.len() > limit {
        return Err(ExtractError::Bomb(limit));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| ExtractError::CorruptDocx(format!("{name} is not UTF-8: {e}")))
}

pub(super) fn to_markdown(bytes: &[u8], max_text_bytes: usize) -> Result<String, ExtractError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::CorruptDocx(e.to_string()))?;
    // XML markup is many times the size of its text; allow for it, but not without bound.
    let limit = max_text_bytes.saturating_mul(8).max(1 << 20);
    let body = read_part(&mut zip, "word/document.xml", limit)?
        .ok_or_else(|| ExtractError::CorruptDocx("word/document.xml is missing".into()))?;
    let headings = match read_part(&mut zip, "word/styles.xml", limit)? {
        Some(styles) => heading_styles(&styles),
        None => HashMap::new(),
    };
    paragraphs(&body, &headings)
}

/// Maps style ids to heading levels: "Title" is level 1 and "heading N" level N+1 (so a
/// document's title heads the path of its sections), or from an outline level.
fn heading_styles(xml: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut current: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                "style" => current = attr(&e, "styleId"),
                "name" => {
                    if let (Some(id), Some(name)) = (&current, attr(&e, "val")) {
                        let name = name.to_ascii_lowercase();
                        let level = if name == "title" {
                            Some(1)
                        } else {
                            name.strip_prefix("heading ")
                                .and_then(|n| n.trim().parse::<usize>().ok())
                                .map(|n| n + 1)
                        };
                        if let Some(level) = level.filter(|l| (1..=6).contains(l)) {
                            out.insert(id.clone(), level);
                        }
                    }
                }
                "outlineLvl" => {
                    if let (Some(id), Some(level)) = (
                        &current,
                        attr(&e, "val").and_then(|v| v.parse::<usize>().ok()),
                    ) {
                        out.entry(id.clone()).or_insert((level + 2).min(6));
                    }
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.local_name().as_ref() == "style" => current = None,
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

fn paragraphs(xml: &str, headings: &HashMap<String, usize>) -> Result<String, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    let mut para = String::new();
    let mut style: Option<String> = None;
    let mut in_text = false;
    let mut cells: Vec<String> = Vec::new();
    let mut table_depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                "p" => {
                    para.clear();
                    style = None;
                }
                "t" => in_text = true,
                "tbl" => table_depth += 1,
                "tr" => cells.clear(),
                _ => {}
            },
            Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                "pStyle" => style = attr(&e, "val"),
                "tab" => para.push('\t'),
                "br" | "cr" => para.push('\n'),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => para.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) if in_text => {
                // Entity and character references (&amp;, &#8217;) arrive as their own events.
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    para.push(c);
                } else if let Some(c) =
                    quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                {
                    para.push_str(c);
                }
            }
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    let text = para.trim();
                    if table_depth > 0 {
                        if !text.is_empty() {
                            cells.push(text.to_string());
                        }
                    } else if !text.is_empty() {
                        match style.as_ref().and_then(|s| headings.get(s)) {
                            Some(&level) => {
                                out.push_str(&"#".repeat(level));
                                out.push(' ');
                                out.push_str(&text.replace('\n', " "));
                                out.push_str("\n\n");
                            }
                            None => {
                                out.push_str(text);
                                out.push_str("\n\n");
                            }
                        }
                    }
                }
                "tr" if !cells.is_empty() => {
                    out.push_str(&cells.join(" | "));
                    out.push('\n');
                    cells.clear();
                }
                "tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    out.push('\n');
                }
                _ => {}
            },
            Ok(Event::Eof) => break,
            Err(e) => return Err(ExtractError::CorruptDocx(format!("word/document.xml: {e}"))),
            _ => {}
        }
    }
    Ok(out.trim().to_string())
}
