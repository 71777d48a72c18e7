//! How PGs spread over OSDs: per-OSD counts against weight-proportional
//! targets, and summary statistics. Shared by `shoalmap pgs`, the what-if
//! simulator and the upmap balancer.

use std::collections::{BTreeMap, BTreeSet};

use shoal_crush::{CrushMap, RuleStep, WEIGHT_ONE};

use crate::{MapError, OsdMap, PgId, Pool};

/// One OSD's share of the PGs of the pools considered.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct OsdShare {
    /// OSD id.
    pub osd: i32,
    /// PG replicas (up sets) placed on this OSD.
    pub pgs: u32,
    /// PGs whose up set starts with this OSD.
    pub first: u32,
    /// PGs whose up primary is this OSD.
    pub primary: u32,
    /// CRUSH weight (16.16) of the device in the hierarchy.
    pub crush_weight: u32,
    /// Reweight (16.16, 0x10000 = fully in).
    pub reweight: u32,
    /// Weight-proportional number of PG replicas this OSD should hold.
    pub target: f64,
}

impl OsdShare {
    /// `pgs - target`: positive when overfull.
    pub fn deviation(&self) -> f64 {
        self.pgs as f64 - self.target
    }
}

/// The distribution of a set of pools' PGs over the OSDs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Distribution {
    /// Every OSD that exists, is in, or holds PGs, by id.
    pub osds: Vec<OsdShare>,
    /// Number of PGs considered.
    pub pg_count: u64,
    /// Number of PG replicas placed (sum of up set sizes).
    pub replicas: u64,
    /// How many PGs had an up set of each size.
    pub up_sizes: BTreeMap<usize, u64>,
}

/// Summary statistics of a distribution over the OSDs that have a target.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DistributionStats {
    /// OSDs with a non-zero target.
    pub osds: usize,
    /// Mean PG replicas per such OSD.
    pub mean: f64,
    /// Standard deviation of `pgs - target`.
    pub stddev: f64,
    /// Smallest count and its OSD.
    pub min: (i32, u32),
    /// Largest count and its OSD.
    pub max: (i32, u32),
    /// Largest `|pgs - target|`.
    pub max_abs_deviation: f64,
}

impl Distribution {
    /// Statistics over OSDs with a positive target.
    pub fn stats(&self) -> DistributionStats {
        let eligible: Vec<&OsdShare> = self.osds.iter().filter(|o| o.target > 0.0).collect();
        if eligible.is_empty() {
            return DistributionStats::default();
        }
        let n = eligible.len() as f64;
        let mean = eligible.iter().map(|o| o.pgs as f64).sum::<f64>() / n;
        let var = eligible.iter().map(|o| o.deviation().powi(2)).sum::<f64>() / n;
        let min = eligible
            .iter()
            .min_by_key(|o| (o.pgs, o.osd))
            .map_or((0, 0), |o| (o.osd, o.pgs));
        let max = eligible
            .iter()
            .max_by_key(|o| (o.pgs, -o.osd))
            .map_or((0, 0), |o| (o.osd, o.pgs));
        DistributionStats {
            osds: eligible.len(),
            mean,
            stddev: var.sqrt(),
            min,
            max,
            max_abs_deviation: eligible
                .iter()
                .map(|o| o.deviation().abs())
                .fold(0.0, f64::max),
        }
    }

    /// The share of one OSD.
    pub fn osd(&self, id: i32) -> Option<&OsdShare> {
        self.osds
            .binary_search_by_key(&id, |o| o.osd)
            .ok()
            .map(|i| &self.osds[i])
    }
}

/// CRUSH weight of each device, taken from the (non-shadow) bucket that
/// holds it.
pub fn device_crush_weights(crush: &CrushMap) -> BTreeMap<i32, u32> {
    let mut out = BTreeMap::new();
    for b in crush.buckets.iter().flatten().filter(|b| !b.is_shadow()) {
        for (&item, &w) in b.items.iter().zip(&b.item_weights) {
            if item >= 0 {
                out.insert(item, w);
            }
        }
    }
    out
}

/// Devices under an item (the item itself for a device).
pub fn leaves(crush: &CrushMap, item: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let mut stack = vec![item];
    let mut seen = BTreeSet::new();
    while let Some(i) = stack.pop() {
        if i >= 0 {
            out.insert(i);
        } else if seen.insert(i)
            && let Some(b) = crush.bucket(i)
        {
            stack.extend(b.items.iter().copied());
        }
    }
    out
}

/// Devices a rule can reach: the leaves under its `take` items.
pub fn rule_devices(crush: &CrushMap, rule_id: i32) -> BTreeSet<i32> {
    let Some(rule) = crush.rule(rule_id) else {
        return BTreeSet::new();
    };
    rule.steps
        .iter()
        .filter_map(|s| match s {
            RuleStep::Take(item) => Some(leaves(crush, *item)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Weight-proportional replica targets of one pool: `pg_num * size` spread
/// over the OSDs its rule reaches, by CRUSH weight times reweight.
pub fn pool_targets(map: &OsdMap, pool: &Pool) -> BTreeMap<i32, f64> {
    let crush_weights = device_crush_weights(map.crush());
    let eligible: Vec<(i32, f64)> = rule_devices(map.crush(), pool.crush_rule)
        .into_iter()
        .filter(|&d| map.exists(d))
        .map(|d| {
            let cw = crush_weights.get(&d).copied().unwrap_or(0) as f64;
            (d, cw * map.weight(d) as f64 / WEIGHT_ONE as f64)
        })
        .filter(|&(_, w)| w > 0.0)
        .collect();
    let total: f64 = eligible.iter().map(|&(_, w)| w).sum();
    let replicas = pool.pg_num as f64 * pool.size as f64;
    eligible
        .into_iter()
        .map(|(d, w)| {
            (
                d,
                if total > 0.0 {
                    replicas * w / total
                } else {
                    0.0
                },
            )
        })
        .collect()
}

/// Up set and up primary of each PG.
pub type UpSets = BTreeMap<PgId, (Vec<i32>, Option<i32>)>;

/// The up set of every PG of `pools` (all pools when `None`).
pub fn up_sets(map: &OsdMap, pools: Option<&[i64]>) -> Result<UpSets, MapError> {
    let mut ws = map.new_workspace();
    let mut out = BTreeMap::new();
    for pool in selected_pools(map, pools)? {
        for pg in map.pool_pgs(pool.id)? {
            let m = map.pg_to_up_acting(pg, &mut ws)?;
            out.insert(pg, (m.up.as_slice().to_vec(), m.up_primary));
        }
    }
    Ok(out)
}

/// The pools named by id, or all of them.
pub fn selected_pools<'a>(
    map: &'a OsdMap,
    pools: Option<&[i64]>,
) -> Result<Vec<&'a Pool>, MapError> {
    match pools {
        None => Ok(map.pools().values().collect()),
        Some(ids) => ids
            .iter()
            .map(|&id| map.pool(id).ok_or(MapError::NoSuchPool(id)))
            .collect(),
    }
}

/// Counts PG replicas per OSD for `pools` (all when `None`) and sets each
/// OSD's weight-proportional target.
pub fn pg_distribution(map: &OsdMap, pools: Option<&[i64]>) -> Result<Distribution, MapError> {
    let crush_weights = device_crush_weights(map.crush());
    let mut shares: BTreeMap<i32, OsdShare> = BTreeMap::new();
    for id in map.osd_ids() {
        share_of(&mut shares, id, map, &crush_weights);
    }
    for pool in selected_pools(map, pools)? {
        for (osd, t) in pool_targets(map, pool) {
            share_of(&mut shares, osd, map, &crush_weights).target += t;
        }
    }
    let mut dist = Distribution::default();
    for (_, (up, primary)) in up_sets(map, pools)? {
        let present: Vec<i32> = up
            .iter()
            .copied()
            .filter(|&o| o != crate::ITEM_NONE)
            .collect();
        dist.pg_count += 1;
        dist.replicas += present.len() as u64;
        *dist.up_sizes.entry(present.len()).or_insert(0) += 1;
        for &osd in &present {
            share_of(&mut shares, osd, map, &crush_weights).pgs += 1;
        }
        if let Some(&first) = up.first().filter(|&&o| o != crate::ITEM_NONE) {
            share_of(&mut shares, first, map, &crush_weights).first += 1;
        }
        if let Some(p) = primary {
            share_of(&mut shares, p, map, &crush_weights).primary += 1;
        }
    }
    dist.osds = shares.into_values().collect();
    Ok(dist)
}

/// The share of `osd`, created on first use.
fn share_of<'a>(
    shares: &'a mut BTreeMap<i32, OsdShare>,
    osd: i32,
    map: &OsdMap,
    crush_weights: &BTreeMap<i32, u32>,
) -> &'a mut OsdShare {
    shares.entry(osd).or_insert_with(|| OsdShare {
        osd,
        crush_weight: crush_weights.get(&osd).copied().unwrap_or(0),
        reweight: map.weight(osd),
        ..OsdShare::default()
    })
}

/// What moved between two placements of the same PGs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Movement {
    /// PGs compared.
    pub pgs: u64,
    /// PGs whose up set changed as a set.
    pub pgs_changed: u64,
    /// PG replicas that must be copied to an OSD that did not hold them.
    pub replicas_moved: u64,
    /// PG replicas after the change.
    pub replicas_total: u64,
    /// Fewest replica copies any placement meeting the new targets needs:
    /// `sum over OSDs of max(0, new target - replicas it already holds)`.
    pub theoretical_min: f64,
}

impl Movement {
    /// Fraction of the data that moves.
    pub fn fraction_moved(&self) -> f64 {
        ratio(self.replicas_moved as f64, self.replicas_total as f64)
    }

    /// Fraction the theoretical minimum amounts to.
    pub fn fraction_min(&self) -> f64 {
        ratio(self.theoretical_min, self.replicas_total as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Compares the placements of the same pools in two maps.
///
/// PGs are matched by id; when `pg_num` changed, each new PG is compared
/// with the PG its objects came from (`stable_mod` of the seed by the old
/// `pg_num`), so splits and merges count the data they move.
pub fn movement(
    before: &OsdMap,
    after: &OsdMap,
    pools: Option<&[i64]>,
) -> Result<Movement, MapError> {
    let old = up_sets(before, pools)?;
    let new = up_sets(after, pools)?;
    let mut mv = Movement::default();
    for (pg, (up, _)) in &new {
        let parent = match before.pool(pg.pool) {
            Some(p) => PgId::new(
                pg.pool,
                crate::stable_mod(pg.seed, p.pg_num, crate::pg_mask(p.pg_num)),
            ),
            None => *pg,
        };
        let old_up: &[i32] = old.get(&parent).map_or(&[], |(u, _)| u.as_slice());
        let members = |s: &[i32]| -> BTreeSet<i32> {
            s.iter()
                .copied()
                .filter(|&o| o != crate::ITEM_NONE)
                .collect()
        };
        let (a, b) = (members(old_up), members(up));
        mv.pgs += 1;
        if a != b {
            mv.pgs_changed += 1;
        }
        mv.replicas_moved += b.difference(&a).count() as u64;
        mv.replicas_total += b.len() as u64;
    }
    let mut old_counts: BTreeMap<i32, f64> = BTreeMap::new();
    for (up, _) in old.values() {
        for &o in up.iter().filter(|&&o| o != crate::ITEM_NONE) {
            *old_counts.entry(o).or_insert(0.0) += 1.0;
        }
    }
    let after_dist = pg_distribution(after, pools)?;
    let scale = |pool_ids: Option<&[i64]>, m: &OsdMap| -> f64 {
        selected_pools(m, pool_ids)
            .map(|ps| ps.iter().map(|p| p.pg_num as f64 * p.size as f64).sum())
            .unwrap_or(0.0)
    };
    // Targets are in PG replicas of the new map; old counts in replicas of
    // the old map. Compare them as shares of the data.
    let (old_total, new_total) = (scale(pools, before), scale(pools, after));
    mv.theoretical_min = after_dist
        .osds
        .iter()
        .map(|o| {
            let had = old_counts.get(&o.osd).copied().unwrap_or(0.0) * ratio(new_total, old_total);
            (o.target - had).max(0.0)
        })
        .sum();
    Ok(mv)
}
