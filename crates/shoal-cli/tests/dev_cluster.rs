//! `shoal dev up`, object commands against the cluster it starts, and
//! `shoal dev down`, all as a user runs them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn shoal(args: &[&str], conf: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    if let Some(c) = conf {
        cmd.arg("--conf").arg(c);
    }
    cmd.args(args).output().expect("run shoal")
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Stops the dev cluster however the test ends.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let dir = self.0.display().to_string();
        let _ = shoal(&["dev", "down", "--dir", &dir, "--purge"], None);
    }
}

fn recorded_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("pids"))
        .expect("pids file")
        .lines()
        .filter_map(|l| l.split_once(' ')?.1.trim().parse().ok())
        .collect()
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn dev_up_put_get_ls_stat_rm_and_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    let dir_s = dir.display().to_string();
    let guard = Down(dir.clone());
    let up = ok(
        shoal(
            &[
                "dev",
                "up",
                "--dir",
                &dir_s,
                "--mons",
                "1",
                "--osds",
                "3",
                "--osd-size",
                "128M",
            ],
            None,
        ),
        "dev up",
    );
    let up = String::from_utf8_lossy(&up);
    assert!(up.contains("export SHOAL_CONF="), "{up}");
    assert!(up.contains("S3 gateway: http://127.0.0.1:"), "{up}");
    assert!(up.contains("AWS_SECRET_ACCESS_KEY="), "{up}");
    let conf = dir.canonicalize().expect("dir").join("shoal.toml");
    let pids = recorded_pids(&dir);
    assert_eq!(pids.len(), 5, "one monitor, three OSDs and an S3 gateway");
    assert!(pids.iter().all(|&p| alive(p)));
    // Once `up` returns, `status` has every PG active and the cluster healthy.
    let status: serde_json::Value = serde_json::from_slice(&ok(
        shoal(&["--format", "json", "status"], Some(&conf)),
        "status",
    ))
    .expect("status json");
    assert_eq!(status["health"]["status"], "HEALTH_OK", "{status}");
    assert_eq!(
        status["pgs_by_state"][0]["state"], "active+clean",
        "{status}"
    );
    // Pool `data` and the gateway's metadata and data pools.
    assert_eq!(status["pgs_by_state"][0]["count"], 96, "{status}");
    let users =
        String::from_utf8_lossy(&ok(shoal(&["s3", "user", "ls"], Some(&conf)), "s3 user ls"))
            .into_owned();
    assert!(users.starts_with("dev\t"), "{users}");
    assert!(
        !users.contains(
            up.split("AWS_SECRET_ACCESS_KEY=")
                .nth(1)
                .unwrap_or("-")
                .split_whitespace()
                .next()
                .unwrap_or("-")
        ),
        "a secret shown by ls"
    );
    // A second `up` on a running cluster is refused.
    let again = shoal(&["dev", "up", "--dir", &dir_s], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already runs"));

    // A file of three pieces in and out, and a small object through stdin/stdout.
    let body: Vec<u8> = (0..9_500_000u32)
        .map(|i| (i * 7 + i / 4099) as u8)
        .collect();
    let src = tmp.path().join("in.bin");
    std::fs::write(&src, &body).expect("write input");
    let src_s = src.display().to_string();
    ok(shoal(&["put", "data", "big", &src_s], Some(&conf)), "put");
    let dst = tmp.path().join("out.bin");
    let dst_s = dst.display().to_string();
    ok(shoal(&["get", "data", "big", &dst_s], Some(&conf)), "get");
    assert!(
        std::fs::read(&dst).expect("output") == body,
        "round trip differs"
    );

    let mut put = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("--conf")
        .arg(&conf)
        .args(["put", "data", "small", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn put");
    put.stdin
        .take()
        .expect("stdin")
        .write_all(b"hello shoal\n")
        .expect("write stdin");
    assert!(put.wait().expect("put").success());
    let got = ok(shoal(&["get", "data", "small", "-"], Some(&conf)), "get -");
    assert_eq!(got, b"hello shoal\n");

    let ls: Vec<String> = serde_json::from_slice(&ok(
        shoal(&["--format", "json", "ls", "data"], Some(&conf)),
        "ls",
    ))
    .expect("ls JSON");
    assert_eq!(ls.len(), 2);
    assert!(ls.contains(&"big".to_string()) && ls.contains(&"small".to_string()));
    let stat: serde_json::Value = serde_json::from_slice(&ok(
        shoal(&["--format", "json", "stat", "data", "big"], Some(&conf)),
        "stat",
    ))
    .expect("stat JSON");
    assert_eq!(stat["size"], 9_500_000);
    assert_eq!(stat["pieces"], 3);

    ok(shoal(&["rm", "data", "small"], Some(&conf)), "rm");
    let missing = shoal(&["get", "data", "small", "-"], Some(&conf));
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("\"small\" not found"), "{err}");
    let no_pool = shoal(&["ls", "nope"], Some(&conf));
    assert!(!no_pool.status.success());
    assert!(String::from_utf8_lossy(&no_pool.stderr).contains("no pool"));

    // Down stops exactly the recorded processes and removes the data.
    ok(
        shoal(&["dev", "down", "--dir", &dir_s, "--purge"], None),
        "dev down",
    );
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "a daemon survived dev down"
    );
    assert!(!dir.exists());
    drop(guard);
}
