//! Command-line syntax.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Administer a Shoal cluster.
#[derive(Parser, Debug)]
#[command(name = "shoal", version, about)]
pub struct Args {
    /// Configuration file (default: $SHOAL_CONF, then ./shoal.toml).
    #[arg(long, global = true)]
    pub conf: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Plain)]
    pub format: Format,
    /// Identity to use instead of `[client] name`.
    #[arg(long = "name", global = true, id = "identity", value_name = "IDENTITY")]
    pub identity: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Plain,
    /// For programs.
    Json,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Cluster status: health, monitors, OSDs, pools.
    Status,
    /// Health with reasons.
    Health,
    /// Monitors.
    #[command(subcommand)]
    Mon(MonCmd),
    /// OSDs and CRUSH.
    #[command(subcommand)]
    Osd(OsdCmd),
    /// Pools.
    #[command(subcommand)]
    Pool(PoolCmd),
    /// Placement groups.
    #[command(subcommand)]
    Pg(PgCmd),
    /// Even out PGs over OSDs with upmap exceptions.
    #[command(subcommand)]
    Balancer(BalancerCmd),
    /// Identities and capabilities.
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Cluster-wide configuration keys.
    #[command(subcommand, name = "config-key")]
    ConfigKey(ConfigKeyCmd),
    /// Store an object from a file (`-`: standard input).
    Put {
        /// Pool name.
        pool: String,
        /// Object name.
        name: String,
        /// File to read, or `-`.
        file: PathBuf,
    },
    /// Fetch an object into a file (`-`: standard output).
    Get {
        /// Pool name.
        pool: String,
        /// Object name.
        name: String,
        /// File to write, or `-`.
        file: PathBuf,
    },
    /// Remove objects.
    Rm {
        /// Pool name.
        pool: String,
        /// Object names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List a pool's objects.
    Ls {
        /// Pool name.
        pool: String,
    },
    /// An object's size, version and pieces.
    Stat {
        /// Pool name.
        pool: String,
        /// Object name.
        name: String,
    },
    /// A local development cluster on loopback.
    #[command(subcommand)]
    Dev(DevCmd),
    /// The S3 gateway's users and keys (kept in the cluster).
    #[command(subcommand)]
    S3(S3Cmd),
    /// Load generator like `rados bench`: per-second lines, then
    /// bandwidth, IOPS and latency figures.
    Bench {
        /// Pool name.
        pool: String,
        /// How long to run.
        seconds: u64,
        /// `write` new objects, or read those of the last `write
        /// --no-cleanup` in order (`seq`) or at random (`rand`).
        #[arg(value_enum)]
        mode: crate::bench::Mode,
        /// Object size for writes: bytes, or with K, M, G.
        #[arg(short = 'b', long = "block-size", default_value = "4M")]
        block: String,
        /// Operations in flight.
        #[arg(short = 't', long = "concurrent-ios", default_value_t = 16)]
        concurrency: usize,
        /// Keep the written objects (for later seq/rand runs).
        #[arg(long)]
        no_cleanup: bool,
        /// Writes: stop after this many objects (0: no limit). With 1 and
        /// `--no-cleanup`, a later `rand` run reads one hot object.
        #[arg(long, default_value_t = 0)]
        max_objects: u64,
    },
}

/// `shoal s3 ...`
#[derive(Subcommand, Debug)]
pub enum S3Cmd {
    /// S3 users.
    #[command(subcommand)]
    User(S3UserCmd),
    /// S3 access keys.
    #[command(subcommand)]
    Key(S3KeyCmd),
}

/// `shoal s3 user ...`
#[derive(Subcommand, Debug)]
pub enum S3UserCmd {
    /// Create a user with one key pair; the secret is printed only now.
    Create {
        /// User id (letters, digits, '_', '.', '@', '-').
        uid: String,
        /// Display name (default: the id).
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Users and their access key ids (never secrets).
    Ls,
    /// One user.
    Info {
        /// User id.
        uid: String,
    },
    /// Remove a user and its keys (its buckets stay).
    Rm {
        /// User id.
        uid: String,
    },
}

/// `shoal s3 key ...`
#[derive(Subcommand, Debug)]
pub enum S3KeyCmd {
    /// Add a key pair to a user; the secret is printed only now.
    Add {
        /// User id.
        uid: String,
    },
    /// Remove an access key.
    Rm {
        /// User id.
        uid: String,
        /// Access key id.
        access_key: String,
    },
}

/// `shoal dev ...`
#[derive(Subcommand, Debug)]
pub enum DevCmd {
    /// Create and start a cluster (monitors, OSDs, pool `data`), wait
    /// until every PG is active, and leave it running.
    Up {
        /// Directory for its configuration, keys, data and logs.
        #[arg(long, default_value = "shoal-dev")]
        dir: PathBuf,
        /// Monitors.
        #[arg(long, default_value_t = 3)]
        mons: usize,
        /// OSDs (each on a CRUSH host of its own).
        #[arg(long, default_value_t = 4)]
        osds: usize,
        /// Store size of each OSD (allocated on disk): bytes, or with
        /// K, M, G, T.
        #[arg(long, default_value = "4G")]
        osd_size: String,
        /// Packet protection between all daemons and clients: `secure`
        /// (encrypted) or `integrity` (crc32c only, like Ceph's default
        /// `crc` messenger mode). Written to `[global] wire_mode`.
        #[arg(long, default_value = shoal_conf::WIRE_MODES[0],
              value_parser = clap::builder::PossibleValuesParser::new(shoal_conf::WIRE_MODES))]
        wire_mode: String,
        /// Start no S3 gateway.
        #[arg(long)]
        no_s3: bool,
    },
    /// Stop the processes `dev up` started (by their recorded PIDs).
    Down {
        /// The cluster's directory.
        #[arg(long, default_value = "shoal-dev")]
        dir: PathBuf,
        /// Also remove the directory and its data.
        #[arg(long)]
        purge: bool,
    },
}

/// `shoal mon ...`
#[derive(Subcommand, Debug)]
pub enum MonCmd {
    /// MonMap epoch, leader, quorum, monitors.
    Stat,
}

/// `shoal osd ...`
#[derive(Subcommand, Debug)]
pub enum OsdCmd {
    /// The CRUSH hierarchy with OSD states.
    Tree,
    /// Write the current OSDMap (Shoal's binary form, as `shoalmap` reads
    /// it) to a file.
    Getmap {
        /// The file.
        #[arg(short, long)]
        output: std::path::PathBuf,
    },
    /// Every OSD's store usage and the PG copies it holds.
    Df,
    /// Allocate an OSD id.
    Create {
        /// The id wanted (default: the lowest free).
        id: Option<i32>,
    },
    /// Mark OSDs out (their data moves elsewhere).
    Out {
        /// OSD ids.
        #[arg(required = true)]
        ids: Vec<i32>,
    },
    /// Mark OSDs in.
    In {
        /// OSD ids.
        #[arg(required = true)]
        ids: Vec<i32>,
    },
    /// Mark OSDs down.
    Down {
        /// OSD ids.
        #[arg(required = true)]
        ids: Vec<i32>,
    },
    /// Remove down OSDs from the map and CRUSH.
    Rm {
        /// OSD ids.
        #[arg(required = true)]
        ids: Vec<i32>,
    },
    /// Set an OSD's reweight (0..1).
    Reweight {
        /// OSD id.
        id: i32,
        /// Reweight.
        weight: f64,
    },
    /// CRUSH edits.
    #[command(subcommand)]
    Crush(CrushCmd),
    /// Replace OSDs in a PG's mapping: `pg-upmap-items 1.2f FROM TO [FROM TO ...]`.
    PgUpmapItems {
        /// The PG.
        pg: String,
        /// FROM TO pairs.
        #[arg(required = true)]
        pairs: Vec<i32>,
    },
    /// Remove a PG's upmap items.
    RmPgUpmapItems {
        /// The PG.
        pg: String,
    },
}

/// `shoal osd crush ...`
#[derive(Subcommand, Debug)]
pub enum CrushCmd {
    /// Add an unlinked bucket.
    AddBucket {
        /// Bucket name.
        name: String,
        /// Bucket type (host, rack, ...).
        type_name: String,
    },
    /// Move a bucket or OSD: `move rack1 root=default`.
    Move {
        /// Bucket or device name.
        name: String,
        /// TYPE=NAME pairs.
        #[arg(required = true)]
        location: Vec<String>,
    },
    /// Set an OSD's CRUSH weight.
    Reweight {
        /// Device name (`osd.3`).
        name: String,
        /// Weight.
        weight: f64,
    },
    /// Remove a device or an empty bucket.
    Remove {
        /// Name.
        name: String,
    },
}

/// `shoal pool ...`
#[derive(Subcommand, Debug)]
pub enum PoolCmd {
    /// Create a replicated pool.
    Create {
        /// Pool name.
        name: String,
        /// Number of PGs.
        #[arg(long, default_value_t = 32)]
        pg_num: u32,
        /// Replicas.
        #[arg(long, default_value_t = 3)]
        size: u32,
        /// Fewest replicas that still accept writes (default size - size/2).
        #[arg(long)]
        min_size: Option<u32>,
        /// CRUSH rule name (default: the replicated rule).
        #[arg(long)]
        rule: Option<String>,
    },
    /// List pools.
    Ls,
    /// Set a property (size, min_size, pg_num, pgp_num, crush_rule, piece_size).
    Set {
        /// Pool name.
        name: String,
        /// Property.
        key: String,
        /// Value.
        value: String,
    },
    /// Delete a pool and its data.
    Rm {
        /// Pool name.
        name: String,
        /// The name again, to confirm.
        #[arg(long = "yes-i-really-mean-it")]
        confirm: Option<String>,
    },
}

/// `shoal pg ...`
#[derive(Subcommand, Debug)]
pub enum PgCmd {
    /// List PGs with their state, object counts, up and acting sets.
    Ls {
        /// Only PGs in this state (`degraded`, `active+clean`, ...; all
        /// of several must hold).
        #[arg(long = "state")]
        states: Vec<String>,
    },
    /// What a PG's head (or `--osd`) knows of it: role, state, chain, log
    /// bounds, missing objects, backfill targets (JSON).
    Query {
        /// The PG (`1.2f`).
        pg: String,
        /// Ask this OSD instead of the head.
        #[arg(long)]
        osd: Option<i32>,
    },
    /// Compare every copy of every object of a PG (versions, sizes,
    /// xattrs, omap) now; report inconsistencies (JSON).
    Scrub {
        /// The PG (`1.2f`).
        pg: String,
    },
    /// Like scrub, also reading and checksumming every copy's data.
    DeepScrub {
        /// The PG (`1.2f`).
        pg: String,
    },
    /// Deep scrub, and fix copies that differ from the authoritative one.
    Repair {
        /// The PG (`1.2f`).
        pg: String,
    },
    /// Set (or with no OSDs clear) a PG's temporary acting set.
    Temp {
        /// The PG.
        pg: String,
        /// OSD ids.
        osds: Vec<i32>,
    },
}

/// `shoal balancer ...`
#[derive(Subcommand, Debug)]
pub enum BalancerCmd {
    /// Compute upmap exceptions that bring every OSD's PG count per pool
    /// within `--max-deviation` of its target (the `shoalmap balance`
    /// algorithm on the live map) and apply them; only PGs that must move
    /// move (backfill does the rest).
    Run {
        /// Only these pools (default: all).
        #[arg(long)]
        pool: Vec<String>,
        /// Largest accepted |PGs - target| per OSD and pool.
        #[arg(long, default_value_t = 1.0)]
        max_deviation: f64,
        /// Stop after this many moves.
        #[arg(long, default_value_t = 1000)]
        max_moves: usize,
        /// Show the plan without applying it.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `shoal auth ...`
#[derive(Subcommand, Debug)]
pub enum AuthCmd {
    /// Create an identity; writes NAME.crt and NAME.key (0600).
    Add {
        /// Identity name (`client.backup`).
        name: String,
        /// Caps (`mon r`, `mon rw, osd rw`).
        caps: String,
        /// Where to write the files (default: the keyring directory).
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// List identities.
    Ls,
    /// Change an identity's caps.
    Caps {
        /// Identity name.
        name: String,
        /// New caps.
        caps: String,
    },
    /// Remove an identity.
    Rm {
        /// Identity name.
        name: String,
    },
}

/// `shoal config-key ...`
#[derive(Subcommand, Debug)]
pub enum ConfigKeyCmd {
    /// Set a key.
    Set {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Print a key's value.
    Get {
        /// Key.
        key: String,
    },
    /// Remove a key.
    Rm {
        /// Key.
        key: String,
    },
    /// List keys.
    Ls,
}
