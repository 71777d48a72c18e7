//! What an OSD reports to the monitors with each beacon: store usage,
//! client IO counters, and the state of the PGs it heads (`shoal status`).

use std::sync::atomic::{AtomicU64, Ordering};

use shoal_map::OsdMap;
use shoal_proto::report::{IoCounters, OsdStats, PgStat, RecoveryCounters};

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

/// What a PG's state string is made of (see [`pg_state`]).
#[derive(Debug, Clone, Copy)]
pub struct PgCondition {
    /// Where the PG stands on its head.
    pub phase: Phase,
    /// A local write failed in this interval.
    pub write_failed: bool,
    /// Members in the chain.
    pub members: usize,
    /// The pool's size.
    pub size: usize,
    /// The pool's `min_size`.
    pub min_size: usize,
    /// Object copies members still lack.
    pub missing: u64,
    /// A `pg_temp` chain serves instead of the up set.
    pub remapped: bool,
    /// The head is backfilling up-set OSDs outside the chain.
    pub backfilling: bool,
    /// Peering waits for a member of the last interval that went active.
    pub incomplete: bool,
    /// A scrub found copies that differ.
    pub inconsistent: bool,
}

/// A PG's state as `status` shows it, in Ceph's words and order:
/// `peering`, or `active` (`peered` below `min_size` or after a failed
/// local write: no writes until the next interval) with `+clean` when
/// every member has every object and the chain is the pool's size and
/// CRUSH's choice, else `+recovering` while members lack objects,
/// `+undersized` for a short chain, `+degraded` for either, `+remapped`
/// while a `pg_temp` chain serves and `+backfilling` while the up set's
/// other OSDs are filled.
pub fn pg_state(c: PgCondition) -> String {
    let base = match c.phase {
        Phase::Peering if c.incomplete => return "incomplete".into(),
        Phase::Peering => return "peering".into(),
        Phase::Stray => return "stray".into(),
        Phase::Active if c.write_failed || c.members < c.min_size => "peered",
        Phase::Active => "active",
    };
    let mut s = base.to_string();
    let undersized = c.members < c.size;
    if !undersized && c.missing == 0 && !c.remapped {
        s.push_str("+clean");
        if c.inconsistent {
            s.push_str("+inconsistent");
        }
        return s;
    }
    if c.missing > 0 {
        s.push_str("+recovering");
    }
    if undersized {
        s.push_str("+undersized");
    }
    if undersized || c.missing > 0 {
        s.push_str("+degraded");
    }
    if c.remapped {
        s.push_str("+remapped");
    }
    if c.backfilling {
        s.push_str("+backfilling");
    }
    if c.inconsistent {
        s.push_str("+inconsistent");
    }
    s
}

/// PG `pg`'s state string on this OSD (the head's view; the phase on
/// other members).
pub fn state_of(map: &OsdMap, pg: &Pg) -> String {
    let (interval, phase) = pg.status();
    let size = map
        .pool(pg.id.pool)
        .map_or(interval.acting.len(), |p| p.size as usize);
    pg_state(PgCondition {
        phase,
        write_failed: pg.write_failed(),
        members: interval.acting.len(),
        size,
        min_size: interval.min_size,
        missing: pg.missing_copies(),
        remapped: interval.up != interval.acting,
        backfilling: pg.backfilling(),
        incomplete: pg.incomplete(),
        inconsistent: pg.inconsistent() > 0,
    })
}

/// The report: `pgs` are this OSD's PGs; those it heads are included.
pub fn report(
    whoami: i32,
    map: &OsdMap,
    pgs: &[std::sync::Arc<Pg>],
    io: &IoStats,
    recovery: &RecoveryStats,
    store: &shoal_store::Store,
) -> OsdStats {
    let fs = store.statfs();
    let mut out = Vec::new();
    for pg in pgs {
        let (interval, phase) = pg.status();
        if phase == Phase::Stray || interval.acting.first() != Some(&whoami) {
            continue;
        }
        out.push(PgStat {
            pool: pg.id.pool,
            seed: pg.id.seed,
            interval_epoch: interval.epoch,
            state: state_of(map, pg),
            objects: pg.objects(),
            missing: pg.missing_copies(),
        });
    }
    OsdStats {
        store_total: fs.total,
        store_used: fs.used,
        io: io.snapshot(),
        pg_copies: pgs.len() as u32,
        pgs: out,
        recovery: recovery.snapshot(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(phase: Phase, failed: bool, members: usize, missing: u64) -> String {
        pg_state(PgCondition {
            phase,
            write_failed: failed,
            members,
            size: 3,
            min_size: 2,
            missing,
            remapped: false,
            backfilling: false,
            incomplete: false,
            inconsistent: false,
        })
    }

    #[test]
    fn states_read_like_ceph() {
        assert_eq!(state(Phase::Active, false, 3, 0), "active+clean");
        assert_eq!(
            state(Phase::Active, false, 2, 0),
            "active+undersized+degraded"
        );
        assert_eq!(
            state(Phase::Active, false, 1, 0),
            "peered+undersized+degraded"
        );
        assert_eq!(state(Phase::Active, true, 3, 0), "peered+clean");
        assert_eq!(
            state(Phase::Active, false, 3, 5),
            "active+recovering+degraded"
        );
        assert_eq!(
            state(Phase::Active, false, 2, 5),
            "active+recovering+undersized+degraded"
        );
        assert_eq!(state(Phase::Peering, false, 3, 0), "peering");
        let waiting = pg_state(PgCondition {
            phase: Phase::Peering,
            write_failed: false,
            members: 2,
            size: 3,
            min_size: 2,
            missing: 0,
            remapped: false,
            backfilling: false,
            incomplete: true,
            inconsistent: false,
        });
        assert_eq!(waiting, "incomplete");
        let remapped = |members, backfilling| {
            pg_state(PgCondition {
                phase: Phase::Active,
                write_failed: false,
                members,
                size: 3,
                min_size: 2,
                missing: 0,
                remapped: true,
                backfilling,
                incomplete: false,
                inconsistent: false,
            })
        };
        assert_eq!(remapped(3, true), "active+remapped+backfilling");
        assert_eq!(
            remapped(2, true),
            "active+undersized+degraded+remapped+backfilling"
        );
        assert_eq!(remapped(3, false), "active+remapped");
        let scrubbed = pg_state(PgCondition {
            phase: Phase::Active,
            write_failed: false,
            members: 3,
            size: 3,
            min_size: 2,
            missing: 0,
            remapped: false,
            backfilling: false,
            incomplete: false,
            inconsistent: true,
        });
        assert_eq!(scrubbed, "active+clean+inconsistent");
    }
}
