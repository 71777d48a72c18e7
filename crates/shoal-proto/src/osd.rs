//! Client -> OSD object operations.
//!
//! A client sends an [`OsdRequest`] (frame [`crate::msg::OSD_OP`]) to the
//! head of the object's PG chain (or, for reads marked `balance_reads`, to
//! any member). Object data travels in the frame payload: ops and outputs
//! name byte ranges of it ([`PayloadRange`]), so data is never copied
//! through the encoder. The answer is an [`OsdReply`] whose payload holds
//! the data of read outputs.

use crate::wire::wire;

/// Longest object name, in bytes.
pub const MAX_NAME: usize = 2048;
/// Most ops in one request.
pub const MAX_OPS: usize = 64;
/// Most omap entries one listing returns.
pub const MAX_OMAP_LIST: u32 = 10_000;
/// Most names one PG listing page returns.
pub const MAX_LIST_PAGE: u32 = 10_000;

wire! {
    /// Identifies one client request across retries: the OSDs remember it
    /// in the PG log so that a retried write is answered, not applied twice.
    #[derive(Copy, Eq, Hash, PartialOrd, Ord, Default)]
    pub struct ReqId {
        /// The client instance (random per process).
        pub client: u64,
        /// The client's request number; a retry reuses it.
        pub tid: u64,
    }

    /// A placement group: pool and seed (printed `1.2f`).
    #[derive(Copy, Eq, Hash, PartialOrd, Ord)]
    pub struct PgRef {
        /// Pool id.
        pub pool: i64,
        /// Seed (placement number) within the pool.
        pub seed: u32,
    }

    /// An object version: the map epoch its write was ordered in and the
    /// PG's sequence number (which grows across epochs).
    #[derive(Copy, Eq, Hash, PartialOrd, Ord, Default)]
    pub struct ObjVersion {
        /// OSDMap epoch of the write's interval.
        pub epoch: u32,
        /// Sequence number within the PG.
        pub seq: u64,
    }

    /// A byte range of the frame payload.
    #[derive(Copy, Eq, Default)]
    pub struct PayloadRange {
        /// Offset into the payload.
        pub offset: u64,
        /// Length.
        pub len: u64,
    }

    /// Operations on one object, applied atomically (all or nothing) in
    /// order; reads see the effect of earlier writes in the same request.
    pub struct OsdRequest {
        /// The request id (retries reuse it).
        pub reqid: ReqId,
        /// The client's OSDMap epoch.
        pub epoch: u32,
        /// The object's PG.
        pub pg: PgRef,
        /// The object name.
        pub object: String,
        /// The ops.
        pub ops: Vec<ObjOp>,
        /// A read-only request that any chain member may answer (CRAQ
        /// apportioned reads); otherwise only the head answers.
        pub balance_reads: bool,
    }

    /// One operation of an [`OsdRequest`].
    pub enum ObjOp {
        /// Create the object; with `exclusive`, fail with `Exists` if it is there.
        Create {
            /// Fail if the object exists.
            exclusive: bool,
        },
        /// Replace the object's data.
        WriteFull {
            /// The data.
            data: PayloadRange,
        },
        /// Write at an offset (the object grows as needed).
        Write {
            /// Byte offset.
            offset: u64,
            /// The data.
            data: PayloadRange,
        },
        /// Write at the object's end.
        Append {
            /// The data.
            data: PayloadRange,
        },
        /// Set the size.
        Truncate {
            /// New size.
            size: u64,
        },
        /// Turn a range into zeros.
        Zero {
            /// Byte offset.
            offset: u64,
            /// Length.
            len: u64,
        },
        /// Remove the object (its data, xattrs and omap).
        Remove,
        /// Set an xattr.
        SetXattr {
            /// Name.
            key: String,
            /// Value.
            value: Vec<u8>,
        },
        /// Remove an xattr.
        RemoveXattr {
            /// Name.
            key: String,
        },
        /// Set omap entries.
        OmapSet {
            /// `(key, value)` pairs.
            entries: Vec<(Vec<u8>, Vec<u8>)>,
        },
        /// Remove omap keys.
        OmapRemove {
            /// The keys.
            keys: Vec<Vec<u8>>,
        },
        /// Remove every omap entry.
        OmapClear,
        /// Guard: the whole request fails with `CompareFailed`, changing
        /// nothing, unless the xattr compares as asked.
        CmpXattr {
            /// Xattr name.
            key: String,
            /// The comparison.
            cmp: XattrCmp,
        },
        /// Guard: the whole request fails with `CompareFailed`, changing
        /// nothing, unless the value of omap key `key` compares as asked
        /// (Ceph's `omap_cmp`; `Absent` also holds on a missing object).
        CmpOmap {
            /// The omap key.
            key: Vec<u8>,
            /// The comparison.
            cmp: XattrCmp,
        },
        /// Read a range (holes and bytes past the end read as nothing past
        /// the object's size; `len` u64::MAX reads to the end).
        Read {
            /// Byte offset.
            offset: u64,
            /// Length.
            len: u64,
        },
        /// Size and version.
        Stat,
        /// One xattr.
        GetXattr {
            /// Name.
            key: String,
        },
        /// Every xattr.
        GetXattrs,
        /// Omap values of these keys (missing keys are left out).
        OmapGet {
            /// The keys.
            keys: Vec<Vec<u8>>,
        },
        /// Omap entries in key order after `start_after`, with `prefix`, at
        /// most `limit`.
        OmapList {
            /// Start after this key (exclusive); none: from the first.
            start_after: Option<Vec<u8>>,
            /// Only keys with this prefix.
            prefix: Vec<u8>,
            /// Most entries returned.
            limit: u32,
        },
    }

    /// How [`ObjOp::CmpXattr`] and [`ObjOp::CmpOmap`] compare.
    pub enum XattrCmp {
        /// The xattr exists and equals the value.
        Eq(Vec<u8>),
        /// The xattr is missing or differs from the value.
        Ne(Vec<u8>),
        /// The xattr is missing (the object may be missing too).
        Absent,
    }

    /// The answer to an [`OsdRequest`].
    pub struct OsdReply {
        /// The answering OSD's OSDMap epoch.
        pub epoch: u32,
        /// What happened.
        pub result: OpResult,
    }

    /// Outcome of a request.
    pub enum OpResult {
        /// Applied (writes: durable on every chain member).
        Done {
            /// The object's version after the request.
            version: ObjVersion,
            /// One output per op, in order.
            outputs: Vec<OpOutput>,
        },
        /// Not applied.
        Failed {
            /// What kind of failure (retry-able ones say so).
            code: OsdErrorCode,
            /// Details for people.
            message: String,
        },
    }

    /// The output of one op.
    pub enum OpOutput {
        /// Nothing to return (writes).
        None,
        /// Bytes read: a range of the reply payload.
        Data(PayloadRange),
        /// [`ObjOp::Stat`].
        Stat {
            /// Size in bytes.
            size: u64,
            /// Version.
            version: ObjVersion,
        },
        /// [`ObjOp::GetXattr`]: the value, if the xattr exists.
        Xattr(Option<Vec<u8>>),
        /// [`ObjOp::GetXattrs`].
        Xattrs(Vec<(String, Vec<u8>)>),
        /// Omap entries; `more` when the listing stopped at its limit.
        Omap {
            /// Entries in key order.
            entries: Vec<(Vec<u8>, Vec<u8>)>,
            /// More entries follow.
            more: bool,
        },
    }

    /// Lists a PG's objects in name order, a page at a time (frame
    /// [`crate::msg::OSD_LIST`], answered by [`PgListReply`]).
    pub struct PgListRequest {
        /// The client's OSDMap epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// Start after this name; none: from the first.
        pub start_after: Option<String>,
        /// Most names returned.
        pub limit: u32,
    }

    /// What an OSD knows of its copy of a PG (`shoal pg query`; frame
    /// [`crate::msg::PG_DETAIL`], answered by [`PgDetailReply`]).
    pub struct PgDetailRequest {
        /// The client's OSDMap epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
    }

    /// Answer to [`PgDetailRequest`].
    pub struct PgDetailReply {
        /// The answering OSD's map epoch.
        pub epoch: u32,
        /// The details, or why there are none.
        pub result: Result<PgDetail, String>,
    }

    /// One OSD's view of a PG.
    pub struct PgDetail {
        /// The PG (`1.2f`).
        pub pgid: String,
        /// The answering OSD.
        pub osd: i32,
        /// `head`, `member`, `backfill target` or `stray`.
        pub role: String,
        /// The state as the head reports it (the phase elsewhere).
        pub state: String,
        /// Map epoch the interval began in.
        pub interval_epoch: u32,
        /// The acting chain, head first.
        pub acting: Vec<i32>,
        /// The up set.
        pub up: Vec<i32>,
        /// The newest log entry.
        pub last_update: ObjVersion,
        /// Entries after this version are in the log.
        pub log_tail: ObjVersion,
        /// Log entries held.
        pub log_entries: u64,
        /// Epoch of the last interval known to have gone active.
        pub last_epoch_started: u32,
        /// Objects lacking, by OSD: the head's recovery book, or the
        /// answering member's own missing set.
        pub missing: Vec<MissingOn>,
        /// Head: the up set's OSDs outside the chain being backfilled.
        pub backfill_targets: Vec<i32>,
        /// Objects in the PG (head).
        pub objects: u64,
    }

    /// Scrub a PG now (frame [`crate::msg::PG_SCRUB`] to its head):
    /// compare every member's copy of every object; `deep` also reads and
    /// checksums the data; `repair` fixes what differs from the
    /// authoritative copy.
    pub struct PgScrubRequest {
        /// The client's OSDMap epoch.
        pub epoch: u32,
        /// The PG.
        pub pg: PgRef,
        /// Read and checksum the data too.
        pub deep: bool,
        /// Fix inconsistent copies.
        pub repair: bool,
        /// Only these objects (a member that read a bad copy asks its head
        /// to repair it); empty: the whole PG.
        pub only: Vec<String>,
    }

    /// Answer to [`PgScrubRequest`].
    pub struct PgScrubReply {
        /// The head's map epoch.
        pub epoch: u32,
        /// The outcome, or why there is none.
        pub result: Result<ScrubResult, String>,
    }

    /// What a scrub found.
    pub struct ScrubResult {
        /// The PG (`1.2f`).
        pub pgid: String,
        /// Whether the data was read and checksummed.
        pub deep: bool,
        /// The chain that was compared, head first.
        pub acting: Vec<i32>,
        /// Objects compared.
        pub objects: u64,
        /// Objects whose copies differ (or cannot be read).
        pub inconsistent: Vec<Inconsistency>,
        /// Copies repaired.
        pub repaired: u64,
    }

    /// One object whose copies differ.
    pub struct Inconsistency {
        /// The object.
        pub object: String,
        /// OSDs holding a bad (or no) copy.
        pub bad: Vec<i32>,
        /// OSDs holding the authoritative copy.
        pub good: Vec<i32>,
        /// What differs.
        pub why: String,
    }

    /// Objects one OSD lacks.
    pub struct MissingOn {
        /// The OSD.
        pub osd: i32,
        /// How many.
        pub count: u64,
        /// The first of them, by name (at most 100).
        pub objects: Vec<String>,
    }

    /// A page of object names.
    pub struct PgListReply {
        /// The answering OSD's OSDMap epoch.
        pub epoch: u32,
        /// Names, or why not.
        pub result: ListResult,
    }

    /// Outcome of a [`PgListRequest`].
    pub enum ListResult {
        /// A page; `more` when names follow the last one.
        Page {
            /// Object names in order.
            names: Vec<String>,
            /// More names follow.
            more: bool,
        },
        /// Not served.
        Failed {
            /// Why.
            code: OsdErrorCode,
            /// Details for people.
            message: String,
        },
    }

    /// Why an OSD did not apply a request. The first four ask the client to
    /// refresh its map or wait and then resend the same request (same id).
    #[derive(Copy, Eq)]
    pub enum OsdErrorCode {
        /// The client's map is older than the OSD's: fetch the OSD's epoch.
        StaleEpoch,
        /// The OSD is not the PG's head (or not a member) in its map.
        WrongOsd,
        /// The PG is peering, or has fewer than `min_size` members: retry later.
        Unavailable,
        /// The OSD's map is older than the client's: it is fetching it; retry.
        OsdBehind,
        /// No such object.
        NotFound,
        /// The object exists (exclusive create).
        Exists,
        /// A [`ObjOp::CmpXattr`] or [`ObjOp::CmpOmap`] guard failed.
        CompareFailed,
        /// The OSD's store is full.
        NoSpace,
        /// The request is malformed or outside limits.
        Invalid,
        /// Stored data failed its checksum on this OSD.
        Corrupt,
        /// Anything else went wrong on the OSD.
        Internal,
        /// The client's caps do not allow the op (`osd r` reads, `osd rw` writes).
        PermissionDenied,
    }
}

impl OsdErrorCode {
    /// Whether the client should refresh its map or wait, then resend.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::StaleEpoch | Self::WrongOsd | Self::Unavailable | Self::OsdBehind
        )
    }
}

impl ObjOp {
    /// Whether the op is a guard: it checks the object's state and changes
    /// nothing, so it may stand in a write request.
    pub fn is_guard(&self) -> bool {
        matches!(self, Self::CmpXattr { .. } | Self::CmpOmap { .. })
    }

    /// Whether the op changes the object.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::Create { .. }
                | Self::WriteFull { .. }
                | Self::Write { .. }
                | Self::Append { .. }
                | Self::Truncate { .. }
                | Self::Zero { .. }
                | Self::Remove
                | Self::SetXattr { .. }
                | Self::RemoveXattr { .. }
                | Self::OmapSet { .. }
                | Self::OmapRemove { .. }
                | Self::OmapClear
        )
    }
}

impl std::fmt::Display for PgRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:x}", self.pool, self.seed)
    }
}

impl std::fmt::Display for ObjVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}'{}", self.epoch, self.seq)
    }
}
