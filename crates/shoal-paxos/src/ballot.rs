//! Identifiers: node ids, slots, time, and ballots.

use std::fmt;

use rkyv::{Archive, Deserialize, Serialize};

/// A member's id (a monitor's rank or any stable number).
pub type NodeId = u64;

/// A position in the replicated log. Slots start at 1; 0 means "none".
pub type Slot = u64;

/// The largest slot a message may name; anything above is refused by
/// [`crate::Node::step`] (so slot arithmetic never overflows).
pub const MAX_SLOT: Slot = u64::MAX >> 2;

/// The largest ballot round a message or the persisted state may carry;
/// anything above is refused (so a new campaign's `round + 1` never
/// overflows, and a peer cannot push rounds out of reach).
pub const MAX_ROUND: u64 = u64::MAX >> 2;

/// How far above its commit index an acceptor accepts a slot, and how far a
/// new leader looks for values to recover. A legitimate leader proposes
/// within its window of its own commit index, so only a member lagging by
/// more than this declines to vote (it catches up first); a bogus entry far
/// ahead can neither be stored nor make a leader fill millions of slots.
pub const SLOT_HORIZON: Slot = 1 << 16;

/// A reading of a monotonic clock, in units the caller chooses (milliseconds
/// in the monitor). Only differences are used; every node may have its own
/// origin and its clock may run slightly fast or slow (see
/// [`crate::Config::max_clock_drift_ppm`]).
pub type Time = u64;

/// A ballot number: `(round, node)`, ordered by round and then by node, so
/// two proposers never share a ballot.
///
/// A proposer picks a round above every round it has seen and tags it with
/// its own id. Since a node persists its promise of its own ballot before
/// any message of that ballot leaves (see [`crate::Node::campaign`]), a
/// restarted node never reuses a ballot.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct Ballot {
    /// The round; compared first.
    pub round: u64,
    /// The proposer that owns this ballot; breaks ties between rounds.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot below every real ballot: nothing promised yet.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// A ballot of `round` owned by `node`.
    pub const fn new(round: u64, node: NodeId) -> Self {
        Ballot { round, node }
    }

    /// Whether this is [`Ballot::ZERO`] (round 0 is never used by a proposer).
    pub const fn is_zero(&self) -> bool {
        self.round == 0
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node() {
        assert!(Ballot::new(1, 9) < Ballot::new(2, 0));
        assert!(Ballot::new(2, 1) < Ballot::new(2, 3));
        assert!(Ballot::ZERO < Ballot::new(1, 0));
        assert_eq!(Ballot::new(3, 4), Ballot::new(3, 4));
        assert!(Ballot::ZERO.is_zero());
        assert!(!Ballot::new(1, 0).is_zero());
        assert_eq!(Ballot::new(7, 2).to_string(), "7.2");
    }
}
