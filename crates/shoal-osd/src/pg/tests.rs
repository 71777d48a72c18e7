//! The machine alone, event by event: what each event makes it do.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use shoal_proto::osd::{ObjOp, ObjVersion, OsdErrorCode, PayloadRange, PgRef, ReqId};
use shoal_proto::rep::{LogOp, ObjectState, PgActivate, PgInfo, PgPush};
use shoal_store::Op;

use super::*;
use crate::exec::{ObjectView, OpError};

/// OSD-wide facts a test sets.
#[derive(Default)]
struct TestFacts {
    epoch: u32,
    full: HashSet<i32>,
    lapsed: Vec<i32>,
}

impl Facts for TestFacts {
    fn map_epoch(&self) -> u32 {
        self.epoch
    }
    fn is_full(&self, osd: i32) -> bool {
        self.full.contains(&osd)
    }
    fn lease(&self) -> Duration {
        Duration::from_millis(500)
    }
    fn heard_ago(&self) -> Vec<shoal_proto::rep::HeardFrom> {
        Vec::new()
    }
    fn is_up(&self, _osd: i32) -> bool {
        true
    }
    fn lease_lapsed(&self, chain: &[i32]) -> Vec<i32> {
        self.lapsed
            .iter()
            .copied()
            .filter(|m| chain.contains(m))
            .collect()
    }
}

const PG: PgRef = PgRef { pool: 1, seed: 0 };

struct Bench {
    pg: Pg,
    facts: TestFacts,
    out: Vec<Action>,
}

impl Bench {
    /// OSD `me` with the PG in interval 5 of `acting`, active (as after
    /// peering with empty logs).
    fn active(me: i32, acting: &[i32]) -> Bench {
        let mut b = Bench::stray(me);
        b.ev(Event::Interval(interval(5, acting)));
        // As if peering had run: its attempt is over.
        b.pg.peering = None;
        b.pg.go_active();
        b.out.clear();
        b
    }

    fn stray(me: i32) -> Bench {
        let cfg = PgConfig {
            log_limits: LogLimits {
                entries: 100,
                dups: 100,
            },
            chunk_size: 4096,
            stall: Duration::from_secs(30),
            recovery_active: 2,
            planted: Default::default(),
        };
        Bench {
            pg: Pg::new(PG, me, cfg, Loaded::default()),
            facts: TestFacts {
                epoch: 5,
                ..Default::default()
            },
            out: Vec::new(),
        }
    }

    fn ev(&mut self, e: Event) -> &mut Vec<Action> {
        self.out.clear();
        self.pg.handle(Duration::ZERO, &self.facts, e);
        self.out.extend(self.pg.actions());
        &mut self.out
    }

    fn write(
        &mut self,
        op: u64,
        tid: u64,
        object: &str,
        ops: Vec<ObjOp>,
        data: &[u8],
    ) -> &mut Vec<Action> {
        self.ev(Event::Client(ClientOp {
            sums: Vec::new(),
            op: OpId(op),
            epoch: 5,
            reqid: ReqId { client: 9, tid },
            object: object.into(),
            ops,
            payload: Bytes::copy_from_slice(data),
            write: true,
            balance: false,
        }))
    }

    fn read(&mut self, op: u64, object: &str, balance: bool) -> &mut Vec<Action> {
        self.ev(Event::Client(ClientOp {
            sums: Vec::new(),
            op: OpId(op),
            epoch: 5,
            reqid: ReqId {
                client: 9,
                tid: 1000 + op,
            },
            object: object.into(),
            ops: vec![ObjOp::Stat],
            payload: Bytes::new(),
            write: false,
            balance,
        }))
    }
}

fn interval(epoch: u32, acting: &[i32]) -> Interval {
    Interval {
        epoch,
        acting: acting.to_vec(),
        up: acting.to_vec(),
        up_from: vec![1; acting.len()],
        min_size: 1,
        size: acting.len(),
        pg_temp: false,
    }
}

fn append(len: u64) -> Vec<ObjOp> {
    vec![ObjOp::Append {
        data: PayloadRange { offset: 0, len },
    }]
}

fn view_token(actions: &[Action]) -> Token {
    actions
        .iter()
        .find_map(|a| match a {
            Action::LoadView { token, .. } => Some(*token),
            _ => None,
        })
        .expect("a LoadView")
}

fn submits(actions: &[Action]) -> Vec<(Token, &shoal_store::Transaction)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Submit { token, txn } => Some((*token, txn)),
            _ => None,
        })
        .collect()
}

fn answers(actions: &[Action]) -> Vec<(OpId, ClientAnswer)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Client { op, answer } => Some((*op, answer.clone())),
            _ => None,
        })
        .collect()
}

fn v(seq: u64) -> ObjVersion {
    ObjVersion { epoch: 5, seq }
}

fn loaded(token: Token, exists: bool, size: u64) -> Event {
    Event::Read {
        token,
        result: Ok(StoreRead::View(ObjectView {
            exists,
            size,
            ..Default::default()
        })),
    }
}

fn stored(token: Token) -> Event {
    Event::Stored {
        token,
        result: Ok(()),
    }
}

#[test]
fn a_write_is_answered_once_stored_here_and_acknowledged_downstream() {
    let mut b = Bench::active(0, &[0, 1, 2]);
    let t = view_token(b.write(1, 1, "o", append(3), b"abc"));
    let out = b.ev(loaded(t, true, 10)).drain(..).collect::<Vec<_>>();
    // Appended at the old end, stored with its log entry, sent down.
    let (store_token, txn) = submits(&out)[0];
    assert!(
        matches!(&txn.ops[0], Op::Write { offset: 10, .. }),
        "{:?}",
        txn.ops
    );
    assert!(txn.ops.iter().any(|o| matches!(o, Op::OmapSet { .. })));
    let down = out.iter().find_map(|a| match a {
        Action::SendDown { to, rep, .. } => Some((*to, rep.entry.version)),
        _ => None,
    });
    assert_eq!(down, Some((1, v(1))));
    assert!(answers(&out).is_empty());
    // Durable here: still not answered (the middle has not acknowledged).
    assert!(answers(b.ev(stored(store_token))).is_empty());
    let out = b.ev(Event::RepAck {
        from: 1,
        interval: 5,
        version: v(1),
    });
    assert_eq!(answers(out), vec![(OpId(1), ClientAnswer::Written(v(1)))]);
}

#[test]
fn writes_to_one_object_are_resolved_one_after_the_other() {
    let mut b = Bench::active(0, &[0]);
    let t1 = view_token(b.write(1, 1, "o", append(1), b"a"));
    // The second waits: no view is asked while the first is not stored.
    assert!(b.write(2, 2, "o", append(1), b"b").is_empty());
    // Another object goes ahead.
    let t3 = view_token(b.write(3, 3, "p", append(1), b"c"));
    let out = b.ev(loaded(t1, false, 0)).drain(..).collect::<Vec<_>>();
    let (s1, _) = submits(&out)[0];
    let out = b.ev(stored(s1)).drain(..).collect::<Vec<_>>();
    assert_eq!(answers(&out), vec![(OpId(1), ClientAnswer::Written(v(1)))]);
    // Now the second write's view is asked; it sees the first (size 1).
    let t2 = view_token(&out);
    let out = b.ev(loaded(t2, true, 1)).drain(..).collect::<Vec<_>>();
    assert!(matches!(
        &submits(&out)[0].1.ops[0],
        Op::Write { offset: 1, .. }
    ));
    let _ = t3;
}

#[test]
fn a_retry_is_answered_with_the_version_it_made_and_never_applied_twice() {
    let mut b = Bench::active(0, &[0, 1]);
    let t = view_token(b.write(1, 7, "o", append(1), b"a"));
    let out = b.ev(loaded(t, false, 0)).drain(..).collect::<Vec<_>>();
    let (s, _) = submits(&out)[0];
    // The client retries (same request id) while the write is in flight.
    let out = b
        .write(2, 7, "o", append(1), b"a")
        .drain(..)
        .collect::<Vec<_>>();
    assert!(out.is_empty(), "{out:?}");
    b.ev(stored(s));
    let out = b.ev(Event::RepAck {
        from: 1,
        interval: 5,
        version: v(1),
    });
    let mut got = answers(out);
    got.sort_by_key(|a| a.0);
    assert_eq!(
        got,
        vec![
            (OpId(1), ClientAnswer::Written(v(1))),
            (OpId(2), ClientAnswer::Written(v(1)))
        ]
    );
    // A later retry is answered at once from the log.
    let out = b
        .write(3, 7, "o", append(1), b"a")
        .drain(..)
        .collect::<Vec<_>>();
    assert_eq!(answers(&out), vec![(OpId(3), ClientAnswer::Written(v(1)))]);
    assert!(submits(&out).is_empty());
}

/// The shape of simulation seed 3065468: a delete refused (no such
/// object), then an append, then a late copy of the delete. The refusal is
/// a log entry, answered once done on every member, and the late copy gets
/// the same refusal instead of deleting what the append wrote.
#[test]
fn a_refused_write_is_logged_and_its_late_retry_is_refused_again() {
    let mut b = Bench::active(0, &[0, 1]);
    let t = view_token(b.write(1, 33, "o", vec![ObjOp::Remove], b""));
    let out = b.ev(loaded(t, false, 0)).drain(..).collect::<Vec<_>>();
    assert!(answers(&out).is_empty(), "answered before it was logged");
    let (s, txn) = submits(&out)[0];
    assert!(
        txn.ops.iter().all(|o| matches!(o, Op::OmapSet { .. })),
        "a refusal changes no object: {:?}",
        txn.ops
    );
    let down = out.iter().find_map(|a| match a {
        Action::SendDown { rep, .. } => Some((rep.entry.op, rep.ops.len())),
        _ => None,
    });
    assert_eq!(down, Some((LogOp::Refused(OsdErrorCode::NotFound), 0)));
    b.ev(stored(s));
    let out = b.ev(Event::RepAck {
        from: 1,
        interval: 5,
        version: v(1),
    });
    let got = answers(out);
    assert!(
        matches!(&got[..], [(OpId(1), ClientAnswer::Failed(e))] if e.code == OsdErrorCode::NotFound),
        "{got:?}"
    );
    // The client goes on and appends.
    let t = view_token(b.write(2, 34, "o", append(1), b"a"));
    let out = b.ev(loaded(t, false, 0)).drain(..).collect::<Vec<_>>();
    let (s, _) = submits(&out)[0];
    b.ev(stored(s));
    b.ev(Event::RepAck {
        from: 1,
        interval: 5,
        version: v(2),
    });
    // The late copy of the delete: refused as before, nothing ordered.
    let out = b
        .write(3, 33, "o", vec![ObjOp::Remove], b"")
        .drain(..)
        .collect::<Vec<_>>();
    assert!(submits(&out).is_empty(), "{out:?}");
    let got = answers(&out);
    assert!(
        matches!(&got[..], [(OpId(3), ClientAnswer::Failed(e))] if e.code == OsdErrorCode::NotFound),
        "{got:?}"
    );
}

#[test]
fn a_member_applies_in_order_skips_what_it_has_and_refuses_gaps() {
    let mut head = Bench::active(0, &[0, 1, 2]);
    let mut mid = Bench::active(1, &[0, 1, 2]);
    let mut reps = Vec::new();
    for (op, obj) in [(1, "a"), (2, "b"), (3, "c")] {
        let t = view_token(head.write(op, op, obj, append(1), b"x"));
        let out = head.ev(loaded(t, false, 0)).drain(..).collect::<Vec<_>>();
        for a in out {
            if let Action::SendDown { rep, payload, .. } = a {
                reps.push((rep, payload));
            }
        }
    }
    let rep = |i: usize| Event::Rep {
        from: 0,
        rep: reps[i].0.clone(),
        payload: reps[i].1.clone(),
    };
    let out = mid.ev(rep(0)).drain(..).collect::<Vec<_>>();
    assert_eq!(submits(&out).len(), 1);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::SendDown { to: 2, .. }))
    );
    let first = submits(&out)[0].0;
    // A duplicate is skipped, a gap stops the stream.
    assert!(mid.ev(rep(0)).is_empty());
    let out = mid.ev(rep(2));
    assert!(
        matches!(out.as_slice(), [Action::RefuseStream { from: 0 }]),
        "{out:?}"
    );
    // From anyone but the previous member: refused.
    let out = mid.ev(Event::Rep {
        from: 2,
        rep: reps[1].0.clone(),
        payload: reps[1].1.clone(),
    });
    assert!(matches!(out.as_slice(), [Action::RefuseStream { from: 2 }]));
    // Done on the middle = durable here and acknowledged by the tail: only
    // then does it acknowledge upstream.
    assert!(
        !mid.ev(stored(first))
            .iter()
            .any(|a| matches!(a, Action::AckUp { .. }))
    );
    let out = mid.ev(Event::RepAck {
        from: 2,
        interval: 5,
        version: v(1),
    });
    assert!(matches!(
        out.as_slice(),
        [Action::AckUp { to: 0, interval: 5, version }] if *version == v(1)
    ));
}

#[test]
fn a_new_interval_abandons_waiting_writes_and_stale_answers_change_nothing() {
    let mut b = Bench::active(0, &[0, 1]);
    let t = view_token(b.write(1, 1, "o", append(1), b"a"));
    assert!(b.write(2, 2, "o", append(1), b"b").is_empty());
    let out = b.ev(Event::Interval(interval(6, &[0, 2])));
    let mut got = answers(out);
    got.sort_by_key(|a| a.0);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, a)| matches!(
        a,
        ClientAnswer::Failed(OpError {
            code: OsdErrorCode::Unavailable,
            ..
        })
    )));
    assert_eq!(b.pg.status().1, Phase::Peering);
    // The view asked in interval 5 arrives: ignored.
    assert!(b.ev(loaded(t, false, 0)).is_empty());
}

#[test]
fn reads_go_to_the_tail_while_a_write_is_in_flight_and_wait_for_leases() {
    let mut head = Bench::active(0, &[0, 1, 2]);
    let mut mid = Bench::active(1, &[0, 1, 2]);
    let t = view_token(head.write(1, 1, "o", append(1), b"x"));
    let rep = head
        .ev(loaded(t, false, 0))
        .drain(..)
        .find_map(|a| match a {
            Action::SendDown { rep, payload, .. } => Some((rep, payload)),
            _ => None,
        })
        .expect("sent down");
    mid.ev(Event::Rep {
        from: 0,
        rep: rep.0,
        payload: rep.1,
    });
    // Uncommitted at the middle: the tail answers.
    let out = mid.read(10, "o", true);
    assert_eq!(
        answers(out),
        vec![(
            OpId(10),
            ClientAnswer::Forward {
                to: 2,
                balance: true
            }
        )]
    );
    // Another object: served here, if the leases hold.
    assert_eq!(
        answers(mid.read(11, "p", true)),
        vec![(OpId(11), ClientAnswer::ReadHere)]
    );
    mid.facts.lapsed = vec![2];
    let out = mid.read(12, "p", true).drain(..).collect::<Vec<_>>();
    let token = match out.as_slice() {
        [Action::RenewLeases { token, members }] if members == &vec![2] => *token,
        other => panic!("{other:?}"),
    };
    // Still lapsed after the pings: refused; renewed: served.
    let out = mid.ev(Event::LeasesRenewed { token });
    assert!(matches!(
        answers(out).as_slice(),
        [(
            OpId(12),
            ClientAnswer::Failed(OpError {
                code: OsdErrorCode::Unavailable,
                ..
            })
        )]
    ));
    let out = mid.read(13, "p", true).drain(..).collect::<Vec<_>>();
    let Action::RenewLeases { token, .. } = out[0] else {
        panic!("{out:?}")
    };
    mid.facts.lapsed.clear();
    assert_eq!(
        answers(mid.ev(Event::LeasesRenewed { token })),
        vec![(OpId(13), ClientAnswer::ReadHere)]
    );
    // A non-balanced read at a member is the head's.
    assert!(matches!(
        answers(mid.read(14, "p", false)).as_slice(),
        [(
            OpId(14),
            ClientAnswer::Failed(OpError {
                code: OsdErrorCode::WrongOsd,
                ..
            })
        )]
    ));
}

#[test]
fn writes_are_refused_while_a_member_is_full_but_removes_go_through() {
    let mut b = Bench::active(0, &[0, 1]);
    b.facts.full.insert(1);
    assert!(matches!(
        answers(b.write(1, 1, "o", append(1), b"a")).as_slice(),
        [(
            OpId(1),
            ClientAnswer::Failed(OpError {
                code: OsdErrorCode::NoSpace,
                ..
            })
        )]
    ));
    let out = b.write(2, 2, "o", vec![ObjOp::Remove], b"");
    assert!(matches!(out.as_slice(), [Action::LoadView { .. }]));
}

#[test]
fn a_local_write_failure_fails_its_client_and_stops_writes_in_the_interval() {
    let mut b = Bench::active(0, &[0]);
    let t = view_token(b.write(1, 1, "o", append(1), b"a"));
    let out = b.ev(loaded(t, false, 0)).drain(..).collect::<Vec<_>>();
    let (s, _) = submits(&out)[0];
    let out = b.ev(Event::Stored {
        token: s,
        result: Err(OpError::new(OsdErrorCode::NoSpace, "disk full")),
    });
    assert!(matches!(
        answers(out).as_slice(),
        [(
            OpId(1),
            ClientAnswer::Failed(OpError {
                code: OsdErrorCode::NoSpace,
                ..
            })
        )]
    ));
    assert!(matches!(
        answers(b.write(2, 2, "p", append(1), b"b")).as_slice(),
        [(
            OpId(2),
            ClientAnswer::Failed(OpError {
                code: OsdErrorCode::Unavailable,
                ..
            })
        )]
    ));
}

fn activate(acting: &[i32], backfill: bool, missing: &[&str]) -> PgActivate {
    PgActivate {
        pushed: [0; 32],
        epoch: 5,
        pg: PG,
        interval: 5,
        shape: interval(5, acting).shape(),
        info: PgInfo::default(),
        log: Vec::new(),
        dups: Vec::new(),
        backfill,
        missing: missing.iter().map(|s| s.to_string()).collect(),
    }
}

fn responses(actions: &[Action]) -> Vec<(ReplyTo, Result<PeerReply, crate::exec::OpError>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Respond { reply, result } => Some((*reply, result.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_member_goes_active_only_once_its_activation_is_durable() {
    let mut b = Bench::stray(1);
    b.ev(Event::Interval(interval(5, &[0, 1])));
    let out = b
        .ev(Event::Request {
            from: 0,
            reply: ReplyTo(1),
            req: PeerRequest::Activate(activate(&[0, 1], false, &["m"])),
        })
        .drain(..)
        .collect::<Vec<_>>();
    let (s, txn) = submits(&out)[0];
    assert!(
        txn.ops
            .iter()
            .any(|o| matches!(o, Op::SetCollectionMeta(_)))
    );
    assert_eq!(b.pg.status().1, Phase::Peering);
    assert!(responses(&out).is_empty());
    let out = b.ev(stored(s));
    assert_eq!(responses(out), vec![(ReplyTo(1), Ok(PeerReply::Ack))]);
    assert_eq!(b.pg.status().1, Phase::Active);
    // It lacks "m": a balanced read of it goes to the head.
    assert_eq!(
        answers(b.read(1, "m", true)),
        vec![(
            OpId(1),
            ClientAnswer::Forward {
                to: 0,
                balance: false
            }
        )]
    );
    // An activation from someone who is not the head is refused.
    let out = b.ev(Event::Request {
        from: 1,
        reply: ReplyTo(2),
        req: PeerRequest::Activate(activate(&[0, 1], false, &[])),
    });
    assert!(matches!(responses(out).as_slice(), [(ReplyTo(2), Err(_))]));
}

fn push(object: &str, data: Option<&[u8]>) -> (PgPush, Bytes) {
    let state = data.map(|d| ObjectState {
        data: PayloadRange {
            offset: 0,
            len: d.len() as u64,
        },
        xattrs: Vec::new(),
        omap: Vec::new(),
    });
    (
        PgPush {
            epoch: 5,
            pg: PG,
            interval: 5,
            object: object.into(),
            version: v(3),
            state,
            repair: false,
            sums: Vec::new(),
        },
        Bytes::copy_from_slice(data.unwrap_or_default()),
    )
}

#[test]
fn a_backfilled_member_keeps_only_what_was_pushed_while_peering() {
    let mut b = Bench::stray(2);
    b.ev(Event::Interval(interval(5, &[0, 2])));
    let (p, payload) = push("kept", Some(b"data"));
    let out = b
        .ev(Event::Request {
            from: 0,
            reply: ReplyTo(1),
            req: PeerRequest::Push { push: p, payload },
        })
        .drain(..)
        .collect::<Vec<_>>();
    let (s, txn) = submits(&out)[0];
    assert!(
        txn.ops
            .iter()
            .any(|o| matches!(o, Op::WriteFull { name, .. } if name == "kept"))
    );
    assert_eq!(
        responses(b.ev(stored(s))),
        vec![(ReplyTo(1), Ok(PeerReply::Ack))]
    );
    let out = b
        .ev(Event::Request {
            from: 0,
            reply: ReplyTo(2),
            req: PeerRequest::Activate(backfill_activation(&[0, 2], &["kept"])),
        })
        .drain(..)
        .collect::<Vec<_>>();
    let token = match out.as_slice() {
        [Action::ListObjects { token }] => *token,
        other => panic!("{other:?}"),
    };
    let out = b
        .ev(Event::Read {
            token,
            result: Ok(StoreRead::Objects(vec!["kept".into(), "stale".into()])),
        })
        .drain(..)
        .collect::<Vec<_>>();
    let (s, txn) = submits(&out)[0];
    assert!(matches!(txn.ops.as_slice(), [Op::Remove { name }] if name == "stale"));
    let out = b.ev(stored(s)).drain(..).collect::<Vec<_>>();
    let (s, _) = submits(&out)[0];
    assert_eq!(
        responses(b.ev(stored(s))),
        vec![(ReplyTo(2), Ok(PeerReply::Ack))]
    );
}

fn backfill_activation(acting: &[i32], pushed: &[&str]) -> PgActivate {
    let names: Vec<String> = pushed.iter().map(|s| s.to_string()).collect();
    PgActivate {
        pushed: super::pushed::Pushed::of(&names).digest(),
        ..activate(acting, true, &[])
    }
}

/// A member that restarted after the pushes forgot them: it must not take
/// everything it holds for stale (the simulation found it drop acknowledged
/// writes that way, seed 2093315).
#[test]
fn a_backfilled_member_that_missed_pushes_refuses_its_activation() {
    let mut b = Bench::stray(2);
    b.ev(Event::Interval(interval(5, &[0, 2])));
    let out = b.ev(Event::Request {
        from: 0,
        reply: ReplyTo(2),
        req: PeerRequest::Activate(backfill_activation(&[0, 2], &["kept"])),
    });
    assert!(matches!(
        responses(out).as_slice(),
        [(
            ReplyTo(2),
            Err(OpError {
                code: OsdErrorCode::Unavailable,
                ..
            })
        )]
    ));
}

#[test]
fn a_push_to_an_active_copy_only_brings_what_it_lacks() {
    let mut b = Bench::stray(1);
    b.ev(Event::Interval(interval(5, &[0, 1])));
    let out = b
        .ev(Event::Request {
            from: 0,
            reply: ReplyTo(1),
            req: PeerRequest::Activate(activate(&[0, 1], false, &["lacked"])),
        })
        .drain(..)
        .collect::<Vec<_>>();
    b.ev(stored(submits(&out)[0].0));
    // Not missing here: newer than the push (a write followed its recovery).
    let (p, payload) = push("other", Some(b"old"));
    let out = b.ev(Event::Request {
        from: 0,
        reply: ReplyTo(2),
        req: PeerRequest::Push { push: p, payload },
    });
    assert_eq!(responses(out), vec![(ReplyTo(2), Ok(PeerReply::Ack))]);
    // Missing: stored, and it leaves the missing set with the transaction.
    let (p, payload) = push("lacked", None);
    let out = b
        .ev(Event::Request {
            from: 0,
            reply: ReplyTo(3),
            req: PeerRequest::Push { push: p, payload },
        })
        .drain(..)
        .collect::<Vec<_>>();
    let (s, txn) = submits(&out)[0];
    assert!(
        txn.ops.iter().any(
            |o| matches!(o, Op::OmapRemove { name, .. } if name == crate::pglog::MISSING_OBJECT)
        )
    );
    assert!(
        !txn.ops.iter().any(|o| matches!(o, Op::WriteFull { .. })),
        "pushed as absent"
    );
    b.ev(stored(s));
    assert_eq!(
        answers(b.read(1, "lacked", true)),
        vec![(OpId(1), ClientAnswer::ReadHere)]
    );
}

fn entry(name: &str, seq: u64, data: u8) -> shoal_proto::rep::ScrubEntry {
    shoal_proto::rep::ScrubEntry {
        name: name.into(),
        version: v(seq),
        size: 8,
        meta_digest: [0; 32],
        data_digest: Some([data; 32]),
        error: String::new(),
    }
}

fn scrub_reads(actions: &[Action]) -> Vec<Token> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ScrubRead { token, .. } => Some(*token),
            _ => None,
        })
        .collect()
}

fn requests(actions: &[Action]) -> Vec<(Token, i32, &OutRequest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Request { token, to, req } => Some((*token, *to, req)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_scrub_looks_again_at_what_differs_and_repairs_the_bad_copy() {
    let mut b = Bench::active(0, &[0, 1]);
    let out = b
        .ev(Event::Scrub(ScrubRequest {
            op: Some(OpId(7)),
            deep: true,
            repair: true,
            only: Vec::new(),
        }))
        .drain(..)
        .collect::<Vec<_>>();
    let local = scrub_reads(&out)[0];
    // This copy's page: "a" and "b"; the member's "b" differs.
    let out = b
        .ev(Event::Read {
            token: local,
            result: Ok(StoreRead::ScrubMap {
                entries: vec![entry("a", 1, 1), entry("b", 2, 2)],
                more: false,
            }),
        })
        .drain(..)
        .collect::<Vec<_>>();
    let (token, to, _) = requests(&out)[0];
    assert_eq!(to, 1);
    let reply = shoal_proto::rep::ScrubMapReply {
        epoch: 5,
        entries: vec![entry("a", 1, 1), entry("b", 2, 9)],
        more: false,
        error: None,
    };
    let out = b
        .ev(Event::Answer {
            token,
            result: Ok(PeerAnswer::ScrubMap(reply.clone())),
        })
        .drain(..)
        .collect::<Vec<_>>();
    // The second look at "b" only: here and at the member.
    let local = scrub_reads(&out)[0];
    let (remote, _, _) = requests(&out)[0];
    b.ev(Event::Read {
        token: local,
        result: Ok(StoreRead::ScrubMap {
            entries: vec![entry("b", 2, 2)],
            more: false,
        }),
    });
    let look = shoal_proto::rep::ScrubMapReply {
        entries: vec![entry("b", 2, 9)],
        ..reply
    };
    let out = b
        .ev(Event::Answer {
            token: remote,
            result: Ok(PeerAnswer::ScrubMap(look)),
        })
        .drain(..)
        .collect::<Vec<_>>();
    // Two copies, a tie: the head's side wins; the member's is repaired.
    let (token, to, req) = requests(&out)[0];
    assert_eq!(to, 1);
    assert!(matches!(req, OutRequest::Push { object, repair: true, .. } if object == "b"));
    let out = b.ev(Event::Answer {
        token,
        result: Ok(PeerAnswer::Ack),
    });
    let result = answers(out)
        .into_iter()
        .find_map(|(op, a)| match a {
            ClientAnswer::Scrubbed(r) if op == OpId(7) => Some(r),
            _ => None,
        })
        .expect("the scrub's result");
    assert_eq!(result.objects, 2);
    assert_eq!(result.repaired, 1);
    assert_eq!(result.inconsistent.len(), 1);
    assert_eq!(result.inconsistent[0].bad, vec![1]);
    assert!(b.pg.inconsistent().is_empty(), "repaired");
}
