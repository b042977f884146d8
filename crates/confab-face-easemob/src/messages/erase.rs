//! A user deletes roaming history for themself only (the SDK's `removeHistoryMessages`,
//! `deleteAllMessagesAndConversations`; specs/easemob-msync.md §12.2):
//! * `DELETE /sdk/message/roaming/{chat|group}/user/{username}?userId=<peer>|groupId=<group>&msgIdList=a,b`
//!   erases those messages (at most [`ERASE_IDS_MAX`]);
//! * `DELETE …/{chat|group}/user/{username}/time?…&delTime=<ms>` erases everything sent before then;
//! * `POST /sdk/message/roaming/user/{username}/delete/all` erases all of it and empties the
//!   user's conversation list (pins and marks too).
//!
//! Erasing is the engine's per-user hide (`confab_engine::client_state`): roaming history, the
//! conversation list's last message and every other face's history-as-that-user leave the
//! messages out for that user; the peer and the other members still see them.

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::entries::ns;
use confab_engine::limits::bucket;
use confab_engine::model::{ConvKind, Conversation};
use confab_engine::EntryFilter;
use confab_routes::{delete, post};
use serde_json::json;

use crate::auth::{Caller, EmState, Need, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::users::{user_in_path, username};
use crate::Routes;

/// Most messages one call may name (the SDK's own cap).
pub const ERASE_IDS_MAX: usize = 20;

pub fn routes() -> Routes {
    use Need::AppOrUser;
    vec![
        delete("/sdk/message/roaming/{chat_type}/user/{username}", AppOrUser, erase_messages),
        delete("/sdk/message/roaming/{chat_type}/user/{username}/time", AppOrUser, erase_before),
        post("/sdk/message/roaming/user/{username}/delete/all", AppOrUser, erase_all),
    ]
}

/// The conversation the path's chat type and the query name for `user`: None when a peer and the
/// user never talked. A group must exist (404 as the SDK maps it).
async fn conversation(s: &EmState, c: &Caller, p: &P, q: &Params, user: &str) -> EmResult<Option<Conversation>> {
    match p.get("chat_type")? {
        "chat" => {
            let peer = q.get("userId").ok_or_else(|| EmError::illegal("userId cannot be null or empty"))?;
            let peer = username(peer).map_err(|_| EmError::illegal(format!("userId {peer} names no user")))?;
            Ok(s.engine.conversations().find_direct_conversation(&c.app, user, &peer).await?)
        }
        "group" => {
            let raw = q.get("groupId").ok_or_else(|| EmError::illegal("groupId cannot be null or empty"))?;
            let missing = || {
                EmError::new(
                    StatusCode::NOT_FOUND,
                    "service_resource_not_found",
                    "com.easemob.group.exception.ServiceResourceNotFoundException",
                    format!("do not find this group:{raw}"),
                )
            };
            let id: i64 = raw.trim().parse().map_err(|_| missing())?;
            let conv = s.engine.conversations().conversation(&c.app, id, None).await.map_err(|_| missing())?;
            if !matches!(conv.kind, ConvKind::Normal | ConvKind::Temporary | ConvKind::Chatroom) || conv.unique {
                return Err(missing());
            }
            Ok(Some(conv))
        }
        other => Err(EmError::illegal(format!("chat type {other} is not chat or group"))),
    }
}

async fn owner(s: &EmState, c: &Caller, p: &P) -> EmResult<String> {
    let user = user_in_path(&s.engine, &c.app, p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_MESSAGE_ROAMING).await?;
    Ok(user.id)
}

fn answer(c: &Caller, action: &str, erased: usize) -> Reply {
    Ok(c.ctx
        .envelope(&c.app, action, "/sdk/message/roaming")
        .with("entities", json!([]))
        .with("data", json!({"result": "ok", "count": erased})))
}

/// `DELETE /sdk/message/roaming/{chat|group}/user/{username}?userId|groupId&msgIdList`.
async fn erase_messages(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let user = owner(&s, &c, &p).await?;
    let ids: Vec<i64> = q
        .get("msgIdList")
        .ok_or_else(|| EmError::illegal("msgIdList cannot be null or empty"))?
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<i64>().map_err(|_| EmError::illegal(format!("msgIdList: {x} is not a message id"))))
        .collect::<EmResult<_>>()?;
    if ids.is_empty() || ids.len() > ERASE_IDS_MAX {
        return Err(EmError::illegal(format!("msgIdList names 1 to {ERASE_IDS_MAX} messages")));
    }
    let Some(conv) = conversation(&s, &c, &p, &q, &user).await? else { return answer(&c, "delete", 0) };
    let n = s.engine.client_state().erase_messages(&c.app, &conv, &user, &ids).await?;
    answer(&c, "delete", n)
}

/// `DELETE /sdk/message/roaming/{chat|group}/user/{username}/time?userId|groupId&delTime`.
async fn erase_before(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let user = owner(&s, &c, &p).await?;
    let before = q.get("delTime").ok_or_else(|| EmError::illegal("delTime cannot be null or empty"))?;
    let before: i64 = before.trim().parse().ok().filter(|t| *t > 0).ok_or_else(|| EmError::illegal("delTime must be a time in ms"))?;
    let Some(conv) = conversation(&s, &c, &p, &q, &user).await? else { return answer(&c, "delete", 0) };
    let n = s.engine.client_state().erase_before(&c.app, &conv, &user, before).await?;
    answer(&c, "delete", n)
}

/// `POST /sdk/message/roaming/user/{username}/delete/all`.
async fn erase_all(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let user = owner(&s, &c, &p).await?;
    let convs = s.engine.client_state().erase_all(&c.app, &user).await?;
    for n in [ns::CONVERSATION_PINS, ns::CONVERSATION_MARKS] {
        s.engine.collections().delete(&c.app, &EntryFilter::collection(n, user.clone())).await?;
    }
    Ok(c.ctx
        .envelope(&c.app, "post", "/sdk/message/roaming")
        .with("entities", json!([]))
        .with("data", json!({"result": "ok", "conversations": convs.len()})))
}
