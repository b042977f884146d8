//! Messages (spec §3.3) and global mutes (§3.2): sending to users, groups and chat rooms, files,
//! history export, recall, import, the conversation list (`channels.rs`) and the SDK's roaming
//! history (`roaming.rs`).
//!
//! An Easemob message is kept in the engine in the shape every face reads (see [`to_engine`]):
//! a LeanCloud client sees an Easemob `txt` as its text message, a MaxIM client as TEXT.

mod channels;
mod erase;
mod files;
mod pins;
mod reports;
mod roaming;

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::limits::{bucket, Bucket};
use confab_engine::model::{App, Content, ConvKind, Conversation, Message, MessageType, Priority};
use confab_engine::{Actor, MessageRef, MuteScope, NewMessage};
use confab_routes::{get, post};
use serde_json::{json, Map, Value};

use crate::auth::Need;
use crate::auth::{Admin, Body, Caller, EmState, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::users::{user_in_path, username};
use crate::Routes;

pub use files::{history_lines, FILE_TTL_DAYS};

/// Most targets of one send: users, groups, chat rooms.
pub const TO_MAX_USERS: usize = 600;
pub const TO_MAX_GROUPS: usize = 3;
pub const TO_MAX_ROOMS: usize = 10;
/// The sender when a send names none.
pub const DEFAULT_FROM: &str = "admin";
/// A recall without `force` must come within this many seconds of the send (Easemob's default
/// window, 2 minutes), unless the app sets `recall_window_secs`.
pub const RECALL_WINDOW_SECS: i64 = 120;
/// Most messages one batch recall may name.
pub const RECALL_BATCH_MAX: usize = 30;
/// `GET /mutes` page size range and default.
const MUTES_PAGE_MAX: i64 = 50;
const MUTES_PAGE_DEFAULT: i64 = 10;
pub use channels::CHANNELS_MAX;
pub use roaming::{ROAMING_PAGE_MAX, ROAMING_SCAN_MAX};
/// The longest a global mute may last, in seconds.
const MUTE_MAX_SECS: i64 = 2_147_483_647;

pub fn routes() -> Routes {
    use Need::{App, AppOrUser, Token};
    let mut r: Routes = vec![
        post("/mutes", App, set_mutes),
        get("/mutes", App, list_mutes),
        get("/mutes/{username}", App, get_mutes),
        post("/messages/users", Token, send_users),
        post("/messages/chatgroups", Token, send_groups),
        post("/messages/chatrooms", Token, send_rooms),
        post("/messages/users/import", App, import_user),
        post("/messages/chatgroups/import", App, import_group),
        post("/messages/recall", App, recall),
        post("/messages/msg_recall", App, recall),
        post("/messages/batch_recall", App, batch_recall),
        post("/users/{username}/messageroaming", AppOrUser, roaming::roaming),
    ];
    r.extend(channels::routes());
    r.extend(files::routes());
    r.extend(pins::routes());
    r.extend(erase::routes());
    r.extend(reports::routes());
    r
}

// ---------------------------------------------------------------------- errors

fn send_error(description: impl Into<String>) -> EmError {
    EmError::new(StatusCode::BAD_REQUEST, "message_send_error", "MessageSendException", description)
}

fn recall_error(status: StatusCode, description: impl Into<String>) -> EmError {
    EmError::new(status, "message_recall_error", "MessageRecallException", description)
}

// ---------------------------------------------------------------------- the message shape

/// The eight Easemob message types, with the engine type each is kept as.
const TYPES: [(&str, i64); 8] = [
    ("txt", MessageType::TEXT),
    ("img", MessageType::IMAGE),
    ("audio", MessageType::AUDIO),
    ("video", MessageType::VIDEO),
    ("file", MessageType::FILE),
    ("loc", MessageType::LOCATION),
    ("cmd", MessageType::COMMAND),
    ("custom", MessageType::NONE),
];

fn str_of(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Check a message body against its type (the fields the spec marks required).
pub fn check_body(kind: &str, body: &Map<String, Value>) -> EmResult<()> {
    let need = |k: &str| -> EmResult<()> {
        match body.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            Some(Value::Number(_)) if matches!(k, "lat" | "lng") => Ok(()),
            _ => Err(send_error(format!("param body.{k} can't be empty"))),
        }
    };
    match kind {
        "txt" => need("msg"),
        "img" | "audio" | "video" | "file" => need("url"),
        "loc" => {
            need("lat")?;
            need("lng")?;
            need("addr")
        }
        "cmd" => need("action"),
        "custom" => {
            if let Some(e) = body.get("customEvent") {
                let ok = e
                    .as_str()
                    .is_some_and(|s| (1..=32).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_/.".contains(c)));
                if !ok {
                    return Err(send_error("param body.customEvent must match [a-zA-Z0-9-_/\\.]{1,32}"));
                }
            }
            match body.get("customExts") {
                None | Some(Value::Null) => Ok(()),
                Some(Value::Object(m)) if m.len() <= 16 && m.values().all(Value::is_string) => Ok(()),
                Some(_) => Err(send_error("param body.customExts must be a map of at most 16 strings")),
            }
        }
        _ => Err(send_error(format!("param type {kind} is not supported"))),
    }
}

/// An Easemob message as the engine keeps it: `(content, engine type, ext)`. The content is the
/// message's text (a `txt`'s `msg`, a location's `addr`, a `cmd`'s `action`, a `custom`'s
/// event); `ext.attachment` carries a file (`{url, dName, fLen, width, height, duration}`) or a
/// place (`{lat, lon}`) and `ext.ext` the app's extension — the cross-face shape MaxIM writes
/// and LeanCloud's renderer turns into its typed messages. `ext.em` keeps Easemob's own
/// `{type, body}` for Easemob readers.
pub fn to_engine(kind: &str, body: &Map<String, Value>, ext: Option<&Value>) -> (Content, i64, Value) {
    let mtype = TYPES.iter().find(|t| t.0 == kind).map_or(MessageType::NONE, |t| t.1);
    let text = |k: &str| str_of(body.get(k)).unwrap_or_default();
    let mut e = Map::new();
    let content = match kind {
        "txt" => text("msg"),
        "loc" => {
            let num = |k: &str| {
                let s = text(k);
                s.parse::<f64>().ok().map(|f| json!(f)).unwrap_or(json!(s))
            };
            e.insert("attachment".into(), json!({"lat": num("lat"), "lon": num("lng")}));
            text("addr")
        }
        "cmd" => text("action"),
        "custom" => text("customEvent"),
        _ => {
            let mut a = Map::new();
            a.insert("url".into(), json!(shared_url(&text("url"), &text("secret"))));
            if let Some(f) = body.get("filename") {
                a.insert("dName".into(), f.clone());
            }
            if let Some(l) = body.get("file_length") {
                a.insert("fLen".into(), l.clone());
            }
            if let Some(size) = body.get("size").and_then(Value::as_object) {
                for k in ["width", "height"] {
                    if let Some(v) = size.get(k) {
                        a.insert(k.into(), v.clone());
                    }
                }
            }
            if let Some(l) = body.get("length").or(body.get("Length")) {
                a.insert("duration".into(), l.clone());
            }
            e.insert("attachment".into(), Value::Object(a));
            String::new()
        }
    };
    if let Some(x) = ext.filter(|x| x.as_object().is_some_and(|o| !o.is_empty())) {
        e.insert("ext".into(), x.clone());
    }
    e.insert("em".into(), json!({"type": kind, "body": body}));
    (Content::Text(content), mtype, Value::Object(e))
}

/// A file's URL as the other faces get it: an Easemob attachment is a restricted file, fetched
/// with its `share-secret` (which Easemob readers get beside the URL, and the SDK appends), so
/// the cross-face URL carries it in its query — else a LeanCloud or MaxIM client, which knows of
/// no secret, is refused the file it is shown.
fn shared_url(url: &str, secret: &str) -> String {
    if url.is_empty() || secret.is_empty() || url.contains("share-secret=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let secret: String = secret
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("{url}{sep}share-secret={secret}")
}

/// A stored message as Easemob shows it: `(type, body, ext)`. An Easemob message as it was
/// sent; another face's message from its engine type, text and attachment (a LeanCloud typed
/// message from its `_lctext`, `_lcfile`, `_lcloc`, `_lcattrs`).
pub fn from_engine(m: &Message) -> (String, Value, Value) {
    let ext = m.ext.as_ref();
    let app_ext = ext
        .and_then(|e| e.get("ext"))
        .map(|x| match x {
            Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or(json!({})),
            v => v.clone(),
        })
        .filter(Value::is_object)
        .unwrap_or(json!({}));
    if let Some(em) = ext.and_then(|e| e.get("em")).filter(|_| m.recalled_at.is_none()) {
        return (em["type"].as_str().unwrap_or("txt").to_string(), em["body"].clone(), app_ext);
    }
    let text = match &m.content {
        Content::Text(t) => t.clone(),
        Content::Binary(b) => String::from_utf8_lossy(b).into_owned(),
    };
    // a LeanCloud typed message
    if let Some(t) = text.trim_start().starts_with('{').then(|| serde_json::from_str::<Value>(&text).ok()).flatten() {
        if let Some(lctype) = t.get("_lctype").and_then(Value::as_i64) {
            let attrs = t.get("_lcattrs").cloned().filter(Value::is_object).unwrap_or(json!({}));
            let caption = t.get("_lctext").and_then(Value::as_str).unwrap_or_default().to_string();
            let file = t.get("_lcfile").cloned().unwrap_or(Value::Null);
            let meta = file.get("metaData").cloned().unwrap_or(json!({}));
            let (kind, body) = match lctype {
                MessageType::IMAGE => (
                    "img",
                    json!({"url": file["url"], "filename": meta["name"], "file_length": meta["size"], "size": {"width": meta["width"], "height": meta["height"]}}),
                ),
                MessageType::AUDIO => (
                    "audio",
                    json!({"url": file["url"], "filename": meta["name"], "length": meta["duration"], "file_length": meta["size"]}),
                ),
                MessageType::VIDEO => (
                    "video",
                    json!({"url": file["url"], "filename": meta["name"], "length": meta["duration"], "file_length": meta["size"]}),
                ),
                MessageType::FILE => ("file", json!({"url": file["url"], "filename": meta["name"], "file_length": meta["size"]})),
                MessageType::LOCATION => {
                    let l = t.get("_lcloc").cloned().unwrap_or(json!({}));
                    ("loc", json!({"lat": l["latitude"].to_string(), "lng": l["longitude"].to_string(), "addr": caption}))
                }
                _ => ("txt", json!({"msg": caption})),
            };
            return (kind.to_string(), known_length(body), attrs);
        }
    }
    let attachment = ext.and_then(|e| e.get("attachment")).map(|a| match a {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or(Value::Null),
        v => v.clone(),
    });
    let a = attachment.unwrap_or(json!({}));
    let (kind, body) = match m.mtype {
        MessageType::IMAGE => (
            "img",
            json!({"url": a["url"], "filename": a["dName"], "file_length": a["fLen"], "size": {"width": a["width"], "height": a["height"]}}),
        ),
        MessageType::AUDIO => {
            ("audio", json!({"url": a["url"], "filename": a["dName"], "length": a["duration"], "file_length": a["fLen"]}))
        }
        MessageType::VIDEO => {
            ("video", json!({"url": a["url"], "filename": a["dName"], "length": a["duration"], "file_length": a["fLen"]}))
        }
        MessageType::FILE => ("file", json!({"url": a["url"], "filename": a["dName"], "file_length": a["fLen"]})),
        MessageType::LOCATION => ("loc", json!({"lat": a["lat"].to_string(), "lng": a["lon"].to_string(), "addr": text})),
        MessageType::COMMAND => ("cmd", json!({"action": text})),
        _ => ("txt", json!({"msg": text})),
    };
    (kind.to_string(), known_length(body), app_ext)
}

/// A file's body from another face: its `file_length` (LeanCloud's `metaData.size`, MaxIM's
/// `fLen`) when the sender gave one, else none (not a null).
fn known_length(mut body: Value) -> Value {
    if let Some(o) = body.as_object_mut().filter(|o| o.get("file_length").is_some_and(Value::is_null)) {
        o.remove("file_length");
    }
    body
}

/// Easemob's chat type of a conversation.
pub fn chat_type(conv: &Conversation) -> &'static str {
    MuteScope::of(conv).name()
}

/// `{bodies: [{type, …}], ext, from, to}`: a message's payload as history and the conversation
/// list show it. `to` is the peer (one-to-one) or the conversation's id.
pub fn payload(m: &Message, to: &str) -> Value {
    let (kind, body, ext) = from_engine(m);
    let mut b = body.as_object().cloned().unwrap_or_default();
    b.insert("type".into(), json!(kind));
    json!({"bodies": [b], "ext": ext, "from": m.from, "to": to})
}

// ---------------------------------------------------------------------- send

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Users,
    Groups,
    Rooms,
}

impl Target {
    /// The send call's bucket, the message quota's (each recipient counts one) and the import's.
    fn buckets(self) -> (Bucket, Bucket, Bucket) {
        match self {
            Target::Users => (bucket::EM_MESSAGES_USERS, bucket::EM_MSG_USERS, bucket::EM_MESSAGES_USERS_IMPORT),
            Target::Groups => (bucket::EM_MESSAGES_CHATGROUPS, bucket::EM_MSG_CHATGROUPS, bucket::EM_MESSAGES_CHATGROUPS_IMPORT),
            Target::Rooms => (bucket::EM_MESSAGES_CHATROOMS, bucket::EM_MSG_CHATROOMS, bucket::EM_MESSAGES_CHATROOMS_IMPORT),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Target::Users => "users",
            Target::Groups => "chatgroups",
            Target::Rooms => "chatrooms",
        }
    }
    fn max(self) -> usize {
        match self {
            Target::Users => TO_MAX_USERS,
            Target::Groups => TO_MAX_GROUPS,
            Target::Rooms => TO_MAX_ROOMS,
        }
    }
}

async fn send_users(State(s): State<EmState>, c: Caller, b: Body) -> Reply {
    send(s, c, b, Target::Users).await
}

async fn send_groups(State(s): State<EmState>, c: Caller, b: Body) -> Reply {
    send(s, c, b, Target::Groups).await
}

async fn send_rooms(State(s): State<EmState>, c: Caller, b: Body) -> Reply {
    send(s, c, b, Target::Rooms).await
}

/// The sender: `from` (default `admin`, or the caller's own name with a user token). A user
/// token sends only as its user.
fn sender(c: &Caller, o: &Map<String, Value>) -> EmResult<String> {
    let from = match o.get("from") {
        None | Some(Value::Null) => c.user.as_ref().map_or(DEFAULT_FROM.to_string(), |u| u.id.clone()),
        Some(Value::String(f)) if f.trim().is_empty() => return Err(send_error("param from can't be empty")),
        Some(Value::String(f)) => username(f)?,
        Some(_) => return Err(EmError::bad_body()),
    };
    c.may_act_for(&from)?;
    Ok(from)
}

/// A conversation a group or chat room id names (decimal engine ids).
async fn target_conv(s: &EmState, app: &App, id: &str, target: Target) -> EmResult<Conversation> {
    let missing = || {
        EmError::new(
            StatusCode::NOT_FOUND,
            "service_resource_not_found",
            "com.easemob.group.exception.ServiceResourceNotFoundException",
            format!("do not find this group:{id}"),
        )
    };
    let n: i64 = id.trim().parse().map_err(|_| missing())?;
    let conv = s.engine.conversations().conversation(app, n, None).await.map_err(|_| missing())?;
    let ok = match target {
        Target::Rooms => conv.kind == ConvKind::Chatroom,
        _ => matches!(conv.kind, ConvKind::Normal | ConvKind::Temporary) && !conv.unique,
    };
    if !ok {
        return Err(missing());
    }
    Ok(conv)
}

/// The content of a send or import: `(type, body, ext)`, checked.
fn content_of(o: &Map<String, Value>, app: &App) -> EmResult<(String, Map<String, Value>, Option<Value>)> {
    let kind = match o.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => return Err(send_error("param type can't be empty")),
        Some(_) => return Err(EmError::bad_body()),
    };
    let body = match o.get("body") {
        Some(Value::Object(b)) if !b.is_empty() => b.clone(),
        None | Some(Value::Null) | Some(Value::Object(_)) => return Err(send_error("param body can't be empty")),
        Some(_) => return Err(EmError::bad_body()),
    };
    let ext = match o.get("ext") {
        None => None,
        Some(Value::Object(e)) => Some(Value::Object(e.clone())),
        Some(_) => return Err(send_error("param ext must be JSONObject")),
    };
    check_body(&kind, &body)?;
    let size = serde_json::to_string(&body).map_or(0, |t| t.len()) + ext.as_ref().map_or(0, |e| e.to_string().len());
    if size > app.limits.em_message_max_bytes {
        return Err(send_error("message is too large"));
    }
    Ok((kind, body, ext))
}

async fn send(s: EmState, c: Caller, Body(b): Body, target: Target) -> Reply {
    let app = c.app.clone();
    s.engine.apps().rate_check(&app, target.buckets().0).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let from = sender(&c, o)?;
    let to: Vec<String> = match o.get("to") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().map(|v| str_of(Some(v)).ok_or_else(EmError::bad_body)).collect::<EmResult<_>>()?,
        Some(Value::String(one)) => vec![one.clone()],
        Some(_) => return Err(EmError::bad_body()),
    };
    if to.is_empty() {
        return Err(send_error("param to can't be empty"));
    }
    if to.len() > target.max() {
        return Err(send_error(format!("params to's size can't exceed limit {}", target.max())));
    }
    let (kind, body, ext) = content_of(o, &app)?;
    let flag = |k: &str| -> EmResult<bool> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(v)) => Ok(*v),
            Some(_) => Err(EmError::bad_body()),
        }
    };
    let sync_device = flag("sync_device")?;
    let need_ack = flag("need_group_ack")?;
    let online_only = match o.get("routetype") {
        None | Some(Value::Null) => false,
        Some(Value::String(r)) => r.eq_ignore_ascii_case("ROUTE_ONLINE"),
        Some(_) => return Err(EmError::bad_body()),
    };
    let priority = match o.get("chatroom_msg_level").and_then(Value::as_str) {
        Some("high") => Priority::High,
        Some("low") => Priority::Low,
        _ => Priority::Normal,
    };
    // every target resolved before anything is sent: a bad one fails the call, nothing sent
    let mut convs = Vec::with_capacity(to.len());
    match target {
        Target::Users => {
            let mut peers = Vec::with_capacity(to.len());
            for t in &to {
                peers.push((t.clone(), username(t)?));
            }
            for (t, peer) in peers {
                convs.push((t, s.engine.conversations().direct_conversation(&app, &from, &peer).await?));
            }
        }
        _ => {
            for t in &to {
                convs.push((t.clone(), target_conv(&s, &app, t, target).await?));
            }
        }
    }
    // the message quota: each recipient (user, group or room) counts one
    s.engine.apps().rate_take(&app, target.buckets().1, to.len() as u32).await?;
    let (content, mtype, em_ext) = to_engine(&kind, &body, ext.as_ref());
    let actor = if c.is_admin() { Actor::Admin } else { Actor::User(from.clone()) };
    let mut data = Map::new();
    for (t, conv) in convs {
        let new = NewMessage {
            from: from.clone(),
            content: Some(content.clone()),
            mtype,
            ext: Some(em_ext.clone()),
            transient: online_only && target != Target::Rooms,
            // one-to-one: to the sender's other devices only with sync_device; groups always;
            // chat rooms never
            no_sync: match target {
                Target::Users => !sync_device,
                Target::Groups => false,
                Target::Rooms => true,
            },
            priority: if target == Target::Rooms { priority } else { Priority::Normal },
            receipt: need_ack && target == Target::Groups,
            ..Default::default()
        };
        let msg = s.engine.messages().send_message(&app, &conv, new, &actor).await?;
        data.insert(t, json!(msg.id.to_string()));
    }
    Ok(c.ctx.envelope(&app, "post", &format!("/messages/{}", target.name())).with("data", Value::Object(data)))
}

// ---------------------------------------------------------------------- import

async fn import_user(State(s): State<EmState>, a: Admin, b: Body) -> Reply {
    import(s, a, b, Target::Users).await
}

async fn import_group(State(s): State<EmState>, a: Admin, b: Body) -> Reply {
    import(s, a, b, Target::Groups).await
}

/// Import one message with its own time: kept in history, delivered to nobody.
async fn import(s: EmState, a: Admin, Body(b): Body, target: Target) -> Reply {
    let app = a.app.clone();
    s.engine.apps().rate_check(&app, target.buckets().2).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let req = |k: &str| match o.get(k) {
        Some(Value::String(v)) if !v.trim().is_empty() => Ok(v.clone()),
        Some(Value::Number(n)) if k == "target" => Ok(n.to_string()),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(EmError::illegal(format!("{k} not allow empty"))),
        Some(_) => Err(EmError::bad_body()),
    };
    let from = username(&req("from")?)?;
    let to = req("target")?;
    if !matches!(o.get("type"), Some(Value::String(t)) if !t.is_empty()) {
        return Err(EmError::illegal("type not allow empty"));
    }
    if !matches!(o.get("body"), Some(Value::Object(b)) if !b.is_empty()) {
        return Err(EmError::illegal("message body not allow empty"));
    }
    let (kind, body, ext) = content_of(o, &app)?;
    let at = match o.get("msg_timestamp") {
        None | Some(Value::Null) => s.engine.now(),
        Some(v) => v.as_i64().filter(|t| *t > 0).ok_or_else(|| EmError::illegal("msg_timestamp must be a time in ms"))?,
    };
    let conv = match target {
        Target::Users => s.engine.conversations().direct_conversation(&app, &from, &username(&to)?).await?,
        _ => target_conv(&s, &app, &to, target).await?,
    };
    let (content, mtype, em_ext) = to_engine(&kind, &body, ext.as_ref());
    let new = NewMessage { from: from.clone(), content: Some(content), mtype, ext: Some(em_ext), ..Default::default() };
    let msg = s.engine.messages().import_message(&app, &conv, new, at).await?;
    if o.get("is_ack_read").and_then(Value::as_bool) == Some(true) {
        for m in s.engine.conversations().members(&app, &conv).await? {
            s.engine
                .messages()
                .advance_cursor(&app, &conv, &m, confab_engine::model::Cursor::Read, confab_engine::Position::Message(msg.id))
                .await?;
        }
    }
    Ok(a.ctx
        .envelope(&app, "post", &format!("/messages/{}/import", target.name()))
        .with("entities", json!([]))
        .with("data", json!({"msg_id": msg.id.to_string()})))
}

// ---------------------------------------------------------------------- recall

/// One recall request, checked: the message, its conversation, and the answer's fields.
async fn recall_one(s: &EmState, app: &App, o: &Map<String, Value>) -> EmResult<Value> {
    let field = |k: &str| str_of(o.get(k)).filter(|v| !v.trim().is_empty());
    let msg_id = field("msg_id").ok_or_else(|| recall_error(StatusCode::BAD_REQUEST, "param msg_id can't be empty"))?;
    let to = field("to").ok_or_else(|| recall_error(StatusCode::BAD_REQUEST, "param to can't be empty"))?;
    let kind = field("chat_type")
        .or_else(|| field("chattype"))
        .ok_or_else(|| recall_error(StatusCode::BAD_REQUEST, "param chat_type can't be empty"))?;
    let force = match o.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(f)) => *f,
        Some(Value::String(f)) => f == "true",
        Some(_) => return Err(EmError::bad_body()),
    };
    let from = field("from").map(|f| f.to_lowercase()).unwrap_or_else(|| DEFAULT_FROM.to_string());
    let not_found = || recall_error(StatusCode::FORBIDDEN, "not_found msg");
    let id: i64 = msg_id.trim().parse().map_err(|_| not_found())?;
    let msg = s.engine.messages().message(app, id).await.map_err(|_| not_found())?;
    let conv = s.engine.conversations().conversation(app, msg.conv, None).await.map_err(|_| not_found())?;
    // `to` and `chat_type` must name the message's conversation
    let to_ok = match conv.kind {
        _ if chat_type(&conv) != kind => false,
        ConvKind::Normal if conv.unique => s.engine.conversations().members(app, &conv).await?.iter().any(|m| *m == to.to_lowercase()),
        _ => conv.id.to_string() == to.trim(),
    };
    if !to_ok {
        return Err(recall_error(StatusCode::BAD_REQUEST, "can't find msg to"));
    }
    if from != DEFAULT_FROM && from != msg.from {
        return Err(not_found());
    }
    let r = MessageRef { id, from: None, timestamp: None };
    // the app's server is held to Easemob's window unless it forces the recall
    if force {
        s.engine.messages().recall_message(app, &conv, &r, &Actor::Admin, None).await?;
    } else {
        s.engine.messages().recall_message_within(app, &conv, &r, &Actor::Admin, None, RECALL_WINDOW_SECS).await?;
    }
    Ok(json!({"recalled": "yes", "chattype": kind, "from": msg.from, "to": to, "msg_id": msg_id}))
}

/// `POST /messages/recall` and `/messages/msg_recall`: one message, or `{"msgs": […]}`.
async fn recall(State(s): State<EmState>, a: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&a.app, bucket::EM_MESSAGES_RECALL).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    if o.contains_key("msgs") {
        return recall_batch(&s, &a, o).await;
    }
    let data = recall_one(&s, &a.app, o).await?;
    Ok(a.ctx.envelope(&a.app, "post", "/messages/msg_recall").with("data", data))
}

/// `POST /messages/batch_recall {"msgs": […]}`: each message's outcome in `data`.
async fn batch_recall(State(s): State<EmState>, a: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&a.app, bucket::EM_MESSAGES_RECALL).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    recall_batch(&s, &a, o).await
}

async fn recall_batch(s: &EmState, a: &Admin, o: &Map<String, Value>) -> Reply {
    let msgs = o.get("msgs").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(EmError::bad_body)?;
    if msgs.len() > RECALL_BATCH_MAX {
        return Err(recall_error(StatusCode::BAD_REQUEST, format!("msgs size can't exceed limit {RECALL_BATCH_MAX}")));
    }
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        let m = m.as_object().ok_or_else(EmError::bad_body)?;
        out.push(match recall_one(s, &a.app, m).await {
            Ok(v) => v,
            Err(e) => json!({"recalled": e.description, "msg_id": str_of(m.get("msg_id")), "to": str_of(m.get("to")), "chattype": str_of(m.get("chat_type"))}),
        });
    }
    Ok(a.ctx.envelope(&a.app, "post", "/messages/batch_recall").with("data", Value::Array(out)))
}

// ---------------------------------------------------------------------- global mutes

fn no_user() -> EmError {
    EmError::new(
        StatusCode::BAD_REQUEST,
        "required_property_not_found",
        "org.apache.usergrid.persistence.exceptions.RequiredPropertyNotFoundException",
        "Entity user requires a property named username",
    )
}

/// `POST /mutes {username, chat?, groupchat?, chatroom?}` (seconds; 0 lifts, -1 for good).
async fn set_mutes(State(s): State<EmState>, a: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&a.app, bucket::EM_MUTES_SET).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let name = match o.get("username") {
        Some(Value::String(u)) => username(u).map_err(|_| no_user())?,
        _ => return Err(no_user()),
    };
    s.engine.users().get_user(&a.app, &name).await.map_err(|_| no_user())?;
    let mut set = Vec::new();
    for scope in MuteScope::ALL {
        match o.get(scope.name()) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let secs = v.as_i64().filter(|n| (-1..=MUTE_MAX_SECS).contains(n)).ok_or_else(|| {
                    EmError::illegal(format!("{} must be -1, 0 or a number of seconds up to {MUTE_MAX_SECS}", scope.name()))
                })?;
                set.push((scope, secs));
            }
        }
    }
    for (scope, secs) in set {
        s.engine.global_mutes().set_global_mute(&a.app, &name, scope, secs).await?;
    }
    Ok(a.ctx.envelope(&a.app, "post", "/mutes").with("data", json!({"result": "ok"})))
}

/// Seconds left of a mute (-1 for good).
fn remaining(until: Option<i64>, now: i64) -> i64 {
    until.map_or(-1, |u| ((u - now) + 999).max(0) / 1000)
}

/// `GET /mutes/{username}`: the seconds left in each scope (0 when not muted).
async fn get_mutes(State(s): State<EmState>, a: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&a.app, bucket::EM_MUTES_GET).await?;
    let user = user_in_path(&s.engine, &a.app, &p, "username").await.map_err(|_| no_user())?;
    let now = s.engine.now();
    let k = &a.app.keys.easemob;
    let mut data = json!({"userid": format!("{}#{}_{}", k.org_name, k.app_name, user.id), "chat": 0, "groupchat": 0, "chatroom": 0, "unixtime": now / 1000});
    for m in s.engine.global_mutes().global_mutes(&a.app, &user.id).await? {
        data[m.scope.name()] = json!(remaining(m.until, now));
    }
    Ok(a.ctx.envelope(&a.app, "get", "/mutes").with("data", data))
}

/// `GET /mutes?pageNum&pageSize`: one row per (user, scope).
async fn list_mutes(State(s): State<EmState>, a: Admin, p: Params) -> Reply {
    s.engine.apps().rate_check(&a.app, bucket::EM_MUTES_LIST).await?;
    let size = p.int("pageSize", MUTES_PAGE_DEFAULT, 1..=MUTES_PAGE_MAX)?;
    let num = p.int("pageNum", 1, 1..=i64::from(i32::MAX))?;
    let now = s.engine.now();
    let rows: Vec<Value> = s
        .engine
        .global_mutes()
        .all_global_mutes(&a.app, (num - 1) * size, size)
        .await?
        .into_iter()
        .map(|m| {
            let mut r = json!({"username": m.user});
            r[m.scope.name()] = json!(remaining(m.until, now));
            r
        })
        .collect();
    Ok(a.ctx.envelope(&a.app, "get", "/mutes").with("data", json!({"data": rows, "unixtime": now / 1000})))
}
