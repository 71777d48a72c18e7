//! An OSD the monitors marked down while it runs — its beacons did not
//! arrive, or its peers could not reach it — boots again once it can reach
//! the cluster (Ceph's "wrongly marked me down"): it pings the up OSDs and
//! boots when one answers. Cut off, it stays down instead of flapping; a
//! boot that does not take is retried with a doubling delay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::context::{Osd, boot};

/// OSDs pinged per heartbeat interval while marked down.
const PINGS_PER_TICK: usize = 8;
/// Longest delay between two boot attempts.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Watches this OSD's state in the map; boots again when marked down.
pub async fn rejoin(osd: Arc<Osd>, addr: SocketAddr) {
    let mut tick = tokio::time::interval(osd.opts.heartbeat_interval);
    let mut down_since: Option<Instant> = None;
    let mut attempts = 0u32;
    let mut next_try = Instant::now();
    let mut round = 0usize;
    let mut unseen_since: Option<Instant> = None;
    // Pings in flight (each has its deadline).
    let mut pings = tokio::task::JoinSet::new();
    loop {
        tick.tick().await;
        while pings.try_join_next().is_some() {}
        let map = osd.map();
        if !map.exists(osd.id) {
            continue;
        }
        if map.is_up(osd.id) {
            down_since = None;
            unseen_since = None;
            attempts = 0;
            continue;
        }
        // Until a map showed this OSD up (any map installed, not just the
        // one now: it may have been up and down again between two ticks),
        // "down" only means its boot has not reached the map yet, for a
        // while: an OSD cut off right after booting never sees the map
        // that has it up, and is marked down again meanwhile (the
        // simulation found it staying down for good).
        let unseen = *unseen_since.get_or_insert_with(Instant::now);
        if !osd.seen_up.load(Ordering::Relaxed)
            && attempts == 0
            && unseen.elapsed() < osd.opts.heartbeat_grace * 2
        {
            continue;
        }
        let since = *down_since.get_or_insert_with(|| {
            tracing::warn!(
                osd = osd.id,
                epoch = map.epoch(),
                "marked down while running"
            );
            Instant::now()
        });
        let others: Vec<i32> = map
            .osd_ids()
            .filter(|&o| o != osd.id && map.is_up(o))
            .collect();
        // A few of them per tick, in turn (a big cluster is not pinged whole).
        for k in 0..others.len().min(PINGS_PER_TICK) {
            let o = others[(round + k) % others.len()];
            let osd2 = osd.clone();
            pings.spawn(async move { crate::rpc::ping(&osd2, o).await });
        }
        round = round.wrapping_add(PINGS_PER_TICK);
        let reachable = others.is_empty() || others.iter().any(|&o| osd.heard_since(o, since));
        if !reachable || Instant::now() < next_try {
            continue;
        }
        attempts += 1;
        osd.seen_up.store(false, Ordering::Relaxed);
        match boot(&osd, addr).await {
            Ok(()) => tracing::info!(osd = osd.id, attempts, "booted again"),
            Err(e) => tracing::warn!(osd = osd.id, error = %e, "boot refused"),
        }
        let delay = shoal_net::Backoff {
            initial: osd.opts.heartbeat_grace,
            max: MAX_RETRY,
        }
        .delay(attempts + 1);
        next_try = Instant::now() + delay;
    }
}
