//! The disk writer: a thread that writes Paxos persist batches in order,
//! several per redb transaction when they queue up (group commit), and
//! reports the highest ready number made durable.

use std::sync::mpsc;

use shoal_paxos::Persist;
use tokio::sync::mpsc::UnboundedSender;

use crate::error::MonError;
use crate::store::MonStore;

/// A batch to write, tagged with its ready number.
pub struct WriteJob {
    /// The ready it came from.
    pub number: u64,
    /// What to write.
    pub persist: Persist,
}

/// Outcome reported back to the driver.
pub enum WriteDone {
    /// Everything up to this ready number is durable.
    Durable(u64),
    /// The disk failed: the monitor must stop (it cannot keep promises).
    Failed(MonError),
}

/// Starts the writer thread; returns the job queue.
pub fn spawn(
    store: MonStore,
    done: UnboundedSender<WriteDone>,
) -> Result<mpsc::Sender<WriteJob>, MonError> {
    let (tx, rx) = mpsc::channel::<WriteJob>();
    std::thread::Builder::new()
        .name("mon-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut last = first.number;
                let mut batch = vec![first.persist];
                while let Ok(more) = rx.try_recv() {
                    last = more.number;
                    batch.push(more.persist);
                }
                let msg = match store.write(&batch) {
                    Ok(()) => WriteDone::Durable(last),
                    Err(e) => WriteDone::Failed(e),
                };
                let failed = matches!(msg, WriteDone::Failed(_));
                if done.send(msg).is_err() || failed {
                    break;
                }
            }
        })
        .map_err(|e| MonError::io("starting the writer thread", e))?;
    Ok(tx)
}
