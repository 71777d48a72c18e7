//! Recovery while active, the head's IO around [`crate::missing::Missing`]:
//! a background task per PG pushes what the members lack (a few objects at
//! a time per OSD, `[osd] recovery_max_active`), and a client op on an
//! object some member lacks recovers it first.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::context::Osd;
use crate::exec::OpError;
use crate::pg::{Pg, Phase};

/// Pause after a failed push before trying the PG's next object.
const RETRY: Duration = Duration::from_millis(500);

/// Pushes `name` to `members` (they lack it), updating the head's book;
/// returns the bytes sent. The caller holds the object's lock: no write
/// to it is in flight. `priority`: the pushes' stream priority
/// ([`crate::rpc::BACKGROUND`] when nobody waits for them).
async fn push_to(
    osd: &Osd,
    pg: &Arc<Pg>,
    interval: u32,
    name: &str,
    members: &BTreeSet<i32>,
    priority: i32,
) -> Result<usize, String> {
    let frame = crate::rpc::push_frame(osd, pg, interval, name, false).await?;
    let bytes = frame.payload.len();
    for &m in members {
        crate::rpc::call_ack_with(osd, m, &frame, priority).await?;
        pg.recovered(name, m);
        osd.recovery.record(bytes);
    }
    Ok(bytes * members.len())
}

/// Head: before a client op on `name` (its object lock held), brings it
/// to every member that lacks it.
pub async fn before_op(osd: &Osd, pg: &Arc<Pg>, name: &str) -> Result<(), OpError> {
    let members = pg.recovery_take(name);
    if members.is_empty() {
        return Ok(());
    }
    let interval = pg.status().0.epoch;
    let _slot = osd.throttle.object_slot().await;
    // A client waits for this one.
    let r = push_to(osd, pg, interval, name, &members, 0).await;
    pg.recovery_release(name);
    r.map(|_| ())
        .map_err(|e| crate::exec::unavailable(format!("recovering {name}: {e}")))
}

/// Most objects of one PG recovered at once (the OSD-wide limit is
/// `recovery_max_active`).
const PER_PG_ACTIVE: usize = 8;

/// Head: recovers the PG's missing objects in the background until none
/// are left or the interval ends, several objects at a time.
pub async fn run(osd: Arc<Osd>, pg: Arc<Pg>, interval: u32) {
    let started = std::time::Instant::now();
    let workers = osd.throttle.limits().max_active.clamp(1, PER_PG_ACTIVE);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(worker(osd.clone(), pg.clone(), interval));
    }
    let mut copies = 0u64;
    let mut ended = false;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Some(n)) => copies += n,
            _ => ended = true,
        }
    }
    if !ended {
        tracing::info!(pg = %pg.id, epoch = interval, copies, ms = started.elapsed().as_millis() as u64, "recovered");
    }
    osd.stats_changed.notify_one();
}

/// One of a PG's recovery workers: takes the next object nobody is
/// recovering until none is left (the copies it made) or the interval
/// ends (`None`). A failed object is released and taken again.
async fn worker(osd: Arc<Osd>, pg: Arc<Pg>, interval: u32) -> Option<u64> {
    let mut copies = 0u64;
    loop {
        let (current, phase) = pg.status();
        if current.epoch != interval || phase != Phase::Active {
            return None;
        }
        let slot = osd.throttle.object_slot().await?;
        let Some((name, _)) = pg.recovery_next() else {
            return Some(copies);
        };
        // Writes to the object wait; the book may have changed meanwhile.
        let lock = pg.object_lock(&name);
        let guard = lock.lock().await;
        let members = pg.recovery_take(&name);
        let result = if members.is_empty() {
            Ok(0)
        } else {
            push_to(&osd, &pg, interval, &name, &members, crate::rpc::BACKGROUND).await
        };
        pg.recovery_release(&name);
        drop(guard);
        drop(slot);
        match result {
            Ok(bytes) => {
                copies += members.len() as u64;
                // Client IO gets its turn: the pause and the bandwidth cap.
                osd.throttle.pace(bytes).await;
            }
            Err(e) => {
                tracing::info!(pg = %pg.id, object = %name, error = %e, "recovery push failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
