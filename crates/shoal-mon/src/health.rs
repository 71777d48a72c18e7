//! Health checks computed from the maps and the quorum.

use shoal_map::OsdMap;
use shoal_proto::report::{HealthCheck, HealthReport, HealthStatus, MonStatReport};

/// Health of the cluster as seen by a monitor: `mon` is the quorum view
/// (empty quorum: no quorum).
pub fn health(map: &OsdMap, mon: &MonStatReport) -> HealthReport {
    let mut checks = Vec::new();
    if mon.quorum.is_empty() {
        checks.push(HealthCheck {
            code: "MON_NO_QUORUM".into(),
            severity: HealthStatus::Err,
            summary: format!(
                "no monitor quorum ({} monitors, this one hears no leader)",
                mon.mons.len()
            ),
        });
    } else {
        let down: Vec<&str> = mon
            .mons
            .iter()
            .filter(|m| !m.in_quorum)
            .map(|m| m.name.as_str())
            .collect();
        if !down.is_empty() {
            checks.push(HealthCheck {
                code: "MON_DOWN".into(),
                severity: HealthStatus::Warn,
                summary: format!(
                    "{}/{} mons down ({}), quorum {}",
                    down.len(),
                    mon.mons.len(),
                    down.join(","),
                    mon.quorum.join(",")
                ),
            });
        }
    }
    let osds: Vec<i32> = map.osd_ids().collect();
    let down: Vec<i32> = osds.iter().copied().filter(|&id| !map.is_up(id)).collect();
    if !down.is_empty() {
        let in_down = down.iter().filter(|&&id| map.is_in(id)).count();
        checks.push(HealthCheck {
            code: "OSD_DOWN".into(),
            severity: HealthStatus::Warn,
            summary: format!(
                "{} osds down ({} of them still in): {}",
                down.len(),
                in_down,
                down.iter()
                    .map(|id| format!("osd.{id}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let usable = osds
        .iter()
        .filter(|&&id| map.is_up(id) && map.is_in(id))
        .count();
    for pool in map.pools().values() {
        if (pool.size as usize) > usable {
            checks.push(HealthCheck {
                code: "POOL_UNDERSIZED".into(),
                severity: if (pool.min_size as usize) > usable {
                    HealthStatus::Err
                } else {
                    HealthStatus::Warn
                },
                summary: format!(
                    "pool {} wants {} replicas (min {}) but {} osds are up and in",
                    pool.name, pool.size, pool.min_size, usable
                ),
            });
        }
    }
    HealthReport::from_checks(checks)
}
