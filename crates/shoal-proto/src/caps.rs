//! Capabilities of an identity, as granted by `shoal auth add NAME CAPS`.
//!
//! Text form: comma-separated `SERVICE ACCESS` pairs, e.g. `mon rw, osd rw`.
//! `mon r` reads maps and status; `mon rw` also changes them; `mon osd` is
//! the OSD daemon profile (boot, beacon and report failures for its own id,
//! read maps); `osd r|rw` is checked by the OSDs for data access.

use std::fmt;
use std::str::FromStr;

use rkyv::{Archive, Deserialize, Serialize};
use thiserror::Error;

/// Access level to one service.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Nothing.
    #[default]
    None,
    /// Read only.
    R,
    /// Read and write.
    Rw,
}

/// What an identity may do.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct Caps {
    /// Access to the monitors' maps and commands.
    pub mon: Access,
    /// The OSD daemon profile at the monitors (boot/beacon/failure reports
    /// for the identity's own OSD id, map reads).
    pub mon_osd_profile: bool,
    /// Access to object data on the OSDs.
    pub osd: Access,
}

/// A caps string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad caps {text:?}: {reason} (expected e.g. \"mon rw, osd rw\", \"mon r\", \"mon osd\")")]
pub struct CapsError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Caps {
    /// Everything: the `client.admin` and monitor identities.
    pub const ADMIN: Caps = Caps {
        mon: Access::Rw,
        mon_osd_profile: true,
        osd: Access::Rw,
    };

    /// Whether these caps allow reading monitor state.
    pub fn can_read_mon(&self) -> bool {
        self.mon >= Access::R || self.mon_osd_profile
    }

    /// Whether these caps allow changing monitor state.
    pub fn can_write_mon(&self) -> bool {
        self.mon == Access::Rw
    }
}

impl FromStr for Caps {
    type Err = CapsError;

    fn from_str(text: &str) -> Result<Caps, CapsError> {
        let err = |reason: &str| CapsError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let mut caps = Caps::default();
        let mut any = false;
        for part in text
            .split([',', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let mut words = part.split_whitespace();
            let (Some(service), Some(access), None) = (words.next(), words.next(), words.next())
            else {
                return Err(err(&format!("{part:?} is not \"SERVICE ACCESS\"")));
            };
            let access_level = match access {
                "r" => Some(Access::R),
                "rw" => Some(Access::Rw),
                _ => None,
            };
            match (service, access_level) {
                ("mon", Some(a)) => caps.mon = caps.mon.max(a),
                ("mon", None) if access == "osd" => caps.mon_osd_profile = true,
                ("osd", Some(a)) => caps.osd = caps.osd.max(a),
                ("mon" | "osd", None) => {
                    return Err(err(&format!("unknown access {access:?}")));
                }
                _ => return Err(err(&format!("unknown service {service:?}"))),
            }
            any = true;
        }
        if !any {
            return Err(err("no capabilities given"));
        }
        Ok(caps)
    }
}

impl fmt::Display for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.mon {
            Access::None => {}
            Access::R => parts.push("mon r"),
            Access::Rw => parts.push("mon rw"),
        }
        if self.mon_osd_profile {
            parts.push("mon osd");
        }
        match self.osd {
            Access::None => {}
            Access::R => parts.push("osd r"),
            Access::Rw => parts.push("osd rw"),
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let c: Caps = "mon rw, osd rw".parse().unwrap();
        assert_eq!(c.mon, Access::Rw);
        assert_eq!(c.osd, Access::Rw);
        assert!(!c.mon_osd_profile);
        assert_eq!(c.to_string(), "mon rw, osd rw");
        let r: Caps = "mon r".parse().unwrap();
        assert!(r.can_read_mon() && !r.can_write_mon());
        let o: Caps = "mon osd; osd rw".parse().unwrap();
        assert!(o.mon_osd_profile && o.can_read_mon() && !o.can_write_mon());
        assert_eq!(o.to_string().parse::<Caps>().unwrap(), o);
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "mon", "mon rwx", "disk rw", "mon rw extra", " , "] {
            assert!(bad.parse::<Caps>().is_err(), "{bad:?}");
        }
    }
}
