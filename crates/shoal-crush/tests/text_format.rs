//! The text format against Ceph's own output: every `d0*` vector map is
//! parsed and compared with `crushtool --dump` (map.dump.json) and with the
//! derived data of Ceph's binary encoding (map.bin), then printed back and
//! compared with map.txt byte for byte.

mod common;

use serde_json::Value;
use shoal_crush::text::{parse, print};
use shoal_crush::{BucketAlg, CrushMap, RuleStep, RuleType};

fn parsed(dir: &std::path::Path) -> CrushMap {
    parse(&common::read(dir, "map.txt")).unwrap_or_else(|e| panic!("{dir:?}: {e}"))
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn compare_tunables(map: &CrushMap, dump: &Value) {
    let t = &dump["tunables"];
    let m = &map.tunables;
    let pairs = [
        ("choose_local_tries", i64::from(m.choose_local_tries)),
        (
            "choose_local_fallback_tries",
            i64::from(m.choose_local_fallback_tries),
        ),
        ("choose_total_tries", i64::from(m.choose_total_tries)),
        (
            "chooseleaf_descend_once",
            i64::from(m.chooseleaf_descend_once),
        ),
        ("chooseleaf_vary_r", i64::from(m.chooseleaf_vary_r)),
        ("chooseleaf_stable", i64::from(m.chooseleaf_stable)),
        ("straw_calc_version", i64::from(m.straw_calc_version)),
        ("allowed_bucket_algs", i64::from(m.allowed_bucket_algs)),
    ];
    for (name, value) in pairs {
        assert_eq!(int(&t[name]), value, "tunable {name}");
    }
}

fn compare_devices_and_types(map: &CrushMap, dump: &Value) {
    let devices = dump["devices"].as_array().expect("devices");
    assert_eq!(map.devices.len(), devices.len());
    for (d, j) in map.devices.iter().zip(devices) {
        assert_eq!(i64::from(d.id), int(&j["id"]));
        assert_eq!(d.name, j["name"].as_str().expect("name"));
        assert_eq!(d.class.as_deref(), j["class"].as_str());
    }
    let types = dump["types"].as_array().expect("types");
    assert_eq!(map.types.len(), types.len());
    for (t, j) in map.types.iter().zip(types) {
        assert_eq!(i64::from(t.id), int(&j["type_id"]));
        assert_eq!(t.name, j["name"].as_str().expect("type name"));
    }
}

fn compare_buckets(map: &CrushMap, dump: &Value) {
    let buckets = dump["buckets"].as_array().expect("buckets");
    assert_eq!(map.buckets.iter().flatten().count(), buckets.len());
    for j in buckets {
        let id = int(&j["id"]) as i32;
        let b = map
            .bucket(id)
            .unwrap_or_else(|| panic!("bucket {id} missing"));
        let name = j["name"].as_str().expect("name");
        assert_eq!(b.name, name);
        assert_eq!(i64::from(b.type_id), int(&j["type_id"]), "{name} type");
        assert_eq!(i64::from(b.weight), int(&j["weight"]), "{name} weight");
        assert_eq!(b.alg.name(), j["alg"].as_str().expect("alg"), "{name} alg");
        assert_eq!((b.hash, j["hash"].as_str()), (0, Some("rjenkins1")));
        let items = j["items"].as_array().expect("items");
        assert_eq!(b.items.len(), items.len(), "{name} size");
        for (pos, it) in items.iter().enumerate() {
            assert_eq!(int(&it["pos"]), pos as i64);
            assert_eq!(i64::from(b.items[pos]), int(&it["id"]), "{name} item {pos}");
            assert_eq!(
                i64::from(b.item_weights[pos]),
                int(&it["weight"]),
                "{name} weight {pos}"
            );
        }
        match name.split_once('~') {
            Some((orig, class)) => {
                let orig_id = map.bucket_by_name(orig).expect("original").id;
                assert_eq!(b.shadow_of, Some((orig_id, class.to_string())), "{name}");
                let recorded = map.bucket(orig_id).expect("original").class_ids.clone();
                assert!(
                    recorded.contains(&(class.to_string(), id)),
                    "{name} class id"
                );
            }
            None => assert_eq!(b.shadow_of, None, "{name}"),
        }
    }
}

fn step_json(map: &CrushMap, s: &RuleStep) -> Value {
    let tname = |t: i32| map.type_name(t).unwrap_or("?").to_string();
    let choose =
        |op: &str, num: i32, t: i32| serde_json::json!({"op": op, "num": num, "type": tname(t)});
    match *s {
        RuleStep::Noop => serde_json::json!({"op": "noop"}),
        RuleStep::Take(id) => serde_json::json!({
            "op": "take", "item": id, "item_name": map.item_name(id).unwrap_or("?")
        }),
        RuleStep::Emit => serde_json::json!({"op": "emit"}),
        RuleStep::ChooseFirstn { num, type_id } => choose("choose_firstn", num, type_id),
        RuleStep::ChooseIndep { num, type_id } => choose("choose_indep", num, type_id),
        RuleStep::ChooseleafFirstn { num, type_id } => choose("chooseleaf_firstn", num, type_id),
        RuleStep::ChooseleafIndep { num, type_id } => choose("chooseleaf_indep", num, type_id),
        RuleStep::SetChooseTries(n) => serde_json::json!({"op": "set_choose_tries", "num": n}),
        RuleStep::SetChooseleafTries(n) => {
            serde_json::json!({"op": "set_chooseleaf_tries", "num": n})
        }
        RuleStep::SetChooseLocalTries(n) => {
            serde_json::json!({"op": "set_choose_local_tries", "num": n})
        }
        RuleStep::SetChooseLocalFallbackTries(n) => {
            serde_json::json!({"op": "set_choose_local_fallback_tries", "num": n})
        }
        RuleStep::SetChooseleafVaryR(n) => {
            serde_json::json!({"op": "set_chooseleaf_vary_r", "num": n})
        }
        RuleStep::SetChooseleafStable(n) => {
            serde_json::json!({"op": "set_chooseleaf_stable", "num": n})
        }
    }
}

fn compare_rules(map: &CrushMap, dump: &Value) {
    let rules = dump["rules"].as_array().expect("rules");
    assert_eq!(map.rules.iter().flatten().count(), rules.len());
    for j in rules {
        let id = int(&j["rule_id"]) as i32;
        let r = map.rule(id).unwrap_or_else(|| panic!("rule {id} missing"));
        assert_eq!(r.name, j["rule_name"].as_str().expect("rule name"));
        assert_eq!(i64::from(r.rule_type.id()), int(&j["type"]));
        assert_eq!(i64::from(r.min_size), int(&j["min_size"]));
        assert_eq!(i64::from(r.max_size), int(&j["max_size"]));
        let steps: Vec<Value> = r.steps.iter().map(|s| step_json(map, s)).collect();
        assert_eq!(&Value::Array(steps), &j["steps"], "rule {id} steps");
    }
}

#[test]
fn parse_matches_ceph_dump() {
    for dir in common::map_dirs() {
        let map = parsed(&dir);
        let dump: Value =
            serde_json::from_str(&common::read(&dir, "map.dump.json")).expect("dump json");
        compare_tunables(&map, &dump);
        compare_devices_and_types(&map, &dump);
        compare_buckets(&map, &dump);
        compare_rules(&map, &dump);
        assert!(map.choose_args.is_empty());
        assert_eq!(dump["choose_args"], serde_json::json!({}));
    }
}

#[test]
fn derived_data_matches_ceph_binary() {
    for dir in common::map_dirs() {
        let map = parsed(&dir);
        let bin = std::fs::read(dir.join("map.bin")).expect("map.bin");
        let ceph = common::ceph_buckets(&bin);
        assert_eq!(ceph.len(), map.buckets.iter().flatten().count(), "{dir:?}");
        for c in ceph {
            let b = map.bucket(c.id).expect("bucket");
            let ctx = format!("{dir:?} bucket {}", b.name);
            assert_eq!(i32::from(c.type_id), b.type_id, "{ctx}");
            assert_eq!(c.alg as u32, b.alg.id(), "{ctx}");
            assert_eq!(c.hash, b.hash, "{ctx}");
            assert_eq!(c.weight, b.weight, "{ctx}");
            assert_eq!(c.items, b.items, "{ctx}");
            match b.alg {
                BucketAlg::Uniform => {
                    assert!(
                        b.item_weights.iter().all(|&w| w == c.uniform_weight),
                        "{ctx}"
                    )
                }
                BucketAlg::Tree => assert_eq!(c.node_weights, b.node_weights, "{ctx}"),
                _ => assert_eq!(c.item_weights, b.item_weights, "{ctx}"),
            }
            assert_eq!(c.straws, b.straws, "{ctx} straws");
            assert_eq!(c.sum_weights, b.sum_weights, "{ctx} sums");
        }
    }
}

#[test]
fn print_reproduces_map_txt_byte_for_byte() {
    for dir in common::map_dirs() {
        let text = common::read(&dir, "map.txt");
        let printed = print(&parsed(&dir));
        if printed != text {
            let line = printed
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .map_or(0, |l| l + 1);
            panic!("{dir:?}: printed map differs from map.txt at line {line}");
        }
        assert_eq!(parse(&printed).expect("reparse"), parsed(&dir));
    }
}

#[test]
fn legacy_tunables_and_rule_types() {
    let dir = common::vectors_dir().join("d07_argonaut_straw");
    let map = parsed(&dir);
    assert_eq!(map.tunables, shoal_crush::Tunables::legacy());
    let dir = common::vectors_dir().join("d05_ec_8x4");
    let map = parsed(&dir);
    assert!(
        map.rules
            .iter()
            .flatten()
            .all(|r| r.rule_type == RuleType::Erasure)
    );
}
