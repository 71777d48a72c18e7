//! `shoal-osd`: the OSD daemon. It keeps the PGs CRUSH gives it on one
//! `shoal-store`, replicates each PG's writes down a chain of OSDs (head ->
//! middle -> tail) over QUIC, answers clients, heartbeats its peers and
//! follows the cluster map. See `docs/osd.md`.
//!
//! The PG protocol is sans IO: [`pg::Pg`] is one PG as a pure state
//! machine (events in, actions out), built on the pure cores [`chain`]
//! (which writes are done on a member), [`peering`] (which log wins and
//! who needs what), [`pglog`], [`missing`], [`scan`] and [`scrub`]. The
//! rest is the tokio shell around it: [`shard`] runs the machines and
//! executes their actions, [`service`] answers the network.

#![warn(missing_docs)]

pub mod auth;
pub mod chain;
pub mod context;
pub mod daemon;
pub mod effects;
pub mod error;
pub mod exec;
pub mod facts;
pub mod faults;
pub mod inspect;
pub mod lease;
pub mod links;
pub mod missing;
pub mod mkfs;
pub mod node;
pub mod parallel;
pub mod peering;
pub mod pg;
pub mod pglog;
pub mod pgstore;
pub mod rejoin;
pub mod rpc;
pub mod scan;
pub mod schedule;
pub mod scrub;
pub mod service;
pub mod shard;
pub mod space;
pub mod split;
pub mod stats;
pub mod strays;
pub mod throttle;
