//! Self-healing with real processes: a chain member that was down comes
//! back and gets exactly the objects it missed, while the PG serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use shoal_client::{IoCtx, Output, ReadOp, WriteOp};
use shoal_proto::mon::{CommandOutput, KeyValue, MonCommand};
use shoal_proto::report::{OsdDfEntry, StatusReport};
use shoal_tests::{
    TestCluster, TestClusterOptions, pg_ls, pgs_in, status, wait_for, wait_pgs_clean,
};

const LONG: Duration = Duration::from_secs(90);

fn body(tag: &str, i: usize, len: usize) -> Bytes {
    let seed = format!("{tag}-{i}-");
    Bytes::from(seed.bytes().cycle().take(len).collect::<Vec<u8>>())
}

async fn read(io: &IoCtx, name: &str) -> Option<Bytes> {
    match io.read_op(name, ReadOp::new().read(0, u64::MAX)).await {
        Ok(r) => match r.outputs.into_iter().next() {
            Some(Output::Data(d)) => Some(d),
            other => panic!("{name}: unexpected output {other:?}"),
        },
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("read {name}: {e}"),
    }
}

async fn write_full(io: &IoCtx, name: &str, data: Bytes) {
    io.write_op(name, WriteOp::new().write_full(data))
        .await
        .unwrap_or_else(|e| panic!("write {name}: {e}"));
}

/// Waits until every PG is `active+clean` and nothing is degraded.
async fn wait_clean(client: &shoal_client::Cluster, pgs: u32) -> StatusReport {
    wait_for(LONG, "every PG active+clean", || async {
        let st = status(client).await?;
        (pgs_in(&st, "active+clean") == pgs && st.degraded_objects == 0).then_some(st)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_osd_gets_only_what_it_missed_and_writes_wait_for_its_copy() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    // Recovery pauses after each object so that client writes meet
    // objects the returning OSD still lacks: limits set while the OSDs
    // run (they read them with their beacons).
    for (key, value) in [("recovery_sleep_ms", "300"), ("recovery_max_active", "1")] {
        client
            .monc()
            .command(MonCommand::ConfigKeySet {
                key: format!("osd/{key}"),
                value: value.as_bytes().to_vec(),
            })
            .await
            .expect("config-key set");
    }
    const PGS: u32 = 8;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    for i in 0..40 {
        write_full(&io, &format!("old-{i}"), body("v1", i, 20_000)).await;
    }
    wait_clean(&client, PGS).await;

    cluster.kill_osd(2);
    cluster.wait_osd_up(&client, 2, false, LONG).await;
    // While osd.2 is down (size 3 over 3 OSDs: it is in every PG):
    // 20 new objects, 10 overwrites, 5 removals.
    for i in 0..20 {
        write_full(&io, &format!("new-{i}"), body("v1", i, 30_000)).await;
    }
    for i in 0..10 {
        write_full(&io, &format!("old-{i}"), body("v2", i, 10_000)).await;
    }
    for i in 30..35 {
        io.write_op(&format!("old-{i}"), WriteOp::new().remove())
            .await
            .expect("remove");
    }
    let missed: u64 = 20 + 10 + 5;
    let before = status(&client).await.expect("status").recovered.objects;

    cluster.start_osd(2);
    cluster.wait_osd_up(&client, 2, true, LONG).await;
    // `pg ls` shows the PGs that recover, and `pg query` at their head
    // what osd.2 lacks.
    let recovering = wait_for(LONG, "PGs recovering", || async {
        let pgs = pg_ls(&client).await;
        let lacking: u64 = pgs
            .iter()
            .filter(|p| p.state == "active+recovering+degraded")
            .map(|p| p.missing)
            .sum();
        let one = pgs.iter().find(|p| p.missing > 0)?;
        let detail = client.pg_detail(one.pgid.parse().ok()?, None).await.ok()?;
        let on2 = detail.missing.iter().find(|m| m.osd == 2)?;
        assert_eq!(detail.role, "head");
        assert_eq!(on2.count as usize, on2.objects.len(), "{detail:?}");
        (lacking > 0).then_some(lacking)
    })
    .await;
    assert!(recovering <= missed, "{recovering} degraded copies");
    // Appends to objects osd.2 may still lack: each is recovered on it
    // before the append passes it, or osd.2 would append to nothing.
    for i in 0..20 {
        io.write_op(
            &format!("new-{i}"),
            WriteOp::new().append(Bytes::from_static(b"+tail")),
        )
        .await
        .expect("append");
    }

    let st = wait_clean(&client, PGS).await;
    for p in pg_ls(&client).await {
        assert_eq!((p.state.as_str(), p.missing), ("active+clean", 0), "{p:?}");
        assert_eq!(p.acting.len(), 3, "{p:?}");
        let pg = p.pgid.parse().expect("pg id");
        let head = client.pg_detail(pg, None).await.expect("pg query");
        assert_eq!(
            (head.role.as_str(), head.state.as_str()),
            ("head", "active+clean")
        );
        assert!(head.missing.is_empty(), "{head:?}");
        // osd.2's copy: a member with the head's log and nothing missing.
        let mine = client.pg_detail(pg, Some(2)).await.expect("pg query");
        assert_ne!(mine.role, "stray");
        assert_eq!(mine.last_update, head.last_update, "{p:?}");
        assert!(mine.missing.is_empty(), "{mine:?}");
    }
    assert_eq!(
        st.recovered.objects - before,
        missed,
        "exactly the objects written while osd.2 was down are copied"
    );
    // Balanced reads reach every member; each read must see the newest data.
    for round in 0..4 {
        for i in 0..20 {
            let mut want = body("v1", i, 30_000).to_vec();
            want.extend_from_slice(b"+tail");
            let got = read(&io, &format!("new-{i}")).await;
            assert_eq!(got.as_deref(), Some(&want[..]), "new-{i} round {round}");
        }
        for i in 0..40 {
            let got = read(&io, &format!("old-{i}")).await;
            let want = match i {
                0..10 => Some(body("v2", i, 10_000)),
                30..35 => None,
                _ => Some(body("v1", i, 20_000)),
            };
            assert_eq!(got, want, "old-{i} round {round}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_osd_is_marked_out_and_its_pgs_backfilled_elsewhere_while_writes_go_on() {
    // A short log, so the OSDs that replace osd.1 cannot catch up from it
    // and are backfilled while a pg_temp chain keeps serving.
    let mut cluster = TestCluster::start(&TestClusterOptions {
        osds: 4,
        down_out_interval_ms: 3000,
        osd_extra: "pg_log_entries = 16\n".into(),
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    const PGS: u32 = 16;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    for i in 0..300 {
        write_full(&io, &format!("base-{i}"), body("base", i, 8192)).await;
    }
    wait_clean(&client, PGS).await;

    // Writes go on through the failure, the out and the backfill; every
    // one must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&io, &stop, 8192);
    cluster.kill_osd(1);
    cluster.wait_osd_up(&client, 1, false, LONG).await;
    wait_for(LONG, "osd.1 marked out", || async {
        let map = client.monc().osdmap().await.ok()?;
        (!map.is_in(1)).then_some(())
    })
    .await;
    let st = wait_clean(&client, PGS).await;
    stop.store(true, Ordering::Relaxed);
    let new = writer
        .await
        .expect("every write during the recovery succeeded");
    assert!(new > 0, "the writer wrote nothing");
    assert!(st.recovered.objects > 0, "nothing was copied");

    // Every PG is back to 3 copies on 3 OSDs (hosts) without osd.1, the
    // chain is CRUSH's choice (no pg_temp left), and every copy is right.
    let map = client.monc().osdmap().await.expect("map");
    assert!(
        map.pg_temp().is_empty(),
        "pg_temp left: {:?}",
        map.pg_temp()
    );
    for p in pg_ls(&client).await {
        assert!(!p.acting.contains(&1) && p.acting == p.up, "{p:?}");
    }
    let objects: Vec<(String, Bytes)> = (0..300)
        .map(|i| (format!("base-{i}"), body("base", i, 8192)))
        .chain((0..new).map(|i| (format!("new-{i}"), body("new", i, 8192))))
        .collect();
    assert_every_copy(&cluster, &client, io.pool_id(), &objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_new_osds_get_only_the_data_that_must_move_while_writes_go_on() {
    // Six OSDs on three hosts, then a fourth host with two more.
    let mut cluster = TestCluster::start(&TestClusterOptions {
        osds: 6,
        osds_per_host: 2,
        osd_extra: "pg_log_entries = 16\n".into(),
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    const PGS: u32 = 32;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let sizes = [4096, 20_000, 65_536, 250_000];
    let base: Vec<(String, Bytes)> = (0..160)
        .map(|i| (format!("base-{i}"), body("base", i, sizes[i % sizes.len()])))
        .collect();
    for (name, data) in &base {
        write_full(&io, name, data.clone()).await;
    }
    wait_clean(&client, PGS).await;
    let before = client.monc().osdmap().await.expect("map");
    let copied_before = status(&client).await.expect("status").recovered.bytes;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&io, &stop, 4096);
    // A new host is built outside the default root and moved in whole:
    // one map change, so nothing moves twice.
    let mut added = Vec::new();
    for _ in 0..2 {
        added.push(cluster.add_osd(&client, "root=staging, host=h3").await);
    }
    client
        .monc()
        .command(MonCommand::CrushMove {
            name: "h3".into(),
            location: vec![KeyValue {
                key: "root".into(),
                value: "default".into(),
            }],
        })
        .await
        .expect("crush move");
    wait_pgs_clean(&client, PGS, LONG, "every PG clean on its new up set").await;
    stop.store(true, Ordering::Relaxed);
    let new = writer
        .await
        .expect("every write during the rebalance succeeded");
    assert!(new > 0, "the writer wrote nothing");

    // The least that must move: each base object to every OSD that is new
    // in its PG's up set. The writer's small objects may be copied to a
    // new member once each on top.
    let after = client.monc().osdmap().await.expect("map");
    let (mut ws_before, mut ws_after) = (before.new_workspace(), after.new_workspace());
    let mut minimum = 0u64;
    for (name, data) in &base {
        let pg = before.object_to_pg(io.pool_id(), name).expect("pg");
        let old = before
            .pg_to_up_acting(pg, &mut ws_before)
            .expect("up")
            .up_chain();
        let now = after
            .pg_to_up_acting(pg, &mut ws_after)
            .expect("up")
            .up_chain();
        let gained = now.iter().filter(|o| !old.contains(o)).count() as u64;
        minimum += gained * data.len() as u64;
    }
    assert!(minimum > 0, "the new OSDs took no PG");
    let allowance = new as u64 * 4096;
    // Copies are counted by the OSD that sends them, with its beacons:
    // wait until every OSD reported its last ones (no copies in its
    // latest interval).
    let moved = wait_for(LONG, "the copies reported", || async {
        let st = status(&client).await?;
        let moved = st.recovered.bytes - copied_before;
        (moved >= minimum && st.recovery_rate.bytes == 0).then_some(moved)
    })
    .await;
    let ratio = moved as f64 / minimum as f64;
    eprintln!(
        "moved {moved} bytes for a minimum of {minimum} ({ratio:.3}); {new} writes of 4096 bytes meanwhile"
    );
    assert!(
        moved as f64 <= minimum as f64 * 1.10 + allowance as f64,
        "moved {moved} bytes, the minimum is {minimum} (+{allowance} for new writes)"
    );
    let df = osd_df(&client).await;
    for id in added {
        let entry = df.iter().find(|o| o.id == id).expect("new OSD in df");
        assert!(entry.pgs > 0, "osd.{id} holds no PG: {entry:?}");
    }
    let objects: Vec<(String, Bytes)> = base
        .into_iter()
        .chain((0..new).map(|i| (format!("new-{i}"), body("new", i, 4096))))
        .collect();
    assert_every_copy(&cluster, &client, io.pool_id(), &objects).await;
}

/// Writes `new-0`, `new-1`, ... of `len` bytes until `stop`; every write
/// must succeed (a failure panics the task). Returns how many it wrote.
fn spawn_writer(io: &IoCtx, stop: &Arc<AtomicBool>, len: usize) -> tokio::task::JoinHandle<usize> {
    let (io, stop) = (io.clone(), stop.clone());
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            write_full(&io, &format!("new-{n}"), body("new", n, len)).await;
            n += 1;
        }
        n
    })
}

/// `osd df`: every OSD's usage and PG copies.
async fn osd_df(client: &shoal_client::Cluster) -> Vec<OsdDfEntry> {
    match client.monc().command(MonCommand::OsdDf).await {
        Ok(CommandOutput::OsdDf(osds)) => osds,
        other => panic!("osd df: {other:?}"),
    }
}

/// Every copy of every object on every member of its chain reads `want`.
async fn assert_every_copy(
    cluster: &TestCluster,
    client: &shoal_client::Cluster,
    pool: i64,
    objects: &[(String, Bytes)],
) {
    let map = client.monc().osdmap().await.expect("map");
    let mut ws = map.new_workspace();
    for (name, want) in objects {
        let pg = map.object_to_pg(pool, name).expect("pg");
        let chain = map.pg_to_up_acting(pg, &mut ws).expect("up/acting").chain();
        assert_eq!(chain.len(), 3, "{name}: chain {chain:?}");
        for osd in chain {
            let got = cluster
                .read_copy(client, osd, pool, name)
                .await
                .unwrap_or_else(|e| panic!("{name} on osd.{osd}: {e}"));
            assert_eq!(got.as_ref(), Some(want), "{name} on osd.{osd}");
        }
    }
}

/// Four OSDs (hosts), a size-3 pool of `pgs` PGs holding `count` objects
/// of `len` bytes, every PG clean.
async fn four_osds_with(
    pgs: u32,
    count: usize,
    len: usize,
) -> (
    TestCluster,
    shoal_client::Cluster,
    IoCtx,
    Vec<(String, Bytes)>,
) {
    let cluster = TestCluster::start(&TestClusterOptions {
        osds: 4,
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", pgs, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let objects: Vec<(String, Bytes)> = (0..count)
        .map(|i| (format!("obj-{i}"), body("x", i, len)))
        .collect();
    for (name, data) in &objects {
        write_full(&io, name, data.clone()).await;
    }
    wait_clean(&client, pgs).await;
    (cluster, client, io, objects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_osd_marked_out_hands_its_pgs_over_and_drops_its_copies_then_takes_them_back() {
    const PGS: u32 = 16;
    let (cluster, client, io, objects) = four_osds_with(PGS, 120, 12_000).await;
    let held = |df: &[OsdDfEntry], id: i32| df.iter().find(|o| o.id == id).map_or(0, |o| o.pgs);
    assert!(held(&osd_df(&client).await, 3) > 0, "osd.3 holds PGs");

    // Out while running: its PGs move to the others, and once they are
    // clean there, its copies are deleted.
    cluster.mark_out(&client, 3).await;
    wait_for(LONG, "osd.3 out of every chain and clean", || async {
        let pgs = pg_ls(&client).await;
        let done = pgs.len() == PGS as usize
            && pgs
                .iter()
                .all(|p| p.state == "active+clean" && !p.acting.contains(&3));
        done.then_some(())
    })
    .await;
    wait_for(LONG, "osd.3 holding no PG copies", || async {
        (held(&osd_df(&client).await, 3) == 0).then_some(())
    })
    .await;
    assert_every_copy(&cluster, &client, io.pool_id(), &objects).await;

    // Back in: CRUSH gives it PGs again; they are filled and clean.
    client
        .monc()
        .command(MonCommand::OsdIn { ids: vec![3] })
        .await
        .expect("osd in");
    wait_for(LONG, "osd.3 back in chains, every PG clean", || async {
        let pgs = pg_ls(&client).await;
        let done = pgs.iter().all(|p| p.state == "active+clean")
            && pgs.iter().any(|p| p.acting.contains(&3));
        done.then_some(())
    })
    .await;
    assert_every_copy(&cluster, &client, io.pool_id(), &objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_moves_replicas_by_upmap_and_the_pgs_heal_behind_it() {
    const PGS: u32 = 32;
    let (cluster, client, io, objects) = four_osds_with(PGS, 64, 6000).await;

    let out = std::process::Command::new(shoal_tests::bin_path("shoal"))
        .arg("--conf")
        .arg(&cluster.mons.conf_path)
        .args([
            "--format",
            "json",
            "balancer",
            "run",
            "--max-deviation",
            "0",
        ])
        .output()
        .expect("run shoal balancer run");
    assert!(
        out.status.success(),
        "balancer run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let moves = plan["moves"].as_array().expect("moves").len();
    let pool = &plan["pools"][0];
    assert!(
        pool["after"]["max_abs_deviation"].as_f64() <= pool["before"]["max_abs_deviation"].as_f64(),
        "{plan}"
    );
    // 96 replicas over 4 equal OSDs: CRUSH alone is never exactly 24 each.
    assert!(moves > 0, "{plan}");
    let map = client.monc().osdmap().await.expect("map");
    assert!(
        !map.pg_upmap_items().is_empty(),
        "the exceptions are in the map"
    );
    wait_pgs_clean(&client, PGS, LONG, "every PG clean on its balanced chain").await;
    assert_every_copy(&cluster, &client, io.pool_id(), &objects).await;
}
