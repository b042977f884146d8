//! A database of its own for each test (this crate's and the server's integration tests), on the server `CONFAB_TEST_DATABASE_URL` names (any
//! database on it; CI sets it, `.ci/run`). Without the variable the tests have nothing to run
//! against: they say so, and fail when `CONFAB_REQUIRE_POSTGRES` is set (as CI sets it), so that a
//! missing server never passes silently there.

use tokio_postgres::NoTls;

/// A database of its own on the test server, dropped when this is.
pub struct TestDb {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> Option<TestDb> {
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

pub async fn connect(url: &str) -> tokio_postgres::Client {
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
