//! Backfill's comparison of two copies of a PG, sans IO: given the head's
//! objects and the target's objects over the same name range (both by
//! name, with versions), the objects to push — those the target lacks or
//! holds at another version, and those only the target has (a push of an
//! absent object removes it).

use std::cmp::Ordering;

use shoal_proto::osd::ObjVersion;

/// Objects to push so `target` matches `head` over the range both lists
/// cover, by name.
pub fn differences(head: &[(String, ObjVersion)], target: &[(String, ObjVersion)]) -> Vec<String> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < head.len() || j < target.len() {
        let order = match (head.get(i), target.get(j)) {
            (Some(h), Some(t)) => h.0.cmp(&t.0),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                out.push(head[i].0.clone());
                i += 1;
            }
            Ordering::Greater => {
                out.push(target[j].0.clone());
                j += 1;
            }
            Ordering::Equal => {
                if head[i].1 != target[j].1 {
                    out.push(head[i].0.clone());
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Whether `name` lies in the range after `after` up to `end` (`None`:
/// unbounded on that side).
pub fn in_range(name: &str, after: Option<&str>, end: Option<&str>) -> bool {
    after.is_none_or(|a| name > a) && end.is_none_or(|e| name <= e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn v(seq: u64) -> ObjVersion {
        ObjVersion { epoch: 1, seq }
    }

    fn list(items: &[(&str, u64)]) -> Vec<(String, ObjVersion)> {
        items.iter().map(|(n, s)| (n.to_string(), v(*s))).collect()
    }

    #[test]
    fn missing_stale_and_extra_objects_are_pushed() {
        let head = list(&[("a", 1), ("b", 2), ("d", 4)]);
        let target = list(&[("a", 1), ("b", 1), ("c", 3)]);
        assert_eq!(differences(&head, &target), ["b", "c", "d"]);
        assert!(differences(&head, &head).is_empty());
        assert_eq!(differences(&[], &target), ["a", "b", "c"]);
    }

    #[test]
    fn ranges_are_open_below_and_closed_above() {
        assert!(in_range("b", Some("a"), Some("b")));
        assert!(!in_range("a", Some("a"), None));
        assert!(in_range("z", None, None));
        assert!(!in_range("c", None, Some("b")));
    }

    proptest! {
        /// Applying the pushes (copy the head's entry, or remove when the
        /// head has none) makes the target equal to the head.
        #[test]
        fn pushing_the_differences_makes_the_copies_equal(
            head in proptest::collection::btree_map("[a-e]{1,2}", 0u64..3, 0..12),
            target in proptest::collection::btree_map("[a-e]{1,2}", 0u64..3, 0..12),
        ) {
            let h: Vec<_> = head.iter().map(|(n, s)| (n.clone(), v(*s))).collect();
            let t: Vec<_> = target.iter().map(|(n, s)| (n.clone(), v(*s))).collect();
            let mut fixed: BTreeMap<String, ObjVersion> = t.iter().cloned().collect();
            for name in differences(&h, &t) {
                match head.get(&name) {
                    Some(s) => { fixed.insert(name, v(*s)); }
                    None => { fixed.remove(&name); }
                }
            }
            let want: BTreeMap<String, ObjVersion> = h.into_iter().collect();
            prop_assert_eq!(fixed, want);
        }
    }
}
