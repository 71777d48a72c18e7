//! Shoal's client library.
//!
//! [`MonClient`] talks to the monitors: typed commands (the `shoal` CLI's
//! admin commands), with failover between monitors and safe retries, and
//! map subscriptions. The object API (pools, `IoCtx`, striping) builds on
//! it.

#![deny(missing_docs)]

mod error;
mod monc;

pub use error::ClientError;
pub use monc::{MonClient, MonClientOptions};
