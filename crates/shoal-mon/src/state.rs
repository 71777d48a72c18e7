//! The replicated state machine: everything the monitors agree on, rebuilt
//! on every monitor by applying the same committed batches in order.
//!
//! It is pure and deterministic: applying uses only the batch (including
//! the leader's timestamp in it), never the local clock or randomness, so
//! every monitor ends with byte-identical maps.

use std::collections::{BTreeMap, BTreeSet};

use shoal_map::{MonMap, OsdMap, OsdMapIncremental, PgId};
use shoal_proto::caps::Caps;
use shoal_proto::mon::{CommandError, CommandOutput, ErrorCode, MonResult};

use crate::apply;
use crate::batch::Batch;
use crate::error::MonError;

/// Settings fixed at `--mkfs` that change how state is kept; part of the
/// state so every monitor agrees on them.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct StateSettings {
    /// OSDMap incrementals kept for subscribers.
    pub keep_incrementals: u32,
    /// Remembered request ids per client (for retried commands).
    pub dedup_per_client: u32,
    /// Clients remembered.
    pub dedup_clients: u32,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            keep_incrementals: 500,
            dedup_per_client: 1024,
            dedup_clients: 4096,
        }
    }
}

/// The newest interval of a PG recorded as active, with its chain.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct PgActiveRecord {
    /// The interval's epoch.
    pub epoch: u32,
    /// Its chain.
    pub acting: Vec<i32>,
}

/// Results of recent requests of one client instance.
#[derive(Clone, Debug, Default, PartialEq)]
struct ClientLog {
    /// Slot of the client's latest request (eviction order).
    last_slot: u64,
    results: BTreeMap<u64, MonResult>,
}

/// The monitors' shared state.
#[derive(Clone, Debug, PartialEq)]
pub struct MonState {
    /// Last Paxos slot applied.
    pub applied: u64,
    /// Cluster name (in certificates).
    pub cluster: String,
    /// The monitors.
    pub monmap: MonMap,
    /// The current OSDMap.
    pub osdmap: OsdMap,
    /// Encoded incrementals by the epoch they produce, newest kept.
    pub incrementals: BTreeMap<u32, Vec<u8>>,
    /// Identities and their caps (monitors are implicitly admin).
    pub auth: BTreeMap<String, Caps>,
    /// Config keys.
    pub config_keys: BTreeMap<String, Vec<u8>>,
    /// When each down OSD went down (leader wall clock, ms), for
    /// `down_out_interval`.
    pub down_since: BTreeMap<i32, u64>,
    /// OSDs the monitors marked out after `down_out_interval` (not an
    /// operator): marked in again when they boot.
    pub auto_out: BTreeSet<i32>,
    /// Per PG, the newest interval its head recorded as going active
    /// (peering heads must hear from it before trusting older logs).
    pub pg_active: BTreeMap<PgId, PgActiveRecord>,
    /// Settings fixed at creation.
    pub settings: StateSettings,
    dedup: BTreeMap<u64, ClientLog>,
}

/// The caps of identity `name` given the MonMap and the auth table:
/// monitors (`mon.<name in the MonMap>`) have all, others what `auth`
/// grants, unknown identities none.
pub fn caps_of(monmap: &MonMap, auth: &BTreeMap<String, Caps>, name: &str) -> Caps {
    if let Some(mon) = name.strip_prefix("mon.")
        && monmap.rank(mon).is_some()
    {
        return Caps::ADMIN;
    }
    auth.get(name).copied().unwrap_or_default()
}

/// The outcome of one applied transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// Request id (`client_id`, `tid`).
    pub key: (u64, u64),
    /// Its result.
    pub result: MonResult,
}

impl MonState {
    /// A new cluster's state at slot 0.
    pub fn new(
        cluster: &str,
        monmap: MonMap,
        osdmap: OsdMap,
        auth: BTreeMap<String, Caps>,
        settings: StateSettings,
    ) -> Self {
        MonState {
            applied: 0,
            cluster: cluster.to_string(),
            monmap,
            osdmap,
            incrementals: BTreeMap::new(),
            auth,
            config_keys: BTreeMap::new(),
            down_since: BTreeMap::new(),
            auto_out: BTreeSet::new(),
            pg_active: BTreeMap::new(),
            settings,
            dedup: BTreeMap::new(),
        }
    }

    /// The caps of identity `name`: monitors (`mon.<name in the MonMap>`)
    /// have all; others what `auth` grants; unknown identities none.
    pub fn caps_of(&self, name: &str) -> Caps {
        caps_of(&self.monmap, &self.auth, name)
    }

    /// The stored result of a request already applied, if remembered.
    pub fn dedup_result(&self, client_id: u64, tid: u64) -> Option<&MonResult> {
        self.dedup.get(&client_id)?.results.get(&tid)
    }

    /// Applies one committed batch at `slot`. Each transaction applies
    /// whole or not at all; the OSDMap changes of the batch form one new
    /// epoch. Returns every transaction's result.
    pub fn apply_batch(&mut self, slot: u64, batch: &Batch) -> Vec<Applied> {
        let old_map = self.osdmap.clone();
        let mut results = Vec::with_capacity(batch.txns.len());
        // Whether each result comes from applying here (not a retry's
        // remembered answer).
        let mut fresh = Vec::with_capacity(batch.txns.len());
        for txn in &batch.txns {
            let key = (txn.client_id, txn.tid);
            if txn.client_id != 0
                && let Some(prev) = self.dedup_result(txn.client_id, txn.tid)
            {
                results.push(Applied {
                    key,
                    result: prev.clone(),
                });
                fresh.push(false);
                continue;
            }
            fresh.push(true);
            let result = MonResult::from(apply::apply(self, txn));
            if txn.client_id != 0 {
                self.remember(slot, key, &result);
            }
            results.push(Applied { key, result });
        }
        if self.osdmap != old_map {
            let epoch = old_map.epoch() + 1;
            self.osdmap.set_epoch(epoch);
            let inc = OsdMap::diff(&old_map, &self.osdmap);
            match inc.try_encode() {
                Ok(bytes) => {
                    self.incrementals.insert(epoch, bytes);
                }
                Err(e) => tracing::error!(epoch, error = %e, "cannot encode incremental"),
            }
            while self.incrementals.len() > self.settings.keep_incrementals as usize {
                self.incrementals.pop_first();
            }
            // The batch's changes are in `epoch`: say so in the answers and
            // in what retries will be answered.
            for (r, _) in results.iter_mut().zip(&fresh).filter(|(_, f)| **f) {
                if let MonResult::Ok(CommandOutput::Done { epoch: e }) = &mut r.result {
                    *e = epoch;
                    if let Some(stored) = self
                        .dedup
                        .get_mut(&r.key.0)
                        .and_then(|log| log.results.get_mut(&r.key.1))
                    {
                        *stored = r.result.clone();
                    }
                }
            }
            // A retry within this batch answers what its original now says.
            for (r, _) in results.iter_mut().zip(&fresh).filter(|(_, f)| !**f) {
                if let Some(stored) = self.dedup_result(r.key.0, r.key.1) {
                    r.result = stored.clone();
                }
            }
        }
        self.applied = slot;
        results
    }

    /// Records a result for retries; a retried Keyring answer does not
    /// repeat the private key.
    fn remember(&mut self, slot: u64, key: (u64, u64), result: &MonResult) {
        let stored = match result {
            MonResult::Ok(CommandOutput::Keyring(k)) => MonResult::Err(CommandError::new(
                ErrorCode::Exists,
                format!(
                    "{} was created by this request; its key was returned to the first attempt only",
                    k.name
                ),
            )),
            r => r.clone(),
        };
        let per_client = self.settings.dedup_per_client.max(1) as usize;
        let log = self.dedup.entry(key.0).or_default();
        log.last_slot = slot;
        log.results.insert(key.1, stored);
        while log.results.len() > per_client {
            log.results.pop_first();
        }
        while self.dedup.len() > self.settings.dedup_clients.max(1) as usize {
            let oldest = self
                .dedup
                .iter()
                .min_by_key(|(id, l)| (l.last_slot, **id))
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.dedup.remove(&id),
                None => break,
            };
        }
    }

    /// Encodes the whole state (a Paxos snapshot).
    pub fn encode(&self) -> Result<Vec<u8>, MonError> {
        let image = StateImage {
            applied: self.applied,
            cluster: self.cluster.clone(),
            monmap: self.monmap.encode(),
            osdmap: self.osdmap.try_encode()?,
            incrementals: self
                .incrementals
                .iter()
                .map(|(&epoch, bytes)| EpochBlob {
                    epoch,
                    bytes: bytes.clone(),
                })
                .collect(),
            auth: self
                .auth
                .iter()
                .map(|(name, caps)| AuthRecord {
                    name: name.clone(),
                    caps: *caps,
                })
                .collect(),
            config_keys: self
                .config_keys
                .iter()
                .map(|(key, value)| ConfigRecord {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            down_since: self.down_since.iter().map(|(&k, &v)| (k, v)).collect(),
            auto_out: self.auto_out.iter().copied().collect(),
            pg_active: self
                .pg_active
                .iter()
                .map(|(pg, r)| (*pg, r.clone()))
                .collect(),
            settings: self.settings.clone(),
            dedup: self
                .dedup
                .iter()
                .map(|(&client_id, log)| DedupRecord {
                    client_id,
                    last_slot: log.last_slot,
                    results: log.results.iter().map(|(&t, r)| (t, r.clone())).collect(),
                })
                .collect(),
        };
        Ok(shoal_net::codec::encode(&image)?.to_vec())
    }

    /// Decodes a state produced by [`MonState::encode`], validating it.
    pub fn decode(bytes: &[u8]) -> Result<MonState, MonError> {
        let image: StateImage = shoal_net::codec::decode(bytes)?;
        let mut incrementals = BTreeMap::new();
        for blob in image.incrementals {
            OsdMapIncremental::decode(&blob.bytes)?;
            incrementals.insert(blob.epoch, blob.bytes);
        }
        Ok(MonState {
            applied: image.applied,
            cluster: image.cluster,
            monmap: MonMap::decode(&image.monmap)?,
            osdmap: OsdMap::decode(&image.osdmap)?,
            incrementals,
            auth: image.auth.into_iter().map(|a| (a.name, a.caps)).collect(),
            config_keys: image
                .config_keys
                .into_iter()
                .map(|c| (c.key, c.value))
                .collect(),
            down_since: image.down_since.into_iter().collect(),
            auto_out: image.auto_out.into_iter().collect(),
            pg_active: image.pg_active.into_iter().collect(),
            settings: image.settings,
            dedup: image
                .dedup
                .into_iter()
                .map(|d| {
                    (
                        d.client_id,
                        ClientLog {
                            last_slot: d.last_slot,
                            results: d.results.into_iter().collect(),
                        },
                    )
                })
                .collect(),
        })
    }
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct StateImage {
    applied: u64,
    cluster: String,
    monmap: Vec<u8>,
    osdmap: Vec<u8>,
    incrementals: Vec<EpochBlob>,
    auth: Vec<AuthRecord>,
    config_keys: Vec<ConfigRecord>,
    down_since: Vec<(i32, u64)>,
    auto_out: Vec<i32>,
    pg_active: Vec<(PgId, PgActiveRecord)>,
    settings: StateSettings,
    dedup: Vec<DedupRecord>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct EpochBlob {
    epoch: u32,
    bytes: Vec<u8>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct AuthRecord {
    name: String,
    caps: Caps,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct ConfigRecord {
    key: String,
    value: Vec<u8>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct DedupRecord {
    client_id: u64,
    last_slot: u64,
    results: Vec<(u64, MonResult)>,
}
