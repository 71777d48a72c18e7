//! Full stores with real processes: writes to PGs with a full member get
//! a clear `NoSpace` error while reads and removes work, health says
//! which OSDs are full, and writes resume once removes freed space.

use std::time::Duration;

use bytes::Bytes;
use shoal_client::ClientError;
use shoal_proto::osd::OsdErrorCode;
use shoal_tests::{TestCluster, TestClusterOptions, status, wait_for};

const LONG: Duration = Duration::from_secs(90);
const MIB: usize = 1 << 20;

fn body(i: usize) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; MIB])
}

async fn health_has(client: &shoal_client::Cluster, code: &str) -> bool {
    status(client)
        .await
        .is_some_and(|st| st.health.checks.iter().any(|c| c.code == code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cluster_refuses_writes_clearly_and_serves_reads_and_removes() {
    // 256 MiB stores that count as full at 30 %: about 77 MiB each.
    let cluster = TestCluster::start(&TestClusterOptions {
        osd_store_bytes: 256 << 20,
        osd_extra: "full_ratio = 0.3\nnearfull_ratio = 0.2\n".into(),
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");

    let mut written = 0;
    let refusal = loop {
        assert!(written < 250, "250 MiB written and still not full");
        match io.put(&format!("fill-{written}"), body(written)).await {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            &refusal,
            ClientError::Osd {
                code: OsdErrorCode::NoSpace,
                ..
            }
        ),
        "the refusal is a NoSpace error, not {refusal:?}"
    );
    assert!(written >= 40, "full after only {written} MiB");
    wait_for(LONG, "health OSD_FULL", || async {
        health_has(&client, "OSD_FULL").await.then_some(())
    })
    .await;

    // Reads work: every acknowledged object is intact.
    for i in 0..written {
        let got = io.get(&format!("fill-{i}")).await.expect("read while full");
        assert_eq!(got, body(i), "fill-{i}");
    }
    // Removes work, and give the space back.
    for i in 0..written / 2 {
        io.remove(&format!("fill-{i}"))
            .await
            .expect("remove while full");
    }
    wait_for(LONG, "writes accepted again", || async {
        io.put("after", body(7)).await.ok()
    })
    .await;
    assert_eq!(io.get("after").await.expect("get"), body(7));
    wait_for(LONG, "OSD_FULL cleared", || async {
        (!health_has(&client, "OSD_FULL").await).then_some(())
    })
    .await;
    for i in written / 2..written {
        let got = io.get(&format!("fill-{i}")).await.expect("read");
        assert_eq!(got, body(i), "fill-{i}");
    }
}
