//! Easemob / Agora Chat message callbacks (specs/easemob-callbacks.md): the pre-send callback
//! (发送前回调), asked on the send path, which lets a message through, replaces it or blocks it;
//! and the post-send callbacks (发送后回调) — messages, offline messages, recalls, group and
//! chat-room operations, user status — kept in the outbox and delivered by [`EmSink`], with
//! Easemob's one immediate retry and its circuit breaker.
//!
//! Every body carries `security` = lowercase hex MD5 of `callId + secret + timestamp`
//! ([`security`]). Post-send bodies are made when the event happens (their `callId`,
//! `timestamp` and `msg_id` fixed then, or from the outbox item's id and time) and signed when
//! they are delivered, with the secret the app has then.
//!
//! Where confab departs from Easemob: a post-send callback that fails twice is not dropped; the
//! outbox keeps it and tries again with back-off (nothing is lost), and during a breaker ban it
//! waits for the ban to end instead of being skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_engine::model::{App, ConvChange, ConvKind, Conversation, Message, Role};
use confab_engine::{Actor, After, AppNote, Before, ContactOp, Engine, Error, Hooks, Offline, OutboxItem, Refused, Result, Verdict};
use confab_hooks::{CallError, Caller, Delivery, Request, Sink};
use md5::{Digest, Md5};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::messages::{check_body, payload, to_engine};

/// The sink's name in the outbox, and the caller's counters.
pub const SINK: &str = "easemob";
/// The longest answer read (Easemob: a longer one is an attack and fails the callback).
pub const MAX_ANSWER: usize = 1000;
/// The largest replacement `payload` a pre-send answer may carry.
pub const MAX_REPLACEMENT: usize = 1024;
/// How long a post-send callback may take (Easemob documents none).
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// `securityVersion`, documented as "ignore".
pub const SECURITY_VERSION: &str = "1.0.0";
/// The server's name in `host` (Easemob: `msync@ebs-ali-beijing-msync45`).
pub const HOST: &str = "confab";

/// `security`: lowercase hex MD5 of `callId + secret + timestamp`.
pub fn security(call_id: &str, secret: &str, timestamp: i64) -> String {
    let mut h = Md5::new();
    h.update(call_id.as_bytes());
    h.update(secret.as_bytes());
    h.update(timestamp.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// `org#app`.
pub fn appkey(app: &App) -> String {
    format!("{}#{}", app.keys.easemob.org_name, app.keys.easemob.app_name)
}

/// A random UUID (version 4) as text.
fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn is_direct(conv: &Conversation) -> bool {
    conv.kind == ConvKind::Normal && conv.unique
}

/// Groups and chat rooms as Easemob knows them (threads, service and temporary conversations
/// have no muc events).
fn is_muc(conv: &Conversation) -> bool {
    conv.kind == ConvKind::Chatroom || (conv.kind == ConvKind::Normal && !conv.unique)
}

/// The pre-send `chat_type`: `chat`, `groupchat` (the documented examples' value) or `chatroom`.
fn pre_send_chat_type(conv: &Conversation) -> &'static str {
    crate::messages::chat_type(conv)
}

/// The post-send `chat_type` of a message: `chat`, else `groupchat` (groups and chat rooms
/// alike, as the post-send table says; `group_id` names which).
fn post_send_chat_type(conv: &Conversation) -> &'static str {
    if is_direct(conv) {
        "chat"
    } else {
        "groupchat"
    }
}

/// A user as Easemob's event bodies name them: `{appkey}_{user}@easemob.com`.
fn jid(app: &App, user: &str) -> String {
    format!("{}_{user}@easemob.com", appkey(app))
}

// ---------------------------------------------------------------------- pre-send

/// What a pre-send answer said.
#[derive(Debug, PartialEq)]
enum Answer {
    Pass { code: Option<String>, payload: Option<Value> },
    Block { code: Option<String> },
}

/// Read a pre-send answer; `None` when malformed (no boolean `valid`, a `code` neither text nor
/// number, a `payload` not an object).
fn read_answer(body: &[u8]) -> Option<Answer> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let o = v.as_object()?;
    let valid = o.get("valid")?.as_bool()?;
    let code = match o.get("code") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return None,
    };
    if !valid {
        return Some(Answer::Block { code });
    }
    let payload = match o.get("payload") {
        None | Some(Value::Null) => None,
        Some(p @ Value::Object(_)) => Some(p.clone()),
        Some(_) => return None,
    };
    Some(Answer::Pass { code, payload })
}

/// A replacement payload as the message's new content: one `txt` body, ≤ 1 KB; its `ext`
/// replaces the message's when given.
fn replacement(p: &Value) -> Option<(Map<String, Value>, Option<Value>)> {
    if p.to_string().len() > MAX_REPLACEMENT {
        return None;
    }
    let body = p.get("bodies")?.as_array()?.first()?.as_object()?.clone();
    if body.get("type").and_then(Value::as_str) != Some("txt") {
        return None;
    }
    let mut body = body;
    body.remove("type");
    check_body("txt", &body).ok()?;
    let ext = p.get("ext").filter(|e| e.is_object()).cloned();
    Some((body, ext))
}

/// The pre-send callback and the post-send callbacks' bodies, as hooks.
pub struct EmHooks {
    pub caller: Arc<Caller>,
}

impl EmHooks {
    fn pre_send_body(&self, app: &App, conv: &Conversation, msg: &Message, recipients: &[String], by: &str) -> Value {
        let to = if is_direct(conv) {
            recipients.iter().find(|r| *r != by).cloned().unwrap_or_else(|| by.to_string())
        } else {
            conv.id.to_string()
        };
        let call_id = format!("{}_{}", appkey(app), uuid());
        let secret = &app.limits.hooks.easemob.secret;
        let mut p = payload(msg, &to);
        if let Value::Object(o) = &mut p {
            // the request's payload is `{ext, bodies}`; from and to are the body's own fields
            o.remove("from");
            o.remove("to");
        }
        let mut b = json!({
            "callId": call_id,
            "timestamp": msg.timestamp,
            "chat_type": pre_send_chat_type(conv),
            "from": by,
            "to": to,
            "msg_id": msg.id.to_string(),
            "payload": p,
            "securityVersion": SECURITY_VERSION,
            "security": security(&call_id, secret, msg.timestamp),
        });
        if !is_direct(conv) {
            b["group_id"] = json!(conv.id.to_string());
        }
        b
    }

    /// The answer's effect on the message.
    async fn pre_send(&self, app: &App, conv: &Conversation, msg: &mut Message, recipients: &[String], by: &str) -> Result<Verdict> {
        let cfg = &app.limits.hooks.easemob;
        let body = self.pre_send_body(app, conv, msg, recipients, by);
        let request = Request {
            app: app.id,
            sink: SINK,
            name: "pre_send".into(),
            url: cfg.pre_send_url.clone(),
            headers: vec![],
            body: body.to_string().into_bytes(),
            timeout: Duration::from_millis(cfg.pre_send_wait_ms),
            max_answer: MAX_ANSWER,
        };
        let answer = match self.caller.post(request).await {
            Ok(a) if a.status == 200 => match read_answer(&a.body) {
                Some(answer) => Some(answer),
                None => {
                    self.caller.answer_unusable(app.id, SINK, "pre_send");
                    tracing::debug!(app = app.id, "pre-send callback: malformed answer");
                    None
                }
            },
            Ok(a) => {
                tracing::debug!(app = app.id, status = a.status, "pre-send callback: not 200");
                None
            }
            Err(e) => {
                if e != CallError::Busy {
                    tracing::debug!(app = app.id, error = %e, "pre-send callback failed");
                }
                None
            }
        };
        match answer {
            Some(Answer::Pass { payload: None, .. }) => Ok(Verdict::Go),
            Some(Answer::Pass { payload: Some(p), code }) => match replacement(&p) {
                Some((body, ext)) => {
                    let app_ext = ext.or_else(|| msg.ext.as_ref().and_then(|e| e.get("ext")).cloned());
                    let (content, mtype, em_ext) = to_engine("txt", &body, app_ext.as_ref());
                    msg.content = content;
                    msg.mtype = mtype;
                    msg.ext = Some(em_ext);
                    Ok(Verdict::Changed(AppNote { code, detail: None }))
                }
                None => {
                    tracing::debug!(app = app.id, "pre-send callback: a replacement that is not one txt body of at most 1 KB, ignored");
                    Ok(Verdict::Go)
                }
            },
            Some(Answer::Block { code }) if cfg.pre_send_report => Err(AppNote { code, detail: None }.refusing(Refused::Message)),
            Some(Answer::Block { .. }) => Ok(Verdict::Vanish),
            None if cfg.pre_send_policy == "block" => {
                if cfg.pre_send_report {
                    Err(Error::Rejected { action: Refused::Message, code: None, detail: None, failed: true })
                } else {
                    Ok(Verdict::Vanish)
                }
            }
            None => Ok(Verdict::Go),
        }
    }

    /// The message's post-send callbacks: `chat`, and one `chat_offline` per offline recipient.
    fn sent(&self, app: &App, conv: &Conversation, msg: &Message, online: &[String], offline: &[String]) -> Vec<OutboxItem> {
        let direct = is_direct(conv);
        let key = appkey(app);
        let group = (!direct).then(|| conv.id.to_string());
        let item = |event: &str, to: &str| {
            let call_id = if direct { format!("{key}_{}", uuid()) } else { format!("{key}_{}", msg.id) };
            let mut b = json!({
                "callId": call_id,
                "eventType": event,
                "timestamp": msg.timestamp,
                "chat_type": post_send_chat_type(conv),
                "from": msg.from,
                "to": to,
                "msg_id": msg.id.to_string(),
                "payload": payload(msg, group.as_deref().unwrap_or(to)),
            });
            if let Some(g) = &group {
                b["group_id"] = json!(g);
            }
            OutboxItem::new(SINK, event, b)
        };
        let to = match &group {
            Some(g) => g.clone(),
            None => online.iter().chain(offline).next().cloned().unwrap_or_else(|| msg.from.clone()),
        };
        let mut items = vec![item("chat", &to)];
        if app.limits.hooks.easemob.post_send_offline {
            items.extend(offline.iter().map(|u| item("chat_offline", u)));
        }
        items
    }

    fn recalled(&self, conv: &Conversation, msg: &Message, by: &Actor) -> OutboxItem {
        let mut b = json!({
            "eventType": "chat",
            "chat_type": "recall",
            "from": by.user().unwrap_or(&msg.from),
            "recall_id": msg.id.to_string(),
            "payload": {"ext": {}, "ack_message_id": msg.id.to_string(), "bodies": []},
        });
        if let Some(t) = msg.recalled_at {
            b["timestamp"] = json!(t);
        }
        if is_direct(conv) {
            // the peer is looked up when the callback is made
            b["_peer_of"] = json!({"conv": conv.id, "user": msg.from});
        } else {
            b["to"] = json!(conv.id.to_string());
            b["group_id"] = json!(conv.id.to_string());
        }
        OutboxItem::new(SINK, "recall", b)
    }

    /// Group and chat-room operations: one `muc` callback per member concerned (threads: a
    /// `notify` of type `thread`).
    fn muc(&self, app: &App, conv: &Conversation, members: &[String], by: &Actor, what: Muc) -> Vec<OutboxItem> {
        if conv.kind == ConvKind::Thread {
            return self.thread(app, conv, members, by, what);
        }
        if !is_muc(conv) {
            return vec![];
        }
        let room = conv.kind == ConvKind::Chatroom;
        let from = match by {
            Actor::User(u) => jid(app, u),
            Actor::Admin => appkey(app),
        };
        let muc_id = format!("{}_{}@conference.easemob.com", appkey(app), conv.id);
        let gid = conv.id.to_string();
        let event_why = |operation: &str, to: &str, reason: &str| {
            let b = json!({
                "eventType": "chat",
                "chat_type": "muc",
                "group_id": gid,
                "from": from,
                "to": to,
                "payload": {
                    "muc_id": muc_id,
                    "reason": reason,
                    "is_chatroom": room,
                    "operation": operation,
                    "status": {"description": "", "error_code": "ok"},
                },
            });
            OutboxItem::new(SINK, "muc", b)
        };
        let event = |operation: &str, to: &str| event_why(operation, to, "");
        match what {
            Muc::Create => {
                let owner = conv.creator.clone().or_else(|| by.user().map(str::to_string)).unwrap_or_default();
                vec![event("create", &owner)]
            }
            Muc::Add => members
                .iter()
                .map(|m| {
                    let op = match by {
                        Actor::User(u) if u == m && !room => "direct_joined",
                        Actor::User(u) if u != m => "invite",
                        _ => "presence",
                    };
                    event(op, m)
                })
                .collect(),
            Muc::Remove => members
                .iter()
                .map(|m| {
                    let op = if by.user() == Some(m.as_str()) { "leave" } else { "kick" };
                    event(op, m)
                })
                .collect(),
            Muc::Changed(change) => {
                let (op, members): (&str, &[String]) = match change {
                    ConvChange::Muted { members } => ("add_mute", members),
                    ConvChange::Unmuted { members } => ("remove_mute", members),
                    ConvChange::Blocked { members } => ("ban", members),
                    ConvChange::Unblocked { members } => ("allow", members),
                    ConvChange::RoleChanged { member, role } => {
                        let op = match role {
                            Role::Owner => "assing_owner",
                            Role::Admin => "add_admin",
                            _ => "remove_admin",
                        };
                        (op, std::slice::from_ref(member))
                    }
                    // joins and departures are told as such, changes of the group as `Updated`
                    ConvChange::Joined { .. } | ConvChange::Left { .. } | ConvChange::Updated { .. } | ConvChange::Destroyed => {
                        return vec![]
                    }
                    // not told to the app's hooks as `Changed` (settings go as `Updated`)
                    ConvChange::Announcement { .. }
                    | ConvChange::MuteAll { .. }
                    | ConvChange::Allowlisted { .. }
                    | ConvChange::Unallowlisted { .. }
                    | ConvChange::Settings { .. }
                    | ConvChange::Request { .. } => return vec![],
                };
                members.iter().map(|m| event(op, m)).collect()
            }
            Muc::Updated(old) => {
                // one callback per kind of change, to the group (no member is concerned)
                let (s, o) = (&conv.settings, &old.settings);
                let mut out = vec![];
                if s.announcement != o.announcement {
                    match s.announcement.as_deref().filter(|a| !a.is_empty()) {
                        Some(a) => out.push(event_why("update_announcement", &gid, a)),
                        None => out.push(event("delete_announcement", &gid)),
                    }
                }
                if s.mute_all != o.mute_all {
                    out.push(event(if s.mute_all { "ban_group" } else { "remove_ban_group" }, &gid));
                }
                let rest = |c: &Conversation| {
                    let mut s = c.settings.clone();
                    s.announcement = None;
                    s.mute_all = false;
                    // disabling a group is not an Easemob callback
                    s.disabled = false;
                    (c.name.clone(), c.attrs.clone(), s)
                };
                if rest(conv) != rest(old) {
                    out.push(event("update", &gid));
                }
                out
            }
            Muc::Destroy => vec![event("destroy", &gid)],
        }
    }

    /// A thread's life as a `notify` callback of type `thread`: `data` as Easemob's SDKs get
    /// it (`id`, `name`, `muc_parent_id`, `msg_parent_id`, `timestamp`, `from`, `operation`);
    /// operations `create`, `update`, `delete`, and members' `join`, `leave` and `kick` (one
    /// callback per member, `to` = that member).
    fn thread(&self, app: &App, conv: &Conversation, members: &[String], by: &Actor, what: Muc) -> Vec<OutboxItem> {
        let Some((group, msg)) = conv.parent else { return vec![] };
        let operator = match (by, &what) {
            (Actor::User(u), _) => u.clone(),
            (Actor::Admin, Muc::Create) => conv.creator.clone().unwrap_or_else(|| appkey(app)),
            (Actor::Admin, _) => appkey(app),
        };
        let event = |operation: &str, to: &str| {
            let b = json!({
                "eventType": "chat",
                "chat_type": "notify",
                "group_id": group.to_string(),
                "from": operator,
                "to": to,
                "payload": {
                    "type": "thread",
                    "data": {
                        "id": conv.id.to_string(),
                        "name": conv.name.clone().unwrap_or_default(),
                        "muc_parent_id": group.to_string(),
                        "msg_parent_id": msg.to_string(),
                        "timestamp": conv.updated_at,
                        "from": operator,
                        "operation": operation,
                    },
                },
            });
            OutboxItem::new(SINK, "notify", b)
        };
        let gid = group.to_string();
        match what {
            Muc::Create => vec![event("create", &gid)],
            Muc::Updated(old) if old.name != conv.name => vec![event("update", &gid)],
            Muc::Destroy => vec![event("delete", &gid)],
            // the creator's own first membership is part of `create`
            Muc::Add => members.iter().map(|m| event("join", m)).collect(),
            Muc::Remove => members.iter().map(|m| event(if by.user() == Some(m.as_str()) { "leave" } else { "kick" }, m)).collect(),
            _ => vec![],
        }
    }

    /// A 1:1 read receipt: `read_ack`, from the reader to the peer, `ack_message_id` = the
    /// message read up to.
    fn read_ack(&self, conv: &Conversation, user: &str, msg: &Message) -> Vec<OutboxItem> {
        // a receipt is for the peer's message: reading up to one's own is none
        if !is_direct(conv) || msg.from == user {
            return vec![];
        }
        let b = json!({
            "eventType": "chat",
            "chat_type": "read_ack",
            "from": user,
            "_peer_of": {"conv": conv.id, "user": user},
            "payload": {"ext": {}, "ack_message_id": msg.id.to_string(), "bodies": []},
        });
        vec![OutboxItem::new(SINK, "read_ack", b)]
    }

    /// Contact operations: `roster`, one per other user, from the owner.
    fn roster(&self, op: ContactOp, owner: &str, others: &[String]) -> Vec<OutboxItem> {
        let operation = match op {
            ContactOp::Added => "add",
            ContactOp::Removed => "remove",
            ContactOp::Blocked => "ban",
            ContactOp::Unblocked => "allow",
        };
        others
            .iter()
            .map(|o| {
                let b = json!({
                    "eventType": "chat",
                    "chat_type": "roster",
                    "from": owner,
                    "to": o,
                    "payload": {"operation": operation, "reason": ""},
                });
                OutboxItem::new(SINK, "roster", b)
            })
            .collect()
    }

    /// A reaction added or taken back: `notify` of type `reaction`, `data` as Easemob's SDKs get
    /// it (`messageId`, `from`, `to`, `channel_type`, `reactions`, `ts`).
    fn reacted(&self, conv: &Conversation, msg: &Message, user: &str, reaction: &str, added: bool, count: i64) -> Vec<OutboxItem> {
        if conv.kind != ConvKind::Normal {
            return vec![];
        }
        let direct = is_direct(conv);
        let mut data = json!({
            "messageId": msg.id.to_string(),
            "from": msg.from,
            "channel_type": if direct { "chat" } else { "groupchat" },
            "reactions": [{
                "reaction": reaction,
                "count": count,
                "op": [{"operator": user, "reactionType": if added { "create" } else { "delete" }}],
            }],
            "ts": msg.timestamp,
        });
        let mut b = json!({"eventType": "chat", "chat_type": "notify", "from": user});
        if direct {
            if user == msg.from {
                // to the peer, looked up when the callback is made (the message's `to` too)
                b["_peer_of"] = json!({"conv": conv.id, "user": user});
            } else {
                b["to"] = json!(msg.from);
                data["to"] = json!(user);
            }
        } else {
            b["to"] = json!(conv.id.to_string());
            b["group_id"] = json!(conv.id.to_string());
            data["to"] = json!(conv.id.to_string());
        }
        b["payload"] = json!({"type": "reaction", "data": [data]});
        vec![OutboxItem::new(SINK, "notify", b)]
    }

    fn status(&self, app: &App, user: &str, session: &confab_engine::SessionRef, ip: Option<&str>, reason: &str) -> OutboxItem {
        let os = session.tag.clone().map(|t| t.to_lowercase()).unwrap_or_else(|| "unknown".into());
        let device = session.device.clone().unwrap_or_else(|| format!("{}-{}", session.node, session.session));
        let b = json!({
            "callId": format!("{}_{}", appkey(app), uuid()),
            "reason": reason,
            "os": os,
            "ip": ip.unwrap_or_default(),
            "user": format!("{}/{os}_{device}", jid(app, user)),
            "version": "",
            "status": if reason == "login" { "online" } else { "offline" },
        });
        OutboxItem::new(SINK, "userStatus", b)
    }
}

enum Muc<'a> {
    Create,
    Add,
    Remove,
    Changed(&'a ConvChange),
    /// The conversation as it was.
    Updated(&'a Conversation),
    Destroy,
}

#[async_trait]
impl Hooks for EmHooks {
    fn active(&self, app: &App) -> bool {
        let c = &app.limits.hooks.easemob;
        !c.url.is_empty() || !c.pre_send_url.is_empty()
    }

    async fn before(&self, app: &App, action: Before<'_>) -> Result<Verdict> {
        if app.limits.hooks.easemob.pre_send_url.is_empty() {
            return Ok(Verdict::Go);
        }
        match action {
            // only users' own sends are asked (the engine never asks for the app's REST sends)
            Before::Send { conv, msg, recipients, by } => self.pre_send(app, conv, msg, recipients, by).await,
            _ => Ok(Verdict::Go),
        }
    }

    fn after(&self, app: &App, what: &After<'_>) -> Vec<OutboxItem> {
        if app.limits.hooks.easemob.url.is_empty() {
            return vec![];
        }
        match what {
            After::Sent { conv, msg, online, offline, .. } => self.sent(app, conv, msg, online, offline),
            After::Patched { conv, msg, recall: true, by } => vec![self.recalled(conv, msg, by)],
            After::Patched { .. } => vec![],
            After::Started { conv, members, by } => self.muc(app, conv, members, by, Muc::Create),
            After::Added { conv, members, by } => self.muc(app, conv, members, by, Muc::Add),
            After::Removed { conv, members, by } => self.muc(app, conv, members, by, Muc::Remove),
            After::Online { user, session, ip, .. } => vec![self.status(app, user, session, *ip, "login")],
            After::Offline { user, session, ip, why } => {
                let reason = match why {
                    Offline::Conflict | Offline::Kicked { .. } => "replaced",
                    Offline::Logout | Offline::Lost { .. } => "logout",
                };
                vec![self.status(app, user, session, *ip, reason)]
            }
            After::PushTask { .. } => vec![],
            After::Read { conv, user, msg } => self.read_ack(conv, user, msg),
            After::Changed { conv, change, by } => self.muc(app, conv, &[], by, Muc::Changed(change)),
            After::Updated { conv, old, by } => self.muc(app, conv, &[], by, Muc::Updated(old)),
            After::Deleted { conv, by } => self.muc(app, conv, &[], by, Muc::Destroy),
            After::Contact { op, owner, others } => self.roster(*op, owner, others),
            After::Reacted { conv, msg, user, reaction, added, count } => self.reacted(conv, msg, user, reaction, *added, *count),
        }
    }
}

// ---------------------------------------------------------------------- the circuit breaker

/// Failures within this window …
const BREAKER_WINDOW_MS: i64 = 30_000;
/// … this many of them …
const BREAKER_FAILURES: usize = 90;
/// … ban the app's callbacks for this long, times the bans of the last day (at most 5 of them).
const BAN_UNIT_MS: i64 = 5 * 60_000;
const BAN_COUNT_CAP: usize = 5;
const DAY_MS: i64 = 24 * 3_600_000;

/// One app's breaker (Easemob's, per rule; confab has one post-send rule per app).
#[derive(Debug, Default)]
pub struct Breaker {
    failures: VecDeque<i64>,
    bans: VecDeque<i64>,
    banned_until: i64,
}

impl Breaker {
    /// The time left of a ban, in ms.
    pub fn banned(&self, now: i64) -> Option<i64> {
        (self.banned_until > now).then(|| self.banned_until - now)
    }

    /// Count a failed call; the ban it starts, if any (its length in ms).
    pub fn failure(&mut self, now: i64) -> Option<i64> {
        while self.failures.front().is_some_and(|t| *t <= now - BREAKER_WINDOW_MS) {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() < BREAKER_FAILURES {
            return None;
        }
        self.failures.clear();
        while self.bans.front().is_some_and(|t| *t <= now - DAY_MS) {
            self.bans.pop_front();
        }
        self.bans.push_back(now);
        let length = BAN_UNIT_MS * self.bans.len().min(BAN_COUNT_CAP) as i64;
        self.banned_until = now + length;
        Some(length)
    }
}

// ---------------------------------------------------------------------- delivery

/// Makes the post-send callbacks: signs each body, POSTs it to `hooks.easemob.url`, tries a
/// non-200 answer once more at once, then leaves it to the outbox's back-off; a breaker per app.
pub struct EmSink {
    pub caller: Arc<Caller>,
    pub engine: Arc<Engine>,
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    pub breakers: Mutex<HashMap<i64, Breaker>>,
}

impl EmSink {
    pub fn new(caller: Arc<Caller>, engine: Arc<Engine>, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> EmSink {
        EmSink { caller, engine, clock, breakers: Mutex::new(HashMap::new()) }
    }

    /// The body as sent: the item's, with what is filled in when it is made (the event's id and
    /// time from the item where the event has none of its own, the 1:1 peer of a recall), the
    /// common fields, and the signature.
    async fn body(&self, app: &App, item: &OutboxItem) -> std::result::Result<Value, String> {
        let mut b = item.body.as_object().cloned().ok_or("not an object")?;
        let key = appkey(app);
        if !b.contains_key("msg_id") && item.name != "userStatus" {
            b.insert("msg_id".into(), json!(item.id.to_string()));
        }
        if !b.contains_key("callId") {
            let id = b.get("msg_id").and_then(Value::as_str).map_or_else(uuid, str::to_string);
            b.insert("callId".into(), json!(format!("{key}_{id}")));
        }
        if !b.contains_key("timestamp") {
            b.insert("timestamp".into(), json!(item.created_at));
        }
        if let Some(p) = b.remove("_peer_of") {
            let (conv, user) = (p["conv"].as_i64().unwrap_or_default(), p["user"].as_str().unwrap_or_default());
            let peer = match self.engine.conversations().conversation(app, conv, None).await {
                Ok(c) => self.engine.conversations().members(app, &c).await.unwrap_or_default().into_iter().find(|m| m != user),
                Err(_) => None,
            };
            let peer = peer.unwrap_or_else(|| user.to_string());
            // a reaction's message went to the peer too
            if let Some(d) = b.get_mut("payload").and_then(|p| p.get_mut("data")).and_then(|d| d.get_mut(0)) {
                if d.get("to").is_none() {
                    d["to"] = json!(peer);
                }
            }
            b.insert("to".into(), json!(peer));
        }
        b.insert("appkey".into(), json!(key));
        b.insert("host".into(), json!(HOST));
        b.insert("securityVersion".into(), json!(SECURITY_VERSION));
        let call_id = b["callId"].as_str().unwrap_or_default().to_string();
        let ts = b["timestamp"].as_i64().unwrap_or_default();
        b.insert("security".into(), json!(security(&call_id, &app.limits.hooks.easemob.secret, ts)));
        Ok(Value::Object(b))
    }

    /// Count a failure (it may start a ban).
    fn failed(&self, app: i64) {
        let now = (self.clock)();
        if let Some(ms) = self.breakers.lock().entry(app).or_default().failure(now) {
            tracing::warn!(app, minutes = ms / 60_000, "Easemob callbacks failed too often: paused");
        }
    }

    /// The time left of the app's ban, if it is banned.
    fn banned(&self, app: i64) -> Option<Duration> {
        let now = (self.clock)();
        self.breakers.lock().get(&app).and_then(|b| b.banned(now)).map(|ms| Duration::from_millis(ms as u64))
    }

    async fn call(&self, app: &App, item: &OutboxItem, body: &[u8]) -> std::result::Result<(), String> {
        let request = Request {
            app: app.id,
            sink: SINK,
            name: item.name.clone(),
            url: app.limits.hooks.easemob.url.clone(),
            headers: vec![],
            body: body.to_vec(),
            timeout: POST_TIMEOUT,
            max_answer: MAX_ANSWER,
        };
        match self.caller.post(request).await {
            Ok(a) if a.status == 200 => Ok(()),
            Ok(a) => Err(format!("the app's server answered {}", a.status)),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[async_trait]
impl Sink for EmSink {
    async fn deliver(&self, app: &App, item: &OutboxItem) -> Delivery {
        if app.limits.hooks.easemob.url.is_empty() {
            return Delivery::done();
        }
        let body = match self.body(app, item).await {
            Ok(b) => b.to_string().into_bytes(),
            Err(e) => return Delivery::Fail { error: format!("malformed callback: {e}") },
        };
        let paused = |wait| Delivery::Retry { error: "callbacks paused by the circuit breaker".into(), after: Some(wait) };
        let mut error = String::new();
        // Easemob: a failed callback is tried once more, at once; none is made during a ban
        for _ in 0..2 {
            if let Some(wait) = self.banned(app.id) {
                return paused(wait);
            }
            match self.call(app, item, &body).await {
                Ok(()) => return Delivery::done(),
                Err(e) => error = e,
            }
            self.failed(app.id);
        }
        // then the outbox tries again, with back-off, or when a ban this failure started ends
        let after = self.banned(app.id);
        Delivery::Retry { error, after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_matches_the_documented_example() {
        assert_eq!(
            security("easemob-demo#test_0990a64f-dp01-6c50-8696-cf3b48b20e7e", "example-secret", 1600060847294),
            "88e722ec9eea03ecfce8ba7a06447242"
        );
    }

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(read_answer(br#"{"valid":true}"#), Some(Answer::Pass { code: None, payload: None }));
        assert_eq!(read_answer(br#"{"valid":false,"code":"HX:1"}"#), Some(Answer::Block { code: Some("HX:1".into()) }));
        assert_eq!(read_answer(br#"{"valid":false,"code":""}"#), Some(Answer::Block { code: Some(String::new()) }));
        for bad in
            [&br#"{}"#[..], br#"{"valid":"true"}"#, br#"[]"#, b"nope", br#"{"valid":false,"code":[1]}"#, br#"{"valid":true,"payload":"x"}"#]
        {
            assert_eq!(read_answer(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_replacement_is_one_txt_body() {
        let ok = json!({"ext": {"k": "v"}, "bodies": [{"msg": "w*****e", "type": "txt"}]});
        let (body, ext) = replacement(&ok).unwrap();
        assert_eq!(body["msg"], "w*****e");
        assert_eq!(ext, Some(json!({"k": "v"})));
        assert!(replacement(&json!({"bodies": [{"type": "img", "url": "u"}]})).is_none());
        assert!(replacement(&json!({"bodies": []})).is_none());
        assert!(replacement(&json!({"bodies": [{"type": "txt", "msg": "x".repeat(1100)}]})).is_none());
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn breaker_bans_for_five_minutes_times_the_bans_of_the_day() {
        let mut b = Breaker::default();
        let mut now = 1_000_000;
        // 89 failures in 30 s: no ban; failures older than the window do not count
        for _ in 0..89 {
            assert_eq!(b.failure(now), None);
        }
        now += BREAKER_WINDOW_MS;
        for _ in 0..89 {
            assert_eq!(b.failure(now), None);
        }
        assert_eq!(b.banned(now), None);
        fn ban(b: &mut Breaker, now: i64) -> Option<i64> {
            let mut got = None;
            for _ in 0..BREAKER_FAILURES {
                got = got.or(b.failure(now));
            }
            got
        }
        now += BREAKER_WINDOW_MS;
        let expected = [5, 10, 15, 20, 25, 25];
        for (i, minutes) in expected.into_iter().enumerate() {
            assert_eq!(ban(&mut b, now), Some(minutes * 60_000), "ban {}", i + 1);
            assert_eq!(b.banned(now + 1000), Some(minutes * 60_000 - 1000));
            now += minutes * 60_000;
            assert_eq!(b.banned(now), None, "the ban ends");
        }
        // a day later the count starts again
        now += DAY_MS;
        assert_eq!(ban(&mut b, now), Some(5 * 60_000));
    }

    fn app() -> App {
        use confab_engine::model::{AppKeys, EasemobKeys, LeanCloudKeys, MaximKeys};
        let mut a = App {
            id: 1,
            name: "a".into(),
            plan: Default::default(),
            created_at: 0,
            keys: AppKeys {
                leancloud: LeanCloudKeys { app_id: "a".into(), app_key: "k".into(), master_key: "m".into(), hook_key: "h".into() },
                easemob: EasemobKeys { org_name: "org".into(), app_name: "app".into(), client_id: "c".into(), client_secret: "s".into() },
                maxim: MaximKeys { app_id: "m".into(), admin_token: "t".into() },
            },
            limit_overrides: Default::default(),
            limits: Default::default(),
        };
        a.limits.hooks.easemob.url = "http://127.0.0.1:9/post".into();
        a
    }

    #[test]
    fn user_status_login_logout_replaced() {
        let hooks = EmHooks { caller: Arc::new(Caller::new(Default::default(), Arc::new(|| 0))) };
        let app = app();
        let s = confab_engine::SessionRef { node: 1, session: 42, tag: Some("Mobile".into()), device: Some("dev1".into()) };
        let login = hooks.after(&app, &After::Online { user: "tom", session: &s, ip: Some("10.0.0.1"), reconnect: false });
        assert_eq!(login.len(), 1);
        let b = &login[0].body;
        assert_eq!(login[0].name, "userStatus");
        assert_eq!(b["reason"], "login");
        assert_eq!(b["status"], "online");
        assert_eq!(b["user"], "org#app_tom@easemob.com/mobile_dev1");
        assert_eq!(b["ip"], "10.0.0.1");
        assert!(b["callId"].as_str().unwrap().starts_with("org#app_"));
        let bare = confab_engine::SessionRef { node: 1, session: 42, tag: None, device: None };
        for (why, reason) in [
            (Offline::Logout, "logout"),
            (Offline::Lost { error: None }, "logout"),
            (Offline::Conflict, "replaced"),
            (Offline::Kicked { reason: None }, "replaced"),
        ] {
            let out = hooks.after(&app, &After::Offline { user: "tom", session: &bare, ip: None, why: &why });
            assert_eq!(out[0].body["reason"], reason, "{why:?}");
            assert_eq!(out[0].body["status"], "offline");
            assert_eq!(out[0].body["user"], "org#app_tom@easemob.com/unknown_1-42");
        }
        let mut off = app.clone();
        off.limits.hooks.easemob.url.clear();
        assert!(hooks.after(&off, &After::Online { user: "tom", session: &s, ip: None, reconnect: true }).is_empty());
    }
}
