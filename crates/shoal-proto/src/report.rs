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
        /// PGs by state (`active`, `peering`, `active+undersized`,
        /// `unknown` when the PG's head has not reported it), most first.
        pub pgs_by_state: Vec<PgStateCount>,
        /// Objects stored (each counted once, by the PG heads' reports).
        pub num_objects: u64,
        /// Bytes used on the OSDs' stores (all replicas).
        pub raw_used: u64,
        /// Capacity of the OSDs' stores.
        pub raw_total: u64,
        /// Client IO over the last beacon intervals.
        pub io: IoRates,
        /// Object copies PG members still lack (degraded objects).
        pub degraded_objects: u64,
        /// Recovery copies per second over the last beacon intervals.
        pub recovery_rate: RecoveryCounters,
        /// Recovery copies made since each OSD last started, summed.
        pub recovered: RecoveryCounters,
    }

    /// PGs in one state, for [`StatusReport`].
    pub struct PgStateCount {
        /// State, e.g. `active` or `active+undersized`.
        pub state: String,
        /// Number of PGs.
        pub count: u32,
    }

    /// Client operations per second, for [`StatusReport`].
    pub struct IoRates {
        /// Read operations per second.
        pub read_ops: u64,
        /// Bytes read per second.
        pub read_bytes: u64,
        /// Write operations per second.
        pub write_ops: u64,
        /// Bytes written per second.
        pub write_bytes: u64,
    }

    /// What an OSD reports with each beacon: its store's usage, its
    /// client IO counters, and the PGs it heads.
    pub struct OsdStats {
        /// Store capacity in bytes.
        pub store_total: u64,
        /// Store bytes in use.
        pub store_used: u64,
        /// Client operations served since the OSD started.
        pub io: IoCounters,
        /// The PGs this OSD is head of, and their state.
        pub pgs: Vec<PgStat>,
        /// Recovery work done since the OSD started.
        pub recovery: RecoveryCounters,
        /// PG copies this OSD holds (chain member, backfill target or stray).
        pub pg_copies: u32,
    }

    /// Cumulative recovery counters of one OSD: object copies it pushed
    /// to other members or pulled to itself (log-based recovery and
    /// backfill alike).
    #[derive(Default)]
    pub struct RecoveryCounters {
        /// Objects copied.
        pub objects: u64,
        /// Bytes of object data copied.
        pub bytes: u64,
    }

    /// Cumulative client IO counters of one OSD (reads served by any
    /// chain member, writes counted once, at the head).
    pub struct IoCounters {
        /// Read operations.
        pub read_ops: u64,
        /// Bytes read.
        pub read_bytes: u64,
        /// Write operations.
        pub write_ops: u64,
        /// Bytes written.
        pub write_bytes: u64,
    }

    /// One PG as its head sees it.
    pub struct PgStat {
        /// Pool id.
        pub pool: i64,
        /// PG number within the pool.
        pub seed: u32,
        /// Map epoch the PG's current interval began in.
        pub interval_epoch: u32,
        /// State (`active`, `peering`, `active+undersized`, ...).
        pub state: String,
        /// Objects in the PG.
        pub objects: u64,
        /// Object copies the chain's members still lack (Ceph's degraded
        /// objects).
        pub missing: u64,
    }

    /// One PG in `shoal pg ls`.
    pub struct PgLsEntry {
        /// `pool.seed` in hex (`1.2f`).
        pub pgid: String,
        /// State as its head reported it (`stale+...` when the head's
        /// reports stopped, `unknown` before the first, `down` with no
        /// member up).
        pub state: String,
        /// Objects.
        pub objects: u64,
        /// Object copies the chain's members still lack.
        pub missing: u64,
        /// The up set (CRUSH's choice).
        pub up: Vec<i32>,
        /// The acting chain, head first.
        pub acting: Vec<i32>,
        /// Map epoch the head's interval began in (0: no report).
        pub interval_epoch: u32,
    }

    /// One OSD in `shoal osd df`.
    pub struct OsdDfEntry {
        /// The OSD id.
        pub id: i32,
        /// Up in the map.
        pub up: bool,
        /// In the map (holds data).
        pub in_cluster: bool,
        /// Store capacity in bytes (its last report).
        pub total: u64,
        /// Store bytes in use.
        pub used: u64,
        /// PG copies it holds.
        pub pgs: u32,
        /// Whether it has reported since the leader started.
        pub reported: bool,
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

impl OsdStats {
    /// A report with nothing in it (an OSD that holds no PGs yet).
    pub fn empty() -> Self {
        OsdStats {
            store_total: 0,
            store_used: 0,
            io: IoCounters {
                read_ops: 0,
                read_bytes: 0,
                write_ops: 0,
                write_bytes: 0,
            },
            pgs: Vec::new(),
            recovery: RecoveryCounters::default(),
            pg_copies: 0,
        }
    }
}
