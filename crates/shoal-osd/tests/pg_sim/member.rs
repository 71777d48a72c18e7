//! An OSD's handling of the PG, as the daemon's shell does it
//! (`pg.rs`, `peer.rs`, `recovery.rs`, `service.rs`), around the real
//! sans-IO cores: [`Chain`], [`PgLog`], [`peering::plan`] and [`Missing`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use shoal_osd::chain::Chain;
use shoal_osd::missing::Missing;
use shoal_osd::peering::{self, Catchup, PeerLog, Plan};
use shoal_proto::osd::{ObjVersion, ReqId};
use shoal_proto::rep::{LogDup, LogEntry, LogOp};

use crate::sim::{Ev, Sim};
use crate::world::{Msg, Mutation, Node, Refused, Then, Txn, WriteOp};
use shoal_osd::pg::Phase;

/// Pause before a failed peering attempt starts again.
const RETRY: u64 = 40;
/// A peering attempt that makes no progress for this long starts again.
const STALL: u64 = 300;
/// How long the head waits for members of earlier intervals.
const PRIOR_WAIT: u64 = 100;
/// Objects recovered at once while active.
const RECOVERY_MAX_ACTIVE: usize = 2;

/// The head's peering in progress.
pub struct Peering {
    pub attempt: u64,
    pub last_progress: u64,
    pub stage: Stage,
}

/// Where a peering attempt stands.
pub enum Stage {
    /// Waiting for the local store queue to drain.
    Settle,
    Query {
        waiting: BTreeSet<i32>,
        prior_waiting: BTreeSet<i32>,
        asked: BTreeSet<i32>,
        peers: Vec<PeerLog>,
    },
    /// Head backfill: waiting for the authoritative copy's object list.
    Listing {
        plan: Plan,
    },
    Pull {
        plan: Plan,
        todo: VecDeque<(String, Vec<i32>)>,
        current: Option<String>,
        backfill: bool,
    },
    Push {
        plan: Plan,
        todo: VecDeque<(i32, String)>,
        my_backfill: bool,
    },
    Activate {
        waiting: BTreeSet<i32>,
        plan: Plan,
        my_backfill: bool,
    },
    /// Waiting for the monitors to record the interval as active.
    Record {
        plan: Plan,
        my_backfill: bool,
    },
    SelfActivate,
}

/// What the head needs once its own activation is durable.
#[derive(Debug, Clone)]
pub struct Activation {
    pub members_missing: BTreeMap<i32, BTreeSet<String>>,
}

impl Sim {
    fn now_progress(&mut self, id: i32) {
        let now = self.now;
        if let Some(p) = self.osd(id).peering.as_mut() {
            p.last_progress = now;
        }
    }

    /// A new map epoch reached `id`: a new interval may begin.
    pub fn install(&mut self, id: i32, epoch: u32) {
        let iv = self.mon.interval_at(epoch);
        let o = self.osd(id);
        o.disk.map_epoch = epoch;
        if o.interval == iv {
            return;
        }
        let member = iv.acting.contains(&id);
        let head = iv.acting.first() == Some(&id);
        o.interval = iv;
        o.reset_interval_state(if member { Phase::Peering } else { Phase::Stray });
        if head {
            self.start_peering(id);
        }
    }

    fn start_peering(&mut self, id: i32) {
        self.stats.peering_attempts += 1;
        self.next_attempt += 1;
        let attempt = self.next_attempt;
        let (now, life, generation) = (self.now, self.osd(id).life, self.osd(id).generation);
        self.osd(id).peering = Some(Peering {
            attempt,
            last_progress: now,
            stage: Stage::Settle,
        });
        self.schedule(
            STALL,
            Ev::PeerCheck {
                osd: id,
                life,
                generation,
                attempt,
            },
        );
        self.settled(id);
    }

    /// A peering attempt failed: try again shortly.
    fn peering_failed(&mut self, id: i32, why: &str) {
        self.trace(format!("osd.{id} peering failed: {why}"));
        let (life, generation) = (self.osd(id).life, self.osd(id).generation);
        self.osd(id).peering = None;
        self.schedule(
            RETRY,
            Ev::PeerRetry {
                osd: id,
                life,
                generation,
            },
        );
    }

    pub fn peer_retry(&mut self, id: i32, life: u64, generation: u64) {
        let o = self.osd(id);
        if o.life != life || o.generation != generation || !o.alive {
            return;
        }
        if o.phase == Phase::Peering && o.peering.is_none() && o.position() == Some(0) {
            self.start_peering(id);
        }
    }

    pub fn peer_check(&mut self, id: i32, life: u64, generation: u64, attempt: u64) {
        let now = self.now;
        let o = self.osd(id);
        if o.life != life || o.generation != generation || !o.alive {
            return;
        }
        let Some(p) = &o.peering else { return };
        if p.attempt != attempt {
            return;
        }
        if now - p.last_progress >= STALL {
            self.peering_failed(id, "stalled");
        } else {
            let wait = p.last_progress + STALL - now;
            self.schedule(
                wait,
                Ev::PeerCheck {
                    osd: id,
                    life,
                    generation,
                    attempt,
                },
            );
        }
    }

    /// The store queue may be empty now: peering and deferred queries go on.
    pub fn settled(&mut self, id: i32) {
        if !self.osd(id).queue.is_empty() {
            return;
        }
        for (head, interval, attempt) in std::mem::take(&mut self.osd(id).deferred_queries) {
            self.answer_query(id, head, interval, attempt);
        }
        let o = self.osd(id);
        let Some(p) = &o.peering else { return };
        if !matches!(p.stage, Stage::Settle) {
            return;
        }
        let attempt = p.attempt;
        let mine = o.disk.log_state();
        let interval = o.interval.clone();
        let others: BTreeSet<i32> = interval
            .acting
            .iter()
            .copied()
            .filter(|&m| m != id)
            .collect();
        // The members of the interval the monitors last recorded as active
        // are asked too (they may have writes nobody in the chain knows of).
        let map_epoch = o.disk.map_epoch;
        let up = &self.mon.map(map_epoch).up;
        let prior: BTreeSet<i32> = self
            .mon
            .recorded
            .members
            .iter()
            .copied()
            .filter(|m| !others.contains(m) && *m != id && up.contains(m))
            .collect();
        let mut asked: BTreeSet<i32> = others.union(&prior).copied().collect();
        asked.insert(id);
        self.osd(id).peering.as_mut().expect("peering").stage = Stage::Query {
            waiting: others.clone(),
            prior_waiting: prior.clone(),
            asked,
            peers: vec![PeerLog {
                osd: id,
                state: mine,
            }],
        };
        for m in others.into_iter().chain(prior) {
            self.send(
                Node::Osd(id),
                Node::Osd(m),
                Msg::Query {
                    interval: interval.epoch,
                    attempt,
                },
            );
        }
        self.query_progress(id);
    }

    fn answer_query(&mut self, id: i32, head: i32, interval: u32, attempt: u64) {
        let lax = self.lax_query;
        let o = self.osd(id);
        // The member must have left every earlier interval (no write of an
        // old chain can reach it after it answers).
        let state = (lax || o.disk.map_epoch >= interval).then(|| o.disk.log_state());
        self.send(
            Node::Osd(id),
            Node::Osd(head),
            Msg::QueryReply {
                interval,
                attempt,
                state,
            },
        );
    }

    fn on_query(&mut self, id: i32, head: i32, interval: u32, attempt: u64) {
        let o = self.osd(id);
        if !o.queue.is_empty() {
            o.deferred_queries.push((head, interval, attempt));
        } else {
            self.answer_query(id, head, interval, attempt);
        }
    }

    /// Whether `id` is the head peering `interval` in `attempt`.
    fn peering_now(&mut self, id: i32, interval: u32, attempt: u64) -> bool {
        let o = self.osd(id);
        o.interval.epoch == interval
            && o.phase == Phase::Peering
            && o.peering.as_ref().is_some_and(|p| p.attempt == attempt)
    }

    fn on_query_reply(
        &mut self,
        id: i32,
        from: i32,
        interval: u32,
        attempt: u64,
        state: Option<Option<shoal_proto::rep::PgLogState>>,
    ) {
        if !self.peering_now(id, interval, attempt) {
            return;
        }
        self.now_progress(id);
        let epoch = self.osd(id).disk.map_epoch;
        let up = self.mon.map(epoch).up.clone();
        let mut to_ask = Vec::new();
        let mut failed = false;
        {
            let o = self.osd(id);
            let Some(Peering {
                stage:
                    Stage::Query {
                        waiting,
                        prior_waiting,
                        asked,
                        peers,
                    },
                ..
            }) = o.peering.as_mut()
            else {
                return;
            };
            match state {
                None if waiting.contains(&from) => failed = true,
                None => {
                    prior_waiting.remove(&from);
                }
                Some(s) => {
                    if !waiting.remove(&from) && !prior_waiting.remove(&from) {
                        return;
                    }
                    if let Some(st) = &s {
                        for &p in &st.info.last_acting {
                            if !asked.contains(&p) && up.contains(&p) {
                                asked.insert(p);
                                prior_waiting.insert(p);
                                to_ask.push(p);
                            }
                        }
                    }
                    peers.push(PeerLog {
                        osd: from,
                        state: s,
                    });
                }
            }
        }
        if failed {
            self.peering_failed(id, "a member's map is behind");
            return;
        }
        for p in to_ask {
            self.send(
                Node::Osd(id),
                Node::Osd(p),
                Msg::Query { interval, attempt },
            );
        }
        self.query_progress(id);
    }

    fn query_progress(&mut self, id: i32) {
        let o = self.osd(id);
        let (life, generation) = (o.life, o.generation);
        let Some(Peering {
            attempt,
            stage:
                Stage::Query {
                    waiting,
                    prior_waiting,
                    ..
                },
            ..
        }) = &o.peering
        else {
            return;
        };
        let attempt = *attempt;
        if !waiting.is_empty() {
            return;
        }
        if !prior_waiting.is_empty() {
            self.schedule(
                PRIOR_WAIT,
                Ev::PriorGiveUp {
                    osd: id,
                    life,
                    generation,
                    attempt,
                },
            );
            return;
        }
        self.plan(id);
    }

    pub fn prior_give_up(&mut self, id: i32, life: u64, generation: u64, attempt: u64) {
        let o = self.osd(id);
        if o.life != life || o.generation != generation || !o.alive {
            return;
        }
        if let Some(Peering {
            attempt: a,
            stage:
                Stage::Query {
                    waiting,
                    prior_waiting,
                    ..
                },
            ..
        }) = o.peering.as_mut()
            && *a == attempt
            && waiting.is_empty()
        {
            prior_waiting.clear();
            self.plan(id);
        }
    }

    fn plan(&mut self, id: i32) {
        let recorded = self.mon.recorded.clone();
        let o = self.osd(id);
        let acting = o.interval.acting.clone();
        let Some(Peering {
            stage: Stage::Query { peers, .. },
            ..
        }) = &o.peering
        else {
            return;
        };
        // The monitors' record is read linearizably (through Paxos).
        let checked = peering::check_recorded(peers, &recorded);
        let plan = match checked.and_then(|()| peering::plan(&acting, peers)) {
            Ok(p) => p,
            Err(b) => {
                match b {
                    peering::Blocked::Unfound { .. } => self.stats.unfound += 1,
                    peering::Blocked::WaitingFor { .. } => self.stats.incomplete += 1,
                }
                self.peering_failed(id, &format!("{b:?}"));
                return;
            }
        };
        self.trace(format!(
            "osd.{id} plans {:?}: auth osd.{} at {}, catchup {:?}",
            acting, plan.auth, plan.info.last_update, plan.catchup
        ));
        self.stats.backfills += plan
            .catchup
            .values()
            .filter(|c| matches!(c, Catchup::Backfill))
            .count() as u64;
        let p = self.osd(id).peering.as_mut().expect("peering");
        match plan.catchup.get(&id).cloned() {
            Some(Catchup::Backfill) => {
                let auth = plan.auth;
                let attempt = p.attempt;
                p.stage = Stage::Listing { plan };
                let interval = self.osd(id).interval.epoch;
                self.send(
                    Node::Osd(id),
                    Node::Osd(auth),
                    Msg::List { interval, attempt },
                );
            }
            Some(Catchup::Objects(objects)) => {
                let (tail, log) = (plan.info.log_tail, plan.log.clone());
                self.adopt_log(id, tail, log, plan.dups.clone(), objects.clone());
                let p = self.osd(id).peering.as_mut().expect("peering");
                let todo = objects
                    .into_iter()
                    .map(|n| {
                        let s = plan.sources.get(&n).cloned().unwrap_or_default();
                        (n, s.into_iter().filter(|&s| s != id).collect())
                    })
                    .collect();
                p.stage = Stage::Pull {
                    plan,
                    todo,
                    current: None,
                    backfill: false,
                };
                self.next_pull(id);
            }
            None => {
                p.stage = Stage::Pull {
                    plan,
                    todo: VecDeque::new(),
                    current: None,
                    backfill: false,
                };
                self.next_pull(id);
            }
        }
    }

    fn on_list_reply(&mut self, id: i32, interval: u32, attempt: u64, names: Vec<String>) {
        if !self.peering_now(id, interval, attempt) {
            return;
        }
        self.now_progress(id);
        let p = self.osd(id).peering.as_mut().expect("peering");
        let Stage::Listing { plan } = std::mem::replace(&mut p.stage, Stage::SelfActivate) else {
            return;
        };
        let auth = plan.auth;
        // Everything is suspect until copied: what the authoritative copy
        // lists, what it lacks, and what this copy holds.
        let local: Vec<String> = self.osd(id).disk.objects.keys().cloned().collect();
        let mut suspect: BTreeSet<String> = names.iter().cloned().collect();
        suspect.extend(plan.auth_missing.iter().cloned());
        suspect.extend(local.iter().cloned());
        self.adopt_log(
            id,
            plan.info.log_tail,
            plan.log.clone(),
            plan.dups.clone(),
            suspect,
        );
        // Local objects it does not list go when the head activates.
        let mut todo: VecDeque<(String, Vec<i32>)> = names
            .into_iter()
            .filter(|n| !plan.auth_missing.contains(n))
            .map(|n| (n, vec![auth]))
            .collect();
        let p = self.osd(id).peering.as_mut().expect("peering");
        for n in &plan.auth_missing {
            let s = plan.sources.get(n).cloned().unwrap_or_default();
            todo.push_back((n.clone(), s.into_iter().filter(|&s| s != id).collect()));
        }
        p.stage = Stage::Pull {
            plan,
            todo,
            current: None,
            backfill: true,
        };
        self.next_pull(id);
    }

    /// Head: takes the authoritative log and what it lacks under it as its
    /// own, durably, before pulling (`Pg::adopt_log`).
    fn adopt_log(
        &mut self,
        id: i32,
        tail: ObjVersion,
        log: Vec<LogEntry>,
        dups: Vec<LogDup>,
        missing: BTreeSet<String>,
    ) {
        let o = self.osd(id);
        let (les, acting) = (o.disk.les, o.disk.last_acting.clone());
        o.log = shoal_osd::pglog::PgLog::new(tail, log.clone()).with_dups(dups.clone());
        o.missing = missing.clone();
        self.submit(
            id,
            Txn::StoreLog {
                tail,
                log,
                dups,
                les,
                acting,
                missing,
            },
            Then::Nothing,
        );
    }

    fn next_pull(&mut self, id: i32) {
        let o = self.osd(id);
        let interval = o.interval.epoch;
        let p = o.peering.as_mut().expect("peering");
        let attempt = p.attempt;
        let Stage::Pull { todo, current, .. } = &mut p.stage else {
            return;
        };
        match todo.pop_front() {
            Some((name, sources)) => {
                let Some(&from) = sources.first() else {
                    self.stats.unfound += 1;
                    self.peering_failed(id, &format!("{name} is unfound"));
                    return;
                };
                *current = Some(name.clone());
                self.stats.pulls += 1;
                self.send(
                    Node::Osd(id),
                    Node::Osd(from),
                    Msg::Pull {
                        interval,
                        attempt,
                        object: name,
                    },
                );
            }
            None => {
                let Stage::Pull { plan, backfill, .. } =
                    std::mem::replace(&mut p.stage, Stage::SelfActivate)
                else {
                    return;
                };
                // Members that cannot catch up from the log get every object
                // (after a backfill of its own the head's store still holds
                // the stale objects it removes when it activates: only
                // what it pulled counts).
                let names: Vec<String> = if backfill {
                    o.pushed.iter().cloned().collect()
                } else {
                    o.disk.objects.keys().cloned().collect()
                };
                let mut todo = VecDeque::new();
                for (&m, c) in &plan.catchup {
                    if m != id && matches!(c, Catchup::Backfill) {
                        todo.extend(names.iter().map(|n| (m, n.clone())));
                    }
                }
                o.peering.as_mut().expect("peering").stage = Stage::Push {
                    plan,
                    todo,
                    my_backfill: backfill,
                };
                self.next_push(id);
            }
        }
    }

    fn on_pull_reply(
        &mut self,
        id: i32,
        interval: u32,
        attempt: u64,
        object: String,
        state: Option<crate::world::Obj>,
    ) {
        if !self.peering_now(id, interval, attempt) {
            return;
        }
        self.now_progress(id);
        let o = self.osd(id);
        let generation = o.generation;
        let Some(Peering {
            stage: Stage::Pull { current, .. },
            ..
        }) = &o.peering
        else {
            return;
        };
        if current.as_deref() != Some(object.as_str()) {
            return;
        }
        self.submit(
            id,
            Txn::Put {
                object: object.clone(),
                state,
            },
            Then::Pulled {
                generation,
                attempt,
                object,
            },
        );
    }

    fn pulled(&mut self, id: i32, attempt: u64, object: String) {
        let o = self.osd(id);
        let Some(Peering {
            attempt: a,
            stage: Stage::Pull {
                current, backfill, ..
            },
            ..
        }) = o.peering.as_mut()
        else {
            return;
        };
        if *a != attempt {
            return;
        }
        *current = None;
        o.missing.remove(&object);
        if *backfill {
            o.pushed.insert(object);
        }
        self.next_pull(id);
    }

    fn next_push(&mut self, id: i32) {
        let o = self.osd(id);
        let interval = o.interval.epoch;
        let p = o.peering.as_mut().expect("peering");
        let attempt = p.attempt;
        let Stage::Push { todo, .. } = &mut p.stage else {
            return;
        };
        if let Some((m, name)) = todo.pop_front() {
            let state = o.disk.objects.get(&name).cloned();
            self.send(
                Node::Osd(id),
                Node::Osd(m),
                Msg::Push {
                    interval,
                    attempt,
                    object: name,
                    state,
                },
            );
            return;
        }
        let Stage::Push {
            plan, my_backfill, ..
        } = std::mem::replace(&mut p.stage, Stage::SelfActivate)
        else {
            return;
        };
        let acting = o.interval.acting.clone();
        let mut waiting = BTreeSet::new();
        for &m in acting.iter().filter(|&&m| m != id) {
            let (backfill, missing) = match plan.catchup.get(&m) {
                Some(Catchup::Backfill) => (true, BTreeSet::new()),
                Some(Catchup::Objects(o)) => (false, o.clone()),
                None => (false, BTreeSet::new()),
            };
            waiting.insert(m);
            self.send(
                Node::Osd(id),
                Node::Osd(m),
                Msg::Activate {
                    interval,
                    attempt,
                    acting: acting.clone(),
                    info: plan.info.clone(),
                    log: plan.log.clone(),
                    dups: plan.dups.clone(),
                    backfill,
                    missing,
                },
            );
        }
        self.osd(id).peering.as_mut().expect("peering").stage = Stage::Activate {
            waiting,
            plan,
            my_backfill,
        };
        self.activate_progress(id);
    }

    fn on_activate_ack(&mut self, id: i32, from: i32, interval: u32, attempt: u64, ok: bool) {
        if !self.peering_now(id, interval, attempt) {
            return;
        }
        self.now_progress(id);
        if !ok {
            self.peering_failed(id, "a member refused to activate");
            return;
        }
        if let Some(Peering {
            stage: Stage::Activate { waiting, .. },
            ..
        }) = self.osd(id).peering.as_mut()
        {
            waiting.remove(&from);
        }
        self.activate_progress(id);
    }

    fn activate_progress(&mut self, id: i32) {
        let o = self.osd(id);
        let (life, generation) = (o.life, o.generation);
        let p = o.peering.as_mut().expect("peering");
        let attempt = p.attempt;
        let Stage::Activate { waiting, .. } = &p.stage else {
            return;
        };
        if !waiting.is_empty() {
            return;
        }
        let Stage::Activate {
            plan, my_backfill, ..
        } = std::mem::replace(&mut p.stage, Stage::SelfActivate)
        else {
            return;
        };
        p.stage = Stage::Record { plan, my_backfill };
        let d = self.rng.range(2, 10);
        self.schedule(
            d,
            Ev::Record {
                osd: id,
                life,
                generation,
                attempt,
            },
        );
    }

    /// The monitors record the interval as active if its chain is still
    /// the PG's chain in their newest map.
    pub fn record(&mut self, id: i32, life: u64, generation: u64, attempt: u64) {
        let o = &self.osds[id as usize];
        if o.life != life || o.generation != generation || !o.alive {
            return;
        }
        let iv = o.interval.clone();
        let latest = self.mon.latest();
        let current = self.mon.acting(latest) == iv.acting
            && iv.acting.iter().all(|m| latest.up_from[m] <= iv.epoch)
            && iv.epoch >= self.mon.recorded.epoch;
        if !self.peering_now(id, iv.epoch, attempt) {
            return;
        }
        if !current {
            self.peering_failed(id, "the monitors refused the record: the chain changed");
            return;
        }
        self.mon.recorded = shoal_osd::peering::Recorded {
            epoch: iv.epoch,
            members: iv.acting.clone(),
        };
        let o = self.osd(id);
        let generation = o.generation;
        let acting = o.interval.acting.clone();
        let interval = o.interval.epoch;
        let p = o.peering.as_mut().expect("peering");
        let Stage::Record { plan, my_backfill } =
            std::mem::replace(&mut p.stage, Stage::SelfActivate)
        else {
            return;
        };
        let members_missing = plan
            .catchup
            .iter()
            .filter(|(m, _)| **m != id)
            .filter_map(|(&m, c)| match c {
                Catchup::Objects(o) => Some((m, o.clone())),
                Catchup::Backfill => None,
            })
            .collect();
        if my_backfill {
            let keep = o.pushed.clone();
            self.submit(id, Txn::RemoveExcept(keep), Then::Nothing);
        }
        self.submit(
            id,
            Txn::StoreLog {
                tail: plan.info.log_tail,
                log: plan.log,
                dups: plan.dups,
                les: interval,
                acting,
                missing: BTreeSet::new(),
            },
            Then::Activated {
                generation,
                attempt,
                head: id,
                plan: Some(Activation { members_missing }),
            },
        );
    }

    /// Member: the head's activation.
    #[allow(clippy::too_many_arguments)]
    fn on_activate(
        &mut self,
        id: i32,
        head: i32,
        interval: u32,
        attempt: u64,
        acting: Vec<i32>,
        info: shoal_proto::rep::PgInfo,
        log: Vec<LogEntry>,
        dups: Vec<LogDup>,
        backfill: bool,
        missing: BTreeSet<String>,
    ) {
        let o = self.osd(id);
        if o.interval.epoch != interval || o.interval.acting != acting || o.phase == Phase::Stray {
            self.send(
                Node::Osd(id),
                Node::Osd(head),
                Msg::ActivateAck {
                    interval,
                    attempt,
                    ok: false,
                },
            );
            return;
        }
        let generation = o.generation;
        if backfill {
            let keep = o.pushed.clone();
            self.submit(id, Txn::RemoveExcept(keep), Then::Nothing);
        }
        self.submit(
            id,
            Txn::StoreLog {
                tail: info.log_tail,
                log,
                dups,
                les: interval,
                acting,
                missing,
            },
            Then::Activated {
                generation,
                attempt,
                head,
                plan: None,
            },
        );
    }

    fn activated(&mut self, id: i32, attempt: u64, head: i32, plan: Option<Activation>) {
        let o = self.osd(id);
        o.log = o.disk.log.clone();
        o.missing = o.disk.missing.clone();
        let pos = o.position().unwrap_or(0);
        let tail = pos + 1 == o.interval.acting.len();
        let last = o.log.head();
        o.chain = Chain::new(tail, last);
        o.recv_last = last;
        o.phase = Phase::Active;
        o.peering = None;
        let interval = o.interval.epoch;
        match plan {
            Some(a) => {
                o.recovery = Missing::new(a.members_missing.iter().map(|(&m, s)| (m, s)));
                self.trace(format!("osd.{id} active as head of {interval}"));
                self.recovery_kick(id);
            }
            None => self.send(
                Node::Osd(id),
                Node::Osd(head),
                Msg::ActivateAck {
                    interval,
                    attempt,
                    ok: true,
                },
            ),
        }
    }

    /// Head: background recovery of what members lack.
    pub fn recovery_kick(&mut self, id: i32) {
        loop {
            let o = self.osd(id);
            if !o.is_active_head() || o.pushing.len() >= RECOVERY_MAX_ACTIVE {
                return;
            }
            let Some((name, members)) = o.recovery.start() else {
                return;
            };
            self.push_recovery(id, name, members);
        }
    }

    fn push_recovery(&mut self, id: i32, name: String, members: BTreeSet<i32>) {
        let o = self.osd(id);
        let interval = o.interval.epoch;
        let state = o.disk.objects.get(&name).cloned();
        o.pushing.insert(name.clone(), members.clone());
        for m in members {
            self.stats.recovery_pushes += 1;
            self.send(
                Node::Osd(id),
                Node::Osd(m),
                Msg::Push {
                    interval,
                    attempt: 0,
                    object: name.clone(),
                    state: state.clone(),
                },
            );
        }
    }

    fn on_push(
        &mut self,
        id: i32,
        from: i32,
        interval: u32,
        attempt: u64,
        object: String,
        state: Option<crate::world::Obj>,
    ) {
        let o = self.osd(id);
        let from_head = o.interval.acting.first() == Some(&from);
        let ok = o.interval.epoch == interval
            && from_head
            && match o.phase {
                Phase::Peering => attempt != 0,
                // While active only what this copy lacks (a stale push
                // must not overwrite newer writes).
                Phase::Active => attempt == 0 && o.missing.contains(&object),
                Phase::Stray => false,
            };
        if !ok {
            self.send(
                Node::Osd(id),
                Node::Osd(from),
                Msg::PushAck {
                    interval,
                    attempt,
                    object,
                    ok: false,
                },
            );
            return;
        }
        let generation = o.generation;
        self.submit(
            id,
            Txn::Put {
                object: object.clone(),
                state,
            },
            Then::Pushed {
                generation,
                from,
                interval,
                attempt,
                object,
            },
        );
    }

    fn pushed(&mut self, id: i32, from: i32, interval: u32, attempt: u64, object: String) {
        let o = self.osd(id);
        o.missing.remove(&object);
        if attempt != 0 {
            o.pushed.insert(object.clone());
        }
        self.send(
            Node::Osd(id),
            Node::Osd(from),
            Msg::PushAck {
                interval,
                attempt,
                object,
                ok: true,
            },
        );
    }

    fn on_push_ack(
        &mut self,
        id: i32,
        from: i32,
        interval: u32,
        attempt: u64,
        object: String,
        ok: bool,
    ) {
        if attempt != 0 {
            if !self.peering_now(id, interval, attempt) {
                return;
            }
            self.now_progress(id);
            if !ok {
                self.peering_failed(id, "a backfill push was refused");
                return;
            }
            self.next_push(id);
            return;
        }
        let o = self.osd(id);
        if o.interval.epoch != interval || !o.is_active_head() {
            return;
        }
        if !ok {
            o.pushing.remove(&object);
            o.recovery.release(&object);
            let (life, generation) = (o.life, o.generation);
            self.schedule(
                RETRY,
                Ev::RecoveryRetry {
                    osd: id,
                    life,
                    generation,
                },
            );
            return;
        }
        o.recovery.recovered(&object, from);
        let Some(waiting) = o.pushing.get_mut(&object) else {
            return;
        };
        waiting.remove(&from);
        if waiting.is_empty() {
            o.pushing.remove(&object);
            self.stats.recovered_objects += 1;
            self.unblock(id, &object);
        }
        self.recovery_kick(id);
    }

    /// Client requests that waited for `object`'s recovery go on.
    fn unblock(&mut self, id: i32, object: &str) {
        let o = self.osd(id);
        let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut o.blocked)
            .into_iter()
            .partition(|(_, m)| matches!(m, Msg::Write { object: n, .. } if n == object));
        o.blocked = rest;
        for (client, msg) in ready {
            self.on_client(id, client, msg);
        }
    }

    /// Head: a client request.
    pub fn on_client(&mut self, id: i32, client: usize, msg: Msg) {
        let o = self.osd(id);
        let refuse = if !o.is_active_head() {
            Some("not the active head")
        } else if o.interval.acting.len() < self.min_size {
            Some("fewer members than min_size")
        } else {
            None
        };
        let reqid = match &msg {
            Msg::Write { reqid, .. } | Msg::Read { reqid, .. } => *reqid,
            _ => return,
        };
        if let Some(why) = refuse {
            self.reply(id, client, reqid, Err(Refused(why)));
            return;
        }
        match msg {
            Msg::Read { reqid, object } => {
                let o = self.osd(id);
                if o.uncommitted.contains_key(&object) && !o.chain.is_tail() {
                    // The tail has the committed state.
                    let tail = *o.interval.acting.last().expect("a chain");
                    let interval = o.interval.epoch;
                    self.send(
                        Node::Osd(id),
                        Node::Osd(tail),
                        Msg::TailRead {
                            interval,
                            reqid,
                            object,
                            client,
                        },
                    );
                } else {
                    let c = o.disk.objects.get(&object).map(|(_, c)| c.clone());
                    self.reply(id, client, reqid, Ok(c));
                }
            }
            Msg::Write { reqid, object, op } => self.on_write(id, client, reqid, object, op),
            _ => {}
        }
    }

    fn on_write(&mut self, id: i32, client: usize, reqid: ReqId, object: String, op: WriteOp) {
        let o = self.osd(id);
        // An object some member lacks is recovered before a write (or the
        // answer to a retried one) passes it.
        if o.recovery.is_missing(&object) {
            if !o.pushing.contains_key(&object) {
                let members = o.recovery.take(&object);
                self.push_recovery(id, object.clone(), members);
            }
            let o = self.osd(id);
            o.blocked.push((client, Msg::Write { reqid, object, op }));
            return;
        }
        if let Some(v) = o.log.find(reqid) {
            if v <= o.chain.done() {
                self.answer_write(id, client, reqid, &object);
            } else if let Some(w) = o.waiters.get_mut(&v.seq) {
                w.push((client, reqid, object));
            } else {
                self.reply(
                    id,
                    client,
                    reqid,
                    Err(Refused("logged, its local write failed")),
                );
            }
            return;
        }
        let cur = o.disk.objects.get(&object).map(|(_, c)| c.len());
        let (mutation, log_op) = match op {
            WriteOp::Append(token) => (
                Mutation::Put {
                    at: cur.unwrap_or(0),
                    token,
                },
                LogOp::Modify,
            ),
            WriteOp::Delete => (Mutation::Delete, LogOp::Delete),
        };
        let head = o.log.head();
        let version = ObjVersion {
            epoch: o.interval.epoch.max(head.epoch),
            seq: head.seq + 1,
        };
        let entry = LogEntry {
            version,
            reqid,
            object: object.clone(),
            op: log_op,
        };
        o.waiters
            .entry(version.seq)
            .or_default()
            .push((client, reqid, object));
        self.order(id, entry, mutation);
    }

    /// Orders a write on this member: log, chain, next member, store
    /// (`Pg::order`).
    fn order(&mut self, id: i32, entry: LogEntry, mutation: Mutation) {
        let (keep, keep_dups) = (self.log_keep, self.log_dups);
        let o = self.osd(id);
        let version = entry.version;
        o.log.push(entry.clone());
        o.log.trim(keep, keep_dups);
        if let Err(e) = o.chain.start(version) {
            self.violation(format!("osd.{id}: {e}"));
            return;
        }
        o.uncommitted.insert(entry.object.clone(), version.seq);
        let generation = o.generation;
        let interval = o.interval.epoch;
        let next = o
            .position()
            .and_then(|p| o.interval.acting.get(p + 1))
            .copied();
        if let Some(next) = next {
            self.send(
                Node::Osd(id),
                Node::Osd(next),
                Msg::Rep {
                    interval,
                    entry: entry.clone(),
                    mutation,
                },
            );
        }
        self.submit(
            id,
            Txn::Write {
                entry,
                mutation,
                keep,
                keep_dups,
            },
            Then::Written {
                generation,
                seq: version.seq,
            },
        );
    }

    fn on_rep(&mut self, id: i32, from: i32, interval: u32, entry: LogEntry, mutation: Mutation) {
        let o = self.osd(id);
        let upstream_ok = o
            .position()
            .is_some_and(|p| p > 0 && o.interval.acting.get(p - 1) == Some(&from));
        if o.phase != Phase::Active || o.interval.epoch != interval || !upstream_ok {
            return;
        }
        let version = entry.version;
        if version <= o.recv_last {
            return;
        }
        if version.seq != o.recv_last.seq + 1 {
            let last = o.recv_last;
            self.violation(format!("osd.{id}: write {version} after {last}: a gap"));
            return;
        }
        o.recv_last = version;
        self.order(id, entry, mutation);
    }

    fn on_done(&mut self, id: i32, done: ObjVersion) {
        let o = self.osd(id);
        o.uncommitted.retain(|_, seq| *seq > done.seq);
        let interval = o.interval.epoch;
        match o.position() {
            Some(0) => {
                let mut answers = Vec::new();
                while let Some(e) = o.waiters.first_entry() {
                    if *e.key() > done.seq {
                        break;
                    }
                    let seq = *e.key();
                    for w in e.remove() {
                        answers.push((seq, w));
                    }
                }
                for (_, (client, reqid, object)) in answers {
                    self.answer_write(id, client, reqid, &object);
                }
            }
            Some(p) => {
                let up = self.osd(id).interval.acting[p - 1];
                self.send(
                    Node::Osd(id),
                    Node::Osd(up),
                    Msg::Ack {
                        interval,
                        version: done,
                    },
                );
            }
            None => {}
        }
    }

    fn on_ack(&mut self, id: i32, from: i32, interval: u32, version: ObjVersion) {
        let o = self.osd(id);
        let ok = o
            .position()
            .is_some_and(|p| o.interval.acting.get(p + 1) == Some(&from));
        if !ok || o.interval.epoch != interval || o.phase != Phase::Active {
            return;
        }
        if let Some(done) = o.chain.downstream_acked(version) {
            self.on_done(id, done);
        }
    }

    /// A store transaction is durable.
    pub fn disk_done(&mut self, id: i32, then: Then) {
        let current = self.osd(id).generation;
        match then {
            Then::Written { generation, seq } if generation == current => {
                if let Some(done) = self.osd(id).chain.local_durable(seq) {
                    self.on_done(id, done);
                }
            }
            Then::Pushed {
                generation,
                from,
                interval,
                attempt,
                object,
            } if generation == current => self.pushed(id, from, interval, attempt, object),
            Then::Pulled {
                generation,
                attempt,
                object,
            } if generation == current => self.pulled(id, attempt, object),
            Then::Activated {
                generation,
                attempt,
                head,
                plan,
            } if generation == current => self.activated(id, attempt, head, plan),
            _ => {}
        }
        self.settled(id);
    }

    /// A message reached OSD `id`.
    pub fn on_osd_msg(&mut self, id: i32, from: Node, msg: Msg) {
        let peer = match from {
            Node::Osd(p) => p,
            Node::Client(c) => {
                self.on_client(id, c, msg);
                return;
            }
        };
        match msg {
            Msg::Rep {
                interval,
                entry,
                mutation,
            } => self.on_rep(id, peer, interval, entry, mutation),
            Msg::Ack { interval, version } => self.on_ack(id, peer, interval, version),
            Msg::Query { interval, attempt } => self.on_query(id, peer, interval, attempt),
            Msg::QueryReply {
                interval,
                attempt,
                state,
            } => self.on_query_reply(id, peer, interval, attempt, state),
            Msg::Pull {
                interval,
                attempt,
                object,
            } => {
                let state = self.osd(id).disk.objects.get(&object).cloned();
                self.send(
                    Node::Osd(id),
                    Node::Osd(peer),
                    Msg::PullReply {
                        interval,
                        attempt,
                        object,
                        state,
                    },
                );
            }
            Msg::PullReply {
                interval,
                attempt,
                object,
                state,
            } => self.on_pull_reply(id, interval, attempt, object, state),
            Msg::List { interval, attempt } => {
                let names = self.osd(id).disk.objects.keys().cloned().collect();
                self.send(
                    Node::Osd(id),
                    Node::Osd(peer),
                    Msg::ListReply {
                        interval,
                        attempt,
                        names,
                    },
                );
            }
            Msg::ListReply {
                interval,
                attempt,
                names,
            } => self.on_list_reply(id, interval, attempt, names),
            Msg::Push {
                interval,
                attempt,
                object,
                state,
            } => self.on_push(id, peer, interval, attempt, object, state),
            Msg::PushAck {
                interval,
                attempt,
                object,
                ok,
            } => self.on_push_ack(id, peer, interval, attempt, object, ok),
            Msg::Activate {
                interval,
                attempt,
                acting,
                info,
                log,
                dups,
                backfill,
                missing,
            } => self.on_activate(
                id, peer, interval, attempt, acting, info, log, dups, backfill, missing,
            ),
            Msg::ActivateAck {
                interval,
                attempt,
                ok,
            } => self.on_activate_ack(id, peer, interval, attempt, ok),
            Msg::TailRead {
                interval,
                reqid,
                object,
                client,
            } => {
                let o = self.osd(id);
                let serving =
                    o.phase == Phase::Active && o.interval.epoch == interval && o.chain.is_tail();
                let result = if serving {
                    Ok(o.disk.objects.get(&object).map(|(_, c)| c.clone()))
                } else {
                    Err(Refused("not the tail of that interval"))
                };
                self.reply(id, client, reqid, result);
            }
            Msg::Write { .. } | Msg::Read { .. } | Msg::Reply { .. } => {}
        }
    }

    pub fn recovery_retry(&mut self, id: i32, life: u64, generation: u64) {
        let o = self.osd(id);
        if o.life == life && o.generation == generation && o.alive {
            self.recovery_kick(id);
        }
    }
}
