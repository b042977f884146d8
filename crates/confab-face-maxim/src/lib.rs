//! The MaxIM (Lanying IM) face: the server API's `/message/*` calls, with the `/token/*`,
//! `/user/*` and `/group/*` calls they need. Every answer is HTTP 200 with `{code, message, data}`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod envelope;
pub mod groups;
pub mod messages;
pub mod render;
pub mod users;
pub mod webhook;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use confab_engine::Engine;
use confab_routes::{delete, get, post, put, Route, Row};

use crate::auth::{MxState, Need};
use crate::envelope::MxError;

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, MxError::new(404, "no such API")).into_response()
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, MxError::new(405, "method not allowed for this API")).into_response()
}

/// The face's route table: every route and the credential it needs (maxim-rest.md §2: the SDK
/// lists `token/*` and `user/register` as needing no token; everything else needs one).
fn rows() -> Vec<Row<MxState, Need>> {
    use Need::{Admin, AppId, Token};
    vec![
        post("/message/send", Token, messages::send),
        put("/message/send", Token, messages::send),
        post("/message/notify", Token, messages::notify),
        put("/message/notify", Token, messages::notify),
        post("/message/recall", Token, messages::recall),
        put("/message/recall", Token, messages::recall),
        get("/message/ack", Token, messages::ack),
        get("/message/unread", Token, messages::unread),
        get("/message/conversation", Token, messages::history),
        delete("/message/conversation", Token, messages::delete),
        post("/token/user", AppId, users::token_by_name),
        post("/token/id", AppId, users::token_by_id),
        post("/user/register/v2", AppId, users::register),
        post("/user/register/batch", Admin, users::register_batch),
        get("/user/profile", Token, users::profile),
        post("/group/create", Token, groups::create),
        post("/group/invite", Token, groups::invite),
        post("/group/apply", Token, groups::apply),
        get("/group/member_list", Token, groups::member_list),
        get("/group/info", Token, groups::get_info),
        post("/group/leave", Token, groups::leave),
        delete("/group/leave", Token, groups::leave),
        post("/group/kick", Token, groups::kick),
        delete("/group/kick", Token, groups::kick),
        post("/group/destroy", Token, groups::destroy),
        delete("/group/destroy", Token, groups::destroy),
    ]
}

/// The route table as data: method, path, credential.
pub fn routes() -> Vec<Route<Need>> {
    confab_routes::table(&rows())
}

/// The path prefixes the face answers (an unknown path under one is MaxIM's 404).
pub const PREFIXES: [&str; 4] = ["/message", "/token", "/user", "/group"];

/// The face's routes, ready to merge into the server's router.
pub fn router(engine: Arc<Engine>) -> Router {
    let state = MxState { engine };
    let r = confab_routes::router(rows(), &state, auth::guard);
    confab_routes::answer_under(r, &PREFIXES, not_found).method_not_allowed_fallback(method_not_allowed).with_state(state)
}
