//! Sends object requests to the right OSD and retries them across map
//! changes, peering and OSD failures, keeping each request's id so that
//! an OSD that already applied it answers instead of applying it again.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_map::{OsdMap, PgId};
use shoal_net::{Frame, PeerAddr};
use shoal_proto::msg;
use shoal_proto::osd::{
    ListResult, ObjOp, ObjVersion, OpOutput, OpResult, OsdErrorCode, OsdReply, OsdRequest,
    PgListReply, PgListRequest, PgRef,
};

use crate::error::ClientError;
use crate::session::Session;

/// What one attempt at one OSD came to.
enum Outcome<T> {
    /// Answered.
    Done(T),
    /// Refused for a reason that passes (map change, peering); the OSD's epoch.
    Retry {
        code: OsdErrorCode,
        osd_epoch: u32,
        message: String,
    },
    /// Refused for good.
    Failed(OsdErrorCode, String),
}

impl<T> Outcome<T> {
    /// An OSD's refusal with `code`: retried or final by the code.
    fn refused(code: OsdErrorCode, message: String, osd_epoch: u32) -> Self {
        if code.is_retryable() {
            Outcome::Retry {
                code,
                osd_epoch,
                message,
            }
        } else {
            Outcome::Failed(code, message)
        }
    }
}

/// A successful object request.
pub(crate) struct Reply {
    pub version: ObjVersion,
    pub outputs: Vec<OpOutput>,
    pub payload: Bytes,
}

/// Where a request goes in `map`: the PG and the OSD of its chain.
fn target(
    inner: &Session,
    map: &OsdMap,
    pg: PgId,
    balance: bool,
) -> Result<(i32, PeerAddr), String> {
    let chain = inner.chains.get(map, pg).map_err(|e| e.to_string())?;
    let osd = match chain.len() {
        0 => return Err(format!("PG {pg} has no OSD up")),
        n if balance => chain[inner.pick_member(n)],
        _ => chain[0],
    };
    let addr = map
        .osd(osd)
        .and_then(|i| i.addr)
        .ok_or_else(|| format!("osd.{osd} has no address"))?;
    Ok((osd, PeerAddr::named(format!("osd.{osd}"), addr)))
}

/// Runs `attempt` against the PG's current target until it is answered,
/// refused for good, or `timeout` passes. `pg_of` places the request in
/// each map it runs with (the pool may change or vanish).
async fn with_retries<T, Fut>(
    inner: &Session,
    object: &str,
    timeout: Duration,
    balance: bool,
    pg_of: impl Fn(&OsdMap) -> Result<PgId, ClientError>,
    mut attempt: impl FnMut(u32, PgRef, PeerAddr, Duration) -> Fut,
) -> Result<T, ClientError>
where
    Fut: Future<Output = Result<Outcome<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let backoff = shoal_net::Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(500),
    };
    let mut failures = 0;
    let mut last = String::from("no attempt");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Timeout {
                object: object.to_string(),
                timeout,
                last,
            });
        }
        let map = inner.osdmap();
        let pg = pg_of(&map)?;
        let epoch = map.epoch();
        // A newer map ends the wait early: it may have fixed the problem.
        let mut wait_for_map = true;
        match target(inner, &map, pg, balance) {
            Err(e) => last = e,
            Ok((osd, peer)) => {
                let pgref = PgRef {
                    pool: pg.pool,
                    seed: pg.seed,
                };
                let per_try = inner.opts.osd_timeout.min(left);
                match attempt(epoch, pgref, peer, per_try).await {
                    Ok(Outcome::Done(v)) => return Ok(v),
                    Ok(Outcome::Failed(OsdErrorCode::NotFound, _)) => {
                        return Err(ClientError::NotFound(object.to_string()));
                    }
                    Ok(Outcome::Failed(code, message)) => {
                        return Err(ClientError::Osd {
                            object: object.to_string(),
                            code,
                            message,
                        });
                    }
                    Ok(Outcome::Retry {
                        code,
                        osd_epoch,
                        message,
                    }) => {
                        last = format!("osd.{osd}: {code:?}: {message}");
                        if osd_epoch > epoch {
                            // The OSD knows a newer map: wait for it, not the backoff.
                            inner.map_newer_than(epoch, left).await;
                            continue;
                        }
                        // The OSD is behind us: it is fetching the map; nothing to wait for here.
                        wait_for_map = code != OsdErrorCode::OsdBehind;
                    }
                    Err(e) => last = format!("osd.{osd}: {e}"),
                }
            }
        }
        failures += 1;
        let pause = backoff
            .delay(failures)
            .min(deadline.saturating_duration_since(Instant::now()));
        tracing::debug!(object, %last, ?pause, "retrying");
        if wait_for_map {
            inner.map_newer_than(epoch, pause).await;
        } else {
            tokio::time::sleep(pause).await;
        }
    }
}

/// Sends `ops` on `object` of pool `pool` and waits for the answer.
/// Writes go to the head; reads too unless `balance`.
pub(crate) async fn submit(
    inner: &Session,
    pool: i64,
    object: &str,
    ops: Vec<ObjOp>,
    payload: Bytes,
    balance: bool,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    let mut req = OsdRequest {
        reqid: inner.next_reqid(),
        epoch: 0,
        pg: PgRef { pool, seed: 0 },
        object: object.to_string(),
        ops,
        balance_reads: balance,
    };
    let endpoint = inner.monc.endpoint();
    let pg_of = |map: &OsdMap| {
        map.object_to_pg(pool, object)
            .map_err(|_| ClientError::NoSuchPool(pool.to_string()))
    };
    with_retries(
        inner,
        object,
        timeout,
        balance,
        pg_of,
        |epoch, pg, peer, per_try| {
            req.epoch = epoch;
            req.pg = pg;
            let frame = Frame::encode(msg::OSD_OP, &req).map(|f| f.with_payload(payload.clone()));
            async move {
                let frame = frame.map_err(|e| e.to_string())?;
                let resp = endpoint
                    .request(&peer, &frame, per_try)
                    .await
                    .map_err(|e| e.to_string())?;
                let reply: OsdReply = resp.decode_body().map_err(|e| e.to_string())?;
                Ok(match reply.result {
                    OpResult::Done { version, outputs } => Outcome::Done(Reply {
                        version,
                        outputs,
                        payload: resp.payload,
                    }),
                    OpResult::Failed { code, message } => {
                        Outcome::refused(code, message, reply.epoch)
                    }
                })
            }
        },
    )
    .await
}

/// One page of PG `pg`'s object names after `after`.
pub(crate) async fn list_page(
    inner: &Session,
    pg: PgId,
    after: Option<String>,
    limit: u32,
) -> Result<(Vec<String>, bool), ClientError> {
    let endpoint = inner.monc.endpoint();
    let what = format!("listing of PG {pg}");
    let pg_of = |map: &OsdMap| match map.pool(pg.pool) {
        Some(_) => Ok(pg),
        None => Err(ClientError::NoSuchPool(pg.pool.to_string())),
    };
    let timeout = inner.opts.op_timeout;
    with_retries(
        inner,
        &what,
        timeout,
        false,
        pg_of,
        |epoch, pgref, peer, per_try| {
            let req = PgListRequest {
                epoch,
                pg: pgref,
                start_after: after.clone(),
                limit,
            };
            async move {
                let frame = Frame::encode(msg::OSD_LIST, &req).map_err(|e| e.to_string())?;
                let resp = endpoint
                    .request(&peer, &frame, per_try)
                    .await
                    .map_err(|e| e.to_string())?;
                let reply: PgListReply = resp.decode_body().map_err(|e| e.to_string())?;
                Ok(match reply.result {
                    ListResult::Page { names, more } => Outcome::Done((names, more)),
                    ListResult::Failed { code, message } => {
                        Outcome::refused(code, message, reply.epoch)
                    }
                })
            }
        },
    )
    .await
}
