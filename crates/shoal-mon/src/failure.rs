//! Failure detection at the leader: OSD beacons, failure reports from
//! peers, and the decisions "mark down" and "mark out". Soft state, kept
//! by the leader only and reset when leadership changes (a new leader gives
//! every OSD a full grace period before judging it). Pure: times are passed
//! in (monotonic ms for beacons and reports, wall-clock ms for down-out).

use std::collections::{BTreeMap, BTreeSet};

use shoal_map::{CrushLocation, OsdMap};

/// Reports from OSDs under one bucket of this CRUSH type count as one
/// reporter (Ceph's `mon_osd_reporter_subtree_level`): the OSDs of a host
/// cut off from the rest cannot, between them, mark healthy peers down.
const REPORTER_SUBTREE: &str = "host";

/// Timing of failure detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailurePolicy {
    /// No beacon for this long: down.
    pub beacon_grace_ms: u64,
    /// Reports from this many distinct hosts (within the grace): down,
    /// even while the OSD still beacons.
    pub min_reporters: usize,
    /// Down this long (wall clock): out. 0 disables.
    pub down_out_interval_ms: u64,
}

/// The leader's record of OSD liveness.
#[derive(Debug, Default)]
pub struct FailureDetector {
    last_beacon: BTreeMap<i32, u64>,
    reports: BTreeMap<i32, BTreeMap<String, u64>>,
    /// OSDs a down/out proposal is in flight for (not proposed again).
    proposed_down: BTreeSet<i32>,
    proposed_out: BTreeSet<i32>,
}

/// What the leader should propose.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// OSDs to mark down.
    pub down: Vec<i32>,
    /// OSDs to mark out.
    pub out: Vec<i32>,
}

impl FailureDetector {
    /// Starts judging at `now`: every up OSD gets a full grace.
    pub fn reset(&mut self, map: &OsdMap, now: u64) {
        self.last_beacon = map
            .osd_ids()
            .filter(|&id| map.is_up(id))
            .map(|id| (id, now))
            .collect();
        self.reports.clear();
        self.proposed_down.clear();
        self.proposed_out.clear();
    }

    /// An OSD sent a beacon. It reaches the monitors, but its peers'
    /// reports still count: an OSD its peers cannot reach cannot serve its
    /// PGs' chains, and the PGs heal only once it is marked down. (It boots
    /// again by itself as soon as it reaches a peer.)
    pub fn beacon(&mut self, osd: i32, now: u64) {
        self.last_beacon.insert(osd, now);
    }

    /// `reporter` could not reach `target`.
    pub fn report(&mut self, target: i32, reporter: &str, now: u64) {
        self.reports
            .entry(target)
            .or_default()
            .insert(reporter.to_string(), now);
    }

    /// `reporter` hears from `target` again: its report is withdrawn.
    pub fn cancel(&mut self, target: i32, reporter: &str) {
        if let Some(r) = self.reports.get_mut(&target) {
            r.remove(reporter);
        }
    }

    /// The map changed: forget proposals that took effect, start the grace
    /// of OSDs that came up.
    pub fn map_changed(&mut self, map: &OsdMap, now: u64) {
        self.proposed_down
            .retain(|&id| map.exists(id) && map.is_up(id));
        self.proposed_out
            .retain(|&id| map.exists(id) && map.is_in(id) && !map.is_up(id));
        for id in map.osd_ids() {
            if map.is_up(id) {
                self.last_beacon.entry(id).or_insert(now);
            } else {
                self.last_beacon.remove(&id);
                self.reports.remove(&id);
            }
        }
        self.last_beacon.retain(|&id, _| map.exists(id));
    }

    /// Decides which OSDs to mark down or out now. `now` is monotonic,
    /// `wall_ms` wall clock; `down_since` comes from the replicated state.
    pub fn judge(
        &mut self,
        map: &OsdMap,
        down_since: &BTreeMap<i32, u64>,
        policy: &FailurePolicy,
        now: u64,
        wall_ms: u64,
    ) -> Verdict {
        let mut v = Verdict::default();
        for id in map.osd_ids().filter(|&id| map.is_up(id)) {
            if self.proposed_down.contains(&id) {
                continue;
            }
            let silent = self
                .last_beacon
                .get(&id)
                .is_some_and(|&t| now.saturating_sub(t) > policy.beacon_grace_ms);
            let reporters = self.reports.get_mut(&id).map_or(0, |r| {
                r.retain(|_, &mut t| now.saturating_sub(t) <= policy.beacon_grace_ms);
                if r.len() < policy.min_reporters {
                    // Too few to matter however they are placed; spares
                    // walking the CRUSH map for each reporter.
                    return r.len();
                }
                r.keys()
                    .filter_map(|reporter| reporter_domain(map, reporter))
                    .collect::<BTreeSet<_>>()
                    .len()
            });
            if silent || reporters >= policy.min_reporters {
                v.down.push(id);
                self.proposed_down.insert(id);
            }
        }
        if policy.down_out_interval_ms > 0 {
            for (&id, &since) in down_since {
                if map.exists(id)
                    && !map.is_up(id)
                    && map.is_in(id)
                    && !self.proposed_out.contains(&id)
                    && wall_ms.saturating_sub(since) >= policy.down_out_interval_ms
                {
                    v.out.push(id);
                    self.proposed_out.insert(id);
                }
            }
        }
        v
    }

    /// A proposal failed to commit (leadership lost): it may be proposed
    /// again.
    pub fn forget_proposals(&mut self) {
        self.proposed_down.clear();
        self.proposed_out.clear();
    }
}

/// The bucket of [`REPORTER_SUBTREE`] type holding `reporter` (`osd.N`),
/// or the reporter itself when it is not an OSD placed under one; `None`
/// for an OSD the map has down (like Ceph, its reports do not count: it
/// may be the side of a partition that is cut off).
fn reporter_domain(map: &OsdMap, reporter: &str) -> Option<String> {
    let Some(id) = reporter
        .strip_prefix("osd.")
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|&id| map.exists(id))
    else {
        return Some(reporter.to_string());
    };
    if !map.is_up(id) {
        return None;
    }
    Some(
        CrushLocation::from_crush(map.crush(), id)
            .get(REPORTER_SUBTREE)
            .map_or_else(
                || reporter.to_string(),
                |b| format!("{REPORTER_SUBTREE}={b}"),
            ),
    )
}
