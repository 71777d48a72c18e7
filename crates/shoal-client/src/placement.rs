//! PG chains of the current map, computed with CRUSH once per PG and epoch
//! rather than once per operation (a CRUSH workspace alone is an
//! allocation per bucket).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shoal_map::{MapError, OsdMap, PgId, Workspace};

/// The chains computed in one map epoch.
#[derive(Default)]
struct Chains {
    epoch: u32,
    workspace: Option<Workspace>,
    by_pg: HashMap<PgId, Arc<[i32]>>,
}

/// A cache of PG chains, emptied whenever a map of another epoch is asked.
#[derive(Default)]
pub(crate) struct ChainCache(Mutex<Chains>);

impl ChainCache {
    /// PG `pg`'s chain in `map` (head first).
    pub(crate) fn get(&self, map: &OsdMap, pg: PgId) -> Result<Arc<[i32]>, MapError> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if c.epoch != map.epoch() {
            *c = Chains {
                epoch: map.epoch(),
                ..Chains::default()
            };
        }
        if let Some(chain) = c.by_pg.get(&pg) {
            return Ok(chain.clone());
        }
        let Chains {
            workspace, by_pg, ..
        } = &mut *c;
        let ws = workspace.get_or_insert_with(|| map.new_workspace());
        let chain: Arc<[i32]> = map.pg_to_up_acting(pg, ws)?.chain().into();
        by_pg.insert(pg, chain.clone());
        Ok(chain)
    }
}

#[cfg(test)]
mod tests {
    use shoal_map::{Fsid, Pool};

    use super::*;

    fn map() -> OsdMap {
        let crush = shoal_crush::text::parse(
            "device 0 osd.0\ndevice 1 osd.1\ndevice 2 osd.2\ndevice 3 osd.3\ntype 0 osd\ntype 1 root\n\
             root default {\n id -1\n alg straw2\n hash 0\n item osd.0 weight 1.000\n\
             item osd.1 weight 1.000\n item osd.2 weight 1.000\n item osd.3 weight 1.000\n}\n\
             rule r {\n id 0\n type replicated\n min_size 1\n max_size 10\n\
             step take default\n step choose firstn 0 type osd\n step emit\n}\n",
        )
        .expect("crush");
        OsdMap::from_crush(Fsid::ZERO, crush, [Pool::new_replicated(1, "p", 3, 16, 0)])
            .expect("map")
    }

    fn direct(map: &OsdMap, pg: PgId) -> Vec<i32> {
        let mut ws = map.new_workspace();
        map.pg_to_up_acting(pg, &mut ws).expect("mapping").chain()
    }

    #[test]
    fn cached_chains_follow_the_map_epoch() {
        let cache = ChainCache::default();
        let mut m = map();
        for pg in m.pool_pgs(1).expect("pool") {
            assert_eq!(&*cache.get(&m, pg).expect("chain"), direct(&m, pg));
            assert_eq!(&*cache.get(&m, pg).expect("chain"), direct(&m, pg));
        }
        // A newer map with an OSD down: no chain from the old epoch survives.
        m.mark_down(0).expect("down");
        m.set_epoch(2);
        for pg in m.pool_pgs(1).expect("pool") {
            let chain = cache.get(&m, pg).expect("chain");
            assert!(!chain.contains(&0));
            assert_eq!(&*chain, direct(&m, pg));
        }
        assert!(cache.get(&m, PgId::new(9, 0)).is_err());
    }
}
