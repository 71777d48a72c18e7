//! Unit tests of the pieces: persistence gating, elections, stale and
//! duplicate messages, pipelining, recovery, catch-up by log and by
//! snapshot, leases with drift, restarts, encodings.

mod common;

use common::{Harness, config};
use shoal_paxos::{
    Ballot, Body, Command, Config, LogEntry, MAX_SLOT, Message, Node, PaxosError, PersistentState,
    ProposeError, RoleKind, SLOT_HORIZON, Snapshot, StepError,
};

fn msg(from: u64, to: u64, body: Body) -> Message {
    Message { from, to, body }
}

fn fresh(id: u64, n: u64) -> Node {
    Node::new(config(id, n), PersistentState::default()).unwrap()
}

#[test]
fn promise_leaves_only_after_persistence() {
    let mut n = fresh(2, 3);
    let b = Ballot::new(1, 1);
    n.step(
        msg(
            1,
            2,
            Body::Prepare {
                ballot: b,
                from_slot: 1,
            },
        ),
        0,
    )
    .unwrap();
    let rd = n.ready();
    assert_eq!(rd.persist.promised, Some(b));
    assert!(rd.messages.is_empty(), "promise sent before persisting");
    // A duplicate prepare before the write is confirmed: still held (and
    // not queued twice).
    n.step(
        msg(
            1,
            2,
            Body::Prepare {
                ballot: b,
                from_slot: 1,
            },
        ),
        0,
    )
    .unwrap();
    assert!(!n.has_ready() || n.ready().messages.is_empty());
    n.advance(&rd).unwrap();
    let rd2 = n.ready();
    let promises: Vec<_> = rd2
        .messages
        .iter()
        .filter(|m| matches!(m.body, Body::Promise { .. }))
        .collect();
    // The duplicate's identical reply was folded into the held one.
    assert_eq!(promises.len(), 1);
    assert_eq!(n.promised(), b);
}

#[test]
fn accepted_leaves_only_after_persistence() {
    let mut n = fresh(2, 3);
    let b = Ballot::new(1, 1);
    n.step(
        msg(
            1,
            2,
            Body::Accept {
                ballot: b,
                slot: 1,
                command: Command::Value(b"x".to_vec()),
                commit: 0,
            },
        ),
        0,
    )
    .unwrap();
    let rd = n.ready();
    assert_eq!(rd.persist.entries.len(), 1);
    assert_eq!(rd.persist.promised, Some(b));
    assert!(rd.messages.is_empty());
    n.advance(&rd).unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.messages,
        vec![msg(2, 1, Body::Accepted { ballot: b, slot: 1 })]
    );
}

#[test]
fn candidate_prepare_waits_for_its_own_promise() {
    let mut n = fresh(1, 3);
    n.campaign(0);
    let rd = n.ready();
    assert_eq!(rd.persist.promised, Some(Ballot::new(1, 1)));
    assert!(rd.messages.is_empty());
    n.advance(&rd).unwrap();
    let rd = n.ready();
    assert_eq!(
        rd.messages
            .iter()
            .filter(|m| matches!(m.body, Body::Prepare { .. }))
            .count(),
        2
    );
}

#[test]
fn crash_before_persisting_forgets_the_promise_and_sent_nothing() {
    let mut h = Harness::new(3);
    let b = Ballot::new(5, 1);
    let n = h.node_mut(2);
    n.step(
        msg(
            1,
            2,
            Body::Prepare {
                ballot: b,
                from_slot: 1,
            },
        ),
        0,
    )
    .unwrap();
    let rd = n.ready();
    assert!(rd.messages.is_empty());
    // Crash: the ready is never persisted.
    h.crash(2);
    h.restart(2);
    assert_eq!(h.node(2).promised(), Ballot::ZERO);
    // A node restarted after persisting its own ballot never reuses it.
    let n = h.node_mut(3);
    n.campaign(0);
    let rd = n.ready();
    h.disks.get_mut(&3).unwrap().apply(&rd.persist);
    h.crash(3);
    h.restart(3);
    // (Its restart quarantine, armed at the first clock reading, delays
    // the campaign by one lease.)
    h.node_mut(3).campaign(1000);
    assert_eq!(h.node(3).ballot(), None);
    h.node_mut(3).campaign(1050);
    assert!(h.node(3).ballot().unwrap() > Ballot::new(1, 3));
}

#[test]
fn three_nodes_elect_and_commit_in_order() {
    let mut h = Harness::new(3);
    h.elect(1);
    for i in 0..10u8 {
        h.propose(1, &[i]);
    }
    h.deliver_all();
    let want: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
    // Followers learn the last commits with the next message from the
    // leader (a heartbeat).
    h.run(20, 10);
    for id in 1..=3 {
        assert_eq!(h.values(id), want, "node {id}");
        assert_eq!(h.node(id).commit_index(), 10);
    }
    assert_eq!(h.node(2).leader_hint(), Some(1));
    assert_eq!(h.node(2).role(), RoleKind::Follower);
}

#[test]
fn window_bounds_slots_in_flight() {
    let mut h = Harness::new(3);
    h.elect(1);
    for i in 0..10u8 {
        h.node_mut(1).propose(vec![i]).unwrap();
    }
    assert_eq!(h.node(1).in_flight(), 4);
    assert_eq!(h.node(1).queued_proposals(), 6);
    h.deliver_all();
    assert_eq!(h.node(1).in_flight(), 0);
    assert_eq!(h.node(1).commit_index(), 10);
}

#[test]
fn followers_refuse_proposals_with_a_hint() {
    let mut h = Harness::new(3);
    h.elect(1);
    assert_eq!(
        h.node_mut(2).propose(b"v".to_vec()),
        Err(ProposeError::NotLeader { leader: None })
    );
    h.run(20, 10);
    assert_eq!(
        h.node_mut(2).propose(b"v".to_vec()),
        Err(ProposeError::NotLeader { leader: Some(1) })
    );
}

#[test]
fn queue_is_bounded() {
    let mut h = Harness::with(3, |c| {
        c.max_pending = 2;
        c.window = 1;
    });
    h.elect(1);
    let n = h.node_mut(1);
    n.propose(vec![1]).unwrap(); // takes the slot
    n.propose(vec![2]).unwrap();
    n.propose(vec![3]).unwrap();
    assert_eq!(n.propose(vec![4]), Err(ProposeError::QueueFull(2)));
}

#[test]
fn bad_messages_are_refused_without_panic() {
    let mut n = fresh(2, 3);
    let b = Ballot::new(1, 1);
    assert_eq!(
        n.step(
            msg(
                1,
                3,
                Body::Commit {
                    ballot: b,
                    commit: 1
                }
            ),
            0
        ),
        Err(StepError::NotForMe(3))
    );
    assert_eq!(
        n.step(
            msg(
                9,
                2,
                Body::Commit {
                    ballot: b,
                    commit: 1
                }
            ),
            0
        ),
        Err(StepError::UnknownSender(9))
    );
    assert_eq!(
        n.step(
            msg(
                2,
                2,
                Body::Commit {
                    ballot: b,
                    commit: 1
                }
            ),
            0
        ),
        Err(StepError::UnknownSender(2))
    );
    assert_eq!(
        n.step(
            msg(
                1,
                2,
                Body::Prepare {
                    ballot: Ballot::new(1, 7),
                    from_slot: 1
                }
            ),
            0
        ),
        Err(StepError::ForeignBallot(7))
    );
    // Rounds beyond MAX_ROUND, wherever a ballot hides, and a refusal
    // naming a non-member's promise.
    let huge = Ballot::new(u64::MAX, 1);
    for (body, want) in [
        (
            Body::Prepare {
                ballot: huge,
                from_slot: 1,
            },
            StepError::RoundOutOfRange(u64::MAX),
        ),
        (
            Body::Reject {
                ballot: b,
                promised: huge,
            },
            StepError::RoundOutOfRange(u64::MAX),
        ),
        (
            Body::Reject {
                ballot: b,
                promised: Ballot::new(3, 9),
            },
            StepError::ForeignBallot(9),
        ),
        (
            Body::Promise {
                ballot: b,
                commit: 0,
                entries: vec![LogEntry {
                    slot: 1,
                    ballot: huge,
                    command: Command::Noop,
                }],
            },
            StepError::RoundOutOfRange(u64::MAX),
        ),
    ] {
        assert_eq!(n.step(msg(1, 2, body), 0), Err(want));
    }
    // Nonsense that is well-formed is handled: slot 0, huge commit,
    // catch-up for slot 0, empty snapshot behind us, unexpected replies.
    for body in [
        Body::Accept {
            ballot: b,
            slot: 0,
            command: Command::Noop,
            commit: MAX_SLOT,
        },
        Body::Commit {
            ballot: b,
            commit: MAX_SLOT,
        },
        Body::CatchupRequest { from_slot: 0 },
        Body::CatchupRequest {
            from_slot: MAX_SLOT,
        },
        Body::CatchupReply {
            commit: MAX_SLOT,
            entries: vec![LogEntry {
                slot: 5,
                ballot: b,
                command: Command::Noop,
            }],
        },
        Body::InstallSnapshot {
            snapshot: Snapshot {
                slot: 0,
                data: vec![],
            },
        },
        Body::Promise {
            ballot: b,
            commit: MAX_SLOT,
            entries: vec![],
        },
        Body::Accepted {
            ballot: b,
            slot: MAX_SLOT,
        },
        Body::HeartbeatAck {
            ballot: b,
            lease_start: MAX_SLOT,
            lease_granted: true,
        },
        Body::Reject {
            ballot: b,
            promised: Ballot::ZERO,
        },
        Body::Heartbeat {
            ballot: b,
            commit: MAX_SLOT,
            lease_start: MAX_SLOT,
        },
    ] {
        n.step(msg(1, 2, body), u64::MAX).unwrap();
        while n.has_ready() {
            let rd = n.ready();
            n.advance(&rd).unwrap();
        }
    }
    assert_eq!(n.commit_index(), 0);
    // Slots beyond MAX_SLOT are refused outright.
    for body in [
        Body::Accept {
            ballot: b,
            slot: u64::MAX,
            command: Command::Noop,
            commit: 0,
        },
        Body::InstallSnapshot {
            snapshot: Snapshot {
                slot: MAX_SLOT + 1,
                data: vec![],
            },
        },
        Body::CatchupReply {
            commit: 0,
            entries: vec![LogEntry {
                slot: u64::MAX,
                ballot: b,
                command: Command::Noop,
            }],
        },
    ] {
        assert!(matches!(
            n.step(msg(1, 2, body), 0),
            Err(StepError::SlotOutOfRange(_))
        ));
    }
}

#[test]
fn accepts_far_ahead_get_no_vote_and_are_not_recovered() {
    let mut n = fresh(2, 3);
    let b = Ballot::new(1, 1);
    n.step(
        msg(
            1,
            2,
            Body::Accept {
                ballot: b,
                slot: SLOT_HORIZON + 1,
                command: Command::Noop,
                commit: 0,
            },
        ),
        0,
    )
    .unwrap();
    assert_eq!(n.entries().count(), 0);
    let rd = n.ready();
    assert!(
        rd.messages
            .iter()
            .all(|m| matches!(m.body, Body::CatchupRequest { .. }))
    );
    // A candidate ignores a report of a slot beyond the horizon: it does
    // not fill a million slots with no-ops.
    let mut h = Harness::with(3, |c| c.lease_duration = 0);
    let far = LogEntry {
        slot: SLOT_HORIZON * 16,
        ballot: Ballot::new(1, 3),
        command: Command::Value(b"bogus".to_vec()),
    };
    h.node_mut(1).campaign(0);
    h.process(1);
    h.net.retain(|m| m.to != 3);
    h.net.push_back(msg(
        3,
        1,
        Body::Promise {
            ballot: Ballot::new(1, 1),
            commit: 0,
            entries: vec![far],
        },
    ));
    h.deliver_all();
    assert!(h.node(1).is_leader());
    assert_eq!(h.node(1).in_flight(), 0);
}

#[test]
fn stale_ballots_are_refused_and_depose_the_old_leader() {
    let mut h = Harness::with(3, |c| c.lease_duration = 0);
    h.elect(1);
    h.propose(1, b"a");
    h.deliver_all();
    h.elect(2);
    assert!(h.node(2).is_leader());
    // Node 1 still believes it leads until it hears of ballot 2.
    assert!(h.node(1).is_leader() || h.node(1).role() == RoleKind::Follower);
    let old = Ballot::new(1, 1);
    // An accept of the old ballot is refused and changes nothing.
    let before: Vec<LogEntry> = h.node(3).entries().cloned().collect();
    h.node_mut(3)
        .step(
            msg(
                1,
                3,
                Body::Accept {
                    ballot: old,
                    slot: 2,
                    command: Command::Value(b"stale".to_vec()),
                    commit: 1,
                },
            ),
            0,
        )
        .unwrap();
    let rd = h.node_mut(3).ready();
    assert!(rd.persist.is_empty());
    assert!(matches!(
        rd.messages.as_slice(),
        [Message {
            body: Body::Reject { .. },
            ..
        }]
    ));
    h.node_mut(3).advance(&rd).unwrap();
    let after: Vec<LogEntry> = h.node(3).entries().cloned().collect();
    assert_eq!(before, after);
    // The old leader proposes; the refusals depose it; its queued value
    // comes back to the shell.
    let _ = h.node_mut(1).propose(b"late".to_vec());
    h.deliver_all();
    assert!(!h.node(1).is_leader());
    h.propose(2, b"b");
    h.run(20, 10);
    for id in 1..=3 {
        assert_eq!(
            h.values(id),
            vec![b"a".to_vec(), b"b".to_vec()],
            "node {id}"
        );
    }
}

#[test]
fn duplicate_and_replayed_messages_change_nothing() {
    let mut h = Harness::new(3);
    h.elect(1);
    h.propose(1, b"a");
    // Record everything, deliver twice in reverse order.
    let mut log = Vec::new();
    while let Some(m) = h.net.pop_front() {
        log.push(m.clone());
        let to = m.to;
        let now = h.now;
        h.node_mut(to).step(m, now).unwrap();
        h.process(to);
    }
    for m in log.iter().rev() {
        let to = m.to;
        let now = h.now;
        h.node_mut(to).step(m.clone(), now).unwrap();
        h.process(to);
    }
    h.deliver_all();
    h.run(20, 10);
    for id in 1..=3 {
        assert_eq!(h.values(id), vec![b"a".to_vec()]);
    }
}

#[test]
fn new_leader_recovers_a_value_accepted_by_a_minority() {
    let mut h = Harness::with(3, |c| c.lease_duration = 0);
    h.elect(1);
    // Node 1's accept reaches only node 2 (and itself).
    h.cut.insert((1, 3));
    h.cut.insert((2, 1));
    h.propose(1, b"x");
    h.deliver_all();
    assert_eq!(
        h.node(2).entry(1).map(|e| e.command.clone()),
        Some(Command::Value(b"x".to_vec()))
    );
    assert_eq!(h.node(1).commit_index(), 0);
    h.crash(1);
    h.heal();
    h.elect(3);
    h.run(20, 10);
    // The value may have been chosen (1 and 2 accepted it): it must be kept.
    assert_eq!(h.values(3), vec![b"x".to_vec()]);
    assert_eq!(h.values(2), vec![b"x".to_vec()]);
}

#[test]
fn new_leader_fills_holes_with_noops() {
    let mut h = Harness::with(3, |c| c.lease_duration = 0);
    h.elect(1);
    // Slot 1 reaches nobody, slot 2 reaches node 2.
    h.cut.insert((1, 2));
    h.cut.insert((1, 3));
    h.node_mut(1).propose(b"lost".to_vec()).unwrap();
    h.process(1);
    h.net.clear();
    h.cut.remove(&(1, 2));
    h.node_mut(1).propose(b"kept".to_vec()).unwrap();
    h.process(1);
    h.net
        .retain(|m| matches!(m.body, Body::Accept { slot: 2, .. }));
    h.deliver_all();
    h.crash(1);
    h.heal();
    h.elect(2);
    h.run(20, 10);
    let m = &h.machines[&3];
    assert_eq!(m.values[0], (1, Command::Noop));
    assert_eq!(m.values[1], (2, Command::Value(b"kept".to_vec())));
}

#[test]
fn lagging_member_catches_up_from_the_log() {
    let mut h = Harness::new(3);
    h.elect(1);
    h.isolate(3);
    for i in 0..20u8 {
        h.propose(1, &[i]);
        h.deliver_all();
    }
    assert_eq!(h.node(3).commit_index(), 0);
    h.heal();
    h.run(100, 10);
    let want: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i]).collect();
    assert_eq!(h.values(3), want);
    assert!(
        h.node(3).snapshot().is_none(),
        "caught up without a snapshot"
    );
}

#[test]
fn lagging_member_catches_up_by_snapshot_when_the_log_is_trimmed() {
    let mut h = Harness::new(3);
    h.elect(1);
    h.isolate(3);
    for i in 0..12u8 {
        h.propose(1, &[i]);
        h.deliver_all();
    }
    h.run(20, 10);
    h.snapshot(1);
    h.snapshot(2);
    assert_eq!(h.node(1).log_start(), 13);
    assert_eq!(h.disks[&1].entry_count(), 0);
    // More values after the snapshot.
    for i in 12..15u8 {
        h.propose(1, &[i]);
        h.deliver_all();
    }
    h.heal();
    h.run(100, 10);
    let want: Vec<Vec<u8>> = (0..15u8).map(|i| vec![i]).collect();
    assert_eq!(h.values(3), want);
    assert_eq!(h.node(3).snapshot().map(|s| s.slot), Some(12));
    assert_eq!(h.machines[&3].base, 12);
    // And after a restart node 3 rebuilds from its stored snapshot.
    h.crash(3);
    h.restart(3);
    h.run(30, 10);
    assert_eq!(h.values(3), want);
}

#[test]
fn candidate_behind_a_trimmed_quorum_catches_up_before_leading() {
    let mut h = Harness::with(3, |c| c.lease_duration = 0);
    h.elect(1);
    h.isolate(3);
    for i in 0..10u8 {
        h.propose(1, &[i]);
        h.deliver_all();
    }
    h.run(20, 10);
    h.snapshot(1);
    h.snapshot(2);
    h.crash(1);
    h.heal();
    // Node 3 (knows nothing) campaigns; node 2 promises but has trimmed
    // everything: node 3 must fetch the snapshot before proposing.
    h.elect(3);
    assert!(h.node(3).commit_index() >= 10);
    h.propose(3, b"after");
    h.run(30, 10);
    let mut want: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
    want.push(b"after".to_vec());
    assert_eq!(h.values(3), want);
    assert_eq!(h.values(2), want);
}

#[test]
fn snapshot_wanted_after_interval() {
    let mut h = Harness::with(1, |c| c.snapshot_interval = 5);
    h.elect(1);
    for i in 0..4u8 {
        h.propose(1, &[i]);
    }
    assert!(!h.snapshot_wanted.contains_key(&1));
    h.propose(1, &[4]);
    assert_eq!(h.snapshot_wanted.get(&1), Some(&5));
    h.snapshot(1);
    for i in 5..9u8 {
        h.propose(1, &[i]);
    }
    assert_eq!(h.snapshot_wanted.get(&1), Some(&5));
    h.propose(1, &[9]);
    assert_eq!(h.snapshot_wanted.get(&1), Some(&10));
}

#[test]
fn compact_errors() {
    let mut h = Harness::new(1);
    h.elect(1);
    h.propose(1, b"a");
    let n = h.node_mut(1);
    assert!(matches!(
        n.compact(Snapshot {
            slot: 5,
            data: vec![]
        }),
        Err(PaxosError::SnapshotAhead { .. })
    ));
    n.compact(Snapshot {
        slot: 1,
        data: vec![],
    })
    .unwrap();
    assert!(matches!(
        n.compact(Snapshot {
            slot: 1,
            data: vec![]
        }),
        Err(PaxosError::StaleSnapshot { .. })
    ));
    let rd = shoal_paxos::Ready {
        number: 999,
        ..Default::default()
    };
    assert_eq!(n.advance(&rd), Err(PaxosError::UnknownReady(999)));
}

#[test]
fn restart_validates_persisted_state() {
    let e = |slot| LogEntry {
        slot,
        ballot: Ballot::new(1, 1),
        command: Command::Noop,
    };
    let st = PersistentState {
        promised: Ballot::new(1, 1),
        commit: 3,
        snapshot: None,
        entries: vec![e(1), e(3)],
    };
    assert_eq!(
        Node::new(config(1, 3), st).unwrap_err(),
        PaxosError::MissingCommitted { slot: 2, commit: 3 }
    );
    // A damaged store naming impossible rounds or slots is refused.
    let st = PersistentState {
        promised: Ballot::new(u64::MAX, 1),
        commit: 0,
        snapshot: None,
        entries: vec![],
    };
    assert_eq!(
        Node::new(config(1, 3), st).unwrap_err(),
        PaxosError::OutOfRange(u64::MAX)
    );
    let st = PersistentState {
        promised: Ballot::new(1, 1),
        commit: u64::MAX,
        snapshot: None,
        entries: vec![],
    };
    assert_eq!(
        Node::new(config(1, 3), st).unwrap_err(),
        PaxosError::OutOfRange(u64::MAX)
    );
    let st = PersistentState {
        promised: Ballot::new(1, 1),
        commit: 1,
        snapshot: None,
        entries: vec![e(1)],
    };
    let mut c = config(1, 3);
    c.applied = 2;
    assert_eq!(
        Node::new(c, st.clone()).unwrap_err(),
        PaxosError::AppliedBeyondCommit {
            applied: 2,
            commit: 1
        }
    );
    let mut c = config(1, 3);
    c.members = vec![2, 3];
    assert!(matches!(Node::new(c, st), Err(PaxosError::Config(_))));
}

#[test]
fn restart_redelivers_committed_values_after_applied() {
    let mut h = Harness::new(3);
    h.elect(1);
    for i in 0..5u8 {
        h.propose(1, &[i]);
    }
    h.run(20, 10);
    h.crash(2);
    h.restart(2); // machine rebuilt from scratch: applied = 0
    h.run(20, 10);
    assert_eq!(h.values(2).len(), 5);
}

// ---- leases ------------------------------------------------------------

fn lease_cluster() -> Harness {
    // lease 50, drift 1% -> effective 49 (50 * 0.99 / 1.01 = 49.0)
    let mut h = Harness::new(3);
    h.elect(1);
    h
}

#[test]
fn lease_is_granted_renewed_and_expires_with_drift_allowance() {
    let mut h = lease_cluster();
    assert!(!h.node(1).can_serve_lease_read(h.now), "no heartbeat yet");
    h.run(10, 10); // heartbeat at t=10 -> lease until 10 + 49
    assert_eq!(h.node(1).config().effective_lease(), 49);
    assert!(h.node(1).can_serve_lease_read(10));
    assert!(h.node(1).can_serve_lease_read(58));
    assert!(!h.node(1).can_serve_lease_read(59));
    assert_eq!(h.node(1).lease_read_index(10), Some(0));
    // Renewed by later heartbeats.
    h.run(40, 10);
    assert!(h.node(1).can_serve_lease_read(h.now + 40));
    // Cut off from everyone, the lease runs out and is not renewed.
    h.isolate(1);
    let t = h.now;
    h.run(60, 10);
    assert!(!h.node(1).can_serve_lease_read(h.now));
    assert!(!h.node(1).can_serve_lease_read(t + 49));
    // Nobody else can serve either.
    for id in 2..=3 {
        assert!(!h.node(id).can_serve_lease_read(h.now));
    }
}

#[test]
fn acceptors_holding_a_lease_refuse_other_candidates_until_it_ends() {
    let mut h = lease_cluster();
    h.run(10, 10); // node 2 and 3 grant until 10 + 50 on their clocks
    h.isolate(1);
    // Node 2 campaigns at t=20: node 3 (and 2's own acceptor) refuse.
    h.now = 20;
    h.node_mut(2).campaign(20);
    h.deliver_all();
    assert!(!h.node(2).is_leader());
    assert_eq!(h.node(3).promised(), Ballot::new(1, 1));
    // After the grants ran out (t >= 60 on 2 and 3's clocks) it works.
    h.now = 61;
    for id in 2..=3 {
        h.node_mut(id).tick(61);
    }
    h.node_mut(2).campaign(61);
    h.deliver_all();
    assert!(h.node(2).is_leader());
    // The old leader's lease (until 59 on its clock) is over by then.
    assert!(!h.node(1).can_serve_lease_read(61));
}

#[test]
fn lease_reads_wait_for_recovered_slots_to_commit() {
    let mut h = Harness::new(3);
    h.elect(1);
    h.cut.insert((1, 2));
    h.cut.insert((1, 3));
    h.propose(1, b"x");
    h.net.clear();
    h.heal();
    // Node 1's own acceptor has slot 1; a new leader built with node 1's
    // promise must commit it before serving reads.
    h.crash(2);
    h.run(200, 10);
    let l = h.leader().unwrap();
    assert!(h.node(l).can_serve_lease_read(h.now));
    assert!(h.node(l).lease_read_index(h.now).unwrap() >= 1);
}

#[test]
fn restarted_acceptor_keeps_a_quarantine_of_one_lease() {
    let mut h = lease_cluster();
    h.run(10, 10);
    h.crash(3);
    h.restart(3);
    h.isolate(1);
    // At t=15 node 3 starts with a fresh clock at 1000: it remembers no
    // grant but refuses new promises until 1000 + 50.
    let n3 = h.node_mut(3);
    n3.tick(1000);
    n3.step(
        msg(
            2,
            3,
            Body::Prepare {
                ballot: Ballot::new(9, 2),
                from_slot: 1,
            },
        ),
        1010,
    )
    .unwrap();
    let rd = n3.ready();
    assert!(matches!(
        rd.messages.as_slice(),
        [Message {
            body: Body::Reject { .. },
            ..
        }]
    ));
    n3.advance(&rd).unwrap();
    n3.step(
        msg(
            2,
            3,
            Body::Prepare {
                ballot: Ballot::new(9, 2),
                from_slot: 1,
            },
        ),
        1050,
    )
    .unwrap();
    assert_eq!(n3.promised(), Ballot::new(9, 2));
}

#[test]
fn leases_can_be_disabled() {
    let mut h = Harness::with(3, |c| c.lease_duration = 0);
    h.elect(1);
    h.run(50, 10);
    assert!(!h.node(1).can_serve_lease_read(h.now));
}

#[test]
fn single_node_cluster_commits_alone() {
    let mut h = Harness::new(1);
    h.run(300, 10);
    assert!(h.node(1).is_leader());
    h.propose(1, b"solo");
    assert_eq!(h.values(1), vec![b"solo".to_vec()]);
    assert!(h.node(1).can_serve_lease_read(h.now));
}

#[test]
fn elections_happen_by_timeout_and_survive_leader_crash() {
    let mut h = Harness::new(5);
    h.run(400, 10);
    let l1 = h.leader().expect("a leader");
    h.propose(l1, b"1");
    h.crash(l1);
    h.run(600, 10);
    let l2 = h.leader().expect("a new leader");
    assert_ne!(l1, l2);
    h.propose(l2, b"2");
    h.run(30, 10);
    for id in (1..=5).filter(|i| *i != l1) {
        let v = h.values(id);
        assert_eq!(v.last(), Some(&b"2".to_vec()), "node {id}");
    }
}

#[test]
fn encodings_round_trip() {
    let m = msg(
        1,
        2,
        Body::Promise {
            ballot: Ballot::new(3, 1),
            commit: 7,
            entries: vec![LogEntry {
                slot: 8,
                ballot: Ballot::new(2, 2),
                command: Command::Value(b"v".to_vec()),
            }],
        },
    );
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&m).unwrap();
    let back: Message = rkyv::from_bytes::<Message, rkyv::rancor::Error>(&bytes).unwrap();
    assert_eq!(back, m);
    let st = PersistentState {
        promised: Ballot::new(3, 1),
        commit: 1,
        snapshot: Some(Snapshot {
            slot: 1,
            data: vec![1, 2, 3],
        }),
        entries: vec![],
    };
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&st).unwrap();
    let back: PersistentState =
        rkyv::from_bytes::<PersistentState, rkyv::rancor::Error>(&bytes).unwrap();
    assert_eq!(back, st);
    // Garbage is an error, not a panic.
    assert!(rkyv::from_bytes::<Message, rkyv::rancor::Error>(&[0xff; 7]).is_err());
}

#[test]
fn config_is_validated() {
    let mut c = Config::new(1, vec![1, 2, 3]);
    c.window = 0;
    assert!(Node::new(c, PersistentState::default()).is_err());
}

/// The tightest race the drift allowance must win: the leader's clock runs
/// 10% slow, the granting acceptor's 10% fast, the grant is renewed once
/// and then the link is cut, and a candidate knocks at the first instant
/// the acceptor's grant has run out (on its clock). By then the leader's
/// lease must be over, at every starting time.
#[test]
fn lease_bound_holds_with_extreme_drift() {
    let cfg = |id| {
        let mut c = config(id, 3);
        c.lease_duration = 100;
        c.max_clock_drift_ppm = 100_000;
        c.election_timeout = 100_000;
        c
    };
    // Real time tau; node 1 slow, node 2 fast, node 3 exact.
    let clock = |id: u64, tau: u64| match id {
        1 => tau * 9 / 10,
        2 => tau * 11 / 10,
        _ => tau,
    };
    for tau0 in [1_000u64, 1_001, 1_003, 1_007, 2_345] {
        let mut nodes: Vec<Node> = (1..=3)
            .map(|id| Node::new(cfg(id), PersistentState::default()).unwrap())
            .collect();
        // Deliver everything between nodes 1 and 2 at real time `tau`.
        let pump = |nodes: &mut Vec<Node>, tau: u64, allow: &dyn Fn(&Message) -> bool| loop {
            let mut out = Vec::new();
            for n in nodes.iter_mut() {
                while n.has_ready() {
                    let rd = n.ready();
                    out.extend(rd.messages.iter().cloned());
                    n.advance(&rd).unwrap();
                }
            }
            if out.is_empty() {
                break;
            }
            for m in out.into_iter().filter(|m| allow(m)) {
                let to = m.to;
                nodes[to as usize - 1].step(m, clock(to, tau)).unwrap();
            }
        };
        let one_two = |m: &Message| m.from != 3 && m.to != 3;
        nodes[0].campaign(clock(1, 0));
        pump(&mut nodes, 0, &one_two);
        assert!(nodes[0].is_leader());
        // One heartbeat round at tau0, then the link is cut.
        nodes[0].tick(clock(1, tau0));
        pump(&mut nodes, tau0, &one_two);
        assert!(nodes[0].can_serve_lease_read(clock(1, tau0)));
        // The first real instant node 2 may promise someone else.
        let mut tau = tau0;
        loop {
            let b = Ballot::new(9, 3);
            let n2 = &mut nodes[1];
            n2.tick(clock(2, tau));
            if n2.promised() == b {
                break;
            }
            n2.step(
                msg(
                    3,
                    2,
                    Body::Prepare {
                        ballot: b,
                        from_slot: 1,
                    },
                ),
                clock(2, tau),
            )
            .unwrap();
            if n2.promised() == b {
                break;
            }
            tau += 1;
        }
        assert!(
            !nodes[0].can_serve_lease_read(clock(1, tau)),
            "tau0={tau0}: node 2 promised another ballot at tau={tau} while node 1 still held its lease"
        );
        // And one millisecond earlier the lease was still useful (the
        // bound is tight, not absurdly conservative).
        assert!(
            nodes[0].can_serve_lease_read(clock(1, tau - 12)),
            "tau0={tau0}"
        );
    }
}
