//! [`OsdSet`]: a small fixed-capacity list of OSD ids, so mapping a PG does
//! not allocate.

use std::fmt;
use std::ops::Deref;

use shoal_crush::ITEM_NONE;

use crate::MAX_PG_SIZE;

/// Up to [`MAX_PG_SIZE`] OSD ids, in order; may hold [`ITEM_NONE`] holes
/// (erasure-coded pools). Dereferences to `[i32]`; prints like Ceph
/// (`[8,5,1]`, holes as `2147483647`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OsdSet {
    len: u8,
    osds: [i32; MAX_PG_SIZE],
}

impl OsdSet {
    /// The empty set.
    pub const fn new() -> Self {
        OsdSet {
            len: 0,
            osds: [0; MAX_PG_SIZE],
        }
    }

    /// A set holding the first [`MAX_PG_SIZE`] ids of `osds`.
    pub fn from_slice(osds: &[i32]) -> Self {
        let mut set = OsdSet::new();
        for &osd in osds.iter().take(MAX_PG_SIZE) {
            set.push(osd);
        }
        set
    }

    /// Appends an id; returns `false` (and drops it) when full.
    pub fn push(&mut self, osd: i32) -> bool {
        match self.osds.get_mut(self.len as usize) {
            Some(slot) => {
                *slot = osd;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Removes every id.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The ids as a slice.
    pub fn as_slice(&self) -> &[i32] {
        &self.osds[..self.len as usize]
    }

    /// The ids as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [i32] {
        &mut self.osds[..self.len as usize]
    }

    /// Keeps only the ids for which `keep` holds, preserving order.
    pub fn retain(&mut self, mut keep: impl FnMut(i32) -> bool) {
        let mut n = 0;
        for i in 0..self.len as usize {
            let osd = self.osds[i];
            if keep(osd) {
                self.osds[n] = osd;
                n += 1;
            }
        }
        self.len = n as u8;
    }

    /// The first id that is not [`ITEM_NONE`] (Ceph's `_pick_primary`).
    pub fn first_present(&self) -> Option<i32> {
        self.iter().copied().find(|&o| o != ITEM_NONE)
    }
}

impl Default for OsdSet {
    fn default() -> Self {
        OsdSet::new()
    }
}

impl Deref for OsdSet {
    type Target = [i32];

    fn deref(&self) -> &[i32] {
        self.as_slice()
    }
}

impl PartialEq<[i32]> for OsdSet {
    fn eq(&self, other: &[i32]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<i32>> for OsdSet {
    fn eq(&self, other: &Vec<i32>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for OsdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for OsdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, osd) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{osd}")?;
        }
        f.write_str("]")
    }
}

impl serde::Serialize for OsdSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let mut s = OsdSet::from_slice(&[3, ITEM_NONE, 5]);
        assert_eq!(s.to_string(), "[3,2147483647,5]");
        assert_eq!(s.first_present(), Some(3));
        s.retain(|o| o != 3);
        assert_eq!(s, vec![ITEM_NONE, 5]);
        assert_eq!(s.first_present(), Some(5));
        s.clear();
        assert_eq!(s.to_string(), "[]");
        assert_eq!(s.first_present(), None);
        let big: Vec<i32> = (0..100).collect();
        let full = OsdSet::from_slice(&big);
        assert_eq!(full.len(), MAX_PG_SIZE);
        let mut full2 = full;
        assert!(!full2.push(1));
    }
}
