//! Chat room join and leave over msync (spec §10.1): a `MUC` meta naming the room (`mucId`),
//! `JOIN` (optionally leaving the user's other rooms) or `LEAVE`. Membership is the engine's
//! chat-room presence (`Conversations::add_members` / `remove_members` as the user: blocklists,
//! the room's cap and the app's hooks apply, as for LeanCloud's `conv join`); a connection that
//! closes leaves its rooms as every face's does (the engine's grace, `presence.rs`). The answer:
//! `CommSyncDL{metaId, status}`, and for a join `metas: [Meta{ns MUC, MUCBody{mucId, JOIN,
//! status{OK, chatroomInfo}}}]`; a refusal is `FAIL` with the SDK's words (§7.3).

use confab_engine::model::{ConvKind, Conversation};
use confab_engine::{Actor, Error};
use prost::Message as _;
use serde_json::json;

use super::conn::ConnState;
use super::frames::{group_jid, ok, status};
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
