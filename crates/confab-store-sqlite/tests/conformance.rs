//! The SQLite store against the shared store conformance suite, on real database files; and
//! what only a file-backed store has: durability across reopening, and several handles (a
//! server and `confab app create`) writing to one data directory.

use std::sync::Arc;

use confab_engine::limits::Limits;
use confab_engine::model::*;
use confab_engine::query::{HistoryQuery, HistoryScope};
use confab_engine::{AppStore, BlobStore, ConversationStore, Error, MessageStore, Store};
use confab_store_conformance::fresh_id;
use confab_store_sqlite::{FileBlobs, SqliteStore};
use tempfile::TempDir;

/// A store over a fresh data directory, with the directory (removed when dropped).
async fn open_store() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open the store");
    (Arc::new(store), dir)
}

/// Blobs as files in a fresh directory, with the directory.
async fn open_blobs() -> (Arc<dyn BlobStore>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (Arc::new(FileBlobs::in_data_dir(dir.path())), dir)
}

/// The whole suite on one store, one check after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_store() {
    let (store, dir) = open_store().await;
    let blobs = Arc::new(FileBlobs::in_data_dir(dir.path()));
    confab_store_conformance::run_all(store, blobs).await;
}

/// Each check as a test of its own, on a store of its own.
mod each {
    confab_store_conformance::conformance_tests!(super::open_store, super::open_blobs);
}

fn app(name: &str) -> App {
    let id = fresh_id();
    App {
        id,
        name: format!("{name}-{id}"),
        plan: Plan::Standard,
        created_at: 1,
        keys: AppKeys {
            leancloud: LeanCloudKeys { app_id: format!("lc{id}"), app_key: "k".into(), master_key: "m".into(), hook_key: "h".into() },
            easemob: EasemobKeys { org_name: format!("org{id}"), app_name: "a".into(), client_id: "c".into(), client_secret: "s".into() },
            maxim: MaximKeys { app_id: format!("mx{id}"), admin_token: "t".into() },
        },
        limit_overrides: Attrs::new(),
        limits: Limits::default(),
    }
}

fn conv(app: &App) -> Conversation {
    Conversation::new(app.id, fresh_id(), ConvKind::Normal, Some("c".into()), 1)
}

fn msg(app: &App, conv: i64, n: i64) -> Message {
    Message { mtype: MessageType::TEXT, ..Message::new(app.id, fresh_id(), conv, "u1", 1_000 + n, Content::Text(format!("m{n}"))) }
}

async fn close(store: SqliteStore) {
    tokio::task::spawn_blocking(move || store.close()).await.expect("close");
}

/// What a handle has committed is there after closing and reopening the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let a = app("durable");
    let c = conv(&a);
    let (m1, m2);
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.create_app(&a).await.unwrap();
        store.create_conversation(&c, &[Member::new(c.id, "u1", Role::Owner, 1)]).await.unwrap();
        m1 = store.insert_message(&msg(&a, c.id, 1)).await.unwrap();
        m2 = store.insert_message(&msg(&a, c.id, 2)).await.unwrap();
        close(store).await;
    }
    // and also without an explicit close: dropping the handle commits what it acknowledged
    let m3;
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        m3 = store.insert_message(&msg(&a, c.id, 3)).await.unwrap();
        assert_eq!(m3.seq, 3);
        drop(store);
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let found = store.find_app(&AppLookup::Name(a.name.clone())).await.unwrap().expect("the app survives");
    assert_eq!(found.id, a.id);
    let got = store.get_conversation(a.id, c.id).await.unwrap().expect("the conversation survives");
    assert_eq!((got.last_seq, got.last_message_at), (3, Some(m3.timestamp)));
    assert_eq!(store.get_message(a.id, m1.id).await.unwrap(), Some(m1));
    assert_eq!(store.get_message(a.id, m2.id).await.unwrap(), Some(m2));
    assert_eq!(store.get_member(a.id, c.id, "u1").await.unwrap().map(|m| m.role), Some(Role::Owner));
    assert_eq!(store.insert_message(&msg(&a, c.id, 4)).await.unwrap().seq, 4, "the sequence continues");
    close(store).await;
}

/// Two handles on one directory (a running server and `confab app create`) both write, see each
/// other's writes, and never hand out one sequence number twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let cli = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let a = app("server");
    server.create_app(&a).await.unwrap();
    let c = conv(&a);
    server.create_conversation(&c, &[]).await.unwrap();

    // the server takes messages while the other handle creates apps and also writes messages
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (store, a) = (if i % 2 == 0 { server.clone() } else { cli.clone() }, a.clone());
        let m = msg(&a, c.id, i);
        tasks.spawn(async move { store.insert_message(&m).await.map(|m| m.seq) });
    }
    let made: Vec<App> = (0..10).map(|_| app("cli")).collect();
    for new in &made {
        let cli = cli.clone();
        let new = new.clone();
        tasks.spawn(async move { cli.create_app(&new).await.map(|_| 0) });
    }
    let mut seqs = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let seq = r.expect("task").expect("every write succeeds");
        if seq > 0 {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>(), "one sequence across handles");

    // each sees the other's writes
    for new in &made {
        let found = server.find_app(&AppLookup::LeanCloud(new.keys.leancloud.app_id.clone())).await.unwrap();
        assert_eq!(found.map(|f| f.id), Some(new.id), "the server sees an app the other handle made");
    }
    let q = HistoryQuery { scope: HistoryScope::Conv(c.id), older_than: None, newer_than: None, ascending: true, limit: 100, mtype: None };
    assert_eq!(cli.history(a.id, &q).await.unwrap().len(), 60);
    assert_eq!(server.get_conversation(a.id, c.id).await.unwrap().unwrap().last_seq, 60);
    // a name taken through one handle is refused through the other
    let mut dup = app("dup");
    dup.name = made[0].name.clone();
    assert!(matches!(server.create_app(&dup).await, Err(Error::Invalid(_))));

    let (server, cli) = (Arc::try_unwrap(server).ok().unwrap(), Arc::try_unwrap(cli).ok().unwrap());
    close(cli).await;
    close(server).await;
}
