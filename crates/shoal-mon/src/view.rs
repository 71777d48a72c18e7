//! What subscription handlers read without going through the driver: the
//! latest maps (encoded), recent incrementals, and whether this monitor is
//! in quorum. The driver updates it after each applied epoch and wakes
//! waiting subscribers through a watch channel.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use shoal_proto::subscribe::{SubscribeReply, SubscribeRequest};
use tokio::sync::watch;

use shoal_map::MonMap;
use shoal_proto::caps::Caps;

use crate::state::{MonState, caps_of};

/// Most incrementals sent in one reply (the subscriber asks again).
const MAX_INCS_PER_REPLY: usize = 100;
/// Most incremental bytes in one reply.
const MAX_INC_BYTES_PER_REPLY: usize = 8 << 20;

#[derive(Default)]
struct Maps {
    epoch: u32,
    full: Arc<Vec<u8>>,
    incrementals: BTreeMap<u32, Arc<Vec<u8>>>,
    monmap_epoch: u32,
    monmap: Arc<Vec<u8>>,
    in_quorum: bool,
    mons: Option<MonMap>,
    auth: BTreeMap<String, Caps>,
}

/// The shared view.
#[derive(Clone)]
pub struct MapView {
    maps: Arc<RwLock<Maps>>,
    epoch_tx: Arc<watch::Sender<u32>>,
}

impl MapView {
    /// A view of `state`.
    pub fn new(state: &MonState) -> MapView {
        let (tx, _) = watch::channel(state.osdmap.epoch());
        let view = MapView {
            maps: Arc::default(),
            epoch_tx: Arc::new(tx),
        };
        view.refresh(state);
        view
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the view up to `state` (after applying or installing a
    /// snapshot) and wakes subscribers when the epoch moved.
    pub fn refresh(&self, state: &MonState) {
        let epoch = state.osdmap.epoch();
        {
            let mut m = self.write();
            if m.epoch != epoch || m.full.is_empty() {
                match state.osdmap.try_encode() {
                    Ok(bytes) => m.full = Arc::new(bytes),
                    Err(e) => tracing::error!(epoch, error = %e, "cannot encode the OSDMap"),
                }
                m.epoch = epoch;
                m.incrementals
                    .retain(|e, _| state.incrementals.contains_key(e));
                for (e, bytes) in state.incrementals.range(..=epoch) {
                    m.incrementals
                        .entry(*e)
                        .or_insert_with(|| Arc::new(bytes.clone()));
                }
            }
            if m.auth != state.auth {
                m.auth = state.auth.clone();
            }
            if m.monmap_epoch != state.monmap.epoch || m.monmap.is_empty() {
                m.mons = Some(state.monmap.clone());
                m.monmap = Arc::new(state.monmap.encode());
                m.monmap_epoch = state.monmap.epoch;
            }
        }
        self.epoch_tx.send_replace(epoch);
    }

    /// Records whether this monitor is in quorum (subscriptions are served
    /// only then).
    pub fn set_in_quorum(&self, in_quorum: bool) {
        let changed = {
            let mut m = self.write();
            let changed = m.in_quorum != in_quorum;
            m.in_quorum = in_quorum;
            changed
        };
        if changed {
            // Wake long polls so they re-check.
            let e = *self.epoch_tx.borrow();
            self.epoch_tx.send_replace(e);
        }
    }

    /// The caps of identity `name` (see [`caps_of`]).
    pub fn caps_of(&self, name: &str) -> Caps {
        let m = self.read();
        m.mons
            .as_ref()
            .map_or_else(Caps::default, |mons| caps_of(mons, &m.auth, name))
    }

    /// The rank of monitor identity `mon.<name>`, if it is one.
    pub fn mon_rank(&self, identity: &str) -> Option<usize> {
        let name = identity.strip_prefix("mon.")?;
        self.read().mons.as_ref()?.rank(name)
    }

    /// Whether this monitor is in quorum.
    pub fn in_quorum(&self) -> bool {
        self.read().in_quorum
    }

    /// The latest epoch.
    pub fn epoch(&self) -> u32 {
        self.read().epoch
    }

    /// Answers a subscription: at once when there is something newer,
    /// else when the next epoch commits or `wait_ms` (capped) passes.
    /// `None` when this monitor is not in quorum.
    pub async fn subscribe(&self, req: &SubscribeRequest) -> Option<SubscribeReply> {
        let mut rx = self.epoch_tx.subscribe();
        let wait = std::time::Duration::from_millis(u64::from(req.wait_ms.min(60_000)));
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let ready = {
                let m = self.read();
                if !m.in_quorum {
                    return None;
                }
                let newer_mon = req.monmap_have < m.monmap_epoch;
                (m.epoch > req.osdmap_have || newer_mon).then(|| Picked::from(&m, req))
            };
            if let Some(picked) = ready {
                return Some(picked.into_reply());
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let picked = {
                    let m = self.read();
                    m.in_quorum.then(|| Picked::from(&m, req))
                };
                return picked.map(Picked::into_reply);
            }
        }
    }
}

/// The maps a subscription reply carries, picked under the view's lock
/// (shared buffers) and copied into the reply after it is released.
struct Picked {
    full: Option<Arc<Vec<u8>>>,
    incrementals: Vec<Arc<Vec<u8>>>,
    monmap: Option<Arc<Vec<u8>>>,
    latest_epoch: u32,
}

impl Picked {
    fn into_reply(self) -> SubscribeReply {
        SubscribeReply {
            full_osdmap: self.full.map(|b| b.to_vec()),
            incrementals: self.incrementals.iter().map(|b| b.to_vec()).collect(),
            monmap: self.monmap.map(|b| b.to_vec()),
            latest_epoch: self.latest_epoch,
        }
    }

    fn from(m: &Maps, req: &SubscribeRequest) -> Picked {
        let mut reply = Picked {
            full: None,
            incrementals: Vec::new(),
            monmap: (req.monmap_have < m.monmap_epoch).then(|| m.monmap.clone()),
            latest_epoch: m.epoch,
        };
        if m.epoch > req.osdmap_have {
            let next = req.osdmap_have + 1;
            let have_incs =
                req.osdmap_have > 0 && (next..=m.epoch).all(|e| m.incrementals.contains_key(&e));
            if have_incs {
                let mut bytes = 0;
                for (_, inc) in m.incrementals.range(next..=m.epoch) {
                    if reply.incrementals.len() >= MAX_INCS_PER_REPLY
                        || (bytes + inc.len() > MAX_INC_BYTES_PER_REPLY
                            && !reply.incrementals.is_empty())
                    {
                        break;
                    }
                    bytes += inc.len();
                    reply.incrementals.push(inc.clone());
                }
            } else {
                reply.full = Some(m.full.clone());
            }
        }
        reply
    }
}
