//! Files: the bytes of uploaded files, kept in the `BlobStore` by (app, id).

use std::sync::Arc;

use crate::entries::check_blob_id;
use crate::error::Result;
use crate::model::App;
use crate::store::BlobStore;

/// The files service. It holds the `BlobStore`.
pub struct Files {
    pub(crate) blobs: Arc<dyn BlobStore>,
}

impl Files {
    /// Keep the bytes of a file under `id` (1–64 of `[A-Za-z0-9_-]`).
    pub async fn put_blob(&self, app: &App, id: &str, bytes: Vec<u8>) -> Result<()> {
        check_blob_id(id)?;
        self.blobs.put_blob(app.id, id, bytes).await
    }

    /// The bytes kept under `id`; None for an unknown (or malformed) id.
    pub async fn blob(&self, app: &App, id: &str) -> Result<Option<Vec<u8>>> {
        if check_blob_id(id).is_err() {
            return Ok(None);
        }
        self.blobs.get_blob(app.id, id).await
    }

    pub async fn delete_blob(&self, app: &App, id: &str) -> Result<bool> {
        if check_blob_id(id).is_err() {
            return Ok(false);
        }
        self.blobs.delete_blob(app.id, id).await
    }
}
