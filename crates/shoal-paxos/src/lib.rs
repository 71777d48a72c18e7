//! Multi-Paxos as a pure, sans-IO state machine, driven like raft-rs.
//!
//! The monitors (`shoal-mon`) replicate their maps with it. The core does
//! no IO, reads no clock and draws no randomness of its own: events come in
//! ([`Node::tick`] with a monotonic time, [`Node::step`] with a peer's
//! message, [`Node::propose`] with a value, [`Node::advance`] when the
//! shell has persisted), and work comes out as a [`Ready`]: messages to
//! send, a [`Persist`] batch to write, committed values to apply in order,
//! a snapshot to install, a snapshot to take. The shell loop is:
//!
//! ```
//! use shoal_paxos::{Config, MemStorage, Node, PersistentState};
//!
//! let mut storage = MemStorage::new();
//! let mut node = Node::new(Config::new(1, vec![1]), PersistentState::default()).unwrap();
//! node.campaign(0);
//! let mut now = 0;
//! loop {
//!     while node.has_ready() {
//!         let rd = node.ready();
//!         storage.apply(&rd.persist); // durably, atomically
//!         for _m in &rd.messages { /* send */ }
//!         for _c in &rd.committed { /* apply to the state machine */ }
//!         node.advance(&rd).unwrap();
//!     }
//!     if node.is_leader() { break; }
//!     now += 10;
//!     node.tick(now);
//! }
//! node.propose(b"map transaction batch".to_vec()).unwrap();
//! let rd = node.ready();
//! storage.apply(&rd.persist);
//! node.advance(&rd).unwrap();
//! let rd = node.ready();
//! assert_eq!(rd.committed.len(), 1);
//! ```
//!
//! # Protocol
//!
//! Every member is acceptor, learner and potential proposer. Ballots are
//! `(round, node id)`. A node that hears no leader for an election timeout
//! (plus a jitter drawn from a seed given in the [`Config`]) runs phase 1
//! once for all future slots: `Prepare(b, from_slot)`; acceptors promise
//! `b` durably and report their accepted entries from `from_slot` on, with
//! their commit index. With a quorum of promises (and after catching up on
//! any slot a promiser knows to be chosen) the node leads: for each slot
//! above its commit index up to the highest reported one it re-proposes the
//! value accepted in the highest ballot, or a no-op; then each proposed
//! value takes the next slot, with up to [`Config::window`] slots in flight
//! (the caller batches several map transactions into one value). A slot is
//! chosen when a quorum accepted it; the leader broadcasts its commit index.
//!
//! Lagging or restarted members pull chosen entries from a peer whose commit
//! index is higher; a peer that has trimmed them sends its latest snapshot
//! instead (see [`learner`]). The shell takes snapshots of
//! its state machine when asked ([`Ready::snapshot_wanted`]) and hands them
//! to [`Node::compact`], which trims the log behind them.
//!
//! # Persistence
//!
//! The acceptor's promise and accepted entries, the commit index and the
//! latest snapshot are durable, written through [`Ready::persist`]. A reply
//! that reports durable state (promise, accepted, lease grant after a new
//! promise) is held by the core and released only after
//! [`Node::advance`] confirmed the write. A candidate's prepare is held the
//! same way until its own promise of the new ballot is durable, so a
//! restarted node never reuses a ballot. After a crash, a node restarts
//! from what was persisted ([`Node::new`] with a [`PersistentState`]).
//!
//! # Leases
//!
//! See [`lease`] for the argument: a leader holding a lease
//! (granted by a quorum, discounted for clock drift) may serve reads
//! without a round ([`Node::can_serve_lease_read`]); no two nodes can hold
//! one at the same time.
//!
//! # Membership
//!
//! The member list is static for a `Node`: one configuration epoch, like a
//! MonMap epoch. A change is committed as an ordinary value (the monitor
//! encodes "new MonMap" in its value format) and takes effect after it:
//!
//! 1. the leader proposes the change and nothing after it until it is
//!    committed; values that still get committed after a change in the same
//!    epoch (a new leader's proposals racing it) are void: every member
//!    skips them when applying, so they are never acknowledged and their
//!    clients retry;
//! 2. a member that applies the change at slot `s` takes a snapshot at `s`
//!    and restarts its `Node` with the new [`Config`] and a
//!    [`PersistentState`] holding its promise, commit index `s`, the
//!    snapshot and no entries after `s`;
//! 3. the shell tags every message with its epoch and drops messages of
//!    another epoch; a member still in the old epoch learns the change by
//!    catch-up from a member of the old epoch, and a new member starts from
//!    a snapshot at `s` fetched from any member of the new one.
//!
//! Ballots keep growing across epochs (the promise is carried over), so a
//! ballot is never reused. This is the "stop, then start the next epoch"
//! scheme of Vertical Paxos and of Ceph's MonMap changes; it belongs to the
//! monitor (`shoal-mon`), the core needs no change for it.

#![deny(missing_docs)]

mod acceptor;
mod ballot;
mod config;
mod error;
pub mod learner;
pub mod lease;
mod message;
mod node;
mod plumbing;
mod proposer;
mod ready;
mod storage;

pub use ballot::{Ballot, MAX_ROUND, MAX_SLOT, NodeId, SLOT_HORIZON, Slot, Time};
pub use config::Config;
pub use error::{ConfigError, PaxosError, ProposeError, StepError};
pub use message::{Body, Command, LogEntry, Message, Snapshot};
pub use node::{Node, RoleKind};
pub use ready::{Committed, Ready};
pub use storage::{MemStorage, Persist, PersistentState};
