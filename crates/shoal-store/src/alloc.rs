//! Free space on the data device: a map of free extents, rebuilt at open
//! from the metadata (so a crash can neither leak nor double-allocate).
//! Allocation is next-fit, so the chunks of one write land next to each
//! other and go to the device as one large write.

use std::collections::BTreeMap;

/// Free extents of the data device (byte offsets, block multiples).
#[derive(Debug, Clone)]
pub struct Allocator {
    free: BTreeMap<u64, u64>,
    free_bytes: u64,
    size: u64,
    cursor: u64,
}

impl Allocator {
    /// A device of `size` bytes, all free.
    pub fn new(size: u64) -> Self {
        let mut free = BTreeMap::new();
        if size > 0 {
            free.insert(0, size);
        }
        Allocator {
            free,
            free_bytes: size,
            size,
            cursor: 0,
        }
    }

    /// Free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    /// Device size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Marks `[start, start + len)` used; parts already used are left as
    /// they are (shared extents are marked once per reference).
    pub fn mark_used(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len).min(self.size);
        let mut pos = start;
        while pos < end {
            // The free extent containing pos, or the next one after it.
            let hit = self
                .free
                .range(..=pos)
                .next_back()
                .filter(|(s, l)| *s + *l > pos)
                .map(|(s, l)| (*s, *l))
                .or_else(|| self.free.range(pos..end).next().map(|(s, l)| (*s, *l)));
            let Some((fs, fl)) = hit else { break };
            let fe = fs + fl;
            let cut_start = pos.max(fs);
            let cut_end = end.min(fe);
            if cut_start >= cut_end {
                break;
            }
            self.free.remove(&fs);
            if fs < cut_start {
                self.free.insert(fs, cut_start - fs);
            }
            if cut_end < fe {
                self.free.insert(cut_end, fe - cut_end);
            }
            self.free_bytes -= cut_end - cut_start;
            pos = cut_end;
        }
    }

    /// Takes `len` contiguous bytes, next-fit from the last allocation.
    pub fn allocate(&mut self, len: u64) -> Option<u64> {
        if len == 0 || len > self.free_bytes {
            return None;
        }
        let after = self
            .free
            .range(self.cursor..)
            .find(|(_, l)| **l >= len)
            .map(|(s, _)| *s);
        let start = after.or_else(|| {
            self.free
                .range(..self.cursor)
                .find(|(_, l)| **l >= len)
                .map(|(s, _)| *s)
        })?;
        self.mark_used(start, len);
        self.cursor = start + len;
        Some(start)
    }

    /// Returns `[start, start + len)` to the free space, merging neighbours.
    pub fn release(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (mut s, mut l) = (start, len);
        if let Some((&ps, &pl)) = self.free.range(..s).next_back()
            && ps + pl == s
        {
            self.free.remove(&ps);
            s = ps;
            l += pl;
        }
        if let Some(&nl) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            l += nl;
        }
        self.free.insert(s, l);
        self.free_bytes += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn allocates_next_fit_and_merges_on_release() {
        let mut a = Allocator::new(100);
        assert_eq!(a.allocate(10), Some(0));
        assert_eq!(a.allocate(10), Some(10));
        a.release(0, 10);
        assert_eq!(
            a.allocate(5),
            Some(20),
            "next-fit continues after the cursor"
        );
        a.release(10, 10);
        a.release(20, 5);
        assert_eq!(a.free_bytes(), 100);
        assert_eq!(a.free.len(), 1, "all merged back into one extent");
        assert_eq!(a.allocate(101), None);
    }

    proptest! {
        /// Allocations never overlap and free space is accounted exactly.
        #[test]
        fn never_double_allocates(ops in proptest::collection::vec((1u64..20, any::<bool>()), 1..200)) {
            let mut a = Allocator::new(256);
            let mut held: Vec<(u64, u64)> = Vec::new();
            for (len, release) in ops {
                if release && !held.is_empty() {
                    let (s, l) = held.remove(len as usize % held.len());
                    a.release(s, l);
                } else if let Some(s) = a.allocate(len) {
                    for &(hs, hl) in &held {
                        prop_assert!(s + len <= hs || hs + hl <= s, "overlap");
                    }
                    prop_assert!(s + len <= 256);
                    held.push((s, len));
                }
                let used: u64 = held.iter().map(|h| h.1).sum();
                prop_assert_eq!(a.free_bytes(), 256 - used);
            }
        }
    }
}
