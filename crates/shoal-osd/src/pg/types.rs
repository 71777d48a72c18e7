//! What goes into the PG state machine and what comes out of it.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_proto::osd::{ObjOp, ObjVersion, ReqId, ScrubResult};
use shoal_proto::rep::{
    HeardFrom, IntervalShape, PgActivate, PgBackfill, PgPull, PgPush, PgQuery, PgQueryReply,
    PgScan, PgScanReply, RepOp, ScrubEntry, ScrubMapReply, ScrubMapRequest,
};

use crate::exec::{ObjectView, OpError};

/// A client op as the shell knows it (it keeps the way to answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Names one of the machine's own outstanding actions (a store
/// transaction, a store read, a request); its outcome comes back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// A peer's request waiting for this PG's answer (the shell keeps the
/// way back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyTo(pub u64);

/// A client request for this PG, already authenticated and authorised.
#[derive(Debug, Clone)]
pub struct ClientOp {
    /// Its handle in the shell.
    pub op: OpId,
    /// The client's map epoch.
    pub epoch: u32,
    /// Its request id (the same on every retry).
    pub reqid: ReqId,
    /// The object.
    pub object: String,
    /// Its ops.
    pub ops: Vec<ObjOp>,
    /// The data its ops point into.
    pub payload: Bytes,
    /// Whether it changes the object (`exec::classify`).
    pub write: bool,
    /// A read the client may send to any chain member.
    pub balance: bool,
    /// Checksums of its whole-object writes, made by the shell before the
    /// op reaches the PG (`exec::hash_writes` over `ops`; empty: the head
    /// hashes them itself), so that hashing big writes runs on every core
    /// instead of in the PG's shard.
    pub sums: Vec<shoal_proto::rep::DataSums>,
}

/// What the OSD around the PG knows that the PG reads but does not own.
pub trait Facts {
    /// The newest map epoch this OSD has installed.
    fn map_epoch(&self) -> u32;
    /// Whether OSD `osd`'s store is full (it refuses writes that do not
    /// free space).
    fn is_full(&self, osd: i32) -> bool;
    /// The members of `chain` (other than this OSD) whose read lease has
    /// lapsed now (`lease.rs`): no heartbeat answer within a lease, or one
    /// from a newer map.
    fn lease_lapsed(&self, chain: &[i32]) -> Vec<i32>;
    /// How long a read lease lasts.
    fn lease(&self) -> Duration;
    /// How long ago this OSD last heard from each OSD.
    fn heard_ago(&self) -> Vec<HeardFrom>;
    /// Whether OSD `osd` is up in this OSD's map.
    fn is_up(&self, osd: i32) -> bool;
}

/// A peer's request to this PG.
#[derive(Debug)]
pub enum PeerRequest {
    /// The head activates this member in its interval.
    Activate(PgActivate),
    /// A peering head asks for this copy's log state (interval 0: a
    /// stray asks whether the PG is clean).
    Query(PgQuery),
    /// The head of a `pg_temp` chain starts or finishes filling this copy.
    Backfill(PgBackfill),
    /// The head sends an object's whole state.
    Push {
        /// The object and its state.
        push: PgPush,
        /// Its data.
        payload: Bytes,
    },
}

/// This PG's answer to a peer's request.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerReply {
    /// Done.
    Ack,
    /// This copy's log state.
    Query(Box<PgQueryReply>),
}

/// A request of this PG to a peer.
#[derive(Debug)]
pub enum OutRequest {
    /// Its log state, for peering.
    Query(PgQuery),
    /// An object's whole state (answered with [`PeerAnswer::Pulled`]).
    Pull(PgPull),
    /// Go active in this interval.
    Activate(PgActivate),
    /// Read `object`'s whole state here and push it to the peer (the shell
    /// reads and sends; background pushes are paced by the OSD's
    /// recovery limits).
    Push {
        /// The interval it is pushed in.
        interval: u32,
        /// The object.
        object: String,
        /// Over whatever the peer holds (a repair).
        repair: bool,
        /// Nobody waits for it (recovery, backfill).
        background: bool,
    },
    /// A page of the peer's objects.
    Scan(PgScan),
    /// A backfill step.
    Backfill(PgBackfill),
    /// A page of the peer's scrub entries (or exactly some objects').
    ScrubMap(ScrubMapRequest),
}

/// A peer's answer to one of this PG's requests.
#[derive(Debug)]
pub enum PeerAnswer {
    /// Done.
    Ack,
    /// Its log state.
    Query(PgQueryReply),
    /// The object pulled.
    Pulled {
        /// Its state.
        push: PgPush,
        /// Its data.
        payload: Bytes,
    },
    /// A page of its objects.
    Scan(PgScanReply),
    /// Its scrub entries.
    ScrubMap(ScrubMapReply),
}

/// A timer the machine set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Check that peering attempt `attempt` moves.
    PeeringStall {
        /// The attempt.
        attempt: u64,
    },
    /// Peer again after a failed attempt.
    PeeringRetry {
        /// The interval it was set in.
        interval: u32,
    },
    /// The read leases of silent earlier members have lapsed.
    LeaseWait {
        /// The attempt.
        attempt: u64,
    },
    /// Recovery goes on after a failed push.
    RecoveryRetry {
        /// The interval it was set in.
        interval: u32,
    },
    /// Backfill goes on after a failed step.
    BackfillRetry {
        /// The interval it was set in.
        interval: u32,
    },
}

/// Something that happened to the PG.
#[derive(Debug)]
pub enum Event {
    /// A map installed on this OSD gives the PG this interval (the same
    /// one as before when nothing that matters changed).
    Interval(Interval),
    /// A client op.
    Client(ClientOp),
    /// A client lists a page of the PG's objects (served like a balanced read).
    List {
        /// Its handle in the shell.
        op: OpId,
        /// The client's map epoch.
        epoch: u32,
    },
    /// The chain mates whose leases had lapsed were pinged
    /// ([`Action::RenewLeases`]).
    LeasesRenewed {
        /// The action it answers.
        token: Token,
    },
    /// A peer answered one of this PG's requests (or the request failed:
    /// no answer within its deadline, a refusal).
    Answer {
        /// The [`Action::Request`] it answers.
        token: Token,
        /// The answer.
        result: Result<PeerAnswer, OpError>,
    },
    /// The monitors answered a command.
    MonAnswer {
        /// The [`Action::Mon`] it answers.
        token: Token,
        /// The answer.
        result: Result<CommandOutput, String>,
    },
    /// A timer went off.
    Timer(Timer),
    /// Scrub the PG (a client's `pg scrub`/`repair`, or the schedule).
    Scrub(ScrubRequest),
    /// The probe of silent OSDs' ports found these gone.
    Probed {
        /// The [`Action::Probe`] it answers.
        token: Token,
        /// OSDs whose port refused.
        gone: BTreeSet<i32>,
    },
    /// The OSD granted a backfill slot.
    Granted {
        /// The [`Action::Reserve`] it answers.
        token: Token,
    },
    /// A peer's request.
    Request {
        /// The peer.
        from: i32,
        /// Where the answer goes.
        reply: ReplyTo,
        /// The request.
        req: PeerRequest,
    },
    /// A write from the previous member of the chain, on the ordered link.
    Rep {
        /// The sender.
        from: i32,
        /// The write.
        rep: RepOp,
        /// Its data.
        payload: Bytes,
    },
    /// The next member acknowledged every write up to `version`.
    RepAck {
        /// The sender.
        from: i32,
        /// The interval it acknowledges in.
        interval: u32,
        /// Its newest done write.
        version: ObjVersion,
    },
    /// A store transaction finished (durably, or not at all).
    Stored {
        /// The [`Action::Submit`] it answers.
        token: Token,
        /// Its outcome.
        result: Result<(), OpError>,
    },
    /// A store read finished.
    Read {
        /// The read action it answers.
        token: Token,
        /// What it read.
        result: Result<StoreRead, OpError>,
    },
}

/// What a store read brought back.
#[derive(Debug, Clone)]
pub enum StoreRead {
    /// The view of an object a write is resolved against.
    View(ObjectView),
    /// Every client object of the PG, by name.
    Objects(Vec<String>),
    /// A page of the PG's objects with their versions.
    Scan {
        /// The objects.
        objects: Vec<(String, ObjVersion)>,
        /// Whether more follow.
        more: bool,
    },
    /// Scrub entries of this copy.
    ScrubMap {
        /// The entries, by name.
        entries: Vec<ScrubEntry>,
        /// Whether more follow.
        more: bool,
    },
}

/// What the machine asks its shell to do.
#[derive(Debug)]
pub enum Action {
    /// Store this transaction; answer with [`Event::Stored`].
    Submit {
        /// Names the completion.
        token: Token,
        /// The transaction (on the PG's collection).
        txn: shoal_store::Transaction,
    },
    /// Read the view of `object` a write needs (size, xattrs, the omap
    /// keys its guards compare); answer with [`Event::Read`].
    LoadView {
        /// Names the answer.
        token: Token,
        /// The object.
        object: String,
        /// The write's guards.
        guards: Vec<ObjOp>,
    },
    /// Send a write to the next member on the ordered link of the
    /// interval (re-sent by the link until acknowledged).
    SendDown {
        /// The next member.
        to: i32,
        /// The write.
        rep: RepOp,
        /// Its data.
        payload: Bytes,
    },
    /// Acknowledge every write up to `version` to the previous member.
    AckUp {
        /// The previous member.
        to: i32,
        /// The interval.
        interval: u32,
        /// The newest done write here.
        version: ObjVersion,
    },
    /// Stop the stream a refused replicated write came on (the sender
    /// re-sends from its oldest unacknowledged write on a new one).
    RefuseStream {
        /// The sender.
        from: i32,
    },
    /// List every client object of the PG; answer with [`Event::Read`].
    ListObjects {
        /// Names the answer.
        token: Token,
    },
    /// Read a page of the PG's objects (after `after`) with their
    /// versions; answer with [`Event::Read`].
    Scan {
        /// Names the answer.
        token: Token,
        /// Start after this name.
        after: Option<String>,
        /// At most this many.
        limit: usize,
    },
    /// Send a request to a peer; answer with [`Event::Answer`].
    Request {
        /// Names the answer.
        token: Token,
        /// The peer.
        to: i32,
        /// The request.
        req: OutRequest,
    },
    /// Run a monitor command; answer with [`Event::MonAnswer`].
    Mon {
        /// Names the answer.
        token: Token,
        /// The command.
        cmd: MonCommand,
    },
    /// Fire [`Event::Timer`] after this long.
    SetTimer {
        /// The delay.
        after: Duration,
        /// The timer.
        timer: Timer,
    },
    /// Probe these OSDs' ports; answer with [`Event::Probed`].
    Probe {
        /// Names the answer.
        token: Token,
        /// The OSDs.
        osds: BTreeSet<i32>,
    },
    /// Reserve one of the OSD's backfill slots; answer with
    /// [`Event::Granted`].
    Reserve {
        /// Names the answer.
        token: Token,
    },
    /// Give back the backfill slot.
    Release,
    /// Read this copy's scrub entries (a page after `after`, or exactly
    /// `only`); answer with [`Event::Read`].
    ScrubRead {
        /// Names the answer.
        token: Token,
        /// Start after this name.
        after: Option<String>,
        /// At most this many.
        limit: usize,
        /// Exactly these objects (empty: a page).
        only: Vec<String>,
        /// Read and checksum the data too.
        deep: bool,
    },
    /// A scrub of the whole PG (`whole`) or of some objects finished (for
    /// the OSD's scrub schedule).
    Scrubbed {
        /// The whole PG was compared.
        whole: bool,
        /// Deeply.
        deep: bool,
    },
    /// The PG's state changed: tell the monitors soon (a beacon).
    Report,
    /// Ping these chain mates now (their read leases lapsed); answer with
    /// [`Event::LeasesRenewed`] once each answered or timed out.
    RenewLeases {
        /// Names the answer.
        token: Token,
        /// The members.
        members: Vec<i32>,
    },
    /// Answer a peer's request.
    Respond {
        /// Where it goes.
        reply: ReplyTo,
        /// The answer.
        result: Result<PeerReply, OpError>,
    },
    /// Answer a client op.
    Client {
        /// The op.
        op: OpId,
        /// The answer.
        answer: ClientAnswer,
    },
}

/// How a client op is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAnswer {
    /// The write is durable on every member, as this version.
    Written(ObjVersion),
    /// It failed, or cannot be served here now.
    Failed(OpError),
    /// Serve the read (or listing) from this OSD's copy.
    ReadHere,
    /// A scrub's findings.
    Scrubbed(ScrubResult),
    /// Serve the read by asking chain member `to` (the head for an object
    /// this copy lacks; the tail, as a balanced read, for one with a write
    /// not yet done).
    Forward {
        /// The member.
        to: i32,
        /// Ask it as a balanced read.
        balance: bool,
    },
}

/// What an outstanding read or request was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Peering: the monitors' activation record.
    Record {
        /// The attempt.
        attempt: u64,
    },
    /// Peering: a query.
    Query {
        /// The attempt.
        attempt: u64,
        /// Whom.
        from: i32,
    },
    /// Peering: asked for a `pg_temp`.
    PgTemp {
        /// The attempt.
        attempt: u64,
    },
    /// Peering (head backfill): a page of the authoritative copy.
    ScanAuth {
        /// The attempt.
        attempt: u64,
        /// Where the page starts.
        after: Option<String>,
    },
    /// Peering: this copy's objects.
    ListForPeering {
        /// The attempt.
        attempt: u64,
    },
    /// Peering: a pull.
    Pull {
        /// The attempt.
        attempt: u64,
        /// The object.
        object: String,
        /// The sources left to try.
        rest: Vec<i32>,
    },
    /// Peering: a push to a backfilled member.
    PeeringPush {
        /// The attempt.
        attempt: u64,
    },
    /// Peering: the probe of silent earlier members.
    Probe {
        /// The attempt.
        attempt: u64,
    },
    /// Peering: a member's activation.
    Activate {
        /// The attempt.
        attempt: u64,
        /// The member.
        member: i32,
    },
    /// Peering: the interval recorded as active.
    RecordActive {
        /// The attempt.
        attempt: u64,
    },
    /// Peering: the head's objects before it activates.
    ListForActivation {
        /// The attempt.
        attempt: u64,
    },
    /// A push of an object from its queue (`objects.rs`).
    ObjectPush {
        /// The interval.
        interval: u32,
        /// The object.
        object: String,
        /// The receiver.
        member: i32,
    },
    /// Backfill: the slot.
    BackfillSlot {
        /// The interval.
        interval: u32,
    },
    /// Backfill: a start or finish step.
    BackfillStep {
        /// The interval.
        interval: u32,
        /// The target.
        target: i32,
    },
    /// Backfill: a page of this copy.
    BackfillScan {
        /// The interval.
        interval: u32,
    },
    /// Backfill: a page of the target.
    BackfillRemote {
        /// The interval.
        interval: u32,
    },
    /// Backfill: clearing the `pg_temp`.
    ClearPgTemp {
        /// The interval.
        interval: u32,
    },
    /// Scrub: this copy's page.
    ScrubLocal {
        /// The interval.
        interval: u32,
    },
    /// Scrub: a member's page.
    ScrubRemote {
        /// The interval.
        interval: u32,
        /// The member.
        member: i32,
    },
    /// Scrub: this copy's entry for the object under a second look.
    LookLocal {
        /// The interval.
        interval: u32,
    },
    /// Scrub: a member's entry for the object under a second look.
    LookRemote {
        /// The interval.
        interval: u32,
        /// The member.
        member: i32,
    },
    /// Scrub: the good copy pulled over this one.
    RepairPull {
        /// The interval.
        interval: u32,
    },
    /// Scrub: a repair pushed to a member.
    RepairPush {
        /// The interval.
        interval: u32,
    },
    /// The view of an object for the head's write `op`.
    View {
        /// The write.
        op: OpId,
        /// Its object.
        object: String,
        /// The interval it was asked in.
        interval: u32,
    },
    /// A read (or listing) waiting for lapsed leases to be renewed.
    Lease {
        /// The read.
        op: OpId,
    },
    /// A backfill starts here: this copy's objects, all suspect.
    BackfillStart {
        /// The step to answer.
        reply: ReplyTo,
    },
    /// The objects of a backfilled copy, to remove those not pushed.
    Unpushed {
        /// The activation waiting for it.
        reply: ReplyTo,
    },
}

/// What a store transaction's completion means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnDone {
    /// Peering: the head's adopted log.
    Adopted {
        /// The attempt.
        attempt: u64,
    },
    /// Peering: a pulled object.
    Pulled {
        /// The attempt.
        attempt: u64,
        /// The object.
        object: String,
    },
    /// Peering: stale objects of the head's own backfill removed.
    SelfUnpushed {
        /// The attempt.
        attempt: u64,
        /// The last batch.
        last: bool,
    },
    /// Peering: the head's activation.
    SelfActivated {
        /// The attempt.
        attempt: u64,
    },
    /// Scrub: the good copy pulled over this one is stored.
    Repaired,
    /// New records of this copy (a backfill step) to answer a peer with.
    Records {
        /// The request.
        reply: ReplyTo,
    },
    /// Objects of a backfilled copy that were not pushed were removed;
    /// `last` tells whether the activation's log follows.
    Unpushed {
        /// The activation.
        reply: ReplyTo,
        /// The last batch.
        last: bool,
    },
    /// A member's activation record is stored: it goes active.
    Activated {
        /// The interval.
        interval: u32,
        /// The activation to answer.
        reply: ReplyTo,
    },
    /// A pushed object is stored.
    Pushed {
        /// Its name.
        object: String,
        /// It was pushed to this copy as a backfill target (it stays
        /// missing until the finish).
        suspect: bool,
        /// The push to answer.
        reply: ReplyTo,
    },
    /// A write ordered in `interval`.
    Write {
        /// Its interval.
        interval: u32,
        /// Its version.
        version: ObjVersion,
    },
}

/// Where the PG stands on this OSD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A new interval began; the head is collecting logs and bringing
    /// members up to date. No client IO.
    Peering,
    /// Serving.
    Active,
    /// This OSD is no longer in the PG's chain: it keeps the data, serves nothing.
    Stray,
}

/// The chain of one interval.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interval {
    /// The map epoch it began in.
    pub epoch: u32,
    /// Members, head first.
    pub acting: Vec<i32>,
    /// The up set CRUSH (and upmaps) chose: the same as `acting` unless a
    /// `pg_temp` keeps an older chain serving while the up set's new
    /// members are backfilled.
    pub up: Vec<i32>,
    /// Boot epochs of the members (a restarted member means a new interval).
    pub up_from: Vec<u32>,
    /// Fewest members that take writes.
    pub min_size: usize,
    /// The pool's size (members of a full chain).
    pub size: usize,
    /// A `pg_temp` chain serves the PG.
    pub pg_temp: bool,
}

impl Interval {
    /// What makes this interval the one it is, whatever epoch names it.
    pub fn shape(&self) -> IntervalShape {
        IntervalShape {
            acting: self.acting.clone(),
            up: self.up.clone(),
            up_from: self.up_from.clone(),
            min_size: self.min_size as u32,
        }
    }

    /// Whether `shape` is this interval's.
    pub fn has_shape(&self, shape: &IntervalShape) -> bool {
        self.acting == shape.acting
            && self.up == shape.up
            && self.up_from == shape.up_from
            && self.min_size == shape.min_size as usize
    }
}

/// How much of its history a PG keeps: log entries, and the requests of
/// trimmed entries ("dups") that are still answered rather than applied
/// again when retried.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Log entries kept.
    pub entries: usize,
    /// Trimmed requests remembered.
    pub dups: usize,
}

/// A scrub asked for (by a client, or by the OSD's schedule: no `op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubRequest {
    /// The client waiting for the result.
    pub op: Option<OpId>,
    /// Read and checksum the data too.
    pub deep: bool,
    /// Repair what differs from the authoritative copy.
    pub repair: bool,
    /// Only these objects (empty: the whole PG).
    pub only: Vec<String>,
}
