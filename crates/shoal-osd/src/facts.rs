//! What the OSD knows that its PG state machines read (`pg::Facts`):
//! the installed map, which peers are full, the read leases and when it
//! last heard from each OSD.

use std::time::{Duration, Instant};

use shoal_map::OsdMap;
use shoal_proto::rep::HeardFrom;

use crate::context::Osd;
use crate::pg::Facts;

/// The facts of one OSD under one map.
pub struct OsdFacts<'a> {
    osd: &'a Osd,
    map: &'a OsdMap,
}

impl<'a> OsdFacts<'a> {
    /// The facts of `osd` with `map` installed.
    pub fn new(osd: &'a Osd, map: &'a OsdMap) -> Self {
        OsdFacts { osd, map }
    }
}

impl Facts for OsdFacts<'_> {
    fn map_epoch(&self) -> u32 {
        self.map.epoch()
    }

    fn is_full(&self, osd: i32) -> bool {
        self.osd.space.full(osd)
    }

    fn lease_lapsed(&self, chain: &[i32]) -> Vec<i32> {
        self.osd
            .leases
            .lapsed(chain, self.osd.id, self.map.epoch(), Instant::now())
    }

    fn lease(&self) -> Duration {
        self.osd.leases.lease()
    }

    fn heard_ago(&self) -> Vec<HeardFrom> {
        self.osd.heard_ago()
    }

    fn is_up(&self, osd: i32) -> bool {
        self.map.is_up(osd)
    }
}
