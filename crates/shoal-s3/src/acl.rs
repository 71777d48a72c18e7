//! ACLs over HTTP: canned ACLs (`x-amz-acl`), grant headers
//! (`x-amz-grant-*`), AccessControlPolicy documents, and Get/Put bucket and
//! object ACL. The rules themselves are in `model::acl`.

use s3s::dto::{
    AccessControlPolicy, GetBucketAclInput, GetBucketAclOutput, GetObjectAclInput,
    GetObjectAclOutput, Grant as GrantDto, Grantee as GranteeDto, Owner, Permission as PermDto,
    PutBucketAclInput, PutBucketAclOutput, PutObjectAclInput, PutObjectAclOutput, Type,
};
use s3s::{S3Request, S3Response};

use crate::Gateway;
use crate::bucket::{self, owner_of};
use crate::error::{ModelError, S3Result};
use crate::model::acl::{Acl, Grant, Grantee, Permission};

/// The `x-amz-grant-*` headers of a request.
#[derive(Default)]
pub struct GrantHeaders<'a> {
    /// `x-amz-grant-read`.
    pub read: Option<&'a str>,
    /// `x-amz-grant-write`.
    pub write: Option<&'a str>,
    /// `x-amz-grant-read-acp`.
    pub read_acp: Option<&'a str>,
    /// `x-amz-grant-write-acp`.
    pub write_acp: Option<&'a str>,
    /// `x-amz-grant-full-control`.
    pub full_control: Option<&'a str>,
}

/// The `x-amz-grant-*` headers of an operation input (`objects`: an
/// object's, which has no WRITE grant).
macro_rules! grant_headers {
    ($i:expr) => {
        $crate::acl::GrantHeaders {
            write: $i.grant_write.as_deref(),
            ..$crate::acl::grant_headers!($i, objects)
        }
    };
    ($i:expr, objects) => {
        $crate::acl::GrantHeaders {
            read: $i.grant_read.as_deref(),
            write: None,
            read_acp: $i.grant_read_acp.as_deref(),
            write_acp: $i.grant_write_acp.as_deref(),
            full_control: $i.grant_full_control.as_deref(),
        }
    };
}
pub(crate) use grant_headers;

/// Parses one grant header: `id="uid", uri="http://...", ...`.
fn parse_grantees(value: &str) -> Result<Vec<Grantee>, ModelError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            let (kind, v) = g
                .split_once('=')
                .ok_or_else(|| ModelError::InvalidArgument(format!("invalid grant {g:?}")))?;
            let v = v.trim().trim_matches('"');
            match kind.trim().to_ascii_lowercase().as_str() {
                "id" => Ok(Grantee::User(v.to_string())),
                "uri" => Grantee::group(v),
                "emailaddress" => Err(ModelError::UnresolvableGrant(v.to_string())),
                other => Err(ModelError::InvalidArgument(format!(
                    "unknown grantee type {other:?}"
                ))),
            }
        })
        .collect()
}

/// The ACL a request asks for with a canned ACL or grant headers (not
/// both); none when it asks for neither.
pub fn requested_acl(
    canned: Option<&str>,
    grants: &GrantHeaders<'_>,
    owner: &str,
    bucket_owner: &str,
) -> Result<Option<Acl>, ModelError> {
    let headers = [
        (grants.read, Permission::Read),
        (grants.write, Permission::Write),
        (grants.read_acp, Permission::ReadAcp),
        (grants.write_acp, Permission::WriteAcp),
        (grants.full_control, Permission::FullControl),
    ];
    let any_grant = headers.iter().any(|(h, _)| h.is_some());
    match (canned, any_grant) {
        (Some(_), true) => Err(ModelError::InvalidRequest(
            "Specifying both Canned ACLs and Header Grants is not allowed".into(),
        )),
        (Some(c), false) => Acl::canned(c, owner, bucket_owner).map(Some),
        (None, false) => Ok(None),
        (None, true) => {
            let mut acl = Acl {
                owner: owner.to_string(),
                grants: Vec::new(),
            };
            for (value, permission) in headers {
                for grantee in parse_grantees(value.unwrap_or(""))? {
                    acl.grants.push(Grant {
                        grantee,
                        permission,
                    });
                }
            }
            Ok(Some(acl))
        }
    }
}

/// An AccessControlPolicy document as an ACL; its owner must be the
/// resource's owner.
fn from_policy(policy: &AccessControlPolicy, owner: &str) -> Result<Acl, ModelError> {
    if let Some(id) = policy.owner.as_ref().and_then(|o| o.id.as_deref())
        && id != owner
    {
        return Err(ModelError::AccessDenied);
    }
    let mut acl = Acl {
        owner: owner.to_string(),
        grants: Vec::new(),
    };
    for g in policy.grants.iter().flatten() {
        let perm = g
            .permission
            .as_ref()
            .ok_or_else(|| ModelError::MalformedXml("a grant without permission".into()))?;
        let grantee = g
            .grantee
            .as_ref()
            .ok_or_else(|| ModelError::MalformedXml("a grant without grantee".into()))?;
        let grantee = match grantee.type_.as_str() {
            Type::CANONICAL_USER => Grantee::User(
                grantee
                    .id
                    .clone()
                    .ok_or_else(|| ModelError::MalformedXml("a user grantee without id".into()))?,
            ),
            Type::GROUP => Grantee::group(grantee.uri.as_deref().unwrap_or(""))?,
            Type::AMAZON_CUSTOMER_BY_EMAIL => {
                return Err(ModelError::UnresolvableGrant(
                    grantee.email_address.clone().unwrap_or_default(),
                ));
            }
            other => {
                return Err(ModelError::MalformedXml(format!(
                    "unknown grantee type {other:?}"
                )));
            }
        };
        acl.grants.push(Grant {
            grantee,
            permission: Permission::parse(perm.as_str())?,
        });
    }
    Ok(acl)
}

/// Refuses grants to users that do not exist.
async fn check_grantees(gw: &Gateway, acl: &Acl) -> Result<(), ModelError> {
    for g in &acl.grants {
        if let Grantee::User(id) = &g.grantee {
            match gw.users().get(id).await {
                Ok(_) => {}
                Err(ModelError::NoSuchUser(_)) => {
                    return Err(ModelError::InvalidArgument(format!(
                        "Invalid id: no user {id:?}"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// An ACL as S3's owner and grant list.
async fn to_dto(gw: &Gateway, acl: &Acl) -> (Owner, Vec<GrantDto>) {
    let mut grants = Vec::with_capacity(acl.grants.len());
    for g in &acl.grants {
        let grantee = match &g.grantee {
            Grantee::User(id) => {
                let o = owner_of(gw, id).await;
                GranteeDto {
                    display_name: o.display_name,
                    id: o.id,
                    type_: Type::from_static(Type::CANONICAL_USER),
                    email_address: None,
                    uri: None,
                }
            }
            group => GranteeDto {
                display_name: None,
                id: None,
                type_: Type::from_static(Type::GROUP),
                email_address: None,
                uri: group.uri().map(str::to_string),
            },
        };
        grants.push(GrantDto {
            grantee: Some(grantee),
            permission: Some(PermDto::from(g.permission.as_str().to_string())),
        });
    }
    // Group grants first, as RGW lists them (clients compare in order).
    grants.sort_by_key(|g| g.grantee.as_ref().is_some_and(|x| x.id.is_some()));
    (owner_of(gw, &acl.owner).await, grants)
}

/// The ACL a Put*Acl request sets: a body, a canned ACL or grant headers.
fn acl_to_set(
    policy: Option<&AccessControlPolicy>,
    canned: Option<&str>,
    grants: &GrantHeaders<'_>,
    owner: &str,
    bucket_owner: &str,
) -> Result<Acl, ModelError> {
    if let Some(p) = policy {
        return from_policy(p, owner);
    }
    requested_acl(canned, grants, owner, bucket_owner)?
        .ok_or_else(|| ModelError::MalformedXml("no ACL given".into()))
}

pub async fn get_bucket_acl(
    gw: &Gateway,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let (b, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::ReadAcp).await?;
    let (owner, grants) = to_dto(gw, &b.acl()).await;
    Ok(S3Response::new(GetBucketAclOutput {
        owner: Some(owner),
        grants: Some(grants),
    }))
}

pub async fn put_bucket_acl(
    gw: &Gateway,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let (b, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::WriteAcp).await?;
    let i = &req.input;
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let acl = acl_to_set(
        i.access_control_policy.as_ref(),
        canned,
        &grant_headers!(i),
        &b.owner,
        &b.owner,
    )?;
    check_grantees(gw, &acl).await?;
    gw.buckets().set_acl(&b.name, acl).await?;
    Ok(S3Response::new(PutBucketAclOutput {}))
}

pub async fn get_object_acl(
    gw: &Gateway,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = &req.input;
    let version = i.version_id.as_deref();
    let (_, record) =
        bucket::authorize_object(gw, &req, &i.bucket, &i.key, version, Permission::ReadAcp).await?;
    let (owner, grants) = to_dto(gw, &record.acl()).await;
    Ok(S3Response::new(GetObjectAclOutput {
        owner: Some(owner),
        grants: Some(grants),
        ..Default::default()
    }))
}

pub async fn put_object_acl(
    gw: &Gateway,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let i = &req.input;
    let version = i.version_id.as_deref();
    let (b, record) =
        bucket::authorize_object(gw, &req, &i.bucket, &i.key, version, Permission::WriteAcp)
            .await?;
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let acl = acl_to_set(
        i.access_control_policy.as_ref(),
        canned,
        &grant_headers!(i),
        &record.owner,
        &b.owner,
    )?;
    check_grantees(gw, &acl).await?;
    b.index(gw.pools())
        .update(&i.key, version, &|r| r.acl = Some(acl.clone()))
        .await?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::acl::ALL_USERS_URI;

    #[test]
    fn grant_headers_become_grants() {
        let g = GrantHeaders {
            read: Some(&format!("uri=\"{ALL_USERS_URI}\", id=\"bob\"")),
            full_control: Some("id=alice"),
            ..Default::default()
        };
        let acl = requested_acl(None, &g, "alice", "alice").unwrap().unwrap();
        assert_eq!(acl.grants.len(), 3);
        assert!(acl.allows(None, Permission::Read));
        assert!(acl.allows(Some("bob"), Permission::Read));
        assert!(!acl.allows(Some("bob"), Permission::Write));
        assert!(acl.allows(Some("alice"), Permission::Write));
        let both = requested_acl(Some("private"), &g, "alice", "alice");
        assert!(matches!(both, Err(ModelError::InvalidRequest(_))));
        assert!(
            requested_acl(None, &GrantHeaders::default(), "a", "a")
                .unwrap()
                .is_none()
        );
        let email = GrantHeaders {
            read: Some("emailAddress=\"x@example.com\""),
            ..Default::default()
        };
        assert!(matches!(
            requested_acl(None, &email, "a", "a"),
            Err(ModelError::UnresolvableGrant(_))
        ));
        let bad = GrantHeaders {
            read: Some("nonsense"),
            ..Default::default()
        };
        assert!(requested_acl(None, &bad, "a", "a").is_err());
    }

    proptest::proptest! {
        /// Grant headers of any shape parse or fail cleanly.
        #[test]
        fn arbitrary_grant_headers_do_not_panic(value in "[ -~]{0,80}") {
            let g = GrantHeaders { read: Some(&value), ..Default::default() };
            let _ = requested_acl(None, &g, "a", "b");
        }
    }
}
