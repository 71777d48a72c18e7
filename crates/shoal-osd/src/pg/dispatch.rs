//! Events to the concern that handles them; completions (store
//! transactions and reads, peers' and monitors' answers, timers) to what
//! their token was for.

use std::time::Duration;

use super::Pg;
use super::types::{
    Event, Facts, PeerAnswer, PeerRequest, Pending, StoreRead, Timer, Token, TxnDone,
};
use crate::exec::{OpError, internal};

impl Pg {
    /// Takes one event at `now` (the shell's monotonic clock), with the
    /// OSD-wide `facts`; queues the actions it leads to.
    pub fn handle(&mut self, now: Duration, facts: &dyn Facts, event: Event) {
        match event {
            Event::Interval(interval) => {
                self.on_interval(interval);
                if self.peering.is_none()
                    && self.phase == super::Phase::Peering
                    && self.position() == Some(0)
                {
                    self.start_peering(now, facts);
                }
            }
            Event::Client(op) => self.on_client(facts, op),
            Event::List { op, epoch } => self.on_list(facts, op, epoch),
            Event::LeasesRenewed { token } => self.on_leases_renewed(facts, token),
            Event::Request { from, reply, req } => match req {
                PeerRequest::Activate(act) => self.on_activate(from, reply, act),
                PeerRequest::Push { push, payload } => self.on_push(reply, push, payload),
                PeerRequest::Query(q) => self.on_query(facts, from, reply, q),
                PeerRequest::Backfill(b) => self.on_backfill(reply, b),
            },
            Event::Rep { from, rep, payload } => self.on_rep(from, rep, payload),
            Event::RepAck {
                from,
                interval,
                version,
            } => self.on_rep_ack(from, interval, version),
            Event::Stored { token, result } => {
                self.on_stored(now, token, result);
                if self.settled() {
                    self.answer_deferred(facts);
                    if self.peering.is_some() {
                        self.settle_peering(now, facts);
                    }
                }
            }
            Event::Read { token, result } => self.on_read(now, facts, token, result),
            Event::Answer { token, result } => self.on_answer(now, facts, token, result),
            Event::MonAnswer { token, result } => self.on_mon(now, facts, token, result),
            Event::Timer(t) => self.on_timer(now, facts, t),
            Event::Scrub(req) => self.on_scrub(req),
            Event::Probed { token, gone } => {
                if let Some(Pending::Probe { attempt }) = self.pending.remove(&token) {
                    self.probed(now, facts, attempt, gone);
                }
            }
            Event::Granted { token } => match self.pending.remove(&token) {
                Some(Pending::BackfillSlot { interval }) => self.backfill_granted(interval),
                // A slot granted for a request this interval dropped.
                _ => self.act(super::Action::Release),
            },
        }
    }

    fn on_stored(&mut self, now: Duration, token: Token, result: Result<(), OpError>) {
        let Some(done) = self.txns.remove(&token) else {
            return;
        };
        match done {
            TxnDone::Write { interval, version } => self.write_stored(interval, version, result),
            TxnDone::Unpushed { reply, last } => self.unpushed_removed(reply, last, result),
            TxnDone::Activated { interval, reply } => {
                self.activation_stored(interval, reply, result)
            }
            TxnDone::Pushed {
                object,
                suspect,
                reply,
            } => self.push_stored(object, suspect, reply, result),
            TxnDone::Adopted { attempt } => self.adopted(now, attempt, result),
            TxnDone::Pulled { attempt, object } => self.pull_stored(now, attempt, object, result),
            TxnDone::SelfUnpushed { attempt, last } => {
                self.self_unpushed_removed(attempt, last, result)
            }
            TxnDone::SelfActivated { attempt } => self.self_activated(attempt, result),
            TxnDone::Records { reply } => self.records_stored(reply, result),
            TxnDone::Repaired => self.repaired(true, result),
        }
    }

    fn on_read(
        &mut self,
        now: Duration,
        facts: &dyn Facts,
        token: Token,
        result: Result<StoreRead, OpError>,
    ) {
        let Some(pending) = self.pending.remove(&token) else {
            return;
        };
        match pending {
            Pending::View {
                op,
                object,
                interval,
            } => self.view_loaded(facts, op, object, interval, result),
            Pending::Unpushed { reply } => self.unpushed_listed(reply, result),
            Pending::BackfillStart { reply } => self.backfill_start_listed(reply, result),
            Pending::ListForPeering { attempt } => self.listed_for_peering(now, attempt, result),
            Pending::ListForActivation { attempt } => self.listed_for_activation(attempt, result),
            Pending::BackfillScan { interval } if interval == self.interval.epoch => {
                self.backfill_local_page(result)
            }
            Pending::ScrubLocal { interval } if interval == self.interval.epoch => {
                self.scrub_local_page(result)
            }
            Pending::LookLocal { interval } if interval == self.interval.epoch => {
                let me = self.whoami;
                let r = result.and_then(|read| match read {
                    StoreRead::ScrubMap { entries, .. } => Ok(entries),
                    _ => Err(internal("expected scrub entries")),
                });
                self.look_answered(me, r)
            }
            _ => {}
        }
    }

    fn on_answer(
        &mut self,
        now: Duration,
        facts: &dyn Facts,
        token: Token,
        result: Result<PeerAnswer, OpError>,
    ) {
        let Some(pending) = self.pending.remove(&token) else {
            return;
        };
        let ack = |r: Result<PeerAnswer, OpError>| match r {
            Ok(PeerAnswer::Ack) => Ok(()),
            Ok(other) => Err(internal(format!(
                "expected an acknowledgement, got {other:?}"
            ))),
            Err(e) => Err(e),
        };
        match pending {
            Pending::Query { attempt, from } => {
                let r = result.and_then(|a| match a {
                    PeerAnswer::Query(q) => Ok(q),
                    other => Err(internal(format!("expected a query answer, got {other:?}"))),
                });
                self.query_answered(now, facts, attempt, from, r);
            }
            Pending::ScanAuth { attempt, after } => {
                let r = result.and_then(scan_reply);
                self.auth_scanned(now, attempt, after, r);
            }
            Pending::Pull {
                attempt,
                object,
                rest,
            } => {
                let r = result.and_then(|a| match a {
                    PeerAnswer::Pulled { push, payload } => Ok((push, payload)),
                    other => Err(internal(format!("expected an object, got {other:?}"))),
                });
                self.pulled(attempt, object, rest, r);
            }
            Pending::PeeringPush { attempt } => self.peering_pushed(now, attempt, ack(result)),
            Pending::Activate { attempt, member } => {
                self.member_activated(now, attempt, member, ack(result))
            }
            Pending::ObjectPush {
                interval,
                object,
                member,
            } if interval == self.interval.epoch => self.object_pushed(object, member, ack(result)),
            Pending::BackfillStep { interval, target } if interval == self.interval.epoch => {
                self.backfill_stepped(target, ack(result))
            }
            Pending::BackfillRemote { interval } if interval == self.interval.epoch => {
                self.backfill_remote_page(result.and_then(scan_reply))
            }
            Pending::ScrubRemote { interval, member } if interval == self.interval.epoch => {
                self.scrub_remote_page(member, result.and_then(scrub_reply))
            }
            Pending::LookRemote { interval, member } if interval == self.interval.epoch => {
                let r = result.and_then(scrub_reply).and_then(|r| match r.error {
                    None => Ok(r.entries),
                    Some(e) => Err(e.from_osd(member).into()),
                });
                self.look_answered(member, r)
            }
            Pending::RepairPush { interval } if interval == self.interval.epoch => {
                self.repaired(false, ack(result))
            }
            Pending::RepairPull { interval } if interval == self.interval.epoch => {
                self.repair_pulled(result)
            }
            _ => {}
        }
    }

    fn on_mon(
        &mut self,
        now: Duration,
        facts: &dyn Facts,
        token: Token,
        result: Result<shoal_proto::mon::CommandOutput, String>,
    ) {
        match self.pending.remove(&token) {
            Some(Pending::Record { attempt }) => self.record_read(now, facts, attempt, result),
            Some(Pending::PgTemp { attempt }) => self.pg_temp_answered(attempt, result),
            Some(Pending::RecordActive { attempt }) => self.active_recorded(attempt, result),
            Some(Pending::ClearPgTemp { interval }) if interval == self.interval.epoch => {
                self.pg_temp_cleared(result)
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Duration, facts: &dyn Facts, timer: Timer) {
        match timer {
            Timer::PeeringStall { attempt } => self.peering_stall(now, attempt),
            Timer::PeeringRetry { interval } => self.peering_retry(now, facts, interval),
            Timer::LeaseWait { attempt } => self.lease_waited(attempt),
            Timer::RecoveryRetry { interval } => self.recovery_retry(interval),
            Timer::BackfillRetry { interval } => self.backfill_retry(interval),
        }
    }
}

fn scrub_reply(a: PeerAnswer) -> Result<shoal_proto::rep::ScrubMapReply, OpError> {
    match a {
        PeerAnswer::ScrubMap(r) => Ok(r),
        other => Err(internal(format!("expected scrub entries, got {other:?}"))),
    }
}

fn scan_reply(a: PeerAnswer) -> Result<shoal_proto::rep::PgScanReply, OpError> {
    match a {
        PeerAnswer::Scan(r) => match r.error {
            Some(e) => Err(OpError::new(e.code, e.message)),
            None => Ok(r),
        },
        other => Err(internal(format!("expected a listing, got {other:?}"))),
    }
}
