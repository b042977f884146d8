//! The offline push hand-off. confab speaks to no vendor push service: when a message's
//! recipients are offline it POSTs one push per message, naming them, to the app's relay
//! (`push.webhook_url`), signed; the relay talks to APNs, FCM or a vendor channel. The payload
//! is, in LeanCloud's order: what the app's `_receiversOffline` hook returned; else the
//! message's own push data; else the app's template (`push.template`). Chat rooms never push;
//! members who turned the conversation's notifications off are skipped unless the hook forces.
//! Easemob push tasks (`/push/single`, `/push/task` …) go the same way.
//!
//! Every push is an outbox item: a relay that is down delays pushes, never drops them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_engine::model::{App, ConvKind, ConvRef, Conversation, Message, MessageType};
use confab_engine::{After, Hooks, OutboxItem, PushTask};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::caller::{Caller, Request};
use crate::outbox::{Delivery, Sink};

/// The sink's name in the outbox.
pub const SINK: &str = "push";
/// The longest answer read from a relay.
const MAX_ANSWER: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// How conversations and messages are named in a push: as LeanCloud clients know them (an
/// imported conversation by its LeanCloud id). The LeanCloud face provides these.
#[derive(Clone, Copy)]
pub struct Names {
    pub conv: fn(&ConvRef) -> String,
    pub msg: fn(i64, Option<&str>) -> String,
}

/// What a message's push needs, kept with a `_receiversOffline` call until its answer shapes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushContext {
    pub conv: i64,
    #[serde(rename = "convId")]
    pub conv_id: String,
    #[serde(rename = "convType")]
    pub conv_type: String,
    pub msg: i64,
    #[serde(rename = "msgId")]
    pub msg_id: String,
    pub from: String,
    pub timestamp: i64,
    /// Offline recipients, and those of them who muted the conversation.
    pub offline: Vec<String>,
    pub muted: Vec<String>,
    #[serde(rename = "pushData", default)]
    pub push_data: Option<String>,
}

impl PushContext {
    /// Nothing to push for: no offline recipient, a chat room, a transient message.
    /// Command messages (Easemob `cmd`, MaxIM `COMMAND`) are signals between apps, not for
    /// people: no push, unless the sender gave push data.
    pub fn of(names: &Names, conv: &Conversation, msg: &Message, offline: &[String], muted: &[String]) -> Option<PushContext> {
        let signal = msg.mtype == MessageType::COMMAND && msg.push_data.is_none();
        if offline.is_empty() || conv.kind == ConvKind::Chatroom || msg.transient || signal {
            return None;
        }
        Some(PushContext {
            conv: conv.id,
            conv_id: (names.conv)(&ConvRef::of(conv)),
            conv_type: format!("{:?}", conv.kind).to_lowercase(),
            msg: msg.id,
            msg_id: (names.msg)(msg.id, msg.foreign_id.as_deref()),
            from: msg.from.clone(),
            timestamp: msg.timestamp,
            offline: offline.to_vec(),
            muted: muted.to_vec(),
            push_data: msg.push_data.clone(),
        })
    }
}

/// The app's code's say on a push (LeanCloud `_receiversOffline`'s answer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookPush {
    /// No push at all (the hook pushed itself).
    pub skip: bool,
    /// Only these of the offline recipients.
    pub offline: Option<Vec<String>>,
    /// The payload (a JSON string or an object).
    pub payload: Option<Value>,
    /// Push to members who muted the conversation too.
    pub force: bool,
}

/// A text that is a JSON object is that object; other text is an alert.
fn as_payload(v: &Value) -> Value {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(o @ Value::Object(_)) => o,
            _ => json!({ "alert": s }),
        },
        Value::Object(_) => v.clone(),
        other => json!({ "alert": other.to_string() }),
    }
}

/// `${convId}`, `${timestamp}` and `${fromClientId}` in every string of the template.
fn fill(template: &Value, ctx: &PushContext, now: i64) -> Value {
    match template {
        Value::String(s) => Value::String(
            s.replace("${convId}", &ctx.conv_id).replace("${timestamp}", &now.to_string()).replace("${fromClientId}", &ctx.from),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, ctx, now)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), fill(v, ctx, now))).collect()),
        v => v.clone(),
    }
}

/// The push of a message, if any: to whom and what, in LeanCloud's order of priority.
pub fn message_push(app: &App, ctx: &PushContext, hook: Option<&HookPush>, now: i64) -> Option<OutboxItem> {
    if app.limits.push.webhook_url.is_empty() || hook.is_some_and(|h| h.skip) {
        return None;
    }
    let force = hook.is_some_and(|h| h.force);
    let mut to: Vec<String> = match hook.and_then(|h| h.offline.as_ref()) {
        // the hook may narrow the list, never widen it
        Some(list) => ctx.offline.iter().filter(|u| list.contains(u)).cloned().collect(),
        None => ctx.offline.clone(),
    };
    if !force {
        to.retain(|u| !ctx.muted.contains(u));
    }
    if to.is_empty() {
        return None;
    }
    let (payload, from) = match (hook.and_then(|h| h.payload.as_ref()), &ctx.push_data) {
        (Some(p), _) => (as_payload(p), PAYLOAD_HOOK),
        (None, Some(d)) => (as_payload(&Value::String(d.clone())), PAYLOAD_DATA),
        (None, None) => (fill(&app.limits.push.template, ctx, now), PAYLOAD_TEMPLATE),
    };
    let body = json!({
        "kind": "message",
        "convId": ctx.conv_id,
        "convType": ctx.conv_type,
        "conv": ctx.conv,
        "msgId": ctx.msg_id,
        "msg": ctx.msg,
        "from": ctx.from,
        "timestamp": ctx.timestamp,
        "to": to,
        "payload": payload,
        "force": force,
        // where the payload came from, for the rules at delivery; never sent
        PAYLOAD_FROM: from,
    });
    Some(OutboxItem::new(SINK, "message", body))
}

/// Keys of a push item's body starting with `_` are confab's own and never reach the relay:
/// where its payload came from (`hook`, `data` or `template`) …
const PAYLOAD_FROM: &str = "_payload";
const PAYLOAD_HOOK: &str = "hook";
const PAYLOAD_DATA: &str = "data";
const PAYLOAD_TEMPLATE: &str = "template";
/// … and that the rules at delivery made it already (one of the pushes a message was split into).
const SHAPED: &str = "_shaped";

/// A message's push at delivery, for the rules of a face ([`PushRules`]) to shape.
#[derive(Clone, Debug, PartialEq)]
pub struct MessagePush {
    pub conv: i64,
    pub msg: i64,
    pub from: String,
    pub to: Vec<String>,
    pub payload: Value,
    /// The app chose the payload: its `_receiversOffline` hook answered one, or the message
    /// carries its own push data. Rules may still leave recipients out, never change it.
    pub decided: bool,
}

/// Some of a push's recipients and what they get.
#[derive(Clone, Debug, PartialEq)]
pub struct Shaped {
    pub to: Vec<String>,
    pub payload: Value,
}

/// A face's rules for its users' pushes (Easemob's push settings and templates), asked at
/// delivery with the engine at hand: who of the recipients is pushed to, and with what. Each
/// distinct payload becomes a push of its own.
#[async_trait]
pub trait PushRules: Send + Sync + 'static {
    /// The recipients who still get the push, grouped by their payload (none: no push). An
    /// error is tried again later.
    async fn shape(&self, app: &App, push: &MessagePush) -> std::result::Result<Vec<Shaped>, String>;
}

/// A message push item's parts, if it is one the rules have not shaped yet.
fn unshaped(item: &OutboxItem) -> Option<MessagePush> {
    let b = &item.body;
    if item.name != "message" || b.get(SHAPED).is_some() {
        return None;
    }
    Some(MessagePush {
        conv: b["conv"].as_i64()?,
        msg: b["msg"].as_i64()?,
        from: b["from"].as_str().unwrap_or_default().to_string(),
        to: serde_json::from_value(b["to"].clone()).ok()?,
        payload: b["payload"].clone(),
        decided: matches!(b[PAYLOAD_FROM].as_str(), Some(PAYLOAD_HOOK | PAYLOAD_DATA)),
    })
}

/// An Easemob push task, as an outbox item.
pub fn task_item(task: &PushTask) -> OutboxItem {
    let body = json!({
        "kind": "task",
        "taskId": task.id,
        "target": task.target,
        "users": task.users,
        "labels": task.labels,
        "strategy": task.strategy,
        "pushMessage": task.message,
        "createdAt": task.created_at,
    });
    OutboxItem::new(SINK, "task", body)
}

/// The push hand-off as hooks: after a message is sent, its push. When the app has LeanCloud
/// hooks, its `_receiversOffline` hook comes first and the LeanCloud face makes the push from
/// its answer ([`message_push`]).
pub struct PushHooks {
    pub names: Names,
}

#[async_trait]
impl Hooks for PushHooks {
    fn active(&self, app: &App) -> bool {
        !app.limits.push.webhook_url.is_empty()
    }

    fn after(&self, app: &App, what: &After<'_>) -> Vec<OutboxItem> {
        if let After::PushTask { task } = what {
            return vec![task_item(task)];
        }
        let After::Sent { conv, msg, offline, muted, .. } = what else { return vec![] };
        if !app.limits.hooks.leancloud.url.is_empty() {
            return vec![];
        }
        PushContext::of(&self.names, conv, msg, offline, muted)
            .and_then(|ctx| message_push(app, &ctx, None, msg.timestamp))
            .into_iter()
            .collect()
    }
}

/// `X-Confab-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`, keyed with the app's
/// push secret (else its LeanCloud master key).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers pushes to the app's relay.
pub struct PushSink {
    pub caller: Arc<Caller>,
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// The faces' rules, applied in turn to each message push before it goes out.
    pub rules: Vec<Arc<dyn PushRules>>,
}

impl PushSink {
    /// A message push through every face's rules: the pushes it becomes.
    async fn shape(&self, app: &App, push: MessagePush) -> std::result::Result<Vec<Shaped>, String> {
        let mut groups = vec![Shaped { to: push.to.clone(), payload: push.payload.clone() }];
        for rules in &self.rules {
            let mut next = Vec::new();
            for g in groups {
                let p = MessagePush { to: g.to, payload: g.payload, ..push.clone() };
                for s in rules.shape(app, &p).await? {
                    if s.to.is_empty() {
                        continue;
                    }
                    match next.iter_mut().find(|n: &&mut Shaped| n.payload == s.payload) {
                        Some(n) => n.to.extend(s.to),
                        None => next.push(s),
                    }
                }
            }
            groups = next;
        }
        Ok(groups)
    }
}

#[async_trait]
impl Sink for PushSink {
    async fn deliver(&self, app: &App, item: &OutboxItem) -> Delivery {
        let url = &app.limits.push.webhook_url;
        if url.is_empty() {
            // the app turned pushes off meanwhile
            return Delivery::done();
        }
        let mut body = item.body.clone();
        if let Some(push) = unshaped(item).filter(|_| !self.rules.is_empty()) {
            let mut groups = match self.shape(app, push).await {
                Ok(g) => g,
                Err(e) => return Delivery::retry(e),
            };
            if groups.len() > 1 {
                // one push per distinct payload, each an item of its own (made, retried and
                // counted on its own)
                let then = groups
                    .into_iter()
                    .map(|g| {
                        let mut b = item.body.clone();
                        (b["to"], b["payload"], b[SHAPED]) = (json!(g.to), g.payload, json!(true));
                        OutboxItem::new(SINK, "message", b)
                    })
                    .collect();
                return Delivery::Done { then };
            }
            let Some(g) = groups.pop() else { return Delivery::done() };
            (body["to"], body["payload"]) = (json!(g.to), g.payload);
        }
        if let Value::Object(o) = &mut body {
            o.retain(|k, _| !k.starts_with('_'));
            o.insert("id".into(), json!(item.id.to_string()));
            o.insert("app".into(), json!(app.name));
            o.insert("appId".into(), json!(app.keys.leancloud.app_id));
        }
        let body = body.to_string().into_bytes();
        let secret = if app.limits.push.secret.is_empty() { &app.keys.leancloud.master_key } else { &app.limits.push.secret };
        let ts = (self.clock)();
        let request = Request {
            app: app.id,
            sink: SINK,
            name: item.name.clone(),
            url: url.clone(),
            headers: vec![("x-confab-timestamp", ts.to_string()), ("x-confab-signature", signature(secret, ts, &body))],
            body,
            timeout: TIMEOUT,
            max_answer: MAX_ANSWER,
        };
        self.caller.deliver(request, "the relay").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PushContext {
        PushContext {
            conv: 7,
            conv_id: "c7".into(),
            conv_type: "normal".into(),
            msg: 9,
            msg_id: "m9".into(),
            from: "Tom".into(),
            timestamp: 1000,
            offline: vec!["Jerry".into(), "Spike".into(), "Tyke".into()],
            muted: vec!["Spike".into()],
            push_data: None,
        }
    }

    fn app() -> App {
        let mut a = confab_engine::model::App {
            id: 1,
            name: "a".into(),
            plan: Default::default(),
            created_at: 0,
            keys: confab_engine::model::AppKeys {
                leancloud: confab_engine::model::LeanCloudKeys {
                    app_id: "a".into(),
                    app_key: "k".into(),
                    master_key: "m".into(),
                    hook_key: "h".into(),
                },
                easemob: confab_engine::model::EasemobKeys {
                    org_name: "o".into(),
                    app_name: "a".into(),
                    client_id: "c".into(),
                    client_secret: "s".into(),
                },
                maxim: confab_engine::model::MaximKeys { app_id: "m".into(), admin_token: "t".into() },
            },
            limit_overrides: Default::default(),
            limits: Default::default(),
        };
        a.limits.push.webhook_url = "http://relay".into();
        a
    }

    #[test]
    fn priority_hook_then_push_data_then_template() {
        let app = app();
        let mut c = ctx();
        let t = message_push(&app, &c, None, 5).unwrap();
        assert_eq!(t.body["payload"], json!({"alert": "您有新的消息", "badge": "Increment"}));
        assert_eq!(t.body["to"], json!(["Jerry", "Tyke"]), "muted members are skipped");
        c.push_data = Some(r#"{"alert":"from data"}"#.into());
        assert_eq!(message_push(&app, &c, None, 5).unwrap().body["payload"], json!({"alert": "from data"}));
        let hook = HookPush { payload: Some(json!("{\"alert\":\"from hook\"}")), force: true, ..Default::default() };
        let h = message_push(&app, &c, Some(&hook), 5).unwrap();
        assert_eq!(h.body["payload"], json!({"alert": "from hook"}));
        assert_eq!(h.body["to"], json!(["Jerry", "Spike", "Tyke"]), "force reaches the muted");
        let narrow = HookPush { offline: Some(vec!["Tyke".into(), "Stranger".into()]), ..Default::default() };
        assert_eq!(message_push(&app, &c, Some(&narrow), 5).unwrap().body["to"], json!(["Tyke"]), "narrowed, never widened");
        assert!(message_push(&app, &c, Some(&HookPush { skip: true, ..Default::default() }), 5).is_none());
    }

    #[test]
    fn template_placeholders_are_filled() {
        let mut app = app();
        app.limits.push.template = json!({"alert": "${fromClientId} in ${convId}", "n": ["${timestamp}"], "badge": 1});
        let t = message_push(&app, &ctx(), None, 42).unwrap();
        assert_eq!(t.body["payload"], json!({"alert": "Tom in c7", "n": ["42"], "badge": 1}));
    }

    #[test]
    fn a_plain_text_is_an_alert() {
        assert_eq!(as_payload(&json!("hello")), json!({"alert": "hello"}));
        assert_eq!(as_payload(&json!({"alert": "x"})), json!({"alert": "x"}));
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // computed independently: printf '1700000000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000_000, br#"{"a":1}"#),
            "v1=4ef2732b0d632a6897af3a6d02a6de287f60d6c5f15dabdb0ceb045a34e3c5a7"
        );
    }
}
