//! Client ops at this copy: writes go to the write path at the head;
//! reads are served here only while every chain mate's read lease holds
//! (`lease.rs`), by the head for an object this copy lacks, and by the
//! tail for an object with a write not yet done (CRAQ).

use super::Pg;
use super::types::{Action, ClientAnswer, ClientOp, Facts, OpId, Pending, Token};
use crate::exec::OpError;
use shoal_proto::osd::OsdErrorCode;

impl Pg {
    /// A client op for this PG.
    pub(super) fn on_client(&mut self, facts: &dyn Facts, op: ClientOp) {
        if let Err(e) = self.check_serving(facts, &op) {
            self.act(Action::Client {
                op: op.op,
                answer: ClientAnswer::Failed(e),
            });
            return;
        }
        if op.write {
            self.client_write(op);
            return;
        }
        let plan = if self.missing.contains(&op.object) {
            // Recovery has not brought it here yet: the head has it.
            self.interval
                .acting
                .first()
                .map(|&to| ClientAnswer::Forward { to, balance: false })
        } else if self.write.is_dirty(&op.object) {
            // The tail has its committed state.
            self.interval
                .acting
                .last()
                .map(|&to| ClientAnswer::Forward { to, balance: true })
        } else {
            None
        };
        match plan {
            Some(forward) => self.act(Action::Client {
                op: op.op,
                answer: forward,
            }),
            None => self.read_under_lease(facts, op.op),
        }
    }

    /// A client lists a page of the PG's objects.
    pub(super) fn on_list(&mut self, facts: &dyn Facts, op: OpId, epoch: u32) {
        let check = self.check_read_serving(facts, epoch, true);
        match check {
            Ok(()) => self.read_under_lease(facts, op),
            Err(e) => self.act(Action::Client {
                op,
                answer: ClientAnswer::Failed(e),
            }),
        }
    }

    /// Serves a read here if every chain mate's lease holds; otherwise
    /// pings the lapsed ones first.
    fn read_under_lease(&mut self, facts: &dyn Facts, op: OpId) {
        let lapsed = if self.cfg.planted.serve_reads_without_lease {
            Vec::new()
        } else {
            facts.lease_lapsed(&self.interval.acting)
        };
        if lapsed.is_empty() {
            self.act(Action::Client {
                op,
                answer: ClientAnswer::ReadHere,
            });
            return;
        }
        let token = self.token();
        self.pending.insert(token, Pending::Lease { op });
        self.act(Action::RenewLeases {
            token,
            members: lapsed,
        });
    }

    /// The lapsed chain mates were pinged: serve the parked read if that
    /// renewed every lease.
    pub(super) fn on_leases_renewed(&mut self, facts: &dyn Facts, token: Token) {
        let Some(Pending::Lease { op }) = self.pending.remove(&token) else {
            return;
        };
        let lapsed = facts.lease_lapsed(&self.interval.acting);
        let answer = if lapsed.is_empty() {
            ClientAnswer::ReadHere
        } else {
            ClientAnswer::Failed(OpError::new(
                OsdErrorCode::Unavailable,
                format!(
                    "no read lease: chain members {lapsed:?} did not answer a heartbeat from this map"
                ),
            ))
        };
        self.act(Action::Client { op, answer });
    }
}
