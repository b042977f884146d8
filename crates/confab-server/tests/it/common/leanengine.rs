//! A LeanEngine hook server for the tests: `interop/hooks/server.js`, LeanCloud's official LeanEngine
//! Node SDK (leanengine 3.8.0, pinned in `interop/package-lock.json`) defining the 14 IM hooks, run as
//! a child process on 127.0.0.1. The SDK's own middleware checks every call's keys and hook key;
//! what each hook answers is scripted, and every call that reached a hook recorded, over the
//! server's control API (`/__test/…`, described at the top of server.js).
//!
//! It needs Node.js and the packages in `interop/`. [`leanengine_or_skip`] says whether they are
//! there (installing them with `npm ci` when missing), and follows the interop suite's rule when
//! not: skip on a developer's machine, fail where `CONFAB_REQUIRE_INTEROP` is set (CI).
//!
//! ```ignore
//! if !leanengine_or_skip("my_test") { return; }
//! let le = LeanEngine::start("app-id", "app-key", "master-key", "hook-key", None).await;
//! le.script("_messageReceived", json!([{"return": {"drop": true}}]), None).await;
//! // … point confab at le.url() …
//! let calls = le.wait_calls("_messageReceived", 1, Duration::from_secs(5)).await;
//! assert_eq!(calls[0]["params"]["fromPeer"], "Tom");
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use md5::Digest;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `interop/`, where the Node side of the tests lives.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Whether every package pinned in `interop/package.json` is installed at its version; when one is
/// not, runs `npm ci` there, once per test process (tests running in parallel share that one run
/// instead of racing each other in the same `node_modules`). `Err` says why they are not there.
pub fn interop_packages() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = interop_dir();
            if installed(&dir) {
                return Ok(());
            }
            let ok = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().is_ok_and(|s| s.success());
            if ok && installed(&dir) {
                Ok(())
            } else {
                Err("the packages in interop/ are not installed and `npm ci` there failed".to_string())
            }
        })
        .clone()
}

fn installed(dir: &Path) -> bool {
    let read = |p: PathBuf| std::fs::read(p).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let Some(manifest) = read(dir.join("package.json")) else { return false };
    let Some(deps) = manifest["dependencies"].as_object() else { return false };
    deps.iter()
        .all(|(name, version)| read(dir.join("node_modules").join(name).join("package.json")).is_some_and(|p| p["version"] == *version))
}

/// Whether a LeanEngine server can run here (Node.js and the packages, installed if need be). When it
/// cannot: panics where `CONFAB_REQUIRE_INTEROP` is set, else prints why `test` is skipped and
/// returns false.
pub fn leanengine_or_skip(test: &str) -> bool {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let why = if !node { Some("`node` is not installed".to_string()) } else { interop_packages().err() };
    let Some(why) = why else { return true };
    assert!(std::env::var_os("CONFAB_REQUIRE_INTEROP").is_none(), "the LeanEngine hook server is required here, but {why}");
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// `X-LC-Sign` in its master form: `md5(timestamp + masterKey),timestamp,master`.
pub fn master_sign(master_key: &str, timestamp_ms: i64) -> String {
    format!("{},{timestamp_ms},master", hex::encode(md5::Md5::digest(format!("{timestamp_ms}{master_key}"))))
}

/// A running `interop/hooks/server.js`. Dropping it kills the process.
pub struct LeanEngine {
    /// Killed on drop. Its stdin stays open while it lives; when the test process goes, the server
    /// sees stdin close and exits too.
    _child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
}

impl LeanEngine {
    /// Starts a LeanEngine app with these keys, defining the hooks in `defined` (None: all 14), with
    /// LeanEngine's default function timeout (15 s). Panics if it does not start.
    pub async fn start(app_id: &str, app_key: &str, master_key: &str, hook_key: &str, defined: Option<&[&str]>) -> LeanEngine {
        LeanEngine::start_with_timeout(app_id, app_key, master_key, hook_key, defined, None).await
    }

    /// As [`LeanEngine::start`], with LeanEngine's function timeout set (`AV.express({timeout})`): a
    /// hook still running after it gets LeanEngine's `503 {"code":124,…}`.
    pub async fn start_with_timeout(
        app_id: &str,
        app_key: &str,
        master_key: &str,
        hook_key: &str,
        defined: Option<&[&str]>,
        timeout: Option<Duration>,
    ) -> LeanEngine {
        let script = interop_dir().join("hooks/server.js");
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(&script)
            .env("LEANCLOUD_APP_ID", app_id)
            .env("LEANCLOUD_APP_KEY", app_key)
            .env("LEANCLOUD_APP_MASTER_KEY", master_key)
            .env("LEANCLOUD_APP_HOOK_KEY", hook_key)
            .env("LEANCLOUD_APP_PORT", "0")
            .env("HOOKS_DEFINED", defined.map_or("all".to_string(), |d| d.join(",")))
            .env("HOOKS_EXIT_WITH_STDIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match timeout {
            Some(t) => cmd.env("HOOKS_TIMEOUT", format!("{}ms", t.as_millis())),
            None => cmd.env_remove("HOOKS_TIMEOUT"),
        };
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn node {}: {e}", script.display()));

        // its stderr (LeanEngine logs every failed call there), and its stdout after the first line,
        // go to the test's output
        let mut stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("leanengine: {line}");
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(port) = line.strip_prefix("listening ") {
                    return port.trim().parse::<u16>().ok();
                }
                eprintln!("leanengine: {line}");
            }
            None
        })
        .await;
        let Ok(Some(port)) = port else {
            let _ = child.start_kill();
            panic!("the LeanEngine hook server ({}) did not say `listening <port>` (its stderr is above)", script.display());
        };
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                eprintln!("leanengine: {line}");
            }
        });
        LeanEngine { _child: child, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() }
    }

    /// `http://127.0.0.1:<port>`: the engine URL an app would configure (hooks at `{url}/1.1/functions/<hook>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces what hook `name` does: `answers` (a JSON array) are used once each, in order, then
    /// `default` (None: return `{}`). See server.js for the answer forms.
    pub async fn script(&self, name: &str, answers: Value, default: Option<Value>) {
        let mut body = json!({"name": name, "answers": answers});
        if let Some(d) = default {
            body["default"] = d;
        }
        self.control(self.http.post(format!("{}/__test/script", self.url)).json(&body)).await;
    }

    /// The calls that reached hook `name` so far, oldest first: `{name, path, params, headers, at}`.
    pub async fn calls(&self, name: &str) -> Vec<Value> {
        let v = self.control(self.http.get(format!("{}/__test/calls", self.url)).query(&[("name", name)])).await;
        v.as_array().expect("an array of calls").clone()
    }

    /// The calls to hook `name` once there are at least `n`; panics if there are not within `timeout`.
    pub async fn wait_calls(&self, name: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls(name).await;
            if calls.len() >= n {
                return calls;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} call(s) of {name} within {timeout:?}, wanted {n}: {calls:#?}", calls.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Forgets every call and script.
    pub async fn reset(&self) {
        self.control(self.http.post(format!("{}/__test/reset", self.url))).await;
    }

    async fn control(&self, req: reqwest::RequestBuilder) -> Value {
        let resp = req.send().await.expect("the LeanEngine control API answers");
        let status = resp.status();
        let body: Value = resp.json().await.expect("a JSON answer");
        assert!(status.is_success(), "control API: {status} {body}");
        body
    }
}
