//! Chain replication under faults, with real processes: SIGKILL of the
//! head, the middle and the tail of a PG's chain during a stream of
//! writes; an OSD partitioned away and healed; concurrent writers to one
//! object; a linearizability check of one object's puts and gets while
//! OSDs are killed and restarted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_client::striper::head_name;
use shoal_client::{Cluster, IoCtx, OsdErrorCode, WriteOp};
use shoal_map::PgId;
use shoal_proto::mon::MonCommand;
use shoal_tests::linearizability::{Event, RegisterOp, check_register};
use shoal_tests::{
    TestCluster, TestClusterOptions, pgs_in, pseudo_random, status, wait_for, wait_pgs_clean,
};

const MIB: usize = 1 << 20;
const LONG: Duration = Duration::from_secs(90);

/// The body written for `value`: its number first, then bytes derived
/// from it, `len` long in all.
fn body(value: u64, len: usize) -> Bytes {
    let mut v = value.to_le_bytes().to_vec();
    v.extend_from_slice(&pseudo_random(value, len.max(8) - 8));
    Bytes::from(v)
}

/// The value a body was made for, if it is exactly such a body.
fn value_of(b: &Bytes) -> Option<u64> {
    let v = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    (body(v, b.len()) == *b).then_some(v)
}

/// At least `min` writes were acknowledged, and each reads back as the
/// value acknowledged, `reads` times (balanced reads reach several members).
async fn assert_acked_read_back(
    io: &IoCtx,
    acked: &Mutex<BTreeMap<String, u64>>,
    min: usize,
    reads: usize,
) {
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= min,
        "only {} writes acknowledged",
        acked.len()
    );
    for (name, value) in &acked {
        for _ in 0..reads {
            let got = io.get(name).await.expect("get an acknowledged object");
            assert_eq!(value_of(&got), Some(*value), "{name}");
        }
    }
}

/// Three writers putting objects `{prefix}-{i}` (of `len(i, writer)`
/// bytes, body `i`) until stopped; every acknowledged put is recorded.
struct AckedWriters {
    acked: Arc<Mutex<BTreeMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AckedWriters {
    fn start(io: &IoCtx, prefix: &'static str, len: fn(usize, usize) -> usize) -> Self {
        let acked: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let tasks = (0..3usize)
            .map(|w| {
                let (io, acked, stop, next) =
                    (io.clone(), acked.clone(), stop.clone(), next.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let name = format!("{prefix}-{i}");
                        if io.put(&name, body(i as u64, len(i, w))).await.is_ok() {
                            acked.lock().unwrap().insert(name, i as u64);
                        }
                    }
                })
            })
            .collect();
        AckedWriters { acked, stop, tasks }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` writes are acknowledged.
    async fn wait_for_count(&self, n: usize, what: &str) {
        wait_for(LONG, what, || async { (self.count() >= n).then_some(()) }).await;
    }

    /// Stops the writers; the acknowledged writes.
    async fn stop(self) -> Arc<Mutex<BTreeMap<String, u64>>> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("writer");
        }
        self.acked
    }
}

/// The chain of the PG holding object `name`'s head.
fn chain_of(client: &Cluster, pool: i64, name: &str) -> (PgId, Vec<i32>) {
    let map = client.osdmap();
    let pg = map.object_to_pg(pool, head_name(name)).expect("pg");
    let mut ws = map.new_workspace();
    (
        pg,
        map.pg_to_up_acting(pg, &mut ws).expect("up/acting").chain(),
    )
}

/// Names whose head lies in PG `pg`.
fn names_in(client: &Cluster, pool: i64, pg: PgId, prefix: &str, count: usize) -> Vec<String> {
    let map = client.osdmap();
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|n| map.object_to_pg(pool, head_name(n)).ok() == Some(pg))
        .take(count)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_killing_head_middle_and_tail() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let pool = io.pool_id();
    let acked: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();

    for (round, role) in ["head", "middle", "tail"].into_iter().enumerate() {
        let (pg, chain) = chain_of(&client, pool, &format!("probe-{round}"));
        assert_eq!(chain.len(), 3, "PG {pg} chain {chain:?}");
        let victim = chain[round];
        let names = names_in(&client, pool, pg, &format!("r{round}"), 400);
        // Writers stream objects into the victim's PG (some of them span
        // pieces, which land in other PGs) until told to stop.
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        for w in 0..4u64 {
            let (io, names, acked, stop, next) = (
                io.clone(),
                names.clone(),
                acked.clone(),
                stop.clone(),
                next.clone(),
            );
            writers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let value = (round as u64) << 32 | i as u64;
                    let len = if i % 7 == 0 {
                        5 * MIB
                    } else {
                        1000 + (w as usize) * 3000
                    };
                    if io.put(name, body(value, len)).await.is_ok() {
                        acked.lock().unwrap().insert(name.clone(), value);
                    }
                }
            }));
        }
        let count = || acked.lock().unwrap().len();
        let before = count();
        wait_for(LONG, "writes before the kill", || async {
            (count() >= before + 20).then_some(())
        })
        .await;
        cluster.kill_osd(victim as usize);
        let at_kill = count();
        // Without an operator: the OSD is reported, marked down, the PG
        // re-peers on two members and writes go on.
        cluster.wait_osd_up(&client, victim, false, LONG).await;
        wait_for(
            LONG,
            &format!("writes after killing the {role}"),
            || async { (count() >= at_kill + 20).then_some(()) },
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.expect("writer");
        }
        cluster.start_osd(victim as usize);
        cluster.wait_osd_up(&client, victim, true, LONG).await;
    }

    // Every acknowledged write reads back intact, from any member.
    assert_acked_read_back(&io, &acked, 120, 3).await;
}

/// An OSD cut off from the monitors and the other OSDs (clients still
/// reach it) during a stream of writes: it is marked down and the writes
/// go on without it; once the partition heals it boots again by itself
/// and catches up — afterwards it alone serves every acknowledged write,
/// including those made while it was cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_osd_is_marked_down_then_rejoins_and_catches_up() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let writers = AckedWriters::start(
        &io,
        "p",
        |i, w| {
            if i % 9 == 0 { 5 * MIB } else { 2000 + w * 1000 }
        },
    );
    writers
        .wait_for_count(20, "writes before the partition")
        .await;

    cluster.isolate_osd(&client, 2).await;
    let at_cut = writers.count();
    cluster.wait_osd_up(&client, 2, false, LONG).await;
    writers
        .wait_for_count(at_cut + 30, "writes while osd.2 is cut off")
        .await;

    cluster.heal_osds(&client).await;
    // Nobody restarts it: it sees itself marked down, reaches a peer, boots.
    cluster.wait_osd_up(&client, 2, true, LONG).await;
    let at_heal = writers.count();
    writers
        .wait_for_count(at_heal + 10, "writes after healing")
        .await;
    let acked = writers.stop().await;
    wait_for(LONG, "every PG active on three members", || async {
        let st = status(&client).await?;
        (pgs_in(&st, "active+clean") == 8 && st.pgs_by_state.len() == 1).then_some(())
    })
    .await;

    // osd.2 alone: the others go down one at a time.
    client
        .monc()
        .command(MonCommand::PoolSet {
            name: "data".into(),
            key: "min_size".into(),
            value: "1".into(),
        })
        .await
        .expect("pool set min_size 1");
    for victim in [0, 1] {
        cluster.kill_osd(victim);
        cluster
            .wait_osd_up(&client, victim as i32, false, LONG)
            .await;
    }
    wait_for(LONG, "every PG active on osd.2 alone", || async {
        let st = status(&client).await?;
        (pgs_in(&st, "active+undersized+degraded") == 8).then_some(())
    })
    .await;
    assert_acked_read_back(&io, &acked, 60, 1).await;
}

/// A host (two OSDs) cut off from the other hosts' OSDs but not from the
/// monitors (its beacons go on), during a stream of writes: the other
/// hosts' reports mark both its OSDs down although they beacon, and the
/// writes go on without them. The cut-off host's two OSDs report all four
/// others, but from one host, and mark nobody down (counted per OSD they
/// would take the healthy side down). Once the cut heals both boot again
/// by themselves, and every PG is clean with every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_its_peers_cannot_reach_is_marked_down_and_takes_nobody_with_it() {
    let mut cluster = TestCluster::start(&TestClusterOptions {
        osds: 6,
        osds_per_host: 2,
        min_down_reporters: 2,
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    const PGS: u32 = 16;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let writers = AckedWriters::start(&io, "c", |_, w| 2000 + w * 1000);
    writers.wait_for_count(20, "writes before the cut").await;

    // Host h2: osd.4 and osd.5.
    cluster.cut_osds_from_peers(&client, &[4, 5]).await;
    let at_cut = writers.count();
    cluster.wait_osd_up(&client, 4, false, LONG).await;
    cluster.wait_osd_up(&client, 5, false, LONG).await;
    writers
        .wait_for_count(at_cut + 30, "writes while h2 is cut off")
        .await;
    let map = client.monc().osdmap().await.expect("map");
    let up: Vec<i32> = (0..6).filter(|&o| map.is_up(o)).collect();
    assert_eq!(up, vec![0, 1, 2, 3], "the healthy side stays up");
    assert!(cluster.osd_running(4) && cluster.osd_running(5));

    cluster.heal_osds(&client).await;
    cluster.wait_osd_up(&client, 4, true, LONG).await;
    cluster.wait_osd_up(&client, 5, true, LONG).await;
    let at_heal = writers.count();
    writers
        .wait_for_count(at_heal + 10, "writes after healing")
        .await;
    let acked = writers.stop().await;
    wait_for(LONG, "every PG active+clean", || async {
        let st = status(&client).await?;
        (pgs_in(&st, "active+clean") == PGS && st.pgs_by_state.len() == 1).then_some(())
    })
    .await;
    assert_acked_read_back(&io, &acked, 60, 3).await;
}

/// Read leases: the head of a PG, cut off from the monitors and the other
/// OSDs, keeps its old map and still thinks it heads the PG. Once the
/// others have formed a new chain and taken a newer write, a client that
/// holds the old map and still reaches the old head must not read the old
/// value there: the head has no read lease any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_head_serves_no_stale_read_after_the_new_chain_takes_a_write() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    const PGS: u32 = 4;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let pool = io.pool_id();
    let name = "leased";
    io.write_op(name, WriteOp::new().write_full(Bytes::from_static(b"old")))
        .await
        .expect("write old");
    wait_pgs_clean(&client, PGS, LONG, "every PG clean").await;
    let old_map = client.monc().osdmap().await.expect("map");
    let pg = old_map.object_to_pg(pool, name).expect("pg");
    let mut ws = old_map.new_workspace();
    let head = old_map
        .pg_to_up_acting(pg, &mut ws)
        .expect("acting")
        .chain()[0];
    let got = cluster
        .read_at(&client, &old_map, head, pool, name, false, LONG)
        .await
        .expect("read at the head");
    assert_eq!(got.as_deref(), Some(&b"old"[..]));

    cluster.isolate_osd(&client, head).await;
    cluster.wait_osd_up(&client, head, false, LONG).await;
    // The client, with the new map, writes through the new chain.
    io.write_op(name, WriteOp::new().write_full(Bytes::from_static(b"new")))
        .await
        .expect("write new");
    // (It may first wait out its caps refresh from the unreachable
    // monitors, then answers from the copy it has.)
    match cluster
        .read_at(&client, &old_map, head, pool, name, false, LONG)
        .await
    {
        Err((Some(OsdErrorCode::Unavailable), why)) => {
            assert!(why.contains("no read lease"), "{why}")
        }
        other => panic!("the cut-off head answered {other:?} after the new write"),
    }

    cluster.heal_osds(&client).await;
    cluster.wait_osd_up(&client, head, true, LONG).await;
    wait_pgs_clean(&client, PGS, LONG, "every PG clean after healing").await;
    let got = cluster
        .read_copy(&client, head, pool, name)
        .await
        .expect("read the healed copy");
    assert_eq!(got.as_deref(), Some(&b"new"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_produce_a_mix() {
    let cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..3u64 {
        let (io, stop) = (io.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                // Three pieces, or one: overwrites both ways.
                let len = if k % 2 == 0 { 9 * MIB } else { 100_000 };
                let value = w << 32 | k;
                io.put("shared", body(value, len)).await.expect("put");
                k += 1;
            }
            k
        }));
    }
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (io, stop, reads) = (io.clone(), stop.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match io.get("shared").await {
                    Ok(b) => {
                        assert!(
                            value_of(&b).is_some(),
                            "a read of {} bytes mixes writes",
                            b.len()
                        );
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => panic!("get: {e}"),
                }
            }
        }));
    }
    wait_for(LONG, "60 whole-object reads", || async {
        (reads.load(Ordering::Relaxed) >= 60).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for t in tasks {
        writes += t.await.expect("writer");
    }
    for r in readers {
        r.await.expect("reader");
    }
    assert!(writes >= 6, "only {writes} writes");
    // The last version is whole and no stale pieces are left behind.
    let last = io.get("shared").await.expect("get");
    assert!(value_of(&last).is_some());
    let stat = io.stat("shared").await.expect("stat");
    let mut raw = Vec::new();
    let mut cursor = shoal_client::ListCursor::default();
    loop {
        let page = io.list_objects(&cursor, 1000).await.expect("list");
        raw.extend(page.names.into_iter().filter(|n| n.starts_with("shared.")));
        match page.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    assert_eq!(raw.len() as u64, stat.pieces, "pieces left: {raw:?}");
}

/// Puts and gets of one object by several clients, with each OSD of its
/// chain killed and restarted in turn; the history must be linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_object_history_is_linearizable_under_osd_kills() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    let clock = Instant::now();
    let history: Arc<Mutex<Vec<Event>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next_value = Arc::new(AtomicUsize::new(1));
    let mut tasks = Vec::new();
    for c in 0..4usize {
        // A client of its own each: separate request ids and map views.
        let io: IoCtx = cluster.client().await.ioctx("data").await.expect("ioctx");
        let (history, stop, next_value) = (history.clone(), stop.clone(), next_value.clone());
        tasks.push(tokio::spawn(async move {
            let now = || clock.elapsed().as_nanos() as u64;
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let start = now();
                if (k + c as u64) % 2 == 0 {
                    let v = next_value.fetch_add(1, Ordering::Relaxed) as u64;
                    let len = if v % 5 == 0 { 5 * MIB } else { 2048 };
                    let r = io.put("register", body(v, len)).await;
                    let end = r.is_ok().then(now);
                    history.lock().unwrap().push(Event {
                        start,
                        end,
                        op: RegisterOp::Write(v),
                    });
                } else {
                    let read = match io.get("register").await {
                        Ok(b) => Some(Some(value_of(&b).expect("a whole body"))),
                        Err(e) if e.is_not_found() => Some(None),
                        Err(_) => None, // never answered: left out
                    };
                    if let Some(seen) = read {
                        history.lock().unwrap().push(Event {
                            start,
                            end: Some(now()),
                            op: RegisterOp::Read(seen),
                        });
                    }
                }
            }
        }));
    }
    let ops = || history.lock().unwrap().len();
    let pool = io.pool_id();
    for round in 0..3 {
        let (_, chain) = chain_of(&client, pool, "register");
        let victim = chain[round % chain.len()];
        let n = ops();
        wait_for(LONG, "operations before the kill", || async {
            (ops() >= n + 30).then_some(())
        })
        .await;
        cluster.kill_osd(victim as usize);
        cluster.wait_osd_up(&client, victim, false, LONG).await;
        let n = ops();
        wait_for(LONG, "operations after the kill", || async {
            (ops() >= n + 30).then_some(())
        })
        .await;
        cluster.start_osd(victim as usize);
        cluster.wait_osd_up(&client, victim, true, LONG).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }
    let history = history.lock().unwrap().clone();
    let writes = history
        .iter()
        .filter(|e| matches!(e.op, RegisterOp::Write(_)) && e.end.is_some())
        .count();
    assert!(
        writes >= 30 && history.len() >= 150,
        "{} ops, {writes} writes",
        history.len()
    );
    check_register(&history, None).unwrap_or_else(|e| panic!("{e}\n{history:?}"));
}
