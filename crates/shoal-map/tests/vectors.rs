//! Bit-exactness against `osdmaptool` output (Ceph 16.2.15) in
//! `shared/crush-vectors/oNN_*` and the derived unit vectors.

use std::fs;
use std::path::{Path, PathBuf};

use shoal_crush::hash::str_hash_rjenkins;
use shoal_map::{Fsid, OsdMap, PgId, Pool, PoolFlags, PoolType, pg_mask, stable_mod};

fn vectors_dir() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../../shared/crush-vectors")
}

fn object_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(vectors_dir())
        .expect("crush-vectors directory")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("o0"))
        })
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no oNN_* folders found");
    dirs
}

fn hex_bytes(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn parse_list(s: &str) -> Vec<i32> {
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|x| x.trim().parse().unwrap())
        .collect()
}

/// The map `osdmaptool osdmap.bin --mark-up-in` works on.
fn load_case(dir: &Path) -> (OsdMap, Pool) {
    let text = fs::read_to_string(dir.join("crush.txt")).unwrap();
    let crush = shoal_crush::text::parse(&text).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("pool.json")).unwrap()).unwrap();
    let num = |k: &str| {
        json[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in pool.json"))
    };
    let mut pool = Pool::new_replicated(
        num("pool") as i64,
        json["pool_name"].as_str().unwrap(),
        num("size") as u32,
        num("pg_num") as u32,
        num("crush_rule") as i32,
    );
    assert_eq!(num("type"), 1, "replicated pools only");
    assert_eq!(pool.pool_type, PoolType::Replicated);
    pool.pgp_num = num("pgp_num") as u32;
    pool.pgp_num_target = pool.pgp_num;
    pool.flags = PoolFlags::empty();
    for name in json["flags_names"].as_str().unwrap().split(',') {
        pool.flags = pool.flags.with(PoolFlags::from_name(name).unwrap());
    }
    assert_eq!(pool.pg_num_mask() as u64, num("pg_num_mask"));
    assert_eq!(pool.pgp_num_mask() as u64, num("pgp_num_mask"));
    let map = OsdMap::from_crush(Fsid::ZERO, crush, [pool.clone()]).unwrap();
    assert_eq!(map.max_osd() as u64, num("max_osd"));
    (map, pool)
}

fn check_objects(dir: &Path, map: &OsdMap, pool: &Pool) -> usize {
    let tsv = fs::read_to_string(dir.join("objects.tsv")).unwrap();
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c_hex, c_pgid, c_acting, c_hash, c_seed, c_pps) = (
        col("name_hex"),
        col("pgid"),
        col("acting"),
        col("str_hash_ref"),
        col("seed"),
        col("pps_ref"),
    );
    let mut ws = map.new_workspace();
    let mut n = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let name = hex_bytes(f[c_hex]);
        let hash = u32::from_str_radix(f[c_hash].trim_start_matches("0x"), 16).unwrap();
        assert_eq!(
            str_hash_rjenkins(&name),
            hash,
            "{}: hash of {line}",
            dir.display()
        );
        let pg = map.object_to_pg(pool.id, &name).unwrap();
        let want_pg: PgId = f[c_pgid].parse().unwrap();
        assert_eq!(pg, want_pg, "{}: pg of {line}", dir.display());
        assert_eq!(pg.seed, f[c_seed].parse::<u32>().unwrap());
        assert_eq!(pg.to_string(), f[c_pgid]);
        assert_eq!(map.pg_to_pps(pg).unwrap(), f[c_pps].parse::<u32>().unwrap());
        let (pg2, m) = map.map_object(pool.id, &name, &mut ws).unwrap();
        assert_eq!(pg2, pg);
        assert_eq!(
            m.acting,
            parse_list(f[c_acting]),
            "{}: acting of {line}",
            dir.display()
        );
        n += 1;
    }
    n
}

/// Compares every `1.x raw (...) up (...) acting (...)` line of a dump.
fn check_dump(file: &Path, map: &OsdMap, pool: &Pool) -> usize {
    let Ok(text) = fs::read_to_string(file) else {
        return 0;
    };
    let mut ws = map.new_workspace();
    let mut n = 0;
    for line in text.lines().filter(|l| l.contains(" raw (")) {
        let pg: PgId = line.split(' ').next().unwrap().parse().unwrap();
        let m = map.pg_to_up_acting(pg, &mut ws).unwrap();
        assert_eq!(m.dump_line(pg).to_string(), line, "{}", file.display());
        n += 1;
    }
    assert_eq!(
        n,
        pool.pg_num as usize,
        "{}: one line per PG",
        file.display()
    );
    n
}

#[test]
fn objects_and_pg_dumps_match_osdmaptool() {
    let mut total_objects = 0;
    let mut total_lines = 0;
    for dir in object_dirs() {
        let (map, pool) = load_case(&dir);
        total_objects += check_objects(&dir, &map, &pool);
        total_lines += check_dump(&dir.join("pgs_dump_all.txt"), &map, &pool);
        // The same after an encode/decode round trip.
        let decoded = OsdMap::decode(&map.encode()).unwrap();
        assert_eq!(decoded, map);
        check_objects(&dir, &decoded, &pool);
    }
    assert_eq!(total_objects, 800);
    assert_eq!(total_lines, 8 + 12 + 1000);
}

#[test]
fn mark_out_dump_matches_osdmaptool() {
    let dir = vectors_dir().join("o02_pg12");
    let (mut map, pool) = load_case(&dir);
    map.mark_out(3).unwrap();
    assert_eq!(
        check_dump(&dir.join("pgs_dump_all_markout3.txt"), &map, &pool),
        12
    );
}

#[test]
fn pgs_dump_matches_osdmaptool() {
    // `--test-map-pgs-dump`: `1.0\t[8,5,1]\t8` (acting and acting primary).
    let dir = vectors_dir().join("o02_pg12");
    let (map, _) = load_case(&dir);
    let mut ws = map.new_workspace();
    let text = fs::read_to_string(dir.join("pgs_dump.txt")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let Ok(pg) = f[0].parse::<PgId>() else {
            continue;
        };
        let m = map.pg_to_up_acting(pg, &mut ws).unwrap();
        assert_eq!(m.acting.to_string(), f[1]);
        assert_eq!(m.acting_primary, Some(f[2].parse().unwrap()));
        n += 1;
    }
    assert_eq!(n, 12);
}

#[test]
fn derived_hash_and_stable_mod_vectors() {
    let text = fs::read_to_string(vectors_dir().join("derived_vectors.tsv")).unwrap();
    let (mut hashes, mut mods) = (0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "ceph_str_hash_rjenkins" => {
                let want: u32 = f[2].parse().unwrap();
                assert_eq!(str_hash_rjenkins(&hex_bytes(f[1])), want, "{line}");
                hashes += 1;
            }
            "ceph_stable_mod" => {
                let arg = |k: &str| -> u32 {
                    f[1].split(',')
                        .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                let (x, b, bmask) = (arg("x"), arg("b"), arg("bmask"));
                assert_eq!(pg_mask(b), bmask, "{line}");
                assert_eq!(
                    stable_mod(x, b, bmask),
                    f[2].parse::<u32>().unwrap(),
                    "{line}"
                );
                mods += 1;
            }
            _ => {}
        }
    }
    assert!(
        hashes >= 7 && mods >= 10,
        "{hashes} hashes, {mods} stable_mod rows"
    );
}
