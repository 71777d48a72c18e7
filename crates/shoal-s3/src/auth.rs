//! Who is asking: access keys looked up in the cluster (cached for a few
//! seconds, so a removed key stops working within that time), the secret
//! handed to `s3s` for signature checking, and the requester's user id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Request, s3_error};

use crate::error::{ModelError, S3Result};
use crate::model::users::{KeyRecord, Users};

/// How long a looked-up key is trusted without asking the cluster again.
const KEY_TTL: Duration = Duration::from_secs(5);
/// Most keys cached (beyond that the cache starts over).
const MAX_CACHED: usize = 10_000;

/// Access keys, read from the cluster and cached for [`KEY_TTL`].
pub struct KeyCache {
    users: Users,
    cached: Mutex<HashMap<String, (KeyRecord, Instant)>>,
}

impl KeyCache {
    /// A cache over `users`.
    pub fn new(users: Users) -> Self {
        KeyCache {
            users,
            cached: Mutex::new(HashMap::new()),
        }
    }

    /// The record of `access_key`, if it exists.
    pub async fn get(&self, access_key: &str) -> Result<Option<KeyRecord>, ModelError> {
        if let Some((record, at)) = self.lock().get(access_key)
            && at.elapsed() < KEY_TTL
        {
            return Ok(Some(record.clone()));
        }
        let found = self.users.key(access_key).await?;
        let mut cached = self.lock();
        if cached.len() >= MAX_CACHED {
            cached.clear();
        }
        match &found {
            Some(r) => {
                cached.insert(access_key.to_string(), (r.clone(), Instant::now()));
            }
            None => {
                cached.remove(access_key);
            }
        }
        Ok(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (KeyRecord, Instant)>> {
        // A panic while holding this lock aborts the process (panic =
        // "abort"), so poisoning cannot be observed; recover anyway.
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `s3s` authentication provider: secrets come from the cluster.
pub struct ClusterAuth {
    gateway: crate::Gateway,
}

impl ClusterAuth {
    /// Authentication against `gateway`'s users.
    pub fn new(gateway: crate::Gateway) -> Self {
        ClusterAuth { gateway }
    }
}

#[async_trait::async_trait]
impl S3Auth for ClusterAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.gateway.keys().get(access_key).await? {
            Some(k) => Ok(SecretKey::from(k.secret)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// The user id of the request's signer; anonymous requests are refused.
pub async fn requester<T>(gateway: &crate::Gateway, req: &S3Request<T>) -> S3Result<String> {
    requester_or_anonymous(gateway, req)
        .await?
        .ok_or_else(|| s3_error!(AccessDenied, "Anonymous access is not allowed"))
}

/// The user id of the request's signer, or none for an anonymous request
/// (which ACLs may still allow).
pub async fn requester_or_anonymous<T>(
    gateway: &crate::Gateway,
    req: &S3Request<T>,
) -> S3Result<Option<String>> {
    let Some(creds) = &req.credentials else {
        return Ok(None);
    };
    match gateway.keys().get(&creds.access_key).await? {
        Some(k) => Ok(Some(k.uid)),
        None => Err(s3_error!(InvalidAccessKeyId)),
    }
}

/// Lets unsigned requests reach the operations, which decide by ACL (a
/// request with a bad signature never gets here).
pub struct AclAccess;

#[async_trait::async_trait]
impl s3s::access::S3Access for AclAccess {
    async fn check(&self, _cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        Ok(())
    }
}
