//! The shell around the PG state machines (`pg::Pg`): the OSD's PGs
//! are sharded over a few tasks (one per core) by a hash of the PG id.
//! Each shard task owns its PGs' machines outright (no locks), takes their
//! events from one channel, runs [`pg::Pg::handle`] and executes the
//! actions: store transactions go to the store in order and their
//! completions come back in that order, store reads run on the blocking
//! threads, requests, links, monitor commands, probes and reservations run
//! as tasks (`effects.rs`, `links.rs`) that send their outcome back as an
//! event, and timers wait in the shard's own queue.
//!
//! Everything outside reaches a PG through [`Shards`]: the request and
//! stream handlers (client ops, peer requests, replicated writes), the map
//! follower (new intervals), and the OSD's periodic tasks, which read or
//! poke the PGs with [`Shards::visit`].

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_proto::osd::{ObjVersion, OsdErrorCode, PgRef};
use shoal_proto::rep::RepOp;
use tokio::sync::{mpsc, oneshot};

use crate::context::Osd;
use crate::exec::{self, OpError, unavailable};
use crate::facts::OsdFacts;
use crate::links::Links;
use crate::pg::{
    self, Action, ClientAnswer, ClientOp, Event, Interval, Loaded, OpId, PeerReply, PeerRequest,
    ReplyTo, ScrubRequest, Token,
};

/// A client's request for a PG, before the shard names it.
#[derive(Debug)]
pub enum ClientRequest {
    /// An object op.
    Op(ClientOp),
    /// A page of the PG's objects, for a client with map `epoch`.
    List {
        /// The client's map epoch.
        epoch: u32,
    },
    /// A scrub (and repair) of the PG or of some objects.
    Scrub(ScrubRequest),
}

/// The answer to a peer's request.
pub type PeerResult = Result<PeerReply, OpError>;

/// A store transaction's durability, on its way back to its PG.
type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = shoal_store::Result<()>> + Send>>;

/// What a shard task is told.
pub(crate) enum Msg {
    /// A PG's copy, loaded from the store, joins the shard.
    Open { pg: PgRef, loaded: Loaded },
    /// An event for a PG.
    Event { pg: PgRef, event: Event },
    /// A client request; answered once the machine answers.
    Client {
        pg: PgRef,
        req: ClientRequest,
        answer: oneshot::Sender<ClientAnswer>,
    },
    /// A peer's request; answered once the machine answers.
    Peer {
        pg: PgRef,
        from: i32,
        req: PeerRequest,
        reply: oneshot::Sender<PeerResult>,
    },
    /// A replicated write; `stream` is stopped if the PG refuses it.
    Rep {
        from: i32,
        rep: RepOp,
        payload: Bytes,
        stream: Arc<StreamStop>,
    },
    /// The next member acknowledged writes up to `version`.
    RepAck {
        pg: PgRef,
        from: i32,
        interval: u32,
        version: ObjVersion,
    },
    /// Runs on the shard task with its PGs.
    Visit(Box<dyn FnOnce(&mut Shard) + Send>),
}

/// The OSD's shard tasks (stopped, with every task they started, when
/// this handle is dropped).
pub struct Shards {
    txs: Vec<mpsc::UnboundedSender<Msg>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shards {
    /// Starts `n` shard tasks for `osd`.
    pub fn start(osd: Arc<Osd>, n: usize) -> Shards {
        let mut tasks = Vec::new();
        let txs = (0..n.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tasks.push(tokio::spawn(run(osd.clone(), tx.clone(), rx)).abort_handle());
                tx
            })
            .collect();
        Shards { txs, tasks }
    }

    /// Stops the shard tasks: their PGs' machines, links and requests go
    /// with them (store transactions already submitted still land).
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    fn shard(&self, pg: PgRef) -> &mpsc::UnboundedSender<Msg> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pg.hash(&mut h);
        &self.txs[(h.finish() % self.txs.len() as u64) as usize]
    }

    pub(crate) fn send(&self, pg: PgRef, msg: Msg) {
        // A closed shard means the OSD is stopping: the sender's oneshot
        // (if any) is dropped with the message and its waiter gives up.
        let _ = self.shard(pg).send(msg);
    }

    /// Adds PG `pg`'s copy (its records as loaded).
    pub fn open(&self, pg: PgRef, loaded: Loaded) {
        self.send(pg, Msg::Open { pg, loaded });
    }

    /// Gives PG `pg` its interval in a newly installed map.
    pub fn interval(&self, pg: PgRef, interval: Interval) {
        self.event(pg, Event::Interval(interval));
    }

    /// Feeds PG `pg` an event.
    pub fn event(&self, pg: PgRef, event: Event) {
        self.send(pg, Msg::Event { pg, event });
    }

    /// A client request for PG `pg`, answered by its machine.
    pub async fn client(&self, pg: PgRef, req: ClientRequest) -> Result<ClientAnswer, OpError> {
        let (answer, rx) = oneshot::channel();
        self.send(pg, Msg::Client { pg, req, answer });
        rx.await
            .map_err(|_| unavailable("the PG went away from this OSD"))
    }

    /// A peer's request for PG `pg`, answered by its machine.
    pub async fn peer(&self, pg: PgRef, from: i32, req: PeerRequest) -> PeerResult {
        let (reply, rx) = oneshot::channel();
        self.send(
            pg,
            Msg::Peer {
                pg,
                from,
                req,
                reply,
            },
        );
        rx.await
            .map_err(|_| unavailable("the PG went away from this OSD"))?
    }

    /// Runs `f` on the shard of PG `pg` and returns what it returns.
    pub async fn visit<T: Send + 'static>(
        &self,
        pg: PgRef,
        f: impl FnOnce(&mut Shard) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job = move |s: &mut Shard| {
            let _ = tx.send(f(s));
        };
        self.send(pg, Msg::Visit(Box::new(job)));
        rx.await.ok()
    }

    /// What the beacon reports of each PG copy: the state of those this
    /// OSD (`me`) heads, `None` for the others.
    pub async fn pg_stats(&self, me: i32) -> Vec<Option<shoal_proto::report::PgStat>> {
        self.visit_all(move |s| {
            s.pgs
                .values()
                .map(|slot| {
                    let pg = &slot.pg;
                    let (interval, phase) = pg.status();
                    let headed = phase != pg::Phase::Stray && interval.acting.first() == Some(&me);
                    headed.then(|| shoal_proto::report::PgStat {
                        pool: pg.id().pool,
                        seed: pg.id().seed,
                        interval_epoch: interval.epoch,
                        state: pg.state(),
                        objects: pg.objects(),
                        missing: pg.missing_copies(),
                    })
                })
                .collect()
        })
        .await
    }

    /// Runs `f` on every shard and gathers what it returns.
    pub async fn visit_all<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Shard) -> Vec<T> + Send + Sync + 'static,
    ) -> Vec<T> {
        let f = Arc::new(f);
        let mut waits = Vec::with_capacity(self.txs.len());
        for tx in &self.txs {
            let (done, rx) = oneshot::channel();
            let f = f.clone();
            let job = move |s: &mut Shard| {
                let _ = done.send(f(s));
            };
            let _ = tx.send(Msg::Visit(Box::new(job)));
            waits.push(rx);
        }
        let mut out = Vec::new();
        for rx in waits {
            out.extend(rx.await.unwrap_or_default());
        }
        out
    }
}

/// The stop of one replication stream: set when its PG refuses a write
/// that came on it (the sender re-sends from its oldest unacknowledged
/// write on a new stream). The stream's handler does not wait for each
/// write's verdict, so writes keep flowing while the shard works.
#[derive(Debug, Default)]
pub struct StreamStop {
    stopped: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl StreamStop {
    /// Stops the stream.
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }

    /// Resolves once the stream is stopped.
    pub async fn stopped(&self) {
        while !self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            self.notify.notified().await;
        }
    }
}

/// One PG on its shard: its machine and what the shell keeps for it.
pub struct Slot {
    /// The state machine.
    pub pg: pg::Pg,
    /// The chain links of its current interval.
    links: Links,
    /// When its last scrub and deep scrub of the whole PG finished (or the
    /// copy was opened).
    pub scrubbed: (Instant, Instant),
    /// Gives back the backfill slot it holds.
    slot: Option<oneshot::Sender<()>>,
    /// Its requests, monitor commands, probes, lease renewals and slot
    /// reservation in flight (aborted when the PG goes).
    tasks: tokio::task::JoinSet<()>,
}

/// A shard task's state: its PGs and the ways back to whoever waits.
pub struct Shard {
    osd: Arc<Osd>,
    me: mpsc::UnboundedSender<Msg>,
    /// The PGs, by id.
    pub pgs: HashMap<PgRef, Slot>,
    clients: HashMap<OpId, oneshot::Sender<ClientAnswer>>,
    replies: HashMap<ReplyTo, oneshot::Sender<PeerResult>>,
    next_id: u64,
    timers: BTreeMap<(Instant, u64), (PgRef, pg::Timer)>,
    durable: mpsc::UnboundedSender<(PgRef, Token, Durable)>,
    /// The shard's own helper (store completions in order).
    _helper: tokio::task::JoinSet<()>,
    start: Instant,
    /// A scheduled scrub in progress here (at most one per shard).
    pub scheduled_scrub: Option<(PgRef, Instant)>,
}

async fn run(osd: Arc<Osd>, me: mpsc::UnboundedSender<Msg>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let (durable, durable_rx) = mpsc::unbounded_channel();
    let mut helper = tokio::task::JoinSet::new();
    helper.spawn(deliver_durable(me.clone(), durable_rx));
    let mut shard = Shard {
        osd,
        me,
        pgs: HashMap::new(),
        clients: HashMap::new(),
        replies: HashMap::new(),
        next_id: 1,
        timers: BTreeMap::new(),
        durable,
        _helper: helper,
        start: Instant::now(),
        scheduled_scrub: None,
    };
    // One sleep for the earliest timer, moved only when that changes
    // (a new sleep per message would register a timer per message).
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    loop {
        let next_timer = shard.timers.keys().next().map(|(at, _)| *at);
        if next_timer != armed {
            if let Some(at) = next_timer {
                sleep.as_mut().reset(at.into());
            }
            armed = next_timer;
        }
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => {
                    shard.take(m);
                    // Whatever else arrived meanwhile, in the same turn.
                    for _ in 0..BATCH {
                        match rx.try_recv() {
                            Ok(m) => shard.take(m),
                            Err(_) => break,
                        }
                    }
                }
                None => return,
            },
            _ = &mut sleep, if armed.is_some() => {
                armed = None;
                shard.fire_timers();
            }
        }
    }
}

/// Messages a shard takes in one turn before it looks at its timers again.
const BATCH: usize = 64;

/// The start of a value's debug form (for trace logs: writes carry data).
fn brief(v: &impl std::fmt::Debug) -> String {
    let mut s = format!("{v:?}");
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Waits for store transactions in the order they were submitted and
/// tells their PGs, in that order.
async fn deliver_durable(
    me: mpsc::UnboundedSender<Msg>,
    mut rx: mpsc::UnboundedReceiver<(PgRef, Token, Durable)>,
) {
    while let Some((pg, token, fut)) = rx.recv().await {
        let result = fut.await.map_err(|e| exec::store_error(&e));
        let event = Event::Stored { token, result };
        if me.send(Msg::Event { pg, event }).is_err() {
            return;
        }
    }
}

impl Shard {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Open { pg, loaded } => self.open(pg, loaded),
            Msg::Event { pg, event } => {
                self.feed(pg, event);
            }
            Msg::Client { pg, req, answer } => self.client(pg, req, answer),
            Msg::Peer {
                pg,
                from,
                req,
                reply,
            } => self.peer(pg, from, req, reply),
            Msg::Rep {
                from,
                rep,
                payload,
                stream,
            } => {
                let pg = rep.pg;
                let ok =
                    self.pgs.contains_key(&pg) && !self.feed(pg, Event::Rep { from, rep, payload });
                if !ok {
                    stream.stop();
                }
            }
            Msg::RepAck {
                pg,
                from,
                interval,
                version,
            } => {
                if let Some(slot) = self.pgs.get_mut(&pg) {
                    slot.links.acked(from, interval, version);
                }
                let _ = self.feed(
                    pg,
                    Event::RepAck {
                        from,
                        interval,
                        version,
                    },
                );
            }
            Msg::Visit(f) => f(self),
        }
    }

    fn open(&mut self, pg: PgRef, loaded: Loaded) {
        if self.pgs.contains_key(&pg) {
            return;
        }
        let cfg = pg::PgConfig {
            log_limits: self.osd.opts.log_limits,
            chunk_size: self.osd.store.chunk_size(),
            stall: self.osd.opts.peer_timeout * 3,
            recovery_active: self.osd.throttle.limits().max_active,
            planted: Default::default(),
        };
        let now = Instant::now();
        self.pgs.insert(
            pg,
            Slot {
                pg: pg::Pg::new(pg, self.osd.id, cfg, loaded),
                links: Links::new(pg),
                scrubbed: (now, now),
                slot: None,
                tasks: tokio::task::JoinSet::new(),
            },
        );
    }

    /// Removes PG `pg` from the shard if `keep` says it may go; whoever
    /// waits on it is told it went away.
    pub fn remove_if(&mut self, pg: PgRef, may_go: impl FnOnce(&pg::Pg) -> bool) -> bool {
        if !self.pgs.get(&pg).is_some_and(|s| may_go(&s.pg)) {
            return false;
        }
        self.pgs.remove(&pg);
        self.timers.retain(|_, (p, _)| *p != pg);
        true
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn client(&mut self, pg: PgRef, req: ClientRequest, answer: oneshot::Sender<ClientAnswer>) {
        if !self.pgs.contains_key(&pg) {
            let epoch = match &req {
                ClientRequest::Op(op) => op.epoch,
                ClientRequest::List { epoch } => *epoch,
                ClientRequest::Scrub(_) => 0,
            };
            let _ = answer.send(ClientAnswer::Failed(self.no_pg(epoch)));
            return;
        }
        let op = OpId(self.next_id());
        self.clients.insert(op, answer);
        let event = match req {
            ClientRequest::Op(c) => Event::Client(ClientOp { op, ..c }),
            ClientRequest::List { epoch } => Event::List { op, epoch },
            ClientRequest::Scrub(s) => Event::Scrub(ScrubRequest { op: Some(op), ..s }),
        };
        self.feed(pg, event);
    }

    /// The refusal of a request for a PG this OSD has no copy of.
    fn no_pg(&self, epoch: u32) -> OpError {
        let mine = self.osd.map().epoch();
        if epoch > mine {
            return OpError::new(
                OsdErrorCode::OsdBehind,
                format!("this OSD has epoch {mine}, the request {epoch}"),
            );
        }
        OpError::new(OsdErrorCode::WrongOsd, "this OSD does not have the PG")
    }

    /// Whether a PG missing here may still appear for a query of
    /// `interval`: the OSD has not applied that epoch to its PGs, or is
    /// changing them now (a split closes a parent and opens its children).
    /// Such a copy is not known to be absent, so it must not say so.
    fn pgs_changing(&self, interval: u32) -> bool {
        interval > *self.osd.pgs_epoch.borrow() || self.osd.pg_lifecycle.try_lock().is_err()
    }

    fn peer(&mut self, pg: PgRef, from: i32, req: PeerRequest, reply: oneshot::Sender<PeerResult>) {
        if !self.pgs.contains_key(&pg) {
            let answer = match req {
                PeerRequest::Query(q) if self.pgs_changing(q.interval) => Err(OpError::new(
                    OsdErrorCode::OsdBehind,
                    format!(
                        "this OSD has not applied epoch {} to its PGs yet",
                        q.interval
                    ),
                )),
                // A copy that does not exist has nothing to offer.
                PeerRequest::Query(_) => {
                    Ok(PeerReply::Query(Box::new(shoal_proto::rep::PgQueryReply {
                        epoch: self.osd.map().epoch(),
                        state: None,
                        clean: false,
                        heard: Vec::new(),
                        interval: 0,
                        shape: Default::default(),
                    })))
                }
                _ => Err(OpError::new(
                    OsdErrorCode::WrongOsd,
                    "no such PG here (yet)",
                )),
            };
            let _ = reply.send(answer);
            return;
        }
        let to = ReplyTo(self.next_id());
        self.replies.insert(to, reply);
        self.feed(
            pg,
            Event::Request {
                from,
                reply: to,
                req,
            },
        );
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (pg, timer) = entry.remove();
            let _ = self.feed(pg, Event::Timer(timer));
        }
    }

    /// Feeds PG `pg` one event and executes what it asks; returns whether
    /// it refused the stream of a replicated write.
    pub fn feed(&mut self, pg: PgRef, event: Event) -> bool {
        let map = self.osd.map();
        let facts = OsdFacts::new(&self.osd, &map);
        let now = self.start.elapsed();
        let Some(slot) = self.pgs.get_mut(&pg) else {
            return false;
        };
        tracing::trace!(%pg, event = %brief(&event), "event");
        slot.pg.handle(now, &facts, event);
        let actions: Vec<Action> = slot.pg.actions().collect();
        for a in &actions {
            tracing::trace!(%pg, action = %brief(a), "action");
        }
        let interval = slot.pg.status().0.epoch;
        slot.links.keep_only(interval);
        while slot.tasks.try_join_next().is_some() {}
        let mut refused = false;
        for a in actions {
            refused |= matches!(a, Action::RefuseStream { .. });
            self.execute(pg, a);
        }
        refused
    }

    fn execute(&mut self, pg: PgRef, action: Action) {
        let osd = &self.osd;
        let coll = crate::pglog::collection(pg);
        match action {
            Action::Submit { token, txn } => {
                let fut = Box::pin(osd.store.submit(txn));
                let _ = self.durable.send((pg, token, fut));
            }
            Action::LoadView {
                token,
                object,
                guards,
            } => self.read(pg, token, move |store| {
                exec::ObjectView::load(store, &coll, &object, &guards).map(pg::StoreRead::View)
            }),
            Action::ListObjects { token } => self.read(pg, token, move |store| {
                crate::pgstore::client_objects(store, &coll)
                    .map(pg::StoreRead::Objects)
                    .map_err(|e| exec::store_error(&e))
            }),
            Action::Scan {
                token,
                after,
                limit,
            } => self.read(pg, token, move |store| {
                crate::pgstore::scan(store, &coll, after.as_deref(), limit)
                    .map(|(objects, more)| pg::StoreRead::Scan { objects, more })
            }),
            Action::ScrubRead {
                token,
                after,
                limit,
                only,
                deep,
            } => self.read(pg, token, move |store| {
                crate::pgstore::scrub_entries(store, &coll, after.as_deref(), limit, &only, deep)
                    .map(|(entries, more)| pg::StoreRead::ScrubMap { entries, more })
            }),
            Action::SendDown { to, rep, payload } => {
                if let Some(slot) = self.pgs.get_mut(&pg) {
                    slot.links.send_down(osd, to, rep, payload);
                }
            }
            Action::AckUp {
                to,
                interval,
                version,
            } => {
                if let Some(slot) = self.pgs.get_mut(&pg) {
                    slot.links.ack_up(osd, to, interval, version);
                }
            }
            // The stream handler stops the stream (see `feed`'s answer).
            Action::RefuseStream { .. } => {}
            Action::Request { token, to, req } => {
                let (osd, me) = (osd.clone(), self.me.clone());
                self.spawn(pg, async move {
                    let result = crate::effects::request(&osd, pg, to, req).await;
                    let event = Event::Answer { token, result };
                    let _ = me.send(Msg::Event { pg, event });
                });
            }
            Action::Mon { token, cmd } => {
                let (osd, me) = (osd.clone(), self.me.clone());
                self.spawn(pg, async move {
                    let result = osd.monc.command(cmd).await.map_err(|e| e.to_string());
                    let event = Event::MonAnswer { token, result };
                    let _ = me.send(Msg::Event { pg, event });
                });
            }
            Action::SetTimer { after, timer } => {
                let seq = self.next_id();
                self.timers
                    .insert((Instant::now() + after, seq), (pg, timer));
            }
            Action::Probe { token, osds } => {
                let (osd, me) = (osd.clone(), self.me.clone());
                self.spawn(pg, async move {
                    let gone = crate::effects::probe(&osd, &osds).await;
                    let event = Event::Probed { token, gone };
                    let _ = me.send(Msg::Event { pg, event });
                });
            }
            Action::Reserve { token } => {
                let (release, released) = oneshot::channel();
                if let Some(slot) = self.pgs.get_mut(&pg) {
                    slot.slot = Some(release);
                }
                let (osd, me) = (osd.clone(), self.me.clone());
                self.spawn(
                    pg,
                    crate::effects::hold_backfill_slot(osd, released, move || {
                        let event = Event::Granted { token };
                        let _ = me.send(Msg::Event { pg, event });
                    }),
                );
            }
            Action::Release => {
                if let Some(slot) = self.pgs.get_mut(&pg) {
                    slot.slot = None;
                }
            }
            Action::Scrubbed { whole, deep } => self.scrubbed(pg, whole, deep),
            Action::Report => osd.stats_changed.notify_one(),
            Action::RenewLeases { token, members } => {
                let (osd, me) = (osd.clone(), self.me.clone());
                self.spawn(pg, async move {
                    crate::effects::renew_leases(&osd, &members).await;
                    let event = Event::LeasesRenewed { token };
                    let _ = me.send(Msg::Event { pg, event });
                });
            }
            Action::Respond { reply, result } => {
                if let Some(tx) = self.replies.remove(&reply) {
                    let _ = tx.send(result);
                }
            }
            Action::Client { op, answer } => {
                if let Some(tx) = self.clients.remove(&op) {
                    let _ = tx.send(answer);
                }
            }
        }
    }

    /// Runs `task` for PG `pg`, stopped if the PG goes.
    fn spawn(&mut self, pg: PgRef, task: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Some(slot) = self.pgs.get_mut(&pg) {
            slot.tasks.spawn(task);
        }
    }

    /// Runs a store read on the blocking threads; its result comes back
    /// to PG `pg` as [`Event::Read`].
    fn read(
        &self,
        pg: PgRef,
        token: Token,
        f: impl FnOnce(&shoal_store::Store) -> Result<pg::StoreRead, OpError> + Send + 'static,
    ) {
        let (store, me) = (self.osd.store.clone(), self.me.clone());
        tokio::task::spawn_blocking(move || {
            let result = f(&store);
            let _ = me.send(Msg::Event {
                pg,
                event: Event::Read { token, result },
            });
        });
    }

    fn scrubbed(&mut self, pg: PgRef, whole: bool, deep: bool) {
        if self.scheduled_scrub.is_some_and(|(p, _)| p == pg) {
            self.scheduled_scrub = None;
        }
        let Some(slot) = self.pgs.get_mut(&pg).filter(|_| whole) else {
            return;
        };
        let now = Instant::now();
        slot.scrubbed.0 = now;
        if deep {
            slot.scrubbed.1 = now;
        }
    }

    /// How long the shard's clock has run (the machines' `now`).
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
