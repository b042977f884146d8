//! The engine: apps, users and tokens here; conversations in `conv.rs`; messages in
//! `message.rs`. Every rule lives in one of these; faces only translate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::app_code::AppCode;
use crate::bus::{Bus, Event, KickReason};
use crate::collections::Collections;
use crate::conv::Conversations;
use crate::entries::{check_blob_id, Entry, EntryFilter, EntryQuery, EntryStats, Put, PutRule};
use crate::error::{Error, Result};
use crate::global_mutes::GlobalMutes;
use crate::ids::{Clock, IdGen, Stamps, SystemClock};
use crate::import::Imports;
use crate::limits::{Bucket, Limits, LocalRateLimiter, RateLimiter};
use crate::message::{Messages, MessagesDeps};
use crate::model::*;
use crate::password::{login_keys, HashSettings, Hasher, LocalLoginBackoff, LoginBackoff};
use crate::presence::{Presence, SessionRef};
use crate::push_labels::PushLabels;
use crate::quotas::PlanQuotas;
use crate::quotas::{Quota, Quotas};
use crate::reactions::Reactions;
use crate::rooms::Rooms;
use crate::runtime::{Claim, Invalidate};
use crate::social::Social;
use crate::store::{BlobStore, Store};
use crate::teller::Teller;
use crate::threads::Threads;
use crate::users::Users;

pub struct Engine {
    /// What the services are built from.
    pub(crate) h: Handles,
    // ---- the services, built from the handles by `wire` (again whenever a `with_*` replaces a
    // handle one of them holds)
    /// Asking and telling the app's code (`teller.rs`).
    pub(crate) teller: Teller,
    /// Keyed collections (`collections.rs`).
    collections: Arc<Collections>,
    /// Users known to exist (`users.rs`).
    pub(crate) users: Arc<Users>,
    /// Contacts, blocklists, user metadata, presence statuses, push tasks (`social.rs`).
    pub(crate) social: Arc<Social>,
    /// Conversations and their members (`conv.rs`).
    pub(crate) conversations: Arc<Conversations>,
    /// Messages and broadcasts (`message.rs`).
    pub(crate) messages: Arc<Messages>,
    /// Threads (`threads.rs`).
    threads: Arc<Threads>,
    /// Imports with old ids (`import.rs`).
    imports: Arc<Imports>,
    /// Chat room attributes and super admins (`rooms.rs`).
    pub(crate) rooms: Arc<Rooms>,
    /// Push labels (`push_labels.rs`).
    push_labels: Arc<PushLabels>,
    /// The look before a write at the plan's quotas (`quotas.rs`).
    quotas: Arc<PlanQuotas>,
    /// Global speech mutes (`global_mutes.rs`).
    pub(crate) global_mutes: Arc<GlobalMutes>,
    /// Reactions to messages (`reactions.rs`).
    pub(crate) reactions: Arc<Reactions>,
    /// The app's hooks, their outbox, report and counters (`app_code.rs`).
    app_code: Arc<AppCode>,
}

/// The handles an engine's services are built from: the seams to the store and the node runtime,
/// and the per-engine state the services share.
#[derive(Clone)]
pub(crate) struct Handles {
    pub(crate) store: Arc<dyn Store>,
    /// The bytes of uploaded files: a store of their own (`store.rs`, `BlobStore`).
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) presence: Arc<dyn Presence>,
    /// The clock and the id generator (`ids.rs`), cloned into every service.
    pub(crate) stamps: Stamps,
    /// Rate buckets' counters (`limits.rs`).
    pub(crate) rates: Arc<dyn RateLimiter>,
    /// Apps, users known to exist, and tokens recently read from the store (a bearer token is
    /// checked on every call of a token face, and a token changes only by being revoked),
    /// dropped on every engine when they change (`runtime.rs`).
    pub(crate) caches: Arc<crate::runtime::Caches>,
    /// "Run once" (`once`).
    pub(crate) dedup: Arc<dyn crate::runtime::Dedup>,
    /// Orders each conversation's deliveries by sequence number (`order.rs`).
    pub(crate) order: Arc<crate::order::Sequencer>,
    /// Password hashing: bounded workers and queue (`password.rs`).
    pub(crate) hasher: Arc<Hasher>,
    /// Failed logins per user and per client address.
    pub(crate) backoff: Arc<dyn LoginBackoff>,
    /// The app's own code (`hooks.rs`); none until the server sets them.
    pub(crate) hooks: Arc<std::sync::OnceLock<Arc<dyn crate::hooks::Hooks>>>,
    /// Rung when calls are put in the outbox, so its runner need not wait for its next look.
    pub(crate) outbox_bell: Arc<tokio::sync::Notify>,
    pub(crate) node: u16,
}

/// What `create_app` needs. Keys left as None are generated.
#[derive(Clone, Debug, Default)]
pub struct NewApp {
    pub name: String,
    pub plan: Plan,
    pub leancloud_app_id: Option<String>,
    pub leancloud_app_key: Option<String>,
    pub leancloud_master_key: Option<String>,
}

/// A user account with a login name and password.
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    /// The user id; generated (24 hex digits, like a LeanCloud objectId) when None.
    pub id: Option<String>,
    pub username: Option<String>,
    pub password: String,
    pub nickname: Option<String>,
}

pub fn random_string(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

pub fn random_lower(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(&mut buf[..]);
    hex::encode(buf)
}

/// Start of the UTC day containing `ms`.
pub fn utc_day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// The services an engine is made of, built from its handles.
struct Services {
    teller: Teller,
    collections: Arc<Collections>,
    users: Arc<Users>,
    social: Arc<Social>,
    conversations: Arc<Conversations>,
    messages: Arc<Messages>,
    threads: Arc<Threads>,
    imports: Arc<Imports>,
    rooms: Arc<Rooms>,
    push_labels: Arc<PushLabels>,
    quotas: Arc<PlanQuotas>,
    global_mutes: Arc<GlobalMutes>,
    reactions: Arc<Reactions>,
    app_code: Arc<AppCode>,
}

impl Services {
    fn build(h: &Handles) -> Services {
        let (store, presence, stamps) = (&h.store, &h.presence, &h.stamps);
        let teller = Teller { hooks: h.hooks.clone(), store: store.clone(), bell: h.outbox_bell.clone(), stamps: stamps.clone() };
        let collections = Arc::new(Collections::new(store.clone(), stamps.clone()));
        let users = Arc::new(Users::new(store.clone(), h.caches.clone(), stamps.clone()));
        let social = Arc::new(Social::new(store.clone(), presence.clone(), stamps.clone(), collections.clone(), teller.clone()));
        let rooms = Arc::new(Rooms::new(store.clone(), presence.clone(), stamps.clone(), collections.clone()));
        let conversations = Arc::new(Conversations::new(
            store.clone(),
            presence.clone(),
            h.bus.clone(),
            stamps.clone(),
            teller.clone(),
            users.clone(),
            rooms.clone(),
        ));
        let global_mutes = Arc::new(GlobalMutes::new(collections.clone(), stamps.clone()));
        let messages = Arc::new(Messages::new(MessagesDeps {
            store: store.clone(),
            presence: presence.clone(),
            bus: h.bus.clone(),
            order: h.order.clone(),
            stamps: stamps.clone(),
            teller: teller.clone(),
            users: users.clone(),
            conversations: conversations.clone(),
            social: social.clone(),
            global_mutes: global_mutes.clone(),
        }));
        let threads = Arc::new(Threads::new(store.clone(), conversations.clone(), messages.clone()));
        let imports = Arc::new(Imports::new(store.clone(), stamps.clone(), users.clone(), collections.clone()));
        let push_labels = Arc::new(PushLabels::new(store.clone(), collections.clone()));
        let quotas = Arc::new(PlanQuotas::new(store.clone()));
        let reactions = Arc::new(Reactions::new(store.clone(), stamps.clone(), collections.clone(), teller.clone()));
        let app_code = Arc::new(AppCode::new(store.clone(), stamps.clone(), teller.clone()));
        Services {
            teller,
            collections,
            users,
            social,
            conversations,
            messages,
            threads,
            imports,
            rooms,
            push_labels,
            quotas,
            global_mutes,
            reactions,
            app_code,
        }
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>, bus: Arc<dyn Bus>, presence: Arc<dyn Presence>, node: u16) -> Self {
        let h = Handles {
            order: crate::order::Sequencer::new(bus.clone()),
            stamps: Stamps::new(Arc::new(SystemClock), Arc::new(IdGen::new(node))),
            store,
            blobs,
            bus,
            presence,
            rates: Arc::new(LocalRateLimiter::default()),
            caches: Arc::new(crate::runtime::Caches::new(Arc::new(crate::runtime::LocalInvalidation::default()))),
            dedup: Arc::new(crate::runtime::LocalDedup::default()),
            hasher: Arc::new(Hasher::new(HashSettings::default()).expect("the default argon2 parameters are valid")),
            backoff: Arc::new(LocalLoginBackoff::default()),
            hooks: Arc::new(std::sync::OnceLock::new()),
            outbox_bell: Arc::new(tokio::sync::Notify::new()),
            node,
        };
        Self::built(h)
    }

    /// The engine whose services are built from these handles.
    fn built(h: Handles) -> Self {
        let Services {
            teller,
            collections,
            users,
            social,
            conversations,
            messages,
            threads,
            imports,
            rooms,
            push_labels,
            quotas,
            global_mutes,
            reactions,
            app_code,
        } = Services::build(&h);
        Engine {
            h,
            teller,
            collections,
            users,
            social,
            conversations,
            messages,
            threads,
            imports,
            rooms,
            push_labels,
            quotas,
            global_mutes,
            reactions,
            app_code,
        }
    }

    /// Build the services again from the engine's handles (after one was replaced).
    fn wire(self) -> Self {
        Self::built(self.h)
    }

    /// Users: who exists.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// Conversations of every kind and their members.
    pub fn conversations(&self) -> &Conversations {
        &self.conversations
    }

    /// Messages and broadcasts.
    pub fn messages(&self) -> &Messages {
        &self.messages
    }

    /// Threads hanging from group messages.
    pub fn threads(&self) -> &Threads {
        &self.threads
    }

    /// Imports from another service, with the ids records had there.
    pub fn imports(&self) -> &Imports {
        &self.imports
    }

    /// Contacts, user blocklists, user metadata, presence statuses and subscriptions, push tasks.
    pub fn social(&self) -> &Social {
        &self.social
    }

    /// Chat room custom attributes and the app's chat room super admins.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// Push labels: named sets of users a push task can be aimed at.
    pub fn push_labels(&self) -> &PushLabels {
        &self.push_labels
    }

    /// The plan quotas' look before a write (`check_quota`).
    pub fn quotas(&self) -> &PlanQuotas {
        &self.quotas
    }

    /// Global speech mutes.
    pub fn global_mutes(&self) -> &GlobalMutes {
        &self.global_mutes
    }

    /// Reactions to messages.
    pub fn reactions(&self) -> &Reactions {
        &self.reactions
    }

    /// The app's own code: its hooks, the outbox of their calls, their report and counters,
    /// whether a user may sign in.
    pub fn app_code(&self) -> &AppCode {
        &self.app_code
    }

    /// Tell the app's code that `what` happened (`Teller::tell`).
    pub(crate) async fn tell(&self, app: &App, what: crate::hooks::After<'_>) {
        self.teller.tell(app, what).await
    }

    /// Share "run once" and cache invalidations with other engines (other nodes) instead of
    /// keeping them to this one.
    pub fn with_runtime(mut self, dedup: Arc<dyn crate::runtime::Dedup>, invalidation: Arc<dyn crate::runtime::Invalidation>) -> Self {
        self.h.dedup = dedup;
        self.h.caches = Arc::new(crate::runtime::Caches::new(invalidation));
        self.wire()
    }

    /// Count rate limits and failed logins with these (a cluster's shared counters) instead of
    /// this engine's own.
    pub fn with_limiters(mut self, rates: Arc<dyn RateLimiter>, backoff: Arc<dyn LoginBackoff>) -> Self {
        self.h.rates = rates;
        self.h.backoff = backoff;
        self.wire()
    }

    /// Hash passwords with these settings instead of the defaults.
    pub fn with_hash_settings(mut self, settings: HashSettings) -> Result<Self> {
        self.h.hasher = Arc::new(Hasher::new(settings)?);
        Ok(self.wire())
    }

    pub fn hash_settings(&self) -> &HashSettings {
        self.h.hasher.settings()
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.h.stamps = self.h.stamps.with_clock(clock);
        self.wire()
    }

    pub fn node(&self) -> u16 {
        self.h.node
    }

    pub fn now(&self) -> i64 {
        self.h.stamps.now()
    }

    pub fn next_id(&self) -> i64 {
        self.h.stamps.next_id()
    }

    // ------------------------------------------------------------------ keyed collections

    /// Write entries atomically under `rule`; one outcome per entry, in order.
    pub async fn put_entries(&self, app: &App, entries: Vec<Entry>, rule: PutRule) -> Result<Vec<Put>> {
        self.collections.put(app, entries, rule).await
    }

    /// The entries a query selects (expired ones excluded).
    pub async fn entries(&self, app: &App, q: &EntryQuery) -> Result<Vec<Entry>> {
        self.collections.list(app, q).await
    }

    /// One item of one collection.
    pub async fn entry(&self, app: &App, ns: &str, key: &str, item: &str) -> Result<Option<Entry>> {
        self.collections.get(app, ns, key, item).await
    }

    /// Delete what a filter matches; the entries deleted (expired ones are purged silently).
    pub async fn delete_entries(&self, app: &App, f: &EntryFilter) -> Result<Vec<Entry>> {
        self.collections.delete(app, f).await
    }

    pub async fn entry_stats(&self, app: &App, f: &EntryFilter) -> Result<EntryStats> {
        self.collections.stats(app, f).await
    }

    /// Keep the bytes of a file under `id` (1–64 of `[A-Za-z0-9_-]`).
    pub async fn put_blob(&self, app: &App, id: &str, bytes: Vec<u8>) -> Result<()> {
        check_blob_id(id)?;
        self.h.blobs.put_blob(app.id, id, bytes).await
    }

    /// The bytes kept under `id`; None for an unknown (or malformed) id.
    pub async fn blob(&self, app: &App, id: &str) -> Result<Option<Vec<u8>>> {
        if check_blob_id(id).is_err() {
            return Ok(None);
        }
        self.h.blobs.get_blob(app.id, id).await
    }

    pub async fn delete_blob(&self, app: &App, id: &str) -> Result<bool> {
        if check_blob_id(id).is_err() {
            return Ok(false);
        }
        self.h.blobs.delete_blob(app.id, id).await
    }

    /// Every delivery event from now on (what gateways turn into pushes; the session registry
    /// subscribes for them). For observers such as tests; a gateway registers with `sessions`.
    pub fn subscribe_events(&self) -> crate::bus::EventReceiver {
        self.h.bus.subscribe()
    }

    // ------------------------------------------------------------------ apps

    pub async fn create_app(&self, new: NewApp) -> Result<App> {
        let name = new.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(|c| c.is_control()) {
            return Err(Error::invalid("app name must be 1 to 64 printable characters"));
        }
        for key in [&new.leancloud_app_id, &new.leancloud_app_key, &new.leancloud_master_key].into_iter().flatten() {
            if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic() && c != ',') {
                return Err(Error::invalid("LeanCloud keys must be 1 to 128 printable ASCII characters without commas"));
            }
        }
        if self.h.store.find_app(&AppLookup::Name(name.clone())).await?.is_some() {
            return Err(Error::invalid(format!("an app named '{name}' exists already")));
        }
        let lc_id = new.leancloud_app_id.unwrap_or_else(|| format!("{}-cfb", random_string(18)));
        if self.h.store.find_app(&AppLookup::LeanCloud(lc_id.clone())).await?.is_some() {
            return Err(Error::invalid(format!("an app with LeanCloud app id '{lc_id}' exists already")));
        }
        let app = App {
            id: self.next_id(),
            name,
            plan: new.plan,
            created_at: self.now(),
            keys: AppKeys {
                leancloud: LeanCloudKeys {
                    app_id: lc_id,
                    app_key: new.leancloud_app_key.unwrap_or_else(|| random_string(24)),
                    master_key: new.leancloud_master_key.unwrap_or_else(|| random_string(24)),
                    hook_key: random_string(24),
                },
                easemob: EasemobKeys {
                    org_name: random_lower(10),
                    app_name: random_lower(8),
                    client_id: format!("YXA6{}", random_string(22)),
                    client_secret: format!("YXA6{}", random_string(27)),
                },
                maxim: MaximKeys { app_id: random_lower(12), admin_token: random_string(48) },
            },
            limit_overrides: Attrs::new(),
            limits: Limits::for_plan(new.plan),
        };
        self.h.store.create_app(&app).await?;
        Ok(app)
    }

    pub async fn list_apps(&self) -> Result<Vec<App>> {
        self.h.store.list_apps().await
    }

    /// Set one setting of an app (`key=value`; see [`Limits::set_override`]).
    pub async fn set_app_limit(&self, name: &str, key: &str, value: &str) -> Result<App> {
        self.set_app_settings(name, &[(key, value)]).await
    }

    /// Set several settings of an app at once: all of them, or none when one is refused. A
    /// running server sees them within `runtime::APP_CACHE_TTL`.
    pub async fn set_app_settings(&self, name: &str, settings: &[(&str, &str)]) -> Result<App> {
        let mut app = self.h.store.find_app(&AppLookup::Name(name.to_string())).await?.ok_or(Error::AppNotFound)?;
        for (key, value) in settings {
            Limits::set_override(app.plan, &mut app.limit_overrides, key, value)?;
        }
        self.h.store.set_app_limits(app.id, &app.limit_overrides).await?;
        app.limits = Limits::resolve(app.plan, &app.limit_overrides)?;
        self.h.caches.invalidate(Invalidate::Apps);
        Ok(app)
    }

    /// Whether the store answers a lookup by key (`/healthz`). Lookups have read connections of
    /// their own, so the answer does not wait behind a burst of long queries.
    pub async fn health(&self) -> Result<()> {
        self.h.store.find_app(&AppLookup::Name(String::new())).await.map(|_| ())
    }

    /// The app a face's credentials name, cached for a few seconds.
    pub async fn find_app(&self, lookup: &AppLookup) -> Result<Option<Arc<App>>> {
        if let Some(app) = self.h.caches.app(lookup) {
            return Ok(Some(app));
        }
        let Some(app) = self.h.store.find_app(lookup).await? else { return Ok(None) };
        let app = Arc::new(app);
        self.h.caches.remember_app(lookup, &app);
        Ok(Some(app))
    }

    /// Count one call against a rate bucket of the app; `RateLimited` when over.
    pub async fn rate_check(&self, app: &App, bucket: Bucket) -> Result<()> {
        self.h.rates.check(app.id, bucket.name(), app.limits.rate(bucket), self.now()).await
    }

    /// Count `cost` units against a bucket (a message quota counts each recipient).
    pub async fn rate_take(&self, app: &App, bucket: Bucket, cost: u32) -> Result<()> {
        self.h.rates.take(app.id, bucket.name(), bucket.name(), app.limits.rate(bucket), cost, self.now()).await
    }

    /// Count one call against the bucket's rule, on a counter of its own for `subject` (a rate
    /// "per user ID").
    pub async fn rate_check_for(&self, app: &App, bucket: Bucket, subject: &str) -> Result<()> {
        self.h.rates.take(app.id, bucket.name(), &format!("{bucket}/{subject}"), app.limits.rate(bucket), 1, self.now()).await
    }

    // ------------------------------------------------------------------ users

    /// Check a user id against the app's rules: 1 to `user_id_max_chars` characters, no control
    /// characters. Faces with a stricter charset check theirs first.
    pub fn validate_user_id(&self, app: &App, id: &str) -> Result<()> {
        app.validate_user_id(id)
    }

    pub async fn get_user(&self, app: &App, id: &str) -> Result<User> {
        self.h.store.get_user(app.id, id).await?.ok_or_else(|| Error::UserNotFound(id.to_string()))
    }

    /// Write a changed user (nickname, attributes, disabled, password hash).
    pub async fn update_user(&self, app: &App, mut user: User) -> Result<User> {
        user.updated_at = self.now();
        self.h.store.update_user(&user).await?;
        let _ = app;
        Ok(user)
    }

    /// Set a user's password (argon2) and revoke the user's tokens of every face (a password change
    /// logs the user out everywhere: a token one face issued is no less the user's).
    pub async fn set_password(&self, app: &App, id: &str, password: &str) -> Result<()> {
        if password.is_empty() || password.len() > 256 {
            return Err(Error::invalid("password must be 1 to 256 bytes"));
        }
        let mut user = self.get_user(app, id).await?;
        user.password_hash = Some(self.h.hasher.hash(password.to_string()).await?);
        self.update_user(app, user).await?;
        self.revoke_all_user_tokens(app, id).await?;
        Ok(())
    }

    /// Disable (ban) or enable a user. A disabled user cannot log in, and is logged out of every
    /// face: their sessions end and their tokens, whichever face issued them, are revoked.
    pub async fn set_disabled(&self, app: &App, id: &str, disabled: bool) -> Result<User> {
        let mut user = self.get_user(app, id).await?;
        user.disabled = disabled;
        let user = self.update_user(app, user).await?;
        if disabled {
            self.kick(app, id, None).await?;
            self.revoke_all_user_tokens(app, id).await?;
        }
        Ok(user)
    }

    /// Revoke a user's tokens of every kind.
    pub async fn revoke_all_user_tokens(&self, app: &App, user: &str) -> Result<u64> {
        let mut n = 0;
        for kind in [TokenKind::LcSession, TokenKind::LcRealtime, TokenKind::EasemobUser, TokenKind::MaximUser] {
            n += self.h.store.delete_user_tokens(app.id, user, kind).await?;
        }
        self.h.caches.invalidate(Invalidate::Tokens);
        Ok(n)
    }

    /// Delete a user, their tokens and memberships; their sessions end.
    pub async fn delete_user(&self, app: &App, id: &str) -> Result<bool> {
        let deleted = self.h.store.delete_user(app.id, id).await?;
        self.h.caches.invalidate(Invalidate::User { app: app.id, id: id.to_string() });
        self.social.forget_user_relations(app, id).await?;
        if deleted {
            // the user is gone either way; a session the kick misses fails its next call
            self.h.bus.deliver(Event::Kick { app: app.id, user: id.to_string(), session: None, reason: KickReason::ByApp(None) });
        }
        Ok(deleted)
    }

    pub async fn count_users(&self, app: &App) -> Result<i64> {
        self.h.store.count_users(app.id).await
    }

    pub async fn list_users(&self, app: &App, after_num: Option<i64>, limit: i64) -> Result<Vec<User>> {
        self.h.store.list_users(app.id, after_num, limit).await
    }

    /// The user with this numeric id (MaxIM's `user_id`).
    pub async fn user_by_num(&self, app: &App, num: i64) -> Result<User> {
        self.h.store.get_user_by_num(app.id, num).await?.ok_or_else(|| Error::UserNotFound(num.to_string()))
    }

    /// Run `f` once per (app, key) within the app's `dedup_window_secs`: a repeat gets the first
    /// call's result instead of running again (a repeat while the first still runs waits for it;
    /// a failed call is forgotten, so it can be retried).
    pub async fn once<F, Fut>(&self, app: &App, key: String, f: F) -> Result<serde_json::Value>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<serde_json::Value>>,
    {
        let window = app.limits.dedup_window_secs * 1000;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.now();
            match self.h.dedup.claim(app.id, &key, now, now + window).await? {
                Claim::Done(v) => return Ok(v),
                // a repeat while the first still runs waits for it (at most 10 s)
                Claim::Running if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
                Claim::Running | Claim::First => break,
            }
        }
        let r = f().await;
        let kept = self.h.dedup.finish(app.id, &key, r.as_ref().ok(), self.now() + window).await;
        if let Err(e) = kept {
            tracing::warn!(app = app.id, error = %e, "could not remember a call's result");
        }
        r
    }

    pub async fn create_account(&self, app: &App, new: NewAccount) -> Result<User> {
        self.create_account_with(app, new, Quotas::Uncounted).await
    }

    /// `create_account`; a counted one is refused (`OverQuota(Quota::Users)`) by the store, in
    /// the insert's transaction, when the app holds its plan's users already.
    pub async fn create_account_with(&self, app: &App, new: NewAccount, quotas: Quotas) -> Result<User> {
        let id = new.id.unwrap_or_else(|| random_hex(12));
        self.validate_user_id(app, &id)?;
        if let Some(u) = &new.username {
            if u.is_empty() || u.chars().count() > 64 || u.chars().any(char::is_control) {
                return Err(Error::invalid("username must be 1 to 64 printable characters"));
            }
        }
        if new.password.is_empty() || new.password.len() > 256 {
            return Err(Error::invalid("password must be 1 to 256 bytes"));
        }
        // one login name, one user, whichever face made the account: a username may not be
        // another account's id (MaxIM's usernames are ids), nor an id another user's username
        if let Some(u) = &new.username {
            if self.h.store.get_user(app.id, u).await?.is_some_and(|x| x.password_hash.is_some()) {
                return Err(Error::UserExists(u.clone()));
            }
        }
        if self.h.store.get_user_by_username(app.id, &id).await?.is_some() {
            return Err(Error::UserExists(id));
        }
        let hash = self.h.hasher.hash(new.password).await?;
        let now = self.now();
        let user = User {
            app: app.id,
            id,
            num: self.next_id(),
            username: new.username,
            password_hash: Some(hash),
            nickname: new.nickname,
            attributes: Attrs::new(),
            disabled: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let max = if quotas == Quotas::Counted { crate::quotas::limit(app, &Quota::Users) } else { None };
        self.h.store.create_user_within(&user, max).await?;
        Ok(user)
    }

    /// Make sure a user exists, creating it without a password if not (Easemob's
    /// `autoCreateUser`); a new user counts against the app's users quota (`OverQuota`), checked
    /// by the store in the insert's transaction.
    pub async fn ensure_user_counted(&self, app: &App, id: &str) -> Result<()> {
        self.validate_user_id(app, id)?;
        if self.h.caches.user_known(app.id, id) {
            return Ok(());
        }
        let now = self.now();
        let user = User {
            app: app.id,
            id: id.to_string(),
            num: self.next_id(),
            username: None,
            password_hash: None,
            nickname: None,
            attributes: Attrs::new(),
            disabled: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        match self.h.store.create_user_within(&user, crate::quotas::limit(app, &Quota::Users)).await {
            Ok(()) | Err(Error::UserExists(_)) => {}
            Err(e) => return Err(e),
        }
        self.h.caches.remember_users(app.id, [id.to_string()].into_iter());
        Ok(())
    }

    /// Check a login name (username, or the user id) and password: `UserNotFound` if no such
    /// user, `BadCredentials` if the password is wrong. `addr` is the client's address. Failures
    /// back off per login name and per address (`password::LoginBackoff`): while one does, the
    /// attempt is refused (`RateLimited`, with the wait) before any hashing.
    pub async fn check_password(&self, app: &App, login: &str, password: &str, addr: Option<&str>) -> Result<User> {
        let keys = login_keys(login, addr);
        // the counts out of reach: the attempt is refused with that error (no guessing unchecked)
        self.h.backoff.admit(app.id, &keys, self.now()).await?;
        let checked = async {
            let user = match self.h.store.get_user_by_username(app.id, login).await? {
                Some(u) => Some(u),
                None => self.h.store.get_user(app.id, login).await?,
            };
            let verified = match &user {
                Some(User { password_hash: Some(hash), .. }) => self.h.hasher.verify(password.to_string(), hash.clone()).await?,
                _ => false,
            };
            Ok::<_, Error>((user, verified))
        };
        let (user, verified) = match checked.await {
            Ok(v) => v,
            Err(e) => {
                if let Err(w) = self.h.backoff.withdrawn(app.id, &keys, self.now()).await {
                    tracing::warn!(app = app.id, error = %w, "could not withdraw a login attempt from the back-off");
                }
                return Err(e);
            }
        };
        let user = match user {
            Some(u) if verified => u,
            other => {
                return Err(match other {
                    None => Error::UserNotFound(login.to_string()),
                    Some(_) => Error::BadCredentials,
                });
            }
        };
        // the password was right: a back-off that cannot be told so does not fail the login (the
        // attempt stays counted, as a failed one would)
        if let Err(e) = self.h.backoff.succeeded(app.id, &keys, self.now()).await {
            tracing::warn!(app = app.id, error = %e, "could not clear a user's failed logins");
        }
        if user.disabled {
            return Err(Error::Forbidden("user is disabled".into()));
        }
        // an imported LeanCloud hash gives way to argon2id at the first good login (if the
        // hashing queue is full now, at a later one)
        if user.password_hash.as_deref().is_some_and(crate::password::is_legacy) {
            if let Ok(hash) = self.h.hasher.hash(password.to_string()).await {
                let upgraded = User { password_hash: Some(hash), ..user.clone() };
                if let Err(e) = self.h.store.update_user(&upgraded).await {
                    tracing::warn!(error = %e, "could not re-hash an imported password");
                }
                return Ok(upgraded);
            }
        }
        Ok(user)
    }

    /// Issue a token for a user (or the app, with `user` None).
    pub async fn issue_token(&self, app: &App, user: Option<&str>, kind: TokenKind, ttl_secs: Option<i64>) -> Result<Token> {
        let now = self.now();
        let token = Token {
            token: random_lower(25) + &random_string(15),
            app: app.id,
            user: user.map(str::to_string),
            kind,
            created_at: now,
            expires_at: ttl_secs.map(|s| now + s * 1000),
            device: None,
        };
        self.h.store.put_token(&token).await?;
        Ok(token)
    }

    /// Store a token as given (a face that binds tokens to devices fills `device`).
    pub async fn put_token(&self, token: &Token) -> Result<()> {
        self.h.store.put_token(token).await
    }

    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        self.h.store.delete_token(token).await?;
        self.h.caches.invalidate(Invalidate::Tokens);
        Ok(())
    }

    /// Revoke every token of a kind a user holds (a kicked client must log in again).
    pub async fn revoke_user_tokens(&self, app: &App, user: &str, kind: TokenKind) -> Result<u64> {
        let n = self.h.store.delete_user_tokens(app.id, user, kind).await?;
        self.h.caches.invalidate(Invalidate::Tokens);
        Ok(n)
    }

    /// The live token of this kind and app, or None (unknown, expired, or another app's).
    pub async fn check_token(&self, app: &App, token: &str, kind: TokenKind) -> Result<Option<Token>> {
        let (cached, generation) = self.h.caches.token(token);
        let t = match cached {
            Some(t) => t,
            None => {
                let Some(t) = self.h.store.get_token(token).await? else { return Ok(None) };
                self.h.caches.remember_token(generation, token, &t);
                t
            }
        };
        if t.app != app.id || t.kind != kind || t.expires_at.is_some_and(|e| e <= self.now()) {
            return Ok(None);
        }
        Ok(Some(t))
    }

    pub async fn record_login(&self, app: &App, user: &str) -> Result<()> {
        self.h.store.record_login(app.id, user, self.now()).await
    }

    // ------------------------------------------------------------------ clients

    /// Which of these users are online; at most `check_online_max` ids.
    pub async fn check_online(&self, app: &App, ids: &[String]) -> Result<Vec<String>> {
        if ids.len() > app.limits.check_online_max {
            return Err(Error::too_many("client ids", app.limits.check_online_max));
        }
        self.online(app, ids).await
    }

    /// Which of these users have a session open now.
    pub async fn online(&self, app: &App, ids: &[String]) -> Result<Vec<String>> {
        self.h.presence.online(app.id, ids).await
    }

    /// End every session of a user. The reason is at most `kick_reason_max_chars` characters.
    pub async fn kick(&self, app: &App, user: &str, reason: Option<String>) -> Result<()> {
        self.validate_user_id(app, user)?;
        if let Some(r) = &reason {
            if r.chars().count() > app.limits.kick_reason_max_chars {
                return Err(Error::too_large("reason", app.limits.kick_reason_max_chars));
            }
        }
        // nothing is stored: the app hears the failure and may ask again
        let kick = Event::Kick { app: app.id, user: user.to_string(), session: None, reason: KickReason::ByApp(reason) };
        self.h.bus.publish(kick).map_err(Error::internal)
    }

    // ------------------------------------------------------------------ sessions

    /// A realtime session opened (`ip`: the client's address; `reconnect`: the client came
    /// back on its own). Single-device login: another session of the user with the same tag on
    /// another device gives way (it is kicked for a conflict). Counts as a login today.
    pub async fn session_opened(&self, app: &App, user: &str, session: SessionRef, ip: Option<&str>, reconnect: bool) -> Result<()> {
        if let Some(tag) = session.tag.as_deref().filter(|t| !t.is_empty() && *t != "default") {
            // presence out of reach: the session does not open (the client retries), rather than
            // open without the single-device rule
            for old in self.h.presence.sessions(app.id, user).await? {
                if old.tag.as_deref() == Some(tag) && old.device != session.device && old != session {
                    // logged on failure: the new session is not refused for the old one's sake
                    self.h.bus.deliver(Event::Kick {
                        app: app.id,
                        user: user.to_string(),
                        session: Some(old),
                        reason: KickReason::Conflict,
                    });
                }
            }
        }
        self.h.presence.session_opened(app.id, user, session.clone(), self.now()).await?;
        self.tell(app, crate::hooks::After::Online { user, session: &session, ip, reconnect }).await;
        self.record_login(app, user).await
    }

    /// A realtime session ended, and why.
    pub async fn session_closed(&self, app: &App, user: &str, session: &SessionRef, ip: Option<&str>, why: &crate::hooks::Offline) {
        self.forget_session(app.id, user, session).await;
        self.tell(app, crate::hooks::After::Offline { user, session, ip, why }).await;
    }

    /// A realtime session ended: presence forgets it (all `session_closed` does when the app is
    /// gone). The session is gone whatever presence answers: a failure is logged, and a cluster's
    /// presence lets the session's entry expire with its heartbeats.
    pub async fn forget_session(&self, app: i64, user: &str, session: &SessionRef) {
        if let Err(e) = self.h.presence.session_closed(app, user, session, self.now()).await {
            tracing::warn!(app, user, error = %e, "presence could not forget a closed session");
        }
    }

    /// (users online now, distinct users who logged in today, UTC).
    pub async fn stats(&self, app: &App) -> Result<(i64, i64)> {
        let online = self.h.presence.online_count(app.id).await? as i64;
        let today = self.h.store.count_logins_since(app.id, utc_day_start(self.now())).await?;
        Ok((online, today))
    }
}
