//! `shoal`: administer a Shoal cluster.
//!
//! Every command reads `--conf FILE` (default `$SHOAL_CONF`, then
//! `./shoal.toml`) and prints text, or JSON with `--format json`.

mod args;
mod balancer;
mod bench;
mod dev;
mod objects;
mod progress;
mod render;
mod s3;

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Parser;
use shoal_client::{ClientError, MonClient, MonError};
use shoal_conf::ShoalConf;
use shoal_proto::mon::{CommandOutput, KeyValue, MonCommand, UpmapPair};

use args::{
    Args, AuthCmd, BalancerCmd, Cmd, ConfigKeyCmd, CrushCmd, Format, MonCmd, OsdCmd, PgCmd, PoolCmd,
};

fn main() {
    shoal_daemon::logs("warn");
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shoal: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("shoal: {e:#}");
        // 2: the monitors refused the command (as opposed to failing).
        let refused = matches!(
            e.downcast_ref::<ClientError>(),
            Some(ClientError::Command(_))
        ) || matches!(e.downcast_ref::<MonError>(), Some(MonError::Command(_)));
        let code = if refused { 2 } else { 1 };
        std::process::exit(code);
    }
}

fn location(pairs: &[String]) -> Result<Vec<KeyValue>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("location {p:?} is not TYPE=NAME"))?;
            Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            })
        })
        .collect()
}

async fn run(args: Args) -> Result<()> {
    let json = args.format == Format::Json;
    if let Cmd::Dev(dev) = args.cmd {
        return dev::run(dev, json).await;
    }
    let path = ShoalConf::locate(args.conf.as_deref())?;
    let mut conf = ShoalConf::load(&path)?;
    if let Some(name) = &args.identity {
        conf.client.name = name.clone();
    }
    if let Some(done) = objects_command(&args.cmd, &conf, json).await {
        return done;
    }
    if let Cmd::S3(cmd) = &args.cmd {
        return s3::run(cmd, &conf, json).await;
    }
    let client = MonClient::from_conf(&conf)
        .with_context(|| format!("connecting as {}", conf.client.name))?;
    let command = match args.cmd {
        Cmd::Status => MonCommand::Status,
        Cmd::Health => MonCommand::Health,
        Cmd::Mon(MonCmd::Stat) => MonCommand::MonStat,
        Cmd::Osd(OsdCmd::Tree) => {
            let map = client.osdmap().await?;
            let tree = shoal_map::tree::osd_tree(&map);
            if json {
                println!("{}", serde_json::to_string_pretty(&tree)?);
            } else {
                print!("{}", tree.render(&map));
            }
            return Ok(());
        }
        Cmd::Osd(OsdCmd::Getmap { output }) => {
            let map = client.osdmap().await?;
            std::fs::write(&output, map.encode())
                .with_context(|| format!("writing {}", output.display()))?;
            eprintln!("wrote OSDMap epoch {} to {}", map.epoch(), output.display());
            return Ok(());
        }
        Cmd::Osd(OsdCmd::Df) => MonCommand::OsdDf,
        Cmd::Osd(OsdCmd::Create { id }) => MonCommand::OsdCreate {
            id: id.unwrap_or(-1),
        },
        Cmd::Osd(OsdCmd::Out { ids }) => MonCommand::OsdOut { ids },
        Cmd::Osd(OsdCmd::In { ids }) => MonCommand::OsdIn { ids },
        Cmd::Osd(OsdCmd::Down { ids }) => MonCommand::OsdDown { ids },
        Cmd::Osd(OsdCmd::Rm { ids }) => MonCommand::OsdRm { ids },
        Cmd::Osd(OsdCmd::Reweight { id, weight }) => MonCommand::OsdReweight { id, weight },
        Cmd::Osd(OsdCmd::Crush(CrushCmd::AddBucket { name, type_name })) => {
            MonCommand::CrushAddBucket { name, type_name }
        }
        Cmd::Osd(OsdCmd::Crush(CrushCmd::Move {
            name,
            location: loc,
        })) => MonCommand::CrushMove {
            name,
            location: location(&loc)?,
        },
        Cmd::Osd(OsdCmd::Crush(CrushCmd::Reweight { name, weight })) => {
            MonCommand::CrushReweight { name, weight }
        }
        Cmd::Osd(OsdCmd::Crush(CrushCmd::Remove { name })) => MonCommand::CrushRemove { name },
        Cmd::Osd(OsdCmd::PgUpmapItems { pg, pairs }) => {
            if pairs.len() % 2 != 0 {
                bail!("pg-upmap-items wants FROM TO pairs");
            }
            MonCommand::PgUpmapItems {
                pg,
                items: pairs
                    .chunks(2)
                    .map(|c| UpmapPair {
                        from: c[0],
                        to: c[1],
                    })
                    .collect(),
            }
        }
        Cmd::Osd(OsdCmd::RmPgUpmapItems { pg }) => MonCommand::RmPgUpmapItems { pg },
        Cmd::Pg(PgCmd::Temp { pg, osds }) => MonCommand::PgTemp { pg, osds },
        Cmd::Balancer(BalancerCmd::Run {
            pool,
            max_deviation,
            max_moves,
            dry_run,
        }) => {
            let opts = balancer::Options {
                pools: pool,
                max_deviation,
                max_moves,
                dry_run,
            };
            return balancer::run(&client, &opts, json).await;
        }
        Cmd::Pg(PgCmd::Ls { states }) => {
            let out = client.command(MonCommand::PgLs).await?;
            let CommandOutput::PgLs(mut pgs) = out else {
                bail!("unexpected answer {out:?}");
            };
            pgs.retain(|p| render::pg_in_states(&p.state, &states));
            print!("{}", render::output(&CommandOutput::PgLs(pgs), json)?);
            return Ok(());
        }
        Cmd::Pool(PoolCmd::Create {
            name,
            pg_num,
            size,
            min_size,
            rule,
        }) => MonCommand::PoolCreate {
            name,
            pg_num,
            size,
            min_size: min_size.unwrap_or(0),
            rule: rule.unwrap_or_default(),
        },
        Cmd::Pool(PoolCmd::Ls) => MonCommand::PoolLs,
        Cmd::Pool(PoolCmd::Set { name, key, value }) => MonCommand::PoolSet { name, key, value },
        Cmd::Pool(PoolCmd::Rm { name, confirm }) => MonCommand::PoolRm {
            name,
            confirm: confirm.unwrap_or_default(),
        },
        Cmd::Auth(AuthCmd::Add {
            name,
            caps,
            out_dir,
        }) => {
            let out = client.command(MonCommand::AuthAdd { name, caps }).await?;
            let CommandOutput::Keyring(k) = out else {
                bail!("unexpected answer {out:?}");
            };
            return write_keyring(&k, out_dir.as_deref().unwrap_or(&conf.keyring_dir()), json);
        }
        Cmd::Auth(AuthCmd::Ls) => MonCommand::AuthLs,
        Cmd::Auth(AuthCmd::Caps { name, caps }) => MonCommand::AuthCaps { name, caps },
        Cmd::Auth(AuthCmd::Rm { name }) => MonCommand::AuthRm { name },
        Cmd::ConfigKey(ConfigKeyCmd::Set { key, value }) => MonCommand::ConfigKeySet {
            key,
            value: value.into_bytes(),
        },
        Cmd::ConfigKey(ConfigKeyCmd::Get { key }) => MonCommand::ConfigKeyGet { key },
        Cmd::ConfigKey(ConfigKeyCmd::Rm { key }) => MonCommand::ConfigKeyRm { key },
        Cmd::ConfigKey(ConfigKeyCmd::Ls) => MonCommand::ConfigKeyLs,
        Cmd::Put { .. }
        | Cmd::Get { .. }
        | Cmd::Rm { .. }
        | Cmd::Ls { .. }
        | Cmd::Stat { .. }
        | Cmd::Bench { .. }
        | Cmd::Pg(
            PgCmd::Query { .. }
            | PgCmd::Scrub { .. }
            | PgCmd::DeepScrub { .. }
            | PgCmd::Repair { .. },
        )
        | Cmd::Dev(_)
        | Cmd::S3(_) => bail!("not a monitor command"),
    };
    let out = client.command(command).await?;
    print!("{}", render::output(&out, json)?);
    Ok(())
}

/// Runs the object commands (they need a cluster connection, not just
/// the monitors); `None` for every other command.
async fn objects_command(cmd: &Cmd, conf: &ShoalConf, json: bool) -> Option<Result<()>> {
    let is_object = matches!(
        cmd,
        Cmd::Put { .. }
            | Cmd::Get { .. }
            | Cmd::Rm { .. }
            | Cmd::Ls { .. }
            | Cmd::Stat { .. }
            | Cmd::Bench { .. }
            | Cmd::Pg(
                PgCmd::Query { .. }
                    | PgCmd::Scrub { .. }
                    | PgCmd::DeepScrub { .. }
                    | PgCmd::Repair { .. }
            )
    );
    if !is_object {
        return None;
    }
    let run = async {
        let c = shoal_client::Cluster::connect(conf)
            .await
            .with_context(|| format!("connecting as {}", conf.client.name))?;
        match cmd {
            Cmd::Put { pool, name, file } => objects::put(&c, pool, name, file, json).await,
            Cmd::Get { pool, name, file } => objects::get(&c, pool, name, file).await,
            Cmd::Rm { pool, names } => objects::rm(&c, pool, names).await,
            Cmd::Ls { pool } => objects::ls(&c, pool, json).await,
            Cmd::Stat { pool, name } => objects::stat(&c, pool, name, json).await,
            Cmd::Pg(PgCmd::Scrub { pg } | PgCmd::DeepScrub { pg } | PgCmd::Repair { pg }) => {
                let id: shoal_map::PgId = pg.parse().with_context(|| format!("PG id {pg:?}"))?;
                let (deep, repair) = match cmd {
                    Cmd::Pg(PgCmd::Scrub { .. }) => (false, false),
                    Cmd::Pg(PgCmd::DeepScrub { .. }) => (true, false),
                    _ => (true, true),
                };
                let result = c.pg_scrub(id, deep, repair).await?;
                println!("{}", serde_json::to_string_pretty(&result)?);
                Ok(())
            }
            Cmd::Pg(PgCmd::Query { pg, osd }) => {
                let id: shoal_map::PgId = pg.parse().with_context(|| format!("PG id {pg:?}"))?;
                let detail = c.pg_detail(id, *osd).await?;
                // JSON either way, as Ceph's `pg query`.
                println!("{}", serde_json::to_string_pretty(&detail)?);
                Ok(())
            }
            Cmd::Bench {
                pool,
                seconds,
                mode,
                block,
                concurrency,
                no_cleanup,
                max_objects,
            } => {
                let params = bench::Params {
                    pool: pool.clone(),
                    seconds: *seconds,
                    mode: *mode,
                    block: dev::parse_size(block)?,
                    concurrency: *concurrency,
                    no_cleanup: *no_cleanup,
                    max_objects: *max_objects,
                };
                bench::run(&c, params, json).await
            }
            _ => bail!("not an object command"),
        }
    };
    Some(run.await)
}

/// Writes an issued identity's files (0600) into `dir`.
fn write_keyring(k: &shoal_proto::mon::Keyring, dir: &Path, json: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (crt, key) = shoal_net::NodeIdentity::file_paths(dir, &k.name);
    shoal_net::files::write_private(&key, k.key_pem.as_bytes())?;
    shoal_net::files::write_private(&crt, k.cert_pem.as_bytes())?;
    let ca = dir.join("ca.crt");
    if !ca.exists() {
        shoal_net::files::write_private(&ca, k.ca_pem.as_bytes())?;
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"name": k.name, "caps": k.caps, "cert": crt, "key": key})
        );
    } else {
        println!(
            "added {} ({}): {} {}",
            k.name,
            k.caps,
            crt.display(),
            key.display()
        );
    }
    Ok(())
}
