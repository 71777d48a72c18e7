//! The `shoal-osd` binary refuses bad configuration with a clear error.
//! (Being an integration test also makes `cargo test --workspace` build
//! the binary that the end-to-end tests start.)

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal-osd"))
        .args(args)
        .output()
        .expect("run shoal-osd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("nope.toml");
    let (ok, err) = run(&["--id", "0", "--conf", conf.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn invalid_settings_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("shoal.toml");
    std::fs::write(
        &conf,
        "[global]\nfsid = \"0badc0de-0000-4000-8000-000000000001\"\nmon_host = [\"a=127.0.0.1:1\"]\n\n\
         [osd]\nheartbeat_interval_ms = 1000\nheartbeat_grace_ms = 500\n",
    )
    .expect("write conf");
    let (ok, err) = run(&["--id", "0", "--conf", conf.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(err.contains("heartbeat_grace_ms"), "{err}");
    // A bad override of an otherwise valid file is refused too.
    std::fs::write(
        &conf,
        "[global]\nfsid = \"0badc0de-0000-4000-8000-000000000001\"\nmon_host = [\"a=127.0.0.1:1\"]\n",
    )
    .expect("write conf");
    let (ok, err) = run(&[
        "--id",
        "0",
        "--conf",
        conf.to_str().expect("utf-8"),
        "--addr",
        "not-an-address",
    ]);
    assert!(!ok);
    assert!(err.contains("not-an-address"), "{err}");
}
