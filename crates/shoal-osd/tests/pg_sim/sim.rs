//! The driver: time, network, disks, monitor, faults, clients and the
//! checks, around the real PG state machine of every OSD.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use shoal_net::codec::encode;
use shoal_osd::exec::OpError;
use shoal_osd::pg::{
    Action, ClientAnswer, ClientOp, Event, Interval, LogLimits, OpId, OutRequest, PeerAnswer,
    PeerReply, PeerRequest, Pg, PgConfig, PlantedBugs, StoreRead, Timer, Token,
};
use shoal_osd::pglog::{DUPS_OBJECT, META_OBJECT};
use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_proto::osd::{ObjOp, ObjVersion, OsdErrorCode, PayloadRange, PgRef, ReqId};
use shoal_proto::rep::{ObjectState, PgInfo, PgPush, PgQueryReply, PgScanReply, RepOp};
use shoal_store::{Op, Transaction};

use crate::osd::{Served, SimOsd, remember};
use crate::world::{History, MapEpoch, Monitor, Rng, SimColl, WriteOp};

/// The PG the simulation runs.
pub const PG: PgRef = PgRef { pool: 1, seed: 0 };

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    Osd(i32),
    Client(usize),
    Mon,
}

/// A request between OSDs.
#[derive(Debug)]
pub enum Req {
    Machine(Box<PeerRequest>),
    /// Answered by the shell from its store.
    Pull(String),
    Scan(Option<String>, usize),
    ScrubMap(shoal_proto::rep::ScrubMapRequest),
}

/// Every message of the simulation.
#[derive(Debug)]
pub enum Msg {
    ClientOp {
        client: usize,
        reqid: ReqId,
        object: String,
        write: Option<WriteOp>,
        epoch: u32,
        balance: bool,
    },
    ClientReply {
        reqid: ReqId,
        result: Result<Option<Vec<u8>>, OsdErrorCode>,
    },
    Request {
        from: i32,
        /// The requester's life: its answer goes to that life only (a
        /// restarted OSD's new requests reuse tokens).
        from_life: u64,
        token: Token,
        req: Req,
    },
    Response {
        token: Token,
        result: Result<PeerAnswer, OpError>,
    },
    Rep {
        from: i32,
        rep: RepOp,
        payload: Bytes,
    },
    RepAck {
        from: i32,
        interval: u32,
        version: ObjVersion,
    },
    Ping {
        from: i32,
        sent: u64,
    },
    Pong {
        from: i32,
        sent: u64,
        epoch: u32,
    },
    MonReply {
        token: Token,
        result: Result<CommandOutput, String>,
    },
}

/// Something that happens at a point of simulated time.
pub enum Ev {
    Deliver {
        from: Node,
        to: Node,
        to_life: u64,
        msg: Box<Msg>,
    },
    DiskDone {
        osd: i32,
        life: u64,
    },
    ReadDone {
        osd: i32,
        life: u64,
        token: Token,
        read: Read,
    },
    MapArrives {
        osd: i32,
        life: u64,
        epoch: u32,
    },
    Restart(i32),
    MarkDown {
        osd: i32,
        life: u64,
    },
    Boot {
        osd: i32,
        life: u64,
    },
    Timer {
        osd: i32,
        life: u64,
        timer: Timer,
    },
    RequestTimeout {
        osd: i32,
        life: u64,
        token: Token,
    },
    LeasesRenewed {
        osd: i32,
        life: u64,
        token: Token,
    },
    MachineEvent {
        osd: i32,
        life: u64,
        event: Box<Event>,
    },
    Heartbeat(i32),
    Resend(i32),
    Fault,
    ClientTick(usize),
    ClientSend {
        client: usize,
        sends: u64,
    },
    ClientMap {
        client: usize,
        epoch: u32,
    },
}

/// A store read the machine asked for.
#[derive(Debug)]
pub enum Read {
    View(String),
    List,
    Scan(Option<String>, usize),
    Scrub(Option<String>, usize, Vec<String>, bool),
}

/// Counters a run reports.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub writes_acked: u64,
    pub reads_checked: u64,
    pub crashes: u64,
    pub isolations: u64,
    pub epochs: u32,
    pub peering_attempts: u64,
    pub pg_temps: u64,
    pub backfill_steps: u64,
    pub pulls: u64,
    pub pushes: u64,
    pub lease_renewals: u64,
    /// Reads served by an OSD cut off from the rest.
    pub reads_while_cut: u64,
    /// Heads that were backfilled themselves while peering, and pushes
    /// to members backfilled while peering.
    pub head_backfills: u64,
    pub peering_pushes: u64,
    /// Objects the final deep scrubs compared.
    pub scrubbed_objects: u64,
}

/// One seed's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub osds: i32,
    pub size: usize,
    pub min_size: usize,
    pub log_keep: usize,
    /// Trimmed requests remembered (`PgLog` dups).
    pub log_dups: usize,
    pub objects: usize,
    pub clients: usize,
    pub substitute: bool,
    pub chaos_ms: u64,
    /// Bugs planted in the state machine (the simulation must catch them).
    pub planted: PlantedBugs,
}

impl Config {
    /// Settings drawn from the seed.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x5eed);
        let osds = 4 + r.below(2) as i32;
        let min_size = 1 + r.below(2) as usize;
        let log_keep = [16, 32, 96][r.below(3) as usize];
        Config {
            seed,
            osds,
            size: 3,
            min_size,
            log_keep,
            // The daemon's default: slow clients retry for seconds.
            log_dups: 3000,
            objects: 3 + r.below(6) as usize,
            clients: 1 + r.below(3) as usize,
            substitute: r.pct(60),
            chaos_ms: 1500 + r.below(1500),
            planted: PlantedBugs::default(),
        }
    }
}

/// A client request in flight.
#[derive(Debug, Clone)]
pub struct Pending {
    pub reqid: ReqId,
    pub object: String,
    pub write: Option<WriteOp>,
    /// Reads: how many writes to the object were answered when it was sent.
    pub acked_at_issue: usize,
}

/// A client issuing one request at a time, retrying until answered.
#[derive(Debug, Default)]
pub struct Client {
    pub pending: Option<Pending>,
    pub next_tid: u64,
    /// The newest map it has (it learns maps late).
    pub epoch: u32,
    /// It learns maps much later than the others.
    pub slow: bool,
}

const CLIENT_TIMEOUT: u64 = 150;
const CLIENT_BACKOFF: u64 = 20;
/// A peer request without an answer for this long fails (ms).
const REQUEST_TIMEOUT: u64 = 200;
/// A monitor command from a cut-off OSD fails after this long (ms).
const MON_TIMEOUT: u64 = 100;
/// Heartbeat interval (ms).
const HEARTBEAT: u64 = 10;
/// Links re-send unacknowledged writes this often (ms).
const RESEND: u64 = 50;
/// An OSD's peers report it after this silence (ms).
const REJOIN_GRACE: u64 = 60;

pub struct Sim {
    pub now: u64,
    pub rng: Rng,
    seq: u64,
    events: BTreeMap<(u64, u64), Ev>,
    links: BTreeMap<(Node, Node), u64>,
    pub osds: Vec<SimOsd>,
    pub mon: Monitor,
    pub clients: Vec<Client>,
    client_sends: Vec<u64>,
    pub hist: BTreeMap<String, History>,
    reqs: BTreeMap<ReqId, (String, usize)>,
    pub stats: Stats,
    issuing: bool,
    chaos: bool,
    /// The deep scrub with repair run once the PG is back to normal.
    final_scrub: Option<shoal_proto::osd::ScrubResult>,
    final_scrub_asked: bool,
    violation: Option<String>,
    trace: Vec<String>,
    cfg: Config,
}

impl Sim {
    pub fn new(cfg: Config) -> Self {
        let mut rng = Rng(cfg.seed);
        let mut pref: Vec<i32> = (0..cfg.osds).collect();
        for i in (1..pref.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            pref.swap(i, j);
        }
        let first = MapEpoch {
            epoch: 1,
            up: (0..cfg.osds).collect(),
            up_from: (0..cfg.osds).map(|o| (o, 1)).collect(),
            pg_temp: Vec::new(),
        };
        let hist = (0..cfg.objects)
            .map(|i| (format!("obj{i}"), History::default()))
            .collect();
        let mut sim = Sim {
            now: 0,
            rng,
            seq: 0,
            events: BTreeMap::new(),
            links: BTreeMap::new(),
            osds: (0..cfg.osds).map(SimOsd::new).collect(),
            mon: Monitor {
                maps: vec![first],
                pref,
                size: cfg.size,
                substitute: cfg.substitute,
                recorded: Default::default(),
            },
            clients: (0..cfg.clients)
                .map(|c| Client {
                    epoch: 1,
                    slow: c > 0 && (cfg.seed >> c) % 2 == 1,
                    ..Default::default()
                })
                .collect(),
            client_sends: vec![0; cfg.clients],
            hist,
            reqs: BTreeMap::new(),
            stats: Stats::default(),
            issuing: true,
            chaos: true,
            final_scrub: None,
            final_scrub_asked: false,
            violation: None,
            trace: Vec::new(),
            cfg,
        };
        sim.publish(1);
        for o in 0..sim.cfg.osds {
            sim.schedule(1, Ev::Heartbeat(o));
            sim.schedule(RESEND, Ev::Resend(o));
        }
        for c in 0..sim.clients.len() {
            sim.schedule(1, Ev::ClientTick(c));
        }
        let first_fault = sim.rng.range(20, 200);
        sim.schedule(first_fault, Ev::Fault);
        sim
    }

    fn pg_config(&self) -> PgConfig {
        PgConfig {
            log_limits: LogLimits {
                entries: self.cfg.log_keep,
                dups: self.cfg.log_dups,
            },
            chunk_size: 4096,
            stall: Duration::from_millis(300),
            recovery_active: 2,
            planted: self.cfg.planted,
        }
    }

    pub fn osd(&mut self, id: i32) -> &mut SimOsd {
        &mut self.osds[id as usize]
    }

    pub fn schedule(&mut self, after: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((self.now + after, self.seq), ev);
    }

    pub fn trace(&mut self, line: String) {
        // Keeps at least the lines `SHOAL_PG_SIM_TRACE` asks to print.
        static KEEP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let keep = *KEEP.get_or_init(|| {
            std::env::var("SHOAL_PG_SIM_TRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0usize)
                .max(300)
        });
        if self.trace.len() > 2 * keep {
            self.trace.drain(..keep);
        }
        self.trace.push(format!("{:>6} {line}", self.now));
    }

    pub fn violation(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(what);
        }
    }

    /// Whether a message between `a` and `b` is lost to a cut.
    fn cut(&self, a: Node, b: Node) -> bool {
        let isolated = |n: Node| match n {
            Node::Osd(o) => self.osds[o as usize].isolated(self.now),
            _ => false,
        };
        let client = |n: Node| matches!(n, Node::Client(_));
        !client(a) && !client(b) && (isolated(a) || isolated(b))
    }

    /// Sends over an ordered link: delay with rare spikes, never ahead of
    /// an earlier message on the same link; lost if the receiver restarts
    /// or a cut separates them.
    pub fn send(&mut self, from: Node, to: Node, msg: Msg) {
        let to_life = match to {
            Node::Osd(o) => self.osds[o as usize].life,
            _ => 0,
        };
        self.send_to_life(from, to, to_life, msg);
    }

    /// Sends `msg` to `to` in its life `to_life` only (an answer goes to
    /// the life that asked, never to the next one).
    fn send_to_life(&mut self, from: Node, to: Node, to_life: u64, msg: Msg) {
        if self.cut(from, to) {
            return;
        }
        let delay = if self.rng.pct(3) {
            self.rng.range(20, 60)
        } else {
            self.rng.range(1, 4)
        };
        let at = (self.now + delay).max(self.links.get(&(from, to)).copied().unwrap_or(0));
        self.links.insert((from, to), at);
        self.seq += 1;
        self.events.insert(
            (at, self.seq),
            Ev::Deliver {
                from,
                to,
                to_life,
                msg: Box::new(msg),
            },
        );
    }

    fn publish(&mut self, epoch: u32) {
        self.stats.epochs = epoch;
        for i in 0..self.osds.len() {
            if self.osds[i].alive {
                let life = self.osds[i].life;
                let lag = self.rng.range(1, 25);
                self.schedule(
                    lag,
                    Ev::MapArrives {
                        osd: i as i32,
                        life,
                        epoch,
                    },
                );
            }
        }
        for c in 0..self.clients.len() {
            // Clients learn maps late, slow ones much later (they then
            // read at chain members of an interval that is over).
            let lag = if self.clients[c].slow {
                self.rng.range(150, 800)
            } else {
                self.rng.range(1, 60)
            };
            self.schedule(lag, Ev::ClientMap { client: c, epoch });
        }
    }

    // ---- the OSD shell -------------------------------------------------

    /// Feeds `event` to OSD `id`'s state machine and runs what it asks.
    fn feed(&mut self, id: i32, event: Event) {
        let now = self.now;
        let up = self
            .mon
            .map(self.osds[id as usize].map_epoch.max(1))
            .up
            .clone();
        let o = &mut self.osds[id as usize];
        let facts = o.facts(now, &up);
        let Some(pg) = o.pg.as_mut() else {
            return;
        };
        pg.handle(Duration::from_millis(now), &facts, event);
        let actions: Vec<Action> = pg.actions().collect();
        for a in actions {
            self.execute(id, a);
        }
    }

    /// Feeds an event a little later (a store read, a local answer).
    fn feed_later(&mut self, id: i32, after: u64, event: Event) {
        let life = self.osds[id as usize].life;
        self.schedule(
            after,
            Ev::MachineEvent {
                osd: id,
                life,
                event: Box::new(event),
            },
        );
    }

    fn execute(&mut self, id: i32, action: Action) {
        let life = self.osds[id as usize].life;
        self.trace_action(id, &action);
        match action {
            Action::Submit { token, txn } => {
                let o = self.osd(id);
                o.queue.push_back((token, txn));
                if o.queue.len() == 1 {
                    let d = self.rng.range(1, 5);
                    self.schedule(d, Ev::DiskDone { osd: id, life });
                }
            }
            Action::LoadView { token, object, .. } => {
                self.read_later(id, token, Read::View(object));
            }
            Action::ListObjects { token } => {
                self.read_later(id, token, Read::List);
            }
            Action::ScrubRead {
                token,
                after,
                limit,
                only,
                deep,
            } => {
                self.read_later(id, token, Read::Scrub(after, limit, only, deep));
            }
            Action::Scrubbed { .. } => {}
            Action::Scan {
                token,
                after,
                limit,
            } => {
                self.read_later(id, token, Read::Scan(after, limit));
            }
            Action::SendDown { to, rep, payload } => {
                let key = (to, rep.interval);
                let version = rep.entry.version;
                self.osd(id)
                    .links
                    .entry(key)
                    .or_default()
                    .pending
                    .push_back((version, rep.clone(), payload.clone()));
                self.send(
                    Node::Osd(id),
                    Node::Osd(to),
                    Msg::Rep {
                        from: id,
                        rep,
                        payload,
                    },
                );
            }
            Action::AckUp {
                to,
                interval,
                version,
            } => {
                self.send(
                    Node::Osd(id),
                    Node::Osd(to),
                    Msg::RepAck {
                        from: id,
                        interval,
                        version,
                    },
                );
            }
            Action::RefuseStream { .. } | Action::Release | Action::Report => {}
            Action::Client { op, answer } => self.client_answer(id, op, answer),
            Action::RenewLeases { token, members } => {
                self.stats.lease_renewals += 1;
                for m in members {
                    self.send(
                        Node::Osd(id),
                        Node::Osd(m),
                        Msg::Ping {
                            from: id,
                            sent: self.now,
                        },
                    );
                }
                self.schedule(
                    12,
                    Ev::LeasesRenewed {
                        osd: id,
                        life,
                        token,
                    },
                );
            }
            Action::Respond { reply, result } => {
                let Some((to, to_life, token)) = self.osd(id).incoming.remove(&reply.0) else {
                    return;
                };
                let result = result.map(|r| match r {
                    PeerReply::Ack => PeerAnswer::Ack,
                    PeerReply::Query(q) => PeerAnswer::Query(*q),
                });
                self.send_to_life(
                    Node::Osd(id),
                    Node::Osd(to),
                    to_life,
                    Msg::Response { token, result },
                );
            }
            Action::Request { token, to, req } => self.request(id, token, to, req),
            Action::Mon { token, cmd } => self.mon_command(id, token, cmd),
            Action::SetTimer { after, timer } => {
                self.schedule(
                    after.as_millis() as u64,
                    Ev::Timer {
                        osd: id,
                        life,
                        timer,
                    },
                );
            }
            Action::Probe { token, osds } => {
                let gone = osds
                    .into_iter()
                    .filter(|&o| !self.osds[o as usize].alive)
                    .collect();
                self.feed_later(id, 3, Event::Probed { token, gone });
            }
            Action::Reserve { token } => self.feed_later(id, 1, Event::Granted { token }),
        }
    }

    /// A store read the machine asked for, done a moment later.
    fn read_later(&mut self, id: i32, token: Token, read: Read) {
        let life = self.osds[id as usize].life;
        let d = self.rng.range(0, 2);
        self.schedule(
            d,
            Ev::ReadDone {
                osd: id,
                life,
                token,
                read,
            },
        );
    }

    /// The actions worth reading in a failure's report.
    fn trace_action(&mut self, id: i32, action: &Action) {
        let line = match action {
            Action::Request { to, req, .. } => match req {
                OutRequest::Query(_) => format!("osd.{id} queries osd.{to}"),
                OutRequest::Pull(p) => format!("osd.{id} pulls {} from osd.{to}", p.object),
                OutRequest::Activate(a) => format!(
                    "osd.{id} activates osd.{to} in {} (backfill {}, missing {:?})",
                    a.interval, a.backfill, a.missing
                ),
                OutRequest::Push { object, .. } => format!("osd.{id} pushes {object} to osd.{to}"),
                OutRequest::Scan(_) => format!("osd.{id} lists osd.{to}"),
                OutRequest::ScrubMap(_) => format!("osd.{id} scrubs osd.{to}"),
                OutRequest::Backfill(b) => {
                    let what = match &b.step {
                        shoal_proto::rep::BackfillStep::Start => "start".to_string(),
                        shoal_proto::rep::BackfillStep::Finish {
                            info, log, missing, ..
                        } => {
                            let last: Vec<_> = log
                                .iter()
                                .rev()
                                .take(8)
                                .map(|e| format!("{} {} {:?}", e.version, e.object, e.op))
                                .collect();
                            format!(
                                "finish at {} missing {missing:?} log tail-first {last:?}",
                                info.last_update
                            )
                        }
                    };
                    format!(
                        "osd.{id} backfill step to osd.{to} in {}: {what}",
                        b.interval
                    )
                }
            },
            Action::Mon { cmd, .. } => format!("osd.{id} asks the monitors: {cmd:?}"),
            Action::Client { op, answer } => {
                let s = self.osds[id as usize].served.get(op);
                format!(
                    "osd.{id} answers {:?} on {:?}: {answer:?}",
                    s.map(|s| s.reqid.tid),
                    s.map(|s| &s.object)
                )
            }
            Action::Respond { result: Err(e), .. } => {
                format!("osd.{id} refuses a request: {}", e.message)
            }
            Action::Respond {
                result: Ok(shoal_osd::pg::PeerReply::Query(q)),
                ..
            } => match &q.state {
                Some(st) => {
                    let last: Vec<_> = st
                        .log
                        .iter()
                        .rev()
                        .take(6)
                        .map(|e| format!("{} {} {:?}", e.version, e.object, e.op))
                        .collect();
                    format!(
                        "osd.{id} answers a query: last_update {} tail {} les {} acting {:?} missing {:?} log tail-first {last:?}",
                        st.info.last_update,
                        st.info.log_tail,
                        st.info.last_epoch_started,
                        st.info.last_acting,
                        st.missing
                    )
                }
                None => format!("osd.{id} answers a query: no copy"),
            },
            Action::Respond { result: Ok(_), .. } => format!("osd.{id} answers a request"),
            Action::ListObjects { .. } => format!("osd.{id} lists its objects"),
            Action::Submit { txn, .. } => {
                let removed: Vec<&String> = txn
                    .ops
                    .iter()
                    .filter_map(|op| match op {
                        shoal_store::Op::Remove { name } => Some(name),
                        _ => None,
                    })
                    .collect();
                if removed.is_empty() {
                    return;
                }
                format!("osd.{id} removes {removed:?}")
            }
            _ => return,
        };
        self.trace(line);
    }

    fn request(&mut self, id: i32, token: Token, to: i32, req: OutRequest) {
        let epoch = self.osds[id as usize].map_epoch;
        let req = match req {
            OutRequest::Query(mut q) => {
                q.epoch = epoch;
                Req::Machine(Box::new(PeerRequest::Query(q)))
            }
            OutRequest::Activate(mut a) => {
                a.epoch = epoch;
                Req::Machine(Box::new(PeerRequest::Activate(a)))
            }
            OutRequest::Backfill(mut b) => {
                b.epoch = epoch;
                self.stats.backfill_steps += 1;
                Req::Machine(Box::new(PeerRequest::Backfill(b)))
            }
            OutRequest::Pull(p) => {
                self.stats.pulls += 1;
                Req::Pull(p.object)
            }
            OutRequest::ScrubMap(r) => Req::ScrubMap(r),
            OutRequest::Scan(s) => {
                if self.peering(id) && s.start_after.is_none() {
                    self.stats.head_backfills += 1;
                }
                Req::Scan(s.start_after, s.limit as usize)
            }
            OutRequest::Push {
                interval,
                object,
                repair,
                ..
            } => {
                self.stats.pushes += 1;
                if self.peering(id) {
                    self.stats.peering_pushes += 1;
                }
                let (push, payload) = self.push_of(id, interval, &object, repair);
                Req::Machine(Box::new(PeerRequest::Push { push, payload }))
            }
        };
        let life = self.osds[id as usize].life;
        self.osd(id).outstanding.insert(token, ());
        self.send(
            Node::Osd(id),
            Node::Osd(to),
            Msg::Request {
                from: id,
                from_life: life,
                token,
                req,
            },
        );
        self.schedule(
            REQUEST_TIMEOUT,
            Ev::RequestTimeout {
                osd: id,
                life,
                token,
            },
        );
    }

    fn peering(&self, id: i32) -> bool {
        self.osds[id as usize]
            .pg
            .as_ref()
            .is_some_and(|pg| pg.status().1 == shoal_osd::pg::Phase::Peering)
    }

    /// An object's whole state from OSD `id`'s store, as a push.
    fn push_of(&self, id: i32, interval: u32, object: &str, repair: bool) -> (PgPush, Bytes) {
        let obj = self.osds[id as usize]
            .disk
            .as_ref()
            .and_then(|d| d.objects.get(object));
        let (version, state, payload) = match obj {
            None => (ObjVersion::default(), None, Bytes::new()),
            Some(o) => (
                o.version,
                Some(ObjectState {
                    data: PayloadRange {
                        offset: 0,
                        len: o.data.len() as u64,
                    },
                    xattrs: o
                        .xattrs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    omap: o.omap.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                }),
                Bytes::from(o.data.clone()),
            ),
        };
        let push = PgPush {
            epoch: self.osds[id as usize].map_epoch,
            pg: PG,
            interval,
            object: object.to_string(),
            version,
            state,
            repair,
            sums: Vec::new(),
        };
        (push, payload)
    }

    fn mon_command(&mut self, id: i32, token: Token, cmd: MonCommand) {
        let life = self.osds[id as usize].life;
        if self.osds[id as usize].isolated(self.now) {
            let result = Err("no monitor answered".to_string());
            self.schedule(
                MON_TIMEOUT,
                Ev::MachineEvent {
                    osd: id,
                    life,
                    event: Box::new(Event::MonAnswer { token, result }),
                },
            );
            return;
        }
        let result = match cmd {
            MonCommand::PgActivated { interval: 0, .. } => Ok(self.recorded()),
            MonCommand::PgActivated {
                interval, acting, ..
            } => self.record_active(interval, acting),
            MonCommand::PgTemp { osds, .. } => {
                self.stats.pg_temps += 1;
                let e = self.mon.set_pg_temp(osds.clone());
                self.trace(format!("epoch {e}: pg_temp {osds:?}"));
                self.publish(e);
                Ok(CommandOutput::Done { epoch: e })
            }
            other => Err(format!("the simulated monitors do not run {other:?}")),
        };
        self.send(Node::Mon, Node::Osd(id), Msg::MonReply { token, result });
    }

    fn recorded(&self) -> CommandOutput {
        CommandOutput::PgActive {
            epoch: self.mon.recorded.epoch,
            acting: self.mon.recorded.members.clone(),
        }
    }

    /// The monitors' check of an activation record (`shoal-mon`'s
    /// `pg_activated`): the current chain, up throughout the interval, no
    /// older than the record.
    fn record_active(&mut self, interval: u32, acting: Vec<i32>) -> Result<CommandOutput, String> {
        let latest = self.mon.latest().clone();
        if interval > latest.epoch {
            return Err("interval after the newest epoch".into());
        }
        if self.mon.acting(&latest) != acting {
            return Err("not the PG's chain".into());
        }
        if acting
            .iter()
            .any(|m| !latest.up.contains(m) || latest.up_from[m] > interval)
        {
            return Err("a member was not up throughout the interval".into());
        }
        if interval < self.mon.recorded.epoch {
            return Err("a newer interval is recorded".into());
        }
        self.mon.recorded = shoal_osd::peering::Recorded {
            epoch: interval,
            members: acting,
        };
        Ok(self.recorded())
    }

    fn disk_done(&mut self, id: i32, life: u64) {
        let o = self.osd(id);
        if o.life != life || !o.alive {
            return;
        }
        let Some((token, txn)) = o.queue.pop_front() else {
            return;
        };
        let result = match o.disk.as_mut() {
            Some(d) => d.apply(&txn),
            None => Err("no collection".into()),
        };
        if !o.queue.is_empty() {
            let d = self.rng.range(1, 5);
            self.schedule(d, Ev::DiskDone { osd: id, life });
        }
        if let Err(e) = &result {
            self.violation(format!("osd.{id}: a transaction failed in the store: {e}"));
        }
        // SHOAL_PG_SIM_WATCH=name traces every stored change of one object.
        if let Some(watch) = std::env::var_os("SHOAL_PG_SIM_WATCH") {
            let watch = watch.to_string_lossy().to_string();
            let touched = txn
                .ops
                .iter()
                .any(|op| format!("{op:?}").contains(&format!("\"{watch}\"")));
            if touched {
                let now = self.osds[id as usize]
                    .disk
                    .as_ref()
                    .and_then(|d| d.objects.get(&watch))
                    .map(|o| (o.version, o.data.len() / 8));
                self.trace(format!("osd.{id} stored {watch}: now {now:?}"));
            }
        }
        let result = result.map_err(|e| OpError::new(OsdErrorCode::Internal, e));
        self.feed(id, Event::Stored { token, result });
    }

    fn read_done(&mut self, id: i32, token: Token, read: Read) {
        let disk = self.osds[id as usize].disk.clone().unwrap_or_default();
        let result = match read {
            Read::View(object) => Ok(StoreRead::View(match disk.objects.get(&object) {
                None => Default::default(),
                Some(o) => shoal_osd::exec::ObjectView {
                    exists: true,
                    size: o.data.len() as u64,
                    xattrs: o.xattrs.clone(),
                    omap: Default::default(),
                },
            })),
            Read::List => Ok(StoreRead::Objects(disk.names())),
            Read::Scan(after, limit) => {
                let (objects, more) = disk.scan(after.as_deref(), limit);
                Ok(StoreRead::Scan { objects, more })
            }
            Read::Scrub(after, limit, only, deep) => {
                let (entries, more) = disk.scrub_entries(after.as_deref(), limit, &only, deep);
                Ok(StoreRead::ScrubMap { entries, more })
            }
        };
        self.feed(id, Event::Read { token, result });
    }

    // ---- maps and lifecycle --------------------------------------------

    /// The PG's interval in map `epoch`, as an OSD derives it.
    fn interval_in(&self, epoch: u32) -> Interval {
        let m = self.mon.map(epoch);
        let acting = self.mon.acting(m);
        Interval {
            epoch,
            up_from: acting.iter().map(|o| m.up_from[o]).collect(),
            up: self.mon.up(m),
            acting,
            min_size: self.cfg.min_size,
            size: self.cfg.size,
            pg_temp: !m.pg_temp.is_empty(),
        }
    }

    /// OSD `id` installs map `epoch`.
    fn install(&mut self, id: i32, epoch: u32) {
        let interval = self.interval_in(epoch);
        let up = self.mon.map(epoch).up.contains(&id);
        let o = self.osd(id);
        o.map_epoch = epoch;
        if up {
            o.seen_up = true;
        }
        let role = interval.acting.contains(&id) || interval.up.contains(&id);
        if o.pg.is_none() && (role || o.disk.is_some()) {
            self.open_pg(id);
        }
        self.feed(id, Event::Interval(interval));
    }

    /// `rejoin.rs`: an OSD its map has down while it runs and reaches the
    /// cluster boots again (once a map showed it up since its last boot,
    /// or a while after that boot), with a doubling delay.
    fn rejoin(&mut self, id: i32) {
        let now = self.now;
        let o = &self.osds[id as usize];
        if !o.alive || o.isolated(now) || o.map_epoch == 0 || now < o.next_boot {
            return;
        }
        if self.mon.map(o.map_epoch).up.contains(&id) {
            return;
        }
        if !o.seen_up && now < o.booted_at + 2 * REJOIN_GRACE {
            return;
        }
        let life = o.life;
        let wait = (now - o.booted_at).clamp(REJOIN_GRACE, 2000);
        let o = self.osd(id);
        o.seen_up = false;
        o.next_boot = now + wait;
        self.schedule(1, Ev::Boot { osd: id, life });
    }

    /// Creates the PG's collection if this OSD never had it, and loads the
    /// state machine from it.
    fn open_pg(&mut self, id: i32) {
        let cfg = self.pg_config();
        let o = self.osd(id);
        if o.disk.is_none() {
            let mut c = SimColl::default();
            let mut t = Transaction::new("sim");
            t.push(Op::CreateCollection);
            t.push(Op::Touch {
                name: META_OBJECT.into(),
            });
            t.push(Op::SetCollectionMeta(
                encode(&PgInfo::default()).expect("encodes").to_vec(),
            ));
            t.push(Op::Touch {
                name: DUPS_OBJECT.into(),
            });
            c.apply(&t).expect("a new collection");
            o.disk = Some(c);
        }
        let loaded = o.disk.as_ref().expect("just made").loaded();
        match loaded {
            Ok(l) => o.pg = Some(Pg::new(PG, id, cfg, l)),
            Err(e) => self.violation(format!("osd.{id}: its records do not load: {e}")),
        }
    }

    /// The newest entry of OSD `o`'s stored log (none: the oldest).
    fn log_head_of(&self, o: i32) -> ObjVersion {
        self.osds[o as usize]
            .disk
            .as_ref()
            .and_then(|d| d.loaded().ok())
            .map(|l| l.log.head())
            .unwrap_or_default()
    }

    fn crash(&mut self, id: i32) {
        if !self.osd(id).alive {
            return;
        }
        self.stats.crashes += 1;
        self.trace(format!("osd.{id} crashes"));
        self.osd(id).crash();
        let life = self.osd(id).life;
        let detect = self.rng.range(10, 60);
        self.schedule(detect, Ev::MarkDown { osd: id, life });
    }

    fn restart(&mut self, id: i32) {
        if self.osd(id).alive {
            return;
        }
        self.trace(format!("osd.{id} restarts"));
        let o = self.osd(id);
        o.alive = true;
        o.isolated_until = 0;
        let life = o.life;
        if o.disk.is_some() {
            self.open_pg(id);
        }
        // It starts from the newest map, then boots.
        let latest = self.mon.latest().epoch;
        let d = self.rng.range(1, 5);
        self.schedule(
            d,
            Ev::MapArrives {
                osd: id,
                life,
                epoch: latest,
            },
        );
        self.schedule(d + 1, Ev::Boot { osd: id, life });
    }

    /// Cuts OSD `id` off from the other OSDs and the monitors (clients
    /// still reach it) for `ms`.
    fn isolate(&mut self, id: i32, ms: u64) {
        self.stats.isolations += 1;
        self.trace(format!("osd.{id} cut off for {ms} ms"));
        let now = self.now;
        let o = self.osd(id);
        o.isolated_until = now + ms;
        let life = o.life;
        let detect = self.rng.range(10, 60);
        self.schedule(detect, Ev::MarkDown { osd: id, life });
        // Once healed, it learns the maps it missed.
        self.schedule(
            ms + 1,
            Ev::MapArrives {
                osd: id,
                life,
                epoch: 0,
            },
        );
    }

    fn mark_down(&mut self, id: i32, life: u64) {
        let o = &self.osds[id as usize];
        let gone = !o.alive || o.isolated(self.now);
        if o.life == life && gone && self.mon.latest().up.contains(&id) {
            let e = self.mon.change(id, false);
            self.trace(format!("epoch {e}: osd.{id} down"));
            self.publish(e);
        }
    }

    fn boot(&mut self, id: i32, life: u64) {
        let o = &self.osds[id as usize];
        // Every boot gets a new boot epoch (a restart re-peers its PGs).
        if o.alive && o.life == life && !o.isolated(self.now) {
            self.osd(id).booted_at = self.now;
            let e = self.mon.change(id, true);
            self.trace(format!("epoch {e}: osd.{id} up"));
            self.publish(e);
        }
    }

    fn map_arrives(&mut self, id: i32, life: u64, epoch: u32) {
        let o = &self.osds[id as usize];
        if !o.alive || o.life != life || o.isolated(self.now) {
            return;
        }
        // 0: whatever is newest (after a cut).
        let epoch = if epoch == 0 {
            self.mon.latest().epoch
        } else {
            epoch
        };
        let from = if o.map_epoch == 0 || o.pg.is_none() && o.map_epoch + 1 < epoch {
            epoch
        } else {
            o.map_epoch + 1
        };
        for e in from..=epoch {
            self.install(id, e);
        }
    }

    // ---- peers ---------------------------------------------------------

    fn on_osd_msg(&mut self, id: i32, msg: Msg) {
        match msg {
            Msg::ClientOp {
                client,
                reqid,
                object,
                write,
                epoch,
                balance,
            } => self.client_op(id, client, reqid, object, write, epoch, balance),
            Msg::Request {
                from,
                from_life,
                token,
                req,
            } => self.on_request(id, (from, from_life), token, req),
            Msg::Response { token, result } => {
                if self.osd(id).outstanding.remove(&token).is_some() {
                    self.feed(id, Event::Answer { token, result });
                }
            }
            Msg::Rep { from, rep, payload } => {
                self.feed(id, Event::Rep { from, rep, payload });
            }
            Msg::RepAck {
                from,
                interval,
                version,
            } => {
                if let Some(l) = self.osd(id).links.get_mut(&(from, interval)) {
                    while l.pending.front().is_some_and(|(v, _, _)| *v <= version) {
                        l.pending.pop_front();
                    }
                }
                self.feed(
                    id,
                    Event::RepAck {
                        from,
                        interval,
                        version,
                    },
                );
            }
            Msg::Ping { from, sent } => {
                let now = self.now;
                let o = self.osd(id);
                o.heard.insert(from, now);
                let epoch = o.map_epoch;
                self.send(
                    Node::Osd(id),
                    Node::Osd(from),
                    Msg::Pong {
                        from: id,
                        sent,
                        epoch,
                    },
                );
            }
            Msg::Pong { from, sent, epoch } => {
                let now = self.now;
                let o = self.osd(id);
                o.heard.insert(from, now);
                let e = o.answers.entry(from).or_insert((sent, epoch));
                if sent >= e.0 {
                    *e = (sent, epoch);
                }
            }
            Msg::MonReply { token, result } => self.feed(id, Event::MonAnswer { token, result }),
            Msg::ClientReply { .. } => {}
        }
    }

    fn on_request(&mut self, id: i32, asker: (i32, u64), token: Token, req: Req) {
        let (from, from_life) = asker;
        let reply = |result| Msg::Response { token, result };
        match req {
            Req::Pull(object) => {
                let interval = 0;
                let (push, payload) = self.push_of(id, interval, &object, false);
                self.send_to_life(
                    Node::Osd(id),
                    Node::Osd(from),
                    from_life,
                    reply(Ok(PeerAnswer::Pulled { push, payload })),
                );
            }
            Req::ScrubMap(r) => {
                let disk = self.osds[id as usize].disk.clone().unwrap_or_default();
                let limit = (r.limit as usize).clamp(1, 1000);
                let (entries, more) =
                    disk.scrub_entries(r.start_after.as_deref(), limit, &r.only, r.deep);
                let answer = PeerAnswer::ScrubMap(shoal_proto::rep::ScrubMapReply {
                    epoch: 0,
                    entries,
                    more,
                    error: None,
                });
                self.send_to_life(Node::Osd(id), Node::Osd(from), from_life, reply(Ok(answer)));
            }
            Req::Scan(after, limit) => {
                let disk = self.osds[id as usize].disk.clone().unwrap_or_default();
                let (objects, more) = disk.scan(after.as_deref(), limit.clamp(1, 1000));
                let answer = PeerAnswer::Scan(PgScanReply {
                    epoch: 0,
                    objects,
                    more,
                    error: None,
                });
                self.send_to_life(Node::Osd(id), Node::Osd(from), from_life, reply(Ok(answer)));
            }
            Req::Machine(r) => {
                if self.osds[id as usize].pg.is_none() {
                    let answer = match *r {
                        PeerRequest::Query(_) => Ok(PeerAnswer::Query(PgQueryReply {
                            epoch: self.osds[id as usize].map_epoch,
                            state: None,
                            clean: false,
                            heard: Vec::new(),
                            interval: 0,
                            shape: Default::default(),
                        })),
                        _ => Err(OpError::new(OsdErrorCode::WrongOsd, "no such PG here")),
                    };
                    self.send_to_life(Node::Osd(id), Node::Osd(from), from_life, reply(answer));
                    return;
                }
                let reply_to = remember(self.osd(id), asker, token);
                self.feed(
                    id,
                    Event::Request {
                        from,
                        reply: reply_to,
                        req: *r,
                    },
                );
            }
        }
    }

    fn heartbeat(&mut self, id: i32) {
        self.schedule(HEARTBEAT, Ev::Heartbeat(id));
        self.rejoin(id);
        let o = &self.osds[id as usize];
        if !o.alive {
            return;
        }
        let mates: Vec<i32> =
            o.pg.as_ref()
                .map(|pg| pg.status().0.acting.clone())
                .unwrap_or_default();
        for m in mates.into_iter().filter(|&m| m != id) {
            self.send(
                Node::Osd(id),
                Node::Osd(m),
                Msg::Ping {
                    from: id,
                    sent: self.now,
                },
            );
        }
    }

    fn resend(&mut self, id: i32) {
        self.schedule(RESEND, Ev::Resend(id));
        if !self.osds[id as usize].alive {
            return;
        }
        let mut out = Vec::new();
        for (&(to, _), l) in &self.osds[id as usize].links {
            for (_, rep, payload) in &l.pending {
                out.push((to, rep.clone(), payload.clone()));
            }
        }
        for (to, rep, payload) in out {
            self.send(
                Node::Osd(id),
                Node::Osd(to),
                Msg::Rep {
                    from: id,
                    rep,
                    payload,
                },
            );
        }
    }

    // ---- clients -------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn client_op(
        &mut self,
        id: i32,
        client: usize,
        reqid: ReqId,
        object: String,
        write: Option<WriteOp>,
        epoch: u32,
        balance: bool,
    ) {
        if self.osds[id as usize].pg.is_none() {
            let msg = Msg::ClientReply {
                reqid,
                result: Err(OsdErrorCode::WrongOsd),
            };
            self.send(Node::Osd(id), Node::Client(client), msg);
            return;
        }
        let (ops, payload) = match write {
            Some(WriteOp::Append(t)) => (
                vec![ObjOp::Append {
                    data: PayloadRange { offset: 0, len: 8 },
                }],
                Bytes::copy_from_slice(&t.to_le_bytes()),
            ),
            Some(WriteOp::Delete) => (vec![ObjOp::Remove], Bytes::new()),
            None => (
                vec![ObjOp::Read {
                    offset: 0,
                    len: u64::MAX,
                }],
                Bytes::new(),
            ),
        };
        let o = self.osd(id);
        let op = OpId(o.next_op);
        o.next_op += 1;
        o.served.insert(
            op,
            Served {
                client,
                reqid,
                object: object.clone(),
                write: write.is_some(),
            },
        );
        self.feed(
            id,
            Event::Client(ClientOp {
                sums: Vec::new(),
                op,
                epoch,
                reqid,
                object,
                ops,
                payload,
                write: write.is_some(),
                balance,
            }),
        );
    }

    fn client_answer(&mut self, id: i32, op: OpId, answer: ClientAnswer) {
        let Some(s) = self.osd(id).served.remove(&op) else {
            return;
        };
        let result = match answer {
            ClientAnswer::Scrubbed(result) => {
                self.final_scrub = Some(result);
                return;
            }
            // The final scrub did not run (e.g. the head changed): again.
            _ if s.client == usize::MAX => {
                self.final_scrub_asked = false;
                return;
            }
            ClientAnswer::Written(_) => {
                self.check_acked_write(id, &s);
                Ok(None)
            }
            // A removal of an absent object changes nothing: done.
            ClientAnswer::Failed(OpError {
                code: OsdErrorCode::NotFound,
                ..
            }) if s.write => Ok(None),
            ClientAnswer::Failed(OpError { code, .. }) => Err(code),
            ClientAnswer::ReadHere => Ok({
                if self.osds[id as usize].isolated(self.now) {
                    self.stats.reads_while_cut += 1;
                }
                self.osds[id as usize]
                    .disk
                    .as_ref()
                    .and_then(|d| d.objects.get(&s.object))
                    .map(|o| o.data.clone())
            }),
            ClientAnswer::Forward { to, balance } => {
                let epoch = self.osds[id as usize].map_epoch;
                let msg = Msg::ClientOp {
                    client: s.client,
                    reqid: s.reqid,
                    object: s.object,
                    write: None,
                    epoch,
                    balance,
                };
                self.send(Node::Osd(id), Node::Osd(to), msg);
                return;
            }
        };
        let msg = Msg::ClientReply {
            reqid: s.reqid,
            result,
        };
        self.send(Node::Osd(id), Node::Client(s.client), msg);
    }

    /// Head: a write is acknowledged. Checked: every member of the chain
    /// has it in its store (with exactly the content the clients' writes
    /// so far give), and does not count it missing.
    fn check_acked_write(&mut self, id: i32, s: &Served) {
        let Some((name, index)) = self.reqs.get(&s.reqid).cloned() else {
            return;
        };
        let h = &self.hist[&name];
        if index != h.ops.len() || name != s.object {
            return;
        }
        let expected = h.after(index);
        let Some((epoch, acting)) = self.osds[id as usize]
            .pg
            .as_ref()
            .map(|pg| (pg.status().0.epoch, pg.status().0.acting.clone()))
        else {
            return;
        };
        for m in acting {
            let d = self.osds[m as usize].disk.clone().unwrap_or_default();
            let got = d.objects.get(&name).map(|o| o.data.clone());
            // A member still in the head's interval must not count it
            // missing (one that moved on, e.g. to be backfilled, may).
            let same = self.osds[m as usize]
                .pg
                .as_ref()
                .is_some_and(|pg| pg.status().0.epoch == epoch);
            let missing = same
                && d.loaded()
                    .map(|l| l.missing.contains(&name))
                    .unwrap_or(true);
            if got != expected || missing {
                self.violation(format!(
                    "osd.{id} acknowledged write {index} to {name} but osd.{m} has {got:?} (missing: {missing}), expected {expected:?}"
                ));
            }
        }
    }

    fn client_tick(&mut self, c: usize) {
        if self.clients[c].pending.is_some() || !self.issuing {
            return;
        }
        let names: Vec<String> = self.hist.keys().cloned().collect();
        let object = names[self.rng.below(names.len() as u64) as usize].clone();
        let tid = self.clients[c].next_tid + 1;
        self.clients[c].next_tid = tid;
        let reqid = ReqId {
            client: c as u64 + 1,
            tid,
        };
        let h = self.hist.get_mut(&object).expect("known object");
        // Slow clients (late maps) only read: they read at chain members
        // of intervals that are over, while others write to the new chain.
        let pending = if self.clients[c].slow || self.rng.pct(25) {
            Pending {
                reqid,
                object,
                write: None,
                acked_at_issue: h.acked,
            }
        } else if h.busy {
            let d = self.rng.range(1, 10);
            self.schedule(d, Ev::ClientTick(c));
            return;
        } else {
            let op = if self.rng.pct(20) {
                WriteOp::Delete
            } else {
                WriteOp::Append(self.seq * 1000 + c as u64)
            };
            h.busy = true;
            h.ops.push(op);
            self.reqs.insert(reqid, (object.clone(), h.ops.len()));
            Pending {
                reqid,
                object,
                write: Some(op),
                acked_at_issue: 0,
            }
        };
        self.clients[c].pending = Some(pending);
        self.client_send(c);
    }

    fn client_send(&mut self, c: usize) {
        let Some(p) = self.clients[c].pending.clone() else {
            return;
        };
        self.client_sends[c] += 1;
        let sends = self.client_sends[c];
        let epoch = self.clients[c].epoch;
        let acting = self.mon.acting(self.mon.map(epoch));
        // Writes to the head; reads to any member (balanced) or the head.
        let balance = p.write.is_none() && self.rng.pct(50);
        let target = if balance && !acting.is_empty() {
            Some(acting[self.rng.below(acting.len() as u64) as usize])
        } else {
            acting.first().copied()
        };
        if let Some(to) = target {
            let msg = Msg::ClientOp {
                client: c,
                reqid: p.reqid,
                object: p.object,
                write: p.write,
                epoch,
                balance,
            };
            self.send(Node::Client(c), Node::Osd(to), msg);
        }
        self.schedule(CLIENT_TIMEOUT, Ev::ClientSend { client: c, sends });
    }

    fn on_reply(&mut self, c: usize, reqid: ReqId, result: Result<Option<Vec<u8>>, OsdErrorCode>) {
        let Some(p) = &self.clients[c].pending else {
            return;
        };
        if p.reqid != reqid {
            return;
        }
        let content = match result {
            Ok(c) => c,
            Err(code) => {
                if matches!(
                    code,
                    OsdErrorCode::Internal | OsdErrorCode::Invalid | OsdErrorCode::Corrupt
                ) {
                    self.violation(format!("client {c}: {:?} answered {code:?}", p.object));
                }
                self.client_sends[c] += 1;
                let sends = self.client_sends[c];
                self.schedule(CLIENT_BACKOFF, Ev::ClientSend { client: c, sends });
                return;
            }
        };
        let p = self.clients[c].pending.take().expect("pending");
        let h = self.hist.get_mut(&p.object).expect("known object");
        if p.write.is_none() {
            self.stats.reads_checked += 1;
            let ok = (p.acked_at_issue..=h.ops.len()).any(|n| h.after(n) == content);
            if !ok {
                let what = format!(
                    "read of {} returned {content:?}: no state after {} or more of its {} writes",
                    p.object,
                    p.acked_at_issue,
                    h.ops.len()
                );
                self.violation(what);
            }
        } else {
            self.stats.writes_acked += 1;
            h.acked = h.ops.len();
            h.busy = false;
        }
        let d = self.rng.range(0, 5);
        self.schedule(d, Ev::ClientTick(c));
    }

    // ---- faults, the loop, the checks ----------------------------------

    fn fault(&mut self) {
        if !self.chaos {
            return;
        }
        let alive: Vec<i32> = self.osds.iter().filter(|o| o.alive).map(|o| o.id).collect();
        let roll = self.rng.below(100);
        if roll < 5 {
            // Every OSD at once (a power cut), all back shortly.
            self.trace("power cut".into());
            for o in alive {
                self.crash(o);
                let d = self.rng.range(10, 80);
                self.schedule(d, Ev::Restart(o));
            }
        } else if roll < 20 && alive.len() > 2 {
            // An operator sets a temporary chain of up OSDs in any order
            // (a copy that is behind, or has nothing, may head it); the
            // head clears it once it has filled the up set.
            let latest = self.mon.latest().clone();
            let mut up: Vec<i32> = latest.up.iter().copied().collect();
            for i in (1..up.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                up.swap(i, j);
            }
            if self.rng.pct(70) {
                // The copies furthest behind first: they must catch up
                // (or be backfilled) as head and members.
                up.sort_by_key(|&o| self.log_head_of(o));
            }
            up.truncate(self.rng.range(2, self.cfg.size as u64) as usize);
            let e = self.mon.set_pg_temp(up.clone());
            self.stats.pg_temps += 1;
            self.trace(format!("epoch {e}: an operator sets pg_temp {up:?}"));
            self.publish(e);
        } else if roll < 32 && alive.len() > 1 {
            let o = alive[self.rng.below(alive.len() as u64) as usize];
            if !self.osds[o as usize].isolated(self.now) {
                let ms = self.rng.range(50, 1200);
                self.isolate(o, ms);
            }
        } else if alive.len() > 1 {
            let o = alive[self.rng.below(alive.len() as u64) as usize];
            self.crash(o);
            let down = if self.rng.pct(30) {
                self.rng.range(600, 2000)
            } else {
                self.rng.range(20, 400)
            };
            self.schedule(down, Ev::Restart(o));
        }
        let next = self.rng.range(30, 300);
        self.schedule(next, Ev::Fault);
    }

    fn handle(&mut self, ev: Ev) {
        let alive = |s: &Sim, osd: i32, life: u64| {
            let o = &s.osds[osd as usize];
            o.alive && o.life == life
        };
        match ev {
            Ev::Deliver {
                from,
                to,
                to_life,
                msg,
            } => {
                if self.cut(from, to) {
                    return;
                }
                match to {
                    Node::Osd(o) => {
                        if alive(self, o, to_life) {
                            self.on_osd_msg(o, *msg);
                        }
                    }
                    Node::Client(c) => {
                        if let Msg::ClientReply { reqid, result } = *msg {
                            self.on_reply(c, reqid, result);
                        }
                    }
                    Node::Mon => {}
                }
            }
            Ev::DiskDone { osd, life } => self.disk_done(osd, life),
            Ev::ReadDone {
                osd,
                life,
                token,
                read,
            } => {
                if alive(self, osd, life) {
                    self.read_done(osd, token, read);
                }
            }
            Ev::MapArrives { osd, life, epoch } => self.map_arrives(osd, life, epoch),
            Ev::Restart(o) => self.restart(o),
            Ev::MarkDown { osd, life } => self.mark_down(osd, life),
            Ev::Boot { osd, life } => self.boot(osd, life),
            Ev::Timer { osd, life, timer } => {
                if alive(self, osd, life) {
                    if matches!(timer, Timer::PeeringRetry { .. }) {
                        self.stats.peering_attempts += 1;
                    }
                    self.feed(osd, Event::Timer(timer));
                }
            }
            Ev::RequestTimeout { osd, life, token } => {
                if alive(self, osd, life) && self.osd(osd).outstanding.remove(&token).is_some() {
                    let result = Err(OpError::new(OsdErrorCode::Unavailable, "no answer in time"));
                    self.feed(osd, Event::Answer { token, result });
                }
            }
            Ev::LeasesRenewed { osd, life, token } => {
                if alive(self, osd, life) {
                    self.feed(osd, Event::LeasesRenewed { token });
                }
            }
            Ev::MachineEvent { osd, life, event } => {
                if alive(self, osd, life) {
                    self.feed(osd, *event);
                }
            }
            Ev::Heartbeat(o) => self.heartbeat(o),
            Ev::Resend(o) => self.resend(o),
            Ev::Fault => self.fault(),
            Ev::ClientTick(c) => self.client_tick(c),
            Ev::ClientSend { client, sends } => {
                if self.client_sends[client] == sends {
                    self.client_send(client);
                }
            }
            Ev::ClientMap { client, epoch } => {
                let c = &mut self.clients[client];
                c.epoch = c.epoch.max(epoch);
            }
        }
    }

    /// Asks the head for a deep scrub with repair, as a client would.
    fn ask_final_scrub(&mut self) {
        let head = self.mon.acting(self.mon.latest())[0];
        let o = self.osd(head);
        let op = OpId(o.next_op);
        o.next_op += 1;
        o.served.insert(
            op,
            Served {
                client: usize::MAX,
                reqid: ReqId::default(),
                object: String::new(),
                write: false,
            },
        );
        let req = shoal_osd::pg::ScrubRequest {
            op: Some(op),
            deep: true,
            repair: true,
            only: Vec::new(),
        };
        self.feed(head, Event::Scrub(req));
    }

    /// Whether the PG is back to normal: every OSD up, the chain full and
    /// clean in one interval, nothing missing, no client waiting.
    fn quiescent(&self) -> bool {
        let latest = self.mon.latest();
        let acting = self.mon.acting(latest);
        self.osds.iter().all(|o| {
            o.alive
                && !o.isolated(self.now)
                && o.map_epoch == latest.epoch
                && latest.up.contains(&o.id)
        }) && acting.len() == self.cfg.size
            && latest.pg_temp.is_empty()
            && self.clients.iter().all(|c| c.pending.is_none())
            && acting.iter().enumerate().all(|(i, &m)| {
                let o = &self.osds[m as usize];
                o.queue.is_empty()
                    && o.pg.as_ref().is_some_and(|pg| {
                        pg.status().0.acting == acting
                            && pg.status().1 == shoal_osd::pg::Phase::Active
                            && pg.missing().is_empty()
                            && (i != 0 || pg.is_clean_head())
                    })
            })
    }

    /// The end state: every member holds exactly what the clients wrote.
    fn check_final(&self) -> Result<(), String> {
        let acting = self.mon.acting(self.mon.latest());
        let disk = |m: i32| self.osds[m as usize].disk.clone().unwrap_or_default();
        let head = disk(acting[0]);
        for (name, h) in &self.hist {
            if h.acked != h.ops.len() {
                return Err(format!(
                    "{name}: {} of {} writes answered",
                    h.acked,
                    h.ops.len()
                ));
            }
            let expected = h.after(h.ops.len());
            for &m in &acting {
                let got = disk(m).objects.get(name).map(|o| o.data.clone());
                if got != expected {
                    return Err(format!(
                        "{name} on osd.{m}: {got:?}, the clients wrote {expected:?}"
                    ));
                }
            }
        }
        let head_objects: BTreeMap<&String, _> = head.client_objects().collect();
        let head_log = head.loaded().map_err(|e| e.to_string())?.log.head();
        for &m in &acting {
            let d = disk(m);
            let objects: BTreeMap<&String, _> = d.client_objects().collect();
            if objects != head_objects {
                return Err(format!("osd.{m}'s objects differ from the head's"));
            }
            let log = d.loaded().map_err(|e| e.to_string())?.log.head();
            if log != head_log {
                return Err(format!(
                    "osd.{m}'s log ends at {log}, the head's at {head_log}"
                ));
            }
        }
        Ok(())
    }

    /// Runs the chaos phase, heals everything, and checks the outcome.
    pub fn run(mut self) -> Result<Stats, String> {
        let heal_at = self.cfg.chaos_ms;
        let stop_issuing_at = heal_at + 300;
        let deadline = heal_at + 30_000;
        while let Some(((t, _), ev)) = self.events.pop_first() {
            self.now = t;
            if self.chaos && t >= heal_at {
                self.chaos = false;
                let dead: Vec<i32> = self
                    .osds
                    .iter()
                    .filter(|o| !o.alive)
                    .map(|o| o.id)
                    .collect();
                for o in dead {
                    self.restart(o);
                }
            }
            if self.issuing && t >= stop_issuing_at {
                self.issuing = false;
            }
            self.handle(ev);
            if let Some(v) = self.violation.take() {
                return Err(self.report(&v));
            }
            if !self.chaos && !self.issuing && self.quiescent() {
                // Healed: a deep scrub (with repair) at the head must find
                // every copy equal.
                if !self.final_scrub_asked {
                    self.final_scrub_asked = true;
                    self.ask_final_scrub();
                    continue;
                }
                let Some(result) = self.final_scrub.take() else {
                    continue;
                };
                if std::env::var_os("SHOAL_PG_SIM_SHOW").is_some() {
                    eprintln!("{}", self.report("healed"));
                }
                if !result.inconsistent.is_empty() {
                    let what = format!("the final deep scrub found {:?}", result.inconsistent);
                    return Err(self.report(&what));
                }
                self.stats.scrubbed_objects += result.objects;
                return self
                    .check_final()
                    .map(|()| self.stats.clone())
                    .map_err(|e| self.report(&e));
            }
            if t > deadline {
                return Err(self.report("not healed 30 s after the faults stopped"));
            }
        }
        Err(self.report("the simulation ran out of events"))
    }

    fn report(&self, what: &str) -> String {
        let mut s = format!(
            "seed {}: {what}\nconfig: {:?}\nstats: {:?}\n",
            self.cfg.seed, self.cfg, self.stats
        );
        let latest = self.mon.latest();
        s += &format!(
            "map {}: up {:?} acting {:?} up set {:?} pg_temp {:?} recorded {:?}\n",
            latest.epoch,
            latest.up,
            self.mon.acting(latest),
            self.mon.up(latest),
            latest.pg_temp,
            self.mon.recorded
        );
        for o in &self.osds {
            let pg = o.pg.as_ref().map(|pg| {
                let (iv, phase) = pg.status();
                format!(
                    "interval {} {:?} up {:?} phase {:?} log {}..{} les {:?} missing {:?}",
                    iv.epoch,
                    iv.acting,
                    iv.up,
                    phase,
                    pg.log().tail(),
                    pg.log().head(),
                    pg.peering_record(),
                    pg.missing()
                )
            });
            s += &format!(
                "osd.{}: alive {} cut {} map {} queue {} pg {}\n",
                o.id,
                o.alive,
                o.isolated(self.now),
                o.map_epoch,
                o.queue.len(),
                pg.unwrap_or_else(|| "-".into())
            );
        }
        for (i, c) in self.clients.iter().enumerate() {
            if let Some(p) = &c.pending {
                s += &format!(
                    "client {i} (map {}) waits: {:?} on {} ({:?})\n",
                    c.epoch, p.reqid.tid, p.object, p.write
                );
            }
        }
        s += "last events:\n";
        let lines = std::env::var("SHOAL_PG_SIM_TRACE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(40);
        for line in self.trace.iter().rev().take(lines).rev() {
            s += line;
            s.push('\n');
        }
        s
    }
}
