//! `mon-bench`: map-update commit latency and throughput of a monitor
//! cluster (real `shoal-mon` processes on loopback, each with its redb store
//! on disk and real syncs), against the disk's own synchronous-write latency
//! measured by fio in the same run.
//!
//! ```text
//! cargo build --release -p shoal-mon -p shoal-bench
//! target/release/mon-bench --mons 3 --serial 2000 --clients 8 --inflight 32 --updates 40000
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use shoal_client::MonClient;
use shoal_proto::mon::MonCommand;
use shoal_tests::{MonCluster, MonClusterOptions};

/// Monitor commit latency and throughput.
#[derive(Parser, Debug)]
struct Args {
    /// Monitors.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=9))]
    mons: usize,
    /// Updates sent one at a time (latency).
    #[arg(long, default_value_t = 2000)]
    serial: usize,
    /// Concurrent clients (throughput).
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    clients: usize,
    /// Updates in flight per client.
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    inflight: usize,
    /// Updates in the throughput phase.
    #[arg(long, default_value_t = 40_000)]
    updates: usize,
    /// OSDs whose reweights the updates change.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i32).range(1..))]
    osds: i32,
    /// Skip the fio reference.
    #[arg(long)]
    no_fio: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn reweight(i: usize, osds: i32) -> MonCommand {
    // A different value each time, so every update changes the map.
    MonCommand::OsdReweight {
        id: (i % osds as usize) as i32,
        weight: 0.5 + ((i / osds as usize) % 100) as f64 / 400.0,
    }
}

/// fio: 4 KiB writes each followed by fdatasync, QD1, on the filesystem
/// the monitors use; returns the mean time per write+sync.
fn fio_sync_latency(dir: &std::path::Path) -> Result<Duration> {
    let file = dir.join("fio-sync.tmp");
    let out = std::process::Command::new("fio")
        .args([
            "--name=sync",
            "--rw=write",
            "--bs=4k",
            "--size=64M",
            "--ioengine=psync",
            "--fdatasync=1",
            "--runtime=5",
            "--time_based",
            "--output-format=json",
        ])
        .arg(format!("--filename={}", file.display()))
        .output()
        .context("running fio (install it, or pass --no-fio)")?;
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("fio JSON")?;
    let iops = v["jobs"][0]["write"]["iops"].as_f64().unwrap_or(0.0);
    if iops <= 0.0 {
        bail!("fio reported no writes");
    }
    Ok(Duration::from_secs_f64(1.0 / iops))
}

async fn epoch(client: &MonClient) -> Result<u32> {
    Ok(client.osdmap().await?.epoch())
}

async fn run(args: Args) -> Result<serde_json::Value> {
    let opts = MonClusterOptions {
        mons: args.mons,
        election_timeout_ms: 1000,
        ..MonClusterOptions::default()
    };
    let cluster = MonCluster::start(&opts);
    let admin = cluster.admin();
    // Wait for a quorum, then create the OSDs the updates will touch.
    cluster.leader(&admin, Duration::from_secs(30)).await;
    for _ in 0..args.osds {
        admin.command(MonCommand::OsdCreate { id: -1 }).await?;
    }

    // Serial: one update at a time.
    let mut lat = Vec::with_capacity(args.serial);
    let e0 = epoch(&admin).await?;
    let t0 = Instant::now();
    for i in 0..args.serial {
        let s = Instant::now();
        admin.command(reweight(i, args.osds)).await?;
        lat.push(s.elapsed());
    }
    let serial_elapsed = t0.elapsed();
    let serial_epochs = epoch(&admin).await? - e0;
    lat.sort();

    // Throughput: many clients, many in flight; the leader batches.
    let clients: Vec<Arc<MonClient>> = (0..args.clients)
        .map(|_| Arc::new(cluster.admin()))
        .collect();
    let per_lane = args.updates.div_ceil(args.clients * args.inflight);
    let e1 = epoch(&admin).await?;
    let t1 = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        for lane in 0..args.inflight {
            let client = client.clone();
            let osds = args.osds;
            tasks.push(tokio::spawn(async move {
                let mut lats = Vec::with_capacity(per_lane);
                for k in 0..per_lane {
                    let i = (c * 1_000_003 + lane * 10_007 + k) % 1_000_000;
                    let s = Instant::now();
                    client.command(reweight(i, osds)).await?;
                    lats.push(s.elapsed());
                }
                Ok::<_, shoal_client::ClientError>(lats)
            }));
        }
    }
    let mut load_lat = Vec::new();
    for t in tasks {
        load_lat.extend(t.await??);
    }
    let load_elapsed = t1.elapsed();
    let load_epochs = epoch(&admin).await? - e1;
    load_lat.sort();
    let done = load_lat.len();
    let rate = done as f64 / load_elapsed.as_secs_f64();

    let fio = if args.no_fio {
        None
    } else {
        Some(fio_sync_latency(cluster.path())?)
    };
    let p50 = percentile(&lat, 0.5);
    let p99 = percentile(&lat, 0.99);
    println!(
        "mon-bench: {} monitors on loopback, redb stores with fsync",
        args.mons
    );
    println!(
        "serial updates: {} in {:.2} s ({} epochs): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms  (goal: p99 < 5 ms)",
        args.serial,
        serial_elapsed.as_secs_f64(),
        serial_epochs,
        ms(p50),
        ms(p99),
        ms(lat.last().copied().unwrap_or_default())
    );
    println!(
        "batched updates: {} from {} clients x {} in flight in {:.2} s: {:.0} updates/s, {} epochs ({:.1} updates/epoch), latency p50 {:.2} ms p99 {:.2} ms  (goal: >= 5000/s)",
        done,
        args.clients,
        args.inflight,
        load_elapsed.as_secs_f64(),
        rate,
        load_epochs,
        done as f64 / f64::from(load_epochs.max(1)),
        ms(percentile(&load_lat, 0.5)),
        ms(percentile(&load_lat, 0.99)),
    );
    if let Some(f) = fio {
        println!(
            "fio reference (same filesystem, 4 KiB write + fdatasync, QD1): {:.3} ms per sync; serial commit p50 = {:.2} syncs, p99 = {:.2} syncs",
            ms(f),
            p50.as_secs_f64() / f.as_secs_f64(),
            p99.as_secs_f64() / f.as_secs_f64()
        );
    }
    Ok(serde_json::json!({
        "mons": args.mons,
        "serial": {"count": args.serial, "p50_ms": ms(p50), "p99_ms": ms(p99),
                   "max_ms": ms(lat.last().copied().unwrap_or_default()), "epochs": serial_epochs},
        "batched": {"count": done, "clients": args.clients, "inflight": args.inflight,
                    "seconds": load_elapsed.as_secs_f64(), "updates_per_s": rate, "epochs": load_epochs,
                    "p50_ms": ms(percentile(&load_lat, 0.5)), "p99_ms": ms(percentile(&load_lat, 0.99))},
        "fio_sync_ms": fio.map(ms),
    }))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let json_path = args.json.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(run(args))?;
    if let Some(p) = json_path {
        std::fs::write(&p, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(())
}
