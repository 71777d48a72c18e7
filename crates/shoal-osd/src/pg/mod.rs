//! One PG on one OSD as a pure state machine (see `docs/osd.md`, "The PG
//! state machine"); the daemon (`shard.rs`) and the simulator
//! (`tests/pg_sim`) drive it alike.
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
mod activation;
mod answers;
mod backfill;
mod catchup;
mod client;
mod dispatch;
mod interval;
mod objects;
mod peering;
mod push;
mod pushed;
mod records;
mod recovery;
mod report;
mod scrub;
mod types;
mod write;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use shoal_proto::osd::PgRef;
use shoal_proto::rep::{PgActivate, PgQuery};

pub use self::records::{
    Loaded, OmapRecords, decode_loaded, dup_records, log_txn, split_loaded, write_txn,
};
pub use self::report::{PgCondition, pg_state};
pub use self::types::{
    Action, ClientAnswer, ClientOp, Event, Facts, Interval, LogLimits, OpId, OutRequest,
    PeerAnswer, PeerReply, PeerRequest, Pending, Phase, ReplyTo, ScrubRequest, StoreRead, Timer,
    Token, TxnDone,
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
    /// A peering attempt that does not move for this long starts again.
    pub stall: Duration,
    /// Objects of the PG recovered at once while active.
    pub recovery_active: usize,
    /// Bugs to plant (the simulation proves it catches them); none in the
    /// daemon.
    pub planted: PlantedBugs,
}

/// Bugs the simulation must catch, planted back on purpose by its tests.
/// The daemon never sets any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// Answer a peering query whatever this copy's map (it may still take
    /// writes of an older chain afterwards).
    pub answer_from_older_maps: bool,
    /// Serve reads without checking the chain mates' read leases.
    pub serve_reads_without_lease: bool,
    /// After its own backfill, push the members every local object, not
    /// only what it pulled (stale objects come back).
    pub push_unpulled_after_own_backfill: bool,
}

/// Records of this copy stored by a transaction in flight, taken as its
/// state once the transaction is durable.
#[derive(Debug)]
struct Stored {
    log: PgLog,
    missing: BTreeSet<String>,
    les: u32,
    acting: Vec<i32>,
}

impl Stored {
    fn new(log: PgLog, missing: BTreeSet<String>, les: u32, acting: Vec<i32>) -> Stored {
        Stored {
            log,
            missing,
            les,
            acting,
        }
    }
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
    /// Head: recovery pushes in flight.
    recovering: usize,
    write: write::Writes,
    /// Head: each object's tasks, one at a time.
    objects_q: objects::Objects,
    /// Head: the peering attempt in progress.
    peering: Option<peering::Peering>,
    /// Peering attempts made (names them), and failures in a row.
    attempts: u64,
    failures: u32,
    /// Head: peering waits for a member of an earlier interval.
    incomplete: bool,
    /// Head: the backfill of the up set, and whether it runs.
    backfill: backfill::Backfill,
    backfilling: bool,
    /// Objects pushed to this copy during this interval's peering (a
    /// backfilled copy keeps only those).
    pushed: pushed::Pushed,
    /// This copy is being backfilled by the head of this interval.
    backfill_of: Option<u32>,
    /// A member's activation being stored.
    activation: Option<(ReplyTo, PgActivate)>,
    /// What was pushed to this copy when a backfilled activation came
    /// (its digest matched): the objects it keeps, even if a new peering
    /// attempt clears `pushed` while the stale ones are being listed.
    activation_kept: pushed::Pushed,
    /// Records being stored (adopted log, activation, backfill step).
    stored_records: Option<Stored>,
    /// Head: the scrub running, those asked for meanwhile, the object
    /// whose second look waits for its write to be done, and the objects
    /// the last scrub of the whole PG left inconsistent.
    scrub: Option<scrub::Scrub>,
    scrub_queue: VecDeque<ScrubRequest>,
    at_rest_wait: Option<String>,
    inconsistent: BTreeSet<String>,
    /// Peering queries waiting for this copy's transactions to be stored.
    deferred_queries: Vec<(i32, ReplyTo, PgQuery)>,
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
            recovering: 0,
            write: write::Writes::new(Chain::new(true, head)),
            objects_q: objects::Objects::default(),
            peering: None,
            attempts: 0,
            failures: 0,
            incomplete: false,
            backfill: backfill::Backfill::default(),
            backfilling: false,
            pushed: pushed::Pushed::default(),
            backfill_of: None,
            activation: None,
            activation_kept: pushed::Pushed::default(),
            stored_records: None,
            scrub: None,
            scrub_queue: VecDeque::new(),
            at_rest_wait: None,
            inconsistent: BTreeSet::new(),
            deferred_queries: Vec::new(),
            objects: 0,
            pending: HashMap::new(),
            txns: HashMap::new(),
            next_token: 1,
            actions: Vec::new(),
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

    /// The interval this copy last went active in (or whose log it took),
    /// and its chain.
    pub fn peering_record(&self) -> (u32, &[i32]) {
        (self.les, &self.last_acting)
    }

    /// Head: objects the last scrub of the whole PG found inconsistent and
    /// did not repair.
    pub fn inconsistent(&self) -> &BTreeSet<String> {
        &self.inconsistent
    }

    /// Objects this copy lacks.
    pub fn missing(&self) -> &BTreeSet<String> {
        &self.missing
    }

    /// Whether store transactions of this PG are still being stored.
    pub fn settled(&self) -> bool {
        self.txns.is_empty()
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

    /// Takes records whose transaction is durable as this copy's state.
    fn take_records(&mut self, s: Stored) {
        self.log = s.log;
        self.missing = s.missing;
        self.les = s.les;
        self.last_acting = s.acting;
    }
}

#[cfg(test)]
mod tests;
