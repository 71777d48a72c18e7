//! The monitor's errors.

use thiserror::Error;

/// What can go wrong inside a monitor.
#[derive(Debug, Error)]
pub enum MonError {
    /// The on-disk store failed or holds something unreadable.
    #[error("monitor store: {0}")]
    Store(String),
    /// Encoding or decoding a message or value failed.
    #[error(transparent)]
    Net(#[from] shoal_net::NetError),
    /// A map failed to decode or apply.
    #[error(transparent)]
    Map(#[from] shoal_map::MapError),
    /// The Paxos core refused (inconsistent persisted state).
    #[error(transparent)]
    Paxos(#[from] shoal_paxos::PaxosError),
    /// The Paxos core did not take a proposal (not leader, queue full).
    #[error(transparent)]
    Propose(#[from] shoal_paxos::ProposeError),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl MonError {
    /// An IO error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MonError::Io {
            context: context.into(),
            source,
        }
    }
}

macro_rules! store_err {
    ($($t:ty),*) => {$(
        impl From<$t> for MonError {
            fn from(e: $t) -> Self {
                MonError::Store(e.to_string())
            }
        }
    )*};
}

store_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
