//! The outbox and the hook counters: [`OutboxStore`]. Uses the app, user, conversation and
//! message traits (`insert_message_with` puts a message's calls in the outbox).

use crate::*;

/// Run this module's checks, one after the other, on one store.
pub async fn run(store: Arc<dyn Store>) {
    outbox(store.clone()).await;
    hook_stats(store).await;
}

// ------------------------------------------------------------------------------------------
// the outbox

fn outbox_item(app: &App, name: &str, due: i64) -> OutboxItem {
    OutboxItem { id: fresh_id(), app: app.id, next_at: due, created_at: due, ..OutboxItem::new("test", name, json!({"n": name})) }
}

/// Claimed items of these apps, by name.
fn names_of(items: &[OutboxItem], apps: &[&App]) -> Vec<String> {
    items.iter().filter(|i| apps.iter().any(|a| a.id == i.app)).map(|i| i.name.clone()).collect()
}

/// `insert_message_with` keeps a message's calls with it, all or nothing; `outbox_claim` takes
/// due items oldest first, at most `per_app` of one app, skipping busy apps, and holds them until
/// the lease lapses; `outbox_retry` schedules again or keeps as failed; failed items are listed,
/// counted and requeued; `outbox_done` forgets.
pub async fn outbox(store: Arc<dyn Store>) {
    let a = new_app(&*store).await;
    let b = new_app(&*store).await;
    let c = create(&*store, &a, conv_value(&a, ConvKind::Normal, "C", T0), &[("u1", Role::Owner)]).await;
    let m = Message::new(a.id, fresh_id(), c.id, "u1", T0 + 1, Content::Text("hi".into()));
    let with = [outbox_item(&a, "a1", T0 + 1), outbox_item(&a, "a2", T0 + 2)];
    let stored = store.insert_message_with(&m, &with).await.expect("insert_message_with");
    assert_eq!(stored.seq, 1);
    assert_eq!(store.outbox_counts(a.id).await.unwrap(), (2, 0));
    // a message that cannot be stored keeps no calls
    let orphan = Message::new(a.id, fresh_id(), fresh_id(), "u1", T0 + 1, Content::Text("x".into()));
    assert!(store.insert_message_with(&orphan, &[outbox_item(&a, "lost", T0)]).await.is_err());
    assert_eq!(store.outbox_counts(a.id).await.unwrap(), (2, 0), "nothing of a failed insert is kept");

    let bs: Vec<OutboxItem> = (0..5).map(|i| outbox_item(&b, &format!("b{i}"), T0 + i)).collect();
    store.outbox_add(&bs).await.expect("outbox_add");
    store.outbox_add(&[outbox_item(&a, "later", T0 + 1_000)]).await.unwrap();
    assert_eq!(store.outbox_counts(b.id).await.unwrap(), (5, 0));

    let now = T0 + 10;
    let lease = T0 + 60_000;
    let first = store.outbox_claim(now, lease, 3, 1_000, &[]).await.expect("outbox_claim");
    assert_eq!(names_of(&first, &[&a]), ["a1", "a2"], "due items only; the later one waits");
    assert_eq!(names_of(&first, &[&b]), ["b0", "b1", "b2"], "at most per_app of one app, oldest first");
    let got = first.iter().find(|i| i.name == "b0").unwrap();
    assert_eq!((got.body.clone(), got.sink.as_str(), got.attempts), (json!({"n": "b0"}), "test", 0), "items round-trip");
    let second = store.outbox_claim(now, lease, 3, 1_000, &[]).await.unwrap();
    assert_eq!(names_of(&second, &[&a, &b]), ["b3", "b4"], "claimed items are held");
    assert!(names_of(&store.outbox_claim(now, lease, 3, 1_000, &[b.id]).await.unwrap(), &[&b]).is_empty(), "skipped apps");

    let id = |n: &str| first.iter().chain(&second).find(|i| i.name == n).unwrap().id;
    store.outbox_done(&[id("a1"), id("a2")]).await.expect("outbox_done");
    assert_eq!(store.outbox_counts(a.id).await.unwrap(), (1, 0));
    store.outbox_retry(id("b1"), 1, T0 + 20, "boom", false).await.expect("outbox_retry");
    store.outbox_retry(id("b2"), 5, T0, "gone", true).await.unwrap();
    assert_eq!(store.outbox_counts(b.id).await.unwrap(), (4, 1));
    let again = store.outbox_claim(T0 + 30, lease, 10, 1_000, &[]).await.unwrap();
    assert_eq!(names_of(&again, &[&b]), ["b1"], "a retry is due at its time; a failed item never");
    assert_eq!((again[0].attempts, again[0].last_error.as_deref()), (1, Some("boom")));
    let failed = store.outbox_list(b.id, true, 10).await.expect("outbox_list");
    assert_eq!((failed.len(), failed[0].name.as_str(), failed[0].failed, failed[0].attempts), (1, "b2", true, 5));
    assert_eq!(store.outbox_list(b.id, false, 10).await.unwrap().len(), 4);
    assert_eq!(store.outbox_requeue_failed(b.id, T0 + 40).await.expect("requeue"), 1);
    assert_eq!(store.outbox_counts(b.id).await.unwrap(), (5, 0));
    let requeued = store.outbox_claim(T0 + 50, lease, 10, 1_000, &[]).await.unwrap();
    assert_eq!(names_of(&requeued, &[&b]), ["b2"]);
    assert_eq!(requeued[0].attempts, 0, "a requeued item starts over");
    // a claimer that died: its items are due again when the lease lapses
    let lapsed = store.outbox_claim(lease + 1, lease + 60_000, 10, 1_000, &[]).await.unwrap();
    let mut names = names_of(&lapsed, &[&a, &b]);
    names.sort();
    assert_eq!(names, ["b0", "b1", "b2", "b3", "b4", "later"]);
    assert!(store.outbox_claim(lease + 1, lease + 60_000, 10, 2, &[]).await.unwrap().len() <= 2, "at most limit");
}

/// Hook counters add up per (app, sink, name); the longest latency is the maximum.
pub async fn hook_stats(store: Arc<dyn Store>) {
    let app = new_app(&*store).await;
    let other = new_app(&*store).await;
    let mut s = HookStat { app: app.id, sink: "leancloud".into(), name: "_messageReceived".into(), updated_at: T0, ..Default::default() };
    s.record(5, false, false);
    s.record(300, true, true);
    store.hook_stats_add(std::slice::from_ref(&s)).await.expect("hook_stats_add");
    let mut t = HookStat { updated_at: T0 + 5, ..s.clone() };
    t.calls = 0;
    t.failures = 0;
    t.timeouts = 0;
    t.total_ms = 0;
    t.max_ms = 0;
    t.buckets = [0; 6];
    t.record(40, true, false);
    let push = HookStat { app: app.id, sink: "push".into(), name: "message".into(), calls: 1, updated_at: T0, ..Default::default() };
    store.hook_stats_add(&[t, push]).await.unwrap();
    let got = store.hook_stats(app.id).await.expect("hook_stats");
    assert_eq!(got.len(), 2);
    let lc = got.iter().find(|g| g.sink == "leancloud").unwrap();
    assert_eq!((lc.calls, lc.failures, lc.timeouts, lc.total_ms, lc.max_ms), (3, 2, 1, 345, 300));
    assert_eq!(lc.buckets, [1, 1, 0, 1, 0, 0]);
    assert_eq!(lc.updated_at, T0 + 5);
    assert!(store.hook_stats(other.id).await.unwrap().is_empty(), "per app");
}
