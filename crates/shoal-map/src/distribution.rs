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

/// Weight-proportional replica targets of one pool, within what its rule
/// can place.
///
/// Each `take ... emit` block of the rule places its share of the pool's
/// `pg_num * size` replicas under its `take` item. The share is spread over
/// the children by CRUSH weight times reweight (down and nonexistent OSDs
/// count as weight 0), but no bucket gets more than the rule can put there:
/// a bucket of a type the rule chooses by holds at most `pg_num` times the
/// number of replicas chosen inside one such bucket, and a device at most
/// one replica per PG. What a capped child cannot take goes to its siblings
/// (water-filling), so the targets are reachable.
pub fn pool_targets(map: &OsdMap, pool: &Pool) -> BTreeMap<i32, f64> {
    let crush = map.crush();
    let crush_weights = device_crush_weights(crush);
    let weight_of = |d: i32| -> f64 {
        if !map.exists(d) || !map.is_up(d) {
            return 0.0;
        }
        let cw = crush_weights.get(&d).copied().unwrap_or(0) as f64;
        cw * map.weight(d) as f64 / WEIGHT_ONE as f64
    };
    let mut targets = BTreeMap::new();
    let Some(rule) = crush.rule(pool.crush_rule) else {
        return targets;
    };
    let size = pool.size as i64;
    let resolve = |num: i32| -> i64 {
        let n = num as i64;
        if n <= 0 { (n + size).max(0) } else { n }
    };
    let mut remaining = size;
    let mut block: Vec<(i32, i64)> = Vec::new(); // (type, num) of choose steps
    let mut take = None;
    for step in &rule.steps {
        match *step {
            RuleStep::Take(item) => {
                take = Some(item);
                block.clear();
            }
            RuleStep::ChooseFirstn { num, type_id }
            | RuleStep::ChooseIndep { num, type_id }
            | RuleStep::ChooseleafFirstn { num, type_id }
            | RuleStep::ChooseleafIndep { num, type_id } => block.push((type_id, resolve(num))),
            RuleStep::Emit => {
                let Some(root) = take.take() else { continue };
                let produced = block
                    .iter()
                    .map(|&(_, n)| n)
                    .product::<i64>()
                    .min(remaining);
                if block.is_empty() || produced <= 0 {
                    continue;
                }
                remaining -= produced;
                // Replicas one bucket of each chosen type can receive per PG.
                let mut per_pg: BTreeMap<i32, f64> = BTreeMap::new();
                for (i, &(t, _)) in block.iter().enumerate() {
                    let inner: i64 = block[i + 1..].iter().map(|&(_, n)| n).product();
                    per_pg.insert(t, inner.min(produced) as f64);
                }
                let filler = Filler {
                    crush,
                    weight_of: &weight_of,
                    per_pg,
                    pg_num: pool.pg_num as f64,
                };
                filler.fill(root, produced as f64 * pool.pg_num as f64, &mut targets);
            }
            _ => {}
        }
    }
    targets.retain(|_, t| *t > 0.0);
    targets
}

/// Water-filling of replica targets down one `take` subtree.
struct Filler<'a, W: Fn(i32) -> f64> {
    crush: &'a CrushMap,
    weight_of: &'a W,
    /// Cap per PG for buckets of the types the rule chooses by.
    per_pg: BTreeMap<i32, f64>,
    pg_num: f64,
}

impl<W: Fn(i32) -> f64> Filler<'_, W> {
    /// Effective weight under an item.
    fn weight(&self, item: i32) -> f64 {
        leaves(self.crush, item)
            .into_iter()
            .map(|d| (self.weight_of)(d))
            .sum()
    }

    /// Most replicas the subtree under `item` can take.
    fn capacity(&self, item: i32) -> f64 {
        if item >= 0 {
            return if (self.weight_of)(item) > 0.0 {
                self.pg_num
            } else {
                0.0
            };
        }
        let Some(b) = self.crush.bucket(item) else {
            return 0.0;
        };
        let below: f64 = b.items.iter().map(|&c| self.capacity(c)).sum();
        match self.per_pg.get(&b.type_id) {
            Some(&per_pg) => below.min(per_pg * self.pg_num),
            None => below,
        }
    }

    fn fill(&self, item: i32, amount: f64, targets: &mut BTreeMap<i32, f64>) {
        if item >= 0 {
            *targets.entry(item).or_insert(0.0) += amount;
            return;
        }
        let Some(b) = self.crush.bucket(item) else {
            return;
        };
        let kids: Vec<(i32, f64, f64)> = b
            .items
            .iter()
            .map(|&c| (c, self.weight(c), self.capacity(c)))
            .filter(|&(_, w, cap)| w > 0.0 && cap > 0.0)
            .collect();
        let mut share = vec![0.0; kids.len()];
        let mut open: Vec<usize> = (0..kids.len()).collect();
        let mut left = amount;
        // Each pass either places everything or fixes at least one child at
        // its cap, so it ends after at most `kids.len()` passes.
        while left > 1e-9 && !open.is_empty() {
            let total: f64 = open.iter().map(|&i| kids[i].1).sum();
            let capped: Vec<usize> = open
                .iter()
                .copied()
                .filter(|&i| left * kids[i].1 / total >= kids[i].2)
                .collect();
            if capped.is_empty() {
                for &i in &open {
                    share[i] = left * kids[i].1 / total;
                }
                left = 0.0;
            } else {
                for &i in &capped {
                    share[i] = kids[i].2;
                    left -= kids[i].2;
                }
                open.retain(|i| !capped.contains(i));
            }
        }
        for (i, &(c, _, _)) in kids.iter().enumerate() {
            if share[i] > 0.0 {
                self.fill(c, share[i], targets);
            }
        }
    }
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
    /// Replica copies the change makes unavoidable: what OSDs' targets grow
    /// by, `sum over OSDs of max(0, new target - old target)`, with old
    /// targets scaled to the new total when pg_num or size changed.
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
    let (old_dist, new_dist) = (
        pg_distribution(before, pools)?,
        pg_distribution(after, pools)?,
    );
    // Targets are in PG replicas of each map; scale the old ones so both
    // describe the same data when pg_num or size changed.
    let total = |d: &Distribution| d.osds.iter().map(|o| o.target).sum::<f64>();
    let scale = ratio(total(&new_dist), total(&old_dist));
    mv.theoretical_min = new_dist
        .osds
        .iter()
        .map(|o| {
            let had = old_dist.osd(o.osd).map_or(0.0, |x| x.target) * scale;
            (o.target - had).max(0.0)
        })
        .sum();
    Ok(mv)
}
