//! The head's side of peering (collect logs, catch members up, activate
//! them), and heartbeats — the IO around [`crate::peering::plan`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use shoal_net::Frame;
use shoal_proto::msg;
use shoal_proto::rep::{HeardFrom, PgActivate, PgLogState, PgQuery, PgQueryReply};

use crate::context::Osd;
use crate::missing::Missing;
use crate::parallel::{self, COPIES_AT_ONCE};
use crate::peering::{self, Catchup, PeerLog};
use crate::pg::{Activation, Interval, Pg};
use crate::rpc::{call, call_ack, pull_object, push_frame, refused};
use shoal_map::{OsdMap, PgId};
use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_proto::osd::PgRef;

/// Pauses between peering attempts: they start short (most refusals, e.g.
/// a member that has not got the epoch yet, clear within milliseconds)
/// and double.
const RETRY: shoal_net::Backoff = shoal_net::Backoff {
    initial: Duration::from_millis(20),
    max: Duration::from_millis(500),
};

/// Peers `pg` for `interval` until it is active or the interval ends.
pub async fn run(osd: Arc<Osd>, pg: Arc<Pg>, interval: Interval) {
    let mut failures = 0;
    loop {
        if pg.status().0.epoch != interval.epoch {
            return;
        }
        match peer_once(&osd, &pg, &interval).await {
            Ok(()) => return,
            Err(e) => {
                tracing::info!(pg = %pg.id, epoch = interval.epoch, reason = %e, "peering again shortly");
                failures += 1;
                tokio::time::sleep(RETRY.delay(failures)).await;
            }
        }
    }
}

/// A member's answer to a peering query: its log state, and when it last
/// heard from each OSD (in this OSD's clock).
type QueryAnswer = (Option<PgLogState>, HashMap<i32, std::time::Instant>);

async fn query(osd: &Osd, pg: &Pg, interval: u32, to: i32) -> Result<QueryAnswer, String> {
    let q = PgQuery {
        epoch: osd.map().epoch(),
        pg: pg.id,
        interval,
        shape: pg.status().0.shape(),
    };
    let frame = Frame::encode(msg::PG_QUERY, &q).map_err(|e| e.to_string())?;
    let reply = call(osd, to, &frame).await?;
    refused(to, &reply)?;
    let reply: PgQueryReply = reply.decode_body().map_err(|e| e.to_string())?;
    Ok((reply.state, heard_at(&reply.heard)))
}

/// When (in this OSD's clock) each OSD was last heard from, given how long
/// ago.
fn heard_at(heard: &[HeardFrom]) -> HashMap<i32, std::time::Instant> {
    let now = std::time::Instant::now();
    heard
        .iter()
        .map(|h| {
            let ago = Duration::from_millis(h.ms_ago);
            (h.osd, now.checked_sub(ago).unwrap_or(now))
        })
        .collect()
}

async fn peer_once(osd: &Arc<Osd>, pg: &Arc<Pg>, interval: &Interval) -> Result<(), String> {
    let me = osd.id;
    let epoch = interval.epoch;
    let map = osd.map();
    // The log in memory may be ahead of the store by writes of the last
    // interval still being stored: wait for them, so every object this
    // OSD serves, pushes or reports matches its log.
    if !pg.settle(osd.opts.peer_timeout).await {
        return Err("local writes still pending".into());
    }
    // The newest interval the monitors know went active: its members
    // may hold acknowledged writes nobody in this chain has seen.
    let recorded = record_active(osd, pg.id, 0, &[]).await?;
    let mine = pg.log_state();
    let mut peers = vec![PeerLog {
        osd: me,
        state: Some(mine.clone()),
    }];
    // When each answering member last heard from each OSD (read leases).
    let mut heard_by: BTreeMap<i32, HashMap<i32, std::time::Instant>> = BTreeMap::new();
    heard_by.insert(me, heard_at(&osd.heard_ago()));
    for &m in interval.acting.iter().filter(|&&m| m != me) {
        let (state, heard) = query(osd, pg, epoch, m).await?;
        heard_by.insert(m, heard);
        peers.push(PeerLog { osd: m, state });
    }
    // Members of earlier intervals that are still up may hold writes the
    // new members lack; ask them too (best effort: they may be gone).
    let mut asked: BTreeSet<i32> = peers.iter().map(|p| p.osd).collect();
    loop {
        let prior: BTreeSet<i32> = peers
            .iter()
            .filter_map(|p| p.state.as_ref())
            .flat_map(|s| s.info.last_acting.iter().copied())
            .chain(recorded.members.iter().copied())
            .filter(|o| !asked.contains(o) && map.is_up(*o))
            .collect();
        if prior.is_empty() {
            break;
        }
        for o in prior {
            asked.insert(o);
            match query(osd, pg, epoch, o).await {
                Ok((state, heard)) => {
                    heard_by.insert(o, heard);
                    peers.push(PeerLog { osd: o, state });
                }
                Err(e) => {
                    tracing::debug!(pg = %pg.id, osd = o, error = %e, "earlier member did not answer")
                }
            }
        }
    }
    let checked = peering::check_recorded(&peers, &recorded);
    let plan = checked.and_then(|()| peering::plan(&interval.acting, &peers));
    let plan = plan.map_err(|b| {
        if !pg.incomplete() {
            pg.set_incomplete(true);
            osd.stats_changed.notify_one();
        }
        format!("{b:?}")
    })?;
    pg.set_incomplete(false);
    if let Some(temp) = temporary_chain(&map, pg.id, interval, &plan, me) {
        crate::backfill::set_pg_temp(osd, pg.id, temp.clone()).await?;
        return Err(format!(
            "asked for pg_temp {temp:?}: members of {:?} need a backfill",
            interval.acting
        ));
    }

    let leases_lapse = read_lease_wait(osd, pg, &map, &peers, &recorded.members, &heard_by).await;

    // Bring this OSD to the authoritative state first: the head serves
    // every object from the moment the PG is active.
    let mut my_backfill = false;
    let mut pulled_all = Vec::new();
    match plan.catchup.get(&me) {
        Some(Catchup::Objects(objects)) => {
            pg.adopt_log(
                epoch,
                &plan.info,
                plan.log.clone(),
                plan.dups.clone(),
                objects.clone(),
            )
            .await
            .map_err(|e| e.1)?;
            let wanted: Vec<(String, Vec<i32>)> = objects
                .iter()
                .map(|n| (n.clone(), plan.sources.get(n).cloned().unwrap_or_default()))
                .collect();
            pull_each(osd, pg, epoch, wanted).await?;
        }
        Some(Catchup::Backfill) => {
            my_backfill = true;
            let all = crate::backfill::remote_range(osd, pg.id, plan.auth, None, None).await?;
            // Everything here is suspect until copied: what the
            // authoritative copy lists, what it lacks, and what this copy
            // holds (stale objects are removed by their pull).
            let (store, coll) = (pg.store().clone(), pg.coll.clone());
            let local = tokio::task::spawn_blocking(move || crate::pg::object_names(&store, &coll))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.1)?;
            let listed: BTreeSet<String> = all.iter().map(|(n, _)| n.clone()).collect();
            let mut suspect: BTreeSet<String> = listed.union(&plan.auth_missing).cloned().collect();
            suspect.extend(local.iter().cloned());
            // Local objects the authoritative copy does not list go when
            // this OSD activates (they were never pulled); if peering stops
            // first, they are in the missing set and the next attempt
            // copies their absence.
            pg.adopt_log(
                epoch,
                &plan.info,
                plan.log.clone(),
                plan.dups.clone(),
                suspect,
            )
            .await
            .map_err(|e| e.1)?;
            // What the authoritative copy lacks comes from another holder.
            let wanted: Vec<(String, Vec<i32>)> = all
                .into_iter()
                .filter(|(name, _)| !plan.auth_missing.contains(name))
                .map(|(name, _)| (name, vec![plan.auth]))
                .chain(
                    plan.auth_missing
                        .iter()
                        .map(|n| (n.clone(), plan.sources.get(n).cloned().unwrap_or_default())),
                )
                .collect();
            pulled_all = wanted.iter().map(|(n, _)| n.clone()).collect();
            pull_each(osd, pg, epoch, wanted).await?;
        }
        None => {}
    }
    // Members whose log does not reach the authoritative log's tail are
    // filled now; the others go active knowing what they lack, and the
    // head recovers it while serving.
    let mut members_missing = BTreeMap::new();
    for (&m, c) in plan.catchup.iter().filter(|(m, _)| **m != me) {
        match c {
            Catchup::Objects(o) => {
                members_missing.insert(m, o.clone());
            }
            Catchup::Backfill => {
                // After its own backfill this OSD's store still holds the
                // stale objects its activation removes: only what it
                // pulled is the PG's content (the simulation found this).
                let names = if my_backfill {
                    pulled_all.clone()
                } else {
                    let (store, coll) = (pg.store().clone(), pg.coll.clone());
                    tokio::task::spawn_blocking(move || crate::pg::object_names(&store, &coll))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.1)?
                };
                parallel::each(COPIES_AT_ONCE, names, |name| {
                    let (osd, pg) = (osd.clone(), pg.clone());
                    async move { push(&osd, &pg, epoch, m, &name).await }
                })
                .await?;
            }
        }
    }
    if let Some((at, silent)) = leases_lapse {
        tracing::info!(pg = %pg.id, epoch, earlier = ?silent, "waiting out the read leases of earlier members that did not answer");
        tokio::time::sleep_until(at).await;
    }
    // A slow attempt (an unreachable peer holds it for a timeout) must not
    // pull members back into an interval this OSD has left: they follow
    // the head's interval name.
    if pg.status().0.epoch != epoch {
        return Err("the interval ended".into());
    }
    for &m in interval.acting.iter().filter(|&&m| m != me) {
        let act = PgActivate {
            pushed: [0; 32],
            epoch: osd.map().epoch(),
            pg: pg.id,
            interval: epoch,
            shape: interval.shape(),
            info: plan.info.clone(),
            log: plan.log.clone(),
            dups: plan.dups.clone(),
            backfill: matches!(plan.catchup.get(&m), Some(Catchup::Backfill)),
            missing: members_missing
                .get(&m)
                .map(|o| o.iter().cloned().collect())
                .unwrap_or_default(),
        };
        let frame = Frame::encode(msg::PG_ACTIVATE, &act).map_err(|e| e.to_string())?;
        call_ack(osd, m, &frame).await?;
    }
    // No write is taken in an interval the monitors have not recorded:
    // a later head then knows to look for it (the simulation found a PG
    // going active on older data without this).
    record_active(osd, pg.id, epoch, &interval.acting).await?;
    let recovery = Missing::new(members_missing.iter().map(|(&m, o)| (m, o)));
    let recovering = !recovery.is_empty();
    let activated = pg
        .activate(Activation {
            interval: epoch,
            acting: interval.acting.clone(),
            info: plan.info,
            log: plan.log,
            dups: plan.dups,
            backfill: my_backfill,
            missing: BTreeSet::new(),
            recovery,
        })
        .await
        .map_err(|e| e.1)?;
    osd.start_links(pg, epoch, activated);
    if recovering {
        tokio::spawn(crate::recovery::run(osd.clone(), pg.clone(), epoch));
    }
    let pg_temp_set = map
        .pg_temp()
        .contains_key(&PgId::new(pg.id.pool, pg.id.seed));
    if interval.up != interval.acting || pg_temp_set {
        tokio::spawn(crate::backfill::run(
            osd.clone(),
            pg.clone(),
            interval.clone(),
        ));
    }
    // The monitors' `status` learns of the new state with the next beacon: now.
    osd.stats_changed.notify_one();
    Ok(())
}

/// When activation may go ahead as far as read leases go, and who it
/// waits for: members of earlier chains (`last_acting` of the answering
/// `peers`, and the monitors' `recorded` chain) that did not answer may
/// still serve reads in them, cut off with their old map, until their
/// lease lapses (`lease::lapse_bound`, from when their answering chain
/// mates last heard from them: `heard_by`). Members whose port refuses a
/// probe are gone and not waited for. `None`: no wait.
async fn read_lease_wait(
    osd: &Osd,
    pg: &Pg,
    map: &shoal_map::OsdMap,
    peers: &[PeerLog],
    recorded: &[i32],
    heard_by: &BTreeMap<i32, HashMap<i32, std::time::Instant>>,
) -> Option<(tokio::time::Instant, BTreeSet<i32>)> {
    let answered: BTreeSet<i32> = peers.iter().map(|p| p.osd).collect();
    let chains: Vec<Vec<i32>> = peers
        .iter()
        .filter_map(|p| p.state.as_ref())
        .map(|s| s.info.last_acting.clone())
        .chain(std::iter::once(recorded.to_vec()))
        .collect();
    let mut silent: BTreeSet<i32> = chains
        .iter()
        .flatten()
        .copied()
        .filter(|o| !answered.contains(o))
        .collect();
    let lease = osd.leases.lease();
    let now = std::time::Instant::now();
    let mut lapse = crate::lease::lapse_bound(&silent, &chains, heard_by, lease, now);
    if lapse > now {
        // A member whose address no longer has an open port serves nothing
        // there: only its own restart could, and that ends its leases.
        let gone = crate::lease::gone(osd.opts.addr.ip(), map, &silent).await;
        if !gone.is_empty() {
            tracing::info!(pg = %pg.id, ?gone, "silent earlier members are gone: no read lease to wait out");
            silent.retain(|o| !gone.contains(o));
            lapse = crate::lease::lapse_bound(&silent, &chains, heard_by, lease, now);
        }
    }
    (lapse > now).then(|| (tokio::time::Instant::now() + (lapse - now), silent))
}

/// Has the monitors record that `pg` goes active in `interval` with
/// `acting` (`interval` 0: only reads the record, through Paxos); returns
/// the record in force.
async fn record_active(
    osd: &Osd,
    pg: PgRef,
    interval: u32,
    acting: &[i32],
) -> Result<peering::Recorded, String> {
    let out = osd
        .monc
        .command(MonCommand::PgActivated {
            pg: pg.to_string(),
            interval,
            acting: acting.to_vec(),
        })
        .await
        .map_err(|e| format!("the monitors' activation record: {e}"))?;
    match out {
        CommandOutput::PgActive { epoch, acting } => Ok(peering::Recorded {
            epoch,
            members: acting,
        }),
        other => Err(format!(
            "the monitors answered an activation record with {other:?}"
        )),
    }
}

/// Most objects a head pulls while peering; one further behind asks for
/// a `pg_temp` and is backfilled while the others serve.
const HEAD_PULL_LIMIT: usize = 256;

/// When the chain is the up set but some member cannot catch up from the
/// log (or the head would have to pull much before serving): the chain
/// of up-to-date copies that should serve meanwhile (a `pg_temp`), if one
/// exists and differs from the current chain.
fn temporary_chain(
    map: &OsdMap,
    pg: PgRef,
    interval: &Interval,
    plan: &peering::Plan,
    me: i32,
) -> Option<Vec<i32>> {
    if interval.acting != interval.up {
        return None;
    }
    let behind = |m: i32| match plan.catchup.get(&m) {
        Some(Catchup::Backfill) => true,
        Some(Catchup::Objects(o)) => m == me && o.len() > HEAD_PULL_LIMIT,
        None => false,
    };
    if !interval.acting.iter().any(|&m| behind(m)) {
        return None;
    }
    let size = map
        .pool(pg.pool)
        .map_or(interval.acting.len(), |p| p.size as usize);
    let temp: Vec<i32> = plan
        .usable
        .iter()
        .copied()
        .filter(|&o| !behind(o) && map.is_up(o))
        .take(size)
        .collect();
    (!temp.is_empty() && temp != interval.acting).then_some(temp)
}

/// Pulls every `(object, sources)` from the first of its sources that
/// has it, a few objects at once.
async fn pull_each(
    osd: &Arc<Osd>,
    pg: &Arc<Pg>,
    interval: u32,
    wanted: Vec<(String, Vec<i32>)>,
) -> Result<(), String> {
    parallel::each(COPIES_AT_ONCE, wanted, |(name, sources)| {
        let (osd, pg) = (osd.clone(), pg.clone());
        async move { pull_from_any(&osd, &pg, interval, &sources, &name).await }
    })
    .await
}

/// Pulls `name` from the first of `sources` that has it.
async fn pull_from_any(
    osd: &Osd,
    pg: &Pg,
    interval: u32,
    sources: &[i32],
    name: &str,
) -> Result<(), String> {
    let mut why = format!("{name} is unfound: no peer that answered has it");
    for &from in sources.iter().filter(|&&s| s != osd.id) {
        match pull(osd, pg, interval, from, name).await {
            Ok(()) => return Ok(()),
            Err(e) => why = e,
        }
    }
    Err(why)
}

async fn pull(osd: &Osd, pg: &Pg, interval: u32, from: i32, name: &str) -> Result<(), String> {
    pull_object(osd, pg, interval, from, name, false).await
}

async fn push(osd: &Osd, pg: &Arc<Pg>, interval: u32, to: i32, name: &str) -> Result<(), String> {
    let frame = push_frame(osd, pg, interval, name, false).await?;
    call_ack(osd, to, &frame).await?;
    osd.recovery.record(frame.payload.len());
    Ok(())
}
