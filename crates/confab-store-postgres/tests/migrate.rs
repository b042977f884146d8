//! The schema against a real PostgreSQL: `CONFAB_TEST_DATABASE_URL` names a server (any database
//! on it; CI sets it, `.ci/run`); each test makes a database of its own and drops it after.
//! Without the variable these tests have nothing to run against: they say so, and fail when
//! `CONFAB_REQUIRE_POSTGRES` is set (as CI sets it), so that a missing server never passes
//! silently there.

use std::sync::Arc;

use confab_store_postgres::{schema, PgStore};
use tokio_postgres::NoTls;

/// A database of its own on the test server, dropped when this is.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> Option<TestDb> {
        let Ok(admin) = std::env::var("CONFAB_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CONFAB_REQUIRE_POSTGRES").is_none(),
                "CONFAB_REQUIRE_POSTGRES is set but CONFAB_TEST_DATABASE_URL is not"
            );
            eprintln!("CONFAB_TEST_DATABASE_URL is not set: no PostgreSQL to test against");
            return None;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        let name = format!("confab_test_{}_{}", std::process::id(), nanos % 1_000_000_000_000);
        let client = connect(&admin).await;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
        let mut config: tokio_postgres::Config = admin.parse().expect("CONFAB_TEST_DATABASE_URL");
        config.dbname(&name);
        let url = url_of(&config);
        Some(TestDb { admin, name, url })
    }
}

impl Drop for TestDb {
    /// Dropped even when the test fails (on a thread of its own: a test's runtime may be gone).
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let client = connect(&admin).await;
                client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect to CONFAB_TEST_DATABASE_URL");
    tokio::spawn(conn);
    client
}

/// A URL for `config` (host, port, user and database; the test server trusts local connections).
fn url_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

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
    for s in &stores {
        assert_eq!(s.schema_version().await.expect("version"), schema::MIGRATIONS.len() as i64);
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
