//! Which nodes are alive: each node puts a heartbeat (its incarnation) in the `nodes` bucket every
//! [`HEARTBEAT`], and every node watches the bucket. A node not heard from for [`NODE_TIMEOUT`] is
//! dead; a node that restarts has a new incarnation, so what its former life registered (sessions,
//! chat-room presence) is dead with it, whatever id it had.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Operation;
use confab_engine::Result;
use futures_util::StreamExt;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::kv::{decode, nats_err, Shared};

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a node may go unheard before it counts as dead (a `kill -9`'s sessions vanish from
/// presence after this).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(8);

/// A node's heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Beat {
    incarnation: u64,
}

/// The live nodes, as this node last heard them.
pub(crate) struct Nodes {
    me: u16,
    incarnation: u64,
    heard: RwLock<HashMap<u16, (u64, Instant)>>,
}

impl Nodes {
    pub fn me(&self) -> u16 {
        self.me
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Whether node `node` in its incarnation `incarnation` is alive.
    pub fn alive(&self, node: u16, incarnation: u64) -> bool {
        if node == self.me {
            return incarnation == self.incarnation;
        }
        self.heard.read().get(&node).is_some_and(|(inc, at)| *inc == incarnation && at.elapsed() < NODE_TIMEOUT)
    }

    /// The other nodes alive now.
    pub fn others(&self) -> Vec<u16> {
        self.heard.read().iter().filter(|(id, (_, at))| **id != self.me && at.elapsed() < NODE_TIMEOUT).map(|(id, _)| *id).collect()
    }

    fn heard(&self, key: &str, beat: Beat) {
        if let Some(id) = key.strip_prefix('n').and_then(|n| n.parse::<u16>().ok()) {
            self.heard.write().insert(id, (beat.incarnation, Instant::now()));
        }
    }
}

/// Start beating and listening; returns once the nodes alive now are known.
pub(crate) async fn start(bucket: Shared, me: u16) -> Result<(Arc<Nodes>, Vec<JoinHandle<()>>)> {
    let incarnation = fresh_incarnation();
    let nodes = Arc::new(Nodes { me, incarnation, heard: RwLock::new(HashMap::new()) });
    let key = format!("n{me}");
    bucket.put(&key, &Beat { incarnation }).await?;
    let mut watch = bucket.store().watch_with_history(">").await.map_err(nats_err)?;
    // the current values first (ours among them), then every beat as it comes
    let listen = {
        let nodes = nodes.clone();
        tokio::spawn(async move {
            while let Some(entry) = watch.next().await {
                match entry {
                    Ok(e) if e.operation == Operation::Put => {
                        if let Ok(beat) = decode::<Beat>(&e.value) {
                            nodes.heard(&e.key, beat);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "nats: watching the nodes' heartbeats"),
                }
            }
        })
    };
    // our own beat comes after every earlier one in the bucket's stream: once it is heard, so
    // are the nodes alive now
    let deadline = Instant::now() + Duration::from_secs(5);
    while !nodes.heard.read().contains_key(&me) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let beat = tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT);
        loop {
            every.tick().await;
            if let Err(e) = bucket.put(&key, &Beat { incarnation }).await {
                tracing::warn!(error = %e, "nats: this node's heartbeat was not written");
            }
        }
    });
    Ok((nodes, vec![listen, beat]))
}

fn fresh_incarnation() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}
