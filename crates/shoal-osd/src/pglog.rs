//! The PG log: the recent writes of a PG, in version order, with the
//! client request ids that made them (to answer retries) — kept in memory
//! and, entry by entry, in the omap of the PG's meta object, written in the
//! same store transaction as the write it records. Trimmed entries leave
//! their request id and version behind for a while longer ("dups", as in
//! Ceph), in the omap of the dups object, so that a retry arriving after
//! its entry was trimmed is still answered rather than applied again.

use std::collections::{HashMap, VecDeque};

use shoal_proto::osd::{ObjVersion, PgRef, ReqId};
use shoal_proto::rep::{LogDup, LogEntry, PgInfo};

/// The object holding a PG's log (omap) in its collection. Client object
/// names never start with a control character, so it cannot collide.
pub const META_OBJECT: &str = "\u{1}pgmeta";

/// The object whose omap keys name the objects this copy of the PG lacks
/// (its missing set: the log covers them, recovery has not brought them).
pub const MISSING_OBJECT: &str = "\u{1}pgmissing";

/// The object whose omap holds the PG's [`LogDup`]s (keyed like log
/// entries, by [`entry_key`]).
pub const DUPS_OBJECT: &str = "\u{1}pgdups";

/// How many bookkeeping objects a PG's collection may hold
/// ([`META_OBJECT`], [`MISSING_OBJECT`], [`DUPS_OBJECT`]); they sort before
/// client objects.
pub const INTERNAL_OBJECTS: usize = 3;

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
    by_reqid: HashMap<ReqId, LogDup>,
    tail: ObjVersion,
    /// The newest version the PG's history reached: the newest entry's,
    /// or past it for a child of a split, whose entries are the parent's
    /// for its objects only while its versions go on from the parent's.
    head: ObjVersion,
    dups: VecDeque<LogDup>,
    dup_reqids: HashMap<ReqId, LogDup>,
}

/// What a trim changed, for the store transaction that records it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Omap keys of the log entries dropped.
    pub entries: Vec<Vec<u8>>,
    /// Dups added for them (their requests).
    pub new_dups: Vec<LogDup>,
    /// Omap keys of the oldest dups dropped.
    pub old_dups: Vec<Vec<u8>>,
}

impl Trimmed {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.new_dups.is_empty() && self.old_dups.is_empty()
    }
}

impl PgLog {
    /// A log holding `entries` (oldest first, all after `tail`).
    pub fn new(tail: ObjVersion, entries: impl IntoIterator<Item = LogEntry>) -> Self {
        let mut log = PgLog {
            tail,
            head: tail,
            ..PgLog::default()
        };
        for e in entries {
            if e.version > log.head() {
                log.push(e);
            }
        }
        log
    }

    /// The newest version of the PG's history: its newest entry's (the
    /// tail when it is empty), unless [`PgLog::with_head`] set a newer one.
    pub fn head(&self) -> ObjVersion {
        self.head
    }

    /// Moves the head forward to `head` (a split child goes on from its
    /// parent's head; a loaded log from its recorded `last_update`).
    pub fn with_head(mut self, head: ObjVersion) -> Self {
        self.head = self.head.max(head);
        self
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
            self.by_reqid.insert(entry.reqid, entry.dup());
        }
        self.head = self.head.max(entry.version);
        self.entries.push_back(entry);
    }

    /// Adds remembered requests of entries trimmed before this log's
    /// entries (oldest first; any at or after the log's tail are ignored).
    pub fn with_dups(mut self, dups: impl IntoIterator<Item = LogDup>) -> Self {
        for d in dups {
            let in_order = self.dups.back().is_none_or(|b| d.version > b.version);
            if d.version <= self.tail && in_order {
                self.push_dup(d);
            }
        }
        self
    }

    fn push_dup(&mut self, dup: LogDup) {
        if dup.reqid != ReqId::default() {
            self.dup_reqids.insert(dup.reqid, dup);
        }
        self.dups.push_back(dup);
    }

    /// Drops the oldest entries beyond `keep`, remembering their requests
    /// as dups, and the oldest dups beyond `keep_dups`.
    pub fn trim(&mut self, keep: usize, keep_dups: usize) -> Trimmed {
        let mut out = Trimmed::default();
        while self.entries.len() > keep {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            if self.by_reqid.get(&e.reqid).map(|d| d.version) == Some(e.version) {
                self.by_reqid.remove(&e.reqid);
            }
            self.tail = e.version;
            out.entries.push(entry_key(e.version));
            if keep_dups > 0 && e.reqid != ReqId::default() {
                let dup = e.dup();
                self.push_dup(dup);
                out.new_dups.push(dup);
            }
        }
        while self.dups.len() > keep_dups {
            let Some(d) = self.dups.pop_front() else {
                break;
            };
            if self.dup_reqids.get(&d.reqid).map(|r| r.version) == Some(d.version) {
                self.dup_reqids.remove(&d.reqid);
            }
            // Added and dropped by the same trim: never stored.
            match out.new_dups.iter().position(|n| n.version == d.version) {
                Some(i) => {
                    out.new_dups.remove(i);
                }
                None => out.old_dups.push(entry_key(d.version)),
            }
        }
        out
    }

    /// A request as the log or its dups remember it: the version its
    /// entry got, and its refusal if it was refused.
    pub fn find(&self, reqid: ReqId) -> Option<LogDup> {
        self.by_reqid
            .get(&reqid)
            .or_else(|| self.dup_reqids.get(&reqid))
            .copied()
    }

    /// The remembered requests of trimmed entries, oldest first.
    pub fn dups(&self) -> impl Iterator<Item = &LogDup> {
        self.dups.iter()
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
    use shoal_proto::osd::OsdErrorCode;
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
            log.find(ReqId { client: 7, tid: 2 }).map(|d| d.version.seq),
            Some(2)
        );
        let trimmed = log.trim(3, 0);
        assert_eq!(
            trimmed.entries,
            vec![
                entry_key(entry(1, 0).version),
                entry_key(entry(2, 0).version)
            ]
        );
        assert!(trimmed.new_dups.is_empty() && trimmed.old_dups.is_empty());
        assert_eq!(log.tail().seq, 2);
        assert_eq!(log.find(ReqId { client: 7, tid: 2 }), None);
        assert_eq!(log.after(ObjVersion { epoch: 1, seq: 3 }).count(), 2);
        assert!(log.contains(ObjVersion { epoch: 1, seq: 4 }));
        assert!(!log.contains(ObjVersion { epoch: 2, seq: 4 }));
    }

    #[test]
    fn trimmed_requests_are_remembered_as_dups_up_to_a_bound() {
        let req = |tid| ReqId { client: 7, tid };
        let mut log = PgLog::new(ObjVersion::default(), (1..=6).map(|s| entry(s, s)));
        let t = log.trim(4, 3);
        assert_eq!(t.entries.len(), 2);
        assert_eq!(
            t.new_dups.iter().map(|d| d.version.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(t.old_dups.is_empty());
        assert_eq!(
            log.find(req(1)).map(|d| d.version.seq),
            Some(1),
            "a dup answers"
        );
        // Past the bound the oldest dups go; one added and dropped by the
        // same trim is never stored.
        for s in 7..=10 {
            log.push(entry(s, s));
        }
        let t = log.trim(2, 3);
        assert_eq!(t.entries.len(), 6);
        assert_eq!(
            t.new_dups.iter().map(|d| d.version.seq).collect::<Vec<_>>(),
            [6, 7, 8]
        );
        assert_eq!(
            t.old_dups,
            vec![
                entry_key(entry(1, 0).version),
                entry_key(entry(2, 0).version)
            ]
        );
        assert_eq!(log.find(req(2)), None);
        assert_eq!(log.find(req(5)), None, "dropped by the same trim");
        assert_eq!(log.find(req(8)).map(|d| d.version.seq), Some(8));
        assert_eq!(
            log.find(req(10)).map(|d| d.version.seq),
            Some(10),
            "still in the log"
        );
        // A log rebuilt from its parts remembers the same requests.
        let entries: Vec<LogEntry> = log.entries().cloned().collect();
        let again = PgLog::new(log.tail(), entries).with_dups(log.dups().copied());
        assert_eq!(again.find(req(7)).map(|d| d.version.seq), Some(7));
        // Dups at or after the tail are not the log's to remember.
        let bogus = LogDup {
            reqid: req(99),
            version: ObjVersion { epoch: 1, seq: 10 },
            refused: None,
        };
        let again = PgLog::new(log.tail(), Vec::new()).with_dups([bogus]);
        assert_eq!(again.find(req(99)), None);
    }

    #[test]
    fn a_refusal_is_remembered_in_the_log_and_in_its_dups() {
        let mut log = PgLog::new(ObjVersion::default(), (1..=2).map(|s| entry(s, s)));
        let mut refused = entry(3, 3);
        refused.op = LogOp::Refused(OsdErrorCode::NotFound);
        log.push(refused);
        let req = ReqId { client: 7, tid: 3 };
        assert_eq!(
            log.find(req).and_then(|d| d.refused),
            Some(OsdErrorCode::NotFound)
        );
        let t = log.trim(0, 10);
        assert_eq!(t.new_dups[2].refused, Some(OsdErrorCode::NotFound));
        assert_eq!(t.new_dups[0].refused, None);
        let again = PgLog::new(log.tail(), Vec::new()).with_dups(t.new_dups);
        let d = again.find(req).expect("remembered as a dup");
        assert_eq!(
            (d.version.seq, d.refused),
            (3, Some(OsdErrorCode::NotFound))
        );
    }

    #[test]
    fn keys_sort_in_log_order() {
        let a = entry_key(ObjVersion { epoch: 9, seq: 255 });
        let b = entry_key(ObjVersion { epoch: 1, seq: 256 });
        assert!(a < b);
    }
}
