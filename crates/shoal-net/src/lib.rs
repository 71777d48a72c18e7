//! `shoal-net`: the QUIC transport every Shoal daemon and client shares.
//!
//! - **Identities and TLS** ([`ca`], [`identity`], [`tls`]): a cluster CA
//!   signs one certificate per identity (`mon.a`, `osd.3`,
//!   `client.admin`); every connection is mutual TLS against that CA only,
//!   and both sides learn the peer's identity name. Packets are encrypted
//!   (`secure` wire mode) or, when both ends choose it, only checked by
//!   crc32c ([`integrity`], like Ceph's `crc` mode).
//! - **Framing** ([`frame`], [`codec`]): a 16-byte header, an rkyv body and
//!   a raw payload that is never copied through the encoder; bounded sizes;
//!   a bad frame closes its stream, never the process.
//! - **Requests** ([`Endpoint::request`]): one bidirectional stream per
//!   request, with deadlines; one cached connection per peer, reconnected
//!   with backoff.
//! - **One-way streams** ([`Endpoint::send_oneway`]): ordered, long-lived,
//!   one per (peer, topic), for replication traffic.
//! - **Fault injection** ([`fault`]): drop, delay or partition traffic
//!   between named endpoints at run time, for tests.
//!
//! See `docs/net.md` for the design and the measured tuning.

#![warn(missing_docs)]

pub mod ca;
pub mod codec;
pub mod config;
mod conn_pool;
pub mod connection;
pub mod endpoint;
pub mod error;
pub mod fault;
pub mod files;
pub mod frame;
mod handler;
pub mod identity;
pub mod integrity;
mod peer;
pub mod rpc;
mod server;
mod shared;
mod socket;
pub mod stream;
pub mod tls;

pub use ca::ClusterCa;
pub use config::{Backoff, EndpointConfig, Tuning};
pub use connection::Connection;
pub use endpoint::{Endpoint, EndpointBuilder};
pub use error::{NetError, Result};
pub use fault::{FaultInjector, FaultStats, LinkFault};
pub use frame::{Frame, FrameDecoder, FrameError, FrameHeader, FrameLimits, concat};
pub use handler::{RequestHandler, StreamHandler};
pub use identity::NodeIdentity;
pub use peer::{PeerAddr, PeerInfo};
pub use rpc::RequestOptions;
pub use shared::EndpointStats;
pub use stream::{InboundStream, OnewaySender};
pub use tls::WireMode;
