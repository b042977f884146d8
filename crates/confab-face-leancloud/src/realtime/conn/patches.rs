//! `patch modify`: edit and recall own messages.

use confab_engine::model::*;
use confab_engine::{Actor, Edit, MessageRef};

use super::{rt, ConnState, Reply};
use crate::messages::lctype;
use crate::realtime::proto::*;
use crate::realtime::push::command;

impl ConnState {
    /// `patch modify`: edit or recall own messages.
    pub(super) async fn patch(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let engine = &self.gw.engine;
        let origin = Some(s.handle.origin());
        for p in cmd.patch_message.clone().unwrap_or_default().patches {
            let conv = self.conv(&s.app, p.cid.as_deref()).await?;
            let id = self.message_id(&s.app, p.mid.as_deref()).await.ok_or_else(|| rt(4404, "MESSAGE_NOT_FOUND"))?;
            let r = MessageRef { id, from: Some(s.handle.user.clone()), timestamp: p.timestamp };
            if p.recall == Some(true) {
                engine.messages().recall_message(&s.app, &conv, &r, &Actor::User(s.handle.user.clone()), origin).await?;
            } else {
                let content = match (p.binary_msg, p.data) {
                    (Some(b), _) => Content::Binary(b),
                    (None, Some(d)) => Content::Text(d),
                    (None, None) => return Err(rt(4406, "MESSAGE_EDIT_DISABLED: no content")),
                };
                let mtype = if let Content::Text(t) = &content { lctype(t) } else { 0 };
                // the new message's mentions replace the old ones (the SDK always sends mentionAll)
                let mentions =
                    (p.mention_all.is_some() || !p.mention_pids.is_empty()).then(|| (p.mention_all == Some(true), p.mention_pids.clone()));
                engine
                    .messages()
                    .edit_message(&s.app, &conv, &r, Edit { content, mtype, mentions }, &Actor::User(s.handle.user.clone()), origin)
                    .await?;
            }
        }
        let mut r = command(CommandType::Patch, Some(OpType::Modified));
        r.patch_message = Some(PatchCommand { patches: vec![], last_patch_time: Some(engine.now()) });
        Ok(Some(r))
    }
}
