//! Blobs, the bytes of uploaded files, as local files: `<data dir>/blobs/<app>/<id>`, each written
//! to a temporary name, synced and renamed into place (`BlobStore`). Not SQLite: the engine holds
//! it as a handle of its own, beside the store.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use confab_engine::entries::check_blob_id;
use confab_engine::store::BlobStore;
use confab_engine::{Error, Result};

/// Directory of the blobs inside the data directory.
pub const BLOB_DIR: &str = "blobs";

/// Blobs as files under one directory.
#[derive(Clone, Debug)]
pub struct FileBlobs {
    root: PathBuf,
}

impl FileBlobs {
    /// Blobs under `root` (created when the first is written).
    pub fn new(root: impl Into<PathBuf>) -> FileBlobs {
        FileBlobs { root: root.into() }
    }

    /// The blobs of a data directory: `<dir>/blobs`.
    pub fn in_data_dir(dir: &Path) -> FileBlobs {
        FileBlobs::new(dir.join(BLOB_DIR))
    }
}

#[async_trait]
impl BlobStore for FileBlobs {
    async fn put_blob(&self, app: i64, id: &str, bytes: Vec<u8>) -> Result<()> {
        put_blob(self.root.clone(), app, id.to_string(), bytes).await
    }

    async fn get_blob(&self, app: i64, id: &str) -> Result<Option<Vec<u8>>> {
        get_blob(self.root.clone(), app, id.to_string()).await
    }

    async fn delete_blob(&self, app: i64, id: &str) -> Result<bool> {
        delete_blob(self.root.clone(), app, id.to_string()).await
    }
}

/// Where an app's blobs live.
fn blob_path(root: &Path, app: i64, id: &str) -> Result<PathBuf> {
    check_blob_id(id)?;
    Ok(root.join(app.to_string()).join(id))
}

fn io_err(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("{what} {}: {e}", p.display()))
}

/// Write a blob durably: to a temporary name, synced, then renamed into place.
async fn put_blob(root: PathBuf, app: i64, id: String, bytes: Vec<u8>) -> Result<()> {
    let path = blob_path(&root, app, &id)?;
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let dir = path.parent().unwrap_or(&root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        let tmp = dir.join(format!(".{id}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| io_err("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err("cannot rename", &path, e))
    })
    .await
    .map_err(Error::internal)?
}

async fn get_blob(root: PathBuf, app: i64, id: String) -> Result<Option<Vec<u8>>> {
    let path = blob_path(&root, app, &id)?;
    tokio::task::spawn_blocking(move || match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("cannot read", &path, e)),
    })
    .await
    .map_err(Error::internal)?
}

async fn delete_blob(root: PathBuf, app: i64, id: String) -> Result<bool> {
    let path = blob_path(&root, app, &id)?;
    tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("cannot delete", &path, e)),
    })
    .await
    .map_err(Error::internal)?
}
