//! Engine values as MaxIM JSON, and MaxIM's content types as the engine's.

use confab_engine::model::{ConvKind, Conversation, Member, Message, MessageType, Role, User};
use serde_json::{json, Value};

/// MaxIM `content_type` numbers that are messages, with the engine type and MaxIM's name.
const TYPES: [(i64, i64, &str); 8] = [
    (0, MessageType::TEXT, "TEXT"),
    (1, MessageType::IMAGE, "IMAGE"),
    (2, MessageType::AUDIO, "AUDIO"),
    (3, MessageType::VIDEO, "VIDEO"),
    (4, MessageType::FILE, "FILE"),
    (5, MessageType::LOCATION, "LOCATION"),
    (6, MessageType::COMMAND, "COMMAND"),
    (7, MessageType::FORWARD, "FORWARD"),
];

/// The engine type of a message `content_type` (0–7).
pub fn engine_type(content_type: i64) -> Option<i64> {
    TYPES.iter().find(|t| t.0 == content_type).map(|t| t.1)
}

/// MaxIM's name for an engine type; anything not MaxIM's own reads as TEXT.
fn ctype(mtype: i64) -> &'static str {
    TYPES.iter().find(|t| t.1 == mtype).map_or("TEXT", |t| t.2)
}

fn as_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A message as MaxIM shows it: `(ctype, content, attachment, ext, config)`. A LeanCloud typed
/// message (`{"_lctype":…}`) shows as its text with its file or location as the attachment.
pub fn view(m: &Message) -> (&'static str, String, String, String, String) {
    let text = match &m.content {
        confab_engine::model::Content::Text(t) => t.clone(),
        confab_engine::model::Content::Binary(b) => String::from_utf8_lossy(b).into_owned(),
    };
    let typed = text
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str::<Value>(&text).ok())
        .flatten()
        .filter(|v| v.get("_lctype").is_some());
    if let Some(t) = typed {
        let attachment = if let Some(f) = t.get("_lcfile") {
            let meta = f.get("metaData").cloned().unwrap_or(json!({}));
            let pick = |k: &str| meta.get(k).or(f.get(k)).cloned().unwrap_or(Value::Null);
            let mut a = json!({"url": f.get("url"), "dName": pick("name"), "fLen": pick("size")});
            for k in ["width", "height", "duration"] {
                if !pick(k).is_null() {
                    a[k] = pick(k);
                }
            }
            a.to_string()
        } else if let Some(l) = t.get("_lcloc") {
            json!({"lat": l.get("latitude"), "lon": l.get("longitude")}).to_string()
        } else {
            String::new()
        };
        let ext = t.get("_lcattrs").map(|a| a.to_string()).unwrap_or_default();
        return (ctype(m.mtype), as_text(t.get("_lctext")), attachment, ext, String::new());
    }
    let part = |k: &str| as_text(m.ext.as_ref().and_then(|e| e.get(k)));
    (ctype(m.mtype), text, part("attachment"), part("ext"), part("config"))
}

/// One history message. `status` is what the message's recipients did with it.
pub fn message(m: &Message, from_uid: i64, to_uid: i64, status: &str) -> Value {
    let (ctype, content, attachment, ext, config) = view(m);
    json!({
        "msg_id": m.id,
        "ctype": ctype,
        "content": content,
        "attachment": attachment,
        "config": config,
        "ext": ext,
        "timestamp": m.timestamp,
        "status": status,
        "from_xid": {"uid": from_uid, "device_sn": 0},
        "to_xid": {"uid": to_uid, "device_sn": 0},
    })
}

/// The custom field that marks a MaxIM chat room (type 2) among stored groups.
pub const TYPE_ATTR: &str = "maxim_type";

/// `GroupInfoAndSettingsDto`.
pub fn group(conv: &Conversation, owner: Option<i64>, count: i64, capacity: i64) -> Value {
    let s = &conv.settings;
    json!({
        "group_id": conv.id,
        "owner_id": owner,
        "name": conv.name.clone().unwrap_or_default(),
        "description": s.description.clone().unwrap_or_default(),
        "avatar": s.avatar.clone().unwrap_or_default(),
        "type": if conv.kind == ConvKind::Chatroom || conv.attrs.get(TYPE_ATTR) == Some(&json!(2)) { 2 } else { 0 },
        "status": 0,
        "created_at": conv.created_at,
        "updated_at": conv.updated_at,
        "capacity": capacity,
        "count": count,
        "apply_approval": if s.approval { 1 } else { 0 },
        "member_invite": if s.members_invite { 1 } else { 0 },
        "member_modify": 0,
        "read_ack": 0,
        "history_visible": 1,
        "hide_member_info": 0,
        "ban_expire_time": if s.mute_all { -1 } else { 0 },
        "msg_mute_mode": 0,
        "msg_push_mode": 0,
        "ext": as_text(conv.attrs.get("ext")),
    })
}

/// A member in `/group/member_list`.
pub fn member(m: &Member, uid: i64) -> Value {
    json!({
        "user_id": uid,
        "join_time": m.joined_at,
        "display_name": m.nickname.clone().unwrap_or_default(),
        "expired_time": m.muted_until.filter(|t| *t != i64::MAX).unwrap_or(if m.muted_until.is_some() { -1 } else { 0 }),
        "role": match m.role { Role::Owner => "owner", Role::Admin => "admin", _ => "member" },
    })
}

/// `UserSettings`, what registration answers.
pub fn settings(u: &User) -> Value {
    json!({
        "user_id": u.num,
        "auth_mode": 0,
        "auto_download": true,
        "group_confirm": false,
        "no_sounds": false,
        "no_push": false,
        "vibratory": true,
        "no_push_detail": false,
        "no_push_start_hour": 0,
        "no_push_end_hour": 0,
    })
}

/// `/user/profile`.
pub fn profile(u: &User) -> Value {
    let attr = |k: &str| as_text(u.attributes.get(k));
    json!({
        "user_id": u.num,
        "username": u.username.clone().unwrap_or_else(|| u.id.clone()),
        "nick_name": u.nickname.clone().unwrap_or_default(),
        "avatar": attr("avatar"),
        "mobile": attr("mobile"),
        "email": attr("email"),
        "description": attr("description"),
        "public_info": attr("public_info"),
        "private_info": attr("private_info"),
    })
}
