//! Metadata records and the redb tables that hold them.

use std::collections::BTreeMap;

use redb::TableDefinition;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::txn::MAX_OBJECT_SIZE;

/// Collections: collection key -> the collection's metadata record (the PG
/// log and PG info live there).
pub const COLLECTIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("collections");
/// Objects: object key -> encoded [`ObjectMeta`].
pub const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// Omap entries: object key + omap key -> value.
pub const OMAP: TableDefinition<&[u8], &[u8]> = TableDefinition::new("omap");
/// Extents referenced more than once (after clones): physical offset -> count.
pub const REFS: TableDefinition<u64, u64> = TableDefinition::new("refs");
/// Store-wide facts: format version, chunk size, data size (fixed at
/// mkfs), and the write-ahead log checkpoint (`wal_seq`, `wal_pos`).
pub const SUPER: TableDefinition<&str, u64> = TableDefinition::new("super");

/// Smallest chunk size (and the block size).
pub const MIN_CHUNK: u64 = 4096;
/// Largest chunk size.
pub const MAX_CHUNK: u64 = 4 << 20;

/// On-disk format version written by this code.
pub const FORMAT: u64 = 3;

/// An object version: the map epoch of the write and a sequence number.
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord,
)]
pub struct Version {
    /// OSDMap epoch the write was ordered in.
    pub epoch: u32,
    /// Sequence number within the PG.
    pub seq: u64,
}

/// One stored chunk of an object's data.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Chunk number: covers logical bytes `index * chunk_size ..`.
    pub index: u64,
    /// Byte offset of the chunk on the data device (block aligned).
    pub phys: u64,
    /// Valid bytes stored (the rest of the chunk reads as zeros).
    pub len: u32,
    /// blake3 of the valid bytes.
    pub csum: [u8; 32],
}

/// Everything the store knows about an object except its omap.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Logical size in bytes.
    pub size: u64,
    /// Version of the last change.
    pub version: Version,
    /// Small named values.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Stored chunks, by ascending index; absent chunks are holes.
    pub chunks: Vec<Chunk>,
}

impl ObjectMeta {
    /// Encodes for the metadata database.
    pub fn encode(&self) -> Result<Vec<u8>> {
        rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map(|b| b.to_vec())
            .map_err(|e| StoreError::Meta(format!("encoding object metadata: {e}")))
    }

    /// Decodes, validating the bytes and then the record's sense: sizes and
    /// chunk indices in range (so `index * chunk_size` cannot overflow),
    /// chunks in strictly ascending order, device offsets block aligned.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        let meta = rkyv::from_bytes::<ObjectMeta, rkyv::rancor::Error>(&aligned)
            .map_err(|e| StoreError::CorruptMeta(format!("object metadata: {e}")))?;
        meta.check()?;
        Ok(meta)
    }

    fn check(&self) -> Result<()> {
        let bad = |why: String| Err(StoreError::CorruptMeta(format!("object metadata: {why}")));
        if self.size > MAX_OBJECT_SIZE {
            return bad(format!("size {} above the maximum", self.size));
        }
        let mut prev: Option<u64> = None;
        for c in &self.chunks {
            if c.index > MAX_OBJECT_SIZE / MIN_CHUNK {
                return bad(format!("chunk index {} out of range", c.index));
            }
            if prev.is_some_and(|p| p >= c.index) {
                return bad("chunks out of order".into());
            }
            if c.len == 0 || u64::from(c.len) > MAX_CHUNK || c.phys % MIN_CHUNK != 0 {
                return bad(format!(
                    "chunk {} has length {} at {}",
                    c.index, c.len, c.phys
                ));
            }
            prev = Some(c.index);
        }
        Ok(())
    }

    /// Position of chunk `index` in `chunks`.
    pub fn chunk_pos(&self, index: u64) -> std::result::Result<usize, usize> {
        self.chunks.binary_search_by_key(&index, |c| c.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(chunks: Vec<(u64, u64, u32)>) -> ObjectMeta {
        ObjectMeta {
            size: 1 << 20,
            chunks: chunks
                .into_iter()
                .map(|(index, phys, len)| Chunk {
                    index,
                    phys,
                    len,
                    csum: [0; 32],
                })
                .collect(),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn nonsense_records_are_corrupt_not_panics() {
        let ok = meta(vec![(0, 0, 4096), (3, 8192, 100)]);
        assert_eq!(ObjectMeta::decode(&ok.encode().unwrap()).unwrap(), ok);
        for bad in [
            meta(vec![(u64::MAX, 0, 4096)]),
            meta(vec![(2, 0, 4096), (1, 4096, 4096)]),
            meta(vec![(1, 0, 4096), (1, 4096, 4096)]),
            meta(vec![(0, 100, 4096)]),
            meta(vec![(0, 0, 0)]),
            meta(vec![(0, 0, u32::MAX)]),
            ObjectMeta {
                size: u64::MAX,
                ..ObjectMeta::default()
            },
        ] {
            assert!(matches!(
                ObjectMeta::decode(&bad.encode().unwrap()),
                Err(StoreError::CorruptMeta(_))
            ));
        }
        assert!(ObjectMeta::decode(b"not a record").is_err());
    }
}
