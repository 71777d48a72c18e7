//! Access control lists of buckets and objects, as S3 defines them: an
//! owner and grants of READ, WRITE, READ_ACP, WRITE_ACP or FULL_CONTROL
//! to a user or to a group (everyone, authenticated users, log delivery).

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// One user, by id.
    User(String),
    /// Everyone, signed or not (`.../groups/global/AllUsers`).
    AllUsers,
    /// Every signed request (`.../groups/global/AuthenticatedUsers`).
    AuthenticatedUsers,
    /// The log delivery group (`.../groups/s3/LogDelivery`).
    LogDelivery,
}

/// The group URIs S3 uses.
pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// See [`ALL_USERS_URI`].
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// See [`ALL_USERS_URI`].
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

impl Grantee {
    /// The group of a URI.
    pub fn group(uri: &str) -> Result<Grantee, ModelError> {
        match uri {
            ALL_USERS_URI => Ok(Grantee::AllUsers),
            AUTHENTICATED_USERS_URI => Ok(Grantee::AuthenticatedUsers),
            LOG_DELIVERY_URI => Ok(Grantee::LogDelivery),
            other => Err(ModelError::InvalidArgument(format!(
                "unknown grantee group {other:?}"
            ))),
        }
    }

    /// The URI of a group grantee.
    pub fn uri(&self) -> Option<&'static str> {
        match self {
            Grantee::User(_) => None,
            Grantee::AllUsers => Some(ALL_USERS_URI),
            Grantee::AuthenticatedUsers => Some(AUTHENTICATED_USERS_URI),
            Grantee::LogDelivery => Some(LOG_DELIVERY_URI),
        }
    }

    fn matches(&self, who: Option<&str>) -> bool {
        match self {
            Grantee::User(id) => who == Some(id.as_str()),
            Grantee::AllUsers => true,
            Grantee::AuthenticatedUsers => who.is_some(),
            Grantee::LogDelivery => false,
        }
    }
}

/// What a grant allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    /// List a bucket; read an object.
    Read,
    /// Create, overwrite and delete objects of a bucket.
    Write,
    /// Read the ACL.
    ReadAcp,
    /// Change the ACL.
    WriteAcp,
    /// All of the above.
    FullControl,
}

impl Permission {
    /// S3's name of the permission.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    /// The permission S3 names `s`.
    pub fn parse(s: &str) -> Result<Permission, ModelError> {
        Ok(match s {
            "READ" => Permission::Read,
            "WRITE" => Permission::Write,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE_ACP" => Permission::WriteAcp,
            "FULL_CONTROL" => Permission::FullControl,
            other => {
                return Err(ModelError::MalformedXml(format!(
                    "unknown permission {other:?}"
                )));
            }
        })
    }
}

/// One grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Who.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

/// An owner and grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// The owner's user id (the owner may always read and change the ACL).
    pub owner: String,
    /// The grants, in the order given.
    pub grants: Vec<Grant>,
}

impl Acl {
    /// The default ACL: the owner has full control.
    pub fn private(owner: &str) -> Acl {
        Acl {
            owner: owner.to_string(),
            grants: vec![Grant {
                grantee: Grantee::User(owner.to_string()),
                permission: Permission::FullControl,
            }],
        }
    }

    /// A canned ACL (`x-amz-acl`) for a resource of `owner` in a bucket of
    /// `bucket_owner`.
    pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> Result<Acl, ModelError> {
        // Group grants come before the owner's (the order S3 and RGW list).
        let groups: &[(Grantee, Permission)] = match name {
            "public-read" => &[(Grantee::AllUsers, Permission::Read)],
            "public-read-write" => &[
                (Grantee::AllUsers, Permission::Read),
                (Grantee::AllUsers, Permission::Write),
            ],
            "authenticated-read" => &[(Grantee::AuthenticatedUsers, Permission::Read)],
            "log-delivery-write" => &[
                (Grantee::LogDelivery, Permission::Write),
                (Grantee::LogDelivery, Permission::ReadAcp),
            ],
            "private" | "bucket-owner-read" | "bucket-owner-full-control" => &[],
            other => {
                return Err(ModelError::InvalidArgument(format!(
                    "unknown canned ACL {other:?}"
                )));
            }
        };
        let mut grants: Vec<Grant> = groups
            .iter()
            .map(|(grantee, permission)| Grant {
                grantee: grantee.clone(),
                permission: *permission,
            })
            .collect();
        grants.extend(Acl::private(owner).grants);
        let for_bucket_owner = match name {
            "bucket-owner-read" => Some(Permission::Read),
            "bucket-owner-full-control" => Some(Permission::FullControl),
            _ => None,
        };
        if let Some(permission) = for_bucket_owner.filter(|_| bucket_owner != owner) {
            grants.push(Grant {
                grantee: Grantee::User(bucket_owner.to_string()),
                permission,
            });
        }
        Ok(Acl {
            owner: owner.to_string(),
            grants,
        })
    }

    /// Whether `who` (none: an anonymous request) has `perm`.
    pub fn allows(&self, who: Option<&str>, perm: Permission) -> bool {
        let owner = who == Some(self.owner.as_str());
        if owner && matches!(perm, Permission::ReadAcp | Permission::WriteAcp) {
            return true;
        }
        self.grants.iter().any(|g| {
            g.grantee.matches(who)
                && (g.permission == perm || g.permission == Permission::FullControl)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_grant_what_s3_says() {
        let private = Acl::canned("private", "alice", "alice").unwrap();
        assert!(private.allows(Some("alice"), Permission::Write));
        assert!(!private.allows(Some("bob"), Permission::Read));
        assert!(!private.allows(None, Permission::Read));
        let public = Acl::canned("public-read", "alice", "alice").unwrap();
        assert!(public.allows(None, Permission::Read));
        assert!(!public.allows(None, Permission::Write));
        assert!(!public.allows(Some("bob"), Permission::ReadAcp));
        let rw = Acl::canned("public-read-write", "alice", "alice").unwrap();
        assert!(rw.allows(None, Permission::Write));
        let auth = Acl::canned("authenticated-read", "alice", "alice").unwrap();
        assert!(auth.allows(Some("bob"), Permission::Read));
        assert!(!auth.allows(None, Permission::Read));
        let bofc = Acl::canned("bucket-owner-full-control", "bob", "alice").unwrap();
        assert!(bofc.allows(Some("alice"), Permission::WriteAcp));
        assert_eq!(bofc.grants.len(), 2);
        assert_eq!(
            Acl::canned("bucket-owner-read", "alice", "alice").unwrap(),
            private
        );
        assert!(Acl::canned("public", "a", "a").is_err());
        // Groups first, then the owner.
        assert_eq!(public.grants[0].grantee, Grantee::AllUsers);
        assert_eq!(public.grants[1].grantee, Grantee::User("alice".into()));
    }

    #[test]
    fn owners_keep_their_acl_rights_and_full_control_covers_all() {
        let acl = Acl {
            owner: "alice".into(),
            grants: vec![Grant {
                grantee: Grantee::User("bob".into()),
                permission: Permission::FullControl,
            }],
        };
        assert!(acl.allows(Some("alice"), Permission::WriteAcp));
        assert!(!acl.allows(Some("alice"), Permission::Read));
        for p in [
            Permission::Read,
            Permission::Write,
            Permission::ReadAcp,
            Permission::WriteAcp,
        ] {
            assert!(acl.allows(Some("bob"), p));
        }
        assert_eq!(
            Permission::parse("WRITE_ACP").unwrap(),
            Permission::WriteAcp
        );
        assert!(Permission::parse("ALL").is_err());
        assert_eq!(Grantee::group(ALL_USERS_URI).unwrap(), Grantee::AllUsers);
        assert!(Grantee::group("http://example.com/x").is_err());
    }
}
