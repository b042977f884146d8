//! The Easemob / Agora Chat face: the REST API under `/{org_name}/{app_name}/…`, with each
//! family's envelope, the per-endpoint rate limits (`em.*` buckets) and the usage limits.
#![forbid(unsafe_code)]

pub mod auth;
pub mod callbacks;
pub mod envelope;
pub mod messages;
pub mod msync;
pub mod offline_push;
pub mod reactions;
pub mod rooms;
pub mod session;
pub mod social;
pub mod threads;
pub mod users;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use confab_engine::Engine;

use confab_routes::{Route, Row};

use crate::auth::{EmState, Need};
use crate::envelope::EmError;

/// Easemob's answer for a path under `/{org}/{app}/` that no route claims.
pub fn not_found() -> EmError {
    EmError::new(StatusCode::NOT_FOUND, "service_resource_not_found", "ServiceResourceNotFoundException", "Service resource not found")
}

async fn method_not_allowed() -> EmError {
    EmError::new(StatusCode::METHOD_NOT_ALLOWED, "web_application", "javax.ws.rs.NotAllowedException", "HTTP 405 Method Not Allowed")
}

/// Rows of the route table, one family's: method, path under `/{org}/{app}`, the credential it
/// needs, handler. Path parameters at one position share one name across every family's routes
/// (`username`, `group_id`, `chatroom_id`, …), as the router requires.
pub type Routes = Vec<Row<EmState, Need>>;

/// The face's route table, family by family, under `/{org}/{app}`.
fn rows() -> Routes {
    let families =
        [users::routes(), messages::routes(), social::routes(), rooms::routes(), reactions::routes(), threads::routes(), session::routes()];
    families.into_iter().flatten().map(|r| r.under("/{org}/{app}")).collect()
}

/// The route table as data: method, path, credential.
pub fn routes() -> Vec<Route<Need>> {
    confab_routes::table(&rows())
}

/// Whether an unrouted path is the face's to answer: `/{org}/{app}/…`, at least three segments.
/// (The other faces' prefixes answer their own unknown paths before the server asks.)
pub fn owns(path: &str) -> bool {
    path.split('/').filter(|s| !s.is_empty()).count() >= 3
}

/// The face's routes, ready to merge into the server's router.
pub fn router(engine: Arc<Engine>) -> Router {
    let state = EmState { engine };
    confab_routes::router(rows(), &state, auth::guard).method_not_allowed_fallback(method_not_allowed).with_state(state)
}
