//! Typed errors of the transport.

use std::io;
use std::path::PathBuf;

use crate::frame::FrameError;

/// Result alias used throughout `shoal-net`.
pub type Result<T, E = NetError> = std::result::Result<T, E>;

/// Everything that can go wrong in the transport.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (usually names the file or address).
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A private key file can be read by its group or by others.
    #[error(
        "refusing to load private key {path}: mode {mode:04o} lets group/others read it (chmod 600 it)"
    )]
    InsecureKeyFile {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A PEM file holds no usable certificate or key, or a certificate is malformed.
    #[error("bad certificate or key material: {0}")]
    BadPem(String),
    /// An identity or cluster name does not follow the naming rules.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    CertGen(#[from] rcgen::Error),
    /// The TLS configuration could not be built, or a certificate check failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The peer presented no certificate, or one without a Shoal identity.
    #[error("peer identity unavailable: {0}")]
    PeerIdentity(String),
    /// Starting a connection failed locally (bad address, endpoint stopping, ...).
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The peer address.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: quinn::ConnectError,
    },
    /// The handshake was refused (certificate rejected by either side).
    #[error("handshake refused: {0}")]
    HandshakeRefused(String),
    /// The connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to a stream failed.
    #[error("stream write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading from a stream failed.
    #[error("stream read: {0}")]
    Read(#[from] quinn::ReadError),
    /// The stream was already closed locally.
    #[error("stream closed: {0}")]
    ClosedStream(#[from] quinn::ClosedStream),
    /// A malformed or oversized frame; the stream it came on has been closed.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer ended the stream before sending a response.
    #[error("the peer closed the stream without a response")]
    NoResponse,
    /// The peer rejected the request frame (it answered with a stream reset).
    #[error("the peer reset the stream (error code {0})")]
    Reset(u64),
    /// A deadline passed.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Encoding or decoding an rkyv message failed.
    #[error("codec: {0}")]
    Codec(String),
    /// The endpoint is shutting down.
    #[error("endpoint closed")]
    EndpointClosed,
}

impl NetError {
    /// Wraps an I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        NetError::Io {
            context: context.into(),
            source,
        }
    }

    /// True if this error means a deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, NetError::Timeout(_))
    }
}
