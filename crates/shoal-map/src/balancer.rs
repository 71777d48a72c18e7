//! The upmap balancer: computes `pg_upmap_items` that bring every OSD
//! within a given deviation of its weight-proportional PG target (Ceph's
//! upmap balancer goal), moving as few PG replicas as it can.
//!
//! Every move takes one replica of one PG from the most overfull OSD to the
//! most underfull OSD that keeps the PG's failure-domain structure: the
//! replacement must come from the same `take` subtree as the replica it
//! replaces, and at every bucket type the rule chooses by, it must share an
//! ancestor with exactly the members the old replica shared one with. A move
//! is only made when it narrows the gap between the two OSDs (their
//! deviations differ by more than one), so the sum of squared deviations
//! falls with every move and the search ends.

use std::collections::{BTreeMap, BTreeSet};

use shoal_crush::{CrushMap, RuleStep};

use crate::distribution::{
    Distribution, DistributionStats, leaves, pg_distribution, pool_targets, selected_pools, up_sets,
};
use crate::{ITEM_NONE, MapError, OsdMap, PgId, Pool};

/// Knobs of a balancing run.
#[derive(Clone, Debug)]
pub struct BalanceOptions {
    /// Largest accepted `|pgs - target|` per OSD and pool.
    pub max_deviation: f64,
    /// Stop after this many moves.
    pub max_moves: usize,
    /// Pools to balance (all when `None`).
    pub pools: Option<Vec<i64>>,
}

impl Default for BalanceOptions {
    fn default() -> Self {
        BalanceOptions {
            max_deviation: 1.0,
            max_moves: 100_000,
            pools: None,
        }
    }
}

/// One PG replica moved from one OSD to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Move {
    /// The PG.
    pub pg: PgId,
    /// OSD giving the replica up.
    pub from: i32,
    /// OSD receiving it.
    pub to: i32,
}

/// How one pool's balance changed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PoolBalance {
    /// Pool id.
    pub pool: i64,
    /// Pool name.
    pub name: String,
    /// Moves made for this pool.
    pub moves: usize,
    /// Statistics of the pool's distribution before.
    pub before: DistributionStats,
    /// Statistics after.
    pub after: DistributionStats,
}

/// The outcome of a balancing run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BalancePlan {
    /// Moves in the order they were chosen.
    pub moves: Vec<Move>,
    /// Per-pool results (the balancing goal is per pool).
    pub pools: Vec<PoolBalance>,
    /// New `pg_upmap_items` for every PG the plan touches (an empty list
    /// removes the PG's entry).
    pub upmap_items: BTreeMap<PgId, Vec<(i32, i32)>>,
    /// Distribution before.
    pub before: Distribution,
    /// Distribution after applying the plan (recomputed through the real
    /// placement pipeline).
    pub after: Distribution,
}

/// Computes a balancing plan for `map`.
pub fn balance(map: &OsdMap, opts: &BalanceOptions) -> Result<BalancePlan, MapError> {
    let pools: Vec<Pool> = selected_pools(map, opts.pools.as_deref())?
        .into_iter()
        .cloned()
        .collect();
    let before = pg_distribution(map, opts.pools.as_deref())?;
    let topology = Topology::new(map.crush());
    let mut moves = Vec::new();
    let mut per_pool_moves = Vec::new();
    let mut upmap_items: BTreeMap<PgId, Vec<(i32, i32)>> = BTreeMap::new();
    for pool in &pools {
        let budget = opts.max_moves.saturating_sub(moves.len());
        let mut state = PoolState::new(map, pool, &topology)?;
        let pool_moves = state.run(opts.max_deviation, budget);
        per_pool_moves.push(pool_moves.len());
        for mv in pool_moves {
            let items = upmap_items.entry(mv.pg).or_insert_with(|| {
                map.pg_upmap_items()
                    .get(&mv.pg)
                    .cloned()
                    .unwrap_or_default()
            });
            record_move(items, mv.from, mv.to);
            moves.push(mv);
        }
    }
    let mut after_map = map.clone();
    apply_items(&mut after_map, &upmap_items)?;
    let after = pg_distribution(&after_map, opts.pools.as_deref())?;
    let mut pool_reports = Vec::new();
    for (pool, moves) in pools.iter().zip(per_pool_moves) {
        pool_reports.push(PoolBalance {
            pool: pool.id,
            name: pool.name.clone(),
            moves,
            before: pg_distribution(map, Some(&[pool.id]))?.stats(),
            after: pg_distribution(&after_map, Some(&[pool.id]))?.stats(),
        });
    }
    Ok(BalancePlan {
        moves,
        pools: pool_reports,
        upmap_items,
        before,
        after,
    })
}

/// Writes a plan's upmap items into a map.
pub fn apply_items(
    map: &mut OsdMap,
    items: &BTreeMap<PgId, Vec<(i32, i32)>>,
) -> Result<(), MapError> {
    for (pg, list) in items {
        map.set_pg_upmap_items(*pg, list.clone())?;
    }
    Ok(())
}

/// Updates a PG's upmap items so that `from` is replaced by `to`.
fn record_move(items: &mut Vec<(i32, i32)>, from: i32, to: i32) {
    if let Some(pos) = items.iter().position(|&(_, t)| t == from) {
        let orig = items[pos].0;
        if orig == to {
            items.remove(pos);
        } else {
            items[pos].1 = to;
        }
    } else {
        items.push((from, to));
    }
}

/// Ancestors of every device at every bucket type, outside shadow trees.
struct Topology {
    ancestors: BTreeMap<i32, BTreeMap<i32, i32>>,
}

impl Topology {
    fn new(crush: &CrushMap) -> Self {
        let mut parent: BTreeMap<i32, i32> = BTreeMap::new();
        for b in crush.buckets.iter().flatten().filter(|b| !b.is_shadow()) {
            for &item in &b.items {
                parent.entry(item).or_insert(b.id);
            }
        }
        let mut ancestors = BTreeMap::new();
        for &dev in parent.keys().filter(|&&i| i >= 0) {
            let mut by_type = BTreeMap::new();
            let mut cur = dev;
            let mut hops = 0;
            while let Some(&p) = parent.get(&cur) {
                if let Some(b) = crush.bucket(p) {
                    by_type.entry(b.type_id).or_insert(p);
                }
                cur = p;
                hops += 1;
                if hops > crush.buckets.len() {
                    break; // a cycle in a corrupt map; stop rather than spin
                }
            }
            ancestors.insert(dev, by_type);
        }
        Topology { ancestors }
    }

    fn ancestor(&self, dev: i32, type_id: i32) -> Option<i32> {
        self.ancestors.get(&dev)?.get(&type_id).copied()
    }
}

/// Balancing state of one pool.
struct PoolState<'a> {
    topology: &'a Topology,
    /// Bucket types the rule chooses by (excluding devices).
    rule_types: Vec<i32>,
    /// Device sets of each `take` step.
    take_sets: Vec<BTreeSet<i32>>,
    /// OSDs that may receive replicas, with their targets.
    targets: BTreeMap<i32, f64>,
    counts: BTreeMap<i32, u32>,
    up: BTreeMap<PgId, Vec<i32>>,
    pgs_of: BTreeMap<i32, BTreeSet<PgId>>,
}

impl<'a> PoolState<'a> {
    fn new(map: &OsdMap, pool: &Pool, topology: &'a Topology) -> Result<Self, MapError> {
        let crush = map.crush();
        let mut rule_types = Vec::new();
        let mut take_sets = Vec::new();
        if let Some(rule) = crush.rule(pool.crush_rule) {
            for step in &rule.steps {
                match *step {
                    RuleStep::Take(item) => take_sets.push(leaves(crush, item)),
                    RuleStep::ChooseFirstn { type_id, .. }
                    | RuleStep::ChooseIndep { type_id, .. }
                    | RuleStep::ChooseleafFirstn { type_id, .. }
                    | RuleStep::ChooseleafIndep { type_id, .. }
                        if type_id != 0 && !rule_types.contains(&type_id) =>
                    {
                        rule_types.push(type_id)
                    }
                    _ => {}
                }
            }
        }
        let targets: BTreeMap<i32, f64> = pool_targets(map, pool)
            .into_iter()
            .filter(|&(osd, _)| map.is_up(osd))
            .collect();
        let mut counts = BTreeMap::new();
        let mut up = BTreeMap::new();
        let mut pgs_of: BTreeMap<i32, BTreeSet<PgId>> = BTreeMap::new();
        for (pg, (set, _)) in up_sets(map, Some(&[pool.id]))? {
            for &osd in set.iter().filter(|&&o| o != ITEM_NONE) {
                *counts.entry(osd).or_insert(0) += 1;
                pgs_of.entry(osd).or_default().insert(pg);
            }
            up.insert(pg, set);
        }
        Ok(PoolState {
            topology,
            rule_types,
            take_sets,
            targets,
            counts,
            up,
            pgs_of,
        })
    }

    fn deviation(&self, osd: i32) -> f64 {
        let count = self.counts.get(&osd).copied().unwrap_or(0) as f64;
        count - self.targets.get(&osd).copied().unwrap_or(0.0)
    }

    /// OSDs holding or owed replicas, most overfull first.
    fn by_deviation(&self) -> Vec<(i32, f64)> {
        let ids: BTreeSet<i32> = self
            .counts
            .keys()
            .chain(self.targets.keys())
            .copied()
            .collect();
        let mut v: Vec<(i32, f64)> = ids.into_iter().map(|o| (o, self.deviation(o))).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    fn run(&mut self, max_deviation: f64, budget: usize) -> Vec<Move> {
        let mut moves = Vec::new();
        while moves.len() < budget {
            let order = self.by_deviation();
            let unbalanced = order
                .iter()
                .any(|&(_, d)| d > max_deviation || d < -max_deviation);
            if !unbalanced {
                break;
            }
            let Some(mv) = self.best_move(&order, max_deviation) else {
                break;
            };
            self.apply(mv);
            moves.push(mv);
        }
        moves
    }

    /// The first valid move from the most overfull OSD to the most underfull
    /// one that narrows an out-of-range gap.
    fn best_move(&self, order: &[(i32, f64)], max_deviation: f64) -> Option<Move> {
        let receivers: Vec<(i32, f64)> = order
            .iter()
            .rev()
            .copied()
            .filter(|(o, _)| self.targets.contains_key(o))
            .collect();
        for &(from, d_from) in order {
            for &(to, d_to) in &receivers {
                if d_from - d_to <= 1.0 {
                    break;
                }
                if d_from <= max_deviation && d_to >= -max_deviation {
                    continue;
                }
                let pgs = self.pgs_of.get(&from)?;
                for &pg in pgs {
                    if self.valid(pg, from, to) {
                        return Some(Move { pg, from, to });
                    }
                }
            }
        }
        None
    }

    fn valid(&self, pg: PgId, from: i32, to: i32) -> bool {
        let Some(set) = self.up.get(&pg) else {
            return false;
        };
        if set.contains(&to) {
            return false;
        }
        if !self
            .take_sets
            .iter()
            .any(|s| s.contains(&from) && s.contains(&to))
        {
            return false;
        }
        let topo = self.topology;
        self.rule_types.iter().all(|&t| {
            let (a_to, a_from) = (topo.ancestor(to, t), topo.ancestor(from, t));
            set.iter()
                .filter(|&&m| m != from && m != ITEM_NONE)
                .all(|&m| {
                    let a_m = topo.ancestor(m, t);
                    (a_to.is_some() && a_to == a_m) == (a_from.is_some() && a_from == a_m)
                })
        })
    }

    fn apply(&mut self, mv: Move) {
        if let Some(set) = self.up.get_mut(&mv.pg) {
            for m in set.iter_mut().filter(|m| **m == mv.from) {
                *m = mv.to;
            }
        }
        if let Some(c) = self.counts.get_mut(&mv.from) {
            *c = c.saturating_sub(1);
        }
        *self.counts.entry(mv.to).or_insert(0) += 1;
        if let Some(s) = self.pgs_of.get_mut(&mv.from) {
            s.remove(&mv.pg);
        }
        self.pgs_of.entry(mv.to).or_default().insert(mv.pg);
    }
}
