//! What can go wrong talking to the monitors.

use std::time::Duration;

use shoal_proto::mon::CommandError;
use thiserror::Error;

/// Why a monitor command or subscription failed.
#[derive(Debug, Error)]
pub enum MonError {
    /// The configuration or identity could not be loaded.
    #[error("configuration: {0}")]
    Config(String),
    /// The transport failed (certificates, binding, a refused handshake).
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
}
