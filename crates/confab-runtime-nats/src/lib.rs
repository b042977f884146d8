//! The node runtime of a cluster, on NATS (design.md §7, issue 13): the engine's per-process
//! seams served so that every node of a cluster shares them.
//!
//! | seam | here |
//! |---|---|
//! | `Bus` | [`NatsBus`]: events to the nodes holding the recipients' sessions (`<ns>.node.<id>`) |
//! | `Presence` | [`NatsPresence`]: JetStream key-value, sessions tied to their node's heartbeat |
//! | `RateLimiter`, `LoginBackoff`, `Dedup` | [`counters`]: JetStream key-value, compare-and-set |
//! | `Invalidation` | [`NatsInvalidation`]: `<ns>.invalidate` |
//!
//! The work that must run once per cluster — hooks, callbacks, pushes — is the store's outbox:
//! written in the same transaction as what caused it, and claimed by any node with
//! `FOR UPDATE SKIP LOCKED` (`confab-store-postgres`), so it needs no queue of its own here.
//!
//! `ns` keeps one cluster's subjects and buckets apart from another's on the same NATS: it is
//! the cluster's id, kept in its database.
//!
//! **Without NATS** (down, or this node cut off from it) a node keeps serving: REST, and the
//! events of its own sessions (the bus hands them over in process); the client reconnects by
//! itself and resubscribes. Meanwhile events for other nodes are lost (their clients catch up from
//! their cursors), presence calls fail at once (each caller of the engine says what it does
//! then), and the shared counters are not consulted: rate limits and the login back-off admit
//! the call, and a run-once claim runs it (availability over exactness, logged; a node must not
//! refuse every call because a counter is out of reach).

#![forbid(unsafe_code)]

mod bus;
pub mod counters;
mod invalidation;
mod kv;
mod nodes;
mod presence;

use std::sync::Arc;
use std::time::Duration;

use confab_engine::{Error, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use crate::bus::NatsBus;
pub use crate::counters::{lease_size, NatsDedup, NatsLoginBackoff, NatsRateLimiter, LEASE_FOR};
pub use crate::invalidation::NatsInvalidation;
pub use crate::nodes::{HEARTBEAT, NODE_TIMEOUT};
pub use crate::presence::NatsPresence;

use crate::kv::{nats_err, Shared};

/// How long rate and login counters and dedup claims are kept unchanged before NATS drops them:
/// longer than the longest window (a day).
const COUNTERS_MAX_AGE: Duration = Duration::from_secs(25 * 3600);

/// A server URL as it may be logged: any `user:password@` (or token) before the host left out.
fn without_secrets(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.rsplit_once('@').map_or(rest, |(_, host)| host)),
        None => url.rsplit_once('@').map_or(url, |(_, host)| host).to_string(),
    }
}

/// How long a key-value call waits for NATS's answer (a connection that is down fails at once).
const KV_TIMEOUT: Duration = Duration::from_secs(2);

/// A node's runtime on NATS.
pub struct NatsRuntime {
    client: async_nats::Client,
    ns: String,
    bus: Arc<NatsBus>,
    presence: Arc<NatsPresence>,
    invalidation: Arc<NatsInvalidation>,
    counters: Shared,
    rates: Arc<NatsRateLimiter>,
    tasks: Vec<JoinHandle<()>>,
}

impl NatsRuntime {
    /// Connect node `node` of the cluster `ns` to the NATS server at `url`, make the cluster's
    /// buckets if this is the first node, and start listening. NATS lost later is reconnected to
    /// by itself; meanwhile this node serves its own sessions.
    pub async fn connect(url: &str, ns: &str, node: u16) -> Result<NatsRuntime> {
        if ns.is_empty() || !ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid(format!("a cluster's NATS namespace is letters, digits and _: {ns:?}")));
        }
        let client = async_nats::ConnectOptions::new()
            .name(format!("confab node {node}"))
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| Error::invalid(format!("cannot reach NATS at {}: {e}", without_secrets(url))))?;
        let mut js = async_nats::jetstream::new(client.clone());
        js.set_timeout(KV_TIMEOUT);
        let nodes_kv = Shared::open(&client, &js, &format!("{ns}_nodes"), nodes::NODE_TIMEOUT * 4).await?;
        let presence_kv = Shared::open(&client, &js, &format!("{ns}_presence"), Duration::ZERO).await?;
        let counters = Shared::open(&client, &js, &format!("{ns}_counters"), COUNTERS_MAX_AGE).await?;
        let (nodes, mut tasks) = nodes::start(nodes_kv, node).await?;
        let (presence, mirror) = NatsPresence::start(presence_kv, nodes.clone()).await?;
        let (out, queue) = mpsc::channel(bus::OUT_QUEUE);
        let (bus, inbox) = NatsBus::start(&client, ns, out.clone(), presence.clone(), nodes).await?;
        let (invalidation, heard) = NatsInvalidation::start(&client, ns, node, out).await?;
        tasks.extend([mirror, inbox, heard, bus::publisher(client.clone(), queue)]);
        let rates = Arc::new(NatsRateLimiter::new(counters.clone()));
        Ok(NatsRuntime { client, ns: ns.to_string(), bus, presence, invalidation, counters, rates, tasks })
    }

    pub fn bus(&self) -> Arc<NatsBus> {
        self.bus.clone()
    }

    pub fn presence(&self) -> Arc<NatsPresence> {
        self.presence.clone()
    }

    pub fn invalidation(&self) -> Arc<NatsInvalidation> {
        self.invalidation.clone()
    }

    /// This node's rate limiter (one per node: it holds the node's leases).
    pub fn rate_limiter(&self) -> Arc<NatsRateLimiter> {
        self.rates.clone()
    }

    pub fn login_backoff(&self) -> Arc<NatsLoginBackoff> {
        Arc::new(NatsLoginBackoff { kv: self.counters.clone() })
    }

    pub fn dedup(&self) -> Arc<NatsDedup> {
        Arc::new(NatsDedup { kv: self.counters.clone() })
    }

    /// Send what is queued for NATS (at shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.client.flush().await {
            tracing::warn!(error = %e, "nats: flushing at shutdown");
        }
    }

    /// Remove the cluster's buckets from NATS (tests clean up after their clusters with it).
    pub async fn destroy(self) -> Result<()> {
        let js = async_nats::jetstream::new(self.client.clone());
        for b in ["nodes", "presence", "counters"] {
            js.delete_key_value(format!("{}_{b}", self.ns)).await.map_err(nats_err)?;
        }
        Ok(())
    }
}

impl Drop for NatsRuntime {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_logged_without_its_credentials() {
        assert_eq!(super::without_secrets("nats://user:secret@nats.internal:4222"), "nats://nats.internal:4222");
        assert_eq!(super::without_secrets("nats://token@127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(super::without_secrets("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
