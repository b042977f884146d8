//! `/message/*`: send, notify, recall, ack, unread, conversation history and delete.
//!
//! A MaxIM conversation id is, from the acting user's side, the other user's id (one-to-one) or
//! the group's id; both come from the engine's one id space, so they never collide.

use std::collections::HashMap;

use axum::extract::State;
use confab_engine::model::{Content, Conversation, Cursor, Member, Message, User};
use confab_engine::query::{Bound, HistoryQuery, HistoryScope};
use confab_engine::{Actor, Edit, MessageRef, NewMessage, Position};
use serde_json::{json, Map, Value};

use crate::auth::{Body, Caller, Fields, MxState, Params};
use crate::envelope::{code, Data, MxError, MxResult, Reply};
use crate::groups::group;
use crate::render;

/// Most targets one send may name.
pub const TARGETS_MAX: usize = 100;
/// `/message/conversation`: default and largest page.
const PAGE_DEFAULT: i64 = 20;
const PAGE_MAX: i64 = 100;
/// Content types that act on an earlier message (`related_mid`) instead of being one.
const READ_ACK: i64 = 9;
const RECALL: i64 = 10;
const APPEND: i64 = 11;
const REPLACE: i64 = 12;

fn no_message() -> MxError {
    MxError::new(code::NO_SUCH_MESSAGE, "no such message in this conversation")
}

/// The conversation an id names from `me`'s side: with another user (their one-to-one
/// conversation, made on first use when `create`) or a group.
async fn conversation_for(s: &MxState, c: &Caller, me: &User, id: i64, create: bool) -> MxResult<Option<Conversation>> {
    if let Ok(peer) = s.engine.users().user_by_num(&c.app, id).await {
        return Ok(if create {
            Some(s.engine.conversations().direct_conversation(&c.app, &me.id, &peer.id).await?)
        } else {
            s.engine.conversations().find_direct_conversation(&c.app, &me.id, &peer.id).await?
        });
    }
    Ok(Some(group(s, c, id).await?))
}

/// The sender of a send: the acting user, or (admin token alone) `from_user_id`.
async fn sender(s: &MxState, c: &Caller, b: &Body) -> MxResult<User> {
    let from = b.opt_i64("from_user_id")?;
    match (&c.user, from) {
        (Some(me), None) => Ok(me.clone()),
        (Some(me), Some(f)) if f == me.num => Ok(me.clone()),
        (Some(_), Some(_)) => Err(MxError::new(code::NO_PERMISSION, "a user sends as themself: from_user_id must be the acting user")),
        (None, Some(f)) => Ok(s.engine.users().user_by_num(&c.app, f).await?),
        (None, None) => Err(MxError::param("from_user_id is required with the admin token")),
    }
}

/// `transaction_id` (the docs' example spells it with a trailing space; both are read).
fn transaction_id(b: &Body) -> MxResult<Option<i64>> {
    match b.opt_i64("transaction_id")? {
        Some(t) => Ok(Some(t)),
        None => b.opt_i64("transaction_id "),
    }
}

/// `POST|PUT /message/send`.
pub async fn send(State(s): State<MxState>, c: Caller, b: Body) -> Reply {
    send_or_notify(s, c, b, false).await
}

/// `transaction_id`s are told apart per endpoint and sender.
fn dedup_key(system: bool, from: &User, t: i64) -> String {
    format!("maxim:{}:{}:{t}", if system { "notify" } else { "send" }, from.id)
}

/// `POST|PUT /message/notify`: the same, flagged as a system notification.
pub async fn notify(State(s): State<MxState>, c: Caller, b: Body) -> Reply {
    send_or_notify(s, c, b, true).await
}

async fn send_or_notify(s: MxState, c: Caller, b: Body, system: bool) -> Reply {
    let kind = b.req_i64("type")?;
    if !(1..=2).contains(&kind) {
        return Err(MxError::param("type must be 1 (users) or 2 (groups)"));
    }
    let targets = b.ids("targets", TARGETS_MAX)?;
    if targets.is_empty() {
        return Err(MxError::param("targets must name at least one user or group"));
    }
    let ctype = b.req_i64("content_type")?;
    let mtype = render::engine_type(ctype);
    if mtype.is_none() && !(READ_ACK..=REPLACE).contains(&ctype) {
        return Err(MxError::param(format!("content_type {ctype} is not one of 0-7, 9-12")));
    }
    let related = if mtype.is_none() { Some(b.req_i64("related_mid")?) } else { None };
    let content = b.opt_str("content")?.unwrap_or_default();
    let mut ext = Map::new();
    for k in ["attachment", "ext", "config"] {
        if let Some(v) = b.opt_str(k)? {
            ext.insert(k.to_string(), Value::String(v));
        }
    }
    let online_only = b.opt_bool("online_only")?.unwrap_or(false);
    let from = sender(&s, &c, &b).await?;
    let actor = if c.user.is_some() { Actor::User(from.id.clone()) } else { Actor::Admin };
    let new = || NewMessage {
        from: from.id.clone(),
        content: Some(Content::Text(content.clone())),
        mtype: mtype.unwrap_or_default(),
        ext: (!ext.is_empty()).then(|| Value::Object(ext.clone())),
        transient: online_only,
        system,
        ..Default::default()
    };
    let run = || async {
        // every target is resolved (and, for a user, every message checked) before any is sent:
        // a bad target fails the call with nothing sent
        let mut convs = Vec::with_capacity(targets.len());
        if kind == 1 {
            let mut peers = Vec::with_capacity(targets.len());
            for target in &targets {
                peers.push(s.engine.users().user_by_num(&c.app, *target).await?);
            }
            for peer in peers {
                convs.push(s.engine.conversations().direct_conversation(&c.app, &from.id, &peer.id).await?);
            }
        } else {
            for target in &targets {
                convs.push(group(&s, &c, *target).await.map_err(|_| confab_engine::Error::ConversationNotFound)?);
            }
        }
        if related.is_none() && actor.user().is_some() {
            for conv in &convs {
                s.engine.messages().check_message(&c.app, conv, &new()).await?;
            }
        }
        let mut ids = Vec::new();
        for conv in convs {
            let Some(related) = related else {
                ids.push(s.engine.messages().send_message(&c.app, &conv, new(), &actor).await?.id);
                continue;
            };
            let r = MessageRef { id: related, from: actor.user().map(str::to_string), timestamp: None };
            match ctype {
                READ_ACK => s.engine.messages().advance_cursor(&c.app, &conv, &from.id, Cursor::Read, Position::Message(related)).await?,
                RECALL => {
                    s.engine.messages().recall_message(&c.app, &conv, &MessageRef { from: None, ..r }, &actor, None).await?;
                }
                _ => {
                    let old = s.engine.messages().message(&c.app, related).await?;
                    let text = match (&old.content, ctype) {
                        (Content::Text(t), APPEND) => format!("{t}{content}"),
                        _ => content.clone(),
                    };
                    s.engine
                        .messages()
                        .edit_message(&c.app, &conv, &r, Edit::content(Content::Text(text), old.mtype), &actor, None)
                        .await?;
                }
            }
        }
        Ok(json!(ids))
    };
    let ids = match transaction_id(&b)? {
        Some(t) => s.engine.apps().once(&c.app, dedup_key(system, &from, t), run).await?,
        None => run().await?,
    };
    Ok(Data::of(json!(true)).with("msg_ids", ids))
}

/// `POST|PUT /message/recall {conversation_id, msg_id}`: the sender (or the admin token) recalls.
pub async fn recall(State(s): State<MxState>, c: Caller, b: Body) -> Reply {
    let conversation = b.req_i64("conversation_id")?;
    let msg = s.engine.messages().message(&c.app, b.req_i64("msg_id")?).await.map_err(|_| no_message())?;
    let conv = match &c.user {
        Some(me) => conversation_for(&s, &c, me, conversation, false).await?.filter(|cv| cv.id == msg.conv).ok_or_else(no_message)?,
        None => s.engine.conversations().conversation(&c.app, msg.conv, None).await?,
    };
    let r = MessageRef { id: msg.id, from: None, timestamp: None };
    s.engine.messages().recall_message(&c.app, &conv, &r, &c.actor(), None).await?;
    Ok(Data::of(json!(true)))
}

/// `GET /message/ack?conversation_id&device_sn&msg_id`: the acting user has read up to `msg_id`
/// (all earlier messages too). `device_sn` is accepted; confab keeps one read position per user.
pub async fn ack(State(s): State<MxState>, c: Caller, p: Params) -> Reply {
    let me = c.me()?.clone();
    let conv = conversation_for(&s, &c, &me, p.req_i64("conversation_id")?, false).await?.ok_or_else(no_message)?;
    p.opt_i64("device_sn")?;
    let mid = p.req_i64("msg_id")?;
    s.engine.messages().advance_cursor(&c.app, &conv, &me.id, Cursor::Read, Position::Message(mid)).await.map_err(|e| match e {
        confab_engine::Error::MessageNotFound => no_message(),
        e => e.into(),
    })?;
    Ok(Data::of(json!(true)))
}

/// From `me`'s side, the id of a conversation: the other member of a one-to-one conversation,
/// or the group.
fn peer_uid(conv: &Conversation, members: &[Member], me: &str, nums: &HashMap<String, i64>) -> i64 {
    if confab_engine::conv::Conversations::is_direct(conv, members) {
        if let Some(other) = members.iter().find(|m| m.user != me) {
            return nums.get(&other.user).copied().unwrap_or(0);
        }
    }
    conv.id
}

async fn nums(s: &MxState, c: &Caller, ids: impl IntoIterator<Item = String>) -> MxResult<HashMap<String, i64>> {
    let ids: Vec<String> = ids.into_iter().collect();
    Ok(s.engine.users().by_ids(&c.app, &ids).await?.into_iter().map(|(id, u)| (id, u.num)).collect())
}

/// `GET /message/unread`: the acting user's conversations with unread messages.
pub async fn unread(State(s): State<MxState>, c: Caller) -> Reply {
    let me = c.me()?.clone();
    let entries = s.engine.messages().unread_summary(&c.app, &me.id, 0, 1000).await?;
    let ids: Vec<i64> = entries.iter().map(|e| e.conv).collect();
    let members = s.engine.conversations().members_of(&c.app, &ids).await?;
    let n = nums(&s, &c, members.values().flatten().map(|m| m.user.clone())).await?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let conv = s.engine.conversations().conversation(&c.app, e.conv, None).await?;
        let ms = members.get(&e.conv).map(Vec::as_slice).unwrap_or_default();
        out.push(json!({"conversation_id": {"uid": peer_uid(&conv, ms, &me.id, &n), "device_sn": 0}, "num": e.count}));
    }
    Ok(Data::of(Value::Array(out)))
}

/// What a message's recipients did with it, as the viewer sees it.
fn status(m: &Message, me: &str, members: &[Member]) -> &'static str {
    let (read, delivered) = if m.from == me {
        let others = members.iter().filter(|x| x.user != me);
        (others.clone().any(|x| x.read_seq >= m.seq), others.clone().any(|x| x.delivered_seq >= m.seq))
    } else {
        members.iter().find(|x| x.user == me).map_or((false, false), |x| (x.read_seq >= m.seq, x.delivered_seq >= m.seq))
    };
    if read {
        "READ"
    } else if delivered {
        "DELIVERED"
    } else {
        "UNREAD"
    }
}

/// `GET /message/conversation?opposite_id&msg_id_start&limit`: history, newest first, starting
/// at `msg_id_start` (included; 0 or absent: the newest message) and going back `limit`
/// messages (default 20, at most 100). `next_msg_id` is the next older message, to pass as
/// `msg_id_start` for the next page; paging so walks the whole history exactly once. Recalled
/// messages are left out.
pub async fn history(State(s): State<MxState>, c: Caller, p: Params) -> Reply {
    let me = c.me()?.clone();
    let Some(conv) = conversation_for(&s, &c, &me, p.req_i64("opposite_id")?, false).await? else {
        return Ok(Data::of(json!({"is_last": true, "next_msg_id": 0, "messages": []})));
    };
    s.engine.conversations().member(&c.app, &conv, &me.id).await?;
    let start = match p.opt_i64("msg_id_start")?.unwrap_or(0) {
        0 => None,
        id => {
            let m = s.engine.messages().message(&c.app, id).await.ok().filter(|m| m.conv == conv.id).ok_or_else(no_message)?;
            Some(Bound { timestamp: m.timestamp, id: Some(m.id), inclusive: true })
        }
    };
    let limit = p.opt_i64("limit")?.filter(|l| *l > 0).unwrap_or(PAGE_DEFAULT).min(PAGE_MAX);
    let q = HistoryQuery {
        scope: HistoryScope::Conv(conv.id),
        older_than: start,
        newer_than: None,
        ascending: false,
        limit: limit + 1,
        mtype: None,
    };
    let mut msgs = s.engine.messages().history(&c.app, &q).await?;
    let next = if msgs.len() as i64 > limit { msgs.pop().map(|m| m.id) } else { None };
    let members = s.engine.conversations().members_of(&c.app, &[conv.id]).await?.remove(&conv.id).unwrap_or_default();
    let n = nums(&s, &c, members.iter().map(|m| m.user.clone()).chain(msgs.iter().map(|m| m.from.clone()))).await?;
    let direct = confab_engine::conv::Conversations::is_direct(&conv, &members);
    let items: Vec<Value> = msgs
        .iter()
        .filter(|m| m.recalled_at.is_none())
        .map(|m| {
            let from = n.get(&m.from).copied().unwrap_or(0);
            let to = if direct { peer_uid(&conv, &members, &m.from, &n) } else { conv.id };
            render::message(m, from, to, status(m, &me.id, &members))
        })
        .collect();
    Ok(Data::of(json!({"is_last": next.is_none(), "next_msg_id": next.unwrap_or(0), "messages": items})))
}

/// `DELETE /message/conversation?conversation_id=`: removes it from the acting user's own list
/// (nothing in it is unread any more); the other side keeps it, and history stays.
pub async fn delete(State(s): State<MxState>, c: Caller, p: Params) -> Reply {
    let me = c.me()?.clone();
    let conv = conversation_for(&s, &c, &me, p.req_i64("conversation_id")?, false)
        .await?
        .ok_or_else(|| MxError::new(code::NO_SUCH_GROUP, "no such conversation"))?;
    s.engine.conversations().hide_conversation(&c.app, &conv, &me.id).await?;
    Ok(Data::of(json!(true)))
}
