//! `/token` and the user accounts family (`/users…`).

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::limits::bucket;
use confab_engine::model::{App, TokenKind, User};
use confab_engine::{Engine, NewAccount, Quota, Quotas};
use confab_routes::{get, post, put};
use serde_json::{json, Value};

use crate::auth::Need;
use crate::auth::{uuid, Admin, AppOf, Body, Caller, EmState, Params, P};
use crate::envelope::{Answer, EmError, EmResult, Reply};
use crate::Routes;

/// Token lifetime when the request names none: 60 days (the docs' default); `ttl: 0` never ends.
pub const TOKEN_TTL_DEFAULT: i64 = 60 * 86_400;
/// Most users one batch registration may create.
pub const REGISTER_BATCH_MAX: usize = 60;
/// Most names one batch status query may hold.
pub const STATUS_BATCH_MAX: usize = 100;

/// Easemob user ids are case-insensitive: stored lowercase. 1–64 bytes of `a-z 0-9 _ - .`.
pub fn username(raw: &str) -> EmResult<String> {
    let u = raw.trim().to_lowercase();
    if u.len() > 64 {
        return Err(EmError::illegal("USERNAME_TOO_LONG"));
    }
    if u.is_empty() || !u.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c)) {
        return Err(EmError::illegal(format!("username [{raw}] is not legal")));
    }
    Ok(u)
}

/// A user entity: `{uuid, type, created, modified, username, activated, nickname, …}`.
pub fn entity(u: &User) -> Value {
    let mut o = json!({
        "uuid": uuid(u.num),
        "type": "user",
        "created": u.created_at,
        "modified": u.updated_at,
        "username": u.id,
        "activated": !u.disabled,
    });
    if let Some(n) = &u.nickname {
        o["nickname"] = json!(n);
    }
    for (k, v) in &u.attributes {
        if k.starts_with("notification_") || k == "notifier_name" || k == "pushInfo" {
            o[k] = v.clone();
        }
    }
    o
}

fn str_field<'a>(o: &'a serde_json::Map<String, Value>, k: &str) -> EmResult<Option<&'a str>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EmError::illegal(format!("{k} must be a string"))),
    }
}

/// The user a path names (lowercased); 404 `service_resource_not_found` if there is none.
pub async fn user_in_path(engine: &Engine, app: &App, p: &P, key: &str) -> EmResult<User> {
    let name = username(p.get(key)?).map_err(|_| EmError::user_not_found())?;
    engine.users().get_user(app, &name).await.map_err(|_| EmError::user_not_found())
}

pub fn routes() -> Routes {
    use Need::{App, AppOrUser, AppUnlessOpen};
    vec![
        post("/token", Need::None, token),
        post("/users", AppUnlessOpen, register),
        get("/users", App, list),
        confab_routes::delete("/users", App, delete_batch),
        post("/users/batch/status", App, status_batch),
        get("/users/{username}", App, get_one),
        put("/users/{username}", AppOrUser, update),
        confab_routes::delete("/users/{username}", App, delete),
        post("/users/{username}/password", AppOrUser, password),
        put("/users/{username}/password", AppOrUser, password),
        get("/users/{username}/status", App, status),
        get("/users/{username}/offline_msg_count", App, offline_count),
        get("/users/{username}/offline_msg_status/{msg_id}", App, offline_status),
        post("/users/{username}/deactivate", App, deactivate),
        post("/users/{username}/activate", App, activate),
        get("/users/{username}/disconnect", App, disconnect),
    ]
}

// ---------------------------------------------------------------------- /token

fn ttl_of(o: &serde_json::Map<String, Value>) -> EmResult<Option<i64>> {
    let ttl = match o.get("ttl") {
        None | Some(Value::Null) => TOKEN_TTL_DEFAULT,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| EmError::illegal("ttl must be an integer"))?,
        Some(Value::String(s)) => s.trim().parse().map_err(|_| EmError::illegal("ttl must be an integer"))?,
        Some(_) => return Err(EmError::illegal("ttl must be an integer")),
    };
    if ttl < 0 {
        return Err(EmError::illegal("ttl must not be negative"));
    }
    Ok((ttl > 0).then_some(ttl))
}

fn grant_error(status: StatusCode, description: &str) -> EmError {
    EmError::new(status, "invalid_grant", "EasemobSecurityException", description)
}

/// `POST /token`: `client_credentials` (the app token), `password`, or `inherit` (with the app
/// token; `autoCreateUser` registers a missing user without a password).
pub async fn token(
    State(s): State<EmState>,
    AppOf { app, .. }: AppOf,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Body(b): Body,
) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_TOKEN).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let ttl = ttl_of(o)?;
    let expires_in = ttl.unwrap_or(0);
    match str_field(o, "grant_type")? {
        Some("client_credentials") => {
            let id = str_field(o, "client_id")?.ok_or_else(|| EmError::illegal("client_id must be provided."))?;
            let secret = str_field(o, "client_secret")?.ok_or_else(|| EmError::illegal("client_secret must be provided"))?;
            let k = &app.keys.easemob;
            if !crate::auth::ct_eq(id, &k.client_id) {
                return Err(grant_error(StatusCode::BAD_REQUEST, "client_id does not match"));
            }
            if !crate::auth::ct_eq(secret, &k.client_secret) {
                return Err(grant_error(StatusCode::BAD_REQUEST, "client_secret does not match"));
            }
            let t = s.engine.users().issue_token(&app, None, TokenKind::EasemobApp, ttl).await?;
            Ok(Answer::bare(json!({"access_token": t.token, "expires_in": expires_in, "application": uuid(app.id)})))
        }
        Some("password") => {
            let name = username(str_field(o, "username")?.ok_or_else(|| EmError::illegal("username must be provided"))?)?;
            let password = str_field(o, "password")?.ok_or_else(|| EmError::illegal("password must be provided"))?;
            let user = match s.engine.users().check_password(&app, &name, password, peer.map(|p| p.0 .0.ip().to_string()).as_deref()).await
            {
                Ok(u) => u,
                Err(confab_engine::Error::UserNotFound(_)) => return Err(grant_error(StatusCode::NOT_FOUND, "user not found")),
                Err(confab_engine::Error::Forbidden(_)) => return Err(grant_error(StatusCode::BAD_REQUEST, "user not activated")),
                Err(confab_engine::Error::BadCredentials) => return Err(grant_error(StatusCode::BAD_REQUEST, "invalid password")),
                Err(e) => return Err(e.into()),
            };
            user_token(&s, &app, &user, ttl, expires_in).await
        }
        Some("inherit") => {
            // the app token authorises this grant
            if !crate::auth::has_app_token(&s, &app, &headers).await? {
                return Err(EmError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "EasemobSecurityException",
                    "Unable to authenticate (OAuth)",
                ));
            }
            let name = username(str_field(o, "username")?.ok_or_else(|| EmError::illegal("username must be provided"))?)?;
            let auto = o.get("autoCreateUser").and_then(Value::as_bool).unwrap_or(false);
            let user = match s.engine.users().get_user(&app, &name).await {
                Ok(u) => u,
                Err(_) if auto => {
                    check_user_quota(&s, &app, 1).await?;
                    s.engine.users().ensure_user_counted(&app, &name).await?;
                    s.engine.users().get_user(&app, &name).await?
                }
                Err(_) => return Err(grant_error(StatusCode::NOT_FOUND, "user not found")),
            };
            if user.disabled {
                return Err(grant_error(StatusCode::BAD_REQUEST, "user not activated"));
            }
            user_token(&s, &app, &user, ttl, expires_in).await
        }
        _ => Err(EmError::illegal("grant_type must be client_credentials, password or inherit")),
    }
}

async fn user_token(s: &EmState, app: &App, user: &User, ttl: Option<i64>, expires_in: i64) -> Reply {
    let t = s.engine.users().issue_token(app, Some(&user.id), TokenKind::EasemobUser, ttl).await?;
    s.engine.clients().record_login(app, &user.id).await?;
    Ok(Answer::bare(json!({"access_token": t.token, "expires_in": expires_in, "user": entity(user)})))
}

// ---------------------------------------------------------------------- registration

/// The users quota looked at before anything else (a batch is refused as a whole); each
/// creation is counted again by the store as it inserts.
async fn check_user_quota(s: &EmState, app: &App, adding: i64) -> EmResult<()> {
    Ok(s.engine.quotas().check_quota(app, &Quota::Users, adding).await?)
}

/// One registration: `{username, password, nickname}`.
async fn register_one(s: &EmState, app: &App, o: &serde_json::Map<String, Value>) -> EmResult<User> {
    let name = username(str_field(o, "username")?.ok_or_else(|| EmError::illegal("username must be provided"))?)?;
    let password = str_field(o, "password")?.filter(|p| !p.is_empty()).ok_or_else(|| EmError::illegal("password or pin must provided"))?;
    if password.chars().count() > 64 {
        return Err(EmError::illegal("PASSWORD_TOO_LONG"));
    }
    let nickname = str_field(o, "nickname")?.map(str::to_string);
    if nickname.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(EmError::illegal("NICKNAME_TOO_LONG"));
    }
    let new = NewAccount { id: Some(name), username: None, password: password.to_string(), nickname };
    Ok(s.engine.users().create_account_with(app, new, Quotas::Counted).await?)
}

/// `POST /users`: one user (an object) or up to 60 (an array; users that exist are reported in
/// `data`, the others created). Needs the app token unless the app opened registration.
pub async fn register(State(s): State<EmState>, AppOf { app, ctx }: AppOf, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_WRITE).await?;
    let env = ctx.envelope(&app, "post", "/users");
    match &b {
        Value::Object(o) => {
            check_user_quota(&s, &app, 1).await?;
            let u = register_one(&s, &app, o).await?;
            Ok(env.with("entities", json!([entity(&u)])))
        }
        Value::Array(items) => {
            if items.len() > REGISTER_BATCH_MAX {
                return Err(EmError::illegal(format!(
                    "Request body array size[{}] had almost reached or been greater than the upper range value[{REGISTER_BATCH_MAX}]",
                    items.len()
                )));
            }
            // every entry is checked before anyone is created
            let mut seen = std::collections::HashMap::new();
            for item in items {
                let o = item.as_object().ok_or_else(EmError::bad_body)?;
                let name = username(str_field(o, "username")?.ok_or_else(|| EmError::illegal("username must be provided"))?)?;
                let pw = str_field(o, "password")?.unwrap_or_default().to_string();
                if let Some(prev) = seen.insert(name.clone(), pw.clone()) {
                    if prev != pw {
                        return Err(EmError::new(
                            StatusCode::BAD_REQUEST,
                            "duplicate_unique_property_exists",
                            "DuplicateUniquePropertyExistsException",
                            format!("the same user {name} has a different password"),
                        ));
                    }
                }
            }
            check_user_quota(&s, &app, seen.len() as i64).await?;
            let (mut created, mut failed) = (Vec::new(), Vec::new());
            let mut done = std::collections::HashSet::new();
            for item in items {
                let o = item.as_object().ok_or_else(EmError::bad_body)?;
                let name = username(str_field(o, "username")?.unwrap_or_default())?;
                if !done.insert(name.clone()) {
                    continue;
                }
                match register_one(&s, &app, o).await {
                    Ok(u) => created.push(entity(&u)),
                    Err(e) if e.error == "duplicate_unique_property_exists" => {
                        failed.push(json!({"username": name, "registerUserFailReason": format!("the {name} already exists")}))
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(env.with("entities", json!(created)).with("data", json!(failed)))
        }
        _ => Err(EmError::bad_body()),
    }
}

// ---------------------------------------------------------------------- one user

pub async fn get_one(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_GET).await?;
    let u = user_in_path(&s.engine, &app, &p, "username").await?;
    Ok(ctx.envelope(&app, "get", "/users").with("entities", json!([entity(&u)])).with("count", json!(1)))
}

/// A user's push devices bound at most (`pushInfo`).
pub const PUSH_DEVICES_MAX: usize = 10;
/// The legacy per-group push switch: `notification_ignore_<group id>`.
pub const IGNORE_PREFIX: &str = "notification_ignore_";

/// `notification_ignore_<group>`: true stops the group's offline pushes to the user, false
/// lets them through again.
fn ignore_flag(u: &mut confab_engine::model::User, k: &str, v: &Value) -> EmResult<()> {
    let group = k.strip_prefix(IGNORE_PREFIX).filter(|g| !g.is_empty() && g.len() <= 64);
    let (Some(_), Some(on)) = (group, v.as_bool()) else {
        return Err(EmError::illegal(format!("{k} must be notification_ignore_<group id> with true or false")));
    };
    if on {
        u.attributes.insert(k.to_string(), json!(true));
    } else {
        u.attributes.remove(k);
    }
    Ok(())
}

/// The SDK's `uploadPushToken` (`{device_id, device_token, notifier_name}`): the device's push
/// token, kept on the user as Easemob's `pushInfo` (the app's push service reads it with the
/// user, `GET /users/{u}`); an empty `device_token` (`unbindPushToken`) forgets the device. At
/// most [`PUSH_DEVICES_MAX`] devices: binding one more forgets the oldest.
fn bind_push_device(u: &mut confab_engine::model::User, o: &serde_json::Map<String, Value>) -> EmResult<()> {
    let field = |k: &str| -> EmResult<String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) if s.len() <= 512 => Ok(s.clone()),
            Some(_) => Err(EmError::illegal(format!("{k} must be a string of at most 512 characters"))),
        }
    };
    let (device, token, notifier) = (field("device_id")?, field("device_token")?, field("notifier_name")?);
    if device.is_empty() {
        return Err(EmError::illegal("device_id is required"));
    }
    let mut devices: Vec<Value> = u.attributes.get("pushInfo").and_then(Value::as_array).cloned().unwrap_or_default();
    devices.retain(|d| d.get("device_id").and_then(Value::as_str) != Some(device.as_str()));
    if !token.is_empty() {
        if notifier.is_empty() {
            return Err(EmError::illegal("notifier_name is required with a device_token"));
        }
        devices.push(json!({"device_id": device, "device_token": token, "notifier_name": notifier}));
        let over = devices.len().saturating_sub(PUSH_DEVICES_MAX);
        devices.drain(..over);
    }
    if devices.is_empty() {
        u.attributes.remove("pushInfo");
    } else {
        u.attributes.insert("pushInfo".into(), Value::Array(devices));
    }
    Ok(())
}

/// `PUT /users/{username}`: the push display nickname and style, the legacy do-not-disturb
/// fields and per-group push switches, and the device's push token, kept on the user.
pub async fn update(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_USERS_WRITE).await?;
    let mut u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    for (k, v) in o {
        match k.as_str() {
            "nickname" => {
                let n = v.as_str().ok_or_else(|| EmError::illegal("nickname must be a string"))?;
                if n.chars().count() > 100 {
                    return Err(EmError::illegal("NICKNAME_TOO_LONG"));
                }
                u.nickname = Some(n.to_string());
            }
            "notification_display_style" => {
                let style = v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).filter(|x| *x == 0 || *x == 1);
                let style = style.ok_or_else(|| EmError::illegal("notification_display_style must be 0 or 1"))?;
                u.attributes.insert(k.clone(), json!(style));
            }
            "notification_no_disturbing" | "notification_no_disturbing_start" | "notification_no_disturbing_end" => {
                u.attributes.insert(k.clone(), v.clone());
            }
            // the SDK's legacy blockGroupMessages: `{entities: [{"notification_ignore_<group>": true}]}`
            "entities" => {
                let flags = v.as_array().ok_or_else(|| EmError::illegal("entities must be an array"))?;
                for f in flags {
                    let f = f.as_object().ok_or_else(|| EmError::illegal("entities must hold objects"))?;
                    for (k, v) in f {
                        ignore_flag(&mut u, k, v)?;
                    }
                }
            }
            k if k.starts_with(IGNORE_PREFIX) => ignore_flag(&mut u, k, v)?,
            // the SDK's uploadPushToken / unbindPushToken, below
            "device_id" | "device_token" | "notifier_name" => {}
            other => return Err(EmError::illegal(format!("{other} cannot be set here"))),
        }
    }
    if o.contains_key("device_id") || o.contains_key("device_token") {
        bind_push_device(&mut u, o)?;
    }
    let u = s.engine.users().update_user(&c.app, u).await?;
    Ok(c.ctx.envelope(&c.app, "put", "/users").with("entities", json!([entity(&u)])))
}

pub async fn delete(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_DELETE).await?;
    let u = user_in_path(&s.engine, &app, &p, "username").await?;
    s.engine.users().delete_user(&app, &u.id).await?;
    Ok(ctx.envelope(&app, "delete", "/users").with("entities", json!([entity(&u)])))
}

/// `PUT|POST /users/{username}/password {newpassword}`: the user's tokens stop working.
pub async fn password(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_USERS_PASSWORD).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username")
        .await
        .map_err(|_| EmError::new(StatusCode::NOT_FOUND, "entity_not_found", "EntityNotFoundException", "User null not found"))?;
    c.may_act_for(&u.id)?;
    let pw = b
        .get("newpassword")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| EmError::illegal("newpassword is required"))?;
    if pw.chars().count() > 64 {
        return Err(EmError::illegal("PASSWORD_TOO_LONG"));
    }
    s.engine.users().set_password(&c.app, &u.id, pw).await?;
    s.engine.clients().end_sessions_for(&c.app, &u.id, confab_engine::KickReason::PasswordChanged)?;
    Ok(Answer::bare(json!({"action": "set user password"})))
}

pub async fn status(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_STATUS).await?;
    let name = username(p.get("username")?).map_err(|_| EmError::user_not_found())?;
    let online = !s.engine.clients().online(&app, std::slice::from_ref(&name)).await?.is_empty();
    Ok(ctx
        .envelope(&app, "get", "/users")
        .with("entities", json!([]))
        .with("data", json!({name: if online { "online" } else { "offline" }}))
        .with("count", json!(0)))
}

/// `POST /users/batch/status {usernames}`: at most 100; unknown users are offline.
pub async fn status_batch(State(s): State<EmState>, Admin { app, .. }: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_STATUS_BATCH).await?;
    let names: Vec<String> = match b.get("usernames") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_lowercase).ok_or_else(|| EmError::illegal("usernames must be strings")))
            .collect::<EmResult<_>>()?,
        _ => return Err(EmError::illegal("usernames must be provided")),
    };
    if names.len() > STATUS_BATCH_MAX {
        return Err(EmError::illegal(format!("request body exceeds maximum limit, maximum limit is {STATUS_BATCH_MAX}")));
    }
    let online: std::collections::HashSet<String> = s.engine.clients().online(&app, &names).await?.into_iter().collect();
    let data: Vec<Value> = names.iter().map(|n| json!({n: if online.contains(n) { "online" } else { "offline" }})).collect();
    Ok(Answer::bare(json!({"action": "get batch user status", "data": data})))
}

/// `GET /users?limit&cursor`: users by creation, `limit` 1–100 (default 10); `cursor` continues
/// (absent on the last page).
pub async fn list(State(s): State<EmState>, Admin { app, ctx }: Admin, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_LIST).await?;
    let (users, cursor) = page(&s, &app, &q).await?;
    let mut a = ctx
        .envelope(&app, "get", "/users")
        .with("entities", json!(users.iter().map(entity).collect::<Vec<_>>()))
        .with("count", json!(users.len()));
    if let Some(c) = cursor {
        a = a.with("cursor", json!(c));
    }
    Ok(a)
}

/// A page of users and the cursor after it (None on the last page).
async fn page(s: &EmState, app: &App, q: &Params) -> EmResult<(Vec<User>, Option<String>)> {
    let limit = q.int("limit", 10, 1..=100)?;
    let after = match q.get("cursor") {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| EmError::illegal("cursor is not valid"))?),
    };
    let mut users = s.engine.users().list_users(app, after, limit + 1).await?;
    let more = users.len() as i64 > limit;
    users.truncate(limit as usize);
    let cursor = more.then(|| users.last().map(|u| encode_cursor(u.num))).flatten();
    Ok((users, cursor))
}

pub fn encode_cursor(n: i64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n.to_string())
}

pub fn decode_cursor(c: &str) -> Option<i64> {
    use base64::Engine as _;
    String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?).ok()?.parse().ok()
}

/// `DELETE /users?limit&cursor`: deletes the oldest `limit` users (1–100, default 10).
pub async fn delete_batch(State(s): State<EmState>, Admin { app, ctx }: Admin, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_DELETE_BATCH).await?;
    let (users, cursor) = page(&s, &app, &q).await?;
    for u in &users {
        s.engine.users().delete_user(&app, &u.id).await?;
    }
    let mut a = ctx.envelope(&app, "delete", "/users").with("entities", json!(users.iter().map(entity).collect::<Vec<_>>()));
    if let Some(c) = cursor {
        a = a.with("cursor", json!(c));
    }
    Ok(a)
}

/// `GET /users/{owner_username}/offline_msg_count`: messages the user has not received yet.
pub async fn offline_count(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_OFFLINE_MSG_COUNT).await?;
    let u = user_in_path(&s.engine, &app, &p, "username").await?;
    let n = s.engine.messages().unread_count(&app, &u.id, None).await?;
    Ok(ctx.envelope(&app, "get", "/users").with("entities", json!([])).with("data", json!({u.id: n})).with("count", json!(0)))
}

/// `GET /users/{username}/offline_msg_status/{msg_id}`: `delivered` once it reached one of the
/// user's devices (or was read), else `undelivered`.
pub async fn offline_status(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_OFFLINE_MSG_STATUS).await?;
    let u = user_in_path(&s.engine, &app, &p, "username").await?;
    let id = p.get("msg_id")?;
    let msg = s.engine.messages().message(&app, id.parse().map_err(|_| EmError::illegal("msg_id is not valid"))?).await?;
    let conv = s.engine.conversations().conversation(&app, msg.conv, None).await?;
    let m = s.engine.conversations().member(&app, &conv, &u.id).await?;
    let state = if m.delivered_seq >= msg.seq || m.read_seq >= msg.seq { "delivered" } else { "undelivered" };
    Ok(ctx.envelope(&app, "get", "/users").with("entities", json!([])).with("data", json!({id: state})).with("count", json!(0)))
}

async fn set_active(s: &EmState, app: &App, p: &P, active: bool) -> EmResult<User> {
    let u = user_in_path(&s.engine, app, p, "username").await?;
    Ok(s.engine.users().set_disabled(app, &u.id, !active).await?)
}

/// `POST /users/{username}/deactivate`: the user is logged out and cannot log in.
pub async fn deactivate(State(s): State<EmState>, Admin { app, .. }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_DEACTIVATE).await?;
    let u = set_active(&s, &app, &p, false).await?;
    Ok(Answer::bare(json!({"action": "Deactivate user", "entities": [entity(&u)]})))
}

pub async fn activate(State(s): State<EmState>, Admin { app, .. }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_ACTIVATE).await?;
    set_active(&s, &app, &p, true).await?;
    Ok(Answer::bare(json!({"action": "activate user"})))
}

/// `GET /users/{username}/disconnect`: every session of the user ends.
pub async fn disconnect(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_USERS_DISCONNECT).await?;
    let u = user_in_path(&s.engine, &app, &p, "username").await?;
    s.engine.clients().kick(&app, &u.id, None).await?;
    Ok(ctx.envelope(&app, "get", "/users").with("entities", json!([])).with("data", json!({"result": true})).with("count", json!(0)))
}
