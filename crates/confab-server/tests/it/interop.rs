//! Runs the interop suite (`interop/`: LeanCloud's official realtime SDK, unmodified, against this
//! build of confab over TLS) as part of `cargo test`. It needs Node.js, openssl and the SDK; it
//! installs the SDK (`npm ci`, pinned by the lockfile) when missing. When a tool is absent or the
//! install fails it says so and skips on a developer's machine, but fails where the suite is
//! required (`CONFAB_REQUIRE_INTEROP=1`, which `.ci/run` sets): CI never passes it silently.
//!
//! For the suite's import test it also serves the LeanCloud stand-in (a small generated app) and
//! tells the suite where (`LC_STANDIN_*`).

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
    // installs them once for every test that needs them (`npm ci`) if one is missing
    if let Err(why) = crate::common::leanengine::interop_packages() {
        return unavailable(&why);
    }
    // the stand-in runs on a runtime of its own for as long as the suite does
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
    let ds = confab_leancloud_standin::Dataset::generate(confab_leancloud_standin::DatasetSpec {
        seed: 31,
        messages_per_conversation: 40,
        ..Default::default()
    });
    let standin = rt.block_on(confab_leancloud_standin::StandInServer::start(ds.clone())).expect("the stand-in starts");
    let status = Command::new(dir.join("run.sh"))
        .current_dir(&dir)
        .env("CONFAB_BIN", env!("CARGO_BIN_EXE_confab"))
        .env("LC_STANDIN_URL", standin.url())
        .env("LC_STANDIN_APP_ID", ds.app_id())
        .env("LC_STANDIN_APP_KEY", ds.app_key())
        .env("LC_STANDIN_MASTER_KEY", ds.master_key())
        .status()
        .expect("run interop/run.sh");
    drop(standin);
    assert!(status.success(), "the official SDK suite failed (see its TAP output above)");
}
