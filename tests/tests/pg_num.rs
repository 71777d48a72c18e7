//! Raising a pool's `pg_num` while its PGs hold objects would hide half of
//! them (OSDs do not split PGs yet, issue 19): the monitors refuse it, and
//! every object stays readable. An empty pool's `pg_num` still grows.

use std::time::Duration;

use bytes::Bytes;
use shoal_proto::MonCommand;
use shoal_tests::{TestCluster, TestClusterOptions, status, wait_for};

const LONG: Duration = Duration::from_secs(60);

fn set_pg_num(pool: &str, n: u32) -> MonCommand {
    MonCommand::PoolSet {
        name: pool.into(),
        key: "pg_num".into(),
        value: n.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_num_of_a_pool_holding_objects_is_not_raised() {
    let cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    cluster.create_pool(&client, "empty", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    for i in 0..20u32 {
        io.put(&format!("obj-{i}"), Bytes::from(vec![i as u8; 4096]))
            .await
            .expect("put");
    }
    wait_for(LONG, "20 objects counted", || async {
        (status(&client).await?.num_objects == 20).then_some(())
    })
    .await;

    let refused = client.monc().command(set_pg_num("data", 16)).await;
    let err = refused.expect_err("raising pg_num of a pool holding objects");
    assert!(err.to_string().contains("holds objects"), "{err}");
    assert_eq!(
        client
            .monc()
            .osdmap()
            .await
            .expect("map")
            .pool_by_name("data")
            .map(|p| p.pg_num),
        Some(8)
    );
    for i in 0..20u32 {
        let got = io.get(&format!("obj-{i}")).await.expect("get");
        assert_eq!(got, Bytes::from(vec![i as u8; 4096]));
    }

    client
        .monc()
        .command(set_pg_num("empty", 16))
        .await
        .expect("an empty pool's pg_num grows");
}
