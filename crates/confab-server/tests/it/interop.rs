//! Runs the interop suite (`interop/`: LeanCloud's official realtime SDK, unmodified, against this
//! build of confab over TLS) as part of `cargo test`. It needs Node.js, openssl and the SDK; it
//! installs the SDK (`npm ci`, pinned by the lockfile) when missing, and says so and skips only
//! when a tool is absent or the install fails.

use std::path::Path;
use std::process::Command;

fn available(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).output().is_ok_and(|o| o.status.success())
}

#[test]
fn leancloud_realtime_sdk_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    for (tool, arg) in [("node", "--version"), ("openssl", "version")] {
        if !available(tool, arg) {
            eprintln!("SKIPPED leancloud_realtime_sdk_suite: `{tool}` is not installed");
            return;
        }
    }
    if !dir.join("node_modules/leancloud-realtime/package.json").exists() {
        let installed = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().is_ok_and(|s| s.success());
        if !installed {
            eprintln!("SKIPPED leancloud_realtime_sdk_suite: the SDK is not installed and `npm ci` in interop/ failed");
            return;
        }
    }
    let status = Command::new(dir.join("run.sh"))
        .current_dir(&dir)
        .env("CONFAB_BIN", env!("CARGO_BIN_EXE_confab"))
        .status()
        .expect("run interop/run.sh");
    assert!(status.success(), "the official SDK suite failed (see its TAP output above)");
}
