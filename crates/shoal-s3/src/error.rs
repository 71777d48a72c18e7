//! Model errors, and the one place they become S3 errors.

use s3s::{S3Error, S3ErrorCode};
use shoal_client::{ClientError, OsdErrorCode};
use thiserror::Error;

/// Why a model operation failed.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The name is no valid bucket name.
    #[error("{0}")]
    InvalidBucketName(String),
    /// No bucket of that name.
    #[error("the bucket {0:?} does not exist")]
    NoSuchBucket(String),
    /// The name is taken by another owner.
    #[error("the bucket {0:?} exists and belongs to someone else")]
    BucketExists(String),
    /// The name is taken by the requester.
    #[error("you already own the bucket {0:?}")]
    BucketOwnedByYou(String),
    /// A bucket to be deleted still holds objects or uploads.
    #[error("the bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// No object under that key.
    #[error("no object under key {0:?}")]
    NoSuchKey(String),
    /// The key's latest version (or the version named) is a delete marker.
    #[error("the version {version_id:?} is a delete marker")]
    DeleteMarker {
        /// The marker's version id.
        version_id: String,
        /// The request named the version (else it asked for the current
        /// object).
        named: bool,
    },
    /// A precondition (If-Match, If-None-Match, ...) does not hold.
    #[error("a precondition does not hold")]
    PreconditionFailed,
    /// A GET/HEAD precondition says the client's copy is current.
    #[error("not modified")]
    NotModified,
    /// The body does not match its Content-MD5.
    #[error("the Content-MD5 you specified did not match what we received")]
    BadDigest,
    /// The body does not match an `x-amz-checksum-*` header.
    #[error("the {algorithm} checksum you specified did not match what we received")]
    BadChecksum {
        /// The algorithm.
        algorithm: &'static str,
    },
    /// The body ended before its declared length.
    #[error("the body ended after {got} of {want} bytes")]
    IncompleteBody {
        /// Bytes received.
        got: u64,
        /// Bytes declared.
        want: u64,
    },
    /// The body is larger than allowed.
    #[error("the body is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The requested range lies outside the object.
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    /// An argument is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request's URI (its key) cannot be served.
    #[error("Couldn't parse the specified URI.")]
    InvalidUri,
    /// The Content-MD5 header is not base64 of 16 bytes.
    #[error("the Content-MD5 you specified is not valid")]
    InvalidDigest,
    /// The requester may not do this.
    #[error("access denied")]
    AccessDenied,
    /// No user of that id.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// A user of that id exists.
    #[error("user {0:?} exists")]
    UserExists(String),
    /// A record in the cluster does not parse.
    #[error("corrupt record {what}: {why}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// Too many concurrent changes to one entry: the client should retry.
    #[error("too many concurrent changes to {0:?}; retry")]
    Busy(String),
    /// The upload's data was collected as abandoned before it finished.
    #[error("the upload took longer than the gateway's upload grace")]
    UploadExpired,
    /// No multipart upload of that id.
    #[error("the upload {0:?} does not exist (it may have been completed or aborted)")]
    NoSuchUpload(String),
    /// A part named in a completion is missing or has another ETag.
    #[error("part {0} was not uploaded, or its ETag does not match")]
    InvalidPart(u32),
    /// A completion names parts out of ascending order.
    #[error("the parts must be listed in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum.
    #[error("each part but the last must be at least 5 MiB")]
    EntityTooSmall,
    /// A request's XML document is malformed or empty where it may not be.
    #[error("{0}")]
    MalformedXml(String),
    /// The request combines what may not be combined.
    #[error("{0}")]
    InvalidRequest(String),
    /// A grant names a user by e-mail address (not served).
    #[error("the e-mail address {0:?} does not match a user")]
    UnresolvableGrant(String),
    /// The client's request body failed (the connection broke or stalled).
    #[error("reading the request body: {0}")]
    Body(String),
    /// The cluster answered something unexpected.
    #[error("unexpected answer from the cluster: {0}")]
    Protocol(String),
    /// The cluster failed the operation.
    #[error(transparent)]
    Cluster(#[from] ClientError),
}

impl ModelError {
    /// A record that does not parse.
    pub fn corrupt(what: impl Into<String>, why: impl std::fmt::Display) -> ModelError {
        ModelError::Corrupt {
            what: what.into(),
            why: why.to_string(),
        }
    }
}

/// A cluster failure as S3 sees it: overload and unavailability are 503s
/// (clients retry them), never a wrong answer.
fn cluster_error(e: &ClientError) -> S3Error {
    let unavailable = |msg: String| S3Error::with_message(S3ErrorCode::ServiceUnavailable, msg);
    match e {
        ClientError::Timeout { .. } | ClientError::Unreachable { .. } => {
            unavailable(format!("the cluster did not answer in time: {e}"))
        }
        ClientError::Osd { code, .. } if code.is_retryable() => {
            unavailable(format!("the cluster is busy: {e}"))
        }
        ClientError::Osd {
            code: OsdErrorCode::NoSpace,
            ..
        } => unavailable("the cluster is full".into()),
        ClientError::Changed(_) => S3Error::with_message(
            S3ErrorCode::SlowDown,
            "the object changed while it was read; retry",
        ),
        _ => S3Error::with_message(S3ErrorCode::InternalError, e.to_string()),
    }
}

impl From<ModelError> for S3Error {
    fn from(e: ModelError) -> S3Error {
        use S3ErrorCode as C;
        let msg = e.to_string();
        let code = match &e {
            ModelError::Cluster(c) => {
                tracing::warn!(error = %c, "cluster error");
                return cluster_error(c);
            }
            ModelError::NoSuchBucket(_) => C::NoSuchBucket,
            ModelError::InvalidBucketName(_) => C::InvalidBucketName,
            ModelError::BucketExists(_) => C::BucketAlreadyExists,
            ModelError::BucketOwnedByYou(_) => C::BucketAlreadyOwnedByYou,
            ModelError::BucketNotEmpty(_) => C::BucketNotEmpty,
            ModelError::NoSuchKey(_) => {
                let mut err = S3Error::with_message(C::NoSuchKey, msg);
                err.set_headers(marker_headers(false, None));
                return err;
            }
            ModelError::DeleteMarker { version_id, named } => {
                let code = if *named {
                    C::MethodNotAllowed
                } else {
                    C::NoSuchKey
                };
                let mut err = S3Error::with_message(code, msg);
                err.set_headers(marker_headers(true, Some(version_id)));
                return err;
            }
            ModelError::PreconditionFailed => C::PreconditionFailed,
            ModelError::NotModified => C::NotModified,
            ModelError::BadDigest => C::BadDigest,
            ModelError::BadChecksum { .. } => C::BadDigest,
            ModelError::IncompleteBody { .. } => C::IncompleteBody,
            ModelError::TooLarge { .. } => C::EntityTooLarge,
            ModelError::InvalidRange => C::InvalidRange,
            ModelError::InvalidArgument(_) => C::InvalidArgument,
            ModelError::InvalidDigest => C::InvalidDigest,
            ModelError::InvalidUri => C::InvalidURI,
            ModelError::AccessDenied => C::AccessDenied,
            ModelError::NoSuchUser(_) | ModelError::UserExists(_) => C::InvalidArgument,
            ModelError::Busy(_) => C::SlowDown,
            ModelError::NoSuchUpload(_) => C::NoSuchUpload,
            ModelError::InvalidPart(_) => C::InvalidPart,
            ModelError::InvalidPartOrder => C::InvalidPartOrder,
            ModelError::EntityTooSmall => C::EntityTooSmall,
            ModelError::MalformedXml(_) => C::MalformedXML,
            ModelError::InvalidRequest(_) => C::InvalidRequest,
            ModelError::UnresolvableGrant(_) => C::UnresolvableGrantByEmailAddress,
            ModelError::UploadExpired => C::ServiceUnavailable,
            ModelError::Body(_) => C::IncompleteBody,
            ModelError::Corrupt { .. } | ModelError::Protocol(_) => {
                tracing::error!(error = %e, "internal error");
                C::InternalError
            }
        };
        S3Error::with_message(code, msg)
    }
}

/// The headers saying whether a missing object is a delete marker (RGW
/// sends `false` too; clients such as s3-tests read it).
fn marker_headers(marker: bool, version_id: Option<&str>) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static(if marker { "true" } else { "false" }),
    );
    if let Some(v) = version_id.and_then(|v| http::HeaderValue::from_str(v).ok()) {
        h.insert("x-amz-version-id", v);
    }
    h
}

/// Shorthand for the S3 operations' results.
pub type S3Result<T> = Result<T, S3Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_trouble_is_retryable_and_model_errors_keep_their_codes() {
        let timeout = ModelError::Cluster(ClientError::Timeout {
            object: "x".into(),
            timeout: std::time::Duration::from_secs(1),
            last: "none".into(),
        });
        let e = S3Error::from(timeout);
        assert_eq!(e.code(), &S3ErrorCode::ServiceUnavailable);
        let full = ModelError::Cluster(ClientError::Osd {
            object: "x".into(),
            code: OsdErrorCode::NoSpace,
            message: "full".into(),
        });
        assert_eq!(S3Error::from(full).code(), &S3ErrorCode::ServiceUnavailable);
        let e = S3Error::from(ModelError::NoSuchKey("k".into()));
        assert_eq!(e.code(), &S3ErrorCode::NoSuchKey);
        let e = S3Error::from(ModelError::BucketNotEmpty("b".into()));
        assert_eq!(e.code(), &S3ErrorCode::BucketNotEmpty);
    }
}
