//! The node runtime's seams (`confab_engine::runtime`): two engines over one store — two nodes —
//! see each other's revocations and settings at once when they share an `Invalidation`, and
//! run a call once when they share a `Dedup`; with their own, each keeps its cache.

use std::sync::Arc;

use confab_engine::model::{AppLookup, TokenKind};
use confab_engine::runtime::{Dedup, Invalidation, LocalDedup, LocalInvalidation};
use confab_engine::{Engine, NewApp};
use confab_store_sqlite::SqliteStore;
use serde_json::json;

fn node(store: &Arc<SqliteStore>, blobs: &std::path::Path, n: u16, dedup: Arc<dyn Dedup>, inv: Arc<dyn Invalidation>) -> Engine {
    let blobs = Arc::new(confab_store_sqlite::FileBlobs::new(blobs));
    let (bus, presence) = (confab_engine::bus::LocalBus::default(), confab_engine::presence::LocalPresence::default());
    Engine::new(store.clone(), blobs, Arc::new(bus), Arc::new(presence), n).with_runtime(dedup, inv)
}

#[tokio::test]
async fn nodes_sharing_an_invalidation_see_revocations_and_settings_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let shared: Arc<dyn Invalidation> = Arc::new(LocalInvalidation::default());
    let a = node(&store, dir.path(), 1, Arc::new(LocalDedup::default()), shared.clone());
    let b = node(&store, dir.path(), 2, Arc::new(LocalDedup::default()), shared);
    let loner = node(&store, dir.path(), 3, Arc::new(LocalDedup::default()), Arc::new(LocalInvalidation::default()));

    let app = a.create_app(NewApp { name: "two-nodes".into(), ..Default::default() }).await.unwrap();
    let t = a.issue_token(&app, Some("tom"), TokenKind::EasemobUser, None).await.unwrap();
    // each node reads the token once and trusts it for a while
    for n in [&a, &loner] {
        assert!(n.check_token(&app, &t.token, TokenKind::EasemobUser).await.unwrap().is_some());
    }
    b.revoke_token(&t.token).await.unwrap();
    assert!(a.check_token(&app, &t.token, TokenKind::EasemobUser).await.unwrap().is_none(), "B's revocation reached A at once");
    assert!(
        loner.check_token(&app, &t.token, TokenKind::EasemobUser).await.unwrap().is_some(),
        "a node that does not share the invalidation trusts its cache until it ages out"
    );

    // settings
    let by_name = AppLookup::Name(app.name.clone());
    assert_eq!(a.find_app(&by_name).await.unwrap().unwrap().limits.message_max_bytes, 5120);
    b.set_app_settings(&app.name, &[("message_max_bytes", "300")]).await.unwrap();
    assert_eq!(a.find_app(&by_name).await.unwrap().unwrap().limits.message_max_bytes, 300, "B's change reached A at once");
    store.close();
}

#[tokio::test]
async fn nodes_sharing_a_dedup_run_a_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let dedup: Arc<dyn Dedup> = Arc::new(LocalDedup::default());
    let a = node(&store, dir.path(), 1, dedup.clone(), Arc::new(LocalInvalidation::default()));
    let b = node(&store, dir.path(), 2, dedup, Arc::new(LocalInvalidation::default()));
    let app = a.create_app(NewApp { name: "dedup".into(), ..Default::default() }).await.unwrap();
    let first = a.once(&app, "tx-1".into(), || async { Ok(json!({"id": 1})) }).await.unwrap();
    let again = b.once(&app, "tx-1".into(), || async { Ok(json!({"id": 2})) }).await.unwrap();
    assert_eq!((first, again), (json!({"id": 1}), json!({"id": 1})), "the second node got the first one's result");
    store.close();
}
