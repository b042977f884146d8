//! Imports from another service, with their foreign ids: [`ImportStore`]. Uses the app, user,
//! conversation and message traits to look at what was imported.

use crate::*;

/// Run this module's checks, one after the other, on one store.
pub async fn run(store: Arc<dyn Store>) {
    import_messages_in_order(store.clone()).await;
    import_conversation_after_its_history(store).await;
}

// ------------------------------------------------------------------------------------------
// imports from another service

fn imported(app: &App, conv: i64, from: &str, ts: i64, foreign: &str) -> Message {
    Message { foreign_id: Some(foreign.to_string()), ..msg(app, conv, from, ts, foreign) }
}

/// The conversation's history, oldest first: (foreign id or text, sequence, timestamp).
async fn history_of(store: &dyn Store, app: &App, conv: i64) -> Vec<(String, i64, i64)> {
    let q = HistoryQuery { scope: HistoryScope::Conv(conv), older_than: None, newer_than: None, ascending: true, limit: 1000, mtype: None };
    let ms = store.history(app.id, &q).await.expect("history");
    ms.into_iter().map(|m| (m.foreign_id.clone().unwrap_or_else(|| content_text(&m)), m.seq, m.timestamp)).collect()
}

fn content_text(m: &Message) -> String {
    match &m.content {
        Content::Text(t) => t.clone(),
        Content::Binary(_) => String::new(),
    }
}

pub async fn import_messages_in_order(store: Arc<dyn Store>) {
    let app = new_app(store.as_ref()).await;
    ensure(store.as_ref(), &app, &["ann", "bob"]).await;
    let conv =
        create(store.as_ref(), &app, conv_value(&app, ConvKind::Normal, "imp", T0), &[("ann", Role::Member), ("bob", Role::Member)]).await;
    // a batch in any order goes in by timestamp, and keeps each timestamp exactly
    let batch = [
        imported(&app, conv.id, "ann", T0 + 30, "c"),
        imported(&app, conv.id, "bob", T0 + 10, "a"),
        imported(&app, conv.id, "ann", T0 + 20, "b"),
    ];
    let r = store.import_messages(app.id, conv.id, &batch).await.expect("import_messages");
    assert_eq!((r.inserted, r.skipped), (3, 0));
    let want = vec![("a".to_string(), 1, T0 + 10), ("b".to_string(), 2, T0 + 20), ("c".to_string(), 3, T0 + 30)];
    assert_eq!(history_of(store.as_ref(), &app, conv.id).await, want);
    assert_eq!(conversation(store.as_ref(), &app, conv.id).await.last_seq, 3);
    // again: nothing twice
    let r = store.import_messages(app.id, conv.id, &batch).await.expect("import again");
    assert_eq!((r.inserted, r.skipped), (0, 3));
    // messages sent here since, read by bob up to the newest
    let n1 = insert(store.as_ref(), msg(&app, conv.id, "ann", T0 + 100, "new1")).await;
    let n2 = insert(store.as_ref(), msg(&app, conv.id, "ann", T0 + 200, "new2")).await;
    assert_eq!((n1.seq, n2.seq), (4, 5));
    store.advance_cursor(app.id, conv.id, "bob", Cursor::Read, n1.seq, T0 + 150).await.expect("read");
    // a later import brings messages older than those: they go in among them
    let late = [imported(&app, conv.id, "bob", T0 + 150, "late2"), imported(&app, conv.id, "bob", T0 + 40, "late1")];
    let r = store.import_messages(app.id, conv.id, &late).await.expect("import older");
    assert_eq!((r.inserted, r.skipped), (2, 0));
    let got = history_of(store.as_ref(), &app, conv.id).await;
    let order: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(order, ["a", "b", "c", "late1", "new1", "late2", "new2"]);
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), (1..=7).collect::<Vec<i64>>(), "numbered anew, without gaps");
    assert!(got.windows(2).all(|w| w[0].2 <= w[1].2), "sequence and time agree");
    assert_eq!(conversation(store.as_ref(), &app, conv.id).await.last_seq, 7);
    // bob's read cursor still names new1 (now 5): late2 and new2 are unread, late1 is not
    let bob = store.get_member(app.id, conv.id, "bob").await.expect("member").expect("bob");
    assert_eq!(bob.read_seq, 5, "the cursor followed its message");
    assert_eq!(store.unread_count(app.id, "bob", Some(conv.id), WIDE).await.expect("unread"), 1, "new2 (late2 is bob's own)");
    // found by their foreign ids
    let m = store.message_by_foreign(app.id, "late1").await.expect("message_by_foreign").expect("late1");
    assert_eq!((m.seq, m.timestamp, m.from.as_str()), (4, T0 + 40, "bob"));
    assert_eq!(store.message_by_foreign(app.id, "nope").await.expect("lookup"), None);
    // in one millisecond, imported messages stand in the order of their ids, whenever they came
    store.import_messages(app.id, conv.id, &[imported(&app, conv.id, "ann", T0 + 250, "tie-b")]).await.expect("tie b");
    store.import_messages(app.id, conv.id, &[imported(&app, conv.id, "ann", T0 + 250, "tie-a")]).await.expect("tie a");
    let got = history_of(store.as_ref(), &app, conv.id).await;
    let order: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(order[order.len() - 2..], ["tie-a", "tie-b"], "{order:?}");
    // a message addressed to some users, seen again for another: that one joins its audience
    let to = |u: &str| Message { audience: only(&[u]), ..imported(&app, conv.id, "ann", T0 + 300, "for-some") };
    store.import_messages(app.id, conv.id, &[to("bob")]).await.expect("for bob");
    let r = store.import_messages(app.id, conv.id, &[to("cat")]).await.expect("for cat too");
    assert_eq!((r.inserted, r.skipped), (0, 1));
    let seen_by = |u: &str| {
        let q = HistoryQuery {
            scope: HistoryScope::ConvAs { conv: conv.id, user: u.to_string() },
            older_than: None,
            newer_than: None,
            ascending: true,
            limit: 100,
            mtype: None,
        };
        let store = store.clone();
        async move { store.history(app.id, &q).await.expect("history").iter().any(|m| m.foreign_id.as_deref() == Some("for-some")) }
    };
    assert!(seen_by("bob").await && seen_by("cat").await, "both see it");
    assert!(!seen_by("dan").await, "no one else does");
}

pub async fn import_conversation_after_its_history(store: Arc<dyn Store>) {
    let app = new_app(store.as_ref()).await;
    ensure(store.as_ref(), &app, &["ann", "bob", "cat"]).await;
    // history first, into a conversation that does not exist yet: nothing shows
    let id = fresh_id();
    let batch: Vec<Message> = (0..5).map(|i| imported(&app, id, "ann", T0 + i, &format!("m{i}"))).collect();
    store.import_messages(app.id, id, &batch).await.expect("import_messages");
    assert_eq!(store.get_conversation(app.id, id).await.expect("get"), None);
    assert_eq!(store.conversation_by_foreign(app.id, "5a5ecde6c3422b738c8779d7").await.expect("lookup"), None);
    // then the conversation: it counts its history, and its members have read it
    let conv =
        Conversation { id, foreign_id: Some("5a5ecde6c3422b738c8779d7".into()), ..conv_value(&app, ConvKind::Normal, "imported", T0) };
    let members = [Member::new(id, "ann", Role::Owner, T0), Member::new(id, "bob", Role::Member, T0)];
    let (got, created) = store.import_conversation(&conv, &members).await.expect("import_conversation");
    assert!(created);
    assert_eq!((got.last_seq, got.last_message_at, got.foreign_id.as_deref()), (5, Some(T0 + 4), Some("5a5ecde6c3422b738c8779d7")));
    assert_eq!(store.get_member(app.id, id, "bob").await.expect("member").expect("bob").read_seq, 5);
    assert_eq!(store.unread_count(app.id, "bob", Some(id), WIDE).await.expect("unread"), 0);
    let found = store.conversation_by_foreign(app.id, "5a5ecde6c3422b738c8779d7").await.expect("lookup").expect("found");
    assert_eq!(found.id, id);
    assert_eq!(
        store.conversation_foreign_ids(app.id, &[id, fresh_id()]).await.expect("ids"),
        vec![(id, "5a5ecde6c3422b738c8779d7".to_string())]
    );
    // found by objectId in a query: a foreign id in place of ours
    let q = |f| ConvQuery { filter: f, ..Default::default() };
    let by = |v: Scalar| q(cond(Field::Id, Op::Eq(v)));
    let mut f = Failures::default();
    f.query(store.as_ref(), &app, by(s("5a5ecde6c3422b738c8779d7")), &["imported"], None).await;
    f.query(store.as_ref(), &app, by(Scalar::Int(id)), &["imported"], None).await;
    f.query(store.as_ref(), &app, q(cond(Field::Id, Op::In(vec![s("5a5ecde6c3422b738c8779d7"), Scalar::Int(1)]))), &["imported"], None)
        .await;
    f.query(store.as_ref(), &app, q(cond(Field::Id, Op::Nin(vec![s("5a5ecde6c3422b738c8779d7")]))), &[], None).await;
    f.finish("import_conversation_after_its_history");
    // a second import (a cut-over run) adds the members it lacks, creates nothing
    let (again, created) = store
        .import_conversation(&Conversation { id: fresh_id(), ..conv.clone() }, &[Member::new(id, "cat", Role::Member, T0)])
        .await
        .expect("again");
    assert!(!created);
    assert_eq!(again.id, id);
    assert!(store.get_member(app.id, id, "cat").await.expect("member").is_some());
    // a unique conversation made here before the import is adopted, not duplicated
    let mut mine = conv_value(&app, ConvKind::Normal, "ours", T0);
    mine.unique = true;
    mine.unique_id = Some("6c7b0e5afcae9aa1139a0afa25833dec".into());
    let mine = create(store.as_ref(), &app, mine, &[("ann", Role::Member), ("bob", Role::Member)]).await;
    let theirs = Conversation {
        id: fresh_id(),
        unique: true,
        unique_id: mine.unique_id.clone(),
        foreign_id: Some("5eccba570d3a42c5fd4e25c3".into()),
        ..conv_value(&app, ConvKind::Normal, "theirs", T0)
    };
    let (adopted, created) = store.import_conversation(&theirs, &[]).await.expect("adopt");
    assert!(!created);
    assert_eq!((adopted.id, adopted.foreign_id.as_deref()), (mine.id, Some("5eccba570d3a42c5fd4e25c3")));
}
