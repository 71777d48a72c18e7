//! The chain-replication core of one PG on one member, sans IO.
//!
//! Every member sees the PG's writes in version order: the head orders
//! them, the others receive them on an ordered link. For each write the
//! member learns two things, in any order: its own store has it durably
//! ([`Chain::local_durable`]), and — unless it is the tail — every member
//! downstream has it durably ([`Chain::downstream_acked`]). A write is
//! *done* on a member when both hold; done writes form a prefix of the
//! version order, and the end of that prefix is what the member
//! acknowledges upstream (the head: answers its clients). On the tail done
//! means committed; on the others, done means committed too, because the
//! downstream acknowledgement only arrives once the tail has it.

use std::collections::BTreeMap;

use shoal_proto::osd::ObjVersion;
use thiserror::Error;

/// A write handed to the core out of order.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    /// Versions must arrive in increasing sequence order.
    #[error("write {got} arrived after {last}: links deliver in order")]
    OutOfOrder {
        /// The newest version started before.
        last: ObjVersion,
        /// The version offered.
        got: ObjVersion,
    },
}

/// One write in flight on this member.
#[derive(Debug, Clone, Copy)]
struct Slot {
    version: ObjVersion,
    local: bool,
}

/// The in-flight writes of one PG on one member during one interval.
#[derive(Debug, Clone)]
pub struct Chain {
    tail: bool,
    slots: BTreeMap<u64, Slot>,
    last_started: ObjVersion,
    acked_down: ObjVersion,
    done: ObjVersion,
}

impl Chain {
    /// A chain position; `tail` when no member follows this one. `start`
    /// is the version the PG's log ends at (everything up to it is done).
    pub fn new(tail: bool, start: ObjVersion) -> Self {
        Chain {
            tail,
            slots: BTreeMap::new(),
            last_started: start,
            acked_down: start,
            done: start,
        }
    }

    /// A new write (its local apply has been queued).
    pub fn start(&mut self, version: ObjVersion) -> Result<(), ChainError> {
        if version.seq <= self.last_started.seq || version < self.last_started {
            return Err(ChainError::OutOfOrder {
                last: self.last_started,
                got: version,
            });
        }
        self.last_started = version;
        self.slots.insert(
            version.seq,
            Slot {
                version,
                local: false,
            },
        );
        Ok(())
    }

    /// The write `seq` is durable in the local store. Returns the new end
    /// of the done prefix if it moved.
    pub fn local_durable(&mut self, seq: u64) -> Option<ObjVersion> {
        if let Some(slot) = self.slots.get_mut(&seq) {
            slot.local = true;
        }
        self.advance()
    }

    /// Every member downstream has the writes up to `version`. Returns the
    /// new end of the done prefix if it moved. Acks for versions never
    /// started (a confused or hostile peer) are ignored.
    pub fn downstream_acked(&mut self, version: ObjVersion) -> Option<ObjVersion> {
        if self.tail || version <= self.acked_down || version > self.last_started {
            return None;
        }
        self.acked_down = version;
        self.advance()
    }

    fn advance(&mut self) -> Option<ObjVersion> {
        let before = self.done;
        while let Some((&seq, slot)) = self.slots.first_key_value() {
            let below = self.tail || seq <= self.acked_down.seq;
            if !(slot.local && below) {
                break;
            }
            self.done = slot.version;
            self.slots.remove(&seq);
        }
        (self.done != before).then_some(self.done)
    }

    /// The end of the done (committed) prefix.
    pub fn done(&self) -> ObjVersion {
        self.done
    }

    /// The end of the prefix of writes that are in the local store
    /// (durable here, whatever the members downstream have): everything
    /// a scan of the local store is sure to see.
    pub fn local_through(&self) -> ObjVersion {
        let mut through = self.done;
        for slot in self.slots.values() {
            if !slot.local {
                break;
            }
            through = slot.version;
        }
        through
    }

    /// The newest write started.
    pub fn last_started(&self) -> ObjVersion {
        self.last_started
    }

    /// Writes started and not yet done.
    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// Whether this member is the tail.
    pub fn is_tail(&self) -> bool {
        self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(seq: u64) -> ObjVersion {
        ObjVersion { epoch: 3, seq }
    }

    #[test]
    fn tail_is_done_when_durable_in_order() {
        let mut c = Chain::new(true, v(0));
        for s in 1..=3 {
            c.start(v(s)).unwrap();
        }
        assert_eq!(c.local_durable(2), None, "1 is not durable yet");
        assert_eq!(c.local_durable(1), Some(v(2)));
        assert_eq!(c.local_durable(3), Some(v(3)));
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn middle_needs_both_local_and_downstream() {
        let mut c = Chain::new(false, v(10));
        c.start(v(11)).unwrap();
        c.start(v(12)).unwrap();
        assert_eq!(c.downstream_acked(v(12)), None, "not durable here yet");
        assert_eq!(c.local_durable(11), Some(v(11)));
        assert_eq!(c.local_durable(12), Some(v(12)));
        c.start(v(13)).unwrap();
        assert_eq!(c.local_durable(13), None, "the tail has not acked 13");
        assert_eq!(c.downstream_acked(v(13)), Some(v(13)));
    }

    #[test]
    fn local_through_stops_at_the_first_write_not_in_the_store() {
        let mut c = Chain::new(false, v(4));
        assert_eq!(c.local_through(), v(4));
        for s in 5..=8 {
            c.start(v(s)).unwrap();
        }
        assert_eq!(c.local_through(), v(4), "5 is only in the log");
        c.local_durable(5);
        c.local_durable(7);
        assert_eq!(c.local_through(), v(5), "6 is not stored yet");
        c.local_durable(6);
        assert_eq!(c.local_through(), v(7), "stored, not yet acked downstream");
        c.local_durable(8);
        c.downstream_acked(v(8));
        assert_eq!(c.local_through(), v(8));
    }

    #[test]
    fn out_of_order_and_bogus_acks_are_refused() {
        let mut c = Chain::new(false, v(5));
        assert!(c.start(v(5)).is_err());
        c.start(v(6)).unwrap();
        assert!(c.start(v(6)).is_err());
        assert_eq!(c.downstream_acked(v(99)), None, "never started");
        c.local_durable(6);
        assert_eq!(c.done(), v(5));
        assert_eq!(c.downstream_acked(v(6)), Some(v(6)));
    }

    proptest! {
        /// Whatever the order of local completions and (monotonic) acks,
        /// the done prefix only grows, never passes a write that is not
        /// both local and acked, and ends at the last write.
        #[test]
        fn done_prefix_is_exact(
            n in 1u64..40,
            tail in any::<bool>(),
            order in proptest::collection::vec(any::<u64>(), 1..120),
        ) {
            let mut c = Chain::new(tail, v(0));
            for s in 1..=n { c.start(v(s)).unwrap(); }
            let mut local = vec![false; n as usize + 1];
            let mut acked = 0u64;
            let mut done = 0u64;
            let mut pending: Vec<u64> = (1..=n).collect();
            for r in order {
                if r % 2 == 0 && !pending.is_empty() {
                    let s = pending.remove((r / 2) as usize % pending.len());
                    local[s as usize] = true;
                    if let Some(d) = c.local_durable(s) { prop_assert!(d.seq > done); done = d.seq; }
                } else if !tail {
                    acked = (acked + r % 3).min(n);
                    if let Some(d) = c.downstream_acked(v(acked)) { prop_assert!(d.seq > done); done = d.seq; }
                }
                for s in 1..=done { prop_assert!(local[s as usize] && (tail || s <= acked)); }
            }
            for s in pending { c.local_durable(s); }
            c.downstream_acked(v(n));
            prop_assert_eq!(c.done(), v(n));
        }
    }
}
