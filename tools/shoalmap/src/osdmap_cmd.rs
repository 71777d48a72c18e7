//! `shoalmap osdmap create`, `shoalmap tree`, `shoalmap map-object`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;
use shoal_crush::CrushMap;
use shoal_map::{Fsid, OsdMap, Pool};

use crate::cli::{Format, OsdmapCreateArgs};
use crate::input::{find_pool, read_crush, read_osdmap, write_osdmap};

/// `shoalmap osdmap create`: an OSDMap from a CRUSH map and pool specs.
pub fn create(args: &OsdmapCreateArgs, format: Format) -> Result<()> {
    let crush = read_crush(&args.crush)?;
    let mut pools = Vec::new();
    for (i, spec) in args.pool.iter().enumerate() {
        pools.push(parse_pool_spec(i as i64 + 1, spec, &crush)?);
    }
    let fsid = match &args.fsid {
        Some(s) => s.parse().context("--fsid")?,
        None => Fsid::ZERO,
    };
    let map = OsdMap::from_crush(fsid, crush, pools).context("building the OSDMap")?;
    write_osdmap(&args.output, &map)?;
    match format {
        Format::Json => println!(
            "{}",
            json!({"output": args.output, "epoch": map.epoch(), "max_osd": map.max_osd(),
                   "pools": map.pools().values().map(|p| &p.name).collect::<Vec<_>>()})
        ),
        Format::Plain => println!(
            "wrote {}: epoch {}, {} OSDs, {} pools",
            args.output.display(),
            map.epoch(),
            map.osd_ids().count(),
            map.pools().len()
        ),
    }
    Ok(())
}

/// Parses `NAME:PG_NUM:SIZE[:RULE]` (RULE by id or name, default 0).
fn parse_pool_spec(id: i64, spec: &str, crush: &CrushMap) -> Result<Pool> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, pg_num, size, rule) = match parts.as_slice() {
        [n, p, s] => (*n, *p, *s, None),
        [n, p, s, r] => (*n, *p, *s, Some(*r)),
        _ => bail!("--pool {spec:?}: expected NAME:PG_NUM:SIZE[:RULE]"),
    };
    if name.is_empty() {
        bail!("--pool {spec:?}: empty pool name");
    }
    let pg_num: u32 = pg_num
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .with_context(|| format!("--pool {spec:?}: PG_NUM must be a positive integer"))?;
    let size: u32 = size
        .parse()
        .ok()
        .filter(|&n| (1..=shoal_map::MAX_PG_SIZE as u32).contains(&n))
        .with_context(|| {
            format!(
                "--pool {spec:?}: SIZE must be 1..={}",
                shoal_map::MAX_PG_SIZE
            )
        })?;
    let rule = match rule {
        None => 0,
        Some(r) => match r.parse::<i32>() {
            Ok(id) => id,
            Err(_) => crush
                .rules
                .iter()
                .flatten()
                .find(|x| x.name == r)
                .map(|x| x.id)
                .with_context(|| format!("--pool {spec:?}: no rule named {r:?}"))?,
        },
    };
    if crush.rule(rule).is_none() {
        bail!("--pool {spec:?}: rule {rule} does not exist");
    }
    Ok(Pool::new_replicated(id, name, size, pg_num, rule))
}

/// One row of the tree: an item at a depth.
struct TreeRow {
    id: i32,
    depth: usize,
    weight: u32,
}

/// Walks the CRUSH hierarchy from its roots, children in bucket order,
/// skipping device-class shadow buckets.
fn tree_rows(crush: &CrushMap) -> Vec<TreeRow> {
    let mut rows = Vec::new();
    for root in crush.roots().into_iter().filter_map(|id| crush.bucket(id)) {
        let mut stack = vec![(root.id, 0usize, root.weight)];
        while let Some((id, depth, weight)) = stack.pop() {
            rows.push(TreeRow { id, depth, weight });
            if let Some(b) = crush.bucket(id) {
                for (&item, &w) in b.items.iter().zip(&b.item_weights).rev() {
                    stack.push((item, depth + 1, w));
                }
            }
        }
    }
    rows
}

/// `shoalmap tree`: the hierarchy with OSD state, like `ceph osd tree`.
pub fn tree(osdmap: &Path, format: Format) -> Result<()> {
    let map = read_osdmap(osdmap)?;
    let crush = map.crush();
    let rows = tree_rows(crush);
    let in_tree: std::collections::BTreeSet<i32> = rows.iter().map(|r| r.id).collect();
    if format == Format::Json {
        let nodes: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut v = json!({
                    "id": r.id,
                    "name": crush.item_name(r.id).unwrap_or("?"),
                    "type": crush.item_type(r.id).and_then(|t| crush.type_name(t)).unwrap_or("?"),
                    "crush_weight": r.weight as f64 / 65536.0,
                    "depth": r.depth,
                });
                if r.id >= 0 {
                    v["status"] = json!(if map.is_up(r.id) { "up" } else { "down" });
                    v["reweight"] = json!(map.weight(r.id) as f64 / 65536.0);
                    v["device_class"] = json!(crush.device(r.id).and_then(|d| d.class.clone()));
                } else if let Some(b) = crush.bucket(r.id) {
                    v["children"] = json!(b.items);
                }
                v
            })
            .collect();
        let stray: Vec<i32> = map.osd_ids().filter(|id| !in_tree.contains(id)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"nodes": nodes, "stray": stray}))?
        );
        return Ok(());
    }
    let mut table = vec![[
        "ID".to_string(),
        "CLASS".into(),
        "WEIGHT".into(),
        "TYPE NAME".into(),
        "STATUS".into(),
        "REWEIGHT".into(),
    ]];
    for r in &rows {
        let name = crush.item_name(r.id).unwrap_or("?");
        let type_name = crush
            .item_type(r.id)
            .and_then(|t| crush.type_name(t))
            .unwrap_or("?");
        let indent = "    ".repeat(r.depth);
        let (class, status, reweight) = if r.id >= 0 {
            (
                crush
                    .device(r.id)
                    .and_then(|d| d.class.clone())
                    .unwrap_or_default(),
                if map.is_up(r.id) { "up" } else { "down" }.to_string(),
                format!("{:.5}", map.weight(r.id) as f64 / 65536.0),
            )
        } else {
            Default::default()
        };
        let label = if r.id >= 0 {
            format!("{indent}{name}")
        } else {
            format!("{indent}{type_name} {name}")
        };
        table.push([
            r.id.to_string(),
            class,
            format!("{:.5}", r.weight as f64 / 65536.0),
            label,
            status,
            reweight,
        ]);
    }
    for id in map.osd_ids().filter(|id| !in_tree.contains(id)) {
        table.push([
            id.to_string(),
            String::new(),
            "0".into(),
            format!("osd.{id}"),
            if map.is_up(id) { "up" } else { "down" }.into(),
            format!("{:.5}", map.weight(id) as f64 / 65536.0),
        ]);
    }
    print!(
        "{}",
        render_table(&table, &[true, true, true, false, true, true])
    );
    Ok(())
}

/// Aligns columns; `right[i]` right-aligns column i.
pub fn render_table<const N: usize>(rows: &[[String; N]], right: &[bool; N]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if right[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// `shoalmap map-object`: where an object lives, like `ceph osd map`.
pub fn map_object(osdmap: &Path, pool: &str, name: &str, format: Format) -> Result<()> {
    let map = read_osdmap(osdmap)?;
    let pool = find_pool(&map, pool)?;
    let pg = map.object_to_pg(pool.id, name)?;
    let raw_hash = shoal_crush::hash::str_hash_rjenkins(name.as_bytes());
    let mut ws = map.new_workspace();
    let m = map.pg_to_up_acting(pg, &mut ws)?;
    let primary = |p: Option<i32>| p.unwrap_or(-1);
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "epoch": map.epoch(), "pool": pool.name, "pool_id": pool.id,
                "objname": name, "raw_pgid": format!("{}.{raw_hash:x}", pool.id),
                "pgid": pg.to_string(),
                "up": m.up.as_slice(), "up_primary": primary(m.up_primary),
                "acting": m.acting.as_slice(), "acting_primary": primary(m.acting_primary),
            }))?
        ),
        Format::Plain => println!(
            "osdmap e{} pool '{}' ({}) object '{}' -> pg {}.{:x} ({}) -> up ({}, p{}) acting ({}, p{})",
            map.epoch(),
            pool.name,
            pool.id,
            name,
            pool.id,
            raw_hash,
            pg,
            list(m.up.as_slice()),
            primary(m.up_primary),
            list(m.acting.as_slice()),
            primary(m.acting_primary)
        ),
    }
    Ok(())
}

/// `[1,2,3]`.
pub fn list(items: &[i32]) -> String {
    let inner: Vec<String> = items.iter().map(i32::to_string).collect();
    format!("[{}]", inner.join(","))
}
