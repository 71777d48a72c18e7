//! [`Cluster`], the public face of a connection to a cluster: opens pools,
//! asks OSDs about their PGs, creates pools. What it shares with its
//! [`IoCtx`]s is in [`crate::session`].

use std::sync::Arc;
use std::time::Duration;

use shoal_conf::ShoalConf;
use shoal_map::{OsdMap, PgId};
use shoal_net::{Frame, PeerAddr};
use shoal_proto::mon::{MonCommand, MonResult};
use shoal_proto::msg;
use shoal_proto::osd::{
    PgDetail, PgDetailReply, PgDetailRequest, PgRef, PgScrubReply, PgScrubRequest, ScrubResult,
};

use crate::error::ClientError;
use crate::ioctx::IoCtx;
use crate::session::{ClientOptions, Session};
use shoal_monc::MonClient;

/// A connection to a Shoal cluster, cheap to clone; opens [`IoCtx`]s on
/// its pools.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Session>,
}

impl Cluster {
    /// Connects as `[client] name` of `conf`: loads its identity, fetches
    /// the OSDMap and keeps following it. Must be called within a tokio
    /// runtime.
    pub async fn connect(conf: &ShoalConf) -> Result<Cluster, ClientError> {
        let monc = MonClient::from_conf(conf)?;
        Self::with_monc(monc, ClientOptions::from_conf(conf)).await
    }

    /// A cluster connection over an existing monitor client.
    pub async fn with_monc(monc: MonClient, opts: ClientOptions) -> Result<Cluster, ClientError> {
        Ok(Cluster {
            inner: Arc::new(Session::start(monc, opts).await?),
        })
    }

    /// The monitor client (admin commands).
    pub fn monc(&self) -> &MonClient {
        &self.inner.monc
    }

    /// The newest OSDMap this client has.
    pub fn osdmap(&self) -> Arc<OsdMap> {
        self.inner.osdmap()
    }

    /// The options object operations run with.
    pub fn options(&self) -> ClientOptions {
        self.inner.opts
    }

    /// Waits until this client has an OSDMap of at least `epoch`.
    pub async fn wait_for_epoch(&self, epoch: u32, timeout: Duration) -> Result<(), ClientError> {
        let mut rx = self.inner.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|m| m.epoch() >= epoch)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ClientError::Unreachable {
                timeout,
                last: format!(
                    "waiting for OSDMap epoch {epoch}, have {}",
                    self.osdmap().epoch()
                ),
            }),
        }
    }

    /// An I/O context on pool `name`. A pool created a moment ago by
    /// someone else may need a map this client does not have yet: it asks
    /// the monitors for a newer one before saying the pool does not exist.
    pub async fn ioctx(&self, name: &str) -> Result<IoCtx, ClientError> {
        let lookup = |map: &OsdMap| map.pool_by_name(name).map(|p| p.id);
        let current = self.osdmap();
        if let Some(id) = lookup(&current) {
            return Ok(IoCtx::new(self.inner.clone(), id, name));
        }
        if let Some(newer) = self
            .inner
            .monc
            .newer_osdmap(&current, Duration::ZERO)
            .await?
        {
            self.inner.install(newer);
        }
        match lookup(&self.osdmap()) {
            Some(id) => Ok(IoCtx::new(self.inner.clone(), id, name)),
            None => Err(ClientError::NoSuchPool(name.to_string())),
        }
    }

    /// What OSD `osd` (default: the PG's head) knows of its copy of PG
    /// `pg`: role, state, chain, log bounds, missing objects, backfill
    /// targets (`shoal pg query`).
    pub async fn pg_detail(&self, pg: PgId, osd: Option<i32>) -> Result<PgDetail, ClientError> {
        let req = PgDetailRequest {
            epoch: self.osdmap().epoch(),
            pg: pg_ref(pg),
        };
        let frame = Frame::encode(msg::PG_DETAIL, &req)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let (osd, reply) = self
            .pg_request(pg, osd, &frame, self.inner.opts.osd_timeout)
            .await?;
        let reply: PgDetailReply = reply
            .decode_body()
            .map_err(|e| ClientError::Protocol(format!("osd.{osd}: {e}")))?;
        reply
            .result
            .map_err(|e| ClientError::Protocol(format!("osd.{osd}: {e}")))
    }

    /// Scrubs PG `pg` now at its head (`deep`: reading and checksumming
    /// every copy's data; `repair`: fixing copies that differ from the
    /// authoritative one). Waits up to the op timeout.
    pub async fn pg_scrub(
        &self,
        pg: PgId,
        deep: bool,
        repair: bool,
    ) -> Result<ScrubResult, ClientError> {
        let req = PgScrubRequest {
            epoch: self.osdmap().epoch(),
            pg: pg_ref(pg),
            deep,
            repair,
            only: Vec::new(),
        };
        let frame =
            Frame::encode(msg::PG_SCRUB, &req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let (osd, reply) = self
            .pg_request(pg, None, &frame, self.inner.opts.op_timeout)
            .await?;
        let reply: PgScrubReply = reply
            .decode_body()
            .map_err(|e| ClientError::Protocol(format!("osd.{osd}: {e}")))?;
        reply
            .result
            .map_err(|e| ClientError::Protocol(format!("osd.{osd}: {e}")))
    }

    /// Sends `frame` about PG `pg` to OSD `osd` (default: its head);
    /// returns which OSD answered, and its answer.
    async fn pg_request(
        &self,
        pg: PgId,
        osd: Option<i32>,
        frame: &Frame,
        timeout: Duration,
    ) -> Result<(i32, Frame), ClientError> {
        let map = self.osdmap();
        let osd = match osd {
            Some(o) => o,
            None => map
                .pg_to_up_acting(pg, &mut map.new_workspace())?
                .chain()
                .first()
                .copied()
                .ok_or_else(|| ClientError::Invalid(format!("PG {pg} has no OSD up")))?,
        };
        let addr = map
            .osd(osd)
            .and_then(|o| o.addr)
            .ok_or_else(|| ClientError::Invalid(format!("osd.{osd} has no address")))?;
        let peer = PeerAddr::named(format!("osd.{osd}"), addr);
        let reply = self
            .monc()
            .endpoint()
            .request(&peer, frame, timeout)
            .await
            .map_err(|e| ClientError::Protocol(format!("osd.{osd}: {e}")))?;
        Ok((osd, reply))
    }

    /// Creates a replicated pool (`min_size` 0: `size - size / 2`) and
    /// waits until this client's map has it.
    pub async fn create_pool(
        &self,
        name: &str,
        pg_num: u32,
        size: u32,
        min_size: u32,
    ) -> Result<(), ClientError> {
        let reply = self
            .inner
            .monc
            .command_reply(MonCommand::PoolCreate {
                name: name.to_string(),
                pg_num,
                size,
                min_size,
                rule: String::new(),
            })
            .await?;
        if let MonResult::Err(e) = reply.result {
            return Err(ClientError::Command(e));
        }
        self.wait_for_epoch(reply.osdmap_epoch, self.inner.opts.op_timeout)
            .await
    }
}

fn pg_ref(pg: PgId) -> PgRef {
    PgRef {
        pool: pg.pool,
        seed: pg.seed,
    }
}
