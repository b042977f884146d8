//! `blacklist`: block and unblock users of a conversation, list them.

use confab_engine::Actor;

use super::{page, rt, split, ConnState, Reply};
use crate::realtime::proto::*;
use crate::realtime::push::command;

impl ConnState {
    pub(super) async fn blacklist(&mut self, op: Option<OpType>, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let (app, peer) = (s.app.clone(), s.handle.user.clone());
        let engine = self.gw.engine.clone();
        let b = cmd.blacklist_message.clone().unwrap_or_default();
        let conv = self.conv(&app, b.src_cid.as_deref()).await?;
        let me = Actor::User(peer.clone());
        let mut r = command(CommandType::Blacklist, None);
        match op {
            Some(op @ (OpType::Block | OpType::Unblock)) => {
                let action = if op == OpType::Block { "conversation-block-clients" } else { "conversation-unblock-clients" };
                self.check_conv_signature(
                    &app,
                    &peer,
                    b.src_cid.as_deref(),
                    &b.to_pids,
                    Some(action),
                    (b.s.as_deref(), b.t, b.n.as_deref()),
                )?;
                let out = if op == OpType::Block {
                    engine.conversations().block_members(&app, &conv, b.to_pids, &me).await?
                } else {
                    engine.conversations().unblock_members(&app, &conv, b.to_pids, &me).await?
                };
                let (allowed_pids, failed_pids) = split(out);
                r.op = Some(if op == OpType::Block { OpType::Blocked } else { OpType::Unblocked } as i32);
                r.blacklist_message = Some(BlacklistCommand { src_cid: b.src_cid, allowed_pids, failed_pids, ..Default::default() });
            }
            Some(OpType::Query) => {
                let limit = page(b.limit.map(i64::from));
                let blocked = engine.conversations().blocked_members(&app, &conv, b.next.as_deref(), limit).await?;
                let next = (blocked.len() as i64 == limit).then(|| blocked.last().cloned()).flatten();
                r.op = Some(OpType::QueryResult as i32);
                r.blacklist_message = Some(BlacklistCommand { src_cid: b.src_cid, blocked_pids: blocked, next, ..Default::default() });
            }
            _ => return Err(rt(4114, "UNSUPPORTED_COMMAND")),
        }
        Ok(Some(r))
    }
}
