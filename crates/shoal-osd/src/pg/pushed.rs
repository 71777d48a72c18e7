//! The set of objects pushed to a backfilled copy during one peering, with
//! a digest both ends compute the same way whatever the order: the head
//! sends its digest with the activation, and a member whose own set differs
//! (it restarted and forgot pushes, or a push of an earlier attempt came
//! late) refuses instead of dropping objects it was sent.

use std::collections::HashSet;

/// Names pushed, and their digest.
#[derive(Debug, Default, Clone)]
pub(super) struct Pushed {
    names: HashSet<String>,
    digest: [u8; 32],
}

impl Pushed {
    /// The set of `names` (repeats count once).
    pub(super) fn of<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        let mut set = Self::default();
        for n in names {
            set.insert(n);
        }
        set
    }

    pub(super) fn insert(&mut self, name: &str) {
        if self.names.insert(name.to_string()) {
            let h = blake3::hash(name.as_bytes());
            for (d, b) in self.digest.iter_mut().zip(h.as_bytes()) {
                *d ^= b;
            }
        }
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub(super) fn digest(&self) -> [u8; 32] {
        self.digest
    }

    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::Pushed;

    #[test]
    fn the_digest_names_the_set_whatever_the_order() {
        let names = ["a".to_string(), "b".into(), "c".into()];
        let mut one = Pushed::default();
        for n in names.iter().rev() {
            one.insert(n);
        }
        one.insert("a");
        assert_eq!(one.digest(), Pushed::of(&names).digest());
        assert_ne!(one.digest(), Pushed::of(&names[..2]).digest());
        assert_ne!(Pushed::of(&names[..1]).digest(), Pushed::default().digest());
    }
}
