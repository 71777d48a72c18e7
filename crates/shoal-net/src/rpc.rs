//! Request/response on bidirectional streams, and the application handlers.
//!
//! A request is one bidirectional stream: the client writes one frame and
//! finishes its side, the server's [`RequestHandler`] turns it into one
//! response frame, written back before the server finishes its side.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use quinn::VarInt;

use crate::error::{NetError, Result};
use crate::frame::Frame;
use crate::peer::PeerInfo;
use crate::shared::Shared;
use crate::stream::{CODE_BAD_FRAME, InboundStream, write_frame};

/// Stream error code: this endpoint serves no requests or one-way streams.
pub const CODE_UNSUPPORTED: VarInt = VarInt::from_u32(3);

/// How long a peer may take to announce a one-way stream's topic.
const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer may take to send a whole request (the largest frame
/// takes well under a second on any link a cluster runs on): a peer that
/// opens streams and stalls does not hold them, and their buffers, forever.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-request settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestOptions {
    /// The whole request (connecting included) must finish within this.
    pub timeout: Duration,
    /// Stream priority: higher is sent first when the connection is busy
    /// (heartbeats and map traffic above bulk data).
    pub priority: i32,
}

impl RequestOptions {
    /// Options with `timeout` and normal priority.
    pub fn timeout(timeout: Duration) -> Self {
        RequestOptions {
            timeout,
            priority: 0,
        }
    }
}

/// Sends `request` on a new stream of `conn` and reads the response (no
/// deadline here: callers wrap it).
pub(crate) async fn call(
    conn: &quinn::Connection,
    shared: &Shared,
    request: &Frame,
    priority: i32,
) -> Result<Frame> {
    let (mut send, recv) = conn.open_bi().await.map_err(NetError::from)?;
    if priority != 0 {
        let _ = send.set_priority(priority);
    }
    write_frame(&mut send, request).await?;
    send.finish()?;
    let mut reader = shared.reader(recv);
    reader.single_frame().await
}

/// Serves one request stream.
pub(crate) async fn serve_request(
    shared: Arc<Shared>,
    peer: PeerInfo,
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let Some(handler) = shared.request_handler.clone() else {
        let _ = send.reset(CODE_UNSUPPORTED);
        return;
    };
    let mut reader = shared.reader(recv);
    let read = tokio::time::timeout(REQUEST_READ_TIMEOUT, reader.single_frame()).await;
    let request = match read.unwrap_or(Err(NetError::Timeout(REQUEST_READ_TIMEOUT))) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::debug!(peer = %peer.name, error = %e, "request not read");
            let code = match e {
                NetError::Frame(_) => CODE_BAD_FRAME,
                _ => VarInt::from_u32(0),
            };
            let _ = send.reset(code);
            return;
        }
    };
    let response = handler.call(peer.clone(), request).await;
    match write_frame(&mut send, &response).await {
        Ok(()) => {
            let _ = send.finish();
            shared.stats.requests_served.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => tracing::debug!(peer = %peer.name, error = %e, "response not sent"),
    }
}

/// Serves one incoming one-way stream.
pub(crate) async fn serve_stream(shared: Arc<Shared>, peer: PeerInfo, mut recv: quinn::RecvStream) {
    let Some(handler) = shared.stream_handler.clone() else {
        let _ = recv.stop(CODE_UNSUPPORTED);
        return;
    };
    let reader = shared.reader(recv);
    match tokio::time::timeout(
        STREAM_OPEN_TIMEOUT,
        InboundStream::accept(reader, peer.clone()),
    )
    .await
    {
        Ok(Ok(stream)) => {
            shared
                .stats
                .streams_accepted
                .fetch_add(1, Ordering::Relaxed);
            handler.call(stream).await;
        }
        Ok(Err(e)) => tracing::debug!(peer = %peer.name, error = %e, "one-way stream refused"),
        Err(_) => tracing::debug!(peer = %peer.name, "one-way stream never announced its topic"),
    }
}
