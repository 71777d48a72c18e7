//! What an OSD reports to the monitors with each beacon: store usage,
//! client IO counters, and the state of the PGs it heads (`shoal status`).

use std::sync::atomic::{AtomicU64, Ordering};

use shoal_map::OsdMap;
use shoal_proto::report::{IoCounters, OsdStats, PgStat};

use crate::pg::{Pg, Phase};

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

/// A PG's state as `status` shows it: `peering` or `active`, with
/// `+undersized` when the chain is shorter than the pool's size, and
/// `peered` instead of `active` when it is shorter than `min_size` (reads
/// only) or a local write failed (no writes until the next interval).
pub fn pg_state(
    phase: Phase,
    write_failed: bool,
    members: usize,
    size: usize,
    min_size: usize,
) -> String {
    let base = match phase {
        Phase::Peering => "peering",
        Phase::Stray => "stray",
        Phase::Active if write_failed || members < min_size => "peered",
        Phase::Active => "active",
    };
    if members < size {
        format!("{base}+undersized")
    } else {
        base.to_string()
    }
}

/// The report: `pgs` are this OSD's PGs; those it heads are included.
pub fn report(
    whoami: i32,
    map: &OsdMap,
    pgs: &[std::sync::Arc<Pg>],
    io: &IoStats,
    store: &shoal_store::Store,
) -> OsdStats {
    let fs = store.statfs();
    let mut out = Vec::new();
    for pg in pgs {
        let (interval, phase) = pg.status();
        if phase == Phase::Stray || interval.acting.first() != Some(&whoami) {
            continue;
        }
        let size = map
            .pool(pg.id.pool)
            .map_or(interval.acting.len(), |p| p.size as usize);
        out.push(PgStat {
            pool: pg.id.pool,
            seed: pg.id.seed,
            interval_epoch: interval.epoch,
            state: pg_state(
                phase,
                pg.write_failed(),
                interval.acting.len(),
                size,
                interval.min_size,
            ),
            objects: pg.objects(),
        });
    }
    OsdStats {
        store_total: fs.total,
        store_used: fs.used,
        io: io.snapshot(),
        pgs: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_like_ceph() {
        assert_eq!(pg_state(Phase::Active, false, 3, 3, 2), "active");
        assert_eq!(pg_state(Phase::Active, false, 2, 3, 2), "active+undersized");
        assert_eq!(pg_state(Phase::Active, false, 1, 3, 2), "peered+undersized");
        assert_eq!(pg_state(Phase::Active, true, 3, 3, 2), "peered");
        assert_eq!(pg_state(Phase::Peering, false, 3, 3, 2), "peering");
    }
}
