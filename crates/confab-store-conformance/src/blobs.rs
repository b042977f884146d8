//! The bytes of uploaded files: [`BlobStore`]. Needs nothing else (an app is only its id here).

use crate::*;

/// Run this module's checks on one blob store.
pub async fn run(store: Arc<dyn BlobStore>) {
    blobs(store).await;
}

/// Blobs round-trip byte for byte, per app; deleting is reported once.
pub async fn blobs(store: Arc<dyn BlobStore>) {
    let (app, other) = (fresh_id(), fresh_id());
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    store.put_blob(app, "file-1_A", bytes.clone()).await.expect("put_blob");
    assert_eq!(store.get_blob(app, "file-1_A").await.unwrap(), Some(bytes.clone()));
    assert_eq!(store.get_blob(other, "file-1_A").await.unwrap(), None, "per app");
    assert_eq!(store.get_blob(app, "missing").await.unwrap(), None);
    store.put_blob(app, "file-1_A", vec![1, 2, 3]).await.unwrap();
    assert_eq!(store.get_blob(app, "file-1_A").await.unwrap(), Some(vec![1, 2, 3]), "a put replaces");
    store.put_blob(app, "empty", vec![]).await.unwrap();
    assert_eq!(store.get_blob(app, "empty").await.unwrap(), Some(vec![]));
    assert!(store.delete_blob(app, "file-1_A").await.unwrap());
    assert!(!store.delete_blob(app, "file-1_A").await.unwrap());
    assert_eq!(store.get_blob(app, "file-1_A").await.unwrap(), None);
    assert!(store.put_blob(app, "../escape", vec![1]).await.is_err(), "ids cannot name other paths");
}
