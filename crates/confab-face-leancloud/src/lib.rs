//! The LeanCloud IM face: REST API 1.2 under `/1.2/rtm`, plus the 1.1 calls that share its rate
//! limits, the login-signature calls, and the minimal `_User` API that issues session tokens.
//!
//! Handlers only translate: credentials and parameters in, engine calls, LeanCloud JSON out.
#![forbid(unsafe_code)]

pub mod conversations;
pub mod error;
pub mod extract;
pub mod messages;
pub mod query;
pub mod realtime;
pub mod render;
pub mod sdk_rest;
pub mod service;
pub mod sign;
pub mod users;
pub mod v11;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Extension, Router};
use confab_engine::model::ConvKind;
use confab_engine::Engine;

use crate::error::LcError;
use crate::extract::LcState;

async fn not_found() -> LcError {
    LcError::new(StatusCode::NOT_FOUND, 404, "Not found: no such API.")
}

async fn method_not_allowed() -> LcError {
    LcError::new(StatusCode::METHOD_NOT_ALLOWED, 405, "Method not allowed for this API.")
}

/// Routes every conversation kind shares: the resource, its items and their messages.
fn resource(kind: ConvKind) -> Router<LcState> {
    use crate::conversations as c;
    use crate::messages as m;
    let extra = match kind {
        ConvKind::Normal => Router::new()
            .route("/{id}/members", get(c::members).post(c::add_members).delete(c::remove_members))
            .route("/{id}/mutes", get(c::mutes).post(c::add_mutes).delete(c::remove_mutes)),
        ConvKind::Chatroom => {
            Router::new().route("/{id}/members", get(c::room_members)).route("/{id}/members/online-count", get(c::room_count))
        }
        _ => Router::new()
            .route("/{id}/subscribers", get(service::subscribers).post(service::subscribe))
            .route("/{id}/subscribers/count", get(service::subscriber_count))
            .route("/{id}/subscribers/{client_id}", delete(service::unsubscribe))
            .route("/{id}/subscribers/{client_id}/messages", get(m::subscriber_history))
            .route("/{id}/subscribers/{client_id}/messages/{mid}", delete(m::subscriber_delete))
            .route("/{id}/broadcasts", post(m::to_subscribers)),
    };
    Router::new()
        .route("/", get(c::list).post(c::create))
        .route("/{id}", put(c::update).delete(c::delete))
        .route("/{id}/messages", get(m::history).post(m::send))
        .route("/{id}/messages/{mid}", put(m::edit).delete(m::delete))
        .route("/{id}/messages/{mid}/recall", put(m::recall))
        .merge(extra)
        .layer(Extension(kind))
}

/// The face's routes, ready to merge into the server's router.
pub fn router(engine: Arc<Engine>) -> Router {
    let state = LcState { engine };
    let rtm = Router::new()
        .nest("/conversations", resource(ConvKind::Normal))
        .nest("/chatrooms", resource(ConvKind::Chatroom))
        .nest("/service-conversations", resource(ConvKind::Service))
        .route("/all-conversations", get(conversations::list_all))
        .route("/clients/check-online", post(service::check_online))
        .route("/clients/sign", get(service::sign_v12))
        .route("/clients/{client_id}/unread-count", get(service::unread))
        .route("/clients/{client_id}/kick", post(service::kick))
        .route("/clients/{client_id}/service-conversations", get(service::subscriptions))
        .route("/clients/{client_id}/messages", get(messages::client_history))
        .route("/stats", get(service::stats))
        .route("/broadcasts", get(service::list_broadcasts).post(service::create_broadcast))
        .route("/broadcasts/{mid}", delete(service::delete_broadcast))
        .route("/messages", get(messages::app_history))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let v11 = Router::new()
        .route("/rtm/messages", post(v11::send))
        .route("/rtm/patch/message", post(v11::patch))
        .route("/rtm/broadcast/subscriber", post(v11::to_subscribers))
        .route("/rtm/broadcast", post(v11::broadcast))
        .route("/rtm/sign", post(service::sign_v11))
        .route("/rtm/notifications", get(sdk_rest::notifications))
        .route("/classes/_ConversationMemberInfo", get(sdk_rest::member_info))
        .route("/users", post(users::signup))
        .route("/login", post(users::login))
        .route("/users/me", get(users::me))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new().nest("/1.2/rtm", rtm).nest("/1.1", v11).with_state(state)
}
