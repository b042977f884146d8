//! The MaxIM (Lanying IM) face: the server API's `/message/*` calls, with the `/token/*`,
//! `/user/*` and `/group/*` calls they need. Every answer is HTTP 200 with `{code, message, data}`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod envelope;
pub mod groups;
pub mod messages;
pub mod render;
pub mod users;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use confab_engine::Engine;

use crate::auth::MxState;
use crate::envelope::MxError;

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, MxError::new(404, "no such API")).into_response()
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, MxError::new(405, "method not allowed for this API")).into_response()
}

/// The face's routes, ready to merge into the server's router.
pub fn router(engine: Arc<Engine>) -> Router {
    let state = MxState { engine };
    let message = Router::new()
        .route("/send", post(messages::send).put(messages::send))
        .route("/notify", post(messages::notify).put(messages::notify))
        .route("/recall", post(messages::recall).put(messages::recall))
        .route("/ack", get(messages::ack))
        .route("/unread", get(messages::unread))
        .route("/conversation", get(messages::history).delete(messages::delete))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let token = Router::new()
        .route("/user", post(users::token_by_name))
        .route("/id", post(users::token_by_id))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let user = Router::new()
        .route("/register/v2", post(users::register))
        .route("/register/batch", post(users::register_batch))
        .route("/profile", get(users::profile))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let group = Router::new()
        .route("/create", post(groups::create))
        .route("/invite", post(groups::invite))
        .route("/apply", post(groups::apply))
        .route("/member_list", get(groups::member_list))
        .route("/info", get(groups::get_info))
        .route("/leave", post(groups::leave).delete(groups::leave))
        .route("/kick", post(groups::kick).delete(groups::kick))
        .route("/destroy", post(groups::destroy).delete(groups::destroy))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new().nest("/message", message).nest("/token", token).nest("/user", user).nest("/group", group).with_state(state)
}
