//! Placement group ids and the integer helpers Ceph uses to fold hashes
//! into PG seeds (`ceph_stable_mod`, `pg_pool_t::calc_pg_masks`).

use std::fmt;
use std::str::FromStr;

use rkyv::{Archive, Deserialize, Serialize};

use crate::error::MapError;

/// A placement group: a pool and a seed in `0..pg_num`. Printed like Ceph,
/// `pool.seed` with the seed in lower-case hex (`1.2f`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Archive, Serialize, Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq, PartialOrd, Ord))]
pub struct PgId {
    /// The pool id.
    pub pool: i64,
    /// The placement seed (`ps` in Ceph).
    pub seed: u32,
}

impl PgId {
    /// A PG id from its parts.
    pub const fn new(pool: i64, seed: u32) -> Self {
        PgId { pool, seed }
    }
}

impl fmt::Display for PgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:x}", self.pool, self.seed)
    }
}

impl FromStr for PgId {
    type Err = MapError;

    /// Parses `POOL.HEXSEED` (`1.2f`, `-1.0`); hex digits of either case.
    fn from_str(s: &str) -> Result<Self, MapError> {
        let err = || MapError::parse("pg id", s);
        let (pool, seed) = s.split_once('.').ok_or_else(err)?;
        let digits = pool.strip_prefix('-').unwrap_or(pool);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        if seed.is_empty() || seed.len() > 8 || !seed.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(err());
        }
        let pool = pool.parse::<i64>().map_err(|_| err())?;
        let seed = u32::from_str_radix(seed, 16).map_err(|_| err())?;
        Ok(PgId { pool, seed })
    }
}

impl serde::Serialize for PgId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PgId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `ceph_stable_mod(x, b, bmask)` (`src/include/rados.h`): `x mod b` that
/// moves as few inputs as possible when `b` grows, given
/// `bmask = 2^k - 1 >= b - 1`.
#[inline]
pub const fn stable_mod(x: u32, b: u32, bmask: u32) -> u32 {
    if (x & bmask) < b {
        x & bmask
    } else {
        x & (bmask >> 1)
    }
}

/// The mask Ceph pairs with a PG count (`pg_pool_t::calc_pg_masks`):
/// `(1 << cbits(n - 1)) - 1`, e.g. 12 -> 15, 100 -> 127, 1 -> 0.
/// Total for every `n` (0 gives 0).
#[inline]
pub const fn pg_mask(n: u32) -> u32 {
    let bits = 32 - n.saturating_sub(1).leading_zeros();
    ((1u64 << bits) - 1) as u32
}

/// The seeds PG `seed` splits into when its pool's `pg_num` grows from
/// `old` to `new` (`pg_t::is_split`): those in `old..new` whose objects
/// folded into `seed` before. Empty when `new <= old`.
pub fn split_children(seed: u32, old: u32, new: u32) -> Vec<u32> {
    let mask = pg_mask(old);
    (old..new)
        .filter(|&s| stable_mod(s, old, mask) == seed)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_sends_each_object_to_its_parent_or_one_of_its_children() {
        assert_eq!(split_children(1, 32, 64), vec![33]);
        assert_eq!(split_children(5, 12, 32), vec![13, 21, 29]);
        assert!(split_children(3, 8, 8).is_empty());
        for (old, new) in [(32, 64), (12, 32), (1, 7), (32, 256), (100, 130)] {
            for x in (0..20_000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
                let parent = stable_mod(x, old, pg_mask(old));
                let now = stable_mod(x, new, pg_mask(new));
                assert!(
                    now == parent || split_children(parent, old, new).contains(&now),
                    "x={x} {old}->{new}: {parent} -> {now}"
                );
            }
        }
    }

    #[test]
    fn display_and_parse() {
        let pg = PgId::new(1, 0x2f);
        assert_eq!(pg.to_string(), "1.2f");
        assert_eq!("1.2f".parse::<PgId>().unwrap(), pg);
        assert_eq!("1.2F".parse::<PgId>().unwrap(), pg);
        assert_eq!("-3.0".parse::<PgId>().unwrap(), PgId::new(-3, 0));
        assert_eq!(
            "9223372036854775807.ffffffff".parse::<PgId>().unwrap(),
            PgId::new(i64::MAX, u32::MAX)
        );
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "1.g",
            "+1.2",
            "1.+2",
            "1.-2",
            "1.2.3",
            "a.1",
            "1.100000000",
            "99999999999999999999.1",
            "-.1",
        ] {
            assert!(bad.parse::<PgId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(pg_mask(0), 0);
        assert_eq!(pg_mask(1), 0);
        assert_eq!(pg_mask(2), 1);
        assert_eq!(pg_mask(8), 7);
        assert_eq!(pg_mask(12), 15);
        assert_eq!(pg_mask(100), 127);
        assert_eq!(pg_mask(1000), 1023);
        assert_eq!(pg_mask(1 << 30), (1 << 30) - 1);
        assert_eq!(pg_mask(u32::MAX), u32::MAX);
    }

    #[test]
    fn stable_mod_matches_definition() {
        // pg_num 12, mask 15: 13 -> 13 & 7 = 5; 11 -> 11.
        assert_eq!(stable_mod(13, 12, 15), 5);
        assert_eq!(stable_mod(11, 12, 15), 11);
        for x in 0..1000u32 {
            for b in 1..40u32 {
                let m = stable_mod(x, b, pg_mask(b));
                assert!(m < b, "x={x} b={b} m={m}");
            }
        }
    }
}
