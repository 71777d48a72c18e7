//! Caps checks on client ops: `osd r` to read and list, `osd rw` to write.
//! Caps live in the monitors' auth database; an OSD keeps a copy, fetched
//! with `auth ls` and refreshed when it is older than `[osd]
//! caps_refresh_ms` or lacks the identity asking (at most once a second),
//! so `auth caps` and `auth rm` take effect on the OSDs within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shoal_monc::MonClient;
use shoal_proto::caps::{Access, Caps};
use shoal_proto::mon::{CommandOutput, MonCommand};
use shoal_proto::osd::OsdErrorCode;

use crate::exec::OpError;

/// Least time between two fetches caused by unknown identities.
const MISS_REFRESH: Duration = Duration::from_secs(1);

struct Table {
    caps: HashMap<String, Caps>,
    fetched: Option<Instant>,
}

/// The OSD's copy of the identities' caps.
pub struct AuthCache {
    table: Mutex<Table>,
    refreshing: tokio::sync::Mutex<()>,
    ttl: Duration,
}

impl AuthCache {
    /// An empty cache whose copy is refreshed every `ttl`.
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            table: Mutex::new(Table {
                caps: HashMap::new(),
                fetched: None,
            }),
            refreshing: tokio::sync::Mutex::new(()),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        match self.table.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The caps of `name` as far as this cache knows, and when the copy
    /// was fetched.
    fn lookup(&self, name: &str) -> (Option<Caps>, Option<Instant>) {
        let t = self.lock();
        (t.caps.get(name).copied(), t.fetched)
    }

    async fn refresh(&self, monc: &MonClient) -> Result<(), String> {
        let entries = match monc.command(MonCommand::AuthLs).await {
            Ok(CommandOutput::Auth(entries)) => entries,
            Ok(other) => return Err(format!("unexpected answer to auth ls: {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
        let caps = entries
            .into_iter()
            .filter_map(|e| Some((e.name, e.caps.parse::<Caps>().ok()?)))
            .collect();
        let mut t = self.lock();
        t.caps = caps;
        t.fetched = Some(Instant::now());
        Ok(())
    }

    /// The caps of identity `name`. OSDs read from each other (a member
    /// asks the tail for an object with a write in flight).
    pub async fn caps(&self, monc: &MonClient, name: &str) -> Result<Caps, OpError> {
        if name.starts_with("osd.") {
            return Ok(Caps {
                osd: Access::R,
                ..Caps::default()
            });
        }
        let (caps, fetched) = self.lookup(name);
        if let (Some(c), Some(at)) = (caps, fetched)
            && at.elapsed() < self.ttl
        {
            return Ok(c);
        }
        // Unknown, or the copy is old: fetch it again, one task at a time.
        let _one = self.refreshing.lock().await;
        let (caps, fetched_now) = self.lookup(name);
        if fetched_now != fetched {
            // Fetched while this task waited: that copy is the answer.
            return Ok(caps.unwrap_or_default());
        }
        if caps.is_none()
            && let Some(at) = fetched_now
        {
            // An identity this copy lacks may be new; fetching again
            // waits out MISS_REFRESH since the last fetch, which also
            // throttles identities that were removed.
            tokio::time::sleep(MISS_REFRESH.saturating_sub(at.elapsed())).await;
        }
        match self.refresh(monc).await {
            Ok(()) => Ok(self.lookup(name).0.unwrap_or_default()),
            // A copy we have still serves; no copy at all is unavailability.
            Err(e) if fetched_now.is_none() => Err(OpError::new(
                OsdErrorCode::Unavailable,
                format!("caps unknown (monitors unreachable): {e}"),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "fetching caps from the monitors failed");
                Ok(caps.unwrap_or_default())
            }
        }
    }

    /// Refuses the op unless `name` has `osd rw` (writes) or `osd r` (reads).
    pub async fn check(&self, monc: &MonClient, name: &str, write: bool) -> Result<(), OpError> {
        let caps = self.caps(monc, name).await?;
        let (need, what) = if write {
            (Access::Rw, "osd rw")
        } else {
            (Access::R, "osd r")
        };
        if caps.osd >= need {
            Ok(())
        } else {
            Err(OpError::new(
                OsdErrorCode::PermissionDenied,
                format!("{name} lacks the caps {what:?}"),
            ))
        }
    }
}
