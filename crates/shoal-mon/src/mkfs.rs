//! `shoal-mon --mkfs`: the cluster CA and identities (first monitor), and
//! the monitor's store with the cluster's initial state.

use std::path::Path;
use std::str::FromStr;

use shoal_conf::ShoalConf;
use shoal_map::Fsid;
use shoal_net::{ClusterCa, NodeIdentity};

use crate::error::MonError;
use crate::initial::{ADMIN_IDENTITY, initial_state};
use crate::state::StateSettings;
use crate::store::MonStore;

/// What `--mkfs` did.
#[derive(Debug, Default)]
pub struct MkfsReport {
    /// A new cluster CA was generated.
    pub created_ca: bool,
    /// The admin identity was issued.
    pub created_admin: bool,
}

/// Loads the CA from `dir`, or generates it (and the admin identity) when
/// the directory has none.
pub fn ensure_ca(
    dir: &Path,
    cluster: &str,
    report: &mut MkfsReport,
) -> Result<ClusterCa, MonError> {
    let ca = if dir.join("ca.key").exists() {
        ClusterCa::load(dir)?
    } else {
        std::fs::create_dir_all(dir)
            .map_err(|e| MonError::io(format!("creating {}", dir.display()), e))?;
        let ca = ClusterCa::generate(cluster)?;
        ca.save(dir)?;
        report.created_ca = true;
        ca
    };
    if !NodeIdentity::file_paths(dir, ADMIN_IDENTITY).1.exists() {
        ca.issue(ADMIN_IDENTITY)?.save(dir)?;
        report.created_admin = true;
    }
    Ok(ca)
}

/// Creates monitor `name`'s identity and store.
pub fn mkfs(conf: &ShoalConf, name: &str, failure_domain: &str) -> Result<MkfsReport, MonError> {
    let mons = conf.mons().map_err(MonError::Config)?;
    if !mons.iter().any(|m| m.name == name) {
        return Err(MonError::Config(format!(
            "mon {name} is not in [global] mon_host"
        )));
    }
    let fsid = Fsid::from_str(&conf.global.fsid)
        .map_err(|e| MonError::Config(format!("[global] fsid: {e}")))?;
    let mut report = MkfsReport::default();
    let keyring = conf.keyring_dir();
    let ca = ensure_ca(&keyring, &conf.global.cluster, &mut report)?;
    if ca.cluster() != conf.global.cluster {
        return Err(MonError::Config(format!(
            "the CA in {} is for cluster {:?}, the configuration says {:?}",
            keyring.display(),
            ca.cluster(),
            conf.global.cluster
        )));
    }
    let mon_identity = format!("mon.{name}");
    if !NodeIdentity::file_paths(&keyring, &mon_identity).1.exists() {
        ca.issue(&mon_identity)?.save(&keyring)?;
    }
    let settings = StateSettings {
        keep_incrementals: conf.mon.keep_incrementals.max(1),
        ..StateSettings::default()
    };
    let pairs: Vec<(String, std::net::SocketAddr)> =
        mons.iter().map(|m| (m.name.clone(), m.addr)).collect();
    let state = initial_state(&conf.global.cluster, fsid, &pairs, failure_domain, settings)?;
    MonStore::create(&conf.mon_data_dir(name), name, &state)?;
    Ok(report)
}
