//! The conversation list: a user's one-to-one conversations and groups, each with its unread
//! count and last message, as the REST API (`/users/{username}/user_channels`, paged) and the
//! SDK (`/sdk/user/{username}/user_channels/list`, `getServerConversations`,
//! `getServerPinnedConversations`, `getServerConversationsByFilter`) show it; pinning
//! (`pinConversation`, kept per user in the keyed collection `conversation_pins`), marks
//! (`addConversationMark`, `removeConversationMark`: `conversation_marks`) and removal from the
//! list (`deleteConversation`).
//!
//! Unread counts come from the engine's unread summary (one call for the whole list), last
//! messages from the user's own view of each conversation's history.

use std::collections::HashMap;

use axum::extract::State;
use confab_engine::entries::ns;
use confab_engine::limits::bucket;
use confab_engine::model::{App, ConvKind, Conversation};
use confab_engine::query::{HistoryQuery, HistoryScope};
use confab_engine::{Entry, EntryFilter, EntryQuery, PutRule};
use confab_routes::{delete, get, post};
use serde_json::{json, Value};

use super::{chat_type, payload, str_of};
use crate::auth::{Body, Caller, EmState, Need, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::users::{user_in_path, username};
use crate::Routes;

/// Most conversations the conversation list shows (Easemob keeps 100 per user).
pub const CHANNELS_MAX: i64 = 100;
const CHANNELS_PAGE_DEFAULT: i64 = 20;
/// Marks are `mark_0` to `mark_19` (the SDK's `ConversationMark` 0–19).
const MARKS: usize = 20;

pub fn routes() -> Routes {
    use Need::AppOrUser;
    vec![
        delete("/users/{username}/user_channel", AppOrUser, delete_channel),
        delete("/user/{username}/user_channel", AppOrUser, delete_channel),
        get("/users/{username}/user_channels", AppOrUser, channels),
        get("/user/{username}/user_channels", AppOrUser, channels),
        get("/users/{username}/user_channels/page", AppOrUser, channels),
        get("/sdk/user/{username}/user_channels/list", AppOrUser, sdk_channels),
        post("/sdk/user/{username}/user_channel/top", AppOrUser, pin),
        delete("/sdk/user/{username}/user_channel/top", AppOrUser, unpin),
        get("/sdk/user/{username}/user_channels/mark/search", AppOrUser, sdk_marked),
        post("/sdk/user/{username}/user_channels/mark", AppOrUser, mark),
        delete("/sdk/user/{username}/user_channels/mark", AppOrUser, unmark),
    ]
}

/// The conversation a `(channel, type)` pair names for `user`: a peer (`chat`) or a group
/// (`groupchat`; the SDK writes `groupChat`). None when there is no such conversation.
async fn named(s: &EmState, app: &App, user: &str, channel: &str, kind: &str) -> EmResult<Option<Conversation>> {
    Ok(match kind.to_ascii_lowercase().as_str() {
        "chat" | "singlechat" => match username(channel) {
            Ok(peer) => s.engine.conversations().find_direct_conversation(app, user, &peer).await?,
            Err(_) => None,
        },
        "groupchat" => match channel.trim().parse::<i64>() {
            Ok(id) => s
                .engine
                .conversations()
                .conversation(app, id, None)
                .await
                .ok()
                .filter(|cv| matches!(cv.kind, ConvKind::Normal | ConvKind::Temporary) && !cv.unique),
            Err(_) => None,
        },
        _ => return Err(EmError::illegal("field type must be chat or groupchat")),
    })
}

/// `DELETE /users/{username}/user_channel {channel, type, delete_roam}`: the conversation leaves
/// the user's own list (one-way; the peer keeps it, a new message brings it back), unpinned;
/// with `delete_roam` true its history is erased from the user's own view as well.
async fn delete_channel(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNEL).await?;
    s.engine.apps().rate_check_for(&c.app, bucket::EM_USER_CHANNEL_USER, &user.id).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let channel =
        str_of(o.get("channel")).filter(|v| !v.is_empty()).ok_or_else(|| EmError::illegal("field channel cannot be null or empty"))?;
    let kind = str_of(o.get("type")).filter(|v| !v.is_empty()).ok_or_else(|| EmError::illegal("field type cannot be null or empty"))?;
    let erase = match o.get("delete_roam") {
        Some(Value::Bool(d)) => *d,
        None | Some(Value::Null) => return Err(EmError::illegal("field delete_roam cannot be null")),
        Some(_) => return Err(EmError::bad_body()),
    };
    if let Some(conv) = named(&s, &c.app, &user.id, &channel, &kind).await? {
        // `delete_roam`: the history goes too, from the user's own view (the peer keeps it)
        if erase {
            s.engine.client_state().erase_before(&c.app, &conv, &user.id, s.engine.now() + 1).await?;
        }
        match s.engine.conversations().hide_conversation(&c.app, &conv, &user.id).await {
            Ok(()) | Err(confab_engine::Error::NotMember) => {}
            Err(e) => return Err(e.into()),
        }
        let f = EntryFilter::collection(ns::CONVERSATION_PINS, user.id.clone()).items(vec![conv.id.to_string()]);
        s.engine.collections().delete(&c.app, &f).await?;
        let marks = (0..MARKS).map(|n| format!("{}:mark_{n}", conv.id)).collect();
        s.engine.collections().delete(&c.app, &EntryFilter::collection(ns::CONVERSATION_MARKS, user.id.clone()).items(marks)).await?;
    }
    Ok(c.ctx.envelope(&c.app, "delete", "/users/user_channel").with("entities", json!([])).with("data", json!({"result": "ok"})))
}

/// A conversation of a user's list: when the user pinned it (None: not pinned) and their marks.
struct Row {
    conv: Conversation,
    pinned: Option<i64>,
    marks: Vec<String>,
}

/// A user's list: their conversations (one-to-one and groups), pinned ones first (latest pin
/// first), then by last message, newest first.
async fn list(s: &EmState, app: &App, user: &str) -> EmResult<Vec<Row>> {
    let convs = s.engine.conversations().user_conversations(app, user, CHANNELS_MAX).await?;
    let q = EntryQuery::all(EntryFilter::collection(ns::CONVERSATION_PINS, user));
    let pins: HashMap<i64, i64> =
        s.engine.collections().list(app, &q).await?.into_iter().filter_map(|e| Some((e.item.parse().ok()?, e.updated_at))).collect();
    let mut marks: HashMap<i64, Vec<String>> = HashMap::new();
    for e in s.engine.collections().list(app, &EntryQuery::all(EntryFilter::collection(ns::CONVERSATION_MARKS, user))).await? {
        if let Some((Ok(conv), mark)) = e.item.split_once(':').map(|(c, m)| (c.parse::<i64>(), m)) {
            marks.entry(conv).or_default().push(mark.to_string());
        }
    }
    let mut out: Vec<Row> = convs
        .into_iter()
        .map(|conv| Row { pinned: pins.get(&conv.id).copied(), marks: marks.remove(&conv.id).unwrap_or_default(), conv })
        .collect();
    for r in &mut out {
        r.marks.sort_by_key(|m| m.trim_start_matches("mark_").parse::<usize>().unwrap_or(MARKS));
    }
    out.sort_by_key(|r| std::cmp::Reverse((r.pinned, r.conv.last_message_at.unwrap_or(r.conv.created_at), r.conv.id)));
    Ok(out)
}

/// One conversation of the list as Easemob shows it: `session_to` (the peer, or the group's
/// id), `session_type`, `unread_num`, `is_top` and `update_top_status_time`, `marks`, and `meta`:
/// its last message (`{id, from, to, timestamp, payload}`, the payload a JSON string of the
/// REST message with its chat type), `{}` when it has none.
async fn info(s: &EmState, app: &App, user: &str, row: &Row, unread: i64) -> EmResult<Value> {
    let (conv, pinned) = (&row.conv, row.pinned);
    let direct = conv.unique && conv.kind == ConvKind::Normal;
    let to = if direct {
        let members = s.engine.conversations().members(app, conv).await?;
        members.iter().find(|m| *m != user).cloned().unwrap_or_else(|| user.to_string())
    } else {
        conv.id.to_string()
    };
    let q = HistoryQuery {
        scope: HistoryScope::ConvAs { conv: conv.id, user: user.to_string() },
        older_than: None,
        newer_than: None,
        ascending: false,
        limit: 1,
        mtype: None,
    };
    let meta = match s.engine.messages().history(app, &q).await?.first() {
        Some(m) => {
            let msg_to = if direct && m.from != user { user.to_string() } else { to.clone() };
            let mut pl = payload(m, &msg_to);
            pl["type"] = json!(chat_type(conv));
            json!({"id": m.id.to_string(), "from": m.from, "to": msg_to, "timestamp": m.timestamp, "payload": pl.to_string()})
        }
        None => json!({}),
    };
    Ok(json!({
        "session_to": to,
        "session_type": chat_type(conv),
        "unread_num": unread,
        "is_top": pinned.is_some(),
        "update_top_status_time": pinned.unwrap_or(0),
        "marks": row.marks,
        "meta": meta,
    }))
}

/// Each conversation's unread count (the engine's unread summary; absent: none unread).
async fn unread(s: &EmState, app: &App, user: &str) -> EmResult<HashMap<i64, i64>> {
    let summary = s.engine.messages().unread_summary(app, user, 0, CHANNELS_MAX).await?;
    Ok(summary.into_iter().map(|u| (u.conv, u.count)).collect())
}

/// `GET /user/{username}/user_channels` (and `/users/…`, `/users/…/user_channels/page`): the
/// user's conversations, with each one's unread count and last message. Paged by `limit` +
/// `cursor` or `pageNum` + `pageSize`.
async fn channels(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNELS).await?;
    s.engine.apps().rate_check_for(&c.app, bucket::EM_USER_CHANNELS_USER, &user.id).await?;
    let size = match q.get("pageSize") {
        Some(_) => q.int("pageSize", CHANNELS_PAGE_DEFAULT, 1..=CHANNELS_MAX)?,
        None => q.int("limit", CHANNELS_PAGE_DEFAULT, 1..=CHANNELS_MAX)?,
    };
    let skip = match q.get("pageNum") {
        Some(_) => (q.int("pageNum", 1, 1..=CHANNELS_MAX)? - 1) * size,
        None => q.int("cursor", 0, 0..=CHANNELS_MAX)?,
    };
    let convs = list(&s, &c.app, &user.id).await?;
    let counts = unread(&s, &c.app, &user.id).await?;
    let total = convs.len() as i64;
    let mut infos = Vec::new();
    for r in convs.iter().skip(skip as usize).take(size as usize) {
        infos.push(info(&s, &c.app, &user.id, r, counts.get(&r.conv.id).copied().unwrap_or(0)).await?);
    }
    let mut data = json!({"channel_infos": infos});
    if skip + size < total {
        data["cursor"] = json!((skip + size).to_string());
    }
    Ok(c.ctx.envelope(&c.app, "get", "/users/user_channels").with("entities", json!([])).with("data", data).with("count", json!(total)))
}

/// `GET /sdk/user/{username}/user_channels/list?limit&cursor&need_mark&needEmptySession[&is_top]`:
/// the SDK's list. `is_top=true`: the pinned conversations only; `needEmptySession=true` also
/// lists conversations without messages. `cursor` is where the next page starts ("" at the end).
async fn sdk_channels(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    sdk_list(s, c, p, q, false).await
}

/// `GET /sdk/user/{username}/user_channels/mark/search?limit&cursor&need_mark&mark`: the
/// conversations with that mark (`getServerConversationsByFilter`), as the list shows them.
async fn sdk_marked(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    sdk_list(s, c, p, q, true).await
}

async fn sdk_list(s: EmState, c: Caller, p: P, q: Params, by_mark: bool) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNELS).await?;
    let size = q.int("limit", CHANNELS_PAGE_DEFAULT, 1..=CHANNELS_MAX)?;
    let skip = q.int("cursor", 0, 0..=CHANNELS_MAX)?;
    let (pinned_only, empty_too) = (q.bool("is_top")?, q.bool("needEmptySession")?);
    let mark = if by_mark { Some(mark_of(q.get("mark"))?) } else { None };
    let convs: Vec<Row> = list(&s, &c.app, &user.id)
        .await?
        .into_iter()
        .filter(|r| match &mark {
            Some(m) => r.marks.contains(m),
            None => (!pinned_only || r.pinned.is_some()) && (empty_too || r.conv.last_seq > 0 || r.pinned.is_some()),
        })
        .collect();
    let counts = unread(&s, &c.app, &user.id).await?;
    let mut infos = Vec::new();
    for r in convs.iter().skip(skip as usize).take(size as usize) {
        infos.push(info(&s, &c.app, &user.id, r, counts.get(&r.conv.id).copied().unwrap_or(0)).await?);
    }
    let next = if skip + size < convs.len() as i64 { (skip + size).to_string() } else { String::new() };
    let data = json!({"channel_infos": infos, "cursor": next});
    Ok(c.ctx.envelope(&c.app, "get", "/sdk/user/user_channels/list").with("entities", json!([])).with("data", data))
}

/// A mark as the SDK names it: `mark_0` to `mark_19`.
fn mark_of(v: Option<&str>) -> EmResult<String> {
    v.map(str::trim)
        .filter(|m| {
            m.strip_prefix("mark_")
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n < MARKS)
        })
        .map(str::to_string)
        .ok_or_else(|| EmError::illegal(format!("mark must be mark_0 to mark_{}", MARKS - 1)))
}

/// `POST /sdk/user/{username}/user_channels/mark {mark, targets: [{to, type}]}`: mark
/// conversations of the user's; `data.ignore` names the targets that are not.
async fn mark(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    marking(s, c, p, b, true).await
}

/// `DELETE /sdk/user/{username}/user_channels/mark {mark, targets}`: take the mark off them.
async fn unmark(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    marking(s, c, p, b, false).await
}

async fn marking(s: EmState, c: Caller, p: P, b: Value, on: bool) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNEL).await?;
    let mark = mark_of(b.get("mark").and_then(Value::as_str))?;
    let targets =
        b.get("targets").and_then(Value::as_array).filter(|t| !t.is_empty()).ok_or_else(|| EmError::illegal("targets cannot be empty"))?;
    if targets.len() > CHANNELS_MAX as usize {
        return Err(EmError::illegal(format!("at most {CHANNELS_MAX} targets")));
    }
    let (mut items, mut ignored) = (Vec::new(), Vec::new());
    for t in targets {
        let (to, kind) = (str_of(t.get("to")).unwrap_or_default(), str_of(t.get("type")).unwrap_or_default());
        let conv = match named(&s, &c.app, &user.id, &to, &kind).await {
            Ok(Some(cv)) if s.engine.conversations().is_member(&c.app, &cv, &user.id).await? => Some(cv),
            _ => None,
        };
        match conv {
            Some(cv) => items.push(format!("{}:{mark}", cv.id)),
            None => ignored.push(t.clone()),
        }
    }
    match (items.is_empty(), on) {
        (true, _) => {}
        (false, true) => {
            let entries = items.into_iter().map(|i| Entry::new(ns::CONVERSATION_MARKS, user.id.clone(), i, json!({}))).collect();
            s.engine.collections().put(&c.app, entries, PutRule::default()).await?;
        }
        (false, false) => {
            let f = EntryFilter::collection(ns::CONVERSATION_MARKS, user.id.clone()).items(items);
            s.engine.collections().delete(&c.app, &f).await?;
        }
    }
    let action = if on { "post" } else { "delete" };
    Ok(c.ctx.envelope(&c.app, action, "/sdk/user/user_channels/mark").with("entities", json!([])).with("data", json!({"ignore": ignored})))
}

fn no_conversation() -> EmError {
    EmError::new(axum::http::StatusCode::NOT_FOUND, "resource_not_found", "ResourceNotFoundException", "conversation not exist")
}

/// The conversation a pin call names (`{type, to}` in the body or the query), the user's own.
async fn pinned_conv(s: &EmState, c: &Caller, user: &str, to: Option<String>, kind: Option<String>) -> EmResult<Conversation> {
    let to = to.filter(|v| !v.trim().is_empty()).ok_or_else(|| EmError::illegal("to cannot be null or empty"))?;
    let kind = kind.filter(|v| !v.trim().is_empty()).ok_or_else(|| EmError::illegal("type cannot be null or empty"))?;
    let conv = named(s, &c.app, user, &to, &kind).await?.ok_or_else(no_conversation)?;
    if !s.engine.conversations().is_member(&c.app, &conv, user).await? {
        return Err(no_conversation());
    }
    Ok(conv)
}

fn pin_answer(c: &Caller, action: &str, at: Option<i64>) -> Reply {
    let data = json!({"is_top": at.is_some(), "update_top_status_time": at.unwrap_or(0)});
    Ok(c.ctx.envelope(&c.app, action, "/sdk/user/user_channel/top").with("entities", json!([])).with("data", data))
}

/// `POST /sdk/user/{username}/user_channel/top {type, to}`: pin a conversation of the user's.
async fn pin(State(s): State<EmState>, c: Caller, p: P, q: Params, Body(b): Body) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNEL).await?;
    let field = |k: &str| str_of(b.get(k)).or_else(|| q.get(k).map(str::to_string));
    let conv = pinned_conv(&s, &c, &user.id, field("to"), field("type")).await?;
    let now = s.engine.now();
    let e = Entry::new(ns::CONVERSATION_PINS, user.id.clone(), conv.id.to_string(), json!({"at": now}));
    s.engine.collections().put(&c.app, vec![e], PutRule::default()).await?;
    pin_answer(&c, "post", Some(now))
}

/// `DELETE /sdk/user/{username}/user_channel/top?type&to`: unpin it.
async fn unpin(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_USER_CHANNEL).await?;
    let conv = pinned_conv(&s, &c, &user.id, q.get("to").map(str::to_string), q.get("type").map(str::to_string)).await?;
    let f = EntryFilter::collection(ns::CONVERSATION_PINS, user.id.clone()).items(vec![conv.id.to_string()]);
    s.engine.collections().delete(&c.app, &f).await?;
    pin_answer(&c, "delete", None)
}
