//! One cached connection per peer, re-established with backoff.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Backoff;
use crate::connection::Connection;
use crate::error::{NetError, Result};
use crate::peer::PeerAddr;

#[derive(Debug, Default)]
struct Slot {
    conn: Option<Connection>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// The connection cache of an endpoint.
#[derive(Debug)]
pub(crate) struct ConnPool {
    slots: Mutex<HashMap<PeerAddr, Arc<tokio::sync::Mutex<Slot>>>>,
    backoff: Backoff,
    connect_timeout: Duration,
}

/// Errors worth another connection attempt (the peer may come back);
/// certificate refusals and local errors are not.
fn retryable(e: &NetError) -> bool {
    matches!(e, NetError::Timeout(_) | NetError::Connection(_))
}

impl ConnPool {
    pub(crate) fn new(backoff: Backoff, connect_timeout: Duration) -> Self {
        ConnPool {
            slots: Mutex::new(HashMap::new()),
            backoff,
            connect_timeout,
        }
    }

    fn slot(&self, peer: &PeerAddr) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = match self.slots.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots.entry(peer.clone()).or_default().clone()
    }

    /// The live cached connection to `peer`, or a new one made by `connect`.
    /// Concurrent callers share one attempt. After a failure, the next
    /// attempt waits out the backoff; attempts repeat until `deadline`
    /// (`timeout` is what a [`NetError::Timeout`] reports).
    pub(crate) async fn get<F, Fut>(
        &self,
        peer: &PeerAddr,
        deadline: Instant,
        timeout: Duration,
        connect: F,
    ) -> Result<Connection>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Connection>>,
    {
        let slot = self.slot(peer);
        let mut s = tokio::time::timeout_at(deadline, slot.lock())
            .await
            .map_err(|_| NetError::Timeout(timeout))?;
        if let Some(conn) = &s.conn {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
            tracing::debug!(peer = %peer, "cached connection is closed; reconnecting");
            s.conn = None;
        }
        loop {
            if let Some(at) = s.retry_at {
                if at >= deadline {
                    return Err(NetError::Timeout(timeout));
                }
                tokio::time::sleep_until(at).await;
            }
            let attempt_end = deadline.min(Instant::now() + self.connect_timeout);
            let result = match tokio::time::timeout_at(attempt_end, connect()).await {
                Ok(r) => r,
                Err(_) => Err(NetError::Timeout(timeout)),
            };
            match result {
                Ok(conn) => {
                    s.failures = 0;
                    s.retry_at = None;
                    s.conn = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) => {
                    s.failures = s.failures.saturating_add(1);
                    let delay = self.backoff.delay(s.failures);
                    s.retry_at = Some(Instant::now() + delay);
                    tracing::info!(peer = %peer, failures = s.failures, retry_in = ?delay,
                        error = %e, "connection attempt failed");
                    if !retryable(&e) || Instant::now() >= deadline {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Closes and forgets every cached connection.
    pub(crate) fn clear(&self) {
        let slots = match self.slots.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for slot in slots.into_values() {
            if let Ok(mut s) = slot.try_lock() {
                if let Some(conn) = s.conn.take() {
                    conn.close();
                }
            }
        }
    }
}
