//! The monitor's disk: Paxos acceptor state, the committed log and
//! snapshots (full state images) in redb. The state machine is not stored
//! separately: a restart rebuilds it from the latest snapshot (or the
//! initial state) plus the log, which Paxos keeps until a snapshot covers
//! it.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use shoal_paxos::{Ballot, LogEntry, Persist, PersistentState, Snapshot};

use crate::error::MonError;
use crate::state::MonState;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("paxos_log");

const KEY_PROMISED: &str = "promised";
const KEY_COMMIT: &str = "commit";
const KEY_SNAPSHOT: &str = "snapshot";
const KEY_INITIAL: &str = "initial_state";
const KEY_NAME: &str = "mon_name";

/// The file inside a monitor's data directory.
pub const STORE_FILE: &str = "mon.redb";

/// A monitor's durable store.
pub struct MonStore {
    db: Database,
}

impl MonStore {
    /// Creates the store of monitor `name` in `dir` with the cluster's
    /// initial state. Refuses to overwrite an existing store.
    pub fn create(dir: &Path, name: &str, initial: &MonState) -> Result<MonStore, MonError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MonError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(STORE_FILE);
        if path.exists() {
            return Err(MonError::Config(format!(
                "{} already exists: this monitor was already created",
                path.display()
            )));
        }
        let db = Database::create(&path)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(KEY_INITIAL, initial.encode()?.as_slice())?;
            meta.insert(KEY_NAME, name.as_bytes())?;
            txn.open_table(LOG)?;
        }
        txn.commit()?;
        Ok(MonStore { db })
    }

    /// Opens the store in `dir`.
    pub fn open(dir: &Path) -> Result<MonStore, MonError> {
        let path = dir.join(STORE_FILE);
        if !path.exists() {
            return Err(MonError::Config(format!(
                "{} does not exist: run shoal-mon --mkfs first",
                path.display()
            )));
        }
        Ok(MonStore {
            db: Database::open(&path)?,
        })
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, MonError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(key)?.map(|v| v.value().to_vec()))
    }

    /// The monitor name this store was created for.
    pub fn mon_name(&self) -> Result<String, MonError> {
        let raw = self
            .meta(KEY_NAME)?
            .ok_or_else(|| MonError::Store("no monitor name recorded".into()))?;
        String::from_utf8(raw).map_err(|_| MonError::Store("monitor name is not UTF-8".into()))
    }

    /// The cluster's initial state (slot 0).
    pub fn initial_state(&self) -> Result<MonState, MonError> {
        let raw = self
            .meta(KEY_INITIAL)?
            .ok_or_else(|| MonError::Store("no initial state recorded".into()))?;
        MonState::decode(&raw)
    }

    /// Everything Paxos persisted, for restarting the core.
    pub fn load(&self) -> Result<PersistentState, MonError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let promised = match meta.get(KEY_PROMISED)? {
            Some(v) => shoal_net::codec::decode::<Ballot>(v.value())?,
            None => Ballot::default(),
        };
        let commit = match meta.get(KEY_COMMIT)? {
            Some(v) => u64::from_le_bytes(
                v.value()
                    .try_into()
                    .map_err(|_| MonError::Store("commit index is not 8 bytes".into()))?,
            ),
            None => 0,
        };
        let snapshot = match meta.get(KEY_SNAPSHOT)? {
            Some(v) => Some(shoal_net::codec::decode::<Snapshot>(v.value())?),
            None => None,
        };
        let log = txn.open_table(LOG)?;
        let mut entries = Vec::new();
        for row in log.iter()? {
            let (_, v) = row?;
            entries.push(shoal_net::codec::decode::<LogEntry>(v.value())?);
        }
        Ok(PersistentState {
            promised,
            commit,
            snapshot,
            entries,
        })
    }

    /// Writes several Paxos persist batches in order as one durable
    /// transaction (group commit).
    pub fn write(&self, batches: &[Persist]) -> Result<(), MonError> {
        if batches.iter().all(Persist::is_empty) {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META)?;
            let mut log = txn.open_table(LOG)?;
            for p in batches {
                if let Some(b) = &p.promised {
                    meta.insert(KEY_PROMISED, shoal_net::codec::encode(b)?.as_ref())?;
                }
                if let Some(c) = p.commit {
                    meta.insert(KEY_COMMIT, c.to_le_bytes().as_slice())?;
                }
                if let Some(s) = &p.snapshot {
                    meta.insert(KEY_SNAPSHOT, shoal_net::codec::encode(s)?.as_ref())?;
                }
                if let Some(t) = p.trim_through {
                    log.retain_in(..=t, |_, _| false)?;
                }
                for e in &p.entries {
                    log.insert(e.slot, shoal_net::codec::encode(e)?.as_ref())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}
