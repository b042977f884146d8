//! `MessageBody` and the engine's messages. A message sent over msync is kept in the engine in
//! the shape the Easemob REST face writes (`messages::to_engine`: text, attachment, `ext.em`), so
//! every face reads it, plus its `MessageBody` bytes as sent (`ext.msync.body`), which msync
//! recipients get back verbatim: every content type round-trips, and fields the sender did not
//! set stay absent (the SDK tests `subType`'s presence). A message from elsewhere (REST,
//! LeanCloud, MaxIM) is encoded from the REST rendering (`messages::from_engine`).

use base64::Engine as _;
use confab_engine::model::Message;
use prost::Message as _;
use serde_json::{json, Map, Value};

use super::proto::key_value::ValueType;
use super::proto::message_body::content::Type as CType;
use super::proto::message_body::{Content, Type as BType};
use super::proto::*;

/// The `ext` key under which a msync message keeps its own bytes and the sending device.
pub const EXT_KEY: &str = "msync";

/// A REST message's type and body (`{"msg": …}`, `{"url": …}`, …).
pub type RestContent = (String, Map<String, Value>);

/// A sent body's first content as the REST face's `(type, body)`, and its `ext`; no content
/// when the body has none (the bytes still carry whatever it is).
pub fn to_rest(b: &MessageBody) -> (Option<RestContent>, Option<Value>) {
    let ext = (!b.ext.is_empty()).then(|| kv_to_json(&b.ext));
    let Some(c) = b.contents.first() else { return (None, ext) };
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.to_string(), v);
        }
    };
    let s = |x: &Option<String>| x.as_ref().map(|v| json!(v));
    let file = |put: &mut dyn FnMut(&str, Option<Value>)| {
        put("url", s(&c.remote_path));
        put("filename", s(&c.display_name));
        put("secret", s(&c.secret_key));
        put("file_length", c.file_length.map(|l| json!(l)));
    };
    let kind = match c.r#type.and_then(|t| CType::try_from(t).ok()).unwrap_or(CType::Text) {
        CType::Text | CType::Combine => {
            put("msg", Some(json!(c.text.clone().unwrap_or_default())));
            "txt"
        }
        CType::Image => {
            file(&mut put);
            put("size", c.size.as_ref().map(|z| json!({"width": z.width, "height": z.height})));
            "img"
        }
        CType::Video => {
            file(&mut put);
            put("length", c.duration.map(|d| json!(d)));
            "video"
        }
        CType::Voice => {
            file(&mut put);
            put("length", c.duration.map(|d| json!(d)));
            "audio"
        }
        CType::File => {
            file(&mut put);
            "file"
        }
        CType::Location => {
            put("lat", c.latitude.map(|v| json!(v.to_string())));
            put("lng", c.longitude.map(|v| json!(v.to_string())));
            put("addr", Some(json!(c.address.clone().unwrap_or_default())));
            "loc"
        }
        CType::Command => {
            put("action", Some(json!(c.action.clone().unwrap_or_default())));
            "cmd"
        }
        CType::Custom => {
            put("customEvent", s(&c.custom_event));
            if !c.custom_exts.is_empty() {
                put("customExts", Some(kv_to_json(&c.custom_exts)));
            }
            "custom"
        }
    };
    (Some((kind.to_string(), o)), ext)
}

/// `ext.msync` of a message sent over msync: its body bytes and the device it came from.
pub fn msync_ext(payload: &[u8], resource: &str) -> Value {
    json!({"body": base64::engine::general_purpose::STANDARD.encode(payload), "res": resource})
}

/// The device a msync message was sent from.
pub fn sender_resource(m: &Message) -> Option<&str> {
    m.ext.as_ref()?.get(EXT_KEY)?.get("res")?.as_str()
}

/// A stored message as a `MessageBody`'s bytes: the sender's own, or built from its REST
/// rendering. `kind` is how the conversation is addressed, `to` its name (the peer, or the
/// group id).
pub fn payload(m: &Message, kind: BType, to: &str) -> Vec<u8> {
    let own = m.ext.as_ref().and_then(|e| e.get(EXT_KEY)?.get("body")?.as_str().map(str::to_string));
    if let Some(bytes) = own.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()) {
        return bytes;
    }
    build(m, kind, to).encode_to_vec()
}

fn build(m: &Message, kind: BType, to: &str) -> MessageBody {
    let (rest_kind, body, ext) = crate::messages::from_engine(m);
    let f = |k: &str| body.get(k).and_then(|v| v.as_str().map(str::to_string).or_else(|| (!v.is_null()).then(|| v.to_string())));
    let num = |k: &str| body.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
    let int = |k: &str| num(k).map(|n| n as i32);
    let mut c = Content::default();
    let ctype = match rest_kind.as_str() {
        "img" | "video" | "audio" | "file" => {
            c.remote_path = f("url");
            c.display_name = f("filename");
            c.secret_key = f("secret");
            c.file_length = int("file_length");
            if rest_kind == "img" {
                let size = body.get("size");
                let dim = |k: &str| size.and_then(|s| s.get(k)).and_then(Value::as_f64);
                if dim("width").is_some() || dim("height").is_some() {
                    c.size = Some(message_body::content::Size { width: dim("width"), height: dim("height") });
                }
            } else if rest_kind != "file" {
                c.duration = int("length");
            }
            match rest_kind.as_str() {
                "img" => CType::Image,
                "video" => CType::Video,
                "audio" => CType::Voice,
                _ => CType::File,
            }
        }
        "loc" => {
            c.latitude = num("lat");
            c.longitude = num("lng");
            c.address = f("addr");
            CType::Location
        }
        "cmd" => {
            c.action = f("action");
            CType::Command
        }
        "custom" => {
            c.custom_event = f("customEvent");
            c.custom_exts = body.get("customExts").map(json_to_kv).unwrap_or_default();
            CType::Custom
        }
        _ => {
            c.text = Some(f("msg").unwrap_or_default());
            CType::Text
        }
    };
    c.r#type = Some(ctype as i32);
    MessageBody {
        r#type: Some(kind as i32),
        from: Some(Jid { name: Some(m.from.clone()), ..Default::default() }),
        to: Some(Jid { name: Some(to.to_string()), ..Default::default() }),
        contents: vec![c],
        ext: json_to_kv(&ext),
        ..Default::default()
    }
}

/// A JSON object as `KeyValue`s, typed as the SDK types an `ext` object (spec §8.3).
pub fn json_to_kv(v: &Value) -> Vec<KeyValue> {
    let Some(o) = v.as_object() else { return vec![] };
    o.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let mut kv = KeyValue { key: Some(k.clone()), ..Default::default() };
            let t = match v {
                Value::Bool(b) => {
                    kv.varint_value = Some(i64::from(*b));
                    ValueType::Bool
                }
                Value::Number(n) if n.is_i64() => {
                    kv.varint_value = n.as_i64();
                    ValueType::Int
                }
                Value::Number(n) => {
                    kv.double_value = n.as_f64();
                    ValueType::Double
                }
                Value::String(s) => {
                    kv.string_value = Some(s.clone());
                    ValueType::String
                }
                other => {
                    kv.string_value = Some(other.to_string());
                    ValueType::JsonString
                }
            };
            kv.r#type = Some(t as i32);
            kv
        })
        .collect()
}

/// `KeyValue`s as a JSON object, read as the SDK reads them.
pub fn kv_to_json(kvs: &[KeyValue]) -> Value {
    let mut o = Map::new();
    for kv in kvs {
        let Some(k) = kv.key.clone() else { continue };
        let v = match kv.r#type.and_then(|t| ValueType::try_from(t).ok()) {
            Some(ValueType::Bool) => json!(kv.varint_value.unwrap_or(0) != 0),
            Some(ValueType::Int | ValueType::Uint | ValueType::Llint) => json!(kv.varint_value.unwrap_or(0)),
            Some(ValueType::Float) => json!(kv.float_value.unwrap_or(0.0)),
            Some(ValueType::Double) => json!(kv.double_value.unwrap_or(0.0)),
            Some(ValueType::JsonString) => {
                let s = kv.string_value.clone().unwrap_or_default();
                serde_json::from_str(&s).unwrap_or(Value::String(s))
            }
            _ => json!(kv.string_value.clone().unwrap_or_default()),
        };
        o.insert(k, v);
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_engine::model::Content as EContent;

    #[test]
    fn a_text_body_reads_as_rest_and_ext_keeps_its_types() {
        let b = MessageBody {
            r#type: Some(BType::Chat as i32),
            contents: vec![Content { r#type: Some(CType::Text as i32), text: Some("hi".into()), ..Default::default() }],
            ext: json_to_kv(&json!({"a": 1, "b": true, "c": "x", "d": {"e": [1]}, "f": 1.5})),
            ..Default::default()
        };
        let (rest, ext) = to_rest(&b);
        let (kind, body) = rest.unwrap();
        assert_eq!((kind.as_str(), body["msg"].as_str()), ("txt", Some("hi")));
        assert_eq!(ext.unwrap(), json!({"a": 1, "b": true, "c": "x", "d": {"e": [1]}, "f": 1.5}));
    }

    #[test]
    fn an_engine_message_without_its_own_bytes_is_built_from_its_rest_shape() {
        let (content, mtype, ext) = crate::messages::to_engine("txt", json!({"msg": "yo"}).as_object().unwrap(), Some(&json!({"k": "v"})));
        let m = Message { mtype, ext: Some(ext), ..Message::new(1, 9, 3, "bob", 5, content) };
        let b = MessageBody::decode(payload(&m, BType::Chat, "alice").as_slice()).unwrap();
        assert_eq!(b.from.unwrap().name.as_deref(), Some("bob"));
        assert_eq!(b.to.unwrap().name.as_deref(), Some("alice"));
        assert_eq!(b.contents[0].text.as_deref(), Some("yo"));
        assert_eq!(b.contents[0].sub_type, None, "no subType: a text, not a combined message");
        assert_eq!(kv_to_json(&b.ext), json!({"k": "v"}));
        let plain = Message::new(1, 9, 3, "bob", 5, EContent::Text("plain".into()));
        let b = MessageBody::decode(payload(&plain, BType::Groupchat, "77").as_slice()).unwrap();
        assert_eq!((b.r#type, b.contents[0].text.as_deref()), (Some(BType::Groupchat as i32), Some("plain")));
    }

    #[test]
    fn an_attachment_reaches_the_other_faces_with_its_share_secret() {
        // a LeanCloud or MaxIM client gets the URL alone: the restricted file's secret rides in it
        let url = "https://h/org/app/chatfiles/u1";
        let img = json!({"url": url, "secret": "s3+/=", "filename": "a.png", "size": {"width": 2, "height": 3}});
        let (_, _, ext) = crate::messages::to_engine("img", img.as_object().unwrap(), None);
        assert_eq!(ext["attachment"]["url"], format!("{url}?share-secret=s3%2B%2F%3D"));
        assert_eq!((ext["attachment"]["width"].as_i64(), ext["attachment"]["height"].as_i64()), (Some(2), Some(3)));
        assert_eq!(ext["em"]["body"]["url"], url, "Easemob readers get the body as sent");
        let file = json!({"url": format!("{url}?em-redirect=true"), "secret": "s"});
        let (_, _, ext) = crate::messages::to_engine("file", file.as_object().unwrap(), None);
        assert_eq!(ext["attachment"]["url"], format!("{url}?em-redirect=true&share-secret=s"));
        let (_, _, ext) = crate::messages::to_engine("audio", json!({"url": url}).as_object().unwrap(), None);
        assert_eq!(ext["attachment"]["url"], url, "no secret: the URL as it is");
    }

    #[test]
    fn another_faces_file_keeps_its_length() {
        // a LeanCloud typed audio message (metaData.size) and a MaxIM file (attachment.fLen)
        let lc = json!({"_lctype": -3, "_lcfile": {"url": "https://f/v.mp3", "metaData": {"name": "v.mp3", "size": 2048, "duration": 6}}});
        let m = Message { mtype: -3, ..Message::new(1, 9, 3, "bob", 5, EContent::Text(lc.to_string())) };
        let c = &MessageBody::decode(payload(&m, BType::Chat, "alice").as_slice()).unwrap().contents[0];
        assert_eq!((c.r#type, c.file_length, c.duration), (Some(CType::Voice as i32), Some(2048), Some(6)));
        assert_eq!(c.display_name.as_deref(), Some("v.mp3"));
        let a = json!({"attachment": {"url": "https://f/d.pdf", "dName": "d.pdf", "fLen": 777}});
        let m = Message { mtype: -6, ext: Some(a), ..Message::new(1, 9, 3, "bob", 5, EContent::Text(String::new())) };
        let c = &MessageBody::decode(payload(&m, BType::Chat, "alice").as_slice()).unwrap().contents[0];
        assert_eq!((c.r#type, c.file_length), (Some(CType::File as i32), Some(777)));
        // no length given: none, not a null in the REST rendering
        let m = Message {
            mtype: -6,
            ext: Some(json!({"attachment": {"url": "u"}})),
            ..Message::new(1, 9, 3, "bob", 5, EContent::Text(String::new()))
        };
        assert_eq!(crate::messages::from_engine(&m).1.get("file_length"), None);
    }

    #[test]
    fn a_msync_message_goes_back_as_its_own_bytes() {
        let raw = vec![8, 1, 0x22, 6, 8, 0, 0x12, 2, b'h', b'i'];
        let m = Message {
            ext: Some(json!({EXT_KEY: msync_ext(&raw, "webim_1")})),
            ..Message::new(1, 9, 3, "bob", 5, EContent::Text("hi".into()))
        };
        assert_eq!(payload(&m, BType::Chat, "alice"), raw);
        assert_eq!(sender_resource(&m), Some("webim_1"));
    }
}
