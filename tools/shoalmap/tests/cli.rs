//! `shoalmap` as users run it: the real binary on real files, compared with
//! what Ceph's own tools printed for the same arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vectors() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../../shared/crush-vectors")
}

fn shoalmap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoalmap"))
        .args(args)
        .output()
        .expect("run shoalmap")
}

fn ok(args: &[&str]) -> String {
    let out = shoalmap(args);
    assert!(
        out.status.success(),
        "shoalmap {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn crush_test_prints_what_crushtool_prints() {
    // One case per map, from text and from Shoal's binary form.
    let tmp = tempfile::tempdir().unwrap();
    for (case, file, args) in [
        (
            "d02_h3x4",
            "r0_n3_pool5_x0-2999.txt",
            "--rule 0 --num-rep 3 --min-x 0 --max-x 2999 --pool-id 5 --show-mappings",
        ),
        (
            "d03_h40x25_1000osd",
            "r0_n3_w500=0.5_x0-2999.txt",
            "--rule 0 --num-rep 3 --min-x 0 --max-x 2999 --weight 500 0.5 --show-mappings",
        ),
        (
            "d05_ec_8x4",
            "r0_n6.tries.txt",
            "--rule 0 --num-rep 6 --min-x 0 --max-x 999 --show-choose-tries",
        ),
        (
            "d06_mixed_algs",
            "r2_n5_w26=0_x0-2999.txt",
            "--rule 2 --num-rep 5 --min-x 0 --max-x 2999 --weight 26 0 --show-mappings",
        ),
        (
            "d01_flat12",
            "r0_n3.util.txt",
            "--rule 0 --num-rep 3 --min-x 0 --max-x 999 --show-utilization",
        ),
    ] {
        let dir = vectors().join(case);
        let want = std::fs::read_to_string(dir.join(file)).unwrap();
        let text = dir.join("map.txt");
        let bin = tmp.path().join(format!("{case}.bin"));
        let ceph_bin = dir.join("map.bin"); // written by crushtool -c
        ok(&["crush", "compile", p(&text), "-o", p(&bin)]);
        for map in [&text, &bin, &ceph_bin] {
            let mut a = vec!["crush", "test", "--map", p(map)];
            a.extend(args.split(' '));
            assert_eq!(ok(&a), want, "{case} {file} from {}", map.display());
        }
        assert_eq!(
            ok(&["crush", "decompile", p(&bin)]),
            std::fs::read_to_string(&text).unwrap(),
            "{case}: compile + decompile is the identity"
        );
    }
}

#[test]
fn bad_input_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.txt");
    std::fs::write(
        &bad,
        "device 0 osd.0\ntype 0 osd\ntype 1 host\nhost h {\n\tid -1\n\talg straw3\n}\n",
    )
    .unwrap();
    let out = shoalmap(&["crush", "compile", p(&bad), "-o", p(&tmp.path().join("x"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("line 6, column 6"), "{err}");
    assert!(!tmp.path().join("x").exists(), "nothing written on error");

    let good = vectors().join("d02_h3x4/map.txt");
    let bin = tmp.path().join("m.bin");
    ok(&["crush", "compile", p(&good), "-o", p(&bin)]);
    let mut bytes = std::fs::read(&bin).unwrap();
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    std::fs::write(&bin, &bytes).unwrap();
    let out = shoalmap(&["crush", "decompile", p(&bin)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a truncated map is an error, not a crash"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("decoding binary CRUSH map"));

    let out = shoalmap(&[
        "crush",
        "test",
        "--map",
        p(&good),
        "--rule",
        "7",
        "--show-mappings",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rule 7 does not exist"));
}

#[test]
fn map_object_matches_osdmaptool() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = vectors().join("o02_pg12");
    let osdmap = tmp.path().join("osdmap");
    ok(&[
        "osdmap",
        "create",
        "--crush",
        p(&dir.join("crush.txt")),
        "--pool",
        "rbd:12:3",
        "-o",
        p(&osdmap),
    ]);
    let objects = std::fs::read_to_string(dir.join("objects.tsv")).unwrap();
    let mut checked = 0;
    for line in objects.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let bytes: Vec<u8> = (0..f[0].len() / 2)
            .map(|i| u8::from_str_radix(&f[0][2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let Ok(name) = String::from_utf8(bytes) else {
            continue; // not passable as an argument; covered by shoal-map's tests
        };
        if name.is_empty() || name.starts_with('-') || name.chars().any(|c| c.is_control()) {
            continue; // not passable as a plain argument
        }
        let out = ok(&[
            "map-object",
            "--osdmap",
            p(&osdmap),
            "--pool",
            "rbd",
            "--",
            &name,
        ]);
        let want = format!("({}) -> up ({}, p", f[6], f[7]);
        assert!(out.contains(&want), "{name}: {out} lacks {want}");
        checked += 1;
    }
    assert!(checked > 150, "{checked}");
}

/// An OSDMap over the 1000-OSD CRUSH vector with one pool `POOL:PGS:SIZE`,
/// written in `dir`.
fn thousand_osd_map(dir: &std::path::Path, pool: &str) -> std::path::PathBuf {
    let crush = vectors().join("d03_h40x25_1000osd/map.txt");
    let osdmap = dir.join("osdmap");
    ok(&[
        "osdmap",
        "create",
        "--crush",
        p(&crush),
        "--pool",
        pool,
        "-o",
        p(&osdmap),
    ]);
    osdmap
}

#[test]
fn pgs_simulate_and_balance_work_together() {
    let tmp = tempfile::tempdir().unwrap();
    let osdmap = thousand_osd_map(tmp.path(), "rbd:2048:3");

    let svg = tmp.path().join("pgs.svg");
    let json = ok(&[
        "pgs",
        "--osdmap",
        p(&osdmap),
        "--svg",
        p(&svg),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["distribution"]["replicas"], 2048 * 3);
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));

    let sim = ok(&[
        "simulate",
        "--osdmap",
        p(&osdmap),
        "--add-host",
        "hnew:25:3.638",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&sim).unwrap();
    let (moved, min) = (
        v["fraction_moved"].as_f64().unwrap(),
        v["fraction_min"].as_f64().unwrap(),
    );
    assert!(
        min > 0.01 && moved >= min * 0.99 && moved < min * 2.0,
        "moved {moved} min {min}"
    );

    let balanced = tmp.path().join("balanced");
    ok(&["balance", "--osdmap", p(&osdmap), "-o", p(&balanced)]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["pgs", "--osdmap", p(&balanced), "--format", "json"])).unwrap();
    let dev = v["stats"]["max_abs_deviation"].as_f64().unwrap();
    assert!(
        dev <= 1.0 + 1e-9,
        "after balancing, max |PGs - target| = {dev}"
    );
    let tree = ok(&["tree", "--osdmap", p(&balanced)]);
    assert!(tree.lines().count() > 1000 && tree.contains("osd.999"));
}

#[test]
fn decompile_as_json_matches_crushtool_dump() {
    // Buckets (shadow ones included) and rules as `crushtool --dump` shows them.
    let dir = vectors().join("d08_classes");
    let got: serde_json::Value = serde_json::from_str(&ok(&[
        "crush",
        "decompile",
        p(&dir.join("map.txt")),
        "--format",
        "json",
    ]))
    .unwrap();
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("map.dump.json")).unwrap()).unwrap();
    let strip = |v: &serde_json::Value, keys: &[&str]| -> Vec<serde_json::Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let mut o = serde_json::Map::new();
                for k in keys {
                    o.insert(k.to_string(), x[*k].clone());
                }
                serde_json::Value::Object(o)
            })
            .collect()
    };
    let bucket_keys = [
        "id",
        "name",
        "type_id",
        "type_name",
        "weight",
        "alg",
        "items",
    ];
    let mut gb = strip(&got["buckets"], &bucket_keys);
    let mut wb = strip(&want["buckets"], &bucket_keys);
    gb.sort_by_key(|b| b["id"].as_i64());
    wb.sort_by_key(|b| b["id"].as_i64());
    assert_eq!(gb, wb);
    let rule_keys = ["rule_id", "rule_name", "type", "steps"];
    assert_eq!(
        strip(&got["rules"], &rule_keys),
        strip(&want["rules"], &rule_keys)
    );
    assert_eq!(
        got["tunables"]["choose_total_tries"],
        want["tunables"]["choose_total_tries"]
    );
}

/// A `pgp_num` change moves only the PGs whose placement input changes,
/// and `--stored` turns the moved replicas into bytes.
#[test]
fn simulate_says_what_a_pgp_num_change_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let osdmap = thousand_osd_map(tmp.path(), "rbd:256:3");
    let sim = |pgp: &str| {
        let out = ok(&[
            "simulate",
            "--osdmap",
            p(&osdmap),
            "--pgp-num",
            pgp,
            "--stored",
            "256000000",
            "--format",
            "json",
        ]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let same = sim("rbd:256");
    assert_eq!(same["movement"]["replicas_moved"], 0);
    assert_eq!(same["bytes_moved"], 0);
    // Folding 256 PGs onto 128 placements: half the PGs take their
    // parent's placement.
    let half = sim("rbd:128");
    let changed = half["movement"]["pgs_changed"].as_u64().unwrap();
    assert!(changed > 100 && changed <= 128, "{changed}");
    let moved = half["movement"]["replicas_moved"].as_u64().unwrap();
    // Each replica of one of the 256 PGs holds a million bytes.
    assert_eq!(half["bytes_moved"].as_u64().unwrap(), moved * 1_000_000);
}
