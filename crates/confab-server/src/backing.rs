//! What the engine stands on: the embedded SQLite store in a data directory (the default), or a
//! cluster's shared PostgreSQL database, with the cluster's runtime on NATS for a server given
//! one. A server holds its claim with it: the data directory's lock, or its node id in the
//! cluster (`confab_store_postgres::NodeClaim`).

use std::sync::Arc;

use anyhow::Context;
use confab_engine::{BlobStore, Store};
use confab_runtime_nats::NatsRuntime;
use confab_store_postgres::{NodeClaim, PgStore};
use confab_store_sqlite::{FileBlobs, SqliteStore};

use crate::config::Config;
use crate::lock::DataDirLock;

/// The store, its blobs, and the claim that makes this process the only one using them as it does.
// One per process, never moved about: the NATS runtime's size in the PostgreSQL variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Backing {
    Sqlite { store: Arc<SqliteStore>, blobs: Arc<FileBlobs>, _lock: Option<DataDirLock> },
    Postgres { store: Arc<PgStore>, claim: NodeClaim, runtime: Option<NatsRuntime> },
}

/// Who opens the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opener {
    /// `confab serve`: the data directory is locked; on PostgreSQL the configured node id is
    /// claimed (refused if another node holds it).
    Server,
    /// A command-line tool (`confab app …`, `confab import …`): no lock on a data directory; on
    /// PostgreSQL a free node id is claimed for the run.
    Tool,
}

/// Connections a server keeps to PostgreSQL; a tool needs few.
const SERVER_POOL: usize = confab_store_postgres::DEFAULT_POOL_SIZE;
const TOOL_POOL: usize = 4;

impl Backing {
    pub async fn open(config: &Config, opener: Opener) -> anyhow::Result<Backing> {
        if config.is_postgres() {
            let url = &config.database_url;
            let claim = match opener {
                Opener::Server => NodeClaim::claim(url, config.node_id).await,
                Opener::Tool => NodeClaim::claim_free(url).await,
            }
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let pool = if opener == Opener::Server { SERVER_POOL } else { TOOL_POOL };
            let store = PgStore::connect(url, pool).await.map_err(|e| anyhow::anyhow!("opening the database: {e}"))?;
            // a server with NATS is a node of a cluster; a tool needs no runtime
            let runtime = match opener {
                Opener::Server if !config.nats_url.is_empty() => {
                    let ns = format!("confab_{}", store.cluster_id().await.map_err(|e| anyhow::anyhow!("{e}"))?);
                    Some(NatsRuntime::connect(&config.nats_url, &ns, claim.id()).await.map_err(|e| anyhow::anyhow!("{e}"))?)
                }
                _ => None,
            };
            return Ok(Backing::Postgres { store: Arc::new(store), claim, runtime });
        }
        let dir = config.sqlite_dir();
        let lock = match opener {
            Opener::Server => Some(DataDirLock::acquire(&dir)?),
            Opener::Tool => None,
        };
        let store = SqliteStore::open(&dir).with_context(|| format!("opening the store in {}", dir.display()))?;
        Ok(Backing::Sqlite { store: Arc::new(store), blobs: Arc::new(FileBlobs::in_data_dir(&dir)), _lock: lock })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backing::Sqlite { store, .. } => store.clone(),
            Backing::Postgres { store, .. } => store.clone(),
        }
    }

    pub fn blobs(&self) -> Arc<dyn BlobStore> {
        match self {
            Backing::Sqlite { blobs, .. } => blobs.clone(),
            Backing::Postgres { store, .. } => Arc::new(store.blobs()),
        }
    }

    /// The embedded store, when that is what this is (its work counters are for tests and
    /// measurements).
    pub fn sqlite(&self) -> Option<&Arc<SqliteStore>> {
        match self {
            Backing::Sqlite { store, .. } => Some(store),
            Backing::Postgres { .. } => None,
        }
    }

    /// The node id the engine makes ids with: the configured one, or on PostgreSQL the one
    /// claimed; `tool_node` for a tool on the embedded store.
    pub fn node_id(&self, config: &Config, tool_node: Option<u16>) -> u16 {
        match self {
            Backing::Sqlite { .. } => tool_node.unwrap_or(config.node_id),
            Backing::Postgres { claim, .. } => claim.id(),
        }
    }

    /// The cluster's runtime on NATS, when this is a node of one.
    pub fn runtime(&self) -> Option<&NatsRuntime> {
        match self {
            Backing::Postgres { runtime, .. } => runtime.as_ref(),
            Backing::Sqlite { .. } => None,
        }
    }

    /// Commit what is queued and stop writing; send what waits for NATS.
    pub async fn close(&self) {
        self.store().close().await;
        if let Some(r) = self.runtime() {
            r.flush().await;
        }
    }
}
