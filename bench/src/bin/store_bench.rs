//! `store-bench`: the store and fio on the same workloads in one run, on the
//! same filesystem, with the ratios printed.
//!
//! Workloads: 4 MiB whole-object writes, 4 MiB reads, durable 4 KiB
//! transactions from 32 concurrent writers (fio: 4 KiB random writes with
//! fdatasync after each, iodepth 32), and the store's resident memory while
//! writing a large volume.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use shoal_store::{Op, Store, StoreConfig, Transaction};

#[derive(Parser)]
#[command(about = "shoal-store against fio on the same workloads")]
struct Args {
    /// Directory on the filesystem to measure (a fresh subdirectory is used).
    #[arg(long, default_value = "/var/tmp/shoal-store-bench")]
    dir: PathBuf,
    /// Bytes written by the 4 MiB workloads.
    #[arg(long, default_value_t = 2 << 30)]
    bytes: u64,
    /// 4 KiB transactions in the small-write workload.
    #[arg(long, default_value_t = 40_000)]
    small_txns: u64,
    /// Total bytes written while sampling memory (0 skips that workload).
    #[arg(long, default_value_t = 10 << 30)]
    memory_bytes: u64,
    /// Concurrent 4 MiB operations.
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// Rounds of every workload (fio and the store back to back); the
    /// median ratio is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// The store's chunk (checksum and copy-on-write) size.
    #[arg(long, default_value_t = shoal_store::DEFAULT_CHUNK_SIZE)]
    chunk_size: u64,
}

const MIB4: usize = 4 << 20;

fn main() -> Result<()> {
    let args = Args::parse();
    ensure_fio()?;
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store_dir = args.dir.join("store");

    // Each workload runs fio then the store back to back, in every round:
    // the disk's speed drifts by tens of percent over minutes here, so
    // ratios of neighbouring runs are what can be compared.
    let mut rows: [Vec<(f64, f64)>; 3] = Default::default();
    let mut backend = String::new();
    for round in 1..=args.rounds {
        let _ = std::fs::remove_dir_all(&store_dir);
        let mut cfg = StoreConfig::new(&store_dir, args.bytes + (1 << 30));
        cfg.reserve = 0;
        cfg.chunk_size = args.chunk_size;
        Store::mkfs(&cfg)?;
        let store = Arc::new(Store::open(&cfg)?);
        backend = store.backend().to_string();
        let objects = (args.bytes / MIB4 as u64).max(1);
        let r = rt.block_on(async {
            let mut t = Transaction::new("bench");
            t.push(Op::CreateCollection);
            store.submit(t).await?;
            let fio_w = fio(&args.dir, "write", "4M", args.bytes, args.depth, false)?;
            let w = write_4m(&store, objects, args.depth).await?;
            let fio_r = fio(&args.dir, "read", "4M", args.bytes, args.depth, false)?;
            let r = read_4m(&store, objects, args.depth).await?;
            // Random writes into the file the sequential run wrote (as the
            // store's small writes land in a data file it has written).
            let fio_s = fio(
                &args.dir,
                "randwrite",
                "4k",
                args.small_txns * 4096,
                32,
                true,
            )?;
            let s = small_txns(&store, args.small_txns, 32).await?;
            let _ = std::fs::remove_file(args.dir.join("fio.dat"));
            anyhow::Ok([(fio_w, w), (fio_r, r), (fio_s, s)])
        })?;
        for (row, v) in rows.iter_mut().zip(r) {
            row.push(v);
        }
        eprintln!(
            "round {round}: ratios {:.2} {:.2} {:.2}",
            r[0].1 / r[0].0,
            r[1].1 / r[1].0,
            r[2].1 / r[2].0
        );
    }

    println!(
        "backend: {backend}, {} round(s), median ratio of each workload",
        args.rounds
    );
    println!("workload                         fio           shoal-store   ratio   goal");
    row("4 MiB writes (MB/s)", &rows[0], 0.8);
    row("4 MiB reads (MB/s)", &rows[1], 0.8);
    row("4 KiB durable writes (ops/s)", &rows[2], 0.5);

    if args.memory_bytes > 0 {
        let _ = std::fs::remove_dir_all(&store_dir);
        let mut cfg = StoreConfig::new(&store_dir, 4 << 30);
        cfg.reserve = 0;
        Store::mkfs(&cfg)?;
        let store = Arc::new(Store::open(&cfg)?);
        let (peak, start) = rt.block_on(memory(&store, args.memory_bytes, args.depth))?;
        println!(
            "memory: resident {:.0} MiB before, peak {:.0} MiB while writing {} GiB of 4 MiB objects",
            start as f64 / (1 << 20) as f64,
            peak as f64 / (1 << 20) as f64,
            args.memory_bytes >> 30
        );
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}

/// Prints the round with the median ratio.
fn row(name: &str, rounds: &[(f64, f64)], goal: f64) {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)));
    let (fio, store) = sorted[sorted.len() / 2];
    println!(
        "{name:<32} {fio:>10.0}   {store:>10.0}   {:>5.2}   >= {goal}",
        store / fio
    );
}

fn ensure_fio() -> Result<()> {
    if Command::new("fio").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("installing fio...");
    let ok = Command::new("sh")
        .args(["-c", "apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null"])
        .status()?
        .success();
    if !ok {
        bail!("fio is missing and could not be installed");
    }
    Ok(())
}

/// Runs fio with io_uring and O_DIRECT; returns MB/s (bandwidth workloads)
/// or IOPS (`sync` small writes, fdatasync after every write).
fn fio(dir: &Path, rw: &str, bs: &str, size: u64, depth: usize, sync: bool) -> Result<f64> {
    let file = dir.join("fio.dat");
    let mut cmd = Command::new("fio");
    cmd.args([
        "--name=bench",
        &format!("--filename={}", file.display()),
        &format!("--rw={rw}"),
        &format!("--bs={bs}"),
        &format!("--size={size}"),
        &format!("--iodepth={depth}"),
        "--ioengine=io_uring",
        "--direct=1",
        "--output-format=json",
    ]);
    if sync {
        cmd.arg("--fdatasync=1");
    }
    let out = cmd.output().context("running fio")?;
    if !out.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("fio json")?;
    let job = &v["jobs"][0];
    let side = if rw.contains("read") {
        &job["read"]
    } else {
        &job["write"]
    };
    Ok(if sync {
        side["iops"].as_f64().unwrap_or(0.0)
    } else {
        side["bw_bytes"].as_f64().unwrap_or(0.0) / 1e6
    })
}

/// Distinct payloads made before a timed workload, so that the timing
/// holds the store's work only (fio's buffers are ready before it starts).
fn payloads(count: u64, len: usize) -> Arc<Vec<Bytes>> {
    Arc::new((0..count).map(|i| payload(i, len).into()).collect())
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (j, b) in v.iter_mut().enumerate().step_by(4096) {
        *b = (i as usize ^ j) as u8;
    }
    v
}

/// Runs `n` operations with at most `depth` in flight; returns seconds.
async fn bounded<F, Fut>(n: u64, depth: usize, op: F) -> Result<f64>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        if set.len() >= depth {
            set.join_next().await.context("task")???;
        }
        set.spawn(op(i));
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn write_4m(store: &Arc<Store>, objects: u64, depth: usize) -> Result<f64> {
    let data = payloads(16, MIB4);
    let secs = bounded(objects, depth, |i| {
        let (store, data) = (store.clone(), data.clone());
        async move {
            let mut t = Transaction::new("bench");
            t.write_full(&format!("o{i}"), data[i as usize % data.len()].clone());
            Ok(store.submit(t).await?)
        }
    })
    .await?;
    Ok(objects as f64 * MIB4 as f64 / secs / 1e6)
}

async fn read_4m(store: &Arc<Store>, objects: u64, depth: usize) -> Result<f64> {
    let secs = bounded(objects, depth, |i| {
        let store = store.clone();
        async move {
            let data = tokio::task::spawn_blocking(move || {
                store.read("bench", &format!("o{i}"), 0, u64::MAX)
            })
            .await??;
            if data.len() != MIB4 {
                bail!("short read");
            }
            Ok(())
        }
    })
    .await?;
    Ok(objects as f64 * MIB4 as f64 / secs / 1e6)
}

async fn small_txns(store: &Arc<Store>, n: u64, depth: usize) -> Result<f64> {
    let data = payloads(256, 4096);
    let secs = bounded(n, depth, |i| {
        let (store, data) = (store.clone(), data.clone());
        async move {
            let mut t = Transaction::new("bench");
            t.push(Op::Write {
                name: format!("small{}", i % 1024),
                offset: (i / 1024 % 256) * 4096,
                data: data[i as usize % data.len()].clone(),
            });
            Ok(store.submit(t).await?)
        }
    })
    .await?;
    Ok(n as f64 / secs)
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Writes `total` bytes as 4 MiB objects cycling over a working set that
/// fits the store; returns (peak RSS, RSS before).
async fn memory(store: &Arc<Store>, total: u64, depth: usize) -> Result<(u64, u64)> {
    let mut t = Transaction::new("mem");
    t.push(Op::CreateCollection);
    store.submit(t).await?;
    let start = rss();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(start));
    let n = total / MIB4 as u64;
    bounded(n, depth, |i| {
        let (store, peak) = (store.clone(), peak.clone());
        async move {
            let mut t = Transaction::new("mem");
            t.write_full(&format!("m{}", i % 512), payload(i, MIB4));
            store.submit(t).await?;
            peak.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    })
    .await?;
    Ok((peak.load(std::sync::atomic::Ordering::Relaxed), start))
}
