//! Unit tests of placement semantics (upmaps, pg_temp, primary_temp, down
//! and out OSDs, rule lookup), map editing, incrementals and the codec.

mod common;

use common::{FSID, base_map, crush};
use shoal_map::{
    CrushLocation, Fsid, ITEM_NONE, MapError, OsdInfo, OsdMap, OsdMapIncremental, PgId, Pool,
    UpActing, WEIGHT_IN,
};

const REP: i64 = 1;
const EC: i64 = 2;

fn map_pg(map: &OsdMap, pg: PgId) -> UpActing {
    map.pg_to_up_acting(pg, &mut map.new_workspace()).unwrap()
}

/// An OSD of the map that is not in `set`.
fn outsider(map: &OsdMap, set: &[i32]) -> i32 {
    map.osd_ids().find(|o| !set.contains(o)).unwrap()
}

#[test]
fn plain_mapping_is_raw_up_acting() {
    let map = base_map();
    for pg in map.pool_pgs(REP).unwrap() {
        let m = map_pg(&map, pg);
        assert_eq!(m.raw.len(), 3);
        assert_eq!(m.raw, m.up);
        assert_eq!(m.up, m.acting);
        assert_eq!(m.up_primary, Some(m.up[0]));
        assert_eq!(m.acting_primary, m.up_primary);
        assert_eq!(m.raw_primary, m.up_primary);
        // One OSD per host (3 OSDs per host, dense ids).
        let mut hosts: Vec<i32> = m.up.iter().map(|o| o / 3).collect();
        hosts.sort();
        hosts.dedup();
        assert_eq!(hosts.len(), 3, "{pg}: {m:?}");
    }
}

#[test]
fn upmap_items_replace_first_match() {
    let mut map = base_map();
    let pg = PgId::new(REP, 3);
    let before = map_pg(&map, pg);
    let [a, b, c] = [before.up[0], before.up[1], before.up[2]];
    let x = outsider(&map, &[a, b, c]);
    map.set_pg_upmap_items(pg, vec![(b, x)]).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.raw, before.raw, "raw is before upmaps");
    assert_eq!(m.up, vec![a, x, c]);
    assert_eq!(m.acting, m.up);
    assert_eq!(
        map.pg_to_raw_upmap(pg, &mut map.new_workspace()).unwrap(),
        vec![a, x, c]
    );
    // The dump line shows raw before and up after the upmap.
    assert_eq!(
        m.dump_line(pg).to_string(),
        format!(
            "1.3 raw ([{a},{b},{c}], p{a}) up ([{a},{x},{c}], p{a}) acting ([{a},{x},{c}], p{a})"
        )
    );
}

#[test]
fn upmap_items_skip_existing_target_out_target_and_missing_source() {
    let mut map = base_map();
    let pg = PgId::new(REP, 5);
    let before = map_pg(&map, pg);
    let [a, b, c] = [before.up[0], before.up[1], before.up[2]];
    let x = outsider(&map, &[a, b, c]);

    // Target already in the set: ignored.
    map.set_pg_upmap_items(pg, vec![(a, c)]).unwrap();
    assert_eq!(map_pg(&map, pg).up, before.up);
    // No bidirectional swap: [[a,b],[b,a]] changes nothing.
    map.set_pg_upmap_items(pg, vec![(a, b), (b, a)]).unwrap();
    assert_eq!(map_pg(&map, pg).up, before.up);
    // Source not in the set: ignored.
    map.set_pg_upmap_items(pg, vec![(x, a)]).unwrap();
    assert_eq!(map_pg(&map, pg).up, before.up);
    // Target marked out (reweight 0): ignored; a partial reweight is not out.
    map.set_pg_upmap_items(pg, vec![(a, x)]).unwrap();
    map.mark_out(x).unwrap();
    assert_eq!(map_pg(&map, pg).up, before.up);
    map.set_reweight(x, 0x8000).unwrap();
    assert_eq!(map_pg(&map, pg).up, vec![x, b, c]);
    // Pairs apply in order: a -> x, then x -> y.
    let y = outsider(&map, &[a, b, c, x]);
    map.set_pg_upmap_items(pg, vec![(a, x), (x, y)]).unwrap();
    assert_eq!(map_pg(&map, pg).up, vec![y, b, c]);
    // A down target is substituted in raw, then dropped from up.
    map.set_pg_upmap_items(pg, vec![(b, x)]).unwrap();
    map.mark_down(x).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(
        map.pg_to_raw_upmap(pg, &mut map.new_workspace()).unwrap(),
        vec![a, x, c]
    );
    assert_eq!(m.up, vec![a, c]);
    // A target beyond max_osd is not "marked out": substituted, then dropped.
    map.set_pg_upmap_items(pg, vec![(a, 1000)]).unwrap();
    assert_eq!(map_pg(&map, pg).up, vec![b, c]);
    // Removing the entry restores the CRUSH mapping.
    map.set_pg_upmap_items(pg, vec![]).unwrap();
    map.mark_up(x).unwrap();
    assert_eq!(map_pg(&map, pg).up, before.up);
}

#[test]
fn pg_upmap_replaces_set_unless_a_target_is_out() {
    let mut map = base_map();
    let pg = PgId::new(REP, 7);
    let before = map_pg(&map, pg);
    let x = outsider(&map, &before.up);
    let y = outsider(&map, &[&before.up[..], &[x]].concat());
    let full = vec![x, y, before.up[0]];
    map.set_pg_upmap(pg, full.clone()).unwrap();
    assert_eq!(map_pg(&map, pg).up, full);
    // Items then apply on top of the full mapping.
    let z = outsider(&map, &[&full[..], &before.up[..]].concat());
    map.set_pg_upmap_items(pg, vec![(y, z)]).unwrap();
    assert_eq!(map_pg(&map, pg).up, vec![x, z, before.up[0]]);
    // One target out: neither the full mapping nor the items apply.
    map.mark_out(x).unwrap();
    assert_eq!(map_pg(&map, pg).up, before.up);
}

#[test]
fn down_osds_leave_up_but_stay_in_raw() {
    let mut map = base_map();
    let pg = PgId::new(REP, 2);
    let before = map_pg(&map, pg);
    map.mark_down(before.up[0]).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.raw, before.raw);
    assert_eq!(m.raw_primary, Some(before.up[0]));
    assert_eq!(m.up, before.up[1..].to_vec());
    assert_eq!(m.up_primary, Some(before.up[1]));
    assert_eq!(m.acting_primary, Some(before.up[1]));

    // Erasure: positions are kept, the hole is ITEM_NONE.
    let pg = PgId::new(EC, 1);
    let mut map = base_map();
    let before = map_pg(&map, pg);
    map.mark_down(before.up[0]).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.up, vec![ITEM_NONE, before.up[1], before.up[2]]);
    assert_eq!(m.up_primary, Some(before.up[1]));
    assert_eq!(
        m.up.to_string(),
        format!("[2147483647,{},{}]", before.up[1], before.up[2])
    );
}

#[test]
fn pg_temp_and_primary_temp_set_acting() {
    let mut map = base_map();
    let pg = PgId::new(REP, 9);
    let before = map_pg(&map, pg);
    let x = outsider(&map, &before.up);
    map.set_pg_temp(pg, vec![x, before.up[1]]).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.up, before.up);
    assert_eq!(m.acting, vec![x, before.up[1]]);
    assert_eq!(m.acting_primary, Some(x));
    assert_eq!(m.up_primary, Some(before.up[0]));

    // primary_temp overrides the pg_temp primary.
    map.set_primary_temp(pg, Some(before.up[1])).unwrap();
    assert_eq!(map_pg(&map, pg).acting_primary, Some(before.up[1]));
    // Down members of pg_temp are dropped (replicated).
    map.set_primary_temp(pg, None).unwrap();
    map.mark_down(x).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.acting, vec![before.up[1]]);
    assert_eq!(m.acting_primary, Some(before.up[1]));
    // All members down: acting falls back to up; primary_temp still wins.
    map.set_pg_temp(pg, vec![x]).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.acting, m.up);
    assert_eq!(m.acting_primary, m.up_primary);
    map.set_primary_temp(pg, Some(before.up[2])).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.acting, m.up);
    assert_eq!(m.acting_primary, Some(before.up[2]));
}

#[test]
fn pg_temp_on_erasure_pool_keeps_holes() {
    let mut map = base_map();
    let pg = PgId::new(EC, 3);
    let before = map_pg(&map, pg);
    let [a, b, c] = [before.up[0], before.up[1], before.up[2]];
    map.set_pg_temp(pg, vec![a, b, c]).unwrap();
    map.mark_down(a).unwrap();
    let m = map_pg(&map, pg);
    assert_eq!(m.acting, vec![ITEM_NONE, b, c]);
    assert_eq!(m.acting_primary, Some(b));
    assert_eq!(m.up, vec![ITEM_NONE, b, c]);
}

#[test]
fn raw_seeds_fold_for_table_lookups() {
    let mut map = base_map();
    // pg_num 12 (mask 15): seed 0xd folds to 5, and pgp_num folds the same.
    let mut pool = map.pool(REP).unwrap().clone();
    pool.pg_num = 12;
    pool.pgp_num = 12;
    pool.pgp_num_target = 12;
    map.insert_pool(pool).unwrap();
    let (raw, folded) = (PgId::new(REP, 0xd), PgId::new(REP, 5));
    let x = outsider(&map, &map_pg(&map, folded).up);
    map.set_pg_temp(folded, vec![x]).unwrap();
    assert_eq!(map_pg(&map, raw), map_pg(&map, folded));
    assert_eq!(map_pg(&map, raw).acting, vec![x]);
}

#[test]
fn object_to_pg_hashes_names_keys_and_namespaces() {
    let map = base_map();
    let pool = map.pool(REP).unwrap();
    let pg = map.object_to_pg(REP, "foo").unwrap();
    // "foo" hashes to 2143417350; 16 PGs -> & 15.
    assert_eq!(pg, PgId::new(REP, 2_143_417_350 & 15));
    assert_eq!(map.object_to_pg(REP, b"foo".as_slice()).unwrap(), pg);
    let with_key = map
        .object_locator_to_pg(REP, b"bar", Some(b"foo"), b"")
        .unwrap();
    assert_eq!(with_key, pg);
    let ns = map.object_locator_to_pg(REP, b"foo", None, b"ns").unwrap();
    let h = pool.hash_key(b"ns\x1ffoo", b"");
    assert_eq!(ns.seed, h & 15);
    assert_eq!(map.object_to_pg(99, "foo"), Err(MapError::NoSuchPool(99)));
    assert!(matches!(
        map.pg_to_up_acting(PgId::new(99, 0), &mut map.new_workspace()),
        Err(MapError::NoSuchPool(99))
    ));
}

#[test]
fn rule_type_and_size_must_match() {
    let mut map = base_map();
    // Rule 2 accepts sizes 1..=2 only.
    map.insert_pool(Pool::new_replicated(3, "small", 3, 4, 2))
        .unwrap();
    map.insert_pool(Pool::new_replicated(4, "small2", 2, 4, 2))
        .unwrap();
    // A replicated pool on the erasure rule, an erasure pool on a replicated rule.
    map.insert_pool(Pool::new_replicated(5, "wrongtype", 3, 4, 1))
        .unwrap();
    map.insert_pool(Pool::new_erasure(6, "wrongtype2", 2, 1, 4, 0))
        .unwrap();
    map.insert_pool(Pool::new_replicated(7, "norule", 3, 4, 42))
        .unwrap();
    let mut ws = map.new_workspace();
    for (pool, want) in [(3, 0), (4, 2), (5, 0), (6, 0), (7, 0)] {
        let m = map.pg_to_up_acting(PgId::new(pool, 0), &mut ws).unwrap();
        assert_eq!(m.raw.len(), want, "pool {pool}");
        if want == 0 {
            assert_eq!(
                m.dump_line(PgId::new(pool, 0)).to_string(),
                format!("{pool}.0 raw ([], p-1) up ([], p-1) acting ([], p-1)")
            );
        }
    }
}

#[test]
fn from_crush_derives_locations_and_marks_up_in() {
    let map = base_map();
    assert_eq!(map.epoch(), 1);
    assert_eq!(map.max_osd(), 12);
    for id in 0..12 {
        assert!(map.is_up(id) && map.is_in(id));
        assert_eq!(map.weight(id), WEIGHT_IN);
        let loc = &map.osd(id).unwrap().location;
        assert_eq!(loc.to_string(), format!("host=host{} root=default", id / 3));
    }
    assert_eq!(
        CrushLocation::from_crush(map.crush(), -2).to_string(),
        "root=default"
    );
}

#[test]
fn mutators_reject_bad_input() {
    let mut map = base_map();
    assert_eq!(map.mark_down(12), Err(MapError::NoSuchOsd(12)));
    assert_eq!(map.mark_up(-1), Err(MapError::NoSuchOsd(-1)));
    assert_eq!(
        map.set_reweight(0, 0x10001),
        Err(MapError::BadWeight(0x10001))
    );
    assert_eq!(
        map.add_osd(0, OsdInfo::default(), 0),
        Err(MapError::OsdExists(0))
    );
    assert!(map.add_osd(-5, OsdInfo::default(), 0).is_err());
    assert!(map.set_max_osd(-1).is_err());
    assert!(map.set_pg_temp(PgId::new(9, 0), vec![1]).is_err());
    assert!(map.set_pg_temp(PgId::new(REP, 0), vec![-3]).is_err());
    assert!(map.set_pg_temp(PgId::new(REP, 0), vec![1; 33]).is_err());
    assert!(
        map.set_pg_upmap_items(PgId::new(REP, 0), vec![(1, -2)])
            .is_err()
    );
    assert!(
        map.insert_pool(Pool::new_replicated(9, "rep", 3, 8, 0))
            .is_err(),
        "dup name"
    );
    assert!(map.remove_pool(9).is_err());
    map.validate().unwrap();

    // Growing through add_osd; removing zeroes the reweight.
    map.add_osd(20, OsdInfo::default(), WEIGHT_IN).unwrap();
    assert_eq!(map.max_osd(), 21);
    assert!(map.is_in(20) && !map.is_up(20));
    map.remove_osd(20).unwrap();
    assert_eq!(map.weight(20), 0);
    map.validate().unwrap();
    // Removing a pool drops its PG table entries.
    map.set_pg_temp(PgId::new(EC, 0), vec![1, 2, 3]).unwrap();
    map.remove_pool(EC).unwrap();
    assert!(map.pg_temp().is_empty());
}

#[test]
fn apply_checks_epoch_and_fsid_and_is_atomic() {
    let map = base_map();
    let mut next = map.clone();
    next.set_epoch(2);
    next.mark_down(0).unwrap();
    next.mark_out(1).unwrap();
    let inc = OsdMap::diff(&map, &next);
    assert_eq!(inc.new_up.get(&0), Some(&false));
    assert_eq!(inc.new_weight.get(&1), Some(&0));

    let mut wrong_epoch = inc.clone();
    wrong_epoch.epoch = 3;
    let mut m = map.clone();
    assert!(matches!(
        m.apply(&wrong_epoch),
        Err(MapError::EpochMismatch { current: 1, got: 3 })
    ));
    let mut wrong_fsid = inc.clone();
    wrong_fsid.fsid = Fsid::ZERO;
    assert!(matches!(
        m.apply(&wrong_fsid),
        Err(MapError::FsidMismatch { .. })
    ));
    // A bad part anywhere leaves the map untouched.
    let mut bad = inc.clone();
    bad.new_weight.insert(55, WEIGHT_IN);
    assert_eq!(m.apply(&bad), Err(MapError::NoSuchOsd(55)));
    assert_eq!(m, map);
    let mut bad = inc.clone();
    bad.new_pg_temp.insert(PgId::new(REP, 0), vec![1]);
    bad.removed_pools.insert(REP);
    assert_eq!(m.apply(&bad), Err(MapError::NoSuchPool(REP)));
    assert_eq!(m, map);

    m.apply(&inc).unwrap();
    assert_eq!(m, next);
    // Applying twice fails: the epoch moved on.
    assert!(m.apply(&inc).is_err());
}

#[test]
fn incremental_creates_osds_out_and_replaces_crush() {
    let map = base_map();
    let mut inc = OsdMapIncremental::new(FSID, 2);
    inc.new_max_osd = Some(14);
    inc.new_osds
        .insert(12, OsdInfo::up_at("host=host9".parse().unwrap()));
    inc.new_osds.insert(13, OsdInfo::default());
    inc.new_weight.insert(13, WEIGHT_IN);
    inc.new_crush = Some(crush(5, 3, 1));
    let mut m = map.clone();
    m.apply(&inc).unwrap();
    assert_eq!(m.max_osd(), 14);
    assert!(m.is_up(12) && !m.is_in(12), "new OSDs start out");
    assert!(m.is_in(13) && !m.is_up(13));
    assert_eq!(m.crush(), &crush(5, 3, 1));
    m.validate().unwrap();
    // Shrinking max_osd drops OSDs.
    let mut shrink = OsdMapIncremental::new(FSID, 3);
    shrink.new_max_osd = Some(4);
    m.apply(&shrink).unwrap();
    assert_eq!(m.osd_ids().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    // Creating an existing OSD is refused.
    let mut dup = OsdMapIncremental::new(FSID, 4);
    dup.new_osds.insert(0, OsdInfo::default());
    assert_eq!(m.apply(&dup), Err(MapError::OsdExists(0)));
}

#[test]
fn codec_rejects_foreign_and_damaged_bytes() {
    let map = base_map();
    let bytes = map.encode();
    assert_eq!(&bytes[..8], b"SHOALOSD");
    assert_eq!(OsdMap::decode(&bytes).unwrap(), map);
    assert!(matches!(
        OsdMap::decode(&bytes[..10]),
        Err(MapError::Truncated(_))
    ));
    assert!(matches!(
        OsdMap::decode(&bytes[..bytes.len() - 3]),
        Err(MapError::Truncated(_))
    ));
    let inc = OsdMapIncremental::new(FSID, 2);
    assert!(matches!(
        OsdMap::decode(&inc.encode()),
        Err(MapError::BadMagic { .. })
    ));
    let mut v2 = bytes.clone();
    v2[8] = 2;
    assert_eq!(OsdMap::decode(&v2), Err(MapError::UnsupportedVersion(2)));
    // Unaligned input decodes too.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&bytes);
    assert_eq!(OsdMap::decode(&shifted[1..]).unwrap(), map);
    // Garbage payload of the right length.
    let mut junk = bytes.clone();
    for b in &mut junk[16..] {
        *b = 0xa5;
    }
    assert!(OsdMap::decode(&junk).is_err());
}

#[test]
fn semantic_validation_after_decode() {
    // A structurally valid archive whose pool breaks an invariant: build it
    // by encoding an incremental with a bad pool (encode does not validate).
    let mut inc = OsdMapIncremental::new(FSID, 2);
    let mut pool = Pool::new_replicated(3, "bad", 3, 8, 0);
    pool.pgp_num = 9;
    inc.new_pools.insert(3, pool);
    assert!(matches!(
        OsdMapIncremental::decode(&inc.encode()),
        Err(MapError::InvalidPool { id: 3, .. })
    ));
    let mut inc = OsdMapIncremental::new(FSID, 2);
    inc.new_pg_temp.insert(PgId::new(1, 0), vec![1]);
    inc.removed_pg_temp.insert(PgId::new(1, 0));
    assert!(OsdMapIncremental::decode(&inc.encode()).is_err());
}
