//! Applying one transaction to the state: validation, then the change.
//! A transaction that fails changes nothing (handlers check before they
//! mutate, or work on a copy when a change takes several steps).

mod auth;
mod crush;
mod osd;
mod pool;

use shoal_proto::mon::{CommandError, CommandOutput, ErrorCode, MonCommand};

use crate::batch::Txn;
use crate::state::MonState;

/// The result of applying a command.
pub type ApplyResult = Result<CommandOutput, CommandError>;

/// Applies `txn` to `state`.
pub fn apply(state: &mut MonState, txn: &Txn) -> ApplyResult {
    let epoch = state.osdmap.epoch();
    let done = || Ok(CommandOutput::Done { epoch });
    match &txn.command {
        MonCommand::OsdCreate { id } => osd::create(state, *id),
        MonCommand::OsdBoot {
            id,
            addr,
            location,
            crush_weight,
        } => osd::boot(state, *id, addr, location, *crush_weight).and_then(|()| done()),
        MonCommand::OsdDown { ids } => {
            osd::mark_down(state, ids, txn.stamp_ms).and_then(|()| done())
        }
        MonCommand::OsdOut { ids } => {
            // The monitors' own outs (down past down_out_interval) are
            // undone when the OSD boots again; an operator's are not.
            let automatic = txn.client_id == 0 && txn.origin.starts_with("mon.");
            osd::mark_out(state, ids, automatic).and_then(|()| done())
        }
        MonCommand::OsdIn { ids } => osd::mark_in(state, ids).and_then(|()| done()),
        MonCommand::OsdReweight { id, weight } => {
            osd::reweight(state, *id, *weight).and_then(|()| done())
        }
        MonCommand::OsdRm { ids } => osd::remove(state, ids).and_then(|()| done()),
        MonCommand::CrushAddBucket { name, type_name } => {
            crush::add_bucket(state, name, type_name).and_then(|()| done())
        }
        MonCommand::CrushMove { name, location } => {
            crush::move_item(state, name, location).and_then(|()| done())
        }
        MonCommand::CrushReweight { name, weight } => {
            crush::reweight(state, name, *weight).and_then(|()| done())
        }
        MonCommand::CrushRemove { name } => crush::remove(state, name).and_then(|()| done()),
        MonCommand::PoolCreate {
            name,
            pg_num,
            size,
            min_size,
            rule,
        } => pool::create(state, name, *pg_num, *size, *min_size, rule),
        MonCommand::PoolSet { name, key, value } => {
            pool::set(state, name, key, value).and_then(|()| done())
        }
        MonCommand::PoolRm { name, confirm } => {
            pool::remove(state, name, confirm).and_then(|()| done())
        }
        MonCommand::PgUpmapItems { pg, items } => {
            pool::upmap_items(state, pg, items).and_then(|()| done())
        }
        MonCommand::RmPgUpmapItems { pg } => {
            pool::upmap_items(state, pg, &[]).and_then(|()| done())
        }
        MonCommand::PgTemp { pg, osds } => pool::pg_temp(state, pg, osds).and_then(|()| done()),
        MonCommand::PgActivated {
            pg,
            interval,
            acting,
        } => pool::pg_activated(state, pg, *interval, acting),
        MonCommand::AuthAdd { name, caps } => auth::add(state, name, caps).and_then(|()| done()),
        MonCommand::AuthCaps { name, caps } => {
            auth::set_caps(state, name, caps).and_then(|()| done())
        }
        MonCommand::AuthRm { name } => auth::remove(state, name).and_then(|()| done()),
        MonCommand::ConfigKeySet { key, value } => {
            check_config_key(key, value)?;
            state.config_keys.insert(key.clone(), value.clone());
            done()
        }
        MonCommand::ConfigKeyRm { key } => match state.config_keys.remove(key) {
            Some(_) => done(),
            None => Err(not_found(format!("config key {key:?} is not set"))),
        },
        other => Err(invalid(format!(
            "{} is not a map change and cannot be applied",
            other.name()
        ))),
    }
}

/// Checks an `auth add` before the leader issues a certificate for it.
pub fn check_auth_add(state: &MonState, name: &str, caps: &str) -> Result<(), CommandError> {
    auth::check_add(state, name, caps).map(|_| ())
}

/// Largest config key name, in bytes.
const MAX_CONFIG_KEY: usize = 256;
/// Largest config value, in bytes.
const MAX_CONFIG_VALUE: usize = 64 * 1024;

fn check_config_key(key: &str, value: &[u8]) -> Result<(), CommandError> {
    if key.is_empty() || key.len() > MAX_CONFIG_KEY {
        return Err(invalid(format!(
            "config key must be 1..={MAX_CONFIG_KEY} bytes"
        )));
    }
    if value.len() > MAX_CONFIG_VALUE {
        return Err(invalid(format!(
            "config value is {} bytes, limit {MAX_CONFIG_VALUE}",
            value.len()
        )));
    }
    Ok(())
}

/// An [`ErrorCode::Invalid`] error.
pub(crate) fn invalid(msg: impl Into<String>) -> CommandError {
    CommandError::new(ErrorCode::Invalid, msg)
}

/// An [`ErrorCode::NotFound`] error.
pub(crate) fn not_found(msg: impl Into<String>) -> CommandError {
    CommandError::new(ErrorCode::NotFound, msg)
}

/// An [`ErrorCode::Busy`] error: the change conflicts with the state.
pub(crate) fn busy(msg: impl Into<String>) -> CommandError {
    CommandError::new(ErrorCode::Busy, msg)
}

/// An [`ErrorCode::Exists`] error.
pub(crate) fn exists(msg: impl Into<String>) -> CommandError {
    CommandError::new(ErrorCode::Exists, msg)
}

/// A 16.16 fixed-point weight from a float in `0..=max`.
pub(crate) fn fixed_weight(w: f64, max: f64, what: &str) -> Result<u32, CommandError> {
    if !w.is_finite() || w < 0.0 || w > max {
        return Err(invalid(format!("{what} {w} must be between 0 and {max}")));
    }
    Ok((w * 65536.0).round() as u32)
}
