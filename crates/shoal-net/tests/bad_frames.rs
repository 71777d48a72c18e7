//! Malformed and oversized frames close their stream, never the endpoint.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use shoal_net::frame::{FrameHeader, MAGIC, PROTOCOL_VERSION};
use shoal_net::stream::CODE_BAD_FRAME;
use shoal_net::{
    Endpoint, EndpointConfig, Frame, FrameError, FrameLimits, InboundStream, NetError, PeerAddr,
};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

fn small_limits() -> FrameLimits {
    FrameLimits {
        max_body: 1024,
        max_payload: 64 << 10,
    }
}

/// Sends raw bytes as a request and returns how the server answered.
async fn raw_request(
    conn: &quinn::Connection,
    bytes: &[u8],
) -> Result<Vec<u8>, quinn::ReadToEndError> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    // The server may stop the stream before we are done writing: fine.
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    recv.read_to_end(1 << 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_frames_close_only_their_stream() {
    init_tracing();
    let ca = cluster("alpha");
    let mut config = EndpointConfig::new(lo(51));
    config.limits = small_limits();
    let server = echo_server_with(ca.issue("osd.1").unwrap(), config);
    let client = client(ca.issue("client.admin").unwrap(), lo(52));
    let peer = PeerAddr::named("osd.1", server.local_addr());
    let conn = client.connection(&peer, T).await.unwrap();

    let header = |body: u32, payload: u32| {
        FrameHeader {
            version: PROTOCOL_VERSION,
            msg_type: ECHO,
            body_len: body,
            payload_len: payload,
        }
        .encode()
        .to_vec()
    };
    let valid = Frame::new(ECHO, Bytes::from_static(b"ok"))
        .to_vec()
        .unwrap();
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"extra");
    let mut wrong_version = valid.clone();
    wrong_version[4..6].copy_from_slice(&7u16.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"this is not a shoal frame at all".to_vec()),
        ("body over the limit", header(1025, 0)),
        (
            "payload over the limit",
            [header(0, 1 << 30), vec![0; 100]].concat(),
        ),
        ("trailing bytes", trailing),
        ("truncated", valid[..valid.len() - 1].to_vec()),
        ("wrong version", wrong_version),
        ("empty stream", Vec::new()),
        ("magic only", MAGIC.to_vec()),
    ];
    for (i, (what, bytes)) in cases.iter().enumerate() {
        // A good request in flight on the same connection at the same time.
        let good_frame = Frame::new(ECHO, Bytes::from(format!("good {i}")));
        let good = conn.request(&good_frame, T);
        let (bad, good) = tokio::join!(raw_request(conn.quinn(), bytes), good);
        match bad {
            Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
                assert!(
                    code == CODE_BAD_FRAME || code.into_inner() == 0,
                    "{what}: code {code}"
                )
            }
            other => panic!("{what}: expected a stream reset, got {other:?}"),
        }
        assert_eq!(
            good.unwrap().body,
            Bytes::from(format!("good {i}")),
            "{what}"
        );
    }
    // Same connection, still serving; every bad frame was counted.
    assert!(!conn.is_closed());
    let ok = conn
        .request(&Frame::new(ECHO, Bytes::from_static(b"after")), T)
        .await
        .unwrap();
    assert_eq!(&ok.body[..], b"after");
    assert_eq!(server.stats().frame_errors, cases.len() as u64 - 1); // the empty stream is no frame
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_response_is_an_error_for_the_caller() {
    init_tracing();
    let ca = cluster("alpha");
    let server = echo_server(ca.issue("osd.1").unwrap(), lo(53));
    let mut config = EndpointConfig::client(lo(54));
    config.limits = small_limits();
    let client = Endpoint::builder(ca.issue("client.admin").unwrap(), config)
        .bind()
        .unwrap();
    let peer = PeerAddr::named("osd.1", server.local_addr());
    let big = Frame::new(ECHO, Bytes::new()).with_payload(payload(128 << 10, 1));
    let err = client.request(&peer, &big, T).await.unwrap_err();
    assert!(
        matches!(err, NetError::Frame(FrameError::PayloadTooLarge { len, max }) if len == 128 << 10 && max == 64 << 10),
        "{err:?}"
    );
    assert_eq!(client.stats().frame_errors, 1);
    // The next request on the same connection works.
    let small = Frame::new(ECHO, Bytes::new()).with_payload(payload(1000, 2));
    assert_eq!(
        client.request(&peer, &small, T).await.unwrap().payload,
        small.payload
    );
    assert_eq!(client.stats().connections_opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frame_on_oneway_stream_reaches_the_handler() {
    init_tracing();
    let ca = cluster("alpha");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut config = EndpointConfig::new(lo(55));
    config.limits = small_limits();
    let server = Endpoint::builder(ca.issue("osd.2").unwrap(), config)
        .stream_handler(move |mut s: InboundStream| {
            let tx = tx.clone();
            async move {
                loop {
                    let r = s.next_frame().await;
                    let done = !matches!(r, Ok(Some(_)));
                    let _ = tx.send((s.topic.clone(), r.map(|f| f.map(|f| f.body))));
                    if done {
                        return;
                    }
                }
            }
        })
        .bind()
        .unwrap();
    let client = client(ca.issue("osd.1").unwrap(), lo(56));
    let peer = PeerAddr::named("osd.2", server.local_addr());
    let conn = client.connection(&peer, T).await.unwrap();
    let mut stream = conn.open_oneway("pg.1.0").await.unwrap();
    stream
        .send(&Frame::new(300, Bytes::from_static(b"first")))
        .await
        .unwrap();
    // Oversized: the receiver closes this stream.
    let _ = stream
        .send(&Frame::new(300, Bytes::new()).with_payload(payload(1 << 20, 3)))
        .await;
    let (topic, first) = tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
    assert_eq!(topic, "pg.1.0");
    assert_eq!(first.unwrap().unwrap(), Bytes::from_static(b"first"));
    let (_, second) = tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
    assert!(
        matches!(
            second,
            Err(NetError::Frame(FrameError::PayloadTooLarge { .. }))
        ),
        "{second:?}"
    );
    // Other streams on the connection still work.
    let mut again = conn.open_oneway("pg.1.1").await.unwrap();
    again
        .send(&Frame::new(300, Bytes::from_static(b"fine")))
        .await
        .unwrap();
    let (topic, third) = tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
    assert_eq!(
        (topic.as_str(), third.unwrap().unwrap()),
        ("pg.1.1", Bytes::from_static(b"fine"))
    );
    assert_eq!(server.stats().frame_errors, 1);
}
