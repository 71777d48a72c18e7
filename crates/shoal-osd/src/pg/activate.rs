//! A member's activation: the head of the interval sends the
//! authoritative log (with its dups), the objects this member lacks under
//! it, and whether it was backfilled (then every object the head did not
//! push during peering is stale and goes). The member stores all that as
//! its records in one transaction and goes active only once it is
//! durable; then it answers the head.

use super::types::Phase;
use std::collections::BTreeSet;

use shoal_proto::rep::PgActivate;

use super::types::{Action, PeerReply, Pending, ReplyTo, StoreRead, TxnDone};
use super::{Pg, records};
use crate::chain::Chain;
use crate::exec::{OpError, unavailable};

use crate::pglog::PgLog;

/// Objects removed per transaction when a backfilled copy drops what was
/// not pushed.
const REMOVE_BATCH: usize = 1000;

impl Pg {
    /// The head activates this member.
    pub(super) fn on_activate(&mut self, from: i32, reply: ReplyTo, act: PgActivate) {
        self.adopt_interval(act.interval, &act.shape);
        if self.interval.epoch != act.interval
            || !self.interval.has_shape(&act.shape)
            || act.shape.acting.first() != Some(&from)
        {
            self.respond(reply, Err(unavailable("another interval")));
            return;
        }
        let backfill = act.backfill;
        if backfill && act.pushed != self.pushed.digest() {
            let why = "this copy did not get every object pushed during this peering";
            self.respond(reply, Err(unavailable(why)));
            return;
        }
        self.activation = Some((reply, act));
        if backfill {
            // The set the digest matched (a new attempt may clear `pushed`
            // before the listing comes back: then nothing was kept, and
            // every object went; the simulation found it).
            self.activation_kept = self.pushed.clone();
            let token = self.token();
            self.pending.insert(token, Pending::Unpushed { reply });
            self.act(Action::ListObjects { token });
        } else {
            self.store_activation(reply);
        }
    }

    pub(super) fn respond(&mut self, reply: ReplyTo, result: Result<PeerReply, OpError>) {
        self.act(Action::Respond { reply, result });
    }

    /// The backfilled copy's objects: those not pushed during peering go.
    pub(super) fn unpushed_listed(&mut self, reply: ReplyTo, result: Result<StoreRead, OpError>) {
        let names = match result {
            Ok(StoreRead::Objects(names)) => names,
            Ok(_) => return,
            Err(e) => {
                self.activation = None;
                self.respond(reply, Err(e));
                return;
            }
        };
        let stale: Vec<String> = names
            .into_iter()
            .filter(|n| !self.activation_kept.contains(n))
            .collect();
        if stale.is_empty() {
            self.store_activation(reply);
            return;
        }
        self.remove_objects(&stale, |last| TxnDone::Unpushed { reply, last });
    }

    /// Removes `names` in transactions of [`REMOVE_BATCH`] objects; `done`
    /// names each one's completion (`true`: the last).
    pub(super) fn remove_objects(&mut self, names: &[String], done: impl Fn(bool) -> TxnDone) {
        let batches = names.chunks(REMOVE_BATCH).count();
        for (i, batch) in names.chunks(REMOVE_BATCH).enumerate() {
            let mut t = shoal_store::Transaction::new(self.coll.clone());
            t.ops = batch
                .iter()
                .map(|n| shoal_store::Op::Remove { name: n.clone() })
                .collect();
            self.submit(t, done(i + 1 == batches));
        }
    }

    /// A batch of stale objects is removed (the last one: the records follow).
    pub(super) fn unpushed_removed(
        &mut self,
        reply: ReplyTo,
        last: bool,
        result: Result<(), OpError>,
    ) {
        if self.activation.as_ref().map(|(r, _)| *r) != Some(reply) {
            return;
        }
        match result {
            Err(e) => {
                self.activation = None;
                self.respond(reply, Err(e));
            }
            Ok(()) if last => self.store_activation(reply),
            Ok(()) => {}
        }
    }

    /// Stores the activation's log, dups, missing set and info.
    fn store_activation(&mut self, reply: ReplyTo) {
        let Some((_, act)) = &self.activation else {
            return;
        };
        let log = PgLog::new(act.info.log_tail, act.log.clone())
            .with_dups(act.dups.clone())
            .with_head(act.info.last_update);
        let missing: BTreeSet<String> = act.missing.iter().cloned().collect();
        let interval = act.interval;
        match records::log_txn(&self.coll, &log, interval, &act.shape.acting, &missing) {
            Ok(t) => {
                self.submit(t, TxnDone::Activated { interval, reply });
            }
            Err(e) => {
                self.activation = None;
                self.respond(reply, Err(e));
            }
        }
    }

    /// The activation records are durable: go active (if still in that
    /// interval) and answer the head.
    pub(super) fn activation_stored(
        &mut self,
        interval: u32,
        reply: ReplyTo,
        result: Result<(), OpError>,
    ) {
        let Some((r, act)) = self.activation.take() else {
            return;
        };
        if r != reply {
            self.activation = Some((r, act));
            return;
        }
        if let Err(e) = result {
            self.respond(reply, Err(e));
            return;
        }
        // The records are this copy's now, whatever the interval.
        self.log = PgLog::new(act.info.log_tail, act.log)
            .with_dups(act.dups)
            .with_head(act.info.last_update);
        self.les = interval;
        self.last_acting = act.shape.acting.clone();
        self.missing = act.missing.into_iter().collect();
        if self.interval.epoch != interval || !self.interval.has_shape(&act.shape) {
            self.respond(reply, Err(unavailable("another interval")));
            return;
        }
        self.go_active();
        self.respond(reply, Ok(PeerReply::Ack));
    }

    /// Serves the interval from the log as it stands.
    pub(super) fn go_active(&mut self) {
        let head = self.log.head();
        let tail = self
            .position()
            .is_some_and(|p| p + 1 == self.interval.acting.len());
        self.write = super::write::Writes::new(Chain::new(tail, head));
        self.phase = Phase::Active;
        tracing::info!(pg = %self.id, epoch = self.interval.epoch, acting = ?self.interval.acting, last_update = %head, "active");
    }
}
