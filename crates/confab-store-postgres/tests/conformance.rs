//! The PostgreSQL store against the shared store conformance suite, each check on a database of
//! its own (`test_db::TestDb`), and the whole suite on one.

use std::sync::Arc;

use confab_engine::{BlobStore, Store};
use confab_store_postgres::PgStore;

use confab_store_postgres::test_db::TestDb;

async fn open_pg() -> Option<(PgStore, TestDb)> {
    let db = TestDb::new().await?;
    let store = PgStore::connect(&db.url, 8).await.expect("connect to the test database");
    Some((store, db))
}

async fn open_store() -> Option<(Arc<dyn Store>, TestDb)> {
    let (store, db) = open_pg().await?;
    Some((Arc::new(store), db))
}

async fn open_blobs() -> Option<(Arc<dyn BlobStore>, TestDb)> {
    let (store, db) = open_pg().await?;
    Some((Arc::new(store.blobs()), db))
}

/// The whole suite on one store, one check after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_store() {
    let Some((store, db)) = open_pg().await else { return };
    let blobs = Arc::new(store.blobs());
    confab_store_conformance::run_all(Arc::new(store), blobs).await;
    drop(db);
}

mod apps {
    confab_store_conformance::conformance_tests!(apps: super::open_store);
}
mod users {
    confab_store_conformance::conformance_tests!(users: super::open_store);
}
mod conversations {
    confab_store_conformance::conformance_tests!(conversations: super::open_store);
}
mod messages {
    confab_store_conformance::conformance_tests!(messages: super::open_store);
}
mod imports {
    confab_store_conformance::conformance_tests!(imports: super::open_store);
}
mod entries {
    confab_store_conformance::conformance_tests!(entries: super::open_store);
}
mod outbox {
    confab_store_conformance::conformance_tests!(outbox: super::open_store);
}
mod blobs {
    confab_store_conformance::conformance_tests!(blobs: super::open_blobs);
}
