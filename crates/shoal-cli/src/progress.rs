//! A one-line progress display on standard error, shown only when it is
//! a terminal and the transfer is long.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Transfers shorter than this show no progress.
const QUIET_FOR: Duration = Duration::from_millis(500);

/// Progress of one transfer.
pub struct Progress {
    what: String,
    total: Option<u64>,
    done: u64,
    start: Instant,
    last_draw: Option<Instant>,
    enabled: bool,
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

impl Progress {
    /// Progress of `what`, `total` bytes if known.
    pub fn new(what: &str, total: Option<u64>) -> Progress {
        Progress {
            what: what.to_string(),
            total,
            done: 0,
            start: Instant::now(),
            last_draw: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// `n` more bytes are done.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        let now = Instant::now();
        let due = self
            .last_draw
            .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(200));
        if self.enabled && due && now.duration_since(self.start) >= QUIET_FOR {
            self.last_draw = Some(now);
            self.draw();
        }
    }

    fn draw(&self) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = mib(self.done) / secs;
        let line = match self.total {
            Some(t) if t > 0 => format!(
                "{}: {:.1} / {:.1} MiB ({:.0}%)  {rate:.1} MiB/s",
                self.what,
                mib(self.done),
                mib(t),
                self.done as f64 * 100.0 / t as f64
            ),
            _ => format!("{}: {:.1} MiB  {rate:.1} MiB/s", self.what, mib(self.done)),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Clears the line (if anything was drawn).
    pub fn finish(self) {
        if self.last_draw.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
