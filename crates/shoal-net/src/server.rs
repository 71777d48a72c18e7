//! The serving side: accepting connections and the streams peers open.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::connection::{CLOSE_BAD_IDENTITY, PeerInfo, peer_of};
use crate::frame::FrameLimits;
use crate::rpc::{self, DynRequestHandler, DynStreamHandler};
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

pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match incoming.accept() {
                Ok(connecting) => connecting.await,
                Err(e) => Err(e),
            };
            let conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    shared
                        .stats
                        .handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(local = %shared.name, %remote, error = %e, "incoming connection refused");
                    return;
                }
            };
            let peer = match peer_of(&conn) {
                Ok(peer) => peer,
                Err(e) => {
                    shared
                        .stats
                        .handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(local = %shared.name, %remote, error = %e, "peer has no identity");
                    conn.close(CLOSE_BAD_IDENTITY, b"no identity");
                    return;
                }
            };
            shared
                .stats
                .connections_accepted
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(local = %shared.name, peer = %peer.name, %remote, "accepted");
            serve_connection(shared, conn, peer).await;
        });
    }
}

/// Accepts the streams a peer opens on `conn` until it closes.
pub(crate) async fn serve_connection(shared: Arc<Shared>, conn: quinn::Connection, peer: PeerInfo) {
    loop {
        tokio::select! {
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => {
                    tokio::spawn(rpc::serve_request(shared.clone(), peer.clone(), send, recv));
                }
                Err(e) => {
                    tracing::debug!(local = %shared.name, peer = %peer.name, error = %e, "connection ended");
                    break;
                }
            },
            uni = conn.accept_uni() => match uni {
                Ok(recv) => {
                    tokio::spawn(rpc::serve_stream(shared.clone(), peer.clone(), recv));
                }
                Err(e) => {
                    tracing::debug!(local = %shared.name, peer = %peer.name, error = %e, "connection ended");
                    break;
                }
            },
        }
    }
}
