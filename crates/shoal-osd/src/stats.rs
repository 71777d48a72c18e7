//! What an OSD reports to the monitors with each beacon: store usage,
//! client IO counters, and the state of the PGs it heads (`shoal status`).

use std::sync::atomic::{AtomicU64, Ordering};

use shoal_proto::report::{IoCounters, OsdStats, PgStat, RecoveryCounters};

/// Client operations served by this OSD since it started.
#[derive(Debug, Default)]
pub struct IoStats {
    read_ops: AtomicU64,
    read_bytes: AtomicU64,
    write_ops: AtomicU64,
    write_bytes: AtomicU64,
}

impl IoStats {
    /// Counts a read that returned `bytes`.
    pub fn record_read(&self, bytes: usize) {
        self.read_ops.fetch_add(1, Ordering::Relaxed);
        self.read_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a write (at the head) that carried `bytes`.
    pub fn record_write(&self, bytes: usize) {
        self.write_ops.fetch_add(1, Ordering::Relaxed);
        self.write_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> IoCounters {
        IoCounters {
            read_ops: self.read_ops.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            write_ops: self.write_ops.load(Ordering::Relaxed),
            write_bytes: self.write_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Recovery copies made by this OSD since it started.
#[derive(Debug, Default)]
pub struct RecoveryStats {
    objects: AtomicU64,
    bytes: AtomicU64,
}

impl RecoveryStats {
    /// Counts one object copy of `bytes` (pushed or pulled).
    pub fn record(&self, bytes: usize) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> RecoveryCounters {
        RecoveryCounters {
            objects: self.objects.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// The report: store usage, IO and recovery counters, the number of PG
/// copies here (`pgs`, one entry per copy), and the state of those this
/// OSD heads (the entries that are `Some`).
pub fn report(
    pgs: Vec<Option<PgStat>>,
    io: &IoStats,
    recovery: &RecoveryStats,
    store: &shoal_store::Store,
) -> OsdStats {
    let fs = store.statfs();
    OsdStats {
        store_total: fs.total,
        store_used: fs.used,
        io: io.snapshot(),
        pg_copies: pgs.len() as u32,
        pgs: pgs.into_iter().flatten().collect(),
        recovery: recovery.snapshot(),
    }
}
