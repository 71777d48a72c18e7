//! What can go wrong in the store.

use std::ops::Range;

use thiserror::Error;

/// A store error. Transactions that fail change nothing.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The transaction needs more space than is free (above the reserve).
    #[error("no space: need {needed} bytes, {available} available")]
    NoSpace {
        /// Bytes the transaction would allocate.
        needed: u64,
        /// Bytes it may use.
        available: u64,
    },
    /// Stored data does not match its checksum: the bytes are not returned.
    #[error("corrupt data in {collection}/{object} bytes {}..{}", range.start, range.end)]
    Corrupt {
        /// Collection of the object.
        collection: String,
        /// Object name.
        object: String,
        /// Logical byte range whose checksum failed.
        range: Range<u64>,
    },
    /// No such collection.
    #[error("no collection {0}")]
    NoCollection(String),
    /// The collection exists already.
    #[error("collection {0} exists")]
    CollectionExists(String),
    /// The collection still holds objects.
    #[error("collection {0} is not empty")]
    CollectionNotEmpty(String),
    /// No such object.
    #[error("no object {1} in {0}")]
    NoObject(String, String),
    /// A move would put an object where one of that name already is.
    #[error("object {1} exists in {0}")]
    ObjectExists(String, String),
    /// A request outside what the store supports.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The metadata database failed.
    #[error("metadata: {0}")]
    Meta(String),
    /// Metadata that does not decode: the store refuses to guess.
    #[error("corrupt metadata: {0}")]
    CorruptMeta(String),
    /// Device IO failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The store is shutting down.
    #[error("store closed")]
    Closed,
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

macro_rules! meta_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Meta(e.to_string())
            }
        }
    )*};
}
meta_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
