//! The cluster store: PostgreSQL, the source of truth every node of a cluster shares (issue 13).
//!
//! Being built, domain by domain, until it passes the whole store conformance suite; nothing
//! uses it yet. What stands: the connection pool and the schema, migrated by whichever node
//! starts first (`schema.rs`).
//!
//! **Driver**: `tokio-postgres`, pooled by `deadpool-postgres`. The store builds its SQL at run
//! time (the engine's queries and filters are data, as in the embedded store's `Builder`), so
//! compile-time checked queries (sqlx's macros) would check little and cost a database at build
//! time; tokio-postgres is the driver sqlx and others build on, pipelines the statements of one
//! connection, and prepares and caches statements per connection through the pool.

#![forbid(unsafe_code)]

pub mod schema;

use confab_engine::{Error, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// Connections a node keeps to the database, at most.
pub const DEFAULT_POOL_SIZE: usize = 16;

pub(crate) fn pg_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("postgres: {e}"))
}

/// The store on one PostgreSQL database.
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host:port/db`) with at most `pool_size` connections and
    /// bring the schema up to date (`schema::migrate`).
    pub async fn connect(url: &str, pool_size: usize) -> Result<PgStore> {
        let config: tokio_postgres::Config = url.parse().map_err(pg_err)?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(pool_size.max(1)).build().map_err(pg_err)?;
        let mut client = pool.get().await.map_err(pg_err)?;
        schema::migrate(&mut client).await.map_err(pg_err)?;
        Ok(PgStore { pool })
    }

    /// The version the schema is at (the number of migrations applied).
    pub async fn schema_version(&self) -> Result<i64> {
        let client = self.pool.get().await.map_err(pg_err)?;
        let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM confab_schema", &[]).await.map_err(pg_err)?;
        Ok(row.get(0))
    }
}
