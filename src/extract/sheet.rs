//! Spreadsheets (XLSX, XLS, ODS through calamine) and delimited text (CSV, TSV): one section
//! per sheet under a `# sheet name` heading, each row a line a chunk can carry alone:
//! `Name: Ada Lovelace; Born: 1815-12-10; Role: analyst`. The first row of two or more
//! filled cells, none of them a number, is the header row (written once as `a | b | c`);
//! each later row names its values by their column's
//! header (or its letter where there is none), so a chunk that starts mid-sheet still says
//! what its numbers are. Empty cells are left out; a cell holding only a formula (no cached
//! value, as files written by some generators have) shows the formula.
//!
//! Bounds: XLSX cells are streamed (a sheet declaring a million empty rows costs nothing);
//! XLS is bounded by its format (65,536 × 256); ODS, which calamine builds as a dense grid,
//! is refused when the grid its repeat attributes ask for exceeds `MAX_ODS_CELLS` cells
//! (worked out from the XML first). The rendered text stops at `max_text_bytes` (the file then
//! fails as too large, as other formats do), and the zip's declared sizes are checked
//! before anything is inflated.

use std::fmt::Write;
use std::io::{Cursor, Read as _};

use calamine::{Data, Reader};

use super::ExtractError;

/// Cells an ODS sheet may span (calamine builds it as one dense grid).
const MAX_ODS_CELLS: usize = 20_000_000;

/// A sheet's filled cells, row by row.
struct Grid {
    name: String,
    /// (row, column, text), in row then column order.
    cells: Vec<(u32, u32, String)>,
}

/// Which spreadsheet container the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Xlsx,
    Xls,
    Ods,
}

/// XLSX and ODS are zips; XLS an OLE compound file with a Workbook stream.
pub(super) fn kind(bytes: &[u8]) -> Option<Kind> {
    if bytes.starts_with(b"PK\x03\x04") {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
        if zip.index_for_name("xl/workbook.xml").is_some()
            || zip.index_for_name("xl/workbook.bin").is_some()
        {
            return Some(Kind::Xlsx);
        }
        let ods =
            super::package::mimetype(&mut zip) == "application/vnd.oasis.opendocument.spreadsheet";
        return ods.then_some(Kind::Ods);
    }
    if bytes.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        // Word and PowerPoint use the same container; a workbook has its stream.
        let probe = &bytes[..bytes.len().min(1 << 20)];
        let utf16 = |s: &str| {
            s.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        if super::find(probe, &utf16("Workbook")).is_some()
            || super::find(probe, &utf16("Book")).is_some()
        {
            return Some(Kind::Xls);
        }
    }
    None
}

/// The workbook's sheets as sections of text.
pub(super) fn workbook(
    bytes: &[u8],
    kind: Kind,
    max_text_bytes: usize,
) -> Result<Vec<String>, ExtractError> {
    let name = match kind {
        Kind::Xlsx => "XLSX",
        Kind::Xls => "XLS",
        Kind::Ods => "ODS",
    };
    let unreadable = |e: &dyn std::fmt::Display| corrupt(name, e);
    if kind != Kind::Xls {
        check_zip_sizes(bytes, name, max_text_bytes)?;
    }
    if kind == Kind::Xlsx {
        check_dimensions(bytes, max_text_bytes)?;
    }
    let mut grids = Vec::new();
    match kind {
        Kind::Xlsx => {
            let mut book = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
            for name in worksheet_names(&book) {
                let mut cells = Cells::new(max_text_bytes);
                let mut reader = book
                    .worksheet_cells_reader(&name)
                    .map_err(|e| unreadable(&e))?;
                while let Some(cell) = reader
                    .next_cell_with_formula()
                    .map_err(|e| unreadable(&e))?
                {
                    let value = data_text(&Data::from(cell.value));
                    cells.push(cell.pos, value, cell.formula.as_deref())?;
                }
                let mut cells = cells.0;
                cells.sort_by_key(|c| (c.0, c.1));
                grids.push(Grid { name, cells });
            }
        }
        Kind::Xls | Kind::Ods => {
            if kind == Kind::Ods {
                check_ods_extent(bytes)?;
            }
            let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
                .map_err(|e| unreadable(&e))?;
            for name in worksheet_names(&book) {
                let range = book.worksheet_range(&name).map_err(|e| unreadable(&e))?;
                let formulas = book.worksheet_formula(&name).ok();
                let (top, left) = range.start().unwrap_or((0, 0));
                let mut cells = Cells::new(max_text_bytes);
                for (r, c, value) in range.cells() {
                    let pos = (top + r as u32, left + c as u32);
                    let formula = formulas.as_ref().and_then(|f| f.get_value(pos));
                    cells.push(pos, data_text(value), formula.map(String::as_str))?;
                }
                grids.push(Grid {
                    name,
                    cells: cells.0,
                });
            }
        }
    }
    Ok(grids.iter().filter_map(render).collect())
}

/// The sheets that hold cells. A chartsheet (a chart on a tab of its own) has none, and
/// calamine refuses to read it as a worksheet, which failed the whole workbook.
fn worksheet_names<RS, R: Reader<RS>>(book: &R) -> Vec<String>
where
    RS: std::io::Read + std::io::Seek,
{
    book.sheets_metadata()
        .iter()
        .filter(|s| s.typ == calamine::SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect()
}

/// CSV or TSV (the delimiter is whichever of comma, tab and semicolon splits the first lines
/// most evenly) as one section.
pub(super) fn delimited(
    text: &str,
    name: &str,
    max_text_bytes: usize,
) -> Result<String, ExtractError> {
    let delimiter = sniff_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut cells = Cells::new(max_text_bytes);
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| corrupt("CSV", &e))?;
        for (col, field) in record.iter().enumerate() {
            cells.push((row as u32, col as u32), field.trim().to_string(), None)?;
        }
    }
    let title = std::path::Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(render(&Grid {
        name: title,
        cells: cells.0,
    })
    .unwrap_or_default())
}

fn sniff_delimiter(text: &str) -> u8 {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    [b'\t', b',', b';']
        .into_iter()
        .max_by_key(|&d| {
            let counts: Vec<usize> = lines
                .iter()
                .map(|l| l.bytes().filter(|&b| b == d).count())
                .collect();
            let first = counts.first().copied().unwrap_or(0);
            // Lines that agree with the first line's count, weighted by that count.
            let agreeing = counts.iter().filter(|&&c| c == first).count();
            if first == 0 {
                0
            } else {
                agreeing * 1000 + first
            }
        })
        .unwrap_or(b',')
}

/// A sheet's filled cells as they are read, within the text budget.
struct Cells(Vec<(u32, u32, String)>, usize, usize);

impl Cells {
    fn new(max_text_bytes: usize) -> Self {
        Cells(Vec::new(), 0, max_text_bytes)
    }

    /// Keeps a cell's value, or its formula when it has no value; skips empty cells.
    fn push(
        &mut self,
        (row, col): (u32, u32),
        value: String,
        formula: Option<&str>,
    ) -> Result<(), ExtractError> {
        let text = match formula.filter(|f| value.is_empty() && !f.is_empty()) {
            Some(f) => format!("={f}"),
            None => value,
        };
        if text.is_empty() {
            return Ok(());
        }
        self.1 += text.len();
        if self.1 > self.2 {
            return Err(ExtractError::TooLarge {
                size: self.1,
                max: self.2,
            });
        }
        self.0.push((row, col, text));
        Ok(())
    }
}

/// calamine builds an ODS sheet as one dense grid, repeating rows and cells as the file's
/// `number-rows-repeated` / `number-columns-repeated` say: a few bytes can ask for billions
/// of cells. So the grid each table would span (up to its last filled row and column) is
/// worked out from the XML first, and a file over `MAX_ODS_CELLS` refused.
fn check_ods_extent(bytes: &[u8]) -> Result<(), ExtractError> {
    use quick_xml::events::Event;
    let bad = |e: &dyn std::fmt::Display| corrupt("ODS", e);
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let content = zip.by_name("content.xml").map_err(|e| bad(&e))?;
    let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(content));
    let repeats = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> u64 {
        e.try_get_attribute(name)
            .ok()
            .flatten()
            .and_then(|a| a.value.parse().ok())
            .unwrap_or(1)
    };
    let filled = |e: &quick_xml::events::BytesStart<'_>| {
        e.attributes().flatten().any(|a| {
            let key = a.key.as_ref();
            key == "office:value-type" || key == "table:formula"
        })
    };
    let (mut row, mut col, mut row_repeats, mut row_filled) = (0u64, 0u64, 1u64, false);
    let (mut last_row, mut last_col) = (0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).map_err(|e| bad(&e))? {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "table:table" => {
                (row, last_row, last_col) = (0, 0, 0);
            }
            Event::Start(e) if e.name().as_ref() == "table:table-row" => {
                (col, row_repeats, row_filled) =
                    (0, repeats(&e, "table:number-rows-repeated"), false);
            }
            Event::Start(e) | Event::Empty(e)
                if matches!(
                    e.name().as_ref(),
                    "table:table-cell" | "table:covered-table-cell"
                ) =>
            {
                col = col.saturating_add(repeats(&e, "table:number-columns-repeated"));
                if filled(&e) {
                    row_filled = true;
                    last_col = last_col.max(col);
                }
            }
            Event::End(e) if e.name().as_ref() == "table:table-row" => {
                row = row.saturating_add(row_repeats);
                if row_filled {
                    last_row = row;
                }
            }
            Event::End(e) if e.name().as_ref() == "table:table" => {
                let cells = last_row.saturating_mul(last_col);
                if cells > MAX_ODS_CELLS as u64 {
                    return Err(corrupt(
                        "ODS",
                        &format!(
                            "a sheet spans {last_row} × {last_col} cells, over {MAX_ODS_CELLS}"
                        ),
                    ));
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

/// A cell's text on one line: a row is a line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A sheet as text: `# name`, then one line per row.
fn render(grid: &Grid) -> Option<String> {
    if grid.cells.is_empty() {
        return None;
    }
    let cells: Vec<(u32, u32, String)> = grid
        .cells
        .iter()
        .map(|(r, c, t)| (*r, *c, one_line(t)))
        .collect();
    let rows = cells.chunk_by(|a, b| a.0 == b.0);
    let mut header: Option<Vec<(u32, &str)>> = None;
    let mut out = format!("# {}\n\n", grid.name.trim());
    for row in rows {
        // The header row: the first row of text only, with at least two cells (a lone
        // title above a table is a line of text, not the table's header).
        if header.is_none() && row.len() >= 2 && row.iter().all(|c| !looks_numeric(&c.2)) {
            header = Some(row.iter().map(|c| (c.1, c.2.as_str())).collect());
            // The column names once, as a line of their own.
            let names: Vec<&str> = row.iter().map(|c| c.2.as_str()).collect();
            let _ = writeln!(out, "{}", names.join(" | "));
            continue;
        }
        let named: Vec<String> = row
            .iter()
            .map(|(_, col, text)| {
                let label = header
                    .as_ref()
                    .and_then(|h| h.iter().find(|(c, _)| c == col))
                    .map(|(_, h)| h.to_string())
                    .unwrap_or_else(|| column_letters(*col));
                format!("{label}: {text}")
            })
            .collect();
        if row.len() == 1 && header.is_none() {
            // A line of prose (a title, a note) stays as it is.
            let _ = writeln!(out, "{}", row[0].2);
        } else {
            let _ = writeln!(out, "{}", named.join("; "));
        }
    }
    Some(out)
}

fn looks_numeric(text: &str) -> bool {
    let t = text.trim().trim_end_matches('%').replace([',', ' '], "");
    t.parse::<f64>().is_ok()
}

/// 0 → A, 25 → Z, 26 → AA.
fn column_letters(mut col: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// A cell's value as a person would read it.
fn data_text(value: &Data) -> String {
    match value {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => format!("{f}"),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Data::DateTime(d) => match d.as_datetime() {
            Some(dt) if dt.time() == chrono::NaiveTime::MIN => dt.date().to_string(),
            Some(dt) => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => d.to_string(),
        },
        other => other.to_string(),
    }
}

/// Refuses a zip whose parts declare more than 8 × `max_text_bytes` inflated (markup is
/// bulky, but not that bulky): a decompression bomb fails before calamine inflates it.
fn check_zip_sizes(
    bytes: &[u8],
    name: &'static str,
    max_text_bytes: usize,
) -> Result<(), ExtractError> {
    let limit = max_text_bytes.saturating_mul(8);
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt(name, &e))?;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let file = zip.by_index_raw(i).map_err(|e| corrupt(name, &e))?;
        total = total.saturating_add(file.size());
        if total > limit as u64 {
            return Err(ExtractError::Bomb(limit));
        }
    }
    Ok(())
}

/// Refuses a worksheet with a range calamine cannot take, in a `<dimension ref="A2:B1">` or
/// a shared formula's `<f ref="…">`: it subtracts the start from the end and multiplies out
/// the letters and digits without checks, which panics where overflow is checked (tests,
/// the fuzzer) and wraps where it is not (found by the `extract_sheet` fuzz target,
/// fuzz/regressions/extract_sheet/). The parts' sizes were bounded by [`check_zip_sizes`].
fn check_dimensions(bytes: &[u8], max_text_bytes: usize) -> Result<(), ExtractError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt("XLSX", &e))?;
    for i in 0..zip.len() {
        let Ok(file) = zip.by_index(i) else { continue };
        let Ok(part) = file.name().map(|n| n.into_owned()) else {
            continue;
        };
        if !(part.starts_with("xl/worksheets/") && part.ends_with(".xml")) {
            continue;
        }
        let mut xml = Vec::new();
        let limit = max_text_bytes.saturating_mul(8) as u64;
        // A part that does not inflate is calamine's to report.
        if file.take(limit).read_to_end(&mut xml).is_err() {
            continue;
        }
        let text = String::from_utf8_lossy(&xml);
        let unsound = range_refs(&text)
            .find(|r| !dimension_is_sound(r))
            .map(str::to_string);
        if let Some(range) = unsound {
            return Err(corrupt(
                "XLSX",
                &format_args!("{part}: {range:?} is not a range of cells"),
            ));
        }
    }
    Ok(())
}

/// The cell references calamine works out in a worksheet: the `ref` of `dimension` and `f`
/// elements (ranges) and the `r` of `row` and `c` elements (any prefix). A value runs to its
/// closing quote, or to the next tag where that is missing (calamine reads its digits first).
fn range_refs(xml: &str) -> impl Iterator<Item = &str> {
    xml.split('<').skip(1).filter_map(|tag| {
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        let key = match name.rsplit(':').next().unwrap_or(name) {
            "dimension" | "f" => "ref=",
            "row" | "c" => "r=",
            _ => return None,
        };
        let attrs = &tag[name_end..];
        let at = attrs
            .match_indices(key)
            .find(|(i, _)| attrs[..*i].ends_with(char::is_whitespace))?
            .0;
        let value = &attrs[at + key.len()..];
        let quote = value.chars().next().filter(|q| matches!(q, '"' | '\''))?;
        let value = &value[1..];
        Some(&value[..value.find(quote).unwrap_or(value.len())])
    })
}

/// Whether calamine reads `A1`, `7` or `A2:C9` without overflow: at most 6 letters and 9
/// digits before anything else (ZZZZZZ and 999,999,999 fit its u32s; it multiplies them
/// out before it looks further), and a range whose end is not before its start. Anything
/// else that is not a cell reference calamine rejects with an error of its own.
fn dimension_is_sound(dimension: &str) -> bool {
    /// `Some((row, col))` for a plain reference, `None` for anything else that is safe.
    fn cell(r: &str) -> Result<Option<(u64, u64)>, ()> {
        let letters = r.bytes().take_while(u8::is_ascii_alphabetic).count();
        let digits = r[letters..].bytes().take_while(u8::is_ascii_digit).count();
        if letters > 6 || digits > 9 {
            return Err(());
        }
        if letters + digits < r.len() {
            return Ok(None);
        }
        let col = r[..letters].bytes().fold(0u64, |c, b| {
            c * 26 + u64::from(b.to_ascii_uppercase() - b'A') + 1
        });
        let row = r[letters..].parse::<u64>().unwrap_or(0);
        Ok(Some((row, col)))
    }
    let cells: Result<Vec<_>, ()> = dimension.split(':').map(cell).collect();
    match cells.as_deref() {
        Err(()) => false,
        Ok([Some((r0, c0)), Some((r1, c1))]) => r1 >= r0 && c1 >= c0,
        Ok(_) => true,
    }
}

/// `corrupt or unreadable XLSX: …`, with the reader's reason cut to a line.
fn corrupt(format: &'static str, reason: &dyn std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt {
        format,
        reason: reason.to_string().chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn fixture(name: &str) -> Vec<u8> {
        crate::extract::fixture(&format!("sheets/{name}"))
    }

    fn sheets(name: &str) -> Vec<String> {
        let bytes = fixture(name);
        let kind = kind(&bytes).unwrap_or_else(|| panic!("{name} not recognised"));
        workbook(&bytes, kind, 1 << 20).unwrap()
    }

    /// A minimal XLSX written here, with one sheet whose XML is `sheet`.
    fn xlsx(sheet: &str) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for (path, body) in [
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Budget" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
            ("xl/worksheets/sheet1.xml", sheet),
        ] {
            zip.start_file(path, opts).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        buf.into_inner()
    }

    const SHEET_NS: &str =
        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#;

    #[test]
    fn rows_name_their_values_by_the_header_row() {
        assert_eq!(
            sheets("founders.xlsx"),
            ["# Feuille1\n\nfirst_name | last_name | gpa\n\
              first_name: John; last_name: Adams; gpa: 90\n\
              first_name: George; last_name: Washington; gpa: 67\n\
              first_name: Thomas; last_name: Jefferson; gpa: 50\n"]
        );
        // A missing value is left out, not shown empty.
        assert!(sheets("bad_dimensions.xlsx")[0].contains("\nPN: EP00002; Price: 1\n"));
    }

    /// pandas' chartsheet.xlsx: a chart on a tab of its own before the data's sheet. It used
    /// to fail the workbook ("Expecting a worksheet, got chartsheet").
    #[test]
    fn a_chartsheet_is_passed_over() {
        let book = sheets("chartsheet.xlsx");
        assert_eq!(book.len(), 1);
        assert!(book[0].starts_with("# Sheet1\n\nx | y\n"), "{}", book[0]);
    }

    #[test]
    fn xls_and_ods_read_with_dates_as_dates_and_one_section_per_sheet() {
        assert_eq!(
            sheets("dates.xls"),
            ["# Tablib Dataset\n\nbirth_date\n2015-04-12\n"]
        );
        let ods = sheets("book.ods");
        assert_eq!(ods.len(), 2);
        assert!(
            ods[0].starts_with("# Sheet1\n\nA: 2023-03-12; B: 2023-03-14T13:43:00; C: 124"),
            "{}",
            ods[0]
        );
        assert_eq!(ods[1], "# Sheet2\n\nThis | is | a | second | sheet\n");
    }

    #[test]
    fn cells_with_only_a_formula_show_it_and_line_breaks_stay_in_their_row() {
        let sheet = format!(
            r#"{SHEET_NS}<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Item</t></is></c><c r="B1" t="inlineStr"><is><t>Cost</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>Paint
and brushes</t></is></c><c r="B2"><v>12.5</v></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>Total</t></is></c><c r="B3"><f>SUM(B2:B2)</f></c></row></sheetData></worksheet>"#
        );
        let text = workbook(&xlsx(&sheet), Kind::Xlsx, 1 << 20).unwrap();
        assert_eq!(
            text,
            ["# Budget\n\nItem | Cost\nItem: Paint and brushes; Cost: 12.5\nItem: Total; Cost: =SUM(B2:B2)\n"]
        );
    }

    /// A sheet that declares the whole grid and fills its last cell is streamed, not built
    /// as a grid of seventeen billion cells.
    #[test]
    fn a_sheet_spanning_the_whole_grid_is_cheap() {
        let sheet = format!(
            r#"{SHEET_NS}<dimension ref="A1:XFD1048576"/><sheetData><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>far away</t></is></c></row></sheetData></worksheet>"#
        );
        let started = std::time::Instant::now();
        let text = workbook(&xlsx(&sheet), Kind::Xlsx, 1 << 20).unwrap();
        assert_eq!(text, ["# Budget\n\nfar away\n"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    /// The `extract_sheet` fuzz target's findings: a range that ends before it starts made
    /// calamine subtract with overflow, in the sheet's first `<dimension>` or a later one
    /// (calamine reads them all). Such a sheet fails as corrupt, whatever the build.
    #[test]
    fn a_range_calamine_cannot_take_fails_as_corrupt() {
        let row = |f: &str| {
            format!(
                r#"<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c><c r="B1">{f}</c></row></sheetData></worksheet>"#
            )
        };
        for head in [
            r#"<x:dimension ref="A2:B1"/>"#,
            r#"<dimension ref='B1:A1'/>"#,
            r#"<dimension ref="A1:ZZZZZZZ1"/>"#,
            r#"<dimension ref="A1:B1"/><sheetViews/><dimension ref="A2:B1"/>"#,
        ] {
            let sheet = format!("{SHEET_NS}{head}{}", row(""));
            let err = workbook(&xlsx(&sheet), Kind::Xlsx, 1 << 20).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("corrupt or unreadable XLSX: xl/worksheets/sheet1.xml: \""),
                "{head}: {err}"
            );
        }
        let sheet = format!(
            "{SHEET_NS}{}",
            row(r#"<f t="shared" ref="B3:B1" si="0">A1</f>"#)
        );
        let err = workbook(&xlsx(&sheet), Kind::Xlsx, 1 << 20).unwrap_err();
        assert!(
            err.to_string().contains("\"B3:B1\" is not a range"),
            "{err}"
        );
        // The third: a row number of 17 digits, its closing quote lost.
        let sheet = format!(
            r#"{SHEET_NS}<sheetData><row r="86999999999999902</v></row></sheetData></worksheet>"#
        );
        let err = workbook(&xlsx(&sheet), Kind::Xlsx, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("\"86999999999999902\""), "{err}");
        // Sound ranges, and a selection's `sqref`, are read as before.
        for head in [
            r#"<dimension ref="A1"/>"#,
            r#"<dimension ref="A1:B2"/><selection sqref="B2:A1"/>"#,
            r#"<dimension ref="A1:XFD1048576"/>"#,
        ] {
            let sheet = format!("{SHEET_NS}{head}{}", row(""));
            let text = workbook(&xlsx(&sheet), Kind::Xlsx, 1 << 20).unwrap();
            assert_eq!(text, ["# Budget\n\nx\n"], "{head}");
        }
    }

    #[test]
    fn bombs_and_oversized_sheets_fail_clearly() {
        // 64 MiB of one repeated row, a few hundred KiB compressed.
        let row = r#"<row><c t="inlineStr"><is><t>x</t></is></c></row>"#;
        let sheet = format!(
            "{SHEET_NS}<sheetData>{}</sheetData></worksheet>",
            row.repeat((64 << 20) / row.len())
        );
        let err = workbook(&xlsx(&sheet), Kind::Xlsx, 1 << 20).unwrap_err();
        assert!(matches!(err, ExtractError::Bomb(_)), "{err}");
        // 2,000 cells of ten letters: 20 kB of text from 100 kB of XML.
        let cell = r#"<c t="inlineStr"><is><t>abcdefghij</t></is></c>"#;
        let sheet = format!(
            "{SHEET_NS}<sheetData>{}</sheetData></worksheet>",
            format!("<row>{}</row>", cell.repeat(20)).repeat(100)
        );
        let err = workbook(&xlsx(&sheet), Kind::Xlsx, 16 << 10).unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { .. }), "{err}");
        let err = workbook(b"PK\x03\x04 not really a zip", Kind::Xlsx, 1 << 20).unwrap_err();
        assert!(
            err.to_string().starts_with("corrupt or unreadable XLSX: "),
            "{err}"
        );
    }

    /// An ODS whose one filled row is repeated a million times across a thousand columns:
    /// a few hundred bytes asking calamine for a billion cells.
    #[test]
    fn an_ods_asking_for_billions_of_cells_is_refused_before_it_is_built() {
        let content = r#"<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet><table:table table:name="S"><table:table-row table:number-rows-repeated="1000000"><table:table-cell table:number-columns-repeated="1000" office:value-type="float" office:value="1"><text:p>1</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
        let mut buf = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("mimetype", stored).unwrap();
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .unwrap();
        zip.start_file("content.xml", stored).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        zip.finish().unwrap();
        let bytes = buf.into_inner();
        assert_eq!(kind(&bytes), Some(Kind::Ods));
        let err = workbook(&bytes, Kind::Ods, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt or unreadable ODS: a sheet spans 1000000 × 1000 cells, over 20000000"
        );
        // LibreOffice's own trailing empty rows and columns do not count.
        assert!(check_ods_extent(&fixture("book.ods")).is_ok());
    }

    #[test]
    fn csv_and_tsv_rows_name_their_values() {
        let csv = "city,country,population\nOslo,Norway,\"709,037\"\nBergen,Norway,291940\n";
        assert_eq!(
            delimited(csv, "cities.csv", 1 << 20).unwrap(),
            "# cities\n\ncity | country | population\n\
             city: Oslo; country: Norway; population: 709,037\n\
             city: Bergen; country: Norway; population: 291940\n"
        );
        let tsv = "name\tnote\nAda\tfirst program, 1843\n";
        assert_eq!(
            delimited(tsv, "people.tsv", 1 << 20).unwrap(),
            "# people\n\nname | note\nname: Ada; note: first program, 1843\n"
        );
        assert_eq!(sniff_delimiter("a;b;c\n1;2,5;3\n"), b';');
    }

    #[test]
    fn column_letters_go_past_z() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(16383), "XFD");
    }
}
