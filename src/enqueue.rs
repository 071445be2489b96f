//! `ragworker enqueue`: what an app does on upload, for operators and tests: put the object
//! in the bucket, then insert a pending files row (which NOTIFYs running workers).

use std::path::Path;

use sqlx::PgPool;
use uuid::Uuid;

use crate::storage::Storage;

/// Who the uploaded files belong to.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub user_id: Uuid,
    pub org_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
}

/// The MIME type an app would record for a file name. The worker does not trust it: it
/// detects the format from the bytes.
pub fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "md" | "markdown" => "text/markdown",
        "txt" | "text" | "log" => "text/plain",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "html" | "htm" => "text/html",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "epub" => "application/epub+zip",
        "rtf" => "application/rtf",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xls" => "application/vnd.ms-excel",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "eml" => "message/rfc822",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "tif" | "tiff" => "image/tiff",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

/// Uploads one local file and queues it; returns the new files.id.
pub async fn enqueue_file(
    pool: &PgPool,
    storage: &Storage,
    bucket: &str,
    owner: Owner,
    path: &Path,
) -> anyhow::Result<Uuid> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("{} has no usable file name", path.display()))?
        .to_string();
    let id = Uuid::new_v4();
    // Supabase Storage convention: objects under the owner's folder. Keys must be ASCII there.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let key = format!("{}/{id}/{safe}", owner.user_id);
    let mime = mime_for(&name);
    let size = bytes.len() as i64;
    storage.put(bucket, &key, bytes, mime).await?;
    // Unnamed, in a transaction: see `queue`.
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into files (id, user_id, org_id, conversation_id, original_name, storage_bucket,
                            storage_path, mime_type, file_size)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(owner.user_id)
    .bind(owner.org_id)
    .bind(owner.conversation_id)
    .bind(&name)
    .bind(bucket)
    .bind(&key)
    .bind(mime)
    .bind(size)
    .persistent(false)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}
