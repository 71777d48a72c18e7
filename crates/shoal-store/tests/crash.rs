//! Crash safety: a child process runs transactions from several threads and
//! logs each acknowledged one; the parent SIGKILLs it at a random moment,
//! reopens the store and checks that every acknowledged transaction is there
//! in full, that nothing is half there, and that every checksum holds.
//!
//! `cargo test -p shoal-store --release -- --ignored crash_soak` runs many
//! more iterations.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal_store::{Op, Store, StoreConfig, Transaction};

const OBJECTS: u64 = 12;
const THREADS: u64 = 4;

fn config(dir: &Path) -> StoreConfig {
    let mut cfg = StoreConfig::new(dir, 64 << 20);
    cfg.chunk_size = 16 << 10;
    cfg
}

/// The content transaction `i` writes: its size and bytes depend on `i`.
fn content(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(7919) % (200 << 10)) as usize + 1;
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Transaction `i`: object `i % OBJECTS` gets content(i), xattr and omap
/// both recording `i`, all in one transaction.
fn txn(i: u64) -> Transaction {
    let name = format!("obj{}", i % OBJECTS);
    let mut t = Transaction::new("pg");
    t.push(Op::WriteFull {
        name: name.clone(),
        data: content(i).into(),
        sums: None,
    });
    t.push(Op::SetXattr {
        name: name.clone(),
        key: "v".into(),
        value: i.to_le_bytes().to_vec(),
    });
    t.push(Op::OmapSet {
        name,
        entries: vec![(b"last".to_vec(), i.to_le_bytes().to_vec())],
    });
    t
}

/// The child: never returns on its own; killed by the parent.
#[test]
#[ignore = "entry point of the crash test's child process"]
fn crash_child() {
    let Ok(dir) = std::env::var("SHOAL_CRASH_DIR") else {
        return;
    };
    let start: u64 = std::env::var("SHOAL_CRASH_START").unwrap().parse().unwrap();
    let dir = Path::new(&dir);
    let store = std::sync::Arc::new(Store::open(&config(dir)).unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join("acked"))
            .unwrap(),
    ));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, log) = (store.clone(), log.clone());
            std::thread::spawn(move || {
                // Thread t owns the objects with i % THREADS == t, so each
                // object's transactions are ordered.
                let mut i = start + t;
                loop {
                    store.submit_blocking(txn(i)).unwrap();
                    // One write call (`writeln!` on a File may split the
                    // number from its newline, and a kill in between would
                    // glue two entries); the kernel keeps it across SIGKILL.
                    let line = format!("{i}\n");
                    log.lock().unwrap().write_all(line.as_bytes()).unwrap();
                    i += THREADS;
                }
            })
        })
        .collect();
    // The writer threads run until the parent kills the process.
    drop(handles);
    loop {
        std::thread::park();
    }
}

fn acked(dir: &Path) -> Vec<u64> {
    match std::fs::File::open(dir.join("acked")) {
        Ok(f) => std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn spawn_child(dir: &Path, start: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_child", "--nocapture"])
        .env("SHOAL_CRASH_DIR", dir)
        .env("SHOAL_CRASH_START", start.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Checks the store after a crash; returns the highest version seen.
fn verify(dir: &Path) -> u64 {
    let store = Store::open(&config(dir)).unwrap();
    let acked = acked(dir);
    let mut last_acked = vec![None; OBJECTS as usize];
    for &i in &acked {
        let o = (i % OBJECTS) as usize;
        last_acked[o] = last_acked[o].max(Some(i));
    }
    let mut highest = 0;
    for o in 0..OBJECTS {
        let name = format!("obj{o}");
        let Ok(x) = store.xattrs("pg", &name) else {
            assert!(
                last_acked[o as usize].is_none(),
                "{name}: acknowledged but missing"
            );
            continue;
        };
        let v = u64::from_le_bytes(x["v"].as_slice().try_into().unwrap());
        highest = highest.max(v);
        assert_eq!(v % OBJECTS, o, "{name}: holds another object's version");
        if let Some(a) = last_acked[o as usize] {
            assert!(v >= a, "{name}: acknowledged version {a} lost (found {v})");
        }
        let data = store.read("pg", &name, 0, u64::MAX).unwrap();
        assert!(
            data == content(v),
            "{name}: data is not version {v}'s: torn or mixed"
        );
        let omap = store.omap_get("pg", &name, &[b"last"]).unwrap();
        assert_eq!(
            omap[0].as_deref(),
            Some(&v.to_le_bytes()[..]),
            "{name}: omap and xattr disagree"
        );
    }
    let scrub = store.deep_scrub("pg").unwrap();
    assert!(scrub.errors.is_empty(), "{:?}", scrub.errors);
    highest
}

fn run(iterations: u64, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    Store::mkfs(&cfg).unwrap();
    {
        let s = Store::open(&cfg).unwrap();
        let mut t = Transaction::new("pg");
        t.push(Op::CreateCollection);
        s.submit_blocking(t).unwrap();
    }
    let mut rng = seed;
    let mut start = 0;
    for _ in 0..iterations {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let before = acked(dir.path()).len();
        let want = before + 1 + (rng >> 33) as usize % 120;
        let mut child = spawn_child(dir.path(), start);
        // Kill after a random number of acknowledged transactions.
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked(dir.path()).len() < want {
            assert!(Instant::now() < deadline, "child made no progress");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("child exited early: {status}");
            }
            std::thread::yield_now();
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let highest = verify(dir.path());
        // The next child writes versions above anything stored or acked,
        // starting at a multiple of THREADS so each thread keeps its objects.
        let top = highest.max(acked(dir.path()).into_iter().max().unwrap_or(0)) + 1;
        start = top.div_ceil(THREADS) * THREADS;
    }
}

#[test]
fn acknowledged_transactions_survive_sigkill() {
    run(8, 42);
}

#[test]
#[ignore = "long: run on demand"]
fn crash_soak() {
    let iterations = std::env::var("SHOAL_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    run(iterations, 7);
}
