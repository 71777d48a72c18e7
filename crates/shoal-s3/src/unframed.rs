//! Uploads sent with `Transfer-Encoding: chunked` and no length (HTTP/1.1
//! allows it and some clients do it). `s3s` needs the length to check a
//! signed payload, so the gateway reads such a body into memory, up to
//! `[s3] max_buffered_body_bytes`, and hands it on with its length. Larger
//! bodies are refused with MissingContentLength, which names the limit.
//! `aws-chunked` uploads carry their decoded length and keep streaming.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use s3s::{S3Error, S3ErrorCode};

/// Whether a request is an upload without any length.
pub fn needs_length(req: &http::Request<hyper::body::Incoming>) -> bool {
    let h = req.headers();
    let chunked = h
        .get(http::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    req.method() == http::Method::PUT
        && chunked
        && !h.contains_key(http::header::CONTENT_LENGTH)
        && !h.contains_key("x-amz-decoded-content-length")
}

/// The request with its whole body read (at most `limit` bytes, no pause
/// longer than `idle`) and its Content-Length set.
pub async fn with_length(
    req: http::Request<hyper::body::Incoming>,
    limit: u64,
    idle: Duration,
) -> Result<http::Request<s3s::Body>, S3Error> {
    let (mut parts, mut body) = req.into_parts();
    let mut buf = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(error(S3ErrorCode::RequestTimeout, "the body stalled")),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(error(S3ErrorCode::IncompleteBody, &e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() as u64 > limit {
                let msg = format!("send Content-Length with bodies over {limit} bytes");
                return Err(error(S3ErrorCode::MissingContentLength, &msg));
            }
        }
    }
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(buf.len()),
    );
    let body: Bytes = buf.freeze();
    Ok(http::Request::from_parts(parts, s3s::Body::from(body)))
}

fn error(code: S3ErrorCode, msg: &str) -> S3Error {
    S3Error::with_message(code, msg.to_string())
}
