//! The striper: objects of any size as pieces of (by default) 4 MiB.
//!
//! Object `name` is stored as piece objects `{name}.{i:016x}`. Piece 0
//! (`{name}.0000000000000000`, the *head*) holds the first piece of data
//! and the layout xattr (generation, size, piece size). Piece `k >= 1` of
//! generation `g` is `i = g << 32 | k`. Every whole-object write picks a
//! fresh random generation, writes its pieces 1.. first, then switches the
//! head (its data and layout together, in one atomic op guarded by the
//! layout it replaces), then removes the pieces of the replaced
//! generation. Pieces of a generation never change once written, so a
//! reader that got a layout from the head reads a consistent object or
//! sees a piece vanish (and starts again): never a mix of two writes.
//! User xattrs and omap entries live on the head.

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt, stream};
use shoal_proto::osd::{MAX_NAME, ObjVersion, XattrCmp};
use tokio::task::JoinSet;

use crate::error::ClientError;
use crate::ioctx::{IoCtx, ListCursor, ObjectPage};
use crate::ops::{Output, ReadOp, WriteOp};

/// The head's xattr holding the layout.
pub const LAYOUT_XATTR: &str = "shoal.layout";
/// Xattr names reserved for Shoal's own use.
pub const RESERVED_XATTR_PREFIX: &str = "shoal.";
/// The suffix of a head piece's name.
const HEAD_SUFFIX: &str = ".0000000000000000";
/// Longest name of a striped object (the piece suffix must fit).
pub const MAX_OBJECT_NAME: usize = MAX_NAME - HEAD_SUFFIX.len();
/// The generation of objects written by [`IoCtx::fresh_writer`].
pub const FRESH_GENERATION: u32 = 1;
/// How often a reader starts again after the object changed under it, and
/// a writer re-reads a layout that changed under it, before giving up.
const MAX_RESTARTS: usize = 32;

/// The name of piece `index` of object `name`.
pub fn piece_name(name: &str, index: u64) -> String {
    format!("{name}.{index:016x}")
}

/// The head piece's name of object `name`.
pub fn head_name(name: &str) -> String {
    piece_name(name, 0)
}

fn piece_index(generation: u32, k: u64) -> u64 {
    if k == 0 {
        0
    } else {
        (u64::from(generation) << 32) | k
    }
}

/// How an object is cut into pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The generation of pieces 1.. (random per whole-object write).
    pub generation: u32,
    /// The object's size.
    pub size: u64,
    /// Bytes per piece.
    pub piece_size: u64,
}

const LAYOUT_MAGIC: [u8; 4] = *b"SLY1";
const LAYOUT_LEN: usize = 24;

impl Layout {
    /// A head without a layout: a plain object of one piece.
    fn plain(size: u64) -> Layout {
        Layout {
            generation: 0,
            size,
            piece_size: u64::MAX,
        }
    }

    /// The xattr value.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(LAYOUT_LEN);
        v.extend_from_slice(&LAYOUT_MAGIC);
        v.extend_from_slice(&self.generation.to_le_bytes());
        v.extend_from_slice(&self.size.to_le_bytes());
        v.extend_from_slice(&self.piece_size.to_le_bytes());
        v
    }

    /// Parses an xattr value; `None` when it is not a valid layout.
    pub fn decode(b: &[u8]) -> Option<Layout> {
        if b.len() != LAYOUT_LEN || b[..4] != LAYOUT_MAGIC {
            return None;
        }
        let u64_at = |i: usize| b.get(i..i + 8)?.try_into().ok().map(u64::from_le_bytes);
        let l = Layout {
            generation: u32::from_le_bytes(b.get(4..8)?.try_into().ok()?),
            size: u64_at(8)?,
            piece_size: u64_at(16)?,
        };
        (l.piece_size > 0 && l.size.div_ceil(l.piece_size) <= u64::from(u32::MAX)).then_some(l)
    }

    /// Number of pieces (at least one: the head).
    pub fn pieces(&self) -> u64 {
        self.size.div_ceil(self.piece_size).max(1)
    }

    /// Piece `k`'s byte range within the object, clipped to `[off, end)`,
    /// as (offset within the piece, length).
    fn clip(&self, k: u64, off: u64, end: u64) -> (u64, u64) {
        let start = k.saturating_mul(self.piece_size);
        let stop = start.saturating_add(self.piece_size).min(end);
        let from = off.max(start);
        (from - start, stop.saturating_sub(from))
    }
}

/// The head's layout xattr as stored and parsed (`parsed` is none for a
/// plain object or a corrupt layout, which owns no pieces we can name),
/// with the head's version.
struct StoredLayout {
    raw: Option<Vec<u8>>,
    parsed: Option<Layout>,
    version: ObjVersion,
}

/// What the head says about an object.
#[derive(Clone, Debug)]
struct Head {
    layout: Layout,
    /// The layout xattr as stored (none for plain objects).
    raw: Option<Vec<u8>>,
    version: ObjVersion,
    data: Option<Bytes>,
}

/// Size and version of a striped object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectStat {
    /// Size in bytes.
    pub size: u64,
    /// The head's version (changes with every write to the object).
    pub version: ObjVersion,
    /// Pieces the object is stored as.
    pub pieces: u64,
    /// Bytes per piece.
    pub piece_size: u64,
}

fn check_name(name: &str) -> Result<(), ClientError> {
    if name.is_empty() || name.len() > MAX_OBJECT_NAME {
        return Err(ClientError::Invalid(format!(
            "object names are 1 to {MAX_OBJECT_NAME} bytes"
        )));
    }
    Ok(())
}

fn check_user_xattr(key: &str) -> Result<(), ClientError> {
    if key.starts_with(RESERVED_XATTR_PREFIX) {
        return Err(ClientError::Invalid(format!(
            "xattr names starting with {RESERVED_XATTR_PREFIX:?} are reserved"
        )));
    }
    Ok(())
}

/// A fresh random generation (never 0).
fn new_generation() -> u32 {
    (shoal_monc::random_u64() as u32).max(1)
}

/// Errors about a head piece name the object, not the piece.
fn named(e: ClientError, name: &str) -> ClientError {
    match e {
        ClientError::NotFound(_) => ClientError::NotFound(name.to_string()),
        other => other,
    }
}

fn is_compare_failed(e: &ClientError) -> bool {
    e.osd_code() == Some(shoal_proto::osd::OsdErrorCode::CompareFailed)
}

impl IoCtx {
    /// Reads the head: layout, version, and the data in `[off, off + len)`
    /// of piece 0 if asked.
    async fn head(&self, name: &str, data: Option<(u64, u64)>) -> Result<Head, ClientError> {
        let mut op = ReadOp::new().get_xattr(LAYOUT_XATTR).stat();
        if let Some((off, len)) = data {
            op = op.read(off, len);
        }
        let r = self
            .read_op(&head_name(name), op)
            .await
            .map_err(|e| named(e, name))?;
        let mut outs = r.outputs.into_iter();
        let raw = match outs.next() {
            Some(Output::Xattr(v)) => v,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected an xattr, got {other:?}"
                )));
            }
        };
        let (stat_size, version) = match outs.next() {
            Some(Output::Stat { size, version }) => (size, version),
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected a stat, got {other:?}"
                )));
            }
        };
        let data = match outs.next() {
            Some(Output::Data(d)) => Some(d),
            None => None,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected data, got {other:?}"
                )));
            }
        };
        let layout = match &raw {
            None => Layout::plain(stat_size),
            Some(bytes) => Layout::decode(bytes).ok_or_else(|| ClientError::Corrupt {
                object: name.to_string(),
                message: "its layout xattr does not parse".into(),
            })?,
        };
        Ok(Head {
            layout,
            raw,
            version,
            data,
        })
    }

    /// Size and version of object `name`.
    pub async fn stat(&self, name: &str) -> Result<ObjectStat, ClientError> {
        check_name(name)?;
        let h = self.head(name, None).await?;
        Ok(ObjectStat {
            size: h.layout.size,
            version: h.version,
            pieces: h.layout.pieces(),
            piece_size: h.layout.piece_size,
        })
    }

    /// Writes object `name` whole (replacing any earlier one); answers when
    /// every piece is on stable storage on every replica.
    pub async fn put(&self, name: &str, data: Bytes) -> Result<ObjVersion, ClientError> {
        let mut w = self.writer(name)?;
        w.write(data).await?;
        w.finish().await
    }

    /// A writer that streams a new version of object `name` in; it
    /// replaces the old one at [`StripedWriter::finish`].
    pub fn writer(&self, name: &str) -> Result<StripedWriter, ClientError> {
        check_name(name)?;
        Ok(StripedWriter {
            io: self.clone(),
            name: name.to_string(),
            generation: new_generation(),
            piece_size: self.piece_size()?,
            head: Gathered::default(),
            current: Gathered::default(),
            next_piece: 1,
            size: 0,
            inflight: JoinSet::new(),
            failed: false,
        })
    }

    /// A writer for object `name` that does not exist and whose name is
    /// never used again (e.g. a gateway's data under a unique name): its
    /// pieces take [`FRESH_GENERATION`], so [`IoCtx::remove_fresh`] finds
    /// them even when the write never finished.
    pub fn fresh_writer(&self, name: &str) -> Result<StripedWriter, ClientError> {
        let mut w = self.writer(name)?;
        w.generation = FRESH_GENERATION;
        Ok(w)
    }

    /// Removes object `name` written by [`IoCtx::fresh_writer`], finished
    /// or not: the head if there is one, and every piece of
    /// [`FRESH_GENERATION`] (a writer that died may have left pieces but
    /// no head; they are probed for until a run of missing ones longer
    /// than the writer's window). Removing a removed object is a no-op.
    pub async fn remove_fresh(&self, name: &str) -> Result<(), ClientError> {
        check_name(name)?;
        match self.remove(name).await {
            Ok(()) | Err(ClientError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        // Twice the window in flight: a dead writer's pieces have no longer gap.
        let window = 2 * self.inner.opts.pieces_in_flight as u64 + 1;
        let mut k = 1;
        loop {
            let removals = (k..k + window).map(|k| {
                let piece = piece_name(name, piece_index(FRESH_GENERATION, k));
                async move {
                    match self.write_op(&piece, WriteOp::new().remove()).await {
                        Ok(_) => Ok(true),
                        Err(ClientError::NotFound(_)) => Ok(false),
                        Err(e) => Err(e),
                    }
                }
            });
            let found: Vec<bool> = stream::iter(removals)
                .buffer_unordered(window as usize)
                .try_collect()
                .await?;
            if !found.contains(&true) {
                return Ok(());
            }
            k += window;
        }
    }

    /// The whole of object `name`.
    pub async fn get(&self, name: &str) -> Result<Bytes, ClientError> {
        self.get_range(name, 0, u64::MAX).await
    }

    /// `len` bytes of object `name` from `off` (fewer at its end).
    pub async fn get_range(&self, name: &str, off: u64, len: u64) -> Result<Bytes, ClientError> {
        check_name(name)?;
        let end = off.saturating_add(len);
        for _ in 0..MAX_RESTARTS {
            let guess = self.piece_size()?;
            let first = (off < guess).then(|| (off, (end.min(guess)) - off));
            let h = self.head(name, first).await?;
            let head0 = if h.layout.piece_size == guess {
                h.data.clone()
            } else {
                None
            };
            let reader = StripedReader {
                io: self.clone(),
                name: name.to_string(),
                head: h,
            };
            // A plain object's "piece 0" is the whole object: read it whole.
            let head0 = head0.filter(|_| reader.head.raw.is_some());
            match reader.read_with(off, len, head0).await {
                Err(ClientError::Changed(_)) => continue,
                other => return other,
            }
        }
        Err(ClientError::Changed(name.to_string()))
    }

    /// A reader pinned to the current version of object `name` (for
    /// reading a large object in parts).
    pub async fn reader(&self, name: &str) -> Result<StripedReader, ClientError> {
        check_name(name)?;
        Ok(StripedReader {
            io: self.clone(),
            name: name.to_string(),
            head: self.head(name, None).await?,
        })
    }

    /// Removes object `name` and its pieces.
    pub async fn remove(&self, name: &str) -> Result<(), ClientError> {
        check_name(name)?;
        let head = head_name(name);
        for _ in 0..MAX_RESTARTS {
            let StoredLayout {
                raw,
                parsed: layout,
                ..
            } = self.current_layout(name).await?;
            let guard = raw.map_or(XattrCmp::Absent, XattrCmp::Eq);
            let op = WriteOp::new().cmp_xattr(LAYOUT_XATTR, guard).remove();
            match self.write_op(&head, op).await {
                Ok(_) => {
                    if let Some(l) = layout {
                        self.remove_generation(name, l.generation, 1..l.pieces())
                            .await;
                    }
                    return Ok(());
                }
                Err(e) if is_compare_failed(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Changed(name.to_string()))
    }

    /// The head's layout now.
    async fn current_layout(&self, name: &str) -> Result<StoredLayout, ClientError> {
        let r = self
            .read_op(&head_name(name), ReadOp::new().get_xattr(LAYOUT_XATTR))
            .await
            .map_err(|e| named(e, name))?;
        match r.outputs.into_iter().next() {
            Some(Output::Xattr(raw)) => Ok(StoredLayout {
                parsed: raw.as_deref().and_then(Layout::decode),
                raw,
                version: r.version,
            }),
            other => Err(ClientError::Protocol(format!(
                "expected an xattr, got {other:?}"
            ))),
        }
    }

    /// Removes pieces `ks` of generation `generation` (best effort: a
    /// piece left behind wastes space but is never read).
    async fn remove_generation(&self, name: &str, generation: u32, ks: std::ops::Range<u64>) {
        let n = self.inner.opts.pieces_in_flight;
        let removals = ks.map(|k| {
            let piece = piece_name(name, piece_index(generation, k));
            async move {
                match self.write_op(&piece, WriteOp::new().remove()).await {
                    Ok(_) | Err(ClientError::NotFound(_)) => {}
                    Err(e) => tracing::warn!(piece, error = %e, "stale piece not removed"),
                }
            }
        });
        stream::iter(removals)
            .buffer_unordered(n)
            .collect::<()>()
            .await;
    }

    /// A page of at most `limit` striped object names, from `cursor`.
    pub async fn list(&self, cursor: &ListCursor, limit: u32) -> Result<ObjectPage, ClientError> {
        self.list_filtered(cursor, limit, |n| {
            n.strip_suffix(HEAD_SUFFIX).map(str::to_string)
        })
        .await
    }

    /// Every striped object name of the pool.
    pub async fn list_all(&self) -> Result<Vec<String>, ClientError> {
        let mut out = Vec::new();
        let mut cursor = ListCursor::default();
        loop {
            let page = self.list(&cursor, 1000).await?;
            out.extend(page.names);
            match page.next {
                Some(c) => cursor = c,
                None => return Ok(out),
            }
        }
    }

    /// Sets user xattr `key` of object `name` (creating an empty object if
    /// there is none).
    pub async fn set_xattr(&self, name: &str, key: &str, value: &[u8]) -> Result<(), ClientError> {
        check_name(name)?;
        check_user_xattr(key)?;
        self.write_op(&head_name(name), WriteOp::new().set_xattr(key, value))
            .await
            .map(|_| ())
    }

    /// User xattr `key` of object `name`, if set.
    pub async fn get_xattr(&self, name: &str, key: &str) -> Result<Option<Vec<u8>>, ClientError> {
        check_name(name)?;
        check_user_xattr(key)?;
        let r = self
            .read_op(&head_name(name), ReadOp::new().get_xattr(key))
            .await?;
        match r.outputs.into_iter().next() {
            Some(Output::Xattr(v)) => Ok(v),
            other => Err(ClientError::Protocol(format!(
                "expected an xattr, got {other:?}"
            ))),
        }
    }

    /// Every user xattr of object `name`.
    pub async fn xattrs(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, ClientError> {
        check_name(name)?;
        let r = self
            .read_op(&head_name(name), ReadOp::new().get_xattrs())
            .await?;
        match r.outputs.into_iter().next() {
            Some(Output::Xattrs(mut v)) => {
                v.retain(|(k, _)| !k.starts_with(RESERVED_XATTR_PREFIX));
                Ok(v)
            }
            other => Err(ClientError::Protocol(format!(
                "expected xattrs, got {other:?}"
            ))),
        }
    }

    /// Removes user xattr `key` of object `name`.
    pub async fn remove_xattr(&self, name: &str, key: &str) -> Result<(), ClientError> {
        check_name(name)?;
        check_user_xattr(key)?;
        self.write_op(&head_name(name), WriteOp::new().remove_xattr(key))
            .await
            .map(|_| ())
    }

    /// Sets omap entries of object `name` (creating an empty object if
    /// there is none).
    pub async fn omap_set(
        &self,
        name: &str,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), ClientError> {
        check_name(name)?;
        self.write_op(&head_name(name), WriteOp::new().omap_set(entries))
            .await
            .map(|_| ())
    }

    /// Removes omap keys of object `name`.
    pub async fn omap_remove(&self, name: &str, keys: Vec<Vec<u8>>) -> Result<(), ClientError> {
        check_name(name)?;
        self.write_op(&head_name(name), WriteOp::new().omap_remove(keys))
            .await
            .map(|_| ())
    }

    /// Omap values of `keys` of object `name` (missing keys left out).
    pub async fn omap_get(
        &self,
        name: &str,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ClientError> {
        check_name(name)?;
        let r = self
            .read_op(&head_name(name), ReadOp::new().omap_get(keys))
            .await?;
        match r.outputs.into_iter().next() {
            Some(Output::Omap { entries, .. }) => Ok(entries),
            other => Err(ClientError::Protocol(format!(
                "expected omap, got {other:?}"
            ))),
        }
    }

    /// Omap entries of object `name` after `start_after` with `prefix`, at
    /// most `limit`; `true` when more follow.
    pub async fn omap_list(
        &self,
        name: &str,
        start_after: Option<Vec<u8>>,
        prefix: Vec<u8>,
        limit: u32,
    ) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, bool), ClientError> {
        check_name(name)?;
        let op = ReadOp::new().omap_list(start_after, prefix, limit);
        let r = self.read_op(&head_name(name), op).await?;
        match r.outputs.into_iter().next() {
            Some(Output::Omap { entries, more }) => Ok((entries, more)),
            other => Err(ClientError::Protocol(format!(
                "expected omap, got {other:?}"
            ))),
        }
    }
}

/// Reads one version of a striped object; fails with
/// [`ClientError::Changed`] once that version has been replaced.
pub struct StripedReader {
    io: IoCtx,
    name: String,
    head: Head,
}

impl StripedReader {
    /// The object's size.
    pub fn size(&self) -> u64 {
        self.head.layout.size
    }

    /// The version being read.
    pub fn version(&self) -> ObjVersion {
        self.head.version
    }

    /// `len` bytes from `off` (fewer at the end).
    pub async fn read(&self, off: u64, len: u64) -> Result<Bytes, ClientError> {
        self.read_with(off, len, None).await
    }

    /// Reads `[off, off + len)`; `head0` is piece 0's part of it if the
    /// caller already has it (read with the layout).
    async fn read_with(
        &self,
        off: u64,
        len: u64,
        head0: Option<Bytes>,
    ) -> Result<Bytes, ClientError> {
        let layout = self.head.layout;
        let end = off.saturating_add(len).min(layout.size);
        if off >= end {
            return Ok(Bytes::new());
        }
        let first = off / layout.piece_size;
        let last = (end - 1) / layout.piece_size;
        let n = self.io.inner.opts.pieces_in_flight;
        let mut head0 = head0;
        let reads = (first..=last).map(|k| {
            let given = if k == 0 { head0.take() } else { None };
            self.read_piece(k, off, end, given)
        });
        let parts: Vec<Bytes> = stream::iter(reads).buffered(n).try_collect().await?;
        Ok(shoal_net::concat(parts))
    }

    async fn read_piece(
        &self,
        k: u64,
        off: u64,
        end: u64,
        given: Option<Bytes>,
    ) -> Result<Bytes, ClientError> {
        let layout = self.head.layout;
        let (poff, plen) = layout.clip(k, off, end);
        let changed = || ClientError::Changed(self.name.clone());
        let data = match given {
            Some(d) => d,
            None if k == 0 => {
                // Piece 0 is rewritten in place: check it still goes with our layout.
                let op = ReadOp::new().get_xattr(LAYOUT_XATTR).read(poff, plen);
                let r = match self.io.read_op(&head_name(&self.name), op).await {
                    Err(ClientError::NotFound(_)) => return Err(changed()),
                    other => other?,
                };
                let mut outs = r.outputs.into_iter();
                match (outs.next(), outs.next()) {
                    (Some(Output::Xattr(raw)), Some(Output::Data(d))) if raw == self.head.raw => d,
                    (Some(Output::Xattr(_)), Some(Output::Data(_))) => return Err(changed()),
                    other => {
                        return Err(ClientError::Protocol(format!(
                            "unexpected answer {other:?}"
                        )));
                    }
                }
            }
            None => {
                let piece = piece_name(&self.name, piece_index(layout.generation, k));
                match self
                    .io
                    .read_op(&piece, ReadOp::new().read(poff, plen))
                    .await
                {
                    Ok(r) => match r.outputs.into_iter().next() {
                        Some(Output::Data(d)) => d,
                        other => {
                            return Err(ClientError::Protocol(format!(
                                "expected data, got {other:?}"
                            )));
                        }
                    },
                    Err(ClientError::NotFound(_)) => return Err(changed()),
                    Err(e) => return Err(e),
                }
            }
        };
        if data.len() as u64 != plen {
            // A piece of a replaced generation was being removed, or piece 0
            // was rewritten between our reads.
            return Err(changed());
        }
        Ok(data)
    }
}

/// Bytes gathered for one piece: the caller's buffer as is when one write
/// brings them all (no copy), else copied together.
#[derive(Default)]
struct Gathered {
    whole: Option<Bytes>,
    copied: BytesMut,
}

impl Gathered {
    fn len(&self) -> usize {
        self.whole.as_ref().map_or(self.copied.len(), Bytes::len)
    }

    fn push(&mut self, data: Bytes) {
        if self.len() == 0 {
            self.whole = Some(data);
            return;
        }
        if let Some(w) = self.whole.take() {
            self.copied.extend_from_slice(&w);
        }
        self.copied.extend_from_slice(&data);
    }

    fn take(&mut self) -> Bytes {
        match self.whole.take() {
            Some(w) => w,
            None => std::mem::take(&mut self.copied).freeze(),
        }
    }
}

/// Streams a new version of a striped object in: pieces 1.. are written
/// as they fill (a bounded number at once), the head last, at
/// [`StripedWriter::finish`]. Dropped without `finish`, the old version
/// stays and the pieces written so far are left unreferenced (call
/// [`StripedWriter::abort`] to remove them).
pub struct StripedWriter {
    io: IoCtx,
    name: String,
    generation: u32,
    piece_size: u64,
    head: Gathered,
    current: Gathered,
    next_piece: u64,
    size: u64,
    inflight: JoinSet<Result<(), ClientError>>,
    /// A write failed: its pieces are gone and the writer takes no more.
    failed: bool,
}

impl StripedWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Appends `data` to the new version. After a failure the pieces
    /// written so far are removed and the writer refuses further calls.
    pub async fn write(&mut self, data: Bytes) -> Result<(), ClientError> {
        self.check_usable()?;
        let r = self.write_inner(data).await;
        if r.is_err() {
            self.failed = true;
            self.discard().await;
        }
        r
    }

    fn check_usable(&self) -> Result<(), ClientError> {
        if self.failed {
            return Err(ClientError::Invalid(format!(
                "the writer of {:?} failed earlier; start a new one",
                self.name
            )));
        }
        Ok(())
    }

    async fn write_inner(&mut self, mut data: Bytes) -> Result<(), ClientError> {
        let ps = self.piece_size as usize;
        self.size = self
            .size
            .checked_add(data.len() as u64)
            .filter(|&s| s.div_ceil(self.piece_size) <= u64::from(u32::MAX))
            .ok_or_else(|| ClientError::Invalid("object too large for its piece size".into()))?;
        while !data.is_empty() {
            if self.next_piece == 1 && self.head.len() < ps {
                let take = (ps - self.head.len()).min(data.len());
                self.head.push(data.split_to(take));
                continue;
            }
            let take = (ps - self.current.len()).min(data.len());
            self.current.push(data.split_to(take));
            if self.current.len() == ps {
                let piece = self.current.take();
                self.send_piece(piece).await?;
            }
        }
        Ok(())
    }

    async fn send_piece(&mut self, data: Bytes) -> Result<(), ClientError> {
        while self.inflight.len() >= self.io.inner.opts.pieces_in_flight {
            self.join_one().await?;
        }
        let k = self.next_piece;
        self.next_piece += 1;
        let io = self.io.clone();
        let piece = piece_name(&self.name, piece_index(self.generation, k));
        self.inflight.spawn(async move {
            io.write_op(&piece, WriteOp::new().write_full(data))
                .await
                .map(|_| ())
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), ClientError> {
        match self.inflight.join_next().await {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(ClientError::Protocol(format!("piece writer failed: {e}"))),
        }
    }

    /// Writes what is left and switches the object to the new version.
    /// When that fails the new pieces are removed, unless the switch itself
    /// timed out (it may have happened: then they are the object).
    pub async fn finish(mut self) -> Result<ObjVersion, ClientError> {
        self.check_usable()?;
        if let Err(e) = self.flush().await {
            self.discard().await;
            return Err(e);
        }
        match self.switch().await {
            Err(e) if !matches!(e, ClientError::Timeout { .. }) => {
                self.discard().await;
                Err(e)
            }
            other => other,
        }
    }

    /// Gives up: removes the pieces written so far; the old version stays.
    pub async fn abort(mut self) {
        self.discard().await;
    }

    /// Stops the piece writes in flight and removes every piece started.
    async fn discard(&mut self) {
        self.inflight.abort_all();
        while self.inflight.join_next().await.is_some() {}
        self.io
            .remove_generation(&self.name, self.generation, 1..self.next_piece)
            .await;
    }

    fn layout(&self) -> Layout {
        Layout {
            generation: self.generation,
            size: self.size,
            piece_size: self.piece_size,
        }
    }

    /// Writes the last partial piece and waits for every piece.
    async fn flush(&mut self) -> Result<(), ClientError> {
        if self.current.len() > 0 {
            let piece = self.current.take();
            self.send_piece(piece).await?;
        }
        while !self.inflight.is_empty() {
            self.join_one().await?;
        }
        Ok(())
    }

    /// Switches the head to the new layout (guarded by the one replaced),
    /// then removes the replaced generation.
    async fn switch(&mut self) -> Result<ObjVersion, ClientError> {
        let layout = self.layout().encode();
        let head = head_name(&self.name);
        let data = self.head.take();
        // Most puts create objects: try that first, read the layout only if there is one.
        let mut guard = XattrCmp::Absent;
        let mut replaced: Option<Layout> = None;
        for _ in 0..MAX_RESTARTS {
            let op = WriteOp::new()
                .cmp_xattr(LAYOUT_XATTR, guard.clone())
                .write_full(data.clone())
                .set_xattr(LAYOUT_XATTR, layout.clone());
            match self.io.write_op(&head, op).await {
                Ok(version) => {
                    if let Some(old) = replaced {
                        self.io
                            .remove_generation(&self.name, old.generation, 1..old.pieces())
                            .await;
                    }
                    return Ok(version);
                }
                Err(e) if is_compare_failed(&e) => {
                    let (raw, parsed) = match self.io.current_layout(&self.name).await {
                        Err(ClientError::NotFound(_)) => (None, None),
                        Ok(now) if now.raw.as_deref() == Some(&layout[..]) => {
                            // Our own switch, applied by an earlier attempt whose
                            // answer was lost: done (and nothing of ours to remove).
                            return Ok(now.version);
                        }
                        Ok(now) => (now.raw, now.parsed),
                        Err(e) => return Err(e),
                    };
                    guard = raw.map_or(XattrCmp::Absent, XattrCmp::Eq);
                    replaced = parsed;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Changed(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_from_one_write_is_the_callers_buffer() {
        let data = Bytes::from(vec![1u8; 1000]);
        let mut g = Gathered::default();
        g.push(data.slice(..600));
        assert_eq!(g.len(), 600);
        assert_eq!(g.take().as_ptr(), data.as_ptr(), "not copied");
        assert_eq!(g.len(), 0);
        // Several writes are copied together, in order.
        g.push(data.slice(..10));
        g.push(Bytes::from_static(b"abc"));
        g.push(Bytes::from_static(b"de"));
        assert_eq!(g.len(), 15);
        let mut want = vec![1u8; 10];
        want.extend_from_slice(b"abcde");
        assert_eq!(g.take(), want);
    }

    #[test]
    fn layout_round_trips_and_refuses_garbage() {
        let l = Layout {
            generation: 0xdead_beef,
            size: 37 << 20,
            piece_size: 4 << 20,
        };
        assert_eq!(Layout::decode(&l.encode()), Some(l));
        assert_eq!(l.pieces(), 10);
        let mut bad = l.encode();
        bad[0] = b'X';
        assert_eq!(Layout::decode(&bad), None);
        assert_eq!(Layout::decode(&l.encode()[..20]), None);
        let zero = Layout { piece_size: 0, ..l };
        assert_eq!(Layout::decode(&zero.encode()), None);
        let huge = Layout {
            size: u64::MAX,
            piece_size: 1,
            ..l
        };
        assert_eq!(Layout::decode(&huge.encode()), None);
    }

    #[test]
    fn piece_names_carry_the_generation() {
        assert_eq!(head_name("a"), "a.0000000000000000");
        assert_eq!(
            piece_name("a", piece_index(0x1234, 3)),
            "a.0000123400000003"
        );
        assert_eq!(piece_index(7, 0), 0);
    }

    #[test]
    fn clipping_covers_exactly_the_range() {
        let l = Layout {
            generation: 1,
            size: 100,
            piece_size: 10,
        };
        assert_eq!(l.clip(0, 5, 100), (5, 5));
        assert_eq!(l.clip(3, 5, 35), (0, 5));
        assert_eq!(l.clip(2, 25, 27), (5, 2));
        // Every byte of a range is in exactly one piece.
        for off in 0..40 {
            for end in off + 1..=40 {
                let total: u64 = (off / 10..=(end - 1) / 10)
                    .map(|k| l.clip(k, off, end).1)
                    .sum();
                assert_eq!(total, end - off);
            }
        }
        assert_eq!(Layout::plain(0).pieces(), 1);
        assert_eq!(Layout::plain(5).clip(0, 1, 5), (1, 4));
    }
}
