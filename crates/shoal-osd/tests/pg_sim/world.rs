//! The simulated world around the OSDs: their stores, the monitor's map
//! history, and what the clients wrote.

use std::collections::{BTreeMap, BTreeSet};

use shoal_osd::pg::{Loaded, OmapRecords, decode_loaded};
use shoal_osd::pglog::{DUPS_OBJECT, META_OBJECT, MISSING_OBJECT, is_internal};
use shoal_proto::osd::ObjVersion;
use shoal_store::{Op, Transaction};

/// splitmix64: small, fast, good enough for choosing faults.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// One object in a simulated store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimObject {
    pub data: Vec<u8>,
    pub version: ObjVersion,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub omap: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The PG's collection in a simulated store, as shoal-store keeps one:
/// transactions apply whole or not at all, with the store's rules (every
/// op but `Remove` creates a missing object; `Remove` of a missing one
/// fails the transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimColl {
    pub meta: Vec<u8>,
    pub objects: BTreeMap<String, SimObject>,
}

impl SimColl {
    /// Applies `txn` whole, or returns why not (changing nothing).
    pub fn apply(&mut self, txn: &Transaction) -> Result<(), String> {
        let mut next = self.clone();
        for op in &txn.ops {
            next.apply_op(op)?;
        }
        *self = next;
        Ok(())
    }

    fn obj(&mut self, name: &str) -> &mut SimObject {
        self.objects.entry(name.to_string()).or_default()
    }

    fn apply_op(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::CreateCollection | Op::RemoveCollection => {}
            Op::SetCollectionMeta(m) => self.meta = m.clone(),
            Op::Touch { name } => {
                self.obj(name);
            }
            Op::Write { name, offset, data } => {
                let o = self.obj(name);
                let end = *offset as usize + data.len();
                if o.data.len() < end {
                    o.data.resize(end, 0);
                }
                o.data[*offset as usize..end].copy_from_slice(data);
            }
            Op::WriteFull { name, data, .. } => self.obj(name).data = data.to_vec(),
            Op::Zero { name, offset, len } => {
                let o = self.obj(name);
                let end = (*offset + *len) as usize;
                if o.data.len() < end {
                    o.data.resize(end, 0);
                }
                o.data[*offset as usize..end].fill(0);
            }
            Op::Truncate { name, size } => self.obj(name).data.resize(*size as usize, 0),
            Op::Remove { name } => {
                if self.objects.remove(name).is_none() {
                    return Err(format!("remove of missing object {name:?}"));
                }
            }
            Op::Clone { src, dst } => {
                let o = self
                    .objects
                    .get(src)
                    .cloned()
                    .ok_or("clone of a missing object")?;
                self.objects.insert(dst.clone(), o);
            }
            Op::SetXattr { name, key, value } => {
                self.obj(name).xattrs.insert(key.clone(), value.clone());
            }
            Op::RemoveXattr { name, key } => {
                self.obj(name).xattrs.remove(key);
            }
            Op::OmapSet { name, entries } => {
                let o = self.obj(name);
                for (k, v) in entries {
                    o.omap.insert(k.clone(), v.clone());
                }
            }
            Op::OmapRemove { name, keys } => {
                let o = self.obj(name);
                for k in keys {
                    o.omap.remove(k);
                }
            }
            Op::OmapClear { name } => self.obj(name).omap.clear(),
            Op::SetVersion { name, version } => {
                self.obj(name).version = ObjVersion {
                    epoch: version.epoch,
                    seq: version.seq,
                }
            }
            Op::MoveObjects { .. } | Op::On { .. } => {
                return Err(
                    "the simulated store holds one PG: no moves between collections".into(),
                );
            }
        }
        Ok(())
    }

    fn omap_of(&self, name: &str) -> OmapRecords {
        self.objects
            .get(name)
            .map(|o| o.omap.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The PG's records, decoded as the daemon decodes them at start.
    pub fn loaded(&self) -> Result<Loaded, String> {
        decode_loaded(
            "sim",
            &self.meta,
            self.omap_of(META_OBJECT),
            self.omap_of(DUPS_OBJECT),
            self.omap_of(MISSING_OBJECT),
        )
        .map_err(|e| e.to_string())
    }

    /// Client objects by name.
    pub fn client_objects(&self) -> impl Iterator<Item = (&String, &SimObject)> {
        self.objects.iter().filter(|(n, _)| !is_internal(n))
    }

    /// Client object names, in order.
    pub fn names(&self) -> Vec<String> {
        self.client_objects().map(|(n, _)| n.clone()).collect()
    }

    /// Scrub entries: a page after `after`, or exactly `only`; `deep`
    /// digests the data too.
    pub fn scrub_entries(
        &self,
        after: Option<&str>,
        limit: usize,
        only: &[String],
        deep: bool,
    ) -> (Vec<shoal_proto::rep::ScrubEntry>, bool) {
        let names: Vec<String> = if only.is_empty() {
            self.client_objects()
                .map(|(n, _)| n.clone())
                .filter(|n| after.is_none_or(|a| n.as_str() > a))
                .take(limit + 1)
                .collect()
        } else {
            only.to_vec()
        };
        let more = only.is_empty() && names.len() > limit;
        let entries = names
            .iter()
            .take(limit.max(only.len()))
            .filter_map(|n| {
                let o = self.objects.get(n)?;
                let mut meta = blake3::Hasher::new();
                for (k, v) in &o.xattrs {
                    meta.update(k.as_bytes());
                    meta.update(v);
                }
                meta.update(b"omap");
                for (k, v) in &o.omap {
                    meta.update(k);
                    meta.update(v);
                }
                Some(shoal_proto::rep::ScrubEntry {
                    name: n.clone(),
                    version: o.version,
                    size: o.data.len() as u64,
                    meta_digest: *meta.finalize().as_bytes(),
                    data_digest: deep.then(|| *blake3::hash(&o.data).as_bytes()),
                    error: String::new(),
                })
            })
            .collect();
        (entries, more)
    }

    /// A page of client objects after `after` with their versions.
    pub fn scan(&self, after: Option<&str>, limit: usize) -> (Vec<(String, ObjVersion)>, bool) {
        let mut out: Vec<(String, ObjVersion)> = self
            .client_objects()
            .filter(|(n, _)| after.is_none_or(|a| n.as_str() > a))
            .map(|(n, o)| (n.clone(), o.version))
            .take(limit + 1)
            .collect();
        let more = out.len() > limit;
        out.truncate(limit);
        (out, more)
    }
}

/// One epoch of the cluster map.
#[derive(Debug, Clone)]
pub struct MapEpoch {
    pub epoch: u32,
    pub up: BTreeSet<i32>,
    pub up_from: BTreeMap<i32, u32>,
    /// A temporary chain for the PG (empty: none).
    pub pg_temp: Vec<i32>,
}

/// The monitors, reduced to the map history they publish and the PG's
/// activation record.
pub struct Monitor {
    pub maps: Vec<MapEpoch>,
    /// CRUSH's order of preference for the PG.
    pub pref: Vec<i32>,
    pub size: usize,
    /// Whether a down OSD is replaced in the chain by the next in
    /// preference order (out at once) or leaves the chain short
    /// (undersized until it comes back).
    pub substitute: bool,
    /// The newest interval recorded as going active.
    pub recorded: shoal_osd::peering::Recorded,
}

impl Monitor {
    pub fn latest(&self) -> &MapEpoch {
        self.maps.last().expect("the monitor always has a map")
    }

    pub fn map(&self, epoch: u32) -> &MapEpoch {
        &self.maps[epoch as usize - 1]
    }

    /// The up set CRUSH gives in map `m`.
    pub fn up(&self, m: &MapEpoch) -> Vec<i32> {
        if self.substitute {
            self.pref
                .iter()
                .copied()
                .filter(|o| m.up.contains(o))
                .take(self.size)
                .collect()
        } else {
            self.pref[..self.size]
                .iter()
                .copied()
                .filter(|o| m.up.contains(o))
                .collect()
        }
    }

    /// The chain in map `m`: the `pg_temp` (its up members) if set.
    pub fn acting(&self, m: &MapEpoch) -> Vec<i32> {
        if m.pg_temp.is_empty() {
            return self.up(m);
        }
        m.pg_temp
            .iter()
            .copied()
            .filter(|o| m.up.contains(o))
            .collect()
    }

    fn next(&mut self) -> MapEpoch {
        let mut m = self.latest().clone();
        m.epoch += 1;
        m
    }

    pub fn change(&mut self, osd: i32, up: bool) -> u32 {
        let mut m = self.next();
        if up {
            m.up.insert(osd);
            m.up_from.insert(osd, m.epoch);
        } else {
            m.up.remove(&osd);
        }
        let e = m.epoch;
        self.maps.push(m);
        e
    }

    /// Sets (or, empty, clears) the PG's temporary chain.
    pub fn set_pg_temp(&mut self, osds: Vec<i32>) -> u32 {
        let mut m = self.next();
        m.pg_temp = osds;
        let e = m.epoch;
        self.maps.push(m);
        e
    }
}

/// A client's write as the client means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// Append eight bytes.
    Append(u64),
    /// Remove the object.
    Delete,
}

/// What the checker knows of one object's history: the clients' writes in
/// the order they were issued (each after the one before was answered).
#[derive(Debug, Default, Clone)]
pub struct History {
    pub ops: Vec<WriteOp>,
    pub acked: usize,
    pub busy: bool,
}

impl History {
    /// The object's data after the first `n` writes (`None`: absent).
    pub fn after(&self, n: usize) -> Option<Vec<u8>> {
        let mut c: Option<Vec<u8>> = None;
        for op in &self.ops[..n] {
            c = match op {
                WriteOp::Delete => None,
                WriteOp::Append(t) => {
                    let mut v = c.unwrap_or_default();
                    v.extend_from_slice(&t.to_le_bytes());
                    Some(v)
                }
            };
        }
        c
    }
}
