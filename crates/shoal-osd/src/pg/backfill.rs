//! Backfill, at the head of a `pg_temp` chain: each OSD of the up set
//! outside the chain is filled by comparing object lists page by page
//! ([`crate::scan::differences`]) and pushing what differs, then the
//! writes made meanwhile (from the log) until few are left; the target
//! gets the log, and the `pg_temp` is cleared so the chain switches to the
//! up set, which then needs only a short log catch-up. One PG per
//! `max_backfills` slot of the OSD at a time; pushes go through each
//! object's queue (`objects.rs`), so none races a write.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_proto::osd::{MAX_LIST_PAGE, ObjVersion};
use shoal_proto::rep::{BackfillStep, PgBackfill, PgScan, PgScanReply};

use super::Pg;
use super::objects::{Task, Why};
use super::types::{Action, OutRequest, Pending, StoreRead, Timer};
use crate::exec::OpError;

/// Objects compared per page.
const PAGE: usize = 256;
/// Pause before trying a failed step again.
const RETRY: Duration = Duration::from_millis(500);
/// A catch-up round that pushed at most this many objects ends the backfill.
const FINAL_ROUND: usize = 16;
/// Catch-up rounds before giving up (and starting over).
const MAX_ROUNDS: usize = 50;

/// The head's backfill of the current interval.
#[derive(Debug, Default)]
pub(super) struct Backfill {
    /// Targets not yet filled, in order.
    targets: VecDeque<i32>,
    /// The one being filled.
    current: Option<Target>,
    /// Whether the OSD's backfill slot is held.
    slot: bool,
    /// Started and not done.
    running: bool,
}

/// Where the fill of one target stands.
#[derive(Debug)]
struct Target {
    osd: i32,
    /// Everything written up to this version is in place once the
    /// current pushes are.
    since: ObjVersion,
    /// The page being compared: this copy's objects, and the page's end.
    local: Vec<(String, ObjVersion)>,
    /// Where the page starts (exclusive) and ends (inclusive; `None`: the end).
    after: Option<String>,
    end: Option<String>,
    /// The target's objects in the page so far, and its listing cursor.
    remote: Vec<(String, ObjVersion)>,
    cursor: Option<String>,
    /// Pushes in flight.
    in_flight: usize,
    /// In the catch-up rounds (after the scan).
    rounds: Option<usize>,
    /// The last round's pushes are going (they began with the log at this
    /// version); the finish step follows them.
    finishing: Option<ObjVersion>,
    /// The finish step was sent.
    finished: bool,
}

impl Backfill {
    /// Whether the OSD's backfill slot is held.
    pub(super) fn holds_slot(&self) -> bool {
        self.slot
    }

    /// Whether a backfill was started in this interval and has not
    /// cleared its `pg_temp` yet.
    pub(super) fn is_running(&self) -> bool {
        self.running
    }
}

impl Pg {
    /// Head, just active with a `pg_temp` or an up set that differs from
    /// the chain: reserves a backfill slot, then fills the targets.
    pub(super) fn start_backfill(&mut self) {
        let targets: VecDeque<i32> = self
            .interval
            .up
            .iter()
            .copied()
            .filter(|o| !self.interval.acting.contains(o))
            .collect();
        self.backfilling = !targets.is_empty();
        if self.backfilling {
            self.act(Action::Report);
        }
        self.backfill = Backfill {
            targets,
            current: None,
            slot: false,
            running: true,
        };
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending
            .insert(token, Pending::BackfillSlot { interval });
        self.act(Action::Reserve { token });
    }

    /// The OSD granted the backfill slot.
    pub(super) fn backfill_granted(&mut self, interval: u32) {
        if interval != self.interval.epoch {
            self.act(Action::Release);
            return;
        }
        self.backfill.slot = true;
        self.next_backfill_target();
    }

    fn next_backfill_target(&mut self) {
        let Some(osd) = self.backfill.targets.front().copied() else {
            return self.clear_pg_temp();
        };
        self.backfill.current = Some(Target {
            osd,
            since: ObjVersion::default(),
            local: Vec::new(),
            after: None,
            end: None,
            remote: Vec::new(),
            cursor: None,
            in_flight: 0,
            rounds: None,
            finishing: None,
            finished: false,
        });
        self.backfill_step(osd, BackfillStep::Start);
    }

    fn backfill_step(&mut self, target: i32, step: BackfillStep) {
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending
            .insert(token, Pending::BackfillStep { interval, target });
        let req = PgBackfill {
            epoch: 0,
            pg: self.id,
            interval,
            shape: self.interval.shape(),
            step,
        };
        self.act(Action::Request {
            token,
            to: target,
            req: OutRequest::Backfill(req),
        });
    }

    /// A backfill step (start or finish) was answered.
    pub(super) fn backfill_stepped(&mut self, target: i32, result: Result<(), OpError>) {
        let Some(t) = self.backfill.current.as_mut().filter(|t| t.osd == target) else {
            return;
        };
        if let Err(e) = result {
            return self.backfill_failed(&e.message);
        }
        if t.finished {
            // Finished: the next target.
            tracing::info!(pg = %self.id, target, "backfilled");
            self.backfill.current = None;
            self.backfill.targets.pop_front();
            return self.next_backfill_target();
        }
        // The scan reads the store, which may lag the log by writes still
        // being stored: they count as written after the scan began, so the
        // rounds push them. Taking the log's end here lost such a write
        // (the kill test found it).
        t.since = self.write.local_through();
        t.after = None;
        self.scan_local_page();
    }

    fn scan_local_page(&mut self) {
        let Some(t) = self.backfill.current.as_ref() else {
            return;
        };
        let after = t.after.clone();
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending
            .insert(token, Pending::BackfillScan { interval });
        self.act(Action::Scan {
            token,
            after,
            limit: PAGE,
        });
    }

    /// A page of this copy's objects: the target's matching range next.
    pub(super) fn backfill_local_page(&mut self, result: Result<StoreRead, OpError>) {
        let (objects, more) = match result {
            Ok(StoreRead::Scan { objects, more }) => (objects, more),
            Ok(_) => return,
            Err(e) => return self.backfill_failed(&e.message),
        };
        let Some(t) = self.backfill.current.as_mut() else {
            return;
        };
        t.end = if more {
            objects.last().map(|o| o.0.clone())
        } else {
            None
        };
        t.local = objects;
        t.remote.clear();
        t.cursor = t.after.clone();
        self.scan_remote_page();
    }

    fn scan_remote_page(&mut self) {
        let Some(t) = self.backfill.current.as_ref() else {
            return;
        };
        let (to, cursor) = (t.osd, t.cursor.clone());
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending
            .insert(token, Pending::BackfillRemote { interval });
        self.act(Action::Request {
            token,
            to,
            req: OutRequest::Scan(PgScan {
                epoch: 0,
                pg: self.id,
                start_after: cursor,
                limit: MAX_LIST_PAGE.min(PAGE as u32),
            }),
        });
    }

    /// A page of the target's objects.
    pub(super) fn backfill_remote_page(&mut self, result: Result<PgScanReply, OpError>) {
        let reply = match result {
            Ok(r) => r,
            Err(e) => return self.backfill_failed(&e.message),
        };
        let Some(t) = self.backfill.current.as_mut() else {
            return;
        };
        let last = reply.objects.last().map(|o| o.0.clone());
        let mut past_end = false;
        for o in reply.objects {
            if !crate::scan::in_range(&o.0, t.after.as_deref(), t.end.as_deref()) {
                past_end = true;
                break;
            }
            t.remote.push(o);
        }
        if reply.more && !past_end && last.is_some() {
            // A listing must move forward, or a bad peer would keep us here.
            if last <= t.cursor {
                return self.backfill_failed("the target's listing does not move forward");
            }
            t.cursor = last;
            return self.scan_remote_page();
        }
        let differ = crate::scan::differences(&t.local, &t.remote);
        self.backfill_push_all(differ);
    }

    /// Pushes every one of `names` to the current target.
    fn backfill_push_all(&mut self, names: Vec<String>) {
        let Some(t) = self.backfill.current.as_mut() else {
            return;
        };
        let target = t.osd;
        t.in_flight += names.len();
        if names.is_empty() {
            return self.backfill_pushed_all();
        }
        for n in names {
            self.queue_task(&n, Task::Push(Why::Backfill(target)));
        }
    }

    /// A backfill push finished.
    pub(super) fn backfill_copy_done(&mut self, target: i32, result: Result<(), OpError>) {
        let Some(t) = self.backfill.current.as_mut().filter(|t| t.osd == target) else {
            return;
        };
        t.in_flight = t.in_flight.saturating_sub(1);
        if let Err(e) = result {
            return self.backfill_failed(&format!("pushing: {}", e.message));
        }
        if t.in_flight == 0 {
            self.backfill_pushed_all();
        }
    }

    /// The pushes of a page or a round are in place.
    fn backfill_pushed_all(&mut self) {
        let Some(t) = self.backfill.current.as_mut() else {
            return;
        };
        if t.rounds.is_none() && t.end.is_some() {
            t.after = t.end.take();
            return self.scan_local_page();
        }
        if let Some(began) = t.finishing.take() {
            let target = t.osd;
            t.finished = true;
            let step = self.finish_step(began);
            return self.backfill_step(target, step);
        }
        let round = t.rounds.map_or(0, |r| r + 1);
        if round > MAX_ROUNDS {
            return self.backfill_failed("client writes outpace the backfill");
        }
        t.rounds = Some(round);
        let (tail, head) = (self.log.tail(), self.log.head());
        if tail > t.since {
            // Writes trimmed the log past where the scan began: the
            // objects they touched are unknown; compare everything again
            // (unchanged objects cost a listing, not a copy). The listing
            // shows the local store, which may lack writes the log already
            // has: those come again in the next round (with the log's head
            // here, a write ordered but not yet stored was in neither: the
            // simulation found it).
            t.since = self.write.local_through();
            t.rounds = None;
            t.after = None;
            return self.scan_local_page();
        }
        // Everything up to the log's head is in place once these are.
        let written: BTreeSet<String> = self
            .log
            .after(t.since)
            .filter(|e| e.op.changes_object())
            .map(|e| e.object.clone())
            .collect();
        t.since = head;
        if written.len() <= FINAL_ROUND {
            t.finishing = Some(head);
        }
        self.backfill_push_all(written.into_iter().collect());
    }

    /// The finish step of a backfill whose last round began with the log
    /// at `began`: the log as it stands now, but only its done writes (one
    /// still in flight may never be acknowledged, and a log naming it would
    /// make the target's copy look newest while nobody has it), and as
    /// missing every object written since the round began or not done yet
    /// (a pushed copy may or may not have those writes, and must never be
    /// newer than its log, or a retry would be applied to it twice: the
    /// simulation found both).
    fn finish_step(&self, began: ObjVersion) -> BackfillStep {
        let done = self.write.done();
        let log: Vec<_> = self
            .log
            .entries()
            .filter(|e| e.version <= done)
            .cloned()
            .collect();
        let mut info = self.log.info(done, self.les, &self.last_acting);
        // The head's own head when every entry is done (a split child's is
        // past its newest entry), else the newest done entry.
        if self.log.head() > done {
            info.last_update = log.last().map_or(info.log_tail, |e| e.version);
        }
        let missing: BTreeSet<String> = self
            .log
            .after(began.min(done))
            .filter(|e| e.op.changes_object())
            .map(|e| e.object.clone())
            .collect();
        BackfillStep::Finish {
            info,
            log,
            dups: self.log.dups().copied().collect(),
            missing: missing.into_iter().collect(),
        }
    }

    fn backfill_failed(&mut self, why: &str) {
        let Some(t) = self.backfill.current.take() else {
            return;
        };
        tracing::info!(pg = %self.id, target = t.osd, error = why, "backfill step failed; retrying");
        let interval = self.interval.epoch;
        self.act(Action::SetTimer {
            after: RETRY,
            timer: Timer::BackfillRetry { interval },
        });
    }

    /// The pause after a failed backfill step is over: the target again.
    pub(super) fn backfill_retry(&mut self, interval: u32) {
        if interval == self.interval.epoch && self.backfill.slot && self.backfill.current.is_none()
        {
            self.next_backfill_target();
        }
    }

    /// Every target caught up: switch the chain to the up set.
    fn clear_pg_temp(&mut self) {
        let token = self.token();
        let interval = self.interval.epoch;
        self.pending
            .insert(token, Pending::ClearPgTemp { interval });
        self.act(Action::Mon {
            token,
            cmd: MonCommand::PgTemp {
                pg: self.id.to_string(),
                osds: Vec::new(),
            },
        });
    }

    /// The monitors cleared the `pg_temp` (the new map ends this
    /// interval), or refused (tried again after a pause).
    pub(super) fn pg_temp_cleared(&mut self, result: Result<CommandOutput, String>) {
        match result {
            Ok(_) => {
                self.backfill.slot = false;
                self.backfill.running = false;
                self.act(Action::Release);
            }
            Err(e) => {
                tracing::info!(pg = %self.id, error = %e, "cannot clear pg_temp; retrying");
                let interval = self.interval.epoch;
                self.act(Action::SetTimer {
                    after: RETRY,
                    timer: Timer::BackfillRetry { interval },
                });
            }
        }
    }
}
