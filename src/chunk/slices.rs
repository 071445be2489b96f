//! Token counts of the slices of one text, from one tokenization of the whole. Splitting a
//! long section sizes many overlapping candidate chunks (text-splitter searches for the
//! largest run of sentences that fits, tokenizing each candidate), and counting each
//! candidate afresh made chunking about six times the work of tokenizing the document once
//! (measured on the ingestion benchmark's corpus with cl100k_base).
//!
//! The counts are exact, not estimates: both tokenizers split text into pieces before they
//! tokenize the pieces one by one (cl100k_base's regular expression, WordPiece's split at
//! whitespace and punctuation), and a single space between two non-space characters is
//! where a piece ends, in the whole text and in any slice of it that reaches past that
//! space. So a slice is counted as its first few words (tokenized on their own), the
//! tokens of the whole text between two such spaces (a subtraction), and its last few
//! words.

use super::Tokenizer;

pub(super) struct SliceCounter<'t> {
    tokenizer: &'t Tokenizer,
    text: &'t str,
    /// Where each of the text's tokens ends (byte offsets, ascending).
    ends: Vec<usize>,
    /// Tokens the tokenizer adds to every text ([CLS] and [SEP]), counted once per slice.
    added: usize,
}

impl<'t> SliceCounter<'t> {
    pub fn new(tokenizer: &'t Tokenizer, text: &'t str) -> Self {
        Self {
            tokenizer,
            text,
            ends: tokenizer.token_ends(text),
            added: tokenizer.added(),
        }
    }

    /// Tokens of `slice`, which is counted directly unless it lies within the text.
    pub fn count(&self, slice: &str) -> usize {
        let Some(start) = self.offset_of(slice) else {
            return self.tokenizer.count(slice);
        };
        let end = start + slice.len();
        match self.interior(start, end) {
            Some((from, to)) => {
                let (a, b) = (self.ends[from], self.ends[to]);
                self.tokenizer.count(&self.text[start..a])
                    + (to - from)
                    + self.tokenizer.count(&self.text[b..end])
                    - self.added
            }
            None => self.tokenizer.count(slice),
        }
    }

    /// The first and last tokens (indexes into `ends`) after which a piece ends inside
    /// `text[start..end]`, each at least a token in from its edge (a slice that starts
    /// inside a word is tokenized from there on its own); none when there are not two.
    fn interior(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let first = self.ends.partition_point(|&e| e <= start);
        let last = self.ends.partition_point(|&e| e < end);
        let from = (first..last).find(|&k| self.piece_ends_at(self.ends[k]))?;
        let to = (first..last)
            .rev()
            .find(|&k| self.piece_ends_at(self.ends[k]))?;
        (from < to).then_some((from, to))
    }

    /// Where `slice` starts in the text, if it is a slice of it.
    fn offset_of(&self, slice: &str) -> Option<usize> {
        let start = (slice.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        (start + slice.len() <= self.text.len()).then_some(start)
    }

    /// Whether a token ends at `at` because a piece does: a single space follows, between
    /// two characters that are not whitespace. Both tokenizers end a piece there whatever
    /// came before, so the text and every slice through it are tokenized alike up to it.
    /// (Only the last token of a run of them ends there: a later one ending at the same
    /// offset would be empty, which neither tokenizer makes.)
    fn piece_ends_at(&self, at: usize) -> bool {
        let bytes = self.text.as_bytes();
        if at == 0 || bytes.get(at) != Some(&b' ') {
            return false;
        }
        let before = self.text[..at].chars().next_back();
        let after = self.text[at + 1..].chars().next();
        matches!((before, after), (Some(b), Some(a)) if !b.is_whitespace() && !a.is_whitespace())
    }
}

impl text_splitter::ChunkSizer for SliceCounter<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.count(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every slice between a few hundred pairs of offsets counts as the tokenizer counts it
    /// alone: prose, code, numbers, runs of spaces and non-Latin text.
    #[test]
    fn a_slice_counts_as_the_tokenizer_counts_it_alone() {
        let tokenizer = Tokenizer::cl100k().unwrap();
        let text = concat!(
            "The quick brown fox jumps over the lazy dog. It's 12345 steps away, isn't it?\n\n",
            "fn main() {\n    let x = vec![1, 2, 3];  // three   spaces\n}\n",
            "Ünïcödé wörds — and “quotes”, naïve café; 東京は日本の首都です。 Ελληνικά κείμενα.\n",
            "  leading spaces, trailing spaces   \n\ttabs\tand\r\nCRLF lines. 3.14159 and 1,000,000.\n",
            "- a list item\n- another one with a [link](https://example.com/a?b=c)\n",
        )
        .repeat(3);
        let counter = SliceCounter::new(&tokenizer, &text);
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        let mut checked = 0;
        let mut shortcut = 0;
        for (n, &a) in boundaries.iter().enumerate().step_by(7) {
            for &b in boundaries[n..].iter().step_by(13) {
                let slice = &text[a..b];
                assert_eq!(
                    counter.count(slice),
                    tokenizer.count(slice),
                    "slice {a}..{b}: {slice:?}"
                );
                checked += 1;
                shortcut += usize::from(counter.interior(a, b).is_some());
            }
        }
        // Most slices took the subtraction, not the tokenizer: the test checks that path.
        assert!(
            checked > 1000 && shortcut * 2 > checked,
            "{shortcut} of {checked}"
        );
        // A string that is not a slice of the text is counted as it is.
        assert_eq!(counter.count("not from the text"), 4);
    }
}
