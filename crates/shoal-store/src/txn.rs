//! Transactions: ops on one collection (and, for a PG split or merge, on
//! others with it), applied atomically and durably.

use std::sync::Arc;

use bytes::Bytes;

use crate::meta::Version;

/// Longest object name, in bytes.
pub const MAX_NAME: usize = 2048;
/// Largest object size.
pub const MAX_OBJECT_SIZE: u64 = 1 << 36;
/// Largest xattr value.
pub const MAX_XATTR: usize = 64 << 10;
/// Largest omap key or value.
pub const MAX_OMAP_ITEM: usize = 1 << 20;

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create the collection.
    CreateCollection,
    /// Remove the (empty) collection.
    RemoveCollection,
    /// Replace the collection's metadata record (PG log and info).
    SetCollectionMeta(Vec<u8>),
    /// Create the object if missing.
    Touch { name: String },
    /// Write `data` at `offset`, growing the object if needed.
    Write {
        name: String,
        offset: u64,
        data: Bytes,
    },
    /// Replace the object's data with `data`. `sums`, when given and made
    /// with this store's chunk size, are trusted as the chunks' checksums
    /// instead of hashing the data again (a PG's head hashes a write once
    /// for the whole chain).
    WriteFull {
        name: String,
        data: Bytes,
        sums: Option<ChunkSums>,
    },
    /// Turn `offset..offset+len` into zeros (holes where whole chunks).
    Zero { name: String, offset: u64, len: u64 },
    /// Set the object's size, dropping or adding (zero) bytes at the end.
    Truncate { name: String, size: u64 },
    /// Remove the object, its xattrs and omap.
    Remove { name: String },
    /// Copy-on-write copy of `src` (data, xattrs, omap) to `dst`.
    Clone { src: String, dst: String },
    /// Set an xattr.
    SetXattr {
        name: String,
        key: String,
        value: Vec<u8>,
    },
    /// Remove an xattr.
    RemoveXattr { name: String, key: String },
    /// Set omap entries.
    OmapSet {
        name: String,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Remove omap keys.
    OmapRemove { name: String, keys: Vec<Vec<u8>> },
    /// Remove every omap entry.
    OmapClear { name: String },
    /// Record the object's version.
    SetVersion { name: String, version: Version },
    /// Move every object of the collection that `route` sends elsewhere
    /// to the collection it names (data, xattrs, omap, version; no data is
    /// copied), in one pass over the collection. Each destination must
    /// exist (it may be created earlier in the same transaction) and hold
    /// no object of the same name. A PG split moves a parent's objects into
    /// its children this way.
    MoveObjects { route: NameRoute },
    /// Ops on another collection, applied with the rest of the transaction
    /// all or nothing (no `On` inside).
    On { collection: String, ops: Vec<Op> },
}

/// The function behind a [`NameRoute`].
type RouteFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where [`Op::MoveObjects`] sends each object, by name (`None`: it stays).
#[derive(Clone)]
pub struct NameRoute(Arc<RouteFn>);

impl NameRoute {
    /// A route sending each object where `f` says.
    pub fn new(f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        NameRoute(Arc::new(f))
    }

    /// The collection `name` moves to, if any.
    pub fn destination(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for NameRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameRoute(..)")
    }
}

/// Routes are equal only when they are the same route.
impl PartialEq for NameRoute {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NameRoute {}

/// The blake3 checksums of data cut into chunks of `chunk_size` bytes (the
/// last one may be shorter), as the store keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkSums {
    /// The chunk size the data was cut by.
    pub chunk_size: u64,
    /// One checksum per chunk, in order.
    pub sums: Arc<[[u8; 32]]>,
}

impl ChunkSums {
    /// Hashes `data` chunk by chunk (`chunk_size` must not be zero).
    pub fn compute(data: &[u8], chunk_size: u64) -> Self {
        let sums = data
            .chunks(chunk_size.max(1) as usize)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect();
        ChunkSums { chunk_size, sums }
    }

    /// Whether these are the checksums of `len` bytes cut by `chunk_size`.
    pub fn fits(&self, len: usize, chunk_size: u64) -> bool {
        self.chunk_size == chunk_size
            && chunk_size > 0
            && self.sums.len() as u64 == (len as u64).div_ceil(chunk_size)
    }
}

/// Ops on one collection (one PG), applied all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    /// The collection.
    pub collection: String,
    /// The ops, in order.
    pub ops: Vec<Op>,
    /// May use the reserved space (deletes and recovery).
    pub use_reserve: bool,
}

impl Transaction {
    /// An empty transaction on `collection`.
    pub fn new(collection: impl Into<String>) -> Self {
        Transaction {
            collection: collection.into(),
            ops: Vec::new(),
            use_reserve: false,
        }
    }

    /// Adds an op.
    pub fn push(&mut self, op: Op) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Adds a write at an offset.
    pub fn write(&mut self, name: &str, offset: u64, data: impl Into<Bytes>) -> &mut Self {
        self.push(Op::Write {
            name: name.into(),
            offset,
            data: data.into(),
        })
    }

    /// Adds a whole-object write.
    pub fn write_full(&mut self, name: &str, data: impl Into<Bytes>) -> &mut Self {
        self.push(Op::WriteFull {
            name: name.into(),
            data: data.into(),
            sums: None,
        })
    }

    /// Adds a removal.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.push(Op::Remove { name: name.into() })
    }

    /// Bytes of data the transaction carries (for batching limits).
    pub fn data_bytes(&self) -> usize {
        data_bytes(&self.ops)
    }
}

fn data_bytes(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Write { data, .. } | Op::WriteFull { data, .. } => data.len(),
            Op::On { ops, .. } => data_bytes(ops),
            _ => 0,
        })
        .sum()
}
