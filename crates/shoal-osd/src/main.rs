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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let conf = load_conf(&args)?;
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
