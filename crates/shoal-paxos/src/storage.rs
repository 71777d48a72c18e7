//! What the core asks the shell to persist, what it is restarted from, and
//! an in-memory store implementing both (for tests and simulations).

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use crate::ballot::{Ballot, Slot};
use crate::message::{LogEntry, Snapshot};

/// Everything a node needs after a restart: what was written through
/// [`Persist`] batches, nothing else.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct PersistentState {
    /// The acceptor's promise.
    pub promised: Ballot,
    /// The commit index: every slot up to here is chosen and its entry (or
    /// the snapshot) holds the chosen value.
    pub commit: Slot,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The log: accepted entries, chosen ones up to `commit`.
    pub entries: Vec<LogEntry>,
}

/// One batch of durable changes. The shell must write it atomically (one
/// transaction of its KV store) and durably before calling
/// [`crate::Node::advance`]; [`MemStorage::apply`] shows the meaning of each
/// field.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct Persist {
    /// A new promise to record.
    pub promised: Option<Ballot>,
    /// A new commit index to record.
    pub commit: Option<Slot>,
    /// A snapshot to store as the latest one (taken by the shell through
    /// [`crate::Node::compact`], or received from a peer).
    pub snapshot: Option<Snapshot>,
    /// Delete every log entry at or below this slot.
    pub trim_through: Option<Slot>,
    /// Entries to insert or overwrite (all above `trim_through`).
    pub entries: Vec<LogEntry>,
}

impl Persist {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.promised.is_none()
            && self.commit.is_none()
            && self.snapshot.is_none()
            && self.trim_through.is_none()
            && self.entries.is_empty()
    }
}

/// The core's accumulator of changes not yet handed out in a
/// [`crate::Ready`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct PendingPersist {
    pub(crate) promised: Option<Ballot>,
    pub(crate) commit: Option<Slot>,
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) trim_through: Option<Slot>,
    pub(crate) entries: BTreeMap<Slot, LogEntry>,
}

impl PendingPersist {
    pub(crate) fn is_empty(&self) -> bool {
        self.promised.is_none()
            && self.commit.is_none()
            && self.snapshot.is_none()
            && self.trim_through.is_none()
            && self.entries.is_empty()
    }

    /// Records a trim: entries at or below `slot` are dropped, here too.
    pub(crate) fn trim(&mut self, slot: Slot) {
        self.trim_through = Some(self.trim_through.map_or(slot, |t| t.max(slot)));
        self.entries = self.entries.split_off(&(slot + 1));
    }

    pub(crate) fn take(&mut self) -> Persist {
        let p = std::mem::take(self);
        Persist {
            promised: p.promised,
            commit: p.commit,
            snapshot: p.snapshot,
            trim_through: p.trim_through,
            entries: p.entries.into_values().collect(),
        }
    }
}

/// A store kept in memory: applies [`Persist`] batches and gives back the
/// [`PersistentState`] a restarted node starts from. Simulations use it to
/// model a disk (whatever was not applied is lost in a crash); a real shell
/// does the same with its KV store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemStorage {
    promised: Ballot,
    commit: Slot,
    snapshot: Option<Snapshot>,
    entries: BTreeMap<Slot, LogEntry>,
    batches: u64,
}

impl MemStorage {
    /// An empty store (a node that never ran).
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one batch, in this order: store the snapshot, delete trimmed
    /// entries, write entries, record the promise and the commit index.
    pub fn apply(&mut self, p: &Persist) {
        if p.is_empty() {
            return;
        }
        self.batches += 1;
        if let Some(s) = &p.snapshot {
            self.snapshot = Some(s.clone());
        }
        if let Some(t) = p.trim_through {
            self.entries = self.entries.split_off(&(t.saturating_add(1)));
        }
        for e in &p.entries {
            self.entries.insert(e.slot, e.clone());
        }
        if let Some(b) = p.promised {
            self.promised = b;
        }
        if let Some(c) = p.commit {
            self.commit = c;
        }
    }

    /// The state to restart a node from.
    pub fn state(&self) -> PersistentState {
        PersistentState {
            promised: self.promised,
            commit: self.commit,
            snapshot: self.snapshot.clone(),
            entries: self.entries.values().cloned().collect(),
        }
    }

    /// How many non-empty batches were applied (each is one durable write,
    /// an fsync in a real shell).
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The number of log entries stored.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }
}
