//! Node configuration: identity, members, timing, limits.

use crate::ballot::{NodeId, Slot, Time};
use crate::error::ConfigError;

/// How a [`crate::Node`] behaves. Times are in the caller's clock units
/// (milliseconds in the monitor).
///
/// The member list is static for the life of a `Node` (one config epoch).
/// See the crate documentation for how a membership change is committed as
/// a value and takes effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// This node's id; must be in `members`.
    pub id: NodeId,
    /// Every member (acceptors, and candidates for leader), like a MonMap.
    pub members: Vec<NodeId>,
    /// A follower that hears nothing from a leader for this long (plus a
    /// random jitter below it) starts an election; a candidate that has not
    /// won within that time retries; a leader that has heard from no
    /// quorum for this long steps down.
    pub election_timeout: Time,
    /// How often a leader sends heartbeats (commit index, lease renewal,
    /// retransmissions) and a candidate resends its prepare.
    pub heartbeat_interval: Time,
    /// How long an acceptor promises, on its own clock, not to promise any
    /// other ballot after granting a lease. 0 disables leases.
    pub lease_duration: Time,
    /// The largest rate error of any member's clock, in parts per million.
    /// The leader counts its lease as
    /// `lease_duration * (1e6 - ppm) / (1e6 + ppm)` from the moment it asked.
    pub max_clock_drift_ppm: u32,
    /// At most this many slots in flight (proposed, not yet chosen).
    pub window: usize,
    /// Tell followers at once when the commit index moves (one message per
    /// peer per commit). Off, they learn it with the next accept or
    /// heartbeat, as in Raft: fewer messages, followers lag by up to a
    /// heartbeat interval.
    pub eager_commit: bool,
    /// At most this many values wait for a slot; [`crate::Node::propose`]
    /// refuses more.
    pub max_pending: usize,
    /// At most this many entries per catch-up reply (and chosen entries per
    /// promise).
    pub catchup_batch: usize,
    /// Ask the shell for a snapshot when this many slots were applied since
    /// the last one (0: never ask).
    pub snapshot_interval: u64,
    /// Entries kept behind a snapshot, so slightly lagging members catch up
    /// from the log instead of receiving the whole snapshot.
    pub retain_entries: u64,
    /// Seed of the election-timeout jitter (the core draws no other
    /// randomness).
    pub seed: u64,
    /// The last slot the shell's state machine has applied (from its own
    /// durable state); committed values after it are delivered again.
    pub applied: Slot,
}

impl Config {
    /// A configuration with defaults suited to monitors counting in
    /// milliseconds: elections after 1000 (+ jitter below 1000), heartbeats
    /// every 100, leases of 500 with a 5% drift allowance, 32 slots in
    /// flight, a snapshot asked for every 10000 slots.
    pub fn new(id: NodeId, members: Vec<NodeId>) -> Self {
        Config {
            id,
            members,
            election_timeout: 1000,
            heartbeat_interval: 100,
            lease_duration: 500,
            max_clock_drift_ppm: 50_000,
            window: 32,
            eager_commit: true,
            max_pending: 4096,
            catchup_batch: 256,
            snapshot_interval: 10_000,
            retain_entries: 500,
            seed: id,
            applied: 0,
        }
    }

    /// How many members make a majority.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Whether `id` is a member.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.members.contains(&id)
    }

    /// Whether leases are enabled.
    pub fn leases_enabled(&self) -> bool {
        self.lease_duration > 0
    }

    /// The part of a lease the leader may count on after allowing for clock
    /// drift: `lease_duration * (1e6 - ppm) / (1e6 + ppm)`, rounded down.
    pub fn effective_lease(&self) -> Time {
        let ppm = u128::from(self.max_clock_drift_ppm.min(999_999));
        let l = u128::from(self.lease_duration);
        let eff = l * (1_000_000 - ppm) / (1_000_000 + ppm);
        Time::try_from(eff).unwrap_or(Time::MAX)
    }

    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].contains(m) {
                return Err(ConfigError::DuplicateMember(*m));
            }
        }
        if !self.is_member(self.id) {
            return Err(ConfigError::NotAMember(self.id));
        }
        if self.heartbeat_interval == 0 {
            return Err(ConfigError::Zero("heartbeat_interval"));
        }
        if self.window == 0 {
            return Err(ConfigError::Zero("window"));
        }
        if self.catchup_batch == 0 {
            return Err(ConfigError::Zero("catchup_batch"));
        }
        if self.heartbeat_interval >= self.election_timeout {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat: self.heartbeat_interval,
                election: self.election_timeout,
            });
        }
        if self.max_clock_drift_ppm >= 1_000_000 {
            return Err(ConfigError::DriftTooLarge(self.max_clock_drift_ppm));
        }
        if self.leases_enabled() && self.effective_lease() <= self.heartbeat_interval {
            return Err(ConfigError::LeaseTooShort {
                effective: self.effective_lease(),
                heartbeat: self.heartbeat_interval,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = Config::new(1, vec![1, 2, 3]);
        c.validate().unwrap();
        assert_eq!(c.quorum(), 2);
        assert_eq!(Config::new(1, vec![1, 2, 3, 4, 5]).quorum(), 3);
        assert_eq!(Config::new(1, vec![1, 2, 3, 4]).quorum(), 3);
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut c = Config::new(4, vec![1, 2, 3]);
        assert_eq!(c.validate(), Err(ConfigError::NotAMember(4)));
        c.members = vec![];
        assert_eq!(c.validate(), Err(ConfigError::NoMembers));
        c.members = vec![4, 4];
        assert_eq!(c.validate(), Err(ConfigError::DuplicateMember(4)));
        c.members = vec![4];
        c.heartbeat_interval = 2000;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::HeartbeatTooSlow { .. })
        ));
        c.heartbeat_interval = 100;
        c.lease_duration = 100;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::LeaseTooShort { .. })
        ));
        c.lease_duration = 0;
        c.validate().unwrap();
        c.max_clock_drift_ppm = 1_000_000;
        assert_eq!(c.validate(), Err(ConfigError::DriftTooLarge(1_000_000)));
    }

    #[test]
    fn effective_lease_allows_for_drift() {
        let mut c = Config::new(1, vec![1]);
        c.lease_duration = 1000;
        c.max_clock_drift_ppm = 0;
        assert_eq!(c.effective_lease(), 1000);
        c.max_clock_drift_ppm = 50_000; // 5%: 1000 * 0.95 / 1.05
        assert_eq!(c.effective_lease(), 904);
    }
}
