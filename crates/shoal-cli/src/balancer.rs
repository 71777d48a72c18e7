//! `shoal balancer run`: the upmap balancer of `shoal-map` (the one
//! `shoalmap balance` runs offline) on the live OSDMap, its exceptions
//! applied through the monitors. Each changed PG moves only the replicas
//! the exception names; the OSDs backfill them behind `pg_temp` chains.

use anyhow::{Context, Result, bail};
use shoal_client::MonClient;
use shoal_map::balancer::{BalanceOptions, balance};
use shoal_proto::mon::{MonCommand, UpmapPair};

/// What `balancer run` was asked.
pub struct Options {
    /// Pool names or ids (empty: all).
    pub pools: Vec<String>,
    /// Largest accepted |PGs - target| per OSD and pool.
    pub max_deviation: f64,
    /// Most replica moves.
    pub max_moves: usize,
    /// Only show the plan.
    pub dry_run: bool,
}

/// Runs the balancer against the monitors' current map.
pub async fn run(monc: &MonClient, opts: &Options, json: bool) -> Result<()> {
    let map = monc.osdmap().await?;
    let mut pools = Vec::new();
    for p in &opts.pools {
        let pool = map
            .pools()
            .values()
            .find(|x| x.name == *p || x.id.to_string() == *p)
            .with_context(|| format!("no pool {p:?}"))?;
        pools.push(pool.id);
    }
    if opts.max_deviation.is_nan() || opts.max_deviation < 0.0 {
        bail!("--max-deviation must be 0 or more");
    }
    let plan = balance(
        &map,
        &BalanceOptions {
            max_deviation: opts.max_deviation,
            max_moves: opts.max_moves,
            pools: (!pools.is_empty()).then_some(pools),
        },
    )?;
    if !opts.dry_run {
        for (pg, items) in &plan.upmap_items {
            let cmd = if items.is_empty() {
                MonCommand::RmPgUpmapItems { pg: pg.to_string() }
            } else {
                MonCommand::PgUpmapItems {
                    pg: pg.to_string(),
                    items: items
                        .iter()
                        .map(|&(from, to)| UpmapPair { from, to })
                        .collect(),
                }
            };
            monc.command(cmd)
                .await
                .with_context(|| format!("applying the exceptions of PG {pg}"))?;
        }
    }
    let (before, after) = (plan.before.stats(), plan.after.stats());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "applied": !opts.dry_run,
                "moves": plan.moves,
                "pools": plan.pools,
                "before": before,
                "after": after,
            }))?
        );
        return Ok(());
    }
    for mv in &plan.moves {
        println!("move pg {} osd.{} -> osd.{}", mv.pg, mv.from, mv.to);
    }
    for p in &plan.pools {
        println!(
            "pool {} ({}): {} moves; max |PGs - target| {:.2} -> {:.2}",
            p.pool, p.name, p.moves, p.before.max_abs_deviation, p.after.max_abs_deviation
        );
    }
    println!(
        "{} PG replica moves {}",
        plan.moves.len(),
        if opts.dry_run {
            "planned (dry run)"
        } else {
            "applied"
        }
    );
    Ok(())
}
