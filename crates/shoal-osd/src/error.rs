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

/// A refused or failed request: the code the asker gets (what it may do
/// about it: retry, refresh its map, give up) and why, in words.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code:?}: {message}")]
pub struct OpError {
    /// What kind of failure.
    pub code: shoal_proto::osd::OsdErrorCode,
    /// Why, for people.
    pub message: String,
}

impl OpError {
    /// A failure of kind `code`.
    pub fn new(code: shoal_proto::osd::OsdErrorCode, message: impl Into<String>) -> Self {
        OpError {
            code,
            message: message.into(),
        }
    }
}

impl From<shoal_proto::rep::PeerError> for OpError {
    fn from(e: shoal_proto::rep::PeerError) -> Self {
        OpError::new(e.code, e.message)
    }
}

impl From<OpError> for shoal_proto::rep::PeerError {
    fn from(e: OpError) -> Self {
        shoal_proto::rep::PeerError {
            code: e.code,
            message: e.message,
        }
    }
}
