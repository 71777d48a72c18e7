//! Pools: replication settings, PG counts, the CRUSH rule, and the hashing
//! that turns an object name into a PG and a PG into a CRUSH input.

use std::fmt;

use rkyv::{Archive, Deserialize, Serialize};
use shoal_crush::hash::{hash32_2, str_hash_rjenkins};

use crate::MAX_PG_SIZE;
use crate::error::MapError;
use crate::pg::{pg_mask, stable_mod};

/// Default piece size of striped objects: 4 MiB.
pub const DEFAULT_PIECE_SIZE: u64 = 4 << 20;

/// How a pool keeps redundancy; numbered like Ceph (`pg_pool_t::TYPE_*`),
/// which are also the CRUSH rule type ids.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
#[serde(rename_all = "lowercase")]
pub enum PoolType {
    /// Full copies; PG member lists shift left when an OSD is missing.
    Replicated = 1,
    /// Erasure coded; PG members keep their positions (holes are
    /// `ITEM_NONE`).
    Erasure = 3,
}

impl PoolType {
    /// The numeric type, equal to the matching CRUSH rule type id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Whether member lists may be compacted (`pg_pool_t::can_shift_osds`).
    pub fn can_shift_osds(self) -> bool {
        self == PoolType::Replicated
    }
}

/// Pool flag bits, numbered like Ceph's `pg_pool_t::FLAG_*`.
#[derive(
    Clone,
    Copy,
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
#[rkyv(derive(Debug, PartialEq, Eq))]
#[serde(transparent)]
pub struct PoolFlags(pub u64);

impl PoolFlags {
    /// Mix the pool id into the CRUSH input (`hashpspool`, Ceph's default).
    pub const HASHPSPOOL: PoolFlags = PoolFlags(1 << 0);
    /// The pool is full: writes are refused.
    pub const FULL: PoolFlags = PoolFlags(1 << 1);
    /// The pool may not be deleted.
    pub const NODELETE: PoolFlags = PoolFlags(1 << 4);
    /// `pg_num`/`pgp_num` may not change.
    pub const NOPGCHANGE: PoolFlags = PoolFlags(1 << 5);
    /// `size`/`min_size` may not change.
    pub const NOSIZECHANGE: PoolFlags = PoolFlags(1 << 6);

    const NAMES: [(PoolFlags, &'static str); 5] = [
        (PoolFlags::HASHPSPOOL, "hashpspool"),
        (PoolFlags::FULL, "full"),
        (PoolFlags::NODELETE, "nodelete"),
        (PoolFlags::NOPGCHANGE, "nopgchange"),
        (PoolFlags::NOSIZECHANGE, "nosizechange"),
    ];

    /// No flags.
    pub const fn empty() -> Self {
        PoolFlags(0)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: PoolFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` set.
    pub const fn with(self, other: PoolFlags) -> Self {
        PoolFlags(self.0 | other.0)
    }

    /// `self` with the bits of `other` cleared.
    pub const fn without(self, other: PoolFlags) -> Self {
        PoolFlags(self.0 & !other.0)
    }

    /// The flag bit for a Ceph flag name (`hashpspool`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }
}

impl fmt::Display for PoolFlags {
    /// Comma-separated names like Ceph's `flags_names` (unknown bits in hex).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                f.write_str(if first { "" } else { "," })?;
                f.write_str(name)?;
                rest &= !flag.0;
                first = false;
            }
        }
        if rest != 0 {
            write!(f, "{}{rest:#x}", if first { "" } else { "," })?;
        }
        Ok(())
    }
}

/// A pool: a namespace of objects with one placement policy.
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
pub struct Pool {
    /// Pool id (unique in the map).
    pub id: i64,
    /// Pool name (unique in the map, non-empty).
    pub name: String,
    /// Replicated or erasure coded.
    pub pool_type: PoolType,
    /// Copies (or `k + m` chunks) per PG.
    pub size: u32,
    /// Members a PG needs to accept writes.
    pub min_size: u32,
    /// Number of PGs objects hash into.
    pub pg_num: u32,
    /// Number of distinct placements (`<= pg_num`).
    pub pgp_num: u32,
    /// The `pgp_num` the monitors move `pgp_num` toward a step at a time,
    /// so that few PGs are misplaced at once (equal to `pgp_num` when no
    /// change is under way; Ceph's `pgp_num_target`).
    pub pgp_num_target: u32,
    /// CRUSH rule id.
    pub crush_rule: i32,
    /// Piece size of striped objects, bytes.
    pub piece_size: u64,
    /// Flag bits.
    pub flags: PoolFlags,
}

impl Pool {
    /// A replicated `hashpspool` pool with Ceph's default
    /// `min_size = size - size / 2`, `pgp_num = pg_num` and 4 MiB pieces.
    pub fn new_replicated(id: i64, name: &str, size: u32, pg_num: u32, crush_rule: i32) -> Self {
        Pool {
            id,
            name: name.to_owned(),
            pool_type: PoolType::Replicated,
            size,
            min_size: size - size / 2,
            pg_num,
            pgp_num: pg_num,
            pgp_num_target: pg_num,
            crush_rule,
            piece_size: DEFAULT_PIECE_SIZE,
            flags: PoolFlags::HASHPSPOOL,
        }
    }

    /// An erasure-coded `hashpspool` pool with `k` data and `m` coding chunks
    /// and Ceph's default `min_size = k + min(1, m - 1)`.
    pub fn new_erasure(id: i64, name: &str, k: u32, m: u32, pg_num: u32, crush_rule: i32) -> Self {
        Pool {
            id,
            name: name.to_owned(),
            pool_type: PoolType::Erasure,
            size: k.saturating_add(m),
            min_size: k.saturating_add(m.saturating_sub(1).min(1)),
            pg_num,
            pgp_num: pg_num,
            pgp_num_target: pg_num,
            crush_rule,
            piece_size: DEFAULT_PIECE_SIZE,
            flags: PoolFlags::HASHPSPOOL,
        }
    }

    /// Checks the pool's own invariants: non-empty name, id >= 0,
    /// `1 <= min_size <= size <= MAX_PG_SIZE`, `1 <= pgp_num <= pg_num`
    /// (and its target), non-zero piece size.
    pub fn validate(&self) -> Result<(), MapError> {
        let fail = |reason: &str| {
            Err(MapError::InvalidPool {
                id: self.id,
                reason: reason.to_owned(),
            })
        };
        if self.id < 0 {
            return fail("negative pool id");
        }
        if self.name.is_empty() {
            return fail("empty name");
        }
        if self.min_size < 1 {
            return fail("min_size must be at least 1");
        }
        if self.size < self.min_size {
            return fail("size must be at least min_size");
        }
        if self.size as usize > MAX_PG_SIZE {
            return fail("size above MAX_PG_SIZE");
        }
        if self.pg_num < 1 {
            return fail("pg_num must be at least 1");
        }
        if self.pgp_num < 1 || self.pgp_num > self.pg_num {
            return fail("pgp_num must be in 1..=pg_num");
        }
        if self.pgp_num_target < 1 || self.pgp_num_target > self.pg_num {
            return fail("pgp_num_target must be in 1..=pg_num");
        }
        if self.piece_size == 0 {
            return fail("piece_size must be positive");
        }
        Ok(())
    }

    /// `pg_num_mask`.
    pub fn pg_num_mask(&self) -> u32 {
        pg_mask(self.pg_num)
    }

    /// `pgp_num_mask`.
    pub fn pgp_num_mask(&self) -> u32 {
        pg_mask(self.pgp_num)
    }

    /// Whether the pool id is mixed into the CRUSH input.
    pub fn is_hashpspool(&self) -> bool {
        self.flags.contains(PoolFlags::HASHPSPOOL)
    }

    /// Whether member lists may be compacted (replicated pools).
    pub fn can_shift_osds(&self) -> bool {
        self.pool_type.can_shift_osds()
    }

    /// The 32-bit object hash (`pg_pool_t::hash_key`): rjenkins of the key,
    /// or of `nspace + '\x1f' + key` when a namespace is given.
    pub fn hash_key(&self, key: &[u8], nspace: &[u8]) -> u32 {
        if nspace.is_empty() {
            return str_hash_rjenkins(key);
        }
        let mut buf = Vec::with_capacity(nspace.len() + 1 + key.len());
        buf.extend_from_slice(nspace);
        buf.push(0x1f);
        buf.extend_from_slice(key);
        str_hash_rjenkins(&buf)
    }

    /// Folds a raw seed (a hash) into `0..pg_num` (`raw_pg_to_pg`).
    pub fn raw_seed_to_seed(&self, raw: u32) -> u32 {
        stable_mod(raw, self.pg_num, self.pg_num_mask())
    }

    /// The CRUSH input `x` of a PG seed (`pg_pool_t::raw_pg_to_pps`):
    /// `crush_hash32_2(stable_mod(seed, pgp_num), pool)` for `hashpspool`
    /// pools, `stable_mod(seed, pgp_num) + pool` otherwise (both on `u32`).
    pub fn seed_to_pps(&self, seed: u32) -> u32 {
        let ps = stable_mod(seed, self.pgp_num, self.pgp_num_mask());
        // Ceph passes the 64-bit pool id where a u32 is expected: truncation.
        let pool = self.id as u32;
        if self.is_hashpspool() {
            hash32_2(ps, pool)
        } else {
            ps.wrapping_add(pool)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = Pool::new_replicated(1, "rbd", 3, 12, 0);
        assert_eq!(p.min_size, 2);
        assert_eq!(p.pg_num_mask(), 15);
        p.validate().unwrap();
        let e = Pool::new_erasure(2, "ec", 4, 2, 8, 1);
        assert_eq!((e.size, e.min_size), (6, 5));
        let e1 = Pool::new_erasure(2, "ec", 2, 1, 8, 1);
        assert_eq!((e1.size, e1.min_size), (3, 2));
        e.validate().unwrap();
    }

    #[test]
    fn validation() {
        let good = Pool::new_replicated(1, "rbd", 3, 12, 0);
        let cases: Vec<fn(&mut Pool)> = vec![
            |p| p.name.clear(),
            |p| p.id = -1,
            |p| p.min_size = 0,
            |p| p.min_size = 4,
            |p| p.size = 100,
            |p| p.pg_num = 0,
            |p| p.pgp_num = 13,
            |p| p.pgp_num = 0,
            |p| p.pgp_num_target = 13,
            |p| p.pgp_num_target = 0,
            |p| p.piece_size = 0,
        ];
        for (i, f) in cases.into_iter().enumerate() {
            let mut p = good.clone();
            f(&mut p);
            assert!(p.validate().is_err(), "case {i}");
        }
    }

    #[test]
    fn flags_format() {
        assert_eq!(PoolFlags::HASHPSPOOL.to_string(), "hashpspool");
        let f = PoolFlags::HASHPSPOOL
            .with(PoolFlags::NODELETE)
            .with(PoolFlags(1 << 40));
        assert_eq!(f.to_string(), "hashpspool,nodelete,0x10000000000");
        assert_eq!(PoolFlags::from_name("full"), Some(PoolFlags::FULL));
        assert!(
            !f.without(PoolFlags::HASHPSPOOL)
                .contains(PoolFlags::HASHPSPOOL)
        );
    }

    #[test]
    fn legacy_pps_adds_pool() {
        let mut p = Pool::new_replicated(5, "x", 3, 8, 0);
        p.flags = PoolFlags::empty();
        assert_eq!(p.seed_to_pps(3), 8);
        assert_eq!(p.seed_to_pps(11), 3 + 5);
    }
}
