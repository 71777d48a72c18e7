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
use crate::model::acl::Permission;
use crate::model::buckets::BucketRecord;
use crate::model::record::ObjectRecord;

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

async fn delete_key(
    gw: &Gateway,
    bucket: &BucketRecord,
    key: &str,
    conditions: &DeleteConditions<'_>,
) -> Result<(), ModelError> {
    let precondition = |old: Option<&ObjectRecord>| conditions.check(old);
    bucket
        .index(gw.pools())
        .remove(key, &precondition, gw.conf().gc_min_wait_ms)
        .await?;
    Ok(())
}

pub async fn delete(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Write).await?;
    let i = &req.input;
    let conditions = DeleteConditions {
        etag: i.if_match.as_ref().map(|c| match c.as_etag() {
            Some(e) => e.value(),
            None => "*",
        }),
        size: i.if_match_size,
        modified_secs: i.if_match_last_modified_time.as_ref().map(unix_secs),
    };
    delete_key(gw, &bucket, &i.key, &conditions).await?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub async fn delete_many(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Write).await?;
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
        match delete_key(gw, &bucket, &o.key, &conditions).await {
            Ok(()) | Err(ModelError::NoSuchKey(_)) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(o.key.clone()),
                        ..Default::default()
                    });
                }
            }
            Err(e) => {
                let e = S3Error::from(e);
                errors.push(S3ErrorElement {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key.clone()),
                    message: e.message().map(str::to_string),
                    version_id: None,
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
