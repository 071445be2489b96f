//! Section headings of a PDF, which has no markup for them. The outline (bookmarks) is the
//! author's own list: where a document has one and its titles are found on their pages, it
//! decides alone. Otherwise headings are recognised by their typography, as a reader does:
//! a short line set larger than the body text, or a line numbered like a section ("2.12
//! Why is R named R?") standing after a gap.

use std::collections::{HashMap, HashSet};

use super::{Line, Page};

/// An outline (bookmark) entry: its depth (1 = top), title and the page it points at.
pub(crate) struct OutlineEntry {
    pub level: u8,
    pub title: String,
    pub page: i32,
}

/// A heading found in `pages[page].lines[line..line + lines]`.
#[derive(Debug, PartialEq)]
pub(super) struct Mark {
    pub page: usize,
    pub line: usize,
    pub lines: usize,
    pub level: u8,
}

/// A heading set larger than the body is at least this much larger.
const LARGER: f64 = 1.15;
/// Longest heading, in words.
const MAX_WORDS: usize = 16;
/// Lines an outline title may wrap over.
const TITLE_LINES: usize = 4;
/// Outline titles some producers cut (Word's PDF export: 60 characters) are this long at
/// least, squashed; a shorter title that begins a line is just its first words.
const CUT_TITLE: usize = 32;

pub(super) fn find(pages: &[Page], outline: &[OutlineEntry]) -> Vec<Mark> {
    let from_outline = from_outline(pages, outline);
    // An outline whose titles are mostly not on their pages (renamed sections, outlines
    // of another edition, redacted text) is no guide to the page's lines.
    if !outline.is_empty() && from_outline.len() * 2 >= outline.len() {
        return from_outline;
    }
    from_typography(pages)
}

/// Letters and digits only, lower case: how a title is compared with the lines of a page,
/// whatever the spacing and punctuation of either.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a page line (squashed) shows an outline title (squashed): the same words, or the
/// same after the section number the outline left out.
fn shows(line: &str, title: &str) -> bool {
    line == title
        || line
            .strip_suffix(title)
            .is_some_and(|number| number.chars().all(|c| c.is_ascii_digit()))
}

/// Whether an outline title is a long heading's beginning only: the page's line (squashed,
/// its number left out) runs on past it.
fn cut_short(line: &str, title: &str) -> bool {
    title.len() >= CUT_TITLE && line.len() > title.len() && line.starts_with(title)
}

fn from_outline(pages: &[Page], outline: &[OutlineEntry]) -> Vec<Mark> {
    let index: HashMap<i32, usize> = pages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.number, i))
        .collect();
    // Every line squashed once, not once per outline entry that looks at its page.
    let squashed: Vec<Vec<String>> = pages
        .iter()
        .map(|p| p.lines.iter().map(|l| squash(&l.text)).collect())
        .collect();
    let mut taken: HashSet<(usize, usize)> = HashSet::new();
    let mut marks = Vec::new();
    let body = body_size(pages);
    for entry in outline {
        let title = squash(&entry.title);
        let Some(&page) = index.get(&entry.page) else {
            continue;
        };
        if title.is_empty() {
            continue;
        }
        // The destination is usually the heading's page; some producers point at the page
        // before (the heading's top margin) or after.
        let candidates = [Some(page), page.checked_add(1), page.checked_sub(1)];
        let found = candidates
            .into_iter()
            .flatten()
            .filter(|&p| p < pages.len())
            .find_map(|p| {
                let lines = &squashed[p];
                (0..lines.len()).find_map(|i| {
                    if taken.contains(&(p, i)) || lines[i].is_empty() {
                        return None;
                    }
                    // A long title wraps over lines: they are joined while they begin it.
                    let mut joined = String::new();
                    for k in 0..TITLE_LINES {
                        if taken.contains(&(p, i + k)) {
                            return None;
                        }
                        joined.push_str(lines.get(i + k)?);
                        if shows(&joined, &title) {
                            return Some((p, i, k + 1));
                        }
                        let words = joined.trim_start_matches(|c: char| c.is_ascii_digit());
                        if cut_short(words, &title) {
                            // The rest of the heading is on the lines set like its first.
                            let size = |l: usize| (pages[p].lines[l].size * 10.0).round() as i64;
                            let more = (i + k + 1..lines.len().min(i + TITLE_LINES))
                                .take_while(|&l| {
                                    size(l) == size(i) && size(i) as f64 >= body * 10.0 * LARGER
                                })
                                .count();
                            return Some((p, i, k + 1 + more));
                        }
                        if words.is_empty() || !title.starts_with(words) {
                            return None;
                        }
                    }
                    None
                })
            });
        if let Some((page, line, lines)) = found {
            taken.extend((line..line + lines).map(|l| (page, l)));
            marks.push(Mark {
                page,
                line,
                lines,
                level: entry.level,
            });
        }
    }
    marks.sort_by_key(|m| (m.page, m.line));
    marks
}

/// The section number a line starts with ("2.12 ", "3 ", "4.1. "): its depth, and whether
/// a title follows it.
pub(super) fn numbering(text: &str) -> Option<u8> {
    let t = text.trim_start();
    let number_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number = t[..number_len].trim_end_matches('.');
    let rest = &t[number_len..];
    let parts: Vec<&str> = number.split('.').collect();
    let well_formed = !number.is_empty() && parts.iter().all(|p| !p.is_empty() && p.len() <= 3);
    (well_formed
        && rest.starts_with(' ')
        && rest
            .trim_start()
            .starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit()))
    .then(|| parts.len().min(9) as u8)
}

/// Whether a line reads like a title: a few words, not a sentence's end or a list's middle.
fn title_like(text: &str) -> bool {
    let t = text.trim();
    let words = t.split_whitespace().count();
    (1..=MAX_WORDS).contains(&words)
        && t.chars().any(char::is_alphabetic)
        && !t.ends_with(['.', ',', ';', ':'])
        && !t.starts_with(|c: char| c.is_lowercase())
}

/// The body text's size: the size that most characters are set in.
fn body_size(pages: &[Page]) -> f64 {
    let mut chars: HashMap<i64, usize> = HashMap::new();
    for line in pages.iter().flat_map(|p| &p.lines) {
        if line.size > 0.0 {
            *chars.entry((line.size * 10.0).round() as i64).or_default() += line.text.len();
        }
    }
    chars
        .into_iter()
        .max_by_key(|&(size, count)| (count, -size))
        .map_or(0.0, |(size, _)| size as f64 / 10.0)
}

fn from_typography(pages: &[Page]) -> Vec<Mark> {
    let body = body_size(pages);
    let larger = |l: &Line| body > 0.0 && l.size >= body * LARGER;
    // Sizes of larger title lines, largest first: their rank is their level when they are
    // not numbered.
    let mut sizes: Vec<i64> = pages
        .iter()
        .flat_map(|p| &p.lines)
        .filter(|l| larger(l) && title_like(&l.text))
        .map(|l| (l.size * 10.0).round() as i64)
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.dedup();
    let mut marks: Vec<Mark> = Vec::new();
    for (p, page) in pages.iter().enumerate() {
        for (i, line) in page.lines.iter().enumerate() {
            let size = (line.size * 10.0).round() as i64;
            // A title set large over two lines is one heading.
            if let Some(last) = marks.last_mut().filter(|m| {
                larger(line)
                    && m.page == p
                    && m.line + m.lines == i
                    && (page.lines[m.line].size * 10.0).round() as i64 == size
            }) {
                last.lines += 1;
                continue;
            }
            if !title_like(&line.text) {
                continue;
            }
            let after_gap = i == 0 || page.lines[i - 1].text.trim().is_empty();
            let number = numbering(&line.text);
            let level = if larger(line) {
                number
                    .unwrap_or_else(|| sizes.iter().position(|&s| s == size).unwrap_or(0) as u8 + 1)
            } else {
                // Numbered lists look like numbered sections at the body's size; only a
                // sub-section number ("2.12") after a gap is taken for a heading.
                match number {
                    Some(depth) if depth >= 2 && after_gap => depth,
                    _ => continue,
                }
            };
            marks.push(Mark {
                page: p,
                line: i,
                lines: 1,
                level,
            });
        }
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(number: i32, lines: &[(&str, f64)]) -> Page {
        Page {
            number,
            lines: lines.iter().map(|&(t, s)| Line::new(t, s)).collect(),
        }
    }

    #[test]
    fn outline_titles_are_found_on_their_pages() {
        let pages = [
            page(1, &[("Guide", 20.0), ("", 0.0), ("Intro text here.", 10.0)]),
            page(
                2,
                &[
                    ("2.1 What is it, and why would", 12.0),
                    ("anyone want it?", 12.0),
                    ("It is a thing.", 10.0),
                    ("2.2 Where", 10.0),
                ],
            ),
        ];
        let outline = [
            OutlineEntry {
                level: 1,
                title: "Guide".into(),
                page: 1,
            },
            OutlineEntry {
                level: 2,
                // Without its number, as texinfo writes outlines; pointing at the page
                // before, as some producers do.
                title: "What is it, and why would anyone want it?".into(),
                page: 1,
            },
            OutlineEntry {
                level: 2,
                title: "Where".into(), // the number left out of the outline
                page: 2,
            },
        ];
        assert_eq!(
            find(&pages, &outline),
            [
                Mark {
                    page: 0,
                    line: 0,
                    lines: 1,
                    level: 1
                },
                Mark {
                    page: 1,
                    line: 0,
                    lines: 2,
                    level: 2
                },
                Mark {
                    page: 1,
                    line: 3,
                    lines: 1,
                    level: 2
                },
            ]
        );
    }

    /// A title wrapped over three lines (here at the body's size: only the outline tells
    /// it from the text) is found whole; a title the outline cut short
    /// (Word's export stops at 60 characters) is found by its beginning, and the heading
    /// runs on over the next line set in its size, not into the body.
    #[test]
    fn long_outline_titles_wrap_and_cut_titles_run_on() {
        let pages = [page(
            1,
            &[
                ("7.36 Why are there unwanted borders, lines or", 10.0),
                ("grid-like artifacts when viewing a plot saved", 10.0),
                ("to a PS or PDF file?", 10.0),
                ("This can occur when using polygon().", 10.0),
                (
                    "2.10 My Windows host can't communicate with the PDP-11 or VAX over",
                    14.0,
                ),
                ("Ethernet; why?", 14.0),
                ("Due to the limitations of WinPCAP, it cannot.", 10.0),
                ("Models are fitted with lm(), and so on.", 10.0),
                (
                    "Body text set at the body size, long enough to count most.",
                    10.0,
                ),
            ],
        )];
        let entry = |title: &str| OutlineEntry {
            level: 2,
            title: title.into(),
            page: 1,
        };
        let outline = [
            entry("Why are there unwanted borders, lines or grid-like artifacts when viewing a plot saved to a PS or PDF file?"),
            entry("My Windows host can't communicate with the PDP-11 or VAX ove"),
            // Short: the words a line begins with, not a cut title.
            entry("Models"),
        ];
        let mark = |line, lines| Mark {
            page: 0,
            line,
            lines,
            level: 2,
        };
        assert_eq!(find(&pages, &outline), [mark(0, 3), mark(4, 2)]);
    }

    #[test]
    fn without_an_outline_size_and_numbering_decide() {
        let pages = [page(
            1,
            &[
                ("A Field Guide", 18.0),
                ("to Harbours", 18.0),
                ("", 0.0),
                ("1 Tides", 14.0),
                (
                    "The sea rises twice a day, as everyone who lives here knows.",
                    10.0,
                ),
                ("1. Numbered list item", 10.0),
                ("", 0.0),
                ("1.1 Spring tides", 10.0),
                (
                    "Bigger ones at full moon and at new moon, said the harbour master.",
                    10.0,
                ),
                ("2.5 metres is the range", 10.0),
                ("Large print but a sentence.", 14.0),
            ],
        )];
        let marks = find(&pages, &[]);
        assert_eq!(
            marks,
            [
                Mark {
                    page: 0,
                    line: 0,
                    lines: 2,
                    level: 1
                },
                Mark {
                    page: 0,
                    line: 3,
                    lines: 1,
                    level: 1
                },
                Mark {
                    page: 0,
                    line: 7,
                    lines: 1,
                    level: 2
                },
            ]
        );
    }

    #[test]
    fn an_outline_not_found_in_the_text_gives_way_to_typography() {
        let pages = [page(
            1,
            &[("Title", 16.0), ("Body text of the page.", 10.0)],
        )];
        let outline = [OutlineEntry {
            level: 1,
            title: "Something else entirely".into(),
            page: 1,
        }];
        assert_eq!(
            find(&pages, &outline),
            [Mark {
                page: 0,
                line: 0,
                lines: 1,
                level: 1
            }]
        );
    }
}
