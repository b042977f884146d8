//! A test receiver for the calls confab makes to an app's own servers (Easemob callbacks, the
//! MaxIM webhook, the push relay): a real HTTP server on 127.0.0.1 that records every request
//! and answers what the test scripted for its path (default: 200 `{}`), after an optional delay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Call {
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub raw: Vec<u8>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    pub at: Instant,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// What to answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply { status: 200, body: body.to_string(), delay: Duration::ZERO }
    }
    pub fn status(status: u16) -> Reply {
        Reply { status, body: "{}".into(), delay: Duration::ZERO }
    }
    pub fn raw(status: u16, body: impl Into<String>) -> Reply {
        Reply { status, body: body.into(), delay: Duration::ZERO }
    }
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// Per path: the answers to give in turn; the last one repeats.
    script: HashMap<String, Vec<Reply>>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct Receiver {
    pub addr: SocketAddr,
    inner: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// On a given address (to bring a receiver back where an earlier one was).
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("receiver binds");
        let addr = listener.local_addr().unwrap();
        let inner: Shared = Arc::default();
        let app = axum::Router::new().fallback(answer).with_state(inner.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver { addr, inner, stop: Some(stop), task: Some(task) }
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answer requests to `path` with these replies in turn (the last one repeats).
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.inner.lock().unwrap().script.insert(path.to_string(), replies);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn calls_to(&self, path: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.path == path).collect()
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().calls.clear();
    }

    /// Wait until `path` got at least `n` requests (panics after `within`).
    pub async fn wait_calls(&self, path: &str, n: usize, within: Duration) -> Vec<Call> {
        let deadline = Instant::now() + within;
        loop {
            let calls = self.calls_to(path);
            if calls.len() >= n {
                return calls;
            }
            assert!(Instant::now() < deadline, "{path}: {} of {n} calls arrived within {within:?}", calls.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop listening (connections in progress end).
    pub async fn stop(mut self) {
        self.shut().await;
    }

    async fn shut(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn answer(State(inner): State<Shared>, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let path = uri.path().to_string();
    let call = Call {
        path: path.clone(),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw: raw.to_vec(),
        at: Instant::now(),
    };
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.calls.push(call);
        match inner.script.get_mut(&path) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) if !list.is_empty() => list[0].clone(),
            _ => Reply::ok(serde_json::json!({})),
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "application/json")], reply.body).into_response()
}
