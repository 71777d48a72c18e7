//! The batch of work the core hands to the shell.

use crate::ballot::Slot;
use crate::message::{Command, Message, Snapshot};
use crate::storage::Persist;

/// A chosen value, delivered once and in slot order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Committed {
    /// The slot.
    pub slot: Slot,
    /// The value ([`Command::Noop`] is delivered too, so the shell can
    /// count slots; it applies nothing).
    pub command: Command,
}

/// Work for the shell, from [`crate::Node::ready`]. Handle it in this order:
///
/// 1. write [`Ready::persist`] atomically and durably (if not empty);
/// 2. send [`Ready::messages`] (they never depend on `persist`: replies
///    that do are held by the core until step 4 and come in a later ready,
///    so they may also be sent before or while persisting);
/// 3. if [`Ready::install_snapshot`] is set, replace the state machine with
///    it, then apply [`Ready::committed`] in order;
/// 4. call [`crate::Node::advance`] with this ready;
/// 5. loop while [`crate::Node::has_ready`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[must_use = "a Ready must be persisted and passed to Node::advance"]
pub struct Ready {
    /// Sequence number, for [`crate::Node::advance`].
    pub number: u64,
    /// Messages to send; delivery is best effort (loss, duplication and
    /// reordering are tolerated).
    pub messages: Vec<Message>,
    /// Durable changes to write before `advance`.
    pub persist: Persist,
    /// A snapshot received from a peer: restore the state machine from it
    /// before applying `committed` (which continues after its slot). It is
    /// also in `persist.snapshot`.
    pub install_snapshot: Option<Snapshot>,
    /// Chosen values to apply, in slot order, contiguous after the last
    /// delivered one (or after `install_snapshot`).
    pub committed: Vec<Committed>,
    /// The core suggests taking a snapshot of the state machine at this
    /// slot (the applied index) and passing it to
    /// [`crate::Node::compact`], so the log can be trimmed.
    pub snapshot_wanted: Option<Slot>,
    /// Proposals that were queued at this node when it stopped being the
    /// leader; they were never sent and can be proposed again elsewhere.
    pub dropped_proposals: Vec<Vec<u8>>,
}
