//! Fault injection: partitions, delays and loss between named endpoints.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use shoal_net::{Endpoint, EndpointConfig, FaultInjector, Frame, LinkFault, NetError, PeerAddr};
use tokio::time::Instant;

const T: Duration = Duration::from_secs(10);

struct Pair {
    faults: FaultInjector,
    server: Endpoint,
    client: Endpoint,
    peer: PeerAddr,
}

fn pair(host: u8) -> Pair {
    let ca = cluster("alpha");
    let faults = FaultInjector::new();
    let server = echo_server_with(
        ca.issue("osd.1").unwrap(),
        EndpointConfig::new(lo(host)).with_fault(faults.clone()),
    );
    let client = Endpoint::builder(
        ca.issue("osd.2").unwrap(),
        EndpointConfig::client(lo(host + 1)).with_fault(faults.clone()),
    )
    .bind()
    .unwrap();
    let peer = PeerAddr::named("osd.1", server.local_addr());
    Pair {
        faults,
        server,
        client,
        peer,
    }
}

async fn ping(p: &Pair, timeout: Duration) -> Result<Duration, NetError> {
    let start = Instant::now();
    let resp = p
        .client
        .request(
            &p.peer,
            &Frame::new(ECHO, Bytes::from_static(b"ping")),
            timeout,
        )
        .await?;
    assert_eq!(&resp.body[..], b"ping");
    Ok(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_blocks_requests_until_healed() {
    init_tracing();
    let p = pair(61);
    ping(&p, T).await.unwrap();

    p.faults.partition("osd.2", "osd.1");
    for _ in 0..3 {
        let err = ping(&p, Duration::from_millis(200)).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }
    assert!(p.faults.stats().dropped > 0);
    let served = p.server.stats().requests_served;

    p.faults.heal("osd.1", "osd.2");
    ping(&p, T).await.unwrap();
    // Same connection throughout: the partition was shorter than the idle timeout.
    assert_eq!(p.client.stats().connections_opened, 1);
    wait_until(T, "the request after healing is served", || async {
        p.server.stats().requests_served > served
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_from_the_start_fails_the_connection_attempts() {
    init_tracing();
    let p = pair(63);
    p.faults.partition("osd.1", "osd.2");
    let err = ping(&p, Duration::from_millis(300)).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(p.server.stats().connections_accepted, 0);
    p.faults.heal("osd.1", "osd.2");
    ping(&p, T).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_raises_latency() {
    init_tracing();
    let p = pair(65);
    ping(&p, T).await.unwrap();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut base = Vec::new();
    for _ in 0..10 {
        base.push(ping(&p, T).await.unwrap());
    }
    let delay = Duration::from_millis(25);
    p.faults.set_link_both(
        "osd.1",
        "osd.2",
        LinkFault {
            drop_probability: 0.0,
            delay,
        },
    );
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(ping(&p, T).await.unwrap());
    }
    let (base, slow) = (median(base), median(slow));
    // One round trip crosses the link twice.
    assert!(slow >= 2 * delay, "delayed median {slow:?} (base {base:?})");
    assert!(
        slow > base + delay,
        "delayed median {slow:?} (base {base:?})"
    );
    assert!(p.faults.stats().delayed > 0);

    p.faults.clear();
    let mut after = Vec::new();
    for _ in 0..10 {
        after.push(ping(&p, T).await.unwrap());
    }
    assert!(median(after) < 2 * delay, "latency back to normal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_causes_retransmits_but_requests_succeed() {
    init_tracing();
    let p = pair(67);
    ping(&p, T).await.unwrap();
    p.faults.set_link_both(
        "osd.1",
        "osd.2",
        LinkFault {
            drop_probability: 0.1,
            delay: Duration::ZERO,
        },
    );
    // Each request carries several datagrams each way (loopback's MTU is
    // about 64 KiB), so well over a hundred of the client's ack-eliciting
    // datagrams cross the lossy link: the chance that none is dropped (and so
    // none is retransmitted) is below one in a million. With single-datagram
    // requests it was about 4 %, and the assertion below failed in CI.
    for i in 0..30u64 {
        let data = payload(256 << 10, i);
        let resp = p
            .client
            .request(
                &p.peer,
                &Frame::new(ECHO, Bytes::new()).with_payload(data.clone()),
                T,
            )
            .await
            .unwrap();
        assert_eq!(blake3::hash(&resp.payload), blake3::hash(&data));
    }
    assert!(p.faults.stats().dropped > 0);
    let conn = p.client.connection(&p.peer, T).await.unwrap();
    let stats = conn.quinn().stats();
    assert!(stats.path.lost_packets > 0, "{:?}", stats.path);
    assert_eq!(p.client.stats().connections_opened, 1);
}
