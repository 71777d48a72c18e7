//! The Paxos shell: one task owns the Paxos node and the state machine. It
//! feeds the node messages, ticks and proposals, sends what the node wants
//! sent, hands persist batches to the writer thread, applies committed
//! batches, answers waiting clients, and runs the leader's failure
//! detection.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shoal_net::{ClusterCa, Endpoint, FaultInjector, Frame, PeerAddr};
use shoal_paxos::{Command, Message, Node, Ready, Snapshot};
use shoal_proto::mon::{
    CommandError, CommandOutput, ErrorCode, Keyring, MonCommand, MonReply, MonRequest, MonResult,
};
use shoal_proto::peer::{FaultCommand, Forward, PaxosEnvelope};
use shoal_proto::{msg, report};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{Batch, Txn};
use crate::commands;
use crate::error::MonError;
use crate::failure::{FailureDetector, FailurePolicy};
use crate::state::MonState;
use crate::view::MapView;
use crate::writer::{WriteDone, WriteJob};

/// Topic of the monitors' Paxos streams.
pub const PAXOS_TOPIC: &str = "paxos";

/// Timing and limits of a monitor.
#[derive(Clone, Debug)]
pub struct MonSettings {
    /// Paxos election timeout.
    pub election_timeout_ms: u64,
    /// Most transactions per Paxos value.
    pub max_batch: usize,
    /// Paxos slots in flight.
    pub window: usize,
    /// Failure detection.
    pub failure: FailurePolicy,
    /// How long a forwarded command may take at the leader.
    pub forward_timeout: Duration,
    /// Where health calls an OSD's store nearfull and full.
    pub full_ratios: crate::pgstats::FullRatios,
    /// Most PGs (fraction of all) misplaced at once by `pgp_num` steps.
    pub max_misplaced_ratio: f64,
}

/// Work for the driver.
pub enum Event {
    /// A Paxos message from a peer (already authenticated and checked).
    Paxos(Message),
    /// A command from an authenticated identity.
    Command {
        /// The caller's identity.
        origin: String,
        /// The request.
        request: MonRequest,
        /// Whether a peon forwarded it (never forwarded again).
        forwarded: bool,
        /// Where the answer goes.
        reply: oneshot::Sender<MonReply>,
    },
    /// A fault-injection command (test clusters only).
    Fault {
        /// What to do.
        command: FaultCommand,
        /// Where the answer goes.
        reply: oneshot::Sender<MonReply>,
    },
}

/// A client waiting for its transaction to commit.
struct Waiter {
    reply: oneshot::Sender<MonReply>,
    /// For `auth add`: the issued identity, returned only on success.
    keyring: Option<Keyring>,
}

/// The driver's state.
pub struct Driver {
    name: String,
    rank: usize,
    node: Node,
    state: MonState,
    view: MapView,
    endpoint: Endpoint,
    peers: Vec<Option<mpsc::Sender<Frame>>>,
    peer_addrs: Vec<PeerAddr>,
    ca: Option<ClusterCa>,
    fault: Option<FaultInjector>,
    writer: std::sync::mpsc::Sender<WriteJob>,
    outstanding: VecDeque<Ready>,
    pending: Vec<Txn>,
    waiters: HashMap<(u64, u64), Vec<Waiter>>,
    failures: FailureDetector,
    pgstats: crate::pgstats::PgStats,
    last_heard: Vec<u64>,
    was_leader: bool,
    last_housekeeping: u64,
    /// The last `pgp_num` step proposed: the map epoch it makes (or a
    /// later one) and when (leader clock); the next waits for its reports.
    placement_step: Option<(u32, u64)>,
    start: Instant,
    settings: MonSettings,
}

/// How long the leader waits for a `pgp_num` step's map and reports
/// before it looks again.
pub const STEP_PATIENCE_MS: u64 = 30_000;

/// Paxos node id of the monitor at `rank`.
pub fn node_id(rank: usize) -> u64 {
    rank as u64 + 1
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn err_reply(
    code: ErrorCode,
    message: impl Into<String>,
    epoch: u32,
    leader: Option<String>,
) -> MonReply {
    MonReply {
        result: MonResult::Err(CommandError::new(code, message)),
        osdmap_epoch: epoch,
        leader,
    }
}

/// What the driver needs to start.
pub struct DriverParts {
    /// This monitor's name.
    pub name: String,
    /// The Paxos node (restarted from disk).
    pub node: Node,
    /// The state machine at `node`'s applied slot.
    pub state: MonState,
    /// The shared subscription view.
    pub view: MapView,
    /// The network endpoint.
    pub endpoint: Endpoint,
    /// The cluster CA, if this monitor holds its key (to issue identities).
    pub ca: Option<ClusterCa>,
    /// Fault injector (test clusters).
    pub fault: Option<FaultInjector>,
    /// The writer's job queue.
    pub writer: std::sync::mpsc::Sender<WriteJob>,
    /// Settings.
    pub settings: MonSettings,
}

impl Driver {
    /// Builds the driver and starts one sender task per peer monitor.
    pub fn new(parts: DriverParts) -> Result<Driver, MonError> {
        let monmap = parts.state.monmap.clone();
        let rank = monmap
            .rank(&parts.name)
            .ok_or_else(|| MonError::Config(format!("mon.{} is not in the MonMap", parts.name)))?;
        let peer_addrs: Vec<PeerAddr> = monmap
            .mons
            .iter()
            .map(|m| PeerAddr::named(format!("mon.{}", m.name), m.addr))
            .collect();
        let mut peers = Vec::new();
        for (r, peer) in peer_addrs.iter().enumerate() {
            if r == rank {
                peers.push(None);
                continue;
            }
            let (tx, mut rx) = mpsc::channel::<Frame>(8192);
            let endpoint = parts.endpoint.clone();
            let peer = peer.clone();
            let timeout = Duration::from_millis(parts.settings.election_timeout_ms.max(200));
            tokio::spawn(async move {
                while let Some(frame) = rx.recv().await {
                    if let Err(e) = endpoint
                        .send_oneway(&peer, PAXOS_TOPIC, &frame, timeout)
                        .await
                    {
                        tracing::debug!(peer = %peer, error = %e, "paxos send failed");
                    }
                }
            });
            peers.push(Some(tx));
        }
        Ok(Driver {
            name: parts.name,
            rank,
            last_heard: vec![0; monmap.mons.len()],
            node: parts.node,
            state: parts.state,
            view: parts.view,
            endpoint: parts.endpoint,
            peers,
            peer_addrs,
            ca: parts.ca,
            fault: parts.fault,
            writer: parts.writer,
            outstanding: VecDeque::new(),
            pending: Vec::new(),
            waiters: HashMap::new(),
            failures: FailureDetector::default(),
            pgstats: crate::pgstats::PgStats::with_ratios(parts.settings.full_ratios),
            was_leader: false,
            last_housekeeping: 0,
            placement_step: None,
            start: Instant::now(),
            settings: parts.settings,
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Runs until `shutdown` resolves or the disk fails.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut done: mpsc::UnboundedReceiver<WriteDone>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), MonError> {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(shutdown);
        self.pump()?;
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { return Ok(()) };
                    self.on_event(ev);
                    for _ in 0..4096 {
                        match events.try_recv() {
                            Ok(ev) => self.on_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                d = done.recv() => match d {
                    Some(WriteDone::Durable(n)) => self.on_durable(n)?,
                    Some(WriteDone::Failed(e)) => return Err(e),
                    None => return Err(MonError::Store("the writer thread stopped".into())),
                },
                _ = tick.tick() => {
                    let now = self.now();
                    self.node.tick(now);
                    if now >= self.last_housekeeping + 100 {
                        self.last_housekeeping = now;
                        self.housekeeping();
                    }
                }
                () = &mut shutdown => return Ok(()),
            }
            self.pump()?;
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Paxos(m) => {
                let from = m.from;
                if let Some(slot) = (from as usize)
                    .checked_sub(1)
                    .and_then(|r| self.last_heard.get_mut(r))
                {
                    *slot = self.start.elapsed().as_millis() as u64;
                }
                if let shoal_paxos::Body::InstallSnapshot { snapshot } = &m.body
                    && let Err(why) = self.check_snapshot(snapshot)
                {
                    tracing::warn!(from, %why, "snapshot from a peer refused");
                    return;
                }
                if let Err(e) = self.node.step(m, self.now()) {
                    tracing::debug!(from, error = %e, "paxos message refused");
                }
            }
            Event::Command {
                origin,
                request,
                forwarded,
                reply,
            } => self.on_command(origin, request, forwarded, reply),
            Event::Fault { command, reply } => {
                let r = self.on_fault(command);
                let _ = reply.send(r);
            }
        }
    }

    fn on_durable(&mut self, n: u64) -> Result<(), MonError> {
        let mut last = None;
        while self.outstanding.front().is_some_and(|r| r.number <= n) {
            last = self.outstanding.pop_front();
        }
        if let Some(rd) = last {
            self.node.advance(&rd)?;
        }
        Ok(())
    }

    fn leader_name(&self) -> Option<String> {
        let id = self.node.leader_hint()?;
        let rank = (id as usize).checked_sub(1)?;
        self.state
            .monmap
            .get(rank)
            .map(|m| format!("mon.{}", m.name))
    }

    fn leader_peer(&self) -> Option<PeerAddr> {
        let id = self.node.leader_hint()?;
        let rank = (id as usize).checked_sub(1)?;
        (rank != self.rank)
            .then(|| self.peer_addrs.get(rank).cloned())
            .flatten()
    }

    /// Whether this monitor is part of a working quorum right now.
    fn in_quorum(&self) -> bool {
        if self.node.is_leader() {
            return true;
        }
        let Some(id) = self.node.leader_hint() else {
            return false;
        };
        let Some(rank) = (id as usize).checked_sub(1) else {
            return false;
        };
        let heard = self.last_heard.get(rank).copied().unwrap_or(0);
        heard > 0 && self.now().saturating_sub(heard) <= self.settings.election_timeout_ms
    }

    fn reply_to(&self, result: MonResult) -> MonReply {
        MonReply {
            result,
            osdmap_epoch: self.state.osdmap.epoch(),
            leader: self.leader_name(),
        }
    }

    fn on_command(
        &mut self,
        origin: String,
        request: MonRequest,
        forwarded: bool,
        reply: oneshot::Sender<MonReply>,
    ) {
        let caps = self.state.caps_of(&origin);
        if let Err(e) = commands::authorize(&caps, &origin, &request.command) {
            let _ = reply.send(self.reply_to(MonResult::Err(e)));
            return;
        }
        let cmd = &request.command;
        if request.client_id == 0 && cmd.is_write() {
            let _ = reply.send(self.reply_to(MonResult::Err(CommandError::new(
                ErrorCode::Invalid,
                "client id 0 is reserved for the monitors",
            ))));
            return;
        }
        if !cmd.is_write() {
            let quorum_report = matches!(
                cmd,
                MonCommand::Status
                    | MonCommand::PgLs
                    | MonCommand::OsdDf
                    | MonCommand::MonStat
                    | MonCommand::Health
            );
            if quorum_report && !self.node.is_leader() && !forwarded && self.in_quorum() {
                self.forward(origin, request, reply);
                return;
            }
            let result = if quorum_report {
                Ok(self.quorum_report(cmd))
            } else if self.in_quorum() {
                commands::read(&self.state, cmd)
            } else {
                Err(CommandError::new(
                    ErrorCode::NoQuorum,
                    format!("mon.{} is not in quorum", self.name),
                ))
            };
            let _ = reply.send(self.reply_to(MonResult::from(result)));
            return;
        }
        if !self.node.is_leader() {
            if forwarded {
                let _ = reply.send(self.reply_to(MonResult::Err(CommandError::new(
                    ErrorCode::TryAgain,
                    format!("mon.{} is no longer the leader", self.name),
                ))));
            } else if self.in_quorum() && self.leader_peer().is_some() {
                self.forward(origin, request, reply);
            } else {
                let _ = reply.send(self.reply_to(MonResult::Err(CommandError::new(
                    ErrorCode::NoQuorum,
                    format!("mon.{} knows no leader", self.name),
                ))));
            }
            return;
        }
        let now = self.now();
        match cmd {
            MonCommand::OsdBeacon { id, epoch, stats } => {
                let result = if self.state.osdmap.exists(*id) {
                    self.failures.beacon(*id, now);
                    self.pgstats.record(*id, *epoch, stats.clone(), now);
                    Ok(CommandOutput::Done {
                        epoch: self.state.osdmap.epoch(),
                    })
                } else {
                    Err(CommandError::new(
                        ErrorCode::NotFound,
                        format!("osd.{id} does not exist"),
                    ))
                };
                let _ = reply.send(self.reply_to(MonResult::from(result)));
                return;
            }
            MonCommand::OsdFailure {
                target,
                epoch,
                alive,
            } => {
                let result = if let Some(info) = self.state.osdmap.osd(*target) {
                    if *alive {
                        self.failures.cancel(*target, &origin);
                    } else if *epoch >= info.up_from {
                        // A report made before the target's latest boot
                        // was seen is about its previous life: not counted.
                        self.failures.report(*target, &origin, now);
                    }
                    Ok(CommandOutput::Done {
                        epoch: self.state.osdmap.epoch(),
                    })
                } else {
                    Err(CommandError::new(
                        ErrorCode::NotFound,
                        format!("osd.{target} does not exist"),
                    ))
                };
                let _ = reply.send(self.reply_to(MonResult::from(result)));
                return;
            }
            _ => {}
        }
        if let Some(prev) = self.state.dedup_result(request.client_id, request.tid) {
            let _ = reply.send(self.reply_to(prev.clone()));
            return;
        }
        let key = (request.client_id, request.tid);
        let mut keyring = None;
        if let MonCommand::AuthAdd { name, caps } = cmd {
            match commands::issue_identity(&self.state, self.ca.as_ref(), name, caps) {
                Ok(k) => keyring = Some(k),
                Err(e) => {
                    let _ = reply.send(self.reply_to(MonResult::Err(e)));
                    return;
                }
            }
        }
        let already_pending = self.waiters.contains_key(&key);
        self.waiters
            .entry(key)
            .or_default()
            .push(Waiter { reply, keyring });
        if !already_pending {
            self.pending.push(Txn {
                client_id: request.client_id,
                tid: request.tid,
                origin,
                stamp_ms: 0,
                command: request.command,
            });
        }
    }

    fn forward(&self, origin: String, request: MonRequest, reply: oneshot::Sender<MonReply>) {
        let Some(peer) = self.leader_peer() else {
            let _ = reply.send(self.reply_to(MonResult::Err(CommandError::new(
                ErrorCode::NoQuorum,
                "no leader to forward to",
            ))));
            return;
        };
        let endpoint = self.endpoint.clone();
        let timeout = self.settings.forward_timeout;
        let epoch = self.state.osdmap.epoch();
        let leader = self.leader_name();
        tokio::spawn(async move {
            let fwd = Forward { origin, request };
            let result = async {
                let frame = Frame::encode(msg::FORWARD, &fwd)?;
                let resp = endpoint.request(&peer, &frame, timeout).await?;
                resp.decode_body::<MonReply>()
            }
            .await;
            let answer = match result {
                Ok(r) => r,
                Err(e) => err_reply(
                    ErrorCode::TryAgain,
                    format!("forwarding to the leader {peer} failed: {e}"),
                    epoch,
                    leader,
                ),
            };
            let _ = reply.send(answer);
        });
    }

    fn on_fault(&mut self, command: FaultCommand) -> MonReply {
        let Some(fault) = &self.fault else {
            return self.reply_to(MonResult::Err(CommandError::new(
                ErrorCode::PermissionDenied,
                "fault injection is disabled on this monitor",
            )));
        };
        let me = format!("mon.{}", self.name);
        match command {
            FaultCommand::Partition { peers } => {
                for p in peers {
                    fault.partition(&me, &p);
                }
            }
            FaultCommand::Heal => fault.clear(),
        }
        self.reply_to(MonResult::Ok(CommandOutput::Done {
            epoch: self.state.osdmap.epoch(),
        }))
    }

    /// `status`, `mon stat`, `health` as this monitor sees them.
    fn quorum_report(&self, cmd: &MonCommand) -> CommandOutput {
        let now = self.now();
        if let MonCommand::OsdDf = cmd {
            return CommandOutput::OsdDf(self.pgstats.osd_df(&self.state.osdmap));
        }
        if let MonCommand::PgLs = cmd {
            return CommandOutput::PgLs(self.pgstats.pg_list(
                &self.state.osdmap,
                now,
                self.settings.failure.beacon_grace_ms,
            ));
        }
        let leader = self.node.is_leader();
        let in_quorum = self.in_quorum();
        let timeout = self.settings.election_timeout_ms;
        let mons: Vec<report::MonEntry> = self
            .state
            .monmap
            .mons
            .iter()
            .enumerate()
            .map(|(r, m)| {
                let heard = self.last_heard.get(r).copied().unwrap_or(0);
                let alive = r == self.rank || (heard > 0 && now.saturating_sub(heard) <= timeout);
                report::MonEntry {
                    rank: r as u32,
                    name: m.name.clone(),
                    addr: m.addr.to_string(),
                    in_quorum: in_quorum
                        && (if leader {
                            alive
                        } else {
                            r == self.rank || Some(node_id(r)) == self.node.leader_hint()
                        }),
                }
            })
            .collect();
        let mon = report::MonStatReport {
            epoch: self.state.monmap.epoch,
            leader: if in_quorum {
                self.leader_name()
                    .map(|n| n.trim_start_matches("mon.").to_string())
            } else {
                None
            },
            quorum: mons
                .iter()
                .filter(|m| m.in_quorum)
                .map(|m| m.name.clone())
                .collect(),
            mons,
            committed: self.node.commit_index(),
        };
        let stats = (leader && matches!(cmd, MonCommand::Status | MonCommand::Health)).then(|| {
            self.pgstats.summary(
                &self.state.osdmap,
                now,
                self.settings.failure.beacon_grace_ms,
            )
        });
        commands::report(&self.state, cmd, mon, stats)
    }

    fn housekeeping(&mut self) {
        self.view.set_in_quorum(self.in_quorum());
        if !self.node.is_leader() {
            return;
        }
        self.pgstats.retain_existing(&self.state.osdmap);
        let verdict = self.failures.judge(
            &self.state.osdmap,
            &self.state.down_since,
            &self.settings.failure,
            self.now(),
            wall_ms(),
        );
        self.step_placement();
        let origin = format!("mon.{}", self.name);
        if !verdict.down.is_empty() {
            tracing::info!(osds = ?verdict.down, "marking OSDs down");
            self.pending.push(Txn {
                client_id: 0,
                tid: 0,
                origin: origin.clone(),
                stamp_ms: 0,
                command: MonCommand::OsdDown { ids: verdict.down },
            });
        }
        if !verdict.out.is_empty() {
            tracing::info!(osds = ?verdict.out, "marking OSDs out after down_out_interval");
            self.pending.push(Txn {
                client_id: 0,
                tid: 0,
                origin,
                stamp_ms: 0,
                command: MonCommand::OsdOut { ids: verdict.out },
            });
        }
    }

    /// Proposes the next `pgp_num` step of a pool whose `pgp_num` is not
    /// at its target (`placement.rs`), once the previous step's map is
    /// applied and every up OSD reported its PGs under it (or after
    /// [`STEP_PATIENCE_MS`], should a proposal or a report be lost).
    fn step_placement(&mut self) {
        let now = self.now();
        if let Some((epoch, at)) = self.placement_step {
            let settled = self.state.osdmap.epoch() >= epoch
                && self.pgstats.all_reported(&self.state.osdmap, epoch);
            if !settled && now < at.saturating_add(STEP_PATIENCE_MS) {
                return;
            }
            self.placement_step = None;
        }
        let map = &self.state.osdmap;
        let Some(pool) = map.pools().values().find(|p| p.pgp_num != p.pgp_num_target) else {
            return;
        };
        let summary = self
            .pgstats
            .summary(map, now, self.settings.failure.beacon_grace_ms);
        let total = summary.count_pgs(|_| true);
        let not_clean = summary.count_pgs(|state| state != crate::pgstats::CLEAN);
        let ratio = self.settings.max_misplaced_ratio;
        let Some(next) = crate::placement::next_pgp_num(pool, total, not_clean, ratio) else {
            return;
        };
        tracing::info!(pool = %pool.name, pgp_num = pool.pgp_num, next, target = pool.pgp_num_target, misplaced = not_clean, "stepping pgp_num");
        self.pending.push(Txn {
            client_id: 0,
            tid: 0,
            origin: format!("mon.{}", self.name),
            stamp_ms: 0,
            command: MonCommand::PoolSet {
                name: pool.name.clone(),
                key: "pgp_num_actual".into(),
                value: next.to_string(),
            },
        });
        self.placement_step = Some((map.epoch() + 1, now));
    }

    fn maybe_propose(&mut self) {
        while self.node.is_leader()
            && !self.pending.is_empty()
            && self.node.in_flight() + self.node.queued_proposals() < self.settings.window
        {
            let mut size = 0usize;
            let mut n = 0;
            for t in &self.pending {
                size += commands::estimated_size(&t.command);
                n += 1;
                if n >= self.settings.max_batch || size >= 4 << 20 {
                    break;
                }
            }
            let stamp = wall_ms();
            let mut txns: Vec<Txn> = self.pending.drain(..n).collect();
            for t in &mut txns {
                t.stamp_ms = stamp;
            }
            let batch = Batch { txns };
            let proposed = batch
                .encode()
                .and_then(|v| self.node.propose(v).map_err(MonError::from));
            if let Err(e) = proposed {
                tracing::warn!(error = %e, "cannot propose a batch");
                self.fail_txns(&batch.txns, ErrorCode::TryAgain, &e.to_string());
                return;
            }
        }
    }

    fn fail_txns(&mut self, txns: &[Txn], code: ErrorCode, why: &str) {
        for t in txns {
            if t.client_id == 0 {
                self.failures.forget_proposals();
                continue;
            }
            for w in self
                .waiters
                .remove(&(t.client_id, t.tid))
                .unwrap_or_default()
            {
                let _ = w
                    .reply
                    .send(self.reply_to(MonResult::Err(CommandError::new(code, why))));
            }
        }
    }

    fn pump(&mut self) -> Result<(), MonError> {
        self.maybe_propose();
        while self.node.has_ready() {
            let mut rd = self.node.ready();
            for m in std::mem::take(&mut rd.messages) {
                self.send(m);
            }
            let epoch_before = self.state.osdmap.epoch();
            let mut changed = false;
            if let Some(s) = rd.install_snapshot.take() {
                self.install_snapshot(&s)?;
                changed = true;
            }
            for c in std::mem::take(&mut rd.committed) {
                self.apply_committed(c.slot, c.command);
            }
            if changed || self.state.osdmap.epoch() != epoch_before {
                self.view.refresh(&self.state);
                self.failures.map_changed(&self.state.osdmap, self.now());
            }
            if rd.snapshot_wanted.is_some() {
                let snap = Snapshot {
                    slot: self.state.applied,
                    data: self.state.encode()?,
                };
                self.node.compact(snap)?;
            }
            for value in std::mem::take(&mut rd.dropped_proposals) {
                if let Ok(batch) = Batch::decode(&value) {
                    self.fail_txns(
                        &batch.txns,
                        ErrorCode::TryAgain,
                        "leadership changed before the command was proposed; retry",
                    );
                }
            }
            let persist = std::mem::take(&mut rd.persist);
            if persist.is_empty() && self.outstanding.is_empty() {
                self.node.advance(&rd)?;
            } else {
                self.writer
                    .send(WriteJob {
                        number: rd.number,
                        persist,
                    })
                    .map_err(|_| MonError::Store("the writer thread stopped".into()))?;
                self.outstanding.push_back(rd);
            }
            self.maybe_propose();
        }
        self.check_role();
        Ok(())
    }

    fn check_role(&mut self) {
        let leader = self.node.is_leader();
        if leader && !self.was_leader {
            tracing::info!(mon = %self.name, ballot = ?self.node.ballot(), "became leader");
            self.failures.reset(&self.state.osdmap, self.now());
        }
        if !leader && self.was_leader {
            tracing::info!(mon = %self.name, "no longer leader");
            let pending = std::mem::take(&mut self.pending);
            self.fail_txns(&pending, ErrorCode::TryAgain, "leadership changed; retry");
            // Values already proposed may or may not be chosen by the next
            // leader. Their clients retry with the same request id (applied
            // at most once); a waiter left here would capture that retry
            // and keep it from ever being proposed again.
            for (_, waiters) in std::mem::take(&mut self.waiters) {
                for w in waiters {
                    let _ = w.reply.send(self.reply_to(MonResult::Err(CommandError::new(
                        ErrorCode::TryAgain,
                        "leadership changed while the command was in flight; retry",
                    ))));
                }
            }
            self.failures.forget_proposals();
        }
        self.was_leader = leader;
        self.view.set_in_quorum(self.in_quorum());
    }

    fn send(&mut self, m: Message) {
        let Some(rank) = (m.to as usize).checked_sub(1) else {
            return;
        };
        let Some(Some(tx)) = self.peers.get(rank) else {
            return;
        };
        let env = PaxosEnvelope {
            monmap_epoch: self.state.monmap.epoch,
            message: m,
        };
        match Frame::encode(msg::PAXOS, &env) {
            Ok(frame) => {
                if tx.try_send(frame).is_err() {
                    tracing::debug!(rank, "paxos queue to peer full; message dropped");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a paxos message"),
        }
    }

    /// Whether a peer's snapshot may be installed: it must decode, and
    /// describe this cluster's monitors (a snapshot of another monitor map
    /// would leave this monitor's per-rank state wrong).
    fn check_snapshot(&self, s: &Snapshot) -> Result<(), String> {
        let state = MonState::decode(&s.data).map_err(|e| e.to_string())?;
        if state.monmap != self.state.monmap {
            return Err(format!(
                "its monitor map (epoch {}) differs from ours (epoch {})",
                state.monmap.epoch, self.state.monmap.epoch
            ));
        }
        Ok(())
    }

    fn install_snapshot(&mut self, s: &Snapshot) -> Result<(), MonError> {
        let state = MonState::decode(&s.data)?;
        tracing::info!(
            slot = s.slot,
            epoch = state.osdmap.epoch(),
            "installed a snapshot"
        );
        self.state = state;
        self.state.applied = s.slot;
        Ok(())
    }

    fn apply_committed(&mut self, slot: u64, command: Command) {
        let value = match command {
            Command::Noop => {
                self.state.applied = slot;
                return;
            }
            Command::Value(v) => v,
        };
        let batch = match Batch::decode(&value) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(slot, error = %e, "committed value does not decode; skipped");
                self.state.applied = slot;
                return;
            }
        };
        let results = self.state.apply_batch(slot, &batch);
        for applied in results {
            let Some(waiters) = self.waiters.remove(&applied.key) else {
                continue;
            };
            for w in waiters {
                let result = match (&applied.result, w.keyring) {
                    (MonResult::Ok(_), Some(k)) => MonResult::Ok(CommandOutput::Keyring(k)),
                    (r, _) => r.clone(),
                };
                let _ = w.reply.send(self.reply_to(result));
            }
        }
    }
}
