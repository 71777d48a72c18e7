//! A small deterministic cluster harness for the crate's tests: nodes,
//! their in-memory disks, a FIFO network with a drop filter, and the
//! state machines the shells apply (the list of committed slots).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use shoal_paxos::{
    Command, Config, MemStorage, Message, Node, NodeId, PersistentState, Slot, Snapshot, Time,
};

/// A shell's state machine: the chosen values it applied, by slot, and
/// the snapshot it was restored from.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub base: Slot,
    pub values: Vec<(Slot, Command)>,
}

impl Machine {
    pub fn last(&self) -> Slot {
        self.values.last().map_or(self.base, |(s, _)| *s)
    }
    pub fn encode(&self) -> Vec<u8> {
        // Values only, for the tests' snapshots: slot count then payloads.
        let mut out = Vec::new();
        for (s, c) in &self.values {
            out.extend_from_slice(&s.to_le_bytes());
            match c {
                Command::Noop => out.extend_from_slice(&u32::MAX.to_le_bytes()),
                Command::Value(v) => {
                    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    out.extend_from_slice(v);
                }
            }
        }
        out
    }
    pub fn decode(base: Slot, data: &[u8]) -> Machine {
        let mut values = Vec::new();
        let mut i = 0;
        while i + 12 <= data.len() {
            let s = u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
            let n = u32::from_le_bytes(data[i + 8..i + 12].try_into().unwrap());
            i += 12;
            if n == u32::MAX {
                values.push((s, Command::Noop));
            } else {
                let n = n as usize;
                values.push((s, Command::Value(data[i..i + n].to_vec())));
                i += n;
            }
        }
        Machine { base, values }
    }
}

pub struct Harness {
    pub configs: BTreeMap<NodeId, Config>,
    pub nodes: BTreeMap<NodeId, Node>,
    pub disks: BTreeMap<NodeId, MemStorage>,
    pub machines: BTreeMap<NodeId, Machine>,
    pub net: VecDeque<Message>,
    pub now: Time,
    /// Links (from, to) that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub down: BTreeSet<NodeId>,
    pub delivered: u64,
    pub snapshot_wanted: BTreeMap<NodeId, Slot>,
}

pub fn config(id: NodeId, n: u64) -> Config {
    let mut c = Config::new(id, (1..=n).collect());
    c.election_timeout = 100;
    c.heartbeat_interval = 10;
    c.lease_duration = 50;
    c.max_clock_drift_ppm = 10_000;
    c.window = 4;
    c.catchup_batch = 8;
    c.snapshot_interval = 0;
    c.retain_entries = 0;
    c
}

impl Harness {
    pub fn new(n: u64) -> Harness {
        Harness::with(n, |_| {})
    }

    pub fn with(n: u64, tweak: impl Fn(&mut Config)) -> Harness {
        let mut h = Harness {
            configs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            machines: BTreeMap::new(),
            net: VecDeque::new(),
            now: 0,
            cut: BTreeSet::new(),
            down: BTreeSet::new(),
            delivered: 0,
            snapshot_wanted: BTreeMap::new(),
        };
        for id in 1..=n {
            let mut c = config(id, n);
            tweak(&mut c);
            h.configs.insert(id, c.clone());
            h.nodes
                .insert(id, Node::new(c, PersistentState::default()).unwrap());
            h.disks.insert(id, MemStorage::new());
            h.machines.insert(id, Machine::default());
        }
        h
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.nodes.get_mut(&id).unwrap()
    }

    /// Runs the shell loop of one node: persist, send, apply, advance.
    pub fn process(&mut self, id: NodeId) {
        if self.down.contains(&id) {
            return;
        }
        let node = self.nodes.get_mut(&id).unwrap();
        while node.has_ready() {
            let rd = node.ready();
            self.disks.get_mut(&id).unwrap().apply(&rd.persist);
            self.net.extend(rd.messages.iter().cloned());
            let m = self.machines.get_mut(&id).unwrap();
            if let Some(s) = &rd.install_snapshot {
                *m = Machine::decode(s.slot, &s.data);
                m.base = s.slot;
            }
            for c in &rd.committed {
                assert_eq!(c.slot, m.last() + 1, "node {id} applied out of order");
                m.values.push((c.slot, c.command.clone()));
            }
            if let Some(s) = rd.snapshot_wanted {
                self.snapshot_wanted.insert(id, s);
            }
            node.advance(&rd).unwrap();
        }
    }

    pub fn process_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.process(id);
        }
    }

    /// Delivers messages until the network is empty (at most `limit`).
    pub fn deliver_all(&mut self) {
        self.process_all();
        let mut budget = 100_000;
        while let Some(m) = self.net.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if self.down.contains(&m.to) || self.cut.contains(&(m.from, m.to)) {
                continue;
            }
            let to = m.to;
            self.delivered += 1;
            let now = self.now;
            self.nodes.get_mut(&to).unwrap().step(m, now).unwrap();
            self.process(to);
        }
    }

    /// Advances time by `dt` in steps of `step`, ticking every live node
    /// and delivering everything after each step.
    pub fn run(&mut self, dt: Time, step: Time) {
        let end = self.now + dt;
        while self.now < end {
            self.now += step;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                if !self.down.contains(&id) {
                    let now = self.now;
                    self.nodes.get_mut(&id).unwrap().tick(now);
                    self.process(id);
                }
            }
            self.deliver_all();
        }
    }

    /// Makes `id` leader by campaigning and delivering.
    pub fn elect(&mut self, id: NodeId) {
        let now = self.now;
        self.node_mut(id).campaign(now);
        self.deliver_all();
        assert!(self.node(id).is_leader(), "node {id} did not become leader");
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .find(|(id, n)| n.is_leader() && !self.down.contains(id))
            .map(|(id, _)| *id)
    }

    pub fn propose(&mut self, id: NodeId, v: &[u8]) {
        self.node_mut(id).propose(v.to_vec()).unwrap();
        self.process(id);
    }

    /// Isolates `id` from everyone (both directions).
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.nodes.keys().copied().collect::<Vec<_>>() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn crash(&mut self, id: NodeId) {
        self.down.insert(id);
    }

    /// Restarts `id` from its disk; its state machine is rebuilt from the
    /// stored snapshot (committed values after it are delivered again).
    pub fn restart(&mut self, id: NodeId) {
        let state = self.disks[&id].state();
        let mut m = Machine::default();
        if let Some(s) = &state.snapshot {
            m = Machine::decode(s.slot, &s.data);
            m.base = s.slot;
        }
        let mut c = self.configs[&id].clone();
        c.applied = m.last();
        self.nodes.insert(id, Node::new(c, state).unwrap());
        self.machines.insert(id, m);
        self.down.remove(&id);
    }

    /// The shell of `id` takes a snapshot at its applied index.
    pub fn snapshot(&mut self, id: NodeId) {
        let m = &self.machines[&id];
        let snap = Snapshot {
            slot: m.last(),
            data: m.encode(),
        };
        self.node_mut(id).compact(snap).unwrap();
        self.process(id);
    }

    pub fn values(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.machines[&id]
            .values
            .iter()
            .filter_map(|(_, c)| match c {
                Command::Value(v) => Some(v.clone()),
                Command::Noop => None,
            })
            .collect()
    }
}
