//! `net-bench`: QUIC (shoal-net) against plain TCP and TCP + rustls on
//! loopback, measured in one run so the ratios are comparable.
//!
//! Throughput: 4 MiB payloads as requests (small responses) with a few in
//! flight, over one connection. Latency: 64-byte requests, serial (p50,
//! p99, ops/s) and with 32 in flight (ops/s). TCP runs the same framing
//! over one connection, pipelined in order.
//!
//! ```text
//! cargo run --release -p shoal-net --bin net-bench
//! cargo run --release -p shoal-net --bin net-bench -- --sweep
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use shoal_net::frame::FrameDecoder;
use shoal_net::tls::{self, ServerCheck};
use shoal_net::{
    ClusterCa, Endpoint, EndpointConfig, Frame, FrameLimits, NodeIdentity, PeerAddr, PeerInfo,
    Tuning,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

const PUT: u16 = 100;
const ACK: u16 = 101;
const TIMEOUT: Duration = Duration::from_secs(60);
const BENCH_ALPN: &[u8] = b"shoal-bench";

#[derive(Parser, Debug, Clone)]
#[command(about = "QUIC vs TCP vs TCP+TLS on loopback: throughput and latency")]
struct Args {
    /// Payload size of the throughput test, in MiB.
    #[arg(long, default_value_t = 4)]
    payload_mib: usize,
    /// Data moved per throughput measurement, in MiB.
    #[arg(long, default_value_t = 2048)]
    total_mib: usize,
    /// Payloads in flight in the throughput test.
    #[arg(long, default_value_t = 4)]
    inflight: usize,
    /// Requests per latency measurement.
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// Requests in flight in the concurrent latency test.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// QUIC maximum MTU (MTU discovery upper bound).
    #[arg(long)]
    mtu: Option<u16>,
    /// Disable UDP GSO.
    #[arg(long)]
    no_gso: bool,
    /// Do not split oversized GSO batches (shows the MTU fallback).
    #[arg(long)]
    no_gso_split: bool,
    /// Only run the QUIC throughput test over MTU x GSO combinations.
    #[arg(long)]
    sweep: bool,
    /// Runs of each measurement; the best and the median are reported (the
    /// machine may be shared: the best run is the least disturbed one).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// MTUs tried by --sweep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1452,4096,9000,16384,32768,65000"
    )]
    mtus: Vec<u16>,
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

#[derive(Clone, Copy, Debug, Default)]
struct Throughput {
    gbps: f64,
    cpu_s_per_gb: f64,
}

/// Best (highest GB/s) and median of several throughput runs.
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    best: Throughput,
    median_gbps: f64,
}

fn summarize(mut runs: Vec<Throughput>) -> Summary {
    runs.sort_by(|a, b| a.gbps.total_cmp(&b.gbps));
    Summary {
        best: runs.last().copied().unwrap_or_default(),
        median_gbps: runs.get(runs.len() / 2).map(|t| t.gbps).unwrap_or(0.0),
    }
}

/// Best of several latency runs (lowest p50, highest op/s).
fn best_latency(runs: &[Latency]) -> Latency {
    let mut best = runs.first().copied().unwrap_or_default();
    for l in runs {
        best.p50_us = best.p50_us.min(l.p50_us);
        best.p99_us = best.p99_us.min(l.p99_us);
        best.serial_ops = best.serial_ops.max(l.serial_ops);
        best.concurrent_ops = best.concurrent_ops.max(l.concurrent_ops);
    }
    best
}

#[derive(Clone, Copy, Debug, Default)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    serial_ops: f64,
    concurrent_ops: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn gb(bytes: usize) -> f64 {
    bytes as f64 / 1e9
}

// ---------------------------------------------------------------- QUIC

struct Quic {
    _server: Endpoint,
    client: Endpoint,
    peer: PeerAddr,
}

async fn ack(_peer: PeerInfo, req: Frame) -> Frame {
    // Throughput requests get a small acknowledgement, latency ones an echo.
    if req.payload.is_empty() {
        Frame::new(ACK, req.body)
    } else {
        Frame::new(ACK, Bytes::from(req.payload.len().to_le_bytes().to_vec()))
    }
}

fn quic_setup(ca: &ClusterCa, tuning: &Tuning, host: u8) -> Result<Quic> {
    let mut sc = EndpointConfig::new(SocketAddr::from(([127, 0, 0, host], 0)));
    sc.tuning = tuning.clone();
    let server = Endpoint::builder(ca.issue("osd.1")?, sc)
        .request_handler(ack)
        .bind()?;
    let mut cc = EndpointConfig::client(SocketAddr::from(([127, 0, 0, host + 1], 0)));
    cc.tuning = tuning.clone();
    let client = Endpoint::builder(ca.issue("client.bench")?, cc).bind()?;
    let peer = PeerAddr::named("osd.1", server.local_addr());
    Ok(Quic {
        _server: server,
        client,
        peer,
    })
}

async fn quic_throughput(q: &Quic, args: &Args) -> Result<(Throughput, u16)> {
    let payload = Bytes::from(vec![0x5a; args.payload_mib << 20]);
    let put = Frame::new(PUT, Bytes::from_static(b"put")).with_payload(payload);
    // Warm up (and let MTU discovery finish).
    for _ in 0..4 {
        q.client.request(&q.peer, &put, TIMEOUT).await?;
    }
    let count = (args.total_mib / args.payload_mib).max(1);
    let sem = Arc::new(Semaphore::new(args.inflight));
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let permit = sem.clone().acquire_owned().await?;
        let (client, peer, put) = (q.client.clone(), q.peer.clone(), put.clone());
        tasks.push(tokio::spawn(async move {
            let r = client.request(&peer, &put, TIMEOUT).await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        t.await??;
    }
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_time() - cpu0);
    let bytes = count * (args.payload_mib << 20);
    let mtu = q
        .client
        .connection(&q.peer, TIMEOUT)
        .await?
        .quinn()
        .stats()
        .path
        .current_mtu;
    Ok((
        Throughput {
            gbps: gb(bytes) / secs,
            cpu_s_per_gb: cpu.as_secs_f64() / gb(bytes),
        },
        mtu,
    ))
}

async fn quic_latency(q: &Quic, args: &Args) -> Result<Latency> {
    let req = Frame::new(PUT, Bytes::from(vec![7u8; 64]));
    for _ in 0..1000 {
        q.client.request(&q.peer, &req, TIMEOUT).await?;
    }
    let mut lat = Vec::with_capacity(args.ops);
    let t0 = Instant::now();
    for _ in 0..args.ops {
        let s = Instant::now();
        q.client.request(&q.peer, &req, TIMEOUT).await?;
        lat.push(s.elapsed());
    }
    let serial_ops = args.ops as f64 / t0.elapsed().as_secs_f64();
    lat.sort_unstable();

    let per_task = args.ops / args.concurrency;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, peer, req) = (q.client.clone(), q.peer.clone(), req.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                client.request(&peer, &req, TIMEOUT).await?;
            }
            Ok::<_, shoal_net::NetError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let concurrent_ops = (per_task * args.concurrency) as f64 / t0.elapsed().as_secs_f64();
    Ok(Latency {
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
        serial_ops,
        concurrent_ops,
    })
}

// ---------------------------------------------------------------- TCP

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &Frame) -> Result<()> {
    let mut head = Vec::with_capacity(16 + f.body.len());
    head.extend_from_slice(&f.header()?.encode());
    head.extend_from_slice(&f.body);
    w.write_all(&head).await?;
    if !f.payload.is_empty() {
        w.write_all(&f.payload).await?;
    }
    Ok(())
}

struct TcpFrames<R> {
    r: R,
    dec: FrameDecoder,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> TcpFrames<R> {
    fn new(r: R) -> Self {
        TcpFrames {
            r,
            dec: FrameDecoder::new(FrameLimits::default()),
            buf: BytesMut::with_capacity(256 << 10),
        }
    }

    async fn next(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some(f) = self.dec.decode()? {
                return Ok(Some(f));
            }
            self.buf.clear();
            if self.r.read_buf(&mut self.buf).await? == 0 {
                self.dec.finish()?;
                return Ok(None);
            }
            self.dec.feed(&self.buf);
        }
    }
}

/// Serves one TCP connection: reads requests in order, answers each.
async fn tcp_serve<S: Io>(s: S) -> Result<()> {
    let (r, mut w) = tokio::io::split(s);
    let mut frames = TcpFrames::new(r);
    while let Some(req) = frames.next().await? {
        let resp = ack(
            PeerInfo {
                name: String::new(),
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            },
            req,
        )
        .await;
        write_frame(&mut w, &resp).await?;
        // TLS may hold records back until flushed.
        w.flush().await?;
    }
    Ok(())
}

/// Sends `count` copies of `req` with at most `window` unanswered; returns
/// per-request latencies when `window` is 1.
async fn tcp_pipeline<S: Io>(
    s: S,
    req: Frame,
    count: usize,
    window: usize,
) -> Result<Vec<Duration>> {
    let (r, mut w) = tokio::io::split(s);
    let sem = Arc::new(Semaphore::new(window));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let sem2 = sem.clone();
    let reader = tokio::spawn(async move {
        let mut frames = TcpFrames::new(r);
        let mut lat = Vec::with_capacity(count);
        for _ in 0..count {
            let Some(_resp) = frames.next().await? else {
                bail!("server closed early");
            };
            let sent = rx.recv().await.context("sender gone")?;
            lat.push(sent.elapsed());
            sem2.add_permits(1);
        }
        Ok(lat)
    });
    for _ in 0..count {
        sem.acquire().await?.forget();
        tx.send(Instant::now())?;
        write_frame(&mut w, &req).await?;
        w.flush().await?;
    }
    let lat = reader.await??;
    w.shutdown().await?;
    Ok(lat)
}

enum TcpMode {
    Plain,
    Tls(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>),
}

async fn tcp_connect(
    mode: &TcpMode,
    host: u8,
) -> Result<(Box<dyn IoBox>, tokio::task::JoinHandle<Result<()>>)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, host], 0))).await?;
    let addr = listener.local_addr()?;
    let acceptor = match mode {
        TcpMode::Plain => None,
        TcpMode::Tls(sc, _) => Some(tokio_rustls::TlsAcceptor::from(sc.clone())),
    };
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        match acceptor {
            None => tcp_serve(s).await,
            Some(a) => tcp_serve(a.accept(s).await?).await,
        }
    });
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let client: Box<dyn IoBox> = match mode {
        TcpMode::Plain => Box::new(s),
        TcpMode::Tls(_, cc) => {
            let name = rustls::pki_types::ServerName::try_from(tls::server_name_for("osd.1"))?;
            Box::new(
                tokio_rustls::TlsConnector::from(cc.clone())
                    .connect(name, s)
                    .await?,
            )
        }
    };
    Ok((client, server))
}

trait IoBox: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> IoBox for T {}

async fn tcp_run(
    mode: &TcpMode,
    host: u8,
    req: Frame,
    count: usize,
    window: usize,
) -> Result<Vec<Duration>> {
    let (client, server) = tcp_connect(mode, host).await?;
    let lat = tcp_pipeline(client, req, count, window).await?;
    server.await??;
    Ok(lat)
}

async fn tcp_throughput(mode: &TcpMode, args: &Args, host: u8) -> Result<Throughput> {
    let payload = Bytes::from(vec![0x5a; args.payload_mib << 20]);
    let put = Frame::new(PUT, Bytes::from_static(b"put")).with_payload(payload);
    tcp_run(mode, host, put.clone(), 4, args.inflight).await?;
    let count = (args.total_mib / args.payload_mib).max(1);
    let (cpu0, t0) = (cpu_time(), Instant::now());
    tcp_run(mode, host, put, count, args.inflight).await?;
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_time() - cpu0);
    let bytes = count * (args.payload_mib << 20);
    Ok(Throughput {
        gbps: gb(bytes) / secs,
        cpu_s_per_gb: cpu.as_secs_f64() / gb(bytes),
    })
}

async fn tcp_latency(mode: &TcpMode, args: &Args, host: u8) -> Result<Latency> {
    let req = Frame::new(PUT, Bytes::from(vec![7u8; 64]));
    tcp_run(mode, host, req.clone(), 1000, 1).await?;
    let t0 = Instant::now();
    let mut lat = tcp_run(mode, host, req.clone(), args.ops, 1).await?;
    let serial_ops = args.ops as f64 / t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    let t0 = Instant::now();
    tcp_run(mode, host, req, args.ops, args.concurrency).await?;
    let concurrent_ops = args.ops as f64 / t0.elapsed().as_secs_f64();
    Ok(Latency {
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
        serial_ops,
        concurrent_ops,
    })
}

// ---------------------------------------------------------------- main

fn tuning(args: &Args, mtu: Option<u16>, gso: bool) -> Tuning {
    let mut t = Tuning::default();
    if let Some(m) = mtu.or(args.mtu) {
        t.max_mtu = m;
    }
    t.gso = gso && !args.no_gso;
    t.split_gso_batches = !args.no_gso_split;
    t
}

async fn sweep(args: &Args, ca: &ClusterCa) -> Result<()> {
    println!(
        "QUIC throughput, {} MiB payloads, {} in flight, one connection",
        args.payload_mib, args.inflight
    );
    println!(
        "{:>8} {:>5} {:>10} {:>10} {:>8} {:>10}",
        "max_mtu", "gso", "best GB/s", "median", "CPU-s/GB", "path MTU"
    );
    let mut host = 10;
    let mut rows = Vec::new();
    for &mtu in &args.mtus {
        for gso in [true, false] {
            let q = quic_setup(ca, &tuning(args, Some(mtu), gso), host)?;
            host += 2;
            rows.push((mtu, gso, q, Vec::new(), 0));
        }
    }
    // Interleave the runs so load changes hit every configuration alike.
    for _ in 0..args.repeat.max(1) {
        for (_, _, q, runs, path_mtu) in rows.iter_mut() {
            let (t, m) = quic_throughput(q, args).await?;
            runs.push(t);
            *path_mtu = m;
        }
    }
    for (mtu, gso, _, runs, path_mtu) in rows {
        let s = summarize(runs);
        println!(
            "{:>8} {:>5} {:>10.2} {:>10.2} {:>8.2} {:>10}",
            mtu,
            if gso { "on" } else { "off" },
            s.best.gbps,
            s.median_gbps,
            s.best.cpu_s_per_gb,
            path_mtu
        );
    }
    Ok(())
}

fn identity_configs(id: &NodeIdentity) -> Result<TcpMode> {
    let sc = tls::server_config(id, BENCH_ALPN)?;
    let cc = tls::client_config(id, ServerCheck::Named, BENCH_ALPN)?;
    Ok(TcpMode::Tls(Arc::new(sc), Arc::new(cc)))
}

async fn run(args: Args) -> Result<()> {
    let ca = ClusterCa::generate("bench")?;
    if args.sweep {
        return sweep(&args, &ca).await;
    }
    let t = tuning(&args, None, true);
    println!(
        "net-bench: {} MiB payloads x {} MiB, {} in flight; {} ops of 64 B (serial, then {} in flight)",
        args.payload_mib, args.total_mib, args.inflight, args.ops, args.concurrency
    );
    println!(
        "QUIC tuning: max_mtu {} gso {} stream window {} MiB",
        t.max_mtu,
        t.gso,
        t.stream_receive_window >> 20
    );

    let q = quic_setup(&ca, &t, 10)?;
    let plain = TcpMode::Plain;
    let tls_mode = identity_configs(&ca.issue("osd.1")?)?;
    let (mut qt, mut tt, mut st) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ql, mut tl, mut sl) = (Vec::new(), Vec::new(), Vec::new());
    let mut mtu = 0;
    // Interleaved rounds: QUIC, TCP, TCP+TLS, again.
    for round in 0..args.repeat.max(1) {
        let host = 20 + 4 * round as u8;
        tracing::info!(round, "QUIC throughput");
        let (t, m) = quic_throughput(&q, &args).await?;
        mtu = m;
        qt.push(t);
        tracing::info!(round, "TCP throughput");
        tt.push(tcp_throughput(&plain, &args, host).await?);
        tracing::info!(round, "TCP+TLS throughput");
        st.push(tcp_throughput(&tls_mode, &args, host + 1).await?);
        tracing::info!(round, "latency");
        ql.push(quic_latency(&q, &args).await?);
        tl.push(tcp_latency(&plain, &args, host + 2).await?);
        sl.push(tcp_latency(&tls_mode, &args, host + 3).await?);
    }
    drop(q);
    let (quic_t, tcp_t, tls_t) = (summarize(qt), summarize(tt), summarize(st));
    let (quic_l, tcp_l, tls_l) = (best_latency(&ql), best_latency(&tl), best_latency(&sl));

    println!();
    println!(
        "best of {} interleaved runs (median GB/s in brackets)",
        args.repeat.max(1)
    );
    println!(
        "{:<10} {:>16} {:>9} {:>10} {:>10} {:>12} {:>14}",
        "transport",
        "GB/s",
        "CPU-s/GB",
        "p50 us",
        "p99 us",
        "serial op/s",
        format!("{}-deep op/s", args.concurrency)
    );
    for (name, t, l) in [
        ("QUIC", quic_t, quic_l),
        ("TCP", tcp_t, tcp_l),
        ("TCP+TLS", tls_t, tls_l),
    ] {
        println!(
            "{:<10} {:>7.2} [{:>6.2}] {:>9.2} {:>10.1} {:>10.1} {:>12.0} {:>14.0}",
            name,
            t.best.gbps,
            t.median_gbps,
            t.best.cpu_s_per_gb,
            l.p50_us,
            l.p99_us,
            l.serial_ops,
            l.concurrent_ops
        );
    }
    println!("QUIC path MTU after discovery: {mtu}");
    println!();
    println!("ratios (QUIC / baseline; throughput and op/s: higher is better for QUIC)");
    for (name, t, l) in [("TCP", tcp_t, tcp_l), ("TCP+TLS", tls_t, tls_l)] {
        println!(
            "  vs {:<8} throughput {:.2}  serial op/s {:.2}  {}-deep op/s {:.2}  p50 latency x{:.2}",
            name,
            quic_t.best.gbps / t.best.gbps,
            quic_l.serial_ops / l.serial_ops,
            args.concurrency,
            quic_l.concurrent_ops / l.concurrent_ops,
            quic_l.p50_us / l.p50_us
        );
    }
    println!(
        "goal: >= 1.4 GB/s QUIC ({}), QUIC within 1.5x of TCP+TLS throughput ({})",
        if quic_t.best.gbps >= 1.4 {
            "met"
        } else {
            "NOT met"
        },
        if tls_t.best.gbps / quic_t.best.gbps <= 1.5 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}
