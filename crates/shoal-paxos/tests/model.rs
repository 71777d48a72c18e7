//! Exhaustive model checking of the real `Node` code with stateright.
//!
//! The model runs the crate's own state machines (not a re-implementation)
//! over a network that may lose, duplicate and reorder any message: sent
//! messages stay in a set forever and any of them may be delivered at any
//! time, any number of times, or never. Each transition is one event at one
//! node (deliver a message, start an election, propose a value, crash and
//! restart from the disk), followed by that node's shell loop (persist,
//! send, advance). Elections are explicit actions instead of timeouts
//! (time is not modelled; leases are off), ballots and values are bounded
//! so the state space is finite.
//!
//! Properties, checked in every reachable state:
//! - at most one value is chosen per slot, where "chosen" means a quorum
//!   of acceptors voted for it in one ballot at some point in the history
//!   (ghost record of every vote ever written);
//! - learners agree: the committed prefixes of all nodes are consistent;
//! - every committed value was chosen and was proposed;
//! - the disk holds exactly the node's durable state whenever no write is
//!   outstanding;
//! - (sanity, so the checks are not vacuous) some state has a committed
//!   value, and some state has every slot committed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use shoal_paxos::{
    Ballot, Command, Config, MemStorage, Message, Node, NodeId, Persist, PersistentState, Ready,
    Slot,
};
use stateright::{Checker, Model, Property};

#[derive(Clone, Debug)]
struct PaxosModel {
    members: Vec<NodeId>,
    /// (proposer, highest round it may campaign with).
    proposers: Vec<(NodeId, u64)>,
    /// (proposer, value): each value is proposed at most once, by its
    /// proposer, while that proposer leads.
    values: Vec<(NodeId, Vec<u8>)>,
    max_crashes: u8,
    /// The nodes that may crash.
    crashable: Vec<NodeId>,
    /// Explore only runs of at most this many steps (0: no bound).
    max_depth: usize,
    /// Runs that put anything in a slot above this are cut.
    max_slots: Slot,
    window: usize,
    /// Persist readies as separate steps (messages leave first; a crash
    /// loses readies not yet persisted) instead of right after each event.
    async_disk: bool,
    /// Followers told of commits at once (else only through the next
    /// accept: there are no heartbeats in the model).
    eager_commit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    nodes: Vec<Node>,
    disks: Vec<MemStorage>,
    /// Readies taken but not yet persisted, per node: (number, batch).
    unpersisted: Vec<VecDeque<(u64, Persist)>>,
    /// Every message ever sent: any of them may be delivered at any time,
    /// any number of times, or never (loss, duplication, reordering).
    net: BTreeSet<Msg>,
    /// Ghost: every (slot, ballot, acceptor, value) ever durably accepted.
    votes: BTreeSet<(Slot, Ballot, NodeId, Command)>,
    proposed: BTreeSet<Vec<u8>>,
    crashes: u8,
}

/// The disks are left out of the fingerprint: after each transition they
/// hold exactly the nodes' durable state (a property checks it), so they
/// add no information, only counters.
impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.nodes.hash(h);
        for q in &self.unpersisted {
            q.len().hash(h);
            for (_, p) in q {
                p.hash(h);
            }
        }
        self.net.hash(h);
        self.votes.hash(h);
        self.proposed.hash(h);
        self.crashes.hash(h);
    }
}

/// A message shared between states, with its hash computed once.
#[derive(Clone, Debug)]
struct Msg {
    hash: u64,
    msg: Arc<Message>,
}

impl Msg {
    fn new(msg: Message) -> Msg {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        msg.hash(&mut h);
        Msg {
            hash: h.finish(),
            msg: Arc::new(msg),
        }
    }
}

impl PartialEq for Msg {
    fn eq(&self, o: &Msg) -> bool {
        self.hash == o.hash && self.msg == o.msg
    }
}
impl Eq for Msg {}
impl PartialOrd for Msg {
    fn partial_cmp(&self, o: &Msg) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Msg {
    fn cmp(&self, o: &Msg) -> std::cmp::Ordering {
        self.hash.cmp(&o.hash).then_with(|| self.msg.cmp(&o.msg))
    }
}
impl Hash for Msg {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.hash.hash(h);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Deliver(Msg),
    Persist(NodeId),
    Campaign(NodeId),
    Propose(NodeId, Vec<u8>),
    Crash(NodeId),
}

impl PaxosModel {
    fn config(&self, id: NodeId) -> Config {
        let mut c = Config::new(id, self.members.clone());
        c.election_timeout = 100;
        c.heartbeat_interval = 10;
        c.lease_duration = 0;
        c.window = self.window;
        c.eager_commit = self.eager_commit;
        c.snapshot_interval = 0;
        c
    }

    fn index(&self, id: NodeId) -> usize {
        self.members.iter().position(|m| *m == id).unwrap()
    }

    fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// The node's shell loop: take readies, send their messages; persist
    /// and advance at once, or leave that to `Persist` actions.
    fn settle(&self, st: &mut State, i: usize) {
        let mut guard = 0;
        while st.nodes[i].has_ready() {
            guard += 1;
            assert!(guard < 1000, "ready loop: {:?}", st.nodes[i]);
            let mut rd = st.nodes[i].ready();
            let messages = std::mem::take(&mut rd.messages);
            st.net.extend(messages.into_iter().map(Msg::new));
            if self.async_disk && !st.unpersisted[i].is_empty() && rd.persist.is_empty() {
                // Nothing to write: done once the batch before it is.
                if let Some(last) = st.unpersisted[i].back_mut() {
                    last.0 = rd.number;
                }
            } else if self.async_disk && !rd.persist.is_empty() {
                st.unpersisted[i].push_back((rd.number, rd.persist));
            } else {
                persist(st, i, &rd.persist);
                st.nodes[i].advance(&rd).unwrap();
            }
        }
    }
}

/// Writes a batch to node `i`'s disk; its entries are now votes.
fn persist(st: &mut State, i: usize, p: &Persist) {
    st.disks[i].apply(p);
    let id = st.nodes[i].id();
    for e in &p.entries {
        st.votes.insert((e.slot, e.ballot, id, e.command.clone()));
    }
}

/// Per slot, the values a quorum voted for in one ballot.
fn chosen(model: &PaxosModel, st: &State) -> BTreeMap<Slot, BTreeSet<Command>> {
    let mut count: BTreeMap<(Slot, Ballot, &Command), usize> = BTreeMap::new();
    for (s, b, _, c) in &st.votes {
        *count.entry((*s, *b, c)).or_default() += 1;
    }
    let mut out: BTreeMap<Slot, BTreeSet<Command>> = BTreeMap::new();
    for ((s, _, c), n) in count {
        if n >= model.quorum() {
            out.entry(s).or_default().insert(c.clone());
        }
    }
    out
}

fn committed(n: &Node) -> Vec<(Slot, Command)> {
    (n.log_start()..=n.commit_index())
        .filter_map(|s| n.entry(s).map(|e| (s, e.command.clone())))
        .collect()
}

impl Model for PaxosModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let nodes = self
            .members
            .iter()
            .map(|&id| Node::new(self.config(id), PersistentState::default()).unwrap())
            .collect();
        vec![State {
            nodes,
            disks: vec![MemStorage::new(); self.members.len()],
            unpersisted: vec![VecDeque::new(); self.members.len()],
            net: BTreeSet::new(),
            votes: BTreeSet::new(),
            proposed: BTreeSet::new(),
            crashes: 0,
        }]
    }

    fn actions(&self, st: &State, actions: &mut Vec<Action>) {
        for &(p, max_round) in &self.proposers {
            let n = &st.nodes[self.index(p)];
            if n.promised().round < max_round {
                actions.push(Action::Campaign(p));
            }
            if n.is_leader() {
                for (_, v) in self.values.iter().filter(|(q, _)| *q == p) {
                    if !st.proposed.contains(v) {
                        actions.push(Action::Propose(p, v.clone()));
                    }
                }
            }
        }
        if st.crashes < self.max_crashes {
            for &m in &self.crashable {
                actions.push(Action::Crash(m));
            }
        }
        for (i, q) in st.unpersisted.iter().enumerate() {
            if !q.is_empty() {
                actions.push(Action::Persist(self.members[i]));
            }
        }
        for m in &st.net {
            actions.push(Action::Deliver(m.clone()));
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut st = last.clone();
        let i = match &action {
            Action::Deliver(m) => {
                let i = self.index(m.msg.to);
                st.nodes[i].step((*m.msg).clone(), 0).unwrap();
                i
            }
            Action::Campaign(p) => {
                let i = self.index(*p);
                st.nodes[i].campaign(0);
                let max_round = self
                    .proposers
                    .iter()
                    .find(|(q, _)| q == p)
                    .map_or(0, |x| x.1);
                if st.nodes[i].ballot().is_some_and(|b| b.round > max_round) {
                    return None;
                }
                i
            }
            Action::Propose(p, v) => {
                let i = self.index(*p);
                st.nodes[i].propose(v.clone()).ok()?;
                st.proposed.insert(v.clone());
                i
            }
            Action::Persist(m) => {
                let i = self.index(*m);
                let (number, p) = st.unpersisted[i].pop_front()?;
                persist(&mut st, i, &p);
                let rd = Ready {
                    number,
                    ..Ready::default()
                };
                st.nodes[i].advance(&rd).unwrap();
                i
            }
            Action::Crash(m) => {
                let i = self.index(*m);
                st.crashes += 1;
                st.unpersisted[i].clear();
                st.nodes[i] = Node::new(self.config(*m), st.disks[i].state()).unwrap();
                i
            }
        };
        self.settle(&mut st, i);
        if st.votes.iter().any(|(s, ..)| *s > self.max_slots) {
            return None;
        }
        Some(st)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "at most one value chosen per slot",
                |m: &PaxosModel, st: &State| chosen(m, st).values().all(|vs| vs.len() <= 1),
            ),
            Property::always("learners agree", |_, st: &State| {
                let logs: Vec<Vec<(Slot, Command)>> = st.nodes.iter().map(committed).collect();
                let mut merged: BTreeMap<Slot, &Command> = BTreeMap::new();
                for l in &logs {
                    for (s, c) in l {
                        if let Some(prev) = merged.insert(*s, c) {
                            if prev != c {
                                return false;
                            }
                        }
                    }
                }
                true
            }),
            Property::always(
                "committed values were chosen and proposed",
                |m: &PaxosModel, st: &State| {
                    let ch = chosen(m, st);
                    st.nodes.iter().all(|n| {
                        committed(n).iter().all(|(s, c)| {
                            let was_chosen = ch.get(s).is_some_and(|vs| vs.contains(c));
                            let was_proposed = match c {
                                Command::Noop => true,
                                Command::Value(v) => st.proposed.contains(v),
                            };
                            was_chosen && was_proposed
                        })
                    })
                },
            ),
            Property::sometimes("a value is committed", |_, st: &State| {
                st.nodes.iter().any(|n| n.commit_index() > 0)
            }),
            Property::sometimes("every slot committed", |m: &PaxosModel, st: &State| {
                st.nodes.iter().any(|n| n.commit_index() >= m.max_slots)
            }),
            Property::always(
                "the disk holds the node's durable state",
                |_, st: &State| {
                    st.nodes
                        .iter()
                        .zip(&st.disks)
                        .zip(&st.unpersisted)
                        .all(|((n, d), q)| {
                            if !q.is_empty() {
                                return true;
                            }
                            let s = d.state();
                            s.promised == n.promised()
                                && s.commit == n.commit_index()
                                && s.entries.iter().eq(n.entries())
                        })
                },
            ),
        ]
    }
}

fn check(model: PaxosModel, label: &str) -> usize {
    let start = Instant::now();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(2);
    let depth = model.max_depth;
    let mut builder = model.checker().threads(threads);
    if depth > 0 {
        builder = builder.target_max_depth(depth);
    }
    let target: Option<usize> = std::env::var("SHOAL_PAXOS_MODEL_TARGET")
        .ok()
        .and_then(|v| v.parse().ok());
    if let Some(n) = target {
        builder = builder.target_state_count(n);
    }
    // Depth-first keeps only a stack and the fingerprints in memory; a
    // depth bound needs breadth-first (every state within the bound).
    if depth > 0 || std::env::var("SHOAL_PAXOS_MODEL_BFS").is_ok() {
        report(builder.spawn_bfs().join(), label, start, target)
    } else {
        report(builder.spawn_dfs().join(), label, start, target)
    }
}

fn report(
    checker: impl Checker<PaxosModel>,
    label: &str,
    start: Instant,
    target: Option<usize>,
) -> usize {
    let states = checker.unique_state_count();
    let capped = target.is_some_and(|t| checker.state_count() >= t);
    eprintln!(
        "{label}: {states} unique states ({} generated), max depth {}, {:.1?}{}",
        checker.state_count(),
        checker.max_depth(),
        start.elapsed(),
        if capped {
            ", STOPPED at SHOAL_PAXOS_MODEL_TARGET (partial)"
        } else {
            ""
        }
    );
    checker.assert_properties();
    states
}

fn base() -> PaxosModel {
    PaxosModel {
        members: vec![1, 2, 3],
        proposers: vec![(1, 1), (2, 1)],
        values: vec![(1, b"a".to_vec()), (2, b"b".to_vec())],
        max_crashes: 0,
        crashable: vec![1, 2, 3],
        max_depth: 0,
        max_slots: 1,
        window: 2,
        eager_commit: true,
        async_disk: false,
    }
}

/// The core Paxos race: 3 acceptors, 2 proposers with one ballot each
/// competing to put their own value in the same slot, any message lost,
/// duplicated or reordered, followers told of commits at once, and one
/// crash-restart of any node. Exhaustive.
#[test]
fn model_one_slot_two_proposers_crash() {
    let states = check(
        PaxosModel {
            max_crashes: 1,
            ..base()
        },
        "one slot, 2 proposers, 1 crash",
    );
    assert!(states > 10_000, "suspiciously small state space: {states}");
}

/// Two slots, the proposers' values competing for them (commits learned
/// through the next accept). Exhaustive.
#[test]
fn model_two_slots_competing() {
    check(
        PaxosModel {
            max_slots: 2,
            eager_commit: false,
            ..base()
        },
        "two slots, competing values",
    );
}

/// Pipelining: proposer 1 has two values in flight at once (window 2),
/// proposer 2 may take over and recover them. Exhaustive.
#[test]
fn model_two_slots_pipelined() {
    check(
        PaxosModel {
            values: vec![(1, b"a".to_vec()), (1, b"b".to_vec())],
            max_slots: 2,
            eager_commit: false,
            ..base()
        },
        "two slots, pipelined",
    );
}

/// Three ballots (proposer 1 campaigns twice): a leader must recover the
/// value of the highest ballot among conflicting reports. Every run of up
/// to 16 steps (the shortest runs that need the rule have 14).
#[test]
fn model_three_ballots_bounded_depth() {
    check(
        PaxosModel {
            proposers: vec![(1, 2), (2, 1)],
            eager_commit: false,
            max_depth: 16,
            ..base()
        },
        "one slot, 3 ballots, depth 16",
    );
}

/// The shell contract: messages leave before the disk write, writes
/// complete later in any interleaving with deliveries, replies wait for
/// them. Exhaustive.
#[test]
fn model_async_disk() {
    check(
        PaxosModel {
            async_disk: true,
            eager_commit: false,
            ..base()
        },
        "one slot, async disk",
    );
}

/// Exploration helper: `SHOAL_PAXOS_MODEL="rounds=1 crashes=0 values=a1,b2
/// window=2 depth=0 slots=2"` (values: name and proposer).
#[test]
#[ignore]
fn model_custom() {
    let spec = std::env::var("SHOAL_PAXOS_MODEL").unwrap_or_default();
    let mut m = PaxosModel {
        members: vec![1, 2, 3],
        proposers: vec![(1, 1), (2, 1)],
        values: vec![(1, b"a".to_vec()), (2, b"b".to_vec())],
        max_crashes: 0,
        crashable: vec![1, 2, 3],
        max_depth: 0,
        max_slots: 2,
        window: 2,
        eager_commit: true,
        async_disk: false,
    };
    for kv in spec.split_whitespace() {
        let (k, v) = kv.split_once('=').expect("key=value");
        match k {
            "rounds" => {
                let r = v.parse().unwrap();
                m.proposers = vec![(1, r), (2, r)];
            }
            // e.g. proposers=1:2,2:1
            "proposers" => {
                m.proposers = v
                    .split(',')
                    .map(|x| {
                        let (a, b) = x.split_once(':').unwrap();
                        (a.parse().unwrap(), b.parse().unwrap())
                    })
                    .collect()
            }
            "crashes" => m.max_crashes = v.parse().unwrap(),
            "window" => m.window = v.parse().unwrap(),
            "depth" => m.max_depth = v.parse().unwrap(),
            "slots" => m.max_slots = v.parse().unwrap(),
            "eager" => m.eager_commit = v == "1",
            "async" => m.async_disk = v == "1",
            "crashable" => m.crashable = v.split(',').map(|x| x.parse().unwrap()).collect(),
            "values" => {
                m.values = v
                    .split(',')
                    .map(|x| (u64::from(x.as_bytes()[1] - b'0'), vec![x.as_bytes()[0]]))
                    .collect()
            }
            _ => panic!("unknown key {k}"),
        }
    }
    check(m, &spec);
}

/// Bigger, on demand (hours; cap it with SHOAL_PAXOS_MODEL_TARGET=<states
/// generated>): asynchronous disks, a crash of any node, eager commits,
/// two slots, three ballots.
/// `cargo test -p shoal-paxos --release --test model -- --ignored model_large`.
#[test]
#[ignore]
fn model_large() {
    check(
        PaxosModel {
            proposers: vec![(1, 2), (2, 1)],
            max_crashes: 1,
            max_slots: 2,
            async_disk: true,
            ..base()
        },
        "large: two slots, 3 ballots, 1 crash, async disk",
    );
}
