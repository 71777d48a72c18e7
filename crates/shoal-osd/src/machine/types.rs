//! What goes into the PG state machine and what comes out of it.

use bytes::Bytes;
use shoal_proto::osd::{ObjOp, ObjVersion, ReqId};
use shoal_proto::rep::{PgActivate, PgPush, RepOp};

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
}

/// A peer's request to this PG.
#[derive(Debug)]
pub enum PeerRequest {
    /// The head activates this member in its interval.
    Activate(PgActivate),
    /// The head sends an object's whole state.
    Push {
        /// The object and its state.
        push: PgPush,
        /// Its data.
        payload: Bytes,
    },
}

/// This PG's answer to a peer's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerReply {
    /// Done.
    Ack,
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
    /// The view of an object for the head's write `op`.
    View {
        /// The write.
        op: OpId,
        /// The interval it was asked in.
        interval: u32,
    },
    /// A read (or listing) waiting for lapsed leases to be renewed.
    Lease {
        /// The read.
        op: OpId,
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
        /// The interval.
        interval: u32,
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
