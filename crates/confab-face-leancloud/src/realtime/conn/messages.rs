//! `direct` (send), `ack` (delivered) and `read` (read cursors).

use confab_engine::model::*;
use confab_engine::{Actor, Error, NewMessage, Position};

use super::{rt, ConnState, Later, Reply, RtError};
use crate::messages::lctype;
use crate::realtime::proto::*;
use crate::realtime::push::command;

impl ConnState {
    /// `direct`: send. Answers `ack {uid, t}` (never with a `code` on success).
    /// A `direct` command: a message sent (its ack comes with its commit) or a will kept.
    pub(super) async fn direct(&mut self, cmd: &GenericCommand) -> Later {
        match self.begin_direct(cmd).await {
            Ok(later) => later,
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    async fn begin_direct(&mut self, cmd: &GenericCommand) -> Result<Later, RtError> {
        let idx = self.session_index(cmd)?;
        let (app, handle) = (self.sessions[idx].app.clone(), self.sessions[idx].handle.clone());
        let d = cmd.direct_message.clone().unwrap_or_default();
        let target = |e: RtError| if matches!(e.code, 4303 | 4317) { rt(4401, "INVALID_MESSAGING_TARGET") } else { e };
        let conv = self.conv(&app, d.cid.as_deref()).await.map_err(target)?;
        let content = match (d.binary_msg, d.msg) {
            (Some(b), _) => Content::Binary(b),
            (None, Some(m)) => Content::Text(m),
            (None, None) => return Err(rt(4401, "INVALID_MESSAGING_TARGET: no content")),
        };
        let mtype = match &content {
            Content::Text(t) => lctype(t),
            Content::Binary(_) => 0,
        };
        let new = NewMessage {
            from: handle.user.clone(),
            content: Some(content),
            mtype,
            transient: d.transient == Some(true),
            push_data: d.push_data,
            priority: cmd.priority.map(|p| Priority::from_code(p as i64)).unwrap_or_default(),
            mention_all: d.mention_all == Some(true),
            mentions: d.mention_pids,
            receipt: d.r == Some(true),
            origin: Some(handle.origin()),
            from_ip: self.ip.clone(),
            ..Default::default()
        };
        let engine = self.gw.engine.clone();
        let (uid, t) = if d.will == Some(true) {
            // held until the connection drops; checked like a send now
            engine.messages().check_message(&app, &conv, &new).await.map_err(|e| target(e.into()))?;
            let id = engine.next_id();
            self.sessions[idx].wills.push((conv, new));
            (id, engine.now())
        } else {
            match engine.messages().begin_send(&app, &conv, new, &Actor::User(handle.user.clone())).await {
                Ok(sending) => {
                    return Ok(Box::pin(async move {
                        let m = sending.await.map_err(|e| target(e.into()))?;
                        Ok(Some(ack(m.id, m.timestamp)))
                    }));
                }
                // refused by the app's hook: an ack with the code, as the SDK reads it (it raises
                // the error with `appCode`)
                Err(e @ Error::Rejected { .. }) => {
                    let e = RtError::from(e);
                    let mut r = command(CommandType::Ack, None);
                    r.ack_message = Some(AckCommand {
                        code: Some(e.code),
                        reason: Some(e.reason),
                        app_code: e.app_code,
                        app_msg: e.app_msg,
                        ..Default::default()
                    });
                    return Ok(Box::pin(std::future::ready(Ok(Some(r)))));
                }
                Err(e) => return Err(target(e.into())),
            }
        };
        Ok(Box::pin(std::future::ready(Ok(Some(ack(uid, t))))))
    }

    /// `ack` from a recipient: its messages reached the device (no reply).
    pub(super) async fn ack(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let a = cmd.ack_message.clone().unwrap_or_default();
        let conv = self.conv(&s.app, a.cid.as_deref()).await?;
        let to = match (self.message_id(&s.app, a.mid.as_deref()).await, a.tots) {
            (Some(mid), _) => Position::Message(mid),
            (None, Some(t)) => Position::Time(t),
            (None, None) => return Ok(None),
        };
        self.gw.engine.messages().advance_cursor(&s.app, &conv, &s.handle.user, Cursor::Delivered, to).await?;
        Ok(None)
    }

    /// `read`: the client has read conversations up to a message or time (no reply).
    pub(super) async fn read(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        for t in cmd.read_message.clone().unwrap_or_default().convs {
            let Ok(conv) = self.conv(&s.app, Some(&t.cid)).await else { continue };
            let to = match (self.message_id(&s.app, t.mid.as_deref()).await, t.timestamp) {
                (Some(mid), _) => Position::Message(mid),
                (None, Some(ts)) => Position::Time(ts),
                (None, None) => Position::Time(self.gw.engine.now()),
            };
            if let Err(e) = self.gw.engine.messages().advance_cursor(&s.app, &conv, &s.handle.user, Cursor::Read, to).await {
                tracing::debug!(error = %e, "read: cursor not moved");
            }
        }
        Ok(None)
    }
}

/// The ack of a message stored with this id at this time.
fn ack(uid: i64, t: i64) -> GenericCommand {
    let mut r = command(CommandType::Ack, None);
    r.ack_message = Some(AckCommand { uid: Some(uid.to_string()), t: Some(t), ..Default::default() });
    r
}
