//! Flipped bytes on the device: reads return `Corrupt` naming the object and
//! range (never wrong bytes), and a deep scrub finds exactly the damaged
//! objects.

use std::io::{Read, Seek, SeekFrom, Write};

use shoal_store::{Op, Store, StoreConfig, StoreError, Transaction};

#[test]
fn flipped_bytes_are_detected_and_scrub_finds_exactly_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig::new(dir.path(), 32 << 20);
    Store::mkfs(&cfg).unwrap();
    let mut damaged = Vec::new();
    {
        let s = Store::open(&cfg).unwrap();
        let mut t = Transaction::new("pg");
        t.push(Op::CreateCollection);
        for i in 0..10u8 {
            t.write_full(&format!("o{i}"), vec![i; 200_000 + i as usize]);
        }
        s.submit_blocking(t).unwrap();
        for (name, chunk) in [("o2", 0usize), ("o5", 1), ("o7", 3)] {
            let (logical, phys, len) = s.extents("pg", name).unwrap()[chunk];
            damaged.push((name, logical..logical + len, phys + 100));
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(cfg.data_path())
        .unwrap();
    for (_, _, at) in &damaged {
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(*at)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(*at)).unwrap();
        f.write_all(&[b[0] ^ 0x40]).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);

    let s = Store::open(&cfg).unwrap();
    for (name, range, _) in &damaged {
        match s.read("pg", name, 0, u64::MAX) {
            Err(StoreError::Corrupt {
                object, range: r, ..
            }) => {
                assert_eq!(&object, name);
                assert_eq!(&r, range);
            }
            other => panic!("{name}: expected Corrupt, got {other:?}"),
        }
        assert!(
            matches!(
                s.read_bytes("pg", name, 0, u64::MAX),
                Err(StoreError::Corrupt { .. })
            ),
            "{name}: the shared-buffer read refuses damaged bytes too"
        );
    }
    assert_eq!(
        &s.read_bytes("pg", "o1", 0, u64::MAX).unwrap()[..],
        &vec![1; 200_001][..]
    );
    // Undamaged ranges of damaged objects and other objects read fine.
    assert_eq!(s.read("pg", "o7", 0, 1000).unwrap(), vec![7; 1000]);
    assert_eq!(s.read("pg", "o1", 0, u64::MAX).unwrap(), vec![1; 200_001]);
    let report = s.deep_scrub("pg").unwrap();
    assert_eq!(report.objects, 10);
    let mut found: Vec<(&str, std::ops::Range<u64>)> = report
        .errors
        .iter()
        .map(|e| (e.object.as_str(), e.range.clone()))
        .collect();
    found.sort_by(|a, b| a.0.cmp(b.0));
    let want: Vec<(&str, std::ops::Range<u64>)> =
        damaged.iter().map(|(n, r, _)| (*n, r.clone())).collect();
    assert_eq!(found, want);
}
