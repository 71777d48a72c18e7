//! The MonMap: the monitors of a cluster, in rank order.

use std::collections::HashSet;
use std::net::SocketAddr;

use rkyv::{Archive, Deserialize, Serialize};

use crate::codec::{self, Kind};
use crate::error::MapError;
use crate::ids::{Epoch, Fsid};

/// One monitor: its unique name and address.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct MonInfo {
    /// Name (`a`, `b`, `mon1`...).
    pub name: String,
    /// Address the monitor listens on.
    pub addr: SocketAddr,
}

/// The monitors of a cluster at one epoch. The index in `mons` is the rank.
/// Monitor changes are rare, so every epoch ships the whole map and
/// [`MonMap::apply`] replaces it.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct MonMap {
    /// Epoch.
    pub epoch: Epoch,
    /// Cluster id.
    pub fsid: Fsid,
    /// Monitors in rank order.
    pub mons: Vec<MonInfo>,
}

impl MonMap {
    /// A map at epoch 1 with `mons` in rank order.
    pub fn new(fsid: Fsid, mons: Vec<MonInfo>) -> Self {
        MonMap {
            epoch: 1,
            fsid,
            mons,
        }
    }

    /// The rank of the monitor called `name`.
    pub fn rank(&self, name: &str) -> Option<usize> {
        self.mons.iter().position(|m| m.name == name)
    }

    /// The monitor at `rank`.
    pub fn get(&self, rank: usize) -> Option<&MonInfo> {
        self.mons.get(rank)
    }

    /// The rank of the monitor at `addr`.
    pub fn rank_of_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.mons.iter().position(|m| m.addr == addr)
    }

    /// How many monitors form a majority.
    pub fn quorum_size(&self) -> usize {
        self.mons.len() / 2 + 1
    }

    /// Checks that names are non-empty and unique and addresses unique.
    pub fn validate(&self) -> Result<(), MapError> {
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        for m in &self.mons {
            if m.name.is_empty() {
                return Err(MapError::Invalid("monitor with an empty name".into()));
            }
            if !names.insert(m.name.as_str()) {
                return Err(MapError::Invalid(format!(
                    "duplicate monitor name {:?}",
                    m.name
                )));
            }
            if !addrs.insert(m.addr) {
                return Err(MapError::Invalid(format!(
                    "duplicate monitor address {}",
                    m.addr
                )));
            }
        }
        Ok(())
    }

    /// Replaces this map by `next`, which must be the next epoch of the same
    /// cluster and valid.
    pub fn apply(&mut self, next: &MonMap) -> Result<(), MapError> {
        if next.fsid != self.fsid {
            return Err(MapError::FsidMismatch {
                map: self.fsid,
                got: next.fsid,
            });
        }
        if Some(next.epoch) != self.epoch.checked_add(1) {
            return Err(MapError::EpochMismatch {
                current: self.epoch,
                got: next.epoch,
            });
        }
        next.validate()?;
        self.clone_from(next);
        Ok(())
    }

    /// Encodes the map (header + rkyv).
    ///
    /// # Panics
    /// Only for an archive above 2 GiB (rkyv's relative pointers).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(Kind::MonMap, self)
    }

    /// Decodes and validates a map produced by [`MonMap::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, MapError> {
        let map: MonMap = codec::decode(Kind::MonMap, bytes)?;
        map.validate()?;
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mon(name: &str, port: u16) -> MonInfo {
        MonInfo {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn ranks_apply_and_codec() {
        let fsid = Fsid([7; 16]);
        let mut map = MonMap::new(fsid, vec![mon("a", 6789), mon("b", 6790), mon("c", 6791)]);
        assert_eq!(map.rank("b"), Some(1));
        assert_eq!(
            map.rank_of_addr(SocketAddr::from(([127, 0, 0, 1], 6791))),
            Some(2)
        );
        assert_eq!(map.quorum_size(), 2);
        let mut next = map.clone();
        next.epoch = 2;
        next.mons.push(mon("d", 6792));
        let mut stale = next.clone();
        stale.epoch = 3;
        assert!(matches!(
            map.apply(&stale),
            Err(MapError::EpochMismatch { .. })
        ));
        let mut other = next.clone();
        other.fsid = Fsid([8; 16]);
        assert!(matches!(
            map.apply(&other),
            Err(MapError::FsidMismatch { .. })
        ));
        let mut dup = next.clone();
        dup.mons.push(mon("a", 7000));
        assert!(map.apply(&dup).is_err());
        map.apply(&next).unwrap();
        assert_eq!(map, next);
        let bytes = map.encode();
        assert_eq!(MonMap::decode(&bytes).unwrap(), map);
        assert!(MonMap::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
