//! The gateway while the cluster under it loses an OSD: uploads go on
//! (clients may see retryable errors, never a wrong answer) and every
//! acknowledged object reads back whole.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use common::{client, get_bytes, start};
use shoal_tests::pseudo_random;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_uploads_survive_an_osd_sigkill() {
    let (mut cluster, gw, user) = start().await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("faults")
        .send()
        .await
        .expect("create");
    let acked: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    let (kill_tx, kill_rx) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (c, acked, mut kill_rx) = (c.clone(), acked.clone(), kill_rx.clone());
            tokio::spawn(async move {
                for i in 0..12u64 {
                    // Half of the uploads start after the kill.
                    if i == 6 {
                        let _ = kill_rx.wait_for(|k| *k).await;
                    }
                    let key = format!("w{w}/obj{i}");
                    let data = pseudo_random(w * 100 + i, (1 << 20) + (i as usize) * 4099).to_vec();
                    let put = c
                        .put_object()
                        .bucket("faults")
                        .key(&key)
                        .body(ByteStream::from(data.clone()))
                        .send()
                        .await;
                    if put.is_ok() {
                        acked.lock().expect("acked").insert(key, data);
                    }
                }
            })
        })
        .collect();
    // Kill osd.0 once some uploads were acknowledged, while others run.
    shoal_tests::wait_for(
        std::time::Duration::from_secs(60),
        "first uploads",
        || async { (acked.lock().ok()?.len() >= 4).then_some(()) },
    )
    .await;
    cluster.kill_osd(0);
    kill_tx.send(true).expect("writers listen");
    for w in writers {
        w.await.expect("writer");
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(
        acked.len() >= 24,
        "uploads went on after the kill: {} acknowledged",
        acked.len()
    );
    for (key, data) in &acked {
        assert_eq!(
            &get_bytes(&c, "faults", key).await,
            data,
            "{key} after the kill"
        );
    }
    let listed = c
        .list_objects_v2()
        .bucket("faults")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    for key in acked.keys() {
        assert!(keys.contains(&key.as_str()), "{key} is listed");
    }
}
