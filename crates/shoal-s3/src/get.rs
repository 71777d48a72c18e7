//! GetObject and HeadObject: conditional requests, ranges, `partNumber`,
//! `response-*` overrides, stored headers and checksums.

use s3s::dto::{
    ChecksumMode, ETag, ETagCondition, GetObjectInput, GetObjectOutput, HeadObjectInput,
    HeadObjectOutput, Range, Timestamp,
};
use s3s::{S3Error, S3Request, S3Response};

use crate::Gateway;
use crate::body;
use crate::bucket;
use crate::dates::{httpdate, unix_secs};
use crate::error::{ModelError, S3Result};
use crate::model::acl::Permission;
use crate::model::record::ObjectRecord;
use crate::model::system_time;

/// The conditional headers of a GET or HEAD.
struct Conditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    cond.is_any() || cond.as_etag().is_some_and(|e| e.value() == etag)
}

/// RFC 9110 §13.2.2 order: If-Match, else If-Unmodified-Since; then
/// If-None-Match, else If-Modified-Since.
fn check_conditions(c: &Conditions, r: &ObjectRecord) -> Result<(), ModelError> {
    let modified = r.mtime_secs();
    match (&c.if_match, &c.if_unmodified_since) {
        (Some(m), _) if !etag_matches(m, &r.etag) => return Err(ModelError::PreconditionFailed),
        (None, Some(t)) if modified > unix_secs(t) => return Err(ModelError::PreconditionFailed),
        _ => {}
    }
    match (&c.if_none_match, &c.if_modified_since) {
        (Some(m), _) if etag_matches(m, &r.etag) => Err(ModelError::NotModified),
        (None, Some(t)) if modified <= unix_secs(t) => Err(ModelError::NotModified),
        _ => Ok(()),
    }
}

/// The byte range a request selects: `(first, end, whole)`.
fn select(
    r: &ObjectRecord,
    range: Option<&Range>,
    part: Option<i32>,
) -> Result<(u64, u64, bool), ModelError> {
    if let Some(n) = part {
        if range.is_some() {
            return Err(ModelError::InvalidArgument(
                "Range and partNumber cannot both be given".into(),
            ));
        }
        let idx = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < r.segments.len().max(1))
            .ok_or(ModelError::InvalidPart(n.max(0) as u32))?;
        let first: u64 = r.segments.iter().take(idx).map(|s| s.size).sum();
        let len = r.segments.get(idx).map_or(0, |s| s.size);
        return Ok((first, first + len, r.segments.len() <= 1));
    }
    match range {
        None => Ok((0, r.size, true)),
        Some(range) => {
            let sel = range.check(r.size).map_err(|_| ModelError::InvalidRange)?;
            Ok((sel.start, sel.end, false))
        }
    }
}

/// The Content-Type of objects stored without one.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Looks up the object a GET or HEAD names, with its conditions checked.
async fn lookup<T>(
    gw: &Gateway,
    req: &S3Request<T>,
    bucket_name: &str,
    key: &str,
    version_id: Option<&str>,
    conditions: &Conditions,
) -> S3Result<ObjectRecord> {
    let (_, record) =
        bucket::authorize_object(gw, req, bucket_name, key, version_id, Permission::Read).await?;
    if let Err(e) = check_conditions(conditions, &record) {
        // 304 and 412 still say which version the client has to compare.
        let mut err = S3Error::from(e);
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", record.etag)) {
            headers.insert(http::header::ETAG, v);
        }
        let modified = httpdate(system_time(record.mtime_ms));
        if let Ok(v) = http::HeaderValue::from_str(&modified) {
            headers.insert(http::header::LAST_MODIFIED, v);
        }
        err.set_headers(headers);
        return Err(err);
    }
    Ok(record)
}

fn content_range(first: u64, end: u64, size: u64) -> String {
    format!("bytes {first}-{}/{size}", end.saturating_sub(1))
}

fn checksum(r: &ObjectRecord, mode: Option<&ChecksumMode>, name: &str) -> Option<String> {
    mode.filter(|m| m.as_str().eq_ignore_ascii_case("ENABLED"))?;
    r.checksums.get(name).cloned()
}

/// The conditional headers of a GET or HEAD input.
macro_rules! conditions {
    ($i:expr) => {
        Conditions {
            if_match: $i.if_match.clone(),
            if_none_match: $i.if_none_match.clone(),
            if_modified_since: $i.if_modified_since.clone(),
            if_unmodified_since: $i.if_unmodified_since.clone(),
        }
    };
}

/// A GET or HEAD output (`$out`) for the bytes `[$first, $end)` of record
/// `$r`, with the stored headers, the input's `response-*` overrides,
/// metadata and (for whole objects, when asked) checksums.
macro_rules! object_output {
    ($out:ident, $r:expr, $i:expr, $first:expr, $end:expr, $whole:expr) => {{
        let (r, i, h) = (&$r, &$i, &$r.headers);
        let mode = i.checksum_mode.as_ref().filter(|_| $whole);
        $out {
            content_length: Some(($end - $first) as i64),
            content_range: (!$whole || i.range.is_some())
                .then(|| content_range($first, $end, r.size)),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(r.etag.clone())),
            last_modified: Some(system_time(r.mtime_ms).into()),
            // S3 answers binary/octet-stream for objects stored without one.
            content_type: i
                .response_content_type
                .clone()
                .or_else(|| h.content_type.clone())
                .or_else(|| Some(DEFAULT_CONTENT_TYPE.into())),
            cache_control: i
                .response_cache_control
                .clone()
                .or_else(|| h.cache_control.clone()),
            content_disposition: i
                .response_content_disposition
                .clone()
                .or_else(|| h.content_disposition.clone()),
            content_encoding: i
                .response_content_encoding
                .clone()
                .or_else(|| h.content_encoding.clone()),
            content_language: i
                .response_content_language
                .clone()
                .or_else(|| h.content_language.clone()),
            expires: i.response_expires.clone().or_else(|| expires(r)),
            metadata: Some(r.user_meta.clone().into_iter().collect()),
            parts_count: (r.is_multipart() && i.part_number.is_some())
                .then_some(r.segments.len() as i32),
            checksum_crc32: checksum(r, mode, "CRC32"),
            checksum_crc32c: checksum(r, mode, "CRC32C"),
            checksum_crc64nvme: checksum(r, mode, "CRC64NVME"),
            checksum_sha1: checksum(r, mode, "SHA1"),
            checksum_sha256: checksum(r, mode, "SHA256"),
            ..Default::default()
        }
    }};
}

/// 206 for a part of the object, else the output's own status.
fn with_status<T>(output: T, partial: bool) -> S3Response<T> {
    let mut resp = S3Response::new(output);
    if partial {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    resp
}

pub async fn get(
    gw: &Gateway,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let i = &req.input;
    let version = i.version_id.as_deref();
    let r = lookup(gw, &req, &i.bucket, &i.key, version, &conditions!(i)).await?;
    let (first, end, whole) = select(&r, i.range.as_ref(), i.part_number)?;
    let mut output = object_output!(GetObjectOutput, r, i, first, end, whole);
    output.version_id = r.version_id.clone();
    let data = gw.pools().data.clone();
    output.body = Some(body::stream_range(data, r.segments.clone(), first, end));
    Ok(with_status(output, !whole || i.range.is_some()))
}

fn expires(r: &ObjectRecord) -> Option<Timestamp> {
    let ms = r.headers.expires_ms?;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(t.into())
}

pub async fn head(
    gw: &Gateway,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let i = &req.input;
    let version = i.version_id.as_deref();
    let r = lookup(gw, &req, &i.bucket, &i.key, version, &conditions!(i)).await?;
    let (first, end, whole) = select(&r, i.range.as_ref(), i.part_number)?;
    let mut output = object_output!(HeadObjectOutput, r, i, first, end, whole);
    output.version_id = r.version_id.clone();
    Ok(with_status(output, !whole || i.range.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::Segment;

    fn record(etag: &str, mtime_ms: u64) -> ObjectRecord {
        ObjectRecord::sample(etag, 100, mtime_ms)
    }

    fn none() -> Conditions {
        Conditions {
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
        }
    }

    fn ts(secs: i64) -> Timestamp {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap()
            .into()
    }

    #[test]
    fn conditions_follow_rfc_9110_precedence() {
        let r = record("abc", 10_500);
        check_conditions(&none(), &r).unwrap();
        let strong = |v: &str| Some(ETagCondition::ETag(ETag::Strong(v.into())));
        let c = Conditions {
            if_match: strong("other"),
            ..none()
        };
        assert!(matches!(
            check_conditions(&c, &r),
            Err(ModelError::PreconditionFailed)
        ));
        // If-Match holds: If-Unmodified-Since is not looked at.
        let c = Conditions {
            if_match: strong("abc"),
            if_unmodified_since: Some(ts(1)),
            ..none()
        };
        check_conditions(&c, &r).unwrap();
        let c = Conditions {
            if_none_match: strong("abc"),
            ..none()
        };
        assert!(matches!(
            check_conditions(&c, &r),
            Err(ModelError::NotModified)
        ));
        // Modified at second 10: not modified since 10, modified since 9.
        let c = Conditions {
            if_modified_since: Some(ts(10)),
            ..none()
        };
        assert!(matches!(
            check_conditions(&c, &r),
            Err(ModelError::NotModified)
        ));
        let c = Conditions {
            if_modified_since: Some(ts(9)),
            ..none()
        };
        check_conditions(&c, &r).unwrap();
        let c = Conditions {
            if_unmodified_since: Some(ts(9)),
            ..none()
        };
        assert!(matches!(
            check_conditions(&c, &r),
            Err(ModelError::PreconditionFailed)
        ));
    }

    #[test]
    fn ranges_and_parts_select_bytes() {
        let mut r = record("e", 0);
        assert_eq!(select(&r, None, None).unwrap(), (0, 100, true));
        let range = Range::Int {
            first: 10,
            last: Some(19),
        };
        assert_eq!(select(&r, Some(&range), None).unwrap(), (10, 20, false));
        let past = Range::Int {
            first: 100,
            last: None,
        };
        assert!(matches!(
            select(&r, Some(&past), None),
            Err(ModelError::InvalidRange)
        ));
        assert_eq!(select(&r, None, Some(1)).unwrap(), (0, 100, true));
        assert!(matches!(
            select(&r, None, Some(2)),
            Err(ModelError::InvalidPart(2))
        ));
        r.segments = vec![
            Segment {
                data: "a".into(),
                size: 60,
            },
            Segment {
                data: "b".into(),
                size: 40,
            },
        ];
        assert_eq!(select(&r, None, Some(2)).unwrap(), (60, 100, false));
        assert!(select(&r, None, Some(0)).is_err());
    }
}
