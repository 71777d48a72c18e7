//! The OSD daemon: startup, map following (each new map brings every PG
//! to its interval and starts the head's peering), beacons, heartbeats and
//! failure reports.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use shoal_conf::ShoalConf;
use shoal_map::OsdMap;
use shoal_monc::{MonClient, MonClientOptions};
use shoal_net::{Endpoint, EndpointConfig, FaultInjector, NodeIdentity};
use shoal_proto::mon::MonCommand;
use shoal_proto::osd::PgRef;
use shoal_store::Store;

use crate::context::{Osd, OsdOptions, boot, lock, store_config};
use crate::error::OsdError;
use crate::node::Node;
use crate::pg::{Interval, Phase};
use crate::pglog::parse_collection;
use crate::service;
use crate::shard::Shards;

/// Installs a newer map and brings every PG to it.
pub async fn install_map(node: &Node, map: OsdMap) {
    let osd = &node.osd;
    let epoch = map.epoch();
    {
        let mut cur = match osd.map.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if epoch <= cur.epoch() {
            return;
        }
        if map.is_up(osd.id) {
            osd.seen_up
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        *cur = Arc::new(map);
        if let Some(f) = &osd.fault {
            for id in cur.osd_ids() {
                if let Some(addr) = cur.osd(id).and_then(|i| i.addr) {
                    f.register(&format!("osd.{id}"), addr);
                }
            }
        }
    }
    tracing::debug!(epoch, "new map");
    update_pgs(node).await;
}

async fn update_pgs(node: &Node) {
    let osd = &node.osd;
    let _lifecycle = osd.pg_lifecycle.lock().await;
    let map = osd.map();
    split_pools(node, &map).await;
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
                size: pool.size as usize,
                pg_temp: map.pg_temp().contains_key(&pg),
            };
            if interval.acting.contains(&osd.id) || interval.up.contains(&osd.id) || osd.has_pg(id)
            {
                wanted.insert(id, interval);
            }
        }
    }
    for (id, interval) in wanted {
        if !osd.has_pg(id) {
            let pg_num = map.pool(id.pool).map_or(0, |p| p.pg_num);
            match crate::pgstore::open(&osd.store, id, pg_num).await {
                Ok(loaded) => {
                    node.shards.open(id, loaded);
                    osd.pg_ids_lock().insert(id);
                }
                Err(e) => {
                    tracing::error!(pg = %id, error = %e, "cannot create the PG's collection");
                    continue;
                }
            }
        }
        node.shards.interval(id, interval);
    }
    // The shards have taken every interval before the epoch is announced.
    node.shards.visit_all(|_| Vec::<()>::new()).await;
    osd.pgs_epoch.send_if_modified(|e| {
        let newer = map.epoch() > *e;
        if newer {
            *e = map.epoch();
        }
        newer
    });
}

/// Splits the PG copies here of every pool whose `pg_num` grew (under
/// `pg_lifecycle`, before the map's intervals reach the PGs).
async fn split_pools(node: &Node, map: &OsdMap) {
    let osd = &node.osd;
    for pool in map.pools().values() {
        let done = lock(&osd.split_for).get(&pool.id) == Some(&pool.pg_num);
        if done {
            continue;
        }
        let mut all_split = true;
        let local: Vec<PgRef> = osd
            .pg_ids()
            .into_iter()
            .filter(|p| p.pool == pool.id)
            .collect();
        for pg in local {
            all_split &= split_pg(node, pg, pool).await;
        }
        if all_split {
            lock(&osd.split_for).insert(pool.id, pool.pg_num);
        }
    }
}

/// Splits PG copy `pg` for `pool`'s `pg_num` when it is split for fewer:
/// its machine closes, the split runs on its records on disk, and the PG
/// and its children open from disk. Returns whether the copy is split for
/// the pool's `pg_num` now.
async fn split_pg(node: &Node, pg: PgRef, pool: &shoal_map::Pool) -> bool {
    let osd = &node.osd;
    let old = match crate::pgstore::recorded_pg_num(&osd.store, pg) {
        Ok(Some(n)) if n >= pool.pg_num => return true,
        Ok(Some(n)) => n,
        // Made before splits were recorded: it holds what this pg_num says.
        Ok(None) => {
            let recorded = crate::pgstore::set_recorded_pg_num(&osd.store, pg, pool.pg_num).await;
            if let Err(e) = &recorded {
                tracing::error!(pg = %pg, error = %e, "cannot record the PG's pg_num");
            }
            return recorded.is_ok();
        }
        Err(e) => {
            tracing::error!(pg = %pg, error = %e, "cannot read the PG's split record");
            return false;
        }
    };
    node.shards
        .visit(pg, move |s| s.remove_if(pg, |_| true))
        .await;
    let result = crate::split::split(&osd.store, pg, old, pool).await;
    if let Err(e) = &result {
        tracing::error!(pg = %pg, error = %e.message, "the PG could not split; it stays whole");
    }
    let children = result.as_deref().unwrap_or_default();
    let mut ok = result.is_ok();
    for id in std::iter::once(pg).chain(children.iter().copied()) {
        match crate::pgstore::open(&osd.store, id, pool.pg_num).await {
            Ok(loaded) => {
                node.shards.open(id, loaded);
                osd.pg_ids_lock().insert(id);
            }
            Err(e) => {
                tracing::error!(pg = %id, error = %e, "cannot open the PG after its split");
                osd.pg_ids_lock().remove(&id);
                ok = false;
            }
        }
    }
    ok
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
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let osd = Arc::new(Osd {
        id,
        store: store.clone(),
        monc,
        opts: opts.clone(),
        endpoint: OnceLock::new(),
        map: RwLock::new(Arc::new(OsdMap::new(first_map.fsid()))),
        pg_ids: Mutex::new(BTreeSet::new()),
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
        split_for: Mutex::new(HashMap::new()),
    });
    let node = Arc::new(Node {
        osd: osd.clone(),
        shards: Shards::start(osd.clone(), shards),
    });
    let mut ep_config = EndpointConfig::new(opts.addr);
    ep_config.wire_mode = mon_opts.wire_mode;
    if let Some(f) = fault {
        ep_config = ep_config.with_fault(f);
    }
    let endpoint = Endpoint::builder(identity, ep_config)
        .request_handler(service::RequestService(node.clone()))
        .stream_handler(service::StreamService(node.clone()))
        .bind()?;
    let addr = endpoint.local_addr();
    let _ = osd.endpoint.set(endpoint.clone());

    // PGs already on disk (their intervals come with the map; those of
    // pools whose pg_num grew split as it is installed).
    for coll in store.list_collections()? {
        if let Some(pg) = parse_collection(&coll) {
            let pg_num = first_map.pool(pg.pool).map_or(0, |p| p.pg_num);
            let loaded = crate::pgstore::open(&store, pg, pg_num).await?;
            node.shards.open(pg, loaded);
            osd.pg_ids_lock().insert(pg);
        }
    }
    install_map(&node, first_map).await;

    boot(&osd, addr).await?;
    tracing::info!(osd = id, %addr, "booted");

    let tasks = [
        tokio::spawn(follow_maps(node.clone())),
        tokio::spawn(beacons(node.clone())),
        tokio::spawn(heartbeats(node.clone())),
        tokio::spawn(crate::rejoin::rejoin(osd.clone(), addr)),
        tokio::spawn(crate::strays::run(node.clone())),
        tokio::spawn(crate::schedule::scrubs(node.clone())),
        tokio::spawn(follow_limits(osd.clone())),
    ];
    shutdown.await;
    for t in tasks {
        t.abort();
    }
    node.shards.stop();
    endpoint.close();
    Ok(())
}

/// Long-polls the monitors for newer maps and installs them in order.
async fn follow_maps(node: Arc<Node>) {
    let osd = &node.osd;
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
                    install_map(&node, map).await;
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

async fn beacons(node: Arc<Node>) {
    let osd = &node.osd;
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
        // The PG states below reflect at least this epoch's map.
        let epoch = *osd.pgs_epoch.borrow();
        let pgs = node.shards.pg_stats(osd.id).await;
        let stats = crate::stats::report(pgs, &osd.io, &osd.recovery, &osd.store);
        if let Err(e) = osd
            .monc
            .command(MonCommand::OsdBeacon {
                id: osd.id,
                epoch,
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
async fn pg_peers(node: &Node) -> BTreeSet<i32> {
    let me = node.osd.id;
    let chains = node
        .shards
        .visit_all(move |s| {
            s.pgs
                .values()
                .filter(|slot| slot.pg.status().1 != Phase::Stray)
                .flat_map(|slot| slot.pg.status().0.acting.clone())
                .filter(|&o| o != me)
                .collect()
        })
        .await;
    chains.into_iter().collect()
}

/// Pings PG peers; reports to the monitors those silent past the grace.
async fn heartbeats(node: Arc<Node>) {
    let osd = &node.osd;
    let mut tick = tokio::time::interval(osd.opts.heartbeat_interval);
    let mut reported: HashMap<i32, Instant> = HashMap::new();
    // The boot epoch each peer's silence is counted from: a peer that
    // booted again starts with a clean slate, not with the silence of its
    // previous life (which would have it reported the moment it is up).
    let mut booted: HashMap<i32, u32> = HashMap::new();
    // Pings and failure reports in flight (each has its deadline).
    let mut sent = tokio::task::JoinSet::new();
    loop {
        tick.tick().await;
        while sent.try_join_next().is_some() {}
        osd.space.update(&osd.store.statfs());
        let map = osd.map();
        for peer_id in pg_peers(&node).await {
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
            sent.spawn(async move { crate::rpc::ping(&osd2, peer_id).await });
            let silent = last_heard.elapsed();
            if silent <= osd.opts.heartbeat_grace {
                if reported.remove(&peer_id).is_some() {
                    tracing::info!(peer = peer_id, "a reported peer answers again");
                    sent.spawn(send_failure(osd.clone(), peer_id, map.epoch(), true));
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
                sent.spawn(send_failure(osd.clone(), peer_id, map.epoch(), false));
            }
        }
    }
}

/// Reports `target` to the monitors as failed, or (`alive`) withdraws the
/// report.
async fn send_failure(osd: Arc<Osd>, target: i32, epoch: u32, alive: bool) {
    let report = MonCommand::OsdFailure {
        target,
        epoch,
        alive,
    };
    if let Err(e) = osd.monc.command(report).await {
        tracing::warn!(target, error = %e, "failure report not delivered");
    }
}
