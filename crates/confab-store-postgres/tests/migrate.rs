//! The schema against a real PostgreSQL: `CONFAB_TEST_DATABASE_URL` names a server (any database
//! on it; CI sets it, `.ci/run`); each test makes a database of its own and drops it after.
//! Without the variable these tests have nothing to run against: they say so, and fail when
//! `CONFAB_REQUIRE_POSTGRES` is set (as CI sets it), so that a missing server never passes
//! silently there.

use std::sync::Arc;

use confab_store_postgres::{schema, PgStore};

use confab_store_postgres::test_db::{connect, TestDb};

const TABLES: &[&str] = &[
    "apps",
    "users",
    "tokens",
    "conversations",
    "members",
    "messages",
    "message_users",
    "broadcasts",
    "notices",
    "conv_blocks",
    "entries",
    "outbox",
    "hook_stats",
    "blobs",
    "cluster",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_migrate_the_schema_once() {
    let Some(db) = TestDb::new().await else { return };
    let url = Arc::new(db.url.clone());
    // four nodes start at once on a new database
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        starts.push(tokio::spawn(async move { PgStore::connect(&url, 2).await }));
    }
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.expect("join").expect("every node starts"));
    }
    let cluster = stores[0].cluster_id().await.expect("the cluster's id");
    assert_eq!(cluster.len(), 16, "{cluster}");
    for s in &stores {
        assert_eq!(s.schema_version().await.expect("version"), schema::MIGRATIONS.len() as i64);
        assert_eq!(s.cluster_id().await.expect("id"), cluster, "one id for the cluster");
    }
    let client = connect(&db.url).await;
    let applied: i64 = client.query_one("SELECT COUNT(*) FROM confab_schema", &[]).await.expect("count").get(0);
    assert_eq!(applied, schema::MIGRATIONS.len() as i64, "each migration ran once");
    for t in TABLES {
        let found: i64 = client
            .query_one("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = $1", &[t])
            .await
            .expect("look the table up")
            .get(0);
        assert_eq!(found, 1, "table {t}");
    }
    // a node starting later finds nothing to do
    let later = PgStore::connect(&db.url, 1).await.expect("a later node starts");
    assert_eq!(later.schema_version().await.expect("version"), schema::MIGRATIONS.len() as i64);
    let applied: i64 = client.query_one("SELECT COUNT(*) FROM confab_schema", &[]).await.expect("count").get(0);
    assert_eq!(applied, schema::MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn a_bad_address_is_an_error_not_a_hang() {
    // nothing listens on port 1; the store says so
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/none", 1).await.err().expect("no server there");
    assert!(err.to_string().contains("postgres"), "{err}");
    let err = PgStore::connect("not a url", 1).await.err().expect("not a url");
    assert!(err.to_string().contains("postgres"), "{err}");
}
