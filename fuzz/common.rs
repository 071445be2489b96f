//! Shared by every fuzz target (each is its own binary, so this is included with `#[path]`).

/// ragworker catches panics inside parsing crates (pdf-extract has several) and fails the
/// file; libFuzzer's hook would abort on them anyway. Only panics that escape `extract`
/// (which libfuzzer-sys still turns into crashes) are bugs here.
pub fn silence_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

/// A zip of `(name, content)` parts, as the zip-based formats' targets build their input.
#[allow(dead_code)] // not every target builds a zip
pub fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for (name, content) in parts {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}
