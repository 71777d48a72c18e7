//! `shoalmap balance`: the upmap balancer.

use anyhow::Result;
use serde_json::json;
use shoal_map::balancer::{BalanceOptions, apply_items, balance};

use crate::cli::{BalanceArgs, Format};
use crate::input::{find_pool, read_osdmap, write_osdmap};

/// Runs `shoalmap balance`.
pub fn run(args: &BalanceArgs, format: Format) -> Result<()> {
    let mut map = read_osdmap(&args.osdmap)?;
    let pools = if args.pool.is_empty() {
        None
    } else {
        Some(
            args.pool
                .iter()
                .map(|p| find_pool(&map, p).map(|p| p.id))
                .collect::<Result<Vec<_>>>()?,
        )
    };
    let opts = BalanceOptions {
        max_deviation: args.max_deviation,
        max_moves: args.max_moves,
        pools,
    };
    let plan = balance(&map, &opts)?;
    let (before, after) = (plan.before.stats(), plan.after.stats());
    if let Some(out) = &args.output {
        apply_items(&mut map, &plan.upmap_items)?;
        map.set_epoch(map.epoch() + 1);
        write_osdmap(out, &map)?;
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "moves": plan.moves, "upmap_items": plan.upmap_items.iter()
                    .map(|(pg, items)| json!({"pgid": pg.to_string(), "mappings": items}))
                    .collect::<Vec<_>>(),
                "pools": plan.pools, "before": before, "after": after,
            }))?
        ),
        Format::Plain => {
            for mv in &plan.moves {
                println!("move pg {} osd.{} -> osd.{}", mv.pg, mv.from, mv.to);
            }
            for (pg, items) in &plan.upmap_items {
                if items.is_empty() {
                    println!("rm-pg-upmap-items {pg}");
                } else {
                    let pairs: Vec<String> =
                        items.iter().map(|(a, b)| format!("{a} {b}")).collect();
                    println!("pg-upmap-items {pg} {}", pairs.join(" "));
                }
            }
            for p in &plan.pools {
                println!(
                    "pool {} ({}): {} moves; max |PGs - target| {:.2} -> {:.2}; stddev {:.3} -> {:.3}",
                    p.name,
                    p.pool,
                    p.moves,
                    p.before.max_abs_deviation,
                    p.after.max_abs_deviation,
                    p.before.stddev,
                    p.after.stddev
                );
            }
            println!(
                "all pools: {} moves; stddev {:.3} -> {:.3}; max |dev| {:.2} -> {:.2}; min {} -> {}; max {} -> {}",
                plan.moves.len(),
                before.stddev,
                after.stddev,
                before.max_abs_deviation,
                after.max_abs_deviation,
                before.min.1,
                after.min.1,
                before.max.1,
                after.max.1
            );
        }
    }
    Ok(())
}
