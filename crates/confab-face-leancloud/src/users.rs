//! The part of LeanCloud's `_User` API an IM app needs to get session tokens for
//! `/rtm/clients/sign`: sign up, log in, and "who am I". A user's `objectId` is their client id.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use confab_engine::model::{TokenKind, User};
use confab_engine::time::iso_ms;
use confab_engine::{Error, NewAccount};
use serde_json::{json, Value};

use crate::error::{LcError, LcResult};
use crate::extract::{Body, Client, Fields, LcState};

pub(crate) fn user_json(u: &User, token: Option<&str>) -> Value {
    let mut o = json!({
        "objectId": u.id,
        "username": u.username.clone().unwrap_or_else(|| u.id.clone()),
        "createdAt": iso_ms(u.created_at),
        "updatedAt": iso_ms(u.updated_at),
        "emailVerified": false,
        "mobilePhoneVerified": false,
    });
    if let Some(t) = token {
        o["sessionToken"] = json!(t);
    }
    o
}

fn nonempty(b: &Body, k: &str, code: i64, msg: &str) -> LcResult<String> {
    match b.opt_str(k)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(LcError::new(StatusCode::BAD_REQUEST, code, msg)),
    }
}

pub async fn signup(State(s): State<LcState>, c: Client, b: Body) -> LcResult<impl IntoResponse> {
    let username = nonempty(&b, "username", 200, "Username is missing or empty")?;
    let password = nonempty(&b, "password", 201, "Password is missing or empty")?;
    let user = s.engine.users().create_account(&c.app, NewAccount { username: Some(username), password, ..Default::default() }).await?;
    let token = s.engine.users().issue_token(&c.app, Some(&user.id), TokenKind::LcSession, None).await?;
    let body = json!({"objectId": user.id, "createdAt": iso_ms(user.created_at), "sessionToken": token.token});
    Ok((StatusCode::CREATED, [("location", format!("/1.1/users/{}", user.id))], Json(body)))
}

pub async fn login(State(s): State<LcState>, c: Client, b: Body) -> LcResult<Json<Value>> {
    let username = nonempty(&b, "username", 200, "Username is missing or empty")?;
    let password = nonempty(&b, "password", 201, "Password is missing or empty")?;
    let user = s.engine.users().check_password(&c.app, &username, &password, c.ip.as_deref()).await.map_err(|e| match e {
        Error::BadCredentials => LcError::new(StatusCode::BAD_REQUEST, 210, "The username and password mismatch."),
        e => e.into(),
    })?;
    s.engine.clients().record_login(&c.app, &user.id).await?;
    let token = s.engine.users().issue_token(&c.app, Some(&user.id), TokenKind::LcSession, None).await?;
    Ok(Json(user_json(&user, Some(&token.token))))
}

pub async fn me(State(s): State<LcState>, c: Client, headers: HeaderMap) -> LcResult<Json<Value>> {
    let token = headers
        .get("x-lc-session")
        .or_else(|| headers.get("x-avoscloud-session-token"))
        .and_then(|v| v.to_str().ok())
        .ok_or_else(LcError::invalid_session)?;
    let t = s.engine.users().check_token(&c.app, token, TokenKind::LcSession).await?.ok_or_else(LcError::invalid_session)?;
    let user = s.engine.users().get_user(&c.app, t.user.as_deref().unwrap_or_default()).await?;
    Ok(Json(user_json(&user, Some(token))))
}
