//! Chat room join and leave over msync (spec §10.1): a `MUC` meta naming the room (`mucId`),
//! `JOIN` (optionally leaving the user's other rooms) or `LEAVE`. Membership is the engine's
//! chat-room presence (`Conversations::add_members` / `remove_members` as the user: blocklists,
//! the room's cap and the app's hooks apply, as for LeanCloud's `conv join`); a connection that
//! closes leaves its rooms as every face's does (the engine's grace, `presence.rs`). The answer:
//! `CommSyncDL{metaId, status}`, and for a join `metas: [Meta{ns MUC, MUCBody{mucId, JOIN,
//! status{OK, chatroomInfo}}}]`; a refusal is `FAIL` with the SDK's words (§7.3).
//!
//! Also the `MUC` events (§10.2) of the changes `encode.rs` hands over (announcements, mute-all,
//! allowlists, settings, join requests and invitations), and the requests and invitations
//! waiting for a user, told at login.

use bytes::Bytes;
use confab_engine::model::{ConvChange, ConvKind, Conversation, RequestNews};
use confab_engine::{Actor, Engine, Error};
use prost::Message as _;
use serde_json::{json, Value};

use super::conn::ConnState;
use super::frames::{group_jid, ok, status, unsolicited, user_jid};
use super::proto::meta::NameSpace;
use super::proto::muc_body::{self, Operation};
use super::proto::status::ErrorCode;
use super::proto::{CommSyncDl, Meta, MucBody, Status};

fn fail(reason: String) -> Status {
    status(ErrorCode::Fail, Some(&reason))
}

impl ConnState {
    /// A `MUC` meta's answer.
    pub(super) async fn muc(&self, meta: &Meta) -> CommSyncDl {
        let now = self.now();
        let mut dl = CommSyncDl { meta_id: meta.id, timestamp: Some(now.max(0) as u64), ..Default::default() };
        match self.muc_op(meta).await {
            Ok(metas) => {
                dl.status = Some(ok());
                dl.metas = metas;
            }
            Err(st) => dl.status = Some(st),
        }
        dl
    }

    async fn muc_op(&self, meta: &Meta) -> Result<Vec<Meta>, Status> {
        let Some(l) = &self.login else { return Err(status(ErrorCode::Unauthorized, None)) };
        let engine = self.gw.engine.clone();
        let (app, me) = (l.device.app.clone(), l.device.user.clone());
        let b = MucBody::decode(meta.payload.as_deref().unwrap_or_default()).map_err(|_| fail("Sorry, format is incorrect".into()))?;
        let op = b.operation.and_then(|o| Operation::try_from(o).ok());
        if !matches!(op, Some(Operation::Join | Operation::Leave)) || b.is_chatroom == Some(false) {
            return Err(fail("Sorry, this operation is not supported yet".into()));
        }
        let name = b.muc_id.as_ref().and_then(|j| j.name.clone()).unwrap_or_default();
        let id: i64 = name.trim().parse().map_err(|_| fail("group ID illegal, please check it".into()))?;
        let conv = engine
            .conversations()
            .conversation(&app, id, Some(ConvKind::Chatroom))
            .await
            .map_err(|_| fail(format!("grpID {id} does not exist!")))?;
        let actor = Actor::User(me.clone());
        let refused = |e: Error| match e {
            Error::Blocked => fail(format!("can not join this group, reason:user: {me} is in the blacklist")),
            Error::ConversationFull { .. } => fail("group member list is full!".into()),
            Error::Forbidden(t) if t.contains("disabled") => fail("group is disabled".into()),
            Error::Rejected { detail, .. } => {
                status(ErrorCode::PermissionDeniedExternal, Some(detail.as_deref().unwrap_or("refused by the app")))
            }
            e => fail(e.to_string()),
        };
        if op == Some(Operation::Leave) {
            engine.conversations().remove_members(&app, &conv, vec![me.clone()], &actor).await.map_err(refused)?;
            return Ok(vec![]);
        }
        if b.leave_other_rooms == Some(true) {
            for other in engine.conversations().rooms_of(&app, &me).await.map_err(refused)? {
                if other == id {
                    continue;
                }
                if let Ok(c) = engine.conversations().conversation(&app, other, Some(ConvKind::Chatroom)).await {
                    engine.conversations().remove_members(&app, &c, vec![me.clone()], &actor).await.map_err(refused)?;
                }
            }
        }
        engine.conversations().add_members(&app, &conv, vec![me.clone()], &actor).await.map_err(refused)?;
        let info = self.room_info(&conv).await;
        let answer = MucBody {
            muc_id: Some(group_jid(&l.device.app_key, id)),
            operation: Some(Operation::Join as i32),
            is_chatroom: Some(true),
            status: Some(muc_body::Status {
                error_code: Some(muc_body::status::ErrorCode::Ok as i32),
                chatroom_info: Some(info.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(vec![Meta {
            id: Some(engine.next_id() as u64),
            timestamp: Some(engine.now().max(0) as u64),
            ns: Some(NameSpace::Muc as i32),
            payload: Some(answer.encode_to_vec()),
            ..Default::default()
        }])
    }

    /// `chatroomInfo`: `{"<me>": {is_all_mute, create_timestamp, is_in_white_list, member_count,
    /// mute_duration}}` (the SDK's join result `info`).
    async fn room_info(&self, conv: &Conversation) -> serde_json::Value {
        let Some(l) = &self.login else { return json!({}) };
        let engine = &self.gw.engine;
        let member = engine.conversations().member(&l.device.app, conv, &l.device.user).await.ok();
        let count = engine.conversations().room_count(&l.device.app, conv).await.unwrap_or(0);
        let mute_until = member.as_ref().and_then(|m| m.muted_until).filter(|u| *u > engine.now()).unwrap_or(0);
        json!({ l.device.user.clone(): {
            "is_all_mute": conv.settings.mute_all,
            "create_timestamp": conv.created_at,
            "is_in_white_list": member.as_ref().is_some_and(|m| m.allowlisted),
            "member_count": count,
            "mute_duration": mute_until,
        }})
    }
}

// ---------------------------------------------------------------------- events (spec §10.2)

/// One `MUC` event: its operation, its operator (`from`), the member concerned (`to[0]`), and
/// the fields some operations carry.
#[derive(Default)]
pub(super) struct MucEvent {
    pub op: i32,
    pub from: String,
    pub to: Option<String>,
    pub reason: Option<String>,
    pub event_ext: Option<String>,
}

/// A group's (or chat room's) events as one unsolicited frame in its queue.
pub(super) fn muc_frame(engine: &Engine, key: &str, group: i64, name: Option<String>, room: bool, events: Vec<MucEvent>, at: i64) -> Bytes {
    let metas = events
        .into_iter()
        .map(|e| {
            let body = MucBody {
                muc_id: Some(group_jid(key, group)),
                operation: Some(e.op),
                from: Some(user_jid(key, &e.from, None)),
                to: e.to.iter().map(|t| user_jid(key, t, None)).collect(),
                is_chatroom: Some(room),
                muc_name: name.clone(),
                reason: e.reason,
                event_info: e.event_ext.map(|x| muc_body::EventInfo { ext: Some(x), ..Default::default() }),
                ..Default::default()
            };
            Meta {
                id: Some(engine.next_id() as u64),
                from: Some(user_jid(key, &e.from, None)),
                to: Some(group_jid(key, group)),
                timestamp: Some(at.max(0) as u64),
                ns: Some(NameSpace::Muc as i32),
                payload: Some(body.encode_to_vec()),
                ..Default::default()
            }
        })
        .collect();
    unsolicited(group_jid(key, group), metas, at)
}

/// The operation a group request's news is told as.
fn request_op(news: RequestNews) -> Operation {
    match news {
        RequestNews::Applied => Operation::Apply,
        RequestNews::ApplyAccepted => Operation::ApplyAccept,
        RequestNews::ApplyDeclined => Operation::ApplyDecline,
        RequestNews::Invited => Operation::Invite,
        RequestNews::InviteAccepted => Operation::InviteAccept,
        RequestNews::InviteDeclined => Operation::InviteDecline,
    }
}

/// A settings change as the `eventInfo.ext` of `UPDATE`, in the names the SDK reads (`detail`).
fn settings_ext(changes: &Value) -> String {
    let mut out = serde_json::Map::new();
    for (k, v) in changes.as_object().into_iter().flatten() {
        let name = match k.as_str() {
            "max_members" => "max_users",
            "approval" => "members_only",
            "members_invite" => "allow_user_invites",
            k => k,
        };
        out.insert(name.to_string(), v.clone());
    }
    Value::Object(out).to_string()
}

/// The changes `encode.rs` leaves to this module, as the member `to` hears them: the
/// announcement (`UPDATE_ANNOUNCEMENT`, the text as `reason`), mute-all (`BAN_GROUP` /
/// `REMOVE_BAN_GROUP`), the allowlist (`ADD_USER_WHITE_LIST` / `REMOVE_USER_WHITE_LIST`, one
/// per member), other settings (`UPDATE`, `eventInfo.ext` in Easemob's names), and join
/// requests and invitations (`APPLY`, `APPLY_ACCEPT`, `APPLY_DECLINE`, `INVITE`,
/// `INVITE_ACCEPT`, `INVITE_DECLINE`: from whoever acted, to the one told). None for the
/// changes `encode.rs` says itself.
#[allow(clippy::too_many_arguments)]
pub(super) fn change_frame(
    engine: &Engine,
    key: &str,
    conv: &Conversation,
    room: bool,
    by: Option<&str>,
    change: &ConvChange,
    to: &str,
    at: i64,
) -> Option<Bytes> {
    let from = by.unwrap_or("admin").to_string();
    let one = |op: Operation| MucEvent { op: op as i32, from: from.clone(), ..Default::default() };
    let events = match change {
        ConvChange::Announcement { text } => vec![MucEvent { reason: Some(text.clone()), ..one(Operation::UpdateAnnouncement) }],
        ConvChange::MuteAll { on: true } => vec![one(Operation::BanGroup)],
        ConvChange::MuteAll { on: false } => vec![one(Operation::RemoveBanGroup)],
        ConvChange::Allowlisted { members } | ConvChange::Unallowlisted { members } => {
            let op =
                if matches!(change, ConvChange::Allowlisted { .. }) { Operation::AddUserWhiteList } else { Operation::RemoveUserWhiteList };
            members.iter().map(|m| MucEvent { to: Some(m.clone()), ..one(op) }).collect()
        }
        ConvChange::Settings { changes } => vec![MucEvent { event_ext: Some(settings_ext(changes)), ..one(Operation::Update) }],
        ConvChange::Request { news, reason, .. } => {
            vec![MucEvent { to: Some(to.to_string()), reason: reason.clone(), ..one(request_op(*news)) }]
        }
        _ => return None,
    };
    Some(muc_frame(engine, key, conv.id, conv.name.clone(), room, events, at))
}

impl ConnState {
    /// The join requests and invitations waiting for the user's answer, each as the `APPLY` or
    /// `INVITE` it was when made (told once per login, after the first `UNREAD`, as contact
    /// requests are).
    pub(super) async fn waiting_group_requests(&self) -> Vec<Bytes> {
        let Some(l) = &self.login else { return vec![] };
        let engine = &self.gw.engine;
        match engine.conversations().waiting_requests(&l.device.app, &l.device.user).await {
            Ok(requests) => requests
                .into_iter()
                .map(|r| {
                    let e = MucEvent {
                        op: request_op(r.news) as i32,
                        from: r.by,
                        to: Some(l.device.user.clone()),
                        reason: r.reason,
                        event_ext: None,
                    };
                    muc_frame(engine, &l.device.app_key, r.group, r.group_name, false, vec![e], r.at)
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the group requests waiting for a msync user were not read");
                vec![]
            }
        }
    }
}
