//! OSD -> OSD messages: chain replication, peering, recovery, heartbeats.
//!
//! Replication runs on ordered one-way streams, one per (PG, interval,
//! link direction) (topics from [`rep_topic`] and [`ack_topic`]): the head
//! sends [`RepOp`]s down the chain in version order, each member applies
//! and forwards them in that order, and [`RepAck`]s flow back up. Peering,
//! recovery and heartbeats are requests ([`crate::msg::PG_QUERY`],
//! [`crate::msg::PG_PUSH`], [`crate::msg::OSD_PING`]).

use crate::osd::{ObjOp, ObjVersion, OsdErrorCode, PayloadRange, PgRef, ReqId};
use crate::wire::wire;

wire! {
    /// One entry of a PG log: which request changed which object to which
    /// version.
    pub struct LogEntry {
        /// The version the write gave the object.
        pub version: ObjVersion,
        /// The client request (remembered to answer retries).
        pub reqid: ReqId,
        /// The object.
        pub object: String,
        /// Whether the object exists after the write.
        pub op: LogOp,
    }

    /// A request the log has trimmed but still remembers (Ceph's "dup"
    /// entries): a retry of it is answered with this version instead of
    /// being applied a second time.
    #[derive(Copy, Eq)]
    pub struct LogDup {
        /// The client request.
        pub reqid: ReqId,
        /// The version its write gave the object.
        pub version: ObjVersion,
        /// The answer it got when it was refused ([`LogOp::Refused`]).
        pub refused: Option<OsdErrorCode>,
    }

    /// What a [`LogEntry`] did to its object.
    #[derive(Copy, Eq)]
    pub enum LogOp {
        /// The object exists after the write.
        Modify,
        /// The object was removed.
        Delete,
        /// The write was refused for what the object held (no such
        /// object, it exists, a guard did not compare) and changed
        /// nothing; the entry remembers the answer, so that a retry of the
        /// request, however late, gets it again instead of being applied
        /// (Ceph's error log entries).
        Refused(OsdErrorCode),
    }

    /// A write travelling down the chain. Its ops are mutations only (the
    /// head resolved appends, creates and guards into them); data ranges
    /// point into the frame payload.
    pub struct RepOp {
        /// The PG.
        pub pg: PgRef,
        /// Epoch the chain's interval began (ops of other intervals are refused).
        pub interval: u32,
        /// The log entry the write adds.
        pub entry: LogEntry,
        /// The mutations, applied atomically.
        pub ops: Vec<ObjOp>,
        /// Everything up to this version is committed (acknowledged by the tail).
        pub committed: ObjVersion,
        /// Checksums of whole-object writes' data, made once by the head.
        pub sums: Vec<DataSums>,
    }

    /// The blake3 checksums of a whole-object write's data, chunk by chunk,
    /// computed by the head so the other members store them without
    /// hashing the data again (a member whose store cuts data by another
    /// chunk size hashes it itself).
    pub struct DataSums {
        /// Index of the `WriteFull` op in [`RepOp::ops`].
        pub op: u32,
        /// The chunk size the data was cut by.
        pub chunk_size: u64,
        /// One checksum per chunk, in order.
        pub sums: Vec<[u8; 32]>,
    }

    /// Travels up the chain: every member from the sender down to the tail
    /// has the writes up to `version` on stable storage.
    pub struct RepAck {
        /// The PG.
        pub pg: PgRef,
        /// The interval.
        pub interval: u32,
        /// The newest version acknowledged.
        pub version: ObjVersion,
    }

    /// What a PG member knows about its copy of the PG (kept in the store).
    #[derive(Default)]
    pub struct PgInfo {
        /// The newest log entry it has.
        pub last_update: ObjVersion,
        /// Versions up to this one are committed on every member.
        pub committed: ObjVersion,
        /// The oldest version its log still holds entries after (older
        /// entries were trimmed).
        pub log_tail: ObjVersion,
        /// The epoch of the last interval it knows went active.
        pub last_epoch_started: u32,
        /// The chain of that interval, head first.
        pub last_acting: Vec<i32>,
    }

    /// What makes a PG's interval the one it is, beyond the epoch each OSD
    /// named it by: OSDs that skipped map epochs (a restarted one starts
    /// from the newest map) may name one interval by different epochs, and
    /// agree on this.
    #[derive(Eq, Default)]
    pub struct IntervalShape {
        /// The chain, head first.
        pub acting: Vec<i32>,
        /// The up set.
        pub up: Vec<i32>,
        /// The chain members' boot epochs.
        pub up_from: Vec<u32>,
        /// The pool's `min_size`.
        pub min_size: u32,
    }

    /// New head -> member: send your PG info and log entries after `since`.
    pub struct PgQuery {
        /// The asker's map epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// The interval being peered (the answer then waits until the
        /// member's log is all in its store); 0: a stray asking whether
        /// the PG is clean.
        pub interval: u32,
        /// The interval's shape: a member in the same interval under
        /// another epoch takes the head's name for it.
        pub shape: IntervalShape,
    }

    /// Answer to [`PgQuery`].
    pub struct PgQueryReply {
        /// The answering OSD's map epoch.
        pub epoch: u32,
        /// Its info and whole log, or none if it has no copy of the PG.
        pub state: Option<PgLogState>,
        /// It heads the PG and the PG is clean: every member of a chain of
        /// the pool's size and CRUSH's choice has every object (copies
        /// elsewhere may go).
        pub clean: bool,
        /// How long ago it last heard from each OSD it heartbeats (a ping
        /// or an answer): a chain mate's read lease from it ends at most a
        /// lease after that.
        pub heard: Vec<HeardFrom>,
        /// The epoch it names its current interval of the PG by, and that
        /// interval's shape (0 and empty: it has no copy): a head naming
        /// the same interval by an older epoch takes this name.
        pub interval: u32,
        /// See `interval`.
        pub shape: IntervalShape,
    }

    /// When an OSD last heard from another one.
    pub struct HeardFrom {
        /// The other OSD.
        pub osd: i32,
        /// Milliseconds ago.
        pub ms_ago: u64,
    }

    /// A member's PG info and log.
    pub struct PgLogState {
        /// The info.
        pub info: PgInfo,
        /// Log entries after `info.log_tail`, oldest first.
        pub log: Vec<LogEntry>,
        /// Requests of trimmed entries still remembered, oldest first.
        pub dups: Vec<LogDup>,
        /// Objects its copy lacks (or holds stale) although its log covers
        /// them: recovery has not brought them yet. Kept in the store.
        pub missing: Vec<String>,
    }

    /// Head -> member during recovery: make the object exactly this (data
    /// in the payload), or remove it (`state` none).
    pub struct PgPush {
        /// A repair: apply even if the member does not know it lacks the
        /// object (its copy failed a scrub).
        pub repair: bool,
        /// The head's map epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// The interval being peered.
        pub interval: u32,
        /// The object.
        pub object: String,
        /// Its version.
        pub version: ObjVersion,
        /// Its contents, or none when it does not exist.
        pub state: Option<ObjectState>,
        /// The sender's checksums of the data (`op` 0), as its store keeps
        /// them and verified them reading the data: the receiver stores
        /// them instead of hashing every byte again (empty: it hashes).
        pub sums: Vec<DataSums>,
    }

    /// An object's whole state.
    pub struct ObjectState {
        /// Its data: a range of the frame payload.
        pub data: PayloadRange,
        /// Xattrs.
        pub xattrs: Vec<(String, Vec<u8>)>,
        /// Omap entries.
        pub omap: Vec<(Vec<u8>, Vec<u8>)>,
    }

    /// Head -> member: the peered log; adopt it (trimming divergent
    /// entries) and go active in `interval` of `shape`.
    pub struct PgActivate {
        /// The head's map epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// The interval.
        pub interval: u32,
        /// Its shape (the chain in it, head first).
        pub shape: IntervalShape,
        /// The authoritative info.
        pub info: PgInfo,
        /// The authoritative log.
        pub log: Vec<LogEntry>,
        /// The authoritative log's remembered trimmed requests.
        pub dups: Vec<LogDup>,
        /// The member was backfilled: objects the head did not push during
        /// this peering are stale and must go.
        pub backfill: bool,
        /// With `backfill`: the digest of the names the head pushed during
        /// this peering (`Pushed` in shoal-osd). A member whose own digest
        /// differs (it restarted, or a push of an earlier attempt came
        /// late) refuses, so it never drops an object it was sent.
        pub pushed: [u8; 32],
        /// Objects the member's copy lacks or holds stale: it must not serve
        /// them until the head pushes them (recovery while active).
        pub missing: Vec<String>,
    }

    /// A generic answer to peering and recovery requests.
    pub struct PeerAck {
        /// The answering OSD's map epoch.
        pub epoch: u32,
        /// Why not, when it was refused.
        pub error: Option<PeerError>,
    }

    /// Why an OSD refused a peer's request: the code says what the asker
    /// may do about it (e.g. [`OsdErrorCode::OsdBehind`]: ask again once
    /// the OSD follows the map), the message is for people.
    pub struct PeerError {
        /// What kind of refusal.
        pub code: OsdErrorCode,
        /// Why, in words.
        pub message: String,
    }

    /// Head -> authoritative member during peering: send this object's
    /// whole state (answered by a [`PgPush`] frame, data in the payload).
    pub struct PgPull {
        /// The head's map epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// The interval being peered.
        pub interval: u32,
        /// The object.
        pub object: String,
    }

    /// Backfill: a page of the objects of an OSD's copy of a PG, by name,
    /// after `start_after` (answered in any role, strays included).
    pub struct PgScan {
        /// The asker's map epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// List names after this one (`None`: from the first).
        pub start_after: Option<String>,
        /// Most names to return.
        pub limit: u32,
    }
    /// Answer to [`PgScan`].
    pub struct PgScanReply {
        /// The answering OSD's map epoch.
        pub epoch: u32,
        /// Objects and their versions, by name (empty when the OSD has no
        /// copy of the PG).
        pub objects: Vec<(String, ObjVersion)>,
        /// More objects follow.
        pub more: bool,
        /// Why not, when it was refused.
        pub error: Option<PeerError>,
    }
    /// Head -> an OSD of the PG's up set that is not in its (temporary)
    /// acting set: a step of filling it while the acting chain serves.
    pub struct PgBackfill {
        /// The head's map epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// The acting chain's interval.
        pub interval: u32,
        /// Its shape.
        pub shape: IntervalShape,
        /// What to do.
        pub step: BackfillStep,
    }
    /// One step of a backfill.
    pub enum BackfillStep {
        /// Pushes follow for this interval: forget the copy's log (it is
        /// no longer authoritative for anything) and accept them.
        Start,
        /// Every object is in place up to the log's newest entry but
        /// those of `missing`: keep this info and log, and that missing
        /// set, so the chain can switch to this OSD and catch it up from
        /// the log.
        Finish {
            /// The head's info when the last push was done.
            info: PgInfo,
            /// Its log.
            log: Vec<LogEntry>,
            /// Its remembered trimmed requests.
            dups: Vec<LogDup>,
            /// Objects written while the last pushes went (the pushed copy
            /// may or may not have those writes): recovered later.
            missing: Vec<String>,
        },
    }
    /// Head -> member during a scrub: this member's view of its objects
    /// after `start_after` (or exactly `only`).
    pub struct ScrubMapRequest {
        /// The head's map epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// Read and checksum the data.
        pub deep: bool,
        /// Objects after this name.
        pub start_after: Option<String>,
        /// Most objects.
        pub limit: u32,
        /// Just these objects (a second look at suspects), instead of a page.
        pub only: Vec<String>,
    }
    /// Answer to [`ScrubMapRequest`].
    pub struct ScrubMapReply {
        /// The answering OSD's map epoch.
        pub epoch: u32,
        /// Entries by name (an object the member lacks is absent).
        pub entries: Vec<ScrubEntry>,
        /// More objects follow the page.
        pub more: bool,
        /// Why not, when it was refused.
        pub error: Option<PeerError>,
    }
    /// One copy of one object, as a scrub compares it.
    pub struct ScrubEntry {
        /// The object.
        pub name: String,
        /// Its version.
        pub version: ObjVersion,
        /// Its size.
        pub size: u64,
        /// blake3 over its xattrs and omap.
        pub meta_digest: [u8; 32],
        /// Deep scrub: blake3 over its data as read (checksums verified).
        pub data_digest: Option<[u8; 32]>,
        /// Why it could not be read (empty: it could).
        pub error: String,
    }
    /// Heartbeat between OSDs sharing PGs.
    pub struct Ping {
        /// The sender's map epoch.
        pub epoch: u32,
        /// The sender's store is full (`[osd] full_ratio`): heads refuse
        /// writes to PGs it is in.
        pub full: bool,
    }
}

/// The one-way stream topic carrying `pg`'s writes from one member to the
/// next during `interval`.
pub fn rep_topic(pg: PgRef, interval: u32) -> String {
    format!("rep/{pg}/{interval}")
}

/// The one-way stream topic carrying `pg`'s acknowledgements upstream.
pub fn ack_topic(pg: PgRef, interval: u32) -> String {
    format!("ack/{pg}/{interval}")
}

impl PeerError {
    /// The refusal, its message naming `from`.
    pub fn from_osd(self, from: i32) -> PeerError {
        PeerError {
            code: self.code,
            message: format!("osd.{from}: {}", self.message),
        }
    }
}

impl LogOp {
    /// Whether the entry changed its object (a refused write did not, so
    /// no copy needs recovering for it).
    pub fn changes_object(self) -> bool {
        !matches!(self, LogOp::Refused(_))
    }
}

impl LogEntry {
    /// What a retry of this entry's request is answered from once the
    /// entry is trimmed.
    pub fn dup(&self) -> LogDup {
        LogDup {
            reqid: self.reqid,
            version: self.version,
            refused: match self.op {
                LogOp::Refused(code) => Some(code),
                LogOp::Modify | LogOp::Delete => None,
            },
        }
    }
}
