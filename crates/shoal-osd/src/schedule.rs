//! The OSD's scrub schedule: each active PG this OSD heads is scrubbed
//! (deep-scrubbed) once its last scrub of the whole PG is older than
//! `[osd] scrub_interval_ms` (`deep_scrub_interval_ms`), one scheduled
//! scrub at a time per shard. Reports only: `shoal pg repair` (or a read
//! that meets a bad copy) repairs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::node::Node;
use crate::pg::{Event, Phase, ScrubRequest};
use crate::shard::Shard;

/// A scheduled scrub that has not reported back after this long no longer
/// holds its shard's turn (its PG changed interval, or it went away).
const GIVE_UP: Duration = Duration::from_secs(600);

/// Starts the scrubs that are due, every quarter of the shortest interval.
pub async fn scrubs(node: Arc<Node>) {
    let opts = &node.osd.opts;
    let (light, deep) = (opts.scrub_interval, opts.deep_scrub_interval);
    let shortest = [light, deep].into_iter().filter(|d| !d.is_zero()).min();
    let Some(shortest) = shortest else {
        return;
    };
    let mut tick = tokio::time::interval(
        (shortest / 4).clamp(Duration::from_millis(100), Duration::from_secs(60)),
    );
    loop {
        tick.tick().await;
        node.shards
            .visit_all(move |s| {
                start_due(s, light, deep);
                Vec::<()>::new()
            })
            .await;
    }
}

/// On one shard: if no scheduled scrub runs, starts the most overdue one.
fn start_due(s: &mut Shard, light: Duration, deep: Duration) {
    let now = Instant::now();
    if s.scheduled_scrub
        .is_some_and(|(pg, at)| s.pgs.contains_key(&pg) && now - at < GIVE_UP)
    {
        return;
    }
    s.scheduled_scrub = None;
    let due = s
        .pgs
        .values()
        .filter(|slot| slot.pg.is_head() && slot.pg.status().1 == Phase::Active)
        .filter_map(|slot| {
            let (last, last_deep) = slot.scrubbed;
            let due_deep = !deep.is_zero() && last_deep.elapsed() >= deep;
            let due = due_deep || (!light.is_zero() && last.elapsed() >= light);
            due.then_some((last.min(last_deep), slot.pg.id(), due_deep))
        })
        .min();
    let Some((_, pg, deep)) = due else {
        return;
    };
    s.scheduled_scrub = Some((pg, now));
    let req = ScrubRequest {
        op: None,
        deep,
        repair: false,
        only: Vec::new(),
    };
    s.feed(pg, Event::Scrub(req));
}
