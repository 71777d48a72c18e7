//! The monitors' replicated state machine, its store and the leader's
//! failure detector, without processes or network.

use std::collections::BTreeMap;

use shoal_map::{Fsid, OsdMap, OsdMapIncremental};
use shoal_mon::batch::{Batch, Txn};
use shoal_mon::commands::authorize;
use shoal_mon::failure::{FailureDetector, FailurePolicy};
use shoal_mon::initial::initial_state;
use shoal_mon::state::{MonState, StateSettings};
use shoal_mon::store::MonStore;
use shoal_paxos::{Ballot, Command, LogEntry, Persist, Snapshot};
use shoal_proto::caps::Caps;
use shoal_proto::mon::{CommandOutput, ErrorCode, KeyValue, MonCommand, MonResult};

fn fresh() -> MonState {
    let mons = vec![
        ("a".to_string(), "127.0.0.1:6789".parse().unwrap()),
        ("b".to_string(), "127.0.0.2:6789".parse().unwrap()),
        ("c".to_string(), "127.0.0.3:6789".parse().unwrap()),
    ];
    initial_state(
        "shoal",
        Fsid([7; 16]),
        &mons,
        "host",
        StateSettings::default(),
    )
    .unwrap()
}

fn txn(client_id: u64, tid: u64, command: MonCommand) -> Txn {
    Txn {
        client_id,
        tid,
        origin: "client.admin".into(),
        stamp_ms: 1_000_000,
        command,
    }
}

/// A fresh state with osd.i created and booted on host `hosts[i]` (one
/// batch, client 1).
fn with_osds_on(hosts: &[&str]) -> MonState {
    let mut s = fresh();
    let creates = hosts.iter().map(|_| MonCommand::OsdCreate { id: -1 });
    let boots = hosts.iter().enumerate().map(|(i, h)| boot(i as i32, h));
    let txns = creates
        .chain(boots)
        .enumerate()
        .map(|(k, c)| txn(1, k as u64 + 1, c))
        .collect();
    s.apply_batch(1, &Batch { txns });
    s
}

fn boot(id: i32, host: &str) -> MonCommand {
    MonCommand::OsdBoot {
        id,
        addr: format!("127.0.0.1:{}", 6800 + id),
        location: vec![
            KeyValue {
                key: "root".into(),
                value: "default".into(),
            },
            KeyValue {
                key: "host".into(),
                value: host.into(),
            },
        ],
        crush_weight: 1.0,
    }
}

fn ok(r: &MonResult) -> &CommandOutput {
    match r {
        MonResult::Ok(o) => o,
        MonResult::Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_batch_is_one_epoch_and_its_incremental_rebuilds_the_map() {
    let mut s = fresh();
    let old = s.osdmap.clone();
    let batch = Batch {
        txns: vec![
            txn(1, 1, MonCommand::OsdCreate { id: -1 }),
            txn(1, 2, MonCommand::OsdCreate { id: -1 }),
            txn(1, 3, boot(0, "h0")),
            txn(1, 4, boot(1, "h1")),
        ],
    };
    let results = s.apply_batch(1, &batch);
    assert_eq!(results.len(), 4);
    assert_eq!(ok(&results[0].result), &CommandOutput::OsdId(0));
    assert_eq!(ok(&results[1].result), &CommandOutput::OsdId(1));
    assert_eq!(s.osdmap.epoch(), old.epoch() + 1, "one epoch per batch");
    assert!(s.osdmap.is_up(0) && s.osdmap.is_in(1));
    assert_eq!(
        shoal_map::CrushLocation::from_crush(s.osdmap.crush(), 1).get("host"),
        Some("h1")
    );
    let inc = OsdMapIncremental::decode(&s.incrementals[&s.osdmap.epoch()]).unwrap();
    let mut replay = old;
    replay.apply(&inc).unwrap();
    assert_eq!(replay, s.osdmap);
}

#[test]
fn a_failed_transaction_changes_nothing() {
    let mut s = fresh();
    s.apply_batch(
        1,
        &Batch {
            txns: vec![txn(1, 1, MonCommand::OsdCreate { id: -1 })],
        },
    );
    let before = s.encode().unwrap();
    let bad = [
        MonCommand::OsdBoot {
            id: 0,
            addr: "not an address".into(),
            location: vec![],
            crush_weight: 1.0,
        },
        MonCommand::OsdBoot {
            id: 0,
            addr: "127.0.0.1:1".into(),
            location: vec![KeyValue {
                key: "planet".into(),
                value: "x".into(),
            }],
            crush_weight: 1.0,
        },
        MonCommand::OsdReweight { id: 0, weight: 1.5 },
        MonCommand::OsdReweight {
            id: 0,
            weight: f64::NAN,
        },
        MonCommand::OsdOut { ids: vec![0, 99] },
        MonCommand::PoolCreate {
            name: "p".into(),
            pg_num: 0,
            size: 3,
            min_size: 0,
            rule: String::new(),
        },
        MonCommand::PoolCreate {
            name: "p".into(),
            pg_num: 8,
            size: 3,
            min_size: 0,
            rule: "nope".into(),
        },
        MonCommand::PoolSet {
            name: "nope".into(),
            key: "size".into(),
            value: "2".into(),
        },
        MonCommand::PgTemp {
            pg: "9.0".into(),
            osds: vec![0],
        },
        MonCommand::AuthAdd {
            name: "mon.x".into(),
            caps: "mon rw".into(),
        },
        MonCommand::AuthAdd {
            name: "client.x".into(),
            caps: "mon everything".into(),
        },
        MonCommand::ConfigKeyRm {
            key: "absent".into(),
        },
        MonCommand::CrushRemove {
            name: "nosuch".into(),
        },
        MonCommand::OsdRm { ids: vec![5] },
        MonCommand::Status,
    ];
    for (i, cmd) in bad.into_iter().enumerate() {
        let results = s.apply_batch(
            2 + i as u64,
            &Batch {
                txns: vec![txn(0, 0, cmd)],
            },
        );
        assert!(
            matches!(results[0].result, MonResult::Err(_)),
            "{:?}",
            results[0]
        );
        let mut now = s.clone();
        now.applied = 1;
        assert_eq!(
            now.encode().unwrap(),
            before,
            "command {i} changed the state"
        );
    }
}

#[test]
fn retried_requests_apply_once() {
    let mut s = fresh();
    let first = s.apply_batch(
        1,
        &Batch {
            txns: vec![txn(42, 7, MonCommand::OsdCreate { id: -1 })],
        },
    );
    // The same request again, in a later batch and twice in one batch.
    let again = s.apply_batch(
        2,
        &Batch {
            txns: vec![
                txn(42, 7, MonCommand::OsdCreate { id: -1 }),
                txn(42, 7, MonCommand::OsdCreate { id: -1 }),
            ],
        },
    );
    assert_eq!(s.osdmap.osd_ids().count(), 1);
    assert_eq!(first[0].result, again[0].result);
    assert_eq!(first[0].result, again[1].result);
    // Another client's identical command is a different request.
    s.apply_batch(
        3,
        &Batch {
            txns: vec![txn(43, 7, MonCommand::OsdCreate { id: -1 })],
        },
    );
    assert_eq!(s.osdmap.osd_ids().count(), 2);
    // A retry answers the epoch its original went into, later and within
    // the same batch.
    let out = s.apply_batch(
        4,
        &Batch {
            txns: vec![
                txn(42, 8, MonCommand::OsdIn { ids: vec![0] }),
                txn(42, 8, MonCommand::OsdIn { ids: vec![0] }),
            ],
        },
    );
    let applied_in = s.osdmap.epoch();
    assert_eq!(
        out[0].result,
        MonResult::Ok(CommandOutput::Done { epoch: applied_in })
    );
    assert_eq!(out[1].result, out[0].result);
    s.apply_batch(
        5,
        &Batch {
            txns: vec![txn(1, 1, MonCommand::OsdIn { ids: vec![1] })],
        },
    );
    assert!(s.osdmap.epoch() > applied_in);
    let retry = s.apply_batch(
        6,
        &Batch {
            txns: vec![txn(42, 8, MonCommand::OsdIn { ids: vec![0] })],
        },
    );
    assert_eq!(
        retry[0].result,
        MonResult::Ok(CommandOutput::Done { epoch: applied_in })
    );
}

#[test]
fn state_round_trips_and_is_deterministic() {
    let batches: Vec<Batch> = (0..20)
        .map(|b| Batch {
            txns: (0..5)
                .map(|i| {
                    let tid = b * 10 + i;
                    let cmd = match i {
                        0 => MonCommand::OsdCreate { id: -1 },
                        1 => MonCommand::ConfigKeySet {
                            key: format!("k{tid}"),
                            value: vec![b as u8],
                        },
                        2 => MonCommand::PoolCreate {
                            name: format!("p{b}"),
                            pg_num: 8,
                            size: 1,
                            min_size: 0,
                            rule: String::new(),
                        },
                        3 => boot(b as i32, &format!("h{}", b % 3)),
                        _ => MonCommand::OsdDown {
                            ids: vec![b as i32],
                        },
                    };
                    txn(1, tid, cmd)
                })
                .collect(),
        })
        .collect();
    let (mut x, mut y) = (fresh(), fresh());
    for (slot, b) in batches.iter().enumerate() {
        x.apply_batch(slot as u64 + 1, b);
        let bytes = b.encode().unwrap();
        y.apply_batch(slot as u64 + 1, &Batch::decode(&bytes).unwrap());
    }
    assert_eq!(
        x.encode().unwrap(),
        y.encode().unwrap(),
        "same batches, same state"
    );
    assert_eq!(x.osdmap.pools().len(), 20);
    assert_eq!(x.down_since.len(), 20, "down times recorded");
    let back = MonState::decode(&x.encode().unwrap()).unwrap();
    assert_eq!(back, x);
    assert!(MonState::decode(b"garbage").is_err());
}

#[test]
fn caps_decide_who_may_do_what() {
    let r: Caps = "mon r".parse().unwrap();
    let rw: Caps = "mon rw".parse().unwrap();
    let osd: Caps = "mon osd".parse().unwrap();
    let none = Caps::default();
    let write = MonCommand::PoolLs;
    assert!(authorize(&r, "client.r", &write).is_ok());
    assert!(authorize(&none, "client.n", &write).is_err());
    let change = MonCommand::OsdOut { ids: vec![1] };
    assert_eq!(
        authorize(&r, "client.r", &change).unwrap_err().code,
        ErrorCode::PermissionDenied
    );
    assert!(authorize(&rw, "client.rw", &change).is_ok());
    assert!(authorize(&osd, "osd.3", &boot(3, "h")).is_ok());
    assert!(
        authorize(&osd, "osd.3", &boot(4, "h")).is_err(),
        "an OSD boots only itself"
    );
    assert!(authorize(&osd, "osd.3", &change).is_err());
    assert!(
        authorize(
            &osd,
            "osd.3",
            &MonCommand::OsdFailure {
                target: 5,
                epoch: 1,
                alive: false,
            }
        )
        .is_ok()
    );
    let s = fresh();
    assert_eq!(s.caps_of("mon.b"), Caps::ADMIN);
    assert_eq!(
        s.caps_of("mon.z"),
        Caps::default(),
        "not a monitor of this map"
    );
    assert_eq!(s.caps_of("client.admin"), Caps::ADMIN);
}

#[test]
fn store_persists_paxos_state_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let initial = fresh();
    let store = MonStore::create(dir.path(), "a", &initial).unwrap();
    assert!(
        MonStore::create(dir.path(), "a", &initial).is_err(),
        "mkfs twice is refused"
    );
    let entry = |slot| LogEntry {
        slot,
        ballot: Ballot { round: 2, node: 1 },
        command: Command::Value(vec![slot as u8]),
    };
    store
        .write(&[
            Persist {
                promised: Some(Ballot { round: 2, node: 1 }),
                entries: (1..=10).map(entry).collect(),
                ..Persist::default()
            },
            Persist {
                commit: Some(8),
                snapshot: Some(Snapshot {
                    slot: 5,
                    data: initial.encode().unwrap(),
                }),
                trim_through: Some(4),
                ..Persist::default()
            },
        ])
        .unwrap();
    drop(store);
    let store = MonStore::open(dir.path()).unwrap();
    assert_eq!(store.mon_name().unwrap(), "a");
    let ps = store.load().unwrap();
    assert_eq!(ps.promised, Ballot { round: 2, node: 1 });
    assert_eq!(ps.commit, 8);
    assert_eq!(ps.snapshot.as_ref().map(|s| s.slot), Some(5));
    assert_eq!(
        ps.entries.iter().map(|e| e.slot).collect::<Vec<_>>(),
        (5..=10).collect::<Vec<_>>()
    );
    assert_eq!(store.initial_state().unwrap(), initial);
}

#[test]
fn peers_on_two_hosts_mark_a_beaconing_osd_down_and_one_host_alone_cannot() {
    let mut s = with_osds_on(&["h0", "h0", "h1", "h2"]);
    let map: OsdMap = s.osdmap.clone();
    let policy = FailurePolicy {
        beacon_grace_ms: 1000,
        min_reporters: 2,
        down_out_interval_ms: 0,
    };
    let mut fd = FailureDetector::default();
    fd.reset(&map, 0);
    let none = BTreeMap::new();
    // Host h0 (osd.0 and osd.1) cut off from the rest reports everyone:
    // one host, one reporter, nobody goes down.
    for (t, target) in [(100, 2), (110, 3)] {
        fd.report(target, "osd.0", t);
        fd.report(target, "osd.1", t + 5);
    }
    for id in 0..4 {
        fd.beacon(id, 200);
    }
    assert!(fd.judge(&map, &none, &policy, 300, 0).down.is_empty());
    // osd.3 is cut off from its peers but still beacons: reports from a
    // second host mark it down.
    fd.report(3, "osd.2", 400);
    fd.beacon(3, 450);
    // A report withdrawn (the reporter hears from it again) no longer
    // counts; made again, it does.
    fd.cancel(3, "osd.2");
    assert!(fd.judge(&map, &none, &policy, 460, 0).down.is_empty());
    fd.report(3, "osd.2", 470);
    assert_eq!(fd.judge(&map, &none, &policy, 500, 0).down, vec![3]);
    // Reports older than the grace are forgotten: h0's against osd.2 and
    // a new one from h2 are two hosts, but not within one grace.
    for id in 0..3 {
        fd.beacon(id, 2000);
    }
    fd.report(2, "osd.3", 2000);
    assert!(fd.judge(&map, &none, &policy, 2050, 0).down.is_empty());
    // Once osd.3 is down, its reports do not count: with h0's, osd.2 stays up.
    s.apply_batch(
        2,
        &Batch {
            txns: vec![txn(0, 0, MonCommand::OsdDown { ids: vec![3] })],
        },
    );
    let map = s.osdmap.clone();
    fd.map_changed(&map, 2060);
    fd.report(2, "osd.3", 2070);
    fd.report(2, "osd.0", 2080);
    assert!(fd.judge(&map, &none, &policy, 2090, 0).down.is_empty());
    fd.report(2, "osd.1", 2100); // h0 again
    assert!(fd.judge(&map, &none, &policy, 2110, 0).down.is_empty());
}

#[test]
fn failure_detector_marks_silent_or_reported_osds_down_then_out() {
    let mut s = with_osds_on(&["h0", "h1", "h2"]);
    let map: OsdMap = s.osdmap.clone();
    let policy = FailurePolicy {
        beacon_grace_ms: 1000,
        min_reporters: 2,
        down_out_interval_ms: 5000,
    };
    let mut fd = FailureDetector::default();
    fd.reset(&map, 0);
    let none = BTreeMap::new();
    assert!(fd.judge(&map, &none, &policy, 900, 0).down.is_empty());
    fd.beacon(0, 900);
    // One report is not enough; two distinct reporters are.
    fd.report(2, "osd.0", 950);
    fd.beacon(2, 950);
    fd.report(2, "osd.0", 960); // the same reporter again
    assert!(fd.judge(&map, &none, &policy, 970, 0).down.is_empty());
    fd.report(2, "osd.1", 980);
    assert_eq!(fd.judge(&map, &none, &policy, 990, 0).down, vec![2]);
    // osd.1 fell silent: down after the grace; not proposed twice.
    let v = fd.judge(&map, &none, &policy, 1500, 0);
    assert_eq!(v.down, vec![1]);
    assert!(fd.judge(&map, &none, &policy, 1600, 0).down.is_empty());
    // Down long enough: out.
    s.apply_batch(
        2,
        &Batch {
            txns: vec![txn(0, 0, MonCommand::OsdDown { ids: vec![1, 2] })],
        },
    );
    fd.map_changed(&s.osdmap, 1700);
    let since = s.down_since.clone();
    assert_eq!(since.get(&1), Some(&1_000_000));
    assert!(
        fd.judge(&s.osdmap, &since, &policy, 1800, 1_004_000)
            .out
            .is_empty()
    );
    assert_eq!(
        fd.judge(&s.osdmap, &since, &policy, 1800, 1_005_000).out,
        vec![1, 2]
    );
    // The monitors mark them out; an operator marks osd.2 out too.
    let by_mons = Txn {
        origin: "mon.a".into(),
        ..txn(0, 0, MonCommand::OsdOut { ids: vec![1, 2] })
    };
    s.apply_batch(
        3,
        &Batch {
            txns: vec![by_mons],
        },
    );
    s.apply_batch(
        4,
        &Batch {
            txns: vec![txn(1, 7, MonCommand::OsdOut { ids: vec![2] })],
        },
    );
    assert!(!s.osdmap.is_in(1) && !s.osdmap.is_in(2));
    // Booting again: the monitors' out is undone, the operator's stays.
    s.apply_batch(
        5,
        &Batch {
            txns: vec![txn(1, 8, boot(1, "h1")), txn(1, 9, boot(2, "h2"))],
        },
    );
    assert!(s.osdmap.is_in(1), "an automatic out ends with the boot");
    assert!(!s.osdmap.is_in(2), "an operator's out stays");
}

#[test]
fn subscriptions_get_incrementals_full_maps_or_wait() {
    use shoal_mon::view::MapView;
    use shoal_proto::subscribe::SubscribeRequest;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let settings = StateSettings {
        keep_incrementals: 3,
        ..StateSettings::default()
    };
    let mons = vec![("a".to_string(), "127.0.0.1:6789".parse().unwrap())];
    let mut s = initial_state("shoal", Fsid([1; 16]), &mons, "osd", settings).unwrap();
    let view = MapView::new(&s);
    let req = |have, wait_ms| SubscribeRequest {
        osdmap_have: have,
        monmap_have: 1,
        wait_ms,
    };
    rt.block_on(async {
        // Not in quorum: no answer.
        assert!(view.subscribe(&req(0, 0)).await.is_none());
        view.set_in_quorum(true);
        // Nothing at all yet: the full map.
        let r = view.subscribe(&req(0, 0)).await.unwrap();
        assert_eq!(OsdMap::decode(&r.full_osdmap.unwrap()).unwrap(), s.osdmap);
        // Up to date: waits, then answers empty at the deadline.
        let r = view.subscribe(&req(1, 30)).await.unwrap();
        assert!(r.full_osdmap.is_none() && r.incrementals.is_empty());
    });
    for slot in 1..=5u64 {
        s.apply_batch(
            slot,
            &Batch {
                txns: vec![txn(1, slot, MonCommand::OsdCreate { id: -1 })],
            },
        );
        view.refresh(&s);
    }
    rt.block_on(async {
        // Close behind: the missing incrementals, in order.
        let r = view.subscribe(&req(4, 0)).await.unwrap();
        assert!(r.full_osdmap.is_none());
        let epochs: Vec<u32> = r
            .incrementals
            .iter()
            .map(|b| OsdMapIncremental::decode(b).unwrap().epoch)
            .collect();
        assert_eq!(epochs, [5, 6]);
        // Behind the oldest incremental kept (3 kept): a full map.
        let r = view.subscribe(&req(2, 0)).await.unwrap();
        assert_eq!(OsdMap::decode(&r.full_osdmap.unwrap()).unwrap().epoch(), 6);
        // A waiting subscriber is woken by the next epoch (long before its
        // minute-long wait would end on its own).
        let later = req(6, 60_000);
        let waiting =
            tokio::time::timeout(std::time::Duration::from_secs(10), view.subscribe(&later));
        let mut s2 = s.clone();
        s2.apply_batch(
            6,
            &Batch {
                txns: vec![txn(1, 99, MonCommand::OsdCreate { id: -1 })],
            },
        );
        let (r, ()) = tokio::join!(waiting, async { view.refresh(&s2) });
        let r = r.expect("woken by the new epoch, not by its own deadline");
        assert_eq!(r.unwrap().incrementals.len(), 1);
    });
}

#[test]
fn the_activation_record_keeps_only_the_current_chain() {
    let mut s = fresh();
    let mut slot = 0;
    let mut run = |s: &mut MonState, cmd: MonCommand| {
        slot += 1;
        let r = s.apply_batch(
            slot,
            &Batch {
                txns: vec![txn(0, 0, cmd)],
            },
        );
        r[0].result.clone()
    };
    for id in 0..3 {
        ok(&run(&mut s, MonCommand::OsdCreate { id }));
        ok(&run(&mut s, boot(id, &format!("h{id}"))));
    }
    ok(&run(
        &mut s,
        MonCommand::PoolCreate {
            name: "p".into(),
            pg_num: 8,
            size: 3,
            min_size: 0,
            rule: String::new(),
        },
    ));
    let pg: shoal_map::PgId = "1.3".parse().unwrap();
    let chain = |s: &MonState| {
        let mut ws = s.osdmap.new_workspace();
        s.osdmap.pg_to_up_acting(pg, &mut ws).unwrap().chain()
    };
    let activated = |interval: u32, acting: Vec<i32>| MonCommand::PgActivated {
        pg: "1.3".into(),
        interval,
        acting,
    };
    let none = CommandOutput::PgActive {
        epoch: 0,
        acting: vec![],
    };
    assert_eq!(ok(&run(&mut s, activated(0, vec![]))), &none);

    let c = chain(&s);
    assert_eq!(c.len(), 3);
    let e = s.osdmap.epoch();
    let err = |r: MonResult| match r {
        MonResult::Err(e) => e.code,
        MonResult::Ok(o) => panic!("accepted: {o:?}"),
    };
    let mut wrong = c.clone();
    wrong.reverse();
    assert_eq!(err(run(&mut s, activated(e, wrong))), ErrorCode::Busy);
    assert_eq!(
        err(run(&mut s, activated(e + 1, c.clone()))),
        ErrorCode::Invalid,
        "an interval from the future"
    );
    assert_eq!(ok(&run(&mut s, activated(0, vec![]))), &none);
    let recorded = CommandOutput::PgActive {
        epoch: e,
        acting: c.clone(),
    };
    assert_eq!(ok(&run(&mut s, activated(e, c.clone()))), &recorded);
    assert_eq!(ok(&run(&mut s, activated(0, vec![]))), &recorded);
    let back = MonState::decode(&s.encode().unwrap()).unwrap();
    assert_eq!(back, s, "the record is part of the state");

    // A restarted member: the chain is the same again, but the member did
    // not serve the old interval throughout.
    ok(&run(&mut s, MonCommand::OsdDown { ids: vec![c[1]] }));
    assert_ne!(chain(&s), c);
    ok(&run(&mut s, boot(c[1], &format!("h{}", c[1]))));
    assert_eq!(chain(&s), c);
    let later = s.osdmap.epoch();
    assert_eq!(err(run(&mut s, activated(e, c.clone()))), ErrorCode::Busy);
    let newer = CommandOutput::PgActive {
        epoch: later,
        acting: c.clone(),
    };
    assert_eq!(ok(&run(&mut s, activated(later, c.clone()))), &newer);
    // An older interval cannot replace a newer record.
    assert_eq!(
        err(run(&mut s, activated(later - 1, c.clone()))),
        ErrorCode::Busy
    );
    assert_eq!(ok(&run(&mut s, activated(0, vec![]))), &newer);
    ok(&run(
        &mut s,
        MonCommand::PoolRm {
            name: "p".into(),
            confirm: "p".into(),
        },
    ));
    assert!(s.pg_active.is_empty(), "a removed pool's records go");

    let osd: Caps = "mon osd".parse().unwrap();
    assert!(authorize(&osd, "osd.3", &activated(1, vec![3])).is_ok());
    assert!(authorize(&Caps::default(), "client.x", &activated(0, vec![])).is_err());
}

/// `pg_num` raises set the `pgp_num` target too, an operator's `pgp_num`
/// is a target, and only the leader's `pgp_num_actual` steps move
/// placement; a target above `pg_num` is refused.
#[test]
fn pgp_num_is_a_target_the_leader_steps_toward() {
    let mut s = with_osds_on(&["h0", "h1", "h2"]);
    let set = |key: &str, value: u32| MonCommand::PoolSet {
        name: "p".into(),
        key: key.into(),
        value: value.to_string(),
    };
    let create = MonCommand::PoolCreate {
        name: "p".into(),
        pg_num: 8,
        size: 3,
        min_size: 0,
        rule: String::new(),
    };
    let mut tid = 100;
    let mut apply = |s: &mut MonState, c: MonCommand| {
        tid += 1;
        let r = s.apply_batch(
            tid,
            &Batch {
                txns: vec![txn(1, tid, c)],
            },
        );
        r[0].result.clone()
    };
    ok(&apply(&mut s, create));
    let pool = |s: &MonState| {
        let p = s.osdmap.pool_by_name("p").unwrap();
        (p.pg_num, p.pgp_num, p.pgp_num_target)
    };
    ok(&apply(&mut s, set("pg_num", 32)));
    assert_eq!(pool(&s), (32, 8, 32), "placement follows later");
    ok(&apply(&mut s, set("pgp_num_actual", 9)));
    assert_eq!(pool(&s), (32, 9, 32));
    ok(&apply(&mut s, set("pgp_num", 16)));
    assert_eq!(pool(&s), (32, 9, 16), "an operator sets the target only");
    assert!(matches!(
        apply(&mut s, set("pgp_num", 33)),
        MonResult::Err(_)
    ));
    assert!(matches!(
        apply(&mut s, set("pgp_num_actual", 0)),
        MonResult::Err(_)
    ));
    assert_eq!(pool(&s), (32, 9, 16));
}
