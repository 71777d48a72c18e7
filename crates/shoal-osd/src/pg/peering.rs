//! The head's peering, in stages, one attempt at a time:
//!
//! 1. **Settle**: wait until this copy's own transactions are stored (the
//!    log in memory may be ahead of the store by writes of the last
//!    interval), so what it reports and serves matches its log.
//! 2. **Record**: read the monitors' record of the newest interval that
//!    went active (its members may hold acknowledged writes nobody in this
//!    chain has seen).
//! 3. **Query**: every member of the chain must answer; members of earlier
//!    chains that are up (the answers' `last_acting`, the record) are
//!    asked too, best effort.
//! 4. **Plan** ([`crate::peering::plan`]): the authoritative log and what
//!    each member needs. A PG that must wait for an earlier interval is
//!    `incomplete`; one whose members cannot catch up from the log asks
//!    for a `pg_temp` chain of up-to-date copies and waits for the map.
//! 5. **Catch up** (`catchup.rs`): the head first (it serves every object
//!    from the moment it is active), then the members that need a
//!    backfill; the others go active knowing what they lack.
//! 6. **Leases**: members of earlier chains that did not answer may still
//!    serve reads until their lease lapses (`lease.rs`); the head waits
//!    that out (unless a probe shows they are gone).
//! 7. **Activate** (`activation.rs`): every member, then the monitors'
//!    record, then the head itself.
//!
//! Any failure ends the attempt; the next one starts after a pause that
//! doubles. Nothing of an attempt outlives it: its answers name it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_proto::rep::{PgLogState, PgQuery, PgQueryReply};

use super::Pg;
use super::types::{Action, Facts, OutRequest, Pending, Phase, Timer};
use crate::peering::{self, Catchup, PeerLog, Plan, Recorded};

/// Pauses between peering attempts: they start short (most refusals, e.g.
/// a member that has not got the epoch yet, clear within milliseconds)
/// and double.
const RETRY: shoal_net::Backoff = shoal_net::Backoff {
    initial: Duration::from_millis(20),
    max: Duration::from_millis(500),
};

/// Most objects a head pulls while peering; one further behind asks for a
/// `pg_temp` and is backfilled while the others serve.
const HEAD_PULL_LIMIT: usize = 256;

/// The head's peering attempt in progress.
#[derive(Debug)]
pub(super) struct Peering {
    /// Names the attempt (answers to earlier ones are ignored).
    pub(super) attempt: u64,
    pub(super) stage: Stage,
    /// When the attempt last moved forward.
    pub(super) progress: Duration,
    /// The monitors' record of the newest active interval.
    pub(super) recorded: Recorded,
    /// The answers so far (this OSD's own first).
    pub(super) peers: Vec<PeerLog>,
    /// When each answering OSD last heard from each OSD (read leases).
    pub(super) heard_by: BTreeMap<i32, HashMap<i32, Duration>>,
    /// OSDs asked so far.
    pub(super) asked: BTreeSet<i32>,
    /// Members whose answer is awaited (they must answer).
    pub(super) waiting: BTreeSet<i32>,
    /// Earlier members whose answer is awaited (best effort).
    pub(super) prior_waiting: BTreeSet<i32>,
    /// The plan, once made.
    pub(super) plan: Option<Plan>,
    /// What each other member lacks once active.
    pub(super) members_missing: BTreeMap<i32, BTreeSet<String>>,
    /// The head itself was backfilled: only what it pulled is the PG.
    pub(super) my_backfill: bool,
    /// What the head pulled in its own backfill.
    pub(super) pulled_all: Vec<String>,
    /// The digest of what is pushed to backfilled members (their
    /// activation carries it).
    pub(super) pushed_digest: [u8; 32],
    /// When the leases of silent earlier members lapse, and who they are.
    pub(super) lapse: Option<(Duration, BTreeSet<i32>)>,
}

/// Where an attempt stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stage {
    /// Waiting for this copy's transactions to be stored.
    Settle,
    /// Reading the monitors' activation record.
    Record,
    /// Waiting for answers.
    Query,
    /// Asked for a `pg_temp`; the new map ends the attempt.
    PgTemp,
    /// Catching up (see `catchup.rs`).
    Catchup(Step),
    /// Probing silent earlier members, then waiting out their leases.
    Leases,
    /// Storing the head's own activation (first).
    SelfActivate,
    /// Waiting for the members' activation answers.
    Activate(BTreeSet<i32>),
    /// Recording the interval as active at the monitors.
    RecordActive,
}

/// Where the catch-up stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Head backfill: listing the authoritative copy, page by page.
    ScanAuth {
        /// Names listed so far.
        listed: Vec<String>,
    },
    /// Head backfill: listing this copy.
    ListLocal {
        /// The authoritative copy's names.
        listed: Vec<String>,
    },
    /// Storing the adopted log.
    Adopt,
    /// Pulling objects.
    Pull(Copies),
    /// Listing this copy for the members' backfill.
    ListForMembers,
    /// Pushing every object to the members that need a backfill.
    Push(Copies),
}

/// Copies to make, a few at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Copies {
    /// (object, where from / to) not started yet.
    pub(super) todo: VecDeque<(String, Vec<i32>)>,
    /// Copies in flight.
    pub(super) in_flight: usize,
}

impl Peering {
    /// The earlier chains whose members may still hold read leases: the
    /// answers' `last_acting` and the monitors' record.
    pub(super) fn earlier_chains(&self) -> Vec<Vec<i32>> {
        self.peers
            .iter()
            .filter_map(|p| p.state.as_ref())
            .map(|s| s.info.last_acting.clone())
            .chain(std::iter::once(self.recorded.members.clone()))
            .collect()
    }
}

impl Pg {
    /// The head of a new interval (or after a failed attempt) peers.
    pub(super) fn start_peering(&mut self, now: Duration, facts: &dyn Facts) {
        self.attempts += 1;
        let attempt = self.attempts;
        self.peering = Some(Peering {
            attempt,
            stage: Stage::Settle,
            progress: now,
            recorded: Recorded::default(),
            peers: Vec::new(),
            heard_by: BTreeMap::new(),
            asked: BTreeSet::new(),
            waiting: BTreeSet::new(),
            prior_waiting: BTreeSet::new(),
            plan: None,
            members_missing: BTreeMap::new(),
            my_backfill: false,
            pulled_all: Vec::new(),
            pushed_digest: [0; 32],
            lapse: None,
        });
        self.act(Action::SetTimer {
            after: self.cfg.stall,
            timer: Timer::PeeringStall { attempt },
        });
        self.settle_peering(now, facts);
    }

    /// The attempt moved forward.
    pub(super) fn progress(&mut self, now: Duration) {
        if let Some(p) = &mut self.peering {
            p.progress = now;
        }
    }

    /// The running attempt, if it is `attempt` and still in this interval.
    pub(super) fn attempt(&mut self, attempt: u64) -> Option<&mut Peering> {
        self.peering.as_mut().filter(|p| p.attempt == attempt)
    }

    /// The attempt failed: the next one starts after a pause.
    pub(super) fn peering_failed(&mut self, why: &str) {
        let Some(p) = self.peering.take() else {
            return;
        };
        self.failures += 1;
        tracing::info!(pg = %self.id, epoch = self.interval.epoch, attempt = p.attempt, reason = why, "peering again shortly");
        self.act(Action::SetTimer {
            after: RETRY.delay(self.failures),
            timer: Timer::PeeringRetry {
                interval: self.interval.epoch,
            },
        });
    }

    /// The pause after a failed attempt is over.
    pub(super) fn peering_retry(&mut self, now: Duration, facts: &dyn Facts, interval: u32) {
        if interval == self.interval.epoch
            && self.phase == Phase::Peering
            && self.peering.is_none()
            && self.position() == Some(0)
        {
            self.start_peering(now, facts);
        }
    }

    /// The stall check: an attempt that has not moved for a while (an
    /// answer that never came) starts again.
    pub(super) fn peering_stall(&mut self, now: Duration, attempt: u64) {
        let stall = self.cfg.stall;
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        let idle = now.saturating_sub(p.progress);
        if idle >= stall {
            self.peering_failed("no progress");
        } else {
            self.act(Action::SetTimer {
                after: stall - idle,
                timer: Timer::PeeringStall { attempt },
            });
        }
    }

    /// Settle: once nothing of this copy is being stored, read the record.
    pub(super) fn settle_peering(&mut self, now: Duration, facts: &dyn Facts) {
        let _ = facts;
        if !self.settled() {
            return;
        }
        let pg = self.id;
        let Some(p) = self.peering.as_mut().filter(|p| p.stage == Stage::Settle) else {
            return;
        };
        p.stage = Stage::Record;
        p.progress = now;
        let attempt = p.attempt;
        let token = self.token();
        self.pending.insert(token, Pending::Record { attempt });
        self.act(Action::Mon {
            token,
            cmd: MonCommand::PgActivated {
                pg: pg.to_string(),
                interval: 0,
                acting: Vec::new(),
            },
        });
    }

    /// The monitors' record arrived: query the members (and earlier ones).
    pub(super) fn record_read(
        &mut self,
        now: Duration,
        facts: &dyn Facts,
        attempt: u64,
        result: Result<CommandOutput, String>,
    ) {
        let recorded = match result {
            Ok(CommandOutput::PgActive { epoch, acting }) => Recorded {
                epoch,
                members: acting,
            },
            Ok(other) => return self.peering_failed(&format!("the monitors answered {other:?}")),
            Err(e) => return self.peering_failed(&format!("the monitors' activation record: {e}")),
        };
        let me = self.whoami;
        let mine = self.log_state();
        let heard = heard_at(now, &facts.heard_ago());
        let members: BTreeSet<i32> = self
            .interval
            .acting
            .iter()
            .copied()
            .filter(|&m| m != me)
            .collect();
        let Some(p) = self.attempt(attempt).filter(|p| p.stage == Stage::Record) else {
            return;
        };
        p.stage = Stage::Query;
        p.progress = now;
        p.peers = vec![PeerLog {
            osd: me,
            state: Some(mine),
        }];
        p.heard_by.insert(me, heard);
        p.asked = members.iter().copied().chain([me]).collect();
        p.waiting = members.clone();
        p.recorded = recorded;
        for m in members {
            self.query(attempt, m);
        }
        self.ask_prior(facts, attempt);
        self.query_progress(now, facts, attempt);
    }

    fn query(&mut self, attempt: u64, to: i32) {
        let token = self.token();
        self.pending
            .insert(token, Pending::Query { attempt, from: to });
        let q = PgQuery {
            epoch: 0,
            pg: self.id,
            interval: self.interval.epoch,
            shape: self.interval.shape(),
        };
        self.act(Action::Request {
            token,
            to,
            req: OutRequest::Query(q),
        });
    }

    /// Asks, best effort, the OSDs that may hold writes nobody in the
    /// chain has: earlier members (named by the answers so far and the
    /// record) and the up set's OSDs outside a `pg_temp` chain, those that
    /// are up and were not asked yet.
    fn ask_prior(&mut self, facts: &dyn Facts, attempt: u64) {
        let up_set = self.interval.up.clone();
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        let prior: BTreeSet<i32> = p
            .peers
            .iter()
            .filter_map(|peer| peer.state.as_ref())
            .flat_map(|s| s.info.last_acting.iter().copied())
            .chain(p.recorded.members.iter().copied())
            .chain(up_set)
            .filter(|o| !p.asked.contains(o) && facts.is_up(*o))
            .collect();
        p.asked.extend(prior.iter().copied());
        p.prior_waiting.extend(prior.iter().copied());
        for o in prior {
            self.query(attempt, o);
        }
    }

    /// An answer to a query (or its failure).
    pub(super) fn query_answered(
        &mut self,
        now: Duration,
        facts: &dyn Facts,
        attempt: u64,
        from: i32,
        result: Result<PgQueryReply, crate::exec::OpError>,
    ) {
        let Some(p) = self.attempt(attempt).filter(|p| p.stage == Stage::Query) else {
            return;
        };
        p.progress = now;
        let member = p.waiting.remove(&from);
        p.prior_waiting.remove(&from);
        match result {
            Ok(reply)
                if reply.interval > self.interval.epoch
                    && facts.map_epoch() >= reply.interval
                    && self.interval.has_shape(&reply.shape) =>
            {
                // A member names this interval by a newer epoch (it skipped
                // maps, e.g. restarted from the newest one): take that name
                // and peer again under it.
                self.adopt_interval(reply.interval, &reply.shape);
                return self.peering_failed("a member names the interval by a newer epoch");
            }
            Ok(reply) => {
                let Some(p) = self.attempt(attempt) else {
                    return;
                };
                p.heard_by.insert(from, heard_at(now, &reply.heard));
                p.peers.push(PeerLog {
                    osd: from,
                    state: reply.state,
                });
                self.ask_prior(facts, attempt);
            }
            Err(e) if member => {
                return self.peering_failed(&format!("osd.{from}: {}", e.message));
            }
            Err(e) => {
                tracing::debug!(pg = %self.id, osd = from, error = %e.message, "earlier member did not answer");
            }
        }
        self.query_progress(now, facts, attempt);
    }

    fn query_progress(&mut self, now: Duration, facts: &dyn Facts, attempt: u64) {
        let acting = self.interval.acting.clone();
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        if !p.waiting.is_empty() || !p.prior_waiting.is_empty() {
            return;
        }
        let checked = peering::check_recorded(&p.peers, &p.recorded);
        let plan = checked.and_then(|()| peering::plan(&acting, &p.peers));
        let plan = match plan {
            Ok(plan) => plan,
            Err(b) => {
                if !self.incomplete {
                    self.incomplete = true;
                    self.act(Action::Report);
                }
                return self.peering_failed(&format!("{b:?}"));
            }
        };
        self.incomplete = false;
        if let Some(temp) = self.temporary_chain(facts, &plan) {
            let Some(p) = self.attempt(attempt) else {
                return;
            };
            p.stage = Stage::PgTemp;
            let token = self.token();
            self.pending.insert(token, Pending::PgTemp { attempt });
            tracing::info!(pg = %self.id, ?temp, acting = ?self.interval.acting, "asking for a pg_temp: members need a backfill");
            self.act(Action::Mon {
                token,
                cmd: MonCommand::PgTemp {
                    pg: self.id.to_string(),
                    osds: temp,
                },
            });
            return;
        }
        let lapse = self.lease_lapse(now, facts, attempt);
        let Some(p) = self.attempt(attempt) else {
            return;
        };
        p.lapse = lapse;
        p.plan = Some(plan);
        self.catch_up_head(now, attempt);
    }

    /// When the chain is the up set but some member cannot catch up from
    /// the log (or the head would have to pull much before serving): the
    /// chain of up-to-date copies that should serve meanwhile (a
    /// `pg_temp`), if one exists and differs from the current chain.
    fn temporary_chain(&self, facts: &dyn Facts, plan: &Plan) -> Option<Vec<i32>> {
        let interval = &self.interval;
        if interval.acting != interval.up {
            return None;
        }
        let me = self.whoami;
        let behind = |m: i32| match plan.catchup.get(&m) {
            Some(Catchup::Backfill) => true,
            Some(Catchup::Objects(o)) => m == me && o.len() > HEAD_PULL_LIMIT,
            None => false,
        };
        if !interval.acting.iter().any(|&m| behind(m)) {
            return None;
        }
        let temp: Vec<i32> = plan
            .usable
            .iter()
            .copied()
            .filter(|&o| !behind(o) && facts.is_up(o))
            .take(interval.size)
            .collect();
        (!temp.is_empty() && temp != interval.acting).then_some(temp)
    }

    /// The monitors took (or refused) the `pg_temp`: either way this
    /// attempt is over; the map that carries it starts a new interval.
    pub(super) fn pg_temp_answered(&mut self, attempt: u64, result: Result<CommandOutput, String>) {
        if self.attempt(attempt).is_none() {
            return;
        }
        match result {
            Ok(_) => self.peering_failed("asked for a pg_temp: members need a backfill"),
            Err(e) => self.peering_failed(&format!("pg_temp: {e}")),
        }
    }

    /// This copy's info and log, for a peering head.
    pub(super) fn log_state(&self) -> PgLogState {
        PgLogState {
            info: self
                .log
                .info(self.write.done(), self.les, &self.last_acting),
            log: self.log.entries().cloned().collect(),
            dups: self.log.dups().copied().collect(),
            missing: self.missing.iter().cloned().collect(),
        }
    }

    /// When activation may go ahead as far as read leases go: members of
    /// earlier chains that did not answer may still serve reads in them
    /// until their lease lapses (`lease::lapse_bound`, from when their
    /// answering chain mates last heard from them). `None`: no wait.
    fn lease_lapse(
        &mut self,
        now: Duration,
        facts: &dyn Facts,
        attempt: u64,
    ) -> Option<(Duration, BTreeSet<i32>)> {
        let p = self.attempt(attempt)?;
        let answered: BTreeSet<i32> = p.peers.iter().map(|p| p.osd).collect();
        let chains = p.earlier_chains();
        let silent: BTreeSet<i32> = chains
            .iter()
            .flatten()
            .copied()
            .filter(|o| !answered.contains(o))
            .collect();
        let lapse = crate::lease::lapse_bound(&silent, &chains, &p.heard_by, facts.lease(), now);
        (lapse > now).then_some((lapse, silent))
    }
}

/// When (on this OSD's clock, `now` being the present) each OSD was last
/// heard from, given how long ago.
fn heard_at(now: Duration, heard: &[shoal_proto::rep::HeardFrom]) -> HashMap<i32, Duration> {
    heard
        .iter()
        .map(|h| (h.osd, now.saturating_sub(Duration::from_millis(h.ms_ago))))
        .collect()
}
