//! The acceptor: promises, accepts, lease grants.
//!
//! Every reply that reports a durable change (a promise, an accept, a lease
//! grant that came with a new promise) goes through
//! [`Node::send_after_persist`], so it leaves only after the shell has made
//! the change durable and called [`Node::advance`]. Refusals leave at once:
//! nobody counts on them.

use crate::ballot::{Ballot, NodeId, SLOT_HORIZON, Slot, Time};
use crate::message::{Body, Command, LogEntry};
use crate::node::{Grant, Node};

impl Node {
    /// Whether the acceptor may promise `b` now: `b` is not below the
    /// current promise, and no lease granted to another ballot (or the
    /// restart quarantine) is running.
    pub(crate) fn may_promise(&self, b: Ballot) -> bool {
        if b < self.promised {
            return false;
        }
        if b == self.promised {
            return true;
        }
        match self.grant {
            Some(g) => g.ballot == b || self.now >= g.until,
            None => true,
        }
    }

    /// Phase 1a.
    pub(crate) fn on_prepare(&mut self, from: NodeId, ballot: Ballot, from_slot: Slot) {
        self.note_ballot(ballot);
        if !self.may_promise(ballot) {
            let promised = self.promised;
            self.send(from, Body::Reject { ballot, promised });
            return;
        }
        if ballot > self.promised {
            self.set_promised(ballot);
            if from != self.cfg.id {
                // Give the candidate time to finish before competing.
                self.reset_election_timer();
            }
        }
        let entries = self.promise_entries(from_slot);
        let commit = self.commit;
        self.send_after_persist(
            from,
            Body::Promise {
                ballot,
                commit,
                entries,
            },
        );
    }

    /// What a promise reports from `from_slot` on: chosen entries (at most
    /// a catch-up batch of them; the candidate fetches the rest), then
    /// every accepted entry above the commit index.
    fn promise_entries(&self, from_slot: Slot) -> Vec<LogEntry> {
        let start = from_slot.max(self.log_start).max(1);
        let mut out = Vec::new();
        if start <= self.commit {
            let batch = u64::try_from(self.cfg.catchup_batch).unwrap_or(u64::MAX);
            let end = self.commit.min(start.saturating_add(batch - 1));
            out.extend(self.log.range(start..=end).map(|(_, e)| e.clone()));
        }
        let above = self.commit.max(start - 1).saturating_add(1);
        out.extend(self.log.range(above..).map(|(_, e)| e.clone()));
        out
    }

    /// Phase 2a.
    pub(crate) fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        command: Command,
        commit: Slot,
    ) {
        self.note_ballot(ballot);
        if slot == 0 || slot > self.commit.saturating_add(SLOT_HORIZON) {
            // Nonsense, or too far ahead: catch up first (no vote).
            self.request_catchup(from);
            return;
        }
        if !self.may_promise(ballot) {
            let promised = self.promised;
            self.send(from, Body::Reject { ballot, promised });
            return;
        }
        if ballot > self.promised {
            self.set_promised(ballot);
        }
        if from != self.cfg.id {
            self.leader_hint = Some(ballot.node);
            self.reset_election_timer();
        }
        // At or below the commit index the slot is chosen already, and by
        // Paxos' safety the leader's value is the chosen one: just answer.
        if slot > self.commit {
            self.write_entry(LogEntry {
                slot,
                ballot,
                command,
            });
        }
        self.send_after_persist(from, Body::Accepted { ballot, slot });
        self.learn_commit(from, ballot, commit);
    }

    /// A leader's heartbeat: follow it, grant it a lease, learn its commit
    /// index.
    pub(crate) fn on_heartbeat(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        commit: Slot,
        lease_start: Time,
    ) {
        self.note_ballot(ballot);
        if ballot < self.promised {
            // A deposed leader: tell it.
            let promised = self.promised;
            self.send(from, Body::Reject { ballot, promised });
            return;
        }
        if !self.may_promise(ballot) {
            // A newer leader while a lease for another one runs: wait.
            return;
        }
        if ballot > self.promised {
            self.set_promised(ballot);
        }
        self.leader_hint = Some(ballot.node);
        self.reset_election_timer();
        let granted = self.cfg.leases_enabled();
        if granted {
            let until = self.now.saturating_add(self.cfg.lease_duration);
            let until = match self.grant {
                Some(g) if g.ballot == ballot => g.until.max(until),
                _ => until,
            };
            self.grant = Some(Grant { ballot, until });
        }
        self.send_after_persist(
            from,
            Body::HeartbeatAck {
                ballot,
                lease_start,
                lease_granted: granted,
            },
        );
        self.learn_commit(from, ballot, commit);
    }

    /// A leader's commit index.
    pub(crate) fn on_commit(&mut self, from: NodeId, ballot: Ballot, commit: Slot) {
        self.note_ballot(ballot);
        if ballot == self.promised && from != self.cfg.id {
            self.leader_hint = Some(ballot.node);
            self.reset_election_timer();
        }
        self.learn_commit(from, ballot, commit);
    }
}
