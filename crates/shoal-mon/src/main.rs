//! `shoal-mon`: run or create a monitor.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use shoal_conf::ShoalConf;

/// A Shoal monitor.
#[derive(Parser, Debug)]
#[command(name = "shoal-mon", version, about)]
struct Args {
    /// Monitor name (as in `mon_host`, e.g. `a`).
    #[arg(long)]
    id: String,
    /// Configuration file (default: $SHOAL_CONF, then ./shoal.toml).
    #[arg(long)]
    conf: Option<PathBuf>,
    /// Create the monitor's store (and the cluster CA and admin identity
    /// if the keyring directory has none), then exit.
    #[arg(long)]
    mkfs: bool,
    /// CRUSH failure domain of the default rule (with --mkfs).
    #[arg(long, default_value = "host")]
    failure_domain: String,
    /// Override `[global] mon_host` (`a=127.0.0.1:6789,b=...`).
    #[arg(long, value_delimiter = ',')]
    mon_host: Option<Vec<String>>,
    /// Override `[global] fsid`.
    #[arg(long)]
    fsid: Option<String>,
    /// Override `[mon] data` (`{id}` becomes the monitor name).
    #[arg(long)]
    data: Option<String>,
    /// Override `[global] keyring`.
    #[arg(long)]
    keyring: Option<PathBuf>,
}

fn load_conf(args: &Args) -> Result<ShoalConf> {
    let mut conf = match ShoalConf::locate(args.conf.as_deref()) {
        Ok(path) => ShoalConf::load(&path)?,
        Err(shoal_conf::ConfError::NotFound) if args.mon_host.is_some() => ShoalConf::default(),
        Err(e) => return Err(e.into()),
    };
    if let Some(h) = &args.mon_host {
        conf.global.mon_host = h.clone();
    }
    if let Some(f) = &args.fsid {
        conf.global.fsid = f.clone();
    }
    if let Some(d) = &args.data {
        conf.mon.data = d.clone();
    }
    if let Some(k) = &args.keyring {
        conf.global.keyring = k.clone();
    }
    conf.validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    Ok(conf)
}

fn main() -> Result<()> {
    shoal_daemon::init("info");
    let args = Args::parse();
    let conf = load_conf(&args)?;
    if args.mkfs {
        let report = shoal_mon::mkfs::mkfs(&conf, &args.id, &args.failure_domain)
            .with_context(|| format!("creating mon.{}", args.id))?;
        if report.created_ca {
            eprintln!("created the cluster CA in {}", conf.keyring_dir().display());
        }
        if report.created_admin {
            eprintln!("issued client.admin in {}", conf.keyring_dir().display());
        }
        eprintln!(
            "created mon.{} in {}",
            args.id,
            conf.mon_data_dir(&args.id).display()
        );
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        shoal_mon::daemon::run(&conf, &args.id, shutdown)
            .await
            .with_context(|| format!("mon.{}", args.id))
    })
}
