//! A cache of verified chunk data for small reads (hot small objects, like
//! BlueStore's buffer cache). Entries are keyed by content — the chunk's
//! blake3 and length as the metadata records them — so an entry can never
//! be stale: a chunk rewritten elsewhere, or an extent freed and reused,
//! has another checksum, and the old entry is simply not found again and
//! ages out. Large reads bypass it (they stream, and would evict the hot set).

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::chunkio::chunk_range;
use crate::meta::Chunk;

/// Reads up to this many bytes use the cache.
pub const MAX_CACHED_READ: u64 = 64 << 10;

type Key = (u32, [u8; 32]);

#[derive(Clone)]
struct ByLen;

impl Weighter<Key, Bytes> for ByLen {
    fn weight(&self, _key: &Key, value: &Bytes) -> u64 {
        value.len().max(1) as u64
    }
}

/// Verified chunk bytes by content, bounded in bytes.
pub struct ChunkCache {
    cache: Option<Cache<Key, Bytes, ByLen>>,
}

fn key(c: &Chunk) -> Key {
    (c.len, c.csum)
}

impl ChunkCache {
    /// A cache of at most `bytes` bytes of chunk data (0 disables it).
    pub fn new(bytes: u64) -> Self {
        let cache = (bytes > 0).then(|| {
            // Sized for 8 KiB chunks; quick_cache grows past the estimate.
            let items = (bytes / 8192).clamp(16, 1 << 20) as usize;
            Cache::with_weighter(items, bytes, ByLen)
        });
        ChunkCache { cache }
    }

    /// The logical bytes `start..end` when every chunk covering them is
    /// cached (and none is missing: holes are left to the device path).
    pub fn read(&self, chunks: &[Chunk], chunk_size: u64, start: u64, end: u64) -> Option<Bytes> {
        let cache = self.cache.as_ref()?;
        let mut parts = Vec::new();
        let mut at = start;
        for c in chunks {
            let r = chunk_range(c, chunk_size);
            if r.end <= at {
                continue;
            }
            if r.start > at || at >= end {
                break;
            }
            let data = cache.get(&key(c))?;
            let upto = r.end.min(end);
            parts.push(data.slice((at - r.start) as usize..(upto - r.start) as usize));
            at = upto;
        }
        if at < end {
            return None;
        }
        if parts.len() == 1 {
            return parts.pop();
        }
        let mut out = bytes::BytesMut::with_capacity((end - start) as usize);
        for p in &parts {
            out.extend_from_slice(p);
        }
        Some(out.freeze())
    }

    /// Remembers the chunks lying wholly inside `start..start + data.len()`,
    /// whose verified logical bytes `data` holds.
    pub fn insert(&self, chunks: &[Chunk], chunk_size: u64, start: u64, data: &[u8]) {
        let Some(cache) = self.cache.as_ref() else {
            return;
        };
        let end = start + data.len() as u64;
        for c in chunks {
            let r = chunk_range(c, chunk_size);
            if r.start >= start && r.end <= end {
                let bytes = &data[(r.start - start) as usize..(r.end - start) as usize];
                cache.insert(key(c), Bytes::copy_from_slice(bytes));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(index: u64, data: &[u8]) -> Chunk {
        Chunk {
            index,
            phys: index * 8192,
            len: data.len() as u32,
            csum: *blake3::hash(data).as_bytes(),
        }
    }

    #[test]
    fn hits_need_every_chunk_and_content_keys_never_go_stale() {
        let cache = ChunkCache::new(1 << 20);
        let a = vec![1u8; 8192];
        let b = vec![2u8; 100];
        let chunks = [chunk(0, &a), chunk(1, &b)];
        let mut whole = a.clone();
        whole.extend_from_slice(&b);
        assert!(cache.read(&chunks, 8192, 0, 8292).is_none());
        cache.insert(&chunks, 8192, 0, &whole);
        assert_eq!(&cache.read(&chunks, 8192, 0, 8292).unwrap()[..], &whole[..]);
        assert_eq!(
            &cache.read(&chunks, 8192, 8190, 8200).unwrap()[..],
            &whole[8190..8200]
        );
        // The second chunk rewritten: its new checksum misses.
        let b2 = vec![3u8; 100];
        let rewritten = [chunk(0, &a), chunk(1, &b2)];
        assert!(cache.read(&rewritten, 8192, 0, 8292).is_none());
        assert!(
            cache.read(&rewritten, 8192, 0, 8192).is_some(),
            "the unchanged chunk still hits"
        );
        // A hole (missing chunk) is not served from the cache.
        let holey = [chunk(1, &b)];
        assert!(cache.read(&holey, 8192, 0, 8292).is_none());
        // Disabled: never a hit.
        let off = ChunkCache::new(0);
        off.insert(&chunks, 8192, 0, &whole);
        assert!(off.read(&chunks, 8192, 0, 8292).is_none());
    }
}
