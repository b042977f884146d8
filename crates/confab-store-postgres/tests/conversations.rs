//! Conversations on a real PostgreSQL, beyond the conformance suite: what several nodes doing
//! the same at once must not break, and regular expressions matched by PostgreSQL as the engine's
//! `compile_regex` matches them.

use std::sync::Arc;

use confab_engine::model::{ConvChange, ConvKind, ConvNotice, Conversation, Member, Role};
use confab_engine::query::{compile_regex, ConvQuery, Field, Filter, Op};
use confab_engine::{ConversationStore, Error};
use confab_store_postgres::PgStore;

use confab_store_postgres::test_db::TestDb;

const APP: i64 = 1;
const T0: i64 = 1_700_000_000_000;

fn conv(id: i64, name: &str) -> Conversation {
    Conversation::new(APP, id, ConvKind::Normal, Some(name.to_string()), T0)
}

/// Stores standing for nodes: each its own pool on the same database.
async fn nodes(db: &TestDb, n: usize) -> Vec<Arc<PgStore>> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(Arc::new(PgStore::connect(&db.url, 4).await.expect("connect")));
    }
    stores
}

/// The same unique conversation created by many nodes at once is created once: every caller is
/// answered with that one, and one caller only is told it created it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_unique_conversation_created_at_once_is_created_once() {
    let Some(db) = TestDb::new().await else { return };
    let stores = nodes(&db, 3).await;
    // a few rounds: the creates race in some of them (others find the first one's commit)
    for round in 0..4i64 {
        let uid = format!("a:b:{round}");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12i64 {
            let store = stores[i as usize % stores.len()].clone();
            let mut c = conv(100 * (round + 1) + i, "direct");
            (c.unique, c.unique_id) = (true, Some(uid.clone()));
            let members = [Member::new(c.id, "a", Role::Member, T0), Member::new(c.id, "b", Role::Member, T0)];
            tasks.spawn(async move { store.create_conversation(&c, &members).await });
        }
        let mut answers = Vec::new();
        while let Some(r) = tasks.join_next().await {
            answers.push(r.expect("task").expect("create_conversation"));
        }
        assert_eq!(answers.iter().filter(|(_, created)| *created).count(), 1, "created once");
        let winner = answers[0].0.clone();
        assert!(answers.iter().all(|(c, _)| *c == winner), "every caller has the one created");
        assert_eq!(stores[0].member_ids(APP, winner.id).await.expect("members"), ["a", "b"]);
    }
    let q = ConvQuery { count: true, limit: 0, ..Default::default() };
    assert_eq!(stores[0].query_conversations(APP, &q).await.expect("count").1, Some(4), "one stored a round");
    drop(stores);
    drop(db);
}

/// Members added by many nodes at once never pass the conversation's `max`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_added_at_once_never_pass_max() {
    let Some(db) = TestDb::new().await else { return };
    let stores = nodes(&db, 3).await;
    let c = conv(7, "group");
    stores[0].create_conversation(&c, &[Member::new(c.id, "owner", Role::Owner, T0)]).await.expect("create");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16usize {
        let store = stores[i % stores.len()].clone();
        let m = Member::new(c.id, format!("u{i:02}"), Role::Member, T0 + 1);
        tasks.spawn(async move { store.add_members(APP, 7, &[m], Some(5), T0 + 1).await });
    }
    let mut added = 0;
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Ok(users) if users.len() == 1 => added += 1,
            Err(Error::ConversationFull { max: 5 }) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(added, 4, "four joined the owner");
    assert_eq!(stores[0].count_members(APP, 7, None).await.expect("count"), 5);
    drop(stores);
    drop(db);
}

/// Patterns PostgreSQL matches as the engine's `compile_regex` does (what `filter/are.rs`
/// rewrites), each against names the store keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regexes_match_as_the_engine_does() {
    let Some(db) = TestDb::new().await else { return };
    let store = PgStore::connect(&db.url, 2).await.expect("connect");
    let names = ["alpha", "Alpha beta", "a.b", "axb", "line one\nline two", "x(y)z", "end\\E", "café", "word_boundary", "a#b"];
    for (i, name) in names.iter().enumerate() {
        store.create_conversation(&conv(i as i64 + 1, name), &[]).await.expect("create");
    }
    let cases: &[(&str, &str)] = &[
        ("^alpha$", ""),
        ("^alpha$", "i"),
        ("\\Qa.b\\E", ""),
        ("a.b", ""),
        ("^line two$", ""),
        ("^line two$", "m"),
        ("one.line", ""),
        ("one.line", "s"),
        ("\\bbeta\\b", ""),
        ("\\bboundary", ""),
        ("\\Bboundary", ""),
        ("\\Qx(y)\\E", ""),
        ("\\Qend\\E\\\\E$", ""),
        ("caf\\x{e9}$", ""),
        ("(?i)^ALPHA", ""),
        ("(?P<w>[a-z]+)_", ""),
        ("a # a comment\n\\#b", "x"),
        ("\\<beta\\>", ""),
        ("o\\z", ""),
    ];
    let mut wrong = Vec::new();
    for (pattern, flags) in cases {
        let re = compile_regex(pattern, flags).expect("the engine compiles it");
        let mut want: Vec<String> = names.iter().filter(|n| re.is_match(n)).map(|n| n.to_string()).collect();
        let q = ConvQuery {
            filter: Filter::Cond(Field::Name, Op::Regex { pattern: pattern.to_string(), flags: flags.to_string() }),
            ..Default::default()
        };
        let mut got: Vec<String> = match store.query_conversations(APP, &q).await {
            Ok((cs, _)) => cs.into_iter().filter_map(|c| c.name).collect(),
            Err(e) => vec![format!("error: {e}")],
        };
        want.sort();
        got.sort();
        if got != want {
            wrong.push(format!("{pattern:?} /{flags}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    drop(store);
    drop(db);
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Blocklists (which the conformance suite does not cover): blocking removes a member and
/// returns only the newly blocked, in the order given; listings by user id, `among`, `after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocklists() {
    let Some(db) = TestDb::new().await else { return };
    let store = PgStore::connect(&db.url, 2).await.expect("connect");
    let c = conv(1, "group");
    let members: Vec<Member> = ["a", "b", "c"].iter().map(|u| Member::new(c.id, *u, Role::Member, T0)).collect();
    store.create_conversation(&c, &members).await.expect("create");

    let blocked = store.block_users(APP, 1, &owned(&["c", "x", "a", "c"]), T0 + 1).await.expect("block");
    assert_eq!(blocked, owned(&["c", "x", "a"]), "newly blocked, in the order given, once");
    assert_eq!(store.member_ids(APP, 1).await.expect("members"), owned(&["b"]), "the blocked are members no more");
    assert_eq!(store.block_users(APP, 1, &owned(&["a", "b"]), T0 + 2).await.expect("block"), owned(&["b"]), "a is blocked already");
    assert_eq!(store.block_users(APP, 2, &owned(&["a"]), T0).await, Err(Error::ConversationNotFound));

    let list = |among: Option<Vec<String>>, after: Option<&'static str>, limit: i64| {
        let store = &store;
        async move { store.blocked_users(APP, 1, among.as_deref(), after, limit).await.expect("blocked_users") }
    };
    assert_eq!(list(None, None, 10).await, owned(&["a", "b", "c", "x"]));
    assert_eq!(list(None, Some("b"), 10).await, owned(&["c", "x"]));
    assert_eq!(list(None, None, 2).await, owned(&["a", "b"]));
    assert_eq!(list(Some(owned(&["x", "zz", "a"])), None, 10).await, owned(&["a", "x"]));
    assert_eq!(list(Some(vec![]), None, 10).await, Vec::<String>::new());

    assert_eq!(store.unblock_users(APP, 1, &owned(&["x", "nobody", "a"])).await.expect("unblock"), owned(&["x", "a"]));
    assert_eq!(list(None, None, 10).await, owned(&["b", "c"]));
    drop(store);
    drop(db);
}

/// Notices (which the conformance suite does not cover): kept per user, read after a time,
/// oldest first, at most `limit`; the same notice kept twice is kept once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices() {
    let Some(db) = TestDb::new().await else { return };
    let store = PgStore::connect(&db.url, 2).await.expect("connect");
    let notice = |id: i64, at: i64| ConvNotice {
        id,
        conv: 1,
        kind: ConvKind::Normal,
        foreign_id: None,
        by: Some("a".into()),
        change: ConvChange::Joined { members: owned(&["b"]) },
        at,
    };
    let (n1, n2, n3) = (notice(1, T0 + 10), notice(2, T0 + 20), notice(3, T0 + 20));
    store.add_notices(APP, &owned(&["a", "b", "a"]), &n2).await.expect("add_notices");
    store.add_notices(APP, &owned(&["a"]), &n1).await.expect("add_notices");
    store.add_notices(APP, &owned(&["a"]), &n3).await.expect("add_notices");
    store.add_notices(APP, &owned(&["a"]), &n1).await.expect("again: nothing new");
    assert_eq!(store.notices(APP, "a", 0, 10).await.expect("notices"), vec![n1.clone(), n2.clone(), n3.clone()]);
    assert_eq!(store.notices(APP, "a", T0 + 10, 10).await.expect("notices"), vec![n2.clone(), n3]);
    assert_eq!(store.notices(APP, "a", 0, 1).await.expect("notices"), vec![n1]);
    assert_eq!(store.notices(APP, "b", 0, 10).await.expect("notices"), vec![n2]);
    assert!(store.notices(APP + 1, "a", 0, 10).await.expect("notices").is_empty(), "per app");
    drop(store);
    drop(db);
}
