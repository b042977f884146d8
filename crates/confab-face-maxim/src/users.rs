//! `/token/user`, `/token/id`, `/user/register/v2`, `/user/register/batch`, `/user/profile`.

use axum::extract::State;
use confab_engine::model::{App, TokenKind, User};
use confab_engine::{Error, NewAccount};
use serde_json::{json, Value};

use crate::auth::{AppOnly, Body, Caller, Fields, MxState};
use crate::envelope::{code, Data, MxError, MxResult, Reply};
use crate::render;

/// User tokens live this long (the answer's `expire` is when, in ms).
pub const TOKEN_TTL_SECS: i64 = 7 * 86_400;
/// Most users one batch registration may create.
pub const BATCH_MAX: usize = 100;

/// MaxIM's username rule: letters, digits, `_` and CJK characters, not only digits, not
/// starting with `mta` or `maxim`, at most 64 characters.
pub fn check_username(name: &str) -> MxResult<()> {
    let cjk = |c: char| ('\u{4e00}'..='\u{9fa5}').contains(&c);
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || cjk(c))
        && name.chars().any(|c| !c.is_ascii_digit())
        && !name.starts_with("mta")
        && !name.starts_with("maxim");
    if ok {
        Ok(())
    } else {
        Err(MxError::param(format!(
            "invalid username '{}': letters, digits, _ or CJK, not only digits, not starting with mta or maxim",
            name.chars().take(80).collect::<String>()
        )))
    }
}

async fn register_one(s: &MxState, app: &App, b: &serde_json::Map<String, Value>) -> MxResult<User> {
    let username = b.req_str("username")?;
    check_username(&username)?;
    let password = b.req_str("password")?;
    Ok(s.engine.users().create_account(app, NewAccount { id: Some(username), username: None, password, nickname: None }).await?)
}

/// `POST /user/register/v2 {username, password}`: no token needed.
pub async fn register(State(s): State<MxState>, AppOnly(app): AppOnly, Body(b): Body) -> Reply {
    let user = register_one(&s, &app, &b).await?;
    Ok(Data::of(render::settings(&user)))
}

/// `POST /user/register/batch {list: [{username, password}]}`: one result per entry. The admin
/// token only (the route table says so): one call makes up to 100 accounts.
pub async fn register_batch(State(s): State<MxState>, c: Caller, Body(b): Body) -> Reply {
    let app = &c.app;
    let list = match b.get("list") {
        Some(Value::Array(l)) => l.clone(),
        _ => return Err(MxError::param("list must be a list of {username, password}")),
    };
    if list.len() > BATCH_MAX {
        return Err(MxError::param(format!("at most {BATCH_MAX} users at once")));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let name = item.get("username").and_then(Value::as_str).unwrap_or_default().to_string();
        let r = match item.as_object() {
            Some(o) => register_one(&s, app, o).await,
            None => Err(MxError::param("each entry is {username, password}")),
        };
        out.push(match r {
            Ok(u) => json!({"user_id": u.num, "username": name, "success": true, "reason": null}),
            Err(e) => json!({"user_id": null, "username": name, "success": false, "reason": e.message}),
        });
    }
    Ok(Data::of(Value::Array(out)))
}

async fn token_for(s: &MxState, app: &App, user: &User) -> Reply {
    let t = s.engine.users().issue_token(app, Some(&user.id), TokenKind::MaximUser, Some(TOKEN_TTL_SECS)).await?;
    s.engine.clients().record_login(app, &user.id).await?;
    Ok(Data::of(json!({"token": t.token, "user_id": user.num, "expire": t.expires_at})))
}

/// The client's address, when the server knows it (the login back-off counts per address).
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

fn addr(peer: &Peer) -> Option<String> {
    peer.as_ref().map(|p| p.0 .0.ip().to_string())
}

fn login_error(e: Error) -> MxError {
    match e {
        Error::BadCredentials => MxError::new(code::BAD_PARAM, "wrong password"),
        e => e.into(),
    }
}

/// `POST /token/user {name, password}`.
pub async fn token_by_name(State(s): State<MxState>, AppOnly(app): AppOnly, peer: Peer, Body(b): Body) -> Reply {
    let name = b.req_str("name")?;
    let user = s.engine.users().check_password(&app, &name, &b.req_str("password")?, addr(&peer).as_deref()).await.map_err(login_error)?;
    token_for(&s, &app, &user).await
}

/// `POST /token/id {user_id, password}`.
pub async fn token_by_id(State(s): State<MxState>, AppOnly(app): AppOnly, peer: Peer, Body(b): Body) -> Reply {
    let user = s.engine.users().user_by_num(&app, b.req_i64("user_id")?).await?;
    let user =
        s.engine.users().check_password(&app, &user.id, &b.req_str("password")?, addr(&peer).as_deref()).await.map_err(login_error)?;
    token_for(&s, &app, &user).await
}

/// `GET /user/profile`: the acting user's profile.
pub async fn profile(c: Caller) -> Reply {
    Ok(Data::of(render::profile(c.me()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "a_1", "张三", "_x", "1a"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "123", "maxim_bob", "mta1", "a b", "a-b", &"x".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }
}
