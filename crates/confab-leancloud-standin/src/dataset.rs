//! The generated LeanCloud app: conversations, roles, users, `_SysMessage` rows and message logs.
//!
//! Conversations, users and rows are held in memory (they are few); messages are not: message
//! `i` of a conversation is computed from (seed, conversation serial, `i`) whenever it is asked
//! for, so a log of any length pages in constant memory. Messages appended while a test runs are
//! the exception: they are stored.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use parking_lot::RwLock;
use serde_json::{json, Map, Value};

use crate::history::{LogView, Merge};
use crate::ids::{self, h, h128, iso, lower_alnum, msg_id_from_bytes, object_id};

/// 2024-03-01T00:00:00Z: generated history starts here (and ends long before today).
pub const BASE_EPOCH_MS: i64 = 1_709_251_200_000;

/// The salt of the docs' password-hash test vector; user 0 has it, with the password `password`.
pub const DOC_SALT: &str = "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2";

// tags that keep the hash streams of different things apart
const T_USER: u64 = 1;
const T_CONV: u64 = 2;
const T_MSG_ID: u64 = 3;
const T_MSG: u64 = 4;
const T_TS: u64 = 5;
const T_SYS: u64 = 7;
const T_INFO: u64 = 8;
const T_AUD: u64 = 9;

/// The kinds of conversation LeanCloud has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvKind {
    /// An ordinary (group) conversation: `m` holds the members.
    Group,
    /// A unique one-to-one conversation: `unique: true` and `uniqueId`.
    Unique,
    /// A chat room: `tr: true`, no stored member list.
    ChatRoom,
    /// A service conversation: `sys: true`, subscribers, per-subscriber logs.
    Service,
    /// A temporary conversation: `_tmp:` id, no `_Conversation` row, messages in app-wide history only.
    Temporary,
}

impl ConvKind {
    /// The path segment of its 1.2 REST resource (`conversations`, `chatrooms`, `service-conversations`).
    pub fn resource(self) -> &'static str {
        match self {
            ConvKind::ChatRoom => "chatrooms",
            ConvKind::Service => "service-conversations",
            _ => "conversations",
        }
    }
}

/// Which UNCONFIRMED optional fields history records carry (all on by default; turn them off to
/// check that an importer copes with their absence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFields {
    /// `patch-timestamp` (ms) on edited and recalled messages.
    pub patch_timestamp: bool,
    /// `recall: true` on recalled messages (their `data` is `{"_lctype":-127}` either way).
    pub recall_flag: bool,
    /// `mention-all` / `mention-pids` on messages that mention.
    pub mentions: bool,
}

impl Default for RecordFields {
    fn default() -> Self {
        RecordFields { patch_timestamp: true, recall_flag: true, mentions: true }
    }
}

/// What to generate. Everything is derived from `seed`: the same spec gives the same dataset.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub seed: u64,
    pub app_id: String,
    pub app_key: String,
    pub master_key: String,
    /// `_User` rows; their objectIds are the first client ids (apps that log into IM as users).
    pub users: usize,
    /// Size of the client-id pool (users included); at least `group_size.1` is used.
    pub clients: usize,
    /// Ordinary group conversations.
    pub groups: usize,
    /// Members of a group: from .0 to .1 inclusive.
    pub group_size: (usize, usize),
    /// Extra group conversations with these message counts (e.g. `vec![1_000_000]`).
    pub big_groups: Vec<u64>,
    /// Unique one-to-one conversations (distinct member pairs).
    pub unique_pairs: usize,
    pub chat_rooms: usize,
    pub services: usize,
    pub subscribers_per_service: usize,
    /// `_SysMessage` rows (messages users sent to the service) per service conversation.
    pub sys_messages_per_service: usize,
    /// Temporary conversations (messages only; UNCONFIRMED that LeanCloud lists them anywhere).
    pub temporary: usize,
    /// Messages in every conversation except the big groups.
    pub messages_per_conversation: u64,
    /// Mean gap between messages of one conversation (each gets a jitter below half of it).
    pub message_interval_ms: i64,
    /// Message `i` shares the millisecond of message `i-1` when `i % same_ms_every == same_ms_every-1`
    /// (0 or 1: never).
    pub same_ms_every: u64,
    /// Period of the special messages: at `i % special_every` 3 recalled, 5 edited, 7 mentions one
    /// member, 11 mentions all (0: none).
    pub special_every: u64,
    pub fields: RecordFields,
}

impl Default for DatasetSpec {
    /// A small app with one of everything: 4 users, 4 groups, 3 unique pairs, 2 chat rooms, 2
    /// service conversations with 5 subscribers, 120 messages per conversation.
    fn default() -> Self {
        DatasetSpec {
            seed: 1,
            app_id: "7Xb5sTfzXyJnpP0vHjAoQ2Ku-gzGzoHsz".into(),
            app_key: "aB3cD4eF5gH6iJ7kL8mN9oP0".into(),
            master_key: "Qr1St2Uv3Wx4Yz5Ab6Cd7Ef8".into(),
            users: 4,
            clients: 16,
            groups: 4,
            group_size: (3, 8),
            big_groups: Vec::new(),
            unique_pairs: 3,
            chat_rooms: 2,
            services: 2,
            subscribers_per_service: 5,
            sys_messages_per_service: 3,
            temporary: 0,
            messages_per_conversation: 120,
            message_interval_ms: 30_000,
            same_ms_every: 17,
            special_every: 97,
            fields: RecordFields::default(),
        }
    }
}

/// Who receives a service-conversation message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Every subscriber (and, for other kinds, every member).
    All,
    /// Only these clients (`to_clients`).
    Only(Vec<String>),
}

impl Audience {
    pub fn includes(&self, client: &str) -> bool {
        match self {
            Audience::All => true,
            Audience::Only(c) => c.iter().any(|x| x == client),
        }
    }
}

/// What the generator put in a message (for assertions; not part of the record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `data` is plain text, not JSON.
    Plain,
    /// `data` is a rich-media JSON string with this `_lctype` (−1 text … −6 file, positive app types).
    Typed(i64),
    /// `bin: true`, `data` is base64.
    Binary,
    /// Recalled: `data` is `{"_lctype":-127}`.
    Recalled,
}

/// One message as LeanCloud's history returns it (see [`Message::record`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub msg_id: String,
    pub timestamp: i64,
    /// The record's `conv-id`: objectId + `00000000` (ordinary conversations and chat rooms), the
    /// `_tmp:` id (temporary), or `md5(convId:clientId)` in a service conversation's per-subscriber log.
    pub conv_id: String,
    /// `to`: the conversation id.
    pub to: String,
    pub from: String,
    pub data: String,
    pub bin: bool,
    /// `from-ip` (null when `None`).
    pub from_ip: Option<String>,
    /// `ack-at`: absent when `None`.
    pub ack_at: Option<i64>,
    /// `patch-timestamp` (edited or recalled, when [`RecordFields::patch_timestamp`]).
    pub patch_timestamp: Option<i64>,
    /// `recall: true` is emitted when set (and [`RecordFields::recall_flag`]).
    pub recall: Option<bool>,
    pub mention_all: Option<bool>,
    pub mention_pids: Option<Vec<String>>,
    /// Not emitted: what the generator made, whether it was edited, whom a service message reached.
    pub kind: MessageKind,
    pub edited: bool,
    pub audience: Audience,
}

impl Message {
    /// The JSON object LeanCloud's history endpoints return for this message.
    pub fn record(&self) -> Value {
        let mut m = Map::new();
        m.insert("timestamp".into(), json!(self.timestamp));
        m.insert("conv-id".into(), json!(self.conv_id));
        m.insert("data".into(), json!(self.data));
        m.insert("from".into(), json!(self.from));
        m.insert("msg-id".into(), json!(self.msg_id));
        m.insert("is-conv".into(), json!(true));
        m.insert("is-room".into(), json!(false));
        m.insert("to".into(), json!(self.to));
        m.insert("bin".into(), json!(self.bin));
        m.insert("from-ip".into(), json!(self.from_ip));
        if let Some(a) = self.ack_at {
            m.insert("ack-at".into(), json!(a));
        }
        if let Some(p) = self.patch_timestamp {
            m.insert("patch-timestamp".into(), json!(p));
        }
        if let Some(r) = self.recall {
            m.insert("recall".into(), json!(r));
        }
        if let Some(a) = self.mention_all {
            m.insert("mention-all".into(), json!(a));
        }
        if let Some(p) = &self.mention_pids {
            m.insert("mention-pids".into(), json!(p));
        }
        Value::Object(m)
    }

    /// The paging key: (timestamp, msg-id), compared bytewise.
    pub fn key(&self) -> (i64, &str) {
        (self.timestamp, &self.msg_id)
    }
}

/// A message a test sends into a conversation ([`Dataset::append_message`]).
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub from: String,
    pub data: String,
    pub bin: bool,
    /// Service conversations: `Only` sends to some subscribers; ignored elsewhere.
    pub audience: Audience,
}

/// A conversation a test adds while the server runs ([`Dataset::add_conversation`]).
#[derive(Clone, Debug)]
pub struct NewConversation {
    pub kind: ConvKind,
    pub name: Option<String>,
    /// Members (groups, unique, temporary); for a service conversation, its subscribers.
    pub members: Vec<String>,
    /// Messages it gets at once (timestamped like [`Dataset::append`]'s).
    pub messages: usize,
}

/// A `_User` row and the plain password it was made from.
#[derive(Clone, Debug)]
pub struct User {
    pub object_id: String,
    pub username: String,
    pub password: String,
    pub salt: String,
    /// `base64(SHA-512^513(salt ‖ password))`, LeanCloud's stored `password`.
    pub password_hash: String,
    pub session_token: String,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// The row: with `secrets`, as the export has it (`password`, `salt`, and `sessionToken` when
    /// `token`); without, as `scan` returns it (LeanCloud never returns those over REST).
    pub fn row(&self, secrets: bool, token: bool) -> Value {
        let mut m = Map::new();
        m.insert("objectId".into(), json!(self.object_id));
        m.insert("username".into(), json!(self.username));
        if secrets {
            m.insert("password".into(), json!(self.password_hash));
            m.insert("salt".into(), json!(self.salt));
        }
        if let Some(e) = &self.email {
            m.insert("email".into(), json!(e));
            m.insert("emailVerified".into(), json!(self.created_at % 2 == 0));
        } else {
            m.insert("emailVerified".into(), json!(false));
        }
        if let Some(p) = &self.mobile {
            m.insert("mobilePhoneNumber".into(), json!(p));
        }
        m.insert("mobilePhoneVerified".into(), json!(self.mobile.is_some()));
        if secrets && token {
            m.insert("sessionToken".into(), json!(self.session_token));
        }
        m.insert("ACL".into(), json!({"*": {"read": true}, self.object_id.clone(): {"write": true}}));
        m.insert("createdAt".into(), json!(iso(self.created_at)));
        m.insert("updatedAt".into(), json!(iso(self.updated_at)));
        Value::Object(m)
    }
}

/// A service conversation's subscriber, as `/subscribers` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub client_id: String,
    pub subscribed_at: i64,
}

/// A snapshot of one conversation, for assertions.
#[derive(Clone, Debug)]
pub struct ConversationInfo {
    pub id: String,
    pub kind: ConvKind,
    pub name: Option<String>,
    pub creator: Option<String>,
    pub members: Vec<String>,
    pub mutes: Vec<String>,
    pub unique_id: Option<String>,
    /// Service conversations, sorted by client id.
    pub subscribers: Vec<Subscriber>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Messages in its log (a service conversation's: each message once, whatever its audience).
    pub message_count: u64,
    pub last_message_at: Option<i64>,
    /// Its `_Conversation` row (none for temporary conversations).
    pub row: Option<Value>,
}

/// Errors of the mutating calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StandInError {
    UnknownConversation(String),
    Invalid(String),
}

impl fmt::Display for StandInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StandInError::UnknownConversation(id) => write!(f, "no conversation {id} in the dataset"),
            StandInError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for StandInError {}

/// The immutable part of a conversation: what message `i` is.
#[derive(Debug)]
pub(crate) struct ConvGen {
    seed: u64,
    serial: u64,
    pub(crate) kind: ConvKind,
    pub(crate) id: String,
    /// `conv-id` of its records.
    log_id: String,
    senders: Vec<String>,
    members: Vec<String>,
    /// Service conversations: who may be singled out by a per-user message.
    subscribers: Vec<String>,
    pub(crate) generated: u64,
    first_ts: i64,
    interval: i64,
    same_ms_every: u64,
    special_every: u64,
    fields: RecordFields,
    file_host: String,
}

const TEXTS: &[&str] = &[
    "hello",
    "今天天气不错！",
    "👍🏽 ok, see you at 10",
    "line one\nline two",
    "a \"quoted\" word and a back\\slash",
    "<b>not html</b> & co",
    "  leading and trailing spaces  ",
    "مرحبا بالعالم",
    "a+b=c; 100% sure? #tag",
    "真不懂",
];

impl ConvGen {
    fn hv(&self, tag: u64, i: u64) -> u64 {
        h(&[self.seed, tag, self.serial, i])
    }

    fn raw_ts(&self, i: u64) -> i64 {
        let jitter = (self.interval / 2).max(1);
        self.first_ts + i as i64 * self.interval + (self.hv(T_TS, i) % jitter as u64) as i64
    }

    fn tie(&self, i: u64) -> bool {
        self.same_ms_every >= 2 && i < self.generated && i % self.same_ms_every == self.same_ms_every - 1
    }

    pub(crate) fn ts(&self, i: u64) -> i64 {
        if self.tie(i) {
            self.raw_ts(i - 1)
        } else {
            self.raw_ts(i)
        }
    }

    /// The id before ties are ordered: every tenth has a `+` (to catch URL-encoding bugs).
    fn raw_id(&self, i: u64) -> String {
        let mut id = msg_id_from_bytes(&h128(&[self.seed, T_MSG_ID, self.serial, i]));
        if i.is_multiple_of(10) && !id.contains('+') {
            let at = (self.hv(T_MSG_ID, i) % 22) as usize;
            id.replace_range(at..at + 1, "+");
        }
        id
    }

    /// Ids of two messages in one millisecond ascend with their order (history orders ties by msg-id).
    pub(crate) fn id(&self, i: u64) -> String {
        if self.tie(i) {
            self.raw_id(i - 1).max(self.raw_id(i))
        } else if self.tie(i + 1) {
            self.raw_id(i).min(self.raw_id(i + 1))
        } else {
            self.raw_id(i)
        }
    }

    pub(crate) fn audience(&self, i: u64) -> Audience {
        if self.kind != ConvKind::Service || self.subscribers.is_empty() || !self.hv(T_AUD, i).is_multiple_of(4) {
            return Audience::All;
        }
        let n = self.subscribers.len() as u64;
        let a = self.hv(T_AUD, i + 1) % n;
        let mut only = vec![self.subscribers[a as usize].clone()];
        if n > 2 && self.hv(T_AUD, i + 2).is_multiple_of(2) {
            only.push(self.subscribers[((a + 1) % n) as usize].clone());
        }
        Audience::Only(only)
    }

    /// Who sent generated message `i` (cheaper than composing it).
    pub(crate) fn sender(&self, i: u64) -> &str {
        &self.senders[(self.hv(T_MSG, i) % self.senders.len() as u64) as usize]
    }

    pub(crate) fn may_send(&self, client: &str) -> bool {
        self.generated > 0 && self.senders.iter().any(|s| s == client)
    }

    /// Message `i` (generated part).
    pub(crate) fn message(&self, i: u64) -> Message {
        self.compose(i, self.ts(i), self.id(i), true)
    }

    /// A message of this conversation with the given index, time and id; `special` allows recalled,
    /// edited and mentioning messages.
    pub(crate) fn compose(&self, i: u64, ts: i64, msg_id: String, special: bool) -> Message {
        let r = self.hv(T_MSG, i);
        let sender = self.sender(i).to_string();
        let text = TEXTS[((r >> 8) % TEXTS.len() as u64) as usize];
        let mut m = Message {
            msg_id,
            timestamp: ts,
            conv_id: self.log_id.clone(),
            to: self.id.clone(),
            from: sender.clone(),
            data: String::new(),
            bin: false,
            from_ip: if (r >> 16).is_multiple_of(10) {
                None
            } else {
                let x = r >> 20;
                Some(format!("{}.{}.{}.{}", 1 + x % 223, (x >> 8) % 256, (x >> 16) % 256, 1 + (x >> 24) % 254))
            },
            ack_at: match self.kind {
                ConvKind::ChatRoom => None,
                _ if (r >> 40).is_multiple_of(5) => None,
                _ => Some(ts + 1 + ((r >> 44) % 5000) as i64),
            },
            patch_timestamp: None,
            recall: None,
            mention_all: None,
            mention_pids: None,
            kind: MessageKind::Plain,
            edited: false,
            audience: self.audience(i),
        };
        let special_at = if special && self.special_every > 0 { Some(i % self.special_every) } else { None };
        let others: Vec<&String> = self.members.iter().filter(|x| **x != sender).collect();
        match special_at {
            Some(3) => {
                m.kind = MessageKind::Recalled;
                m.data = r#"{"_lctype":-127}"#.into();
                m.ack_at = None;
                if self.fields.recall_flag {
                    m.recall = Some(true);
                }
                if self.fields.patch_timestamp {
                    m.patch_timestamp = Some(ts + 120_000);
                }
                return m;
            }
            Some(5) => {
                m.kind = MessageKind::Typed(-1);
                m.edited = true;
                m.data = json!({"_lctype": -1, "_lctext": format!("{text} (edited)")}).to_string();
                if self.fields.patch_timestamp {
                    m.patch_timestamp = Some(ts + 60_000);
                }
                return m;
            }
            Some(7) if self.kind != ConvKind::Service && !others.is_empty() => {
                let target = others[((r >> 24) % others.len() as u64) as usize].clone();
                m.kind = MessageKind::Typed(-1);
                m.data = json!({"_lctype": -1, "_lctext": format!("@{target} {text}")}).to_string();
                if self.fields.mentions {
                    m.mention_all = Some(false);
                    m.mention_pids = Some(vec![target]);
                }
                return m;
            }
            Some(11) if self.kind != ConvKind::Service => {
                m.kind = MessageKind::Typed(-1);
                m.data = json!({"_lctype": -1, "_lctext": format!("@all {text}")}).to_string();
                if self.fields.mentions {
                    m.mention_all = Some(true);
                }
                return m;
            }
            _ => {}
        }
        let file_id = object_id(ts, &[self.seed, T_MSG, self.serial, i, 1]);
        let url = |ext: &str| format!("{}/{}.{ext}", self.file_host, hex::encode(h128(&[self.seed, T_MSG, self.serial, i, 2])));
        let size = 1000 + (r >> 32) % 200_000;
        let (kind, data) = match r % 100 {
            0..35 => (MessageKind::Plain, format!("{text} #{i}")),
            35..55 if (r >> 12).is_multiple_of(2) => (MessageKind::Typed(-1), json!({"_lctype": -1, "_lctext": text}).to_string()),
            35..55 => (
                MessageKind::Typed(-1),
                json!({"_lctype": -1, "_lctext": text, "_lcattrs": {"a": "自定义属性", "seq": i, "flag": true}}).to_string(),
            ),
            55..65 => (
                MessageKind::Typed(-2),
                json!({"_lctype": -2, "_lctext": "照片", "_lcfile": {"url": url("jpeg"), "objId": file_id,
                    "metaData": {"name": format!("IMG_{i}.jpeg"), "format": "jpeg", "height": 768, "width": 1024, "size": size}}})
                .to_string(),
            ),
            65..70 => (
                MessageKind::Typed(-3),
                json!({"_lctype": -3, "_lcfile": {"url": url("m4a"), "objId": file_id,
                    "metaData": {"name": format!("voice-{i}.m4a"), "format": "m4a", "duration": 1 + (r >> 24) % 60, "size": size}}})
                .to_string(),
            ),
            70..73 => (
                MessageKind::Typed(-4),
                json!({"_lctype": -4, "_lctext": "video", "_lcfile": {"url": url("mp4"), "objId": file_id,
                    "metaData": {"name": format!("clip-{i}.mp4"), "format": "mp4", "duration": 1 + (r >> 24) % 300, "size": size}}})
                .to_string(),
            ),
            73..76 => (
                MessageKind::Typed(-6),
                json!({"_lctype": -6, "_lctext": "报告", "_lcfile": {"url": url("pdf"), "name": format!("report-{i}.pdf"), "size": size}})
                    .to_string(),
            ),
            76..82 => (
                MessageKind::Typed(-5),
                json!({"_lctype": -5, "_lctext": "在这里", "_lcloc": {
                    "longitude": 116.0 + ((r >> 24) % 10_000) as f64 / 10_000.0,
                    "latitude": 39.0 + ((r >> 40) % 10_000) as f64 / 10_000.0}})
                .to_string(),
            ),
            82..88 => {
                let t = 1 + (r >> 24) % 3;
                (
                    MessageKind::Typed(t as i64),
                    json!({"_lctype": t, "_lctext": "custom", "title": format!("card {i}"), "amount": (r % 10_000) as f64 / 100.0,
                        "_lcattrs": {"orderId": format!("o-{i}")}})
                    .to_string(),
                )
            }
            88..94 => {
                let len = 1 + ((r >> 24) % 48) as usize;
                let bytes: Vec<u8> = (0..len).map(|k| (h(&[r, k as u64]) & 0xff) as u8).collect();
                m.bin = true;
                (MessageKind::Binary, STANDARD.encode(bytes))
            }
            _ => (MessageKind::Plain, format!("{text}\n\t— {sender} ✉ {i}")),
        };
        m.kind = kind;
        m.data = data;
        m
    }
}

/// The mutable, in-memory part of a conversation.
#[derive(Debug)]
pub(crate) struct ConvEntry {
    pub(crate) gen: Arc<ConvGen>,
    pub(crate) appended: Arc<Vec<Message>>,
    name: Option<String>,
    creator: Option<String>,
    members: Vec<String>,
    mutes: Vec<String>,
    attr: Option<Value>,
    custom: Map<String, Value>,
    acl: Option<Value>,
    unique_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    pub(crate) subscribers: Vec<Subscriber>,
}

impl ConvEntry {
    pub(crate) fn view(&self) -> LogView {
        LogView::new(self.gen.clone(), self.appended.clone())
    }

    fn last_ts(&self) -> Option<i64> {
        if let Some(m) = self.appended.last() {
            Some(m.timestamp)
        } else if self.gen.generated > 0 {
            Some(self.gen.ts(self.gen.generated - 1))
        } else {
            None
        }
    }

    fn count(&self) -> u64 {
        self.gen.generated + self.appended.len() as u64
    }

    /// Its `_Conversation` row in LeanCloud's REST object encoding.
    fn row(&self) -> Option<Value> {
        let kind = self.gen.kind;
        if kind == ConvKind::Temporary {
            return None;
        }
        let mut m = Map::new();
        m.insert("objectId".into(), json!(self.gen.id));
        if let Some(n) = &self.name {
            m.insert("name".into(), json!(n));
        }
        if let Some(c) = &self.creator {
            m.insert("c".into(), json!(c));
        }
        match kind {
            ConvKind::ChatRoom => {
                m.insert("tr".into(), json!(true));
            }
            ConvKind::Service => {
                m.insert("sys".into(), json!(true));
            }
            _ => {
                m.insert("m".into(), json!(self.members));
            }
        }
        if !self.mutes.is_empty() {
            m.insert("mu".into(), json!(self.mutes));
        }
        if let Some(u) = &self.unique_id {
            m.insert("unique".into(), json!(true));
            m.insert("uniqueId".into(), json!(u));
        }
        if let Some(a) = &self.attr {
            m.insert("attr".into(), a.clone());
        }
        for (k, v) in &self.custom {
            m.insert(k.clone(), v.clone());
        }
        if let Some(lm) = self.last_ts() {
            m.insert("lm".into(), ids::date(lm));
        }
        if let Some(acl) = &self.acl {
            m.insert("ACL".into(), acl.clone());
        }
        m.insert("createdAt".into(), json!(iso(self.created_at)));
        m.insert("updatedAt".into(), json!(iso(self.updated_at)));
        Some(Value::Object(m))
    }

    fn info(&self) -> ConversationInfo {
        ConversationInfo {
            id: self.gen.id.clone(),
            kind: self.gen.kind,
            name: self.name.clone(),
            creator: self.creator.clone(),
            members: self.members.clone(),
            mutes: self.mutes.clone(),
            unique_id: self.unique_id.clone(),
            subscribers: self.subscribers.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            message_count: self.count(),
            last_message_at: self.last_ts(),
            row: self.row(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) convs: Vec<ConvEntry>,
    pub(crate) index: HashMap<String, usize>,
    next_serial: u64,
    member_infos: Vec<Value>,
    sys_messages: Vec<Value>,
    users: Vec<User>,
    clients: Vec<String>,
}

impl Inner {
    pub(crate) fn conv(&self, id: &str) -> Option<&ConvEntry> {
        self.index.get(id).map(|i| &self.convs[*i])
    }

    /// Every log app-wide history reads: each conversation's, and each service conversation's
    /// per-subscriber logs.
    pub(crate) fn app_views(&self) -> Vec<LogView> {
        let mut out = Vec::new();
        for c in &self.convs {
            if c.gen.kind == ConvKind::Service {
                for s in &c.subscribers {
                    out.push(c.view().for_subscriber(&s.client_id));
                }
            } else {
                out.push(c.view());
            }
        }
        out
    }

    /// The logs of one sender's messages in ordinary conversations, chat rooms and temporary ones.
    pub(crate) fn sender_views(&self, client: &str) -> Vec<LogView> {
        self.convs
            .iter()
            .filter(|c| c.gen.kind != ConvKind::Service)
            .filter(|c| c.gen.may_send(client) || c.appended.iter().any(|m| m.from == client))
            .map(|c| c.view().by_sender(client))
            .collect()
    }

    fn rows_of(&self, class: &str, export: bool, token: bool) -> Option<Vec<Value>> {
        let mut rows: Vec<Value> = match class {
            "_Conversation" => self.convs.iter().filter_map(ConvEntry::row).collect(),
            "_ConversationMemberInfo" => self.member_infos.clone(),
            "_SysMessage" => self.sys_messages.clone(),
            "_User" => self.users.iter().map(|u| u.row(export, token)).collect(),
            _ => return None,
        };
        rows.sort_by(|a, b| a["objectId"].as_str().cmp(&b["objectId"].as_str()));
        Some(rows)
    }
}

/// The generated app. Share it as `Arc<Dataset>` between a server and the test that asserts on it;
/// every method takes `&self`.
#[derive(Debug)]
pub struct Dataset {
    spec: DatasetSpec,
    pub(crate) inner: RwLock<Inner>,
    /// When the stand-in server last answered a request (appended messages are stamped after it).
    last_request_ms: AtomicI64,
}

/// The classes the dataset has rows for (in export order).
pub const CLASSES: &[&str] = &["_Conversation", "_ConversationMemberInfo", "_SysMessage", "_User"];

fn pick_distinct(n: usize, pool: &[String], parts: &[u64]) -> Vec<String> {
    let mut idx: Vec<usize> = (0..pool.len()).collect();
    let n = n.min(pool.len());
    for k in 0..n {
        let mut p = parts.to_vec();
        p.push(k as u64);
        let j = k + (h(&p) % (pool.len() - k) as u64) as usize;
        idx.swap(k, j);
    }
    idx[..n].iter().map(|i| pool[*i].clone()).collect()
}

fn client_name(k: usize) -> String {
    match k % 9 {
        4 => format!("user{k:03}@example.com"),
        7 => format!("用户{k:03}"),
        2 => format!("User_{k:03}-x"),
        _ => format!("user{k:03}"),
    }
}

impl Dataset {
    /// Generate the dataset `spec` describes.
    pub fn generate(spec: DatasetSpec) -> Arc<Dataset> {
        let s = spec.seed;
        let mut inner = Inner::default();
        // users: objectIds double as the first client ids
        for k in 0..spec.users {
            let k64 = k as u64;
            let created_at = BASE_EPOCH_MS - 30 * 86_400_000 + k as i64 * 3_600_000 + (h(&[s, T_USER, k64]) % 3_600_000) as i64;
            let (salt, password) = if k == 0 {
                (DOC_SALT.to_string(), "password".to_string())
            } else {
                (lower_alnum(48, &[s, T_USER, k64, 1]), format!("pw-{}", lower_alnum(8, &[s, T_USER, k64, 2])))
            };
            inner.users.push(User {
                object_id: object_id(created_at, &[s, T_USER, k64]),
                username: if k % 3 == 1 { format!("用户{k}") } else { format!("user{k}") },
                password_hash: ids::password_hash(&salt, &password),
                password,
                salt,
                session_token: lower_alnum(25, &[s, T_USER, k64, 3]),
                email: (k % 2 == 0).then(|| format!("user{k}@example.com")),
                mobile: (k % 3 == 0).then(|| format!("+86186{:08}", h(&[s, T_USER, k64, 4]) % 100_000_000)),
                created_at,
                updated_at: created_at + (h(&[s, T_USER, k64, 5]) % 86_400_000) as i64,
            });
        }
        let want = spec.clients.max(spec.users).max(spec.group_size.1).max(2);
        inner.clients = inner.users.iter().map(|u| u.object_id.clone()).collect();
        for k in inner.clients.len()..want {
            inner.clients.push(client_name(k));
        }
        let clients = inner.clients.clone();
        let ds = Dataset { spec, inner: RwLock::new(inner), last_request_ms: AtomicI64::new(0) };
        {
            let spec = &ds.spec;
            let mut inner = ds.inner.write();
            let n = spec.messages_per_conversation;
            for _ in 0..spec.groups {
                ds.gen_group(&mut inner, &clients, n);
            }
            for &big in &spec.big_groups {
                ds.gen_group(&mut inner, &clients, big);
            }
            let mut pairs = HashSet::new();
            let mut k = 0usize;
            while pairs.len() < spec.unique_pairs && k < spec.unique_pairs * 4 + clients.len() * clients.len() {
                let i = k % clients.len();
                let j = (i + 1 + k / clients.len()) % clients.len();
                k += 1;
                let key = if i < j { (i, j) } else { (j, i) };
                if i == j || !pairs.insert(key) {
                    continue;
                }
                let serial = inner.next_serial;
                let members = vec![clients[i].clone(), clients[j].clone()];
                let name = serial.is_multiple_of(2).then(|| format!("{} & {}", members[0], members[1]));
                let created = ds.created_at(serial);
                let mut e = ds.entry(serial, ConvKind::Unique, created, members.clone(), members.clone(), Vec::new(), n);
                e.name = name;
                e.creator = Some(members[0].clone());
                e.unique_id = Some(ids::unique_id(&members));
                ds.push(&mut inner, e);
            }
            for k in 0..spec.chat_rooms {
                let serial = inner.next_serial;
                let created = ds.created_at(serial);
                let mut e = ds.entry(serial, ConvKind::ChatRoom, created, clients.clone(), Vec::new(), Vec::new(), n);
                e.name = Some(format!("Chat room {k} 🎉"));
                e.creator = Some(clients[(h(&[s, T_CONV, serial, 1]) % clients.len() as u64) as usize].clone());
                e.custom.insert("topic".into(), json!(format!("live #{k}")));
                ds.push(&mut inner, e);
            }
            for k in 0..spec.services {
                let serial = inner.next_serial;
                let created = ds.created_at(serial);
                let mut subs = pick_distinct(spec.subscribers_per_service, &clients, &[s, T_CONV, serial, 2]);
                subs.sort();
                let sender = format!("sys-admin-{k}");
                let mut e = ds.entry(serial, ConvKind::Service, created, vec![sender.clone()], Vec::new(), subs.clone(), n);
                e.name = Some(format!("系统通知 {k}"));
                if k % 2 == 0 {
                    e.creator = Some(sender);
                }
                e.custom.insert("avatarURL".into(), json!(format!("https://example.com/sys/{k}.png")));
                e.subscribers = subs
                    .iter()
                    .enumerate()
                    .map(|(j, c)| Subscriber { client_id: c.clone(), subscribed_at: created + 1 + j as i64 })
                    .collect();
                for j in 0..spec.sys_messages_per_service {
                    let j64 = j as u64;
                    let ts = created + 90_000 + j as i64 * 45_000 + (h(&[s, T_SYS, serial, j64]) % 1000) as i64;
                    let from = if subs.is_empty() { clients[j % clients.len()].clone() } else { subs[j % subs.len()].clone() };
                    let x = h(&[s, T_SYS, serial, j64, 1]);
                    inner.sys_messages.push(json!({
                        "objectId": object_id(ts, &[s, T_SYS, serial, j64]),
                        "conv": {"__type": "Pointer", "className": "_Conversation", "objectId": e.gen.id},
                        "msgId": msg_id_from_bytes(&h128(&[s, T_SYS, serial, j64])),
                        "from": from,
                        "fromIp": format!("{}.{}.{}.{}", 1 + x % 223, (x >> 8) % 256, (x >> 16) % 256, 1 + (x >> 24) % 254),
                        "bin": false,
                        "data": json!({"_lctype": -1, "_lctext": format!("你好，sys {j}")}).to_string(),
                        "timestamp": ts,
                        "ackAt": ts + 17,
                        "createdAt": iso(ts),
                        "updatedAt": iso(ts),
                    }));
                }
                ds.push(&mut inner, e);
            }
            for _ in 0..spec.temporary {
                let serial = inner.next_serial;
                let created = ds.created_at(serial);
                let members = pick_distinct(2 + (h(&[s, T_CONV, serial, 3]) % 2) as usize, &clients, &[s, T_CONV, serial, 4]);
                let e = ds.entry(serial, ConvKind::Temporary, created, members.clone(), members, Vec::new(), n);
                ds.push(&mut inner, e);
            }
        }
        Arc::new(ds)
    }

    fn created_at(&self, serial: u64) -> i64 {
        BASE_EPOCH_MS + serial as i64 * 3_600_000 + (h(&[self.spec.seed, T_CONV, serial]) % 1_800_000) as i64
    }

    fn gen_group(&self, inner: &mut Inner, clients: &[String], messages: u64) {
        let s = self.spec.seed;
        let serial = inner.next_serial;
        let (lo, hi) = (self.spec.group_size.0.max(1), self.spec.group_size.1.max(self.spec.group_size.0).max(1));
        let r = h(&[s, T_CONV, serial, 5]);
        let size = lo + (r % (hi - lo + 1) as u64) as usize;
        let members = pick_distinct(size, clients, &[s, T_CONV, serial, 6]);
        let created = self.created_at(serial);
        let mut e = self.entry(serial, ConvKind::Group, created, members.clone(), members.clone(), Vec::new(), messages);
        e.name = Some(format!("Group {serial} · 群聊"));
        e.creator = members.first().cloned();
        if r.is_multiple_of(2) && members.len() > 1 {
            e.mutes = vec![members[members.len() - 1].clone()];
        }
        if !r.is_multiple_of(3) {
            e.attr = Some(
                json!({"type": "private", "pinned": r.is_multiple_of(2), "level": serial, "tags": ["a", "b"], "nested": {"color": "#ff0000"}}),
            );
        }
        if (r >> 8) % 2 == 1 {
            e.custom.insert("avatarURL".into(), json!(format!("https://example.com/avatars/{serial}.png")));
            e.custom.insert("topic".into(), json!("旧 SDK 写在顶层的属性"));
            e.custom.insert("score".into(), json!(serial as f64 + 0.5));
        }
        if (r >> 16).is_multiple_of(4) {
            e.acl = Some(json!({"*": {"read": true, "write": true}}));
        }
        // roles: some groups have a manager row, some an explicit owner row
        if members.len() > 1 && (r >> 20).is_multiple_of(2) {
            inner.member_infos.push(self.member_info(&e.gen.id, &members[1], "Manager", created + 5_000, serial, 1));
        }
        if (r >> 24).is_multiple_of(3) {
            inner.member_infos.push(self.member_info(&e.gen.id, &members[0], "Owner", created + 6_000, serial, 2));
        }
        self.push(inner, e);
    }

    fn member_info(&self, cid: &str, client: &str, role: &str, at: i64, serial: u64, k: u64) -> Value {
        json!({
            "objectId": object_id(at, &[self.spec.seed, T_INFO, serial, k]),
            "cid": cid,
            "clientId": client,
            "role": role,
            "createdAt": iso(at),
            "updatedAt": iso(at),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        serial: u64,
        kind: ConvKind,
        created: i64,
        senders: Vec<String>,
        members: Vec<String>,
        subscribers: Vec<String>,
        generated: u64,
    ) -> ConvEntry {
        let s = self.spec.seed;
        let id = if kind == ConvKind::Temporary {
            format!("_tmp:{}", URL_SAFE_NO_PAD.encode(h128(&[s, T_CONV, serial, 7])))
        } else {
            object_id(created, &[s, T_CONV, serial])
        };
        let log_id = if kind == ConvKind::Temporary { id.clone() } else { format!("{id}00000000") };
        let app = self.spec.app_id.split('-').next().unwrap_or("app").to_lowercase();
        let gen = ConvGen {
            seed: s,
            serial,
            kind,
            id,
            log_id,
            senders: if senders.is_empty() { vec!["nobody".into()] } else { senders },
            members: members.clone(),
            subscribers,
            generated,
            first_ts: created + 60_000,
            interval: self.spec.message_interval_ms.max(2),
            same_ms_every: self.spec.same_ms_every,
            special_every: self.spec.special_every,
            fields: self.spec.fields.clone(),
            file_host: format!("http://lc-{}.cn-n1.lcfile.com", &app[..app.len().min(8)]),
        };
        ConvEntry {
            gen: Arc::new(gen),
            appended: Arc::new(Vec::new()),
            name: None,
            creator: None,
            members,
            mutes: Vec::new(),
            attr: None,
            custom: Map::new(),
            acl: None,
            unique_id: None,
            created_at: created,
            updated_at: created + (h(&[s, T_CONV, serial, 8]) % 600_000) as i64,
            subscribers: Vec::new(),
        }
    }

    fn push(&self, inner: &mut Inner, e: ConvEntry) {
        inner.next_serial = inner.next_serial.max(e.gen.serial + 1);
        inner.index.insert(e.gen.id.clone(), inner.convs.len());
        inner.convs.push(e);
    }

    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    pub fn app_id(&self) -> &str {
        &self.spec.app_id
    }

    pub fn app_key(&self) -> &str {
        &self.spec.app_key
    }

    pub fn master_key(&self) -> &str {
        &self.spec.master_key
    }

    /// Every conversation (temporary ones included), in creation order.
    pub fn conversations(&self) -> Vec<ConversationInfo> {
        self.inner.read().convs.iter().map(ConvEntry::info).collect()
    }

    /// The ids of the conversations of one kind, in creation order.
    pub fn conversation_ids(&self, kind: ConvKind) -> Vec<String> {
        self.inner.read().convs.iter().filter(|c| c.gen.kind == kind).map(|c| c.gen.id.clone()).collect()
    }

    pub fn conversation(&self, id: &str) -> Option<ConversationInfo> {
        self.inner.read().conv(id).map(ConvEntry::info)
    }

    /// The client-id pool (user objectIds first).
    pub fn clients(&self) -> Vec<String> {
        self.inner.read().clients.clone()
    }

    pub fn users(&self) -> Vec<User> {
        self.inner.read().users.clone()
    }

    /// A class's rows as the export has them, sorted by objectId (`_User` with `password`, `salt`
    /// and `sessionToken`); `None` for a class the dataset doesn't have.
    pub fn rows(&self, class: &str) -> Option<Vec<Value>> {
        self.inner.read().rows_of(class, true, true)
    }

    /// A class's rows as `scan` returns them (`_User` without its secrets).
    pub fn api_rows(&self, class: &str) -> Option<Vec<Value>> {
        self.inner.read().rows_of(class, false, false)
    }

    pub(crate) fn export_rows(&self, class: &str, token: bool) -> Option<Vec<Value>> {
        self.inner.read().rows_of(class, true, token)
    }

    fn view_of(&self, conv: &str) -> Option<LogView> {
        self.inner.read().conv(conv).map(ConvEntry::view)
    }

    /// A conversation's log, oldest first (empty for an unknown id). A service conversation's log
    /// has each message once, `conv-id` = objectId + `00000000`, with its [`Audience`].
    pub fn messages(&self, conv: &str) -> MessageIter {
        MessageIter(Merge::all(self.view_of(conv).into_iter().collect(), false))
    }

    /// Message `index` (0 = oldest) of a conversation's log, computed directly (no walk).
    pub fn message_at(&self, conv: &str, index: u64) -> Option<Message> {
        self.view_of(conv).and_then(|v| v.at(index))
    }

    /// The same, newest first (the order history answers in by default).
    pub fn messages_newest_first(&self, conv: &str) -> MessageIter {
        MessageIter(Merge::all(self.view_of(conv).into_iter().collect(), true))
    }

    /// What `…/service-conversations/{conv}/subscribers/{client}/messages` walks, oldest first:
    /// messages to all subscribers and those to `client` alone, with the per-user `conv-id`.
    pub fn subscriber_messages(&self, conv: &str, client: &str) -> MessageIter {
        let inner = self.inner.read();
        let view = inner
            .conv(conv)
            .filter(|c| c.gen.kind == ConvKind::Service && c.subscribers.iter().any(|s| s.client_id == client))
            .map(|c| c.view().for_subscriber(client));
        MessageIter(Merge::all(view.into_iter().collect(), false))
    }

    /// What `/1.2/rtm/messages` walks, oldest first: every conversation's log, service conversations'
    /// per-subscriber logs (a message to all subscribers once per subscriber), ties at one
    /// (timestamp, msg-id) ordered by `conv-id`.
    pub fn app_messages(&self) -> MessageIter {
        MessageIter(Merge::all(self.inner.read().app_views(), false))
    }

    /// Messages in one conversation's log.
    pub fn message_count(&self, conv: &str) -> u64 {
        self.inner.read().conv(conv).map_or(0, ConvEntry::count)
    }

    /// Subscribers of a service conversation, sorted by client id.
    pub fn subscribers(&self, conv: &str) -> Vec<Subscriber> {
        self.inner.read().conv(conv).map(|c| c.subscribers.clone()).unwrap_or_default()
    }

    pub(crate) fn note_request(&self, at: i64) {
        self.last_request_ms.fetch_max(at, Ordering::Relaxed);
    }

    /// Timestamps for `n` new messages after `last` and after the last request answered, none in
    /// the future: ending at now, 1 ms apart, when there is room (waiting up to 50 ms for it);
    /// otherwise squeezed into shared milliseconds.
    fn stamps(&self, last: Option<i64>, n: usize) -> Vec<i64> {
        let lo = last.map_or(i64::MIN, |l| l + 1).max(self.last_request_ms.load(Ordering::Relaxed) + 1);
        let n64 = n as i64;
        let short = lo.saturating_add(n64 - 1) - ids::now_ms();
        if short > 0 {
            std::thread::sleep(std::time::Duration::from_millis(short.min(50) as u64));
        }
        let mut now = ids::now_ms();
        while now < lo {
            std::thread::sleep(std::time::Duration::from_millis(1));
            now = ids::now_ms();
        }
        if now - lo + 1 >= n64 {
            (0..n64).map(|k| now - n64 + 1 + k).collect()
        } else {
            let span = now - lo + 1;
            (0..n64).map(|k| lo + k * span / n64).collect()
        }
    }

    /// Append `n` generated messages (ordinary content, no recalls or edits) to a conversation, as
    /// if sent just now: their timestamps are after every message it has and after the last
    /// request the server answered, and not after now (several share a millisecond only when a
    /// batch does not fit). Returns them oldest first.
    pub fn append(&self, conv: &str, n: usize) -> Result<Vec<Message>, StandInError> {
        let mut inner = self.inner.write();
        let idx = *inner.index.get(conv).ok_or_else(|| StandInError::UnknownConversation(conv.into()))?;
        let e = &mut inner.convs[idx];
        let stamps = self.stamps(e.last_ts(), n);
        let base = e.count();
        let mut msgs: Vec<Message> = stamps
            .iter()
            .enumerate()
            .map(|(k, ts)| {
                let i = base + k as u64;
                e.gen.compose(i, *ts, e.gen.raw_id(i), false)
            })
            .collect();
        msgs.sort_by(|a, b| a.key().cmp(&b.key()));
        Arc::make_mut(&mut e.appended).extend(msgs.iter().cloned());
        Ok(msgs)
    }

    /// Append one message with the given content (timestamped like [`Dataset::append`]'s).
    pub fn append_message(&self, conv: &str, new: NewMessage) -> Result<Message, StandInError> {
        let mut inner = self.inner.write();
        let idx = *inner.index.get(conv).ok_or_else(|| StandInError::UnknownConversation(conv.into()))?;
        let e = &mut inner.convs[idx];
        let ts = self.stamps(e.last_ts(), 1)[0];
        let i = e.count();
        let mut m = e.gen.compose(i, ts, e.gen.raw_id(i), false);
        m.from = new.from;
        m.data = new.data;
        m.bin = new.bin;
        m.kind = if new.bin { MessageKind::Binary } else { MessageKind::Plain };
        if e.gen.kind == ConvKind::Service {
            if let Audience::Only(c) = &new.audience {
                if c.is_empty() {
                    return Err(StandInError::Invalid("a per-user service message needs at least one client".into()));
                }
            }
            m.audience = new.audience;
        }
        Arc::make_mut(&mut e.appended).push(m.clone());
        Ok(m)
    }

    /// Add a conversation now (created now: its objectId carries the current time); its messages,
    /// if any, are stamped like [`Dataset::append`]'s. Returns its id.
    pub fn add_conversation(&self, new: NewConversation) -> Result<String, StandInError> {
        let mut inner = self.inner.write();
        let serial = inner.next_serial;
        let now = ids::now_ms();
        let created = now - new.messages as i64 - 1;
        let (senders, members, subs) = match new.kind {
            ConvKind::Group | ConvKind::Unique | ConvKind::Temporary => {
                if new.members.is_empty() {
                    return Err(StandInError::Invalid("a conversation needs members".into()));
                }
                (new.members.clone(), new.members.clone(), Vec::new())
            }
            ConvKind::ChatRoom => (inner.clients.clone(), Vec::new(), Vec::new()),
            ConvKind::Service => {
                let mut subs = new.members.clone();
                subs.sort();
                subs.dedup();
                (vec![format!("sys-admin-{serial}")], Vec::new(), subs)
            }
        };
        let mut e = self.entry(serial, new.kind, created, senders, members.clone(), subs.clone(), 0);
        e.name = new.name;
        e.updated_at = created;
        e.creator = members.first().cloned();
        if new.kind == ConvKind::Unique {
            e.unique_id = Some(ids::unique_id(&members));
        }
        e.subscribers = subs.iter().map(|c| Subscriber { client_id: c.clone(), subscribed_at: created }).collect();
        let id = e.gen.id.clone();
        self.push(&mut inner, e);
        drop(inner);
        if new.messages > 0 {
            self.append(&id, new.messages)?;
        }
        Ok(id)
    }
}

/// Messages of one or more logs in history order (see [`Dataset::messages`]); constant memory.
pub struct MessageIter(Merge);

impl Iterator for MessageIter {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_well_formed() {
        let a = Dataset::generate(DatasetSpec::default());
        let b = Dataset::generate(DatasetSpec::default());
        assert_eq!(a.rows("_Conversation"), b.rows("_Conversation"));
        let convs = a.conversations();
        assert_eq!(convs.len(), 4 + 3 + 2 + 2);
        let mut seen = HashSet::new();
        for c in &convs {
            assert_eq!(c.id.len(), 24, "{}", c.id);
            assert!(c.id.chars().all(|x| x.is_ascii_hexdigit() && !x.is_ascii_uppercase()));
            let msgs: Vec<Message> = a.messages(&c.id).collect();
            assert_eq!(msgs.len() as u64, c.message_count);
            assert_eq!(msgs, b.messages(&c.id).collect::<Vec<_>>());
            for w in msgs.windows(2) {
                assert!(w[0].key() < w[1].key(), "{:?} {:?}", w[0].key(), w[1].key());
            }
            // a few ties, each pair ordered by msg-id
            let ties = msgs.windows(2).filter(|w| w[0].timestamp == w[1].timestamp).count();
            assert!(ties >= 5, "{ties}");
            assert!(msgs.iter().any(|m| m.msg_id.contains('+')));
            for m in &msgs {
                assert!(seen.insert(m.msg_id.clone()), "duplicate id {}", m.msg_id);
                assert_eq!(m.msg_id.len(), 22);
                assert_eq!(m.conv_id, format!("{}00000000", c.id));
                assert_eq!(m.to, c.id);
            }
            assert_eq!(c.last_message_at, msgs.last().map(|m| m.timestamp));
        }
        let unique = convs.iter().find(|c| c.kind == ConvKind::Unique).unwrap();
        assert_eq!(unique.unique_id.as_deref(), Some(ids::unique_id(&unique.members).as_str()));
        let kinds: HashSet<(MessageKind, bool)> =
            convs.iter().flat_map(|c| a.messages(&c.id).map(|m| (m.kind, m.edited)).collect::<Vec<_>>()).collect();
        for k in [MessageKind::Plain, MessageKind::Typed(-2), MessageKind::Typed(-5), MessageKind::Binary, MessageKind::Recalled] {
            assert!(kinds.contains(&(k, false)), "{k:?} missing from {kinds:?}");
        }
        assert!(kinds.contains(&(MessageKind::Typed(-1), true)));
        assert!(kinds.iter().any(|(k, _)| matches!(k, MessageKind::Typed(t) if *t > 0)));
        let user0 = &a.users()[0];
        assert_eq!(user0.password_hash, "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug==");
    }

    #[test]
    fn service_logs_split_by_audience() {
        let ds = Dataset::generate(DatasetSpec::default());
        let sys = &ds.conversation_ids(ConvKind::Service)[0];
        let all: Vec<Message> = ds.messages(sys).collect();
        let subs = ds.subscribers(sys);
        assert_eq!(subs.len(), 5);
        let mut per_user_total = 0;
        for s in &subs {
            let mine: Vec<Message> = ds.subscriber_messages(sys, &s.client_id).collect();
            let expected: Vec<&Message> = all.iter().filter(|m| m.audience.includes(&s.client_id)).collect();
            assert_eq!(mine.len(), expected.len());
            for (a, b) in mine.iter().zip(expected) {
                assert_eq!(a.msg_id, b.msg_id);
                assert_eq!(a.conv_id, ids::subscriber_log_id(sys, &s.client_id));
            }
            per_user_total += mine.len();
        }
        let broadcasts = all.iter().filter(|m| m.audience == Audience::All).count();
        assert!(broadcasts > 0 && broadcasts < all.len());
        assert!(per_user_total > broadcasts * subs.len());
        assert_eq!(ds.subscriber_messages(sys, "not-a-subscriber").count(), 0);
    }

    #[test]
    fn appended_messages_come_after_and_are_kept() {
        let ds = Dataset::generate(DatasetSpec::default());
        let g = &ds.conversation_ids(ConvKind::Group)[0];
        let before = ds.message_count(g);
        let last = ds.messages_newest_first(g).next().unwrap();
        let added = ds.append(g, 50).unwrap();
        assert_eq!(ds.message_count(g), before + 50);
        assert!(added[0].timestamp > last.timestamp);
        assert!(added.last().unwrap().timestamp <= ids::now_ms());
        let tail: Vec<Message> = ds.messages(g).skip(before as usize).collect();
        assert_eq!(tail, added);
        let one = ds.append_message(g, NewMessage { from: "x".into(), data: "hi".into(), bin: false, audience: Audience::All }).unwrap();
        assert_eq!(ds.messages_newest_first(g).next().unwrap(), one);
        let row = ds.conversation(g).unwrap().row.unwrap();
        assert_eq!(row["lm"]["iso"], json!(iso(one.timestamp)));
        let id = ds
            .add_conversation(NewConversation { kind: ConvKind::Group, name: None, members: vec!["a".into(), "b".into()], messages: 10 })
            .unwrap();
        assert_eq!(ds.messages(&id).count(), 10);
        assert!(ds.rows("_Conversation").unwrap().iter().any(|r| r["objectId"] == json!(id)));
        assert!(ds.append("nope", 1).is_err());
    }
}
