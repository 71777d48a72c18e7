//! `shoal-osd`: run or create an OSD.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use shoal_conf::ShoalConf;

/// A Shoal OSD.
#[derive(Parser, Debug)]
#[command(name = "shoal-osd", version, about)]
struct Args {
    /// OSD id.
    #[arg(long)]
    id: i32,
    /// Configuration file (default: $SHOAL_CONF, then ./shoal.toml).
    #[arg(long)]
    conf: Option<PathBuf>,
    /// Register the OSD with the monitors, issue its identity and create
    /// its store, then exit.
    #[arg(long)]
    mkfs: bool,
    /// Override `[osd] data` (`{id}` becomes the OSD id).
    #[arg(long)]
    data: Option<String>,
    /// Override `[osd] addr`.
    #[arg(long)]
    addr: Option<String>,
    /// Override `[osd] location` (`host=h1, rack=r1`).
    #[arg(long)]
    location: Option<String>,
    /// Override `[osd] store_bytes` (with --mkfs).
    #[arg(long)]
    store_bytes: Option<u64>,
    /// Print the PGs the (stopped) OSD's store holds, one line each, and
    /// exit.
    #[arg(long, conflicts_with_all = ["mkfs", "dump_pg"])]
    list_pgs: bool,
    /// Print what the (stopped) OSD's store holds about one PG (`1.2f`):
    /// the last interval it knows went active, its objects with versions
    /// and sizes, its log and missing set; then exit.
    #[arg(long, value_name = "PGID", conflicts_with = "mkfs")]
    dump_pg: Option<String>,
}

/// `--list-pgs` and `--dump-pg`: reads the store, prints, exits.
fn inspect(conf: &ShoalConf, args: &Args) -> Result<()> {
    let cfg = shoal_osd::context::store_config(conf, args.id);
    let store = shoal_store::Store::open(&cfg).with_context(|| {
        format!(
            "opening the store of osd.{} in {} (it must not be running)",
            args.id,
            cfg.dir.display()
        )
    })?;
    if let Some(pg) = &args.dump_pg {
        let id: shoal_map::PgId = pg
            .parse()
            .map_err(|e| anyhow::anyhow!("--dump-pg {pg}: {e}"))?;
        let pg = shoal_proto::osd::PgRef {
            pool: id.pool,
            seed: id.seed,
        };
        match shoal_osd::inspect::dump_pg(&store, pg) {
            Ok(dump) => print!("{dump}"),
            Err(shoal_store::StoreError::NoCollection(_)) => {
                anyhow::bail!("osd.{} holds no copy of pg {id}", args.id)
            }
            Err(e) => return Err(e).context(format!("reading pg {id}")),
        }
    } else {
        println!("{}", shoal_osd::inspect::SUMMARY_HEADER);
        for pg in shoal_osd::inspect::list_pgs(&store).context("reading the PGs")? {
            println!("{pg}");
        }
    }
    Ok(())
}

fn load_conf(args: &Args) -> Result<ShoalConf> {
    let path = ShoalConf::locate(args.conf.as_deref())?;
    let mut conf = ShoalConf::load(&path)?;
    if let Some(d) = &args.data {
        conf.osd.data = d.clone();
    }
    if let Some(a) = &args.addr {
        conf.osd.addr = a.clone();
    }
    if let Some(l) = &args.location {
        conf.osd.location = l.clone();
    }
    if let Some(b) = args.store_bytes {
        conf.osd.store_bytes = b;
    }
    conf.validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    Ok(conf)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let inspecting = args.list_pgs || args.dump_pg.is_some();
    // Inspection prints its answer on stdout; only problems on stderr.
    let level = if inspecting { "warn" } else { "info" };
    shoal_daemon::init(level);
    let conf = load_conf(&args)?;
    if inspecting {
        return inspect(&conf, &args);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        if args.mkfs {
            let r = shoal_osd::mkfs::mkfs(&conf, args.id)
                .await
                .with_context(|| format!("creating osd.{}", args.id))?;
            if r.issued_identity {
                eprintln!("issued osd.{} in {}", r.id, conf.keyring_dir().display());
            }
            eprintln!(
                "created osd.{} in {}",
                r.id,
                conf.osd_data_dir(r.id).display()
            );
            return Ok(());
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        shoal_osd::daemon::run(&conf, args.id, shutdown)
            .await
            .with_context(|| format!("osd.{}", args.id))
    })
}
