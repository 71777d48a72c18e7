//! PG states, usage and client IO rates, from the stats OSDs send with
//! their beacons. Soft state, like Ceph's manager: the leader keeps the
//! latest report of each OSD in memory (a new leader learns them again
//! within a beacon interval); nothing here goes through Paxos.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use shoal_map::{OsdMap, PgId};
use shoal_proto::report::{
    IoCounters, IoRates, OsdDfEntry, OsdStats, PgLsEntry, PgStat, PgStateCount, RecoveryCounters,
};

/// Most PGs one report may carry; the rest are ignored.
pub const MAX_REPORTED_PGS: usize = 1 << 16;
/// Longest PG state name accepted.
const MAX_STATE_LEN: usize = 64;
/// State of a PG whose head has not reported it.
pub const UNKNOWN: &str = "unknown";
/// Prefix of the state of a PG whose head's reports stopped.
const STALE: &str = "stale+";

/// PG reports by PG: the reporting OSD and its report.
type Reports<'a> = HashMap<PgId, (i32, &'a PgStat)>;

struct Entry {
    at_ms: u64,
    /// The newest map epoch the report's PG states reflect.
    epoch: u32,
    stats: OsdStats,
    rates: IoRates,
    recovery_rate: RecoveryCounters,
}

/// Every PG of a map and its head (`None`: no live member).
type Heads = Vec<(PgId, Option<i32>)>;

/// Store use (fractions of capacity) that health calls nearfull and full
/// (`[osd] nearfull_ratio`, `full_ratio`; the OSDs refuse writes at full).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FullRatios {
    /// `OSD_NEARFULL` from here.
    pub nearfull: f64,
    /// `OSD_FULL` from here.
    pub full: f64,
}

impl Default for FullRatios {
    fn default() -> Self {
        FullRatios {
            nearfull: 0.85,
            full: 0.95,
        }
    }
}

/// The latest report of every OSD.
#[derive(Default)]
pub struct PgStats {
    osds: HashMap<i32, Entry>,
    ratios: FullRatios,
    /// The heads of the map `status` last asked about, by its epoch:
    /// CRUSH over every PG runs once per map, not once per `status` (this
    /// runs on the monitor's driver task).
    heads: std::sync::Mutex<Option<(u32, Arc<Heads>)>>,
}

/// Every PG of `map` with its head.
fn heads_of(map: &OsdMap) -> Heads {
    let mut ws = map.new_workspace();
    let mut out = Vec::new();
    for (pool_id, pool) in map.pools() {
        for seed in 0..pool.pg_num {
            let pg = PgId::new(*pool_id, seed);
            let head = map
                .pg_to_up_acting(pg, &mut ws)
                .ok()
                .and_then(|ua| ua.chain().first().copied());
            out.push((pg, head));
        }
    }
    out
}

/// What `status` shows of the reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// PGs by state, most first.
    pub pgs_by_state: Vec<PgStateCount>,
    /// Objects in PGs reported by their current head.
    pub num_objects: u64,
    /// Store bytes used, over up OSDs.
    pub raw_used: u64,
    /// Store capacity, over up OSDs.
    pub raw_total: u64,
    /// Client IO per second, over up OSDs.
    pub io: IoRates,
    /// Object copies PG members still lack (Ceph's degraded objects), in
    /// PGs reported by their current head.
    pub degraded_objects: u64,
    /// Recovery copies per second, over up OSDs.
    pub recovery_rate: RecoveryCounters,
    /// Recovery copies made since each OSD last started, over every OSD
    /// that reported.
    pub recovered: RecoveryCounters,
    /// Up OSDs whose store is full, with the fraction used.
    pub full_osds: Vec<(i32, f64)>,
    /// Up OSDs whose store is nearfull (not full), with the fraction used.
    pub nearfull_osds: Vec<(i32, f64)>,
}

/// The state of a PG with every copy where CRUSH places it, complete.
pub const CLEAN: &str = "active+clean";

impl Summary {
    /// How many PGs are in a state `pick` accepts.
    pub fn count_pgs(&self, pick: impl Fn(&str) -> bool) -> u32 {
        self.pgs_by_state
            .iter()
            .filter(|c| pick(&c.state))
            .map(|c| c.count)
            .sum()
    }

    /// No reports: every PG unknown, nothing counted.
    pub fn unknown(num_pgs: u32) -> Self {
        Summary {
            pgs_by_state: vec![PgStateCount {
                state: UNKNOWN.into(),
                count: num_pgs,
            }],
            num_objects: 0,
            raw_used: 0,
            raw_total: 0,
            io: zero_rates(),
            degraded_objects: 0,
            recovery_rate: RecoveryCounters::default(),
            recovered: RecoveryCounters::default(),
            full_osds: Vec::new(),
            nearfull_osds: Vec::new(),
        }
    }
}

fn sorted(mut osds: Vec<(i32, f64)>) -> Vec<(i32, f64)> {
    osds.sort_by_key(|o| o.0);
    osds
}

fn per_second(now: u64, then: u64, ms: u64) -> u64 {
    if ms == 0 {
        return 0;
    }
    // Counters that went backwards belong to a restarted OSD: no rate.
    now.checked_sub(then)
        .map_or(0, |d| d.saturating_mul(1000) / ms)
}

fn rates(prev: &IoCounters, cur: &IoCounters, ms: u64) -> IoRates {
    IoRates {
        read_ops: per_second(cur.read_ops, prev.read_ops, ms),
        read_bytes: per_second(cur.read_bytes, prev.read_bytes, ms),
        write_ops: per_second(cur.write_ops, prev.write_ops, ms),
        write_bytes: per_second(cur.write_bytes, prev.write_bytes, ms),
    }
}

fn zero_rates() -> IoRates {
    IoRates {
        read_ops: 0,
        read_bytes: 0,
        write_ops: 0,
        write_bytes: 0,
    }
}

impl PgStats {
    /// No reports yet; health calls stores nearfull and full at `ratios`.
    pub fn with_ratios(ratios: FullRatios) -> Self {
        PgStats {
            ratios,
            ..PgStats::default()
        }
    }

    /// Records OSD `id`'s report received at `now_ms`, of its PGs as of
    /// map `epoch`; its IO rates are the change since its previous report.
    pub fn record(&mut self, id: i32, epoch: u32, mut stats: OsdStats, now_ms: u64) {
        stats.pgs.truncate(MAX_REPORTED_PGS);
        stats.pgs.retain(|p| p.state.len() <= MAX_STATE_LEN);
        let (rates, recovery_rate) = match self.osds.get(&id) {
            Some(prev) if now_ms > prev.at_ms => {
                let ms = now_ms - prev.at_ms;
                let (p, c) = (&prev.stats.recovery, &stats.recovery);
                (
                    rates(&prev.stats.io, &stats.io, ms),
                    RecoveryCounters {
                        objects: per_second(c.objects, p.objects, ms),
                        bytes: per_second(c.bytes, p.bytes, ms),
                    },
                )
            }
            Some(prev) => (prev.rates.clone(), prev.recovery_rate.clone()),
            None => (zero_rates(), RecoveryCounters::default()),
        };
        self.osds.insert(
            id,
            Entry {
                at_ms: now_ms,
                epoch,
                stats,
                rates,
                recovery_rate,
            },
        );
    }

    /// The heads of `map`'s PGs, computed once per epoch.
    fn heads(&self, map: &OsdMap) -> Arc<Heads> {
        let mut cached = match self.heads.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match &*cached {
            Some((epoch, heads)) if *epoch == map.epoch() => heads.clone(),
            _ => {
                let heads = Arc::new(heads_of(map));
                *cached = Some((map.epoch(), heads.clone()));
                heads
            }
        }
    }

    /// Whether every up OSD of `map` reported its PGs as of `epoch` or later.
    pub fn all_reported(&self, map: &OsdMap, epoch: u32) -> bool {
        map.osd_ids()
            .filter(|&id| map.is_up(id))
            .all(|id| self.osds.get(&id).is_some_and(|e| e.epoch >= epoch))
    }

    /// Forgets the reports of OSDs no longer in `map`.
    pub fn retain_existing(&mut self, map: &OsdMap) {
        self.osds.retain(|id, _| map.exists(*id));
    }

    /// The PG reports of up OSDs whose last beacon is at most `fresh_ms` old.
    fn fresh_reports(&self, map: &OsdMap, now_ms: u64, fresh_ms: u64) -> Reports<'_> {
        let mut out = HashMap::new();
        for (id, e) in &self.osds {
            if map.is_up(*id) && now_ms.saturating_sub(e.at_ms) <= fresh_ms {
                for p in &e.stats.pgs {
                    out.insert(PgId::new(p.pool, p.seed), (*id, p));
                }
            }
        }
        out
    }

    /// A PG's state and its head's report: what the current head reported
    /// recently, `stale+<state>` when its reports stopped, `unknown` before
    /// the first, `down` with no member up.
    fn pg_state<'a>(
        &'a self,
        pg: PgId,
        head: Option<i32>,
        fresh: &Reports<'a>,
    ) -> (String, Option<&'a PgStat>) {
        let Some(head) = head else {
            return ("down".into(), None);
        };
        if let Some((by, stat)) = fresh.get(&pg)
            && *by == head
        {
            return (stat.state.clone(), Some(*stat));
        }
        let old = self.osds.get(&head).and_then(|e| {
            e.stats
                .pgs
                .iter()
                .find(|p| p.pool == pg.pool && p.seed == pg.seed)
        });
        match old {
            Some(stat) => (format!("{STALE}{}", stat.state), Some(stat)),
            None => (UNKNOWN.into(), None),
        }
    }

    /// Every OSD of `map` for `osd df`, from its last report.
    pub fn osd_df(&self, map: &OsdMap) -> Vec<OsdDfEntry> {
        map.osd_ids()
            .map(|id| {
                let e = self.osds.get(&id);
                OsdDfEntry {
                    id,
                    up: map.is_up(id),
                    in_cluster: map.is_in(id),
                    total: e.map_or(0, |e| e.stats.store_total),
                    used: e.map_or(0, |e| e.stats.store_used),
                    pgs: e.map_or(0, |e| e.stats.pg_copies),
                    reported: e.is_some(),
                }
            })
            .collect()
    }

    /// Every PG of `map` for `pg ls`, by PG id.
    pub fn pg_list(&self, map: &OsdMap, now_ms: u64, fresh_ms: u64) -> Vec<PgLsEntry> {
        let fresh = self.fresh_reports(map, now_ms, fresh_ms);
        let mut ws = map.new_workspace();
        let mut out = Vec::new();
        for (pool_id, pool) in map.pools() {
            for seed in 0..pool.pg_num {
                let pg = PgId::new(*pool_id, seed);
                let (up, acting) = match map.pg_to_up_acting(pg, &mut ws) {
                    Ok(ua) => (ua.up_chain(), ua.chain()),
                    Err(_) => (Vec::new(), Vec::new()),
                };
                let (state, stat) = self.pg_state(pg, acting.first().copied(), &fresh);
                out.push(PgLsEntry {
                    pgid: pg.to_string(),
                    state,
                    objects: stat.map_or(0, |s| s.objects),
                    missing: stat.map_or(0, |s| s.missing),
                    up,
                    acting,
                    interval_epoch: stat.map_or(0, |s| s.interval_epoch),
                });
            }
        }
        out
    }

    /// The summary against `map`: a PG's state is what its current head
    /// reported for the current interval (else [`UNKNOWN`]); usage and
    /// rates count up OSDs whose last report is at most `fresh_ms` old.
    pub fn summary(&self, map: &OsdMap, now_ms: u64, fresh_ms: u64) -> Summary {
        let fresh = |id: &i32| {
            map.is_up(*id)
                && self
                    .osds
                    .get(id)
                    .is_some_and(|e| now_ms.saturating_sub(e.at_ms) <= fresh_ms)
        };
        let reported = self.fresh_reports(map, now_ms, fresh_ms);
        let mut recovered = RecoveryCounters::default();
        for e in self.osds.values() {
            recovered.objects = recovered.objects.saturating_add(e.stats.recovery.objects);
            recovered.bytes = recovered.bytes.saturating_add(e.stats.recovery.bytes);
        }
        let mut recovery_rate = RecoveryCounters::default();
        let (mut raw_used, mut raw_total) = (0u64, 0u64);
        let mut io = zero_rates();
        let (mut full_osds, mut nearfull_osds) = (Vec::new(), Vec::new());
        for (id, e) in self.osds.iter().filter(|(id, _)| fresh(id)) {
            if e.stats.store_total > 0 {
                let used = e.stats.store_used as f64 / e.stats.store_total as f64;
                if used >= self.ratios.full {
                    full_osds.push((*id, used));
                } else if used >= self.ratios.nearfull {
                    nearfull_osds.push((*id, used));
                }
            }
            raw_used = raw_used.saturating_add(e.stats.store_used);
            raw_total = raw_total.saturating_add(e.stats.store_total);
            io.read_ops = io.read_ops.saturating_add(e.rates.read_ops);
            io.read_bytes = io.read_bytes.saturating_add(e.rates.read_bytes);
            io.write_ops = io.write_ops.saturating_add(e.rates.write_ops);
            io.write_bytes = io.write_bytes.saturating_add(e.rates.write_bytes);
            recovery_rate.objects = recovery_rate
                .objects
                .saturating_add(e.recovery_rate.objects);
            recovery_rate.bytes = recovery_rate.bytes.saturating_add(e.recovery_rate.bytes);
        }
        let mut by_state: BTreeMap<String, u32> = BTreeMap::new();
        let (mut num_objects, mut degraded_objects) = (0u64, 0u64);
        for (pg, head) in self.heads(map).iter() {
            let (state, stat) = self.pg_state(*pg, *head, &reported);
            if let Some(stat) = stat.filter(|_| !state.starts_with(STALE)) {
                num_objects = num_objects.saturating_add(stat.objects);
                degraded_objects = degraded_objects.saturating_add(stat.missing);
            }
            *by_state.entry(state).or_default() += 1;
        }
        let mut pgs_by_state: Vec<PgStateCount> = by_state
            .into_iter()
            .map(|(state, count)| PgStateCount { state, count })
            .collect();
        pgs_by_state.sort_by(|a, b| b.count.cmp(&a.count).then(a.state.cmp(&b.state)));
        Summary {
            pgs_by_state,
            num_objects,
            raw_used,
            raw_total,
            io,
            degraded_objects,
            recovery_rate,
            recovered,
            full_osds: sorted(full_osds),
            nearfull_osds: sorted(nearfull_osds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_map::{Fsid, Pool};

    /// Three OSDs on three hosts, all up, and one size-3 pool of 4 PGs.
    fn map() -> OsdMap {
        let mut text = String::from(
            "device 0 osd.0\ndevice 1 osd.1\ndevice 2 osd.2\ntype 0 osd\ntype 1 host\ntype 10 root\n",
        );
        for h in 0..3 {
            text.push_str(&format!(
                "host h{h} {{\n\tid -{}\n\talg straw2\n\thash 0\n\titem osd.{h} weight 1.000\n}}\n",
                h + 2
            ));
        }
        text.push_str(
            "root default {\n\tid -1\n\talg straw2\n\thash 0\n\titem h0 weight 1.000\n\
             \titem h1 weight 1.000\n\titem h2 weight 1.000\n}\n\
             rule r {\n\tid 0\n\ttype replicated\n\tmin_size 1\n\tmax_size 10\n\
             \tstep take default\n\tstep chooseleaf firstn 0 type host\n\tstep emit\n}\n",
        );
        let crush = shoal_crush::text::parse(&text).expect("crush");
        OsdMap::from_crush(Fsid::ZERO, crush, [Pool::new_replicated(1, "p", 3, 4, 0)]).expect("map")
    }

    fn counters(n: u64) -> IoCounters {
        IoCounters {
            read_ops: n,
            read_bytes: n * 100,
            write_ops: n / 2,
            write_bytes: n * 50,
        }
    }

    /// The report OSD `id` would send: the PGs it heads in `map`, active.
    fn report(map: &OsdMap, id: i32, io: IoCounters) -> OsdStats {
        let mut ws = map.new_workspace();
        let pgs: Vec<PgStat> = (0..4)
            .filter(|&s| {
                let ua = map.pg_to_up_acting(PgId::new(1, s), &mut ws).expect("map");
                ua.chain().first() == Some(&id)
            })
            .map(|seed| PgStat {
                pool: 1,
                seed,
                interval_epoch: 1,
                state: "active".into(),
                objects: 10,
                missing: 2,
            })
            .collect();
        OsdStats {
            store_total: 1000,
            store_used: 100,
            recovery: RecoveryCounters {
                objects: io.read_ops / 10,
                bytes: io.read_bytes,
            },
            io,
            pg_copies: pgs.len() as u32,
            pgs,
        }
    }

    #[test]
    fn states_objects_usage_and_rates_come_from_fresh_reports_of_heads() {
        let map = map();
        let mut stats = PgStats::default();
        // Nothing reported: every PG unknown.
        let s = stats.summary(&map, 0, 5000);
        assert_eq!(s.pgs_by_state.len(), 1);
        assert_eq!(
            (s.pgs_by_state[0].state.as_str(), s.pgs_by_state[0].count),
            (UNKNOWN, 4)
        );

        for id in 0..3 {
            stats.record(id, 0, report(&map, id, counters(1000)), 1000);
        }
        let s = stats.summary(&map, 1000, 5000);
        assert_eq!(s.pgs_by_state.len(), 1);
        assert_eq!(
            (s.pgs_by_state[0].state.as_str(), s.pgs_by_state[0].count),
            ("active", 4)
        );
        assert_eq!(s.num_objects, 40);
        assert!(s.full_osds.is_empty() && s.nearfull_osds.is_empty());
        assert_eq!(s.degraded_objects, 8);
        assert_eq!(s.recovered.objects, 300, "100 copies by each OSD");
        assert_eq!((s.raw_used, s.raw_total), (300, 3000));
        assert_eq!(s.io.read_ops, 0, "one report gives no rate");

        // Two seconds later osd.0 served 2000 more reads: 1000/s.
        stats.record(0, 0, report(&map, 0, counters(3000)), 3000);
        let s = stats.summary(&map, 3000, 5000);
        assert_eq!(s.io.read_ops, 1000);
        assert_eq!(s.io.read_bytes, 100_000);
        assert_eq!(s.recovery_rate.objects, 100, "200 more copies in 2 s");
        assert_eq!(s.recovered.objects, 500);
        // Counters going backwards (a restart) give no rate, not a wrap.
        stats.record(0, 0, report(&map, 0, counters(10)), 4000);
        assert_eq!(stats.summary(&map, 4000, 5000).io.read_ops, 0);

        // Reports older than the freshness bound are not counted.
        let s = stats.summary(&map, 5500, 2000);
        assert_eq!(s.raw_total, 1000, "only osd.0 reported recently");
        let stale = s.count_pgs(|state| state == "stale+active");
        assert!(stale > 0, "PGs headed by silent OSDs are stale");
        assert!(s.num_objects < 40, "stale PGs' objects are not counted");

        // `pg ls`: every PG with its sets; stale ones keep their last counts.
        let list = stats.pg_list(&map, 5500, 2000);
        assert_eq!(list.len(), 4);
        for p in &list {
            assert_eq!(p.acting.len(), 3, "{p:?}");
            assert_eq!(p.up, p.acting);
            assert_eq!((p.objects, p.missing), (10, 2));
            assert!(p.state == "active" || p.state == "stale+active", "{p:?}");
        }
        assert_eq!(list[0].pgid, "1.0");
        let fresh = stats.pg_list(&map, 5500, 10_000);
        assert!(fresh.iter().all(|p| p.state == "active"));
    }
}
