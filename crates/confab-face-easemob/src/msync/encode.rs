//! How the msync gateway speaks of engine events (its `Encoder`):
//!
//! * a stored message: `NOTICE{queue}`, and the device pulls (spec §6). The queue of a
//!   one-to-one message differs by recipient (each names the other), so its shared frame holds
//!   both NOTICEs, encoded once, and each session's copy is the one for its user;
//! * a message that is not stored (online only) or a chat room's: the meta itself, unsolicited
//!   (`CommSyncDL{queue, metas, isLast}`), since there is nothing to pull;
//! * a recall: a `RECALL` body naming the message, unsolicited;
//! * a receipt: the reader's ack (`DELIVER_ACK`, `READ_ACK`, `CHANNEL_ACK`), unsolicited;
//! * a kick: a `STATISTIC` meta (§11.2); the connection closes after it (`conn.rs`);
//! * news of a user's contacts (requests, answers, removals): a `ROSTER` meta (§10.3).
//!
//! * a group's or chat room's change: `MUC` metas (spec §10.2), as each member hears it
//!   (a destroyed group: `DESTROY`).
//!
//! Broadcasts have no msync words yet.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use confab_engine::model::{AppLookup, ConvChange, ConvKind, ConvNotice, ConvRef, Message, Role};
use confab_engine::sessions::{Encoder, Session};
use confab_engine::{Engine, Event, KickReason};
use prost::Message as _;

use super::body::sender_resource;
use super::frames::{self, group_jid, user_jid};
use super::held::{self, Note};
use super::proto::message_body::Type as BType;
use super::proto::meta::NameSpace;
use super::proto::muc_body::Operation as MucOp;
use super::proto::statistics_body::Operation;
use super::proto::{MessageBody, Meta, MucBody, StatisticsBody};
use super::queues::meta_of;

pub struct MsyncEncoder {
    pub engine: Arc<Engine>,
}

/// A shared frame: one for everyone, or one for the sessions of `from` and one for the others.
enum Shared {
    One(Bytes),
    Two { from: String, own: Bytes, others: Bytes },
}

impl Shared {
    /// `0 ‖ frame`, or `1 ‖ len(from) ‖ from ‖ len(own) ‖ own ‖ others` (lengths u32 BE).
    fn pack(self) -> Bytes {
        match self {
            Shared::One(f) => {
                let mut b = BytesMut::with_capacity(f.len() + 1);
                b.put_u8(0);
                b.put_slice(&f);
                b.freeze()
            }
            Shared::Two { from, own, others } => {
                let mut b = BytesMut::with_capacity(9 + from.len() + own.len() + others.len());
                b.put_u8(1);
                b.put_u32(from.len() as u32);
                b.put_slice(from.as_bytes());
                b.put_u32(own.len() as u32);
                b.put_slice(&own);
                b.put_slice(&others);
                b.freeze()
            }
        }
    }

    /// The frame for a session of `user` (a slice of the shared bytes, not a copy).
    fn pick(shared: &Bytes, user: &str) -> Bytes {
        let len = |at: usize| -> Option<usize> {
            let b: [u8; 4] = shared.get(at..at + 4)?.try_into().ok()?;
            Some(u32::from_be_bytes(b) as usize)
        };
        match shared.first() {
            Some(0) => shared.slice(1..),
            Some(1) => {
                let picked = (|| {
                    let fl = len(1)?;
                    let from = shared.get(5..5 + fl)?;
                    let ol = len(5 + fl)?;
                    let own_at = 9 + fl;
                    let others_at = own_at.checked_add(ol).filter(|e| *e <= shared.len())?;
                    Some(if from == user.as_bytes() { shared.slice(own_at..others_at) } else { shared.slice(others_at..) })
                })();
                picked.unwrap_or_default()
            }
            _ => Bytes::new(),
        }
    }
}

#[async_trait]
impl Encoder for MsyncEncoder {
    async fn encode(&self, event: &Event, to: Option<&str>, now: i64) -> Option<Bytes> {
        let shared = match event {
            Event::Message { app, conv, msg, recipients, .. } => self.message(*app, conv, msg, recipients, now, false).await?,
            Event::MessagePatched { app, conv, msg, recipients, .. } if msg.recalled_at.is_some() => {
                self.message(*app, conv, msg, recipients, now, true).await?
            }
            Event::Conv { app, conv, by, change, at, .. } => self.conv_change(*app, conv, by.as_deref(), change, to?, *at).await?,
            Event::Receipt { app, to, conv, msg, at, read, by } => {
                self.receipt(*app, to, conv, msg.as_ref().map(|m| m.0), *at, *read, by).await?
            }
            Event::Kick { app, user, reason, .. } => {
                let (op, reason) = match reason {
                    KickReason::Conflict => (Operation::UserLoginAnotherDevice, None),
                    KickReason::Replaced(ext) => (Operation::UserLoginAnotherDevice, ext.clone()),
                    KickReason::ByApp(r) => (Operation::UserKickedByOtherDevice, r.clone()),
                    KickReason::PasswordChanged => (Operation::UserKickedByChangePassword, None),
                    KickReason::Disabled | KickReason::Removed => (Operation::UserRemoved, None),
                };
                let key = self.app_key(*app).await?;
                let body = StatisticsBody { operation: Some(op as i32), reason, ..Default::default() };
                // `from` and `to` name the user: agora-chat 1.4.0 reads `from.name` of every meta
                // it is handed (a TypeError without one, and the kick is never told)
                let meta = Meta {
                    id: Some(self.engine.next_id() as u64),
                    from: Some(user_jid(&key, user, None)),
                    to: Some(user_jid(&key, user, None)),
                    timestamp: Some(now.max(0) as u64),
                    ns: Some(NameSpace::Statistic as i32),
                    payload: Some(body.encode_to_vec()),
                    ..Default::default()
                };
                Shared::One(frames::unsolicited(user_jid(&key, user, None), vec![meta], now))
            }
            Event::Contact { app, user, peer, news, reason } => {
                let key = self.app_key(*app).await?;
                Shared::One(frames::roster(&key, user, peer, *news, reason.clone(), self.engine.next_id(), now))
            }
            _ => return None,
        };
        Some(shared.pack())
    }

    fn address(&self, shared: &Bytes, session: &Session) -> Bytes {
        Shared::pick(shared, &session.user)
    }

    /// A chat room's messages are not echoed to the sender's other devices (the SDK would drop
    /// them only for the device that sent them).
    fn sender_echo(&self, conv: &ConvRef) -> bool {
        conv.kind != ConvKind::Chatroom
    }
}

impl MsyncEncoder {
    /// A change a member missed while away (the engine's notice of it), as the MUC frame the
    /// member would have heard then.
    pub(super) async fn notice_frame(&self, app: i64, n: &ConvNotice, to: &str) -> Option<Bytes> {
        let cref = ConvRef { id: n.conv, kind: n.kind, foreign_id: n.foreign_id.clone() };
        let shared = self.conv_change(app, &cref, n.by.as_deref(), &n.change, to, n.at).await?;
        Some(Shared::pick(&shared.pack(), to))
    }

    async fn app_key(&self, app: i64) -> Option<String> {
        let a = self.engine.apps().find_app(&AppLookup::Id(app)).await.ok()??;
        Some(format!("{}#{}", a.keys.easemob.org_name, a.keys.easemob.app_name))
    }

    /// A group's or chat room's change as its `MUC` event (spec §10.2), as the member `to` hears
    /// it: one meta per member concerned (`to[0]`, the operator in `from`), unsolicited in the
    /// group's queue. Joins: `DIRECT_JOINED` to a member added by someone else, `PRESENCE` to
    /// the others; departures: `KICK` to a removed member, `ABSENCE` to the others; mutes
    /// `ADD_MUTE` / `REMOVE_MUTE` (`ext` `user_mute_time`), blocks `BAN` / `ALLOW`, roles
    /// `ASSIGN_OWNER` / `ADD_ADMIN` / `REMOVE_ADMIN`, other changes `UPDATE` with the changed
    /// fields as `eventInfo.ext`. One-to-one conversations and threads have no MUC events.
    async fn conv_change(&self, app: i64, cref: &ConvRef, by: Option<&str>, change: &ConvChange, to: &str, at: i64) -> Option<Shared> {
        let a = self.engine.apps().find_app(&AppLookup::Id(app)).await.ok()??;
        let key = format!("{}#{}", a.keys.easemob.org_name, a.keys.easemob.app_name);
        if *change == ConvChange::Destroyed {
            // the group is gone already: DESTROY from what the event says
            return Some(Shared::One(self.destroyed(&key, cref, by.unwrap_or("admin"), to, at)));
        }
        let conv = self.engine.conversations().conversation(&a, cref.id, None).await.ok()?;
        let room = match conv.kind {
            ConvKind::Chatroom => true,
            ConvKind::Normal | ConvKind::Temporary if !conv.unique => false,
            _ => return None,
        };
        let others_op = |subject: &str| by != Some(subject);
        let mut events: Vec<(MucOp, String, Option<String>)> = Vec::new();
        let mut update_ext = None;
        match change {
            ConvChange::Joined { members } => {
                for m in members {
                    let op = if m == to && others_op(m) { MucOp::DirectJoined } else { MucOp::Presence };
                    events.push((op, m.clone(), None));
                }
            }
            ConvChange::Left { members } => {
                for m in members {
                    let op = if m == to && others_op(m) { MucOp::Kick } else { MucOp::Absence };
                    events.push((op, m.clone(), None));
                }
            }
            ConvChange::Muted { members } | ConvChange::Unmuted { members } => {
                let muted = matches!(change, ConvChange::Muted { .. });
                for m in members {
                    let ext = if muted {
                        let until = self.engine.conversations().member(&a, &conv, m).await.ok().and_then(|x| x.muted_until);
                        until.map(|u| serde_json::json!({"user_mute_time": u}).to_string())
                    } else {
                        None
                    };
                    events.push((if muted { MucOp::AddMute } else { MucOp::RemoveMute }, m.clone(), ext));
                }
            }
            ConvChange::Blocked { members } => events.extend(members.iter().map(|m| (MucOp::Ban, m.clone(), None))),
            ConvChange::Unblocked { members } => events.extend(members.iter().map(|m| (MucOp::Allow, m.clone(), None))),
            ConvChange::RoleChanged { member, role } => {
                let op = match role {
                    Role::Owner => MucOp::AssignOwner,
                    Role::Admin => MucOp::AddAdmin,
                    _ => MucOp::RemoveAdmin,
                };
                events.push((op, member.clone(), None));
            }
            ConvChange::Updated { attrs } => {
                update_ext = Some(attrs.to_string());
                events.push((MucOp::Update, by.unwrap_or_default().to_string(), None));
            }
            ConvChange::Destroyed => return None,
            // announcements, mute-all, allowlists, settings, requests: `muc.rs`
            other => return super::muc::change_frame(&self.engine, &key, &conv, room, by, other, to, at).map(Shared::One),
        }
        let metas = events
            .into_iter()
            .map(|(op, member, ext)| {
                let operator = match op {
                    MucOp::Presence | MucOp::Absence => member.as_str(),
                    _ => by.unwrap_or("admin"),
                };
                let body = MucBody {
                    muc_id: Some(group_jid(&key, conv.id)),
                    operation: Some(op as i32),
                    from: Some(user_jid(&key, operator, None)),
                    to: if member.is_empty() { vec![] } else { vec![user_jid(&key, &member, None)] },
                    is_chatroom: Some(room),
                    muc_name: conv.name.clone(),
                    ext,
                    event_info: update_ext.clone().map(|e| super::proto::muc_body::EventInfo { ext: Some(e), ..Default::default() }),
                    ..Default::default()
                };
                Meta {
                    id: Some(self.engine.next_id() as u64),
                    from: Some(user_jid(&key, operator, None)),
                    to: Some(group_jid(&key, conv.id)),
                    timestamp: Some(at.max(0) as u64),
                    ns: Some(NameSpace::Muc as i32),
                    payload: Some(body.encode_to_vec()),
                    ..Default::default()
                }
            })
            .collect::<Vec<_>>();
        if metas.is_empty() {
            return None;
        }
        Some(Shared::One(frames::unsolicited(group_jid(&key, conv.id), metas, at)))
    }

    /// A destroyed group's `DESTROY` (spec §10.2), to the member `to`.
    fn destroyed(&self, key: &str, cref: &ConvRef, by: &str, to: &str, at: i64) -> Bytes {
        let body = MucBody {
            muc_id: Some(group_jid(key, cref.id)),
            operation: Some(MucOp::Destroy as i32),
            from: Some(user_jid(key, by, None)),
            to: vec![user_jid(key, to, None)],
            is_chatroom: Some(cref.kind == ConvKind::Chatroom),
            ..Default::default()
        };
        let meta = Meta {
            id: Some(self.engine.next_id() as u64),
            from: Some(user_jid(key, by, None)),
            to: Some(group_jid(key, cref.id)),
            timestamp: Some(at.max(0) as u64),
            ns: Some(NameSpace::Muc as i32),
            payload: Some(body.encode_to_vec()),
            ..Default::default()
        };
        frames::unsolicited(group_jid(key, cref.id), vec![meta], at)
    }

    /// A receipt as the ack its reader sent (spec §9.1): `DELIVER_ACK` / `READ_ACK` naming the
    /// message, or `CHANNEL_ACK` (the conversation read) when the receipt names none; from the
    /// reader's queue (the reader for a one-to-one conversation, else the group), unsolicited.
    #[allow(clippy::too_many_arguments)]
    async fn receipt(&self, app: i64, to: &str, cref: &ConvRef, msg: Option<i64>, at: i64, read: bool, by: &str) -> Option<Shared> {
        let kind = match (msg, read) {
            (Some(_), false) => BType::DeliverAck,
            (Some(_), true) => BType::ReadAck,
            (None, true) => BType::ChannelAck,
            (None, false) => return None,
        };
        let a = self.engine.apps().find_app(&AppLookup::Id(app)).await.ok()??;
        let key = format!("{}#{}", a.keys.easemob.org_name, a.keys.easemob.app_name);
        let direct = match cref.kind {
            ConvKind::Normal => self.engine.conversations().conversation(&a, cref.id, None).await.ok()?.unique,
            _ => false,
        };
        let (queue, to_jid, to_name) = if direct {
            (user_jid(&key, by, None), user_jid(&key, to, None), to.to_string())
        } else {
            (group_jid(&key, cref.id), group_jid(&key, cref.id), cref.id.to_string())
        };
        let body = MessageBody {
            r#type: Some(kind as i32),
            from: Some(super::proto::Jid { name: Some(by.to_string()), ..Default::default() }),
            to: Some(super::proto::Jid { name: Some(to_name), ..Default::default() }),
            ack_message_id: msg.map(|m| m as u64),
            ..Default::default()
        };
        let meta = Meta {
            id: Some(self.engine.next_id() as u64),
            from: Some(user_jid(&key, by, None)),
            to: Some(to_jid),
            timestamp: Some(at.max(0) as u64),
            ns: Some(NameSpace::Chat as i32),
            payload: Some(body.encode_to_vec()),
            ..Default::default()
        };
        Some(Shared::One(frames::unsolicited(queue, vec![meta], at)))
    }

    /// A message (or its recall) as its recipients hear it.
    async fn message(&self, app: i64, cref: &ConvRef, msg: &Message, recipients: &[String], now: i64, recall: bool) -> Option<Shared> {
        let a = self.engine.apps().find_app(&AppLookup::Id(app)).await.ok()??;
        let key = format!("{}#{}", a.keys.easemob.org_name, a.keys.easemob.app_name);
        let conv = self.engine.conversations().conversation(&a, cref.id, None).await.ok()?;
        let direct = conv.kind == ConvKind::Normal && conv.unique && recipients.len() <= 2;
        let kind = match conv.kind {
            ConvKind::Chatroom => BType::Chatroom,
            _ if direct => BType::Chat,
            ConvKind::Normal | ConvKind::Temporary => BType::Groupchat,
            _ => return None,
        };
        // what a viewer sees: the meta itself when there is nothing to pull
        let unsolicited = recall || msg.transient || msg.seq == 0 || kind == BType::Chatroom;
        let frame_for = |viewer: &str, queue_name: &str| -> Bytes {
            let queue = match kind {
                BType::Chat => user_jid(&key, queue_name, None),
                _ => group_jid(&key, conv.id),
            };
            let queue_key = held::queue_key(&queue);
            let note = |frame: Bytes, meta: Bytes| Note {
                frame,
                queue: queue_key.clone(),
                conv: conv.id,
                seq: msg.seq,
                ts: msg.timestamp,
                id: msg.id,
                from: msg.from.clone(),
                resource: sender_resource(msg).map(str::to_string),
                meta,
                recall,
                receipt: msg.receipt,
            };
            if !unsolicited {
                // the NOTICE, and beside it the meta the pull it brings delivers (`held.rs`)
                let meta = Bytes::from(meta_of(&key, kind, queue_name, viewer, msg).encode_to_vec());
                return note(frames::notice(queue), meta).pack();
            }
            if recall {
                let meta = recall_meta(&key, kind, queue_name, viewer, msg, now, self.engine.next_id());
                let frame = frames::unsolicited(queue.clone(), vec![meta], now);
                // a kept message that is recalled is passed, not delivered
                return if msg.seq > 0 { note(frame, Bytes::new()).pack() } else { frame };
            }
            frames::unsolicited(queue, vec![meta_of(&key, kind, queue_name, viewer, msg)], now)
        };
        if kind != BType::Chat {
            let name = conv.id.to_string();
            return Some(Shared::One(frame_for("", &name)));
        }
        let peer = recipients.iter().find(|r| **r != msg.from).cloned().unwrap_or_else(|| msg.from.clone());
        Some(Shared::Two { from: msg.from.clone(), own: frame_for(&msg.from, &peer), others: frame_for(&peer, &msg.from) })
    }
}

/// A recall as a CHAT meta: a `RECALL` body naming the recalled message.
fn recall_meta(key: &str, kind: BType, name: &str, viewer: &str, msg: &Message, now: i64, id: i64) -> Meta {
    let to = match kind {
        BType::Chat if msg.from == viewer => name,
        BType::Chat => viewer,
        _ => name,
    };
    let body = MessageBody {
        r#type: Some(BType::Recall as i32),
        from: Some(super::proto::Jid { name: Some(msg.from.clone()), ..Default::default() }),
        to: Some(super::proto::Jid { name: Some(to.to_string()), ..Default::default() }),
        ack_message_id: Some(msg.id as u64),
        ..Default::default()
    };
    let to_jid = match kind {
        BType::Chat => user_jid(key, to, None),
        _ => group_jid(key, msg.conv),
    };
    Meta {
        id: Some(id as u64),
        from: Some(user_jid(key, &msg.from, None)),
        to: Some(to_jid),
        timestamp: Some(now.max(0) as u64),
        ns: Some(NameSpace::Chat as i32),
        payload: Some(body.encode_to_vec()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_pair_gives_each_user_their_frame() {
        let s = Shared::Two { from: "alice".into(), own: Bytes::from_static(b"to-bob"), others: Bytes::from_static(b"to-alice") }.pack();
        assert_eq!(Shared::pick(&s, "alice"), Bytes::from_static(b"to-bob"));
        assert_eq!(Shared::pick(&s, "bob"), Bytes::from_static(b"to-alice"));
        let one = Shared::One(Bytes::from_static(b"x")).pack();
        assert_eq!(Shared::pick(&one, "anyone"), Bytes::from_static(b"x"));
        assert_eq!(Shared::pick(&Bytes::from_static(&[1, 0, 0]), "a"), Bytes::new(), "cut short: nothing");
    }
}
