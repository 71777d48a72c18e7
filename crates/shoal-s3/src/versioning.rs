//! Bucket versioning: Get/PutBucketVersioning and ListObjectVersions. The
//! versions themselves are kept by the index ([`crate::model::versions`]);
//! reads, deletes and copies of a named version go through the families
//! that serve those operations.

use s3s::dto::{
    BucketVersioningStatus, DeleteMarkerEntry, ETag, GetBucketVersioningInput,
    GetBucketVersioningOutput, ListObjectVersionsInput, ListObjectVersionsOutput, MFADelete,
    ObjectVersion, ObjectVersionStorageClass, PutBucketVersioningInput, PutBucketVersioningOutput,
};
use s3s::{S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::bucket::{self, Owners};
use crate::error::S3Result;
use crate::list::{Encoder, MAX_KEYS, max_keys};
use crate::model::acl::Permission;
use crate::model::buckets::Versioning;
use crate::model::index::ListQuery;
use crate::model::system_time;
use crate::model::versioned::{ListedVersion, VersionPage};

pub async fn get(
    gw: &Gateway,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let bucket = bucket::owned(gw, &req, &req.input.bucket).await?;
    let status = bucket.versioning.map(|v| {
        BucketVersioningStatus::from_static(match v {
            Versioning::Enabled => BucketVersioningStatus::ENABLED,
            Versioning::Suspended => BucketVersioningStatus::SUSPENDED,
        })
    });
    Ok(S3Response::new(GetBucketVersioningOutput {
        status,
        ..Default::default()
    }))
}

pub async fn put(
    gw: &Gateway,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let bucket = bucket::owned(gw, &req, &req.input.bucket).await?;
    let conf = &req.input.versioning_configuration;
    if conf
        .mfa_delete
        .as_ref()
        .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
    {
        return Err(s3_error!(
            NotImplemented,
            "MFA delete is not served by this gateway"
        ));
    }
    let state = match conf.status.as_ref().map(BucketVersioningStatus::as_str) {
        None => return Ok(S3Response::new(PutBucketVersioningOutput {})),
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        Some(other) => {
            return Err(s3_error!(
                MalformedXML,
                "versioning status {other:?} is neither Enabled nor Suspended"
            ));
        }
    };
    gw.buckets().set_versioning(&bucket.name, state).await?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

/// ListObjectVersions: versions and delete markers, newest first within a
/// key, with key and version-id markers.
pub async fn list(
    gw: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Read).await?;
    let i = req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let q = ListQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        start_after: i.key_marker.clone().filter(|m| !m.is_empty()),
        delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
        max: max_keys(i.max_keys)?,
    };
    let page = if q.max == 0 {
        VersionPage::default()
    } else {
        let marker = i.version_id_marker.as_deref();
        bucket.index(gw.pools()).list_versions(&q, marker).await?
    };
    let (next_key, next_version) = match page.items.last().filter(|_| page.truncated) {
        Some(last) => {
            let (k, v) = last.marker();
            (Some(enc.apply(k)), v.map(str::to_string))
        }
        None => (None, None),
    };
    let mut out = ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: Some(enc.apply(&i.prefix.unwrap_or_default())),
        key_marker: Some(enc.apply(&i.key_marker.unwrap_or_default())),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        next_key_marker: next_key,
        next_version_id_marker: next_version,
        max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(page.truncated),
        versions: Some(Vec::new()),
        delete_markers: Some(Vec::new()),
        common_prefixes: Some(Vec::new()),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc.apply(&d)),
        encoding_type: i.encoding_type,
        ..Default::default()
    };
    let mut owners = Owners::default();
    for item in page.items {
        match item {
            ListedVersion::Prefix(p) => {
                out.common_prefixes
                    .get_or_insert_default()
                    .push(s3s::dto::CommonPrefix {
                        prefix: Some(enc.apply(&p)),
                    })
            }
            ListedVersion::Version {
                key,
                record: r,
                latest,
            } => {
                let owner = Some(owners.of(gw, &r.owner).await);
                let last_modified = Some(system_time(r.mtime_ms).into());
                if r.delete_marker {
                    out.delete_markers
                        .get_or_insert_default()
                        .push(DeleteMarkerEntry {
                            is_latest: Some(latest),
                            key: Some(enc.apply(&key)),
                            last_modified,
                            owner,
                            version_id: r.version_id,
                        });
                    continue;
                }
                out.versions.get_or_insert_default().push(ObjectVersion {
                    key: Some(enc.apply(&key)),
                    e_tag: Some(ETag::Strong(r.etag.clone())),
                    last_modified,
                    size: Some(r.size as i64),
                    owner,
                    is_latest: Some(latest),
                    version_id: r.version_id,
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            }
        }
    }
    Ok(S3Response::new(out))
}
