//! The garbage collector: removes the data that bucket indexes mark as
//! garbage (`d` entries once due), gives up uploads that never finished
//! (`p` entries older than the upload grace) and clears the indexes of
//! deleted buckets (objects from writes that raced the delete, multipart
//! uploads left in them).
//!
//! Every gateway runs one; they may work on the same entries at once,
//! since each step is idempotent (removing removed data is a no-op) or
//! guarded (a `p` entry is given up only if it is unchanged).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_client::{ClientError, WriteOp, XattrCmp};

use super::buckets::{BucketRecord, Buckets};
use super::change::Change;
use super::index::{
    DOOMED, Index, OBJECT, PENDING, PendingRecord, UPLOAD, doomed_key, parse_doomed_key,
};
use super::record::ObjectRecord;
use super::uploads::split_upload_name;
use super::versions::{HEAD, VERSION};
use super::{Pools, guarded_write, now_ms, omap_all, omap_page};
use crate::error::ModelError;

/// The omap object listing deleted buckets whose indexes are not cleared
/// yet: bucket id -> [`DeletedBucket`].
pub const DELETED_BUCKETS: &str = "gc.buckets";

/// Entries handled per shard and pass (the rest wait for the next pass).
const BATCH: u32 = 1000;

/// A deleted bucket whose index the collector still has to clear.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeletedBucket {
    /// The bucket as it was.
    pub bucket: BucketRecord,
    /// When it was deleted (ms since the epoch).
    pub deleted_ms: u64,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Data objects removed.
    pub removed: u64,
    /// Unfinished uploads given up.
    pub abandoned: u64,
    /// Index shard objects of deleted buckets removed.
    pub shards_removed: u64,
}

/// Removes garbage for one gateway.
#[derive(Clone)]
pub struct Collector {
    pools: Pools,
    buckets: Buckets,
    upload_grace_ms: u64,
}

impl Collector {
    /// A collector that gives uploads up after `upload_grace_ms`.
    pub fn new(pools: Pools, upload_grace_ms: u64) -> Self {
        Collector {
            buckets: Buckets::new(pools.clone()),
            pools,
            upload_grace_ms,
        }
    }

    /// Runs a pass every `interval` until the task is dropped.
    pub async fn run(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.pass().await {
                Ok(s) if s != GcStats::default() => tracing::info!(
                    removed = s.removed,
                    abandoned = s.abandoned,
                    shards_removed = s.shards_removed,
                    "garbage collected"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "garbage collection pass failed"),
            }
        }
    }

    /// One pass over every bucket, live and deleted.
    pub async fn pass(&self) -> Result<GcStats, ModelError> {
        let mut stats = GcStats::default();
        for bucket in self.buckets.list_all().await? {
            let index = bucket.index(&self.pools);
            for shard in index.shard_objects() {
                self.collect_shard(&index, &shard, &mut stats).await?;
            }
        }
        for (id, raw) in omap_all(&self.pools.meta, DELETED_BUCKETS, b"").await? {
            let deleted: DeletedBucket = serde_json::from_slice(&raw)
                .map_err(|e| ModelError::corrupt("deleted bucket", e))?;
            self.clear_deleted(&id, &deleted, &mut stats).await?;
        }
        Ok(stats)
    }

    /// Gives up stale uploads and removes due garbage of one shard.
    async fn collect_shard(
        &self,
        index: &Index,
        shard: &str,
        stats: &mut GcStats,
    ) -> Result<(), ModelError> {
        let now = now_ms();
        for (pkey, value) in index.garbage_page(shard, PENDING, BATCH).await? {
            let Ok(p) = serde_json::from_slice::<PendingRecord>(&value) else {
                tracing::warn!(shard, "unparsable pending entry left alone");
                continue;
            };
            if p.started_ms.saturating_add(self.upload_grace_ms) > now {
                continue;
            }
            let data = String::from_utf8_lossy(&pkey[1..]).into_owned();
            let op = WriteOp::new()
                .cmp_omap(pkey.clone(), XattrCmp::Eq(value))
                .omap_remove(vec![pkey])
                .omap_set(vec![(doomed_key(now, &data), Vec::new())]);
            if guarded_write(&self.pools.meta, shard, op).await? {
                tracing::info!(key = %p.key, data, "gave up an unfinished upload");
                stats.abandoned += 1;
            }
        }
        for (dkey, _) in index.garbage_page(shard, DOOMED, BATCH).await? {
            let Some((due, data)) = parse_doomed_key(&dkey) else {
                continue;
            };
            if due > now {
                break; // `d` entries sort by due time
            }
            // Also the pieces of an upload whose writer died before its head.
            self.pools.data.remove_fresh(&data).await?;
            self.pools
                .meta
                .write_op(shard, WriteOp::new().omap_remove(vec![dkey]))
                .await?;
            stats.removed += 1;
        }
        Ok(())
    }

    /// Clears a deleted bucket's index once no upload to it can still be
    /// running: its objects (from writes that raced the delete) become
    /// garbage, and empty shard objects are removed.
    async fn clear_deleted(
        &self,
        id: &[u8],
        deleted: &DeletedBucket,
        stats: &mut GcStats,
    ) -> Result<(), ModelError> {
        // A delete that lost a race leaves the bucket live: never clear it.
        match self.buckets.get(&deleted.bucket.name).await {
            Ok(live) if live.id == deleted.bucket.id => {
                return self.forget_deleted(id).await;
            }
            Ok(_) | Err(ModelError::NoSuchBucket(_)) => {}
            Err(e) => return Err(e),
        }
        let index = deleted.bucket.index(&self.pools);
        let settled = deleted.deleted_ms.saturating_add(self.upload_grace_ms) <= now_ms();
        let mut remaining = 0;
        for shard in index.shard_objects() {
            self.collect_shard(&index, &shard, stats).await?;
            if !settled {
                remaining += 1;
                continue;
            }
            let objects = self.purge_objects(&shard).await?;
            let (uploads, _) = omap_page(&self.pools.meta, &shard, None, &[UPLOAD], BATCH).await?;
            for (ukey, _) in &uploads {
                let name = String::from_utf8_lossy(&ukey[1..]).into_owned();
                if let Some((key, id)) = split_upload_name(&name) {
                    match index.abort_upload(key, id).await {
                        Ok(()) | Err(ModelError::NoSuchUpload(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            let (left, _) = omap_page(&self.pools.meta, &shard, None, b"", 1).await?;
            if !left.is_empty() || objects > 0 || !uploads.is_empty() {
                remaining += 1;
                continue;
            }
            match self
                .pools
                .meta
                .write_op(&shard, WriteOp::new().remove())
                .await
            {
                Ok(_) => stats.shards_removed += 1,
                Err(ClientError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if remaining == 0 {
            self.forget_deleted(id).await?;
        }
        Ok(())
    }

    /// Drops a batch of a deleted bucket's objects and versions from one
    /// shard, their data becoming garbage in the same op (no write can
    /// race: the bucket is gone and its uploads settled). The number of
    /// entries dropped.
    async fn purge_objects(&self, shard: &str) -> Result<usize, ModelError> {
        let mut change = Change::default();
        let mut dropped = 0;
        for kind in [OBJECT, VERSION, HEAD] {
            let (entries, _) = omap_page(&self.pools.meta, shard, None, &[kind], BATCH).await?;
            for (k, raw) in entries {
                // `o` of a versioned key repeats its latest `v` entry.
                if kind != HEAD {
                    match serde_json::from_slice::<ObjectRecord>(&raw) {
                        Ok(r) if kind == VERSION || r.version_id.is_none() => {
                            change.doom(&r, now_ms())
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(shard, error = %e, "unparsable entry dropped"),
                    }
                }
                change.remove(k);
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.pools.meta.write_op(shard, change.into_op()).await?;
        }
        Ok(dropped)
    }

    async fn forget_deleted(&self, id: &[u8]) -> Result<(), ModelError> {
        self.pools
            .meta
            .write_op(
                DELETED_BUCKETS,
                WriteOp::new().omap_remove(vec![id.to_vec()]),
            )
            .await?;
        Ok(())
    }
}
