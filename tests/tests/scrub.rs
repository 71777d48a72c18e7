//! Scrub and repair with real processes: a byte flipped on one replica's
//! disk is caught by its checksums; reads stay correct; a deep scrub
//! reports the bad copy, repair fixes it; a read that hits a bad copy is
//! served from another and the copy is repaired without an operator.

use std::time::Duration;

use bytes::Bytes;
use shoal_client::{Cluster, IoCtx, Output, ReadOp, WriteOp};
use shoal_map::PgId;
use shoal_proto::osd::ScrubResult;
use shoal_tests::{TestCluster, TestClusterOptions, pg_ls, wait_for};

const LONG: Duration = Duration::from_secs(90);

fn body(i: u8) -> Bytes {
    Bytes::from((0..300_000u32).map(|k| (k as u8) ^ i).collect::<Vec<u8>>())
}

async fn put(io: &IoCtx, name: &str, data: Bytes) {
    io.write_op(name, WriteOp::new().write_full(data))
        .await
        .unwrap_or_else(|e| panic!("write {name}: {e}"));
}

/// The PG of `name` and its chain.
fn placement(client: &Cluster, pool: i64, name: &str) -> (PgId, Vec<i32>) {
    let map = client.osdmap();
    let pg = map.object_to_pg(pool, name).expect("pg");
    let chain = map
        .pg_to_up_acting(pg, &mut map.new_workspace())
        .expect("up/acting")
        .chain();
    (pg, chain)
}

async fn pg_state(client: &Cluster, pg: PgId) -> String {
    pg_ls(client)
        .await
        .into_iter()
        .find(|p| p.pgid == pg.to_string())
        .map(|p| p.state)
        .unwrap_or_default()
}

/// Scrubs `pg` once its head is active (it re-peers after a restart).
async fn scrub(client: &Cluster, pg: PgId, deep: bool, repair: bool) -> ScrubResult {
    wait_for(LONG, "a scrub at an active head", || async {
        client.pg_scrub(pg, deep, repair).await.ok()
    })
    .await
}

async fn wait_active(client: &Cluster, pg: PgId) {
    wait_for(LONG, "the PG active+clean", || async {
        pg_state(client, pg)
            .await
            .starts_with("active+clean")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_replica_is_found_by_deep_scrub_repaired_and_never_served() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 4, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let pool = io.pool_id();
    for i in 0..12u8 {
        put(&io, &format!("obj-{i}"), body(i)).await;
    }
    let (pg, chain) = placement(&client, pool, "obj-3");
    let victim = *chain.last().expect("a tail");
    assert_ne!(chain[0], victim);
    wait_active(&client, pg).await;

    // A light scrub of a healthy PG finds nothing.
    let clean = scrub(&client, pg, false, false).await;
    assert!(
        clean.objects > 0 && clean.inconsistent.is_empty(),
        "{clean:?}"
    );

    cluster.corrupt_copy(&client, victim, pool, "obj-3").await;
    wait_active(&client, pg).await;

    // The deep scrub reports the bad copy, and the PG says so.
    let found = scrub(&client, pg, true, false).await;
    assert_eq!(found.inconsistent.len(), 1, "{found:?}");
    let bad = &found.inconsistent[0];
    assert_eq!(
        (bad.object.as_str(), bad.bad.as_slice()),
        ("obj-3", &[victim][..])
    );
    assert!(bad.why.contains("read error"), "{}", bad.why);
    let state = pg_state(&client, pg).await;
    wait_for(LONG, "the PG inconsistent", || async {
        pg_state(&client, pg)
            .await
            .contains("inconsistent")
            .then_some(())
    })
    .await;
    // Reads at the head stay correct meanwhile.
    let read = io
        .read_op("obj-3", ReadOp::new().read(0, u64::MAX))
        .await
        .expect("read");
    assert_eq!(read.outputs, vec![Output::Data(body(3))], "{state}");

    // Repair fixes it: a second deep scrub is clean, every copy reads right.
    let fixed = scrub(&client, pg, true, true).await;
    assert_eq!(fixed.repaired, 1, "{fixed:?}");
    let again = scrub(&client, pg, true, false).await;
    assert!(again.inconsistent.is_empty(), "{again:?}");
    for &osd in &chain {
        let got = cluster
            .read_copy(&client, osd, pool, "obj-3")
            .await
            .expect("read a copy");
        assert_eq!(got, Some(body(3)), "obj-3 on osd.{osd}");
    }
    wait_for(LONG, "the PG consistent again", || async {
        (!pg_state(&client, pg).await.contains("inconsistent")).then_some(())
    })
    .await;

    // Read repair: a read that meets the bad copy is answered from a good
    // one, and the bad copy is repaired without an operator.
    let (pg7, chain7) = placement(&client, pool, "obj-7");
    let member = *chain7.last().expect("a tail");
    cluster.corrupt_copy(&client, member, pool, "obj-7").await;
    wait_active(&client, pg7).await;
    scrub(&client, pg7, false, false).await;
    let got = cluster
        .read_copy(&client, member, pool, "obj-7")
        .await
        .expect("read the bad copy's OSD");
    assert_eq!(got, Some(body(7)), "served from a good copy");
    wait_for(LONG, "the bad copy repaired", || async {
        let r = client.pg_scrub(pg7, true, false).await.ok()?;
        r.inconsistent.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_deep_scrubs_find_a_bad_copy_by_themselves() {
    let mut cluster = TestCluster::start(&TestClusterOptions {
        osd_extra: "scrub_interval_ms = 1000\ndeep_scrub_interval_ms = 1000\n".into(),
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 4, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let pool = io.pool_id();
    for i in 0..8u8 {
        put(&io, &format!("obj-{i}"), body(i)).await;
    }
    let (pg, chain) = placement(&client, pool, "obj-5");
    cluster.corrupt_copy(&client, chain[1], pool, "obj-5").await;
    // Nobody reads it or asks for a scrub: the schedule finds it.
    wait_for(LONG, "the PG inconsistent by schedule", || async {
        pg_state(&client, pg)
            .await
            .contains("inconsistent")
            .then_some(())
    })
    .await;
    let fixed = scrub(&client, pg, true, true).await;
    assert_eq!(fixed.repaired, 1, "{fixed:?}");
    wait_for(LONG, "the PG consistent again", || async {
        (!pg_state(&client, pg).await.contains("inconsistent")).then_some(())
    })
    .await;
}
