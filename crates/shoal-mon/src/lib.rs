//! The Shoal monitor (`shoal-mon`): the cluster's source of truth.
//!
//! Three or five monitors agree with Multi-Paxos (`shoal-paxos`) on a log of
//! batches of map transactions; each applies the log to the same
//! deterministic state machine ([`state::MonState`]: MonMap, OSDMap, auth,
//! config keys) so every monitor holds byte-identical maps. The leader
//! batches concurrent commands into one Paxos value (one OSDMap epoch),
//! runs failure detection (beacons, peer reports, down -> out), and issues
//! identity certificates; peons forward writes to it and serve reads and
//! map subscriptions.
//!
//! Modules:
//! - [`state`], [`apply`], [`batch`], [`initial`] — the state machine (pure);
//! - [`failure`], [`health`], [`commands`] — leader soft state, health, reads;
//! - [`store`], [`writer`] — the redb store and its group-commit thread;
//! - [`driver`], [`daemon`], [`view`] — the Paxos shell and network glue;
//! - [`mkfs`] — creating a monitor (and the cluster CA).
//!
//! See `docs/mon.md`.

#![deny(missing_docs)]

pub mod apply;
pub mod batch;
pub mod commands;
pub mod daemon;
pub mod driver;
pub mod error;
pub mod failure;
pub mod health;
pub mod initial;
pub mod mkfs;
pub mod pgstats;
pub mod placement;
pub mod state;
pub mod store;
pub mod view;
pub mod writer;

pub use error::MonError;
pub use state::MonState;
