//! The OSD tree (`ceph osd tree`): the CRUSH hierarchy with each OSD's
//! state, as data (for JSON) and as an aligned text table.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::osdmap::OsdMap;

/// One row of the tree.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TreeNode {
    /// CRUSH id (devices >= 0, buckets < 0).
    pub id: i32,
    /// Name (`osd.3`, `host1`).
    pub name: String,
    /// Type name (`osd`, `host`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// CRUSH weight.
    pub crush_weight: f64,
    /// Depth below its root.
    pub depth: usize,
    /// Device state or bucket children.
    #[serde(flatten)]
    pub kind: TreeNodeKind,
}

/// What is special about a tree row.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum TreeNodeKind {
    /// An OSD.
    Device {
        /// `up` or `down`.
        status: String,
        /// Reweight in [0, 1].
        reweight: f64,
        /// Device class, if any.
        device_class: Option<String>,
    },
    /// A bucket.
    Bucket {
        /// Its items' ids.
        children: Vec<i32>,
    },
}

/// The whole tree plus OSDs that are not in CRUSH.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OsdTree {
    /// Rows in display order (roots, then each bucket's items in order).
    pub nodes: Vec<TreeNode>,
    /// OSDs in the map but not in the hierarchy.
    pub stray: Vec<i32>,
}

fn status(map: &OsdMap, id: i32) -> String {
    if map.is_up(id) { "up" } else { "down" }.to_string()
}

/// Builds the tree of `map`, skipping device-class shadow buckets.
pub fn osd_tree(map: &OsdMap) -> OsdTree {
    let crush = map.crush();
    let mut nodes = Vec::new();
    for root in crush.roots().into_iter().filter_map(|id| crush.bucket(id)) {
        let mut stack = vec![(root.id, 0usize, root.weight)];
        while let Some((id, depth, weight)) = stack.pop() {
            let kind = if let Some(b) = crush.bucket(id) {
                for (&item, &w) in b.items.iter().zip(&b.item_weights).rev() {
                    stack.push((item, depth + 1, w));
                }
                TreeNodeKind::Bucket {
                    children: b.items.clone(),
                }
            } else {
                TreeNodeKind::Device {
                    status: status(map, id),
                    reweight: f64::from(map.weight(id)) / 65536.0,
                    device_class: crush.device(id).and_then(|d| d.class.clone()),
                }
            };
            nodes.push(TreeNode {
                id,
                name: crush.item_name(id).unwrap_or("?").to_string(),
                type_name: crush
                    .item_type(id)
                    .and_then(|t| crush.type_name(t))
                    .unwrap_or("?")
                    .to_string(),
                crush_weight: f64::from(weight) / 65536.0,
                depth,
                kind,
            });
        }
    }
    let in_tree: BTreeSet<i32> = nodes.iter().map(|n| n.id).collect();
    let stray = map.osd_ids().filter(|id| !in_tree.contains(id)).collect();
    OsdTree { nodes, stray }
}

impl OsdTree {
    /// The `ceph osd tree`-like table.
    pub fn render(&self, map: &OsdMap) -> String {
        let mut table = vec![[
            "ID".to_string(),
            "CLASS".into(),
            "WEIGHT".into(),
            "TYPE NAME".into(),
            "STATUS".into(),
            "REWEIGHT".into(),
        ]];
        for n in &self.nodes {
            let indent = "    ".repeat(n.depth);
            let (class, status, reweight, label) = match &n.kind {
                TreeNodeKind::Device {
                    status,
                    reweight,
                    device_class,
                } => (
                    device_class.clone().unwrap_or_default(),
                    status.clone(),
                    format!("{reweight:.5}"),
                    format!("{indent}{}", n.name),
                ),
                TreeNodeKind::Bucket { .. } => (
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("{indent}{} {}", n.type_name, n.name),
                ),
            };
            table.push([
                n.id.to_string(),
                class,
                format!("{:.5}", n.crush_weight),
                label,
                status,
                reweight,
            ]);
        }
        for &id in &self.stray {
            table.push([
                id.to_string(),
                String::new(),
                "0".into(),
                format!("osd.{id}"),
                status(map, id),
                format!("{:.5}", f64::from(map.weight(id)) / 65536.0),
            ]);
        }
        render_table(&table, &[true, true, true, false, true, true])
    }
}

/// Aligns columns of a text table; `right[i]` right-aligns column i.
pub fn render_table<const N: usize>(rows: &[[String; N]], right: &[bool; N]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if right[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
