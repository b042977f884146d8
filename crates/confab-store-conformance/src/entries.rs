//! Keyed collections: [`EntryStore`]. Uses `create_app` to make its apps.

use crate::*;

/// Run this module's checks, one after the other, on one store.
pub async fn run(store: Arc<dyn Store>) {
    entries_put_rules(store.clone()).await;
    entries_query_delete_stats(store).await;
}

// ------------------------------------------------------------------------------------------
// keyed collections

/// An entry as the engine would make it: `seq` fresh and increasing, times at `T0 + at`.
fn entry(ns: &str, key: &str, item: &str, value: Value, at: i64) -> Entry {
    Entry { seq: fresh_id(), created_at: T0 + at, updated_at: T0 + at, ..Entry::new(ns, key, item, value) }
}

async fn items(store: &dyn Store, app: &App, q: EntryQuery, now: i64) -> Vec<String> {
    store.entries(app.id, &q, T0 + now).await.expect("entries").into_iter().map(|e| e.item).collect()
}

/// Puts: added/replaced/kept, the owner rule, the size cap (counted live), expiry, and that a
/// replaced item keeps its place and creation time.
pub async fn entries_put_rules(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    let always = PutRule::default();
    let put = |app: i64, es: Vec<Entry>, rule: PutRule, now: i64| async move {
        store.put_entries(app, &es, rule, T0 + now).await.expect("put_entries")
    };

    let a = entry("ns", "k", "a", json!({"v": 1}), 1);
    let b = entry("ns", "k", "b", json!("two"), 2);
    assert_eq!(put(app.id, vec![a.clone(), b.clone()], always, 2).await, vec![Put::Added, Put::Added]);
    let got = store.entries(app.id, &EntryQuery::all(EntryFilter::collection("ns", "k")), T0 + 3).await.unwrap();
    assert_eq!(got, vec![a.clone(), b.clone()], "entries round-trip in insertion order");
    assert!(store.entries(other.id, &EntryQuery::all(EntryFilter::collection("ns", "k")), T0).await.unwrap().is_empty(), "per app");

    // replacing keeps seq and created_at, takes the new value, owner, updated_at and expiry
    let a2 = Entry { value: json!(2), owner: Some("o".into()), ..entry("ns", "k", "a", json!(null), 10) };
    assert_eq!(put(app.id, vec![a2.clone()], always, 10).await, vec![Put::Replaced]);
    let got = store.entries(app.id, &EntryQuery::all(EntryFilter::collection("ns", "k")), T0 + 11).await.unwrap();
    assert_eq!(got[0], Entry { seq: a.seq, created_at: a.created_at, ..a2.clone() });
    assert_eq!(got.iter().map(|e| e.item.as_str()).collect::<Vec<_>>(), ["a", "b"], "a replaced item keeps its place");

    let never = PutRule { overwrite: Overwrite::Never, max_items: None };
    assert_eq!(put(app.id, vec![entry("ns", "k", "b", json!("x"), 12)], never, 12).await, vec![Put::Kept]);
    assert_eq!(
        store.entries(app.id, &EntryQuery::all(EntryFilter::collection("ns", "k").items(vec!["b".into()])), T0 + 12).await.unwrap()[0]
            .value,
        json!("two")
    );

    // the owner rule: another owner's item is refused; the owner's own and an unowned one are replaced
    let if_owner = PutRule { overwrite: Overwrite::IfOwner, max_items: None };
    let by = |item: &str, owner: &str| entry("ns", "k", item, json!(owner), 20).owned_by(owner);
    assert_eq!(
        put(app.id, vec![by("a", "p"), by("a", "o"), by("b", "p"), by("c", "p")], if_owner, 20).await,
        vec![Put::NotOwner, Put::Replaced, Put::Replaced, Put::Added]
    );
    let owners: Vec<Option<String>> = store
        .entries(app.id, &EntryQuery::all(EntryFilter::collection("ns", "k")), T0 + 21)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.owner)
        .collect();
    assert_eq!(owners, [Some("o".into()), Some("p".into()), Some("p".into())]);

    // the cap counts live items of the one collection; replacing never counts as growth
    let capped = PutRule { overwrite: Overwrite::Always, max_items: Some(4) };
    let res = put(
        app.id,
        vec![
            entry("ns", "k", "a", json!(0), 30),
            entry("ns", "k", "d", json!(0), 30),
            entry("ns", "k", "e", json!(0), 30),
            entry("ns", "other", "x", json!(0), 30),
        ],
        capped,
        30,
    )
    .await;
    assert_eq!(res, vec![Put::Replaced, Put::Added, Put::Full, Put::Added]);

    // expiry: an expired item is invisible, does not count toward the cap, and is re-added afresh
    let short = entry("ns", "exp", "t", json!(1), 40).expiring(Some(T0 + 50));
    assert_eq!(put(app.id, vec![short.clone(), entry("ns", "exp", "u", json!(1), 40)], capped, 40).await, vec![Put::Added, Put::Added]);
    assert_eq!(items(store, &app, EntryQuery::all(EntryFilter::collection("ns", "exp")), 49).await, ["t", "u"]);
    assert_eq!(items(store, &app, EntryQuery::all(EntryFilter::collection("ns", "exp")), 50).await, ["u"], "gone at its expiry");
    let one = PutRule { overwrite: Overwrite::Never, max_items: Some(2) };
    let again = entry("ns", "exp", "t", json!(2), 60);
    assert_eq!(put(app.id, vec![again.clone(), entry("ns", "exp", "v", json!(1), 60)], one, 60).await, vec![Put::Added, Put::Full]);
    let got = store.entries(app.id, &EntryQuery::all(EntryFilter::collection("ns", "exp").items(vec!["t".into()])), T0 + 61).await.unwrap();
    assert_eq!(got, vec![again], "re-added afresh, with its new seq");
}

/// Reads: by collection, items, owner, across collections by item; paging by seq both ways;
/// deletes return what they removed; stats count entries and bytes.
pub async fn entries_query_delete_stats(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let mut es = Vec::new();
    for i in 0..10 {
        let mut e = entry("list", "k1", &format!("i{i}"), json!(i), i);
        if i % 2 == 0 {
            e.owner = Some("even".into());
        }
        es.push(e);
    }
    es.push(entry("list", "k2", "i3", json!("x"), 20));
    es.push(entry("list", "k3", "i3", json!("y"), 21).expiring(Some(T0 + 5)));
    es.push(entry("elsewhere", "k1", "i0", json!(0), 22));
    store.put_entries(app.id, &es, PutRule::default(), T0).await.unwrap();

    let k1 = || EntryFilter::collection("list", "k1");
    let page = |after: Option<i64>, limit: i64, desc: bool| EntryQuery { filter: k1(), after, limit, desc };
    assert_eq!(items(store, &app, page(None, 3, false), 0).await, ["i0", "i1", "i2"]);
    let first = store.entries(app.id, &page(None, 3, false), T0).await.unwrap();
    assert_eq!(items(store, &app, page(Some(first[2].seq), 3, false), 0).await, ["i3", "i4", "i5"], "after a cursor");
    assert_eq!(items(store, &app, page(None, 2, true), 0).await, ["i9", "i8"], "newest first");
    let last = store.entries(app.id, &page(None, 2, true), T0).await.unwrap();
    assert_eq!(items(store, &app, page(Some(last[1].seq), 2, true), 0).await, ["i7", "i6"]);
    assert_eq!(items(store, &app, page(None, 0, false), 0).await, Vec::<String>::new());
    assert_eq!(items(store, &app, EntryQuery::all(k1().owner("even")), 0).await, ["i0", "i2", "i4", "i6", "i8"]);
    assert_eq!(items(store, &app, EntryQuery::all(k1().items(vec!["i7".into(), "i1".into(), "nope".into()])), 0).await, ["i1", "i7"]);
    assert_eq!(items(store, &app, EntryQuery::all(k1().items(vec![])), 0).await, Vec::<String>::new());
    // across collections: which keys hold item i3 (the expired one left out)
    let across = EntryFilter { ns: "list".into(), items: Some(vec!["i3".into()]), ..Default::default() };
    let keys: Vec<String> =
        store.entries(app.id, &EntryQuery::all(across.clone()), T0 + 30).await.unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["k1", "k2"]);
    let whole_ns = EntryFilter { ns: "list".into(), ..Default::default() };
    assert_eq!(store.entry_stats(app.id, &whole_ns, T0 + 1).await.unwrap().count, 12);
    assert_eq!(store.entry_stats(app.id, &whole_ns, T0 + 30).await.unwrap().count, 11, "stats skip expired entries");

    let st = store.entry_stats(app.id, &EntryFilter::collection("list", "k2"), T0).await.unwrap();
    assert_eq!(st, EntryStats { count: 1, bytes: ("i3".len() + "\"x\"".len()) as i64 }, "bytes of item and value");
    assert_eq!(store.entry_stats(app.id, &EntryFilter::collection("list", "none"), T0).await.unwrap(), EntryStats::default());

    let gone = store.delete_entries(app.id, &k1().items(vec!["i1".into(), "i2".into(), "zz".into()]), T0).await.unwrap();
    assert_eq!(gone.iter().map(|e| e.item.as_str()).collect::<Vec<_>>(), ["i1", "i2"], "deletes return what they removed");
    let gone = store.delete_entries(app.id, &k1().owner("even"), T0).await.unwrap();
    assert_eq!(gone.len(), 4, "by owner: i0 i4 i6 i8");
    assert_eq!(items(store, &app, EntryQuery::all(k1()), 0).await, ["i3", "i5", "i7", "i9"]);
    let gone = store.delete_entries(app.id, &across, T0 + 30).await.unwrap();
    assert_eq!(gone.len(), 2, "an item across collections; the expired one is purged, not returned");
    assert_eq!(
        store
            .entry_stats(app.id, &EntryFilter { ns: "list".into(), items: Some(vec!["i3".into()]), ..Default::default() }, T0)
            .await
            .unwrap()
            .count,
        0,
        "purged"
    );
    assert_eq!(
        items(store, &app, EntryQuery::all(EntryFilter::collection("elsewhere", "k1")), 0).await,
        ["i0"],
        "other namespaces untouched"
    );
}
