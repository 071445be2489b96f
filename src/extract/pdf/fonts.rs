//! Repairs to what pdf-extract is given and what it reports about fonts, where its
//! assumptions do not hold for a file: Type 3 fonts' own glyph space, and font resources its
//! parsers panic on (a panic costs every page of the file, not just the font's text).

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pdf_extract::{Dictionary, Document, Object, ObjectId};

use super::layout::Glyph;

/// Restates the widths of Type 3 fonts in the thousandths of text space that pdf-extract
/// assumes for every font. It advances each glyph by width / 1000 × size, which is right for
/// Type 1 and TrueType fonts, whose glyph space is fixed at 1/1000; a Type 3 font states its
/// own in /FontMatrix. dvips' bitmap fonts say `[1 0 0 -1 0 0]`, so their glyphs were placed a
/// thousandth of their advance apart and no word gap survived ("dottyisagrapheditor").
/// Scaling /Widths by the matrix's horizontal scale × 1000 gives pdf-extract true advances.
pub(super) fn scale_type3_widths(doc: &mut Document) {
    let numbers = |object: &Object| -> Option<Vec<f32>> {
        let (_, array) = doc.dereference(object).ok()?;
        array
            .as_array()
            .ok()?
            .iter()
            .map(|n| n.as_float().ok())
            .collect()
    };
    let mut scaled = Vec::new();
    for (id, font, _) in fonts(doc).filter(|f| f.2 == b"Type3") {
        let matrix = font.get(b"FontMatrix").ok().and_then(numbers);
        let Some(&[a, ..]) = matrix.as_deref() else {
            continue;
        };
        let scale = a * 1000.0;
        // The common matrix [0.001 0 0 0.001 0 0] needs nothing; a mirrored or degenerate one
        // is left as it is rather than guessed at.
        if !(scale.is_finite() && scale > 0.0) || (scale - 1.0).abs() < 1e-6 {
            continue;
        }
        if let Some(widths) = font.get(b"Widths").ok().and_then(numbers) {
            let widths = widths
                .into_iter()
                .map(|w| Object::Real(w * scale))
                .collect();
            scaled.push((id, widths));
        }
    }
    for (id, widths) in scaled {
        if let Some(Object::Dictionary(font)) = doc.objects.get_mut(&id) {
            font.set("Widths", Object::Array(widths));
        }
    }
}

/// The font dictionaries among a document's objects, with their subtype.
fn fonts(doc: &Document) -> impl Iterator<Item = (ObjectId, &Dictionary, &[u8])> {
    doc.objects.iter().filter_map(|(&id, object)| {
        let font = object.as_dict().ok()?;
        let subtype = font.get(b"Subtype").and_then(Object::as_name).ok()?;
        let kinds: [&[u8]; 5] = [b"Type0", b"Type1", b"MMType1", b"TrueType", b"Type3"];
        kinds.contains(&subtype).then_some((id, font, subtype))
    })
}

/// Gives glyphs whose size is implausible a size their advances imply. pdf-extract reports
/// the size a text operator set (`Tf`), which is the em only in the 1/1000 glyph space of
/// Type 1 and TrueType fonts; a Type 3 font scales its glyphs by its own /FontMatrix, and
/// dvips' bitmap fonts are drawn at `1 Tf` with glyphs some hundred units wide, so their text
/// came out as 0.12 pt with letters 5 pt apart and every word stood apart as a column.
/// Glyphs of one size on a page are one font at one scale; when their median advance is
/// over two sizes (a text font's average advance is about half an em, a monospaced one's
/// 0.6), their size becomes twice that median.
pub(super) fn size_from_advances(glyphs: &mut [Glyph]) {
    let mut advances: HashMap<u64, Vec<f64>> = HashMap::new();
    for g in glyphs.iter() {
        advances.entry(g.size.to_bits()).or_default().push(g.width);
    }
    let mut resized: HashMap<u64, f64> = HashMap::new();
    for (size, mut widths) in advances {
        let middle = widths.len() / 2;
        let (_, median, _) = widths.select_nth_unstable_by(middle, f64::total_cmp);
        if *median > 2.0 * f64::from_bits(size) {
            resized.insert(size, 2.0 * *median);
        }
    }
    if resized.is_empty() {
        return;
    }
    for g in glyphs.iter_mut() {
        if let Some(&size) = resized.get(&g.size.to_bits()) {
            g.size = size;
        }
    }
}

/// Reads once the encoding built into each embedded Type 1 font that has no /Encoding of its
/// own, and states it as the font's /Encoding. pdf-extract builds its fonts again on every page
/// (its cache is per page) and parses the whole font program (/FontFile) each time only for
/// this encoding: 56 % of the time on R's manuals. The stated encoding is what pdf-extract
/// would make of the program's (PDFDocEncoding, then the program's glyph names), so the text
/// is the same; with the encoding stated, the program is no longer read and goes.
pub(super) fn encodings_from_programs(doc: &mut Document) {
    let mut stated = Vec::new();
    let mut programs = Vec::new();
    for (id, font, _) in fonts(doc).filter(|f| f.2 == b"Type1") {
        let Ok(descriptor) = font.get(b"FontDescriptor").and_then(Object::as_reference) else {
            continue;
        };
        let program = doc
            .get_dictionary(descriptor)
            .and_then(|d| d.get(b"FontFile"))
            .and_then(|f| doc.dereference(f))
            .and_then(|(_, f)| f.as_stream());
        let Ok(program) = program else {
            continue;
        };
        if !font.has(b"Encoding") {
            let bytes = stream_bytes(program);
            let parsed = catch_unwind(|| type1_encoding_parser::get_encoding_map(&bytes));
            // A program pdf-extract cannot read stays, and fails as it did.
            let Ok(Ok(map)) = parsed else {
                continue;
            };
            let mut codes: Vec<_> = map.into_iter().collect();
            codes.sort_unstable();
            let differences = codes
                .into_iter()
                .flat_map(|(code, name)| [Object::Integer(code.into()), Object::Name(name)])
                .collect();
            stated.push((id, differences));
        }
        programs.push(descriptor);
    }
    for (id, differences) in stated {
        if let Some(Object::Dictionary(font)) = doc.objects.get_mut(&id) {
            let mut encoding = Dictionary::new();
            encoding.set("Differences", Object::Array(differences));
            font.set("Encoding", Object::Dictionary(encoding));
        }
    }
    // Only once every font that shares a descriptor has its encoding stated.
    let still_read: HashSet<ObjectId> = fonts(doc)
        .filter(|(_, font, _)| !font.has(b"Encoding"))
        .filter_map(|(_, font, _)| {
            font.get(b"FontDescriptor")
                .and_then(Object::as_reference)
                .ok()
        })
        .collect();
    for id in programs {
        if still_read.contains(&id) {
            continue;
        }
        if let Some(Object::Dictionary(descriptor)) = doc.objects.get_mut(&id) {
            descriptor.remove(b"FontFile");
        }
    }
}

/// Rewrites each /ToUnicode CMap in the fewest entries that map the same codes to the same
/// text: runs of consecutive codes with consecutive characters become one range. pdf-extract
/// parses a font's CMap again on every page (see `encodings_from_programs`) with a parser
/// whose cost grows with the entries, and TeX writes one entry per glyph: this parsing was
/// 57 % of the time on R's manuals once font programs were no longer parsed. The rewritten
/// CMap is parsed back and kept only when it gives exactly the original's map, so the text
/// cannot change; a CMap the parser rejects is left for `drop_unreadable_maps`.
pub(super) fn compact_unicode_maps(doc: &mut Document) {
    // A set: fonts often share one CMap, which is compacted once.
    let maps: HashSet<ObjectId> = fonts(doc)
        .filter_map(|(_, font, _)| font.get(b"ToUnicode").and_then(Object::as_reference).ok())
        .collect();
    for id in maps {
        let Ok(stream) = doc.get_object(id).and_then(Object::as_stream) else {
            continue;
        };
        let original = stream_bytes(stream);
        let Some(map) = unicode_map(&original) else {
            continue;
        };
        let compact = compact_cmap(&map);
        if compact.len() >= original.len() || unicode_map(&compact).as_ref() != Some(&map) {
            continue;
        }
        if let Ok(Object::Stream(stream)) = doc.get_object_mut(id) {
            stream.set_plain_content(compact);
        }
    }
}

/// Where Debian's poppler-data keeps, for each of Adobe's CJK character collections, the
/// Unicode of every CID (one hexadecimal code point per line, line n for CID n).
const CID_TO_UNICODE_DIR: &str = "/usr/share/poppler/cidToUnicode";

/// Gives CID fonts without a /ToUnicode map one from their character collection. Japanese,
/// Chinese and Korean PDFs often set text in a CID font of one of Adobe's collections
/// (Adobe-Japan1, -GB1, -CNS1, -Korea1) with the Identity encoding and no map: the CIDs are
/// the collection's, and poppler reads them through poppler-data's tables. pdf-extract has
/// no such tables and gave nothing for every such glyph (pdfminer's `nlp2004slides.pdf`
/// kept only its bullets). The map covers the CIDs the document's text could use (every
/// two-byte pair of the strings its content streams show), because pdf-extract parses it
/// again on every page. Without poppler-data (Debian's `poppler-data`), nothing changes.
pub(super) fn collection_unicode_maps(doc: &mut Document) {
    let mut wanting: Vec<(ObjectId, String)> = Vec::new();
    for (id, font, subtype) in fonts(doc) {
        if subtype != b"Type0" || font.has(b"ToUnicode") {
            continue;
        }
        let identity = font
            .get(b"Encoding")
            .and_then(Object::as_name)
            .is_ok_and(|e| e == b"Identity-H" || e == b"Identity-V");
        let info = font
            .get(b"DescendantFonts")
            .and_then(|d| doc.dereference(d))
            .and_then(|(_, d)| d.as_array())
            .ok()
            .and_then(|d| d.first())
            .and_then(|d| doc.dereference(d).ok())
            .and_then(|(_, d)| d.as_dict().ok())
            .and_then(|d| d.get(b"CIDSystemInfo").ok())
            .and_then(|i| doc.dereference(i).ok())
            .and_then(|(_, i)| i.as_dict().ok());
        let text = |key: &[u8]| {
            info.and_then(|i| i.get(key).and_then(Object::as_str).ok())
                .map(|s| String::from_utf8_lossy(s).into_owned())
        };
        let ordering =
            text(b"Ordering").filter(|o| ["Japan1", "GB1", "CNS1", "Korea1"].contains(&o.as_str()));
        if let (true, Some("Adobe"), Some(ordering)) =
            (identity, text(b"Registry").as_deref(), ordering)
        {
            wanting.push((id, ordering));
        }
    }
    if wanting.is_empty() {
        return;
    }
    let used = shown_pairs(doc);
    let mut made: HashMap<String, Option<ObjectId>> = HashMap::new();
    for (font, ordering) in wanting {
        let map = *made.entry(ordering.clone()).or_insert_with(|| {
            let table =
                std::fs::read_to_string(format!("{CID_TO_UNICODE_DIR}/Adobe-{ordering}")).ok()?;
            let map: HashMap<u32, Vec<u8>> = table
                .lines()
                .enumerate()
                .filter(|(cid, _)| used.contains(&(*cid as u32)))
                .filter_map(|(cid, hex)| {
                    let c = char::from_u32(u32::from_str_radix(hex.trim(), 16).ok()?)?;
                    let units: Vec<u8> = c
                        .encode_utf16(&mut [0; 2])
                        .iter()
                        .flat_map(|u| u.to_be_bytes())
                        .collect();
                    (c != '\0').then_some((cid as u32, units))
                })
                .collect();
            let stream = pdf_extract::Stream::new(Dictionary::new(), compact_cmap(&map));
            let id = (doc.max_id + 1, 0);
            doc.max_id += 1;
            doc.objects.insert(id, Object::Stream(stream));
            Some(id)
        });
        if let (Some(map), Some(Object::Dictionary(font))) = (map, doc.objects.get_mut(&font)) {
            font.set("ToUnicode", Object::Reference(map));
        }
    }
}

/// Every two-byte pair at an even offset of the strings the document's pages and forms show:
/// the codes (with the Identity encoding, the CIDs) its two-byte fonts can draw.
fn shown_pairs(doc: &Document) -> HashSet<u32> {
    let mut pairs = HashSet::new();
    // One stream decoded at a time: a long document's pages are never all in memory at once.
    let pages = doc.get_pages();
    let page_contents = pages
        .values()
        .filter_map(|&page| doc.get_page_content(page).ok());
    let forms = doc.objects.values().filter_map(|o| {
        let stream = o.as_stream().ok()?;
        let form = stream.dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Form");
        form.then(|| stream_bytes(stream))
    });
    let mut strings = |object: &Object| {
        if let Object::String(bytes, _) = object {
            pairs.extend(
                bytes
                    .chunks_exact(2)
                    .map(|p| u32::from(u16::from_be_bytes([p[0], p[1]]))),
            );
        }
    };
    for content in page_contents.chain(forms) {
        let Ok(content) = pdf_extract::content::Content::decode(&content) else {
            continue;
        };
        for operation in content.operations {
            for operand in &operation.operands {
                strings(operand);
                if let Object::Array(items) = operand {
                    items.iter().for_each(&mut strings);
                }
            }
        }
    }
    pairs
}

/// A CMap's code-to-text map as pdf-extract's parser reads it, or `None` where it fails.
fn unicode_map(bytes: &[u8]) -> Option<HashMap<u32, Vec<u8>>> {
    catch_unwind(AssertUnwindSafe(|| {
        adobe_cmap_parser::get_unicode_map(bytes)
    }))
    .ok()?
    .ok()
}

/// The map as ranges (runs of codes whose text is one UTF-16 unit, each the one after the
/// last) and single entries, in the CMap syntax pdf-extract's parser reads.
fn compact_cmap(map: &HashMap<u32, Vec<u8>>) -> Vec<u8> {
    let unit = |v: &[u8]| <[u8; 2]>::try_from(v).ok().map(u16::from_be_bytes);
    let mut codes: Vec<(&u32, &Vec<u8>)> = map.iter().collect();
    codes.sort_unstable_by_key(|(code, _)| **code);
    let (mut ranges, mut singles) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < codes.len() {
        let (&first, text) = codes[i];
        let mut j = i + 1;
        if let Some(start) = unit(text) {
            while j < codes.len()
                && *codes[j].0 == first + (j - i) as u32
                && unit(codes[j].1).map(u32::from) == Some(u32::from(start) + (j - i) as u32)
            {
                j += 1;
            }
        }
        if j - i > 1 {
            let last = *codes[j - 1].0;
            let (lo, hi) = (code_hex(first, last), code_hex(last, last));
            ranges.push(format!("<{lo}> <{hi}> <{}>", hex(text)));
        } else {
            singles.push(format!("<{}> <{}>", code_hex(first, first), hex(text)));
        }
        i = j;
    }
    let mut out = String::new();
    // The parser reads each block's count from the token before it; 100 per block, as
    // PDF's CMaps limit them.
    for block in ranges.chunks(100) {
        out += &format!(
            "{} beginbfrange\n{}\nendbfrange\n",
            block.len(),
            block.join("\n")
        );
    }
    for block in singles.chunks(100) {
        out += &format!(
            "{} beginbfchar\n{}\nendbfchar\n",
            block.len(),
            block.join("\n")
        );
    }
    out.into_bytes()
}

/// A code in as many bytes as `widest` needs (the parser reads codes as big-endian numbers),
/// so that a range's two ends have one width.
fn code_hex(code: u32, widest: u32) -> String {
    let bytes = (4 - widest.leading_zeros() as usize / 8).max(1);
    hex(&code.to_be_bytes()[4 - bytes..])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes from a document the font resources pdf-extract's parsers panic on, so that a
/// second attempt reads the rest of the file with positions instead of lopdf's extraction,
/// which runs the words of a line together. Called only after a first attempt panicked.
/// Returns whether anything was removed (if not, a second attempt would panic again).
/// - A /ToUnicode CMap its CMap parser rejects (why3's manual: "bad length of hexstring")
///   goes: the font's encoding then names its glyphs, as it does for fonts without one.
/// - A simple font that has a readable /ToUnicode loses its embedded CFF program
///   (/FontFile3), which pdf-extract reads only for glyph names and which it panics on when a
///   name maps to half a surrogate pair (txfonts' documentation); the CMap says the same.
/// - Those glyph names in an encoding's /Differences become `.notdef` (`drop_surrogate_names`).
pub(super) fn drop_unreadable_maps(doc: &mut Document) -> bool {
    let mut maps = Vec::new();
    let mut programs = Vec::new();
    for (id, font, subtype) in fonts(doc) {
        let Ok(map) = font.get(b"ToUnicode") else {
            continue;
        };
        let readable = doc
            .dereference(map)
            .ok()
            .and_then(|(_, map)| map.as_stream().ok())
            .is_some_and(|stream| cmap_is_readable(&stream_bytes(stream)));
        if !readable {
            maps.push(id);
            continue;
        }
        let simple = !matches!(subtype, b"Type0" | b"Type3");
        let descriptor = font.get(b"FontDescriptor").and_then(Object::as_reference);
        if let (true, Ok(descriptor)) = (simple, descriptor) {
            let embedded = doc
                .get_dictionary(descriptor)
                .is_ok_and(|d| d.has(b"FontFile3"));
            if embedded {
                programs.push(descriptor);
            }
        }
    }
    let mut changed = !maps.is_empty() || !programs.is_empty();
    for object in doc.objects.values_mut() {
        let Object::Dictionary(dict) = object else {
            continue;
        };
        changed |= drop_surrogate_names(dict);
        if let Ok(Object::Dictionary(encoding)) = dict.get_mut(b"Encoding") {
            changed |= drop_surrogate_names(encoding);
        }
    }
    for id in maps {
        if let Some(Object::Dictionary(font)) = doc.objects.get_mut(&id) {
            font.remove(b"ToUnicode");
        }
    }
    for id in programs {
        if let Some(Object::Dictionary(descriptor)) = doc.objects.get_mut(&id) {
            descriptor.remove(b"FontFile3");
        }
    }
    changed
}

/// Glyph names that pdf-extract's glyph list maps to a lone surrogate (TeX's private codes
/// D801–D80D), which it then unwraps as UTF-16. None of them is text: an empty slot, a
/// compound-word mark, small-capital ligatures.
const SURROGATE_NAMES: [&[u8]; 13] = [
    b"FFIsmall",
    b"FFLsmall",
    b"FFsmall",
    b"FIsmall",
    b"FLsmall",
    b"Germandblssmall",
    b"SSsmall",
    b"altselector",
    b"ascendercompwordmark",
    b"capitalcompwordmark",
    b"emptyslot",
    b"interrobangdown",
    b"ringfitted",
];

/// Renames the glyphs of an encoding's /Differences that are in `SURROGATE_NAMES` to
/// `.notdef`; returns whether there were any.
fn drop_surrogate_names(encoding: &mut Dictionary) -> bool {
    let Ok(Object::Array(differences)) = encoding.get_mut(b"Differences") else {
        return false;
    };
    let mut changed = false;
    for entry in differences.iter_mut() {
        if let Object::Name(name) = entry {
            if SURROGATE_NAMES.contains(&name.as_slice()) {
                *name = b".notdef".to_vec();
                changed = true;
            }
        }
    }
    changed
}

/// A stream's bytes as pdf-extract reads them: decoded when its filters are known.
fn stream_bytes(stream: &pdf_extract::Stream) -> Vec<u8> {
    stream
        .decompressed_content()
        .unwrap_or_else(|_| stream.content.clone())
}

/// Whether pdf-extract can read a /ToUnicode CMap: its parser accepts it and every value is
/// whole UTF-16 code units (pdf-extract asserts both).
fn cmap_is_readable(bytes: &[u8]) -> bool {
    match catch_unwind(AssertUnwindSafe(|| {
        adobe_cmap_parser::get_unicode_map(bytes)
    })) {
        Ok(Ok(map)) => map.values().all(|v| v.len() % 2 == 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compacted_cmap_maps_every_code_as_the_original_does() {
        // One entry per glyph as TeX writes them: runs of letters, a ligature (three units),
        // Greek capitals out of order, a two-byte code, a code to half a surrogate pair.
        let mut chars: Vec<String> = (0x41..=0x5a)
            .chain(0x61..=0x7a)
            .map(|c| format!("<{c:02X}> <{c:04X}>"))
            .collect();
        chars.extend(
            [
                "<0B> <006600660069>",
                "<02> <0398>",
                "<03> <039B>",
                "<0104> <0105>",
            ]
            .map(String::from),
        );
        chars.push("<7F> <D801>".into());
        let original = format!(
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap \
             1 begincodespacerange <00> <FF> endcodespacerange\n{} beginbfchar\n{}\nendbfchar\n\
             endcmap CMapName currentdict /CMap defineresource pop end end",
            chars.len(),
            chars.join("\n")
        );
        let map = unicode_map(original.as_bytes()).unwrap();
        assert_eq!(map.len(), 57);
        let compact = compact_cmap(&map);
        assert_eq!(unicode_map(&compact), Some(map));
        // Two ranges (A-Z, a-z) and five single entries.
        let text = String::from_utf8(compact).unwrap();
        assert!(
            text.contains("2 beginbfrange\n<41> <5a> <0041>\n<61> <7a> <0061>"),
            "{text}"
        );
        assert!(text.contains("5 beginbfchar"), "{text}");
        assert!(text.len() * 4 < original.len(), "{text}");
    }
}
