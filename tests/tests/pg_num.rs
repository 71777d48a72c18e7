//! Raising a pool's `pg_num` splits its PGs on every OSD: each object
//! moves with its history into the child PG it hashes to now, and every
//! object stays readable and listed once, also across an OSD killed right
//! after the split and started again. `pgp_num` follows a step at a time
//! (the leader keeps misplaced PGs within its budget) until the children
//! are placed by themselves.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use shoal_client::{Cluster, IoCtx};
use shoal_proto::MonCommand;
use shoal_tests::{TestCluster, TestClusterOptions, status, wait_for};

const LONG: Duration = Duration::from_secs(90);

fn set_pg_num(pool: &str, n: u32) -> MonCommand {
    set(pool, "pg_num", n)
}

fn set(pool: &str, key: &str, n: u32) -> MonCommand {
    MonCommand::PoolSet {
        name: pool.into(),
        key: key.into(),
        value: n.to_string(),
    }
}

fn content(i: u32) -> Bytes {
    Bytes::from(vec![i as u8; 4096 + i as usize])
}

/// Every object `0..n` reads back whole, and the listing names each once.
async fn check_objects(io: &IoCtx, n: u32) {
    for i in 0..n {
        let got = io.get(&format!("obj-{i}")).await.expect("get");
        assert_eq!(got, content(i), "obj-{i}");
    }
    let listed = io.list_all().await.expect("list");
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "an object listed twice");
    assert_eq!(listed.len(), n as usize);
}

/// Waits until pool `data` has `pg_num` PGs all active+clean with `objects`
/// objects and `pgp_num` reached `pgp_num` (its target); returns the
/// `pgp_num` values seen on the way.
async fn wait_placed(client: &Cluster, pg_num: u32, pgp_num: u32, objects: u64) -> BTreeSet<u32> {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let what = format!("{pg_num} PGs at pgp_num {pgp_num}, active+clean, {objects} objects");
    wait_for(LONG, &what, || {
        let seen = seen.clone();
        async move {
            let map = client.monc().osdmap().await.ok()?;
            let pool = map.pool_by_name("data")?.clone();
            seen.lock().ok()?.insert(pool.pgp_num);
            let s = status(client).await?;
            let clean = s.pgs_by_state.iter().all(|c| c.state == "active+clean");
            let placed = pool.pgp_num == pgp_num && pool.pgp_num_target == pgp_num;
            (placed && clean && s.num_pgs == pg_num && s.num_objects == objects).then_some(())
        }
    })
    .await;
    seen.lock().expect("seen").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_pg_num_splits_pgs_and_keeps_every_object() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    for i in 0..40u32 {
        io.put(&format!("obj-{i}"), content(i)).await.expect("put");
    }

    client
        .monc()
        .command(set_pg_num("data", 16))
        .await
        .expect("pg_num 8 -> 16");
    check_objects(&io, 40).await;
    let seen = wait_placed(&client, 16, 16, 40).await;
    assert!(
        seen.iter().any(|&p| p > 8 && p < 16),
        "pgp_num went 8 -> 16 in steps: {seen:?}"
    );
    check_objects(&io, 40).await;

    // Writes go on into the children; an OSD killed right after the next
    // split finds its copies split when it starts again.
    for i in 40..60u32 {
        io.put(&format!("obj-{i}"), content(i)).await.expect("put");
    }
    client
        .monc()
        .command(set_pg_num("data", 32))
        .await
        .expect("pg_num 16 -> 32");
    cluster.kill_osd(1);
    check_objects(&io, 60).await;
    cluster.start_osd(1);
    wait_placed(&client, 32, 32, 60).await;
    check_objects(&io, 60).await;

    // An operator's pgp_num target is followed the same way, down too.
    client
        .monc()
        .command(set("data", "pgp_num", 20))
        .await
        .expect("pgp_num target 20");
    wait_placed(&client, 32, 20, 60).await;
    check_objects(&io, 60).await;
}
