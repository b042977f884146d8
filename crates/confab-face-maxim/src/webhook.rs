//! The MaxIM message subscription (信息订阅, specs/easemob-callbacks.md §6): every message sent
//! in an app with `hooks.maxim.url` is POSTed there, after the fact, as the vendor's own receiver
//! (lanying-connector) reads it: `{appId, msgId, from:{uid}, to:{uid}, type, ctype, content, ext,
//! …}` with the header `signature` = `hooks.maxim.secret`, verbatim. Through the outbox: a 2xx
//! answer is delivered, anything else is tried again with back-off.
//!
//! Ids are numbers, as the MaxIM REST face shows them (`msg_id`, `uid`); a group message has
//! `type` `GROUPCHAT` and the group's id as `to.uid`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_engine::model::{App, ConvKind};
use confab_engine::{After, Engine, Hooks, OutboxItem};
use confab_hooks::{Caller, Delivery, Request, Sink};
use serde_json::{json, Value};

use crate::render;

/// The sink's name in the outbox.
pub const SINK: &str = "maxim";
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 64 * 1024;

/// After a message is sent: its webhook call.
pub struct MxHooks;

#[async_trait]
impl Hooks for MxHooks {
    fn active(&self, app: &App) -> bool {
        !app.limits.hooks.maxim.url.is_empty()
    }

    fn after(&self, app: &App, what: &After<'_>) -> Vec<OutboxItem> {
        let After::Sent { conv, msg, online, offline, .. } = what else { return vec![] };
        let direct = conv.kind == ConvKind::Normal && conv.unique;
        let (ctype, content, attachment, ext, config) = render::view(msg);
        // the users are named by their numbers when the call is made
        let to =
            if direct { json!({"user": online.iter().chain(offline.iter()).next().unwrap_or(&msg.from)}) } else { json!({"uid": conv.id}) };
        let body = json!({
            "appId": app.keys.maxim.app_id,
            "msgId": msg.id,
            "from": {"user": msg.from},
            "to": to,
            "type": if direct { "CHAT" } else { "GROUPCHAT" },
            "ctype": ctype,
            "content": content,
            "ext": ext,
            "attachment": attachment,
            "config": config,
            "timestamp": msg.timestamp,
        });
        vec![OutboxItem::new(SINK, "message", body)]
    }
}

/// POSTs the webhook calls.
pub struct MxSink {
    pub caller: Arc<Caller>,
    pub engine: Arc<Engine>,
}

impl MxSink {
    /// `{"user": id}` as `{"uid": number}`.
    async fn uid(&self, app: &App, who: &mut Value) -> std::result::Result<(), Delivery> {
        let Some(id) = who.get("user").and_then(Value::as_str).map(str::to_string) else { return Ok(()) };
        match self.engine.users().get_user(app, &id).await {
            Ok(u) => {
                *who = json!({"uid": u.num});
                Ok(())
            }
            Err(confab_engine::Error::UserNotFound(_)) => Err(Delivery::Fail { error: "the user is gone".into() }),
            Err(e) => Err(Delivery::retry(e.to_string())),
        }
    }
}

#[async_trait]
impl Sink for MxSink {
    async fn deliver(&self, app: &App, item: &OutboxItem) -> Delivery {
        let cfg = &app.limits.hooks.maxim;
        if cfg.url.is_empty() {
            return Delivery::done();
        }
        let mut body = item.body.clone();
        for k in ["from", "to"] {
            if let Some(who) = body.get_mut(k) {
                if let Err(d) = self.uid(app, who).await {
                    return d;
                }
            }
        }
        let request = Request {
            app: app.id,
            sink: SINK,
            name: item.name.clone(),
            url: cfg.url.clone(),
            headers: vec![("signature", cfg.secret.clone())],
            body: body.to_string().into_bytes(),
            timeout: TIMEOUT,
            max_answer: MAX_ANSWER,
        };
        self.caller.deliver(request, "the app's server").await
    }
}
