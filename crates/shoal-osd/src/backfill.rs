//! Backfill, the head's IO around [`crate::scan::differences`]: while a
//! `pg_temp` chain serves, the head fills each OSD of the up set that is
//! not in the chain by comparing object lists page by page, then pushes
//! what was written meanwhile (from the log) until little is left, hands
//! the target its log, and clears the `pg_temp` so the chain switches to
//! the up set, which then needs only a short log catch-up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use shoal_net::Frame;
use shoal_proto::mon::MonCommand;
use shoal_proto::msg;
use shoal_proto::osd::{ObjVersion, PgRef};
use shoal_proto::rep::{BackfillStep, PgBackfill, PgLogState, PgScan, PgScanReply};

use crate::context::Osd;
use crate::pg::{Interval, Pg, Phase};
use crate::{parallel, scan};

/// Objects compared per page.
const PAGE: usize = 256;
/// Pause before trying a failed step again.
const RETRY: Duration = Duration::from_millis(500);
/// A catch-up round that pushed at most this many objects ends the backfill.
const FINAL_ROUND: usize = 16;
/// Catch-up rounds before giving up (and starting over).
const MAX_ROUNDS: usize = 50;

fn current(pg: &Pg, epoch: u32) -> bool {
    let (interval, phase) = pg.status();
    interval.epoch == epoch && phase == Phase::Active
}

/// Head of a `pg_temp` chain: fills every OSD of the up set outside the
/// chain, then clears the `pg_temp`. Ends early if the interval ends.
pub async fn run(osd: Arc<Osd>, pg: Arc<Pg>, interval: Interval) {
    let epoch = interval.epoch;
    let targets: Vec<i32> = interval
        .up
        .iter()
        .copied()
        .filter(|o| !interval.acting.contains(o))
        .collect();
    if !targets.is_empty() {
        pg.set_backfilling(true);
        osd.stats_changed.notify_one();
    }
    // One PG backfilled at a time per `max_backfills` slot.
    let _slot = osd.throttle.backfill_slot().await;
    for &t in &targets {
        loop {
            if !current(&pg, epoch) {
                return;
            }
            let started = std::time::Instant::now();
            match fill(&osd, &pg, epoch, t).await {
                Ok(copies) => {
                    tracing::info!(pg = %pg.id, target = t, copies, ms = started.elapsed().as_millis() as u64, "backfilled");
                    break;
                }
                Err(e) => {
                    tracing::info!(pg = %pg.id, target = t, error = %e, "backfill step failed; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
    // Every target caught up: switch the chain to the up set.
    while current(&pg, epoch) {
        match set_pg_temp(&osd, pg.id, Vec::new()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::info!(pg = %pg.id, error = %e, "cannot clear pg_temp; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Asks the monitors for a temporary chain (`osds` empty: none).
pub async fn set_pg_temp(osd: &Osd, pg: PgRef, osds: Vec<i32>) -> Result<(), String> {
    osd.monc
        .command(MonCommand::PgTemp {
            pg: pg.to_string(),
            osds,
        })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn step(
    osd: &Osd,
    pg: &Pg,
    epoch: u32,
    target: i32,
    step: BackfillStep,
) -> Result<(), String> {
    let req = PgBackfill {
        epoch: osd.map().epoch(),
        pg: pg.id,
        interval: epoch,
        shape: pg.status().0.shape(),
        step,
    };
    let frame = Frame::encode(msg::PG_BACKFILL, &req).map_err(|e| e.to_string())?;
    crate::rpc::call_ack(osd, target, &frame).await
}

/// Fills `target`; returns the objects pushed.
async fn fill(osd: &Arc<Osd>, pg: &Arc<Pg>, epoch: u32, target: i32) -> Result<u64, String> {
    step(osd, pg, epoch, target, BackfillStep::Start).await?;
    // The scan reads the store, which may lag the log by writes still
    // being stored: they count as written after the scan began, so the
    // rounds push them (under their object's lock, once stored). Taking
    // the log's end here lost such a write (the kill test found it).
    let mut since = pg.local_through();
    let mut copies = scan_all(osd, pg, epoch, target).await?;
    for _ in 0..MAX_ROUNDS {
        let PgLogState { info, log, .. } = pg.log_state();
        if info.log_tail > since {
            // Writes trimmed the log past where the scan began: the
            // objects they touched are unknown; compare everything again
            // (unchanged objects cost a listing, not a copy).
            since = info.last_update;
            copies += scan_all(osd, pg, epoch, target).await?;
            continue;
        }
        // Everything up to `info.last_update` is in place once these are.
        let written: BTreeSet<String> = log
            .iter()
            .filter(|e| e.version > since)
            .map(|e| e.object.clone())
            .collect();
        copies += written.len() as u64;
        push_each(osd, pg, epoch, target, written.iter().cloned().collect()).await?;
        since = info.last_update;
        if written.len() <= FINAL_ROUND {
            // The log as it stands now, with everything written while the
            // pushes went as missing: a pushed copy may or may not have
            // those writes, and must never be newer than its log (a retry
            // would be applied to it twice: the simulation found it).
            let now = pg.log_state();
            let missing: BTreeSet<String> = now
                .log
                .iter()
                .filter(|e| e.version > since)
                .map(|e| e.object.clone())
                .collect();
            let finish = BackfillStep::Finish {
                info: now.info,
                log: now.log,
                dups: now.dups,
                missing: missing.into_iter().collect(),
            };
            step(osd, pg, epoch, target, finish).await?;
            return Ok(copies);
        }
    }
    Err("client writes outpace the backfill".into())
}

/// Compares the whole PG with `target`'s copy and pushes the differences.
async fn scan_all(osd: &Arc<Osd>, pg: &Arc<Pg>, epoch: u32, target: i32) -> Result<u64, String> {
    let mut after: Option<String> = None;
    let mut copies = 0;
    loop {
        let (pg2, a2) = (pg.clone(), after.clone());
        let (local, more) = tokio::task::spawn_blocking(move || pg2.scan(a2.as_deref(), PAGE))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.1)?;
        let end = if more {
            local.last().map(|o| o.0.clone())
        } else {
            None
        };
        let remote = remote_range(osd, pg.id, target, after.as_deref(), end.as_deref()).await?;
        let differ = scan::differences(&local, &remote);
        copies += differ.len() as u64;
        push_each(osd, pg, epoch, target, differ).await?;
        if end.is_none() {
            return Ok(copies);
        }
        after = end;
    }
}

/// `target`'s objects after `after` up to `end` (any role answers:
/// chain members, strays, backfill targets).
pub async fn remote_range(
    osd: &Osd,
    pg: PgRef,
    target: i32,
    after: Option<&str>,
    end: Option<&str>,
) -> Result<Vec<(String, ObjVersion)>, String> {
    let mut out = Vec::new();
    let mut cursor = after.map(String::from);
    loop {
        let req = PgScan {
            epoch: osd.map().epoch(),
            pg,
            start_after: cursor.clone(),
            limit: PAGE as u32,
        };
        let frame = Frame::encode(msg::PG_SCAN, &req).map_err(|e| e.to_string())?;
        let reply: PgScanReply = crate::rpc::call(osd, target, &frame)
            .await?
            .decode_body()
            .map_err(|e| e.to_string())?;
        if !reply.error.is_empty() {
            return Err(format!("osd.{target}: {}", reply.error));
        }
        let last = reply.objects.last().map(|o| o.0.clone());
        for o in reply.objects {
            if !scan::in_range(&o.0, after, end) {
                return Ok(out);
            }
            out.push(o);
        }
        if !reply.more || last.is_none() {
            return Ok(out);
        }
        // A listing must move forward, or a bad peer would keep us here.
        if last <= cursor {
            return Err(format!("osd.{}'s listing does not move forward", target));
        }
        cursor = last;
    }
}

/// Pushes every object of `names` to `target`, a few at once.
async fn push_each(
    osd: &Arc<Osd>,
    pg: &Arc<Pg>,
    epoch: u32,
    target: i32,
    names: Vec<String>,
) -> Result<(), String> {
    parallel::each(parallel::COPIES_AT_ONCE, names, |name| {
        let (osd, pg) = (osd.clone(), pg.clone());
        async move { push_one(&osd, &pg, epoch, target, &name).await }
    })
    .await
}

/// Pushes `name`'s current state (or its absence) to `target`, under the
/// object's lock so no write to it is half applied here.
async fn push_one(
    osd: &Osd,
    pg: &Arc<Pg>,
    epoch: u32,
    target: i32,
    name: &str,
) -> Result<(), String> {
    let bytes = {
        let _slot = osd.throttle.object_slot().await;
        let lock = pg.object_lock(name);
        let _guard = lock.lock().await;
        let frame = crate::rpc::push_frame(osd, pg, epoch, name, false).await?;
        crate::rpc::call_ack_with(osd, target, &frame, crate::rpc::BACKGROUND).await?;
        osd.recovery.record(frame.payload.len());
        frame.payload.len()
    };
    osd.throttle.pace(bytes).await;
    Ok(())
}
