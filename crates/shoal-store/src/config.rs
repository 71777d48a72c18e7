//! Store configuration.

use std::path::PathBuf;

/// Which data-path implementation to use. Both use the same on-disk format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// io_uring when the kernel allows it, else the thread pool (logged once).
    #[default]
    Auto,
    /// io_uring; opening fails where it is unavailable.
    IoUring,
    /// Positional reads and writes from a pool of threads.
    ThreadPool,
}

impl Backend {
    /// `SHOAL_STORE_BACKEND` (`io_uring`, `thread-pool` or `auto`), so a
    /// whole test suite can be run against either backend.
    pub fn from_env() -> Self {
        match std::env::var("SHOAL_STORE_BACKEND").as_deref() {
            Ok("io_uring") | Ok("io-uring") => Backend::IoUring,
            Ok("thread-pool") | Ok("threadpool") => Backend::ThreadPool,
            _ => Backend::Auto,
        }
    }
}

/// How to open or create a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Directory holding `meta.redb` (and `data` unless `device` is set).
    pub dir: PathBuf,
    /// A block device or file to use for data instead of `dir/data`.
    pub device: Option<PathBuf>,
    /// Size of the data file created by `mkfs` (ignored for block devices).
    pub data_size: u64,
    /// Bytes kept free for deletes and recovery: ordinary writes that would
    /// dip into them fail with `NoSpace`.
    pub reserve: u64,
    /// Data-path implementation.
    pub backend: Backend,
    /// Most transactions committed together by one sync.
    pub max_batch: usize,
    /// Checksum block ("chunk") size used by `mkfs`; recorded in the store.
    pub chunk_size: u64,
    /// Memory for recently written small extents, so repeated small
    /// overwrites of a chunk need not read it back (0 disables).
    pub recent_cache_bytes: usize,
    /// Size of the write-ahead log file made by `mkfs` (at least 16 MiB).
    pub wal_size: u64,
    /// Memory for verified chunks of small reads (hot small objects are
    /// served without device IO; 0 disables).
    pub read_cache_bytes: u64,
}

impl StoreConfig {
    /// A config for `dir` with a data file of `data_size` bytes and a 1%
    /// (at most 1 GiB) reserve.
    pub fn new(dir: impl Into<PathBuf>, data_size: u64) -> Self {
        StoreConfig {
            dir: dir.into(),
            device: None,
            data_size,
            reserve: (data_size / 100).min(1 << 30),
            backend: Backend::from_env(),
            max_batch: 256,
            chunk_size: crate::DEFAULT_CHUNK_SIZE,
            recent_cache_bytes: 128 << 20,
            wal_size: 64 << 20,
            read_cache_bytes: 256 << 20,
        }
    }

    /// The write-ahead log file.
    pub fn wal_path(&self) -> PathBuf {
        self.dir.join("wal")
    }

    /// Where the data lives.
    pub fn data_path(&self) -> PathBuf {
        self.device.clone().unwrap_or_else(|| self.dir.join("data"))
    }

    /// Where the metadata lives.
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join("meta.redb")
    }
}
