//! Runs the interop suite (`interop/`: LeanCloud's official realtime SDK, unmodified, against this
//! build of confab over TLS) as part of `cargo test`. It needs Node.js, openssl and the SDK; it
//! installs the SDK (`npm ci`, pinned by the lockfile) when missing. When a tool is absent or the
//! install fails it says so and skips on a developer's machine, but fails where the suite is
//! required (`CONFAB_REQUIRE_INTEROP=1`, which `.ci/run` sets): CI never passes it silently.

use std::path::Path;
use std::process::Command;

fn available(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// Skip with a reason, or fail where the suite is required.
fn unavailable(why: &str) {
    assert!(std::env::var_os("CONFAB_REQUIRE_INTEROP").is_none(), "the interop suite is required here, but {why}");
    eprintln!("SKIPPED leancloud_realtime_sdk_suite: {why}");
}

#[test]
fn leancloud_realtime_sdk_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    for (tool, arg) in [("node", "--version"), ("openssl", "version")] {
        if !available(tool, arg) {
            return unavailable(&format!("`{tool}` is not installed"));
        }
    }
    if !dir.join("node_modules/leancloud-realtime/package.json").exists() {
        let installed = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().is_ok_and(|s| s.success());
        if !installed {
            return unavailable("the SDK is not installed and `npm ci` in interop/ failed");
        }
    }
    let status = Command::new(dir.join("run.sh"))
        .current_dir(&dir)
        .env("CONFAB_BIN", env!("CARGO_BIN_EXE_confab"))
        .status()
        .expect("run interop/run.sh");
    assert!(status.success(), "the official SDK suite failed (see its TAP output above)");
}
