//! The UDP socket under every endpoint.
//!
//! It wraps quinn's tokio socket to do two things:
//! - split GSO batches larger than the kernel accepts in one `sendmsg`
//!   (64 KiB of UDP payload). quinn builds batches of up to 10 datagrams;
//!   with a 9000-byte MTU that is 90 kB, the kernel answers `EMSGSIZE`,
//!   quinn-udp drops the batch silently (it takes `EMSGSIZE` for a failed
//!   MTU probe), and the loss makes MTU discovery's black-hole detection
//!   fall back to 1200 bytes. Splitting keeps large MTUs and GSO together;
//! - apply the [`FaultInjector`]'s verdicts per datagram in tests.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

use crate::fault::{FaultInjector, Verdict};

/// Most UDP payload bytes one `sendmsg` may carry (IPv4: 65535 - 20 - 8).
const MAX_SEND_BYTES: usize = 65_507;

/// A quinn socket with GSO batch splitting and optional fault injection.
pub(crate) struct ShoalSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    fault: Option<(FaultInjector, String)>,
    split: bool,
}

impl fmt::Debug for ShoalSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShoalSocket")
            .field("inner", &self.inner)
            .field("fault", &self.fault.as_ref().map(|(_, n)| n))
            .finish()
    }
}

impl ShoalSocket {
    /// Wraps `inner`; with `fault`, datagrams sent by endpoint `name` pass
    /// through the injector; `split` enables GSO batch splitting.
    pub(crate) fn new(
        inner: Arc<dyn AsyncUdpSocket>,
        fault: Option<(FaultInjector, String)>,
        split: bool,
    ) -> Self {
        ShoalSocket {
            inner,
            fault,
            split,
        }
    }

    /// Sends a transmit, splitting an oversized GSO batch into several
    /// `sendmsg` calls. Once part of a batch is out, a later `WouldBlock`
    /// drops the rest (QUIC retransmits) rather than resending the part.
    fn send_split(&self, t: &Transmit<'_>) -> io::Result<()> {
        let seg = match t.segment_size {
            Some(seg) if self.split && t.contents.len() > MAX_SEND_BYTES && seg > 0 => seg,
            _ => return self.inner.try_send(t),
        };
        let per_call = (MAX_SEND_BYTES / seg).max(1) * seg;
        for (i, part) in t.contents.chunks(per_call).enumerate() {
            let sub = Transmit {
                destination: t.destination,
                ecn: t.ecn,
                contents: part,
                segment_size: (part.len() > seg).then_some(seg),
                src_ip: t.src_ip,
            };
            match self.inner.try_send(&sub) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && i > 0 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends datagram by datagram, as the injector decides for each.
    fn send_faulty(&self, t: &Transmit<'_>, inj: &FaultInjector, name: &str) -> io::Result<()> {
        let seg = t.segment_size.unwrap_or(t.contents.len()).max(1);
        for datagram in t.contents.chunks(seg) {
            let one = Transmit {
                destination: t.destination,
                ecn: t.ecn,
                contents: datagram,
                segment_size: None,
                src_ip: t.src_ip,
            };
            match inj.verdict(name, t.destination) {
                Verdict::Pass => match self.inner.try_send(&one) {
                    Ok(()) => {}
                    // Dropping is allowed here: this is the lossy-network mode.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                },
                Verdict::Drop => {}
                Verdict::Delay(d) => {
                    let Ok(rt) = tokio::runtime::Handle::try_current() else {
                        continue;
                    };
                    let inner = self.inner.clone();
                    let (destination, ecn, src_ip) = (t.destination, t.ecn, t.src_ip);
                    let data = datagram.to_vec();
                    rt.spawn(async move {
                        tokio::time::sleep(d).await;
                        let delayed = Transmit {
                            destination,
                            ecn,
                            contents: &data,
                            segment_size: None,
                            src_ip,
                        };
                        // Best effort, like the network it imitates.
                        let _ = inner.try_send(&delayed);
                    });
                }
            }
        }
        Ok(())
    }
}

impl AsyncUdpSocket for ShoalSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        match &self.fault {
            Some((inj, name)) if inj.active() => self.send_faulty(transmit, inj, name),
            _ => self.send_split(transmit),
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let n = match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            let Some((inj, name)) = self.fault.as_ref().filter(|(inj, _)| inj.active()) else {
                return Poll::Ready(Ok(n));
            };
            let kept = drop_partitioned(inj, name, bufs, meta, n);
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Removes the received datagrams (of `n`) that come from across a
/// partition, moving the others to the front; returns how many are left.
fn drop_partitioned(
    inj: &FaultInjector,
    name: &str,
    bufs: &mut [IoSliceMut<'_>],
    meta: &mut [RecvMeta],
    n: usize,
) -> usize {
    let mut kept = 0;
    for i in 0..n.min(meta.len()).min(bufs.len()) {
        if inj.partitioned_from(name, meta[i].addr) {
            continue;
        }
        if kept != i {
            let (front, back) = bufs.split_at_mut(i);
            // quinn hands out equal buffers; the bound only guards that.
            let len = meta[i].len.min(front[kept].len()).min(back[0].len());
            front[kept][..len].copy_from_slice(&back[0][..len]);
            meta[kept] = meta[i];
            meta[kept].len = len;
        }
        kept += 1;
    }
    kept
}

/// Binds a UDP socket with the requested kernel buffer sizes (the kernel
/// caps them at `net.core.rmem_max`/`wmem_max`; the result is logged).
pub(crate) fn bind_udp(addr: SocketAddr, buffer: usize) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    if buffer > 0 {
        if let Err(e) = socket.set_recv_buffer_size(buffer) {
            tracing::debug!(%addr, error = %e, "could not set SO_RCVBUF");
        }
        if let Err(e) = socket.set_send_buffer_size(buffer) {
            tracing::debug!(%addr, error = %e, "could not set SO_SNDBUF");
        }
    }
    socket.bind(&addr.into())?;
    tracing::debug!(
        %addr,
        rcvbuf = socket.recv_buffer_size().unwrap_or(0),
        sndbuf = socket.send_buffer_size().unwrap_or(0),
        "UDP socket bound"
    );
    Ok(socket.into())
}
