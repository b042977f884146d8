//! Messages, history, unread counts, broadcasts, and sequence numbers under concurrency:
//! [`MessageStore`]. Uses the app, user and conversation traits for its fixtures.

use crate::*;

/// Run this module's checks, one after the other, on one store.
pub async fn run(store: Arc<dyn Store>) {
    messages_insert(store.clone()).await;
    messages_round_trip_update_delete(store.clone()).await;
    messages_hide(store.clone()).await;
    history_scopes(store.clone()).await;
    history_bounds(store.clone()).await;
    unread_count(store.clone()).await;
    unread_bounded(store.clone()).await;
    broadcasts(store.clone()).await;
    concurrent_inserts(store.clone()).await;
    queued_inserts_keep_their_order(store).await;
}

// ------------------------------------------------------------------------------------------
// messages

/// `insert_message`: sequence numbers 1, 2, 3… per conversation, timestamps never decreasing
/// along them, the conversation's last sequence and last-message time advanced.
pub async fn messages_insert(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let c = create(store, &app, conv_value(&app, ConvKind::Normal, "c", T0), &[("u1", Role::Owner), ("u2", Role::Member)]).await;
    let c2 = create(store, &app, conv_value(&app, ConvKind::Normal, "c2", T0), &[("u1", Role::Owner)]).await;

    let m1 = insert(store, msg(&app, c.id, "u1", T0 + 1000, "one")).await;
    assert_eq!((m1.seq, m1.timestamp), (1, T0 + 1000));
    let got = conversation(store, &app, c.id).await;
    assert_eq!((got.last_seq, got.last_message_at), (1, Some(T0 + 1000)));
    let m2 = insert(store, msg(&app, c.id, "u2", T0 + 2000, "two")).await;
    assert_eq!((m2.seq, m2.timestamp), (2, T0 + 2000));
    // an earlier timestamp is raised to the last one
    let m3 = insert(store, msg(&app, c.id, "u1", T0 + 1500, "three")).await;
    assert_eq!((m3.seq, m3.timestamp), (3, T0 + 2000), "timestamps never decrease along the sequence");
    let got = conversation(store, &app, c.id).await;
    assert_eq!((got.last_seq, got.last_message_at), (3, Some(T0 + 2000)));
    // the given sequence number is ignored
    let m4 = insert(store, Message { seq: 99, ..msg(&app, c.id, "u2", T0 + 2500, "four") }).await;
    assert_eq!((m4.seq, m4.timestamp), (4, T0 + 2500));
    let got = conversation(store, &app, c.id).await;
    assert_eq!((got.last_seq, got.last_message_at), (4, Some(T0 + 2500)));

    for m in [&m1, &m2, &m3, &m4] {
        let stored = store.get_message(app.id, m.id).await.unwrap().expect("stored");
        assert_eq!(&stored, m, "the stored message is the one insert_message returned");
    }
    // each conversation has its own sequence
    let n1 = insert(store, msg(&app, c2.id, "u1", T0, "other")).await;
    assert_eq!((n1.seq, n1.timestamp), (1, T0));
    assert_eq!(conversation(store, &app, c.id).await.last_seq, 4);

    // an unknown conversation
    let lost = msg(&app, c.id + 1_000_000_000, "u1", T0, "lost");
    assert!(matches!(store.insert_message(&lost).await, Err(Error::ConversationNotFound)), "insert into an unknown conversation");
    assert_eq!(store.get_message(app.id, lost.id).await.unwrap(), None);
    // the conversation of another app is unknown too
    let other = new_app(store).await;
    let foreign = msg(&other, c.id, "u1", T0, "foreign");
    assert!(matches!(store.insert_message(&foreign).await, Err(Error::ConversationNotFound)));
    assert_eq!(store.get_message(app.id, m1.id).await.unwrap().map(|m| m.app), Some(app.id));
    assert_eq!(store.get_message(other.id, m1.id).await.unwrap(), None, "messages are per app");
}

/// Every field of a message round-trips (restricted audiences included); `update_message`
/// applies a `MessagePatch`; `delete_message`.
pub async fn messages_round_trip_update_delete(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let c =
        create(store, &app, conv_value(&app, ConvKind::Service, "svc", T0), &[("u1", Role::Subscriber), ("u2", Role::Subscriber)]).await;

    let full = Message {
        content: Content::Binary(vec![0, 1, 2, 255, 0]),
        mtype: MessageType::IMAGE,
        ext: Some(json!({"k": [1, "x", null], "nested": {"a": true}})),
        mention_all: true,
        mentions: owned(&["u2", "u3"]),
        priority: Priority::High,
        system: true,
        push_data: Some(r#"{"alert":"hi"}"#.into()),
        from_ip: Some("10.0.0.1".into()),
        ..msg(&app, c.id, "sys", T0 + 1, "")
    };
    let m1 = insert(store, full).await;
    assert_eq!(store.get_message(app.id, m1.id).await.unwrap(), Some(m1.clone()), "every field round-trips");
    let text = insert(
        store,
        Message {
            content: Content::Text("héllo ✓ {\"json\": 1}".into()), priority: Priority::Low, ..msg(&app, c.id, "sys", T0 + 2, "")
        },
    )
    .await;
    assert_eq!(store.get_message(app.id, text.id).await.unwrap(), Some(text.clone()));
    let empty = insert(store, msg(&app, c.id, "sys", T0 + 3, "")).await;
    assert_eq!(store.get_message(app.id, empty.id).await.unwrap(), Some(empty.clone()), "empty content round-trips");

    // a restricted audience keeps its user list
    let to = insert(store, Message { audience: only(&["u1", "u3"]), ..msg(&app, c.id, "sys", T0 + 4, "for some") }).await;
    let got = store.get_message(app.id, to.id).await.unwrap().expect("stored");
    assert_eq!(sorted_audience(&got.audience), only(&["u1", "u3"]));
    assert_eq!(Message { audience: Audience::All, ..got }, Message { audience: Audience::All, ..to.clone() });
    let hq = HistoryQuery { scope: HistoryScope::Conv(c.id), older_than: None, newer_than: None, ascending: true, limit: 10, mtype: None };
    let hist = store.history(app.id, &hq).await.unwrap();
    assert_eq!(ids(&hist), vec![m1.id, text.id, empty.id, to.id]);
    assert_eq!(sorted_audience(&hist[3].audience), only(&["u1", "u3"]), "history carries audiences");
    assert_eq!(hist[0], m1, "history returns whole messages");

    // update_message
    let patch = MessagePatch {
        content: Some(Content::Text("edited".into())),
        mtype: Some(MessageType::TEXT),
        edited_at: Some(T0 + 10),
        mentions: Some((true, vec!["u2".into()])),
        ..Default::default()
    };
    let mut want = m1.clone();
    patch.apply(&mut want);
    assert_eq!(
        store.update_message(app.id, m1.id, &patch).await.unwrap(),
        Some(want.clone()),
        "update_message returns the patched message"
    );
    assert_eq!(store.get_message(app.id, m1.id).await.unwrap(), Some(want.clone()));
    // the first delivery time is set once
    store.update_message(app.id, m1.id, &MessagePatch { ack_at: Some(T0 + 11), ..Default::default() }).await.unwrap();
    let got = store.update_message(app.id, m1.id, &MessagePatch { ack_at: Some(T0 + 12), ..Default::default() }).await.unwrap().unwrap();
    assert_eq!(got.ack_at, Some(T0 + 11), "ack_at is set only if not set yet");
    let got = store
        .update_message(
            app.id,
            m1.id,
            &MessagePatch {
                recalled_at: Some(T0 + 13),
                content: Some(Content::Binary(vec![9])),
                mtype: Some(MessageType::RECALLED),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.recalled_at, got.edited_at, got.ack_at, got.mtype),
        (Some(T0 + 13), Some(T0 + 10), Some(T0 + 11), MessageType::RECALLED)
    );
    want = Message {
        recalled_at: Some(T0 + 13),
        ack_at: Some(T0 + 11),
        content: Content::Binary(vec![9]),
        mtype: MessageType::RECALLED,
        ..want
    };
    assert_eq!(store.get_message(app.id, m1.id).await.unwrap(), Some(want.clone()));
    assert_eq!((want.seq, want.timestamp, &want.from), (m1.seq, m1.timestamp, &m1.from), "position and sender never change");
    // the audience survives an update
    store.update_message(app.id, to.id, &MessagePatch { edited_at: Some(T0 + 14), ..Default::default() }).await.unwrap();
    assert_eq!(sorted_audience(&store.get_message(app.id, to.id).await.unwrap().unwrap().audience), only(&["u1", "u3"]));
    assert_eq!(store.update_message(app.id, m1.id + 1_000_000_000, &patch).await.unwrap(), None, "unknown message: None");

    // delete_message
    assert!(store.delete_message(app.id, text.id).await.unwrap());
    assert_eq!(store.get_message(app.id, text.id).await.unwrap(), None);
    assert!(!store.delete_message(app.id, text.id).await.unwrap(), "deleting again: false");
    assert!(store.delete_message(app.id, to.id).await.unwrap(), "deleting a restricted message");
    assert_eq!(ids(&store.history(app.id, &hq).await.unwrap()), vec![m1.id, empty.id]);
    // sequence numbers are never reused
    let next = insert(store, msg(&app, c.id, "sys", T0 + 20, "next")).await;
    assert_eq!(next.seq, 5);
}

/// `hide_message` removes a message from one user's view only, for every audience; false if it
/// was not visible to them.
pub async fn messages_hide(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let c = create(
        store,
        &app,
        conv_value(&app, ConvKind::Normal, "c", T0),
        &[("u1", Role::Owner), ("u2", Role::Member), ("u3", Role::Member)],
    )
    .await;
    let a = insert(store, msg(&app, c.id, "u1", T0 + 1, "to all")).await;
    let b = insert(store, Message { audience: only(&["u1", "u2"]), ..msg(&app, c.id, "u1", T0 + 2, "to some") }).await;

    assert!(store.hide_message(app.id, a.id, "u2").await.unwrap(), "hiding a visible message");
    assert!(!store.hide_message(app.id, a.id, "u2").await.unwrap(), "hiding it again: false");
    assert!(!store.hide_message(app.id, b.id, "u3").await.unwrap(), "not visible to u3: false");
    assert!(store.hide_message(app.id, b.id, "u2").await.unwrap());
    assert!(!store.hide_message(app.id, b.id, "u2").await.unwrap());
    assert!(!store.hide_message(app.id, a.id + 1_000_000_000, "u1").await.unwrap(), "unknown message: false");

    let view = |scope: HistoryScope| async move {
        let q = HistoryQuery { scope, older_than: None, newer_than: None, ascending: false, limit: 100, mtype: None };
        ids(&store.history(app.id, &q).await.expect("history"))
    };
    let as_user = |u: &str| HistoryScope::ConvAs { conv: c.id, user: u.to_string() };
    assert_eq!(view(as_user("u2")).await, Vec::<i64>::new(), "u2 sees neither");
    assert_eq!(view(as_user("u1")).await, vec![b.id, a.id], "u1 sees both");
    assert_eq!(view(as_user("u3")).await, vec![a.id], "u3 sees the message to all only");
    assert_eq!(view(HistoryScope::Conv(c.id)).await, vec![b.id, a.id], "hiding deletes nothing");
    assert!(store.get_message(app.id, a.id).await.unwrap().is_some());
    assert_eq!(store.get_message(app.id, a.id).await.unwrap().unwrap().audience, Audience::All, "hiding does not restrict a message");

    // hiding a restricted message from its last recipient
    assert!(store.hide_message(app.id, b.id, "u1").await.unwrap());
    assert_eq!(view(as_user("u1")).await, vec![a.id]);
    assert!(!store.hide_message(app.id, b.id, "u1").await.unwrap());
}

/// `history` over each scope, both directions, with limit and type filter.
pub async fn history_scopes(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    let x = create(store, &app, conv_value(&app, ConvKind::Normal, "X", T0), &[("u1", Role::Owner), ("u2", Role::Member)]).await;
    let y = create(store, &app, conv_value(&app, ConvKind::Normal, "Y", T0), &[("u1", Role::Owner), ("u2", Role::Member)]).await;
    let x1 = insert(store, msg(&app, x.id, "u1", T0 + 100, "x1")).await;
    let y1 = insert(store, msg(&app, y.id, "u2", T0 + 150, "y1")).await;
    let x2 = insert(store, Message { mtype: MessageType::IMAGE, ..msg(&app, x.id, "u2", T0 + 200, "x2") }).await;
    let y2 = insert(store, msg(&app, y.id, "u1", T0 + 250, "y2")).await;
    let x3 = insert(store, Message { audience: only(&["u2"]), ..msg(&app, x.id, "u1", T0 + 300, "x3") }).await;
    let oc = create(store, &other, conv_value(&other, ConvKind::Normal, "O", T0), &[("u1", Role::Owner)]).await;
    insert(store, msg(&other, oc.id, "u1", T0 + 120, "elsewhere")).await;

    let h = |scope: HistoryScope, ascending: bool, limit: i64, mtype: Option<i64>| async move {
        let q = HistoryQuery { scope: scope.clone(), older_than: None, newer_than: None, ascending, limit, mtype };
        ids(&store.history(app.id, &q).await.unwrap_or_else(|e| panic!("history {q:?}: {e}")))
    };
    let conv = HistoryScope::Conv(x.id);
    assert_eq!(h(conv.clone(), false, 100, None).await, vec![x3.id, x2.id, x1.id], "newest first");
    assert_eq!(h(conv.clone(), true, 100, None).await, vec![x1.id, x2.id, x3.id], "ascending");
    assert_eq!(h(conv.clone(), false, 2, None).await, vec![x3.id, x2.id], "limit keeps the newest");
    assert_eq!(h(conv.clone(), true, 2, None).await, vec![x1.id, x2.id], "ascending limit keeps the oldest");
    assert_eq!(h(conv.clone(), false, 0, None).await, Vec::<i64>::new());
    assert_eq!(h(conv.clone(), false, 100, Some(MessageType::IMAGE)).await, vec![x2.id], "by type");
    assert_eq!(
        h(HistoryScope::ConvAs { conv: x.id, user: "u1".into() }, false, 100, None).await,
        vec![x2.id, x1.id],
        "others' messages left out"
    );
    assert_eq!(h(HistoryScope::ConvAs { conv: x.id, user: "u2".into() }, false, 100, None).await, vec![x3.id, x2.id, x1.id]);
    assert_eq!(h(HistoryScope::Sender("u1".into()), false, 100, None).await, vec![x3.id, y2.id, x1.id], "everything u1 sent");
    assert_eq!(h(HistoryScope::Sender("u1".into()), true, 2, None).await, vec![x1.id, y2.id]);
    assert_eq!(h(HistoryScope::Sender("nobody".into()), true, 100, None).await, Vec::<i64>::new());
    assert_eq!(h(HistoryScope::App, false, 100, None).await, vec![x3.id, y2.id, x2.id, y1.id, x1.id], "the whole app, by time");
    assert_eq!(h(HistoryScope::App, true, 3, None).await, vec![x1.id, y1.id, x2.id]);
    assert_eq!(h(HistoryScope::App, false, 100, Some(MessageType::TEXT)).await, vec![x3.id, y2.id, y1.id, x1.id]);
    assert_eq!(h(HistoryScope::Conv(oc.id), false, 100, None).await, Vec::<i64>::new(), "another app's conversation is not in this app");
}

/// `history` ranges: bounds by message (inclusive or not, ties in time broken by position) and
/// by time alone, at either end or both, in each scope; paging backwards.
pub async fn history_bounds(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let c = create(store, &app, conv_value(&app, ConvKind::Normal, "c", T0), &[("u1", Role::Owner)]).await;
    let mut m = Vec::new();
    for ts in [10, 20, 30, 30, 40, 50] {
        m.push(insert(store, msg(&app, c.id, "u1", T0 + ts, &format!("at {ts}"))).await);
    }
    let id = |i: usize| m[i - 1].id;
    let at = |i: usize, inclusive: bool| Some(Bound { timestamp: m[i - 1].timestamp, id: Some(m[i - 1].id), inclusive });
    let time = |ts: i64, inclusive: bool| Some(Bound { timestamp: T0 + ts, id: None, inclusive });
    let want = |is: &[usize]| is.iter().map(|i| id(*i)).collect::<Vec<_>>();

    for scope in [
        HistoryScope::Conv(c.id),
        HistoryScope::ConvAs { conv: c.id, user: "u1".into() },
        HistoryScope::Sender("u1".into()),
        HistoryScope::App,
    ] {
        let h = |older_than: Option<Bound>, newer_than: Option<Bound>, ascending: bool, limit: i64| {
            let q = HistoryQuery { scope: scope.clone(), older_than, newer_than, ascending, limit, mtype: None };
            async move { ids(&store.history(app.id, &q).await.unwrap_or_else(|e| panic!("history {q:?}: {e}"))) }
        };
        let ctx = format!("{scope:?}");
        assert_eq!(h(at(4, false), None, false, 100).await, want(&[3, 2, 1]), "{ctx}: older than #4");
        assert_eq!(h(at(4, true), None, false, 100).await, want(&[4, 3, 2, 1]), "{ctx}: #4 and older");
        assert_eq!(h(at(3, false), None, false, 100).await, want(&[2, 1]), "{ctx}: older than #3 (same time as #4)");
        assert_eq!(h(None, at(3, false), true, 100).await, want(&[4, 5, 6]), "{ctx}: newer than #3");
        assert_eq!(h(None, at(3, true), true, 100).await, want(&[3, 4, 5, 6]), "{ctx}: #3 and newer");
        assert_eq!(h(None, at(4, false), false, 100).await, want(&[6, 5]), "{ctx}: newer than #4, newest first");
        assert_eq!(h(at(5, false), at(2, false), true, 100).await, want(&[3, 4]), "{ctx}: between #2 and #5");
        assert_eq!(h(at(5, false), at(2, false), false, 100).await, want(&[4, 3]), "{ctx}: between, newest first");
        assert_eq!(h(at(5, true), at(2, true), true, 100).await, want(&[2, 3, 4, 5]), "{ctx}: between, inclusive");
        assert_eq!(h(at(5, true), at(2, true), false, 2).await, want(&[5, 4]), "{ctx}: between, inclusive, newest 2");
        assert_eq!(h(at(5, true), at(2, true), true, 2).await, want(&[2, 3]), "{ctx}: between, inclusive, oldest 2");
        assert_eq!(h(at(2, false), at(2, false), true, 100).await, want(&[]), "{ctx}: empty range");
        // by time alone
        assert_eq!(h(time(30, false), None, false, 100).await, want(&[2, 1]), "{ctx}: before 30");
        assert_eq!(h(time(30, true), None, false, 100).await, want(&[4, 3, 2, 1]), "{ctx}: at or before 30");
        assert_eq!(h(None, time(30, false), true, 100).await, want(&[5, 6]), "{ctx}: after 30");
        assert_eq!(h(None, time(30, true), true, 100).await, want(&[3, 4, 5, 6]), "{ctx}: at or after 30");
        assert_eq!(h(time(45, false), time(15, false), false, 100).await, want(&[5, 4, 3, 2]), "{ctx}: between 15 and 45");
        assert_eq!(h(time(5, true), None, false, 100).await, want(&[]), "{ctx}: before the first");
        // paging backwards from the newest, two at a time
        let mut pages = Vec::new();
        let mut older: Option<Bound> = None;
        loop {
            let page = h(older.clone(), None, false, 2).await;
            if page.is_empty() {
                break;
            }
            let last = m.iter().find(|x| x.id == *page.last().unwrap()).unwrap();
            older = Some(Bound { timestamp: last.timestamp, id: Some(last.id), inclusive: false });
            pages.push(page);
            assert!(pages.len() <= 3, "{ctx}: paging ends");
        }
        assert_eq!(pages, vec![want(&[6, 5]), want(&[4, 3]), want(&[2, 1])], "{ctx}: pages");
    }
}

/// `unread_count`: messages after the member's read cursor, not sent by them, not recalled,
/// visible to them; over normal and service conversations (not chat rooms), or in one.
pub async fn unread_count(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let n = create(store, &app, conv_value(&app, ConvKind::Normal, "N", T0), &[("me", Role::Member), ("u1", Role::Member)]).await;
    let sv = create(store, &app, conv_value(&app, ConvKind::Service, "S", T0), &[("me", Role::Subscriber)]).await;
    let room = create(store, &app, conv_value(&app, ConvKind::Chatroom, "R", T0), &[("me", Role::Member), ("u1", Role::Member)]).await;
    let outside = create(store, &app, conv_value(&app, ConvKind::Normal, "O", T0), &[("u1", Role::Member)]).await;

    let _n1 = insert(store, msg(&app, n.id, "u1", T0 + 1, "n1")).await;
    let _n2 = insert(store, msg(&app, n.id, "me", T0 + 2, "n2 (mine)")).await;
    let n3 = insert(store, msg(&app, n.id, "u1", T0 + 3, "n3")).await;
    let n4 = insert(store, msg(&app, n.id, "u1", T0 + 4, "n4 (recalled)")).await;
    store.update_message(app.id, n4.id, &MessagePatch { recalled_at: Some(T0 + 5), ..Default::default() }).await.unwrap();
    insert(store, Message { audience: only(&["u1"]), ..msg(&app, n.id, "u1", T0 + 6, "n5 (not for me)") }).await;
    let n6 = insert(store, Message { audience: only(&["me"]), ..msg(&app, n.id, "u1", T0 + 7, "n6 (for me)") }).await;
    insert(store, msg(&app, sv.id, "sys", T0 + 8, "s1")).await;
    insert(store, msg(&app, sv.id, "sys", T0 + 9, "s2")).await;
    insert(store, msg(&app, room.id, "u1", T0 + 10, "r1")).await;
    insert(store, msg(&app, outside.id, "u1", T0 + 11, "o1")).await;

    let unread =
        |user: &'static str, conv: Option<i64>| async move { store.unread_count(app.id, user, conv, WIDE).await.expect("unread_count") };
    assert_eq!(unread("me", Some(n.id)).await, 3, "n1, n3, n6");
    assert_eq!(unread("me", Some(sv.id)).await, 2, "a service conversation counts");
    assert_eq!(unread("me", None).await, 5, "normal and service conversations; not chat rooms, not others' conversations");
    assert_eq!(unread("me", Some(outside.id)).await, 0, "not a member");
    assert_eq!(unread("u1", Some(n.id)).await, 1, "only n2 is not u1's");
    assert_eq!(unread("nobody", None).await, 0);

    // the read cursor
    store.update_members(app.id, n.id, &owned(&["me"]), &MemberPatch { read_seq: Some(n3.seq), ..Default::default() }).await.unwrap();
    assert_eq!(unread("me", Some(n.id)).await, 1, "after the read cursor: n6");
    assert_eq!(unread("me", None).await, 3);
    // hiding
    assert!(store.hide_message(app.id, n6.id, "me").await.unwrap());
    assert_eq!(unread("me", Some(n.id)).await, 0, "a hidden message is not unread");
    store.update_members(app.id, sv.id, &owned(&["me"]), &MemberPatch { read_seq: Some(100), ..Default::default() }).await.unwrap();
    assert_eq!(unread("me", None).await, 0);
    // new messages count again
    insert(store, msg(&app, n.id, "u1", T0 + 20, "n7")).await;
    assert_eq!(unread("me", None).await, 1);
    let other = new_app(store).await;
    assert_eq!(store.unread_count(other.id, "me", None, WIDE).await.unwrap(), 0, "per app");
    // a newcomer's cursors start at the newest message: nothing before they joined is unread
    let late = Member::new(n.id, "late", Role::Member, T0 + 30);
    store.add_members(app.id, n.id, &[late], None, T0 + 30).await.unwrap();
    assert_eq!(unread("late", Some(n.id)).await, 0, "history is not unread for a newcomer");
    let row = store.get_member(app.id, n.id, "late").await.unwrap().expect("member");
    let last = store.get_conversation(app.id, n.id).await.unwrap().expect("conversation").last_seq;
    assert_eq!((row.read_seq, row.delivered_seq), (last, last));
    insert(store, msg(&app, n.id, "u1", T0 + 31, "n8")).await;
    assert_eq!(unread("late", Some(n.id)).await, 1, "what comes after joining is");
}

/// `unread_count` and `unread_summary` within `UnreadBounds`: a conversation's count is exact
/// below `count_max` and stops at it however much lies behind; the member's own, recalled and
/// hidden messages and those addressed to others never count; a message addressed to the member
/// counts however many addressed to others follow it; `mentioned` finds a mention behind more than
/// the bounds' worth of newer messages; the summary's newest unread message, `since`, `limit` and
/// order (most recently active first); a total is the sum of the conversations' counts.
pub async fn unread_bounded(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let b = UnreadBounds { count_max: 5, scan_max: 10 };
    let members = [("me", Role::Member), ("u1", Role::Member), ("u2", Role::Member)];
    let a = create(store, &app, conv_value(&app, ConvKind::Normal, "A", T0), &members).await;
    let count = |conv: i64| async move { store.unread_count(app.id, "me", Some(conv), b).await.expect("unread_count") };
    let summary =
        |since: i64, limit: i64| async move { store.unread_summary(app.id, "me", since, limit, b).await.expect("unread_summary") };

    // below the cap: exact
    let _a1 = insert(store, msg(&app, a.id, "u1", T0 + 1, "a1")).await;
    insert(store, msg(&app, a.id, "me", T0 + 2, "mine")).await;
    let a3 = insert(store, msg(&app, a.id, "u1", T0 + 3, "recalled")).await;
    store.update_message(app.id, a3.id, &MessagePatch { recalled_at: Some(T0 + 4), ..Default::default() }).await.unwrap();
    insert(store, Message { audience: only(&["u2"]), ..msg(&app, a.id, "u1", T0 + 5, "for u2") }).await;
    let _a5 = insert(store, Message { audience: only(&["me"]), ..msg(&app, a.id, "u1", T0 + 6, "for me") }).await;
    let a6 = insert(store, msg(&app, a.id, "u1", T0 + 7, "hidden")).await;
    assert!(store.hide_message(app.id, a6.id, "me").await.unwrap());
    let a7 = insert(store, msg(&app, a.id, "u1", T0 + 8, "a7")).await;
    assert_eq!(count(a.id).await, 3, "a1, for me, a7: not mine, the recalled, u2's or the hidden one");
    let s = summary(0, 10).await;
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].conv, s[0].kind, s[0].count, s[0].mentioned), (a.id, ConvKind::Normal, 3, false));
    assert_eq!(s[0].last.as_ref().map(|m| m.id), Some(a7.id), "the newest unread message");

    // the cap: the count stops at count_max, however many follow
    let mut newest = a7;
    for i in 0..20 {
        newest = insert(store, msg(&app, a.id, "u1", T0 + 10 + i, "more")).await;
    }
    assert_eq!(count(a.id).await, 5, "at the cap");
    let s = summary(0, 10).await;
    assert_eq!((s[0].count, s[0].last.as_ref().map(|m| m.id)), (5, Some(newest.id)));
    // the read cursor: only what follows it counts
    let cursor = |conv: i64, seq: i64| async move {
        store.update_members(app.id, conv, &owned(&["me"]), &MemberPatch { read_seq: Some(seq), ..Default::default() }).await.unwrap();
    };
    cursor(a.id, newest.seq - 2).await;
    assert_eq!(count(a.id).await, 2, "exact again below the cap");
    cursor(a.id, newest.seq).await;
    assert_eq!(count(a.id).await, 0);
    assert!(summary(0, 10).await.is_empty(), "nothing unread, nothing listed");

    // a mention behind more than the bounds' worth of newer messages
    let m = create(store, &app, conv_value(&app, ConvKind::Normal, "M", T0), &members).await;
    insert(store, Message { mentions: owned(&["me"]), ..msg(&app, m.id, "u1", T0 + 100, "@me") }).await;
    for i in 0..30 {
        insert(store, msg(&app, m.id, "u1", T0 + 101 + i, "chatter")).await;
    }
    // mentions that do not count: someone else's, an @all of my own, a recalled @me
    let n = create(store, &app, conv_value(&app, ConvKind::Normal, "N", T0), &members).await;
    insert(store, Message { mentions: owned(&["u2"]), ..msg(&app, n.id, "u1", T0 + 200, "@u2") }).await;
    insert(store, Message { mention_all: true, ..msg(&app, n.id, "me", T0 + 201, "@all, mine") }).await;
    let r = insert(store, Message { mentions: owned(&["me"]), ..msg(&app, n.id, "u1", T0 + 202, "@me, recalled") }).await;
    store.update_message(app.id, r.id, &MessagePatch { recalled_at: Some(T0 + 203), ..Default::default() }).await.unwrap();
    for i in 0..30 {
        insert(store, msg(&app, n.id, "u1", T0 + 204 + i, "chatter")).await;
    }
    // an @all among the counted messages
    let all = create(store, &app, conv_value(&app, ConvKind::Normal, "All", T0), &members).await;
    insert(store, Message { mention_all: true, ..msg(&app, all.id, "u1", T0 + 300, "@all") }).await;

    // a message addressed to me behind many addressed to others
    let sv = create(store, &app, conv_value(&app, ConvKind::Service, "S", T0), &[("me", Role::Subscriber)]).await;
    let mine = insert(store, Message { audience: only(&["me"]), ..msg(&app, sv.id, "sys", T0 + 400, "for me") }).await;
    for i in 0..30 {
        insert(store, Message { audience: only(&["u9"]), ..msg(&app, sv.id, "sys", T0 + 401 + i, "for u9") }).await;
    }

    let s = summary(0, 10).await;
    let got: Vec<(i64, i64, bool)> = s.iter().map(|e| (e.conv, e.count, e.mentioned)).collect();
    assert_eq!(
        got,
        vec![(sv.id, 1, false), (all.id, 1, true), (n.id, 5, false), (m.id, 5, true)],
        "most recently active first; counts capped; mentions found behind newer messages"
    );
    assert_eq!(s[0].kind, ConvKind::Service);
    assert_eq!(s[0].last.as_ref().map(|m| m.id), Some(mine.id), "the one message for me, behind 30 for u9");
    assert_eq!(store.unread_count(app.id, "me", None, b).await.unwrap(), 1 + 1 + 5 + 5, "a total sums the capped counts");
    // since and limit
    let ids = |s: Vec<UnreadEntry>| s.into_iter().map(|e| e.conv).collect::<Vec<_>>();
    assert_eq!(ids(summary(T0 + 299, 10).await), vec![sv.id, all.id], "only conversations active after since");
    assert_eq!(ids(summary(0, 2).await), vec![sv.id, all.id], "at most limit");
    // wide bounds count everything
    assert_eq!(store.unread_count(app.id, "me", Some(m.id), WIDE).await.unwrap(), 31);
    assert_eq!(store.unread_count(app.id, "u2", Some(n.id), WIDE).await.unwrap(), 32, "u2: u1's and mine, not the recalled one");
}

// ------------------------------------------------------------------------------------------
// broadcasts

/// `insert_broadcast`, `get_broadcast`, `update_broadcast`, `delete_broadcast`,
/// `list_broadcasts` (valid at `now`, newest first, skip and limit, by conversation).
pub async fn broadcasts(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    let s1 = create(store, &app, conv_value(&app, ConvKind::Service, "S1", T0), &[]).await;
    let s2 = create(store, &app, conv_value(&app, ConvKind::Service, "S2", T0), &[]).await;
    let bc = |conv: i64, ts: i64, valid_till: i64, content: Content, push: Option<Value>| Broadcast {
        app: app.id,
        id: fresh_id(),
        conv,
        from: "sys".into(),
        content,
        timestamp: T0 + ts,
        valid_till: T0 + valid_till,
        push,
        transient: false,
    };
    let b1 = bc(s1.id, 1, 1000, Content::Text("one".into()), Some(json!({"alert": "hi", "badge": 1})));
    let b2 = bc(s1.id, 2, 5000, Content::Binary(vec![1, 2, 3]), None);
    let b3 = bc(s2.id, 3, 3000, Content::Text("three".into()), None);
    let b4 = bc(s1.id, 4, 100, Content::Text("expired".into()), None);
    for b in [&b1, &b2, &b3, &b4] {
        store.insert_broadcast(b).await.expect("insert_broadcast");
    }
    assert_eq!(store.get_broadcast(app.id, b1.id).await.unwrap(), Some(b1.clone()), "a broadcast round-trips");
    assert_eq!(store.get_broadcast(app.id, b2.id).await.unwrap(), Some(b2.clone()));
    assert_eq!(store.get_broadcast(app.id, b1.id + 1_000_000_000).await.unwrap(), None);
    assert_eq!(store.get_broadcast(other.id, b1.id).await.unwrap(), None, "per app");

    let list = |conv: Option<i64>, now: i64, skip: i64, limit: i64| async move {
        store.list_broadcasts(app.id, conv, T0 + now, skip, limit).await.expect("list_broadcasts").iter().map(|b| b.id).collect::<Vec<_>>()
    };
    assert_eq!(list(None, 500, 0, 10).await, vec![b3.id, b2.id, b1.id], "valid ones, newest first");
    assert_eq!(list(Some(s1.id), 500, 0, 10).await, vec![b2.id, b1.id], "by conversation");
    assert_eq!(list(None, 2000, 0, 10).await, vec![b3.id, b2.id], "expired ones left out");
    assert_eq!(list(None, 500, 1, 1).await, vec![b2.id], "skip and limit");
    assert_eq!(list(None, 500, 3, 10).await, Vec::<i64>::new());
    assert_eq!(list(None, 10_000, 0, 10).await, Vec::<i64>::new());
    let full = store.list_broadcasts(app.id, Some(s1.id), T0 + 500, 0, 10).await.unwrap();
    assert_eq!(full, vec![b2.clone(), b1.clone()], "listed broadcasts are whole");
    assert!(store.list_broadcasts(other.id, None, T0, 0, 10).await.unwrap().is_empty(), "per app");

    assert!(store.update_broadcast(app.id, b1.id, &Content::Text("new".into())).await.unwrap());
    assert_eq!(store.get_broadcast(app.id, b1.id).await.unwrap(), Some(Broadcast { content: Content::Text("new".into()), ..b1.clone() }));
    assert!(store.update_broadcast(app.id, b2.id, &Content::Text("now text".into())).await.unwrap());
    assert_eq!(store.get_broadcast(app.id, b2.id).await.unwrap().unwrap().content, Content::Text("now text".into()));
    assert!(!store.update_broadcast(app.id, b1.id + 1_000_000_000, &Content::Text("x".into())).await.unwrap(), "unknown: false");
    assert!(!store.update_broadcast(other.id, b1.id, &Content::Text("x".into())).await.unwrap(), "another app's: false");

    assert!(store.delete_broadcast(app.id, b2.id).await.unwrap());
    assert_eq!(store.get_broadcast(app.id, b2.id).await.unwrap(), None);
    assert!(!store.delete_broadcast(app.id, b2.id).await.unwrap(), "deleting again: false");
    assert!(!store.delete_broadcast(other.id, b1.id).await.unwrap(), "another app's: false");
    assert_eq!(list(None, 500, 0, 10).await, vec![b3.id, b1.id]);
}

// ------------------------------------------------------------------------------------------
// concurrency

/// 100 concurrent `insert_message` calls on one conversation (and 50 on another, interleaved)
/// get sequence numbers exactly 1..=100 (and 1..=50): no gaps, no duplicates.
pub async fn concurrent_inserts(store: Arc<dyn Store>) {
    let app = new_app(&*store).await;
    let a = create(&*store, &app, conv_value(&app, ConvKind::Normal, "A", T0), &[("u1", Role::Owner)]).await;
    let b = create(&*store, &app, conv_value(&app, ConvKind::Normal, "B", T0), &[("u1", Role::Owner)]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..150i64 {
        let (conv, n) = if i % 3 == 2 { (b.id, i / 3) } else { (a.id, i) };
        let m = msg(&app, conv, "u1", T0 + (n * 7919) % 1000, &format!("m{i}"));
        let store = store.clone();
        tasks.spawn(async move { store.insert_message(&m).await });
    }
    let mut got: Vec<Message> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        got.push(r.expect("task").expect("insert_message"));
    }
    for (conv, count) in [(a.id, 100), (b.id, 50)] {
        let mut seqs: Vec<i64> = got.iter().filter(|m| m.conv == conv).map(|m| m.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=count).collect::<Vec<_>>(), "sequence numbers 1..={count}, no gaps, no duplicates");
        let c = conversation(&*store, &app, conv).await;
        assert_eq!(c.last_seq, count);
        let q =
            HistoryQuery { scope: HistoryScope::Conv(conv), older_than: None, newer_than: None, ascending: true, limit: 1000, mtype: None };
        let hist = store.history(app.id, &q).await.unwrap();
        assert_eq!(hist.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=count).collect::<Vec<_>>(), "history in sequence order");
        assert!(hist.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "timestamps never decrease along the sequence");
        assert_eq!(c.last_message_at, hist.last().map(|m| m.timestamp));
        for h in &hist {
            let returned = got.iter().find(|m| m.id == h.id).expect("returned");
            assert_eq!((returned.seq, returned.timestamp), (h.seq, h.timestamp), "insert_message returned what was stored");
        }
    }
}

/// `queue_message_with`: inserts queued one after the other commit in that order (their
/// sequence numbers follow it) however their futures are awaited (here, last first), and each
/// is stored when its future completes.
pub async fn queued_inserts_keep_their_order(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let c = create(store, &app, conv_value(&app, ConvKind::Normal, "queued", T0), &[("u1", Role::Owner)]).await;
    let sent: Vec<Message> = (0..50).map(|i| msg(&app, c.id, "u1", T0 + i, &format!("m{i}"))).collect();
    let queued: Vec<_> = sent.iter().map(|m| store.queue_message_with(m, &[])).collect();
    let mut stored = Vec::new();
    for q in queued.into_iter().rev() {
        stored.push(q.await.expect("queued insert"));
    }
    stored.reverse();
    for (i, (m, s)) in sent.iter().zip(&stored).enumerate() {
        assert_eq!((s.id, s.seq), (m.id, i as i64 + 1), "the {i}th insert queued has sequence number {}", i + 1);
        assert_eq!(store.get_message(app.id, m.id).await.unwrap().map(|x| x.seq), Some(i as i64 + 1));
    }
    assert_eq!(conversation(store, &app, c.id).await.last_seq, 50);
}
