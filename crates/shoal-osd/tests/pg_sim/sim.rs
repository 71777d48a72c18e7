//! The driver: time, network, faults, clients and the checks.

use std::collections::{BTreeMap, BTreeSet};

use shoal_osd::pg::Phase;
use shoal_proto::osd::ReqId;

use crate::world::{
    Client, Content, History, MapEpoch, Monitor, Msg, Node, Osd, Pending, Refused, Rng, Then, Txn,
    WriteOp,
};

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
    PeerRetry {
        osd: i32,
        life: u64,
        generation: u64,
    },
    PeerCheck {
        osd: i32,
        life: u64,
        generation: u64,
        attempt: u64,
    },
    PriorGiveUp {
        osd: i32,
        life: u64,
        generation: u64,
        attempt: u64,
    },
    RecoveryRetry {
        osd: i32,
        life: u64,
        generation: u64,
    },
    Record {
        osd: i32,
        life: u64,
        generation: u64,
        attempt: u64,
    },
    Fault,
    ClientTick(usize),
    ClientSend {
        client: usize,
        sends: u64,
    },
}

/// Counters a run reports.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub writes_acked: u64,
    pub reads_checked: u64,
    pub crashes: u64,
    pub epochs: u32,
    pub peering_attempts: u64,
    pub incomplete: u64,
    pub unfound: u64,
    pub backfills: u64,
    pub pulls: u64,
    pub recovery_pushes: u64,
    pub recovered_objects: u64,
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
    /// The planted bug: members answer a peering query whatever their map.
    pub lax_query: bool,
}

impl Config {
    /// Settings drawn from the seed.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x5eed);
        // Drawn in the order the seeds were made with.
        let osds = 4 + r.below(2) as i32;
        let min_size = 1 + r.below(2) as usize;
        let log_keep = [16, 32, 96][r.below(3) as usize];
        Config {
            seed,
            osds,
            size: 3,
            min_size,
            log_keep,
            log_dups: 4 * log_keep,
            objects: 3 + r.below(6) as usize,
            clients: 1 + r.below(3) as usize,
            substitute: r.pct(60),
            chaos_ms: 1500 + r.below(1500),
            lax_query: false,
        }
    }
}

pub struct Sim {
    pub now: u64,
    pub rng: Rng,
    seq: u64,
    events: BTreeMap<(u64, u64), Ev>,
    links: BTreeMap<(Node, Node), u64>,
    pub osds: Vec<Osd>,
    pub mon: Monitor,
    pub clients: Vec<Client>,
    client_sends: Vec<u64>,
    pub hist: BTreeMap<String, History>,
    reqs: BTreeMap<ReqId, (String, usize)>,
    pub stats: Stats,
    pub next_attempt: u64,
    pub min_size: usize,
    pub log_keep: usize,
    pub log_dups: usize,
    pub lax_query: bool,
    issuing: bool,
    chaos: bool,
    violation: Option<String>,
    trace: Vec<String>,
    cfg: Config,
}

const CLIENT_TIMEOUT: u64 = 150;
const CLIENT_BACKOFF: u64 = 20;

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
        };
        let objects = (0..cfg.objects)
            .map(|i| (format!("obj{i}"), History::default()))
            .collect();
        let mut sim = Sim {
            now: 0,
            rng,
            seq: 0,
            events: BTreeMap::new(),
            links: BTreeMap::new(),
            osds: (0..cfg.osds).map(Osd::new).collect(),
            mon: Monitor {
                maps: vec![first],
                pref,
                size: cfg.size,
                substitute: cfg.substitute,
                recorded: Default::default(),
            },
            clients: (0..cfg.clients).map(|_| Client::default()).collect(),
            client_sends: vec![0; cfg.clients],
            hist: objects,
            reqs: BTreeMap::new(),
            stats: Stats::default(),
            next_attempt: 0,
            min_size: cfg.min_size,
            log_keep: cfg.log_keep,
            log_dups: cfg.log_dups,
            lax_query: cfg.lax_query,
            issuing: true,
            chaos: true,
            violation: None,
            trace: Vec::new(),
            cfg,
        };
        sim.publish(1);
        for c in 0..sim.clients.len() {
            sim.schedule(1, Ev::ClientTick(c));
        }
        let first_fault = sim.rng.range(20, 200);
        sim.schedule(first_fault, Ev::Fault);
        sim
    }

    pub fn osd(&mut self, id: i32) -> &mut Osd {
        &mut self.osds[id as usize]
    }

    pub fn schedule(&mut self, after: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((self.now + after, self.seq), ev);
    }

    pub fn trace(&mut self, line: String) {
        if self.trace.len() > 400 {
            self.trace.drain(..200);
        }
        self.trace.push(format!("{:>6} {line}", self.now));
    }

    pub fn violation(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(what);
        }
    }

    /// Sends over an ordered link: delay with rare spikes, never ahead of
    /// an earlier message on the same link; lost if the receiver restarts.
    pub fn send(&mut self, from: Node, to: Node, msg: Msg) {
        let delay = if self.rng.pct(3) {
            self.rng.range(20, 60)
        } else {
            self.rng.range(1, 4)
        };
        let at = (self.now + delay).max(self.links.get(&(from, to)).copied().unwrap_or(0));
        self.links.insert((from, to), at);
        let to_life = match to {
            Node::Osd(o) => self.osds[o as usize].life,
            Node::Client(_) => 0,
        };
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

    /// Queues a store transaction; transactions become durable in order.
    pub fn submit(&mut self, id: i32, txn: Txn, then: Then) {
        let o = self.osd(id);
        o.queue.push_back((txn, then));
        if o.queue.len() == 1 {
            let life = o.life;
            let d = self.rng.range(1, 5);
            self.schedule(d, Ev::DiskDone { osd: id, life });
        }
    }

    fn disk_event(&mut self, id: i32, life: u64) {
        let o = self.osd(id);
        if o.life != life || !o.alive {
            return;
        }
        let Some((txn, then)) = o.queue.pop_front() else {
            return;
        };
        o.disk.apply(txn);
        if !o.queue.is_empty() {
            let d = self.rng.range(1, 5);
            self.schedule(d, Ev::DiskDone { osd: id, life });
        }
        self.disk_done(id, then);
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
    }

    pub fn reply(
        &mut self,
        id: i32,
        client: usize,
        reqid: ReqId,
        result: Result<Option<Content>, Refused>,
    ) {
        self.send(
            Node::Osd(id),
            Node::Client(client),
            Msg::Reply { reqid, result },
        );
    }

    /// Head: a write is committed. Checked: every member of the chain has
    /// it in its store (with exactly the content the clients' writes so
    /// far give), and nothing is missing there.
    pub fn answer_write(&mut self, id: i32, client: usize, reqid: ReqId, object: &str) {
        if let Some((name, index)) = self.reqs.get(&reqid).cloned() {
            let h = &self.hist[&name];
            if index == h.ops.len() && name == object {
                let expected = h.after(index);
                let acting = self.osds[id as usize].interval.acting.clone();
                for m in acting {
                    let d = &self.osds[m as usize].disk;
                    let got = d.objects.get(object).map(|(_, c)| c.clone());
                    if got != expected || d.missing.contains(object) {
                        self.violation(format!(
                            "osd.{id} acknowledged write {index} to {object} but osd.{m} has {got:?} (missing: {}), expected {expected:?}",
                            d.missing.contains(object)
                        ));
                    }
                }
            }
        }
        self.reply(id, client, reqid, Ok(None));
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
        let pending = if self.rng.pct(20) {
            Pending {
                msg: Msg::Read {
                    reqid,
                    object: object.clone(),
                },
                object,
                acked_at_issue: h.acked,
            }
        } else if h.busy {
            let d = self.rng.range(1, 10);
            self.schedule(d, Ev::ClientTick(c));
            return;
        } else {
            let op = if self.rng.pct(12) {
                WriteOp::Delete
            } else {
                WriteOp::Append(self.seq * 1000 + c as u64)
            };
            h.busy = true;
            h.ops.push(op);
            self.reqs.insert(reqid, (object.clone(), h.ops.len()));
            Pending {
                msg: Msg::Write {
                    reqid,
                    object: object.clone(),
                    op,
                },
                object,
                acked_at_issue: 0,
            }
        };
        self.clients[c].pending = Some(pending);
        self.client_send(c);
    }

    fn client_send(&mut self, c: usize) {
        let Some(p) = &self.clients[c].pending else {
            return;
        };
        let msg = p.msg.clone();
        self.client_sends[c] += 1;
        let sends = self.client_sends[c];
        let acting = self.mon.acting(self.mon.latest());
        if let Some(&head) = acting.first() {
            self.send(Node::Client(c), Node::Osd(head), msg);
        }
        self.schedule(CLIENT_TIMEOUT, Ev::ClientSend { client: c, sends });
    }

    fn on_reply(&mut self, c: usize, reqid: ReqId, result: Result<Option<Content>, Refused>) {
        let Some(p) = &self.clients[c].pending else {
            return;
        };
        let (mine, is_read) = match &p.msg {
            Msg::Write { reqid: r, .. } => (*r == reqid, false),
            Msg::Read { reqid: r, .. } => (*r == reqid, true),
            _ => (false, false),
        };
        if !mine {
            return;
        }
        let content = match result {
            Ok(c) => c,
            Err(_) => {
                self.client_sends[c] += 1;
                let sends = self.client_sends[c];
                self.schedule(CLIENT_BACKOFF, Ev::ClientSend { client: c, sends });
                return;
            }
        };
        let p = self.clients[c].pending.take().expect("pending");
        let h = self.hist.get_mut(&p.object).expect("known object");
        if is_read {
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

    fn fault(&mut self) {
        if !self.chaos {
            return;
        }
        let alive: Vec<i32> = self.osds.iter().filter(|o| o.alive).map(|o| o.id).collect();
        let roll = self.rng.below(100);
        if roll < 6 {
            // Every OSD at once (a power cut), all back shortly.
            self.trace("power cut".into());
            for o in alive {
                self.crash(o);
                let d = self.rng.range(10, 80);
                self.schedule(d, Ev::Restart(o));
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
        o.reload();
        let life = o.life;
        let d = self.rng.range(1, 5);
        self.schedule(d, Ev::Boot { osd: id, life });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver {
                from,
                to,
                to_life,
                msg,
            } => match to {
                Node::Osd(o) => {
                    let osd = &self.osds[o as usize];
                    if osd.alive && osd.life == to_life {
                        self.on_osd_msg(o, from, *msg);
                    }
                }
                Node::Client(c) => {
                    if let Msg::Reply { reqid, result } = *msg {
                        self.on_reply(c, reqid, result);
                    }
                }
            },
            Ev::DiskDone { osd, life } => self.disk_event(osd, life),
            Ev::MapArrives { osd, life, epoch } => {
                let o = &self.osds[osd as usize];
                if o.alive && o.life == life {
                    for e in o.disk.map_epoch + 1..=epoch {
                        self.install(osd, e);
                    }
                }
            }
            Ev::Restart(o) => self.restart(o),
            Ev::MarkDown { osd, life } => {
                let o = &self.osds[osd as usize];
                if !o.alive && o.life == life && self.mon.latest().up.contains(&osd) {
                    let e = self.mon.change(osd, false);
                    self.trace(format!("epoch {e}: osd.{osd} down"));
                    self.publish(e);
                }
            }
            Ev::Boot { osd, life } => {
                let o = &self.osds[osd as usize];
                if o.alive && o.life == life {
                    let e = self.mon.change(osd, true);
                    self.trace(format!("epoch {e}: osd.{osd} up"));
                    self.publish(e);
                }
            }
            Ev::PeerRetry {
                osd,
                life,
                generation,
            } => self.peer_retry(osd, life, generation),
            Ev::PeerCheck {
                osd,
                life,
                generation,
                attempt,
            } => self.peer_check(osd, life, generation, attempt),
            Ev::PriorGiveUp {
                osd,
                life,
                generation,
                attempt,
            } => self.prior_give_up(osd, life, generation, attempt),
            Ev::RecoveryRetry {
                osd,
                life,
                generation,
            } => self.recovery_retry(osd, life, generation),
            Ev::Record {
                osd,
                life,
                generation,
                attempt,
            } => self.record(osd, life, generation, attempt),
            Ev::Fault => self.fault(),
            Ev::ClientTick(c) => self.client_tick(c),
            Ev::ClientSend { client, sends } => {
                if self.client_sends[client] == sends {
                    self.client_send(client);
                }
            }
        }
    }

    /// Whether the PG is back to normal: every OSD up, the chain full and
    /// active in one interval, nothing missing, no client waiting.
    fn quiescent(&self) -> bool {
        let latest = self.mon.latest();
        let acting = self.mon.acting(latest);
        let iv = self.mon.interval_at(latest.epoch);
        self.osds
            .iter()
            .all(|o| o.alive && o.disk.map_epoch == latest.epoch)
            && acting.len() == self.cfg.size
            && self.clients.iter().all(|c| c.pending.is_none())
            && acting.iter().all(|&m| {
                let o = &self.osds[m as usize];
                o.phase == Phase::Active
                    && o.interval == iv
                    && o.missing.is_empty()
                    && o.queue.is_empty()
                    && o.recovery.is_empty()
                    && o.pushing.is_empty()
            })
    }

    /// The end state: every member holds exactly what the clients wrote.
    fn check_final(&self) -> Result<(), String> {
        let acting = self.mon.acting(self.mon.latest());
        let head = &self.osds[acting[0] as usize];
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
                let got = self.osds[m as usize]
                    .disk
                    .objects
                    .get(name)
                    .map(|(_, c)| c.clone());
                if got != expected {
                    return Err(format!(
                        "{name} on osd.{m}: {got:?}, the clients wrote {expected:?}"
                    ));
                }
            }
        }
        let names: BTreeSet<&String> = head.disk.objects.keys().collect();
        for &m in &acting {
            let d = &self.osds[m as usize].disk;
            let theirs: BTreeSet<&String> = d.objects.keys().collect();
            if theirs != names || d.objects != head.disk.objects {
                return Err(format!("osd.{m}'s objects differ from the head's"));
            }
            if d.log.head() != head.disk.log.head() {
                return Err(format!(
                    "osd.{m}'s log ends at {}, the head's at {}",
                    d.log.head(),
                    head.disk.log.head()
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
        for o in &self.osds {
            s += &format!(
                "osd.{}: alive {} map {} interval {:?} phase {:?} log {}..{} missing {:?} queue {} peering {}\n",
                o.id,
                o.alive,
                o.disk.map_epoch,
                o.interval,
                o.phase,
                o.log.tail(),
                o.log.head(),
                o.missing,
                o.queue.len(),
                o.peering.is_some()
            );
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
