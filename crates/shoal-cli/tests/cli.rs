//! The `shoal` command against a real three-monitor cluster.

use std::process::{Command, Output};

use shoal_tests::{MonCluster, MonClusterOptions};

fn shoal(c: &MonCluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("--conf")
        .arg(&c.conf_path)
        .args(args)
        .output()
        .expect("run shoal")
}

fn ok_json(c: &MonCluster, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = shoal(c, &all);
    assert!(
        out.status.success(),
        "shoal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn admin_commands_work_end_to_end() {
    let c = MonCluster::start(&MonClusterOptions::default());
    // mon stat: epoch, leader, quorum, each monitor's name and address
    // (polled until the monitors have elected a leader and all three are
    // in its quorum: the last one may join a moment after the election).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let stat = loop {
        let stat = ok_json(&c, &["mon", "stat"]);
        let quorum = stat["quorum"].as_array().map_or(0, |q| q.len());
        if stat["leader"].is_string() && quorum == 3 {
            break stat;
        }
        assert!(std::time::Instant::now() < deadline, "no leader: {stat}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(stat["epoch"], 1);
    let leader = stat["leader"].as_str().expect("a leader");
    assert!(c.names.iter().any(|n| n == leader));
    assert_eq!(stat["quorum"].as_array().expect("quorum").len(), 3);
    for (i, m) in stat["mons"].as_array().expect("mons").iter().enumerate() {
        assert_eq!(m["name"], c.names[i].as_str());
        assert_eq!(m["addr"], c.addrs[i].to_string());
    }

    // OSDs and pools.
    assert_eq!(ok_json(&c, &["osd", "create"])["osd"], 0);
    let created = ok_json(
        &c,
        &["pool", "create", "rbd", "--pg-num", "16", "--size", "1"],
    );
    assert_eq!(created["pool_id"], 1);
    let pools = ok_json(&c, &["pool", "ls"]);
    assert_eq!(pools[0]["name"], "rbd");
    assert_eq!(pools[0]["pg_num"], 16);
    ok_json(&c, &["pool", "set", "rbd", "pg_num", "32"]);
    assert_eq!(ok_json(&c, &["pool", "ls"])[0]["pg_num"], 32);
    ok_json(&c, &["osd", "out", "0"]);
    ok_json(&c, &["osd", "in", "0"]);
    ok_json(&c, &["osd", "reweight", "0", "0.5"]);
    let tree = ok_json(&c, &["osd", "tree"]);
    assert_eq!(tree["nodes"][0]["name"], "default");
    assert_eq!(
        tree["stray"][0], 0,
        "a created, never booted OSD is not in CRUSH yet"
    );
    let status = ok_json(&c, &["status"]);
    assert_eq!(status["num_osds"], 1);
    assert_eq!(status["num_pools"], 1);
    assert_eq!(status["num_pgs"], 32);
    // osd.0 is down and the pool has no OSD to live on.
    assert_eq!(status["health"]["status"], "HEALTH_ERR");
    let codes: Vec<&str> = status["health"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    // ... and its PGs have no member to be active on.
    assert_eq!(codes, ["OSD_DOWN", "POOL_UNDERSIZED", "PG_AVAILABILITY"]);
    let text = shoal(&c, &["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("HEALTH_ERR"));

    // A refused command exits 2 with the reason, and changes nothing.
    let bad = shoal(&c, &["pool", "rm", "rbd"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("repeat its name"));
    assert_eq!(
        ok_json(&c, &["pool", "ls"]).as_array().map(Vec::len),
        Some(1)
    );

    // auth add writes a working identity; `mon r` cannot write.
    let dir = c.path().join("issued");
    let added = ok_json(
        &c,
        &[
            "auth",
            "add",
            "client.ro",
            "mon r",
            "--out-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(added["name"], "client.ro");
    let names: Vec<String> = ok_json(&c, &["auth", "ls"])
        .as_array()
        .expect("auth ls")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["client.admin", "client.ro"]);
    std::fs::copy(
        dir.join("client.ro.crt"),
        c.conf.keyring_dir().join("client.ro.crt"),
    )
    .unwrap();
    std::fs::copy(
        dir.join("client.ro.key"),
        c.conf.keyring_dir().join("client.ro.key"),
    )
    .unwrap();
    let as_ro = |args: &[&str]| {
        let mut all = vec!["--name", "client.ro"];
        all.extend_from_slice(args);
        shoal(&c, &all)
    };
    assert!(as_ro(&["pool", "ls"]).status.success());
    let denied = as_ro(&["pool", "create", "evil"]);
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("PermissionDenied"));

    // Deleting with confirmation.
    ok_json(&c, &["pool", "rm", "rbd", "--yes-i-really-mean-it", "rbd"]);
    assert_eq!(
        ok_json(&c, &["pool", "ls"]).as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn a_missing_configuration_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["--conf", "/nonexistent/shoal.toml", "status"])
        .output()
        .expect("run shoal");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/shoal.toml"));
}
