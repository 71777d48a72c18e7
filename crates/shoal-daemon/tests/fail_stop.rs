//! A panic on any thread of a daemon ends the whole process.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const CHILD: &str = "SHOAL_DAEMON_FAIL_STOP_CHILD";

/// In the child: a panic on a side thread, while the main thread would
/// go on (and exit 0) if the process survived it.
fn child() {
    shoal_daemon::abort_on_panic();
    let side = std::thread::spawn(|| panic!("a task went wrong"));
    let _ = side.join();
    std::process::exit(0);
}

#[test]
fn a_panic_on_a_side_thread_aborts_the_process() {
    if std::env::var_os(CHILD).is_some() {
        child();
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--exact",
            "a_panic_on_a_side_thread_aborts_the_process",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    assert_eq!(
        out.status.signal(),
        Some(6),
        "the child should die of SIGABRT: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("a task went wrong"));
}
