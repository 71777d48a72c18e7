//! The OSDMap: OSDs, pools, the CRUSH map and the PG override tables.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use rkyv::{Archive, Deserialize, Serialize};
use shoal_crush::mapper::Workspace;
use shoal_crush::{CrushMap, Tunables};

use crate::error::MapError;
use crate::ids::{Epoch, Fsid};
use crate::osd::{CrushLocation, OsdInfo, WEIGHT_IN, WEIGHT_OUT, parent_index};
use crate::pg::PgId;
use crate::pool::Pool;
use crate::{MAX_OSDS, MAX_PG_SIZE};

/// The cluster's OSD map at one epoch.
///
/// OSD state is kept the way Ceph keeps it, in vectors indexed by OSD id of
/// length `max_osd`: `osds[id]` is `None` for ids that do not exist, and the
/// reweights (16.16, `0x10000` = in, `0` = out) sit in their own vector that
/// CRUSH reads directly. Every map is ordered (`BTreeMap`), so two monitors
/// holding equal maps encode identical bytes.
///
/// Mutators edit the map in place without touching the epoch; monitors edit
/// a copy, [`OsdMap::set_epoch`] it to the next epoch and publish
/// [`OsdMap::diff`] as the incremental.
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct OsdMap {
    pub(crate) epoch: Epoch,
    pub(crate) fsid: Fsid,
    pub(crate) osds: Vec<Option<OsdInfo>>,
    pub(crate) osd_weight: Vec<u32>,
    pub(crate) pools: BTreeMap<i64, Pool>,
    pub(crate) crush: CrushMap,
    pub(crate) pg_upmap: BTreeMap<PgId, Vec<i32>>,
    pub(crate) pg_upmap_items: BTreeMap<PgId, Vec<(i32, i32)>>,
    pub(crate) pg_temp: BTreeMap<PgId, Vec<i32>>,
    pub(crate) primary_temp: BTreeMap<PgId, i32>,
}

impl OsdMap {
    /// An empty map at epoch 0: no OSDs, no pools, an empty CRUSH map with
    /// optimal (jewel) tunables.
    pub fn new(fsid: Fsid) -> Self {
        OsdMap {
            epoch: 0,
            fsid,
            osds: Vec::new(),
            osd_weight: Vec::new(),
            pools: BTreeMap::new(),
            crush: CrushMap::new(Tunables::default()),
            pg_upmap: BTreeMap::new(),
            pg_upmap_items: BTreeMap::new(),
            pg_temp: BTreeMap::new(),
            primary_temp: BTreeMap::new(),
        }
    }

    /// A map at epoch 1 with one OSD per CRUSH device (every device line and
    /// every device id a bucket lists), all up and in, with their CRUSH
    /// locations derived from the hierarchy, plus `pools`.
    pub fn from_crush(
        fsid: Fsid,
        crush: CrushMap,
        pools: impl IntoIterator<Item = Pool>,
    ) -> Result<Self, MapError> {
        let mut map = OsdMap::new(fsid);
        map.epoch = 1;
        let max = crush.max_devices();
        if !(0..=MAX_OSDS).contains(&max) {
            return Err(MapError::OsdOutOfRange(max));
        }
        map.set_max_osd(max)?;
        let parents = parent_index(&crush);
        let ids = crush.devices.iter().map(|d| d.id).chain(
            crush
                .buckets
                .iter()
                .flatten()
                .flat_map(|b| b.items.iter().copied()),
        );
        for id in ids.filter(|&id| id >= 0) {
            if map.exists(id) {
                continue;
            }
            let info = OsdInfo::up_at(CrushLocation::from_parents(&crush, &parents, id));
            map.add_osd(id, info, WEIGHT_IN)?;
        }
        map.crush = crush;
        for pool in pools {
            map.insert_pool(pool)?;
        }
        Ok(map)
    }

    /// A CRUSH workspace sized for this map's CRUSH map, to reuse across
    /// mappings.
    pub fn new_workspace(&self) -> Workspace {
        Workspace::new(&self.crush)
    }

    // ----- accessors -------------------------------------------------------

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The cluster id.
    pub fn fsid(&self) -> Fsid {
        self.fsid
    }

    /// One past the largest possible OSD id.
    pub fn max_osd(&self) -> i32 {
        self.osds.len() as i32
    }

    /// Whether OSD `id` exists.
    pub fn exists(&self, id: i32) -> bool {
        self.osd(id).is_some()
    }

    /// The OSD's state, if it exists.
    pub fn osd(&self, id: i32) -> Option<&OsdInfo> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.osds.get(i))
            .and_then(Option::as_ref)
    }

    /// Whether the OSD exists and is up.
    pub fn is_up(&self, id: i32) -> bool {
        self.osd(id).is_some_and(|o| o.up)
    }

    /// Whether the OSD exists and is in (reweight above 0).
    pub fn is_in(&self, id: i32) -> bool {
        self.exists(id) && self.weight(id) != WEIGHT_OUT
    }

    /// The OSD's reweight (0 for ids that do not exist).
    pub fn weight(&self, id: i32) -> u32 {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.osd_weight.get(i))
            .copied()
            .unwrap_or(WEIGHT_OUT)
    }

    /// All reweights, indexed by OSD id (the vector CRUSH reads).
    pub fn osd_weights(&self) -> &[u32] {
        &self.osd_weight
    }

    /// Ids of the existing OSDs, ascending.
    pub fn osd_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.osds
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_some())
            .map(|(i, _)| i as i32)
    }

    /// The pools by id.
    pub fn pools(&self) -> &BTreeMap<i64, Pool> {
        &self.pools
    }

    /// A pool by id.
    pub fn pool(&self, id: i64) -> Option<&Pool> {
        self.pools.get(&id)
    }

    /// A pool by name.
    pub fn pool_by_name(&self, name: &str) -> Option<&Pool> {
        self.pools.values().find(|p| p.name == name)
    }

    /// The CRUSH map.
    pub fn crush(&self) -> &CrushMap {
        &self.crush
    }

    /// Full PG remappings (`pg_upmap`).
    pub fn pg_upmap(&self) -> &BTreeMap<PgId, Vec<i32>> {
        &self.pg_upmap
    }

    /// Per-PG OSD substitutions (`pg_upmap_items`).
    pub fn pg_upmap_items(&self) -> &BTreeMap<PgId, Vec<(i32, i32)>> {
        &self.pg_upmap_items
    }

    /// Temporary acting sets (`pg_temp`).
    pub fn pg_temp(&self) -> &BTreeMap<PgId, Vec<i32>> {
        &self.pg_temp
    }

    /// Temporary primaries (`primary_temp`).
    pub fn primary_temp(&self) -> &BTreeMap<PgId, i32> {
        &self.primary_temp
    }

    // ----- mutators --------------------------------------------------------

    /// Sets the epoch.
    pub fn set_epoch(&mut self, epoch: Epoch) {
        self.epoch = epoch;
    }

    /// Grows or shrinks the OSD id space; OSDs at or above `max` disappear.
    pub fn set_max_osd(&mut self, max: i32) -> Result<(), MapError> {
        if !(0..=MAX_OSDS).contains(&max) {
            return Err(MapError::OsdOutOfRange(max));
        }
        self.osds.resize(max as usize, None);
        self.osd_weight.resize(max as usize, WEIGHT_OUT);
        Ok(())
    }

    /// Creates OSD `id` (growing `max_osd` if needed) with `weight`.
    pub fn add_osd(&mut self, id: i32, info: OsdInfo, weight: u32) -> Result<(), MapError> {
        if !(0..MAX_OSDS).contains(&id) {
            return Err(MapError::OsdOutOfRange(id));
        }
        check_weight(weight)?;
        if self.exists(id) {
            return Err(MapError::OsdExists(id));
        }
        if id >= self.max_osd() {
            self.set_max_osd(id + 1)?;
        }
        self.osds[id as usize] = Some(info);
        self.osd_weight[id as usize] = weight;
        Ok(())
    }

    /// Deletes OSD `id` (its reweight becomes 0). PG table entries that name
    /// it are left alone, as in Ceph.
    pub fn remove_osd(&mut self, id: i32) -> Result<OsdInfo, MapError> {
        let slot = self.slot(id)?;
        let info = self.osds[slot].take().ok_or(MapError::NoSuchOsd(id))?;
        self.osd_weight[slot] = WEIGHT_OUT;
        Ok(info)
    }

    /// Marks the OSD up.
    pub fn mark_up(&mut self, id: i32) -> Result<(), MapError> {
        self.info_mut(id)?.up = true;
        Ok(())
    }

    /// Marks the OSD down.
    pub fn mark_down(&mut self, id: i32) -> Result<(), MapError> {
        self.info_mut(id)?.up = false;
        Ok(())
    }

    /// Marks the OSD in (reweight 1.0).
    pub fn mark_in(&mut self, id: i32) -> Result<(), MapError> {
        self.set_reweight(id, WEIGHT_IN)
    }

    /// Marks the OSD out (reweight 0).
    pub fn mark_out(&mut self, id: i32) -> Result<(), MapError> {
        self.set_reweight(id, WEIGHT_OUT)
    }

    /// Sets the OSD's reweight (16.16, at most `0x10000`).
    pub fn set_reweight(&mut self, id: i32, weight: u32) -> Result<(), MapError> {
        check_weight(weight)?;
        self.info_mut(id)?;
        self.osd_weight[id as usize] = weight;
        Ok(())
    }

    /// Marks every existing OSD up and in (`osdmaptool --mark-up-in`).
    pub fn mark_all_up_in(&mut self) {
        for (info, w) in self.osds.iter_mut().zip(&mut self.osd_weight) {
            if let Some(info) = info {
                info.up = true;
                *w = WEIGHT_IN;
            }
        }
    }

    /// Sets the OSD's address.
    pub fn set_addr(&mut self, id: i32, addr: Option<SocketAddr>) -> Result<(), MapError> {
        self.info_mut(id)?.addr = addr;
        Ok(())
    }

    /// Records the epoch of the OSD's latest boot.
    pub fn set_up_from(&mut self, id: i32, epoch: u32) -> Result<(), MapError> {
        self.info_mut(id)?.up_from = epoch;
        Ok(())
    }

    /// Sets an OSD's CRUSH location (as recorded in the map).
    pub fn set_location(&mut self, id: i32, location: CrushLocation) -> Result<(), MapError> {
        self.info_mut(id)?.location = location;
        Ok(())
    }

    /// Adds or replaces a pool after validating it (the name must stay
    /// unique).
    pub fn insert_pool(&mut self, pool: Pool) -> Result<(), MapError> {
        pool.validate()?;
        if self
            .pools
            .values()
            .any(|p| p.name == pool.name && p.id != pool.id)
        {
            return Err(MapError::InvalidPool {
                id: pool.id,
                reason: format!("name {:?} already in use", pool.name),
            });
        }
        self.pools.insert(pool.id, pool);
        Ok(())
    }

    /// Deletes a pool and every PG table entry of it.
    pub fn remove_pool(&mut self, id: i64) -> Result<Pool, MapError> {
        let pool = self.pools.remove(&id).ok_or(MapError::NoSuchPool(id))?;
        self.purge_pool_pgs(id);
        Ok(pool)
    }

    /// Replaces the CRUSH map.
    pub fn set_crush(&mut self, crush: CrushMap) {
        self.crush = crush;
    }

    /// Sets (or with an empty list removes) a full remapping of `pg`.
    pub fn set_pg_upmap(&mut self, pg: PgId, osds: Vec<i32>) -> Result<(), MapError> {
        set_entry(&self.pools, &mut self.pg_upmap, pg, osds, check_osd_list)
    }

    /// Sets (or with an empty list removes) OSD substitutions for `pg`.
    pub fn set_pg_upmap_items(&mut self, pg: PgId, items: Vec<(i32, i32)>) -> Result<(), MapError> {
        set_entry(
            &self.pools,
            &mut self.pg_upmap_items,
            pg,
            items,
            check_items,
        )
    }

    /// Sets (or with an empty list removes) a temporary acting set for `pg`.
    pub fn set_pg_temp(&mut self, pg: PgId, osds: Vec<i32>) -> Result<(), MapError> {
        set_entry(&self.pools, &mut self.pg_temp, pg, osds, check_osd_list)
    }

    /// Sets (or with `None` removes) a temporary primary for `pg`.
    pub fn set_primary_temp(&mut self, pg: PgId, osd: Option<i32>) -> Result<(), MapError> {
        match osd {
            None => {
                self.primary_temp.remove(&pg);
                Ok(())
            }
            Some(osd) => {
                check_pg(&self.pools, pg)?;
                check_primary(pg, &osd)?;
                self.primary_temp.insert(pg, osd);
                Ok(())
            }
        }
    }

    // ----- validation ------------------------------------------------------

    /// Checks every invariant a decoded or freshly applied map must hold:
    /// vector lengths, reweights (`<= 0x10000`, 0 for missing OSDs), pools
    /// (valid, keyed by id, unique names) and PG table entries (existing
    /// pool, 1..=MAX_PG_SIZE non-negative ids).
    pub fn validate(&self) -> Result<(), MapError> {
        if self.osds.len() != self.osd_weight.len() {
            return Err(MapError::Invalid("osd vectors differ in length".into()));
        }
        if self.osds.len() > MAX_OSDS as usize {
            return Err(MapError::OsdOutOfRange(self.max_osd()));
        }
        for (id, (info, &w)) in self.osds.iter().zip(&self.osd_weight).enumerate() {
            check_weight(w)?;
            if info.is_none() && w != WEIGHT_OUT {
                return Err(MapError::Invalid(format!(
                    "osd.{id} does not exist but has reweight {w:#x}"
                )));
            }
        }
        let mut names = HashSet::new();
        for (&id, pool) in &self.pools {
            if id != pool.id {
                return Err(MapError::InvalidPool {
                    id,
                    reason: format!("stored under id {id} but says {}", pool.id),
                });
            }
            pool.validate()?;
            if !names.insert(pool.name.as_str()) {
                return Err(MapError::InvalidPool {
                    id,
                    reason: format!("name {:?} already in use", pool.name),
                });
            }
        }
        check_table(&self.pools, &self.pg_upmap, check_osd_list)?;
        check_table(&self.pools, &self.pg_upmap_items, check_items)?;
        check_table(&self.pools, &self.pg_temp, check_osd_list)?;
        check_table(&self.pools, &self.primary_temp, check_primary)?;
        shoal_crush::codec::validate(&self.crush)?;
        Ok(())
    }

    // ----- helpers ---------------------------------------------------------

    fn slot(&self, id: i32) -> Result<usize, MapError> {
        usize::try_from(id)
            .ok()
            .filter(|&i| i < self.osds.len())
            .ok_or(MapError::NoSuchOsd(id))
    }

    fn info_mut(&mut self, id: i32) -> Result<&mut OsdInfo, MapError> {
        let slot = self.slot(id)?;
        self.osds[slot].as_mut().ok_or(MapError::NoSuchOsd(id))
    }

    pub(crate) fn purge_pool_pgs(&mut self, pool: i64) {
        self.pg_upmap.retain(|pg, _| pg.pool != pool);
        self.pg_upmap_items.retain(|pg, _| pg.pool != pool);
        self.pg_temp.retain(|pg, _| pg.pool != pool);
        self.primary_temp.retain(|pg, _| pg.pool != pool);
    }
}

pub(crate) fn check_weight(w: u32) -> Result<(), MapError> {
    if w > WEIGHT_IN {
        return Err(MapError::BadWeight(w));
    }
    Ok(())
}

fn check_pg(pools: &BTreeMap<i64, Pool>, pg: PgId) -> Result<(), MapError> {
    if pools.contains_key(&pg.pool) {
        Ok(())
    } else {
        Err(MapError::NoSuchPool(pg.pool))
    }
}

fn bad_entry(pg: PgId, reason: &str) -> MapError {
    MapError::InvalidPgEntry {
        pg,
        reason: reason.to_owned(),
    }
}

/// A PG's OSD list (upmap target or pg_temp): 1..=MAX_PG_SIZE ids >= 0
/// (`ITEM_NONE` allowed for erasure-coded holes).
// `&Vec` (not a slice): the signature must fit `check_table`'s `fn(PgId, &V)`.
#[allow(clippy::ptr_arg)]
pub(crate) fn check_osd_list(pg: PgId, osds: &Vec<i32>) -> Result<(), MapError> {
    if osds.is_empty() || osds.len() > MAX_PG_SIZE {
        return Err(bad_entry(pg, "list must hold 1..=MAX_PG_SIZE osds"));
    }
    if osds.iter().any(|&o| o < 0) {
        return Err(bad_entry(pg, "negative osd id"));
    }
    Ok(())
}

/// `pg_upmap_items`: 1..=MAX_PG_SIZE pairs of ids >= 0.
#[allow(clippy::ptr_arg)]
pub(crate) fn check_items(pg: PgId, items: &Vec<(i32, i32)>) -> Result<(), MapError> {
    if items.is_empty() || items.len() > MAX_PG_SIZE {
        return Err(bad_entry(pg, "upmap items must hold 1..=MAX_PG_SIZE pairs"));
    }
    if items.iter().any(|&(f, t)| f < 0 || t < 0) {
        return Err(bad_entry(pg, "negative osd id"));
    }
    Ok(())
}

pub(crate) fn check_primary(pg: PgId, osd: &i32) -> Result<(), MapError> {
    if *osd < 0 {
        return Err(bad_entry(pg, "negative primary"));
    }
    Ok(())
}

pub(crate) fn check_table<V>(
    pools: &BTreeMap<i64, Pool>,
    table: &BTreeMap<PgId, V>,
    check: fn(PgId, &V) -> Result<(), MapError>,
) -> Result<(), MapError> {
    for (&pg, v) in table {
        check_pg(pools, pg)?;
        check(pg, v)?;
    }
    Ok(())
}

fn set_entry<V: IsEmpty>(
    pools: &BTreeMap<i64, Pool>,
    table: &mut BTreeMap<PgId, V>,
    pg: PgId,
    value: V,
    check: fn(PgId, &V) -> Result<(), MapError>,
) -> Result<(), MapError> {
    if value.is_empty() {
        table.remove(&pg);
        return Ok(());
    }
    check_pg(pools, pg)?;
    check(pg, &value)?;
    table.insert(pg, value);
    Ok(())
}

trait IsEmpty {
    fn is_empty(&self) -> bool;
}

impl<T> IsEmpty for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}
