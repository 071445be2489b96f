//! OCR for images and for PDF pages without a text layer, through Tesseract's command line
//! (and poppler's `pdftoppm` to render a PDF page). The command line rather than the C
//! library: no unsafe code or C build in the crate (it forbids unsafe), a crash or a hang in
//! Tesseract kills one child process that is then timed out, never the worker, and Debian's
//! `tesseract-ocr` package is all an operator installs. What it costs is a process per page
//! (a few milliseconds beside the seconds the recognition takes).
//!
//! Recognition is CPU-heavy: at most one Tesseract per core runs at a time across the
//! process, each single-threaded (`OMP_THREAD_LIMIT=1`), however many files are in flight.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{ExtractError, Section};
use crate::config::OcrSettings;

/// The OCR programs this machine lacks, as a sentence, if any.
pub(super) fn missing() -> Option<String> {
    let absent: Vec<&str> = [("tesseract", "--version"), ("pdftoppm", "-v")]
        .into_iter()
        .filter(|(program, flag)| {
            Command::new(program)
                .arg(flag)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .map(|(program, _)| program)
        .collect();
    (!absent.is_empty()).then(|| {
        format!(
            "OCR is enabled but {} is not installed",
            absent.join(" and ")
        )
    })
}

/// Runs `tesseract` on an image file; returns its text, one string per page (a TIFF may
/// hold several; Tesseract ends each page with a form feed).
fn recognise(
    image: &Path,
    dpi: Option<u32>,
    settings: &OcrSettings,
) -> Result<Vec<String>, ExtractError> {
    let out_base = image.with_extension("ocr");
    let mut cmd = Command::new("tesseract");
    cmd.arg(image)
        .arg(&out_base)
        .args(["-l", &settings.languages])
        // Automatic page segmentation with orientation detection: a page scanned or
        // photographed sideways is turned before it is read (a page turned 90° read 0.01
        // of its words with the default mode, 0.98 with this one, for 10 % more time).
        .args(["--psm", "1"])
        .env("OMP_THREAD_LIMIT", "1");
    if let Some(dpi) = dpi {
        cmd.args(["--dpi", &dpi.to_string()]);
    }
    run(cmd, "tesseract", settings)?;
    let text = std::fs::read_to_string(out_base.with_extension("ocr.txt"))
        .map_err(|e| ExtractError::Ocr(format!("tesseract wrote no text: {e}")))?;
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
    // The form feed after the last page leaves an empty tail.
    if pages.len() > 1 && pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    Ok(pages)
}

/// An image (PNG, JPEG, TIFF, WebP, BMP, GIF): one section per page, numbered from 1.
pub(super) fn image(bytes: &[u8], settings: &OcrSettings) -> Result<Vec<Section>, ExtractError> {
    let dir = Scratch::new()?;
    let path = dir.path().join("image");
    std::fs::write(&path, bytes).map_err(scratch_error)?;
    let _slot = Slot::take();
    let pages = recognise(&path, None, settings)?;
    if pages.len() > settings.max_pages {
        return Err(ExtractError::OcrTooManyPages {
            pages: pages.len(),
            max: settings.max_pages,
        });
    }
    Ok(pages
        .into_iter()
        .enumerate()
        .map(|(i, text)| Section::from_ocr(text, i as i32 + 1))
        .collect())
}

/// Fills the PDF sections (pages) that have no text with what OCR reads on them. Pages are
/// rendered one at a time at `settings.dpi`, in grey.
/// `layer[i]` is how many non-blank characters page `sections[i]` had in its text layer
/// before page furniture was dropped (`super::pdf::extract`): a page whose only text was a
/// running header has a text layer, and is not a scan however empty its section is now.
pub(super) fn pdf_pages(
    bytes: &[u8],
    sections: &mut [Section],
    layer: &[usize],
    settings: &OcrSettings,
) -> Result<(), ExtractError> {
    let chars = |i: usize| layer.get(i).copied().unwrap_or(0);
    let thin = |i: usize| chars(i) < THIN_TEXT_CHARS;
    if !(0..sections.len()).any(thin) {
        return Ok(());
    }
    // Only the pages that could need OCR are analysed: decoding every page's content again
    // cost a long document as much as its extraction for one short page.
    let candidates: std::collections::HashSet<i32> = (0..sections.len())
        .filter(|&i| thin(i))
        .filter_map(|i| sections[i].page)
        .collect();
    let marks = page_marks(bytes, &candidates);
    let mark = |s: &Section| s.page.and_then(|page| marks.get(&page)).copied();
    let blank: Vec<usize> = (0..sections.len())
        .filter(|&i| {
            let s = &sections[i];
            if chars(i) == 0 {
                // A typeset document's intentionally blank pages paint nothing at all:
                // reading them would cost seconds each to find nothing, and count
                // against max_pages. A page that could not be analysed is read.
                mark(s).is_none_or(|m| m.paints)
            } else {
                // A scan with a thin text layer stamped on it (a page number, a Bates
                // number, a date) is still a scan.
                thin(i) && mark(s).is_some_and(|m| m.page_sized_image)
            }
        })
        .collect();
    if blank.is_empty() {
        return Ok(());
    }
    if blank.len() > settings.max_pages {
        return Err(ExtractError::OcrTooManyPages {
            pages: blank.len(),
            max: settings.max_pages,
        });
    }
    let dir = Scratch::new()?;
    let pdf = dir.path().join("document.pdf");
    std::fs::write(&pdf, bytes).map_err(scratch_error)?;
    for i in blank {
        let Some(page) = sections[i].page else {
            continue;
        };
        let image = dir.path().join(format!("page-{page}"));
        let _slot = Slot::take();
        let mut render = Command::new("pdftoppm");
        render
            .args([
                "-r",
                &settings.dpi.to_string(),
                "-gray",
                "-png",
                "-singlefile",
            ])
            .args(["-f", &page.to_string(), "-l", &page.to_string()])
            .arg(&pdf)
            .arg(&image);
        run(render, "pdftoppm", settings).map_err(|e| on_page(e, page))?;
        let text = recognise(&image.with_extension("png"), Some(settings.dpi), settings)
            .map_err(|e| on_page(e, page))?
            .join("\n");
        sections[i] = Section::from_ocr(text, page);
    }
    Ok(())
}

/// A page with fewer non-blank characters in its text layer than this, over a page-sized
/// image, is read by OCR: the text is a stamp on a scan, not the page's text.
const THIN_TEXT_CHARS: usize = 40;

/// An image of at least this many pixels is taken for a scan of the whole page (a letter
/// page at 100 dpi is 935,000; figures in typeset documents are mostly smaller).
const PAGE_IMAGE_PIXELS: i64 = 800_000;

/// Content-stream operators that put marks on a page: text (shown in a font the text layer
/// could not read, which OCR can), paths filled or stroked, images, forms and shadings.
const PAINTING: &[&str] = &[
    "Tj", "TJ", "'", "\"", "f", "F", "f*", "B", "B*", "b", "b*", "S", "s", "sh", "Do", "BI",
];

/// What a page's content stream puts on it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Marks {
    /// Any painting operator at all.
    paints: bool,
    /// An image XObject of at least PAGE_IMAGE_PIXELS is drawn.
    page_sized_image: bool,
}

/// The marks of each page of `pages` (numbered from 1) whose content stream could be read; a
/// page missing from the map is treated as before this analysis (read by OCR if it has no
/// text).
fn page_marks(
    bytes: &[u8],
    pages: &std::collections::HashSet<i32>,
) -> std::collections::HashMap<i32, Marks> {
    /// Bound on a page's decompressed content, against compression bombs.
    const MAX_CONTENT: usize = 64 << 20;
    let Ok(doc) = lopdf::Document::load_mem(bytes) else {
        return Default::default();
    };
    let pixels = |name: &[u8], resources: &lopdf::Dictionary| -> Option<i64> {
        let xobjects = match resources.get(b"XObject").ok()? {
            lopdf::Object::Reference(id) => doc.get_dictionary(*id).ok()?,
            lopdf::Object::Dictionary(d) => d,
            _ => return None,
        };
        let id = xobjects.get(name).ok()?.as_reference().ok()?;
        let image = doc.get_object(id).ok()?.as_stream().ok()?;
        if image.dict.get(b"Subtype").ok()?.as_name().ok()? != b"Image" {
            return None;
        }
        let width = image.dict.get(b"Width").ok()?.as_i64().ok()?;
        let height = image.dict.get(b"Height").ok()?.as_i64().ok()?;
        Some(width.saturating_mul(height))
    };
    doc.get_pages()
        .into_iter()
        .filter(|(number, _)| pages.contains(&(*number as i32)))
        .filter_map(|(number, id)| {
            let content = doc.get_page_content_with_limit(id, MAX_CONTENT).ok()?;
            let content = lopdf::content::Content::decode(&content).ok()?;
            let resources = doc.get_page_resources(id).ok().map(|(own, refs)| {
                own.into_iter()
                    .chain(refs.iter().filter_map(|r| doc.get_dictionary(*r).ok()))
                    .collect::<Vec<_>>()
            });
            let paints = content
                .operations
                .iter()
                .any(|op| PAINTING.contains(&op.operator.as_str()));
            let page_sized_image = content.operations.iter().any(|op| {
                op.operator == "Do"
                    && op
                        .operands
                        .first()
                        .and_then(|o| o.as_name().ok())
                        .is_some_and(|name| {
                            resources
                                .iter()
                                .flatten()
                                .any(|r| pixels(name, r).is_some_and(|p| p >= PAGE_IMAGE_PIXELS))
                        })
            });
            Some((
                number as i32,
                Marks {
                    paints,
                    page_sized_image,
                },
            ))
        })
        .collect()
}

/// Names the page in an OCR error.
fn on_page(e: ExtractError, page: i32) -> ExtractError {
    match e {
        ExtractError::Ocr(message) => ExtractError::Ocr(format!("page {page}: {message}")),
        ExtractError::OcrTimeout { secs, .. } => ExtractError::OcrTimeout {
            page: Some(page),
            secs,
        },
        other => other,
    }
}

/// Runs a command to completion within `settings.page_timeout_secs`, killing it when the
/// time is up. Its standard error, which says why it failed, becomes the error's text.
fn run(mut cmd: Command, program: &str, settings: &OcrSettings) -> Result<(), ExtractError> {
    let limit = Duration::from_secs(settings.page_timeout_secs);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => ExtractError::OcrUnavailable(program.to_string()),
            _ => ExtractError::Ocr(format!("cannot start {program}: {e}")),
        })?;
    // Standard error is read on the side so a chatty child never blocks on a full pipe.
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr.as_mut() {
            use std::io::Read;
            let _ = pipe.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(ExtractError::OcrTimeout {
                    page: None,
                    secs: settings.page_timeout_secs,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(ExtractError::Ocr(format!("{program}: {e}"))),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(ExtractError::Ocr(explain(program, &stderr, settings)))
}

/// The line of a failed command's standard error that says why, in a user's words where
/// ragworker knows them.
fn explain(program: &str, stderr: &str, settings: &OcrSettings) -> String {
    if stderr.contains("Failed loading language")
        || stderr.contains("Could not initialize tesseract")
    {
        let packages: Vec<String> = settings
            .languages
            .split('+')
            .map(|l| format!("tesseract-ocr-{}", l.to_ascii_lowercase().replace('_', "-")))
            .collect();
        return format!(
            "Tesseract has no language data for {:?} (extract.ocr.languages): install {}",
            settings.languages,
            packages.join(" ")
        );
    }
    let reason = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning") && !l.starts_with("Estimating"))
        .unwrap_or("no reason given");
    let reason: String = reason.chars().take(200).collect();
    format!("{program} could not read it: {reason}")
}

fn scratch_error(e: std::io::Error) -> ExtractError {
    ExtractError::Ocr(format!("cannot write the scratch file for OCR: {e}"))
}

/// A private scratch directory, removed when dropped (whatever the outcome).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, ExtractError> {
        let dir =
            std::env::temp_dir().join(format!("ragworker-ocr-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).map_err(scratch_error)?;
        Ok(Scratch(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One of the process's OCR slots (one per core), held while a page is rendered and read.
struct Slot;

static SLOTS: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

impl Slot {
    fn take() -> Slot {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut busy = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= cores {
            busy = FREED.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        *busy -= 1;
        FREED.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OcrSettings {
        OcrSettings {
            enabled: true,
            languages: "eng".into(),
            dpi: 300,
            page_timeout_secs: 60,
            max_pages: 50,
        }
    }

    /// A PDF whose pages have these content streams (and no text layer).
    fn pdf_with_pages(contents: &[&str]) -> Vec<u8> {
        use lopdf::{dictionary, Object, Stream};
        let mut doc = lopdf::Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let kids: Vec<Object> = contents
            .iter()
            .map(|content| {
                let stream =
                    doc.add_object(Stream::new(dictionary! {}, content.as_bytes().to_vec()));
                doc.add_object(dictionary! {
                    "Type" => "Page",
                    "Parent" => pages_id,
                    "MediaBox" => vec![0.into(), 0.into(), 200.into(), 200.into()],
                    "Contents" => stream,
                })
                .into()
            })
            .collect();
        let count = kids.len() as i64;
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    #[test]
    fn pages_that_draw_nothing_are_not_sent_to_ocr() {
        let pdf = pdf_with_pages(&[
            "",
            "q 1 0 0 1 0 0 cm Q",
            "0 0 10 10 re f",
            "q 100 0 0 100 0 0 cm /Im0 Do Q",
        ]);
        let marks = page_marks(&pdf, &(1..=5).collect());
        let paints: Vec<bool> = (1..=4).map(|p| marks[&p].paints).collect();
        assert_eq!(paints, vec![false, false, true, true]);
        // Pages not asked about are not analysed.
        let asked = page_marks(&pdf, &[3].into());
        assert_eq!(asked.keys().collect::<Vec<_>>(), [&3]);
        // Two blank pages and no budget for OCR: nothing is rendered, nothing fails.
        let mut sections = vec![
            Section::new(String::new(), Some(1)),
            Section::new(String::new(), Some(2)),
        ];
        let pdf = pdf_with_pages(&["", "q Q"]);
        let mut s = settings();
        s.max_pages = 0;
        pdf_pages(&pdf, &mut sections, &[0, 0], &s).unwrap();
        assert!(sections.iter().all(|s| s.text.is_empty() && !s.ocr));
        assert!(page_marks(b"not a pdf", &[1].into()).is_empty());
    }

    #[test]
    fn a_page_whose_only_text_was_furniture_is_not_a_scan() {
        // Its running header was dropped, so its section is empty; but it had a text layer
        // and no scanned image, and Tesseract would only read the header back (1-2 s a page:
        // 17 chapter-title pages of the C++ Annotations).
        let pdf = pdf_with_pages(&["BT /F1 9 Tf 20 180 Td (ACME Annual Report 2024) Tj ET"]);
        let mut sections = vec![Section::new(String::new(), Some(1))];
        let mut s = settings();
        s.max_pages = 0;
        pdf_pages(&pdf, &mut sections, &[21], &s).unwrap();
        assert!(!sections[0].ocr);
        // With nothing in its text layer, the same page is one for OCR (over the budget here).
        let err = pdf_pages(&pdf, &mut sections, &[0], &s).unwrap_err();
        assert!(matches!(err, ExtractError::OcrTooManyPages { .. }), "{err}");
    }

    #[test]
    fn a_missing_language_names_the_package_to_install() {
        let mut s = settings();
        s.languages = "deu+chi_sim".into();
        let text = explain(
            "tesseract",
            "Error opening data file /usr/share/tesseract-ocr/5/tessdata/deu.traineddata\nFailed loading language 'deu'\nTesseract couldn't load any languages!\nCould not initialize tesseract.\n",
            &s,
        );
        assert!(
            text.contains("install tesseract-ocr-deu tesseract-ocr-chi-sim"),
            "{text}"
        );
    }

    #[test]
    fn other_failures_keep_the_last_line_that_says_why() {
        let text = explain(
            "pdftoppm",
            "Syntax Warning: something\nI/O Error: Couldn't open file 'x.pdf'\n",
            &settings(),
        );
        assert_eq!(
            text,
            "pdftoppm could not read it: I/O Error: Couldn't open file 'x.pdf'"
        );
    }

    #[test]
    fn a_command_over_its_time_is_killed() {
        let mut s = settings();
        s.page_timeout_secs = 1;
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let started = Instant::now();
        let err = run(cmd, "sleep", &s).unwrap_err();
        assert!(
            matches!(err, ExtractError::OcrTimeout { secs: 1, .. }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_program_says_what_to_install() {
        let err = run(
            Command::new("ragworker-no-such-ocr"),
            "tesseract",
            &settings(),
        )
        .unwrap_err();
        assert!(matches!(err, ExtractError::OcrUnavailable(_)), "{err}");
        assert!(
            err.to_string().contains("apt-get install tesseract-ocr"),
            "{err}"
        );
    }
}
