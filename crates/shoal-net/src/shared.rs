//! What an endpoint's background tasks share: its name, frame limits,
//! handlers and activity counters.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::frame::FrameLimits;
use crate::handler::{DynRequestHandler, DynStreamHandler};
use crate::stream::FrameReader;

/// Counters of an endpoint's activity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Incoming connections that completed the handshake.
    pub connections_accepted: u64,
    /// Incoming connections refused at the handshake (bad or missing certificate).
    pub handshake_failures: u64,
    /// Outgoing connections established.
    pub connections_opened: u64,
    /// Requests answered.
    pub requests_served: u64,
    /// One-way streams handed to the stream handler.
    pub streams_accepted: u64,
    /// Malformed or oversized frames received (each closed its stream).
    pub frame_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) connections_opened: AtomicU64,
    pub(crate) requests_served: AtomicU64,
    pub(crate) streams_accepted: AtomicU64,
    pub(crate) frame_errors: Arc<AtomicU64>,
}

/// What background tasks share (never the endpoint itself, so dropping the
/// last [`crate::Endpoint`] handle shuts everything down).
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) limits: FrameLimits,
    pub(crate) request_handler: Option<Arc<dyn DynRequestHandler>>,
    pub(crate) stream_handler: Option<Arc<dyn DynStreamHandler>>,
    pub(crate) stats: Counters,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn reader(&self, recv: quinn::RecvStream) -> FrameReader {
        FrameReader::new(recv, self.limits).with_error_counter(self.stats.frame_errors.clone())
    }

    pub(crate) fn serves(&self) -> bool {
        self.request_handler.is_some() || self.stream_handler.is_some()
    }
}
