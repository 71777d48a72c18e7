//! `crush_do_rule`: map an input `x` through a rule to a list of devices,
//! bit-exact with Ceph's `src/crush/mapper.c`.
//!
//! The hot path does not allocate: callers keep a [`Workspace`] per thread
//! and per map, and pass a result slice.

use crate::hash::{LANES, hash32_2, hash32_3, hash32_3_lanes, hash32_4};
use crate::ln::{Straw2Weight, straw2_draw, straw2_draw_fast};
use crate::model::{
    Bucket, BucketAlg, ChooseArg, ChooseArgMap, CrushMap, ITEM_NONE, ITEM_UNDEF, RuleStep, Weight,
};

/// Reusable scratch memory for [`do_rule`]: working vectors, the per-bucket
/// permutation caches of uniform buckets (Ceph's `crush_work`) and data
/// derived from the map once instead of per mapping.
///
/// A workspace belongs to one version of one map: create a new one when the
/// map changes (a workspace whose shape no longer matches is rebuilt).
#[derive(Debug, Clone)]
pub struct Workspace {
    max_devices: i32,
    num_devices: usize,
    w: Vec<i32>,
    o: Vec<i32>,
    c: Vec<i32>,
    perms: Vec<PermCache>,
    /// Per bucket slot: straw2 item weights prepared for division-free draws.
    straw2: Vec<Vec<Straw2Weight>>,
    /// When `Some`, counts how many tries each placement needed (the
    /// `--show-choose-tries` histogram), indexed by tries.
    pub choose_tries: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Default)]
struct PermCache {
    x: u32,
    n: u32,
    perm: Vec<u32>,
}

impl Workspace {
    /// A workspace sized for `map`.
    pub fn new(map: &CrushMap) -> Self {
        let perms = map
            .buckets
            .iter()
            .map(|b| PermCache {
                x: 0,
                n: 0,
                perm: vec![0; b.as_ref().map_or(0, Bucket::size)],
            })
            .collect();
        let straw2 = map
            .buckets
            .iter()
            .map(|b| match b {
                Some(b) if b.alg == BucketAlg::Straw2 => b
                    .item_weights
                    .iter()
                    .map(|&w| Straw2Weight::new(w))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        Workspace {
            max_devices: map.max_devices(),
            straw2,
            num_devices: map.devices.len(),
            w: Vec::new(),
            o: Vec::new(),
            c: Vec::new(),
            perms,
            choose_tries: None,
        }
    }

    /// Starts counting tries per placement into a histogram of `len` slots.
    pub fn enable_choose_tries(&mut self, len: usize) {
        self.choose_tries = Some(vec![0; len]);
    }

    fn fit(&mut self, map: &CrushMap, result_max: usize) {
        for buf in [&mut self.w, &mut self.o, &mut self.c] {
            if buf.len() < result_max {
                buf.resize(result_max, 0);
            }
        }
        // Bucket sizes are re-checked lazily by `perm_choose`.
        if self.perms.len() != map.buckets.len() || self.num_devices != map.devices.len() {
            *self = Workspace {
                choose_tries: self.choose_tries.take(),
                ..Workspace::new(map)
            };
            for buf in [&mut self.w, &mut self.o, &mut self.c] {
                buf.resize(result_max, 0);
            }
        }
    }
}

/// Shared, read-only inputs of one mapping.
struct Ctx<'a> {
    map: &'a CrushMap,
    weights: &'a [Weight],
    max_devices: i32,
    x: u32,
    choose_args: Option<&'a ChooseArgMap>,
    straw2: &'a [Vec<Straw2Weight>],
}

/// Per-step tuning of the choose functions.
#[derive(Clone, Copy)]
struct FirstnParams {
    tries: u32,
    recurse_tries: u32,
    local_retries: u32,
    local_fallback_retries: u32,
    vary_r: u32,
    stable: u32,
}

impl Ctx<'_> {
    fn bucket(&self, id: i32) -> Option<&Bucket> {
        self.map.bucket(id)
    }

    fn choose_arg(&self, bucket_id: i32) -> Option<&ChooseArg> {
        self.choose_args?
            .args
            .iter()
            .find(|a| a.bucket_id == bucket_id)
    }

    /// Ceph's `is_out`: a device with a reweight below 1.0 is rejected for a
    /// pseudo-random share of inputs.
    fn is_out(&self, item: i32, x: u32) -> bool {
        let Some(&w) = usize::try_from(item).ok().and_then(|i| self.weights.get(i)) else {
            return true;
        };
        if w >= 0x10000 {
            return false;
        }
        if w == 0 {
            return true;
        }
        (hash32_2(x, item as u32) & 0xffff) >= w
    }

    /// Type of an item chosen from a bucket, or `None` for a dangling id.
    fn item_type(&self, item: i32) -> Option<i32> {
        if item >= 0 {
            Some(0)
        } else {
            self.bucket(item).map(|b| b.type_id)
        }
    }

    fn bucket_choose(&self, perms: &mut [PermCache], b: &Bucket, r: i32, position: usize) -> i32 {
        let x = self.x;
        match b.alg {
            BucketAlg::Uniform => perm_choose(perms, b, x, r),
            BucketAlg::List => list_choose(b, x, r),
            BucketAlg::Tree => tree_choose(b, x, r),
            BucketAlg::Straw => straw_choose(b, x, r),
            BucketAlg::Straw2 => {
                let prepared = self
                    .straw2
                    .get((-1 - b.id) as usize)
                    .map_or(&[][..], Vec::as_slice);
                straw2_choose(b, x, r, self.choose_arg(b.id), position, prepared)
            }
        }
    }
}

fn perm_choose(perms: &mut [PermCache], b: &Bucket, x: u32, r: i32) -> i32 {
    let size = b.size() as u32;
    let pr = (r as u32) % size;
    let Some(work) = perms.get_mut((-1 - b.id) as usize) else {
        return b.items[0];
    };
    if work.perm.len() != b.size() {
        work.perm.resize(b.size(), 0);
        work.n = 0;
    }
    if work.x != x || work.n == 0 {
        work.x = x;
        // The common r = 0 case needs only the first element.
        if pr == 0 {
            let s = hash32_3(x, b.id as u32, 0) % size;
            work.perm[0] = s;
            work.n = 0xffff;
            return b.items[s as usize];
        }
        for (i, p) in work.perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        work.n = 0;
    } else if work.n == 0xffff {
        // Expand the r = 0 shortcut into a real partial permutation.
        for i in 1..size {
            work.perm[i as usize] = i;
        }
        let first = work.perm[0] as usize;
        work.perm[first] = 0;
        work.n = 1;
    }
    while work.n <= pr {
        let p = work.n;
        if p < size - 1 {
            let i = hash32_3(x, b.id as u32, p) % (size - p);
            if i != 0 {
                work.perm.swap(p as usize, (p + i) as usize);
            }
        }
        work.n += 1;
    }
    b.items[work.perm[pr as usize] as usize]
}

fn list_choose(b: &Bucket, x: u32, r: i32) -> i32 {
    let entries = b.items.iter().zip(&b.item_weights).zip(&b.sum_weights);
    for ((&item, &weight), &sum) in entries.rev() {
        let h = hash32_4(x, item as u32, r as u32, b.id as u32) & 0xffff;
        let w = (h as u64 * sum as u64) >> 16;
        if w < weight as u64 {
            return item;
        }
    }
    b.items[0]
}

fn tree_choose(b: &Bucket, x: u32, r: i32) -> i32 {
    fn height(n: usize) -> u32 {
        n.trailing_zeros()
    }
    let nodes = &b.node_weights;
    let mut n = nodes.len() >> 1;
    // A valid layout has a power-of-two node count >= 2; anything else is a
    // corrupt map, answered without walking it.
    if n == 0 || !nodes.len().is_power_of_two() {
        return b.items[0];
    }
    while n & 1 == 0 {
        let w = nodes.get(n).copied().unwrap_or(0);
        let t = (hash32_4(x, n as u32, r as u32, b.id as u32) as u64 * w as u64) >> 32;
        let h = height(n);
        let left = n - (1 << (h - 1));
        if t < nodes.get(left).copied().unwrap_or(0) as u64 {
            n = left;
        } else {
            n += 1 << (h - 1);
        }
    }
    b.items.get(n >> 1).copied().unwrap_or(b.items[0])
}

fn straw_choose(b: &Bucket, x: u32, r: i32) -> i32 {
    let mut high = 0;
    let mut high_draw = 0u64;
    for (i, (&item, &straw)) in b.items.iter().zip(&b.straws).enumerate() {
        let draw = (hash32_3(x, item as u32, r as u32) & 0xffff) as u64 * straw as u64;
        if i == 0 || draw > high_draw {
            high = i;
            high_draw = draw;
        }
    }
    b.items[high]
}

/// `prepared` holds the bucket's weights ready for division-free draws; it
/// is used for every item whose weight it matches (so a weight set or a
/// stale workspace falls back to plain division, never to a wrong draw).
fn straw2_choose(
    b: &Bucket,
    x: u32,
    r: i32,
    arg: Option<&ChooseArg>,
    position: usize,
    prepared: &[Straw2Weight],
) -> i32 {
    let weights = arg
        .filter(|a| !a.weight_set.is_empty())
        .map(|a| &a.weight_set[position.min(a.weight_set.len() - 1)])
        .filter(|w| w.len() == b.size())
        .unwrap_or(&b.item_weights);
    let ids = arg
        .filter(|a| a.ids.len() == b.size())
        .map_or(&b.items, |a| &a.ids);
    let mut high = 0;
    let mut high_draw = 0i64;
    // Hash LANES items at a time; the comparison stays in item order so the
    // first of equal draws wins, as in Ceph.
    for (chunk_no, (id_chunk, w_chunk)) in ids.chunks(LANES).zip(weights.chunks(LANES)).enumerate()
    {
        let mut lane_ids = [0u32; LANES];
        for (l, &id) in lane_ids.iter_mut().zip(id_chunk) {
            *l = id as u32;
        }
        let hashes = hash32_3_lanes(x, &lane_ids, r as u32);
        for (j, &w) in w_chunk.iter().enumerate() {
            let i = chunk_no * LANES + j;
            let draw = match prepared.get(i) {
                Some(&p) if p.weight() == w => straw2_draw_fast(hashes[j], p),
                _ => straw2_draw(hashes[j], w),
            };
            if i == 0 || draw > high_draw {
                high = i;
                high_draw = draw;
            }
        }
    }
    b.items[high]
}

#[allow(clippy::too_many_arguments)]
fn choose_firstn(
    ctx: &Ctx,
    perms: &mut [PermCache],
    tries_hist: &mut Option<Vec<u64>>,
    bucket: &Bucket,
    numrep: i32,
    type_id: i32,
    out: &mut [i32],
    mut outpos: usize,
    out_size: usize,
    p: FirstnParams,
    recurse_to_leaf: bool,
    mut out2: Option<&mut [i32]>,
    parent_r: i32,
) -> usize {
    let mut count = out_size;
    let mut rep: i32 = if p.stable != 0 { 0 } else { outpos as i32 };
    while rep < numrep && count > 0 {
        let mut ftotal: u32 = 0;
        let mut chosen = None;
        'descent: loop {
            let mut in_bucket = bucket;
            let mut flocal: u32 = 0;
            loop {
                let r = rep + parent_r + ftotal as i32;
                let mut collide = false;
                // An empty bucket counts as a rejection (not a collision).
                if in_bucket.size() != 0 {
                    let item = if p.local_fallback_retries > 0
                        && flocal >= (in_bucket.size() as u32 >> 1)
                        && flocal > p.local_fallback_retries
                    {
                        perm_choose(perms, in_bucket, ctx.x, r)
                    } else {
                        ctx.bucket_choose(perms, in_bucket, r, outpos)
                    };
                    if item >= ctx.max_devices {
                        break 'descent;
                    }
                    let Some(item_type) = ctx.item_type(item) else {
                        break 'descent;
                    };
                    if item_type != type_id {
                        match ctx.bucket(item) {
                            Some(next) if item < 0 => {
                                in_bucket = next;
                                continue;
                            }
                            _ => break 'descent,
                        }
                    }
                    collide = out[..outpos].contains(&item);
                    let mut rejected = false;
                    if !collide && recurse_to_leaf {
                        if item < 0 {
                            // x86 masks shift counts, which is what Ceph's
                            // `r >> (vary_r - 1)` does for huge vary_r.
                            let sub_r = if p.vary_r != 0 {
                                r.wrapping_shr(p.vary_r - 1)
                            } else {
                                0
                            };
                            let leaf_out = out2.as_deref_mut().unwrap_or(&mut []);
                            let inner = FirstnParams {
                                tries: p.recurse_tries,
                                recurse_tries: 0,
                                ..p
                            };
                            let got = match ctx.bucket(item) {
                                Some(child) if !leaf_out.is_empty() => choose_firstn(
                                    ctx,
                                    perms,
                                    tries_hist,
                                    child,
                                    if p.stable != 0 { 1 } else { outpos as i32 + 1 },
                                    0,
                                    leaf_out,
                                    outpos,
                                    count,
                                    inner,
                                    false,
                                    None,
                                    sub_r,
                                ),
                                _ => 0,
                            };
                            rejected = got <= outpos;
                        } else if let Some(o2) = out2.as_deref_mut() {
                            o2[outpos] = item;
                        }
                    }
                    if !rejected && item_type == 0 {
                        rejected = ctx.is_out(item, ctx.x);
                    }
                    if !rejected && !collide {
                        chosen = Some(item);
                        break 'descent;
                    }
                }
                // Rejected or collided: decide where to retry.
                ftotal += 1;
                flocal += 1;
                if (collide && flocal <= p.local_retries)
                    || (p.local_fallback_retries > 0
                        && flocal <= in_bucket.size() as u32 + p.local_fallback_retries)
                {
                    continue;
                }
                if ftotal < p.tries {
                    continue 'descent;
                }
                break 'descent;
            }
        }
        if let Some(item) = chosen {
            out[outpos] = item;
            outpos += 1;
            count -= 1;
            if let Some(hist) = tries_hist.as_mut()
                && let Some(slot) = hist.get_mut(ftotal as usize)
            {
                *slot += 1;
            }
        }
        rep += 1;
    }
    outpos
}

#[allow(clippy::too_many_arguments)]
fn choose_indep(
    ctx: &Ctx,
    perms: &mut [PermCache],
    tries_hist: &mut Option<Vec<u64>>,
    bucket: &Bucket,
    mut left: i32,
    numrep: i32,
    type_id: i32,
    out: &mut [i32],
    outpos: usize,
    tries: u32,
    recurse_tries: u32,
    recurse_to_leaf: bool,
    mut out2: Option<&mut [i32]>,
    parent_r: i32,
) {
    let endpos = outpos + left.max(0) as usize;
    for rep in outpos..endpos {
        out[rep] = ITEM_UNDEF;
        if let Some(o2) = out2.as_deref_mut() {
            o2[rep] = ITEM_UNDEF;
        }
    }
    let mut ftotal: u32 = 0;
    while left > 0 && ftotal < tries {
        for rep in outpos..endpos {
            if out[rep] != ITEM_UNDEF {
                continue;
            }
            let mut in_bucket = bucket;
            loop {
                let stride = if in_bucket.alg == BucketAlg::Uniform
                    && in_bucket.size() % numrep as usize == 0
                {
                    numrep + 1
                } else {
                    numrep
                };
                let r = (rep as i32 + parent_r).wrapping_add(stride.wrapping_mul(ftotal as i32));
                if in_bucket.size() == 0 {
                    break;
                }
                let item = ctx.bucket_choose(perms, in_bucket, r, outpos);
                let item_type = if item >= ctx.max_devices {
                    None
                } else {
                    ctx.item_type(item)
                };
                let Some(item_type) = item_type else {
                    out[rep] = ITEM_NONE;
                    if let Some(o2) = out2.as_deref_mut() {
                        o2[rep] = ITEM_NONE;
                    }
                    left -= 1;
                    break;
                };
                if item_type != type_id {
                    match ctx.bucket(item) {
                        Some(next) if item < 0 => {
                            in_bucket = next;
                            continue;
                        }
                        _ => {
                            out[rep] = ITEM_NONE;
                            if let Some(o2) = out2.as_deref_mut() {
                                o2[rep] = ITEM_NONE;
                            }
                            left -= 1;
                            break;
                        }
                    }
                }
                if out[outpos..endpos].contains(&item) {
                    break;
                }
                if recurse_to_leaf {
                    if let Some(o2) = out2.as_deref_mut() {
                        if item < 0 {
                            if let Some(child) = ctx.bucket(item) {
                                choose_indep(
                                    ctx,
                                    perms,
                                    tries_hist,
                                    child,
                                    1,
                                    numrep,
                                    0,
                                    o2,
                                    rep,
                                    recurse_tries,
                                    0,
                                    false,
                                    None,
                                    r,
                                );
                            } else {
                                o2[rep] = ITEM_NONE;
                            }
                            if o2[rep] == ITEM_NONE {
                                break;
                            }
                        } else {
                            o2[rep] = item;
                        }
                    }
                }
                if item_type == 0 && ctx.is_out(item, ctx.x) {
                    break;
                }
                out[rep] = item;
                left -= 1;
                break;
            }
        }
        ftotal += 1;
    }
    for rep in outpos..endpos {
        if out[rep] == ITEM_UNDEF {
            out[rep] = ITEM_NONE;
        }
        if let Some(o2) = out2.as_deref_mut()
            && o2[rep] == ITEM_UNDEF
        {
            o2[rep] = ITEM_NONE;
        }
    }
    if let Some(hist) = tries_hist.as_mut()
        && let Some(slot) = hist.get_mut(ftotal as usize)
    {
        *slot += 1;
    }
}

/// Maps `x` through rule `rule_id`, writing up to `result.len()` items
/// (`result_max` in Ceph) and returning how many were written.
///
/// `weights` is the reweight vector indexed by device id (0x10000 = in,
/// 0 = out); devices beyond its end count as out. `choose_args` selects a
/// straw2 weight set. An unknown rule maps to nothing.
pub fn do_rule(
    map: &CrushMap,
    rule_id: i32,
    x: u32,
    result: &mut [i32],
    weights: &[Weight],
    choose_args: Option<&ChooseArgMap>,
    ws: &mut Workspace,
) -> usize {
    let Some(rule) = map.rule(rule_id) else {
        return 0;
    };
    let result_max = result.len();
    ws.fit(map, result_max);
    let Workspace {
        max_devices,
        w,
        o,
        c,
        perms,
        straw2,
        choose_tries: hist,
        ..
    } = ws;
    let ctx = Ctx {
        map,
        weights,
        max_devices: *max_devices,
        x,
        choose_args,
        straw2,
    };
    let t = &map.tunables;
    let mut choose_tries = t.choose_total_tries.wrapping_add(1);
    let mut choose_leaf_tries = 0u32;
    let mut local_retries = t.choose_local_tries;
    let mut local_fallback_retries = t.choose_local_fallback_tries;
    let mut vary_r = t.chooseleaf_vary_r as u32;
    let mut stable = t.chooseleaf_stable as u32;

    let mut wsize = 0usize;
    let mut result_len = 0usize;

    for step in &rule.steps {
        match *step {
            RuleStep::Noop => {}
            RuleStep::Take(item) => {
                let valid = (item >= 0 && item < ctx.max_devices) || map.bucket(item).is_some();
                if valid && result_max > 0 {
                    w[0] = item;
                    wsize = 1;
                }
            }
            RuleStep::SetChooseTries(n) => {
                if n > 0 {
                    choose_tries = n as u32;
                }
            }
            RuleStep::SetChooseleafTries(n) => {
                if n > 0 {
                    choose_leaf_tries = n as u32;
                }
            }
            RuleStep::SetChooseLocalTries(n) => {
                if n >= 0 {
                    local_retries = n as u32;
                }
            }
            RuleStep::SetChooseLocalFallbackTries(n) => {
                if n >= 0 {
                    local_fallback_retries = n as u32;
                }
            }
            RuleStep::SetChooseleafVaryR(n) => {
                if n >= 0 {
                    vary_r = n as u32;
                }
            }
            RuleStep::SetChooseleafStable(n) => {
                if n >= 0 {
                    stable = n as u32;
                }
            }
            RuleStep::ChooseFirstn { num, type_id }
            | RuleStep::ChooseIndep { num, type_id }
            | RuleStep::ChooseleafFirstn { num, type_id }
            | RuleStep::ChooseleafIndep { num, type_id } => {
                if wsize == 0 {
                    continue;
                }
                let firstn = matches!(
                    step,
                    RuleStep::ChooseFirstn { .. } | RuleStep::ChooseleafFirstn { .. }
                );
                let recurse_to_leaf = matches!(
                    step,
                    RuleStep::ChooseleafFirstn { .. } | RuleStep::ChooseleafIndep { .. }
                );
                let mut osize = 0usize;
                for &item in &w[..wsize] {
                    let mut numrep = num;
                    if numrep <= 0 {
                        numrep += result_max as i32;
                        if numrep <= 0 {
                            continue;
                        }
                    }
                    let Some(bucket) = (if item < 0 { map.bucket(item) } else { None }) else {
                        continue;
                    };
                    if firstn {
                        let recurse_tries = if choose_leaf_tries != 0 {
                            choose_leaf_tries
                        } else if t.chooseleaf_descend_once != 0 {
                            1
                        } else {
                            choose_tries
                        };
                        let params = FirstnParams {
                            tries: choose_tries,
                            recurse_tries,
                            local_retries,
                            local_fallback_retries,
                            vary_r,
                            stable,
                        };
                        osize += choose_firstn(
                            &ctx,
                            perms,
                            hist,
                            bucket,
                            numrep,
                            type_id,
                            &mut o[osize..result_max],
                            0,
                            result_max - osize,
                            params,
                            recurse_to_leaf,
                            Some(&mut c[osize..result_max]),
                            0,
                        );
                    } else {
                        let out_size = (numrep as usize).min(result_max - osize);
                        choose_indep(
                            &ctx,
                            perms,
                            hist,
                            bucket,
                            out_size as i32,
                            numrep,
                            type_id,
                            &mut o[osize..result_max],
                            0,
                            choose_tries,
                            if choose_leaf_tries != 0 {
                                choose_leaf_tries
                            } else {
                                1
                            },
                            recurse_to_leaf,
                            Some(&mut c[osize..result_max]),
                            0,
                        );
                        osize += out_size;
                    }
                }
                if recurse_to_leaf {
                    o[..osize].copy_from_slice(&c[..osize]);
                }
                std::mem::swap(w, o);
                wsize = osize;
            }
            RuleStep::Emit => {
                for &item in &w[..wsize] {
                    if result_len >= result_max {
                        break;
                    }
                    result[result_len] = item;
                    result_len += 1;
                }
                wsize = 0;
            }
        }
    }
    result_len
}
