//! Binary form of the maps: a 16-byte header (8-byte magic, u32 LE format
//! version, u32 LE payload length) followed by the rkyv archive of the
//! value. Decoding checks the header, copies the payload into an aligned
//! buffer (input may sit at any address), validates the archive with
//! bytecheck and deserializes it; callers then check semantic invariants.
//! Maps are built from ordered collections only, so equal values encode to
//! identical bytes.

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::{Error as RkyvError, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

use crate::error::MapError;
use crate::incremental::OsdMapIncremental;
use crate::osdmap::OsdMap;

/// Length of the header in front of every encoded map.
pub const HEADER_LEN: usize = 16;

/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What an encoding holds; each kind has its own magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    OsdMap,
    OsdMapIncremental,
    MonMap,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::OsdMap => b"SHOALOSD",
            Kind::OsdMapIncremental => b"SHOALINC",
            Kind::MonMap => b"SHOALMON",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::OsdMap => "SHOALOSD",
            Kind::OsdMapIncremental => "SHOALINC",
            Kind::MonMap => "SHOALMON",
        }
    }
}

/// Encodes `value` behind a header of `kind`; fails only if rkyv cannot
/// represent it (an archive above 2 GiB: rkyv's 32-bit relative pointers).
pub(crate) fn try_encode<T>(kind: Kind, value: &T) -> Result<Vec<u8>, MapError>
where
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, RkyvError>>,
{
    let payload =
        rkyv::to_bytes::<RkyvError>(value).map_err(|e| MapError::Corrupt(e.to_string()))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| MapError::Corrupt("archive above 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(kind.magic());
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// [`try_encode`], for values known to be far below rkyv's limits.
///
/// # Panics
/// If [`try_encode`] fails (an archive above 2 GiB), which no map this
/// crate accepts comes near.
pub(crate) fn encode<T>(kind: Kind, value: &T) -> Vec<u8>
where
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, RkyvError>>,
{
    match try_encode(kind, value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("encoding a map failed: {e}"),
    }
}

/// Checks the header of `kind` and decodes the validated payload.
pub(crate) fn decode<T>(kind: Kind, bytes: &[u8]) -> Result<T, MapError>
where
    T: rkyv::Archive,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, RkyvError>>
        + rkyv::Deserialize<T, Strategy<rkyv::de::Pool, RkyvError>>,
{
    let Some((header, payload)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(MapError::Truncated(format!(
            "{} bytes, header needs {HEADER_LEN}",
            bytes.len()
        )));
    };
    if &header[..8] != kind.magic() {
        return Err(MapError::BadMagic {
            expected: kind.name(),
        });
    }
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(MapError::UnsupportedVersion(version));
    }
    let len = word(12) as usize;
    if payload.len() != len {
        return Err(MapError::Truncated(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        )));
    }
    let mut aligned = AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    rkyv::from_bytes::<T, RkyvError>(&aligned).map_err(|e| MapError::Corrupt(e.to_string()))
}

impl OsdMap {
    /// Encodes the full map (header + rkyv). Equal maps give equal bytes.
    ///
    /// # Panics
    /// Only for a map whose archive exceeds 2 GiB; see [`OsdMap::try_encode`].
    pub fn encode(&self) -> Vec<u8> {
        encode(Kind::OsdMap, self)
    }

    /// [`OsdMap::encode`], reporting an oversized map as an error.
    pub fn try_encode(&self) -> Result<Vec<u8>, MapError> {
        try_encode(Kind::OsdMap, self)
    }

    /// Decodes a map produced by [`OsdMap::encode`], validating the archive
    /// and then the map's invariants ([`OsdMap::validate`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MapError> {
        let map: OsdMap = decode(Kind::OsdMap, bytes)?;
        map.validate()?;
        Ok(map)
    }
}

impl OsdMapIncremental {
    /// Encodes the incremental (header + rkyv).
    ///
    /// # Panics
    /// Only for an archive above 2 GiB; see [`OsdMapIncremental::try_encode`].
    pub fn encode(&self) -> Vec<u8> {
        encode(Kind::OsdMapIncremental, self)
    }

    /// [`OsdMapIncremental::encode`], reporting an oversized delta as an error.
    pub fn try_encode(&self) -> Result<Vec<u8>, MapError> {
        try_encode(Kind::OsdMapIncremental, self)
    }

    /// Decodes an incremental produced by [`OsdMapIncremental::encode`],
    /// validating the archive and then [`OsdMapIncremental::validate`].
    pub fn decode(bytes: &[u8]) -> Result<Self, MapError> {
        let inc: OsdMapIncremental = decode(Kind::OsdMapIncremental, bytes)?;
        inc.validate()?;
        Ok(inc)
    }
}
