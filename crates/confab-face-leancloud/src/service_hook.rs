//! LeanCloud's service-conversation web hook (服务号消息回调): what users send to a service
//! conversation is POSTed, as `_SysMessage` records in an array, to the URL the app set
//! (`hooks.leancloud.service_url`). Not a LeanEngine function: no keys, no signature (LeanCloud
//! documents none); 5 s to answer. Kept in the outbox like every call after the fact.

use std::sync::Arc;
use std::time::Duration;

use confab_engine::model::{App, ConvKind, ConvRef};
use confab_engine::{After, Hooks, OutboxItem};
use confab_hooks::{Caller, Delivery, Request, Sink};
use serde_json::json;

use crate::extract::{cid_of, mid_of};
use crate::render::date;

/// The sink's name in the outbox.
pub const SINK: &str = "lc_service";
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ANSWER: usize = 64 * 1024;

/// Asks nothing before; after a user's message to a service conversation, one call.
pub struct ServiceHook {
    pub caller: Arc<Caller>,
}

#[async_trait::async_trait]
impl Hooks for ServiceHook {
    fn active(&self, app: &App) -> bool {
        !app.limits.hooks.leancloud.service_url.is_empty()
    }

    fn after(&self, _: &App, what: &After<'_>) -> Vec<OutboxItem> {
        let After::Sent { conv, msg, by, .. } = what else { return vec![] };
        // users' messages to the service; the app's own broadcasts and messages are not called back
        if conv.kind != ConvKind::Service || by.user().is_none() {
            return vec![];
        }
        let (data, bin) = match &msg.content {
            confab_engine::model::Content::Text(t) => (t.clone(), false),
            confab_engine::model::Content::Binary(b) => (base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b), true),
        };
        let record = json!({
            "fromIp": msg.from_ip,
            "conv": {"__type": "Pointer", "className": "_Conversation", "objectId": cid_of(&ConvRef::of(conv))},
            "msgId": mid_of(msg.id, msg.foreign_id.as_deref()),
            "from": msg.from,
            "bin": bin,
            "data": data,
            "timestamp": msg.timestamp,
            "createdAt": date(msg.timestamp),
            "updatedAt": date(msg.timestamp),
        });
        vec![OutboxItem::new(SINK, "message", json!([record]))]
    }
}

#[async_trait::async_trait]
impl Sink for ServiceHook {
    async fn deliver(&self, app: &App, item: &OutboxItem) -> Delivery {
        let url = &app.limits.hooks.leancloud.service_url;
        if url.is_empty() {
            return Delivery::done();
        }
        let request = Request {
            app: app.id,
            sink: SINK,
            name: item.name.clone(),
            url: url.clone(),
            headers: vec![],
            body: item.body.to_string().into_bytes(),
            timeout: TIMEOUT,
            max_answer: MAX_ANSWER,
        };
        self.caller.deliver(request, "the service web hook").await
    }
}
