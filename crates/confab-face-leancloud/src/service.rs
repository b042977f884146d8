//! Service conversation subscriptions, client endpoints and app-wide calls.

use axum::extract::{Path, State};
use axum::Json;
use confab_engine::limits::bucket;
use confab_engine::model::{Content, ConvKind, TokenKind};
use confab_engine::{random_lower, NewBroadcast};
use serde_json::{json, Value};

use crate::conversations::{lookup, Reply};
use crate::error::{LcError, LcResult};
use crate::extract::{msg_id, Body, Client, Fields, LcState, Master, Params};
use crate::{render, sign};

/// Subscriber listings return at most this many per page (the seed: default 50, max 50).
const SUBSCRIBERS_PAGE: i64 = 50;
/// A client's subscribed service conversations: default page size.
const SUBSCRIPTIONS_PAGE: i64 = 50;

pub async fn subscribe(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>, b: Body) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Service)).await?;
    s.engine.conversations().subscribe(&c.app, &conv, &b.req_str("client_id")?).await?;
    Ok(Json(json!({})))
}

pub async fn unsubscribe(State(s): State<LcState>, Master(c): Master, Path((id, client)): Path<(String, String)>) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Service)).await?;
    s.engine.conversations().unsubscribe(&c.app, &conv, &client).await?;
    Ok(Json(json!({})))
}

/// Page size from `limit`: default `default`, at most `max`.
fn page(p: &Params, default: i64, max: i64) -> LcResult<i64> {
    match p.i64("limit")? {
        None => Ok(default),
        Some(l) if l < 1 => Err(LcError::param("limit must be at least 1.")),
        Some(l) => Ok(l.min(max)),
    }
}

pub async fn subscribers(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>, p: Params) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Service)).await?;
    let limit = page(&p, SUBSCRIBERS_PAGE, SUBSCRIBERS_PAGE)?;
    let subs = s.engine.conversations().subscribers(&c.app, &conv, p.get("client_id").map(str::to_string), limit).await?;
    Ok(Json(Value::Array(subs.iter().map(render::subscription).collect())))
}

pub async fn subscriber_count(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Service)).await?;
    Ok(Json(json!({"count": s.engine.conversations().subscriber_count(&c.app, &conv).await?})))
}

// ---------------------------------------------------------------------- clients

pub async fn check_online(State(s): State<LcState>, Master(c): Master, b: Body) -> Reply {
    let ids = b.req_strs("client_ids", None)?;
    Ok(Json(json!({"results": s.engine.clients().check_online(&c.app, &ids).await?})))
}

/// Unread count; the App Key is enough.
pub async fn unread(State(s): State<LcState>, c: Client, Path(client): Path<String>, p: Params) -> Reply {
    let conv = match p.get("conv_id") {
        Some(id) => Some(lookup(&s, &c, id, None).await?),
        None => None,
    };
    Ok(Json(json!({"count": s.engine.messages().unread_count(&c.app, &client, conv.as_ref()).await?})))
}

/// End a client's sessions. Its session tokens are revoked too, so a client that is offline or
/// reconnecting at that moment cannot resume with one: it must log in again.
pub async fn kick(State(s): State<LcState>, Master(c): Master, Path(client): Path<String>, b: Body) -> Reply {
    let reason = b.opt_str("reason")?;
    s.engine.clients().kick(&c.app, &client, reason).await?;
    s.engine.users().revoke_user_tokens(&c.app, &client, TokenKind::LcRealtime).await?;
    Ok(Json(json!({})))
}

pub async fn subscriptions(State(s): State<LcState>, Master(c): Master, Path(client): Path<String>, p: Params) -> Reply {
    let after = match (p.get("conv_id"), p.i64("timestamp")?) {
        (None, _) => None,
        (Some(_), None) => return Err(LcError::param("'conv_id' needs 'timestamp', the time it was subscribed.")),
        // an id that is not ours sorts nowhere; start from the timestamp alone
        (Some(id), Some(ts)) => Some((ts, id.parse().unwrap_or(i64::MAX))),
    };
    let descending = match p.get("direction") {
        None | Some("new") => false,
        Some("old") => true,
        Some(_) => return Err(LcError::param("direction must be 'old' or 'new'.")),
    };
    let limit = page(&p, SUBSCRIPTIONS_PAGE, 1000)?;
    let subs = s.engine.conversations().subscriptions(&c.app, &client, after, descending, limit).await?;
    Ok(Json(Value::Array(subs.iter().map(render::subscription).collect())))
}

/// A login signature for a `_User` session token (the App Key is enough). Each call signs with a
/// fresh nonce.
pub async fn client_sign(s: &LcState, c: &Client, session_token: Option<String>) -> Reply {
    let token = session_token.ok_or_else(|| LcError::missing("session_token"))?;
    let t = s.engine.users().check_token(&c.app, &token, TokenKind::LcSession).await?.ok_or_else(LcError::invalid_session)?;
    let client_id = t.user.ok_or_else(LcError::invalid_session)?;
    // the app's `_rtmClientSign` hook sees the `_User` and may refuse (`false`)
    if s.engine.app_code().hooks().active(&c.app) {
        let user = s.engine.users().get_user(&c.app, &client_id).await?;
        s.engine.app_code().may_sign_in(&c.app, &user, &token).await?;
    }
    let keys = &c.app.keys.leancloud;
    let ts = s.engine.now();
    let nonce = random_lower(10);
    Ok(Json(json!({
        "signature": sign::login(&keys.master_key, &keys.app_id, &client_id, ts, &nonce),
        "nonce": nonce,
        "client_id": client_id,
        "timestamp": ts,
    })))
}

pub async fn sign_v12(State(s): State<LcState>, c: Client, p: Params) -> Reply {
    client_sign(&s, &c, p.get("session_token").map(str::to_string)).await
}

pub async fn sign_v11(State(s): State<LcState>, c: Client, b: Body) -> Reply {
    client_sign(&s, &c, b.opt_str("session_token")?).await
}

// ---------------------------------------------------------------------- global

pub async fn stats(State(s): State<LcState>, Master(c): Master) -> Reply {
    let (online, today) = s.engine.clients().stats(&c.app).await?;
    Ok(Json(json!({"result": {"online_user_count": online, "user_count_today": today}})))
}

/// An app-wide broadcast. `from_key` is `from_client` (1.2) or `from_peer` (1.1).
pub async fn broadcast(s: &LcState, c: &Client, b: &Body, from_key: &str) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_BROADCAST).await?;
    let conv = lookup(s, c, &b.req_str("conv_id")?, Some(ConvKind::Service)).await?;
    let text = b.opt_text("message")?.ok_or_else(|| LcError::missing("message"))?;
    let push = match b.0.get("push") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Object(_))) => Some(v.clone()),
        Some(_) => return Err(LcError::wrong_type("push", "a string or an object")),
    };
    let new = NewBroadcast {
        conv: conv.id,
        from: b.req_str(from_key)?,
        content: Content::Text(text),
        valid_till: b.opt_i64("valid_till")?,
        push,
        transient: b.flag("transient")?,
    };
    let bc = s.engine.messages().create_broadcast(&c.app, &conv, new).await?;
    Ok(Json(render::sent(bc.id, bc.timestamp)))
}

pub async fn create_broadcast(State(s): State<LcState>, Master(c): Master, b: Body) -> Reply {
    broadcast(&s, &c, &b, "from_client").await
}

pub async fn list_broadcasts(State(s): State<LcState>, Master(c): Master, p: Params) -> Reply {
    let conv = lookup(&s, &c, p.get("conv_id").ok_or_else(|| LcError::missing("conv_id"))?, Some(ConvKind::Service)).await?;
    let limit = page(&p, 100, 1000)?;
    let skip = p.i64("skip")?.unwrap_or(0);
    let list = s.engine.messages().broadcasts(&c.app, &conv, skip, limit).await?;
    Ok(Json(Value::Array(list.iter().map(render::broadcast).collect())))
}

pub async fn delete_broadcast(State(s): State<LcState>, Master(c): Master, Path(mid): Path<String>) -> Reply {
    s.engine.messages().delete_broadcast(&c.app, msg_id(&mid)?).await?;
    Ok(Json(json!({})))
}
