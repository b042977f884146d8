//! Conversations, their queries and members: [`ConversationStore`]. Uses the app and user
//! traits for its fixtures, and the message trait where members and messages meet (a delete takes
//! the messages with it; a newcomer has nothing unread; the query on last-message times).

use crate::*;

/// Run this module's checks, one after the other, on one store.
pub async fn run(store: Arc<dyn Store>) {
    conversation_create_get(store.clone()).await;
    conversation_unique(store.clone()).await;
    conversation_update(store.clone()).await;
    conversation_delete(store.clone()).await;
    query_builtin_fields(store.clone()).await;
    query_members(store.clone()).await;
    query_custom_fields(store.clone()).await;
    query_dates(store.clone()).await;
    query_logic_order_paging(store.clone()).await;
    query_kinds(store.clone()).await;
    members_add_remove(store.clone()).await;
    members_list_count(store.clone()).await;
    members_update(store.clone()).await;
    user_memberships(store.clone()).await;
    conversation_quotas(store.clone()).await;
    concurrent_quota_creates(store).await;
}

// ------------------------------------------------------------------------------------------
// conversations

/// `create_conversation` stores every field and the first members; `get_conversation`.
pub async fn conversation_create_get(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    let mut c = conv_value(&app, ConvKind::Normal, "room", T0);
    c.creator = Some("u1".into());
    c.attrs = attrs(json!({"attr": {"color": "red", "n": 1.5}, "n": 1, "tags": ["a", 2, true, null], "when": date(T0)}));
    c.settings = ConvSettings {
        description: Some("about".into()),
        announcement: Some("hello".into()),
        avatar: Some("https://example.com/a.png".into()),
        max_members: Some(10),
        public: true,
        approval: true,
        members_invite: true,
        mute_all: true,
        disabled: true,
    };
    ensure(store, &app, &["u1", "u2"]).await;
    let rows = vec![
        Member::new(c.id, "u1", Role::Owner, T0),
        Member { nickname: Some("two".into()), ..Member::new(c.id, "u2", Role::Member, T0 + 1) },
    ];
    let (got, created) = store.create_conversation(&c, &rows).await.expect("create_conversation");
    assert!(created);
    assert_eq!(got, c);
    assert_eq!(conversation(store, &app, c.id).await, c, "a conversation round-trips");
    assert_eq!(store.member_lists(app.id, &[c.id]).await.unwrap(), rows, "the first members are stored");
    assert_eq!(store.get_member(app.id, c.id, "u2").await.unwrap(), Some(rows[1].clone()));

    // every kind, with its optional fields
    let mut thread = conv_value(&app, ConvKind::Thread, "thread", T0 + 10);
    thread.parent = Some((c.id, fresh_id()));
    let mut temp = conv_value(&app, ConvKind::Temporary, "temp", T0 + 11);
    temp.expires_at = Some(T0 + 86_400_000);
    temp.name = None;
    let room = conv_value(&app, ConvKind::Chatroom, "room2", T0 + 12);
    let service = conv_value(&app, ConvKind::Service, "service", T0 + 13);
    let (thread_id, (group, anchor)) = (thread.id, thread.parent.expect("parent"));
    for k in [thread, temp, room, service] {
        let (got, created) = store.create_conversation(&k, &[]).await.expect("create_conversation without members");
        assert!(created);
        assert_eq!(got, k);
        assert_eq!(conversation(store, &app, k.id).await, k, "a {:?} conversation round-trips", k.kind);
        assert!(store.member_lists(app.id, &[k.id]).await.unwrap().is_empty());
    }

    // a thread is found by its group and by the message it hangs from
    for (field, v) in [(Field::ParentConv, group), (Field::ParentMsg, anchor)] {
        let q = ConvQuery { filter: Filter::Cond(field.clone(), Op::Eq(Scalar::Int(v))), limit: 10, ..Default::default() };
        let (found, _) = store.query_conversations(app.id, &q).await.expect("query by parent");
        assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), [thread_id], "{field:?}");
    }

    assert_eq!(store.get_conversation(app.id, c.id + 1_000_000_000).await.unwrap(), None);
    assert_eq!(store.get_conversation(other.id, c.id).await.unwrap(), None, "conversations are per app");
}

/// A unique conversation whose `unique_id` exists is not created again: the existing one is
/// returned with `created = false`, and nothing of the new one is written.
pub async fn conversation_unique(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    ensure(store, &app, &["a", "b", "c"]).await;
    let uid = format!("unique-{}", fresh_id());
    let mut first = conv_value(&app, ConvKind::Normal, "first", T0);
    first.unique = true;
    first.unique_id = Some(uid.clone());
    let m = |conv: i64, u: &str| Member::new(conv, u, Role::Member, T0);
    let (got, created) = store.create_conversation(&first, &[m(first.id, "a"), m(first.id, "b")]).await.unwrap();
    assert!(created);
    assert_eq!(got, first);

    let mut second = conv_value(&app, ConvKind::Normal, "second", T0 + 5);
    second.unique = true;
    second.unique_id = Some(uid.clone());
    let (got, created) =
        store.create_conversation(&second, &[m(second.id, "a"), m(second.id, "b"), m(second.id, "c")]).await.expect("create again");
    assert!(!created, "an existing unique conversation is not created again");
    assert_eq!(got, first, "the existing conversation is returned");
    assert_eq!(store.conversation_by_unique(app.id, &uid).await.unwrap(), Some(first.clone()), "found by its unique id");
    assert_eq!(store.conversation_by_unique(other.id, &uid).await.unwrap(), None, "unique ids are per app");
    assert_eq!(store.conversation_by_unique(app.id, "no-such-uid").await.unwrap(), None);
    assert_eq!(store.get_conversation(app.id, second.id).await.unwrap(), None, "nothing of the second is stored");
    assert_eq!(store.get_member(app.id, second.id, "a").await.unwrap(), None);
    assert_eq!(users_of(&store.list_members(app.id, first.id, &MemberQuery::default()).await.unwrap()), owned(&["a", "b"]));

    // the same unique id in another app is another conversation
    let mut elsewhere = conv_value(&other, ConvKind::Normal, "elsewhere", T0);
    elsewhere.unique = true;
    elsewhere.unique_id = Some(uid);
    let (got, created) = store.create_conversation(&elsewhere, &[]).await.unwrap();
    assert!(created, "unique ids are per app");
    assert_eq!(got, elsewhere);

    // conversations without a unique id never collide
    let plain1 = conv_value(&app, ConvKind::Normal, "plain", T0);
    let plain2 = conv_value(&app, ConvKind::Normal, "plain", T0);
    assert!(store.create_conversation(&plain1, &[]).await.unwrap().1);
    assert!(store.create_conversation(&plain2, &[]).await.unwrap().1);
}

/// `update_conversation` applies a `ConvPatch` (name, creator, attribute operations,
/// settings) atomically, sets `updated_at`, and leaves the rest alone.
pub async fn conversation_update(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let mut c = conv_value(&app, ConvKind::Normal, "before", T0);
    c.creator = Some("u1".into());
    c.attrs = attrs(json!({"n": 1, "tags": ["a"], "attr": {"k": "v", "keep": 1}, "gone": true, "f": 1}));
    c.settings.max_members = Some(50);
    let c = create(store, &app, c, &[("u1", Role::Owner)]).await;
    let m = insert(store, msg(&app, c.id, "u1", T0 + 5, "hi")).await;

    let p = |path: &str, op| (path.split('.').map(str::to_string).collect::<Vec<_>>(), op);
    let patch = ConvPatch {
        name: Some(Some("after".into())),
        creator: Some(None),
        attrs: vec![
            p("n", AttrOp::Increment(2.into())),
            p("tags", AttrOp::AddUnique(vec![json!("a"), json!("b"), json!("b")])),
            p("attr.color", AttrOp::Set(json!("red"))),
            p("attr.k", AttrOp::Delete),
            p("gone", AttrOp::Delete),
            p("fresh", AttrOp::Add(vec![json!(1), json!({"x": 1})])),
            p("counter", AttrOp::Increment(5.into())),
            p("f", AttrOp::Increment(serde_json::Number::from_f64(0.5).unwrap())),
            p("when", AttrOp::Set(date(T0 + 7))),
            p("missing.deep", AttrOp::Delete),
        ],
        settings: SettingsChange { announcement: Some("news".into()), approval: Some(true), ..Default::default() },
    };
    let mut want = conversation(store, &app, c.id).await;
    patch.apply(&mut want, T0 + 10);
    let got = store.update_conversation(app.id, c.id, &patch, T0 + 10).await.expect("update_conversation");
    assert_eq!(got, want, "update_conversation returns the patched conversation");
    assert_eq!(conversation(store, &app, c.id).await, want, "the patch is stored");
    assert_eq!(
        Value::Object(want.attrs.clone()),
        json!({"n": 3, "tags": ["a", "b"], "attr": {"keep": 1, "color": "red"}, "f": 1.5, "fresh": [1, {"x": 1}], "counter": 5, "when": date(T0 + 7)})
    );
    assert_eq!((want.last_seq, want.last_message_at), (1, Some(m.timestamp)), "message state is untouched");

    // a second patch: remove from an array, clear the name; settings left as they are
    let patch2 = ConvPatch {
        name: Some(None),
        attrs: vec![p("tags", AttrOp::Remove(vec![json!("a"), json!("zzz")])), p("fresh", AttrOp::AddUnique(vec![json!(1), json!(2)]))],
        ..Default::default()
    };
    patch2.apply(&mut want, T0 + 20);
    assert_eq!(store.update_conversation(app.id, c.id, &patch2, T0 + 20).await.unwrap(), want);
    assert_eq!(conversation(store, &app, c.id).await, want);
    assert_eq!(want.attrs["tags"], json!(["b"]));
    assert_eq!(want.settings.announcement.as_deref(), Some("news"));

    // settings change one by one: a change of one leaves the others as they are in the store
    let patch3 = ConvPatch { settings: SettingsChange { public: Some(true), ..Default::default() }, ..Default::default() };
    let got = store.update_conversation(app.id, c.id, &patch3, T0 + 25).await.unwrap();
    assert_eq!(
        (got.settings.public, got.settings.approval, got.settings.announcement.as_deref()),
        (true, true, Some("news")),
        "a settings change keeps the settings it does not name"
    );

    // an empty patch only touches updated_at
    let mut want = conversation(store, &app, c.id).await;
    want.updated_at = T0 + 30;
    assert_eq!(store.update_conversation(app.id, c.id, &ConvPatch::default(), T0 + 30).await.unwrap(), want);
    assert_eq!(conversation(store, &app, c.id).await, want);

    // members are untouched
    assert_eq!(users_of(&store.list_members(app.id, c.id, &MemberQuery::default()).await.unwrap()), owned(&["u1"]));
    assert!(matches!(store.update_conversation(app.id, c.id + 1_000_000_000, &patch, T0).await, Err(Error::ConversationNotFound)));
}

/// `delete_conversation` removes the conversation with its members, messages and broadcasts,
/// and nothing of any other conversation.
pub async fn conversation_delete(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let c = create(store, &app, conv_value(&app, ConvKind::Normal, "doomed", T0), &[("a", Role::Owner), ("b", Role::Member)]).await;
    let keep = create(store, &app, conv_value(&app, ConvKind::Normal, "kept", T0 + 1), &[("a", Role::Member), ("b", Role::Member)]).await;
    let m1 = insert(store, msg(&app, c.id, "a", T0 + 10, "one")).await;
    let m2 = insert(store, Message { audience: only(&["b"]), ..msg(&app, c.id, "a", T0 + 11, "two") }).await;
    assert!(store.hide_message(app.id, m1.id, "b").await.unwrap());
    let k1 = insert(store, msg(&app, keep.id, "a", T0 + 12, "kept")).await;
    let bc = |conv: i64| Broadcast {
        app: app.id,
        id: fresh_id(),
        conv,
        from: "sys".into(),
        content: Content::Text("b".into()),
        timestamp: T0,
        valid_till: T0 + 1_000_000,
        push: None,
        transient: false,
    };
    let (b1, b2) = (bc(c.id), bc(keep.id));
    store.insert_broadcast(&b1).await.unwrap();
    store.insert_broadcast(&b2).await.unwrap();

    assert!(store.delete_conversation(app.id, c.id).await.expect("delete_conversation"), "an existing conversation is deleted");
    assert_eq!(store.get_conversation(app.id, c.id).await.unwrap(), None);
    assert_eq!(store.get_member(app.id, c.id, "a").await.unwrap(), None, "its members are deleted");
    assert!(store.list_members(app.id, c.id, &MemberQuery::default()).await.unwrap().is_empty());
    assert_eq!(store.count_members(app.id, c.id, None).await.unwrap(), 0);
    assert!(store.member_lists(app.id, &[c.id]).await.unwrap().is_empty());
    assert_eq!(store.get_message(app.id, m1.id).await.unwrap(), None, "its messages are deleted");
    assert_eq!(store.get_message(app.id, m2.id).await.unwrap(), None);
    let hq =
        HistoryQuery { scope: HistoryScope::Conv(c.id), older_than: None, newer_than: None, ascending: false, limit: 100, mtype: None };
    assert!(store.history(app.id, &hq).await.unwrap().is_empty());
    let all = HistoryQuery { scope: HistoryScope::App, ..hq.clone() };
    assert_eq!(ids(&store.history(app.id, &all).await.unwrap()), vec![k1.id], "only the other conversation's messages remain");
    assert_eq!(store.get_broadcast(app.id, b1.id).await.unwrap(), None, "its broadcasts are deleted");
    assert!(store.list_broadcasts(app.id, Some(c.id), T0, 0, 100).await.unwrap().is_empty());
    let mq = MembershipQuery { role: None, kind: None, after: None, descending: false, limit: 100 };
    let convs: Vec<i64> = store.user_memberships(app.id, "a", &mq).await.unwrap().iter().map(|m| m.conv).collect();
    assert_eq!(convs, vec![keep.id], "memberships of a deleted conversation are gone");
    assert_eq!(store.unread_count(app.id, "b", None, WIDE).await.unwrap(), 1, "only the kept conversation's message is unread");

    // the other conversation is intact
    assert_eq!(store.get_message(app.id, k1.id).await.unwrap(), Some(k1));
    assert_eq!(store.get_broadcast(app.id, b2.id).await.unwrap(), Some(b2));
    assert_eq!(store.count_members(app.id, keep.id, None).await.unwrap(), 2);

    assert!(!store.delete_conversation(app.id, c.id).await.unwrap(), "deleting again: false");
    assert!(!store.delete_conversation(app.id, c.id + 1_000_000_000).await.unwrap());

    // a new message into the deleted conversation is refused
    assert!(matches!(store.insert_message(&msg(&app, c.id, "a", T0 + 20, "late")).await, Err(Error::ConversationNotFound)));
}

// ------------------------------------------------------------------------------------------
// conversation queries

/// Six conversations in a fresh app, made in this order (so the default order is this one):
///
/// | name    | kind      | creator | members (notifications off)  | attrs |
/// |---------|-----------|---------|------------------------------|-------|
/// | alpha   | normal    | u1      | u1 (owner), u2               | n=1, s="1", tags=[red,blue], when=D1, attr.color=red, obj={a:1,b:2} |
/// | beta    | normal    | u2      | u2, u3, u4                   | n=2.5, s="two", tags=[green], when=D2, flag=true |
/// | gamma   | chat room | –       | –                            | n="1" |
/// | delta   | service   | u9      | subscriber u1                | – |
/// | epsilon | temporary | u5      | u5 (off), u6                 | n=10, tags=[], when=D0 |
/// | zeta    | normal, unique "z-uid" | u1 | u1, u3              | s="Two", n=null |
///
/// Messages: alpha at T0+40s, beta at T0+50s. Creation times T0 + i·1000.
struct QueryFixture {
    app: App,
    alpha: Conversation,
    beta: Conversation,
    gamma: Conversation,
    delta: Conversation,
}

/// 2020-05-26T06:42:31.482Z
const D1: i64 = 1_590_475_351_482;
/// One millisecond after D1.
const D2: i64 = D1 + 1;
/// 2001-09-09T01:46:39.999Z
const D0: i64 = 999_999_999_999;

const ALL: [&str; 6] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];

async fn query_fixture(store: &dyn Store) -> QueryFixture {
    let app = new_app(store).await;
    let at = |i: i64| T0 + i * 1000;

    let mut alpha = conv_value(&app, ConvKind::Normal, "alpha", at(0));
    alpha.creator = Some("u1".into());
    alpha.attrs =
        attrs(json!({"n": 1, "s": "1", "tags": ["red", "blue"], "when": date(D1), "attr": {"color": "red"}, "obj": {"a": 1, "b": 2}}));
    let alpha = create(store, &app, alpha, &[("u1", Role::Owner), ("u2", Role::Member)]).await;

    let mut beta = conv_value(&app, ConvKind::Normal, "beta", at(1));
    beta.creator = Some("u2".into());
    beta.attrs = attrs(json!({"n": 2.5, "s": "two", "tags": ["green"], "when": date(D2), "flag": true}));
    let beta = create(store, &app, beta, &[("u2", Role::Owner), ("u3", Role::Member), ("u4", Role::Member)]).await;

    let mut gamma = conv_value(&app, ConvKind::Chatroom, "gamma", at(2));
    gamma.attrs = attrs(json!({"n": "1"}));
    let gamma = create(store, &app, gamma, &[]).await;

    let mut delta = conv_value(&app, ConvKind::Service, "delta", at(3));
    delta.creator = Some("u9".into());
    let delta = create(store, &app, delta, &[("u1", Role::Subscriber)]).await;

    let mut eps = conv_value(&app, ConvKind::Temporary, "epsilon", at(4));
    eps.creator = Some("u5".into());
    eps.attrs = attrs(json!({"n": 10, "tags": [], "when": date(D0)}));
    eps.expires_at = Some(T0 + 86_400_000);
    ensure(store, &app, &["u5", "u6"]).await;
    let rows = vec![
        Member { notifications_off: true, ..Member::new(eps.id, "u5", Role::Owner, eps.created_at) },
        Member::new(eps.id, "u6", Role::Member, eps.created_at),
    ];
    assert!(store.create_conversation(&eps, &rows).await.unwrap().1);

    let mut zeta = conv_value(&app, ConvKind::Normal, "zeta", at(5));
    zeta.creator = Some("u1".into());
    zeta.unique = true;
    zeta.unique_id = Some("z-uid".into());
    zeta.attrs = attrs(json!({"s": "Two", "n": null}));
    create(store, &app, zeta, &[("u1", Role::Owner), ("u3", Role::Member)]).await;

    insert(store, msg(&app, alpha.id, "u1", T0 + 40_000, "a")).await;
    insert(store, msg(&app, beta.id, "u2", T0 + 50_000, "b")).await;
    QueryFixture { app, alpha, beta, gamma, delta }
}

/// Filters on the built-in fields: name, creator, id, kind flags, unique id, times; values of
/// the wrong type match nothing.
pub async fn query_builtin_fields(store: Arc<dyn Store>) {
    let st = &*store;
    let fx = query_fixture(st).await;
    let app = &fx.app;
    let mut f = Failures::default();
    let at = |i: i64| T0 + i * 1000;

    f.filter(st, app, Filter::True, &ALL).await;
    f.filter(st, app, cond(Field::Name, Op::Eq(s("beta"))), &["beta"]).await;
    f.filter(st, app, cond(Field::Name, Op::Ne(s("beta"))), &["alpha", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(Field::Name, Op::In(strs(&["alpha", "zeta", "nope"]))), &["alpha", "zeta"]).await;
    f.filter(st, app, cond(Field::Name, Op::Nin(strs(&["alpha", "zeta"]))), &["beta", "gamma", "delta", "epsilon"]).await;
    f.filter(st, app, cond(Field::Name, Op::Gt(s("delta"))), &["gamma", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(Field::Name, Op::Lte(s("beta"))), &["alpha", "beta"]).await;
    f.filter(st, app, cond(Field::Name, Op::Regex { pattern: "^GAM".into(), flags: "i".into() }), &["gamma"]).await;
    f.filter(st, app, cond(Field::Name, Op::Regex { pattern: "^GAM".into(), flags: String::new() }), &[]).await;
    f.filter(
        st,
        app,
        cond(Field::Name, Op::Regex { pattern: "a$".into(), flags: String::new() }),
        &["alpha", "beta", "gamma", "delta", "zeta"],
    )
    .await;
    f.filter(st, app, cond(Field::Name, Op::Exists(true)), &ALL).await;

    f.filter(st, app, cond(Field::Creator, Op::Eq(s("u1"))), &["alpha", "zeta"]).await;
    f.filter(st, app, cond(Field::Creator, Op::Exists(false)), &["gamma"]).await;
    f.filter(st, app, cond(Field::Creator, Op::Eq(Scalar::Null)), &["gamma"]).await;
    f.filter(st, app, cond(Field::Creator, Op::Exists(true)), &["alpha", "beta", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(Field::Creator, Op::Ne(s("u1"))), &["beta", "gamma", "delta", "epsilon"]).await;
    f.filter(st, app, cond(Field::Creator, Op::In(vec![s("u2"), Scalar::Null])), &["beta", "gamma"]).await;

    f.filter(st, app, cond(Field::Id, Op::Eq(Scalar::Int(fx.beta.id))), &["beta"]).await;
    f.filter(st, app, cond(Field::Id, Op::In(vec![Scalar::Int(fx.alpha.id), Scalar::Int(fx.gamma.id)])), &["alpha", "gamma"]).await;
    f.filter(st, app, cond(Field::Id, Op::Gte(Scalar::Int(fx.delta.id))), &["delta", "epsilon", "zeta"]).await;

    f.filter(st, app, cond(Field::Transient, Op::Eq(Scalar::Bool(true))), &["gamma"]).await;
    f.filter(st, app, cond(Field::Transient, Op::Ne(Scalar::Bool(true))), &["alpha", "beta", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(Field::System, Op::Eq(Scalar::Bool(true))), &["delta"]).await;
    f.filter(st, app, cond(Field::Temporary, Op::Eq(Scalar::Bool(true))), &["epsilon"]).await;
    f.filter(st, app, cond(Field::Unique, Op::Eq(Scalar::Bool(true))), &["zeta"]).await;
    f.filter(st, app, cond(Field::Unique, Op::Eq(Scalar::Bool(false))), &["alpha", "beta", "gamma", "delta", "epsilon"]).await;
    f.filter(st, app, cond(Field::UniqueId, Op::Eq(s("z-uid"))), &["zeta"]).await;
    f.filter(st, app, cond(Field::UniqueId, Op::Exists(true)), &["zeta"]).await;

    f.filter(st, app, cond(Field::CreatedAt, Op::Gte(Scalar::Date(at(3)))), &["delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(Field::CreatedAt, Op::Lt(Scalar::Date(at(1)))), &["alpha"]).await;
    f.filter(st, app, cond(Field::CreatedAt, Op::Eq(Scalar::Date(at(2)))), &["gamma"]).await;
    f.filter(st, app, cond(Field::CreatedAt, Op::Lt(Scalar::Int(at(1)))), &["alpha"]).await;
    f.filter(st, app, cond(Field::UpdatedAt, Op::Gt(Scalar::Date(at(4)))), &["zeta"]).await;
    f.filter(st, app, cond(Field::LastMessageAt, Op::Exists(true)), &["alpha", "beta"]).await;
    f.filter(st, app, cond(Field::LastMessageAt, Op::Exists(false)), &["gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(Field::LastMessageAt, Op::Gt(Scalar::Date(T0 + 45_000))), &["beta"]).await;

    // type-strict, as LeanCloud's (MongoDB's) query language is: a number never equals or
    // orders against a string, a string is not a date
    f.filter(st, app, cond(Field::Name, Op::Gt(Scalar::Int(0))), &[]).await;
    f.filter(st, app, cond(Field::Name, Op::Lt(Scalar::Int(0))), &[]).await;
    f.filter(st, app, cond(Field::CreatedAt, Op::Gt(s("0"))), &[]).await;
    f.filter(st, app, cond(Field::CreatedAt, Op::Lt(s("a"))), &[]).await;
    f.filter(st, app, cond(Field::Id, Op::Eq(s(&fx.beta.id.to_string()))), &[]).await;
    f.filter(st, app, cond(Field::Transient, Op::Eq(Scalar::Int(1))), &[]).await;
    f.filter(st, app, cond(Field::CreatedAt, Op::Ne(s(&at(0).to_string()))), &ALL).await;
    f.filter(st, app, cond(Field::Id, Op::Ne(s(&fx.alpha.id.to_string()))), &ALL).await;
    f.filter(st, app, cond(Field::Id, Op::In(vec![s(&fx.alpha.id.to_string()), Scalar::Int(fx.beta.id)])), &["beta"]).await;
    f.filter(st, app, cond(Field::Id, Op::Nin(vec![s(&fx.alpha.id.to_string())])), &ALL).await;

    // other apps' conversations are never seen
    let other = new_app(st).await;
    f.filter(st, &other, Filter::True, &[]).await;
    f.finish("query_builtin_fields");
}

/// Filters on the member list (`m`) and the notifications-off list (`mu`): subscribers are
/// not members.
pub async fn query_members(store: Arc<dyn Store>) {
    let st = &*store;
    let fx = query_fixture(st).await;
    let app = &fx.app;
    let mut f = Failures::default();
    let m = |op| cond(Field::Members, op);

    f.filter(st, app, m(Op::Eq(s("u2"))), &["alpha", "beta"]).await;
    f.filter(st, app, m(Op::Eq(s("u1"))), &["alpha", "zeta"]).await;
    f.filter(st, app, m(Op::Eq(s("nobody"))), &[]).await;
    f.filter(st, app, m(Op::Ne(s("u1"))), &["beta", "gamma", "delta", "epsilon"]).await;
    f.filter(st, app, m(Op::In(strs(&["u4", "u5"]))), &["beta", "epsilon"]).await;
    f.filter(st, app, m(Op::In(vec![])), &[]).await;
    f.filter(st, app, m(Op::Nin(strs(&["u1", "u2"]))), &["gamma", "delta", "epsilon"]).await;
    f.filter(st, app, m(Op::All(strs(&["u2", "u3"]))), &["beta"]).await;
    f.filter(st, app, m(Op::All(strs(&["u1", "u3"]))), &["zeta"]).await;
    f.filter(st, app, m(Op::All(strs(&["u1", "u4"]))), &[]).await;
    f.filter(st, app, m(Op::Size(3)), &["beta"]).await;
    f.filter(st, app, m(Op::Size(2)), &["alpha", "epsilon", "zeta"]).await;
    f.filter(st, app, m(Op::Exists(true)), &["alpha", "beta", "epsilon", "zeta"]).await;
    f.filter(st, app, m(Op::Eq(Scalar::Json(json!(["u1", "u2"])))), &["alpha"]).await;
    f.filter(st, app, m(Op::Regex { pattern: "^u[56]$".into(), flags: String::new() }), &["epsilon"]).await;

    let mu = |op| cond(Field::Muted, op);
    f.filter(st, app, mu(Op::Eq(s("u5"))), &["epsilon"]).await;
    f.filter(st, app, mu(Op::Eq(s("u6"))), &[]).await;
    f.filter(st, app, mu(Op::In(strs(&["u1", "u5"]))), &["epsilon"]).await;

    // membership changes show in queries at once
    ensure(st, app, &["u7"]).await;
    st.add_members(app.id, fx.gamma.id, &[Member::new(fx.gamma.id, "u7", Role::Member, T0)], None, T0 + 1).await.unwrap();
    f.filter(st, app, m(Op::Eq(s("u7"))), &["gamma"]).await;
    st.remove_members(app.id, fx.beta.id, &owned(&["u4"]), T0 + 2).await.unwrap();
    f.filter(st, app, m(Op::Size(3)), &[]).await;
    f.filter(st, app, m(Op::In(strs(&["u4", "u5"]))), &["epsilon"]).await;
    st.update_members(app.id, fx.alpha.id, &owned(&["u2"]), &MemberPatch { notifications_off: Some(true), ..Default::default() })
        .await
        .unwrap();
    f.filter(st, app, mu(Op::Eq(s("u2"))), &["alpha"]).await;
    f.finish("query_members");
}

/// Filters on custom fields: numbers and strings never match each other; equality on an array
/// means "contains"; `$all`, `$size`, `$in`, `$nin`, `$exists`, null, nested paths, objects.
pub async fn query_custom_fields(store: Arc<dyn Store>) {
    let st = &*store;
    let fx = query_fixture(st).await;
    let app = &fx.app;
    let mut f = Failures::default();
    let n = |op| cond(custom("n"), op);

    // numbers versus strings
    f.filter(st, app, n(Op::Eq(Scalar::Int(1))), &["alpha"]).await;
    f.filter(st, app, n(Op::Eq(Scalar::Float(1.0))), &["alpha"]).await;
    f.filter(st, app, n(Op::Eq(s("1"))), &["gamma"]).await;
    f.filter(st, app, n(Op::Eq(Scalar::Float(2.5))), &["beta"]).await;
    f.filter(st, app, n(Op::Gt(Scalar::Int(1))), &["beta", "epsilon"]).await;
    f.filter(st, app, n(Op::Gte(Scalar::Int(1))), &["alpha", "beta", "epsilon"]).await;
    f.filter(st, app, n(Op::Lt(Scalar::Int(10))), &["alpha", "beta"]).await;
    f.filter(st, app, n(Op::Lte(Scalar::Float(10.0))), &["alpha", "beta", "epsilon"]).await;
    f.filter(st, app, n(Op::Lt(s("2"))), &["gamma"]).await;
    f.filter(st, app, n(Op::In(vec![Scalar::Int(1), s("1")])), &["alpha", "gamma"]).await;
    f.filter(st, app, n(Op::In(vec![Scalar::Int(1), Scalar::Int(10)])), &["alpha", "epsilon"]).await;
    f.filter(st, app, n(Op::Nin(vec![Scalar::Int(1)])), &["beta", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, n(Op::Ne(Scalar::Int(1))), &["beta", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(custom("s"), Op::Eq(Scalar::Int(1))), &[]).await;
    f.filter(st, app, cond(custom("s"), Op::Eq(s("two"))), &["beta"]).await;
    f.filter(st, app, cond(custom("s"), Op::Regex { pattern: "^two$".into(), flags: "i".into() }), &["beta", "zeta"]).await;
    f.filter(st, app, n(Op::Regex { pattern: "1".into(), flags: String::new() }), &["gamma"]).await;

    // null and existence: a null value exists, and equals null like a missing field does
    f.filter(st, app, n(Op::Eq(Scalar::Null)), &["delta", "zeta"]).await;
    f.filter(st, app, n(Op::Ne(Scalar::Null)), &["alpha", "beta", "gamma", "epsilon"]).await;
    f.filter(st, app, n(Op::Exists(true)), &["alpha", "beta", "gamma", "epsilon", "zeta"]).await;
    f.filter(st, app, n(Op::Exists(false)), &["delta"]).await;
    f.filter(st, app, n(Op::In(vec![Scalar::Null, Scalar::Int(10)])), &["delta", "epsilon", "zeta"]).await;

    // arrays
    let tags = |op| cond(custom("tags"), op);
    f.filter(st, app, tags(Op::Eq(s("red"))), &["alpha"]).await;
    f.filter(st, app, tags(Op::Eq(s("green"))), &["beta"]).await;
    f.filter(st, app, tags(Op::Ne(s("red"))), &["beta", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, tags(Op::In(strs(&["green", "blue"]))), &["alpha", "beta"]).await;
    f.filter(st, app, tags(Op::Nin(strs(&["red"]))), &["beta", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, tags(Op::All(strs(&["red", "blue"]))), &["alpha"]).await;
    f.filter(st, app, tags(Op::All(strs(&["red", "green"]))), &[]).await;
    f.filter(st, app, tags(Op::Size(2)), &["alpha"]).await;
    f.filter(st, app, tags(Op::Size(0)), &["epsilon"]).await;
    f.filter(st, app, tags(Op::Exists(true)), &["alpha", "beta", "epsilon"]).await;
    f.filter(st, app, tags(Op::Regex { pattern: "^bl".into(), flags: String::new() }), &["alpha"]).await;
    f.filter(st, app, tags(Op::Eq(Scalar::Json(json!(["red", "blue"])))), &["alpha"]).await;
    f.filter(st, app, tags(Op::Gt(s("pink"))), &["alpha"]).await;

    // booleans, nested paths, objects
    f.filter(st, app, cond(custom("flag"), Op::Eq(Scalar::Bool(true))), &["beta"]).await;
    f.filter(st, app, cond(custom("flag"), Op::Eq(Scalar::Bool(false))), &[]).await;
    f.filter(st, app, cond(custom("flag"), Op::Eq(Scalar::Int(1))), &[]).await;
    f.filter(st, app, cond(custom("flag"), Op::Ne(Scalar::Bool(true))), &["alpha", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(custom("flag"), Op::Exists(false)), &["alpha", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, cond(custom("attr.color"), Op::Eq(s("red"))), &["alpha"]).await;
    f.filter(st, app, cond(custom("attr.color"), Op::Exists(true)), &["alpha"]).await;
    f.filter(st, app, cond(custom("attr.missing"), Op::Exists(true)), &[]).await;
    f.filter(st, app, cond(custom("attr"), Op::Eq(Scalar::Json(json!({"color": "red"})))), &["alpha"]).await;
    f.filter(st, app, cond(custom("obj"), Op::Eq(Scalar::Json(json!({"a": 1, "b": 2})))), &["alpha"]).await;
    f.filter(st, app, cond(custom("obj.b"), Op::Gte(Scalar::Int(2))), &["alpha"]).await;
    f.filter(st, app, cond(custom("nothere"), Op::Eq(s("x"))), &[]).await;
    f.finish("query_custom_fields");
}

/// Dates: a `Scalar::Date` compares with stored `{"__type":"Date","iso":…}` values (kept in
/// canonical form, `…T…:…:….mmmZ`) to the millisecond; dates never match numbers or strings.
pub async fn query_dates(store: Arc<dyn Store>) {
    let st = &*store;
    let fx = query_fixture(st).await;
    let app = &fx.app;
    let mut f = Failures::default();
    let when = |op| cond(custom("when"), op);

    f.filter(st, app, when(Op::Eq(Scalar::Date(D1))), &["alpha"]).await;
    f.filter(st, app, when(Op::Eq(Scalar::Date(D2))), &["beta"]).await;
    f.filter(st, app, when(Op::Gt(Scalar::Date(D1))), &["beta"]).await;
    f.filter(st, app, when(Op::Gte(Scalar::Date(D1))), &["alpha", "beta"]).await;
    f.filter(st, app, when(Op::Lt(Scalar::Date(D2))), &["alpha", "epsilon"]).await;
    f.filter(st, app, when(Op::Lte(Scalar::Date(D0))), &["epsilon"]).await;
    f.filter(st, app, when(Op::Gt(Scalar::Date(D0 - 1))), &["alpha", "beta", "epsilon"]).await;
    f.filter(st, app, when(Op::In(vec![Scalar::Date(D0), Scalar::Date(D2)])), &["beta", "epsilon"]).await;
    f.filter(st, app, when(Op::Ne(Scalar::Date(D1))), &["beta", "gamma", "delta", "epsilon", "zeta"]).await;
    f.filter(st, app, when(Op::Exists(true)), &["alpha", "beta", "epsilon"]).await;
    // the stored value, as JSON, equals itself
    f.filter(st, app, when(Op::Eq(Scalar::Json(date(D1)))), &["alpha"]).await;
    // dates are neither numbers nor strings
    f.filter(st, app, when(Op::Gt(Scalar::Int(0))), &[]).await;
    f.filter(st, app, when(Op::Eq(Scalar::Int(D1))), &[]).await;
    f.filter(st, app, when(Op::Eq(s(&iso_ms(D1)))), &[]).await;
    f.filter(st, app, cond(custom("n"), Op::Gt(Scalar::Date(0))), &[]).await;
    f.filter(st, app, cond(custom("s"), Op::Lt(Scalar::Date(D2))), &[]).await;
    f.finish("query_dates");
}

/// `Or`/`And`, ordering (ties by id), skip, limit and count.
pub async fn query_logic_order_paging(store: Arc<dyn Store>) {
    let st = &*store;
    let fx = query_fixture(st).await;
    let app = &fx.app;
    let mut f = Failures::default();
    let name = |v: &str| cond(Field::Name, Op::Eq(s(v)));

    f.filter(st, app, Filter::Or(vec![name("alpha"), cond(Field::Members, Op::Eq(s("u4")))]), &["alpha", "beta"]).await;
    f.filter(st, app, Filter::And(vec![cond(Field::Members, Op::Eq(s("u1"))), cond(Field::Unique, Op::Eq(Scalar::Bool(true)))]), &["zeta"])
        .await;
    f.filter(st, app, Filter::Or(vec![]), &[]).await;
    f.filter(st, app, Filter::And(vec![]), &ALL).await;
    f.filter(
        st,
        app,
        Filter::And(vec![
            Filter::Or(vec![cond(custom("n"), Op::Gt(Scalar::Int(1))), cond(custom("s"), Op::Eq(s("1")))]),
            cond(Field::Members, Op::Exists(true)),
        ]),
        &["alpha", "beta", "epsilon"],
    )
    .await;
    f.filter(st, app, Filter::Or(vec![Filter::And(vec![name("alpha"), name("beta")]), name("gamma")]), &["gamma"]).await;

    let q = |order: Vec<(Field, bool)>, filter: Filter, skip: i64, limit: i64, count: bool| ConvQuery {
        kinds: None,
        filter,
        order,
        skip,
        limit,
        count,
    };
    let by_name = vec![(Field::Name, false)];
    f.query(st, app, q(by_name.clone(), Filter::True, 0, 100, false), &["alpha", "beta", "delta", "epsilon", "gamma", "zeta"], None).await;
    f.query(
        st,
        app,
        q(vec![(Field::Name, true)], Filter::True, 0, 100, false),
        &["zeta", "gamma", "epsilon", "delta", "beta", "alpha"],
        None,
    )
    .await;
    f.query(st, app, q(vec![(Field::CreatedAt, true)], Filter::True, 1, 2, true), &["epsilon", "delta"], Some(6)).await;
    f.query(st, app, q(by_name.clone(), Filter::True, 4, 100, true), &["gamma", "zeta"], Some(6)).await;
    f.query(st, app, q(by_name.clone(), Filter::True, 0, 0, true), &[], Some(6)).await;
    f.query(st, app, q(by_name.clone(), Filter::True, 10, 5, true), &[], Some(6)).await;
    f.query(st, app, q(vec![], cond(Field::Members, Op::Eq(s("u2"))), 0, 1, true), &["alpha"], Some(2)).await;
    f.query(st, app, q(vec![], cond(Field::Members, Op::Eq(s("u2"))), 1, 1, true), &["beta"], Some(2)).await;
    f.query(st, app, q(vec![], Filter::True, 2, 2, false), &["gamma", "delta"], None).await;
    // by a custom number field
    let numbers = cond(custom("n"), Op::Gt(Scalar::Int(0)));
    f.query(st, app, q(vec![(custom("n"), false)], numbers.clone(), 0, 100, false), &["alpha", "beta", "epsilon"], None).await;
    f.query(st, app, q(vec![(custom("n"), true)], numbers, 0, 100, false), &["epsilon", "beta", "alpha"], None).await;
    // ties are broken by id, ascending, whichever way the key sorts
    let creators = cond(Field::Creator, Op::In(strs(&["u1", "u2"])));
    f.query(st, app, q(vec![(Field::Creator, false)], creators.clone(), 0, 100, false), &["alpha", "zeta", "beta"], None).await;
    f.query(st, app, q(vec![(Field::Creator, true)], creators, 0, 100, false), &["beta", "alpha", "zeta"], None).await;
    // several keys
    f.query(
        st,
        app,
        q(vec![(Field::Unique, true), (Field::Name, true)], cond(Field::Members, Op::Exists(true)), 0, 100, false),
        &["zeta", "epsilon", "beta", "alpha"],
        None,
    )
    .await;
    // conversations without messages sort as the smallest: first ascending, last descending
    f.query(
        st,
        app,
        q(vec![(Field::LastMessageAt, true)], Filter::True, 0, 100, false),
        &["beta", "alpha", "gamma", "delta", "epsilon", "zeta"],
        None,
    )
    .await;
    f.query(
        st,
        app,
        q(vec![(Field::LastMessageAt, false)], Filter::True, 0, 100, false),
        &["gamma", "delta", "epsilon", "zeta", "alpha", "beta"],
        None,
    )
    .await;
    f.finish("query_logic_order_paging");
}

/// `ConvQuery::kinds` restricts the kinds searched.
pub async fn query_kinds(store: Arc<dyn Store>) {
    let st = &*store;
    let fx = query_fixture(st).await;
    let app = &fx.app;
    let mut f = Failures::default();
    let q = |kinds: Vec<ConvKind>, filter: Filter, count: bool| ConvQuery { kinds: Some(kinds), filter, count, ..Default::default() };
    f.query(st, app, q(vec![ConvKind::Chatroom, ConvKind::Service], Filter::True, false), &["gamma", "delta"], None).await;
    f.query(st, app, q(vec![ConvKind::Normal], Filter::True, true), &["alpha", "beta", "zeta"], Some(3)).await;
    f.query(st, app, q(vec![ConvKind::Normal], cond(Field::Members, Op::Eq(s("u1"))), false), &["alpha", "zeta"], None).await;
    f.query(st, app, q(vec![ConvKind::Temporary, ConvKind::Thread], Filter::True, false), &["epsilon"], None).await;
    f.query(st, app, q(vec![ConvKind::Thread], Filter::True, true), &[], Some(0)).await;
    f.query(st, app, q(vec![], Filter::True, true), &[], Some(0)).await;
    f.query(st, app, ConvQuery { kinds: None, ..Default::default() }, &ALL, None).await;
    f.finish("query_kinds");
}

// ------------------------------------------------------------------------------------------
// members

/// `add_members` (with `max`: all or nothing; present members left alone) and
/// `remove_members` return only the users they changed and set `updated_at`.
pub async fn members_add_remove(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    ensure(store, &app, &["u1", "u2", "u3", "u4", "u5", "s1"]).await;
    let c = create(store, &app, conv_value(&app, ConvKind::Normal, "c", T0), &[("u1", Role::Owner), ("u2", Role::Member)]).await;
    let m = |u: &str, at: i64| Member::new(c.id, u, Role::Member, at);

    // over the cap: refused, nothing added
    let r = store.add_members(app.id, c.id, &[m("u3", T0 + 1), m("u4", T0 + 1)], Some(3), T0 + 1).await;
    assert!(matches!(r, Err(Error::ConversationFull { max: 3 })), "over max: ConversationFull, got {r:?}");
    assert_eq!(store.count_members(app.id, c.id, None).await.unwrap(), 2, "nothing was added");
    assert_eq!(store.get_member(app.id, c.id, "u3").await.unwrap(), None);
    assert_eq!(conversation(store, &app, c.id).await.updated_at, T0, "a refused add changes nothing");

    // subscribers do not count against the cap
    let sub = Member::new(c.id, "s1", Role::Subscriber, T0 + 2);
    assert_eq!(store.add_members(app.id, c.id, &[sub], Some(2), T0 + 2).await.unwrap(), owned(&["s1"]));

    // up to the cap exactly
    assert_eq!(store.add_members(app.id, c.id, &[m("u3", T0 + 3)], Some(3), T0 + 3).await.unwrap(), owned(&["u3"]));
    assert_eq!(conversation(store, &app, c.id).await.updated_at, T0 + 3, "adding sets updated_at");
    assert_eq!(store.get_member(app.id, c.id, "u3").await.unwrap(), Some(m("u3", T0 + 3)));
    // re-adding present members at the cap is not over it
    assert_eq!(store.add_members(app.id, c.id, &[m("u1", T0 + 4)], Some(3), T0 + 4).await.unwrap(), Vec::<String>::new());

    // present members are left as they are; only the new are returned
    let again = Member { nickname: Some("x".into()), muted_until: Some(T0), ..Member::new(c.id, "u1", Role::Admin, T0 + 5) };
    let added = store.add_members(app.id, c.id, &[again, m("u4", T0 + 5)], None, T0 + 5).await.unwrap();
    assert_eq!(added, owned(&["u4"]));
    assert_eq!(store.get_member(app.id, c.id, "u1").await.unwrap(), Some(Member::new(c.id, "u1", Role::Owner, T0)));
    assert_eq!(conversation(store, &app, c.id).await.updated_at, T0 + 5);
    assert_eq!(store.count_members(app.id, c.id, None).await.unwrap(), 4);

    // remove: only those removed are returned
    let mut removed = store.remove_members(app.id, c.id, &owned(&["u4", "nobody", "u2"]), T0 + 6).await.unwrap();
    removed.sort();
    assert_eq!(removed, owned(&["u2", "u4"]));
    assert_eq!(conversation(store, &app, c.id).await.updated_at, T0 + 6, "removing sets updated_at");
    assert_eq!(store.get_member(app.id, c.id, "u2").await.unwrap(), None);
    assert_eq!(store.remove_members(app.id, c.id, &owned(&["u2"]), T0 + 7).await.unwrap(), Vec::<String>::new());
    assert_eq!(users_of(&store.list_members(app.id, c.id, &MemberQuery::default()).await.unwrap()), owned(&["u1", "u3"]));
    // removing a subscriber
    assert_eq!(store.remove_members(app.id, c.id, &owned(&["s1"]), T0 + 8).await.unwrap(), owned(&["s1"]));
    assert_eq!(store.count_members(app.id, c.id, Some(&[Role::Subscriber])).await.unwrap(), 0);

    // a removed member can join again, fresh
    assert_eq!(store.add_members(app.id, c.id, &[m("u2", T0 + 9)], Some(3), T0 + 9).await.unwrap(), owned(&["u2"]));
    assert_eq!(store.get_member(app.id, c.id, "u2").await.unwrap(), Some(m("u2", T0 + 9)));
}

/// `list_members` (ordered by user, with its filters), `member_ids` (by user), `member_lists` (by conversation, join
/// time, user; no subscribers), `count_members`, `get_member`.
pub async fn members_list_count(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    ensure(store, &app, &["m01", "m02", "m03", "m04", "m05", "s1", "a", "b", "x"]).await;
    let c1 = conv_value(&app, ConvKind::Normal, "c1", T0);
    let rows1 = vec![
        Member::new(c1.id, "m01", Role::Owner, T0 + 40),
        Member::new(c1.id, "m02", Role::Admin, T0 + 30),
        Member { notifications_off: true, ..Member::new(c1.id, "m04", Role::Member, T0 + 20) },
        Member::new(c1.id, "m03", Role::Member, T0 + 20),
        Member {
            nickname: Some("five".into()),
            muted_until: Some(i64::MAX),
            allowlisted: true,
            ..Member::new(c1.id, "m05", Role::Member, T0 + 10)
        },
        Member::new(c1.id, "s1", Role::Subscriber, T0 + 5),
    ];
    assert!(store.create_conversation(&c1, &rows1).await.unwrap().1);
    let c2 = conv_value(&app, ConvKind::Normal, "c2", T0);
    let rows2 = vec![
        Member::new(c2.id, "x", Role::Member, T0 + 1),
        Member::new(c2.id, "a", Role::Member, T0 + 1),
        Member::new(c2.id, "b", Role::Member, T0),
    ];
    assert!(store.create_conversation(&c2, &rows2).await.unwrap().1);
    let c3 = conv_value(&app, ConvKind::Normal, "c3", T0);
    assert!(store.create_conversation(&c3, &[Member::new(c3.id, "a", Role::Owner, T0)]).await.unwrap().1);

    let list = |q: MemberQuery| async move { users_of(&store.list_members(app.id, c1.id, &q).await.expect("list_members")) };
    assert_eq!(list(MemberQuery::default()).await, owned(&["m01", "m02", "m03", "m04", "m05"]), "by user id; no subscribers");
    assert_eq!(list(MemberQuery { after: Some("m02".into()), limit: Some(2), ..Default::default() }).await, owned(&["m03", "m04"]));
    assert_eq!(list(MemberQuery { after: Some("m04".into()), limit: Some(2), ..Default::default() }).await, owned(&["m05"]));
    assert_eq!(list(MemberQuery { after: Some("m05".into()), ..Default::default() }).await, Vec::<String>::new());
    assert_eq!(list(MemberQuery { limit: Some(1), ..Default::default() }).await, owned(&["m01"]));
    assert_eq!(list(MemberQuery { roles: Some(vec![Role::Admin, Role::Owner]), ..Default::default() }).await, owned(&["m01", "m02"]));
    assert_eq!(list(MemberQuery { roles: Some(vec![Role::Subscriber]), ..Default::default() }).await, owned(&["s1"]));
    assert_eq!(
        list(MemberQuery { roles: Some(vec![Role::Member, Role::Subscriber]), ..Default::default() }).await,
        owned(&["m03", "m04", "m05", "s1"])
    );
    assert_eq!(list(MemberQuery { users: Some(owned(&["m04", "m02", "zz", "s1"])), ..Default::default() }).await, owned(&["m02", "m04"]));
    assert_eq!(list(MemberQuery { users: Some(vec![]), ..Default::default() }).await, Vec::<String>::new());
    assert_eq!(list(MemberQuery { notifications_off: true, ..Default::default() }).await, owned(&["m04"]));
    assert_eq!(
        list(MemberQuery { roles: Some(vec![Role::Member]), after: Some("m03".into()), limit: Some(10), ..Default::default() }).await,
        owned(&["m04", "m05"])
    );
    let full = store.list_members(app.id, c1.id, &MemberQuery { users: Some(owned(&["m05"])), ..Default::default() }).await.unwrap();
    assert_eq!(full, vec![rows1[4].clone()], "a member round-trips");
    assert_eq!(store.get_member(app.id, c1.id, "m04").await.unwrap(), Some(rows1[2].clone()));
    assert_eq!(store.get_member(app.id, c1.id, "s1").await.unwrap(), Some(rows1[5].clone()), "get_member finds subscribers");
    assert_eq!(store.get_member(app.id, c1.id, "a").await.unwrap(), None);

    assert_eq!(store.count_members(app.id, c1.id, None).await.unwrap(), 5, "count_members: every role but subscriber");
    assert_eq!(store.count_members(app.id, c1.id, Some(&[Role::Member])).await.unwrap(), 3);
    assert_eq!(store.count_members(app.id, c1.id, Some(&[Role::Subscriber])).await.unwrap(), 1);
    assert_eq!(store.count_members(app.id, c1.id, Some(&[Role::Owner, Role::Admin])).await.unwrap(), 2);
    assert_eq!(store.count_members(app.id, c2.id, None).await.unwrap(), 3);

    // member_lists: by conversation, then join time, then user; subscribers left out
    let got = store.member_lists(app.id, &[c2.id, c1.id]).await.unwrap();
    let got: Vec<(i64, String)> = got.into_iter().map(|m| (m.conv, m.user)).collect();
    let want: Vec<(i64, String)> =
        [(c1.id, "m05"), (c1.id, "m03"), (c1.id, "m04"), (c1.id, "m02"), (c1.id, "m01"), (c2.id, "b"), (c2.id, "a"), (c2.id, "x")]
            .iter()
            .map(|(c, u)| (*c, u.to_string()))
            .collect();
    assert_eq!(got, want, "member_lists order");
    assert!(store.member_lists(app.id, &[]).await.unwrap().is_empty());
    assert_eq!(users_of(&store.member_lists(app.id, &[c3.id]).await.unwrap()), owned(&["a"]));

    // member_ids: one conversation's, by user id; subscribers left out
    assert_eq!(store.member_ids(app.id, c1.id).await.unwrap(), owned(&["m01", "m02", "m03", "m04", "m05"]));
    assert_eq!(store.member_ids(app.id, c2.id).await.unwrap(), owned(&["a", "b", "x"]));
    assert!(store.member_ids(app.id, i64::MAX).await.unwrap().is_empty(), "no such conversation: nobody");
}

/// `update_members` changes only members, returns those it changed, and only raises cursors.
pub async fn members_update(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let c = create(store, &app, conv_value(&app, ConvKind::Normal, "c", T0), &[("u1", Role::Member), ("u2", Role::Member)]).await;
    let patch = MemberPatch {
        role: Some(Role::Admin),
        notifications_off: Some(true),
        muted_until: Some(Some(T0 + 100)),
        allowlisted: Some(true),
        read_seq: Some(5),
        delivered_seq: Some(7),
        hidden: Some(true),
        nickname: Some(Some("One".into())),
    };
    let updated = store.update_members(app.id, c.id, &owned(&["u1", "u9"]), &patch).await.expect("update_members");
    assert_eq!(updated, owned(&["u1"]), "only members are updated");
    let mut want = Member::new(c.id, "u1", Role::Member, T0);
    patch.apply(&mut want);
    assert_eq!(store.get_member(app.id, c.id, "u1").await.unwrap(), Some(want.clone()));
    assert_eq!(store.get_member(app.id, c.id, "u2").await.unwrap(), Some(Member::new(c.id, "u2", Role::Member, T0)), "others untouched");
    assert_eq!(store.get_member(app.id, c.id, "u9").await.unwrap(), None, "non-members are not created");

    // cursors only move forward
    let p2 = MemberPatch { read_seq: Some(3), delivered_seq: Some(9), ..Default::default() };
    assert_eq!(store.update_members(app.id, c.id, &owned(&["u1"]), &p2).await.unwrap(), owned(&["u1"]));
    let got = store.get_member(app.id, c.id, "u1").await.unwrap().unwrap();
    assert_eq!((got.read_seq, got.delivered_seq), (5, 9));
    // clearing optional fields
    let p3 = MemberPatch { muted_until: Some(None), nickname: Some(None), hidden: Some(false), ..Default::default() };
    store.update_members(app.id, c.id, &owned(&["u1", "u2"]), &p3).await.unwrap();
    let got = store.get_member(app.id, c.id, "u1").await.unwrap().unwrap();
    assert_eq!((got.muted_until, got.nickname.clone(), got.hidden, got.role, got.read_seq), (None, None, false, Role::Admin, 5));
    // an empty patch changes nothing
    assert_eq!(store.update_members(app.id, c.id, &owned(&["u1"]), &MemberPatch::default()).await.unwrap(), owned(&["u1"]));
    assert_eq!(store.get_member(app.id, c.id, "u1").await.unwrap(), Some(got));
    assert_eq!(
        store.update_members(app.id, c.id + 1_000_000_000, &owned(&["u1"]), &patch).await.unwrap(),
        Vec::<String>::new(),
        "no members in an unknown conversation"
    );
}

/// `user_memberships`: ordered by (joined_at, conversation id) either way, paged by that pair,
/// filtered by role and kind.
pub async fn user_memberships(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    ensure(store, &app, &["me", "other"]).await;
    let mut make = Vec::new();
    for (name, kind, role, joined) in [
        ("A", ConvKind::Normal, Role::Member, T0 + 10),
        ("B", ConvKind::Normal, Role::Owner, T0 + 20),
        ("C", ConvKind::Service, Role::Subscriber, T0 + 20),
        ("D", ConvKind::Normal, Role::Member, T0 + 30),
        ("E", ConvKind::Chatroom, Role::Member, T0 + 5),
    ] {
        let c = conv_value(&app, kind, name, T0);
        assert!(store.create_conversation(&c, &[Member::new(c.id, "me", role, joined)]).await.unwrap().1);
        make.push(c);
    }
    let id = |n: &str| make.iter().find(|c| c.name.as_deref() == Some(n)).unwrap().id;
    store.add_members(app.id, id("A"), &[Member::new(id("A"), "other", Role::Member, T0 + 1)], None, T0 + 1).await.unwrap();
    ensure(store, &other, &["me"]).await;
    let elsewhere = conv_value(&other, ConvKind::Normal, "X", T0);
    assert!(store.create_conversation(&elsewhere, &[Member::new(elsewhere.id, "me", Role::Member, T0)]).await.unwrap().1);

    let q = |after: Option<(i64, i64)>, descending: bool, limit: i64| MembershipQuery { role: None, kind: None, after, descending, limit };
    let names_of = |ms: Vec<Member>| -> Vec<String> {
        ms.iter()
            .map(|m| make.iter().find(|c| c.id == m.conv).and_then(|c| c.name.clone()).unwrap_or_else(|| format!("?{}", m.conv)))
            .collect()
    };
    let run = |q: MembershipQuery| async move { store.user_memberships(app.id, "me", &q).await.expect("user_memberships") };
    assert_eq!(names_of(run(q(None, false, 100)).await), owned(&["E", "A", "B", "C", "D"]), "ascending by (joined_at, conv)");
    assert_eq!(names_of(run(q(None, true, 100)).await), owned(&["D", "C", "B", "A", "E"]), "descending");
    assert_eq!(names_of(run(q(Some((T0 + 20, id("B"))), false, 100)).await), owned(&["C", "D"]), "after a cursor, ascending");
    assert_eq!(names_of(run(q(Some((T0 + 20, id("C"))), true, 100)).await), owned(&["B", "A", "E"]), "after a cursor, descending");
    // paging by cursor visits everything once
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = run(q(after, false, 2)).await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        let last = page.last().unwrap();
        after = Some((last.joined_at, last.conv));
        seen.extend(names_of(page));
        assert!(seen.len() <= 5, "paging ends");
    }
    assert_eq!(seen, owned(&["E", "A", "B", "C", "D"]));

    let rows = run(q(None, false, 100)).await;
    assert_eq!(rows.iter().find(|m| m.conv == id("C")).map(|m| (m.role, m.joined_at)), Some((Role::Subscriber, T0 + 20)));
    assert!(rows.iter().all(|m| m.user == "me"));
    let filtered = |role: Option<Role>, kind: Option<ConvKind>| MembershipQuery { role, kind, after: None, descending: false, limit: 100 };
    assert_eq!(names_of(run(filtered(Some(Role::Subscriber), None)).await), owned(&["C"]));
    assert_eq!(names_of(run(filtered(None, Some(ConvKind::Normal))).await), owned(&["A", "B", "D"]));
    assert_eq!(names_of(run(filtered(Some(Role::Subscriber), Some(ConvKind::Service))).await), owned(&["C"]));
    assert_eq!(names_of(run(filtered(Some(Role::Owner), Some(ConvKind::Service))).await), Vec::<String>::new());
    assert_eq!(names_of(run(filtered(None, Some(ConvKind::Chatroom))).await), owned(&["E"]));
    let theirs = store.user_memberships(app.id, "other", &q(None, false, 100)).await.unwrap();
    assert_eq!(names_of(theirs), owned(&["A"]));
    let there = store.user_memberships(other.id, "me", &q(None, false, 100)).await.unwrap();
    assert_eq!(there.iter().map(|m| m.conv).collect::<Vec<_>>(), vec![elsewhere.id], "per app");
}

// ------------------------------------------------------------------------------------------
// plan quotas

fn group_value(app: &App, owner: &str) -> (Conversation, Vec<Member>) {
    let mut c = conv_value(app, ConvKind::Normal, "group", T0);
    c.creator = Some(owner.to_string());
    let rows = vec![Member::new(c.id, owner, Role::Owner, T0)];
    (c, rows)
}

/// `create_conversation_within` counts the app's groups (normal, not unique) or chat rooms, then
/// each first member's groups; `add_members_within` each added member's groups. A refusal is
/// `OverQuota` and writes nothing.
pub async fn conversation_quotas(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    ensure(store, &app, &["a", "b", "c"]).await;
    let per_app = |n| ConvQuotas { per_app: Some(n), groups_per_member: None };
    // what does not count: a unique conversation, a temporary one, another app's groups
    let mut uniq = conv_value(&app, ConvKind::Normal, "direct", T0);
    (uniq.unique, uniq.unique_id) = (true, Some(format!("u{}", uniq.id)));
    assert!(store.create_conversation(&uniq, &[]).await.unwrap().1);
    assert!(store.create_conversation(&conv_value(&app, ConvKind::Temporary, "t", T0), &[]).await.unwrap().1);
    let other = new_app(store).await;
    assert!(store.create_conversation(&conv_value(&other, ConvKind::Normal, "g", T0), &[]).await.unwrap().1);
    for _ in 0..2 {
        let (g, rows) = group_value(&app, "a");
        assert!(store.create_conversation_within(&g, &rows, per_app(2)).await.expect("within the groups quota").1);
    }
    let (g, rows) = group_value(&app, "a");
    assert_eq!(store.create_conversation_within(&g, &rows, per_app(2)).await, Err(Error::OverQuota { quota: Quota::Groups, max: 2 }));
    assert_eq!(store.get_conversation(app.id, g.id).await.unwrap(), None, "nothing is written");
    assert_eq!(store.get_member(app.id, g.id, "a").await.unwrap(), None);
    // a unique conversation that exists is returned, counted against nothing
    let mut again = conv_value(&app, ConvKind::Normal, "direct", T0);
    (again.unique, again.unique_id) = (true, uniq.unique_id.clone());
    assert_eq!(store.create_conversation_within(&again, &[], per_app(0)).await.unwrap(), (uniq.clone(), false));

    // chat rooms are counted apart; a quota of 0 allows none
    let room = conv_value(&app, ConvKind::Chatroom, "room", T0);
    assert!(store.create_conversation_within(&room, &[], per_app(1)).await.expect("the first room").1);
    let room2 = conv_value(&app, ConvKind::Chatroom, "room", T0);
    assert_eq!(store.create_conversation_within(&room2, &[], per_app(1)).await, Err(Error::OverQuota { quota: Quota::Chatrooms, max: 1 }));
    let app0 = new_app(store).await;
    let room0 = conv_value(&app0, ConvKind::Chatroom, "room", T0);
    assert_eq!(store.create_conversation_within(&room0, &[], per_app(0)).await, Err(Error::OverQuota { quota: Quota::Chatrooms, max: 0 }));

    // groups per member: "a" is in two groups; "b" in none
    let per_member = |n| ConvQuotas { per_app: None, groups_per_member: Some(n) };
    let (g, mut rows) = group_value(&app, "b");
    rows.push(Member::new(g.id, "a", Role::Member, T0));
    assert_eq!(
        store.create_conversation_within(&g, &rows, per_member(2)).await,
        Err(Error::OverQuota { quota: Quota::GroupsPerUser("a".into()), max: 2 }),
        "a first member in as many groups as allowed"
    );
    assert_eq!(store.get_conversation(app.id, g.id).await.unwrap(), None, "nothing is written");
    assert!(store.create_conversation_within(&g, &rows, per_member(3)).await.unwrap().1, "the third group of a");
    let (h, hrows) = group_value(&app, "b");
    assert!(store.create_conversation(&h, &hrows).await.unwrap().1);
    let r = store.add_members_within(app.id, h.id, &[Member::new(h.id, "a", Role::Member, T0 + 1)], None, Some(3), T0 + 1).await;
    assert_eq!(r, Err(Error::OverQuota { quota: Quota::GroupsPerUser("a".into()), max: 3 }), "a fourth group by add_members");
    assert_eq!(store.get_member(app.id, h.id, "a").await.unwrap(), None, "nothing is written");
    // a subscriber is in no group; a unique conversation is none; the limit is on those added
    let sub = Member::new(h.id, "a", Role::Subscriber, T0 + 2);
    assert_eq!(store.add_members_within(app.id, h.id, &[sub], None, Some(3), T0 + 2).await.unwrap(), owned(&["a"]));
    let got = store.add_members_within(app.id, h.id, &[Member::new(h.id, "c", Role::Member, T0 + 3)], None, Some(1), T0 + 3).await;
    assert_eq!(got.unwrap(), owned(&["c"]), "c's first group");
    let added = store.add_members_within(app.id, uniq.id, &[Member::new(uniq.id, "a", Role::Member, T0 + 4)], None, Some(3), T0 + 4).await;
    assert_eq!(added.unwrap(), owned(&["a"]), "a unique conversation is not a group");
}

/// N creates at once against a quota of K leave exactly K: groups per app, then one user's
/// groups by `add_members_within`.
pub async fn concurrent_quota_creates(store: Arc<dyn Store>) {
    let (n, k) = (24usize, 5i64);
    let app = new_app(&*store).await;
    ensure(&*store, &app, &["a", "b"]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let store = store.clone();
        let (g, rows) = group_value(&app, "a");
        tasks.spawn(
            async move { store.create_conversation_within(&g, &rows, ConvQuotas { per_app: Some(k), groups_per_member: None }).await },
        );
    }
    let mut made = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Ok((c, true)) => made.push(c.id),
            Err(Error::OverQuota { quota: Quota::Groups, max }) if max == k => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(made.len() as i64, k, "exactly K groups made");
    let q = ConvQuery { kinds: Some(vec![ConvKind::Normal]), count: true, limit: 0, ..Default::default() };
    assert_eq!(store.query_conversations(app.id, &q).await.unwrap().1, Some(k), "and stored");

    // "b" joins every group at once with a quota of 3 groups a user
    let mut tasks = tokio::task::JoinSet::new();
    for &g in &made {
        let store = store.clone();
        let app = app.id;
        tasks.spawn(
            async move { store.add_members_within(app, g, &[Member::new(g, "b", Role::Member, T0 + 1)], None, Some(3), T0 + 1).await },
        );
    }
    let mut joined = 0;
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Ok(added) if added == owned(&["b"]) => joined += 1,
            Err(Error::OverQuota { quota: Quota::GroupsPerUser(u), max: 3 }) if u == "b" => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(joined, 3, "exactly three joined");
    let q = MembershipQuery { role: None, kind: None, after: None, descending: false, limit: 100 };
    assert_eq!(store.user_memberships(app.id, "b", &q).await.unwrap().len(), 3, "and stored");
}
