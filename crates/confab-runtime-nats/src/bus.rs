//! The bus of a cluster: an event goes to this node's gateways at once, and to the other nodes
//! that hold sessions of its recipients — only those, as this node's presence mirror knows them —
//! on their subjects (`<ns>.node.<id>`). An app-wide broadcast goes to every live node. NATS is
//! the doorbell, not the record: the store has every message, so an event lost with a node or a
//! connection is repaired by the client's catch-up from its cursors when it reconnects
//! (`confab_engine::bus`).
//!
//! One publisher task sends in the order `publish` was called (a conversation's events stay in
//! its sequence order); while NATS is unreachable its queue fills and `publish` says the bus is
//! unavailable, and this node's own sessions are still served.

use std::collections::BTreeSet;
use std::sync::Arc;

use confab_engine::bus::{Bus, BusError, Event, EventReceiver, LocalBus};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::kv::nats_err;
use crate::nodes::Nodes;
use crate::presence::NatsPresence;

/// Events (and invalidations) waiting for NATS, at most, before publishing fails.
pub(crate) const OUT_QUEUE: usize = 64 * 1024;

/// Bytes to send on some subjects, in order.
pub(crate) struct Outgoing {
    pub subjects: Vec<String>,
    pub bytes: bytes::Bytes,
}

/// Send what is queued, in order, for as long as the queue lives.
pub(crate) fn publisher(client: async_nats::Client, mut rx: mpsc::Receiver<Outgoing>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            for subject in out.subjects {
                if let Err(e) = client.publish(subject, out.bytes.clone()).await {
                    tracing::warn!(error = %e, "nats: an event was not sent; clients catch up from their cursors");
                }
            }
        }
    })
}

pub struct NatsBus {
    local: Arc<LocalBus>,
    out: mpsc::Sender<Outgoing>,
    presence: Arc<NatsPresence>,
    nodes: Arc<Nodes>,
    ns: String,
}

impl NatsBus {
    /// The bus, and the task that hands what other nodes send this one to its subscribers.
    pub(crate) async fn start(
        client: &async_nats::Client,
        ns: &str,
        out: mpsc::Sender<Outgoing>,
        presence: Arc<NatsPresence>,
        nodes: Arc<Nodes>,
    ) -> confab_engine::Result<(Arc<NatsBus>, JoinHandle<()>)> {
        let local = Arc::new(LocalBus::default());
        let mut inbox = client.subscribe(node_subject(ns, nodes.me())).await.map_err(nats_err)?;
        let to_local = local.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = inbox.next().await {
                match serde_json::from_slice::<Event>(&msg.payload) {
                    Ok(event) => {
                        let _ = to_local.publish(event);
                    }
                    Err(e) => tracing::warn!(error = %e, "nats: an event from another node does not read"),
                }
            }
        });
        Ok((Arc::new(NatsBus { local, out, presence, nodes, ns: ns.to_string() }), task))
    }

    /// The other nodes an event must reach.
    fn targets(&self, event: &Event) -> BTreeSet<u16> {
        let users = |app: i64, list: &[String], also: Option<&String>| self.presence.nodes_of(app, list.iter().chain(also));
        match event {
            Event::Message { app, msg, recipients, .. } | Event::MessagePatched { app, msg, recipients, .. } => {
                users(*app, recipients, Some(&msg.from))
            }
            Event::Conv { app, recipients, by, .. } => users(*app, recipients, by.as_ref()),
            Event::Receipt { app, to, .. } | Event::Contact { app, user: to, .. } => users(*app, std::slice::from_ref(to), None),
            Event::Kick { app, user, session, .. } => match session {
                Some(s) if s.node == self.nodes.me() => BTreeSet::new(),
                Some(s) => BTreeSet::from([s.node]),
                None => users(*app, std::slice::from_ref(user), None),
            },
            Event::Broadcast { .. } => self.nodes.others().into_iter().collect(),
        }
    }
}

fn node_subject(ns: &str, node: u16) -> String {
    format!("{ns}.node.{node}")
}

impl Bus for NatsBus {
    fn publish(&self, event: Event) -> Result<(), BusError> {
        let targets = self.targets(&event);
        let remote = if targets.is_empty() {
            Ok(())
        } else {
            match serde_json::to_vec(&event) {
                Ok(bytes) => {
                    let subjects = targets.into_iter().map(|n| node_subject(&self.ns, n)).collect();
                    self.out
                        .try_send(Outgoing { subjects, bytes: bytes.into() })
                        .map_err(|_| BusError::Unavailable("NATS is not taking events (its queue is full)".into()))
                }
                Err(e) => Err(BusError::Unavailable(format!("an event does not encode: {e}"))),
            }
        };
        // this node's sessions hear it whatever became of the others'
        let _ = self.local.publish(event);
        remote
    }

    fn subscribe(&self) -> EventReceiver {
        self.local.subscribe()
    }
}
