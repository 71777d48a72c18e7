//! `shoal s3 user|key ...`: the S3 gateway's users and keys, kept in the
//! cluster's S3 metadata pool. Secrets are printed once, when made.

use anyhow::{Context, Result};
use shoal_conf::ShoalConf;
use shoal_s3::model::users::{NewKey, UserRecord, Users};

use crate::args::{S3Cmd, S3KeyCmd, S3UserCmd};

/// Runs a `shoal s3` command.
pub async fn run(cmd: &S3Cmd, conf: &ShoalConf, json: bool) -> Result<()> {
    let cluster = shoal_client::Cluster::connect(conf)
        .await
        .with_context(|| format!("connecting as {}", conf.client.name))?;
    let pools = shoal_s3::open_pools(&cluster, &conf.s3).await?;
    let users = Users::new(pools.meta);
    match cmd {
        S3Cmd::User(S3UserCmd::Create { uid, display_name }) => {
            let name = display_name.as_deref().unwrap_or(uid);
            let key = users.create(uid, name).await?;
            print_key(uid, &key, json);
        }
        S3Cmd::User(S3UserCmd::Ls) => {
            let all = users.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for u in &all {
                    print_user(u);
                }
            }
        }
        S3Cmd::User(S3UserCmd::Info { uid }) => {
            let u = users.get(uid).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&u)?);
            } else {
                print_user(&u);
            }
        }
        S3Cmd::User(S3UserCmd::Rm { uid }) => {
            users.remove(uid).await?;
            println!("removed user {uid}");
        }
        S3Cmd::Key(S3KeyCmd::Add { uid }) => {
            let key = users.add_key(uid).await?;
            print_key(uid, &key, json);
        }
        S3Cmd::Key(S3KeyCmd::Rm { uid, access_key }) => {
            users.remove_key(uid, access_key).await?;
            println!("removed key {access_key} of user {uid}");
        }
    }
    Ok(())
}

fn print_key(uid: &str, key: &NewKey, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "uid": uid, "access_key": key.access_key, "secret_key": key.secret_key,
            })
        );
    } else {
        println!(
            "user {uid}\naccess key: {}\nsecret key: {}\n(the secret is shown only now)",
            key.access_key, key.secret_key
        );
    }
}

fn print_user(u: &UserRecord) {
    println!(
        "{}\t{}\tkeys: {}",
        u.uid,
        u.display_name,
        if u.keys.is_empty() {
            "-".to_string()
        } else {
            u.keys.join(",")
        }
    );
}
