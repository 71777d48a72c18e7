//! Health checks computed from the maps and the quorum.

use crate::pgstats::Summary;
use shoal_map::OsdMap;
use shoal_proto::report::{HealthCheck, HealthReport, HealthStatus, MonStatReport};

/// Health of the cluster as seen by a monitor: `mon` is the quorum view
/// (empty quorum: no quorum).
pub fn health(map: &OsdMap, mon: &MonStatReport, pgs: Option<&Summary>) -> HealthReport {
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
    if let Some(pgs) = pgs {
        space_checks(pgs, &mut checks);
        pg_checks(pgs, &mut checks);
    }
    HealthReport::from_checks(checks)
}

/// Stores at or above the full ratio (`OSD_FULL`, an error: writes to
/// their PGs are refused) or the nearfull ratio (`OSD_NEARFULL`).
fn space_checks(pgs: &Summary, checks: &mut Vec<HealthCheck>) {
    let list = |osds: &[(i32, f64)]| {
        osds.iter()
            .map(|(id, used)| format!("osd.{id} {:.0}%", used * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !pgs.full_osds.is_empty() {
        checks.push(HealthCheck {
            code: "OSD_FULL".into(),
            severity: HealthStatus::Err,
            summary: format!(
                "{} full osd(s) ({}): writes to their PGs are refused",
                pgs.full_osds.len(),
                list(&pgs.full_osds)
            ),
        });
    }
    if !pgs.nearfull_osds.is_empty() {
        checks.push(HealthCheck {
            code: "OSD_NEARFULL".into(),
            severity: HealthStatus::Warn,
            summary: format!(
                "{} nearfull osd(s) ({})",
                pgs.nearfull_osds.len(),
                list(&pgs.nearfull_osds)
            ),
        });
    }
}

/// PGs not active (`PG_AVAILABILITY`), degraded: fewer members than
/// their pool's size, or members still recovering objects (`PG_DEGRADED`),
/// or misplaced: served by a temporary chain while their data moves to
/// where CRUSH places them, e.g. while `pgp_num` steps (`PG_MISPLACED`,
/// Ceph's `OBJECT_MISPLACED` by PG), from the OSDs' reports.
fn pg_checks(pgs: &Summary, checks: &mut Vec<HealthCheck>) {
    let (mut n_inactive, mut degraded, mut misplaced) = (0u32, 0u32, 0u32);
    let mut inactive: Vec<String> = Vec::new();
    for p in &pgs.pgs_by_state {
        if !p.state.starts_with("active") {
            n_inactive += p.count;
            inactive.push(format!("{} {}", p.count, p.state));
        }
        if p.state.contains("degraded") {
            degraded += p.count;
        }
        if p.state.contains("remapped") {
            misplaced += p.count;
        }
    }
    if n_inactive > 0 {
        checks.push(HealthCheck {
            code: "PG_AVAILABILITY".into(),
            severity: HealthStatus::Warn,
            summary: format!("{n_inactive} pgs not active ({})", inactive.join(", ")),
        });
    }
    if degraded > 0 {
        checks.push(HealthCheck {
            code: "PG_DEGRADED".into(),
            severity: HealthStatus::Warn,
            summary: format!(
                "{degraded} pgs degraded (fewer replicas than the pool's size, or replicas still recovering)"
            ),
        });
    }
    if misplaced > 0 {
        checks.push(HealthCheck {
            code: "PG_MISPLACED".into(),
            severity: HealthStatus::Warn,
            summary: format!(
                "{misplaced} pgs misplaced (remapped: their data is moving to where CRUSH places it)"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::report::PgStateCount;

    fn summary(states: &[(&str, u32)]) -> Summary {
        let mut s = Summary::unknown(0);
        s.pgs_by_state = states
            .iter()
            .map(|(state, count)| PgStateCount {
                state: state.to_string(),
                count: *count,
            })
            .collect();
        s
    }

    #[test]
    fn pg_states_raise_availability_and_degraded_warnings() {
        let codes = |states: &[(&str, u32)]| {
            let mut checks = Vec::new();
            pg_checks(&summary(states), &mut checks);
            checks.into_iter().map(|c| c.code).collect::<Vec<_>>()
        };
        assert!(codes(&[("active+clean", 32)]).is_empty());
        assert_eq!(
            codes(&[("active+clean", 30), ("peering", 2)]),
            ["PG_AVAILABILITY"]
        );
        assert_eq!(
            codes(&[("active+undersized+degraded", 32)]),
            ["PG_DEGRADED"]
        );
        assert_eq!(
            codes(&[("active+recovering+degraded", 32)]),
            ["PG_DEGRADED"]
        );
        assert_eq!(
            codes(&[("active+clean", 30), ("active+remapped+backfilling", 2)]),
            ["PG_MISPLACED"]
        );
        let mut s = summary(&[("active+clean", 32)]);
        s.full_osds = vec![(3, 0.96)];
        s.nearfull_osds = vec![(1, 0.9)];
        let mut checks = Vec::new();
        space_checks(&s, &mut checks);
        let got: Vec<(&str, HealthStatus)> = checks
            .iter()
            .map(|c| (c.code.as_str(), c.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("OSD_FULL", HealthStatus::Err),
                ("OSD_NEARFULL", HealthStatus::Warn)
            ]
        );
        assert!(
            checks[0].summary.contains("osd.3 96%"),
            "{}",
            checks[0].summary
        );
        assert_eq!(
            codes(&[("peered+undersized+degraded", 3), ("unknown", 1)]),
            ["PG_AVAILABILITY", "PG_DEGRADED"]
        );
    }
}
