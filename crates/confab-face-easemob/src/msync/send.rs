//! A sent meta (`SYNC{CommSyncUL{meta}}`). A CHAT message to a user or a group goes through the
//! engine's send path as the REST face's sends do (`messages::to_engine`: its shape, then
//! mutes, blocklists, limits, the app's hooks), with its `MessageBody` bytes kept for msync
//! recipients; the answer carries the new message id as `serverId` (spec §7.2) or the refusal
//! in the SDK's words (§7.3). Acks are answered and a one-to-one read ack moves the read cursor;
//! a recall recalls. The client's STATISTIC meta (after login and UNREAD) needs no answer.

use confab_engine::model::{Audience, ConvKind, Conversation, Cursor, Priority};
use confab_engine::{Actor, Error, MessageRef, NewMessage};
use prost::Message as _;
use serde_json::Value;

use super::body::{self, EXT_KEY};
use super::conn::{ConnState, Pending};
use super::frames::{self, is_group, ok, status};
use super::held::Note;
use super::proto::message_body::Type as BType;
use super::proto::meta::{NameSpace, RouteType};
use super::proto::status::ErrorCode;
use super::proto::{CommSyncDl, MessageBody, Meta, Status};

fn fail(reason: &str) -> Status {
    status(ErrorCode::Fail, Some(reason))
}

/// An engine refusal in the words the SDK maps to its error types (§7.3).
fn refusal(e: &Error, group: bool) -> Status {
    match e {
        Error::Muted if group => status(ErrorCode::PermissionDenied, Some("user is mute")),
        Error::Muted => status(ErrorCode::UserMuted, None),
        Error::Blocked => fail("blocked"),
        Error::NotMember => fail("not in group or chatroom"),
        Error::ConversationNotFound | Error::WrongKind { .. } => fail("group not found"),
        Error::Forbidden(t) if t.contains("disabled") => fail("group is disabled"),
        Error::Forbidden(_) | Error::NotAllowed(_) => fail("blocked"),
        Error::MessageTooLarge { .. } | Error::TooLarge { .. } => status(ErrorCode::PermissionDenied, Some("Sorry, data is too large")),
        Error::RateLimited { .. } => status(ErrorCode::PermissionDenied, Some("traffic limit")),
        Error::TooLate { .. } => fail("exceed recall time limit"),
        Error::UserNotFound(u) => fail(&format!("username {u} doesn't exist!")),
        Error::Rejected { detail, .. } => {
            status(ErrorCode::PermissionDeniedExternal, Some(detail.as_deref().unwrap_or("refused by the app")))
        }
        other => fail(&other.to_string()),
    }
}

/// A sent meta's answer: now, or once its message is stored.
pub(super) enum Sent {
    Now(Box<CommSyncDl>),
    Later(Pending),
}

impl ConnState {
    /// A sent meta's answer; None for metas that get none (the client's statistics).
    pub(super) async fn send(&mut self, meta: Meta) -> Option<Sent> {
        let now = self.now();
        let answer = |st: Status, server_id: Option<u64>, ts: i64| CommSyncDl {
            status: Some(st),
            meta_id: meta.id,
            server_id,
            timestamp: Some(ts.max(0) as u64),
            ..Default::default()
        };
        match meta.ns.and_then(|n| NameSpace::try_from(n).ok()) {
            Some(NameSpace::Statistic) => return None,
            Some(NameSpace::Chat) => {}
            Some(NameSpace::Muc) => return Some(Sent::Now(Box::new(self.muc(&meta).await))),
            _ => return Some(Sent::Now(Box::new(answer(fail("Sorry, this operation is not supported yet"), None, now)))),
        }
        let payload = meta.payload.clone().unwrap_or_default();
        let Ok(b) = MessageBody::decode(payload.as_slice()) else {
            return Some(Sent::Now(Box::new(answer(fail("Sorry, format is incorrect"), None, now))));
        };
        let kind = b.r#type.and_then(|t| BType::try_from(t).ok());
        let result = match kind {
            Some(BType::Chat | BType::Groupchat | BType::Chatroom) => match self.send_message(&meta, &b, &payload).await {
                Ok(later) => return Some(Sent::Later(later)),
                Err(st) => Err(st),
            },
            Some(k @ (BType::ReadAck | BType::DeliverAck | BType::ChannelAck)) => self.ack(&meta, &b, k).await,
            Some(BType::Recall) => self.recall(&meta, &b).await,
            _ => Err(fail("Sorry, this message type is not supported yet")),
        };
        Some(Sent::Now(Box::new(match result {
            Ok((id, ts)) => answer(ok(), Some(id as u64), ts),
            Err(st) => answer(st, None, now),
        })))
    }

    /// The conversation a meta goes to: a user's one-to-one conversation with the sender, a
    /// group, or a chat room.
    async fn target(&self, meta: &Meta, b: &MessageBody, kind: BType) -> Result<Conversation, Status> {
        let Some(l) = &self.login else { return Err(status(ErrorCode::Unauthorized, None)) };
        let engine = &self.gw.engine;
        let to = meta.to.as_ref().or(b.to.as_ref()).and_then(|j| j.name.clone()).unwrap_or_default();
        match kind {
            BType::Chat => {
                let peer = crate::users::username(&to).map_err(|_| fail(&format!("username {to} doesn't exist!")))?;
                engine.conversations().direct_conversation(&l.device.app, &l.device.user, &peer).await.map_err(|e| refusal(&e, false))
            }
            _ => {
                let id: i64 = to.trim().parse().map_err(|_| fail("group ID illegal, please check it"))?;
                let conv = engine.conversations().conversation(&l.device.app, id, None).await.map_err(|e| refusal(&e, true))?;
                let ok = match kind {
                    BType::Chatroom => conv.kind == ConvKind::Chatroom,
                    _ => matches!(conv.kind, ConvKind::Normal | ConvKind::Temporary) && !conv.unique,
                };
                if !ok {
                    return Err(fail("group not found"));
                }
                Ok(conv)
            }
        }
    }

    /// A message: handed to the engine's send path now, answered once it is stored (its server
    /// id and timestamp). A stored message is kept in the connection's memory as passed
    /// (`held.rs`), so that pulls of its queue find no gap where it is.
    async fn send_message(&self, meta: &Meta, b: &MessageBody, payload: &[u8]) -> Result<Pending, Status> {
        let Some(l) = &self.login else { return Err(status(ErrorCode::Unauthorized, None)) };
        let kind = b.r#type.and_then(|t| BType::try_from(t).ok()).unwrap_or(BType::Chat);
        let conv = self.target(meta, b, kind).await?;
        let app = &l.device.app;
        // the REST face's shape; a content REST has no word for is kept as an empty text
        let (rest, ext) = body::to_rest(b);
        let (rest_kind, rest_body) = rest.unwrap_or_else(|| ("txt".to_string(), Default::default()));
        let size = serde_json::to_string(&rest_body).map_or(0, |t| t.len()) + ext.as_ref().map_or(0, |e| e.to_string().len());
        if size > app.limits.em_message_max_bytes {
            return Err(status(ErrorCode::PermissionDenied, Some("Sorry, data is too large")));
        }
        let (content, mtype, mut em_ext) = crate::messages::to_engine(&rest_kind, &rest_body, ext.as_ref());
        if let Value::Object(o) = &mut em_ext {
            o.insert(EXT_KEY.into(), body::msync_ext(payload, &l.device.resource));
        }
        let room = kind == BType::Chatroom;
        let online_only = meta.routetype == Some(RouteType::RouteOnline as i32);
        let priority = match meta.ext.iter().find(|k| k.key.as_deref() == Some("chatroom_msg_tag")).and_then(|k| k.varint_value) {
            Some(0) => Priority::High,
            Some(2) => Priority::Low,
            _ => Priority::Normal,
        };
        // a targeted group or room message (`ROUTE_DIRECT`): those users, and the sender's devices
        let audience = match meta.routetype.and_then(|r| RouteType::try_from(r).ok()) {
            Some(RouteType::RouteDirect) if kind != BType::Chat && !meta.directed_users.is_empty() => {
                let mut to: Vec<String> = meta.directed_users.iter().map(|u| u.trim().to_lowercase()).collect();
                to.push(l.device.user.clone());
                to.sort();
                to.dedup();
                Audience::Only(to)
            }
            _ => Audience::All,
        };
        let new = NewMessage {
            audience,
            from: l.device.user.clone(),
            content: Some(content),
            mtype,
            ext: Some(em_ext),
            transient: online_only && !room,
            // the sender's other devices get one-to-one and group messages (multi-device)
            no_sync: room,
            priority: if room { priority } else { Priority::Normal },
            receipt: b.msg_config.as_ref().and_then(|c| c.allow_group_ack) == Some(true),
            from_ip: self.ip.clone(),
            origin: Some(l.session.origin()),
            ..Default::default()
        };
        let actor = Actor::User(l.device.user.clone());
        let group = kind != BType::Chat;
        let engine = &self.gw.engine;
        let sending = engine.messages().begin_send(app, &conv, new, &actor).await.map_err(|e| refusal(&e, group))?;
        let queue = match kind {
            BType::Chat => {
                let to = meta.to.as_ref().or(b.to.as_ref()).and_then(|j| j.name.clone()).unwrap_or_default();
                format!("u:{}", to.trim().to_lowercase())
            }
            _ => format!("g:{}", conv.id),
        };
        let (conn, user, resource, meta_id, now) =
            (self.conn.clone(), l.device.user.clone(), l.device.resource.clone(), meta.id, self.now());
        Ok(Box::pin(async move {
            let dl = match sending.await {
                Ok(msg) => {
                    if msg.seq > 0 && !room {
                        let own = Note {
                            queue,
                            conv: msg.conv,
                            seq: msg.seq,
                            ts: msg.timestamp,
                            id: msg.id,
                            from: user,
                            resource: Some(resource),
                            ..Default::default()
                        };
                        conn.held.lock().keep(own);
                    }
                    CommSyncDl {
                        status: Some(ok()),
                        meta_id,
                        server_id: Some(msg.id as u64),
                        timestamp: Some(msg.timestamp.max(0) as u64),
                        ..Default::default()
                    }
                }
                Err(e) => {
                    CommSyncDl { status: Some(refusal(&e, group)), meta_id, timestamp: Some(now.max(0) as u64), ..Default::default() }
                }
            };
            frames::sync(dl)
        }))
    }

    /// A delivery, read or conversation ack (spec §9.1). A delivery or read ack names a message
    /// (`ackMessageId`): the acker's cursor moves up to it and its sender's devices get the ack
    /// (`Messages::acknowledge`, an engine receipt naming the message, which every face hears).
    /// A conversation ack (`CHANNEL_ACK`, no id) reads the whole conversation named by `to`.
    async fn ack(&self, meta: &Meta, b: &MessageBody, kind: BType) -> Result<(i64, i64), Status> {
        let Some(l) = &self.login else { return Err(status(ErrorCode::Unauthorized, None)) };
        let engine = &self.gw.engine;
        let app = &l.device.app;
        let user = &l.device.user;
        if kind == BType::ChannelAck {
            let group = meta.to.as_ref().or(b.to.as_ref()).is_some_and(is_group);
            let conv = self.target(meta, b, if group { BType::Groupchat } else { BType::Chat }).await?;
            engine.messages().acknowledge_conversation(app, &conv, user).await.map_err(|e| refusal(&e, group))?;
            return Ok((engine.next_id(), engine.now()));
        }
        let mid = b.ack_message_id.filter(|m| *m > 0).and_then(|m| i64::try_from(m).ok());
        let mid = mid.ok_or_else(|| status(ErrorCode::MissingParameter, Some("ackMessageId is required")))?;
        let gone = || fail("Sorry, message does not exist");
        let msg = engine.messages().message(app, mid).await.map_err(|_| gone())?;
        let conv = engine.conversations().conversation(app, msg.conv, None).await.map_err(|_| gone())?;
        let cursor = if kind == BType::ReadAck { Cursor::Read } else { Cursor::Delivered };
        engine.messages().acknowledge(app, &conv, user, cursor, mid).await.map_err(|e| match e {
            Error::MessageNotFound => gone(),
            Error::NotMember => gone(),
            e => refusal(&e, true),
        })?;
        Ok((engine.next_id(), engine.now()))
    }

    /// A recall (spec §9.2) of the sender's own message (`ackMessageId`), or by a group's
    /// managers, held to Easemob's window as the REST face's recalls are (the app's
    /// `recall_window_secs`, else `messages::RECALL_WINDOW_SECS`). The recipients, and the
    /// sender's other devices, get the `RECALL` body (the engine's patch event).
    async fn recall(&self, _meta: &Meta, b: &MessageBody) -> Result<(i64, i64), Status> {
        let Some(l) = &self.login else { return Err(status(ErrorCode::Unauthorized, None)) };
        let engine = &self.gw.engine;
        let app = &l.device.app;
        let gone = || fail("Sorry, message does not exist");
        let mid = b.ack_message_id.filter(|m| *m > 0).and_then(|m| i64::try_from(m).ok());
        let mid = mid.ok_or_else(|| status(ErrorCode::MissingParameter, Some("ackMessageId is required")))?;
        let msg = engine.messages().message(app, mid).await.map_err(|_| gone())?;
        let conv = engine.conversations().conversation(app, msg.conv, None).await.map_err(|_| gone())?;
        let r = MessageRef { id: mid, from: None, timestamp: None };
        let actor = Actor::User(l.device.user.clone());
        let window = crate::messages::RECALL_WINDOW_SECS;
        engine.messages().recall_message_within(app, &conv, &r, &actor, Some(l.session.origin()), window).await.map_err(|e| match e {
            Error::MessageNotFound => gone(),
            Error::NotSender => fail("blocked"),
            e => refusal(&e, false),
        })?;
        Ok((engine.next_id(), engine.now()))
    }
}
