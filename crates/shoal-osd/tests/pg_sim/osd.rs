//! A simulated OSD: its durable store, its store queue, the real PG state
//! machine, and what its shell keeps (heartbeat answers, outstanding
//! requests, the links down the chain, the client ops it is serving).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use shoal_osd::pg::{Facts, OpId, Pg, ReplyTo, Token};
use shoal_proto::osd::{ObjVersion, ReqId};
use shoal_proto::rep::{HeardFrom, RepOp};
use shoal_store::Transaction;

use crate::world::SimColl;

/// Read leases last this long (ms).
pub const LEASE: u64 = 40;

/// The client op an OSD is serving: who asked, and what.
#[derive(Debug, Clone)]
pub struct Served {
    pub client: usize,
    pub reqid: ReqId,
    pub object: String,
    pub write: bool,
}

/// The ordered link to the next member in one interval: every write not
/// yet acknowledged, re-sent until it is.
#[derive(Debug, Default)]
pub struct Link {
    pub pending: VecDeque<(ObjVersion, RepOp, Bytes)>,
}

pub struct SimOsd {
    pub id: i32,
    pub alive: bool,
    /// Bumped by every crash: events of an earlier life are dropped.
    pub life: u64,
    /// The PG's collection as it survives a crash (`None`: never had it).
    pub disk: Option<SimColl>,
    /// Transactions submitted and not yet durable, oldest first.
    pub queue: VecDeque<(Token, Transaction)>,
    /// The PG's state machine (lost by a crash).
    pub pg: Option<Pg>,
    /// The newest map epoch installed.
    pub map_epoch: u32,
    /// A map installed since the last boot showed this OSD up.
    pub seen_up: bool,
    /// When it last booted, and when it may try again (ms).
    pub booted_at: u64,
    pub next_boot: u64,
    /// Cut off from the other OSDs and the monitors until then (ms).
    pub isolated_until: u64,
    /// Peer -> (when the answered ping was sent, the peer's epoch).
    pub answers: BTreeMap<i32, (u64, u32)>,
    /// Peer -> when last heard from.
    pub heard: BTreeMap<i32, u64>,
    /// This PG's requests waiting for an answer.
    pub outstanding: BTreeMap<Token, ()>,
    /// Peers' requests waiting for this PG's answer: reply id -> (peer,
    /// the peer's life when it asked, its token).
    pub incoming: BTreeMap<u64, (i32, u64, Token)>,
    pub next_reply: u64,
    /// Client ops being served, by handle.
    pub served: BTreeMap<OpId, Served>,
    pub next_op: u64,
    /// Links down the chain, by (next member, interval).
    pub links: BTreeMap<(i32, u32), Link>,
}

impl SimOsd {
    pub fn new(id: i32) -> Self {
        SimOsd {
            id,
            alive: true,
            life: 0,
            disk: None,
            queue: VecDeque::new(),
            pg: None,
            map_epoch: 0,
            seen_up: false,
            booted_at: 0,
            next_boot: 0,
            isolated_until: 0,
            answers: BTreeMap::new(),
            heard: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            incoming: BTreeMap::new(),
            next_reply: 1,
            served: BTreeMap::new(),
            next_op: 1,
            links: BTreeMap::new(),
        }
    }

    /// Loses everything not on disk.
    pub fn crash(&mut self) {
        self.alive = false;
        self.life += 1;
        self.queue.clear();
        self.pg = None;
        // A restart starts from the newest map.
        self.map_epoch = 0;
        self.seen_up = false;
        self.answers.clear();
        self.heard.clear();
        self.outstanding.clear();
        self.incoming.clear();
        self.served.clear();
        self.links.clear();
    }

    pub fn isolated(&self, now: u64) -> bool {
        now < self.isolated_until
    }

    /// What the PG may read of this OSD now.
    pub fn facts(&self, now: u64, up: &std::collections::BTreeSet<i32>) -> SimFacts {
        SimFacts {
            me: self.id,
            now,
            epoch: self.map_epoch,
            up: up.clone(),
            answers: self.answers.clone(),
            heard: self
                .heard
                .iter()
                .map(|(&osd, &t)| HeardFrom {
                    osd,
                    ms_ago: now.saturating_sub(t),
                })
                .collect(),
        }
    }
}

/// The OSD-wide facts of a simulated OSD at one moment.
pub struct SimFacts {
    me: i32,
    now: u64,
    epoch: u32,
    up: std::collections::BTreeSet<i32>,
    answers: BTreeMap<i32, (u64, u32)>,
    heard: Vec<HeardFrom>,
}

impl Facts for SimFacts {
    fn map_epoch(&self) -> u32 {
        self.epoch
    }
    fn is_full(&self, _osd: i32) -> bool {
        false
    }
    fn lease_lapsed(&self, chain: &[i32]) -> Vec<i32> {
        chain
            .iter()
            .copied()
            .filter(|&m| m != self.me)
            .filter(|m| {
                !self.answers.get(m).is_some_and(|&(sent, epoch)| {
                    epoch <= self.epoch && self.now.saturating_sub(sent) < LEASE
                })
            })
            .collect()
    }
    fn lease(&self) -> Duration {
        Duration::from_millis(LEASE)
    }
    fn heard_ago(&self) -> Vec<HeardFrom> {
        self.heard.clone()
    }
    fn is_up(&self, osd: i32) -> bool {
        self.up.contains(&osd)
    }
}

/// A reply id for a peer's request, remembered until answered.
pub fn remember(o: &mut SimOsd, asker: (i32, u64), token: Token) -> ReplyTo {
    let id = o.next_reply;
    o.next_reply += 1;
    o.incoming.insert(id, (asker.0, asker.1, token));
    ReplyTo(id)
}
