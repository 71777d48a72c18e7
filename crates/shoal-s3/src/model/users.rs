//! S3 users and their access keys, in the metadata pool.
//!
//! `users` maps a user id to its [`UserRecord`] (display name, creation
//! time, access key ids; never a secret) and `keys` maps an access key id
//! to its [`KeyRecord`] (owner and secret). Both are created with guards,
//! so two gateways or two admins never hand out one id twice.

use serde::{Deserialize, Serialize};
use shoal_client::{IoCtx, WriteOp, XattrCmp};

use super::{guarded_write, now_ms, omap_all, omap_value, random_bytes};
use crate::error::ModelError;

/// The omap object of users.
const USERS: &str = "users";
/// The omap object of access keys.
const KEYS: &str = "keys";

/// A user as stored (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The user id (also the canonical id in ACLs and listings).
    pub uid: String,
    /// The display name.
    pub display_name: String,
    /// When it was created (ms since the epoch).
    pub created_ms: u64,
    /// Its access key ids.
    pub keys: Vec<String>,
}

/// An access key as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The user the key belongs to.
    pub uid: String,
    /// The secret key.
    pub secret: String,
}

/// A newly made key pair: the only time the secret is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
}

fn decode<T: for<'a> Deserialize<'a>>(what: &str, bytes: &[u8]) -> Result<T, ModelError> {
    serde_json::from_slice(bytes).map_err(|e| ModelError::corrupt(what, e))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Checks a user id: 1 to 64 of `[A-Za-z0-9_.@-]`.
pub fn check_uid(uid: &str) -> Result<(), ModelError> {
    let ok = (1..=64).contains(&uid.len())
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidArgument(format!(
            "user ids are 1 to 64 letters, digits, '_', '.', '@' or '-', not {uid:?}"
        )))
    }
}

/// A fresh key pair: a 20-character access key id (AWS style) and a
/// 40-character secret, from the OS's secure random source.
fn make_key() -> NewKey {
    const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let pick = |bytes: &[u8], alphabet: &[u8]| -> String {
        bytes
            .iter()
            .map(|b| alphabet[*b as usize % alphabet.len()] as char)
            .collect()
    };
    NewKey {
        access_key: format!("SH{}", pick(&random_bytes::<18>(), ID_CHARS)),
        secret_key: pick(&random_bytes::<40>(), SECRET_CHARS),
    }
}

/// Users and keys of one cluster.
#[derive(Clone)]
pub struct Users {
    meta: IoCtx,
}

impl Users {
    /// The users kept in metadata pool `meta`.
    pub fn new(meta: IoCtx) -> Self {
        Users { meta }
    }

    /// Creates user `uid` with one key pair (returned: its secret is shown
    /// only now).
    pub async fn create(&self, uid: &str, display_name: &str) -> Result<NewKey, ModelError> {
        check_uid(uid)?;
        let record = UserRecord {
            uid: uid.to_string(),
            display_name: display_name.to_string(),
            created_ms: now_ms(),
            keys: Vec::new(),
        };
        let op = WriteOp::new()
            .cmp_omap(uid.as_bytes(), XattrCmp::Absent)
            .omap_set(vec![(uid.as_bytes().to_vec(), encode(&record))]);
        if !guarded_write(&self.meta, USERS, op).await? {
            return Err(ModelError::UserExists(uid.to_string()));
        }
        self.add_key(uid).await
    }

    /// The record of user `uid`.
    pub async fn get(&self, uid: &str) -> Result<UserRecord, ModelError> {
        self.get_raw(uid).await.map(|(r, _)| r)
    }

    async fn get_raw(&self, uid: &str) -> Result<(UserRecord, Vec<u8>), ModelError> {
        match omap_value(&self.meta, USERS, uid.as_bytes()).await? {
            Some(raw) => Ok((decode(&format!("user {uid}"), &raw)?, raw)),
            None => Err(ModelError::NoSuchUser(uid.to_string())),
        }
    }

    /// Every user, by id.
    pub async fn list(&self) -> Result<Vec<UserRecord>, ModelError> {
        omap_all(&self.meta, USERS, b"")
            .await?
            .iter()
            .map(|(k, v)| decode(&format!("user {}", String::from_utf8_lossy(k)), v))
            .collect()
    }

    /// Adds a key pair to user `uid`.
    pub async fn add_key(&self, uid: &str) -> Result<NewKey, ModelError> {
        let key = make_key();
        let record = KeyRecord {
            uid: uid.to_string(),
            secret: key.secret_key.clone(),
        };
        // Listed with the user first: a crash in between leaves a listed
        // key that does not work (`key rm` clears it), never a working key
        // that removing the user would miss.
        self.update(uid, &|u| u.keys.push(key.access_key.clone()))
            .await?;
        let op = WriteOp::new()
            .cmp_omap(key.access_key.as_bytes(), XattrCmp::Absent)
            .omap_set(vec![(key.access_key.as_bytes().to_vec(), encode(&record))]);
        if !guarded_write(&self.meta, KEYS, op).await? {
            self.update(uid, &|u| u.keys.retain(|k| *k != key.access_key))
                .await?;
            return Err(ModelError::Busy("access key collision".into()));
        }
        Ok(key)
    }

    /// Removes access key `access_key` of user `uid`.
    pub async fn remove_key(&self, uid: &str, access_key: &str) -> Result<(), ModelError> {
        let user = self.get(uid).await?;
        if !user.keys.iter().any(|k| k == access_key) {
            return Err(ModelError::InvalidArgument(format!(
                "user {uid:?} has no key {access_key:?}"
            )));
        }
        self.meta
            .write_op(
                KEYS,
                WriteOp::new().omap_remove(vec![access_key.as_bytes().to_vec()]),
            )
            .await?;
        self.update(uid, &|u| u.keys.retain(|k| k != access_key))
            .await
    }

    /// Removes user `uid` and its keys.
    pub async fn remove(&self, uid: &str) -> Result<(), ModelError> {
        let user = self.get(uid).await?;
        if !user.keys.is_empty() {
            let keys = user.keys.iter().map(|k| k.as_bytes().to_vec()).collect();
            self.meta
                .write_op(KEYS, WriteOp::new().omap_remove(keys))
                .await?;
        }
        self.meta
            .write_op(
                USERS,
                WriteOp::new().omap_remove(vec![uid.as_bytes().to_vec()]),
            )
            .await?;
        Ok(())
    }

    /// The owner and secret of access key `access_key`, if it exists.
    pub async fn key(&self, access_key: &str) -> Result<Option<KeyRecord>, ModelError> {
        match omap_value(&self.meta, KEYS, access_key.as_bytes()).await? {
            Some(raw) => decode("access key", &raw).map(Some),
            None => Ok(None),
        }
    }

    /// Changes user `uid`'s record with `change`, guarded against
    /// concurrent changes.
    async fn update(
        &self,
        uid: &str,
        change: &(dyn Fn(&mut UserRecord) + Sync),
    ) -> Result<(), ModelError> {
        let missing = || ModelError::NoSuchUser(uid.to_string());
        let what = format!("user {uid}");
        super::update_entry(&self.meta, USERS, uid.as_bytes(), &what, missing, change).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_aws_keys_and_differ() {
        let a = make_key();
        let b = make_key();
        assert_eq!(a.access_key.len(), 20);
        assert_eq!(a.secret_key.len(), 40);
        assert!(a.access_key.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.access_key, b.access_key);
        assert_ne!(a.secret_key, b.secret_key);
    }

    #[test]
    fn user_ids_are_checked() {
        check_uid("alice").unwrap();
        check_uid("svc.backup-2@corp").unwrap();
        assert!(check_uid("").is_err());
        assert!(check_uid("a b").is_err());
        assert!(check_uid(&"x".repeat(65)).is_err());
    }
}
