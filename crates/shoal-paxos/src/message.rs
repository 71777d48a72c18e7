//! Log entries, snapshots and the messages members exchange.
//!
//! Every type derives rkyv's `Archive`/`Serialize`/`Deserialize` and serde's
//! traits so the network shell can frame them and the disk shell can store
//! them. Nothing here trusts its content: the core checks every field it
//! uses (see [`crate::Node::step`]).

use rkyv::{Archive, Deserialize, Serialize};

use crate::ballot::{Ballot, NodeId, Slot, Time};

/// What a slot of the log holds.
#[derive(
    Clone,
    Debug,
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
#[rkyv(derive(Debug))]
pub enum Command {
    /// A filler a new leader proposes for a slot nobody reported a value
    /// for; the shell skips it when applying.
    Noop,
    /// An opaque value from [`crate::Node::propose`] (at the monitor level,
    /// a batch of map transactions).
    Value(Vec<u8>),
}

/// One slot of an acceptor's log: the value it accepted and in which ballot.
/// For slots at or below the commit index it is the chosen value.
#[derive(
    Clone,
    Debug,
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
#[rkyv(derive(Debug))]
pub struct LogEntry {
    /// The slot.
    pub slot: Slot,
    /// The ballot in which the value was accepted.
    pub ballot: Ballot,
    /// The value.
    pub command: Command,
}

/// A snapshot of the shell's state machine after applying every slot up to
/// and including `slot`. The content is opaque to the core.
#[derive(
    Clone,
    Debug,
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
#[rkyv(derive(Debug))]
pub struct Snapshot {
    /// The last slot the snapshot includes.
    pub slot: Slot,
    /// The shell's encoding of its state.
    pub data: Vec<u8>,
}

/// A message between two members.
#[derive(
    Clone,
    Debug,
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
#[rkyv(derive(Debug))]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// What it says.
    pub body: Body,
}

/// The content of a [`Message`].
#[derive(
    Clone,
    Debug,
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
#[rkyv(derive(Debug))]
pub enum Body {
    /// Phase 1a: "promise me `ballot` and tell me what you accepted from
    /// `from_slot` on". One prepare covers every future slot.
    Prepare {
        /// The proposer's new ballot.
        ballot: Ballot,
        /// The first slot the proposer does not know to be chosen.
        from_slot: Slot,
    },
    /// Phase 1b: the acceptor promised `ballot` (durably, before this
    /// message left) and reports its log.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor's commit index: its entries up to here are chosen.
        commit: Slot,
        /// Entries from the requested slot on (chosen ones possibly capped,
        /// then every accepted one above the commit index).
        entries: Vec<LogEntry>,
    },
    /// Phase 2a: "accept `command` in `slot` at `ballot`".
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
        /// The proposed value.
        command: Command,
        /// The leader's commit index (piggybacked).
        commit: Slot,
    },
    /// Phase 2b: the acceptor accepted (durably) `slot` at `ballot`.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
    },
    /// The acceptor refused `ballot`: it promised `promised`, or it holds a
    /// lease for another leader.
    Reject {
        /// The refused ballot.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
    /// The leader's commit index (sent as soon as it advances).
    Commit {
        /// The leader's ballot.
        ballot: Ballot,
        /// Every slot up to here is chosen.
        commit: Slot,
    },
    /// The leader's periodic heartbeat, carrying its commit index and a
    /// lease request stamped with the leader's clock.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's commit index.
        commit: Slot,
        /// The leader's clock when it built this heartbeat.
        lease_start: Time,
    },
    /// The answer to a heartbeat; `lease_granted` says the acceptor will not
    /// promise another ballot for a lease duration on its own clock.
    HeartbeatAck {
        /// The leader's ballot (echoed).
        ballot: Ballot,
        /// The heartbeat's `lease_start` (echoed).
        lease_start: Time,
        /// Whether the acceptor granted the lease.
        lease_granted: bool,
    },
    /// "Send me the chosen values from `from_slot` on."
    CatchupRequest {
        /// The first slot the requester lacks.
        from_slot: Slot,
    },
    /// Chosen values, contiguous from the requested slot.
    CatchupReply {
        /// The sender's commit index (the requester asks again if it is
        /// still behind).
        commit: Slot,
        /// Chosen entries.
        entries: Vec<LogEntry>,
    },
    /// The requester is behind the sender's trimmed log: here is the
    /// sender's latest snapshot.
    InstallSnapshot {
        /// The snapshot.
        snapshot: Snapshot,
    },
}

impl Body {
    /// The ballot this message speaks for, if any.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Body::Prepare { ballot, .. }
            | Body::Promise { ballot, .. }
            | Body::Accept { ballot, .. }
            | Body::Accepted { ballot, .. }
            | Body::Reject { ballot, .. }
            | Body::Commit { ballot, .. }
            | Body::Heartbeat { ballot, .. }
            | Body::HeartbeatAck { ballot, .. } => Some(*ballot),
            Body::CatchupRequest { .. }
            | Body::CatchupReply { .. }
            | Body::InstallSnapshot { .. } => None,
        }
    }

    /// Every ballot this message names: the one it speaks for, a refusal's
    /// promise, and the ballots of the entries it carries.
    pub fn ballots(&self) -> Vec<Ballot> {
        let mut all: Vec<Ballot> = self.ballot().into_iter().collect();
        match self {
            Body::Reject { promised, .. } => all.push(*promised),
            Body::Promise { entries, .. } | Body::CatchupReply { entries, .. } => {
                all.extend(entries.iter().map(|e| e.ballot));
            }
            _ => {}
        }
        all
    }

    /// The largest slot number this message names (0 if none).
    pub fn max_slot(&self) -> Slot {
        let entries = |es: &[LogEntry]| es.iter().map(|e| e.slot).max().unwrap_or(0);
        match self {
            Body::Prepare { from_slot, .. } | Body::CatchupRequest { from_slot } => *from_slot,
            Body::Promise {
                commit,
                entries: es,
                ..
            }
            | Body::CatchupReply {
                commit,
                entries: es,
            } => (*commit).max(entries(es)),
            Body::Accept { slot, commit, .. } => (*slot).max(*commit),
            Body::Accepted { slot, .. } => *slot,
            Body::Commit { commit, .. } | Body::Heartbeat { commit, .. } => *commit,
            Body::InstallSnapshot { snapshot } => snapshot.slot,
            Body::Reject { .. } | Body::HeartbeatAck { .. } => 0,
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Prepare { .. } => "prepare",
            Body::Promise { .. } => "promise",
            Body::Accept { .. } => "accept",
            Body::Accepted { .. } => "accepted",
            Body::Reject { .. } => "reject",
            Body::Commit { .. } => "commit",
            Body::Heartbeat { .. } => "heartbeat",
            Body::HeartbeatAck { .. } => "heartbeat_ack",
            Body::CatchupRequest { .. } => "catchup_request",
            Body::CatchupReply { .. } => "catchup_reply",
            Body::InstallSnapshot { .. } => "install_snapshot",
        }
    }
}
