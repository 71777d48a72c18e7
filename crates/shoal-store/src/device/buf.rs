//! Block-aligned buffers for direct IO, without unsafe code: the vector is
//! over-allocated by one block and the aligned window inside it is used.

use super::BLOCK;

/// A zero-initialised buffer whose start is aligned to [`BLOCK`].
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes (callers keep `len` a block multiple for direct IO).
    pub fn zeroed(len: usize) -> Self {
        let raw = vec![0u8; len + BLOCK as usize];
        let start = raw.as_ptr().align_offset(BLOCK as usize);
        AlignedBuf { raw, start, len }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
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

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned() {
        for len in [0, 1, 4096, 65536, 4 << 20] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.as_slice().as_ptr() as usize % BLOCK as usize, 0);
            assert_eq!(b.len(), len);
            b.as_mut_slice().fill(7);
            assert!(b.as_slice().iter().all(|&x| x == 7));
        }
    }
}
