//! Limits on recovery and backfill so they yield to client IO, changeable
//! while the OSD runs: objects copied at once (`recovery_max_active`),
//! PGs backfilled at once (`max_backfills`), a pause after each object
//! (`recovery_sleep_ms`) and a bandwidth cap (`recovery_max_bytes_per_sec`).
//! Set in `[osd]` at start, then by `shoal config-key set
//! osd/<name> <value>` (read by every OSD with its beacons).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Objects recovered or backfilled at once over all PGs.
    pub max_active: usize,
    /// PGs backfilled at once.
    pub max_backfills: usize,
    /// Pause after each object copied.
    pub sleep: Duration,
    /// Bytes per second of recovery and backfill (0: no cap).
    pub bytes_per_sec: u64,
}

/// The config-key names of the limits (`osd/<name>`).
pub const KEYS: [&str; 4] = [
    "recovery_max_active",
    "max_backfills",
    "recovery_sleep_ms",
    "recovery_max_bytes_per_sec",
];

impl Limits {
    /// These limits with `name` (one of [`KEYS`]) set to `value`; an
    /// unknown name or a value that is not a number (or a zero count)
    /// is an error, and changes nothing.
    pub fn with(mut self, name: &str, value: &str) -> Result<Limits, String> {
        let n: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("osd/{name}: {value:?} is not a number"))?;
        let count = || {
            usize::try_from(n)
                .ok()
                .filter(|&c| c > 0)
                .ok_or(format!("osd/{name} must be at least 1"))
        };
        match name {
            "recovery_max_active" => self.max_active = count()?,
            "max_backfills" => self.max_backfills = count()?,
            "recovery_sleep_ms" => self.sleep = Duration::from_millis(n.min(60_000)),
            "recovery_max_bytes_per_sec" => self.bytes_per_sec = n,
            other => return Err(format!("osd/{other} is not a recovery limit")),
        }
        Ok(self)
    }
}

/// A semaphore whose size can change: shrinking takes the free permits
/// out at once and the others as they are next acquired (`owed`).
#[derive(Debug)]
struct Slots {
    sem: Arc<Semaphore>,
    size: AtomicUsize,
    owed: AtomicUsize,
}

impl Slots {
    fn new(n: usize) -> Self {
        Slots {
            sem: Arc::new(Semaphore::new(n)),
            size: AtomicUsize::new(n),
            owed: AtomicUsize::new(0),
        }
    }

    fn resize(&self, n: usize) {
        let old = self.size.swap(n, Ordering::Relaxed);
        if n > old {
            // Permits still owed from a shrink are forgiven first.
            let mut grow = n - old;
            let _ = self
                .owed
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| {
                    let forgiven = owed.min(grow);
                    grow -= forgiven;
                    Some(owed - forgiven)
                });
            self.sem.add_permits(grow);
            return;
        }
        // Free permits go now; those in use are taken out of circulation
        // as they are acquired again.
        let owed = (old - n) - self.sem.forget_permits(old - n);
        self.owed.fetch_add(owed, Ordering::Relaxed);
    }

    /// A permit, once those owed to a shrink are taken back.
    async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        loop {
            let permit = self.sem.acquire().await.ok()?;
            let owed = self
                .owed
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| o.checked_sub(1));
            if owed.is_err() {
                return Some(permit);
            }
            permit.forget();
        }
    }
}

/// The OSD's recovery limits in force.
#[derive(Debug)]
pub struct Throttle {
    limits: Mutex<Limits>,
    active: Slots,
    backfills: Slots,
    sleep_ms: AtomicU64,
    bucket: tokio::sync::Mutex<Bucket>,
}

impl Throttle {
    /// Limits as configured at start.
    pub fn new(limits: Limits) -> Self {
        Throttle {
            limits: Mutex::new(limits),
            active: Slots::new(limits.max_active),
            backfills: Slots::new(limits.max_backfills),
            sleep_ms: AtomicU64::new(limits.sleep.as_millis() as u64),
            bucket: tokio::sync::Mutex::new(Bucket::new(limits.bytes_per_sec)),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        match self.limits.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// Puts new limits in force (copies under way finish).
    pub async fn set(&self, new: Limits) {
        let old = {
            let mut l = match self.limits.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            std::mem::replace(&mut *l, new)
        };
        if old == new {
            return;
        }
        tracing::info!(?new, "recovery limits changed");
        self.active.resize(new.max_active);
        self.backfills.resize(new.max_backfills);
        self.sleep_ms
            .store(new.sleep.as_millis() as u64, Ordering::Relaxed);
        self.bucket.lock().await.set_rate(new.bytes_per_sec);
    }

    /// A slot to copy one object (recovery or backfill).
    pub async fn object_slot(&self) -> Option<SemaphorePermit<'_>> {
        self.active.acquire().await
    }

    /// A slot to backfill one PG.
    pub async fn backfill_slot(&self) -> Option<SemaphorePermit<'_>> {
        self.backfills.acquire().await
    }

    /// After copying an object of `bytes`: the pause, and whatever wait
    /// keeps copies under the bandwidth cap.
    pub async fn pace(&self, bytes: usize) {
        let wait = self.bucket.lock().await.take(bytes as u64, Instant::now());
        let sleep = Duration::from_millis(self.sleep_ms.load(Ordering::Relaxed));
        let total = wait + sleep;
        if !total.is_zero() {
            tokio::time::sleep(total).await;
        }
    }
}

/// A token bucket of one second's worth of bytes.
#[derive(Debug)]
struct Bucket {
    rate: u64,
    /// Bytes that may go now (negative: owed).
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Bucket {
            rate,
            tokens: rate as f64,
            at: None,
        }
    }

    fn set_rate(&mut self, rate: u64) {
        self.rate = rate;
        self.tokens = self.tokens.min(rate as f64);
    }

    /// Spends `bytes` at `now`; how long to wait so the average stays at
    /// the rate (zero without a cap).
    fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let rate = self.rate as f64;
        if let Some(at) = self.at {
            let earned = now.saturating_duration_since(at).as_secs_f64() * rate;
            self.tokens = (self.tokens + earned).min(rate);
        }
        self.at = Some(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_active: 4,
            max_backfills: 1,
            sleep: Duration::ZERO,
            bytes_per_sec: 0,
        }
    }

    #[test]
    fn settings_parse_or_change_nothing() {
        let l = limits();
        assert_eq!(l.with("recovery_max_active", "8").unwrap().max_active, 8);
        assert_eq!(l.with("max_backfills", " 2\n").unwrap().max_backfills, 2);
        assert_eq!(
            l.with("recovery_sleep_ms", "25").unwrap().sleep,
            Duration::from_millis(25)
        );
        assert_eq!(
            l.with("recovery_max_bytes_per_sec", "1000")
                .unwrap()
                .bytes_per_sec,
            1000
        );
        assert!(l.with("recovery_max_active", "0").is_err());
        assert!(l.with("max_backfills", "many").is_err());
        assert!(l.with("osd_op_threads", "3").is_err());
    }

    #[test]
    fn the_bucket_keeps_the_average_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000);
        // A second's worth goes at once, then each byte waits its turn.
        assert_eq!(b.take(1000, t0), Duration::ZERO);
        assert_eq!(b.take(500, t0), Duration::from_millis(500));
        // Half a second later those 500 are paid; 250 more wait 250 ms.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.take(250, t1), Duration::from_millis(250));
        let mut free = Bucket::new(0);
        assert_eq!(free.take(u64::MAX, t0), Duration::ZERO);
    }

    #[tokio::test]
    async fn slots_grow_and_shrink_at_run_time() {
        let t = Throttle::new(limits());
        let held: Vec<_> = futures_slots(&t, 4).await;
        assert!(t.active.sem.try_acquire().is_err(), "four in use");
        t.set(Limits {
            max_active: 6,
            ..limits()
        })
        .await;
        assert_eq!(t.active.sem.available_permits(), 2);
        // Shrinking below what is in use: the rest go as they come back.
        t.set(Limits {
            max_active: 1,
            ..limits()
        })
        .await;
        assert_eq!(t.active.sem.available_permits(), 0);
        drop(held);
        let one = t.object_slot().await.expect("one slot");
        tokio::task::yield_now().await;
        assert_eq!(t.active.sem.available_permits(), 0, "exactly one");
        drop(one);
        assert_eq!(t.limits().max_active, 1);
        // Growing while permits are still owed forgives them first.
        let held: Vec<_> = futures_slots(&t, 1).await;
        t.set(Limits {
            max_active: 0,
            ..limits()
        })
        .await;
        t.set(Limits {
            max_active: 2,
            ..limits()
        })
        .await;
        drop(held);
        assert_eq!(t.active.sem.available_permits(), 2, "two, none owed");
    }

    async fn futures_slots(t: &Throttle, n: usize) -> Vec<SemaphorePermit<'_>> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(t.object_slot().await.unwrap());
        }
        out
    }
}
