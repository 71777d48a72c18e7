//! DeleteObject and DeleteObjects: the index entry goes in one guarded op
//! and its data becomes garbage (collected after `gc_min_wait_ms`, so GETs
//! already streaming it finish).

use s3s::dto::{
    DeleteObjectInput, DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput, DeletedObject,
    Error as S3ErrorElement,
};
use s3s::{S3Error, S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::bucket;
use crate::dates::unix_secs;
use crate::error::{ModelError, S3Result};
use crate::model::buckets::BucketRecord;
use crate::model::record::ObjectRecord;
use crate::model::versioned::Deleted;
use crate::model::versions::check_version_id;

/// Most keys one DeleteObjects request may name (S3's limit).
const MAX_DELETE_KEYS: usize = 1000;

/// Conditions a delete of one key may carry; a key that does not exist is
/// deleted whatever they say (204, as S3 answers).
#[derive(Default)]
struct DeleteConditions<'a> {
    /// `If-Match` (`*`: any existing object).
    etag: Option<&'a str>,
    /// `x-amz-if-match-size`.
    size: Option<i64>,
    /// `x-amz-if-match-last-modified-time`, in seconds since the epoch.
    modified_secs: Option<i64>,
}

impl DeleteConditions<'_> {
    fn any(&self) -> bool {
        self.etag.is_some() || self.size.is_some() || self.modified_secs.is_some()
    }

    fn check(&self, old: Option<&ObjectRecord>) -> Result<(), ModelError> {
        let Some(o) = old else {
            return Ok(());
        };
        let etag_ok = self
            .etag
            .is_none_or(|e| e == "*" || e.trim_matches('"') == o.etag);
        let size_ok = self.size.is_none_or(|s| u64::try_from(s) == Ok(o.size));
        let time_ok = self.modified_secs.is_none_or(|t| t == o.mtime_secs());
        if etag_ok && size_ok && time_ok {
            Ok(())
        } else {
            Err(ModelError::PreconditionFailed)
        }
    }
}

/// Deletes `key` (or its version `version_id`) for `owner` if
/// `conditions` hold for it. Without a version id, a versioned bucket gets
/// a delete marker; a conditional delete of a key without any version
/// does nothing.
async fn delete_key(
    gw: &Gateway,
    bucket: &BucketRecord,
    key: &str,
    version_id: Option<&str>,
    owner: &str,
    conditions: &DeleteConditions<'_>,
) -> Result<Deleted, ModelError> {
    crate::put::check_key(key)?;
    let precondition = |old: Option<&ObjectRecord>| conditions.check(old);
    let index = bucket.index(gw.pools());
    let keep = gw.conf().gc_min_wait_ms;
    match version_id {
        Some(v) => {
            check_version_id(v)?;
            index.delete_version(key, v, &precondition, keep).await
        }
        None => {
            let mode = bucket.write_mode();
            let skip = conditions.any();
            index
                .delete(key, &precondition, skip, mode, owner, keep)
                .await
        }
    }
}

pub async fn delete(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let (bucket, owner) = bucket::writer(gw, &req, &req.input.bucket).await?;
    let i = &req.input;
    let conditions = DeleteConditions {
        etag: i.if_match.as_ref().map(|c| match c.as_etag() {
            Some(e) => e.value(),
            None => "*",
        }),
        size: i.if_match_size,
        modified_secs: i.if_match_last_modified_time.as_ref().map(unix_secs),
    };
    let version = i.version_id.as_deref();
    let d = delete_key(gw, &bucket, &i.key, version, &owner, &conditions).await?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: d.delete_marker.then_some(true),
        version_id: d.version_id,
        ..Default::default()
    }))
}

pub async fn delete_many(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let (bucket, owner) = bucket::writer(gw, &req, &req.input.bucket).await?;
    let objects = &req.input.delete.objects;
    if objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "at most {MAX_DELETE_KEYS} keys per request"
        ));
    }
    let quiet = req.input.delete.quiet == Some(true);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in objects {
        let conditions = DeleteConditions {
            etag: o.e_tag.as_ref().map(|e| e.value()),
            size: o.size,
            modified_secs: o.last_modified_time.as_ref().map(unix_secs),
        };
        let version = o.version_id.as_deref();
        match delete_key(gw, &bucket, &o.key, version, &owner, &conditions).await {
            Ok(d) => {
                if !quiet {
                    deleted.push(deleted_entry(&o.key, version, d));
                }
            }
            Err(e) => {
                let e = S3Error::from(e);
                errors.push(S3ErrorElement {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key.clone()),
                    message: e.message().map(str::to_string),
                    version_id: o.version_id.clone(),
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..Default::default()
    }))
}

/// A DeleteObjects result entry: a marker placed names it in
/// `DeleteMarkerVersionId`, a version removed in `VersionId`.
fn deleted_entry(key: &str, asked: Option<&str>, d: Deleted) -> DeletedObject {
    let marker_id = d.delete_marker.then(|| d.version_id.clone()).flatten();
    DeletedObject {
        key: Some(key.to_string()),
        version_id: asked.map(str::to_string),
        delete_marker: d.delete_marker.then_some(true),
        delete_marker_version_id: marker_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_conditions_compare_existing_objects_only() {
        let r = ObjectRecord::sample("abc", 5, 7_500);
        let c = |etag, size, modified_secs| DeleteConditions {
            etag,
            size,
            modified_secs,
        };
        c(None, None, None).check(Some(&r)).unwrap();
        c(Some("*"), Some(5), Some(7)).check(Some(&r)).unwrap();
        c(Some("\"abc\""), None, None).check(Some(&r)).unwrap();
        assert!(c(Some("bad"), None, None).check(Some(&r)).is_err());
        assert!(c(None, Some(9999), None).check(Some(&r)).is_err());
        assert!(c(None, None, Some(8)).check(Some(&r)).is_err());
        // A missing key is deleted whatever the conditions say.
        c(Some("bad"), Some(1), Some(1)).check(None).unwrap();
    }
}
