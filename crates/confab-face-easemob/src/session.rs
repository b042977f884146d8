//! The SDK's session calls over REST (specs/easemob-msync.md §12.2): the user's devices online
//! (`getSelfIdsOnOtherPlatform`) and a token's expiry (`renewToken`).

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use confab_engine::limits::bucket;
use confab_engine::model::TokenKind;
use confab_routes::get;
use serde_json::{json, Value};

use crate::auth::{bearer, Caller, EmState, Need, P};
use crate::envelope::{EmError, Reply};
use crate::users::user_in_path;
use crate::Routes;

pub fn routes() -> Routes {
    vec![
        get("/users/{username}/resources", Need::AppOrUser, resources),
        get("/sdk/users/{username}/token/expires", Need::AppOrUser, token_expires),
    ]
}

/// `GET /users/{username}/resources`: the user's devices online now, `data: [{res}]` (the msync
/// resource; a session of another face by its device or tag). The SDK leaves out its own.
async fn resources(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USERS_STATUS).await?;
    let mut res: Vec<String> = s
        .engine
        .clients()
        .sessions(&c.app, &user.id)
        .await?
        .into_iter()
        .map(|x| x.device.or(x.tag).unwrap_or_else(|| format!("session_{}_{}", x.node, x.session)))
        .collect();
    res.sort();
    res.dedup();
    let data: Vec<Value> = res.into_iter().map(|r| json!({"res": r})).collect();
    Ok(c.ctx.envelope(&c.app, "get", "/users/resources").with("entities", json!([])).with("data", json!(data)))
}

/// `GET /sdk/users/{username}/token/expires` with the token as Bearer: `expire_timestamp`, when
/// that token expires (Unix ms). The SDK asks it of a new token (`renewToken`).
async fn token_expires(State(s): State<EmState>, c: Caller, p: P, parts: Parts) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_TOKEN).await?;
    let token = bearer(&parts.headers);
    let kind = if c.is_admin() { TokenKind::EasemobApp } else { TokenKind::EasemobUser };
    let expires = match s.engine.users().check_token(&c.app, token, kind).await? {
        Some(t) => t.expires_at,
        // a dynamic token (`dt-…`) carries its own end
        None => dynamic_end(token),
    };
    let Some(at) = expires else {
        return Err(EmError::new(StatusCode::BAD_REQUEST, "illegal_argument", "java.lang.IllegalArgumentException", "token never expires"));
    };
    Ok(c.ctx.envelope(&c.app, "get", "/sdk/users/token/expires").with("expire_timestamp", json!(at)))
}

/// The end of a dynamic token (`curTime + ttl`, seconds, as Unix ms); the guard checked it.
fn dynamic_end(token: &str) -> Option<i64> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(token).ok())?;
    let v: Value = serde_json::from_str(String::from_utf8(raw).ok()?.strip_prefix("dt-")?).ok()?;
    let n = |k: &str| v.get(k).and_then(|x| x.as_i64().or_else(|| x.as_str()?.parse().ok()));
    Some((n("curTime")? + n("ttl")?) * 1000)
}
