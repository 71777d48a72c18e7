//! Which chain members still lack which objects after peering, sans IO:
//! the head's book of log-based recovery while the PG is active.
//!
//! Peering leaves the head with every object (it pulls what it lacks
//! first); the other members go active with a *missing set* and must not
//! serve those objects until the head pushes them. Recovery takes objects
//! from this book one at a time ([`Missing::start`]), and a client write
//! to a missing object recovers it first ([`Missing::take`]) so the write
//! never reaches a member holding a stale or absent copy.

use std::collections::{BTreeMap, BTreeSet};

/// The objects each member lacks, and which are being recovered now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    /// Object -> members lacking it (never empty).
    lacking: BTreeMap<String, BTreeSet<i32>>,
    /// Objects taken for recovery and not yet finished.
    busy: BTreeSet<String>,
}

impl Missing {
    /// The book for members' missing sets (`member -> objects`).
    pub fn new<'a>(sets: impl IntoIterator<Item = (i32, &'a BTreeSet<String>)>) -> Self {
        let mut lacking: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for (member, objects) in sets {
            for o in objects {
                lacking.entry(o.clone()).or_default().insert(member);
            }
        }
        Missing {
            lacking,
            busy: BTreeSet::new(),
        }
    }

    /// Object copies still to recover (one per member lacking an object).
    pub fn copies(&self) -> u64 {
        self.lacking.values().map(|m| m.len() as u64).sum()
    }

    /// Whether every member has every object.
    pub fn is_empty(&self) -> bool {
        self.lacking.is_empty()
    }

    /// Whether `object` is lacking somewhere.
    pub fn is_missing(&self, object: &str) -> bool {
        self.lacking.contains_key(object)
    }

    /// The next object for background recovery (by name, skipping those
    /// being recovered), marked busy, with the members that lack it.
    pub fn start(&mut self) -> Option<(String, BTreeSet<i32>)> {
        self.start_where(|_| true)
    }

    /// Like [`Missing::start`], among the objects `ok` accepts (e.g. those
    /// no write holds now).
    pub fn start_where(&mut self, ok: impl Fn(&str) -> bool) -> Option<(String, BTreeSet<i32>)> {
        let (name, members) = self
            .lacking
            .iter()
            .find(|(name, _)| !self.busy.contains(*name) && ok(name))?;
        let out = (name.clone(), members.clone());
        self.busy.insert(out.0.clone());
        Some(out)
    }

    /// `object`, for recovery before a client op on it: the members that
    /// lack it (empty if none do), marked busy. The caller holds the
    /// object's lock, so background recovery is not pushing it now.
    pub fn take(&mut self, object: &str) -> BTreeSet<i32> {
        match self.lacking.get(object) {
            Some(m) => {
                self.busy.insert(object.to_string());
                m.clone()
            }
            None => BTreeSet::new(),
        }
    }

    /// `member` now has `object`.
    pub fn recovered(&mut self, object: &str, member: i32) {
        if let Some(m) = self.lacking.get_mut(object) {
            m.remove(&member);
            if m.is_empty() {
                self.lacking.remove(object);
                self.busy.remove(object);
            }
        }
    }

    /// Recovery of `object` stopped (done or failed): it may be taken again.
    pub fn release(&mut self, object: &str) {
        self.busy.remove(object);
    }

    /// Every object some member lacks, by name.
    pub fn objects(&self) -> impl Iterator<Item = (&String, &BTreeSet<i32>)> {
        self.lacking.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn copies_count_each_member_that_lacks_an_object() {
        let (a, b) = (set(&["x", "y"]), set(&["y"]));
        let m = Missing::new([(1, &a), (2, &b)]);
        assert_eq!(m.copies(), 3);
        assert!(m.is_missing("y") && !m.is_missing("z"));
    }

    #[test]
    fn background_recovery_skips_busy_objects_and_finishes_them() {
        let (a, b) = (set(&["x", "y"]), set(&["y"]));
        let mut m = Missing::new([(1, &a), (2, &b)]);
        let (first, who) = m.start().unwrap();
        assert_eq!((first.as_str(), who), ("x", [1].into()));
        let (second, who) = m.start().unwrap();
        assert_eq!((second.as_str(), who), ("y", [1, 2].into()));
        assert_eq!(m.start(), None, "both are busy");
        m.recovered("x", 1);
        m.recovered("y", 2);
        m.release("y");
        assert_eq!(m.copies(), 1);
        let (again, who) = m.start().unwrap();
        assert_eq!((again.as_str(), who), ("y", [1].into()));
        m.recovered("y", 1);
        assert!(m.is_empty());
        assert_eq!(m.start(), None);
    }

    #[test]
    fn a_client_op_takes_an_object_out_of_turn() {
        let a = set(&["x", "y"]);
        let mut m = Missing::new([(1, &a)]);
        assert_eq!(m.take("y"), [1].into());
        assert_eq!(m.take("z"), BTreeSet::new());
        assert_eq!(m.start().map(|s| s.0), Some("x".into()));
        assert_eq!(m.start(), None);
    }
}
