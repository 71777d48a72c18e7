//! ListObjects (v1) and ListObjectsV2 over the bucket's merged index
//! shards: prefix, delimiter, marker / start-after / continuation token,
//! max-keys, `encoding-type=url` and fetch-owner.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::{
    CommonPrefix, ETag, EncodingType, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input,
    ListObjectsV2Output, Object, ObjectStorageClass,
};
use s3s::{S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::bucket;
use crate::error::S3Result;
use crate::model::acl::Permission;
use crate::model::index::{ListPage, ListQuery, Listed};
use crate::model::system_time;

/// Most keys one listing page returns (S3's limit).
pub(crate) const MAX_KEYS: i32 = 1000;

/// What `encoding-type=url` leaves as is: RFC 3986 unreserved characters
/// and '/' (as S3 does).
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub(crate) fn max_keys(n: Option<i32>) -> S3Result<usize> {
    match n {
        None => Ok(MAX_KEYS as usize),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok(n.min(MAX_KEYS) as usize),
    }
}

/// Encodes keys and prefixes for the response as `encoding-type` asks.
pub(crate) struct Encoder {
    url: bool,
}

impl Encoder {
    pub(crate) fn new(e: Option<&EncodingType>) -> S3Result<Self> {
        match e.map(EncodingType::as_str) {
            None => Ok(Encoder { url: false }),
            Some(EncodingType::URL) => Ok(Encoder { url: true }),
            Some(other) => Err(s3_error!(
                InvalidArgument,
                "Invalid Encoding Method specified in Request: {other}"
            )),
        }
    }

    pub(crate) fn apply(&self, s: &str) -> String {
        if self.url {
            utf8_percent_encode(s, KEY_ENCODE).to_string()
        } else {
            s.to_string()
        }
    }
}

/// Runs a listing; with `max == 0` it answers no items, untruncated.
async fn run(
    gw: &Gateway,
    bucket: &crate::model::buckets::BucketRecord,
    q: ListQuery,
) -> S3Result<ListPage> {
    if q.max == 0 {
        return Ok(ListPage::default());
    }
    Ok(bucket.index(gw.pools()).list(&q).await?)
}

/// The page's objects and common prefixes as S3 elements.
async fn elements(
    gw: &Gateway,
    page: &ListPage,
    enc: &Encoder,
    with_owner: bool,
) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut owners = bucket::Owners::default();
    for item in &page.items {
        match item {
            Listed::Object(key, r) => objects.push(Object {
                key: Some(enc.apply(key)),
                e_tag: Some(ETag::Strong(r.etag.clone())),
                last_modified: Some(system_time(r.mtime_ms).into()),
                size: Some(r.size as i64),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                owner: if with_owner {
                    Some(owners.of(gw, &r.owner).await)
                } else {
                    None
                },
                ..Default::default()
            }),
            Listed::Prefix(p) => prefixes.push(CommonPrefix {
                prefix: Some(enc.apply(p)),
            }),
        }
    }
    (objects, prefixes)
}

pub async fn list_v1(
    gw: &Gateway,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Read).await?;
    let i = req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let q = ListQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        start_after: i.marker.clone().filter(|m| !m.is_empty()),
        delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
        max: max_keys(i.max_keys)?,
    };
    let page = run(gw, &bucket, q).await?;
    // NextMarker is returned only with a delimiter (S3's rule).
    let next_marker = (page.truncated && i.delimiter.is_some())
        .then(|| page.items.last().map(|l| enc.apply(l.name())))
        .flatten();
    let (contents, prefixes) = elements(gw, &page, &enc, true).await;
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        // v1 returns the prefix as sent (clients decode only the other
        // fields; RGW does the same).
        prefix: Some(i.prefix.unwrap_or_default()),
        marker: Some(enc.apply(&i.marker.unwrap_or_default())),
        max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(page.truncated),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc.apply(&d)),
        next_marker,
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

/// A v2 continuation token: the key to continue after, hex-encoded (an
/// opaque string to clients).
fn decode_token(token: &str) -> S3Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

pub async fn list_v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Read).await?;
    let i = req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let after = match &i.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => i.start_after.clone().filter(|s| !s.is_empty()),
    };
    let q = ListQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        start_after: after,
        delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
        max: max_keys(i.max_keys)?,
    };
    let page = run(gw, &bucket, q).await?;
    let next_continuation_token = page
        .truncated
        .then(|| page.items.last().map(|l| hex::encode(l.name())))
        .flatten();
    let (contents, prefixes) = elements(gw, &page, &enc, i.fetch_owner == Some(true)).await;
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc.apply(&i.prefix.unwrap_or_default())),
        max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
        key_count: Some(page.items.len() as i32),
        continuation_token: i.continuation_token,
        is_truncated: Some(page.truncated),
        next_continuation_token,
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc.apply(&d)),
        encoding_type: i.encoding_type,
        start_after: i.start_after.map(|s| enc.apply(&s)),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved() {
        let e = Encoder { url: true };
        assert_eq!(e.apply("a b/c+d~e_f.g-h"), "a%20b/c%2Bd~e_f.g-h");
        assert_eq!(e.apply("ü"), "%C3%BC");
        assert_eq!(Encoder { url: false }.apply("a b"), "a b");
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let t = hex::encode("photos/ü");
        assert_eq!(decode_token(&t).unwrap(), "photos/ü");
        assert!(decode_token("zz").is_err());
        assert!(decode_token(&hex::encode([0xff, 0xfe])).is_err());
    }

    #[test]
    fn max_keys_is_capped_and_checked() {
        assert_eq!(max_keys(None).unwrap(), 1000);
        assert_eq!(max_keys(Some(5000)).unwrap(), 1000);
        assert_eq!(max_keys(Some(0)).unwrap(), 0);
        assert!(max_keys(Some(-1)).is_err());
    }
}
