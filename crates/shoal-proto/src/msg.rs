//! Frame message types (`u16` in the frame header). Numbers below 16 are
//! the transport's own.

/// Client or OSD -> any monitor: a [`crate::mon::MonRequest`]; the response
/// is a [`MON_REPLY`] frame.
pub const MON_COMMAND: u16 = 100;
/// Monitor -> client: a [`crate::mon::MonReply`].
pub const MON_REPLY: u16 = 101;
/// Client or OSD -> any monitor in quorum: a
/// [`crate::subscribe::SubscribeRequest`]; the response is a
/// [`SUBSCRIBE_REPLY`] frame.
pub const SUBSCRIBE: u16 = 102;
/// Monitor -> subscriber: a [`crate::subscribe::SubscribeReply`].
pub const SUBSCRIBE_REPLY: u16 = 103;
/// Monitor -> monitor, on the one-way `paxos` stream: a
/// [`crate::peer::PaxosEnvelope`].
pub const PAXOS: u16 = 110;
/// Peon -> leader: a [`crate::peer::Forward`], answered by a [`MON_REPLY`].
pub const FORWARD: u16 = 111;
/// Test harness -> monitor started with fault injection enabled: a
/// [`crate::peer::FaultCommand`], answered by a [`MON_REPLY`].
pub const FAULT: u16 = 112;

/// Client -> OSD: a [`crate::osd::OsdRequest`] (data in the payload),
/// answered by [`OSD_REPLY`].
pub const OSD_OP: u16 = 200;
/// OSD -> client: a [`crate::osd::OsdReply`] (read data in the payload).
pub const OSD_REPLY: u16 = 201;
/// Client -> OSD: a [`crate::osd::PgListRequest`], answered by [`OSD_LIST_REPLY`].
pub const OSD_LIST: u16 = 202;
/// OSD -> client: a [`crate::osd::PgListReply`].
pub const OSD_LIST_REPLY: u16 = 203;
/// Client -> OSD: [`crate::osd::PgDetailRequest`] (`shoal pg query`).
pub const PG_DETAIL: u16 = 204;
/// Answer to [`PG_DETAIL`]: [`crate::osd::PgDetailReply`].
pub const PG_DETAIL_REPLY: u16 = 205;
/// Client -> head: [`crate::osd::PgScrubRequest`] (`shoal pg scrub|deep-scrub|repair`).
pub const PG_SCRUB: u16 = 206;
/// Answer to [`PG_SCRUB`]: [`crate::osd::PgScrubReply`].
pub const PG_SCRUB_REPLY: u16 = 207;
/// OSD -> next chain member, on a one-way stream: a [`crate::rep::RepOp`].
pub const REP_OP: u16 = 210;
/// OSD -> previous chain member, on a one-way stream: a [`crate::rep::RepAck`].
pub const REP_ACK: u16 = 211;
/// Head -> member: a [`crate::rep::PgQuery`], answered by [`PG_QUERY_REPLY`].
pub const PG_QUERY: u16 = 212;
/// Member -> head: a [`crate::rep::PgQueryReply`].
pub const PG_QUERY_REPLY: u16 = 213;
/// Head -> member: a [`crate::rep::PgPush`] (data in the payload),
/// answered by [`PEER_ACK`].
pub const PG_PUSH: u16 = 214;
/// Head -> member: a [`crate::rep::PgActivate`], answered by [`PEER_ACK`].
pub const PG_ACTIVATE: u16 = 215;
/// Member -> head: a [`crate::rep::PeerAck`].
pub const PEER_ACK: u16 = 216;
/// Head -> member: a [`crate::rep::PgPull`], answered by a [`PG_PUSH`] frame.
pub const PG_PULL: u16 = 217;
/// OSD -> OSD: [`crate::rep::PgScan`] (a page of a PG's objects with versions).
pub const PG_SCAN: u16 = 218;
/// Answer to [`PG_SCAN`]: [`crate::rep::PgScanReply`].
pub const PG_SCAN_REPLY: u16 = 219;
/// Head -> backfill target: [`crate::rep::PgBackfill`], answered by a [`PEER_ACK`].
pub const PG_BACKFILL: u16 = 222;
/// Head -> member: [`crate::rep::ScrubMapRequest`] (a page of scrub entries).
pub const PG_SCRUB_MAP: u16 = 223;
/// Answer to [`PG_SCRUB_MAP`]: [`crate::rep::ScrubMapReply`].
pub const PG_SCRUB_MAP_REPLY: u16 = 224;
/// OSD -> OSD heartbeat: a [`crate::rep::Ping`], answered by [`OSD_PONG`].
pub const OSD_PING: u16 = 220;
/// The answer to [`OSD_PING`]: a [`crate::rep::Ping`] with the responder's epoch.
pub const OSD_PONG: u16 = 221;
