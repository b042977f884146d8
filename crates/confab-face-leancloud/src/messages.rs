//! Messages of conversations, chat rooms and service conversations: send, history, edit,
//! recall, delete; and the history of a client and of the whole app.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use confab_engine::limits::bucket;
use confab_engine::model::{App, Audience, Content, ConvKind, Message, Priority};
use confab_engine::query::{Bound, HistoryQuery, HistoryScope};
use confab_engine::{Actor, Edit, MessageRef, NewMessage};
use serde_json::{json, Value};

use crate::conversations::{lookup, Reply};
use crate::error::{LcError, LcResult};
use crate::extract::{Body, Client, Fields, LcState, Master, Params};
use crate::{render, sign};

/// Default `limit` of a history query (the maximum is the app's `history_max_limit`, 1000).
pub const HISTORY_DEFAULT_LIMIT: i64 = 100;

/// The `_lctype` of a typed message (its JSON content), or 0.
pub fn lctype(content: &str) -> i64 {
    if !content.trim_start().starts_with('{') {
        return 0;
    }
    serde_json::from_str::<Value>(content).ok().and_then(|v| v.get("_lctype").and_then(Value::as_i64)).unwrap_or(0)
}

/// The message a send body describes. Field names are 1.2's; 1.1 passes its own via `names`.
pub fn new_message(b: &Body, c: &Client, from_key: &str) -> LcResult<NewMessage> {
    let text = b.opt_text("message")?.ok_or_else(|| LcError::missing("message"))?;
    let priority = match b.opt_str("priority")? {
        None => Priority::Normal,
        Some(p) => Priority::parse(&p).ok_or_else(|| LcError::param("priority must be high, normal or low."))?,
    };
    Ok(NewMessage {
        from: b.req_str(from_key)?,
        mtype: lctype(&text),
        content: Some(Content::Text(text)),
        transient: b.flag("transient")?,
        no_sync: b.flag("no_sync")?,
        push_data: b.opt_text("push_data")?,
        priority,
        mention_all: b.flag("mention_all")?,
        mentions: b.opt_strs("mention_client_ids", None)?.unwrap_or_default(),
        from_ip: c.ip.clone(),
        ..Default::default()
    })
}

/// Recipients of a service conversation's per-user message (`to_clients`, at most the app's
/// `recipients_max`).
pub fn to_clients(b: &Body, c: &Client, key: &str) -> LcResult<Option<Vec<String>>> {
    b.opt_strs(key, Some(c.app.limits.recipients_max))
}

pub async fn send(
    State(s): State<LcState>,
    Extension(kind): Extension<ConvKind>,
    Master(c): Master,
    Path(id): Path<String>,
    b: Body,
) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_MESSAGE).await?;
    let conv = lookup(&s, &c, &id, Some(kind)).await?;
    let mut new = new_message(&b, &c, "from_client")?;
    match kind {
        // chat rooms do not copy a message to the sender's other sessions
        ConvKind::Chatroom => new.no_sync = true,
        ConvKind::Service => {
            new.audience = Audience::Only(to_clients(&b, &c, "to_clients")?.ok_or_else(|| LcError::missing("to_clients"))?)
        }
        _ => {}
    }
    let msg = s.engine.messages().send_message(&c.app, &conv, new, &Actor::Admin).await?;
    Ok(Json(render::sent_message(&msg)))
}

/// The range a history request describes (see the seed's six-row truth table): `timestamp`/
/// `msgid` is where the query starts and `till_timestamp`/`till_msgid` where it stops, newest
/// first; `reversed` walks oldest first, so the start is then the lower end.
/// History records, each naming its conversation as LeanCloud does.
async fn records(s: &LcState, app: &App, ms: Vec<Message>) -> Reply {
    let convs: Vec<i64> = ms.iter().map(|m| m.conv).collect();
    let foreign = s.engine.imports().conversation_foreign_ids(app, &convs).await?;
    Ok(Json(render::messages(&ms, &foreign)))
}

/// A message id in a history bound may be an imported message's LeanCloud msg-id.
pub async fn history_query(s: &LcState, app: &App, p: &Params, scope: HistoryScope, max_limit: i64) -> LcResult<HistoryQuery> {
    let mut bounds = Vec::with_capacity(2);
    for (ts_key, id_key, incl_key) in [("timestamp", "msgid", "include_start"), ("till_timestamp", "till_msgid", "include_stop")] {
        let ts = p.i64(ts_key)?;
        let id = p.get(id_key);
        if id.is_some() && ts.is_none() {
            return Err(LcError::param(format!("'{id_key}' needs '{ts_key}', the message's timestamp.")));
        }
        let inclusive = p.bool(incl_key)?;
        let id = match id {
            Some(i) => crate::extract::find_message_id(&s.engine, app, i).await.ok(),
            None => None,
        };
        bounds.push(ts.map(|timestamp| Bound { timestamp, id, inclusive }));
    }
    let mut bounds = bounds.into_iter();
    let (start, stop) = (bounds.next().flatten(), bounds.next().flatten());
    let reversed = p.bool("reversed")?;
    let limit = match p.i64("limit")? {
        None => HISTORY_DEFAULT_LIMIT,
        Some(l) if l < 1 => return Err(LcError::param("limit must be at least 1.")),
        Some(l) => l.min(max_limit),
    };
    let (older_than, newer_than) = if reversed { (stop, start) } else { (start, stop) };
    Ok(HistoryQuery { scope, older_than, newer_than, ascending: reversed, limit, mtype: None })
}

/// History needs the master key, or — when the app turned history signatures on — a valid
/// signature for this client and conversation (the route table's guard asks, before any lookup:
/// an app-key caller learns nothing about which conversations exist).
/// `conv` as the client named it (and signed it).
pub fn history_access(c: &Client, p: &Params, conv: &str, now: i64) -> LcResult<()> {
    if c.master {
        return Ok(());
    }
    if !c.app.limits.lc_sign_history {
        return Err(LcError::master_required());
    }
    let (Some(client), Some(nonce), Some(ts), Some(sig)) = (p.get("client_id"), p.get("nonce"), p.get("signature_ts"), p.get("signature"))
    else {
        return Err(LcError::signature_failed());
    };
    let h = sign::HistorySignature { client_id: client, nonce, ts, signature: sig };
    if !sign::history_ok(&c.app.keys.leancloud, conv, &h, now) {
        return Err(LcError::signature_failed());
    }
    Ok(())
}

pub async fn history(
    State(s): State<LcState>,
    Extension(kind): Extension<ConvKind>,
    c: Client,
    Path(id): Path<String>,
    p: Params,
) -> Reply {
    let conv = lookup(&s, &c, &id, Some(kind)).await?;
    let q = history_query(&s, &c.app, &p, HistoryScope::Conv(conv.id), c.app.limits.history_max_limit).await?;
    records(&s, &c.app, s.engine.messages().history(&c.app, &q).await?).await
}

pub async fn client_history(State(s): State<LcState>, Master(c): Master, Path(client): Path<String>, p: Params) -> Reply {
    let q = history_query(&s, &c.app, &p, HistoryScope::Sender(client), c.app.limits.history_max_limit).await?;
    records(&s, &c.app, s.engine.messages().history(&c.app, &q).await?).await
}

pub async fn app_history(State(s): State<LcState>, Master(c): Master, p: Params) -> Reply {
    let q = history_query(&s, &c.app, &p, HistoryScope::App, c.app.limits.history_max_limit).await?;
    records(&s, &c.app, s.engine.messages().history(&c.app, &q).await?).await
}

/// `(from_client, timestamp)` naming a message, from a body or a query string; the message id
/// is confab's or, for an imported message, the msg-id it had.
async fn message_ref(s: &LcState, c: &Client, id: &str, from: String, timestamp: i64) -> LcResult<MessageRef> {
    Ok(MessageRef { id: crate::extract::find_message_id(&s.engine, &c.app, id).await?, from: Some(from), timestamp: Some(timestamp) })
}

pub async fn edit(
    State(s): State<LcState>,
    Extension(kind): Extension<ConvKind>,
    Master(c): Master,
    Path((id, mid)): Path<(String, String)>,
    b: Body,
) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_MESSAGE).await?;
    let conv = lookup(&s, &c, &id, Some(kind)).await?;
    let text = b.opt_text("message")?.ok_or_else(|| LcError::missing("message"))?;
    let r = message_ref(&s, &c, &mid, b.req_str("from_client")?, b.req_i64("timestamp")?).await?;
    if kind == ConvKind::Service {
        to_clients(&b, &c, "to_clients")?;
    }
    s.engine
        .messages()
        .edit_message(&c.app, &conv, &r, Edit::content(Content::Text(text.clone()), lctype(&text)), &Actor::Admin, None)
        .await?;
    Ok(Json(json!({})))
}

pub async fn recall(
    State(s): State<LcState>,
    Extension(kind): Extension<ConvKind>,
    Master(c): Master,
    Path((id, mid)): Path<(String, String)>,
    b: Body,
) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_MESSAGE).await?;
    let conv = lookup(&s, &c, &id, Some(kind)).await?;
    let r = message_ref(&s, &c, &mid, b.req_str("from_client")?, b.req_i64("timestamp")?).await?;
    if kind == ConvKind::Service {
        to_clients(&b, &c, "to_clients")?;
    }
    s.engine.messages().recall_message(&c.app, &conv, &r, &Actor::Admin, None).await?;
    Ok(Json(json!({})))
}

/// `from_client` and `timestamp` of a DELETE, from the query string (or a JSON body).
async fn delete_ref(s: &LcState, c: &Client, mid: &str, p: &Params, b: &Body) -> LcResult<MessageRef> {
    let from = match p.get("from_client") {
        Some(f) => f.to_string(),
        None => b.req_str("from_client")?,
    };
    let ts = match p.i64("timestamp")? {
        Some(t) => t,
        None => b.req_i64("timestamp")?,
    };
    message_ref(s, c, mid, from, ts).await
}

pub async fn delete(
    State(s): State<LcState>,
    Extension(kind): Extension<ConvKind>,
    Master(c): Master,
    Path((id, mid)): Path<(String, String)>,
    p: Params,
    b: Body,
) -> Reply {
    let conv = lookup(&s, &c, &id, Some(kind)).await?;
    let r = delete_ref(&s, &c, &mid, &p, &b).await?;
    s.engine.messages().delete_message(&c.app, &conv, &r).await?;
    Ok(Json(json!({})))
}

// ---------------------------------------------------------------------- service conversations

pub async fn subscriber_history(
    State(s): State<LcState>,
    Master(c): Master,
    Path((id, client)): Path<(String, String)>,
    p: Params,
) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Service)).await?;
    let q = history_query(&s, &c.app, &p, HistoryScope::ConvAs { conv: conv.id, user: client }, c.app.limits.history_max_limit).await?;
    records(&s, &c.app, s.engine.messages().history(&c.app, &q).await?).await
}

pub async fn subscriber_delete(
    State(s): State<LcState>,
    Master(c): Master,
    Path((id, client, mid)): Path<(String, String, String)>,
    p: Params,
    b: Body,
) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Service)).await?;
    let r = delete_ref(&s, &c, &mid, &p, &b).await?;
    s.engine.messages().hide_message(&c.app, &conv, &r, &client).await?;
    Ok(Json(json!({})))
}

/// A service conversation's message to all its subscribers.
pub async fn to_subscribers(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>, b: Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_SUBSCRIPTION).await?;
    let conv = lookup(&s, &c, &id, Some(ConvKind::Service)).await?;
    let msg = subscriber_broadcast(&s, &c, &conv, &b, "from_client").await?;
    Ok(Json(render::sent(msg.0, msg.1)))
}

pub async fn subscriber_broadcast(
    s: &LcState,
    c: &Client,
    conv: &confab_engine::model::Conversation,
    b: &Body,
    from_key: &str,
) -> LcResult<(i64, i64)> {
    let text = b.opt_text("message")?.ok_or_else(|| LcError::missing("message"))?;
    let new = NewMessage {
        from: b.req_str(from_key)?,
        mtype: lctype(&text),
        content: Some(Content::Text(text)),
        push_data: b.opt_text("push")?,
        from_ip: c.ip.clone(),
        ..Default::default()
    };
    let msg = s.engine.messages().send_message(&c.app, conv, new, &Actor::Admin).await?;
    Ok((msg.id, msg.timestamp))
}
