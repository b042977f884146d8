//! The conformance suite of the [`Store`] trait: its contract, as its doc comments state it,
//! turned into executable checks. Every store implementation runs this suite (the SQLite store
//! in `confab-store-sqlite/tests/conformance.rs`; a PostgreSQL store will run the same).
//!
//! Each check is a `pub async fn` taking the store under test. Every check makes its own apps
//! (with fresh ids, names and keys), so checks never see each other's data: they may run one
//! after the other on one store ([`run_all`]), or side by side, or against a database that
//! keeps data from earlier runs.
//!
//! A store's test file can get one test per check with [`conformance_tests!`].
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use confab_engine::entries::{Entry, EntryFilter, EntryQuery, EntryStats, Overwrite, Put, PutRule};
use confab_engine::hooks::OutboxItem;
use confab_engine::limits::{bucket, Limits};
use confab_engine::model::*;
use confab_engine::query::*;
use confab_engine::store::{AttrOp, ConvPatch, HookStat, MemberPatch, MessagePatch, NewUser};
use confab_engine::time::iso_ms;
use confab_engine::{Error, Store};
use serde_json::{json, Value};

/// The store under test.
pub type DynStore = Arc<dyn Store>;

/// Every check, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "apps",
    "app_limits",
    "users",
    "logins",
    "tokens",
    "conversation_create_get",
    "conversation_unique",
    "conversation_update",
    "conversation_delete",
    "query_builtin_fields",
    "query_members",
    "query_custom_fields",
    "query_dates",
    "query_logic_order_paging",
    "query_kinds",
    "members_add_remove",
    "members_list_count",
    "members_update",
    "user_memberships",
    "messages_insert",
    "messages_round_trip_update_delete",
    "messages_hide",
    "history_scopes",
    "history_bounds",
    "unread_count",
    "unread_bounded",
    "broadcasts",
    "entries_put_rules",
    "entries_query_delete_stats",
    "blobs",
    "concurrent_inserts",
    "import_messages_in_order",
    "import_conversation_after_its_history",
    "outbox",
    "hook_stats",
];

/// Run every check, one after the other, on one store.
pub async fn run_all(store: Arc<dyn Store>) {
    apps(store.clone()).await;
    app_limits(store.clone()).await;
    users(store.clone()).await;
    logins(store.clone()).await;
    tokens(store.clone()).await;
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
    messages_insert(store.clone()).await;
    messages_round_trip_update_delete(store.clone()).await;
    messages_hide(store.clone()).await;
    history_scopes(store.clone()).await;
    history_bounds(store.clone()).await;
    unread_count(store.clone()).await;
    unread_bounded(store.clone()).await;
    broadcasts(store.clone()).await;
    entries_put_rules(store.clone()).await;
    entries_query_delete_stats(store.clone()).await;
    blobs(store.clone()).await;
    concurrent_inserts(store.clone()).await;
    import_messages_in_order(store.clone()).await;
    import_conversation_after_its_history(store.clone()).await;
    outbox(store.clone()).await;
    hook_stats(store).await;
}

/// One `#[tokio::test]` per check. `$open` names an `async fn() -> (Arc<dyn Store>, G)`, where
/// `G` is kept alive for the test (a temporary directory, say). Invoke it inside a module of its
/// own, since the tests are named after the checks:
///
/// ```ignore
/// mod each {
///     confab_store_conformance::conformance_tests!(super::open_store);
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@each $open;
            apps, app_limits, users, logins, tokens,
            conversation_create_get, conversation_unique, conversation_update, conversation_delete,
            query_builtin_fields, query_members, query_custom_fields, query_dates, query_logic_order_paging, query_kinds,
            members_add_remove, members_list_count, members_update, user_memberships,
            messages_insert, messages_round_trip_update_delete, messages_hide,
            history_scopes, history_bounds, unread_count, unread_bounded, broadcasts,
            entries_put_rules, entries_query_delete_stats, blobs, concurrent_inserts,
            import_messages_in_order, import_conversation_after_its_history, outbox, hook_stats);
    };
    (@each $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, _keep) = $open().await;
                $crate::$check(store).await;
            }
        )*
    };
}

// ------------------------------------------------------------------------------------------
// helpers

/// A base time for the checks' timestamps (2023-11-14T22:13:20Z).
const T0: i64 = 1_700_000_000_000;

/// Unread bounds far beyond what a check stores: every count is exact.
const WIDE: UnreadBounds = UnreadBounds { count_max: 10_000, scan_max: 10_000 };

/// A fresh id, unique in this process and (seeded from the clock) unlikely to meet ids of
/// earlier runs against a database that keeps its data. Increasing, so ids made later sort later.
pub fn fresh_id() -> i64 {
    static NEXT: OnceLock<AtomicI64> = OnceLock::new();
    NEXT.get_or_init(|| {
        let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        // microseconds since 2024 fit 40 bits for decades; leave 8 bits of headroom per
        // microsecond and stay below 2^53
        AtomicI64::new(((micros - 1_704_067_200_000_000).max(1) << 8) & ((1 << 52) - 1))
    })
    .fetch_add(1, Ordering::Relaxed)
}

fn app_value(plan: Plan) -> App {
    let id = fresh_id();
    App {
        id,
        name: format!("conformance-{id}"),
        plan,
        created_at: T0,
        keys: AppKeys {
            leancloud: LeanCloudKeys {
                app_id: format!("lc{id}"),
                app_key: format!("lckey{id}"),
                master_key: format!("lcmaster{id}"),
                hook_key: format!("lchook{id}"),
            },
            easemob: EasemobKeys {
                org_name: format!("org{id}"),
                app_name: format!("app{id}"),
                client_id: format!("YXA6client{id}"),
                client_secret: format!("YXA6secret{id}"),
            },
            maxim: MaximKeys { app_id: format!("mx{id}"), admin_token: format!("mxtoken{id}") },
        },
        limit_overrides: Attrs::new(),
        limits: Limits::for_plan(plan),
    }
}

/// A new app, stored.
async fn new_app(store: &dyn Store) -> App {
    let app = app_value(Plan::Standard);
    store.create_app(&app).await.expect("create_app");
    app
}

/// Make sure these users exist (as the engine does before they join anything).
async fn ensure(store: &dyn Store, app: &App, ids: &[&str]) {
    let users: Vec<NewUser> = ids.iter().map(|id| NewUser { id: id.to_string(), num: fresh_id() }).collect();
    store.ensure_users(app.id, &users, T0).await.expect("ensure_users");
}

fn conv_value(app: &App, kind: ConvKind, name: &str, at: i64) -> Conversation {
    Conversation {
        app: app.id,
        id: fresh_id(),
        kind,
        name: Some(name.to_string()),
        creator: None,
        unique: false,
        unique_id: None,
        attrs: Attrs::new(),
        settings: ConvSettings::default(),
        parent: None,
        created_at: at,
        updated_at: at,
        last_message_at: None,
        last_seq: 0,
        expires_at: None,
        foreign_id: None,
    }
}

/// Store a conversation with members joined at its creation time.
async fn create(store: &dyn Store, app: &App, conv: Conversation, members: &[(&str, Role)]) -> Conversation {
    let users: Vec<&str> = members.iter().map(|(u, _)| *u).collect();
    ensure(store, app, &users).await;
    let rows: Vec<Member> = members.iter().map(|(u, r)| Member::new(conv.id, *u, *r, conv.created_at)).collect();
    let (stored, created) = store.create_conversation(&conv, &rows).await.expect("create_conversation");
    assert!(created, "a new conversation is created");
    assert_eq!(stored, conv, "create_conversation returns the conversation it stored");
    stored
}

async fn conversation(store: &dyn Store, app: &App, id: i64) -> Conversation {
    store.get_conversation(app.id, id).await.expect("get_conversation").expect("the conversation exists")
}

fn msg(app: &App, conv: i64, from: &str, ts: i64, text: &str) -> Message {
    Message { mtype: MessageType::TEXT, ..Message::new(app.id, fresh_id(), conv, from, ts, Content::Text(text.to_string())) }
}

async fn insert(store: &dyn Store, m: Message) -> Message {
    store.insert_message(&m).await.expect("insert_message")
}

fn only(users: &[&str]) -> Audience {
    Audience::Only(users.iter().map(|u| u.to_string()).collect())
}

/// An audience with its user list sorted, for comparisons that ignore its order.
fn sorted_audience(a: &Audience) -> Audience {
    match a {
        Audience::All => Audience::All,
        Audience::Only(us) => {
            let mut us = us.clone();
            us.sort();
            Audience::Only(us)
        }
    }
}

fn attrs(v: Value) -> Attrs {
    v.as_object().expect("an object").clone()
}

fn date(ms: i64) -> Value {
    json!({"__type": "Date", "iso": iso_ms(ms)})
}

fn custom(path: &str) -> Field {
    Field::Custom(path.split('.').map(str::to_string).collect())
}

fn cond(f: Field, op: Op) -> Filter {
    Filter::Cond(f, op)
}

fn s(v: &str) -> Scalar {
    Scalar::Str(v.to_string())
}

fn strs(vs: &[&str]) -> Vec<Scalar> {
    vs.iter().map(|v| s(v)).collect()
}

fn names(cs: &[Conversation]) -> Vec<String> {
    cs.iter().map(|c| c.name.clone().unwrap_or_default()).collect()
}

fn users_of(ms: &[Member]) -> Vec<String> {
    ms.iter().map(|m| m.user.clone()).collect()
}

fn ids(ms: &[Message]) -> Vec<i64> {
    ms.iter().map(|m| m.id).collect()
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Mismatches collected over many small queries, reported together.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    async fn query(&mut self, store: &dyn Store, app: &App, q: ConvQuery, want: &[&str], want_count: Option<i64>) {
        match store.query_conversations(app.id, &q).await {
            Ok((rows, count)) => {
                let got = names(&rows);
                if got != want || count != want_count {
                    self.0.push(format!("{q:?}\n      want {want:?} count {want_count:?}\n       got {got:?} count {count:?}"));
                }
            }
            Err(e) => self.0.push(format!("{q:?}\n      want {want:?}\n     error {e}")),
        }
    }

    /// Conversations matching `filter`, in the default order (by id: creation order).
    async fn filter(&mut self, store: &dyn Store, app: &App, filter: Filter, want: &[&str]) {
        self.query(store, app, ConvQuery { filter, ..Default::default() }, want, None).await;
    }

    #[track_caller]
    fn finish(self, check: &str) {
        assert!(self.0.is_empty(), "{check}: {} queries answered wrongly:\n  {}", self.0.len(), self.0.join("\n  "));
    }
}

// ------------------------------------------------------------------------------------------
// apps

fn assert_same_app(got: &App, want: &App) {
    assert_eq!(
        (got.id, &got.name, got.plan, got.created_at, &got.keys, &got.limit_overrides),
        (want.id, &want.name, want.plan, want.created_at, &want.keys, &want.limit_overrides),
        "app round-trips"
    );
    assert_eq!(got.limits, Limits::resolve(want.plan, &want.limit_overrides).expect("limits resolve"), "find_app resolves limits");
}

/// `create_app`, `find_app` by every lookup, `list_apps`; a duplicate name is refused.
pub async fn apps(store: Arc<dyn Store>) {
    let store = &*store;
    let a = new_app(store).await;
    let b = app_value(Plan::Dev);
    store.create_app(&b).await.expect("create_app (dev plan)");

    let lookups = [
        AppLookup::Id(a.id),
        AppLookup::Name(a.name.clone()),
        AppLookup::LeanCloud(a.keys.leancloud.app_id.clone()),
        AppLookup::Easemob { org: a.keys.easemob.org_name.clone(), app: a.keys.easemob.app_name.clone() },
        AppLookup::Maxim(a.keys.maxim.app_id.clone()),
    ];
    for l in &lookups {
        let found = store.find_app(l).await.expect("find_app").unwrap_or_else(|| panic!("find_app({l:?}) finds the app"));
        assert_same_app(&found, &a);
    }
    let found_b = store.find_app(&AppLookup::LeanCloud(b.keys.leancloud.app_id.clone())).await.unwrap().expect("dev app");
    assert_same_app(&found_b, &b);
    assert_eq!(found_b.plan, Plan::Dev);
    assert_eq!(found_b.limits, Limits::for_plan(Plan::Dev), "a dev app without overrides has the dev plan's limits");

    let misses = [
        AppLookup::Id(fresh_id()),
        AppLookup::Name(format!("{}-no", a.name)),
        AppLookup::LeanCloud(format!("{}-no", a.keys.leancloud.app_id)),
        // the org of one app with the app name of another names neither
        AppLookup::Easemob { org: a.keys.easemob.org_name.clone(), app: b.keys.easemob.app_name.clone() },
        AppLookup::Maxim(format!("{}-no", a.keys.maxim.app_id)),
        // lookups are exact: another app's name is not a LeanCloud id
        AppLookup::LeanCloud(a.name.clone()),
    ];
    for l in &misses {
        assert!(store.find_app(l).await.expect("find_app").is_none(), "find_app({l:?}) finds nothing");
    }

    // a second app with a taken name is refused, and the first is untouched
    let mut dup = app_value(Plan::Dev);
    dup.name = a.name.clone();
    assert!(store.create_app(&dup).await.is_err(), "create_app refuses a duplicate name");
    assert!(store.find_app(&AppLookup::LeanCloud(dup.keys.leancloud.app_id.clone())).await.unwrap().is_none());
    assert_same_app(&store.find_app(&AppLookup::Name(a.name.clone())).await.unwrap().unwrap(), &a);

    let listed = store.list_apps().await.expect("list_apps");
    for want in [&a, &b] {
        let got = listed.iter().find(|x| x.id == want.id).unwrap_or_else(|| panic!("list_apps lists app {}", want.name));
        assert_same_app(got, want);
    }
    assert!(!listed.iter().any(|x| x.id == dup.id), "a refused app is not listed");
}

/// `set_app_limits` stores overrides; `find_app` returns them and resolves the limits.
pub async fn app_limits(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let mut o = Attrs::new();
    Limits::set_override(Plan::Standard, &mut o, "rates.lc.message.per_minute", "9000").unwrap();
    Limits::set_override(Plan::Standard, &mut o, "message_max_bytes", "10240").unwrap();
    store.set_app_limits(app.id, &o).await.expect("set_app_limits");
    for l in [AppLookup::Name(app.name.clone()), AppLookup::LeanCloud(app.keys.leancloud.app_id.clone())] {
        let got = store.find_app(&l).await.unwrap().expect("app");
        assert_eq!(got.limit_overrides, o, "overrides round-trip");
        assert_eq!(got.limits.rate(bucket::LC_MESSAGE).per_minute, Some(9000));
        assert_eq!(got.limits.message_max_bytes, 10240);
        assert_eq!(got.limits.rate(bucket::LC_BROADCAST), Limits::for_plan(Plan::Standard).rate(bucket::LC_BROADCAST));
        assert_eq!(got.limits, Limits::resolve(Plan::Standard, &o).unwrap());
    }
    let listed = store.list_apps().await.unwrap();
    let got = listed.iter().find(|x| x.id == app.id).expect("listed");
    assert_eq!(got.limits.rate(bucket::LC_MESSAGE).per_minute, Some(9000), "list_apps resolves limits too");

    // overrides resolve against the app's own plan
    let dev = app_value(Plan::Dev);
    store.create_app(&dev).await.unwrap();
    let mut od = Attrs::new();
    Limits::set_override(Plan::Dev, &mut od, "message_max_bytes", "2048").unwrap();
    store.set_app_limits(dev.id, &od).await.unwrap();
    let got = store.find_app(&AppLookup::Name(dev.name.clone())).await.unwrap().unwrap();
    assert_eq!(got.limits.message_max_bytes, 2048);
    assert_eq!(got.limits.rate(bucket::LC_MESSAGE).per_minute, Some(120), "the dev plan's rates stay");

    // setting replaces the overrides as a whole; other apps are untouched
    store.set_app_limits(app.id, &Attrs::new()).await.unwrap();
    let got = store.find_app(&AppLookup::Name(app.name.clone())).await.unwrap().unwrap();
    assert!(got.limit_overrides.is_empty());
    assert_eq!(got.limits, Limits::for_plan(Plan::Standard));
    let got = store.find_app(&AppLookup::Name(dev.name.clone())).await.unwrap().unwrap();
    assert_eq!(got.limit_overrides, od);
}

// ------------------------------------------------------------------------------------------
// users and tokens

/// `ensure_users` creates only the missing; `create_user` refuses taken ids and usernames;
/// lookups by id, number and username; everything per app.
pub async fn users(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    let (n_alice, n_bob) = (fresh_id(), fresh_id());
    let nu = |id: &str, num: i64| NewUser { id: id.to_string(), num };
    store.ensure_users(app.id, &[nu("alice", n_alice), nu("bob", n_bob)], T0).await.expect("ensure_users");
    let alice = store.get_user(app.id, "alice").await.unwrap().expect("alice was created");
    assert_eq!(
        alice,
        User {
            app: app.id,
            id: "alice".into(),
            num: n_alice,
            username: None,
            password_hash: None,
            nickname: None,
            attributes: Attrs::new(),
            disabled: false,
            created_at: T0,
            updated_at: T0,
            last_login_at: None,
        }
    );

    // existing users keep their number and creation time; only the missing are created
    let n_carol = fresh_id();
    store.ensure_users(app.id, &[nu("alice", fresh_id()), nu("carol", n_carol)], T0 + 5).await.expect("ensure_users again");
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(alice.clone()), "an existing user is left as it is");
    let carol = store.get_user(app.id, "carol").await.unwrap().expect("carol was created");
    assert_eq!((carol.num, carol.created_at), (n_carol, T0 + 5));
    assert_eq!(store.get_user_by_num(app.id, n_alice).await.unwrap().map(|u| u.id), Some("alice".into()));
    assert_eq!(store.get_user_by_num(app.id, n_bob).await.unwrap().map(|u| u.id), Some("bob".into()));
    assert_eq!(store.get_user_by_num(app.id, n_alice + 1_000_000_000).await.unwrap(), None);
    store.ensure_users(app.id, &[], T0).await.expect("ensure_users with no users");

    // a full user
    let dave = User {
        app: app.id,
        id: "dave".into(),
        num: fresh_id(),
        username: Some("dave_login".into()),
        password_hash: Some("$argon2id$v=19$hash".into()),
        nickname: Some("Dave".into()),
        attributes: attrs(json!({"city": "Oslo", "n": 1, "tags": ["a"]})),
        disabled: true,
        created_at: T0 + 1,
        updated_at: T0 + 2,
        last_login_at: None,
    };
    store.create_user(&dave).await.expect("create_user");
    assert_eq!(store.get_user(app.id, "dave").await.unwrap(), Some(dave.clone()), "a user round-trips");
    assert_eq!(store.get_user_by_num(app.id, dave.num).await.unwrap(), Some(dave.clone()));
    assert_eq!(store.get_user_by_username(app.id, "dave_login").await.unwrap(), Some(dave.clone()));
    assert_eq!(store.get_user_by_username(app.id, "dave").await.unwrap(), None, "an id is not a username");
    assert_eq!(store.get_user_by_username(app.id, "alice").await.unwrap(), None);

    // taken id (made by create_user or by ensure_users), taken username
    let taken_id = User { num: fresh_id(), username: Some("other_login".into()), ..dave.clone() };
    assert!(matches!(store.create_user(&taken_id).await, Err(Error::UserExists(_))), "a taken id: UserExists");
    let taken_id2 = User { id: "alice".into(), num: fresh_id(), username: None, ..dave.clone() };
    assert!(matches!(store.create_user(&taken_id2).await, Err(Error::UserExists(_))), "an id made by ensure_users: UserExists");
    let taken_name = User { id: "erin".into(), num: fresh_id(), ..dave.clone() };
    assert!(matches!(store.create_user(&taken_name).await, Err(Error::UserExists(_))), "a taken username: UserExists");
    assert_eq!(store.get_user(app.id, "erin").await.unwrap(), None, "a refused user is not stored");
    assert_eq!(store.get_user_by_username(app.id, "other_login").await.unwrap(), None);
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(alice.clone()));

    // users without a username do not collide with each other
    let u1 = User { id: "nouser1".into(), num: fresh_id(), username: None, ..dave.clone() };
    let u2 = User { id: "nouser2".into(), num: fresh_id(), username: None, ..dave.clone() };
    store.create_user(&u1).await.expect("a user without username");
    store.create_user(&u2).await.expect("another user without username");

    // ids, numbers and usernames are per app
    assert_eq!(store.get_user(other.id, "alice").await.unwrap(), None);
    assert_eq!(store.get_user_by_num(other.id, n_alice).await.unwrap(), None);
    assert_eq!(store.get_user_by_username(other.id, "dave_login").await.unwrap(), None);
    store.ensure_users(other.id, &[nu("alice", n_alice)], T0 + 9).await.expect("the same id and number in another app");
    let other_alice = store.get_user(other.id, "alice").await.unwrap().expect("created in the other app");
    assert_eq!((other_alice.app, other_alice.num, other_alice.created_at), (other.id, n_alice, T0 + 9));
    store.create_user(&User { app: other.id, num: fresh_id(), ..dave.clone() }).await.expect("the same username in another app");
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(alice.clone()));
    // several at once: those that exist, of this app only
    let mut found = store.get_users(app.id, &["alice".into(), "nobody".into(), "bob".into()]).await.unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(found.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), vec!["alice", "bob"]);
    assert_eq!(found[0], alice);
    assert!(store.get_users(app.id, &[]).await.unwrap().is_empty());
    assert_eq!(store.get_users(other.id, &["bob".into()]).await.unwrap(), vec![], "per app");
    // counting, listing in creation order (numeric id), updating, deleting
    let n = store.count_users(app.id).await.unwrap();
    let listed = store.list_users(app.id, None, 100).await.unwrap();
    assert_eq!(listed.len() as i64, n);
    assert!(listed.windows(2).all(|w| w[0].num < w[1].num), "by numeric id");
    let page = store.list_users(app.id, Some(listed[0].num), 1).await.unwrap();
    assert_eq!(page, vec![listed[1].clone()], "after a number, at most limit");
    let mut changed = alice.clone();
    changed.nickname = Some("Ally".into());
    changed.disabled = true;
    changed.attributes.insert("k".into(), json!("v"));
    changed.updated_at = T0 + 50;
    store.update_user(&changed).await.unwrap();
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(changed.clone()));
    assert!(matches!(store.update_user(&User { id: "ghost".into(), ..changed.clone() }).await, Err(Error::UserNotFound(_))));
    assert!(store.delete_user(app.id, "alice").await.unwrap());
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), None);
    assert_eq!(store.count_users(app.id).await.unwrap(), n - 1);
    assert!(!store.delete_user(app.id, "alice").await.unwrap(), "already gone");
    assert!(store.get_user(other.id, "alice").await.unwrap().is_some(), "the other app's alice stays");
}

/// `record_login` and `count_logins_since`: distinct users, `since` inclusive, per app.
pub async fn logins(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    ensure(store, &app, &["a", "b", "c"]).await;
    ensure(store, &other, &["a"]).await;
    assert_eq!(store.count_logins_since(app.id, 0).await.unwrap(), 0, "nobody logged in yet");
    store.record_login(app.id, "a", T0 + 100).await.expect("record_login");
    store.record_login(app.id, "b", T0 + 200).await.unwrap();
    store.record_login(app.id, "a", T0 + 300).await.unwrap();
    store.record_login(other.id, "a", T0 + 400).await.unwrap();
    let count = |since| async move { store.count_logins_since(app.id, since).await.unwrap() };
    assert_eq!(count(0).await, 2, "distinct users");
    assert_eq!(count(T0 + 100).await, 2);
    assert_eq!(count(T0 + 200).await, 2, "since is inclusive");
    assert_eq!(count(T0 + 201).await, 1);
    assert_eq!(count(T0 + 300).await, 1);
    assert_eq!(count(T0 + 301).await, 0);
    assert_eq!(store.count_logins_since(other.id, 0).await.unwrap(), 1, "per app");
    assert_eq!(store.get_user(app.id, "a").await.unwrap().unwrap().last_login_at, Some(T0 + 300));
    assert_eq!(store.get_user(app.id, "c").await.unwrap().unwrap().last_login_at, None);
}

/// `put_token`, `get_token`, `delete_token`.
pub async fn tokens(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let t1 = Token {
        token: format!("conformance-token-{}", fresh_id()),
        app: app.id,
        user: Some("alice".into()),
        kind: TokenKind::LcSession,
        created_at: T0,
        expires_at: Some(T0 + 3_600_000),
        device: Some("Web\u{1f}device-1".into()),
    };
    let t2 = Token {
        token: format!("conformance-token-{}", fresh_id()),
        app: app.id,
        user: None,
        kind: TokenKind::EasemobApp,
        created_at: T0 + 1,
        expires_at: None,
        device: None,
    };
    store.put_token(&t1).await.expect("put_token");
    store.put_token(&t2).await.expect("put_token");
    assert_eq!(store.get_token(&t1.token).await.unwrap(), Some(t1.clone()), "a token round-trips");
    assert_eq!(store.get_token(&t2.token).await.unwrap(), Some(t2.clone()));
    for kind in [TokenKind::LcRealtime, TokenKind::EasemobUser, TokenKind::MaximUser] {
        let t = Token { token: format!("conformance-token-{}", fresh_id()), kind, ..t1.clone() };
        store.put_token(&t).await.unwrap();
        assert_eq!(store.get_token(&t.token).await.unwrap(), Some(t), "kind {kind:?} round-trips");
    }
    assert_eq!(store.get_token(&format!("{}-no", t1.token)).await.unwrap(), None);
    // putting a token again stores the new value
    let t2b = Token { expires_at: Some(T0 + 5), user: Some("bob".into()), ..t2.clone() };
    store.put_token(&t2b).await.expect("put_token again");
    assert_eq!(store.get_token(&t2.token).await.unwrap(), Some(t2b.clone()), "put replaces");
    store.put_token(&t2).await.unwrap();
    store.delete_token(&t1.token).await.expect("delete_token");
    assert_eq!(store.get_token(&t1.token).await.unwrap(), None, "a deleted token is gone");
    assert_eq!(store.get_token(&t2.token).await.unwrap(), Some(t2), "other tokens stay");
    store.delete_token(&t1.token).await.expect("deleting a missing token is fine");
    // a user's tokens of one kind go together; other kinds, users and apps stay
    let mk = |user: &str, kind: TokenKind, app: i64| Token {
        token: format!("conformance-token-{}", fresh_id()),
        user: Some(user.into()),
        kind,
        app,
        ..t1.clone()
    };
    let other = new_app(store).await;
    let (a1, a2) = (mk("carol", TokenKind::LcRealtime, app.id), mk("carol", TokenKind::LcRealtime, app.id));
    let (keep_kind, keep_user, keep_app) = (
        mk("carol", TokenKind::LcSession, app.id),
        mk("dave", TokenKind::LcRealtime, app.id),
        mk("carol", TokenKind::LcRealtime, other.id),
    );
    for t in [&a1, &a2, &keep_kind, &keep_user, &keep_app] {
        store.put_token(t).await.unwrap();
    }
    assert_eq!(store.delete_user_tokens(app.id, "carol", TokenKind::LcRealtime).await.unwrap(), 2);
    assert_eq!(store.get_token(&a1.token).await.unwrap(), None);
    assert_eq!(store.get_token(&a2.token).await.unwrap(), None);
    for t in [&keep_kind, &keep_user, &keep_app] {
        assert!(store.get_token(&t.token).await.unwrap().is_some(), "{:?} stays", t.kind);
    }
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
        settings: Some(ConvSettings { announcement: Some("news".into()), approval: true, ..Default::default() }),
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

/// `list_members` (ordered by user, with its filters), `member_lists` (by conversation, join
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
// keyed collections and blobs

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

/// Blobs round-trip byte for byte, per app; deleting is reported once.
pub async fn blobs(store: Arc<dyn Store>) {
    let app = new_app(&*store).await;
    let other = new_app(&*store).await;
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    store.put_blob(app.id, "file-1_A", bytes.clone()).await.expect("put_blob");
    assert_eq!(store.get_blob(app.id, "file-1_A").await.unwrap(), Some(bytes.clone()));
    assert_eq!(store.get_blob(other.id, "file-1_A").await.unwrap(), None, "per app");
    assert_eq!(store.get_blob(app.id, "missing").await.unwrap(), None);
    store.put_blob(app.id, "file-1_A", vec![1, 2, 3]).await.unwrap();
    assert_eq!(store.get_blob(app.id, "file-1_A").await.unwrap(), Some(vec![1, 2, 3]), "a put replaces");
    store.put_blob(app.id, "empty", vec![]).await.unwrap();
    assert_eq!(store.get_blob(app.id, "empty").await.unwrap(), Some(vec![]));
    assert!(store.delete_blob(app.id, "file-1_A").await.unwrap());
    assert!(!store.delete_blob(app.id, "file-1_A").await.unwrap());
    assert_eq!(store.get_blob(app.id, "file-1_A").await.unwrap(), None);
    assert!(store.put_blob(app.id, "../escape", vec![1]).await.is_err(), "ids cannot name other paths");
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
