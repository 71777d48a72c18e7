//! Property tests: incrementals compose like direct edits, `diff` inverts
//! `apply`, encodings round-trip byte for byte, mapping is deterministic
//! (and unchanged by encode/decode or workspace reuse), and damaged bytes
//! never panic.

mod common;

use std::net::SocketAddr;

use common::{FSID, base_map, crush};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use shoal_crush::RuleStep;
use shoal_map::{
    ITEM_NONE, MapError, MonInfo, MonMap, OsdInfo, OsdMap, OsdMapIncremental, PgId, Pool,
    WEIGHT_IN, Workspace,
};

/// One edit, expressible both as a mutator call and as an incremental.
#[derive(Debug, Clone)]
enum Op {
    MarkUp(i32),
    MarkDown(i32),
    Reweight(i32, u32),
    RemoveOsd(i32),
    AddOsd(i32, bool, u32, u8),
    SetAddr(i32, Option<u16>),
    SetLocation(i32, u8),
    SetMaxOsd(i32),
    InsertPool(Pool),
    RemovePool(i64),
    UpmapItems(PgId, Vec<(i32, i32)>),
    Upmap(PgId, Vec<i32>),
    PgTemp(PgId, Vec<i32>),
    PrimaryTemp(PgId, Option<i32>),
    Crush(usize, usize, usize),
}

fn location(v: u8) -> shoal_map::CrushLocation {
    format!("host=h{} root=default", v % 4).parse().unwrap()
}

fn addr(port: Option<u16>) -> Option<SocketAddr> {
    port.map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
}

impl Op {
    fn mutate(&self, map: &mut OsdMap) -> Result<(), MapError> {
        match self.clone() {
            Op::MarkUp(id) => map.mark_up(id),
            Op::MarkDown(id) => map.mark_down(id),
            Op::Reweight(id, w) => map.set_reweight(id, w),
            Op::RemoveOsd(id) => map.remove_osd(id).map(drop),
            Op::AddOsd(id, up, w, loc) => {
                let info = OsdInfo {
                    addr: None,
                    up,
                    location: location(loc),
                    up_from: 0,
                };
                map.add_osd(id, info, w)
            }
            Op::SetAddr(id, port) => map.set_addr(id, addr(port)),
            Op::SetLocation(id, v) => map.set_location(id, location(v)),
            Op::SetMaxOsd(n) => map.set_max_osd(n),
            Op::InsertPool(pool) => map.insert_pool(pool),
            Op::RemovePool(id) => map.remove_pool(id).map(drop),
            Op::UpmapItems(pg, items) => map.set_pg_upmap_items(pg, items),
            Op::Upmap(pg, osds) => map.set_pg_upmap(pg, osds),
            Op::PgTemp(pg, osds) => map.set_pg_temp(pg, osds),
            Op::PrimaryTemp(pg, osd) => map.set_primary_temp(pg, osd),
            Op::Crush(h, p, s) => {
                map.set_crush(crush(h, p, s));
                Ok(())
            }
        }
    }

    /// The same edit written by hand as an incremental on top of `map`.
    fn to_inc(&self, map: &OsdMap) -> OsdMapIncremental {
        let mut inc = OsdMapIncremental::new(map.fsid(), map.epoch() + 1);
        match self.clone() {
            Op::MarkUp(id) => {
                inc.new_up.insert(id, true);
            }
            Op::MarkDown(id) => {
                inc.new_up.insert(id, false);
            }
            Op::Reweight(id, w) => {
                inc.new_weight.insert(id, w);
            }
            Op::RemoveOsd(id) => {
                inc.removed_osds.insert(id);
            }
            Op::AddOsd(id, up, w, loc) => {
                if id >= map.max_osd() {
                    inc.new_max_osd = Some(id + 1);
                }
                let info = OsdInfo {
                    addr: None,
                    up,
                    location: location(loc),
                    up_from: 0,
                };
                inc.new_osds.insert(id, info);
                if w != 0 {
                    inc.new_weight.insert(id, w);
                }
            }
            Op::SetAddr(id, port) => {
                inc.new_addr.insert(id, addr(port));
            }
            Op::SetLocation(id, v) => {
                inc.new_location.insert(id, location(v));
            }
            Op::SetMaxOsd(n) => inc.new_max_osd = Some(n),
            Op::InsertPool(pool) => {
                inc.new_pools.insert(pool.id, pool);
            }
            Op::RemovePool(id) => {
                inc.removed_pools.insert(id);
            }
            Op::UpmapItems(pg, items) if items.is_empty() => {
                inc.removed_pg_upmap_items.insert(pg);
            }
            Op::UpmapItems(pg, items) => {
                inc.new_pg_upmap_items.insert(pg, items);
            }
            Op::Upmap(pg, osds) if osds.is_empty() => {
                inc.removed_pg_upmap.insert(pg);
            }
            Op::Upmap(pg, osds) => {
                inc.new_pg_upmap.insert(pg, osds);
            }
            Op::PgTemp(pg, osds) if osds.is_empty() => {
                inc.removed_pg_temp.insert(pg);
            }
            Op::PgTemp(pg, osds) => {
                inc.new_pg_temp.insert(pg, osds);
            }
            Op::PrimaryTemp(pg, None) => {
                inc.removed_primary_temp.insert(pg);
            }
            Op::PrimaryTemp(pg, Some(o)) => {
                inc.new_primary_temp.insert(pg, o);
            }
            Op::Crush(h, p, s) => inc.new_crush = Some(crush(h, p, s)),
        }
        inc
    }
}

fn osd_id() -> impl Strategy<Value = i32> {
    -1..18i32
}

fn weight() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(WEIGHT_IN), 0..=WEIGHT_IN, Just(WEIGHT_IN + 1)]
}

fn pg_id() -> impl Strategy<Value = PgId> {
    (0..5i64, 0..24u32).prop_map(|(pool, seed)| PgId::new(pool, seed))
}

fn target() -> impl Strategy<Value = i32> {
    prop_oneof![8 => 0..18i32, 1 => Just(ITEM_NONE), 1 => Just(-2)]
}

fn pool() -> impl Strategy<Value = Pool> {
    (
        -1..5i64,
        0..4u8,
        any::<bool>(),
        1..24u32,
        1..3u32,
        1..6u32,
        0..10u8,
    )
        .prop_map(|(id, name, erasure, pg_num, div, size, quirk)| {
            let name = format!("p{name}");
            let mut p = if erasure {
                Pool::new_erasure(id, &name, size.max(2) - 1, 1, pg_num, 1)
            } else {
                Pool::new_replicated(id, &name, size, pg_num, if size > 2 { 0 } else { 2 })
            };
            p.pgp_num = (pg_num / div).max(1);
            p.pgp_num_target = p.pgp_num;
            match quirk {
                0 => p.pgp_num = pg_num + 1,
                1 => p.flags = shoal_map::PoolFlags::empty(),
                _ => {}
            }
            p
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => osd_id().prop_map(Op::MarkUp),
        3 => osd_id().prop_map(Op::MarkDown),
        3 => (osd_id(), weight()).prop_map(|(i, w)| Op::Reweight(i, w)),
        1 => osd_id().prop_map(Op::RemoveOsd),
        2 => (osd_id(), any::<bool>(), weight(), any::<u8>())
            .prop_map(|(i, up, w, l)| Op::AddOsd(i, up, w, l)),
        1 => (osd_id(), proptest::option::of(6800..6810u16)).prop_map(|(i, p)| Op::SetAddr(i, p)),
        1 => (osd_id(), any::<u8>()).prop_map(|(i, v)| Op::SetLocation(i, v)),
        1 => (-1..20i32).prop_map(Op::SetMaxOsd),
        2 => pool().prop_map(Op::InsertPool),
        1 => (0..5i64).prop_map(Op::RemovePool),
        3 => (pg_id(), vec((0..18i32, target()), 0..4)).prop_map(|(pg, v)| Op::UpmapItems(pg, v)),
        1 => (pg_id(), vec(target(), 0..4)).prop_map(|(pg, v)| Op::Upmap(pg, v)),
        2 => (pg_id(), vec(target(), 0..4)).prop_map(|(pg, v)| Op::PgTemp(pg, v)),
        1 => (pg_id(), proptest::option::of(target())).prop_map(|(pg, o)| Op::PrimaryTemp(pg, o)),
        1 => (1..6usize, 1..4usize, 0..3usize).prop_map(|(h, p, s)| Op::Crush(h, p, s)),
    ]
}

/// The map reached by applying `ops` directly, skipping the ones that fail.
fn build(ops: &[Op]) -> OsdMap {
    let mut map = base_map();
    for op in ops {
        let _ = op.mutate(&mut map);
    }
    map
}

/// Every PG of every pool, mapped with `ws`.
fn all_mappings(map: &OsdMap, ws: &mut Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for &pool in map.pools().keys() {
        for pg in map.pool_pgs(pool).unwrap() {
            let m = map.pg_to_up_acting(pg, ws).unwrap();
            out.push(m.dump_line(pg).to_string());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn incrementals_compose_like_direct_edits(ops in vec(op(), 1..30)) {
        let start = base_map();
        let mut cur = start.clone();
        let mut incs = Vec::new();
        for op in &ops {
            let mut direct = cur.clone();
            let by_hand = op.mutate(&mut direct);
            let inc = op.to_inc(&cur);
            let mut via = cur.clone();
            let applied = via.apply(&inc);
            prop_assert_eq!(by_hand.is_ok(), applied.is_ok(), "{:?}: {:?} vs {:?}", op, by_hand, applied);
            if applied.is_err() {
                prop_assert_eq!(&via, &cur, "failed apply must not change the map");
                continue;
            }
            direct.set_epoch(cur.epoch() + 1);
            prop_assert_eq!(&via, &direct);
            prop_assert!(via.validate().is_ok());
            let diff = OsdMap::diff(&cur, &direct);
            let mut again = cur.clone();
            again.apply(&diff).unwrap();
            prop_assert_eq!(&again, &direct);
            incs.push(inc);
            cur = direct;
        }
        // Replaying the encoded incrementals from the start gives the same map.
        let mut replay = start.clone();
        for inc in &incs {
            let decoded = OsdMapIncremental::decode(&inc.encode()).unwrap();
            prop_assert_eq!(&decoded, inc);
            replay.apply(&decoded).unwrap();
        }
        prop_assert_eq!(&replay, &cur);
        // One diff can carry all the changes at once.
        let mut squashed = cur.clone();
        squashed.set_epoch(start.epoch() + 1);
        let mut s = start.clone();
        s.apply(&OsdMap::diff(&start, &squashed)).unwrap();
        prop_assert_eq!(s, squashed);
    }

    #[test]
    fn encode_decode_round_trips(ops in vec(op(), 0..30)) {
        let map = build(&ops);
        let bytes = map.encode();
        let decoded = OsdMap::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &map);
        prop_assert_eq!(decoded.encode(), bytes, "encoding is deterministic");
        let inc = OsdMap::diff(&base_map(), &map);
        let inc_bytes = inc.encode();
        let inc2 = OsdMapIncremental::decode(&inc_bytes).unwrap();
        prop_assert_eq!(&inc2, &inc);
        prop_assert_eq!(inc2.encode(), inc_bytes);
    }

    #[test]
    fn mapping_is_deterministic_and_survives_decode(ops in vec(op(), 0..30)) {
        let map = build(&ops);
        let mut shared = base_map().new_workspace();
        let first = all_mappings(&map, &mut shared);
        prop_assert_eq!(&all_mappings(&map, &mut shared), &first, "workspace reuse");
        prop_assert_eq!(&all_mappings(&map, &mut map.new_workspace()), &first, "fresh workspace");
        let decoded = OsdMap::decode(&map.encode()).unwrap();
        prop_assert_eq!(&all_mappings(&decoded, &mut decoded.new_workspace()), &first);
        // Structural facts of every mapping.
        let mut ws = map.new_workspace();
        for (&id, pool) in map.pools() {
            for pg in map.pool_pgs(id).unwrap() {
                let m = map.pg_to_up_acting(pg, &mut ws).unwrap();
                prop_assert!(m.raw.len() <= pool.size as usize);
                prop_assert!(m.up.iter().all(|&o| o == ITEM_NONE || map.is_up(o)));
                prop_assert!(m.acting.iter().all(|&o| o == ITEM_NONE || map.is_up(o)));
                if pool.can_shift_osds() {
                    prop_assert!(!m.up.contains(&ITEM_NONE));
                    prop_assert_eq!(m.up_primary, m.up.first().copied());
                } else {
                    prop_assert!(m.up.len() >= m.raw.len() || map.pg_upmap().contains_key(&pg));
                }
                if !map.primary_temp().contains_key(&pg) {
                    prop_assert!(m.acting_primary.is_none_or(|p| m.acting.contains(&p)));
                }
            }
        }
    }

    #[test]
    fn damaged_bytes_never_panic(
        ops in vec(op(), 0..12),
        flips in vec((any::<Index>(), any::<u8>()), 1..6),
        cut in any::<Index>(),
    ) {
        let map = build(&ops);
        let inc = OsdMap::diff(&base_map(), &map);
        let mons = MonMap::new(FSID, vec![
            MonInfo { name: "a".into(), addr: SocketAddr::from(([127, 0, 0, 1], 6789)) },
            MonInfo { name: "b".into(), addr: SocketAddr::from(([127, 0, 0, 1], 6790)) },
        ]);
        for bytes in [map.encode(), inc.encode(), mons.encode()] {
            let short = &bytes[..cut.index(bytes.len())];
            prop_assert!(OsdMap::decode(short).is_err());
            prop_assert!(OsdMapIncremental::decode(short).is_err());
            prop_assert!(MonMap::decode(short).is_err());
            let mut bad = bytes.clone();
            for (i, v) in &flips {
                let i = i.index(bad.len());
                bad[i] ^= v | 1;
            }
            if let Ok(m) = OsdMap::decode(&bad) {
                prop_assert!(m.validate().is_ok());
                exercise(&m);
            }
            if let Ok(i) = OsdMapIncremental::decode(&bad) {
                prop_assert!(i.validate().is_ok());
                let _ = map.clone().apply(&i);
            }
            if let Ok(m) = MonMap::decode(&bad) {
                prop_assert!(m.validate().is_ok());
            }
        }
    }
}

/// Maps every PG of a decoded (possibly damaged) map, unless damage raised
/// the CRUSH try counts so far that mapping could take very long.
fn exercise(map: &OsdMap) {
    let small = |n: i32| (0..=200).contains(&n);
    let tries_ok = map.crush().tunables.choose_total_tries <= 200
        && map
            .crush()
            .rules
            .iter()
            .flatten()
            .flat_map(|r| &r.steps)
            .all(|s| match *s {
                RuleStep::SetChooseTries(n) | RuleStep::SetChooseleafTries(n) => small(n),
                _ => true,
            });
    if tries_ok && map.pools().values().all(|p| p.pg_num <= 4096) {
        let _ = all_mappings(map, &mut map.new_workspace());
    }
}
