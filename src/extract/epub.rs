//! EPUB (2 and 3) to Markdown-style text, one section per chapter: META-INF/container.xml
//! names the package document (OPF), whose spine gives the reading order of its manifest's
//! XHTML documents; each goes through the HTML extractor, so chapters keep their headings.
//! The EPUB 3 navigation document and chapters that are only lists of links (an EPUB 2
//! table of contents in the spine) are left out: they repeat every heading.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;
use scraper::{Html, Node};

use super::package::{attr, resolve, Package};
use super::{decode_text, html, ExtractError, Section};

pub(super) fn extract(bytes: &[u8], max_text_bytes: usize) -> Result<Vec<Section>, ExtractError> {
    let mut pkg = Package::open(bytes, "EPUB", max_text_bytes)?;
    let container = pkg.require("META-INF/container.xml")?;
    let opf_path = rootfile(&container)
        .ok_or_else(|| pkg.corrupt("META-INF/container.xml names no package document"))?;
    let opf = pkg
        .read(&opf_path)?
        .ok_or_else(|| pkg.corrupt(format_args!("the package document {opf_path} is missing")))?;
    let chapters = spine(&opf).map_err(|e| pkg.corrupt(format_args!("{opf_path}: {e}")))?;
    if chapters.is_empty() {
        return Err(pkg.corrupt(format_args!("{opf_path} lists no chapters")));
    }
    let mut sections = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for href in chapters {
        let path = resolve(&opf_path, &href);
        // Some producers (SiSU) list a file once per fragment (`ch1.xhtml#o8`): read it once.
        if !seen.insert(path.clone()) {
            continue;
        }
        // A chapter the manifest names but the zip lacks is skipped: readers do the same.
        let Some(bytes) = pkg.read_bytes(&path)? else {
            continue;
        };
        let html_text = decode_text(&bytes);
        if is_link_list(&html_text) {
            continue;
        }
        sections.push(Section::new(html::to_markdown(&html_text), None));
    }
    Ok(sections)
}

/// The package document's path: the first rootfile of the OPF media type (or, lacking the
/// attribute, the first rootfile).
fn rootfile(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut first = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) if e.local_name().as_ref() == "rootfile" => {
                let Some(path) = attr(&e, "full-path") else {
                    continue;
                };
                if attr(&e, "media-type").as_deref() == Some("application/oebps-package+xml") {
                    return Some(path);
                }
                first.get_or_insert(path);
            }
            Ok(Event::Eof) | Err(_) => return first,
            _ => {}
        }
    }
}

/// The hrefs of the spine's (X)HTML documents in reading order, without the navigation
/// document.
fn spine(xml: &str) -> Result<Vec<String>, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    // id → (href, media type, properties)
    let mut manifest: HashMap<String, (String, String, String)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    loop {
        match reader.read_event()? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "item" => {
                    if let (Some(id), Some(href)) = (attr(&e, "id"), attr(&e, "href")) {
                        let media = attr(&e, "media-type").unwrap_or_default();
                        let props = attr(&e, "properties").unwrap_or_default();
                        manifest.insert(id, (href, media, props));
                    }
                }
                "itemref" => {
                    if let Some(id) = attr(&e, "idref") {
                        order.push(id);
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(order
        .iter()
        .filter_map(|id| manifest.get(id))
        .filter(|(_, media, props)| {
            matches!(media.as_str(), "application/xhtml+xml" | "text/html")
                && !props.split_whitespace().any(|p| p == "nav")
        })
        .map(|(href, _, _)| href.clone())
        .collect())
}

/// A document whose text is at least 75% link text, with at least three links: a table of
/// contents or a list of chapters (titles such as "Contents" or the
/// names of parts without a link of their own do not make it prose; the Debian Live manual's
/// contents page is 78% link text).
fn is_link_list(html: &str) -> bool {
    let doc = Html::parse_document(html);
    let (mut linked, mut total, mut links) = (0usize, 0usize, 0usize);
    for node in doc.root_element().descendants() {
        match node.value() {
            Node::Element(e) if e.name() == "a" && e.attr("href").is_some() => links += 1,
            Node::Text(t) => {
                let n = t.chars().filter(|c| !c.is_whitespace()).count();
                let ancestors: Vec<_> = node
                    .ancestors()
                    .filter_map(|a| a.value().as_element().map(|e| e.name()))
                    .collect();
                if ancestors
                    .iter()
                    .any(|a| matches!(*a, "head" | "script" | "style"))
                {
                    continue;
                }
                total += n;
                if ancestors.contains(&"a") {
                    linked += n;
                }
            }
            _ => {}
        }
    }
    links >= 3 && linked * 4 >= total * 3
}

#[cfg(test)]
mod tests {
    use super::super::package::tests::zip_of;
    use super::super::{extract, Format};
    use super::*;

    const CONTAINER: &[u8] = br#"<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;

    fn chapter(body: &str) -> Vec<u8> {
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>{body}</body></html>"#).into_bytes()
    }

    fn book() -> Vec<u8> {
        let opf = br#"<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><manifest>
            <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
            <item id="toc" href="Text/toc.xhtml" media-type="application/xhtml+xml"/>
            <item id="c1" href="Text/one.xhtml" media-type="application/xhtml+xml"/>
            <item id="c2" href="Text/chapter%20two.xhtml" media-type="application/xhtml+xml"/>
            <item id="img" href="cover.jpg" media-type="image/jpeg"/>
            <item id="gone" href="Text/missing.xhtml" media-type="application/xhtml+xml"/>
          </manifest><spine toc="ncx"><itemref idref="nav"/><itemref idref="img"/><itemref idref="toc"/><itemref idref="c2"/><itemref idref="gone"/><itemref idref="c1"/></spine></package>"#;
        zip_of(&[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", CONTAINER),
            ("OEBPS/content.opf", opf),
            ("OEBPS/nav.xhtml", &chapter(r#"<nav><ol><li><a href="Text/one.xhtml">One</a></li></ol></nav><p>Landmarks</p>"#)),
            ("OEBPS/Text/toc.xhtml", &chapter(r#"<h1>Contents</h1><p><a href="one.xhtml">The first chapter</a></p><p><a href="chapter%20two.xhtml">The second chapter</a></p><p><a href="x.xhtml">Notes</a></p>"#)),
            ("OEBPS/Text/one.xhtml", &chapter("<h1>Chapter One</h1><p>It was a dark night.</p><h2>Later</h2><p>Dawn <a href=\"#n1\">1</a> came.</p>")),
            ("OEBPS/Text/chapter two.xhtml", &chapter("<section><h1>Chapter Two</h1><p>Caf\u{e9} at noon.</p></section>")),
        ])
    }

    #[test]
    fn chapters_in_spine_order_without_tables_of_contents() {
        let doc = extract(&book(), "b", None, 1 << 20).unwrap();
        assert_eq!(doc.format, Format::Epub);
        assert!(doc.format.has_headings());
        let texts: Vec<_> = doc.sections.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "# Chapter Two\n\nCafé at noon.",
                "# Chapter One\n\nIt was a dark night.\n\n## Later\n\nDawn came."
            ]
        );
    }

    #[test]
    fn broken_books_are_corrupt_epub() {
        let no_opf = zip_of(&[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", CONTAINER),
        ]);
        let err = extract(&no_opf, "b", None, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt or unreadable EPUB: the package document OEBPS/content.opf is missing"
        );
        let no_container = zip_of(&[("mimetype", b"application/epub+zip")]);
        let err = extract(&no_container, "b", None, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt or unreadable EPUB: META-INF/container.xml is missing"
        );
    }

    /// Many chapters that each inflate a little exceed the budget together.
    #[test]
    fn the_budget_covers_every_chapter() {
        let mut opf = String::from("<package><manifest>");
        let mut spine = String::from("<spine>");
        let big = chapter(&format!("<p>{}</p>", "z".repeat(300 * 1024)));
        let names: Vec<String> = (0..5).map(|i| format!("c{i}.xhtml")).collect();
        for (i, n) in names.iter().enumerate() {
            opf.push_str(&format!(
                r#"<item id="i{i}" href="{n}" media-type="application/xhtml+xml"/>"#
            ));
            spine.push_str(&format!(r#"<itemref idref="i{i}"/>"#));
        }
        opf.push_str(&format!("</manifest>{spine}</spine></package>"));
        let container =
            br#"<container><rootfiles><rootfile full-path="content.opf"/></rootfiles></container>"#;
        let mut parts: Vec<(&str, &[u8])> = vec![
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", container),
            ("content.opf", opf.as_bytes()),
        ];
        for n in &names {
            parts.push((n, &big));
        }
        let bytes = zip_of(&parts);
        let err = extract(&bytes, "b", None, 1000).unwrap_err();
        assert!(matches!(err, ExtractError::Bomb(_)), "{err}");
        // With room for the text, the same book reads.
        let doc = extract(&bytes, "b", None, 4 << 20).unwrap();
        assert_eq!(doc.sections.len(), 5);
    }

    /// The Debian Live manual (English) as Debian ships it, made by SiSU: its spine lists
    /// each chapter file once per fragment (190 entries for 47 files), and its first
    /// document is a table of contents.
    #[test]
    fn real_book() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/live-manual.epub");
        let doc = extract(&std::fs::read(path).unwrap(), "b", None, 1 << 22).unwrap();
        assert_eq!(doc.sections.len(), 46);
        let texts: Vec<&str> = doc.sections.iter().map(|s| s.text.as_str()).collect();
        assert!(!texts
            .iter()
            .any(|t| t.contains("##### 1.1 For the impatient")));
        let about = texts
            .iter()
            .position(|t| t.contains("# 1. About this manual"))
            .unwrap();
        let project = texts
            .iter()
            .position(|t| t.contains("# 2. About the Live Systems Project"))
            .unwrap();
        assert!(about < project);
        assert_eq!(
            texts
                .iter()
                .filter(|t| t.contains("# 1. About this manual"))
                .count(),
            1
        );
    }
}
