//! Staging: one transaction applied in memory against the metadata of its
//! batch and the allocator. Nothing reaches the database or the device until
//! the whole transaction has succeeded, so a failed transaction (no space, a
//! missing object, corrupt old data) changes nothing.
//!
//! New data always goes to newly allocated space (copy-on-write); extents a
//! transaction stops using are freed only after its batch commits.
//!
//! Staging is pipelined with committing: a batch is staged against a read
//! snapshot of the committed metadata plus the changes of the batch being
//! committed meanwhile (its [`Overlay`]); the commit thread then writes the
//! batch's [`Changes`] into one redb transaction.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use bytes::Bytes;
use redb::{Database, ReadOnlyTable, ReadableDatabase};

use crate::alloc::Allocator;
use crate::chunkio::{load_chunk, verify};
use crate::deferred::{self, Extents};
use crate::device::{AlignedBuf, BLOCK, BlockDevice, round_up};
use crate::error::{Result, StoreError};
use crate::keys;
use crate::meta::{COLLECTIONS, Chunk, OBJECTS, OMAP, ObjectMeta, REFS};
use crate::recent::RecentWrites;
use crate::txn::{ChunkSums, MAX_NAME, MAX_OBJECT_SIZE, MAX_OMAP_ITEM, MAX_XATTR, Op, Transaction};
use crate::wal::{self, WalBatch};

/// A whole-object write laid out and hashed ahead of the commit thread, in
/// the submitting thread: chunks back to back (block aligned) in one buffer.
pub(crate) struct Prepared {
    buf: AlignedBuf,
    /// `(index, offset in buf, len, checksum)` per chunk.
    chunks: Vec<(u64, u64, u32, [u8; 32])>,
}

impl Prepared {
    /// Lays out `data` as the chunks of a whole object, hashed unless
    /// `sums` are its checksums for this chunk size. Data that already
    /// starts on a block boundary and fills whole blocks (a payload the
    /// network reassembled into an aligned buffer) is written as is.
    pub fn new(data: &Bytes, chunk_size: u64, sums: Option<&ChunkSums>) -> Self {
        let c = chunk_size as usize;
        let total: u64 = data.chunks(c).map(|d| round_up(d.len() as u64)).sum();
        let aligned = (data.len() as u64 % BLOCK == 0)
            .then(|| AlignedBuf::from_bytes(data.clone()).ok())
            .flatten();
        // Every chunk but the last is full (and a block multiple), so the
        // layout is the data itself, zero-padded at the end.
        let buf = aligned
            .unwrap_or_else(|| AlignedBuf::filled(total as usize, |v| v.extend_from_slice(data)));
        let sums = sums.filter(|s| s.fits(data.len(), chunk_size));
        let mut chunks = Vec::with_capacity(data.len().div_ceil(c));
        let mut at = 0usize;
        for (i, d) in data.chunks(c).enumerate() {
            let csum = match sums {
                Some(s) => s.sums[i],
                None => *blake3::hash(d).as_bytes(),
            };
            chunks.push((i as u64, at as u64, d.len() as u32, csum));
            at += round_up(d.len() as u64) as usize;
        }
        Prepared { buf, chunks }
    }
}

/// The committed metadata a batch is staged against: tables of one read
/// snapshot, opened once per batch (opening costs more than most lookups).
pub(crate) struct Snapshot {
    colls: ReadOnlyTable<&'static [u8], &'static [u8]>,
    objects: ReadOnlyTable<&'static [u8], &'static [u8]>,
    omap: ReadOnlyTable<&'static [u8], &'static [u8]>,
    refs: ReadOnlyTable<u64, u64>,
}

impl Snapshot {
    /// Opens the tables of a new read transaction.
    pub fn open(db: &Database) -> Result<Self> {
        let rtx = db.begin_read()?;
        Ok(Snapshot {
            colls: rtx.open_table(COLLECTIONS)?,
            objects: rtx.open_table(OBJECTS)?,
            omap: rtx.open_table(OMAP)?,
            refs: rtx.open_table(REFS)?,
        })
    }
}

/// What a batch changes in the metadata.
#[derive(Default)]
pub(crate) struct Changes {
    colls: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    objects: BTreeMap<Vec<u8>, Option<ObjectMeta>>,
    /// In order.
    omap: Vec<OmapAction>,
    /// Reference counts; 1 or less means the row goes.
    refs: BTreeMap<u64, u64>,
}

impl Changes {
    /// The changes as a log record, with the batch's small extents.
    pub fn to_wal(&self, small: &[(u64, AlignedBuf)]) -> Result<WalBatch> {
        let objects = self
            .objects
            .iter()
            .map(|(k, m)| Ok((k.clone(), m.as_ref().map(ObjectMeta::encode).transpose()?)))
            .collect::<Result<_>>()?;
        let omap = self
            .omap
            .iter()
            .map(|a| match a {
                OmapAction::Put(k, v) => (wal::OMAP_PUT, k.clone(), v.clone()),
                OmapAction::Del(k) => (wal::OMAP_DEL, k.clone(), Vec::new()),
                OmapAction::Clear(p) => (wal::OMAP_CLEAR, p.clone(), Vec::new()),
            })
            .collect();
        Ok(WalBatch {
            colls: self
                .colls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            objects,
            omap,
            refs: self.refs.iter().map(|(&p, &n)| (p, n)).collect(),
            extents: small
                .iter()
                .map(|(p, b)| (*p, b.as_slice().to_vec()))
                .collect(),
        })
    }
}

/// A batch being committed, as the staging of the next batch sees it.
pub(crate) struct Overlay {
    /// Its metadata changes.
    pub changes: Changes,
    /// Its small new extents (logged, then written to the device).
    pub small: Extents,
    /// Its other new extents (written and synced before the log append).
    pub large: Extents,
}

impl Overlay {
    /// Splits a staged batch's data into logged and directly written
    /// extents.
    pub fn new(changes: Changes, writes: BTreeMap<u64, AlignedBuf>) -> Self {
        let (mut small, mut large) = (Vec::new(), Vec::new());
        let mut logged = 0;
        for (phys, buf) in writes {
            if deferred::is_small(&buf) && logged + buf.len() <= deferred::MAX_BATCH_BYTES {
                logged += buf.len();
                small.push((phys, buf));
            } else {
                large.push((phys, buf));
            }
        }
        Overlay {
            changes,
            small: Arc::new(small),
            large: Arc::new(large),
        }
    }

    /// The bytes of a chunk this batch wrote, if it did.
    fn chunk(&self, c: &Chunk) -> Option<&[u8]> {
        deferred::lookup(&self.small, c.phys, c.len as usize)
            .or_else(|| deferred::lookup(&self.large, c.phys, c.len as usize))
    }
}

/// A batch being staged: it grows by groups of transactions until the
/// commit thread is free to take it.
pub(crate) struct Building {
    snapshot: Snapshot,
    /// The batch being committed while this one is staged.
    prev: Option<Arc<Overlay>>,
    /// The transactions staged so far.
    pub changes: Changes,
    /// Data written by the batch's transactions, by device offset.
    pub pending: BTreeMap<u64, AlignedBuf>,
    /// Extents to release once the batch is durable.
    pub frees: Vec<(u64, u64)>,
    /// Extents allocated by the batch's successful transactions (to give
    /// back if the batch fails to become durable).
    pub allocated: Vec<(u64, u64)>,
    /// Committed chunks read ahead for partial writes, by device offset
    /// (verified bytes).
    prefetched: HashMap<u64, Vec<u8>>,
}

impl Building {
    /// A new batch on a fresh snapshot, staged on top of `prev` (the batch
    /// being committed, if any).
    pub fn new(db: &Database, prev: Option<Arc<Overlay>>) -> Result<Self> {
        Ok(Building {
            snapshot: Snapshot::open(db)?,
            prev,
            changes: Changes::default(),
            pending: BTreeMap::new(),
            frees: Vec::new(),
            allocated: Vec::new(),
            prefetched: HashMap::new(),
        })
    }
}

/// Staging one group of transactions into a [`Building`] batch.
pub(crate) struct BatchCtx<'a> {
    pub b: &'a mut Building,
    pub dev: &'a dyn BlockDevice,
    pub alloc: &'a mut Allocator,
    pub chunk_size: u64,
    pub reserve: u64,
    /// Extents written by recent batches.
    pub recent: &'a RecentWrites,
}

/// An omap change, applied in order.
pub(crate) enum OmapAction {
    Put(Vec<u8>, Vec<u8>),
    Del(Vec<u8>),
    /// Remove every key with this prefix.
    Clear(Vec<u8>),
}

/// What one transaction will change.
#[derive(Default)]
struct Staged {
    objects: BTreeMap<Vec<u8>, Option<ObjectMeta>>,
    omap: Vec<OmapActionBox>,
    refs: BTreeMap<u64, u64>,
    /// Collections this transaction created, changed (`Some(meta)`) or
    /// removed (`None`).
    colls: BTreeMap<String, Option<Vec<u8>>>,
    allocated: Vec<(u64, u64)>,
    writes: Vec<(u64, AlignedBuf)>,
    frees: Vec<(u64, u64)>,
    /// The transaction may allocate from the reserve.
    use_reserve: bool,
}

/// Boxed to keep `Staged` small when there are many actions.
type OmapActionBox = Box<OmapAction>;

impl BatchCtx<'_> {
    /// Stages `txn`, then writes its changes into the batch; on error the
    /// batch is as if `txn` had never been submitted.
    pub fn apply(&mut self, txn: &Transaction, prepared: &mut [Option<Prepared>]) -> Result<()> {
        let mut st = Staged {
            use_reserve: txn.use_reserve,
            ..Staged::default()
        };
        match self.stage(txn, prepared, &mut st) {
            Ok(()) => self.flush(st),
            Err(e) => {
                for (s, l) in st.allocated {
                    self.alloc.release(s, l);
                }
                Err(e)
            }
        }
    }

    fn stage(
        &mut self,
        txn: &Transaction,
        prepared: &mut [Option<Prepared>],
        st: &mut Staged,
    ) -> Result<()> {
        let coll = txn.collection.as_str();
        if coll.is_empty() || coll.len() > MAX_NAME {
            return Err(StoreError::Invalid(format!("bad collection name {coll:?}")));
        }
        for (i, op) in txn.ops.iter().enumerate() {
            let ready = prepared.get_mut(i).and_then(Option::take);
            match op {
                Op::On { collection, ops } => self.stage_on(collection, ops, st)?,
                op => self.stage_op(coll, op, ready, st)?,
            }
        }
        Ok(())
    }

    /// Stages the ops of an [`Op::On`].
    fn stage_on(&mut self, coll: &str, ops: &[Op], st: &mut Staged) -> Result<()> {
        if coll.is_empty() || coll.len() > MAX_NAME {
            return Err(StoreError::Invalid(format!("bad collection name {coll:?}")));
        }
        for op in ops {
            if matches!(op, Op::On { .. }) {
                return Err(StoreError::Invalid("an On inside an On".into()));
            }
            self.stage_op(coll, op, None, st)?;
        }
        Ok(())
    }

    fn coll_exists(&self, coll: &str, st: &Staged) -> Result<bool> {
        if let Some(state) = st.colls.get(coll) {
            return Ok(state.is_some());
        }
        let key = keys::coll(coll);
        for layer in self.layers() {
            if let Some(state) = layer.colls.get(&key) {
                return Ok(state.is_some());
            }
        }
        Ok(self.b.snapshot.colls.get(key.as_slice())?.is_some())
    }

    /// The uncommitted changes under the current transaction, newest first.
    fn layers(&self) -> impl Iterator<Item = &Changes> {
        std::iter::once(&self.b.changes).chain(self.b.prev.as_deref().map(|p| &p.changes))
    }

    fn require_coll(&self, coll: &str, st: &Staged) -> Result<()> {
        if self.coll_exists(coll, st)? {
            Ok(())
        } else {
            Err(StoreError::NoCollection(coll.to_string()))
        }
    }

    fn get_obj(&self, key: &[u8], st: &Staged) -> Result<Option<ObjectMeta>> {
        if let Some(state) = st.objects.get(key) {
            return Ok(state.clone());
        }
        self.committed_obj(key)
    }

    /// An object as the batches before this transaction leave it.
    fn committed_obj(&self, key: &[u8]) -> Result<Option<ObjectMeta>> {
        for layer in self.layers() {
            if let Some(state) = layer.objects.get(key) {
                return Ok(state.clone());
            }
        }
        match self.b.snapshot.objects.get(key)? {
            Some(v) => Ok(Some(ObjectMeta::decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn stage_op(
        &mut self,
        coll: &str,
        op: &Op,
        ready: Option<Prepared>,
        st: &mut Staged,
    ) -> Result<()> {
        match op {
            Op::CreateCollection => {
                if self.coll_exists(coll, st)? {
                    return Err(StoreError::CollectionExists(coll.into()));
                }
                st.colls.insert(coll.to_string(), Some(Vec::new()));
                return Ok(());
            }
            Op::RemoveCollection => {
                self.require_coll(coll, st)?;
                if self.has_objects(coll, st)? {
                    return Err(StoreError::CollectionNotEmpty(coll.into()));
                }
                st.colls.insert(coll.to_string(), None);
                return Ok(());
            }
            Op::SetCollectionMeta(m) => {
                self.require_coll(coll, st)?;
                st.colls.insert(coll.to_string(), Some(m.clone()));
                return Ok(());
            }
            _ => {}
        }
        self.require_coll(coll, st)?;
        match op {
            Op::CreateCollection | Op::RemoveCollection | Op::SetCollectionMeta(_) => Ok(()),
            Op::Touch { name } => self.edit(coll, name, st, |_, _, _| Ok(())),
            Op::Write { name, offset, data } => {
                let end = offset
                    .checked_add(data.len() as u64)
                    .filter(|&e| e <= MAX_OBJECT_SIZE)
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("write past {MAX_OBJECT_SIZE} bytes"))
                    })?;
                self.edit(coll, name, st, |ctx, st, meta| {
                    ctx.write_range(coll, name, st, meta, *offset, data)?;
                    meta.size = meta.size.max(end);
                    Ok(())
                })
            }
            Op::WriteFull { name, data, .. } => {
                if data.len() as u64 > MAX_OBJECT_SIZE {
                    return Err(StoreError::Invalid("object too large".into()));
                }
                self.edit(coll, name, st, |ctx, st, meta| {
                    for c in std::mem::take(&mut meta.chunks) {
                        ctx.drop_chunk(st, &c)?;
                    }
                    meta.size = data.len() as u64;
                    match ready {
                        Some(p) => {
                            meta.chunks = ctx.place_prepared(st, p)?;
                            Ok(())
                        }
                        None => ctx.write_range(coll, name, st, meta, 0, data),
                    }
                })
            }
            Op::Zero { name, offset, len } => {
                let end = offset
                    .checked_add(*len)
                    .filter(|&e| e <= MAX_OBJECT_SIZE)
                    .ok_or_else(|| StoreError::Invalid("zero past the largest object".into()))?;
                self.edit(coll, name, st, |ctx, st, meta| {
                    ctx.zero_range(coll, name, st, meta, *offset, end)?;
                    meta.size = meta.size.max(end);
                    Ok(())
                })
            }
            Op::Truncate { name, size } => {
                if *size > MAX_OBJECT_SIZE {
                    return Err(StoreError::Invalid(
                        "truncate past the largest object".into(),
                    ));
                }
                self.edit(coll, name, st, |ctx, st, meta| {
                    if *size < meta.size {
                        ctx.zero_range(coll, name, st, meta, *size, meta.size)?;
                    }
                    meta.size = *size;
                    Ok(())
                })
            }
            Op::Remove { name } => {
                let key = keys::object(coll, name);
                let Some(meta) = self.get_obj(&key, st)? else {
                    return Err(StoreError::NoObject(coll.into(), name.clone()));
                };
                for c in &meta.chunks {
                    self.drop_chunk(st, c)?;
                }
                st.omap.push(Box::new(OmapAction::Clear(key.clone())));
                st.objects.insert(key, None);
                Ok(())
            }
            Op::Clone { src, dst } => self.clone_object(coll, src, dst, st),
            Op::SetXattr { name, key, value } => {
                if key.len() > MAX_NAME || value.len() > MAX_XATTR {
                    return Err(StoreError::Invalid(format!("xattr {key:?} too large")));
                }
                self.edit(coll, name, st, |_, _, meta| {
                    meta.xattrs.insert(key.clone(), value.clone());
                    Ok(())
                })
            }
            Op::RemoveXattr { name, key } => self.edit(coll, name, st, |_, _, meta| {
                meta.xattrs.remove(key);
                Ok(())
            }),
            Op::OmapSet { name, entries } => {
                if entries
                    .iter()
                    .any(|(k, v)| k.len() > MAX_OMAP_ITEM || v.len() > MAX_OMAP_ITEM)
                {
                    return Err(StoreError::Invalid("omap entry too large".into()));
                }
                self.edit(coll, name, st, |_, st, _| {
                    for (k, v) in entries {
                        st.omap.push(Box::new(OmapAction::Put(
                            keys::omap(coll, name, k),
                            v.clone(),
                        )));
                    }
                    Ok(())
                })
            }
            Op::OmapRemove { name, keys: ks } => self.edit(coll, name, st, |_, st, _| {
                for k in ks {
                    st.omap
                        .push(Box::new(OmapAction::Del(keys::omap(coll, name, k))));
                }
                Ok(())
            }),
            Op::OmapClear { name } => self.edit(coll, name, st, |_, st, _| {
                st.omap
                    .push(Box::new(OmapAction::Clear(keys::object(coll, name))));
                Ok(())
            }),
            Op::SetVersion { name, version } => self.edit(coll, name, st, |_, _, meta| {
                meta.version = *version;
                Ok(())
            }),
            Op::MoveObjects { route } => self.move_objects(coll, route, st),
            Op::On { .. } => Err(StoreError::Invalid("an On inside an On".into())),
        }
    }

    /// Moves the objects of `coll` that `route` sends elsewhere: their
    /// records change collection, their data stays where it is.
    fn move_objects(
        &mut self,
        coll: &str,
        route: &crate::txn::NameRoute,
        st: &mut Staged,
    ) -> Result<()> {
        let mut checked = std::collections::BTreeSet::new();
        for name in self.object_names(coll, st)? {
            let Some(to) = route.destination(&name) else {
                continue;
            };
            if !checked.contains(&to) {
                if to == coll {
                    return Err(StoreError::Invalid("a move onto its own collection".into()));
                }
                self.require_coll(&to, st)?;
                checked.insert(to.clone());
            }
            let (src, dst) = (keys::object(coll, &name), keys::object(&to, &name));
            let Some(meta) = self.get_obj(&src, st)? else {
                continue;
            };
            if self.get_obj(&dst, st)?.is_some() {
                return Err(StoreError::ObjectExists(to, name));
            }
            let entries = self.omap_view(&src, st)?;
            st.omap.push(Box::new(OmapAction::Clear(src.clone())));
            st.omap.push(Box::new(OmapAction::Clear(dst.clone())));
            for (k, v) in entries {
                let mut key = dst.clone();
                key.extend_from_slice(&k[src.len()..]);
                st.omap.push(Box::new(OmapAction::Put(key, v)));
            }
            st.objects.insert(src, None);
            st.objects.insert(dst, Some(meta));
        }
        Ok(())
    }

    /// The names of the objects `coll` holds with this transaction's
    /// changes so far.
    fn object_names(&self, coll: &str, st: &Staged) -> Result<Vec<String>> {
        let mut candidates = std::collections::BTreeSet::new();
        self.visit_object_keys(coll, st, |k| {
            candidates.insert(k.to_vec());
            Ok(true)
        })?;
        let mut names = Vec::new();
        for k in candidates {
            if self.get_obj(&k, st)?.is_some()
                && let Some(name) = keys::object_name(&k, coll.len())
            {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Visits every key an object of `coll` may have (this transaction's,
    /// the batches' before it, the committed ones; a key may come more
    /// than once, and a removed object's too) until `visit` says stop.
    fn visit_object_keys(
        &self,
        coll: &str,
        st: &Staged,
        mut visit: impl FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        let prefix = keys::coll(coll);
        let end = keys::prefix_end(&prefix);
        for k in st.objects.keys().filter(|k| k.starts_with(&prefix)) {
            if !visit(k)? {
                return Ok(());
            }
        }
        for layer in self.layers() {
            let keys = match &end {
                Some(e) => layer.objects.range(prefix.clone()..e.clone()),
                None => layer.objects.range(prefix.clone()..),
            };
            for (k, _) in keys {
                if !visit(k)? {
                    return Ok(());
                }
            }
        }
        let t = &self.b.snapshot.objects;
        let range = match &end {
            Some(e) => t.range(prefix.as_slice()..e.as_slice())?,
            None => t.range(prefix.as_slice()..)?,
        };
        for entry in range {
            let (k, _) = entry?;
            if !visit(k.value())? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Loads (or creates) an object, lets `f` change it, stages the result.
    fn edit(
        &mut self,
        coll: &str,
        name: &str,
        st: &mut Staged,
        f: impl FnOnce(&mut Self, &mut Staged, &mut ObjectMeta) -> Result<()>,
    ) -> Result<()> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(StoreError::Invalid(format!(
                "bad object name of {} bytes",
                name.len()
            )));
        }
        let key = keys::object(coll, name);
        let mut meta = self.get_obj(&key, st)?.unwrap_or_default();
        f(self, st, &mut meta)?;
        st.objects.insert(key, Some(meta));
        Ok(())
    }

    fn has_objects(&self, coll: &str, st: &Staged) -> Result<bool> {
        let mut found = false;
        self.visit_object_keys(coll, st, |k| {
            found = self.get_obj(k, st)?.is_some();
            Ok(!found)
        })?;
        Ok(found)
    }

    /// The current bytes of a stored chunk: from this batch's unwritten
    /// data if it was written in the batch, else from the device (verified).
    fn chunk_data(&self, coll: &str, name: &str, st: &Staged, c: &Chunk) -> Result<Vec<u8>> {
        let within = |start: u64, buf: &AlignedBuf| {
            let off = (c.phys - start) as usize;
            buf.as_slice()
                .get(off..off + c.len as usize)
                .map(<[u8]>::to_vec)
        };
        for (start, buf) in st.writes.iter().rev() {
            if *start <= c.phys
                && let Some(data) = within(*start, buf)
            {
                return Ok(data);
            }
        }
        if let Some((start, buf)) = self.b.pending.range(..=c.phys).next_back()
            && let Some(data) = within(*start, buf)
        {
            return Ok(data);
        }
        if let Some(prev) = &self.b.prev
            && let Some(data) = prev.chunk(c)
        {
            return Ok(data.to_vec());
        }
        if let Some(data) = self.recent.chunk(c) {
            return Ok(data.to_vec());
        }
        if let Some(data) = self.b.prefetched.get(&c.phys)
            && verify(c, data)
        {
            return Ok(data.clone());
        }
        load_chunk(self.dev, c, coll, name, self.chunk_size)
    }

    /// Reads, all at once, the committed chunks the partial writes of
    /// `txns` will merge into (a batch of small overwrites would otherwise
    /// read them one by one). Chunks that fail verification are left out:
    /// staging reads them again and reports the corruption.
    pub fn prefetch<'t>(&mut self, txns: impl Iterator<Item = &'t Transaction>) -> Result<()> {
        let c = self.chunk_size;
        let mut wanted: BTreeMap<u64, Chunk> = BTreeMap::new();
        for txn in txns {
            for op in &txn.ops {
                let Op::Write { name, offset, data } = op else {
                    continue;
                };
                if data.is_empty() || name.len() > MAX_NAME {
                    continue;
                }
                let end = offset.saturating_add(data.len() as u64);
                let partial = [
                    (*offset % c != 0).then_some(*offset / c),
                    (end % c != 0).then(|| (end - 1) / c),
                ];
                if partial.iter().all(Option::is_none) {
                    continue;
                }
                let key = keys::object(&txn.collection, name);
                let Ok(Some(meta)) = self.committed_obj(&key) else {
                    continue;
                };
                for index in partial.into_iter().flatten() {
                    if let Ok(i) = meta.chunk_pos(index) {
                        let chunk = &meta.chunks[i];
                        if self.recent.chunk(chunk).is_none()
                            && chunk.phys.saturating_add(round_up(chunk.len as u64))
                                <= self.dev.size()
                        {
                            wanted.insert(chunk.phys, chunk.clone());
                        }
                    }
                }
            }
        }
        if wanted.len() < 2 {
            return Ok(());
        }
        let mut reads: Vec<(u64, AlignedBuf)> = wanted
            .values()
            .map(|ch| {
                (
                    ch.phys,
                    AlignedBuf::zeroed(round_up(ch.len as u64) as usize),
                )
            })
            .collect();
        self.dev.read_many(&mut reads)?;
        for ((phys, buf), ch) in reads.into_iter().zip(wanted.values()) {
            let data = &buf.as_slice()[..ch.len as usize];
            if verify(ch, data) {
                self.b.prefetched.insert(phys, data.to_vec());
            }
        }
        Ok(())
    }

    /// Writes `data` at `offset`: whole chunks are replaced, partial ones
    /// are read, merged and written to new space.
    fn write_range(
        &mut self,
        coll: &str,
        name: &str,
        st: &mut Staged,
        meta: &mut ObjectMeta,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let c = self.chunk_size;
        let end = offset + data.len() as u64;
        let mut contents: Vec<(u64, Vec<u8>)> = Vec::new();
        for index in offset / c..=(end - 1) / c {
            let (cs, ce) = (index * c, index * c + c);
            let (ws, we) = (offset.max(cs), end.min(ce));
            let src = &data[(ws - offset) as usize..(we - offset) as usize];
            let content = if ws == cs && we == ce {
                src.to_vec()
            } else {
                let mut base = match meta.chunk_pos(index) {
                    Ok(i) => self.chunk_data(coll, name, st, &meta.chunks[i])?,
                    Err(_) => Vec::new(),
                };
                let need = (we - cs) as usize;
                if base.len() < need {
                    base.resize(need, 0);
                }
                base[(ws - cs) as usize..need].copy_from_slice(src);
                base
            };
            contents.push((index, content));
        }
        let placed = self.place(st, &contents)?;
        self.replace_chunks(st, meta, placed)
    }

    /// Zeros `start..end`: chunks wholly inside become holes, partially
    /// covered ones are rewritten.
    fn zero_range(
        &mut self,
        coll: &str,
        name: &str,
        st: &mut Staged,
        meta: &mut ObjectMeta,
        start: u64,
        end: u64,
    ) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        let c = self.chunk_size;
        let mut rewrite: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut dropped = Vec::new();
        for chunk in &meta.chunks {
            let (cs, ce) = (chunk.index * c, chunk.index * c + chunk.len as u64);
            if ce <= start || cs >= end {
                continue;
            }
            if start <= cs && end >= ce {
                dropped.push(chunk.index);
            } else {
                let mut data = self.chunk_data(coll, name, st, chunk)?;
                let zs = (start.max(cs) - cs) as usize;
                let ze = (end.min(ce) - cs) as usize;
                if ze == data.len() {
                    data.truncate(zs); // zeros at the end are implied
                } else {
                    data[zs..ze].fill(0);
                }
                if data.is_empty() {
                    dropped.push(chunk.index);
                } else {
                    rewrite.push((chunk.index, data));
                }
            }
        }
        for index in dropped {
            if let Ok(i) = meta.chunk_pos(index) {
                let old = meta.chunks.remove(i);
                self.drop_chunk(st, &old)?;
            }
        }
        let placed = self.place(st, &rewrite)?;
        self.replace_chunks(st, meta, placed)
    }

    /// Puts new chunks into `meta`, dropping the ones they replace.
    fn replace_chunks(
        &mut self,
        st: &mut Staged,
        meta: &mut ObjectMeta,
        new: Vec<Chunk>,
    ) -> Result<()> {
        for chunk in new {
            match meta.chunk_pos(chunk.index) {
                Ok(i) => {
                    let old = std::mem::replace(&mut meta.chunks[i], chunk);
                    self.drop_chunk(st, &old)?;
                }
                Err(i) => meta.chunks.insert(i, chunk),
            }
        }
        Ok(())
    }

    /// Allocates space for chunk contents (contiguously when possible) and
    /// queues their writes.
    fn place(&mut self, st: &mut Staged, contents: &[(u64, Vec<u8>)]) -> Result<Vec<Chunk>> {
        let contents: Vec<&(u64, Vec<u8>)> =
            contents.iter().filter(|(_, d)| !d.is_empty()).collect();
        let total: u64 = contents.iter().map(|(_, d)| round_up(d.len() as u64)).sum();
        if total == 0 {
            return Ok(Vec::new());
        }
        let reserve = if st.use_reserve { 0 } else { self.reserve };
        let available = self.alloc.free_bytes().saturating_sub(reserve);
        if total > available {
            return Err(StoreError::NoSpace {
                needed: total,
                available,
            });
        }
        let mut out = Vec::with_capacity(contents.len());
        if let Some(start) = self.alloc.allocate(total) {
            st.allocated.push((start, total));
            let mut buf = AlignedBuf::zeroed(total as usize);
            let mut at = 0u64;
            for (index, data) in &contents {
                buf.as_mut_slice()[at as usize..at as usize + data.len()].copy_from_slice(data);
                out.push(new_chunk(*index, start + at, data));
                at += round_up(data.len() as u64);
            }
            st.writes.push((start, buf));
        } else {
            // Fragmented: one extent per chunk.
            for (index, data) in &contents {
                let len = round_up(data.len() as u64);
                let start = self.alloc.allocate(len).ok_or(StoreError::NoSpace {
                    needed: len,
                    available: self.alloc.free_bytes(),
                })?;
                st.allocated.push((start, len));
                let mut buf = AlignedBuf::zeroed(len as usize);
                buf.as_mut_slice()[..data.len()].copy_from_slice(data);
                st.writes.push((start, buf));
                out.push(new_chunk(*index, start, data));
            }
        }
        Ok(out)
    }

    /// Places a prepared whole-object write: one contiguous extent when
    /// there is one, else chunk by chunk.
    fn place_prepared(&mut self, st: &mut Staged, p: Prepared) -> Result<Vec<Chunk>> {
        let total = p.buf.len() as u64;
        if total == 0 {
            return Ok(Vec::new());
        }
        let reserve = if st.use_reserve { 0 } else { self.reserve };
        let available = self.alloc.free_bytes().saturating_sub(reserve);
        if total > available {
            return Err(StoreError::NoSpace {
                needed: total,
                available,
            });
        }
        let Some(start) = self.alloc.allocate(total) else {
            // Fragmented: fall back to the chunk-by-chunk layout.
            let contents: Vec<(u64, Vec<u8>)> = p
                .chunks
                .iter()
                .map(|&(index, off, len, _)| {
                    (
                        index,
                        p.buf.as_slice()[off as usize..off as usize + len as usize].to_vec(),
                    )
                })
                .collect();
            return self.place(st, &contents);
        };
        st.allocated.push((start, total));
        let chunks = p
            .chunks
            .iter()
            .map(|&(index, off, len, csum)| Chunk {
                index,
                phys: start + off,
                len,
                csum,
            })
            .collect();
        st.writes.push((start, p.buf));
        Ok(chunks)
    }

    fn refcount(&self, st: &Staged, phys: u64) -> Result<u64> {
        if let Some(&n) = st.refs.get(&phys) {
            return Ok(n);
        }
        for layer in self.layers() {
            if let Some(&n) = layer.refs.get(&phys) {
                return Ok(n);
            }
        }
        let t = &self.b.snapshot.refs;
        Ok(t.get(phys)?.map_or(1, |v| v.value()))
    }

    /// Drops one reference to a chunk's extent; the last one frees it
    /// (after the batch commits).
    fn drop_chunk(&mut self, st: &mut Staged, c: &Chunk) -> Result<()> {
        let n = self.refcount(st, c.phys)?;
        if n > 1 {
            st.refs.insert(c.phys, n - 1);
        } else {
            st.frees.push((c.phys, round_up(c.len as u64)));
        }
        Ok(())
    }

    fn clone_object(&mut self, coll: &str, src: &str, dst: &str, st: &mut Staged) -> Result<()> {
        if src == dst {
            return Err(StoreError::Invalid("clone onto itself".into()));
        }
        let src_key = keys::object(coll, src);
        let Some(src_meta) = self.get_obj(&src_key, st)? else {
            return Err(StoreError::NoObject(coll.into(), src.into()));
        };
        let dst_key = keys::object(coll, dst);
        if let Some(old) = self.get_obj(&dst_key, st)? {
            for c in &old.chunks {
                self.drop_chunk(st, c)?;
            }
        }
        for c in &src_meta.chunks {
            let n = self.refcount(st, c.phys)?;
            st.refs.insert(c.phys, n + 1);
        }
        let entries = self.omap_view(&src_key, st)?;
        st.omap.push(Box::new(OmapAction::Clear(dst_key.clone())));
        for (k, v) in entries {
            let mut key = dst_key.clone();
            key.extend_from_slice(&k[src_key.len()..]);
            st.omap.push(Box::new(OmapAction::Put(key, v)));
        }
        if dst.is_empty() || dst.len() > MAX_NAME {
            return Err(StoreError::Invalid("bad clone target name".into()));
        }
        st.objects.insert(dst_key, Some(src_meta));
        Ok(())
    }

    /// An object's omap as it stands with this transaction's changes so far.
    fn omap_view(&self, prefix: &[u8], st: &Staged) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let mut view = BTreeMap::new();
        let t = &self.b.snapshot.omap;
        let end = keys::prefix_end(prefix);
        let range = match &end {
            Some(e) => t.range(prefix..e.as_slice())?,
            None => t.range(prefix..)?,
        };
        for entry in range {
            let (k, v) = entry?;
            view.insert(k.value().to_vec(), v.value().to_vec());
        }
        let older = self.b.prev.iter().map(|p| &p.changes.omap);
        let actions = older
            .chain(std::iter::once(&self.b.changes.omap))
            .flatten()
            .chain(st.omap.iter().map(AsRef::as_ref));
        for a in actions {
            match a {
                OmapAction::Put(k, v) if k.starts_with(prefix) => {
                    view.insert(k.clone(), v.clone());
                }
                OmapAction::Del(k) => {
                    view.remove(k);
                }
                OmapAction::Clear(p) if prefix.starts_with(p) || p.starts_with(prefix) => {
                    view.retain(|k, _| !k.starts_with(p));
                }
                _ => {}
            }
        }
        Ok(view)
    }

    /// Adds a staged transaction to the batch.
    fn flush(&mut self, st: Staged) -> Result<()> {
        let changes = &mut self.b.changes;
        for (coll, state) in st.colls {
            changes.colls.insert(keys::coll(&coll), state);
        }
        changes.objects.extend(st.objects);
        changes.omap.extend(st.omap.into_iter().map(|a| *a));
        changes.refs.extend(st.refs);
        self.b.pending.extend(st.writes);
        self.b.frees.extend(st.frees);
        self.b.allocated.extend(st.allocated);
        Ok(())
    }
}

fn new_chunk(index: u64, phys: u64, data: &[u8]) -> Chunk {
    Chunk {
        index,
        phys,
        len: data.len() as u32,
        csum: *blake3::hash(data).as_bytes(),
    }
}
