//! `shoal bench POOL SECONDS write|seq|rand`: a load generator whose
//! parameters and output follow `rados bench`, so the two can be run side
//! by side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use shoal_client::{Cluster, IoCtx, ListCursor};
use tokio::sync::Mutex;

/// The object recording what the last `write --no-cleanup` left.
const METADATA: &str = "benchmark_last_metadata";

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Write new objects.
    Write,
    /// Read the objects of the last write run in order.
    Seq,
    /// Read random objects of the last write run.
    Rand,
    /// Remove every object bench runs left (SECONDS is ignored).
    Cleanup,
}

/// Largest object `shoal bench write` makes.
const MAX_BLOCK: u64 = 1 << 30;

/// Bench parameters.
#[derive(Clone, Debug)]
pub struct Params {
    /// Pool.
    pub pool: String,
    /// How long to run.
    pub seconds: u64,
    /// The mode.
    pub mode: Mode,
    /// Object size (writes).
    pub block: u64,
    /// Operations in flight.
    pub concurrency: usize,
    /// Keep the written objects (for seq/rand runs).
    pub no_cleanup: bool,
    /// Writes: at most this many objects (0: no limit).
    pub max_objects: u64,
}

/// Latencies and per-second counts of a run.
#[derive(Default)]
struct Record {
    latencies: Vec<f64>,
    per_second: Vec<u64>,
    /// When the latest operation completed: a run that ends before its
    /// time is up (seq reads every object once) lasts until then, as
    /// `rados bench` counts it, not until the next per-second tick.
    last_end: Option<Instant>,
}

/// The summary of a run (also the JSON output).
#[derive(serde::Serialize)]
struct Summary {
    mode: &'static str,
    seconds: f64,
    ops: u64,
    object_size: u64,
    bytes: u64,
    bandwidth_mb_s: f64,
    stddev_bandwidth: f64,
    max_bandwidth: f64,
    min_bandwidth: f64,
    iops: f64,
    stddev_iops: f64,
    max_iops: u64,
    min_iops: u64,
    latency_avg_s: f64,
    latency_stddev_s: f64,
    latency_p50_s: f64,
    latency_p99_s: f64,
    latency_max_s: f64,
    latency_min_s: f64,
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const MB: f64 = 1048576.0;

/// Names of the run's objects.
fn object_name(prefix: &str, i: u64) -> String {
    format!("{prefix}_object{i}")
}

/// What a write run left behind: prefix, number of objects, object size.
fn encode_metadata(prefix: &str, count: u64, size: u64) -> Bytes {
    Bytes::from(format!("{prefix}\n{count}\n{size}\n"))
}

fn decode_metadata(b: &[u8]) -> Result<(String, u64, u64)> {
    let text = std::str::from_utf8(b).context("benchmark metadata is not text")?;
    let mut lines = text.lines();
    let (Some(prefix), Some(count), Some(size)) = (lines.next(), lines.next(), lines.next()) else {
        bail!("benchmark metadata is truncated");
    };
    Ok((
        prefix.to_string(),
        count.parse().context("benchmark metadata: object count")?,
        size.parse().context("benchmark metadata: object size")?,
    ))
}

/// Runs the bench and prints per-second lines, then the summary.
pub async fn run(cluster: &Cluster, p: Params, json: bool) -> Result<()> {
    if p.mode == Mode::Cleanup {
        return cleanup_all(cluster, &p.pool).await;
    }
    ensure!(p.concurrency >= 1, "-t must be at least 1");
    ensure!(p.seconds >= 1, "SECONDS must be at least 1");
    let io = cluster.ioctx(&p.pool).await?;
    let (prefix, count, size) = match p.mode {
        Mode::Write => {
            ensure!(p.block >= 1, "-b must be at least 1 byte");
            // The object is held in memory (one buffer shared by every write).
            ensure!(
                p.block <= MAX_BLOCK,
                "-b {} is above the bench's limit of {} bytes",
                p.block,
                MAX_BLOCK
            );
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            (
                format!("benchmark_data_{host}_{}", std::process::id()),
                0,
                p.block,
            )
        }
        Mode::Seq | Mode::Rand | Mode::Cleanup => {
            let meta = io.get(METADATA).await.context(
                "no objects to read: run `shoal bench POOL SECONDS write --no-cleanup` first",
            )?;
            decode_metadata(&meta)?
        }
    };
    if !json {
        let what = match p.mode {
            Mode::Write => format!(
                "Maintaining {} concurrent writes of {size} bytes to objects of size {size} for up to {} seconds",
                p.concurrency, p.seconds
            ),
            _ => format!(
                "Reading with {} concurrent ops for up to {} seconds",
                p.concurrency, p.seconds
            ),
        };
        println!("{what}");
        println!("Object prefix: {prefix}");
    }
    let payload = Bytes::from(vec![b'z'; size as usize]);
    let next = Arc::new(AtomicU64::new(0));
    let started_ops = Arc::new(AtomicU64::new(0));
    let done_ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record::default()));
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..p.concurrency {
        let (io, prefix, payload) = (io.clone(), prefix.clone(), payload.clone());
        let (next, started_ops, done_ops) = (next.clone(), started_ops.clone(), done_ops.clone());
        let (stop, record) = (stop.clone(), record.clone());
        let (mode, max_objects) = (p.mode, p.max_objects);
        workers.push(tokio::spawn(async move {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                let i = match mode {
                    Mode::Write => {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if max_objects > 0 && i >= max_objects {
                            break;
                        }
                        i
                    }
                    Mode::Seq | Mode::Cleanup => {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        i
                    }
                    Mode::Rand => {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng % count.max(1)
                    }
                };
                let name = object_name(&prefix, i);
                started_ops.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match mode {
                    Mode::Write => {
                        io.put(&name, payload.clone()).await?;
                    }
                    _ => {
                        let got = io.get(&name).await?;
                        ensure!(
                            got.len() as u64 == size,
                            "{name}: read {} bytes, expected {size}",
                            got.len()
                        );
                    }
                }
                let lat = t.elapsed().as_secs_f64();
                done_ops.fetch_add(1, Ordering::Relaxed);
                let mut rec = record.lock().await;
                rec.latencies.push(lat);
                rec.last_end = Some(Instant::now());
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    // Per-second lines until the time is up or the workers are done.
    if !json {
        println!("  sec Cur ops   started  finished  avg MB/s  cur MB/s last lat(s)  avg lat(s)");
    }
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last_done = 0;
    for sec in 0..p.seconds {
        tick.tick().await;
        let done = done_ops.load(Ordering::Relaxed);
        let started = started_ops.load(Ordering::Relaxed);
        let mut rec = record.lock().await;
        rec.per_second.push(done - last_done);
        if !json {
            let (avg_lat, _) = mean_sd(&rec.latencies);
            let last_lat = rec.latencies.last().copied().unwrap_or(0.0);
            let elapsed = start.elapsed().as_secs_f64();
            println!(
                "{:5} {:7} {:9} {:9} {:9.2} {:9.2} {:11.6} {:11.6}",
                sec,
                started.saturating_sub(done),
                started,
                done,
                done as f64 * size as f64 / MB / elapsed,
                (done - last_done) as f64 * size as f64 / MB,
                last_lat,
                avg_lat
            );
        }
        last_done = done;
        drop(rec);
        if workers.iter().all(|w| w.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.context("bench worker")??;
    }
    let rec = record.lock().await;
    let elapsed = rec
        .last_end
        .map_or_else(|| start.elapsed(), |t| t.duration_since(start))
        .as_secs_f64()
        .max(1e-6);
    let ops = rec.latencies.len() as u64;
    let mut sorted = rec.latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let (lat_avg, lat_sd) = mean_sd(&rec.latencies);
    let per_sec: Vec<f64> = rec.per_second.iter().map(|&n| n as f64).collect();
    let (_, iops_sd) = mean_sd(&per_sec);
    let mb = size as f64 / MB;
    let summary = Summary {
        mode: match p.mode {
            Mode::Write => "write",
            Mode::Seq => "seq",
            Mode::Rand => "rand",
            Mode::Cleanup => "cleanup",
        },
        seconds: elapsed,
        ops,
        object_size: size,
        bytes: ops * size,
        bandwidth_mb_s: ops as f64 * mb / elapsed,
        stddev_bandwidth: iops_sd * mb,
        max_bandwidth: rec.per_second.iter().max().copied().unwrap_or(0) as f64 * mb,
        min_bandwidth: rec.per_second.iter().min().copied().unwrap_or(0) as f64 * mb,
        iops: ops as f64 / elapsed,
        stddev_iops: iops_sd,
        max_iops: rec.per_second.iter().max().copied().unwrap_or(0),
        min_iops: rec.per_second.iter().min().copied().unwrap_or(0),
        latency_avg_s: lat_avg,
        latency_stddev_s: lat_sd,
        latency_p50_s: percentile(&sorted, 0.5),
        latency_p99_s: percentile(&sorted, 0.99),
        latency_max_s: sorted.last().copied().unwrap_or(0.0),
        latency_min_s: sorted.first().copied().unwrap_or(0.0),
    };
    drop(rec);
    if p.mode == Mode::Write {
        if p.no_cleanup {
            io.put(METADATA, encode_metadata(&prefix, ops, size))
                .await?;
        } else {
            cleanup(&io, &prefix).await?;
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// Removes the run's objects (and the metadata if it names them).
async fn cleanup(io: &IoCtx, prefix: &str) -> Result<()> {
    let mut cursor = ListCursor::default();
    let mut names = Vec::new();
    loop {
        let page = io.list(&cursor, 1000).await?;
        names.extend(page.names.into_iter().filter(|n| n.starts_with(prefix)));
        match page.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    for n in names {
        match io.remove(&n).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes everything write runs left, the metadata object included.
async fn cleanup_all(cluster: &Cluster, pool: &str) -> Result<()> {
    let io = cluster.ioctx(pool).await?;
    cleanup(&io, "benchmark_data_").await?;
    match io.remove(METADATA).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn print_summary(s: &Summary) {
    let (ops_word, size_word) = if s.mode == "write" {
        ("writes", "Write size")
    } else {
        ("reads", "Read size")
    };
    println!("Total time run:         {:.4}", s.seconds);
    println!("Total {ops_word} made:      {}", s.ops);
    println!("{size_word}:             {}", s.object_size);
    println!("Object size:            {}", s.object_size);
    println!("Bandwidth (MB/sec):     {:.3}", s.bandwidth_mb_s);
    println!("Stddev Bandwidth:       {:.3}", s.stddev_bandwidth);
    println!("Max bandwidth (MB/sec): {:.3}", s.max_bandwidth);
    println!("Min bandwidth (MB/sec): {:.3}", s.min_bandwidth);
    println!("Average IOPS:           {:.0}", s.iops);
    println!("Stddev IOPS:            {:.3}", s.stddev_iops);
    println!("Max IOPS:               {}", s.max_iops);
    println!("Min IOPS:               {}", s.min_iops);
    println!("Average Latency(s):     {:.6}", s.latency_avg_s);
    println!("Stddev Latency(s):      {:.6}", s.latency_stddev_s);
    println!("p50 Latency(s):         {:.6}", s.latency_p50_s);
    println!("p99 Latency(s):         {:.6}", s.latency_p99_s);
    println!("Max latency(s):         {:.6}", s.latency_max_s);
    println!("Min latency(s):         {:.6}", s.latency_min_s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_refuses_garbage() {
        let m = encode_metadata("benchmark_data_h_1", 42, 4096);
        assert_eq!(
            decode_metadata(&m).unwrap(),
            ("benchmark_data_h_1".to_string(), 42, 4096)
        );
        assert!(decode_metadata(b"x\n").is_err());
        assert!(decode_metadata(b"x\nmany\n1\n").is_err());
        assert!(decode_metadata(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn percentiles_and_spread() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        let (m, sd) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((m - 5.0).abs() < 1e-9);
        assert!((sd - 2.138).abs() < 1e-3);
    }
}
