//! A minimal LeanEngine-compatible hook server for `ws-fanout --hook`: `_messageReceived` answers
//! `{"result":{}}` (the default flow: deliver as sent), `_ops/metadatas` names it, every other
//! hook is not defined (404, as LeanEngine answers). It measures what calling a hook costs
//! confab, not what a hook's own code costs; `--hook-url` points at a real LeanEngine instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

/// Start it on 127.0.0.1; its base URL and the number of `_messageReceived` calls it answered.
pub async fn minimal() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let calls = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route("/1.1/functions/_ops/metadatas", post(metadatas).get(metadatas))
        .route("/1.1/functions/{name}", post(function))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, calls))
}

async fn metadatas() -> Json<Value> {
    Json(json!({"result": ["_messageReceived"]}))
}

async fn function(State(calls): State<Arc<AtomicU64>>, Path(name): Path<String>, _body: Json<Value>) -> (StatusCode, Json<Value>) {
    if name == "_messageReceived" {
        calls.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::OK, Json(json!({"result": {}})));
    }
    (StatusCode::NOT_FOUND, Json(json!({"code": 1, "error": format!("No such cloud function '{name}'")})))
}
