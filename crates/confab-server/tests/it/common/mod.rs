//! Test harness: a real confab server on 127.0.0.1:0 over a fresh data directory, and an HTTP
//! client that speaks to it as a LeanCloud app server would.
//!
//! With `CONFAB_IT_STORE=postgres`, each server stands on a fresh PostgreSQL database instead
//! (on the server `CONFAB_TEST_DATABASE_URL` names): the same tests, on the cluster's store.
//! Tests of what only the embedded store has (its data directory, its work counters) say so
//! and return ([`on_postgres`]).
#![allow(dead_code)]

pub mod clock;
pub mod leanengine;
pub mod raw;
pub mod receiver;
pub mod ws;

use std::future::Future;
use std::time::Duration;

use confab_engine::model::{App, Plan};
use confab_engine::NewApp;
/// The store seam's traits, for tests that look at what was kept (`TestServer::store`).
pub use confab_engine::{AppStore, ConversationStore, EntryStore, ImportStore, MessageStore, OutboxStore, UserStore};
use confab_server::{Config, Server};
use reqwest::Method;
use serde_json::Value;

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The engine's clock: `advance` moves the server's time on.
    pub clock: std::sync::Arc<clock::TestClock>,
    /// The server's own database, on PostgreSQL (dropped after the server).
    pub db: Option<confab_store_postgres::test_db::TestDb>,
}

/// Whether the servers of this run stand on PostgreSQL (`CONFAB_IT_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("CONFAB_IT_STORE").is_ok_and(|s| s == "postgres")
}

/// For a test of what only the embedded store has: true (and says so) when this run is on
/// PostgreSQL, and the test returns.
pub fn sqlite_only(what: &str) -> bool {
    let pg = on_postgres();
    if pg {
        eprintln!("on PostgreSQL: not run ({what} is the embedded store's)");
    }
    pg
}

/// A fresh database for a server of a PostgreSQL run (there, the test server is required).
async fn postgres_for(config: &mut Config) -> Option<confab_store_postgres::test_db::TestDb> {
    if !on_postgres() {
        return None;
    }
    let db = confab_store_postgres::test_db::TestDb::new().await.expect("CONFAB_IT_STORE=postgres needs CONFAB_TEST_DATABASE_URL");
    config.database_url = db.url.clone();
    config.node_id = 1;
    Some(db)
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server with settings of the test's own.
    pub async fn start_with(settings: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config { data_dir: dir.path().to_path_buf(), listen: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
        settings(&mut config);
        let db = postgres_for(&mut config).await;
        let clock = std::sync::Arc::new(clock::TestClock::default());
        let server = Server::start_with_clock(&config, clock.clone()).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        TestServer { server: Some(server), base, http: reqwest::Client::new(), dir, clock, db }
    }

    /// A server that speaks TLS with a fresh self-signed certificate for 127.0.0.1, and that
    /// certificate. `base` is `https://…`, and `http` trusts that certificate.
    pub async fn start_tls() -> (TestServer, rustls::pki_types::CertificateDer<'static>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).expect("cert.pem");
        std::fs::write(&key, ck.key_pair.serialize_pem()).expect("key.pem");
        let config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..Config::default()
        };
        let mut config = config;
        let db = postgres_for(&mut config).await;
        let clock = std::sync::Arc::new(clock::TestClock::default());
        let server = Server::start_with_clock(&config, clock.clone()).await.expect("TLS server starts");
        let base = format!("https://{}", server.addr);
        let trusted = reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).expect("PEM");
        let http = reqwest::Client::builder().add_root_certificate(trusted).build().expect("https client");
        (TestServer { server: Some(server), base, http, dir, clock, db }, ck.cert.der().clone())
    }

    /// Where a command-line tool finds this server's store: `--data-dir DIR`, or on PostgreSQL
    /// `--database-url URL`.
    pub fn store_args(&self) -> Vec<String> {
        match &self.db {
            Some(db) => vec!["--database-url".into(), db.url.clone()],
            None => vec!["--data-dir".into(), self.dir.path().to_string_lossy().into_owned()],
        }
    }

    /// A configuration for another server on this one's store (its data directory, or its
    /// database as node 1), listening on a port of its own.
    pub fn config_again(&self) -> Config {
        let mut config = Config { data_dir: self.dir.path().to_path_buf(), listen: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
        if let Some(db) = &self.db {
            config.database_url = db.url.clone();
            config.node_id = 1;
        }
        config
    }

    /// Move the server's time on by `by` (the engine's clock; no sleeping).
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("running").addr
    }

    /// The store under the engine, for tests that look at what was kept.
    pub fn store(&self) -> std::sync::Arc<dyn confab_engine::Store> {
        self.server.as_ref().expect("running").store()
    }

    pub fn engine(&self) -> &std::sync::Arc<confab_engine::Engine> {
        &self.server.as_ref().expect("running").engine
    }

    /// A new app with the given plan, and a client for it.
    pub async fn app(&self, plan: Plan) -> LcApp {
        let name = format!("app-{}", confab_engine::random_lower(8));
        let app = self.engine().apps().create_app(NewApp { name, plan, ..Default::default() }).await.expect("app");
        LcApp { app, base: self.base.clone(), http: self.http.clone() }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
    }
}

/// A TLS client config (ring) that trusts only `cert`.
pub fn tls_client(cert: rustls::pki_types::CertificateDer<'static>) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("certificate");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `X-LC-Key: <masterKey>,master`
    Master,
    /// `X-LC-Key: <appKey>`
    AppKey,
    /// No credentials at all.
    None,
    /// These headers, as given.
    Headers(Vec<(String, String)>),
}

pub struct LcApp {
    pub app: App,
    pub base: String,
    pub http: reqwest::Client,
}

/// A response: status, JSON body (Value::Null when the body is not JSON) and `Retry-After`.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
}

impl Resp {
    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
        let text = resp.text().await.expect("body");
        Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), retry_after }
    }

    /// Assert a 429 that says how long to wait.
    #[track_caller]
    pub fn assert_retry_after(&self) -> u64 {
        assert_eq!(self.status, 429, "expected 429, got {} {:?}", self.status, self.body);
        let secs = self.retry_after.unwrap_or_else(|| panic!("a 429 without Retry-After: {:?}", self.body));
        assert!(secs >= 1, "Retry-After {secs}");
        secs
    }

    /// Assert a LeanCloud error: HTTP status and body code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: i64) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.body["code"], code, "code of {:?}", self.body);
        assert!(self.body["error"].is_string(), "error text in {:?}", self.body);
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected 200, got {:?}", self.body);
        &self.body
    }
}

impl LcApp {
    pub fn app_id(&self) -> &str {
        &self.app.keys.leancloud.app_id
    }
    pub fn app_key(&self) -> &str {
        &self.app.keys.leancloud.app_key
    }
    pub fn master_key(&self) -> &str {
        &self.app.keys.leancloud.master_key
    }

    pub async fn call(&self, method: Method, path: &str, auth: Auth, body: Option<Value>) -> Resp {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, url);
        req = match auth {
            Auth::Master => req.header("X-LC-Id", self.app_id()).header("X-LC-Key", format!("{},master", self.master_key())),
            Auth::AppKey => req.header("X-LC-Id", self.app_id()).header("X-LC-Key", self.app_key()),
            Auth::None => req,
            Auth::Headers(hs) => hs.into_iter().fold(req, |r, (k, v)| r.header(k, v)),
        };
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        Resp::read(resp).await
    }

    /// A raw body (for malformed JSON and oversized bodies).
    pub async fn call_raw(&self, method: Method, path: &str, body: Vec<u8>) -> Resp {
        let resp = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("X-LC-Id", self.app_id())
            .header("X-LC-Key", format!("{},master", self.master_key()))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        Resp::read(resp).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Auth::Master, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Auth::Master, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Auth::Master, Some(body)).await
    }
    pub async fn delete(&self, path: &str, body: Option<Value>) -> Resp {
        self.call(Method::DELETE, path, Auth::Master, body).await
    }

    /// Create a normal conversation and return its id.
    pub async fn conversation(&self, body: Value) -> String {
        let r = self.post("/1.2/rtm/conversations", body).await;
        r.ok()["objectId"].as_str().expect("objectId").to_string()
    }

    /// Send a text message; returns (msg-id, timestamp).
    pub async fn send(&self, conv: &str, from: &str, text: &str) -> (String, i64) {
        let r =
            self.post(&format!("/1.2/rtm/conversations/{conv}/messages"), serde_json::json!({"from_client": from, "message": text})).await;
        let b = r.ok();
        (b["msg-id"].as_str().expect("msg-id").to_string(), b["timestamp"].as_i64().expect("timestamp"))
    }
}

/// `where` and other parameters, URL-encoded.
pub fn qs(params: &[(&str, &str)]) -> String {
    let parts: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", urlencoding::encode(v))).collect();
    format!("?{}", parts.join("&"))
}

/// Poll until `f` returns Some, or panic after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {secs}s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lowercase hex HMAC-SHA1, as LeanCloud signs.
pub fn hmac_sha1_hex(key: &str, msg: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

/// How an Easemob request authenticates.
#[derive(Clone, Debug)]
pub enum Em {
    /// The app token.
    App,
    /// A user token (or any token string).
    Token(String),
    /// No Authorization header.
    None,
}

/// An app seen through the Easemob face: `base` is `http://host/{org}/{app}`, `token` the app token.
pub struct EmApp {
    pub app: App,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl TestServer {
    /// A new app and its Easemob app token.
    pub async fn em(&self, plan: Plan) -> EmApp {
        let lc = self.app(plan).await;
        self.em_of(&lc).await
    }

    /// An app seen through the Easemob face, with an app token.
    pub async fn em_of(&self, lc: &LcApp) -> EmApp {
        let k = &lc.app.keys.easemob;
        let base = format!("{}/{}/{}", self.base, k.org_name, k.app_name);
        let body = serde_json::json!({"grant_type": "client_credentials", "client_id": k.client_id, "client_secret": k.client_secret});
        let r = self.http.post(format!("{base}/token")).json(&body).send().await.expect("token").json::<Value>().await.expect("json");
        let token = r["access_token"].as_str().expect("access_token").to_string();
        EmApp { app: lc.app.clone(), base, http: self.http.clone(), token }
    }
}

impl EmApp {
    /// A request to `base + path`; the status and JSON body (Null when not JSON).
    pub async fn call(&self, method: Method, path: &str, auth: Em, body: Option<Value>) -> Resp {
        self.send(method, path, auth, body.map(|b| b.to_string().into_bytes())).await
    }

    /// A raw body with the app token (for malformed JSON).
    pub async fn call_raw(&self, method: Method, path: &str, body: Vec<u8>) -> Resp {
        self.send(method, path, Em::App, Some(body)).await
    }

    async fn send(&self, method: Method, path: &str, auth: Em, body: Option<Vec<u8>>) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        req = match auth {
            Em::App => req.bearer_auth(&self.token),
            Em::Token(t) => req.bearer_auth(t),
            Em::None => req,
        };
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().await.expect("request");
        Resp::read(resp).await
    }
    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Em::App, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Em::App, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Em::App, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, Em::App, None).await
    }
    /// Register users (password "pw-<name>").
    pub async fn users(&self, names: &[&str]) {
        for n in names {
            let r = self.post("/users", serde_json::json!({"username": n, "password": format!("pw-{n}")})).await;
            assert_eq!(r.status, 200, "register {n}: {:?}", r.body);
        }
    }
    /// A user token for a registered user.
    pub async fn user_token(&self, name: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/token",
                Em::None,
                Some(serde_json::json!({"grant_type": "password", "username": name, "password": format!("pw-{name}")})),
            )
            .await;
        assert_eq!(r.status, 200, "token for {name}: {:?}", r.body);
        r.body["access_token"].as_str().expect("access_token").to_string()
    }
}

impl Resp {
    /// Assert an Easemob error: HTTP status and `error`.
    #[track_caller]
    pub fn em_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.body["error"], error, "error of {:?}", self.body);
        for k in ["exception", "timestamp", "duration", "error_description"] {
            assert!(self.body.get(k).is_some(), "{k} in {:?}", self.body);
        }
    }
}

/// The Usergrid envelope's common fields (Easemob's users, contacts, groups, chat rooms, messages).
#[track_caller]
pub fn usergrid(v: &Value, action: &str, app: &EmApp) {
    assert_eq!(v["action"], action, "{v}");
    assert_eq!(v["organization"], app.app.keys.easemob.org_name, "{v}");
    assert_eq!(v["applicationName"], app.app.keys.easemob.app_name, "{v}");
    for k in ["application", "uri", "path", "timestamp", "duration"] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
}

/// A JSON array of strings, in its order.
#[track_caller]
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap_or_else(|| panic!("array: {v}")).iter().map(|x| x.as_str().expect("a string").to_string()).collect()
}

/// A JSON array of strings, sorted.
#[track_caller]
pub fn sorted_strs(v: &Value) -> Vec<String> {
    let mut out = strs(v);
    out.sort();
    out
}

impl TestServer {
    /// The same app through the LeanCloud face.
    pub fn lc_of(&self, app: &EmApp) -> LcApp {
        LcApp { app: app.app.clone(), base: self.base.clone(), http: self.http.clone() }
    }
}
