//! Many transactions in flight on the same objects: each is staged on top
//! of the ones before it that are still being committed (the overlay), and
//! they apply in submission order. Checked against a plain model.

use std::collections::BTreeMap;

use shoal_store::{Op, Store, StoreConfig, Transaction};

#[derive(Clone, Default)]
struct Obj {
    data: Vec<u8>,
    omap: BTreeMap<Vec<u8>, Vec<u8>>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One random transaction on `name`, applied to the model as well.
fn random_txn(rng: &mut Rng, i: u64, name: &str, model: &mut BTreeMap<String, Obj>) -> Transaction {
    let mut t = Transaction::new("pg");
    let obj = model.entry(name.to_string()).or_default();
    match rng.next(7) {
        0 | 1 => {
            let offset = rng.next(300_000) as usize;
            let len = 1 + rng.next(20_000) as usize;
            let data: Vec<u8> = (0..len).map(|k| (k as u64 * 7 + i) as u8).collect();
            if obj.data.len() < offset + len {
                obj.data.resize(offset + len, 0);
            }
            obj.data[offset..offset + len].copy_from_slice(&data);
            t.push(Op::Write {
                name: name.into(),
                offset: offset as u64,
                data: data.into(),
            });
        }
        2 => {
            let size = rng.next(320_000) as usize;
            obj.data.resize(size, 0);
            t.push(Op::Truncate {
                name: name.into(),
                size: size as u64,
            });
        }
        3 => {
            let key = format!("k{}", rng.next(20)).into_bytes();
            let value = i.to_le_bytes().to_vec();
            obj.omap.insert(key.clone(), value.clone());
            t.push(Op::OmapSet {
                name: name.into(),
                entries: vec![(key, value)],
            });
        }
        4 => {
            let key = format!("k{}", rng.next(20)).into_bytes();
            obj.omap.remove(&key);
            t.push(Op::OmapRemove {
                name: name.into(),
                keys: vec![key],
            });
        }
        5 => {
            obj.xattrs.insert("x".into(), i.to_le_bytes().to_vec());
            t.push(Op::SetXattr {
                name: name.into(),
                key: "x".into(),
                value: i.to_le_bytes().to_vec(),
            });
        }
        _ => {
            // A copy-on-write clone: shares extents that later writes to
            // the source must not disturb.
            let snap = obj.clone();
            let dst = format!("{name}.snap{}", rng.next(3));
            t.push(Op::Clone {
                src: name.into(),
                dst: dst.clone(),
            });
            model.insert(dst, snap);
        }
    }
    t
}

fn check(store: &Store, model: &BTreeMap<String, Obj>) {
    for (name, obj) in model {
        let data = store.read("pg", name, 0, u64::MAX).unwrap();
        assert!(data == obj.data, "{name}: data differs from the model");
        let omap: BTreeMap<Vec<u8>, Vec<u8>> = store
            .omap_range("pg", name, None, None, usize::MAX)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(omap, obj.omap, "{name}: omap");
        assert_eq!(
            store.xattrs("pg", name).unwrap(),
            obj.xattrs,
            "{name}: xattrs"
        );
    }
    let scrub = store.deep_scrub("pg").unwrap();
    assert!(scrub.errors.is_empty(), "{:?}", scrub.errors);
}

#[test]
fn transactions_in_flight_apply_in_order_on_top_of_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path(), 256 << 20);
    cfg.reserve = 0;
    Store::mkfs(&cfg).unwrap();
    let store = Store::open(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut t = Transaction::new("pg");
    t.push(Op::CreateCollection);
    rt.block_on(store.submit(t)).unwrap();

    let mut model = BTreeMap::new();
    let mut rng = Rng(0x5eed_1234_abcd);
    let names = ["a", "b", "c"];
    for name in names {
        let mut t = Transaction::new("pg");
        t.push(Op::Touch { name: name.into() });
        rt.block_on(store.submit(t)).unwrap();
        model.insert(name.to_string(), Obj::default());
    }
    for round in 0..20u64 {
        // 60 transactions queued at once, then awaited.
        let futures: Vec<_> = (0..60u64)
            .map(|k| {
                let i = round * 1000 + k;
                let name = names[rng.next(names.len() as u64) as usize];
                store.submit(random_txn(&mut rng, i, name, &mut model))
            })
            .collect();
        for f in futures {
            rt.block_on(f).unwrap();
        }
        check(&store, &model);
    }
    drop(store);
    let store = Store::open(&cfg).unwrap();
    check(&store, &model);
}
