//! PutObject: the body is stored under a fresh data name claimed in the
//! index, checked against Content-MD5 and `x-amz-checksum-*`, then the
//! key's index entry is switched to it in one guarded op.

use std::collections::BTreeMap;
use std::time::Duration;

use s3s::checksum::ChecksumHasher;
use s3s::dto::{
    Checksum, ChecksumAlgorithm, ETag, ETagCondition, PutObjectInput, PutObjectOutput, Timestamp,
};
use s3s::{S3Request, S3Response};

use crate::Gateway;
use crate::body::{self, BodyLimits, Stored};
use crate::bucket;
use crate::error::{ModelError, S3Result};
use crate::model::index::{Index, Pending};
use crate::model::now_ms;
use crate::model::record::{ObjectRecord, Segment, SystemHeaders};

/// Longest object key, in bytes.
pub const MAX_KEY: usize = 1024;

/// Checks an object key: 1 to 1024 bytes without control characters
/// (which XML listings cannot carry; RGW refuses them too).
pub fn check_key(key: &str) -> Result<(), ModelError> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(ModelError::InvalidArgument(format!(
            "object keys are 1 to {MAX_KEY} bytes"
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(ModelError::InvalidUri);
    }
    Ok(())
}

/// The request's Content-MD5 as 16 bytes, if it sent one (an empty
/// header, which `s3s` drops, is an invalid digest too).
pub fn content_md5(
    parsed: Option<&str>,
    headers: &http::HeaderMap,
) -> Result<Option<[u8; 16]>, ModelError> {
    match parsed {
        Some(v) => parse_content_md5(v).map(Some),
        None if headers.contains_key("content-md5") => Err(ModelError::InvalidDigest),
        None => Ok(None),
    }
}

/// The Content-MD5 header as 16 bytes.
pub fn parse_content_md5(value: &str) -> Result<[u8; 16], ModelError> {
    let bytes = base64_decode(value).ok_or(ModelError::InvalidDigest)?;
    bytes.try_into().map_err(|_| ModelError::InvalidDigest)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The checksums a client sent in headers (algorithm name -> base64).
pub fn sent_checksums(c: &Checksum) -> BTreeMap<&'static str, String> {
    [
        ("CRC32", &c.checksum_crc32),
        ("CRC32C", &c.checksum_crc32c),
        ("CRC64NVME", &c.checksum_crc64nvme),
        ("SHA1", &c.checksum_sha1),
        ("SHA256", &c.checksum_sha256),
    ]
    .into_iter()
    .filter_map(|(name, v)| Some((name, v.clone()?)))
    .collect()
}

/// A hasher for every algorithm named: by a checksum header, by the
/// `x-amz-sdk-checksum-algorithm`/`x-amz-trailer` headers, or by
/// `ChecksumAlgorithm`.
pub fn hasher_for(
    sent: &BTreeMap<&'static str, String>,
    algorithm: Option<&ChecksumAlgorithm>,
    headers: &http::HeaderMap,
) -> ChecksumHasher {
    let mut names: Vec<String> = sent.keys().map(|s| s.to_string()).collect();
    names.extend(algorithm.map(|a| a.as_str().to_ascii_uppercase()));
    if let Some(t) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        names.extend(t.split(',').filter_map(|h| {
            h.trim()
                .to_ascii_lowercase()
                .strip_prefix("x-amz-checksum-")
                .map(str::to_ascii_uppercase)
        }));
    }
    let mut h = ChecksumHasher::default();
    for n in names {
        match n.as_str() {
            "CRC32" => h.crc32 = Some(Default::default()),
            "CRC32C" => h.crc32c = Some(Default::default()),
            "CRC64NVME" => h.crc64nvme = Some(Default::default()),
            "SHA1" => h.sha1 = Some(Default::default()),
            "SHA256" => h.sha256 = Some(Default::default()),
            _ => {}
        }
    }
    h
}

/// Checks the computed checksums against those the client sent (in
/// headers or trailers); the verified ones are returned for storing.
pub fn verify_checksums(
    computed: &Checksum,
    mut sent: BTreeMap<&'static str, String>,
    trailers: Option<&http::HeaderMap>,
) -> Result<BTreeMap<String, String>, ModelError> {
    let computed = sent_checksums(computed);
    if let Some(t) = trailers {
        for name in computed.keys() {
            let header = format!("x-amz-checksum-{}", name.to_ascii_lowercase());
            if let Some(v) = t.get(header.as_str()).and_then(|v| v.to_str().ok()) {
                sent.insert(name, v.to_string());
            }
        }
    }
    for (name, want) in &sent {
        match computed.get(name) {
            Some(got) if got == want => {}
            _ => return Err(ModelError::BadChecksum { algorithm: name }),
        }
    }
    Ok(computed
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
}

/// The stored headers of a PUT (or multipart create).
pub fn system_headers(
    content_type: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<Timestamp>,
) -> SystemHeaders {
    // `aws-chunked` describes the request's transfer, not the object.
    let content_encoding = content_encoding.and_then(|e| {
        let kept: Vec<&str> = e
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    });
    SystemHeaders {
        content_type,
        cache_control,
        content_disposition,
        content_encoding,
        content_language,
        expires_ms: expires.map(|t| {
            let t: time::OffsetDateTime = t.into();
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        }),
    }
}

/// The `If-Match` / `If-None-Match` conditions of a write, checked against
/// the key's current object (a delete marker counts as none).
pub struct WriteConditions<'a> {
    key: &'a str,
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
}

impl<'a> WriteConditions<'a> {
    /// The conditions of a write to `key`.
    pub fn new(
        key: &'a str,
        if_match: Option<&'a ETagCondition>,
        if_none_match: Option<&'a ETagCondition>,
    ) -> Self {
        WriteConditions {
            key,
            if_match,
            if_none_match,
        }
    }

    /// Whether the write may replace `current`: `If-Match` on a missing
    /// key is NoSuchKey, any other failed condition PreconditionFailed.
    pub fn check(&self, current: Option<&ObjectRecord>) -> Result<(), ModelError> {
        let matches = |c: &ETagCondition, r: &ObjectRecord| {
            c.is_any() || c.as_etag().is_some_and(|e| e.value() == r.etag)
        };
        match (self.if_match, current) {
            (Some(_), None) => return Err(ModelError::NoSuchKey(self.key.to_string())),
            (Some(c), Some(r)) if !matches(c, r) => return Err(ModelError::PreconditionFailed),
            _ => {}
        }
        match (self.if_none_match, current) {
            (Some(c), Some(r)) if matches(c, r) => Err(ModelError::PreconditionFailed),
            _ => Ok(()),
        }
    }
}

/// The body limits of a request declaring `declared` bytes.
pub fn limits(gw: &Gateway, declared: Option<i64>) -> Result<BodyLimits, ModelError> {
    let declared = match declared {
        Some(n) if n < 0 => {
            return Err(ModelError::InvalidArgument(
                "negative Content-Length".into(),
            ));
        }
        Some(n) => Some(n as u64),
        None => None,
    };
    let max = gw.conf().max_object_bytes;
    if declared.is_some_and(|d| d > max) {
        return Err(ModelError::TooLarge { max });
    }
    Ok(BodyLimits {
        declared,
        max,
        idle: Duration::from_millis(gw.conf().body_idle_timeout_ms),
    })
}

pub async fn put(
    gw: &Gateway,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let (bucket, uid) = bucket::writer(gw, &req, &req.input.bucket).await?;
    let acl = object_acl!(req.input, &uid, &bucket.owner)?;
    let S3Request {
        input,
        headers,
        trailing_headers,
        ..
    } = req;
    check_key(&input.key)?;
    let checks = body_checks!(gw, input, headers)?;
    let index = bucket.index(gw.pools());
    let (pending, stored, checksums) = receive(
        gw,
        &index,
        &input.key,
        input.body,
        checks,
        trailing_headers.as_ref(),
    )
    .await?;
    let record = ObjectRecord {
        size: stored.size,
        etag: hex::encode(stored.md5),
        mtime_ms: now_ms(),
        owner: uid,
        headers: system_headers(
            input.content_type,
            input.cache_control,
            input.content_disposition,
            input.content_encoding,
            input.content_language,
            input.expires,
        ),
        user_meta: input
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        checksums,
        segments: vec![Segment {
            data: pending.data.clone(),
            size: stored.size,
        }],
        upload_id: None,
        acl,
        version_id: None,
        delete_marker: false,
    };
    let conditions = WriteConditions::new(
        &input.key,
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
    );
    let keep = gw.conf().gc_min_wait_ms;
    let mode = bucket.write_mode();
    let committed = index
        .commit(
            &input.key,
            &pending,
            &record,
            &|old| conditions.check(old),
            mode,
            keep,
        )
        .await;
    let planned = match committed {
        Ok(p) => p,
        Err(e) => {
            if !matches!(e, ModelError::UploadExpired) {
                give_up(&index, pending).await;
            }
            return Err(e.into());
        }
    };
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(ETag::Strong(record.etag.clone())),
        version_id: planned.version_id,
        checksum_crc32: stored.checksum.checksum_crc32,
        checksum_crc32c: stored.checksum.checksum_crc32c,
        checksum_crc64nvme: stored.checksum.checksum_crc64nvme,
        checksum_sha1: stored.checksum.checksum_sha1,
        checksum_sha256: stored.checksum.checksum_sha256,
        ..Default::default()
    }))
}

/// Claims a fresh data object for `key` and streams `body` into it; on
/// failure the claim is given up.
pub async fn store_new(
    gw: &Gateway,
    index: &Index,
    key: &str,
    body: Option<s3s::dto::StreamingBlob>,
    limits: &BodyLimits,
    hasher: ChecksumHasher,
) -> Result<(Pending, Stored), ModelError> {
    let pending = index.begin_upload(key).await?;
    match body::store(&gw.pools().data, &pending.data, body, limits, hasher).await {
        Ok(stored) => Ok((pending, stored)),
        Err(e) => {
            give_up(index, pending).await;
            Err(e)
        }
    }
}

/// The ACL a new object's request asks for (canned or grant headers;
/// none: private to its owner).
macro_rules! object_acl {
    ($i:expr, $owner:expr, $bucket_owner:expr) => {
        $crate::acl::requested_acl(
            $i.acl.as_ref().map(|a| a.as_str()),
            &$crate::acl::grant_headers!($i, objects),
            $owner,
            $bucket_owner,
        )
    };
}
pub(crate) use object_acl;

/// What an upload's body is checked against.
pub struct BodyChecks {
    /// Content-MD5, if sent.
    pub md5: Option<[u8; 16]>,
    /// Checksums sent in headers.
    pub sent: BTreeMap<&'static str, String>,
    /// Hashers for every checksum asked for.
    pub hasher: ChecksumHasher,
    /// Length and idle limits.
    pub limits: BodyLimits,
}

/// The [`BodyChecks`] of an upload input (PutObject, UploadPart).
macro_rules! body_checks {
    ($gw:expr, $i:expr, $headers:expr) => {
        (|| -> Result<$crate::put::BodyChecks, $crate::error::ModelError> {
            let sent = $crate::put::sent_checksums(&s3s::dto::Checksum {
                checksum_crc32: $i.checksum_crc32.clone(),
                checksum_crc32c: $i.checksum_crc32c.clone(),
                checksum_crc64nvme: $i.checksum_crc64nvme.clone(),
                checksum_sha1: $i.checksum_sha1.clone(),
                checksum_sha256: $i.checksum_sha256.clone(),
                checksum_type: None,
            });
            Ok($crate::put::BodyChecks {
                md5: $crate::put::content_md5($i.content_md5.as_deref(), &$headers)?,
                hasher: $crate::put::hasher_for(&sent, $i.checksum_algorithm.as_ref(), &$headers),
                sent,
                limits: $crate::put::limits($gw, $i.content_length)?,
            })
        })()
    };
}
pub(crate) use body_checks;

/// Claims a fresh data object for `key`, streams `body` into it and
/// verifies it against `checks` (and checksums in trailers); on failure
/// the claim is given up. The claim, what was stored and the verified
/// checksums.
pub async fn receive(
    gw: &Gateway,
    index: &Index,
    key: &str,
    body: Option<s3s::dto::StreamingBlob>,
    checks: BodyChecks,
    trailers: Option<&s3s::TrailingHeaders>,
) -> Result<(Pending, Stored, BTreeMap<String, String>), ModelError> {
    let (pending, stored) = store_new(gw, index, key, body, &checks.limits, checks.hasher).await?;
    let trailers = trailers.and_then(|t| t.take());
    match check_body(&stored, checks.md5, checks.sent, trailers.as_ref()) {
        Ok(checksums) => Ok((pending, stored, checksums)),
        Err(e) => {
            give_up(index, pending).await;
            Err(e)
        }
    }
}

/// Checks a stored body against the digests the client sent.
pub fn check_body(
    stored: &Stored,
    md5_sent: Option<[u8; 16]>,
    sent: BTreeMap<&'static str, String>,
    trailers: Option<&http::HeaderMap>,
) -> Result<BTreeMap<String, String>, ModelError> {
    if md5_sent.is_some_and(|m| m != stored.md5) {
        return Err(ModelError::BadDigest);
    }
    verify_checksums(&stored.checksum, sent, trailers)
}

/// Turns an upload's data into garbage (best effort: if this fails too,
/// the collector gives the upload up after the grace period).
pub async fn give_up(index: &Index, pending: Pending) {
    if let Err(e) = index.abandon(pending).await {
        tracing::warn!(error = %e, "abandoning an upload failed; the collector will");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        check_key("photos/2026/a b&c.jpg").unwrap();
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(1025)).is_err());
        assert!(matches!(
            check_key("\u{ae}\u{8a}-"),
            Err(ModelError::InvalidUri)
        ));
        assert!(matches!(check_key("a\nb"), Err(ModelError::InvalidUri)));
    }

    #[test]
    fn content_md5_must_be_base64_of_sixteen_bytes() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        let m = parse_content_md5("1B2M2Y8AsgTpgAmY7PhCfg==").unwrap();
        assert_eq!(hex::encode(m), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(matches!(
            parse_content_md5("not base64!"),
            Err(ModelError::InvalidDigest)
        ));
        assert!(matches!(
            parse_content_md5("AAAA"),
            Err(ModelError::InvalidDigest)
        ));
    }

    #[test]
    fn checksums_sent_in_headers_or_trailers_are_verified() {
        let mut h = ChecksumHasher {
            crc32: Some(Default::default()),
            ..Default::default()
        };
        h.update(b"hello");
        let computed = h.finalize();
        let good = computed.checksum_crc32.clone().unwrap();
        let mut sent = BTreeMap::new();
        sent.insert("CRC32", good.clone());
        let stored = verify_checksums(&computed, sent.clone(), None).unwrap();
        assert_eq!(stored.get("CRC32"), Some(&good));
        sent.insert("CRC32", "AAAAAA==".into());
        assert!(verify_checksums(&computed, sent, None).is_err());
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-amz-checksum-crc32", "AAAAAA==".parse().unwrap());
        assert!(verify_checksums(&computed, BTreeMap::new(), Some(&trailers)).is_err());
        trailers.insert("x-amz-checksum-crc32", good.parse().unwrap());
        assert!(verify_checksums(&computed, BTreeMap::new(), Some(&trailers)).is_ok());
    }

    #[test]
    fn trailer_and_algorithm_headers_choose_the_hashers() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-amz-trailer", "x-amz-checksum-crc32c".parse().unwrap());
        let h = hasher_for(&BTreeMap::new(), None, &headers);
        assert!(h.crc32c.is_some() && h.crc32.is_none());
        let h = hasher_for(
            &BTreeMap::new(),
            Some(&ChecksumAlgorithm::from_static(ChecksumAlgorithm::SHA256)),
            &http::HeaderMap::new(),
        );
        assert!(h.sha256.is_some());
    }
}
