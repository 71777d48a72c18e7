//! Self-healing under compound faults, with real processes: six OSDs on
//! three hosts, a short log (so moved PGs are backfilled), writes all
//! along; an OSD dies and is marked out, a second one dies during the
//! backfill, both come back (marked in again by their boot), the head of
//! a healing PG is killed, then every OSD is killed and restarted at
//! once. At the end every PG is clean with three copies on three hosts,
//! and no acknowledged write is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use shoal_client::{Cluster, IoCtx, Output, ReadOp, WriteOp};
use shoal_tests::{TestCluster, TestClusterOptions, pg_ls, wait_for, wait_pgs_clean};

const LONG: Duration = Duration::from_secs(120);
const PGS: u32 = 32;
const PER_HOST: i32 = 2;

fn body(tag: &str, i: usize) -> Bytes {
    let seed = format!("{tag}-{i}-");
    Bytes::from(seed.bytes().cycle().take(40_000).collect::<Vec<u8>>())
}

async fn wait_all_clean(client: &Cluster, what: &str) {
    wait_pgs_clean(client, PGS, LONG, what).await;
}

async fn wait_out(client: &Cluster, osd: i32, out: bool) {
    wait_for(LONG, &format!("osd.{osd} in={}", !out), || async {
        let map = client.monc().osdmap().await.ok()?;
        (map.is_in(osd) != out).then_some(())
    })
    .await;
}

async fn read(io: &IoCtx, name: &str) -> Bytes {
    let r = io
        .read_op(name, ReadOp::new().read(0, u64::MAX))
        .await
        .unwrap_or_else(|e| panic!("read {name}: {e}"));
    match r.outputs.into_iter().next() {
        Some(Output::Data(d)) => d,
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_through_kills_during_backfill_and_recovery() {
    let mut cluster = TestCluster::start(&TestClusterOptions {
        osds: 6,
        osds_per_host: PER_HOST as usize,
        down_out_interval_ms: 3000,
        osd_extra: "pg_log_entries = 16\n".into(),
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let mut acked: BTreeMap<String, Bytes> = BTreeMap::new();
    for i in 0..150 {
        let (name, data) = (format!("base-{i}"), body("base", i));
        io.write_op(&name, WriteOp::new().write_full(data.clone()))
            .await
            .expect("base write");
        acked.insert(name, data);
    }
    wait_all_clean(&client, "the base data clean").await;

    // A writer runs through everything; only what it was told succeeded
    // must survive.
    let stop = Arc::new(AtomicBool::new(false));
    let written: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let writer = {
        let (io, stop, written) = (
            io.with_timeout(Duration::from_secs(20)),
            stop.clone(),
            written.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (name, data) = (format!("w-{n}"), body("w", n));
                if io
                    .write_op(&name, WriteOp::new().write_full(data.clone()))
                    .await
                    .is_ok()
                {
                    written.lock().unwrap().push((name, data));
                }
                n += 1;
            }
        })
    };

    // osd.0 dies and is marked out; its PGs are backfilled elsewhere.
    cluster.kill_osd(0);
    wait_out(&client, 0, true).await;
    wait_for(LONG, "backfill under way", || async {
        let pgs = pg_ls(&client).await;
        pgs.iter()
            .any(|p| p.state.contains("backfilling") || p.state.contains("recovering"))
            .then_some(())
    })
    .await;
    // A second OSD, on another host, dies during the backfill.
    cluster.kill_osd(2);
    wait_out(&client, 2, true).await;
    // Both come back: their boot marks them in again.
    cluster.start_osd(0);
    cluster.start_osd(2);
    wait_out(&client, 0, false).await;
    wait_out(&client, 2, false).await;
    // The head of a PG that heals is killed and restarted.
    let healing = wait_for(LONG, "a PG healing", || async {
        let pgs = pg_ls(&client).await;
        pgs.into_iter()
            .find(|p| p.state.contains("backfilling") || p.state.contains("recovering"))
            .and_then(|p| p.acting.first().copied())
    })
    .await;
    cluster.kill_osd(healing as usize);
    cluster.wait_osd_up(&client, healing, false, LONG).await;
    cluster.start_osd(healing as usize);
    wait_all_clean(&client, "every PG clean after the kills").await;

    // Every OSD killed at once, and started again.
    for i in 0..6 {
        cluster.kill_osd(i);
    }
    for i in 0..6 {
        cluster.start_osd(i);
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("the writer");
    wait_all_clean(&client, "every PG clean after restarting all OSDs").await;

    acked.extend(written.lock().unwrap().drain(..));
    assert!(acked.len() > 150, "the writer got nothing acknowledged");
    let map = client.monc().osdmap().await.expect("map");
    let mut ws = map.new_workspace();
    let pool = io.pool_id();
    for (name, want) in &acked {
        assert_eq!(&read(&io, name).await, want, "{name}");
        let pg = map.object_to_pg(pool, name).expect("pg");
        let chain = map.pg_to_up_acting(pg, &mut ws).expect("up/acting").chain();
        let mut hosts: Vec<i32> = chain.iter().map(|o| o / PER_HOST).collect();
        hosts.sort();
        hosts.dedup();
        assert_eq!(hosts.len(), 3, "{name}: chain {chain:?} spans 3 hosts");
        for &osd in &chain {
            let got = cluster
                .read_copy(&client, osd, pool, name)
                .await
                .unwrap_or_else(|e| panic!("{name} on osd.{osd}: {e}"));
            assert_eq!(got.as_ref(), Some(want), "{name} on osd.{osd}");
        }
    }
}
