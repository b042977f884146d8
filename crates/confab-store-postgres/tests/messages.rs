//! Messages on a real PostgreSQL, beyond the conformance suite: several nodes inserting into the
//! same conversations at once, an insert that fails inside a group commit, `close` with inserts
//! queued, and cursors moved by several nodes at once.

use std::sync::Arc;

use confab_engine::hooks::OutboxItem;
use confab_engine::model::{Content, ConvKind, Conversation, Cursor, Member, Message, Role};
use confab_engine::query::{HistoryQuery, HistoryScope};
use confab_engine::{ConversationStore, MessageStore, Store};
use confab_store_postgres::PgStore;
use serde_json::json;

use confab_store_postgres::test_db::TestDb;

const APP: i64 = 1;
const T0: i64 = 1_700_000_000_000;

fn conv(id: i64) -> Conversation {
    Conversation::new(APP, id, ConvKind::Normal, Some(format!("c{id}")), T0)
}

fn msg(id: i64, conv: i64, ts: i64) -> Message {
    Message::new(APP, id, conv, "u1", ts, Content::Text(format!("m{id}")))
}

/// Stores standing for nodes: each its own pool (and its own writer lanes) on the same database.
async fn nodes(db: &TestDb, n: usize) -> Vec<Arc<PgStore>> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(Arc::new(PgStore::connect(&db.url, 6).await.expect("connect")));
    }
    stores
}

/// Create conversations `1..=n` with member `u1` (and `me`).
async fn conversations(store: &PgStore, n: i64) {
    for id in 1..=n {
        let members = [Member::new(id, "u1", Role::Owner, T0), Member::new(id, "me", Role::Member, T0)];
        store.create_conversation(&conv(id), &members).await.expect("create_conversation");
    }
}

/// A conversation's history, oldest first.
async fn history(store: &PgStore, conv: i64) -> Vec<Message> {
    let q =
        HistoryQuery { scope: HistoryScope::Conv(conv), older_than: None, newer_than: None, ascending: true, limit: 10_000, mtype: None };
    store.history(APP, &q).await.expect("history")
}

/// Many inserts from several nodes at once into the same conversations, more of them than lanes
/// (so a group holds several conversations), each node going through them in its own order:
/// none fails (no deadlock between the nodes' group commits), and each conversation is numbered
/// 1, 2, 3… with no gaps, its timestamps never decreasing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_nodes_number_shared_conversations_without_gaps() {
    let Some(db) = TestDb::new().await else { return };
    let stores = nodes(&db, 3).await;
    let (convs, rounds) = (9i64, 15i64);
    conversations(&stores[0], convs).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, store) in stores.iter().enumerate() {
        let store = store.clone();
        let n = n as i64;
        tasks.spawn(async move {
            // every insert queued at once: large groups, the conversations in this node's order
            let mut order: Vec<i64> = (1..=convs).map(|c| (c + n * 4) % convs + 1).collect();
            if n % 2 == 1 {
                order.reverse();
            }
            let mut queued = Vec::new();
            for r in 0..rounds {
                for &c in &order {
                    let id = 10_000 * (n + 1) + 100 * r + c;
                    queued.push(store.queue_message_with(&msg(id, c, T0 + (id * 7919) % 1000), &[]));
                }
            }
            for q in queued {
                q.await.expect("a queued insert");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    let each = rounds * stores.len() as i64;
    for id in 1..=convs {
        let hist = history(&stores[1], id).await;
        assert_eq!(hist.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=each).collect::<Vec<_>>(), "conversation {id}: no gaps");
        assert!(hist.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "conversation {id}: timestamps never decrease");
        let c = stores[2].get_conversation(APP, id).await.expect("get").expect("conversation");
        assert_eq!((c.last_seq, c.last_message_at), (each, hist.last().map(|m| m.timestamp)));
    }
    drop(stores);
    drop(db);
}

/// Inserts queued together commit as one group; one that fails (its id is taken) fails alone:
/// the others are stored, numbered as if it had not been queued, and its outbox items are not
/// kept while theirs are.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_insert_fails_alone_in_its_group() {
    let Some(db) = TestDb::new().await else { return };
    let store = PgStore::connect(&db.url, 4).await.expect("connect");
    conversations(&store, 1).await;
    let item = |id: i64, name: &str| OutboxItem { id, app: APP, next_at: T0, created_at: T0, ..OutboxItem::new("test", name, json!({})) };
    // queued before the lane runs (one thread): one group
    let queued: Vec<_> = (0..10i64)
        .map(|i| {
            let id = if i == 4 { 100 } else { 100 + i };
            store.queue_message_with(&msg(id, 1, T0 + i), &[item(500 + i, &format!("o{i}"))])
        })
        .collect();
    let mut outcomes = Vec::new();
    for q in queued {
        outcomes.push(q.await);
    }
    assert!(outcomes[4].is_err(), "the insert whose id is taken fails");
    let seqs: Vec<i64> = outcomes.iter().filter_map(|o| o.as_ref().ok()).map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>(), "the others are numbered in their order, with no gap for the failed one");
    assert_eq!(history(&store, 1).await.len(), 9);
    let client = confab_store_postgres::test_db::connect(&db.url).await;
    let kept: Vec<String> =
        client.query("SELECT name FROM outbox ORDER BY id", &[]).await.expect("outbox").iter().map(|r| r.get(0)).collect();
    assert_eq!(kept, ["o0", "o1", "o2", "o3", "o5", "o6", "o7", "o8", "o9"], "the failed insert's outbox items are not kept");
    drop(store);
    drop(db);
}

/// `close` commits what is queued before it returns; an insert queued after it fails.
#[tokio::test(flavor = "current_thread")]
async fn close_commits_what_is_queued() {
    let Some(db) = TestDb::new().await else { return };
    let store = PgStore::connect(&db.url, 4).await.expect("connect");
    conversations(&store, 3).await;
    let queued: Vec<_> = (0..30i64).map(|i| store.queue_message_with(&msg(100 + i, i % 3 + 1, T0 + i), &[])).collect();
    store.close().await;
    for id in 1..=3 {
        assert_eq!(history(&store, id).await.len(), 10, "conversation {id}: committed before close returned");
    }
    for q in queued {
        q.await.expect("a queued insert");
    }
    assert!(store.insert_message(&msg(200, 1, T0)).await.is_err(), "an insert after close fails");
    store.close().await;
    drop(store);
    drop(db);
}

/// Cursors moved by several nodes at once end at the highest position asked for, and every
/// move reports a range that starts where the cursor was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cursors_moved_at_once_never_go_back() {
    let Some(db) = TestDb::new().await else { return };
    let stores = nodes(&db, 3).await;
    conversations(&stores[0], 1).await;
    for i in 0..60i64 {
        stores[0].insert_message(&msg(100 + i, 1, T0 + i)).await.expect("insert");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..48i64 {
        let store = stores[i as usize % stores.len()].clone();
        let to = (i * 37) % 60 + 1;
        let cursor = if i % 2 == 0 { Cursor::Read } else { Cursor::Delivered };
        tasks.spawn(async move { store.advance_cursor(APP, 1, "me", cursor, to, T0 + 100).await });
    }
    while let Some(r) = tasks.join_next().await {
        let mv = r.expect("task").expect("advance_cursor");
        assert!(mv.from_seq <= mv.to_seq, "a move never goes back: {mv:?}");
    }
    let max_read = (0..48i64).filter(|i| i % 2 == 0).map(|i| (i * 37) % 60 + 1).max();
    let max_delivered = (0..48i64).map(|i| (i * 37) % 60 + 1).max();
    let me = stores[1].get_member(APP, 1, "me").await.expect("get_member").expect("member");
    assert_eq!((Some(me.read_seq), Some(me.delivered_seq)), (max_read, max_delivered), "the highest asked for; reading delivers");
    drop(stores);
    drop(db);
}
