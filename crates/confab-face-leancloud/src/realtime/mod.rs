//! The LeanCloud realtime gateway: WebSocket sessions that speak the protocol of the official
//! `leancloud-realtime` SDK (4.3.1), on the same port as the REST API.
//!
//! * `conn.rs`: one task per WebSocket: decode frames, run commands in order, answer by `i`.
//!   Several sessions (IM clients) can share a socket; commands without `peerId` go to its
//!   first session.
//! * This file: the session registry of this node, and the dispatcher that turns engine events
//!   from the bus into pushes. A push is encoded once and its bytes shared by every recipient.
//! * Each connection has a bounded outbound queue, counted in frames and in bytes. A connection
//!   whose queue is full is closed at once with 4200 (its clients reconnect and catch up by
//!   cursor); server memory does not grow.
//! * Idle sessions are cheap: small WebSocket buffers (grown only while a large frame passes),
//!   and the per-command work boxed so a waiting connection holds only its read.

pub mod codec;
mod conn;
pub mod proto;
pub mod push;
mod queue;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::{Bytes, BytesMut};
use confab_engine::model::{Broadcast, ConvKind, ConvRef};
use confab_engine::presence::SessionRef;
use confab_engine::{Engine, Event, KickReason, Offline, Origin};
use confab_routes::{Open, Route, Row};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{watch, Notify};

use self::codec::Format;

/// Tuning of the gateway.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// Frames a connection may have waiting to be written before it is closed as too slow…
    pub out_queue: usize,
    /// …and bytes.
    pub out_queue_bytes: usize,
    /// How long a closing connection may take to flush what it has in flight and its close
    /// frame before the socket is dropped (a client that stopped reading gets its 4200 if it
    /// reads again within this time).
    pub close_grace: Duration,
    /// A connection with sessions is closed after this long without a frame (clients send an
    /// `echo` every 180 s).
    pub idle_timeout: Duration,
    /// A connection that opens no session within this time is closed.
    pub login_timeout: Duration,
    /// Largest WebSocket message accepted.
    pub max_frame: usize,
    /// Lifetime of a session token (`st`), in seconds.
    pub st_ttl_secs: i64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            out_queue: 1024,
            out_queue_bytes: 1024 * 1024,
            close_grace: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(400),
            login_timeout: Duration::from_secs(60),
            max_frame: 64 * 1024,
            st_ttl_secs: 2 * 86_400,
        }
    }
}

/// A connection's read buffer to start with: a client's commands are small; a larger frame grows
/// it while it passes. (tungstenite's default, 128 KiB, made each idle session cost 157 KB.)
const READ_BUFFER: usize = 1024;
/// Frames are gathered up to this many bytes before they are written to the socket (a burst
/// of pushes, one write).
const WRITE_BUFFER: usize = 8 * 1024;

/// Close codes (LeanCloud's): the client gives up for good on 4100, 4103 and 4110 only.
pub mod close {
    pub const READ_TIMEOUT: u16 = 4107;
    pub const LOGIN_TIMEOUT: u16 = 4108;
    pub const FRAME_TOO_LONG: u16 = 4109;
    /// Too slow to read its pushes: the client reconnects and catches up.
    pub const SLOW_CONSUMER: u16 = 4200;
    /// The server is shutting down (WebSocket's "going away"): the client reconnects.
    pub const GOING_AWAY: u16 = 1001;
}

/// The part of a connection others (the dispatcher) can reach.
pub struct Conn {
    pub id: u64,
    pub format: Format,
    out: queue::OutQueue,
    /// Set once, with the close code and reason, when the connection must end.
    kill: watch::Sender<Option<(u16, String)>>,
}

impl Conn {
    /// Queue a push without waiting; a full queue (frames or bytes) closes the connection at once.
    fn push(&self, frame: Bytes) {
        if self.out.push(frame) == Err(queue::Refused::Full) {
            self.kill(close::SLOW_CONSUMER, "too slow to read pushes");
        }
    }

    /// Queue a reply, waiting for room (a client that does not read slows only itself).
    async fn reply(&self, frame: Bytes) {
        self.out.push_wait(frame).await;
    }

    /// Close the WebSocket with a code and reason (the first call decides).
    pub fn kill(&self, code: u16, reason: &str) {
        self.kill.send_if_modified(|k| {
            let first = k.is_none();
            if first {
                *k = Some((code, reason.to_string()));
            }
            first
        });
    }

    pub fn is_killed(&self) -> bool {
        self.kill.borrow().is_some()
    }

    /// The close code and reason, once killed.
    fn close_frame(&self) -> (u16, String) {
        self.kill.borrow().clone().unwrap_or((1000, String::new()))
    }
}

/// One open session (an IM client) on this node.
pub struct SessionHandle {
    pub id: u64,
    pub app: i64,
    pub peer: String,
    pub conn: Arc<Conn>,
    pub tag: Option<String>,
    pub device: Option<String>,
    /// The session token (`st`) issued to it.
    pub token: Mutex<Option<String>>,
    /// The client's address, if known.
    pub ip: Option<String>,
    ended: AtomicBool,
}

impl SessionHandle {
    pub fn origin(&self, node: u16) -> Origin {
        Origin { node, session: self.id }
    }

    pub fn session_ref(&self, node: u16) -> SessionRef {
        SessionRef { node, session: self.id, tag: self.tag.clone(), device: self.device.clone() }
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Send a push: the shared bytes with this client's `peerId` appended. Always, even with
    /// one session on the connection: the SDK sends a push without `peerId` to the first client
    /// created on the socket, which is gone once that client logged out and another remains.
    fn deliver(&self, shared: &Bytes) {
        let field = codec::peer_id_field(&self.peer);
        let mut b = BytesMut::with_capacity(shared.len() + field.len());
        b.extend_from_slice(shared);
        b.extend_from_slice(&field);
        self.conn.push(b.freeze());
    }
}

/// This node's open sessions by (app, client id).
type Registry = HashMap<(i64, String), Vec<Arc<SessionHandle>>>;

pub struct Gateway {
    pub engine: Arc<Engine>,
    pub settings: GatewaySettings,
    sessions: RwLock<Registry>,
    next_id: AtomicU64,
    /// Open WebSocket connections, to close at shutdown.
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Shutting down: a connection that opens now is closed at once.
    closing: AtomicBool,
    /// The last connection closed.
    conns_gone: Notify,
}

impl Gateway {
    /// A gateway on this engine, with its dispatcher running.
    pub fn start(engine: Arc<Engine>, settings: GatewaySettings) -> Arc<Gateway> {
        let gw = Arc::new(Gateway {
            engine,
            settings,
            sessions: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
            conns_gone: Notify::new(),
        });
        let mut events = gw.engine.bus().subscribe();
        let d = gw.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                d.dispatch(&ev).await;
            }
        });
        gw
    }

    fn node(&self) -> u16 {
        self.engine.node()
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn register(&self, h: Arc<SessionHandle>) {
        self.sessions.write().entry((h.app, h.peer.clone())).or_default().push(h);
    }

    fn handles(&self, app: i64, user: &str) -> Vec<Arc<SessionHandle>> {
        self.sessions.read().get(&(app, user.to_string())).cloned().unwrap_or_default()
    }

    fn app_handles(&self, app: i64) -> Vec<Arc<SessionHandle>> {
        self.sessions.read().iter().filter(|((a, _), _)| *a == app).flat_map(|(_, v)| v.iter().cloned()).collect()
    }

    /// End a session once: forget it, tell the engine why (presence, the app's hooks), and
    /// (unless it is only disconnected) revoke its token.
    async fn end_session(&self, h: &Arc<SessionHandle>, revoke: bool, why: &Offline) {
        if h.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let mut map = self.sessions.write();
            let key = (h.app, h.peer.clone());
            if let Some(v) = map.get_mut(&key) {
                v.retain(|x| !Arc::ptr_eq(x, h));
                if v.is_empty() {
                    map.remove(&key);
                }
            }
        }
        match self.engine.find_app(&confab_engine::model::AppLookup::Id(h.app)).await {
            Ok(Some(app)) => self.engine.session_closed(&app, &h.peer, &h.session_ref(self.node()), h.ip.as_deref(), why).await,
            // the app is gone: only presence is left to tell
            _ => self.engine.forget_session(h.app, &h.peer, &h.session_ref(self.node())).await,
        }
        let token = h.token.lock().take();
        if let (true, Some(t)) = (revoke, token) {
            if let Err(e) = self.engine.revoke_token(&t).await {
                tracing::warn!(error = %e, "could not revoke a session token");
            }
        }
    }

    /// Send one push to every session of these users, except the origin session.
    fn fan_out(&self, app: i64, users: &[String], cmd: &proto::GenericCommand, skip: impl Fn(&SessionHandle) -> bool) {
        let shared = codec::encode(cmd);
        for u in users {
            for h in self.handles(app, u) {
                if !skip(&h) {
                    h.deliver(&shared);
                }
            }
        }
    }

    async fn dispatch(&self, ev: &Event) {
        let node = self.node();
        let now = self.engine.now();
        match ev {
            Event::Message { app, conv, msg, recipients, no_sync, origin } => {
                let cmd = push::direct(msg, conv, now);
                let quiet_sender = *no_sync || conv.kind == ConvKind::Chatroom;
                self.fan_out(*app, recipients, &cmd, |h| Some(h.origin(node)) == *origin || (quiet_sender && h.peer == msg.from));
            }
            Event::MessagePatched { app, conv, msg, recipients, origin, note } => {
                let ts = msg.recalled_at.or(msg.edited_at).unwrap_or(now);
                let mut item = push::patch_item(msg, conv);
                // the app's hook changed the sender's message: why (`patchCode`, `patchReason`)
                if let Some(note) = note {
                    item.patch_code = note.code.as_deref().and_then(|c| c.parse().ok());
                    item.patch_reason = note.detail.clone();
                    item.patch_timestamp = Some(ts);
                }
                let cmd = push::patches(vec![item], ts);
                self.fan_out(*app, recipients, &cmd, |h| Some(h.origin(node)) == *origin);
            }
            Event::Conv { app, conv, by, change, recipients, at } => {
                for r in recipients {
                    if by.as_deref() == Some(r.as_str()) {
                        continue;
                    }
                    let (op, c) = push::conv_change(conv, by.as_deref(), change, r);
                    self.fan_out(*app, std::slice::from_ref(r), &push::conv_push(op, c, *at), |_| false);
                }
            }
            Event::Receipt { app, to, conv, msg, at, read, by } => {
                self.fan_out(*app, std::slice::from_ref(to), &push::receipt(conv, msg.as_ref(), *at, *read, by), |_| false);
            }
            Event::Kick { app, user, session, reason } => {
                let (code, text, why) = match reason {
                    KickReason::Conflict => (4111, "SESSION_CONFLICT".to_string(), Offline::Conflict),
                    KickReason::ByApp(r) => {
                        (4115, r.clone().unwrap_or_else(|| "KICKED_BY_APP".into()), Offline::Kicked { reason: r.clone() })
                    }
                };
                let frame = codec::encode(&push::session_closed(code, &text));
                for h in self.handles(*app, user) {
                    if session.as_ref().is_some_and(|s| s.node != node || s.session != h.id) {
                        continue;
                    }
                    // the token is gone before the client hears of it, so it cannot come back
                    self.end_session(&h, true, &why).await;
                    h.deliver(&frame);
                }
            }
            Event::Broadcast { app, broadcast } => {
                let conv = self.service_ref(*app, broadcast.conv).await;
                self.broadcast(*app, broadcast, &conv, now)
            }
        }
    }

    /// How a broadcast names its service conversation (an imported one by its LeanCloud id).
    async fn service_ref(&self, app: i64, conv: i64) -> ConvRef {
        let found = self.engine.store().get_conversation(app, conv).await.ok().flatten();
        found.map_or(ConvRef { id: conv, kind: ConvKind::Service, foreign_id: None }, |c| ConvRef::of(&c))
    }

    fn broadcast(&self, app: i64, b: &Broadcast, conv: &ConvRef, now: i64) {
        let cmd = push::direct(&broadcast_message(b), conv, now);
        let shared = codec::encode(&cmd);
        for h in self.app_handles(app) {
            h.deliver(&shared);
        }
    }

    /// Sessions open on this node.
    pub fn session_count(&self) -> usize {
        self.sessions.read().values().map(Vec::len).sum()
    }

    /// A connection opened: it is closed at shutdown (at once if that has begun).
    fn conn_opened(&self, conn: &Arc<Conn>) {
        self.conns.lock().insert(conn.id, conn.clone());
        if self.closing.load(Ordering::SeqCst) {
            conn.kill(close::GOING_AWAY, "server shutting down");
        }
    }

    fn conn_closed(&self, id: u64) {
        let mut conns = self.conns.lock();
        conns.remove(&id);
        if conns.is_empty() {
            self.conns_gone.notify_waiters();
        }
    }

    /// Shutdown: close every WebSocket with 1001 (going away; the clients reconnect and catch
    /// up by their cursors), and any that opens from now on; returns once all are closed.
    pub async fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        loop {
            let gone = self.conns_gone.notified();
            let open: Vec<Arc<Conn>> = self.conns.lock().values().cloned().collect();
            if open.is_empty() {
                return;
            }
            for c in open {
                c.kill(close::GOING_AWAY, "server shutting down");
            }
            gone.await;
        }
    }
}

/// A broadcast as the message clients receive.
fn broadcast_message(b: &Broadcast) -> confab_engine::model::Message {
    confab_engine::model::Message::new(b.app, b.id, b.conv, b.from.clone(), b.timestamp, b.content.clone())
}

/// `GET /` (and any path not otherwise routed): the WebSocket upgrade. The subprotocol offered
/// (`lc.protobuf2.3` or `lc.proto2base64.3`) is echoed; WeChat mini-programs may name it in the
/// query string instead.
async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    info: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Query(q): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            return crate::error::LcError::new(
                axum::http::StatusCode::NOT_FOUND,
                404,
                "Not found: no such API (the realtime gateway needs a WebSocket upgrade).",
            )
            .into_response()
        }
    };
    let ws = ws
        .protocols(codec::SUBPROTOCOLS.map(|(p, _)| p))
        .max_message_size(gw.settings.max_frame)
        .max_frame_size(gw.settings.max_frame)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER);
    let offered = ws.selected_protocol().and_then(|p| p.to_str().ok()).and_then(codec::format_of);
    let format = offered.or_else(|| q.get("subprotocol").and_then(|p| codec::format_of(p))).unwrap_or(Format::Binary);
    let ip = info.map(|i| i.0 .0.ip().to_string());
    ws.on_upgrade(move |socket| conn::serve(gw, socket, format, ip))
}

/// The gateway's route table: the upgrade at `/`, open (the realtime protocol's login
/// authenticates: a signature or a session token).
fn rows() -> Vec<Row<Arc<Gateway>, Open>> {
    vec![confab_routes::get("/", Open, upgrade)]
}

/// The gateway's routes as data.
pub fn routes() -> Vec<Route<Open>> {
    confab_routes::table(&rows())
}

/// The gateway's routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    confab_routes::router(rows(), &gw, confab_routes::open).with_state(gw)
}

/// The WebSocket upgrade for a request on a path no route claims (the server's fallback calls
/// it when the request asks to upgrade).
pub async fn upgrade_request(gw: Arc<Gateway>, req: axum::extract::Request) -> Response {
    axum::handler::Handler::call(upgrade, req, gw).await
}
