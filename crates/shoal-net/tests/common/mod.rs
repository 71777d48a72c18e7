//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use shoal_net::{ClusterCa, Endpoint, EndpointConfig, Frame, NodeIdentity, PeerInfo};

/// Message type of the echo service.
pub const ECHO: u16 = 100;
/// Message type the echo service answers with.
pub const ECHO_REPLY: u16 = 101;

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A loopback address with an OS-chosen port.
pub fn lo(host: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, host], 0))
}

/// A CA for cluster `name` and a function issuing identities from it.
pub fn cluster(name: &str) -> ClusterCa {
    ClusterCa::generate(name).expect("generate CA")
}

/// The echo service: the response carries the request's body and payload.
pub async fn echo(_peer: PeerInfo, req: Frame) -> Frame {
    Frame {
        msg_type: ECHO_REPLY,
        body: req.body,
        payload: req.payload,
    }
}

/// Starts an echo server for `id` on `addr` with `config` tweaks.
pub fn echo_server_with(id: NodeIdentity, config: EndpointConfig) -> Endpoint {
    Endpoint::builder(id, config)
        .request_handler(echo)
        .bind()
        .expect("bind echo server")
}

/// Starts an echo server on the address a previous instance used, waiting
/// (up to 5 s) for the old socket to be released by its driver task.
pub async fn echo_server_again(id: NodeIdentity, config: EndpointConfig) -> Endpoint {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Endpoint::builder(id.clone(), config.clone())
            .request_handler(echo)
            .bind()
        {
            Ok(ep) => return ep,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "address still in use");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("rebind {}: {e}", config.bind),
        }
    }
}

/// Starts an echo server for `id` on `addr`.
pub fn echo_server(id: NodeIdentity, addr: SocketAddr) -> Endpoint {
    echo_server_with(id, EndpointConfig::new(addr))
}

/// A client-only endpoint.
pub fn client(id: NodeIdentity, addr: SocketAddr) -> Endpoint {
    Endpoint::builder(id, EndpointConfig::client(addr))
        .bind()
        .expect("bind client")
}

/// A payload of `len` pseudo-random bytes.
pub fn payload(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Polls `cond` until it holds or `limit` passes; panics with `what` then.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
