//! One WebSocket connection: read frames, run each command in order, answer with the same `i`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use confab_engine::model::*;
use confab_engine::query::{Bound, ConvQuery, Field, Filter, HistoryQuery, HistoryScope, Op, Scalar};
use confab_engine::time::iso_ms;
use confab_engine::{random_lower, Actor, Edit, Error, MessageRef, NewConversation, NewMessage, Offline, Outcome, Position};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::codec::{self, Format};
use super::proto::*;
use super::push::{self, command};
use super::queue::OutQueue;
use super::{close, Conn, Gateway, SessionHandle};
use crate::conversations::{custom_fields, patch_from, render_with};
use crate::error::LcError;
use crate::extract::{cid as render_conv_id, conv_id, TEMP_PREFIX};
use crate::messages::lctype;
use crate::{query, sign};

/// Most conversations a login's unread notification lists, and patches it replays.
const UNREAD_AT_LOGIN: i64 = 50;
const PATCHES_AT_LOGIN: i64 = 100;
/// Conversation queries: default and largest page.
const QUERY_DEFAULT_LIMIT: i64 = 10;
const QUERY_MAX_LIMIT: i64 = 1000;
/// History: default and largest page.
const LOGS_DEFAULT_LIMIT: i64 = 20;
const LOGS_MAX_LIMIT: i64 = 1000;
/// Muted and blocked member listings: default and largest page.
const LIST_DEFAULT_LIMIT: i64 = 10;
const LIST_MAX_LIMIT: i64 = 100;
/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 64;
/// Most ids an online query may name.
const ONLINE_QUERY_MAX: usize = 20;

/// An error answered to a request (`cmd: error`).
#[derive(Debug)]
struct RtError {
    code: i32,
    reason: String,
    /// The app's own code and text, when its hook refused (`appCode`, `appMsg`).
    app_code: Option<i32>,
    app_msg: Option<String>,
}

fn rt(code: i32, reason: &str) -> RtError {
    RtError { code, reason: reason.to_string(), app_code: None, app_msg: None }
}

impl From<LcError> for RtError {
    fn from(e: LcError) -> Self {
        RtError { code: e.code as i32, reason: e.error, app_code: None, app_msg: None }
    }
}

impl From<Error> for RtError {
    fn from(e: Error) -> Self {
        let app = match &e {
            Error::Rejected { code, detail, .. } => Some((code.as_deref().and_then(|c| c.parse().ok()), detail.clone())),
            _ => None,
        };
        let mut r: RtError = LcError::from(e).into();
        if let Some((code, msg)) = app {
            (r.app_code, r.app_msg) = (code, msg);
        }
        r
    }
}

impl RtError {
    /// As an error command: the app's code as `appCode`, its text as `detail` and `appMsg` (the
    /// SDK puts `appCode` and `detail` on the error it raises).
    fn command(self) -> ErrorCommand {
        ErrorCommand {
            code: self.code,
            reason: self.reason,
            app_code: self.app_code,
            detail: self.app_msg.clone(),
            app_msg: self.app_msg,
            ..Default::default()
        }
    }
}

type Reply = Result<Option<GenericCommand>, RtError>;

/// A session (IM client) open on this connection.
struct Session {
    handle: Arc<SessionHandle>,
    app: Arc<App>,
    /// "Will" messages, sent if the connection drops without the client logging out.
    wills: Vec<(Conversation, NewMessage)>,
}

struct ConnState {
    gw: Arc<Gateway>,
    conn: Arc<Conn>,
    sessions: Vec<Session>,
    ip: Option<String>,
    /// Pushes to send after the current reply (the unread notification after `opened`).
    after_reply: Vec<GenericCommand>,
}

pub(super) async fn serve(gw: Arc<Gateway>, socket: WebSocket, format: Format, ip: Option<String>) {
    let (sink, mut stream) = socket.split();
    let conn = Arc::new(Conn {
        id: gw.next_id(),
        format,
        out: OutQueue::new(gw.settings.out_queue, gw.settings.out_queue_bytes),
        kill: watch::Sender::new(None),
    });
    gw.conn_opened(&conn);
    let _registered = Registered(gw.clone(), conn.id);
    let grace = gw.settings.close_grace;
    let writer = spawn_writer(conn.clone(), sink, format, grace);

    let mut st = ConnState { gw: gw.clone(), conn: conn.clone(), sessions: Vec::new(), ip, after_reply: Vec::new() };
    let mut killed = conn.kill.subscribe();
    loop {
        let wait = if st.sessions.is_empty() { gw.settings.login_timeout } else { gw.settings.idle_timeout };
        let next = tokio::select! {
            r = tokio::time::timeout(wait, stream.next()) => r,
            _ = killed.wait_for(Option::is_some) => break,
        };
        let frame = match next {
            Err(_) => {
                let code = if st.sessions.is_empty() { close::LOGIN_TIMEOUT } else { close::READ_TIMEOUT };
                conn.kill(code, "timeout");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                if e.to_string().contains("too long") || e.to_string().contains("too big") {
                    conn.kill(close::FRAME_TOO_LONG, "FRAME_TOO_LONG");
                }
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        if matches!(frame, WsMessage::Close(_)) {
            break;
        }
        // boxed: a connection waiting for its next frame holds only the read, not a decoded
        // command (kilobytes) nor the largest command's state; what an idle session costs
        Box::pin(st.frame(frame)).await;
        if conn.is_killed() {
            break;
        }
    }
    // the sessions end now; the writer may still be handing the close frame over
    Box::pin(st.disconnected()).await;
    conn.kill(1000, "");
    let _ = tokio::time::timeout(grace + std::time::Duration::from_secs(1), writer).await;
}

/// The connection's writer: drains the queue in batches until the connection is killed (then
/// its close frame, within the grace) or the socket fails. A plain function, so that the
/// writer's state lives in its own task and not also in the reader's.
fn spawn_writer(
    wconn: Arc<Conn>,
    mut sink: SplitSink<WebSocket, WsMessage>,
    format: Format,
    grace: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    // the writer ends when the connection is killed (after its close frame) or the socket fails
    tokio::spawn(async move {
        let mut killed = wconn.kill.subscribe();
        let close = |conn: &Conn| {
            let (code, reason) = conn.close_frame();
            WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))
        };
        loop {
            // what is queued (a burst of pushes), written with one flush: one syscall
            let batch = tokio::select! {
                biased;
                _ = killed.wait_for(Option::is_some) => break,
                out = wconn.out.take(WRITE_BATCH) => match out {
                    Some(b) => b,
                    None => break,
                },
            };
            let write = async {
                for b in batch {
                    let m = match format {
                        Format::Binary => WsMessage::Binary(b),
                        Format::Base64 => WsMessage::Text(codec::to_text(&b).into()),
                    };
                    sink.feed(m).await?;
                }
                sink.flush().await
            };
            // a write stuck on a client that does not read gives way to a kill
            let written = tokio::select! {
                r = write => r.is_ok(),
                _ = killed.wait_for(Option::is_some) => false,
            };
            if !written {
                break;
            }
        }
        // What is still queued is dropped (the client catches up by its cursors); what is in
        // flight, then the close frame, is given the grace to reach a client that reads again.
        // A socket that failed ends the connection too (the reader stops on the kill).
        wconn.out.close();
        wconn.kill(1011, "write failed");
        let _ = tokio::time::timeout(grace, sink.send(close(&wconn))).await;
    })
}

/// Keeps a connection in the gateway's list while its task runs.
struct Registered(Arc<Gateway>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.conn_closed(self.1);
    }
}

impl ConnState {
    /// One frame from the client: decode it and run the command, or answer 4114.
    async fn frame(&mut self, frame: WsMessage) {
        let cmd = match frame {
            WsMessage::Binary(b) => codec::decode(&b).ok(),
            WsMessage::Text(t) => codec::decode_text(t.as_str()),
            _ => return,
        };
        match cmd {
            Some(cmd) => self.handle(cmd).await,
            None => {
                let mut e = command(CommandType::Error, None);
                e.error_message = Some(ErrorCommand { code: 4114, reason: "UNPARSEABLE_RAW_MESSAGE".into(), ..Default::default() });
                self.send(e).await;
            }
        }
    }

    async fn send(&self, cmd: GenericCommand) {
        self.conn.reply(codec::encode(&cmd)).await;
    }

    fn node(&self) -> u16 {
        self.gw.engine.node()
    }

    /// The session a command is for: its `peerId`, or the connection's first session.
    fn session(&self, cmd: &GenericCommand) -> Result<&Session, RtError> {
        let found = match cmd.peer_id.as_deref() {
            Some(p) => self.sessions.iter().find(|s| s.handle.peer == p),
            None => self.sessions.first(),
        };
        found.ok_or_else(|| rt(4105, "SESSION_REQUIRED"))
    }

    fn session_index(&self, cmd: &GenericCommand) -> Result<usize, RtError> {
        let found = match cmd.peer_id.as_deref() {
            Some(p) => self.sessions.iter().position(|s| s.handle.peer == p),
            None => (!self.sessions.is_empty()).then_some(0),
        };
        found.ok_or_else(|| rt(4105, "SESSION_REQUIRED"))
    }

    async fn handle(&mut self, cmd: GenericCommand) {
        // sessions ended from elsewhere (kicked, conflict) are gone
        self.sessions.retain(|s| !s.handle.is_ended());
        // the app's settings as they are now (hooks, limits: `confab app set` on a running server)
        for s in &mut self.sessions {
            if let Ok(Some(app)) = self.gw.engine.find_app(&AppLookup::Id(s.app.id)).await {
                s.app = app;
            }
        }
        let i = cmd.i.filter(|i| *i != 0);
        let op = cmd.op.and_then(|o| OpType::try_from(o).ok());
        let result = match cmd.cmd.and_then(|c| CommandType::try_from(c).ok()) {
            Some(CommandType::Echo) => Ok(Some(command(CommandType::Echo, None))),
            Some(CommandType::Session) => self.session_cmd(op, &cmd).await,
            Some(CommandType::Conv) => self.conv_cmd(op, &cmd).await,
            Some(CommandType::Direct) => self.direct(&cmd).await,
            Some(CommandType::Ack) => self.ack(&cmd).await,
            Some(CommandType::Read) => self.read(&cmd).await,
            Some(CommandType::Logs) => self.logs(&cmd).await,
            Some(CommandType::Patch) => self.patch(&cmd).await,
            Some(CommandType::Blacklist) => self.blacklist(op, &cmd).await,
            _ => Err(rt(4114, "UNSUPPORTED_COMMAND")),
        };
        match result {
            Ok(Some(mut reply)) => {
                if let Some(i) = i {
                    reply.i = Some(i);
                    reply.peer_id = reply.peer_id.or(cmd.peer_id.clone());
                    self.send(reply).await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                if let Some(i) = i {
                    let mut r = command(CommandType::Error, None);
                    r.i = Some(i);
                    r.peer_id = cmd.peer_id.clone();
                    r.error_message = Some(e.command());
                    self.send(r).await;
                } else {
                    tracing::debug!(code = e.code, reason = %e.reason, "a command without i failed");
                }
            }
        }
        for p in std::mem::take(&mut self.after_reply) {
            self.send(p).await;
        }
    }

    /// The connection is gone: its sessions end (their tokens stay valid for the reconnect), and
    /// their will messages go out.
    async fn disconnected(&mut self) {
        // closed by the server for an error (timeouts, a frame too long, too slow): LeanCloud's
        // `errorCode`/`errorMsg` of `_clientOffline`
        let error = match self.conn.close_frame() {
            (code @ (close::READ_TIMEOUT | close::LOGIN_TIMEOUT), _) => {
                Some((i64::from(code), if code == close::READ_TIMEOUT { "READ_TIMEOUT" } else { "LOGIN_TIMEOUT" }.to_string()))
            }
            (close::FRAME_TOO_LONG, _) => Some((i64::from(close::FRAME_TOO_LONG), "FRAME_TOO_LONG".to_string())),
            (close::SLOW_CONSUMER, _) => Some((i64::from(close::SLOW_CONSUMER), "INTERNAL_ERROR".to_string())),
            _ => None,
        };
        for s in std::mem::take(&mut self.sessions) {
            self.gw.end_session(&s.handle, false, &Offline::Lost { error: error.clone() }).await;
            for (conv, will) in s.wills {
                let actor = Actor::User(s.handle.peer.clone());
                if let Err(e) = self.gw.engine.send_message(&s.app, &conv, will, &actor).await {
                    tracing::debug!(error = %e, "a will message could not be sent");
                }
            }
        }
    }

    // ------------------------------------------------------------------ session

    async fn session_cmd(&mut self, op: Option<OpType>, cmd: &GenericCommand) -> Reply {
        match op {
            Some(OpType::Open) => self.open(cmd).await,
            Some(OpType::Close) => {
                let idx = self.session_index(cmd)?;
                let s = self.sessions.remove(idx);
                self.gw.end_session(&s.handle, true, &Offline::Logout).await;
                Ok(Some(command(CommandType::Session, Some(OpType::Closed))))
            }
            Some(OpType::Refresh) => {
                let s = self.session(cmd)?;
                let token = self.issue_token(&s.app, &s.handle).await?;
                let old = s.handle.token.lock().replace(token.clone());
                if let Some(old) = old {
                    let _ = self.gw.engine.revoke_token(&old).await;
                }
                let mut r = command(CommandType::Session, Some(OpType::Refreshed));
                r.session_message =
                    Some(SessionCommand { st: Some(token), st_ttl: Some(self.gw.settings.st_ttl_secs as i32), ..Default::default() });
                Ok(Some(r))
            }
            Some(OpType::Query) => {
                let s = self.session(cmd)?;
                let ids = cmd.session_message.as_ref().map(|m| m.session_peer_ids.clone()).unwrap_or_default();
                if ids.len() > ONLINE_QUERY_MAX {
                    return Err(rt(4200, "at most 20 ids"));
                }
                let online = self.gw.engine.check_online(&s.app, &ids).await?;
                let mut r = command(CommandType::Session, Some(OpType::QueryResult));
                r.session_message = Some(SessionCommand { online_session_peer_ids: online, ..Default::default() });
                Ok(Some(r))
            }
            _ => Err(rt(4114, "UNSUPPORTED_COMMAND")),
        }
    }

    async fn issue_token(&self, app: &App, h: &SessionHandle) -> Result<String, RtError> {
        let now = self.gw.engine.now();
        let token = Token {
            token: random_lower(32),
            app: app.id,
            user: Some(h.peer.clone()),
            kind: TokenKind::LcRealtime,
            created_at: now,
            expires_at: Some(now + self.gw.settings.st_ttl_secs * 1000),
            device: Some(format!("{}\u{1f}{}", h.tag.clone().unwrap_or_default(), h.device.clone().unwrap_or_default())),
        };
        self.gw.engine.put_token(&token).await?;
        Ok(token.token)
    }

    /// `session open`: a first login (with a signature when the app requires one) or a
    /// reconnect with the session token. Answers `opened` with a session token, then pushes what
    /// the client missed: unread counts, edits and recalls, broadcasts.
    async fn open(&mut self, cmd: &GenericCommand) -> Reply {
        let engine = self.gw.engine.clone();
        let sm = cmd.session_message.clone().unwrap_or_default();
        let app_id = cmd.app_id.clone().ok_or_else(|| rt(4100, "APP_NOT_AVAILABLE"))?;
        let app = engine.find_app(&AppLookup::LeanCloud(app_id)).await?.ok_or_else(|| rt(4100, "APP_NOT_AVAILABLE"))?;
        let peer = cmd.peer_id.clone().unwrap_or_else(|| random_lower(16));
        engine.validate_user_id(&app, &peer).map_err(|_| rt(4103, "INVALID_LOGIN"))?;
        let now = engine.now();
        let mut resumed: Option<Token> = None;
        if let Some(st) = sm.st.as_deref() {
            match engine.check_token(&app, st, TokenKind::LcRealtime).await? {
                Some(t) if t.user.as_deref() == Some(peer.as_str()) => resumed = Some(t),
                _ => return Err(rt(4112, "SESSION_TOKEN_EXPIRED")),
            }
        }
        if resumed.is_none() && app.limits.lc_sign_login {
            let keys = &app.keys.leancloud;
            let ok = match (sm.s.as_deref(), sm.t, sm.n.as_deref()) {
                (Some(s), Some(t), Some(n)) => sign::check(&keys.master_key, &format!("{}:{peer}::{t}:{n}", keys.app_id), s, t, now),
                _ => false,
            };
            if !ok {
                return Err(rt(4102, "SIGNATURE_FAILED"));
            }
        }
        // the same client opening again on this socket replaces its session
        if let Some(pos) = self.sessions.iter().position(|s| s.handle.peer == peer) {
            let old = self.sessions.remove(pos);
            self.gw.end_session(&old.handle, false, &Offline::Lost { error: None }).await;
        }
        let (tag, device) = match resumed.as_ref().and_then(|t| t.device.clone()) {
            Some(d) => {
                let (t, dev) = d.split_once('\u{1f}').unwrap_or((&d, ""));
                (Some(t.to_string()).filter(|x| !x.is_empty()), Some(dev.to_string()).filter(|x| !x.is_empty()))
            }
            None => (sm.tag.clone().filter(|t| !t.is_empty()), sm.device_id.clone().filter(|d| !d.is_empty())),
        };
        engine.ensure_users(&app, &[&peer]).await?;
        let last_login = engine.get_user(&app, &peer).await?.last_login_at;
        let handle = Arc::new(SessionHandle {
            id: self.gw.next_id(),
            app: app.id,
            peer: peer.clone(),
            conn: self.conn.clone(),
            tag,
            device,
            token: Mutex::new(None),
            ip: self.ip.clone(),
            ended: AtomicBool::new(false),
        });
        self.gw.register(handle.clone());
        engine.session_opened(&app, &peer, handle.session_ref(self.node()), self.ip.as_deref(), sm.r == Some(true)).await?;
        let (token, ttl) = match resumed {
            // a resumed token keeps its expiry: the client is told what is left of it
            Some(t) => (t.token, t.expires_at.map_or(self.gw.settings.st_ttl_secs, |e| (e - now) / 1000)),
            None => (self.issue_token(&app, &handle).await?, self.gw.settings.st_ttl_secs),
        };
        *handle.token.lock() = Some(token.clone());
        self.sessions.push(Session { handle, app: app.clone(), wills: vec![] });

        let ttl = ttl as i32;
        let mut r = command(CommandType::Session, Some(OpType::Opened));
        r.peer_id = Some(peer.clone());
        r.server_ts = Some(now);
        r.session_message = Some(SessionCommand { st: Some(token), st_ttl: Some(ttl), ..Default::default() });
        self.catch_up(&app, &peer, sm.last_unread_notif_time, sm.last_patch_time, last_login).await?;
        Ok(Some(r))
    }

    /// What a client that logs in missed: unread counts (protocol 3), edits and recalls after
    /// its `lastPatchTime`, and broadcasts sent since it was last here.
    async fn catch_up(
        &mut self,
        app: &App,
        peer: &str,
        notif_time: Option<i64>,
        patch_time: Option<i64>,
        last_login: Option<i64>,
    ) -> Result<(), RtError> {
        let engine = self.gw.engine.clone();
        let now = engine.now();
        let entries = engine.unread_summary(app, peer, notif_time.unwrap_or(0), UNREAD_AT_LOGIN).await?;
        if !entries.is_empty() {
            let convs = entries
                .iter()
                .map(|e| {
                    let cid = crate::extract::render_cid(e.conv, e.kind, e.foreign_id.as_deref());
                    push::unread_tuple(cid, e.count, e.last.as_ref(), e.mentioned)
                })
                .collect();
            let mut u = command(CommandType::Unread, None);
            u.peer_id = Some(peer.to_string());
            u.unread_message = Some(UnreadCommand { convs, notif_time: Some(now) });
            self.after_reply.push(u);
        }
        if let Some(since) = patch_time {
            let msgs = engine.patches_since(app, peer, since, PATCHES_AT_LOGIN).await?;
            if !msgs.is_empty() {
                let mut items = Vec::with_capacity(msgs.len());
                let mut latest = since;
                for m in &msgs {
                    let conv = match engine.conversation(app, m.conv, None).await {
                        Ok(c) => ConvRef::of(&c),
                        Err(_) => ConvRef { id: m.conv, kind: ConvKind::Normal, foreign_id: None },
                    };
                    latest = latest.max(m.recalled_at.or(m.edited_at).unwrap_or(since));
                    items.push(push::patch_item(m, &conv));
                }
                let mut p = push::patches(items, latest);
                p.peer_id = Some(peer.to_string());
                self.after_reply.push(p);
            }
        }
        // a client new to the app gets every broadcast still valid
        let since = notif_time.or(last_login).unwrap_or(0);
        for b in engine.active_broadcasts(app, since).await? {
            let conv = match engine.conversation(app, b.conv, None).await {
                Ok(c) => ConvRef::of(&c),
                Err(_) => ConvRef { id: b.conv, kind: ConvKind::Service, foreign_id: None },
            };
            let mut d = push::direct(&Message::new(b.app, b.id, b.conv, b.from.clone(), b.timestamp, b.content.clone()), &conv, now);
            d.peer_id = Some(peer.to_string());
            self.after_reply.push(d);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ conversations

    /// The conversation a `cid` names. A temporary conversation that is gone has expired (4323).
    async fn conv(&self, app: &App, cid: Option<&str>) -> Result<Conversation, RtError> {
        let cid = cid.ok_or_else(|| rt(4303, "CONVERSATION_NOT_FOUND"))?;
        match crate::extract::find_conversation(&self.gw.engine, app, cid).await {
            Err(Error::ConversationNotFound) if cid.starts_with(TEMP_PREFIX) => Err(rt(4323, "TEMPORARY_CONVERSATION_EXPIRED")),
            r => Ok(r?),
        }
    }

    /// The message a message id names (confab's, or an imported message's LeanCloud msg-id).
    async fn message_id(&self, app: &App, mid: Option<&str>) -> Option<i64> {
        crate::extract::find_message_id(&self.gw.engine, app, mid?).await.ok()
    }

    /// A conversation operation's signature, when the app requires them:
    /// `appid:clientid:convid:sorted_member_ids:timestamp:nonce:action` (create: without the
    /// conversation id and action). The creator may be left out of the signed members.
    fn check_conv_signature(
        &self,
        app: &App,
        peer: &str,
        cid: Option<&str>,
        members: &[String],
        action: Option<&str>,
        sig: (Option<&str>, Option<i64>, Option<&str>),
    ) -> Result<(), RtError> {
        if !app.limits.lc_sign_conversation {
            return Ok(());
        }
        let (Some(s), Some(t), Some(n)) = sig else { return Err(rt(4302, "CONVERSATION_SIGNATURE_FAILED")) };
        let keys = &app.keys.leancloud;
        let now = self.gw.engine.now();
        let mut sorted = members.to_vec();
        sorted.sort();
        let without_self: Vec<String> = sorted.iter().filter(|m| *m != peer).cloned().collect();
        let ok = [sorted, without_self].iter().any(|ms| {
            let ms = ms.join(":");
            let msg = match (cid, action) {
                (Some(c), Some(a)) => format!("{}:{peer}:{c}:{ms}:{t}:{n}:{a}", keys.app_id),
                _ => format!("{}:{peer}:{ms}:{t}:{n}", keys.app_id),
            };
            sign::check(&keys.master_key, &msg, s, t, now)
        });
        if ok {
            Ok(())
        } else {
            Err(rt(4302, "CONVERSATION_SIGNATURE_FAILED"))
        }
    }

    async fn conv_cmd(&mut self, op: Option<OpType>, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let (app, peer) = (s.app.clone(), s.handle.peer.clone());
        let engine = self.gw.engine.clone();
        let me = Actor::User(peer.clone());
        let c = cmd.conv_message.clone().unwrap_or_default();
        let reply = |op: OpType, m: ConvCommand| {
            let mut r = command(CommandType::Conv, Some(op));
            r.conv_message = Some(m);
            Ok(Some(r))
        };
        match op {
            Some(OpType::Start) => self.start(&app, &peer, c).await,
            Some(OpType::Query) => self.query(&app, &peer, c).await,
            Some(op @ (OpType::Add | OpType::Remove)) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let action = if op == OpType::Add { "invite" } else { "kick" };
                self.check_conv_signature(&app, &peer, c.cid.as_deref(), &c.m, Some(action), (c.s.as_deref(), c.t, c.n.as_deref()))?;
                let out = if op == OpType::Add {
                    engine.add_members(&app, &conv, c.m, &me).await?
                } else {
                    engine.remove_members(&app, &conv, c.m, &me).await?
                };
                let (allowed_pids, failed_pids) = split(out);
                let udate = Some(iso_ms(engine.now()));
                reply(
                    if op == OpType::Add { OpType::Added } else { OpType::Removed },
                    ConvCommand { allowed_pids, failed_pids, udate, ..Default::default() },
                )
            }
            Some(OpType::Update) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let attrs: Map<String, Value> = match c.attr.as_ref().map(|a| serde_json::from_str(&a.data)) {
                    Some(Ok(Value::Object(m))) => m,
                    _ => return Err(rt(4306, "CONVERSATION_UPDATE_FAILED: attr must be a JSON object")),
                };
                let patch = patch_from(attrs)?;
                let updated = engine.update_conversation(&app, conv.id, None, &patch, &me).await?;
                reply(OpType::Updated, ConvCommand { cid: c.cid, udate: Some(iso_ms(updated.updated_at)), ..Default::default() })
            }
            Some(op @ (OpType::Mute | OpType::Unmute)) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                engine.set_notifications(&app, &conv, &peer, op == OpType::Mute).await?;
                reply(OpType::Updated, ConvCommand { cid: c.cid, udate: Some(iso_ms(engine.now())), ..Default::default() })
            }
            Some(OpType::Count) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let n = engine.member_count(&app, &conv).await?;
                reply(OpType::Result, ConvCommand { cid: c.cid, count: Some(n as i32), ..Default::default() })
            }
            Some(OpType::MaxRead) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let times = engine.cursor_times(&app, &conv).await?;
                let mut m = ConvCommand { cid: c.cid.clone(), ..Default::default() };
                if c.query_all_members == Some(true) {
                    m.max_read_tuples = times
                        .iter()
                        .map(|t| MaxReadTuple {
                            pid: Some(t.user.clone()),
                            max_ack_timestamp: t.delivered_at,
                            max_read_timestamp: t.read_at,
                        })
                        .collect();
                } else {
                    let others = times.iter().filter(|t| t.user != peer);
                    m.max_read_timestamp = Some(others.clone().filter_map(|t| t.read_at).max().unwrap_or(0));
                    m.max_ack_timestamp = Some(others.filter_map(|t| t.delivered_at).max().unwrap_or(0));
                }
                reply(OpType::MaxRead, m)
            }
            Some(OpType::MemberInfoUpdate) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let info = c.info.clone().unwrap_or_default();
                let target = c
                    .target_client_id
                    .clone()
                    .or(info.pid.clone())
                    .ok_or_else(|| rt(4321, "UNKNOWN_CONVERSATION_ROLE: no member named"))?;
                let role = match info.role.as_deref() {
                    Some("Manager") => Role::Admin,
                    Some("Member") => Role::Member,
                    Some("Owner") => return Err(rt(4320, "CONVERSATION_OPERATION_UNAUTHORIZED: the owner cannot be changed this way")),
                    _ => return Err(rt(4321, "UNKNOWN_CONVERSATION_ROLE")),
                };
                engine.set_role(&app, &conv, &target, role, &me).await?;
                reply(OpType::MemberInfoUpdated, ConvCommand { cid: c.cid, ..Default::default() })
            }
            Some(op @ (OpType::AddShutup | OpType::RemoveShutup)) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let mute = op == OpType::AddShutup;
                let out = engine.mute_members(&app, &conv, c.m, mute, None, &me).await?;
                let (allowed_pids, failed_pids) = split(out);
                reply(
                    if mute { OpType::ShutupAdded } else { OpType::ShutupRemoved },
                    ConvCommand { allowed_pids, failed_pids, ..Default::default() },
                )
            }
            Some(OpType::QueryShutup) => {
                let conv = self.conv(&app, c.cid.as_deref()).await?;
                let limit = page(c.limit.map(i64::from));
                let m = engine.muted_members(&app, &conv, c.next.clone(), limit).await?;
                let next = (m.len() as i64 == limit).then(|| m.last().cloned()).flatten();
                reply(OpType::ShutupResult, ConvCommand { m, next, ..Default::default() })
            }
            _ => Err(rt(4114, "UNSUPPORTED_COMMAND")),
        }
    }

    /// `conv start`: a conversation (unique when asked), a chat room (`transient`), or a temporary
    /// conversation (`tempConv`, `_tmp:` id).
    async fn start(&mut self, app: &App, peer: &str, c: ConvCommand) -> Reply {
        let mut members = c.m.clone();
        if !members.iter().any(|m| m == peer) {
            members.push(peer.to_string());
        }
        self.check_conv_signature(app, peer, None, &members, None, (c.s.as_deref(), c.t, c.n.as_deref()))?;
        let mut attrs: Map<String, Value> = match c.attr.as_ref().map(|a| serde_json::from_str(&a.data)) {
            None => Map::new(),
            Some(Ok(Value::Object(m))) => m,
            Some(_) => return Err(rt(4301, "CONVERSATION_API_FAILED: attr must be a JSON object")),
        };
        let name = match attrs.remove("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) => Some(n),
            Some(_) => return Err(rt(4301, "CONVERSATION_API_FAILED: name must be a string")),
        };
        let kind = if c.transient == Some(true) {
            ConvKind::Chatroom
        } else if c.temp_conv == Some(true) {
            ConvKind::Temporary
        } else {
            ConvKind::Normal
        };
        let new = NewConversation {
            kind: Some(kind),
            name,
            creator: Some(peer.to_string()),
            members,
            unique: c.unique == Some(true),
            attrs: custom_fields(attrs, &[])?,
            ttl_secs: c.temp_conv_ttl.map(i64::from),
            actor: Actor::User(peer.to_string()),
            ..Default::default()
        };
        let (conv, _) = self.gw.engine.create_conversation(app, new).await?;
        let mut r = command(CommandType::Conv, Some(OpType::Started));
        r.conv_message = Some(ConvCommand {
            cid: Some(render_conv_id(&conv)),
            cdate: Some(iso_ms(conv.created_at)),
            temp_conv_ttl: conv.expires_at.map(|e| ((e - conv.created_at) / 1000) as i32),
            ..Default::default()
        });
        Ok(Some(r))
    }

    /// `conv query`: LeanCloud's query language (or `tempConvIds`); results are a JSON string of
    /// conversation objects with the short keys. Flag 1 leaves out member lists, flag 2 adds each
    /// conversation's last message (for its members).
    async fn query(&self, app: &App, peer: &str, c: ConvCommand) -> Reply {
        let engine = &self.gw.engine;
        let q = if !c.temp_conv_ids.is_empty() {
            let ids: Vec<Scalar> = c.temp_conv_ids.iter().filter_map(|t| conv_id(t).ok()).map(Scalar::Int).collect();
            ConvQuery {
                kinds: Some(vec![ConvKind::Temporary]),
                filter: Filter::Cond(Field::Id, Op::In(ids)),
                limit: QUERY_MAX_LIMIT,
                ..Default::default()
            }
        } else {
            let filter = match c.r#where.as_ref() {
                None => Filter::True,
                Some(w) => {
                    let v: Value = serde_json::from_str(&w.data).map_err(|_| rt(4310, "CONVERSATION_QUERY_FAILED: where is not JSON"))?;
                    query::filter(&v)?
                }
            };
            let order = c.sort.as_deref().map(query::order).transpose()?.unwrap_or_default();
            let limit = c.limit.map(i64::from).filter(|l| *l > 0).unwrap_or(QUERY_DEFAULT_LIMIT).min(QUERY_MAX_LIMIT);
            ConvQuery { kinds: None, filter, order, skip: c.skip.map(i64::from).unwrap_or(0).max(0), limit, count: false }
        };
        let now = engine.now();
        let (convs, _) = engine.query_conversations(app, &q).await?;
        let convs: Vec<Conversation> = convs.into_iter().filter(|c| c.expires_at.is_none_or(|e| e > now)).collect();
        let ids: Vec<i64> = convs.iter().map(|c| c.id).collect();
        let members = engine.members_of(app, &ids).await?;
        let flag = c.flag.unwrap_or(0);
        let mut results = Vec::with_capacity(convs.len());
        for conv in &convs {
            let ms = members.get(&conv.id);
            let mut o = render_with(conv, ms);
            if flag & 1 != 0 {
                if let Some(obj) = o.as_object_mut() {
                    obj.remove("m");
                }
            }
            let is_member =
                ms.is_some_and(|v| v.iter().any(|m| m.user == peer)) || matches!(conv.kind, ConvKind::Chatroom | ConvKind::Service);
            if flag & 2 != 0 && is_member {
                let h = HistoryQuery {
                    scope: HistoryScope::Conv(conv.id),
                    older_than: None,
                    newer_than: None,
                    ascending: false,
                    limit: 1,
                    mtype: None,
                };
                if let Some(m) = engine.history(app, &h).await?.into_iter().next() {
                    let (data, bin) = crate::render::data(&m);
                    let obj = o.as_object_mut().expect("object");
                    obj.insert("msg".into(), Value::String(data));
                    obj.insert("bin".into(), Value::Bool(bin));
                    obj.insert("msg_from".into(), Value::String(m.from.clone()));
                    obj.insert("msg_mid".into(), Value::String(crate::extract::mid(&m)));
                    obj.insert("msg_timestamp".into(), Value::from(m.timestamp));
                    if let Some(p) = m.recalled_at.or(m.edited_at) {
                        obj.insert("patch_timestamp".into(), Value::from(p));
                    }
                }
            }
            results.push(o);
        }
        let mut r = command(CommandType::Conv, Some(OpType::Results));
        r.conv_message =
            Some(ConvCommand { results: Some(JsonObjectMessage { data: Value::Array(results).to_string() }), ..Default::default() });
        Ok(Some(r))
    }

    // ------------------------------------------------------------------ blacklist

    async fn blacklist(&mut self, op: Option<OpType>, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let (app, peer) = (s.app.clone(), s.handle.peer.clone());
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
                    engine.block_members(&app, &conv, b.to_pids, &me).await?
                } else {
                    engine.unblock_members(&app, &conv, b.to_pids, &me).await?
                };
                let (allowed_pids, failed_pids) = split(out);
                r.op = Some(if op == OpType::Block { OpType::Blocked } else { OpType::Unblocked } as i32);
                r.blacklist_message = Some(BlacklistCommand { src_cid: b.src_cid, allowed_pids, failed_pids, ..Default::default() });
            }
            Some(OpType::Query) => {
                let limit = page(b.limit.map(i64::from));
                let blocked = engine.blocked_members(&app, &conv, b.next.as_deref(), limit).await?;
                let next = (blocked.len() as i64 == limit).then(|| blocked.last().cloned()).flatten();
                r.op = Some(OpType::QueryResult as i32);
                r.blacklist_message = Some(BlacklistCommand { src_cid: b.src_cid, blocked_pids: blocked, next, ..Default::default() });
            }
            _ => return Err(rt(4114, "UNSUPPORTED_COMMAND")),
        }
        Ok(Some(r))
    }

    // ------------------------------------------------------------------ messages

    /// `direct`: send. Answers `ack {uid, t}` (never with a `code` on success).
    async fn direct(&mut self, cmd: &GenericCommand) -> Reply {
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
            from: handle.peer.clone(),
            content: Some(content),
            mtype,
            transient: d.transient == Some(true),
            push_data: d.push_data,
            priority: cmd.priority.map(|p| Priority::from_code(p as i64)).unwrap_or_default(),
            mention_all: d.mention_all == Some(true),
            mentions: d.mention_pids,
            receipt: d.r == Some(true),
            origin: Some(handle.origin(self.node())),
            from_ip: self.ip.clone(),
            ..Default::default()
        };
        let engine = self.gw.engine.clone();
        let (uid, t) = if d.will == Some(true) {
            // held until the connection drops; checked like a send now
            engine.check_message(&app, &conv, &new).await.map_err(|e| target(e.into()))?;
            let id = engine.next_id();
            self.sessions[idx].wills.push((conv, new));
            (id, engine.now())
        } else {
            match engine.send_message(&app, &conv, new, &Actor::User(handle.peer.clone())).await {
                Ok(m) => (m.id, m.timestamp),
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
                    return Ok(Some(r));
                }
                Err(e) => return Err(target(e.into())),
            }
        };
        let mut r = command(CommandType::Ack, None);
        r.ack_message = Some(AckCommand { uid: Some(uid.to_string()), t: Some(t), ..Default::default() });
        Ok(Some(r))
    }

    /// `ack` from a recipient: its messages reached the device (no reply).
    async fn ack(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let a = cmd.ack_message.clone().unwrap_or_default();
        let conv = self.conv(&s.app, a.cid.as_deref()).await?;
        let to = match (self.message_id(&s.app, a.mid.as_deref()).await, a.tots) {
            (Some(mid), _) => Position::Message(mid),
            (None, Some(t)) => Position::Time(t),
            (None, None) => return Ok(None),
        };
        self.gw.engine.advance_cursor(&s.app, &conv, &s.handle.peer, Cursor::Delivered, to).await?;
        Ok(None)
    }

    /// `read`: the client has read conversations up to a message or time (no reply).
    async fn read(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        for t in cmd.read_message.clone().unwrap_or_default().convs {
            let Ok(conv) = self.conv(&s.app, Some(&t.cid)).await else { continue };
            let to = match (self.message_id(&s.app, t.mid.as_deref()).await, t.timestamp) {
                (Some(mid), _) => Position::Message(mid),
                (None, Some(ts)) => Position::Time(ts),
                (None, None) => Position::Time(self.gw.engine.now()),
            };
            if let Err(e) = self.gw.engine.advance_cursor(&s.app, &conv, &s.handle.peer, Cursor::Read, to).await {
                tracing::debug!(error = %e, "read: cursor not moved");
            }
        }
        Ok(None)
    }

    /// `logs`: history, always answered oldest first (the SDK pages from the first item).
    async fn logs(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let engine = &self.gw.engine;
        let l = cmd.logs_message.clone().unwrap_or_default();
        let conv = self.conv(&s.app, l.cid.as_deref()).await?;
        let peer = &s.handle.peer;
        let scope = match conv.kind {
            ConvKind::Chatroom => HistoryScope::Conv(conv.id),
            ConvKind::Service => HistoryScope::ConvAs { conv: conv.id, user: peer.clone() },
            _ => {
                engine.member(&s.app, &conv, peer).await.map_err(|_| rt(4312, "CONVERSATION_LOG_REJECTED"))?;
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
        let mut msgs = engine.history(&s.app, &q).await?;
        if newer_first {
            msgs.reverse();
        }
        // when the others have read my messages
        let others_read = if matches!(conv.kind, ConvKind::Normal | ConvKind::Temporary) {
            engine.cursor_times(&s.app, &conv).await?.into_iter().filter(|t| t.user != *peer).filter_map(|t| t.read_at).max()
        } else {
            None
        };
        let logs = msgs.iter().map(|m| push::log_item(m, others_read.filter(|r| m.from == *peer && *r >= m.timestamp))).collect();
        let mut r = command(CommandType::Logs, None);
        r.logs_message = Some(LogsCommand { logs, ..Default::default() });
        Ok(Some(r))
    }

    /// `patch modify`: edit or recall own messages.
    async fn patch(&self, cmd: &GenericCommand) -> Reply {
        let s = self.session(cmd)?;
        let engine = &self.gw.engine;
        let origin = Some(s.handle.origin(self.node()));
        for p in cmd.patch_message.clone().unwrap_or_default().patches {
            let conv = self.conv(&s.app, p.cid.as_deref()).await?;
            let id = self.message_id(&s.app, p.mid.as_deref()).await.ok_or_else(|| rt(4404, "MESSAGE_NOT_FOUND"))?;
            let r = MessageRef { id, from: Some(s.handle.peer.clone()), timestamp: p.timestamp };
            if p.recall == Some(true) {
                engine.recall_message(&s.app, &conv, &r, &Actor::User(s.handle.peer.clone()), origin).await?;
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
                    .edit_message(&s.app, &conv, &r, Edit { content, mtype, mentions }, &Actor::User(s.handle.peer.clone()), origin)
                    .await?;
            }
        }
        let mut r = command(CommandType::Patch, Some(OpType::Modified));
        r.patch_message = Some(PatchCommand { patches: vec![], last_patch_time: Some(engine.now()) });
        Ok(Some(r))
    }
}

/// Page size for member listings.
fn page(limit: Option<i64>) -> i64 {
    limit.filter(|l| *l > 0).unwrap_or(LIST_DEFAULT_LIMIT).min(LIST_MAX_LIMIT)
}

/// `(allowedPids, failedPids)`: the refused grouped by error.
fn split(out: Outcome) -> (Vec<String>, Vec<ErrorCommand>) {
    let mut groups: BTreeMap<(i32, String), Vec<String>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for (user, e) in out.refused {
        let e = RtError::from(e);
        if seen.insert(user.clone()) {
            groups.entry((e.code, e.reason)).or_default().push(user);
        }
    }
    let failed = groups.into_iter().map(|((code, reason), pids)| ErrorCommand { code, reason, pids, ..Default::default() }).collect();
    (out.done, failed)
}
