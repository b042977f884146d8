//! Engine values rendered as LeanCloud JSON.

use base64::Engine as _;
use confab_engine::model::{Broadcast, Content, ConvKind, Conversation, Member, Message};
use confab_engine::time::iso_ms;
use serde_json::{json, Map, Value};

/// The marker content of a recalled message.
pub const RECALLED: &str = "{\"_lctype\":-127}";

pub fn date(ms: i64) -> Value {
    json!({"__type": "Date", "iso": iso_ms(ms)})
}

/// A `_Conversation` object. `members` and `muted` are the `m` and `mu` arrays.
pub fn conversation(c: &Conversation, members: &[String], muted: &[String]) -> Value {
    let mut o = Map::new();
    // custom fields first, so built-ins always win
    for (k, v) in &c.attrs {
        o.insert(k.clone(), v.clone());
    }
    o.insert("objectId".into(), json!(crate::extract::cid(c)));
    if let Some(n) = &c.name {
        o.insert("name".into(), json!(n));
    }
    if let Some(cr) = &c.creator {
        o.insert("c".into(), json!(cr));
    }
    match c.kind {
        ConvKind::Normal | ConvKind::Temporary | ConvKind::Thread => {
            o.insert("m".into(), json!(members));
            o.insert("unique".into(), json!(c.unique));
            if let Some(u) = &c.unique_id {
                o.insert("uniqueId".into(), json!(u));
            }
        }
        ConvKind::Chatroom => {
            o.insert("tr".into(), json!(true));
        }
        ConvKind::Service => {
            o.insert("sys".into(), json!(true));
        }
    }
    if let (ConvKind::Temporary, Some(exp)) = (c.kind, c.expires_at) {
        o.insert("temp".into(), json!(true));
        // seconds left to live (the SDK's `ttl`)
        o.insert("ttl".into(), json!(((exp - confab_engine::time::now_ms()) / 1000).max(0)));
    }
    if !muted.is_empty() {
        o.insert("mu".into(), json!(muted));
    }
    if let Some(lm) = c.last_message_at {
        o.insert("lm".into(), date(lm));
    }
    o.insert("createdAt".into(), json!(iso_ms(c.created_at)));
    o.insert("updatedAt".into(), json!(iso_ms(c.updated_at)));
    Value::Object(o)
}

/// `(data, bin)`: text as it is, bytes in base64.
pub fn content_data(c: &Content) -> (String, bool) {
    match c {
        Content::Text(s) => (s.clone(), false),
        Content::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(b), true),
    }
}

/// A message's content as LeanCloud clients see it, `(data, bin)`: the recall marker for a
/// recalled message; LeanCloud content as it was sent; and a message another face sent with a
/// built-in type (MaxIM text, image …) as the typed message LeanCloud's SDK knows.
pub fn data(m: &Message) -> (String, bool) {
    if m.recalled_at.is_some() {
        return (RECALLED.to_string(), false);
    }
    match &m.content {
        Content::Text(t) if m.mtype < 0 && !is_typed(t) => (typed(m.mtype, t, m.ext.as_ref()).to_string(), false),
        c => content_data(c),
    }
}

/// Whether text is a LeanCloud typed message (a JSON object with `_lctype`).
fn is_typed(t: &str) -> bool {
    t.trim_start().starts_with('{') && serde_json::from_str::<Value>(t).is_ok_and(|v| v.get("_lctype").is_some())
}

/// A typed message from a type, a text and another face's attachment (`ext.attachment`, MaxIM's
/// `{url, dName, fLen, width, height, duration}` or a location's `{lat, lon}`).
fn typed(mtype: i64, text: &str, ext: Option<&Value>) -> Value {
    let mut o = Map::new();
    if !text.is_empty() {
        o.insert("_lctext".into(), json!(text));
    }
    let attachment = ext.and_then(|e| e.get("attachment")).and_then(|a| match a {
        Value::String(s) => serde_json::from_str::<Value>(s).ok(),
        other => Some(other.clone()),
    });
    if let Some(a) = attachment.filter(Value::is_object) {
        if let (Some(lat), Some(lon)) = (a.get("lat").or(a.get("latitude")), a.get("lon").or(a.get("longitude"))) {
            o.insert("_lcloc".into(), json!({"latitude": lat, "longitude": lon}));
        } else {
            let mut meta = Map::new();
            for (from, to) in [("dName", "name"), ("fLen", "size"), ("width", "width"), ("height", "height"), ("duration", "duration")] {
                if let Some(v) = a.get(from) {
                    meta.insert(to.into(), v.clone());
                }
            }
            o.insert("_lcfile".into(), json!({"url": a.get("url").cloned().unwrap_or(Value::Null), "metaData": meta}));
        }
    }
    // another face's app extension, when it is a JSON object, is the typed message's attributes
    let attrs = ext.and_then(|e| e.get("ext")).and_then(|x| match x {
        Value::String(s) => serde_json::from_str::<Value>(s).ok(),
        other => Some(other.clone()),
    });
    if let Some(a) = attrs.filter(Value::is_object) {
        o.insert("_lcattrs".into(), a);
    }
    o.insert("_lctype".into(), json!(mtype));
    Value::Object(o)
}

/// One history record; `cid` is its conversation's id as LeanCloud names it.
pub fn message(m: &Message, cid: &str) -> Value {
    let (data, bin) = data(m);
    let mut o = json!({
        "timestamp": m.timestamp,
        "conv-id": cid,
        "data": data,
        "from": m.from,
        "msg-id": crate::extract::mid(m),
        "is-conv": true,
        "is-room": false,
        "to": cid,
        "bin": bin,
    });
    let extra = o.as_object_mut().expect("object");
    if let Some(ip) = &m.from_ip {
        extra.insert("from-ip".into(), json!(ip));
    }
    if let Some(t) = m.ack_at {
        extra.insert("ack-at".into(), json!(t));
    }
    if let Some(t) = m.recalled_at.or(m.edited_at) {
        extra.insert("patch-timestamp".into(), json!(t));
    }
    if m.recalled_at.is_some() {
        extra.insert("recall".into(), json!(true));
    }
    if m.mention_all {
        extra.insert("mention-all".into(), json!(true));
    }
    if !m.mentions.is_empty() {
        extra.insert("mention-client-ids".into(), json!(m.mentions));
    }
    o
}

/// History records; `foreign` names the imported conversations among them (the others go by
/// confab's id).
pub fn messages(ms: &[Message], foreign: &std::collections::HashMap<i64, String>) -> Value {
    Value::Array(ms.iter().map(|m| message(m, &foreign.get(&m.conv).cloned().unwrap_or_else(|| m.conv.to_string()))).collect())
}

/// `{"msg-id", "timestamp"}`, the answer to a send.
pub fn sent(id: i64, timestamp: i64) -> Value {
    json!({"msg-id": id.to_string(), "timestamp": timestamp})
}

/// The answer to a send, for a stored message.
pub fn sent_message(m: &Message) -> Value {
    json!({"msg-id": crate::extract::mid(m), "timestamp": m.timestamp})
}

/// A subscription record: `{timestamp, subscriber, conv_id}`.
pub fn subscription(m: &Member) -> Value {
    json!({"timestamp": m.joined_at, "subscriber": m.user, "conv_id": m.conv.to_string()})
}

pub fn broadcast(b: &Broadcast) -> Value {
    let (data, bin) = content_data(&b.content);
    let mut o = json!({
        "msg-id": b.id.to_string(),
        "conv-id": b.conv.to_string(),
        "from": b.from,
        "data": data,
        "bin": bin,
        "timestamp": b.timestamp,
        "valid_till": b.valid_till,
    });
    if let Some(p) = &b.push {
        o["push"] = p.clone();
    }
    o
}
