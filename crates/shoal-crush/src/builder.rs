//! Building buckets the way Ceph's `src/crush/builder.c` does, so that the
//! derived data the mapper reads (legacy straw lengths, list prefix sums, tree
//! node weights) is bit-identical, and device-class shadow trees the way
//! `CrushWrapper::populate_classes` / `device_class_clone` build them.

mod shadow;
mod straw;

use thiserror::Error;

use crate::model::{Bucket, BucketAlg, Weight};

pub use shadow::build_shadow_trees;
pub(crate) use shadow::build_shadow_trees_ordered;
pub use straw::calc_straws;

/// Largest number of bucket slots (`max_buckets`) Shoal accepts, so a bucket
/// id can never make a map allocate without bound. Ids run from `-1` down to
/// `-MAX_BUCKETS`.
pub const MAX_BUCKETS: usize = 1 << 16;

/// Largest tree bucket: Ceph stores the node count in a `u8`, so a tree of
/// more than 64 items (128 nodes) cannot be represented.
pub const MAX_TREE_ITEMS: usize = 64;

/// Why a bucket or a shadow tree could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// `items` and `weights` have different lengths.
    #[error("bucket {bucket}: {items} items but {weights} weights")]
    LengthMismatch {
        /// The bucket id.
        bucket: i32,
        /// Number of items.
        items: usize,
        /// Number of weights.
        weights: usize,
    },
    /// A uniform bucket whose items do not all have the same weight.
    #[error(
        "uniform bucket {bucket}: item {item} has weight {weight:#x} but the first item has {expected:#x}; uniform bucket items must all have identical weights"
    )]
    UnequalUniformWeights {
        /// The bucket id.
        bucket: i32,
        /// The offending item.
        item: i32,
        /// Its weight.
        weight: Weight,
        /// The weight of the first item.
        expected: Weight,
    },
    /// A device-class copy of a uniform bucket would hold an item of
    /// non-zero weight, which Ceph's `crush_add_uniform_bucket_item` refuses
    /// (the copy starts empty with item weight 0). Ceph stops building
    /// shadow trees there; the ones made before stay.
    #[error(
        "uniform bucket {0} cannot get a device-class shadow copy (Ceph refuses non-zero item weights in an emptied uniform bucket)"
    )]
    UniformShadow(i32),
    /// The bucket's total weight does not fit in 32 bits.
    #[error("bucket {bucket}: total weight overflows 32 bits")]
    WeightOverflow {
        /// The bucket id.
        bucket: i32,
    },
    /// A tree bucket with more items than Ceph can represent.
    #[error("tree bucket {bucket} has {size} items; at most {MAX_TREE_ITEMS} are supported")]
    TreeTooLarge {
        /// The bucket id.
        bucket: i32,
        /// Its number of items.
        size: usize,
    },
    /// A bucket id that is not negative or beyond [`MAX_BUCKETS`].
    #[error("bucket id {0} is out of range (-1 ..= -{MAX_BUCKETS})")]
    BadBucketId(i32),
    /// A bucket refers to a child bucket that does not exist.
    #[error("bucket {parent} contains bucket {child}, which does not exist")]
    MissingBucket {
        /// The containing bucket.
        parent: i32,
        /// The missing child id.
        child: i32,
    },
    /// The buckets do not form a directed acyclic graph.
    #[error("bucket {0} contains itself (directly or through its children)")]
    Cycle(i32),
    /// A shadow bucket id is already taken by another bucket.
    #[error("shadow bucket {name} cannot use id {id}: the id is already taken")]
    ShadowIdInUse {
        /// The shadow bucket's name (`host0~ssd`).
        name: String,
        /// The requested id.
        id: i32,
    },
    /// No free bucket id is left for a new shadow bucket.
    #[error("no free bucket id left for shadow bucket {0}")]
    NoFreeId(String),
}

/// Builds a bucket exactly like Ceph's `crush_make_bucket`: the total weight
/// and, depending on `alg`, the legacy straw lengths (`straws`, computed with
/// `straw_calc_version`), the list prefix sums (`sum_weights`) or the tree node
/// weights (`node_weights`, `1 << depth` nodes, leaf of item `i` at node
/// `2 i + 1`). `items` keep their order. The other derived vectors stay empty,
/// `class_ids` is empty and `shadow_of` is `None`.
///
/// # Errors
///
/// Mismatched lengths, unequal uniform weights, a total weight that overflows
/// `u32` (Ceph's `crush_addition_is_unsafe`), a tree bucket of more than
/// [`MAX_TREE_ITEMS`] items, or an id outside `-1 ..= -MAX_BUCKETS`.
#[allow(clippy::too_many_arguments)] // mirrors crush_make_bucket's parameters
pub fn make_bucket(
    id: i32,
    name: &str,
    type_id: i32,
    alg: BucketAlg,
    hash: u8,
    items: Vec<i32>,
    weights: Vec<Weight>,
    straw_calc_version: u8,
) -> Result<Bucket, BuildError> {
    if id >= 0 || id.unsigned_abs() as usize > MAX_BUCKETS {
        return Err(BuildError::BadBucketId(id));
    }
    if items.len() != weights.len() {
        return Err(BuildError::LengthMismatch {
            bucket: id,
            items: items.len(),
            weights: weights.len(),
        });
    }
    if alg == BucketAlg::Uniform {
        if let Some(&first) = weights.first() {
            if let Some((i, &w)) = weights.iter().enumerate().find(|&(_, &w)| w != first) {
                return Err(BuildError::UnequalUniformWeights {
                    bucket: id,
                    item: items[i],
                    weight: w,
                    expected: first,
                });
            }
        }
    }
    let weight = weights
        .iter()
        .try_fold(0u32, |acc, &w| acc.checked_add(w))
        .ok_or(BuildError::WeightOverflow { bucket: id })?;
    let mut bucket = Bucket {
        id,
        name: name.to_string(),
        type_id,
        alg,
        hash,
        items,
        item_weights: weights,
        weight,
        straws: Vec::new(),
        sum_weights: Vec::new(),
        node_weights: Vec::new(),
        class_ids: Vec::new(),
        shadow_of: None,
    };
    match alg {
        BucketAlg::Straw => bucket.straws = calc_straws(&bucket.item_weights, straw_calc_version),
        BucketAlg::List => bucket.sum_weights = prefix_sums(&bucket.item_weights),
        BucketAlg::Tree => {
            if bucket.items.len() > MAX_TREE_ITEMS {
                return Err(BuildError::TreeTooLarge {
                    bucket: id,
                    size: bucket.items.len(),
                });
            }
            bucket.node_weights = tree_node_weights(&bucket.item_weights);
        }
        BucketAlg::Uniform | BucketAlg::Straw2 => {}
    }
    Ok(bucket)
}

/// C's `(__u32)double` on x86-64: truncation through a 64-bit signed
/// conversion (`cvttsd2si`), keeping the low 32 bits; out-of-range and NaN
/// give the "integer indefinite" value `i64::MIN`, whose low 32 bits are 0.
pub(crate) fn c_double_to_u32(x: f64) -> u32 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_63..TWO_63).contains(&x) {
        0
    } else {
        x as i64 as u32
    }
}

/// `sum_weights` of a list bucket. The caller has checked that the total fits.
fn prefix_sums(weights: &[Weight]) -> Vec<Weight> {
    weights
        .iter()
        .scan(0u32, |acc, &w| {
            *acc = acc.wrapping_add(w);
            Some(*acc)
        })
        .collect()
}

/// Tree depth as `calc_depth` in builder.c (0 for an empty bucket).
fn tree_depth(size: usize) -> u32 {
    if size == 0 {
        return 0;
    }
    usize::BITS - (size - 1).leading_zeros() + 1
}

/// Number of nodes of a tree bucket with `size` items (`1 << depth`, 0 when
/// empty), as `crush_make_tree_bucket` allocates them.
pub fn tree_num_nodes(size: usize) -> usize {
    match tree_depth(size) {
        0 => 0,
        d => 1 << d,
    }
}

/// Height of a node: the number of trailing zero bits (builder.c `height`).
fn node_height(n: usize) -> u32 {
    n.trailing_zeros()
}

/// Parent of a tree node (builder.c `parent`).
fn node_parent(n: usize) -> usize {
    let h = node_height(n);
    if n & (1 << (h + 1)) != 0 {
        n - (1 << h)
    } else {
        n + (1 << h)
    }
}

/// Node weights of a tree bucket, as `crush_make_tree_bucket` fills them: the
/// leaf of item `i` is node `2 i + 1`, each inner node holds the sum of its
/// subtree, the root is node `num_nodes / 2`. The caller has checked that the
/// total fits and that there are at most [`MAX_TREE_ITEMS`] items.
fn tree_node_weights(weights: &[Weight]) -> Vec<Weight> {
    let depth = tree_depth(weights.len());
    let mut nodes = vec![0u32; tree_num_nodes(weights.len())];
    for (i, &w) in weights.iter().enumerate() {
        let mut node = 2 * i + 1;
        nodes[node] = w;
        for _ in 1..depth {
            node = node_parent(node);
            nodes[node] = nodes[node].wrapping_add(w);
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_is_c_like() {
        assert_eq!(c_double_to_u32(65536.9), 65536);
        assert_eq!(c_double_to_u32(4_294_967_296.0 + 5.0), 5);
        assert_eq!(c_double_to_u32(f64::NAN), 0);
        assert_eq!(c_double_to_u32(1e30), 0);
    }

    #[test]
    fn tree_layout_matches_ceph() {
        assert_eq!(tree_num_nodes(0), 0);
        assert_eq!(tree_num_nodes(1), 2);
        assert_eq!(tree_num_nodes(2), 4);
        assert_eq!(tree_num_nodes(3), 8);
        assert_eq!(tree_num_nodes(4), 8);
        assert_eq!(tree_num_nodes(5), 16);
        assert_eq!(tree_num_nodes(64), 128);
        // Three items: leaves 1, 3, 5; node 2 = 1 + 3; root 4 = 2 + 6; 6 = 5 + 7.
        let n = tree_node_weights(&[1, 2, 4]);
        assert_eq!(n, vec![0, 1, 3, 2, 7, 4, 4, 0]);
        assert_eq!(tree_node_weights(&[5]), vec![0, 5]);
    }

    #[test]
    fn make_bucket_fills_derived_data() {
        let b = make_bucket(
            -1,
            "h",
            1,
            BucketAlg::List,
            0,
            vec![0, 1, 2],
            vec![1, 2, 3],
            1,
        )
        .expect("list bucket");
        assert_eq!(b.sum_weights, vec![1, 3, 6]);
        assert_eq!(b.weight, 6);
        assert!(b.straws.is_empty() && b.node_weights.is_empty());
        let t = make_bucket(-2, "t", 1, BucketAlg::Tree, 0, vec![4, 5], vec![7, 9], 1)
            .expect("tree bucket");
        assert_eq!(t.node_weights, vec![0, 7, 16, 9]);
        assert_eq!(t.items, vec![4, 5]);
    }

    #[test]
    fn make_bucket_rejects_bad_input() {
        let e = make_bucket(-1, "u", 1, BucketAlg::Uniform, 0, vec![0, 1], vec![1, 2], 1);
        assert!(matches!(
            e,
            Err(BuildError::UnequalUniformWeights { item: 1, .. })
        ));
        let e = make_bucket(
            -1,
            "s",
            1,
            BucketAlg::Straw2,
            0,
            vec![0, 1],
            vec![u32::MAX, 1],
            1,
        );
        assert_eq!(e, Err(BuildError::WeightOverflow { bucket: -1 }));
        let e = make_bucket(-1, "s", 1, BucketAlg::Straw2, 0, vec![0], vec![], 1);
        assert!(matches!(e, Err(BuildError::LengthMismatch { .. })));
        let e = make_bucket(0, "s", 1, BucketAlg::Straw2, 0, vec![], vec![], 1);
        assert_eq!(e, Err(BuildError::BadBucketId(0)));
        let items: Vec<i32> = (0..65).collect();
        let e = make_bucket(-1, "t", 1, BucketAlg::Tree, 0, items, vec![1; 65], 1);
        assert!(matches!(e, Err(BuildError::TreeTooLarge { size: 65, .. })));
        let u = make_bucket(-3, "u", 1, BucketAlg::Uniform, 0, vec![0, 1], vec![9, 9], 1)
            .expect("uniform bucket");
        assert_eq!(u.weight, 18);
    }
}
