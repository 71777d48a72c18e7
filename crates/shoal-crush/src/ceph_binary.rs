//! Reading Ceph's own binary CRUSH encoding (`CrushWrapper::encode`): what
//! `ceph osd getcrushmap -o map.bin` and `crushtool -c` write. Users can hand
//! Shoal the map of their Ceph cluster as it is.
//!
//! Derived bucket data (legacy straw lengths, list sums, tree node weights)
//! is taken from the bytes as Ceph computed it, so placements match even
//! for straw buckets whose lengths predate a `straw_calc_version` change.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::builder::MAX_BUCKETS;
use crate::codec::validate;
use crate::model::{
    Bucket, BucketAlg, BucketType, ChooseArg, ChooseArgMap, CrushMap, Device, Rule, RuleStep,
    RuleType, Tunables,
};

/// The first four bytes of a Ceph binary CRUSH map (`CRUSH_MAGIC`, LE).
pub const CEPH_MAGIC: [u8; 4] = 0x0001_0000u32.to_le_bytes();

/// Largest count of anything (items, rules, names, weights) accepted, so a
/// corrupt length cannot make us allocate without bound.
const MAX_COUNT: u32 = 1 << 22;

/// Why a Ceph binary map could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CephDecodeError {
    /// The bytes do not start with `CRUSH_MAGIC`.
    #[error("not a Ceph binary CRUSH map (bad magic)")]
    BadMagic,
    /// The bytes end inside a field.
    #[error("truncated at byte {0} reading {1}")]
    Truncated(usize, &'static str),
    /// A value no valid map has.
    #[error("byte {at}: {what}")]
    Invalid {
        /// Offset of the field.
        at: usize,
        /// What is wrong.
        what: String,
    },
    /// The decoded map breaks an invariant.
    #[error("decoded map is inconsistent: {0}")]
    Inconsistent(String),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CephDecodeError> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(CephDecodeError::Truncated(self.at, what));
        };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, CephDecodeError> {
        Ok(self.take::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, CephDecodeError> {
        Ok(u16::from_le_bytes(self.take(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, CephDecodeError> {
        Ok(u32::from_le_bytes(self.take(what)?))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, CephDecodeError> {
        Ok(i32::from_le_bytes(self.take(what)?))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, CephDecodeError> {
        Ok(i64::from_le_bytes(self.take(what)?))
    }
    fn count(&mut self, what: &'static str) -> Result<usize, CephDecodeError> {
        let at = self.at;
        let n = self.u32(what)?;
        if n > MAX_COUNT {
            return Err(self.invalid(at, format!("{what}: count {n} is absurd")));
        }
        Ok(n as usize)
    }
    fn invalid(&self, at: usize, what: String) -> CephDecodeError {
        CephDecodeError::Invalid { at, what }
    }
    fn string(&mut self, len: usize, what: &'static str) -> Result<String, CephDecodeError> {
        let end = self.at.checked_add(len).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(CephDecodeError::Truncated(self.at, what));
        };
        let s = std::str::from_utf8(&self.bytes[self.at..end])
            .map_err(|_| self.invalid(self.at, format!("{what}: not UTF-8")))?
            .to_string();
        self.at = end;
        Ok(s)
    }
    /// `map<int32, string>`, tolerating Ceph's old 64-bit keys (an empty
    /// length means the key had four more bytes).
    fn name_map(&mut self, what: &'static str) -> Result<BTreeMap<i32, String>, CephDecodeError> {
        let n = self.count(what)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let key = self.i32(what)?;
            let mut len = self.u32(what)?;
            if len == 0 {
                len = self.u32(what)?;
            }
            let s = self.string(len as usize, what)?;
            m.insert(key, s);
        }
        Ok(m)
    }
    fn int_map(&mut self, what: &'static str) -> Result<BTreeMap<i32, i32>, CephDecodeError> {
        let n = self.count(what)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.i32(what)?;
            m.insert(k, self.i32(what)?);
        }
        Ok(m)
    }
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// A bucket as encoded, before names are attached.
struct RawBucket {
    id: i32,
    type_id: i32,
    alg: BucketAlg,
    hash: u8,
    weight: u32,
    items: Vec<i32>,
    item_weights: Vec<u32>,
    straws: Vec<u32>,
    sum_weights: Vec<u32>,
    node_weights: Vec<u32>,
}

fn read_bucket(r: &mut Reader<'_>) -> Result<RawBucket, CephDecodeError> {
    let id = r.i32("bucket id")?;
    let type_id = r.u16("bucket type")? as i32;
    let at = r.at;
    let alg = match r.u8("bucket alg")? {
        1 => BucketAlg::Uniform,
        2 => BucketAlg::List,
        3 => BucketAlg::Tree,
        4 => BucketAlg::Straw,
        5 => BucketAlg::Straw2,
        other => return Err(r.invalid(at, format!("unknown bucket algorithm {other}"))),
    };
    let hash = r.u8("bucket hash")?;
    let weight = r.u32("bucket weight")?;
    let size = r.count("bucket size")?;
    let mut items = Vec::with_capacity(size);
    for _ in 0..size {
        items.push(r.i32("bucket item")?);
    }
    let mut b = RawBucket {
        id,
        type_id,
        alg,
        hash,
        weight,
        items,
        item_weights: Vec::with_capacity(size),
        straws: Vec::new(),
        sum_weights: Vec::new(),
        node_weights: Vec::new(),
    };
    match alg {
        BucketAlg::Uniform => {
            let w = r.u32("uniform item weight")?;
            b.item_weights = vec![w; size];
        }
        BucketAlg::List => {
            for _ in 0..size {
                b.item_weights.push(r.u32("list item weight")?);
                b.sum_weights.push(r.u32("list sum weight")?);
            }
        }
        BucketAlg::Tree => {
            let n = r.u8("tree node count")? as usize;
            for _ in 0..n {
                b.node_weights.push(r.u32("tree node weight")?);
            }
            // Item i is the leaf at node 2i + 1.
            for i in 0..size {
                b.item_weights
                    .push(b.node_weights.get(2 * i + 1).copied().unwrap_or(0));
            }
        }
        BucketAlg::Straw => {
            b.straws.reserve(size);
            for _ in 0..size {
                b.item_weights.push(r.u32("straw item weight")?);
                b.straws.push(r.u32("straw length")?);
            }
        }
        BucketAlg::Straw2 => {
            for _ in 0..size {
                b.item_weights.push(r.u32("straw2 item weight")?);
            }
        }
    }
    Ok(b)
}

fn step(op: u32, arg1: i32, arg2: i32) -> Option<RuleStep> {
    let (num, type_id) = (arg1, arg2);
    Some(match op {
        0 => RuleStep::Noop,
        1 => RuleStep::Take(arg1),
        2 => RuleStep::ChooseFirstn { num, type_id },
        3 => RuleStep::ChooseIndep { num, type_id },
        4 => RuleStep::Emit,
        6 => RuleStep::ChooseleafFirstn { num, type_id },
        7 => RuleStep::ChooseleafIndep { num, type_id },
        8 => RuleStep::SetChooseTries(arg1),
        9 => RuleStep::SetChooseleafTries(arg1),
        10 => RuleStep::SetChooseLocalTries(arg1),
        11 => RuleStep::SetChooseLocalFallbackTries(arg1),
        12 => RuleStep::SetChooseleafVaryR(arg1),
        13 => RuleStep::SetChooseleafStable(arg1),
        _ => return None,
    })
}

/// Decodes a map in Ceph's binary encoding.
pub fn decode(bytes: &[u8]) -> Result<CrushMap, CephDecodeError> {
    if !bytes.starts_with(&CEPH_MAGIC) {
        return Err(CephDecodeError::BadMagic);
    }
    let mut r = Reader { bytes, at: 4 };
    let at = r.at;
    let max_buckets = r.i32("max_buckets")?;
    if !(0..=MAX_BUCKETS as i32).contains(&max_buckets) {
        return Err(r.invalid(at, format!("max_buckets {max_buckets} out of range")));
    }
    let max_rules = r.count("max_rules")?;
    let _max_devices = r.i32("max_devices")?;

    let mut raw = Vec::new();
    for _ in 0..max_buckets {
        if r.u32("bucket alg")? != 0 {
            raw.push(read_bucket(&mut r)?);
        }
    }
    let mut rules_raw = Vec::new();
    for i in 0..max_rules {
        if r.u32("rule present")? == 0 {
            continue;
        }
        let len = r.count("rule length")?;
        let _ruleset = r.u8("ruleset")?;
        let at = r.at;
        let rule_type = match r.u8("rule type")? {
            1 => RuleType::Replicated,
            3 => RuleType::Erasure,
            other => return Err(r.invalid(at, format!("rule {i}: unsupported rule type {other}"))),
        };
        let min_size = r.u8("rule min_size")? as i32;
        let max_size = r.u8("rule max_size")? as i32;
        let mut steps = Vec::with_capacity(len);
        for _ in 0..len {
            let at = r.at;
            let op = r.u32("step op")?;
            let (a1, a2) = (r.i32("step arg1")?, r.i32("step arg2")?);
            steps.push(
                step(op, a1, a2)
                    .ok_or_else(|| r.invalid(at, format!("rule {i}: unknown step op {op}")))?,
            );
        }
        rules_raw.push((i as i32, rule_type, min_size, max_size, steps));
    }
    let type_map = r.name_map("type names")?;
    let name_map = r.name_map("item names")?;
    let rule_names = r.name_map("rule names")?;

    let mut t = Tunables::legacy();
    if !r.done() {
        t.choose_local_tries = r.u32("choose_local_tries")?;
        t.choose_local_fallback_tries = r.u32("choose_local_fallback_tries")?;
        t.choose_total_tries = r.u32("choose_total_tries")?;
    }
    if !r.done() {
        t.chooseleaf_descend_once = r.u32("chooseleaf_descend_once")?;
    }
    if !r.done() {
        t.chooseleaf_vary_r = r.u8("chooseleaf_vary_r")?;
    }
    if !r.done() {
        t.straw_calc_version = r.u8("straw_calc_version")?;
    }
    if !r.done() {
        t.allowed_bucket_algs = r.u32("allowed_bucket_algs")?;
    }
    if !r.done() {
        t.chooseleaf_stable = r.u8("chooseleaf_stable")?;
    }
    let (mut class_map, mut class_name, mut class_bucket) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    if !r.done() {
        class_map = r.int_map("device classes")?;
        class_name = r.name_map("class names")?;
        let n = r.count("class buckets")?;
        for _ in 0..n {
            let orig = r.i32("class bucket")?;
            class_bucket.insert(orig, r.int_map("class bucket")?);
        }
    }
    let mut choose_args = Vec::new();
    if !r.done() {
        let n = r.count("choose_args")?;
        for _ in 0..n {
            let id = r.i64("choose_args id")?;
            let count = r.count("choose_args size")?;
            let mut args = Vec::with_capacity(count);
            for _ in 0..count {
                let at = r.at;
                let index = r.u32("choose_args bucket")?;
                if index as usize >= MAX_BUCKETS {
                    return Err(r.invalid(at, format!("choose_args bucket index {index}")));
                }
                let positions = r.count("weight_set positions")?;
                let mut weight_set = Vec::with_capacity(positions);
                for _ in 0..positions {
                    let size = r.count("weight_set size")?;
                    let mut ws = Vec::with_capacity(size);
                    for _ in 0..size {
                        ws.push(r.u32("weight_set weight")?);
                    }
                    weight_set.push(ws);
                }
                let ids_size = r.count("choose_args ids")?;
                let mut ids = Vec::with_capacity(ids_size);
                for _ in 0..ids_size {
                    ids.push(r.i32("choose_args id")?);
                }
                args.push(ChooseArg {
                    bucket_id: -1 - index as i32,
                    ids,
                    weight_set,
                });
            }
            args.sort_by_key(|a| std::cmp::Reverse(a.bucket_id));
            choose_args.push(ChooseArgMap { id, args });
        }
        choose_args.sort_by_key(|c| c.id);
    }

    let class_of = |id: &i32| class_name.get(id).cloned();
    let mut map = CrushMap::new(t);
    map.devices = name_map
        .iter()
        .filter(|(id, _)| **id >= 0)
        .map(|(&id, name)| Device {
            id,
            name: name.clone(),
            class: class_map.get(&id).and_then(class_of),
        })
        .collect();
    map.types = type_map
        .iter()
        .map(|(&id, name)| BucketType {
            id,
            name: name.clone(),
        })
        .collect();
    let mut shadow_of: BTreeMap<i32, (i32, String)> = BTreeMap::new();
    let mut class_ids: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (&orig, per_class) in &class_bucket {
        for (cid, &shadow) in per_class {
            let Some(cname) = class_of(cid) else {
                return Err(CephDecodeError::Inconsistent(format!(
                    "unknown class id {cid}"
                )));
            };
            shadow_of.insert(shadow, (orig, cname.clone()));
            class_ids.entry(orig).or_default().push((cname, shadow));
        }
    }
    for b in raw {
        if b.id >= 0 || b.id.unsigned_abs() as usize > MAX_BUCKETS {
            return Err(CephDecodeError::Inconsistent(format!("bucket id {}", b.id)));
        }
        let idx = (-1 - b.id) as usize;
        if map.buckets.len() <= idx {
            map.buckets.resize(idx + 1, None);
        }
        let name = name_map
            .get(&b.id)
            .cloned()
            .unwrap_or_else(|| format!("bucket{}", -1 - b.id));
        map.buckets[idx] = Some(Bucket {
            id: b.id,
            name,
            type_id: b.type_id,
            alg: b.alg,
            hash: b.hash,
            items: b.items,
            item_weights: b.item_weights,
            weight: b.weight,
            straws: b.straws,
            sum_weights: b.sum_weights,
            node_weights: b.node_weights,
            class_ids: class_ids.remove(&b.id).unwrap_or_default(),
            shadow_of: shadow_of.remove(&b.id),
        });
    }
    for (id, rule_type, min_size, max_size, steps) in rules_raw {
        let idx = id as usize;
        if map.rules.len() <= idx {
            map.rules.resize(idx + 1, None);
        }
        map.rules[idx] = Some(Rule {
            id,
            name: rule_names.get(&id).cloned().unwrap_or_default(),
            rule_type,
            min_size,
            max_size,
            steps,
        });
    }
    map.choose_args = choose_args;
    validate(&map).map_err(|e| CephDecodeError::Inconsistent(e.to_string()))?;
    Ok(map)
}
