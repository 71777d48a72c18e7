//! The end-to-end harness: real Shoal daemons as child processes on
//! loopback addresses, killed with SIGKILL, restarted, inspected through
//! real clients.
//!
//! Binaries are taken from the cargo target directory of the running test
//! (`target/debug/shoal-mon`, `target/debug/shoal-osd`); `cargo test
//! --workspace` builds them before any test runs (the packages that own
//! them have integration tests).

#![deny(missing_docs)]

mod cluster;
pub mod linearizability;
mod s3;

pub use cluster::{TestCluster, TestClusterOptions, pg_ls, pgs_in, status, wait_pgs_clean};
pub use s3::{S3Gateway, S3User};

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use shoal_client::{MonClient, MonClientOptions};
use shoal_conf::ShoalConf;
use shoal_net::NodeIdentity;
use shoal_proto::{CommandOutput, MonCommand};

/// Path of a workspace binary next to the running test's target directory.
///
/// # Panics
/// When the binary was not built (run the tests with `cargo test --workspace`).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo test --workspace builds every daemon)",
        path.display()
    );
    path
}

/// Spawns daemon `bin ARGS --conf CONF` (`RUST_LOG=info`, or what
/// `SHOAL_TEST_LOG` says), its log appended to `log`.
pub(crate) fn spawn_logged(bin: &Path, args: &[String], conf: &Path, log: &Path) -> Child {
    shoal_local::daemon_command(bin, args, conf, log)
        .unwrap_or_else(|e| panic!("{e}"))
        .env(
            "RUST_LOG",
            std::env::var("SHOAL_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
}

/// Prints the last `lines` lines of daemon `who`'s log (after a failure).
pub(crate) fn print_log_tail(who: &str, log: &Path, lines: usize) {
    if let Ok(text) = std::fs::read_to_string(log) {
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        eprintln!("--- {who} log (last lines) ---");
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
    }
}

/// SIGKILLs and reaps the process in `slot`, if there is one.
pub(crate) fn kill_child(slot: &mut Option<Child>) {
    if let Some(mut child) = slot.take() {
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
}

/// Whether the process in `slot` still runs.
pub(crate) fn child_running(slot: &mut Option<Child>) -> bool {
    match slot {
        Some(c) => matches!(c.try_wait(), Ok(None)),
        None => false,
    }
}

/// `len` deterministic pseudo-random bytes (xorshift64 from `seed`):
/// other seeds give other bytes, and a copy shifted or cut short of one
/// does not match it.
pub fn pseudo_random(seed: u64, len: usize) -> bytes::Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    bytes::Bytes::from(v)
}

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what`
/// after `timeout` — also when a single check is still running then (a
/// check that blocks on a slow command must not stretch the deadline).
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline.into(), check()).await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Settings of a test monitor cluster.
#[derive(Clone, Debug)]
pub struct MonClusterOptions {
    /// Number of monitors.
    pub mons: usize,
    /// Election timeout (ms); heartbeats are a tenth, leases 60 %.
    pub election_timeout_ms: u64,
    /// Enable fault-injection commands.
    pub fault_injection: bool,
    /// OSD beacon grace (ms).
    pub osd_beacon_grace_ms: u64,
    /// Down to out (ms).
    pub down_out_interval_ms: u64,
    /// `[mon] min_down_reporters` (hosts whose reports mark an OSD down).
    pub min_down_reporters: usize,
    /// CRUSH failure domain of the default rule.
    pub failure_domain: String,
    /// Appended to `shoal.toml` right after the `[client]` keys (more
    /// `[client]` keys, then whole sections such as `[osd]`).
    pub extra_conf: String,
    /// `[global] wire_mode`.
    pub wire_mode: &'static str,
}

impl Default for MonClusterOptions {
    fn default() -> Self {
        MonClusterOptions {
            mons: 3,
            election_timeout_ms: 400,
            fault_injection: false,
            osd_beacon_grace_ms: 20_000,
            down_out_interval_ms: 600_000,
            min_down_reporters: 1,
            failure_domain: "osd".into(),
            extra_conf: String::new(),
            wire_mode: "secure",
        }
    }
}

/// A monitor cluster of child processes in a temporary directory.
pub struct MonCluster {
    /// The cluster's directory (configuration, keys, data, logs).
    pub dir: tempfile::TempDir,
    /// Path of `shoal.toml`.
    pub conf_path: PathBuf,
    /// The configuration.
    pub conf: ShoalConf,
    /// Monitor names, by rank.
    pub names: Vec<String>,
    /// Monitor addresses, by rank.
    pub addrs: Vec<SocketAddr>,
    procs: Vec<Option<Child>>,
    bin: PathBuf,
}

impl MonCluster {
    /// Writes the configuration and creates every monitor (`--mkfs`); none
    /// is started.
    pub fn create(opts: &MonClusterOptions) -> MonCluster {
        let mut dir = tempfile::tempdir().expect("tempdir");
        // SHOAL_TEST_KEEP=1 leaves the cluster's files (logs, stores) behind.
        if std::env::var_os("SHOAL_TEST_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("test cluster files kept in {}", dir.path().display());
        }
        let e = opts.election_timeout_ms;
        let spec = shoal_local::ConfSpec {
            fsid: format!("0badc0de-0000-4000-8000-{:012x}", std::process::id()),
            mons: opts.mons,
            mon_addrs: shoal_local::MonAddrs::OnePerMon,
            wire_mode: opts.wire_mode.to_string(),
            sections: vec![
                (
                    "mon".into(),
                    vec![
                        "data = \"mon.{id}\"".into(),
                        format!("election_timeout_ms = {e}"),
                        format!("heartbeat_interval_ms = {}", (e / 10).max(10)),
                        format!("lease_ms = {}", e * 6 / 10),
                        format!("fault_injection = {}", opts.fault_injection),
                        format!("osd_beacon_grace_ms = {}", opts.osd_beacon_grace_ms),
                        format!("down_out_interval_ms = {}", opts.down_out_interval_ms),
                        format!("min_down_reporters = {}", opts.min_down_reporters),
                    ],
                ),
                (
                    "client".into(),
                    vec![
                        "mon_timeout_ms = 2000".into(),
                        "command_timeout_ms = 30000".into(),
                    ],
                ),
            ],
            extra: opts.extra_conf.clone(),
        };
        let written = spec.write(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let conf_path = written.conf;
        let conf = ShoalConf::load(&conf_path).expect("load shoal.toml");
        let (names, addrs): (Vec<String>, Vec<SocketAddr>) = written.mons.into_iter().unzip();
        let bin = bin_path("shoal-mon");
        for name in &names {
            let args = shoal_local::mon_args(name, Some(&opts.failure_domain));
            if let Err(e) = shoal_local::mkfs(&bin, &args, &conf_path) {
                panic!("mkfs of mon.{name} failed: {e}");
            }
        }
        MonCluster {
            dir,
            conf_path,
            conf,
            procs: names.iter().map(|_| None).collect(),
            names,
            addrs,
            bin,
        }
    }

    /// Creates and starts every monitor.
    pub fn start(opts: &MonClusterOptions) -> MonCluster {
        let mut c = Self::create(opts);
        for i in 0..c.names.len() {
            c.start_mon(i);
        }
        c
    }

    /// The log file of monitor `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("mon.{}.log", self.names[i]))
    }

    /// Starts monitor `i` (appending to its log).
    pub fn start_mon(&mut self, i: usize) {
        assert!(
            self.procs[i].is_none(),
            "mon.{} is already running",
            self.names[i]
        );
        let args = shoal_local::mon_args(&self.names[i], None);
        let child = spawn_logged(&self.bin, &args, &self.conf_path, &self.log_path(i));
        self.procs[i] = Some(child);
    }

    /// SIGKILLs monitor `i` and reaps it.
    pub fn kill_mon(&mut self, i: usize) {
        kill_child(&mut self.procs[i]);
    }

    /// Whether monitor `i` runs (as far as this harness knows).
    pub fn is_running(&mut self, i: usize) -> bool {
        child_running(&mut self.procs[i])
    }

    /// Loads identity `name` from the cluster's keyring.
    pub fn identity(&self, name: &str) -> NodeIdentity {
        NodeIdentity::load(&self.conf.keyring_dir(), name).expect("load identity")
    }

    /// A monitor client as `name` (needs a tokio runtime).
    pub fn client_as(&self, name: &str) -> MonClient {
        let opts = MonClientOptions {
            mon_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(30),
            ..MonClientOptions::from_conf(&self.conf).expect("client options")
        };
        MonClient::new(self.identity(name), self.conf.mons().expect("mons"), opts)
            .expect("monitor client")
    }

    /// A monitor client as `client.admin`.
    pub fn admin(&self) -> MonClient {
        self.client_as("client.admin")
    }

    /// A monitor client as a new identity `name` with `caps`, issued by
    /// `auth add` through `admin`.
    pub async fn new_identity_client(
        &self,
        admin: &MonClient,
        name: &str,
        caps: &str,
    ) -> MonClient {
        let out = admin
            .command(MonCommand::AuthAdd {
                name: name.into(),
                caps: caps.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("auth add {name}: {e}"));
        let CommandOutput::Keyring(k) = out else {
            panic!("auth add {name}: {out:?}")
        };
        let identity = NodeIdentity::from_pem(
            k.cert_pem.as_bytes(),
            k.key_pem.as_bytes(),
            k.ca_pem.as_bytes(),
        )
        .expect("the issued identity");
        MonClient::new(
            identity,
            self.conf.mons().expect("mons"),
            Default::default(),
        )
        .expect("monitor client")
    }

    /// Waits (up to `timeout`) until the monitors have elected a leader;
    /// returns its index.
    pub async fn leader(&self, client: &MonClient, timeout: Duration) -> usize {
        wait_for(timeout, "a leader", || async {
            match client.command(MonCommand::MonStat).await {
                Ok(CommandOutput::MonStat(m)) => {
                    let l = m.leader?;
                    self.names.iter().position(|n| *n == l)
                }
                _ => None,
            }
        })
        .await
    }

    /// The cluster directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for MonCluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill_mon(i);
        }
        if std::thread::panicking() {
            for i in 0..self.names.len() {
                print_log_tail(&format!("mon.{}", self.names[i]), &self.log_path(i), 40);
            }
        }
    }
}
