//! Shared helpers for the integration tests: the vector folders and a reader
//! for the bucket section of Ceph's binary map (`map.bin`), which carries the
//! derived data (straws, list sums, tree node weights) Ceph computed.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

/// `/work/shared/crush-vectors`, relative to this crate.
pub fn vectors_dir() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../../shared/crush-vectors")
}

/// Every `d0*` map folder, sorted.
pub fn map_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("vectors directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("d0"))
        })
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no d0* vector folders found");
    dirs
}

/// Reads a file of a vector folder as text.
pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{dir:?}/{name}: {e}"))
}

/// One bucket as Ceph encodes it.
#[derive(Debug, Default)]
pub struct CephBucket {
    pub id: i32,
    pub type_id: u16,
    pub alg: u8,
    pub hash: u8,
    pub weight: u32,
    pub items: Vec<i32>,
    pub item_weights: Vec<u32>,
    /// uniform: the single item weight.
    pub uniform_weight: u32,
    pub sum_weights: Vec<u32>,
    pub straws: Vec<u32>,
    pub node_weights: Vec<u32>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let out: [u8; N] = self.bytes[self.at..self.at + N].try_into().expect("bytes");
        self.at += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
}

/// The buckets of a Ceph binary CRUSH map (`CrushWrapper::encode`).
pub fn ceph_buckets(bytes: &[u8]) -> Vec<CephBucket> {
    let mut r = Reader { bytes, at: 0 };
    assert_eq!(r.u32(), 0x0001_0000, "CRUSH magic");
    let max_buckets = r.i32();
    let _max_rules = r.u32();
    let _max_devices = r.i32();
    let mut out = Vec::new();
    for _ in 0..max_buckets {
        let alg = r.u32();
        if alg == 0 {
            continue;
        }
        let mut b = CephBucket {
            id: r.i32(),
            type_id: r.u16(),
            alg: r.u8(),
            hash: r.u8(),
            weight: r.u32(),
            ..Default::default()
        };
        let size = r.u32() as usize;
        b.items = (0..size).map(|_| r.i32()).collect();
        match b.alg {
            1 => b.uniform_weight = r.u32(),
            2 => {
                for _ in 0..size {
                    b.item_weights.push(r.u32());
                    b.sum_weights.push(r.u32());
                }
            }
            3 => {
                let n = r.u8() as usize;
                b.node_weights = (0..n).map(|_| r.u32()).collect();
            }
            4 => {
                for _ in 0..size {
                    b.item_weights.push(r.u32());
                    b.straws.push(r.u32());
                }
            }
            5 => b.item_weights = (0..size).map(|_| r.u32()).collect(),
            other => panic!("unknown bucket alg {other}"),
        }
        out.push(b);
    }
    out
}
