//! Authenticated connections and peer addressing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use quinn::{ConnectionError, VarInt};

use crate::error::{NetError, Result};
use crate::frame::Frame;
use crate::peer::PeerInfo;
use crate::rpc::{self, RequestOptions};
use crate::shared::Shared;
use crate::stream::OnewaySender;

/// Connection close code: orderly shutdown.
pub(crate) const CLOSE_SHUTDOWN: VarInt = VarInt::from_u32(0);
/// Connection close code: the peer certificate names no valid identity.
pub(crate) const CLOSE_BAD_IDENTITY: VarInt = VarInt::from_u32(1);

/// Maps a connection error, recognising certificate refusals (TLS alerts
/// travel as QUIC crypto errors 0x100-0x1ff).
pub(crate) fn classify(e: ConnectionError) -> NetError {
    let crypto = |code: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(code));
    match &e {
        ConnectionError::TransportError(t) if crypto(t.code) => {
            NetError::HandshakeRefused(e.to_string())
        }
        ConnectionError::ConnectionClosed(c) if crypto(c.error_code) => {
            NetError::HandshakeRefused(e.to_string())
        }
        _ => NetError::Connection(e),
    }
}

pub(crate) fn refine(e: NetError) -> NetError {
    match e {
        NetError::Connection(c)
        | NetError::Write(quinn::WriteError::ConnectionLost(c))
        | NetError::Read(quinn::ReadError::ConnectionLost(c)) => classify(c),
        other => other,
    }
}

/// An authenticated connection to a peer.
#[derive(Clone)]
pub struct Connection {
    pub(crate) conn: quinn::Connection,
    pub(crate) peer: PeerInfo,
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("id", &self.conn.stable_id())
            .finish()
    }
}

impl Connection {
    /// The authenticated peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// The peer's identity name.
    pub fn peer_name(&self) -> &str {
        &self.peer.name
    }

    /// True once the connection is closed or lost.
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    /// Current round-trip time estimate.
    pub fn rtt(&self) -> Duration {
        self.conn.rtt()
    }

    /// The underlying quinn connection (statistics, raw streams in tests).
    pub fn quinn(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Sends a request and waits for its response, within `opts.timeout`.
    pub async fn request_with(&self, request: &Frame, opts: RequestOptions) -> Result<Frame> {
        tokio::time::timeout(
            opts.timeout,
            rpc::call(&self.conn, &self.shared, request, opts.priority),
        )
        .await
        .map_err(|_| NetError::Timeout(opts.timeout))?
        .map_err(refine)
    }

    /// Sends a request and waits for its response, within `timeout`.
    pub async fn request(&self, request: &Frame, timeout: Duration) -> Result<Frame> {
        self.request_with(request, RequestOptions::timeout(timeout))
            .await
    }

    /// Opens an ordered one-way stream for `topic`.
    pub async fn open_oneway(&self, topic: &str) -> Result<OnewaySender> {
        OnewaySender::open(&self.conn, topic, self.peer.clone())
            .await
            .map_err(refine)
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close(CLOSE_SHUTDOWN, b"closed");
    }
}

pub(crate) fn is_refusal(e: &ConnectionError) -> bool {
    matches!(classify(e.clone()), NetError::HandshakeRefused(_))
}
