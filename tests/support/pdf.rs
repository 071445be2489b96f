//! Simple multi-page PDFs from text (Helvetica, 12 words a line, 50 lines a page), shared
//! by the tests and the ingestion benchmark (which includes this file by path).

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Object, Stream};

/// A PDF of `text`, its words laid out 12 to a line and 50 lines to a page.
pub fn pdf(text: &str) -> Vec<u8> {
    with_font(text, |_| dictionary! {})
}

/// [`pdf`] whose font has a ToUnicode map that pdf-extract's CMap parser panics on (a range
/// mapped to three UTF-16 units): ragworker reads such a file again without the map.
#[allow(dead_code)] // the tests', not the benchmark's
pub fn pdf_with_panicking_cmap(text: &str) -> Vec<u8> {
    with_font(text, |doc| {
        let cmap = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap \
                    1 begincodespacerange <00> <FF> endcodespacerange \
                    1 beginbfrange <01> <01> <006600660069> endbfrange \
                    endcmap CMapName currentdict /CMap defineresource pop end end";
        let map_id = doc.add_object(Stream::new(dictionary! {}, cmap.as_bytes().to_vec()));
        dictionary! { "Encoding" => "WinAnsiEncoding", "ToUnicode" => map_id }
    })
}

/// The layout of [`pdf`] in Helvetica, with `extra` entries in the font dictionary.
fn with_font(text: &str, extra: impl FnOnce(&mut lopdf::Document) -> lopdf::Dictionary) -> Vec<u8> {
    let mut doc = lopdf::Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let mut font = dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    };
    font.extend(&extra(&mut doc));
    let font_id = doc.add_object(font);
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let lines: Vec<String> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(12)
        .map(|w| w.join(" "))
        .collect();
    let mut kids = Vec::new();
    for page in lines.chunks(50) {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 10.into()]),
            Operation::new("TL", vec![14.into()]),
            Operation::new("Td", vec![50.into(), 780.into()]),
        ];
        for line in page {
            ops.push(Operation::new(
                "Tj",
                vec![Object::string_literal(line.as_str())],
            ));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops }.encode().unwrap();
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        kids.push(Object::from(doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        })));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}
