//! This node's realtime sessions and the dispatcher that turns bus events into frames for them,
//! whatever protocol the sessions speak.
//!
//! A realtime gateway (LeanCloud's WebSocket protocol today; Easemob's msync next) registers
//! an [`Encoder`] (engine events as its frames) and opens a [`Session`] for each logged-in
//! client, with an [`Outlet`] (the connection its frames are queued on). The registry holds the
//! sessions by (app, user); one dispatcher task per node reads the bus and hands each event's
//! frame to the sessions it is for:
//!
//! * **encoded once**: an event's frame is encoded once per gateway and shared by every
//!   recipient session (a conversation change once per recipient user: the member it is about
//!   hears it in other words than the others); each session gets [`Encoder::address`]ed copy
//!   (LeanCloud appends the session's `peerId`), a copy but never a re-encoding;
//! * **in order**: events are handled one at a time, in the order the bus gives them (a
//!   conversation's in its sequence order, `order.rs`), and an outlet queues frames in the order
//!   it is given them;
//! * **never waits on a client**: [`Outlet::push`] does not wait (a connection that cannot take
//!   a frame closes itself and its client catches up from its cursors);
//! * **a lag closes everything**: when the bus says this node's dispatcher lost events (its
//!   queue was full, `bus.rs`), nobody knows which sessions missed what, so every session's
//!   outlet is told to [`Outlet::resync`]: the gateway closes the connection, its sessions end as
//!   any lost connection's do, and the clients reconnect and catch up from their cursors.
//!
//! Kicks are the dispatcher's too: the sessions named end (the engine is told why, their tokens
//! are revoked) before the gateway's kick frame (its close codes) reaches them.
//!
//! Per node by design: on a cluster each node has its own registry and dispatcher, fed by the
//! events routed to it (design.md §7).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::bus::{Event, EventReceiver, KickReason, Origin, RecvError};
use crate::hooks::Offline;
use crate::model::{AppLookup, ConvRef};
use crate::presence::SessionRef;
use crate::Engine;

/// Where a session's frames go: its connection. Implemented by each gateway.
pub trait Outlet: Send + Sync + 'static {
    /// Queue a frame without waiting. A connection that cannot take it (too slow) closes
    /// itself; its client reconnects and catches up from its cursors.
    fn push(&self, frame: Bytes);
    /// Events meant for this session may have been lost: close the connection so that the
    /// client reconnects and catches up from its cursors. The sessions on it end as the
    /// connection goes, as with any lost connection.
    fn resync(&self);
}

/// How a gateway speaks: engine events as its frames.
#[async_trait]
pub trait Encoder: Send + Sync + 'static {
    /// The frame `event` becomes for this gateway's sessions, shared by all of them; None: the
    /// gateway says nothing of it. `to` names the recipient user of a conversation change
    /// (`Event::Conv`: each member hears it in its own words); None for every other event. A
    /// kick's frame is the gateway's notice that the session was closed (its close codes,
    /// `KickReason`).
    async fn encode(&self, event: &Event, to: Option<&str>, now: i64) -> Option<Bytes>;

    /// One session's copy of a shared frame (LeanCloud: with the session's `peerId` appended).
    fn address(&self, shared: &Bytes, session: &Session) -> Bytes;

    /// Whether the sender's own other sessions hear a message it sent to `conv` (unless the
    /// sender asked not to, `no_sync`).
    fn sender_echo(&self, conv: &ConvRef) -> bool {
        let _ = conv;
        true
    }
}

/// What the registry needs from the engine.
#[async_trait]
pub trait Host: Send + Sync + 'static {
    fn node(&self) -> u16;
    fn now(&self) -> i64;
    /// A session ended, and why: presence and the app's hooks are told; its token is revoked
    /// when `revoke` (a logout or a kick; a lost connection keeps it for the reconnect).
    async fn session_ended(&self, session: &Session, revoke: bool, why: &Offline);
}

#[async_trait]
impl Host for Engine {
    fn node(&self) -> u16 {
        Engine::node(self)
    }

    fn now(&self) -> i64 {
        Engine::now(self)
    }

    async fn session_ended(&self, h: &Session, revoke: bool, why: &Offline) {
        match self.apps().find_app(&AppLookup::Id(h.app)).await {
            Ok(Some(app)) => self.clients().session_closed(&app, &h.user, &h.session_ref(), h.ip.as_deref(), why).await,
            // the app is gone: only presence is left to tell
            _ => self.clients().forget_session(h.app, &h.user, &h.session_ref()).await,
        }
        let token = h.token.lock().take();
        if let (true, Some(t)) = (revoke, token) {
            if let Err(e) = self.users().revoke_token(&t).await {
                tracing::warn!(error = %e, "could not revoke a session token");
            }
        }
    }
}

/// A registered gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayId(usize);

/// What a gateway knows of a session it opens.
pub struct NewSession {
    pub app: i64,
    pub user: String,
    /// The client's device tag and id (single-device login).
    pub tag: Option<String>,
    pub device: Option<String>,
    /// The client's address, if known.
    pub ip: Option<String>,
    pub outlet: Arc<dyn Outlet>,
}

/// One open session (a logged-in client) on this node.
pub struct Session {
    pub id: u64,
    pub node: u16,
    pub app: i64,
    pub user: String,
    pub tag: Option<String>,
    pub device: Option<String>,
    /// The session token issued to it, revoked when it is logged out or kicked.
    pub token: Mutex<Option<String>>,
    pub ip: Option<String>,
    gateway: usize,
    outlet: Arc<dyn Outlet>,
    ended: AtomicBool,
}

impl Session {
    /// This session as the origin of a change (so that the change is not echoed to it).
    pub fn origin(&self) -> Origin {
        Origin { node: self.node, session: self.id }
    }

    pub fn session_ref(&self) -> SessionRef {
        SessionRef { node: self.node, session: self.id, tag: self.tag.clone(), device: self.device.clone() }
    }

    /// Ended (logged out, kicked, lost): it gets nothing more.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }
}

type Registry = HashMap<(i64, String), Vec<Arc<Session>>>;

/// This node's sessions, of every gateway, by (app, user), and their dispatcher.
pub struct Sessions {
    host: Arc<dyn Host>,
    map: RwLock<Registry>,
    encoders: RwLock<Arc<[Arc<dyn Encoder>]>>,
    next_id: AtomicU64,
}

impl Sessions {
    /// The registry of this engine's node, with its dispatcher reading the engine's bus.
    pub fn start(engine: Arc<Engine>) -> Arc<Sessions> {
        let events = engine.subscribe_events();
        Sessions::start_with(engine, events)
    }

    /// The registry, with its dispatcher reading `events` (a test hook: any host and bus). The
    /// dispatcher ends when the registry is dropped or the bus closes.
    pub fn start_with(host: Arc<dyn Host>, mut events: EventReceiver) -> Arc<Sessions> {
        let sessions = Arc::new(Sessions {
            host,
            map: RwLock::new(HashMap::new()),
            encoders: RwLock::new(Arc::from(Vec::new())),
            next_id: AtomicU64::new(1),
        });
        let weak: Weak<Sessions> = Arc::downgrade(&sessions);
        tokio::spawn(async move {
            loop {
                let got = events.recv().await;
                let Some(s) = weak.upgrade() else { break };
                match got {
                    Ok(ev) => s.dispatch(&ev).await,
                    Err(RecvError::Lagged(n)) => s.lagged(n),
                    Err(RecvError::Closed) => break,
                }
            }
        });
        sessions
    }

    /// A gateway joins with its encoder; its sessions are opened under the id returned.
    pub fn gateway(&self, encoder: Arc<dyn Encoder>) -> GatewayId {
        let mut encoders = self.encoders.write();
        let mut all: Vec<Arc<dyn Encoder>> = encoders.iter().cloned().collect();
        all.push(encoder);
        *encoders = Arc::from(all);
        GatewayId(encoders.len() - 1)
    }

    /// Open a session: registered at once, so it hears every event dispatched from now on.
    pub fn open(&self, gateway: GatewayId, new: NewSession) -> Arc<Session> {
        let s = Arc::new(Session {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            node: self.host.node(),
            app: new.app,
            user: new.user,
            tag: new.tag,
            device: new.device,
            token: Mutex::new(None),
            ip: new.ip,
            gateway: gateway.0,
            outlet: new.outlet,
            ended: AtomicBool::new(false),
        });
        self.map.write().entry((s.app, s.user.clone())).or_default().push(s.clone());
        s
    }

    /// End a session once: forget it, and tell the engine why (`Host::session_ended`).
    pub async fn end(&self, s: &Arc<Session>, revoke: bool, why: &Offline) {
        if s.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let mut map = self.map.write();
            let key = (s.app, s.user.clone());
            if let Some(v) = map.get_mut(&key) {
                v.retain(|x| !Arc::ptr_eq(x, s));
                if v.is_empty() {
                    map.remove(&key);
                }
            }
        }
        self.host.session_ended(s, revoke, why).await;
    }

    /// A user's sessions on this node.
    pub fn of_user(&self, app: i64, user: &str) -> Vec<Arc<Session>> {
        self.map.read().get(&(app, user.to_string())).cloned().unwrap_or_default()
    }

    fn of_app(&self, app: i64) -> Vec<Arc<Session>> {
        self.map.read().iter().filter(|((a, _), _)| *a == app).flat_map(|(_, v)| v.iter().cloned()).collect()
    }

    /// A gateway's sessions open on this node.
    pub fn count(&self, gateway: GatewayId) -> usize {
        self.map.read().values().flatten().filter(|s| s.gateway == gateway.0).count()
    }

    /// The dispatcher lost events: every session may have missed some.
    fn lagged(&self, lost: u64) {
        let all: Vec<Arc<Session>> = self.map.read().values().flatten().cloned().collect();
        tracing::warn!(lost, sessions = all.len(), "the dispatcher fell behind the bus; its sessions are closed to resync");
        for s in all {
            s.outlet.resync();
        }
    }

    async fn dispatch(&self, ev: &Event) {
        let now = self.host.now();
        let encoders = self.encoders.read().clone();
        let mut frames = Frames::new(&encoders, ev, None, now);
        match ev {
            Event::Message { app, conv, msg, recipients, no_sync, origin } => {
                for u in recipients {
                    for h in self.of_user(*app, u) {
                        let quiet_sender = *no_sync || !encoders[h.gateway].sender_echo(conv);
                        if Some(h.origin()) == *origin || (quiet_sender && h.user == msg.from) {
                            continue;
                        }
                        frames.deliver(&h).await;
                    }
                }
            }
            Event::MessagePatched { app, recipients, origin, .. } => {
                for u in recipients {
                    for h in self.of_user(*app, u) {
                        if Some(h.origin()) != *origin {
                            frames.deliver(&h).await;
                        }
                    }
                }
            }
            Event::Conv { app, by, recipients, .. } => {
                for r in recipients {
                    if by.as_deref() == Some(r.as_str()) {
                        continue;
                    }
                    let mut own = Frames::new(&encoders, ev, Some(r), now);
                    for h in self.of_user(*app, r) {
                        own.deliver(&h).await;
                    }
                }
            }
            Event::Receipt { app, to, .. } | Event::Contact { app, user: to, .. } => {
                for h in self.of_user(*app, to) {
                    frames.deliver(&h).await;
                }
            }
            Event::Kick { app, user, session, reason } => {
                let why = match reason {
                    KickReason::Conflict | KickReason::Replaced(_) => Offline::Conflict,
                    KickReason::ByApp(r) => Offline::Kicked { reason: r.clone() },
                    KickReason::PasswordChanged | KickReason::Disabled | KickReason::Removed => Offline::Kicked { reason: None },
                };
                for h in self.of_user(*app, user) {
                    if session.as_ref().is_some_and(|s| s.node != h.node || s.session != h.id) {
                        continue;
                    }
                    // the token is gone before the client hears of it, so it cannot come back
                    self.end(&h, true, &why).await;
                    frames.deliver(&h).await;
                }
            }
            Event::Broadcast { app, .. } => {
                for h in self.of_app(*app) {
                    frames.deliver(&h).await;
                }
            }
        }
    }
}

/// One event's frames, encoded once per gateway when its first recipient session is found.
struct Frames<'a> {
    encoders: &'a [Arc<dyn Encoder>],
    event: &'a Event,
    to: Option<&'a str>,
    now: i64,
    shared: Vec<Option<Option<Bytes>>>,
}

impl<'a> Frames<'a> {
    fn new(encoders: &'a [Arc<dyn Encoder>], event: &'a Event, to: Option<&'a str>, now: i64) -> Self {
        Frames { encoders, event, to, now, shared: vec![None; encoders.len()] }
    }

    async fn deliver(&mut self, s: &Session) {
        let encoder = &self.encoders[s.gateway];
        let slot = &mut self.shared[s.gateway];
        if slot.is_none() {
            *slot = Some(encoder.encode(self.event, self.to, self.now).await);
        }
        if let Some(Some(shared)) = slot {
            s.outlet.push(encoder.address(shared, s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, LocalBus};
    use crate::model::{ConvChange, ConvKind, Message};

    /// A gateway that writes each event as text: `<kind>:<detail>` shared, `@user` appended.
    struct FakeEncoder {
        encoded: AtomicU64,
        echo_chatrooms: bool,
    }

    #[async_trait]
    impl Encoder for FakeEncoder {
        async fn encode(&self, event: &Event, to: Option<&str>, _now: i64) -> Option<Bytes> {
            self.encoded.fetch_add(1, Ordering::SeqCst);
            let text = match event {
                Event::Message { msg, .. } => format!("msg:{}", msg.id),
                Event::MessagePatched { msg, .. } => format!("patch:{}", msg.id),
                Event::Conv { change, .. } => {
                    let subject = change.subjects().iter().any(|s| Some(s.as_str()) == to);
                    format!("conv:{}", if subject { "you" } else { "others" })
                }
                Event::Receipt { by, .. } => format!("rcp:{by}"),
                Event::Kick { reason: KickReason::Conflict, .. } => "kick:4111".into(),
                Event::Kick { .. } => "kick:4115".into(),
                Event::Broadcast { .. } | Event::Contact { .. } => return None,
            };
            Some(Bytes::from(text))
        }

        fn address(&self, shared: &Bytes, s: &Session) -> Bytes {
            Bytes::from([shared.as_ref(), b"@", s.user.as_bytes()].concat())
        }

        fn sender_echo(&self, conv: &ConvRef) -> bool {
            self.echo_chatrooms || conv.kind != ConvKind::Chatroom
        }
    }

    #[derive(Default)]
    struct FakeOutlet {
        frames: Mutex<Vec<String>>,
        resyncs: AtomicU64,
    }

    impl Outlet for FakeOutlet {
        fn push(&self, frame: Bytes) {
            self.frames.lock().push(String::from_utf8(frame.to_vec()).unwrap());
        }
        fn resync(&self) {
            self.resyncs.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl FakeOutlet {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.frames.lock())
        }
    }

    #[derive(Default)]
    struct FakeHost {
        ended: Mutex<Vec<(String, bool, String)>>,
    }

    #[async_trait]
    impl Host for FakeHost {
        fn node(&self) -> u16 {
            3
        }
        fn now(&self) -> i64 {
            1000
        }
        async fn session_ended(&self, s: &Session, revoke: bool, why: &Offline) {
            self.ended.lock().push((s.user.clone(), revoke, format!("{why:?}")));
        }
    }

    struct Setup {
        bus: LocalBus,
        host: Arc<FakeHost>,
        sessions: Arc<Sessions>,
        encoder: Arc<FakeEncoder>,
        gw: GatewayId,
    }

    fn setup(queue: usize) -> Setup {
        let bus = LocalBus::with_queue(queue);
        let host = Arc::new(FakeHost::default());
        let sessions = Sessions::start_with(host.clone(), bus.subscribe());
        let encoder = Arc::new(FakeEncoder { encoded: AtomicU64::new(0), echo_chatrooms: false });
        let gw = sessions.gateway(encoder.clone());
        Setup { bus, host, sessions, encoder, gw }
    }

    impl Setup {
        fn open(&self, user: &str) -> (Arc<Session>, Arc<FakeOutlet>) {
            let outlet = Arc::new(FakeOutlet::default());
            let new = NewSession { app: 1, user: user.into(), tag: None, device: None, ip: None, outlet: outlet.clone() };
            (self.sessions.open(self.gw, new), outlet)
        }

        /// Publish and wait until the dispatcher handled it (a marker receipt to `marker`).
        async fn publish(&self, ev: Event, marker: &FakeOutlet) {
            self.bus.publish(ev).unwrap();
            self.bus.publish(receipt("zz", "marker")).unwrap();
            for _ in 0..1000 {
                if marker.frames.lock().iter().any(|f| f.starts_with("rcp:marker")) {
                    marker.frames.lock().retain(|f| !f.starts_with("rcp:marker"));
                    return;
                }
                tokio::task::yield_now().await;
            }
            panic!("the dispatcher did not get to the marker");
        }
    }

    fn conv(kind: ConvKind) -> ConvRef {
        ConvRef { id: 7, kind, foreign_id: None }
    }

    fn message(from: &str, kind: ConvKind, recipients: &[&str], no_sync: bool, origin: Option<Origin>) -> Event {
        let msg = Arc::new(Message::new(1, 42, 7, from, 5, crate::model::Content::Text("hi".into())));
        Event::Message { app: 1, conv: conv(kind), msg, recipients: recipients.iter().map(|r| r.to_string()).collect(), no_sync, origin }
    }

    fn receipt(to: &str, by: &str) -> Event {
        Event::Receipt { app: 1, to: to.into(), conv: conv(ConvKind::Normal), msg: None, at: 0, read: true, by: by.into() }
    }

    #[tokio::test]
    async fn an_event_is_encoded_once_and_addressed_to_each_session_but_its_origin() {
        let t = setup(64);
        let (_zz, marker) = t.open("zz");
        let (a1, out_a1) = t.open("alice");
        let (_a2, out_a2) = t.open("alice");
        let (_b, out_b) = t.open("bob");
        t.publish(message("alice", ConvKind::Normal, &["alice", "bob"], false, Some(a1.origin())), &marker).await;
        assert_eq!(out_a1.take(), Vec::<String>::new(), "not echoed to the session it came from");
        assert_eq!(out_a2.take(), vec!["msg:42@alice"], "the sender's other session hears it");
        assert_eq!(out_b.take(), vec!["msg:42@bob"]);
        // one encoding for the message, one for the marker
        assert_eq!(t.encoder.encoded.load(Ordering::SeqCst), 2);
        // no_sync, or a chat room where the gateway says so: the sender's other sessions are quiet
        t.publish(message("alice", ConvKind::Normal, &["alice", "bob"], true, None), &marker).await;
        t.publish(message("alice", ConvKind::Chatroom, &["alice", "bob"], false, None), &marker).await;
        assert_eq!((out_a2.take().len(), out_b.take().len()), (0, 2));
        assert_eq!(a1.session_ref(), SessionRef { node: 3, session: a1.id, tag: None, device: None });
    }

    #[tokio::test]
    async fn a_conversation_change_is_worded_per_recipient_and_not_told_to_its_author() {
        let t = setup(64);
        let (_zz, marker) = t.open("zz");
        let (_a, out_a) = t.open("alice");
        let (_b, out_b) = t.open("bob");
        let (_c, out_c) = t.open("carol");
        let ev = Event::Conv {
            app: 1,
            conv: conv(ConvKind::Normal),
            by: Some("alice".into()),
            change: ConvChange::Joined { members: vec!["bob".into()] },
            recipients: vec!["alice".into(), "bob".into(), "carol".into()],
            at: 9,
        };
        t.publish(ev, &marker).await;
        assert_eq!((out_a.take(), out_b.take(), out_c.take()), (vec![], vec!["conv:you@bob".into()], vec!["conv:others@carol".into()]));
    }

    #[tokio::test]
    async fn a_kick_ends_the_sessions_named_then_tells_them() {
        let t = setup(64);
        let (_zz, marker) = t.open("zz");
        let (a1, out_a1) = t.open("alice");
        let (_a2, out_a2) = t.open("alice");
        let one = Event::Kick { app: 1, user: "alice".into(), session: Some(a1.session_ref()), reason: KickReason::Conflict };
        t.publish(one, &marker).await;
        assert!(a1.is_ended());
        assert_eq!(out_a1.take(), vec!["kick:4111@alice"]);
        assert_eq!(out_a2.take(), Vec::<String>::new(), "only the session named");
        assert_eq!(t.sessions.of_user(1, "alice").len(), 1);
        let all = Event::Kick { app: 1, user: "alice".into(), session: None, reason: KickReason::ByApp(Some("bye".into())) };
        t.publish(all, &marker).await;
        assert_eq!(out_a2.take(), vec!["kick:4115@alice"]);
        assert_eq!(t.sessions.count(t.gw), 1, "only the marker's session is left");
        let ended = t.host.ended.lock().clone();
        assert_eq!(ended.len(), 2);
        assert_eq!((ended[0].1, ended[0].2.as_str()), (true, "Conflict"), "kicked sessions lose their token");
        assert!(ended[1].2.contains("bye"));
        // ending twice tells the engine once
        t.sessions.end(&a1, false, &Offline::Logout).await;
        assert_eq!(t.host.ended.lock().len(), 2);
    }

    #[tokio::test]
    async fn an_event_a_gateway_has_no_words_for_reaches_nobody() {
        let t = setup(64);
        let (_zz, marker) = t.open("zz");
        let (_a, out_a) = t.open("alice");
        let b = crate::model::Broadcast {
            id: 1,
            app: 1,
            conv: 7,
            from: "sys".into(),
            timestamp: 1,
            content: crate::model::Content::Text("x".into()),
            valid_till: 0,
            push: None,
            transient: false,
        };
        t.publish(Event::Broadcast { app: 1, broadcast: Arc::new(b) }, &marker).await;
        assert!(out_a.take().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dispatcher_that_lags_closes_every_session_to_resync() {
        let t = setup(2);
        let (_a, out_a) = t.open("alice");
        let (_b, out_b) = t.open("bob");
        // published without yielding: the dispatcher has not run, its queue holds two
        for _ in 0..5 {
            t.bus.publish(receipt("alice", "bob")).unwrap();
        }
        for _ in 0..1000 {
            if out_a.frames.lock().len() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(out_a.resyncs.load(Ordering::SeqCst), 1, "told to resync");
        assert_eq!(out_b.resyncs.load(Ordering::SeqCst), 1, "every session, not only the recipients");
        // what was queued before the loss is still handed over; the rest was lost
        assert_eq!(out_a.take(), vec!["rcp:bob@alice", "rcp:bob@alice"]);
        // and the dispatcher goes on
        let (_m, marker) = t.open("zz");
        t.publish(receipt("alice", "carol"), &marker).await;
        assert_eq!(out_a.take(), vec!["rcp:carol@alice"]);
    }
}
