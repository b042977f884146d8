//! The REST calls the realtime SDK makes with its session token (`X-LC-IM-Session-Token` and
//! `client_id`): notifications missed while offline, and conversation member roles.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use confab_engine::model::{ConvKind, TokenKind};
use serde_json::{json, Value};

use crate::conversations::Reply;
use crate::error::{LcError, LcResult};
use crate::extract::{Client, ImClient, LcState, Params};
use crate::realtime::push;

/// Most notifications one call returns (`hasMore` tells the SDK to ask again).
const NOTIFICATIONS_PAGE: i64 = 100;

/// The client a realtime session token belongs to, checked against `client_id`. An unknown or
/// expired token is 4112, after which the SDK refreshes it over the WebSocket. (The route table's
/// guard asks, for `Need::ImSession` routes.)
pub async fn im_client(s: &LcState, c: &Client, headers: &HeaderMap, p: &Params) -> LcResult<String> {
    let client = p.get("client_id").ok_or_else(|| LcError::missing("client_id"))?.to_string();
    let expired = || LcError::new(StatusCode::UNAUTHORIZED, 4112, "SESSION_TOKEN_EXPIRED");
    let token = headers.get("x-lc-im-session-token").and_then(|v| v.to_str().ok()).ok_or_else(expired)?;
    let t = s.engine.users().check_token(&c.app, token, TokenKind::LcRealtime).await?.ok_or_else(expired)?;
    if t.user.as_deref() != Some(client.as_str()) {
        return Err(expired());
    }
    Ok(client)
}

/// `GET /1.1/rtm/notifications?client_id&start_ts&notification_type=permanent`: the conversation
/// changes the client was told of after `start_ts`, each as the push it was.
pub async fn notifications(State(s): State<LcState>, c: Client, ImClient(client): ImClient, p: Params) -> Reply {
    let since = p.i64("start_ts")?.unwrap_or(0);
    let mut notices = s.engine.conversations().notices(&c.app, &client, since, NOTIFICATIONS_PAGE + 1).await?;
    let has_more = notices.len() as i64 > NOTIFICATIONS_PAGE;
    notices.truncate(NOTIFICATIONS_PAGE as usize);
    let items: Vec<Value> = notices
        .iter()
        .map(|n| {
            let cref = confab_engine::model::ConvRef { id: n.conv, kind: n.kind, foreign_id: n.foreign_id.clone() };
            let (op, cc) = push::conv_change(&cref, n.by.as_deref(), &n.change, &client);
            push::conv_notification(op, &cc, n.at)
        })
        .collect();
    Ok(Json(json!({"hasMore": has_more, "notifications": items})))
}

/// `GET /1.1/classes/_ConversationMemberInfo?where={"cid":…}`: the members with a role other
/// than plain member, as `{clientId, role, cid}` (the SDK fills in the rest as members).
pub async fn member_info(State(s): State<LcState>, c: Client, ImClient(client): ImClient, p: Params) -> Reply {
    let w: Value = serde_json::from_str(p.get("where").ok_or_else(|| LcError::missing("where"))?).map_err(|_| LcError::malformed_json())?;
    let cid = w.get("cid").and_then(Value::as_str).ok_or_else(|| LcError::missing("where.cid"))?;
    let conv = crate::extract::find_conversation(&s.engine, &c.app, cid).await?;
    if conv.kind == ConvKind::Normal || conv.kind == ConvKind::Temporary {
        // only members see a conversation's roles
        s.engine.conversations().member(&c.app, &conv, &client).await?;
    }
    let results: Vec<Value> = s
        .engine
        .conversations()
        .member_roles(&c.app, &conv)
        .await?
        .iter()
        .map(|m| json!({"clientId": m.user, "role": m.role.lc_name(), "cid": cid, "objectId": format!("{}-{}", conv.id, m.user)}))
        .collect();
    Ok(Json(json!({"results": results})))
}
