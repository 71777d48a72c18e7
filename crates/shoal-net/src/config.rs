//! Endpoint and transport settings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};

use crate::fault::FaultInjector;
use crate::frame::FrameLimits;
use crate::tls::WireMode;

/// Transport tuning (flow-control windows, MTU, socket buffers, ...).
///
/// The defaults are what measured best on loopback with 4 MiB payloads
/// (see `docs/net.md`); they are also sound on a LAN, because MTU
/// discovery lowers the datagram size to what the path carries.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Per-stream receive window (bytes a peer may send ahead on one stream).
    pub stream_receive_window: u64,
    /// Connection-wide receive window.
    pub receive_window: u64,
    /// Connection-wide send window (unacknowledged bytes in flight).
    pub send_window: u64,
    /// Requested `SO_RCVBUF`/`SO_SNDBUF` of the UDP socket (0: leave the default).
    pub socket_buffer: usize,
    /// Datagram size used from the start (at least 1200).
    pub initial_mtu: u16,
    /// Upper bound of MTU discovery, and the largest datagram accepted.
    pub max_mtu: u16,
    /// Whether to batch datagrams with UDP generic segmentation offload.
    pub gso: bool,
    /// Split GSO batches larger than one `sendmsg` may carry (64 KiB).
    /// Leave on: without it a large MTU with GSO falls back to 1200 bytes
    /// (see `docs/net.md`); the switch exists to show that.
    pub split_gso_batches: bool,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Keep-alive interval (keeps idle connections open, detects dead peers).
    pub keep_alive: Duration,
    /// Round-trip time assumed before the first measurement. QUIC's default
    /// (333 ms) is meant for the internet; inside a cluster it makes the
    /// first retransmissions and the closing period (3 PTOs) needlessly slow.
    pub initial_rtt: Duration,
    /// Concurrent bidirectional (request) streams a peer may open.
    pub max_bidi_streams: u32,
    /// Concurrent unidirectional (one-way) streams a peer may open.
    pub max_uni_streams: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            // Four 4 MiB payloads in flight per stream, sixteen per connection.
            stream_receive_window: 16 << 20,
            receive_window: 64 << 20,
            send_window: 64 << 20,
            socket_buffer: 8 << 20,
            initial_mtu: 1200,
            max_mtu: 65_000,
            gso: true,
            split_gso_batches: true,
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            initial_rtt: Duration::from_millis(20),
            max_bidi_streams: 1024,
            max_uni_streams: 256,
        }
    }
}

fn varint(v: u64) -> VarInt {
    VarInt::from_u64(v).unwrap_or(VarInt::MAX)
}

impl Tuning {
    /// The quinn transport configuration for these settings.
    pub fn transport_config(&self) -> TransportConfig {
        let mut tc = TransportConfig::default();
        tc.stream_receive_window(varint(self.stream_receive_window))
            .receive_window(varint(self.receive_window))
            .send_window(self.send_window)
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_bidi_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_uni_streams))
            .keep_alive_interval(Some(self.keep_alive))
            .initial_rtt(self.initial_rtt)
            .initial_mtu(self.initial_mtu.min(self.max_mtu))
            .enable_segmentation_offload(self.gso);
        // Durations beyond QUIC's range fall back to "no idle timeout".
        tc.max_idle_timeout(IdleTimeout::try_from(self.idle_timeout).ok());
        let mut mtud = MtuDiscoveryConfig::default();
        mtud.upper_bound(self.max_mtu.max(1200));
        tc.mtu_discovery_config(Some(mtud));
        tc
    }

    pub(crate) fn transport(&self) -> Arc<TransportConfig> {
        Arc::new(self.transport_config())
    }
}

/// Retry backoff: the delay doubles after each failed attempt, up to a
/// cap. The one backoff of the workspace (reconnections, monitor commands,
/// client ops, peering, an OSD booting again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (`failures >= 1`).
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1 << shift).min(self.max)
    }
}

/// How an endpoint is set up.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Address to bind (port 0 picks one).
    pub bind: SocketAddr,
    /// Whether to accept incoming connections (daemons) or only dial (clients).
    pub accept: bool,
    /// Transport tuning.
    pub tuning: Tuning,
    /// Frame size limits for everything this endpoint receives.
    pub limits: FrameLimits,
    /// Longest time one connection attempt may take.
    pub connect_timeout: Duration,
    /// Reconnection backoff.
    pub backoff: Backoff,
    /// Fault injector (tests only): this endpoint's datagrams pass through it.
    pub fault: Option<FaultInjector>,
    /// Packet protection after the handshake (`integrity` takes effect on
    /// a connection only when the peer is in that mode too).
    pub wire_mode: WireMode,
}

impl EndpointConfig {
    /// Defaults, bound to `bind`, accepting connections.
    pub fn new(bind: SocketAddr) -> Self {
        EndpointConfig {
            bind,
            accept: true,
            tuning: Tuning::default(),
            limits: FrameLimits::default(),
            connect_timeout: Duration::from_secs(5),
            backoff: Backoff::default(),
            fault: None,
            wire_mode: WireMode::Secure,
        }
    }

    /// A client-only endpoint (dials out, accepts nothing) bound to `bind`.
    pub fn client(bind: SocketAddr) -> Self {
        EndpointConfig {
            accept: false,
            ..Self::new(bind)
        }
    }

    /// Sets the fault injector.
    pub fn with_fault(mut self, fault: FaultInjector) -> Self {
        self.fault = Some(fault);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
        };
        let d: Vec<u64> = (1..=6).map(|n| b.delay(n).as_millis() as u64).collect();
        assert_eq!(d, vec![10, 20, 40, 80, 100, 100]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(100));
    }

    #[test]
    fn tuning_converts_to_quinn() {
        // Out-of-range values must not panic.
        let t = Tuning {
            stream_receive_window: u64::MAX,
            idle_timeout: Duration::MAX,
            max_mtu: 100,
            ..Tuning::default()
        };
        let _ = t.transport_config();
    }
}
