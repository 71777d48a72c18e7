//! A local Shoal cluster on loopback, made the one way `shoal dev up` and
//! the end-to-end test harness both make it: the `shoal.toml` (identity,
//! monitors' addresses, wire mode, per-section settings), the daemons'
//! `--mkfs`, and their command lines. Who owns the processes afterwards
//! stays with the caller: `shoal dev` records PIDs and detaches them, the
//! harness keeps child handles and kills them with SIGKILL.

#![deny(missing_docs)]

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use thiserror::Error;

/// Why a local cluster could not be made.
#[derive(Debug, Error)]
pub enum LocalError {
    /// A file, socket or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// A daemon's `--mkfs` failed.
    #[error("{command} --mkfs failed: {stderr}")]
    Mkfs {
        /// The command (binary and arguments).
        command: String,
        /// What it wrote on stderr.
        stderr: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let what = what.into();
    move |source| LocalError::Io { what, source }
}

/// Where the monitors listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonAddrs {
    /// All on 127.0.0.1 (a development cluster).
    Shared,
    /// Monitor `i` on 127.0.0.`i + 1`: an address per daemon, so that a
    /// test can cut one daemon off by its address.
    OnePerMon,
}

/// What goes into a cluster's `shoal.toml`.
#[derive(Debug, Clone)]
pub struct ConfSpec {
    /// The cluster's id (see [`random_fsid`]).
    pub fsid: String,
    /// Number of monitors (named `a`, `b`, ...).
    pub mons: usize,
    /// Where they listen.
    pub mon_addrs: MonAddrs,
    /// `[global] wire_mode`.
    pub wire_mode: String,
    /// Sections after `[global]`, in order: name and `key = value` lines.
    pub sections: Vec<(String, Vec<String>)>,
    /// Text appended verbatim (more lines of the last section, then whole
    /// sections).
    pub extra: String,
}

/// A written configuration.
#[derive(Debug, Clone)]
pub struct Written {
    /// The `shoal.toml`.
    pub conf: PathBuf,
    /// The monitors: name and address, by rank.
    pub mons: Vec<(String, SocketAddr)>,
}

impl ConfSpec {
    /// Writes `DIR/shoal.toml` (keys under `DIR/keys`, each daemon's data
    /// under `DIR/<daemon>`), choosing free ports for the monitors.
    pub fn write(&self, dir: &Path) -> Result<Written, LocalError> {
        let mut mons = Vec::with_capacity(self.mons);
        for (i, name) in mon_names(self.mons).into_iter().enumerate() {
            let ip = match self.mon_addrs {
                MonAddrs::Shared => "127.0.0.1".to_string(),
                MonAddrs::OnePerMon => format!("127.0.0.{}", i + 1),
            };
            let port = free_udp_port(&ip)?;
            let addr = format!("{ip}:{port}")
                .parse()
                .map_err(|e| io("a monitor address")(std::io::Error::other(e)))?;
            mons.push((name, addr));
        }
        let text = self.text(&mons);
        let conf = dir.join("shoal.toml");
        std::fs::write(&conf, text).map_err(io(format!("writing {}", conf.display())))?;
        Ok(Written { conf, mons })
    }

    fn text(&self, mons: &[(String, SocketAddr)]) -> String {
        let hosts: Vec<String> = mons.iter().map(|(n, a)| format!("\"{n}={a}\"")).collect();
        let mut t = String::new();
        let _ = writeln!(
            t,
            "[global]\nfsid = \"{}\"\nkeyring = \"keys\"\nmon_host = [{}]\nwire_mode = \"{}\"",
            self.fsid,
            hosts.join(", "),
            self.wire_mode
        );
        for (name, lines) in &self.sections {
            let _ = writeln!(t, "\n[{name}]");
            for l in lines {
                let _ = writeln!(t, "{l}");
            }
        }
        t.push_str(&self.extra);
        t
    }
}

/// Monitor names by rank: `a`, `b`, ...
pub fn mon_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| ((b'a' + i as u8) as char).to_string())
        .collect()
}

/// A free UDP port on `ip` (bound, then released).
pub fn free_udp_port(ip: &str) -> Result<u16, LocalError> {
    let s = UdpSocket::bind((ip, 0)).map_err(io(format!("binding a probe socket on {ip}")))?;
    Ok(s.local_addr()
        .map_err(io("a probe socket's address"))?
        .port())
}

/// `preferred` if a TCP listener can bind it on `ip`, else a free port.
pub fn free_tcp_port(ip: &str, preferred: u16) -> Result<u16, LocalError> {
    if TcpListener::bind((ip, preferred)).is_ok() {
        return Ok(preferred);
    }
    let l = TcpListener::bind((ip, 0)).map_err(io(format!("binding a probe socket on {ip}")))?;
    Ok(l.local_addr()
        .map_err(io("a probe socket's address"))?
        .port())
}

/// A fresh cluster id in the UUID form.
pub fn random_fsid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u32(std::process::id());
        *w = h.finish();
    }
    let hex = format!("{:016x}{:016x}", words[0], words[1]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Arguments of monitor `name` (with `failure_domain`, for its `--mkfs`:
/// the CRUSH failure domain of the default rule).
pub fn mon_args(name: &str, failure_domain: Option<&str>) -> Vec<String> {
    let mut args = vec!["--id".to_string(), name.to_string()];
    if let Some(d) = failure_domain {
        args.extend(["--failure-domain".to_string(), d.to_string()]);
    }
    args
}

/// Arguments of OSD `id` at CRUSH `location` (e.g. `host=h1`), listening
/// on `addr` when given (else as configured).
pub fn osd_args(id: usize, location: &str, addr: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--id".to_string(),
        id.to_string(),
        "--location".to_string(),
        location.to_string(),
    ];
    if let Some(a) = addr {
        args.extend(["--addr".to_string(), a.to_string()]);
    }
    args
}

/// Runs `bin ARGS --mkfs --conf CONF` to completion.
pub fn mkfs(bin: &Path, args: &[String], conf: &Path) -> Result<(), LocalError> {
    let out = Command::new(bin)
        .args(args)
        .arg("--mkfs")
        .arg("--conf")
        .arg(conf)
        .output()
        .map_err(io(format!("running {}", bin.display())))?;
    if out.status.success() {
        return Ok(());
    }
    Err(LocalError::Mkfs {
        command: format!("{} {}", bin.display(), args.join(" ")),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// The command that runs daemon `bin ARGS --conf CONF`: no input, no
/// output, its log (stderr) appended to `log`. The caller adds what it
/// needs (environment, process group) and spawns it.
pub fn daemon_command(
    bin: &Path,
    args: &[String],
    conf: &Path,
    log: &Path,
) -> Result<Command, LocalError> {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(format!("opening {}", log.display())))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .arg("--conf")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_every_monitor_and_keeps_sections_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ConfSpec {
            fsid: random_fsid(),
            mons: 3,
            mon_addrs: MonAddrs::OnePerMon,
            wire_mode: "secure".into(),
            sections: vec![
                ("mon".into(), vec!["data = \"mon.{id}\"".into()]),
                ("osd".into(), vec!["store_bytes = 1".into()]),
            ],
            extra: "op_timeout_ms = 5\n".into(),
        };
        let w = spec.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(&w.conf).unwrap();
        let names: Vec<&str> = w.mons.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(w.mons[2].1.ip().to_string(), "127.0.0.3");
        for (n, a) in &w.mons {
            assert!(text.contains(&format!("\"{n}={a}\"")), "{text}");
        }
        let mon = text.find("[mon]").unwrap();
        let osd = text.find("[osd]").unwrap();
        assert!(mon < osd && text.ends_with("store_bytes = 1\nop_timeout_ms = 5\n"));
    }

    #[test]
    fn fsids_look_like_uuids() {
        let f = random_fsid();
        assert_eq!(f.len(), 36);
        assert_eq!(f.matches('-').count(), 4);
    }

    #[test]
    fn a_failed_mkfs_says_what_failed() {
        let err = mkfs(
            Path::new("false"),
            &["--id".into(), "a".into()],
            Path::new("x"),
        );
        assert!(
            matches!(err, Err(LocalError::Mkfs { ref command, .. }) if command == "false --id a")
        );
        let missing = mkfs(Path::new("/nonexistent/shoal-mon"), &[], Path::new("x"));
        assert!(matches!(missing, Err(LocalError::Io { .. })));
    }
}
