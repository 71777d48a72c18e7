//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Offline inspection of CRUSH maps and OSDMaps.
#[derive(Parser, Debug)]
#[command(name = "shoalmap", version, about)]
pub struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Plain)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text (crushtool-compatible where applicable).
    Plain,
    /// JSON on stdout.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile, decompile and test CRUSH maps (like crushtool).
    #[command(subcommand)]
    Crush(CrushCommand),
    /// Build OSDMaps offline.
    #[command(subcommand)]
    Osdmap(OsdmapCommand),
    /// The CRUSH hierarchy with OSD state (like `ceph osd tree`).
    Tree {
        /// The OSDMap file.
        #[arg(long, short = 'm')]
        osdmap: PathBuf,
    },
    /// Where an object lives: PG, up and acting sets (like `ceph osd map`).
    MapObject {
        /// The OSDMap file.
        #[arg(long, short = 'm')]
        osdmap: PathBuf,
        /// Pool name or id.
        #[arg(long)]
        pool: String,
        /// Object name.
        name: String,
    },
    /// PGs per OSD against weight-proportional targets.
    Pgs(PgsArgs),
    /// Apply what-if edits and report the data movement they cause.
    Simulate(SimulateArgs),
    /// Compute pg_upmap_items that even out PGs per OSD.
    Balance(BalanceArgs),
}

#[derive(Subcommand, Debug)]
pub enum OsdmapCommand {
    /// Build an OSDMap from a CRUSH map: one up+in OSD per device, plus pools.
    Create(OsdmapCreateArgs),
}

/// Arguments of `shoalmap osdmap create`.
#[derive(Args, Debug)]
pub struct OsdmapCreateArgs {
    /// The CRUSH map (text or binary).
    #[arg(long)]
    pub crush: PathBuf,
    /// A pool: `NAME:PG_NUM:SIZE[:RULE]` (rule by id or name, default 0).
    /// Pools get ids 1, 2, ... in order.
    #[arg(long)]
    pub pool: Vec<String>,
    /// Cluster fsid (UUID form); all zeros when omitted.
    #[arg(long)]
    pub fsid: Option<String>,
    /// Where to write the OSDMap.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Arguments of `shoalmap pgs`.
#[derive(Args, Debug)]
pub struct PgsArgs {
    /// The OSDMap file.
    #[arg(long, short = 'm')]
    pub osdmap: PathBuf,
    /// Only this pool (name or id).
    #[arg(long)]
    pub pool: Option<String>,
    /// Also draw PGs per OSD against the target as an SVG chart.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// Arguments of `shoalmap simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The OSDMap file.
    #[arg(long, short = 'm')]
    pub osdmap: PathBuf,
    /// Add a host: `NAME:COUNT:WEIGHT[:PARENT]` (COUNT new OSDs of CRUSH
    /// weight WEIGHT each, under PARENT or the map's only root).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Remove an OSD from the map and the CRUSH hierarchy.
    #[arg(long)]
    pub remove: Vec<i32>,
    /// Mark an OSD out (reweight 0).
    #[arg(long)]
    pub out: Vec<i32>,
    /// Set an OSD's reweight: `OSD:W` with W in 0..1.
    #[arg(long)]
    pub reweight: Vec<String>,
    /// Set an OSD's CRUSH weight: `OSD:W`.
    #[arg(long)]
    pub crush_weight: Vec<String>,
    /// Change a pool's pg_num (and pgp_num): `POOL:PG_NUM`.
    #[arg(long)]
    pub pg_num: Vec<String>,
    /// Change a pool's pgp_num only (placement of its PGs): `POOL:PGP_NUM`.
    #[arg(long)]
    pub pgp_num: Vec<String>,
    /// Bytes stored (one copy, spread evenly over the map's PGs): the
    /// moved PG replicas are also given in bytes.
    #[arg(long)]
    pub stored: Option<u64>,
    /// Write the edited OSDMap here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Arguments of `shoalmap balance`.
#[derive(Args, Debug)]
pub struct BalanceArgs {
    /// The OSDMap file.
    #[arg(long, short = 'm')]
    pub osdmap: PathBuf,
    /// Only these pools (default: all).
    #[arg(long)]
    pub pool: Vec<String>,
    /// Largest accepted |PGs - target| per OSD and pool.
    #[arg(long, default_value_t = 1.0)]
    pub max_deviation: f64,
    /// Stop after this many moves.
    #[arg(long, default_value_t = 100_000)]
    pub max_moves: usize,
    /// Write the balanced OSDMap (next epoch) here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CrushCommand {
    /// Compile a text map (crushtool -d format) into Shoal's binary form.
    Compile {
        /// The text map.
        map: PathBuf,
        /// Where to write the binary map.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a map (binary or text) in Ceph's text format.
    Decompile {
        /// The map, binary or text.
        map: PathBuf,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run inputs through rules, like `crushtool --test`.
    Test(CrushTestArgs),
}

/// Arguments of `shoalmap crush test`, named as crushtool names them.
#[derive(Args, Debug)]
pub struct CrushTestArgs {
    /// The map, binary or text.
    #[arg(long, short = 'i')]
    pub map: PathBuf,
    /// Only this rule (default: every rule).
    #[arg(long)]
    pub rule: Option<i32>,
    /// Replica count (default: the rule's min_size..=max_size).
    #[arg(long)]
    pub num_rep: Option<i32>,
    /// Smallest replica count (with --max-rep).
    #[arg(long, conflicts_with = "num_rep")]
    pub min_rep: Option<i32>,
    /// Largest replica count (with --min-rep).
    #[arg(long, conflicts_with = "num_rep")]
    pub max_rep: Option<i32>,
    /// First input.
    #[arg(long)]
    pub min_x: Option<i32>,
    /// Last input.
    #[arg(long)]
    pub max_x: Option<i32>,
    /// Hash every input with this pool id first (a pool's PG -> x step).
    #[arg(long)]
    pub pool_id: Option<i64>,
    /// Override a device's reweight: `--weight OSD W` with W in 0..1.
    #[arg(long, num_args = 2, value_names = ["OSD", "W"], allow_negative_numbers = true)]
    pub weight: Vec<String>,
    /// Print every mapping: `CRUSH rule R x X [a,b,c]`.
    #[arg(long)]
    pub show_mappings: bool,
    /// Print mappings with fewer items than requested.
    #[arg(long)]
    pub show_bad_mappings: bool,
    /// Print result-size statistics.
    #[arg(long)]
    pub show_statistics: bool,
    /// Print per-device placement counts against expectations.
    #[arg(long)]
    pub show_utilization: bool,
    /// Like --show-utilization, including devices with nothing placed.
    #[arg(long)]
    pub show_utilization_all: bool,
    /// Print the histogram of tries per placement.
    #[arg(long)]
    pub show_choose_tries: bool,
}
