//! One PG on one OSD as a pure state machine (issue 22, being built; see
//! `docs/osd.md`, "The PG state machine").
//!
//! [`Pg::handle`] takes one [`Event`] at a time, with the time and the
//! OSD-wide [`Facts`] it may read, and queues [`Action`]s that the caller
//! (the daemon's shell, or the simulator) executes and drains with
//! [`Pg::actions`]. There is no IO, no clock and no task inside: store
//! transactions, store reads, messages, monitor commands and timers are
//! all actions, and their outcomes come back as events carrying the
//! [`Token`] the action named.
//!
//! Invariants this module keeps (each concern's file says how):
//! - on every member, writes enter the store in version order, each with
//!   its log entry in the same transaction (`write.rs`, `records.rs`);
//! - a client hears that its write succeeded only once every member of the
//!   chain has it durably (`write.rs`, over [`crate::chain::Chain`]);
//! - a retried request is answered with the version it made, never
//!   applied twice, while the log or its dups remember it (`write.rs`);
//! - at the head, one write per object is being resolved or stored at a
//!   time, so appends and guards see the previous write (`write.rs`);
//! - nothing an earlier interval queued is acted on in a later one: every
//!   pending answer names the interval it was asked in (`interval.rs`).

mod activate;
mod client;
mod interval;
mod push;
mod records;
mod types;
mod write;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use shoal_proto::osd::PgRef;

pub use self::records::{Loaded, OmapRecords, decode_loaded, dup_records, log_txn, write_txn};
pub use self::types::{
    Action, ClientAnswer, ClientOp, Event, Facts, Interval, LogLimits, OpId, PeerReply,
    PeerRequest, Pending, Phase, ReplyTo, StoreRead, Token, TxnDone,
};
use crate::chain::Chain;
use crate::missing::Missing;

use crate::pglog::{PgLog, collection};

/// Settings of a PG's state machine.
#[derive(Debug, Clone, Copy)]
pub struct PgConfig {
    /// Log entries kept and trimmed requests remembered.
    pub log_limits: LogLimits,
    /// Chunk size of the store (the head checksums whole-object writes of
    /// at least a chunk once, for every member).
    pub chunk_size: u64,
}

/// One PG on this OSD (see the module doc).
#[derive(Debug)]
pub struct Pg {
    id: PgRef,
    coll: String,
    whoami: i32,
    cfg: PgConfig,
    interval: Interval,
    phase: Phase,
    log: PgLog,
    /// The interval this copy last went active in, and its chain.
    les: u32,
    last_acting: Vec<i32>,
    /// Objects this copy lacks (kept in the store too).
    missing: BTreeSet<String>,
    /// Head: what the other members lack.
    recovery: Missing,
    write: write::Writes,
    /// Objects pushed to this copy during this interval's peering (a
    /// backfilled copy keeps only those).
    pushed: HashSet<String>,
    /// This copy is being backfilled by the head of this interval.
    backfill_of: Option<u32>,
    /// A member's activation being stored.
    activation: Option<(ReplyTo, shoal_proto::rep::PgActivate)>,
    /// Objects in the PG, kept by the head (for `status`).
    objects: u64,
    /// Outstanding requests and reads, by token.
    pending: HashMap<Token, Pending>,
    /// Store transactions submitted and not finished, of any interval.
    txns: HashMap<Token, TxnDone>,
    next_token: u64,
    actions: Vec<Action>,
}

impl Pg {
    /// The PG as its store records left it (see [`decode_loaded`]), in no
    /// interval yet: a stray until the first map gives it one.
    pub fn new(id: PgRef, whoami: i32, cfg: PgConfig, loaded: Loaded) -> Pg {
        let head = loaded.log.head();
        Pg {
            id,
            coll: collection(id),
            whoami,
            cfg,
            interval: Interval::default(),
            phase: Phase::Stray,
            log: loaded.log,
            les: loaded.info.last_epoch_started,
            last_acting: loaded.info.last_acting,
            missing: loaded.missing,
            recovery: Missing::default(),
            write: write::Writes::new(Chain::new(true, head)),
            pushed: HashSet::new(),
            backfill_of: None,
            activation: None,
            objects: 0,
            pending: HashMap::new(),
            txns: HashMap::new(),
            next_token: 1,
            actions: Vec::new(),
        }
    }

    /// Takes one event at `now` (the shell's monotonic clock), with the
    /// OSD-wide `facts`; queues the actions it leads to.
    pub fn handle(&mut self, now: Duration, facts: &dyn Facts, event: Event) {
        // Timers come with peering; nothing reads the clock yet.
        let _ = now;
        match event {
            Event::Interval(interval) => self.on_interval(interval),
            Event::Client(op) => self.on_client(facts, op),
            Event::List { op, epoch } => self.on_list(facts, op, epoch),
            Event::LeasesRenewed { token } => self.on_leases_renewed(facts, token),
            Event::Request { from, reply, req } => match req {
                PeerRequest::Activate(act) => self.on_activate(from, reply, act),
                PeerRequest::Push { push, payload } => self.on_push(reply, push, payload),
            },
            Event::Rep { from, rep, payload } => self.on_rep(from, rep, payload),
            Event::RepAck {
                from,
                interval,
                version,
            } => self.on_rep_ack(from, interval, version),
            Event::Stored { token, result } => self.on_stored(token, result),
            Event::Read { token, result } => self.on_read(token, result),
        }
    }

    /// The actions queued since the last call, in order.
    pub fn actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    /// The PG.
    pub fn id(&self) -> PgRef {
        self.id
    }

    /// The current interval and this copy's phase in it.
    pub fn status(&self) -> (&Interval, Phase) {
        (&self.interval, self.phase)
    }

    /// The log (for peering answers and inspection).
    pub fn log(&self) -> &PgLog {
        &self.log
    }

    /// Objects in the PG as the head counts them.
    pub fn objects(&self) -> u64 {
        self.objects
    }

    fn position(&self) -> Option<usize> {
        self.interval.acting.iter().position(|&o| o == self.whoami)
    }

    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Queues a store transaction; `done` says what its completion means.
    fn submit(&mut self, txn: shoal_store::Transaction, done: TxnDone) -> Token {
        let token = self.token();
        self.txns.insert(token, done);
        self.act(Action::Submit { token, txn });
        token
    }

    /// Whether store transactions of this PG are still being stored.
    pub fn settled(&self) -> bool {
        self.txns.is_empty()
    }

    fn on_stored(&mut self, token: Token, result: Result<(), crate::exec::OpError>) {
        let Some(done) = self.txns.remove(&token) else {
            return;
        };
        match done {
            TxnDone::Write { interval, version } => self.write_stored(interval, version, result),
            TxnDone::Unpushed { reply, last } => self.unpushed_removed(reply, last, result),
            TxnDone::Activated { interval, reply } => {
                self.activation_stored(interval, reply, result)
            }
            TxnDone::Pushed {
                object,
                interval,
                reply,
            } => self.push_stored(object, interval, reply, result),
        }
    }

    fn on_read(&mut self, token: Token, result: Result<StoreRead, crate::exec::OpError>) {
        let Some(pending) = self.pending.remove(&token) else {
            return;
        };
        match pending {
            Pending::View { op, interval } => self.view_loaded(op, interval, result),
            Pending::Unpushed { reply } => self.unpushed_listed(reply, result),
            // Not a store read: answered by its own event.
            p @ Pending::Lease { .. } => {
                self.pending.insert(token, p);
            }
        }
    }
}

#[cfg(test)]
mod tests;
