//! The PG log: the recent writes of a PG, in version order, with the
//! client request ids that made them (to answer retries) — kept in memory
//! and, entry by entry, in the omap of the PG's meta object, written in the
//! same store transaction as the write it records.

use std::collections::{HashMap, VecDeque};

use shoal_proto::osd::{ObjVersion, PgRef, ReqId};
use shoal_proto::rep::{LogEntry, PgInfo};

/// The object holding a PG's log (omap) in its collection. Client object
/// names never start with a control character, so it cannot collide.
pub const META_OBJECT: &str = "\u{1}pgmeta";

/// The object whose omap keys name the objects this copy of the PG lacks
/// (its missing set: the log covers them, recovery has not brought them).
pub const MISSING_OBJECT: &str = "\u{1}pgmissing";

/// How many bookkeeping objects a PG's collection may hold
/// ([`META_OBJECT`], [`MISSING_OBJECT`]); they sort before client objects.
pub const INTERNAL_OBJECTS: usize = 2;

/// Whether `name` is one of the PG's own bookkeeping objects rather than
/// a client object (client names never start with a control character).
pub fn is_internal(name: &str) -> bool {
    name.starts_with(|c: char| c.is_control())
}

/// The store collection of `pg`.
pub fn collection(pg: PgRef) -> String {
    format!("pg_{}.{:x}", pg.pool, pg.seed)
}

/// The PG a collection name stands for (`None`: not a PG collection).
pub fn parse_collection(name: &str) -> Option<PgRef> {
    let (pool, seed) = name.strip_prefix("pg_")?.split_once('.')?;
    let pg = PgRef {
        pool: pool.parse().ok()?,
        seed: u32::from_str_radix(seed, 16).ok()?,
    };
    (collection(pg) == name).then_some(pg)
}

/// The omap key of a log entry: its sequence number, big-endian (so keys
/// sort in log order).
pub fn entry_key(version: ObjVersion) -> Vec<u8> {
    version.seq.to_be_bytes().to_vec()
}

/// The log of one PG.
#[derive(Debug, Clone, Default)]
pub struct PgLog {
    entries: VecDeque<LogEntry>,
    by_reqid: HashMap<ReqId, ObjVersion>,
    tail: ObjVersion,
}

impl PgLog {
    /// A log holding `entries` (oldest first, all after `tail`).
    pub fn new(tail: ObjVersion, entries: impl IntoIterator<Item = LogEntry>) -> Self {
        let mut log = PgLog {
            tail,
            ..PgLog::default()
        };
        for e in entries {
            if e.version > log.head() {
                log.push(e);
            }
        }
        log
    }

    /// The newest version in the log (the tail when it is empty).
    pub fn head(&self) -> ObjVersion {
        self.entries.back().map_or(self.tail, |e| e.version)
    }

    /// Versions at or before this one were trimmed.
    pub fn tail(&self) -> ObjVersion {
        self.tail
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds the newest entry (its version must be above [`PgLog::head`]).
    pub fn push(&mut self, entry: LogEntry) {
        debug_assert!(entry.version > self.head());
        if entry.reqid != ReqId::default() {
            self.by_reqid.insert(entry.reqid, entry.version);
        }
        self.entries.push_back(entry);
    }

    /// Drops the oldest entries beyond `keep`; returns their omap keys.
    pub fn trim(&mut self, keep: usize) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        while self.entries.len() > keep {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            if self.by_reqid.get(&e.reqid) == Some(&e.version) {
                self.by_reqid.remove(&e.reqid);
            }
            self.tail = e.version;
            keys.push(entry_key(e.version));
        }
        keys
    }

    /// The version a request made, if the log remembers it.
    pub fn find(&self, reqid: ReqId) -> Option<ObjVersion> {
        self.by_reqid.get(&reqid).copied()
    }

    /// Entries after `version`, oldest first.
    pub fn after(&self, version: ObjVersion) -> impl Iterator<Item = &LogEntry> {
        let start = self.entries.partition_point(|e| e.version <= version);
        self.entries.range(start..)
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter()
    }

    /// Whether the log holds an entry with exactly this version.
    pub fn contains(&self, version: ObjVersion) -> bool {
        self.entries
            .binary_search_by(|e| e.version.cmp(&version))
            .is_ok()
    }

    /// This log as the info + entries a peer is sent.
    pub fn info(&self, committed: ObjVersion, les: u32, acting: &[i32]) -> PgInfo {
        PgInfo {
            last_update: self.head(),
            committed,
            log_tail: self.tail,
            last_epoch_started: les,
            last_acting: acting.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::rep::LogOp;

    fn entry(seq: u64, tid: u64) -> LogEntry {
        LogEntry {
            version: ObjVersion { epoch: 1, seq },
            reqid: ReqId { client: 7, tid },
            object: format!("o{seq}"),
            op: LogOp::Modify,
        }
    }

    #[test]
    fn collection_names_round_trip() {
        let pg = PgRef {
            pool: 3,
            seed: 0x2f,
        };
        assert_eq!(collection(pg), "pg_3.2f");
        assert_eq!(parse_collection("pg_3.2f"), Some(pg));
        for bad in ["pg_3", "pg_x.1", "pg_3.2F", "pg_3.02f", "meta", "pg_3.2f.1"] {
            assert_eq!(parse_collection(bad), None, "{bad}");
        }
    }

    #[test]
    fn trim_forgets_old_requests_and_moves_the_tail() {
        let mut log = PgLog::new(ObjVersion::default(), (1..=5).map(|s| entry(s, s)));
        assert_eq!(log.head().seq, 5);
        assert_eq!(
            log.find(ReqId { client: 7, tid: 2 }).map(|v| v.seq),
            Some(2)
        );
        let keys = log.trim(3);
        assert_eq!(
            keys,
            vec![
                entry_key(entry(1, 0).version),
                entry_key(entry(2, 0).version)
            ]
        );
        assert_eq!(log.tail().seq, 2);
        assert_eq!(log.find(ReqId { client: 7, tid: 2 }), None);
        assert_eq!(log.after(ObjVersion { epoch: 1, seq: 3 }).count(), 2);
        assert!(log.contains(ObjVersion { epoch: 1, seq: 4 }));
        assert!(!log.contains(ObjVersion { epoch: 2, seq: 4 }));
    }

    #[test]
    fn keys_sort_in_log_order() {
        let a = entry_key(ObjVersion { epoch: 9, seq: 255 });
        let b = entry_key(ObjVersion { epoch: 1, seq: 256 });
        assert!(a < b);
    }
}
