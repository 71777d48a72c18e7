//! The upmap balancer, PG distribution targets and movement accounting, on
//! Ceph's reference maps.

use std::collections::BTreeSet;

use shoal_map::balancer::{BalanceOptions, apply_items, balance};
use shoal_map::distribution::{movement, pg_distribution, pool_targets};
use shoal_map::{Fsid, OsdMap, Pool};

fn vector_map(case: &str, pools: Vec<Pool>) -> OsdMap {
    let path = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../../shared/crush-vectors")
    .join(case)
    .join("map.txt");
    let text = std::fs::read_to_string(&path).expect("vector map");
    let crush = shoal_crush::text::parse(&text).expect("vector map parses");
    OsdMap::from_crush(Fsid::ZERO, crush, pools).expect("osdmap")
}

/// The bucket of `type_name` above `osd`.
fn ancestor(map: &OsdMap, osd: i32, type_name: &str) -> Option<i32> {
    let crush = map.crush();
    let t = crush.type_id(type_name)?;
    let mut cur = osd;
    loop {
        let parent = crush.parents(cur).first().copied()?;
        if crush.bucket(parent)?.type_id == t {
            return Some(parent);
        }
        cur = parent;
    }
}

/// Every PG of every pool keeps one replica per `domain` bucket.
fn assert_failure_domains(map: &OsdMap, domain: &str) {
    let mut ws = map.new_workspace();
    for pool in map.pools().values() {
        for pg in map.pool_pgs(pool.id).unwrap() {
            let up = map.pg_to_up_acting(pg, &mut ws).unwrap().up;
            let domains: BTreeSet<_> = up
                .as_slice()
                .iter()
                .map(|&o| ancestor(map, o, domain))
                .collect();
            assert_eq!(
                domains.len(),
                up.as_slice().len(),
                "pg {pg} up {:?}",
                up.as_slice()
            );
        }
    }
}

#[test]
fn balances_1000_osds_with_mixed_weights_within_one_pg() {
    let map = vector_map(
        "d03_h40x25_1000osd",
        vec![Pool::new_replicated(1, "rbd", 3, 4096, 0)],
    );
    let before = pg_distribution(&map, None).unwrap().stats();
    assert!(
        before.max_abs_deviation > 3.0,
        "the CRUSH spread starts uneven: {before:?}"
    );
    let plan = balance(&map, &BalanceOptions::default()).unwrap();
    let mut balanced = map.clone();
    apply_items(&mut balanced, &plan.upmap_items).unwrap();
    let after = pg_distribution(&balanced, None).unwrap();
    assert_eq!(
        after, plan.after,
        "the plan's prediction matches real placement"
    );
    let stats = after.stats();
    assert!(stats.max_abs_deviation <= 1.0 + 1e-9, "{stats:?}");
    assert_failure_domains(&balanced, "host");
    // Few moves: no more than the replicas that sit above target before.
    let excess: f64 = plan
        .before
        .osds
        .iter()
        .map(|o| (o.deviation() - 1.0).max(0.0))
        .sum();
    assert!(
        plan.moves.len() as f64 <= 1.5 * excess.ceil() + 1.0,
        "{} moves for an excess of {excess:.1}",
        plan.moves.len()
    );
}

#[test]
fn balances_two_step_rack_rule_keeping_its_structure() {
    // d04 rule 1: choose 2 racks, then 2 hosts in each (4 replicas).
    let map = vector_map(
        "d04_racks_4x3x4",
        vec![Pool::new_replicated(1, "ec", 4, 256, 1)],
    );
    let plan = balance(&map, &BalanceOptions::default()).unwrap();
    let mut balanced = map.clone();
    apply_items(&mut balanced, &plan.upmap_items).unwrap();
    let mut ws = balanced.new_workspace();
    let mut ws0 = map.new_workspace();
    for pg in balanced.pool_pgs(1).unwrap() {
        let up = balanced.pg_to_up_acting(pg, &mut ws).unwrap().up;
        let old = map.pg_to_up_acting(pg, &mut ws0).unwrap().up;
        let shape = |set: &[i32], t: &str| -> Vec<Vec<bool>> {
            set.iter()
                .map(|&a| {
                    set.iter()
                        .map(|&b| ancestor(&balanced, a, t) == ancestor(&balanced, b, t))
                        .collect()
                })
                .collect()
        };
        for t in ["rack", "host"] {
            assert_eq!(
                shape(up.as_slice(), t),
                shape(old.as_slice(), t),
                "pg {pg} {t} structure"
            );
        }
    }
    for p in &plan.pools {
        assert!(p.after.max_abs_deviation <= p.before.max_abs_deviation);
    }
}

#[test]
fn targets_respect_failure_domains() {
    // 3 hosts x 4 OSDs, size 3 with one replica per host: each host holds
    // exactly pg_num replicas whatever the weights.
    let mut map = vector_map("d02_h3x4", vec![Pool::new_replicated(1, "rbd", 3, 64, 0)]);
    let mut crush = map.crush().clone();
    crush.set_item_weight(0, 0x40000).unwrap(); // host0 becomes heavier
    map.set_crush(crush);
    let t = pool_targets(&map, map.pool(1).unwrap());
    let host0: f64 = (0..4).map(|o| t[&o]).sum();
    let host1: f64 = (4..8).map(|o| t[&o]).sum();
    assert!(
        (host0 - 64.0).abs() < 1e-6 && (host1 - 64.0).abs() < 1e-6,
        "{t:?}"
    );
    assert!(t[&0] > t[&1], "inside host0, osd.0 is heavier");
}

#[test]
fn movement_counts_what_changes() {
    let map = vector_map("d02_h3x4", vec![Pool::new_replicated(1, "rbd", 3, 128, 0)]);
    let same = movement(&map, &map, None).unwrap();
    assert_eq!((same.pgs_changed, same.replicas_moved), (0, 0));
    assert!(same.theoretical_min < 1e-6);

    let mut out = map.clone();
    out.set_reweight(5, 0).unwrap();
    let on_5 = pg_distribution(&map, None).unwrap().osd(5).unwrap().pgs as u64;
    let mv = movement(&map, &out, None).unwrap();
    assert!(mv.replicas_moved >= on_5, "{mv:?}, osd.5 held {on_5}");
    assert!(
        mv.replicas_moved <= 2 * on_5,
        "straw2 moves little beyond the lost replicas: {mv:?}"
    );
    // osd.5's target share (128 * 3 / 12 = 32) must move elsewhere.
    assert!((mv.theoretical_min - 32.0).abs() < 1e-6, "{mv:?}");
}
