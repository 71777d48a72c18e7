//! Errors of the OSD daemon's setup and lifecycle (request failures are
//! answers, not errors: see [`crate::exec::OpError`]).

use thiserror::Error;

/// Why the OSD could not start or continue.
#[derive(Debug, Error)]
pub enum OsdError {
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] shoal_store::StoreError),
    /// The transport failed.
    #[error("network: {0}")]
    Net(#[from] shoal_net::NetError),
    /// The monitors refused or could not be reached.
    #[error("monitors: {0}")]
    Mon(#[from] shoal_monc::MonError),
    /// The OSD's files are not what `--mkfs` made.
    #[error("{0}")]
    Setup(String),
}
