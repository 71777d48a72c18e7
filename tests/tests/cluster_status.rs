//! `status` from the OSDs' beacon reports, on a real cluster: PGs by state,
//! objects, usage and client IO rates; a killed OSD's PGs turn undersized.

use std::time::Duration;

use bytes::Bytes;
use shoal_tests::{TestCluster, TestClusterOptions, pgs_in, status, wait_for};

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_pg_states_objects_usage_and_io() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");

    // Every PG active once the heads have reported; health says so.
    let st = wait_for(LONG, "all PGs active in status", || async {
        let st = status(&client).await?;
        (pgs_in(&st, "active+clean") == 8 && st.num_pgs == 8).then_some(st)
    })
    .await;
    assert!(
        st.health.checks.iter().all(|c| !c.code.starts_with("PG_")),
        "{:?}",
        st.health
    );

    // Writes show up as client IO, then as objects and used space.
    let writer = {
        let io = io.clone();
        tokio::spawn(async move {
            for i in 0..40u32 {
                io.put(&format!("obj-{i}"), Bytes::from(vec![i as u8; 256 << 10]))
                    .await
                    .expect("put");
            }
        })
    };
    wait_for(LONG, "write IO in status", || async {
        let st = status(&client).await?;
        (st.io.write_ops > 0 && st.io.write_bytes > 0).then_some(())
    })
    .await;
    writer.await.expect("writer");
    let st = wait_for(LONG, "40 objects counted", || async {
        let st = status(&client).await?;
        (st.num_objects == 40).then_some(st)
    })
    .await;
    assert!(st.raw_total > 0 && st.raw_used > 0 && st.raw_used < st.raw_total);

    // Removing objects lowers the count.
    for i in 0..10u32 {
        io.remove(&format!("obj-{i}")).await.expect("remove");
    }
    wait_for(LONG, "30 objects counted", || async {
        (status(&client).await?.num_objects == 30).then_some(())
    })
    .await;

    // An OSD down: every PG (size 3 on 3 OSDs) loses a member.
    cluster.kill_osd(2);
    cluster.wait_osd_up(&client, 2, false, LONG).await;
    let st = wait_for(LONG, "all PGs active+undersized", || async {
        let st = status(&client).await?;
        (pgs_in(&st, "active+undersized+degraded") == 8).then_some(st)
    })
    .await;
    assert_eq!(st.num_up_osds, 2);
    let codes: Vec<&str> = st.health.checks.iter().map(|c| c.code.as_str()).collect();
    assert!(codes.contains(&"PG_DEGRADED"), "{codes:?}");
    assert!(!codes.contains(&"PG_AVAILABILITY"), "{codes:?}");
    assert_eq!(st.num_objects, 30, "objects still counted by the new heads");
}
