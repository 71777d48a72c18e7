//! What a PG shows the operator: its state string in Ceph's words (for the
//! monitors' `status`), the detail of `shoal pg query`, and whether a copy
//! is a stray the OSD may delete once the PG is clean elsewhere.

use std::collections::BTreeMap;

use shoal_proto::osd::{MissingOn, PgDetail};

use super::Pg;
use super::types::Phase;

/// Objects listed per OSD in a PG's detail.
const SHOWN: usize = 100;

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

impl Pg {
    /// The PG's state string on this OSD (the head's view; the phase on
    /// other members).
    pub fn state(&self) -> String {
        pg_state(PgCondition {
            phase: self.phase,
            write_failed: self.write.has_failed(),
            members: self.interval.acting.len(),
            size: self.interval.size,
            min_size: self.interval.min_size,
            missing: self.missing_copies(),
            remapped: self.interval.up != self.interval.acting,
            backfilling: self.backfilling,
            incomplete: self.incomplete,
            inconsistent: !self.inconsistent.is_empty(),
        })
    }

    /// Object copies the members still lack (the head's count).
    pub fn missing_copies(&self) -> u64 {
        self.recovery.copies()
    }

    /// Whether this OSD heads the PG's current chain.
    pub fn is_head(&self) -> bool {
        self.position() == Some(0)
    }

    /// A copy this OSD keeps although it is neither in the chain nor in
    /// the up set (nor being backfilled): the head to ask whether the PG
    /// is clean, after which the copy can go.
    pub fn stray_copy_of(&self) -> Option<i32> {
        let extra = self.phase == Phase::Stray
            && !self.interval.up.contains(&self.whoami)
            && self.backfill_of.is_none();
        extra
            .then(|| self.interval.acting.first().copied())
            .flatten()
    }

    /// This copy as `shoal pg query` shows it.
    pub fn detail(&self) -> PgDetail {
        let pos = self.position();
        let role = match pos {
            Some(0) => "head",
            Some(_) => "member",
            None if self.interval.up.contains(&self.whoami) => "backfill target",
            None => "stray",
        };
        let mut missing = Vec::new();
        if pos == Some(0) {
            let mut by_osd: BTreeMap<i32, MissingOn> = BTreeMap::new();
            for (name, members) in self.recovery.objects() {
                for &m in members {
                    let e = by_osd.entry(m).or_insert_with(|| MissingOn {
                        osd: m,
                        count: 0,
                        objects: Vec::new(),
                    });
                    e.count += 1;
                    if e.objects.len() < SHOWN {
                        e.objects.push(name.clone());
                    }
                }
            }
            missing.extend(by_osd.into_values());
        } else if !self.missing.is_empty() {
            missing.push(MissingOn {
                osd: self.whoami,
                count: self.missing.len() as u64,
                objects: self.missing.iter().take(SHOWN).cloned().collect(),
            });
        }
        let backfill_targets = if pos == Some(0) && self.backfilling {
            self.interval
                .up
                .iter()
                .copied()
                .filter(|o| !self.interval.acting.contains(o))
                .collect()
        } else {
            Vec::new()
        };
        PgDetail {
            pgid: self.id.to_string(),
            osd: self.whoami,
            role: role.into(),
            state: self.state(),
            interval_epoch: self.interval.epoch,
            acting: self.interval.acting.clone(),
            up: self.interval.up.clone(),
            last_update: self.log.head(),
            log_tail: self.log.tail(),
            log_entries: self.log.len() as u64,
            last_epoch_started: self.les,
            missing,
            backfill_targets,
            objects: self.objects,
        }
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
