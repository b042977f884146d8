//! The LeanCloud realtime gateway: WebSocket sessions that speak the protocol of the official
//! `leancloud-realtime` SDK (4.3.1), on the same port as the REST API.
//!
//! * `conn.rs`: one task per WebSocket: decode frames, run commands in order, answer by `i`.
//!   Several sessions (IM clients) can share a socket; commands without `peerId` go to its
//!   first session.
//! * This file: the gateway's encoder (engine events as pushes; a push is encoded once and its
//!   bytes shared by every recipient, each with its `peerId` appended) and its connections. The
//!   registry of sessions and the dispatcher that reads the bus are the engine's, shared by
//!   every realtime gateway (`confab_engine::sessions`).
//! * Each connection has a bounded outbound queue, counted in frames and in bytes. A connection
//!   whose queue is full is closed at once with 4200 (its clients reconnect and catch up by
//!   cursor); server memory does not grow.
//! * Idle sessions are cheap: small WebSocket buffers (grown only while a large frame passes),
//!   and the per-command work boxed so a waiting connection holds only its read.

pub mod codec;
mod conn;
pub mod proto;
pub mod push;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::{Bytes, BytesMut};
use confab_engine::connections::{Connections, Shutdown};
use confab_engine::model::{Broadcast, ConvKind, ConvRef};
use confab_engine::out_queue;
use confab_engine::sessions::{Encoder, GatewayId, NewSession, Outlet, Session, Sessions};
use confab_engine::{Engine, Event, KickReason, Offline};
use confab_routes::{Open, Route, Row};
use tokio::sync::watch;

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
    out: out_queue::OutQueue,
    /// Set once, with the close code and reason, when the connection must end.
    kill: watch::Sender<Option<(u16, String)>>,
}

impl Outlet for Conn {
    /// Queue a push without waiting; a full queue (frames or bytes) closes the connection at once.
    fn push(&self, frame: Bytes) {
        if self.out.push(frame) == Err(out_queue::Refused::Full) {
            self.kill(close::SLOW_CONSUMER, "too slow to read pushes");
        }
    }

    /// The node lost pushes (its dispatcher fell behind the bus): closed as a slow consumer is,
    /// the client reconnects and catches up from its cursors.
    fn resync(&self) {
        self.kill(close::SLOW_CONSUMER, "pushes lost on the server: reconnect");
    }
}

impl Conn {
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

/// One open session (an IM client) on this node: the engine's, gateway-neutral.
pub type SessionHandle = Session;

/// How this gateway speaks: engine events as pushes.
struct LcEncoder {
    engine: Arc<Engine>,
}

#[async_trait::async_trait]
impl Encoder for LcEncoder {
    async fn encode(&self, ev: &Event, to: Option<&str>, now: i64) -> Option<Bytes> {
        let cmd = match ev {
            Event::Message { conv, msg, .. } => push::direct(msg, conv, now),
            Event::MessagePatched { conv, msg, note, .. } => {
                let ts = msg.recalled_at.or(msg.edited_at).unwrap_or(now);
                let mut item = push::patch_item(msg, conv);
                // the app's hook changed the sender's message: why (`patchCode`, `patchReason`)
                if let Some(note) = note {
                    item.patch_code = note.code.as_deref().and_then(|c| c.parse().ok());
                    item.patch_reason = note.detail.clone();
                    item.patch_timestamp = Some(ts);
                }
                push::patches(vec![item], ts)
            }
            // a destroyed group, settings, requests, chat room comings and goings: LeanCloud's
            // clients are not told (it has no such push)
            Event::Conv { conv, change, .. } if !push::told(conv, change) => return None,
            Event::Conv { conv, by, change, at, .. } => {
                let (op, c) = push::conv_change(conv, by.as_deref(), change, to?);
                push::conv_push(op, c, *at)
            }
            Event::Receipt { conv, msg, at, read, by, .. } => push::receipt(conv, msg.as_ref(), *at, *read, by),
            Event::Kick { reason, .. } => {
                let (code, text) = match reason {
                    KickReason::Conflict | KickReason::Replaced(_) => (4111, "SESSION_CONFLICT".to_string()),
                    KickReason::ByApp(r) => (4115, r.clone().unwrap_or_else(|| "KICKED_BY_APP".into())),
                    KickReason::PasswordChanged | KickReason::Disabled | KickReason::Removed => (4115, "KICKED_BY_APP".to_string()),
                };
                push::session_closed(code, &text)
            }
            Event::Broadcast { app, broadcast } => {
                let conv = self.service_ref(*app, broadcast.conv).await;
                push::direct(&broadcast_message(broadcast), &conv, now)
            }
            // LeanCloud has no contacts
            Event::Contact { .. } => return None,
        };
        Some(codec::encode(&cmd))
    }

    /// The shared bytes with this client's `peerId` appended (protobuf fields may come in any
    /// order). Always, even with one session on the connection: the SDK sends a push without
    /// `peerId` to the first client created on the socket, which is gone once that client
    /// logged out and another remains.
    fn address(&self, shared: &Bytes, s: &Session) -> Bytes {
        let field = codec::peer_id_field(&s.user);
        let mut b = BytesMut::with_capacity(shared.len() + field.len());
        b.extend_from_slice(shared);
        b.extend_from_slice(&field);
        b.freeze()
    }

    /// A chat room's messages are not echoed to the sender's other sessions.
    fn sender_echo(&self, conv: &ConvRef) -> bool {
        conv.kind != ConvKind::Chatroom
    }
}

impl LcEncoder {
    /// How a broadcast names its service conversation (an imported one by its LeanCloud id).
    async fn service_ref(&self, app: i64, conv: i64) -> ConvRef {
        let found = self.engine.conversations().conversation_ref(app, conv).await.ok().flatten();
        found.unwrap_or(ConvRef { id: conv, kind: ConvKind::Service, foreign_id: None })
    }
}

pub struct Gateway {
    pub engine: Arc<Engine>,
    pub settings: GatewaySettings,
    /// The node's sessions (this gateway's among them) and their dispatcher.
    sessions: Arc<Sessions>,
    /// This gateway in the registry.
    id: GatewayId,
    /// Connection ids.
    next_id: AtomicU64,
    /// Open WebSocket connections, to close at shutdown.
    conns: Connections<Conn>,
}

impl Gateway {
    /// A gateway on this engine, with a session registry and dispatcher of its own.
    pub fn start(engine: Arc<Engine>, settings: GatewaySettings) -> Arc<Gateway> {
        let sessions = Sessions::start(engine.clone());
        Gateway::start_on(engine, sessions, settings)
    }

    /// A gateway whose sessions join the node's registry (shared with other realtime gateways).
    pub fn start_on(engine: Arc<Engine>, sessions: Arc<Sessions>, settings: GatewaySettings) -> Arc<Gateway> {
        let id = sessions.gateway(Arc::new(LcEncoder { engine: engine.clone() }));
        Arc::new(Gateway { engine, settings, sessions, id, next_id: AtomicU64::new(1), conns: Connections::default() })
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Open a session on a connection: registered at once.
    fn open_session(&self, new: NewSession) -> Arc<SessionHandle> {
        self.sessions.open(self.id, new)
    }

    /// End a session once: forget it, tell the engine why (presence, the app's hooks), and
    /// (unless it is only disconnected) revoke its token.
    async fn end_session(&self, h: &Arc<SessionHandle>, revoke: bool, why: &Offline) {
        self.sessions.end(h, revoke, why).await
    }

    /// Sessions open on this node.
    pub fn session_count(&self) -> usize {
        self.sessions.count(self.id)
    }

    fn conn_opened(&self, conn: &Arc<Conn>) {
        self.conns.opened(conn.id, conn);
    }

    fn conn_closed(&self, id: u64) {
        self.conns.closed(id);
    }

    /// Shutdown: close every WebSocket with 1001 (going away; the clients reconnect and catch
    /// up by their cursors), and any that opens from now on; returns once all are closed.
    pub async fn close_all(&self) {
        self.conns.close_all().await;
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

/// At shutdown a connection closes with 1001 (going away).
impl Shutdown for Conn {
    fn shut_down(&self) {
        self.kill(close::GOING_AWAY, "server shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(frames: usize) -> Conn {
        Conn { id: 1, format: Format::Binary, out: out_queue::OutQueue::new(frames, 1 << 20), kill: watch::Sender::new(None) }
    }

    #[test]
    fn a_connection_told_to_resync_closes_as_a_slow_consumer() {
        // the dispatcher lost pushes: the client reconnects (4200 is not one it gives up on)
        let c = conn(8);
        c.resync();
        assert_eq!(c.close_frame().0, close::SLOW_CONSUMER);
        // as one too slow to read its pushes
        let c = conn(1);
        Outlet::push(&c, Bytes::from_static(b"a"));
        assert!(!c.is_killed());
        Outlet::push(&c, Bytes::from_static(b"b"));
        assert_eq!(c.close_frame(), (close::SLOW_CONSUMER, "too slow to read pushes".to_string()));
    }
}
