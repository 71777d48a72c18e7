//! The write-ahead log: how a batch becomes durable with one sequential
//! append and one `fdatasync`.
//!
//! A batch's metadata changes and its small new extents are encoded as one
//! record and appended to `DIR/wal`, a pre-written file used as a ring. Once
//! the append is synced the batch is durable; its changes then go into redb
//! with a non-durable commit (visible, not yet persisted by redb). Every so
//! often a *checkpoint* syncs the data device and commits redb durably,
//! recording the last batch it covers; the log before it is then dead
//! space. At open, the records after the checkpoint are applied again
//! (redb holds exactly the checkpoint's state after a crash), which makes
//! the log the only thing a crash can leave half done: a torn or stale
//! record ends the replay.
//!
//! Record: magic (4 bytes), body length (4), sequence number (8), blake3 of
//! the body (32), body (rkyv [`WalBatch`]). Between two checkpoints the
//! records use at most half the ring, so the live ones never overwrite each
//! other; when a record does not fit before the end it goes to offset 0.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use redb::{ReadableTable, WriteTransaction};
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::keys;
use crate::meta::{COLLECTIONS, OBJECTS, OMAP, REFS};

const MAGIC: u32 = 0x5348_574c; // "SHWL"
const HEADER: usize = 48;

/// One batch as logged and as applied to redb.
#[derive(Archive, Serialize, Deserialize, Default, Debug)]
pub struct WalBatch {
    /// Collection key -> new record, or `None` when removed.
    pub colls: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Object key -> encoded object record, or `None` when removed.
    pub objects: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Omap changes in order: `(0, key, value)` put, `(1, key, _)` delete,
    /// `(2, prefix, _)` delete every key with the prefix.
    pub omap: Vec<(u8, Vec<u8>, Vec<u8>)>,
    /// Extent reference counts; 1 or less removes the row.
    pub refs: Vec<(u64, u64)>,
    /// Small new extents: device offset and bytes (written to the device
    /// after the append; the log holds them until the next checkpoint).
    pub extents: Vec<(u64, Vec<u8>)>,
}

/// Omap change kinds in [`WalBatch::omap`].
pub const OMAP_PUT: u8 = 0;
/// See [`OMAP_PUT`].
pub const OMAP_DEL: u8 = 1;
/// See [`OMAP_PUT`].
pub const OMAP_CLEAR: u8 = 2;

impl WalBatch {
    /// Writes the batch's metadata changes into `wtx`.
    pub fn apply(&self, wtx: &WriteTransaction) -> Result<()> {
        {
            let mut t = wtx.open_table(COLLECTIONS)?;
            for (k, state) in &self.colls {
                match state {
                    Some(m) => t.insert(k.as_slice(), m.as_slice())?,
                    None => t.remove(k.as_slice())?,
                };
            }
        }
        {
            let mut t = wtx.open_table(OBJECTS)?;
            for (k, state) in &self.objects {
                match state {
                    Some(meta) => t.insert(k.as_slice(), meta.as_slice())?,
                    None => t.remove(k.as_slice())?,
                };
            }
        }
        {
            let mut t = wtx.open_table(OMAP)?;
            for (kind, k, v) in &self.omap {
                match *kind {
                    OMAP_PUT => {
                        t.insert(k.as_slice(), v.as_slice())?;
                    }
                    OMAP_DEL => {
                        t.remove(k.as_slice())?;
                    }
                    _ => match keys::prefix_end(k) {
                        Some(e) => t.retain_in(k.as_slice()..e.as_slice(), |_, _| false)?,
                        None => t.retain_in(k.as_slice().., |_, _| false)?,
                    },
                }
            }
        }
        let mut t = wtx.open_table(REFS)?;
        for &(phys, n) in &self.refs {
            if n <= 1 {
                t.remove(phys)?;
            } else {
                t.insert(phys, n)?;
            }
        }
        Ok(())
    }

    /// The record body.
    pub fn encode(&self) -> Result<Vec<u8>> {
        rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map(|b| b.to_vec())
            .map_err(|e| StoreError::Meta(format!("encoding a log record: {e}")))
    }

    fn decode(body: &[u8]) -> Option<Self> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
        aligned.extend_from_slice(body);
        rkyv::from_bytes::<WalBatch, rkyv::rancor::Error>(&aligned).ok()
    }
}

/// Where the log stands in redb's durable state: the last batch a
/// checkpoint covers and the offset of the record after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the last batch covered (0: none).
    pub seq: u64,
    /// Ring offset where the next record starts.
    pub pos: u64,
}

/// The log file and the append position.
pub struct Wal {
    file: File,
    size: u64,
    pos: u64,
    next_seq: u64,
    /// Bytes appended since the last checkpoint.
    since: u64,
    batches_since: u64,
}

/// Checkpoint after this many batches even if the log has room (bounds
/// the replay after a crash and redb's unpersisted state).
const CHECKPOINT_BATCHES: u64 = 512;

impl Wal {
    /// Creates the log file: `size` zero bytes, written (not merely
    /// allocated) so that appends are overwrites and `fdatasync` has no
    /// file metadata to update.
    pub fn create(path: &Path, size: u64) -> io::Result<()> {
        // Only mkfs calls this, after checking there is no store here.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < size {
            let n = (size - at).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        file.sync_all()
    }

    /// Opens the log and reads the records after `ckpt`, in order, up to
    /// the first one that is torn, stale or absent.
    pub fn open(path: &Path, ckpt: Checkpoint) -> Result<(Wal, Vec<WalBatch>)> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len();
        if size < 1 << 20 {
            return Err(StoreError::CorruptMeta(format!(
                "write-ahead log {} is {size} bytes",
                path.display()
            )));
        }
        let mut wal = Wal {
            file,
            size,
            pos: ckpt.pos % size,
            next_seq: ckpt.seq + 1,
            since: 0,
            batches_since: 0,
        };
        let mut batches = Vec::new();
        while let Some((batch, at, end)) = wal.read_record(wal.pos, wal.next_seq)? {
            batches.push(batch);
            wal.since += if at == wal.pos {
                end - at
            } else {
                wal.size - wal.pos + end
            };
            wal.pos = end;
            wal.next_seq += 1;
        }
        Ok((wal, batches))
    }

    /// The record with sequence number `seq` at `pos` (or at 0, where a
    /// record that did not fit before the end went); `None` if neither
    /// place holds it intact.
    fn read_record(&self, pos: u64, seq: u64) -> Result<Option<(WalBatch, u64, u64)>> {
        for at in [pos, 0] {
            if let Some((batch, end)) = self.read_at(at, seq)? {
                return Ok(Some((batch, at, end)));
            }
            if pos == 0 {
                break;
            }
        }
        Ok(None)
    }

    fn read_at(&self, at: u64, seq: u64) -> Result<Option<(WalBatch, u64)>> {
        if at + HEADER as u64 > self.size {
            return Ok(None);
        }
        let mut head = [0u8; HEADER];
        self.file.read_exact_at(&mut head, at)?;
        let word = |r: std::ops::Range<usize>| -> u64 {
            head[r]
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | b as u64)
        };
        let (magic, len, rseq) = (word(0..4) as u32, word(4..8), word(8..16));
        let end = at + HEADER as u64 + len;
        if magic != MAGIC || rseq != seq || end > self.size {
            return Ok(None);
        }
        let mut body = vec![0u8; len as usize];
        self.file.read_exact_at(&mut body, at + HEADER as u64)?;
        if blake3::hash(&body).as_bytes() != &head[16..48] {
            return Ok(None);
        }
        match WalBatch::decode(&body) {
            Some(batch) => Ok(Some((batch, end))),
            // A record that hashes right but does not decode was written
            // by something else: refuse rather than guess.
            None => Err(StoreError::CorruptMeta(format!(
                "write-ahead log record {seq} does not decode"
            ))),
        }
    }

    /// Appends a batch (its [`WalBatch::encode`]d body) and makes it
    /// durable.
    pub fn append(&mut self, body: &[u8]) -> Result<()> {
        let total = (HEADER + body.len()) as u64;
        if total > self.size / 2 || u32::try_from(body.len()).is_err() {
            return Err(StoreError::Invalid(format!(
                "a batch of {total} bytes does not fit the write-ahead log"
            )));
        }
        let mut head = [0u8; HEADER];
        head[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        head[4..8].copy_from_slice(&(body.len() as u32).to_le_bytes());
        head[8..16].copy_from_slice(&self.next_seq.to_le_bytes());
        head[16..48].copy_from_slice(blake3::hash(body).as_bytes());
        let at = if self.pos + total > self.size {
            0
        } else {
            self.pos
        };
        // Header and body as two writes (no copy of the body); the hash in
        // the header rejects a record that only partly reached the disk.
        self.file.write_all_at(&head, at)?;
        self.file.write_all_at(body, at + HEADER as u64)?;
        self.file.sync_data()?;
        self.since += total + (at != self.pos) as u64 * (self.size - self.pos);
        self.pos = at + total;
        self.next_seq += 1;
        self.batches_since += 1;
        Ok(())
    }

    /// Whether the next batch (a body of `upcoming` bytes) should wait for
    /// a checkpoint first.
    pub fn checkpoint_due(&self, upcoming: u64) -> bool {
        self.batches_since >= CHECKPOINT_BATCHES
            || self.since + upcoming + HEADER as u64 > self.size / 2 - self.size / 8
    }

    /// What a checkpoint taken now covers.
    pub fn position(&self) -> Checkpoint {
        Checkpoint {
            seq: self.next_seq - 1,
            pos: self.pos,
        }
    }

    /// A checkpoint covering everything appended is durable.
    pub fn checkpointed(&mut self) {
        self.since = 0;
        self.batches_since = 0;
    }

    /// Whether anything was appended since the last checkpoint.
    pub fn dirty(&self) -> bool {
        self.batches_since > 0
    }
}

/// Reads the checkpoint from the superblock table.
pub fn read_checkpoint<T: ReadableTable<&'static str, u64>>(t: &T) -> Result<Checkpoint> {
    Ok(Checkpoint {
        seq: t.get("wal_seq")?.map_or(0, |v| v.value()),
        pos: t.get("wal_pos")?.map_or(0, |v| v.value()),
    })
}

/// Records `ckpt` in the superblock table of `wtx`.
pub fn write_checkpoint(wtx: &WriteTransaction, ckpt: Checkpoint) -> Result<()> {
    let mut t = wtx.open_table(crate::meta::SUPER)?;
    t.insert("wal_seq", ckpt.seq)?;
    t.insert("wal_pos", ckpt.pos)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(tag: u8) -> WalBatch {
        WalBatch {
            objects: vec![(vec![tag], Some(vec![tag; 100]))],
            extents: vec![(4096, vec![tag; 4096])],
            ..WalBatch::default()
        }
    }

    #[test]
    fn records_replay_in_order_wrap_and_stop_at_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        Wal::create(&path, 1 << 20).unwrap();
        let (mut wal, old) = Wal::open(&path, Checkpoint::default()).unwrap();
        assert!(old.is_empty());
        // Enough records to wrap the ring several times, checkpointing
        // whenever one is due, as the store does.
        let mut ckpt = Checkpoint::default();
        for i in 0..400u32 {
            let b = batch(i as u8);
            if wal.checkpoint_due(5000) {
                ckpt = wal.position();
                wal.checkpointed();
            }
            wal.append(&b.encode().unwrap()).unwrap();
        }
        let (_, replay) = Wal::open(&path, ckpt).unwrap();
        let expect = 400 - ckpt.seq as usize;
        assert!(expect > 0);
        assert_eq!(replay.len(), expect);
        for (k, b) in replay.iter().enumerate() {
            assert_eq!(b.objects[0].0, vec![(ckpt.seq as usize + k) as u8]);
        }
        // Tear the last record: the replay stops just before it.
        let end = wal.position().pos;
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff; 8], end - 100).unwrap();
        let (_, replay) = Wal::open(&path, ckpt).unwrap();
        assert_eq!(replay.len(), expect - 1);
    }
}
