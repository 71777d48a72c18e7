//! The simulated cluster: event queue, network, disks, monitor, clients.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use shoal_osd::chain::Chain;
use shoal_osd::missing::Missing;
use shoal_osd::pglog::PgLog;
use shoal_proto::osd::{ObjVersion, ReqId};
use shoal_proto::rep::{LogDup, LogEntry, PgInfo, PgLogState};

use crate::member::Peering;
use shoal_osd::pg::Phase;

/// splitmix64: small, fast, good enough for choosing faults.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// An object's content: tokens written at positions (what a byte range
/// write does to a file, with one token per "byte").
pub type Content = Vec<u64>;
/// An object's stored state: the version that wrote it and its content.
pub type Obj = (ObjVersion, Content);

/// A client's write as the client means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// Append one token.
    Append(u64),
    /// Remove the object.
    Delete,
}

/// A write as the head resolved it against its copy (the mutation every
/// member applies to its own copy: a wrong base gives a wrong result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// Put `token` at position `at` (cutting the content there first).
    Put { at: usize, token: u64 },
    /// Remove the object.
    Delete,
}

/// Applies `m` to an object's content.
pub fn apply(content: Option<Content>, m: Mutation) -> Option<Content> {
    match m {
        Mutation::Delete => None,
        Mutation::Put { at, token } => {
            let mut c = content.unwrap_or_default();
            c.resize(at, 0);
            c.push(token);
            Some(c)
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    Osd(i32),
    Client(usize),
}

/// Why the PG refused a client request (the client retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// Every message of the simulation.
#[derive(Debug, Clone)]
pub enum Msg {
    Write {
        reqid: ReqId,
        object: String,
        op: WriteOp,
    },
    Read {
        reqid: ReqId,
        object: String,
    },
    /// Head -> tail: serve a read of an object with a write in flight.
    TailRead {
        interval: u32,
        reqid: ReqId,
        object: String,
        client: usize,
    },
    Reply {
        reqid: ReqId,
        result: Result<Option<Content>, Refused>,
    },
    Rep {
        interval: u32,
        entry: LogEntry,
        mutation: Mutation,
    },
    Ack {
        interval: u32,
        version: ObjVersion,
    },
    Query {
        interval: u32,
        attempt: u64,
    },
    /// `None`: not yet (the member's map is behind the interval).
    QueryReply {
        interval: u32,
        attempt: u64,
        state: Option<Option<PgLogState>>,
    },
    Pull {
        interval: u32,
        attempt: u64,
        object: String,
    },
    PullReply {
        interval: u32,
        attempt: u64,
        object: String,
        state: Option<Obj>,
    },
    List {
        interval: u32,
        attempt: u64,
    },
    ListReply {
        interval: u32,
        attempt: u64,
        names: Vec<String>,
    },
    /// Head -> member: an object's whole state (`attempt` 0: recovery
    /// while active).
    Push {
        interval: u32,
        attempt: u64,
        object: String,
        state: Option<Obj>,
    },
    PushAck {
        interval: u32,
        attempt: u64,
        object: String,
        ok: bool,
    },
    Activate {
        interval: u32,
        attempt: u64,
        acting: Vec<i32>,
        info: PgInfo,
        log: Vec<LogEntry>,
        dups: Vec<LogDup>,
        backfill: bool,
        missing: BTreeSet<String>,
    },
    ActivateAck {
        interval: u32,
        attempt: u64,
        ok: bool,
    },
}

/// What a finished store transaction did.
#[derive(Debug, Clone)]
pub enum Txn {
    /// A replicated write with its log entry (the log trimmed to `keep`
    /// entries and `keep_dups` dups).
    Write {
        entry: LogEntry,
        mutation: Mutation,
        keep: usize,
        keep_dups: usize,
    },
    /// A whole object from a push or pull; it leaves the missing set.
    Put { object: String, state: Option<Obj> },
    /// Activation: the authoritative log, interval and missing set.
    StoreLog {
        tail: ObjVersion,
        log: Vec<LogEntry>,
        dups: Vec<LogDup>,
        les: u32,
        acting: Vec<i32>,
        missing: BTreeSet<String>,
    },
    /// Backfill: every object not in the set goes.
    RemoveExcept(BTreeSet<String>),
}

/// What the member does once a transaction is durable.
#[derive(Debug, Clone)]
pub enum Then {
    Written {
        generation: u64,
        seq: u64,
    },
    Pushed {
        generation: u64,
        from: i32,
        interval: u32,
        attempt: u64,
        object: String,
    },
    Pulled {
        generation: u64,
        attempt: u64,
        object: String,
    },
    Activated {
        generation: u64,
        attempt: u64,
        head: i32,
        plan: Option<crate::member::Activation>,
    },
    Nothing,
}

/// What survives a crash.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// Whether this OSD ever held the PG.
    pub has_pg: bool,
    pub objects: BTreeMap<String, Obj>,
    pub log: PgLog,
    pub les: u32,
    pub last_acting: Vec<i32>,
    pub missing: BTreeSet<String>,
    /// The newest map epoch installed (maps are kept on disk).
    pub map_epoch: u32,
}

impl Disk {
    pub fn apply(&mut self, txn: Txn) {
        self.has_pg = true;
        match txn {
            Txn::Write {
                entry,
                mutation,
                keep,
                keep_dups,
            } => {
                let cur = self.objects.remove(&entry.object).map(|(_, c)| c);
                if let Some(c) = apply(cur, mutation) {
                    self.objects
                        .insert(entry.object.clone(), (entry.version, c));
                }
                self.log.push(entry);
                self.log.trim(keep, keep_dups);
            }
            Txn::Put { object, state } => {
                self.missing.remove(&object);
                match state {
                    Some(s) => self.objects.insert(object, s),
                    None => self.objects.remove(&object),
                };
            }
            Txn::StoreLog {
                tail,
                log,
                dups,
                les,
                acting,
                missing,
            } => {
                self.log = PgLog::new(tail, log).with_dups(dups);
                self.les = les;
                self.last_acting = acting;
                self.missing = missing;
            }
            Txn::RemoveExcept(keep) => self.objects.retain(|n, _| keep.contains(n)),
        }
    }

    /// The state a peering head is told about.
    pub fn log_state(&self) -> Option<PgLogState> {
        self.has_pg.then(|| PgLogState {
            info: self.log.info(self.log.head(), self.les, &self.last_acting),
            log: self.log.entries().cloned().collect(),
            dups: self.log.dups().copied().collect(),
            missing: self.missing.iter().cloned().collect(),
        })
    }
}

/// One interval as every OSD computes it from the map history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interval {
    pub epoch: u32,
    pub acting: Vec<i32>,
}

/// One OSD: its disk, its store queue and the PG's state in memory.
pub struct Osd {
    pub id: i32,
    pub alive: bool,
    /// Bumped by every crash: stale events of an earlier life are dropped.
    pub life: u64,
    pub disk: Disk,
    /// Transactions submitted and not yet durable, oldest first.
    pub queue: VecDeque<(Txn, Then)>,
    // The PG in memory (lost by a crash):
    /// Bumped when a new interval begins: completions of the old one are
    /// ignored by the chain.
    pub generation: u64,
    pub interval: Interval,
    pub phase: Phase,
    pub log: PgLog,
    pub missing: BTreeSet<String>,
    pub chain: Chain,
    pub recv_last: ObjVersion,
    pub uncommitted: BTreeMap<String, u64>,
    /// Head: clients waiting for a write, by sequence number.
    pub waiters: BTreeMap<u64, Vec<(usize, ReqId, String)>>,
    /// Head: what members lack.
    pub recovery: Missing,
    /// Head: objects being pushed, and the members yet to confirm.
    pub pushing: BTreeMap<String, BTreeSet<i32>>,
    /// Head: client writes (and retries) waiting for an object's recovery.
    pub blocked: Vec<(usize, Msg)>,
    /// Objects pushed here during this interval's peering (backfill).
    pub pushed: BTreeSet<String>,
    pub peering: Option<Peering>,
    /// Queries answered once the store queue is empty.
    pub deferred_queries: Vec<(i32, u32, u64)>,
}

impl Osd {
    pub fn new(id: i32) -> Self {
        Osd {
            id,
            alive: true,
            life: 0,
            disk: Disk::default(),
            queue: VecDeque::new(),
            generation: 0,
            interval: Interval::default(),
            phase: Phase::Stray,
            log: PgLog::default(),
            missing: BTreeSet::new(),
            chain: Chain::new(true, ObjVersion::default()),
            recv_last: ObjVersion::default(),
            uncommitted: BTreeMap::new(),
            waiters: BTreeMap::new(),
            recovery: Missing::default(),
            pushing: BTreeMap::new(),
            blocked: Vec::new(),
            pushed: BTreeSet::new(),
            peering: None,
            deferred_queries: Vec::new(),
        }
    }

    /// Loses everything not on disk.
    pub fn crash(&mut self) {
        self.alive = false;
        self.life += 1;
        self.queue.clear();
        self.deferred_queries.clear();
        self.reload();
    }

    /// The PG's memory state as a restart loads it from the store.
    pub fn reload(&mut self) {
        self.log = self.disk.log.clone();
        self.missing = self.disk.missing.clone();
        self.interval = Interval::default();
        self.reset_interval_state(Phase::Stray);
    }

    /// What beginning an interval clears (`shoal_osd::pg::Pg::begin`).
    pub fn reset_interval_state(&mut self, phase: Phase) {
        self.generation += 1;
        self.phase = phase;
        let head = self.log.head();
        self.chain = Chain::new(true, head);
        self.recv_last = head;
        self.uncommitted.clear();
        self.waiters.clear();
        self.recovery = Missing::default();
        self.pushing.clear();
        self.blocked.clear();
        self.pushed.clear();
        self.peering = None;
    }

    pub fn position(&self) -> Option<usize> {
        self.interval.acting.iter().position(|&o| o == self.id)
    }

    pub fn is_active_head(&self) -> bool {
        self.phase == Phase::Active && self.position() == Some(0)
    }
}

/// One epoch of the cluster map.
#[derive(Debug, Clone)]
pub struct MapEpoch {
    pub epoch: u32,
    pub up: BTreeSet<i32>,
    pub up_from: BTreeMap<i32, u32>,
}

/// The monitors, reduced to the map history they publish.
pub struct Monitor {
    pub maps: Vec<MapEpoch>,
    /// CRUSH's order of preference for the PG.
    pub pref: Vec<i32>,
    pub size: usize,
    /// Whether a down OSD is replaced in the chain by the next in
    /// preference order (out at once) or leaves the chain short
    /// (undersized until it comes back).
    pub substitute: bool,
    /// The newest interval recorded as going active.
    pub recorded: shoal_osd::peering::Recorded,
}

impl Monitor {
    pub fn latest(&self) -> &MapEpoch {
        self.maps.last().expect("the monitor always has a map")
    }

    pub fn map(&self, epoch: u32) -> &MapEpoch {
        &self.maps[epoch as usize - 1]
    }

    pub fn acting(&self, m: &MapEpoch) -> Vec<i32> {
        if self.substitute {
            self.pref
                .iter()
                .copied()
                .filter(|o| m.up.contains(o))
                .take(self.size)
                .collect()
        } else {
            self.pref[..self.size]
                .iter()
                .copied()
                .filter(|o| m.up.contains(o))
                .collect()
        }
    }

    /// The interval `epoch` belongs to: it began in the first epoch of
    /// the run with the same chain and the same boots of its members.
    pub fn interval_at(&self, epoch: u32) -> Interval {
        let key = |e: u32| {
            let m = self.map(e);
            let acting = self.acting(m);
            let boots: Vec<u32> = acting.iter().map(|o| m.up_from[o]).collect();
            (acting, boots)
        };
        let k = key(epoch);
        let mut began = epoch;
        while began > 1 && key(began - 1) == k {
            began -= 1;
        }
        Interval {
            epoch: began,
            acting: k.0,
        }
    }

    pub fn change(&mut self, osd: i32, up: bool) -> u32 {
        let mut m = self.latest().clone();
        m.epoch += 1;
        if up {
            m.up.insert(osd);
            m.up_from.insert(osd, m.epoch);
        } else {
            m.up.remove(&osd);
        }
        let e = m.epoch;
        self.maps.push(m);
        e
    }
}

/// What the checker knows of one object's history: the clients' writes in
/// the order they were issued (each after the one before was answered).
#[derive(Debug, Default, Clone)]
pub struct History {
    pub ops: Vec<WriteOp>,
    pub acked: usize,
    pub busy: bool,
}

impl History {
    /// The object after the first `n` writes.
    pub fn after(&self, n: usize) -> Option<Content> {
        let mut c: Option<Content> = None;
        for op in &self.ops[..n] {
            c = match op {
                WriteOp::Delete => None,
                WriteOp::Append(t) => {
                    let mut v = c.unwrap_or_default();
                    v.push(*t);
                    Some(v)
                }
            };
        }
        c
    }
}

/// A client request in flight.
#[derive(Debug, Clone)]
pub struct Pending {
    pub msg: Msg,
    pub object: String,
    /// Reads: how many writes to the object were answered when it was sent.
    pub acked_at_issue: usize,
}

/// A client issuing one request at a time, retrying until answered.
#[derive(Debug, Default)]
pub struct Client {
    pub pending: Option<Pending>,
    pub next_tid: u64,
}
