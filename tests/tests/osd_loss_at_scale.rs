//! The whole scenario of an OSD loss, with real processes: 6 OSDs on 3
//! hosts and a size-3 pool holding striped objects of mixed sizes; one OSD
//! is SIGKILLed while a client keeps writing; its PGs go degraded, it is
//! marked out, and every PG returns to active+clean with 3 copies on 3
//! hosts, each copy read back and compared.
//!
//! The amount of data is `SHOAL_TEST_DATA_MB` (default 48, what CI runs);
//! `SHOAL_TEST_DATA_MB=2048 cargo test -p shoal-tests --test
//! osd_loss_at_scale -- --nocapture` runs it at full size and prints how
//! long each step took.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_client::{IoCtx, ListCursor};
use shoal_tests::{TestCluster, TestClusterOptions, pgs_in, pseudo_random, status, wait_for};

const DEFAULT_DATA_MB: u64 = 48;
const PIECE: u64 = 4 << 20;
const OSDS_PER_HOST: usize = 2;
/// The OSD that dies (host h2 keeps osd.4).
const VICTIM: i32 = 5;
/// Sizes cycled through: small objects, one-piece objects, a whole piece,
/// and striped objects with a short last piece.
const SIZES: [usize; 6] = [
    4096,
    60_000,
    700_000,
    4 << 20,
    (9 << 20) + 123_457,
    (13 << 20) + 5,
];
const WRITERS: usize = 4;

fn data_bytes() -> u64 {
    let mb = std::env::var("SHOAL_TEST_DATA_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_DATA_MB);
    mb << 20
}

/// Object `i` of `len` bytes: pseudo-random, seeded by the tag and index.
fn body(tag: &str, i: usize, len: usize) -> Bytes {
    let seed = blake3::hash(format!("{tag}-{i}").as_bytes());
    let seed = u64::from_le_bytes(seed.as_bytes()[..8].try_into().expect("8 bytes"));
    pseudo_random(seed, len)
}

fn host_of(osd: i32) -> i32 {
    osd / OSDS_PER_HOST as i32
}

/// Writes `names` (with their bodies) from `WRITERS` tasks at once.
async fn write_all(io: &IoCtx, objects: &[(String, usize)]) {
    let objects: Arc<Vec<(String, usize)>> = Arc::new(objects.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (io, objects) = (io.clone(), objects.clone());
        tasks.spawn(async move {
            for (i, (name, len)) in objects.iter().enumerate().skip(w).step_by(WRITERS) {
                io.put(name, body("base", i, *len))
                    .await
                    .unwrap_or_else(|e| panic!("put {name}: {e}"));
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_osds_on_three_hosts_lose_one_and_heal_to_three_copies_on_three_hosts() {
    let total = data_bytes();
    // The dead OSD's host partner ends up with a copy of every PG.
    let store = (total * 5 / 4 + (320 << 20)).max(512 << 20);
    let mut cluster = TestCluster::start(&TestClusterOptions {
        osds: 6,
        osds_per_host: OSDS_PER_HOST,
        osd_store_bytes: store,
        down_out_interval_ms: 3000,
        ..TestClusterOptions::default()
    })
    .await;
    let long = Duration::from_secs(90) + Duration::from_millis(total >> 20) * 200;
    let client = cluster.client().await;
    const PGS: u32 = 64;
    cluster.create_pool(&client, "data", PGS, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");

    let mut objects = Vec::new();
    let mut written = 0u64;
    while written < total {
        let len = SIZES[objects.len() % SIZES.len()];
        objects.push((format!("obj-{}", objects.len()), len));
        written += len as u64;
    }
    let started = Instant::now();
    write_all(&io, &objects).await;
    eprintln!(
        "scale: wrote {} objects, {} MiB, in {:.1} s",
        objects.len(),
        written >> 20,
        started.elapsed().as_secs_f64()
    );
    wait_pgs(&client, PGS, long, "every PG active+clean after the writes").await;
    let copied_before = status(&client).await.expect("status").recovered;

    // A client keeps writing through the loss, the out and the recovery.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (io, stop) = (io.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("new-{n}");
                io.put(&name, body("new", n, 20_000))
                    .await
                    .unwrap_or_else(|e| panic!("put {name}: {e}"));
                n += 1;
            }
            n
        })
    };
    cluster.kill_osd(VICTIM as usize);
    let killed = Instant::now();
    wait_for(long, "the dead OSD's PGs degraded", || async {
        let st = status(&client).await?;
        let degraded = st
            .pgs_by_state
            .iter()
            .any(|p| p.count > 0 && p.state.split('+').any(|s| s == "degraded"));
        (degraded && st.degraded_objects > 0).then_some(())
    })
    .await;
    wait_for(long, "the dead OSD marked out", || async {
        let map = client.monc().osdmap().await.ok()?;
        (!map.is_up(VICTIM) && !map.is_in(VICTIM)).then_some(())
    })
    .await;
    let out = Instant::now();
    let st = wait_pgs(&client, PGS, long, "every PG active+clean after the loss").await;
    eprintln!(
        "scale: clean {:.1} s after the kill, {:.1} s after the out; {} objects, {} MiB copied",
        killed.elapsed().as_secs_f64(),
        out.elapsed().as_secs_f64(),
        st.recovered.objects - copied_before.objects,
        (st.recovered.bytes - copied_before.bytes) >> 20,
    );
    stop.store(true, Ordering::Relaxed);
    let new = writer
        .await
        .expect("every write during the recovery succeeded");
    assert!(new > 0, "the writer wrote nothing");
    assert!(
        st.recovered.bytes > copied_before.bytes,
        "nothing was copied"
    );

    // Every object reads back whole through the client.
    let mut want: Vec<(String, usize, Bytes)> = objects
        .iter()
        .enumerate()
        .map(|(i, (name, len))| (name.clone(), i, body("base", i, *len)))
        .collect();
    want.extend((0..new).map(|n| (format!("new-{n}"), n, body("new", n, 20_000))));
    for (name, _, data) in &want {
        let got = io
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"));
        assert!(got == *data, "{name}: read back different data");
    }

    // Every piece object of the pool is on 3 OSDs of 3 hosts, none of them
    // the dead one, and every copy has the same data.
    let pieces: u64 = want
        .iter()
        .map(|(_, _, d)| (d.len() as u64).div_ceil(PIECE).max(1))
        .sum();
    let names = list_pool(&io).await;
    assert_eq!(
        names.len() as u64,
        pieces,
        "pieces in the pool vs. pieces written"
    );
    let map = client.monc().osdmap().await.expect("map");
    assert!(
        map.pg_temp().is_empty(),
        "pg_temp left: {:?}",
        map.pg_temp()
    );
    let mut ws = map.new_workspace();
    let started = Instant::now();
    for name in &names {
        let pg = map.object_to_pg(io.pool_id(), name).expect("pg");
        let chain = map.pg_to_up_acting(pg, &mut ws).expect("acting").chain();
        let hosts: BTreeSet<i32> = chain.iter().map(|&o| host_of(o)).collect();
        assert!(
            chain.len() == 3 && hosts.len() == 3 && !chain.contains(&VICTIM),
            "{name}: chain {chain:?}"
        );
        let mut sums = BTreeSet::new();
        for &osd in &chain {
            let copy = cluster
                .read_copy(&client, osd, io.pool_id(), name)
                .await
                .unwrap_or_else(|e| panic!("{name} on osd.{osd}: {e}"))
                .unwrap_or_else(|| panic!("{name}: no copy on osd.{osd}"));
            sums.insert(*blake3::hash(&copy).as_bytes());
        }
        assert_eq!(sums.len(), 1, "{name}: copies differ on {chain:?}");
    }
    eprintln!(
        "scale: {} pieces x 3 copies compared in {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
}

async fn wait_pgs(
    client: &shoal_client::Cluster,
    pgs: u32,
    timeout: Duration,
    what: &str,
) -> shoal_proto::report::StatusReport {
    wait_for(timeout, what, || async {
        let st = status(client).await?;
        (pgs_in(&st, "active+clean") == pgs && st.degraded_objects == 0).then_some(st)
    })
    .await
}

/// Every object name of the pool (pieces of striped objects included).
async fn list_pool(io: &IoCtx) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor = ListCursor::default();
    loop {
        let page = io.list_objects(&cursor, 1000).await.expect("list");
        names.extend(page.names);
        match page.next {
            Some(next) => cursor = next,
            None => return names,
        }
    }
}
