//! The monitors' typed command API: what the `shoal` CLI, the OSDs and the
//! client library ask, and what they get back.
//!
//! Every command is sent as a [`MonRequest`] in a [`crate::msg::MON_COMMAND`]
//! frame to any monitor; peons forward writes to the leader. The request id
//! `(client_id, tid)` makes retries safe: a write the monitors already
//! applied is answered with its first result, not applied again.

use crate::report::{HealthReport, MonStatReport, OsdStats, StatusReport};
use crate::wire::wire;

wire! {
    /// One command with its request id.
    pub struct MonRequest {
        /// A random id the client picks once per process (its instance).
        pub client_id: u64,
        /// The client's request number, unique per `client_id`; a retry
        /// reuses it.
        pub tid: u64,
        /// What to do.
        pub command: MonCommand,
    }

    /// `key=value` pair of a CRUSH location (`host=h1`) or a setting.
    pub struct KeyValue {
        /// The key (a CRUSH type name such as `host`, or a setting name).
        pub key: String,
        /// The value.
        pub value: String,
    }

    /// An upmap exception: PG member `from` is replaced by `to`.
    pub struct UpmapPair {
        /// The OSD CRUSH chose.
        pub from: i32,
        /// The OSD to use instead.
        pub to: i32,
    }

    /// The commands. Reads need `mon r` (or the OSD profile), writes `mon
    /// rw`; the OSD profile may also create, boot and beacon its own id and
    /// report failures (`shoal_mon::commands::authorize` decides).
    pub enum MonCommand {
        /// Cluster status: health, monitors, OSDs, pools ([`CommandOutput::Status`]).
        Status,
        /// Every PG with its state, counts, up and acting sets, from the
        /// heads' reports ([`CommandOutput::PgLs`]).
        PgLs,
        /// Every OSD's usage and PG copies ([`CommandOutput::OsdDf`]).
        OsdDf,
        /// Monitor map and quorum ([`CommandOutput::MonStat`]).
        MonStat,
        /// Health with reasons ([`CommandOutput::Health`]).
        Health,
        /// The OSDMap at `epoch` (0: the latest), encoded with
        /// `shoal_map::OsdMap::encode` ([`CommandOutput::OsdMap`]).
        GetOsdMap {
            /// The epoch wanted, 0 for the latest.
            epoch: u32,
        },
        /// The MonMap, encoded with `shoal_map::MonMap::encode`.
        GetMonMap,
        /// The pools ([`CommandOutput::Pools`]).
        PoolLs,
        /// The identities and their caps ([`CommandOutput::Auth`]).
        AuthLs,
        /// A config key's value ([`CommandOutput::Value`]).
        ConfigKeyGet {
            /// The key.
            key: String,
        },
        /// Every config key ([`CommandOutput::Keys`]).
        ConfigKeyLs,

        /// Allocates an OSD id (`id` < 0: the lowest free one) or returns
        /// `id` if it already exists ([`CommandOutput::OsdId`]).
        OsdCreate {
            /// The id wanted, or -1.
            id: i32,
        },
        /// An OSD announces it is running at `addr` under `location`
        /// (placed there in CRUSH with `crush_weight` if it is new there):
        /// it is marked up (and in, when it was new).
        OsdBoot {
            /// The OSD.
            id: i32,
            /// Its QUIC address.
            addr: String,
            /// Its CRUSH location, e.g. `root=default, host=h1`.
            location: Vec<KeyValue>,
            /// CRUSH weight (TiB by convention) if the OSD is new in CRUSH.
            crush_weight: f64,
        },
        /// The OSD is alive; `epoch` is the newest map it has.
        OsdBeacon {
            /// The OSD.
            id: i32,
            /// The newest OSDMap epoch its PG states reflect.
            epoch: u32,
            /// Its usage, IO counters and PG states (kept by the leader in
            /// memory for `status`; not part of the replicated state).
            stats: OsdStats,
        },
        /// The caller (an OSD) could not reach `target`, or (with `alive`)
        /// hears from it again and withdraws its report.
        OsdFailure {
            /// The OSD that does not answer.
            target: i32,
            /// The reporter's map epoch.
            epoch: u32,
            /// The report is withdrawn: `target` answers again (Ceph's
            /// `MOSDFailure` with `FLAG_ALIVE`).
            alive: bool,
        },
        /// Marks OSDs down (they may boot again).
        OsdDown {
            /// The OSDs.
            ids: Vec<i32>,
        },
        /// Marks OSDs out (their data moves elsewhere).
        OsdOut {
            /// The OSDs.
            ids: Vec<i32>,
        },
        /// Marks OSDs in.
        OsdIn {
            /// The OSDs.
            ids: Vec<i32>,
        },
        /// Sets an OSD's reweight in [0, 1].
        OsdReweight {
            /// The OSD.
            id: i32,
            /// The new reweight.
            weight: f64,
        },
        /// Removes OSDs that are down (from the map and CRUSH).
        OsdRm {
            /// The OSDs.
            ids: Vec<i32>,
        },
        /// Adds a CRUSH bucket of type `type_name` (not linked anywhere).
        CrushAddBucket {
            /// Bucket name.
            name: String,
            /// Bucket type, e.g. `host`, `rack`.
            type_name: String,
        },
        /// Moves a bucket or OSD under the location (the innermost
        /// existing bucket of it), e.g. `root=default, rack=r1`.
        CrushMove {
            /// Bucket or device name (`osd.3`).
            name: String,
            /// Where to.
            location: Vec<KeyValue>,
        },
        /// Sets an OSD's CRUSH weight.
        CrushReweight {
            /// Device name (`osd.3`).
            name: String,
            /// The weight.
            weight: f64,
        },
        /// Removes an OSD or an empty bucket from CRUSH.
        CrushRemove {
            /// Its name.
            name: String,
        },
        /// Creates a pool ([`CommandOutput::PoolId`]).
        PoolCreate {
            /// Pool name.
            name: String,
            /// Number of PGs (a power of two is best).
            pg_num: u32,
            /// Replicas.
            size: u32,
            /// Fewest replicas that still take writes (0: size - size/2).
            min_size: u32,
            /// CRUSH rule name (empty: the default replicated rule).
            rule: String,
        },
        /// Sets a pool property: `size`, `min_size`, `pg_num`, `pgp_num`,
        /// `crush_rule`, `piece_size`.
        PoolSet {
            /// Pool name.
            name: String,
            /// Property.
            key: String,
            /// New value.
            value: String,
        },
        /// Deletes a pool; `confirm` must repeat its name.
        PoolRm {
            /// Pool name.
            name: String,
            /// The name again.
            confirm: String,
        },
        /// Sets upmap exceptions for a PG (`1.2f`).
        PgUpmapItems {
            /// The PG.
            pg: String,
            /// Replacements.
            items: Vec<UpmapPair>,
        },
        /// Removes a PG's upmap exceptions.
        RmPgUpmapItems {
            /// The PG.
            pg: String,
        },
        /// Sets (non-empty) or clears (empty) a PG's temporary acting set.
        PgTemp {
            /// The PG.
            pg: String,
            /// The acting set.
            osds: Vec<i32>,
        },
        /// A PG's head records that its interval goes active (before it
        /// takes writes), or reads the record (`interval` 0). The record
        /// is kept only while `acting` is the PG's chain in the newest map
        /// and every member booted by `interval`; the answer is the
        /// record in force afterwards ([`CommandOutput::PgActive`]), read
        /// through Paxos so no newer record can hide from a peering head.
        PgActivated {
            /// The PG.
            pg: String,
            /// The interval (the epoch its head names it by); 0 to read.
            interval: u32,
            /// Its chain.
            acting: Vec<i32>,
        },
        /// Creates an identity with `caps` and issues its certificate
        /// ([`CommandOutput::Keyring`]: the only time the key is shown).
        AuthAdd {
            /// Identity name, e.g. `client.backup`, `osd.3`.
            name: String,
            /// Caps, e.g. `mon r`.
            caps: String,
        },
        /// Changes an identity's caps.
        AuthCaps {
            /// Identity name.
            name: String,
            /// New caps.
            caps: String,
        },
        /// Removes an identity: its certificate no longer grants anything.
        AuthRm {
            /// Identity name.
            name: String,
        },
        /// Sets a config key.
        ConfigKeySet {
            /// The key.
            key: String,
            /// The value.
            value: Vec<u8>,
        },
        /// Removes a config key.
        ConfigKeyRm {
            /// The key.
            key: String,
        },
    }

    /// A monitor's answer.
    pub struct MonReply {
        /// What happened.
        pub result: MonResult,
        /// The OSDMap epoch of the answering monitor after the command.
        pub osdmap_epoch: u32,
        /// The leader, when known (`mon.a`).
        pub leader: Option<String>,
    }

    /// Success or failure of a command.
    pub enum MonResult {
        /// It worked.
        Ok(CommandOutput),
        /// It did not; nothing changed.
        Err(CommandError),
    }

    /// A successful command's output.
    pub enum CommandOutput {
        /// A change was committed (in `epoch` for OSDMap changes).
        Done {
            /// The OSDMap epoch that holds the change (or the current one).
            epoch: u32,
        },
        /// [`MonCommand::Status`].
        Status(Box<StatusReport>),
        /// [`MonCommand::MonStat`].
        MonStat(MonStatReport),
        /// [`MonCommand::Health`].
        Health(HealthReport),
        /// An encoded `OsdMap`.
        OsdMap {
            /// Its epoch.
            epoch: u32,
            /// `OsdMap::encode` bytes.
            map: Vec<u8>,
        },
        /// An encoded `MonMap`.
        MonMap {
            /// `MonMap::encode` bytes.
            map: Vec<u8>,
        },
        /// An OSD id.
        OsdId(i32),
        /// A pool id.
        PoolId(i64),
        /// The pools.
        Pools(Vec<PoolSummary>),
        /// [`MonCommand::PgLs`], by PG id.
        PgLs(Vec<crate::report::PgLsEntry>),
        /// [`MonCommand::OsdDf`], by OSD id.
        OsdDf(Vec<crate::report::OsdDfEntry>),
        /// The identities.
        Auth(Vec<AuthEntry>),
        /// A newly issued identity.
        Keyring(Keyring),
        /// A config key's value (none if unset).
        Value(Option<Vec<u8>>),
        /// Config key names.
        Keys(Vec<String>),
        /// [`MonCommand::PgActivated`]: the newest interval of the PG
        /// recorded as active (epoch 0 and no members: none).
        PgActive {
            /// That interval's epoch.
            epoch: u32,
            /// Its chain.
            acting: Vec<i32>,
        },
    }

    /// One pool in `pool ls`.
    pub struct PoolSummary {
        /// Id.
        pub id: i64,
        /// Name.
        pub name: String,
        /// Replicas.
        pub size: u32,
        /// Fewest replicas taking writes.
        pub min_size: u32,
        /// PGs.
        pub pg_num: u32,
        /// PGs used for placement.
        pub pgp_num: u32,
        /// The `pgp_num` the monitors step toward (equal to `pgp_num`
        /// when no change is under way).
        pub pgp_num_target: u32,
        /// CRUSH rule id.
        pub crush_rule: i32,
        /// Piece size of striped objects.
        pub piece_size: u64,
    }

    /// One identity in `auth ls`.
    pub struct AuthEntry {
        /// Identity name.
        pub name: String,
        /// Its caps in text form.
        pub caps: String,
    }

    /// A newly issued identity: certificate, private key and the cluster CA
    /// certificate, all PEM.
    pub struct Keyring {
        /// Identity name.
        pub name: String,
        /// Caps granted.
        pub caps: String,
        /// Certificate (PEM).
        pub cert_pem: String,
        /// Private key (PEM); keep it 0600.
        pub key_pem: String,
        /// Cluster CA certificate (PEM).
        pub ca_pem: String,
    }

    /// Why a command failed.
    pub struct CommandError {
        /// The kind, for programs.
        pub code: ErrorCode,
        /// The explanation, for people.
        pub message: String,
    }
}

/// Kinds of [`CommandError`].
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub enum ErrorCode {
    /// Bad arguments.
    Invalid,
    /// No such thing.
    NotFound,
    /// It already exists.
    Exists,
    /// The caller's caps do not allow it.
    PermissionDenied,
    /// This monitor is not in a quorum; try another.
    NoQuorum,
    /// Not settled yet (e.g. an election is running); try again.
    TryAgain,
    /// The change conflicts with the cluster's state (e.g. removing an up OSD).
    Busy,
    /// A monitor-side failure.
    Internal,
}

impl ErrorCode {
    /// Whether a client should retry (possibly at another monitor).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::NoQuorum | ErrorCode::TryAgain)
    }
}

impl CommandError {
    /// An error of kind `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}

impl From<Result<CommandOutput, CommandError>> for MonResult {
    fn from(r: Result<CommandOutput, CommandError>) -> Self {
        match r {
            Ok(o) => MonResult::Ok(o),
            Err(e) => MonResult::Err(e),
        }
    }
}

impl MonCommand {
    /// Whether the command changes monitor state (goes through Paxos at the
    /// leader). Beacons and failure reports are leader-only soft state but
    /// also go to the leader.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            MonCommand::Status
                | MonCommand::PgLs
                | MonCommand::OsdDf
                | MonCommand::MonStat
                | MonCommand::Health
                | MonCommand::GetOsdMap { .. }
                | MonCommand::GetMonMap
                | MonCommand::PoolLs
                | MonCommand::AuthLs
                | MonCommand::ConfigKeyGet { .. }
                | MonCommand::ConfigKeyLs
        )
    }

    /// A short name for logs (`osd_boot`).
    pub fn name(&self) -> &'static str {
        match self {
            MonCommand::Status => "status",
            MonCommand::PgLs => "pg_ls",
            MonCommand::OsdDf => "osd_df",
            MonCommand::MonStat => "mon_stat",
            MonCommand::Health => "health",
            MonCommand::GetOsdMap { .. } => "get_osdmap",
            MonCommand::GetMonMap => "get_monmap",
            MonCommand::PoolLs => "pool_ls",
            MonCommand::AuthLs => "auth_ls",
            MonCommand::ConfigKeyGet { .. } => "config_key_get",
            MonCommand::ConfigKeyLs => "config_key_ls",
            MonCommand::OsdCreate { .. } => "osd_create",
            MonCommand::OsdBoot { .. } => "osd_boot",
            MonCommand::OsdBeacon { .. } => "osd_beacon",
            MonCommand::OsdFailure { .. } => "osd_failure",
            MonCommand::OsdDown { .. } => "osd_down",
            MonCommand::OsdOut { .. } => "osd_out",
            MonCommand::OsdIn { .. } => "osd_in",
            MonCommand::OsdReweight { .. } => "osd_reweight",
            MonCommand::OsdRm { .. } => "osd_rm",
            MonCommand::CrushAddBucket { .. } => "crush_add_bucket",
            MonCommand::CrushMove { .. } => "crush_move",
            MonCommand::CrushReweight { .. } => "crush_reweight",
            MonCommand::CrushRemove { .. } => "crush_remove",
            MonCommand::PoolCreate { .. } => "pool_create",
            MonCommand::PoolSet { .. } => "pool_set",
            MonCommand::PoolRm { .. } => "pool_rm",
            MonCommand::PgUpmapItems { .. } => "pg_upmap_items",
            MonCommand::RmPgUpmapItems { .. } => "rm_pg_upmap_items",
            MonCommand::PgTemp { .. } => "pg_temp",
            MonCommand::PgActivated { .. } => "pg_activated",
            MonCommand::AuthAdd { .. } => "auth_add",
            MonCommand::AuthCaps { .. } => "auth_caps",
            MonCommand::AuthRm { .. } => "auth_rm",
            MonCommand::ConfigKeySet { .. } => "config_key_set",
            MonCommand::ConfigKeyRm { .. } => "config_key_rm",
        }
    }
}
