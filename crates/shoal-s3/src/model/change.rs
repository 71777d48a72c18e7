//! [`Change`]: the guarded omap op one index change becomes, built up by
//! the planners of [`super::versions`] and their callers.

use std::collections::BTreeMap;

use shoal_client::{WriteOp, XattrCmp};

use super::index::doomed_key;
use super::record::ObjectRecord;

/// Guards and the final state of every omap key one op changes. A key set
/// and later removed (or the other way round) ends in its last state, so
/// planners can compose steps without caring about op order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Change {
    guards: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Change {
    /// The op applies only if `key` holds `value` (none: is absent).
    pub fn guard(&mut self, key: Vec<u8>, value: Option<&[u8]>) {
        self.guards.insert(key, value.map(<[u8]>::to_vec));
    }

    /// The op leaves `key` holding `value`.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// The op leaves `key` absent.
    pub fn remove(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// The data of `record` becomes garbage, due at `due_ms`.
    pub fn doom(&mut self, record: &ObjectRecord, due_ms: u64) {
        for data in record.data_names() {
            self.set(doomed_key(due_ms, data), Vec::new());
        }
    }

    /// The value `key` ends with, if the op writes it (`Some(None)`: it
    /// removes it).
    pub fn written(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes.get(key).map(Option::as_deref)
    }

    /// Whether the op would change nothing (it need not be sent: what was
    /// read already answers).
    pub fn is_noop(&self) -> bool {
        self.writes.is_empty()
    }

    /// The op: every guard, then the removals, then the sets.
    pub fn into_op(self) -> WriteOp {
        let mut op = WriteOp::new();
        for (key, value) in self.guards {
            op = op.cmp_omap(key, value.map_or(XattrCmp::Absent, XattrCmp::Eq));
        }
        let (sets, removes): (Vec<_>, Vec<_>) =
            self.writes.into_iter().partition(|(_, v)| v.is_some());
        if !removes.is_empty() {
            op = op.omap_remove(removes.into_iter().map(|(k, _)| k).collect());
        }
        let sets: Vec<(Vec<u8>, Vec<u8>)> = sets
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        if !sets.is_empty() {
            op = op.omap_set(sets);
        }
        op
    }
}

#[cfg(test)]
impl Change {
    /// Applies the change to an in-memory omap the way an OSD does: all
    /// or nothing; `false` when a guard does not hold.
    pub fn apply_to(&self, omap: &mut BTreeMap<Vec<u8>, Vec<u8>>) -> bool {
        if self.guards.iter().any(|(k, v)| omap.get(k) != v.as_ref()) {
            return false;
        }
        for (k, v) in &self.writes {
            match v {
                Some(v) => omap.insert(k.clone(), v.clone()),
                None => omap.remove(k),
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_write_of_a_key_wins() {
        let mut c = Change::default();
        c.set(b"a".to_vec(), b"1".to_vec());
        c.remove(b"a".to_vec());
        c.remove(b"b".to_vec());
        c.set(b"b".to_vec(), b"2".to_vec());
        assert_eq!(c.written(b"a"), Some(None));
        assert_eq!(c.written(b"b"), Some(Some(&b"2"[..])));
        assert_eq!(c.written(b"c"), None);
    }

    #[test]
    fn dooming_names_every_segment() {
        let mut r = ObjectRecord::sample("e", 3, 0);
        r.segments.push(r.segments[0].clone());
        r.segments[1].data = "d2".into();
        let mut c = Change::default();
        c.doom(&r, 7);
        assert_eq!(c.written(&doomed_key(7, "d")), Some(Some(&b""[..])));
        assert_eq!(c.written(&doomed_key(7, "d2")), Some(Some(&b""[..])));
    }
}
