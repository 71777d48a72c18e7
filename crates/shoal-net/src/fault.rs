//! Fault injection between named endpoints, for tests.
//!
//! A [`FaultInjector`] is a shared handle. Endpoints built with one register
//! their name and address in it, and their UDP socket consults it for every
//! datagram they send: it may drop the datagram, delay it, or pass it.
//! Rules can be changed at any time while traffic flows. Because every
//! endpoint filters what it *sends*, a partition (drop everything between
//! two names, both ways) needs both endpoints to share the injector.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Faults applied to datagrams going from one endpoint to another.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFault {
    /// Probability (0.0 to 1.0) that a datagram is dropped.
    pub drop_probability: f64,
    /// Extra one-way delay added to every datagram that is not dropped.
    pub delay: Duration,
}

/// Counters of what the injector did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Datagrams dropped (by a partition or a drop probability).
    pub dropped: u64,
    /// Datagrams delayed.
    pub delayed: u64,
}

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Drop,
    Delay(Duration),
}

#[derive(Debug, Default)]
struct Rules {
    names: HashMap<SocketAddr, String>,
    partitions: HashSet<(String, String)>,
    links: HashMap<(String, String), LinkFault>,
}

impl Rules {
    fn is_empty(&self) -> bool {
        self.partitions.is_empty() && self.links.is_empty()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Fast path: no rule at all, nothing to look up.
    active: AtomicBool,
    rules: RwLock<Rules>,
    rng: AtomicU64,
    dropped: AtomicU64,
    delayed: AtomicU64,
}

/// Shared, run-time switchable fault rules between named endpoints.
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    state: Arc<State>,
}

fn unordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

impl FaultInjector {
    /// An injector with no rules (everything passes).
    pub fn new() -> Self {
        let inj = FaultInjector::default();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        inj.state.rng.store(seed, Ordering::Relaxed);
        inj
    }

    fn update(&self, f: impl FnOnce(&mut Rules)) {
        let mut rules = match self.state.rules.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut rules);
        self.state
            .active
            .store(!rules.is_empty(), Ordering::Release);
    }

    /// Records that endpoint `name` sends and receives at `addr`.
    pub fn register(&self, name: &str, addr: SocketAddr) {
        self.update(|r| {
            r.names.insert(addr, name.to_owned());
        });
    }

    /// Drops all traffic between `a` and `b`, both ways.
    pub fn partition(&self, a: &str, b: &str) {
        self.update(|r| {
            r.partitions.insert(unordered(a, b));
        });
    }

    /// Removes the partition between `a` and `b`.
    pub fn heal(&self, a: &str, b: &str) {
        self.update(|r| {
            r.partitions.remove(&unordered(a, b));
        });
    }

    /// Sets the faults of datagrams sent from `from` to `to` (one direction).
    pub fn set_link(&self, from: &str, to: &str, fault: LinkFault) {
        self.update(|r| {
            r.links.insert((from.to_owned(), to.to_owned()), fault);
        });
    }

    /// Sets the same faults in both directions between `a` and `b`.
    pub fn set_link_both(&self, a: &str, b: &str, fault: LinkFault) {
        self.set_link(a, b, fault);
        self.set_link(b, a, fault);
    }

    /// Removes every partition and link fault (registrations stay).
    pub fn clear(&self) {
        self.update(|r| {
            r.partitions.clear();
            r.links.clear();
        });
    }

    /// What the injector has done so far.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            dropped: self.state.dropped.load(Ordering::Relaxed),
            delayed: self.state.delayed.load(Ordering::Relaxed),
        }
    }

    /// A uniform number in [0, 1) (splitmix64 over a shared counter).
    fn random(&self) -> f64 {
        let mut z = self
            .state
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True when some rule exists (otherwise every datagram passes).
    pub(crate) fn active(&self) -> bool {
        self.state.active.load(Ordering::Acquire)
    }

    /// Whether a datagram that endpoint `me` received from `from` crosses a
    /// partition (it is then dropped and counted): partitions cut both
    /// ways at each endpoint, so a peer that does not drop what it sends
    /// (a process without an injector) is cut off too.
    pub(crate) fn partitioned_from(&self, me: &str, from: SocketAddr) -> bool {
        if !self.active() {
            return false;
        }
        let cut = {
            let rules = match self.state.rules.read() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            rules
                .names
                .get(&from)
                .is_some_and(|name| rules.partitions.contains(&unordered(me, name)))
        };
        if cut {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
        }
        cut
    }

    /// Decides the fate of one datagram from endpoint `from` to `to`.
    pub(crate) fn verdict(&self, from: &str, to: SocketAddr) -> Verdict {
        if !self.active() {
            return Verdict::Pass;
        }
        let fault = {
            let rules = match self.state.rules.read() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let Some(to_name) = rules.names.get(&to) else {
                return Verdict::Pass;
            };
            if rules.partitions.contains(&unordered(from, to_name)) {
                None
            } else {
                match rules.links.get(&(from.to_owned(), to_name.clone())) {
                    Some(f) => Some(*f),
                    None => return Verdict::Pass,
                }
            }
        };
        let verdict = match fault {
            None => Verdict::Drop,
            Some(f) if f.drop_probability > 0.0 && self.random() < f.drop_probability => {
                Verdict::Drop
            }
            Some(f) if !f.delay.is_zero() => Verdict::Delay(f.delay),
            Some(_) => Verdict::Pass,
        };
        match verdict {
            Verdict::Drop => self.state.dropped.fetch_add(1, Ordering::Relaxed),
            Verdict::Delay(_) => self.state.delayed.fetch_add(1, Ordering::Relaxed),
            Verdict::Pass => 0,
        };
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let inj = FaultInjector::new();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:1".parse().unwrap();
        inj.register("a", a);
        inj.register("b", b);
        assert_eq!(inj.verdict("a", b), Verdict::Pass);
        inj.partition("b", "a");
        assert_eq!(inj.verdict("a", b), Verdict::Drop);
        assert_eq!(inj.verdict("b", a), Verdict::Drop);
        inj.heal("a", "b");
        assert_eq!(inj.verdict("a", b), Verdict::Pass);
        inj.set_link(
            "a",
            "b",
            LinkFault {
                drop_probability: 0.0,
                delay: Duration::from_millis(5),
            },
        );
        assert_eq!(
            inj.verdict("a", b),
            Verdict::Delay(Duration::from_millis(5))
        );
        assert_eq!(inj.verdict("b", a), Verdict::Pass);
        inj.set_link(
            "a",
            "b",
            LinkFault {
                drop_probability: 0.5,
                delay: Duration::ZERO,
            },
        );
        let drops = (0..10_000)
            .filter(|_| inj.verdict("a", b) == Verdict::Drop)
            .count();
        assert!((4_000..6_000).contains(&drops), "{drops}");
        inj.clear();
        assert!(!inj.active());
    }
}
