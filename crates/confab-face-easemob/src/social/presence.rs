//! Presence (§3.12): statuses per device resource, subscriptions with an expiry. The envelope is
//! `{"result": …}` alone; times are unix seconds as strings. A user's live sessions (the
//! engine's presence) show as resources online.

use axum::extract::State;
use axum::Json;
use confab_engine::limits::bucket;
use confab_engine::PresenceInfo;
use confab_routes::{delete, get, post};
use serde_json::{json, Value};

use super::names_of;
use crate::auth::Need;
use crate::auth::{Body, Caller, EmState, Params, P};
use crate::envelope::{EmError, EmResult};
use crate::users::user_in_path;
use crate::Routes;

/// Longest subscription, in seconds (30 days).
pub const EXPIRY_MAX_SECS: i64 = 2_592_000;
/// Most users one subscribe, get or unsubscribe call may name.
pub const PRESENCE_BATCH_MAX: usize = 100;

type PReply = EmResult<Json<Value>>;

pub fn routes() -> Routes {
    vec![
        post("/users/{username}/presence", Need::AppOrUser, get_batch),
        delete("/users/{username}/presence", Need::AppOrUser, unsubscribe),
        get("/users/{username}/presence/sublist", Need::AppOrUser, sublist),
        post("/users/{username}/presence/{key}", Need::AppOrUser, subscribe),
        post("/users/{username}/presence/{key}/{status}", Need::AppOrUser, set_status),
    ]
}

fn secs(ms: i64) -> String {
    (ms / 1000).to_string()
}

fn info_json(i: &PresenceInfo) -> Value {
    json!({"uid": i.user, "last_time": secs(i.last_time), "ext": i.ext, "status": i.status})
}

fn batch(b: &Value, field: &str, too_many: &str) -> EmResult<Vec<String>> {
    let names = match b {
        Value::Array(_) => names_of(Some(b), field)?,
        _ => names_of(b.get(field).or_else(|| b.get("users")), field).map_err(|_| EmError::illegal(format!("{field} is empty")))?,
    };
    if names.is_empty() {
        return Err(EmError::illegal(format!("{field} is empty")));
    }
    if names.len() > PRESENCE_BATCH_MAX {
        return Err(EmError::illegal(too_many));
    }
    Ok(names)
}

/// `POST /users/{username}/presence/{resource}/{status} {ext}`: `{"result":"ok"}`.
async fn set_status(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> PReply {
    s.engine.apps().rate_check(&c.app, bucket::EM_PRESENCE_SET).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let resource = p.get("key")?;
    let status = p.get("status")?;
    if status.parse::<i64>().is_err() {
        return Err(EmError::illegal("status must be a number"));
    }
    let ext = match b.get("ext") {
        None | Some(Value::Null) => return Err(EmError::illegal("ext cannot be null")),
        Some(Value::String(x)) => x.clone(),
        Some(other) => other.to_string(),
    };
    if ext.len() > c.app.limits.em_presence_ext_max_bytes {
        return Err(EmError::illegal("ext is too big"));
    }
    s.engine.social().set_presence(&c.app, &u.id, resource, status, &ext).await?;
    Ok(Json(json!({"result": "ok"})))
}

/// `POST /users/{username}/presence/{expiry} {usernames}`: subscribe and get their presence.
async fn subscribe(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> PReply {
    s.engine.apps().rate_check(&c.app, bucket::EM_PRESENCE_SUBSCRIBE).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let expiry = p
        .get("key")?
        .parse::<i64>()
        .ok()
        .filter(|e| (1..=EXPIRY_MAX_SECS).contains(e))
        .ok_or_else(|| EmError::illegal(format!("expiry must be an integer in 1..={EXPIRY_MAX_SECS}")))?;
    let names = batch(&b, "usernames", "too many sub presence")?;
    if names.contains(&u.id) {
        return Err(EmError::illegal("you can't sub yourself"));
    }
    let ends = s.engine.social().subscribe_presence(&c.app, &u.id, &names, expiry).await.map_err(|e| match e {
        confab_engine::Error::TooMany { .. } => EmError::illegal("too many sub presence"),
        e => e.into(),
    })?;
    let infos = s.engine.social().presence_info(&c.app, &names).await?;
    let result: Vec<Value> = infos
        .iter()
        .zip(ends)
        .map(|(i, end)| {
            let mut v = info_json(i);
            v["expiry"] = json!(secs(end));
            v
        })
        .collect();
    Ok(Json(json!({"result": result})))
}

/// `POST /users/{username}/presence {usernames}`: their presence, without subscribing.
async fn get_batch(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> PReply {
    s.engine.apps().rate_check(&c.app, bucket::EM_PRESENCE_GET).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let names = batch(&b, "usernames", "too many get presences")?;
    let infos = s.engine.social().presence_info(&c.app, &names).await?;
    Ok(Json(json!({"result": infos.iter().map(info_json).collect::<Vec<_>>()})))
}

/// `DELETE /users/{username}/presence ["u1",…]` (or `{"users": […]}`).
async fn unsubscribe(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> PReply {
    s.engine.apps().rate_check(&c.app, bucket::EM_PRESENCE_UNSUBSCRIBE).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let names = batch(&b, "usernames", "too many unsub presences").map_err(|e| {
        if e.description.ends_with("is empty") {
            EmError::illegal("usernames cannot be null")
        } else {
            e
        }
    })?;
    s.engine.social().unsubscribe_presence(&c.app, &u.id, &names).await?;
    Ok(Json(json!({"result": "ok"})))
}

/// `GET /users/{username}/presence/sublist?pageNum&pageSize`: live subscriptions, 1-based pages
/// of 1–500.
async fn sublist(State(s): State<EmState>, c: Caller, p: P, q: Params) -> PReply {
    s.engine.apps().rate_check(&c.app, bucket::EM_PRESENCE_SUBLIST).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let page = q.int("pageNum", 1, 1..=i64::from(u32::MAX))?;
    let size = q.int("pageSize", 100, 1..=500)?;
    let (total, entries) = s.engine.social().presence_subscriptions(&c.app, &u.id, page, size).await?;
    let list: Vec<Value> = entries.iter().map(|e| json!({"uid": e.item, "expiry": secs(e.expires_at.unwrap_or(0))})).collect();
    Ok(Json(json!({"result": {"totalnum": total.to_string(), "sublist": list}})))
}
