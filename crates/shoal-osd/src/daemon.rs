//! The OSD daemon: store, endpoint, map following, PG lifecycle, peering,
//! heartbeats and beacons.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use shoal_client::{MonClient, MonClientOptions};
use shoal_conf::ShoalConf;
use shoal_map::{OsdMap, PgId};
use shoal_net::{Endpoint, EndpointConfig, FaultInjector, NodeIdentity, PeerAddr};
use shoal_proto::mon::{KeyValue, MonCommand};
use shoal_proto::osd::PgRef;
use shoal_store::{Store, StoreConfig};

use crate::error::OsdError;
use crate::pg::{Activated, Interval, LogLimits, Pg};
use crate::pglog::parse_collection;
use crate::{links, peer, service};

/// What the daemon runs with.
#[derive(Debug, Clone)]
pub struct OsdOptions {
    /// The OSD id.
    pub id: i32,
    /// Address to serve on.
    pub addr: SocketAddr,
    /// CRUSH location.
    pub location: Vec<KeyValue>,
    /// Beacon interval.
    pub beacon_interval: Duration,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Silence after which a peer is reported.
    pub heartbeat_grace: Duration,
    /// How long a heartbeat answer lets this OSD serve reads of a chain
    /// (`lease.rs`): half the grace. Shorter than Ceph's four fifths: a
    /// lapsed lease is renewed by a ping on the read itself, so a short one
    /// costs a round trip now and then, and it bounds how long a new head
    /// waits after an operator marks a silent OSD down.
    pub read_lease: Duration,
    /// PG log length and trimmed requests remembered.
    pub log_limits: LogLimits,
    /// Deadline of one peer request.
    pub peer_timeout: Duration,
    /// Accept fault-injection commands (tests only).
    pub fault_injection: bool,
    /// Refresh interval of the caps copy.
    pub caps_refresh: Duration,
    /// Recovery and backfill limits at start.
    pub limits: crate::throttle::Limits,
    /// Store use (fraction of capacity) at which this OSD is full.
    pub full_ratio: f64,
    /// Scrub each headed PG this often (zero: never by schedule).
    pub scrub_interval: Duration,
    /// Deep-scrub each headed PG this often (zero: never by schedule).
    pub deep_scrub_interval: Duration,
}

impl OsdOptions {
    /// Options for OSD `id` from the configuration.
    pub fn from_conf(conf: &ShoalConf, id: i32) -> Result<Self, OsdError> {
        let o = &conf.osd;
        let addr = o
            .addr
            .parse()
            .map_err(|e| OsdError::Config(format!("[osd] addr {:?}: {e}", o.addr)))?;
        Ok(OsdOptions {
            id,
            addr,
            location: parse_location(&o.location)?,
            beacon_interval: Duration::from_millis(o.beacon_interval_ms),
            heartbeat_interval: Duration::from_millis(o.heartbeat_interval_ms),
            heartbeat_grace: Duration::from_millis(o.heartbeat_grace_ms),
            read_lease: Duration::from_millis(o.heartbeat_grace_ms / 2),
            log_limits: LogLimits {
                entries: o.pg_log_entries as usize,
                dups: o.pg_log_dups as usize,
            },
            peer_timeout: Duration::from_millis(o.peer_timeout_ms),
            fault_injection: o.fault_injection,
            caps_refresh: Duration::from_millis(o.caps_refresh_ms),
            limits: crate::throttle::Limits {
                max_active: o.recovery_max_active.max(1) as usize,
                max_backfills: o.max_backfills.max(1) as usize,
                sleep: Duration::from_millis(o.recovery_sleep_ms),
                bytes_per_sec: o.recovery_max_bytes_per_sec,
            },
            full_ratio: o.full_ratio,
            scrub_interval: Duration::from_millis(o.scrub_interval_ms),
            deep_scrub_interval: Duration::from_millis(o.deep_scrub_interval_ms),
        })
    }
}

/// `host=h1, rack=r1` as key/value pairs (empty: `host=<hostname>`;
/// `root=default` unless a root is named).
pub fn parse_location(text: &str) -> Result<Vec<KeyValue>, OsdError> {
    let mut out = Vec::new();
    for part in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| OsdError::Config(format!("location part {part:?} is not type=name")))?;
        out.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        });
    }
    if out.is_empty() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        out.push(KeyValue {
            key: "host".into(),
            value: host,
        });
    }
    // As in Ceph, a location names its root only when it is not `default`.
    if !out.iter().any(|kv| kv.key == "root") {
        out.push(KeyValue {
            key: "root".into(),
            value: "default".into(),
        });
    }
    Ok(out)
}

/// The running OSD, shared by its tasks and request handlers.
pub struct Osd {
    /// Its id.
    pub id: i32,
    /// Its store.
    pub store: Arc<Store>,
    /// The monitors.
    pub monc: MonClient,
    /// Settings.
    pub opts: OsdOptions,
    endpoint: OnceLock<Endpoint>,
    map: RwLock<Arc<OsdMap>>,
    pgs: Mutex<HashMap<PgRef, Arc<Pg>>>,
    last_heard: Mutex<HashMap<i32, Instant>>,
    /// Read leases from the chain mates' heartbeat answers.
    pub leases: crate::lease::ReadLeases,
    /// Client IO served, reported with the beacons.
    pub io: crate::stats::IoStats,
    /// Fault injector of this OSD's endpoints (`[osd] fault_injection`).
    pub fault: Option<FaultInjector>,
    /// Client caps, from the monitors.
    pub auth: crate::auth::AuthCache,
    /// A PG this OSD heads changed state: beacon (with stats) early.
    pub stats_changed: tokio::sync::Notify,
    /// Recovery copies made, reported with the beacons.
    pub recovery: crate::stats::RecoveryStats,
    /// Recovery and backfill limits (`[osd]`, then `osd/*` config keys).
    pub throttle: crate::throttle::Throttle,
    /// A map installed since the last boot showed this OSD up.
    pub seen_up: std::sync::atomic::AtomicBool,
    /// Held while PGs are created (a new map) or deleted (stray copies).
    pub pg_lifecycle: tokio::sync::Mutex<()>,
    /// Whether this OSD's store and its peers' are full.
    pub space: crate::space::Space,
    /// The newest map epoch whose PG changes are applied.
    pgs_epoch: tokio::sync::watch::Sender<u32>,
}

impl Osd {
    /// The endpoint (set once at start).
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.get()
    }

    /// The current map.
    pub fn map(&self) -> Arc<OsdMap> {
        match self.map.read() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Waits (at most `within`) until the PGs follow map `epoch`: a peer
    /// that sent a request from a newer map than this OSD has finds the
    /// PG it asks about in the interval it means, instead of a refusal
    /// and a retry. Returns whether they do.
    pub async fn pgs_reach(&self, epoch: u32, within: Duration) -> bool {
        let mut rx = self.pgs_epoch.subscribe();
        tokio::time::timeout(within, rx.wait_for(|&e| e >= epoch))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The PG, if this OSD has it.
    pub fn pg(&self, id: PgRef) -> Option<Arc<Pg>> {
        self.pgs_lock().get(&id).cloned()
    }

    /// Every PG this OSD has.
    pub fn all_pgs(&self) -> Vec<Arc<Pg>> {
        self.pgs_lock().values().cloned().collect()
    }

    /// Drops PG `id` from this OSD's table (its copy is being deleted).
    pub fn forget_pg(&self, id: PgRef) {
        self.pgs_lock().remove(&id);
    }

    fn pgs_lock(&self) -> std::sync::MutexGuard<'_, HashMap<PgRef, Arc<Pg>>> {
        match self.pgs.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// How to reach OSD `id` according to the current map.
    pub fn peer_addr(&self, id: i32) -> Option<PeerAddr> {
        let addr = self.map().osd(id)?.addr?;
        Some(PeerAddr::named(format!("osd.{id}"), addr))
    }

    /// Notes that `osd` answered (heartbeats, replication traffic).
    pub fn heard_from(&self, osd: i32) {
        if let Ok(mut h) = self.last_heard.lock() {
            h.insert(osd, Instant::now());
        }
    }

    /// How long ago this OSD last heard from each OSD (for peering's
    /// read-lease bound).
    pub fn heard_ago(&self) -> Vec<shoal_proto::rep::HeardFrom> {
        let h = match self.last_heard.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        h.iter()
            .map(|(&osd, t)| shoal_proto::rep::HeardFrom {
                osd,
                ms_ago: t.elapsed().as_millis() as u64,
            })
            .collect()
    }

    /// Whether `osd` answered (or pinged us) after `since`.
    pub fn heard_since(&self, osd: i32, since: Instant) -> bool {
        let h = match self.last_heard.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        h.get(&osd).is_some_and(|&t| t > since)
    }

    /// Installs a newer map and brings every PG to it.
    pub async fn install_map(self: &Arc<Self>, map: OsdMap) {
        let epoch = map.epoch();
        {
            let mut cur = match self.map.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if epoch <= cur.epoch() {
                return;
            }
            if map.is_up(self.id) {
                self.seen_up
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            *cur = Arc::new(map);
            if let Some(f) = &self.fault {
                for id in cur.osd_ids() {
                    if let Some(addr) = cur.osd(id).and_then(|i| i.addr) {
                        f.register(&format!("osd.{id}"), addr);
                    }
                }
            }
        }
        tracing::debug!(epoch, "new map");
        self.update_pgs().await;
    }

    async fn update_pgs(self: &Arc<Self>) {
        let _lifecycle = self.pg_lifecycle.lock().await;
        let map = self.map();
        let mut ws = map.new_workspace();
        let mut wanted: HashMap<PgRef, Interval> = HashMap::new();
        for pool in map.pools().values() {
            let Ok(pgs) = map.pool_pgs(pool.id) else {
                continue;
            };
            for pg in pgs {
                let Ok(ua) = map.pg_to_up_acting(pg, &mut ws) else {
                    continue;
                };
                let acting = ua.chain();
                let up = ua.up_chain();
                let id = PgRef {
                    pool: pg.pool,
                    seed: pg.seed,
                };
                let up_from = acting
                    .iter()
                    .map(|&o| map.osd(o).map_or(0, |i| i.up_from))
                    .collect();
                let interval = Interval {
                    epoch: map.epoch(),
                    acting,
                    up,
                    up_from,
                    min_size: pool.min_size.max(1) as usize,
                };
                if interval.acting.contains(&self.id)
                    || interval.up.contains(&self.id)
                    || self.pg(id).is_some()
                {
                    wanted.insert(id, interval);
                }
            }
        }
        for (id, interval) in wanted {
            let pg = match self.pg(id) {
                Some(pg) => pg,
                None => {
                    match Pg::open(self.store.clone(), id, self.id, self.opts.log_limits).await {
                        Ok(pg) => {
                            self.pgs_lock().insert(id, pg.clone());
                            pg
                        }
                        Err(e) => {
                            tracing::error!(pg = %id, error = %e, "cannot create the PG's collection");
                            continue;
                        }
                    }
                }
            };
            let head = interval.acting.first() == Some(&self.id);
            if pg.set_interval(interval.clone()) && head {
                tokio::spawn(peer::run(self.clone(), pg, interval));
            }
        }
        self.pgs_epoch.send_if_modified(|e| {
            let newer = map.epoch() > *e;
            if newer {
                *e = map.epoch();
            }
            newer
        });
    }

    /// Starts the links of an activated PG.
    pub fn start_links(&self, pg: &Pg, interval: u32, act: Activated) {
        let Some(endpoint) = self.endpoint().cloned() else {
            return;
        };
        if let Some((next, writes, acked)) = act.downstream {
            if let Some(addr) = self.peer_addr(next) {
                let topic = shoal_proto::rep::rep_topic(pg.id, interval);
                tokio::spawn(links::run_downstream(
                    endpoint.clone(),
                    addr,
                    topic,
                    writes,
                    acked,
                ));
            }
        }
        if let Some((prev, done)) = act.upstream {
            if let Some(addr) = self.peer_addr(prev) {
                let topic = shoal_proto::rep::ack_topic(pg.id, interval);
                tokio::spawn(links::run_upstream(
                    endpoint, addr, topic, pg.id, interval, done,
                ));
            }
        }
    }
}

/// Opens the store of OSD `id` as configured.
pub fn store_config(conf: &ShoalConf, id: i32) -> StoreConfig {
    let mut cfg = StoreConfig::new(conf.osd_data_dir(id), conf.osd.store_bytes);
    cfg.read_cache_bytes = conf.osd.read_cache_bytes;
    cfg
}

/// Runs OSD `id` until `shutdown` resolves.
pub async fn run(
    conf: &ShoalConf,
    id: i32,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), OsdError> {
    let opts = OsdOptions::from_conf(conf, id)?;
    let store = Arc::new(Store::open(&store_config(conf, id))?);
    let name = format!("osd.{id}");
    let identity = NodeIdentity::load(&conf.keyring_dir(), &name)?;
    let mons = conf.mons().map_err(OsdError::Config)?;
    let fault = opts.fault_injection.then(FaultInjector::new);
    let mon_opts = MonClientOptions::from_conf(conf)?;
    let monc = MonClient::with_fault(identity.clone(), mons, mon_opts, fault.clone())?;
    let first_map = monc.osdmap().await?;
    let osd = Arc::new(Osd {
        id,
        store: store.clone(),
        monc,
        opts: opts.clone(),
        endpoint: OnceLock::new(),
        map: RwLock::new(Arc::new(OsdMap::new(first_map.fsid()))),
        pgs: Mutex::new(HashMap::new()),
        last_heard: Mutex::new(HashMap::new()),
        leases: crate::lease::ReadLeases::new(opts.read_lease),
        io: Default::default(),
        fault: fault.clone(),
        auth: crate::auth::AuthCache::new(opts.caps_refresh),
        stats_changed: tokio::sync::Notify::new(),
        recovery: Default::default(),
        throttle: crate::throttle::Throttle::new(opts.limits),
        seen_up: Default::default(),
        pg_lifecycle: tokio::sync::Mutex::new(()),
        space: crate::space::Space::new(opts.id, opts.full_ratio),
        pgs_epoch: tokio::sync::watch::Sender::new(0),
    });
    let mut ep_config = EndpointConfig::new(opts.addr);
    ep_config.wire_mode = mon_opts.wire_mode;
    if let Some(f) = fault {
        ep_config = ep_config.with_fault(f);
    }
    let endpoint = Endpoint::builder(identity, ep_config)
        .request_handler(service::RequestService(osd.clone()))
        .stream_handler(service::StreamService(osd.clone()))
        .bind()?;
    let addr = endpoint.local_addr();
    let _ = osd.endpoint.set(endpoint.clone());

    // PGs already on disk (their intervals come with the map).
    for coll in store.list_collections()? {
        if let Some(pg) = parse_collection(&coll) {
            let p = Pg::open(store.clone(), pg, id, opts.log_limits).await?;
            osd.pgs_lock().insert(pg, p);
        }
    }
    osd.install_map(first_map).await;

    boot(&osd, addr).await?;
    tracing::info!(osd = id, %addr, "booted");

    let tasks = [
        tokio::spawn(follow_maps(osd.clone())),
        tokio::spawn(beacons(osd.clone())),
        tokio::spawn(heartbeats(osd.clone())),
        tokio::spawn(crate::rejoin::rejoin(osd.clone(), addr)),
        tokio::spawn(crate::strays::run(osd.clone())),
        tokio::spawn(crate::scrubber::schedule(osd.clone())),
        tokio::spawn(follow_limits(osd.clone())),
    ];
    shutdown.await;
    for t in tasks {
        t.abort();
    }
    endpoint.close();
    Ok(())
}

/// Tells the monitors this OSD is up at `addr` (they record a new boot
/// epoch, so its PGs start new intervals).
pub async fn boot(osd: &Osd, addr: SocketAddr) -> Result<(), OsdError> {
    let weight = osd.store.statfs().total as f64 / (1u64 << 40) as f64;
    osd.monc
        .command(MonCommand::OsdBoot {
            id: osd.id,
            addr: addr.to_string(),
            location: osd.opts.location.clone(),
            crush_weight: weight.max(0.0001),
        })
        .await?;
    Ok(())
}

/// Long-polls the monitors for newer maps and installs them in order.
async fn follow_maps(osd: Arc<Osd>) {
    loop {
        let current = osd.map();
        match osd
            .monc
            .newer_osdmaps(&current, Duration::from_secs(30))
            .await
        {
            // Every epoch in turn: a PG's interval is named by the epoch
            // it began in, which members must agree on.
            Ok(maps) => {
                for map in maps {
                    osd.install_map(map).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "map subscription failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Least time between two beacons sent early for a PG state change.
const EARLY_BEACON_GAP: Duration = Duration::from_millis(50);

async fn beacons(osd: Arc<Osd>) {
    let mut tick = tokio::time::interval(osd.opts.beacon_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = osd.stats_changed.notified() => {
                // Let the other PGs of the same map change settle first.
                tokio::time::sleep(EARLY_BEACON_GAP).await;
                tick.reset();
            }
        }
        let map = osd.map();
        let pgs: Vec<Arc<Pg>> = osd.pgs_lock().values().cloned().collect();
        let stats = crate::stats::report(osd.id, &map, &pgs, &osd.io, &osd.recovery, &osd.store);
        if let Err(e) = osd
            .monc
            .command(MonCommand::OsdBeacon {
                id: osd.id,
                epoch: map.epoch(),
                stats,
            })
            .await
        {
            tracing::warn!(error = %e, "beacon not delivered");
        }
    }
}

/// Reads the recovery limits from the config keys every beacon interval,
/// on a task of its own so slow monitor answers never delay a beacon.
async fn follow_limits(osd: Arc<Osd>) {
    let mut tick = tokio::time::interval(osd.opts.beacon_interval);
    loop {
        tick.tick().await;
        refresh_limits(&osd).await;
    }
}

/// Reads the `osd/<limit>` config keys and puts them in force (a key
/// that is absent keeps the value in force; a bad one is logged).
async fn refresh_limits(osd: &Osd) {
    let mut limits = osd.throttle.limits();
    for name in crate::throttle::KEYS {
        let key = format!("osd/{name}");
        let value = match osd.monc.command(MonCommand::ConfigKeyGet { key }).await {
            Ok(shoal_proto::mon::CommandOutput::Value(Some(v))) => v,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "config keys not read");
                return;
            }
        };
        match limits.with(name, &String::from_utf8_lossy(&value)) {
            Ok(l) => limits = l,
            Err(e) => tracing::warn!(error = %e, "ignoring a recovery limit"),
        }
    }
    osd.throttle.set(limits).await;
}

/// The OSDs this one shares a PG with.
fn pg_peers(osd: &Osd) -> BTreeSet<i32> {
    let pgs: Vec<Arc<Pg>> = osd.pgs_lock().values().cloned().collect();
    let mut out = BTreeSet::new();
    for pg in pgs {
        let (interval, phase) = pg.status();
        if phase != crate::pg::Phase::Stray {
            out.extend(interval.acting.iter().copied().filter(|&o| o != osd.id));
        }
    }
    out
}

/// Pings PG peers; reports to the monitors those silent past the grace.
async fn heartbeats(osd: Arc<Osd>) {
    let mut tick = tokio::time::interval(osd.opts.heartbeat_interval);
    let mut reported: HashMap<i32, Instant> = HashMap::new();
    // The boot epoch each peer's silence is counted from: a peer that
    // booted again starts with a clean slate, not with the silence of its
    // previous life (which would have it reported the moment it is up).
    let mut booted: HashMap<i32, u32> = HashMap::new();
    loop {
        tick.tick().await;
        osd.space.update(&osd.store.statfs());
        let map = osd.map();
        for peer_id in pg_peers(&osd) {
            if !map.is_up(peer_id) {
                continue;
            }
            let up_from = map.osd(peer_id).map_or(0, |i| i.up_from);
            let rebooted = booted.insert(peer_id, up_from) != Some(up_from);
            let last_heard = {
                let mut h = match osd.last_heard.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if rebooted {
                    h.insert(peer_id, Instant::now());
                }
                *h.entry(peer_id).or_insert_with(Instant::now)
            };
            let osd2 = osd.clone();
            tokio::spawn(async move { peer::ping(&osd2, peer_id).await });
            let silent = last_heard.elapsed();
            if silent <= osd.opts.heartbeat_grace {
                if reported.remove(&peer_id).is_some() {
                    tracing::info!(peer = peer_id, "a reported peer answers again");
                    send_failure(&osd, peer_id, map.epoch(), true);
                }
                continue;
            }
            let recently = reported
                .get(&peer_id)
                .is_some_and(|t| t.elapsed() < osd.opts.heartbeat_grace);
            if !recently {
                tracing::warn!(
                    peer = peer_id,
                    silent_ms = silent.as_millis() as u64,
                    "reporting a silent peer"
                );
                reported.insert(peer_id, Instant::now());
                send_failure(&osd, peer_id, map.epoch(), false);
            }
        }
    }
}

/// Reports `target` to the monitors as failed, or (`alive`) withdraws the
/// report; in the background.
fn send_failure(osd: &Arc<Osd>, target: i32, epoch: u32, alive: bool) {
    let osd = osd.clone();
    tokio::spawn(async move {
        let _ = osd
            .monc
            .command(MonCommand::OsdFailure {
                target,
                epoch,
                alive,
            })
            .await;
    });
}

/// The PG id of a map PG.
pub fn pg_ref(pg: PgId) -> PgRef {
    PgRef {
        pool: pg.pool,
        seed: pg.seed,
    }
}
