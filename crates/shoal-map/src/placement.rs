//! Object -> PG -> OSDs, step for step like Ceph's `OSDMap` (16.x):
//! `map_to_pg`, `_pg_to_raw_osds`, `_apply_upmap`, `_raw_to_up_osds`,
//! `_get_temp_osds` and `_pg_to_up_acting_osds`.

use std::fmt;

use shoal_crush::mapper::{Workspace, do_rule};
use shoal_crush::{CrushMap, ITEM_NONE};

use crate::MAX_PG_SIZE;
use crate::error::MapError;
use crate::osd::WEIGHT_OUT;
use crate::osdmap::OsdMap;
use crate::osdset::OsdSet;
use crate::pg::PgId;
use crate::pool::{Pool, PoolType};

/// Where a PG lives: the CRUSH result, the up set (after upmaps and
/// dropping down OSDs) and the acting set (after `pg_temp`/`primary_temp`),
/// each with its primary (`None` when the set has no OSD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpActing {
    /// CRUSH output minus OSDs that do not exist (before upmaps), what
    /// `osdmaptool` prints as `raw`.
    pub raw: OsdSet,
    /// First OSD of `raw`.
    pub raw_primary: Option<i32>,
    /// The up set.
    pub up: OsdSet,
    /// First OSD of `up`.
    pub up_primary: Option<i32>,
    /// The acting set: `pg_temp` if present, otherwise `up`.
    pub acting: OsdSet,
    /// `primary_temp`, else the first OSD of `pg_temp`, else `up_primary`.
    pub acting_primary: Option<i32>,
}

impl UpActing {
    /// Shoal's replication chain: the acting set in order without holes
    /// (`ITEM_NONE`). The first member is the head, which orders writes;
    /// the last is the tail.
    pub fn chain(&self) -> Vec<i32> {
        without_holes(&self.acting)
    }

    /// The up set in order without holes: the chain CRUSH wants, which a
    /// `pg_temp` may hold off while its new members are backfilled.
    pub fn up_chain(&self) -> Vec<i32> {
        without_holes(&self.up)
    }
}

fn without_holes(set: &OsdSet) -> Vec<i32> {
    set.as_slice()
        .iter()
        .copied()
        .filter(|&o| o >= 0 && o != ITEM_NONE)
        .collect()
}

impl OsdMap {
    /// The PG an object belongs to (`OSDMap::map_to_pg` without locator key
    /// or namespace): rjenkins hash of the name folded into `0..pg_num`.
    /// Names are raw bytes, as in Ceph.
    pub fn object_to_pg(&self, pool_id: i64, name: impl AsRef<[u8]>) -> Result<PgId, MapError> {
        self.object_locator_to_pg(pool_id, name.as_ref(), None, b"")
    }

    /// The PG of an object with an optional locator `key` (hashed instead of
    /// the name) and namespace (hashed as `nspace + '\x1f' + key`).
    pub fn object_locator_to_pg(
        &self,
        pool_id: i64,
        name: &[u8],
        key: Option<&[u8]>,
        nspace: &[u8],
    ) -> Result<PgId, MapError> {
        let pool = self.pool(pool_id).ok_or(MapError::NoSuchPool(pool_id))?;
        let hash = pool.hash_key(key.unwrap_or(name), nspace);
        Ok(PgId::new(pool_id, pool.raw_seed_to_seed(hash)))
    }

    /// The CRUSH input `x` of a PG (`raw_pg_to_pps`).
    pub fn pg_to_pps(&self, pg: PgId) -> Result<u32, MapError> {
        Ok(self.pool_of(pg)?.seed_to_pps(pg.seed))
    }

    /// The PG's raw OSDs: the CRUSH result with non-existent OSDs removed
    /// (replicated) or replaced by `ITEM_NONE` (erasure), before upmaps.
    pub fn pg_to_raw(&self, pg: PgId, ws: &mut Workspace) -> Result<OsdSet, MapError> {
        let pool = self.pool_of(pg)?;
        Ok(self.raw_osds(pool, pg, ws))
    }

    /// The raw OSDs after `pg_upmap` and `pg_upmap_items`.
    pub fn pg_to_raw_upmap(&self, pg: PgId, ws: &mut Workspace) -> Result<OsdSet, MapError> {
        let pool = self.pool_of(pg)?;
        let mut raw = self.raw_osds(pool, pg, ws);
        self.apply_upmap(pool, pg, &mut raw);
        Ok(raw)
    }

    /// Raw, up and acting sets with their primaries. A seed at or above
    /// `pg_num` is treated like Ceph treats a raw PG: table lookups use the
    /// folded seed.
    pub fn pg_to_up_acting(&self, pg: PgId, ws: &mut Workspace) -> Result<UpActing, MapError> {
        let pool = self.pool_of(pg)?;
        let raw = self.raw_osds(pool, pg, ws);
        let mut upmapped = raw;
        self.apply_upmap(pool, pg, &mut upmapped);
        let up = self.raw_to_up(pool, &upmapped);
        let up_primary = up.first_present();
        let (mut acting, mut acting_primary) = self.temp_osds(pool, pg);
        if acting.is_empty() {
            acting = up;
            acting_primary = acting_primary.or(up_primary);
        }
        Ok(UpActing {
            raw,
            raw_primary: raw.first_present(),
            up,
            up_primary,
            acting,
            acting_primary,
        })
    }

    /// `object_to_pg` then `pg_to_up_acting`.
    pub fn map_object(
        &self,
        pool_id: i64,
        name: impl AsRef<[u8]>,
        ws: &mut Workspace,
    ) -> Result<(PgId, UpActing), MapError> {
        let pg = self.object_to_pg(pool_id, name)?;
        Ok((pg, self.pg_to_up_acting(pg, ws)?))
    }

    /// Every PG of a pool, `seed` 0..pg_num.
    pub fn pool_pgs(&self, pool_id: i64) -> Result<impl Iterator<Item = PgId> + use<>, MapError> {
        let pool = self.pool(pool_id).ok_or(MapError::NoSuchPool(pool_id))?;
        Ok((0..pool.pg_num).map(move |seed| PgId::new(pool_id, seed)))
    }

    fn pool_of(&self, pg: PgId) -> Result<&Pool, MapError> {
        self.pool(pg.pool).ok_or(MapError::NoSuchPool(pg.pool))
    }

    /// `_pg_to_raw_osds` + `_remove_nonexistent_osds`.
    fn raw_osds(&self, pool: &Pool, pg: PgId, ws: &mut Workspace) -> OsdSet {
        let mut out = [0i32; MAX_PG_SIZE];
        let size = (pool.size as usize).min(MAX_PG_SIZE);
        let pps = pool.seed_to_pps(pg.seed);
        let n = match find_rule(&self.crush, pool.crush_rule, pool.pool_type, pool.size) {
            Some(rule) => {
                // Ceph looks up the pool's weight set, else the default one.
                let args = self
                    .crush
                    .choose_arg_map(pg.pool)
                    .or_else(|| self.crush.choose_arg_map(-1));
                let slots = &mut out[..size];
                do_rule(&self.crush, rule, pps, slots, &self.osd_weight, args, ws).min(size)
            }
            None => 0,
        };
        let mut raw = OsdSet::from_slice(&out[..n]);
        if pool.can_shift_osds() {
            raw.retain(|o| self.exists(o));
        } else {
            for o in raw.as_mut_slice() {
                if !self.exists(*o) {
                    *o = ITEM_NONE;
                }
            }
        }
        raw
    }

    /// Whether `osd` is a valid id below `max_osd` with reweight 0 (the
    /// "marked out" test of `_apply_upmap`).
    fn marked_out(&self, osd: i32) -> bool {
        osd != ITEM_NONE && osd >= 0 && osd < self.max_osd() && self.weight(osd) == WEIGHT_OUT
    }

    /// `_apply_upmap`: a full `pg_upmap` replaces the set unless one of its
    /// targets is marked out (then nothing at all is applied, not even the
    /// items); each `pg_upmap_items` pair `(from, to)` replaces the first
    /// `from` unless `to` already appears or is marked out.
    fn apply_upmap(&self, pool: &Pool, pg: PgId, raw: &mut OsdSet) {
        let pg = PgId::new(pg.pool, pool.raw_seed_to_seed(pg.seed));
        if let Some(targets) = self.pg_upmap.get(&pg) {
            if targets.iter().any(|&o| self.marked_out(o)) {
                return;
            }
            *raw = OsdSet::from_slice(targets);
        }
        let Some(items) = self.pg_upmap_items.get(&pg) else {
            return;
        };
        for &(from, to) in items {
            let mut pos = None;
            let mut exists = false;
            for (i, &osd) in raw.iter().enumerate() {
                if osd == to {
                    exists = true;
                    break;
                }
                if osd == from && pos.is_none() && !self.marked_out(to) {
                    pos = Some(i);
                }
            }
            if let (false, Some(i)) = (exists, pos) {
                raw.as_mut_slice()[i] = to;
            }
        }
    }

    /// `_raw_to_up_osds`: drop (replicated) or blank (erasure) OSDs that are
    /// down or do not exist.
    fn raw_to_up(&self, pool: &Pool, raw: &OsdSet) -> OsdSet {
        let mut up = *raw;
        if pool.can_shift_osds() {
            up.retain(|o| self.is_up(o));
        } else {
            for o in up.as_mut_slice() {
                if !self.is_up(*o) {
                    *o = ITEM_NONE;
                }
            }
        }
        up
    }

    /// `_get_temp_osds`: the `pg_temp` set without down/non-existent OSDs
    /// (dropped or blanked) and its primary: `primary_temp`, else the first
    /// OSD of the temp set.
    fn temp_osds(&self, pool: &Pool, pg: PgId) -> (OsdSet, Option<i32>) {
        let pg = PgId::new(pg.pool, pool.raw_seed_to_seed(pg.seed));
        let mut temp = OsdSet::new();
        if let Some(osds) = self.pg_temp.get(&pg) {
            for &o in osds {
                if self.is_up(o) {
                    temp.push(o);
                } else if !pool.can_shift_osds() {
                    temp.push(ITEM_NONE);
                }
            }
        }
        let primary = match self.primary_temp.get(&pg) {
            Some(&p) => Some(p),
            None => temp.first_present(),
        };
        (temp, primary)
    }
}

/// `CrushWrapper::find_rule` as in Ceph 16: the pool's rule if its type
/// matches the pool type and `min_size <= size <= max_size`.
pub fn find_rule(crush: &CrushMap, rule_id: i32, pool_type: PoolType, size: u32) -> Option<i32> {
    let rule = crush.rule(rule_id)?;
    let size = i64::from(size);
    (rule.rule_type.id() == pool_type.id()
        && i64::from(rule.min_size) <= size
        && size <= i64::from(rule.max_size))
    .then_some(rule_id)
}

/// One line of `osdmaptool --test-map-pgs-dump-all`:
/// `1.0 raw ([8,5,1], p8) up ([8,5,1], p8) acting ([8,5,1], p8)`
/// (a missing primary prints as `p-1`).
pub struct PgDumpLine<'a> {
    /// The PG.
    pub pg: PgId,
    /// Its mapping.
    pub mapping: &'a UpActing,
}

impl fmt::Display for PgDumpLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mapping;
        let p = |x: Option<i32>| x.unwrap_or(-1);
        write!(
            f,
            "{} raw ({}, p{}) up ({}, p{}) acting ({}, p{})",
            self.pg,
            m.raw,
            p(m.raw_primary),
            m.up,
            p(m.up_primary),
            m.acting,
            p(m.acting_primary)
        )
    }
}

impl UpActing {
    /// The `osdmaptool --test-map-pgs-dump-all` line for `pg`.
    pub fn dump_line(&self, pg: PgId) -> PgDumpLine<'_> {
        PgDumpLine { pg, mapping: self }
    }
}
