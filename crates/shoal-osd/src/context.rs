//! The running OSD as its tasks and request handlers share it: settings,
//! store, monitor client, endpoint, the current map, the PG table, what it
//! heard from its peers, and the counters it reports.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use shoal_conf::ShoalConf;
use shoal_map::{OsdMap, PgId};
use shoal_monc::MonClient;
use shoal_net::{Endpoint, FaultInjector, PeerAddr};
use shoal_proto::mon::{KeyValue, MonCommand};
use shoal_proto::osd::PgRef;
use shoal_store::{Store, StoreConfig};

use crate::error::OsdError;
use crate::pg::LogLimits;

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
    pub(crate) endpoint: OnceLock<Endpoint>,
    pub(crate) map: RwLock<Arc<OsdMap>>,
    /// The PGs this OSD has a copy of (changed under `pg_lifecycle`).
    pub(crate) pg_ids: Mutex<BTreeSet<PgRef>>,
    pub(crate) last_heard: Mutex<HashMap<i32, Instant>>,
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
    pub(crate) pgs_epoch: tokio::sync::watch::Sender<u32>,
    /// Per pool, the `pg_num` every PG copy here is split for (changed
    /// under `pg_lifecycle`; a pool's PGs are looked at again when its
    /// `pg_num` differs).
    pub(crate) split_for: Mutex<HashMap<i64, u32>>,
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

    /// Whether this OSD has a copy of PG `id`.
    pub fn has_pg(&self, id: PgRef) -> bool {
        self.pg_ids_lock().contains(&id)
    }

    /// The PGs this OSD has a copy of.
    pub fn pg_ids(&self) -> Vec<PgRef> {
        self.pg_ids_lock().iter().copied().collect()
    }

    pub(crate) fn pg_ids_lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<PgRef>> {
        lock(&self.pg_ids)
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
}

/// Opens the store of OSD `id` as configured.
pub fn store_config(conf: &ShoalConf, id: i32) -> StoreConfig {
    let mut cfg = StoreConfig::new(conf.osd_data_dir(id), conf.osd.store_bytes);
    cfg.read_cache_bytes = conf.osd.read_cache_bytes;
    cfg
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

/// The PG id of a map PG.
pub fn pg_ref(pg: PgId) -> PgRef {
    PgRef {
        pool: pg.pool,
        seed: pg.seed,
    }
}

/// Locks `m` (daemons abort on panic, so a poisoned lock only means its
/// holder's panic is aborting the process: the data is taken as it is).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
