//! The head's order per object: client writes, recovery pushes and
//! backfill pushes of one object queue up and run one at a time. A task
//! holds its object from the moment it starts until it is over (a write:
//! until it is durable here, so the next one sees it; a push: until every
//! receiver answered, so no write is half applied while its state is
//! copied). A write to an object some member lacks first pushes it to
//! them, so the write never reaches a member with a stale or absent copy.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::Pg;
use super::types::{Action, ClientAnswer, ClientOp, OutRequest, Pending};
use crate::exec::{OpError, unavailable};

/// One thing to do with one object at the head.
#[derive(Debug)]
pub(super) enum Task {
    /// A client write.
    Write(ClientOp),
    /// A push of the object's whole state to some OSDs.
    Push(Why),
    /// Scrub's second look at the object.
    Examine,
}

/// Why an object is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// Recovery while active: to the members that lack it.
    Recovery,
    /// Before a client write: to the members that lack it.
    BeforeWrite,
    /// To a backfill target.
    Backfill(i32),
}

/// The head's per-object queues.
#[derive(Debug, Default)]
pub(super) struct Objects {
    /// Each object's tasks waiting their turn, in arrival order.
    queues: HashMap<String, VecDeque<Task>>,
    /// Objects whose task is running.
    held: HashSet<String>,
    /// Objects being pushed: the receivers still to answer, why, and the
    /// first failure.
    pushing: HashMap<String, (BTreeSet<i32>, Why, Option<OpError>)>,
}

impl Objects {
    /// Every client op still waiting (their answers are lost with the
    /// interval: the clients retry).
    pub(super) fn abandoned(&mut self) -> Vec<super::types::OpId> {
        self.queues
            .drain()
            .flat_map(|(_, q)| q.into_iter())
            .filter_map(|t| match t {
                Task::Write(op) => Some(op.op),
                Task::Push(_) | Task::Examine => None,
            })
            .collect()
    }

    /// Whether a task of `object` is running.
    pub(super) fn is_held(&self, object: &str) -> bool {
        self.held.contains(object)
    }

    /// The client op at the front of `object`'s queue with handle `id`.
    pub(super) fn front_write(&self, object: &str) -> Option<&ClientOp> {
        match self.queues.get(object)?.front()? {
            Task::Write(op) => Some(op),
            Task::Push(_) | Task::Examine => None,
        }
    }

    /// Takes `object`'s front task off its queue.
    pub(super) fn pop(&mut self, object: &str) -> Option<Task> {
        let q = self.queues.get_mut(object)?;
        let t = q.pop_front();
        if q.is_empty() {
            self.queues.remove(object);
        }
        t
    }
}

impl Pg {
    /// Queues a task for `object`; it starts at once if the object is free.
    pub(super) fn queue_task(&mut self, object: &str, task: Task) {
        self.objects_q
            .queues
            .entry(object.to_string())
            .or_default()
            .push_back(task);
        if !self.objects_q.is_held(object) {
            self.next_task(object);
        }
    }

    /// `object` is free: starts its next task.
    pub(super) fn next_task(&mut self, object: &str) {
        self.objects_q.held.remove(object);
        loop {
            let front = match self.objects_q.queues.get(object).and_then(|q| q.front()) {
                None => {
                    self.objects_q.queues.remove(object);
                    return;
                }
                Some(Task::Examine) => {
                    self.objects_q.pop(object);
                    self.objects_q.held.insert(object.to_string());
                    return self.start_look(object);
                }
                Some(Task::Push(why)) => Some(*why),
                Some(Task::Write(_)) => None,
            };
            match front {
                Some(why) => {
                    self.objects_q.pop(object);
                    if self.start_push(object, why) {
                        return;
                    }
                }
                None => {
                    self.objects_q.held.insert(object.to_string());
                    // A member that lacks the object gets it before the
                    // write passes it, and before a retry of a write the
                    // log already has is answered (that write may have
                    // reached only some members before the interval
                    // changed: it is acknowledged once every member has
                    // the object; the simulation found it).
                    if self.start_push(object, Why::BeforeWrite) || self.write_front_ready(object) {
                        return;
                    }
                }
            }
        }
    }

    /// The front write of `object` (held, every member has the object):
    /// a retry the log remembers is answered (false: the object is free
    /// again), a new write asks for the object's view (true).
    fn write_front_ready(&mut self, object: &str) -> bool {
        let Some(op) = self.objects_q.front_write(object) else {
            return false;
        };
        let (id, reqid) = (op.op, op.reqid);
        match self.log.find(reqid) {
            Some(v) => {
                // Answered when its write is done, never applied again.
                self.objects_q.pop(object);
                self.objects_q.held.remove(object);
                self.await_version(id, v);
                false
            }
            None => {
                self.load_view(object);
                true
            }
        }
    }

    /// Pushes `object` for `why`; returns whether anything was sent (the
    /// object is then held until every receiver answered).
    fn start_push(&mut self, object: &str, why: Why) -> bool {
        let to: BTreeSet<i32> = match why {
            Why::Recovery | Why::BeforeWrite => self.recovery.take(object),
            Why::Backfill(t) => [t].into(),
        };
        if to.is_empty() {
            if why == Why::Recovery {
                self.recovery.release(object);
                self.recovery_object_done(object, Ok(()));
            }
            return false;
        }
        self.objects_q.held.insert(object.to_string());
        self.objects_q
            .pushing
            .insert(object.to_string(), (to.clone(), why, None));
        let interval = self.interval.epoch;
        for m in to {
            let token = self.token();
            self.pending.insert(
                token,
                Pending::ObjectPush {
                    interval,
                    object: object.to_string(),
                    member: m,
                },
            );
            self.act(Action::Request {
                token,
                to: m,
                req: OutRequest::Push {
                    interval,
                    object: object.to_string(),
                    repair: false,
                    // A client waits only for a push before its write.
                    background: why != Why::BeforeWrite,
                },
            });
        }
        true
    }

    /// A receiver answered a push of `object`.
    pub(super) fn object_pushed(
        &mut self,
        object: String,
        member: i32,
        result: Result<(), OpError>,
    ) {
        let Some((waiting, why, failed)) = self.objects_q.pushing.get_mut(&object) else {
            return;
        };
        waiting.remove(&member);
        match result {
            Ok(()) if *why != Why::Backfill(member) => self.recovery.recovered(&object, member),
            Ok(()) => {}
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
        if !waiting.is_empty() {
            return;
        }
        let Some((_, why, failed)) = self.objects_q.pushing.remove(&object) else {
            return;
        };
        let result = failed.map_or(Ok(()), Err);
        match why {
            Why::Recovery => {
                self.recovery.release(&object);
                self.recovery_object_done(&object, result);
            }
            Why::BeforeWrite => {
                self.recovery.release(&object);
                if let Err(e) = result {
                    if let Some(super::objects::Task::Write(op)) = self.objects_q.pop(&object) {
                        let why = format!("recovering {object}: {}", e.message);
                        self.act(Action::Client {
                            op: op.op,
                            answer: ClientAnswer::Failed(unavailable(why)),
                        });
                    }
                } else if self.write_front_ready(&object) {
                    // The write goes on, still holding the object.
                    return;
                }
            }
            Why::Backfill(target) => self.backfill_copy_done(target, result),
        }
        self.next_task(&object);
    }
}
