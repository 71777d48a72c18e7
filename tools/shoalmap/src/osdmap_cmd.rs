//! `shoalmap osdmap create`, `shoalmap tree`, `shoalmap map-object`.

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

/// `shoalmap tree`: the hierarchy with OSD state, like `ceph osd tree`.
pub fn tree(osdmap: &Path, format: Format) -> Result<()> {
    let map = read_osdmap(osdmap)?;
    let tree = shoal_map::tree::osd_tree(&map);
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&tree)?);
    } else {
        print!("{}", tree.render(&map));
    }
    Ok(())
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
