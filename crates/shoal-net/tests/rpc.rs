//! Requests and responses: payload sizes, deadlines, connection reuse,
//! reconnection, concurrency.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use shoal_net::{Endpoint, EndpointConfig, FaultInjector, Frame, NetError, PeerAddr, PeerInfo};

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_payload_sizes_with_checksums() {
    init_tracing();
    let ca = cluster("alpha");
    // The server checks what it received and returns a blake3 of it plus
    // its own payload, derived from the request.
    let server = Endpoint::builder(ca.issue("osd.1").unwrap(), EndpointConfig::new(lo(31)))
        .request_handler(|_peer: PeerInfo, req: Frame| async move {
            let digest = blake3::hash(&req.payload);
            let reply: Vec<u8> = req.payload.iter().rev().copied().collect();
            Frame::new(ECHO_REPLY, Bytes::copy_from_slice(digest.as_bytes()))
                .with_payload(reply.into())
        })
        .bind()
        .unwrap();
    let client = client(ca.issue("client.admin").unwrap(), lo(32));
    let peer = PeerAddr::named("osd.1", server.local_addr());
    for (i, len) in [0usize, 1, 4 << 20].into_iter().enumerate() {
        let data = payload(len, i as u64);
        let req = Frame::new(ECHO, Bytes::from_static(b"put")).with_payload(data.clone());
        let resp = client.request(&peer, &req, T).await.unwrap();
        assert_eq!(resp.msg_type, ECHO_REPLY);
        assert_eq!(&resp.body[..], blake3::hash(&data).as_bytes(), "len {len}");
        let expect: Vec<u8> = data.iter().rev().copied().collect();
        assert_eq!(
            blake3::hash(&resp.payload),
            blake3::hash(&expect),
            "len {len}"
        );
        assert_eq!(resp.payload.len(), len);
    }
    // One cached connection served all three.
    assert_eq!(client.stats().connections_opened, 1);
    assert_eq!(server.stats().connections_accepted, 1);
    wait_until(T, "server counts 3 requests", || async {
        server.stats().requests_served == 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_connection() {
    init_tracing();
    let ca = cluster("alpha");
    let server = echo_server(ca.issue("osd.1").unwrap(), lo(33));
    let client = client(ca.issue("client.admin").unwrap(), lo(34));
    let peer = PeerAddr::named("osd.1", server.local_addr());
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let client = client.clone();
        let peer = peer.clone();
        tasks.push(tokio::spawn(async move {
            let data = payload(1000 + i as usize, i);
            let resp = client
                .request(
                    &peer,
                    &Frame::new(ECHO, Bytes::new()).with_payload(data.clone()),
                    T,
                )
                .await
                .unwrap();
            assert_eq!(resp.payload, data);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(client.stats().connections_opened, 1);
    wait_until(T, "server counts 64 requests", || async {
        server.stats().requests_served == 64
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_expires_with_timeout_error() {
    init_tracing();
    let ca = cluster("alpha");
    // A handler that never answers type 1000 (waits on a notification that
    // never comes), and echoes everything else.
    let never = Arc::new(tokio::sync::Notify::new());
    let server = Endpoint::builder(ca.issue("osd.1").unwrap(), EndpointConfig::new(lo(35)))
        .request_handler(move |peer: PeerInfo, req: Frame| {
            let never = never.clone();
            async move {
                if req.msg_type == 1000 {
                    never.notified().await;
                }
                echo(peer, req).await
            }
        })
        .bind()
        .unwrap();
    let client = client(ca.issue("client.admin").unwrap(), lo(36));
    let peer = PeerAddr::named("osd.1", server.local_addr());

    let start = tokio::time::Instant::now();
    let err = client
        .request(
            &peer,
            &Frame::new(1000, Bytes::new()),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, NetError::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // The connection is still good for other requests.
    let ok = client
        .request(&peer, &Frame::new(ECHO, Bytes::from_static(b"x")), T)
        .await
        .unwrap();
    assert_eq!(&ok.body[..], b"x");

    // Nobody listening: connecting is retried with backoff until the deadline.
    let dead = PeerAddr::named("osd.9", SocketAddr::from(([127, 0, 0, 37], 9)));
    let err = client
        .request(
            &dead,
            &Frame::new(ECHO, Bytes::new()),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_server_restart_on_same_address() {
    init_tracing();
    let ca = cluster("alpha");
    let id = ca.issue("osd.1").unwrap();
    let faults = FaultInjector::new();
    let server_config = |addr| EndpointConfig::new(addr).with_fault(faults.clone());
    let server = echo_server_with(id.clone(), server_config(lo(38)));
    let addr = server.local_addr();
    let client = Endpoint::builder(
        ca.issue("client.admin").unwrap(),
        EndpointConfig::client(lo(39)).with_fault(faults.clone()),
    )
    .bind()
    .unwrap();
    let peer = PeerAddr::named("osd.1", addr);
    let req = Frame::new(ECHO, Bytes::from_static(b"ping"));
    client.request(&peer, &req, T).await.unwrap();

    // Orderly stop and start again on the same address: the client
    // notices the closed connection and reconnects by itself.
    server.close();
    server.wait_idle().await;
    drop(server);
    let server = echo_server_again(id.clone(), server_config(addr)).await;
    assert_eq!(server.local_addr(), addr);
    let resp = client.request(&peer, &req, T).await.unwrap();
    assert_eq!(&resp.body[..], b"ping");
    assert_eq!(client.stats().connections_opened, 2);

    // A crash: the server vanishes without its close reaching the client
    // (a partition swallows it), then restarts. The new instance answers
    // the old connection's packets with a stateless reset (same derived
    // key), so the client recovers well before the 10 s idle timeout.
    faults.partition("osd.1", "client.admin");
    drop(server);
    let server = echo_server_again(id.clone(), server_config(addr)).await;
    faults.heal("osd.1", "client.admin");
    let start = tokio::time::Instant::now();
    let mut served = None;
    while start.elapsed() < T {
        match client.request(&peer, &req, Duration::from_secs(2)).await {
            Ok(resp) => {
                served = Some(resp);
                break;
            }
            Err(e) => tracing::info!(error = %e, "request during restart failed"),
        }
    }
    assert_eq!(&served.expect("served after restart").body[..], b"ping");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.stats().connections_opened, 3);
    wait_until(T, "the new instance counts the request", || async {
        server.stats().requests_served == 1
    })
    .await;

    // Stopped for good: requests fail (connection refused or deadline).
    server.close();
    let err = client
        .request(&peer, &req, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        err.is_timeout() || matches!(err, NetError::Connection(_)),
        "{err:?}"
    );
}
