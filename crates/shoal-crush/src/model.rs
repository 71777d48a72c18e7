//! The CRUSH map model: devices, bucket types, buckets, rules and tunables.
//!
//! The layout mirrors Ceph's `struct crush_map` closely enough that every
//! mapping decision can be made the same way: buckets live at index `-1 - id`,
//! rules at their id, weights are 16.16 fixed point.

use rkyv::{Archive, Deserialize, Serialize};

/// 16.16 fixed-point weight: `0x10000` is 1.0.
pub type Weight = u32;

/// 1.0 in 16.16 fixed point.
pub const WEIGHT_ONE: Weight = 0x10000;

/// A hole in an `indep` (erasure) result: no item could be placed here.
pub const ITEM_NONE: i32 = 0x7fff_ffff;

/// Placeholder inside `indep` while a slot is still being chosen.
pub(crate) const ITEM_UNDEF: i32 = 0x7fff_fffe;

/// Bucket selection algorithms, numbered as Ceph numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub enum BucketAlg {
    /// All items have one weight; choose by a hashed permutation.
    Uniform = 1,
    /// Linked list: cheap additions at the end.
    List = 2,
    /// Binary tree (deprecated in Ceph).
    Tree = 3,
    /// Legacy straw (v1), with precomputed straw lengths.
    Straw = 4,
    /// Straw2: exponential draws scaled by weight; the default.
    Straw2 = 5,
}

impl BucketAlg {
    /// The name in Ceph's text format (`alg straw2`).
    pub fn name(self) -> &'static str {
        match self {
            BucketAlg::Uniform => "uniform",
            BucketAlg::List => "list",
            BucketAlg::Tree => "tree",
            BucketAlg::Straw => "straw",
            BucketAlg::Straw2 => "straw2",
        }
    }

    /// Parses the text-format name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "uniform" => BucketAlg::Uniform,
            "list" => BucketAlg::List,
            "tree" => BucketAlg::Tree,
            "straw" => BucketAlg::Straw,
            "straw2" => BucketAlg::Straw2,
            _ => return None,
        })
    }

    /// Ceph's numeric id (used by `allowed_bucket_algs` bit masks).
    pub fn id(self) -> u32 {
        self as u32
    }
}

/// Map-wide tunables (`tunable NAME VALUE` lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct Tunables {
    /// firstn: retries in the same bucket after a collision.
    pub choose_local_tries: u32,
    /// firstn: retries in the same bucket through a permutation.
    pub choose_local_fallback_tries: u32,
    /// Descents tried before a replica is given up (plus one, historically).
    pub choose_total_tries: u32,
    /// firstn chooseleaf: the inner descent gets one try.
    pub chooseleaf_descend_once: u32,
    /// chooseleaf: the inner `r` depends on the outer one.
    pub chooseleaf_vary_r: u8,
    /// chooseleaf firstn: inner calls choose one item starting at rank 0.
    pub chooseleaf_stable: u8,
    /// How legacy straw buckets compute their straw lengths (0 or 1).
    pub straw_calc_version: u8,
    /// Bit mask of the bucket algorithms new buckets may use.
    pub allowed_bucket_algs: u32,
}

impl Tunables {
    /// Argonaut values: what a map without `tunable` lines means.
    pub const fn legacy() -> Self {
        Tunables {
            choose_local_tries: 2,
            choose_local_fallback_tries: 5,
            choose_total_tries: 19,
            chooseleaf_descend_once: 0,
            chooseleaf_vary_r: 0,
            chooseleaf_stable: 0,
            straw_calc_version: 0,
            allowed_bucket_algs: (1 << 1) | (1 << 2) | (1 << 4),
        }
    }

    /// Jewel (and later "optimal") values.
    pub const fn jewel() -> Self {
        Tunables {
            choose_local_tries: 0,
            choose_local_fallback_tries: 0,
            choose_total_tries: 50,
            chooseleaf_descend_once: 1,
            chooseleaf_vary_r: 1,
            chooseleaf_stable: 1,
            straw_calc_version: 1,
            allowed_bucket_algs: (1 << 1) | (1 << 2) | (1 << 4) | (1 << 5),
        }
    }
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables::jewel()
    }
}

/// A storage device (an OSD): a leaf of the hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct Device {
    /// Device id, `>= 0`.
    pub id: i32,
    /// Name, `osd.N` by convention.
    pub name: String,
    /// Optional device class (`hdd`, `ssd`, ...).
    pub class: Option<String>,
}

/// A named level of the hierarchy (`type 1 host`). Type 0 is the device type.
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct BucketType {
    /// Numeric type id.
    pub id: i32,
    /// Name used by rules and buckets.
    pub name: String,
}

/// An interior node: a host, rack, root...
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct Bucket {
    /// Bucket id, `< 0`; stored at index `-1 - id` of [`CrushMap::buckets`].
    pub id: i32,
    /// Name (`host0`; shadow buckets are `host0~ssd`).
    pub name: String,
    /// Bucket type id (see [`CrushMap::types`]).
    pub type_id: i32,
    /// Selection algorithm.
    pub alg: BucketAlg,
    /// Hash algorithm id; 0 (rjenkins1) is the only one that hashes.
    pub hash: u8,
    /// Children: device ids (`>= 0`) or bucket ids (`< 0`).
    pub items: Vec<i32>,
    /// Weight of each child as seen by this bucket (16.16).
    pub item_weights: Vec<Weight>,
    /// Total weight: the sum of `item_weights`.
    pub weight: Weight,
    /// For legacy straw buckets: precomputed straw lengths, one per item.
    pub straws: Vec<u32>,
    /// For list buckets: prefix sums of `item_weights`.
    pub sum_weights: Vec<Weight>,
    /// For tree buckets: node weights of the implicit binary tree.
    pub node_weights: Vec<Weight>,
    /// Ids of this bucket's per-class shadow copies (`id -6 class hdd`).
    pub class_ids: Vec<(String, i32)>,
    /// For a shadow bucket: the original bucket's id and the class.
    pub shadow_of: Option<(i32, String)>,
}

impl Bucket {
    /// Number of children.
    pub fn size(&self) -> usize {
        self.items.len()
    }

    /// Whether this is a device-class shadow copy of another bucket.
    pub fn is_shadow(&self) -> bool {
        self.shadow_of.is_some()
    }
}

/// Rule kinds as Ceph numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub enum RuleType {
    /// Replicated pools (`firstn`).
    Replicated = 1,
    /// Erasure-coded pools (`indep`).
    Erasure = 3,
}

impl RuleType {
    /// Numeric id as stored by Ceph.
    pub fn id(self) -> u32 {
        self as u32
    }
}

/// One step of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub enum RuleStep {
    /// Does nothing (`step noop`).
    Noop,
    /// Start from an item (bucket, shadow bucket or device).
    Take(i32),
    /// `step choose firstn N type T`.
    ChooseFirstn { num: i32, type_id: i32 },
    /// `step choose indep N type T`.
    ChooseIndep { num: i32, type_id: i32 },
    /// `step chooseleaf firstn N type T`.
    ChooseleafFirstn { num: i32, type_id: i32 },
    /// `step chooseleaf indep N type T`.
    ChooseleafIndep { num: i32, type_id: i32 },
    /// Append the working set to the result.
    Emit,
    /// `step set_choose_tries N`.
    SetChooseTries(i32),
    /// `step set_chooseleaf_tries N`.
    SetChooseleafTries(i32),
    /// `step set_choose_local_tries N`.
    SetChooseLocalTries(i32),
    /// `step set_choose_local_fallback_tries N`.
    SetChooseLocalFallbackTries(i32),
    /// `step set_chooseleaf_vary_r N`.
    SetChooseleafVaryR(i32),
    /// `step set_chooseleaf_stable N`.
    SetChooseleafStable(i32),
}

/// A placement rule.
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct Rule {
    /// Rule id (index in [`CrushMap::rules`]; also the ruleset).
    pub id: i32,
    /// Rule name.
    pub name: String,
    /// Replicated or erasure.
    pub rule_type: RuleType,
    /// Smallest pool size the rule accepts.
    pub min_size: i32,
    /// Largest pool size the rule accepts.
    pub max_size: i32,
    /// The steps, in order.
    pub steps: Vec<RuleStep>,
}

/// Per-bucket alternative weights and ids used by straw2 (the balancer's
/// `choose_args` weight sets).
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct ChooseArg {
    /// Bucket this applies to.
    pub bucket_id: i32,
    /// Replacement ids hashed instead of the item ids (same length as items).
    pub ids: Vec<i32>,
    /// Weight sets: one vector of item weights per replica position.
    pub weight_set: Vec<Vec<Weight>>,
}

/// A named set of choose args (`choose_args N { ... }`), usually one per pool.
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct ChooseArgMap {
    /// The choose_args id (a pool id, or -1 for the compat weight set).
    pub id: i64,
    /// Per-bucket arguments.
    pub args: Vec<ChooseArg>,
}

/// A complete CRUSH map.
#[derive(Clone, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct CrushMap {
    /// Map-wide tunables.
    pub tunables: Tunables,
    /// Devices, sorted by id.
    pub devices: Vec<Device>,
    /// Bucket types, sorted by id.
    pub types: Vec<BucketType>,
    /// Buckets at index `-1 - id` (holes are `None`), shadow buckets included.
    pub buckets: Vec<Option<Bucket>>,
    /// Rules at index `id` (holes are `None`).
    pub rules: Vec<Option<Rule>>,
    /// Optional straw2 weight sets.
    pub choose_args: Vec<ChooseArgMap>,
}

impl CrushMap {
    /// An empty map with the given tunables.
    pub fn new(tunables: Tunables) -> Self {
        CrushMap {
            tunables,
            devices: Vec::new(),
            types: Vec::new(),
            buckets: Vec::new(),
            rules: Vec::new(),
            choose_args: Vec::new(),
        }
    }

    /// `max_devices`: one past the largest device id mentioned by a device
    /// line or a bucket item.
    pub fn max_devices(&self) -> i32 {
        let from_devices = self.devices.iter().map(|d| d.id + 1).max().unwrap_or(0);
        let from_items = self
            .buckets
            .iter()
            .flatten()
            .flat_map(|b| b.items.iter().copied())
            .filter(|&i| i >= 0)
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        from_devices.max(from_items)
    }

    /// The bucket with this id, if any.
    pub fn bucket(&self, id: i32) -> Option<&Bucket> {
        if id >= 0 {
            return None;
        }
        self.buckets.get((-1 - id) as usize)?.as_ref()
    }

    /// The bucket with this name, if any.
    pub fn bucket_by_name(&self, name: &str) -> Option<&Bucket> {
        self.buckets.iter().flatten().find(|b| b.name == name)
    }

    /// The rule with this id, if any.
    pub fn rule(&self, id: i32) -> Option<&Rule> {
        if id < 0 {
            return None;
        }
        self.rules.get(id as usize)?.as_ref()
    }

    /// The name of a bucket type.
    pub fn type_name(&self, type_id: i32) -> Option<&str> {
        self.types
            .iter()
            .find(|t| t.id == type_id)
            .map(|t| t.name.as_str())
    }

    /// The id of a named bucket type.
    pub fn type_id(&self, name: &str) -> Option<i32> {
        self.types.iter().find(|t| t.name == name).map(|t| t.id)
    }

    /// The device with this id, if any.
    pub fn device(&self, id: i32) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The name of an item: a device or bucket name.
    pub fn item_name(&self, id: i32) -> Option<&str> {
        if id >= 0 {
            self.device(id).map(|d| d.name.as_str())
        } else {
            self.bucket(id).map(|b| b.name.as_str())
        }
    }

    /// The type of an item: 0 for devices, the bucket type otherwise.
    pub fn item_type(&self, id: i32) -> Option<i32> {
        if id >= 0 {
            Some(0)
        } else {
            self.bucket(id).map(|b| b.type_id)
        }
    }

    /// The choose args with this id, if any.
    pub fn choose_arg_map(&self, id: i64) -> Option<&ChooseArgMap> {
        self.choose_args.iter().find(|c| c.id == id)
    }
}
