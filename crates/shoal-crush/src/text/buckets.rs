//! Compiling bucket definitions like `CrushCompiler::parse_bucket`, in the
//! order `CrushCompiler::adjust_bucket_item_place` gives them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::ParseError;
use super::compile::Compiler;
use super::syntax::BucketDef;
use crate::builder::{self, MAX_BUCKETS, c_double_to_u32};
use crate::model::{BucketAlg, WEIGHT_ONE, Weight};

/// `CRUSH_MAX_DEVICE_WEIGHT`: an item weight above this is refused for devices.
const MAX_DEVICE_WEIGHT: u32 = 100 * WEIGHT_ONE;
/// `CRUSH_MAX_BUCKET_WEIGHT`: an item weight above this is refused for buckets.
const MAX_BUCKET_WEIGHT: u32 = 65535 * WEIGHT_ONE;

/// The order in which bucket definitions are compiled.
///
/// Ceph first swaps definitions pairwise (for each `i`, for each later `j`
/// that `i` contains, swap the definitions at `i` and `j`); the result is then
/// made dependency-safe by always taking the earliest definition whose child
/// buckets are all compiled. When Ceph's order already works (the usual case)
/// it is kept exactly, so automatic ids come out the same.
pub(super) fn processing_order(defs: &[BucketDef<'_>]) -> Result<Vec<usize>, ParseError> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, d) in defs.iter().enumerate() {
        if index.insert(d.name.text, i).is_some() {
            return Err(ParseError::at(
                &d.name,
                format!("bucket or device '{}' is already defined", d.name.text),
            ));
        }
    }
    let children: Vec<Vec<usize>> = defs
        .iter()
        .map(|d| {
            let mut c: Vec<usize> = d
                .items
                .iter()
                .filter_map(|it| index.get(it.name.text).copied())
                .collect();
            c.sort_unstable();
            c.dedup();
            c
        })
        .collect();
    let mut slots: Vec<usize> = (0..defs.len()).collect();
    for (i, c) in children.iter().enumerate() {
        for &j in c.iter().filter(|&&j| j > i) {
            slots.swap(i, j);
        }
    }
    let mut rank = vec![0; defs.len()];
    for (pos, &d) in slots.iter().enumerate() {
        rank[d] = pos;
    }
    let mut pending: Vec<usize> = children.iter().map(Vec::len).collect();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); defs.len()];
    for (d, c) in children.iter().enumerate() {
        c.iter().for_each(|&child| parents[child].push(d));
    }
    let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..defs.len())
        .filter(|&d| pending[d] == 0)
        .map(|d| Reverse((rank[d], d)))
        .collect();
    let mut order = Vec::with_capacity(defs.len());
    while let Some(Reverse((_, d))) = ready.pop() {
        order.push(d);
        for &p in &parents[d] {
            pending[p] -= 1;
            if pending[p] == 0 {
                ready.push(Reverse((rank[p], p)));
            }
        }
    }
    if order.len() < defs.len() {
        let stuck = (0..defs.len())
            .filter(|&d| pending[d] > 0)
            .min_by_key(|&d| rank[d]);
        if let Some(item) = stuck.and_then(|d| {
            let blocked = |it: &&super::syntax::ItemDef<'_>| {
                index.get(it.name.text).is_some_and(|&c| pending[c] > 0)
            };
            defs[d].items.iter().find(blocked)
        }) {
            return Err(ParseError::at(
                &item.name,
                format!(
                    "item '{}' makes the bucket hierarchy cyclic",
                    item.name.text
                ),
            ));
        }
    }
    Ok(order)
}

/// Weight of an explicit `weight W`: `(unsigned)(strtof(W) * (float)0x10000)`.
fn fixed_point(w: f32) -> Weight {
    c_double_to_u32(f64::from(w * 65536.0f32))
}

impl Compiler {
    /// `CrushCompiler::parse_bucket`.
    pub(super) fn bucket(&mut self, def: &BucketDef<'_>) -> Result<(), ParseError> {
        let name = def.name.text;
        let type_id = *self.type_id.get(def.type_name.text).ok_or_else(|| {
            let msg = format!("bucket type '{}' is not defined", def.type_name.text);
            ParseError::at(&def.type_name, msg)
        })?;
        if self.item_id.contains_key(name) {
            let msg = format!("bucket or device '{name}' is already defined");
            return Err(ParseError::at(&def.name, msg));
        }
        let mut id = 0i32;
        let mut id_tok = def.name;
        let mut class_ids: Vec<(usize, i32)> = Vec::new();
        for line in &def.ids {
            let (value, tok) = line.id;
            if value.unsigned_abs() as usize > MAX_BUCKETS {
                let msg = format!("bucket id {value} is out of range (at most -{MAX_BUCKETS})");
                return Err(ParseError::at(&tok, msg));
            }
            let value = value as i32; // checked just above
            match &line.class {
                Some(class) => {
                    let c = self.class_index(class.text);
                    if class_ids.iter().any(|&(k, _)| k == c) {
                        let msg =
                            format!("duplicate device class {} for bucket {name}", class.text);
                        return Err(ParseError::at(class, msg));
                    }
                    class_ids.push((c, value));
                }
                None => (id, id_tok) = (value, tok),
            }
        }
        let alg = BucketAlg::from_name(def.alg.text).ok_or_else(|| {
            ParseError::at(&def.alg, format!("unknown bucket alg '{}'", def.alg.text))
        })?;
        // C's `atoi` into the bucket's `__u8 hash`.
        let hash = def.hash.as_ref().map_or(0, |&(v, _)| v.unwrap_or(0) as u8);
        let (items, weights) = self.bucket_items(def, alg)?;
        if id == 0 {
            id = (1..)
                .map(|k: i32| -k)
                .find(|i| !self.bucket_ids.contains(i))
                .unwrap_or(-1);
        }
        let mut bucket = builder::make_bucket(
            id,
            name,
            type_id,
            alg,
            hash,
            items,
            weights,
            self.map.tunables.straw_calc_version,
        )
        .map_err(|e| ParseError::at(&id_tok, format!("bucket '{name}': {e}")))?;
        class_ids.sort_unstable();
        bucket.class_ids = class_ids
            .into_iter()
            .map(|(c, i)| (self.classes[c].clone(), i))
            .collect();
        let idx = (-1 - id) as usize;
        if self.map.buckets.get(idx).is_some_and(Option::is_some) {
            return Err(ParseError::at(&id_tok, format!("duplicate bucket id {id}")));
        }
        if self.map.buckets.len() <= idx {
            self.map.buckets.resize(idx + 1, None);
        }
        self.item_weight.insert(id, bucket.weight);
        self.map.buckets[idx] = Some(bucket);
        self.bucket_ids.insert(id);
        self.item_id.insert(name.to_string(), id);
        Ok(())
    }

    /// Items and weights in position order, with Ceph's checks.
    fn bucket_items(
        &self,
        def: &BucketDef<'_>,
        alg: BucketAlg,
    ) -> Result<(Vec<i32>, Vec<Weight>), ParseError> {
        let bname = def.name.text;
        let mut used = vec![false; def.items.len()];
        let mut size = def.items.len();
        for it in &def.items {
            let Some((pos, tok)) = it.pos else { continue };
            let pos = pos as usize;
            if pos < used.len() && used[pos] {
                let msg = format!(
                    "item '{}' in bucket '{bname}' has explicit pos {pos}, which is occupied",
                    it.name.text
                );
                return Err(ParseError::at(&tok, msg));
            }
            if pos < used.len() {
                used[pos] = true;
            }
            size = size.max(pos);
        }
        let mut items = vec![0i32; size];
        let mut weights = vec![0u32; size];
        let (mut curpos, mut total, mut uniform) = (0usize, 0u32, None::<Weight>);
        for it in &def.items {
            let iname = it.name.text;
            let item = *self.item_id.get(iname).ok_or_else(|| {
                let msg = format!("item '{iname}' in bucket '{bname}' is not defined");
                ParseError::at(&it.name, msg)
            })?;
            let mut weight = self.item_weight.get(&item).copied().unwrap_or(WEIGHT_ONE);
            if let Some((w, tok)) = it.weight {
                weight = fixed_point(w);
                if item >= 0 && weight > MAX_DEVICE_WEIGHT {
                    return Err(ParseError::at(&tok, "device weight limited to 100".into()));
                }
                if item < 0 && weight > MAX_BUCKET_WEIGHT {
                    let msg = "bucket weight limited to 65535 to prevent overflow".into();
                    return Err(ParseError::at(&tok, msg));
                }
            }
            if alg == BucketAlg::Uniform && *uniform.get_or_insert(weight) != weight {
                let msg = format!(
                    "item '{iname}' in uniform bucket '{bname}' has weight {:.3} but previous item(s) have weight {:.3}; uniform bucket items must all have identical weights",
                    weight as f32 / 65536.0,
                    uniform.unwrap_or(0) as f32 / 65536.0
                );
                return Err(ParseError::at(&it.name, msg));
            }
            let pos = match it.pos {
                Some((p, tok)) if p as usize >= size => {
                    let msg =
                        format!("item '{iname}' in bucket '{bname}' has pos {p} >= size {size}");
                    return Err(ParseError::at(&tok, msg));
                }
                Some((p, _)) => p as usize,
                None => {
                    while used.get(curpos) == Some(&true) {
                        curpos += 1;
                    }
                    curpos += 1;
                    curpos - 1
                }
            };
            items[pos] = item;
            weights[pos] = weight;
            total = total.checked_add(weight).ok_or_else(|| {
                let msg =
                    format!("bucket '{bname}': total weight overflows; lower the item weights");
                ParseError::at(&it.name, msg)
            })?;
        }
        Ok((items, weights))
    }
}
