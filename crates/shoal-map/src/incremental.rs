//! Incremental OSDMaps: the delta from epoch N to N+1, how to apply it, and
//! how to compute it from two full maps.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;

use rkyv::{Archive, Deserialize, Serialize};
use shoal_crush::CrushMap;

use crate::MAX_OSDS;
use crate::error::MapError;
use crate::ids::{Epoch, Fsid};
use crate::osd::{CrushLocation, OsdInfo, WEIGHT_OUT};
use crate::osdmap::{OsdMap, check_items, check_osd_list, check_primary, check_weight};
use crate::pg::PgId;
use crate::pool::Pool;

/// The changes that turn the OSDMap of epoch `epoch - 1` into epoch `epoch`.
///
/// [`OsdMap::apply`] applies the parts in this order: `new_max_osd`; pool
/// removals (which also drop the pool's PG table entries), then pool
/// additions/replacements; OSD removals, then creations (a new OSD starts
/// with reweight 0, i.e. out, like in Ceph); per-OSD changes (up/down,
/// reweight, address, location) on OSDs that exist by then; PG table
/// removals, then sets; the replacement CRUSH map. A key may not be both set
/// and removed in one incremental.
#[derive(Clone, Debug, Default, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct OsdMapIncremental {
    /// The cluster this applies to.
    pub fsid: Fsid,
    /// The epoch the map has after applying (previous epoch + 1).
    pub epoch: Epoch,
    /// A new `max_osd`; OSDs at or above it disappear.
    pub new_max_osd: Option<i32>,
    /// Pools created or replaced (keyed by pool id).
    pub new_pools: BTreeMap<i64, Pool>,
    /// Pools deleted.
    pub removed_pools: BTreeSet<i64>,
    /// OSDs created (they start out: reweight 0).
    pub new_osds: BTreeMap<i32, OsdInfo>,
    /// OSDs deleted.
    pub removed_osds: BTreeSet<i32>,
    /// Up (`true`) / down (`false`) changes.
    pub new_up: BTreeMap<i32, bool>,
    /// Reweight changes (16.16, `0x10000` = in, 0 = out).
    pub new_weight: BTreeMap<i32, u32>,
    /// Address changes.
    pub new_addr: BTreeMap<i32, Option<SocketAddr>>,
    /// CRUSH location changes.
    pub new_location: BTreeMap<i32, CrushLocation>,
    /// Boot epoch changes.
    pub new_up_from: BTreeMap<i32, u32>,
    /// A replacement CRUSH map.
    pub new_crush: Option<CrushMap>,
    /// `pg_upmap` entries set.
    pub new_pg_upmap: BTreeMap<PgId, Vec<i32>>,
    /// `pg_upmap` entries removed.
    pub removed_pg_upmap: BTreeSet<PgId>,
    /// `pg_upmap_items` entries set.
    pub new_pg_upmap_items: BTreeMap<PgId, Vec<(i32, i32)>>,
    /// `pg_upmap_items` entries removed.
    pub removed_pg_upmap_items: BTreeSet<PgId>,
    /// `pg_temp` entries set.
    pub new_pg_temp: BTreeMap<PgId, Vec<i32>>,
    /// `pg_temp` entries removed.
    pub removed_pg_temp: BTreeSet<PgId>,
    /// `primary_temp` entries set.
    pub new_primary_temp: BTreeMap<PgId, i32>,
    /// `primary_temp` entries removed.
    pub removed_primary_temp: BTreeSet<PgId>,
}

impl OsdMapIncremental {
    /// An empty incremental producing `epoch` of cluster `fsid`.
    pub fn new(fsid: Fsid, epoch: Epoch) -> Self {
        OsdMapIncremental {
            fsid,
            epoch,
            ..Default::default()
        }
    }

    /// Whether it changes nothing but the epoch.
    pub fn is_empty(&self) -> bool {
        *self == OsdMapIncremental::new(self.fsid, self.epoch)
    }

    /// Checks what can be checked without the map: pools, weights, entry
    /// shapes, and that no key is both set and removed.
    pub fn validate(&self) -> Result<(), MapError> {
        if let Some(max) = self.new_max_osd
            && !(0..=MAX_OSDS).contains(&max)
        {
            return Err(MapError::OsdOutOfRange(max));
        }
        for (&id, pool) in &self.new_pools {
            if id != pool.id {
                return Err(MapError::InvalidPool {
                    id,
                    reason: format!("stored under id {id} but says {}", pool.id),
                });
            }
            pool.validate()?;
        }
        for &w in self.new_weight.values() {
            check_weight(w)?;
        }
        disjoint(&self.new_pg_upmap, &self.removed_pg_upmap)?;
        disjoint(&self.new_pg_upmap_items, &self.removed_pg_upmap_items)?;
        disjoint(&self.new_pg_temp, &self.removed_pg_temp)?;
        disjoint(&self.new_primary_temp, &self.removed_primary_temp)?;
        for (&pg, v) in &self.new_pg_upmap {
            check_osd_list(pg, v)?;
        }
        for (&pg, v) in &self.new_pg_upmap_items {
            check_items(pg, v)?;
        }
        for (&pg, v) in &self.new_pg_temp {
            check_osd_list(pg, v)?;
        }
        for (&pg, v) in &self.new_primary_temp {
            check_primary(pg, v)?;
        }
        if let Some(crush) = &self.new_crush {
            shoal_crush::codec::validate(crush)?;
        }
        Ok(())
    }
}

fn disjoint<V>(set: &BTreeMap<PgId, V>, removed: &BTreeSet<PgId>) -> Result<(), MapError> {
    match removed.iter().find(|pg| set.contains_key(pg)) {
        Some(&pg) => Err(MapError::InvalidPgEntry {
            pg,
            reason: "both set and removed".into(),
        }),
        None => Ok(()),
    }
}

impl OsdMap {
    /// Applies `inc`, which must be for this cluster and the next epoch.
    /// Everything is checked before anything changes: on error the map is
    /// untouched; on success the map is valid and at `inc.epoch`.
    pub fn apply(&mut self, inc: &OsdMapIncremental) -> Result<(), MapError> {
        self.check_incremental(inc)?;
        self.apply_checked(inc);
        Ok(())
    }

    fn check_incremental(&self, inc: &OsdMapIncremental) -> Result<(), MapError> {
        if inc.fsid != self.fsid {
            return Err(MapError::FsidMismatch {
                map: self.fsid,
                got: inc.fsid,
            });
        }
        if Some(inc.epoch) != self.epoch.checked_add(1) {
            return Err(MapError::EpochMismatch {
                current: self.epoch,
                got: inc.epoch,
            });
        }
        inc.validate()?;

        // OSD existence after each phase.
        let max = inc.new_max_osd.unwrap_or(self.max_osd());
        let exists_mid = |id: i32| id < max && self.exists(id);
        for &id in &inc.removed_osds {
            if !exists_mid(id) {
                return Err(MapError::NoSuchOsd(id));
            }
        }
        for &id in inc.new_osds.keys() {
            if !(0..max).contains(&id) {
                return Err(MapError::OsdOutOfRange(id));
            }
            if exists_mid(id) && !inc.removed_osds.contains(&id) {
                return Err(MapError::OsdExists(id));
            }
        }
        let exists_after = |id: i32| {
            (exists_mid(id) && !inc.removed_osds.contains(&id)) || inc.new_osds.contains_key(&id)
        };
        let touched = inc
            .new_up
            .keys()
            .chain(inc.new_weight.keys())
            .chain(inc.new_addr.keys())
            .chain(inc.new_location.keys())
            .chain(inc.new_up_from.keys());
        for &id in touched {
            if !exists_after(id) {
                return Err(MapError::NoSuchOsd(id));
            }
        }

        // Pools after removal and replacement; names stay unique.
        for &id in &inc.removed_pools {
            if !self.pools.contains_key(&id) {
                return Err(MapError::NoSuchPool(id));
            }
        }
        let mut names = HashSet::new();
        let kept = self
            .pools
            .values()
            .filter(|p| !inc.removed_pools.contains(&p.id) && !inc.new_pools.contains_key(&p.id));
        for pool in kept.chain(inc.new_pools.values()) {
            if !names.insert(pool.name.as_str()) {
                return Err(MapError::InvalidPool {
                    id: pool.id,
                    reason: format!("name {:?} already in use", pool.name),
                });
            }
        }
        let pool_after = |id: i64| {
            (self.pools.contains_key(&id) && !inc.removed_pools.contains(&id))
                || inc.new_pools.contains_key(&id)
        };
        let set_pgs = inc
            .new_pg_upmap
            .keys()
            .chain(inc.new_pg_upmap_items.keys())
            .chain(inc.new_pg_temp.keys())
            .chain(inc.new_primary_temp.keys());
        for pg in set_pgs {
            if !pool_after(pg.pool) {
                return Err(MapError::NoSuchPool(pg.pool));
            }
        }
        Ok(())
    }

    /// Applies an incremental that [`Self::check_incremental`] accepted
    /// (ids were checked there; out-of-range ones are skipped, not panicked
    /// on).
    fn apply_checked(&mut self, inc: &OsdMapIncremental) {
        if let Some(max) = inc.new_max_osd {
            let max = usize::try_from(max).unwrap_or(0);
            self.osds.resize(max, None);
            self.osd_weight.resize(max, WEIGHT_OUT);
        }
        for &id in &inc.removed_pools {
            self.pools.remove(&id);
            self.purge_pool_pgs(id);
        }
        for (&id, pool) in &inc.new_pools {
            self.pools.insert(id, pool.clone());
        }
        for &id in &inc.removed_osds {
            self.put_osd(id, None);
        }
        for (&id, info) in &inc.new_osds {
            self.put_osd(id, Some(info.clone()));
        }
        for (&id, &up) in &inc.new_up {
            if let Some(info) = self.osd_mut(id) {
                info.up = up;
            }
        }
        for (&id, &w) in &inc.new_weight {
            if let Some(slot) = usize::try_from(id)
                .ok()
                .and_then(|i| self.osd_weight.get_mut(i))
            {
                *slot = w;
            }
        }
        for (&id, addr) in &inc.new_addr {
            if let Some(info) = self.osd_mut(id) {
                info.addr = *addr;
            }
        }
        for (&id, loc) in &inc.new_location {
            if let Some(info) = self.osd_mut(id) {
                info.location = loc.clone();
            }
        }
        for (&id, &epoch) in &inc.new_up_from {
            if let Some(info) = self.osd_mut(id) {
                info.up_from = epoch;
            }
        }
        patch(&mut self.pg_upmap, &inc.new_pg_upmap, &inc.removed_pg_upmap);
        patch(
            &mut self.pg_upmap_items,
            &inc.new_pg_upmap_items,
            &inc.removed_pg_upmap_items,
        );
        patch(&mut self.pg_temp, &inc.new_pg_temp, &inc.removed_pg_temp);
        patch(
            &mut self.primary_temp,
            &inc.new_primary_temp,
            &inc.removed_primary_temp,
        );
        if let Some(crush) = &inc.new_crush {
            self.crush = crush.clone();
        }
        self.epoch = inc.epoch;
    }

    /// The incremental that turns `old` into `new`: it carries `new`'s fsid
    /// and epoch, so `old.apply(&OsdMap::diff(old, new))` succeeds exactly
    /// when `new` is the next epoch of the same cluster, and then yields a
    /// map equal to `new`.
    pub fn diff(old: &OsdMap, new: &OsdMap) -> OsdMapIncremental {
        let mut inc = OsdMapIncremental::new(new.fsid, new.epoch);
        if old.max_osd() != new.max_osd() {
            inc.new_max_osd = Some(new.max_osd());
        }
        for id in 0..new.max_osd() {
            let (before, after) = (old.osd(id), new.osd(id));
            let w = new.weight(id);
            match (before, after) {
                (Some(_), None) => {
                    inc.removed_osds.insert(id);
                }
                (None, Some(n)) => {
                    inc.new_osds.insert(id, n.clone());
                    if w != WEIGHT_OUT {
                        inc.new_weight.insert(id, w);
                    }
                }
                (Some(o), Some(n)) => {
                    if o.up != n.up {
                        inc.new_up.insert(id, n.up);
                    }
                    if o.addr != n.addr {
                        inc.new_addr.insert(id, n.addr);
                    }
                    if o.location != n.location {
                        inc.new_location.insert(id, n.location.clone());
                    }
                    if o.up_from != n.up_from {
                        inc.new_up_from.insert(id, n.up_from);
                    }
                    if old.weight(id) != w {
                        inc.new_weight.insert(id, w);
                    }
                }
                (None, None) => {}
            }
        }
        inc.removed_pools = old
            .pools
            .keys()
            .filter(|id| !new.pools.contains_key(id))
            .copied()
            .collect();
        inc.new_pools = new
            .pools
            .iter()
            .filter(|(id, p)| old.pools.get(id) != Some(p))
            .map(|(&id, p)| (id, p.clone()))
            .collect();
        if old.crush != new.crush {
            inc.new_crush = Some(new.crush.clone());
        }
        (inc.new_pg_upmap, inc.removed_pg_upmap) = diff_table(&old.pg_upmap, &new.pg_upmap);
        (inc.new_pg_upmap_items, inc.removed_pg_upmap_items) =
            diff_table(&old.pg_upmap_items, &new.pg_upmap_items);
        (inc.new_pg_temp, inc.removed_pg_temp) = diff_table(&old.pg_temp, &new.pg_temp);
        (inc.new_primary_temp, inc.removed_primary_temp) =
            diff_table(&old.primary_temp, &new.primary_temp);
        inc
    }
}

impl OsdMap {
    /// Creates (`Some`) or deletes (`None`) OSD `id`; either way its
    /// reweight becomes 0.
    fn put_osd(&mut self, id: i32, info: Option<OsdInfo>) {
        let Ok(i) = usize::try_from(id) else { return };
        if let (Some(slot), Some(w)) = (self.osds.get_mut(i), self.osd_weight.get_mut(i)) {
            *slot = info;
            *w = WEIGHT_OUT;
        }
    }

    fn osd_mut(&mut self, id: i32) -> Option<&mut OsdInfo> {
        let i = usize::try_from(id).ok()?;
        self.osds.get_mut(i)?.as_mut()
    }
}

fn patch<V: Clone>(
    table: &mut BTreeMap<PgId, V>,
    set: &BTreeMap<PgId, V>,
    removed: &BTreeSet<PgId>,
) {
    for pg in removed {
        table.remove(pg);
    }
    for (&pg, v) in set {
        table.insert(pg, v.clone());
    }
}

fn diff_table<V: Clone + PartialEq>(
    old: &BTreeMap<PgId, V>,
    new: &BTreeMap<PgId, V>,
) -> (BTreeMap<PgId, V>, BTreeSet<PgId>) {
    let set = new
        .iter()
        .filter(|(pg, v)| old.get(pg) != Some(v))
        .map(|(&pg, v)| (pg, v.clone()))
        .collect();
    let removed = old
        .keys()
        .filter(|pg| !new.contains_key(pg))
        .copied()
        .collect();
    (set, removed)
}
