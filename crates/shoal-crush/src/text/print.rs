//! Printing a map exactly as `crushtool -d` (`CrushCompiler::decompile`,
//! Ceph 16.x) does.

use std::collections::HashMap;
use std::fmt::Write;

use crate::model::{Bucket, BucketAlg, ChooseArgMap, CrushMap, Rule, RuleStep, RuleType, Tunables};

/// Ceph's `print_fixedpoint`: `%.3f` of `(float)(int)w / (float)0x10000`.
fn fixed(w: u32) -> String {
    format!("{:.3}", w as i32 as f32 / 65536.0f32)
}

/// `print_type_name`.
fn type_name(map: &CrushMap, t: i32) -> String {
    match map.type_name(t) {
        Some(n) => n.to_string(),
        None if t == 0 => "device".to_string(),
        None => format!("type{t}"),
    }
}

/// Device names by id, so printing stays linear in the map size.
type DeviceNames<'a> = HashMap<i32, &'a str>;

/// `print_item_name`.
fn item_name(map: &CrushMap, devices: &DeviceNames<'_>, id: i32) -> String {
    let name = if id >= 0 {
        devices.get(&id).copied()
    } else {
        map.bucket(id).map(|b| b.name.as_str())
    };
    match name {
        Some(n) => n.to_string(),
        None if id >= 0 => format!("device{id}"),
        None => format!("bucket{}", -1 - i64::from(id)),
    }
}

/// Prints `map` in Ceph's text format, byte-identical with `crushtool -d`:
/// tunables that differ from the legacy values, devices, types, buckets
/// (children before parents; shadow buckets are not printed, their ids appear
/// as `id N class C` lines), rules (`take X class C` for shadow buckets),
/// then the choose_args if any.
pub fn print(map: &CrushMap) -> String {
    let names: DeviceNames<'_> = map
        .devices
        .iter()
        .map(|d| (d.id, d.name.as_str()))
        .collect();
    let mut out = String::from("# begin crush map\n");
    tunables(&mut out, &map.tunables);
    out.push_str("\n# devices\n");
    let mut devices: Vec<_> = map.devices.iter().filter(|d| d.id >= 0).collect();
    devices.sort_by_key(|d| d.id);
    for d in devices {
        let _ = write!(out, "device {} {}", d.id, d.name);
        if let Some(c) = &d.class {
            let _ = write!(out, " class {c}");
        }
        out.push('\n');
    }
    out.push_str("\n# types\n");
    let mut types: Vec<_> = map.types.iter().filter(|t| t.id >= 0).collect();
    types.sort_by_key(|t| t.id);
    // Ceph names an unnamed type 0 "osd" when there are other types.
    if types.first().is_some_and(|t| t.id != 0) {
        out.push_str("type 0 osd\n");
    }
    for t in types {
        let _ = writeln!(out, "type {} {}", t.id, t.name);
    }
    out.push_str("\n# buckets\n");
    for id in bucket_order(map) {
        if let Some(b) = map.bucket(id) {
            bucket(&mut out, map, &names, b);
        }
    }
    out.push_str("\n# rules\n");
    for r in map.rules.iter().flatten() {
        rule(&mut out, map, &names, r);
    }
    if !map.choose_args.is_empty() {
        out.push_str("\n# choose_args\n");
        let mut cargs: Vec<&ChooseArgMap> = map.choose_args.iter().collect();
        cargs.sort_by_key(|c| c.id);
        for c in cargs {
            choose_args(&mut out, c);
        }
    }
    out.push_str("\n# end crush map\n");
    out
}

fn tunables(out: &mut String, t: &Tunables) {
    let legacy = Tunables::legacy();
    let lines: [(&str, u32, u32); 8] = [
        (
            "choose_local_tries",
            t.choose_local_tries,
            legacy.choose_local_tries,
        ),
        (
            "choose_local_fallback_tries",
            t.choose_local_fallback_tries,
            legacy.choose_local_fallback_tries,
        ),
        (
            "choose_total_tries",
            t.choose_total_tries,
            legacy.choose_total_tries,
        ),
        (
            "chooseleaf_descend_once",
            t.chooseleaf_descend_once,
            legacy.chooseleaf_descend_once,
        ),
        (
            "chooseleaf_vary_r",
            t.chooseleaf_vary_r.into(),
            legacy.chooseleaf_vary_r.into(),
        ),
        (
            "chooseleaf_stable",
            t.chooseleaf_stable.into(),
            legacy.chooseleaf_stable.into(),
        ),
        (
            "straw_calc_version",
            t.straw_calc_version.into(),
            legacy.straw_calc_version.into(),
        ),
        (
            "allowed_bucket_algs",
            t.allowed_bucket_algs,
            legacy.allowed_bucket_algs,
        ),
    ];
    for (name, value, default) in lines {
        if value != default {
            let _ = writeln!(out, "tunable {name} {value}");
        }
    }
}

/// Bucket ids in decompile order: for id = -1, -2, ... a depth-first walk
/// that emits children (in item order) before their parent, each bucket once,
/// shadow buckets skipped. Cycles are cut instead of failing.
fn bucket_order(map: &CrushMap) -> Vec<i32> {
    #[derive(PartialEq)]
    enum State {
        InProgress,
        Done,
    }
    let mut state: HashMap<i32, State> = HashMap::new();
    let mut order = Vec::new();
    for start in (0..map.buckets.len()).map(|i| -1 - i as i32) {
        if map.bucket(start).is_none() || state.contains_key(&start) {
            continue;
        }
        state.insert(start, State::InProgress);
        let mut stack: Vec<(i32, usize)> = vec![(start, 0)];
        while let Some((id, next)) = stack.last_mut() {
            let items = map.bucket(*id).map_or(&[][..], |b| &b.items[..]);
            match items.get(*next) {
                Some(&child) => {
                    *next += 1;
                    if child < 0 && map.bucket(child).is_some() && !state.contains_key(&child) {
                        state.insert(child, State::InProgress);
                        stack.push((child, 0));
                    }
                }
                None => {
                    let done = *id;
                    stack.pop();
                    state.insert(done, State::Done);
                    if map.bucket(done).is_some_and(|b| !b.is_shadow()) {
                        order.push(done);
                    }
                }
            }
        }
    }
    debug_assert!(state.values().all(|s| *s == State::Done));
    order
}

fn bucket(out: &mut String, map: &CrushMap, names: &DeviceNames<'_>, b: &Bucket) {
    let _ = writeln!(out, "{} {} {{", type_name(map, b.type_id), b.name);
    let _ = writeln!(out, "\tid {}\t\t# do not change unnecessarily", b.id);
    for (class, id) in &b.class_ids {
        let _ = writeln!(
            out,
            "\tid {id} class {class}\t\t# do not change unnecessarily"
        );
    }
    let _ = writeln!(out, "\t# weight {}", fixed(b.weight));
    let _ = write!(out, "\talg {}", b.alg.name());
    let dopos = match b.alg {
        BucketAlg::Uniform => {
            let _ = write!(
                out,
                "\t# do not change bucket size ({}) unnecessarily",
                b.size()
            );
            true
        }
        BucketAlg::List => {
            out.push_str("\t# add new items at the end; do not change order unnecessarily");
            false
        }
        BucketAlg::Tree => {
            out.push_str("\t# do not change pos for existing items unnecessarily");
            true
        }
        BucketAlg::Straw | BucketAlg::Straw2 => false,
    };
    out.push('\n');
    let hash_name = if b.hash == 0 { "rjenkins1" } else { "unknown" };
    let _ = writeln!(out, "\thash {}\t# {hash_name}", b.hash);
    for (pos, (&item, &w)) in b.items.iter().zip(&b.item_weights).enumerate() {
        let _ = write!(
            out,
            "\titem {} weight {}",
            item_name(map, names, item),
            fixed(w)
        );
        if dopos {
            let _ = write!(out, " pos {pos}");
        }
        out.push('\n');
    }
    out.push_str("}\n");
}

fn rule(out: &mut String, map: &CrushMap, names: &DeviceNames<'_>, r: &Rule) {
    let _ = writeln!(out, "rule {} {{", r.name);
    let _ = writeln!(out, "\tid {}", r.id);
    let kind = match r.rule_type {
        RuleType::Replicated => "replicated",
        RuleType::Erasure => "erasure",
    };
    let _ = writeln!(out, "\ttype {kind}");
    let _ = writeln!(out, "\tmin_size {}", r.min_size);
    let _ = writeln!(out, "\tmax_size {}", r.max_size);
    for s in &r.steps {
        out.push_str("\tstep ");
        let _ = match *s {
            RuleStep::Noop => writeln!(out, "noop"),
            RuleStep::Take(id) => match map.bucket(id).and_then(|b| b.shadow_of.as_ref()) {
                Some((orig, class)) => {
                    writeln!(out, "take {} class {class}", item_name(map, names, *orig))
                }
                None => writeln!(out, "take {}", item_name(map, names, id)),
            },
            RuleStep::Emit => writeln!(out, "emit"),
            RuleStep::SetChooseTries(v) => writeln!(out, "set_choose_tries {v}"),
            RuleStep::SetChooseLocalTries(v) => writeln!(out, "set_choose_local_tries {v}"),
            RuleStep::SetChooseLocalFallbackTries(v) => {
                writeln!(out, "set_choose_local_fallback_tries {v}")
            }
            RuleStep::SetChooseleafTries(v) => writeln!(out, "set_chooseleaf_tries {v}"),
            RuleStep::SetChooseleafVaryR(v) => writeln!(out, "set_chooseleaf_vary_r {v}"),
            RuleStep::SetChooseleafStable(v) => writeln!(out, "set_chooseleaf_stable {v}"),
            RuleStep::ChooseFirstn { num, type_id } => {
                writeln!(out, "choose firstn {num} type {}", type_name(map, type_id))
            }
            RuleStep::ChooseIndep { num, type_id } => {
                writeln!(out, "choose indep {num} type {}", type_name(map, type_id))
            }
            RuleStep::ChooseleafFirstn { num, type_id } => {
                writeln!(
                    out,
                    "chooseleaf firstn {num} type {}",
                    type_name(map, type_id)
                )
            }
            RuleStep::ChooseleafIndep { num, type_id } => {
                writeln!(
                    out,
                    "chooseleaf indep {num} type {}",
                    type_name(map, type_id)
                )
            }
        };
    }
    out.push_str("}\n");
}

/// `decompile_choose_args`: the id as an unsigned 64-bit number (so -1 prints
/// as 18446744073709551615), buckets by index, empty entries skipped.
fn choose_args(out: &mut String, c: &ChooseArgMap) {
    let _ = writeln!(out, "choose_args {} {{", c.id as u64);
    let mut args: Vec<_> = c.args.iter().collect();
    args.sort_by_key(|a| std::cmp::Reverse(a.bucket_id));
    for a in args
        .into_iter()
        .filter(|a| !a.weight_set.is_empty() || !a.ids.is_empty())
    {
        let _ = writeln!(out, "  {{\n    bucket_id {}", a.bucket_id);
        if !a.weight_set.is_empty() {
            out.push_str("    weight_set [\n");
            for ws in &a.weight_set {
                out.push_str("      [ ");
                ws.iter().for_each(|&w| {
                    let _ = write!(out, "{} ", fixed(w));
                });
                out.push_str("]\n");
            }
            out.push_str("    ]\n");
        }
        if !a.ids.is_empty() {
            out.push_str("    ids [ ");
            a.ids.iter().for_each(|id| {
                let _ = write!(out, "{id} ");
            });
            out.push_str("]\n");
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
}
