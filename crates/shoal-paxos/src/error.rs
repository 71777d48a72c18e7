//! Typed errors.

use crate::ballot::{NodeId, Slot};

/// A [`crate::Config`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The member list is empty.
    #[error("the member list is empty")]
    NoMembers,
    /// A member id appears twice.
    #[error("member {0} is listed twice")]
    DuplicateMember(NodeId),
    /// The node's own id is not a member.
    #[error("node {0} is not in the member list")]
    NotAMember(NodeId),
    /// A duration or count that must be positive is zero.
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// Heartbeats must come more often than elections time out.
    #[error("heartbeat interval {heartbeat} must be below the election timeout {election}")]
    HeartbeatTooSlow {
        /// The heartbeat interval.
        heartbeat: u64,
        /// The election timeout.
        election: u64,
    },
    /// With leases on, the lease (after the drift allowance) must outlast a
    /// heartbeat interval, or the leader could never hold it continuously.
    #[error(
        "lease of {effective} (after drift allowance) does not outlast the heartbeat interval {heartbeat}"
    )]
    LeaseTooShort {
        /// The lease the leader may count on.
        effective: u64,
        /// The heartbeat interval.
        heartbeat: u64,
    },
    /// The drift allowance must be below 100%.
    #[error("clock drift allowance {0} ppm must be below 1000000")]
    DriftTooLarge(u32),
}

/// An error from [`crate::Node`]'s API (never from a peer's message: those
/// are ignored or answered, see [`StepError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaxosError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The persisted state says the commit index is `commit` but the entry
    /// of a slot at or below it is missing.
    #[error("persisted state lacks the committed entry of slot {slot} (commit index {commit})")]
    MissingCommitted {
        /// The missing slot.
        slot: Slot,
        /// The persisted commit index.
        commit: Slot,
    },
    /// The persisted state names a slot or ballot round beyond
    /// [`crate::MAX_SLOT`] / [`crate::MAX_ROUND`] (a damaged store).
    #[error("persisted state names slot or round {0}, beyond the largest allowed")]
    OutOfRange(u64),
    /// The shell claims to have applied more than was durably committed
    /// (it must persist a [`crate::Ready`] before applying it).
    #[error("applied index {applied} is beyond the persisted commit index {commit}")]
    AppliedBeyondCommit {
        /// The shell's applied index.
        applied: Slot,
        /// The persisted commit index.
        commit: Slot,
    },
    /// `advance` was given a ready this node never handed out.
    #[error("ready {0} was never handed out")]
    UnknownReady(u64),
    /// A snapshot beyond what was delivered to the shell.
    #[error("snapshot at slot {slot} is beyond the applied index {applied}")]
    SnapshotAhead {
        /// The snapshot's slot.
        slot: Slot,
        /// The applied index.
        applied: Slot,
    },
    /// A snapshot not newer than the one the node has.
    #[error("snapshot at slot {slot} is not newer than the current one at {current}")]
    StaleSnapshot {
        /// The snapshot's slot.
        slot: Slot,
        /// The current snapshot's slot.
        current: Slot,
    },
}

/// Why [`crate::Node::propose`] refused a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This node is not the active leader; `leader` is the last leader it
    /// heard from, if any (forward the value there).
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The presumed leader.
        leader: Option<NodeId>,
    },
    /// Too many proposals wait for a slot; retry later.
    #[error("{0} proposals already queued")]
    QueueFull(usize),
}

/// Why [`crate::Node::step`] dropped a message without looking at it.
/// Stale, duplicate and refused messages are not errors: they are handled
/// (ignored or answered) and `step` returns `Ok`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The message is addressed to another node.
    #[error("message for node {0}, not for this node")]
    NotForMe(NodeId),
    /// The sender is not a member (or is this node itself).
    #[error("message from {0}, which is not a peer")]
    UnknownSender(NodeId),
    /// The message speaks for a ballot owned by a non-member.
    #[error("ballot owned by {0}, which is not a member")]
    ForeignBallot(NodeId),
    /// The message names a slot above [`crate::MAX_SLOT`].
    #[error("slot {0} out of range")]
    SlotOutOfRange(Slot),
    /// The message names a ballot round above [`crate::MAX_ROUND`].
    #[error("ballot round {0} out of range")]
    RoundOutOfRange(u64),
}
