//! The error type of every fallible operation in this crate.

use crate::ids::{Epoch, Fsid};
use crate::pg::PgId;

/// Everything that can go wrong while building, editing, applying, encoding
/// or decoding cluster maps, or mapping objects with them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The pool does not exist in this map.
    #[error("pool {0} does not exist")]
    NoSuchPool(i64),
    /// The OSD does not exist in this map.
    #[error("osd.{0} does not exist")]
    NoSuchOsd(i32),
    /// An OSD with this id already exists.
    #[error("osd.{0} already exists")]
    OsdExists(i32),
    /// An OSD id outside `0..max_osd` (or beyond [`crate::MAX_OSDS`]).
    #[error("osd id {0} out of range")]
    OsdOutOfRange(i32),
    /// A reweight above `0x10000` (1.0).
    #[error("reweight {0:#x} above 0x10000")]
    BadWeight(u32),
    /// The incremental is not the next epoch of this map.
    #[error("epoch mismatch: map is at epoch {current}, incremental brings epoch {got}")]
    EpochMismatch {
        /// The map's current epoch.
        current: Epoch,
        /// The epoch the incremental would produce.
        got: Epoch,
    },
    /// The incremental (or next map) belongs to another cluster.
    #[error("fsid mismatch: map {map}, update {got}")]
    FsidMismatch {
        /// The map's fsid.
        map: Fsid,
        /// The update's fsid.
        got: Fsid,
    },
    /// A pool failed validation.
    #[error("invalid pool {id}: {reason}")]
    InvalidPool {
        /// The pool id.
        id: i64,
        /// What is wrong.
        reason: String,
    },
    /// A PG table entry (upmap, pg_temp, primary_temp) is invalid.
    #[error("invalid entry for pg {pg}: {reason}")]
    InvalidPgEntry {
        /// The PG.
        pg: PgId,
        /// What is wrong.
        reason: String,
    },
    /// The CRUSH map breaks one of its structural invariants.
    #[error("invalid CRUSH map: {0}")]
    Crush(#[from] shoal_crush::codec::CodecError),
    /// The map (or incremental) breaks an invariant.
    #[error("invalid map: {0}")]
    Invalid(String),
    /// The encoded bytes are too short for the header or the payload.
    #[error("truncated encoding: {0}")]
    Truncated(String),
    /// The encoded bytes start with another object's magic.
    #[error("bad magic: expected {expected:?}")]
    BadMagic {
        /// The magic this decoder accepts.
        expected: &'static str,
    },
    /// The encoding version is not one this code reads.
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u32),
    /// The payload failed rkyv validation.
    #[error("corrupt encoding: {0}")]
    Corrupt(String),
    /// Text that should name a PG, fsid, address or location does not.
    #[error("cannot parse {what} from {input:?}")]
    Parse {
        /// What was expected (`pg id`, `fsid`, ...).
        what: &'static str,
        /// The offending text.
        input: String,
    },
}

impl MapError {
    pub(crate) fn parse(what: &'static str, input: &str) -> Self {
        MapError::Parse {
            what,
            input: input.chars().take(128).collect(),
        }
    }
}
