//! Giving the syntax tree its meaning, like `CrushCompiler::parse_crush`:
//! tunables start from legacy values, names are resolved, buckets are built
//! with Ceph's builder, shadow trees are built when the first rule is seen,
//! then rules and choose_args are compiled.

use std::collections::{HashMap, HashSet};

use super::ParseError;
use super::buckets::processing_order;
use super::syntax::{Ast, Header};
use crate::builder;
use crate::model::{BucketType, CrushMap, Device, Tunables, Weight};

/// Compiler state: the map being built and the name tables.
pub(super) struct Compiler {
    pub map: CrushMap,
    /// Device and bucket names -> ids (Ceph's `item_id`).
    pub item_id: HashMap<String, i32>,
    /// Bucket ids in use or reserved (the negative part of Ceph's `id_item`).
    pub bucket_ids: HashSet<i32>,
    /// Type names -> ids.
    pub type_id: HashMap<String, i32>,
    /// Device classes in order of first appearance (Ceph's class ids).
    pub classes: Vec<String>,
    /// Total weight of each compiled bucket, the default weight of an item
    /// that refers to it.
    pub item_weight: HashMap<i32, Weight>,
    /// Rule names already used.
    pub rule_names: HashSet<String>,
    /// Device ids already defined.
    device_ids: HashSet<i32>,
}

impl Compiler {
    /// The class id of `name`, created if new (`get_or_create_class_id`).
    pub fn class_index(&mut self, name: &str) -> usize {
        match self.classes.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.classes.push(name.to_string());
                self.classes.len() - 1
            }
        }
    }
}

/// Compiles a parsed map.
pub(super) fn compile(ast: &Ast<'_>) -> Result<CrushMap, ParseError> {
    let mut c = Compiler {
        map: CrushMap::new(Tunables::legacy()),
        item_id: HashMap::new(),
        bucket_ids: HashSet::new(),
        type_id: HashMap::new(),
        classes: Vec::new(),
        item_weight: HashMap::new(),
        rule_names: HashSet::new(),
        device_ids: HashSet::new(),
    };
    for h in &ast.header {
        c.header(h)?;
    }
    c.map.devices.sort_by_key(|d| d.id);
    c.map.types.sort_by_key(|t| t.id);
    // `find_used_bucket_ids`: a bucket whose first line is an `id` line
    // reserves that id against automatic assignment.
    for def in &ast.buckets {
        if let Some(line) = def.ids.first() {
            c.bucket_ids.insert(line.id.0 as i32);
        }
    }
    for i in processing_order(&ast.buckets)? {
        c.bucket(&ast.buckets[i])?;
    }
    if let Some(first) = ast.rules.first() {
        match builder::build_shadow_trees_ordered(&mut c.map, &c.classes) {
            // crushtool ignores this failure and keeps the shadow buckets
            // built before it; so do we, for identical maps.
            Ok(()) | Err(builder::BuildError::UniformShadow(_)) => {}
            Err(e) => {
                return Err(ParseError::at(
                    &first.keyword,
                    format!("building device-class shadow trees: {e}"),
                ));
            }
        }
    } else {
        // Ceph only populates classes when it sees the first rule; without
        // rules the shadow ids are dropped.
        for b in c.map.buckets.iter_mut().flatten() {
            b.class_ids.clear();
        }
    }
    for r in &ast.rules {
        c.rule(r)?;
    }
    for ca in &ast.choose_args {
        c.choose_args(ca)?;
    }
    c.map.choose_args.sort_by_key(|m| m.id);
    Ok(c.map)
}

impl Compiler {
    fn header(&mut self, h: &Header<'_>) -> Result<(), ParseError> {
        match h {
            Header::Tunable { name, value } => self.tunable(name, *value),
            Header::Device { id, name, class } => {
                let dev_id = id.0 as i32; // a posint fits an i32
                if self.item_id.contains_key(name.text) {
                    let msg = format!("item {} defined twice", name.text);
                    return Err(ParseError::at(name, msg));
                }
                if !self.device_ids.insert(dev_id) {
                    let msg = format!("device id {dev_id} defined twice");
                    return Err(ParseError::at(&id.1, msg));
                }
                let class = class.map(|c| {
                    self.class_index(c.text);
                    c.text.to_string()
                });
                self.item_id.insert(name.text.to_string(), dev_id);
                self.map.devices.push(Device {
                    id: dev_id,
                    name: name.text.to_string(),
                    class,
                });
                Ok(())
            }
            Header::Type { id, name } => {
                let type_id = id.0 as i32;
                if self.map.types.iter().any(|t| t.id == type_id) {
                    let msg = format!("type id {type_id} defined twice");
                    return Err(ParseError::at(&id.1, msg));
                }
                if self.type_id.contains_key(name.text) {
                    let msg = format!("type {} defined twice", name.text);
                    return Err(ParseError::at(name, msg));
                }
                self.type_id.insert(name.text.to_string(), type_id);
                self.map.types.push(BucketType {
                    id: type_id,
                    name: name.text.to_string(),
                });
                Ok(())
            }
        }
    }

    /// `CrushCompiler::parse_tunable`; values are stored with C's truncation.
    fn tunable(&mut self, name: &super::lexer::Token<'_>, value: i64) -> Result<(), ParseError> {
        let t = &mut self.map.tunables;
        let v = value as u32;
        match name.text {
            "choose_local_tries" => t.choose_local_tries = v,
            "choose_local_fallback_tries" => t.choose_local_fallback_tries = v,
            "choose_total_tries" => t.choose_total_tries = v,
            "chooseleaf_descend_once" => t.chooseleaf_descend_once = v,
            "chooseleaf_vary_r" => t.chooseleaf_vary_r = v as u8,
            "chooseleaf_stable" => t.chooseleaf_stable = v as u8,
            "straw_calc_version" => t.straw_calc_version = v as u8,
            "allowed_bucket_algs" => t.allowed_bucket_algs = v,
            other => {
                return Err(ParseError::at(
                    name,
                    format!("tunable {other} not recognized"),
                ));
            }
        }
        Ok(())
    }
}
