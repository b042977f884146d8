//! The stand-in server: LeanCloud's REST answers over a [`Dataset`], with fault injection and
//! per-route request counts.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::dataset::{ConvKind, Dataset};
use crate::history::{page, HistoryQuery};
use crate::ids::{self, mix};
use crate::query;

/// How requests fail once the server is told to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// 500 `{"code":1,"error":"Internal server error. No information available."}`.
    Http500,
    /// The listening socket is closed (new connections are refused) and open connections are
    /// dropped without an answer.
    Refuse,
}

/// Faults to inject. The default injects none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every Nth request (of those `only_routes` selects) answers 429 `{"code":429,"error":"Too many requests."}`.
    pub throttle_every: Option<u64>,
    /// This fraction of requests, drawn from a generator seeded with `throttle_seed`, answers 429.
    pub throttle_fraction: Option<f64>,
    pub throttle_seed: u64,
    /// Send `Retry-After: <seconds>` with a 429.
    pub retry_after_secs: Option<u64>,
    /// Wait this long before answering any request.
    pub delay: Option<Duration>,
    /// After this many requests have been answered, fail every later one (until [`StandInServer::heal`]).
    pub fail_after: Option<(u64, FailMode)>,
    /// Limit throttling to these route templates (e.g. `"/1.2/rtm/conversations/{id}/messages"`).
    pub only_routes: Option<Vec<String>>,
}

/// Requests one route received, and what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteCount {
    /// Every request, faulted or not.
    pub requests: u64,
    pub throttled: u64,
    /// Answered 500 or dropped by a [`FailMode`].
    pub failed: u64,
    pub unauthorized: u64,
}

/// Request counts by route template (`"(unmatched)"` for paths no route has).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub routes: BTreeMap<String, RouteCount>,
}

impl RequestStats {
    pub fn route(&self, route: &str) -> RouteCount {
        self.routes.get(route).copied().unwrap_or_default()
    }
    pub fn requests(&self, route: &str) -> u64 {
        self.route(route).requests
    }
    pub fn throttled(&self, route: &str) -> u64 {
        self.route(route).throttled
    }
    pub fn total(&self) -> u64 {
        self.routes.values().map(|c| c.requests).sum()
    }
    pub fn total_throttled(&self) -> u64 {
        self.routes.values().map(|c| c.throttled).sum()
    }
    pub fn total_failed(&self) -> u64 {
        self.routes.values().map(|c| c.failed).sum()
    }
}

/// The route templates, for [`RequestStats`] and [`Faults::only_routes`].
pub mod routes {
    pub const ALL_CONVERSATIONS: &str = "/1.2/rtm/all-conversations";
    pub const CONVERSATIONS: &str = "/1.2/rtm/conversations";
    pub const CHATROOMS: &str = "/1.2/rtm/chatrooms";
    pub const SERVICE_CONVERSATIONS: &str = "/1.2/rtm/service-conversations";
    pub const SCAN: &str = "/1.1/scan/classes/{class}";
    pub const CONVERSATION_MESSAGES: &str = "/1.2/rtm/conversations/{id}/messages";
    pub const CHATROOM_MESSAGES: &str = "/1.2/rtm/chatrooms/{id}/messages";
    pub const SUBSCRIBER_MESSAGES: &str = "/1.2/rtm/service-conversations/{id}/subscribers/{client_id}/messages";
    pub const APP_MESSAGES: &str = "/1.2/rtm/messages";
    pub const CLIENT_MESSAGES: &str = "/1.2/rtm/clients/{client_id}/messages";
    pub const MUTES: &str = "/1.2/rtm/conversations/{id}/mutes";
    pub const MEMBERS: &str = "/1.2/rtm/conversations/{id}/members";
    pub const SUBSCRIBERS: &str = "/1.2/rtm/service-conversations/{id}/subscribers";
    pub const SUBSCRIBER_COUNT: &str = "/1.2/rtm/service-conversations/{id}/subscribers/count";
    pub const UNMATCHED: &str = "(unmatched)";
    /// Requests dropped by [`super::FailMode::Refuse`] before they reached a route.
    pub const REFUSED: &str = "(refused)";
}

#[derive(Debug)]
struct Control {
    faults: Mutex<Faults>,
    /// Requests since the faults were set (for `fail_after`).
    seen: AtomicU64,
    /// Requests `only_routes` selected since the faults were set (for `throttle_every`).
    eligible: AtomicU64,
    rng: Mutex<u64>,
    failing: Mutex<Option<FailMode>>,
    refusing: watch::Sender<bool>,
    stats: Mutex<BTreeMap<String, RouteCount>>,
}

enum Verdict {
    Pass,
    Throttle(Option<u64>),
    Fail(FailMode),
}

impl Control {
    fn count(&self, route: &str, f: impl FnOnce(&mut RouteCount)) {
        f(self.stats.lock().entry(route.to_string()).or_default());
    }

    fn fail_now(&self, mode: FailMode) {
        *self.failing.lock() = Some(mode);
        self.refusing.send_replace(mode == FailMode::Refuse);
    }

    fn refusing(&self) -> bool {
        *self.refusing.borrow()
    }

    fn verdict(&self, route: &str) -> Verdict {
        let faults = self.faults.lock().clone();
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        if let Some(mode) = *self.failing.lock() {
            return Verdict::Fail(mode);
        }
        if let Some((after, mode)) = faults.fail_after {
            if n >= after {
                self.fail_now(mode);
                return Verdict::Fail(mode);
            }
        }
        if faults.only_routes.as_ref().is_some_and(|r| !r.iter().any(|x| x == route)) {
            return Verdict::Pass;
        }
        let k = self.eligible.fetch_add(1, Ordering::Relaxed) + 1;
        let every = faults.throttle_every.is_some_and(|e| e > 0 && k.is_multiple_of(e));
        let drawn = faults.throttle_fraction.is_some_and(|f| {
            let mut s = self.rng.lock();
            *s = mix(*s);
            ((*s >> 11) as f64 / (1u64 << 53) as f64) < f
        });
        if every || drawn {
            Verdict::Throttle(faults.retry_after_secs)
        } else {
            Verdict::Pass
        }
    }
}

#[derive(Clone)]
struct AppState {
    dataset: Arc<Dataset>,
    control: Arc<Control>,
}

/// An error answer: `{"code":…,"error":…}` with an HTTP status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: i64,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"code": self.code, "error": self.message}))).into_response()
    }
}

fn api_error(status: StatusCode, code: i64, message: &str) -> ApiError {
    ApiError { status, code, message: message.to_string() }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    api_error(status, code, message).into_response()
}

type Reply = Result<Response, ApiError>;

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, 401, "Unauthorized.")
}

/// The master key, as `X-LC-Key: <masterKey>,master` or `X-LC-Sign: md5(ts+masterKey),ts,master`.
fn authorized(ds: &Dataset, headers: &HeaderMap) -> bool {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    if get("x-lc-id") != Some(ds.app_id()) {
        return false;
    }
    if let Some(key) = get("x-lc-key") {
        return key.strip_suffix(",master") == Some(ds.master_key());
    }
    if let Some(sign) = get("x-lc-sign") {
        let parts: Vec<&str> = sign.split(',').collect();
        if let [sig, ts, "master"] = parts.as_slice() {
            let want = hex::encode(Md5::digest(format!("{ts}{}", ds.master_key()).as_bytes()));
            return *sig == want;
        }
    }
    false
}

async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    app.dataset.note_request(ids::now_ms());
    app.control.count(&route, |c| c.requests += 1);
    let delay = app.control.faults.lock().delay;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match app.control.verdict(&route) {
        Verdict::Pass => {}
        Verdict::Throttle(retry_after) => {
            app.control.count(&route, |c| c.throttled += 1);
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, 429, "Too many requests.");
            if let Some(s) = retry_after {
                r.headers_mut().insert("retry-after", HeaderValue::from(s));
            }
            return r;
        }
        Verdict::Fail(mode) => {
            app.control.count(&route, |c| c.failed += 1);
            return match mode {
                FailMode::Http500 => error(StatusCode::INTERNAL_SERVER_ERROR, 1, "Internal server error. No information available."),
                // never sent: the connection is dropped (see `serve_connection`)
                FailMode::Refuse => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            };
        }
    }
    if !authorized(&app.dataset, req.headers()) {
        app.control.count(&route, |c| c.unauthorized += 1);
        return unauthorized();
    }
    // requests are stamped on arrival and on answer (appended messages come after both)
    let r = next.run(req).await;
    app.dataset.note_request(ids::now_ms());
    r
}

async fn unmatched(State(app): State<AppState>) -> Response {
    app.control.count(routes::UNMATCHED, |c| c.requests += 1);
    error(StatusCode::NOT_FOUND, 404, "Not Found")
}

type Params = Query<HashMap<String, String>>;

fn bad_param(msg: &str) -> ApiError {
    api_error(StatusCode::BAD_REQUEST, 1, msg)
}

fn storage_limit(p: &HashMap<String, String>) -> usize {
    match p.get("limit").and_then(|l| l.trim().parse::<i64>().ok()) {
        Some(l) if (1..=1000).contains(&l) => l as usize,
        _ => 100,
    }
}

fn filter_rows(rows: Vec<Value>, p: &HashMap<String, String>) -> Result<Vec<Value>, ApiError> {
    let Some(w) = p.get("where").filter(|w| !w.trim().is_empty()) else {
        return Ok(rows);
    };
    let cond = query::parse(w).map_err(|e| api_error(StatusCode::BAD_REQUEST, 107, &e))?;
    let mut out = Vec::new();
    for r in rows {
        if query::matches(&r, &cond).map_err(|e| bad_param(&e))? {
            out.push(r);
        }
    }
    Ok(out)
}

/// `/1.2/rtm/all-conversations` and the per-kind listings: `{"results":[…]}`, objectId order.
fn list(app: AppState, p: HashMap<String, String>, keep: fn(&Value) -> bool) -> Reply {
    let rows: Vec<Value> = app.dataset.api_rows("_Conversation").unwrap_or_default().into_iter().filter(keep).collect();
    let rows = filter_rows(rows, &p)?;
    let skip = p.get("skip").and_then(|s| s.trim().parse::<usize>().ok()).unwrap_or(0);
    let limit = match p.get("limit").and_then(|l| l.trim().parse::<i64>().ok()) {
        Some(0) => 0,
        _ => storage_limit(&p),
    };
    let count = rows.len();
    let results: Vec<Value> = rows.into_iter().skip(skip).take(limit).collect();
    Ok(if p.get("count").is_some_and(|c| c == "1" || c == "true") {
        Json(json!({"results": results, "count": count})).into_response()
    } else {
        Json(json!({"results": results})).into_response()
    })
}

fn is_flag(row: &Value, key: &str) -> bool {
    row.get(key).and_then(Value::as_bool).unwrap_or(false)
}

async fn all_conversations(State(app): State<AppState>, Query(p): Params) -> Reply {
    list(app, p, |_| true)
}
async fn conversations(State(app): State<AppState>, Query(p): Params) -> Reply {
    list(app, p, |r| !is_flag(r, "tr") && !is_flag(r, "sys"))
}
async fn chatrooms(State(app): State<AppState>, Query(p): Params) -> Reply {
    list(app, p, |r| is_flag(r, "tr"))
}
async fn service_conversations(State(app): State<AppState>, Query(p): Params) -> Reply {
    list(app, p, |r| is_flag(r, "sys"))
}

/// `/1.1/scan/classes/{class}`: `{"results":[…],"cursor":…}` in objectId order; the cursor is null
/// once a page comes back short (so a class whose size is a multiple of `limit` ends with an empty page).
async fn scan(State(app): State<AppState>, Path(class): Path<String>, Query(p): Params) -> Reply {
    let rows = app.dataset.api_rows(&class).ok_or_else(|| api_error(StatusCode::NOT_FOUND, 101, "Class or object doesn't exists."))?;
    let rows = filter_rows(rows, &p)?;
    let after = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(ids::scan_cursor_decode(c).ok_or_else(|| bad_param("Invalid cursor."))?),
    };
    let limit = storage_limit(&p);
    let results: Vec<Value> =
        rows.into_iter().filter(|r| after.as_deref().is_none_or(|a| r["objectId"].as_str().unwrap_or("") > a)).take(limit).collect();
    let cursor = if results.len() == limit { results.last().and_then(|r| r["objectId"].as_str()).map(ids::scan_cursor) } else { None };
    Ok(Json(json!({"results": results, "cursor": cursor})).into_response())
}

fn history_query(p: &HashMap<String, String>) -> Result<HistoryQuery, ApiError> {
    HistoryQuery::parse(p, ids::now_ms()).map_err(|e| bad_param(&e))
}

fn records(msgs: Vec<crate::dataset::Message>) -> Reply {
    Ok(Json(Value::Array(msgs.iter().map(|m| m.record()).collect())).into_response())
}

fn wrong_kind(resource: ConvKind) -> ApiError {
    match resource {
        ConvKind::ChatRoom => api_error(StatusCode::BAD_REQUEST, 4316, "TRANSIENT_CONVERSATION_REQUIRED"),
        ConvKind::Service => api_error(StatusCode::BAD_REQUEST, 4313, "SYSTEM_CONVERSATION_REQUIRED"),
        _ => api_error(StatusCode::BAD_REQUEST, 4314, "NORMAL_CONVERSATION_REQUIRED"),
    }
}

fn not_found() -> ApiError {
    api_error(StatusCode::NOT_FOUND, 4303, "CONVERSATION_NOT_FOUND")
}

/// Does a conversation of `kind` belong under the resource of `resource`?
fn fits(resource: ConvKind, kind: ConvKind) -> bool {
    match resource {
        ConvKind::ChatRoom => kind == ConvKind::ChatRoom,
        ConvKind::Service => kind == ConvKind::Service,
        _ => matches!(kind, ConvKind::Group | ConvKind::Unique | ConvKind::Temporary),
    }
}

fn conv_history(app: AppState, resource: ConvKind, id: String, p: HashMap<String, String>) -> Reply {
    let q = history_query(&p)?;
    let view = {
        let inner = app.dataset.inner.read();
        match inner.conv(&id) {
            // the log is looked up by id; an unknown id has an empty one
            None => None,
            Some(c) if !fits(resource, c.gen.kind) => return Err(wrong_kind(resource)),
            Some(c) => Some(c.view()),
        }
    };
    records(page(view.into_iter().collect(), &q))
}

async fn conversation_messages(State(app): State<AppState>, Path(id): Path<String>, Query(p): Params) -> Reply {
    conv_history(app, ConvKind::Group, id, p)
}

async fn chatroom_messages(State(app): State<AppState>, Path(id): Path<String>, Query(p): Params) -> Reply {
    conv_history(app, ConvKind::ChatRoom, id, p)
}

async fn subscriber_messages(State(app): State<AppState>, Path((id, client)): Path<(String, String)>, Query(p): Params) -> Reply {
    let q = history_query(&p)?;
    let view = {
        let inner = app.dataset.inner.read();
        match inner.conv(&id) {
            None => None,
            Some(c) if c.gen.kind != ConvKind::Service => return Err(wrong_kind(ConvKind::Service)),
            Some(c) if !c.subscribers.iter().any(|s| s.client_id == client) => None,
            Some(c) => Some(c.view().for_subscriber(&client)),
        }
    };
    records(page(view.into_iter().collect(), &q))
}

async fn app_messages(State(app): State<AppState>, Query(p): Params) -> Reply {
    let q = history_query(&p)?;
    let views = app.dataset.inner.read().app_views();
    records(page(views, &q))
}

async fn client_messages(State(app): State<AppState>, Path(client): Path<String>, Query(p): Params) -> Reply {
    let q = history_query(&p)?;
    let views = app.dataset.inner.read().sender_views(&client);
    records(page(views, &q))
}

fn conv_field(app: &AppState, id: &str, resource: ConvKind, field: &str) -> Reply {
    let c = app.dataset.conversation(id).filter(|c| c.kind != ConvKind::Temporary).ok_or_else(not_found)?;
    if !fits(resource, c.kind) {
        return Err(wrong_kind(resource));
    }
    let v = c.row.as_ref().and_then(|r| r.get(field)).cloned().unwrap_or_else(|| json!([]));
    Ok(Json(json!({ "result": v })).into_response())
}

async fn mutes(State(app): State<AppState>, Path(id): Path<String>) -> Reply {
    conv_field(&app, &id, ConvKind::Group, "mu")
}

async fn members(State(app): State<AppState>, Path(id): Path<String>) -> Reply {
    conv_field(&app, &id, ConvKind::Group, "m")
}

fn service(app: &AppState, id: &str) -> Result<crate::dataset::ConversationInfo, ApiError> {
    let c = app.dataset.conversation(id).ok_or_else(not_found)?;
    if c.kind != ConvKind::Service {
        return Err(wrong_kind(ConvKind::Service));
    }
    Ok(c)
}

/// `…/subscribers?limit&client_id`: subscribers in client-id order after `client_id`; limit default
/// and maximum 50.
async fn subscribers(State(app): State<AppState>, Path(id): Path<String>, Query(p): Params) -> Reply {
    let c = service(&app, &id)?;
    let limit = match p.get("limit").and_then(|l| l.trim().parse::<i64>().ok()) {
        Some(l) if (1..=50).contains(&l) => l as usize,
        _ => 50,
    };
    let after = p.get("client_id").filter(|c| !c.is_empty());
    let out: Vec<Value> = c
        .subscribers
        .iter()
        .filter(|s| after.is_none_or(|a| s.client_id.as_str() > a.as_str()))
        .take(limit)
        .map(|s| json!({"timestamp": s.subscribed_at, "subscriber": s.client_id, "conv_id": c.id}))
        .collect();
    Ok(Json(Value::Array(out)).into_response())
}

async fn subscriber_count(State(app): State<AppState>, Path(id): Path<String>) -> Reply {
    let c = service(&app, &id)?;
    Ok(Json(json!({"count": c.subscribers.len()})).into_response())
}

fn router(state: AppState) -> Router {
    use routes::*;
    Router::new()
        .route(ALL_CONVERSATIONS, get(all_conversations))
        .route(CONVERSATIONS, get(conversations))
        .route(CHATROOMS, get(chatrooms))
        .route(SERVICE_CONVERSATIONS, get(service_conversations))
        .route(SCAN, get(scan))
        .route(CONVERSATION_MESSAGES, get(conversation_messages))
        .route(CHATROOM_MESSAGES, get(chatroom_messages))
        .route(SUBSCRIBER_MESSAGES, get(subscriber_messages))
        .route(APP_MESSAGES, get(app_messages))
        .route(CLIENT_MESSAGES, get(client_messages))
        .route(MUTES, get(mutes))
        .route(MEMBERS, get(members))
        .route(SUBSCRIBERS, get(subscribers))
        .route(SUBSCRIBER_COUNT, get(subscriber_count))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
        .fallback(unmatched)
        .with_state(state)
}

/// The error a dropped connection's service returns (hyper closes the connection unanswered).
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stand-in refuses this request")
    }
}

impl std::error::Error for Refused {}

fn serve_connection(stream: TcpStream, router: Router, control: Arc<Control>, mut close: watch::Receiver<u64>) {
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let router = router.clone();
            let control = control.clone();
            async move {
                if control.refusing() {
                    control.count(routes::REFUSED, |c| {
                        c.requests += 1;
                        c.failed += 1;
                    });
                    return Err(Refused);
                }
                let resp = match router.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                if control.refusing() {
                    return Err(Refused);
                }
                Ok::<_, Refused>(resp)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = close.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

async fn accept_loop(listener: TcpListener, addr: SocketAddr, router: Router, control: Arc<Control>, mut stop: watch::Receiver<bool>) {
    let mut refusing = control.refusing.subscribe();
    let (close_tx, _) = watch::channel(0u64);
    let mut listener = Some(listener);
    loop {
        match &listener {
            Some(l) => {
                tokio::select! {
                    r = l.accept() => {
                        if let Ok((stream, _)) = r {
                            serve_connection(stream, router.clone(), control.clone(), close_tx.subscribe());
                        }
                    }
                    _ = async { let _ = refusing.wait_for(|r| *r).await; } => {
                        listener = None;
                        close_tx.send_modify(|g| *g += 1);
                    }
                    _ = stop.changed() => break,
                }
            }
            None => {
                tokio::select! {
                    _ = async { let _ = refusing.wait_for(|r| !*r).await; } => {
                        // the same port again (SO_REUSEADDR); retry while the OS has not let it go
                        for _ in 0..200 {
                            if let Ok(l) = TcpListener::bind(addr).await {
                                listener = Some(l);
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        }
    }
    close_tx.send_modify(|g| *g += 1);
}

/// A running stand-in: LeanCloud's REST API over a [`Dataset`] on `127.0.0.1:<port>`.
/// Dropping it stops it.
pub struct StandInServer {
    addr: SocketAddr,
    dataset: Arc<Dataset>,
    control: Arc<Control>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl StandInServer {
    /// Serve `dataset` on a free port of 127.0.0.1, without faults.
    pub async fn start(dataset: Arc<Dataset>) -> std::io::Result<StandInServer> {
        Self::start_with(dataset, Faults::default()).await
    }

    /// Serve `dataset` with these faults.
    pub async fn start_with(dataset: Arc<Dataset>, faults: Faults) -> std::io::Result<StandInServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control {
            rng: Mutex::new(faults.throttle_seed),
            faults: Mutex::new(faults),
            seen: AtomicU64::new(0),
            eligible: AtomicU64::new(0),
            failing: Mutex::new(None),
            refusing: watch::channel(false).0,
            stats: Mutex::new(BTreeMap::new()),
        });
        let app = router(AppState { dataset: dataset.clone(), control: control.clone() });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, addr, app, control.clone(), stop_rx));
        Ok(StandInServer { addr, dataset, control, stop, task: Some(task) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the API host an importer is pointed at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }

    /// The headers of a master-key request: `X-LC-Id` and `X-LC-Key: <masterKey>,master`.
    pub fn master_headers(&self) -> [(&'static str, String); 2] {
        [("X-LC-Id", self.dataset.app_id().to_string()), ("X-LC-Key", format!("{},master", self.dataset.master_key()))]
    }

    /// Replace the faults; the counters behind `throttle_every` and `fail_after` start again.
    pub fn set_faults(&self, faults: Faults) {
        *self.control.rng.lock() = faults.throttle_seed;
        *self.control.faults.lock() = faults;
        self.control.seen.store(0, Ordering::Relaxed);
        self.control.eligible.store(0, Ordering::Relaxed);
    }

    /// Fail every request from now on, until [`StandInServer::heal`].
    pub fn fail(&self, mode: FailMode) {
        self.control.fail_now(mode);
    }

    /// Answer again (a refusing server listens again on the same port); `fail_after` is cleared.
    pub fn heal(&self) {
        self.control.faults.lock().fail_after = None;
        *self.control.failing.lock() = None;
        self.control.refusing.send_replace(false);
    }

    /// Whether requests fail now (set by [`StandInServer::fail`] or reached by `fail_after`).
    pub fn failing(&self) -> Option<FailMode> {
        *self.control.failing.lock()
    }

    pub fn stats(&self) -> RequestStats {
        RequestStats { routes: self.control.stats.lock().clone() }
    }

    pub fn reset_stats(&self) {
        self.control.stats.lock().clear();
    }

    /// Stop listening and close every connection.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for StandInServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}
