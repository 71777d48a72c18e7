//! The proposer: elections (phase 1 once per leadership, covering every
//! future slot), proposals (phase 2 per slot, a window of slots in
//! flight), retransmission and stepping down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::ballot::{Ballot, NodeId, SLOT_HORIZON, Slot};
use crate::message::{Body, Command, LogEntry};
use crate::node::{Candidate, InFlight, Leader, Node, Report, Role};

impl Node {
    /// Phase 1a for a fresh ballot above every ballot seen. The prepare
    /// (to peers and to our own acceptor) leaves only once our own promise
    /// of the ballot is durable, so a restarted node never reuses a ballot.
    pub(crate) fn start_campaign(&mut self) {
        let round = self.max_round_seen.max(self.promised.round) + 1;
        let ballot = Ballot::new(round, self.cfg.id);
        if !self.may_promise(ballot) {
            self.reset_election_timer();
            return;
        }
        if matches!(self.role, Role::Leader(_)) {
            self.step_down();
        }
        self.max_round_seen = round;
        self.set_promised(ballot);
        self.leader_hint = None;
        let from_slot = self.commit + 1;
        let jitter = self.jitter();
        self.role = Role::Candidate(Candidate {
            ballot,
            from_slot,
            promises: BTreeMap::new(),
            deadline: self
                .now
                .saturating_add(self.cfg.election_timeout)
                .saturating_add(jitter),
            resend_at: self.now.saturating_add(self.cfg.heartbeat_interval),
        });
        for m in self.cfg.members.clone() {
            self.send_after_persist(m, Body::Prepare { ballot, from_slot });
        }
    }

    /// Resends the prepare to members that have not promised yet.
    pub(crate) fn resend_prepare(&mut self) {
        let now = self.now;
        let hb = self.cfg.heartbeat_interval;
        let Role::Candidate(c) = &mut self.role else {
            return;
        };
        c.resend_at = now.saturating_add(hb);
        let (ballot, from_slot) = (c.ballot, c.from_slot);
        let missing: Vec<NodeId> = self
            .cfg
            .members
            .iter()
            .copied()
            .filter(|m| !c.promises.contains_key(m))
            .collect();
        for m in missing {
            self.send_after_persist(m, Body::Prepare { ballot, from_slot });
        }
    }

    /// Phase 1b received.
    pub(crate) fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        commit: Slot,
        entries: Vec<LogEntry>,
    ) {
        let Role::Candidate(c) = &mut self.role else {
            return;
        };
        if c.ballot != ballot {
            return;
        }
        // Chosen entries the promise reports teach us the chosen prefix.
        self.learn_chosen(from, commit, &entries);
        if let Role::Candidate(c) = &mut self.role {
            c.promises.insert(from, Report { commit, entries });
        }
        self.try_finish_phase1();
    }

    /// Becomes leader once a quorum promised and this node knows every
    /// slot any of them knows to be chosen (catch-up first otherwise: a
    /// promiser may have trimmed chosen entries it can no longer report).
    pub(crate) fn try_finish_phase1(&mut self) {
        let Role::Candidate(c) = &self.role else {
            return;
        };
        if c.promises.len() < self.cfg.quorum() {
            return;
        }
        if let Some((&p, _)) = c.promises.iter().find(|(_, r)| r.commit > self.commit) {
            self.request_catchup(p);
            return;
        }
        // For every slot above the commit index: the value accepted in the
        // highest ballot among the reports, or a no-op.
        let mut best: BTreeMap<Slot, (Ballot, &Command)> = BTreeMap::new();
        let horizon = self.commit.saturating_add(SLOT_HORIZON);
        for r in c.promises.values() {
            for e in r
                .entries
                .iter()
                .filter(|e| e.slot > self.commit && e.slot <= horizon)
            {
                match best.get(&e.slot) {
                    Some((b, _)) if *b >= e.ballot => {}
                    _ => {
                        best.insert(e.slot, (e.ballot, &e.command));
                    }
                }
            }
        }
        let max_slot = best
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.commit);
        let in_flight: BTreeMap<Slot, InFlight> = (self.commit + 1..=max_slot)
            .map(|s| {
                let command = best.get(&s).map_or(Command::Noop, |(_, c)| (*c).clone());
                (
                    s,
                    InFlight {
                        command,
                        accepted: BTreeSet::new(),
                    },
                )
            })
            .collect();
        let ballot = c.ballot;
        let last_ack = c.promises.keys().map(|&p| (p, self.now)).collect();
        let commit = self.commit;
        let accepts: Vec<Body> = in_flight
            .iter()
            .map(|(&slot, f)| Body::Accept {
                ballot,
                slot,
                command: f.command.clone(),
                commit,
            })
            .collect();
        self.role = Role::Leader(Leader {
            ballot,
            next_slot: max_slot + 1,
            in_flight,
            queue: VecDeque::new(),
            read_barrier: max_slot,
            heartbeat_at: self.now,
            lease_until: None,
            lease_rounds: BTreeMap::new(),
            last_ack,
        });
        self.leader_hint = Some(self.cfg.id);
        for a in &accepts {
            self.broadcast(a);
        }
    }

    /// Assigns slots to queued values while the window allows.
    pub(crate) fn drive_proposals(&mut self) {
        let window = self.cfg.window;
        let commit = self.commit;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let mut accepts = Vec::new();
        while l.in_flight.len() < window {
            let Some(v) = l.queue.pop_front() else {
                break;
            };
            let slot = l.next_slot;
            l.next_slot += 1;
            let command = Command::Value(v);
            accepts.push(Body::Accept {
                ballot: l.ballot,
                slot,
                command: command.clone(),
                commit,
            });
            l.in_flight.insert(
                slot,
                InFlight {
                    command,
                    accepted: BTreeSet::new(),
                },
            );
        }
        for a in &accepts {
            self.broadcast(a);
        }
    }

    /// Phase 2b received.
    pub(crate) fn on_accepted(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        let now = self.now;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.ballot != ballot {
            return;
        }
        if from != self.cfg.id {
            l.last_ack.insert(from, now);
        }
        if let Some(f) = l.in_flight.get_mut(&slot) {
            f.accepted.insert(from);
        }
        self.advance_leader_commit();
    }

    /// Moves the commit index over every slot a quorum accepted.
    fn advance_leader_commit(&mut self) {
        let quorum = self.cfg.quorum();
        let before = self.commit;
        loop {
            let s = self.commit + 1;
            let Role::Leader(l) = &mut self.role else {
                return;
            };
            let chosen = l
                .in_flight
                .get(&s)
                .is_some_and(|f| f.accepted.len() >= quorum);
            if !chosen {
                break;
            }
            let ballot = l.ballot;
            let Some(f) = l.in_flight.remove(&s) else {
                break;
            };
            // Our own acceptor may not have accepted yet; recording the
            // chosen value is a legal vote (we promised `ballot`).
            self.write_entry(LogEntry {
                slot: s,
                ballot,
                command: f.command,
            });
            self.set_commit(s);
        }
        if self.commit > before {
            if self.cfg.eager_commit {
                if let Some(ballot) = self.role_ballot() {
                    let commit = self.commit;
                    self.broadcast_peers(&Body::Commit { ballot, commit });
                }
            }
            self.drive_proposals();
        }
    }

    /// A refusal: a higher promise deposes us.
    pub(crate) fn on_reject(&mut self, _from: NodeId, ballot: Ballot, promised: Ballot) {
        self.note_ballot(promised);
        if self.role_ballot() == Some(ballot) && promised > ballot {
            self.leader_hint = (promised.node != self.cfg.id).then_some(promised.node);
            self.step_down();
        }
    }

    /// Leader's periodic duty: heartbeat with lease request, retransmit
    /// unacknowledged accepts, step down without a quorum of live peers.
    pub(crate) fn send_heartbeat(&mut self) {
        let now = self.now;
        let hb = self.cfg.heartbeat_interval;
        let timeout = self.cfg.election_timeout;
        let quorum = self.cfg.quorum();
        let id = self.cfg.id;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        l.heartbeat_at = now.saturating_add(hb);
        let live = 1 + l
            .last_ack
            .iter()
            .filter(|(p, t)| **p != id && now.saturating_sub(**t) < timeout)
            .count();
        if live < quorum {
            self.step_down();
            return;
        }
        let ballot = l.ballot;
        let mut resend: Vec<(NodeId, Body)> = Vec::new();
        for (&slot, f) in &l.in_flight {
            for &m in &self.cfg.members {
                if !f.accepted.contains(&m) {
                    resend.push((
                        m,
                        Body::Accept {
                            ballot,
                            slot,
                            command: f.command.clone(),
                            commit: self.commit,
                        },
                    ));
                }
            }
        }
        self.start_lease_round();
        let commit = self.commit;
        self.broadcast_peers(&Body::Heartbeat {
            ballot,
            commit,
            lease_start: now,
        });
        for (m, b) in resend {
            self.send(m, b);
        }
    }

    /// Back to follower; queued values are handed back to the shell.
    pub(crate) fn step_down(&mut self) {
        if let Role::Leader(l) = std::mem::replace(&mut self.role, Role::Follower) {
            self.dropped.extend(l.queue);
        }
        self.reset_election_timer();
    }
}
