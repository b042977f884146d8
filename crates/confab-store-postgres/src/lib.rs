//! The cluster store: PostgreSQL, the source of truth every node of a cluster shares (issue 13).
//! Every domain trait of the store seam, one module each (`apps.rs`, `users.rs`,
//! `conversations.rs`, `messages.rs`, `import.rs`, `entries.rs`, `outbox.rs`), as in the embedded
//! store; and [`PgBlobs`], the bytes of uploaded files in the same database, which every node
//! reaches.
//!
//! **Driver**: `tokio-postgres`, pooled by `deadpool-postgres`. The store builds its SQL at run
//! time (the engine's queries and filters are data, as in the embedded store's `Builder`), so
//! compile-time checked queries (sqlx's macros) would check little and cost a database at build
//! time; tokio-postgres is the driver sqlx and others build on, pipelines the statements of one
//! connection, and prepares and caches statements per connection through the pool ([`Conn`]).
//!
//! **Concurrency**: transactions run at `READ COMMITTED`. Where the embedded store relies on its
//! single writer, this store takes the lock that makes the same guarantee across nodes: a
//! conversation's row (`SELECT ... FOR UPDATE`, or the `UPDATE ... RETURNING` that assigns its
//! next sequence number) for what happens inside one conversation; a transaction-scoped advisory
//! lock ([`lock`]) for a count checked against a quota.

#![forbid(unsafe_code)]

mod apps;
mod blobs;
mod conversations;
mod entries;
mod filter;
mod import;
mod lanes;
mod messages;
mod node;
mod outbox;
mod rows;
pub mod schema;
pub mod test_db;
mod unread;
mod users;

use std::sync::atomic::{AtomicBool, Ordering};

#[allow(unused_imports)]
use crate::rows::*;
use async_trait::async_trait;
#[allow(unused_imports)] // what the domain modules share (`use super::*`)
use confab_engine::{
    entries::{Entry, EntryFilter, EntryQuery, EntryStats, Put, PutRule},
    hooks::OutboxItem,
    model::*,
    query::*,
    quotas::Quota,
    store::{
        AppStore, ConvPatch, ConvQuotas, ConversationStore, EntryStore, HookStat, ImportStore, Imported, MemberPatch, MessagePatch,
        MessageStore, NewUser, OutboxStore, Queued, Store, UserStore,
    },
    Error, Result,
};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use crate::blobs::PgBlobs;
pub use crate::node::{NodeClaim, NODE_IDS};

/// Connections a node keeps to the database, at most.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// A failure of the database or the pool, with what the server said: the driver's own text for
/// an error the server sent is only "db error", so its message, detail and code are added.
pub(crate) fn pg_err(e: impl std::error::Error) -> Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    Error::internal(format!("postgres: {text}"))
}

/// A unique or primary key was violated.
pub(crate) fn is_unique(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Parameters of a statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A connection or a transaction, every statement prepared once per connection (the pool's
/// statement cache).
#[async_trait]
pub(crate) trait Conn: GenericClient + Send + Sync {
    /// Execute, keeping the driver's error (to tell a constraint from a failure: [`is_unique`]).
    async fn exec_pg(&self, sql: &str, params: &Params<'_>) -> std::result::Result<u64, tokio_postgres::Error> {
        let st = self.prepare_cached(sql).await?;
        self.execute(&st, params).await
    }
    async fn exec(&self, sql: &str, params: &Params<'_>) -> Result<u64> {
        self.exec_pg(sql, params).await.map_err(pg_err)
    }
    async fn rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let st = self.prepare_cached(sql).await.map_err(pg_err)?;
        self.query(&st, params).await.map_err(pg_err)
    }
    async fn row(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let st = self.prepare_cached(sql).await.map_err(pg_err)?;
        self.query_opt(&st, params).await.map_err(pg_err)
    }
    async fn one(&self, sql: &str, params: &Params<'_>) -> Result<Row> {
        let st = self.prepare_cached(sql).await.map_err(pg_err)?;
        self.query_one(&st, params).await.map_err(pg_err)
    }
}

impl<T: GenericClient + Send + Sync> Conn for T {}

/// Hold a transaction-scoped advisory lock on `(class, key)` until the transaction ends: what
/// serializes, across nodes, the writes that check a count against a quota (the classes are
/// [`LockClass`]).
pub(crate) async fn lock(tx: &impl Conn, class: LockClass, key: i64) -> Result<()> {
    tx.exec("SELECT pg_advisory_xact_lock($1::INT, hashint8($2)::INT)", &[&(class as i32), &key]).await.map(drop)
}

/// What an advisory lock guards (its first key; the second is a hash of an app's or a user's
/// id, or of a collection's name).
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub(crate) enum LockClass {
    /// The users of an app (the users quota).
    Users = 1,
    /// The conversations of an app (the groups and chat-room quotas, a user's groups).
    Conversations = 2,
    /// One keyed collection (its second key: a hash of app, namespace and key; `entries.rs`).
    Entries = 3,
    /// An import into one conversation, which need not exist yet (its second key: a hash of the
    /// conversation's id; `import.rs`).
    Imports = 4,
}

/// The store on one PostgreSQL database.
pub struct PgStore {
    pool: Pool,
    closed: AtomicBool,
    /// The writer lanes of message inserts (`lanes.rs`), which keep their queued order.
    lanes: lanes::Lanes,
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host:port/db`) with at most `pool_size` connections and
    /// bring the schema up to date (`schema::migrate`).
    pub async fn connect(url: &str, pool_size: usize) -> Result<PgStore> {
        let pool = connect_pool(url, pool_size)?;
        let mut client = pool.get().await.map_err(pg_err)?;
        schema::migrate(&mut client).await.map_err(pg_err)?;
        let lanes = lanes::Lanes::start(&pool);
        Ok(PgStore { pool, closed: AtomicBool::new(false), lanes })
    }

    /// The version the schema is at (the number of migrations applied).
    pub async fn schema_version(&self) -> Result<i64> {
        let client = self.client().await?;
        let row = client.one("SELECT COALESCE(MAX(version), 0) FROM confab_schema", &[]).await?;
        Ok(row.get(0))
    }

    /// The id of the cluster this database serves (made when the schema was): the namespace of
    /// its NATS subjects and buckets.
    pub async fn cluster_id(&self) -> Result<String> {
        let row = self.client().await?.one("SELECT id FROM cluster", &[]).await?;
        rows::get(&row, 0)
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pg_err)
    }

    /// A connection for a write: refused once the store is closed.
    pub(crate) async fn writer(&self) -> Result<deadpool_postgres::Client> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::internal("postgres: the store is closed"));
        }
        self.client().await
    }

    /// The pool, for the blobs that share it.
    pub fn blobs(&self) -> PgBlobs {
        PgBlobs::new(self.pool.clone())
    }
}

fn connect_pool(url: &str, pool_size: usize) -> Result<Pool> {
    let config: tokio_postgres::Config = url.parse().map_err(pg_err)?;
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(pool_size.max(1)).build().map_err(pg_err)
}

#[async_trait]
impl Store for PgStore {
    /// Refuse writes from now on, then wait until the message inserts queued are committed.
    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.lanes.close().await;
    }
}
