//! Several nodes writing at once, each a `PgStore` of its own on one database: what the locks of
//! the keyed collections, the outbox and imports guarantee across nodes (the embedded store has one
//! writer; here nothing else makes these hold). Each test makes a database of its own
//! (`test_db::TestDb`).

use std::collections::HashSet;
use std::sync::Arc;

use confab_engine::entries::{Entry, EntryFilter, EntryQuery, Overwrite, Put, PutRule};
use confab_engine::hooks::OutboxItem;
use confab_engine::model::{Content, ConvKind, Conversation, Member, Message, Role};
use confab_engine::query::{HistoryQuery, HistoryScope};
use confab_engine::store::{ConversationStore, EntryStore, ImportStore, MessageStore, OutboxStore};
use confab_store_postgres::PgStore;
use serde_json::json;

use confab_store_postgres::test_db::TestDb;

const NODES: usize = 6;
const APP: i64 = 7;
const T0: i64 = 1_800_000_000_000;

async fn nodes(db: &TestDb) -> Vec<Arc<PgStore>> {
    let mut out = Vec::new();
    for _ in 0..NODES {
        out.push(Arc::new(PgStore::connect(&db.url, 4).await.expect("a node connects")));
    }
    out
}

fn entry(item: &str, seq: i64) -> Entry {
    Entry { seq, created_at: T0, updated_at: T0, ..Entry::new("ns", "k", item, json!(item)) }
}

/// Every node puts at once; the outcomes, node by node.
async fn put_at_once(nodes: &[Arc<PgStore>], each: impl Fn(usize) -> Vec<Entry>, rule: PutRule) -> Vec<Put> {
    let mut puts = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let (n, es) = (n.clone(), each(i));
        puts.push(tokio::spawn(async move { n.put_entries(APP, &es, rule, T0).await }));
    }
    let mut out = Vec::new();
    for p in puts {
        out.extend(p.await.expect("join").expect("put_entries"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collection_cap_and_only_if_absent_hold_across_nodes() {
    let Some(db) = TestDb::new().await else { return };
    let nodes = nodes(&db).await;
    let cap = PutRule { overwrite: Overwrite::Never, max_items: Some(3) };
    let puts = put_at_once(&nodes, |i| (0..2).map(|j| entry(&format!("n{i}-{j}"), (i * 10 + j) as i64 + 1)).collect(), cap).await;
    assert_eq!(puts.iter().filter(|p| **p == Put::Added).count(), 3, "{puts:?}");
    let stored = nodes[0].entries(APP, &EntryQuery::all(EntryFilter::collection("ns", "k")), T0).await.expect("entries");
    assert_eq!(stored.len(), 3, "never more than the cap");

    let once = PutRule { overwrite: Overwrite::Never, max_items: None };
    let puts = put_at_once(&nodes, |i| vec![entry("same", 1_000 + i as i64)], once).await;
    assert_eq!(puts.iter().filter(|p| **p == Put::Added).count(), 1, "{puts:?}");
    assert_eq!(puts.iter().filter(|p| **p == Put::Kept).count(), NODES - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_item_comes_after_the_collection_whatever_its_seq() {
    let Some(db) = TestDb::new().await else { return };
    let nodes = nodes(&db).await;
    let always = PutRule::default();
    nodes[0].put_entries(APP, &[entry("first", 500)], always, T0).await.expect("put");
    // a node whose clock is behind: its id is lower than the one stored
    nodes[1].put_entries(APP, &[entry("late", 200), entry("later", 100)], always, T0).await.expect("put");
    let stored = nodes[2].entries(APP, &EntryQuery::all(EntryFilter::collection("ns", "k")), T0).await.expect("entries");
    let order: Vec<(&str, i64)> = stored.iter().map(|e| (e.item.as_str(), e.seq)).collect();
    assert_eq!(order, [("first", 500), ("late", 501), ("later", 502)]);
    // replacing keeps the seq; a new item with a higher id keeps its own
    nodes[1].put_entries(APP, &[entry("first", 50), entry("new", 9_000)], always, T0).await.expect("put");
    let stored = nodes[2].entries(APP, &EntryQuery::all(EntryFilter::collection("ns", "k")), T0).await.expect("entries");
    let seqs: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [500, 501, 502, 9_000]);
}

fn item(app: i64, id: i64) -> OutboxItem {
    OutboxItem { id, app, next_at: T0 + id % 7, created_at: T0, ..OutboxItem::new("test", "call", json!({"id": id})) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_claiming_at_once_never_get_the_same_item() {
    let Some(db) = TestDb::new().await else { return };
    let nodes = nodes(&db).await;
    let items: Vec<OutboxItem> = (1..=300).map(|id| item(id % 5 + 1, id)).collect();
    nodes[0].outbox_add(&items).await.expect("outbox_add");
    let mut claims = Vec::new();
    for n in &nodes {
        let n = n.clone();
        claims.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = n.outbox_claim(T0 + 10, T0 + 60_000, 4, 7, &[]).await.expect("outbox_claim");
                if batch.is_empty() {
                    return got;
                }
                assert!(batch.len() <= 7, "at most limit");
                got.extend(batch.into_iter().map(|i| i.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for c in claims {
        for id in c.await.expect("join") {
            assert!(seen.insert(id), "item {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), items.len(), "every item claimed");
}

fn conversation(id: i64) -> Conversation {
    Conversation { foreign_id: Some(format!("f{id}")), ..Conversation::new(APP, id, ConvKind::Normal, Some("imported".into()), T0) }
}

fn message(id: i64, conv: i64, ts: i64, foreign: Option<String>) -> Message {
    Message { foreign_id: foreign, ..Message::new(APP, id, conv, "ann", ts, Content::Text(format!("m{id}"))) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_sent_during_an_import_of_older_ones_number_one_sequence() {
    let Some(db) = TestDb::new().await else { return };
    let nodes = nodes(&db).await;
    let conv = 1_000;
    nodes[0].import_conversation(&conversation(conv), &[Member::new(conv, "ann", Role::Owner, T0)]).await.expect("import_conversation");
    for i in 1..=20 {
        nodes[0].insert_message(&message(i, conv, T0 + 100 * i, None)).await.expect("insert_message");
    }
    // one node imports older messages, in among those, batch after batch; two others send
    let importer = nodes[1].clone();
    let import = tokio::spawn(async move {
        for batch in 0..4 {
            let msgs: Vec<Message> = (1..=5)
                .map(|i| 100 + batch * 5 + i)
                .map(|id| message(id, conv, T0 + 100 * (id - 100) + 50, Some(format!("x{id}"))))
                .collect();
            importer.import_messages(APP, conv, &msgs).await.expect("import_messages");
        }
    });
    let mut sends = Vec::new();
    for (n, node) in nodes[2..4].iter().enumerate() {
        let node = node.clone();
        sends.push(tokio::spawn(async move {
            for i in 0..10 {
                let id = 1_000 + n as i64 * 100 + i;
                node.insert_message(&message(id, conv, T0 + 10_000 + i, None)).await.expect("insert_message");
            }
        }));
    }
    import.await.expect("join");
    for s in sends {
        s.await.expect("join");
    }
    let q =
        HistoryQuery { scope: HistoryScope::Conv(conv), older_than: None, newer_than: None, ascending: true, limit: 1_000, mtype: None };
    let history = nodes[0].history(APP, &q).await.expect("history");
    let seqs: Vec<i64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=60).collect::<Vec<i64>>(), "one sequence, without gaps");
    assert!(history.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "sequence and time agree");
    let stored = nodes[0].get_conversation(APP, conv).await.expect("get").expect("the conversation");
    assert_eq!(stored.last_seq, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_making_the_same_users_at_once_in_any_order_never_deadlock() {
    use confab_engine::store::{NewUser, UserStore};
    let Some(db) = TestDb::new().await else { return };
    let nodes = nodes(&db).await;
    // every node makes the same 40 users at once, half of them in reverse order (as imports of
    // conversations sharing members do): each call must succeed
    for round in 0..5 {
        let mut calls = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let mut users: Vec<NewUser> =
                (0..40).map(|u| NewUser { id: format!("r{round}-u{u:02}"), num: (round * 1000 + u * 10 + i) as i64 }).collect();
            if i % 2 == 1 {
                users.reverse();
            }
            let n = n.clone();
            calls.push(tokio::spawn(async move { n.ensure_users(APP, &users, T0).await }));
        }
        for c in calls {
            c.await.expect("join").expect("ensure_users never fails for another node's insert");
        }
        assert_eq!(nodes[0].count_users(APP).await.expect("count"), 40 * (round as i64 + 1));
    }
}
