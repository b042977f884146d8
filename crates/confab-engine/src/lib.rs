//! confab's engine: the rules of messaging, with no I/O of its own.
//!
//! Faces (LeanCloud, Easemob, MaxIM) translate their APIs into calls on [`Engine`]; the engine
//! persists through a [`Store`], delivers through a [`Bus`] and asks [`Presence`] who is
//! online. See `docs/ARCHITECTURE.md`.
#![forbid(unsafe_code)]

mod actor;
pub mod app_code;
pub mod apps;
pub mod bus;
pub mod client_state;
pub mod clients;
pub mod collections;
pub mod commands;
pub mod connections;
pub mod conv;
mod conv_kind;
mod engine;
pub mod entries;
pub mod error;
pub mod files;
pub mod global_mutes;
pub mod hooks;
pub mod ids;
pub mod import;
pub mod limits;
mod message;
pub mod model;
pub mod order;
pub mod out_queue;
mod outbox;
pub mod password;
mod plan;
pub mod presence;
pub mod push_labels;
mod push_task;
pub mod query;
mod quota;
pub mod quotas;
mod random;
pub mod reactions;
pub mod rooms;
pub mod runtime;
pub mod sessions;
pub mod settings;
pub mod social;
pub mod store;
mod teller;
pub mod threads;
pub mod time;
pub mod users;

pub use app_code::{AppCode, HookReport};
pub use apps::{Apps, NewApp};
pub use bus::{Bus, BusError, ContactNews, Event, KickReason, LocalBus, Origin};
pub use clients::Clients;
pub use collections::Collections;
pub use commands::{AttrOp, ConvUpdate, SettingsChange};
pub use conv::{dedup, unique_id, Actor, NewConversation, Outcome};
pub use engine::Engine;
pub use entries::{Entry, EntryFilter, EntryQuery, EntryStats, Overwrite, Put, PutRule};
pub use error::{Error, Refused, Result};
pub use files::Files;
pub use global_mutes::{GlobalMute, GlobalMutes, MuteScope};
pub use hooks::{After, AppNote, Before, ContactOp, HookChain, Hooks, NoHooks, Offline, OutboxItem, Verdict};
pub use import::{ImportedConversation, ImportedUser};
pub use message::{Changed, Edit, MessageRef, NewBroadcast, NewMessage, Position, Sending};
pub use outbox::HookStat;
pub use presence::{LocalPresence, Presence, SessionRef};
pub use push_labels::PushLabels;
pub use quotas::{PlanQuotas, Quota, Quotas};
pub use random::{random_hex, random_lower, random_string};
pub use rooms::{KeyOutcome, Rooms, ROOM_ATTRIBUTES_BATCH_MAX};
pub use social::{PresenceInfo, PushTask, Social};
pub use store::{AppStore, BlobStore, ConversationStore, EntryStore, ImportStore, MessageStore, OutboxStore, Store, UserStore};
pub use time::utc_day_start;
pub use users::{NewAccount, Users};
