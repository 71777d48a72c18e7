//! Cluster maps for Shoal: the [`OsdMap`] (OSDs, pools, the CRUSH map, PG
//! override tables), its [`OsdMapIncremental`] deltas, the [`MonMap`], their
//! binary encoding, and object -> PG -> OSD placement bit-exact with Ceph 16
//! for `hashpspool` pools.
//!
//! Modules:
//! - [`pg`] — [`PgId`] (`1.2f`), `ceph_stable_mod`, PG masks;
//! - [`pool`] — [`Pool`], object-name hashing, PG -> CRUSH input;
//! - [`osd`] — per-OSD state and [`CrushLocation`];
//! - [`osdmap`] — the map, its accessors, mutators and validation;
//! - [`incremental`] — deltas, [`OsdMap::apply`], [`OsdMap::diff`];
//! - [`placement`] — [`OsdMap::object_to_pg`], [`OsdMap::pg_to_up_acting`]
//!   and the `osdmaptool` PG dump line;
//! - [`monmap`] — the [`MonMap`];
//! - [`codec`] — the header + rkyv encoding;
//! - [`tree`] — the OSD tree and text tables.
//!
//! ```
//! use shoal_map::{Fsid, OsdMap, Pool};
//!
//! let crush = shoal_crush::text::parse(
//!     "device 0 osd.0\ndevice 1 osd.1\ndevice 2 osd.2\ntype 0 osd\ntype 1 root\n\
//!      root default {\n id -1\n alg straw2\n hash 0\n item osd.0 weight 1.000\n\
//!      item osd.1 weight 1.000\n item osd.2 weight 1.000\n}\n\
//!      rule r {\n id 0\n type replicated\n min_size 1\n max_size 10\n\
//!      step take default\n step choose firstn 0 type osd\n step emit\n}\n",
//! )?;
//! let mut map = OsdMap::from_crush(Fsid::ZERO, crush, [Pool::new_replicated(1, "rbd", 2, 8, 0)])?;
//! map.mark_out(2)?;
//! let mut ws = map.new_workspace(); // reuse across mappings
//! let (pg, m) = map.map_object(1, "hello", &mut ws)?;
//! assert_eq!(pg, map.object_to_pg(1, "hello")?);
//! assert!(!m.acting.contains(&2));
//! println!("{}", m.dump_line(pg)); // `1.x raw ([..], pN) up (..) acting (..)`
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Pure: no IO, no async.

#![warn(missing_docs)]

pub mod balancer;
pub mod codec;
pub mod distribution;
pub mod error;
pub mod ids;
pub mod incremental;
pub mod monmap;
pub mod osd;
pub mod osdmap;
pub mod osdset;
pub mod pg;
pub mod placement;
pub mod pool;
pub mod tree;

pub use error::MapError;
pub use ids::{Epoch, Fsid};
pub use incremental::OsdMapIncremental;
pub use monmap::{MonInfo, MonMap};
pub use osd::{CrushLocation, OsdInfo, WEIGHT_IN, WEIGHT_OUT};
pub use osdmap::OsdMap;
pub use osdset::OsdSet;
pub use pg::{PgId, pg_mask, split_children, stable_mod};
pub use placement::{PgDumpLine, UpActing, find_rule};
pub use pool::{DEFAULT_PIECE_SIZE, Pool, PoolFlags, PoolType};
/// A hole in an erasure-coded PG's member list.
pub use shoal_crush::ITEM_NONE;
/// The CRUSH scratch space callers keep and reuse across mappings.
pub use shoal_crush::mapper::Workspace;

/// Largest number of members a PG may have (pool `size`, `pg_temp` and
/// upmap list lengths); placement results use fixed arrays of this size.
pub const MAX_PG_SIZE: usize = 32;

/// Largest `max_osd` a map may have (bounds memory a hostile incremental
/// could make a client allocate).
pub const MAX_OSDS: i32 = 1 << 20;
