//! Writes: ordered at the head, applied in order on every member, done
//! when durable on every member, answered at the head.
//!
//! - The head takes one write per object at a time: the first op in the
//!   object's queue is resolved against the object's view (appends become
//!   writes at the old end, guards are checked) and stored; the next one
//!   starts when that write is durable here, so it sees it.
//! - A request the log (or its dups) remembers is answered with the
//!   version it made, once that write is done; it is never applied twice.
//! - Each ordered write gets the next version, its log entry goes into the
//!   same store transaction as its data, it goes down the chain on the
//!   ordered link, and [`crate::chain::Chain`] says when it is done (durable
//!   here and acknowledged by the next member): the head then answers the
//!   client, the others acknowledge upstream.
//! - Members apply writes from their upstream only in order (a write they
//!   already have is skipped, a gap stops the stream, which the sender
//!   re-sends from its oldest unacknowledged write).

use super::types::Phase;
use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use shoal_proto::osd::{ObjOp, ObjVersion, OsdErrorCode};
use shoal_proto::rep::{LogDup, LogEntry, LogOp, RepOp};
use shoal_store::Op;

use super::objects::Task;
use super::types::{Action, ClientAnswer, ClientOp, Facts, OpId, Pending, StoreRead, TxnDone};
use super::{Pg, records};
use crate::chain::Chain;
use crate::exec::{self, OpError, unavailable};

/// The writes of the current interval on this member.
#[derive(Debug)]
pub(super) struct Writes {
    chain: Chain,
    /// Head: the object of each ordered write not yet durable here.
    holding: HashMap<u64, String>,
    /// Head: clients waiting for ordered writes to be done, by sequence,
    /// with the answer they get then.
    waiters: BTreeMap<u64, (ClientAnswer, Vec<OpId>)>,
    /// Objects with writes not yet done, and the newest such write.
    uncommitted: HashMap<String, u64>,
    /// Member: the newest write received from upstream.
    recv_last: ObjVersion,
    /// A local write failed after it was ordered: no more writes in this
    /// interval (the next one re-peers the PG).
    failed: Option<String>,
}

impl Writes {
    /// No writes yet, on `chain`.
    pub(super) fn new(chain: Chain) -> Writes {
        let recv_last = chain.done();
        Writes {
            chain,
            holding: HashMap::new(),
            waiters: BTreeMap::new(),
            uncommitted: HashMap::new(),
            recv_last,
            failed: None,
        }
    }

    /// Every client op waiting for its write to be done (their answers
    /// are lost with the interval: the clients retry).
    pub(super) fn abandoned(&mut self) -> Vec<OpId> {
        let mut out: Vec<OpId> = self
            .waiters
            .values()
            .flat_map(|(_, ops)| ops.iter().copied())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether a write to `object` is not done yet.
    pub(super) fn is_uncommitted(&self, object: &str) -> bool {
        self.uncommitted.contains_key(object)
    }

    /// Whether a read of `object` here would see a write not yet done.
    pub(super) fn is_dirty(&self, object: &str) -> bool {
        self.uncommitted.contains_key(object) && !self.chain.is_tail()
    }

    /// The newest write done here.
    pub(super) fn done(&self) -> ObjVersion {
        self.chain.done()
    }

    /// The newest version such that it and every write before it are in
    /// the local store (the log may be ahead of the store).
    pub(super) fn local_through(&self) -> ObjVersion {
        self.chain.local_through()
    }

    /// Whether a local write failed in this interval.
    pub(super) fn has_failed(&self) -> bool {
        self.failed.is_some()
    }
}

impl Pg {
    /// Checks that a client op may be served here now.
    pub(super) fn check_serving(&self, facts: &dyn Facts, op: &ClientOp) -> Result<(), OpError> {
        self.check_read_serving(facts, op.epoch, op.balance && !op.write)?;
        if op.write {
            if self.interval.acting.len() < self.interval.min_size {
                return Err(unavailable("fewer members than min_size"));
            }
            if let Some(why) = &self.write.failed {
                return Err(unavailable(why.clone()));
            }
            if !crate::space::frees_space(&op.ops)
                && let Some(&m) = self.interval.acting.iter().find(|&&m| facts.is_full(m))
            {
                return Err(crate::space::full_error(m));
            }
        }
        Ok(())
    }

    /// Checks the epochs, the role (a member other than the head serves
    /// only balanced reads) and the phase.
    pub(super) fn check_read_serving(
        &self,
        facts: &dyn Facts,
        epoch: u32,
        balanced_read: bool,
    ) -> Result<(), OpError> {
        let mine = facts.map_epoch();
        if epoch > mine {
            return Err(OpError::new(
                OsdErrorCode::OsdBehind,
                format!("this OSD has epoch {mine}, the request {epoch}"),
            ));
        }
        if epoch < self.interval.epoch {
            return Err(OpError::new(
                OsdErrorCode::StaleEpoch,
                format!("the PG's chain changed in epoch {}", self.interval.epoch),
            ));
        }
        match self.position() {
            Some(0) => {}
            Some(_) if balanced_read => {}
            _ => return Err(OpError::new(OsdErrorCode::WrongOsd, "not this PG's head")),
        }
        if self.phase != Phase::Active {
            return Err(unavailable("the PG is peering"));
        }
        Ok(())
    }

    /// Head: a client write joins its object's queue (`objects.rs`).
    pub(super) fn client_write(&mut self, op: ClientOp) {
        let object = op.object.clone();
        self.queue_task(&object, Task::Write(op));
    }

    fn answer(&mut self, op: OpId, answer: ClientAnswer) {
        self.act(Action::Client { op, answer });
    }

    /// Head: the front write of `object` (which it holds) asks for the
    /// object's view.
    pub(super) fn load_view(&mut self, object: &str) {
        let Some(op) = self.objects_q.front_write(object) else {
            return;
        };
        let id = op.op;
        let guards: Vec<ObjOp> = op.ops.iter().filter(|o| o.is_guard()).cloned().collect();
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending.insert(
            token,
            Pending::View {
                op: id,
                object: object.to_string(),
                interval,
            },
        );
        self.act(Action::LoadView {
            token,
            object: object.to_string(),
            guards,
        });
    }

    /// Head: `op`, a retry of a request the log remembers as `earlier`,
    /// is answered as that request was, once its entry is done.
    pub(super) fn await_version(&mut self, op: OpId, earlier: LogDup) {
        let version = earlier.version;
        if version <= self.write.done() {
            self.answer(op, remembered_answer(earlier));
        } else if let Some((_, ops)) = self.write.waiters.get_mut(&version.seq) {
            ops.push(op);
        } else {
            // Logged but neither done nor awaited: its local write failed.
            let why = "the write failed here; retry once the PG re-peered";
            self.answer(op, ClientAnswer::Failed(unavailable(why)));
        }
    }

    /// Head: the view of write `id`'s object arrived: resolve and order
    /// it. The object stays held until the write is durable here.
    pub(super) fn view_loaded(
        &mut self,
        facts: &dyn Facts,
        id: OpId,
        object: String,
        interval: u32,
        result: Result<StoreRead, OpError>,
    ) {
        if interval != self.interval.epoch
            || self
                .objects_q
                .front_write(&object)
                .is_none_or(|o| o.op != id)
        {
            return;
        }
        let Some(Task::Write(op)) = self.objects_q.pop(&object) else {
            return;
        };
        let ordered = result.and_then(|read| {
            let StoreRead::View(view) = read else {
                return Err(crate::exec::internal("a view was asked, not that"));
            };
            match exec::resolve(&op.ops, &view) {
                Ok(resolved) => {
                    let change = (view.exists, resolved.op == LogOp::Modify);
                    self.order_at_head(&op, resolved, None)?;
                    self.count_write(change.0, change.1);
                    Ok(())
                }
                Err(e) if is_refusal_from_state(&e) => {
                    self.check_refusal_lease(facts)?;
                    let resolved = exec::Resolved {
                        mutations: Vec::new(),
                        op: LogOp::Refused(e.code),
                    };
                    self.order_at_head(&op, resolved, Some(e))
                }
                Err(e) => Err(e),
            }
        });
        if let Err(e) = ordered {
            self.answer(id, ClientAnswer::Failed(e));
            self.next_task(&object);
        }
    }

    /// A write refused for what the object holds (absent, present, a guard
    /// that does not compare) is an answer read from this copy: like a
    /// read, it needs every chain mate's lease, or a head cut off with an
    /// old map would answer from data a newer chain has changed (the
    /// simulation found a delete answered "no such object" that way).
    fn check_refusal_lease(&self, facts: &dyn Facts) -> Result<(), OpError> {
        if self.cfg.planted.serve_reads_without_lease {
            return Ok(());
        }
        match facts.lease_lapsed(&self.interval.acting).as_slice() {
            [] => Ok(()),
            lapsed => Err(unavailable(format!(
                "no read lease: chain members {lapsed:?} did not answer a heartbeat from this map"
            ))),
        }
    }

    fn count_write(&mut self, before: bool, after: bool) {
        match (before, after) {
            (false, true) => self.objects += 1,
            (true, false) => self.objects = self.objects.saturating_sub(1),
            _ => {}
        }
    }

    /// Head: gives a resolved write (or a refusal, `refused`: the answer
    /// the client gets once it is done) the next version and orders it.
    fn order_at_head(
        &mut self,
        op: &ClientOp,
        resolved: exec::Resolved,
        refused: Option<OpError>,
    ) -> Result<(), OpError> {
        let head = self.log.head();
        // A head near u64::MAX can only come from damaged records or a
        // peer's bad activation: refuse rather than wrap.
        let seq = head.seq.checked_add(1).ok_or_else(|| {
            crate::exec::internal(format!("the log's head {head} has no successor"))
        })?;
        let version = ObjVersion {
            epoch: self.interval.epoch.max(head.epoch),
            seq,
        };
        let entry = LogEntry {
            version,
            reqid: op.reqid,
            object: op.object.clone(),
            op: resolved.op,
        };
        let sums = exec::sums_of_writes(
            &resolved.mutations,
            &op.payload,
            self.cfg.chunk_size,
            (&op.ops, &op.sums),
        );
        let ops = exec::store_ops(
            &op.object,
            &resolved.mutations,
            &op.payload,
            &sums,
            version,
            resolved.op,
        )?;
        let rep = RepOp {
            pg: self.id,
            interval: self.interval.epoch,
            entry,
            ops: resolved.mutations,
            committed: self.write.done(),
            sums,
        };
        self.order(rep, ops, op.payload.clone())?;
        self.write.holding.insert(version.seq, op.object.clone());
        let answer = match refused {
            Some(e) => ClientAnswer::Failed(e),
            None => ClientAnswer::Written(version),
        };
        self.write
            .waiters
            .insert(version.seq, (answer, vec![op.op]));
        Ok(())
    }

    /// Member: a write from upstream, applied in order.
    pub(super) fn on_rep(&mut self, from: i32, rep: RepOp, payload: Bytes) {
        if let Err(e) = self.replicate(from, rep, payload) {
            tracing::debug!(pg = %self.id, from, code = ?e.code, message = %e.message, "replicated write refused");
            self.act(Action::RefuseStream { from });
        }
    }

    fn replicate(&mut self, from: i32, rep: RepOp, payload: Bytes) -> Result<(), OpError> {
        let upstream_ok = self
            .position()
            .is_some_and(|p| p > 0 && self.interval.acting.get(p - 1) == Some(&from));
        if self.phase != Phase::Active || rep.interval != self.interval.epoch || !upstream_ok {
            return Err(unavailable("not the next member in this interval"));
        }
        let version = rep.entry.version;
        if version <= self.write.recv_last {
            // The sender re-sends until acknowledged: its copy of our
            // acknowledgement may be the one that was lost.
            self.ack_again(version);
            return Ok(());
        }
        if self.write.recv_last.seq.checked_add(1) != Some(version.seq) {
            return Err(OpError::new(
                OsdErrorCode::Invalid,
                format!("write {version} after {}: a gap", self.write.recv_last),
            ));
        }
        exec::check_name(&rep.entry.object)?;
        let ops = exec::store_ops(
            &rep.entry.object,
            &rep.ops,
            &payload,
            &rep.sums,
            version,
            rep.entry.op,
        )?;
        self.order(rep, ops, payload)?;
        self.write.recv_last = version;
        Ok(())
    }

    /// Orders a write on this member: its log entry and store transaction,
    /// the next member, the chain (in that order, so every member sees one
    /// order).
    fn order(&mut self, rep: RepOp, ops: Vec<Op>, payload: Bytes) -> Result<(), OpError> {
        let version = rep.entry.version;
        let info = (self.write.done(), self.les, self.last_acting.as_slice());
        let txn = records::write_txn(
            &self.coll,
            ops,
            &rep.entry,
            &mut self.log,
            self.cfg.log_limits,
            info,
        )?;
        self.write
            .chain
            .start(version)
            .map_err(crate::exec::internal)?;
        let object = rep.entry.object.clone();
        if let Some(next) = self.next_member() {
            self.act(Action::SendDown {
                to: next,
                rep,
                payload,
            });
        }
        self.write.uncommitted.insert(object, version.seq);
        let interval = self.interval.epoch;
        self.submit(txn, TxnDone::Write { interval, version });
        Ok(())
    }

    fn next_member(&self) -> Option<i32> {
        let p = self.position()?;
        self.interval.acting.get(p + 1).copied()
    }

    fn prev_member(&self) -> Option<i32> {
        let p = self.position()?;
        p.checked_sub(1)
            .and_then(|q| self.interval.acting.get(q).copied())
    }

    /// A write's local transaction finished.
    pub(super) fn write_stored(
        &mut self,
        interval: u32,
        version: ObjVersion,
        result: Result<(), OpError>,
    ) {
        if interval != self.interval.epoch {
            return;
        }
        let object = self.write.holding.remove(&version.seq);
        match result {
            Err(e) => {
                tracing::error!(pg = %self.id, %version, error = %e.message, "a replicated write failed locally");
                self.write.failed = Some(format!("a local write failed: {}", e.message));
                if let Some((_, ops)) = self.write.waiters.remove(&version.seq) {
                    for op in ops {
                        self.answer(op, ClientAnswer::Failed(e.clone()));
                    }
                }
            }
            Ok(()) => {
                if let Some(done) = self.write.chain.local_durable(version.seq) {
                    self.on_done(done);
                }
            }
        }
        // The next write to the object may now read its state.
        if let Some(object) = object {
            self.next_task(&object);
        }
    }

    /// The next member acknowledged everything up to `version`.
    /// Acknowledges again what is done when a write this member already
    /// has comes again and is done here (and downstream).
    fn ack_again(&mut self, version: ObjVersion) {
        let done = self.write.done();
        if done >= version {
            self.ack_up(done);
        }
    }

    /// Acknowledges every write up to `done` to the previous member.
    fn ack_up(&mut self, done: ObjVersion) {
        if let Some(prev) = self.prev_member() {
            let interval = self.interval.epoch;
            self.act(Action::AckUp {
                to: prev,
                interval,
                version: done,
            });
        }
    }

    pub(super) fn on_rep_ack(&mut self, from: i32, interval: u32, version: ObjVersion) {
        if self.next_member() != Some(from)
            || interval != self.interval.epoch
            || self.phase != Phase::Active
        {
            return;
        }
        if let Some(done) = self.write.chain.downstream_acked(version) {
            self.on_done(done);
        }
    }

    fn on_done(&mut self, done: ObjVersion) {
        self.write.uncommitted.retain(|_, seq| *seq > done.seq);
        // Scrub's second look waits for its object to be at rest.
        if let Some(object) = self.at_rest_wait.take() {
            if self.write.is_uncommitted(&object) {
                self.at_rest_wait = Some(object);
            } else {
                self.start_look(&object);
            }
        }
        while let Some(entry) = self.write.waiters.first_entry() {
            if *entry.key() > done.seq {
                break;
            }
            let (answer, ops) = entry.remove();
            for op in ops {
                self.answer(op, answer.clone());
            }
        }
        self.ack_up(done);
    }
}

/// Whether a write was refused for what its object holds (absent, present,
/// a guard that does not compare): an answer to remember in the log.
fn is_refusal_from_state(e: &OpError) -> bool {
    matches!(
        e.code,
        OsdErrorCode::NotFound | OsdErrorCode::Exists | OsdErrorCode::CompareFailed
    )
}

/// The answer a retry of a request the log remembers gets: the version
/// its write made, or the refusal it got.
fn remembered_answer(earlier: LogDup) -> ClientAnswer {
    match earlier.refused {
        None => ClientAnswer::Written(earlier.version),
        Some(code) => ClientAnswer::Failed(OpError::new(
            code,
            format!(
                "refused as {:?} at {} (a retry of a request already answered)",
                code, earlier.version
            ),
        )),
    }
}
