//! Token-sized chunks with overlap (text-splitter, sized by the embedding model's own
//! tokenizer: cl100k_base for OpenAI models, WordPiece for the local model), each with the
//! page and heading path it came from and its offsets into `files.extracted_text`.

use std::sync::Arc;

use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use tiktoken_rs::CoreBPE;

use crate::embed::local::LocalModel;

use crate::config::ChunkingSettings;
use crate::extract::{Document, Format};

/// Separator placed between sections (PDF pages) in `extracted_text`.
pub const SECTION_SEPARATOR: &str = "\n\n";

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub index: i32,
    pub content: String,
    pub page_number: Option<i32>,
    /// Heading path, e.g. `Install > Linux`, for Markdown.
    pub heading: Option<String>,
    pub token_count: i32,
    /// Character (not byte) offsets into `extracted_text`, as Postgres' `substr` counts.
    pub start_char: usize,
    pub end_char: usize,
}

/// Everything chunking produces for one file.
#[derive(Debug, Clone)]
pub struct Chunked {
    pub extracted_text: String,
    pub chunks: Vec<Chunk>,
}

/// The cl100k_base tokenizer (OpenAI's embedding models), built once per process: loading
/// its 100k-entry vocabulary takes a noticeable fraction of a second.
pub fn cl100k() -> Result<Arc<CoreBPE>, String> {
    static BPE: std::sync::OnceLock<Result<Arc<CoreBPE>, String>> = std::sync::OnceLock::new();
    BPE.get_or_init(|| {
        tiktoken_rs::cl100k_base()
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .clone()
}

/// Counts tokens the way the embedding model will, so a chunk of `max_tokens` is exactly
/// what the model accepts.
#[derive(Clone)]
pub enum Tokenizer {
    /// OpenAI's embedding models.
    Cl100k(Arc<CoreBPE>),
    /// The in-process model; counts include its [CLS] and [SEP] tokens.
    Local(Arc<LocalModel>),
}

impl Tokenizer {
    pub fn cl100k() -> Result<Self, String> {
        cl100k().map(Tokenizer::Cl100k)
    }

    pub fn count(&self, text: &str) -> usize {
        match self {
            Tokenizer::Cl100k(bpe) => bpe.encode_ordinary(text).len(),
            Tokenizer::Local(model) => model.count_tokens(text),
        }
    }
}

impl ChunkSizer for Tokenizer {
    fn size(&self, chunk: &str) -> usize {
        self.count(chunk)
    }
}

/// Chunker shared by all files in flight; building the tokenizer is the expensive part.
#[derive(Clone)]
pub struct Chunker {
    tokenizer: Tokenizer,
    text: Arc<TextSplitter<Tokenizer>>,
    markdown: Arc<MarkdownSplitter<Tokenizer>>,
}

#[derive(Debug, thiserror::Error)]
#[error("chunking configuration rejected: {0}")]
pub struct ChunkerError(String);

impl Chunker {
    pub fn new(settings: &ChunkingSettings, tokenizer: Tokenizer) -> Result<Self, ChunkerError> {
        let config = || {
            ChunkConfig::new(settings.max_tokens)
                .with_overlap(settings.overlap_tokens)
                .map(|c| c.with_sizer(tokenizer.clone()))
                .map_err(|e| ChunkerError(e.to_string()))
        };
        Ok(Self {
            text: Arc::new(TextSplitter::new(config()?)),
            markdown: Arc::new(MarkdownSplitter::new(config()?)),
            tokenizer,
        })
    }

    /// Tokens of `text` as the embedding model counts them.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.count(text)
    }

    /// Splits a document. Chunks never cross a section (page) boundary, so each has exactly
    /// one page number.
    pub fn chunk(&self, doc: &Document) -> Chunked {
        let mut extracted_text = String::new();
        let mut chunks = Vec::new();
        let mut section_char_start = 0usize;
        for (i, section) in doc.sections.iter().enumerate() {
            if i > 0 {
                extracted_text.push_str(SECTION_SEPARATOR);
                section_char_start += SECTION_SEPARATOR.chars().count();
            }
            extracted_text.push_str(&section.text);
            let (body, body_offset) = match doc.format {
                Format::Markdown => strip_front_matter(&section.text),
                _ => (section.text.as_str(), 0),
            };
            let (headings, pieces): (Vec<Heading>, Vec<(usize, &str)>) =
                if doc.format.has_headings() {
                    (
                        markdown_headings(body),
                        self.markdown.chunk_indices(body).collect(),
                    )
                } else {
                    (Vec::new(), self.text.chunk_indices(body).collect())
                };
            // Byte → char offsets, walked forward once since chunks come in order.
            let mut chars_before = section.text[..body_offset].chars().count();
            let mut bytes_seen = 0usize;
            for (byte_offset, piece) in pieces {
                chars_before += body[bytes_seen..byte_offset].chars().count();
                bytes_seen = byte_offset;
                let start_char = section_char_start + chars_before;
                chunks.push(Chunk {
                    index: chunks.len() as i32,
                    content: piece.to_string(),
                    page_number: section.page,
                    heading: heading_at(&headings, byte_offset),
                    token_count: self.count_tokens(piece) as i32,
                    start_char,
                    end_char: start_char + piece.chars().count(),
                });
            }
            section_char_start += section.text.chars().count();
        }
        Chunked {
            extracted_text,
            chunks,
        }
    }
}

/// YAML/TOML front matter is metadata, not content to embed.
fn strip_front_matter(text: &str) -> (&str, usize) {
    for fence in ["---", "+++"] {
        if let Some(rest) = text.strip_prefix(fence).and_then(|r| r.strip_prefix('\n')) {
            let closing = format!("\n{fence}\n");
            if let Some(end) = rest.find(&closing) {
                let offset = fence.len() + 1 + end + closing.len();
                return (&text[offset..], offset);
            }
        }
    }
    (text, 0)
}

/// A Markdown heading: where it starts and the path of headings it ends.
#[derive(Debug, Clone, PartialEq)]
struct Heading {
    offset: usize,
    path: String,
}

/// ATX headings (`# Title`) outside fenced code blocks, with their full path.
fn markdown_headings(text: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut in_fence = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence && line.len() - trimmed.len() < 4 {
            let level = trimmed.chars().take_while(|&c| c == '#').count();
            let rest = &trimmed[level..];
            if (1..=6).contains(&level) && (rest.starts_with(' ') || rest.trim().is_empty()) {
                let title = rest.trim().trim_end_matches('#').trim().to_string();
                stack.retain(|(l, _)| *l < level);
                if !title.is_empty() {
                    stack.push((level, title));
                }
                out.push(Heading {
                    offset,
                    path: stack
                        .iter()
                        .map(|(_, t)| t.as_str())
                        .collect::<Vec<_>>()
                        .join(" > "),
                });
            }
        }
        offset += line.len();
    }
    out
}

/// The heading path in force where a chunk starts (a chunk that starts with a heading
/// belongs to it).
fn heading_at(headings: &[Heading], byte_offset: usize) -> Option<String> {
    headings
        .iter()
        .take_while(|h| h.offset <= byte_offset)
        .last()
        .map(|h| h.path.clone())
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Section;

    fn chunker(max: usize, overlap: usize) -> Chunker {
        Chunker::new(
            &ChunkingSettings {
                max_tokens: max,
                overlap_tokens: overlap,
            },
            Tokenizer::cl100k().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn heading_paths_follow_levels_and_skip_code() {
        let md = "# Guide\nintro\n## Install\nsteps\n```\n# not a heading\n```\n### Linux\napt\n## Use\nrun\n";
        let hs = markdown_headings(md);
        let paths: Vec<&str> = hs.iter().map(|h| h.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "Guide",
                "Guide > Install",
                "Guide > Install > Linux",
                "Guide > Use"
            ]
        );
    }

    #[test]
    fn chunks_respect_token_limit_pages_and_offsets() {
        let c = chunker(20, 5);
        let sentence = "The quick brown fox jumps over the lazy dog near the river bank. ";
        let doc = Document {
            format: Format::PlainText,
            sections: vec![
                Section {
                    text: sentence.repeat(6),
                    page: Some(1),
                },
                Section {
                    text: "Ünïcödé page two text.".into(),
                    page: Some(2),
                },
            ],
        };
        let out = c.chunk(&doc);
        assert!(out.chunks.len() > 3);
        let chars: Vec<char> = out.extracted_text.chars().collect();
        for (i, ch) in out.chunks.iter().enumerate() {
            assert_eq!(ch.index, i as i32);
            assert!(ch.token_count as usize <= 20, "{ch:?}");
            let slice: String = chars[ch.start_char..ch.end_char].iter().collect();
            assert_eq!(slice, ch.content, "offsets must point at the chunk");
        }
        let last = out.chunks.last().unwrap();
        assert_eq!(last.page_number, Some(2));
        assert_eq!(last.content, "Ünïcödé page two text.");
        assert!(out.chunks[..out.chunks.len() - 1]
            .iter()
            .all(|c| c.page_number == Some(1)));
    }

    #[test]
    fn markdown_chunks_carry_headings_and_skip_front_matter() {
        let c = chunker(40, 0);
        let md =
            "---\ntitle: secret metadata\n---\n# Alpha\n\nFirst section body text.\n\n## Beta\n\n"
                .to_string()
                + &"Beta body sentence number one goes here. ".repeat(8);
        let doc = Document {
            format: Format::Markdown,
            sections: vec![Section {
                text: md,
                page: None,
            }],
        };
        let out = c.chunk(&doc);
        assert!(out
            .chunks
            .iter()
            .all(|c| !c.content.contains("secret metadata")));
        assert_eq!(out.chunks[0].heading.as_deref(), Some("Alpha"));
        assert!(out.chunks[0].content.starts_with("# Alpha"));
        let last = out.chunks.last().unwrap();
        assert_eq!(last.heading.as_deref(), Some("Alpha > Beta"));
        let chars: Vec<char> = out.extracted_text.chars().collect();
        for ch in &out.chunks {
            let slice: String = chars[ch.start_char..ch.end_char].iter().collect();
            assert_eq!(slice, ch.content);
        }
    }
}
