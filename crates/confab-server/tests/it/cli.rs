//! The `confab` command line, run as the real binary: `app create|list|limits|set`, `serve`, the
//! environment variables, `app create` against a running server's data directory, a clean exit
//! on SIGTERM, the shutdown deadline and a second signal, one server per data directory.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

/// The binary, with none of the caller's confab settings leaking in.
fn confab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_confab"));
    for var in ["CONFAB_DATA_DIR", "CONFAB_LISTEN", "CONFAB_DATABASE_URL", "CONFAB_SHUTDOWN_GRACE_SECS", "RUST_LOG"] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

async fn run(cmd: &mut Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("the command finishes").expect("the command runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run `confab ARGS… --data-dir DIR` and expect success.
pub(crate) async fn ok(dir: &Path, args: &[&str]) -> String {
    ok_on(&["--data-dir".to_string(), dir.to_string_lossy().into_owned()], args).await
}

/// Run `confab ARGS… PLACE…` (where the store is: `TestServer::store_args`) and expect success.
pub(crate) async fn ok_on(place: &[String], args: &[&str]) -> String {
    let out = run(confab().args(args).args(place)).await;
    assert!(out.status.success(), "confab {args:?} failed: {}\n{}", out.status, text(&out.stderr));
    text(&out.stdout)
}

/// Run `confab ARGS… --data-dir DIR` and expect failure; returns stderr.
async fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(confab().args(args).arg("--data-dir").arg(dir)).await;
    assert!(!out.status.success(), "confab {args:?} should fail, printed {}", text(&out.stdout));
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(!err.trim().is_empty(), "confab {args:?} fails with a message");
    err
}

/// Exactly one JSON value in `s`.
fn one_json(s: &str) -> Value {
    let values: Vec<Value> = serde_json::Deserializer::from_str(s)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {s}"));
    assert_eq!(values.len(), 1, "one JSON value, got {s}");
    values.into_iter().next().unwrap()
}

/// Check the shape of `app create --json` and return the LeanCloud keys.
fn check_app_json(v: &Value, name: &str, plan: &str) -> (String, String, String) {
    assert!(v.is_object(), "an object: {v}");
    assert_eq!(v["name"], name);
    assert_eq!(v["plan"], plan);
    let lc = &v["leancloud"];
    for k in ["app_id", "app_key", "master_key", "hook_key"] {
        assert!(lc[k].as_str().is_some_and(|s| !s.is_empty()), "leancloud.{k} in {v}");
    }
    let s = |k: &str| lc[k].as_str().unwrap().to_string();
    (s("app_id"), s("app_key"), s("master_key"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Poll until `f` returns Some, or panic after `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `confab serve` child process, killed if the test fails.
pub(crate) struct Served {
    child: Child,
    base: String,
    http: reqwest::Client,
    log: PathBuf,
}

impl Served {
    /// Start `cmd` (a `serve` command) with its log in `log`, and wait until /healthz says ok.
    async fn start(mut cmd: Command, port: u16, log: &Path) -> Served {
        cmd.stdout(Stdio::null()).stderr(Stdio::from(std::fs::File::create(log).unwrap()));
        let child = cmd.spawn().expect("confab serve starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let mut s = Served { child, base, http, log: log.to_path_buf() };
        let url = format!("{}/healthz", s.base);
        let (http, child) = (s.http.clone(), &mut s.child);
        eventually("GET /healthz to say ok", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("confab serve exited early: {status}");
            }
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.get(&url).send().await.ok()?;
                let body: Value = r.json().await.ok()?;
                (body == serde_json::json!({"status": "ok"})).then_some(())
            }
        })
        .await;
        s
    }

    /// GET a LeanCloud path with an app's master key; the status.
    async fn lc_status(&self, path: &str, app_id: &str, master: &str) -> Option<u16> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("X-LC-Id", app_id)
            .header("X-LC-Key", format!("{master},master"))
            .send()
            .await
            .ok()?;
        Some(r.status().as_u16())
    }

    /// Its address, `http://127.0.0.1:PORT`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Its resident memory, in bytes (Linux: `/proc/PID/status`).
    pub(crate) fn rss(&self) -> u64 {
        let pid = self.child.id().expect("still running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
        let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
        kb.expect("VmRSS") * 1024
    }

    /// Send a signal (`TERM`, `INT`, `KILL`).
    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running");
        let kill = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("kill runs");
        assert!(kill.success());
    }

    /// Its exit status, which must come within `within`.
    async fn exits_within(&mut self, within: Duration, after: &str) -> ExitStatus {
        let log = || std::fs::read_to_string(&self.log).unwrap_or_default();
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("still running {within:?} after {after}; its log:\n{}", log()),
        }
    }

    /// Wait until its log has a line with all of `words`.
    async fn logs(&self, words: &[&str]) {
        let log = self.log.clone();
        eventually(&format!("a log line with {words:?}"), Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            async move { text.lines().any(|l| words.iter().all(|w| l.contains(w))).then_some(()) }
        })
        .await
    }

    /// SIGTERM, and expect a clean exit (status 0).
    async fn terminate(mut self) {
        self.signal("TERM");
        let status = self.exits_within(Duration::from_secs(20), "SIGTERM").await;
        assert!(status.success(), "exit status after SIGTERM: {status}");
        assert_eq!(status.code(), Some(0));
    }
}

#[tokio::test]
async fn app_create_prints_one_json_object_and_list_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let v = one_json(&ok(d, &["app", "create", "--name", "demo", "--json"]).await);
    let (demo_id, demo_key, demo_master) = check_app_json(&v, "demo", "standard");

    let v = one_json(&ok(d, &["app", "create", "--name", "devapp", "--plan", "dev", "--json"]).await);
    check_app_json(&v, "devapp", "dev");

    // a migrated app keeps its LeanCloud keys
    let args = ["app", "create", "--name", "migrated", "--app-id", "X", "--app-key", "Y", "--master-key", "Z", "--json"];
    let v = one_json(&ok(d, &args).await);
    assert_eq!(check_app_json(&v, "migrated", "standard"), ("X".into(), "Y".into(), "Z".into()));

    // a taken name fails, with a message, and creates nothing
    let err = fails(d, &["app", "create", "--name", "demo", "--json"]).await;
    assert!(err.contains("demo"), "the message names the app: {err}");
    // a taken LeanCloud app id fails too
    fails(d, &["app", "create", "--name", "again", "--app-id", "X"]).await;
    // and an unknown plan
    fails(d, &["app", "create", "--name", "planless", "--plan", "gold"]).await;

    let list = one_json(&ok(d, &["app", "list", "--json"]).await);
    let apps = list.as_array().expect("app list --json prints an array");
    let names: Vec<&str> = apps.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{list}");
    for n in ["demo", "devapp", "migrated"] {
        assert!(names.contains(&n), "{n} is listed: {list}");
    }
    let demo = apps.iter().find(|a| a["name"] == "demo").unwrap();
    assert_eq!(check_app_json(demo, "demo", "standard"), (demo_id.clone(), demo_key, demo_master));
    assert_eq!(apps.iter().find(|a| a["name"] == "devapp").unwrap()["plan"], "dev");

    // the human-readable forms mention the apps too
    let plain = ok(d, &["app", "list"]).await;
    assert!(plain.contains("demo") && plain.contains(&demo_id), "{plain}");
    let plain = ok(d, &["app", "create", "--name", "plain"]).await;
    assert!(plain.contains("plain"), "{plain}");
}

#[tokio::test]
async fn app_limits_shows_and_sets_effective_limits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["app", "create", "--name", "limited"]).await;
    ok(d, &["app", "create", "--name", "other", "--plan", "dev"]).await;

    let before = one_json(&ok(d, &["app", "limits", "limited"]).await);
    assert_eq!(before["rates"]["lc.message"]["per_minute"], 1800, "{before}");

    let after = one_json(&ok(d, &["app", "limits", "limited", "--set", "rates.lc.message.per_minute=9000"]).await);
    assert_eq!(after["rates"]["lc.message"]["per_minute"], 9000, "the effective limits show the new value: {after}");
    assert_eq!(after["rates"]["lc.broadcast"], before["rates"]["lc.broadcast"], "other limits keep their values");
    assert_eq!(after["message_max_bytes"], before["message_max_bytes"]);

    // stored: shown again later, and only for that app
    let again = one_json(&ok(d, &["app", "limits", "limited"]).await);
    assert_eq!(again, after);
    let other = one_json(&ok(d, &["app", "limits", "other"]).await);
    assert_eq!(other["rates"]["lc.message"]["per_minute"], 120, "{other}");

    // several at once
    let both =
        one_json(&ok(d, &["app", "limits", "limited", "--set", "message_max_bytes=10240", "--set", "rates.lc.broadcast.per_day=5"]).await);
    assert_eq!((both["message_max_bytes"].clone(), both["rates"]["lc.broadcast"]["per_day"].clone()), (10240.into(), 5.into()));
    assert_eq!(both["rates"]["lc.message"]["per_minute"], 9000);

    // bad keys and values fail and change nothing
    let err = fails(d, &["app", "limits", "limited", "--set", "no_such_limit=1"]).await;
    assert!(err.contains("no_such_limit"), "{err}");
    fails(d, &["app", "limits", "limited", "--set", "rates.lc.message.per_hour=1"]).await;
    fails(d, &["app", "limits", "limited", "--set", "message_max_bytes=lots"]).await;
    fails(d, &["app", "limits", "limited", "--set", "message_max_bytes"]).await;
    fails(d, &["app", "limits", "nobody"]).await;
    assert_eq!(one_json(&ok(d, &["app", "limits", "limited"]).await), both);
}

#[tokio::test]
async fn app_create_while_serving_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&data, &["app", "create", "--name", "first"]).await;
    let port = free_port();
    let mut cmd = confab();
    cmd.arg("serve").arg("--data-dir").arg(&data).arg("--listen").arg(format!("127.0.0.1:{port}"));
    let server = Served::start(cmd, port, &dir.path().join("serve.log")).await;

    // an unknown app's keys are refused
    let status = server.lc_status("/1.2/rtm/conversations", "nope", "nope").await.expect("an answer");
    assert_ne!(status, 200);

    // `app create` on the running server's data directory
    let v = one_json(&ok(&data, &["app", "create", "--name", "live", "--json"]).await);
    let (app_id, _, master) = check_app_json(&v, "live", "standard");
    let (srv, id, key) = (&server, &app_id, &master);
    eventually("the running server to accept the new app's keys", Duration::from_secs(10), || async move {
        (srv.lc_status("/1.2/rtm/conversations", id, key).await? == 200).then_some(())
    })
    .await;
    assert_ne!(server.lc_status("/1.2/rtm/conversations", &app_id, "wrong").await, Some(200), "a wrong master key is refused");

    // the server writes while another process writes to the same directory
    let r = server
        .http
        .post(format!("{}/1.2/rtm/conversations", server.base))
        .header("X-LC-Id", &app_id)
        .header("X-LC-Key", format!("{master},master"))
        .json(&serde_json::json!({"name": "c", "m": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "the server writes: {}", r.status());
    let v = one_json(&ok(&data, &["app", "create", "--name", "live2", "--json"]).await);
    let (app_id2, _, master2) = check_app_json(&v, "live2", "standard");
    let (srv, id, key) = (&server, &app_id2, &master2);
    eventually("the second app's keys", Duration::from_secs(10), || async move {
        (srv.lc_status("/1.2/rtm/conversations", id, key).await? == 200).then_some(())
    })
    .await;
    let list = one_json(&ok(&data, &["app", "list", "--json"]).await);
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");

    server.terminate().await;
    // what the server wrote is there for the next start
    let list = one_json(&ok(&data, &["app", "list", "--json"]).await);
    assert_eq!(list.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn environment_variables_choose_data_dir_and_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-env");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();

    // CONFAB_DATA_DIR for `app create`, no flags
    let out = run(confab().current_dir(&cwd).env("CONFAB_DATA_DIR", &data).args(["app", "create", "--name", "envapp", "--json"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (app_id, _, master) = check_app_json(&one_json(&text(&out.stdout)), "envapp", "standard");
    assert!(data.join(confab_store_sqlite::DB_FILE).exists(), "the store is in CONFAB_DATA_DIR");
    assert!(!cwd.join("confab-data").exists(), "not in the default directory");
    let listed = one_json(&ok(&data, &["app", "list", "--json"]).await);
    assert_eq!(listed[0]["name"], "envapp");

    // CONFAB_DATA_DIR and CONFAB_LISTEN for `serve`, no flags
    let port = free_port();
    let mut cmd = confab();
    cmd.current_dir(&cwd).env("CONFAB_DATA_DIR", &data).env("CONFAB_LISTEN", format!("127.0.0.1:{port}")).arg("serve");
    let server = Served::start(cmd, port, &dir.path().join("serve.log")).await;
    assert_eq!(server.lc_status("/1.2/rtm/conversations", &app_id, &master).await, Some(200), "it serves the app in CONFAB_DATA_DIR");
    server.terminate().await;
    assert!(!cwd.join("confab-data").exists());

    // flags win over the environment
    let flagged = dir.path().join("flagged");
    let out = run(confab()
        .current_dir(&cwd)
        .env("CONFAB_DATA_DIR", &data)
        .args(["app", "create", "--name", "flagged", "--data-dir"])
        .arg(&flagged))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let in_flagged = one_json(&ok(&flagged, &["app", "list", "--json"]).await);
    assert_eq!(in_flagged.as_array().map(Vec::len), Some(1));
    assert_eq!(one_json(&ok(&data, &["app", "list", "--json"]).await).as_array().map(Vec::len), Some(1));
    // a bad CONFAB_LISTEN is refused with a message
    let out = run(confab().current_dir(&cwd).env("CONFAB_DATA_DIR", &data).env("CONFAB_LISTEN", "not an address").arg("serve")).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("CONFAB_LISTEN"), "{}", text(&out.stderr));
}

/// `confab serve` on a fresh data directory with one app, logging each request's start, with
/// these extra environment variables; and the app's LeanCloud id and master key.
pub(crate) async fn serve_with_app(dir: &Path, env: &[(&str, &str)]) -> (Served, String, String) {
    let data = dir.join("data");
    let v = one_json(&ok(&data, &["app", "create", "--name", "demo", "--json"]).await);
    let (app_id, _, master) = check_app_json(&v, "demo", "standard");
    let port = free_port();
    let mut cmd = confab();
    cmd.arg("serve").arg("--data-dir").arg(&data).arg("--listen").arg(format!("127.0.0.1:{port}"));
    cmd.env("RUST_LOG", "info,tower_http=debug").envs(env.iter().copied());
    (Served::start(cmd, port, &dir.join("serve.log")).await, app_id, master)
}

/// A POST whose body trickles in at 1 KB a second for two minutes, in flight once the server's
/// log shows it started; the task sending it.
async fn slow_upload(server: &Served, app_id: &str, master: &str) -> tokio::task::JoinHandle<()> {
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /1.2/rtm/conversations HTTP/1.1\r\nHost: {addr}\r\nX-LC-Id: {app_id}\r\nX-LC-Key: {master},master\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"name\":\"",
        120 * 1024
    );
    let task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        if tcp.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..120 {
            if tcp.write_all(&[b'x'; 1024]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    server.logs(&["POST", "started processing request"]).await;
    task
}

/// `confab serve` with this shutdown deadline, interrupted (SIGINT) in the middle of a slow
/// upload; and the task sending it.
async fn interrupted_during_a_slow_upload(dir: &Path, grace_secs: &str) -> (Served, tokio::task::JoinHandle<()>) {
    let (server, app_id, master) = serve_with_app(dir, &[("CONFAB_SHUTDOWN_GRACE_SECS", grace_secs)]).await;
    let upload = slow_upload(&server, &app_id, &master).await;
    server.signal("INT");
    (server, upload)
}

/// The data directory opens again and holds its one app.
async fn store_opens(dir: &Path) {
    let list = one_json(&ok(&dir.join("data"), &["app", "list", "--json"]).await);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn shutdown_does_not_wait_beyond_its_deadline_for_a_slow_upload() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, upload) = interrupted_during_a_slow_upload(dir.path(), "2").await;
    // the upload would keep it alive for two minutes; the deadline is 2 s
    let status = server.exits_within(Duration::from_secs(2 + 10), "SIGINT with a 2 s deadline").await;
    assert_eq!(status.code(), Some(0), "a clean exit: {status}");
    upload.abort();
    store_opens(dir.path()).await;
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, upload) = interrupted_during_a_slow_upload(dir.path(), "300").await;
    server.logs(&["shutting down"]).await;
    server.signal("INT");
    let status = server.exits_within(Duration::from_secs(10), "a second SIGINT").await;
    assert_eq!(status.code(), Some(130), "128 + SIGINT: {status}");
    upload.abort();
    store_opens(dir.path()).await;
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&data, &["app", "create", "--name", "first"]).await;
    let serve = |port: u16| {
        let mut cmd = confab();
        cmd.arg("serve").arg("--data-dir").arg(&data).arg("--listen").arg(format!("127.0.0.1:{port}"));
        cmd
    };
    let port = free_port();
    let mut first = Served::start(serve(port), port, &dir.path().join("first.log")).await;
    let first_pid = first.child.id().expect("running");

    // a second server, on another port, refuses at once and says why
    let mut second = serve(free_port());
    second.stdout(Stdio::null()).stderr(Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(20), second.output())
        .await
        .expect("a second server on the same data directory exits instead of serving")
        .unwrap();
    assert!(!out.status.success(), "it fails: {}", out.status);
    let err = text(&out.stderr);
    assert!(err.contains("already serving the data directory"), "{err}");
    assert!(err.contains(&format!("pid {first_pid}")), "it names the server that holds the directory: {err}");

    // `app create` still works beside the running server, which still serves
    ok(&data, &["app", "create", "--name", "beside"]).await;
    assert_eq!(first.http.get(format!("{}/healthz", first.base)).send().await.map(|r| r.status().as_u16()).ok(), Some(200));

    // killed outright, the first leaves its lock file but not its lock: the next server starts
    first.signal("KILL");
    first.exits_within(Duration::from_secs(10), "SIGKILL").await;
    assert!(data.join(confab_server::lock::LOCK_FILE).exists());
    let port = free_port();
    let again = Served::start(serve(port), port, &dir.path().join("again.log")).await;
    again.terminate().await;
}

/// POST a LeanCloud REST body with the master key; (status, body).
async fn lc_post(server: &Served, path: &str, app_id: &str, master: &str, body: Value) -> (u16, Value) {
    let r = server
        .http
        .post(format!("{}{path}", server.base))
        .header("X-LC-Id", app_id)
        .header("X-LC-Key", format!("{master},master"))
        .json(&body)
        .send()
        .await
        .expect("an answer");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn app_set_changes_settings_all_or_nothing_and_a_running_server_uses_them_within_5_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let v = one_json(&ok(&data, &["app", "create", "--name", "hooked", "--json"]).await);
    let (app_id, _, master) = check_app_json(&v, "hooked", "standard");
    let port = free_port();
    let mut cmd = confab();
    cmd.arg("serve").arg("--data-dir").arg(&data).arg("--listen").arg(format!("127.0.0.1:{port}"));
    let server = Served::start(cmd, port, &dir.path().join("serve.log")).await;
    let (status, conv) =
        lc_post(&server, "/1.2/rtm/conversations", &app_id, &master, serde_json::json!({"name": "c", "m": ["a", "b"]})).await;
    assert_eq!(status, 200, "{conv}");
    let path = format!("/1.2/rtm/conversations/{}/messages", conv["objectId"].as_str().expect("an id"));
    let message = serde_json::json!({"from_client": "a", "message": "x".repeat(300)});
    assert_eq!(lc_post(&server, &path, &app_id, &master, message.clone()).await.0, 200, "300 bytes fit the default limit");

    // hooks, push and a limit, in one call; each printed as it is now
    let out = ok(
        &data,
        &[
            "app",
            "set",
            "hooked",
            "hooks.leancloud.url=http://127.0.0.1:9/engine",
            "hooks.leancloud.fail_on_error=true",
            "hooks.easemob.secret=12345",
            "push.webhook_url=https://relay.example/push",
            "message_max_bytes=200",
        ],
    )
    .await;
    for line in [
        "hooks.leancloud.url = \"http://127.0.0.1:9/engine\"",
        "hooks.leancloud.fail_on_error = true",
        "hooks.easemob.secret = \"12345\"",
        "push.webhook_url = \"https://relay.example/push\"",
        "message_max_bytes = 200",
    ] {
        assert!(out.lines().any(|l| l == line), "`{line}` in:\n{out}");
    }
    let limits = one_json(&ok(&data, &["app", "limits", "hooked"]).await);
    assert_eq!(limits["hooks"]["leancloud"]["url"], "http://127.0.0.1:9/engine");
    assert_eq!(limits["hooks"]["easemob"]["pre_send_wait_ms"], 200, "unset keys keep their defaults: {limits}");
    assert_eq!(limits["push"]["webhook_url"], "https://relay.example/push");

    // the running server uses the new limit within 5 seconds
    let set_at = Instant::now();
    let (srv, p, id, key, m) = (&server, &path, &app_id, &master, &message);
    let (status, body) = eventually("the running server to apply message_max_bytes=200", Duration::from_secs(10), || async move {
        let (status, body) = lc_post(srv, p, id, key, m.clone()).await;
        (status != 200).then_some((status, body))
    })
    .await;
    assert!(set_at.elapsed() <= Duration::from_secs(5), "picked up in {:?}", set_at.elapsed());
    assert_eq!((status, body["code"].clone()), (413, 4109.into()), "{body}");
    // a REST send is the app's own server, which hooks are never asked about before: it goes
    // through although the hook server named is down and the app refuses on hook failures
    let small = serde_json::json!({"from_client": "a", "message": "ok"});
    assert_eq!(lc_post(&server, &path, &app_id, &master, small).await.0, 200);

    // refused, with the key in the message, and nothing changes — not even the good keys beside
    for (kv, says) in [
        ("hooks.leancloud.nope=1", "hooks.leancloud.nope"),
        ("hooks.leancloud.url=ftp://x", "hooks.leancloud.url"),
        ("hooks.leancloud.fail_on_error=maybe", "hooks.leancloud.fail_on_error"),
        ("hooks.easemob.pre_send_policy=sometimes", "pass"),
        ("hooks.leancloud=1", "hooks.leancloud"),
        ("push.template=[1]", "push.template"),
        ("message_max_bytes", "KEY=VALUE"),
    ] {
        let err = fails(&data, &["app", "set", "hooked", "message_max_bytes=999", kv]).await;
        assert!(err.contains(says), "`{kv}` refused saying {says}: {err}");
    }
    fails(&data, &["app", "set", "nobody", "message_max_bytes=1"]).await;
    fails(&data, &["app", "set", "hooked"]).await;
    assert_eq!(one_json(&ok(&data, &["app", "limits", "hooked"]).await), limits, "refused calls changed nothing");
    server.terminate().await;
}

/// On PostgreSQL each node of a cluster holds its own id: a second node asking for a held one
/// refuses to start and says why; tools work beside it on the shared database; a node killed
/// outright frees its id at once.
#[tokio::test]
async fn a_node_whose_id_is_taken_refuses_to_start() {
    let Some(db) = confab_store_postgres::test_db::TestDb::new().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let place = ["--database-url".to_string(), db.url.clone()];
    let v = one_json(&ok_on(&place, &["app", "create", "--name", "shared", "--json"]).await);
    check_app_json(&v, "shared", "standard");
    let serve = |port: u16| {
        let mut cmd = confab();
        cmd.args(["serve", "--node-id", "5", "--listen", &format!("127.0.0.1:{port}")]).args(&place);
        cmd
    };
    let port = free_port();
    let mut first = Served::start(serve(port), port, &dir.path().join("node5.log")).await;

    let mut second = serve(free_port());
    second.stdout(Stdio::null()).stderr(Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(20), second.output()).await.expect("the second node exits").unwrap();
    assert!(!out.status.success(), "it fails: {}", out.status);
    let err = text(&out.stderr);
    assert!(err.contains("node id 5 is taken"), "{err}");

    // a tool takes a free id beside the node and sees the app
    let listed = one_json(&ok_on(&place, &["app", "list", "--json"]).await);
    assert_eq!(listed[0]["name"], "shared");
    assert_eq!(first.http.get(format!("{}/healthz", first.base)).send().await.map(|r| r.status().as_u16()).ok(), Some(200));

    // killed outright, its id is free again at once
    first.signal("KILL");
    first.exits_within(Duration::from_secs(10), "SIGKILL").await;
    let port = free_port();
    let again = Served::start(serve(port), port, &dir.path().join("node5-again.log")).await;
    assert_eq!(again.http.get(format!("{}/healthz", again.base)).send().await.map(|r| r.status().as_u16()).ok(), Some(200));
    again.terminate().await;
}
