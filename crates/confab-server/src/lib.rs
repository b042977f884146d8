//! The confab server: wires the engine to its store, bus and presence, serves every face on one
//! port, and shuts down gracefully.
#![forbid(unsafe_code)]

pub mod backing;
pub mod config;
pub mod cors;
pub mod early_answer;
pub mod hooks;
pub mod lock;
pub mod rtm_router;
mod serve;
pub mod signals;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use confab_engine::ids::{Clock, SystemClock};
use confab_engine::sessions::Sessions;
use confab_engine::{Engine, LocalBus, LocalPresence, Store};
use confab_face_easemob::msync::{self, MsyncGateway, MsyncSettings};
use confab_face_leancloud::realtime::{self, Gateway, GatewaySettings};
use confab_routes::{Open, Route, Row};
use confab_store_sqlite::SqliteStore;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

pub use backing::{Backing, Opener};
pub use config::{Config, Overrides};
pub use signals::Signals;

/// An engine over a backing's store and blobs, making ids as node `node`: with this node's
/// in-process bus, presence and counters, or a cluster's on NATS.
pub fn engine(config: &Config, backing: &Backing, node: u16) -> anyhow::Result<Arc<Engine>> {
    engine_with_clock(config, backing, node, Arc::new(SystemClock))
}

/// `engine`, reading the time from `clock` (tests drive time through it).
pub fn engine_with_clock(config: &Config, backing: &Backing, node: u16, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Engine>> {
    let engine = match backing.runtime() {
        Some(rt) => Engine::new(backing.store(), backing.blobs(), rt.bus(), rt.presence(), node)
            .with_runtime(rt.dedup(), rt.invalidation())
            .with_limiters(rt.rate_limiter(), rt.login_backoff()),
        None => Engine::new(backing.store(), backing.blobs(), Arc::new(LocalBus::default()), Arc::new(LocalPresence::default()), node),
    };
    let engine = engine.with_clock(clock);
    Ok(Arc::new(engine.with_hash_settings(config.hash_settings()).map_err(|e| anyhow::anyhow!("password hashing: {e}"))?))
}

/// `/healthz`: the store answers a lookup by key. Lookups have read connections of their own,
/// so the answer does not wait behind a burst of long queries (a reconnect wave's catch-ups).
async fn healthz(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    match engine.apps().health().await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "error": e.to_string()}))),
    }
}

/// The server's own route table, open: `/healthz`, and LeanCloud's RTM router (`/v1/route`: where
/// the realtime SDK finds this server's WebSocket; an address, no data of the app's).
fn rows() -> Vec<Row<Arc<Engine>, Open>> {
    vec![confab_routes::get("/healthz", Open, healthz), confab_routes::get("/v1/route", Open, rtm_router::route)]
}

/// The routes no face's table holds: `/healthz`, the RTM router and the realtime gateways'
/// WebSocket upgrades (LeanCloud's at `/`, Easemob's msync at `/websocket`), all open (each
/// realtime protocol's login authenticates).
pub fn routes() -> Vec<Route<Open>> {
    let mut r = confab_routes::table(&rows());
    r.extend(realtime::routes());
    r.extend(msync::routes());
    r
}

/// The node's realtime gateways, their sessions in one registry with one dispatcher.
#[derive(Clone)]
pub struct Gateways {
    /// LeanCloud's, at `/` (and any path a WebSocket upgrade comes to).
    pub leancloud: Arc<Gateway>,
    /// Easemob's msync, at `/websocket`.
    pub msync: Arc<MsyncGateway>,
}

impl Gateways {
    pub fn start(engine: Arc<Engine>, settings: GatewaySettings) -> Gateways {
        let sessions = Sessions::start(engine.clone());
        Gateways {
            leancloud: Gateway::start_on(engine.clone(), sessions.clone(), settings),
            msync: MsyncGateway::start_on(engine, sessions, MsyncSettings::default()),
        }
    }

    /// Shutdown: every WebSocket closed (the clients reconnect and catch up).
    pub async fn close_all(&self) {
        tokio::join!(self.leancloud.close_all(), self.msync.close_all());
    }
}

/// A request no route claims: a WebSocket upgrade goes to the realtime gateway (the SDK may
/// connect on any path); otherwise the 404 is in the error format of the face whose paths it
/// looks like — Easemob's for `/{org}/{app}/…`, LeanCloud's for the rest.
async fn unrouted(State(gw): State<Arc<Gateway>>, req: axum::extract::Request) -> axum::response::Response {
    if req.headers().contains_key(axum::http::header::UPGRADE) {
        return realtime::upgrade_request(gw, req).await;
    }
    if confab_face_easemob::owns(req.uri().path()) {
        return confab_face_easemob::not_found().into_response();
    }
    confab_face_leancloud::error::LcError::new(StatusCode::NOT_FOUND, 404, "Not found: no such API.").into_response()
}

/// Every face's routes on one router, with the LeanCloud realtime gateway at `/` (and on any
/// path a WebSocket upgrade comes to), Easemob's msync at `/websocket`, and CORS on every
/// answer (`cors.rs`).
pub fn router(engine: Arc<Engine>, gateways: &Gateways, config: &Config) -> Router {
    let gateway = gateways.leancloud.clone();
    confab_routes::router(rows(), &engine, confab_routes::open)
        .with_state(engine.clone())
        .merge(confab_face_leancloud::router(engine.clone()))
        .merge(confab_face_maxim::router(engine.clone()))
        .merge(confab_face_easemob::router(engine))
        .merge(realtime::router(gateway.clone()))
        .merge(msync::router(gateways.msync.clone()))
        .merge(Router::new().fallback(unrouted).with_state(gateway))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        // inside the early-answer layer, which takes back the body of a preflight it answers
        .layer(cors::layer())
        .layer(axum::middleware::from_fn(early_answer::layer))
        // Log method and path only: query strings can carry session tokens and signatures.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|r: &Request<_>| tracing::info_span!("http", method = %r.method(), path = %r.uri().path())),
        )
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub gateway: Arc<Gateway>,
    /// The Easemob msync gateway (sharing the LeanCloud gateway's session registry).
    pub msync: Arc<MsyncGateway>,
    /// Whether it speaks TLS (https, wss).
    pub tls: bool,
    backing: Backing,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// How long requests in flight and WebSockets may take at shutdown.
    grace: Duration,
    /// Makes the calls to the apps' code kept in the outbox.
    outbox: confab_hooks::OutboxHandle,
}

/// How a server stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished or met the deadline; queued writes are committed.
    Gracefully,
    /// A second signal came while it was shutting down: exit now.
    Forced(signals::Received),
}

impl Server {
    /// Lock the data directory (or, on PostgreSQL, claim the node id), open the store, bind the
    /// listener and start serving.
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        Server::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// `start`, with the engine reading the time from `clock`: a test hook, so that tests of
    /// time rules (expiries, windows, back-offs) move time on instead of sleeping.
    pub async fn start_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Server> {
        let backing = Backing::open(config, Opener::Server).await?;
        let engine = engine_with_clock(config, &backing, backing.node_id(config, None), clock)?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let gateways = Gateways::start(engine.clone(), GatewaySettings::default());
        let outbox = hooks::start(&engine, config.outbox_settings());
        let app = router(engine.clone(), &gateways, config);
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let loaded = RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| format!("loading TLS certificate {} and key {}", cert.display(), key.display()))?;
                Some(tokio_rustls::TlsAcceptor::from(loaded.get_inner()))
            }
            _ => None,
        };
        let is_tls = tls.is_some();
        let (stop, stopped) = watch::channel(false);
        let grace = config.shutdown_grace();
        let task = tokio::spawn(serve::serve(listener, tls, app, stopped, grace));
        let (gateway, msync) = (gateways.leancloud, gateways.msync);
        Ok(Server { addr, engine, gateway, msync, tls: is_tls, backing, stop, task, grace, outbox })
    }

    /// The store under the engine.
    pub fn store(&self) -> Arc<dyn Store> {
        self.backing.store()
    }

    /// The embedded store, when the server runs on it (tests and measurements read its work
    /// counters).
    pub fn sqlite(&self) -> Option<&Arc<SqliteStore>> {
        self.backing.sqlite()
    }

    /// Stop accepting; close the WebSockets (1001, going away); let requests in flight finish
    /// until the deadline (`shutdown_grace_secs`), then drop what is left; commit queued writes.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let websockets = tokio::time::timeout(self.grace, async { tokio::join!(self.gateway.close_all(), self.msync.close_all()) });
        let (served, websockets) = tokio::join!(self.task, websockets);
        served?;
        if websockets.is_err() {
            tracing::warn!("WebSockets still open at the shutdown deadline are dropped");
        }
        // hook calls in flight finish (or are made again after the restart: they are kept)
        self.outbox.stop(self.grace).await;
        self.backing.close().await;
        Ok(())
    }

    /// Serve until SIGINT or SIGTERM, then shut down gracefully; a second signal during the
    /// shutdown ends it at once (`Stopped::Forced`: the caller exits without waiting).
    pub async fn run_until_signal(self, mut signals: Signals) -> anyhow::Result<Stopped> {
        let first = signals.next().await;
        tracing::info!(
            signal = first.name(),
            grace_secs = self.grace.as_secs(),
            "shutting down: no new connections, requests in flight and WebSockets until the deadline; a second signal exits at once"
        );
        tokio::select! {
            r = self.shutdown() => r.map(|()| Stopped::Gracefully),
            second = signals.next() => {
                tracing::warn!(signal = second.name(), "second signal: exiting at once");
                Ok(Stopped::Forced(second))
            }
        }
    }
}
