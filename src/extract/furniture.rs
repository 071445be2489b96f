//! Page furniture: lines that belong to a document's layout rather than its text. Tables of
//! contents are the costly ones for retrieval: "2.12 Why is R named R? . . . . 10" matches a
//! question almost word for word and would outrank the answer. Body text is never touched:
//! a line is dropped only when it is recognisably furniture on its own.

/// A page label as printed in headers and footers: an arabic or lower/upper-case roman
/// numeral.
pub(super) fn is_page_label(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.len() <= 8
        && (t.chars().all(|c| c.is_ascii_digit())
            || t.chars().all(|c| "ivxlc".contains(c))
            || t.chars().all(|c| "IVXLC".contains(c)))
}

/// A table-of-contents entry: a title, a leader of dots, a page label
/// ("1.1 Legalese . . . . . 1", "Introduction.........iv", "Setup ··· 3").
pub(super) fn is_toc_line(line: &str) -> bool {
    let t = line.trim_end();
    let label_start = t
        .rfind(|c: char| !c.is_ascii_alphanumeric())
        .map_or(0, |i| i + t[i..].chars().next().map_or(1, char::len_utf8));
    if label_start == 0 || !is_page_label(&t[label_start..]) {
        return false;
    }
    let mut dots = 0;
    for c in t[..label_start].chars().rev() {
        match c {
            '.' | '·' | '•' => dots += 1,
            '…' => dots += 3,
            ' ' | '\t' | '\u{a0}' => {}
            _ => break,
        }
    }
    dots >= 4
}

/// A Markdown table-of-contents line: only a link to an anchor on the same page, as a
/// list item or not (`- [Why is the sky blue?](#why-is-the-sky-blue)`).
fn is_markdown_toc_line(line: &str) -> bool {
    let t = line.trim();
    let item = t
        .strip_prefix(['-', '*', '+'])
        .or_else(|| {
            let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            (digits > 0)
                .then(|| &t[digits..])
                .and_then(|r| r.strip_prefix(['.', ')']))
        })
        .map_or(t, str::trim_start);
    let Some(link) = item.strip_prefix('[') else {
        return false;
    };
    link.find("](#").is_some_and(|close| {
        link.ends_with(')') && !link[close + 3..link.len() - 1].contains([')', ' '])
    })
}

/// Plain text and Markdown without their tables of contents (dot-leader lines, and in
/// Markdown lists of in-page links).
pub(super) fn drop_toc_lines(text: String, markdown: bool) -> String {
    let furniture = |l: &str| is_toc_line(l) || (markdown && is_markdown_toc_line(l));
    if !text.lines().any(furniture) {
        return text;
    }
    text.split_inclusive('\n')
        .filter(|l| !furniture(l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_lines_are_recognised_and_prose_is_not() {
        for toc in [
            "1.1 Legalese . . . . . . . . . . 1",
            "2.12 Why is R named R? . . . . . . . . . 10",
            "Introduction..........iv",
            "Setup ········ 3",
            "Index … … 120",
            "13.2 How can I contribute resources to the Debian project?. . . . . . 97",
        ] {
            assert!(is_toc_line(toc), "{toc}");
        }
        for prose in [
            "The value rose by 10.",
            "See section 2.12 on page 10",
            "Wait... 5",
            "and so on . . . and so forth",
            "1.1 Legalese",
            "",
        ] {
            assert!(!is_toc_line(prose), "{prose}");
        }
    }

    #[test]
    fn markdown_tables_of_contents_go_and_links_in_prose_stay() {
        let md = "# FAQ\n\n- [Why?](#why)\n- [How?](#how)\n1. [What?](#what)\n[Who?](#who)  \n\n## Why?\n\n\
                  See [How?](#how) below.\n- [a link](https://example.org)\n- [x](#a) and more\n";
        assert_eq!(
            drop_toc_lines(md.to_string(), true),
            "# FAQ\n\n\n## Why?\n\nSee [How?](#how) below.\n- [a link](https://example.org)\n- [x](#a) and more\n"
        );
        // Plain text keeps what only Markdown makes a link.
        assert_eq!(
            drop_toc_lines("- [Why?](#why)\n".into(), false),
            "- [Why?](#why)\n"
        );
    }
}
