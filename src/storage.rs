//! Object storage: Supabase Storage or any S3-compatible server, through aws-sdk-s3.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};

use crate::config::StorageSettings;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found in storage: bucket {bucket:?}, path {key:?}")]
    NotFound { bucket: String, key: String },
    #[error("object is {size} bytes, over the {max}-byte limit (storage.max_object_bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error("storage refused the request: {0}")]
    Refused(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StorageError {
    /// Missing, oversized or forbidden objects stay that way; outages pass.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, StorageError::Unavailable(_))
    }
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
    /// Credentials come from the SDK's own chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN, profiles); endpoint and region from our settings.
    pub async fn from_settings(settings: &StorageSettings) -> Self {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .load()
            .await;
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
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StorageError> {
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
        Ok(buf.freeze())
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

fn classify_sdk_error<E>(err: SdkError<E, HttpResponse>, bucket: &str, key: &str) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
    if matches!(code, "NoSuchKey" | "NotFound" | "NoSuchBucket") || status == Some(404) {
        return StorageError::NotFound {
            bucket: bucket.to_string(),
            key: key.to_string(),
        };
    }
    let message = DisplayErrorContext(&err).to_string();
    match status {
        // Timeouts, throttling, outages and no answer at all pass; other client errors
        // (403 and the like) will not.
        Some(408 | 429) | None => StorageError::Unavailable(message),
        Some(s) if s >= 500 => StorageError::Unavailable(message),
        Some(_) => StorageError::Refused(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
