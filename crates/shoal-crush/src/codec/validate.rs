//! Structural invariants of a [`CrushMap`], checked after decoding so that
//! code indexing into the map (the mapper) cannot be driven out of bounds or
//! into an endless descent by corrupt input.

use std::collections::HashSet;

use super::CodecError;
use crate::builder::{MAX_BUCKETS, MAX_TREE_ITEMS, tree_num_nodes};
use crate::model::{Bucket, BucketAlg, CrushMap, RuleStep};

/// Rules are indexed by a `u8` ruleset in Ceph.
const MAX_RULES: usize = 256;

fn invalid(msg: String) -> CodecError {
    CodecError::Invalid(msg)
}

/// Largest retry count a decoded map may ask for. Real maps use 19 to a few
/// hundred; a map from the network with billions would stall every mapping
/// of every client, so it is refused.
pub const MAX_TRIES: u32 = 10_000;

/// Largest count a `choose`/`chooseleaf` step may ask for. A step tries
/// up to its count of replica ranks, each with all its retries, while
/// results are missing; real rules ask for a pool's size (0) or a handful.
/// A map with tens of thousands would stall mappings for minutes.
pub const MAX_STEP_NUM: i32 = 256;

/// Retry tunables and `set_*_tries` steps stay within [`MAX_TRIES`];
/// `choose` steps ask for at most [`MAX_STEP_NUM`] items.
fn tries(map: &CrushMap) -> Result<(), CodecError> {
    let t = &map.tunables;
    let tunables = [
        ("choose_total_tries", t.choose_total_tries),
        ("choose_local_tries", t.choose_local_tries),
        ("choose_local_fallback_tries", t.choose_local_fallback_tries),
    ];
    for (name, v) in tunables {
        if v > MAX_TRIES {
            return Err(invalid(format!("tunable {name} {v} exceeds {MAX_TRIES}")));
        }
    }
    for rule in map.rules.iter().flatten() {
        for step in &rule.steps {
            if let RuleStep::ChooseFirstn { num, .. }
            | RuleStep::ChooseIndep { num, .. }
            | RuleStep::ChooseleafFirstn { num, .. }
            | RuleStep::ChooseleafIndep { num, .. } = *step
                && num > MAX_STEP_NUM
            {
                return Err(invalid(format!(
                    "rule {}: a step choosing {num} items exceeds {MAX_STEP_NUM}",
                    rule.id
                )));
            }
            let n = match *step {
                RuleStep::SetChooseTries(n)
                | RuleStep::SetChooseleafTries(n)
                | RuleStep::SetChooseLocalTries(n)
                | RuleStep::SetChooseLocalFallbackTries(n) => n,
                _ => continue,
            };
            if n > MAX_TRIES as i32 {
                return Err(invalid(format!(
                    "rule {}: {n} tries exceeds {MAX_TRIES}",
                    rule.id
                )));
            }
        }
    }
    Ok(())
}

/// Checks the invariants every map built by this crate satisfies:
///
/// - devices have ids `>= 0`, sorted and unique; types sorted and unique;
/// - at most [`MAX_BUCKETS`] bucket slots and 256 rule slots;
/// - the bucket at index `i` has id `-1 - i`, the rule at index `i` id `i`;
/// - each bucket has one weight per item, a total weight equal to their sum,
///   and exactly the derived data of its algorithm (straws, list prefix sums,
///   tree node weights for at most 64 items; equal weights for uniform);
/// - bucket items are devices (`>= 0`) or existing buckets, with no cycle;
/// - shadow and class ids refer to existing buckets;
/// - choose_args refer to existing buckets, with one weight (and id) per item;
/// - retry counts stay within [`MAX_TRIES`], step counts within
///   [`MAX_STEP_NUM`].
///
/// # Errors
///
/// [`CodecError::Invalid`] naming the first broken invariant.
pub fn validate(map: &CrushMap) -> Result<(), CodecError> {
    if map.devices.iter().any(|d| d.id < 0) || !map.devices.is_sorted_by(|a, b| a.id < b.id) {
        return Err(invalid("devices must have unique ids >= 0, sorted".into()));
    }
    if !map.types.is_sorted_by(|a, b| a.id < b.id) {
        return Err(invalid("types must have unique ids, sorted".into()));
    }
    if map.buckets.len() > MAX_BUCKETS {
        return Err(invalid(format!(
            "{} bucket slots (max {MAX_BUCKETS})",
            map.buckets.len()
        )));
    }
    for (i, slot) in map.buckets.iter().enumerate() {
        if let Some(b) = slot {
            bucket(map, i, b)?;
        }
    }
    acyclic(map)?;
    tries(map)?;
    if map.rules.len() > MAX_RULES {
        return Err(invalid(format!(
            "{} rule slots (max {MAX_RULES})",
            map.rules.len()
        )));
    }
    for (i, r) in map.rules.iter().enumerate() {
        if r.as_ref()
            .is_some_and(|r| usize::try_from(r.id).ok() != Some(i))
        {
            return Err(invalid(format!("rule at index {i} has a different id")));
        }
    }
    choose_args(map)
}

fn bucket(map: &CrushMap, index: usize, b: &Bucket) -> Result<(), CodecError> {
    let id = b.id;
    if i64::from(id) != -1 - index as i64 {
        return Err(invalid(format!("bucket at index {index} has id {id}")));
    }
    let n = b.items.len();
    if b.item_weights.len() != n {
        return Err(invalid(format!(
            "bucket {id}: {n} items but {} weights",
            b.item_weights.len()
        )));
    }
    let sum = b
        .item_weights
        .iter()
        .try_fold(0u32, |a, &w| a.checked_add(w));
    if sum != Some(b.weight) {
        return Err(invalid(format!(
            "bucket {id}: weight is not the sum of its item weights"
        )));
    }
    let want = |alg: BucketAlg, len: usize| if b.alg == alg { len } else { 0 };
    let prefix_ok = b
        .sum_weights
        .iter()
        .zip(b.item_weights.iter().scan(0u32, |a, &w| {
            *a = a.wrapping_add(w);
            Some(*a)
        }))
        .all(|(s, p)| *s == p);
    if b.alg == BucketAlg::Tree && n > MAX_TREE_ITEMS {
        return Err(invalid(format!(
            "tree bucket {id}: {n} items (max {MAX_TREE_ITEMS})"
        )));
    }
    if b.straws.len() != want(BucketAlg::Straw, n)
        || b.sum_weights.len() != want(BucketAlg::List, n)
        || b.node_weights.len() != want(BucketAlg::Tree, tree_num_nodes(n))
        || !prefix_ok
    {
        return Err(invalid(format!(
            "bucket {id}: derived data does not match its algorithm"
        )));
    }
    if b.alg == BucketAlg::Uniform && b.item_weights.windows(2).any(|w| w[0] != w[1]) {
        return Err(invalid(format!(
            "uniform bucket {id}: unequal item weights"
        )));
    }
    if let Some(&item) = b.items.iter().find(|&&i| i < 0 && map.bucket(i).is_none()) {
        return Err(invalid(format!("bucket {id}: item {item} does not exist")));
    }
    let orig_ok = b
        .shadow_of
        .as_ref()
        .is_none_or(|(o, _)| map.bucket(*o).is_some_and(|ob| !ob.is_shadow()));
    if !orig_ok || b.class_ids.iter().any(|(_, c)| map.bucket(*c).is_none()) {
        return Err(invalid(format!(
            "bucket {id}: shadow or class ids refer to missing buckets"
        )));
    }
    Ok(())
}

/// No bucket contains itself, directly or not (iterative three-color DFS).
fn acyclic(map: &CrushMap) -> Result<(), CodecError> {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut color = vec![WHITE; map.buckets.len()];
    let index = |id: i32| (-1 - i64::from(id)) as usize;
    for start in 0..map.buckets.len() {
        if map.buckets[start].is_none() || color[start] != WHITE {
            continue;
        }
        color[start] = GREY;
        let mut stack = vec![(start, 0usize)];
        while let Some((b, next)) = stack.last_mut() {
            let items = map.buckets[*b].as_ref().map_or(&[][..], |x| &x.items[..]);
            match items.get(*next) {
                Some(&item) if item < 0 => {
                    *next += 1;
                    let c = index(item);
                    match color.get(c) {
                        Some(&GREY) => {
                            return Err(invalid(format!("bucket {item} contains itself")));
                        }
                        Some(&WHITE) => {
                            color[c] = GREY;
                            stack.push((c, 0));
                        }
                        _ => {}
                    }
                }
                Some(_) => *next += 1,
                None => {
                    color[*b] = BLACK;
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

fn choose_args(map: &CrushMap) -> Result<(), CodecError> {
    let mut ids = HashSet::new();
    for cm in &map.choose_args {
        if !ids.insert(cm.id) {
            return Err(invalid(format!("choose_args {} given twice", cm.id)));
        }
        let mut seen = HashSet::new();
        for a in &cm.args {
            let Some(b) = map.bucket(a.bucket_id) else {
                return Err(invalid(format!(
                    "choose_args {}: no bucket {}",
                    cm.id, a.bucket_id
                )));
            };
            let n = b.size();
            let sizes_ok =
                (a.ids.is_empty() || a.ids.len() == n) && a.weight_set.iter().all(|w| w.len() == n);
            if !sizes_ok || !seen.insert(a.bucket_id) {
                return Err(invalid(format!(
                    "choose_args {}: bad entry for bucket {}",
                    cm.id, a.bucket_id
                )));
            }
        }
    }
    Ok(())
}
