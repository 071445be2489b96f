//! The job boundary: every stage's error becomes one `JobError`, and one function
//! (`JobError::class`) decides what the queue does with the file.

use std::time::Duration;

use crate::embed::EmbedError;
use crate::extract::ExtractError;
use crate::ownership::{CheckError, OwnershipError};
use crate::queue::QueueError;
use crate::storage::StorageError;

/// Why processing one file stopped.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("processing took longer than the {}s limit (worker.processing_timeout_secs)", .0.as_secs())]
    Timeout(Duration),
    #[error("the lease on this file was taken over by another worker")]
    LeaseLost,
    #[error("the worker is shutting down")]
    Shutdown,
    #[error("the object changed while it was being processed; processing its new version")]
    ObjectChanged,
}

impl From<CheckError> for JobError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Ownership(e) => JobError::Ownership(e),
            CheckError::Database(e) => JobError::Database(e),
        }
    }
}

impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::LeaseLost => JobError::LeaseLost,
            QueueError::Database(e) => JobError::Database(e),
        }
    }
}

/// What the queue does with a file after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying cannot help: the file ends `failed` with the error as `last_error`.
    Permanent,
    /// The fault is outside the file: back to `pending`, tried again later (no sooner than
    /// `retry_after` when the provider said when).
    Transient { retry_after: Option<Duration> },
    /// A deployment problem every file would meet (storage rejected the worker's
    /// credentials; the embedding provider's quota is spent or its key refused): back to
    /// `pending` without spending an attempt, and no claims for a while. Not the document's
    /// fault, so it must not fail the file.
    Paused,
    /// Another worker owns the file now; this worker must write nothing.
    LeaseLost,
    /// Interrupted by shutdown: back to `pending` without spending an attempt.
    Shutdown,
    /// The object was replaced while this worker processed its older bytes: nothing is
    /// written, and the file is due again at once, its attempt refunded, for the new bytes.
    Superseded,
}

impl JobError {
    /// The one place that decides retry-or-give-up for a file.
    pub fn class(&self) -> ErrorClass {
        match self {
            // The row names an object its owner may not read: no retry makes it readable.
            JobError::Ownership(_) => ErrorClass::Permanent,
            JobError::Storage(e) if e.pauses_work() => ErrorClass::Paused,
            JobError::Storage(e) if e.is_transient() => ErrorClass::Transient { retry_after: None },
            JobError::Storage(_) => ErrorClass::Permanent,
            // Extraction is deterministic: the same bytes fail the same way next time.
            JobError::Extract(_) => ErrorClass::Permanent,
            JobError::Embed(e) => e.class(),
            JobError::Database(e) => database_class(e),
            // A file that timed out once will time out again; fail it clearly instead of
            // spending every attempt on it.
            JobError::Timeout(_) => ErrorClass::Permanent,
            JobError::LeaseLost => ErrorClass::LeaseLost,
            JobError::Shutdown => ErrorClass::Shutdown,
            JobError::ObjectChanged => ErrorClass::Superseded,
        }
    }
}

/// Connection problems and serialization failures are blips; anything else the database
/// rejects (for example text it cannot store) would be rejected again.
fn database_class(e: &sqlx::Error) -> ErrorClass {
    use sqlx::Error as E;
    let transient = match e {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_) => true,
        E::Protocol(_) => true,
        E::Database(db) => match db.code().as_deref() {
            // 08xxx connection exceptions, 40001 serialization failure, 40P01 deadlock,
            // 53xxx insufficient resources, 57P0x admin shutdown / crash / cannot connect now.
            Some(code) => {
                code.starts_with("08")
                    || code == "40001"
                    || code == "40P01"
                    || code.starts_with("53")
                    || code.starts_with("57P")
            }
            None => false,
        },
        _ => false,
    };
    if transient {
        ErrorClass::Transient { retry_after: None }
    } else {
        ErrorClass::Permanent
    }
}

/// What a caught panic said, for an error message.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_non_embedding_errors() {
        assert_eq!(
            JobError::Extract(ExtractError::NoText).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            JobError::Storage(StorageError::NotFound {
                bucket: "b".into(),
                key: "k".into()
            })
            .class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            JobError::Storage(StorageError::Unavailable("connection refused".into())).class(),
            ErrorClass::Transient { retry_after: None }
        );
        assert_eq!(
            JobError::Storage(StorageError::Denied("HTTP 403 AccessDenied".into())).class(),
            ErrorClass::Paused
        );
        assert_eq!(
            JobError::Storage(StorageError::NoBucket("documents".into())).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            JobError::Ownership(OwnershipError::UploadedByAnother).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            JobError::Database(sqlx::Error::PoolTimedOut).class(),
            ErrorClass::Transient { retry_after: None }
        );
        assert_eq!(
            JobError::Database(sqlx::Error::RowNotFound).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            JobError::Timeout(Duration::from_secs(5)).class(),
            ErrorClass::Permanent
        );
        assert_eq!(JobError::LeaseLost.class(), ErrorClass::LeaseLost);
        assert_eq!(JobError::Shutdown.class(), ErrorClass::Shutdown);
        assert_eq!(JobError::ObjectChanged.class(), ErrorClass::Superseded);
    }
}
