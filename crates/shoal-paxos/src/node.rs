//! The node: state, the public raft-rs-like API, and the plumbing shared by
//! the acceptor, proposer and learner roles (which live in their own
//! modules as further `impl Node` blocks).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{Hash, Hasher};

use crate::ballot::{Ballot, MAX_ROUND, MAX_SLOT, NodeId, Slot, Time};
use crate::config::Config;
use crate::error::{PaxosError, ProposeError, StepError};
use crate::message::{Body, Command, LogEntry, Message, Snapshot};
use crate::ready::{Committed, Ready};
use crate::storage::{PendingPersist, PersistentState};

/// What a node currently is, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoleKind {
    /// Follows whoever holds the highest ballot.
    Follower,
    /// Running phase 1 for its own ballot.
    Candidate,
    /// Phase 1 done: proposes values (phase 2 only).
    Leader,
}

/// An acceptor's lease grant: it will not promise any ballot other than
/// `ballot` until its clock reads `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Grant {
    pub(crate) ballot: Ballot,
    pub(crate) until: Time,
}

/// One promise a candidate collected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Report {
    pub(crate) commit: Slot,
    pub(crate) entries: Vec<LogEntry>,
}

/// Phase 1 in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) ballot: Ballot,
    pub(crate) from_slot: Slot,
    pub(crate) promises: BTreeMap<NodeId, Report>,
    pub(crate) deadline: Time,
    pub(crate) resend_at: Time,
}

/// A slot proposed by the leader and not yet chosen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct InFlight {
    pub(crate) command: Command,
    pub(crate) accepted: BTreeSet<NodeId>,
}

/// An active leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leader {
    pub(crate) ballot: Ballot,
    pub(crate) next_slot: Slot,
    pub(crate) in_flight: BTreeMap<Slot, InFlight>,
    pub(crate) queue: VecDeque<Vec<u8>>,
    /// Lease reads wait until the commit index reaches this slot (every
    /// slot recovered in phase 1 is then chosen).
    pub(crate) read_barrier: Slot,
    pub(crate) heartbeat_at: Time,
    pub(crate) lease_until: Option<Time>,
    /// Lease requests in progress: leader clock at sending -> granters.
    pub(crate) lease_rounds: BTreeMap<Time, BTreeSet<NodeId>>,
    /// Last time each peer answered this ballot.
    pub(crate) last_ack: BTreeMap<NodeId, Time>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Follower,
    Candidate(Candidate),
    Leader(Leader),
}

/// One Multi-Paxos member: acceptor, proposer and learner in one pure state
/// machine. Drive it with [`Node::tick`], [`Node::step`] and
/// [`Node::propose`]; collect work with [`Node::ready`]; confirm with
/// [`Node::advance`]. See the crate documentation for the protocol.
///
/// `Hash` covers the protocol state only (promise, log, commit, role and
/// its votes, pending output), not clock readings, timer deadlines, the
/// jitter generator or ready counters, so a model checker merges states
/// that differ only in those (equal nodes still hash equally).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub(crate) cfg: Config,
    // Acceptor and log, durable.
    pub(crate) promised: Ballot,
    pub(crate) log: BTreeMap<Slot, LogEntry>,
    pub(crate) log_start: Slot,
    pub(crate) commit: Slot,
    pub(crate) snapshot: Option<Snapshot>,
    // Acceptor, volatile.
    pub(crate) grant: Option<Grant>,
    // Learner, volatile.
    pub(crate) applied: Slot,
    pub(crate) pending_install: Option<Snapshot>,
    pub(crate) snapshot_asked: Slot,
    pub(crate) catchup: Option<(NodeId, Time)>,
    // Proposer.
    pub(crate) role: Role,
    pub(crate) leader_hint: Option<NodeId>,
    pub(crate) max_round_seen: u64,
    // Time.
    pub(crate) now: Time,
    pub(crate) clock_started: bool,
    pub(crate) election_deadline: Time,
    pub(crate) rng: u64,
    // Output plumbing.
    pub(crate) pending: PendingPersist,
    pub(crate) outbox: Vec<Message>,
    pub(crate) held: Vec<(u64, Message)>,
    pub(crate) self_queue: VecDeque<Body>,
    pub(crate) dropped: Vec<Vec<u8>>,
    pub(crate) next_ready: u64,
    pub(crate) persist_ready: u64,
    pub(crate) advanced: u64,
}

impl Hash for Candidate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ballot.hash(state);
        self.from_slot.hash(state);
        self.promises.hash(state);
    }
}

impl Hash for Leader {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ballot.hash(state);
        self.next_slot.hash(state);
        self.in_flight.hash(state);
        self.queue.hash(state);
        self.read_barrier.hash(state);
        self.lease_until.is_some().hash(state);
    }
}

impl Hash for Node {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cfg.id.hash(state);
        self.promised.hash(state);
        self.log.hash(state);
        self.log_start.hash(state);
        self.commit.hash(state);
        self.snapshot.hash(state);
        self.grant.map(|g| g.ballot).hash(state);
        self.applied.hash(state);
        self.pending_install.hash(state);
        self.snapshot_asked.hash(state);
        self.catchup.map(|(p, _)| p).hash(state);
        self.role.hash(state);
        self.max_round_seen.hash(state);
        self.pending.hash(state);
        self.outbox.hash(state);
        for (_, m) in &self.held {
            m.hash(state);
        }
        self.self_queue.hash(state);
        self.dropped.hash(state);
    }
}

impl Node {
    /// A node restarted from `state` (use `PersistentState::default()` for
    /// a new member). Validates the configuration and the state.
    pub fn new(config: Config, state: PersistentState) -> Result<Node, PaxosError> {
        config.validate()?;
        let snap_slot = state.snapshot.as_ref().map_or(0, |s| s.slot);
        let highest_slot = state
            .entries
            .iter()
            .map(|e| e.slot)
            .chain([state.commit, snap_slot]);
        let highest_round = state.entries.iter().map(|e| e.ballot.round);
        if let Some(v) = highest_slot
            .filter(|&s| s > MAX_SLOT)
            .chain(
                highest_round
                    .chain([state.promised.round])
                    .filter(|&r| r > MAX_ROUND),
            )
            .next()
        {
            return Err(PaxosError::OutOfRange(v));
        }
        let commit = state.commit.max(snap_slot);
        let mut log: BTreeMap<Slot, LogEntry> = state
            .entries
            .into_iter()
            .filter(|e| e.slot > 0)
            .map(|e| (e.slot, e))
            .collect();
        let mut log_start = snap_slot + 1;
        while log_start > 1 && log.contains_key(&(log_start - 1)) {
            log_start -= 1;
        }
        log = log.split_off(&log_start);
        if let Some(slot) = (snap_slot + 1..=commit).find(|s| !log.contains_key(s)) {
            return Err(PaxosError::MissingCommitted { slot, commit });
        }
        let applied = config.applied.max(snap_slot);
        if applied > commit {
            return Err(PaxosError::AppliedBeyondCommit { applied, commit });
        }
        let max_round_seen = log
            .values()
            .map(|e| e.ballot.round)
            .fold(state.promised.round, u64::max);
        let rng = config.seed ^ config.id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Ok(Node {
            cfg: config,
            promised: state.promised,
            log,
            log_start,
            commit,
            snapshot: state.snapshot,
            grant: None,
            applied,
            pending_install: None,
            snapshot_asked: 0,
            catchup: None,
            role: Role::Follower,
            leader_hint: None,
            max_round_seen,
            now: 0,
            clock_started: false,
            election_deadline: 0,
            rng,
            pending: PendingPersist::default(),
            outbox: Vec::new(),
            held: Vec::new(),
            self_queue: VecDeque::new(),
            dropped: Vec::new(),
            next_ready: 1,
            persist_ready: 0,
            advanced: 0,
        })
    }

    /// Lets time pass: `now` is the caller's monotonic clock (a reading
    /// older than one already seen is treated as the newest one). Drives
    /// election timeouts, heartbeats, lease renewal and retransmissions.
    pub fn tick(&mut self, now: Time) {
        self.observe_time(now);
        self.on_tick();
        self.drain_self();
    }

    /// Handles a message from a peer received at `now`. A stale, duplicate
    /// or refused message is ignored or answered and gives `Ok`; only a
    /// message that is not for this node, from or about a non-member, or
    /// naming a slot above [`MAX_SLOT`], is dropped with an error (for the
    /// shell's logs).
    pub fn step(&mut self, msg: Message, now: Time) -> Result<(), StepError> {
        if msg.to != self.cfg.id {
            return Err(StepError::NotForMe(msg.to));
        }
        if msg.from == self.cfg.id || !self.cfg.is_member(msg.from) {
            return Err(StepError::UnknownSender(msg.from));
        }
        for b in msg.body.ballots() {
            // `Ballot::ZERO` stands for "none" (e.g. nothing promised yet).
            if b != Ballot::ZERO && !self.cfg.is_member(b.node) {
                return Err(StepError::ForeignBallot(b.node));
            }
            if b.round > MAX_ROUND {
                return Err(StepError::RoundOutOfRange(b.round));
            }
        }
        let slot = msg.body.max_slot();
        if slot > MAX_SLOT {
            return Err(StepError::SlotOutOfRange(slot));
        }
        self.observe_time(now);
        self.handle(msg.from, msg.body);
        self.drain_self();
        Ok(())
    }

    /// Queues `value` for a slot. Only the active leader takes values; the
    /// error names the presumed leader so the caller can forward.
    pub fn propose(&mut self, value: Vec<u8>) -> Result<(), ProposeError> {
        let limit = self.cfg.max_pending;
        match &mut self.role {
            Role::Leader(l) => {
                if l.queue.len() >= limit {
                    return Err(ProposeError::QueueFull(limit));
                }
                l.queue.push_back(value);
            }
            _ => {
                return Err(ProposeError::NotLeader {
                    leader: self.leader_hint,
                });
            }
        }
        self.drive_proposals();
        self.drain_self();
        Ok(())
    }

    /// Starts an election now (phase 1 with a ballot above every ballot
    /// seen), as an election timeout would. Does nothing while this node's
    /// acceptor holds a lease granted to another leader.
    pub fn campaign(&mut self, now: Time) {
        self.observe_time(now);
        self.start_campaign();
        self.drain_self();
    }

    /// Whether [`Node::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        !self.outbox.is_empty()
            || !self.pending.is_empty()
            || self.pending_install.is_some()
            || !self.dropped.is_empty()
            || self.deliverable()
            || self.snapshot_due().is_some()
    }

    /// Collects the work for the shell (see [`Ready`] for what to do with
    /// it). Committed values are handed out once.
    pub fn ready(&mut self) -> Ready {
        let number = self.next_ready;
        self.next_ready += 1;
        let persist = self.pending.take();
        if !persist.is_empty() {
            self.persist_ready = number;
        }
        let mut committed = Vec::new();
        while self.applied < self.commit {
            let Some(e) = self.log.get(&(self.applied + 1)) else {
                break;
            };
            committed.push(Committed {
                slot: e.slot,
                command: e.command.clone(),
            });
            self.applied += 1;
        }
        let snapshot_wanted = self.snapshot_due();
        if let Some(s) = snapshot_wanted {
            self.snapshot_asked = s;
        }
        Ready {
            number,
            messages: std::mem::take(&mut self.outbox),
            persist,
            install_snapshot: self.pending_install.take(),
            committed,
            snapshot_wanted,
            dropped_proposals: std::mem::take(&mut self.dropped),
        }
    }

    /// Confirms that `ready.persist` (and that of every earlier ready) is
    /// durable: releases the replies that waited for it (promises,
    /// accepts, lease grants). Readies must be advanced in order; advancing
    /// one twice is harmless.
    pub fn advance(&mut self, ready: &Ready) -> Result<(), PaxosError> {
        if ready.number >= self.next_ready {
            return Err(PaxosError::UnknownReady(ready.number));
        }
        if ready.number <= self.advanced {
            return Ok(());
        }
        self.advanced = ready.number;
        let held = std::mem::take(&mut self.held);
        for (tag, msg) in held {
            if tag <= self.advanced {
                self.send(msg.to, msg.body);
            } else {
                self.held.push((tag, msg));
            }
        }
        self.drain_self();
        Ok(())
    }

    /// Hands the core a snapshot of the state machine taken at
    /// `snapshot.slot` (at most the applied index): the log is trimmed
    /// behind it (keeping [`Config::retain_entries`] entries) and the
    /// snapshot is what lagging peers will receive.
    pub fn compact(&mut self, snapshot: Snapshot) -> Result<(), PaxosError> {
        if snapshot.slot > self.applied {
            return Err(PaxosError::SnapshotAhead {
                slot: snapshot.slot,
                applied: self.applied,
            });
        }
        let current = self.snapshot.as_ref().map_or(0, |s| s.slot);
        if snapshot.slot <= current {
            return Err(PaxosError::StaleSnapshot {
                slot: snapshot.slot,
                current,
            });
        }
        let trim = snapshot.slot.saturating_sub(self.cfg.retain_entries);
        self.pending.snapshot = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
        if trim >= self.log_start {
            self.trim_log(trim);
        }
        Ok(())
    }

    /// Whether this node may answer a read from its own state right now,
    /// without a round of messages: it is the leader, holds a lease granted
    /// by a quorum that has not run out (after the drift allowance), and
    /// has committed every slot recovered from earlier leaders. The shell
    /// answers from its state machine once it has applied
    /// [`Node::commit_index`]. See the crate documentation for why no
    /// two nodes can both see `true` at the same moment.
    pub fn can_serve_lease_read(&self, now: Time) -> bool {
        self.lease_read_index(now).is_some()
    }

    /// Like [`Node::can_serve_lease_read`], giving the slot the state
    /// machine must have applied before answering.
    pub fn lease_read_index(&self, now: Time) -> Option<Slot> {
        let Role::Leader(l) = &self.role else {
            return None;
        };
        if !self.cfg.leases_enabled() || self.commit < l.read_barrier {
            return None;
        }
        match l.lease_until {
            Some(until) if now < until => Some(self.commit),
            _ => None,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The current role.
    pub fn role(&self) -> RoleKind {
        match self.role {
            Role::Follower => RoleKind::Follower,
            Role::Candidate(_) => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
        }
    }

    /// Whether this node is the active leader (it takes proposals).
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// The leader this node last heard from (itself when leading).
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader_hint
    }

    /// The ballot this node campaigns or leads with, if any.
    pub fn ballot(&self) -> Option<Ballot> {
        self.role_ballot()
    }

    /// The acceptor's promise.
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// Every slot up to here is chosen and known to this node.
    pub fn commit_index(&self) -> Slot {
        self.commit
    }

    /// The last slot handed to the shell (in a ready, or by a snapshot).
    pub fn applied_index(&self) -> Slot {
        self.applied
    }

    /// The first slot still in the log (earlier ones are only in the
    /// snapshot).
    pub fn log_start(&self) -> Slot {
        self.log_start
    }

    /// The log entry of `slot`, if the log holds one (chosen if `slot` is
    /// at most [`Node::commit_index`]).
    pub fn entry(&self, slot: Slot) -> Option<&LogEntry> {
        self.log.get(&slot)
    }

    /// Every entry in the log, in slot order.
    pub fn entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.log.values()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Values queued at this leader, waiting for a slot.
    pub fn queued_proposals(&self) -> usize {
        match &self.role {
            Role::Leader(l) => l.queue.len(),
            _ => 0,
        }
    }

    /// Slots proposed by this leader and not yet chosen.
    pub fn in_flight(&self) -> usize {
        match &self.role {
            Role::Leader(l) => l.in_flight.len(),
            _ => 0,
        }
    }
}
