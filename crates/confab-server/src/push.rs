//! Push delivery: confab talks to no vendor push service. Each push task the engine publishes
//! (`Event::Push`) is POSTed as JSON to the app's push webhook (`push_webhook_url`), retried a
//! few times on failure.

use std::sync::Arc;
use std::time::Duration;

use confab_engine::{Engine, Event, PushTask};
use serde_json::json;

/// How often a failed delivery is tried again, and how long one attempt may take.
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The body a webhook receives.
pub fn body(app: i64, task: &PushTask) -> serde_json::Value {
    json!({
        "app": app,
        "taskId": task.id,
        "target": task.target,
        "users": task.users,
        "labels": task.labels,
        "strategy": task.strategy,
        "pushMessage": task.message,
        "createdAt": task.created_at,
    })
}

/// Deliver every push task from the engine's bus until the bus closes.
pub fn start(engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
    let mut events = engine.bus().subscribe();
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Event::Push { app, task } = &*ev {
                let (http, app, task) = (http.clone(), *app, task.clone());
                tokio::spawn(async move { deliver(&http, app, &task).await });
            }
        }
    })
}

async fn deliver(http: &reqwest::Client, app: i64, task: &PushTask) {
    let body = body(app, task);
    for attempt in 1..=ATTEMPTS {
        match http.post(&task.webhook).json(&body).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::warn!(app, task = task.id, status = %r.status(), attempt, "push webhook refused the task"),
            Err(e) => tracing::warn!(app, task = task.id, error = %e, attempt, "push webhook unreachable"),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
}
