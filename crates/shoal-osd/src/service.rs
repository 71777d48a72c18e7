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
    PeerAck, PeerError, PgActivate, PgBackfill, PgPull, PgPush, PgQuery, PgScan, PgScanReply, Ping,
    RepAck, RepOp, ScrubMapReply, ScrubMapRequest,
};

use crate::context::Osd;
use crate::exec::{self, OpError, unavailable};
use crate::node::Node;
use crate::pg::{ClientAnswer, ClientOp, OpId, PeerReply, PeerRequest, ScrubRequest};
use crate::pglog::collection;
use crate::shard::{ClientRequest, Msg, StreamStop};

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
pub struct RequestService(pub Arc<Node>);

impl RequestHandler for RequestService {
    async fn handle(&self, peer: PeerInfo, request: Frame) -> Frame {
        let node = &self.0;
        let osd = &node.osd;
        match request.msg_type {
            msg::OSD_OP => op(node, &peer, request).await,
            msg::OSD_LIST => list(node, &peer, &request).await,
            msg::PG_DETAIL => pg_detail(node, &peer, &request).await,
            msg::PG_SCRUB => pg_scrub(node, &peer, &request).await,
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
                    let why = format!("{} is not an OSD", peer.name);
                    return peer_ack(osd, Err(OpError::new(OsdErrorCode::PermissionDenied, why)));
                };
                osd.heard_from(from);
                match t {
                    msg::PG_PULL => pg_pull(osd, &request).await,
                    msg::PG_SCAN => pg_scan(osd, &request).await,
                    msg::PG_SCRUB_MAP => pg_scrub_map(osd, &request).await,
                    _ => machine_request(node, from, request).await,
                }
            }
            msg::FAULT => peer_ack(osd, crate::faults::handle(osd, &peer, &request)),
            other => peer_ack(
                osd,
                Err(OpError::new(
                    OsdErrorCode::Invalid,
                    format!("unknown message type {other}"),
                )),
            ),
        }
    }
}

fn peer_ack(osd: &Osd, result: Result<(), OpError>) -> Frame {
    or_empty(
        msg::PEER_ACK,
        Frame::encode(
            msg::PEER_ACK,
            &PeerAck {
                epoch: osd.map().epoch(),
                error: result.err().map(PeerError::from),
            },
        ),
    )
}

fn reply(osd: &Osd, result: Result<OpResult, OpError>, payload: Bytes) -> Frame {
    let result =
        result.unwrap_or_else(|OpError { code, message }| OpResult::Failed { code, message });
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

async fn op(node: &Node, peer: &PeerInfo, request: Frame) -> Frame {
    let osd = &node.osd;
    let req: OsdRequest = match request.decode_body() {
        Ok(r) => r,
        Err(e) => {
            return reply(
                osd,
                Err(OpError::new(
                    OsdErrorCode::Invalid,
                    format!("bad request: {e}"),
                )),
                Bytes::new(),
            );
        }
    };
    match serve_op(node, peer, &req, request.payload).await {
        Ok((result, payload)) => reply(osd, Ok(result), payload),
        Err(e) => reply(osd, Err(e), Bytes::new()),
    }
}

async fn serve_op(
    node: &Node,
    peer: &PeerInfo,
    req: &OsdRequest,
    payload: Bytes,
) -> Result<(OpResult, Bytes), OpError> {
    let osd = &node.osd;
    let write = exec::classify(req, payload.len() as u64)?;
    osd.auth.check(&osd.monc, &peer.name, write).await?;
    let payload_len = payload.len();
    // Hashed here, on whichever core runs this request, not in the shard.
    let sums = if write {
        exec::hash_writes(&req.ops, &payload, osd.store.chunk_size())
    } else {
        Vec::new()
    };
    let op = ClientOp {
        op: OpId(0),
        epoch: req.epoch,
        reqid: req.reqid,
        object: req.object.clone(),
        ops: req.ops.clone(),
        payload,
        write,
        balance: req.balance_reads,
        sums,
    };
    match node.shards.client(req.pg, ClientRequest::Op(op)).await? {
        ClientAnswer::Written(version) => {
            osd.io.record_write(payload_len);
            let outputs = vec![OpOutput::None; req.ops.len()];
            Ok((OpResult::Done { version, outputs }, Bytes::new()))
        }
        ClientAnswer::Failed(e) => Err(e),
        ClientAnswer::ReadHere => read_op(node, req).await,
        ClientAnswer::Forward { to, balance } => proxy(osd, to, req, balance).await,
        ClientAnswer::Scrubbed(_) => Err(exec::internal("a scrub's answer to an op")),
    }
}

/// Serves a read the PG's machine said this copy may answer; a copy that
/// fails its checksums is repaired (at the head) or read at the head.
async fn read_op(node: &Node, req: &OsdRequest) -> Result<(OpResult, Bytes), OpError> {
    let osd = &node.osd;
    let r = match read_here(osd, req).await {
        Err(OpError {
            code: OsdErrorCode::Corrupt,
            message: why,
        }) => {
            tracing::warn!(pg = %req.pg, object = %req.object, error = %why, "a read failed its checksums; repairing");
            let head = head_of(node, req.pg)
                .await
                .ok_or_else(|| unavailable("no head"))?;
            if head == osd.id {
                // Repaired from another member (through the object's queue,
                // with no write to it in flight), then read again.
                let scrub = ScrubRequest {
                    op: None,
                    deep: true,
                    repair: true,
                    only: vec![req.object.clone()],
                };
                match node
                    .shards
                    .client(req.pg, ClientRequest::Scrub(scrub))
                    .await?
                {
                    ClientAnswer::Scrubbed(_) => read_here(osd, req).await?,
                    ClientAnswer::Failed(e) => {
                        return Err(unavailable(format!("repairing: {}", e.message)));
                    }
                    other => return Err(exec::internal(format!("repair answered {other:?}"))),
                }
            } else {
                // The head answers; it repairs this copy meanwhile.
                let ask = ask_head_to_repair(osd, head, req.pg, &req.object);
                return tokio::join!(ask, proxy(osd, head, req, false)).1;
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

/// The head of PG `pg`'s chain as this OSD's copy knows it.
async fn head_of(node: &Node, pg: PgRef) -> Option<i32> {
    node.shards
        .visit(pg, move |s| {
            s.pgs
                .get(&pg)
                .and_then(|slot| slot.pg.status().0.acting.first().copied())
        })
        .await
        .flatten()
}

/// Reads from this OSD's own copy (off the async threads).
async fn read_here(osd: &Osd, req: &OsdRequest) -> Result<exec::ReadResult, OpError> {
    let (store, coll) = (osd.store.clone(), collection(req.pg));
    let (name, ops) = (req.object.clone(), req.ops.clone());
    tokio::task::spawn_blocking(move || exec::read(&store, &coll, &name, &ops))
        .await
        .map_err(exec::internal)?
}

/// Asks the PG's head to repair this member's copy of `object`, which
/// failed its checksums.
async fn ask_head_to_repair(osd: &Osd, head: i32, pg: PgRef, object: &str) {
    let Some(endpoint) = osd.endpoint().cloned() else {
        return;
    };
    let Some(addr) = osd.peer_addr(head) else {
        return;
    };
    let req = PgScrubRequest {
        epoch: osd.map().epoch(),
        pg,
        deep: true,
        repair: true,
        only: vec![object.to_string()],
    };
    let Ok(frame) = Frame::encode(msg::PG_SCRUB, &req) else {
        return;
    };
    if let Err(e) = endpoint.request(&addr, &frame, osd.opts.peer_timeout).await {
        tracing::warn!(head, error = %e, "cannot ask the head for a repair");
    }
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
        OpResult::Failed { code, message } => Err(OpError::new(code, message)),
        done => Ok((done, resp.payload)),
    }
}

async fn list(node: &Node, peer: &PeerInfo, request: &Frame) -> Frame {
    let osd = &node.osd;
    let result = match request.decode_body::<PgListRequest>() {
        Ok(req) => match osd.auth.check(&osd.monc, &peer.name, false).await {
            Ok(()) => list_page(node, &req).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(bad_request(e)),
    };
    let result =
        result.unwrap_or_else(|OpError { code, message }| ListResult::Failed { code, message });
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

async fn list_page(node: &Node, req: &PgListRequest) -> Result<ListResult, OpError> {
    let osd = &node.osd;
    let list = ClientRequest::List { epoch: req.epoch };
    match node.shards.client(req.pg, list).await? {
        ClientAnswer::ReadHere => {}
        ClientAnswer::Failed(e) => return Err(e),
        other => return Err(exec::internal(format!("a listing answered {other:?}"))),
    }
    let limit = req.limit.clamp(1, shoal_proto::osd::MAX_LIST_PAGE) as usize;
    let (store, coll, after) = (
        osd.store.clone(),
        collection(req.pg),
        req.start_after.clone(),
    );
    let (names, more) = tokio::task::spawn_blocking(move || {
        crate::pgstore::object_page(&store, &coll, after.as_deref(), limit)
    })
    .await
    .map_err(exec::internal)??;
    Ok(ListResult::Page { names, more })
}

async fn pg_detail(node: &Node, peer: &PeerInfo, request: &Frame) -> Frame {
    let osd = &node.osd;
    let result = async {
        let req: PgDetailRequest = request
            .decode_body()
            .map_err(|e| format!("bad request: {e}"))?;
        osd.auth
            .check(&osd.monc, &peer.name, false)
            .await
            .map_err(|e| e.message)?;
        let pg = req.pg;
        node.shards
            .visit(pg, move |s| s.pgs.get(&pg).map(|slot| slot.pg.detail()))
            .await
            .flatten()
            .ok_or(format!("osd.{} has no copy of {}", osd.id, req.pg))
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

async fn pg_scrub(node: &Node, peer: &PeerInfo, request: &Frame) -> Frame {
    let osd = &node.osd;
    let result = async {
        let req: PgScrubRequest = request
            .decode_body()
            .map_err(|e| format!("bad request: {e}"))?;
        // Client objects only: the PG's bookkeeping objects differ between
        // members by design and are never repaired by copy.
        for name in &req.only {
            exec::check_name(name).map_err(|e| e.message)?;
        }
        // Members ask their head to repair a copy they could not read.
        if osd_id(peer).is_none() {
            osd.auth
                .check(&osd.monc, &peer.name, true)
                .await
                .map_err(|e| e.message)?;
        }
        let scrub = ScrubRequest {
            op: None,
            deep: req.deep,
            repair: req.repair,
            only: req.only,
        };
        match node
            .shards
            .client(req.pg, ClientRequest::Scrub(scrub))
            .await
        {
            Ok(ClientAnswer::Scrubbed(result)) => Ok(result),
            Ok(ClientAnswer::Failed(e)) | Err(e) => Err(e.message),
            Ok(other) => Err(format!("a scrub answered {other:?}")),
        }
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
        let req: ScrubMapRequest = request.decode_body().map_err(bad_request)?;
        let (store, coll) = (osd.store.clone(), collection(req.pg));
        let limit = req.limit.clamp(1, shoal_proto::osd::MAX_LIST_PAGE) as usize;
        tokio::task::spawn_blocking(move || {
            crate::pgstore::scrub_entries(
                &store,
                &coll,
                req.start_after.as_deref(),
                limit,
                &req.only,
                req.deep,
            )
        })
        .await
        .map_err(exec::internal)?
    };
    let (entries, more, error) = match answer.await {
        Ok((entries, more)) => (entries, more, None),
        Err(e) => (Vec::new(), false, Some(PeerError::from(e))),
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

/// A peering, recovery or backfill request the PG's machine answers:
/// query, activate, push, backfill step. One from a newer map waits (a
/// little) for this OSD to follow that map, so that it finds the PG in the
/// interval it means.
async fn machine_request(node: &Node, from: i32, request: Frame) -> Frame {
    let osd = &node.osd;
    let (pg, epoch, req) = match decode_machine_request(request) {
        Ok(r) => r,
        Err(e) => return peer_ack(osd, Err(bad_request(e))),
    };
    osd.pgs_reach(epoch, CATCH_UP).await;
    match node.shards.peer(pg, from, req).await {
        Ok(PeerReply::Ack) => peer_ack(osd, Ok(())),
        Ok(PeerReply::Query(q)) => {
            or_empty(msg::PG_QUERY_REPLY, Frame::encode(msg::PG_QUERY_REPLY, &*q))
        }
        Err(e) => peer_ack(osd, Err(e)),
    }
}

fn bad_request(e: impl std::fmt::Display) -> OpError {
    OpError::new(OsdErrorCode::Invalid, format!("bad request: {e}"))
}

fn decode_machine_request(request: Frame) -> shoal_net::Result<(PgRef, u32, PeerRequest)> {
    Ok(match request.msg_type {
        msg::PG_QUERY => {
            let q: PgQuery = request.decode_body()?;
            (q.pg, q.epoch, PeerRequest::Query(q))
        }
        msg::PG_ACTIVATE => {
            let a: PgActivate = request.decode_body()?;
            (a.pg, a.epoch, PeerRequest::Activate(a))
        }
        msg::PG_BACKFILL => {
            let b: PgBackfill = request.decode_body()?;
            (b.pg, b.epoch, PeerRequest::Backfill(b))
        }
        _ => {
            let push: PgPush = request.decode_body()?;
            let (pg, epoch) = (push.pg, push.epoch);
            let payload = request.payload;
            (pg, epoch, PeerRequest::Push { push, payload })
        }
    })
}

async fn pg_pull(osd: &Osd, request: &Frame) -> Frame {
    let answer = async {
        let req: PgPull = request.decode_body().map_err(bad_request)?;
        exec::check_name(&req.object)?;
        crate::rpc::push_frame(osd, req.pg, req.interval, &req.object, false).await
    };
    match answer.await {
        Ok(f) => f,
        Err(e) => peer_ack(osd, Err(e)),
    }
}

async fn pg_scan(osd: &Osd, request: &Frame) -> Frame {
    let answer = async {
        let req: PgScan = request.decode_body().map_err(bad_request)?;
        let (store, coll) = (osd.store.clone(), collection(req.pg));
        let limit = req.limit.clamp(1, shoal_proto::osd::MAX_LIST_PAGE) as usize;
        tokio::task::spawn_blocking(move || {
            // A copy this OSD does not have holds nothing.
            if let Err(shoal_store::StoreError::NoCollection(_)) = store.collection_meta(&coll) {
                return Ok((Vec::new(), false));
            }
            crate::pgstore::scan(&store, &coll, req.start_after.as_deref(), limit)
        })
        .await
        .map_err(exec::internal)?
    };
    let (objects, more, error) = match answer.await {
        Ok((objects, more)) => (objects, more, None),
        Err(e) => (Vec::new(), false, Some(PeerError::from(e))),
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

/// Consumes the replication streams: writes from upstream, acks from downstream.
pub struct StreamService(pub Arc<Node>);

impl StreamHandler for StreamService {
    async fn handle(&self, mut stream: InboundStream) {
        let node = &self.0;
        let osd = &node.osd;
        let Some(from) = osd_id(&stream.peer) else {
            stream.stop();
            return;
        };
        let is_rep = stream.topic.starts_with("rep/");
        let stop = Arc::new(StreamStop::default());
        loop {
            let frame = tokio::select! {
                _ = stop.stopped() => break,
                f = stream.next_frame() => match f {
                    Ok(Some(frame)) => frame,
                    _ => return,
                },
            };
            osd.heard_from(from);
            let ok = if is_rep {
                replicate(node, from, frame, &stop)
            } else {
                match frame.decode_body::<RepAck>() {
                    Ok(ack) => {
                        let msg = Msg::RepAck {
                            pg: ack.pg,
                            from,
                            interval: ack.interval,
                            version: ack.version,
                        };
                        node.shards.send(ack.pg, msg);
                        true
                    }
                    Err(_) => false,
                }
            };
            if !ok {
                break;
            }
        }
        stream.stop();
    }
}

/// Hands one replicated write to its PG (which stops the stream if it
/// refuses it); false: undecodable, stop now.
fn replicate(node: &Node, from: i32, frame: Frame, stop: &Arc<StreamStop>) -> bool {
    let Ok(rep) = frame.decode_body::<RepOp>() else {
        tracing::warn!(from, "undecodable replicated write");
        return false;
    };
    let pg = rep.pg;
    let msg = Msg::Rep {
        from,
        rep,
        payload: frame.payload,
        stream: stop.clone(),
    };
    node.shards.send(pg, msg);
    true
}
