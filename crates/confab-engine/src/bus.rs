//! The bus carries delivery events from the engine to the gateways that hold sessions: in
//! process on one node, over NATS between nodes.
//!
//! **At most once, never blocking.** A publish hands the event over without waiting, and may
//! fail (a bus over a network that is down); each subscriber's queue is bounded, and a subscriber
//! that falls behind loses events and is told so ([`RecvError::Lagged`]). Neither loses data:
//! ordering and the record are the store's (every delivery event describes something already
//! stored), and a client that missed events catches up from its cursors when it reconnects. So
//! the engine logs a failed publish of a delivery event and goes on ([`Bus::deliver`]), and a
//! subscriber that lagged closes its sessions so that their clients reconnect and resync
//! (`sessions.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The same device logged in again (Easemob: the same resource): the older session gives
    /// way. The new login's extension (Easemob `loginInfoCustomExt`), if any.
    Replaced(Option<String>),
    /// The user's password changed (their tokens are revoked).
    PasswordChanged,
    /// The user was disabled (deactivated).
    Disabled,
    /// The user was deleted.
    Removed,
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
    /// News of `user`'s contacts: `peer` asked to be their contact, agreed, declined, was added
    /// or removed (`social.rs`); `reason` is the request's message.
    Contact { app: i64, user: String, peer: String, news: ContactNews, reason: Option<String> },
}

/// What a user hears of a contact (Easemob's ROSTER operations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactNews {
    /// `peer` asks to be a contact.
    Invited,
    /// `peer` agreed to the user's request.
    Agreed,
    /// `peer` declined the user's request.
    Declined,
    /// `peer` is now a contact.
    Added,
    /// `peer` ended the friendship.
    Removed,
}

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus cannot take events now (a network bus whose connection is down and whose send
    /// buffer is full).
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
}

/// Why [`EventReceiver::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// This many events were lost because the subscriber's queue was full: what it holds is
    /// incomplete, and so is what it told its sessions.
    #[error("lagged: {0} events lost")]
    Lagged(u64),
    /// The bus is gone.
    #[error("the bus is closed")]
    Closed,
}

/// Why [`EventReceiver::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    #[error("no event waiting")]
    Empty,
    #[error("lagged: {0} events lost")]
    Lagged(u64),
    #[error("the bus is closed")]
    Closed,
}

/// How many events a subscriber's queue holds by default before it lags.
pub const DEFAULT_QUEUE: usize = 16 * 1024;

/// The sending side of one subscriber's bounded queue (any bus implementation feeds its
/// subscribers through these).
pub struct EventSender {
    tx: mpsc::Sender<Arc<Event>>,
    lost: Arc<AtomicU64>,
}

/// One subscriber's bounded queue of events. A full queue never makes the sender wait: the event
/// is dropped for this subscriber, counted, and the next [`recv`](EventReceiver::recv) says
/// [`RecvError::Lagged`] (before any event still queued), then goes on with what is queued.
pub struct EventReceiver {
    rx: mpsc::Receiver<Arc<Event>>,
    lost: Arc<AtomicU64>,
}

/// A subscriber's queue, holding at most `capacity` events.
pub fn event_queue(capacity: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let lost = Arc::new(AtomicU64::new(0));
    (EventSender { tx, lost: lost.clone() }, EventReceiver { rx, lost })
}

impl EventSender {
    /// Queue an event without waiting; a full queue loses it (counted for the receiver). False
    /// once the receiver is gone.
    pub fn send(&self, event: Arc<Event>) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl EventReceiver {
    /// The next event; or that events were lost since the last call; or that the bus is gone.
    pub async fn recv(&mut self) -> Result<Arc<Event>, RecvError> {
        match self.lost.swap(0, Ordering::Relaxed) {
            0 => self.rx.recv().await.ok_or(RecvError::Closed),
            n => Err(RecvError::Lagged(n)),
        }
    }

    /// `recv` without waiting.
    pub fn try_recv(&mut self) -> Result<Arc<Event>, TryRecvError> {
        match self.lost.swap(0, Ordering::Relaxed) {
            0 => self.rx.try_recv().map_err(|e| match e {
                mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
                mpsc::error::TryRecvError::Disconnected => TryRecvError::Closed,
            }),
            n => Err(TryRecvError::Lagged(n)),
        }
    }
}

pub trait Bus: Send + Sync + 'static {
    /// Hand an event to every subscriber (on every node). It never waits: a bus that sends over
    /// a network queues the event and sends it in order (events of one conversation are
    /// published in its sequence order, `order.rs`, and must stay in it). It fails when the
    /// bus cannot take the event; a subscriber that cannot is not a failure of the publish (it
    /// is told it lagged).
    fn publish(&self, event: Event) -> Result<(), BusError>;

    /// A stream of every event published from now on, in a bounded queue (see
    /// [`EventReceiver`]).
    fn subscribe(&self) -> EventReceiver;

    /// Publish a delivery event whose subject is already stored (a message, an edit, a receipt,
    /// a conversation change): a failure is logged and the caller goes on. Nothing is lost but
    /// the push; the clients catch up from their cursors when they reconnect.
    fn deliver(&self, event: Event) {
        if let Err(e) = self.publish(event) {
            tracing::warn!(error = %e, "a delivery event was not published; clients catch up from their cursors");
        }
    }
}

/// The single-node bus: events go straight to this process's subscribers, each through its own
/// bounded queue.
pub struct LocalBus {
    subscribers: Mutex<Vec<EventSender>>,
    queue: usize,
}

impl Default for LocalBus {
    fn default() -> Self {
        LocalBus::with_queue(DEFAULT_QUEUE)
    }
}

impl LocalBus {
    /// A bus whose subscribers each hold at most `queue` events before they lag.
    pub fn with_queue(queue: usize) -> LocalBus {
        LocalBus { subscribers: Mutex::new(Vec::new()), queue }
    }
}

impl Bus for LocalBus {
    /// Never fails: a full subscriber loses the event (and is told), a gone one is forgotten.
    fn publish(&self, event: Event) -> Result<(), BusError> {
        let event = Arc::new(event);
        self.subscribers.lock().retain(|s| s.send(event.clone()));
        Ok(())
    }

    fn subscribe(&self) -> EventReceiver {
        let (tx, rx) = event_queue(self.queue);
        self.subscribers.lock().push(tx);
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: i64) -> Event {
        Event::Kick { app: n, user: "u".into(), session: None, reason: KickReason::Conflict }
    }

    fn app_of(e: &Event) -> i64 {
        match e {
            Event::Kick { app, .. } => *app,
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_loses_events_is_told_and_goes_on() {
        let bus = LocalBus::with_queue(2);
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        for n in 1..=5 {
            // never waits, never fails, however full the queues
            bus.publish(ev(n)).unwrap();
            if n <= 3 {
                assert_eq!(app_of(&fast.recv().await.unwrap()), n);
            }
        }
        // the slow one kept the first two; three were lost, and it hears that first
        assert_eq!(slow.recv().await.unwrap_err(), RecvError::Lagged(3));
        assert_eq!(app_of(&slow.recv().await.unwrap()), 1);
        assert_eq!(app_of(&slow.try_recv().unwrap()), 2);
        assert_eq!(slow.try_recv().unwrap_err(), TryRecvError::Empty);
        // the fast one lost nothing
        assert_eq!(app_of(&fast.recv().await.unwrap()), 4);
        assert_eq!(app_of(&fast.recv().await.unwrap()), 5);
        // and a lagged subscriber goes on receiving
        bus.publish(ev(6)).unwrap();
        assert_eq!(app_of(&slow.recv().await.unwrap()), 6);
    }

    #[tokio::test]
    async fn a_dropped_subscriber_is_forgotten_and_a_gone_bus_is_closed() {
        let bus = LocalBus::with_queue(1);
        let gone = bus.subscribe();
        let mut kept = bus.subscribe();
        drop(gone);
        bus.publish(ev(1)).unwrap();
        assert_eq!(bus.subscribers.lock().len(), 1);
        drop(bus);
        assert_eq!(app_of(&kept.recv().await.unwrap()), 1);
        assert_eq!(kept.recv().await.unwrap_err(), RecvError::Closed);
    }

    struct Down;
    impl Bus for Down {
        fn publish(&self, _: Event) -> Result<(), BusError> {
            Err(BusError::Unavailable("down".into()))
        }
        fn subscribe(&self) -> EventReceiver {
            event_queue(1).1
        }
    }

    #[test]
    fn a_failed_delivery_is_logged_and_the_caller_goes_on() {
        Down.deliver(ev(1));
        assert!(Down.publish(ev(1)).is_err());
    }
}
