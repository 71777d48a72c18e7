//! Object versions in a bucket index, and the pure planners that turn a
//! write or delete of one key into a [`Change`] of its shard object.
//!
//! Entries, besides those of [`super::index`]:
//! - `v{key}\0{token}`: one version of `key` (an [`ObjectRecord`], maybe a
//!   delete marker). Tokens sort newest first, so a key's versions list
//!   in S3's order and keys stay in key order (`\0` sorts before any byte
//!   a key may hold);
//! - `h{key}`: the key's [`KeyHead`]: its latest version and its `null`
//!   version, if any.
//!
//! **Invariants**, kept by every change being one guarded op on the key's
//! shard (guarded by `o` and `h` as read, and by every `v` entry it
//! removes or promotes):
//! - a key has `h` iff it has `v` entries; `h.latest` names its newest `v`
//!   entry and `h.null` the one whose version id is `null`;
//! - `o{key}` holds the latest version (byte for byte) when that is an
//!   object and is absent when it is a delete marker, so plain listings
//!   and GETs read `o` alone, as in an unversioned bucket;
//! - a key without `h` has at most its implicit `null` version, in `o`
//!   with no version id (written while the bucket was unversioned); the
//!   first versioned change of the key turns it into a `v` entry;
//! - every version's data is named by its `v` entry (or by the `o` entry
//!   of an implicit `null` version) until the op that drops the last entry
//!   naming it turns it into `d` garbage.
//!
//! Versioned writes make a new token strictly newer than the latest, so
//! tokens are unique per key even across gateways with skewed clocks.

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::index::{OBJECT, with_prefix};
use super::record::ObjectRecord;
use crate::error::ModelError;

/// Prefix of version entries (`v{key}\0{token}`).
pub const VERSION: u8 = b'v';
/// Prefix of key heads (`h{key}`).
pub const HEAD: u8 = b'h';
/// The version id of a key's `null` version.
pub const NULL_VERSION: &str = "null";
/// Length of a version token: 16 hex digits of the inverted time in
/// microseconds and 8 random ones.
const TOKEN_LEN: usize = 24;

/// How a write treats the versions a key already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// The bucket was never versioned: a write replaces the object.
    Unversioned,
    /// Versioning is enabled: a write adds a version.
    NewVersion,
    /// Versioning is suspended: a write replaces the `null` version.
    NullVersion,
}

/// What `h{key}` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHead {
    /// Token of the newest version.
    pub latest: String,
    /// Token of the version whose id is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null: Option<String>,
}

impl KeyHead {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the stored head of `key`.
    pub fn decode(key: &str, raw: &[u8]) -> Result<KeyHead, ModelError> {
        serde_json::from_slice(raw).map_err(|e| ModelError::corrupt(format!("head of {key}"), e))
    }

    /// The version id of the version with token `token`.
    pub fn version_id(&self, token: &str) -> String {
        if self.null.as_deref() == Some(token) {
            NULL_VERSION.to_string()
        } else {
            token.to_string()
        }
    }
}

/// The `v` entry key of `key`'s version `token`.
pub fn version_key(key: &str, token: &str) -> Vec<u8> {
    with_prefix(VERSION, format!("{key}\0{token}").as_bytes())
}

/// The prefix of every `v` entry of `key`.
pub fn versions_prefix(key: &str) -> Vec<u8> {
    with_prefix(VERSION, format!("{key}\0").as_bytes())
}

/// The `h` entry key of `key`.
pub fn head_key(key: &str) -> Vec<u8> {
    with_prefix(HEAD, key.as_bytes())
}

/// The key and token of a `v` entry's name (without its kind byte).
pub fn split_version_name(name: &str) -> Option<(&str, &str)> {
    name.split_once('\0')
}

/// The key part of a `v` entry's name (or the name itself).
pub fn key_of_name(name: &str) -> &str {
    split_version_name(name).map_or(name, |(k, _)| k)
}

/// Checks a version id a client sent: `null` or a token.
pub fn check_version_id(id: &str) -> Result<(), ModelError> {
    let token = id.len() == TOKEN_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if id == NULL_VERSION || token {
        Ok(())
    } else {
        Err(ModelError::InvalidArgument(
            "Invalid version id specified".into(),
        ))
    }
}

/// A token for a version made at `now_us`, strictly newer than `latest`.
pub fn next_token(latest: Option<&str>, now_us: u64, random: u32) -> String {
    let mut inverted = u64::MAX - now_us;
    if let Some(cur) = latest.and_then(|t| u64::from_str_radix(t.get(..16)?, 16).ok()) {
        inverted = inverted.min(cur.saturating_sub(1));
    }
    format!("{inverted:016x}{random:08x}")
}

/// The token of version `version_id` of a key in state `st` (none: the
/// key has no such version, or it is the implicit `null` one in `o`).
pub fn token_of(st: &KeyState, version_id: &str) -> Option<String> {
    if version_id == NULL_VERSION {
        st.head.as_ref().and_then(|(h, _)| h.null.clone())
    } else {
        Some(version_id.to_string())
    }
}

/// A stored entry: its decoded record and the bytes it is guarded by.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The record.
    pub record: ObjectRecord,
    /// Its stored form.
    pub raw: Vec<u8>,
}

impl Entry {
    /// Decodes the stored record of `key`.
    pub fn decode(key: &str, raw: Vec<u8>) -> Result<Entry, ModelError> {
        Ok(Entry {
            record: ObjectRecord::decode(key, &raw)?,
            raw,
        })
    }
}

/// What one key's entries hold, as read for a change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyState {
    /// `o`: the current object.
    pub current: Option<Entry>,
    /// `h` and its stored form.
    pub head: Option<(KeyHead, Vec<u8>)>,
    /// The `v` entry of the `null` version, when the head names one.
    pub null: Option<Entry>,
    /// The `v` entry of the latest version, when that is a delete marker.
    pub latest_marker: Option<Entry>,
}

impl KeyState {
    /// The state given `key`'s `o` and `h` values; the `v` entries it
    /// needs next are [`KeyState::wanted`].
    pub fn parse(
        key: &str,
        o: Option<Vec<u8>>,
        h: Option<Vec<u8>>,
    ) -> Result<KeyState, ModelError> {
        Ok(KeyState {
            current: o.map(|raw| Entry::decode(key, raw)).transpose()?,
            head: h
                .map(|raw| Ok::<_, ModelError>((KeyHead::decode(key, &raw)?, raw)))
                .transpose()?,
            null: None,
            latest_marker: None,
        })
    }

    /// The `v` entries a write or delete reads besides `o` and `h`: the
    /// `null` version, and the latest version when `o` is absent (a
    /// delete marker).
    pub fn wanted(&self, key: &str) -> Vec<Vec<u8>> {
        let Some((head, _)) = &self.head else {
            return Vec::new();
        };
        let mut keys: Vec<Vec<u8>> = head.null.iter().map(|t| version_key(key, t)).collect();
        if self.current.is_none() && head.null.as_ref() != Some(&head.latest) {
            keys.push(version_key(key, &head.latest));
        }
        keys
    }

    /// Adds the [`KeyState::wanted`] entries, looked up with `value`.
    pub fn fill(
        &mut self,
        key: &str,
        value: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<(), ModelError> {
        let Some((head, _)) = &self.head else {
            return Ok(());
        };
        let read = |token: &String| -> Result<Option<Entry>, ModelError> {
            value(&version_key(key, token))
                .map(|raw| Entry::decode(key, raw))
                .transpose()
        };
        self.null = head.null.as_ref().map(read).transpose()?.flatten();
        if self.current.is_none() {
            self.latest_marker = if head.null.as_ref() == Some(&head.latest) {
                self.null.clone()
            } else {
                read(&head.latest)?
            };
        }
        Ok(())
    }

    /// The latest version, object or delete marker (none: the key has no
    /// version at all).
    pub fn latest(&self) -> Option<&ObjectRecord> {
        self.current
            .as_ref()
            .or(self.latest_marker.as_ref())
            .map(|e| &e.record)
    }
}

/// Time and randomness a planner uses (passed in: planners are pure).
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// Now, in microseconds since the epoch.
    pub now_us: u64,
    /// Random bits for a new token.
    pub random: u32,
    /// When data a change drops becomes collectable (ms since the epoch).
    pub due_ms: u64,
}

impl Stamp {
    /// The current time, fresh randomness, data kept for `keep_ms`.
    pub fn now(keep_ms: u64) -> Stamp {
        let now_us = super::now_us();
        Stamp {
            now_us,
            random: u32::from_le_bytes(super::random_bytes::<4>()),
            due_ms: (now_us / 1000).saturating_add(keep_ms),
        }
    }

    fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }
}

/// A planned change and what it made.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// The op's content.
    pub change: Change,
    /// The version id to report (none: the key is unversioned, or the
    /// write replaced the `null` version of a suspended bucket).
    pub version_id: Option<String>,
    /// The record written (with its version id), if any.
    pub record: Option<ObjectRecord>,
}

fn object_key(key: &str) -> Vec<u8> {
    with_prefix(OBJECT, key.as_bytes())
}

/// Guards a change by the `o` and `h` entries it read.
fn guard_key(c: &mut Change, key: &str, st: &KeyState) {
    c.guard(
        object_key(key),
        st.current.as_ref().map(|e| e.raw.as_slice()),
    );
    c.guard(
        head_key(key),
        st.head.as_ref().map(|(_, raw)| raw.as_slice()),
    );
}

/// The key's versions as a versioned change sees them: its head, with an
/// implicit `null` version in `o` turned into a `v` entry. The record of
/// that implicit version is returned too, for [`drop_null`].
fn open_versions(
    key: &str,
    st: &KeyState,
    c: &mut Change,
) -> (Option<KeyHead>, Option<ObjectRecord>) {
    if let Some((head, _)) = &st.head {
        return (Some(head.clone()), None);
    }
    let Some(cur) = st
        .current
        .as_ref()
        .filter(|e| e.record.version_id.is_none())
    else {
        return (None, None);
    };
    let token = next_token(None, cur.record.mtime_ms.saturating_mul(1000), 0);
    let mut record = cur.record.clone();
    record.version_id = Some(NULL_VERSION.to_string());
    c.set(version_key(key, &token), record.encode());
    let head = KeyHead {
        latest: token.clone(),
        null: Some(token),
    };
    (Some(head), Some(record))
}

/// Removes the key's `null` version (its data becomes garbage), as a
/// suspended bucket's write or delete does.
fn drop_null(
    key: &str,
    st: &KeyState,
    head: &mut KeyHead,
    implicit: Option<&ObjectRecord>,
    c: &mut Change,
    due_ms: u64,
) {
    let Some(token) = head.null.take() else {
        return;
    };
    let vkey = version_key(key, &token);
    if let Some(e) = &st.null {
        c.guard(vkey.clone(), Some(&e.raw));
        c.doom(&e.record, due_ms);
    } else if let Some(r) = implicit {
        c.doom(r, due_ms);
    }
    c.remove(vkey);
}

/// Adds `record` as the key's newest version (replacing the `null`
/// version unless `mode` makes a new one); the version token and id.
fn push_version(
    key: &str,
    st: &KeyState,
    mut record: ObjectRecord,
    mode: WriteMode,
    t: &Stamp,
    c: &mut Change,
) -> (ObjectRecord, Option<String>) {
    let (head, implicit) = open_versions(key, st, c);
    let token = next_token(head.as_ref().map(|h| h.latest.as_str()), t.now_us, t.random);
    let mut head = head.unwrap_or(KeyHead {
        latest: token.clone(),
        null: None,
    });
    let reported = if mode == WriteMode::NewVersion {
        record.version_id = Some(token.clone());
        Some(token.clone())
    } else {
        drop_null(key, st, &mut head, implicit.as_ref(), c, t.due_ms);
        head.null = Some(token.clone());
        record.version_id = Some(NULL_VERSION.to_string());
        None
    };
    head.latest = token.clone();
    let encoded = record.encode();
    c.set(version_key(key, &token), encoded.clone());
    if record.delete_marker {
        c.remove(object_key(key));
    } else {
        c.set(object_key(key), encoded);
    }
    c.set(head_key(key), head.encode());
    (record, reported)
}

/// A write of `record` as the key's current object.
pub fn plan_write(
    key: &str,
    st: &KeyState,
    record: ObjectRecord,
    mode: WriteMode,
    t: &Stamp,
) -> Planned {
    let mut change = Change::default();
    guard_key(&mut change, key, st);
    if st.head.is_none() && mode != WriteMode::NewVersion {
        // No versions to keep: replace the implicit `null` version.
        let mut record = record;
        record.version_id = None;
        if let Some(cur) = &st.current {
            change.doom(&cur.record, t.due_ms);
        }
        change.set(object_key(key), record.encode());
        return Planned {
            change,
            version_id: None,
            record: Some(record),
        };
    }
    let (record, version_id) = push_version(key, st, record, mode, t, &mut change);
    Planned {
        change,
        version_id,
        record: Some(record),
    }
}

/// A delete without a version id: in a versioned bucket a delete marker
/// by `owner` becomes the latest version (the id is reported even when it
/// is `null`); otherwise the object goes.
pub fn plan_delete(key: &str, st: &KeyState, mode: WriteMode, owner: &str, t: &Stamp) -> Planned {
    let mut change = Change::default();
    guard_key(&mut change, key, st);
    if st.head.is_none() && mode == WriteMode::Unversioned {
        if let Some(cur) = &st.current {
            change.doom(&cur.record, t.due_ms);
            change.remove(object_key(key));
        }
        return Planned {
            change,
            version_id: None,
            record: None,
        };
    }
    let marker = ObjectRecord::marker(owner, t.now_ms(), String::new());
    let (record, reported) = push_version(key, st, marker, mode, t, &mut change);
    Planned {
        change,
        version_id: reported.or_else(|| record.version_id.clone()),
        record: Some(record),
    }
}

/// Removes version `token` (its `v` entry `target`) for good; if it was
/// the latest, `next` (the next older version, if any) takes its place.
pub fn plan_remove_version(
    key: &str,
    st: &KeyState,
    token: &str,
    target: &Entry,
    next: Option<(&str, &Entry)>,
    t: &Stamp,
) -> Planned {
    let mut change = Change::default();
    guard_key(&mut change, key, st);
    let vkey = version_key(key, token);
    change.guard(vkey.clone(), Some(&target.raw));
    change.remove(vkey);
    change.doom(&target.record, t.due_ms);
    let Some((head, _)) = &st.head else {
        return Planned {
            change,
            version_id: target.record.version_id.clone(),
            record: None,
        };
    };
    let mut head = head.clone();
    if head.null.as_deref() == Some(token) {
        head.null = None;
    }
    let mut gone = false;
    if head.latest == token {
        match next {
            Some((next_token, entry)) => {
                change.guard(version_key(key, next_token), Some(&entry.raw));
                head.latest = next_token.to_string();
                if entry.record.delete_marker {
                    change.remove(object_key(key));
                } else {
                    change.set(object_key(key), entry.raw.clone());
                }
            }
            None => {
                change.remove(object_key(key));
                gone = true;
            }
        }
    }
    if gone {
        change.remove(head_key(key));
    } else {
        change.set(head_key(key), head.encode());
    }
    Planned {
        change,
        version_id: target.record.version_id.clone(),
        record: None,
    }
}

/// Removes the implicit `null` version of a key that has no `h` (the
/// object written while the bucket was unversioned).
pub fn plan_remove_implicit(key: &str, st: &KeyState, t: &Stamp) -> Planned {
    let mut change = Change::default();
    guard_key(&mut change, key, st);
    if let Some(cur) = &st.current {
        change.doom(&cur.record, t.due_ms);
        change.remove(object_key(key));
    }
    Planned {
        change,
        version_id: Some(NULL_VERSION.to_string()),
        record: None,
    }
}

#[cfg(test)]
mod tests;
