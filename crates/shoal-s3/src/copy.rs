//! CopyObject (metadata COPY or REPLACE, conditional copy, copy onto
//! itself) and the source side shared with UploadPartCopy: the source's
//! bytes stream from its data objects into a fresh one.

use s3s::checksum::ChecksumHasher;
use s3s::dto::{
    CopyObjectInput, CopyObjectOutput, CopyObjectResult, CopySource, ETag, ETagCondition,
    MetadataDirective, Timestamp,
};
use s3s::{S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::body::{self, BodyLimits, Stored};
use crate::bucket;
use crate::dates::unix_secs;
use crate::error::{ModelError, S3Result};
use crate::model::acl::Permission;
use crate::model::index::{Index, Pending};
use crate::model::now_ms;
use crate::model::record::{ObjectRecord, Segment};
use crate::put;

/// The record of the object (or version) `copy_source` names, if the
/// requester may read it, and the source version id to report.
pub async fn source<T>(
    gw: &Gateway,
    req: &S3Request<T>,
    copy_source: &CopySource,
) -> S3Result<(ObjectRecord, Option<String>)> {
    let CopySource::Bucket {
        bucket,
        key,
        version_id,
    } = copy_source
    else {
        return Err(s3_error!(
            InvalidArgument,
            "copy sources are bucket/key (access points are not served)"
        ));
    };
    let version = version_id.as_deref();
    let (_, record) =
        bucket::authorize_object(gw, req, bucket, key, version, Permission::Read).await?;
    let reported = record.version_id.clone();
    Ok((record, reported))
}

/// The `x-amz-copy-source-if-*` conditions: any that fails is a 412.
pub fn check_source_conditions(
    r: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> Result<(), ModelError> {
    let matches =
        |c: &ETagCondition| c.is_any() || c.as_etag().is_some_and(|e| e.value() == r.etag);
    let modified = r.mtime_secs();
    let ok = if_match.is_none_or(matches)
        && !if_none_match.is_some_and(matches)
        // If-Match that holds overrides If-Unmodified-Since, and
        // If-None-Match that holds overrides If-Modified-Since (S3's rule).
        && (if_match.is_some() || if_unmodified_since.is_none_or(|t| modified <= unix_secs(t)))
        && (if_none_match.is_some() || if_modified_since.is_none_or(|t| modified > unix_secs(t)));
    if ok {
        Ok(())
    } else {
        Err(ModelError::PreconditionFailed)
    }
}

/// Streams bytes `[first, end)` of `source` into a fresh data object
/// claimed for `key` in `index`.
pub async fn store_copy(
    gw: &Gateway,
    index: &Index,
    key: &str,
    source: &ObjectRecord,
    first: u64,
    end: u64,
) -> Result<(Pending, Stored), ModelError> {
    let body = body::stream_range(gw.pools().data.clone(), source.segments.clone(), first, end);
    let limits = BodyLimits {
        declared: Some(end - first),
        max: gw.conf().max_object_bytes,
        idle: std::time::Duration::from_millis(gw.conf().body_idle_timeout_ms),
    };
    put::store_new(
        gw,
        index,
        key,
        Some(body),
        &limits,
        ChecksumHasher::default(),
    )
    .await
}

pub async fn copy_object(
    gw: &Gateway,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let (bucket, owner) = bucket::writer(gw, &req, &req.input.bucket).await?;
    let i = &req.input;
    put::check_key(&i.key)?;
    let acl = put::object_acl!(i, &owner, &bucket.owner)?;
    let (source, source_version) = source(gw, &req, &i.copy_source).await?;
    check_source_conditions(
        &source,
        i.copy_source_if_match.as_ref(),
        i.copy_source_if_none_match.as_ref(),
        i.copy_source_if_modified_since.as_ref(),
        i.copy_source_if_unmodified_since.as_ref(),
    )?;
    let replace = i
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    // Copying an older version onto its key restores it, which is allowed.
    let same = matches!(&i.copy_source, CopySource::Bucket { bucket: b, key: k, version_id: v }
        if **b == *i.bucket && **k == *i.key && v.is_none());
    if same && !replace {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata, storage class, website redirect location \
             or encryption attributes."
        ));
    }
    let index = bucket.index(gw.pools());
    let (pending, stored) = store_copy(gw, &index, &i.key, &source, 0, source.size).await?;
    let (headers, user_meta) = if replace {
        (
            put::system_headers(
                i.content_type.clone(),
                i.cache_control.clone(),
                i.content_disposition.clone(),
                i.content_encoding.clone(),
                i.content_language.clone(),
                i.expires.clone(),
            ),
            i.metadata
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        )
    } else {
        (source.headers.clone(), source.user_meta.clone())
    };
    let record = ObjectRecord {
        size: stored.size,
        etag: hex::encode(stored.md5),
        mtime_ms: now_ms(),
        owner,
        headers,
        user_meta,
        checksums: source.checksums.clone(),
        segments: vec![Segment {
            data: pending.data.clone(),
            size: stored.size,
        }],
        upload_id: None,
        acl,
        version_id: None,
        delete_marker: false,
    };
    let committed = index
        .commit(
            &i.key,
            &pending,
            &record,
            &|_| Ok(()),
            bucket.write_mode(),
            gw.conf().gc_min_wait_ms,
        )
        .await;
    let planned = match committed {
        Ok(p) => p,
        Err(e) => {
            if !matches!(e, ModelError::UploadExpired) {
                put::give_up(&index, pending).await;
            }
            return Err(e.into());
        }
    };
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(record.etag)),
            last_modified: Some(crate::model::system_time(record.mtime_ms).into()),
            ..Default::default()
        }),
        version_id: planned.version_id,
        copy_source_version_id: source_version,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> ObjectRecord {
        ObjectRecord::sample("e1", 1, 10_000)
    }

    fn ts(secs: i64) -> Timestamp {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap()
            .into()
    }

    #[test]
    fn copy_source_conditions() {
        let r = rec();
        let e = |v: &str| ETagCondition::ETag(ETag::Strong(v.into()));
        check_source_conditions(&r, None, None, None, None).unwrap();
        check_source_conditions(&r, Some(&e("e1")), None, None, None).unwrap();
        assert!(check_source_conditions(&r, Some(&e("x")), None, None, None).is_err());
        assert!(check_source_conditions(&r, None, Some(&e("e1")), None, None).is_err());
        check_source_conditions(&r, None, None, Some(&ts(9)), None).unwrap();
        assert!(check_source_conditions(&r, None, None, Some(&ts(10)), None).is_err());
        assert!(check_source_conditions(&r, None, None, None, Some(&ts(9))).is_err());
        // A holding If-Match overrides a failing If-Unmodified-Since.
        check_source_conditions(&r, Some(&e("e1")), None, None, Some(&ts(9))).unwrap();
    }
}
