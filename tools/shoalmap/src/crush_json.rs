//! A CRUSH map as JSON, in the shape of `crushtool --dump`.

use serde_json::{Value, json};
use shoal_crush::{CrushMap, RuleStep, RuleType};

/// The map as `crushtool --dump` lays it out (devices, types, buckets
/// including shadow buckets, rules, tunables, choose_args).
pub fn dump(map: &CrushMap) -> Value {
    let type_name = |t: i32| map.type_name(t).unwrap_or("").to_string();
    let devices: Vec<Value> = map
        .devices
        .iter()
        .map(|d| {
            let mut v = json!({"id": d.id, "name": d.name});
            if let Some(c) = &d.class {
                v["class"] = json!(c);
            }
            v
        })
        .collect();
    let types: Vec<Value> = map
        .types
        .iter()
        .map(|t| json!({"type_id": t.id, "name": t.name}))
        .collect();
    let buckets: Vec<Value> = map
        .buckets
        .iter()
        .flatten()
        .map(|b| {
            let items: Vec<Value> = b
                .items
                .iter()
                .zip(&b.item_weights)
                .enumerate()
                .map(|(pos, (id, w))| json!({"id": id, "weight": w, "pos": pos}))
                .collect();
            json!({
                "id": b.id, "name": b.name, "type_id": b.type_id, "type_name": type_name(b.type_id),
                "weight": b.weight, "alg": b.alg.name(), "hash": "rjenkins1", "items": items,
            })
        })
        .collect();
    let rules: Vec<Value> = map
        .rules
        .iter()
        .flatten()
        .map(|r| {
            let steps: Vec<Value> = r.steps.iter().map(|s| step(map, s)).collect();
            json!({
                "rule_id": r.id, "rule_name": r.name, "ruleset": r.id,
                "type": match r.rule_type { RuleType::Replicated => 1, RuleType::Erasure => 3 },
                "min_size": r.min_size, "max_size": r.max_size, "steps": steps,
            })
        })
        .collect();
    let t = &map.tunables;
    let choose_args: serde_json::Map<String, Value> = map
        .choose_args
        .iter()
        .map(|c| {
            let args: Vec<Value> = c
                .args
                .iter()
                .map(
                    |a| json!({"bucket_id": a.bucket_id, "weight_set": a.weight_set, "ids": a.ids}),
                )
                .collect();
            (c.id.to_string(), Value::Array(args))
        })
        .collect();
    json!({
        "devices": devices, "types": types, "buckets": buckets, "rules": rules,
        "tunables": {
            "choose_local_tries": t.choose_local_tries,
            "choose_local_fallback_tries": t.choose_local_fallback_tries,
            "choose_total_tries": t.choose_total_tries,
            "chooseleaf_descend_once": t.chooseleaf_descend_once,
            "chooseleaf_vary_r": t.chooseleaf_vary_r,
            "chooseleaf_stable": t.chooseleaf_stable,
            "straw_calc_version": t.straw_calc_version,
            "allowed_bucket_algs": t.allowed_bucket_algs,
        },
        "choose_args": choose_args,
    })
}

fn step(map: &CrushMap, s: &RuleStep) -> Value {
    let chooser = |op: &str, num: i32, t: i32| json!({"op": op, "num": num, "type": map.type_name(t).unwrap_or("")});
    let set = |op: &str, n: i32| json!({"op": op, "num": n});
    match *s {
        RuleStep::Noop => json!({"op": "noop"}),
        RuleStep::Take(item) => {
            json!({"op": "take", "item": item, "item_name": map.item_name(item).unwrap_or("")})
        }
        RuleStep::ChooseFirstn { num, type_id } => chooser("choose_firstn", num, type_id),
        RuleStep::ChooseIndep { num, type_id } => chooser("choose_indep", num, type_id),
        RuleStep::ChooseleafFirstn { num, type_id } => chooser("chooseleaf_firstn", num, type_id),
        RuleStep::ChooseleafIndep { num, type_id } => chooser("chooseleaf_indep", num, type_id),
        RuleStep::Emit => json!({"op": "emit"}),
        RuleStep::SetChooseTries(n) => set("set_choose_tries", n),
        RuleStep::SetChooseleafTries(n) => set("set_chooseleaf_tries", n),
        RuleStep::SetChooseLocalTries(n) => set("set_choose_local_tries", n),
        RuleStep::SetChooseLocalFallbackTries(n) => set("set_choose_local_fallback_tries", n),
        RuleStep::SetChooseleafVaryR(n) => set("set_chooseleaf_vary_r", n),
        RuleStep::SetChooseleafStable(n) => set("set_chooseleaf_stable", n),
    }
}
