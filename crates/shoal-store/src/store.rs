//! The store: open/mkfs, reads, and the handles of the write pipeline
//! (`commit.rs`: a staging thread and a commit thread).
//!
//! A batch becomes durable with one write-ahead log append (`wal.rs`), after
//! its large new data is written to free space and synced; its metadata
//! then goes into redb non-durably, and checkpoints make redb durable. Small
//! new extents travel in the log record (`deferred.rs`). At open, the log
//! after the last checkpoint is replayed.
//!
//! Freed space is not reused while a reader that may still follow the old
//! metadata is running: frees are tagged with the commit generation and
//! released once every reader is at least that new.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable};
use tokio::sync::oneshot;

use crate::alloc::Allocator;
use crate::chunkio::{chunk_range, read_contiguous, read_into, read_verified, verify};
use crate::commit::{Msg, stage_loop};
use crate::config::{Backend, StoreConfig};
use crate::deferred::{self, Extents, Writer};
use crate::device::{BlockDevice, FileDevice, UringDevice, round_up};
use crate::error::{Result, StoreError};
use crate::keys;
use crate::meta::{
    COLLECTIONS, Chunk, FORMAT, MAX_CHUNK, MIN_CHUNK, OBJECTS, OMAP, ObjectMeta, REFS, SUPER,
    Version,
};
use crate::recent::RecentWrites;
use crate::stage::Prepared;
use crate::txn::{ChunkSums, Op, Transaction};
use crate::wal::{self, Checkpoint, Wal, WalBatch};

/// Default chunk (checksum block) size; see `docs/store.md`.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 10;

/// Size and version of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectStat {
    /// Logical size.
    pub size: u64,
    /// Version of the last change.
    pub version: Version,
}

/// Space accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Data device size.
    pub total: u64,
    /// Bytes holding data (or awaiting release).
    pub used: u64,
    /// Bytes ordinary writes may still use (free minus the reserve).
    pub available: u64,
    /// Bytes kept for deletes and recovery.
    pub reserve: u64,
}

/// One damaged range found by a scrub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubError {
    /// Object name.
    pub object: String,
    /// Logical range whose checksum failed (or that could not be read).
    pub range: std::ops::Range<u64>,
}

/// What a deep scrub of a collection found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Objects checked.
    pub objects: u64,
    /// Data bytes read and verified.
    pub bytes: u64,
    /// Damaged ranges.
    pub errors: Vec<ScrubError>,
}

/// A submitted transaction.
pub(crate) struct Request {
    pub txn: Transaction,
    /// Per op: its data laid out and hashed by the submitter (large whole
    /// object writes), so the staging thread only allocates and records.
    pub prepared: Vec<Option<Prepared>>,
    pub reply: oneshot::Sender<Result<()>>,
}

/// Commit generations seen by active readers, and frees waiting for them.
struct Readers {
    generation: u64,
    active: BTreeMap<u64, usize>,
    deferred: Vec<(u64, u64, u64)>,
}

/// State shared by the store's users and its staging and commit threads.
pub(crate) struct Shared {
    pub db: Database,
    pub dev: Arc<dyn BlockDevice>,
    pub chunk_size: u64,
    pub reserve: u64,
    pub alloc: Mutex<Allocator>,
    readers: Mutex<Readers>,
    /// Small extents written by recent batches.
    pub recent: Mutex<RecentWrites>,
    /// Verified chunks of recent small reads.
    pub read_cache: crate::cache::ChunkCache,
    /// The write-ahead log (commit thread only).
    pub wal: Mutex<Wal>,
    /// The data of the deferred batch being committed: visible to readers
    /// before it is on the device.
    pub landing: Mutex<Option<Extents>>,
    /// Set when deferred data could not be written: the store refuses
    /// further transactions (its data is safe in the metadata and is
    /// written again at the next open).
    pub failed: Mutex<Option<String>>,
}

/// An object store on one data device.
pub struct Store {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Msg>>,
    stager: Option<JoinHandle<()>>,
}

/// Locks a mutex, recovering it from a panicked holder.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the store; the data under these
    // locks is kept consistent at every await-free step.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Creates a new store: the data file (pre-allocated) and the metadata.
    /// Refuses to overwrite existing metadata.
    pub fn mkfs(cfg: &StoreConfig) -> Result<()> {
        std::fs::create_dir_all(&cfg.dir)?;
        if cfg.meta_path().exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists: refusing to overwrite a store",
                cfg.meta_path().display()
            )));
        }
        let chunk = cfg.chunk_size;
        if !chunk.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) {
            return Err(StoreError::Invalid(format!(
                "chunk size {chunk} must be a power of two in 4 KiB..4 MiB"
            )));
        }
        if cfg.device.is_none() {
            FileDevice::create(&cfg.data_path(), cfg.data_size / 4096 * 4096)?;
        }
        let dev = FileDevice::open(&cfg.data_path())?;
        Wal::create(&cfg.wal_path(), cfg.wal_size.max(WAL_MIN))?;
        let db = Database::create(cfg.meta_path())?;
        let wtx = db.begin_write()?;
        {
            let mut t = wtx.open_table(SUPER)?;
            t.insert("format", FORMAT)?;
            t.insert("chunk_size", chunk)?;
            t.insert("data_size", dev.size())?;
            drop(t);
            wal::write_checkpoint(&wtx, Checkpoint::default())?;
            for table in [COLLECTIONS, OBJECTS, OMAP] {
                wtx.open_table(table)?;
            }
            wtx.open_table(REFS)?;
        }
        wtx.commit()?;
        Ok(())
    }

    /// Opens a store made by [`Store::mkfs`] and starts its commit thread.
    pub fn open(cfg: &StoreConfig) -> Result<Store> {
        if !cfg.meta_path().exists() {
            return Err(StoreError::Invalid(format!(
                "no store at {}",
                cfg.dir.display()
            )));
        }
        let db = Database::open(cfg.meta_path())?;
        let (chunk_size, data_size, ckpt) = {
            let rtx = db.begin_read()?;
            let t = rtx.open_table(SUPER)?;
            let get = |k: &str| -> Result<u64> {
                t.get(k)?
                    .map(|v| v.value())
                    .ok_or_else(|| StoreError::CorruptMeta(format!("superblock lacks {k}")))
            };
            let format = get("format")?;
            if format != FORMAT {
                return Err(StoreError::CorruptMeta(format!("unknown format {format}")));
            }
            let chunk_size = get("chunk_size")?;
            if !chunk_size.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
                return Err(StoreError::CorruptMeta(format!(
                    "superblock chunk size {chunk_size} is not a power of two in 4 KiB..4 MiB"
                )));
            }
            (chunk_size, get("data_size")?, wal::read_checkpoint(&t)?)
        };
        let dev: Arc<dyn BlockDevice> = Arc::from(open_device(cfg)?);
        tracing::info!(backend = dev.kind(), size = dev.size(), "data device open");
        if dev.size() < data_size {
            return Err(StoreError::Invalid(format!(
                "data device has {} bytes, the store was made with {data_size}",
                dev.size()
            )));
        }
        let (wal, batches) = Wal::open(&cfg.wal_path(), ckpt)?;
        let wal = replay(&db, dev.as_ref(), wal, batches)?;
        let alloc = rebuild_allocator(&db, data_size)?;
        let shared = Arc::new(Shared {
            db,
            dev,
            chunk_size,
            reserve: cfg.reserve.min(data_size),
            alloc: Mutex::new(alloc),
            readers: Mutex::new(Readers {
                generation: 0,
                active: BTreeMap::new(),
                deferred: Vec::new(),
            }),
            recent: Mutex::new(RecentWrites::new(cfg.recent_cache_bytes)),
            read_cache: crate::cache::ChunkCache::new(cfg.read_cache_bytes),
            wal: Mutex::new(wal),
            landing: Mutex::new(None),
            failed: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel::<Msg>();
        let worker = shared.clone();
        let max_group = cfg.max_batch.max(1);
        let writer = Writer::spawn(shared.dev.clone())?;
        let done = tx.clone();
        let stager = std::thread::Builder::new()
            .name("shoal-store-stage".into())
            .spawn(move || {
                if let Err(e) = stage_loop(&worker, &rx, done, writer, max_group) {
                    tracing::error!(error = %e, "store pipeline failed to start");
                }
            })?;
        Ok(Store {
            shared,
            tx: Some(tx),
            stager: Some(stager),
        })
    }

    /// Applies `txn` atomically; the future resolves once it is on stable
    /// storage. The transaction is queued when `submit` is called, not when
    /// the future is first polled: transactions apply in the order of the
    /// `submit` calls, so a caller may keep many in flight and still rely
    /// on their order.
    pub fn submit(&self, txn: Transaction) -> impl Future<Output = Result<()>> + Send + 'static {
        let queued = self.enqueue(txn);
        async move { queued?.await.map_err(|_| StoreError::Closed)? }
    }

    /// [`Store::submit`] for callers outside an async runtime.
    pub fn submit_blocking(&self, txn: Transaction) -> Result<()> {
        let rx = self.enqueue(txn)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    fn enqueue(&self, txn: Transaction) -> Result<oneshot::Receiver<Result<()>>> {
        let (reply, rx) = oneshot::channel();
        let chunk = self.shared.chunk_size;
        let prepared = txn
            .ops
            .iter()
            .map(|op| match op {
                Op::WriteFull { data, sums, .. } if data.len() as u64 >= chunk => {
                    Some(Prepared::new(data, chunk, sums.as_ref()))
                }
                _ => None,
            })
            .collect();
        self.tx
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(Msg::Txn(Request {
                txn,
                prepared,
                reply,
            }))
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    fn reader(&self) -> Result<(ReadGuard<'_>, ReadTransaction)> {
        let generation = {
            let mut r = lock(&self.shared.readers);
            let g = r.generation;
            *r.active.entry(g).or_insert(0) += 1;
            g
        };
        let guard = ReadGuard {
            shared: &self.shared,
            generation,
        };
        Ok((guard, self.shared.db.begin_read()?))
    }

    fn object_meta(rtx: &ReadTransaction, coll: &str, name: &str) -> Result<ObjectMeta> {
        let t = rtx.open_table(OBJECTS)?;
        let v = t
            .get(keys::object(coll, name).as_slice())?
            .ok_or_else(|| StoreError::NoObject(coll.into(), name.into()))?;
        ObjectMeta::decode(v.value())
    }

    /// Reads `len` bytes at `offset` (fewer at the end of the object; holes
    /// read as zeros). Every chunk read is verified.
    pub fn read(&self, coll: &str, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let (_guard, rtx) = self.reader()?;
        let meta = Self::object_meta(&rtx, coll, name)?;
        let end = offset.saturating_add(len).min(meta.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        read_into(
            self.shared.dev.as_ref(),
            &meta.chunks,
            self.shared.chunk_size,
            offset,
            &mut out,
            (coll, name),
            &|c| self.shared.recover_chunk(c),
        )?;
        Ok(out)
    }

    /// Like [`Store::read`], as a shared buffer: when the bytes are stored
    /// back to back (a whole-object write), the buffer the device filled
    /// is returned as it is, without a copy.
    pub fn read_bytes(&self, coll: &str, name: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.snapshot(coll, name)?.read_bytes(offset, len)
    }

    /// Object `name` as of now: size, version and xattrs from one
    /// metadata lookup, and its data readable while the snapshot lives
    /// (the extents it points to are not reused meanwhile).
    pub fn snapshot(&self, coll: &str, name: &str) -> Result<ObjectSnapshot<'_>> {
        let (guard, rtx) = self.reader()?;
        let meta = Self::object_meta(&rtx, coll, name)?;
        Ok(ObjectSnapshot {
            _guard: guard,
            shared: &self.shared,
            coll: coll.to_string(),
            name: name.to_string(),
            meta,
        })
    }

    /// Size and version of an object.
    pub fn stat(&self, coll: &str, name: &str) -> Result<ObjectStat> {
        let (_guard, rtx) = self.reader()?;
        let meta = Self::object_meta(&rtx, coll, name)?;
        Ok(ObjectStat {
            size: meta.size,
            version: meta.version,
        })
    }

    /// All xattrs of an object.
    pub fn xattrs(&self, coll: &str, name: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let (_guard, rtx) = self.reader()?;
        Ok(Self::object_meta(&rtx, coll, name)?.xattrs)
    }

    /// Values of the given omap keys (None where absent).
    pub fn omap_get(
        &self,
        coll: &str,
        name: &str,
        keys_: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let (_guard, rtx) = self.reader()?;
        Self::object_meta(&rtx, coll, name)?;
        let t = rtx.open_table(OMAP)?;
        keys_
            .iter()
            .map(|k| {
                Ok(t.get(keys::omap(coll, name, k).as_slice())?
                    .map(|v| v.value().to_vec()))
            })
            .collect()
    }

    /// Omap entries in key order: keys after `start_after` (all when None)
    /// and before `end` (unbounded when None), at most `limit`.
    pub fn omap_range(
        &self,
        coll: &str,
        name: &str,
        start_after: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (_guard, rtx) = self.reader()?;
        Self::object_meta(&rtx, coll, name)?;
        let prefix = keys::object(coll, name);
        let lo = keys::omap(coll, name, start_after.unwrap_or(&[]));
        let hi = match end {
            Some(e) => Some(keys::omap(coll, name, e)),
            None => keys::prefix_end(&prefix),
        };
        let t = rtx.open_table(OMAP)?;
        let range = match &hi {
            Some(h) => t.range(lo.as_slice()..h.as_slice())?,
            None => t.range(lo.as_slice()..)?,
        };
        let mut out = Vec::new();
        for entry in range {
            let (k, v) = entry?;
            let key = &k.value()[prefix.len()..];
            if start_after.is_some_and(|s| key == s) {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.push((key.to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Object names of a collection in a stable order, after `start_after`,
    /// at most `limit`.
    pub fn list_objects(
        &self,
        coll: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let (_guard, rtx) = self.reader()?;
        {
            let t = rtx.open_table(COLLECTIONS)?;
            if t.get(keys::coll(coll).as_slice())?.is_none() {
                return Err(StoreError::NoCollection(coll.into()));
            }
        }
        let prefix = keys::coll(coll);
        let lo = match start_after {
            Some(s) => keys::object(coll, s),
            None => prefix.clone(),
        };
        let t = rtx.open_table(OBJECTS)?;
        let hi = keys::prefix_end(&prefix);
        let range = match &hi {
            Some(h) => t.range(lo.as_slice()..h.as_slice())?,
            None => t.range(lo.as_slice()..)?,
        };
        let mut out = Vec::new();
        for entry in range {
            let (k, _) = entry?;
            let name = keys::object_name(k.value(), coll.len())
                .ok_or_else(|| StoreError::CorruptMeta("object key".into()))?;
            if start_after == Some(name.as_str()) {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.push(name);
        }
        Ok(out)
    }

    /// Names of all collections.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        let (_guard, rtx) = self.reader()?;
        let t = rtx.open_table(COLLECTIONS)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, _) = entry?;
            let v = k.value();
            let name = v
                .get(4..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or_else(|| StoreError::CorruptMeta("collection key".into()))?;
            out.push(name.to_string());
        }
        Ok(out)
    }

    /// A collection's metadata record.
    pub fn collection_meta(&self, coll: &str) -> Result<Vec<u8>> {
        let (_guard, rtx) = self.reader()?;
        let t = rtx.open_table(COLLECTIONS)?;
        t.get(keys::coll(coll).as_slice())?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| StoreError::NoCollection(coll.into()))
    }

    /// Space accounting.
    pub fn statfs(&self) -> StatFs {
        let a = lock(&self.shared.alloc);
        let free = a.free_bytes();
        StatFs {
            total: a.size(),
            used: a.size() - free,
            available: free.saturating_sub(self.shared.reserve),
            reserve: self.shared.reserve,
        }
    }

    /// Reads and verifies every chunk of every object of a collection.
    pub fn deep_scrub(&self, coll: &str) -> Result<ScrubReport> {
        let mut report = ScrubReport::default();
        let mut after: Option<String> = None;
        loop {
            let names = self.list_objects(coll, after.as_deref(), 256)?;
            let Some(last) = names.last().cloned() else {
                break;
            };
            for name in names {
                let (_guard, rtx) = self.reader()?;
                let meta = match Self::object_meta(&rtx, coll, &name) {
                    Ok(m) => m,
                    Err(StoreError::NoObject(..)) => continue, // removed meanwhile
                    Err(e) => return Err(e),
                };
                report.objects += 1;
                for c in &meta.chunks {
                    let ok = matches!(read_verified(self.shared.dev.as_ref(), c), Ok(Some(_)))
                        || self.shared.recover_chunk(c).is_some();
                    report.bytes += c.len as u64;
                    if !ok {
                        report.errors.push(ScrubError {
                            object: name.clone(),
                            range: chunk_range(c, self.shared.chunk_size),
                        });
                    }
                }
            }
            after = Some(last);
        }
        Ok(report)
    }

    /// The data-path implementation in use (`io_uring` or `thread-pool`).
    pub fn backend(&self) -> &'static str {
        self.shared.dev.kind()
    }

    /// The chunk (checksum block) size of this store.
    pub fn chunk_size(&self) -> u64 {
        self.shared.chunk_size
    }

    /// Where an object's data lives on the device: `(logical offset,
    /// device offset, length)` per chunk. For tests and diagnostics.
    pub fn extents(&self, coll: &str, name: &str) -> Result<Vec<(u64, u64, u64)>> {
        let (_guard, rtx) = self.reader()?;
        let meta = Self::object_meta(&rtx, coll, name)?;
        Ok(meta
            .chunks
            .iter()
            .map(|c| (c.index * self.shared.chunk_size, c.phys, c.len as u64))
            .collect())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(h) = self.stager.take() {
            let _ = h.join();
        }
    }
}

/// One object as of one moment (see [`Store::snapshot`]).
pub struct ObjectSnapshot<'a> {
    _guard: ReadGuard<'a>,
    shared: &'a Shared,
    coll: String,
    name: String,
    meta: ObjectMeta,
}

impl ObjectSnapshot<'_> {
    /// Size and version.
    pub fn stat(&self) -> ObjectStat {
        ObjectStat {
            size: self.meta.size,
            version: self.meta.version,
        }
    }

    /// The xattrs.
    pub fn xattrs(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.meta.xattrs
    }

    /// The stored checksums of the whole data, chunk by chunk, when they
    /// are exactly what [`ChunkSums::compute`] gives for it: every chunk
    /// present and holding all its bytes (holes and short chunks in the
    /// middle are hashed differently, so they give none).
    pub fn chunk_sums(&self) -> Option<ChunkSums> {
        let cs = self.shared.chunk_size;
        let size = self.meta.size;
        let chunks = &self.meta.chunks;
        if cs == 0 || size == 0 || chunks.len() as u64 != size.div_ceil(cs) {
            return None;
        }
        let whole = chunks.iter().enumerate().all(|(i, c)| {
            let start = i as u64 * cs;
            c.index == i as u64 && u64::from(c.len) == cs.min(size - start)
        });
        whole.then(|| ChunkSums {
            chunk_size: cs,
            sums: chunks.iter().map(|c| c.csum).collect(),
        })
    }

    /// `len` bytes at `offset` (fewer at the end; holes read as zeros),
    /// verified; without a copy when they lie back to back on the device.
    pub fn read_bytes(&self, offset: u64, len: u64) -> Result<Bytes> {
        let meta = &self.meta;
        let end = offset.saturating_add(len).min(meta.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let dev = self.shared.dev.as_ref();
        let cs = self.shared.chunk_size;
        let cache = &self.shared.read_cache;
        let small = end - offset <= crate::cache::MAX_CACHED_READ;
        if small && let Some(b) = cache.read(&meta.chunks, cs, offset, end) {
            return Ok(b);
        }
        let out = match read_contiguous(dev, &meta.chunks, cs, offset, end)? {
            Some(b) => b,
            None => {
                let mut out = vec![0u8; (end - offset) as usize];
                read_into(
                    dev,
                    &meta.chunks,
                    cs,
                    offset,
                    &mut out,
                    (&self.coll, &self.name),
                    &|c| self.shared.recover_chunk(c),
                )?;
                Bytes::from(out)
            }
        };
        if small {
            cache.insert(&meta.chunks, cs, offset, &out);
        }
        Ok(out)
    }
}

struct ReadGuard<'a> {
    shared: &'a Shared,
    generation: u64,
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let mut r = lock(&self.shared.readers);
        if let Some(n) = r.active.get_mut(&self.generation) {
            *n -= 1;
            if *n == 0 {
                r.active.remove(&self.generation);
            }
        }
    }
}

static NO_URING: std::sync::Once = std::sync::Once::new();

/// Opens the data device with the configured backend.
fn open_device(cfg: &StoreConfig) -> Result<Box<dyn BlockDevice>> {
    let file = FileDevice::open(&cfg.data_path())?;
    match cfg.backend {
        Backend::ThreadPool => Ok(Box::new(file)),
        Backend::IoUring => Ok(Box::new(UringDevice::new(file)?)),
        Backend::Auto => match UringDevice::new(file) {
            Ok(d) => Ok(Box::new(d)),
            Err(e) => {
                NO_URING.call_once(|| {
                    tracing::warn!(error = %e, "io_uring unavailable; using the thread-pool backend");
                });
                Ok(Box::new(FileDevice::open(&cfg.data_path())?))
            }
        },
    }
}

/// Smallest write-ahead log (it must hold the largest batch record twice).
const WAL_MIN: u64 = 16 << 20;

/// Applies the log records after the checkpoint (redb holds exactly the
/// checkpoint's state after a crash), restores their small extents on the
/// device, and checkpoints.
fn replay(
    db: &Database,
    dev: &dyn BlockDevice,
    mut wal: Wal,
    batches: Vec<WalBatch>,
) -> Result<Wal> {
    if batches.is_empty() {
        return Ok(wal);
    }
    let n = batches.len();
    let mut wtx = db.begin_write()?;
    wtx.set_durability(Durability::Immediate)?;
    let mut extents = Vec::new();
    for b in batches {
        b.apply(&wtx)?;
        extents.extend(b.extents);
    }
    let restored = deferred::restore(&wtx, dev, extents)?;
    wal::write_checkpoint(&wtx, wal.position())?;
    wtx.commit()?;
    wal.checkpointed();
    tracing::info!(batches = n, chunks = restored, "write-ahead log replayed");
    Ok(wal)
}

/// Free space = the device minus every extent some object references.
fn rebuild_allocator(db: &Database, size: u64) -> Result<Allocator> {
    let mut alloc = Allocator::new(size);
    let mut seen = HashSet::new();
    let rtx = db.begin_read()?;
    let t = rtx.open_table(OBJECTS)?;
    for entry in t.iter()? {
        let (_, v) = entry?;
        let meta = ObjectMeta::decode(v.value())?;
        for c in &meta.chunks {
            if c.phys % 4096 != 0 || c.phys.saturating_add(round_up(c.len as u64)) > size {
                return Err(StoreError::CorruptMeta(format!(
                    "chunk at {} outside the device",
                    c.phys
                )));
            }
            if seen.insert(c.phys) {
                alloc.mark_used(c.phys, round_up(c.len as u64));
            }
        }
    }
    Ok(alloc)
}

impl Shared {
    /// The verified bytes of a chunk that did not match on the device: a
    /// deferred batch's data may be landing right now.
    pub(crate) fn recover_chunk(&self, c: &Chunk) -> Option<Vec<u8>> {
        let landing = lock(&self.landing).clone();
        if let Some(writes) = landing
            && let Some(data) = deferred::lookup(&writes, c.phys, c.len as usize)
            && verify(c, data)
        {
            return Some(data.to_vec());
        }
        // The write may have landed since the first read.
        read_verified(self.dev.as_ref(), c).ok().flatten()
    }

    /// Queues `new` frees behind the current generation (after a commit)
    /// and releases every deferred free no active reader can still need.
    pub(crate) fn release_deferred(&self, new: Option<Vec<(u64, u64)>>) {
        let ready = {
            let mut r = lock(&self.readers);
            if let Some(frees) = new {
                r.generation += 1;
                let g = r.generation;
                r.deferred.extend(frees.into_iter().map(|(s, l)| (g, s, l)));
            }
            let oldest = r.active.keys().next().copied();
            let (ready, wait): (Vec<_>, Vec<_>) = r
                .deferred
                .drain(..)
                .partition(|&(g, _, _)| oldest.is_none_or(|o| o >= g));
            r.deferred = wait;
            ready
        };
        if !ready.is_empty() {
            let mut a = lock(&self.alloc);
            for (_, s, l) in ready {
                a.release(s, l);
            }
        }
    }
}
