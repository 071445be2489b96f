//! PPTX (PresentationML) to Markdown-style text, one section per slide: slides in the order
//! of presentation.xml's slide list (resolved through its relationships, not the part
//! names), the title placeholder as a `#` heading, text boxes and tables in the order of the
//! slide's shape tree, then the speaker notes (the notes slide's body placeholder) under
//! `## Notes`. Charts and SmartArt diagrams keep their text in parts of their own: a
//! chart's titles, series names and category labels, and a diagram's node texts (its data
//! model), are read where the shape stands. Slide numbers, dates and footers are furniture
//! and left out.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::package::{attr, resolve, resolve_ref, Package};
use super::{ExtractError, Section};

const PRESENTATION: &str = "ppt/presentation.xml";

pub(super) fn extract(bytes: &[u8], max_text_bytes: usize) -> Result<Vec<Section>, ExtractError> {
    let mut pkg = Package::open(bytes, "PPTX", max_text_bytes)?;
    let presentation = pkg.require(PRESENTATION)?;
    let rels = relationships(&pkg.require("ppt/_rels/presentation.xml.rels")?);
    let mut sections = Vec::new();
    for (i, rid) in slide_ids(&presentation)
        .map_err(|e| pkg.corrupt(format_args!("{PRESENTATION}: {e}")))?
        .iter()
        .enumerate()
    {
        let number = i as i32 + 1;
        let Some(rel) = rels.iter().find(|r| &r.id == rid) else {
            return Err(pkg.corrupt(format_args!("slide {number} ({rid}) has no relationship")));
        };
        let path = resolve(PRESENTATION, &rel.target);
        let xml = pkg
            .read(&path)?
            .ok_or_else(|| pkg.corrupt(format_args!("slide {number} ({path}) is missing")))?;
        let mut slide =
            shapes(&xml, false).map_err(|e| pkg.corrupt(format_args!("{path}: {e}")))?;
        let slide_rels = part_relationships(&mut pkg, &path)?;
        // From the last, so that the earlier positions still hold.
        for embedded in slide.embedded.iter().rev() {
            if let Some(text) = embedded_text(&mut pkg, &path, &slide_rels, embedded)? {
                let at = embedded.at.min(slide.blocks.len());
                slide.blocks.insert(at, text);
            }
        }
        let notes_path = slide_rels
            .iter()
            .find(|r| r.kind.ends_with("/notesSlide"))
            .map(|r| resolve(&path, &r.target));
        let notes = match notes_path {
            Some(notes_path) => match pkg.read(&notes_path)? {
                Some(xml) => shapes(&xml, true)
                    .map_err(|e| pkg.corrupt(format_args!("{notes_path}: {e}")))?
                    .blocks
                    .join("\n\n"),
                None => String::new(),
            },
            None => String::new(),
        };
        sections.push(Section::new(
            slide_text(number, slide, &notes),
            Some(number),
        ));
    }
    Ok(sections)
}

/// The slide as Markdown: its title (or "Slide N" when it has text but no title, so that its
/// text is not filed under the previous slide's title), its blocks, its notes.
fn slide_text(number: i32, slide: Shapes, notes: &str) -> String {
    let body = slide.blocks.join("\n\n");
    if slide.title.is_empty() && body.is_empty() && notes.is_empty() {
        return String::new();
    }
    let title = if slide.title.is_empty() {
        format!("Slide {number}")
    } else {
        slide.title
    };
    let mut out = format!("# {title}");
    for (heading, text) in [("", body.as_str()), ("## Notes\n\n", notes)] {
        if !text.is_empty() {
            out.push_str("\n\n");
            out.push_str(heading);
            out.push_str(text);
        }
    }
    out
}

struct Relationship {
    id: String,
    kind: String,
    target: String,
}

fn relationships(xml: &str) -> Vec<Relationship> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e))
                if e.local_name().as_ref() == "Relationship" =>
            {
                if attr(&e, "TargetMode").is_some_and(|m| m == "External") {
                    continue;
                }
                if let (Some(id), Some(target)) = (attr(&e, "Id"), attr(&e, "Target")) {
                    out.push(Relationship {
                        id,
                        kind: attr(&e, "Type").unwrap_or_default(),
                        target,
                    });
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// The relationship ids of the slides, in presentation order.
fn slide_ids(xml: &str) -> Result<Vec<String>, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event()? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "sldId" => {
                if let Some(id) = attr_rid(&e) {
                    out.push(id);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// `r:id`: the one attribute named `id` in the relationships namespace (the slide's own
/// numeric `id` has no prefix).
fn attr_rid(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == "id" && a.key.prefix().is_some())
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The relationships of the part at `path` (none when it has no `_rels` part).
fn part_relationships(
    pkg: &mut Package<'_>,
    path: &str,
) -> Result<Vec<Relationship>, ExtractError> {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    Ok(pkg
        .read(&format!("{dir}/_rels/{file}.rels"))?
        .map(|rels| relationships(&rels))
        .unwrap_or_default())
}

/// A chart or SmartArt diagram on a slide, whose text is in the part its relationship names.
struct Embedded {
    /// The block it stands before, in the slide's shape order.
    at: usize,
    rid: String,
    chart: bool,
}

/// The text of a chart or diagram part. A part that is missing or unreadable is left out
/// (the slide's own text still counts), but its size still counts against the budget.
fn embedded_text(
    pkg: &mut Package<'_>,
    slide_path: &str,
    rels: &[Relationship],
    embedded: &Embedded,
) -> Result<Option<String>, ExtractError> {
    let Some(rel) = rels.iter().find(|r| r.id == embedded.rid) else {
        return Ok(None);
    };
    let xml = match pkg.read(&resolve(slide_path, &rel.target)) {
        Ok(Some(xml)) => xml,
        Ok(None) | Err(ExtractError::Corrupt { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = if embedded.chart {
        chart_text(&xml)
    } else {
        diagram_text(&xml)
    };
    Ok(Some(text).filter(|t| !t.is_empty()))
}

/// A chart's visible words: its titles (the chart's and its axes'), one line each, then its
/// series names and the first series' category labels (the others repeat them), each list
/// on a line. The values are left out: the chart shows them as bars, not words.
fn chart_text(xml: &str) -> String {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    let mut title = String::new();
    let (mut names, mut categories) = (Vec::new(), Vec::new());
    let mut series = 0usize;
    // The text of the `a:t` or `c:v` element being read.
    let mut leaf = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if e.local_name().as_ref() == "ser" {
                    series += 1;
                }
                leaf.clear();
                path.push(e.local_name().as_ref().to_string());
            }
            Ok(Event::Text(t)) => leaf.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) => {
                if let Some(s) = resolve_ref(&r) {
                    leaf.push_str(&s);
                }
            }
            Ok(Event::End(_)) => {
                let within = |n: &str| path.iter().any(|p| p == n);
                match path.last().map(String::as_str) {
                    Some("t" | "v") if within("title") => title.push_str(&leaf),
                    Some("v") if within("ser") && within("tx") => names.push(leaf.clone()),
                    Some("v") if within("cat") && series == 1 => categories.push(leaf.clone()),
                    Some("p") if within("title") => title.push(' '),
                    Some("title") if !title.trim().is_empty() => {
                        lines.push(title.split_whitespace().collect::<Vec<_>>().join(" "));
                        title.clear();
                    }
                    _ => {}
                }
                path.pop();
                leaf.clear();
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    for list in [names, categories] {
        let list: Vec<_> = list
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if !list.is_empty() {
            lines.push(list.join(", "));
        }
    }
    lines.join("\n")
}

/// A SmartArt diagram's node texts, a paragraph a line, from its data model (the
/// connector and presentation points carry no text of their own).
fn diagram_text(xml: &str) -> String {
    let mut reader = Reader::from_str(xml);
    let mut lines = Vec::new();
    let mut node = false;
    let mut in_text = false;
    let mut para = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                "pt" => node = matches!(attr(&e, "type").as_deref(), None | Some("node" | "asst")),
                "p" => para.clear(),
                "t" => in_text = true,
                _ => {}
            },
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" if node && !para.trim().is_empty() => lines.push(para.trim().to_string()),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => {
                para.push_str(&t.xml10_content());
            }
            Ok(Event::GeneralRef(r)) if in_text => {
                if let Some(s) = resolve_ref(&r) {
                    para.push_str(&s);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    lines.join("\n")
}

/// What a slide (or notes slide) says.
#[derive(Default)]
struct Shapes {
    /// The title placeholder's paragraphs, joined.
    title: String,
    /// A text box's paragraphs (one a line) or a table's rows, one entry per shape.
    blocks: Vec<String>,
    /// Charts and diagrams, whose text the caller reads from their parts.
    embedded: Vec<Embedded>,
}

/// Placeholders whose text is furniture: the slide number, date, footer, header, and on a
/// notes page the image of the slide.
const FURNITURE: &[&str] = &["sldNum", "dt", "ftr", "hdr", "sldImg"];

/// Walks a slide's shape tree. On a notes slide (`notes`), only the body placeholder (the
/// speaker's notes) counts.
fn shapes(xml: &str, notes: bool) -> Result<Shapes, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut out = Shapes::default();
    let mut title: Vec<String> = Vec::new();
    // The current shape's placeholder type ("obj" when it is a placeholder without one).
    let mut placeholder: Option<String> = None;
    let mut lines: Vec<String> = Vec::new();
    let mut para = String::new();
    let mut in_text = false;
    let mut row: Vec<String> = Vec::new();
    let mut cell: Vec<String> = Vec::new();
    let mut in_cell = false;
    let mut merged = false;
    // Depth inside mc:Fallback, which repeats mc:Choice's content for older readers.
    let mut fallback = 0usize;
    loop {
        let event = reader.read_event()?;
        if fallback > 0 {
            match event {
                Event::Start(e) if e.local_name().as_ref() == "Fallback" => fallback += 1,
                Event::End(e) if e.local_name().as_ref() == "Fallback" => fallback -= 1,
                Event::Eof => break,
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "Fallback" => fallback = 1,
                "sp" | "graphicFrame" => placeholder = None,
                "ph" => placeholder = Some(attr(&e, "type").unwrap_or_else(|| "obj".into())),
                "p" => para.clear(),
                "t" => in_text = true,
                "chart" | "relIds" => embed(&e, &mut out),
                "tc" => {
                    in_cell = true;
                    merged = ["hMerge", "vMerge"]
                        .iter()
                        .any(|a| attr(&e, a).is_some_and(|v| v == "1" || v == "true"));
                    cell.clear();
                }
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "ph" => placeholder = Some(attr(&e, "type").unwrap_or_else(|| "obj".into())),
                "br" => para.push('\n'),
                "chart" | "relIds" => embed(&e, &mut out),
                _ => {}
            },
            Event::Text(t) if in_text => para.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Some(s) = resolve_ref(&r) {
                    para.push_str(&s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    let text = para.trim();
                    let ph = placeholder.as_deref();
                    if text.is_empty() || ph.is_some_and(|p| FURNITURE.contains(&p)) {
                    } else if in_cell {
                        cell.push(text.replace('\n', " "));
                    } else if notes && ph != Some("body") {
                    } else if matches!(ph, Some("title" | "ctrTitle")) {
                        title.push(text.replace('\n', " "));
                    } else {
                        lines.push(text.to_string());
                    }
                }
                "tc" => {
                    in_cell = false;
                    if !merged && !cell.is_empty() {
                        row.push(cell.join(" "));
                    }
                }
                "tr" => {
                    if !row.is_empty() {
                        lines.push(row.join(" | "));
                    }
                    row.clear();
                }
                "sp" | "graphicFrame" => {
                    if !lines.is_empty() {
                        out.blocks.push(lines.join("\n"));
                        lines.clear();
                    }
                    placeholder = None;
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if !lines.is_empty() {
        out.blocks.push(lines.join("\n"));
    }
    out.title = title.join(" ");
    Ok(out)
}

/// Notes a chart (`c:chart r:id`) or SmartArt diagram (`dgm:relIds r:dm`, its data model)
/// to be read where it stands, after the blocks so far.
fn embed(e: &quick_xml::events::BytesStart<'_>, out: &mut Shapes) {
    let chart = e.local_name().as_ref() == "chart";
    let rid = if chart { attr_rid(e) } else { attr(e, "dm") };
    if let Some(rid) = rid {
        out.embedded.push(Embedded {
            at: out.blocks.len(),
            rid,
            chart,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::package::tests::zip_of;
    use super::*;

    const NS: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main""#;

    fn sp(ph: Option<&str>, paras: &[&str]) -> String {
        let ph = match ph {
            Some("") => "<p:nvPr><p:ph idx=\"1\"/></p:nvPr>".to_string(),
            Some(t) => format!("<p:nvPr><p:ph type=\"{t}\"/></p:nvPr>"),
            None => "<p:nvPr/>".to_string(),
        };
        let paras: String = paras
            .iter()
            .map(|p| format!("<a:p><a:r><a:rPr lang=\"en-GB\"/><a:t>{p}</a:t></a:r></a:p>"))
            .collect();
        format!("<p:sp><p:nvSpPr><p:cNvPr id=\"2\" name=\"x\"/><p:cNvSpPr/>{ph}</p:nvSpPr><p:txBody><a:bodyPr/>{paras}</p:txBody></p:sp>")
    }

    fn slide(shapes: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\"?><p:sld {NS}><p:cSld><p:spTree>{shapes}</p:spTree></p:cSld></p:sld>").into_bytes()
    }

    /// Three slides whose part names run against their order in the slide list, the second
    /// with a table, the third with speaker notes.
    fn deck() -> Vec<u8> {
        let presentation = format!(
            r#"<p:presentation {NS}><p:sldIdLst><p:sldId id="258" r:id="rId9"/><p:sldId id="256" r:id="rId2"/><p:sldId id="257" r:id="rId3"/></p:sldIdLst></p:presentation>"#
        );
        let rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide1.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="/ppt/slides/slide2.xml"/><Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide3.xml"/></Relationships>"#;
        let first = slide(&format!(
            "{}{}{}",
            sp(Some("ctrTitle"), &["Harbour &amp; tides"]),
            sp(Some("subTitle"), &["Spring report"]),
            sp(Some("sldNum"), &["1"]),
        ));
        let table = r#"<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="4" name="T"/><p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>Berth</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>Depth</a:t></a:r></a:p></a:txBody></a:tc></a:tr><a:tr><a:tc gridSpan="2"><a:txBody><a:p><a:r><a:t>North quay</a:t></a:r></a:p></a:txBody></a:tc><a:tc hMerge="1"><a:txBody><a:p><a:r><a:t>North quay</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>"#;
        let second = slide(&format!(
            "{}{}{table}",
            sp(Some("title"), &["Berths"]),
            sp(Some(""), &["Dredged in March", "Buoys relaid"]),
        ));
        let third = slide(&sp(None, &["A text box, no title"]));
        let third_rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slideLayout" Target="../slideLayouts/slideLayout1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" Target="../notesSlides/notesSlide7.xml"/></Relationships>"#;
        let notes = format!(
            "<p:notes {NS}><p:cSld><p:spTree>{}{}{}</p:spTree></p:cSld></p:notes>",
            sp(Some("sldImg"), &[]),
            sp(Some("body"), &["Mention the dredging budget."]),
            sp(Some("sldNum"), &["3"]),
        );
        zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("ppt/presentation.xml", presentation.as_bytes()),
            ("ppt/_rels/presentation.xml.rels", rels.as_bytes()),
            ("ppt/slides/slide1.xml", &second),
            ("ppt/slides/slide2.xml", &third),
            ("ppt/slides/slide3.xml", &first),
            ("ppt/slides/_rels/slide2.xml.rels", third_rels.as_bytes()),
            ("ppt/notesSlides/notesSlide7.xml", notes.as_bytes()),
        ])
    }

    #[test]
    fn slides_in_list_order_with_titles_tables_and_notes() {
        let sections = extract(&deck(), 1 << 20).unwrap();
        let pages: Vec<_> = sections.iter().map(|s| s.page).collect();
        assert_eq!(pages, [Some(1), Some(2), Some(3)]);
        assert_eq!(sections[0].text, "# Harbour & tides\n\nSpring report");
        assert_eq!(
            sections[1].text,
            "# Berths\n\nDredged in March\nBuoys relaid\n\nBerth | Depth\nNorth quay"
        );
        assert_eq!(
            sections[2].text,
            "# Slide 3\n\nA text box, no title\n\n## Notes\n\nMention the dredging budget."
        );
    }

    #[test]
    fn through_extract_it_is_a_pptx_with_headings() {
        let doc = super::super::extract(&deck(), "deck.bin", None, 1 << 20).unwrap();
        assert_eq!(doc.format, super::super::Format::Pptx);
        assert!(doc.format.has_headings());
        assert_eq!(doc.sections.len(), 3);
    }

    #[test]
    fn missing_parts_are_corrupt_pptx() {
        let bytes = zip_of(&[("ppt/slides/slide1.xml", &slide(""))]);
        let err = super::super::extract(&bytes, "a.pptx", None, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt or unreadable PPTX: ppt/presentation.xml is missing"
        );
        let mut bytes = deck();
        let len = bytes.len();
        bytes.truncate(len / 2);
        let err = super::super::extract(&bytes, "a.pptx", None, 1 << 20).unwrap_err();
        assert!(
            err.to_string().starts_with("unsupported file type: ZIP")
                || err.to_string().starts_with("corrupt or unreadable PPTX"),
            "{err}"
        );
    }

    #[test]
    fn an_inflating_slide_is_a_bomb() {
        let presentation = format!(
            r#"<p:presentation {NS}><p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>"#
        );
        let rels = r#"<Relationships><Relationship Id="rId2" Type="x/slide" Target="slides/slide1.xml"/></Relationships>"#;
        let huge = slide(&sp(None, &[&"a".repeat(3 << 20)]));
        let bytes = zip_of(&[
            ("ppt/presentation.xml", presentation.as_bytes()),
            ("ppt/_rels/presentation.xml.rels", rels.as_bytes()),
            ("ppt/slides/slide1.xml", &huge),
        ]);
        assert!(bytes.len() < 64 * 1024);
        let err = super::super::extract(&bytes, "a.pptx", None, 1000).unwrap_err();
        assert!(matches!(err, ExtractError::Bomb(_)), "{err}");
    }

    #[test]
    fn a_chart_gives_its_titles_series_and_categories_once() {
        let chart = r#"<c:chartSpace xmlns:c="c" xmlns:a="a"><c:chart><c:title><c:tx><c:rich><a:p><a:r><a:t>Tides &amp; </a:t></a:r><a:r><a:t>depths</a:t></a:r></a:p></c:rich></c:tx></c:title><c:plotArea><c:barChart>
            <c:ser><c:tx><c:strRef><c:f>Sheet1!$B$1</c:f><c:strCache><c:pt idx="0"><c:v>North quay</c:v></c:pt></c:strCache></c:strRef></c:tx><c:cat><c:strRef><c:f>Sheet1!$A$2:$A$3</c:f><c:strCache><c:pt idx="0"><c:v>March</c:v></c:pt><c:pt idx="1"><c:v>April</c:v></c:pt></c:strCache></c:strRef></c:cat><c:val><c:numRef><c:numCache><c:pt idx="0"><c:v>8.2</c:v></c:pt></c:numCache></c:numRef></c:val></c:ser>
            <c:ser><c:tx><c:v>South quay</c:v></c:tx><c:cat><c:strRef><c:strCache><c:pt idx="0"><c:v>March</c:v></c:pt><c:pt idx="1"><c:v>April</c:v></c:pt></c:strCache></c:strRef></c:cat></c:ser>
            </c:barChart><c:valAx><c:title><c:tx><c:rich><a:p><a:r><a:t>Metres</a:t></a:r></a:p></c:rich></c:tx></c:title></c:valAx></c:plotArea></c:chart></c:chartSpace>"#;
        assert_eq!(
            chart_text(chart),
            "Tides & depths\nMetres\nNorth quay, South quay\nMarch, April"
        );
    }

    use crate::extract::fixture;

    /// python-pptx's test decks (real PowerPoint-made parts).
    #[test]
    fn real_decks() {
        let doc = super::super::extract(&fixture("pptx-title.pptx"), "t", None, 1 << 20).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(
            doc.sections[0].text,
            "# Presentation Title Text\n\nSubtitle Text"
        );
        let doc = super::super::extract(&fixture("pptx-notes.pptx"), "t", None, 1 << 20).unwrap();
        let notes: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.page, s.text.as_str()))
            .collect();
        // The notes page's slide-number placeholder ("1") is left out; slide 2 is empty.
        assert_eq!(notes, [(Some(1), "# Slide 1\n\n## Notes\n\nNotes")]);
        let doc = super::super::extract(&fixture("pptx-table.pptx"), "t", None, 1 << 20).unwrap();
        let table = doc.sections.iter().find(|s| s.page == Some(3)).unwrap();
        assert_eq!(table.text, "# Slide 3\n\na | b | c\nd | e | f\ng | h | i");
    }

    /// python-pptx's shp-shapes.pptx, made in PowerPoint: text boxes, a picture, a table, a
    /// pie chart and a SmartArt process diagram on one slide.
    #[test]
    fn charts_and_smartart_are_read_where_they_stand() {
        let doc = super::super::extract(&fixture("pptx-shapes.pptx"), "t", None, 1 << 20).unwrap();
        let text = &doc.sections[0].text;
        assert!(
            text.contains("shapes[4]\nSales\n1st Qtr, 2nd Qtr, 3rd Qtr, 4th Qtr"),
            "{text}"
        );
        assert!(text.contains("shapes[5]\nSmart Art"), "{text}");
    }
}
