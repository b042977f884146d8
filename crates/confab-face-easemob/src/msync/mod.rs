//! The msync gateway: the WebSocket protocol of the official Easemob / Agora Chat web SDK
//! (`easemob-websdk` 4.21.1), at `GET /websocket` on the server's one port (ws and wss alike).
//! Every frame is one protobuf `MSync` (`proto/msync.proto`, compiled by `build.rs`).
//!
//! * `conn.rs`: one task per WebSocket: login (`PROVISION`), heartbeat and offline inventory
//!   (`UNREAD`), sends and pulls (`SYNC`), `LOGOUT`;
//! * `send.rs`: a sent CHAT meta through the engine's send path (the REST face's message
//!   shape: mutes, blocklists, limits and the app's hooks apply), its answer and errors (§7);
//! * `muc.rs`: chat room join and leave (`MUC` metas) through the engine's chat-room presence;
//! * `queues.rs`: what each device got, kept in the store (works on a cluster), the UNREAD
//!   inventory and pages;
//! * `encode.rs`: engine events as frames (the gateway's `Encoder`): NOTICEs, unsolicited
//!   metas, kicks;
//! * `body.rs`: `MessageBody` and the engine's messages; `frames.rs`: the frames' envelopes.
//!
//! Sessions join the engine's gateway-neutral registry and dispatcher (`confab_engine::sessions`),
//! shared with the LeanCloud gateway; the connection's outbound queue is the engine's
//! `out_queue`. See `docs/easemob.md` (msync gateway).

mod body;
mod conn;
mod encode;
mod frames;
mod held;
mod muc;
pub mod proto;
mod queues;
mod send;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use confab_engine::connections::{Connections, Shutdown};
use confab_engine::out_queue::{OutQueue, Refused};
use confab_engine::sessions::{GatewayId, Outlet, Session, Sessions};
use confab_engine::Engine;
use confab_routes::{Open, Route, Row};
use tokio::sync::watch;

/// Tuning of the gateway.
#[derive(Clone, Debug)]
pub struct MsyncSettings {
    /// Frames and bytes a connection may have waiting before it is closed as too slow.
    pub out_queue: usize,
    pub out_queue_bytes: usize,
    /// A logged-in connection silent this long is closed (the SDK sends UNREAD every 30–60 s
    /// when idle; the spec says 3 minutes or more is safe).
    pub idle_timeout: Duration,
    /// A connection that does not log in within this time is closed.
    pub login_timeout: Duration,
    /// How long a closing connection may take to write what is queued and its close frame.
    pub close_grace: Duration,
    /// Largest WebSocket message accepted.
    pub max_frame: usize,
}

impl Default for MsyncSettings {
    fn default() -> Self {
        MsyncSettings {
            out_queue: 1024,
            out_queue_bytes: 1024 * 1024,
            idle_timeout: Duration::from_secs(300),
            login_timeout: Duration::from_secs(30),
            close_grace: Duration::from_secs(5),
            max_frame: 256 * 1024,
        }
    }
}

/// The part of a connection the dispatcher reaches: its outbound queue and its end.
pub struct Conn {
    id: u64,
    out: OutQueue,
    /// Set once, with a reason for the logs, when the connection must end.
    kill: watch::Sender<Option<&'static str>>,
    /// Its session, once logged in: a frame pushed after the session ended is a kick's notice,
    /// and the connection closes after writing it.
    session: OnceLock<Weak<Session>>,
    /// The pull being answered, if any: the NOTICE of its queue, and whether that NOTICE was
    /// pushed since the pull began (see [`Pulling`]).
    pulling: parking_lot::Mutex<Option<Pulling>>,
    /// The messages handed to it that its device has not pulled yet (`held.rs`).
    held: parking_lot::Mutex<held::Held>,
}

/// A pull in flight on a connection. The SDK ignores a `NOTICE{Q}` while Q is in its list (a pull
/// of Q under way), and an empty `isLast` page of Q then drops Q from the list (spec §6.1): a
/// message stored after the pull read the store, whose NOTICE went out before the page, would stay
/// unpulled. So a NOTICE of the pulled queue pushed meanwhile is remembered, and written again
/// after an `isLast` page (the page drops Q, the NOTICE adds it back and the SDK pulls).
struct Pulling {
    notice: Bytes,
    noticed: bool,
}

impl Outlet for Conn {
    fn push(&self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        // a message beside its NOTICE: kept for the pull the NOTICE brings (before the NOTICE
        // is written, so that the pull finds it)
        let frame = match held::Note::unpack(&frame) {
            Some(n) => {
                let f = n.frame.clone();
                self.held.lock().keep(n);
                f
            }
            None => frame,
        };
        if let Some(p) = self.pulling.lock().as_mut() {
            p.noticed |= p.notice == frame;
        }
        if self.out.push(frame) == Err(Refused::Full) {
            self.kill("too slow to read");
        }
        if self.session.get().and_then(Weak::upgrade).is_some_and(|s| s.is_ended()) {
            self.kill("session ended");
        }
    }

    fn resync(&self) {
        self.kill("events lost on the server: reconnect");
    }
}

impl Conn {
    /// End the connection: what is queued is written, then the close frame.
    fn kill(&self, why: &'static str) {
        self.kill.send_if_modified(|k| {
            let first = k.is_none();
            if first {
                *k = Some(why);
            }
            first
        });
    }

    fn is_killed(&self) -> bool {
        self.kill.borrow().is_some()
    }

    /// Queue an answer, waiting for room.
    async fn reply(&self, frame: Bytes) {
        self.out.push_wait(frame).await;
    }

    /// A pull of the queue whose NOTICE is `notice` begins.
    fn pull_begins(&self, notice: Bytes) {
        *self.pulling.lock() = Some(Pulling { notice, noticed: false });
    }

    /// The pull is answered (its page queued): the NOTICE to write again, if one of its queue
    /// was pushed meanwhile.
    fn pull_ends(&self) -> Option<Bytes> {
        self.pulling.lock().take().filter(|p| p.noticed).map(|p| p.notice)
    }
}

pub struct MsyncGateway {
    pub engine: Arc<Engine>,
    pub settings: MsyncSettings,
    sessions: Arc<Sessions>,
    id: GatewayId,
    next_id: AtomicU64,
    /// Open connections, closed at shutdown.
    conns: Connections<Conn>,
}

impl MsyncGateway {
    /// The gateway, its sessions joining the node's registry.
    pub fn start_on(engine: Arc<Engine>, sessions: Arc<Sessions>, settings: MsyncSettings) -> Arc<MsyncGateway> {
        let id = sessions.gateway(Arc::new(encode::MsyncEncoder { engine: engine.clone() }));
        Arc::new(MsyncGateway { engine, settings, sessions, id, next_id: AtomicU64::new(1), conns: Connections::default() })
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

    /// Shutdown: close every connection (the SDK reconnects elsewhere or later, and catches up
    /// through UNREAD), and any that opens from now on; returns once all are closed.
    pub async fn close_all(&self) {
        self.conns.close_all().await;
    }
}

/// `GET /websocket`: the upgrade. Any `Origin`, no subprotocol (the SDK offers none).
async fn upgrade(
    State(gw): State<Arc<MsyncGateway>>,
    info: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return crate::envelope::EmError::illegal("the msync endpoint needs a WebSocket upgrade").into_response();
    };
    let ws = ws.max_message_size(gw.settings.max_frame).max_frame_size(gw.settings.max_frame).read_buffer_size(4096);
    let ip = info.map(|i| i.0 .0.ip().to_string());
    ws.on_upgrade(move |socket| conn::serve(gw, socket, ip))
}

/// Stored messages of one conversation as `viewer`'s devices get them over msync: each one's
/// `Meta` (ns CHAT), encoded exactly as a pull delivers it (the roaming history's
/// `msgs[].msg`, base64 of these bytes). Nothing for a conversation msync does not speak of.
pub async fn encoded_metas(
    engine: &Engine,
    app: &confab_engine::model::App,
    viewer: &str,
    conv: confab_engine::model::Conversation,
    msgs: &[confab_engine::model::Message],
) -> confab_engine::Result<Vec<Vec<u8>>> {
    use prost::Message as _;
    let key = format!("{}#{}", app.keys.easemob.org_name, app.keys.easemob.app_name);
    let Some(q) = queues::queue_of(engine, app, viewer, conv).await? else { return Ok(vec![]) };
    Ok(msgs.iter().map(|m| queues::meta_of(&key, q.kind, &q.name, viewer, m).encode_to_vec()).collect())
}

/// The gateway's route table: the upgrade at `/websocket`, open (the PROVISION frame carries
/// the user token, checked there).
fn rows() -> Vec<Row<Arc<MsyncGateway>, Open>> {
    vec![confab_routes::get("/websocket", Open, upgrade)]
}

/// The gateway's routes as data.
pub fn routes() -> Vec<Route<Open>> {
    confab_routes::table(&rows())
}

/// The gateway's routes.
pub fn router(gw: Arc<MsyncGateway>) -> Router {
    confab_routes::router(rows(), &gw, confab_routes::open).with_state(gw)
}

/// At shutdown a connection closes (the SDK reconnects and catches up through UNREAD).
impl Shutdown for Conn {
    fn shut_down(&self) {
        self.kill("server shutting down");
    }
}
