//! What this copy answers a peering head: its log state (for a peering
//! query), whether the PG is clean (for a stray's check), and, as a
//! backfill target, the start and finish of its fill.
//!
//! A peering head may only be told about a copy that has left every
//! earlier interval: one still active in an older chain under another head
//! could take (and acknowledge) writes after answering, which the head's
//! activation would then roll back (the simulation found it). And it is
//! told only once every write ordered here is in the store, so the log it
//! gets matches the objects it may then pull.

use shoal_proto::osd::OsdErrorCode;
use shoal_proto::rep::{BackfillStep, PgBackfill, PgQuery, PgQueryReply};

use super::types::{Action, Facts, PeerReply, Pending, Phase, ReplyTo, StoreRead, TxnDone};
use super::{Pg, Stored};
use crate::exec::{OpError, unavailable};
use crate::pglog::PgLog;

impl Pg {
    /// A head (or a stray checking on its PG) asks about this copy.
    pub(super) fn on_query(&mut self, facts: &dyn Facts, from: i32, reply: ReplyTo, q: PgQuery) {
        if q.interval != 0 && !self.cfg.planted.answer_from_older_maps {
            let behind = facts.map_epoch() < q.interval
                || (self.phase == Phase::Active
                    && self.interval.epoch < q.interval
                    && self.interval.acting.first() != Some(&from));
            if behind {
                let why = format!("this OSD has not reached epoch {} yet", q.interval);
                return self.respond(reply, Err(OpError::new(OsdErrorCode::OsdBehind, why)));
            }
        }
        if q.interval != 0 {
            self.adopt_interval(q.interval, &q.shape);
            if q.interval == self.interval.epoch
                && self.interval.acting.first() == Some(&from)
                && from != self.whoami
            {
                // A new peering attempt: what earlier ones pushed no
                // longer counts (its activation names only its own).
                self.pushed.clear();
            }
            if !self.settled() {
                self.deferred_queries.push((from, reply, q));
                return;
            }
        }
        // "Clean" lets the asker delete its copy: never when the asker is
        // part of this head's chain or up set (its own map may be behind).
        let clean = self.is_clean_head()
            && !self.interval.acting.contains(&from)
            && !self.interval.up.contains(&from);
        let answer = PgQueryReply {
            epoch: facts.map_epoch(),
            state: Some(self.log_state()),
            clean,
            heard: facts.heard_ago(),
            interval: self.interval.epoch,
            shape: self.interval.shape(),
        };
        self.respond(reply, Ok(PeerReply::Query(Box::new(answer))));
    }

    /// This copy's transactions are all stored: the queries that waited
    /// for it are answered.
    pub(super) fn answer_deferred(&mut self, facts: &dyn Facts) {
        for (from, reply, q) in std::mem::take(&mut self.deferred_queries) {
            self.on_query(facts, from, reply, q);
        }
    }

    /// Whether this OSD heads the PG and it is clean: active, a chain of
    /// `size` members that is the up set, nothing missing, no backfill.
    pub fn is_clean_head(&self) -> bool {
        self.position() == Some(0)
            && self.phase == Phase::Active
            && !self.write.has_failed()
            && self.interval.acting == self.interval.up
            && self.interval.acting.len() >= self.interval.size
            && self.recovery.is_empty()
            && !self.backfilling
    }

    /// A backfill step from the head of a `pg_temp` chain.
    pub(super) fn on_backfill(&mut self, reply: ReplyTo, req: PgBackfill) {
        let stored = match req.step {
            BackfillStep::Start => {
                self.adopt_interval_as_target(req.interval, &req.shape);
                let target = self.interval.up.contains(&self.whoami)
                    && !self.interval.acting.contains(&self.whoami);
                if self.interval.epoch != req.interval || !target {
                    let why = "not a backfill target in this interval";
                    return self.respond(reply, Err(unavailable(why)));
                }
                self.backfill_of = Some(req.interval);
                let token = self.token();
                self.pending.insert(token, Pending::BackfillStart { reply });
                self.act(Action::ListObjects { token });
                return;
            }
            BackfillStep::Finish {
                info,
                log,
                dups,
                missing,
            } => {
                // Every object but `missing` is in place up to
                // `info.last_update`: keep the head's log so the switch to
                // the up set needs only the writes after it.
                if self.backfill_of != Some(req.interval) {
                    let why = "no backfill of this interval here";
                    return self.respond(reply, Err(unavailable(why)));
                }
                let log = PgLog::new(info.log_tail, log)
                    .with_dups(dups)
                    .with_head(info.last_update);
                let missing = missing.into_iter().collect();
                Stored::new(log, missing, info.last_epoch_started, info.last_acting)
            }
        };
        self.store_records(reply, stored);
    }

    /// A backfill starts here: the copy's log is dropped (what it held is
    /// older than the chain's log tail, or it had nothing) and every
    /// object it holds is suspect (missing) until pushed, so that peering
    /// never takes a stale object kept here for current (an empty log
    /// alone did: the simulation found it).
    pub(super) fn backfill_start_listed(
        &mut self,
        reply: ReplyTo,
        result: Result<StoreRead, OpError>,
    ) {
        match result {
            Ok(StoreRead::Objects(names)) => {
                let stored =
                    Stored::new(PgLog::default(), names.into_iter().collect(), 0, Vec::new());
                self.store_records(reply, stored);
            }
            Ok(_) => {}
            Err(e) => self.respond(reply, Err(e)),
        }
    }

    fn store_records(&mut self, reply: ReplyTo, stored: Stored) {
        let txn = super::records::log_txn(
            &self.coll,
            &stored.log,
            stored.les,
            &stored.acting,
            &stored.missing,
        );
        match txn {
            Ok(t) => {
                self.stored_records = Some(stored);
                self.submit(t, TxnDone::Records { reply });
            }
            Err(e) => self.respond(reply, Err(e)),
        }
    }

    /// New records of this copy are stored: they are its state now.
    pub(super) fn records_stored(&mut self, reply: ReplyTo, result: Result<(), OpError>) {
        let stored = self.stored_records.take();
        if let Err(e) = result {
            return self.respond(reply, Err(e));
        }
        if let Some(s) = stored {
            self.take_records(s);
        }
        self.respond(reply, Ok(PeerReply::Ack));
    }
}
