//! `shoal.toml`: the configuration every Shoal daemon and tool reads.
//!
//! ```toml
//! [global]
//! cluster = "shoal"                       # cluster name (in certificates)
//! fsid = "2c6b1d0e-..."                   # cluster id
//! keyring = "keys"                        # directory of ca.crt and <name>.crt/.key
//! mon_host = ["a=127.0.0.1:6789", "b=127.0.0.2:6789", "c=127.0.0.3:6789"]
//!
//! [mon]
//! data = "mon.{id}"                       # each monitor's data directory
//! election_timeout_ms = 1000
//!
//! [client]
//! name = "client.admin"                   # identity the CLI uses
//!
//! [s3]                                    # the S3 gateway: see `S3Section`
//! listen = "127.0.0.1:7480"
//! ```
//!
//! Relative paths are relative to the file's directory. Unknown keys are
//! errors (a typo must not silently fall back to a default). Which file:
//! [`ShoalConf::locate`] (`--conf`, then `$SHOAL_CONF`, then `./shoal.toml`).

#![deny(missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod s3;
pub use s3::{MAX_INDEX_SHARDS, S3Section};

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is invalid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No file was given and none was found.
    #[error("no configuration: pass --conf FILE, set SHOAL_CONF, or create ./shoal.toml")]
    NotFound,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShoalConf {
    /// Settings shared by everyone.
    #[serde(default)]
    pub global: Global,
    /// Monitor settings.
    #[serde(default)]
    pub mon: MonSection,
    /// OSD daemon settings.
    #[serde(default)]
    pub osd: OsdSection,
    /// Client (CLI, library) settings.
    #[serde(default)]
    pub client: ClientSection,
    /// S3 gateway settings.
    #[serde(default)]
    pub s3: S3Section,
    /// Where the file was read from (paths in it are relative to its
    /// directory).
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[global]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Cluster name (certificates carry it).
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Cluster id, a UUID.
    #[serde(default)]
    pub fsid: String,
    /// Directory holding `ca.crt` and the identities' `<name>.crt`/`.key`.
    #[serde(default = "default_keyring")]
    pub keyring: PathBuf,
    /// The monitors: `name=ip:port` each.
    #[serde(default)]
    pub mon_host: Vec<String>,
    /// How packets are protected after the mutual-TLS handshake:
    /// `"secure"` (encrypted) or `"integrity"` (crc32c only, like Ceph's
    /// `crc` messenger mode; used on a connection only when both ends are
    /// in that mode). See `docs/net.md`.
    #[serde(default = "default_wire_mode")]
    pub wire_mode: String,
}

/// The values `[global] wire_mode` takes.
pub const WIRE_MODES: [&str; 2] = ["secure", "integrity"];

/// `[mon]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonSection {
    /// Data directory of each monitor; `{id}` becomes its name.
    pub data: String,
    /// A peon that hears no leader this long starts an election.
    pub election_timeout_ms: u64,
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Leader lease (0 disables lease reads).
    pub lease_ms: u64,
    /// Paxos slots in flight at once.
    pub paxos_window: usize,
    /// Most map transactions in one Paxos value (one epoch).
    pub max_batch: usize,
    /// An OSD that sent no beacon for this long is marked down.
    pub osd_beacon_grace_ms: u64,
    /// Distinct OSDs that must report a peer failed before it is marked down.
    pub min_down_reporters: usize,
    /// An OSD down this long is marked out (0: never automatically).
    pub down_out_interval_ms: u64,
    /// Take a snapshot (and trim the Paxos log) every this many slots.
    pub snapshot_interval: u64,
    /// Keep this many OSDMap incrementals for subscribers.
    pub keep_incrementals: u32,
    /// Accept fault-injection commands (tests only).
    pub fault_injection: bool,
    /// The leader moves a pool's `pgp_num` toward its target only while
    /// at most this fraction of all PGs is not active+clean, a step at a
    /// time that keeps it so (Ceph's `target_max_misplaced_ratio`).
    pub target_max_misplaced_ratio: f64,
}

/// `[osd]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OsdSection {
    /// Data directory of each OSD; `{id}` becomes its number.
    pub data: String,
    /// Size of the data file `--mkfs` creates, in bytes.
    pub store_bytes: u64,
    /// Address to serve on (port 0: any free port; the map records it).
    pub addr: String,
    /// CRUSH location, e.g. `host=h1` or `rack=r1, host=h1` (empty: `host=<hostname>`).
    pub location: String,
    /// Beacon to the monitors every this long.
    pub beacon_interval_ms: u64,
    /// Heartbeat PG peers every this long.
    pub heartbeat_interval_ms: u64,
    /// A peer silent this long is reported failed to the monitors.
    pub heartbeat_grace_ms: u64,
    /// Keep this many entries in each PG log.
    pub pg_log_entries: u32,
    /// Remember the request ids of this many trimmed log entries per PG
    /// (Ceph's `osd_pg_log_dups_tracked`): a client's retry of one is
    /// answered, not applied again.
    pub pg_log_dups: u32,
    /// Deadline of one request to a peer OSD (peering, recovery, proxied reads).
    pub peer_timeout_ms: u64,
    /// Accept fault-injection commands from `client.admin` (tests only):
    /// partitions between OSDs.
    pub fault_injection: bool,
    /// Refresh the copy of the clients' caps this often (caps changes
    /// reach the OSDs within it).
    pub caps_refresh_ms: u64,
    /// Memory for verified chunks of small reads (hot small objects are
    /// served without disk IO; 0 disables).
    pub read_cache_bytes: u64,
    /// Objects this OSD recovers (pushes or pulls) at once, over all its
    /// PGs (Ceph's `osd_recovery_max_active`).
    pub recovery_max_active: u32,
    /// Pause of a PG's recovery after each object it recovered, so client
    /// IO gets the disks (Ceph's `osd_recovery_sleep`; 0: none).
    pub recovery_sleep_ms: u64,
    /// PGs this OSD backfills at once (Ceph's `osd_max_backfills`).
    pub max_backfills: u32,
    /// Bytes per second this OSD spends on recovery and backfill (0: no cap).
    pub recovery_max_bytes_per_sec: u64,
    /// A store this full (used / capacity) is full: writes to the PGs it
    /// is in are refused (reads and removes go on); health says
    /// `OSD_FULL`.
    pub full_ratio: f64,
    /// A store this full raises `OSD_NEARFULL`.
    pub nearfull_ratio: f64,
    /// Each PG an OSD heads is scrubbed this often (0: only on demand).
    pub scrub_interval_ms: u64,
    /// Each PG an OSD heads is deep-scrubbed this often (0: only on demand).
    pub deep_scrub_interval_ms: u64,
}

/// The longest duration a setting may name, in milliseconds (a week).
pub const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;

/// `[client]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSection {
    /// Identity the client uses (its certificate is in the keyring).
    pub name: String,
    /// Per-request deadline towards one monitor.
    pub mon_timeout_ms: u64,
    /// Give up on a command after this long (all monitors tried).
    pub command_timeout_ms: u64,
    /// Give up on an object operation after this long (retries across map
    /// changes and OSD failures included).
    pub op_timeout_ms: u64,
    /// Deadline of one attempt at one OSD.
    pub osd_timeout_ms: u64,
    /// Pieces of one striped object read or written at once.
    pub pieces_in_flight: u32,
    /// Spread reads over every member of a PG's chain (CRAQ apportioned
    /// reads) instead of sending them to the head.
    pub balance_reads: bool,
}

fn default_cluster() -> String {
    "shoal".into()
}

fn default_wire_mode() -> String {
    WIRE_MODES[0].into()
}

fn default_keyring() -> PathBuf {
    PathBuf::from("keys")
}

impl Default for Global {
    fn default() -> Self {
        Global {
            cluster: default_cluster(),
            fsid: String::new(),
            keyring: default_keyring(),
            mon_host: Vec::new(),
            wire_mode: default_wire_mode(),
        }
    }
}

impl Default for MonSection {
    fn default() -> Self {
        MonSection {
            data: "mon.{id}".into(),
            election_timeout_ms: 1000,
            heartbeat_interval_ms: 100,
            lease_ms: 500,
            paxos_window: 4,
            max_batch: 1000,
            osd_beacon_grace_ms: 20_000,
            min_down_reporters: 2,
            down_out_interval_ms: 600_000,
            snapshot_interval: 1000,
            keep_incrementals: 500,
            fault_injection: false,
            target_max_misplaced_ratio: 0.05,
        }
    }
}

impl Default for OsdSection {
    fn default() -> Self {
        OsdSection {
            data: "osd.{id}".into(),
            store_bytes: 4 << 30,
            addr: "127.0.0.1:0".into(),
            location: String::new(),
            beacon_interval_ms: 2000,
            heartbeat_interval_ms: 500,
            heartbeat_grace_ms: 5000,
            pg_log_entries: 2000,
            pg_log_dups: 3000,
            peer_timeout_ms: 10_000,
            fault_injection: false,
            caps_refresh_ms: 30_000,
            recovery_max_active: 4,
            recovery_sleep_ms: 0,
            max_backfills: 2,
            recovery_max_bytes_per_sec: 0,
            full_ratio: 0.95,
            nearfull_ratio: 0.85,
            scrub_interval_ms: 24 * 3600 * 1000,
            deep_scrub_interval_ms: 7 * 24 * 3600 * 1000,
            read_cache_bytes: 256 << 20,
        }
    }
}

impl Default for ClientSection {
    fn default() -> Self {
        ClientSection {
            name: "client.admin".into(),
            mon_timeout_ms: 3000,
            command_timeout_ms: 30_000,
            op_timeout_ms: 60_000,
            osd_timeout_ms: 10_000,
            pieces_in_flight: 8,
            balance_reads: true,
        }
    }
}

/// One monitor from `mon_host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonAddr {
    /// Its name (`a`); its identity is `mon.<name>`.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
}

impl ShoalConf {
    /// Which file to read: `explicit` (`--conf`), else `$SHOAL_CONF`, else
    /// `./shoal.toml` if it exists.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfError> {
        if let Some(p) = explicit {
            return Ok(p.to_path_buf());
        }
        if let Some(p) = std::env::var_os("SHOAL_CONF").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let local = PathBuf::from("shoal.toml");
        if local.exists() {
            return Ok(local);
        }
        Err(ConfError::NotFound)
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<ShoalConf, ConfError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut conf = Self::parse(&text).map_err(|message| ConfError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        conf.path = path.to_path_buf();
        conf.validate().map_err(|message| ConfError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(conf)
    }

    /// Parses TOML text (no validation, no path).
    pub fn parse(text: &str) -> Result<ShoalConf, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The TOML text of this configuration.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks values that serde cannot: monitor list, timings.
    pub fn validate(&self) -> Result<(), String> {
        let mons = self.mons()?;
        if mons.is_empty() {
            return Err("[global] mon_host lists no monitors".into());
        }
        if !WIRE_MODES.contains(&self.global.wire_mode.as_str()) {
            return Err(format!(
                "[global] wire_mode must be one of {WIRE_MODES:?}, not {:?}",
                self.global.wire_mode
            ));
        }
        let m = &self.mon;
        if m.heartbeat_interval_ms == 0 || m.heartbeat_interval_ms >= m.election_timeout_ms {
            return Err(
                "[mon] heartbeat_interval_ms must be above 0 and below election_timeout_ms".into(),
            );
        }
        if m.paxos_window == 0 || m.max_batch == 0 {
            return Err("[mon] paxos_window and max_batch must be above 0".into());
        }
        if m.min_down_reporters == 0 {
            return Err("[mon] min_down_reporters must be at least 1".into());
        }
        let r = m.target_max_misplaced_ratio;
        if !(r > 0.0 && r <= 1.0) {
            return Err("[mon] target_max_misplaced_ratio must be in (0, 1]".into());
        }
        // Durations are added to clocks: keep them where that cannot
        // overflow and where they still mean something.
        let durations = [
            ("[mon] election_timeout_ms", m.election_timeout_ms),
            ("[mon] heartbeat_interval_ms", m.heartbeat_interval_ms),
            ("[mon] lease_ms", m.lease_ms),
            ("[mon] osd_beacon_grace_ms", m.osd_beacon_grace_ms),
            ("[mon] down_out_interval_ms", m.down_out_interval_ms),
            ("[osd] beacon_interval_ms", self.osd.beacon_interval_ms),
            (
                "[osd] heartbeat_interval_ms",
                self.osd.heartbeat_interval_ms,
            ),
            ("[osd] heartbeat_grace_ms", self.osd.heartbeat_grace_ms),
            ("[osd] peer_timeout_ms", self.osd.peer_timeout_ms),
            ("[osd] caps_refresh_ms", self.osd.caps_refresh_ms),
            ("[osd] recovery_sleep_ms", self.osd.recovery_sleep_ms),
            ("[osd] scrub_interval_ms", self.osd.scrub_interval_ms),
            (
                "[osd] deep_scrub_interval_ms",
                self.osd.deep_scrub_interval_ms,
            ),
            ("[client] mon_timeout_ms", self.client.mon_timeout_ms),
            (
                "[client] command_timeout_ms",
                self.client.command_timeout_ms,
            ),
            ("[client] op_timeout_ms", self.client.op_timeout_ms),
            ("[client] osd_timeout_ms", self.client.osd_timeout_ms),
        ];
        if let Some((name, v)) = durations.iter().find(|(_, v)| *v > MAX_DURATION_MS) {
            return Err(format!("{name} = {v} is above a week ({MAX_DURATION_MS})"));
        }
        let o = &self.osd;
        if o.beacon_interval_ms == 0
            || o.heartbeat_interval_ms == 0
            || o.peer_timeout_ms == 0
            || o.caps_refresh_ms == 0
        {
            return Err("[osd] intervals and timeouts must be above 0".into());
        }
        if o.heartbeat_grace_ms <= o.heartbeat_interval_ms {
            return Err("[osd] heartbeat_grace_ms must be above heartbeat_interval_ms".into());
        }
        let ratio_ok = |r: f64| r > 0.0 && r <= 1.0;
        if !ratio_ok(o.full_ratio) || !ratio_ok(o.nearfull_ratio) || o.nearfull_ratio > o.full_ratio
        {
            return Err(
                "[osd] nearfull_ratio and full_ratio must be in (0, 1], nearfull at most full"
                    .into(),
            );
        }
        if o.recovery_max_active == 0 || o.max_backfills == 0 {
            return Err("[osd] recovery_max_active and max_backfills must be at least 1".into());
        }
        if o.pg_log_entries < 16 {
            return Err("[osd] pg_log_entries must be at least 16".into());
        }
        if o.addr.parse::<SocketAddr>().is_err() {
            return Err(format!("[osd] addr {:?} is not ip:port", o.addr));
        }
        let c = &self.client;
        if c.mon_timeout_ms == 0 || c.mon_timeout_ms > c.command_timeout_ms {
            return Err(
                "[client] mon_timeout_ms must be above 0 and at most command_timeout_ms".into(),
            );
        }
        if c.osd_timeout_ms == 0 || c.osd_timeout_ms > c.op_timeout_ms {
            return Err("[client] osd_timeout_ms must be above 0 and at most op_timeout_ms".into());
        }
        if c.pieces_in_flight == 0 || c.pieces_in_flight > 1024 {
            return Err("[client] pieces_in_flight must be 1 to 1024".into());
        }
        self.s3.validate()
    }

    /// The monitors, parsed from `mon_host`.
    pub fn mons(&self) -> Result<Vec<MonAddr>, String> {
        let mut out: Vec<MonAddr> = Vec::new();
        for entry in &self.global.mon_host {
            let (name, addr) = entry
                .split_once('=')
                .ok_or_else(|| format!("mon_host entry {entry:?} is not name=ip:port"))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(format!(
                    "monitor name {name:?} must be lowercase letters, digits or '-'"
                ));
            }
            let addr: SocketAddr = addr
                .trim()
                .parse()
                .map_err(|e| format!("mon_host entry {entry:?}: bad address: {e}"))?;
            if out.iter().any(|m| m.name == name || m.addr == addr) {
                return Err(format!(
                    "mon_host entry {entry:?} repeats a name or address"
                ));
            }
            out.push(MonAddr {
                name: name.to_string(),
                addr,
            });
        }
        Ok(out)
    }

    /// `path` resolved against the configuration file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// The keyring directory, resolved.
    pub fn keyring_dir(&self) -> PathBuf {
        self.resolve(&self.global.keyring)
    }

    /// The data directory of OSD `id`, resolved.
    pub fn osd_data_dir(&self, id: i32) -> PathBuf {
        self.resolve(Path::new(&self.osd.data.replace("{id}", &id.to_string())))
    }

    /// The data directory of monitor `id`, resolved.
    pub fn mon_data_dir(&self, id: &str) -> PathBuf {
        self.resolve(Path::new(&self.mon.data.replace("{id}", id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[global]
fsid = "00000000-0000-0000-0000-000000000001"
keyring = "keys"
mon_host = ["a=127.0.0.1:6789", "b=127.0.0.2:6789"]

[mon]
data = "/var/lib/shoal/mon.{id}"
election_timeout_ms = 500

[client]
name = "client.ops"
"#;

    #[test]
    fn parses_a_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shoal.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        let conf = ShoalConf::load(&path).unwrap();
        assert_eq!(conf.global.cluster, "shoal");
        assert_eq!(conf.mons().unwrap().len(), 2);
        assert_eq!(conf.mon.election_timeout_ms, 500);
        assert_eq!(conf.mon.heartbeat_interval_ms, 100);
        assert_eq!(conf.client.name, "client.ops");
        assert_eq!(conf.keyring_dir(), dir.path().join("keys"));
        assert_eq!(
            conf.mon_data_dir("b"),
            PathBuf::from("/var/lib/shoal/mon.b")
        );
        let again = ShoalConf::parse(&conf.to_toml()).unwrap();
        assert_eq!(again.global, conf.global);
    }

    #[test]
    fn refuses_typos_and_bad_values() {
        assert!(ShoalConf::parse("[global]\nmon_hots = []\n").is_err());
        let mut c = ShoalConf::parse(SAMPLE).unwrap();
        c.global.mon_host = vec!["a=nowhere".into()];
        assert!(c.validate().unwrap_err().contains("bad address"));
        c.global.mon_host = vec!["a=127.0.0.1:1".into(), "a=127.0.0.1:2".into()];
        assert!(c.validate().is_err());
        c.global.mon_host = vec!["A=127.0.0.1:1".into()];
        assert!(c.validate().is_err());
        c.global.mon_host = vec![];
        assert!(c.validate().is_err());
        let mut c = ShoalConf::parse(SAMPLE).unwrap();
        c.client.command_timeout_ms = u64::MAX;
        assert!(c.validate().unwrap_err().contains("command_timeout_ms"));
        let mut c = ShoalConf::parse(SAMPLE).unwrap();
        c.client.mon_timeout_ms = 0;
        assert!(c.validate().unwrap_err().contains("mon_timeout_ms"));
        let mut c = ShoalConf::parse(SAMPLE).unwrap();
        c.mon.lease_ms = u64::MAX;
        assert!(c.validate().unwrap_err().contains("lease_ms"));
        let mut c = ShoalConf::parse(SAMPLE).unwrap();
        assert_eq!(c.global.wire_mode, "secure", "encrypted unless asked");
        c.global.wire_mode = "integrity".into();
        c.validate().unwrap();
        c.global.wire_mode = "crc".into();
        assert!(c.validate().unwrap_err().contains("wire_mode"));
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = ShoalConf::load(Path::new("/nonexistent/shoal.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/shoal.toml"));
    }
}
