//! redb against fjall on the store's metadata workload, same data, every
//! commit durable (fsync/fdatasync before it returns).

use std::path::Path;
use std::time::Instant;

use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use redb::{Durability, ReadableDatabase, TableDefinition};

const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");

fn key(i: u64) -> Vec<u8> {
    format!("\0\0\0\x041.2f\0\0\0\x14rbd_data.{i:016x}").into_bytes()
}

fn omap_key(i: u64) -> Vec<u8> {
    let mut k = key(7);
    k.extend_from_slice(format!("entry{i:08}").as_bytes());
    k
}

fn value(len: usize, i: u64) -> Vec<u8> {
    (0..len).map(|j| (j as u64 ^ i) as u8).collect()
}

struct Figures {
    group: f64,
    small: f64,
    gets: f64,
    scans: f64,
}

const GROUPS: u64 = 400; // commits of 32 object records (~3.5 KB: a 4 MiB piece's chunk list)
const SMALL: u64 = 3000; // commits of one record + one omap entry
const GETS: u64 = 50_000;
const SCANS: u64 = 500; // 100 omap entries each

fn run_redb(dir: &Path) -> Figures {
    let db = redb::Database::create(dir.join("redb")).unwrap();
    let t0 = Instant::now();
    for g in 0..GROUPS {
        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::Immediate).unwrap();
        {
            let mut t = w.open_table(T).unwrap();
            for j in 0..32 {
                let i = g * 32 + j;
                t.insert(key(i).as_slice(), value(3500, i).as_slice()).unwrap();
            }
        }
        w.commit().unwrap();
    }
    let group = GROUPS as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for i in 0..SMALL {
        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::Immediate).unwrap();
        {
            let mut t = w.open_table(T).unwrap();
            t.insert(key(i % 1000).as_slice(), value(600, i).as_slice()).unwrap();
            t.insert(omap_key(i).as_slice(), value(100, i).as_slice()).unwrap();
        }
        w.commit().unwrap();
    }
    let small = SMALL as f64 / t0.elapsed().as_secs_f64();
    let r = db.begin_read().unwrap();
    let t = r.open_table(T).unwrap();
    let t0 = Instant::now();
    let mut n = 0usize;
    for i in 0..GETS {
        n += t.get(key((i * 7919) % (GROUPS * 32)).as_slice()).unwrap().map_or(0, |v| v.value().len());
    }
    let gets = GETS as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for s in 0..SCANS {
        let lo = omap_key((s * 37) % (SMALL - 100));
        n += t.range(lo.as_slice()..).unwrap().take(100).count();
    }
    let scans = SCANS as f64 / t0.elapsed().as_secs_f64();
    assert!(n > 0);
    Figures { group, small, gets, scans }
}

fn run_fjall(dir: &Path) -> Figures {
    let db = Database::builder(dir.join("fjall")).open().unwrap();
    let ks = db.keyspace("t", KeyspaceCreateOptions::default).unwrap();
    let t0 = Instant::now();
    for g in 0..GROUPS {
        let mut b = db.batch().durability(Some(PersistMode::SyncData));
        for j in 0..32 {
            let i = g * 32 + j;
            b.insert(&ks, key(i), value(3500, i));
        }
        b.commit().unwrap();
    }
    let group = GROUPS as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for i in 0..SMALL {
        let mut b = db.batch().durability(Some(PersistMode::SyncData));
        b.insert(&ks, key(i % 1000), value(600, i));
        b.insert(&ks, omap_key(i), value(100, i));
        b.commit().unwrap();
    }
    let small = SMALL as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let mut n = 0usize;
    for i in 0..GETS {
        n += ks.get(key((i * 7919) % (GROUPS * 32))).unwrap().map_or(0, |v| v.len());
    }
    let gets = GETS as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for s in 0..SCANS {
        let lo = omap_key((s * 37) % (SMALL - 100));
        n += ks.range(lo..).take(100).count();
    }
    let scans = SCANS as f64 / t0.elapsed().as_secs_f64();
    assert!(n > 0);
    Figures { group, small, gets, scans }
}

fn main() {
    let base = std::env::args().nth(1).unwrap_or_else(|| "/var/tmp/kv-compare".into());
    let base = Path::new(&base);
    let _ = std::fs::remove_dir_all(base);
    std::fs::create_dir_all(base).unwrap();
    let r = run_redb(base);
    let f = run_fjall(base);
    println!("workload (durable commits)                   redb        fjall   fjall/redb");
    for (name, a, b) in [
        ("commits of 32 x 3.5 KB records /s", r.group, f.group),
        ("commits of 1 record + 1 omap entry /s", r.small, f.small),
        ("point reads /s", r.gets, f.gets),
        ("omap scans of 100 entries /s", r.scans, f.scans),
    ] {
        println!("{name:<42} {a:>10.0}   {b:>10.0}   {:>6.2}", b / a);
    }
    let _ = std::fs::remove_dir_all(base);
}
