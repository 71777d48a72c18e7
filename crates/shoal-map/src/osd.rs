//! Per-OSD state kept in the OSDMap, and CRUSH locations.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use rkyv::{Archive, Deserialize, Serialize};
use shoal_crush::CrushMap;

use crate::error::MapError;

/// Reweight of an OSD that is fully "in" (1.0 in 16.16 fixed point).
pub const WEIGHT_IN: u32 = 0x10000;
/// Reweight of an OSD that is "out".
pub const WEIGHT_OUT: u32 = 0;

/// Where an OSD sits in the CRUSH hierarchy: `(type name, bucket name)`
/// pairs from its immediate parent up to the root, printed like Ceph's
/// `crush_location` setting: `host=h1 rack=r1 root=default`.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
#[serde(transparent)]
pub struct CrushLocation(pub Vec<(String, String)>);

impl CrushLocation {
    /// The bucket name for a type name (`host` -> `h1`), if present.
    pub fn get(&self, type_name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(t, _)| t == type_name)
            .map(|(_, b)| b.as_str())
    }

    /// Derives the location of `item` from the hierarchy of `crush`: walks
    /// from the item to the root through the first non-shadow bucket that
    /// lists it at each level. Unknown type ids print as `type<N>`.
    pub fn from_crush(crush: &CrushMap, item: i32) -> Self {
        Self::from_parents(crush, &parent_index(crush), item)
    }

    pub(crate) fn from_parents(crush: &CrushMap, parents: &HashMap<i32, i32>, item: i32) -> Self {
        let mut out = Vec::new();
        let mut cur = item;
        // A well-formed hierarchy is a forest; the bound guards against cycles.
        for _ in 0..crush.buckets.len() {
            let Some(bucket) = parents.get(&cur).and_then(|&p| crush.bucket(p)) else {
                break;
            };
            let type_name = crush
                .type_name(bucket.type_id)
                .map_or_else(|| format!("type{}", bucket.type_id), str::to_owned);
            out.push((type_name, bucket.name.clone()));
            cur = bucket.id;
        }
        CrushLocation(out)
    }
}

/// Child id -> id of the first non-shadow bucket (in id order -1, -2, ...)
/// listing it, like Ceph's `get_immediate_parent`.
pub(crate) fn parent_index(crush: &CrushMap) -> HashMap<i32, i32> {
    let mut parents = HashMap::new();
    for bucket in crush.buckets.iter().flatten().filter(|b| !b.is_shadow()) {
        for &item in &bucket.items {
            parents.entry(item).or_insert(bucket.id);
        }
    }
    parents
}

impl fmt::Display for CrushLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (t, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{t}={b}")?;
        }
        Ok(())
    }
}

impl FromStr for CrushLocation {
    type Err = MapError;

    /// Parses whitespace-separated `type=name` pairs (empty text is the
    /// empty location).
    fn from_str(s: &str) -> Result<Self, MapError> {
        s.split_whitespace()
            .map(|pair| match pair.split_once('=') {
                Some((t, b)) if !t.is_empty() && !b.is_empty() && !b.contains('=') => {
                    Ok((t.to_owned(), b.to_owned()))
                }
                _ => Err(MapError::parse("crush location", s)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(CrushLocation)
    }
}

/// What the map records about an existing OSD besides its reweight (kept in
/// a separate vector so CRUSH can read all reweights as one slice).
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct OsdInfo {
    /// Where the OSD listens; `None` until it has booted.
    pub addr: Option<SocketAddr>,
    /// Up (running and reachable) or down.
    pub up: bool,
    /// Its place in the CRUSH hierarchy.
    pub location: CrushLocation,
    /// The epoch of its latest boot: a restarted OSD lost what it held in
    /// memory, so PGs it serves start a new interval even when the OSD was
    /// never marked down in between.
    #[serde(default)]
    pub up_from: u32,
}

impl OsdInfo {
    /// An OSD that is up, with no address, at `location`.
    pub fn up_at(location: CrushLocation) -> Self {
        OsdInfo {
            addr: None,
            up: true,
            location,
            up_from: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_text() {
        let loc: CrushLocation = "host=h1  rack=r1 root=default".parse().unwrap();
        assert_eq!(loc.to_string(), "host=h1 rack=r1 root=default");
        assert_eq!(loc.get("rack"), Some("r1"));
        assert_eq!(loc.get("row"), None);
        assert_eq!(
            "".parse::<CrushLocation>().unwrap(),
            CrushLocation::default()
        );
        for bad in ["host", "host=", "=h1", "a=b=c"] {
            assert!(bad.parse::<CrushLocation>().is_err(), "{bad}");
        }
    }
}
