//! The endpoint: one UDP socket, incoming and outgoing connections,
//! requests and one-way streams.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{AsyncUdpSocket, Runtime, VarInt};
use tokio::time::Instant;

use crate::config::EndpointConfig;
use crate::conn_pool::ConnPool;
use crate::connection::{
    CLOSE_BAD_IDENTITY, CLOSE_SHUTDOWN, Connection, classify, is_refusal, refine,
};
use crate::error::{NetError, Result};
use crate::frame::Frame;
use crate::handler::{DynRequestHandler, DynStreamHandler, RequestHandler, StreamHandler};
use crate::identity::NodeIdentity;
use crate::peer::{PeerAddr, peer_of};
use crate::rpc::{self, RequestOptions};
use crate::server::{accept_loop, serve_connection};
use crate::shared::{Counters, EndpointStats, Shared};
use crate::socket::{ShoalSocket, bind_udp};
use crate::stream::OnewaySender;
use crate::tls::{self, ALPN, ServerCheck};

/// How often a request is retried on a new connection when the cached one
/// turns out to be closed before anything was sent.
const MAX_OPEN_RETRIES: u32 = 3;
type LinkKey = (PeerAddr, String);

struct Inner {
    quinn: quinn::Endpoint,
    shared: Arc<Shared>,
    client_named: quinn::ClientConfig,
    client_any: quinn::ClientConfig,
    pool: ConnPool,
    links: Mutex<HashMap<LinkKey, Arc<tokio::sync::Mutex<Option<OnewaySender>>>>>,
    local_addr: SocketAddr,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.pool.clear();
        self.quinn.close(CLOSE_SHUTDOWN, b"endpoint dropped");
    }
}

/// A QUIC endpoint with a cluster identity: accepts connections (when
/// configured to), dials peers, serves and sends requests and one-way
/// streams. Cheap to clone; dropping the last clone shuts it down.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.inner.shared.name)
            .field("addr", &self.inner.local_addr)
            .finish()
    }
}

/// Builds an [`Endpoint`]: identity, configuration and handlers.
pub struct EndpointBuilder {
    identity: NodeIdentity,
    config: EndpointConfig,
    request_handler: Option<Arc<dyn DynRequestHandler>>,
    stream_handler: Option<Arc<dyn DynStreamHandler>>,
}

impl fmt::Debug for EndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBuilder")
            .field("identity", &self.identity.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EndpointBuilder {
    /// Serves requests with `handler`.
    pub fn request_handler(mut self, handler: impl RequestHandler) -> Self {
        self.request_handler = Some(Arc::new(handler));
        self
    }

    /// Hands incoming one-way streams to `handler`.
    pub fn stream_handler(mut self, handler: impl StreamHandler) -> Self {
        self.stream_handler = Some(Arc::new(handler));
        self
    }

    /// Binds the socket and starts serving. Must run inside a tokio runtime.
    pub fn bind(self) -> Result<Endpoint> {
        Endpoint::start(self)
    }
}

fn config_error(e: impl fmt::Display) -> NetError {
    NetError::Tls(rustls::Error::General(format!("QUIC configuration: {e}")))
}

/// Stateless-reset and connection-ID keys derived from the identity key and
/// address. A restarted daemon then recognises its predecessor's
/// connection IDs and answers their packets with a valid stateless reset,
/// so peers notice the restart at once instead of after the idle timeout.
fn restart_keys(identity: &NodeIdentity, addr: SocketAddr) -> (ring::hmac::Key, u64) {
    let derive = |purpose: &[u8]| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(purpose);
        ctx.update(identity.key_der().secret_der());
        ctx.update(addr.to_string().as_bytes());
        ctx.finish()
    };
    let reset = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        derive(b"shoal stateless reset key\0").as_ref(),
    );
    let cid = derive(b"shoal connection id key\0");
    let mut first = [0u8; 8];
    first.copy_from_slice(&cid.as_ref()[..8]);
    (reset, u64::from_le_bytes(first))
}

impl Endpoint {
    /// Starts building an endpoint for `identity`.
    pub fn builder(identity: NodeIdentity, config: EndpointConfig) -> EndpointBuilder {
        EndpointBuilder {
            identity,
            config,
            request_handler: None,
            stream_handler: None,
        }
    }

    fn start(b: EndpointBuilder) -> Result<Endpoint> {
        let EndpointBuilder {
            identity,
            config,
            request_handler,
            stream_handler,
        } = b;
        let name = identity.name().to_owned();
        let tuning = &config.tuning;
        let bind = config.bind;
        let udp = bind_udp(bind, tuning.socket_buffer)
            .map_err(|e| NetError::io(format!("bind UDP {bind}"), e))?;
        let runtime: Arc<dyn Runtime> = Arc::new(quinn::TokioRuntime);
        let raw = runtime
            .wrap_udp_socket(udp)
            .map_err(|e| NetError::io("register UDP socket (outside a tokio runtime?)", e))?;
        let local_addr = raw
            .local_addr()
            .map_err(|e| NetError::io("UDP local address", e))?;
        let fault = config.fault.clone().map(|f| {
            f.register(&name, local_addr);
            (f, name.clone())
        });
        let socket: Arc<dyn AsyncUdpSocket> =
            Arc::new(ShoalSocket::new(raw, fault, tuning.split_gso_batches));

        let shared = Arc::new(Shared {
            name: name.clone(),
            limits: config.limits,
            request_handler,
            stream_handler,
            stats: Counters::default(),
        });
        let transport = tuning.transport();
        let mut client_transport = tuning.transport_config();
        if !shared.serves() {
            // Nobody would accept streams a server opened towards us.
            client_transport
                .max_concurrent_bidi_streams(VarInt::from_u32(0))
                .max_concurrent_uni_streams(VarInt::from_u32(0));
        }
        let client_transport = Arc::new(client_transport);

        let (reset_key, cid_key) = restart_keys(&identity, local_addr);
        let mut ep_config = quinn::EndpointConfig::new(Arc::new(reset_key));
        ep_config
            .cid_generator(move || {
                Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
            })
            .max_udp_payload_size(tuning.max_mtu.max(1200))
            .map_err(config_error)?;
        let server = if config.accept {
            let tls = tls::server_config_for(&identity, ALPN, config.wire_mode)?;
            let crypto = QuicServerConfig::try_from(tls).map_err(config_error)?;
            let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
            sc.transport_config(transport.clone());
            Some(sc)
        } else {
            None
        };
        let client = |check| -> Result<quinn::ClientConfig> {
            let tls = tls::client_config_for(&identity, check, ALPN, config.wire_mode)?;
            let crypto = QuicClientConfig::try_from(tls).map_err(config_error)?;
            let mut cc = quinn::ClientConfig::new(Arc::new(crypto));
            cc.transport_config(client_transport.clone());
            Ok(cc)
        };
        let client_named = client(ServerCheck::Named)?;
        let client_any = client(ServerCheck::AnyMember)?;
        let quinn = quinn::Endpoint::new_with_abstract_socket(ep_config, server, socket, runtime)
            .map_err(|e| NetError::io("start QUIC endpoint", e))?;
        if config.accept {
            tokio::spawn(accept_loop(quinn.clone(), shared.clone()));
        }
        tracing::info!(name = %name, addr = %local_addr, accept = config.accept, "endpoint up");
        Ok(Endpoint {
            inner: Arc::new(Inner {
                quinn,
                shared,
                client_named,
                client_any,
                pool: ConnPool::new(config.backoff, config.connect_timeout),
                links: Mutex::new(HashMap::new()),
                local_addr,
            }),
        })
    }

    /// This endpoint's identity name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Activity counters.
    pub fn stats(&self) -> EndpointStats {
        let c = &self.inner.shared.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EndpointStats {
            connections_accepted: get(&c.connections_accepted),
            handshake_failures: get(&c.handshake_failures),
            connections_opened: get(&c.connections_opened),
            requests_served: get(&c.requests_served),
            streams_accepted: get(&c.streams_accepted),
            frame_errors: get(&c.frame_errors),
        }
    }

    /// Opens a new connection to `peer` (not cached; see [`Endpoint::connection`]).
    /// Fails with [`NetError::HandshakeRefused`] when the peer's certificate
    /// is refused here. The peer refusing *our* certificate shows up on
    /// first use of the connection, as TLS 1.3 clients finish the handshake
    /// before the server has checked their certificate.
    pub async fn connect(&self, peer: &PeerAddr) -> Result<Connection> {
        let (config, server_name) = match &peer.name {
            Some(name) => (self.inner.client_named.clone(), tls::server_name_for(name)),
            None => (self.inner.client_any.clone(), "member.shoal".to_owned()),
        };
        let connecting = self
            .inner
            .quinn
            .connect_with(config, peer.addr, &server_name)
            .map_err(|source| NetError::Connect {
                addr: peer.addr,
                source,
            })?;
        let conn = connecting.await.map_err(classify)?;
        let info = match peer_of(&conn) {
            Ok(info) => info,
            Err(e) => {
                conn.close(CLOSE_BAD_IDENTITY, b"no identity");
                return Err(e);
            }
        };
        let shared = self.inner.shared.clone();
        shared
            .stats
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        if shared.serves() {
            tokio::spawn(serve_connection(shared.clone(), conn.clone(), info.clone()));
        }
        tracing::debug!(local = %shared.name, peer = %info.name, addr = %info.addr, "connected");
        Ok(Connection {
            conn,
            peer: info,
            shared,
        })
    }

    /// The cached connection to `peer`, connecting (with backoff after
    /// failures) if there is none or it was lost, within `timeout`.
    pub async fn connection(&self, peer: &PeerAddr, timeout: Duration) -> Result<Connection> {
        let deadline = Instant::now() + timeout;
        self.pooled(peer, deadline, timeout).await
    }

    async fn pooled(
        &self,
        peer: &PeerAddr,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Connection> {
        self.inner
            .pool
            .get(peer, deadline, timeout, || self.connect(peer))
            .await
    }

    /// Sends a request to `peer` over the cached connection and waits for
    /// the response, all within `timeout`; see [`Endpoint::request_with`].
    pub async fn request(
        &self,
        peer: &PeerAddr,
        request: &Frame,
        timeout: Duration,
    ) -> Result<Frame> {
        self.request_with(peer, request, RequestOptions::timeout(timeout))
            .await
    }

    /// Sends a request to `peer` and waits for the response. Connecting is
    /// retried with backoff until the deadline; the request itself is never
    /// resent once written (the peer may have acted on it: retrying is the
    /// caller's call). Fails with [`NetError::Timeout`] at the deadline.
    pub async fn request_with(
        &self,
        peer: &PeerAddr,
        request: &Frame,
        opts: RequestOptions,
    ) -> Result<Frame> {
        let deadline = Instant::now() + opts.timeout;
        let attempt = async {
            let mut retries = 0;
            loop {
                let conn = self.pooled(peer, deadline, opts.timeout).await?;
                match rpc::call(&conn.conn, &conn.shared, request, opts.priority).await {
                    // Lost before the stream opened: nothing was sent, so it
                    // is safe to try again on a new connection (a few times:
                    // a peer that closes every connection at once must not
                    // make us spin).
                    Err(NetError::Connection(e))
                        if retries < MAX_OPEN_RETRIES && conn.is_closed() && !is_refusal(&e) =>
                    {
                        retries += 1;
                        tracing::debug!(peer = %peer, error = %e, "connection lost before the request; retrying");
                    }
                    other => return other.map_err(refine),
                }
            }
        };
        tokio::time::timeout_at(deadline, attempt)
            .await
            .map_err(|_| NetError::Timeout(opts.timeout))?
    }

    /// Opens a new ordered one-way stream for `topic` to `peer` (on the
    /// cached connection).
    pub async fn open_oneway(
        &self,
        peer: &PeerAddr,
        topic: &str,
        timeout: Duration,
    ) -> Result<OnewaySender> {
        let deadline = Instant::now() + timeout;
        let open = async {
            let conn = self.pooled(peer, deadline, timeout).await?;
            conn.open_oneway(topic).await
        };
        tokio::time::timeout_at(deadline, open)
            .await
            .map_err(|_| NetError::Timeout(timeout))?
    }

    /// Sends `frame` on the long-lived one-way stream for (`peer`, `topic`),
    /// opening it on first use. Frames sent through this call for the same
    /// (peer, topic) arrive in order. After an error the stream is dropped
    /// and the next call opens a new one (frames in flight may be lost:
    /// replication protocols number their messages).
    pub async fn send_oneway(
        &self,
        peer: &PeerAddr,
        topic: &str,
        frame: &Frame,
        timeout: Duration,
    ) -> Result<()> {
        let link = {
            let mut links = match self.inner.links.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            links
                .entry((peer.clone(), topic.to_owned()))
                .or_default()
                .clone()
        };
        let deadline = Instant::now() + timeout;
        let send = async {
            let mut guard = link.lock().await;
            if guard.is_none() {
                let conn = self.pooled(peer, deadline, timeout).await?;
                *guard = Some(conn.open_oneway(topic).await?);
            }
            let Some(sender) = guard.as_mut() else {
                return Err(NetError::EndpointClosed);
            };
            let res = sender.send(frame).await.map_err(refine);
            if res.is_err() {
                *guard = None;
            }
            res
        };
        tokio::time::timeout_at(deadline, send)
            .await
            .map_err(|_| NetError::Timeout(timeout))?
    }

    /// Closes every connection and stops accepting; pending requests fail.
    pub fn close(&self) {
        self.inner.pool.clear();
        self.inner.quinn.close(CLOSE_SHUTDOWN, b"endpoint closed");
    }

    /// Waits until every connection is closed and its close acknowledged
    /// or timed out (call after [`Endpoint::close`]).
    pub async fn wait_idle(&self) {
        self.inner.quinn.wait_idle().await;
    }
}
