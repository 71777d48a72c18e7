//! Text and JSON output of command results.

use std::fmt::Write as _;

use anyhow::Result;
use shoal_map::tree::render_table;
use shoal_proto::mon::CommandOutput;
use shoal_proto::report::{HealthReport, MonStatReport, StatusReport};

/// Renders a command's output.
pub fn output(out: &CommandOutput, json: bool) -> Result<String> {
    if json {
        let v = match out {
            CommandOutput::Done { epoch } => serde_json::json!({"epoch": epoch}),
            CommandOutput::Status(s) => serde_json::to_value(s)?,
            CommandOutput::MonStat(m) => serde_json::to_value(m)?,
            CommandOutput::Health(h) => serde_json::to_value(h)?,
            CommandOutput::OsdId(id) => serde_json::json!({"osd": id}),
            CommandOutput::PoolId(id) => serde_json::json!({"pool_id": id}),
            CommandOutput::Pools(p) => serde_json::to_value(p)?,
            CommandOutput::PgLs(p) => serde_json::to_value(p)?,
            CommandOutput::OsdDf(o) => serde_json::to_value(o)?,
            CommandOutput::Auth(a) => serde_json::to_value(a)?,
            CommandOutput::Value(v) => serde_json::json!({
                "value": v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
            }),
            CommandOutput::Keys(k) => serde_json::to_value(k)?,
            other => serde_json::to_value(other)?,
        };
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut s = String::new();
    match out {
        CommandOutput::Done { epoch } => writeln!(s, "done (osdmap epoch {epoch})")?,
        CommandOutput::Status(st) => status(&mut s, st)?,
        CommandOutput::MonStat(m) => mon_stat(&mut s, m)?,
        CommandOutput::Health(h) => health(&mut s, h, "")?,
        CommandOutput::OsdId(id) => writeln!(s, "{id}")?,
        CommandOutput::PoolId(id) => writeln!(s, "pool created with id {id}")?,
        CommandOutput::PgActive { epoch: 0, .. } => writeln!(s, "no interval recorded as active")?,
        CommandOutput::PgActive { epoch, acting } => {
            writeln!(s, "active since epoch {epoch} on {acting:?}")?
        }
        CommandOutput::Pools(pools) => {
            let mut rows = vec![[
                "ID".to_string(),
                "NAME".into(),
                "SIZE".into(),
                "MIN_SIZE".into(),
                "PG_NUM".into(),
                "PGP_NUM".into(),
                "RULE".into(),
            ]];
            for p in pools {
                let pgp = if p.pgp_num == p.pgp_num_target {
                    p.pgp_num.to_string()
                } else {
                    format!("{} -> {}", p.pgp_num, p.pgp_num_target)
                };
                rows.push([
                    p.id.to_string(),
                    p.name.clone(),
                    p.size.to_string(),
                    p.min_size.to_string(),
                    p.pg_num.to_string(),
                    pgp,
                    p.crush_rule.to_string(),
                ]);
            }
            s.push_str(&render_table(
                &rows,
                &[true, false, true, true, true, true, true],
            ));
        }
        CommandOutput::OsdDf(osds) => {
            let mut rows = vec![[
                "ID".to_string(),
                "STATUS".into(),
                "SIZE".into(),
                "USED".into(),
                "AVAIL".into(),
                "%USE".into(),
                "PGS".into(),
            ]];
            for o in osds {
                let status = match (o.up, o.in_cluster) {
                    (true, true) => "up,in",
                    (true, false) => "up,out",
                    (false, true) => "down,in",
                    (false, false) => "down,out",
                };
                let pct = if o.total > 0 {
                    format!("{:.1}", o.used as f64 * 100.0 / o.total as f64)
                } else {
                    "-".into()
                };
                rows.push([
                    o.id.to_string(),
                    status.into(),
                    human_bytes(o.total),
                    human_bytes(o.used),
                    human_bytes(o.total.saturating_sub(o.used)),
                    pct,
                    o.pgs.to_string(),
                ]);
            }
            s.push_str(&render_table(
                &rows,
                &[true, false, true, true, true, true, true],
            ));
        }
        CommandOutput::PgLs(pgs) => {
            let mut rows = vec![[
                "PG".to_string(),
                "OBJECTS".into(),
                "MISSING".into(),
                "STATE".into(),
                "UP".into(),
                "ACTING".into(),
            ]];
            let set = |v: &[i32]| {
                let ids: Vec<String> = v.iter().map(|o| o.to_string()).collect();
                format!("[{}]", ids.join(","))
            };
            for p in pgs {
                rows.push([
                    p.pgid.clone(),
                    p.objects.to_string(),
                    p.missing.to_string(),
                    p.state.clone(),
                    set(&p.up),
                    set(&p.acting),
                ]);
            }
            s.push_str(&render_table(
                &rows,
                &[false, true, true, false, false, false],
            ));
        }
        CommandOutput::Auth(entries) => {
            for e in entries {
                writeln!(s, "{}\n\tcaps: {}", e.name, e.caps)?;
            }
        }
        CommandOutput::Value(Some(v)) => writeln!(s, "{}", String::from_utf8_lossy(v))?,
        CommandOutput::Value(None) => writeln!(s, "(not set)")?,
        CommandOutput::Keys(keys) => {
            for k in keys {
                writeln!(s, "{k}")?;
            }
        }
        CommandOutput::OsdMap { epoch, map } => {
            writeln!(s, "osdmap epoch {epoch} ({} bytes)", map.len())?
        }
        CommandOutput::MonMap { map } => writeln!(s, "monmap ({} bytes)", map.len())?,
        CommandOutput::Keyring(k) => writeln!(s, "issued {}", k.name)?,
    }
    Ok(s)
}

fn health(s: &mut String, h: &HealthReport, indent: &str) -> std::fmt::Result {
    writeln!(s, "{indent}{}", h.status)?;
    for c in &h.checks {
        writeln!(
            s,
            "{indent}  [{}] {}: {}",
            severity(c.severity),
            c.code,
            c.summary
        )?;
    }
    Ok(())
}

fn severity(h: shoal_proto::report::HealthStatus) -> &'static str {
    match h {
        shoal_proto::report::HealthStatus::Ok => "OK",
        shoal_proto::report::HealthStatus::Warn => "WRN",
        shoal_proto::report::HealthStatus::Err => "ERR",
    }
}

fn mon_stat(s: &mut String, m: &MonStatReport) -> std::fmt::Result {
    let mons: Vec<String> = m
        .mons
        .iter()
        .map(|e| format!("{}={}", e.name, e.addr))
        .collect();
    writeln!(
        s,
        "e{}: {} mons at {{{}}}, election leader {}, quorum {}",
        m.epoch,
        m.mons.len(),
        mons.join(","),
        m.leader.as_deref().unwrap_or("(none)"),
        if m.quorum.is_empty() {
            "(none)".to_string()
        } else {
            m.quorum.join(",")
        }
    )
}

fn status(s: &mut String, st: &StatusReport) -> std::fmt::Result {
    writeln!(s, "  cluster:")?;
    writeln!(s, "    id:     {}", st.fsid)?;
    write!(s, "    health: ")?;
    health(s, &st.health, "")?;
    writeln!(s, "  services:")?;
    writeln!(
        s,
        "    mon: {} daemons, quorum {} (leader {})",
        st.mon.mons.len(),
        if st.mon.quorum.is_empty() {
            "(none)".to_string()
        } else {
            st.mon.quorum.join(",")
        },
        st.mon.leader.as_deref().unwrap_or("none")
    )?;
    writeln!(
        s,
        "    osd: {} osds: {} up, {} in (epoch {})",
        st.num_osds, st.num_up_osds, st.num_in_osds, st.osdmap_epoch
    )?;
    writeln!(s, "  data:")?;
    writeln!(s, "    pools:   {} pools, {} pgs", st.num_pools, st.num_pgs)?;
    if st.degraded_objects > 0 {
        writeln!(
            s,
            "    objects: {} ({} object copies degraded)",
            st.num_objects, st.degraded_objects
        )?;
    } else {
        writeln!(s, "    objects: {}", st.num_objects)?;
    }
    writeln!(
        s,
        "    usage:   {} used, {} / {} avail",
        human_bytes(st.raw_used),
        human_bytes(st.raw_total.saturating_sub(st.raw_used)),
        human_bytes(st.raw_total)
    )?;
    let mut label = "    pgs:     ";
    for p in &st.pgs_by_state {
        writeln!(s, "{label}{} {}", p.count, p.state)?;
        label = "             ";
    }
    writeln!(s, "  io:")?;
    writeln!(
        s,
        "    client:   {}/s rd, {}/s wr, {} op/s rd, {} op/s wr",
        human_bytes(st.io.read_bytes),
        human_bytes(st.io.write_bytes),
        st.io.read_ops,
        st.io.write_ops
    )?;
    if st.recovery_rate.objects > 0 {
        writeln!(
            s,
            "    recovery: {}/s, {} objects/s",
            human_bytes(st.recovery_rate.bytes),
            st.recovery_rate.objects
        )?;
    }
    Ok(())
}

/// Whether a PG `state` (`active+recovering+degraded`) has every one of
/// `wanted` (each a state or `+`-joined states).
pub fn pg_in_states(state: &str, wanted: &[String]) -> bool {
    let flags: Vec<&str> = state.split('+').collect();
    wanted
        .iter()
        .flat_map(|w| w.split('+'))
        .all(|w| flags.contains(&w))
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_state_filters_match_whole_flags() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let state = "active+recovering+degraded";
        assert!(pg_in_states(state, &w(&[])));
        assert!(pg_in_states(state, &w(&["degraded"])));
        assert!(pg_in_states(state, &w(&["active+degraded"])));
        assert!(pg_in_states(state, &w(&["active", "recovering"])));
        assert!(!pg_in_states(state, &w(&["clean"])));
        assert!(!pg_in_states(state, &w(&["recover"])), "no partial words");
    }
}
