//! A new cluster's first state: the default CRUSH hierarchy and rule, an
//! empty OSDMap at epoch 1, the MonMap, the admin identity.

use std::collections::BTreeMap;

use shoal_map::{Fsid, MonInfo, MonMap, OsdMap};
use shoal_proto::caps::Caps;

use crate::error::MonError;
use crate::state::{MonState, StateSettings};

/// The CRUSH bucket types (Ceph's defaults) and the default root; the rule
/// is appended with the chosen failure domain.
const CRUSH_TYPES: &str = "\
tunable choose_local_tries 0
tunable choose_local_fallback_tries 0
tunable choose_total_tries 50
tunable chooseleaf_descend_once 1
tunable chooseleaf_vary_r 1
tunable chooseleaf_stable 1
tunable straw_calc_version 1
tunable allowed_bucket_algs 54
type 0 osd
type 1 host
type 2 chassis
type 3 rack
type 4 row
type 5 pdu
type 6 pod
type 7 room
type 8 datacenter
type 9 zone
type 10 region
type 11 root
root default {
\tid -1
\talg straw2
\thash 0
}
";

/// The identity every new cluster gets, with all caps.
pub const ADMIN_IDENTITY: &str = "client.admin";

/// Builds the state every monitor of a new cluster starts from. It must be
/// identical on every monitor: it depends only on its arguments.
pub fn initial_state(
    cluster: &str,
    fsid: Fsid,
    mons: &[(String, std::net::SocketAddr)],
    failure_domain: &str,
    settings: StateSettings,
) -> Result<MonState, MonError> {
    let mut text = CRUSH_TYPES.to_string();
    text.push_str(&format!(
        "rule replicated_rule {{\n\tid 0\n\ttype replicated\n\tmin_size 1\n\tmax_size 10\n\
         \tstep take default\n\tstep chooseleaf firstn 0 type {failure_domain}\n\tstep emit\n}}\n"
    ));
    let crush = shoal_crush::text::parse(&text)
        .map_err(|e| MonError::Config(format!("failure domain {failure_domain:?}: {e}")))?;
    let mut osdmap = OsdMap::from_crush(fsid, crush, [])?;
    osdmap.set_epoch(1);
    let monmap = MonMap::new(
        fsid,
        mons.iter()
            .map(|(name, addr)| MonInfo {
                name: name.clone(),
                addr: *addr,
            })
            .collect(),
    );
    monmap.validate()?;
    let auth = BTreeMap::from([(ADMIN_IDENTITY.to_string(), Caps::ADMIN)]);
    Ok(MonState::new(cluster, monmap, osdmap, auth, settings))
}
