//! CRUSH edits: buckets, moves, weights.

use shoal_crush::model::CrushMap;
use shoal_proto::mon::{CommandError, KeyValue};

use super::{exists, fixed_weight, invalid, not_found};
use crate::state::MonState;

/// Makes sure every bucket of `location` exists, each linked under the
/// next larger one, and returns the innermost bucket. Locations are given
/// in any order; they are sorted by type, largest first. An empty location
/// means `root=default`.
pub fn ensure_location(crush: &mut CrushMap, location: &[KeyValue]) -> Result<i32, CommandError> {
    let mut levels = Vec::new();
    for kv in location {
        let type_id = crush
            .type_id(&kv.key)
            .ok_or_else(|| invalid(format!("unknown CRUSH type {:?}", kv.key)))?;
        if type_id == 0 {
            return Err(invalid("a location names buckets, not devices"));
        }
        if kv.value.is_empty() {
            return Err(invalid(format!("empty bucket name for {:?}", kv.key)));
        }
        levels.push((type_id, kv.value.as_str()));
    }
    if levels.is_empty() {
        let root = crush.type_id("root").unwrap_or(1);
        levels.push((root, "default"));
    }
    levels.sort_by_key(|l| std::cmp::Reverse(l.0));
    let mut parent: Option<i32> = None;
    for (type_id, name) in levels {
        let id = match crush.bucket_by_name(name) {
            Some(b) if b.type_id != type_id => {
                return Err(invalid(format!("bucket {name} exists with another type")));
            }
            Some(b) => b.id,
            None => crush
                .add_bucket(name, type_id, parent)
                .map_err(|e| invalid(e.to_string()))?,
        };
        parent = Some(id);
    }
    parent.ok_or_else(|| invalid("empty location"))
}

/// Adds an unlinked bucket.
pub fn add_bucket(state: &mut MonState, name: &str, type_name: &str) -> Result<(), CommandError> {
    let mut crush = state.osdmap.crush().clone();
    if crush.item_id(name).is_some() {
        return Err(exists(format!("{name} already exists in CRUSH")));
    }
    let type_id = crush
        .type_id(type_name)
        .filter(|&t| t != 0)
        .ok_or_else(|| invalid(format!("unknown bucket type {type_name:?}")))?;
    crush
        .add_bucket(name, type_id, None)
        .map_err(|e| invalid(e.to_string()))?;
    state.osdmap.set_crush(crush);
    Ok(())
}

/// Moves a bucket or device under `location`.
pub fn move_item(
    state: &mut MonState,
    name: &str,
    location: &[KeyValue],
) -> Result<(), CommandError> {
    let mut crush = state.osdmap.crush().clone();
    let item = crush
        .item_id(name)
        .ok_or_else(|| not_found(format!("{name} is not in CRUSH")))?;
    let own_type = crush.item_type(item);
    // A bucket's own level in the location is itself, not a parent.
    let parents: Vec<KeyValue> = location
        .iter()
        .filter(|kv| Some(kv.value.as_str()) != Some(name) || crush.type_id(&kv.key) != own_type)
        .cloned()
        .collect();
    let target = ensure_location(&mut crush, &parents)?;
    crush
        .move_item(item, target)
        .map_err(|e| invalid(e.to_string()))?;
    if item >= 0 {
        let loc = shoal_map::CrushLocation::from_crush(&crush, item);
        state.osdmap.set_crush(crush);
        let _ = state.osdmap.set_location(item, loc);
    } else {
        state.osdmap.set_crush(crush);
    }
    Ok(())
}

/// Sets a device's CRUSH weight.
pub fn reweight(state: &mut MonState, name: &str, weight: f64) -> Result<(), CommandError> {
    let mut crush = state.osdmap.crush().clone();
    let item = crush
        .item_id(name)
        .filter(|&i| i >= 0)
        .ok_or_else(|| not_found(format!("no device {name} in CRUSH")))?;
    let w = fixed_weight(weight, 65535.0, "crush weight")?;
    crush
        .set_item_weight(item, w)
        .map_err(|e| invalid(e.to_string()))?;
    state.osdmap.set_crush(crush);
    Ok(())
}

/// Removes a device that is not an OSD any more, or an empty bucket.
pub fn remove(state: &mut MonState, name: &str) -> Result<(), CommandError> {
    let mut crush = state.osdmap.crush().clone();
    let item = crush
        .item_id(name)
        .ok_or_else(|| not_found(format!("{name} is not in CRUSH")))?;
    if item >= 0 && state.osdmap.exists(item) && state.osdmap.is_up(item) {
        return Err(invalid(format!("{name} is up; stop it first")));
    }
    crush
        .remove_item(item)
        .map_err(|e| invalid(e.to_string()))?;
    state.osdmap.set_crush(crush);
    Ok(())
}
