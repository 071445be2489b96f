//! `ragworker cleanup`: files rows whose storage object is gone (deleted outside the app,
//! a bucket emptied by hand) are found by asking the storage backend, and removed with
//! their chunks; usage rows and the ledger stay, as money spent stays spent. Rows a worker
//! is processing are never touched. Where `storage.objects` is in the database (Supabase),
//! the SQL function `ragworker_cleanup_orphaned_files()` does the same in one statement.

use uuid::Uuid;

use crate::queue::Queue;
use crate::storage::{Storage, StorageError};

/// A files row whose object is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub file_id: Uuid,
    pub bucket: String,
    pub path: String,
    /// Chunks removed with it (0 in a dry run).
    pub chunks: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Anything but "no such object" stops the run: an outage or a credential problem
    /// must not look like missing objects.
    #[error("cannot tell whether {bucket}/{path} exists: {source}")]
    Storage {
        bucket: String,
        path: String,
        source: StorageError,
    },
}

/// Rows checked per page: one statement per page, one HEAD per row.
const PAGE: i64 = 500;

/// Finds the files whose objects are gone and, unless `dry_run`, removes them. Returns
/// them in id order.
pub async fn orphans(
    queue: &Queue,
    storage: &Storage,
    dry_run: bool,
) -> Result<Vec<Orphan>, CleanupError> {
    let mut found = Vec::new();
    let mut after = Uuid::nil();
    loop {
        let page = queue.settled_files(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        let mut gone = Vec::new();
        for (id, bucket, path) in page {
            match storage.version(&bucket, &path).await {
                Ok(_) => {}
                Err(StorageError::NotFound { .. }) => gone.push(Orphan {
                    file_id: id,
                    bucket,
                    path,
                    chunks: 0,
                }),
                Err(source) => {
                    return Err(CleanupError::Storage {
                        bucket,
                        path,
                        source,
                    })
                }
            }
        }
        if dry_run || gone.is_empty() {
            found.extend(gone);
            continue;
        }
        let ids: Vec<Uuid> = gone.iter().map(|o| o.file_id).collect();
        found.extend(queue.remove_files(&ids).await?.into_iter().map(
            |(file_id, bucket, path, chunks)| Orphan {
                file_id,
                bucket,
                path,
                chunks,
            },
        ));
    }
    found.sort_by_key(|o| o.file_id);
    Ok(found)
}
