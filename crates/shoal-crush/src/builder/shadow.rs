//! Device-class shadow trees, built like Ceph's
//! `CrushWrapper::rebuild_roots_with_classes` -> `populate_classes` ->
//! `device_class_clone`.
//!
//! For every root (a non-shadow bucket that no bucket contains, by ascending
//! id) and every class (in class order), the tree is cloned depth first: a
//! shadow bucket `B~C` has B's type, alg and hash; its items are B's devices of
//! class C (with their weight in B) and the shadow buckets of B's child buckets
//! (weighted by their total), in B's order. Empty shadow buckets are kept. A
//! shadow id comes from `B.class_ids`; a missing one is the first id, counting
//! down from -1, that is neither taken by a bucket nor recorded anywhere.

use std::collections::{HashMap, HashSet};

use super::{BuildError, MAX_BUCKETS, make_bucket};
use crate::model::{Bucket, BucketAlg, ChooseArg, CrushMap, Weight};

/// (Re)creates every `B~class` shadow bucket of `map`.
///
/// Existing shadow buckets (and their `choose_args` entries) are removed
/// first; the ids recorded in each bucket's `class_ids` (or in the old shadow
/// buckets) are reused, new ids are allocated and recorded in `class_ids`.
/// Classes are those recorded in `class_ids` (in their order) followed by the
/// device classes not seen there, by device id. Weight sets of `choose_args`
/// are carried over to the new shadow buckets as Ceph does.
///
/// # Errors
///
/// A bucket reachable from a root contains a missing bucket or itself, a
/// recorded shadow id is taken by another bucket, no id is left, or a shadow
/// bucket cannot be built (e.g. a uniform bucket whose class members would
/// have unequal weights).
pub fn build_shadow_trees(map: &mut CrushMap) -> Result<(), BuildError> {
    let classes = class_order(map);
    build_shadow_trees_ordered(map, &classes)
}

/// The class order [`build_shadow_trees`] uses when none is given.
fn class_order(map: &CrushMap) -> Vec<String> {
    let mut classes: Vec<String> = Vec::new();
    let mut add = |c: &str| {
        if !classes.iter().any(|k| k == c) {
            classes.push(c.to_string());
        }
    };
    for b in map.buckets.iter().flatten() {
        b.class_ids.iter().for_each(|(c, _)| add(c));
        if let Some((_, c)) = &b.shadow_of {
            add(c);
        }
    }
    let mut devices: Vec<_> = map.devices.iter().collect();
    devices.sort_by_key(|d| d.id);
    devices
        .iter()
        .filter_map(|d| d.class.as_deref())
        .for_each(add);
    classes
}

/// [`build_shadow_trees`] with an explicit class order (Ceph's class ids).
pub(crate) fn build_shadow_trees_ordered(
    map: &mut CrushMap,
    classes: &[String],
) -> Result<(), BuildError> {
    let old = remove_shadows(map);
    let device_class: HashMap<i32, usize> = map
        .devices
        .iter()
        .filter_map(|d| {
            let c = d.class.as_deref()?;
            Some((d.id, classes.iter().position(|k| k == c)?))
        })
        .collect();
    let mut cloner = Cloner {
        used: old.values().copied().collect(),
        next_free: 1,
        old,
        created: HashMap::new(),
        device_class,
        classes,
        carg_weights: HashMap::new(),
    };
    // Like `populate_classes`, stop at the first failure; the shadow buckets
    // made before it stay.
    let mut result = Ok(());
    'roots: for root in map.roots() {
        for class in 0..classes.len() {
            if let Err(e) = cloner.clone_tree(map, root, class) {
                result = Err(e);
                break 'roots;
            }
        }
    }
    for b in map.buckets.iter_mut().flatten() {
        b.class_ids
            .sort_by_key(|(c, _)| classes.iter().position(|k| k == c));
    }
    for cm in &mut map.choose_args {
        cm.args.sort_by_key(|a| std::cmp::Reverse(a.bucket_id));
    }
    result
}

/// Removes all shadow buckets and their choose args, clears `class_ids` and
/// returns the recorded `(original id, class) -> shadow id` assignments.
fn remove_shadows(map: &mut CrushMap) -> HashMap<(i32, String), i32> {
    let mut old = HashMap::new();
    let mut removed = HashSet::new();
    for slot in &mut map.buckets {
        let Some(b) = slot else { continue };
        if let Some((orig, class)) = &b.shadow_of {
            old.entry((*orig, class.clone())).or_insert(b.id);
            removed.insert(b.id);
            *slot = None;
        } else {
            for (class, id) in b.class_ids.drain(..) {
                old.insert((b.id, class), id);
            }
        }
    }
    while matches!(map.buckets.last(), Some(None)) {
        map.buckets.pop();
    }
    for cm in &mut map.choose_args {
        cm.args.retain(|a| !removed.contains(&a.bucket_id));
    }
    old
}

/// One bucket being cloned: the items of its shadow gathered so far.
struct Frame {
    orig: i32,
    pos: usize,
    items: Vec<i32>,
    weights: Vec<Weight>,
    orig_pos: Vec<usize>,
}

impl Frame {
    fn new(orig: i32) -> Self {
        Frame {
            orig,
            pos: 0,
            items: Vec::new(),
            weights: Vec::new(),
            orig_pos: Vec::new(),
        }
    }
}

struct Cloner<'a> {
    old: HashMap<(i32, String), i32>,
    used: HashSet<i32>,
    /// Free ids are only ever consumed, so the search for the next one
    /// resumes where the last one stopped: `-next_free` is the first
    /// candidate.
    next_free: i32,
    created: HashMap<(i32, usize), i32>,
    device_class: HashMap<i32, usize>,
    classes: &'a [String],
    /// Ceph's `cmap_item_weight`: (choose_args id, shadow id) -> weights.
    carg_weights: HashMap<(i64, i32), Vec<Weight>>,
}

impl Cloner<'_> {
    /// `device_class_clone(root, class)`, depth first without recursion.
    fn clone_tree(
        &mut self,
        map: &mut CrushMap,
        root: i32,
        class: usize,
    ) -> Result<(), BuildError> {
        if self.created.contains_key(&(root, class)) {
            return Ok(());
        }
        let mut stack = vec![Frame::new(root)];
        let mut in_progress = HashSet::from([root]);
        while let Some(top) = stack.last_mut() {
            let parent = map.bucket(top.orig).ok_or(BuildError::MissingBucket {
                parent: top.orig,
                child: top.orig,
            })?;
            let Some(&item) = parent.items.get(top.pos) else {
                let frame = stack.pop().ok_or(BuildError::Cycle(root))?;
                in_progress.remove(&frame.orig);
                self.finish(map, frame, class)?;
                continue;
            };
            let weight = parent.item_weights.get(top.pos).copied().unwrap_or(0);
            // Ceph builds the copy empty and adds items one at a time; a
            // uniform bucket refuses an item whose weight differs from its
            // `item_weight`, which is 0 for an empty bucket.
            let uniform = parent.alg == BucketAlg::Uniform;
            if item >= 0 {
                if self.device_class.get(&item) == Some(&class) {
                    if uniform && weight != 0 {
                        return Err(BuildError::UniformShadow(top.orig));
                    }
                    top.items.push(item);
                    top.weights.push(weight);
                    top.orig_pos.push(top.pos);
                }
            } else if let Some(&copy) = self.created.get(&(item, class)) {
                let w = map.bucket(copy).map_or(0, |b| b.weight);
                if uniform && w != 0 {
                    return Err(BuildError::UniformShadow(top.orig));
                }
                top.items.push(copy);
                top.weights.push(w);
                top.orig_pos.push(top.pos);
            } else if in_progress.contains(&item) {
                return Err(BuildError::Cycle(item));
            } else if map.bucket(item).is_none_or(Bucket::is_shadow) {
                return Err(BuildError::MissingBucket {
                    parent: top.orig,
                    child: item,
                });
            } else {
                // Clone the child first; this item is revisited afterwards.
                in_progress.insert(item);
                stack.push(Frame::new(item));
                continue;
            }
            top.pos += 1;
        }
        Ok(())
    }

    /// Creates the shadow bucket of a finished frame.
    fn finish(&mut self, map: &mut CrushMap, frame: Frame, class: usize) -> Result<(), BuildError> {
        let class_name = &self.classes[class];
        let orig = map.bucket(frame.orig).ok_or(BuildError::MissingBucket {
            parent: frame.orig,
            child: frame.orig,
        })?;
        let name = format!("{}~{}", orig.name, class_name);
        let (type_id, alg, hash) = (orig.type_id, orig.alg, orig.hash);
        let id = match self.old.get(&(frame.orig, class_name.clone())) {
            Some(&id) if id != 0 => id,
            _ => self.fresh_id(map, &name)?,
        };
        if map.bucket(id).is_some() {
            return Err(BuildError::ShadowIdInUse { name, id });
        }
        let version = map.tunables.straw_calc_version;
        let mut shadow = make_bucket(
            id,
            &name,
            type_id,
            alg,
            hash,
            frame.items,
            frame.weights,
            version,
        )?;
        shadow.shadow_of = Some((frame.orig, class_name.clone()));
        self.carry_choose_args(map, &shadow, frame.orig, &frame.orig_pos);
        let idx = (-1 - id) as usize; // make_bucket checked the range
        if map.buckets.len() <= idx {
            map.buckets.resize(idx + 1, None);
        }
        map.buckets[idx] = Some(shadow);
        if let Some(Some(b)) = map.buckets.get_mut((-1 - frame.orig) as usize) {
            b.class_ids.push((class_name.clone(), id));
        }
        self.created.insert((frame.orig, class), id);
        self.used.insert(id);
        Ok(())
    }

    /// The first id counting down from -1 that no bucket has and that is not
    /// recorded as some shadow bucket's id.
    fn fresh_id(&mut self, map: &CrushMap, name: &str) -> Result<i32, BuildError> {
        let found = (self.next_free..=MAX_BUCKETS as i32)
            .map(|k| -k)
            .find(|id| map.bucket(*id).is_none() && !self.used.contains(id))
            .ok_or_else(|| BuildError::NoFreeId(name.to_string()))?;
        self.next_free = -found;
        Ok(found)
    }

    /// Gives a new shadow bucket the weight sets of its original, as
    /// `device_class_clone` does: devices keep their weight-set weights, child
    /// shadow buckets get the weights accumulated for them (Ceph keeps only
    /// the last position of that accumulation; so do we). No `ids`.
    fn carry_choose_args(
        &mut self,
        map: &mut CrushMap,
        shadow: &Bucket,
        orig: i32,
        orig_pos: &[usize],
    ) {
        for cm in &mut map.choose_args {
            let Some(o) = cm.args.iter().find(|a| a.bucket_id == orig) else {
                continue;
            };
            let positions = o.weight_set.len();
            if positions == 0 {
                continue;
            }
            let weight_set: Vec<Vec<Weight>> = (0..positions)
                .map(|s| {
                    (shadow.items.iter().zip(orig_pos))
                        .map(|(&item, &p)| {
                            if item >= 0 {
                                o.weight_set[s].get(p).copied().unwrap_or(0)
                            } else {
                                self.carg_weights
                                    .get(&(cm.id, item))
                                    .and_then(|v| v.get(s).copied())
                                    .unwrap_or(0)
                            }
                        })
                        .collect()
                })
                .collect();
            let mut acc = vec![0u32; positions];
            acc[positions - 1] = weight_set[positions - 1]
                .iter()
                .fold(0u32, |a, &w| a.wrapping_add(w));
            self.carg_weights.insert((cm.id, shadow.id), acc);
            cm.args.push(ChooseArg {
                bucket_id: shadow.id,
                ids: Vec::new(),
                weight_set,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketAlg, BucketType, Device, Tunables};

    fn device(id: i32, class: Option<&str>) -> Device {
        Device {
            id,
            name: format!("osd.{id}"),
            class: class.map(str::to_string),
        }
    }

    fn put(map: &mut CrushMap, b: Bucket) {
        let idx = (-1 - b.id) as usize;
        if map.buckets.len() <= idx {
            map.buckets.resize(idx + 1, None);
        }
        map.buckets[idx] = Some(b);
    }

    /// host0 = [osd.0 ssd, osd.1 hdd], host1 = [osd.2 hdd], root = [host0, host1].
    fn small_map() -> CrushMap {
        let mut map = CrushMap::new(Tunables::jewel());
        map.devices = vec![
            device(0, Some("ssd")),
            device(1, Some("hdd")),
            device(2, Some("hdd")),
        ];
        map.types = vec![
            BucketType {
                id: 0,
                name: "osd".into(),
            },
            BucketType {
                id: 1,
                name: "host".into(),
            },
        ];
        let h0 = make_bucket(
            -1,
            "host0",
            1,
            BucketAlg::Straw2,
            0,
            vec![0, 1],
            vec![0x10000, 0x20000],
            1,
        );
        let h1 = make_bucket(
            -2,
            "host1",
            1,
            BucketAlg::Straw,
            0,
            vec![2],
            vec![0x8000],
            1,
        );
        let r = make_bucket(
            -3,
            "root",
            2,
            BucketAlg::Straw2,
            0,
            vec![-1, -2],
            vec![0x30000, 0x8000],
            1,
        );
        for b in [h0, h1, r] {
            put(&mut map, b.expect("bucket"));
        }
        map
    }

    #[test]
    fn builds_classes_in_device_order_with_fresh_ids() {
        let mut map = small_map();
        build_shadow_trees(&mut map).expect("shadow trees");
        // Classes: ssd (osd.0) then hdd. Root -3 first: ssd clone allocates
        // -4 (host0~ssd), -5 (host1~ssd, empty), -6 (root~ssd); then hdd.
        let name = |id| map.bucket(id).map(|b| b.name.clone());
        assert_eq!(name(-4).as_deref(), Some("host0~ssd"));
        assert_eq!(name(-5).as_deref(), Some("host1~ssd"));
        assert_eq!(name(-6).as_deref(), Some("root~ssd"));
        assert_eq!(name(-9).as_deref(), Some("root~hdd"));
        let root_ssd = map.bucket(-6).expect("root~ssd");
        assert_eq!(root_ssd.items, vec![-4, -5]);
        assert_eq!(root_ssd.item_weights, vec![0x10000, 0]);
        assert_eq!(root_ssd.shadow_of, Some((-3, "ssd".to_string())));
        let host1_hdd = map.bucket(-8).expect("host1~hdd");
        assert_eq!(host1_hdd.alg, BucketAlg::Straw);
        assert_eq!(host1_hdd.straws, vec![0x10000]);
        let root = map.bucket(-3).expect("root");
        assert_eq!(
            root.class_ids,
            vec![("ssd".to_string(), -6), ("hdd".to_string(), -9)]
        );
    }

    #[test]
    fn rebuild_keeps_ids_and_is_idempotent() {
        let mut map = small_map();
        put(
            &mut map,
            make_bucket(-20, "x", 1, BucketAlg::Straw2, 0, vec![], vec![], 1).expect("b"),
        );
        if let Some(Some(b)) = map.buckets.get_mut(0) {
            b.class_ids.push(("hdd".into(), -30));
        }
        build_shadow_trees(&mut map).expect("first build");
        assert_eq!(map.bucket(-30).map(|b| b.name.as_str()), Some("host0~hdd"));
        let first = map.clone();
        build_shadow_trees(&mut map).expect("second build");
        assert_eq!(map, first);
    }

    #[test]
    fn reports_cycles_and_missing_children() {
        let mut map = small_map();
        if let Some(Some(b)) = map.buckets.get_mut(0) {
            b.items.push(-3);
            b.item_weights.push(0);
        }
        map.devices[0].class = Some("hdd".into());
        // root contains host0 which contains root: no root left, nothing to do.
        assert_eq!(build_shadow_trees(&mut map), Ok(()));
        let mut map = small_map();
        if let Some(Some(b)) = map.buckets.get_mut(0) {
            b.items.push(-7);
            b.item_weights.push(0);
        }
        assert_eq!(
            build_shadow_trees(&mut map),
            Err(BuildError::MissingBucket {
                parent: -1,
                child: -7
            })
        );
    }
}
