//! Object storage behind one small interface, [`Storage`]: Supabase Storage or any
//! S3-compatible server through aws-sdk-s3 (`storage.backend = "s3"`), or a local directory
//! (`"fs"`) for self-hosted setups, development and the demo.

use std::path::{Component, Path, PathBuf};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use secrecy::ExposeSecret;

use crate::config::StorageSettings;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found in storage: bucket {bucket:?}, path {key:?}")]
    NotFound { bucket: String, key: String },
    #[error("bucket {0:?} does not exist or these storage credentials cannot see it")]
    NoBucket(String),
    #[error("object is {size} bytes, over the {max}-byte limit (storage.max_object_bytes)")]
    TooLarge { size: u64, max: u64 },
    /// HTTP 401/403: the worker's credentials (expired, wrong, lacking rights), not the file.
    #[error("storage rejected the worker's credentials: {0}")]
    Denied(String),
    #[error("storage refused the request: {0}")]
    Refused(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StorageError {
    /// An outage that may pass: try the file again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    /// A deployment problem every file would meet: stop claiming for a while.
    pub fn pauses_work(&self) -> bool {
        matches!(self, StorageError::Denied(_))
    }
}

/// A downloaded object.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Bytes,
    /// What identifies this content of the object: S3's version id on a versioned bucket,
    /// else its ETag; modification time and size on the filesystem. Changes when the object
    /// is overwritten.
    pub version: Option<String>,
}

/// Where the worker reads objects and `enqueue` writes them. An enum rather than a trait
/// object: there are two backends, both known here, and callers stay free of boxing.
#[derive(Clone, Debug)]
pub enum Storage {
    S3(S3Storage),
    Fs(FsStorage),
}

impl Storage {
    pub async fn from_settings(settings: &StorageSettings) -> Result<Self, StorageError> {
        match settings.backend.as_str() {
            "s3" => Ok(Storage::S3(S3Storage::from_settings(settings).await)),
            "fs" => Ok(Storage::Fs(FsStorage::new(
                &settings.fs_root,
                settings.max_object_bytes,
            ))),
            other => Err(StorageError::Refused(format!(
                "unknown storage.backend {other:?}: use \"s3\" or \"fs\""
            ))),
        }
    }

    /// Downloads an object, refusing anything over `storage.max_object_bytes`.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Object, StorageError> {
        let got = match self {
            Storage::S3(s) => s.get(bucket, key).await,
            Storage::Fs(s) => s.get(bucket, key).await,
        };
        match got {
            // Servers differ on a GET in a missing bucket (S3 and Supabase answer
            // NoSuchBucket, s3s-fs NoSuchKey): ask for the bucket, so the message names what
            // is missing. Only on this failure path, so it costs nothing otherwise.
            Err(StorageError::NotFound { .. }) if self.bucket_missing(bucket).await => {
                Err(StorageError::NoBucket(bucket.to_string()))
            }
            other => other,
        }
    }

    /// The object's current version (see [`Object::version`]) without downloading it;
    /// `NotFound` when it is gone.
    pub async fn version(&self, bucket: &str, key: &str) -> Result<Option<String>, StorageError> {
        match self {
            Storage::S3(s) => s.version(bucket, key).await,
            Storage::Fs(s) => s.version(bucket, key).await.map(Some),
        }
    }

    /// Whether the bucket is known not to exist (an error saying anything else is `false`).
    async fn bucket_missing(&self, bucket: &str) -> bool {
        match self {
            Storage::S3(s) => {
                matches!(s.check_bucket(bucket).await, Err(StorageError::NoBucket(_)))
            }
            Storage::Fs(s) => match s.bucket_dir(bucket) {
                Ok(dir) => !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()),
                Err(_) => false,
            },
        }
    }

    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        match self {
            Storage::S3(s) => s.put(bucket, key, body, content_type).await,
            Storage::Fs(s) => s.put(bucket, key, body).await,
        }
    }

    /// Fails unless the bucket exists and may be used.
    pub async fn check_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        match self {
            Storage::S3(s) => s.check_bucket(bucket).await,
            Storage::Fs(s) => s.check_bucket(bucket).await,
        }
    }

    /// The start-up check: asks for every bucket rows may name (`allowed`), which also
    /// proves the credentials. Rejected credentials or an unreachable server are errors;
    /// a missing bucket, or queued files naming a bucket outside `allowed`, are warnings
    /// (those files will fail saying so, the others are fine). `queued`: files waiting per
    /// bucket.
    pub async fn check_access(
        &self,
        allowed: &[&str],
        queued: &[(String, i64)],
    ) -> Result<Vec<String>, StorageError> {
        let waiting = |bucket: &str| {
            queued
                .iter()
                .find(|(b, _)| b == bucket)
                .map_or(0, |(_, n)| *n)
        };
        let mut warnings = Vec::new();
        for (bucket, n) in queued {
            if !allowed.contains(&bucket.as_str()) {
                warnings.push(format!(
                    "{n} queued files name bucket {bucket:?}, which is not in storage.buckets; they will fail"
                ));
            }
        }
        for bucket in allowed {
            match self.check_bucket(bucket).await {
                Ok(()) => {}
                Err(e @ StorageError::NoBucket(_)) => {
                    warnings.push(format!("{e} ({} queued files name it)", waiting(bucket)))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(warnings)
    }
}

/// Objects as files: `<fs_root>/<bucket>/<path>`. Object paths come from `files` rows that
/// apps write, so a path that would leave its bucket directory (`..`, absolute paths) is
/// refused rather than resolved.
#[derive(Clone, Debug)]
pub struct FsStorage {
    root: PathBuf,
    max_object_bytes: u64,
}

impl FsStorage {
    pub fn new(root: impl Into<PathBuf>, max_object_bytes: u64) -> Self {
        Self {
            root: root.into(),
            max_object_bytes,
        }
    }

    fn object_path(&self, bucket: &str, key: &str) -> Result<PathBuf, StorageError> {
        Ok(self.bucket_dir(bucket)?.join(plain(key, "object path")?))
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, StorageError> {
        Ok(self.root.join(plain(bucket, "bucket")?))
    }

    fn io_error(err: std::io::Error, bucket: &str, key: &str, path: &Path) -> StorageError {
        match err.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
            },
            std::io::ErrorKind::PermissionDenied => {
                StorageError::Refused(format!("{}: {err}", path.display()))
            }
            // A full disk or a flaky network mount may pass.
            _ => StorageError::Unavailable(format!("{}: {err}", path.display())),
        }
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Object, StorageError> {
        let path = self.object_path(bucket, key)?;
        let fail = |e| Self::io_error(e, bucket, key, &path);
        let meta = tokio::fs::metadata(&path).await.map_err(fail)?;
        if !meta.is_file() {
            return Err(StorageError::NotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        if meta.len() > self.max_object_bytes {
            return Err(StorageError::TooLarge {
                size: meta.len(),
                max: self.max_object_bytes,
            });
        }
        let bytes = tokio::fs::read(&path).await.map_err(fail)?;
        // The file may have grown between metadata and read.
        if bytes.len() as u64 > self.max_object_bytes {
            return Err(StorageError::TooLarge {
                size: bytes.len() as u64,
                max: self.max_object_bytes,
            });
        }
        Ok(Object {
            bytes: Bytes::from(bytes),
            version: Some(fs_version(&meta)),
        })
    }

    /// The file's modification time and size, as its version.
    pub async fn version(&self, bucket: &str, key: &str) -> Result<String, StorageError> {
        let path = self.object_path(bucket, key)?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| Self::io_error(e, bucket, key, &path))?;
        if !meta.is_file() {
            return Err(StorageError::NotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        Ok(fs_version(&meta))
    }

    /// Writes through a temporary file and a rename, so a reader never sees half an object.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let path = self.object_path(bucket, key)?;
        let fail = |e| Self::io_error(e, bucket, key, &path);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(fail)?;
        }
        let tmp = path.with_extension(format!("ragworker-{}.tmp", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, body).await.map_err(fail)?;
        tokio::fs::rename(&tmp, &path).await.map_err(fail)
    }

    /// A bucket is a directory under the root; `enqueue` creates it on first use.
    pub async fn check_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        let dir = self.bucket_dir(bucket)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Self::io_error(e, bucket, "", &dir))
    }
}

/// `part` as a relative path of plain components only: no `..`, no root, not empty.
fn plain<'a>(part: &'a str, what: &str) -> Result<&'a Path, StorageError> {
    let path = Path::new(part);
    if part.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(StorageError::Refused(format!(
            "{what} {part:?} is not a plain relative path (no \"..\", no leading \"/\")"
        )));
    }
    Ok(path)
}

/// Adds the trailing `/` that aws-sdk-rust needs to keep an endpoint's path (such as
/// Supabase's `/storage/v1/s3`) when it builds path-style URLs (aws-sdk-rust#1387).
pub fn normalize_endpoint(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.ends_with('/') {
        endpoint.to_string()
    } else {
        format!("{endpoint}/")
    }
}

#[derive(Clone, Debug)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    max_object_bytes: u64,
}

impl S3Storage {
    /// Credentials come from storage.access_key_id / secret_access_key when set, else from
    /// the SDK's own chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
    /// profiles); endpoint and region from our settings.
    pub async fn from_settings(settings: &StorageSettings) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()));
        if !settings.access_key_id.is_empty() {
            loader = loader.credentials_provider(Credentials::new(
                settings.access_key_id.clone(),
                settings.secret_access_key.expose_secret().to_string(),
                None,
                None,
                "ragworker-config",
            ));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.force_path_style)
            // Newer SDKs send aws-chunked uploads with checksum trailers by default, which
            // older S3-compatible servers (and some Supabase versions) reject.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if !settings.endpoint.trim().is_empty() {
            builder = builder.endpoint_url(normalize_endpoint(&settings.endpoint));
        }
        Self {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            max_object_bytes: settings.max_object_bytes,
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Downloads an object, refusing (before and while reading) anything over the size limit.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Object, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, bucket, key))?;
        let max = self.max_object_bytes;
        if let Some(size) = out.content_length().and_then(|n| u64::try_from(n).ok()) {
            if size > max {
                return Err(StorageError::TooLarge { size, max });
            }
        }
        let version = s3_version(out.version_id(), out.e_tag());
        let mut body = out.body;
        let mut buf = BytesMut::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StorageError::Unavailable(format!("reading {bucket}/{key}: {e}")))?
        {
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > max {
                return Err(StorageError::TooLarge {
                    size: buf.len() as u64,
                    max,
                });
            }
        }
        Ok(Object {
            bytes: buf.freeze(),
            version,
        })
    }

    /// HEAD: the object's version without its bytes.
    pub async fn version(&self, bucket: &str, key: &str) -> Result<Option<String>, StorageError> {
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, bucket, key))?;
        Ok(s3_version(out.version_id(), out.e_tag()))
    }

    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, bucket, key))?;
        Ok(())
    }

    /// Fails unless the bucket exists and these credentials may use it.
    pub async fn check_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, bucket, ""))?;
        Ok(())
    }
}

/// A versioned bucket's version id (never "null", what S3 reports for an unversioned
/// object), else the ETag.
fn s3_version(version_id: Option<&str>, etag: Option<&str>) -> Option<String> {
    version_id
        .filter(|v| !v.is_empty() && *v != "null")
        .map(|v| format!("version:{v}"))
        .or_else(|| etag.map(|e| format!("etag:{}", e.trim_matches('"'))))
}

fn fs_version(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("mtime:{modified}:{}", meta.len())
}

/// `key` is empty for bucket-level requests. `last_error` gets the status, the S3 error
/// code and the server's message (Supabase: `HTTP 403 AccessDenied: "exp" claim timestamp
/// check failed`), never the SDK's debug dump.
fn classify_sdk_error<E>(err: SdkError<E, HttpResponse>, bucket: &str, key: &str) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (code, message) = err
        .as_service_error()
        .map_or((None, None), |e| (e.code(), e.message()));
    let no_bucket = || StorageError::NoBucket(bucket.to_string());
    match (code, status) {
        (Some("NoSuchBucket"), _) => return no_bucket(),
        // HEAD answers carry no body, so a missing bucket is a bare 404 ("NotFound").
        (Some("NoSuchKey" | "NotFound"), _) | (_, Some(404)) if key.is_empty() => {
            return no_bucket()
        }
        (Some("NoSuchKey" | "NotFound"), _) | (_, Some(404)) => {
            return StorageError::NotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
            }
        }
        _ => {}
    }
    let summary = match status {
        Some(status) => {
            let mut text = format!("HTTP {status}");
            if let Some(code) = code {
                text = format!("{text} {code}");
            }
            match message.filter(|m| !m.is_empty()) {
                Some(message) => format!("{text}: {message}"),
                None => text,
            }
        }
        None => match &err {
            SdkError::TimeoutError(_) => "the request timed out".to_string(),
            _ => {
                let chain = error_chain(&err);
                // No request left: the SDK found no credentials anywhere in its chain
                // (settings, environment, profiles, instance metadata). Every file would
                // meet it, so it is the deployment's problem, named with its settings.
                if chain.to_ascii_lowercase().contains("credentials") {
                    return StorageError::Denied(format!(
                        "no storage credentials found: set storage.access_key_id and storage.secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); {}",
                        shorten(&chain, 200)
                    ));
                }
                chain
            }
        },
    };
    let summary = shorten(&summary, 300);
    match status {
        Some(401 | 403) => StorageError::Denied(summary),
        // Timeouts, throttling, outages and no answer at all pass; other client errors will
        // not.
        Some(408 | 429) | None => StorageError::Unavailable(summary),
        Some(s) if s >= 500 => StorageError::Unavailable(summary),
        Some(_) => StorageError::Refused(summary),
    }
}

/// An error and its causes as one line ("dispatch failure: io error: ... Connection
/// refused"), each message once.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// At most `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fs_objects_round_trip_and_stay_inside_their_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStorage::new(dir.path(), 10);
        fs.check_bucket("docs").await.unwrap();
        fs.put("docs", "u1/a.txt", b"hello".to_vec()).await.unwrap();
        assert_eq!(
            &fs.get("docs", "u1/a.txt").await.unwrap().bytes[..],
            b"hello"
        );
        assert!(dir.path().join("docs/u1/a.txt").is_file());
        assert!(matches!(
            fs.get("docs", "u1/missing.txt").await,
            Err(StorageError::NotFound { .. })
        ));
        fs.put("docs", "big.bin", vec![0; 11]).await.unwrap();
        assert!(matches!(
            fs.get("docs", "big.bin").await,
            Err(StorageError::TooLarge { size: 11, max: 10 })
        ));
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        for (bucket, key) in [
            ("docs", "../secret"),
            ("docs", "/etc/passwd"),
            ("..", "secret"),
            ("docs", "u1/../../secret"),
            ("docs", ""),
        ] {
            let err = fs.get(bucket, key).await.unwrap_err();
            assert!(
                matches!(&err, StorageError::Refused(m) if m.contains("plain relative path")),
                "{bucket}/{key}: {err}"
            );
            assert!(!err.is_transient() && !err.pauses_work());
        }
    }

    #[test]
    fn endpoint_gets_exactly_one_trailing_slash() {
        assert_eq!(
            normalize_endpoint("https://abc.supabase.co/storage/v1/s3"),
            "https://abc.supabase.co/storage/v1/s3/"
        );
        assert_eq!(
            normalize_endpoint("https://abc.supabase.co/storage/v1/s3/"),
            "https://abc.supabase.co/storage/v1/s3/"
        );
        assert_eq!(
            normalize_endpoint(" http://127.0.0.1:9000 "),
            "http://127.0.0.1:9000/"
        );
    }
}
