//! Intervals: a PG starts a new one when its acting set, its up set, the
//! boot epoch of a member or `min_size` changes. Everything in flight is
//! abandoned with the old interval (clients retry, members re-peer), and
//! answers to anything asked in it are ignored: every pending read and
//! request names the interval it was made in, and the table of them is
//! cleared here.

use super::Pg;
use super::types::{Action, ClientAnswer, Pending};
use super::types::{Interval, Phase};
use super::write::Writes;
use crate::chain::Chain;
use crate::exec::unavailable;
use crate::missing::Missing;

impl Pg {
    /// A map gave the PG `interval`: begins it if it differs from the
    /// current one (or this copy has no role yet and gains one).
    pub(super) fn on_interval(&mut self, interval: Interval) {
        let same = self.interval.acting == interval.acting
            && self.interval.up == interval.up
            && self.interval.up_from == interval.up_from
            && self.interval.min_size == interval.min_size;
        if same && (self.phase != Phase::Stray || !interval.acting.contains(&self.whoami)) {
            return;
        }
        self.begin(interval);
    }

    /// Follows the head's name for the current interval: OSDs that skipped
    /// map epochs agree on a chain but not always on the epoch it began
    /// in; when `acting` is this copy's chain and `epoch` differs, the
    /// interval begins afresh under the head's epoch (the head is about to
    /// activate or fill this copy anyway).
    pub(super) fn adopt_interval(&mut self, epoch: u32, acting: &[i32]) {
        if self.interval.epoch == epoch || self.interval.acting != acting {
            return;
        }
        let mut interval = self.interval.clone();
        interval.epoch = epoch;
        self.begin(interval);
    }

    fn begin(&mut self, interval: Interval) {
        let member = interval.acting.contains(&self.whoami);
        tracing::info!(pg = %self.id, epoch = interval.epoch, acting = ?interval.acting, up = ?interval.up, member, "new interval");
        self.interval = interval;
        self.phase = if member { Phase::Peering } else { Phase::Stray };
        let head = self.log.head();
        let mut old = std::mem::replace(&mut self.write, Writes::new(Chain::new(true, head)));
        let mut abandoned = old.abandoned();
        abandoned.extend(self.objects_q.abandoned());
        self.objects_q = Default::default();
        abandoned.extend(self.pending.drain().filter_map(|(_, p)| match p {
            Pending::Lease { op } => Some(op),
            _ => None,
        }));
        for op in abandoned {
            self.act(Action::Client {
                op,
                answer: ClientAnswer::Failed(unavailable("the PG's interval changed")),
            });
        }
        self.recovery = Missing::default();
        self.recovering = 0;
        self.pushed.clear();
        self.backfill_of = None;
        self.peering = None;
        self.incomplete = false;
        self.backfilling = false;
        if std::mem::take(&mut self.backfill).holds_slot() {
            self.act(Action::Release);
        }
    }
}
