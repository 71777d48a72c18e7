//! The learner: advancing the commit index, catch-up from a peer's log or
//! snapshot.
//!
//! A node learns that slot `s` is chosen in three ways:
//! - a message of ballot `b` says "chosen up to `c`" (commit, heartbeat,
//!   accept) and the node's own entry for `s <= c` was accepted in `b`: a
//!   ballot proposes one value per slot, so that entry is the chosen value;
//! - a peer sends chosen entries (catch-up reply, or a promise reporting
//!   entries at or below its commit index);
//! - a peer sends a snapshot that covers `s`.
//!
//! Otherwise the node pulls: it sends a catch-up request to the peer that
//! showed it a higher commit index (at most one outstanding request per
//! heartbeat interval).

use crate::ballot::{Ballot, NodeId, Slot};
use crate::message::{Body, LogEntry, Snapshot};
use crate::node::{Node, Role};

impl Node {
    /// Learns that ballot `ballot`'s leader knows every slot up to `commit`
    /// is chosen.
    pub(crate) fn learn_commit(&mut self, from: NodeId, ballot: Ballot, commit: Slot) {
        let before = self.commit;
        while self.commit < commit {
            let s = self.commit + 1;
            match self.log.get(&s) {
                Some(e) if e.ballot == ballot => self.set_commit(s),
                _ => break,
            }
        }
        if self.commit > before {
            self.on_commit_advanced();
        }
        if self.commit < commit {
            self.request_catchup(from);
        }
    }

    /// Learns chosen entries (contiguous from the commit index, at most up
    /// to the sender's commit index `commit`).
    pub(crate) fn learn_chosen(&mut self, from: NodeId, commit: Slot, entries: &[LogEntry]) {
        let before = self.commit;
        for e in entries {
            if e.slot <= self.commit {
                continue;
            }
            if e.slot != self.commit + 1 || e.slot > commit {
                break;
            }
            self.write_entry(e.clone());
            self.set_commit(e.slot);
        }
        if self.commit > before {
            self.on_commit_advanced();
        }
        if self.commit < commit {
            self.request_catchup(from);
        }
    }

    pub(crate) fn request_catchup(&mut self, peer: NodeId) {
        if peer == self.cfg.id {
            return;
        }
        if let Some((_, at)) = self.catchup {
            if self.now < at.saturating_add(self.cfg.heartbeat_interval) {
                return;
            }
        }
        self.catchup = Some((peer, self.now));
        let from_slot = self.commit + 1;
        self.send(peer, Body::CatchupRequest { from_slot });
    }

    fn catchup_answered(&mut self, from: NodeId) {
        if self.catchup.is_some_and(|(p, _)| p == from) {
            self.catchup = None;
        }
    }

    pub(crate) fn on_catchup_request(&mut self, from: NodeId, from_slot: Slot) {
        let from_slot = from_slot.max(1);
        let commit = self.commit;
        if from_slot > commit {
            self.send(
                from,
                Body::CatchupReply {
                    commit,
                    entries: Vec::new(),
                },
            );
        } else if from_slot < self.log_start {
            match &self.snapshot {
                Some(s) => {
                    let snapshot = s.clone();
                    self.send(from, Body::InstallSnapshot { snapshot });
                }
                None => self.send(
                    from,
                    Body::CatchupReply {
                        commit,
                        entries: Vec::new(),
                    },
                ),
            }
        } else {
            let batch = u64::try_from(self.cfg.catchup_batch).unwrap_or(u64::MAX);
            let end = commit.min(from_slot.saturating_add(batch - 1));
            let entries = self
                .log
                .range(from_slot..=end)
                .map(|(_, e)| e.clone())
                .collect();
            self.send(from, Body::CatchupReply { commit, entries });
        }
    }

    pub(crate) fn on_catchup_reply(&mut self, from: NodeId, commit: Slot, entries: Vec<LogEntry>) {
        self.catchup_answered(from);
        self.learn_chosen(from, commit, &entries);
        self.try_finish_phase1();
    }

    pub(crate) fn on_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        self.catchup_answered(from);
        if snapshot.slot <= self.commit {
            return;
        }
        let slot = snapshot.slot;
        self.trim_log(slot);
        self.log_start = slot + 1;
        self.pending.snapshot = Some(snapshot.clone());
        self.set_commit(slot);
        if self.applied < slot {
            self.applied = slot;
            self.pending_install = Some(snapshot.clone());
        }
        self.snapshot = Some(snapshot);
        self.on_commit_advanced();
        // The sender may have chosen entries after its snapshot.
        self.request_catchup(from);
        self.try_finish_phase1();
    }

    /// Bookkeeping after the commit index moved by learning (not by this
    /// node's own leadership).
    pub(crate) fn on_commit_advanced(&mut self) {
        let commit = self.commit;
        if let Role::Leader(l) = &mut self.role {
            l.in_flight = l.in_flight.split_off(&(commit + 1));
            l.next_slot = l.next_slot.max(commit + 1);
        }
    }
}
