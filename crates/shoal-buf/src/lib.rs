//! Block-aligned buffers for direct IO, without unsafe code: the vector is
//! over-allocated by one block and the aligned window inside it is used.
//!
//! The network and the store share them so object data crosses a replica
//! with one user-space copy: the frame decoder reassembles a large payload
//! straight into an aligned buffer ([`AlignedBuf::into_bytes`]), and the
//! store writes that same memory to disk ([`AlignedBuf::from_bytes`]).
//!
//! Large buffers are recycled through a small pool: a fresh multi-megabyte
//! allocation is a fresh mapping, and faulting in and clearing its pages
//! cost more than the copy into it.

use std::sync::Mutex;

use bytes::Bytes;

/// The alignment (and direct IO unit) every buffer starts on.
pub const BLOCK: usize = 4096;

/// Buffers at least this large go back to the pool when dropped.
const POOLED_MIN: usize = 1 << 20;
/// Most bytes the pool keeps.
const POOL_BYTES: usize = 64 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty vector with room for `cap` bytes, from the pool when it has
/// one that is not much larger.
fn take(cap: usize) -> Vec<u8> {
    let mut v = take_used(cap);
    v.clear();
    v
}

/// A vector with room for `cap` bytes; one from the pool keeps its old
/// contents (callers that overwrite them all need not clear them).
fn take_used(cap: usize) -> Vec<u8> {
    if cap >= POOLED_MIN {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = pool
            .iter()
            .position(|v| v.capacity() >= cap && v.capacity() <= cap * 2)
        {
            return pool.swap_remove(i);
        }
    }
    Vec::with_capacity(cap)
}

/// A buffer whose start is aligned to [`BLOCK`].
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
    /// Set instead of `raw` when the bytes are shared with others (see
    /// [`AlignedBuf::from_bytes`]).
    shared: Option<Bytes>,
}

impl AlignedBuf {
    /// `len` zero bytes (callers keep `len` a block multiple for direct IO).
    pub fn zeroed(len: usize) -> Self {
        Self::filled(len, |_| {})
    }

    /// `len` bytes: what `fill` appends to the vector it is given (the
    /// aligned start), then zeros up to `len`. Nothing is written twice.
    pub fn filled(len: usize, fill: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut raw = take(len + BLOCK);
        let start = raw.as_ptr().align_offset(BLOCK);
        let base = raw.as_ptr();
        raw.resize(start, 0);
        fill(&mut raw);
        if raw.as_ptr() != base || raw.len() > start + len {
            // `fill` appended more than `len`: the vector moved or is too
            // long; lay it out again.
            let data = raw.split_off(start);
            return Self::copied(len, &data[..len.min(data.len())]);
        }
        raw.resize(start + len, 0);
        Self::owned(raw, start, len)
    }

    /// `len` bytes of unspecified contents, for a device read that
    /// overwrites them all: a recycled buffer is not zeroed first (only
    /// what it lacks is). Old bytes left by a short read never pass as
    /// data: every chunk read is verified against its checksum.
    pub fn for_read(len: usize) -> Self {
        let mut raw = take_used(len + BLOCK);
        let start = raw.as_ptr().align_offset(BLOCK);
        raw.truncate(start + len);
        raw.resize(start + len, 0);
        Self::owned(raw, start, len)
    }

    /// The buffer whose bytes are `raw[start..start + len]`.
    fn owned(raw: Vec<u8>, start: usize, len: usize) -> Self {
        AlignedBuf {
            raw,
            start,
            len,
            shared: None,
        }
    }

    /// `len` bytes starting with `data` (at most `len` bytes), then zeros.
    pub fn copied(len: usize, data: &[u8]) -> Self {
        let mut raw = take(len + BLOCK);
        let start = raw.as_ptr().align_offset(BLOCK);
        raw.resize(start, 0);
        raw.extend_from_slice(data);
        raw.resize(start + len, 0);
        Self::owned(raw, start, len)
    }

    /// Wraps `bytes` without copying when they start on a [`BLOCK`]
    /// boundary; gives them back otherwise.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, Bytes> {
        if bytes.as_ptr() as usize % BLOCK != 0 {
            return Err(bytes);
        }
        Ok(AlignedBuf {
            raw: Vec::new(),
            start: 0,
            len: bytes.len(),
            shared: Some(bytes),
        })
    }

    /// The buffer as [`Bytes`], without copying; the memory goes back to
    /// the pool once the last clone is dropped.
    pub fn into_bytes(mut self) -> Bytes {
        match self.shared.take() {
            Some(b) => b,
            None => Bytes::from_owner(self),
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.shared {
            Some(b) => b,
            None => &self.raw[self.start..self.start + self.len],
        }
    }

    /// The bytes, writable (shared bytes are copied first).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if let Some(b) = self.shared.take() {
            *self = Self::copied(b.len(), &b);
        }
        &mut self.raw[self.start..self.start + self.len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.raw.capacity() < POOLED_MIN {
            return;
        }
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = pool.iter().map(Vec::capacity).sum();
        if held + self.raw.capacity() <= POOL_BYTES {
            pool.push(std::mem::take(&mut self.raw));
        }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_without_copying() {
        let b = AlignedBuf::filled(8192, |v| v.extend_from_slice(&[4; 8192]));
        let ptr = b.as_slice().as_ptr();
        let bytes = b.into_bytes();
        assert_eq!(bytes.as_ptr(), ptr);
        let mut again = AlignedBuf::from_bytes(bytes.clone()).expect("aligned");
        assert_eq!(again.as_slice().as_ptr(), ptr);
        assert_eq!(again.len(), 8192);
        // Writing to shared bytes copies them: the other holder is unchanged.
        again.as_mut_slice()[0] = 9;
        assert_eq!(again.as_slice()[0], 9);
        assert_eq!(bytes[0], 4);
        assert_eq!(again.as_slice().as_ptr() as usize % BLOCK, 0);
        // Unaligned bytes are given back.
        let unaligned = bytes.slice(1..);
        assert!(AlignedBuf::from_bytes(unaligned).is_err());
    }

    #[test]
    fn buffers_are_aligned() {
        for len in [0, 1, 4096, 65536, 4 << 20] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.as_slice().as_ptr() as usize % BLOCK, 0);
            assert_eq!(b.len(), len);
            assert!(b.as_slice().iter().all(|&x| x == 0));
            b.as_mut_slice().fill(7);
            assert!(b.as_slice().iter().all(|&x| x == 7));
        }
        // Recycled buffers come back zeroed and aligned.
        for _ in 0..3 {
            let b = AlignedBuf::zeroed(4 << 20);
            assert_eq!(b.as_slice().as_ptr() as usize % BLOCK, 0);
            assert!(b.as_slice().iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn read_buffers_are_aligned_and_sized_even_when_recycled() {
        for len in [0, 4096, 2 << 20, 4 << 20, (4 << 20) + 8192, 3 << 20] {
            let mut b = AlignedBuf::for_read(len);
            assert_eq!(b.as_slice().as_ptr() as usize % BLOCK, 0);
            assert_eq!(b.len(), len);
            b.as_mut_slice().fill(3);
        }
    }

    #[test]
    fn filled_pads_and_survives_overfilling() {
        let b = AlignedBuf::filled(8192, |v| v.extend_from_slice(&[5; 5000]));
        assert_eq!(b.len(), 8192);
        assert!(b.as_slice()[..5000].iter().all(|&x| x == 5));
        assert!(b.as_slice()[5000..].iter().all(|&x| x == 0));
        let b = AlignedBuf::filled(4096, |v| v.extend_from_slice(&[9; 3 << 20]));
        assert_eq!(b.as_slice().as_ptr() as usize % BLOCK, 0);
        assert_eq!(b.as_slice(), &[9; 4096][..]);
    }
}
