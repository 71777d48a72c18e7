//! Recently written small extents, kept in memory so that the next
//! read-modify-write of the same chunk (a block device image overwritten
//! 4 KiB at a time) does not read it back from the device.
//!
//! Entries are keyed by device offset and never invalidated: a lookup
//! returns bytes only when they match the chunk's checksum, so an extent
//! whose space was freed and reused simply stops matching.

use std::collections::{BTreeMap, VecDeque};

use crate::chunkio::verify;
use crate::device::AlignedBuf;
use crate::meta::Chunk;

/// Extents larger than this are not kept (whole-object writes would only
/// push out the small ones).
pub const MAX_EXTENT: usize = 128 << 10;

/// A FIFO of recently written extents under a byte budget.
pub struct RecentWrites {
    map: BTreeMap<u64, AlignedBuf>,
    order: VecDeque<u64>,
    bytes: usize,
    budget: usize,
}

impl RecentWrites {
    /// An empty cache holding at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        RecentWrites {
            map: BTreeMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    /// Remembers a copy of the extent written at `start` (if small enough).
    pub fn remember(&mut self, start: u64, buf: &AlignedBuf) {
        if buf.len() > MAX_EXTENT || self.budget == 0 {
            return;
        }
        let mut copy = AlignedBuf::zeroed(buf.len());
        copy.as_mut_slice().copy_from_slice(buf.as_slice());
        self.insert(start, copy);
    }

    /// Remembers the extent written at `start` (if small enough).
    pub fn insert(&mut self, start: u64, buf: AlignedBuf) {
        if buf.len() > MAX_EXTENT || self.budget == 0 {
            return;
        }
        self.bytes += buf.len();
        if let Some(old) = self.map.insert(start, buf) {
            self.bytes -= old.len();
        } else {
            self.order.push_back(start);
        }
        while self.bytes > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.map.remove(&oldest) {
                self.bytes -= b.len();
            }
        }
    }

    /// The chunk's bytes if a remembered extent holds them and they match
    /// its checksum.
    pub fn chunk(&self, c: &Chunk) -> Option<&[u8]> {
        let (start, buf) = self.map.range(..=c.phys).next_back()?;
        let off = usize::try_from(c.phys - start).ok()?;
        let data = buf.as_slice().get(off..off.checked_add(c.len as usize)?)?;
        verify(c, data).then_some(data)
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(fill: u8, len: usize) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(len);
        b.as_mut_slice().fill(fill);
        b
    }

    fn chunk(phys: u64, len: u32, fill: u8) -> Chunk {
        Chunk {
            index: 0,
            phys,
            len,
            csum: *blake3::hash(&vec![fill; len as usize]).as_bytes(),
        }
    }

    #[test]
    fn returns_only_matching_bytes_and_respects_the_budget() {
        let mut r = RecentWrites::new(3 * 65536);
        r.insert(0, extent(1, 65536));
        r.insert(65536, extent(2, 2 * 65536));
        assert_eq!(r.chunk(&chunk(0, 65536, 1)).map(|d| d[0]), Some(1));
        assert_eq!(r.chunk(&chunk(2 * 65536, 4096, 2)).map(|d| d[0]), Some(2));
        // Reused space: the checksum no longer matches.
        assert!(r.chunk(&chunk(0, 65536, 9)).is_none());
        // Past the end of the extent.
        assert!(r.chunk(&chunk(3 * 65536 - 4096, 8192, 2)).is_none());
        r.insert(10 << 20, extent(3, 65536));
        assert_eq!(r.bytes(), 3 * 65536, "the oldest extent was evicted");
        assert!(r.chunk(&chunk(0, 65536, 1)).is_none());
        r.insert(20 << 20, extent(4, MAX_EXTENT + 4096));
        assert_eq!(r.bytes(), 3 * 65536, "large extents are not kept");
    }
}
