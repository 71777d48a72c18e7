//! Deferred small writes (BlueStore's idea, on top of copy-on-write).
//!
//! A batch's small new extents are not written to the device and synced
//! before the batch commits: their bytes go into the batch's write-ahead
//! log record (`wal.rs`), so the batch costs one sync. A writer thread
//! with its own ring writes them to the device while the log is appended;
//! readers that race with it find the bytes in memory (`landing`). The
//! next checkpoint syncs the device before the log space is reused.
//!
//! A logged extent is always newly allocated space, never data in place,
//! so it can only go stale when (part of) it is freed and reused. Restoring
//! after a crash therefore writes only the chunks that the metadata still
//! places inside a logged extent *and* whose checksum the logged bytes
//! match.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, mpsc};

use redb::{ReadableTable, WriteTransaction};

use crate::chunkio::verify;
use crate::device::{AlignedBuf, BLOCK, BlockDevice, round_up};
use crate::error::{Result, StoreError};
use crate::meta::{OBJECTS, ObjectMeta};

/// Largest extent written through the log. Measured (docs/store.md): with
/// the deferred table this replaced, logging whole 64 KiB chunks was slower
/// than writing and syncing them first; with the log, larger limits did not
/// help (the read-modify-write dominates there) and cost log space.
pub const MAX_EXTENT: usize = 16 << 10;
/// Most bytes of small extents one batch logs (the rest go to the device
/// first).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Whether an extent is small enough to go through the log.
pub fn is_small(buf: &AlignedBuf) -> bool {
    buf.len() <= MAX_EXTENT
}

/// The data of one deferred batch, shared by the writer thread and by
/// readers that race with its commit.
pub type Extents = Arc<Vec<(u64, AlignedBuf)>>;

struct Job {
    writes: Extents,
    done: mpsc::SyncSender<io::Result<()>>,
}

/// A thread (with its own ring) that writes a deferred batch's data while
/// the commit thread commits its metadata.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// A write in progress; [`Pending::wait`] returns its result.
pub struct Pending(mpsc::Receiver<io::Result<()>>);

impl Pending {
    /// Waits for the writes to finish (not yet durable: the next
    /// checkpoint syncs the device).
    pub fn wait(self) -> io::Result<()> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("deferred writer stopped")))
    }
}

impl Writer {
    /// Starts the thread; it stops when the `Writer` is dropped.
    pub fn spawn(dev: Arc<dyn BlockDevice>) -> io::Result<Writer> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("shoal-store-defer".into())
            .spawn(move || {
                for job in rx {
                    let _ = job.done.send(dev.write_all(&job.writes));
                }
            })?;
        Ok(Writer { jobs })
    }

    /// Starts writing `writes`.
    pub fn start(&self, writes: Extents) -> Pending {
        let (done, rx) = mpsc::sync_channel(1);
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job { writes, done }) {
            let _ = job
                .done
                .send(Err(io::Error::other("deferred writer stopped")));
        }
        Pending(rx)
    }
}

/// The bytes of the extent at `phys` of `len` bytes, if `writes` has them.
pub fn lookup(writes: &[(u64, AlignedBuf)], phys: u64, len: usize) -> Option<&[u8]> {
    writes.iter().find_map(|(start, buf)| {
        let off = phys.checked_sub(*start)? as usize;
        buf.as_slice().get(off..off.checked_add(len)?)
    })
}

/// Writes logged extents back to the device after a crash, guarded: only
/// the chunks the metadata of `wtx` places inside an extent *and* whose
/// checksum the logged bytes match are written, so a logged extent whose
/// space was freed and reused since can never overwrite the new data.
/// Returns how many chunks were written (and synced).
pub fn restore(
    wtx: &WriteTransaction,
    dev: &dyn BlockDevice,
    extents: Vec<(u64, Vec<u8>)>,
) -> Result<usize> {
    let mut records: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for (phys, data) in extents {
        if phys % BLOCK != 0
            || data.len() > MAX_BATCH_BYTES
            || phys.saturating_add(data.len() as u64) > dev.size()
        {
            return Err(StoreError::CorruptMeta(format!(
                "logged extent at {phys} ({} bytes) outside the device or unaligned",
                data.len()
            )));
        }
        records.entry(phys).or_default().push(data);
    }
    if records.is_empty() {
        return Ok(0);
    }
    let mut writes: Vec<(u64, AlignedBuf)> = Vec::new();
    {
        let objects = wtx.open_table(OBJECTS)?;
        for entry in objects.iter()? {
            let (_, v) = entry?;
            for c in ObjectMeta::decode(v.value())?.chunks {
                // Extents covering the chunk, newest first (stale ones fail
                // the checksum).
                let near = c.phys.saturating_sub(MAX_BATCH_BYTES as u64)..=c.phys;
                let found = records.range(near).rev().find_map(|(&start, datas)| {
                    let off = (c.phys - start) as usize;
                    datas.iter().rev().find_map(|d| {
                        let bytes = d.get(off..off.checked_add(c.len as usize)?)?;
                        verify(&c, bytes).then_some(bytes)
                    })
                });
                if let Some(bytes) = found {
                    let mut buf = AlignedBuf::zeroed(round_up(c.len as u64) as usize);
                    buf.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
                    writes.push((c.phys, buf));
                }
            }
        }
    }
    if !writes.is_empty() {
        dev.write_all(&writes)?;
        dev.sync()?;
    }
    Ok(writes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(len: usize) -> AlignedBuf {
        AlignedBuf::zeroed(len)
    }

    #[test]
    fn only_small_extents_are_logged() {
        assert!(is_small(&buf(4096)));
        assert!(is_small(&buf(MAX_EXTENT)));
        assert!(!is_small(&buf(MAX_EXTENT + 4096)));
    }
}
