//! `shoal dev up|down`: a complete local cluster on loopback, started in
//! one command and stopped by the PIDs it recorded.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use shoal_client::Cluster;
use shoal_conf::ShoalConf;
use shoal_proto::mon::{CommandOutput, MonCommand};

use crate::args::DevCmd;

/// What `dev up` builds.
struct Spec {
    mons: usize,
    osds: usize,
    osd_bytes: u64,
    wire_mode: String,
    /// Start an S3 gateway.
    s3: bool,
}

/// The file keeping the first S3 user's keys (0600), printed by every `up`.
const S3_KEYS: &str = "s3-user.keys";
/// The first S3 user.
const S3_USER: &str = "dev";
/// The port the gateway takes when it is free.
const S3_PORT: u16 = 7480;

/// The file listing the started processes: `NAME PID` per line.
const PIDS: &str = "pids";
/// The pool `dev up` creates.
const POOL: &str = "data";

/// Runs a `shoal dev` command.
pub async fn run(cmd: DevCmd, json: bool) -> Result<()> {
    match cmd {
        DevCmd::Up {
            dir,
            mons,
            osds,
            osd_size,
            wire_mode,
            no_s3,
        } => {
            let spec = Spec {
                mons,
                osds,
                osd_bytes: parse_size(&osd_size)?,
                wire_mode,
                s3: !no_s3,
            };
            up(dir, spec, json).await
        }
        DevCmd::Down { dir, purge } => tokio::task::spawn_blocking(move || down(&dir, purge))
            .await
            .context("stopping the daemons")?,
    }
}

/// Parses `4G`, `512M`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => bail!("size {s:?}: unknown unit {c:?} (K, M, G, T)"),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = num
        .trim()
        .parse()
        .with_context(|| format!("size {s:?} is not a number with an optional K, M, G or T"))?;
    n.checked_mul(1 << shift)
        .with_context(|| format!("size {s:?} is too large"))
}

/// A daemon binary next to this `shoal`, else from `PATH`.
fn daemon_bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn write_conf(dir: &Path, mons: usize, osd_bytes: u64, wire_mode: &str) -> Result<PathBuf> {
    let s3_port = shoal_local::free_tcp_port("127.0.0.1", S3_PORT)?;
    let spec = shoal_local::ConfSpec {
        fsid: shoal_local::random_fsid(),
        mons,
        mon_addrs: shoal_local::MonAddrs::Shared,
        wire_mode: wire_mode.to_string(),
        sections: vec![
            ("mon".into(), vec!["data = \"mon.{id}\"".into()]),
            (
                "osd".into(),
                vec![
                    "data = \"osd.{id}\"".into(),
                    format!("store_bytes = {osd_bytes}"),
                ],
            ),
            ("client".into(), vec!["name = \"client.admin\"".into()]),
            (
                "s3".into(),
                vec![format!("listen = \"127.0.0.1:{s3_port}\"")],
            ),
        ],
        extra: String::new(),
    };
    Ok(spec.write(dir)?.conf)
}

/// Starts a daemon in a process group of its own (a terminal's Ctrl-C
/// does not reach it), logging to `DIR/NAME.log`; records its PID.
fn spawn(dir: &Path, name: &str, bin: &Path, args: &[String], conf: &Path) -> Result<u32> {
    let log = dir.join(format!("{name}.log"));
    let child = shoal_local::daemon_command(bin, args, conf, &log)?
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let mut pids = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(PIDS))
        .context("opening the PID file")?;
    use std::io::Write;
    writeln!(pids, "{name} {pid}").context("recording the PID")?;
    Ok(pid)
}

/// The recorded processes that still run this cluster's configuration.
fn running(dir: &Path) -> Result<Vec<(String, i32)>> {
    let text = match std::fs::read_to_string(dir.join(PIDS)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("reading the PID file"),
    };
    let conf = dir.join("shoal.toml");
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, pid)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<i32>() else {
            continue;
        };
        if runs_with_conf(pid, &conf) {
            out.push((name.to_string(), pid));
        }
    }
    Ok(out)
}

/// Whether process `pid` is alive and was started with `--conf conf` (so a
/// recycled PID is never taken for one of ours).
fn runs_with_conf(pid: i32, conf: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    let want = conf.as_os_str().as_encoded_bytes();
    !zombie && cmdline.split(|&b| b == 0).any(|arg| arg == want)
}

/// What `start_daemons` started.
struct Started {
    dir: PathBuf,
    conf_path: PathBuf,
    conf: ShoalConf,
    mon_names: Vec<String>,
    osd_ids: Vec<usize>,
}

/// Creates the cluster (unless `dir` holds one) and starts its daemons:
/// process launches and waits, so it runs off the async threads.
fn start_daemons(dir: &Path, spec: &Spec) -> Result<Started> {
    let Spec {
        mons,
        osds,
        osd_bytes,
        ..
    } = *spec;
    ensure!((1..=7).contains(&mons), "--mons must be 1 to 7");
    ensure!((1..=64).contains(&osds), "--osds must be 1 to 64");
    ensure!(osd_bytes >= 64 << 20, "--osd-size must be at least 64M");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let live = running(&dir)?;
    ensure!(
        live.is_empty(),
        "a cluster already runs in {} ({} processes): `shoal dev down --dir {}` first",
        dir.display(),
        live.len(),
        dir.display()
    );
    let _ = std::fs::remove_file(dir.join(PIDS));
    let conf_path = dir.join("shoal.toml");
    let fresh = !conf_path.exists();
    if fresh {
        write_conf(&dir, mons, osd_bytes, &spec.wire_mode)?;
    }
    let conf = ShoalConf::load(&conf_path)?;
    let (mon_bin, osd_bin) = (daemon_bin("shoal-mon"), daemon_bin("shoal-osd"));
    let names: Vec<String> = conf
        .mons()
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .map(|m| m.name)
        .collect();
    for name in &names {
        let args = shoal_local::mon_args(name, None);
        if fresh {
            shoal_local::mkfs(&mon_bin, &args, &conf_path)?;
        }
        spawn(&dir, &format!("mon.{name}"), &mon_bin, &args, &conf_path)?;
    }
    let osd_ids: Vec<usize> = if fresh {
        (0..osds).collect()
    } else {
        existing_osds(&dir)
    };
    for &i in &osd_ids {
        let args = shoal_local::osd_args(i, &format!("host=host{i}"), None);
        if fresh {
            shoal_local::mkfs(&osd_bin, &args, &conf_path)?;
        }
        spawn(&dir, &format!("osd.{i}"), &osd_bin, &args, &conf_path)?;
    }
    Ok(Started {
        dir,
        conf_path,
        conf,
        mon_names: names,
        osd_ids,
    })
}

async fn up(dir: PathBuf, spec: Spec, json: bool) -> Result<()> {
    let started = Instant::now();
    let with_s3 = spec.s3;
    let Started {
        dir,
        conf_path,
        conf,
        mon_names: names,
        osd_ids,
    } = tokio::task::spawn_blocking(move || start_daemons(&dir, &spec))
        .await
        .context("starting the daemons")??;
    let cluster = Cluster::connect(&conf).await?;
    let size = osd_ids.len().min(3) as u32;
    if cluster.osdmap().pool_by_name(POOL).is_none() {
        cluster.create_pool(POOL, 32, size, 0).await?;
    }
    // Listing every PG of the pool succeeds only once each PG's head is active.
    let io = cluster
        .ioctx(POOL)
        .await?
        .with_timeout(Duration::from_secs(120));
    let mut cursor = shoal_client::ListCursor::default();
    while let Some(next) = io.list_objects(&cursor, 1000).await?.next {
        cursor = next;
    }
    let s3 = if with_s3 {
        Some(start_s3(&dir, &conf_path, &conf, &cluster).await?)
    } else {
        None
    };
    // And `status` says so (the heads report their PGs with a beacon).
    wait_status_active(&cluster, Duration::from_secs(60)).await?;
    let conf_str = conf_path.display();
    if json {
        let s3_json = s3.as_ref().map(|(endpoint, key)| {
            serde_json::json!({
                "endpoint": endpoint, "user": S3_USER,
                "access_key": key.access_key, "secret_key": key.secret_key,
            })
        });
        println!(
            "{}",
            serde_json::json!({
                "dir": dir, "conf": conf_path, "mons": names.len(), "osds": osd_ids.len(),
                "pool": POOL, "seconds_to_active": started.elapsed().as_secs_f64(),
                "s3": s3_json,
            })
        );
    } else {
        println!(
            "cluster up in {}: {} monitors, {} OSDs, pool {POOL:?} (size {size}) active\n\n\
             \x20 export SHOAL_CONF={conf_str}\n\
             \x20 shoal status\n\
             \x20 shoal put {POOL} hello /etc/hostname && shoal get {POOL} hello -",
            dir.display(),
            names.len(),
            osd_ids.len(),
        );
        if let Some((endpoint, key)) = &s3 {
            println!(
                "\nS3 gateway: {endpoint} (region us-east-1, path-style), user {S3_USER:?}\n\
                 \x20 export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}\n\
                 \x20 aws --endpoint-url {endpoint} s3 mb s3://photos",
                key.access_key, key.secret_key
            );
        }
        println!(
            "\nstop it with: shoal dev down --dir {} [--purge]",
            dir.display()
        );
    }
    Ok(())
}

/// Starts the S3 gateway, waits until it accepts connections, and makes
/// (once, kept in `DIR/s3-user.keys`) the first user. The endpoint and
/// that user's keys.
async fn start_s3(
    dir: &Path,
    conf_path: &Path,
    conf: &ShoalConf,
    cluster: &Cluster,
) -> Result<(String, shoal_s3::model::users::NewKey)> {
    // The gateway creates its pools when they are missing; create them
    // here first so that the user can be stored while it starts.
    let pools = shoal_s3::open_pools(cluster, &conf.s3).await?;
    let bin = daemon_bin("shoal-s3");
    spawn(dir, "s3", &bin, &[], conf_path)?;
    let addr: std::net::SocketAddr = conf.s3.listen.parse()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        ensure!(
            Instant::now() < deadline,
            "the S3 gateway did not listen on {addr} within 60 s (see {})",
            dir.join("s3.log").display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys_file = dir.join(S3_KEYS);
    let key = match std::fs::read_to_string(&keys_file) {
        Ok(text) => {
            let (a, s) = text
                .trim()
                .split_once(' ')
                .with_context(|| format!("{} is not ACCESS SECRET", keys_file.display()))?;
            shoal_s3::model::users::NewKey {
                access_key: a.to_string(),
                secret_key: s.to_string(),
            }
        }
        Err(_) => {
            let users = shoal_s3::model::users::Users::new(pools.meta);
            let key = users.create(S3_USER, "Development user").await?;
            shoal_net::files::write_private(
                &keys_file,
                format!("{} {}\n", key.access_key, key.secret_key).as_bytes(),
            )?;
            key
        }
    };
    let scheme = if conf.s3.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    Ok((format!("{scheme}://{addr}"), key))
}

/// The OSD ids with a data directory in `dir` (`osd.N`).
/// Waits until the monitors' `status` shows every PG active.
async fn wait_status_active(cluster: &Cluster, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = cluster.monc().command(MonCommand::Status).await?;
        if let CommandOutput::Status(st) = out
            && st.pgs_by_state.iter().all(|p| p.state == "active+clean")
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("PGs not all active in status after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn existing_osds(dir: &Path) -> Vec<usize> {
    let mut ids: Vec<usize> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("osd.")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

fn down(dir: &Path, purge: bool) -> Result<()> {
    ensure!(
        dir.join("shoal.toml").exists(),
        "{} holds no dev cluster (no shoal.toml)",
        dir.display()
    );
    let dir = dir.canonicalize()?;
    let procs = running(&dir)?;
    for (name, pid) in &procs {
        if let Some(p) = rustix::process::Pid::from_raw(*pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
            tracing::debug!(name, pid, "sent SIGTERM");
        }
    }
    let conf = dir.join("shoal.toml");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && procs.iter().any(|(_, pid)| runs_with_conf(*pid, &conf)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (_, pid) in &procs {
        if runs_with_conf(*pid, &conf)
            && let Some(p) = rustix::process::Pid::from_raw(*pid)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
    let _ = std::fs::remove_file(dir.join(PIDS));
    println!("stopped {} processes", procs.len());
    if purge {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        println!("removed {}", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("4X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
