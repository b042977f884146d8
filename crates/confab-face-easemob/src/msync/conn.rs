//! One msync WebSocket: read frames, run each command in order, answer in the command's own
//! form. One user's device per socket: `PROVISION` logs it in, and every other command needs
//! that. Bad input is answered, never fatal: an unparseable frame with `PB_PARSER_ERROR`, an
//! unknown command with `UNKNOWN_COMMAND`, a command before login with `UNAUTHORIZED`.

use std::sync::{Arc, OnceLock};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use confab_engine::model::{App, AppLookup};
use confab_engine::out_queue::OutQueue;
use confab_engine::sessions::{NewSession, Session};
use confab_engine::Offline;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::sync::watch;

use super::frames::{self, ok, status};
use super::held;
use super::proto::m_sync::Command;
use super::proto::status::ErrorCode;
use super::proto::{CommSyncDl, CommSyncUl, MSync, MetaQueue, Provision};
use super::queues::{Device, Page};
use super::{Conn, MsyncGateway};

/// Frames written before one flush.
const WRITE_BATCH: usize = 64;
/// Sends a connection may have waiting for their commit (`ConnState::inflight`).
const SENDS_IN_FLIGHT: usize = 64;
/// Most group changes told at login that were missed while away.
const MISSED_MAX: i64 = 200;
/// How often a device's moved positions are written (`Device::flush`).
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A send's answer, once its message is stored.
pub(super) type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = bytes::Bytes> + Send + Sync>>;

/// What the connection's task does next.
enum Next<F> {
    Answer(bytes::Bytes),
    Flush,
    Frame(F),
    Killed,
}

/// The token prefix the SDK puts before its token in `MSync.auth`.
const TOKEN_PREFIX: &str = "$t$";

/// Login refusals, in the SDK's exact words (spec §4.4).
const BAD_TOKEN: &str = "Sorry, token or password does not match login info";
const NO_USER: &str = "Sorry, user not found";

/// A logged-in device on this connection.
pub(super) struct LoggedIn {
    pub session: Arc<Session>,
    pub device: Device,
}

pub(super) struct ConnState {
    pub gw: Arc<MsyncGateway>,
    pub conn: Arc<Conn>,
    pub ip: Option<String>,
    pub login: Option<LoggedIn>,
    /// Whether the contact requests waiting for the user were told (after the first UNREAD).
    pub requests_told: bool,
    /// Sends waiting for their commit, answered in order as they complete: the next frame is
    /// read meanwhile (the SDK keeps several sends in flight).
    pub inflight: futures_util::stream::FuturesOrdered<Pending>,
}

pub(super) async fn serve(gw: Arc<MsyncGateway>, socket: WebSocket, ip: Option<String>) {
    let (mut sink, mut stream) = socket.split();
    let conn = Arc::new(Conn {
        id: gw.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        out: OutQueue::new(gw.settings.out_queue, gw.settings.out_queue_bytes),
        kill: watch::Sender::new(None),
        session: OnceLock::new(),
        pulling: Default::default(),
        held: Default::default(),
    });
    gw.conn_opened(&conn);
    let _registered = Registered(gw.clone(), conn.id);

    // the writer: queued frames in batches; once killed, what is queued, then the close frame
    let wconn = conn.clone();
    let grace = gw.settings.close_grace;
    let writer = tokio::spawn(async move {
        let mut killed = wconn.kill.subscribe();
        loop {
            let batch = tokio::select! {
                biased;
                out = wconn.out.take(WRITE_BATCH) => match out { Some(b) => b, None => break },
                _ = killed.wait_for(Option::is_some) => break,
            };
            let write = async {
                for b in batch {
                    sink.feed(WsMessage::Binary(b)).await?;
                }
                sink.flush().await
            };
            if write.await.is_err() {
                wconn.kill("write failed");
                break;
            }
        }
        let last = wconn.out.drain();
        let _ = tokio::time::timeout(grace, async {
            for b in last {
                sink.feed(WsMessage::Binary(b)).await?;
            }
            sink.send(WsMessage::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await
        })
        .await;
        wconn.out.close();
    });

    let mut st = ConnState {
        gw: gw.clone(),
        conn: conn.clone(),
        ip,
        login: None,
        requests_told: false,
        inflight: futures_util::stream::FuturesOrdered::new(),
    };
    let mut killed = conn.kill.subscribe();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wait = if st.login.is_some() { gw.settings.idle_timeout } else { gw.settings.login_timeout };
        let dirty = st.login.as_ref().is_some_and(|l| l.device.is_dirty());
        let next = tokio::select! {
            Some(answer) = st.inflight.next(), if !st.inflight.is_empty() => Next::Answer(answer),
            _ = flush.tick(), if dirty => Next::Flush,
            r = tokio::time::timeout(wait, stream.next()) => Next::Frame(r),
            _ = killed.wait_for(Option::is_some) => Next::Killed,
        };
        let next = match next {
            Next::Answer(answer) => {
                st.reply(answer).await;
                continue;
            }
            Next::Flush => {
                st.flush(false).await;
                continue;
            }
            Next::Frame(r) => r,
            Next::Killed => break,
        };
        let frame = match next {
            Err(_) => {
                conn.kill("timeout");
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(m))) => m,
        };
        // the client is heard from: the pages answered before reached it
        if matches!(frame, WsMessage::Binary(_) | WsMessage::Close(_)) {
            if let Some(l) = &mut st.login {
                l.device.heard();
            }
        }
        match frame {
            WsMessage::Binary(b) => Box::pin(st.frame(&b)).await,
            // the web SDK sends binary frames only
            WsMessage::Text(_) => {
                st.conn.reply(frames::sync_status(status(ErrorCode::PbParserError, Some("binary frames only")), st.now())).await
            }
            WsMessage::Close(_) => break,
            _ => {}
        }
        if conn.is_killed() {
            break;
        }
    }
    // sends that were stored are answered (if the client still reads); positions are written
    while let Some(answer) = st.inflight.next().await {
        st.conn.out.push(answer).ok();
    }
    st.flush(true).await;
    if let Some(l) = st.login.take() {
        gw.sessions.end(&l.session, false, &Offline::Lost { error: None }).await;
    }
    conn.kill("closed");
    // the close handshake: once the close frame is written, what the client still sends is read
    // (and dropped) until its own close frame. A socket closed with frames unread is reset, and a
    // reset can lose the last frames written — a kick's notice right after a login, while the
    // SDK's first frames are on their way, among them.
    let _ = tokio::time::timeout(grace + std::time::Duration::from_secs(1), async {
        let _ = writer.await;
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Keeps a connection in the gateway's list while its task runs.
struct Registered(Arc<MsyncGateway>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.conn_closed(self.1);
    }
}

impl ConnState {
    pub fn now(&self) -> i64 {
        self.gw.engine.now()
    }

    async fn reply(&self, frame: bytes::Bytes) {
        self.conn.reply(frame).await;
    }

    /// Write the device's moved positions (and, when the session `ends`, that it was here).
    async fn flush(&mut self, ends: bool) {
        let engine = self.gw.engine.clone();
        if let Some(l) = &mut self.login {
            if let Err(e) = l.device.flush(&engine, ends).await {
                tracing::warn!(error = %e, "a msync device's positions were not written (kept to try again)");
            }
        }
    }

    /// A send waits for its commit; at most [`SENDS_IN_FLIGHT`] do (the oldest is answered first).
    pub(super) async fn later(&mut self, answer: Pending) {
        self.inflight.push_back(answer);
        if self.inflight.len() >= SENDS_IN_FLIGHT {
            if let Some(a) = self.inflight.next().await {
                self.reply(a).await;
            }
        }
    }

    /// One frame: decode it and run its command.
    async fn frame(&mut self, bytes: &[u8]) {
        let now = self.now();
        let Ok(m) = MSync::decode(bytes) else {
            return self.reply(frames::sync_status(status(ErrorCode::PbParserError, Some("not an MSync frame")), now)).await;
        };
        let payload = m.payload.clone().unwrap_or_default();
        match Command::try_from(m.command.unwrap_or(Command::Sync as i32)) {
            Ok(Command::Provision) => self.provision(&m, &payload).await,
            Ok(Command::Logout) => self.logout().await,
            Ok(Command::Unread) if self.login.is_none() => {
                self.reply(frames::unread(status(ErrorCode::Unauthorized, Some("log in first")), vec![], now)).await
            }
            Ok(Command::Sync) if self.login.is_none() => {
                self.reply(frames::sync_status(status(ErrorCode::Unauthorized, Some("log in first")), now)).await
            }
            Ok(Command::Unread) => self.unread().await,
            Ok(Command::Sync) => match CommSyncUl::decode(payload.as_slice()) {
                Ok(ul) => self.sync(ul).await,
                Err(_) => self.reply(frames::sync_status(status(ErrorCode::PbParserError, Some("not a CommSyncUL")), now)).await,
            },
            // NOTICE is the server's; anything else is unknown
            Ok(Command::Notice) | Err(_) => {
                self.reply(frames::sync_status(status(ErrorCode::UnknownCommand, Some("unknown command")), now)).await
            }
        }
    }

    /// `PROVISION`: the user (`guid.name`) in the app (`guid.appKey`, `org#app`) with a user
    /// token (`auth`, after `$t$`), on a device (`Provision.resource`). A refusal is answered in
    /// the SDK's words, then the connection closes.
    async fn provision(&mut self, m: &MSync, payload: &[u8]) {
        let Ok(p) = Provision::decode(payload) else {
            return self.refuse(status(ErrorCode::WrongParameter, Some("not a Provision")), None).await;
        };
        let resource = p.resource.clone().filter(|r| !r.is_empty());
        if let Some(l) = &self.login {
            // logged in already: the same answer again
            let same = m.guid.as_ref().and_then(|g| g.name.as_deref()).map(str::to_lowercase) == Some(l.device.user.clone());
            let st = if same { ok() } else { status(ErrorCode::Fail, Some("Sorry, another user is logged in on this connection")) };
            return self.reply(frames::provision(st, Some(l.device.resource.clone()))).await;
        }
        match self.login(m, resource.clone(), p.reason.clone()).await {
            Ok(()) => self.reply(frames::provision(ok(), resource)).await,
            Err(st) => self.refuse(st, resource).await,
        }
    }

    async fn refuse(&self, st: super::proto::Status, resource: Option<String>) {
        self.reply(frames::provision(st, resource)).await;
        self.conn.kill("login refused");
    }

    async fn login(&mut self, m: &MSync, resource: Option<String>, ext: Option<String>) -> Result<(), super::proto::Status> {
        let engine = self.gw.engine.clone();
        let fail = |reason: &str| status(ErrorCode::Fail, Some(reason));
        let internal = |e: confab_engine::Error| {
            tracing::warn!(error = %e, "a msync login failed");
            fail("Sorry, the server could not log you in")
        };
        let guid = m.guid.clone().unwrap_or_default();
        let (org, app_name) = guid
            .app_key
            .as_deref()
            .and_then(|k| k.split_once('#'))
            .ok_or_else(|| status(ErrorCode::WrongParameter, Some("guid.appKey must be org#app")))?;
        let app: Arc<App> = engine
            .apps()
            .find_app(&AppLookup::Easemob { org: org.to_string(), app: app_name.to_string() })
            .await
            .map_err(internal)?
            .ok_or_else(|| fail("Sorry, appkey not found"))?;
        let name = crate::users::username(guid.name.as_deref().unwrap_or("")).map_err(|_| fail(NO_USER))?;
        let resource = resource.ok_or_else(|| status(ErrorCode::WrongParameter, Some("Provision.resource is required")))?;
        let token = m.auth.as_deref().unwrap_or("");
        let token = token.strip_prefix(TOKEN_PREFIX).unwrap_or(token);
        let owner = crate::auth::user_of_token(&engine, &app, token).await.map_err(internal)?;
        if owner.as_deref() != Some(name.as_str()) {
            return Err(fail(BAD_TOKEN));
        }
        let user = engine.users().get_user(&app, &name).await.map_err(|_| fail(NO_USER))?;
        if user.disabled {
            return Err(status(ErrorCode::Unauthorized, Some("Sorry, user is deactivated")));
        }
        let device =
            Device::login(&engine, app.clone(), format!("{org}#{app_name}"), name.clone(), resource.clone()).await.map_err(internal)?;
        let session = self.gw.sessions.open(
            self.gw.id,
            NewSession {
                app: app.id,
                user: name.clone(),
                tag: None,
                device: Some(resource),
                ip: self.ip.clone(),
                outlet: self.conn.clone(),
            },
        );
        let _ = self.conn.session.set(Arc::downgrade(&session));
        // one session per device: an older one of this resource gives way (spec §11.5: it hears
        // USER_LOGIN_ANOTHER_DEVICE with this login's extension); other devices coexist
        let opened = async {
            engine.clients().replace_device(&app, &name, &session.session_ref(), ext).await?;
            engine.clients().session_opened(&app, &name, session.session_ref(), self.ip.as_deref(), false).await
        };
        if let Err(e) = opened.await {
            self.gw.sessions.end(&session, false, &Offline::Lost { error: None }).await;
            return Err(internal(e));
        }
        self.login = Some(LoggedIn { session, device });
        Ok(())
    }

    /// `LOGOUT`: the device logged out (the SDK closes the socket right after).
    async fn logout(&mut self) {
        while let Some(answer) = self.inflight.next().await {
            self.reply(answer).await;
        }
        self.flush(true).await;
        if let Some(l) = self.login.take() {
            self.gw.sessions.end(&l.session, false, &Offline::Logout).await;
        }
        self.conn.kill("logged out");
    }

    /// `UNREAD` (heartbeat and login inventory): the queues with something for this device.
    async fn unread(&mut self) {
        let now = self.now();
        let engine = self.gw.engine.clone();
        let Some(l) = &mut self.login else { return };
        let frame = match l.device.unread(&engine).await {
            Ok(queues) => {
                let unread = queues.into_iter().map(|(q, n)| MetaQueue { queue: Some(q.jid(&l.device.app_key)), n: Some(n) }).collect();
                frames::unread(ok(), unread, now)
            }
            Err(e) => {
                tracing::warn!(error = %e, "a msync inventory failed");
                frames::unread(status(ErrorCode::Fail, Some("Sorry, try again")), vec![], now)
            }
        };
        // once per login: the contact requests waiting, read before the inventory is answered
        // (a request made after it reaches the session as it is made)
        let mut requests = if self.requests_told { vec![] } else { self.waiting_requests().await };
        if !self.requests_told {
            // the group changes missed while away, then the group join requests and invitations
            // waiting (`muc.rs`)
            let mut told = self.missed_group_events().await;
            told.extend(self.waiting_group_requests().await);
            requests.extend(told);
        }
        self.requests_told = true;
        self.reply(frame).await;
        for r in requests {
            self.reply(r).await;
        }
    }

    /// The group changes the user was told of while this device was away (from its last
    /// session's last word to this login), as the MUC events they were then, oldest first: the
    /// engine's notices (those LeanCloud's clients catch up with), at most [`MISSED_MAX`].
    async fn missed_group_events(&self) -> Vec<bytes::Bytes> {
        let Some(l) = &self.login else { return vec![] };
        let Some((from, until)) = l.device.away() else { return vec![] };
        let engine = &self.gw.engine;
        let notices = match engine.conversations().notices(&l.device.app, &l.device.user, from, MISSED_MAX).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "the group changes a msync device missed were not read");
                return vec![];
            }
        };
        let encoder = super::encode::MsyncEncoder { engine: engine.clone() };
        let mut out = Vec::new();
        for n in notices.iter().filter(|n| n.at <= until) {
            out.extend(encoder.notice_frame(l.device.app.id, n, &l.device.user).await);
        }
        out
    }

    /// The contact requests waiting for the user's answer (made while they were offline, or not
    /// answered yet), each as the `ROSTER` `ADD` it was when made.
    async fn waiting_requests(&self) -> Vec<bytes::Bytes> {
        let Some(l) = &self.login else { return vec![] };
        let engine = &self.gw.engine;
        match engine.social().contact_requests(&l.device.app, &l.device.user).await {
            Ok(requests) => requests
                .into_iter()
                .map(|r| {
                    let news = confab_engine::ContactNews::Invited;
                    frames::roster(&l.device.app_key, &l.device.user, &r.from, news, r.reason, engine.next_id(), r.at)
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the contact requests waiting for a msync user were not read");
                vec![]
            }
        }
    }

    /// `SYNC`: a meta sent (`meta`), or a queue pulled (`queue` [+ `key`]).
    async fn sync(&mut self, ul: CommSyncUl) {
        let now = self.now();
        if let Some(meta) = ul.meta {
            match self.send(meta).await {
                Some(super::send::Sent::Now(answer)) => self.reply(frames::sync(*answer)).await,
                Some(super::send::Sent::Later(answer)) => self.later(answer).await,
                None => {}
            }
            return;
        }
        let Some(queue) = ul.queue else {
            return self.reply(frames::sync_status(status(ErrorCode::MissingParameter, Some("meta or queue is required")), now)).await;
        };
        let engine = self.gw.engine.clone();
        let Some(l) = &mut self.login else { return };
        let key = held::queue_key(&queue);
        // before memory or the store is read: a message kept after that has its NOTICE seen
        if let Some(notice) = notice_of(&l.device.app_key, &queue) {
            self.conn.pull_begins(notice);
        }
        let from_memory = l.device.pull_held(&mut self.conn.held.lock(), &key, ul.key);
        let page = match from_memory {
            Some(p) => Ok(p),
            None => match l.device.queue_named(&engine, &queue).await {
                Ok(Some(q)) => {
                    let page = l.device.pull(&engine, &q, ul.key).await;
                    // a last page: the queue is caught up, and memory answers its next pulls
                    if let (Ok(Page { next_key: None, .. }), Some(at)) = (&page, l.device.position(q.conv.id)) {
                        self.conn.held.lock().caught_up(&key, q.conv.id, at);
                    }
                    page
                }
                // a queue with nothing for this device: an empty last page
                Ok(None) => Ok(Page { metas: vec![], next_key: None }),
                Err(e) => Err(e),
            },
        };
        let (dl, metas) = match page {
            Ok(p) => {
                let dl = CommSyncDl {
                    status: Some(ok()),
                    queue: Some(queue),
                    is_last: Some(p.next_key.is_none()),
                    next_key: p.next_key,
                    timestamp: Some(now.max(0) as u64),
                    ..Default::default()
                };
                (dl, p.metas)
            }
            Err(e) => {
                tracing::warn!(error = %e, "a msync pull failed");
                let dl = CommSyncDl {
                    status: Some(status(ErrorCode::Fail, Some("Sorry, try again"))),
                    queue: Some(queue),
                    is_last: Some(true),
                    timestamp: Some(now.max(0) as u64),
                    ..Default::default()
                };
                (dl, vec![])
            }
        };
        let last = dl.is_last == Some(true);
        self.reply(frames::page(dl, &metas)).await;
        // a NOTICE of this queue pushed while the pull was answered reached the SDK while the
        // queue was still in its list, ignored; after a last page (which drops the queue) it
        // is heard (spec §6.1)
        if let Some(notice) = self.conn.pull_ends().filter(|_| last) {
            self.reply(notice).await;
        }
    }
}

/// The NOTICE the encoder writes for the queue a pull names (its JID as the encoder builds it).
fn notice_of(app_key: &str, queue: &super::proto::Jid) -> Option<bytes::Bytes> {
    let name = queue.name.as_deref()?.trim();
    let jid = if frames::is_group(queue) {
        frames::group_jid(app_key, name.parse().ok()?)
    } else {
        frames::user_jid(app_key, &name.to_lowercase(), None)
    };
    Some(frames::notice(jid))
}
