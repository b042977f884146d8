//! Blobs, the bytes of uploaded files, in the shared database: every node reaches them.

use async_trait::async_trait;
use confab_engine::store::BlobStore;
use confab_engine::Result;
use deadpool_postgres::Pool;

/// Blobs in the `blobs` table.
#[derive(Clone)]
pub struct PgBlobs {
    #[allow(dead_code)]
    pool: Pool,
}

impl PgBlobs {
    pub(crate) fn new(pool: Pool) -> PgBlobs {
        PgBlobs { pool }
    }
}

#[async_trait]
impl BlobStore for PgBlobs {
    async fn put_blob(&self, _app: i64, _id: &str, _bytes: Vec<u8>) -> Result<()> {
        unimplemented!("BlobStore")
    }
    async fn get_blob(&self, _app: i64, _id: &str) -> Result<Option<Vec<u8>>> {
        unimplemented!("BlobStore")
    }
    async fn delete_blob(&self, _app: i64, _id: &str) -> Result<bool> {
        unimplemented!("BlobStore")
    }
}
