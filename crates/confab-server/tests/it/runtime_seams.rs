//! The node runtime's seams (`confab_engine::runtime`): two engines over one store — two nodes —
//! see each other's revocations and settings at once when they share an `Invalidation`, and
//! run a call once when they share a `Dedup`, and count rates and failed logins together when
//! they share a `RateLimiter` and a `LoginBackoff`; with their own, each keeps its cache.

use std::sync::Arc;

use confab_engine::limits::{bucket, LocalRateLimiter, RateLimiter};
use confab_engine::model::{AppLookup, Plan, TokenKind};
use confab_engine::password::{LocalLoginBackoff, LoginBackoff};
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

    let app = a.apps().create_app(NewApp { name: "two-nodes".into(), ..Default::default() }).await.unwrap();
    let t = a.users().issue_token(&app, Some("tom"), TokenKind::EasemobUser, None).await.unwrap();
    // each node reads the token once and trusts it for a while
    for n in [&a, &loner] {
        assert!(n.users().check_token(&app, &t.token, TokenKind::EasemobUser).await.unwrap().is_some());
    }
    b.users().revoke_token(&t.token).await.unwrap();
    assert!(a.users().check_token(&app, &t.token, TokenKind::EasemobUser).await.unwrap().is_none(), "B's revocation reached A at once");
    assert!(
        loner.users().check_token(&app, &t.token, TokenKind::EasemobUser).await.unwrap().is_some(),
        "a node that does not share the invalidation trusts its cache until it ages out"
    );

    // settings
    let by_name = AppLookup::Name(app.name.clone());
    assert_eq!(a.apps().find_app(&by_name).await.unwrap().unwrap().limits.message_max_bytes, 5120);
    b.apps().set_app_settings(&app.name, &[("message_max_bytes", "300")]).await.unwrap();
    assert_eq!(a.apps().find_app(&by_name).await.unwrap().unwrap().limits.message_max_bytes, 300, "B's change reached A at once");
    store.close();
}

#[tokio::test]
async fn nodes_sharing_a_dedup_run_a_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let dedup: Arc<dyn Dedup> = Arc::new(LocalDedup::default());
    let a = node(&store, dir.path(), 1, dedup.clone(), Arc::new(LocalInvalidation::default()));
    let b = node(&store, dir.path(), 2, dedup, Arc::new(LocalInvalidation::default()));
    let app = a.apps().create_app(NewApp { name: "dedup".into(), ..Default::default() }).await.unwrap();
    let first = a.apps().once(&app, "tx-1".into(), || async { Ok(json!({"id": 1})) }).await.unwrap();
    let again = b.apps().once(&app, "tx-1".into(), || async { Ok(json!({"id": 2})) }).await.unwrap();
    assert_eq!((first, again), (json!({"id": 1}), json!({"id": 1})), "the second node got the first one's result");
    store.close();
}

#[tokio::test]
async fn nodes_sharing_limiters_count_rates_and_failed_logins_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (rates, backoff): (Arc<dyn RateLimiter>, Arc<dyn LoginBackoff>) =
        (Arc::new(LocalRateLimiter::default()), Arc::new(LocalLoginBackoff::default()));
    let shared = |n| node(&store, dir.path(), n, Arc::new(LocalDedup::default()), Arc::new(LocalInvalidation::default()));
    let a = shared(1).with_limiters(rates.clone(), backoff.clone());
    let b = shared(2).with_limiters(rates, backoff);
    let loner = shared(3);
    let app = a.apps().create_app(NewApp { name: "limits".into(), plan: Plan::Dev, ..Default::default() }).await.unwrap();

    // LeanCloud broadcasts on the development tier: one a minute, for the app, whichever node
    a.apps().rate_check(&app, bucket::LC_BROADCAST).await.unwrap();
    let limited = |r: confab_engine::Result<()>| matches!(r, Err(confab_engine::Error::RateLimited { .. }));
    assert!(limited(b.apps().rate_check(&app, bucket::LC_BROADCAST).await), "B counts A's call");
    loner.apps().rate_check(&app, bucket::LC_BROADCAST).await.expect("a node with its own counters does not");

    // five failed logins for a name on A: the sixth waits, on B too
    for _ in 0..5 {
        assert!(matches!(a.users().check_password(&app, "nobody", "pw", None).await, Err(confab_engine::Error::UserNotFound(_))));
    }
    assert!(limited(b.users().check_password(&app, "nobody", "pw", None).await.map(|_| ())), "B backs off for A's failures");
    assert!(!limited(loner.users().check_password(&app, "nobody", "pw", None).await.map(|_| ())));
    store.close();
}
