//! Wire modes: what crosses the network between two endpoints, seen by a
//! UDP relay between them. Object data is readable on the wire only when
//! both ends chose the `integrity` mode; any other pairing encrypts, and
//! every pairing works.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use shoal_net::{Endpoint, EndpointConfig, Frame, PeerAddr, WireMode};
use tokio::net::UdpSocket;

const T: Duration = Duration::from_secs(10);
const MARKER: &[u8] = b"<plain object data on the wire>";

/// Relays datagrams between one client and `server`, keeping a copy of
/// everything it forwards.
async fn relay(bind: SocketAddr, server: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let sock = UdpSocket::bind(bind).await.expect("bind relay");
    let addr = sock.local_addr().expect("relay address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        let mut client = None;
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            log.lock().unwrap().extend_from_slice(&buf[..n]);
            let to = if from == server {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                client = Some(from);
                server
            };
            let _ = sock.send_to(&buf[..n], to).await;
        }
    });
    (addr, seen)
}

fn config(bind: SocketAddr, accept: bool, mode: WireMode) -> EndpointConfig {
    let mut c = if accept {
        EndpointConfig::new(bind)
    } else {
        EndpointConfig::client(bind)
    };
    c.wire_mode = mode;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_is_plain_on_the_wire_only_when_both_ends_choose_integrity() {
    init_tracing();
    let ca = cluster("alpha");
    let modes = [WireMode::Secure, WireMode::Integrity];
    for (i, (client_mode, server_mode)) in modes
        .iter()
        .flat_map(|c| modes.iter().map(move |s| (*c, *s)))
        .enumerate()
    {
        let host = 60 + 3 * i as u8;
        let server = echo_server_with(
            ca.issue("osd.1").unwrap(),
            config(lo(host), true, server_mode),
        );
        let (via, seen) = relay(lo(host + 1), server.local_addr()).await;
        let client = Endpoint::builder(
            ca.issue("client.admin").unwrap(),
            config(lo(host + 2), false, client_mode),
        )
        .bind()
        .unwrap();
        let data: Bytes = MARKER.repeat(4000).into();
        let req = Frame::new(ECHO, Bytes::new()).with_payload(data.clone());
        let resp = client
            .request(&PeerAddr::named("osd.1", via), &req, T)
            .await
            .unwrap_or_else(|e| panic!("{client_mode:?} -> {server_mode:?}: {e}"));
        assert_eq!(resp.payload, data, "{client_mode:?} -> {server_mode:?}");
        let wire = seen.lock().unwrap().clone();
        assert!(
            wire.len() > data.len(),
            "the relay carried the request and reply"
        );
        let plain = wire.windows(MARKER.len()).any(|w| w == MARKER);
        let both = client_mode == WireMode::Integrity && server_mode == WireMode::Integrity;
        assert_eq!(plain, both, "{client_mode:?} -> {server_mode:?}");
    }
}

#[test]
fn wire_modes_parse_from_configuration_words() {
    assert_eq!("secure".parse::<WireMode>(), Ok(WireMode::Secure));
    assert_eq!("integrity".parse::<WireMode>(), Ok(WireMode::Integrity));
    assert!("crc".parse::<WireMode>().unwrap_err().contains("secure"));
}
