//! LeanCloud's records as engine values: `_Conversation` rows (REST object encoding) and history
//! records (`msg-id`, `timestamp`, `from`, `data`, `bin`, …).

use std::collections::HashMap;

use base64::Engine as _;
use confab_engine::model::{Attrs, Audience, Content, ConvKind, Message, Role};
use confab_engine::time::parse_iso;
use confab_engine::{ImportedConversation, ImportedUser};
use serde_json::{Map, Value};

/// Keys of a `_Conversation` row that are not custom attributes.
const BUILT_IN: &[&str] =
    &["objectId", "name", "c", "m", "mu", "lm", "tr", "sys", "unique", "uniqueId", "createdAt", "updatedAt", "ACL", "temp", "ttl"];

/// A date in either of LeanCloud's encodings: an ISO string (`createdAt`, `updatedAt`) or
/// `{"__type": "Date", "iso": …}`; numbers are taken as Unix ms.
pub fn date(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_iso(s),
        Value::Number(n) => n.as_i64(),
        Value::Object(o) if o.get("__type").and_then(Value::as_str) == Some("Date") => {
            o.get("iso").and_then(Value::as_str).and_then(parse_iso)
        }
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// Why a row cannot be imported.
pub fn bad(msg: impl Into<String>) -> String {
    msg.into()
}

/// A `_Conversation` row. `roles` are the `_ConversationMemberInfo` roles of its members
/// (Owner, Manager); the creator is the owner whatever the rows say, as the SDK has it.
pub fn conversation(row: &Map<String, Value>, roles: &HashMap<String, Role>) -> Result<ImportedConversation, String> {
    let id = row.get("objectId").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| bad("no objectId"))?;
    let flag = |k: &str| row.get(k).and_then(Value::as_bool).unwrap_or(false);
    let kind = if flag("tr") {
        ConvKind::Chatroom
    } else if flag("sys") {
        ConvKind::Service
    } else {
        ConvKind::Normal
    };
    let creator = row.get("c").and_then(Value::as_str).map(str::to_string);
    let mut members: Vec<(String, Role)> = Vec::new();
    if kind == ConvKind::Normal {
        for m in strings(row.get("m")) {
            if members.iter().any(|(u, _)| *u == m) {
                continue;
            }
            let role = if creator.as_deref() == Some(m.as_str()) { Role::Owner } else { roles.get(&m).copied().unwrap_or(Role::Member) };
            members.push((m, role));
        }
    }
    let created_at = row.get("createdAt").and_then(date).ok_or_else(|| bad("no createdAt"))?;
    let mut attrs = Attrs::new();
    for (k, v) in row {
        if !BUILT_IN.contains(&k.as_str()) {
            attrs.insert(k.clone(), v.clone());
        }
    }
    let unique = flag("unique") && kind == ConvKind::Normal;
    Ok(ImportedConversation {
        foreign_id: id.to_string(),
        kind,
        name: row.get("name").and_then(Value::as_str).map(str::to_string),
        creator,
        unique,
        unique_id: row.get("uniqueId").and_then(Value::as_str).filter(|_| unique).map(str::to_string),
        attrs,
        created_at,
        updated_at: row.get("updatedAt").and_then(date).unwrap_or(created_at),
        last_message_at: row.get("lm").and_then(date),
        members,
        muted: strings(row.get("mu")),
    })
}

/// A `_ConversationMemberInfo` row: (conversation objectId, client id, role).
pub fn member_role(row: &Map<String, Value>) -> Result<(String, String, Role), String> {
    let cid = row.get("cid").and_then(Value::as_str).ok_or_else(|| bad("no cid"))?;
    let client = row.get("clientId").and_then(Value::as_str).ok_or_else(|| bad("no clientId"))?;
    let role = match row.get("role").and_then(Value::as_str) {
        Some("Owner") => Role::Owner,
        Some("Manager") => Role::Admin,
        Some("Member") | None => Role::Member,
        Some(other) => return Err(bad(format!("unknown role {other}"))),
    };
    Ok((cid.to_string(), client.to_string(), role))
}

/// A `_User` row: its objectId, username, LeanCloud password hash and salt (export only: the
/// REST API never returns them) and session token, if there.
pub fn user(row: &Map<String, Value>) -> Result<ImportedUser, String> {
    let id = row.get("objectId").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| bad("no objectId"))?;
    let s = |k: &str| row.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
    let created_at = row.get("createdAt").and_then(date).unwrap_or(0);
    Ok(ImportedUser {
        id: id.to_string(),
        username: s("username"),
        password: s("password").zip(s("salt")).map(|(hash, salt)| (salt, hash)),
        session_token: s("sessionToken"),
        created_at,
        updated_at: row.get("updatedAt").and_then(date).unwrap_or(created_at),
    })
}

/// LeanCloud's recalled-message type.
const RECALLED_TYPE: i64 = -127;

/// A history record as a message of conversation `conv` (numbered by the engine). `audience`:
/// everyone, or (a service conversation's history, read user by user) that user.
pub fn message(r: &Value, audience: Audience) -> Result<Message, String> {
    let id = r.get("msg-id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| bad("no msg-id"))?;
    let timestamp = r.get("timestamp").and_then(Value::as_i64).ok_or_else(|| bad("no timestamp"))?;
    let from = r.get("from").and_then(Value::as_str).ok_or_else(|| bad("no from"))?;
    let data = r.get("data").and_then(Value::as_str).unwrap_or_default();
    let bin = r.get("bin").and_then(Value::as_bool).unwrap_or(false);
    let content = if bin {
        Content::Binary(base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| bad(format!("bin data is not base64: {e}")))?)
    } else {
        Content::Text(data.to_string())
    };
    let mtype = match &content {
        Content::Text(t) => confab_face_leancloud::messages::lctype(t),
        Content::Binary(_) => 0,
    };
    let patched = ["patch-timestamp", "patchTimestamp"].iter().find_map(|k| r.get(*k).and_then(Value::as_i64));
    let recalled = r.get("recall").and_then(Value::as_bool).unwrap_or(false) || mtype == RECALLED_TYPE;
    let mention_all = ["mention-all", "mentionAll"].iter().any(|k| r.get(*k).and_then(Value::as_bool) == Some(true));
    let mentions = ["mention-client-ids", "mention-pids", "mentionPids"]
        .iter()
        .map(|k| strings(r.get(*k)))
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    let mut m = Message::new(0, 0, 0, from, timestamp, content);
    m.mtype = mtype;
    m.foreign_id = Some(id.to_string());
    m.from_ip = r.get("from-ip").and_then(Value::as_str).map(str::to_string);
    m.ack_at = r.get("ack-at").and_then(Value::as_i64);
    m.mention_all = mention_all;
    m.mentions = mentions;
    m.recalled_at = recalled.then(|| patched.unwrap_or(timestamp));
    m.edited_at = patched.filter(|_| !recalled);
    m.audience = audience;
    Ok(m)
}

/// A `_SysMessage` row (a user's message to a service conversation): (the conversation's
/// objectId, the message, addressed to the app and its sender).
pub fn sys_message(row: &Map<String, Value>) -> Result<(String, Message), String> {
    let conv = match row.get("conv") {
        Some(Value::Object(p)) => p.get("objectId").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
    .ok_or_else(|| bad("no conv"))?;
    let record = serde_json::json!({
        "msg-id": row.get("msgId").cloned().unwrap_or(Value::Null),
        "timestamp": row.get("timestamp").and_then(date).or_else(|| row.get("createdAt").and_then(date)),
        "from": row.get("from").cloned().unwrap_or(Value::Null),
        "data": row.get("data").cloned().unwrap_or(Value::Null),
        "bin": row.get("bin").cloned().unwrap_or(Value::Bool(false)),
        "from-ip": row.get("fromIp").cloned().unwrap_or(Value::Null),
        "ack-at": row.get("ackAt").and_then(date),
    });
    let from = record["from"].as_str().unwrap_or_default().to_string();
    Ok((conv.to_string(), message(&record, Audience::Only(vec![from]))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn conversation_rows_keep_ids_dates_members_and_custom_fields() {
        let row =
            obj(json!({"objectId":"5a5ecde6c3422b738c8779d7","name":"test conv1","c":"tom","m":["jerry","spike","tom"],"mu":["spike"],
            "attr":{"type":"private"},"level":3,"lm":{"__type":"Date","iso":"2018-03-02T09:20:11.003Z"},"ACL":{"*":{"read":true}},
            "createdAt":"2018-01-17T04:15:33.386Z","updatedAt":"2018-03-02T09:20:11.010Z"}));
        let roles = HashMap::from([("jerry".to_string(), Role::Admin)]);
        let c = conversation(&row, &roles).unwrap();
        assert_eq!((c.foreign_id.as_str(), c.kind, c.creator.as_deref()), ("5a5ecde6c3422b738c8779d7", ConvKind::Normal, Some("tom")));
        assert_eq!(c.members, vec![("jerry".into(), Role::Admin), ("spike".into(), Role::Member), ("tom".into(), Role::Owner)]);
        assert_eq!(c.muted, vec!["spike".to_string()]);
        assert_eq!((c.created_at, c.last_message_at), (1_516_162_533_386, Some(1_519_982_411_003)));
        assert_eq!(Value::Object(c.attrs), json!({"attr": {"type": "private"}, "level": 3}));
        let room = conversation(
            &obj(json!({"objectId":"5b0f8b1e9f54540031c4e8a2","tr":true,"createdAt":"2018-05-31T05:41:18.123Z"})),
            &HashMap::new(),
        );
        assert_eq!(room.unwrap().kind, ConvKind::Chatroom);
        assert!(conversation(&obj(json!({"name": "no id"})), &HashMap::new()).is_err());
    }

    #[test]
    fn history_records_keep_ids_timestamps_content_and_marks() {
        let r = json!({"msg-id":"4XC_IHK+Ry6CXzIPq_nc7Q","conv-id":"5667070f60b2298fdddb683700000000","ack-at":1449683354932_i64,"is-conv":true,
            "from":"5666d78c60b204d588fd63aa","bin":false,"timestamp":1449661888571_i64,"is-room":false,"from-ip":"223.104.9.13",
            "to":"5667070f60b2298fdddb6837","data":"{\"_lctype\":-1,\"_lctext\":\"真不懂\"}"});
        let m = message(&r, Audience::All).unwrap();
        assert_eq!(
            (m.foreign_id.as_deref(), m.timestamp, m.from.as_str(), m.mtype),
            (Some("4XC_IHK+Ry6CXzIPq_nc7Q"), 1449661888571, "5666d78c60b204d588fd63aa", -1)
        );
        assert_eq!((m.ack_at, m.from_ip.as_deref()), (Some(1449683354932), Some("223.104.9.13")));
        let b =
            message(&json!({"msg-id":"qNkRkFWOeSqP65S9fDyHJw","from":"x","bin":true,"timestamp":1,"data":"AAECAwQFBgc="}), Audience::All)
                .unwrap();
        assert_eq!(b.content, Content::Binary(vec![0, 1, 2, 3, 4, 5, 6, 7]));
        let recalled =
            message(&json!({"msg-id":"r","from":"x","timestamp":5,"data":"{\"_lctype\":-127}","patch-timestamp":9}), Audience::All)
                .unwrap();
        assert_eq!((recalled.recalled_at, recalled.edited_at), (Some(9), None));
        let edited = message(
            &json!({"msg-id":"e","from":"x","timestamp":5,"data":"new","patch-timestamp":7,"mention-all":true,"mention-client-ids":["a"]}),
            Audience::All,
        )
        .unwrap();
        assert_eq!(
            (edited.recalled_at, edited.edited_at, edited.mention_all, edited.mentions.clone()),
            (None, Some(7), true, vec!["a".to_string()])
        );
        assert!(message(&json!({"timestamp": 1, "from": "x"}), Audience::All).is_err());
    }
}
