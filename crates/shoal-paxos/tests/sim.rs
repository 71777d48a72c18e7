//! Randomized deterministic simulation of whole clusters.
//!
//! Each seed builds a cluster of 3 or 5 nodes and runs it in simulated
//! time (1 ms steps) through a chaos phase, then a healed phase:
//!
//! - network: per-message random delay (reordering), loss, duplication,
//!   partitions (random splits, one-way cuts), all healing later;
//! - disks: each shell persists its readies asynchronously, in order, a
//!   few ms later; a crash loses every ready not yet persisted (the
//!   messages of a ready are sent at once: they never depend on it);
//! - crashes and restarts from the persisted state only, with a fresh
//!   monotonic clock;
//! - clocks: every node's clock runs at its own rate within the configured
//!   drift allowance and from its own origin;
//! - snapshots: shells compact when asked, lagging nodes catch up from the
//!   log or by snapshot;
//! - a client proposes unique values to whoever leads and retries the
//!   ones it has not seen committed.
//!
//! Checked after every step: every value any node delivers matches the
//! one log (slot by slot), deliveries are contiguous, every committed value
//! was proposed, at most one node can serve lease reads, while one can no
//! node leads with a higher ballot, and its commit index is no lower than
//! anyone's. At the end of the healed
//! phase (liveness): every node is up, all commit indices are equal and
//! every value the client proposed is committed.
//!
//! `SHOAL_PAXOS_SIM_SEEDS=n` sets the number of seeds (default 10000),
//! `SHOAL_PAXOS_SIM_SEED=s` runs one seed (to reproduce a failure);
//! the ignored test `sim_many_seeds` runs a million.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use shoal_paxos::{
    Command, Config, MemStorage, Message, Node, NodeId, PersistentState, ProposeError, Ready, Slot,
    Snapshot, Time,
};

/// splitmix64: small, fast, good enough for choosing faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `ppm` parts per million.
    fn chance(&mut self, ppm: u64) -> bool {
        self.below(1_000_000) < ppm
    }
}

const DRIFT_PPM: u32 = 100_000; // 10%: far more than real clocks, to stress leases

fn config(id: NodeId, n: u64, seed: u64, election_timeout: Time) -> Config {
    let mut c = Config::new(id, (1..=n).collect());
    c.election_timeout = election_timeout;
    c.heartbeat_interval = 10;
    c.lease_duration = 40;
    c.max_clock_drift_ppm = DRIFT_PPM;
    c.window = 4;
    c.max_pending = 64;
    c.catchup_batch = 16;
    c.snapshot_interval = 24;
    c.retain_entries = 6;
    c.seed = seed ^ id;
    c
}

/// The shell's state machine: the applied values by slot, after a
/// snapshot base.
#[derive(Clone, Default)]
struct Machine {
    values: Vec<(Slot, Command)>,
    base: Slot,
}

impl Machine {
    fn last(&self) -> Slot {
        self.values.last().map_or(self.base, |(s, _)| *s)
    }
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (s, c) in &self.values {
            out.extend_from_slice(&s.to_le_bytes());
            match c {
                Command::Noop => out.push(0),
                Command::Value(v) => {
                    out.push(1);
                    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    out.extend_from_slice(v);
                }
            }
        }
        out
    }
    fn decode(slot: Slot, data: &[u8]) -> Machine {
        let mut values = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let s = u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
            i += 8;
            if data[i] == 0 {
                i += 1;
                values.push((s, Command::Noop));
            } else {
                let n = u32::from_le_bytes(data[i + 1..i + 5].try_into().unwrap()) as usize;
                values.push((s, Command::Value(data[i + 5..i + 5 + n].to_vec())));
                i += 5 + n;
            }
        }
        Machine { values, base: slot }
    }
}

struct SimNode {
    node: Option<Node>,
    disk: MemStorage,
    machine: Machine,
    /// Readies handed out, waiting for the disk (in order), with the time
    /// the write completes.
    unpersisted: VecDeque<(Time, Ready)>,
    drift_ppm: i64,
    origin: u64,
}

impl SimNode {
    fn local(&self, t: u64) -> Time {
        let t = t as i128;
        (self.origin as i128 + t + t * self.drift_ppm as i128 / 1_000_000) as Time
    }
}

struct Sim {
    rng: Rng,
    seed: u64,
    n: u64,
    t: u64,
    nodes: Vec<SimNode>,
    net: Vec<(u64, Message)>,
    /// Links (from, to) that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    loss_ppm: u64,
    dup_ppm: u64,
    max_delay: u64,
    disk_delay: u64,
    election_timeout: Time,
    /// Per-ms chances of: a crash, a crash in the middle of a disk write,
    /// an instant reboot, a forced election at a random node.
    crash_ppm: u64,
    torn_write_ppm: u64,
    reboot_ppm: u64,
    campaign_ppm: u64,
    /// The one log every delivery must agree with.
    chosen: BTreeMap<Slot, Command>,
    next_value: u64,
    /// Values proposed and not yet seen committed: id -> last attempt.
    pending: BTreeMap<u64, u64>,
    committed_values: BTreeSet<u64>,
    stats: Stats,
}

#[derive(Default, Clone, Copy)]
struct Stats {
    delivered: u64,
    crashes: u64,
    snapshots_installed: u64,
    lease_reads: u64,
    committed: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDEAD_BEEF);
        let n = if rng.below(3) == 0 { 5 } else { 3 };
        // Election timeouts shorter than the lease make candidates knock
        // right when grants run out (stressing the lease bound).
        let election_timeout = [20, 40, 60][rng.below(3) as usize];
        let mut nodes = Vec::new();
        for id in 1..=n {
            // Extreme drifts half of the time.
            let d = DRIFT_PPM as i64;
            let drift_ppm = match rng.below(4) {
                0 => d,
                1 => -d,
                _ => rng.below(2 * DRIFT_PPM as u64 + 1) as i64 - d,
            };
            let origin = rng.below(1_000_000);
            let c = config(id, n, seed, election_timeout);
            nodes.push(SimNode {
                node: Some(Node::new(c, PersistentState::default()).unwrap()),
                disk: MemStorage::new(),
                machine: Machine::default(),
                unpersisted: VecDeque::new(),
                drift_ppm,
                origin,
            });
        }
        let loss_ppm = [0, 20_000, 100_000, 300_000][rng.below(4) as usize];
        let dup_ppm = [0, 20_000, 100_000][rng.below(3) as usize];
        let max_delay = 1 + rng.below(15);
        let disk_delay = rng.below(4);
        let crash_ppm = [500, 1_500, 5_000][rng.below(3) as usize];
        let torn_write_ppm = [0, 2_000, 20_000][rng.below(3) as usize];
        let reboot_ppm = [0, 1_000, 5_000][rng.below(3) as usize];
        let campaign_ppm = [0, 1_000, 10_000][rng.below(3) as usize];
        Sim {
            rng,
            seed,
            n,
            t: 0,
            nodes,
            net: Vec::new(),
            cut: BTreeSet::new(),
            loss_ppm,
            dup_ppm,
            max_delay,
            disk_delay,
            election_timeout,
            crash_ppm,
            torn_write_ppm,
            reboot_ppm,
            campaign_ppm,
            chosen: BTreeMap::new(),
            next_value: 0,
            pending: BTreeMap::new(),
            committed_values: BTreeSet::new(),
            stats: Stats::default(),
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "seed {} (n={}, t={}, election timeout {}, loss={}ppm, dup={}ppm, delay<={}): \
             {what}\nreproduce: SHOAL_PAXOS_SIM_SEED={} cargo test -p shoal-paxos --test sim",
            self.seed,
            self.n,
            self.t,
            self.election_timeout,
            self.loss_ppm,
            self.dup_ppm,
            self.max_delay,
            self.seed
        );
    }

    fn send(&mut self, m: Message, lossy: bool) {
        if lossy && self.rng.chance(self.loss_ppm) {
            return;
        }
        let copies = if lossy && self.rng.chance(self.dup_ppm) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.t + 1 + self.rng.below(self.max_delay);
            self.net.push((at, m.clone()));
        }
    }

    /// The shell loop of node `i`: take readies, send their messages at
    /// once, queue them for the disk.
    fn pump(&mut self, i: usize, lossy: bool) {
        let mut msgs = Vec::new();
        let done_at = self.t + self.disk_delay;
        let sn = &mut self.nodes[i];
        let Some(node) = sn.node.as_mut() else {
            return;
        };
        while node.has_ready() {
            let mut rd = node.ready();
            msgs.append(&mut rd.messages);
            sn.unpersisted.push_back((done_at, rd));
        }
        for m in msgs {
            self.send(m, lossy);
        }
    }

    /// Completes the disk writes due by now, in order: persist, apply,
    /// advance.
    fn complete_writes(&mut self, i: usize, lossy: bool) {
        loop {
            let sn = &mut self.nodes[i];
            let Some((at, _)) = sn.unpersisted.front() else {
                break;
            };
            if *at > self.t || sn.node.is_none() {
                break;
            }
            if lossy && self.rng.chance(self.torn_write_ppm) {
                // Crash during the write: this ready and later ones are lost.
                self.crash(i);
                break;
            }
            let (_, rd) = sn.unpersisted.pop_front().unwrap();
            sn.disk.apply(&rd.persist);
            if let Some(s) = &rd.install_snapshot {
                let m = Machine::decode(s.slot, &s.data);
                for (slot, c) in &m.values {
                    if self.chosen.get(slot).is_some_and(|x| x != c) {
                        let what = format!("snapshot disagrees at slot {slot}");
                        self.fail(what);
                    }
                }
                self.nodes[i].machine = m;
                self.stats.snapshots_installed += 1;
            }
            for c in &rd.committed {
                let last = self.nodes[i].machine.last();
                if c.slot != last + 1 {
                    let what = format!("node {} applied slot {} after {last}", i + 1, c.slot);
                    self.fail(what);
                }
                match self.chosen.get(&c.slot) {
                    Some(prev) if *prev != c.command => {
                        let what = format!(
                            "slot {} committed as {:?} at node {} but {:?} elsewhere",
                            c.slot,
                            c.command,
                            i + 1,
                            prev
                        );
                        self.fail(what);
                    }
                    Some(_) => {}
                    None => {
                        self.chosen.insert(c.slot, c.command.clone());
                        self.stats.committed += 1;
                    }
                }
                if let Command::Value(v) = &c.command {
                    let id = u64::from_le_bytes(v.as_slice().try_into().unwrap_or([0xff; 8]));
                    if v.len() != 8 || id >= self.next_value {
                        let what = format!("committed value {v:?} was never proposed");
                        self.fail(what);
                    }
                    self.pending.remove(&id);
                    self.committed_values.insert(id);
                }
                self.nodes[i]
                    .machine
                    .values
                    .push((c.slot, c.command.clone()));
            }
            let wanted = rd.snapshot_wanted.is_some();
            let sn = &mut self.nodes[i];
            let node = sn.node.as_mut().unwrap();
            node.advance(&rd).unwrap();
            // Snapshot when asked (and now and then regardless).
            if wanted || self.rng.chance(2_000) {
                let slot = sn.machine.last();
                if slot > sn.node.as_ref().unwrap().snapshot().map_or(0, |s| s.slot) {
                    let snap = Snapshot {
                        slot,
                        data: sn.machine.encode(),
                    };
                    sn.node.as_mut().unwrap().compact(snap).unwrap();
                }
            }
            self.pump(i, lossy);
        }
    }

    fn crash(&mut self, i: usize) {
        let sn = &mut self.nodes[i];
        sn.node = None;
        sn.unpersisted.clear();
        self.stats.crashes += 1;
    }

    fn restart(&mut self, i: usize) {
        let seed = self.seed;
        let n = self.n;
        let origin = self.rng.below(1_000_000);
        let sn = &mut self.nodes[i];
        let state = sn.disk.state();
        sn.machine = match &state.snapshot {
            Some(s) => Machine::decode(s.slot, &s.data),
            None => Machine::default(),
        };
        let mut c = config(
            i as u64 + 1,
            n,
            seed.wrapping_add(self.t),
            self.election_timeout,
        );
        c.applied = sn.machine.last();
        sn.node = Some(Node::new(c, state).unwrap_or_else(|e| panic!("restart: {e}")));
        sn.origin = origin;
    }

    fn propose(&mut self, id: u64) {
        self.pending.insert(id, self.t);
        // The client finds the leader by asking around (peeking here).
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].node.as_ref().is_some_and(|n| n.is_leader()))
            .collect();
        let i = if leaders.is_empty() {
            self.rng.below(self.n) as usize
        } else {
            leaders[self.rng.below(leaders.len() as u64) as usize]
        };
        if let Some(node) = self.nodes[i].node.as_mut() {
            match node.propose(id.to_le_bytes().to_vec()) {
                Ok(()) | Err(ProposeError::NotLeader { .. }) | Err(ProposeError::QueueFull(_)) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }

    fn check_leases(&mut self) {
        let mut holders = Vec::new();
        for (i, sn) in self.nodes.iter().enumerate() {
            if let Some(node) = &sn.node {
                if node.can_serve_lease_read(sn.local(self.t)) {
                    holders.push(i);
                }
            }
        }
        if holders.len() > 1 {
            let what = format!("nodes {holders:?} all hold a lease");
            self.fail(what);
        }
        if let Some(&h) = holders.first() {
            self.stats.lease_reads += 1;
            let holder = self.nodes[h].node.as_ref().unwrap();
            let hc = holder.commit_index();
            let hb = holder.ballot();
            for (i, sn) in self.nodes.iter().enumerate() {
                if let Some(node) = &sn.node {
                    // The lease argument: no higher ballot completes phase 1
                    // while the lease holds.
                    if node.is_leader() && node.ballot() > hb {
                        let what = format!(
                            "node {} leads with {:?} while node {} holds a lease for {:?}",
                            i + 1,
                            node.ballot(),
                            h + 1,
                            hb
                        );
                        self.fail(what);
                    }
                    if node.commit_index() > hc {
                        let what = format!(
                            "lease holder {} has commit {hc} but node {} has {}",
                            h + 1,
                            i + 1,
                            node.commit_index()
                        );
                        self.fail(what);
                    }
                }
            }
        }
    }

    /// One millisecond.
    fn step(&mut self, chaos: bool, clients: bool) {
        self.t += 1;
        let t = self.t;
        // Deliver what is due, in random order.
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.net.len() {
            if self.net[i].0 <= t {
                due.push(self.net.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        for k in (1..due.len()).rev() {
            let j = self.rng.below(k as u64 + 1) as usize;
            due.swap(k, j);
        }
        for m in due {
            if self.cut.contains(&(m.from, m.to)) {
                continue;
            }
            let to = m.to as usize - 1;
            let now = self.nodes[to].local(t);
            if let Some(node) = self.nodes[to].node.as_mut() {
                node.step(m, now).unwrap();
                self.stats.delivered += 1;
                self.pump(to, chaos);
            }
        }
        // Ticks every 2 ms, disks.
        for i in 0..self.nodes.len() {
            if (t + i as u64) % 2 == 0 {
                let now = self.nodes[i].local(t);
                if let Some(node) = self.nodes[i].node.as_mut() {
                    node.tick(now);
                    self.pump(i, chaos);
                }
            }
            self.complete_writes(i, chaos);
        }
        if chaos {
            self.faults();
        }
        if clients && self.rng.chance(60_000) {
            let id = self.next_value;
            self.next_value += 1;
            self.propose(id);
        }
        // Retry values not seen committed for a while.
        if t % 20 == 0 {
            let stale: Vec<u64> = self
                .pending
                .iter()
                .filter(|(_, at)| t - **at >= 150)
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                self.propose(id);
            }
        }
        self.check_leases();
    }

    fn faults(&mut self) {
        let n = self.n as usize;
        // Crash mid-flight, with unpersisted readies lost.
        if self.rng.chance(self.crash_ppm) {
            let i = self.rng.below(self.n) as usize;
            if self.nodes[i].node.is_some() {
                self.crash(i);
            }
        }
        // Instant reboot: back within the same millisecond.
        if self.rng.chance(self.reboot_ppm) {
            let i = self.rng.below(self.n) as usize;
            if self.nodes[i].node.is_some() {
                self.crash(i);
            }
            self.restart(i);
        }
        // An election forced at a random moment.
        if self.rng.chance(self.campaign_ppm) {
            let i = self.rng.below(self.n) as usize;
            let now = self.nodes[i].local(self.t);
            if let Some(node) = self.nodes[i].node.as_mut() {
                node.campaign(now);
                self.pump(i, true);
            }
        }
        for i in 0..n {
            if self.nodes[i].node.is_none() && self.rng.chance(5_000) {
                self.restart(i);
            }
        }
        // Partitions: a random split, or a one-way cut; heal later.
        if self.rng.chance(1_000) {
            self.cut.clear();
            let mask = self.rng.below(1 << n);
            for a in 0..n {
                for b in 0..n {
                    if (mask >> a) & 1 != (mask >> b) & 1 {
                        self.cut.insert((a as u64 + 1, b as u64 + 1));
                    }
                }
            }
        }
        if self.rng.chance(500) {
            let a = self.rng.below(self.n) + 1;
            let b = self.rng.below(self.n) + 1;
            self.cut.insert((a, b));
        }
        if self.rng.chance(1_500) {
            self.cut.clear();
        }
    }

    fn run(&mut self, chaos_ms: u64, heal_ms: u64) -> Stats {
        for _ in 0..chaos_ms {
            self.step(true, true);
        }
        // Heal: everyone up, no cuts, no more loss.
        self.cut.clear();
        for i in 0..self.nodes.len() {
            if self.nodes[i].node.is_none() {
                self.restart(i);
            }
        }
        for k in 0..heal_ms {
            self.step(false, k < heal_ms / 3);
        }
        // Liveness.
        if !self.pending.is_empty() {
            let what = format!(
                "{} proposals never committed after healing: {:?}",
                self.pending.len(),
                self.pending.keys().take(5).collect::<Vec<_>>()
            );
            self.fail(what);
        }
        let commits: Vec<Slot> = self
            .nodes
            .iter()
            .map(|s| s.node.as_ref().unwrap().commit_index())
            .collect();
        if commits.iter().any(|c| *c != commits[0]) {
            let what = format!("commit indices differ after healing: {commits:?}");
            self.fail(what);
        }
        for sn in &self.nodes {
            for (s, c) in &sn.machine.values {
                if self.chosen.get(s) != Some(c) {
                    self.fail(format!("machine disagrees at slot {s}"));
                }
            }
        }
        self.stats
    }
}

fn run_seeds(seeds: impl Iterator<Item = u64> + Send + Clone, label: &str) {
    let start = Instant::now();
    let seeds: Vec<u64> = seeds.collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(2);
    let total = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let seeds = &seeds;
                s.spawn(move || {
                    let mut acc = Stats::default();
                    for &seed in seeds.iter().skip(k).step_by(threads) {
                        let st = Sim::new(seed).run(2_000, 2_000);
                        acc.delivered += st.delivered;
                        acc.crashes += st.crashes;
                        acc.snapshots_installed += st.snapshots_installed;
                        acc.lease_reads += st.lease_reads;
                        acc.committed += st.committed;
                    }
                    acc
                })
            })
            .collect();
        let mut acc = Stats::default();
        for h in handles {
            let st = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            acc.delivered += st.delivered;
            acc.crashes += st.crashes;
            acc.snapshots_installed += st.snapshots_installed;
            acc.lease_reads += st.lease_reads;
            acc.committed += st.committed;
        }
        acc
    });
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{label}: {} seeds in {secs:.1}s ({:.0} seeds/s): {} messages delivered, {} slots \
         committed, {} crashes, {} snapshots installed, {} lease-read checks",
        seeds.len(),
        seeds.len() as f64 / secs,
        total.delivered,
        total.committed,
        total.crashes,
        total.snapshots_installed,
        total.lease_reads
    );
}

#[test]
fn sim_seeds() {
    if let Some(seed) = std::env::var("SHOAL_PAXOS_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        run_seeds(std::iter::once(seed), "one seed");
        return;
    }
    let n: u64 = std::env::var("SHOAL_PAXOS_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    run_seeds(0..n, "sim");
}

/// A million seeds (hours): `cargo test -p shoal-paxos --release --test sim
/// -- --ignored`; `SHOAL_PAXOS_SIM_SEEDS` and `SHOAL_PAXOS_SIM_FIRST` pick
/// the range.
#[test]
#[ignore]
fn sim_many_seeds() {
    let n: u64 = std::env::var("SHOAL_PAXOS_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let first: u64 = std::env::var("SHOAL_PAXOS_SIM_FIRST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    run_seeds(first..first + n, "sim (many)");
}
