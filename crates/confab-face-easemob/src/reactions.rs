//! Reactions to messages (§3.13), on the engine's rules (`confab_engine::reactions`). The
//! envelope is `{requestStatusCode: "ok", timestamp, data}`; errors are `400 Bad Request`.

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::limits::bucket;
use confab_engine::reactions::ReactionSummary;
use confab_engine::Error;
use confab_routes::{delete, get, post};
use serde_json::{json, Value};

use crate::auth::Need;
use crate::auth::{Body, Caller, EmState, Params, P};
use crate::envelope::{Answer, EmError, EmResult, Reply};
use crate::users::{decode_cursor, encode_cursor, user_in_path};
use crate::Routes;

/// Most message ids one listing may name.
pub const MSG_IDS_MAX: usize = 20;
/// Users shown per reaction in a listing.
const LIST_USERS: usize = 3;
/// Page size range and default of the details.
const DETAIL_MAX: i64 = 50;

pub fn routes() -> Routes {
    vec![
        get("/reaction/user/{username}", Need::AppOrUser, list),
        post("/reaction/user/{username}", Need::AppOrUser, add),
        delete("/reaction/user/{username}", Need::AppOrUser, remove),
        get("/reaction/user/{username}/detail", Need::AppOrUser, detail),
    ]
}

fn bad(description: impl Into<String>) -> EmError {
    EmError::new(StatusCode::BAD_REQUEST, "Bad Request", "ReactionException", description)
}

fn illegal() -> EmError {
    bad("the user operation is illegal!")
}

/// An engine refusal in the reaction endpoints' words.
fn reaction_error(e: Error) -> EmError {
    match e {
        Error::TooMany { .. } => bad("The quantity has exceeded the limit!"),
        Error::NotAllowed(m) if m.contains("already") => bad("the user is already operation this message"),
        Error::NotAllowed(_) | Error::NotMember | Error::WrongKind { .. } => illegal(),
        Error::MessageNotFound => bad("the message does not exist!"),
        Error::Invalid(m) => bad(m),
        e => e.into(),
    }
}

fn ok(data: Option<Value>) -> Answer {
    let a = Answer::bare(json!({"requestStatusCode": "ok"}));
    match data {
        Some(d) => a.with("data", d),
        None => a,
    }
}

/// The acting user: the path's, which a user token must be.
async fn actor(s: &EmState, c: &Caller, p: &P) -> EmResult<String> {
    let u = user_in_path(&s.engine, &c.app, p, "username").await?;
    c.may_act_for(&u.id)?;
    Ok(u.id)
}

fn msg_id(v: Option<&str>) -> EmResult<i64> {
    v.and_then(|m| m.trim().parse().ok()).ok_or_else(|| bad("msgId is not valid!"))
}

fn summary(s: &ReactionSummary) -> Value {
    json!({"reactionId": s.id, "reaction": s.reaction, "count": s.count, "state": s.state, "userList": s.users})
}

fn iso(ms: i64) -> String {
    confab_engine::time::iso_ms(ms)
}

/// `POST /reaction/user/{username} {msgId, message}`.
async fn add(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_REACTION_ADD).await?;
    let user = actor(&s, &c, &p).await?;
    let msg = match b.get("msgId") {
        Some(Value::String(m)) => msg_id(Some(m))?,
        Some(Value::Number(n)) => msg_id(Some(&n.to_string()))?,
        _ => return Err(bad("msgId must be provided!")),
    };
    let reaction = b.get("message").and_then(Value::as_str).ok_or_else(|| bad("message must be provided!"))?;
    let rec = s.engine.reactions().add_reaction(&c.app, &user, msg, reaction).await.map_err(reaction_error)?;
    let at = iso(rec.created_at);
    Ok(ok(Some(json!({
        "id": rec.id.to_string(),
        "msgId": msg.to_string(),
        "msgType": if rec.unique { "chat" } else { "groupchat" },
        "groupId": if rec.unique { Value::Null } else { json!(rec.conv.to_string()) },
        "reaction": reaction,
        "createdAt": at,
        "updatedAt": at,
    }))))
}

/// `GET /reaction/user/{username}?msgIdList&msgType&groupId`: each message's reactions, with
/// their first three users.
async fn list(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_REACTION_LIST).await?;
    let user = actor(&s, &c, &p).await?;
    let ids: Vec<&str> = q.get("msgIdList").unwrap_or_default().split(',').map(str::trim).filter(|x| !x.is_empty()).collect();
    if ids.is_empty() {
        return Err(bad("msgIdList can not be null!"));
    }
    if ids.len() > MSG_IDS_MAX {
        return Err(bad("msgIdList exceeds the maximum number limit"));
    }
    match q.get("msgType") {
        Some("chat") | None => {}
        Some("groupchat") if q.get("groupId").is_some() => {}
        Some("groupchat") => return Err(bad("groupId can not be null!")),
        Some(_) => return Err(bad("msgType is chat or groupchat")),
    }
    let mut data = Vec::with_capacity(ids.len());
    for id in ids {
        let msg = msg_id(Some(id))?;
        let list = s.engine.reactions().reactions(&c.app, &user, msg, LIST_USERS).await.map_err(reaction_error)?;
        data.push(json!({"msgId": id, "reactionList": list.iter().map(summary).collect::<Vec<_>>()}));
    }
    Ok(ok(Some(json!(data))))
}

/// `DELETE /reaction/user/{username}?msgId&message`.
async fn remove(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_REACTION_DELETE).await?;
    let user = actor(&s, &c, &p).await?;
    let msg = msg_id(q.get("msgId"))?;
    let reaction = q.get("message").ok_or_else(|| bad("message must be provided!"))?;
    s.engine.reactions().remove_reaction(&c.app, &user, msg, reaction).await.map_err(reaction_error)?;
    Ok(ok(None))
}

/// `GET /reaction/user/{username}/detail?msgId&message&limit&cursor` (also `pageSize` and
/// `currentPage`, the client SDK's names): one reaction's users, oldest first.
async fn detail(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_REACTION_DETAIL).await?;
    let user = actor(&s, &c, &p).await?;
    let msg = msg_id(q.get("msgId"))?;
    let reaction = q.get("message").ok_or_else(|| bad("message must be provided!"))?;
    let limit_key = if q.get("limit").is_some() { "limit" } else { "pageSize" };
    let limit = q.int(limit_key, DETAIL_MAX, 1..=DETAIL_MAX).map_err(|_| bad("Limit exceeds the maximum quantity limit"))?;
    let skip = match (q.get("cursor"), q.get("currentPage")) {
        (Some(k), _) => decode_cursor(k).filter(|n| *n >= 0).ok_or_else(|| bad("cursor is not valid!"))?,
        (None, Some(page)) => (page.trim().parse::<i64>().map_err(|_| bad("currentPage is not valid!"))?.max(1) - 1) * limit,
        (None, None) => 0,
    };
    let r =
        s.engine.reactions().reaction_users(&c.app, &user, msg, reaction, skip as usize, limit as usize).await.map_err(reaction_error)?;
    let mut data = summary(&r);
    let next = skip + r.users.len() as i64;
    if next < r.count {
        data["cursor"] = json!(encode_cursor(next));
    }
    Ok(ok(Some(data)))
}
