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
use crate::error::{ModelError, S3Result};
use crate::model::acl::Permission;
use crate::model::buckets::BucketRecord;
use crate::model::record::ObjectRecord;

/// Most keys one DeleteObjects request may name (S3's limit).
const MAX_DELETE_KEYS: usize = 1000;

async fn delete_key(
    gw: &Gateway,
    bucket: &BucketRecord,
    key: &str,
    if_match: Option<&str>,
) -> Result<(), ModelError> {
    let precondition = |old: Option<&ObjectRecord>| -> Result<(), ModelError> {
        match (if_match, old) {
            (None, _) => Ok(()),
            (Some(want), Some(o)) if want == o.etag => Ok(()),
            (Some(_), None) => Err(ModelError::NoSuchKey(key.to_string())),
            (Some(_), Some(_)) => Err(ModelError::PreconditionFailed),
        }
    };
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
    let if_match = req.input.if_match.as_ref().and_then(|c| c.as_etag());
    delete_key(gw, &bucket, &req.input.key, if_match.map(|e| e.value())).await?;
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
        let if_match = o.e_tag.as_ref().map(|e| e.value().to_string());
        match delete_key(gw, &bucket, &o.key, if_match.as_deref()).await {
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
