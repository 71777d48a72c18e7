//! The write pipeline: a staging thread and a commit thread.
//!
//! The staging thread takes transactions as they come and stages them into
//! the *building* batch, against a read snapshot plus the changes of the
//! batch being committed (its overlay). When the commit thread is free it
//! gets the building batch, so a batch collects every transaction that
//! arrived while the previous one was committing: the fixed cost of a
//! commit (one log append and sync) is shared by more transactions the
//! busier the store is, and staging runs while the previous batch syncs.
//!
//! A transaction that fails to stage is answered at once (it changed
//! nothing). The others are answered when their batch is durable. If a
//! batch fails to commit, the batch staged on top of it fails too.

use std::sync::{Arc, mpsc};

use redb::Durability;
use tokio::sync::oneshot;

use crate::deferred::Writer;
use crate::error::{Result, StoreError};
use crate::stage::{BatchCtx, Building, Overlay};
use crate::store::{Request, Shared, lock};
use crate::wal::{self, Wal};

/// What the staging thread hears.
pub(crate) enum Msg {
    /// A transaction to stage.
    Txn(Request),
    /// The commit thread finished a batch (`true`: durable).
    Committed(bool),
    /// The store is closing: finish what was submitted, then stop.
    Stop,
}

/// A staged batch handed to the commit thread.
struct Job {
    overlay: Arc<Overlay>,
    replies: Vec<oneshot::Sender<Result<()>>>,
    frees: Vec<(u64, u64)>,
    allocated: Vec<(u64, u64)>,
}

/// A batch being staged and the transactions waiting for it.
struct Pending {
    building: Building,
    replies: Vec<oneshot::Sender<Result<()>>>,
}

/// Runs the staging thread until [`Msg::Stop`] and every batch is done.
pub(crate) fn stage_loop(
    shared: &Arc<Shared>,
    rx: &mpsc::Receiver<Msg>,
    done: mpsc::Sender<Msg>,
    writer: Writer,
    max_group: usize,
) -> std::io::Result<()> {
    let (jobs, job_rx) = mpsc::channel::<Job>();
    let worker = shared.clone();
    let committer = std::thread::Builder::new()
        .name("shoal-store-commit".into())
        .spawn(move || {
            for job in job_rx {
                // A bug here must not leave the staging thread waiting for
                // an answer forever: the store stops taking writes instead.
                let run = std::panic::AssertUnwindSafe(|| worker.commit_job(&writer, job));
                let ok = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                    *lock(&worker.failed) = Some("the commit thread panicked".into());
                    false
                });
                let _ = done.send(Msg::Committed(ok));
            }
            // A clean close leaves nothing to replay.
            if lock(&worker.failed).is_none()
                && let Err(e) = worker.checkpoint(&mut lock(&worker.wal))
            {
                tracing::warn!(error = %e, "final checkpoint failed; the log replays at open");
            }
        })?;
    let mut in_flight: Option<Arc<Overlay>> = None;
    let mut pending: Option<Pending> = None;
    let mut stopping = false;
    loop {
        if in_flight.is_none() {
            if let Some(p) = pending.take() {
                let Building {
                    changes,
                    pending: writes,
                    frees,
                    allocated,
                    ..
                } = p.building;
                let overlay = Arc::new(Overlay::new(changes, writes));
                in_flight = Some(overlay.clone());
                let job = Job {
                    overlay,
                    replies: p.replies,
                    frees,
                    allocated,
                };
                if jobs.send(job).is_err() {
                    break;
                }
            } else if stopping {
                break;
            }
        }
        let Ok(msg) = rx.recv() else { break };
        let mut committed = None;
        match msg {
            Msg::Committed(ok) => committed = Some(ok),
            Msg::Stop => stopping = true,
            Msg::Txn(first) => {
                let mut group = vec![first];
                while group.len() < max_group {
                    match rx.try_recv() {
                        Ok(Msg::Txn(r)) => group.push(r),
                        Ok(Msg::Committed(ok)) => {
                            committed = Some(ok);
                            break;
                        }
                        Ok(Msg::Stop) => {
                            stopping = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                shared.stage_group(&mut pending, in_flight.clone(), group);
            }
        }
        if let Some(ok) = committed {
            in_flight = None;
            if !ok && let Some(p) = pending.take() {
                shared.fail_pending(p);
            }
        }
    }
    drop(jobs);
    let _ = committer.join();
    Ok(())
}

impl Shared {
    /// Stages `group` into the building batch (started if there is none).
    fn stage_group(
        &self,
        pending: &mut Option<Pending>,
        prev: Option<Arc<Overlay>>,
        group: Vec<Request>,
    ) {
        if pending.is_none() {
            match Building::new(&self.db, prev) {
                Ok(building) => {
                    *pending = Some(Pending {
                        building,
                        replies: Vec::new(),
                    })
                }
                Err(e) => {
                    let msg = e.to_string();
                    for r in group {
                        let _ = r.reply.send(Err(StoreError::Meta(msg.clone())));
                    }
                    return;
                }
            }
        }
        let Some(p) = pending.as_mut() else { return };
        if let Some(why) = lock(&self.failed).clone() {
            for r in group {
                let _ = r.reply.send(Err(StoreError::Meta(why.clone())));
            }
            return;
        }
        let recent = lock(&self.recent);
        let mut alloc = lock(&self.alloc);
        let mut ctx = BatchCtx {
            b: &mut p.building,
            dev: self.dev.as_ref(),
            alloc: &mut alloc,
            chunk_size: self.chunk_size,
            reserve: self.reserve,
            recent: &recent,
        };
        if let Err(e) = ctx.prefetch(group.iter().map(|r| &r.txn)) {
            // Only a speed-up: staging reads what it needs itself.
            tracing::debug!(error = %e, "prefetch failed");
        }
        for mut r in group {
            match ctx.apply(&r.txn, &mut r.prepared) {
                Ok(()) => p.replies.push(r.reply),
                Err(e) => {
                    let _ = r.reply.send(Err(e));
                }
            }
        }
    }

    /// Fails a batch staged on top of one that did not commit.
    fn fail_pending(&self, p: Pending) {
        let mut a = lock(&self.alloc);
        for (s, l) in p.building.allocated {
            a.release(s, l);
        }
        for reply in p.replies {
            let _ = reply.send(Err(StoreError::Meta(
                "batch commit failed (an earlier batch did not commit)".into(),
            )));
        }
    }

    /// Commits one batch and answers its transactions; `true` when durable.
    fn commit_job(&self, writer: &Writer, job: Job) -> bool {
        let failed = lock(&self.failed).clone();
        let result = match failed {
            Some(why) => Err(StoreError::Meta(why)),
            None => {
                self.release_deferred(None);
                self.try_commit(writer, &job.overlay)
            }
        };
        match result {
            Ok(()) => {
                {
                    let mut recent = lock(&self.recent);
                    let o = &job.overlay;
                    for (start, buf) in o.small.iter().chain(o.large.iter()) {
                        recent.remember(*start, buf);
                    }
                }
                // Freed space is counted free by the time the writer hears.
                self.release_deferred(Some(job.frees));
                for reply in job.replies {
                    let _ = reply.send(Ok(()));
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, transactions = job.replies.len(), "commit failed");
                // Nothing became visible: the batch's space is free again.
                let mut a = lock(&self.alloc);
                for (s, l) in job.allocated {
                    a.release(s, l);
                }
                let msg = e.to_string();
                for reply in job.replies {
                    let _ =
                        reply.send(Err(StoreError::Meta(format!("batch commit failed: {msg}"))));
                }
                false
            }
        }
    }

    /// Makes a batch durable: large extents written and synced, then one
    /// log record (metadata changes and small extents) appended and synced;
    /// then its changes go into redb (visible, persisted by the next
    /// checkpoint) while the small extents are written to the device.
    fn try_commit(&self, writer: &Writer, overlay: &Overlay) -> Result<()> {
        let batch = overlay.changes.to_wal(&overlay.small)?;
        let body = batch.encode()?;
        let mut wal = lock(&self.wal);
        if wal.checkpoint_due(body.len() as u64) {
            self.checkpoint(&mut wal)?;
        }
        if !overlay.large.is_empty() {
            self.dev.write_all(&overlay.large)?;
            self.dev.sync()?;
        }
        let mut wtx = self.db.begin_write()?;
        wtx.set_durability(Durability::None)?;
        batch.apply(&wtx)?;
        *lock(&self.landing) = Some(overlay.small.clone());
        let written = writer.start(overlay.small.clone());
        if let Err(e) = wal.append(&body) {
            // Not durable and not visible; the device writes went to free
            // space.
            let _ = written.wait();
            *lock(&self.landing) = None;
            return Err(e);
        }
        // From here the batch is durable: a failure to make it visible or
        // to write its data stops the store (the next open replays it).
        let visible = wtx.commit().map_err(StoreError::from);
        let landed = written.wait().map_err(StoreError::from);
        if let Err(e) = visible.and(landed) {
            let why = format!("a durable batch could not be applied: {e}");
            tracing::error!(error = %e, "a logged batch could not be applied; the store stops accepting writes");
            *lock(&self.failed) = Some(why.clone());
            return Err(StoreError::Meta(why));
        }
        *lock(&self.landing) = None;
        Ok(())
    }

    /// Makes redb's state durable up to the last logged batch: the device
    /// is synced (logged extents are on it), then redb commits durably,
    /// recording the log position; the log before it becomes free.
    pub(crate) fn checkpoint(&self, wal: &mut Wal) -> Result<()> {
        if !wal.dirty() {
            return Ok(());
        }
        self.dev.sync()?;
        let mut wtx = self.db.begin_write()?;
        wtx.set_durability(Durability::Immediate)?;
        wal::write_checkpoint(&wtx, wal.position())?;
        wtx.commit()?;
        wal.checkpointed();
        Ok(())
    }
}
