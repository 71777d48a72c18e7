//! `shoal-s3`: the S3 gateway daemon.
//!
//! Reads `[s3]` of `shoal.toml`, connects to the cluster as `[s3] client`
//! (creating the gateway's pools if missing), serves S3 on `[s3] listen`
//! and collects garbage in the background. SIGTERM or SIGINT stops it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use s3s::service::S3ServiceBuilder;
use shoal_conf::ShoalConf;
use shoal_s3::Gateway;
use shoal_s3::auth::{AclAccess, ClusterAuth};
use shoal_s3::model::gc::Collector;
use shoal_s3::server::Server;

/// The S3 gateway.
#[derive(Parser)]
#[command(name = "shoal-s3", version, about)]
struct Args {
    /// Configuration file (default: $SHOAL_CONF, then ./shoal.toml).
    #[arg(long)]
    conf: Option<PathBuf>,
    /// Listen here instead of `[s3] listen`.
    #[arg(long)]
    listen: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    shoal_daemon::init("info");
    let args = Args::parse();
    let path = ShoalConf::locate(args.conf.as_deref())?;
    let mut conf = ShoalConf::load(&path)?;
    if let Some(listen) = args.listen {
        conf.s3.listen = listen;
    }
    conf.validate().map_err(anyhow::Error::msg)?;
    let gateway = Gateway::connect(&conf)
        .await
        .context("connecting to the cluster")?;
    let collector = Collector::new(gateway.pools().clone(), conf.s3.gc_upload_grace_ms);
    let gc = tokio::spawn(collector.run(Duration::from_millis(conf.s3.gc_interval_ms)));
    let mut builder = S3ServiceBuilder::new(gateway.clone());
    builder.set_auth(ClusterAuth::new(gateway.clone()));
    // Unsigned requests reach the operations, which check ACLs.
    builder.set_access(AclAccess);
    let mut limits = s3s::config::S3Config::default();
    limits.post_object_max_file_size = conf.s3.max_buffered_body_bytes;
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        limits,
    ))));
    if !conf.s3.domains.is_empty() {
        let host = s3s::host::MultiDomain::new(&conf.s3.domains)
            .map_err(|e| anyhow::anyhow!("[s3] domains: {e}"))?;
        builder.set_host(host);
    }
    let server = Server::bind(&conf.s3, gateway.clone(), builder.build(), |p| {
        conf.resolve(p)
    })
    .await?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, tls = conf.s3.tls_cert.is_some(), "S3 gateway listening");
    server.run(shutdown_signal()).await;
    gc.abort();
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still dies by the default action.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
