//! LeanCloud IM hooks: the app's LeanEngine cloud functions (`_messageReceived`,
//! `_conversationStart`, … `_rtmClientSign`), called as LeanCloud's IM server calls them
//! (`POST {hooks.leancloud.url}/1.1/functions/<hook>`, the spec's bodies and headers), their
//! answers honoured. See `docs/hooks.md` ("LeanCloud IM hooks").
//!
//! * [`LcHooks`] is asked by the engine before a user's action (the blocking hooks, each within
//!   `hooks.leancloud.timeout_ms`; a failed call lets the action through unless
//!   `hooks.leancloud.fail_on_error`), and makes the outbox items of the after-the-fact hooks.
//! * [`LcSink`] delivers those items; `_receiversOffline`'s answer shapes the message's push.
//! * Which hooks an app defines is read from `_ops/metadatas`, cached per app for
//!   [`METADATA_TTL`]; undefined hooks are not called.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use confab_engine::model::{App, ConvKind, ConvRef, Conversation, Message};
use confab_engine::{After, AppNote, Before, Error, Hooks, Offline, OutboxItem, Refused, Result, Verdict};
use confab_engine::{AttrOp, ConvUpdate};
use confab_hooks::push::{message_push, HookPush, Names, PushContext};
use confab_hooks::{Caller, Delivery, Request, Sink};
use md5::{Digest, Md5};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::extract::{cid_of, mid_of};

/// The sink's name in the outbox.
pub const SINK: &str = "leancloud";
/// The longest answer read from a hook.
pub const MAX_ANSWER: usize = 64 * 1024;
/// How long the list of an app's defined hooks is trusted (LeanCloud's own takes up to three
/// minutes to notice a new deployment).
pub const METADATA_TTL: Duration = Duration::from_secs(30);
/// After-the-fact calls wait as long as LeanEngine lets a function run.
const AFTER_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at `_receiversOffline` before the push goes out as if the hook had failed (a push
/// that is hours late is worth less than the default push now).
const RECEIVERS_OFFLINE_ATTEMPTS: u32 = 3;

/// How LeanCloud clients name conversations and messages.
pub const NAMES: Names = Names { conv: cid_of, msg: mid_of };

/// Every IM hook, as a cloud function name.
pub const HOOK_NAMES: [&str; 14] = [
    "_messageReceived",
    "_receiversOffline",
    "_messageSent",
    "_messageUpdate",
    "_conversationStart",
    "_conversationStarted",
    "_conversationAdd",
    "_conversationAdded",
    "_conversationRemove",
    "_conversationRemoved",
    "_conversationUpdate",
    "_clientOnline",
    "_clientOffline",
    "_rtmClientSign",
];

/// What a hook call came to.
#[derive(Debug)]
enum Outcome {
    /// The function's value (`{"result": v}`; `{}` when it returned nothing).
    Value(Value),
    /// The app does not define it: the default flow.
    Undefined,
    /// No usable answer (why, without URL or secrets).
    Failed(String),
}

/// The hooks an app defines, as last read.
struct Defined {
    at: Instant,
    /// None: unknown (the read failed): every hook is assumed defined.
    names: Option<HashSet<String>>,
}

/// An app's hook server: (app, url).
type AppKey = (i64, String);

/// The LeanCloud IM hooks of every app with `hooks.leancloud.url`.
pub struct LcHooks {
    caller: Arc<Caller>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// By (app, url).
    defined: Mutex<HashMap<AppKey, Defined>>,
    /// One read of `_ops/metadatas` at a time per app.
    reading: Mutex<HashMap<AppKey, Arc<tokio::sync::Mutex<()>>>>,
}

fn sign(master_key: &str, ts: i64) -> String {
    format!("{},{ts},master", hex::encode(Md5::digest(format!("{ts}{master_key}").as_bytes())))
}

fn conv_id(conv: &Conversation) -> String {
    cid_of(&ConvRef::of(conv))
}

fn msg_id(msg: &Message) -> String {
    mid_of(msg.id, msg.foreign_id.as_deref())
}

/// `(content, bin)`: text as is, binary as base64.
fn content_of(msg: &Message) -> (String, bool) {
    match &msg.content {
        confab_engine::model::Content::Text(t) => (t.clone(), false),
        confab_engine::model::Content::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(b), true),
    }
}

fn others(recipients: &[String], me: &str) -> Vec<String> {
    recipients.iter().filter(|r| *r != me).cloned().collect()
}

/// A hook's `code` (a number; a numeric string is taken too) and `detail`.
fn note_of(r: &Map<String, Value>) -> AppNote {
    let code = match r.get("code") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let detail = match r.get("detail") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(v) => Some(v.to_string()),
    };
    AppNote { code, detail }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
}

/// The recipients a hook's `toPeers` leaves: only those of the original list it names (a hook
/// narrows delivery, it cannot widen it to non-members); the sender's own devices stay.
fn narrow(recipients: &mut Vec<String>, to: &[String], sender: &str) {
    recipients.retain(|r| r == sender || to.contains(r));
}

/// A conversation update as LeanCloud's `attr`: `name`, the custom fields at their dotted paths,
/// and the storage API's `__op` forms for the other operations.
fn attr_of_patch(patch: &ConvUpdate) -> Value {
    let mut m = Map::new();
    if let Some(n) = &patch.name {
        m.insert("name".into(), n.clone().map_or(json!({"__op": "Delete"}), Value::String));
    }
    for (path, op) in &patch.attrs {
        let v = match op {
            AttrOp::Set(v) => v.clone(),
            AttrOp::Delete => json!({"__op": "Delete"}),
            AttrOp::Increment(n) => json!({"__op": "Increment", "amount": n}),
            AttrOp::Add(v) => json!({"__op": "Add", "objects": v}),
            AttrOp::AddUnique(v) => json!({"__op": "AddUnique", "objects": v}),
            AttrOp::Remove(v) => json!({"__op": "Remove", "objects": v}),
        };
        m.insert(path.join("."), v);
    }
    Value::Object(m)
}

/// A new conversation's attributes as the SDK gave them: `name` and the custom fields.
fn attr_of_conv(conv: &Conversation) -> Value {
    let mut m = conv.attrs.clone();
    if let Some(n) = &conv.name {
        m.insert("name".into(), json!(n));
    }
    Value::Object(m)
}

fn offline_reason(why: &Offline) -> (i64, String, Option<(i64, String)>) {
    match why {
        Offline::Logout => (1, "logout".into(), None),
        Offline::Lost { error } => (2, "connection lost".into(), error.clone()),
        Offline::Conflict => (3, "SESSION_CONFLICT".into(), None),
        Offline::Kicked { reason } => (4, reason.clone().unwrap_or_else(|| "KICKED_BY_APP".into()), None),
    }
}

/// `_receiversOffline`'s answer, for the push.
fn hook_push(r: &Map<String, Value>) -> HookPush {
    HookPush {
        skip: truthy(r.get("skip")),
        offline: strings(r.get("offlinePeers")),
        payload: r.get("pushMessage").filter(|v| !v.is_null()).cloned(),
        force: truthy(r.get("force")),
    }
}

impl LcHooks {
    /// The hooks, calling through `caller`, signing with the time `clock` tells.
    pub fn new(caller: Arc<Caller>, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Arc<LcHooks> {
        Arc::new(LcHooks { caller, clock, defined: Mutex::new(HashMap::new()), reading: Mutex::new(HashMap::new()) })
    }

    fn headers(&self, app: &App) -> Vec<(&'static str, String)> {
        let keys = &app.keys.leancloud;
        vec![
            ("x-lc-id", keys.app_id.clone()),
            ("x-lc-sign", sign(&keys.master_key, (self.clock)())),
            ("x-lc-hook-key", keys.hook_key.clone()),
        ]
    }

    fn url(app: &App, path: &str) -> String {
        format!("{}/1.1/functions/{path}", app.limits.hooks.leancloud.url.trim_end_matches('/'))
    }

    fn blocking_timeout(app: &App) -> Duration {
        Duration::from_millis(app.limits.hooks.leancloud.timeout_ms.max(1))
    }

    /// Whether the cached list says the app defines `name` (unknown: yes). No call is made.
    fn known_defined(&self, app: &App, name: &str) -> bool {
        let key = (app.id, app.limits.hooks.leancloud.url.clone());
        match self.defined.lock().get(&key) {
            Some(Defined { names: Some(n), .. }) => n.contains(name),
            _ => true,
        }
    }

    /// Whether the app defines `name`, reading `_ops/metadatas` when the list is stale.
    async fn is_defined(&self, app: &App, name: &str, timeout: Duration) -> bool {
        let key = (app.id, app.limits.hooks.leancloud.url.clone());
        let fresh = |d: &Mutex<HashMap<AppKey, Defined>>| {
            d.lock().get(&key).filter(|e| e.at.elapsed() < METADATA_TTL).map(|e| e.names.as_ref().is_none_or(|n| n.contains(name)))
        };
        if let Some(yes) = fresh(&self.defined) {
            return yes;
        }
        let lock = self.reading.lock().entry(key.clone()).or_default().clone();
        let _reading = lock.lock().await;
        if let Some(yes) = fresh(&self.defined) {
            return yes;
        }
        let names = self.read_metadatas(app, timeout).await;
        let yes = names.as_ref().is_none_or(|n| n.contains(name));
        self.defined.lock().insert(key, Defined { at: Instant::now(), names });
        yes
    }

    /// `_ops/metadatas`: the functions the app defines (a 404: none); None when unknown.
    async fn read_metadatas(&self, app: &App, timeout: Duration) -> Option<HashSet<String>> {
        let request = Request {
            app: app.id,
            sink: SINK,
            name: "_ops/metadatas".into(),
            url: Self::url(app, "_ops/metadatas"),
            headers: self.headers(app),
            body: b"{}".to_vec(),
            timeout,
            max_answer: MAX_ANSWER,
        };
        match self.caller.post(request).await {
            Ok(a) if a.ok() => {
                let names = serde_json::from_slice::<Value>(&a.body).ok().and_then(|v| strings(v.get("result")));
                if names.is_none() {
                    self.caller.answer_unusable(app.id, SINK, "_ops/metadatas");
                    tracing::warn!(app = app.id, "LeanCloud hooks: _ops/metadatas answered no list; every hook is assumed defined");
                }
                names.map(|n| n.into_iter().collect())
            }
            Ok(a) if a.status == 404 => Some(HashSet::new()),
            Ok(a) => {
                tracing::warn!(app = app.id, status = a.status, "LeanCloud hooks: _ops/metadatas failed; every hook is assumed defined");
                None
            }
            Err(e) => {
                tracing::warn!(app = app.id, error = %e, "LeanCloud hooks: _ops/metadatas failed; every hook is assumed defined");
                None
            }
        }
    }

    /// Forget that the app defines `name` (it answered "No such cloud function").
    fn undefined(&self, app: &App, name: &str) {
        let key = (app.id, app.limits.hooks.leancloud.url.clone());
        if let Some(Defined { names: Some(n), .. }) = self.defined.lock().get_mut(&key) {
            n.remove(name);
        }
    }

    /// Call hook `name` with `params`, if the app defines it.
    async fn call(&self, app: &App, name: &str, params: &Value, timeout: Duration) -> Outcome {
        let started = Instant::now();
        if !self.is_defined(app, name, timeout).await {
            return Outcome::Undefined;
        }
        let timeout = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        let request = Request {
            app: app.id,
            sink: SINK,
            name: name.into(),
            url: Self::url(app, name),
            headers: self.headers(app),
            body: params.to_string().into_bytes(),
            timeout,
            max_answer: MAX_ANSWER,
        };
        let answer = match self.caller.post(request).await {
            Ok(a) => a,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
        if answer.status == 404 {
            let missing = body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str).is_some_and(|e| e.contains("cloud function"));
            if missing {
                self.undefined(app, name);
                return Outcome::Undefined;
            }
        }
        if !answer.ok() {
            return Outcome::Failed(format!("the hook answered {}", answer.status));
        }
        match body {
            Some(Value::Object(mut o)) => Outcome::Value(o.remove("result").unwrap_or_else(|| json!({}))),
            _ => {
                self.caller.answer_unusable(app.id, SINK, name);
                Outcome::Failed("the hook's answer is not a JSON object".into())
            }
        }
    }

    /// A blocking hook's answer as an object (`null` and nothing: `{}`), or what its failure
    /// means under the app's policy (`Err(Ok(verdict))`: go on; `Err(Err(e))`: refuse).
    async fn ask(&self, app: &App, name: &str, params: Value, action: Refused) -> std::result::Result<Map<String, Value>, Result<Verdict>> {
        let failed = |why: String| {
            tracing::warn!(app = app.id, hook = name, error = %why, "LeanCloud hook failed");
            if app.limits.hooks.leancloud.fail_on_error {
                Err(Err(Error::Rejected { action, code: None, detail: None, failed: true }))
            } else {
                Err(Ok(Verdict::Go))
            }
        };
        match self.call(app, name, &params, Self::blocking_timeout(app)).await {
            Outcome::Undefined => Err(Ok(Verdict::Go)),
            Outcome::Failed(why) => failed(why),
            Outcome::Value(Value::Object(o)) => Ok(o),
            Outcome::Value(Value::Null) => Ok(Map::new()),
            Outcome::Value(_) => {
                self.caller.answer_unusable(app.id, SINK, name);
                failed("the hook's result is not an object".into())
            }
        }
    }

    /// `_rtmClientSign` for a `_User` about to get a login signature: the hook's `false`
    /// refuses; a failure refuses under `fail_on_error`.
    async fn client_sign(&self, app: &App, user: &confab_engine::model::User, session: &str) -> Result<Verdict> {
        let name = "_rtmClientSign";
        let mut params = crate::users::user_json(user, Some(session));
        // confab's `_User` keeps no e-mail or phone of its own: LeanCloud's keys, from the attributes
        for k in ["email", "phone"] {
            params[k] = user.attributes.get(k).cloned().unwrap_or(Value::Null);
        }
        match self.call(app, name, &params, Self::blocking_timeout(app)).await {
            Outcome::Failed(why) => {
                tracing::warn!(app = app.id, hook = name, error = %why, "LeanCloud hook failed");
                if app.limits.hooks.leancloud.fail_on_error {
                    return Err(Error::Rejected { action: Refused::SignIn, code: None, detail: None, failed: true });
                }
                Ok(Verdict::Go)
            }
            Outcome::Value(Value::Bool(false)) => {
                Err(AppNote { code: None, detail: Some("_rtmClientSign refused the login".into()) }.refusing(Refused::SignIn))
            }
            Outcome::Undefined | Outcome::Value(_) => Ok(Verdict::Go),
        }
    }

    async fn before_send(&self, app: &App, conv: &Conversation, msg: &mut Message, recipients: &mut Vec<String>) -> Result<Verdict> {
        let (content, bin) = content_of(msg);
        let params = json!({
            "fromPeer": msg.from,
            "convId": conv_id(conv),
            "toPeers": others(recipients, &msg.from),
            "transient": msg.transient,
            "bin": bin,
            "content": content,
            "receipt": msg.receipt,
            "timestamp": msg.timestamp,
            "system": conv.kind == ConvKind::Service,
            "sourceIP": msg.from_ip,
            "groupId": null,
        });
        let r = match self.ask(app, "_messageReceived", params, Refused::Message).await {
            Ok(r) => r,
            Err(v) => return v,
        };
        self.apply_message_result(app, "_messageReceived", Refused::Message, &r, msg, recipients, bin, &content, true)
    }

    /// `drop`, `content`/`bin` and `toPeers` of `_messageReceived` or `_messageUpdate`.
    #[allow(clippy::too_many_arguments)]
    fn apply_message_result(
        &self,
        app: &App,
        name: &str,
        action: Refused,
        r: &Map<String, Value>,
        msg: &mut Message,
        recipients: &mut Vec<String>,
        bin: bool,
        content: &str,
        may_change: bool,
    ) -> Result<Verdict> {
        let note = note_of(r);
        if truthy(r.get("drop")) {
            return Err(note.refusing(action));
        }
        if let Some(to) = strings(r.get("toPeers")) {
            narrow(recipients, &to, &msg.from);
        }
        let new_bin = r.get("bin").and_then(Value::as_bool).unwrap_or(bin);
        match r.get("content") {
            Some(Value::String(c)) if may_change && (c != content || new_bin != bin) => {
                msg.content = if new_bin {
                    match base64::engine::general_purpose::STANDARD.decode(c.trim()) {
                        Ok(b) => confab_engine::model::Content::Binary(b),
                        Err(_) => {
                            self.caller.answer_unusable(app.id, SINK, name);
                            tracing::warn!(app = app.id, hook = name, "LeanCloud hook: binary content is not base64; kept the original");
                            return Ok(Verdict::Go);
                        }
                    }
                } else {
                    confab_engine::model::Content::Text(c.clone())
                };
                if let confab_engine::model::Content::Text(t) = &msg.content {
                    msg.mtype = crate::messages::lctype(t);
                }
                Ok(Verdict::Changed(note))
            }
            _ => Ok(Verdict::Go),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn before_patch(
        &self,
        app: &App,
        conv: &Conversation,
        old: &Message,
        new: &mut Message,
        recall: bool,
        recipients: &mut Vec<String>,
        by: &str,
    ) -> Result<Verdict> {
        // a recall names what is recalled; an edit, the new content
        let (content, bin) = content_of(if recall { old } else { new });
        let params = json!({
            "fromPeer": by,
            "convId": conv_id(conv),
            "toPeers": others(recipients, by),
            "bin": bin,
            "content": content,
            "timestamp": old.timestamp,
            "msgId": msg_id(old),
            "sourceIP": null,
            "recall": recall,
            "system": conv.kind == ConvKind::Service,
        });
        let r = match self.ask(app, "_messageUpdate", params, Refused::Patch).await {
            Ok(r) => r,
            Err(v) => return v,
        };
        self.apply_message_result(app, "_messageUpdate", Refused::Patch, &r, new, recipients, bin, &content, !recall)
    }

    async fn before_conv(&self, app: &App, name: &str, params: Value) -> std::result::Result<Map<String, Value>, Result<Verdict>> {
        let r = self.ask(app, name, params, Refused::Conversation).await?;
        if truthy(r.get("reject")) {
            return Err(Err(note_of(&r).refusing(Refused::Conversation)));
        }
        Ok(r)
    }

    fn item(name: &str, params: Value) -> OutboxItem {
        OutboxItem::new(SINK, name, json!({ "params": params }))
    }

    fn sent_items(
        &self,
        app: &App,
        conv: &Conversation,
        msg: &Message,
        online: &[String],
        offline: &[String],
        muted: &[String],
    ) -> Vec<OutboxItem> {
        let (content, bin) = content_of(msg);
        let mut items = vec![];
        if self.known_defined(app, "_messageSent") {
            items.push(Self::item(
                "_messageSent",
                json!({
                    "fromPeer": msg.from,
                    "convId": conv_id(conv),
                    "msgId": msg_id(msg),
                    "onlinePeers": online,
                    "offlinePeers": offline,
                    "transient": msg.transient,
                    "system": conv.kind == ConvKind::Service,
                    "bin": bin,
                    "content": content,
                    "receipt": msg.receipt,
                    "timestamp": msg.timestamp,
                    "sourceIP": msg.from_ip,
                }),
            ));
        }
        // chat rooms and transient messages: no `_receiversOffline`, no push
        if let Some(ctx) = PushContext::of(&NAMES, conv, msg, offline, muted) {
            if self.known_defined(app, "_receiversOffline") {
                let mentioned: Vec<&String> =
                    if msg.mention_all { vec![] } else { offline.iter().filter(|u| msg.mentions.contains(u)).collect() };
                let params = json!({
                    "fromPeer": msg.from,
                    "convId": conv_id(conv),
                    "offlinePeers": offline,
                    "content": content,
                    "timestamp": msg.timestamp,
                    "mentionAll": msg.mention_all,
                    "mentionOfflinePeers": mentioned,
                });
                items.push(OutboxItem::new(SINK, "_receiversOffline", json!({"params": params, "push": ctx})));
            } else {
                items.extend(message_push(app, &ctx, None, msg.timestamp));
            }
        }
        items
    }
}

fn init_by(by: &confab_engine::conv::Actor) -> Value {
    by.user().map_or(Value::Null, |u| json!(u))
}

#[async_trait::async_trait]
impl Hooks for LcHooks {
    fn active(&self, app: &App) -> bool {
        !app.limits.hooks.leancloud.url.is_empty()
    }

    async fn before(&self, app: &App, action: Before<'_>) -> Result<Verdict> {
        match action {
            Before::Send { conv, msg, recipients, .. } => self.before_send(app, conv, msg, recipients).await,
            Before::Patch { conv, old, new, recall, recipients, by } => {
                self.before_patch(app, conv, old, new, recall, recipients, by).await
            }
            Before::Start { conv, members, by } => {
                let params = json!({"initBy": by, "members": members, "attr": attr_of_conv(conv)});
                self.before_conv(app, "_conversationStart", params).await.map_or_else(|v| v, |_| Ok(Verdict::Go))
            }
            Before::Add { conv, members, by } => {
                let params = json!({"initBy": by, "members": members, "convId": conv_id(conv)});
                self.before_conv(app, "_conversationAdd", params).await.map_or_else(|v| v, |_| Ok(Verdict::Go))
            }
            Before::Remove { conv, members, by } => {
                let params = json!({"initBy": by, "members": members, "convId": conv_id(conv)});
                self.before_conv(app, "_conversationRemove", params).await.map_or_else(|v| v, |_| Ok(Verdict::Go))
            }
            Before::Update { conv, patch, by } => {
                let params = json!({"initBy": by, "convId": conv_id(conv), "attr": attr_of_patch(patch)});
                let r = match self.before_conv(app, "_conversationUpdate", params).await {
                    Ok(r) => r,
                    Err(v) => return v,
                };
                match r.get("attr") {
                    Some(Value::Object(attr)) => match crate::conversations::patch_from(attr.clone()) {
                        Ok(p) => {
                            patch.name = p.name;
                            patch.attrs = p.attrs;
                            Ok(Verdict::Changed(note_of(&r)))
                        }
                        Err(_) => {
                            self.caller.answer_unusable(app.id, SINK, "_conversationUpdate");
                            tracing::warn!(
                                app = app.id,
                                "LeanCloud hook: _conversationUpdate returned an attr that is not valid; kept the request's"
                            );
                            Ok(Verdict::Go)
                        }
                    },
                    _ => Ok(Verdict::Go),
                }
            }
            Before::SignIn { user, session } => self.client_sign(app, user, session).await,
            Before::Mute { conv, off, by } => {
                let params = json!({"initBy": by, "convId": conv_id(conv), "mute": *off});
                let r = match self.before_conv(app, "_conversationUpdate", params).await {
                    Ok(r) => r,
                    Err(v) => return v,
                };
                match r.get("mute").and_then(Value::as_bool) {
                    Some(m) if m != *off => {
                        *off = m;
                        Ok(Verdict::Changed(note_of(&r)))
                    }
                    _ => Ok(Verdict::Go),
                }
            }
        }
    }

    fn after(&self, app: &App, what: &After<'_>) -> Vec<OutboxItem> {
        let one = |name: &str, params: Value| if self.known_defined(app, name) { vec![Self::item(name, params)] } else { vec![] };
        match what {
            After::Sent { conv, msg, online, offline, muted, .. } => self.sent_items(app, conv, msg, online, offline, muted),
            After::Patched { .. }
            | After::PushTask { .. }
            | After::Read { .. }
            | After::Changed { .. }
            | After::Updated { .. }
            | After::Deleted { .. }
            | After::Contact { .. }
            | After::Reacted { .. } => vec![],
            After::Started { conv, .. } => one("_conversationStarted", json!({"convId": conv_id(conv)})),
            After::Added { conv, members, by } => {
                one("_conversationAdded", json!({"initBy": init_by(by), "convId": conv_id(conv), "members": members}))
            }
            After::Removed { conv, members, by } => {
                one("_conversationRemoved", json!({"initBy": init_by(by), "convId": conv_id(conv), "members": members}))
            }
            After::Online { user, session, ip, reconnect } => {
                let mut p = json!({"peerId": user, "sourceIP": ip, "reconnect": i32::from(*reconnect)});
                if let Some(tag) = &session.tag {
                    p["tag"] = json!(tag);
                }
                one("_clientOnline", p)
            }
            After::Offline { user, session, ip, why } => {
                let (code, msg, error) = offline_reason(why);
                let mut p = json!({"peerId": user, "closeCode": code, "closeMsg": msg});
                if let (Some(ip), false) = (ip, matches!(why, Offline::Lost { .. })) {
                    p["sourceIP"] = json!(ip);
                }
                if let Some(tag) = &session.tag {
                    p["tag"] = json!(tag);
                }
                if let Some((c, m)) = error {
                    p["errorCode"] = json!(c);
                    p["errorMsg"] = json!(m);
                }
                one("_clientOffline", p)
            }
        }
    }
}

/// Makes the after-the-fact hook calls the outbox kept.
pub struct LcSink {
    pub hooks: Arc<LcHooks>,
}

impl LcSink {
    /// The push of a `_receiversOffline` item, from the hook's answer (None: the default).
    fn push(&self, app: &App, item: &OutboxItem, hook: Option<&HookPush>) -> Delivery {
        let then = match serde_json::from_value::<PushContext>(item.body["push"].clone()) {
            Ok(ctx) => message_push(app, &ctx, hook, (self.hooks.clock)()).into_iter().collect(),
            Err(_) => vec![],
        };
        Delivery::Done { then }
    }
}

#[async_trait::async_trait]
impl Sink for LcSink {
    async fn deliver(&self, app: &App, item: &OutboxItem) -> Delivery {
        let offline_hook = item.name == "_receiversOffline";
        if app.limits.hooks.leancloud.url.is_empty() {
            // the app turned its hooks off meanwhile
            return if offline_hook { self.push(app, item, None) } else { Delivery::done() };
        }
        let params = item.body.get("params").cloned().unwrap_or_else(|| json!({}));
        let timeout = if offline_hook { LcHooks::blocking_timeout(app) } else { AFTER_TIMEOUT };
        match self.hooks.call(app, &item.name, &params, timeout).await {
            Outcome::Undefined if offline_hook => self.push(app, item, None),
            Outcome::Undefined => Delivery::done(),
            Outcome::Value(v) if offline_hook => {
                let r = v.as_object().cloned().unwrap_or_default();
                self.push(app, item, Some(&hook_push(&r)))
            }
            Outcome::Value(_) => Delivery::done(),
            Outcome::Failed(why) if offline_hook && item.attempts + 1 >= RECEIVERS_OFFLINE_ATTEMPTS => {
                tracing::warn!(app = app.id, error = %why, "LeanCloud hook _receiversOffline failed");
                if app.limits.hooks.leancloud.fail_on_error {
                    Delivery::done()
                } else {
                    self.push(app, item, None)
                }
            }
            Outcome::Failed(why) => Delivery::retry(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_sign_matches_the_spec_vector() {
        assert_eq!(sign("DyJegPlemooo4X1tg94gQkw1", 1453014943466), "e074720658078c898aa0d4b1b82bdf4b,1453014943466,master");
    }

    #[test]
    fn to_peers_only_narrows() {
        let mut r = vec!["Tom".to_string(), "Jerry".into(), "Spike".into()];
        narrow(&mut r, &["Spike".into(), "Stranger".into()], "Tom");
        assert_eq!(r, ["Tom", "Spike"]);
    }

    #[test]
    fn notes_take_numbers_and_text() {
        let r = json!({"code": 1234, "detail": "no"});
        assert_eq!(note_of(r.as_object().unwrap()), AppNote { code: Some("1234".into()), detail: Some("no".into()) });
        assert_eq!(note_of(&Map::new()), AppNote::default());
    }

    #[test]
    fn update_attr_uses_dotted_paths_and_ops() {
        let patch = ConvUpdate {
            name: Some(Some("n".into())),
            attrs: vec![(vec!["attr".into(), "color".into()], AttrOp::Set(json!("red"))), (vec!["x".into()], AttrOp::Delete)],
            ..Default::default()
        };
        assert_eq!(attr_of_patch(&patch), json!({"name": "n", "attr.color": "red", "x": {"__op": "Delete"}}));
    }
}
