//! Cluster identity and map versions.

use std::fmt;
use std::str::FromStr;

use rkyv::{Archive, Deserialize, Serialize};

use crate::error::MapError;

/// A map version. Every change to a map produces the next epoch.
pub type Epoch = u32;

/// The cluster id: 16 bytes, printed and parsed like a UUID
/// (`8-4-4-4-12` lower-case hex digits).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Archive,
    Serialize,
    Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct Fsid(pub [u8; 16]);

impl Fsid {
    /// The all-zero fsid (used by tools that do not care).
    pub const ZERO: Fsid = Fsid([0; 16]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Fsid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for Fsid {
    type Err = MapError;

    /// Accepts the hyphenated UUID form or 32 bare hex digits.
    fn from_str(s: &str) -> Result<Self, MapError> {
        let err = || MapError::parse("fsid", s);
        let hex: Vec<u8> = if s.len() == 36 {
            let bytes = s.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
                return Err(err());
            }
            bytes.iter().copied().filter(|&c| c != b'-').collect()
        } else {
            s.as_bytes().to_vec()
        };
        if hex.len() != 32 {
            return Err(err());
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]).ok_or_else(err)?;
            let lo = hex_digit(pair[1]).ok_or_else(err)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Fsid(out))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

impl serde::Serialize for Fsid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fsid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsid_round_trip() {
        let text = "0123abcd-4567-89ef-0011-223344556677";
        let fsid: Fsid = text.parse().unwrap();
        assert_eq!(fsid.to_string(), text);
        assert_eq!(
            "0123abcd456789ef0011223344556677".parse::<Fsid>().unwrap(),
            fsid
        );
        for bad in [
            "",
            "0123",
            "0123abcd+4567-89ef-0011-223344556677",
            "g123abcd456789ef0011223344556677",
        ] {
            assert!(bad.parse::<Fsid>().is_err(), "{bad}");
        }
    }
}
