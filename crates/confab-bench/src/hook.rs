//! The hook server of `ws-fanout --hook`: every message goes through a `_messageReceived` hook
//! that lets it through (`{}`: the default flow), every other hook is not defined.
//!
//! * `minimal`: a hook server in this process answering as LeanEngine does (`_ops/metadatas`
//!   naming the hook, 404 "No such cloud function" for the rest): what calling a hook costs
//!   confab, not what a hook's own code costs;
//! * `leanengine`: LeanCloud's official LeanEngine SDK on Node.js (`interop/hooks/server.js`
//!   with the app's keys), as an app would run it.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use crate::Lc;

pub struct Hook {
    /// `_messageReceived` calls the minimal server answered.
    calls: Option<Arc<AtomicU64>>,
    /// The LeanEngine process (killed when dropped).
    _node: Option<tokio::process::Child>,
}

impl Hook {
    /// Start the hook server and point the in-process bench app's LeanCloud hooks at it.
    pub async fn start(lc: &Lc, kind: &str) -> anyhow::Result<Hook> {
        let (server, _) = lc._server.as_ref().context("--hook needs the in-process server")?;
        let app =
            server.engine.apps().find_app(&confab_engine::model::AppLookup::Name("bench".into())).await.map_err(anyhow::Error::msg)?;
        let keys = app.context("the bench app")?.keys.leancloud.clone();
        let (url, hook) = match kind {
            "minimal" => {
                let (url, calls) = minimal().await?;
                (url, Hook { calls: Some(calls), _node: None })
            }
            _ => {
                let (url, node) = leanengine(&keys).await?;
                (url, Hook { calls: None, _node: Some(node) })
            }
        };
        server.engine.apps().set_app_settings("bench", &[("hooks.leancloud.url", &url)]).await.map_err(anyhow::Error::msg)?;
        println!("_messageReceived hook: {kind} at {url}");
        Ok(hook)
    }

    /// How many calls the hook answered, and the app's counters for it.
    pub async fn report(&self, lc: &Lc) -> anyhow::Result<()> {
        if let Some(calls) = &self.calls {
            println!("_messageReceived calls answered: {}", calls.load(Ordering::Relaxed));
        }
        let (server, _) = lc._server.as_ref().context("in-process server")?;
        // the counters reach the store every few seconds
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        let app =
            server.engine.apps().find_app(&confab_engine::model::AppLookup::Name("bench".into())).await.map_err(anyhow::Error::msg)?;
        let app = app.context("the bench app")?;
        let report = server.engine.app_code().hook_report(&app, 0).await.map_err(anyhow::Error::msg)?;
        for s in report.stats.iter().filter(|s| s.name == "_messageReceived") {
            println!(
                "hook counters: {} calls, {} failed, {} timed out, mean {:.2} ms, max {} ms",
                s.calls,
                s.failures,
                s.timeouts,
                s.total_ms as f64 / s.calls.max(1) as f64,
                s.max_ms
            );
        }
        Ok(())
    }
}

async fn minimal() -> anyhow::Result<(String, Arc<AtomicU64>)> {
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

/// `node interop/hooks/server.js` with the app's keys, defining `_messageReceived` only.
async fn leanengine(keys: &confab_engine::model::LeanCloudKeys) -> anyhow::Result<(String, tokio::process::Child)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop/hooks/server.js");
    let mut node = tokio::process::Command::new("node")
        .arg(script)
        .env("LEANCLOUD_APP_ID", &keys.app_id)
        .env("LEANCLOUD_APP_KEY", &keys.app_key)
        .env("LEANCLOUD_APP_MASTER_KEY", &keys.master_key)
        .env("LEANCLOUD_APP_HOOK_KEY", &keys.hook_key)
        .env("LEANCLOUD_APP_PORT", "0")
        .env("HOOKS_DEFINED", "_messageReceived")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting node interop/hooks/server.js (is Node.js installed, and `npm ci` run in interop/?)")?;
    let mut lines = tokio::io::BufReader::new(node.stdout.take().context("stdout")?).lines();
    let port = loop {
        let line = lines.next_line().await?.context("LeanEngine exited before listening")?;
        if let Some(p) = line.strip_prefix("listening ") {
            break p.trim().to_string();
        }
    };
    Ok((format!("http://127.0.0.1:{port}"), node))
}
