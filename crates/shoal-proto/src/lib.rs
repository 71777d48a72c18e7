//! Shoal's wire messages: the rkyv bodies every daemon and client exchange,
//! and the frame message types that tag them.
//!
//! Pure: no IO, no async. The transport (`shoal-net`) carries the bodies
//! opaquely; each conversation has its own module:
//!
//! - [`msg`] — the frame message-type numbers;
//! - [`mon`] — commands to the monitors ([`mon::MonRequest`]) and their
//!   answers ([`mon::MonReply`]), the typed command API of the `shoal` CLI;
//! - [`subscribe`] — map subscriptions (long-polled incremental maps);
//! - [`peer`] — monitor-to-monitor traffic (Paxos, forwarded commands);
//! - [`osd`] — client -> OSD object operations;
//! - [`rep`] — OSD -> OSD replication, peering, recovery, heartbeats;
//! - [`caps`] — capabilities of identities (`mon r`, `mon rw`, `osd rw`).

#![deny(missing_docs)]

pub mod caps;
pub mod mon;
pub mod msg;
pub mod osd;
pub mod peer;
pub mod rep;
pub mod report;
pub mod subscribe;
mod wire;

pub use caps::{Caps, CapsError};
pub use mon::{CommandError, CommandOutput, ErrorCode, MonCommand, MonReply, MonRequest};
