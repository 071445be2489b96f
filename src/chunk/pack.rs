//! Cutting a document into chunks along its headings. The rules, in order:
//!
//! 1. The text is read as sections: a heading and the text up to the next heading (text
//!    before the first heading is a section without one). A heading with no text of its own
//!    before the next heading joins that next section, so a heading never stands alone.
//! 2. A section that fits the budget is one chunk, with what is embedded counted: the
//!    heading path above it, then its text. Sections are not merged with their neighbours:
//!    on the retrieval benchmark, sharing a chunk lowered hit@1 (the vector then carries the
//!    neighbours' topics too).
//! 3. A section that does not fit is split (text-splitter, at paragraph, then sentence, then
//!    word boundaries, with the configured overlap). Its first chunk starts at its heading;
//!    every later chunk has the section's full heading path embedded above it, so that it
//!    still knows which question it answers. A part under a quarter of the room (a last
//!    line, a lone closing code fence) is joined to its neighbour and the two are cut again
//!    into halves: under the heading path such a scrap embeds as the heading alone. A part
//!    never ends with a lead-in ("… do something like this:"): it moves to the next part,
//!    with the command or list it introduces, wherever that part has room for it.
//!
//! No chunk ever ends with a heading whose text is in the next chunk, and no chunk overlaps
//! a neighbouring section: overlap is only between the parts of one split section.

use std::cell::OnceCell;

use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};

use super::outline::Heading;
use super::slices::SliceCounter;
use super::Chunker;

/// Tokens kept free beyond what the parts measure on their own: a tokenizer may count the
/// text around a join differently from its two halves.
const SLACK: usize = 4;

/// A part of a split section under 1/SCRAP of the capacity is a scrap, joined to its
/// neighbour (see `Packer::even_parts`).
const SCRAP: usize = 4;
/// Capacities tried when evening out a split (see `Packer::even_parts`).
const EVEN_TRIES: usize = 4;
/// Bytes per token above which a section is long enough that it will almost surely be
/// split (English prose runs at about four bytes a cl100k token), so its slices are counted
/// from the whole text's tokens from the start rather than tokenized once more on their own.
const LONG_BYTES_PER_TOKEN: usize = 8;

/// A chunk's byte range in the document's text, the heading path embedded above it, the
/// heading path in force where it starts, and the tokens of what is embedded for it once
/// counted (tokenizing is most of chunking's work, so each chunk is counted once).
#[derive(Debug)]
pub(super) struct Piece {
    pub start: usize,
    pub end: usize,
    pub context: Vec<String>,
    pub heading: Vec<String>,
    pub tokens: Option<usize>,
}

/// A section: `text[start..body]` is its heading (empty for text before any heading),
/// `text[body..end]` its text.
#[derive(Debug)]
struct Section {
    start: usize,
    body: usize,
    end: usize,
    /// The section's heading path (its own title last); empty without a heading.
    path: Vec<String>,
    /// The heading path above its heading line(s), which are in its text already.
    parent: Vec<String>,
}

pub(super) struct Packer<'a> {
    chunker: &'a Chunker,
    text: &'a str,
    /// Whether the text is Markdown (split by its own structure: lists, code blocks).
    markdown: bool,
    /// Counts slices of `text` while splitting; the whole text is tokenized for it the
    /// first time a section has to be split (most small documents never are).
    slices: OnceCell<SliceCounter<'a>>,
}

impl<'a> Packer<'a> {
    pub fn new(chunker: &'a Chunker, text: &'a str, markdown: bool) -> Self {
        Self {
            chunker,
            text,
            markdown,
            slices: OnceCell::new(),
        }
    }

    fn slices(&self) -> &SliceCounter<'a> {
        self.slices
            .get_or_init(|| SliceCounter::new(&self.chunker.tokenizer, self.text))
    }

    /// Tokens of a slice of the text (exact; see `slices`).
    fn count(&self, slice: &str) -> usize {
        self.slices().count(slice)
    }

    pub fn pack(&self, from: usize, headings: &[Heading]) -> Vec<Piece> {
        let mut pieces = Vec::new();
        for section in self.sections(from, headings) {
            let tokens = self.tokens(&section.parent, section.start, section.end);
            if tokens <= self.chunker.max_tokens {
                pieces.push(Piece {
                    start: section.start,
                    end: section.end,
                    context: section.parent.clone(),
                    heading: section.path.clone(),
                    // What `tokens` counted is the trimmed text, as the chunk will be.
                    tokens: Some(tokens),
                });
            } else {
                self.split(&section, &mut pieces);
            }
        }
        pieces
            .into_iter()
            .filter_map(|p| self.trimmed(p))
            .flat_map(|p| self.within_budget(p))
            .collect()
    }

    /// The document's sections from `from` on, heading-only ones joined to the next.
    fn sections(&self, from: usize, headings: &[Heading]) -> Vec<Section> {
        let mut sections: Vec<Section> = Vec::new();
        let first = headings.first().map_or(self.text.len(), |h| h.start);
        if !self.text[from..first].trim().is_empty() {
            sections.push(Section {
                start: from,
                body: from,
                end: first,
                path: Vec::new(),
                parent: Vec::new(),
            });
        }
        // A heading with nothing under it, waiting for the next section: where it starts
        // and the path above it.
        let mut pending: Option<(usize, Vec<String>)> = None;
        for (i, h) in headings.iter().enumerate() {
            let end = headings.get(i + 1).map_or(self.text.len(), |n| n.start);
            let (start, parent) = pending
                .take()
                .unwrap_or_else(|| (h.start, h.path[..h.path.len() - 1].to_vec()));
            if self.text[h.end.min(end)..end].trim().is_empty() && i + 1 < headings.len() {
                pending = Some((start, parent));
                continue;
            }
            sections.push(Section {
                start,
                body: h.end.min(end),
                end,
                path: h.path.clone(),
                parent,
            });
        }
        sections
    }

    /// Tokens embedded for `text[start..end]` under `context`.
    fn tokens(&self, context: &[String], start: usize, end: usize) -> usize {
        let content = self.text[start..end].trim();
        let context = context.join(super::HEADING_SEPARATOR);
        let template = &self.chunker.template;
        if !template.embeds_alone(&context) {
            return self.chunker.count_tokens(&template.fill(&context, content));
        }
        // The text alone is a slice: counted from the whole text's tokens once they exist,
        // or once it is long enough to be split anyway (the split needs them); a document
        // whose sections all fit is tokenized once, section by section.
        if self.slices.get().is_some()
            || content.len() > LONG_BYTES_PER_TOKEN * self.chunker.max_tokens
        {
            self.count(content)
        } else {
            self.chunker.count_tokens(content)
        }
    }

    /// Splits a section too large for one chunk (rule 3).
    fn split(&self, section: &Section, pieces: &mut Vec<Piece>) {
        let max = self.chunker.max_tokens;
        let parent = section.parent.clone();
        // Room left for text once the context is embedded: the first part also carries the
        // heading line, the later ones the full path.
        let reserve = self
            .tokens(&parent, section.start, section.body)
            .max(self.tokens(&section.path, section.body, section.body));
        let (body, first_context, context, capacity) = if reserve * 2 <= max {
            let capacity = (max - reserve).saturating_sub(SLACK).max(1);
            (section.body, parent, section.path.clone(), capacity)
        } else {
            // A heading path as long as half the budget: the text is worth more room.
            (section.start, Vec::new(), Vec::new(), max)
        };
        let text = &self.text[body..section.end];
        let parts = self.lead_ins_forward(text, self.even_parts(text, capacity), capacity);
        for (i, (offset, part)) in parts.into_iter().enumerate() {
            let first = i == 0;
            pieces.push(Piece {
                start: if first { section.start } else { body + offset },
                end: body + offset + part.len(),
                context: if first {
                    first_context.clone()
                } else {
                    context.clone()
                },
                heading: section.path.clone(),
                tokens: None,
            });
        }
    }

    /// `parts`, without scraps. Splitting fills each part greedily up to a boundary, which
    /// can leave a part of a few words or a lone closing code fence: embedded under the
    /// section's heading path it reads as little more than the heading, and outranks the
    /// section's real text for its own question (measured on the retrieval benchmark). A
    /// scrap and its neighbour are joined, and cut again into halves of about equal size
    /// when together they do not fit.
    fn even_parts<'t>(&self, text: &'t str, capacity: usize) -> Vec<(usize, &'t str)> {
        let mut parts = self.parts(text, capacity);
        let mut i = 0;
        while parts.len() >= 2 && i < parts.len() {
            if !self.is_scrap(parts[i].1, capacity) {
                i += 1;
                continue;
            }
            // The part before, or after for the first one.
            let a = i.saturating_sub(1);
            let (start, _) = parts[a];
            let (last_at, last) = parts[a + 1];
            let joined = &text[start..last_at + last.len()];
            let halves: Vec<(usize, &'t str)> = self
                .halves(joined, capacity)
                .into_iter()
                .map(|(offset, part)| (start + offset, part))
                .collect();
            let count = halves.len();
            parts.splice(a..a + 2, halves);
            i = a + count;
        }
        parts
    }

    /// `parts` with no part ending in a lead-in, the words that say what follows ("… do
    /// something like this:", "Scenarios:"): cut after it, the command or list lands in the
    /// next part without what it is for, and the lead-in is embedded with text it does not
    /// describe (5 % of the benchmark's chunks ended so). The lead-in's paragraph, else its
    /// sentence, else its line, moves to the next part where that still fits and the part it
    /// leaves is no scrap; where the overlap already carries it, it is only cut from here.
    fn lead_ins_forward<'t>(
        &self,
        text: &'t str,
        mut parts: Vec<(usize, &'t str)>,
        capacity: usize,
    ) -> Vec<(usize, &'t str)> {
        for i in 1..parts.len() {
            let (start, part) = parts[i - 1];
            let (next_start, next) = parts[i];
            let next_end = next_start + next.len();
            let moved = lead_in_starts(part).into_iter().find_map(|lead| {
                let at = start + lead;
                // Where the overlap already starts before the lead-in, the next part stays.
                let joined_start = at.min(next_start);
                let (kept, joined) = (&text[start..at], &text[joined_start..next_end]);
                // An empty part left behind counts as a scrap too.
                (!self.is_scrap(kept, capacity) && self.count(joined) <= capacity)
                    .then_some(((start, kept), (joined_start, joined)))
            });
            if let Some((kept, joined)) = moved {
                parts[i - 1] = kept;
                parts[i] = joined;
            }
        }
        parts
    }

    /// `text` (two parts joined) as one part if it fits, else in two of about equal size:
    /// the smallest of a few capacities between the even share and `capacity` that needs no
    /// more than two.
    fn halves<'t>(&self, text: &'t str, capacity: usize) -> Vec<(usize, &'t str)> {
        let overlap = self.chunker.overlap_tokens.min(capacity / 2);
        let even = (self.count(text) + overlap).div_ceil(2);
        let parts = (0..=EVEN_TRIES)
            .map(|step| even + capacity.saturating_sub(even) * step / EVEN_TRIES)
            .map(|c| self.parts(text, c.min(capacity)))
            .find(|p| p.len() <= 2)
            .unwrap_or_else(|| self.parts(text, capacity));
        // The splitter keeps a paragraph whole when it fits, so a lead-in ("… the following
        // capabilities:") before a list that nearly fills a part on its own comes back as
        // the same scrap. Then the two are cut at the line nearest their middle instead.
        if parts.len() == 2 && parts.iter().any(|(_, p)| self.is_scrap(p, capacity)) {
            if let Some(lines) = self.line_halves(text, capacity) {
                return lines;
            }
        }
        parts
    }

    /// A part under 1/SCRAP of `capacity`: embedded under its heading path it reads as
    /// little more than the heading.
    fn is_scrap(&self, part: &str, capacity: usize) -> bool {
        self.count(part) * SCRAP < capacity
    }

    /// `text` cut in two at the line break that best evens out the halves' tokens, if both
    /// halves fit `capacity` and neither is a scrap.
    fn line_halves<'t>(&self, text: &'t str, capacity: usize) -> Option<Vec<(usize, &'t str)>> {
        let total = self.count(text);
        let best = text
            .match_indices('\n')
            .map(|(at, _)| at + 1)
            .filter(|&at| at < text.len() && !text[at..].trim().is_empty())
            .map(|at| (at, self.count(&text[..at])))
            .min_by_key(|&(_, head)| head.abs_diff(total / 2))?;
        let (head, tail) = text.split_at(best.0);
        let fits = |part: &str| self.count(part) <= capacity && !self.is_scrap(part, capacity);
        (fits(head) && fits(tail)).then(|| vec![(0, head), (best.0, tail)])
    }

    /// `text` split at the best boundaries into parts of at most `capacity` tokens, with
    /// the configured overlap (never more than half a part): (byte offset, part).
    fn parts<'t>(&self, text: &'t str, capacity: usize) -> Vec<(usize, &'t str)> {
        let overlap = self.chunker.overlap_tokens.min(capacity / 2);
        let config = ChunkConfig::new(capacity.max(1))
            .with_overlap(overlap)
            .expect("overlap is below capacity")
            .with_sizer(self.slices());
        if self.markdown {
            MarkdownSplitter::new(config).chunk_indices(text).collect()
        } else {
            TextSplitter::new(config).chunk_indices(text).collect()
        }
    }

    /// The piece without surrounding whitespace, or `None` if nothing is left.
    fn trimmed(&self, mut piece: Piece) -> Option<Piece> {
        let slice = &self.text[piece.start..piece.end];
        let lead = slice.len() - slice.trim_start().len();
        let trimmed = slice.trim();
        if trimmed.is_empty() {
            return None;
        }
        piece.start += lead;
        piece.end = piece.start + trimmed.len();
        Some(piece)
    }

    /// The guarantee that no chunk exceeds the budget, whatever the tokenizer does at a
    /// join: a piece over it loses its context, and if its text alone is still over, it is
    /// split plainly. Every piece leaves with its tokens counted.
    fn within_budget(&self, mut piece: Piece) -> Vec<Piece> {
        let max = self.chunker.max_tokens;
        let tokens = piece
            .tokens
            .unwrap_or_else(|| self.tokens(&piece.context, piece.start, piece.end));
        if tokens <= max {
            piece.tokens = Some(tokens);
            return vec![piece];
        }
        piece.context.clear();
        let tokens = self.tokens(&[], piece.start, piece.end);
        if tokens <= max {
            piece.tokens = Some(tokens);
            return vec![piece];
        }
        self.parts(&self.text[piece.start..piece.end], max)
            .into_iter()
            .map(|(offset, part)| {
                let start = piece.start + offset;
                let end = start + part.len();
                Piece {
                    start,
                    end,
                    context: Vec::new(),
                    heading: piece.heading.clone(),
                    tokens: Some(self.tokens(&[], start, end)),
                }
            })
            .collect()
    }
}

/// Where the lead-in that ends `part` starts, widest first (its paragraph, its sentence, its
/// line), if `part` ends with one: a colon closing the text.
fn lead_in_starts(part: &str) -> Vec<usize> {
    let body = part.trim_end();
    if !body.ends_with(':') {
        return Vec::new();
    }
    let paragraph = body.rfind("\n\n").map_or(0, |at| at + 2);
    let sentence = [". ", "? ", "! ", ".\n"]
        .iter()
        .filter_map(|end| {
            body[paragraph..]
                .rfind(end)
                .map(|at| paragraph + at + end.len())
        })
        .max();
    let line = body.rfind('\n').map(|at| at + 1);
    let mut starts: Vec<usize> = [Some(paragraph), sentence, line]
        .into_iter()
        .flatten()
        .map(|at| at + (body.len() - at - body[at..].trim_start().len()))
        .filter(|&at| at < body.len())
        .collect();
    starts.sort_unstable();
    starts.dedup();
    starts
}

#[cfg(test)]
mod tests {
    use super::lead_in_starts;

    #[test]
    fn a_lead_in_is_found_by_paragraph_sentence_and_line() {
        let text = "Back up first.\n\nThe header holds the keys. To back it\nup, run:\n";
        let paragraph = text.find("The header").unwrap();
        let sentence = text.find("To back").unwrap();
        let line = text.find("up, run").unwrap();
        assert_eq!(lead_in_starts(text), vec![paragraph, sentence, line]);
        // Indented Markdown text: each start is where the words begin.
        assert_eq!(lead_in_starts("  Steps:"), vec![2]);
        assert!(lead_in_starts("No colon at the end.").is_empty());
        assert!(lead_in_starts("A colon: inside only.").is_empty());
    }
}
