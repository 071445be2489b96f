//! The README's demo command, run as CI runs it: `scripts/demo.sh` with this build's
//! binary and its own cluster directory. Setup (apt, pgvector, model download) is done by
//! the test command before the tests start.

use std::process::Stdio;

use crate::support::model_dir;

async fn demo(dir: &std::path::Path) -> String {
    let out = tokio::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh"))
        .env("RAGWORKER_DEMO_DIR", dir)
        .env("RAGWORKER_BIN", env!("CARGO_BIN_EXE_ragworker"))
        .env("RAGWORKER_DEMO_SKIP_SETUP", "1")
        .env("RAGWORKER_MODEL_DIR", model_dir())
        // The test's own settings must not leak into the demo's configuration.
        .env_remove("DATABASE_URL")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "demo failed: {stdout}\n{stderr}");
    stdout
}

/// The passages printed for a question: the lines after "Q: question", up to the next one.
fn answers<'a>(stdout: &'a str, question: &str) -> Vec<&'a str> {
    stdout
        .split(&format!("Q: {question}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no answer to {question:?} in:\n{stdout}"))
        .lines()
        .take_while(|l| !l.starts_with("Q: "))
        .collect()
}

#[tokio::test]
async fn the_demo_answers_its_questions_and_a_second_run_reuses_everything() {
    // PostgreSQL runs as the postgres user, which must reach the cluster directory.
    let dir = tempfile::Builder::new()
        .prefix("ragworker-demo-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let first = demo(dir.path()).await;
    // The broken fixtures fail with their reasons; everything else is indexed.
    for expected in [
        "corrupt.pdf: corrupt or unreadable PDF",
        "scanned.pdf: OCR found no text in the scanned pages",
        "encrypted.pdf: the PDF is encrypted and needs a password",
        "photo.png: OCR found no text in the image",
        "empty.txt: the document contains no text",
    ] {
        assert!(first.contains(expected), "{expected:?} missing:\n{first}");
    }
    let dredging = answers(&first, "How deep was the harbour channel dredged?");
    assert!(dredging[0].starts_with("1. report.docx, "), "{dredging:#?}");
    assert!(dredging[1].contains("twelve metres"), "{dredging:#?}");
    // The R FAQ answers this on page 14, under a heading found from the PDF's outline.
    let authors = answers(&first, "Who were the first authors of R?");
    assert!(
        authors[0]
            .starts_with("1. R-FAQ.pdf, page 14, section \"2 R Basics > 2.12 Why is R named R?\""),
        "{authors:#?}"
    );
    let patents = answers(
        &first,
        "What happens to my patent license if I sue someone for patent infringement?",
    );
    assert!(patents[0].starts_with("1. Apache-2.0.txt"), "{patents:#?}");
    let indexed = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("Indexed: "))
            .unwrap()
            .to_string()
    };

    // Idempotent: nothing is enqueued or embedded again, the answers are the same.
    let second = demo(dir.path()).await;
    assert_eq!(indexed(&first), indexed(&second));
    assert!(
        second.contains("backfill done: 0 completed, 0 failed"),
        "{second}"
    );
    assert_eq!(
        answers(&second, "How deep was the harbour channel dredged?"),
        dredging,
        "same question, same answer"
    );
}
