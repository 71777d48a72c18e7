//! Writes, deletes, lookups and listings of a bucket index, versioned or
//! not: the thin shell around the planners of [`super::versions`]. It
//! reads a key's entries, plans, applies the change guarded by what it
//! read, and reads again when a concurrent change won.

use std::collections::HashMap;

use super::change::Change;
use super::index::{
    Index, ListQuery, Merge, OBJECT, Pending, Precondition, RawListed, Source, with_prefix,
};
use super::record::ObjectRecord;
use super::versions::{
    Entry, KeyState, NULL_VERSION, Planned, Stamp, VERSION, WriteMode, head_key, key_of_name,
    plan_delete, plan_remove_implicit, plan_remove_version, plan_write, token_of, version_key,
    versions_prefix,
};
use super::{MAX_RACES, guarded_write, omap_page};
use crate::error::ModelError;

/// What a lookup of a key (or one of its versions) found.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// An object.
    Object(Box<ObjectRecord>),
    /// A delete marker: the latest version (the key reads as deleted), or
    /// the version named.
    Marker {
        /// Its version id.
        version_id: String,
    },
    /// No such key or version.
    Missing,
}

/// What a delete did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deleted {
    /// The version placed (a delete marker) or removed.
    pub version_id: Option<String>,
    /// The version placed or removed is a delete marker.
    pub delete_marker: bool,
}

/// One item of a version listing.
#[derive(Clone, Debug, PartialEq)]
pub enum ListedVersion {
    /// A version (object or delete marker) of `key`.
    Version {
        /// The key.
        key: String,
        /// The version, its id resolved (`null` for implicit ones).
        record: Box<ObjectRecord>,
        /// It is the key's latest version.
        latest: bool,
    },
    /// A common prefix.
    Prefix(String),
}

impl ListedVersion {
    /// The key or prefix, and the version id (listings continue after
    /// them).
    pub fn marker(&self) -> (&str, Option<&str>) {
        match self {
            ListedVersion::Version { key, record, .. } => (key, record.version_id.as_deref()),
            ListedVersion::Prefix(p) => (p, None),
        }
    }
}

/// A page of a version listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VersionPage {
    /// Versions newest first within a key, keys in order, and prefixes.
    pub items: Vec<ListedVersion>,
    /// More follow the last item.
    pub truncated: bool,
}

impl Index {
    /// `key`'s entries in `shard`, and the values of `extra` keys read in
    /// the same op.
    pub(super) async fn key_state(
        &self,
        shard: &str,
        key: &str,
        extra: Vec<Vec<u8>>,
    ) -> Result<(KeyState, Vec<Option<Vec<u8>>>), ModelError> {
        let mut keys = vec![with_prefix(OBJECT, key.as_bytes()), head_key(key)];
        keys.extend(extra);
        let mut values = self.read_keys(shard, keys).await?;
        let rest = values.split_off(2);
        let h = values.pop().flatten();
        let o = values.pop().flatten();
        let mut st = KeyState::parse(key, o, h)?;
        let wanted = st.wanted(key);
        if !wanted.is_empty() {
            let got = self.read_keys(shard, wanted.clone()).await?;
            let found: HashMap<Vec<u8>, Option<Vec<u8>>> = wanted.into_iter().zip(got).collect();
            st.fill(key, |k| found.get(k).cloned().flatten())?;
        }
        Ok((st, rest))
    }

    /// Applies `change` to `shard`; `false` when a concurrent change won. A
    /// change that writes nothing is not sent (a delete of a missing key
    /// must not create its shard object).
    async fn apply(&self, shard: &str, change: Change) -> Result<bool, ModelError> {
        if change.is_noop() {
            return Ok(true);
        }
        guarded_write(&self.pools.meta, shard, change.into_op()).await
    }

    /// Makes `record` (whose data `pending` claimed) `key`'s current object
    /// if `precondition` holds for the current one: a new version, the
    /// `null` version, or the only object, as `mode` says. What was
    /// written (with its version id) and the version id to report.
    pub async fn commit(
        &self,
        key: &str,
        pending: &Pending,
        record: &ObjectRecord,
        precondition: Precondition<'_>,
        mode: WriteMode,
        keep_ms: u64,
    ) -> Result<Planned, ModelError> {
        let pkey = with_prefix(super::index::PENDING, pending.data.as_bytes());
        for _ in 0..MAX_RACES {
            let (st, extra) = self
                .key_state(&pending.shard, key, vec![pkey.clone()])
                .await?;
            if extra.first().cloned().flatten().as_ref() != Some(&pending.value) {
                return Err(ModelError::UploadExpired);
            }
            precondition(st.current.as_ref().map(|e| &e.record))?;
            let mut planned = plan_write(key, &st, record.clone(), mode, &Stamp::now(keep_ms));
            planned.change.guard(pkey.clone(), Some(&pending.value));
            planned.change.remove(pkey.clone());
            if self.apply(&pending.shard, planned.change.clone()).await? {
                return Ok(planned);
            }
        }
        Err(ModelError::Busy(key.to_string()))
    }

    /// Deletes `key` without naming a version, if `precondition` holds for
    /// its latest version (object or delete marker). A versioned bucket
    /// gets a delete marker by `owner`, unless `skip_missing` and the key
    /// has no version at all.
    pub async fn delete(
        &self,
        key: &str,
        precondition: Precondition<'_>,
        skip_missing: bool,
        mode: WriteMode,
        owner: &str,
        keep_ms: u64,
    ) -> Result<Deleted, ModelError> {
        let shard = self.shard_of(key);
        for _ in 0..MAX_RACES {
            let (st, _) = self.key_state(&shard, key, Vec::new()).await?;
            if skip_missing && st.latest().is_none() {
                return Ok(Deleted::default());
            }
            precondition(st.latest())?;
            let planned = plan_delete(key, &st, mode, owner, &Stamp::now(keep_ms));
            let marker = planned.record.is_some();
            if self.apply(&shard, planned.change).await? {
                return Ok(Deleted {
                    version_id: planned.version_id,
                    delete_marker: marker,
                });
            }
        }
        Err(ModelError::Busy(key.to_string()))
    }

    /// Removes version `version_id` of `key` for good if `precondition`
    /// holds for it; a missing version is no error (nothing happens).
    pub async fn delete_version(
        &self,
        key: &str,
        version_id: &str,
        precondition: Precondition<'_>,
        keep_ms: u64,
    ) -> Result<Deleted, ModelError> {
        let shard = self.shard_of(key);
        for _ in 0..MAX_RACES {
            // Removing a version needs `o` and `h` only (not the `v` entries a
            // write reads).
            let st = self.key_state_light(&shard, key).await?;
            let t = Stamp::now(keep_ms);
            let planned = match token_of(&st, version_id) {
                None => match &st.current {
                    Some(cur) if st.head.is_none() && version_id == NULL_VERSION => {
                        precondition(Some(&cur.record))?;
                        plan_remove_implicit(key, &st, &t)
                    }
                    _ => return Ok(Deleted::default()),
                },
                Some(token) => {
                    let Some(target) = self.version_entry(&shard, key, &token).await? else {
                        return Ok(Deleted::default());
                    };
                    precondition(Some(&target.record))?;
                    let latest = st.head.as_ref().is_some_and(|(h, _)| h.latest == token);
                    let next = match latest {
                        true => self.next_version(&shard, key, &token).await?,
                        false => None,
                    };
                    let next = next.as_ref().map(|(t, e)| (t.as_str(), e));
                    let mut p = plan_remove_version(key, &st, &token, &target, next, &t);
                    p.record = Some(target.record);
                    p
                }
            };
            let marker = planned.record.as_ref().is_some_and(|r| r.delete_marker);
            if self.apply(&shard, planned.change).await? {
                return Ok(Deleted {
                    version_id: Some(version_id.to_string()),
                    delete_marker: marker,
                });
            }
        }
        Err(ModelError::Busy(key.to_string()))
    }

    /// The `v` entry of `key`'s version `token`.
    async fn version_entry(
        &self,
        shard: &str,
        key: &str,
        token: &str,
    ) -> Result<Option<Entry>, ModelError> {
        let mut v = self.read_keys(shard, vec![version_key(key, token)]).await?;
        v.pop()
            .flatten()
            .map(|raw| Entry::decode(key, raw))
            .transpose()
    }

    /// The version of `key` just older than `token`, with its token.
    async fn next_version(
        &self,
        shard: &str,
        key: &str,
        token: &str,
    ) -> Result<Option<(String, Entry)>, ModelError> {
        let prefix = versions_prefix(key);
        let after = version_key(key, token);
        let (page, _) = omap_page(&self.pools.meta, shard, Some(after), &prefix, 1).await?;
        page.into_iter()
            .next()
            .map(|(k, raw)| {
                let token = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((token, Entry::decode(key, raw)?))
            })
            .transpose()
    }

    /// `key`'s current object or, with `version_id`, that version.
    pub async fn lookup(&self, key: &str, version_id: Option<&str>) -> Result<Found, ModelError> {
        let shard = self.shard_of(key);
        let st = self.key_state_light(&shard, key).await?;
        let Some(vid) = version_id else {
            return Ok(match (st.current, st.head) {
                (Some(e), _) => Found::Object(Box::new(e.record)),
                (None, Some((h, _))) => Found::Marker {
                    version_id: h.version_id(&h.latest),
                },
                (None, None) => Found::Missing,
            });
        };
        let entry = match token_of(&st, vid) {
            None => st
                .current
                .filter(|e| e.record.version_id.is_none() && st.head.is_none()),
            Some(token) => self.version_entry(&shard, key, &token).await?,
        };
        Ok(match entry {
            Some(e) if e.record.delete_marker => Found::Marker {
                version_id: vid.to_string(),
            },
            Some(mut e) => {
                e.record
                    .version_id
                    .get_or_insert_with(|| NULL_VERSION.into());
                Found::Object(Box::new(e.record))
            }
            None => Found::Missing,
        })
    }

    /// `key`'s `o` and `h` entries alone (a lookup needs no more).
    async fn key_state_light(&self, shard: &str, key: &str) -> Result<KeyState, ModelError> {
        let keys = vec![with_prefix(OBJECT, key.as_bytes()), head_key(key)];
        let mut values = self.read_keys(shard, keys).await?;
        let h = values.pop().flatten();
        let o = values.pop().flatten();
        KeyState::parse(key, o, h)
    }

    /// Changes `key`'s current object or, with `version_id`, that version
    /// with `change` (both its entries when it is the current one). The
    /// changed record.
    pub async fn update(
        &self,
        key: &str,
        version_id: Option<&str>,
        change: &(dyn Fn(&mut ObjectRecord) + Sync),
    ) -> Result<ObjectRecord, ModelError> {
        let shard = self.shard_of(key);
        let okey = with_prefix(OBJECT, key.as_bytes());
        let missing = || ModelError::NoSuchKey(key.to_string());
        for _ in 0..MAX_RACES {
            let st = self.key_state_light(&shard, key).await?;
            let head = st.head.as_ref().map(|(h, _)| h);
            let token = match version_id {
                None => head.map(|h| h.latest.clone()),
                Some(vid) => token_of(&st, vid),
            };
            let mut c = Change::default();
            c.guard(
                head_key(key),
                st.head.as_ref().map(|(_, raw)| raw.as_slice()),
            );
            let (mut record, is_current) = match &token {
                None => {
                    let cur = st.current.as_ref().ok_or_else(missing)?;
                    c.guard(okey.clone(), Some(&cur.raw));
                    (cur.record.clone(), true)
                }
                Some(t) => {
                    let e = self
                        .version_entry(&shard, key, t)
                        .await?
                        .ok_or_else(missing)?;
                    if e.record.delete_marker {
                        return Err(ModelError::DeleteMarker {
                            version_id: e.record.version_id.unwrap_or_default(),
                            named: version_id.is_some(),
                        });
                    }
                    c.guard(version_key(key, t), Some(&e.raw));
                    let current = head.is_some_and(|h| &h.latest == t);
                    if current {
                        c.guard(okey.clone(), st.current.as_ref().map(|e| e.raw.as_slice()));
                    }
                    (e.record, current)
                }
            };
            change(&mut record);
            let encoded = record.encode();
            if let Some(t) = &token {
                c.set(version_key(key, t), encoded.clone());
            }
            if is_current {
                c.set(okey.clone(), encoded);
            }
            if self.apply(&shard, c).await? {
                return Ok(record);
            }
        }
        Err(ModelError::Busy(key.to_string()))
    }

    /// Whether the bucket holds no object and no version.
    pub async fn is_empty(&self) -> Result<bool, ModelError> {
        for kind in [OBJECT, VERSION] {
            let pages =
                futures_util::future::join_all(self.shard_objects().into_iter().map(|obj| {
                    let meta = self.pools.meta.clone();
                    async move { omap_page(&meta, &obj, None, &[kind], 1).await }
                }))
                .await;
            for page in pages {
                if !page?.0.is_empty() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// One page of the bucket's versions (newest first within a key) after
    /// `q.start_after` and, for that key, after version `version_marker`.
    pub async fn list_versions(
        &self,
        q: &ListQuery,
        version_marker: Option<&str>,
    ) -> Result<VersionPage, ModelError> {
        let key_marker = q.start_after.as_deref();
        let (v_after, o_after) = self.version_starts(key_marker, version_marker).await?;
        let sources = [
            Source::new(OBJECT, o_after.clone()),
            Source::new(VERSION, v_after),
        ];
        // `o` entries of versioned keys repeat their latest `v` entry.
        let keep = |kind: u8, value: &[u8]| {
            kind != OBJECT
                || serde_json::from_slice::<ObjectRecord>(value)
                    .is_ok_and(|r| r.version_id.is_none())
        };
        let raw = self
            .merged(
                Merge {
                    sources: &sources,
                    prefix: &q.prefix,
                    marker: o_after.as_deref(),
                    delimiter: q.delimiter.as_deref(),
                    max: q.max,
                },
                key_of_name,
                keep,
            )
            .await?;
        let resumed = key_marker.filter(|_| version_marker.is_some_and(|v| !v.is_empty()));
        let mut previous: Option<String> = resumed.map(str::to_string);
        let mut items = Vec::with_capacity(raw.items.len());
        for item in raw.items {
            match item {
                RawListed::Prefix(p) => items.push(ListedVersion::Prefix(p)),
                RawListed::Entry(_, name, value) => {
                    let key = key_of_name(&name).to_string();
                    let mut record = ObjectRecord::decode(&key, &value)?;
                    record.version_id.get_or_insert_with(|| NULL_VERSION.into());
                    let latest = previous.as_deref() != Some(key.as_str());
                    previous = Some(key.clone());
                    items.push(ListedVersion::Version {
                        key,
                        record: Box::new(record),
                        latest,
                    });
                }
            }
        }
        Ok(VersionPage {
            items,
            truncated: raw.truncated,
        })
    }

    /// Where a version listing resumes in the `v` and the `o` entries.
    async fn version_starts(
        &self,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), ModelError> {
        let Some(key) = key_marker.filter(|k| !k.is_empty()) else {
            return Ok((None, None));
        };
        let o_after = Some(key.as_bytes().to_vec());
        // Past every version of the key: `\u{1}` sorts after its `\0`.
        let past_key = Some(format!("{key}\u{1}").into_bytes());
        let Some(vid) = version_marker.filter(|v| !v.is_empty()) else {
            return Ok((past_key, o_after));
        };
        super::versions::check_version_id(vid)?;
        let st = self.key_state_light(&self.shard_of(key), key).await?;
        let v_after = match token_of(&st, vid) {
            Some(token) => Some(format!("{key}\0{token}").into_bytes()),
            None => past_key,
        };
        Ok((v_after, o_after))
    }
}
