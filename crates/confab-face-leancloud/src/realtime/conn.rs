//! One WebSocket connection: read frames, run each command in order, answer with the same `i`.
//! Each command family is a module of its own (`session`, `convs`, `blacklist`, `messages`:
//! direct, ack and read, `logs`, `patches`); what they share (the errors, the conversation and
//! message a command names, conversation signatures, member pages) is here.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use confab_engine::model::*;
use confab_engine::{Actor, Error, NewMessage, Offline, Outcome};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;

use super::codec::{self, Format};
use super::proto::*;
use super::push::command;
use super::{close, Conn, Gateway, SessionHandle};
use crate::error::LcError;
use crate::extract::TEMP_PREFIX;
use crate::sign;
use confab_engine::out_queue::OutQueue;

mod blacklist;
mod convs;
mod logs;
mod messages;
mod patches;
mod session;

/// Muted and blocked member listings: default and largest page.
const LIST_DEFAULT_LIMIT: i64 = 10;
const LIST_MAX_LIMIT: i64 = 100;
/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 64;
/// Sends a connection may have waiting for their commit (`ConnState::inflight`).
const SENDS_IN_FLIGHT: usize = 64;

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

/// A command's answer that may come later: a send's, with its commit.
type Later = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send + Sync>>;

/// An answer on its way: the command's `i` and `peerId`, and the answer.
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Box<Answer>> + Send + Sync>>;

/// A pipelined send's answer: its command's `i` and `peerId`, and the ack or the error. Boxed as
/// it comes out of the in-flight sends, so that the reader's state (what an idle connection
/// holds) keeps a pointer, not a command.
struct Answer {
    i: Option<i32>,
    peer: Option<String>,
    reply: Reply,
}

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
    /// The connection's sends waiting for their commits, answered in the order they came: a
    /// client's consecutive sends are pipelined (each begun in turn, their commits grouped by the
    /// store), and any other command first waits for them.
    inflight: futures_util::stream::FuturesOrdered<Pending>,
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

    let mut st = ConnState {
        gw: gw.clone(),
        conn: conn.clone(),
        sessions: Vec::new(),
        ip,
        after_reply: Vec::new(),
        inflight: futures_util::stream::FuturesOrdered::new(),
    };
    let mut killed = conn.kill.subscribe();
    loop {
        let wait = if st.sessions.is_empty() { gw.settings.login_timeout } else { gw.settings.idle_timeout };
        // a send's commit (its ack), the next frame, or the kill
        let next = tokio::select! {
            Some(done) = st.inflight.next(), if !st.inflight.is_empty() => Err(done),
            r = tokio::time::timeout(wait, stream.next()) => Ok(Some(r)),
            _ = killed.wait_for(Option::is_some) => Ok(None),
        };
        let next = match next {
            Err(a) => {
                // boxed, as a frame's handling is below
                Box::pin(st.answer(a.i, a.peer, a.reply)).await;
                continue;
            }
            Ok(None) => break,
            Ok(Some(r)) => r,
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

    /// The session a command is for: its `peerId`, or the connection's first session.
    fn session(&self, cmd: &GenericCommand) -> Result<&Session, RtError> {
        let found = match cmd.peer_id.as_deref() {
            Some(p) => self.sessions.iter().find(|s| s.handle.user == p),
            None => self.sessions.first(),
        };
        found.ok_or_else(|| rt(4105, "SESSION_REQUIRED"))
    }

    fn session_index(&self, cmd: &GenericCommand) -> Result<usize, RtError> {
        let found = match cmd.peer_id.as_deref() {
            Some(p) => self.sessions.iter().position(|s| s.handle.user == p),
            None => (!self.sessions.is_empty()).then_some(0),
        };
        found.ok_or_else(|| rt(4105, "SESSION_REQUIRED"))
    }

    async fn handle(&mut self, cmd: GenericCommand) {
        // sessions ended from elsewhere (kicked, conflict) are gone
        self.sessions.retain(|s| !s.handle.is_ended());
        // the app's settings as they are now (hooks, limits: `confab app set` on a running server)
        for s in &mut self.sessions {
            if let Ok(Some(app)) = self.gw.engine.apps().find_app(&AppLookup::Id(s.app.id)).await {
                s.app = app;
            }
        }
        let i = cmd.i.filter(|i| *i != 0);
        let op = cmd.op.and_then(|o| OpType::try_from(o).ok());
        let kind = cmd.cmd.and_then(|c| CommandType::try_from(c).ok());
        if kind == Some(CommandType::Direct) {
            // answered in turn with the sends before it, when its commit (or refusal) is in
            let later = self.direct(&cmd).await;
            let peer = cmd.peer_id.clone();
            self.inflight.push_back(Box::pin(async move { Box::new(Answer { i, peer, reply: later.await }) }));
            if self.inflight.len() >= SENDS_IN_FLIGHT {
                if let Some(a) = self.inflight.next().await {
                    self.answer(a.i, a.peer, a.reply).await;
                }
            }
            return;
        }
        // anything else sees the sends before it stored, and is answered after them
        self.drain().await;
        let result = match kind {
            Some(CommandType::Echo) => Ok(Some(command(CommandType::Echo, None))),
            Some(CommandType::Session) => self.session_cmd(op, &cmd).await,
            Some(CommandType::Conv) => self.conv_cmd(op, &cmd).await,
            Some(CommandType::Ack) => self.ack(&cmd).await,
            Some(CommandType::Read) => self.read(&cmd).await,
            Some(CommandType::Logs) => self.logs(&cmd).await,
            Some(CommandType::Patch) => self.patch(&cmd).await,
            Some(CommandType::Blacklist) => self.blacklist(op, &cmd).await,
            _ => Err(rt(4114, "UNSUPPORTED_COMMAND")),
        };
        self.answer(i, cmd.peer_id.clone(), result).await;
        for p in std::mem::take(&mut self.after_reply) {
            self.send(p).await;
        }
    }

    /// Answer the command `i` (none without one): its reply, or its error.
    async fn answer(&self, i: Option<i32>, peer_id: Option<String>, result: Reply) {
        match result {
            Ok(Some(mut reply)) => {
                if let Some(i) = i {
                    reply.i = Some(i);
                    reply.peer_id = reply.peer_id.or(peer_id);
                    self.send(reply).await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                if let Some(i) = i {
                    let mut r = command(CommandType::Error, None);
                    r.i = Some(i);
                    r.peer_id = peer_id;
                    r.error_message = Some(e.command());
                    self.send(r).await;
                } else {
                    tracing::debug!(code = e.code, reason = %e.reason, "a command without i failed");
                }
            }
        }
    }

    /// Wait for the sends in flight and answer them, in order.
    async fn drain(&mut self) {
        while let Some(a) = self.inflight.next().await {
            self.answer(a.i, a.peer, a.reply).await;
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
                let actor = Actor::User(s.handle.user.clone());
                if let Err(e) = self.gw.engine.messages().send_message(&s.app, &conv, will, &actor).await {
                    tracing::debug!(error = %e, "a will message could not be sent");
                }
            }
        }
    }

    // ------------------------------------------------------------------ shared by the command families

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

#[cfg(test)]
mod size_tests {
    use super::*;

    /// The size of what calling `f` returns (a future), without calling it.
    fn returned_size<A, B, C, D, R>(_f: fn(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// What an idle connection holds is mostly its reader's future (`serve`), whose size is that
    /// of its largest state: a frame's handling and an answer's are boxed, so that it keeps a
    /// pointer to them. A pipelined send's answer held inline once made that future 19 KB, and an
    /// idle session cost 25 KB instead of 6.4 KB (issue 12).
    #[test]
    fn an_idle_connection_holds_a_small_future() {
        let size = returned_size(serve as fn(_, _, _, _) -> _);
        assert!(size <= 2048, "a connection's reader future is {size} bytes");
    }
}
