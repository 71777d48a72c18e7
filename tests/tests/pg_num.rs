//! Raising a pool's `pg_num` splits its PGs on every OSD: each object
//! moves with its history into the child PG it hashes to now, and every
//! object stays readable and listed once, also across an OSD killed right
//! after the split and started again, and once `pgp_num` places the
//! children by themselves.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use shoal_client::IoCtx;
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
    wait_for(LONG, "16 PGs active+clean, 40 objects", || async {
        let s = status(&client).await?;
        let clean = s.pgs_by_state.iter().all(|c| c.state == "active+clean");
        (clean && s.num_pgs == 16 && s.num_objects == 40).then_some(())
    })
    .await;

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
    wait_for(LONG, "32 PGs active+clean, 60 objects", || async {
        let s = status(&client).await?;
        let clean = s.pgs_by_state.iter().all(|c| c.state == "active+clean");
        (clean && s.num_pgs == 32 && s.num_objects == 60).then_some(())
    })
    .await;
    check_objects(&io, 60).await;

    // Placement follows: the children get their own chains.
    client
        .monc()
        .command(set("data", "pgp_num", 32))
        .await
        .expect("pgp_num 8 -> 32");
    check_objects(&io, 60).await;
    wait_for(LONG, "placed by pgp_num, active+clean", || async {
        let s = status(&client).await?;
        let clean = s.pgs_by_state.iter().all(|c| c.state == "active+clean");
        (clean && s.num_objects == 60).then_some(())
    })
    .await;
    check_objects(&io, 60).await;
}
