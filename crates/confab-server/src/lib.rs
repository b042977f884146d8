//! The confab server: wires the engine to its store, bus and presence, serves every face on one
//! port, and shuts down gracefully.
#![forbid(unsafe_code)]

pub mod config;
pub mod push;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use confab_engine::model::AppLookup;
use confab_engine::{Engine, LocalBus, LocalPresence, Store};
use confab_face_leancloud::realtime::{self, Gateway, GatewaySettings};
use confab_store_sqlite::SqliteStore;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

pub use config::{Config, Overrides};

/// Open the configured store.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let dir = config.sqlite_dir();
    Ok(Arc::new(SqliteStore::open(&dir).with_context(|| format!("opening the store in {}", dir.display()))?))
}

/// An engine over the configured store, with this node's in-process bus and presence.
pub fn engine(config: &Config, store: Arc<dyn Store>) -> Arc<Engine> {
    Arc::new(Engine::new(store, Arc::new(LocalBus::default()), Arc::new(LocalPresence::default()), config.node_id))
}

/// `/healthz`: the store answers a lookup by key. Lookups have read connections of their own,
/// so the answer does not wait behind a burst of long queries (a reconnect wave's catch-ups).
async fn healthz(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    match engine.store().find_app(&AppLookup::Name(String::new())).await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "error": e.to_string()}))),
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

/// Every face's routes on one router, with the realtime gateway at `/` (and on any path a
/// WebSocket upgrade comes to).
pub fn router(engine: Arc<Engine>, gateway: Arc<Gateway>, config: &Config) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(engine.clone())
        .merge(confab_face_leancloud::router(engine.clone()))
        .merge(confab_face_maxim::router(engine.clone()))
        .merge(confab_face_easemob::router(engine))
        .merge(realtime::router(gateway.clone()))
        .merge(Router::new().fallback(unrouted).with_state(gateway))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
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
    /// Whether it speaks TLS (https, wss).
    pub tls: bool,
    store: Arc<SqliteStore>,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

/// How long in-flight requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

impl Server {
    /// Open the store, bind the listener and start serving.
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        let store = open_store(config)?;
        let engine = engine(config, store.clone());
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let gateway = Gateway::start(engine.clone(), GatewaySettings::default());
        push::start(engine.clone());
        let app = router(engine.clone(), gateway.clone(), config).into_make_service_with_connect_info::<SocketAddr>();
        let (stop, mut stopped) = watch::channel(false);
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                Some(
                    RustlsConfig::from_pem_file(cert, key)
                        .await
                        .with_context(|| format!("loading TLS certificate {} and key {}", cert.display(), key.display()))?,
                )
            }
            _ => None,
        };
        let is_tls = tls.is_some();
        let task = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            }),
            Some(tls) => {
                let handle = axum_server::Handle::new();
                let h = handle.clone();
                tokio::spawn(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                    h.graceful_shutdown(Some(DRAIN));
                });
                let std_listener = listener.into_std()?;
                tokio::spawn(async move { axum_server::from_tcp_rustls(std_listener, tls)?.handle(handle).serve(app).await })
            }
        };
        Ok(Server { addr, engine, gateway, tls: is_tls, store, stop, task })
    }

    /// The store under the engine (tests and measurements read its work counters).
    pub fn store(&self) -> &Arc<SqliteStore> {
        &self.store
    }

    /// Stop accepting, finish in-flight requests, commit queued writes.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await??;
        let store = self.store;
        tokio::task::spawn_blocking(move || store.close()).await?;
        Ok(())
    }

    /// Serve until the task ends (it only ends on shutdown or a fatal error).
    pub async fn wait_for_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
