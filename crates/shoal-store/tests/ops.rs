//! Every operation of the store on a real data file and database.

use shoal_store::{ChunkSums, Op, Store, StoreConfig, StoreError, Transaction, Version};

fn store(size: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path(), size);
    cfg.reserve = 64 << 10;
    Store::mkfs(&cfg).unwrap();
    let s = Store::open(&cfg).unwrap();
    (dir, s)
}

fn txn(coll: &str, ops: Vec<Op>) -> Transaction {
    Transaction {
        collection: coll.into(),
        ops,
        use_reserve: false,
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn data_round_trips_with_holes_partial_writes_and_truncation() {
    let (_d, s) = store(64 << 20);
    s.submit_blocking(txn("1.0", vec![Op::CreateCollection]))
        .unwrap();
    let big = pattern((4 << 20) + 123, 7);
    let mut t = Transaction::new("1.0");
    t.write_full("big", big.clone())
        .write("sparse", 10 << 20, b"tail".to_vec());
    s.submit_blocking(t).unwrap();
    assert_eq!(s.read("1.0", "big", 0, u64::MAX).unwrap(), big);
    assert_eq!(
        s.read("1.0", "big", 70_000, 5).unwrap(),
        big[70_000..70_005]
    );
    let sparse = s.read("1.0", "sparse", 0, u64::MAX).unwrap();
    assert_eq!(sparse.len(), (10 << 20) + 4);
    assert!(
        sparse[..10 << 20].iter().all(|&b| b == 0),
        "holes read as zeros"
    );
    assert_eq!(&sparse[10 << 20..], b"tail");

    // A write straddling chunk boundaries, then zero and truncate.
    let mut expect = big.clone();
    let patch = pattern(200_000, 99);
    expect[60_000..260_000].copy_from_slice(&patch);
    s.submit_blocking(txn(
        "1.0",
        vec![Op::Write {
            name: "big".into(),
            offset: 60_000,
            data: patch.into(),
        }],
    ))
    .unwrap();
    assert_eq!(s.read("1.0", "big", 0, u64::MAX).unwrap(), expect);
    s.submit_blocking(txn(
        "1.0",
        vec![Op::Zero {
            name: "big".into(),
            offset: 1000,
            len: 300_000,
        }],
    ))
    .unwrap();
    expect[1000..301_000].fill(0);
    assert_eq!(s.read("1.0", "big", 0, u64::MAX).unwrap(), expect);
    s.submit_blocking(txn(
        "1.0",
        vec![Op::Truncate {
            name: "big".into(),
            size: 100_001,
        }],
    ))
    .unwrap();
    expect.truncate(100_001);
    assert_eq!(s.read("1.0", "big", 0, u64::MAX).unwrap(), expect);
    s.submit_blocking(txn(
        "1.0",
        vec![Op::Truncate {
            name: "big".into(),
            size: 200_000,
        }],
    ))
    .unwrap();
    expect.resize(200_000, 0);
    assert_eq!(s.read("1.0", "big", 0, u64::MAX).unwrap(), expect);
    assert_eq!(s.stat("1.0", "big").unwrap().size, 200_000);
}

#[test]
fn clone_shares_data_until_either_side_changes() {
    let (_d, s) = store(32 << 20);
    let data = pattern(1 << 20, 3);
    let mut t = txn("c", vec![Op::CreateCollection]);
    t.write_full("a", data.clone());
    t.push(Op::SetXattr {
        name: "a".into(),
        key: "k".into(),
        value: b"v".to_vec(),
    });
    t.push(Op::OmapSet {
        name: "a".into(),
        entries: vec![(b"x".to_vec(), b"1".to_vec())],
    });
    s.submit_blocking(t).unwrap();
    let used = s.statfs().used;
    s.submit_blocking(txn(
        "c",
        vec![Op::Clone {
            src: "a".into(),
            dst: "b".into(),
        }],
    ))
    .unwrap();
    assert_eq!(s.statfs().used, used, "a clone copies no data");
    assert_eq!(s.extents("c", "a").unwrap(), s.extents("c", "b").unwrap());
    assert_eq!(s.xattrs("c", "b").unwrap()["k"], b"v");
    assert_eq!(
        s.omap_get("c", "b", &[b"x"]).unwrap(),
        vec![Some(b"1".to_vec())]
    );
    s.submit_blocking(txn(
        "c",
        vec![Op::Write {
            name: "b".into(),
            offset: 0,
            data: vec![9; 10].into(),
        }],
    ))
    .unwrap();
    assert_eq!(
        s.read("c", "a", 0, u64::MAX).unwrap(),
        data,
        "the source is untouched"
    );
    assert_eq!(&s.read("c", "b", 0, 10).unwrap(), &[9; 10]);
    s.submit_blocking(txn("c", vec![Op::Remove { name: "a".into() }]))
        .unwrap();
    assert_eq!(
        s.read("c", "b", 10, u64::MAX).unwrap(),
        data[10..],
        "shared chunks survive the source"
    );
    s.submit_blocking(txn(
        "c",
        vec![Op::Remove { name: "b".into() }, Op::RemoveCollection],
    ))
    .unwrap();
    assert_eq!(s.statfs().used, 0, "every extent is freed exactly once");
}

#[test]
fn metadata_xattrs_omap_listing() {
    let (_d, s) = store(8 << 20);
    s.submit_blocking(txn(
        "p",
        vec![Op::CreateCollection, Op::SetCollectionMeta(b"log".to_vec())],
    ))
    .unwrap();
    let mut ops = Vec::new();
    for i in 0..25 {
        ops.push(Op::Touch {
            name: format!("obj{i:02}"),
        });
    }
    ops.push(Op::SetVersion {
        name: "obj00".into(),
        version: Version { epoch: 7, seq: 42 },
    });
    ops.push(Op::OmapSet {
        name: "obj00".into(),
        entries: (0..10u8).map(|i| (vec![b'k', i], vec![i])).collect(),
    });
    ops.push(Op::OmapRemove {
        name: "obj00".into(),
        keys: vec![vec![b'k', 3]],
    });
    s.submit_blocking(txn("p", ops)).unwrap();
    assert_eq!(s.collection_meta("p").unwrap(), b"log");
    assert_eq!(
        s.stat("p", "obj00").unwrap().version,
        Version { epoch: 7, seq: 42 }
    );
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list_objects("p", after.as_deref(), 7).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        all.extend(page);
    }
    assert_eq!(all.len(), 25, "pagination returns every object once");
    let omap = s
        .omap_range("p", "obj00", Some(&[b'k', 1]), None, 4)
        .unwrap();
    let ks: Vec<u8> = omap.iter().map(|(k, _)| k[1]).collect();
    assert_eq!(
        ks,
        vec![2, 4, 5, 6],
        "after k1, without removed k3, limit 4"
    );
    s.submit_blocking(txn(
        "p",
        vec![Op::OmapClear {
            name: "obj00".into(),
        }],
    ))
    .unwrap();
    assert!(
        s.omap_range("p", "obj00", None, None, 100)
            .unwrap()
            .is_empty()
    );
    let err = s
        .submit_blocking(txn("p", vec![Op::RemoveCollection]))
        .unwrap_err();
    assert!(matches!(err, StoreError::CollectionNotEmpty(_)), "{err}");
    assert!(matches!(
        s.read("p", "nope", 0, 1).unwrap_err(),
        StoreError::NoObject(..)
    ));
    assert!(matches!(
        s.submit_blocking(txn("q", vec![Op::Touch { name: "x".into() }]))
            .unwrap_err(),
        StoreError::NoCollection(_)
    ));
}

#[test]
fn a_failing_transaction_changes_nothing() {
    let (_d, s) = store(8 << 20);
    s.submit_blocking(txn("p", vec![Op::CreateCollection]))
        .unwrap();
    let bad = txn(
        "p",
        vec![
            Op::WriteFull {
                name: "a".into(),
                data: vec![1; 100_000].into(),
                sums: None,
            },
            Op::Remove {
                name: "missing".into(),
            },
        ],
    );
    let used = s.statfs().used;
    assert!(s.submit_blocking(bad).is_err());
    assert!(matches!(
        s.stat("p", "a").unwrap_err(),
        StoreError::NoObject(..)
    ));
    assert_eq!(
        s.statfs().used,
        used,
        "the failed write's space is free again"
    );
}

#[test]
fn full_disk_refuses_before_changing_anything_and_keeps_serving() {
    let (_d, s) = store(2 << 20);
    s.submit_blocking(txn("p", vec![Op::CreateCollection]))
        .unwrap();
    let mut n = 0;
    let err = loop {
        let r = s.submit_blocking(txn(
            "p",
            vec![Op::WriteFull {
                name: format!("o{n}"),
                data: pattern(256 << 10, n as u8).into(),
                sums: None,
            }],
        ));
        match r {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100, "never filled up");
    };
    assert!(matches!(err, StoreError::NoSpace { .. }), "{err}");
    assert!(matches!(
        s.stat("p", &format!("o{n}")).unwrap_err(),
        StoreError::NoObject(..)
    ));
    assert!(s.statfs().available < 256 << 10);
    // Reads and deletes still work; a delete makes room again.
    assert_eq!(
        s.read("p", "o0", 0, u64::MAX).unwrap(),
        pattern(256 << 10, 0)
    );
    s.submit_blocking(txn("p", vec![Op::Remove { name: "o0".into() }]))
        .unwrap();
    s.submit_blocking(txn(
        "p",
        vec![Op::WriteFull {
            name: "again".into(),
            data: vec![5; 100_000].into(),
            sums: None,
        }],
    ))
    .unwrap();
    // The reserve is usable by transactions marked for it.
    let mut t = txn(
        "p",
        vec![Op::WriteFull {
            name: "recovery".into(),
            data: vec![6; 40_000].into(),
            sums: None,
        }],
    );
    let plain = s.submit_blocking(t.clone());
    t.use_reserve = true;
    if plain.is_err() {
        s.submit_blocking(t).unwrap();
    }
}

#[test]
fn reopening_keeps_everything_and_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig::new(dir.path(), 16 << 20);
    Store::mkfs(&cfg).unwrap();
    let used;
    {
        let s = Store::open(&cfg).unwrap();
        s.submit_blocking(txn("p", vec![Op::CreateCollection]))
            .unwrap();
        let mut t = Transaction::new("p");
        t.write_full("a", pattern(300_000, 1))
            .write_full("b", pattern(5000, 2));
        s.submit_blocking(t).unwrap();
        s.submit_blocking(txn(
            "p",
            vec![Op::Clone {
                src: "a".into(),
                dst: "c".into(),
            }],
        ))
        .unwrap();
        used = s.statfs().used;
    }
    let s = Store::open(&cfg).unwrap();
    assert_eq!(s.statfs().used, used, "free space rebuilt exactly");
    assert_eq!(s.read("p", "a", 0, u64::MAX).unwrap(), pattern(300_000, 1));
    assert_eq!(s.read("p", "c", 0, u64::MAX).unwrap(), pattern(300_000, 1));
    assert!(
        Store::mkfs(&cfg).is_err(),
        "mkfs refuses to clobber a store"
    );
}

#[test]
fn both_backends_share_one_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path(), 8 << 20);
    Store::mkfs(&cfg).unwrap();
    cfg.backend = shoal_store::Backend::ThreadPool;
    {
        let s = Store::open(&cfg).unwrap();
        assert_eq!(s.backend(), "thread-pool");
        s.submit_blocking(txn(
            "p",
            vec![
                Op::CreateCollection,
                Op::WriteFull {
                    name: "x".into(),
                    data: pattern(100_000, 4).into(),
                    sums: None,
                },
            ],
        ))
        .unwrap();
    }
    cfg.backend = shoal_store::Backend::IoUring;
    let s = Store::open(&cfg).unwrap();
    assert_eq!(s.backend(), "io_uring");
    assert_eq!(s.read("p", "x", 0, u64::MAX).unwrap(), pattern(100_000, 4));
}

#[test]
fn concurrent_partial_overwrites_batch_and_merge_correctly() {
    // Many threads overwrite disjoint unaligned ranges of the same objects,
    // so batches hold several read-modify-writes of committed chunks (read
    // ahead together) and of chunks written earlier in the same batch.
    let (_d, s) = store(256 << 20);
    let s = std::sync::Arc::new(s);
    s.submit_blocking(txn("1.0", vec![Op::CreateCollection]))
        .unwrap();
    let base = pattern(1 << 20, 3);
    for o in 0..4 {
        let mut t = Transaction::new("1.0");
        t.write_full(&format!("obj{o}"), base.clone());
        s.submit_blocking(t).unwrap();
    }
    let mut expect: Vec<Vec<u8>> = (0..4).map(|_| base.clone()).collect();
    let mut handles = Vec::new();
    for th in 0..16u8 {
        let s = s.clone();
        handles.push(std::thread::spawn(move || {
            for k in 0..8u64 {
                let slot = u64::from(th) * 8 + k;
                let data = pattern(3000, th.wrapping_mul(8).wrapping_add(k as u8));
                s.submit_blocking(txn(
                    "1.0",
                    vec![Op::Write {
                        name: format!("obj{}", slot % 4),
                        offset: slot * 7001 + 100,
                        data: data.into(),
                    }],
                ))
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    for th in 0..16u8 {
        for k in 0..8u64 {
            let slot = u64::from(th) * 8 + k;
            let data = pattern(3000, th.wrapping_mul(8).wrapping_add(k as u8));
            let off = (slot * 7001 + 100) as usize;
            expect[(slot % 4) as usize][off..off + 3000].copy_from_slice(&data);
        }
    }
    for (o, e) in expect.iter().enumerate() {
        assert!(
            s.read("1.0", &format!("obj{o}"), 0, u64::MAX).unwrap() == *e,
            "obj{o} differs"
        );
    }
    assert!(s.deep_scrub("1.0").unwrap().errors.is_empty());
}

#[test]
fn checksums_given_with_a_write_are_kept_when_they_fit_the_chunk_size() {
    let (_d, s) = store(64 << 20);
    s.submit_blocking(txn("p", vec![Op::CreateCollection]))
        .unwrap();
    let chunk = shoal_store::DEFAULT_CHUNK_SIZE;
    let data = pattern(3 * chunk as usize + 4096, 7);
    let write = |name: &str, sums| {
        s.submit_blocking(txn(
            "p",
            vec![Op::WriteFull {
                name: name.into(),
                data: shoal_buf::AlignedBuf::copied(data.len(), &data).into_bytes(),
                sums: Some(sums),
            }],
        ))
    };
    // The right checksums: stored as given, the data reads back.
    write("right", ChunkSums::compute(&data, chunk)).unwrap();
    assert_eq!(s.read("p", "right", 0, u64::MAX).unwrap(), data);
    // Checksums cut by another chunk size are ignored: the store hashes.
    write("other-size", ChunkSums::compute(&data, chunk / 2)).unwrap();
    assert_eq!(s.read("p", "other-size", 0, u64::MAX).unwrap(), data);
    // Checksums that fit but are wrong are trusted as given (the store does
    // not hash again), so every read of the data is refused as corrupt.
    write("wrong", ChunkSums::compute(&pattern(data.len(), 8), chunk)).unwrap();
    assert!(matches!(
        s.read("p", "wrong", 0, u64::MAX).unwrap_err(),
        StoreError::Corrupt { .. }
    ));
}

#[test]
fn an_objects_checksums_are_given_out_only_when_they_cover_its_whole_data() {
    let (_d, s) = store(64 << 20);
    s.submit_blocking(txn("p", vec![Op::CreateCollection]))
        .unwrap();
    let chunk = s.chunk_size();
    let data = pattern(2 * chunk as usize + 1000, 3);
    let write_full = |name: &str| Op::WriteFull {
        name: name.into(),
        data: data.clone().into(),
        sums: None,
    };
    let sums = |name: &str| s.snapshot("p", name).unwrap().chunk_sums();
    // Written whole: the checksums are those of the data, chunk by chunk.
    s.submit_blocking(txn("p", vec![write_full("whole")]))
        .unwrap();
    assert_eq!(sums("whole"), Some(ChunkSums::compute(&data, chunk)));
    // A hole in the middle: nothing covers it.
    s.submit_blocking(txn(
        "p",
        vec![Op::Write {
            name: "holey".into(),
            offset: 2 * chunk,
            data: pattern(10, 1).into(),
        }],
    ))
    .unwrap();
    assert_eq!(sums("holey"), None);
    // Grown by a write past a short chunk: that chunk's checksum covers
    // fewer bytes than its share of the data.
    s.submit_blocking(txn(
        "p",
        vec![
            Op::Write {
                name: "grown".into(),
                offset: 0,
                data: pattern(100, 2).into(),
            },
            Op::Write {
                name: "grown".into(),
                offset: chunk,
                data: pattern(100, 2).into(),
            },
        ],
    ))
    .unwrap();
    assert_eq!(sums("grown"), None);
    // Empty: nothing to give.
    s.submit_blocking(txn(
        "p",
        vec![Op::Touch {
            name: "empty".into(),
        }],
    ))
    .unwrap();
    assert_eq!(sums("empty"), None);
}

/// A split in one transaction: the children are created and the parent's
/// selected objects (data, xattrs, omap, version) move into them; nothing
/// is copied, a failing move changes nothing, and a reopened store has
/// everything where the transaction put it.
#[test]
fn objects_move_between_collections_in_one_transaction() {
    use shoal_store::NameRoute;
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig::new(dir.path(), 64 << 20);
    Store::mkfs(&cfg).unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("obj{i}")).collect();
    let odd = |n: &str| {
        n.trim_start_matches("obj")
            .parse::<u32>()
            .is_ok_and(|i| i % 2 == 1)
    };
    let extents;
    {
        let s = Store::open(&cfg).unwrap();
        s.submit_blocking(txn("p", vec![Op::CreateCollection]))
            .unwrap();
        let mut t = Transaction::new("p");
        for (i, n) in names.iter().enumerate() {
            t.write_full(n, pattern(1000 + i * 5000, i as u8));
            t.push(Op::SetXattr {
                name: n.clone(),
                key: "k".into(),
                value: vec![i as u8],
            });
            t.push(Op::OmapSet {
                name: n.clone(),
                entries: vec![(b"o".to_vec(), vec![i as u8; 3])],
            });
        }
        s.submit_blocking(t).unwrap();
        // Written in the same batch as the move (not yet committed).
        let late = s.submit(txn(
            "p",
            vec![Op::Write {
                name: "obj1".into(),
                offset: 0,
                data: b"late".to_vec().into(),
            }],
        ));
        extents = s.extents("p", "obj3").unwrap();
        let split = txn(
            "p",
            vec![
                Op::On {
                    collection: "c".into(),
                    ops: vec![
                        Op::CreateCollection,
                        Op::SetCollectionMeta(b"child".to_vec()),
                    ],
                },
                Op::MoveObjects {
                    route: NameRoute::new(move |n| odd(n).then(|| "c".to_string())),
                },
                Op::SetCollectionMeta(b"parent".to_vec()),
            ],
        );
        s.submit_blocking(split).unwrap();
        block_on(late).unwrap();
        assert_eq!(s.extents("c", "obj3").unwrap(), extents, "nothing copied");
        // A move onto an object of the same name fails whole.
        s.submit_blocking(txn(
            "p",
            vec![Op::Touch {
                name: "obj1".into(),
            }],
        ))
        .unwrap();
        let clash = txn(
            "p",
            vec![
                Op::Touch {
                    name: "fresh".into(),
                },
                Op::MoveObjects {
                    route: NameRoute::new(|n| (n == "obj1").then(|| "c".to_string())),
                },
            ],
        );
        assert!(matches!(
            s.submit_blocking(clash),
            Err(StoreError::ObjectExists(..))
        ));
        assert!(matches!(
            s.stat("p", "fresh"),
            Err(StoreError::NoObject(..))
        ));
        s.submit_blocking(txn(
            "p",
            vec![Op::Remove {
                name: "obj1".into(),
            }],
        ))
        .unwrap();
    }
    let s = Store::open(&cfg).unwrap();
    assert_eq!(s.collection_meta("c").unwrap(), b"child");
    assert_eq!(s.collection_meta("p").unwrap(), b"parent");
    let mut in_c = s.list_objects("c", None, 1000).unwrap();
    let mut in_p = s.list_objects("p", None, 1000).unwrap();
    in_c.sort();
    in_p.sort();
    let (mut want_c, mut want_p): (Vec<String>, Vec<String>) =
        names.iter().cloned().partition(|n| odd(n));
    want_c.sort();
    want_p.sort();
    assert_eq!((in_c, in_p), (want_c, want_p));
    for (i, n) in names.iter().enumerate() {
        let coll = if odd(n) { "c" } else { "p" };
        let mut want = pattern(1000 + i * 5000, i as u8);
        if n == "obj1" {
            want[..4].copy_from_slice(b"late");
        }
        assert_eq!(s.read(coll, n, 0, u64::MAX).unwrap(), want, "{n}");
        assert_eq!(s.xattrs(coll, n).unwrap()["k"], vec![i as u8]);
        assert_eq!(
            s.omap_get(coll, n, &[b"o"]).unwrap(),
            vec![Some(vec![i as u8; 3])]
        );
        let other = if odd(n) { "p" } else { "c" };
        assert!(matches!(s.stat(other, n), Err(StoreError::NoObject(..))));
    }
    // The parent emptied of odd objects; moving the rest back empties it.
    s.submit_blocking(txn(
        "c",
        vec![Op::MoveObjects {
            route: NameRoute::new(|_| Some("p".to_string())),
        }],
    ))
    .unwrap();
    s.submit_blocking(txn("c", vec![Op::RemoveCollection]))
        .unwrap();
    assert_eq!(s.list_objects("p", None, 1000).unwrap().len(), 40);
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}
