//! A PG's own records in its store collection, as transactions and back:
//! the info (collection metadata), the log (omap of [`META_OBJECT`], one
//! key per entry), the dups (omap of [`DUPS_OBJECT`]) and the missing set
//! (omap keys of [`MISSING_OBJECT`]). A write's log entry and the trim it
//! causes go in the write's own transaction, so the log never runs ahead
//! of or behind the objects it describes.

use super::types::LogLimits;
use std::collections::BTreeSet;

use shoal_net::codec::{decode, encode};
use shoal_proto::osd::ObjVersion;
use shoal_proto::rep::{LogDup, LogEntry, PgInfo};
use shoal_store::{Op, StoreError, Transaction};

use crate::exec::{OpError, internal};

use crate::pglog::{DUPS_OBJECT, META_OBJECT, MISSING_OBJECT, PgLog, entry_key};

/// Omap records: keys and values.
pub type OmapRecords = Vec<(Vec<u8>, Vec<u8>)>;

/// A PG as its records say: info, log with dups, missing set.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The peering record (last interval that went active, its chain).
    pub info: PgInfo,
    /// The log and its dups.
    pub log: PgLog,
    /// Objects this copy lacks.
    pub missing: BTreeSet<String>,
}

/// Decodes a PG's records: the collection metadata, the omap of the log,
/// of the dups and of the missing set (`coll` names the collection in
/// errors).
pub fn decode_loaded(
    coll: &str,
    meta: &[u8],
    log: OmapRecords,
    dups: OmapRecords,
    missing: OmapRecords,
) -> Result<Loaded, StoreError> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::CorruptMeta(format!("{coll} {what}: {e}"))
    };
    let info: PgInfo = if meta.is_empty() {
        PgInfo::default()
    } else {
        decode(meta).map_err(|e| corrupt("info", &e))?
    };
    let entries = log
        .into_iter()
        .map(|(_, v)| decode::<LogEntry>(&v).map_err(|e| corrupt("log entry", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let dups = dups
        .into_iter()
        .map(|(_, v)| decode::<LogDup>(&v).map_err(|e| corrupt("log dup", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let missing = missing
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).map_err(|e| corrupt("missing name", &e)))
        .collect::<Result<_, _>>()?;
    let log = PgLog::new(info.log_tail, entries)
        .with_dups(dups)
        .with_head(info.last_update);
    Ok(Loaded { info, log, missing })
}

/// The omap records of `dups` in the PG's dups object.
pub fn dup_records(dups: &[LogDup]) -> Result<OmapRecords, OpError> {
    dups.iter()
        .map(|d| Ok((entry_key(d.version), encode(d).map_err(internal)?.to_vec())))
        .collect()
}

/// Adds `entry` to `log` (trimming it to `limits`) and returns the
/// transaction that stores the write's `ops` with the entry, the trim
/// and, after a trim, the new info (`committed`, `les`, `acting`).
pub fn write_txn(
    coll: &str,
    ops: Vec<Op>,
    entry: &LogEntry,
    log: &mut PgLog,
    limits: LogLimits,
    info: (ObjVersion, u32, &[i32]),
) -> Result<Transaction, OpError> {
    let mut t = Transaction::new(coll.to_string());
    t.ops = ops;
    t.push(Op::OmapSet {
        name: META_OBJECT.into(),
        entries: vec![(
            entry_key(entry.version),
            encode(entry).map_err(internal)?.to_vec(),
        )],
    });
    log.push(entry.clone());
    let trimmed = log.trim(limits.entries, limits.dups);
    if !trimmed.is_empty() {
        t.push(Op::OmapRemove {
            name: META_OBJECT.into(),
            keys: trimmed.entries,
        });
        if !trimmed.new_dups.is_empty() {
            t.push(Op::OmapSet {
                name: DUPS_OBJECT.into(),
                entries: dup_records(&trimmed.new_dups)?,
            });
        }
        if !trimmed.old_dups.is_empty() {
            t.push(Op::OmapRemove {
                name: DUPS_OBJECT.into(),
                keys: trimmed.old_dups,
            });
        }
        let (committed, les, acting) = info;
        t.push(Op::SetCollectionMeta(
            encode(&log.info(committed, les, acting))
                .map_err(internal)?
                .to_vec(),
        ));
    }
    Ok(t)
}

/// The transaction that replaces the PG's records with `log` (its dups
/// too), `missing` and the info of `les` and `acting`.
pub fn log_txn(
    coll: &str,
    log: &PgLog,
    les: u32,
    acting: &[i32],
    missing: &BTreeSet<String>,
) -> Result<Transaction, OpError> {
    let mut t = Transaction::new(coll.to_string());
    t.push(Op::Touch {
        name: MISSING_OBJECT.into(),
    });
    t.push(Op::OmapClear {
        name: MISSING_OBJECT.into(),
    });
    if !missing.is_empty() {
        t.push(Op::OmapSet {
            name: MISSING_OBJECT.into(),
            entries: missing
                .iter()
                .map(|m| (m.as_bytes().to_vec(), Vec::new()))
                .collect(),
        });
    }
    t.push(Op::OmapClear {
        name: META_OBJECT.into(),
    });
    let mut entries = Vec::with_capacity(log.len());
    for e in log.entries() {
        entries.push((entry_key(e.version), encode(e).map_err(internal)?.to_vec()));
    }
    t.push(Op::OmapSet {
        name: META_OBJECT.into(),
        entries,
    });
    t.push(Op::Touch {
        name: DUPS_OBJECT.into(),
    });
    t.push(Op::OmapClear {
        name: DUPS_OBJECT.into(),
    });
    let dups: Vec<LogDup> = log.dups().copied().collect();
    if !dups.is_empty() {
        t.push(Op::OmapSet {
            name: DUPS_OBJECT.into(),
            entries: dup_records(&dups)?,
        });
    }
    let info = log.info(log.head(), les, acting);
    t.push(Op::SetCollectionMeta(
        encode(&info).map_err(internal)?.to_vec(),
    ));
    Ok(t)
}

/// A PG's records divided for a split of its pool: the parent keeps the
/// entries and missing objects of the objects it keeps; child `i` gets
/// those of the objects `child_of` sends it (`Some(i)`), every dup (a dup
/// names no object, and a retry reaches the PG its object hashes to now),
/// and the parent's tail, head and peering record, so that its versions go
/// on from the parent's and its peers see one history.
pub fn split_loaded(
    parent: &Loaded,
    children: usize,
    child_of: impl Fn(&str) -> Option<usize>,
) -> (Loaded, Vec<Loaded>) {
    let mut entries: Vec<Vec<LogEntry>> = vec![Vec::new(); children + 1];
    for e in parent.log.entries() {
        let to = child_of(&e.object)
            .filter(|&i| i < children)
            .map_or(0, |i| i + 1);
        entries[to].push(e.clone());
    }
    let mut missing: Vec<BTreeSet<String>> = vec![BTreeSet::new(); children + 1];
    for m in &parent.missing {
        let to = child_of(m).filter(|&i| i < children).map_or(0, |i| i + 1);
        missing[to].insert(m.clone());
    }
    let dups: Vec<LogDup> = parent.log.dups().copied().collect();
    let mut parts = entries.into_iter().zip(missing).map(|(entries, missing)| {
        let log = PgLog::new(parent.log.tail(), entries)
            .with_dups(dups.iter().copied())
            .with_head(parent.log.head());
        let mut info = parent.info.clone();
        info.last_update = log.head();
        Loaded { info, log, missing }
    });
    let kept = parts.next().unwrap_or_default();
    (kept, parts.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::osd::ReqId;
    use shoal_proto::rep::LogOp;

    fn entry(seq: u64, object: &str) -> LogEntry {
        LogEntry {
            version: ObjVersion { epoch: 3, seq },
            reqid: ReqId {
                client: 1,
                tid: seq,
            },
            object: object.into(),
            op: LogOp::Modify,
        }
    }

    #[test]
    fn a_split_gives_each_child_its_objects_history_and_the_parents_head() {
        let tail = ObjVersion { epoch: 2, seq: 1 };
        let log = PgLog::new(
            tail,
            (2..=9).map(|s| entry(s, ["a", "b", "c"][s as usize % 3])),
        )
        .with_dups([LogDup {
            reqid: ReqId { client: 1, tid: 1 },
            version: tail,
            refused: None,
        }]);
        let parent = Loaded {
            info: PgInfo {
                last_epoch_started: 3,
                last_acting: vec![0, 1],
                ..PgInfo::default()
            },
            log,
            missing: ["a", "c"].map(String::from).into(),
        };
        let child_of = |o: &str| match o {
            "b" => Some(0),
            "c" => Some(1),
            _ => None,
        };
        let (kept, children) = split_loaded(&parent, 2, child_of);
        let objects = |l: &Loaded| {
            l.log
                .entries()
                .map(|e| e.object.clone())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(objects(&kept), ["a".to_string()].into());
        assert_eq!(objects(&children[0]), ["b".to_string()].into());
        assert_eq!(objects(&children[1]), ["c".to_string()].into());
        assert_eq!(kept.missing, ["a".to_string()].into());
        assert!(children[0].missing.is_empty());
        assert_eq!(children[1].missing, ["c".to_string()].into());
        let total: usize = [&kept, &children[0], &children[1]]
            .iter()
            .map(|l| l.log.len())
            .sum();
        assert_eq!(total, 8, "every entry goes to exactly one PG");
        for l in [&kept, &children[0], &children[1]] {
            assert_eq!(l.log.head(), ObjVersion { epoch: 3, seq: 9 });
            assert_eq!(l.info.last_update, l.log.head());
            assert_eq!(l.log.tail(), tail);
            assert_eq!(
                (l.info.last_epoch_started, &l.info.last_acting[..]),
                (3, &[0, 1][..])
            );
            assert!(
                l.log.find(ReqId { client: 1, tid: 1 }).is_some(),
                "dups go everywhere"
            );
        }
        // A retry of a write now in a child is remembered there.
        assert!(children[1].log.find(ReqId { client: 1, tid: 5 }).is_some());
    }
}
