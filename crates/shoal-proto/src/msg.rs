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
