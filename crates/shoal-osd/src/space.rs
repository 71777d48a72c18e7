//! Full stores: an OSD whose store use reaches `[osd] full_ratio` says so
//! in its heartbeats, and a PG's head refuses writes while any member of
//! its chain is full — with a clear `NoSpace` error, before the write
//! reaches any store — while reads and removes go on (removes are how
//! space comes back). The ratio leaves room for writes already in flight,
//! so a member's store is not the one that finds out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use shoal_proto::osd::{ObjOp, OsdErrorCode};
use shoal_store::StatFs;

use crate::exec::OpError;

/// This OSD's fullness and what its peers said of theirs.
#[derive(Debug)]
pub struct Space {
    whoami: i32,
    full_ratio: f64,
    full: AtomicBool,
    peers: Mutex<HashMap<i32, bool>>,
}

impl Space {
    /// Nothing full yet; `full_ratio` of the store's capacity makes it full.
    pub fn new(whoami: i32, full_ratio: f64) -> Self {
        Space {
            whoami,
            full_ratio,
            full: AtomicBool::new(false),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Re-evaluates this OSD's store from its usage now.
    pub fn update(&self, fs: &StatFs) {
        let full = fs.total > 0 && fs.used as f64 >= self.full_ratio * fs.total as f64;
        if self.full.swap(full, Ordering::Relaxed) != full {
            if full {
                tracing::warn!(
                    used = fs.used,
                    total = fs.total,
                    ratio = self.full_ratio,
                    "store full: writes to this OSD's PGs are refused"
                );
            } else {
                tracing::info!(used = fs.used, total = fs.total, "store no longer full");
            }
        }
    }

    /// Whether this OSD's store is full.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Records what peer `osd` said of its store.
    pub fn note_peer(&self, osd: i32, full: bool) {
        let mut peers = match self.peers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        peers.insert(osd, full);
    }

    /// Whether OSD `osd`'s store is full (this one's as measured, a
    /// peer's as it last said).
    pub fn full(&self, osd: i32) -> bool {
        if osd == self.whoami {
            return self.is_full();
        }
        let peers = match self.peers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        peers.get(&osd).copied().unwrap_or(false)
    }
}

/// The refusal of a write to a PG whose member `m` is full.
pub fn full_error(m: i32) -> OpError {
    OpError::new(
        OsdErrorCode::NoSpace,
        format!(
            "osd.{m} is full: writes to this PG are refused until space is freed (reads and removes work)"
        ),
    )
}

/// Whether a write only removes (which a full cluster must still allow):
/// at least one `Remove`, and otherwise only guards.
pub fn frees_space(ops: &[ObjOp]) -> bool {
    ops.iter().any(|o| matches!(o, ObjOp::Remove))
        && ops
            .iter()
            .all(|o| matches!(o, ObjOp::Remove) || o.is_guard())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::osd::XattrCmp;

    fn fs(used: u64) -> StatFs {
        StatFs {
            total: 100,
            used,
            available: 100 - used,
            reserve: 0,
        }
    }

    #[test]
    fn fullness_is_this_osds_measure_and_what_peers_said() {
        let s = Space::new(1, 0.9);
        assert!(!s.full(1) && !s.full(2));
        s.update(&fs(90));
        assert!(s.is_full() && s.full(1));
        s.update(&fs(50));
        assert!(!s.full(1));
        s.note_peer(3, true);
        assert!(s.full(3) && !s.full(2));
        s.note_peer(3, false);
        assert!(!s.full(3));
        let OpError { code, message: msg } = full_error(3);
        assert_eq!(code, OsdErrorCode::NoSpace);
        assert!(msg.contains("osd.3"), "{msg}");
    }

    #[test]
    fn only_removes_pass_a_full_chain() {
        assert!(frees_space(&[ObjOp::Remove]));
        let guard = ObjOp::CmpXattr {
            key: "k".into(),
            cmp: XattrCmp::Absent,
        };
        assert!(frees_space(&[guard.clone(), ObjOp::Remove]));
        assert!(!frees_space(&[guard]));
        assert!(!frees_space(&[ObjOp::OmapClear]));
        assert!(!frees_space(&[]));
    }
}
