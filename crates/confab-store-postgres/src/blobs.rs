//! Blobs, the bytes of uploaded files, in the shared database (`blobs` table): [`BlobStore`].
//!
//! **Why in the database.** A single node keeps its blobs as files beside SQLite; a cluster
//! cannot, since a file uploaded through one node is downloaded through any other. In the
//! database every node reaches them over the connection it already has, one backup (and one
//! restore) holds the blobs with the records that name them, and there is no object store (S3
//! or the like) to run, secure and back up beside PostgreSQL.
//!
//! **What it costs.** Blobs are `BYTEA`: each is read and written whole, through the server's
//! memory and the connection, and counts in the database's size, its WAL and its backups. That
//! is bearable because blobs are bounded: Easemob's upload limit (`em_file_max_bytes` in
//! `confab_engine::limits`, 10 MB by default; requests past 100 MB are not even read) keeps each
//! far below `BYTEA`'s 1 GB. They are not bounded in number: a chat file's record expires (an
//! entry with an expiry) but its bytes stay until deleted, here as in the file store. Should
//! an app keep large files in bulk, an object store behind this trait is the way.
//!
//! Ids are checked as the file store checks them (`check_blob_id`): the same ids are valid in
//! both, whatever holds the bytes.

use async_trait::async_trait;
use confab_engine::entries::check_blob_id;
use confab_engine::store::BlobStore;
use confab_engine::Result;
use deadpool_postgres::Pool;

use crate::{pg_err, Conn};

/// Blobs in the `blobs` table, on the store's pool.
#[derive(Clone)]
pub struct PgBlobs {
    pool: Pool,
}

impl PgBlobs {
    pub(crate) fn new(pool: Pool) -> PgBlobs {
        PgBlobs { pool }
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pg_err)
    }
}

#[async_trait]
impl BlobStore for PgBlobs {
    /// One statement: a reader sees the old bytes or the new, never part of them.
    async fn put_blob(&self, app: i64, id: &str, bytes: Vec<u8>) -> Result<()> {
        check_blob_id(id)?;
        self.client()
            .await?
            .exec(
                "INSERT INTO blobs (app, id, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (app, id) DO UPDATE SET bytes = excluded.bytes",
                &[&app, &id, &bytes],
            )
            .await
            .map(drop)
    }

    async fn get_blob(&self, app: i64, id: &str) -> Result<Option<Vec<u8>>> {
        check_blob_id(id)?;
        let row = self.client().await?.row("SELECT bytes FROM blobs WHERE app = $1 AND id = $2", &[&app, &id]).await?;
        row.map(|r| r.try_get(0).map_err(pg_err)).transpose()
    }

    async fn delete_blob(&self, app: i64, id: &str) -> Result<bool> {
        check_blob_id(id)?;
        let n = self.client().await?.exec("DELETE FROM blobs WHERE app = $1 AND id = $2", &[&app, &id]).await?;
        Ok(n > 0)
    }
}
