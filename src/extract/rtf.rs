//! RTF to plain text with a small tokenizer (no RTF crate reads text robustly enough to be
//! worth a dependency): groups, control words and symbols. Destinations that hold no body
//! text (font, colour and style tables, document info, pictures, headers and footers, field
//! instructions, every `{\*…}` group) are skipped; `\par` and `\line` end lines, `\cell`
//! separates table cells with ` | `; `\'hh` bytes are decoded in the code page of the
//! current font's `\fcharset`, else the document's `\ansicpg` (windows-1252 by default);
//! `\uN` is a UTF-16 unit, after which `\ucN` fallback characters are skipped.
//!
//! RTF is forgiving, and so is this: unbalanced braces or a cut-off file still yield the
//! text read so far, never an error.

use std::collections::HashMap;

use encoding_rs::{Encoding, WINDOWS_1252};

/// Destinations whose content is not body text.
const SKIPPED: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "objdata",
    "header",
    "headerl",
    "headerr",
    "headerf",
    "footer",
    "footerl",
    "footerr",
    "footerf",
    "fldinst",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "revtbl",
    "filetbl",
    "xmlnstbl",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "generator",
    "pgdsctbl",
    "xe",
    "tc",
    "private",
    "nonshppict",
    "shpinst",
    "footnote",
    "annotation",
    "atnid",
    "atnauthor",
];

/// What a group inherits from its parent and may change for itself.
#[derive(Clone)]
struct State {
    skip: bool,
    /// Fallback characters that follow a `\uN`.
    uc: usize,
    /// The encoding of `\'hh` bytes (the current font's, or the document's).
    encoding: &'static Encoding,
    /// Inside the font table: the font being defined.
    in_fonttbl: bool,
}

pub(super) fn to_text(bytes: &[u8]) -> String {
    Parser::new(bytes).run()
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    out: String,
    state: State,
    stack: Vec<State>,
    /// The document's code page (`\ansicpg`), for fonts without a charset of their own.
    doc_encoding: &'static Encoding,
    /// Font number → encoding, from the font table's `\fcharset`.
    fonts: HashMap<i32, &'static Encoding>,
    font_being_defined: Option<i32>,
    /// `\'hh` bytes not yet decoded: a double-byte character arrives as two escapes.
    pending: Vec<u8>,
    /// Fallback characters still to skip after a `\uN`.
    skip_chars: usize,
    /// A high surrogate waiting for its low half.
    high_surrogate: Option<u16>,
    /// The next control word names this group's destination (`{` or `{\*` just read).
    group_start: bool,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            out: String::new(),
            state: State {
                skip: false,
                uc: 1,
                encoding: WINDOWS_1252,
                in_fonttbl: false,
            },
            stack: Vec::new(),
            doc_encoding: WINDOWS_1252,
            fonts: HashMap::new(),
            font_being_defined: None,
            pending: Vec::new(),
            skip_chars: 0,
            high_surrogate: None,
            group_start: false,
        }
    }

    fn run(mut self) -> String {
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            self.pos += 1;
            match b {
                b'{' => {
                    self.flush();
                    self.stack.push(self.state.clone());
                    self.group_start = true;
                    self.skip_chars = 0;
                }
                b'}' => {
                    self.flush();
                    if let Some(state) = self.stack.pop() {
                        if self.state.in_fonttbl && !state.in_fonttbl {
                            self.font_being_defined = None;
                        }
                        self.state = state;
                    }
                    self.group_start = false;
                    self.skip_chars = 0;
                }
                b'\\' => self.control(),
                // Line breaks in the source are not text.
                b'\r' | b'\n' => {}
                _ => {
                    self.group_start = false;
                    if self.skip_chars > 0 {
                        self.skip_chars -= 1;
                        continue;
                    }
                    self.flush();
                    if !self.state.skip {
                        // Unescaped bytes above 0x7f are in the code page too.
                        if b < 0x80 {
                            self.out.push(b as char);
                        } else {
                            self.pending.push(b);
                        }
                    }
                }
            }
        }
        self.flush();
        tidy(&self.out)
    }

    /// Decodes `\'hh` bytes gathered so far.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (text, _, _) = self.state.encoding.decode(&self.pending);
        self.out.push_str(&text);
        self.pending.clear();
    }

    fn control(&mut self) {
        let Some(&c) = self.bytes.get(self.pos) else {
            return;
        };
        if c.is_ascii_alphabetic() {
            let start = self.pos;
            while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_alphabetic() {
                self.pos += 1;
            }
            let word = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or("");
            let num_start = self.pos;
            if self.bytes.get(self.pos) == Some(&b'-') {
                self.pos += 1;
            }
            while self.pos < self.bytes.len()
                && self.bytes[self.pos].is_ascii_digit()
                && self.pos - num_start < 11
            {
                self.pos += 1;
            }
            let param = std::str::from_utf8(&self.bytes[num_start..self.pos])
                .ok()
                .and_then(|s| s.parse::<i64>().ok());
            // One space ends a control word and belongs to it.
            if self.bytes.get(self.pos) == Some(&b' ') {
                self.pos += 1;
            }
            self.word(word, param);
            return;
        }
        self.pos += 1;
        let group_start = std::mem::take(&mut self.group_start);
        match c {
            b'\'' => {
                let hex = self.bytes.get(self.pos..self.pos + 2).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                if let Some(byte) = hex {
                    self.pos += 2;
                    if self.skip_chars > 0 {
                        self.skip_chars -= 1;
                    } else if !self.state.skip {
                        self.pending.push(byte);
                    }
                }
            }
            b'*' => {
                // An ignorable destination: skipped, since this reader knows none of them.
                if group_start {
                    self.state.skip = true;
                }
            }
            b'\r' | b'\n' => self.text("\n"),
            b'~' => self.text("\u{a0}"),
            b'_' => self.text("\u{2011}"),
            b'-' | b':' | b'|' => {}
            // \\, \{ and \} are the characters themselves.
            other => {
                if other.is_ascii() {
                    self.text(&(other as char).to_string());
                }
            }
        }
    }

    fn text(&mut self, s: &str) {
        if self.skip_chars > 0 {
            self.skip_chars -= 1;
            return;
        }
        self.flush();
        if !self.state.skip {
            self.out.push_str(s);
        }
    }

    fn word(&mut self, word: &str, param: Option<i64>) {
        let group_start = std::mem::take(&mut self.group_start);
        if group_start && SKIPPED.contains(&word) {
            if word == "fonttbl" {
                self.state.in_fonttbl = true;
            }
            self.state.skip = true;
        }
        // A control word ends a run of \'hh bytes (a font change may follow).
        self.flush();
        match (word, param) {
            ("ansicpg", Some(cp)) => {
                self.doc_encoding = code_page(cp).unwrap_or(WINDOWS_1252);
                self.state.encoding = self.doc_encoding;
            }
            ("mac", _) => {
                self.doc_encoding = encoding_rs::MACINTOSH;
                self.state.encoding = self.doc_encoding;
            }
            ("f", Some(n)) => {
                let n = n as i32;
                if self.state.in_fonttbl {
                    self.font_being_defined = Some(n);
                } else {
                    self.state.encoding = self.fonts.get(&n).copied().unwrap_or(self.doc_encoding);
                }
            }
            ("fcharset", Some(cs)) if self.state.in_fonttbl => {
                if let (Some(font), Some(enc)) = (self.font_being_defined, charset(cs)) {
                    self.fonts.insert(font, enc);
                }
            }
            ("uc", Some(n)) => self.state.uc = n.clamp(0, 16) as usize,
            ("u", Some(n)) => {
                // The fallback that follows (Word writes `\u8217\'92` or `\u8217?`) is
                // skipped; text-producing control words such as \par count as one character.
                let unit = (n as i32).rem_euclid(65536) as u16;
                let skip = self.state.uc;
                if !self.state.skip {
                    self.unicode(unit);
                }
                self.skip_chars = skip;
            }
            ("bin", Some(n)) => {
                // Raw bytes: never text, whatever they contain.
                self.pos = self
                    .pos
                    .saturating_add(n.max(0) as usize)
                    .min(self.bytes.len());
            }
            ("par" | "line" | "row", _) => self.text("\n"),
            ("sect" | "page", _) => self.text("\n\n"),
            ("tab", _) => self.text("\t"),
            ("cell" | "nestcell", _) => self.text(" | "),
            ("emdash", _) => self.text("\u{2014}"),
            ("endash", _) => self.text("\u{2013}"),
            ("bullet", _) => self.text("\u{2022}"),
            ("lquote", _) => self.text("\u{2018}"),
            ("rquote", _) => self.text("\u{2019}"),
            ("ldblquote", _) => self.text("\u{201c}"),
            ("rdblquote", _) => self.text("\u{201d}"),
            ("emspace" | "enspace" | "qmspace", _) => self.text(" "),
            _ => {}
        }
    }

    fn unicode(&mut self, unit: u16) {
        match unit {
            0xD800..=0xDBFF => self.high_surrogate = Some(unit),
            0xDC00..=0xDFFF => {
                if let Some(high) = self.high_surrogate.take() {
                    let c =
                        0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                    self.out.extend(char::from_u32(c));
                }
            }
            _ => {
                self.high_surrogate = None;
                self.out.extend(char::from_u32(u32::from(unit)));
            }
        }
    }
}

/// The encoding of a Windows code page number.
fn code_page(cp: i64) -> Option<&'static Encoding> {
    let label = match cp {
        874 => "windows-874",
        932 => "shift_jis",
        936 => "gbk",
        949 => "euc-kr",
        950 => "big5",
        1250..=1258 => return Encoding::for_label(format!("windows-{cp}").as_bytes()),
        866 => "ibm866",
        10000 => "macintosh",
        20866 => "koi8-r",
        28591 => "iso-8859-1",
        65001 => "utf-8",
        _ => return None,
    };
    Encoding::for_label(label.as_bytes())
}

/// The code page of a font's `\fcharset` (RTF 1.9.1 specification's table).
fn charset(cs: i64) -> Option<&'static Encoding> {
    code_page(match cs {
        0 => 1252,
        77 => 10000,
        128 => 932,
        129 => 949,
        134 => 936,
        136 => 950,
        161 => 1253,
        162 => 1254,
        163 => 1258,
        177 => 1255,
        178 => 1256,
        186 => 1257,
        204 => 1251,
        222 => 874,
        238 => 1250,
        // 1 (default), 2 (symbol) and the rest: the document's code page.
        _ => return None,
    })
}

/// Trims every line (and the cell separator a row ends with) and keeps at most one blank
/// line in a row.
fn tidy(text: &str) -> String {
    super::one_blank_line(
        text.lines()
            .map(|line| line.trim().trim_end_matches(" |").trim_end()),
    )
    .trim()
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::{extract, Format};
    use super::*;

    fn text(rtf: &str) -> String {
        to_text(rtf.as_bytes())
    }

    #[test]
    fn skips_destinations_and_keeps_paragraphs() {
        let rtf = r#"{\rtf1\ansi\deff0{\fonttbl{\f0\froman Times New Roman;}{\f1 Arial;}}
{\colortbl;\red0\green0\blue0;}{\stylesheet{\s1 heading 1;}}
{\info{\title Secret title}{\author Someone}}{\*\generator Writer;}{\header Page header\par}
\pard\plain\f0 Hello, {\b bold} world.\par
Second {\*\bkmkstart x}line\line same paragraph{\*\bkmkend x}.\par
{\pict\wmetafile8 0123456789abcdef}{\field{\*\fldinst HYPERLINK "http://x"}{\fldrslt linked}}\par
Back\\slash \{braces\}\tab tab\par}"#;
        assert_eq!(
            text(rtf),
            "Hello, bold world.\nSecond line\nsame paragraph.\nlinked\nBack\\slash {braces}\ttab"
        );
    }

    #[test]
    fn decodes_hex_escapes_in_the_code_page() {
        // windows-1252 by default.
        assert_eq!(
            text(r"{\rtf1\ansi caf\'e9 \'93quoted\'94}"),
            "café “quoted”"
        );
        // windows-1251 from \ansicpg.
        assert_eq!(
            text(r"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2}"),
            "Привет"
        );
        // A font's charset wins over the document's code page: Greek (161 → 1253).
        assert_eq!(
            text(
                r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Times;}{\f1\fcharset161 Times Greek;}}\f0 a\'e1 {\f1 \'e1\'e2}}"
            ),
            "aá αβ"
        );
        // Shift_JIS double-byte characters arrive as two escapes.
        assert_eq!(text(r"{\rtf1\ansi\ansicpg932 \'93\'fa\'96\'7b}"), "日本");
    }

    #[test]
    fn unicode_escapes_skip_their_fallbacks() {
        assert_eq!(text(r"{\rtf1 \u8220?quoted\u8221? done}"), "“quoted” done");
        assert_eq!(text(r"{\rtf1\uc2 \u-3913\'83\'41 x}"), "\u{f0b7} x");
        assert_eq!(text(r"{\rtf1\uc0 \u233 t\u233}"), "été");
        // A negative value and a surrogate pair (U+1F600).
        assert_eq!(text(r"{\rtf1 \u-10179?\u-8704? smile}"), "😀 smile");
        // \uc is per group.
        assert_eq!(text(r"{\rtf1 {\uc3 \u233 abc}\u233 d}"), "éé");
    }

    #[test]
    fn tables_and_malformed_input() {
        assert_eq!(
            text(r"{\rtf1 \trowd a\cell b\cell\row c\cell d\cell\row}"),
            "a | b\nc | d"
        );
        // Unbalanced, cut off, a huge \bin: still text, no panic.
        assert_eq!(text(r"{\rtf1 one}} two{{{"), "one two");
        assert_eq!(text(r"{\rtf1 x\'"), "x");
        assert_eq!(text(r"{\rtf1 y\bin99999999999999999999 zzz"), "y");
        assert_eq!(text(r"{\rtf1 z\u"), "z");
    }

    #[test]
    fn detected_by_its_prefix() {
        let doc = extract(br"{\rtf1\ansi Hi\par}", "x.txt", None, 1 << 20).unwrap();
        assert_eq!(doc.format, Format::Rtf);
        assert!(!doc.format.has_headings());
        assert_eq!(doc.sections[0].text, "Hi");
        let err =
            extract(br"{\rtf1{\info{\title only metadata}}}", "x", None, 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "the document contains no text");
    }

    fn fixture(name: &str) -> String {
        extract(&crate::extract::fixture(name), name, None, 1 << 22)
            .unwrap()
            .sections
            .remove(0)
            .text
    }

    /// unrtf's test files (Word output). unrtf 0.21.10 itself prints only the title of
    /// rtf-turkish.rtf and drops the curly quotes of its left-double-quotes test.
    #[test]
    fn real_files() {
        assert_eq!(
            fixture("rtf-accents.rtf"),
            "Je crois que j'irai au café où on ne fume pas.   Credo che andrò a un caffè dove nessuno fuma."
        );
        assert_eq!(
            fixture("rtf-cp1251.rtf"),
            "абвгдеёжзийклмнопрстуфхцчшщъыьэюя\nАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ\nabcdefghigklmnopqrstuvwxyz\nABCDEFGHIJKLMNOPQRSTUVWXYZ"
        );
        assert_eq!(
            fixture("rtf-turkish.rtf"),
            "Turkish Alphabet\n\nabcçdefgğhıijklmnoöprsştuüvyz\nABCÇDEFGĞHIİJKLMNOÖPRSŞTUÜVYZ"
        );
        // 118 KB, mostly an EMF picture as hex: none of it reaches the text.
        let text = fixture("rtf-picture.rtf");
        assert!(
            text.starts_with("The effects of CaMKII inhibition on cardiac muscle contractility")
        );
        assert!(text.len() < 6000, "{}", text.len());
        assert!(!text
            .split_whitespace()
            .any(|w| w.len() > 40 && w.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
