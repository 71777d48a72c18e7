//! Deferred small writes (BlueStore's idea, on top of copy-on-write).
//!
//! A batch whose new data is all small does not write it to the device and
//! `fdatasync` it before the metadata commit. Instead the data goes *into*
//! the metadata commit as records of the `deferred` table (device offset +
//! bytes), so the batch costs one sync. The device writes run while redb
//! commits; a later device sync makes them durable, after which the records
//! are deleted in a following commit. On open, every remaining record is
//! written again (idempotent: the extent still belongs to the chunk that
//! names it) before anything reads.
//!
//! The extent a record names is always newly allocated space, never data in
//! place, so a record can only go stale when (part of) its extent is freed
//! and reused. Replay therefore writes only the chunks that the metadata
//! still places inside a record *and* whose checksum the record's bytes
//! match; a stale record can never write over reused space. (The commit
//! that frees a whole record's extent also deletes the record, to keep the
//! table small.)

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, mpsc};

use redb::{Database, ReadableTable, WriteTransaction};

use crate::chunkio::verify;
use crate::device::{AlignedBuf, BLOCK, BlockDevice, round_up};
use crate::error::{Result, StoreError};
use crate::meta::{DEFERRED, OBJECTS, ObjectMeta};

/// Largest extent written through the metadata commit. Measured
/// (docs/store.md): records of 64 KiB made batches of small overwrites
/// slower than writing and syncing the device first; 4-16 KiB ones faster.
pub const MAX_EXTENT: usize = 16 << 10;
/// Most bytes one batch writes through the metadata commit.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Records waiting for a device sync before the commit path syncs the
/// device (with the deferred writes of the batch, off the critical path).
const SYNC_EVERY: usize = 256;

/// Whether a batch's new data can go through the metadata commit.
pub fn fits(writes: &[(u64, AlignedBuf)]) -> bool {
    let total: usize = writes.iter().map(|(_, b)| b.len()).sum();
    !writes.is_empty()
        && total <= MAX_BATCH_BYTES
        && writes.iter().all(|(_, b)| b.len() <= MAX_EXTENT)
}

/// The deferred records the commit thread knows about.
#[derive(Default)]
pub struct DeferredLog {
    next_seq: u64,
    /// Records in the table by device offset: `(seq, len)`.
    live: BTreeMap<u64, (u64, u64)>,
    /// Records whose device writes completed but are not yet synced.
    unsynced: Vec<u64>,
    /// Records whose data is durable on the device: delete at next commit.
    retire: Vec<u64>,
}

/// The changes one batch made to the log, applied once its commit is durable.
#[derive(Default)]
pub struct LogDelta {
    added: Vec<(u64, u64, u64)>,
    dropped: Vec<u64>,
    recorded: u64,
    retired: usize,
}

impl DeferredLog {
    /// Writes records for `writes` into `wtx` (only with `record`), deletes
    /// the ones inside `frees` (extents the batch frees) and the retired
    /// ones.
    pub fn stage(
        &self,
        wtx: &WriteTransaction,
        writes: &[(u64, AlignedBuf)],
        record: bool,
        frees: &[(u64, u64)],
    ) -> Result<LogDelta> {
        let mut delta = LogDelta::default();
        let mut t = wtx.open_table(DEFERRED)?;
        let mut in_batch: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        if record {
            let mut value = Vec::new();
            for (i, (phys, buf)) in writes.iter().enumerate() {
                let seq = self.next_seq + i as u64;
                value.clear();
                value.extend_from_slice(&phys.to_le_bytes());
                value.extend_from_slice(buf.as_slice());
                t.insert(seq, value.as_slice())?;
                in_batch.insert(*phys, (seq, buf.len() as u64));
            }
            delta.recorded = writes.len() as u64;
        }
        for &(start, len) in frees {
            let end = start.saturating_add(len);
            for map in [&self.live, &in_batch] {
                for (&phys, &(seq, rlen)) in map.range(start..end) {
                    if phys.saturating_add(rlen) <= end {
                        t.remove(seq)?;
                        delta.dropped.push(seq);
                    }
                }
            }
        }
        for &seq in &self.retire {
            t.remove(seq)?;
        }
        delta.retired = self.retire.len();
        delta.added = in_batch
            .into_iter()
            .filter(|(_, (seq, _))| !delta.dropped.contains(seq))
            .map(|(phys, (seq, len))| (phys, seq, len))
            .collect();
        Ok(delta)
    }

    /// Applies a durable batch's delta. `synced`: the device was synced
    /// after every completed deferred write so far, including this batch's.
    pub fn committed(&mut self, delta: LogDelta, synced: bool) {
        self.retire.drain(..delta.retired);
        self.next_seq += delta.recorded;
        self.live.retain(|_, (seq, _)| !delta.dropped.contains(seq));
        for (phys, seq, len) in delta.added {
            self.live.insert(phys, (seq, len));
            self.unsynced.push(seq);
        }
        if synced {
            self.mark_synced();
        }
    }

    /// Every completed deferred write is durable on the device: its record
    /// can go.
    pub fn mark_synced(&mut self) {
        let done: Vec<u64> = std::mem::take(&mut self.unsynced);
        self.live.retain(|_, (seq, _)| !done.contains(seq));
        self.retire.extend(done);
    }

    /// Whether the next deferred batch should sync the device after its
    /// writes (so that records do not pile up).
    pub fn wants_sync(&self) -> bool {
        self.unsynced.len() >= SYNC_EVERY
    }
}

/// The data of one deferred batch, shared by the writer thread and by
/// readers that race with its commit.
pub type Extents = Arc<Vec<(u64, AlignedBuf)>>;

struct Job {
    writes: Extents,
    sync: bool,
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
    /// Waits for the writes (and the sync, when asked) to finish.
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
                    let mut res = dev.write_all(&job.writes);
                    if res.is_ok() && job.sync {
                        res = dev.sync();
                    }
                    let _ = job.done.send(res);
                }
            })?;
        Ok(Writer { jobs })
    }

    /// Starts writing `writes` (then syncing the device, with `sync`).
    pub fn start(&self, writes: Extents, sync: bool) -> Pending {
        let (done, rx) = mpsc::sync_channel(1);
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job { writes, sync, done }) {
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

/// Writes the data of every record left by a crash to the device, syncs
/// it, and deletes the records. Runs at open, before anything reads. Only
/// chunks the metadata places inside a record, and whose checksum the
/// record's bytes match, are written.
pub fn replay(db: &Database, dev: &dyn BlockDevice) -> Result<usize> {
    let wtx = db.begin_write()?;
    let mut records: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    {
        let t = wtx.open_table(DEFERRED)?;
        for entry in t.iter()? {
            let (seq, v) = entry?;
            let v = v.value();
            let bad = |why: &str| {
                StoreError::CorruptMeta(format!("deferred write record {}: {why}", seq.value()))
            };
            let (head, data) = v.split_at_checked(8).ok_or_else(|| bad("truncated"))?;
            let phys = u64::from_le_bytes(head.try_into().map_err(|_| bad("truncated"))?);
            if phys % BLOCK != 0
                || data.len() > MAX_BATCH_BYTES
                || phys.saturating_add(data.len() as u64) > dev.size()
            {
                return Err(bad("extent outside the device, unaligned or too long"));
            }
            records.entry(phys).or_default().push(data.to_vec());
        }
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
                // Records covering the chunk (stale ones among them fail
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
    wtx.open_table(DEFERRED)?.retain(|_, _| false)?;
    wtx.commit()?;
    Ok(writes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(len: usize) -> AlignedBuf {
        AlignedBuf::zeroed(len)
    }

    #[test]
    fn fits_only_small_batches() {
        assert!(!fits(&[]));
        assert!(fits(&[(0, buf(4096)), (8192, buf(MAX_EXTENT))]));
        assert!(!fits(&[(0, buf(MAX_EXTENT + 4096))]));
        let many: Vec<_> = (0..(MAX_BATCH_BYTES / MAX_EXTENT + 1) as u64)
            .map(|i| (i * MAX_EXTENT as u64, buf(MAX_EXTENT)))
            .collect();
        assert!(!fits(&many));
    }
}
