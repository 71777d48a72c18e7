//! `shoal-osd --list-pgs` and `--dump-pg`: a stopped OSD's store read
//! offline, after a SIGKILL, shows what the OSD held.

use std::time::Duration;

use bytes::Bytes;
use shoal_client::WriteOp;
use shoal_tests::{TestCluster, TestClusterOptions, wait_pgs_clean};

const PGS: u32 = 4;

fn size_of(i: usize) -> usize {
    1000 + 37 * i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_osds_store_lists_its_pgs_objects_and_log() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    for i in 0..20 {
        io.write_op(
            &format!("obj-{i}"),
            WriteOp::new().write_full(Bytes::from(vec![b'x'; size_of(i)])),
        )
        .await
        .expect("write");
    }
    io.write_op("obj-0", WriteOp::new().remove())
        .await
        .expect("remove");
    wait_pgs_clean(&client, PGS, Duration::from_secs(60), "every PG clean").await;

    // A running OSD's store is not opened behind its back.
    let err = cluster
        .osd_command(0, &["--list-pgs"])
        .expect_err("inspecting a running OSD");
    assert!(
        err.contains("must not be running") && err.contains("already open"),
        "{err}"
    );

    cluster.kill_osd(0);
    let out = cluster.osd_command(0, &["--list-pgs"]).expect("--list-pgs");
    let mut lines = out.lines();
    assert!(lines.next().expect("header").starts_with("PG"), "{out}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    // Size 3 on 3 OSDs: this one holds every PG, and 19 objects in all.
    assert_eq!(rows.len(), PGS as usize, "{out}");
    let objects: u64 = rows
        .iter()
        .map(|r| r[1].parse::<u64>().expect("objects"))
        .sum();
    assert_eq!(objects, 19, "{out}");

    let map = client.monc().osdmap().await.expect("map");
    let pg = map.object_to_pg(io.pool_id(), "obj-7").expect("pg");
    let dump = cluster
        .osd_command(0, &["--dump-pg", &pg.to_string()])
        .expect("--dump-pg");
    assert!(dump.starts_with(&format!("pg {pg}\n")), "{dump}");
    let row = dump
        .lines()
        .find(|l| l.split_whitespace().next() == Some("obj-7"))
        .unwrap_or_else(|| panic!("obj-7 not listed:\n{dump}"));
    assert!(row.ends_with(&format!(" {} bytes", size_of(7))), "{row}");
    assert!(
        dump.lines().any(|l| l.contains(" modify  obj-7 ")),
        "no log entry for obj-7:\n{dump}"
    );
    assert!(dump.contains("missing (0):"), "{dump}");
    // The removed object is in its PG's log, not among its objects.
    let pg0 = map.object_to_pg(io.pool_id(), "obj-0").expect("pg");
    let dump0 = cluster
        .osd_command(0, &["--dump-pg", &pg0.to_string()])
        .expect("--dump-pg");
    assert!(
        dump0.lines().any(|l| l.contains(" delete  obj-0 ")),
        "{dump0}"
    );
    assert!(
        !dump0
            .lines()
            .any(|l| l.split_whitespace().next() == Some("obj-0")),
        "{dump0}"
    );

    let err = cluster
        .osd_command(0, &["--dump-pg", "9.0"])
        .expect_err("a PG the OSD does not hold");
    assert!(err.contains("holds no copy of pg 9.0"), "{err}");
    let err = cluster
        .osd_command(0, &["--dump-pg", "nonsense"])
        .expect_err("a bad PG id");
    assert!(err.contains("nonsense"), "{err}");
}
