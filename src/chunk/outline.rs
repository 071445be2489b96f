//! A document's headings, whatever its format: Markdown's own (ATX `#`, setext underlines,
//! raw `<h2>` lines), which HTML and DOCX are converted to; plain text's conventions
//! (AsciiDoc `==` titles and `Term::` labels, reStructuredText and setext underlines,
//! numbered section lines such as "1.1: What is it?" or "A3) Why?"); and the heading lines
//! the PDF extractor marked. Each gets its full path (`Install > Linux`).

use crate::extract::{Document, Format};

/// A heading line (or two, with an underline) in the document's text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Heading {
    /// Byte range of the heading's line(s) in the text.
    pub start: usize,
    pub end: usize,
    pub level: u8,
    /// Titles from the top level down to this heading's own.
    pub path: Vec<String>,
}

/// A heading before its path is known.
struct Line {
    start: usize,
    end: usize,
    level: u8,
    title: String,
}

/// Headings of `doc`, whose sections start at `section_starts` in `text` (the sections
/// joined). Text before `from` (front matter) is not searched.
pub(super) fn headings(
    doc: &Document,
    text: &str,
    section_starts: &[usize],
    from: usize,
) -> Vec<Heading> {
    let lines = match doc.format {
        Format::Pdf => doc
            .sections
            .iter()
            .zip(section_starts)
            .flat_map(|(section, &at)| {
                section.headings.iter().map(move |h| {
                    let title = section.text[h.offset..h.offset + h.len]
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    Line {
                        start: at + h.offset,
                        end: at + h.offset + h.len,
                        level: h.level,
                        title,
                    }
                })
            })
            .collect(),
        // Markdown, and what the extractors turn into Markdown (HTML, DOCX, …).
        f if f.has_headings() => markdown(&text[from..], from),
        _ => plain(&text[from..], from),
    };
    with_paths(lines)
}

fn with_paths(lines: Vec<Line>) -> Vec<Heading> {
    let mut stack: Vec<(u8, String)> = Vec::new();
    lines
        .into_iter()
        .filter(|l| !l.title.is_empty())
        .map(|line| {
            stack.retain(|(level, _)| *level < line.level);
            stack.push((line.level, line.title));
            Heading {
                start: line.start,
                end: line.end,
                level: line.level,
                path: stack.iter().map(|(_, t)| t.clone()).collect(),
            }
        })
        .collect()
}

/// Lines of `text` with their byte offsets (plus `base`), newline excluded.
fn lines_of(text: &str, base: usize) -> Vec<(usize, &str)> {
    let mut offset = base;
    text.split_inclusive('\n')
        .map(|l| {
            let at = offset;
            offset += l.len();
            (at, l.trim_end_matches(['\n', '\r']))
        })
        .collect()
}

/// The level a setext or reStructuredText underline gives the line above it.
fn underline_level(line: &str, title: &str) -> Option<u8> {
    let t = line.trim_end();
    let c = t.chars().next()?;
    let level = match c {
        '=' => 1,
        '-' => 2,
        '~' => 3,
        '^' => 4,
        _ => return None,
    };
    let long_enough = t.len() >= 3 && t.len() * 2 >= title.trim().chars().count();
    (long_enough && t.chars().all(|x| x == c)).then_some(level)
}

/// A title line: a few words of text, not a sentence's end.
fn title_like(line: &str) -> bool {
    let t = line.trim();
    (1..=16).contains(&t.split_whitespace().count())
        && t.chars().any(char::is_alphabetic)
        && !t.ends_with(['.', ',', ';'])
}

fn markdown(text: &str, base: usize) -> Vec<Line> {
    let lines = lines_of(text, base);
    let mut out = Vec::new();
    let mut in_fence = false;
    let mut blank_before = true;
    for (i, &(at, line)) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indented = line.len() - trimmed.len() >= 4;
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence && !indented {
            let pseudo = || {
                let (title, numbered) = bold_line(trimmed)?;
                // A numbered one is a heading even with its text on the very next line.
                let alone = blank_before
                    && (numbered || lines.get(i + 1).is_none_or(|(_, l)| l.trim().is_empty()));
                alone.then_some((PSEUDO_LEVEL, title))
            };
            if let Some(heading) = atx(trimmed)
                .or_else(|| html_heading(trimmed))
                .or_else(pseudo)
            {
                let (level, title) = heading;
                out.push(Line {
                    start: at,
                    end: at + line.len(),
                    level,
                    title,
                });
            } else if let Some(&(under_at, under)) = lines.get(i + 1) {
                // Setext: a paragraph's single line underlined with === or ---.
                if blank_before && !trimmed.is_empty() && title_like(trimmed) {
                    if let Some(level) = underline_level(under, trimmed).filter(|&l| l <= 2) {
                        out.push(Line {
                            start: at,
                            end: under_at + under.len(),
                            level,
                            title: trimmed.trim().to_string(),
                        });
                    }
                }
            }
        }
        blank_before = trimmed.is_empty();
    }
    out
}

/// The level of a paragraph that is only bold text, which many Markdown writers use for
/// headings (FAQ questions especially): under every real heading.
const PSEUDO_LEVEL: u8 = 7;

/// A paragraph or list item that is bold text only and reads like a title,
/// `* **1.2 Why?**` → "1.2 Why?", and whether it starts with a section number. A numbered
/// one is a title whatever its length and last character (FAQ questions run long and may
/// end with a full stop), and may have its question mark or colon after the bold,
/// `**1.3 Why**?`.
fn bold_line(line: &str) -> Option<(String, bool)> {
    let t = line
        .strip_prefix(['*', '-', '+'])
        .filter(|r| r.starts_with(' '))
        .map_or(line, str::trim_start)
        .trim_end();
    let (t, after) = match t.strip_suffix(['?', ':']) {
        Some(rest) if rest.ends_with("**") || rest.ends_with("__") => (rest, &t[rest.len()..]),
        _ => (t, ""),
    };
    let inner = ["**", "__"].iter().find_map(|m| {
        t.strip_prefix(m)
            .and_then(|r| r.strip_suffix(m))
            .filter(|i| !i.contains(m))
    })?;
    let title = format!("{}{after}", inner.trim());
    let numbered = numbered(&title).is_some()
        && (1..=MAX_NUMBERED_WORDS).contains(&title.split_whitespace().count());
    (numbered
        || title_like(&title)
        || title.ends_with('.') && title.split_whitespace().count() <= 8)
        .then_some((title, numbered))
}

/// Longest numbered bold title, in words: past it the bold is a paragraph's emphasis.
const MAX_NUMBERED_WORDS: usize = 40;

/// `## Title ##` → (2, "Title").
fn atx(line: &str) -> Option<(u8, String)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && (rest.starts_with(' ') || rest.trim().is_empty())).then(|| {
        let title = rest.trim().trim_end_matches('#').trim().to_string();
        (level as u8, title)
    })
}

/// A raw HTML heading on a line of its own, `<h3 id="x">Title</h3>` → (3, "Title").
fn html_heading(line: &str) -> Option<(u8, String)> {
    let t = line.trim_end();
    let rest = t.strip_prefix("<h").or_else(|| t.strip_prefix("<H"))?;
    let level = rest
        .chars()
        .next()?
        .to_digit(10)
        .filter(|l| (1..=6).contains(l))?;
    let inner = &rest[rest.find('>')? + 1..];
    let close = inner.to_ascii_lowercase().rfind(&format!("</h{level}>"))?;
    if !t.to_ascii_lowercase().ends_with(&format!("</h{level}>")) {
        return None;
    }
    // Tags inside the title (links, code) are dropped, their text kept.
    let mut title = String::new();
    let mut in_tag = false;
    for c in inner[..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => title.push(c),
            _ => {}
        }
    }
    Some((
        level as u8,
        title.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

fn plain(text: &str, base: usize) -> Vec<Line> {
    let lines = lines_of(text, base);
    let mut out: Vec<Line> = Vec::new();
    let blank = |i: usize| lines.get(i).is_none_or(|(_, l)| l.trim().is_empty());
    let mut i = 0;
    while i < lines.len() {
        let (at, line) = lines[i];
        let after_gap = i == 0 || blank(i - 1);
        let heading = if line.starts_with(char::is_whitespace) || !title_like(line) {
            None
        } else if let Some(level) = asciidoc_title(line) {
            Some((
                level,
                line.trim_start_matches('=').trim().to_string(),
                at,
                i,
            ))
        } else if let Some(level) = lines
            .get(i + 1)
            .and_then(|&(_, under)| underline_level(under, line))
        {
            // reStructuredText may also draw the line above the title.
            let over = i > 0 && underline_level(lines[i - 1].1, line) == Some(level);
            let start = if over { lines[i - 1].0 } else { at };
            Some((level, line.trim().to_string(), start, i + 1))
        } else if let Some(term) = line.strip_suffix("::").filter(|t| !t.ends_with(':')) {
            // An AsciiDoc labelled list item: a term (often the question) over its text.
            Some((7, term.trim().to_string(), at, i))
        } else if let Some((depth, title)) = numbered(line).filter(|_| after_gap) {
            // "1.1: What is it?" or "A3) Why?" after a gap, and either a sub-section number
            // or a line standing alone: a numbered list's items run on instead.
            (depth >= 2 || blank(i + 1)).then_some((depth, title, at, i))
        } else {
            None
        };
        match heading {
            Some((level, title, start, last)) => {
                let (last_at, last_line) = lines[last];
                out.push(Line {
                    start,
                    end: last_at + last_line.len(),
                    level,
                    title,
                });
                i = last + 1;
            }
            None => i += 1,
        }
    }
    out
}

/// AsciiDoc's `== Section` titles.
fn asciidoc_title(line: &str) -> Option<u8> {
    let level = line.chars().take_while(|&c| c == '=').count();
    ((1..=6).contains(&level) && line[level..].starts_with(' ')).then_some(level as u8)
}

/// A numbered section line: "2.12 Title", "1.1: Title", "A3) Title", "4. Title" → (depth,
/// title without the number).
fn numbered(line: &str) -> Option<(u8, String)> {
    let t = line.trim();
    let letter = t.starts_with(|c: char| c.is_ascii_uppercase())
        && t[1..].starts_with(|c: char| c.is_ascii_digit());
    let digits_from = usize::from(letter);
    let number_len = t[digits_from..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(t.len(), |n| n + digits_from);
    let number = t[digits_from..number_len].trim_end_matches('.');
    if number.is_empty() || number.split('.').any(|p| p.is_empty() || p.len() > 3) {
        return None;
    }
    let rest = t[number_len..]
        .strip_prefix([':', ')'])
        .unwrap_or(&t[number_len..]);
    let title = rest.strip_prefix(char::is_whitespace)?.trim();
    title
        .starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit() || c == '"' || c == '\'')
        .then(|| (number.split('.').count().min(6) as u8, title.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(lines: Vec<Line>) -> Vec<(u8, String)> {
        with_paths(lines)
            .into_iter()
            .map(|h| (h.level, h.path.join(" > ")))
            .collect()
    }

    fn owned(v: &[(u8, &str)]) -> Vec<(u8, String)> {
        v.iter().map(|&(l, t)| (l, t.to_string())).collect()
    }

    #[test]
    fn markdown_headings_in_all_their_forms() {
        let md = "Guide\n=====\n\nintro\n\n## Install ##\nsteps\n```\n# not a heading\n```\n\
                  <h3 id=\"linux\">On <code>Linux</code></h3>\napt\n\nUse\n---\nrun\n    # code\n\n\
                  * **2.1 Why bold?**\n\n  Because.\n\n**Not alone**\nhere\n\n**Bold** and plain\n";
        assert_eq!(
            titles(markdown(md, 0)),
            owned(&[
                (1, "Guide"),
                (2, "Guide > Install"),
                (3, "Guide > Install > On Linux"),
                (2, "Guide > Use"),
                (7, "Guide > Use > 2.1 Why bold?")
            ])
        );
        let spans: Vec<&str> = markdown(md, 0)
            .iter()
            .map(|l| &md[l.start..l.end])
            .collect();
        assert_eq!(spans[0], "Guide\n=====");
    }

    /// FAQ questions in bold run long, may end with a full stop or have their question
    /// mark after the bold, and may have their answer on the next line: numbered, they are
    /// headings all the same. Unnumbered, a long bold paragraph is emphasis.
    #[test]
    fn numbered_bold_questions_of_any_length() {
        let md = "# 2. Setup\n\n\
                  * **2.13 If I map a journaled file system using dm-crypt/LUKS, does it still \
                  provide its usual transactional guarantees?**\n\nYes.\n\n\
                  * **3.2 My mapping suddenly stopped when upgrading.**\n\nOld kernel.\n\n\
                  * **6.16 How to convert the printed key?**\n  With xxd.\n\n\
                  * **10.10 What about the size of the header**?\n\nIt varies.\n\n\
                  **Never write to a mapped device from two hosts at once, whatever the file \
                  system or the tools in use tell you.**\n\nReally.\n";
        assert_eq!(
            titles(markdown(md, 0)),
            owned(&[
                (1, "2. Setup"),
                (
                    7,
                    "2. Setup > 2.13 If I map a journaled file system using dm-crypt/LUKS, \
                     does it still provide its usual transactional guarantees?"
                ),
                (
                    7,
                    "2. Setup > 3.2 My mapping suddenly stopped when upgrading."
                ),
                (7, "2. Setup > 6.16 How to convert the printed key?"),
                (7, "2. Setup > 10.10 What about the size of the header?"),
            ])
        );
    }

    #[test]
    fn plain_text_conventions() {
        let text = "Frequently Asked Questions\n==========================\n\n\
                    1 Getting started\n\n\
                    1.1: What is it?\n\n  A shell.\n\n\
                    1.2: Where do I get it?\n  From the archive.\n\n\
                    Steps:\n\n1. Download it\n2. Run it\n\n\
                    == Usage\n\n\
                    How do I quit?::\n\tType exit.\n\n\
                    A3) Why not?\n\nBecause.\n\n\
                    The end is near. It really is.\n";
        assert_eq!(
            titles(plain(text, 0)),
            owned(&[
                (1, "Frequently Asked Questions"),
                (1, "Getting started"),
                (2, "Getting started > What is it?"),
                (2, "Getting started > Where do I get it?"),
                (2, "Getting started > Usage"),
                (7, "Getting started > Usage > How do I quit?"),
                (1, "Why not?"),
            ])
        );
        // reStructuredText's over- and underlined title is one heading over three lines.
        let rst = "=====
Title
=====

Text.
";
        let found = plain(rst, 0);
        assert_eq!(
            (found[0].start, found[0].end),
            (0, rst.find("\n\n").unwrap())
        );
    }
}
