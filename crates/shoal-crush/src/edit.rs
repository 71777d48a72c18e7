//! Editing a map the way Ceph's `CrushWrapper` does: adding devices and
//! buckets, linking and unlinking items, changing weights. Every edit keeps
//! bucket totals consistent up the hierarchy (a parent's entry for a bucket
//! is that bucket's total weight, as `adjust_item_weight` leaves it),
//! recomputes derived bucket data, and rebuilds the device-class shadow trees.

use thiserror::Error;

use crate::builder::{BuildError, MAX_BUCKETS, build_shadow_trees, make_bucket};
use crate::model::{Bucket, BucketAlg, CrushMap, Device, Weight};

/// Why an edit was refused. The map is unchanged when an edit fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    /// The id or name is already taken.
    #[error("{0} already exists")]
    Exists(String),
    /// No such item.
    #[error("no item {0}")]
    NoSuchItem(i32),
    /// No such bucket type.
    #[error("no bucket type {0}")]
    NoSuchType(i32),
    /// A device id must be >= 0.
    #[error("bad device id {0}")]
    BadDeviceId(i32),
    /// A bucket must be emptied before it is removed.
    #[error("bucket {0} is not empty")]
    NotEmpty(i32),
    /// Linking the item there would create a cycle.
    #[error("linking {item} under {parent} would make a cycle")]
    Cycle {
        /// The item.
        item: i32,
        /// The intended parent.
        parent: i32,
    },
    /// The item is already a child of that bucket.
    #[error("{item} is already in bucket {parent}")]
    AlreadyLinked {
        /// The item.
        item: i32,
        /// The bucket.
        parent: i32,
    },
    /// No free bucket id is left.
    #[error("no free bucket id")]
    Full,
    /// Rebuilding a bucket failed (e.g. weight overflow, uniform weights).
    #[error(transparent)]
    Build(#[from] BuildError),
}

impl CrushMap {
    /// Buckets that are nobody's child, shadow trees excluded, in ascending
    /// id order (Ceph's `find_nonshadow_roots`).
    pub fn roots(&self) -> Vec<i32> {
        let children: std::collections::BTreeSet<i32> = self
            .buckets
            .iter()
            .flatten()
            .flat_map(|b| b.items.iter().copied())
            .collect();
        let mut roots: Vec<i32> = self
            .buckets
            .iter()
            .flatten()
            .filter(|b| !b.is_shadow() && !children.contains(&b.id))
            .map(|b| b.id)
            .collect();
        roots.sort_unstable();
        roots
    }

    /// The (non-shadow) buckets holding `item`.
    pub fn parents(&self, item: i32) -> Vec<i32> {
        self.buckets
            .iter()
            .flatten()
            .filter(|b| !b.is_shadow() && b.items.contains(&item))
            .map(|b| b.id)
            .collect()
    }

    /// Adds a device (not yet linked anywhere).
    pub fn add_device(
        &mut self,
        id: i32,
        name: &str,
        class: Option<&str>,
    ) -> Result<(), EditError> {
        if id < 0 {
            return Err(EditError::BadDeviceId(id));
        }
        if self.device(id).is_some() || self.item_id(name).is_some() {
            return Err(EditError::Exists(format!("device {id} ({name})")));
        }
        let pos = self.devices.partition_point(|d| d.id < id);
        self.devices.insert(
            pos,
            Device {
                id,
                name: name.to_string(),
                class: class.map(str::to_string),
            },
        );
        Ok(())
    }

    /// Adds an empty straw2 bucket, optionally linked under `parent`, and
    /// returns its id (the first free slot, as Ceph picks it).
    pub fn add_bucket(
        &mut self,
        name: &str,
        type_id: i32,
        parent: Option<i32>,
    ) -> Result<i32, EditError> {
        if self.item_id(name).is_some() {
            return Err(EditError::Exists(name.to_string()));
        }
        if type_id == 0 || self.type_name(type_id).is_none() {
            return Err(EditError::NoSuchType(type_id));
        }
        if let Some(p) = parent
            && self.bucket(p).is_none()
        {
            return Err(EditError::NoSuchItem(p));
        }
        let slot = match self.buckets.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.buckets.len() < MAX_BUCKETS => self.buckets.len(),
            None => return Err(EditError::Full),
        };
        let id = -1 - slot as i32;
        let bucket = make_bucket(id, name, type_id, BucketAlg::Straw2, 0, vec![], vec![], 0)?;
        let before = self.clone();
        if slot == self.buckets.len() {
            self.buckets.push(None);
        }
        self.buckets[slot] = Some(bucket);
        if let Some(p) = parent
            && let Err(e) = self.link_item(id, 0, p)
        {
            *self = before;
            return Err(e);
        }
        Ok(id)
    }

    /// Links `item` (a device or bucket) into bucket `parent` with `weight`
    /// (for a bucket, its current total is used when `weight` is 0).
    pub fn link_item(&mut self, item: i32, weight: Weight, parent: i32) -> Result<(), EditError> {
        let Some(p) = self.bucket(parent) else {
            return Err(EditError::NoSuchItem(parent));
        };
        if p.items.contains(&item) {
            return Err(EditError::AlreadyLinked { item, parent });
        }
        let weight = if item < 0 {
            let child = self.bucket(item).ok_or(EditError::NoSuchItem(item))?;
            if item == parent || self.is_ancestor(item, parent) {
                return Err(EditError::Cycle { item, parent });
            }
            if weight == 0 { child.weight } else { weight }
        } else {
            if self.device(item).is_none() {
                return Err(EditError::NoSuchItem(item));
            }
            weight
        };
        self.transact(|m| {
            m.rebuild(parent, |items, weights| {
                items.push(item);
                weights.push(weight);
            })?;
            m.propagate(parent)
        })
    }

    /// Removes `item` from every bucket holding it; a device is also
    /// removed from the device list, a bucket must be empty.
    pub fn remove_item(&mut self, item: i32) -> Result<(), EditError> {
        if item < 0 {
            let b = self.bucket(item).ok_or(EditError::NoSuchItem(item))?;
            if !b.items.is_empty() {
                return Err(EditError::NotEmpty(item));
            }
        } else if self.device(item).is_none() && self.parents(item).is_empty() {
            return Err(EditError::NoSuchItem(item));
        }
        self.transact(|m| {
            for parent in m.parents(item) {
                m.rebuild(parent, |items, weights| {
                    if let Some(pos) = items.iter().position(|&i| i == item) {
                        items.remove(pos);
                        weights.remove(pos);
                    }
                })?;
                m.propagate(parent)?;
            }
            if item < 0 {
                if let Some(slot) = m.buckets.get_mut((-1 - item) as usize) {
                    *slot = None;
                }
                while matches!(m.buckets.last(), Some(None)) {
                    m.buckets.pop();
                }
            } else {
                m.devices.retain(|d| d.id != item);
            }
            Ok(())
        })
    }

    /// Moves `item` (a device or bucket) from wherever it is linked to
    /// bucket `parent`, keeping its weight (Ceph's `osd crush move`).
    pub fn move_item(&mut self, item: i32, parent: i32) -> Result<(), EditError> {
        if self.bucket(parent).is_none() {
            return Err(EditError::NoSuchItem(parent));
        }
        let old_parents = self.parents(item);
        if old_parents == [parent] {
            return Ok(());
        }
        let weight = if item < 0 {
            self.bucket(item).ok_or(EditError::NoSuchItem(item))?.weight
        } else {
            if self.device(item).is_none() {
                return Err(EditError::NoSuchItem(item));
            }
            old_parents
                .first()
                .and_then(|&p| self.bucket(p))
                .and_then(|b| {
                    b.items
                        .iter()
                        .position(|&i| i == item)
                        .map(|pos| b.item_weights[pos])
                })
                .unwrap_or(0)
        };
        if item < 0 && (item == parent || self.is_ancestor(item, parent)) {
            return Err(EditError::Cycle { item, parent });
        }
        self.transact(|m| {
            for p in old_parents {
                m.rebuild(p, |items, weights| {
                    if let Some(pos) = items.iter().position(|&i| i == item) {
                        items.remove(pos);
                        weights.remove(pos);
                    }
                })?;
                m.propagate(p)?;
            }
            m.rebuild(parent, |items, weights| {
                items.push(item);
                weights.push(weight);
            })?;
            m.propagate(parent)
        })
    }

    /// Sets the weight of `item` in every bucket holding it.
    pub fn set_item_weight(&mut self, item: i32, weight: Weight) -> Result<(), EditError> {
        let parents = self.parents(item);
        if parents.is_empty() {
            return Err(EditError::NoSuchItem(item));
        }
        self.transact(|m| {
            for parent in parents {
                m.rebuild(parent, |items, weights| {
                    for (i, w) in items.iter().zip(weights.iter_mut()) {
                        if *i == item {
                            *w = weight;
                        }
                    }
                })?;
                m.propagate(parent)?;
            }
            Ok(())
        })
    }

    /// The id of a named device or bucket.
    pub fn item_id(&self, name: &str) -> Option<i32> {
        self.devices
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.id)
            .or_else(|| self.bucket_by_name(name).map(|b| b.id))
    }

    /// Whether `ancestor` is above `item` in the hierarchy.
    fn is_ancestor(&self, ancestor: i32, item: i32) -> bool {
        let mut stack = self.parents(item);
        let mut seen = std::collections::BTreeSet::new();
        while let Some(p) = stack.pop() {
            if p == ancestor {
                return true;
            }
            if seen.insert(p) {
                stack.extend(self.parents(p));
            }
        }
        false
    }

    /// Runs `edit` and restores the map if it fails; rebuilds shadow trees
    /// after a successful edit.
    fn transact(
        &mut self,
        edit: impl FnOnce(&mut CrushMap) -> Result<(), EditError>,
    ) -> Result<(), EditError> {
        let before = self.clone();
        let result = edit(self).and_then(|()| build_shadow_trees(self).map_err(EditError::from));
        if result.is_err() {
            *self = before;
        }
        result
    }

    /// Rebuilds bucket `id` after `change` edits its items and weights.
    fn rebuild(
        &mut self,
        id: i32,
        change: impl FnOnce(&mut Vec<i32>, &mut Vec<Weight>),
    ) -> Result<(), EditError> {
        let slot = (-1 - id) as usize;
        let Some(Some(old)) = self.buckets.get(slot) else {
            return Err(EditError::NoSuchItem(id));
        };
        let (mut items, mut weights) = (old.items.clone(), old.item_weights.clone());
        change(&mut items, &mut weights);
        let mut new = make_bucket(
            id,
            &old.name,
            old.type_id,
            old.alg,
            old.hash,
            items,
            weights,
            self.tunables.straw_calc_version,
        )?;
        new.class_ids = old.class_ids.clone();
        new.shadow_of = old.shadow_of.clone();
        self.buckets[slot] = Some(new);
        Ok(())
    }

    /// After bucket `id` changed total, sets its entry in every parent to
    /// the new total, recursively up to the roots.
    fn propagate(&mut self, id: i32) -> Result<(), EditError> {
        let mut todo = vec![id];
        let mut steps = 0;
        while let Some(child) = todo.pop() {
            steps += 1;
            if steps > self.buckets.len() * self.buckets.len() + 1 {
                break; // a cyclic map; never loop forever
            }
            let total = self.bucket(child).map_or(0, |b: &Bucket| b.weight);
            for parent in self.parents(child) {
                self.rebuild(parent, |items, weights| {
                    for (i, w) in items.iter().zip(weights.iter_mut()) {
                        if *i == child {
                            *w = total;
                        }
                    }
                })?;
                todo.push(parent);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::EditError;
    use crate::model::{BucketType, CrushMap, Tunables};

    fn small() -> CrushMap {
        let mut m = CrushMap::new(Tunables::jewel());
        m.types = vec![
            BucketType {
                id: 0,
                name: "osd".into(),
            },
            BucketType {
                id: 1,
                name: "host".into(),
            },
            BucketType {
                id: 2,
                name: "root".into(),
            },
        ];
        let root = m.add_bucket("default", 2, None).unwrap();
        for h in 0..2 {
            let host = m.add_bucket(&format!("h{h}"), 1, Some(root)).unwrap();
            for o in 0..2 {
                let id = h * 2 + o;
                m.add_device(id, &format!("osd.{id}"), None).unwrap();
                m.link_item(id, 0x10000, host).unwrap();
            }
        }
        m
    }

    #[test]
    fn weights_propagate_to_the_root() {
        let mut m = small();
        let root = m.bucket_by_name("default").unwrap().id;
        assert_eq!(m.bucket(root).unwrap().weight, 4 * 0x10000);
        m.set_item_weight(3, 0x30000).unwrap();
        assert_eq!(m.bucket_by_name("h1").unwrap().weight, 4 * 0x10000);
        assert_eq!(m.bucket(root).unwrap().weight, 6 * 0x10000);
        m.remove_item(0).unwrap();
        assert_eq!(m.bucket(root).unwrap().weight, 5 * 0x10000);
        assert!(m.device(0).is_none());
        assert_eq!(m.roots(), vec![root]);
    }

    #[test]
    fn refused_edits_leave_the_map_unchanged() {
        let mut m = small();
        let before = m.clone();
        let root = m.bucket_by_name("default").unwrap().id;
        let h0 = m.bucket_by_name("h0").unwrap().id;
        assert!(m.link_item(root, 0, h0).is_err(), "a cycle");
        assert!(m.remove_item(h0).is_err(), "not empty");
        assert!(m.add_device(1, "osd.1", None).is_err(), "duplicate");
        assert!(m.link_item(7, 0x10000, h0).is_err(), "no such device");
        assert_eq!(m, before);
    }

    #[test]
    fn moves_keep_weights_and_refuse_cycles() {
        let mut m = small();
        let root = m.bucket_by_name("default").unwrap().id;
        let (h0, h1) = (
            m.bucket_by_name("h0").unwrap().id,
            m.bucket_by_name("h1").unwrap().id,
        );
        m.move_item(1, h1).unwrap();
        assert_eq!(m.parents(1), vec![h1]);
        assert_eq!(m.bucket(h0).unwrap().weight, 0x10000);
        assert_eq!(m.bucket(h1).unwrap().weight, 3 * 0x10000);
        assert_eq!(m.bucket(root).unwrap().weight, 4 * 0x10000);
        // A bucket moves with its whole weight; moving under itself is refused.
        let rack = m.add_bucket("r1", 1, Some(root)).unwrap();
        m.move_item(h1, rack).unwrap();
        assert_eq!(m.bucket(rack).unwrap().weight, 3 * 0x10000);
        assert_eq!(m.bucket(root).unwrap().weight, 4 * 0x10000);
        let before = m.clone();
        assert!(matches!(
            m.move_item(rack, h1),
            Err(EditError::Cycle { .. })
        ));
        assert!(m.move_item(1, 99).is_err());
        assert_eq!(m, before);
    }
}
