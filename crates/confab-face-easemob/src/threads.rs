//! Threads of group messages (§3.14). A thread is the engine's: a `Thread` conversation hanging
//! from a group message, whose members must be the group's (`confab_engine::threads`). Answers
//! are Usergrid-like without `count`, with `properties.cursor`; errors are `group_error`.
//!
//! The SDK's calls (specs/easemob-msync.md §12.6) take a user's token under the engine's thread
//! rules: a group member creates (owning it), joins, reads details, members, the group's threads
//! and last messages; a member leaves; the thread's owner or the group's owner or an admin renames
//! and destroys; the group's owner or an admin removes a member. A user refused: 403
//! `forbidden_op`.

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::limits::bucket;
use confab_engine::model::{App, ConvKind, Conversation, Member};
use confab_engine::query::{HistoryQuery, HistoryScope};
use confab_engine::{Actor, Error};
use confab_routes::{delete, get, post, put};
use serde_json::{json, Value};

use crate::auth::Need;
use crate::auth::{Admin, Body, Caller, Ctx, EmState, Params, P};
use crate::envelope::{Answer, EmError, EmResult, Reply};
use crate::rooms::{conv_of, existing_user, Family};
use crate::users::{decode_cursor, encode_cursor, user_in_path, username};
use crate::Routes;

/// Most users one member call may name.
pub const THREAD_BATCH_MAX: usize = 10;
/// Page size range and default of the thread lists.
const PAGE_MAX: i64 = 50;
/// Most threads one last-message call may name.
const LAST_MESSAGES_MAX: usize = 20;

pub fn routes() -> Routes {
    use Need::{App, AppOrUser, Token};
    vec![
        post("/thread", Token, create),
        get("/thread", App, list_app),
        post("/thread/message", Token, last_messages),
        get("/thread/{thread_id}", Token, detail),
        put("/thread/{thread_id}", Token, rename),
        delete("/thread/{thread_id}", Token, remove),
        get("/thread/{thread_id}/users", Token, members),
        delete("/thread/{thread_id}/users/{username}", Token, remove_member),
        post("/thread/{thread_id}/user/{username}/join", AppOrUser, join),
        delete("/thread/{thread_id}/user/{username}/quit", AppOrUser, quit),
        get("/threads/chatgroups/{group_id}", Token, list_group),
        post("/thread/{thread_id}/users", App, add_members),
        delete("/thread/{thread_id}/users", App, remove_members),
        delete("/threads/{thread_id}/users", App, remove_members),
        get("/threads/user/{username}", AppOrUser, list_user),
        get("/threads/chatgroups/{group_id}/user/{username}", AppOrUser, list_user_in_group),
    ]
}

fn group_error(status: StatusCode, description: &str) -> EmError {
    EmError::new(status, "group_error", "com.easemob.group.exception.GroupErrorException", description)
}

fn thread_not_found() -> EmError {
    group_error(StatusCode::NOT_FOUND, "thread not found.")
}

/// The thread a path names.
async fn thread_of(s: &EmState, app: &App, p: &P) -> EmResult<Conversation> {
    let id: i64 = p.get("thread_id")?.trim().parse().map_err(|_| thread_not_found())?;
    s.engine.conversations().conversation(app, id, Some(ConvKind::Thread)).await.map_err(|_| thread_not_found())
}

/// The envelope of the thread calls: no `count`; `properties.cursor` when one is given.
fn answer(ctx: &Ctx, app: &App, action: &str, cursor: Option<String>) -> Answer {
    let properties = match cursor {
        Some(k) => json!({"cursor": k}),
        None => json!({}),
    };
    ctx.envelope(app, action, "/thread").with("properties", properties)
}

/// A string or number field (`group_id`, `msg_id` come either way).
fn id_field(b: &Value, k: &str) -> EmResult<Option<String>> {
    match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(EmError::new(StatusCode::BAD_REQUEST, "param_illegal", "ParamIllegalException", "Failed to read HTTP message")),
    }
}

fn name_error() -> EmError {
    group_error(StatusCode::BAD_REQUEST, "thread name limit reached.")
}

/// `POST /thread {group_id, name, owner, msg_id}` → `data.thread_id`.
async fn create(State(s): State<EmState>, c: Caller, Body(b): Body) -> Reply {
    let (app, ctx) = (&c.app, &c.ctx);
    s.engine.apps().rate_check(app, bucket::EM_THREAD_CREATE).await?;
    let gid = id_field(&b, "group_id")?.ok_or_else(|| group_error(StatusCode::BAD_REQUEST, "group_id must be provided."))?;
    let msg = id_field(&b, "msg_id")?.ok_or_else(|| group_error(StatusCode::BAD_REQUEST, "thread must on group message to create."))?;
    let name = b.get("name").and_then(Value::as_str).ok_or_else(name_error)?;
    let owner_raw = match (b.get("owner").and_then(Value::as_str), &c.user) {
        (Some(o), _) => o.to_string(),
        // a user's token: the caller owns it
        (None, Some(u)) => u.id.clone(),
        (None, None) => return Err(group_error(StatusCode::BAD_REQUEST, "owner must be provided.")),
    };
    let group = conv_of(&s.engine, app, Family::Group, &gid).await.map_err(|_| group_error(StatusCode::NOT_FOUND, "group not found."))?;
    let owner = existing_user(&s.engine, app, &owner_raw).await?;
    if c.user.as_ref().is_some_and(|u| u.id != owner) {
        return Err(EmError::forbidden("a user creates threads it owns"));
    }
    let msg: i64 = msg.trim().parse().map_err(|_| group_error(StatusCode::NOT_FOUND, "msg not exist."))?;
    let thread = s.engine.threads().create_thread(app, &group, msg, name, &owner).await.map_err(|e| match e {
        Error::Invalid(_) => name_error(),
        Error::NotMember if c.user.is_some() => EmError::forbidden(format!("user {owner} is not in group {}", group.id)),
        Error::NotMember => group_error(StatusCode::NOT_FOUND, "user not in group."),
        Error::MessageNotFound => group_error(StatusCode::NOT_FOUND, "msg not exist."),
        Error::NotAllowed(_) => group_error(StatusCode::FORBIDDEN, "msg already create thread.not allow to create."),
        Error::TooMany { .. } => group_error(StatusCode::FORBIDDEN, "thread number has reached limit."),
        e => e.into(),
    })?;
    Ok(answer(ctx, app, "post", None).with("data", json!({"thread_id": thread.id.to_string()})))
}

/// `PUT /thread/{thread_id} {name}` → `data.name`.
async fn rename(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_UPDATE).await?;
    let thread = thread_of(&s, &c.app, &p).await?;
    let name = b.get("name").and_then(Value::as_str).ok_or_else(name_error)?;
    let done = match &c.user {
        None => s.engine.threads().rename_thread(&c.app, &thread, name, &Actor::Admin).await,
        Some(u) => s.engine.threads().rename_thread_as(&c.app, &thread, name, &u.id).await,
    };
    done.map_err(|e| match e {
        Error::Invalid(_) => name_error(),
        e => user_error(e),
    })?;
    Ok(answer(&c.ctx, &c.app, "put", None).with("data", json!({"name": name})))
}

/// A thread rule refusing a user: 403 `forbidden_op`.
fn user_error(e: Error) -> EmError {
    match e {
        Error::NotMember => EmError::forbidden("user is not a member of the thread's group"),
        Error::NotAllowed(m) => EmError::forbidden(m),
        Error::ConversationNotFound | Error::WrongKind { .. } => thread_not_found(),
        e => e.into(),
    }
}

/// A user's token may read a thread when the user is in its group.
async fn check_reader(s: &EmState, c: &Caller, thread: &Conversation) -> EmResult<()> {
    match &c.user {
        None => Ok(()),
        Some(u) => s.engine.threads().check_reader(&c.app, thread, &u.id).await.map_err(user_error),
    }
}

/// `DELETE /thread/{thread_id}` → `data.status: ok`.
async fn remove(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_DELETE).await?;
    let thread = thread_of(&s, &c.app, &p).await?;
    match &c.user {
        None => s.engine.conversations().delete_conversation(&c.app, thread.id, Some(ConvKind::Thread), &Actor::Admin).await?,
        Some(u) => s.engine.threads().destroy_thread_as(&c.app, &thread, &u.id).await.map_err(user_error)?,
    }
    Ok(answer(&c.ctx, &c.app, "delete", None).with("data", json!({"status": "ok"})))
}

/// `limit` (1–50, default 50) and `sort` (`asc` | `desc`, default `desc`).
fn paging(q: &Params) -> EmResult<(i64, bool)> {
    let limit = q.int("limit", PAGE_MAX, 1..=PAGE_MAX).map_err(|_| group_error(StatusCode::BAD_REQUEST, "query param reaches limit."))?;
    let descending = match q.get("sort") {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(group_error(StatusCode::BAD_REQUEST, "sort is asc or desc.")),
    };
    Ok((limit, descending))
}

fn bad_cursor() -> EmError {
    group_error(StatusCode::BAD_REQUEST, "cursor is not valid.")
}

/// `GET /thread?limit&cursor&sort`: the app's threads by creation, `entities: [{id}]`; a cursor
/// while more remain.
async fn list_app(State(s): State<EmState>, Admin { app, ctx }: Admin, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_THREAD_LIST).await?;
    let (limit, descending) = paging(&q)?;
    let after = q.get("cursor").map(|k| decode_cursor(k).ok_or_else(bad_cursor)).transpose()?;
    let mut threads = s.engine.threads().threads(&app, after, descending, limit + 1).await?;
    let more = threads.len() as i64 > limit;
    threads.truncate(limit as usize);
    let cursor = if more { threads.last().map(|t| encode_cursor(t.id)) } else { None };
    let entities: Vec<Value> = threads.iter().map(|t| json!({"id": t.id.to_string()})).collect();
    Ok(answer(&ctx, &app, "get", cursor).with("entities", json!(entities)))
}

fn thread_entity(m: &Member, t: &Conversation) -> Value {
    let (group, msg) = t.parent.unwrap_or_default();
    json!({
        "name": t.name.clone().unwrap_or_default(),
        "owner": t.creator.clone().unwrap_or_default(),
        "id": t.id.to_string(),
        "msgId": msg.to_string(),
        "groupId": group.to_string(),
        "created": t.created_at,
        "joined": m.joined_at,
    })
}

/// A user's threads (all, or in one group) by joining time; the cursor is always given while
/// the page had rows, and an empty page ends the list, as Easemob's.
async fn user_threads(s: &EmState, c: &Caller, p: &P, q: &Params, group: Option<i64>) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_USER).await?;
    let u = user_in_path(&s.engine, &c.app, p, "username").await?;
    c.may_act_for(&u.id)?;
    let (limit, descending) = paging(q)?;
    let after = match q.get("cursor") {
        None => None,
        Some(k) => {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k).map_err(|_| bad_cursor())?;
            let text = String::from_utf8(raw).map_err(|_| bad_cursor())?;
            let (a, b) = text.split_once(':').ok_or_else(bad_cursor)?;
            Some((a.parse().map_err(|_| bad_cursor())?, b.parse().map_err(|_| bad_cursor())?))
        }
    };
    let (rows, next) = s.engine.threads().user_threads(&c.app, &u.id, group, after, descending, limit).await?;
    let cursor = next.map(|(a, b)| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{a}:{b}"))
    });
    let entities: Vec<Value> = rows.iter().map(|(m, t)| thread_entity(m, t)).collect();
    Ok(answer(&c.ctx, &c.app, "get", cursor).with("entities", json!(entities)))
}

/// `GET /threads/user/{username}?limit&cursor&sort`.
async fn list_user(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    user_threads(&s, &c, &p, &q, None).await
}

/// `GET /threads/chatgroups/{group_id}/user/{username}?limit&cursor&sort`.
async fn list_user_in_group(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let group = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?)
        .await
        .map_err(|_| group_error(StatusCode::NOT_FOUND, "group not found."))?;
    user_threads(&s, &c, &p, &q, Some(group.id)).await
}

/// `GET /thread/{thread_id}/users?limit&cursor`: `data.affiliations`, in joining order.
async fn members(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let (app, ctx) = (&c.app, &c.ctx);
    s.engine.apps().rate_check(app, bucket::EM_THREAD_USERS).await?;
    let thread = thread_of(&s, app, &p).await?;
    check_reader(&s, &c, &thread).await?;
    let limit = q.int("limit", PAGE_MAX, 1..=PAGE_MAX).map_err(|_| group_error(StatusCode::BAD_REQUEST, "query param reaches limit."))?;
    let skip = q.get("cursor").map(|k| decode_cursor(k).filter(|n| *n >= 0).ok_or_else(bad_cursor)).transpose()?.unwrap_or(0);
    let all = s.engine.conversations().members(app, &thread).await?;
    let page: Vec<&String> = all.iter().skip(skip as usize).take(limit as usize).collect();
    let next = skip + page.len() as i64;
    let cursor = (next < all.len() as i64).then(|| encode_cursor(next));
    Ok(answer(ctx, app, "get", cursor).with("data", json!({"affiliations": page})))
}

/// `{"usernames": [...]}`, 1 to 10 names.
fn batch(b: &Value) -> EmResult<Vec<String>> {
    let too_many = || group_error(StatusCode::BAD_REQUEST, "request body reaches limit.");
    let a =
        b.get("usernames").and_then(Value::as_array).ok_or_else(|| group_error(StatusCode::BAD_REQUEST, "usernames must be provided."))?;
    if a.is_empty() || a.len() > THREAD_BATCH_MAX {
        return Err(too_many());
    }
    a.iter()
        .map(|v| {
            let raw = v.as_str().ok_or_else(|| group_error(StatusCode::BAD_REQUEST, "usernames must be strings."))?;
            username(raw).map_err(|_| EmError::not_found(format!("username {raw} doesn't exist!")))
        })
        .collect()
}

/// `POST /thread/{thread_id}/users {usernames}`: every user must be in the thread's group; all
/// or none join.
async fn add_members(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_THREAD_USERS_ADD).await?;
    let thread = thread_of(&s, &app, &p).await?;
    let users = batch(&b)?;
    for u in &users {
        existing_user(&s.engine, &app, u).await?;
    }
    s.engine.conversations().add_members(&app, &thread, users, &Actor::Admin).await.map_err(|e| match e {
        Error::NotMember => group_error(StatusCode::FORBIDDEN, "user not in group."),
        e => e.into(),
    })?;
    Ok(answer(&ctx, &app, "post", None).with("data", json!({"status": "ok"})))
}

/// `DELETE /thread/{thread_id}/users {usernames}` (also `/threads/…`): a result per user, in
/// `entities`.
async fn remove_members(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_THREAD_USERS_REMOVE).await?;
    let thread = thread_of(&s, &app, &p).await?;
    let users = batch(&b)?;
    let present = s.engine.conversations().members(&app, &thread).await?;
    let (inside, outside): (Vec<String>, Vec<String>) = users.iter().cloned().partition(|u| present.contains(u));
    if !inside.is_empty() {
        s.engine.conversations().remove_members(&app, &thread, inside, &Actor::Admin).await?;
    }
    let entities: Vec<Value> = users.iter().map(|u| json!({"result": !outside.contains(u), "user": u})).collect();
    Ok(answer(&ctx, &app, "delete", None).with("entities", json!(entities)))
}

/// A thread as its details show it (`getChatThreadDetail`, `joinChatThread`'s `data.detail`):
/// `{id, name, owner, msgId, groupId, created, affiliations_count}`.
async fn detail_of(s: &EmState, app: &App, t: &Conversation) -> EmResult<Value> {
    let (group, msg) = t.parent.unwrap_or_default();
    let count = s.engine.conversations().member_count(app, t).await?;
    Ok(json!({
        "id": t.id.to_string(),
        "name": t.name.clone().unwrap_or_default(),
        "owner": t.creator.clone().unwrap_or_default(),
        "msgId": msg.to_string(),
        "groupId": group.to_string(),
        "created": t.created_at,
        "affiliations_count": count,
    }))
}

/// `GET /thread/{thread_id}`: `data` is the thread's details.
async fn detail(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_LIST).await?;
    let thread = thread_of(&s, &c.app, &p).await?;
    check_reader(&s, &c, &thread).await?;
    let data = detail_of(&s, &c.app, &thread).await?;
    Ok(answer(&c.ctx, &c.app, "get", None).with("data", data))
}

/// `POST /thread/{thread_id}/user/{username}/join`: a member of the group joins the thread;
/// `data.detail` is the thread's details.
async fn join(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_USERS_ADD).await?;
    let thread = thread_of(&s, &c.app, &p).await?;
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.threads().join_thread(&c.app, &thread, &user.id).await.map_err(user_error)?;
    let detail = detail_of(&s, &c.app, &thread).await?;
    Ok(answer(&c.ctx, &c.app, "post", None).with("data", json!({"status": "ok", "detail": detail})))
}

/// `DELETE /thread/{thread_id}/user/{username}/quit`: a member leaves the thread.
async fn quit(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_USERS_REMOVE).await?;
    let thread = thread_of(&s, &c.app, &p).await?;
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.threads().leave_thread(&c.app, &thread, &user.id).await.map_err(|e| match e {
        Error::NotMember => EmError::forbidden(format!("user {} is not a member of the thread", user.id)),
        e => user_error(e),
    })?;
    Ok(answer(&c.ctx, &c.app, "delete", None).with("data", json!({"result": true})))
}

/// `DELETE /thread/{thread_id}/users/{username}`: the group's owner or an admin (or the app)
/// removes one member.
async fn remove_member(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_USERS_REMOVE).await?;
    let thread = thread_of(&s, &c.app, &p).await?;
    let member = existing_user(&s.engine, &c.app, p.get("username")?).await?;
    s.engine.threads().remove_thread_member(&c.app, &thread, &c.actor(), &member).await.map_err(|e| match e {
        Error::NotMember if c.user.is_none() => EmError::forbidden(format!("user {member} is not a member of the thread")),
        e => user_error(e),
    })?;
    Ok(answer(&c.ctx, &c.app, "delete", None).with("data", json!({"result": true, "user": member})))
}

/// `GET /threads/chatgroups/{group_id}?cursor&limit`: the group's threads, newest first, for a
/// member of the group (`entities` as the user lists show them, without `joined`); a cursor
/// while more remain.
async fn list_group(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_LIST).await?;
    let group = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?)
        .await
        .map_err(|_| group_error(StatusCode::NOT_FOUND, "group not found."))?;
    if let Some(u) = &c.user {
        if !s.engine.conversations().is_member(&c.app, &group, &u.id).await? {
            return Err(EmError::forbidden(format!("user {} is not in group {}", u.id, group.id)));
        }
    }
    let limit = q.int("limit", PAGE_MAX, 1..=PAGE_MAX).map_err(|_| group_error(StatusCode::BAD_REQUEST, "query param reaches limit."))?;
    let after = q.get("cursor").map(|k| decode_cursor(k).ok_or_else(bad_cursor)).transpose()?;
    let mut threads = s.engine.threads().group_threads(&c.app, group.id, after, limit + 1).await?;
    let more = threads.len() as i64 > limit;
    threads.truncate(limit as usize);
    let cursor = if more { threads.last().map(|t| encode_cursor(t.id)) } else { None };
    let entities: Vec<Value> = threads
        .iter()
        .map(|t| {
            let (g, m) = t.parent.unwrap_or_default();
            json!({
                "name": t.name.clone().unwrap_or_default(),
                "owner": t.creator.clone().unwrap_or_default(),
                "id": t.id.to_string(),
                "msgId": m.to_string(),
                "groupId": g.to_string(),
                "created": t.created_at,
            })
        })
        .collect();
    Ok(answer(&c.ctx, &c.app, "get", cursor).with("entities", json!(entities)))
}

/// `POST /thread/message {threadIds}` (at most 20): each thread's last message,
/// `entities: [{thread_id, last_message}]`, `last_message` `{id, from, to, timestamp, payload}`
/// (the payload an object, its `type` `groupChat`) or `{}`. Threads the caller may not read, or
/// that do not exist, are left out.
async fn last_messages(State(s): State<EmState>, c: Caller, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_THREAD_LIST).await?;
    let ids = b.get("threadIds").and_then(Value::as_array).ok_or_else(|| EmError::illegal("threadIds must be an array"))?;
    if ids.len() > LAST_MESSAGES_MAX {
        return Err(EmError::illegal(format!("threadIds names at most {LAST_MESSAGES_MAX} threads")));
    }
    let mut entities = Vec::new();
    for v in ids {
        let Some(id) = id_field(&json!({"id": v}), "id").ok().flatten().and_then(|x| x.trim().parse::<i64>().ok()) else { continue };
        let Ok(thread) = s.engine.conversations().conversation(&c.app, id, Some(ConvKind::Thread)).await else { continue };
        if check_reader(&s, &c, &thread).await.is_err() {
            continue;
        }
        let q = HistoryQuery {
            scope: HistoryScope::Conv(thread.id),
            older_than: None,
            newer_than: None,
            ascending: false,
            limit: 1,
            mtype: None,
        };
        let last = match s.engine.messages().history(&c.app, &q).await?.into_iter().find(|m| m.recalled_at.is_none()) {
            Some(m) => {
                let to = thread.id.to_string();
                let mut pl = crate::messages::payload(&m, &to);
                pl["type"] = json!("groupChat");
                json!({"id": m.id.to_string(), "from": m.from, "to": to, "timestamp": m.timestamp, "payload": pl})
            }
            None => json!({}),
        };
        entities.push(json!({"thread_id": thread.id.to_string(), "last_message": last}));
    }
    Ok(answer(&c.ctx, &c.app, "post", None).with("entities", json!(entities)))
}
