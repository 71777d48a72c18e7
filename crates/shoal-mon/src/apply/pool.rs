//! Pools and PG overrides.

use shoal_map::{MAX_PG_SIZE, PgId, Pool, PoolType, find_rule};
use shoal_proto::mon::{CommandError, CommandOutput, UpmapPair};

use super::{ApplyResult, busy, exists, invalid, not_found};
use crate::state::{MonState, PgActiveRecord};

/// Most PGs a pool may have.
pub const MAX_PG_NUM: u32 = 65_536;

/// The rule of `name` (empty: the first replicated rule).
fn rule_id(state: &MonState, name: &str) -> Result<i32, CommandError> {
    let crush = state.osdmap.crush();
    let rule = crush.rules.iter().flatten().find(|r| {
        if name.is_empty() {
            r.rule_type == shoal_crush::model::RuleType::Replicated
        } else {
            r.name == name
        }
    });
    rule.map(|r| r.id).ok_or_else(|| {
        if name.is_empty() {
            not_found("the CRUSH map has no replicated rule")
        } else {
            not_found(format!("no CRUSH rule {name:?}"))
        }
    })
}

fn check_pool(state: &MonState, pool: &Pool) -> Result<(), CommandError> {
    if pool.pg_num > MAX_PG_NUM {
        return Err(invalid(format!("pg_num above {MAX_PG_NUM}")));
    }
    if pool.size as usize > MAX_PG_SIZE {
        return Err(invalid(format!("size above {MAX_PG_SIZE}")));
    }
    pool.validate().map_err(|e| invalid(e.to_string()))?;
    if find_rule(
        state.osdmap.crush(),
        pool.crush_rule,
        pool.pool_type,
        pool.size,
    )
    .is_none()
    {
        return Err(invalid(format!(
            "CRUSH rule {} does not accept a {:?} pool of size {}",
            pool.crush_rule, pool.pool_type, pool.size
        )));
    }
    Ok(())
}

/// Creates a replicated pool; returns its id.
pub fn create(
    state: &mut MonState,
    name: &str,
    pg_num: u32,
    size: u32,
    min_size: u32,
    rule: &str,
) -> ApplyResult {
    if name.is_empty() || name.len() > 256 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(invalid(
            "pool names are 1..=256 printable characters without '/'",
        ));
    }
    if state.osdmap.pool_by_name(name).is_some() {
        return Err(exists(format!("pool {name:?} already exists")));
    }
    let rule = rule_id(state, rule)?;
    let id = state
        .osdmap
        .pools()
        .keys()
        .next_back()
        .map_or(1, |&m| m + 1);
    let size = size.max(1);
    let mut pool = Pool::new_replicated(id, name, size, pg_num, rule);
    if min_size > 0 {
        pool.min_size = min_size;
    }
    check_pool(state, &pool)?;
    state
        .osdmap
        .insert_pool(pool)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(CommandOutput::PoolId(id))
}

/// Sets one pool property.
pub fn set(state: &mut MonState, name: &str, key: &str, value: &str) -> Result<(), CommandError> {
    let mut pool = state
        .osdmap
        .pool_by_name(name)
        .ok_or_else(|| not_found(format!("no pool {name:?}")))?
        .clone();
    let num = || -> Result<u64, CommandError> {
        value
            .parse::<u64>()
            .map_err(|_| invalid(format!("{key} wants a non-negative integer, not {value:?}")))
    };
    let small = |v: u64| u32::try_from(v).map_err(|_| invalid(format!("{key} {v} is too large")));
    match key {
        "size" => {
            let v = small(num()?)?;
            if pool.pool_type == PoolType::Erasure {
                return Err(invalid("an erasure-coded pool's size is fixed by k+m"));
            }
            pool.size = v;
            pool.min_size = pool.min_size.min(v.max(1));
        }
        "min_size" => pool.min_size = small(num()?)?,
        "pg_num" => {
            let v = small(num()?)?;
            if v < pool.pg_num {
                return Err(invalid("decreasing pg_num (PG merging) is not supported"));
            }
            // Placement follows, a step at a time (as Ceph since Nautilus).
            pool.pg_num = v;
            pool.pgp_num_target = v;
        }
        // The target: the leader moves `pgp_num` toward it in steps.
        "pgp_num" => pool.pgp_num_target = small(num()?)?,
        // One step, as the leader proposes it (Ceph's `pgp_num_actual`).
        "pgp_num_actual" => pool.pgp_num = small(num()?)?,
        "crush_rule" => pool.crush_rule = rule_id(state, value)?,
        "piece_size" => {
            let v = num()?;
            if v == 0 || v % 4096 != 0 {
                return Err(invalid("piece_size must be a positive multiple of 4096"));
            }
            pool.piece_size = v;
        }
        _ => {
            return Err(invalid(format!(
                "unknown pool property {key:?} (size, min_size, pg_num, pgp_num, crush_rule, piece_size)"
            )));
        }
    }
    check_pool(state, &pool)?;
    state
        .osdmap
        .insert_pool(pool)
        .map_err(|e| invalid(e.to_string()))
}

/// Deletes a pool when `confirm` repeats its name.
pub fn remove(state: &mut MonState, name: &str, confirm: &str) -> Result<(), CommandError> {
    let id = state
        .osdmap
        .pool_by_name(name)
        .ok_or_else(|| not_found(format!("no pool {name:?}")))?
        .id;
    if confirm != name {
        return Err(invalid(format!(
            "deleting pool {name:?} destroys its data: repeat its name to confirm"
        )));
    }
    state
        .osdmap
        .remove_pool(id)
        .map_err(|e| invalid(e.to_string()))?;
    state.pg_active.retain(|pg, _| pg.pool != id);
    Ok(())
}

fn parse_pg(state: &MonState, pg: &str) -> Result<PgId, CommandError> {
    let id: PgId = pg
        .parse()
        .map_err(|e: shoal_map::MapError| invalid(e.to_string()))?;
    let pool = state
        .osdmap
        .pool(id.pool)
        .ok_or_else(|| not_found(format!("pg {pg}: no pool {}", id.pool)))?;
    if id.seed >= pool.pg_num {
        return Err(not_found(format!("pg {pg}: pool has {} PGs", pool.pg_num)));
    }
    Ok(id)
}

fn check_osds(state: &MonState, osds: impl IntoIterator<Item = i32>) -> Result<(), CommandError> {
    for id in osds {
        if !state.osdmap.exists(id) {
            return Err(not_found(format!("osd.{id} does not exist")));
        }
    }
    Ok(())
}

/// Sets (or with no items removes) a PG's upmap exceptions.
pub fn upmap_items(
    state: &mut MonState,
    pg: &str,
    items: &[UpmapPair],
) -> Result<(), CommandError> {
    let id = parse_pg(state, pg)?;
    check_osds(state, items.iter().flat_map(|p| [p.from, p.to]))?;
    let items = items.iter().map(|p| (p.from, p.to)).collect();
    state
        .osdmap
        .set_pg_upmap_items(id, items)
        .map_err(|e| invalid(e.to_string()))
}

/// Sets (or with no OSDs removes) a PG's temporary acting set.
pub fn pg_temp(state: &mut MonState, pg: &str, osds: &[i32]) -> Result<(), CommandError> {
    let id = parse_pg(state, pg)?;
    check_osds(state, osds.iter().copied())?;
    state
        .osdmap
        .set_pg_temp(id, osds.to_vec())
        .map_err(|e| invalid(e.to_string()))
}

/// Records that a PG's head activates `acting` in `interval` (0: only
/// reads the record). Refused unless `acting` is the PG's chain in the
/// newest map, every member is up and booted by `interval`, and no newer
/// interval is recorded: a head from an older map cannot hide a newer
/// record. Returns the record in force.
pub fn pg_activated(state: &mut MonState, pg: &str, interval: u32, acting: &[i32]) -> ApplyResult {
    let id = parse_pg(state, pg)?;
    if interval != 0 {
        let map = &state.osdmap;
        if interval > map.epoch() {
            return Err(invalid(format!(
                "pg {pg}: interval {interval} is after the newest epoch {}",
                map.epoch()
            )));
        }
        let mut ws = map.new_workspace();
        let chain = map
            .pg_to_up_acting(id, &mut ws)
            .map_err(|e| invalid(e.to_string()))?
            .chain();
        if chain != acting {
            return Err(busy(format!(
                "pg {pg}: chain {acting:?} is not the PG's chain {chain:?} at epoch {}",
                map.epoch()
            )));
        }
        if let Some(m) = acting
            .iter()
            .find(|&&m| !map.is_up(m) || map.osd(m).is_some_and(|o| o.up_from > interval))
        {
            return Err(busy(format!(
                "pg {pg}: osd.{m} was not up throughout interval {interval}"
            )));
        }
        let newest = state.pg_active.get(&id).map_or(0, |r| r.epoch);
        if interval < newest {
            return Err(busy(format!(
                "pg {pg}: interval {newest} is already recorded as active"
            )));
        }
        state.pg_active.insert(
            id,
            PgActiveRecord {
                epoch: interval,
                acting: acting.to_vec(),
            },
        );
    }
    let record = state.pg_active.get(&id).cloned().unwrap_or_default();
    Ok(CommandOutput::PgActive {
        epoch: record.epoch,
        acting: record.acting,
    })
}
