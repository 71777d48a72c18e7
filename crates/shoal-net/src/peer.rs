//! Who is at the other end: a peer's authenticated identity and address,
//! and where to dial one.

use std::fmt;
use std::net::SocketAddr;

use rustls::pki_types::CertificateDer;

use crate::error::{NetError, Result};
use crate::tls;

/// The authenticated identity and address of a peer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// Identity name from the peer's certificate, e.g. `osd.3`.
    pub name: String,
    /// The peer's UDP address.
    pub addr: SocketAddr,
}

/// Where to connect, and whom to expect there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The peer's UDP address.
    pub addr: SocketAddr,
    /// The identity its certificate must name; `None` accepts any cluster
    /// member (first contact with a monitor known only by address).
    pub name: Option<String>,
}

impl PeerAddr {
    /// The peer at `addr` that must be identity `name`.
    pub fn named(name: impl Into<String>, addr: SocketAddr) -> Self {
        PeerAddr {
            addr,
            name: Some(name.into()),
        }
    }

    /// Any cluster member at `addr`.
    pub fn any(addr: SocketAddr) -> Self {
        PeerAddr { addr, name: None }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n}@{}", self.addr),
            None => write!(f, "*@{}", self.addr),
        }
    }
}

/// The authenticated peer of an established connection.
pub(crate) fn peer_of(conn: &quinn::Connection) -> Result<PeerInfo> {
    let chain = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| NetError::PeerIdentity("the peer presented no certificate".into()))?;
    Ok(PeerInfo {
        name: tls::peer_name(&chain)?,
        addr: conn.remote_address(),
    })
}
