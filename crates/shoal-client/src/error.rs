//! Client errors.

use std::time::Duration;

use shoal_proto::mon::CommandError;
use shoal_proto::osd::OsdErrorCode;
use thiserror::Error;

/// What can go wrong talking to the cluster.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The configuration or identity could not be loaded.
    #[error("configuration: {0}")]
    Config(String),
    /// The transport failed (certificates, binding).
    #[error(transparent)]
    Net(#[from] shoal_net::NetError),
    /// The monitors refused the command.
    #[error("{0}")]
    Command(CommandError),
    /// No monitor answered in time.
    #[error("no monitor answered within {timeout:?} (last error: {last})")]
    Unreachable {
        /// How long we tried.
        timeout: Duration,
        /// The last failure seen.
        last: String,
    },
    /// A map from the monitors did not decode.
    #[error(transparent)]
    Map(#[from] shoal_map::MapError),
    /// The monitor answered something unexpected.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// No pool of that name (or id) in the cluster map.
    #[error("no pool {0:?}")]
    NoSuchPool(String),
    /// The object does not exist.
    #[error("object {0:?} not found")]
    NotFound(String),
    /// An OSD refused or failed the operation (not retry-able).
    #[error("{object:?}: {code:?}: {message}")]
    Osd {
        /// The object.
        object: String,
        /// The OSD's error code.
        code: OsdErrorCode,
        /// Details from the OSD.
        message: String,
    },
    /// The operation did not finish before its deadline (it may or may not
    /// have been applied; retrying it is safe for whole-object writes).
    #[error("{object:?}: no answer within {timeout:?} (last: {last})")]
    Timeout {
        /// The object.
        object: String,
        /// The deadline.
        timeout: Duration,
        /// The last failure seen.
        last: String,
    },
    /// The caller's arguments are out of range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A striped object's metadata is unreadable.
    #[error("object {object:?}: {message}")]
    Corrupt {
        /// The object.
        object: String,
        /// What is wrong.
        message: String,
    },
    /// The object was replaced by another write while a pinned reader
    /// was reading it.
    #[error("object {0:?} was overwritten while being read")]
    Changed(String),
}

impl From<shoal_monc::MonError> for ClientError {
    fn from(e: shoal_monc::MonError) -> Self {
        use shoal_monc::MonError;
        match e {
            MonError::Config(m) => ClientError::Config(m),
            MonError::Net(e) => ClientError::Net(e),
            MonError::Command(e) => ClientError::Command(e),
            MonError::Unreachable { timeout, last } => ClientError::Unreachable { timeout, last },
            MonError::Map(e) => ClientError::Map(e),
            MonError::Protocol(m) => ClientError::Protocol(m),
        }
    }
}

impl ClientError {
    /// The OSD error code behind this error, if it came from an OSD.
    pub fn osd_code(&self) -> Option<OsdErrorCode> {
        match self {
            ClientError::Osd { code, .. } => Some(*code),
            ClientError::NotFound(_) => Some(OsdErrorCode::NotFound),
            _ => None,
        }
    }

    /// Whether the object did not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::NotFound(_))
    }
}
