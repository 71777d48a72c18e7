//! The tasks behind a chain link: the ordered stream of writes to the next
//! member, and the acknowledgements to the previous one.

use std::collections::VecDeque;
use std::time::Duration;

use shoal_net::{Endpoint, Frame, PeerAddr};
use shoal_proto::osd::{ObjVersion, PgRef};
use shoal_proto::rep::RepAck;
use tokio::sync::{mpsc, watch};

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
