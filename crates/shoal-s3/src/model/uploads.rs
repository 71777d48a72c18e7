//! Multipart uploads in a bucket's index shard (the shard of their key):
//! `u{key}\0{upload id}` -> [`UploadRecord`], `m{upload id}{part:05}` ->
//! [`PartRecord`].
//!
//! A part's data is claimed (`p`) before it is written, like any upload.
//! Storing a part swaps its `p` for the `m` entry and bumps the upload's
//! `version`, guarded by the upload record; completing and aborting are
//! guarded by the same record. So a part stored concurrently with a
//! complete either lands before it (and is seen) or fails (its data is
//! garbage): a completed object never names data that a later part
//! upload dooms.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use shoal_client::{WriteOp, XattrCmp};

use super::index::{
    Index, Merge, PART, Pending, Precondition, Source, UPLOAD, doomed_key, with_prefix,
};
use super::record::{ObjectRecord, Segment, SystemHeaders};
use super::versions::{Planned, Stamp, WriteMode, plan_write};
use super::{MAX_RACES, guarded_write, now_ms, omap_all, omap_page, omap_value};
use crate::error::ModelError;

/// Smallest part, but for the last (S3's rule).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The object key.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// Who started it.
    pub owner: String,
    /// When (ms since the epoch).
    pub initiated_ms: u64,
    /// Headers the object will have.
    #[serde(default)]
    pub headers: SystemHeaders,
    /// User metadata the object will have.
    #[serde(default)]
    pub user_meta: BTreeMap<String, String>,
    /// The checksum algorithm asked for at creation, if any.
    #[serde(default)]
    pub checksum_algorithm: Option<String>,
    /// Bumped by every stored part (guards complete and abort).
    pub version: u64,
    /// The ACL the object will have (none: private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<super::acl::Acl>,
}

/// One stored part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Hex MD5 of the part.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// The data object.
    pub data: String,
    /// When it was stored (ms since the epoch).
    pub mtime_ms: u64,
    /// Verified checksums (algorithm -> base64).
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
}

fn upload_key(key: &str, upload_id: &str) -> Vec<u8> {
    with_prefix(UPLOAD, format!("{key}\0{upload_id}").as_bytes())
}

fn part_key(upload_id: &str, part: u32) -> Vec<u8> {
    with_prefix(PART, format!("{upload_id}{part:05}").as_bytes())
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: for<'a> Deserialize<'a>>(what: &str, raw: &[u8]) -> Result<T, ModelError> {
    serde_json::from_slice(raw).map_err(|e| ModelError::corrupt(what, e))
}

/// The ETag of a multipart object: MD5 of the parts' binary MD5s, `-N`.
pub fn multipart_etag(part_etags: &[&str]) -> Result<String, ModelError> {
    let mut h = Md5::new();
    for e in part_etags {
        let bin = hex::decode(e).map_err(|err| ModelError::corrupt("part etag", err))?;
        h.update(&bin);
    }
    Ok(format!(
        "{}-{}",
        hex::encode(h.finalize().as_slice()),
        part_etags.len()
    ))
}

/// Checks the part list of a CompleteMultipartUpload against the stored
/// parts; the chosen parts in order.
pub fn choose_parts<'a>(
    stored: &'a BTreeMap<u32, PartRecord>,
    asked: &[(u32, String)],
) -> Result<Vec<(u32, &'a PartRecord)>, ModelError> {
    if asked.is_empty() {
        return Err(ModelError::MalformedXml("the request names no part".into()));
    }
    // A part number named twice in a row is the part uploaded again: the
    // later entry counts (as RGW reads the list).
    let mut wanted: Vec<(u32, &str)> = Vec::with_capacity(asked.len());
    for (n, etag) in asked {
        match wanted.last_mut() {
            Some(last) if last.0 == *n => last.1 = etag,
            Some(last) if last.0 > *n => return Err(ModelError::InvalidPartOrder),
            _ => wanted.push((*n, etag)),
        }
    }
    let mut out: Vec<(u32, &PartRecord)> = Vec::with_capacity(wanted.len());
    for (i, (n, etag)) in wanted.iter().enumerate() {
        let part = stored
            .get(n)
            .filter(|p| p.etag == etag.trim_matches('"'))
            .ok_or(ModelError::InvalidPart(*n))?;
        if i + 1 < wanted.len() && part.size < MIN_PART_SIZE {
            return Err(ModelError::EntityTooSmall);
        }
        out.push((*n, part));
    }
    Ok(out)
}

/// The record of the object an upload completed with `chosen` parts makes.
fn completed_record(
    upload: &UploadRecord,
    upload_id: &str,
    chosen: &[(u32, &PartRecord)],
) -> Result<ObjectRecord, ModelError> {
    let etags: Vec<&str> = chosen.iter().map(|(_, p)| p.etag.as_str()).collect();
    Ok(ObjectRecord {
        size: chosen.iter().map(|(_, p)| p.size).sum(),
        etag: multipart_etag(&etags)?,
        mtime_ms: now_ms(),
        owner: upload.owner.clone(),
        headers: upload.headers.clone(),
        user_meta: upload.user_meta.clone(),
        checksums: BTreeMap::new(),
        segments: chosen
            .iter()
            .map(|(_, p)| Segment {
                data: p.data.clone(),
                size: p.size,
            })
            .collect(),
        upload_id: Some(upload_id.to_string()),
        acl: upload.acl.clone(),
        version_id: None,
        delete_marker: false,
    })
}

impl Index {
    /// Records a new multipart upload.
    pub async fn create_upload(&self, record: &UploadRecord) -> Result<(), ModelError> {
        let ukey = upload_key(&record.key, &record.upload_id);
        let op = WriteOp::new()
            .cmp_omap(ukey.clone(), XattrCmp::Absent)
            .omap_set(vec![(ukey, encode(record))]);
        if guarded_write(&self.pools.meta, &self.shard_of(&record.key), op).await? {
            Ok(())
        } else {
            Err(ModelError::Busy("upload id collision".into()))
        }
    }

    /// Upload `upload_id` of `key` and its stored form.
    pub async fn upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<(UploadRecord, Vec<u8>), ModelError> {
        let ukey = upload_key(key, upload_id);
        match omap_value(&self.pools.meta, &self.shard_of(key), &ukey).await? {
            Some(raw) => Ok((decode("upload", &raw)?, raw)),
            None => Err(ModelError::NoSuchUpload(upload_id.to_string())),
        }
    }

    /// Makes `part` (whose data `pending` claimed) part `number` of the
    /// upload; a part it replaces becomes garbage after `keep_ms`.
    pub async fn commit_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        pending: &Pending,
        part: &PartRecord,
        keep_ms: u64,
    ) -> Result<(), ModelError> {
        let ukey = upload_key(key, upload_id);
        let mkey = part_key(upload_id, number);
        let pkey = with_prefix(super::index::PENDING, pending.data.as_bytes());
        let shard = &pending.shard;
        for _ in 0..MAX_RACES {
            let (mut upload, raw_u) = self.upload(key, upload_id).await?;
            let (old, claim) = self.read_two(shard, &mkey, &pkey).await?;
            if claim.as_ref() != Some(&pending.value) {
                return Err(ModelError::UploadExpired);
            }
            upload.version += 1;
            let mut sets = vec![
                (ukey.clone(), encode(&upload)),
                (mkey.clone(), encode(part)),
            ];
            if let Some(raw) = &old {
                let old: PartRecord = decode("part", raw)?;
                sets.push((doomed_key(now_ms() + keep_ms, &old.data), Vec::new()));
            }
            let op = WriteOp::new()
                .cmp_omap(ukey.clone(), XattrCmp::Eq(raw_u))
                .cmp_omap(mkey.clone(), old.map_or(XattrCmp::Absent, XattrCmp::Eq))
                .cmp_omap(pkey.clone(), XattrCmp::Eq(pending.value.clone()))
                .omap_remove(vec![pkey.clone()])
                .omap_set(sets);
            if guarded_write(&self.pools.meta, shard, op).await? {
                return Ok(());
            }
        }
        Err(ModelError::Busy(key.to_string()))
    }

    /// Parts of an upload after part `after`, at most `limit`; `true` when
    /// more follow.
    pub async fn parts(
        &self,
        key: &str,
        upload_id: &str,
        after: u32,
        limit: u32,
    ) -> Result<(Vec<(u32, PartRecord)>, bool), ModelError> {
        let prefix = with_prefix(PART, upload_id.as_bytes());
        let start = (after > 0).then(|| part_key(upload_id, after));
        let (entries, more) =
            omap_page(&self.pools.meta, &self.shard_of(key), start, &prefix, limit).await?;
        let parts = entries
            .iter()
            .map(|(k, v)| Ok((part_number(k, &prefix)?, decode("part", v)?)))
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok((parts, more))
    }

    async fn all_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<BTreeMap<u32, PartRecord>, ModelError> {
        let prefix = with_prefix(PART, upload_id.as_bytes());
        omap_all(&self.pools.meta, &self.shard_of(key), &prefix)
            .await?
            .iter()
            .map(|(k, v)| Ok((part_number(k, &prefix)?, decode("part", v)?)))
            .collect()
    }

    /// Completes an upload with the `asked` parts (number, ETag): the
    /// object becomes current (a new version, the `null` version or the
    /// only object, as `mode` says) if `precondition` holds for the current
    /// one; parts not asked for and replaced data become garbage.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        asked: &[(u32, String)],
        precondition: Precondition<'_>,
        mode: WriteMode,
        keep_ms: u64,
    ) -> Result<Planned, ModelError> {
        let shard = self.shard_of(key);
        let ukey = upload_key(key, upload_id);
        for _ in 0..MAX_RACES {
            let (upload, raw_u) = self.upload(key, upload_id).await?;
            let stored = self.all_parts(key, upload_id).await?;
            let chosen = choose_parts(&stored, asked)?;
            let record = completed_record(&upload, upload_id, &chosen)?;
            let st = self.key_state(&shard, key, Vec::new()).await?.0;
            precondition(st.current.as_ref().map(|e| &e.record))?;
            let mut planned = plan_write(key, &st, record, mode, &Stamp::now(keep_ms));
            let c = &mut planned.change;
            c.guard(ukey.clone(), Some(&raw_u));
            c.remove(ukey.clone());
            let used: Vec<u32> = chosen.iter().map(|(n, _)| *n).collect();
            for (n, part) in &stored {
                c.remove(part_key(upload_id, *n));
                if !used.contains(n) {
                    c.set(doomed_key(now_ms(), &part.data), Vec::new());
                }
            }
            if guarded_write(&self.pools.meta, &shard, planned.change.clone().into_op()).await? {
                return Ok(planned);
            }
        }
        Err(ModelError::Busy(key.to_string()))
    }

    /// Aborts an upload: its parts' data becomes garbage at once.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), ModelError> {
        let shard = self.shard_of(key);
        let ukey = upload_key(key, upload_id);
        for _ in 0..MAX_RACES {
            let (_, raw_u) = self.upload(key, upload_id).await?;
            let stored = self.all_parts(key, upload_id).await?;
            let mut removes = vec![ukey.clone()];
            removes.extend(stored.keys().map(|n| part_key(upload_id, *n)));
            let doomed = stored
                .values()
                .map(|p| (doomed_key(now_ms(), &p.data), Vec::new()))
                .collect();
            let op = WriteOp::new()
                .cmp_omap(ukey.clone(), XattrCmp::Eq(raw_u))
                .omap_remove(removes)
                .omap_set(doomed);
            if guarded_write(&self.pools.meta, &shard, op).await? {
                return Ok(());
            }
        }
        Err(ModelError::Busy(key.to_string()))
    }
}

/// A page of multipart uploads in progress.
#[derive(Clone, Debug, Default)]
pub struct UploadsPage {
    /// Uploads, by key then upload id.
    pub uploads: Vec<UploadRecord>,
    /// Common prefixes rolled up at the delimiter.
    pub prefixes: Vec<String>,
    /// More follow.
    pub truncated: bool,
}

impl Index {
    /// Uploads in progress with keys under `prefix`, after `key_marker`
    /// (and, for that key, after `upload_id_marker`), at most `max`.
    pub async fn list_uploads(
        &self,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        delimiter: Option<&str>,
        max: usize,
    ) -> Result<UploadsPage, ModelError> {
        let after: Option<Vec<u8>> = key_marker.filter(|k| !k.is_empty()).map(|k| {
            let mut a = format!("{k}\0").into_bytes();
            match upload_id_marker.filter(|u| !u.is_empty()) {
                Some(u) => a.extend_from_slice(u.as_bytes()),
                None => a.push(0xff),
            }
            a
        });
        let raw = self
            .merged(
                Merge {
                    sources: &[Source::new(UPLOAD, after.clone())],
                    prefix,
                    marker: after.as_deref(),
                    delimiter,
                    max,
                },
                upload_key_part,
                |_, _| true,
            )
            .await?;
        let mut page = UploadsPage {
            truncated: raw.truncated,
            ..Default::default()
        };
        for item in raw.items {
            match item {
                super::index::RawListed::Entry(_, _, value) => {
                    page.uploads.push(decode("upload", &value)?);
                }
                super::index::RawListed::Prefix(p) => page.prefixes.push(p),
            }
        }
        Ok(page)
    }
}

fn part_number(key: &[u8], prefix: &[u8]) -> Result<u32, ModelError> {
    key.strip_prefix(prefix)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| ModelError::corrupt("part key", String::from_utf8_lossy(key)))
}

/// The object key of an upload entry's name.
fn upload_key_part(name: &str) -> &str {
    split_upload_name(name).map_or(name, |(k, _)| k)
}

/// Splits an upload entry's name (`{key}\0{upload id}`).
pub fn split_upload_name(name: &str) -> Option<(&str, &str)> {
    name.split_once('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(etag: &str, size: u64) -> PartRecord {
        PartRecord {
            etag: etag.into(),
            size,
            data: format!("d{etag}"),
            mtime_ms: 0,
            checksums: BTreeMap::new(),
        }
    }

    #[test]
    fn multipart_etags_are_md5_of_part_md5s() {
        // Two parts whose MD5s are md5("a") and md5("b").
        let a = "0cc175b9c0f1b6a831c399e269772661";
        let b = "92eb5ffee6ae2fec3ad71c777531578f";
        let mut h = Md5::new();
        h.update(hex::decode(a).unwrap());
        h.update(hex::decode(b).unwrap());
        let want = format!("{}-2", hex::encode(h.finalize().as_slice()));
        assert_eq!(multipart_etag(&[a, b]).unwrap(), want);
        assert!(multipart_etag(&["zz"]).is_err());
    }

    #[test]
    fn completion_checks_order_etags_and_sizes() {
        let mut stored = BTreeMap::new();
        stored.insert(1, part("aa", MIN_PART_SIZE));
        stored.insert(2, part("bb", 1));
        stored.insert(3, part("cc", 1));
        let ask = |v: &[(u32, &str)]| -> Vec<(u32, String)> {
            v.iter().map(|(n, e)| (*n, e.to_string())).collect()
        };
        let ok = choose_parts(&stored, &ask(&[(1, "\"aa\""), (2, "bb")])).unwrap();
        assert_eq!(ok.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2]);
        assert!(matches!(
            choose_parts(&stored, &ask(&[(2, "bb"), (1, "aa")])),
            Err(ModelError::InvalidPartOrder)
        ));
        assert!(matches!(
            choose_parts(&stored, &ask(&[(1, "xx")])),
            Err(ModelError::InvalidPart(1))
        ));
        assert!(matches!(
            choose_parts(&stored, &ask(&[(4, "dd")])),
            Err(ModelError::InvalidPart(4))
        ));
        assert!(matches!(
            choose_parts(&stored, &ask(&[(2, "bb"), (3, "cc")])),
            Err(ModelError::EntityTooSmall)
        ));
        assert!(matches!(
            choose_parts(&stored, &[]),
            Err(ModelError::MalformedXml(_))
        ));
        // Part 1 uploaded twice: the later entry of the list counts.
        let again = choose_parts(&stored, &ask(&[(1, "old"), (1, "aa"), (2, "bb")])).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].1.etag, "aa");
    }

    #[test]
    fn keys_encode_names_and_part_numbers() {
        assert_eq!(upload_key("a/b", "u1"), b"ua/b\0u1".to_vec());
        let k = part_key("u1", 42);
        assert_eq!(k, b"mu100042".to_vec());
        assert_eq!(part_number(&k, b"mu1").unwrap(), 42);
        assert!(part_number(b"mu1zz", b"mu1").is_err());
        assert_eq!(split_upload_name("a/b\0u1"), Some(("a/b", "u1")));
    }
}
