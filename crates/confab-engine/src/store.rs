//! The persistence contract, one trait per domain ([`AppStore`], [`UserStore`],
//! [`ConversationStore`], [`MessageStore`], [`ImportStore`], [`EntryStore`], [`OutboxStore`]),
//! bundled as [`Store`], and a [`BlobStore`] for uploaded bytes. Every implementation passes the
//! shared conformance suite, one module per trait (`confab-store-sqlite/tests/conformance.rs`
//! runs it; a PostgreSQL store will run the same).

use async_trait::async_trait;
use serde_json::Value;

use crate::commands::{AttrOp, ConvUpdate, SettingsChange};
use crate::entries::{Entry, EntryFilter, EntryQuery, EntryStats, Put, PutRule};
use crate::error::Result;
use crate::model::*;
pub use crate::outbox::HookStat;
use crate::outbox::OutboxItem;
use crate::query::*;

/// A write a store has queued; it completes when the write is durable (or has failed).
pub type Queued<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

/// A change to a conversation, applied atomically by the store (the engine makes it from a
/// [`ConvUpdate`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvPatch {
    pub name: Option<Option<String>>,
    pub creator: Option<Option<String>>,
    /// Changes to custom fields, each at a path (`["attr", "color"]`).
    pub attrs: Vec<(Vec<String>, AttrOp)>,
    pub settings: SettingsChange,
}

impl From<&ConvUpdate> for ConvPatch {
    fn from(u: &ConvUpdate) -> Self {
        ConvPatch { name: u.name.clone(), creator: None, attrs: u.attrs.clone(), settings: u.settings.clone() }
    }
}

impl ConvPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.creator.is_none() && self.attrs.is_empty() && self.settings.is_empty()
    }

    pub fn apply(&self, c: &mut Conversation, now: i64) {
        if let Some(n) = &self.name {
            c.name = n.clone();
        }
        if let Some(cr) = &self.creator {
            c.creator = cr.clone();
        }
        for (path, op) in &self.attrs {
            let current = get_path(&c.attrs, path).cloned();
            let value = match op {
                AttrOp::Set(v) => Some(v.clone()),
                AttrOp::Delete => None,
                AttrOp::Increment(n) => Some(add_numbers(current.as_ref(), n)),
                AttrOp::Add(vs) | AttrOp::AddUnique(vs) | AttrOp::Remove(vs) => {
                    let mut arr = match current {
                        Some(Value::Array(a)) => a,
                        _ => vec![],
                    };
                    match op {
                        AttrOp::Add(_) => arr.extend(vs.iter().cloned()),
                        AttrOp::AddUnique(_) => {
                            for v in vs {
                                if !arr.contains(v) {
                                    arr.push(v.clone());
                                }
                            }
                        }
                        _ => arr.retain(|x| !vs.contains(x)),
                    }
                    Some(Value::Array(arr))
                }
            };
            set_path(&mut c.attrs, path, value);
        }
        self.settings.apply(&mut c.settings);
        c.updated_at = now;
    }
}

fn get_path<'a>(map: &'a Attrs, path: &[String]) -> Option<&'a Value> {
    let (head, rest) = path.split_first()?;
    let v = map.get(head)?;
    if rest.is_empty() {
        return Some(v);
    }
    get_path(v.as_object()?, rest)
}

fn add_numbers(current: Option<&Value>, n: &serde_json::Number) -> Value {
    let cur = current.and_then(Value::as_number);
    match (cur.map_or(Some(0), |c| c.as_i64()), n.as_i64()) {
        (Some(a), Some(b)) => Value::from(a.saturating_add(b)),
        _ => {
            let a = cur.and_then(|c| c.as_f64()).unwrap_or(0.0);
            serde_json::Number::from_f64(a + n.as_f64().unwrap_or(0.0)).map_or(Value::Null, Value::Number)
        }
    }
}

fn set_path(map: &mut Attrs, path: &[String], value: Option<Value>) {
    let Some((head, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        match value {
            Some(v) => {
                map.insert(head.clone(), v);
            }
            None => {
                map.remove(head);
            }
        }
        return;
    }
    if value.is_none() && !map.contains_key(head) {
        return;
    }
    let child = map.entry(head.clone()).or_insert_with(|| Value::Object(Default::default()));
    if !child.is_object() {
        *child = Value::Object(Default::default());
    }
    if let Value::Object(m) = child {
        set_path(m, rest, value);
    }
}

/// A change to some members' state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberPatch {
    pub role: Option<Role>,
    pub notifications_off: Option<bool>,
    pub muted_until: Option<Option<i64>>,
    pub allowlisted: Option<bool>,
    /// Raise the read cursor to at least this sequence number.
    pub read_seq: Option<i64>,
    /// Raise the delivered cursor to at least this sequence number.
    pub delivered_seq: Option<i64>,
    pub hidden: Option<bool>,
    pub nickname: Option<Option<String>>,
}

impl MemberPatch {
    pub fn apply(&self, m: &mut Member) {
        if let Some(r) = self.role {
            m.role = r;
        }
        if let Some(v) = self.notifications_off {
            m.notifications_off = v;
        }
        if let Some(v) = self.muted_until {
            m.muted_until = v;
        }
        if let Some(v) = self.allowlisted {
            m.allowlisted = v;
        }
        if let Some(v) = self.read_seq {
            m.read_seq = m.read_seq.max(v);
        }
        if let Some(v) = self.delivered_seq {
            m.delivered_seq = m.delivered_seq.max(v);
        }
        if let Some(v) = self.hidden {
            m.hidden = v;
        }
        if let Some(v) = &self.nickname {
            m.nickname = v.clone();
        }
    }
}

/// A change to a stored message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessagePatch {
    pub content: Option<Content>,
    pub mtype: Option<i64>,
    pub edited_at: Option<i64>,
    pub recalled_at: Option<i64>,
    /// Set the first-delivery time if it is not set yet.
    pub ack_at: Option<i64>,
    /// New mentions: `(mention_all, mentioned ids)`.
    pub mentions: Option<(bool, Vec<String>)>,
}

impl MessagePatch {
    pub fn apply(&self, m: &mut Message) {
        if let Some(c) = &self.content {
            m.content = c.clone();
        }
        if let Some(t) = self.mtype {
            m.mtype = t;
        }
        if self.edited_at.is_some() {
            m.edited_at = self.edited_at;
        }
        if self.recalled_at.is_some() {
            m.recalled_at = self.recalled_at;
        }
        if m.ack_at.is_none() {
            m.ack_at = self.ack_at;
        }
        if let Some((all, ids)) = &self.mentions {
            m.mention_all = *all;
            m.mentions = ids.clone();
        }
    }
}

/// The plan quotas a new conversation is counted against, checked by the store in the
/// transaction that inserts it (`quotas.rs`). None: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvQuotas {
    /// At most this many conversations of the new one's kind in the app, the new one included
    /// (for a normal conversation: the groups, those not unique).
    pub per_app: Option<i64>,
    /// Each first member in at most this many groups, the new one included.
    pub groups_per_member: Option<i64>,
}

/// A user to create if missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub id: String,
    /// A fresh numeric id, used only if the user is created.
    pub num: i64,
}

// ---- the seam: one trait per domain, `Store` the bundle the engine holds
//
// A store is brought up trait by trait: each has its module in the conformance suite
// (`confab-store-conformance`). The bytes of uploaded files are not in `Store`: they go to a
// `BlobStore` of their own (local files beside SQLite; shared blobs in a cluster).

/// Apps and the credentials issued in them (tokens of every face).
#[async_trait]
pub trait AppStore: Send + Sync + 'static {
    async fn create_app(&self, app: &App) -> Result<()>;
    async fn set_app_limits(&self, app: i64, overrides: &Attrs) -> Result<()>;
    /// The app with its `limits` resolved.
    async fn find_app(&self, lookup: &AppLookup) -> Result<Option<App>>;
    async fn list_apps(&self) -> Result<Vec<App>>;

    async fn put_token(&self, token: &Token) -> Result<()>;
    async fn get_token(&self, token: &str) -> Result<Option<Token>>;
    async fn delete_token(&self, token: &str) -> Result<()>;
    /// Delete every token of this kind a user holds; returns how many.
    async fn delete_user_tokens(&self, app: i64, user: &str, kind: TokenKind) -> Result<u64>;
}

/// Users and their logins.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Create the users that do not exist yet; existing ones are left as they are.
    async fn ensure_users(&self, app: i64, users: &[NewUser], now: i64) -> Result<()>;
    /// Create one user; `UserExists` if the id or the username is taken.
    async fn create_user(&self, user: &User) -> Result<()> {
        self.create_user_within(user, None).await
    }
    /// `create_user`, refused (`OverQuota(Quota::Users)`) in the same transaction if the app
    /// would then hold more than `max_users` users.
    async fn create_user_within(&self, user: &User, max_users: Option<i64>) -> Result<()>;
    async fn get_user(&self, app: i64, id: &str) -> Result<Option<User>>;
    async fn get_user_by_num(&self, app: i64, num: i64) -> Result<Option<User>>;
    /// The users among these ids that exist, in no particular order.
    async fn get_users(&self, app: i64, ids: &[String]) -> Result<Vec<User>>;
    async fn get_user_by_username(&self, app: i64, username: &str) -> Result<Option<User>>;
    async fn record_login(&self, app: i64, user: &str, at: i64) -> Result<()>;
    async fn count_users(&self, app: i64) -> Result<i64>;
    /// Users in creation order (by numeric id), after `after_num`, at most `limit`.
    async fn list_users(&self, app: i64, after_num: Option<i64>, limit: i64) -> Result<Vec<User>>;
    /// Write a user's mutable fields (username, password hash, nickname, attributes, disabled,
    /// updated_at) as given. `UserNotFound` if there is no such user.
    async fn update_user(&self, user: &User) -> Result<()>;
    /// Delete a user with their tokens and memberships. False if there was no such user.
    async fn delete_user(&self, app: i64, id: &str) -> Result<bool>;
    /// How many distinct users logged in at or after `since`.
    async fn count_logins_since(&self, app: i64, since: i64) -> Result<i64>;
}

/// Conversations, their members, blocklists, and the notices of their changes kept for users.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    // ---- conversations
    /// Store a new conversation with its first members. For a unique conversation whose
    /// `unique_id` exists already, nothing is written and the existing one is returned.
    /// Returns (conversation, created).
    async fn create_conversation(&self, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
        self.create_conversation_within(conv, members, ConvQuotas::default()).await
    }
    /// `create_conversation`, refused (`OverQuota`) in the same transaction if a plan quota
    /// would be passed: the app's conversations of its kind (`quotas.per_app`; `Groups` for a
    /// normal conversation that is not unique, `Chatrooms` for a chat room), then each of its
    /// `members` in order (`quotas.groups_per_member`, `GroupsPerUser`). A unique conversation
    /// that exists already is returned as it is, counted against nothing.
    async fn create_conversation_within(&self, conv: &Conversation, members: &[Member], quotas: ConvQuotas)
        -> Result<(Conversation, bool)>;
    async fn get_conversation(&self, app: i64, id: i64) -> Result<Option<Conversation>>;
    /// The conversation created with this `unique_id` (a one-to-one conversation's is its two
    /// members', `conv::unique_id`), by its key: read on every one-to-one send.
    async fn conversation_by_unique(&self, app: i64, unique_id: &str) -> Result<Option<Conversation>>;
    /// Matching conversations, and the total count when `q.count`.
    async fn query_conversations(&self, app: i64, q: &ConvQuery) -> Result<(Vec<Conversation>, Option<i64>)>;
    async fn update_conversation(&self, app: i64, id: i64, patch: &ConvPatch, now: i64) -> Result<Conversation>;
    /// Delete a conversation with its members and messages. False if it did not exist.
    async fn delete_conversation(&self, app: i64, id: i64) -> Result<bool>;

    // ---- members
    /// Add members; those already present are left as they are. With `max`, refuses
    /// (`ConversationFull`) if the result would have more than `max` non-subscriber members.
    /// A new member's read and delivered cursors start at least at the conversation's newest
    /// message: nothing said before they joined is unread for them.
    /// Returns the user ids actually added. The conversation's `updated_at` becomes `now`.
    async fn add_members(&self, app: i64, conv: i64, members: &[Member], max: Option<i64>, now: i64) -> Result<Vec<String>> {
        self.add_members_within(app, conv, members, max, None, now).await
    }
    /// `add_members`, and with `groups_per_member`, refused (`OverQuota(GroupsPerUser)`) in the
    /// same transaction if a user added would then be a member of more groups (normal
    /// conversations that are not unique) than that.
    async fn add_members_within(
        &self,
        app: i64,
        conv: i64,
        members: &[Member],
        max: Option<i64>,
        groups_per_member: Option<i64>,
        now: i64,
    ) -> Result<Vec<String>>;
    /// Returns the user ids actually removed. The conversation's `updated_at` becomes `now`.
    async fn remove_members(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>>;
    async fn get_member(&self, app: i64, conv: i64, user: &str) -> Result<Option<Member>>;
    /// Members ordered by user id.
    async fn list_members(&self, app: i64, conv: i64, q: &MemberQuery) -> Result<Vec<Member>>;
    /// The members (not subscribers) of several conversations, ordered by conversation, then
    /// by when they joined, then by user id.
    async fn member_lists(&self, app: i64, convs: &[i64]) -> Result<Vec<Member>>;
    /// The user ids of a conversation's members (not subscribers), ordered by user id: a
    /// message's recipients, read on every send (so only the ids, by the conversation's key).
    async fn member_ids(&self, app: i64, conv: i64) -> Result<Vec<String>>;
    async fn count_members(&self, app: i64, conv: i64, roles: Option<&[Role]>) -> Result<i64>;
    /// Apply a patch to the listed users that are members; returns those updated.
    async fn update_members(&self, app: i64, conv: i64, users: &[String], patch: &MemberPatch) -> Result<Vec<String>>;
    /// One user's memberships ordered by (joined_at, conversation id).
    async fn user_memberships(&self, app: i64, user: &str, q: &MembershipQuery) -> Result<Vec<Member>>;

    // ---- conversation blocklists

    /// Put users on a conversation's blocklist, removing them from its members. Returns those
    /// newly blocked.
    async fn block_users(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>>;
    /// Returns those that were blocked.
    async fn unblock_users(&self, app: i64, conv: i64, users: &[String]) -> Result<Vec<String>>;
    /// Blocked users of a conversation by user id: all of them after `after`, or those among
    /// `among`; at most `limit`.
    async fn blocked_users(&self, app: i64, conv: i64, among: Option<&[String]>, after: Option<&str>, limit: i64) -> Result<Vec<String>>;

    // ---- conversation notices

    /// Keep a notice for each of these users.
    async fn add_notices(&self, app: i64, users: &[String], notice: &ConvNotice) -> Result<()>;
    /// A user's notices after `since` (by `at`), oldest first, at most `limit`.
    async fn notices(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<ConvNotice>>;
}

/// Messages, history, the members' cursors and what is counted from them (unread, patches),
/// and broadcasts.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    // ---- messages
    /// Store a message: assigns the next sequence number of its conversation, keeps timestamps
    /// non-decreasing along the sequence, and advances the conversation's last-message time.
    async fn insert_message(&self, msg: &Message) -> Result<Message> {
        self.insert_message_with(msg, &[]).await
    }
    /// `insert_message`, and the calls its sending makes put in the outbox (see [`OutboxStore`])
    /// in the same transaction: a stored message's hooks are never lost.
    async fn insert_message_with(&self, msg: &Message, outbox: &[OutboxItem]) -> Result<Message> {
        self.queue_message_with(msg, outbox).await
    }
    /// `insert_message_with`, queued before this returns: inserts queued in an order commit in
    /// that order (so get their sequence numbers in it), whatever order their futures are awaited
    /// in. What lets a connection pipeline its sends and keep their order; the future completes
    /// when the insert is durable.
    fn queue_message_with(&self, msg: &Message, outbox: &[OutboxItem]) -> Queued<Message>;
    async fn get_message(&self, app: i64, id: i64) -> Result<Option<Message>>;
    async fn update_message(&self, app: i64, id: i64, patch: &MessagePatch) -> Result<Option<Message>>;
    async fn delete_message(&self, app: i64, id: i64) -> Result<bool>;
    /// Remove a message from one user's view only. False if it was not visible to them.
    async fn hide_message(&self, app: i64, id: i64, user: &str) -> Result<bool>;
    async fn history(&self, app: i64, q: &HistoryQuery) -> Result<Vec<Message>>;
    /// Unread messages (after the user's read cursor, not sent by the user, not recalled, visible
    /// to the user) in one conversation, or the sum over the user's normal and service
    /// conversations. Each conversation's count stops at `bounds.count_max`, and its work at
    /// `bounds.scan_max` messages: the newest after the cursor, those addressed to the user
    /// alone, and those mentioning someone; whatever the length of the history. Below the cap
    /// the count is exact whenever no more than `scan_max` messages follow the cursor.
    async fn unread_count(&self, app: i64, user: &str, conv: Option<i64>, bounds: UnreadBounds) -> Result<i64>;

    // ---- cursors, unread, patches

    /// Raise a member's read or delivered cursor to `to_seq` (never lowers it; reading also
    /// raises the delivered cursor). Returns the range covered and, from it, the messages of
    /// others whose senders asked for receipts, in sequence order. Raising the delivered cursor
    /// sets `ack_at` to `now` on messages of others in the range that have none. `NotMember` if
    /// the user is not a member.
    async fn advance_cursor(&self, app: i64, conv: i64, user: &str, cursor: Cursor, to_seq: i64, now: i64) -> Result<CursorMove>;
    /// The sequence number of the newest message at or before `ts` (0 if none).
    async fn seq_at(&self, app: i64, conv: i64, ts: i64) -> Result<i64>;
    /// Every member's cursors as the timestamps of the messages they point at.
    async fn cursor_times(&self, app: i64, conv: i64) -> Result<Vec<CursorTimes>>;
    /// The user's conversations (not chat rooms) with unread messages whose last message is after
    /// `since`: most recently active first, at most `limit`; each counted as `unread_count`
    /// counts, with its newest unread message, and whether an unread message mentions the user.
    async fn unread_summary(&self, app: i64, user: &str, since: i64, limit: i64, bounds: UnreadBounds) -> Result<Vec<UnreadEntry>>;
    /// Messages visible to the user in their conversations, edited or recalled after `since`,
    /// oldest change first, at most `limit`.
    async fn patches_since(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<Message>>;

    // ---- broadcasts
    async fn insert_broadcast(&self, b: &Broadcast) -> Result<()>;
    async fn get_broadcast(&self, app: i64, id: i64) -> Result<Option<Broadcast>>;
    async fn update_broadcast(&self, app: i64, id: i64, content: &Content) -> Result<bool>;
    async fn delete_broadcast(&self, app: i64, id: i64) -> Result<bool>;
    /// Broadcasts still valid at `now`, newest first.
    async fn list_broadcasts(&self, app: i64, conv: Option<i64>, now: i64, skip: i64, limit: i64) -> Result<Vec<Broadcast>>;
}

/// Imports from another service: the ids there are kept beside ours (`foreign_id`).
#[async_trait]
pub trait ImportStore: Send + Sync + 'static {
    /// The conversation imported with this foreign id.
    async fn conversation_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Conversation>>;
    /// The message imported with this foreign id.
    async fn message_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Message>>;
    /// The foreign ids of those of these conversations that have one.
    async fn conversation_foreign_ids(&self, app: i64, convs: &[i64]) -> Result<Vec<(i64, String)>>;
    /// Store messages made elsewhere into conversation `conv` (which need not exist yet), with
    /// their own ids, timestamps and foreign ids: one whose foreign id is stored already is
    /// skipped (a message addressed to users adds them to its audience); the rest take their places
    /// in the conversation's order: by timestamp, and in one millisecond the imported messages
    /// by their foreign ids (bytewise), then the conversation's own. A message
    /// older than ones stored before it goes in among them: those are numbered anew, and the
    /// members' read and delivered cursors follow the messages they pointed at. If the
    /// conversation exists, its last sequence and time follow.
    async fn import_messages(&self, app: i64, conv: i64, msgs: &[Message]) -> Result<Imported>;
    /// An imported conversation: created (its messages may be stored already: its last sequence
    /// and time are read from them) or, if one has its foreign id — or, for a unique
    /// conversation, its unique id — already, that one, given the foreign id if it had none and
    /// the members it lacks. (The conversation, created.)
    async fn import_conversation(&self, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)>;
}

/// Keyed collections (see `entries.rs`); `now` decides what has expired.
#[async_trait]
pub trait EntryStore: Send + Sync + 'static {
    /// Write entries in one atomic step under `rule`: one outcome per entry, in order. A replaced
    /// item keeps its `seq` and `created_at`; an expired one counts as absent.
    async fn put_entries(&self, app: i64, entries: &[Entry], rule: PutRule, now: i64) -> Result<Vec<Put>>;
    /// Live entries a query selects, by `seq` (descending with `q.desc`), after `q.after`.
    async fn entries(&self, app: i64, q: &EntryQuery, now: i64) -> Result<Vec<Entry>>;
    /// Delete what the filter matches; returns the live entries deleted.
    async fn delete_entries(&self, app: i64, f: &EntryFilter, now: i64) -> Result<Vec<Entry>>;
    async fn entry_stats(&self, app: i64, f: &EntryFilter, now: i64) -> Result<EntryStats>;
}

/// The outbox: calls to the app's code, kept until made (`hooks.rs`); and the hook counters.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Keep new items (ids, times and apps are set).
    async fn outbox_add(&self, items: &[OutboxItem]) -> Result<()>;
    /// Claim items due at `now` that have not failed, the longest due first, at most `per_app`
    /// of one app and `limit` in all, leaving out the apps in `skip`: each is due again at
    /// `lease_until` (should the claimer die, another takes it then).
    async fn outbox_claim(&self, now: i64, lease_until: i64, per_app: usize, limit: usize, skip: &[i64]) -> Result<Vec<OutboxItem>>;
    /// Made: forget them.
    async fn outbox_done(&self, ids: &[i64]) -> Result<()>;
    /// An attempt failed: try again at `next_at`, or keep it as `failed` and try no more.
    async fn outbox_retry(&self, id: i64, attempts: u32, next_at: i64, error: &str, failed: bool) -> Result<()>;
    /// An app's items, failed or pending, oldest first.
    async fn outbox_list(&self, app: i64, failed: bool, limit: usize) -> Result<Vec<OutboxItem>>;
    /// (pending, failed) items of an app.
    async fn outbox_counts(&self, app: i64) -> Result<(i64, i64)>;
    /// Make an app's failed items due again at `now`, with their attempts reset; how many.
    async fn outbox_requeue_failed(&self, app: i64, now: i64) -> Result<u64>;
    /// Add counts to the hook counters (calls, failures, latency by app, sink and name).
    async fn hook_stats_add(&self, stats: &[HookStat]) -> Result<()>;
    async fn hook_stats(&self, app: i64) -> Result<Vec<HookStat>>;
}

/// The durable state of messaging: every domain trait, and the store's life. The engine holds
/// an `Arc<dyn Store>`; the blobs are a [`BlobStore`] of their own.
#[async_trait]
pub trait Store: AppStore + UserStore + ConversationStore + MessageStore + ImportStore + EntryStore + OutboxStore {
    /// Commit what is queued, then stop writing. Called at shutdown, after the last write; a
    /// write made after it fails (reads may still be answered). Calling it again does nothing.
    async fn close(&self);
}

/// The bytes of uploaded files, by app and an id the engine chose (`[A-Za-z0-9_-]`, checked by
/// the engine). Their records (name, size, owner, secret) are entries. Not part of [`Store`]:
/// bytes go where bytes are cheap (local files beside SQLite; shared blobs in a cluster).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Write (or replace) a blob; it is whole once this returns, never seen half-written.
    async fn put_blob(&self, app: i64, id: &str, bytes: Vec<u8>) -> Result<()>;
    async fn get_blob(&self, app: i64, id: &str) -> Result<Option<Vec<u8>>>;
    /// False if there was no such blob.
    async fn delete_blob(&self, app: i64, id: &str) -> Result<bool>;
}

/// What an import of messages did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub inserted: u64,
    /// Already there (the same foreign id).
    pub skipped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv() -> Conversation {
        Conversation {
            app: 1,
            id: 1,
            kind: ConvKind::Normal,
            name: None,
            creator: None,
            unique: false,
            unique_id: None,
            attrs: json!({"n": 1, "tags": ["a"], "attr": {"k": "v"}}).as_object().unwrap().clone(),
            settings: Default::default(),
            parent: None,
            created_at: 0,
            updated_at: 0,
            last_message_at: None,
            last_seq: 0,
            expires_at: None,
            foreign_id: None,
        }
    }

    #[test]
    fn attribute_operations() {
        let mut c = conv();
        let p = |path: &str, op| (path.split('.').map(str::to_string).collect::<Vec<_>>(), op);
        ConvPatch {
            attrs: vec![
                p("n", AttrOp::Increment(2.into())),
                p("tags", AttrOp::AddUnique(vec![json!("a"), json!("b")])),
                p("attr.color", AttrOp::Set(json!("red"))),
                p("attr.k", AttrOp::Delete),
                p("fresh", AttrOp::Add(vec![json!(1)])),
                p("missing.deep", AttrOp::Delete),
            ],
            ..Default::default()
        }
        .apply(&mut c, 5);
        assert_eq!(Value::Object(c.attrs.clone()), json!({"n": 3, "tags": ["a", "b"], "attr": {"color": "red"}, "fresh": [1]}));
        assert_eq!(c.updated_at, 5);
        ConvPatch { attrs: vec![p("tags", AttrOp::Remove(vec![json!("a")]))], ..Default::default() }.apply(&mut c, 6);
        assert_eq!(c.attrs["tags"], json!(["b"]));
    }
}
