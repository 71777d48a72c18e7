//! Executing client ops: validation, resolving writes into the mutations
//! every chain member applies, translating mutations into store
//! transactions, and answering reads from the store.

use std::collections::BTreeMap;

use bytes::Bytes;
use shoal_proto::osd::{MAX_NAME, MAX_OMAP_LIST, MAX_OPS};
use shoal_proto::osd::{
    ObjOp, ObjVersion, OpOutput, OsdErrorCode, OsdRequest, PayloadRange, XattrCmp,
};
use shoal_proto::rep::{DataSums, LogOp};
use shoal_store::{ChunkSums, Op, Store, StoreError, Version, prefix_end};

pub use crate::error::OpError;

/// A request that cannot be served here now but may succeed later (the
/// PG peers, its chain changed, a member is unreachable): the client
/// retries.
pub fn unavailable(why: impl Into<String>) -> OpError {
    OpError::new(OsdErrorCode::Unavailable, why)
}

/// A failure that only a bug or a broken invariant causes (encoding our
/// own records, an out-of-order write handed to the chain).
pub fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::new(OsdErrorCode::Internal, e.to_string())
}

fn invalid(msg: impl Into<String>) -> OpError {
    OpError::new(OsdErrorCode::Invalid, msg)
}

/// The store's error as the client sees it.
pub fn store_error(e: &StoreError) -> OpError {
    let code = match e {
        StoreError::NoObject(..) => OsdErrorCode::NotFound,
        StoreError::NoSpace { .. } => OsdErrorCode::NoSpace,
        StoreError::Corrupt { .. } => OsdErrorCode::Corrupt,
        StoreError::Invalid(_) => OsdErrorCode::Invalid,
        _ => OsdErrorCode::Internal,
    };
    OpError::new(code, e.to_string())
}

/// Checks that a client object name is one the OSD serves.
pub fn check_name(name: &str) -> Result<(), OpError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(invalid(format!("object names are 1 to {MAX_NAME} bytes")));
    }
    if name.starts_with(|c: char| c.is_control()) {
        return Err(invalid(
            "object names may not start with a control character",
        ));
    }
    Ok(())
}

/// Whether a request writes; refuses malformed requests (bad names, data
/// ranges outside the payload, reads mixed with writes).
pub fn classify(req: &OsdRequest, payload_len: u64) -> Result<bool, OpError> {
    check_name(&req.object)?;
    if req.ops.is_empty() || req.ops.len() > MAX_OPS {
        return Err(invalid(format!("a request holds 1 to {MAX_OPS} ops")));
    }
    let writes = req.ops.iter().filter(|op| op.is_write()).count();
    let guards = req.ops.iter().filter(|op| op.is_guard()).count();
    if writes > 0 && writes + guards != req.ops.len() {
        return Err(invalid(
            "a request holds either writes (with guards) or reads; send reads separately",
        ));
    }
    for op in &req.ops {
        check_op(op, payload_len)?;
    }
    Ok(writes > 0)
}

fn check_range(r: &PayloadRange, payload_len: u64) -> Result<(), OpError> {
    match r.offset.checked_add(r.len) {
        Some(end) if end <= payload_len => Ok(()),
        _ => Err(invalid("data range outside the payload")),
    }
}

fn check_op(op: &ObjOp, payload_len: u64) -> Result<(), OpError> {
    match op {
        ObjOp::WriteFull { data } | ObjOp::Write { data, .. } | ObjOp::Append { data } => {
            check_range(data, payload_len)
        }
        ObjOp::OmapList { limit, .. } if *limit > MAX_OMAP_LIST => Err(invalid(format!(
            "omap listings return at most {MAX_OMAP_LIST} entries"
        ))),
        _ => Ok(()),
    }
}

/// What the head knows of an object before a write.
#[derive(Debug, Clone, Default)]
pub struct ObjectView {
    /// Whether it exists.
    pub exists: bool,
    /// Its size.
    pub size: u64,
    /// Its xattrs.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// The omap values of the keys the request's guards compare (a key
    /// the object lacks is left out).
    pub omap: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl ObjectView {
    /// Reads the view a write request needs from the store: the object's
    /// size and xattrs, and the omap keys its [`ObjOp::CmpOmap`] guards name.
    pub fn load(store: &Store, coll: &str, name: &str, ops: &[ObjOp]) -> Result<Self, OpError> {
        let snap = match store.snapshot(coll, name) {
            Ok(snap) => snap,
            Err(StoreError::NoObject(..)) => return Ok(ObjectView::default()),
            Err(e) => return Err(store_error(&e)),
        };
        let keys: Vec<&[u8]> = ops
            .iter()
            .filter_map(|op| match op {
                ObjOp::CmpOmap { key, .. } => Some(key.as_slice()),
                _ => None,
            })
            .collect();
        let omap = if keys.is_empty() {
            BTreeMap::new()
        } else {
            let values = store
                .omap_get(coll, name, &keys)
                .map_err(|e| store_error(&e))?;
            keys.iter()
                .zip(values)
                .filter_map(|(k, v)| Some((k.to_vec(), v?)))
                .collect()
        };
        Ok(ObjectView {
            exists: true,
            size: snap.stat().size,
            xattrs: snap.xattrs().clone(),
            omap,
        })
    }
}

/// A write resolved against the object's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Mutations only: appends became writes at the old end, creates
    /// became non-exclusive, guards were checked and dropped.
    pub mutations: Vec<ObjOp>,
    /// Whether the object exists afterwards.
    pub op: LogOp,
}

fn cmp_ok(cmp: &XattrCmp, value: Option<&Vec<u8>>) -> bool {
    match cmp {
        XattrCmp::Eq(v) => value == Some(v),
        XattrCmp::Ne(v) => value != Some(v),
        XattrCmp::Absent => value.is_none(),
    }
}

fn compare_failed(what: &str, key: &[u8]) -> OpError {
    OpError::new(
        OsdErrorCode::CompareFailed,
        format!(
            "{what} {:?} does not compare as asked",
            String::from_utf8_lossy(key)
        ),
    )
}

/// Resolves the write ops of a request against `view` (guards first
/// checked against the state as the earlier ops of the request leave it).
pub fn resolve(ops: &[ObjOp], view: &ObjectView) -> Result<Resolved, OpError> {
    let mut exists = view.exists;
    let mut size = view.size;
    let mut xattrs = view.xattrs.clone();
    // Every guarded omap key's value as the earlier ops leave it.
    let mut omap: BTreeMap<&[u8], Option<Vec<u8>>> = ops
        .iter()
        .filter_map(|op| match op {
            ObjOp::CmpOmap { key, .. } => Some((key.as_slice(), view.omap.get(key).cloned())),
            _ => None,
        })
        .collect();
    let mut out = Vec::with_capacity(ops.len());
    let grow = |size: u64, offset: u64, len: u64| -> Result<u64, OpError> {
        offset
            .checked_add(len)
            .map(|end| end.max(size))
            .ok_or_else(|| invalid("range past the largest offset"))
    };
    for op in ops {
        match op {
            ObjOp::CmpXattr { key, cmp } => {
                if !cmp_ok(cmp, xattrs.get(key)) {
                    return Err(compare_failed("xattr", key.as_bytes()));
                }
                continue;
            }
            ObjOp::CmpOmap { key, cmp } => {
                if !cmp_ok(cmp, omap.get(key.as_slice()).and_then(Option::as_ref)) {
                    return Err(compare_failed("omap key", key));
                }
                continue;
            }
            ObjOp::Create { exclusive } => {
                if exists && *exclusive {
                    return Err(OpError::new(OsdErrorCode::Exists, "the object exists"));
                }
                out.push(ObjOp::Create { exclusive: false });
            }
            ObjOp::WriteFull { data } => {
                size = data.len;
                out.push(op.clone());
            }
            ObjOp::Write { offset, data } => {
                size = grow(size, *offset, data.len)?;
                out.push(op.clone());
            }
            ObjOp::Append { data } => {
                out.push(ObjOp::Write {
                    offset: size,
                    data: *data,
                });
                size = grow(size, size, data.len)?;
            }
            ObjOp::Truncate { size: s } => {
                size = *s;
                out.push(op.clone());
            }
            ObjOp::Zero { offset, len } => {
                size = grow(size, *offset, *len)?;
                out.push(op.clone());
            }
            ObjOp::Remove => {
                if !exists {
                    return Err(OpError::new(OsdErrorCode::NotFound, "no such object"));
                }
                exists = false;
                size = 0;
                xattrs.clear();
                omap.values_mut().for_each(|v| *v = None);
                out.push(ObjOp::Remove);
                continue;
            }
            ObjOp::SetXattr { key, value } => {
                xattrs.insert(key.clone(), value.clone());
                out.push(op.clone());
            }
            ObjOp::RemoveXattr { key } => {
                xattrs.remove(key);
                out.push(op.clone());
            }
            ObjOp::OmapSet { entries } => {
                for (k, v) in entries {
                    if let Some(guarded) = omap.get_mut(k.as_slice()) {
                        *guarded = Some(v.clone());
                    }
                }
                out.push(op.clone());
            }
            ObjOp::OmapRemove { keys } => {
                for k in keys {
                    if let Some(guarded) = omap.get_mut(k.as_slice()) {
                        *guarded = None;
                    }
                }
                out.push(op.clone());
            }
            ObjOp::OmapClear => {
                omap.values_mut().for_each(|v| *v = None);
                out.push(op.clone());
            }
            _ => return Err(invalid("a read in a write request")),
        }
        exists = true;
    }
    Ok(Resolved {
        mutations: out,
        op: if exists { LogOp::Modify } else { LogOp::Delete },
    })
}

fn slice(payload: &Bytes, r: &PayloadRange) -> Result<Bytes, OpError> {
    check_range(r, payload.len() as u64)?;
    Ok(payload.slice(r.offset as usize..(r.offset + r.len) as usize))
}

/// The head's checksums of the whole-object writes among `mutations` of
/// at least one chunk (smaller ones the store hashes as it lays them out).
pub fn hash_writes(mutations: &[ObjOp], payload: &Bytes, chunk_size: u64) -> Vec<DataSums> {
    sums_of_writes(mutations, payload, chunk_size, (&[], &[]))
}

/// [`hash_writes`] of `mutations`, taking the checksums of a write from
/// `made` (checksums made earlier over the client's `ops`, indexed by them)
/// when one covers the same data with the same chunk size.
pub fn sums_of_writes(
    mutations: &[ObjOp],
    payload: &Bytes,
    chunk_size: u64,
    made: (&[ObjOp], &[DataSums]),
) -> Vec<DataSums> {
    let (ops, sums) = made;
    let earlier = |data: &PayloadRange| {
        sums.iter().find(|s| {
            s.chunk_size == chunk_size
                && matches!(ops.get(s.op as usize), Some(ObjOp::WriteFull { data: d }) if d == data)
        })
    };
    mutations
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match m {
            ObjOp::WriteFull { data } if data.len >= chunk_size && chunk_size > 0 => {
                if let Some(s) = earlier(data) {
                    return Some(DataSums {
                        op: i as u32,
                        ..s.clone()
                    });
                }
                let bytes = slice(payload, data).ok()?;
                Some(DataSums {
                    op: i as u32,
                    chunk_size,
                    sums: ChunkSums::compute(&bytes, chunk_size).sums.to_vec(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The store ops of mutations on `name` (data sliced from `payload`
/// without copying, with the head's checksums from `sums`), ending with the
/// new version unless the object was removed. Refuses anything but
/// mutations (replicas get these from peers).
pub fn store_ops(
    name: &str,
    mutations: &[ObjOp],
    payload: &Bytes,
    sums: &[DataSums],
    version: ObjVersion,
    op: LogOp,
) -> Result<Vec<Op>, OpError> {
    if !op.changes_object() && !mutations.is_empty() {
        return Err(invalid("a refused write carries mutations"));
    }
    let name_s = || name.to_string();
    let mut out = Vec::with_capacity(mutations.len() + 1);
    for (i, m) in mutations.iter().enumerate() {
        out.push(match m {
            ObjOp::Create { .. } => Op::Touch { name: name_s() },
            ObjOp::WriteFull { data } => Op::WriteFull {
                name: name_s(),
                data: slice(payload, data)?,
                sums: sums.iter().find(|s| s.op as usize == i).map(|s| ChunkSums {
                    chunk_size: s.chunk_size,
                    sums: s.sums.as_slice().into(),
                }),
            },
            ObjOp::Write { offset, data } => Op::Write {
                name: name_s(),
                offset: *offset,
                data: slice(payload, data)?,
            },
            ObjOp::Truncate { size } => Op::Truncate {
                name: name_s(),
                size: *size,
            },
            ObjOp::Zero { offset, len } => Op::Zero {
                name: name_s(),
                offset: *offset,
                len: *len,
            },
            ObjOp::Remove => Op::Remove { name: name_s() },
            ObjOp::SetXattr { key, value } => Op::SetXattr {
                name: name_s(),
                key: key.clone(),
                value: value.clone(),
            },
            ObjOp::RemoveXattr { key } => Op::RemoveXattr {
                name: name_s(),
                key: key.clone(),
            },
            ObjOp::OmapSet { entries } => Op::OmapSet {
                name: name_s(),
                entries: entries.clone(),
            },
            ObjOp::OmapRemove { keys } => Op::OmapRemove {
                name: name_s(),
                keys: keys.clone(),
            },
            ObjOp::OmapClear => Op::OmapClear { name: name_s() },
            _ => return Err(invalid("not a mutation")),
        });
    }
    if op == LogOp::Modify {
        out.push(Op::SetVersion {
            name: name_s(),
            version: Version {
                epoch: version.epoch,
                seq: version.seq,
            },
        });
    }
    Ok(out)
}

/// A read request's answer: the object's version, one output per op, and
/// the reply payload the data outputs point into.
pub struct ReadResult {
    /// The object's version.
    pub version: ObjVersion,
    /// Outputs, in op order.
    pub outputs: Vec<OpOutput>,
    /// Bytes the [`OpOutput::Data`] ranges point into.
    pub payload: Bytes,
}

/// Answers read ops (and checks guards) from the store (blocking).
pub fn read(store: &Store, coll: &str, name: &str, ops: &[ObjOp]) -> Result<ReadResult, OpError> {
    let err = |e: StoreError| store_error(&e);
    let snap = store.snapshot(coll, name).map_err(err)?;
    let stat = snap.stat();
    let version = ObjVersion {
        epoch: stat.version.epoch,
        seq: stat.version.seq,
    };
    // Data outputs, concatenated below (no copy when there is one).
    let mut parts: Vec<Bytes> = Vec::new();
    let mut at = 0u64;
    let mut outputs = Vec::with_capacity(ops.len());
    let xattrs = snap.xattrs();
    for op in ops {
        outputs.push(match op {
            ObjOp::Read { offset, len } => {
                let data = snap.read_bytes(*offset, *len).map_err(err)?;
                let range = PayloadRange {
                    offset: at,
                    len: data.len() as u64,
                };
                at += range.len;
                parts.push(data);
                OpOutput::Data(range)
            }
            ObjOp::Stat => OpOutput::Stat {
                size: stat.size,
                version,
            },
            ObjOp::GetXattr { key } => OpOutput::Xattr(xattrs.get(key).cloned()),
            ObjOp::GetXattrs => OpOutput::Xattrs(xattrs.clone().into_iter().collect()),
            ObjOp::CmpXattr { key, cmp } => {
                if !cmp_ok(cmp, xattrs.get(key)) {
                    return Err(compare_failed("xattr", key.as_bytes()));
                }
                OpOutput::None
            }
            ObjOp::CmpOmap { key, cmp } => {
                let value = store
                    .omap_get(coll, name, &[key.as_slice()])
                    .map_err(err)?
                    .pop()
                    .flatten();
                if !cmp_ok(cmp, value.as_ref()) {
                    return Err(compare_failed("omap key", key));
                }
                OpOutput::None
            }
            ObjOp::OmapGet { keys } => {
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                let values = store.omap_get(coll, name, &refs).map_err(err)?;
                let entries = keys
                    .iter()
                    .zip(values)
                    .filter_map(|(k, v)| Some((k.clone(), v?)))
                    .collect();
                OpOutput::Omap {
                    entries,
                    more: false,
                }
            }
            ObjOp::OmapList {
                start_after,
                prefix,
                limit,
            } => omap_list(store, coll, name, start_after.as_deref(), prefix, *limit)?,
            _ => return Err(invalid("a write in a read request")),
        });
    }
    Ok(ReadResult {
        version,
        outputs,
        payload: shoal_net::concat(parts),
    })
}

fn omap_list(
    store: &Store,
    coll: &str,
    name: &str,
    start_after: Option<&[u8]>,
    prefix: &[u8],
    limit: u32,
) -> Result<OpOutput, OpError> {
    let err = |e: StoreError| store_error(&e);
    let limit = limit as usize;
    let end = prefix_end(prefix);
    let mut entries = Vec::new();
    // The store's bound is exclusive: a listing from the prefix itself
    // first picks up a key equal to the prefix.
    let from = match start_after {
        Some(s) if s >= prefix => Some(s),
        _ if prefix.is_empty() => None,
        _ => {
            if let Some(Some(v)) = store.omap_get(coll, name, &[prefix]).map_err(err)?.pop() {
                entries.push((prefix.to_vec(), v));
            }
            Some(prefix)
        }
    };
    let more_wanted = (limit + 1).saturating_sub(entries.len());
    entries.extend(
        store
            .omap_range(coll, name, from, end.as_deref(), more_wanted)
            .map_err(err)?,
    );
    let more = entries.len() > limit;
    entries.truncate(limit);
    Ok(OpOutput::Omap { entries, more })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(offset: u64, len: u64) -> PayloadRange {
        PayloadRange { offset, len }
    }

    #[test]
    fn appends_resolve_to_writes_at_the_end() {
        let view = ObjectView {
            exists: true,
            size: 100,
            ..Default::default()
        };
        let r = resolve(
            &[
                ObjOp::Append { data: pr(0, 10) },
                ObjOp::Append { data: pr(10, 5) },
            ],
            &view,
        )
        .unwrap();
        assert_eq!(
            r.mutations,
            vec![
                ObjOp::Write {
                    offset: 100,
                    data: pr(0, 10)
                },
                ObjOp::Write {
                    offset: 110,
                    data: pr(10, 5)
                }
            ]
        );
        assert_eq!(r.op, LogOp::Modify);
    }

    #[test]
    fn guards_and_exclusive_create() {
        let mut view = ObjectView::default();
        let guard = |cmp| ObjOp::CmpXattr {
            key: "etag".into(),
            cmp,
        };
        assert!(
            resolve(
                &[guard(XattrCmp::Absent), ObjOp::Create { exclusive: true }],
                &view
            )
            .is_ok()
        );
        view.exists = true;
        view.xattrs.insert("etag".into(), b"1".to_vec());
        let e = resolve(&[ObjOp::Create { exclusive: true }], &view).unwrap_err();
        assert_eq!(e.code, OsdErrorCode::Exists);
        let e = resolve(&[guard(XattrCmp::Eq(b"2".to_vec())), ObjOp::Remove], &view).unwrap_err();
        assert_eq!(e.code, OsdErrorCode::CompareFailed);
        let r = resolve(&[guard(XattrCmp::Eq(b"1".to_vec())), ObjOp::Remove], &view).unwrap();
        assert_eq!(r.mutations, vec![ObjOp::Remove]);
        assert_eq!(r.op, LogOp::Delete);
        // A guard after a write in the same request sees that write.
        let r = resolve(
            &[
                ObjOp::SetXattr {
                    key: "etag".into(),
                    value: b"3".to_vec(),
                },
                guard(XattrCmp::Eq(b"3".to_vec())),
            ],
            &view,
        );
        assert!(r.is_ok());
    }

    #[test]
    fn omap_guards_compare_one_key_as_earlier_ops_leave_it() {
        let guard = |key: &[u8], cmp| ObjOp::CmpOmap {
            key: key.to_vec(),
            cmp,
        };
        let set = |key: &[u8], value: &[u8]| ObjOp::OmapSet {
            entries: vec![(key.to_vec(), value.to_vec())],
        };
        // A missing object has no omap: Absent holds, Eq fails.
        let missing = ObjectView::default();
        assert!(resolve(&[guard(b"k", XattrCmp::Absent), set(b"k", b"1")], &missing).is_ok());
        let e = resolve(
            &[guard(b"k", XattrCmp::Eq(b"1".to_vec())), set(b"k", b"2")],
            &missing,
        )
        .unwrap_err();
        assert_eq!(e.code, OsdErrorCode::CompareFailed);
        let mut view = ObjectView {
            exists: true,
            ..Default::default()
        };
        view.omap.insert(b"k".to_vec(), b"1".to_vec());
        // The switch of one entry guarded by its old value.
        let r = resolve(
            &[guard(b"k", XattrCmp::Eq(b"1".to_vec())), set(b"k", b"2")],
            &view,
        )
        .unwrap();
        assert_eq!(r.mutations, vec![set(b"k", b"2")]);
        let e = resolve(&[guard(b"k", XattrCmp::Absent), set(b"k", b"2")], &view).unwrap_err();
        assert_eq!(e.code, OsdErrorCode::CompareFailed);
        // Later guards see earlier sets, removals and clears in the request.
        let seq = [
            set(b"k", b"9"),
            guard(b"k", XattrCmp::Eq(b"9".to_vec())),
            ObjOp::OmapRemove {
                keys: vec![b"k".to_vec()],
            },
            guard(b"k", XattrCmp::Absent),
            set(b"k", b"3"),
            ObjOp::OmapClear,
            guard(b"k", XattrCmp::Ne(b"3".to_vec())),
        ];
        assert!(resolve(&seq, &view).is_ok());
        // A guard that fails anywhere fails the whole request.
        let e = resolve(&[set(b"k", b"9"), guard(b"k", XattrCmp::Absent)], &view).unwrap_err();
        assert_eq!(e.code, OsdErrorCode::CompareFailed);
    }

    #[test]
    fn removing_a_missing_object_is_not_found() {
        let e = resolve(&[ObjOp::Remove], &ObjectView::default()).unwrap_err();
        assert_eq!(e.code, OsdErrorCode::NotFound);
    }

    #[test]
    fn mixed_requests_and_bad_ranges_are_refused() {
        let req = |ops| OsdRequest {
            reqid: Default::default(),
            epoch: 1,
            pg: shoal_proto::osd::PgRef { pool: 1, seed: 0 },
            object: "o".into(),
            ops,
            balance_reads: false,
        };
        assert!(classify(&req(vec![ObjOp::Remove, ObjOp::Stat]), 0).is_err());
        assert!(classify(&req(vec![ObjOp::WriteFull { data: pr(0, 11) }]), 10).is_err());
        assert!(
            classify(
                &req(vec![ObjOp::WriteFull {
                    data: pr(u64::MAX, 2)
                }]),
                10
            )
            .is_err()
        );
        assert!(classify(&req(vec![ObjOp::WriteFull { data: pr(0, 10) }]), 10).unwrap());
        assert!(
            !classify(
                &req(vec![ObjOp::Stat, ObjOp::Read { offset: 0, len: 5 }]),
                0
            )
            .unwrap()
        );
        let mut r = req(vec![ObjOp::Stat]);
        r.object = "\u{1}pgmeta".into();
        assert!(classify(&r, 0).is_err());
    }

    #[test]
    fn store_ops_refuse_reads_and_bad_ranges() {
        let payload = Bytes::from_static(b"hello");
        let v = ObjVersion { epoch: 1, seq: 1 };
        assert!(store_ops("o", &[ObjOp::Stat], &payload, &[], v, LogOp::Modify).is_err());
        assert!(
            store_ops(
                "o",
                &[ObjOp::WriteFull { data: pr(3, 3) }],
                &payload,
                &[],
                v,
                LogOp::Modify
            )
            .is_err()
        );
        let ops = store_ops(
            "o",
            &[ObjOp::WriteFull { data: pr(1, 3) }],
            &payload,
            &[],
            v,
            LogOp::Modify,
        )
        .unwrap();
        assert_eq!(ops.len(), 2, "the write and the version");
        assert!(matches!(&ops[0], Op::WriteFull { data, .. } if &data[..] == b"ell"));
    }

    #[test]
    fn the_heads_checksums_go_with_the_whole_object_writes_they_hash() {
        let payload = Bytes::from(vec![3u8; 10_000]);
        let v = ObjVersion { epoch: 1, seq: 1 };
        let ops = [
            ObjOp::SetXattr {
                key: "k".into(),
                value: vec![1],
            },
            ObjOp::WriteFull {
                data: pr(0, 10_000),
            },
        ];
        // Writes smaller than a chunk are left to the store.
        assert!(hash_writes(&ops, &payload, 16_384).is_empty());
        let sums = hash_writes(&ops, &payload, 4096);
        assert_eq!(sums.len(), 1);
        assert_eq!(
            (sums[0].op, sums[0].chunk_size, sums[0].sums.len()),
            (1, 4096, 3)
        );
        assert_eq!(
            sums[0].sums[2],
            ChunkSums::compute(&[3u8; 10_000 - 8192], 4096).sums[0]
        );
        let store = store_ops("o", &ops, &payload, &sums, v, LogOp::Modify).unwrap();
        assert!(matches!(
            &store[1],
            Op::WriteFull { sums: Some(s), .. } if s.chunk_size == 4096 && s.sums.len() == 3
        ));
    }
}
