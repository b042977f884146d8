//! The LeanCloud IM face: REST API 1.2 under `/1.2/rtm`, plus the 1.1 calls that share its rate
//! limits, the login-signature calls, and the minimal `_User` API that issues session tokens.
//!
//! Handlers only translate: credentials and parameters in, engine calls, LeanCloud JSON out.
#![forbid(unsafe_code)]

pub mod conversations;
pub mod error;
pub mod extract;
pub mod hooks;
pub mod messages;
pub mod query;
pub mod realtime;
pub mod render;
pub mod sdk_rest;
pub mod service;
pub mod service_hook;
pub mod sign;
pub mod users;
pub mod v11;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::{Extension, Router};
use confab_engine::model::ConvKind;
use confab_engine::Engine;
use confab_routes::{delete, get, post, put, Route, Row};

use crate::error::LcError;
use crate::extract::{LcState, Need};

async fn not_found() -> LcError {
    LcError::new(StatusCode::NOT_FOUND, 404, "Not found: no such API.")
}

async fn method_not_allowed() -> LcError {
    LcError::new(StatusCode::METHOD_NOT_ALLOWED, 405, "Method not allowed for this API.")
}

/// Routes every conversation kind shares: the resource, its items and their messages.
fn resource(kind: ConvKind) -> Vec<Row<LcState, Need>> {
    use crate::conversations as c;
    use crate::messages as m;
    use Need::{Master, MasterOrSignature};
    let mut rows = vec![
        // the collection itself: `/1.2/rtm/conversations`, no trailing slash
        get("", Master, c::list),
        post("", Master, c::create),
        put("/{id}", Master, c::update),
        delete("/{id}", Master, c::delete),
        get("/{id}/messages", MasterOrSignature, m::history),
        post("/{id}/messages", Master, m::send),
        put("/{id}/messages/{mid}", Master, m::edit),
        delete("/{id}/messages/{mid}", Master, m::delete),
        put("/{id}/messages/{mid}/recall", Master, m::recall),
    ];
    rows.extend(match kind {
        ConvKind::Normal => vec![
            get("/{id}/members", Master, c::members),
            post("/{id}/members", Master, c::add_members),
            delete("/{id}/members", Master, c::remove_members),
            get("/{id}/mutes", Master, c::mutes),
            post("/{id}/mutes", Master, c::add_mutes),
            delete("/{id}/mutes", Master, c::remove_mutes),
        ],
        ConvKind::Chatroom => vec![get("/{id}/members", Master, c::room_members), get("/{id}/members/online-count", Master, c::room_count)],
        _ => vec![
            get("/{id}/subscribers", Master, service::subscribers),
            post("/{id}/subscribers", Master, service::subscribe),
            get("/{id}/subscribers/count", Master, service::subscriber_count),
            delete("/{id}/subscribers/{client_id}", Master, service::unsubscribe),
            get("/{id}/subscribers/{client_id}/messages", Master, m::subscriber_history),
            delete("/{id}/subscribers/{client_id}/messages/{mid}", Master, m::subscriber_delete),
            post("/{id}/broadcasts", Master, m::to_subscribers),
        ],
    });
    let prefix = match kind {
        ConvKind::Normal => "/1.2/rtm/conversations",
        ConvKind::Chatroom => "/1.2/rtm/chatrooms",
        _ => "/1.2/rtm/service-conversations",
    };
    rows.into_iter().map(|r| r.map(|h| h.layer(Extension(kind))).under(prefix)).collect()
}

/// The face's route table: every route and the credential it needs (leancloud-rest-conventions.md
/// §1: the `rtm` calls need the master key, but the unread count and the login signature, which
/// take the app key; the `_User` calls take the app key and, where they name a user, a session).
fn rows() -> Vec<Row<LcState, Need>> {
    use Need::{AppKey, ImSession, Master, UserSession};
    let mut rows = [ConvKind::Normal, ConvKind::Chatroom, ConvKind::Service].into_iter().flat_map(resource).collect::<Vec<_>>();
    let rtm = vec![
        get("/all-conversations", Master, conversations::list_all),
        post("/clients/check-online", Master, service::check_online),
        get("/clients/sign", UserSession, service::sign_v12),
        get("/clients/{client_id}/unread-count", AppKey, service::unread),
        post("/clients/{client_id}/kick", Master, service::kick),
        get("/clients/{client_id}/service-conversations", Master, service::subscriptions),
        get("/clients/{client_id}/messages", Master, messages::client_history),
        get("/stats", Master, service::stats),
        get("/broadcasts", Master, service::list_broadcasts),
        post("/broadcasts", Master, service::create_broadcast),
        delete("/broadcasts/{mid}", Master, service::delete_broadcast),
        get("/messages", Master, messages::app_history),
    ];
    rows.extend(rtm.into_iter().map(|r| r.under("/1.2/rtm")));
    let v11 = vec![
        post("/rtm/messages", Master, v11::send),
        post("/rtm/patch/message", Master, v11::patch),
        post("/rtm/broadcast/subscriber", Master, v11::to_subscribers),
        post("/rtm/broadcast", Master, v11::broadcast),
        post("/rtm/sign", UserSession, service::sign_v11),
        get("/rtm/notifications", ImSession, sdk_rest::notifications),
        get("/classes/_ConversationMemberInfo", ImSession, sdk_rest::member_info),
        post("/users", AppKey, users::signup),
        post("/login", AppKey, users::login),
        get("/users/me", UserSession, users::me),
    ];
    rows.extend(v11.into_iter().map(|r| r.under("/1.1")));
    rows
}

/// The route table as data: method, path, credential.
pub fn routes() -> Vec<Route<Need>> {
    confab_routes::table(&rows())
}

/// The face's routes, ready to merge into the server's router. An unknown path under
/// `/1.2/rtm/` or `/1.1/` is LeanCloud's 404.
pub fn router(engine: Arc<Engine>) -> Router {
    let state = LcState { engine };
    let r = confab_routes::router(rows(), &state, extract::guard);
    confab_routes::answer_under(r, &["/1.2/rtm", "/1.1"], not_found).method_not_allowed_fallback(method_not_allowed).with_state(state)
}
