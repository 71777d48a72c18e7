//! A bucket's index, sharded over omap objects `idx.{bucket id}.{shard}`
//! of the metadata pool; a key's shard is a hash of the key.
//!
//! A shard object holds, for the keys that hash to it:
//! - `o{key}`: the key's current [`ObjectRecord`];
//! - `p{data}`: data object `data` is being uploaded for a key
//!   ([`PendingRecord`]);
//! - `d{due:016x}/{data}`: data object `data` is garbage, to be removed once
//!   `due` (ms since the epoch) has passed;
//! - `u{key}\0{upload id}` and `m{upload id}{part:05}`: multipart uploads
//!   in progress and their parts ([`super::uploads`]).
//!
//! **Invariant:** every data object the gateway writes is named by a `p`,
//! an `o` or a `d` entry of one shard from before its first byte is
//! written until it is removed, and changes between them happen in one
//! atomic op on that shard object. An upload writes `p` first; its commit
//! swaps `p` for `o` and turns the replaced record's data into `d`,
//! guarded by the `o` value it read and by its own `p` (which the
//! collector removes only when it gives the upload up for dead). So a
//! crash at any point leaks nothing for good (the collector finds `p` and
//! `d` entries) and live data is never collected.

use std::collections::VecDeque;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use shoal_client::{ReadOp, WriteOp, XattrCmp};

use super::record::ObjectRecord;
use super::{Pools, guarded_write, now_ms, omap_page, random_id};
use crate::error::ModelError;

/// Prefix of current-record entries.
pub const OBJECT: u8 = b'o';
/// Prefix of upload-in-progress entries.
pub const PENDING: u8 = b'p';
/// Prefix of garbage entries.
pub const DOOMED: u8 = b'd';
/// Prefix of multipart uploads in progress (`u{key}\0{upload id}`).
pub const UPLOAD: u8 = b'u';
/// Prefix of uploaded parts (`m{upload id}{part:05}`).
pub const PART: u8 = b'm';

/// What a `p` entry records about an upload in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// The key the data is for.
    pub key: String,
    /// When the upload began (ms since the epoch).
    pub started_ms: u64,
}

/// An upload's claim on its data name, made before the data is written.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The shard object holding the claim.
    pub(super) shard: String,
    /// The data object's name.
    pub data: String,
    /// The stored `p` value (the commit is guarded by it).
    pub(super) value: Vec<u8>,
}

pub(super) fn with_prefix(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

/// The `d` entry key of data object `data` due at `due_ms`.
pub fn doomed_key(due_ms: u64, data: &str) -> Vec<u8> {
    with_prefix(DOOMED, format!("{due_ms:016x}/{data}").as_bytes())
}

/// The due time and data name of a `d` entry key.
pub fn parse_doomed_key(key: &[u8]) -> Option<(u64, String)> {
    let rest = std::str::from_utf8(key.strip_prefix(&[DOOMED])?).ok()?;
    let (due, data) = rest.split_once('/')?;
    Some((u64::from_str_radix(due, 16).ok()?, data.to_string()))
}

/// One listed item: an object, or a common prefix rolled up at the
/// delimiter.
#[derive(Clone, Debug, PartialEq)]
pub enum Listed {
    /// An object and its record.
    Object(String, Box<ObjectRecord>),
    /// A common prefix.
    Prefix(String),
}

impl Listed {
    /// The key or prefix (listings continue after it).
    pub fn name(&self) -> &str {
        match self {
            Listed::Object(k, _) | Listed::Prefix(k) => k,
        }
    }
}

/// A page of a listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListPage {
    /// Objects and common prefixes in key order.
    pub items: Vec<Listed>,
    /// More follow the last item.
    pub truncated: bool,
}

/// One merged entry before decoding: its name (without the kind byte)
/// and stored value, or a common prefix.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum RawListed {
    /// An entry's kind, name and value.
    Entry(u8, String, Vec<u8>),
    /// A common prefix.
    Prefix(String),
}

/// A page of merged entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct RawPage {
    /// Entries and prefixes in name order.
    pub(super) items: Vec<RawListed>,
    /// More follow the last item.
    pub(super) truncated: bool,
}

/// What a listing asks for.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only keys with this prefix.
    pub prefix: String,
    /// Only keys after this one.
    pub start_after: Option<String>,
    /// Roll keys up at the first delimiter after the prefix.
    pub delimiter: Option<String>,
    /// Most items (objects plus prefixes).
    pub max: usize,
}

/// Whether a write may replace (or remove) the current record; `Err`
/// refuses (e.g. a failed `If-Match`).
pub type Precondition<'a> = &'a (dyn Fn(Option<&ObjectRecord>) -> Result<(), ModelError> + Sync);

/// A bucket's index.
#[derive(Clone)]
pub struct Index {
    pub(super) pools: Pools,
    bucket_id: String,
    shards: u32,
}

impl Index {
    /// The index of bucket `bucket_id` with `shards` shards.
    pub fn new(pools: Pools, bucket_id: &str, shards: u32) -> Self {
        Index {
            pools,
            bucket_id: bucket_id.to_string(),
            shards: shards.max(1),
        }
    }

    /// The shard object of shard `i`.
    pub fn shard_object(bucket_id: &str, i: u32) -> String {
        format!("idx.{bucket_id}.{i}")
    }

    /// Every shard object of the index.
    pub fn shard_objects(&self) -> Vec<String> {
        (0..self.shards)
            .map(|i| Self::shard_object(&self.bucket_id, i))
            .collect()
    }

    /// The shard object holding `key`.
    pub(super) fn shard_of(&self, key: &str) -> String {
        let i = crc32c::crc32c(key.as_bytes()) % self.shards;
        Self::shard_object(&self.bucket_id, i)
    }

    /// The current record of `key` and its stored form.
    pub async fn get(&self, key: &str) -> Result<Option<(ObjectRecord, Vec<u8>)>, ModelError> {
        let okey = with_prefix(OBJECT, key.as_bytes());
        match super::omap_value(&self.pools.meta, &self.shard_of(key), &okey).await? {
            Some(raw) => Ok(Some((ObjectRecord::decode(key, &raw)?, raw))),
            None => Ok(None),
        }
    }

    /// Claims a fresh data object name for an upload to `key` (a `p`
    /// entry): call before writing any data.
    pub async fn begin_upload(&self, key: &str) -> Result<Pending, ModelError> {
        let data = format!("{}.{}", self.bucket_id, random_id());
        let value = serde_json::to_vec(&PendingRecord {
            key: key.to_string(),
            started_ms: now_ms(),
        })
        .map_err(|e| ModelError::corrupt("pending record", e))?;
        let shard = self.shard_of(key);
        let pkey = with_prefix(PENDING, data.as_bytes());
        let op = WriteOp::new()
            .cmp_omap(pkey.clone(), XattrCmp::Absent)
            .omap_set(vec![(pkey, value.clone())]);
        if !guarded_write(&self.pools.meta, &shard, op).await? {
            return Err(ModelError::Busy("data name collision".into()));
        }
        Ok(Pending { shard, data, value })
    }

    /// Gives an upload up: its data becomes garbage at once.
    pub async fn abandon(&self, pending: Pending) -> Result<(), ModelError> {
        let pkey = with_prefix(PENDING, pending.data.as_bytes());
        let op = WriteOp::new()
            .cmp_omap(pkey.clone(), XattrCmp::Eq(pending.value))
            .omap_remove(vec![pkey])
            .omap_set(vec![(doomed_key(now_ms(), &pending.data), Vec::new())]);
        // A failed guard means the collector took it over already.
        guarded_write(&self.pools.meta, &pending.shard, op).await?;
        Ok(())
    }

    /// The values of omap keys `keys` of one shard, read together.
    pub(super) async fn read_keys(
        &self,
        shard: &str,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<Vec<u8>>>, ModelError> {
        let op = ReadOp::new().omap_get(keys.clone());
        let entries = match self.pools.meta.read_op(shard, op).await {
            Ok(r) => match r.outputs.into_iter().next() {
                Some(shoal_client::Output::Omap { entries, .. }) => entries,
                other => {
                    return Err(ModelError::Protocol(format!(
                        "expected omap, got {other:?}"
                    )));
                }
            },
            Err(shoal_client::ClientError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut found: std::collections::HashMap<Vec<u8>, Vec<u8>> = entries.into_iter().collect();
        Ok(keys.iter().map(|k| found.remove(k)).collect())
    }

    /// The values of two omap keys of one shard, read together.
    pub(super) async fn read_two(
        &self,
        shard: &str,
        a: &[u8],
        b: &[u8],
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), ModelError> {
        let mut v = self.read_keys(shard, vec![a.to_vec(), b.to_vec()]).await?;
        let second = v.pop().flatten();
        Ok((v.pop().flatten(), second))
    }

    /// One page of the bucket's keys, merged from every shard in key order.
    pub async fn list(&self, q: &ListQuery) -> Result<ListPage, ModelError> {
        let after = q.start_after.as_ref().map(|s| s.as_bytes().to_vec());
        let raw = self
            .merged(
                Merge {
                    sources: &[Source::new(OBJECT, after.clone())],
                    prefix: &q.prefix,
                    marker: after.as_deref(),
                    delimiter: q.delimiter.as_deref(),
                    max: q.max,
                },
                same,
                |_, _| true,
            )
            .await?;
        let items = raw
            .items
            .into_iter()
            .map(|item| match item {
                RawListed::Entry(_, key, value) => {
                    let record = ObjectRecord::decode(&key, &value)?;
                    Ok(Listed::Object(key, Box::new(record)))
                }
                RawListed::Prefix(p) => Ok(Listed::Prefix(p)),
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(ListPage {
            items,
            truncated: raw.truncated,
        })
    }

    /// Entries of the kinds `sources` name (`o`, `u`, `v`) of every shard
    /// merged in name order: names with `prefix` (each after its source's
    /// start) that `keep` keeps, rolled up at the first `delimiter` after
    /// the prefix in the part of the name `key_of` gives (the object key),
    /// at most `max` items. A common prefix at or before `marker` is not
    /// repeated (the page the marker came from returned it).
    pub(super) async fn merged(
        &self,
        m: Merge<'_>,
        key_of: impl Fn(&str) -> &str,
        keep: impl Fn(u8, &[u8]) -> bool,
    ) -> Result<RawPage, ModelError> {
        let Merge {
            sources,
            prefix,
            marker,
            delimiter,
            max,
        } = m;
        let per_shard = (2 * max / self.shards as usize + 16).clamp(32, 1000) as u32;
        let mut cursors: Vec<ShardCursor> = sources
            .iter()
            .flat_map(|src| {
                self.shard_objects()
                    .into_iter()
                    .map(move |obj| ShardCursor::new(obj, src.kind, src.after.as_deref()))
            })
            .collect();
        let mut page = RawPage::default();
        loop {
            let fills = cursors
                .iter_mut()
                .map(|c| c.fill(&self.pools, prefix, per_shard));
            for r in join_all(fills).await {
                r?;
            }
            let Some(next) = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.buf.front().map(|(k, _)| (&k[1..], i)))
                .min()
                .map(|(_, i)| i)
            else {
                return Ok(page);
            };
            let kind = cursors[next].kind;
            let Some((full, value)) = cursors[next].buf.pop_front() else {
                continue;
            };
            if !keep(kind, &value) {
                continue;
            }
            if page.items.len() >= max {
                page.truncated = true;
                return Ok(page);
            }
            let name = String::from_utf8(full[1..].to_vec())
                .map_err(|e| ModelError::corrupt("index key", e))?;
            if let Some(common) = rolled_up(key_of(&name), prefix, delimiter) {
                // Skip every name under the common prefix, in every shard.
                for c in &mut cursors {
                    c.skip_under(&common);
                }
                if marker.is_none_or(|m| common.as_bytes() > m) {
                    page.items.push(RawListed::Prefix(common));
                }
                continue;
            }
            page.items.push(RawListed::Entry(kind, name, value));
        }
    }

    /// Every `p` and `d` entry of shard object `obj` up to `limit`.
    pub async fn garbage_page(
        &self,
        obj: &str,
        prefix: u8,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ModelError> {
        Ok(omap_page(&self.pools.meta, obj, None, &[prefix], limit)
            .await?
            .0)
    }
}

fn same(name: &str) -> &str {
    name
}

/// The common prefix `key` rolls up to: the prefix plus everything up to
/// and including the first delimiter after it.
pub fn rolled_up(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(d)?;
    Some(format!("{prefix}{}", &rest[..at + d.len()]))
}

/// What a merged listing reads ([`Index::merged`]).
pub(super) struct Merge<'a> {
    /// The kinds of entries and where each starts.
    pub(super) sources: &'a [Source],
    /// Only names with this prefix.
    pub(super) prefix: &'a str,
    /// Common prefixes up to this one were returned already.
    pub(super) marker: Option<&'a [u8]>,
    /// Roll names up at this delimiter.
    pub(super) delimiter: Option<&'a str>,
    /// Most items.
    pub(super) max: usize,
}

/// One kind of entries a merged listing reads, and the name (without the
/// kind byte) it starts after.
#[derive(Clone, Debug)]
pub(super) struct Source {
    /// The kind byte.
    pub(super) kind: u8,
    /// Start after this name.
    pub(super) after: Option<Vec<u8>>,
}

impl Source {
    /// Entries of `kind` after the name `after`.
    pub(super) fn new(kind: u8, after: Option<Vec<u8>>) -> Source {
        Source { kind, after }
    }
}

/// One shard's position in one kind of a merged listing.
struct ShardCursor {
    obj: String,
    kind: u8,
    /// The last omap key fetched (or skipped to).
    after: Option<Vec<u8>>,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    exhausted: bool,
}

impl ShardCursor {
    fn new(obj: String, kind: u8, after_name: Option<&[u8]>) -> Self {
        ShardCursor {
            obj,
            kind,
            after: after_name.map(|n| with_prefix(kind, n)),
            buf: VecDeque::new(),
            exhausted: false,
        }
    }

    async fn fill(&mut self, pools: &Pools, prefix: &str, limit: u32) -> Result<(), ModelError> {
        if !self.buf.is_empty() || self.exhausted {
            return Ok(());
        }
        let full_prefix = with_prefix(self.kind, prefix.as_bytes());
        let (entries, more) = omap_page(
            &pools.meta,
            &self.obj,
            self.after.clone(),
            &full_prefix,
            limit,
        )
        .await?;
        if let Some((k, _)) = entries.last() {
            self.after = Some(k.clone());
        }
        self.exhausted = !more;
        self.buf.extend(entries);
        Ok(())
    }

    /// Drops every entry whose name starts with `common`.
    fn skip_under(&mut self, common: &str) {
        let mut past = with_prefix(self.kind, common.as_bytes());
        past.push(0xff);
        while self
            .buf
            .front()
            .is_some_and(|(k, _)| k.as_slice() <= past.as_slice())
        {
            self.buf.pop_front();
        }
        if self.buf.is_empty() && self.after.as_deref().is_none_or(|a| a < past.as_slice()) {
            self.after = Some(past);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_roll_up_at_the_first_delimiter_after_the_prefix() {
        assert_eq!(
            rolled_up("photos/2024/a.jpg", "", Some("/")),
            Some("photos/".into())
        );
        assert_eq!(
            rolled_up("photos/2024/a.jpg", "photos/", Some("/")),
            Some("photos/2024/".into())
        );
        assert_eq!(rolled_up("photos/a.jpg", "photos/", Some("/")), None);
        assert_eq!(rolled_up("a--b--c", "a", Some("--")), Some("a--".into()));
        assert_eq!(rolled_up("abc", "", None), None);
        assert_eq!(rolled_up("abc", "", Some("")), None);
        assert_eq!(rolled_up("other", "photos/", Some("/")), None);
    }

    #[test]
    fn doomed_keys_sort_by_due_time_and_parse_back() {
        let a = doomed_key(5, "b.x");
        let b = doomed_key(0x100, "a.y");
        assert!(a < b, "due order, not name order");
        assert_eq!(parse_doomed_key(&a), Some((5, "b.x".into())));
        assert_eq!(parse_doomed_key(b"dzz/x"), None);
        assert_eq!(parse_doomed_key(b"o0000/x"), None);
    }

    #[test]
    fn skipping_moves_a_cursor_past_a_prefix() {
        let mut c = ShardCursor::new("s".into(), OBJECT, None);
        c.buf.extend([
            (b"oa/1".to_vec(), vec![]),
            (b"oa/2".to_vec(), vec![]),
            (b"ob".to_vec(), vec![]),
        ]);
        c.skip_under("a/");
        assert_eq!(c.buf.front().map(|(k, _)| k.clone()), Some(b"ob".to_vec()));
        let mut empty = ShardCursor::new("s".into(), OBJECT, Some(b"a"));
        empty.skip_under("a/");
        assert_eq!(empty.after.as_deref(), Some(&b"oa/\xff"[..]));
    }
}
