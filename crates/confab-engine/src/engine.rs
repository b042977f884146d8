//! The engine: the bundle that builds the services (`Services::build`) from its handles;
//! conversations in `conv.rs`; messages in `message.rs`. Every rule lives in one of these;
//! faces only translate.

use std::sync::Arc;

use crate::app_code::AppCode;
use crate::apps::Apps;
use crate::bus::Bus;
use crate::clients::Clients;
use crate::collections::Collections;
use crate::conv::Conversations;
use crate::error::Result;
use crate::files::Files;
use crate::global_mutes::GlobalMutes;
use crate::ids::{Clock, IdGen, Stamps, SystemClock};
use crate::import::Imports;
use crate::limits::{LocalRateLimiter, RateLimiter};
use crate::message::Messages;
use crate::password::{HashSettings, Hasher, LocalLoginBackoff, LoginBackoff};
use crate::presence::Presence;
use crate::push_labels::PushLabels;
use crate::quotas::PlanQuotas;
use crate::reactions::Reactions;
use crate::rooms::Rooms;
use crate::social::Social;
use crate::store::{BlobStore, Store};
use crate::teller::Teller;
use crate::threads::Threads;
use crate::users::Users;

pub struct Engine {
    /// What the services are built from.
    h: Handles,
    /// The services, built from the handles by `wire` (again whenever a `with_*` replaces a
    /// handle one of them holds).
    s: Services,
}

/// The handles an engine's services are built from: the seams to the store and the node runtime,
/// and the per-engine state the services share.
#[derive(Clone)]
struct Handles {
    store: Arc<dyn Store>,
    /// The bytes of uploaded files: a store of their own (`store.rs`, `BlobStore`).
    blobs: Arc<dyn BlobStore>,
    bus: Arc<dyn Bus>,
    presence: Arc<dyn Presence>,
    /// The clock and the id generator (`ids.rs`), cloned into every service.
    stamps: Stamps,
    /// Rate buckets' counters (`limits.rs`).
    rates: Arc<dyn RateLimiter>,
    /// Apps, users known to exist, and tokens recently read from the store (a bearer token is
    /// checked on every call of a token face, and a token changes only by being revoked),
    /// dropped on every engine when they change (`runtime.rs`).
    caches: Arc<crate::runtime::Caches>,
    /// "Run once" (`once`).
    dedup: Arc<dyn crate::runtime::Dedup>,
    /// Orders each conversation's deliveries by sequence number (`order.rs`).
    order: Arc<crate::order::Sequencer>,
    /// Password hashing: bounded workers and queue (`password.rs`).
    hasher: Arc<Hasher>,
    /// Failed logins per user and per client address.
    backoff: Arc<dyn LoginBackoff>,
    /// The app's own code (`hooks.rs`); none until the server sets them.
    hooks: Arc<std::sync::OnceLock<Arc<dyn crate::hooks::Hooks>>>,
    /// Rung when calls are put in the outbox, so its runner need not wait for its next look.
    outbox_bell: Arc<tokio::sync::Notify>,
    node: u16,
}

/// The services an engine is made of, built from its handles (`build`), each holding only the
/// handles it uses and the services it calls.
struct Services {
    /// Keyed collections (`collections.rs`).
    collections: Arc<Collections>,
    /// The bytes of uploaded files (`files.rs`).
    files: Arc<Files>,
    /// Apps, their settings, rate buckets, "run once" (`apps.rs`).
    apps: Arc<Apps>,
    /// Who is online, realtime sessions, kicks, logins (`clients.rs`).
    clients: Arc<Clients>,
    /// Users, accounts, passwords and tokens (`users.rs`).
    users: Arc<Users>,
    /// Contacts, blocklists, user metadata, presence statuses, push tasks (`social.rs`).
    social: Arc<Social>,
    /// Conversations and their members (`conv.rs`).
    conversations: Arc<Conversations>,
    /// Messages and broadcasts (`message.rs`).
    messages: Arc<Messages>,
    /// Threads (`threads.rs`).
    threads: Arc<Threads>,
    /// Imports with old ids (`import.rs`).
    imports: Arc<Imports>,
    /// Chat room attributes and super admins (`rooms.rs`).
    rooms: Arc<Rooms>,
    /// Push labels (`push_labels.rs`).
    push_labels: Arc<PushLabels>,
    /// The look before a write at the plan's quotas (`quotas.rs`).
    quotas: Arc<PlanQuotas>,
    /// Global speech mutes (`global_mutes.rs`).
    global_mutes: Arc<GlobalMutes>,
    /// Reactions to messages (`reactions.rs`).
    reactions: Arc<Reactions>,
    /// The app's hooks, their outbox, report and counters (`app_code.rs`).
    app_code: Arc<AppCode>,
}

impl Services {
    fn build(h: &Handles) -> Services {
        let (store, presence, stamps) = (&h.store, &h.presence, &h.stamps);
        let teller = Teller { hooks: h.hooks.clone(), store: store.clone(), bell: h.outbox_bell.clone(), stamps: stamps.clone() };
        let collections = Arc::new(Collections { store: store.clone(), stamps: stamps.clone() });
        let files = Arc::new(Files { blobs: h.blobs.clone() });
        let apps = Arc::new(Apps {
            store: store.clone(),
            caches: h.caches.clone(),
            rates: h.rates.clone(),
            dedup: h.dedup.clone(),
            stamps: stamps.clone(),
        });
        let clients = Arc::new(Clients {
            presence: presence.clone(),
            bus: h.bus.clone(),
            store: store.clone(),
            stamps: stamps.clone(),
            teller: teller.clone(),
        });
        let social = Arc::new(Social {
            store: store.clone(),
            presence: presence.clone(),
            bus: h.bus.clone(),
            stamps: stamps.clone(),
            collections: collections.clone(),
            teller: teller.clone(),
        });
        let users = Arc::new(Users {
            store: store.clone(),
            caches: h.caches.clone(),
            hasher: h.hasher.clone(),
            backoff: h.backoff.clone(),
            stamps: stamps.clone(),
            social: social.clone(),
            clients: clients.clone(),
        });
        let rooms =
            Arc::new(Rooms { store: store.clone(), presence: presence.clone(), stamps: stamps.clone(), collections: collections.clone() });
        let conversations = Arc::new(Conversations {
            store: store.clone(),
            presence: presence.clone(),
            bus: h.bus.clone(),
            stamps: stamps.clone(),
            teller: teller.clone(),
            users: users.clone(),
            rooms: rooms.clone(),
        });
        let global_mutes = Arc::new(GlobalMutes { collections: collections.clone(), stamps: stamps.clone() });
        let messages = Arc::new(Messages {
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
        });
        let reactions = Arc::new(Reactions {
            messages: messages.clone(),
            conversations: conversations.clone(),
            collections: collections.clone(),
            teller: teller.clone(),
        });
        let threads = Arc::new(Threads { store: store.clone(), conversations: conversations.clone(), messages: messages.clone() });
        let imports =
            Arc::new(Imports { store: store.clone(), stamps: stamps.clone(), users: users.clone(), collections: collections.clone() });
        let push_labels = Arc::new(PushLabels { store: store.clone(), collections: collections.clone() });
        let quotas = Arc::new(PlanQuotas { store: store.clone() });
        let app_code = Arc::new(AppCode { store: store.clone(), stamps: stamps.clone(), teller: teller.clone() });
        Services {
            collections,
            files,
            apps,
            clients,
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
        let s = Services::build(&h);
        Engine { h, s }
    }

    /// Build the services again from the engine's handles (after one was replaced).
    fn wire(self) -> Self {
        Self::built(self.h)
    }

    /// Apps: creating them and their settings, finding one by credentials, rate buckets, "run once".
    pub fn apps(&self) -> &Apps {
        &self.s.apps
    }

    /// Users: who exists, accounts, passwords and tokens.
    pub fn users(&self) -> &Users {
        &self.s.users
    }

    /// Conversations of every kind and their members.
    pub fn conversations(&self) -> &Conversations {
        &self.s.conversations
    }

    /// Messages and broadcasts.
    pub fn messages(&self) -> &Messages {
        &self.s.messages
    }

    /// Threads hanging from group messages.
    pub fn threads(&self) -> &Threads {
        &self.s.threads
    }

    /// Imports from another service, with the ids records had there.
    pub fn imports(&self) -> &Imports {
        &self.s.imports
    }

    /// Clients: who is online, realtime sessions opening and closing, kicks, logins.
    pub fn clients(&self) -> &Clients {
        &self.s.clients
    }

    /// Keyed collections.
    pub fn collections(&self) -> &Collections {
        &self.s.collections
    }

    /// The bytes of uploaded files.
    pub fn files(&self) -> &Files {
        &self.s.files
    }

    /// Contacts, user blocklists, user metadata, presence statuses and subscriptions, push tasks.
    pub fn social(&self) -> &Social {
        &self.s.social
    }

    /// Chat room custom attributes and the app's chat room super admins.
    pub fn rooms(&self) -> &Rooms {
        &self.s.rooms
    }

    /// Push labels: named sets of users a push task can be aimed at.
    pub fn push_labels(&self) -> &PushLabels {
        &self.s.push_labels
    }

    /// The plan quotas' look before a write (`check_quota`).
    pub fn quotas(&self) -> &PlanQuotas {
        &self.s.quotas
    }

    /// Global speech mutes.
    pub fn global_mutes(&self) -> &GlobalMutes {
        &self.s.global_mutes
    }

    /// Reactions to messages.
    pub fn reactions(&self) -> &Reactions {
        &self.s.reactions
    }

    /// The app's own code: its hooks, the outbox of their calls, their report and counters,
    /// whether a user may sign in.
    pub fn app_code(&self) -> &AppCode {
        &self.s.app_code
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

    /// Every delivery event from now on (what gateways turn into pushes; the session registry
    /// subscribes for them). For observers such as tests; a gateway registers with `sessions`.
    pub fn subscribe_events(&self) -> crate::bus::EventReceiver {
        self.h.bus.subscribe()
    }
}
