//! The store against a simple in-memory model of the same API (the model is
//! the oracle): random transactions, then every object compared.

use std::collections::BTreeMap;

use proptest::prelude::*;
use shoal_store::{ChunkSums, Op, Store, StoreConfig, Transaction};

/// The chunk size of the model's store (small: many chunk boundaries).
const CHUNK: u64 = 4096;

#[derive(Clone, Debug, Default, PartialEq)]
struct Obj {
    data: Vec<u8>,
    xattrs: BTreeMap<String, Vec<u8>>,
    omap: BTreeMap<Vec<u8>, Vec<u8>>,
}

type Model = BTreeMap<String, Obj>;

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8) ^ seed.wrapping_mul(13))
        .collect()
}

fn apply(m: &mut Model, op: &Op) -> Result<(), ()> {
    match op {
        Op::Write { name, offset, data } => {
            let o = m.entry(name.clone()).or_default();
            let end = *offset as usize + data.len();
            if o.data.len() < end {
                o.data.resize(end, 0);
            }
            o.data[*offset as usize..end].copy_from_slice(data);
        }
        Op::WriteFull { name, data, .. } => m.entry(name.clone()).or_default().data = data.to_vec(),
        Op::Zero { name, offset, len } => {
            let o = m.entry(name.clone()).or_default();
            let end = (*offset + *len) as usize;
            if o.data.len() < end {
                o.data.resize(end, 0);
            }
            o.data[*offset as usize..end].fill(0);
        }
        Op::Truncate { name, size } => m
            .entry(name.clone())
            .or_default()
            .data
            .resize(*size as usize, 0),
        Op::Remove { name } => {
            m.remove(name).ok_or(())?;
        }
        Op::Clone { src, dst } => {
            let o = m.get(src).ok_or(())?.clone();
            m.insert(dst.clone(), o);
        }
        Op::SetXattr { name, key, value } => {
            m.entry(name.clone())
                .or_default()
                .xattrs
                .insert(key.clone(), value.clone());
        }
        Op::OmapSet { name, entries } => {
            let o = m.entry(name.clone()).or_default();
            for (k, v) in entries {
                o.omap.insert(k.clone(), v.clone());
            }
        }
        Op::OmapRemove { name, keys } => {
            let o = m.entry(name.clone()).or_default();
            for k in keys {
                o.omap.remove(k);
            }
        }
        _ => unreachable!("not generated"),
    }
    Ok(())
}

fn op() -> impl Strategy<Value = Op> {
    let name = (0..4u8).prop_map(|i| format!("o{i}"));
    prop_oneof![
        (name.clone(), 0u64..40_000, 0usize..20_000, any::<u8>()).prop_map(
            |(name, offset, len, s)| Op::Write {
                name,
                offset,
                data: bytes(len, s).into()
            }
        ),
        (name.clone(), 0usize..50_000, any::<u8>()).prop_map(|(name, len, s)| Op::WriteFull {
            name,
            data: bytes(len, s).into(),
            sums: None,
        }),
        // Whole blocks in an aligned buffer (written without a copy), with
        // checksums made by someone else (a PG's head) or none.
        (name.clone(), 1usize..12, any::<u8>(), any::<bool>()).prop_map(
            |(name, blocks, s, summed)| {
                let data = bytes(blocks * 4096, s);
                let sums = summed.then(|| ChunkSums::compute(&data, CHUNK));
                Op::WriteFull {
                    name,
                    data: shoal_buf::AlignedBuf::copied(data.len(), &data).into_bytes(),
                    sums,
                }
            }
        ),
        (name.clone(), 0u64..40_000, 0u64..30_000).prop_map(|(name, offset, len)| Op::Zero {
            name,
            offset,
            len
        }),
        (name.clone(), 0u64..60_000).prop_map(|(name, size)| Op::Truncate { name, size }),
        name.clone().prop_map(|name| Op::Remove { name }),
        (name.clone(), name.clone())
            .prop_filter("distinct", |(a, b)| a != b)
            .prop_map(|(src, dst)| Op::Clone { src, dst }),
        (name.clone(), 0..3u8, any::<u8>()).prop_map(|(name, k, v)| Op::SetXattr {
            name,
            key: format!("x{k}"),
            value: vec![v; 3]
        }),
        (name.clone(), 0..5u8, any::<u8>()).prop_map(|(name, k, v)| Op::OmapSet {
            name,
            entries: vec![(vec![k], vec![v])]
        }),
        (name, 0..5u8).prop_map(|(name, k)| Op::OmapRemove {
            name,
            keys: vec![vec![k]]
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(txns in proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path(), 16 << 20);
        cfg.chunk_size = CHUNK;
        Store::mkfs(&cfg).unwrap();
        let s = Store::open(&cfg).unwrap();
        let mut t = Transaction::new("c");
        t.push(Op::CreateCollection);
        s.submit_blocking(t).unwrap();
        let mut model = Model::new();
        for ops in txns {
            let mut next = model.clone();
            let ok = ops.iter().all(|o| apply(&mut next, o).is_ok());
            let res = s.submit_blocking(Transaction { collection: "c".into(), ops, use_reserve: false });
            prop_assert_eq!(res.is_ok(), ok, "{:?}", res);
            if ok {
                model = next;
            }
            for i in 0..4 {
                let name = format!("o{i}");
                match model.get(&name) {
                    None => prop_assert!(s.stat("c", &name).is_err()),
                    Some(o) => {
                        prop_assert_eq!(&s.read("c", &name, 0, u64::MAX).unwrap(), &o.data);
                        // The shared-buffer read agrees, whole and in ranges
                        // that start and end inside chunks.
                        let len = o.data.len() as u64;
                        for (a, b) in [(0, u64::MAX), (len / 3, len / 3 + 5000), (4095, 8193)] {
                            let want = &o.data[(a.min(len) as usize)..(b.min(len) as usize).max(a.min(len) as usize)];
                            prop_assert_eq!(&s.read_bytes("c", &name, a, b - a).unwrap()[..], want);
                        }
                        prop_assert_eq!(&s.xattrs("c", &name).unwrap(), &o.xattrs);
                        let omap: BTreeMap<_, _> = s.omap_range("c", &name, None, None, 100).unwrap().into_iter().collect();
                        prop_assert_eq!(&omap, &o.omap);
                    }
                }
            }
        }
        drop(s);
        // After reopening, the same state and no leaked space.
        let s = Store::open(&cfg).unwrap();
        for (name, o) in &model {
            prop_assert_eq!(&s.read("c", name, 0, u64::MAX).unwrap(), &o.data);
        }
    }
}
