//! Command handling that needs no Paxos round: authorization, reads from
//! the state, reports, issuing certificates.

use shoal_net::ClusterCa;
use shoal_proto::caps::Caps;
use shoal_proto::mon::{
    AuthEntry, CommandError, CommandOutput, ErrorCode, Keyring, MonCommand, PoolSummary,
};
use shoal_proto::report::{MonStatReport, StatusReport};

use crate::health::health;
use crate::state::MonState;

fn denied(origin: &str, what: &str) -> CommandError {
    CommandError::new(
        ErrorCode::PermissionDenied,
        format!("{origin} may not {what}"),
    )
}

/// Checks that `caps` allow `origin` to run `cmd`.
pub fn authorize(caps: &Caps, origin: &str, cmd: &MonCommand) -> Result<(), CommandError> {
    let own_osd = |id: i32| caps.mon_osd_profile && origin == format!("osd.{id}");
    let ok = match cmd {
        c if !c.is_write() => caps.can_read_mon(),
        MonCommand::OsdBoot { id, .. } | MonCommand::OsdBeacon { id, .. } => {
            caps.can_write_mon() || own_osd(*id)
        }
        MonCommand::OsdCreate { id } => caps.can_write_mon() || own_osd(*id),
        // OSDs ask for a temporary chain while they backfill a new member,
        // and record the intervals their PGs go active in.
        MonCommand::OsdFailure { .. }
        | MonCommand::PgTemp { .. }
        | MonCommand::PgActivated { .. } => caps.can_write_mon() || caps.mon_osd_profile,
        _ => caps.can_write_mon(),
    };
    if ok {
        Ok(())
    } else if cmd.is_write() {
        Err(denied(
            origin,
            &format!("run {} (needs mon rw)", cmd.name()),
        ))
    } else {
        Err(denied(origin, &format!("run {} (needs mon r)", cmd.name())))
    }
}

/// Answers a read command from the state.
pub fn read(state: &MonState, cmd: &MonCommand) -> Result<CommandOutput, CommandError> {
    match cmd {
        MonCommand::GetOsdMap { epoch } => {
            let current = state.osdmap.epoch();
            if *epoch != 0 && *epoch != current {
                return Err(CommandError::new(
                    ErrorCode::NotFound,
                    format!(
                        "epoch {epoch} is not kept as a full map (current {current}); subscribe for incrementals"
                    ),
                ));
            }
            let map = state
                .osdmap
                .try_encode()
                .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))?;
            Ok(CommandOutput::OsdMap {
                epoch: current,
                map,
            })
        }
        MonCommand::GetMonMap => Ok(CommandOutput::MonMap {
            map: state.monmap.encode(),
        }),
        MonCommand::PoolLs => Ok(CommandOutput::Pools(
            state
                .osdmap
                .pools()
                .values()
                .map(|p| PoolSummary {
                    id: p.id,
                    name: p.name.clone(),
                    size: p.size,
                    min_size: p.min_size,
                    pg_num: p.pg_num,
                    pgp_num: p.pgp_num,
                    pgp_num_target: p.pgp_num_target,
                    crush_rule: p.crush_rule,
                    piece_size: p.piece_size,
                })
                .collect(),
        )),
        MonCommand::AuthLs => Ok(CommandOutput::Auth(
            state
                .auth
                .iter()
                .map(|(name, caps)| AuthEntry {
                    name: name.clone(),
                    caps: caps.to_string(),
                })
                .collect(),
        )),
        MonCommand::ConfigKeyGet { key } => {
            Ok(CommandOutput::Value(state.config_keys.get(key).cloned()))
        }
        MonCommand::ConfigKeyLs => Ok(CommandOutput::Keys(
            state.config_keys.keys().cloned().collect(),
        )),
        other => Err(CommandError::new(
            ErrorCode::Invalid,
            format!("{} is not a read", other.name()),
        )),
    }
}

/// `status`, `mon stat` or `health` from the state and the quorum view.
/// `status` also shows `stats` (PG states, usage, IO rates), which only
/// the leader has; without them every PG counts as unknown. `health` and
/// `status` check PG states when there are stats.
pub fn report(
    state: &MonState,
    cmd: &MonCommand,
    mon: MonStatReport,
    stats: Option<crate::pgstats::Summary>,
) -> CommandOutput {
    let map = &state.osdmap;
    match cmd {
        MonCommand::MonStat => CommandOutput::MonStat(mon),
        MonCommand::Health => CommandOutput::Health(health(map, &mon, stats.as_ref())),
        _ => {
            let ids: Vec<i32> = map.osd_ids().collect();
            let num_pgs: u32 = map.pools().values().map(|p| p.pg_num).sum();
            let health = health(map, &mon, stats.as_ref());
            let stats = stats.unwrap_or_else(|| crate::pgstats::Summary::unknown(num_pgs));
            CommandOutput::Status(Box::new(StatusReport {
                fsid: map.fsid().to_string(),
                health,
                osdmap_epoch: map.epoch(),
                num_osds: ids.len() as u32,
                num_up_osds: ids.iter().filter(|&&i| map.is_up(i)).count() as u32,
                num_in_osds: ids.iter().filter(|&&i| map.is_in(i)).count() as u32,
                num_pools: map.pools().len() as u32,
                num_pgs,
                pgs_by_state: stats.pgs_by_state,
                num_objects: stats.num_objects,
                raw_used: stats.raw_used,
                raw_total: stats.raw_total,
                io: stats.io,
                degraded_objects: stats.degraded_objects,
                recovery_rate: stats.recovery_rate,
                recovered: stats.recovered,
                mon,
            }))
        }
    }
}

/// Issues the certificate of a new identity (at the leader, before the
/// change is proposed: key generation is random, so it stays out of the
/// replicated state; only the name and caps are committed).
pub fn issue_identity(
    state: &MonState,
    ca: Option<&ClusterCa>,
    name: &str,
    caps: &str,
) -> Result<Keyring, CommandError> {
    crate::apply::check_auth_add(state, name, caps)?;
    let ca = ca.ok_or_else(|| {
        CommandError::new(
            ErrorCode::Internal,
            "this monitor holds no CA key (ca.key in its keyring directory)",
        )
    })?;
    let identity = ca
        .issue(name)
        .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))?;
    let (cert, key, ca_pem) = identity.to_pem();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap_or_default();
    Ok(Keyring {
        name: name.to_string(),
        caps: caps.to_string(),
        cert_pem: text(cert),
        key_pem: text(key),
        ca_pem: text(ca_pem),
    })
}

/// Rough encoded size of a command, for bounding batches.
pub fn estimated_size(cmd: &MonCommand) -> usize {
    match cmd {
        MonCommand::ConfigKeySet { key, value } => 128 + key.len() + value.len(),
        _ => 256,
    }
}
