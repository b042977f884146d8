//! Pinned messages (the SDK's `pinMessage`, `unpinMessage`, `getServerPinnedMessages`;
//! specs/easemob-msync.md §12.2): `POST` / `DELETE /sdk/user/{username}/user_channel/pin {to,
//! type, pin_msg_id}` and `GET …/user_channel/pin?to&type&limit&cursor`. A pin belongs to the
//! conversation, so every member sees it (as Easemob's); the rules are the engine's
//! (`confab_engine::client_state`: members only, at most `PINS_MAX` per conversation), kept in
//! the keyed collection `message_pins`.

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::client_state::PINS_MAX;
use confab_engine::limits::bucket;
use confab_engine::model::{ConvKind, Conversation};
use confab_engine::Error;
use confab_routes::{delete, get, post};
use serde_json::{json, Value};

use super::{chat_type, payload, str_of};
use crate::auth::{Body, Caller, EmState, Need, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::users::{user_in_path, username};
use crate::Routes;

/// Page size range and default of the pinned list.
const PAGE_MAX: i64 = 50;
const PAGE_DEFAULT: i64 = 10;

pub fn routes() -> Routes {
    use Need::AppOrUser;
    vec![
        post("/sdk/user/{username}/user_channel/pin", AppOrUser, pin),
        delete("/sdk/user/{username}/user_channel/pin", AppOrUser, unpin),
        get("/sdk/user/{username}/user_channel/pin", AppOrUser, pinned),
    ]
}

fn no_conversation() -> EmError {
    EmError::new(StatusCode::NOT_FOUND, "resource_not_found", "ResourceNotFoundException", "conversation not exist")
}

/// The conversation `{to, type}` names for `user`: a peer (`chat`), a group (`groupchat`) or a
/// chat room (`chatroom`); the user must be in it (else 404 `conversation not exist`, as the
/// conversation pins answer).
pub(super) async fn conversation_of(
    s: &EmState,
    c: &Caller,
    user: &str,
    to: Option<String>,
    kind: Option<String>,
) -> EmResult<Conversation> {
    let to = to.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).ok_or_else(|| EmError::illegal("to cannot be null or empty"))?;
    let kind = kind.filter(|v| !v.trim().is_empty()).ok_or_else(|| EmError::illegal("type cannot be null or empty"))?;
    let conv = match kind.trim().to_ascii_lowercase().as_str() {
        "chat" | "singlechat" => {
            let peer = username(&to).map_err(|_| no_conversation())?;
            s.engine.conversations().find_direct_conversation(&c.app, user, &peer).await?
        }
        "groupchat" | "chatroom" => match to.parse::<i64>() {
            Ok(id) => s
                .engine
                .conversations()
                .conversation(&c.app, id, None)
                .await
                .ok()
                .filter(|cv| matches!(cv.kind, ConvKind::Normal | ConvKind::Temporary | ConvKind::Chatroom) && !cv.unique),
            Err(_) => None,
        },
        _ => return Err(EmError::illegal("type must be chat, groupchat or chatroom")),
    };
    conv.ok_or_else(no_conversation)
}

fn pin_error(e: Error) -> EmError {
    match e {
        Error::NotMember => no_conversation(),
        Error::MessageNotFound => {
            EmError::new(StatusCode::NOT_FOUND, "resource_not_found", "MessageNotFoundException", "message not found")
        }
        Error::TooMany { .. } => EmError::exceed_limit(format!("a conversation pins at most {PINS_MAX} messages")),
        e => e.into(),
    }
}

/// The body's (or the query's) `to`, `type` and `pin_msg_id`.
fn fields(b: &Value, q: &Params) -> (Option<String>, Option<String>, Option<String>) {
    let field = |k: &str| str_of(b.get(k)).or_else(|| q.get(k).map(str::to_string));
    (field("to"), field("type"), field("pin_msg_id"))
}

async fn pinning(s: EmState, c: Caller, p: P, q: Params, b: Value, on: bool) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNEL).await?;
    if !b.is_object() {
        return Err(EmError::bad_body());
    }
    let (to, kind, msg) = fields(&b, &q);
    let msg = msg.filter(|m| !m.trim().is_empty()).ok_or_else(|| EmError::illegal("pin_msg_id cannot be null or empty"))?;
    let msg: i64 = msg.trim().parse().map_err(|_| pin_error(Error::MessageNotFound))?;
    let conv = conversation_of(&s, &c, &user.id, to, kind).await?;
    let at = s.engine.client_state().pin_message(&c.app, &conv, &user.id, msg, on).await.map_err(pin_error)?;
    let data = json!({"pin_msg_id": msg.to_string(), "pin_opt_at": at, "pin_operator": user.id, "is_pinned": on});
    let action = if on { "post" } else { "delete" };
    Ok(c.ctx.envelope(&c.app, action, "/sdk/user/user_channel/pin").with("entities", json!([])).with("data", data))
}

/// `POST /sdk/user/{username}/user_channel/pin {to, type, pin_msg_id}`: a member pins a message.
async fn pin(State(s): State<EmState>, c: Caller, p: P, q: Params, Body(b): Body) -> Reply {
    pinning(s, c, p, q, b, true).await
}

/// `DELETE /sdk/user/{username}/user_channel/pin {to, type, pin_msg_id}` (or the query): unpin.
async fn unpin(State(s): State<EmState>, c: Caller, p: P, q: Params, Body(b): Body) -> Reply {
    pinning(s, c, p, q, b, false).await
}

/// `GET /sdk/user/{username}/user_channel/pin?to&type&limit&cursor`: the conversation's pinned
/// messages, latest pin first: `data: {msg_infos: [{message: {id, from, to, timestamp, payload
/// (a JSON string, with its chat type)}, pin_opt_at, pin_operator}], cursor}` (`cursor` an offset,
/// "" on the last page).
async fn pinned(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNELS).await?;
    let limit = q.int("limit", PAGE_DEFAULT, 1..=PAGE_MAX)?;
    let skip = q.int("cursor", 0, 0..=PINS_MAX)?;
    let conv = conversation_of(&s, &c, &user.id, q.get("to").map(str::to_string), q.get("type").map(str::to_string)).await?;
    let pins = s.engine.client_state().pinned_messages(&c.app, &conv, &user.id).await.map_err(pin_error)?;
    let direct = conv.unique && conv.kind == ConvKind::Normal;
    let peer = q.get("to").map(|t| t.trim().to_lowercase()).unwrap_or_default();
    let infos: Vec<Value> = pins
        .iter()
        .skip(skip as usize)
        .take(limit as usize)
        .map(|pm| {
            let m = &pm.msg;
            let to = match (direct, m.from == user.id) {
                (true, true) => peer.clone(),
                (true, false) => user.id.clone(),
                (false, _) => conv.id.to_string(),
            };
            let mut pl = payload(m, &to);
            pl["type"] = json!(chat_type(&conv));
            let message = json!({"id": m.id.to_string(), "from": m.from, "to": to, "timestamp": m.timestamp, "payload": pl.to_string()});
            json!({"message": message, "pin_opt_at": pm.at, "pin_operator": pm.by})
        })
        .collect();
    let next = skip + limit;
    let cursor = if next < pins.len() as i64 { next.to_string() } else { String::new() };
    Ok(c.ctx
        .envelope(&c.app, "get", "/sdk/user/user_channel/pin")
        .with("entities", json!([]))
        .with("data", json!({"msg_infos": infos, "cursor": cursor})))
}
