//! Reports the monitors compute: status, monitor quorum, health.

use crate::wire::wire;

wire! {
    /// `shoal status`.
    pub struct StatusReport {
        /// Cluster id.
        pub fsid: String,
        /// Health with reasons.
        pub health: HealthReport,
        /// Monitors and quorum.
        pub mon: MonStatReport,
        /// OSDMap epoch.
        pub osdmap_epoch: u32,
        /// OSDs in the map.
        pub num_osds: u32,
        /// OSDs up.
        pub num_up_osds: u32,
        /// OSDs in.
        pub num_in_osds: u32,
        /// Pools.
        pub num_pools: u32,
        /// PGs over all pools.
        pub num_pgs: u32,
    }

    /// `shoal mon stat`: the MonMap and who is in quorum.
    pub struct MonStatReport {
        /// MonMap epoch.
        pub epoch: u32,
        /// The leader (`a`), if there is a quorum.
        pub leader: Option<String>,
        /// Names of the monitors in quorum, by rank.
        pub quorum: Vec<String>,
        /// Every monitor.
        pub mons: Vec<MonEntry>,
        /// The Paxos commit index of the answering monitor.
        pub committed: u64,
    }

    /// One monitor in [`MonStatReport`].
    pub struct MonEntry {
        /// Rank (position in the MonMap).
        pub rank: u32,
        /// Name (`a`).
        pub name: String,
        /// Address.
        pub addr: String,
        /// Whether it is in quorum.
        pub in_quorum: bool,
    }

    /// Health: overall status and the checks that are not OK.
    pub struct HealthReport {
        /// Worst status of the checks.
        pub status: HealthStatus,
        /// Failing checks.
        pub checks: Vec<HealthCheck>,
    }

    /// One failing health check.
    pub struct HealthCheck {
        /// Code, e.g. `MON_DOWN`, `OSD_DOWN`.
        pub code: String,
        /// Severity.
        pub severity: HealthStatus,
        /// One line for people.
        pub summary: String,
    }
}

/// Overall health, worst first when compared.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub enum HealthStatus {
    /// All is well.
    #[serde(rename = "HEALTH_OK")]
    Ok,
    /// Degraded but working.
    #[serde(rename = "HEALTH_WARN")]
    Warn,
    /// Not working (e.g. no quorum).
    #[serde(rename = "HEALTH_ERR")]
    Err,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Ok => "HEALTH_OK",
            HealthStatus::Warn => "HEALTH_WARN",
            HealthStatus::Err => "HEALTH_ERR",
        })
    }
}

impl HealthReport {
    /// A report from its failing checks (status = the worst of them).
    pub fn from_checks(checks: Vec<HealthCheck>) -> Self {
        let status = checks
            .iter()
            .map(|c| c.severity)
            .max()
            .unwrap_or(HealthStatus::Ok);
        HealthReport { status, checks }
    }
}
