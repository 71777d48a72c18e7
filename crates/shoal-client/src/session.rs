//! What one connection to a cluster shares between its [`crate::Cluster`]
//! handle, its [`crate::IoCtx`]s and the objecter: the monitor client, the
//! newest OSDMap (kept up to date by a subscription task that lives as
//! long as the session), the PG chain cache and the request ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use shoal_conf::ShoalConf;
use shoal_map::OsdMap;
use shoal_monc::MonClient;
use shoal_proto::osd::ReqId;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::placement::ChainCache;

/// How a [`Cluster`] runs object operations.
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    /// Give up on an object operation after this long (retries included).
    pub op_timeout: Duration,
    /// Deadline of one attempt at one OSD.
    pub osd_timeout: Duration,
    /// Pieces of one striped object read or written at once.
    pub pieces_in_flight: usize,
    /// Spread reads over every chain member (CRAQ apportioned reads)
    /// instead of sending them all to the head.
    pub balance_reads: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            op_timeout: Duration::from_secs(60),
            osd_timeout: Duration::from_secs(10),
            pieces_in_flight: 8,
            balance_reads: true,
        }
    }
}

impl ClientOptions {
    /// The options of a configuration's `[client]` section.
    pub fn from_conf(conf: &ShoalConf) -> Self {
        let c = &conf.client;
        ClientOptions {
            op_timeout: Duration::from_millis(c.op_timeout_ms),
            osd_timeout: Duration::from_millis(c.osd_timeout_ms),
            pieces_in_flight: c.pieces_in_flight.max(1) as usize,
            balance_reads: c.balance_reads,
        }
    }
}

/// The state of one connection (see the module doc).
pub(crate) struct Session {
    pub(crate) monc: Arc<MonClient>,
    /// The newest OSDMap; the follower task and [`crate::Cluster::ioctx`] install
    /// newer ones.
    map: Arc<watch::Sender<Arc<OsdMap>>>,
    /// PG chains of the current epoch (CRUSH once per PG and map, not per op).
    pub(crate) chains: ChainCache,
    pub(crate) opts: ClientOptions,
    client_id: u64,
    next_tid: AtomicU64,
    next_member: AtomicUsize,
    follower: JoinHandle<()>,
}

/// Installs `map` if it is newer than the one `tx` holds.
fn install(tx: &watch::Sender<Arc<OsdMap>>, map: OsdMap) {
    tx.send_if_modified(|cur| {
        let newer = map.epoch() > cur.epoch();
        if newer {
            tracing::debug!(epoch = map.epoch(), "new OSDMap");
            *cur = Arc::new(map);
        }
        newer
    });
}

impl Drop for Session {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl Session {
    /// Fetches the OSDMap and starts following it.
    pub(crate) async fn start(
        monc: MonClient,
        opts: ClientOptions,
    ) -> Result<Session, ClientError> {
        let monc = Arc::new(monc);
        let first = monc.osdmap().await?;
        let map = Arc::new(watch::Sender::new(Arc::new(first)));
        let follower = tokio::spawn(follow_maps(monc.clone(), map.clone()));
        let client_id = monc.client_id();
        Ok(Session {
            monc,
            map,
            chains: ChainCache::default(),
            opts,
            client_id,
            next_tid: AtomicU64::new(1),
            next_member: AtomicUsize::new(0),
            follower,
        })
    }

    /// Installs `map` if it is newer than the one held.
    pub(crate) fn install(&self, map: OsdMap) {
        install(&self.map, map);
    }

    /// Watches the map.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<OsdMap>> {
        self.map.subscribe()
    }

    /// A fresh request id (a retry of the same request keeps its id).
    pub(crate) fn next_reqid(&self) -> ReqId {
        ReqId {
            client: self.client_id,
            tid: self.next_tid.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Which chain member a balanced read goes to (round robin).
    pub(crate) fn pick_member(&self, len: usize) -> usize {
        self.next_member.fetch_add(1, Ordering::Relaxed) % len.max(1)
    }

    pub(crate) fn osdmap(&self) -> Arc<OsdMap> {
        self.map.borrow().clone()
    }

    /// Waits until the map's epoch is above `epoch` or `wait` passes.
    pub(crate) async fn map_newer_than(&self, epoch: u32, wait: Duration) {
        let mut rx = self.map.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|m| m.epoch() > epoch)).await;
    }
}

/// Pauses before subscribing again after a failed subscription.
const RESUBSCRIBE: shoal_net::Backoff = shoal_net::Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_millis(1600),
};

/// Keeps `tx` at the newest OSDMap.
async fn follow_maps(monc: Arc<MonClient>, tx: Arc<watch::Sender<Arc<OsdMap>>>) {
    let mut failures = 0u32;
    loop {
        let current = tx.borrow().clone();
        match monc.newer_osdmap(&current, Duration::from_secs(30)).await {
            Ok(Some(map)) => {
                failures = 0;
                install(&tx, map);
            }
            Ok(None) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "OSDMap subscription failed");
                tokio::time::sleep(RESUBSCRIBE.delay(failures)).await;
            }
        }
    }
}
