//! Small writes committed through the metadata (deferred writes): their
//! data survives losing the device writes, and a freed extent's record can
//! never be replayed over space that was reused.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use shoal_store::{Store, StoreConfig, Transaction};

fn config(dir: &Path, size: u64) -> StoreConfig {
    let mut cfg = StoreConfig::new(dir, size);
    cfg.reserve = 0;
    cfg.recent_cache_bytes = 0;
    cfg
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

/// Overwrites the device bytes under every extent of `name` with zeros, as
/// if its (unsynced) device writes had never reached the disk.
fn lose_device_writes(cfg: &StoreConfig, store: &Store, coll: &str, name: &str) {
    let data = OpenOptions::new()
        .write(true)
        .open(cfg.data_path())
        .unwrap();
    for (_, phys, len) in store.extents(coll, name).unwrap() {
        let len = len.div_ceil(4096) * 4096;
        data.write_all_at(&vec![0u8; len as usize], phys).unwrap();
    }
    data.sync_all().unwrap();
}

#[test]
fn small_writes_are_replayed_from_the_metadata_after_losing_the_device_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 64 << 20);
    Store::mkfs(&cfg).unwrap();
    let store = Store::open(&cfg).unwrap();
    let mut t = Transaction::new("c");
    t.push(shoal_store::Op::CreateCollection);
    store.submit_blocking(t).unwrap();

    let mut expect = Vec::new();
    for i in 0..12u8 {
        let name = format!("o{i}");
        let mut data = pattern(1000 + i as usize * 1200, i);
        let mut t = Transaction::new("c");
        t.write_full(&name, data.clone());
        store.submit_blocking(t).unwrap();
        // A partial overwrite: a read-modify-write of the first chunk.
        let patch = pattern(3000, 100 + i);
        let mut t = Transaction::new("c");
        t.push(shoal_store::Op::Write {
            name: name.clone(),
            offset: 500,
            data: patch.clone(),
        });
        store.submit_blocking(t).unwrap();
        if data.len() < 3500 {
            data.resize(3500, 0);
        }
        data[500..3500].copy_from_slice(&patch);
        expect.push((name, data));
    }
    for (name, _) in &expect {
        lose_device_writes(&cfg, &store, "c", name);
    }
    drop(store);

    let store = Store::open(&cfg).unwrap();
    for (name, data) in &expect {
        assert_eq!(
            &store.read("c", name, 0, u64::MAX).unwrap(),
            data,
            "{name} replayed"
        );
    }
    let report = store.deep_scrub("c").unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.objects, expect.len() as u64);

    // Once replayed, the records are gone: losing the device bytes again
    // is real damage and is reported as such.
    lose_device_writes(&cfg, &store, "c", "o3");
    drop(store);
    let store = Store::open(&cfg).unwrap();
    assert!(matches!(
        store.read("c", "o3", 0, u64::MAX),
        Err(shoal_store::StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_freed_extent_is_never_replayed_over_reused_space() {
    let dir = tempfile::tempdir().unwrap();
    // Small enough that the large writes below must reuse the small
    // objects' space.
    let cfg = config(dir.path(), 4 << 20);
    Store::mkfs(&cfg).unwrap();
    let store = Store::open(&cfg).unwrap();
    let mut t = Transaction::new("c");
    t.push(shoal_store::Op::CreateCollection);
    store.submit_blocking(t).unwrap();

    let mut small_extents = Vec::new();
    for i in 0..64u8 {
        let mut t = Transaction::new("c");
        t.write_full(&format!("s{i}"), pattern(12 << 10, i));
        store.submit_blocking(t).unwrap();
        small_extents.extend(store.extents("c", &format!("s{i}")).unwrap());
    }
    for i in 0..64u8 {
        let mut t = Transaction::new("c");
        t.remove(&format!("s{i}"));
        store.submit_blocking(t).unwrap();
    }
    // Large objects (written to the device and synced, not deferred) fill
    // the store, over the small objects' old extents.
    let big = pattern(1 << 20, 77);
    for i in 0..3 {
        let mut t = Transaction::new("c");
        t.write_full(&format!("b{i}"), big.clone());
        store.submit_blocking(t).unwrap();
    }
    let reused = (0..3).any(|i| {
        store
            .extents("c", &format!("b{i}"))
            .unwrap()
            .iter()
            .any(|&(_, p, l)| {
                small_extents
                    .iter()
                    .any(|&(_, sp, sl)| sp < p + l && p < sp + sl)
            })
    });
    assert!(
        reused,
        "the test needs the large objects to reuse freed space"
    );
    drop(store);

    let store = Store::open(&cfg).unwrap();
    for i in 0..3 {
        assert_eq!(store.read("c", &format!("b{i}"), 0, u64::MAX).unwrap(), big);
    }
    assert!(store.deep_scrub("c").unwrap().errors.is_empty());
}
