//! Monitor clusters as real processes on 127.0.0.x: leader failure,
//! partitions, concurrent updates with a monitor killed, certificates and
//! caps, failure detection, restarts.

use std::collections::BTreeSet;
use std::time::Duration;

use shoal_client::{MonClient, MonError};
use shoal_map::{OsdMap, OsdMapIncremental};
use shoal_proto::mon::{CommandOutput, ErrorCode, KeyValue, MonCommand, MonResult};
use shoal_proto::peer::FaultCommand;
use shoal_tests::{MonCluster, MonClusterOptions, wait_for};

const LONG: Duration = Duration::from_secs(30);

/// The leader's index once a quorum exists.
async fn leader(c: &MonCluster, client: &MonClient) -> usize {
    c.leader(client, LONG).await
}

/// Monitor `i`'s OSDMap (encoded), when it is in quorum.
async fn map_at(client: &MonClient, i: usize) -> Option<Vec<u8>> {
    match client
        .command_at(i, MonCommand::GetOsdMap { epoch: 0 })
        .await
    {
        Ok(r) => match r.result {
            MonResult::Ok(CommandOutput::OsdMap { map, .. }) => Some(map),
            _ => None,
        },
        Err(_) => None,
    }
}

/// Waits until every listed monitor serves the same OSDMap bytes, and
/// returns them.
async fn converged(client: &MonClient, mons: &[usize]) -> Vec<u8> {
    wait_for(LONG, "monitors to agree", || async {
        let mut first: Option<Vec<u8>> = None;
        for &i in mons {
            let m = map_at(client, i).await?;
            match &first {
                None => first = Some(m),
                Some(f) if *f != m => return None,
                Some(_) => {}
            }
        }
        first
    })
    .await
}

fn set_key(key: &str, value: &str) -> MonCommand {
    MonCommand::ConfigKeySet {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

async fn get_key(client: &MonClient, key: &str) -> Option<Vec<u8>> {
    match client
        .command(MonCommand::ConfigKeyGet { key: key.into() })
        .await
    {
        Ok(CommandOutput::Value(v)) => v,
        other => panic!("config-key get {key}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_new_leader_commits_and_old_one_catches_up() {
    let opts = MonClusterOptions::default();
    let mut c = MonCluster::start(&opts);
    let client = c.admin();
    let old = leader(&c, &client).await;
    for i in 0..20 {
        client
            .command(set_key(&format!("k{i}"), "v"))
            .await
            .expect("set");
    }
    client
        .command(MonCommand::PoolCreate {
            name: "rbd".into(),
            pg_num: 8,
            size: 1,
            min_size: 0,
            rule: String::new(),
        })
        .await
        .expect("pool create");
    let before = OsdMap::decode(&converged(&client, &[0, 1, 2]).await).expect("map");

    c.kill_mon(old);
    // A new leader commits within a few election timeouts.
    let t0 = std::time::Instant::now();
    wait_for(
        Duration::from_millis(opts.election_timeout_ms * 10),
        "a commit after the leader died",
        || async { client.command(set_key("after", "kill")).await.ok() },
    )
    .await;
    eprintln!("first commit after killing the leader: {:?}", t0.elapsed());
    let new = leader(&c, &client).await;
    assert_ne!(new, old, "the killed monitor cannot lead");
    // Nothing committed was lost or changed.
    for i in 0..20 {
        assert_eq!(
            get_key(&client, &format!("k{i}")).await.as_deref(),
            Some(&b"v"[..])
        );
    }
    let map = client.osdmap().await.expect("osdmap");
    assert!(map.epoch() >= before.epoch());
    assert_eq!(map.pool_by_name("rbd"), before.pool_by_name("rbd"));

    // The killed monitor restarts from its disk and catches up.
    c.start_mon(old);
    client
        .command(set_key("after-restart", "x"))
        .await
        .expect("set");
    let all = converged(&client, &[0, 1, 2]).await;
    assert_eq!(
        OsdMap::decode(&all).expect("map").pool_by_name("rbd"),
        before.pool_by_name("rbd")
    );
    wait_for(
        LONG,
        "the restarted monitor to serve the new key",
        || async {
            match client
                .command_at(
                    old,
                    MonCommand::ConfigKeyGet {
                        key: "after-restart".into(),
                    },
                )
                .await
            {
                Ok(r) if matches!(&r.result, MonResult::Ok(CommandOutput::Value(Some(_)))) => {
                    Some(())
                }
                _ => None,
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_cannot_commit_majority_can_and_all_agree_after_healing() {
    let opts = MonClusterOptions {
        fault_injection: true,
        ..MonClusterOptions::default()
    };
    let c = MonCluster::start(&opts);
    let client = c.admin();
    // Isolate the leader: the minority side has the old leader.
    let minority = leader(&c, &client).await;
    let majority: Vec<usize> = (0..3).filter(|&i| i != minority).collect();
    let m_name = format!("mon.{}", c.names[minority]);
    let maj_names: Vec<String> = majority
        .iter()
        .map(|&i| format!("mon.{}", c.names[i]))
        .collect();
    client
        .inject_fault(
            minority,
            FaultCommand::Partition {
                peers: maj_names.clone(),
            },
        )
        .await
        .expect("partition minority");
    for &i in &majority {
        client
            .inject_fault(
                i,
                FaultCommand::Partition {
                    peers: vec![m_name.clone()],
                },
            )
            .await
            .expect("partition majority");
    }
    // The majority elects a leader and commits.
    wait_for(LONG, "a majority commit", || async {
        for &i in &majority {
            if let Ok(r) = client.command_at(i, set_key("majority", "yes")).await
                && matches!(r.result, MonResult::Ok(_))
            {
                return Some(());
            }
        }
        None
    })
    .await;
    for i in 0..10 {
        let r = client
            .command_at(majority[i % 2], set_key(&format!("m{i}"), "1"))
            .await;
        assert!(
            matches!(r.map(|r| r.result), Ok(MonResult::Ok(_))),
            "majority write {i}"
        );
    }
    // The minority cannot commit: its writes fail (no quorum, or time out).
    for i in 0..3 {
        let r = client
            .command_at(minority, set_key(&format!("minority{i}"), "no"))
            .await;
        match r {
            Ok(reply) => assert!(
                matches!(&reply.result, MonResult::Err(e) if e.code.is_retryable()),
                "the minority answered {:?}",
                reply.result
            ),
            Err(e) => assert!(matches!(e, MonError::Net(_)), "{e}"),
        }
    }
    // Heal: everyone agrees, with the majority's writes.
    for i in 0..3 {
        client
            .inject_fault(i, FaultCommand::Heal)
            .await
            .expect("heal");
    }
    let agreed = converged(&client, &[0, 1, 2]).await;
    assert!(!agreed.is_empty());
    for &i in &[minority, majority[0]] {
        wait_for(LONG, "the majority's write everywhere", || async {
            match client
                .command_at(i, MonCommand::ConfigKeyGet { key: "m9".into() })
                .await
            {
                Ok(r) if matches!(&r.result, MonResult::Ok(CommandOutput::Value(Some(_)))) => {
                    Some(())
                }
                _ => None,
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mons_2000_concurrent_updates_with_a_monitor_killed() {
    let opts = MonClusterOptions {
        mons: 5,
        ..MonClusterOptions::default()
    };
    let mut c = MonCluster::start(&opts);
    let admin = c.admin();
    let first = leader(&c, &admin).await;
    let start_map = OsdMap::decode(&converged(&admin, &[0, 1, 2, 3, 4]).await).expect("map");

    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 500;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..CLIENTS {
        let client = std::sync::Arc::new(c.admin());
        // 8 in flight per client.
        for lane in 0..8 {
            let client = client.clone();
            tasks.spawn(async move {
                for i in (lane..PER_CLIENT).step_by(8) {
                    let cmd = if i % 2 == 0 {
                        MonCommand::OsdCreate { id: -1 }
                    } else {
                        set_key(&format!("c{k}-{i}"), "v")
                    };
                    client
                        .command(cmd)
                        .await
                        .unwrap_or_else(|e| panic!("update c{k}-{i}: {e}"));
                }
            });
        }
    }
    // Kill a monitor (the leader) while updates flow, then restart it.
    wait_for(LONG, "updates to start", || async {
        let m = admin.osdmap().await.ok()?;
        (m.osd_ids().count() >= 50).then_some(())
    })
    .await;
    c.kill_mon(first);
    wait_for(LONG, "updates after the kill", || async {
        let m = admin.osdmap().await.ok()?;
        (m.osd_ids().count() >= 400).then_some(())
    })
    .await;
    c.start_mon(first);
    while let Some(t) = tasks.join_next().await {
        t.expect("client task");
    }
    // Exactly once: 1000 OSD creations made exactly 1000 OSDs; every key once.
    let end = OsdMap::decode(&converged(&admin, &[0, 1, 2, 3, 4]).await).expect("map");
    assert_eq!(end.osd_ids().count(), CLIENTS * PER_CLIENT / 2);
    let ids: BTreeSet<i32> = end.osd_ids().collect();
    assert_eq!(ids, (0..(CLIENTS * PER_CLIENT / 2) as i32).collect());
    let keys = match admin.command(MonCommand::ConfigKeyLs).await.expect("ls") {
        CommandOutput::Keys(k) => k,
        other => panic!("{other:?}"),
    };
    assert_eq!(keys.len(), CLIENTS * PER_CLIENT / 2);
    // Epochs are contiguous: replaying every incremental from the start
    // gives the final map.
    let mut map = start_map;
    while map.epoch() < end.epoch() {
        let reply = admin
            .subscribe(map.epoch(), 0, Duration::from_millis(100))
            .await
            .expect("subscribe");
        if let Some(full) = reply.full_osdmap {
            panic!(
                "got a full map at epoch {} instead of incrementals ({} bytes)",
                map.epoch(),
                full.len()
            );
        }
        assert!(!reply.incrementals.is_empty());
        for inc in reply.incrementals {
            let inc = OsdMapIncremental::decode(&inc).expect("incremental");
            assert_eq!(inc.epoch, map.epoch() + 1, "epochs contiguous");
            map.apply(&inc).expect("apply");
        }
    }
    assert_eq!(
        map.encode(),
        end.encode(),
        "incrementals rebuild the final map"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_and_caps_are_enforced() {
    let c = MonCluster::start(&MonClusterOptions::default());
    let admin = c.admin();
    leader(&c, &admin).await;

    // A client with a certificate from another cluster is refused.
    let other_ca = shoal_net::ClusterCa::generate("shoal").expect("ca");
    let foreign = other_ca.issue("client.admin").expect("issue");
    let stranger = MonClient::new(
        foreign,
        c.conf.mons().expect("mons"),
        shoal_client::MonClientOptions {
            mon_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            ..Default::default()
        },
    )
    .expect("client");
    let err = stranger
        .command(MonCommand::Status)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            &err,
            MonError::Net(shoal_net::NetError::HandshakeRefused(_))
        ),
        "{err}"
    );

    // `mon r` reads but cannot change the map.
    let reader = c
        .new_identity_client(&admin, "client.reader", "mon r")
        .await;
    let epoch_before = admin.osdmap().await.expect("map").epoch();
    assert!(matches!(
        reader.command(MonCommand::Status).await,
        Ok(CommandOutput::Status(_))
    ));
    for cmd in [
        MonCommand::OsdCreate { id: -1 },
        set_key("x", "y"),
        MonCommand::PoolCreate {
            name: "p".into(),
            pg_num: 8,
            size: 1,
            min_size: 0,
            rule: String::new(),
        },
        MonCommand::AuthAdd {
            name: "client.evil".into(),
            caps: "mon rw".into(),
        },
    ] {
        match reader.command(cmd).await {
            Err(MonError::Command(e)) => assert_eq!(e.code, ErrorCode::PermissionDenied),
            other => panic!("a mon r client changed the map: {other:?}"),
        }
    }
    assert_eq!(admin.osdmap().await.expect("map").epoch(), epoch_before);
    // Removing the identity revokes even reads.
    admin
        .command(MonCommand::AuthRm {
            name: "client.reader".into(),
        })
        .await
        .expect("auth rm");
    match reader.command(MonCommand::Status).await {
        Err(MonError::Command(e)) => assert_eq!(e.code, ErrorCode::PermissionDenied),
        other => panic!("a removed identity still reads: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_osds_go_down_then_out_and_state_survives_a_full_restart() {
    let opts = MonClusterOptions {
        osd_beacon_grace_ms: 1000,
        down_out_interval_ms: 1500,
        ..MonClusterOptions::default()
    };
    let mut c = MonCluster::start(&opts);
    let admin = c.admin();
    leader(&c, &admin).await;
    for _ in 0..2 {
        admin
            .command(MonCommand::OsdCreate { id: -1 })
            .await
            .expect("create");
    }
    for id in 0..2 {
        admin
            .command(MonCommand::OsdBoot {
                id,
                addr: format!("127.0.0.9:{}", 6800 + id),
                location: vec![KeyValue {
                    key: "host".into(),
                    value: format!("h{id}"),
                }],
                crush_weight: 1.0,
            })
            .await
            .expect("boot");
    }
    let m = admin.osdmap().await.expect("map");
    assert!(m.is_up(0) && m.is_up(1) && m.is_in(0) && m.is_in(1));
    assert!(
        m.crush().bucket_by_name("h1").is_some(),
        "boot placed the OSD under its host"
    );
    // osd.0 beacons, osd.1 stays silent: osd.1 goes down, then out.
    let beat = async {
        loop {
            let _ = admin
                .command(MonCommand::OsdBeacon {
                    id: 0,
                    epoch: 0,
                    stats: shoal_proto::report::OsdStats::empty(),
                })
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let judged = wait_for(LONG, "osd.1 down and out", || async {
        let m = admin.osdmap().await.ok()?;
        (!m.is_up(1) && !m.is_in(1)).then_some(m)
    });
    let m = tokio::select! {
        m = judged => m,
        () = beat => unreachable!(),
    };
    assert!(m.is_up(0) && m.is_in(0), "a beaconing OSD stays up and in");
    let health = match admin.command(MonCommand::Health).await.expect("health") {
        CommandOutput::Health(h) => h,
        other => panic!("{other:?}"),
    };
    assert!(
        health.checks.iter().any(|c| c.code == "OSD_DOWN"),
        "{health:?}"
    );

    // SIGKILL every monitor, restart them: the state is intact.
    let before = converged(&admin, &[0, 1, 2]).await;
    for i in 0..3 {
        c.kill_mon(i);
    }
    for i in 0..3 {
        c.start_mon(i);
    }
    let after = converged(&admin, &[0, 1, 2]).await;
    let (b, a) = (
        OsdMap::decode(&before).expect("b"),
        OsdMap::decode(&after).expect("a"),
    );
    assert!(a.epoch() >= b.epoch());
    assert_eq!(
        a.osd_ids().collect::<Vec<_>>(),
        b.osd_ids().collect::<Vec<_>>()
    );
    assert_eq!(a.crush(), b.crush());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_get_errors_and_the_monitor_keeps_serving() {
    use shoal_net::{Endpoint, EndpointConfig, Frame, PeerAddr};
    use shoal_proto::mon::MonReply;
    use shoal_proto::msg;

    let c = MonCluster::start(&MonClusterOptions::default());
    let admin = c.admin();
    leader(&c, &admin).await;
    let ep = Endpoint::builder(
        c.identity("client.admin"),
        EndpointConfig::client("127.0.0.1:0".parse().unwrap()),
    )
    .bind()
    .expect("endpoint");
    let mon = PeerAddr::named("mon.a", c.addrs[0]);
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
    for msg_type in [
        msg::MON_COMMAND,
        msg::FORWARD,
        msg::SUBSCRIBE,
        msg::FAULT,
        9999,
    ] {
        for body in [&b""[..], &garbage[..], &[0u8; 4096][..]] {
            if msg_type == msg::SUBSCRIBE && body.len() == garbage.len() {
                // Its tail decodes as a valid subscription to a far future
                // epoch: a legitimate long poll, not an error.
                continue;
            }
            let reply = ep
                .request(
                    &mon,
                    &Frame::new(msg_type, body.to_vec()),
                    Duration::from_secs(5),
                )
                .await
                .unwrap_or_else(|e| {
                    panic!("type {msg_type} body {} bytes: no answer: {e}", body.len())
                });
            if reply.msg_type == msg::SUBSCRIBE_REPLY {
                // All zeros are a valid subscription from epoch 0.
                assert!(body.iter().all(|&b| b == 0) && !body.is_empty());
                continue;
            }
            let reply: MonReply = reply.decode_body().expect("a MonReply");
            if body.iter().all(|&b| b == 0) && !body.is_empty() {
                // All zeros happen to be a valid archive (a `status` request
                // with request id 0): any answer will do.
                continue;
            }
            match reply.result {
                MonResult::Err(e) => assert!(
                    matches!(e.code, ErrorCode::Invalid | ErrorCode::PermissionDenied),
                    "type {msg_type}: {e}"
                ),
                MonResult::Ok(o) => panic!("garbage of type {msg_type} accepted: {o:?}"),
            }
        }
    }
    // A one-way "paxos" stream from a client identity is refused; garbage
    // on it changes nothing.
    let _ = ep
        .send_oneway(
            &mon,
            "paxos",
            &Frame::new(msg::PAXOS, garbage.clone()),
            Duration::from_secs(2),
        )
        .await;
    // A peer monitor's snapshot that does not decode is refused before the
    // Paxos core sees it (installing it used to stop the monitor).
    let peer = Endpoint::builder(
        c.identity("mon.b"),
        EndpointConfig::client("127.0.0.1:0".parse().unwrap()),
    )
    .bind()
    .expect("endpoint");
    let bad_snapshot = shoal_proto::peer::PaxosEnvelope {
        monmap_epoch: 1,
        message: shoal_paxos::Message {
            from: 2,
            to: 1,
            body: shoal_paxos::Body::InstallSnapshot {
                snapshot: shoal_paxos::Snapshot {
                    slot: 1_000_000,
                    data: garbage.clone(),
                },
            },
        },
    };
    peer.send_oneway(
        &mon,
        "paxos",
        &Frame::encode(msg::PAXOS, &bad_snapshot).unwrap(),
        Duration::from_secs(5),
    )
    .await
    .expect("sent");
    // Request id 0 is reserved for the monitors' own changes.
    let zero = shoal_proto::mon::MonRequest {
        client_id: 0,
        tid: 0,
        command: set_key("zero", "id"),
    };
    let reply: MonReply = ep
        .request(
            &mon,
            &Frame::encode(msg::MON_COMMAND, &zero).unwrap(),
            Duration::from_secs(5),
        )
        .await
        .expect("answer")
        .decode_body()
        .expect("a MonReply");
    assert!(
        matches!(reply.result, MonResult::Err(ref e) if e.code == ErrorCode::Invalid),
        "{reply:?}"
    );
    // Still serving, still in quorum, still committing.
    admin
        .command(set_key("still", "alive"))
        .await
        .expect("commit");
    assert!(matches!(
        admin
            .command_at(0, MonCommand::Status)
            .await
            .map(|r| r.result),
        Ok(MonResult::Ok(_))
    ));
}

/// A subscriber that has the newest maps is held until the next OSDMap
/// commits (a long poll), and then gets it. (A client that forgot the
/// MonMap it had been sent was answered at once, every time: OSDs and
/// clients polled the monitors in a busy loop.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_wait_for_the_next_epoch() {
    let c = MonCluster::start(&MonClusterOptions {
        mons: 1,
        ..MonClusterOptions::default()
    });
    let admin = c.admin();
    leader(&c, &admin).await;
    let mut map = admin.osdmap().await.expect("osdmap");
    // The first subscription hands over the MonMap.
    if let Some(newer) = admin
        .newer_osdmap(&map, Duration::ZERO)
        .await
        .expect("subscribe")
    {
        map = newer;
    }
    assert!(admin.monmap_seen() >= 1, "the MonMap epoch is remembered");

    let held = std::time::Instant::now();
    let none = admin
        .newer_osdmap(&map, Duration::from_millis(1500))
        .await
        .expect("subscribe");
    assert!(none.is_none(), "nothing changed, nothing newer");
    assert!(
        held.elapsed() >= Duration::from_millis(1000),
        "held for the wait, not answered at once ({:?})",
        held.elapsed()
    );

    let epoch = map.epoch();
    let waiting = {
        let map = map.clone();
        let client = c.admin();
        tokio::spawn(async move { client.newer_osdmap(&map, LONG).await })
    };
    admin
        .command(MonCommand::OsdCreate { id: -1 })
        .await
        .expect("create");
    let newer = waiting.await.expect("join").expect("subscribe");
    let newer = newer.expect("the subscription returns the new epoch");
    assert!(newer.epoch() > epoch);
}
