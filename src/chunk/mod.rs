//! Token-sized chunks that follow the document's structure, sized by the embedding model's
//! own tokenizer (cl100k_base for OpenAI models, WordPiece for the local model), each with
//! the page and heading path it came from, its offsets into `files.extracted_text`, and the
//! text that is embedded for it: the heading path, then the chunk
//! (`chunking.embed_template`), so that every chunk of a section knows what it answers.
//!
//! `outline` finds the headings of any format, `pack` cuts sections into chunks.

mod outline;
mod pack;
mod slices;

use std::sync::Arc;

use crate::config::ChunkingSettings;
pub use crate::embed::Tokenizer;
use crate::extract::{Document, Format};

/// Separator placed between sections (PDF pages) in `extracted_text`.
pub const SECTION_SEPARATOR: &str = "\n\n";

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub index: i32,
    /// The chunk's text exactly as it stands in `extracted_text`: what an app shows.
    pub content: String,
    /// The page the chunk starts on (PDFs).
    pub page_number: Option<i32>,
    /// The page it ends on, when it runs over a page break.
    pub last_page: Option<i32>,
    /// Some of its text was read by OCR.
    pub ocr: bool,
    /// Heading path where the chunk starts, e.g. `Install > Linux`.
    pub heading: Option<String>,
    /// The heading path put before `content` in what is embedded (the chunk's own heading
    /// line, when it starts with one, is in `content` already and is not repeated).
    pub context: Option<String>,
    /// What the embedding model reads: `chunking.embed_template` filled with `context` and
    /// `content`, or `content` alone when there is no context.
    pub embed_input: String,
    /// Tokens of `embed_input`: what is sent, billed and counted against the budget.
    pub token_count: i32,
    /// sha256 (hex) of `embed_input`, exactly what is embedded: a stored vector whose chunk
    /// has the same hash, model and dimension is this chunk's vector.
    pub content_hash: String,
    /// Character (not byte) offsets into `extracted_text`, as Postgres' `substr` counts.
    pub start_char: usize,
    pub end_char: usize,
}

/// sha256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Bumped whenever the same bytes and settings would make different chunks: a change to the
/// rules in `outline` or `pack`, or to what an extractor reads from a file (3: HTML link
/// bars and named sidebars dropped, PDF and office-format reading; 4: ODT/ODP list numbers,
/// embedded objects and frame captions; 5: PDFs pdf-extract could not parse or panicked on,
/// Type 3 fonts, read with their word spaces; CJK CID fonts without a Unicode map read
/// through their character collection; 6: a split part no longer ends with a lead-in, the
/// "… like this:" moves to the part with what it introduces). Files processed under
/// another version are chunked again rather than kept as they are; the vectors of chunks
/// whose text did not change are reused, so only changed chunks are paid for.
pub const CHUNKER_VERSION: u32 = 6;

/// Everything chunking produces for one file.
#[derive(Debug, Clone)]
pub struct Chunked {
    pub extracted_text: String,
    pub chunks: Vec<Chunk>,
    /// The template that made the chunks' `embed_input`, recorded in their metadata.
    pub embed_template: Arc<str>,
}

/// Chunker shared by all files in flight; building the tokenizer is the expensive part.
#[derive(Clone)]
pub struct Chunker {
    tokenizer: Tokenizer,
    max_tokens: usize,
    overlap_tokens: usize,
    template: Template,
}

#[derive(Debug, thiserror::Error)]
#[error("chunking configuration rejected: {0}")]
pub struct ChunkerError(String);

/// `chunking.embed_template`, checked once: `{content}` exactly once, `{heading}` at most
/// once.
#[derive(Clone)]
struct Template(Arc<str>);

impl Template {
    fn parse(text: &str) -> Result<Self, ChunkerError> {
        if text.matches("{content}").count() != 1 || text.matches("{heading}").count() > 1 {
            return Err(ChunkerError(format!(
                "chunking.embed_template must contain {{content}} once and {{heading}} at \
                 most once (got {text:?})"
            )));
        }
        Ok(Self(text.into()))
    }

    /// Whether what is embedded under `context` is the content alone.
    fn embeds_alone(&self, context: &str) -> bool {
        context.is_empty() || !self.0.contains("{heading}")
    }

    /// What is embedded for `content` under `context`.
    fn fill(&self, context: &str, content: &str) -> String {
        if self.embeds_alone(context) {
            return content.to_string();
        }
        // Replaced in one pass, so a heading that itself reads "{content}" stays text.
        let (before, after) = self.0.split_once("{content}").unwrap_or((&self.0, ""));
        format!(
            "{}{content}{}",
            before.replace("{heading}", context),
            after.replace("{heading}", context)
        )
    }
}

impl Chunker {
    pub fn new(settings: &ChunkingSettings, tokenizer: Tokenizer) -> Result<Self, ChunkerError> {
        if settings.max_tokens == 0 || settings.overlap_tokens >= settings.max_tokens {
            return Err(ChunkerError(format!(
                "chunking.overlap_tokens ({}) must be smaller than chunking.max_tokens ({})",
                settings.overlap_tokens, settings.max_tokens
            )));
        }
        Ok(Self {
            tokenizer,
            max_tokens: settings.max_tokens,
            overlap_tokens: settings.overlap_tokens,
            template: Template::parse(&settings.embed_template)?,
        })
    }

    /// Tokens of `text` as the embedding model counts them.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.count(text)
    }

    /// Splits a document into chunks that follow its structure (see `pack`): sections are
    /// kept whole where they fit, a heading always travels with the text under it, and the
    /// heading path is embedded with the text.
    pub fn chunk(&self, doc: &Document) -> Chunked {
        let mut extracted_text = String::new();
        let mut section_starts = Vec::with_capacity(doc.sections.len());
        for (i, section) in doc.sections.iter().enumerate() {
            if i > 0 {
                extracted_text.push_str(SECTION_SEPARATOR);
            }
            section_starts.push(extracted_text.len());
            extracted_text.push_str(&section.text);
        }
        let from = match doc.format {
            Format::Markdown => front_matter_len(&extracted_text),
            _ => 0,
        };
        let headings = outline::headings(doc, &extracted_text, &section_starts, from);
        let pieces = pack::Packer::new(self, &extracted_text, doc.format.has_headings())
            .pack(from, &headings);

        let section_at = |byte: usize| section_starts.partition_point(|&s| s <= byte).max(1) - 1;
        let page_at = |byte: usize| doc.sections.get(section_at(byte)).and_then(|s| s.page);
        // Byte → char offsets, walked forward once: pieces start in order.
        let mut chars_before = 0usize;
        let mut bytes_seen = 0usize;
        let chunks = pieces
            .into_iter()
            .enumerate()
            .map(|(index, piece)| {
                chars_before += extracted_text[bytes_seen..piece.start].chars().count();
                bytes_seen = piece.start;
                let content = &extracted_text[piece.start..piece.end];
                let context = piece.context.join(HEADING_SEPARATOR);
                let embed_input = self.template.fill(&context, content);
                let (first, last) = (page_at(piece.start), page_at(piece.end - 1));
                Chunk {
                    index: index as i32,
                    content: content.to_string(),
                    page_number: first,
                    last_page: last.filter(|_| last != first),
                    ocr: doc.sections[section_at(piece.start)..=section_at(piece.end - 1)]
                        .iter()
                        .any(|s| s.ocr),
                    heading: Some(piece.heading.join(HEADING_SEPARATOR)).filter(|h| !h.is_empty()),
                    context: Some(context).filter(|c| !c.is_empty() && embed_input != content),
                    // Counted by the packer on exactly this text.
                    token_count: piece
                        .tokens
                        .unwrap_or_else(|| self.count_tokens(&embed_input))
                        as i32,
                    content_hash: sha256_hex(embed_input.as_bytes()),
                    embed_input,
                    start_char: chars_before,
                    end_char: chars_before + content.chars().count(),
                }
            })
            .collect();
        Chunked {
            extracted_text,
            chunks,
            embed_template: self.template.0.clone(),
        }
    }
}

/// Between the titles of a heading path.
const HEADING_SEPARATOR: &str = " > ";

/// YAML/TOML front matter is metadata, not content to embed: its length, or 0.
fn front_matter_len(text: &str) -> usize {
    for fence in ["---", "+++"] {
        if let Some(rest) = text.strip_prefix(fence).and_then(|r| r.strip_prefix('\n')) {
            let closing = format!("\n{fence}\n");
            if let Some(end) = rest.find(&closing) {
                return fence.len() + 1 + end + closing.len();
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{Heading as Mark, Section};

    const TEMPLATE: &str = "{heading}\n\n{content}";

    fn chunker(max: usize, overlap: usize) -> Chunker {
        Chunker::new(
            &ChunkingSettings {
                max_tokens: max,
                overlap_tokens: overlap,
                embed_template: TEMPLATE.into(),
            },
            Tokenizer::cl100k().unwrap(),
        )
        .unwrap()
    }

    fn doc(format: Format, text: &str) -> Document {
        Document {
            format,
            sections: vec![Section::new(text.into(), None)],
        }
    }

    /// What every chunking must hold: offsets point at `content`, `content` is the text as
    /// extracted (never the template's additions), `embed_input` is the template filled
    /// with the context, `token_count` counts it and stays within the budget.
    fn check(out: &Chunked, max: usize) {
        let chars: Vec<char> = out.extracted_text.chars().collect();
        for (i, ch) in out.chunks.iter().enumerate() {
            assert_eq!(ch.index, i as i32);
            let slice: String = chars[ch.start_char..ch.end_char].iter().collect();
            assert_eq!(slice, ch.content, "offsets must point at the chunk");
            let expected = match &ch.context {
                Some(context) => {
                    assert!(!ch.content.starts_with(&format!("{context}\n\n")), "{ch:?}");
                    format!("{context}\n\n{}", ch.content)
                }
                None => ch.content.clone(),
            };
            assert_eq!(ch.embed_input, expected);
            let tokens = Tokenizer::cl100k().unwrap().count(&ch.embed_input);
            assert_eq!(ch.token_count as usize, tokens);
            assert!(tokens <= max, "{tokens} > {max}: {ch:?}");
        }
    }

    /// The first chunk whose text contains `text`.
    fn containing<'a>(out: &'a Chunked, text: &str) -> &'a Chunk {
        out.chunks
            .iter()
            .find(|ch| ch.content.contains(text))
            .unwrap_or_else(|| panic!("no chunk contains {text:?}: {out:?}"))
    }

    #[test]
    fn chunks_respect_token_limit_pages_and_offsets() {
        let c = chunker(20, 5);
        let sentence = "The quick brown fox jumps over the lazy dog near the river bank. ";
        let doc = Document {
            format: Format::PlainText,
            sections: vec![
                Section::new(sentence.repeat(6), Some(1)),
                Section::new("Ünïcödé page two text.".into(), Some(2)),
            ],
        };
        let out = c.chunk(&doc);
        assert!(out.chunks.len() > 3);
        check(&out, 20);
        let last = out.chunks.last().unwrap();
        assert_eq!(last.page_number, Some(2));
        assert_eq!(last.content, "Ünïcödé page two text.");
        assert!(out.chunks[0].page_number == Some(1) && out.chunks[0].context.is_none());
    }

    /// Slides are sections with a page number and Markdown headings: a chunk of a slide's
    /// notes is filed under that slide's title, never under the previous slide's.
    #[test]
    fn slide_chunks_carry_their_slide_and_title() {
        let c = chunker(30, 0);
        let doc = Document {
            format: Format::Pptx,
            sections: vec![
                Section::new(
                    "# Tides\n\nHigh water twice a day at the harbour.".into(),
                    Some(1),
                ),
                Section::new(
                    "# Slide 2\n\nA text box on a slide without title.\n\n## Notes\n\nSpeak slowly about the berths here.".into(),
                    Some(2),
                ),
            ],
        };
        let out = c.chunk(&doc);
        check(&out, 30);
        let got: Vec<_> = out
            .chunks
            .iter()
            .map(|ch| (ch.page_number, ch.heading.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (Some(1), "Tides"),
                (Some(2), "Slide 2"),
                (Some(2), "Slide 2 > Notes")
            ]
        );
    }

    #[test]
    fn markdown_chunks_carry_headings_and_skip_front_matter() {
        let c = chunker(40, 0);
        let md =
            "---\ntitle: secret metadata\n---\n# Alpha\n\nFirst section body text.\n\n## Beta\n\n"
                .to_string()
                + &"Beta body sentence number one goes here. ".repeat(8);
        let out = c.chunk(&doc(Format::Markdown, &md));
        check(&out, 40);
        assert!(out
            .chunks
            .iter()
            .all(|c| !c.content.contains("secret metadata")));
        assert_eq!(out.chunks[0].heading.as_deref(), Some("Alpha"));
        assert!(out.chunks[0].content.starts_with("# Alpha"));
        let last = out.chunks.last().unwrap();
        assert_eq!(last.heading.as_deref(), Some("Alpha > Beta"));
        assert_eq!(last.context.as_deref(), Some("Alpha > Beta"));
    }

    /// A question whose answer runs over several chunks: the first starts at the question,
    /// none ends with it, and every later one embeds the question above its text.
    #[test]
    fn a_heading_followed_by_a_long_section() {
        let c = chunker(48, 8);
        let answer = "Tides follow the moon, which pulls the sea towards it as it passes. ";
        let md = format!(
            "# Harbour FAQ\n\n## When is high tide?\n\n{}\n\n## Where do ferries leave?\n\nPier 3.\n",
            answer.repeat(8)
        );
        let out = c.chunk(&doc(Format::Markdown, &md));
        check(&out, 48);
        let tide: Vec<&Chunk> = out
            .chunks
            .iter()
            .filter(|c| c.heading.as_deref() == Some("Harbour FAQ > When is high tide?"))
            .collect();
        assert!(tide.len() >= 3, "{tide:#?}");
        // The top heading, which has no text of its own, joins the first question.
        assert!(tide[0]
            .content
            .starts_with("# Harbour FAQ\n\n## When is high tide?\n\nTides"));
        for later in &tide[1..] {
            assert!(later.content.starts_with("Tides") || later.content.starts_with("moon"));
            assert!(later
                .embed_input
                .starts_with("Harbour FAQ > When is high tide?\n\n"));
        }
        for chunk in &out.chunks {
            let last_line = chunk.content.lines().last().unwrap();
            assert!(
                !last_line.starts_with('#'),
                "a chunk ends with a heading: {chunk:?}"
            );
        }
        let ferries = out.chunks.last().unwrap();
        assert_eq!(ferries.content, "## Where do ferries leave?\n\nPier 3.");
        assert_eq!(
            ferries.embed_input,
            "Harbour FAQ\n\n## Where do ferries leave?\n\nPier 3."
        );
    }

    /// Greedy splitting would leave the section's last line as a part of its own, which
    /// embeds as little more than the heading path: it is joined to the part before, and
    /// the two are cut again into halves of about equal size.
    #[test]
    fn a_split_section_leaves_no_scrap() {
        let c = chunker(48, 8);
        let answer = "Tides follow the moon, which pulls the sea towards it as it passes. ";
        let md = format!(
            "# Harbour FAQ\n\n## When is high tide?\n\n{}\n\nTwice a day.\n",
            answer.repeat(4)
        );
        let out = c.chunk(&doc(Format::Markdown, &md));
        check(&out, 48);
        let tk = Tokenizer::cl100k().unwrap();
        for chunk in &out.chunks {
            assert!(tk.count(&chunk.content) >= 48 / 4, "a scrap: {chunk:?}");
        }
        let last = out.chunks.last().unwrap();
        assert!(last.content.starts_with("Tides") && last.content.ends_with("Twice a day."));
    }

    /// A lead-in line, a blank line, then a list that nearly fills a chunk on its own (how a
    /// PDF's "… the following capabilities:" reads): the splitter keeps the list whole, so
    /// the lead-in would be a chunk of its own, the heading and one line. It is cut at the
    /// line nearest the middle instead, and the lead-in keeps the first items with it.
    #[test]
    fn a_lead_in_before_a_long_list_is_not_left_alone() {
        let c = chunker(64, 8);
        let items: String = [
            "Symbolic assembly and disassembly of memory contents.",
            "Numeric examination and modification of any simulated device.",
            "Numeric search on both memory and device data.",
            "Visibility to simulator internal structures such as the event queue.",
            "An unlimited number of instruction breakpoints.",
            "Proceed counts on breakpoints.",
        ]
        .iter()
        .map(|item| format!("- {item}\n"))
        .collect();
        let text = format!(
            "Debugging\n\nMost simulators provide the following debugging capabilities:\n\n{items}"
        );
        let heading_len = "Debugging".len();
        let out = c.chunk(&Document {
            format: Format::Pdf,
            sections: vec![Section {
                headings: vec![Mark {
                    offset: 0,
                    len: heading_len,
                    level: 1,
                }],
                ..Section::new(text, Some(1))
            }],
        });
        check(&out, 64);
        let tk = Tokenizer::cl100k().unwrap();
        for chunk in &out.chunks {
            assert!(tk.count(&chunk.content) >= 64 / 4, "a scrap: {chunk:?}");
        }
        assert!(out.chunks[0]
            .content
            .contains("capabilities:\n\n- Symbolic"));
    }

    /// A part of a split section that would end with a lead-in ("… do something like
    /// this:") gives it to the next part, so the command it introduces is not cut off from
    /// what it is for, and nothing is lost or repeated beyond the overlap.
    #[test]
    fn a_lead_in_stays_with_what_it_introduces() {
        let c = chunker(64, 0);
        let why = "A key-slot holds one passphrase for the volume key; there are eight.";
        let md = format!(
            "# LUKS FAQ\n\n## How do I add a passphrase?\n\n{why}\n\nTo add a new \
             passphrase to a specific key-slot, do something like this:\n\n```\n\
             cryptsetup luksAddKey --key-slot 4 /dev/sda2\n```\n\nIt asks for an existing \
             passphrase first.\n"
        );
        let out = c.chunk(&doc(Format::Markdown, &md));
        check(&out, 64);
        assert!(out.chunks.len() >= 2, "{out:?}");
        for chunk in &out.chunks {
            assert!(
                !chunk.content.ends_with(':'),
                "ends with a lead-in: {chunk:?}"
            );
        }
        let command = containing(&out, "luksAddKey");
        assert!(
            command.content.starts_with("To add a new passphrase"),
            "{command:?}"
        );
        // The section's text is all there, in order.
        let joined: String = out.chunks.iter().map(|ch| ch.content.as_str()).collect();
        assert_eq!(
            joined.split_whitespace().collect::<String>(),
            md.split_whitespace().collect::<String>()
        );
    }

    /// Each section its own chunk, however small: measured on the retrieval benchmark,
    /// sharing chunks between small sections lowered hit@1 (each question's vector then
    /// carries its neighbours' topics too).
    #[test]
    fn a_fitting_section_stays_whole_and_alone() {
        let c = chunker(60, 0);
        let md = "# FAQ\n\n## Why?\n\nBecause.\n\n## How?\n\nCarefully.\n\n## Who?\n\n".to_string()
            + &"Everyone who ever sailed from the harbour at dawn. ".repeat(5);
        let out = c.chunk(&doc(Format::Markdown, &md));
        check(&out, 60);
        let contents: Vec<(&str, Option<&str>)> = out
            .chunks
            .iter()
            .map(|c| (c.content.as_str(), c.context.as_deref()))
            .collect();
        assert_eq!(
            contents[..2],
            [
                ("# FAQ\n\n## Why?\n\nBecause.", None),
                ("## How?\n\nCarefully.", Some("FAQ"))
            ]
        );
        assert_eq!(contents.len(), 3);
        assert!(contents[2].0.starts_with("## Who?") && contents[2].0.ends_with("at dawn."));
        assert_eq!(out.chunks[2].heading.as_deref(), Some("FAQ > Who?"));
    }

    /// A PDF heading printed at the foot of a page, its answer on the next: one chunk, from
    /// the heading, on both pages.
    #[test]
    fn a_heading_at_a_page_break() {
        let c = chunker(40, 0);
        let page1 = "Intro text on the first page of the manual, long enough to stand alone here \
                     and too long to share a chunk with the next section.\n2.1 What is a berth?";
        let heading_at = page1.find("2.1").unwrap();
        let sections = vec![
            Section {
                headings: vec![Mark {
                    offset: heading_at,
                    len: page1.len() - heading_at,
                    level: 2,
                }],
                ..Section::new(page1.into(), Some(1))
            },
            Section::new("A place where a ship is moored.".into(), Some(2)),
        ];
        let out = c.chunk(&Document {
            format: Format::Pdf,
            sections,
        });
        check(&out, 40);
        let berth = out.chunks.last().unwrap();
        assert_eq!(
            berth.content,
            "2.1 What is a berth?\n\nA place where a ship is moored."
        );
        assert_eq!((berth.page_number, berth.last_page), (Some(1), Some(2)));
        assert_eq!(berth.heading.as_deref(), Some("2.1 What is a berth?"));
        assert!(!out.chunks[0].content.contains("berth"));
    }

    /// The same from a real PDF: the typeset fixture prints question 1.2 at the foot of page
    /// 2 and answers it on page 3.
    #[test]
    fn a_pdf_question_at_the_foot_of_a_page_keeps_its_answer() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faq-typeset.pdf");
        let doc = crate::extract::extract(&std::fs::read(path).unwrap(), "faq.pdf", None, 1 << 20)
            .unwrap();
        let out = chunker(64, 8).chunk(&doc);
        check(&out, 64);
        let office = out
            .chunks
            .iter()
            .find(|c| {
                c.content
                    .starts_with("1.2 When is the harbour office open?")
            })
            .unwrap();
        assert!(
            office.content.contains("The office opens at eight"),
            "{office:?}"
        );
        assert_eq!((office.page_number, office.last_page), (Some(2), Some(3)));
        assert_eq!(office.context.as_deref(), Some("1 Moorings"));
        let diesel = containing(&out, "Diesel");
        assert_eq!(
            diesel.heading.as_deref(),
            Some("2 Fuel > 2.1 Where is the fuel pontoon?")
        );
    }

    #[test]
    fn templates_are_checked_and_can_leave_the_heading_out() {
        let settings = |t: &str| ChunkingSettings {
            max_tokens: 50,
            overlap_tokens: 0,
            embed_template: t.into(),
        };
        let tk = || Tokenizer::cl100k().unwrap();
        for bad in [
            "{heading}",
            "{content}{content}",
            "{heading}{heading}{content}",
        ] {
            let err = Chunker::new(&settings(bad), tk()).err().unwrap();
            assert!(err.to_string().contains("chunking.embed_template"), "{err}");
        }
        let c = Chunker::new(&settings("{content}"), tk()).unwrap();
        let out = c.chunk(&doc(
            Format::Markdown,
            "# A\n\n## B\n\ntext\n\n## C\n\nmore",
        ));
        assert!(out
            .chunks
            .iter()
            .all(|c| c.context.is_none() && c.embed_input == c.content));
        let c = Chunker::new(&settings("Section: {heading}. {content}"), tk()).unwrap();
        let out = c.chunk(&doc(
            Format::Markdown,
            &format!("# A\n\n## B\n\n{}", "word ".repeat(80)),
        ));
        let last = out.chunks.last().unwrap();
        assert_eq!(
            last.embed_input,
            format!("Section: A > B. {}", last.content)
        );
    }
}
