//! The asynchronous actions of the PG state machines, as the shard tasks
//! run them (`shard.rs`): requests to peers and their answers, pushes of
//! whole objects (read here, paced by the recovery limits when nobody
//! waits), lease renewals, probes of silent OSDs, backfill slots.

use std::collections::BTreeSet;
use std::sync::Arc;

use shoal_net::Frame;
use shoal_proto::msg;
use shoal_proto::osd::PgRef;
use shoal_proto::rep::{PeerAck, PgPush, PgQueryReply, PgScanReply, ScrubMapReply};
use tokio::sync::oneshot;

use crate::context::Osd;
use crate::exec::{OpError, unavailable};
use crate::pg::{OutRequest, PeerAnswer};
use crate::rpc;

/// Sends one of PG `pg`'s requests to OSD `to` and decodes the answer.
pub async fn request(
    osd: &Osd,
    pg: PgRef,
    to: i32,
    req: OutRequest,
) -> Result<PeerAnswer, OpError> {
    let epoch = osd.map().epoch();
    let frame = match req {
        OutRequest::Query(mut q) => {
            q.epoch = epoch;
            Frame::encode(msg::PG_QUERY, &q)
        }
        OutRequest::Pull(mut p) => {
            p.epoch = epoch;
            Frame::encode(msg::PG_PULL, &p)
        }
        OutRequest::Activate(mut a) => {
            a.epoch = epoch;
            Frame::encode(msg::PG_ACTIVATE, &a)
        }
        OutRequest::Scan(mut s) => {
            s.epoch = epoch;
            Frame::encode(msg::PG_SCAN, &s)
        }
        OutRequest::Backfill(mut b) => {
            b.epoch = epoch;
            Frame::encode(msg::PG_BACKFILL, &b)
        }
        OutRequest::ScrubMap(mut r) => {
            r.epoch = epoch;
            Frame::encode(msg::PG_SCRUB_MAP, &r)
        }
        OutRequest::Push {
            interval,
            object,
            repair,
            background,
        } => return push(osd, pg, to, interval, object, repair, background).await,
    }
    .map_err(crate::exec::internal)?;
    let reply = rpc::call(osd, to, &frame).await?;
    answer(osd, to, reply)
}

/// Decodes a peer's answer frame: a refusal ([`shoal_proto::rep::PeerAck`]
/// with an error) is an error whatever was asked.
fn answer(osd: &Osd, from: i32, reply: Frame) -> Result<PeerAnswer, OpError> {
    let bad = |e: &dyn std::fmt::Display| unavailable(format!("osd.{from}'s answer: {e}"));
    match reply.msg_type {
        msg::PEER_ACK => {
            let ack: PeerAck = reply.decode_body().map_err(|e| bad(&e))?;
            match ack.error {
                None => Ok(PeerAnswer::Ack),
                Some(e) => Err(e.from_osd(from).into()),
            }
        }
        msg::PG_QUERY_REPLY => Ok(PeerAnswer::Query(
            reply.decode_body::<PgQueryReply>().map_err(|e| bad(&e))?,
        )),
        msg::PG_PUSH => {
            let push: PgPush = reply.decode_body().map_err(|e| bad(&e))?;
            osd.recovery.record(reply.payload.len());
            Ok(PeerAnswer::Pulled {
                push,
                payload: reply.payload,
            })
        }
        msg::PG_SCAN_REPLY => Ok(PeerAnswer::Scan(
            reply.decode_body::<PgScanReply>().map_err(|e| bad(&e))?,
        )),
        msg::PG_SCRUB_MAP_REPLY => Ok(PeerAnswer::ScrubMap(
            reply.decode_body::<ScrubMapReply>().map_err(|e| bad(&e))?,
        )),
        other => Err(bad(&format!("unexpected message type {other}"))),
    }
}

/// Reads object `object` of PG `pg` here and pushes its whole state to
/// OSD `to`; a background push (recovery, backfill) waits for an object
/// slot and is paced by the recovery limits.
async fn push(
    osd: &Osd,
    pg: PgRef,
    to: i32,
    interval: u32,
    object: String,
    repair: bool,
    background: bool,
) -> Result<PeerAnswer, OpError> {
    let _slot = if background {
        osd.throttle.object_slot().await
    } else {
        None
    };
    let frame = rpc::push_frame(osd, pg, interval, &object, repair).await?;
    let bytes = frame.payload.len();
    let priority = if background { rpc::BACKGROUND } else { 0 };
    rpc::call_ack_with(osd, to, &frame, priority).await?;
    osd.recovery.record(bytes);
    if background {
        osd.throttle.pace(bytes).await;
    }
    Ok(PeerAnswer::Ack)
}

/// Pings `members` at once and waits for their answers (or deadlines):
/// their answers renew the read leases.
pub async fn renew_leases(osd: &Arc<Osd>, members: &[i32]) {
    let mut pings = tokio::task::JoinSet::new();
    for &m in members {
        let osd = osd.clone();
        pings.spawn(async move { rpc::ping(&osd, m).await });
    }
    while pings.join_next().await.is_some() {}
}

/// Of `osds`, those whose port refuses a probe (`lease::gone`).
pub async fn probe(osd: &Osd, osds: &BTreeSet<i32>) -> BTreeSet<i32> {
    let map = osd.map();
    let from = osd.opts.addr.ip();
    crate::lease::gone(from, &map, osds).await
}

/// Waits for one of the OSD's backfill slots, calls `granted`, and holds
/// the slot until `released` fires or its sender is dropped.
pub async fn hold_backfill_slot(
    osd: Arc<Osd>,
    released: oneshot::Receiver<()>,
    granted: impl FnOnce(),
) {
    let Some(_permit) = osd.throttle.backfill_slot().await else {
        return;
    };
    granted();
    let _ = released.await;
}
