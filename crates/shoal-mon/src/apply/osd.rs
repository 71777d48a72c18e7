//! OSD lifecycle: create, boot, up/down, in/out, reweight, remove.

use std::net::SocketAddr;

use shoal_map::{CrushLocation, OsdInfo, WEIGHT_IN, WEIGHT_OUT};
use shoal_proto::mon::{CommandError, CommandOutput, KeyValue};

use super::{ApplyResult, busy, crush, fixed_weight, invalid, not_found};
use crate::state::MonState;

/// Allocates `id` (or the lowest free id when negative); an existing id is
/// returned as is, so `osd create` can be retried.
pub fn create(state: &mut MonState, id: i32) -> ApplyResult {
    let map = &mut state.osdmap;
    let id = if id >= 0 {
        if map.exists(id) {
            return Ok(CommandOutput::OsdId(id));
        }
        id
    } else {
        (0..).find(|&i| !map.exists(i)).unwrap_or(map.max_osd())
    };
    let info = OsdInfo {
        addr: None,
        up: false,
        location: CrushLocation::default(),
        up_from: 0,
    };
    map.add_osd(id, info, WEIGHT_OUT)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(CommandOutput::OsdId(id))
}

/// Marks an OSD up at `addr`, placing it in CRUSH at `location` the first
/// time (or moving it there when the location changed); a first boot also
/// marks it in.
pub fn boot(
    state: &mut MonState,
    id: i32,
    addr: &str,
    location: &[KeyValue],
    crush_weight: f64,
) -> Result<(), CommandError> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| invalid(format!("bad address {addr:?}: {e}")))?;
    let info = state
        .osdmap
        .osd(id)
        .ok_or_else(|| not_found(format!("osd.{id} does not exist (run osd create first)")))?
        .clone();
    let weight = fixed_weight(crush_weight, 65535.0, "crush weight")?;
    let mut crush_map = state.osdmap.crush().clone();
    let name = format!("osd.{id}");
    let target = crush::ensure_location(&mut crush_map, location)?;
    if crush_map.device(id).is_none() {
        crush_map
            .add_device(id, &name, None)
            .map_err(|e| invalid(e.to_string()))?;
        crush_map
            .link_item(id, weight, target)
            .map_err(|e| invalid(e.to_string()))?;
    } else if crush_map.parents(id) != [target] {
        crush_map
            .move_item(id, target)
            .map_err(|e| invalid(e.to_string()))?;
    }
    let first_boot = info.addr.is_none();
    let map = &mut state.osdmap;
    map.set_crush(crush_map);
    let loc = CrushLocation::from_crush(map.crush(), id);
    // These cannot fail: the OSD exists.
    let _ = map.set_location(id, loc);
    let _ = map.set_addr(id, Some(addr));
    let _ = map.mark_up(id);
    if state.auto_out.remove(&id) {
        let _ = state.osdmap.mark_in(id);
    }
    let map = &mut state.osdmap;
    // The batch commits as the next epoch.
    let _ = map.set_up_from(id, map.epoch() + 1);
    if first_boot {
        let _ = map.set_reweight(id, WEIGHT_IN);
    }
    state.down_since.remove(&id);
    Ok(())
}

fn check_all_exist(state: &MonState, ids: &[i32]) -> Result<(), CommandError> {
    if ids.is_empty() {
        return Err(invalid("no OSD ids given"));
    }
    match ids.iter().find(|&&id| !state.osdmap.exists(id)) {
        Some(id) => Err(not_found(format!("osd.{id} does not exist"))),
        None => Ok(()),
    }
}

/// Marks OSDs down at `stamp_ms` (already-down ones are left as they are).
pub fn mark_down(state: &mut MonState, ids: &[i32], stamp_ms: u64) -> Result<(), CommandError> {
    check_all_exist(state, ids)?;
    for &id in ids {
        if state.osdmap.is_up(id) {
            let _ = state.osdmap.mark_down(id);
            state.down_since.insert(id, stamp_ms);
        }
    }
    Ok(())
}

/// Marks OSDs out.
pub fn mark_out(state: &mut MonState, ids: &[i32], automatic: bool) -> Result<(), CommandError> {
    check_all_exist(state, ids)?;
    for &id in ids {
        let _ = state.osdmap.mark_out(id);
        if automatic {
            state.auto_out.insert(id);
        } else {
            state.auto_out.remove(&id);
        }
    }
    Ok(())
}

/// Marks OSDs in.
pub fn mark_in(state: &mut MonState, ids: &[i32]) -> Result<(), CommandError> {
    check_all_exist(state, ids)?;
    for &id in ids {
        let _ = state.osdmap.mark_in(id);
        state.auto_out.remove(&id);
    }
    Ok(())
}

/// Sets an OSD's reweight in [0, 1].
pub fn reweight(state: &mut MonState, id: i32, weight: f64) -> Result<(), CommandError> {
    check_all_exist(state, &[id])?;
    let w = fixed_weight(weight, 1.0, "reweight")?;
    state
        .osdmap
        .set_reweight(id, w)
        .map_err(|e| invalid(e.to_string()))
}

/// Removes down OSDs from the map and from CRUSH.
pub fn remove(state: &mut MonState, ids: &[i32]) -> Result<(), CommandError> {
    check_all_exist(state, ids)?;
    if let Some(id) = ids.iter().find(|&&id| state.osdmap.is_up(id)) {
        return Err(busy(format!(
            "osd.{id} is up; mark it down (stop it) first"
        )));
    }
    let mut crush_map = state.osdmap.crush().clone();
    for &id in ids {
        if crush_map.device(id).is_some() || !crush_map.parents(id).is_empty() {
            crush_map
                .remove_item(id)
                .map_err(|e| invalid(e.to_string()))?;
        }
    }
    state.osdmap.set_crush(crush_map);
    for &id in ids {
        let _ = state.osdmap.remove_osd(id);
        state.down_since.remove(&id);
        state.auto_out.remove(&id);
    }
    Ok(())
}
