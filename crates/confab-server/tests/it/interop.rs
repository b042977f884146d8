//! Runs the interop suite (`interop/`: LeanCloud's official realtime SDK, unmodified, against this
//! build of confab over TLS) as part of `cargo test`. It needs Node.js, openssl and the SDK; it
//! installs the SDK (`npm ci`, pinned by the lockfile) when missing. When a tool is absent or the
//! install fails it says so and skips on a developer's machine, but fails where the suite is
//! required (`CONFAB_REQUIRE_INTEROP=1`, which `.ci/run` sets): CI never passes it silently.
//!
//! For the suite's import test it also serves the LeanCloud stand-in (a small generated app) and
//! tells the suite where (`LC_STANDIN_*`). With `CONFAB_IT_STORE=postgres` (and
//! `CONFAB_TEST_DATABASE_URL`) the suite's servers stand on fresh PostgreSQL databases instead
//! (`interop/run.sh`).
//!
//! The Easemob suite (`interop/easemob/`, `run-easemob.sh`) runs the official Easemob web SDK
//! (easemob-websdk) and agora-chat, unmodified under Node, against this build the same way.
//!
//! The cluster suite (`interop/cluster/`, `run-cluster.sh`) runs the same SDK against three nodes on
//! PostgreSQL and NATS behind a load balancer; it needs `CONFAB_TEST_DATABASE_URL` and
//! `CONFAB_TEST_NATS_URL`, and fails without them where CI requires it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// The suites run one at a time: each runs several servers and Node processes, and together they
/// would crowd a small machine into their timeouts.
static ONE_SUITE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn available(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).output().is_ok_and(|o| o.status.success())
}

fn required(var: &str) -> bool {
    std::env::var_os(var).is_some()
}

/// Skip `test` with a reason, or fail where the suite is required.
fn unavailable(test: &str, why: &str) {
    assert!(!required("CONFAB_REQUIRE_INTEROP"), "the interop suite is required here, but {why}");
    eprintln!("SKIPPED {test}: {why}");
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Whether Node.js, openssl (and psql, for `with_psql`) and the SDK are here; when not, the test
/// is skipped, or fails where the suite is required.
fn tools_or_skip(test: &str, with_psql: bool) -> bool {
    let mut tools = vec![("node", "--version"), ("openssl", "version")];
    if with_psql {
        tools.push(("psql", "--version"));
    }
    for (tool, arg) in tools {
        if !available(tool, arg) {
            unavailable(test, &format!("`{tool}` is not installed"));
            return false;
        }
    }
    // installs them once for every test that needs them (`npm ci`) if one is missing
    if let Err(why) = crate::common::leanengine::interop_packages() {
        unavailable(test, &why);
        return false;
    }
    true
}

#[test]
fn leancloud_realtime_sdk_suite() {
    let _alone = ONE_SUITE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = interop_dir();
    if !tools_or_skip("leancloud_realtime_sdk_suite", crate::common::on_postgres()) {
        return;
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

/// The official Easemob web SDK (easemob-websdk 4.21.1) and agora-chat 1.4.0 against this build
/// (`interop/run-easemob.sh`): logins, one-to-one and group texts, REST sends reaching the SDK,
/// offline delivery, logout. Tests that wait for parts of the msync gateway are node:test `todo`s,
/// which report without failing.
#[test]
fn easemob_web_sdk_suite() {
    const TEST: &str = "easemob_web_sdk_suite";
    let _alone = ONE_SUITE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !tools_or_skip(TEST, crate::common::on_postgres()) {
        return;
    }
    let started = Instant::now();
    let status = Command::new(interop_dir().join("run-easemob.sh"))
        .current_dir(interop_dir())
        .env("CONFAB_BIN", env!("CARGO_BIN_EXE_confab"))
        .status()
        .expect("run interop/run-easemob.sh");
    eprintln!("the Easemob SDK suite took {:.1} s", started.elapsed().as_secs_f64());
    assert!(status.success(), "the official Easemob web SDK suite failed (see its TAP output above)");
}

/// The official SDK on a three-node cluster (`interop/run-cluster.sh`): one PostgreSQL database,
/// three nodes on one NATS, a TCP load balancer in front. Needs `CONFAB_TEST_DATABASE_URL` and
/// `CONFAB_TEST_NATS_URL`: without them it is skipped on a developer's machine, and fails where
/// the interop suite, PostgreSQL or NATS is required (CI sets all three).
#[test]
fn leancloud_sdk_on_a_three_node_cluster() {
    const TEST: &str = "leancloud_sdk_on_a_three_node_cluster";
    let _alone = ONE_SUITE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for (var, why) in [("CONFAB_TEST_DATABASE_URL", "a PostgreSQL server"), ("CONFAB_TEST_NATS_URL", "a NATS server")] {
        if std::env::var_os(var).is_none() {
            let needed = ["CONFAB_REQUIRE_INTEROP", "CONFAB_REQUIRE_POSTGRES", "CONFAB_REQUIRE_NATS"].into_iter().find(|r| required(r));
            assert!(needed.is_none(), "the cluster suite is required here ({}), but {var} (naming {why}) is not set", needed.unwrap_or(""));
            eprintln!("SKIPPED {TEST}: {var} is not set (it names {why})");
            return;
        }
    }
    if !tools_or_skip(TEST, true) {
        return;
    }
    let started = Instant::now();
    let status = Command::new(interop_dir().join("run-cluster.sh"))
        .current_dir(interop_dir())
        .env("CONFAB_BIN", env!("CARGO_BIN_EXE_confab"))
        .status()
        .expect("run interop/run-cluster.sh");
    eprintln!("the cluster suite took {:.1} s", started.elapsed().as_secs_f64());
    assert!(status.success(), "the official SDK on a three-node cluster failed (see its TAP output and the nodes' logs above)");
}
