//! Extraction by format, through the whole pipeline: what a user would check in the rows.

use std::io::Write;

use uuid::Uuid;

use crate::support::{fixture, TestEnv};

async fn heading_of(env: &TestEnv, file: Uuid, needle: &str) -> Option<String> {
    sqlx::query_scalar(
        "select heading from document_chunks where file_id = $1 and content like '%' || $2 || '%' limit 1",
    )
    .bind(file)
    .bind(needle)
    .fetch_one(&env.pool)
    .await
    .unwrap_or_else(|e| panic!("no chunk contains {needle:?}: {e}"))
}

async fn all_content(env: &TestEnv, file: Uuid) -> String {
    sqlx::query_scalar("select string_agg(content, '\n' order by chunk_index) from document_chunks where file_id = $1")
        .bind(file)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn pdfs_keep_ligatures_columns_and_page_numbers() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let lig = env.enqueue(user, "ligatures.pdf").await;
    let cols = env.enqueue(user, "two-column.pdf").await;
    env.drain().await;

    let text = env.file(lig).await.extracted_text.unwrap();
    assert!(
        text.contains("The field of flowers was filled with butterflies."),
        "{text}"
    );
    assert!(
        text.contains("Our offline office keeps financial files safe."),
        "{text}"
    );

    let row = env.file(cols).await;
    assert_eq!(row.status, "completed");
    let text = row.extracted_text.unwrap();
    // Column by column: the left paragraph ends before the right one starts.
    let left_end = text.find("across an estuary mouth.").expect("left column");
    let right_start = text.find("Wave farms instead float").expect("right column");
    assert!(left_end < right_start, "{text}");
    assert!(text.contains("turbines built into a barrage"));
    let pages: Vec<Option<i32>> =
        sqlx::query_scalar("select distinct page_number from document_chunks where file_id = $1")
            .bind(cols)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(pages, vec![Some(1)]);
}

#[tokio::test]
async fn pdfs_the_pdf_reader_failed_on_and_header_only_pages_are_read_as_text() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    // Japanese in a CID font without a Unicode map; a file without a cross-reference table;
    // a last page holding only the running header (OCR is on, as by default).
    let cjk = env.enqueue(user, "cjk-identity.pdf").await;
    let bare = env.enqueue(user, "no-xref.pdf").await;
    let header = env.enqueue(user, "header-only-page.pdf").await;
    env.drain().await;
    for id in [cjk, bare, header] {
        let row = env.file(id).await;
        assert_eq!(row.status, "completed", "{:?}", row.last_error);
    }
    assert!(all_content(&env, cjk).await.contains("日本語の文書"));
    assert!(all_content(&env, bare)
        .await
        .contains("Tidal power stations"));
    let content = all_content(&env, header).await;
    assert!(content.contains("petrol only on request"), "{content}");
    assert!(!content.contains("Harbour FAQ 5"), "{content}");
    let ocr: i64 = sqlx::query_scalar(
        "select count(*) from document_chunks
         where file_id = $1 and coalesce((metadata ->> 'ocr')::boolean, false)",
    )
    .bind(header)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(ocr, 0, "a page of running header was sent to OCR");
}

#[tokio::test]
async fn html_keeps_content_and_headings_and_drops_page_chrome() {
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "page.html").await;
    env.drain().await;
    assert_eq!(env.file(id).await.status, "completed");
    let content = all_content(&env, id).await;
    for chrome in [
        "Shop crampons",
        "tracking pixel",
        "Subscribe",
        "Top ten beaches",
        "All rights reserved",
        "font-family",
    ] {
        assert!(
            !content.contains(chrome),
            "{chrome:?} leaked into the chunks:\n{content}"
        );
    }
    assert_eq!(
        heading_of(&env, id, "prusik loop").await.as_deref(),
        Some("Glacier hiking guide > Equipment")
    );
    // The chunk's heading is the one in force where the chunk starts; with these small
    // test chunks the list may start inside "Equipment" or under "Clothing".
    let clothing = heading_of(&env, id, "Waterproof shell jacket")
        .await
        .unwrap();
    assert!(
        clothing.starts_with("Glacier hiking guide > Equipment"),
        "{clothing}"
    );
    assert_eq!(
        heading_of(&env, id, "snow bridges").await.as_deref(),
        Some("Glacier hiking guide > Timing")
    );
}

#[tokio::test]
async fn docx_headings_come_from_styles_and_tables_become_text() {
    let env = TestEnv::start().await;
    let id = env.enqueue(Uuid::new_v4(), "report.docx").await;
    env.drain().await;
    let row = env.file(id).await;
    assert_eq!(row.status, "completed", "{:?}", row.last_error);
    assert_eq!(
        heading_of(&env, id, "twelve metres").await.as_deref(),
        Some("Harbour Operations Report > Dredging")
    );
    assert_eq!(
        heading_of(&env, id, "Van Oord").await.as_deref(),
        Some("Harbour Operations Report > Dredging > Costs & Contractors")
    );
    assert_eq!(
        heading_of(&env, id, "78 percent").await.as_deref(),
        Some("Harbour Operations Report > Berth Occupancy")
    );
    let text = row.extracted_text.unwrap();
    assert!(text.contains("North quay | 41 | 82%"), "{text}");
}

#[tokio::test]
async fn legacy_encodings_are_detected() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let utf16 = env.enqueue(user, "timetable-utf16.txt").await;
    let latin1 = env.enqueue(user, "recipe-latin1.txt").await;
    env.drain().await;
    let text = env.file(utf16).await.extracted_text.unwrap();
    assert!(
        text.starts_with("Ærøskøbing ferry timetable\nThe ferry to Svendborg leaves at 06:45"),
        "{text}"
    );
    let text = env.file(latin1).await.extracted_text.unwrap();
    assert!(text.contains("Crème brûlée recipe"), "{text}");
    assert!(text.contains("the façade should crack"), "{text}");
}

#[tokio::test]
async fn other_zip_files_are_unsupported() {
    let env = TestEnv::start().await;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        zip.start_file(
            "data/readings.bin",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(b"\x01\x02\x03").unwrap();
        zip.finish().unwrap();
    }
    let path = env.dir.path().join("numbers.docx"); // the name lies; the bytes decide
    std::fs::write(&path, buf.into_inner()).unwrap();
    let id = env.enqueue_path(Uuid::new_v4(), &path).await;
    env.drain().await;
    let row = env.file(id).await;
    assert_eq!(row.status, "failed");
    assert_eq!(
        row.last_error.as_deref(),
        Some("unsupported file type: ZIP archive")
    );
}

#[tokio::test]
async fn scans_and_photos_are_read_by_ocr_and_their_chunks_say_so() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    // Three typeset pages and a scanned one; a typewritten recipe photographed.
    let mixed = env.enqueue_path(user, &fixture("ocr/mixed.pdf")).await;
    let photo = env.enqueue_path(user, &fixture("ocr/typewriter.png")).await;
    env.drain().await;
    for id in [mixed, photo] {
        let row = env.file(id).await;
        assert_eq!(row.status, "completed", "{:?}", row.last_error);
    }
    let chunks = |id: Uuid| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_as::<_, (Option<i32>, bool, String)>(
                "select page_number, coalesce((metadata ->> 'ocr')::boolean, false), content
                 from document_chunks where file_id = $1 order by chunk_index",
            )
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let pages = chunks(mixed).await;
    assert!(pages.iter().any(|(p, _, _)| *p == Some(4)));
    for (page, ocr, content) in &pages {
        assert_eq!(*ocr, *page == Some(4), "page {page:?}: {content}");
    }
    assert!(pages
        .iter()
        .any(|(p, _, c)| *p == Some(4) && c.contains("LinnSequencer")));
    let photo_chunks = chunks(photo).await;
    assert!(photo_chunks.iter().all(|(p, ocr, _)| *ocr && *p == Some(1)));
    assert!(all_content(&env, photo).await.contains("Linzensoep"));
}

#[tokio::test]
async fn spreadsheet_rows_are_chunks_that_name_their_columns() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let xlsx = env
        .enqueue_path(user, &fixture("sheets/founders.xlsx"))
        .await;
    let ods = env.enqueue_path(user, &fixture("sheets/book.ods")).await;
    let csv_path = env.dir.path().join("stations.csv");
    std::fs::write(
        &csv_path,
        "station,keeper,lit\nSkerryvore,A. Stevenson,1844\nBell Rock,R. Stevenson,1811\n",
    )
    .unwrap();
    let csv = env.enqueue_path(user, &csv_path).await;
    env.drain().await;
    for id in [xlsx, ods, csv] {
        let row = env.file(id).await;
        assert_eq!(row.status, "completed", "{:?}", row.last_error);
    }
    assert!(all_content(&env, xlsx)
        .await
        .contains("first_name: Thomas; last_name: Jefferson; gpa: 50"));
    assert_eq!(
        heading_of(&env, xlsx, "Jefferson").await.as_deref(),
        Some("Feuille1")
    );
    assert_eq!(
        heading_of(&env, ods, "second").await.as_deref(),
        Some("Sheet2")
    );
    assert!(all_content(&env, csv)
        .await
        .contains("station: Bell Rock; keeper: R. Stevenson; lit: 1811"));
}

#[tokio::test]
async fn slides_opendocument_epub_rtf_and_email_reach_their_chunks_with_pages_and_headings() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let mut ids = std::collections::HashMap::new();
    for name in [
        "pptx-table.pptx",
        "pptx-title.pptx",
        "odp-ol.odp",
        "live-manual.epub",
        "rtf-accents.rtf",
        "email/msg_01.eml",
    ] {
        ids.insert(name, env.enqueue_path(user, &fixture(name)).await);
    }
    env.drain().await;
    for (name, id) in &ids {
        let row = env.file(*id).await;
        assert_eq!(row.status, "completed", "{name}: {:?}", row.last_error);
    }
    let page_of = |id: Uuid, needle: &'static str| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<i32>>(
                "select page_number from document_chunks
                 where file_id = $1 and content like '%' || $2 || '%' limit 1",
            )
            .bind(id)
            .bind(needle)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // The third slide's table, on page 3 under its slide's heading.
    let table = ids["pptx-table.pptx"];
    assert_eq!(page_of(table, "d | e | f").await, Some(3));
    assert_eq!(
        heading_of(&env, table, "d | e | f").await.as_deref(),
        Some("Slide 3")
    );
    let title = ids["pptx-title.pptx"];
    assert_eq!(
        heading_of(&env, title, "Subtitle Text").await.as_deref(),
        Some("Presentation Title Text")
    );
    assert_eq!(
        heading_of(&env, ids["odp-ol.odp"], "Tsvelf")
            .await
            .as_deref(),
        Some("OL")
    );
    let manual = heading_of(&env, ids["live-manual.epub"], "single access point")
        .await
        .unwrap_or_default();
    assert!(manual.contains("About this manual"), "{manual}");
    assert!(all_content(&env, ids["rtf-accents.rtf"])
        .await
        .contains("au café où on ne fume pas"));
    assert_eq!(
        heading_of(&env, ids["email/msg_01.eml"], "Do you like this message")
            .await
            .as_deref(),
        Some("This is a test message")
    );
}

/// Every format answers a question through search: one user's library holds a file of each
/// new format (and the older ones), and a question asked in words of one passage brings
/// that passage first, from the right file, with its page (slide, sheet) and heading.
#[tokio::test]
async fn a_question_finds_its_passage_in_every_format() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    for name in [
        "pptx-table.pptx",
        "odp-ol.odp",
        "odt-simpletable.odt",
        "live-manual.epub",
        "rtf-accents.rtf",
        "email/msg_01.eml",
        "sheets/founders.xlsx",
        "sheets/book.ods",
        "ocr/typewriter.png",
        "handbook.pdf",
        "guide.md",
        "report.docx",
    ] {
        env.enqueue_path(user, &fixture(name)).await;
    }
    env.drain().await;
    // (question, file, page, heading that must contain, text the passage must contain). The
    // fake provider's vectors are bags of words, so a question shares words with its passage
    // only (a question saying "slide" would match every slide's heading).
    let cases: [(&str, &str, Option<i32>, &str, &str); 8] = [
        (
            "Where are unladen swallows and custom margins mentioned?",
            "pptx-table.pptx",
            Some(1),
            "Slide 1",
            "unladen swallows",
        ),
        (
            "Which sheet is the second sheet of the book?",
            "book.ods",
            None,
            "Sheet2",
            "second",
        ),
        (
            "first name, last name and gpa of Thomas Jefferson",
            "founders.xlsx",
            None,
            "Feuille1",
            "last_name: Jefferson; gpa: 50",
        ),
        (
            "Is the manual a single access point for the documentation?",
            "live-manual.epub",
            None,
            "About this manual",
            "single access point",
        ),
        (
            "Which list counts Draytsn after Tsvelf?",
            "odp-ol.odp",
            Some(1),
            "OL",
            "Tsvelf",
        ),
        (
            "Do you like this message?",
            "msg_01.eml",
            None,
            "This is a test message",
            "like this message",
        ),
        (
            "Where does one go to a café où on ne fume pas?",
            "rtf-accents.rtf",
            None,
            "",
            "café où on ne fume pas",
        ),
        (
            "Hoe maak je linzensoep met linzen, uien en kerrie?",
            "typewriter.png",
            Some(1),
            "",
            "kerrie",
        ),
    ];
    for (question, file, page, heading, needle) in cases {
        let (hits, _) = env.ask(user, question, 3).await;
        let top = &hits[0];
        assert_eq!(top.file_name, file, "{question}: {hits:#?}");
        assert!(top.content.contains(needle), "{question}: {}", top.content);
        // Slides and pictures are pages; a sheet is a heading, not a page.
        assert_eq!(top.page_number, page, "{question}");
        let top_heading = top.heading.clone().unwrap_or_default();
        assert!(
            top_heading.contains(heading),
            "{question}: heading {top_heading:?}"
        );
    }
}
