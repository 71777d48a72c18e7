//! `shoalmap simulate`: apply what-if edits to an OSDMap and report how much
//! data would move, next to the theoretical minimum.

use anyhow::{Context, Result, bail};
use serde_json::json;
use shoal_crush::WEIGHT_ONE;
use shoal_map::distribution::{movement, pg_distribution};
use shoal_map::{CrushLocation, OsdInfo, OsdMap, WEIGHT_IN};

use crate::cli::{Format, SimulateArgs};
use crate::input::{find_pool, read_osdmap, write_osdmap};

/// Runs `shoalmap simulate`.
pub fn run(args: &SimulateArgs, format: Format) -> Result<()> {
    let before = read_osdmap(&args.osdmap)?;
    let mut after = before.clone();
    let mut applied = Vec::new();
    for spec in &args.add_host {
        applied.push(add_host(&mut after, spec)?);
    }
    for &osd in &args.remove {
        remove_osd(&mut after, osd)?;
        applied.push(format!("remove osd.{osd}"));
    }
    for &osd in &args.out {
        after
            .set_reweight(osd, 0)
            .with_context(|| format!("--out {osd}"))?;
        applied.push(format!("out osd.{osd}"));
    }
    for spec in &args.reweight {
        let (osd, w) = parse_osd_weight(spec, "--reweight")?;
        if !(0.0..=1.0).contains(&w) {
            bail!("--reweight {spec}: the weight must be in 0..1");
        }
        after
            .set_reweight(osd, (w * WEIGHT_ONE as f64) as u32)
            .with_context(|| format!("--reweight {spec}"))?;
        applied.push(format!("reweight osd.{osd} {w}"));
    }
    for spec in &args.crush_weight {
        let (osd, w) = parse_osd_weight(spec, "--crush-weight")?;
        let mut crush = after.crush().clone();
        crush
            .set_item_weight(osd, to_fixed(w)?)
            .with_context(|| format!("--crush-weight {spec}"))?;
        after.set_crush(crush);
        applied.push(format!("crush weight osd.{osd} {w}"));
    }
    for spec in &args.pg_num {
        let (pool, n) = spec
            .rsplit_once(':')
            .with_context(|| format!("--pg-num {spec:?}: expected POOL:PG_NUM"))?;
        let n: u32 = n
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| format!("--pg-num {spec:?}: PG_NUM must be a positive integer"))?;
        let mut p = find_pool(&after, pool)?.clone();
        p.pg_num = n;
        p.pgp_num = n;
        p.pgp_num_target = n;
        after
            .insert_pool(p)
            .with_context(|| format!("--pg-num {spec}"))?;
        applied.push(format!("pool {pool} pg_num {n}"));
    }
    for spec in &args.pgp_num {
        let (pool, n) = spec
            .rsplit_once(':')
            .with_context(|| format!("--pgp-num {spec:?}: expected POOL:PGP_NUM"))?;
        let n: u32 =
            n.parse().ok().filter(|&n| n >= 1).with_context(|| {
                format!("--pgp-num {spec:?}: PGP_NUM must be a positive integer")
            })?;
        let mut p = find_pool(&after, pool)?.clone();
        p.pgp_num = n;
        p.pgp_num_target = n;
        after
            .insert_pool(p)
            .with_context(|| format!("--pgp-num {spec}"))?;
        applied.push(format!("pool {pool} pgp_num {n}"));
    }
    if applied.is_empty() {
        bail!(
            "nothing to simulate: give --add-host, --remove, --out, --reweight, --crush-weight, --pg-num or --pgp-num"
        );
    }
    after.validate().context("the edited map is not valid")?;
    let mv = movement(&before, &after, None)?;
    // Each PG replica holds its PG's share of the data.
    let bytes_moved = args
        .stored
        .map(|b| (b as f64 * mv.replicas_moved as f64 / mv.pgs.max(1) as f64).round() as u64);
    let (sb, sa) = (
        pg_distribution(&before, None)?.stats(),
        pg_distribution(&after, None)?.stats(),
    );
    if let Some(out) = &args.output {
        write_osdmap(out, &after)?;
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "edits": applied, "movement": mv, "bytes_moved": bytes_moved,
                "fraction_moved": mv.fraction_moved(), "fraction_min": mv.fraction_min(),
                "before": sb, "after": sa,
            }))?
        ),
        Format::Plain => {
            for e in &applied {
                println!("edit: {e}");
            }
            println!("pgs: {} of {} change their up set", mv.pgs_changed, mv.pgs);
            println!(
                "data moved: {} of {} PG replicas ({:.2}%)",
                mv.replicas_moved,
                mv.replicas_total,
                100.0 * mv.fraction_moved()
            );
            if let Some(b) = bytes_moved {
                println!("bytes moved: {b} ({:.1} MB)", b as f64 / 1e6);
            }
            println!(
                "theoretical minimum: {:.1} replicas ({:.2}%); moved/minimum = {}",
                mv.theoretical_min,
                100.0 * mv.fraction_min(),
                if mv.theoretical_min > 0.0 {
                    format!("{:.2}x", mv.replicas_moved as f64 / mv.theoretical_min)
                } else {
                    "n/a".into()
                }
            );
            println!(
                "balance before: stddev {:.3}, max |dev| {:.2}; after: stddev {:.3}, max |dev| {:.2}",
                sb.stddev, sb.max_abs_deviation, sa.stddev, sa.max_abs_deviation
            );
        }
    }
    Ok(())
}

fn to_fixed(w: f64) -> Result<u32> {
    if !(0.0..=65535.0).contains(&w) {
        bail!("weight {w} out of range");
    }
    Ok((w * WEIGHT_ONE as f64) as u32)
}

fn parse_osd_weight(spec: &str, flag: &str) -> Result<(i32, f64)> {
    let (osd, w) = spec
        .split_once(':')
        .with_context(|| format!("{flag} {spec:?}: expected OSD:WEIGHT"))?;
    let osd = osd.trim_start_matches("osd.");
    let osd: i32 = osd
        .parse()
        .with_context(|| format!("{flag} {spec:?}: bad OSD id"))?;
    let w: f64 = w
        .parse()
        .with_context(|| format!("{flag} {spec:?}: bad weight"))?;
    Ok((osd, w))
}

/// `NAME:COUNT:WEIGHT[:PARENT]`: a new host bucket with COUNT new OSDs of
/// CRUSH weight WEIGHT under PARENT (default: the map's only root).
fn add_host(map: &mut OsdMap, spec: &str) -> Result<String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, count, weight, parent) = match parts.as_slice() {
        [n, c, w] => (*n, *c, *w, None),
        [n, c, w, p] => (*n, *c, *w, Some(*p)),
        _ => bail!("--add-host {spec:?}: expected NAME:COUNT:WEIGHT[:PARENT]"),
    };
    let count: i32 = count
        .parse()
        .ok()
        .filter(|&c| (1..=10_000).contains(&c))
        .with_context(|| format!("--add-host {spec:?}: COUNT must be 1..10000"))?;
    let weight = to_fixed(
        weight
            .parse()
            .with_context(|| format!("--add-host {spec:?}: bad WEIGHT"))?,
    )?;
    let mut crush = map.crush().clone();
    let parent_id = match parent {
        Some(p) => crush
            .bucket_by_name(p)
            .map(|b| b.id)
            .with_context(|| format!("--add-host {spec:?}: no bucket named {p:?}"))?,
        None => {
            let roots = crush.roots();
            match roots.as_slice() {
                [r] => *r,
                _ => bail!("--add-host {spec:?}: the map has several roots; name the parent"),
            }
        }
    };
    let host_type = crush
        .type_id("host")
        .context("the CRUSH map has no 'host' type")?;
    let host = crush.add_bucket(name, host_type, Some(parent_id))?;
    let first = map.max_osd();
    for id in first..first + count {
        crush.add_device(id, &format!("osd.{id}"), None)?;
        crush.link_item(id, weight, host)?;
    }
    map.set_max_osd(first + count)?;
    for id in first..first + count {
        let loc = CrushLocation::from_crush(&crush, id);
        map.add_osd(id, OsdInfo::up_at(loc), WEIGHT_IN)?;
    }
    map.set_crush(crush);
    Ok(format!(
        "add host {name} with osd.{first}..osd.{} of weight {:.3}",
        first + count - 1,
        weight as f64 / WEIGHT_ONE as f64
    ))
}

fn remove_osd(map: &mut OsdMap, osd: i32) -> Result<()> {
    let mut crush = map.crush().clone();
    crush
        .remove_item(osd)
        .with_context(|| format!("--remove {osd}"))?;
    map.set_crush(crush);
    map.remove_osd(osd)
        .with_context(|| format!("--remove {osd}"))?;
    Ok(())
}
