//! Bucket operations: create, head, delete, list, location.

use s3s::dto::{
    Bucket, BucketLocationConstraint, CreateBucketInput, CreateBucketOutput, DeleteBucketInput,
    DeleteBucketOutput, GetBucketLocationInput, GetBucketLocationOutput, HeadBucketInput,
    HeadBucketOutput, ListBucketsInput, ListBucketsOutput, Owner,
};
use s3s::{S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::acl::{grant_headers, requested_acl};
use crate::auth::{requester, requester_or_anonymous};
use crate::error::{ModelError, S3Result};
use crate::model::acl::{Acl, Permission};
use crate::model::buckets::BucketRecord;
use crate::model::record::ObjectRecord;
use crate::model::system_time;
use crate::model::versioned::Found;
use crate::model::versions::{NULL_VERSION, check_version_id};

/// Most buckets a ListBuckets page returns when the client names no limit.
const MAX_BUCKETS_PAGE: usize = 10_000;

/// Refuses a request whose `x-amz-expected-bucket-owner` names someone
/// else than the bucket's owner (AccessDenied, as S3 answers).
fn check_expected_owner<T>(req: &S3Request<T>, bucket: &BucketRecord) -> Result<(), ModelError> {
    match req.headers.get("x-amz-expected-bucket-owner") {
        Some(v) if v.as_bytes() != bucket.owner.as_bytes() => Err(ModelError::AccessDenied),
        _ => Ok(()),
    }
}

/// Bucket `name` as the request expects it (see [`check_expected_owner`]).
async fn expected_bucket<T>(
    gw: &Gateway,
    req: &S3Request<T>,
    name: &str,
) -> Result<BucketRecord, ModelError> {
    let bucket = gw.buckets().get(name).await?;
    check_expected_owner(req, &bucket)?;
    Ok(bucket)
}

/// Bucket `name`, if the request's signer owns it.
pub async fn owned<T>(gw: &Gateway, req: &S3Request<T>, name: &str) -> S3Result<BucketRecord> {
    let uid = requester(gw, req).await?;
    let bucket = expected_bucket(gw, req, name).await?;
    if bucket.owner != uid {
        return Err(ModelError::AccessDenied.into());
    }
    Ok(bucket)
}

/// Bucket `name` and the requester (none: anonymous), if the requester
/// has `perm` on the bucket.
pub async fn authorize<T>(
    gw: &Gateway,
    req: &S3Request<T>,
    name: &str,
    perm: Permission,
) -> S3Result<(BucketRecord, Option<String>)> {
    let who = requester_or_anonymous(gw, req).await?;
    let bucket = expected_bucket(gw, req, name).await?;
    if !bucket.acl().allows(who.as_deref(), perm) {
        return Err(ModelError::AccessDenied.into());
    }
    Ok((bucket, who))
}

/// Bucket `name` and the owner of an object the requester writes into it
/// (the requester; the bucket's owner for anonymous writes), if the
/// requester may write there.
pub async fn writer<T>(
    gw: &Gateway,
    req: &S3Request<T>,
    name: &str,
) -> S3Result<(BucketRecord, String)> {
    let (bucket, who) = authorize(gw, req, name, Permission::Write).await?;
    let owner = who.unwrap_or_else(|| bucket.owner.clone());
    Ok((bucket, owner))
}

/// Bucket `name` and the current record of `key` (or its version
/// `version_id`), if the requester has `perm` on the object. A missing key
/// is NoSuchKey to those who may list the bucket and AccessDenied to
/// others (as S3 answers); a delete marker is NoSuchKey, or
/// MethodNotAllowed when named by its version id.
pub async fn authorize_object<T>(
    gw: &Gateway,
    req: &S3Request<T>,
    name: &str,
    key: &str,
    version_id: Option<&str>,
    perm: Permission,
) -> S3Result<(BucketRecord, ObjectRecord)> {
    crate::put::check_key(key)?;
    if let Some(v) = version_id {
        check_version_id(v)?;
    }
    let who = requester_or_anonymous(gw, req).await?;
    let bucket = expected_bucket(gw, req, name).await?;
    let may_list = bucket.acl().allows(who.as_deref(), Permission::Read);
    let mut record = match bucket.index(gw.pools()).lookup(key, version_id).await? {
        Found::Object(r) => *r,
        _ if !may_list => return Err(ModelError::AccessDenied.into()),
        Found::Marker { version_id: v } => {
            let named = version_id.is_some();
            return Err(ModelError::DeleteMarker {
                version_id: v,
                named,
            }
            .into());
        }
        Found::Missing => return Err(ModelError::NoSuchKey(key.to_string()).into()),
    };
    if !record.acl().allows(who.as_deref(), perm) {
        return Err(ModelError::AccessDenied.into());
    }
    // Objects from before versioning are the `null` version once the
    // bucket has versions.
    if bucket.versioning.is_some() {
        record.version_id.get_or_insert_with(|| NULL_VERSION.into());
    }
    Ok((bucket, record))
}

/// `Owner` elements of the users a listing names, each looked up once
/// per listing (a page of objects usually has few owners).
#[derive(Default)]
pub struct Owners(std::collections::HashMap<String, Owner>);

impl Owners {
    /// The `Owner` element of user `uid`.
    pub async fn of(&mut self, gw: &Gateway, uid: &str) -> Owner {
        if let Some(o) = self.0.get(uid) {
            return o.clone();
        }
        let o = owner_of(gw, uid).await;
        self.0.insert(uid.to_string(), o.clone());
        o
    }
}

/// The `Owner` element of user `uid`.
pub async fn owner_of(gw: &Gateway, uid: &str) -> Owner {
    let display_name = match gw.users().get(uid).await {
        Ok(u) => u.display_name,
        Err(_) => uid.to_string(),
    };
    Owner {
        display_name: Some(display_name),
        id: Some(uid.to_string()),
    }
}

pub async fn create(
    gw: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let uid = requester(gw, &req).await?;
    let name = &req.input.bucket;
    if let Some(loc) = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        && loc.as_str() != gw.conf().region
    {
        return Err(s3_error!(
            InvalidLocationConstraint,
            "this gateway serves region {}",
            gw.conf().region
        ));
    }
    let shards = gw.conf().index_shards;
    let i = &req.input;
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let acl = requested_acl(canned, &grant_headers!(i), &uid, &uid)?;
    let wanted = acl.clone().unwrap_or_else(|| Acl::private(&uid));
    match gw.buckets().create(name, &uid, shards, acl).await {
        Ok(_) => {}
        // S3 (us-east-1) answers a repeated create by the owner with
        // success, unless it asks for another ACL (RGW's rule).
        Err(ModelError::BucketOwnedByYou(_)) if gw.conf().region == "us-east-1" => {
            if gw.buckets().get(name).await?.acl() != wanted {
                return Err(ModelError::BucketExists(name.to_string()).into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{name}")),
    }))
}

pub async fn head(
    gw: &Gateway,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    authorize(gw, &req, &req.input.bucket, Permission::Read).await?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(gw.conf().region.clone()),
        ..Default::default()
    }))
}

pub async fn delete(
    gw: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    owned(gw, &req, &req.input.bucket).await?;
    gw.buckets().delete(&req.input.bucket).await?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub async fn location(
    gw: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    owned(gw, &req, &req.input.bucket).await?;
    // us-east-1 is answered as an empty constraint, as AWS does.
    let region = &gw.conf().region;
    let location_constraint =
        (region != "us-east-1").then(|| BucketLocationConstraint::from(region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint,
    }))
}

pub async fn list(
    gw: &Gateway,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let input = &req.input;
    // An anonymous caller owns nothing: an empty list (as RGW answers).
    let Some(uid) = requester_or_anonymous(gw, &req).await? else {
        return Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(Vec::new()),
            prefix: input.prefix.clone(),
            ..Default::default()
        }));
    };
    let max = match input.max_buckets {
        Some(n) if !(1..=MAX_BUCKETS_PAGE as i32).contains(&n) => {
            return Err(s3_error!(
                InvalidArgument,
                "max-buckets must be 1 to {MAX_BUCKETS_PAGE}"
            ));
        }
        Some(n) => n as usize,
        None => MAX_BUCKETS_PAGE,
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let after = input.continuation_token.clone().unwrap_or_default();
    let mut owned: Vec<BucketRecord> = gw.buckets().list_owned(&uid).await?;
    owned.retain(|b| b.name.starts_with(&prefix) && b.name > after);
    let more = owned.len() > max;
    owned.truncate(max);
    let continuation_token = if more {
        owned.last().map(|b| b.name.clone())
    } else {
        None
    };
    let buckets = owned
        .into_iter()
        .map(|b| Bucket {
            creation_date: Some(system_time(b.created_ms).into()),
            name: Some(b.name),
            bucket_region: Some(gw.conf().region.clone()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        continuation_token,
        owner: Some(owner_of(gw, &uid).await),
        prefix: input.prefix.clone(),
    }))
}
