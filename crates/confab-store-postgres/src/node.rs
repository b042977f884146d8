//! A node's claim on its id: a session-level advisory lock, held on a connection of its own for
//! as long as the node lives. PostgreSQL releases it when that connection ends, however the node
//! ends (`kill -9` included), so a restarted node takes its id back at once and two live nodes
//! never share one (ids are part of every id a node makes: `confab_engine::ids`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use confab_engine::{Error, Result};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::pg_err;

/// The advisory lock class of node ids (the second key is the id): apart from the classes of
/// the store's transaction locks (`LockClass`, small numbers), which would otherwise wait
/// behind a node's lock for as long as the node lives.
const NODE_LOCK_CLASS: i32 = 0x0c0f_0001;

/// The ids a node of a cluster may take.
pub const NODE_IDS: std::ops::RangeInclusive<u16> = 1..=31;

/// How often a node whose claim connection broke tries to take its id back.
const RECLAIM_EVERY: Duration = Duration::from_secs(2);

/// A held node id; dropping it releases the id.
pub struct NodeClaim {
    id: u16,
    held: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl NodeClaim {
    /// Claim `id` on the database at `url`; an error names the id when another node holds it.
    pub async fn claim(url: &str, id: u16) -> Result<NodeClaim> {
        if !NODE_IDS.contains(&id) {
            return Err(Error::invalid(format!("node id {id}: a node's id is {} to {}", NODE_IDS.start(), NODE_IDS.end())));
        }
        let client = try_claim(url, id).await?.ok_or_else(|| taken(id))?;
        Ok(NodeClaim::hold(url, id, client))
    }

    /// Claim the lowest id no node holds (what a command-line tool working on the shared
    /// database does for the length of its run).
    pub async fn claim_free(url: &str) -> Result<NodeClaim> {
        for id in NODE_IDS.rev() {
            if let Some(client) = try_claim(url, id).await? {
                return Ok(NodeClaim::hold(url, id, client));
            }
        }
        Err(Error::invalid(format!("every node id ({} to {}) is held by a running node", NODE_IDS.start(), NODE_IDS.end())))
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    /// Whether the claim holds now (false while its connection is down and not yet retaken).
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Keep the claim's connection; should it break (the database restarted), take the id
    /// back as soon as the database answers again.
    fn hold(url: &str, id: u16, first: Held) -> NodeClaim {
        let held = Arc::new(AtomicBool::new(true));
        let (url, flag) = (url.to_string(), held.clone());
        let task = tokio::spawn(async move {
            let mut conn = first;
            loop {
                let _ = (&mut conn.connection).await;
                flag.store(false, Ordering::Release);
                tracing::error!(node = id, "the connection holding this node's id broke; taking the id back when the database answers");
                conn = loop {
                    tokio::time::sleep(RECLAIM_EVERY).await;
                    match try_claim(&url, id).await {
                        Ok(Some(c)) => break c,
                        Ok(None) => tracing::error!(node = id, "node id {id} is held by another node now: this node must not make ids"),
                        Err(e) => tracing::warn!(node = id, error = %e, "cannot reach the database to take the node id back"),
                    }
                };
                flag.store(true, Ordering::Release);
                tracing::info!(node = id, "node id taken back");
            }
        });
        NodeClaim { id, held, task }
    }
}

impl Drop for NodeClaim {
    fn drop(&mut self) {
        // the connection (and with it the lock) ends with the task
        self.task.abort();
    }
}

fn taken(id: u16) -> Error {
    Error::invalid(format!("node id {id} is taken: another running node of this cluster holds it (each node needs its own, 1 to 31)"))
}

/// A claim's connection: the client must live as long as the connection does.
struct Held {
    _client: tokio_postgres::Client,
    connection: std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send>>,
}

/// Take the lock on a new connection: the connection if taken, None if another holds it.
async fn try_claim(url: &str, id: u16) -> Result<Option<Held>> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(pg_err)?;
    let mut connection: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> = Box::pin(connection);
    let key = i32::from(id);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&NODE_LOCK_CLASS, &key];
    let ask = client.query_one("SELECT pg_try_advisory_lock($1, $2)", &params);
    // the connection is polled beside the query until the answer comes
    let got = tokio::select! {
        r = ask => r.map_err(pg_err)?.try_get::<_, bool>(0).map_err(pg_err)?,
        r = &mut connection => return Err(Error::internal(format!("postgres: the connection ended: {r:?}"))),
    };
    Ok(got.then_some(Held { _client: client, connection }))
}
