//! Read leases (Ceph's `read_lease`): a chain member serves reads only
//! while every other member of its chain has answered one of its
//! heartbeats, sent less than a lease ago, from a map no newer than its
//! own. A member cut off from the rest of its chain (and from the
//! monitors, so it never learns that a new interval took over) stops
//! serving reads within a lease of the first of its chain mates moving on.
//! The head of a new interval in which a member of the last active
//! interval did not answer waits one lease before it activates (see
//! `peer.rs`), so no read of the old interval is answered once a write of
//! the new one can be.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shoal_map::OsdMap;

/// How long a probe of a silent OSD's port waits for the refusal.
const PROBE_WAIT: Duration = Duration::from_millis(200);

/// The freshest heartbeat answer of each peer.
#[derive(Debug)]
pub struct ReadLeases {
    lease: Duration,
    /// Peer -> (when the answered ping was sent, the peer's map epoch in
    /// its answer).
    answers: Mutex<HashMap<i32, (Instant, u32)>>,
}

impl ReadLeases {
    /// Leases of `lease`.
    pub fn new(lease: Duration) -> Self {
        ReadLeases {
            lease,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// How long a lease lasts.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// `peer` answered a ping sent at `sent`, with its map at `epoch`.
    pub fn answered(&self, peer: i32, sent: Instant, epoch: u32) {
        let mut a = match self.answers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let e = a.entry(peer).or_insert((sent, epoch));
        if sent >= e.0 {
            *e = (sent, epoch);
        }
    }

    /// The members of `chain` (other than `me`) whose lease has lapsed at
    /// `now` for a member whose map is at `my_epoch`: no answer to a ping
    /// sent within the lease, or an answer from a newer map (that map may
    /// have ended the chain).
    pub fn lapsed(&self, chain: &[i32], me: i32, my_epoch: u32, now: Instant) -> Vec<i32> {
        let a = match self.answers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        chain
            .iter()
            .copied()
            .filter(|&m| m != me)
            .filter(|m| {
                !a.get(m).is_some_and(|&(sent, epoch)| {
                    epoch <= my_epoch && now.saturating_duration_since(sent) < self.lease
                })
            })
            .collect()
    }
}

/// When the read leases of `silent` (earlier members that did not answer
/// peering) have surely lapsed. Each holds a lease from every mate of its
/// chain (`chains`: the earlier chains it may serve in), so a mate that
/// answered bounds it: a lease after that mate last heard from it
/// (`heard_by[mate][silent]`; its answers come after hearing the ping they
/// answer). Without such a mate, a lease from `now`. This is what makes the
/// usual failover free: peers report a silent OSD only after the grace,
/// longer than a lease, so by then every bound has passed.
///
/// Generic over the clock (`Instant` in the daemon, simulated time as a
/// `Duration` in the PG state machine).
pub fn lapse_bound<T>(
    silent: &BTreeSet<i32>,
    chains: &[Vec<i32>],
    heard_by: &BTreeMap<i32, HashMap<i32, T>>,
    lease: Duration,
    now: T,
) -> T
where
    T: Copy + Ord + std::ops::Add<Duration, Output = T>,
{
    silent
        .iter()
        .map(|&x| {
            chains
                .iter()
                .filter(|c| c.contains(&x))
                .flatten()
                .filter(|&&m| m != x)
                .filter_map(|m| heard_by.get(m)?.get(&x))
                .min()
                .map_or(now + lease, |&t| t + lease)
        })
        .max()
        .unwrap_or(now)
}

/// The OSDs of `silent` whose last address in `map` refuses datagrams
/// (the port is closed: an ICMP port-unreachable comes back, as from a
/// killed process). Such an OSD cannot answer a read there, so its leases
/// need no waiting out; a silent one whose port stays quiet (cut off,
/// hung, or a host that is down) may still hold them. Probed from `from`
/// (this OSD's address), all at once.
pub async fn gone(from: IpAddr, map: &OsdMap, silent: &BTreeSet<i32>) -> BTreeSet<i32> {
    let mut probes = tokio::task::JoinSet::new();
    for &o in silent {
        if let Some(addr) = map.osd(o).and_then(|i| i.addr) {
            probes.spawn(async move { (o, port_closed(from, addr).await) });
        }
    }
    let mut out = BTreeSet::new();
    while let Some(r) = probes.join_next().await {
        if let Ok((o, true)) = r {
            out.insert(o);
        }
    }
    out
}

/// Whether `addr` answers a datagram with a refusal within [`PROBE_WAIT`].
/// A QUIC endpoint ignores the one-byte datagram.
async fn port_closed(from: IpAddr, addr: SocketAddr) -> bool {
    let Ok(sock) = tokio::net::UdpSocket::bind(SocketAddr::new(from, 0)).await else {
        return false;
    };
    if sock.connect(addr).await.is_err() {
        return false;
    }
    let refused = |e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionRefused;
    if let Err(e) = sock.send(&[0]).await {
        return refused(&e);
    }
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(PROBE_WAIT, sock.recv(&mut buf)).await,
        Ok(Err(e)) if refused(&e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_refuses_and_an_open_quiet_one_does_not() {
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        // An open socket that never answers: not gone.
        let quiet = tokio::net::UdpSocket::bind((lo, 0)).await.expect("bind");
        assert!(!port_closed(lo, quiet.local_addr().expect("addr")).await);
        // A port nobody listens on any more: gone.
        let closed = {
            let s = std::net::UdpSocket::bind((lo, 0)).expect("bind");
            s.local_addr().expect("addr")
        };
        assert!(port_closed(lo, closed).await);
    }

    #[test]
    fn a_silent_members_lease_is_bounded_by_when_an_answering_mate_last_heard_from_it() {
        let lease = Duration::from_millis(800);
        let now = Instant::now();
        let ago = |ms| now - Duration::from_millis(ms);
        let chains = vec![vec![1, 2, 3]];
        let mut heard_by: BTreeMap<i32, HashMap<i32, Instant>> = BTreeMap::new();
        let silent: BTreeSet<i32> = [1].into();
        // Nobody who answered has heard from osd.1: a lease from now.
        assert_eq!(
            lapse_bound(&silent, &chains, &heard_by, lease, now),
            now + lease
        );
        // osd.2 heard from it 2 s ago, osd.3 300 ms ago: the earlier one
        // bounds it (it needs both), and that has passed.
        heard_by.insert(2, [(1, ago(2000))].into());
        heard_by.insert(3, [(1, ago(300))].into());
        assert!(lapse_bound(&silent, &chains, &heard_by, lease, now) <= now);
        // Only a recent hearing: the lease may still run.
        heard_by.remove(&2);
        assert_eq!(
            lapse_bound(&silent, &chains, &heard_by, lease, now),
            ago(300) + lease
        );
        // A mate of another chain says nothing about osd.1's lease.
        let other = vec![vec![4, 5]];
        heard_by.insert(4, [(1, ago(5000))].into());
        assert_eq!(
            lapse_bound(&silent, &other, &heard_by, lease, now),
            now + lease
        );
        // Nobody silent: no wait.
        assert_eq!(
            lapse_bound(&BTreeSet::new(), &chains, &heard_by, lease, now),
            now
        );
    }

    #[test]
    fn a_lease_needs_a_recent_answer_from_every_other_member_at_no_newer_map() {
        let leases = ReadLeases::new(Duration::from_millis(800));
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // Nobody answered yet.
        assert_eq!(leases.lapsed(&[1, 2, 3], 1, 10, t0), vec![2, 3]);
        leases.answered(2, ms(0), 10);
        leases.answered(3, ms(100), 9);
        assert!(leases.lapsed(&[1, 2, 3], 1, 10, ms(500)).is_empty());
        // The lease counts from when the ping was sent.
        assert_eq!(leases.lapsed(&[1, 2, 3], 1, 10, ms(850)), vec![2]);
        // An older answer arriving late changes nothing.
        leases.answered(2, ms(600), 10);
        leases.answered(2, ms(300), 10);
        assert!(leases.lapsed(&[1, 2, 3], 1, 10, ms(850)).is_empty());
        // A member with a newer map may have left the chain: until this
        // member installs that map, it holds no lease from it.
        leases.answered(3, ms(700), 11);
        assert_eq!(leases.lapsed(&[1, 2, 3], 1, 10, ms(850)), vec![3]);
        assert!(leases.lapsed(&[1, 2, 3], 1, 11, ms(850)).is_empty());
        // A chain of one needs nobody.
        assert!(leases.lapsed(&[1], 1, 10, ms(5000)).is_empty());
    }
}
