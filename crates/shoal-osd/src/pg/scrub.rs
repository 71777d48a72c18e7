//! Scrub at the head: page by page (by object name) every chain member
//! describes its copies (version, size, digests; for a deep scrub the
//! data read back through its checksums); objects whose copies differ get
//! a second look through their object's queue (`objects.rs`: no write to
//! them is being resolved or stored) once no write to them is in flight
//! down the chain, and only what still differs then is reported and,
//! asked to, repaired from the authoritative copy ([`crate::scrub::judge`]).
//! One scrub runs at a time; requests that come meanwhile wait their turn.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use shoal_proto::osd::{Inconsistency, MAX_LIST_PAGE, OsdErrorCode, ScrubResult};
use shoal_proto::rep::{PgPull, ScrubEntry, ScrubMapReply, ScrubMapRequest};

use super::Pg;
use super::objects::Task;
use super::types::{Action, ClientAnswer, OutRequest, Pending, Phase, ScrubRequest, StoreRead};
use crate::exec::OpError;
use crate::scrub::{Verdict, judge};

/// Objects compared per page.
const PAGE: usize = 128;

/// The scrub in progress at the head.
#[derive(Debug)]
pub(super) struct Scrub {
    req: ScrubRequest,
    /// The page being compared: after this name, up to `end` (`None`: to
    /// the end), and each member's entries in it so far with its cursor.
    after: Option<String>,
    end: Option<String>,
    maps: BTreeMap<i32, Vec<ScrubEntry>>,
    cursors: BTreeMap<i32, Option<String>>,
    waiting: BTreeSet<i32>,
    objects: u64,
    /// Objects whose copies differed, for a second look.
    suspects: VecDeque<String>,
    /// The second look in progress.
    look: Option<Look>,
    inconsistent: Vec<Inconsistency>,
    left: BTreeSet<String>,
    repaired: u64,
}

/// The second look at one object.
#[derive(Debug)]
struct Look {
    object: String,
    copies: BTreeMap<i32, Option<ScrubEntry>>,
    waiting: BTreeSet<i32>,
    verdict: Option<Verdict>,
    /// Repairs not answered yet, and those that worked.
    repairs: usize,
    fixed: u64,
}

impl Scrub {
    /// What was asked.
    pub(super) fn request(&self) -> &ScrubRequest {
        &self.req
    }
}

impl Pg {
    /// A scrub is asked for: it starts now if this OSD is the active head
    /// and none runs, else it waits for the one running.
    pub(super) fn on_scrub(&mut self, req: ScrubRequest) {
        if self.phase != Phase::Active || self.position() != Some(0) {
            let why = format!("osd.{} is not the active head of {}", self.whoami, self.id);
            if let Some(op) = req.op {
                self.act(Action::Client {
                    op,
                    answer: ClientAnswer::Failed(OpError::new(OsdErrorCode::WrongOsd, why)),
                });
            }
            return;
        }
        if self.scrub.is_some() {
            self.scrub_queue.push_back(req);
            return;
        }
        let only = req.only.clone();
        self.scrub = Some(Scrub {
            req,
            after: None,
            end: None,
            maps: BTreeMap::new(),
            cursors: BTreeMap::new(),
            waiting: BTreeSet::new(),
            objects: 0,
            suspects: VecDeque::new(),
            look: None,
            inconsistent: Vec::new(),
            left: BTreeSet::new(),
            repaired: 0,
        });
        if only.is_empty() {
            self.scrub_page();
        } else {
            if let Some(s) = &mut self.scrub {
                s.objects = only.len() as u64;
                s.suspects = only.into_iter().collect();
            }
            self.next_look();
        }
    }

    /// Asks every member (this one from its store) for the next page.
    fn scrub_page(&mut self) {
        let Some(s) = &mut self.scrub else {
            return;
        };
        s.maps.clear();
        s.end = None;
        let (after, deep) = (s.after.clone(), s.req.deep);
        let members: Vec<i32> = self.interval.acting.clone();
        s.waiting = members.iter().copied().collect();
        s.cursors = members.iter().map(|&m| (m, after.clone())).collect();
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending.insert(token, Pending::ScrubLocal { interval });
        self.act(Action::ScrubRead {
            token,
            after,
            limit: PAGE,
            only: Vec::new(),
            deep,
        });
    }

    /// This copy's page: its last name ends the page for the others.
    pub(super) fn scrub_local_page(&mut self, result: Result<StoreRead, OpError>) {
        let (entries, more) = match result {
            Ok(StoreRead::ScrubMap { entries, more }) => (entries, more),
            Ok(_) => return,
            Err(e) => return self.scrub_failed(&e.message),
        };
        let me = self.whoami;
        let Some(s) = &mut self.scrub else {
            return;
        };
        s.end = if more {
            entries.last().map(|e| e.name.clone())
        } else {
            None
        };
        s.maps.insert(me, entries);
        s.waiting.remove(&me);
        let others: Vec<i32> = s.waiting.iter().copied().collect();
        for m in others {
            self.scrub_remote(m);
        }
        self.scrub_page_progress();
    }

    fn scrub_remote(&mut self, member: i32) {
        let Some(s) = &self.scrub else {
            return;
        };
        let req = ScrubMapRequest {
            epoch: 0,
            pg: self.id,
            deep: s.req.deep,
            start_after: s.cursors.get(&member).cloned().flatten(),
            limit: MAX_LIST_PAGE.min(PAGE as u32),
            only: Vec::new(),
        };
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending
            .insert(token, Pending::ScrubRemote { interval, member });
        self.act(Action::Request {
            token,
            to: member,
            req: OutRequest::ScrubMap(req),
        });
    }

    /// A member's page (or part of it).
    pub(super) fn scrub_remote_page(
        &mut self,
        member: i32,
        result: Result<ScrubMapReply, OpError>,
    ) {
        let reply = match result {
            Ok(ScrubMapReply { error: Some(e), .. }) => {
                return self.scrub_failed(&format!("osd.{member}: {}", e.message));
            }
            Ok(r) => r,
            Err(e) => return self.scrub_failed(&format!("osd.{member}: {}", e.message)),
        };
        let Some(s) = &mut self.scrub else {
            return;
        };
        let last = reply.entries.last().map(|e| e.name.clone());
        let mut past_end = false;
        let map = s.maps.entry(member).or_default();
        for e in reply.entries {
            if !crate::scan::in_range(&e.name, s.after.as_deref(), s.end.as_deref()) {
                past_end = true;
                break;
            }
            map.push(e);
        }
        if reply.more && !past_end && last.is_some() {
            let cursor = s.cursors.get(&member).cloned().flatten();
            // A listing must move forward, or a bad peer would keep us here.
            if last <= cursor {
                return self.scrub_failed(&format!("osd.{member}'s listing does not move forward"));
            }
            s.cursors.insert(member, last);
            return self.scrub_remote(member);
        }
        s.waiting.remove(&member);
        self.scrub_page_progress();
    }

    /// Every member's page is in: judge it, then the next page or the
    /// second looks.
    fn scrub_page_progress(&mut self) {
        let acting = self.interval.acting.clone();
        let Some(s) = &mut self.scrub else {
            return;
        };
        if !s.waiting.is_empty() {
            return;
        }
        let names: BTreeSet<String> = s
            .maps
            .values()
            .flat_map(|es| es.iter().map(|e| e.name.clone()))
            .collect();
        s.objects += names.len() as u64;
        for name in names {
            let copies = copies_of(&s.maps, &acting, &name);
            let refs: Vec<(i32, Option<&ScrubEntry>)> =
                copies.iter().map(|(m, e)| (*m, e.as_ref())).collect();
            if judge(&name, &refs).is_some() {
                s.suspects.push_back(name);
            }
        }
        match s.end.clone() {
            Some(end) => {
                s.after = Some(end);
                self.scrub_page();
            }
            None => self.next_look(),
        }
    }

    /// The next suspect gets its second look through its object's queue;
    /// none left: the scrub is over.
    fn next_look(&mut self) {
        let Some(s) = &mut self.scrub else {
            return;
        };
        match s.suspects.pop_front() {
            Some(name) => self.queue_task(&name.clone(), Task::Examine),
            None => self.scrub_done(),
        }
    }

    /// The object's turn came (it is held): look once no write to it is
    /// in flight down the chain.
    pub(super) fn start_look(&mut self, object: &str) {
        if self.write.is_uncommitted(object) {
            // Looked at again when the write is done (`write.rs`).
            self.at_rest_wait = Some(object.to_string());
            return;
        }
        let acting = self.interval.acting.clone();
        let Some(s) = &mut self.scrub else {
            return self.next_task(object);
        };
        let deep = s.req.deep;
        s.look = Some(Look {
            object: object.to_string(),
            copies: BTreeMap::new(),
            waiting: acting.iter().copied().collect(),
            verdict: None,
            repairs: 0,
            fixed: 0,
        });
        let only = vec![object.to_string()];
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending.insert(token, Pending::LookLocal { interval });
        self.act(Action::ScrubRead {
            token,
            after: None,
            limit: 1,
            only: only.clone(),
            deep,
        });
        let me = self.whoami;
        for &m in acting.iter().filter(|&&m| m != me) {
            let req = ScrubMapRequest {
                epoch: 0,
                pg: self.id,
                deep,
                start_after: None,
                limit: 1,
                only: only.clone(),
            };
            let token = self.token();
            self.pending.insert(
                token,
                Pending::LookRemote {
                    interval,
                    member: m,
                },
            );
            self.act(Action::Request {
                token,
                to: m,
                req: OutRequest::ScrubMap(req),
            });
        }
    }

    /// One member's entry for the object under a second look.
    pub(super) fn look_answered(&mut self, member: i32, result: Result<Vec<ScrubEntry>, OpError>) {
        let entries = match result {
            Ok(e) => e,
            Err(e) => return self.scrub_failed(&format!("osd.{member}: {}", e.message)),
        };
        let acting = self.interval.acting.clone();
        let repair = self.scrub.as_ref().is_some_and(|s| s.req.repair);
        let Some(look) = self.scrub.as_mut().and_then(|s| s.look.as_mut()) else {
            return;
        };
        let entry = entries.into_iter().find(|e| e.name == look.object);
        look.copies.insert(member, entry);
        look.waiting.remove(&member);
        if !look.waiting.is_empty() {
            return;
        }
        let copies: Vec<(i32, Option<&ScrubEntry>)> = acting
            .iter()
            .map(|&m| (m, look.copies.get(&m).and_then(Option::as_ref)))
            .collect();
        let object = look.object.clone();
        let Some(v) = judge(&object, &copies) else {
            // They agree now (a write was in flight at the first look).
            self.inconsistent_resolved(&object);
            return self.look_done(&object);
        };
        look.verdict = Some(v.clone());
        if !repair || v.good.is_empty() {
            return self.look_done(&object);
        }
        self.repair(&object, &v);
    }

    /// Repairs `object`'s bad copies from a good one: this copy first
    /// (pulled as a repair), then the others (pushed as repairs).
    fn repair(&mut self, object: &str, v: &Verdict) {
        let me = self.whoami;
        let interval = self.interval.epoch;
        if v.bad.contains(&me) {
            let token = self.token();
            self.pending.insert(token, Pending::RepairPull { interval });
            if let Some(look) = self.scrub.as_mut().and_then(|s| s.look.as_mut()) {
                look.repairs += 1;
            }
            self.act(Action::Request {
                token,
                to: v.good[0],
                req: OutRequest::Pull(PgPull {
                    epoch: 0,
                    pg: self.id,
                    interval,
                    object: object.to_string(),
                }),
            });
            return;
        }
        self.push_repairs(object, v);
    }

    fn push_repairs(&mut self, object: &str, v: &Verdict) {
        let me = self.whoami;
        let interval = self.interval.epoch;
        let bad: Vec<i32> = v.bad.iter().copied().filter(|&b| b != me).collect();
        if let Some(look) = self.scrub.as_mut().and_then(|s| s.look.as_mut()) {
            look.repairs += bad.len();
        }
        if bad.is_empty() {
            return self.look_done(object);
        }
        for b in bad {
            let token = self.token();
            self.pending.insert(token, Pending::RepairPush { interval });
            self.act(Action::Request {
                token,
                to: b,
                req: OutRequest::Push {
                    interval,
                    object: object.to_string(),
                    repair: true,
                    background: false,
                },
            });
        }
    }

    /// A repair was answered (this copy's own: stored).
    pub(super) fn repaired(&mut self, own: bool, result: Result<(), OpError>) {
        let Some(look) = self.scrub.as_mut().and_then(|s| s.look.as_mut()) else {
            return;
        };
        look.repairs = look.repairs.saturating_sub(1);
        if result.is_ok() {
            look.fixed += 1;
        }
        let object = look.object.clone();
        if own {
            // The good copy is here now: the others follow from it.
            let v = look.verdict.clone();
            if let (Ok(()), Some(v)) = (result, v) {
                return self.push_repairs(&object, &v);
            }
        }
        if look.repairs == 0 {
            self.look_done(&object);
        }
    }

    fn inconsistent_resolved(&mut self, object: &str) {
        self.inconsistent.remove(object);
    }

    /// The second look at `object` is over: record it, free the object,
    /// and take the next suspect.
    fn look_done(&mut self, object: &str) {
        if let Some(s) = &mut self.scrub
            && let Some(look) = s.look.take()
            && let Some(v) = look.verdict
        {
            s.repaired += look.fixed;
            if look.fixed < v.bad.len() as u64 {
                s.left.insert(v.object.clone());
            } else {
                self.inconsistent.remove(&v.object);
            }
            s.inconsistent.push(Inconsistency {
                object: v.object,
                bad: v.bad,
                good: v.good,
                why: v.why,
            });
        }
        self.next_task(object);
        self.next_look();
    }

    fn scrub_failed(&mut self, why: &str) {
        let Some(s) = self.scrub.take() else {
            return;
        };
        tracing::info!(pg = %self.id, error = why, "scrub did not finish");
        if let Some(op) = s.req.op {
            self.act(Action::Client {
                op,
                answer: ClientAnswer::Failed(OpError::new(
                    OsdErrorCode::Unavailable,
                    why.to_string(),
                )),
            });
        }
        self.next_scrub();
    }

    fn scrub_done(&mut self) {
        let Some(s) = self.scrub.take() else {
            return;
        };
        if s.req.only.is_empty() {
            self.inconsistent = s.left.clone();
        }
        tracing::info!(pg = %self.id, deep = s.req.deep, objects = s.objects, inconsistent = s.inconsistent.len(), repaired = s.repaired, "scrubbed");
        let result = ScrubResult {
            pgid: self.id.to_string(),
            deep: s.req.deep,
            acting: self.interval.acting.clone(),
            objects: s.objects,
            inconsistent: s.inconsistent,
            repaired: s.repaired,
        };
        self.act(Action::Scrubbed {
            whole: s.req.only.is_empty(),
            deep: s.req.deep,
        });
        if let Some(op) = s.req.op {
            self.act(Action::Client {
                op,
                answer: ClientAnswer::Scrubbed(result),
            });
        }
        self.act(Action::Report);
        self.next_scrub();
    }

    fn next_scrub(&mut self) {
        if let Some(req) = self.scrub_queue.pop_front() {
            self.on_scrub(req);
        }
    }
}

/// Each member's entry for `name` (head first), from the page maps.
fn copies_of(
    maps: &BTreeMap<i32, Vec<ScrubEntry>>,
    acting: &[i32],
    name: &str,
) -> Vec<(i32, Option<ScrubEntry>)> {
    acting
        .iter()
        .map(|&m| {
            let e = maps.get(&m).and_then(|es| {
                es.binary_search_by(|e| e.name.as_str().cmp(name))
                    .ok()
                    .map(|i| es[i].clone())
            });
            (m, e)
        })
        .collect()
}

impl Pg {
    /// The good copy pulled over this one's bad copy: stored as a repair.
    pub(super) fn repair_pulled(&mut self, result: Result<super::types::PeerAnswer, OpError>) {
        let pushed = result.and_then(|a| match a {
            super::types::PeerAnswer::Pulled { push, payload } => Ok((push, payload)),
            other => Err(crate::exec::internal(format!(
                "expected an object, got {other:?}"
            ))),
        });
        let (push, payload) = match pushed {
            Ok(p) => p,
            Err(e) => return self.repaired(true, Err(e)),
        };
        let push = shoal_proto::rep::PgPush {
            interval: self.interval.epoch,
            repair: true,
            ..push
        };
        match self.push_txn(push, &payload) {
            Ok(Some((_, txn))) => {
                self.submit(txn, super::types::TxnDone::Repaired);
            }
            Ok(None) => self.repaired(true, Ok(())),
            Err(e) => self.repaired(true, Err(e)),
        }
    }
}
