//! `logs`: a conversation's history.

use confab_engine::model::*;
use confab_engine::query::{Bound, HistoryQuery, HistoryScope};

use super::{rt, ConnState, Reply};
use crate::realtime::proto::*;
use crate::realtime::push::{self, command};

/// History: default and largest page.
const LOGS_DEFAULT_LIMIT: i64 = 20;
const LOGS_MAX_LIMIT: i64 = 1000;

impl ConnState {
    /// `logs`: history, always answered oldest first (the SDK pages from the first item).
    pub(super) async fn logs(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let engine = &self.gw.engine;
        let l = cmd.logs_message.clone().unwrap_or_default();
        let conv = self.conv(&s.app, l.cid.as_deref()).await?;
        let peer = &s.handle.user;
        let scope = match conv.kind {
            ConvKind::Chatroom => HistoryScope::Conv(conv.id),
            ConvKind::Service => HistoryScope::ConvAs { conv: conv.id, user: peer.clone() },
            _ => {
                engine.conversations().member(&s.app, &conv, peer).await.map_err(|_| rt(4312, "CONVERSATION_LOG_REJECTED"))?;
                HistoryScope::Conv(conv.id)
            }
        };
        let (start_id, stop_id) = (self.message_id(&s.app, l.mid.as_deref()).await, self.message_id(&s.app, l.tmid.as_deref()).await);
        let bound = |ts: Option<i64>, id: Option<i64>, incl: Option<bool>| {
            ts.map(|timestamp| Bound { timestamp, id, inclusive: incl == Some(true) })
        };
        let start = bound(l.t, start_id, l.t_included);
        let stop = bound(l.tt, stop_id, l.tt_included);
        let newer_first = l.direction.unwrap_or(1) != 2;
        let (older_than, newer_than) = if newer_first { (start, stop) } else { (stop, start) };
        let limit = l.l.or(l.limit).map(i64::from).filter(|n| *n > 0).unwrap_or(LOGS_DEFAULT_LIMIT).min(LOGS_MAX_LIMIT);
        let q = HistoryQuery { scope, older_than, newer_than, ascending: !newer_first, limit, mtype: l.lctype.map(i64::from) };
        let mut msgs = engine.messages().history(&s.app, &q).await?;
        if newer_first {
            msgs.reverse();
        }
        // when the others have read my messages
        let others_read = if matches!(conv.kind, ConvKind::Normal | ConvKind::Temporary) {
            engine.messages().cursor_times(&s.app, &conv).await?.into_iter().filter(|t| t.user != *peer).filter_map(|t| t.read_at).max()
        } else {
            None
        };
        let logs = msgs.iter().map(|m| push::log_item(m, others_read.filter(|r| m.from == *peer && *r >= m.timestamp))).collect();
        let mut r = command(CommandType::Logs, None);
        r.logs_message = Some(LogsCommand { logs, ..Default::default() });
        Ok(Some(r))
    }
}
