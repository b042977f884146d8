//! The bus carries delivery events from the engine to the gateways that hold sessions: in
//! process on one node, over NATS between nodes.

use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::{Broadcast, ConvChange, ConvRef, Message};
use crate::presence::SessionRef;

/// The session a change came from, so that it is not echoed back to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub node: u16,
    pub session: u64,
}

/// Why sessions are ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KickReason {
    /// The app's server asked (REST kick), with its reason.
    ByApp(Option<String>),
    /// The same user logged in again on another device with the same tag.
    Conflict,
}

/// Something a gateway may have to tell online sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A new message. `recipients` are resolved by the engine (members, subscribers, the
    /// audience, or a chat room's present users); the sender's own other sessions get it
    /// unless `no_sync`.
    Message { app: i64, conv: ConvRef, msg: Arc<Message>, recipients: Vec<String>, no_sync: bool, origin: Option<Origin> },
    /// A message was edited or recalled (or, `note` given, changed by the app's hook as it was
    /// sent: only its sender is told).
    MessagePatched {
        app: i64,
        conv: ConvRef,
        msg: Arc<Message>,
        recipients: Vec<String>,
        origin: Option<Origin>,
        note: Option<crate::hooks::AppNote>,
    },
    /// A conversation changed (membership, attributes, mutes, blocks, roles).
    Conv { app: i64, conv: ConvRef, by: Option<String>, change: ConvChange, recipients: Vec<String>, at: i64 },
    /// A message reached (or was read by) `by`: tell its sender `to`. The message is named by
    /// its id and, if imported, its foreign id.
    Receipt { app: i64, to: String, conv: ConvRef, msg: Option<(i64, Option<String>)>, at: i64, read: bool, by: String },
    /// A user's sessions (or one of them) must end.
    Kick { app: i64, user: String, session: Option<SessionRef>, reason: KickReason },
    /// An app-wide broadcast, for every online user.
    Broadcast { app: i64, broadcast: Arc<Broadcast> },
}

pub type EventReceiver = mpsc::UnboundedReceiver<Arc<Event>>;

pub trait Bus: Send + Sync + 'static {
    /// Hand an event to every subscriber (on every node). It never waits: a bus that sends over
    /// a network queues the event and sends it in order (events of one conversation are
    /// published in its sequence order, `order.rs`, and must stay in it).
    fn publish(&self, event: Event);
    /// A stream of every event published from now on.
    fn subscribe(&self) -> EventReceiver;
}

/// The single-node bus: events go straight to this process's subscribers.
#[derive(Default)]
pub struct LocalBus {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Arc<Event>>>>,
}

impl Bus for LocalBus {
    fn publish(&self, event: Event) {
        let event = Arc::new(event);
        self.subscribers.lock().retain(|s| s.send(event.clone()).is_ok());
    }

    fn subscribe(&self) -> EventReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().push(tx);
        rx
    }
}
