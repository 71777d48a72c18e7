//! Shoal's binary form of a [`CrushMap`]: an 8-byte header (magic `SHCM` and
//! a little-endian `u32` format version) followed by the map archived with
//! rkyv. Decoding validates the archive (bytecheck) and then the map's
//! invariants, so corrupt input yields a [`CodecError`], never a panic.

mod validate;

use rkyv::rancor;
use rkyv::util::AlignedVec;
use thiserror::Error;

use crate::model::CrushMap;

pub use validate::{MAX_STEP_NUM, MAX_TRIES, validate};

/// The first four bytes of an encoded map.
pub const MAGIC: [u8; 4] = *b"SHCM";

/// The format version written after [`MAGIC`].
pub const VERSION: u32 = 1;

const HEADER_LEN: usize = 8;

/// Why bytes could not be decoded into a map.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// Fewer bytes than the header.
    #[error("truncated: {0} bytes, the header alone is {HEADER_LEN}")]
    Truncated(usize),
    /// The bytes do not start with [`MAGIC`].
    #[error("not a Shoal CRUSH map (bad magic)")]
    BadMagic,
    /// A format version this code does not read.
    #[error("unsupported format version {0} (expected {VERSION})")]
    UnsupportedVersion(u32),
    /// The rkyv archive is malformed.
    #[error("malformed archive: {0}")]
    Archive(String),
    /// The archive is well formed but the map breaks an invariant.
    #[error("invalid map: {0}")]
    Invalid(String),
}

/// Encodes a map: header, then the rkyv archive.
///
/// # Panics
///
/// Only if rkyv cannot serialize the map, which happens only for maps
/// too large for its 32-bit relative pointers (about 2 GiB); use
/// [`try_encode`] to get an error instead.
pub fn encode(map: &CrushMap) -> Vec<u8> {
    match try_encode(map) {
        Ok(bytes) => bytes,
        Err(e) => panic!("encoding a CRUSH map failed: {e}"),
    }
}

/// Encodes a map, reporting rkyv serialization failures as errors.
///
/// # Errors
///
/// [`CodecError::Archive`] if rkyv cannot serialize the map.
pub fn try_encode(map: &CrushMap) -> Result<Vec<u8>, CodecError> {
    let archive =
        rkyv::to_bytes::<rancor::Error>(map).map_err(|e| CodecError::Archive(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + archive.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&archive);
    Ok(out)
}

/// Decodes and validates a map written by [`encode`].
///
/// Checks the header, validates the archive with bytecheck, deserializes it,
/// then checks the map invariants with [`validate`].
///
/// # Errors
///
/// A short or foreign header, an unknown version, a malformed archive, or a
/// map that breaks an invariant; see [`CodecError`].
pub fn decode(bytes: &[u8]) -> Result<CrushMap, CodecError> {
    if bytes.len() < HEADER_LEN {
        return Err(CodecError::Truncated(bytes.len()));
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    if header[..4] != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let version = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if version != VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let mut aligned: AlignedVec = AlignedVec::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    let map = rkyv::from_bytes::<CrushMap, rancor::Error>(&aligned)
        .map_err(|e| CodecError::Archive(e.to_string()))?;
    validate(&map)?;
    Ok(map)
}
