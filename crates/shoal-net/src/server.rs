//! The serving side: accepting connections and the streams peers open.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::connection::CLOSE_BAD_IDENTITY;
use crate::peer::{PeerInfo, peer_of};
use crate::rpc;
use crate::shared::Shared;

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
