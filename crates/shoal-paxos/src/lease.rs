//! The leader lease.
//!
//! With each heartbeat the leader, at its clock reading `t`, asks for a
//! lease. An acceptor that follows the leader's ballot grants it: until its
//! own clock has advanced by `lease_duration` past the moment it handled
//! the request, it promises no other ballot (see
//! `Node::may_promise`). The leader counts the lease from `t` (before any
//! grant was made) for only `effective_lease = lease_duration * (1 - e) /
//! (1 + e)` on its own clock, `e` being the drift allowance; with clocks
//! whose rates are within `1 ± e` of real time, the leader's lease thus
//! ends, in real time, no later than `t + lease_duration / (1 + e)`, and
//! every granter's refusal ends no earlier than that.
//!
//! Why two nodes never both hold a lease: a lease needs grants from a
//! quorum for ballot `a`, leadership of ballot `b` needs promises from a
//! quorum; the quorums share an acceptor `x`. If `x` promised `b > a`
//! after granting `a`, it did so after its grant ran out, hence after `a`'s
//! lease ended; if it promised `b` before, it no longer follows `a` and
//! does not grant `a` (grants need `promised == a`). So while `a` holds a
//! lease no higher ballot can complete phase 1, and a leader with a lower
//! ballot `b < a` cannot hold a lease either (swap the roles). An acceptor
//! forgets grants when it crashes, so a restarted acceptor with a promise
//! refuses new promises for a whole lease duration (the restart quarantine
//! in `Node::observe_time`, armed at the first clock reading it is
//! given).

use std::collections::BTreeSet;

use crate::ballot::{Ballot, NodeId, Time};
use crate::node::{Grant, Node, Role};

impl Node {
    /// Opens a lease round at the leader's current clock; the leader's own
    /// acceptor grants at once.
    pub(crate) fn start_lease_round(&mut self) {
        if !self.cfg.leases_enabled() {
            return;
        }
        let now = self.now;
        let eff = self.cfg.effective_lease();
        let quorum = self.cfg.quorum();
        let id = self.cfg.id;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let ballot = l.ballot;
        // Forget rounds that could no longer extend the lease.
        l.lease_rounds = l.lease_rounds.split_off(&now.saturating_sub(eff));
        l.lease_rounds.insert(now, BTreeSet::from([id]));
        if quorum == 1 {
            let until = now.saturating_add(eff);
            l.lease_until = Some(l.lease_until.map_or(until, |u| u.max(until)));
        }
        let until = now.saturating_add(self.cfg.lease_duration);
        let until = match self.grant {
            Some(g) if g.ballot == ballot => g.until.max(until),
            _ => until,
        };
        self.grant = Some(Grant { ballot, until });
    }

    /// A peer's answer to a heartbeat.
    pub(crate) fn on_heartbeat_ack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        lease_start: Time,
        granted: bool,
    ) {
        let now = self.now;
        let eff = self.cfg.effective_lease();
        let quorum = self.cfg.quorum();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.ballot != ballot {
            return;
        }
        l.last_ack.insert(from, now);
        if !granted || !self.cfg.leases_enabled() {
            return;
        }
        // Only rounds this leader opened count (a forged or ancient
        // `lease_start` finds no round).
        let Some(granters) = l.lease_rounds.get_mut(&lease_start) else {
            return;
        };
        granters.insert(from);
        if granters.len() >= quorum {
            let until = lease_start.saturating_add(eff);
            l.lease_until = Some(l.lease_until.map_or(until, |u| u.max(until)));
        }
    }
}
