//! Who may read what: a files row may name only an object its owner may read, checked
//! before a byte is downloaded. The worker downloads with its own credentials, which storage
//! policies do not restrict, so without this any user could have another user's document
//! extracted into their own rows.
//!
//! The same rule guards the table (the `files_check_row` trigger and
//! `ragworker_path_violation()` in the migrations); this copy also covers rows written
//! before that trigger existed or by a role that bypasses it, and a test asks both the same
//! cases.

use std::collections::BTreeMap;

use sqlx::PgPool;
use uuid::Uuid;

use crate::config::{Ownership, StorageSettings};
use crate::queue::ClaimedFile;

/// Why a row's object may not be read. Permanent: the row itself is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    #[error("bucket {0:?} is not one ragworker may read (storage.buckets)")]
    BucketNotAllowed(String),
    #[error("{0}")]
    Path(&'static str),
    #[error("object was uploaded by another user")]
    UploadedByAnother,
}

/// Object paths longer than this are refused (Supabase Storage's own limit is lower).
const MAX_PATH_BYTES: usize = 1024;

/// Why `path` may not be read for `user_id` under `ownership`, worded as the database's
/// `ragworker_path_violation()` words it; `None` when it may.
pub fn path_problem(path: &str, user_id: Uuid, ownership: Ownership) -> Option<&'static str> {
    if path.is_empty() {
        return Some("the object path is empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return Some("the object path is over 1024 bytes");
    }
    if path.chars().any(|c| c < ' ' || c == '\x7f' || c == '\\') {
        return Some("the object path contains a control character or a backslash");
    }
    if path.starts_with('/') || path.ends_with('/') || path.contains("//") {
        return Some("the object path has an empty segment (leading, trailing or doubled \"/\")");
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Some("the object path has a \".\" or \"..\" segment");
    }
    if ownership == Ownership::UserFolder {
        // A file under the folder, not the folder itself: "<user_id>/<something>".
        match path.split_once('/') {
            Some((folder, _)) if folder == user_id.to_string() => {}
            _ => return Some("object is not under this user's folder"),
        }
    }
    None
}

/// The configured rule, and where Supabase's `storage.objects` can say who uploaded what.
#[derive(Debug, Clone)]
pub struct Rules {
    buckets: BTreeMap<String, Ownership>,
    /// The statement that reads an object's uploader from `storage.objects`, when that table
    /// is in this database and readable.
    uploader_query: Option<&'static str>,
}

impl Rules {
    /// The rule from configuration, and whether `storage.objects` (Supabase Storage's
    /// metadata, same database) can be asked who uploaded an object.
    pub async fn load(settings: &StorageSettings, pool: &PgPool) -> Result<Self, sqlx::Error> {
        let buckets = settings
            .allowed_buckets()
            .into_iter()
            .map(|b| (b.to_string(), settings.ownership))
            .collect();
        // Supabase Storage writes owner_id (text, the JWT's sub); older versions only the
        // owner uuid column.
        let mut tx = pool.begin().await?;
        let column: Option<String> = sqlx::query_scalar(
            "select a.attname::text from pg_attribute a
             where a.attrelid = to_regclass('storage.objects')
               and a.attname in ('owner_id', 'owner') and not a.attisdropped
               and has_table_privilege(a.attrelid, 'select')
             order by a.attname = 'owner_id' desc
             limit 1",
        )
        .persistent(false)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let uploader_query = match column.as_deref() {
            Some("owner_id") => {
                Some("select owner_id from storage.objects where bucket_id = $1 and name = $2")
            }
            Some(_) => {
                Some("select owner::text from storage.objects where bucket_id = $1 and name = $2")
            }
            None => None,
        };
        Ok(Self {
            buckets,
            uploader_query,
        })
    }

    /// Whether uploads are checked against `storage.objects`.
    pub fn checks_uploader(&self) -> bool {
        self.uploader_query.is_some()
    }

    /// The bucket and path checks, which need no I/O.
    pub fn check_path(&self, file: &ClaimedFile) -> Result<(), OwnershipError> {
        let ownership = self
            .buckets
            .get(&file.storage_bucket)
            .ok_or_else(|| OwnershipError::BucketNotAllowed(file.storage_bucket.clone()))?;
        match path_problem(&file.storage_path, file.user_id, *ownership) {
            Some(problem) => Err(OwnershipError::Path(problem)),
            None => Ok(()),
        }
    }

    /// Everything, before the download: the path rule, then the uploader recorded by
    /// Supabase Storage. An object with no uploader (uploaded with the service key) or not
    /// in `storage.objects` passes on the path rule alone.
    pub async fn check(&self, pool: &PgPool, file: &ClaimedFile) -> Result<(), CheckError> {
        self.check_path(file)?;
        let Some(query) = self.uploader_query else {
            return Ok(());
        };
        // Unnamed, in a transaction: see `queue`.
        let mut tx = pool.begin().await?;
        let uploader: Option<Option<String>> = sqlx::query_scalar(query)
            .persistent(false)
            .bind(&file.storage_bucket)
            .bind(&file.storage_path)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        match uploader.flatten() {
            Some(owner) if !owner.eq_ignore_ascii_case(&file.user_id.to_string()) => {
                Err(OwnershipError::UploadedByAnother.into())
            }
            _ => Ok(()),
        }
    }
}

/// A failed check: the row's fault, or the database's.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_users_folder_or_with_tricks_are_refused() {
        let user = Uuid::parse_str("6f1c1a52-2d1e-4d7e-9c43-0a2b8c1d9e10").unwrap();
        let folder = Ownership::UserFolder;
        assert_eq!(path_problem(&format!("{user}/f/a.pdf"), user, folder), None);
        assert_eq!(path_problem(&format!("{user}/a.pdf"), user, folder), None);
        for bad in [
            String::new(),
            user.to_string(),
            format!("{user}/"),
            format!("/{user}/a.pdf"),
            format!("{user}//a.pdf"),
            format!("{user}/../other/a.pdf"),
            format!("{user}/./a.pdf"),
            format!("{user}/a\\..\\b.pdf"),
            format!("{user}/a\nb.pdf"),
            format!("{}/a.pdf", user.to_string().to_uppercase()),
            format!("{}/a.pdf", Uuid::new_v4()),
            format!("{user}/{}", "x".repeat(1100)),
        ] {
            assert!(path_problem(&bad, user, folder).is_some(), "{bad:?}");
        }
        // server_only: any plain path, but still no tricks.
        assert_eq!(
            path_problem("imports/2026/a.pdf", user, Ownership::ServerOnly),
            None
        );
        assert!(path_problem("imports/../a.pdf", user, Ownership::ServerOnly).is_some());
    }
}
