//! A PG's chain links: the ordered stream of writes to the next member,
//! and the acknowledgements to the previous one, each a task per
//! (interval, peer) that the PG's [`Links`] starts on first use and stops
//! (by dropping its channel) once the PG leaves the interval.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use shoal_net::{Endpoint, Frame, PeerAddr};
use shoal_proto::osd::{ObjVersion, PgRef};
use shoal_proto::rep::{RepAck, RepOp, ack_topic, rep_topic};
use tokio::sync::{mpsc, watch};

use crate::context::Osd;

/// The writes to one next member, and what it acknowledged.
struct Down {
    writes: mpsc::UnboundedSender<(ObjVersion, Frame)>,
    acked: watch::Sender<ObjVersion>,
    _task: Supervised,
}

/// The acknowledgements to one previous member.
struct Up {
    done: watch::Sender<ObjVersion>,
    _task: Supervised,
}

/// A link's task, stopped when the link is dropped (the PG left the
/// interval, or went away): a link to a dead peer would otherwise retry
/// for ever.
struct Supervised(tokio::task::AbortHandle);

impl Drop for Supervised {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The links of one PG on this OSD.
pub struct Links {
    pg: PgRef,
    down: HashMap<(u32, i32), Down>,
    up: HashMap<(u32, i32), Up>,
}

impl Links {
    /// No links yet.
    pub fn new(pg: PgRef) -> Self {
        Links {
            pg,
            down: HashMap::new(),
            up: HashMap::new(),
        }
    }

    /// Stops the links of intervals other than `interval`.
    pub fn keep_only(&mut self, interval: u32) {
        self.down.retain(|(i, _), _| *i == interval);
        self.up.retain(|(i, _), _| *i == interval);
    }

    /// Sends a write to the next member `to` (re-sent until acknowledged).
    pub fn send_down(&mut self, osd: &Osd, to: i32, rep: RepOp, payload: Bytes) {
        let version = rep.entry.version;
        let key = (rep.interval, to);
        let frame = match Frame::encode(shoal_proto::msg::REP_OP, &rep) {
            Ok(f) => f.with_payload(payload),
            Err(e) => {
                tracing::error!(pg = %self.pg, error = %e, "cannot encode a replicated write");
                return;
            }
        };
        if !self.down.contains_key(&key) {
            let (Some(endpoint), Some(addr)) = (osd.endpoint().cloned(), osd.peer_addr(to)) else {
                tracing::warn!(pg = %self.pg, to, "no address for the next member");
                return;
            };
            let (writes, rx) = mpsc::unbounded_channel();
            let (acked, acked_rx) = watch::channel(ObjVersion::default());
            let topic = rep_topic(self.pg, rep.interval);
            let task = tokio::spawn(run_downstream(endpoint, addr, topic, rx, acked_rx));
            let _task = Supervised(task.abort_handle());
            self.down.insert(
                key,
                Down {
                    writes,
                    acked,
                    _task,
                },
            );
        }
        if let Some(d) = self.down.get(&key) {
            let _ = d.writes.send((version, frame));
        }
    }

    /// The next member `from` acknowledged writes up to `version`.
    pub fn acked(&mut self, from: i32, interval: u32, version: ObjVersion) {
        if let Some(d) = self.down.get(&(interval, from)) {
            d.acked.send_if_modified(|v| {
                let newer = version > *v;
                if newer {
                    *v = version;
                }
                newer
            });
        }
    }

    /// Acknowledges writes up to `version` to the previous member `to`.
    pub fn ack_up(&mut self, osd: &Osd, to: i32, interval: u32, version: ObjVersion) {
        let key = (interval, to);
        if !self.up.contains_key(&key) {
            let (Some(endpoint), Some(addr)) = (osd.endpoint().cloned(), osd.peer_addr(to)) else {
                tracing::warn!(pg = %self.pg, to, "no address for the previous member");
                return;
            };
            let (done, rx) = watch::channel(ObjVersion::default());
            let topic = ack_topic(self.pg, interval);
            let task = tokio::spawn(run_upstream(endpoint, addr, topic, self.pg, interval, rx));
            let _task = Supervised(task.abort_handle());
            self.up.insert(key, Up { done, _task });
        }
        if let Some(up) = self.up.get(&key) {
            // Re-sent even when not newer: the previous member may have
            // lost the last one (it re-sends a write to ask again).
            up.done.send_replace(version);
        }
    }
}

/// Pause before re-sending after a failed send.
const RESEND_PAUSE: Duration = Duration::from_millis(200);
/// Deadline of one send (connecting included).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a PG's writes, in order, to the next chain member on one topic.
/// Keeps every write not yet acknowledged from downstream; when a send
/// fails it re-sends them all from the oldest (the receiver skips what it
/// already has), so a broken stream loses nothing.
pub async fn run_downstream(
    endpoint: Endpoint,
    peer: PeerAddr,
    topic: String,
    mut writes: mpsc::UnboundedReceiver<(ObjVersion, Frame)>,
    mut acked: watch::Receiver<ObjVersion>,
) {
    let mut pending: VecDeque<(ObjVersion, Frame)> = VecDeque::new();
    let mut broken = false;
    loop {
        if broken {
            tokio::time::sleep(RESEND_PAUSE).await;
            trim(&mut pending, *acked.borrow());
            broken = false;
            for (_, frame) in &pending {
                if let Err(e) = endpoint
                    .send_oneway(&peer, &topic, frame, SEND_TIMEOUT)
                    .await
                {
                    tracing::debug!(%peer, %topic, error = %e, "re-send failed");
                    broken = true;
                    break;
                }
            }
            continue;
        }
        tokio::select! {
            w = writes.recv() => {
                let Some((version, frame)) = w else { return };
                let res = endpoint.send_oneway(&peer, &topic, &frame, SEND_TIMEOUT).await;
                pending.push_back((version, frame));
                if let Err(e) = res {
                    tracing::debug!(%peer, %topic, error = %e, "send failed; will re-send");
                    broken = true;
                }
            }
            changed = acked.changed() => {
                if changed.is_err() {
                    return;
                }
                trim(&mut pending, *acked.borrow());
            }
        }
    }
}

fn trim(pending: &mut VecDeque<(ObjVersion, Frame)>, acked: ObjVersion) {
    while pending.front().is_some_and(|(v, _)| *v <= acked) {
        pending.pop_front();
    }
}

/// Sends the newest acknowledged version upstream whenever it moves
/// (acknowledgements are cumulative, so only the latest matters).
pub async fn run_upstream(
    endpoint: Endpoint,
    peer: PeerAddr,
    topic: String,
    pg: PgRef,
    interval: u32,
    mut done: watch::Receiver<ObjVersion>,
) {
    loop {
        if done.changed().await.is_err() {
            return;
        }
        loop {
            let version = *done.borrow_and_update();
            let ack = RepAck {
                pg,
                interval,
                version,
            };
            let frame = match Frame::encode(shoal_proto::msg::REP_ACK, &ack) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode an ack");
                    return;
                }
            };
            match endpoint
                .send_oneway(&peer, &topic, &frame, SEND_TIMEOUT)
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    tracing::debug!(%peer, %topic, error = %e, "ack not sent; retrying");
                    tokio::time::sleep(RESEND_PAUSE).await;
                    if done.has_changed().is_err() {
                        return;
                    }
                }
            }
        }
    }
}
