//! `shoal-store`: the OSD's object store on one disk.
//!
//! Collections (one per PG) of objects with data (sparse, chunked,
//! checksummed with blake3), a size, a version, xattrs and an omap.
//! Transactions apply atomically and durably with group commit; new data
//! always goes to free space and becomes visible with one metadata commit
//! (copy-on-write), so no object is ever torn. See `docs/store.md`.

mod alloc;
mod cache;
mod chunkio;
mod commit;
pub mod config;
mod deferred;
pub mod device;
pub mod error;
mod keys;
pub mod meta;
mod recent;
mod stage;
mod store;
pub mod txn;
mod wal;

pub use config::{Backend, StoreConfig};
pub use error::{Result, StoreError};
pub use keys::prefix_end;
pub use meta::Version;
pub use store::{
    DEFAULT_CHUNK_SIZE, ObjectSnapshot, ObjectStat, ScrubError, ScrubReport, StatFs, Store,
};
pub use txn::{ChunkSums, NameRoute, Op, Transaction};
