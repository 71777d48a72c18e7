//! What the OSD answers: client ops and listings, peering and recovery
//! requests, heartbeats, and the replication streams.

use std::sync::Arc;

use bytes::Bytes;
use shoal_net::{Frame, InboundStream, PeerInfo, RequestHandler, StreamHandler};
use shoal_proto::msg;
use shoal_proto::osd::{
    ListResult, OpOutput, OpResult, OsdErrorCode, OsdReply, OsdRequest, PgDetailReply,
    PgDetailRequest, PgListReply, PgListRequest, PgRef, PgScrubReply, PgScrubRequest,
};
use shoal_proto::rep::{
    BackfillStep, LogOp, PeerAck, PgActivate, PgBackfill, PgPull, PgPush, PgQuery, PgQueryReply,
    PgScan, PgScanReply, Ping, RepAck, RepOp, ScrubMapReply, ScrubMapRequest,
};

use crate::context::Osd;
use crate::exec::{self, ObjectView, OpError, unavailable};
use crate::pg::{LocalWrite, Pg};
use shoal_proto::osd::ObjOp;

/// The OSD id of a peer identity (`osd.3` -> 3).
fn osd_id(peer: &PeerInfo) -> Option<i32> {
    peer.name.strip_prefix("osd.")?.parse().ok()
}

/// A reply frame, or (if it cannot be encoded, which only a bug causes)
/// an empty one of the same type, which the asker reports as undecodable.
fn or_empty(msg_type: u16, frame: shoal_net::Result<Frame>) -> Frame {
    frame.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a reply");
        Frame::new(msg_type, Bytes::new())
    })
}

/// Serves requests (client ops, peering, heartbeats).
pub struct RequestService(pub Arc<Osd>);

impl RequestHandler for RequestService {
    async fn handle(&self, peer: PeerInfo, request: Frame) -> Frame {
        let osd = &self.0;
        match request.msg_type {
            msg::OSD_OP => op(osd, &peer, request).await,
            msg::OSD_LIST => list(osd, &peer, &request).await,
            msg::PG_DETAIL => pg_detail(osd, &peer, &request).await,
            msg::PG_SCRUB => pg_scrub(osd, &peer, &request).await,
            msg::OSD_PING => {
                if let Some(id) = osd_id(&peer) {
                    osd.heard_from(id);
                    if let Ok(ping) = request.decode_body::<Ping>() {
                        osd.space.note_peer(id, ping.full);
                    }
                }
                or_empty(
                    msg::OSD_PONG,
                    Frame::encode(
                        msg::OSD_PONG,
                        &Ping {
                            epoch: osd.map().epoch(),
                            full: osd.space.is_full(),
                        },
                    ),
                )
            }
            t @ (msg::PG_QUERY
            | msg::PG_PULL
            | msg::PG_PUSH
            | msg::PG_ACTIVATE
            | msg::PG_SCAN
            | msg::PG_SCRUB_MAP
            | msg::PG_BACKFILL) => {
                let Some(from) = osd_id(&peer) else {
                    return peer_ack(osd, Err(format!("{} is not an OSD", peer.name)));
                };
                osd.heard_from(from);
                match t {
                    msg::PG_QUERY => pg_query(osd, &request, from).await,
                    msg::PG_PULL => pg_pull(osd, &request).await,
                    msg::PG_PUSH => peer_ack(osd, pg_push(osd, request).await),
                    msg::PG_SCAN => pg_scan(osd, &request).await,
                    msg::PG_SCRUB_MAP => pg_scrub_map(osd, &request).await,
                    msg::PG_BACKFILL => peer_ack(osd, pg_backfill(osd, &request).await),
                    _ => peer_ack(osd, pg_activate(osd, &request).await),
                }
            }
            msg::FAULT => peer_ack(osd, crate::faults::handle(osd, &peer, &request)),
            other => peer_ack(osd, Err(format!("unknown message type {other}"))),
        }
    }
}

fn peer_ack(osd: &Osd, result: Result<(), String>) -> Frame {
    or_empty(
        msg::PEER_ACK,
        Frame::encode(
            msg::PEER_ACK,
            &PeerAck {
                epoch: osd.map().epoch(),
                error: result.err().unwrap_or_default(),
            },
        ),
    )
}

fn reply(osd: &Osd, result: Result<OpResult, OpError>, payload: Bytes) -> Frame {
    let result = result.unwrap_or_else(|(code, message)| OpResult::Failed { code, message });
    or_empty(
        msg::OSD_REPLY,
        Frame::encode(
            msg::OSD_REPLY,
            &OsdReply {
                epoch: osd.map().epoch(),
                result,
            },
        ),
    )
    .with_payload(payload)
}

async fn op(osd: &Arc<Osd>, peer: &PeerInfo, request: Frame) -> Frame {
    let req: OsdRequest = match request.decode_body() {
        Ok(r) => r,
        Err(e) => {
            return reply(
                osd,
                Err((OsdErrorCode::Invalid, format!("bad request: {e}"))),
                Bytes::new(),
            );
        }
    };
    match serve_op(osd, peer, &req, request.payload).await {
        Ok((result, payload)) => reply(osd, Ok(result), payload),
        Err(e) => reply(osd, Err(e), Bytes::new()),
    }
}

/// Checks the client's epoch against this OSD's and the PG's.
fn check_epoch(osd: &Osd, pg: Option<&Pg>, epoch: u32) -> Result<(), OpError> {
    let mine = osd.map().epoch();
    if epoch > mine {
        return Err((
            OsdErrorCode::OsdBehind,
            format!("this OSD has epoch {mine}, the request {epoch}"),
        ));
    }
    let began = pg.map_or(0, |pg| pg.status().0.epoch);
    if epoch < began {
        return Err((
            OsdErrorCode::StaleEpoch,
            format!("the PG's chain changed in epoch {began}"),
        ));
    }
    Ok(())
}

/// PG `id` for a request sent with map `epoch`: the epochs agree and
/// this OSD has the PG.
fn current_pg(osd: &Osd, id: PgRef, epoch: u32) -> Result<Arc<Pg>, OpError> {
    let pg = osd.pg(id);
    check_epoch(osd, pg.as_deref(), epoch)?;
    pg.ok_or((
        OsdErrorCode::WrongOsd,
        "this OSD does not have the PG".into(),
    ))
}

async fn serve_op(
    osd: &Arc<Osd>,
    peer: &PeerInfo,
    req: &OsdRequest,
    payload: Bytes,
) -> Result<(OpResult, Bytes), OpError> {
    let write = exec::classify(req, payload.len() as u64)?;
    osd.auth.check(&osd.monc, &peer.name, write).await?;
    let pg = current_pg(osd, req.pg, req.epoch)?;
    pg.check_serving(write, req.balance_reads)?;
    if write && !crate::space::frees_space(&req.ops) {
        osd.space.check_chain(&pg.status().0.acting)?;
    }
    if write {
        write_op(osd, &pg, req, payload).await
    } else {
        read_op(osd, &pg, req).await
    }
}

async fn write_op(
    osd: &Arc<Osd>,
    pg: &Arc<Pg>,
    req: &OsdRequest,
    payload: Bytes,
) -> Result<(OpResult, Bytes), OpError> {
    let done = |version| OpResult::Done {
        version,
        outputs: vec![OpOutput::None; req.ops.len()],
    };
    let lock = pg.object_lock(&req.object);
    let guard = lock.lock_owned().await;
    // A member that lacks the object gets it before the write passes it,
    // and before a retry of a write the log already has is answered (that
    // write may have reached only some members before the interval
    // changed: it is acknowledged once every member has the object).
    crate::recovery::before_op(osd, pg, &req.object).await?;
    if let Some(found) = pg.find_request(req.reqid) {
        drop(guard);
        let version = match found {
            Ok(v) => v,
            Err(rx) => rx.await.map_err(|_| unavailable("interval changed"))??,
        };
        return Ok((done(version), Bytes::new()));
    }
    let (pg2, name) = (pg.clone(), req.object.clone());
    let guards: Vec<ObjOp> = req.ops.iter().filter(|op| op.is_guard()).cloned().collect();
    let view = tokio::task::spawn_blocking(move || {
        ObjectView::load(pg2.store(), &pg2.coll, &name, &guards)
    })
    .await
    .map_err(|e| (OsdErrorCode::Internal, e.to_string()))??;
    let resolved = match exec::resolve(&req.ops, &view) {
        Ok(r) => r,
        Err(e) => {
            // Refused for what the object holds: an answer read from this
            // copy, which needs the chain mates' leases like a read.
            if matches!(
                e.0,
                OsdErrorCode::NotFound | OsdErrorCode::Exists | OsdErrorCode::CompareFailed
            ) {
                hold_read_lease(osd, pg).await?;
            }
            return Err(e);
        }
    };
    let exists_after = resolved.op == LogOp::Modify;
    let payload_len = payload.len();
    let (local, answer) = pg.start_write(req.reqid, &req.object, resolved, payload)?;
    let pg2 = pg.clone();
    tokio::spawn(async move {
        let LocalWrite { version, fut } = local;
        let r = fut.await;
        pg2.local_done(version, r);
        // The next write to the object may now read its state.
        drop(guard);
    });
    let version = answer
        .await
        .map_err(|_| unavailable("the PG's interval changed"))??;
    pg.count_write(view.exists, exists_after);
    osd.io.record_write(payload_len);
    Ok((done(version), Bytes::new()))
}

async fn read_op(
    osd: &Arc<Osd>,
    pg: &Arc<Pg>,
    req: &OsdRequest,
) -> Result<(OpResult, Bytes), OpError> {
    if pg.lacks(&req.object) {
        // Recovery has not brought it here yet: the head has it.
        let head = pg.head().ok_or_else(|| unavailable("no head"))?;
        return proxy(osd, head, req, false).await;
    }
    if pg.is_dirty(&req.object) {
        // A write to it is not committed yet: the tail has the committed state.
        let tail = pg.tail().ok_or_else(|| unavailable("no tail"))?;
        return proxy(osd, tail, req, true).await;
    }
    hold_read_lease(osd, pg).await?;
    let r = match read_here(pg, req).await {
        Err((OsdErrorCode::Corrupt, why)) => {
            tracing::warn!(pg = %pg.id, object = %req.object, error = %why, "a read failed its checksums; repairing");
            if pg.is_head() {
                // Repaired from another member (under the object's lock,
                // with no write to it in flight), then read again.
                let only = vec![req.object.clone()];
                crate::scrubber::run(osd, pg, true, true, &only)
                    .await
                    .map_err(|e| unavailable(format!("repairing: {e}")))?;
                read_here(pg, req).await?
            } else {
                // The head answers; it repairs this copy meanwhile.
                ask_head_to_repair(osd, pg, &req.object);
                let head = pg.head().ok_or_else(|| unavailable("no head"))?;
                return proxy(osd, head, req, false).await;
            }
        }
        other => other?,
    };
    osd.io.record_read(r.payload.len());
    Ok((
        OpResult::Done {
            version: r.version,
            outputs: r.outputs,
        },
        r.payload,
    ))
}

/// Serving a read of `pg` needs a read lease from every other member of
/// its chain (`lease.rs`); members whose lease lapsed are pinged once now
/// (a new chain, or a late heartbeat), and the read is refused if that
/// does not renew it.
async fn hold_read_lease(osd: &Arc<Osd>, pg: &Pg) -> Result<(), OpError> {
    let chain = pg.status().0.acting;
    let lapsed = |osd: &Osd| {
        osd.leases
            .lapsed(&chain, osd.id, osd.map().epoch(), std::time::Instant::now())
    };
    let stale = lapsed(osd);
    if stale.is_empty() {
        return Ok(());
    }
    let mut pings = tokio::task::JoinSet::new();
    for m in stale {
        let osd = osd.clone();
        pings.spawn(async move { crate::rpc::ping(&osd, m).await });
    }
    while pings.join_next().await.is_some() {}
    match lapsed(osd).as_slice() {
        [] => Ok(()),
        stale => Err(unavailable(format!(
            "no read lease: chain members {stale:?} did not answer a heartbeat from this map"
        ))),
    }
}

/// Reads from this OSD's own copy (off the async threads).
async fn read_here(pg: &Arc<Pg>, req: &OsdRequest) -> Result<exec::ReadResult, OpError> {
    let (pg2, name, ops) = (pg.clone(), req.object.clone(), req.ops.clone());
    tokio::task::spawn_blocking(move || exec::read(pg2.store(), &pg2.coll, &name, &ops))
        .await
        .map_err(|e| (OsdErrorCode::Internal, e.to_string()))?
}

/// Asks the PG's head (in the background) to repair this member's copy
/// of `object`, which failed its checksums.
fn ask_head_to_repair(osd: &Arc<Osd>, pg: &Pg, object: &str) {
    let (Some(head), Some(endpoint)) = (pg.head(), osd.endpoint().cloned()) else {
        return;
    };
    let Some(addr) = osd.peer_addr(head) else {
        return;
    };
    let req = PgScrubRequest {
        epoch: osd.map().epoch(),
        pg: pg.id,
        deep: true,
        repair: true,
        only: vec![object.to_string()],
    };
    let Ok(frame) = Frame::encode(msg::PG_SCRUB, &req) else {
        return;
    };
    let timeout = osd.opts.peer_timeout;
    tokio::spawn(async move {
        if let Err(e) = endpoint.request(&addr, &frame, timeout).await {
            tracing::warn!(head, error = %e, "cannot ask the head for a repair");
        }
    });
}

/// Serves a read by asking chain member `to` (as a balanced read, or as
/// a read at the head).
async fn proxy(
    osd: &Arc<Osd>,
    to: i32,
    req: &OsdRequest,
    balance: bool,
) -> Result<(OpResult, Bytes), OpError> {
    let addr = osd
        .peer_addr(to)
        .ok_or_else(|| unavailable(format!("osd.{to} has no address")))?;
    let endpoint = osd.endpoint().ok_or_else(|| unavailable("starting"))?;
    let mut fwd = req.clone();
    fwd.balance_reads = balance;
    let frame = Frame::encode(msg::OSD_OP, &fwd).map_err(|e| unavailable(e.to_string()))?;
    let resp = endpoint
        .request(&addr, &frame, osd.opts.peer_timeout)
        .await
        .map_err(|e| unavailable(format!("reading at osd.{to}: {e}")))?;
    let r: OsdReply = resp
        .decode_body()
        .map_err(|e| unavailable(format!("osd.{to}'s reply: {e}")))?;
    match r.result {
        OpResult::Failed { code, message } => Err((code, message)),
        done => Ok((done, resp.payload)),
    }
}

async fn list(osd: &Arc<Osd>, peer: &PeerInfo, request: &Frame) -> Frame {
    let result = match request.decode_body::<PgListRequest>() {
        Ok(req) => match osd.auth.check(&osd.monc, &peer.name, false).await {
            Ok(()) => list_page(osd, &req).await,
            Err(e) => Err(e),
        },
        Err(e) => Err((OsdErrorCode::Invalid, format!("bad request: {e}"))),
    };
    let result = result.unwrap_or_else(|(code, message)| ListResult::Failed { code, message });
    or_empty(
        msg::OSD_LIST_REPLY,
        Frame::encode(
            msg::OSD_LIST_REPLY,
            &PgListReply {
                epoch: osd.map().epoch(),
                result,
            },
        ),
    )
}

async fn list_page(osd: &Arc<Osd>, req: &PgListRequest) -> Result<ListResult, OpError> {
    let pg = current_pg(osd, req.pg, req.epoch)?;
    pg.check_serving(false, true)?;
    hold_read_lease(osd, &pg).await?;
    let limit = req.limit.clamp(1, shoal_proto::osd::MAX_LIST_PAGE) as usize;
    let (pg2, after) = (pg.clone(), req.start_after.clone());
    let (names, more) = tokio::task::spawn_blocking(move || {
        crate::pg::object_page(pg2.store(), &pg2.coll, after.as_deref(), limit)
    })
    .await
    .map_err(|e| (OsdErrorCode::Internal, e.to_string()))??;
    Ok(ListResult::Page { names, more })
}

async fn pg_detail(osd: &Arc<Osd>, peer: &PeerInfo, request: &Frame) -> Frame {
    let result = async {
        let req: PgDetailRequest = request
            .decode_body()
            .map_err(|e| format!("bad request: {e}"))?;
        osd.auth
            .check(&osd.monc, &peer.name, false)
            .await
            .map_err(|e| e.1)?;
        let pg = osd
            .pg(req.pg)
            .ok_or(format!("osd.{} has no copy of {}", osd.id, req.pg))?;
        Ok(pg.detail(crate::stats::state_of(&osd.map(), &pg)))
    };
    or_empty(
        msg::PG_DETAIL_REPLY,
        Frame::encode(
            msg::PG_DETAIL_REPLY,
            &PgDetailReply {
                epoch: osd.map().epoch(),
                result: result.await,
            },
        ),
    )
}

async fn pg_scrub(osd: &Arc<Osd>, peer: &PeerInfo, request: &Frame) -> Frame {
    let result = async {
        let req: PgScrubRequest = request
            .decode_body()
            .map_err(|e| format!("bad request: {e}"))?;
        // Client objects only: the PG's bookkeeping objects differ between
        // members by design and are never repaired by copy.
        for name in &req.only {
            exec::check_name(name).map_err(|e| e.1)?;
        }
        // Members ask their head to repair a copy they could not read.
        if osd_id(peer).is_none() {
            osd.auth
                .check(&osd.monc, &peer.name, true)
                .await
                .map_err(|e| e.1)?;
        }
        let pg = osd
            .pg(req.pg)
            .ok_or(format!("osd.{} has no copy of {}", osd.id, req.pg))?;
        crate::scrubber::run(osd, &pg, req.deep, req.repair, &req.only).await
    };
    or_empty(
        msg::PG_SCRUB_REPLY,
        Frame::encode(
            msg::PG_SCRUB_REPLY,
            &PgScrubReply {
                epoch: osd.map().epoch(),
                result: result.await,
            },
        ),
    )
}

async fn pg_scrub_map(osd: &Osd, request: &Frame) -> Frame {
    let answer = async {
        let req: ScrubMapRequest = request.decode_body().map_err(|e| e.to_string())?;
        let pg = osd.pg(req.pg).ok_or("no such PG here")?;
        let limit = req.limit.clamp(1, shoal_proto::osd::MAX_LIST_PAGE) as usize;
        tokio::task::spawn_blocking(move || {
            pg.scrub_entries(req.start_after.as_deref(), limit, &req.only, req.deep)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.1)
    };
    let (entries, more, error) = match answer.await {
        Ok((entries, more)) => (entries, more, String::new()),
        Err(e) => (Vec::new(), false, e),
    };
    or_empty(
        msg::PG_SCRUB_MAP_REPLY,
        Frame::encode(
            msg::PG_SCRUB_MAP_REPLY,
            &ScrubMapReply {
                epoch: osd.map().epoch(),
                entries,
                more,
                error,
            },
        ),
    )
}

/// How long a peer request from a newer map waits for this OSD to
/// follow that map (then it is answered from what this OSD has).
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

async fn pg_query(osd: &Osd, request: &Frame, asker: i32) -> Frame {
    let query = request.decode_body::<PgQuery>().ok();
    if let Some(q) = &query {
        osd.pgs_reach(q.epoch, CATCH_UP).await;
    }
    let pg = query.as_ref().and_then(|q| osd.pg(q.pg));
    // A peering head is sent a log whose writes are all in the store (a
    // stray's check, interval 0, is answered by an active head at once).
    let peering = query.as_ref().is_some_and(|q| q.interval != 0);
    // A peering head may only be told about a copy that has left every
    // earlier interval: one still active in an older chain under another
    // head could take (and acknowledge) writes after answering, which the
    // head's activation would then roll back (the simulation found it).
    // The head asks again shortly.
    if let Some(q) = query.as_ref().filter(|q| q.interval != 0) {
        let behind = osd.map().epoch() < q.interval
            || pg.as_ref().is_some_and(|pg| {
                let (interval, phase) = pg.status();
                phase == crate::pg::Phase::Active
                    && interval.epoch < q.interval
                    && interval.acting.first() != Some(&asker)
            });
        if behind {
            return peer_ack(
                osd,
                Err(format!("this OSD has not reached epoch {} yet", q.interval)),
            );
        }
        if let Some(pg) = &pg {
            pg.adopt_interval(q.interval, &q.shape);
        }
    }
    if let Some(pg) = &pg
        && peering
        && !pg.settle(osd.opts.peer_timeout / 2).await
    {
        return peer_ack(osd, Err("local writes still pending".into()));
    }
    let map = osd.map();
    // "Clean" lets the asker delete its copy: never when the asker is part
    // of this head's chain or up set (its own map may be behind).
    let clean = pg.as_ref().is_some_and(|pg| {
        let size = map.pool(pg.id.pool).map_or(usize::MAX, |p| p.size as usize);
        let (interval, _) = pg.status();
        pg.is_clean_head(size) && !interval.acting.contains(&asker) && !interval.up.contains(&asker)
    });
    let state = pg.as_ref().map(|pg| pg.log_state());
    let (interval, shape) = pg.as_ref().map_or((0, Default::default()), |pg| {
        let iv = pg.status().0;
        (iv.epoch, iv.shape())
    });
    or_empty(
        msg::PG_QUERY_REPLY,
        Frame::encode(
            msg::PG_QUERY_REPLY,
            &PgQueryReply {
                epoch: map.epoch(),
                state,
                clean,
                heard: osd.heard_ago(),
                interval,
                shape,
            },
        ),
    )
}

async fn pg_pull(osd: &Osd, request: &Frame) -> Frame {
    let answer = async {
        let req: PgPull = request.decode_body().map_err(|e| e.to_string())?;
        let pg = osd.pg(req.pg).ok_or("no such PG here")?;
        crate::rpc::push_frame(osd, &pg, req.interval, &req.object, false).await
    };
    match answer.await {
        Ok(f) => f,
        Err(e) => peer_ack(osd, Err(e)),
    }
}

async fn pg_push(osd: &Osd, request: Frame) -> Result<(), String> {
    let req: PgPush = request.decode_body().map_err(|e| e.to_string())?;
    let pg = osd.pg(req.pg).ok_or("no such PG here")?;
    pg.apply_push(req, request.payload).await.map_err(|e| e.1)
}

async fn pg_scan(osd: &Osd, request: &Frame) -> Frame {
    let answer = async {
        let req: PgScan = request.decode_body().map_err(|e| e.to_string())?;
        let Some(pg) = osd.pg(req.pg) else {
            return Ok((Vec::new(), false));
        };
        let limit = req.limit.clamp(1, shoal_proto::osd::MAX_LIST_PAGE) as usize;
        tokio::task::spawn_blocking(move || pg.scan(req.start_after.as_deref(), limit))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.1)
    };
    let (objects, more, error) = match answer.await {
        Ok((objects, more)) => (objects, more, String::new()),
        Err(e) => (Vec::new(), false, e),
    };
    or_empty(
        msg::PG_SCAN_REPLY,
        Frame::encode(
            msg::PG_SCAN_REPLY,
            &PgScanReply {
                epoch: osd.map().epoch(),
                objects,
                more,
                error,
            },
        ),
    )
}

async fn pg_backfill(osd: &Arc<Osd>, request: &Frame) -> Result<(), String> {
    let req: PgBackfill = request.decode_body().map_err(|e| e.to_string())?;
    osd.pgs_reach(req.epoch, CATCH_UP).await;
    let pg = match osd.pg(req.pg) {
        Some(pg) => pg,
        // A target that never had the PG learns of it from the map; it
        // may not have processed that map yet.
        None => return Err("no such PG here (yet)".into()),
    };
    match req.step {
        BackfillStep::Start => {
            pg.adopt_interval(req.interval, &req.shape);
            pg.backfill_start(req.interval).await
        }
        BackfillStep::Finish {
            info,
            log,
            dups,
            missing,
        } => {
            pg.backfill_finish(req.interval, &info, log, dups, missing)
                .await
        }
    }
    .map_err(|e| e.1)
}

async fn pg_activate(osd: &Osd, request: &Frame) -> Result<(), String> {
    let req: PgActivate = request.decode_body().map_err(|e| e.to_string())?;
    osd.pgs_reach(req.epoch, CATCH_UP).await;
    let pg = osd.pg(req.pg).ok_or("no such PG here")?;
    pg.adopt_interval(req.interval, &req.shape);
    let act = pg
        .activate(crate::pg::Activation {
            interval: req.interval,
            acting: req.shape.acting,
            info: req.info,
            log: req.log,
            dups: req.dups,
            backfill: req.backfill,
            missing: req.missing.into_iter().collect(),
            recovery: Default::default(),
        })
        .await
        .map_err(|e| e.1)?;
    osd.start_links(&pg, req.interval, act);
    Ok(())
}

/// Consumes the replication streams: writes from upstream, acks from downstream.
pub struct StreamService(pub Arc<Osd>);

impl StreamHandler for StreamService {
    async fn handle(&self, mut stream: InboundStream) {
        let osd = &self.0;
        let Some(from) = osd_id(&stream.peer) else {
            stream.stop();
            return;
        };
        let is_rep = stream.topic.starts_with("rep/");
        while let Ok(Some(frame)) = stream.next_frame().await {
            osd.heard_from(from);
            let ok = if is_rep {
                replicate(osd, from, frame)
            } else {
                match frame.decode_body::<RepAck>() {
                    Ok(ack) => {
                        if let Some(pg) = osd.pg(ack.pg) {
                            pg.downstream_ack(from, ack.interval, ack.version);
                        }
                        true
                    }
                    Err(_) => false,
                }
            };
            if !ok {
                stream.stop();
                return;
            }
        }
    }
}

/// Applies one replicated write; false stops the stream (the sender
/// re-sends from its oldest unacknowledged write on a new one).
fn replicate(osd: &Arc<Osd>, from: i32, frame: Frame) -> bool {
    let Ok(rep) = frame.decode_body::<RepOp>() else {
        tracing::warn!(from, "undecodable replicated write");
        return false;
    };
    let Some(pg) = osd.pg(rep.pg) else {
        return false;
    };
    match pg.replicate(from, rep, frame.payload) {
        Ok(Some(LocalWrite { version, fut })) => {
            tokio::spawn(async move {
                let r = fut.await;
                pg.local_done(version, r);
            });
            true
        }
        Ok(None) => true,
        Err((code, message)) => {
            tracing::debug!(pg = %pg.id, from, ?code, %message, "replicated write refused");
            false
        }
    }
}
