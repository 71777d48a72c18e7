//! `shoal-osd --mkfs`: create the store, the OSD id and its identity.

use shoal_conf::ShoalConf;
use shoal_monc::MonClient;
use shoal_net::NodeIdentity;
use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_store::Store;

use crate::context::store_config;
use crate::error::OsdError;

/// Caps of an OSD identity: the monitors' OSD profile and data access.
pub const OSD_CAPS: &str = "mon osd, osd rw";

/// What `--mkfs` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkfsReport {
    /// The OSD id.
    pub id: i32,
    /// Whether a new identity was issued (else the keyring had one).
    pub issued_identity: bool,
}

/// Registers OSD `id` with the monitors (as the configured client identity,
/// which needs `mon rw`), issues `osd.<id>` its certificate unless the
/// keyring holds one, and creates the store. Refuses an existing store.
pub async fn mkfs(conf: &ShoalConf, id: i32) -> Result<MkfsReport, OsdError> {
    if id < 0 {
        return Err(OsdError::Config("OSD ids are 0 or more".into()));
    }
    let cfg = store_config(conf, id);
    if cfg.dir.join("meta.redb").exists() {
        return Err(OsdError::Setup(format!(
            "{} already holds a store",
            cfg.dir.display()
        )));
    }
    let monc = MonClient::from_conf(conf)?;
    match monc.command(MonCommand::OsdCreate { id }).await? {
        CommandOutput::OsdId(got) if got == id => {}
        other => {
            return Err(OsdError::Setup(format!(
                "the monitors answered {other:?} to creating osd.{id}"
            )));
        }
    }
    let dir = conf.keyring_dir();
    let name = format!("osd.{id}");
    let issued_identity = NodeIdentity::load(&dir, &name).is_err();
    if issued_identity {
        let out = monc
            .command(MonCommand::AuthAdd {
                name: name.clone(),
                caps: OSD_CAPS.into(),
            })
            .await?;
        let CommandOutput::Keyring(k) = out else {
            return Err(OsdError::Setup(format!("no keyring issued for {name}")));
        };
        let identity = NodeIdentity::from_pem(
            k.cert_pem.as_bytes(),
            k.key_pem.as_bytes(),
            k.ca_pem.as_bytes(),
        )?;
        identity.save(&dir)?;
    }
    Store::mkfs(&cfg)?;
    Ok(MkfsReport {
        id,
        issued_identity,
    })
}
