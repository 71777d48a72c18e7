//! Plumbing shared by every role: time, timers, sending (now or after
//! persistence), durable writes, dispatch of incoming messages.

use crate::ballot::{Ballot, NodeId, Slot, Time};
use crate::message::{Body, LogEntry, Message};
use crate::node::{Grant, Node, Role};

impl Node {
    pub(crate) fn role_ballot(&self) -> Option<Ballot> {
        match &self.role {
            Role::Follower => None,
            Role::Candidate(c) => Some(c.ballot),
            Role::Leader(l) => Some(l.ballot),
        }
    }

    pub(crate) fn observe_time(&mut self, now: Time) {
        if !self.clock_started {
            self.clock_started = true;
            self.now = now;
            self.reset_election_timer();
            // Restart quarantine: a lease granted before a crash is not
            // remembered, so refuse to promise anything new for a whole
            // lease, as if the grant were renewed right now.
            if self.cfg.leases_enabled() && !self.promised.is_zero() {
                self.grant = Some(Grant {
                    ballot: self.promised,
                    until: now.saturating_add(self.cfg.lease_duration),
                });
            }
        } else if now > self.now {
            self.now = now;
        }
    }

    pub(crate) fn jitter(&mut self) -> Time {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        z % self.cfg.election_timeout.max(1)
    }

    pub(crate) fn reset_election_timer(&mut self) {
        let j = self.jitter();
        self.election_deadline = self
            .now
            .saturating_add(self.cfg.election_timeout)
            .saturating_add(j);
    }

    pub(crate) fn note_ballot(&mut self, b: Ballot) {
        self.max_round_seen = self.max_round_seen.max(b.round);
    }

    /// Sends now (to self: handled after the current event).
    pub(crate) fn send(&mut self, to: NodeId, body: Body) {
        if to == self.cfg.id {
            self.self_queue.push_back(body);
        } else {
            self.outbox.push(Message {
                from: self.cfg.id,
                to,
                body,
            });
        }
    }

    /// Sends once every state change made so far is durable.
    pub(crate) fn send_after_persist(&mut self, to: NodeId, body: Body) {
        if self.pending.is_empty() && self.advanced >= self.persist_ready {
            self.send(to, body);
            return;
        }
        // An identical reply already waiting covers this one (its content
        // rests on the same durable facts): a peer repeating a request
        // during a slow write does not grow the queue.
        if self.held.iter().any(|(_, m)| m.to == to && m.body == body) {
            return;
        }
        let tag = if self.pending.is_empty() {
            self.persist_ready
        } else {
            self.next_ready
        };
        self.held.push((
            tag,
            Message {
                from: self.cfg.id,
                to,
                body,
            },
        ));
    }

    /// Sends to every member, this node included.
    pub(crate) fn broadcast(&mut self, body: &Body) {
        for m in self.cfg.members.clone() {
            self.send(m, body.clone());
        }
    }

    /// Sends to every member but this node.
    pub(crate) fn broadcast_peers(&mut self, body: &Body) {
        for m in self.cfg.members.clone() {
            if m != self.cfg.id {
                self.send(m, body.clone());
            }
        }
    }

    pub(crate) fn set_promised(&mut self, b: Ballot) {
        self.promised = b;
        self.pending.promised = Some(b);
    }

    pub(crate) fn set_commit(&mut self, c: Slot) {
        self.commit = c;
        self.pending.commit = Some(c);
    }

    pub(crate) fn write_entry(&mut self, e: LogEntry) {
        if self.log.get(&e.slot) != Some(&e) {
            self.pending.entries.insert(e.slot, e.clone());
            self.log.insert(e.slot, e);
        }
    }

    pub(crate) fn trim_log(&mut self, through: Slot) {
        self.log = self.log.split_off(&(through + 1));
        self.log_start = self.log_start.max(through + 1);
        self.pending.trim(through);
    }

    pub(crate) fn deliverable(&self) -> bool {
        self.applied < self.commit && self.log.contains_key(&(self.applied + 1))
    }

    pub(crate) fn snapshot_due(&self) -> Option<Slot> {
        if self.cfg.snapshot_interval == 0 {
            return None;
        }
        let base = self
            .snapshot
            .as_ref()
            .map_or(0, |s| s.slot)
            .max(self.snapshot_asked);
        (self.applied >= base.saturating_add(self.cfg.snapshot_interval)).then_some(self.applied)
    }

    pub(crate) fn drain_self(&mut self) {
        while let Some(body) = self.self_queue.pop_front() {
            self.handle(self.cfg.id, body);
        }
    }

    pub(crate) fn handle(&mut self, from: NodeId, body: Body) {
        match body {
            Body::Prepare { ballot, from_slot } => self.on_prepare(from, ballot, from_slot),
            Body::Promise {
                ballot,
                commit,
                entries,
            } => self.on_promise(from, ballot, commit, entries),
            Body::Accept {
                ballot,
                slot,
                command,
                commit,
            } => self.on_accept(from, ballot, slot, command, commit),
            Body::Accepted { ballot, slot } => self.on_accepted(from, ballot, slot),
            Body::Reject { ballot, promised } => self.on_reject(from, ballot, promised),
            Body::Commit { ballot, commit } => self.on_commit(from, ballot, commit),
            Body::Heartbeat {
                ballot,
                commit,
                lease_start,
            } => self.on_heartbeat(from, ballot, commit, lease_start),
            Body::HeartbeatAck {
                ballot,
                lease_start,
                lease_granted,
            } => self.on_heartbeat_ack(from, ballot, lease_start, lease_granted),
            Body::CatchupRequest { from_slot } => self.on_catchup_request(from, from_slot),
            Body::CatchupReply { commit, entries } => self.on_catchup_reply(from, commit, entries),
            Body::InstallSnapshot { snapshot } => self.on_install_snapshot(from, snapshot),
        }
        // A promise above our own ballot ends our campaign or leadership.
        if self.role_ballot().is_some_and(|b| b < self.promised) {
            self.step_down();
        }
    }

    pub(crate) fn on_tick(&mut self) {
        let now = self.now;
        match &self.role {
            Role::Follower => {
                if now >= self.election_deadline {
                    self.start_campaign();
                }
            }
            Role::Candidate(c) => {
                if now >= c.deadline {
                    self.start_campaign();
                } else if now >= c.resend_at {
                    self.resend_prepare();
                }
            }
            Role::Leader(l) => {
                if now >= l.heartbeat_at {
                    self.send_heartbeat();
                }
            }
        }
    }
}
