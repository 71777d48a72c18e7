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
use shoal_proto::rep::IntervalShape;

impl Pg {
    /// A map gave the PG `interval`: begins it if it differs from the
    /// current one (or this copy has no role yet and gains one).
    pub(super) fn on_interval(&mut self, interval: Interval) {
        let same = self.interval.acting == interval.acting
            && self.interval.up == interval.up
            && self.interval.up_from == interval.up_from
            && self.interval.min_size == interval.min_size;
        if same && (self.phase != Phase::Stray || !interval.acting.contains(&self.whoami)) {
            self.same_interval(interval);
            return;
        }
        self.begin(interval);
    }

    /// Follows the head's name for the current interval: OSDs that skipped
    /// map epochs (a restarted one starts from the newest map) agree on a
    /// PG's interval but not always on the epoch it began in. When `shape`
    /// is this copy's interval and `epoch` differs, this copy takes the
    /// head's name. An interval of another shape is not the head's: one of
    /// the two is behind on maps, and nothing is adopted (renaming such an
    /// interval let a head a map behind activate a member in its old
    /// interval, dropping what it had pushed there: the simulation found
    /// it).
    pub(super) fn adopt_interval(&mut self, epoch: u32, shape: &IntervalShape) {
        // Only forward: an older name of the same shape may be another
        // interval (A, then B, then A again), whose state this copy left
        // (renaming back let a late activation drop what had been pushed
        // here: the simulation found it). The head with the older name
        // takes the newer one from the answers to its queries.
        if epoch <= self.interval.epoch {
            return;
        }
        self.rename_interval(epoch, shape);
    }

    /// A backfill target (outside the chain) takes the head's name either
    /// way: it holds nothing of the interval a rename could drop (its
    /// backfill start makes every object suspect), and a head never
    /// learns a target's newer name (it kept refusing the head's steps
    /// for good: the simulation found it).
    pub(super) fn adopt_interval_as_target(&mut self, epoch: u32, shape: &IntervalShape) {
        if self.interval.acting.contains(&self.whoami) {
            return self.adopt_interval(epoch, shape);
        }
        self.rename_interval(epoch, shape);
    }

    fn rename_interval(&mut self, epoch: u32, shape: &IntervalShape) {
        if self.interval.epoch == epoch || !self.interval.has_shape(shape) {
            return;
        }
        if self.phase == Phase::Active {
            // Active under another name: start over under the head's.
            let mut interval = self.interval.clone();
            interval.epoch = epoch;
            self.begin(interval);
        } else {
            self.interval.epoch = epoch;
        }
    }

    /// A map changed what does not make a new interval: the pool's size,
    /// or a `pg_temp` set to the chain it already has. The active head
    /// clears such a `pg_temp` (through its backfill, which has nothing
    /// to fill), or it would pin the chain for good.
    fn same_interval(&mut self, interval: Interval) {
        let newly_temp = interval.pg_temp && !self.interval.pg_temp;
        self.interval.pg_temp = interval.pg_temp;
        self.interval.size = interval.size;
        if newly_temp
            && self.phase == Phase::Active
            && self.position() == Some(0)
            && !self.backfill.is_running()
        {
            self.start_backfill();
        }
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
        let scrubs = self.scrub.take().map(|s| s.request().clone());
        abandoned.extend(
            scrubs
                .into_iter()
                .chain(self.scrub_queue.drain(..))
                .filter_map(|r| r.op),
        );
        self.at_rest_wait = None;
        self.inconsistent.clear();
        // In a fixed order: the same events give the same actions.
        abandoned.sort();
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
