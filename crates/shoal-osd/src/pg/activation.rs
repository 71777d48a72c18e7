//! The end of the head's peering: wait out the read leases of earlier
//! members that did not answer, store the head's own activation, activate
//! every member, have the monitors record the interval as active (no write
//! is taken in an interval the monitors have not recorded: a later head
//! then knows to look for it), and serve, recover what the members lack
//! and backfill the up set behind a `pg_temp`.
//!
//! The head's activation is durable before any member's: a member's
//! activation makes its log the interval's choice (divergent entries of
//! older heads dropped), and a head that lost its own record to a power
//! cut once took such an old head's log back as its own and pulled its
//! objects over the ones the interval had kept, so that no copy of them
//! was left when the members came back (the simulation found it).

use std::collections::BTreeSet;
use std::time::Duration;

use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_proto::rep::PgActivate;

use super::peering::Stage;
use super::types::{Action, Facts, OutRequest, Pending, StoreRead, Timer, TxnDone};
use super::{Pg, Stored};
use crate::exec::OpError;
use crate::missing::Missing;
use crate::peering::Catchup;
use crate::pglog::PgLog;

impl Pg {
    /// Caught up: probe the silent earlier members whose leases may still
    /// run (a closed port has no process behind it to serve a read).
    pub(super) fn leases_then_activate(&mut self, now: Duration, attempt: u64) {
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        p.stage = Stage::Leases;
        match p.lapse.clone() {
            Some((at, silent)) if at > now => {
                let token = self.token();
                self.pending.insert(token, Pending::Probe { attempt });
                self.act(Action::Probe {
                    token,
                    osds: silent,
                });
            }
            _ => self.activate_self(attempt),
        }
    }

    /// The probe answered: wait out the leases of those still possibly alive.
    pub(super) fn probed(
        &mut self,
        now: Duration,
        facts: &dyn Facts,
        attempt: u64,
        gone: BTreeSet<i32>,
    ) {
        let lease = facts.lease();
        let pg = self.id;
        let Some(p) = self.attempt(attempt).filter(|p| p.stage == Stage::Leases) else {
            return;
        };
        let Some((_, silent)) = p.lapse.clone() else {
            return self.activate_self(attempt);
        };
        if !gone.is_empty() {
            tracing::info!(pg = %pg, ?gone, "silent earlier members are gone: no read lease to wait out");
        }
        let silent: BTreeSet<i32> = silent.difference(&gone).copied().collect();
        let chains = p.earlier_chains();
        let at = crate::lease::lapse_bound(&silent, &chains, &p.heard_by, lease, now);
        if at <= now {
            return self.activate_self(attempt);
        }
        tracing::info!(pg = %pg, earlier = ?silent, wait_ms = (at - now).as_millis() as u64, "waiting out the read leases of earlier members that did not answer");
        self.act(Action::SetTimer {
            after: at - now,
            timer: Timer::LeaseWait { attempt },
        });
    }

    /// The leases have lapsed.
    pub(super) fn lease_waited(&mut self, attempt: u64) {
        if self
            .attempt(attempt)
            .is_some_and(|p| p.stage == Stage::Leases)
        {
            self.activate_self(attempt);
        }
    }

    /// Sends every other member its activation.
    fn activate_members(&mut self, attempt: u64) {
        let me = self.whoami;
        let interval = self.interval.clone();
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        let Some(plan) = p.plan.clone() else {
            return self.peering_failed("no plan");
        };
        let pushed = p.pushed_digest;
        let members: BTreeSet<i32> = interval
            .acting
            .iter()
            .copied()
            .filter(|&m| m != me)
            .collect();
        p.stage = Stage::Activate(members.clone());
        let missing = p.members_missing.clone();
        if members.is_empty() {
            return self.record_active(attempt);
        }
        for m in members {
            let act = PgActivate {
                epoch: 0,
                pg: self.id,
                interval: interval.epoch,
                shape: interval.shape(),
                info: plan.info.clone(),
                log: plan.log.clone(),
                dups: plan.dups.clone(),
                backfill: matches!(plan.catchup.get(&m), Some(Catchup::Backfill)),
                pushed,
                missing: missing
                    .get(&m)
                    .map(|o| o.iter().cloned().collect())
                    .unwrap_or_default(),
            };
            let token = self.token();
            self.pending
                .insert(token, Pending::Activate { attempt, member: m });
            self.act(Action::Request {
                token,
                to: m,
                req: OutRequest::Activate(act),
            });
        }
    }

    /// A member answered its activation.
    pub(super) fn member_activated(
        &mut self,
        now: Duration,
        attempt: u64,
        member: i32,
        result: Result<(), OpError>,
    ) {
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        let Stage::Activate(waiting) = &mut p.stage else {
            return;
        };
        if let Err(e) = result {
            return self.peering_failed(&format!("osd.{member}: {}", e.message));
        }
        waiting.remove(&member);
        let all = waiting.is_empty();
        self.progress(now);
        if all {
            self.record_active(attempt);
        }
    }

    fn record_active(&mut self, attempt: u64) {
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        p.stage = Stage::RecordActive;
        let token = self.token();
        self.pending
            .insert(token, Pending::RecordActive { attempt });
        self.act(Action::Mon {
            token,
            cmd: MonCommand::PgActivated {
                pg: self.id.to_string(),
                interval: self.interval.epoch,
                acting: self.interval.acting.clone(),
            },
        });
    }

    /// The head activates itself first: it lists its objects (to count
    /// them and, after its own backfill, to drop what it did not pull) and
    /// stores its activation.
    fn activate_self(&mut self, attempt: u64) {
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        p.stage = Stage::SelfActivate;
        let token = self.token();
        self.pending
            .insert(token, Pending::ListForActivation { attempt });
        self.act(Action::ListObjects { token });
    }

    /// The monitors recorded the interval: the head serves.
    pub(super) fn active_recorded(&mut self, attempt: u64, result: Result<CommandOutput, String>) {
        if self.attempt(attempt).is_none() {
            return;
        }
        if let Err(e) = result {
            return self.peering_failed(&format!("the monitors' activation record: {e}"));
        }
        let Some(p) = self.peering.take() else {
            return;
        };
        self.failures = 0;
        self.recovery = Missing::new(p.members_missing.iter().map(|(&m, o)| (m, o)));
        self.go_active();
        self.act(Action::Report);
        self.start_recovery();
        if self.interval.up != self.interval.acting || self.interval.pg_temp {
            self.start_backfill();
        }
    }

    /// The head's objects: stale ones go (after its own backfill), then
    /// its activation is stored.
    pub(super) fn listed_for_activation(
        &mut self,
        attempt: u64,
        result: Result<StoreRead, OpError>,
    ) {
        let names = match result {
            Ok(StoreRead::Objects(names)) => names,
            Ok(_) => return,
            Err(e) => return self.peering_failed(&e.message),
        };
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        let my_backfill = p.my_backfill;
        let stale: Vec<String> = if my_backfill {
            names
                .iter()
                .filter(|n| !self.pushed.contains(n))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        self.objects = (names.len() - stale.len()) as u64;
        if stale.is_empty() {
            return self.store_self_activation(attempt);
        }
        self.remove_objects(&stale, |last| TxnDone::SelfUnpushed { attempt, last });
    }

    /// A batch of the head's stale objects is removed.
    pub(super) fn self_unpushed_removed(
        &mut self,
        attempt: u64,
        last: bool,
        result: Result<(), OpError>,
    ) {
        if self.attempt(attempt).is_none() {
            return;
        }
        match result {
            Err(e) => self.peering_failed(&e.message),
            Ok(()) if last => self.store_self_activation(attempt),
            Ok(()) => {}
        }
    }

    fn store_self_activation(&mut self, attempt: u64) {
        let Some(plan) = self.attempt(attempt).and_then(|p| p.plan.clone()) else {
            return;
        };
        let log = PgLog::new(plan.info.log_tail, plan.log)
            .with_dups(plan.dups)
            .with_head(plan.info.last_update);
        let epoch = self.interval.epoch;
        let acting = self.interval.acting.clone();
        match super::records::log_txn(&self.coll, &log, epoch, &acting, &BTreeSet::new()) {
            Ok(t) => {
                self.stored_records = Some(Stored::new(log, BTreeSet::new(), epoch, acting));
                self.submit(t, TxnDone::SelfActivated { attempt });
            }
            Err(e) => self.peering_failed(&e.message),
        }
    }

    /// The head's activation is durable: the members' next.
    pub(super) fn self_activated(&mut self, attempt: u64, result: Result<(), OpError>) {
        let Some(stored) = self.stored_records.take() else {
            return;
        };
        if let Err(e) = result {
            return self.peering_failed(&e.message);
        }
        // Stored: this copy's records now, whatever becomes of the attempt.
        self.take_records(stored);
        if self.attempt(attempt).is_some() {
            self.activate_members(attempt);
        }
    }
}
