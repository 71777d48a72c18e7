//! Requests to other OSDs: calls with their deadline and priority, the
//! [`PeerAck`] convention, pulls and pushes of whole objects, heartbeats.

use std::time::Duration;

use shoal_net::Frame;
use shoal_proto::msg;
use shoal_proto::osd::PgRef;
use shoal_proto::rep::{PeerAck, PgPush, Ping};

use crate::context::Osd;
use crate::exec::{OpError, internal, unavailable};
use crate::pglog::collection;

/// Sends a peer request and returns the answer frame (a transport
/// failure or a timeout is [`OsdErrorCode::Unavailable`]).
pub async fn call(osd: &Osd, to: i32, frame: &Frame) -> Result<Frame, OpError> {
    call_with(osd, to, frame, 0).await
}

/// Stream priority of copies made in the background (recovery and
/// backfill pushes): the chain's client writes to the same OSD share the
/// connection and go first.
pub const BACKGROUND: i32 = -10;

async fn call_with(osd: &Osd, to: i32, frame: &Frame, priority: i32) -> Result<Frame, OpError> {
    let addr = osd
        .peer_addr(to)
        .ok_or_else(|| unavailable(format!("osd.{to} has no address")))?;
    let endpoint = osd
        .endpoint()
        .ok_or_else(|| unavailable("no endpoint yet"))?;
    let opts = shoal_net::RequestOptions {
        timeout: osd.opts.peer_timeout,
        priority,
    };
    let reply = endpoint
        .request_with(&addr, frame, opts)
        .await
        .map_err(|e| unavailable(format!("osd.{to}: {e}")))?;
    osd.heard_from(to);
    Ok(reply)
}

/// Sends a peer request answered by a [`PeerAck`]; its refusal is ours.
pub async fn call_ack_with(
    osd: &Osd,
    to: i32,
    frame: &Frame,
    priority: i32,
) -> Result<(), OpError> {
    let reply = call_with(osd, to, frame, priority).await?;
    let ack: PeerAck = reply
        .decode_body()
        .map_err(|e| unavailable(format!("osd.{to}'s answer: {e}")))?;
    match ack.error {
        None => Ok(()),
        Some(e) => Err(e.from_osd(to).into()),
    }
}

/// A `PG_PUSH` of object `name`'s whole state (read off the async
/// threads), for a push by the head or the answer to a member's pull.
pub async fn push_frame(
    osd: &Osd,
    pg: PgRef,
    interval: u32,
    name: &str,
    repair: bool,
) -> Result<Frame, OpError> {
    let (store, coll, n) = (osd.store.clone(), collection(pg), name.to_string());
    let s = tokio::task::spawn_blocking(move || crate::pgstore::object_state(&store, &coll, &n))
        .await
        .map_err(internal)??;
    let body = PgPush {
        epoch: osd.map().epoch(),
        pg,
        interval,
        object: name.to_string(),
        version: s.version,
        state: s.state,
        repair,
        sums: s.sums,
    };
    Ok(Frame::encode(msg::PG_PUSH, &body)
        .map_err(internal)?
        .with_payload(s.data))
}

/// One heartbeat to `peer`.
pub async fn ping(osd: &Osd, peer: i32) {
    let Ok(frame) = Frame::encode(
        msg::OSD_PING,
        &Ping {
            epoch: osd.map().epoch(),
            full: osd.space.is_full(),
        },
    ) else {
        return;
    };
    let (Some(addr), Some(endpoint)) = (osd.peer_addr(peer), osd.endpoint()) else {
        return;
    };
    let timeout = osd.opts.heartbeat_interval.max(Duration::from_millis(200));
    let opts = shoal_net::RequestOptions {
        timeout,
        priority: 10,
    };
    let sent = std::time::Instant::now();
    if let Ok(reply) = endpoint.request_with(&addr, &frame, opts).await
        && reply.msg_type == msg::OSD_PONG
    {
        osd.heard_from(peer);
        if let Ok(pong) = reply.decode_body::<Ping>() {
            osd.space.note_peer(peer, pong.full);
            osd.leases.answered(peer, sent, pong.epoch);
        }
    }
}
