//! Ordered one-way streams (replication links).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use shoal_net::{Endpoint, EndpointConfig, Frame, InboundStream, PeerAddr};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

/// What the receiving side saw: (peer, topic, sequence number or end marker, payload digest).
type Seen = (String, String, Option<u64>, [u8; 32]);

fn receiver(host: u8, ca: &shoal_net::ClusterCa) -> (Endpoint, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ep = Endpoint::builder(ca.issue("osd.2").unwrap(), EndpointConfig::new(lo(host)))
        .stream_handler(move |mut stream: InboundStream| {
            let tx = tx.clone();
            async move {
                loop {
                    match stream.next_frame().await {
                        Ok(Some(f)) => {
                            let seq = u64::from_le_bytes(f.body[..8].try_into().unwrap());
                            let digest = *blake3::hash(&f.payload).as_bytes();
                            let _ = tx.send((
                                stream.peer.name.clone(),
                                stream.topic.clone(),
                                Some(seq),
                                digest,
                            ));
                        }
                        Ok(None) => {
                            let _ = tx.send((
                                stream.peer.name.clone(),
                                stream.topic.clone(),
                                None,
                                [0; 32],
                            ));
                            return;
                        }
                        Err(e) => panic!("stream error: {e}"),
                    }
                }
            }
        })
        .bind()
        .unwrap();
    (ep, rx)
}

fn frame(seq: u64) -> Frame {
    // Every 100th frame carries a 64 KiB payload, the rest small ones.
    let len = if seq % 100 == 0 {
        64 << 10
    } else {
        (seq % 7) as usize
    };
    Frame::new(200, Bytes::copy_from_slice(&seq.to_le_bytes())).with_payload(payload(len, seq))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_stream_delivers_1000_frames_in_order_per_topic() {
    init_tracing();
    let ca = cluster("alpha");
    let (server, mut seen) = receiver(41, &ca);
    let sender = Endpoint::builder(ca.issue("osd.1").unwrap(), EndpointConfig::new(lo(42)))
        .bind()
        .unwrap();
    let peer = PeerAddr::named("osd.2", server.local_addr());
    // Two topics interleaved, sent from concurrent tasks.
    let mut tasks = Vec::new();
    for topic in ["pg.1.2f", "pg.1.30"] {
        let sender = sender.clone();
        let peer = peer.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..1000 {
                sender
                    .send_oneway(&peer, topic, &frame(seq), T)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut next = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + T;
    while next.values().filter(|&&n| n == 1000).count() < 2 {
        let (peer, topic, seq, digest) = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .expect("all frames within the deadline")
            .unwrap();
        assert_eq!(peer, "osd.1");
        let seq = seq.expect("no stream end");
        let expected = next.entry(topic.clone()).or_insert(0u64);
        assert_eq!(seq, *expected, "topic {topic}: out of order");
        assert_eq!(&digest, blake3::hash(&frame(seq).payload).as_bytes());
        *expected += 1;
    }
    // One long-lived stream per topic, on one connection.
    assert_eq!(server.stats().streams_accepted, 2);
    assert_eq!(sender.stats().connections_opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_stream_finish_is_seen_after_last_frame() {
    init_tracing();
    let ca = cluster("alpha");
    let (server, mut seen) = receiver(43, &ca);
    let sender = client(ca.issue("client.admin").unwrap(), lo(44));
    let peer = PeerAddr::named("osd.2", server.local_addr());
    let mut stream = sender.open_oneway(&peer, "log", T).await.unwrap();
    assert_eq!(stream.topic(), "log");
    assert_eq!(stream.peer().name, "osd.2");
    for seq in 0..10 {
        stream.send(&frame(seq)).await.unwrap();
    }
    stream.finish().unwrap();
    for seq in 0..10 {
        let got = tokio::time::timeout(T, seen.recv()).await.unwrap().unwrap();
        assert_eq!((got.1.as_str(), got.2), ("log", Some(seq)));
    }
    let end = tokio::time::timeout(T, seen.recv()).await.unwrap().unwrap();
    assert_eq!(end.2, None);
}
