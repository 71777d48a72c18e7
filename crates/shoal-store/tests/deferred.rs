//! Small writes go to the device through the write-ahead log (deferred
//! writes): after a crash their data comes back from the log even if the
//! device writes were lost, and a logged extent whose space was freed and
//! reused is never written over the new data.
//!
//! A child process (this test binary re-executed) writes, reports the
//! extents, and waits to be SIGKILLed, so the store never checkpoints on a
//! clean close.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use shoal_store::{Op, Store, StoreConfig, Transaction};

fn config(dir: &Path, size: u64) -> StoreConfig {
    let mut cfg = StoreConfig::new(dir, size);
    cfg.reserve = 0;
    cfg.recent_cache_bytes = 0;
    cfg.wal_size = 16 << 20;
    cfg
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

/// The small objects of the first scenario and their final contents.
fn small_objects() -> Vec<(String, Vec<u8>)> {
    (0..12u8)
        .map(|i| {
            let mut data = pattern(1000 + i as usize * 1200, i);
            if data.len() < 3500 {
                data.resize(3500, 0);
            }
            data[500..3500].copy_from_slice(&pattern(3000, 100 + i));
            (format!("o{i}"), data)
        })
        .collect()
}

fn submit(store: &Store, t: Transaction) {
    store.submit_blocking(t).unwrap();
}

fn create(store: &Store) {
    let mut t = Transaction::new("c");
    t.push(Op::CreateCollection);
    submit(store, t);
}

/// Writes the small objects (whole writes, then a partial overwrite each).
fn write_small(store: &Store) {
    for (i, (name, _)) in small_objects().iter().enumerate() {
        let i = i as u8;
        let mut t = Transaction::new("c");
        t.write_full(name, pattern(1000 + i as usize * 1200, i));
        submit(store, t);
        let mut t = Transaction::new("c");
        t.push(Op::Write {
            name: name.clone(),
            offset: 500,
            data: pattern(3000, 100 + i).into(),
        });
        submit(store, t);
    }
}

/// Small objects written then removed; large objects fill the store over
/// their space. Returns whether the large ones reuse freed small extents.
fn reuse_freed_space(store: &Store) -> bool {
    let mut small_extents = Vec::new();
    for i in 0..64u8 {
        let mut t = Transaction::new("c");
        t.write_full(&format!("s{i}"), pattern(12 << 10, i));
        submit(store, t);
        small_extents.extend(store.extents("c", &format!("s{i}")).unwrap());
    }
    for i in 0..64u8 {
        let mut t = Transaction::new("c");
        t.remove(&format!("s{i}"));
        submit(store, t);
    }
    for i in 0..3 {
        let mut t = Transaction::new("c");
        t.write_full(&format!("b{i}"), pattern(1 << 20, 77));
        submit(store, t);
    }
    (0..3).any(|i| {
        store
            .extents("c", &format!("b{i}"))
            .unwrap()
            .iter()
            .any(|&(_, p, l)| {
                small_extents
                    .iter()
                    .any(|&(_, sp, sl)| sp < p + l && p < sp + sl)
            })
    })
}

/// The child: runs a scenario, reports, then waits to be killed.
#[test]
#[ignore = "entry point of the deferred-write test's child process"]
fn deferred_child() {
    let Ok(dir) = std::env::var("SHOAL_DEFERRED_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let scenario = std::env::var("SHOAL_DEFERRED_SCENARIO").unwrap();
    let size = if scenario == "reuse" {
        4 << 20
    } else {
        64 << 20
    };
    let mut cfg = config(dir, size);
    if scenario == "reuse" {
        // Chunks smaller than the small objects' extents, so a stale
        // logged extent covers whole chunks of the large objects.
        cfg.chunk_size = 4096;
    }
    Store::mkfs(&cfg).unwrap();
    let store = Store::open(&cfg).unwrap();
    create(&store);
    let report = if scenario == "reuse" {
        format!("{}", reuse_freed_space(&store))
    } else {
        write_small(&store);
        let mut lines = String::new();
        for (name, _) in small_objects() {
            for (_, phys, len) in store.extents("c", &name).unwrap() {
                lines.push_str(&format!("{phys} {len}\n"));
            }
        }
        lines
    };
    std::fs::write(dir.join("report.tmp"), report).unwrap();
    std::fs::rename(dir.join("report.tmp"), dir.join("report")).unwrap();
    loop {
        std::thread::park();
    }
}

/// Runs the child until it has reported, SIGKILLs it, returns the report.
fn run_child(dir: &Path, scenario: &str) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "deferred_child", "--nocapture"])
        .env("SHOAL_DEFERRED_DIR", dir)
        .env("SHOAL_DEFERRED_SCENARIO", scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report = dir.join("report");
    while !report.exists() {
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        assert!(std::time::Instant::now() < deadline, "child did not report");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::fs::read_to_string(report).unwrap()
}

#[test]
fn small_writes_come_back_from_the_log_after_losing_the_device_writes() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_child(dir.path(), "small");
    let cfg = config(dir.path(), 64 << 20);
    // The device writes never reached the disk.
    let data = OpenOptions::new()
        .write(true)
        .open(cfg.data_path())
        .unwrap();
    for line in report.lines() {
        let mut it = line.split(' ').map(|v| v.parse::<u64>().unwrap());
        let (phys, len) = (it.next().unwrap(), it.next().unwrap());
        let len = len.div_ceil(4096) * 4096;
        data.write_all_at(&vec![0u8; len as usize], phys).unwrap();
    }
    data.sync_all().unwrap();

    let store = Store::open(&cfg).unwrap();
    for (name, want) in small_objects() {
        assert!(
            store.read("c", &name, 0, u64::MAX).unwrap() == want,
            "{name} restored from the log"
        );
    }
    let scrub = store.deep_scrub("c").unwrap();
    assert!(scrub.errors.is_empty(), "{:?}", scrub.errors);
    assert_eq!(scrub.objects, small_objects().len() as u64);
}

#[test]
fn a_freed_logged_extent_is_never_restored_over_reused_space() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_child(dir.path(), "reuse");
    assert_eq!(
        report, "true",
        "the test needs the large objects to reuse freed space"
    );
    let store = Store::open(&config(dir.path(), 4 << 20)).unwrap();
    for i in 0..3 {
        assert!(store.read("c", &format!("b{i}"), 0, u64::MAX).unwrap() == pattern(1 << 20, 77));
    }
    assert!(store.deep_scrub("c").unwrap().errors.is_empty());
}
