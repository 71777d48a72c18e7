//! Recovery while active, at the head: the members went active knowing
//! what they lack ([`crate::missing::Missing`]); the head pushes those
//! objects in the background, a few at a time (each through the object's
//! queue, so no write to it is in flight while it is copied), and a write
//! to an object some member lacks pushes it first (`objects.rs`). A failed
//! push is retried after a pause; the PG is clean when the book is empty.

use std::time::Duration;

use super::Pg;
use super::objects::{Task, Why};
use super::types::{Action, Timer};
use crate::exec::OpError;

/// Pause after a failed push before recovery goes on.
const RETRY: Duration = Duration::from_millis(500);

impl Pg {
    /// Head, just active: recovery starts if anything is lacking.
    pub(super) fn start_recovery(&mut self) {
        self.recovering = 0;
        self.pump_recovery();
    }

    /// Starts recovery pushes until the per-PG limit is in flight.
    fn pump_recovery(&mut self) {
        let limit = self.cfg.recovery_active.max(1);
        while self.recovering < limit {
            let busy = &self.objects_q;
            let Some((name, _)) = self.recovery.start_where(|n| !busy.is_held(n)) else {
                break;
            };
            self.recovering += 1;
            // `start_push` takes the members from the book again.
            self.recovery.release(&name);
            self.queue_task(&name, Task::Push(Why::Recovery));
        }
    }

    /// A recovery push of `object` finished.
    pub(super) fn recovery_object_done(&mut self, object: &str, result: Result<(), OpError>) {
        self.recovering = self.recovering.saturating_sub(1);
        match result {
            Ok(()) => {
                if self.recovery.is_empty() && self.recovering == 0 {
                    tracing::info!(pg = %self.id, epoch = self.interval.epoch, "recovered");
                    self.act(Action::Report);
                }
                self.pump_recovery();
            }
            Err(e) => {
                tracing::info!(pg = %self.id, object, error = %e.message, "recovery push failed; retrying");
                let interval = self.interval.epoch;
                self.act(Action::SetTimer {
                    after: RETRY,
                    timer: Timer::RecoveryRetry { interval },
                });
            }
        }
    }

    /// The pause after a failed push is over.
    pub(super) fn recovery_retry(&mut self, interval: u32) {
        if interval == self.interval.epoch && self.position() == Some(0) {
            self.pump_recovery();
        }
    }
}
