//! `shoalmap pgs`: PGs per OSD against weight-proportional targets.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;
use shoal_map::distribution::{Distribution, pg_distribution};

use crate::cli::{Format, PgsArgs};
use crate::input::{find_pool, read_osdmap};
use crate::svg;
use shoal_map::tree::render_table;

/// Runs `shoalmap pgs`.
pub fn run(args: &PgsArgs, format: Format) -> Result<()> {
    let map = read_osdmap(&args.osdmap)?;
    let pools = match &args.pool {
        Some(p) => Some(vec![find_pool(&map, p)?.id]),
        None => None,
    };
    let dist = pg_distribution(&map, pools.as_deref())?;
    if let Some(path) = &args.svg {
        write_svg(path, &dist)?;
    }
    match format {
        Format::Json => {
            let v = json!({"epoch": map.epoch(), "distribution": dist, "stats": dist.stats()});
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Plain => print!("{}", render(&dist)),
    }
    Ok(())
}

/// The plain-text report: one row per OSD, then summary lines.
pub fn render(dist: &Distribution) -> String {
    let mut rows = vec![[
        "#osd".to_string(),
        "count".into(),
        "first".into(),
        "primary".into(),
        "c wt".into(),
        "wt".into(),
        "target".into(),
        "dev".into(),
    ]];
    for o in &dist.osds {
        rows.push([
            format!("osd.{}", o.osd),
            o.pgs.to_string(),
            o.first.to_string(),
            o.primary.to_string(),
            format!("{:.5}", o.crush_weight as f64 / 65536.0),
            format!("{:.5}", o.reweight as f64 / 65536.0),
            format!("{:.2}", o.target),
            format!("{:+.2}", o.deviation()),
        ]);
    }
    let mut out = render_table(&rows, &[false, true, true, true, true, true, true, true]);
    let s = dist.stats();
    let _ = writeln!(out, " pgs {} replicas {}", dist.pg_count, dist.replicas);
    let _ = writeln!(
        out,
        " osds {} avg {:.2} stddev {:.3} max |dev| {:.2}",
        s.osds, s.mean, s.stddev, s.max_abs_deviation
    );
    let _ = writeln!(out, " min osd.{} {}", s.min.0, s.min.1);
    let _ = writeln!(out, " max osd.{} {}", s.max.0, s.max.1);
    for (size, n) in &dist.up_sizes {
        let _ = writeln!(out, "size {size}\t{n}");
    }
    out
}

fn write_svg(path: &Path, dist: &Distribution) -> Result<()> {
    let bars: Vec<svg::Bar> = dist
        .osds
        .iter()
        .map(|o| svg::Bar {
            label: format!("osd.{}", o.osd),
            value: o.pgs as f64,
            target: o.target,
        })
        .collect();
    let doc = svg::bar_chart(
        "PGs per OSD (bars) against weight-proportional target (marks)",
        &bars,
    );
    std::fs::write(path, doc).with_context(|| format!("writing {}", path.display()))
}
