//! The data device: a pre-allocated file or a block device, accessed in
//! whole blocks with direct IO.

mod file;
mod uring;

use std::io;

pub use file::FileDevice;
pub use shoal_buf::AlignedBuf;
pub use uring::{UringDevice, available as uring_available};

/// Allocation and IO unit, and the alignment direct IO needs.
pub const BLOCK: u64 = shoal_buf::BLOCK as u64;

/// Rounds `n` up to a whole number of blocks.
pub fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// What the store needs from a data device. Offsets and lengths are block
/// multiples; buffers are block aligned.
pub trait BlockDevice: Send + Sync {
    /// Usable bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`.
    fn read_at(&self, buf: &mut AlignedBuf, offset: u64) -> io::Result<()>;
    /// Writes every buffer at its offset, several in flight; returns when
    /// all are written (not yet durable: see [`BlockDevice::sync`]).
    fn write_all(&self, writes: &[(u64, AlignedBuf)]) -> io::Result<()>;
    /// Fills every buffer from its offset, several reads in flight.
    fn read_many(&self, reads: &mut [(u64, AlignedBuf)]) -> io::Result<()> {
        for (off, buf) in reads.iter_mut() {
            self.read_at(buf, *off)?;
        }
        Ok(())
    }
    /// Makes every completed write durable.
    fn sync(&self) -> io::Result<()>;
    /// A short name for logs (`thread-pool`, `io_uring`).
    fn kind(&self) -> &'static str;
}
