//! Shoal's client library (librados-like).
//!
//! [`Cluster::connect`] talks to the monitors and follows the OSDMap;
//! [`Cluster::ioctx`] opens a pool. An [`IoCtx`] has the striped object API
//! (`put`, `get`, `get_range`, `stat`, `remove`, `list`, xattrs, omap) for
//! objects of any size, split into pieces (see [`striper`]), and the
//! object-level API ([`IoCtx::write_op`], [`IoCtx::read_op`]) for compound
//! operations applied atomically on one object. Every operation finds the
//! object's PG and chain with CRUSH, goes to the head (reads: to any chain
//! member), and is retried with the same request id across map changes
//! and OSD failures until its deadline.
//!
//! [`MonClient`] (from `shoal-monc`, re-exported) talks to the monitors:
//! typed admin commands with failover between monitors, and map
//! subscriptions.

#![deny(missing_docs)]

mod cluster;
mod error;
mod ioctx;
mod objecter;
mod ops;
mod placement;
mod session;
pub mod striper;

pub use cluster::Cluster;
pub use error::ClientError;
pub use ioctx::{IoCtx, ListCursor, ObjectPage};
pub use ops::{Output, ReadOp, ReadResult, WriteOp};
pub use session::ClientOptions;
pub use shoal_monc::{MonClient, MonClientOptions, MonError};
pub use shoal_proto::osd::{ObjVersion, OsdErrorCode, XattrCmp};
pub use striper::{ObjectStat, StripedReader, StripedWriter};
