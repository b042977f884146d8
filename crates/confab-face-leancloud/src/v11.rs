//! The REST 1.1 calls that share 1.2's rate buckets (and that the Python SDK still uses):
//! `/1.1/rtm/messages`, `/1.1/rtm/patch/message`, `/1.1/rtm/broadcast/subscriber`,
//! `/1.1/rtm/broadcast`. They translate to the same engine calls as their 1.2 twins.

use axum::extract::State;
use axum::Json;
use confab_engine::limits::bucket;
use confab_engine::model::{Audience, Content, ConvKind};
use confab_engine::{Actor, Edit, MessageRef};
use serde_json::json;

use crate::conversations::{lookup, Reply};
use crate::error::LcError;
use crate::extract::{Body, Fields, LcState, Master};
use crate::messages::{lctype, new_message, subscriber_broadcast, to_clients};
use crate::{render, service};

/// `POST /1.1/rtm/messages`: like 1.2's send, but `transient` defaults to **true** (1.1's
/// documented default), and `to_peers` addresses a service conversation's subscribers.
pub async fn send(State(s): State<LcState>, Master(c): Master, b: Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_MESSAGE).await?;
    let conv = lookup(&s, &c, &b.req_str("conv_id")?, None).await?;
    let mut new = new_message(&b, &c, "from_peer")?;
    new.transient = b.opt_bool("transient")?.unwrap_or(true);
    if let Some(peers) = to_clients(&b, &c, "to_peers")? {
        if conv.kind != ConvKind::Service {
            return Err(LcError::param("to_peers is only for service conversations."));
        }
        new.audience = Audience::Only(peers);
    }
    let msg = s.engine.messages().send_message(&c.app, &conv, new, &Actor::Admin).await?;
    Ok(Json(render::sent_message(&msg)))
}

/// `POST /1.1/rtm/patch/message`: edit, or recall with `"recall": true`.
pub async fn patch(State(s): State<LcState>, Master(c): Master, b: Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_MESSAGE).await?;
    let conv = lookup(&s, &c, &b.req_str("conv_id")?, None).await?;
    let id = crate::extract::find_message_id(&s.engine, &c.app, &b.req_str("msg_id")?).await?;
    let r = MessageRef { id, from: Some(b.req_str("from_peer")?), timestamp: Some(b.req_i64("timestamp")?) };
    to_clients(&b, &c, "to_peers")?;
    if b.flag("recall")? {
        s.engine.messages().recall_message(&c.app, &conv, &r, &Actor::Admin, None).await?;
    } else {
        let text = b.opt_text("message")?.ok_or_else(|| LcError::missing("message"))?;
        s.engine
            .messages()
            .edit_message(&c.app, &conv, &r, Edit::content(Content::Text(text.clone()), lctype(&text)), &Actor::Admin, None)
            .await?;
    }
    Ok(Json(json!({})))
}

/// `POST /1.1/rtm/broadcast/subscriber`: a message to every subscriber.
pub async fn to_subscribers(State(s): State<LcState>, Master(c): Master, b: Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::LC_SUBSCRIPTION).await?;
    let conv = lookup(&s, &c, &b.req_str("conv_id")?, Some(ConvKind::Service)).await?;
    let (id, ts) = subscriber_broadcast(&s, &c, &conv, &b, "from_peer").await?;
    Ok(Json(render::sent(id, ts)))
}

/// `POST /1.1/rtm/broadcast`: an app-wide broadcast.
pub async fn broadcast(State(s): State<LcState>, Master(c): Master, b: Body) -> Reply {
    service::broadcast(&s, &c, &b, "from_peer").await
}
