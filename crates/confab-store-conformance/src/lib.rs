//! The conformance suite of the store seam: the contract of each of its traits, as their doc
//! comments state it, turned into executable checks. Every store implementation runs this suite
//! (the SQLite store in `confab-store-sqlite/tests/conformance.rs`; a PostgreSQL store will run
//! the same).
//!
//! One module per trait, so that a new store can be brought up trait by trait, in this order
//! (each module's fixtures use the traits before it): [`apps`] ([`AppStore`]), [`users`]
//! ([`UserStore`]), [`conversations`] ([`ConversationStore`]), [`messages`] ([`MessageStore`]),
//! [`imports`] ([`ImportStore`]), [`entries`] ([`EntryStore`]), [`outbox`] ([`OutboxStore`]);
//! and [`blobs`] ([`BlobStore`]), which needs nothing else. Until a trait is implemented, its
//! methods may panic: only its own module's checks (and those after it) call them.
//!
//! Each check is a `pub async fn` taking the store under test. Every check makes its own apps
//! (with fresh ids, names and keys), so checks never see each other's data: they may run one
//! after the other on one store ([`run_all`], or a module's `run`), or side by side, or against
//! a database that keeps data from earlier runs.
//!
//! A store's test file can get one test per check with [`conformance_tests!`].
//!
//! [`AppStore`]: confab_engine::AppStore
//! [`UserStore`]: confab_engine::UserStore
//! [`ConversationStore`]: confab_engine::ConversationStore
//! [`MessageStore`]: confab_engine::MessageStore
//! [`ImportStore`]: confab_engine::ImportStore
//! [`EntryStore`]: confab_engine::EntryStore
//! [`OutboxStore`]: confab_engine::OutboxStore
//! [`BlobStore`]: confab_engine::BlobStore
#![forbid(unsafe_code)]

pub mod apps;
pub mod blobs;
pub mod conversations;
pub mod entries;
pub mod imports;
pub mod messages;
pub mod outbox;
pub mod users;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use confab_engine::entries::{Entry, EntryFilter, EntryQuery, EntryStats, Overwrite, Put, PutRule};
use confab_engine::hooks::OutboxItem;
use confab_engine::limits::{bucket, Limits};
use confab_engine::model::*;
use confab_engine::query::*;
use confab_engine::quotas::Quota;
use confab_engine::store::{ConvPatch, ConvQuotas, HookStat, MemberPatch, MessagePatch, NewUser};
use confab_engine::time::iso_ms;
use confab_engine::{AttrOp, SettingsChange};
use confab_engine::{BlobStore, Error, Store};
use serde_json::{json, Value};

/// The store under test.
pub type DynStore = Arc<dyn Store>;

pub use crate::apps::{app_limits, apps, tokens};
pub use crate::blobs::blobs;
pub use crate::conversations::{
    concurrent_quota_creates, conversation_create_get, conversation_delete, conversation_quotas, conversation_unique, conversation_update,
    members_add_remove, members_list_count, members_update, query_builtin_fields, query_custom_fields, query_dates, query_kinds,
    query_logic_order_paging, query_members, user_memberships,
};
pub use crate::entries::{entries_put_rules, entries_query_delete_stats};
pub use crate::imports::{import_conversation_after_its_history, import_messages_in_order};
pub use crate::messages::{
    broadcasts, concurrent_inserts, history_bounds, history_scopes, messages_hide, messages_insert, messages_round_trip_update_delete,
    queued_inserts_keep_their_order, unread_bounded, unread_count,
};
pub use crate::outbox::{hook_stats, outbox};
pub use crate::users::{logins, user_quota, users};

/// Run every check, one after the other, on one store and one blob store.
pub async fn run_all(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) {
    apps::run(store.clone()).await;
    users::run(store.clone()).await;
    conversations::run(store.clone()).await;
    messages::run(store.clone()).await;
    imports::run(store.clone()).await;
    entries::run(store.clone()).await;
    outbox::run(store).await;
    blobs::run(blobs).await;
}

/// What a store's opener returns: the store and what keeps it alive, or (`Option`) nothing when
/// there is nothing to run against.
pub trait Opened<S, K> {
    fn opened(self) -> Option<(S, K)>;
}

impl<S, K> Opened<S, K> for (S, K) {
    fn opened(self) -> Option<(S, K)> {
        Some(self)
    }
}

impl<S, K> Opened<S, K> for Option<(S, K)> {
    fn opened(self) -> Option<(S, K)> {
        self
    }
}

/// One `#[tokio::test]` per check. `$open` names an `async fn() -> (Arc<dyn Store>, G)`, where
/// `G` is kept alive for the test (a temporary directory, say), and `$open_blobs` the same for an
/// `Arc<dyn BlobStore>`; either may return an `Option` of that instead, `None` when there is no
/// server to test against (the opener says so, or fails where one is required). Invoke it inside a module of its own, since the tests are named after
/// the checks:
///
/// ```ignore
/// mod each {
///     confab_store_conformance::conformance_tests!(super::open_store, super::open_blobs);
/// }
/// ```
///
/// A store brought up trait by trait names the modules whose checks it runs so far:
///
/// ```ignore
/// mod each {
///     confab_store_conformance::conformance_tests!(apps: super::open_store);
///     confab_store_conformance::conformance_tests!(users: super::open_store);
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (@each $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some((store, _keep)) = $crate::Opened::opened($open().await) else { return };
                $crate::$check(store).await;
            }
        )*
    };
    (apps: $open:path) => {
        $crate::conformance_tests!(@each $open; apps, app_limits, tokens);
    };
    (users: $open:path) => {
        $crate::conformance_tests!(@each $open; users, logins, user_quota);
    };
    (conversations: $open:path) => {
        $crate::conformance_tests!(@each $open; conversation_create_get, conversation_unique, conversation_update, conversation_delete, query_builtin_fields, query_members, query_custom_fields, query_dates, query_logic_order_paging, query_kinds, members_add_remove, members_list_count, members_update, user_memberships, conversation_quotas, concurrent_quota_creates);
    };
    (messages: $open:path) => {
        $crate::conformance_tests!(@each $open; messages_insert, messages_round_trip_update_delete, messages_hide, history_scopes, history_bounds, unread_count, unread_bounded, broadcasts, concurrent_inserts, queued_inserts_keep_their_order);
    };
    (imports: $open:path) => {
        $crate::conformance_tests!(@each $open; import_messages_in_order, import_conversation_after_its_history);
    };
    (entries: $open:path) => {
        $crate::conformance_tests!(@each $open; entries_put_rules, entries_query_delete_stats);
    };
    (outbox: $open:path) => {
        $crate::conformance_tests!(@each $open; outbox, hook_stats);
    };
    (blobs: $open:path) => {
        $crate::conformance_tests!(@each $open; blobs);
    };
    ($open:path, $open_blobs:path $(,)?) => {
        $crate::conformance_tests!(apps: $open);
        $crate::conformance_tests!(users: $open);
        $crate::conformance_tests!(conversations: $open);
        $crate::conformance_tests!(messages: $open);
        $crate::conformance_tests!(imports: $open);
        $crate::conformance_tests!(entries: $open);
        $crate::conformance_tests!(outbox: $open);
        $crate::conformance_tests!(blobs: $open_blobs);
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
    Conversation::new(app.id, fresh_id(), kind, Some(name.to_string()), at)
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
