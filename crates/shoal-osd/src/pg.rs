//! One PG on this OSD: its log, its place in the chain, the writes in
//! flight, and the store transactions that keep it all durable.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use shoal_net::Frame;
use shoal_net::codec::encode;
use shoal_proto::osd::{ObjOp, ObjVersion, OsdErrorCode, PgRef, ReqId};
use shoal_proto::rep::{
    DataSums, LogDup, LogEntry, LogOp, ObjectState, PgInfo, PgLogState, PgPush, RepOp,
};
use shoal_store::{Op, Store, StoreError, Transaction};
use tokio::sync::{mpsc, oneshot, watch};

use crate::chain::Chain;
use crate::exec::{self, OpError, internal, unavailable};
pub use crate::machine::{Interval, LogLimits, Phase};
use crate::missing::Missing;
use crate::pglog::{
    DUPS_OBJECT, INTERNAL_OBJECTS, META_OBJECT, MISSING_OBJECT, PgLog, collection, is_internal,
};

/// Where the head sends a client write's outcome.
type Waiter = oneshot::Sender<Result<ObjVersion, OpError>>;
/// The client's side of a [`Waiter`].
pub type Answer = oneshot::Receiver<Result<ObjVersion, OpError>>;

struct State {
    interval: Interval,
    phase: Phase,
    log: PgLog,
    les: u32,
    last_acting: Vec<i32>,
    chain: Chain,
    /// Objects with writes not yet committed, and the newest such write.
    uncommitted: HashMap<String, u64>,
    /// Head: clients waiting for their write, by sequence number.
    waiters: BTreeMap<u64, (ObjVersion, Waiter)>,
    downstream: Option<mpsc::UnboundedSender<(ObjVersion, Frame)>>,
    acked_down: Option<watch::Sender<ObjVersion>>,
    upstream: Option<watch::Sender<ObjVersion>>,
    /// Non-head: the newest write received from upstream.
    recv_last: ObjVersion,
    /// Objects pushed during this interval's peering (for backfill).
    pushed: HashSet<String>,
    /// A local write failed after the write was ordered: the PG serves no
    /// more writes until the next interval re-peers it.
    failed: Option<String>,
    /// Objects this copy lacks (kept in the store, in [`MISSING_OBJECT`]).
    missing: BTreeSet<String>,
    /// Head: what the other members lack, for recovery while active.
    recovery: Missing,
    /// This OSD is being backfilled by the head of this interval (it is
    /// in the up set, not in the acting chain).
    backfill_of: Option<u32>,
    /// Head: backfilling the up set's OSDs outside the chain.
    backfilling: bool,
    /// Head: peering waits for a member of the last active interval.
    incomplete: bool,
    /// Head: objects the last scrub found inconsistent and not repaired.
    inconsistent: BTreeSet<String>,
    /// Writes ordered here whose store transaction has not finished (of
    /// any interval: the log in memory is ahead of the store by these).
    pending_local: u64,
}

/// One PG on this OSD.
pub struct Pg {
    /// The PG.
    pub id: PgRef,
    /// Its store collection.
    pub coll: String,
    whoami: i32,
    store: Arc<Store>,
    log_limits: LogLimits,
    state: Mutex<State>,
    /// Objects in the PG, kept by the head (counted when it activates,
    /// then changed by its writes); for the monitors' `status`.
    objects: AtomicU64,
    object_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Signalled when the last pending local write finishes.
    local_idle: tokio::sync::Notify,
    /// When this OSD last scrubbed and deep-scrubbed the PG (or opened it).
    scrubbed: Mutex<(std::time::Instant, std::time::Instant)>,
}

impl Pg {
    /// Opens the PG from the store, creating its collection when missing.
    pub async fn open(
        store: Arc<Store>,
        id: PgRef,
        whoami: i32,
        log_limits: LogLimits,
    ) -> Result<Arc<Pg>, StoreError> {
        let coll = collection(id);
        let exists = match store.collection_meta(&coll) {
            Ok(_) => true,
            Err(StoreError::NoCollection(_)) => false,
            Err(e) => return Err(e),
        };
        if !exists {
            let mut t = Transaction::new(coll.clone());
            t.push(Op::CreateCollection);
            t.push(Op::Touch {
                name: META_OBJECT.into(),
            });
            t.push(Op::SetCollectionMeta(
                encode(&PgInfo::default())
                    .map_err(|e| StoreError::Invalid(e.to_string()))?
                    .to_vec(),
            ));
            store.submit(t).await?;
        }
        // Writes add dups to this object's omap: it must exist.
        if let Err(StoreError::NoObject(..)) = store.stat(&coll, DUPS_OBJECT) {
            let mut t = Transaction::new(coll.clone());
            t.push(Op::Touch {
                name: DUPS_OBJECT.into(),
            });
            store.submit(t).await?;
        }
        // The whole log is read and decoded: off the async threads.
        let (s2, c2) = (store.clone(), coll.clone());
        let (info, log, missing) = tokio::task::spawn_blocking(move || load(&s2, &c2))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        let head = log.head();
        Ok(Arc::new(Pg {
            id,
            coll,
            whoami,
            store,
            log_limits,
            state: Mutex::new(State {
                interval: Interval::default(),
                phase: Phase::Stray,
                log,
                les: info.last_epoch_started,
                last_acting: info.last_acting,
                chain: Chain::new(true, head),
                uncommitted: HashMap::new(),
                waiters: BTreeMap::new(),
                downstream: None,
                acked_down: None,
                upstream: None,
                recv_last: head,
                pushed: HashSet::new(),
                failed: None,
                missing,
                recovery: Missing::default(),
                backfill_of: None,
                backfilling: false,
                incomplete: false,
                inconsistent: BTreeSet::new(),
                pending_local: 0,
            }),
            objects: AtomicU64::new(0),
            object_locks: Mutex::new(HashMap::new()),
            local_idle: tokio::sync::Notify::new(),
            scrubbed: Mutex::new((std::time::Instant::now(), std::time::Instant::now())),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The current interval and phase.
    pub fn status(&self) -> (Interval, Phase) {
        let st = self.lock();
        (st.interval.clone(), st.phase)
    }

    /// Starts `interval` if it differs from the current one: in-flight
    /// writes are abandoned (their clients retry), links close, and the PG
    /// peers again. Returns whether a new interval began.
    pub fn set_interval(&self, interval: Interval) -> bool {
        let mut st = self.lock();
        let same = st.interval.acting == interval.acting
            && st.interval.up == interval.up
            && st.interval.up_from == interval.up_from
            && st.interval.min_size == interval.min_size;
        if same && st.phase != Phase::Stray {
            return false;
        }
        let member = interval.acting.contains(&self.whoami);
        if same && !member {
            return false;
        }
        self.begin(&mut st, interval);
        true
    }

    /// Follows the head's name for the current interval. OSDs that skipped
    /// map epochs agree on a PG's interval but not always on the epoch it
    /// began in; when `shape` is this OSD's current interval and `epoch`
    /// differs, it takes the head's name (an interval of another shape is
    /// not the head's: see `machine/interval.rs`).
    pub fn adopt_interval(&self, epoch: u32, shape: &shoal_proto::rep::IntervalShape) {
        let mut st = self.lock();
        if st.interval.epoch == epoch || !st.interval.has_shape(shape) {
            return;
        }
        if st.phase == Phase::Active {
            let mut interval = st.interval.clone();
            interval.epoch = epoch;
            self.begin(&mut st, interval);
        } else {
            st.interval.epoch = epoch;
        }
    }

    fn begin(&self, st: &mut State, interval: Interval) {
        let member = interval.acting.contains(&self.whoami);
        tracing::info!(pg = %self.id, epoch = interval.epoch, acting = ?interval.acting, up = ?interval.up, member, "new interval");
        st.interval = interval;
        st.phase = if member { Phase::Peering } else { Phase::Stray };
        st.waiters.clear();
        st.downstream = None;
        st.acked_down = None;
        st.upstream = None;
        st.pushed.clear();
        st.failed = None;
        st.uncommitted.clear();
        st.recovery = Missing::default();
        st.backfill_of = None;
        st.backfilling = false;
        st.incomplete = false;
        st.inconsistent.clear();
        let head = st.log.head();
        st.chain = Chain::new(true, head);
        st.recv_last = head;
    }

    fn position(&self, st: &State) -> Option<usize> {
        st.interval.acting.iter().position(|&o| o == self.whoami)
    }

    /// Whether this OSD is the head of the current interval.
    pub fn is_head(&self) -> bool {
        let st = self.lock();
        self.position(&st) == Some(0)
    }

    /// Checks that a client request may be served here now.
    pub fn check_serving(&self, write: bool, balance: bool) -> Result<(), OpError> {
        let st = self.lock();
        match self.position(&st) {
            Some(0) => {}
            Some(_) if balance && !write => {}
            _ => return Err((OsdErrorCode::WrongOsd, "not this PG's head".into())),
        }
        if st.phase != Phase::Active {
            return Err(unavailable("the PG is peering"));
        }
        if write && st.interval.acting.len() < st.interval.min_size {
            return Err(unavailable("fewer members than min_size"));
        }
        if write && let Some(why) = &st.failed {
            return Err(unavailable(why));
        }
        Ok(())
    }

    /// The per-object lock the head holds while it resolves a write against
    /// the object's state and until the write is visible locally.
    pub fn object_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.object_locks.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if locks.len() > 4096 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(name.to_string()).or_default().clone()
    }

    /// For a request the log remembers: its version if committed (`Ok`),
    /// else the answer to wait for (`Err`). `None`: a new request.
    pub fn find_request(&self, reqid: ReqId) -> Option<Result<ObjVersion, Answer>> {
        let mut st = self.lock();
        let v = st.log.find(reqid)?;
        if v <= st.chain.done() {
            return Some(Ok(v));
        }
        // In flight: chain a second waiter onto the first.
        let (tx, rx) = oneshot::channel();
        let seq = v.seq;
        if let Some((version, first)) = st.waiters.remove(&seq) {
            let (relay_tx, relay_rx) = oneshot::channel();
            st.waiters.insert(seq, (version, relay_tx));
            tokio::spawn(async move {
                let r = relay_rx
                    .await
                    .unwrap_or(Err(unavailable("interval changed")));
                let _ = first.send(r.clone());
                let _ = tx.send(r);
            });
            return Some(Err(rx));
        }
        // Logged but neither done nor awaited (its local write failed):
        // never apply it twice; the client hears "unavailable" and retries
        // once the PG has re-peered.
        drop(tx);
        Some(Err(rx))
    }

    /// Whether a read of `name` here would see an uncommitted write.
    pub fn is_dirty(&self, name: &str) -> bool {
        let st = self.lock();
        st.uncommitted.contains_key(name) && !st.chain.is_tail()
    }

    /// The head of the current chain.
    pub fn head(&self) -> Option<i32> {
        self.lock().interval.acting.first().copied()
    }

    /// The tail of the current chain.
    pub fn tail(&self) -> Option<i32> {
        self.lock().interval.acting.last().copied()
    }

    /// Head: orders a resolved write, queues it locally and down the
    /// chain. Returns the local completion and the client's answer.
    pub fn start_write(
        &self,
        reqid: ReqId,
        object: &str,
        resolved: exec::Resolved,
        payload: Bytes,
    ) -> Result<(LocalWrite, Answer), OpError> {
        let sums = exec::hash_writes(&resolved.mutations, &payload, self.store.chunk_size());
        let mut st = self.lock();
        if st.phase != Phase::Active || self.position(&st) != Some(0) {
            return Err(unavailable("the PG's interval changed"));
        }
        let head = st.log.head();
        let version = ObjVersion {
            epoch: st.interval.epoch.max(head.epoch),
            seq: head.seq + 1,
        };
        let entry = LogEntry {
            version,
            reqid,
            object: object.to_string(),
            op: resolved.op,
        };
        let ops = exec::store_ops(
            object,
            &resolved.mutations,
            &payload,
            &sums,
            version,
            resolved.op,
        )?;
        let rep = RepOp {
            pg: self.id,
            interval: st.interval.epoch,
            entry,
            ops: resolved.mutations,
            committed: st.chain.done(),
            sums,
        };
        let local = self.order(&mut st, rep, ops, payload)?;
        let (tx, rx) = oneshot::channel();
        st.waiters.insert(version.seq, (version, tx));
        Ok((local, rx))
    }

    /// Middle or tail: applies a write from upstream (in order; duplicates
    /// of writes already received are skipped). Returns the local
    /// completion, or `None` for a duplicate.
    pub fn replicate(
        &self,
        from: i32,
        rep: RepOp,
        payload: Bytes,
    ) -> Result<Option<LocalWrite>, OpError> {
        let mut st = self.lock();
        let pos = self.position(&st);
        let upstream_ok =
            pos.is_some_and(|p| p > 0 && st.interval.acting.get(p - 1) == Some(&from));
        if st.phase != Phase::Active || rep.interval != st.interval.epoch || !upstream_ok {
            return Err(unavailable("not the next member in this interval"));
        }
        let version = rep.entry.version;
        if version <= st.recv_last {
            return Ok(None);
        }
        if version.seq != st.recv_last.seq + 1 {
            return Err((
                OsdErrorCode::Invalid,
                format!("write {version} after {}: a gap", st.recv_last),
            ));
        }
        exec::check_name(&rep.entry.object)?;
        let ops = exec::store_ops(
            &rep.entry.object,
            &rep.ops,
            &payload,
            &rep.sums,
            version,
            rep.entry.op,
        )?;
        let local = self.order(&mut st, rep, ops, payload)?;
        st.recv_last = version;
        Ok(Some(local))
    }

    /// Orders a write on this member: adds its log entry, forwards it to
    /// the next member, starts it in the chain and queues it in the store
    /// (in that order under the PG lock, so every member sees one order).
    fn order(
        &self,
        st: &mut State,
        rep: RepOp,
        ops: Vec<Op>,
        payload: Bytes,
    ) -> Result<LocalWrite, OpError> {
        let version = rep.entry.version;
        let frame = match st.downstream {
            Some(_) => Some(
                Frame::encode(shoal_proto::msg::REP_OP, &rep)
                    .map_err(internal)?
                    .with_payload(payload),
            ),
            None => None,
        };
        let txn = self.log_txn(st, ops, &rep.entry)?;
        st.chain.start(version).map_err(internal)?;
        if let (Some(down), Some(frame)) = (&st.downstream, frame) {
            let _ = down.send((version, frame));
        }
        st.uncommitted.insert(rep.entry.object, version.seq);
        st.pending_local += 1;
        Ok(LocalWrite {
            version,
            fut: Box::pin(self.store.submit(txn)),
        })
    }

    /// Adds `entry` to the log and builds the transaction that stores the
    /// write with its log entry (and trims the log).
    fn log_txn(
        &self,
        st: &mut State,
        ops: Vec<Op>,
        entry: &LogEntry,
    ) -> Result<Transaction, OpError> {
        let info = (st.chain.done(), st.les, st.last_acting.clone());
        crate::machine::write_txn(
            &self.coll,
            ops,
            entry,
            &mut st.log,
            self.log_limits,
            (info.0, info.1, &info.2),
        )
    }

    /// A local write finished (durably or not).
    pub fn local_done(&self, version: ObjVersion, result: Result<(), StoreError>) {
        let mut st = self.lock();
        st.pending_local = st.pending_local.saturating_sub(1);
        if st.pending_local == 0 {
            self.local_idle.notify_waiters();
        }
        if let Err(e) = result {
            tracing::error!(pg = %self.id, %version, error = %e, "a replicated write failed locally");
            st.failed = Some(format!("a local write failed: {e}"));
            if let Some((_, w)) = st.waiters.remove(&version.seq) {
                let _ = w.send(Err(exec::store_error(&e)));
            }
            return;
        }
        if let Some(done) = st.chain.local_durable(version.seq) {
            self.on_done(&mut st, done);
        }
    }

    /// The next member acknowledged everything up to `version`.
    pub fn downstream_ack(&self, from: i32, interval: u32, version: ObjVersion) {
        let mut st = self.lock();
        let pos = self.position(&st);
        let ok = pos.is_some_and(|p| st.interval.acting.get(p + 1) == Some(&from));
        if !ok || interval != st.interval.epoch || st.phase != Phase::Active {
            return;
        }
        if let Some(tx) = &st.acked_down {
            tx.send_replace(version);
        }
        if let Some(done) = st.chain.downstream_acked(version) {
            self.on_done(&mut st, done);
        }
    }

    fn on_done(&self, st: &mut State, done: ObjVersion) {
        st.uncommitted.retain(|_, seq| *seq > done.seq);
        while let Some(entry) = st.waiters.first_entry() {
            if *entry.key() > done.seq {
                break;
            }
            let (version, w) = entry.remove();
            let _ = w.send(Ok(version));
        }
        if let Some(up) = &st.upstream {
            up.send_replace(done);
        }
    }

    /// Waits (up to `timeout`) until every write ordered here is in the
    /// store, so the log a peering head is sent matches the objects it may
    /// then pull. Returns whether it got there.
    pub async fn settle(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.local_idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.lock().pending_local == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return false;
            }
        }
    }

    /// This member's info and log, for a peering head.
    pub fn log_state(&self) -> PgLogState {
        let st = self.lock();
        PgLogState {
            info: st.log.info(st.chain.done(), st.les, &st.last_acting),
            log: st.log.entries().cloned().collect(),
            dups: st.log.dups().copied().collect(),
            missing: st.missing.iter().cloned().collect(),
        }
    }

    /// Replaces the log with the authoritative one and goes active in the
    /// interval: returns the links to start (downstream writes, upstream acks).
    pub async fn activate(&self, a: Activation) -> Result<Activated, OpError> {
        let Activation {
            interval: interval_epoch,
            acting,
            info,
            log,
            dups,
            backfill,
            missing,
            recovery,
        } = a;
        let acting = acting.as_slice();
        {
            let st = self.lock();
            if st.interval.epoch != interval_epoch || st.interval.acting != acting {
                return Err(unavailable("another interval"));
            }
        }
        if backfill {
            self.remove_unpushed().await?;
        }
        if acting.first() == Some(&self.whoami) {
            let (store, coll) = (self.store.clone(), self.coll.clone());
            let names = tokio::task::spawn_blocking(move || object_names(&store, &coll))
                .await
                .map_err(internal)??;
            self.objects.store(names.len() as u64, Ordering::Relaxed);
        }
        let new_log = PgLog::new(info.log_tail, log).with_dups(dups);
        let stored = self
            .store_log(&new_log, interval_epoch, acting, &missing)
            .await;
        let mut st = self.lock();
        stored?;
        if st.interval.epoch != interval_epoch {
            return Err(unavailable("another interval"));
        }
        let head = new_log.head();
        st.log = new_log;
        st.les = interval_epoch;
        st.last_acting = acting.to_vec();
        let pos = self.position(&st).unwrap_or(0);
        let tail = pos + 1 == acting.len();
        st.chain = Chain::new(tail, head);
        st.recv_last = head;
        st.phase = Phase::Active;
        st.missing = missing;
        st.recovery = recovery;
        let mut out = Activated::default();
        if !tail {
            let (tx, rx) = mpsc::unbounded_channel();
            let (atx, arx) = watch::channel(head);
            st.downstream = Some(tx);
            st.acked_down = Some(atx);
            out.downstream = Some((acting[pos + 1], rx, arx));
        }
        if pos > 0 {
            let (tx, rx) = watch::channel(head);
            st.upstream = Some(tx);
            out.upstream = Some((acting[pos - 1], rx));
        }
        tracing::info!(pg = %self.id, epoch = interval_epoch, ?acting, last_update = %head, "active");
        Ok(out)
    }

    /// Head, before it pulls what it lacks: takes the authoritative log,
    /// and the objects it lacks under it, as its own, durably. Objects it
    /// then pulls never run ahead of its log: if peering stops half way,
    /// the next attempt sees this log and what is still missing (a pulled
    /// object newer than the old log could otherwise be taken for current
    /// and a retried write applied to it twice — the simulation found it).
    pub async fn adopt_log(
        &self,
        interval: u32,
        info: &PgInfo,
        log: Vec<LogEntry>,
        dups: Vec<LogDup>,
        missing: BTreeSet<String>,
    ) -> Result<(), OpError> {
        {
            let st = self.lock();
            if st.interval.epoch != interval || st.phase != Phase::Peering {
                return Err(unavailable("another interval"));
            }
        }
        // The adopted log comes with its peering record (see
        // `machine/catchup.rs`).
        let (les, acting) = (info.last_epoch_started, info.last_acting.clone());
        let new_log = PgLog::new(info.log_tail, log).with_dups(dups);
        self.store_log(&new_log, les, &acting, &missing).await?;
        let mut st = self.lock();
        st.log = new_log;
        st.missing = missing;
        st.les = les;
        st.last_acting = acting;
        if st.interval.epoch != interval {
            return Err(unavailable("another interval"));
        }
        Ok(())
    }

    async fn store_log(
        &self,
        log: &PgLog,
        les: u32,
        acting: &[i32],
        missing: &BTreeSet<String>,
    ) -> Result<(), OpError> {
        let t = crate::machine::log_txn(&self.coll, log, les, acting, missing)?;
        self.store
            .submit(t)
            .await
            .map_err(|e| exec::store_error(&e))
    }

    async fn remove_unpushed(&self) -> Result<(), OpError> {
        let keep = self.lock().pushed.clone();
        let store = self.store.clone();
        let coll = self.coll.clone();
        let names = tokio::task::spawn_blocking(move || object_names(&store, &coll))
            .await
            .map_err(internal)??;
        let stale: Vec<String> = names.into_iter().filter(|n| !keep.contains(n)).collect();
        for batch in stale.chunks(1000) {
            let mut t = Transaction::new(self.coll.clone());
            t.ops = batch
                .iter()
                .map(|n| Op::Remove { name: n.clone() })
                .collect();
            self.store
                .submit(t)
                .await
                .map_err(|e| exec::store_error(&e))?;
        }
        Ok(())
    }

    /// An object's whole state for a push, read from one snapshot.
    pub fn object_state(&self, name: &str) -> Result<PushedState, OpError> {
        let err = |e: StoreError| exec::store_error(&e);
        // Size, version, xattrs and data from one snapshot.
        let snap = match self.store.snapshot(&self.coll, name) {
            Ok(s) => s,
            Err(StoreError::NoObject(..)) => return Ok(PushedState::default()),
            Err(e) => return Err(err(e)),
        };
        let stat = snap.stat();
        let data = snap.read_bytes(0, u64::MAX).map_err(err)?;
        // The read verified every chunk against these.
        let sums = snap.chunk_sums().map(|s| DataSums {
            op: 0,
            chunk_size: s.chunk_size,
            sums: s.sums.to_vec(),
        });
        let xattrs = snap.xattrs().clone();
        drop(snap);
        let omap = self
            .store
            .omap_range(&self.coll, name, None, None, usize::MAX)
            .map_err(err)?;
        let state = ObjectState {
            data: shoal_proto::osd::PayloadRange {
                offset: 0,
                len: data.len() as u64,
            },
            xattrs: xattrs.into_iter().collect(),
            omap,
        };
        Ok(PushedState {
            version: ObjVersion {
                epoch: stat.version.epoch,
                seq: stat.version.seq,
            },
            state: Some(state),
            sums: sums.into_iter().collect(),
            data,
        })
    }

    /// Makes an object exactly `state` (or removes it), during peering.
    pub async fn apply_push(&self, push: PgPush, payload: Bytes) -> Result<(), OpError> {
        let PgPush {
            interval,
            object,
            version,
            state,
            repair,
            sums,
            ..
        } = push;
        let name = object.as_str();
        exec::check_name(name)?;
        let (was_missing, suspect) = {
            let mut st = self.lock();
            if st.interval.epoch != interval {
                return Err(unavailable("another interval"));
            }
            match st.phase {
                _ if st.backfill_of == Some(interval) => {}
                Phase::Peering => {
                    st.pushed.insert(name.to_string());
                }
                // Recovery while active brings only what this copy lacks:
                // anything else is newer here than the push (a write that
                // followed its recovery).
                Phase::Active if st.missing.contains(name) || repair => {}
                Phase::Active => return Ok(()),
                Phase::Stray => return Err(unavailable("not a member")),
            }
            (st.missing.contains(name), st.backfill_of == Some(interval))
        };
        let mut t = Transaction::new(self.coll.clone());
        if suspect {
            // Suspect until the backfill's finish (`machine/push.rs`).
            t.push(Op::OmapSet {
                name: MISSING_OBJECT.into(),
                entries: vec![(name.as_bytes().to_vec(), Vec::new())],
            });
        } else if was_missing {
            t.push(Op::OmapRemove {
                name: MISSING_OBJECT.into(),
                keys: vec![name.as_bytes().to_vec()],
            });
        }
        let exists = match self.store.stat(&self.coll, name) {
            Ok(_) => true,
            Err(StoreError::NoObject(..)) => false,
            Err(e) => return Err(exec::store_error(&e)),
        };
        if exists {
            t.push(Op::Remove { name: name.into() });
        }
        if let Some(s) = state {
            let mut ops = vec![ObjOp::WriteFull { data: s.data }];
            ops.extend(
                s.xattrs
                    .into_iter()
                    .map(|(key, value)| ObjOp::SetXattr { key, value }),
            );
            if !s.omap.is_empty() {
                ops.push(ObjOp::OmapSet { entries: s.omap });
            }
            t.ops.extend(exec::store_ops(
                name,
                &ops,
                &payload,
                &sums,
                version,
                LogOp::Modify,
            )?);
        }
        if t.ops.is_empty() {
            return Ok(());
        }
        self.store
            .submit(t)
            .await
            .map_err(|e| exec::store_error(&e))?;
        if suspect {
            self.lock().missing.insert(name.to_string());
        } else if was_missing {
            self.lock().missing.remove(name);
        }
        Ok(())
    }

    /// Backfill target: pushes for `interval` follow. The copy's log is
    /// dropped (what it held is older than the acting chain's log tail,
    /// or it had nothing), so peering treats it as empty until
    /// [`Pg::backfill_finish`].
    pub async fn backfill_start(&self, interval: u32) -> Result<(), OpError> {
        {
            let mut st = self.lock();
            let target =
                st.interval.up.contains(&self.whoami) && !st.interval.acting.contains(&self.whoami);
            if st.interval.epoch != interval || !target {
                return Err(unavailable("not a backfill target in this interval"));
            }
            st.backfill_of = Some(interval);
        }
        // Every object held here is suspect until pushed: peering must
        // never take a stale object kept here for current.
        let (store, coll) = (self.store.clone(), self.coll.clone());
        let names = tokio::task::spawn_blocking(move || object_names(&store, &coll))
            .await
            .map_err(internal)??;
        let suspect: BTreeSet<String> = names.into_iter().collect();
        let empty = PgLog::default();
        self.store_log(&empty, 0, &[], &suspect).await?;
        let mut st = self.lock();
        st.log = empty;
        st.les = 0;
        st.last_acting.clear();
        st.missing = suspect;
        Ok(())
    }

    /// Backfill target: every object but `missing` is in place up to
    /// `info.last_update`; keeps the head's log (and that missing set) so
    /// the switch to the up set needs only the writes after it.
    pub async fn backfill_finish(
        &self,
        interval: u32,
        info: &PgInfo,
        log: Vec<LogEntry>,
        dups: Vec<LogDup>,
        missing: Vec<String>,
    ) -> Result<(), OpError> {
        if self.lock().backfill_of != Some(interval) {
            return Err(unavailable("no backfill of this interval here"));
        }
        let new_log = PgLog::new(info.log_tail, log).with_dups(dups);
        let missing: BTreeSet<String> = missing.into_iter().collect();
        self.store_log(
            &new_log,
            info.last_epoch_started,
            &info.last_acting,
            &missing,
        )
        .await?;
        let mut st = self.lock();
        st.log = new_log;
        st.les = info.last_epoch_started;
        st.last_acting = info.last_acting.clone();
        st.missing = missing;
        Ok(())
    }

    /// A page of this copy's objects after `after`, with their versions;
    /// blocking (store listing and stats).
    pub fn scan(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, ObjVersion)>, bool), OpError> {
        let err = |e: StoreError| exec::store_error(&e);
        let (names, more) = object_page(&self.store, &self.coll, after, limit)?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            match self.store.stat(&self.coll, &n) {
                Ok(st) => out.push((
                    n,
                    ObjVersion {
                        epoch: st.version.epoch,
                        seq: st.version.seq,
                    },
                )),
                Err(StoreError::NoObject(..)) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok((out, more))
    }

    /// Whether this OSD heads the PG and it is clean: active, a chain of
    /// `size` members that is the up set, nothing missing, no backfill.
    pub fn is_clean_head(&self, size: usize) -> bool {
        let st = self.lock();
        self.position(&st) == Some(0)
            && st.phase == Phase::Active
            && st.failed.is_none()
            && st.interval.acting == st.interval.up
            && st.interval.acting.len() >= size
            && st.recovery.is_empty()
            && !st.backfilling
    }

    /// A copy this OSD keeps although it is neither in the chain nor in
    /// the up set (nor being backfilled): the head it should ask whether
    /// the PG is clean, after which the copy can go.
    pub fn stray_copy_of(&self) -> Option<i32> {
        let st = self.lock();
        let extra = st.phase == Phase::Stray
            && !st.interval.up.contains(&self.whoami)
            && st.backfill_of.is_none();
        extra.then(|| st.interval.acting.first().copied()).flatten()
    }

    /// Deletes this copy from the store. Its log goes first (one
    /// transaction), so a copy half removed when the OSD stops is an empty
    /// one to peering, never a log without its objects.
    pub async fn destroy(&self) -> Result<(), OpError> {
        self.store_log(&PgLog::default(), 0, &[], &BTreeSet::new())
            .await?;
        let (store, coll) = (self.store.clone(), self.coll.clone());
        loop {
            let (s2, c2) = (store.clone(), coll.clone());
            let names = tokio::task::spawn_blocking(move || s2.list_objects(&c2, None, 1000))
                .await
                .map_err(internal)?
                .map_err(|e| exec::store_error(&e))?;
            let mut t = Transaction::new(coll.clone());
            if names.is_empty() {
                t.push(Op::RemoveCollection);
                return store.submit(t).await.map_err(|e| exec::store_error(&e));
            }
            t.ops = names.into_iter().map(|name| Op::Remove { name }).collect();
            store.submit(t).await.map_err(|e| exec::store_error(&e))?;
        }
    }

    /// This copy as `shoal pg query` shows it; `state` is what the head
    /// reports (computed by the caller).
    pub fn detail(&self, state: String) -> shoal_proto::osd::PgDetail {
        use shoal_proto::osd::{MissingOn, PgDetail};
        const SHOWN: usize = 100;
        let st = self.lock();
        let pos = self.position(&st);
        let role = match pos {
            Some(0) => "head",
            Some(_) => "member",
            None if st.interval.up.contains(&self.whoami) => "backfill target",
            None => "stray",
        };
        let mut missing = Vec::new();
        if pos == Some(0) {
            let mut by_osd: BTreeMap<i32, MissingOn> = BTreeMap::new();
            for (name, members) in st.recovery.objects() {
                for &m in members {
                    let e = by_osd.entry(m).or_insert_with(|| MissingOn {
                        osd: m,
                        count: 0,
                        objects: Vec::new(),
                    });
                    e.count += 1;
                    if e.objects.len() < SHOWN {
                        e.objects.push(name.clone());
                    }
                }
            }
            missing.extend(by_osd.into_values());
        } else if !st.missing.is_empty() {
            missing.push(MissingOn {
                osd: self.whoami,
                count: st.missing.len() as u64,
                objects: st.missing.iter().take(SHOWN).cloned().collect(),
            });
        }
        let backfill_targets = if pos == Some(0) && st.backfilling {
            st.interval
                .up
                .iter()
                .copied()
                .filter(|o| !st.interval.acting.contains(o))
                .collect()
        } else {
            Vec::new()
        };
        PgDetail {
            pgid: self.id.to_string(),
            osd: self.whoami,
            role: role.into(),
            state,
            interval_epoch: st.interval.epoch,
            acting: st.interval.acting.clone(),
            up: st.interval.up.clone(),
            last_update: st.log.head(),
            log_tail: st.log.tail(),
            log_entries: st.log.len() as u64,
            last_epoch_started: st.les,
            missing,
            backfill_targets,
            objects: self.objects(),
        }
    }

    /// Head: whether a backfill runs (for the PG's state).
    pub fn set_backfilling(&self, on: bool) {
        self.lock().backfilling = on;
    }

    /// Head: whether a backfill runs.
    pub fn backfilling(&self) -> bool {
        self.lock().backfilling
    }

    /// Head: whether peering waits because no member of the last
    /// interval that went active answered (for the PG's state).
    pub fn set_incomplete(&self, on: bool) {
        self.lock().incomplete = on;
    }

    /// Head: the objects a scrub found inconsistent (replaced by each scrub
    /// of the whole PG; a repaired object leaves it).
    pub fn set_inconsistent(&self, objects: BTreeSet<String>) {
        self.lock().inconsistent = objects;
    }

    /// Head: objects a scrub found inconsistent and not yet repaired.
    pub fn inconsistent(&self) -> usize {
        self.lock().inconsistent.len()
    }

    /// When this OSD last scrubbed and deep-scrubbed the PG.
    pub fn scrubbed(&self) -> (std::time::Instant, std::time::Instant) {
        match self.scrubbed.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// A scrub (`deep` or not) of the whole PG finished now.
    pub fn note_scrubbed(&self, deep: bool) {
        let mut s = match self.scrubbed.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = std::time::Instant::now();
        s.0 = now;
        if deep {
            s.1 = now;
        }
    }

    /// Head: `name` was repaired.
    pub fn repaired(&self, name: &str) {
        self.lock().inconsistent.remove(name);
    }

    /// Whether a write to `name` is on its way down the chain (a scrub
    /// compares only objects at rest).
    pub fn in_flight(&self, name: &str) -> bool {
        self.lock().uncommitted.contains_key(name)
    }

    /// Scrub entries of this copy: a page after `after` or exactly `only`;
    /// `deep` reads and checksums the data. Blocking.
    pub fn scrub_entries(
        &self,
        after: Option<&str>,
        limit: usize,
        only: &[String],
        deep: bool,
    ) -> Result<(Vec<shoal_proto::rep::ScrubEntry>, bool), OpError> {
        let (names, more) = if only.is_empty() {
            object_page(&self.store, &self.coll, after, limit)?
        } else {
            (only.to_vec(), false)
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(e) = self.scrub_entry(&name, deep)? {
                out.push(e);
            }
        }
        Ok((out, more))
    }

    fn scrub_entry(
        &self,
        name: &str,
        deep: bool,
    ) -> Result<Option<shoal_proto::rep::ScrubEntry>, OpError> {
        let err = |e: StoreError| exec::store_error(&e);
        let snap = match self.store.snapshot(&self.coll, name) {
            Ok(s) => s,
            Err(StoreError::NoObject(..)) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let stat = snap.stat();
        let mut meta = blake3::Hasher::new();
        for (k, v) in snap.xattrs() {
            meta.update(&(k.len() as u64).to_le_bytes());
            meta.update(k.as_bytes());
            meta.update(&(v.len() as u64).to_le_bytes());
            meta.update(v);
        }
        let (data_digest, error) = if deep {
            match snap.read_bytes(0, u64::MAX) {
                Ok(d) => (Some(*blake3::hash(&d).as_bytes()), String::new()),
                Err(e) => (None, e.to_string()),
            }
        } else {
            (None, String::new())
        };
        drop(snap);
        let omap = self
            .store
            .omap_range(&self.coll, name, None, None, usize::MAX)
            .map_err(err)?;
        meta.update(b"omap");
        for (k, v) in &omap {
            meta.update(&(k.len() as u64).to_le_bytes());
            meta.update(k);
            meta.update(&(v.len() as u64).to_le_bytes());
            meta.update(v);
        }
        Ok(Some(shoal_proto::rep::ScrubEntry {
            name: name.to_string(),
            version: ObjVersion {
                epoch: stat.version.epoch,
                seq: stat.version.seq,
            },
            size: stat.size,
            meta_digest: *meta.finalize().as_bytes(),
            data_digest,
            error,
        }))
    }

    /// Head: whether peering waits for a member of the last active interval.
    pub fn incomplete(&self) -> bool {
        self.lock().incomplete
    }

    /// The newest version such that it and every write before it are in
    /// the local store: the log may be ahead of the store by writes still
    /// being stored, which a scan of the store would not see.
    pub fn local_through(&self) -> ObjVersion {
        self.lock().chain.local_through()
    }

    /// Whether this copy lacks `name` (recovery has not brought it yet).
    pub fn lacks(&self, name: &str) -> bool {
        self.lock().missing.contains(name)
    }

    /// Head: the members that lack `name`, marked busy for recovery before
    /// a client op on it (the caller holds the object lock).
    pub fn recovery_take(&self, name: &str) -> BTreeSet<i32> {
        self.lock().recovery.take(name)
    }

    /// Head: the next object for background recovery, and who lacks it.
    pub fn recovery_next(&self) -> Option<(String, BTreeSet<i32>)> {
        self.lock().recovery.start()
    }

    /// Head: `member` received `name`.
    pub fn recovered(&self, name: &str, member: i32) {
        self.lock().recovery.recovered(name, member);
    }

    /// Head: recovery of `name` stopped; it may be taken again.
    pub fn recovery_release(&self, name: &str) {
        self.lock().recovery.release(name);
    }

    /// Head: object copies the members still lack.
    pub fn missing_copies(&self) -> u64 {
        self.lock().recovery.copies()
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Objects in the PG (kept by the head; see [`Pg::count_write`]).
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    /// Head: a write took the object from existing (`before`) to `after`.
    pub fn count_write(&self, before: bool, after: bool) {
        match (before, after) {
            (false, true) => {
                self.objects.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                // Never below zero, even if the count was off.
                let _ = self
                    .objects
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(1))
                    });
            }
            _ => {}
        }
    }

    /// Whether a local write failed in this interval (no writes until the next).
    pub fn write_failed(&self) -> bool {
        self.lock().failed.is_some()
    }
}

/// What a member goes active with (see [`Pg::activate`]).
pub struct Activation {
    /// The interval's epoch.
    pub interval: u32,
    /// Its chain, head first.
    pub acting: Vec<i32>,
    /// The authoritative info.
    pub info: PgInfo,
    /// The authoritative log.
    pub log: Vec<LogEntry>,
    /// The authoritative log's remembered trimmed requests.
    pub dups: Vec<LogDup>,
    /// The member was backfilled during peering: objects not pushed go.
    pub backfill: bool,
    /// Objects this member lacks, recovered while active.
    pub missing: BTreeSet<String>,
    /// Head: what every member lacks.
    pub recovery: Missing,
}

/// The links an activated member starts.
#[derive(Default)]
pub struct Activated {
    /// To the next member: its id, the writes to send, and the versions it acknowledged.
    #[allow(clippy::type_complexity)]
    pub downstream: Option<(
        i32,
        mpsc::UnboundedReceiver<(ObjVersion, Frame)>,
        watch::Receiver<ObjVersion>,
    )>,
    /// To the previous member: its id and the done versions to acknowledge.
    pub upstream: Option<(i32, watch::Receiver<ObjVersion>)>,
}

/// A write queued in the local store.
pub struct LocalWrite {
    /// Its version.
    pub version: ObjVersion,
    /// Resolves when it is durable.
    pub fut: std::pin::Pin<Box<dyn std::future::Future<Output = shoal_store::Result<()>> + Send>>,
}

/// An object's whole state as a push carries it (the default: it does
/// not exist).
#[derive(Default)]
pub struct PushedState {
    /// Its version.
    pub version: ObjVersion,
    /// Its contents (`None`: it does not exist).
    pub state: Option<ObjectState>,
    /// The checksums of its data, when the store has them whole.
    pub sums: Vec<DataSums>,
    /// Its data, the frame payload.
    pub data: Bytes,
}

/// A page of at most `limit` client objects of a collection after
/// `after` (the PG's bookkeeping objects left out), and whether more
/// follow; blocking.
pub fn object_page(
    store: &Store,
    coll: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool), OpError> {
    let mut names = store
        .list_objects(coll, after, limit + INTERNAL_OBJECTS + 1)
        .map_err(|e| exec::store_error(&e))?;
    names.retain(|n| !is_internal(n));
    let more = names.len() > limit;
    names.truncate(limit);
    Ok((names, more))
}

/// Every client object of a collection (the bookkeeping objects left
/// out), in name order; blocking.
pub fn object_names(store: &Store, coll: &str) -> Result<Vec<String>, OpError> {
    client_objects(store, coll).map_err(|e| exec::store_error(&e))
}

/// [`object_names`] with the store's own error.
pub fn client_objects(store: &Store, coll: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let names = store.list_objects(coll, after.as_deref(), 1000)?;
        let Some(last) = names.last().cloned() else {
            return Ok(out);
        };
        out.extend(names.into_iter().filter(|n| !is_internal(n)));
        after = Some(last);
    }
}

/// Reads a PG's peering record, log (with dups) and missing set from
/// its collection.
pub(crate) fn load(
    store: &Store,
    coll: &str,
) -> Result<(PgInfo, PgLog, BTreeSet<String>), StoreError> {
    let meta = store.collection_meta(coll)?;
    let omap = |name: &str| match store.omap_range(coll, name, None, None, usize::MAX) {
        Ok(r) => Ok(r),
        Err(StoreError::NoObject(..)) => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    let loaded = crate::machine::decode_loaded(
        coll,
        &meta,
        omap(META_OBJECT)?,
        omap(DUPS_OBJECT)?,
        omap(MISSING_OBJECT)?,
    )?;
    Ok((loaded.info, loaded.log, loaded.missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64 MiB store in `dir` (made first with `mkfs`).
    fn open_store(dir: &std::path::Path, mkfs: bool) -> Arc<Store> {
        let mut cfg = shoal_store::StoreConfig::new(dir, 64 << 20);
        cfg.reserve = 64 << 10;
        if mkfs {
            Store::mkfs(&cfg).unwrap();
        }
        Arc::new(Store::open(&cfg).unwrap())
    }

    /// Head of a one-member chain: writes `n` appends to one object, the
    /// request of write `i` being `tid` i.
    async fn append_writes(pg: &Pg, n: u64) {
        let ops = vec![ObjOp::Append {
            data: shoal_proto::osd::PayloadRange { offset: 0, len: 1 },
        }];
        for tid in 1..=n {
            let view = exec::ObjectView::load(pg.store(), &pg.coll, "o", &ops).unwrap();
            let resolved = exec::resolve(&ops, &view).unwrap();
            let reqid = ReqId { client: 9, tid };
            let (local, answer) = pg
                .start_write(reqid, "o", resolved, Bytes::from_static(b"x"))
                .unwrap();
            let r = local.fut.await;
            pg.local_done(local.version, r);
            answer.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn retries_of_trimmed_writes_are_answered_from_the_dups_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            entries: 16,
            dups: 20,
        };
        let id = PgRef { pool: 1, seed: 0 };
        let found = |pg: &Pg, tid| match pg.find_request(ReqId { client: 9, tid }) {
            Some(Ok(v)) => Some(v.seq),
            Some(Err(_)) => panic!("write {tid} is not in flight"),
            None => None,
        };
        {
            let pg = Pg::open(open_store(dir.path(), true), id, 0, limits)
                .await
                .unwrap();
            let interval = Interval {
                epoch: 1,
                acting: vec![0],
                up: vec![0],
                up_from: vec![1],
                min_size: 1,
                size: 1,
                pg_temp: false,
            };
            assert!(pg.set_interval(interval));
            pg.activate(Activation {
                interval: 1,
                acting: vec![0],
                info: PgInfo::default(),
                log: Vec::new(),
                dups: Vec::new(),
                backfill: false,
                missing: BTreeSet::new(),
                recovery: Missing::default(),
            })
            .await
            .unwrap();
            append_writes(&pg, 40).await;
            // 40 writes: 16 in the log, the 20 before them in the dups.
            assert_eq!(pg.log_state().log.len(), 16);
            assert_eq!(found(&pg, 40), Some(40));
            assert_eq!(found(&pg, 10), Some(10), "a trimmed write is remembered");
            assert_eq!(found(&pg, 4), None, "beyond the dups");
        }
        // Reopened from the store: the same requests are remembered.
        let pg = Pg::open(open_store(dir.path(), false), id, 0, limits)
            .await
            .unwrap();
        let state = pg.log_state();
        assert_eq!(state.dups.len(), 20);
        assert_eq!(state.dups.first().map(|d| d.version.seq), Some(5));
        assert_eq!(found(&pg, 5), Some(5));
        assert_eq!(found(&pg, 24), Some(24));
        assert_eq!(found(&pg, 4), None);
        let size = pg.store().stat(&pg.coll, "o").unwrap().size;
        assert_eq!(size, 40, "every append applied once");
    }

    #[tokio::test]
    async fn pages_of_client_objects_skip_the_bookkeeping_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), true);
        let id = PgRef { pool: 1, seed: 0 };
        let limits = LogLimits {
            entries: 100,
            dups: 100,
        };
        let pg = Pg::open(store.clone(), id, 0, limits).await.unwrap();
        let mut t = Transaction::new(pg.coll.clone());
        t.push(Op::Touch {
            name: MISSING_OBJECT.into(),
        });
        for i in 0..10 {
            t.push(Op::Touch {
                name: format!("obj-{i}"),
            });
        }
        store.submit(t).await.unwrap();

        let (first, more) = object_page(&store, &pg.coll, None, 5).unwrap();
        assert_eq!(
            first,
            (0..5).map(|i| format!("obj-{i}")).collect::<Vec<_>>()
        );
        assert!(more, "five more objects follow");
        let (rest, more) =
            object_page(&store, &pg.coll, first.last().map(String::as_str), 5).unwrap();
        assert_eq!(rest.len(), 5);
        assert!(!more);
        let (scanned, more) = pg.scan(None, 10).unwrap();
        assert_eq!(scanned.len(), 10);
        assert!(!more);
        assert_eq!(object_names(&store, &pg.coll).unwrap().len(), 10);
    }
}
