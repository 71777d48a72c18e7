//! Offline inspection of a stopped OSD's store, for operators and for
//! debugging (what Ceph's `ceph-objectstore-tool --op list` and `--op log`
//! answer): which PGs the store holds, and for one PG the last interval it
//! knows went active, its log, its objects with their versions and sizes,
//! and what it lacks.
//!
//! It reads the store as the OSD would open it (the store replays its
//! write-ahead log first, as at any start), and changes nothing else.

use std::fmt;

use shoal_proto::osd::{ObjVersion, PgRef};
use shoal_proto::rep::{LogEntry, LogOp};
use shoal_store::{Store, StoreError};

use crate::pglog::{collection, parse_collection};

/// One PG held by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PgSummary {
    /// The PG.
    pub pg: PgRef,
    /// Its client objects in this store.
    pub objects: u64,
    /// The epoch of the last interval this copy knows went active.
    pub last_epoch_started: u32,
    /// That interval's chain, head first.
    pub last_acting: Vec<i32>,
    /// Versions at or before this one were trimmed from the log.
    pub log_tail: ObjVersion,
    /// Newest log entry.
    pub log_head: ObjVersion,
    /// Log entries held.
    pub log_entries: usize,
    /// Requests remembered from trimmed entries.
    pub dups: usize,
    /// Objects this copy is known to lack.
    pub missing: usize,
}

/// One client object of a PG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    /// Its name.
    pub name: String,
    /// The version of the write that made it what it is.
    pub version: ObjVersion,
    /// Its size in bytes.
    pub size: u64,
}

/// Everything the store holds about one PG.
#[derive(Debug, Clone)]
pub struct PgDump {
    /// The summary line.
    pub summary: PgSummary,
    /// Client objects, by name.
    pub objects: Vec<ObjectRow>,
    /// Log entries, oldest first.
    pub log: Vec<LogEntry>,
    /// Objects this copy lacks, by name.
    pub missing: Vec<String>,
}

/// Every PG collection of the store, in PG order.
pub fn list_pgs(store: &Store) -> Result<Vec<PgSummary>, StoreError> {
    let mut pgs: Vec<PgRef> = store
        .list_collections()?
        .iter()
        .filter_map(|c| parse_collection(c))
        .collect();
    pgs.sort_by_key(|p| (p.pool, p.seed));
    pgs.into_iter()
        .map(|pg| Ok(dump_pg(store, pg)?.summary))
        .collect()
}

/// What the store holds about `pg` (`NoCollection` when it holds nothing).
pub fn dump_pg(store: &Store, pg: PgRef) -> Result<PgDump, StoreError> {
    let coll = collection(pg);
    let crate::pg::Loaded { info, log, missing } = crate::pgstore::load(store, &coll)?;
    let mut objects = Vec::new();
    for name in crate::pgstore::client_objects(store, &coll)? {
        let stat = store.stat(&coll, &name)?;
        objects.push(ObjectRow {
            name,
            version: ObjVersion {
                epoch: stat.version.epoch,
                seq: stat.version.seq,
            },
            size: stat.size,
        });
    }
    let summary = PgSummary {
        pg,
        objects: objects.len() as u64,
        log_tail: log.tail(),
        log_head: log.head(),
        log_entries: log.len(),
        dups: log.dups().count(),
        missing: missing.len(),
        last_epoch_started: info.last_epoch_started,
        last_acting: info.last_acting,
    };
    Ok(PgDump {
        summary,
        objects,
        log: log.entries().cloned().collect(),
        missing: missing.into_iter().collect(),
    })
}

/// A version as the OSD's logs print it (`epoch'seq`).
struct V(ObjVersion);

impl fmt::Display for V {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}'{}", self.0.epoch, self.0.seq)
    }
}

fn pg_name(pg: PgRef) -> String {
    format!("{}.{:x}", pg.pool, pg.seed)
}

impl fmt::Display for PgSummary {
    /// One line: PG, objects, log bounds and size, dups, missing, and the
    /// last interval known active with its chain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<10} {:>8} {:>22} {:>8} {:>6} {:>8} {:>6} {:?}",
            pg_name(self.pg),
            self.objects,
            format!("{}..{}", V(self.log_tail), V(self.log_head)),
            self.log_entries,
            self.dups,
            self.missing,
            self.last_epoch_started,
            self.last_acting,
        )
    }
}

/// The header line for [`PgSummary`] lines.
pub const SUMMARY_HEADER: &str =
    "PG          OBJECTS                    LOG  ENTRIES   DUPS  MISSING    LES LAST_ACTING";

impl fmt::Display for PgDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(f, "pg {}", pg_name(s.pg))?;
        writeln!(
            f,
            "  log {}..{} ({} entries, {} dups)",
            V(s.log_tail),
            V(s.log_head),
            s.log_entries,
            s.dups
        )?;
        writeln!(
            f,
            "  last_epoch_started {}  last_acting {:?}",
            s.last_epoch_started, s.last_acting
        )?;
        writeln!(f, "objects ({}):", self.objects.len())?;
        for o in &self.objects {
            writeln!(f, "  {}  {}  {} bytes", o.name, V(o.version), o.size)?;
        }
        writeln!(f, "log ({} entries):", self.log.len())?;
        for e in &self.log {
            let op = match e.op {
                LogOp::Modify => "modify".to_string(),
                LogOp::Delete => "delete".to_string(),
                LogOp::Refused(code) => format!("refused {code:?}"),
            };
            writeln!(
                f,
                "  {}  {}  {}  client.{}:{}",
                V(e.version),
                op,
                e.object,
                e.reqid.client,
                e.reqid.tid
            )?;
        }
        writeln!(f, "missing ({}):", self.missing.len())?;
        for m in &self.missing {
            writeln!(f, "  {m}")?;
        }
        Ok(())
    }
}
