//! `shoal-osd`: the OSD daemon. It keeps the PGs CRUSH gives it on one
//! `shoal-store`, replicates each PG's writes down a chain of OSDs (head ->
//! middle -> tail) over QUIC, answers clients, heartbeats its peers and
//! follows the cluster map. See `docs/osd.md`.
//!
//! The protocol cores are sans IO: [`chain`] (which writes are done on a
//! member) and [`peering`] (which log wins and who needs what); the rest
//! is the tokio shell around them.

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
pub mod machine;
pub mod missing;
pub mod mkfs;
pub mod parallel;
pub mod peering;
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
pub mod stats;
pub mod strays;
pub mod throttle;
