//! Identities and their caps.

use shoal_proto::caps::Caps;
use shoal_proto::mon::CommandError;

use super::{exists, invalid, not_found};
use crate::state::MonState;

/// Checks an identity name for `auth add`: a valid certificate name, not a
/// monitor's.
pub fn check_name(name: &str) -> Result<(), CommandError> {
    shoal_net::identity::validate_identity_name(name).map_err(|e| invalid(e.to_string()))?;
    if name.starts_with("mon.") {
        return Err(invalid(
            "monitor identities are created by shoal-mon --mkfs",
        ));
    }
    Ok(())
}

fn parse_caps(caps: &str) -> Result<Caps, CommandError> {
    caps.parse::<Caps>().map_err(|e| invalid(e.to_string()))
}

/// Checks an `auth add`: name, caps, not taken. The leader runs it before
/// issuing a certificate, and applying runs it again on the state of the
/// moment.
pub fn check_add(state: &MonState, name: &str, caps: &str) -> Result<Caps, CommandError> {
    check_name(name)?;
    let caps = parse_caps(caps)?;
    if state.auth.contains_key(name) {
        return Err(exists(format!("identity {name} already exists")));
    }
    Ok(caps)
}

/// Records a new identity (the leader issued its certificate).
pub fn add(state: &mut MonState, name: &str, caps: &str) -> Result<(), CommandError> {
    let caps = check_add(state, name, caps)?;
    state.auth.insert(name.to_string(), caps);
    Ok(())
}

/// Changes an identity's caps.
pub fn set_caps(state: &mut MonState, name: &str, caps: &str) -> Result<(), CommandError> {
    let caps = parse_caps(caps)?;
    let entry = state
        .auth
        .get_mut(name)
        .ok_or_else(|| not_found(format!("no identity {name}")))?;
    *entry = caps;
    Ok(())
}

/// Removes an identity: its certificate then grants nothing.
pub fn remove(state: &mut MonState, name: &str) -> Result<(), CommandError> {
    state
        .auth
        .remove(name)
        .map(|_| ())
        .ok_or_else(|| not_found(format!("no identity {name}")))
}
