//! Peering's catch-up: the head first takes the authoritative log (and
//! the objects it lacks under it, as its missing set) as its own,
//! durably, and then pulls those objects; a head that must be backfilled
//! lists the authoritative copy and treats everything as suspect. Then
//! members that cannot catch up from the log get every object pushed.
//! The head's pulled objects never run ahead of its log: if peering stops
//! half way, the next attempt sees this log and what is still missing (a
//! pulled object newer than the old log could otherwise be taken for
//! current, and a retried write applied to it twice).

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use shoal_proto::osd::{MAX_LIST_PAGE, ObjVersion};
use shoal_proto::rep::{PgPull, PgPush, PgScan, PgScanReply};

use super::peering::{Copies, Stage, Step};
use super::pushed::Pushed;
use super::types::{Action, OutRequest, Pending, StoreRead, TxnDone};
use super::{Pg, Stored};
use crate::exec::OpError;
use crate::parallel::COPIES_AT_ONCE;
use crate::peering::Catchup;
use crate::pglog::PgLog;

impl Pg {
    fn set_step(&mut self, attempt: u64, step: Step) -> bool {
        match self.attempt(attempt) {
            Some(p) => {
                p.stage = Stage::Catchup(step);
                true
            }
            None => false,
        }
    }

    fn step(&mut self, attempt: u64) -> Option<&mut Step> {
        match &mut self.attempt(attempt)?.stage {
            Stage::Catchup(s) => Some(s),
            _ => None,
        }
    }

    /// With a plan: bring the head to the authoritative state first.
    pub(super) fn catch_up_head(&mut self, now: Duration, attempt: u64) {
        let me = self.whoami;
        let Some(plan) = self.attempt(attempt).and_then(|p| p.plan.clone()) else {
            return;
        };
        match plan.catchup.get(&me) {
            Some(Catchup::Objects(objects)) => {
                self.adopt(attempt, objects.clone());
            }
            Some(Catchup::Backfill) => {
                if let Some(p) = self.attempt(attempt) {
                    p.my_backfill = true;
                }
                self.set_step(attempt, Step::ScanAuth { listed: Vec::new() });
                self.scan_auth(attempt, None);
            }
            None => self.catch_up_members(now, attempt),
        }
    }

    /// Stores the plan's log as this copy's, with `missing` as its
    /// missing set.
    fn adopt(&mut self, attempt: u64, missing: BTreeSet<String>) {
        let Some(plan) = self.attempt(attempt).and_then(|p| p.plan.clone()) else {
            return;
        };
        self.set_step(attempt, Step::Adopt);
        let log = PgLog::new(plan.info.log_tail, plan.log)
            .with_dups(plan.dups)
            .with_head(plan.info.last_update);
        // The adopted log comes with its peering record: a log taken from
        // a copy that went active in a later interval than this one is
        // that interval's history, whatever becomes of this attempt (with
        // this copy's older record, a later peering took another copy's
        // shorter log over it and lost acknowledged writes: the
        // simulation found it).
        let (les, acting) = (plan.info.last_epoch_started, plan.info.last_acting.clone());
        match super::records::log_txn(&self.coll, &log, les, &acting, &missing) {
            Ok(t) => {
                self.stored_records = Some(Stored::new(log, missing, les, acting));
                self.submit(t, TxnDone::Adopted { attempt });
            }
            Err(e) => self.peering_failed(&e.message),
        }
    }

    /// The adopted log is durable: it is this copy's; pull what it lacks.
    pub(super) fn adopted(&mut self, now: Duration, attempt: u64, result: Result<(), OpError>) {
        let Some(stored) = self.stored_records.take() else {
            return;
        };
        if let Err(e) = result {
            return self.peering_failed(&e.message);
        }
        // Stored: this copy's records now, whatever becomes of the attempt.
        self.take_records(stored);
        let Some((plan, my_backfill, listed)) = self.attempt(attempt).map(|p| {
            (
                p.plan.clone(),
                p.my_backfill,
                std::mem::take(&mut p.pulled_all),
            )
        }) else {
            return;
        };
        let Some(plan) = plan else {
            return self.peering_failed("no plan");
        };
        let wanted: Vec<(String, Vec<i32>)> = if my_backfill {
            // What the authoritative copy lists comes from it; what it
            // lacks, from the other holders.
            listed
                .into_iter()
                .filter(|n| !plan.auth_missing.contains(n))
                .map(|n| (n, vec![plan.auth]))
                .chain(
                    plan.auth_missing
                        .iter()
                        .map(|n| (n.clone(), plan.sources.get(n).cloned().unwrap_or_default())),
                )
                .collect()
        } else {
            self.missing
                .iter()
                .map(|n| (n.clone(), plan.sources.get(n).cloned().unwrap_or_default()))
                .collect()
        };
        if my_backfill && let Some(p) = self.attempt(attempt) {
            p.pulled_all = wanted.iter().map(|(n, _)| n.clone()).collect();
        }
        self.progress(now);
        self.set_step(
            attempt,
            Step::Pull(Copies {
                todo: wanted.into(),
                in_flight: 0,
            }),
        );
        self.next_copies(now, attempt);
    }

    /// Head backfill: the next page of the authoritative copy's objects.
    fn scan_auth(&mut self, attempt: u64, after: Option<String>) {
        let Some(auth) = self
            .attempt(attempt)
            .and_then(|p| p.plan.as_ref())
            .map(|p| p.auth)
        else {
            return;
        };
        let token = self.token();
        self.pending.insert(
            token,
            Pending::ScanAuth {
                attempt,
                after: after.clone(),
            },
        );
        self.act(Action::Request {
            token,
            to: auth,
            req: OutRequest::Scan(PgScan {
                epoch: 0,
                pg: self.id,
                start_after: after,
                limit: MAX_LIST_PAGE,
            }),
        });
    }

    /// A page of the authoritative copy's objects.
    pub(super) fn auth_scanned(
        &mut self,
        now: Duration,
        attempt: u64,
        after: Option<String>,
        result: Result<PgScanReply, OpError>,
    ) {
        let reply = match result {
            Ok(r) => r,
            Err(e) => {
                return self
                    .peering_failed(&format!("listing the authoritative copy: {}", e.message));
            }
        };
        self.progress(now);
        let last = reply.objects.last().map(|o| o.0.clone());
        let Some(Step::ScanAuth { listed }) = self.step(attempt) else {
            return;
        };
        listed.extend(
            reply
                .objects
                .into_iter()
                .map(|(n, _): (String, ObjVersion)| n),
        );
        if reply.more && last.is_some() {
            // A listing must move forward, or a bad peer would keep us here.
            if last <= after {
                return self
                    .peering_failed("the authoritative copy's listing does not move forward");
            }
            return self.scan_auth(attempt, last);
        }
        let listed = std::mem::take(listed);
        self.set_step(attempt, Step::ListLocal { listed });
        let token = self.token();
        self.pending
            .insert(token, Pending::ListForPeering { attempt });
        self.act(Action::ListObjects { token });
    }

    /// This copy's objects, for the head's own backfill or the members'.
    pub(super) fn listed_for_peering(
        &mut self,
        now: Duration,
        attempt: u64,
        result: Result<StoreRead, OpError>,
    ) {
        let local = match result {
            Ok(StoreRead::Objects(names)) => names,
            Ok(_) => return,
            Err(e) => return self.peering_failed(&e.message),
        };
        self.progress(now);
        match self.step(attempt).cloned() {
            Some(Step::ListLocal { listed }) => {
                // Everything here is suspect until copied: what the
                // authoritative copy lists, what it lacks, and what this
                // copy holds (stale objects are removed by their pull, or
                // at activation).
                let Some(p) = self.attempt(attempt) else {
                    return;
                };
                let auth_missing = p
                    .plan
                    .as_ref()
                    .map(|p| p.auth_missing.clone())
                    .unwrap_or_default();
                let mut suspect: BTreeSet<String> = listed.iter().cloned().collect();
                suspect.extend(auth_missing);
                suspect.extend(local);
                p.pulled_all = listed;
                self.adopt(attempt, suspect);
            }
            Some(Step::ListForMembers) => self.push_to_backfilled(now, attempt, local),
            _ => {}
        }
    }

    /// Starts copies until [`COPIES_AT_ONCE`] are in flight; when none is
    /// left, moves on.
    fn next_copies(&mut self, now: Duration, attempt: u64) {
        loop {
            let me = self.whoami;
            let interval = self.interval.epoch;
            let Some(step) = self.step(attempt) else {
                return;
            };
            let (pulling, copies) = match step {
                Step::Pull(c) => (true, c),
                Step::Push(c) => (false, c),
                _ => return,
            };
            if copies.in_flight >= COPIES_AT_ONCE {
                return;
            }
            let Some((object, peers)) = copies.todo.pop_front() else {
                if copies.in_flight == 0 {
                    if pulling {
                        self.catch_up_members(now, attempt);
                    } else {
                        self.leases_then_activate(now, attempt);
                    }
                }
                return;
            };
            copies.in_flight += 1;
            if pulling {
                let sources: Vec<i32> = peers.into_iter().filter(|&s| s != me).collect();
                self.pull_from(attempt, object, sources);
            } else {
                let token = self.token();
                let to = peers[0];
                self.pending.insert(token, Pending::PeeringPush { attempt });
                self.act(Action::Request {
                    token,
                    to,
                    req: OutRequest::Push {
                        interval,
                        object,
                        repair: false,
                        background: false,
                    },
                });
            }
        }
    }

    /// Pulls `object` from the first of `sources` (the others are tried
    /// if it fails).
    fn pull_from(&mut self, attempt: u64, object: String, mut sources: Vec<i32>) {
        if sources.is_empty() {
            return self.peering_failed(&format!(
                "{object} is unfound: no peer that answered has it"
            ));
        }
        let from = sources.remove(0);
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending.insert(
            token,
            Pending::Pull {
                attempt,
                object: object.clone(),
                rest: sources,
            },
        );
        self.act(Action::Request {
            token,
            to: from,
            req: OutRequest::Pull(PgPull {
                epoch: 0,
                pg: self.id,
                interval,
                object,
            }),
        });
    }

    /// A pull's answer: the object's state, stored as a push in this
    /// interval (or the next source tried).
    pub(super) fn pulled(
        &mut self,
        attempt: u64,
        object: String,
        rest: Vec<i32>,
        result: Result<(PgPush, bytes::Bytes), OpError>,
    ) {
        if self.attempt(attempt).is_none() {
            return;
        }
        let (push, payload) = match result {
            Ok((push, payload)) if push.object == object => (push, payload),
            Ok(_) => return self.pull_from(attempt, object, rest),
            Err(e) => {
                tracing::debug!(pg = %self.id, %object, error = %e.message, "pull failed; trying the next source");
                return self.pull_from(attempt, object, rest);
            }
        };
        let push = PgPush {
            interval: self.interval.epoch,
            repair: false,
            ..push
        };
        match self.push_txn(push, &payload) {
            Ok(Some((object, txn))) => {
                self.submit(txn, TxnDone::Pulled { attempt, object });
            }
            Ok(None) => self.copy_done(attempt),
            Err(e) => self.peering_failed(&e.message),
        }
    }

    /// A pulled object is stored.
    pub(super) fn pull_stored(
        &mut self,
        now: Duration,
        attempt: u64,
        object: String,
        result: Result<(), OpError>,
    ) {
        if result.is_ok() {
            self.missing.remove(&object);
        }
        self.copy_finished(now, attempt, result, "storing a pulled object");
    }

    /// A pull or push of peering finished: the next copies, or the
    /// attempt fails.
    fn copy_finished(
        &mut self,
        now: Duration,
        attempt: u64,
        result: Result<(), OpError>,
        what: &str,
    ) {
        if self.attempt(attempt).is_none() {
            return;
        }
        match result {
            Ok(()) => {
                self.progress(now);
                self.copy_done(attempt);
                self.next_copies(now, attempt);
            }
            Err(e) => self.peering_failed(&format!("{what}: {}", e.message)),
        }
    }

    fn copy_done(&mut self, attempt: u64) {
        if let Some(Step::Pull(c) | Step::Push(c)) = self.step(attempt) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }

    /// A push to a backfilled member was answered.
    pub(super) fn peering_pushed(
        &mut self,
        now: Duration,
        attempt: u64,
        result: Result<(), OpError>,
    ) {
        self.copy_finished(now, attempt, result, "pushing");
    }

    /// The head is caught up: members whose log does not reach the
    /// authoritative log's tail are filled now; the others go active
    /// knowing what they lack, and the head recovers it while serving.
    fn catch_up_members(&mut self, now: Duration, attempt: u64) {
        let me = self.whoami;
        let planted = self.cfg.planted.push_unpulled_after_own_backfill;
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        let Some(plan) = p.plan.clone() else {
            return;
        };
        let mut backfill = false;
        for (&m, c) in plan.catchup.iter().filter(|(m, _)| **m != me) {
            match c {
                Catchup::Objects(o) => {
                    p.members_missing.insert(m, o.clone());
                }
                Catchup::Backfill => backfill = true,
            }
        }
        if !backfill {
            return self.leases_then_activate(now, attempt);
        }
        if p.my_backfill && !planted {
            // This copy still holds the stale objects its activation
            // removes: only what it pulled is the PG's content (the
            // simulation found this).
            let names = p.pulled_all.clone();
            return self.push_to_backfilled(now, attempt, names);
        }
        self.set_step(attempt, Step::ListForMembers);
        let token = self.token();
        self.pending
            .insert(token, Pending::ListForPeering { attempt });
        self.act(Action::ListObjects { token });
    }

    fn push_to_backfilled(&mut self, now: Duration, attempt: u64, names: Vec<String>) {
        let me = self.whoami;
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        p.pushed_digest = Pushed::of(&names).digest();
        let Some(plan) = p.plan.clone() else {
            return;
        };
        let targets: Vec<i32> = plan
            .catchup
            .iter()
            .filter(|(m, c)| **m != me && matches!(c, Catchup::Backfill))
            .map(|(m, _)| *m)
            .collect();
        let todo: VecDeque<(String, Vec<i32>)> = targets
            .iter()
            .flat_map(|&t| names.iter().map(move |n| (n.clone(), vec![t])))
            .collect();
        self.set_step(attempt, Step::Push(Copies { todo, in_flight: 0 }));
        self.next_copies(now, attempt);
    }
}
