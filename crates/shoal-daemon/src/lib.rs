//! `shoal-daemon`: the process setup every Shoal daemon (`shoal-mon`,
//! `shoal-osd`, `shoal-s3`) shares.
//!
//! **Fail-stop.** A panic anywhere in a daemon aborts the whole process
//! (after the usual message and a log line), as `panic = "abort"` would:
//! a task that panicked half way through a PG, a Paxos round or a request
//! may have left shared state half changed, and a process that went on
//! with its other tasks would serve from it. Killed, it restarts from its
//! durable state and peers again, which the protocols are built for. Lock
//! poisoning can then never be observed. (A hook rather than the profile
//! setting: `panic = "abort"` in the profile would build every dependency
//! twice, once for the binaries and once for the unwinding test harness.)

#![deny(missing_docs)]

use std::sync::Once;

/// Sets up logging to stderr (level from `RUST_LOG`, else `default_level`)
/// and makes any panic abort the process. Call first thing in `main`.
pub fn init(default_level: &str) {
    logs(default_level);
    abort_on_panic();
}

/// Sets up logging to stderr (level from `RUST_LOG`, else
/// `default_level`), for the daemons and the `shoal` command alike.
pub fn logs(default_level: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Makes any panic, on any thread, abort the process once the panic
/// message is printed. Idempotent.
pub fn abort_on_panic() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            tracing::error!(panic = %info, "a panic: aborting the process (fail-stop)");
            std::process::abort();
        }));
    });
}
