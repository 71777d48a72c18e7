//! Peering knows of intervals nobody answering has heard of: the chain
//! that took the last writes dies whole, and an OSD that never held the
//! PG becomes its only member. It must not go active on its empty copy;
//! the monitors' activation record makes it wait (incomplete) until a
//! member of that chain is back, and then the writes are there.

use std::time::Duration;

use bytes::Bytes;
use shoal_client::{IoCtx, Output, ReadOp, WriteOp};
use shoal_proto::mon::MonCommand;
use shoal_tests::{TestCluster, TestClusterOptions, pg_ls, wait_for, wait_pgs_clean};

const LONG: Duration = Duration::from_secs(90);
const PGS: u32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_whose_last_chain_died_waits_for_it_instead_of_serving_older_data() {
    let mut cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "p", PGS, 2, 1).await;
    let io = client.ioctx("p").await.expect("ioctx");
    let data = Bytes::from_static(b"acknowledged on the chain that dies");
    io.write_op("x", WriteOp::new().write_full(data.clone()))
        .await
        .expect("write");
    wait_pgs_clean(&client, PGS, LONG, "the PGs clean").await;

    let map = client.osdmap();
    let pool = map.pool_by_name("p").expect("pool").id;
    let pg = map.object_to_pg(pool, "x").expect("pg");
    let mut ws = map.new_workspace();
    let chain = map.pg_to_up_acting(pg, &mut ws).expect("chain").chain();
    assert_eq!(chain.len(), 2);
    let other = (0..3).find(|o| !chain.contains(o)).expect("third OSD");

    // The whole chain dies and is taken out: the third OSD, which never
    // held this PG, becomes its only member.
    for &o in &chain {
        cluster.kill_osd(o as usize);
    }
    for &o in &chain {
        cluster.wait_osd_up(&client, o, false, LONG).await;
        cluster.mark_out(&client, o).await;
    }
    let pgid = pg.to_string();
    wait_for(LONG, "the PG incomplete on its new member", || async {
        let entry = pg_ls(&client).await.into_iter().find(|p| p.pgid == pgid)?;
        (entry.acting == [other] && entry.state.contains("incomplete")).then_some(())
    })
    .await;
    let short = io.with_timeout(Duration::from_secs(2));
    match short.read_op("x", ReadOp::new().read(0, u64::MAX)).await {
        Err(e) if !e.is_not_found() => {}
        other => panic!("an incomplete PG answered a read: {other:?}"),
    }

    // The dead chain comes back (still out): the new member learns the
    // writes from it and serves them.
    for &o in &chain {
        cluster.start_osd(o as usize);
    }
    let got = wait_for(LONG, "x readable again", || read(&io, "x")).await;
    assert_eq!(got, data, "the acknowledged write survived");
    let entry = pg_ls(&client)
        .await
        .into_iter()
        .find(|p| p.pgid == pgid)
        .expect("pg listed");
    assert_eq!(entry.acting, [other], "served by the new member");

    client
        .monc()
        .command(MonCommand::OsdIn { ids: chain })
        .await
        .expect("osd in");
    wait_pgs_clean(&client, PGS, LONG, "every PG clean again").await;
    assert_eq!(read(&io, "x").await, Some(data));
}

/// The object's content, if the PG answers a read with it.
async fn read(io: &IoCtx, name: &str) -> Option<Bytes> {
    let r = io
        .read_op(name, ReadOp::new().read(0, u64::MAX))
        .await
        .ok()?;
    match r.outputs.into_iter().next() {
        Some(Output::Data(d)) => Some(d),
        _ => None,
    }
}
