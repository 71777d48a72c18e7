//! Scrub at the head, the IO around [`crate::scrub::judge`]: page by page
//! (by object name), every chain member describes its copies
//! (`PG_SCRUB_MAP`: version, size, digests, and for a deep scrub the data
//! read back through its checksums); objects whose copies differ get a
//! second look under the object's lock once no write to them is in
//! flight, and only what still differs then is reported (and, asked to,
//! repaired from the authoritative copy).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_net::Frame;
use shoal_proto::msg;
use shoal_proto::osd::{Inconsistency, ScrubResult};
use shoal_proto::rep::{ScrubEntry, ScrubMapReply, ScrubMapRequest};

use crate::context::Osd;
use crate::pg::{Pg, Phase};
use crate::scrub::{self, Verdict};

/// Objects compared per page.
const PAGE: usize = 128;
/// Longest wait for a write in flight to an object under a second look.
const AT_REST_WAIT: Duration = Duration::from_secs(10);

/// Scrubs `pg` (this OSD must be its active head): the whole PG, or only
/// the objects named.
pub async fn run(
    osd: &Osd,
    pg: &Arc<Pg>,
    deep: bool,
    repair: bool,
    only: &[String],
) -> Result<ScrubResult, String> {
    let (interval, phase) = pg.status();
    if phase != Phase::Active || interval.acting.first() != Some(&osd.id) {
        return Err(format!(
            "osd.{} is not the active head of {}",
            osd.id, pg.id
        ));
    }
    let acting = interval.acting.clone();
    let mut objects = 0u64;
    let mut suspects: BTreeSet<String> = only.iter().cloned().collect();
    if only.is_empty() {
        let mut after: Option<String> = None;
        loop {
            let (mine, more) = local(pg, after.clone(), PAGE, Vec::new(), deep).await?;
            let end = if more {
                mine.last().map(|e| e.name.clone())
            } else {
                None
            };
            let mut maps = vec![(osd.id, mine)];
            for &m in &acting[1..] {
                maps.push((
                    m,
                    remote(osd, pg, m, deep, after.as_deref(), end.as_deref()).await?,
                ));
            }
            let names: BTreeSet<&str> = maps
                .iter()
                .flat_map(|(_, es)| es.iter().map(|e| e.name.as_str()))
                .collect();
            objects += names.len() as u64;
            for name in names {
                if scrub::judge(name, &copies(&maps, name)).is_some() {
                    suspects.insert(name.to_string());
                }
            }
            if end.is_none() {
                break;
            }
            after = end;
        }
    } else {
        objects = only.len() as u64;
    }
    let mut inconsistent = Vec::new();
    let mut left = BTreeSet::new();
    let mut repaired = 0;
    for name in suspects {
        let Some((v, fixed)) = examine(osd, pg, &acting, &name, deep, repair).await? else {
            pg.repaired(&name);
            continue;
        };
        repaired += fixed;
        if fixed < v.bad.len() as u64 {
            left.insert(name.clone());
        } else {
            pg.repaired(&name);
        }
        inconsistent.push(Inconsistency {
            object: v.object,
            bad: v.bad,
            good: v.good,
            why: v.why,
        });
    }
    if only.is_empty() {
        pg.set_inconsistent(left);
        pg.note_scrubbed(deep);
    }
    tracing::info!(pg = %pg.id, deep, objects, inconsistent = inconsistent.len(), repaired, "scrubbed");
    osd.stats_changed.notify_one();
    Ok(ScrubResult {
        pgid: pg.id.to_string(),
        deep,
        acting,
        objects,
        inconsistent,
        repaired,
    })
}

/// Scrubs, one PG at a time, each active PG this OSD heads whose last
/// scrub (deep scrub) is older than `[osd] scrub_interval_ms`
/// (`deep_scrub_interval_ms`). Reports only: `shoal pg repair` (or a read
/// that meets a bad copy) repairs.
pub async fn schedule(osd: Arc<Osd>) {
    let (light, deep) = (osd.opts.scrub_interval, osd.opts.deep_scrub_interval);
    let shortest = [light, deep].into_iter().filter(|d| !d.is_zero()).min();
    let Some(shortest) = shortest else {
        return;
    };
    let mut tick = tokio::time::interval(
        (shortest / 4).clamp(Duration::from_millis(100), Duration::from_secs(60)),
    );
    loop {
        tick.tick().await;
        for pg in osd.all_pgs() {
            if !pg.is_head() || pg.status().1 != Phase::Active {
                continue;
            }
            let (last, last_deep) = pg.scrubbed();
            let due_deep = !deep.is_zero() && last_deep.elapsed() >= deep;
            let due = due_deep || (!light.is_zero() && last.elapsed() >= light);
            if !due {
                continue;
            }
            if let Err(e) = run(&osd, &pg, due_deep, false, &[]).await {
                tracing::info!(pg = %pg.id, error = %e, "scheduled scrub did not run");
            }
        }
    }
}

fn copies<'a>(
    maps: &'a [(i32, Vec<ScrubEntry>)],
    name: &str,
) -> Vec<(i32, Option<&'a ScrubEntry>)> {
    maps.iter()
        .map(|(m, es)| {
            let e = es
                .binary_search_by(|e| e.name.as_str().cmp(name))
                .ok()
                .map(|i| &es[i]);
            (*m, e)
        })
        .collect()
}

/// A second look at `name` with no write to it in flight (its lock held
/// throughout); repairs it when asked. `None`: its copies agree.
async fn examine(
    osd: &Osd,
    pg: &Arc<Pg>,
    acting: &[i32],
    name: &str,
    deep: bool,
    repair: bool,
) -> Result<Option<(Verdict, u64)>, String> {
    let lock = pg.object_lock(name);
    let _guard = lock.lock().await;
    let waited = Instant::now();
    while pg.in_flight(name) {
        if waited.elapsed() > AT_REST_WAIT {
            return Err(format!("{name} never came to rest"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let only = vec![name.to_string()];
    let mut maps = vec![(osd.id, local(pg, None, 1, only.clone(), deep).await?.0)];
    for &m in &acting[1..] {
        maps.push((m, remote_only(osd, pg, m, deep, &only).await?));
    }
    let Some(v) = scrub::judge(name, &copies(&maps, name)) else {
        return Ok(None);
    };
    if !repair || v.good.is_empty() {
        return Ok(Some((v, 0)));
    }
    let epoch = pg.status().0.epoch;
    let mut fixed = 0;
    if v.bad.contains(&osd.id) {
        crate::rpc::pull_object(osd, pg, epoch, v.good[0], name, true).await?;
        fixed += 1;
    }
    let frame = crate::rpc::push_frame(osd, pg, epoch, name, true).await?;
    for &b in v.bad.iter().filter(|&&b| b != osd.id) {
        crate::rpc::call_ack(osd, b, &frame).await?;
        fixed += 1;
    }
    tracing::warn!(pg = %pg.id, object = name, bad = ?v.bad, why = %v.why, "repaired");
    Ok(Some((v, fixed)))
}

async fn local(
    pg: &Arc<Pg>,
    after: Option<String>,
    limit: usize,
    only: Vec<String>,
    deep: bool,
) -> Result<(Vec<ScrubEntry>, bool), String> {
    let pg = pg.clone();
    tokio::task::spawn_blocking(move || pg.scrub_entries(after.as_deref(), limit, &only, deep))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.1)
}

async fn ask(osd: &Osd, to: i32, req: &ScrubMapRequest) -> Result<ScrubMapReply, String> {
    let frame = Frame::encode(msg::PG_SCRUB_MAP, req).map_err(|e| e.to_string())?;
    let reply: ScrubMapReply = crate::rpc::call(osd, to, &frame)
        .await?
        .decode_body()
        .map_err(|e| e.to_string())?;
    if reply.error.is_empty() {
        Ok(reply)
    } else {
        Err(format!("osd.{to}: {}", reply.error))
    }
}

async fn remote_only(
    osd: &Osd,
    pg: &Pg,
    to: i32,
    deep: bool,
    only: &[String],
) -> Result<Vec<ScrubEntry>, String> {
    let req = ScrubMapRequest {
        epoch: osd.map().epoch(),
        pg: pg.id,
        deep,
        start_after: None,
        limit: only.len() as u32,
        only: only.to_vec(),
    };
    Ok(ask(osd, to, &req).await?.entries)
}

/// Member `to`'s entries after `after` up to `end`.
async fn remote(
    osd: &Osd,
    pg: &Pg,
    to: i32,
    deep: bool,
    after: Option<&str>,
    end: Option<&str>,
) -> Result<Vec<ScrubEntry>, String> {
    let mut out = Vec::new();
    let mut cursor = after.map(String::from);
    loop {
        let req = ScrubMapRequest {
            epoch: osd.map().epoch(),
            pg: pg.id,
            deep,
            start_after: cursor.clone(),
            limit: PAGE as u32,
            only: Vec::new(),
        };
        let reply = ask(osd, to, &req).await?;
        let last = reply.entries.last().map(|e| e.name.clone());
        for e in reply.entries {
            if !crate::scan::in_range(&e.name, after, end) {
                return Ok(out);
            }
            out.push(e);
        }
        if !reply.more || last.is_none() {
            return Ok(out);
        }
        // A listing must move forward, or a bad peer would keep us here.
        if last <= cursor {
            return Err(format!("osd.{}'s listing does not move forward", to));
        }
        cursor = last;
    }
}
