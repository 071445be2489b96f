//! E-mail (`.eml`, MIME): the subject as the heading, who sent it to whom and when as the
//! first lines, then the text part (or the HTML part, as text when there is no plain one),
//! and every attachment ragworker can read as a section of its own under `# Attachment:
//! name`, read by the same extractors as an uploaded file (a PDF, a spreadsheet, a forwarded
//! message, a scanned image through OCR). Attachments that cannot be read are named with
//! the reason, so nothing disappears without a trace.

use mailparse::{DispositionType, MailHeaderMap, ParsedMail};

use super::{Document, ExtractError, Section};

/// Attachments read from one message (a mailing-list digest can carry hundreds).
const MAX_ATTACHMENTS: usize = 50;

/// Reads another document: an attachment, through the extractor of its own format.
pub(super) type ReadAttachment<'a> =
    dyn Fn(&[u8], &str, Option<&str>) -> Result<Document, ExtractError> + 'a;

/// Whether `bytes` start like an Internet message: a block of header lines that names its
/// sender and at least one other standard field.
pub(super) fn looks_like_email(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(16 * 1024)]);
    let mut names = Vec::new();
    for line in head.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue; // a folded header's continuation
        }
        let Some((name, _)) = line.split_once(':') else {
            return false;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return false;
        }
        names.push(name.to_ascii_lowercase());
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    names.len() >= 3
        && has("from")
        && ["subject", "date", "to", "message-id", "mime-version"]
            .iter()
            .any(|n| has(n))
}

/// What a message holds, found by walking its MIME tree.
#[derive(Default)]
struct Parts<'m> {
    plain: Option<String>,
    html: Option<String>,
    attachments: Vec<&'m ParsedMail<'m>>,
}

fn walk<'m>(part: &'m ParsedMail<'m>, parts: &mut Parts<'m>) {
    let mime = part.ctype.mimetype.to_ascii_lowercase();
    let disposition = part.get_content_disposition();
    let named =
        disposition.params.contains_key("filename") || part.ctype.params.contains_key("name");
    if mime.starts_with("multipart/") {
        for sub in &part.subparts {
            walk(sub, parts);
        }
    } else if disposition.disposition == DispositionType::Attachment || mime == "message/rfc822" {
        parts.attachments.push(part);
    } else if mime == "text/plain" && parts.plain.is_none() && !named {
        parts.plain = part.get_body().ok();
    } else if mime == "text/html" && parts.html.is_none() && !named {
        parts.html = part.get_body().ok();
    } else if named {
        // An inline image or document with a name: a file the sender attached.
        parts.attachments.push(part);
    }
}

fn attachment_name(part: &ParsedMail<'_>, index: usize) -> String {
    let disposition = part.get_content_disposition();
    disposition
        .params
        .get("filename")
        .or_else(|| part.ctype.params.get("name"))
        .cloned()
        .unwrap_or_else(|| {
            if part.ctype.mimetype.eq_ignore_ascii_case("message/rfc822") {
                format!("message-{}.eml", index + 1)
            } else {
                format!("attachment-{}", index + 1)
            }
        })
}

/// The message as sections: its header and text, then one per attachment read.
pub(super) fn read(
    bytes: &[u8],
    read_attachment: &ReadAttachment<'_>,
) -> Result<Vec<Section>, ExtractError> {
    let mail = mailparse::parse_mail(bytes).map_err(|e| ExtractError::Corrupt {
        format: "e-mail",
        reason: e.to_string().chars().take(200).collect(),
    })?;
    let mut parts = Parts::default();
    walk(&mail, &mut parts);

    let headers = mail.get_headers();
    let subject = headers
        .get_first_value("Subject")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    let mut text = format!("# {}\n\n", one_line(&subject));
    for field in ["From", "To", "Cc", "Date"] {
        if let Some(value) = headers
            .get_first_value(field)
            .filter(|v| !v.trim().is_empty())
        {
            text.push_str(&format!("{field}: {}\n", one_line(&value)));
        }
    }
    text.push('\n');
    let body = match (parts.plain, parts.html) {
        (Some(plain), _) if !plain.trim().is_empty() => plain,
        (_, Some(html)) => super::html::to_markdown(&html),
        (plain, None) => plain.unwrap_or_default(),
    };
    text.push_str(body.trim());
    text.push('\n');

    let mut sections = vec![Section::new(text, None)];
    let mut unread = Vec::new();
    for (index, part) in parts.attachments.iter().enumerate() {
        let name = attachment_name(part, index);
        if index >= MAX_ATTACHMENTS {
            unread.push(format!(
                "Attachment {name} not read: over {MAX_ATTACHMENTS} attachments"
            ));
            continue;
        }
        let content = match part.get_body_raw() {
            Ok(content) => content,
            Err(e) => {
                unread.push(format!("Attachment {name} not read: {e}"));
                continue;
            }
        };
        match read_attachment(&content, &name, Some(&part.ctype.mimetype)) {
            Ok(doc) => {
                let body: Vec<String> = doc
                    .sections
                    .iter()
                    .map(|s| {
                        if doc.format.has_headings() {
                            demote_headings(&s.text)
                        } else {
                            s.text.clone()
                        }
                    })
                    .collect();
                sections.push(Section {
                    ocr: doc.sections.iter().any(|s| s.ocr),
                    ..Section::new(
                        format!("# Attachment: {name}\n\n{}", body.join("\n\n")),
                        None,
                    )
                });
            }
            Err(e) => unread.push(format!("Attachment {name} not read: {e}")),
        }
    }
    if !unread.is_empty() {
        sections[0].text.push('\n');
        sections[0].text.push_str(&unread.join("\n"));
        sections[0].text.push('\n');
    }
    Ok(sections)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An attachment's Markdown headings one level deeper, under its `# Attachment:` heading.
fn demote_headings(text: &str) -> String {
    let mut fenced = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            let hashes = line.len() - line.trim_start_matches('#').len();
            if !fenced && (1..6).contains(&hashes) && line[hashes..].starts_with(' ') {
                format!("#{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_recognised_by_their_headers() {
        assert!(looks_like_email(
            b"Return-Path: <a@example.org>\r\nFrom: Ada <a@example.org>\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nBody"
        ));
        // Folded header lines continue the one before.
        assert!(looks_like_email(
            b"From: a@example.org\nSubject: a long\n  subject line\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nx"
        ));
        // Prose with a colon, and a YAML front matter, are not messages.
        assert!(!looks_like_email(
            b"Note: this is text\nFrom: here on it is prose\n\nx"
        ));
        assert!(!looks_like_email(
            b"title: A\nauthor: B\ndate: 2024\n\n# A\n"
        ));
    }

    use crate::extract::{extract, fixture, Format};
    use base64::Engine;

    #[test]
    fn the_subject_heads_the_senders_and_the_text() {
        let doc = extract(&fixture("email/msg_01.eml"), "upload.txt", None, 1 << 20).unwrap();
        assert_eq!(doc.format, Format::Email);
        assert_eq!(
            doc.sections[0].text,
            "# This is a test message\n\nFrom: bbb@ddd.com (John X. Doe)\nTo: bbb@zzz.org\n\
             Date: Fri, 4 May 2001 14:05:44 -0400\n\nHi,\n\nDo you like this message?\n\n-Me\n"
        );
    }

    /// The first text part is the body; an attachment that cannot be read is named with the
    /// reason.
    #[test]
    fn unreadable_attachments_are_named_with_their_reason() {
        let doc = extract(&fixture("email/msg_07.eml"), "m.eml", None, 1 << 20).unwrap();
        assert_eq!(doc.sections.len(), 1);
        let text = &doc.sections[0].text;
        assert!(text.starts_with("# Here is your dingus fish\n"), "{text}");
        assert!(
            text.ends_with(
                "Attachment dingusfish.gif not read: GIF image: OCR is disabled (extract.ocr.enabled)\n"
            ),
            "{text}"
        );
        let doc = extract(&fixture("email/msg_08.eml"), "m.eml", None, 1 << 20).unwrap();
        assert!(doc.sections[0].text.starts_with("# Lyrics\n"));
    }

    /// A message written here around a real workbook, with an HTML body only.
    #[test]
    fn readable_attachments_become_sections_under_their_name() {
        let xlsx = fixture("sheets/founders.xlsx");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&xlsx);
        let message = format!(
            "From: Ada <ada@example.org>\r\nTo: team@example.org\r\nSubject: Grades\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <html><body><h1>Term grades</h1><p>See the <b>attached</b> sheet.</p></body></html>\r\n\
             --b1\r\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name=\"founders.xlsx\"\r\n\
             Content-Disposition: attachment; filename=\"founders.xlsx\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
        );
        let doc = extract(message.as_bytes(), "grades.eml", None, 1 << 20).unwrap();
        assert_eq!(doc.sections.len(), 2);
        assert!(
            doc.sections[0].text.contains("# Term grades"),
            "{}",
            doc.sections[0].text
        );
        assert!(doc.sections[0].text.contains("See the attached sheet."));
        assert!(
            doc.sections[1].text.starts_with(
                "# Attachment: founders.xlsx\n\n## Feuille1\n\nfirst_name | last_name | gpa\n"
            ),
            "{}",
            doc.sections[1].text
        );
    }

    #[test]
    fn messages_forwarded_too_deep_stop_with_a_reason() {
        let mut message =
            "From: a@example.org\r\nTo: b@example.org\r\nSubject: innermost\r\n\r\ncore\r\n"
                .to_string();
        for depth in 0..4 {
            message = format!(
                "From: a@example.org\r\nTo: b@example.org\r\nSubject: level {depth}\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"b{depth}\"\r\n\r\n--b{depth}\r\nContent-Type: text/plain\r\n\r\n\
                 text {depth}\r\n--b{depth}\r\nContent-Type: message/rfc822\r\n\r\n{message}\r\n--b{depth}--\r\n"
            );
        }
        let doc = extract(message.as_bytes(), "fwd.eml", None, 1 << 20).unwrap();
        let text: Vec<&str> = doc.sections.iter().map(|s| s.text.as_str()).collect();
        let text = text.join("\n");
        assert!(text.contains("text 3") && text.contains("text 1"), "{text}");
        assert!(text.contains("forwarded more than 3 deep"), "{text}");
    }

    #[test]
    fn headings_move_one_level_down_outside_code() {
        assert_eq!(
            demote_headings("# Title\ntext\n```\n# not a heading\n```\n## Sub\n#hashtag"),
            "## Title\ntext\n```\n# not a heading\n```\n### Sub\n#hashtag"
        );
    }
}
