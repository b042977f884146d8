//! Keyed collections: the one generic storage behind the small lists and maps the faces keep
//! beside conversations and messages — a user's contacts and blocklist, user metadata, a chat
//! room's custom attributes, push labels and their users, presence subscriptions, global mutes,
//! file records, and the like.
//!
//! A collection is named by a namespace (`ns`, e.g. `"contacts"`) and a `key` (e.g. the owner's
//! user id); it holds `item`s (e.g. the friends' ids), each with a JSON `value`, an optional
//! `owner` (who set it), and an optional expiry. Items keep their first insertion order (`seq`,
//! a time-ordered id), which is also the paging cursor. Writes are atomic per call, so a
//! collection's size cap and owner rule hold under concurrency.
//!
//! Namespaces are owned by the engine module that uses them (see `ns`); a face never invents
//! one.

use serde_json::Value;

use crate::error::Result;

/// The namespaces in use, in one place so two features never share one by accident.
pub mod ns {
    /// Per user: the friends (item = friend id).
    pub const CONTACTS: &str = "contacts";
    /// Per user: contact requests waiting for their answer (item = who asked, value =
    /// `{reason}`, expiry = when the request lapses).
    pub const CONTACT_REQUESTS: &str = "contact_requests";
    /// Per group (key = the group's id): join requests waiting for the owner's or an admin's
    /// answer (item = the applicant, value = `{reason, at}`, expiry = when the request lapses).
    pub const GROUP_APPLICATIONS: &str = "group_applications";
    /// Per user: invitations to groups waiting for their answer (item = the group's id, value =
    /// `{by, reason, at}`, expiry = when the invitation lapses).
    pub const GROUP_INVITATIONS: &str = "group_invitations";
    /// Per user: the users they blocked (item = blocked id).
    pub const USER_BLOCKS: &str = "user_blocks";
    /// Per user: metadata fields (item = field name, value = string).
    pub const USER_METADATA: &str = "user_metadata";
    /// Per user: global speech mutes (item = `chat` | `groupchat` | `chatroom`, expiry = until).
    pub const GLOBAL_MUTES: &str = "global_mutes";
    /// Per chat room: custom attributes (item = key, owner = who set it).
    pub const ROOM_ATTRIBUTES: &str = "room_attributes";
    /// App-wide (key ""): chat room super admins (item = user id).
    pub const ROOM_SUPER_ADMINS: &str = "room_super_admins";
    /// App-wide (key ""): stored files (item = file id, value = the file's record).
    pub const FILES: &str = "files";
    /// Per group: shared files (item = file id, value = the file's record).
    pub const GROUP_FILES: &str = "group_files";
    /// Per user: offline push settings (item = `user:<peer>` | `chatgroup:<group>` | `language` | `template`).
    pub const PUSH_SETTINGS: &str = "push_settings";
    /// App-wide (key ""): push templates (item = template name).
    pub const PUSH_TEMPLATES: &str = "push_templates";
    /// App-wide (key ""): push labels (item = label name, value = description).
    pub const PUSH_LABELS: &str = "push_labels";
    /// Per label: its users (item = user id).
    pub const PUSH_LABEL_USERS: &str = "push_label_users";
    /// Per user: whom they subscribe to (item = subscribed user, expiry = the subscription's end).
    pub const PRESENCE_SUBSCRIPTIONS: &str = "presence_subscriptions";
    /// Per user: custom presence per device (item = resource, value = {status, ext}).
    pub const PRESENCE_STATUS: &str = "presence_status";
    /// Per message: reactions (item = `<emoji>\n<user>`, value = the emoji).
    pub const REACTIONS: &str = "reactions";
    /// Per user: the conversations they pinned to the top of their list (item = conversation
    /// id, value = `{at}`, when it was pinned).
    pub const CONVERSATION_PINS: &str = "conversation_pins";
    /// Per user: the marks they put on their conversations (item = `<conversation id>:<mark>`).
    pub const CONVERSATION_MARKS: &str = "conversation_marks";
    /// Per msync device (key `<user>\u{1f}<resource>`): how far each conversation was delivered
    /// to that device (item = conversation id, value = `{seq, ts}` of the last message it got),
    /// and when the device was first seen (item `~since`, value = `{ts}`).
    pub const MSYNC_DEVICES: &str = "msync_devices";
    /// Per conversation (key = conversation id): its pinned messages (item = message id, value =
    /// `{by, at}`), seen by every member (`client_state`).
    pub const MESSAGE_PINS: &str = "message_pins";
    /// Per user: the remarks they keep on their contacts (item = contact id, value = the remark).
    pub const CONTACT_REMARKS: &str = "contact_remarks";
    /// Per group (key = group id): its members' attributes (item = member id, value = `{key:
    /// value}`).
    pub const GROUP_MEMBER_ATTRIBUTES: &str = "group_member_attributes";
    /// App-wide (key ""): message reports for the app's operator (item = `<message id>:<reporter>`,
    /// value = `{msg, conv, from, reporter, type, reason, at}`).
    pub const MESSAGE_REPORTS: &str = "message_reports";
    /// Per source service (key `leancloud`): an import's checkpoints (item = the source's
    /// conversation id, or `<id>\u{1f}<subscriber>`; value = where its history got to).
    pub const IMPORTS: &str = "imports";
}

/// One item of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub ns: String,
    pub key: String,
    pub item: String,
    pub value: Value,
    /// Who set it, where that matters (chat room attributes).
    pub owner: Option<String>,
    /// Insertion order and paging cursor; assigned by the engine on first insert and kept when
    /// the item is replaced.
    pub seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Past this Unix ms the item no longer exists (reads skip it, writes treat it as absent).
    pub expires_at: Option<i64>,
}

impl Entry {
    pub fn new(ns: &str, key: impl Into<String>, item: impl Into<String>, value: Value) -> Entry {
        Entry {
            ns: ns.to_string(),
            key: key.into(),
            item: item.into(),
            value,
            owner: None,
            seq: 0,
            created_at: 0,
            updated_at: 0,
            expires_at: None,
        }
    }
    pub fn owned_by(mut self, owner: impl Into<String>) -> Entry {
        self.owner = Some(owner.into());
        self
    }
    pub fn expiring(mut self, at: Option<i64>) -> Entry {
        self.expires_at = at;
        self
    }
}

/// What a put does with an item that exists already.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Replace it.
    #[default]
    Always,
    /// Keep it.
    Never,
    /// Replace it only if the new entry's owner owns it (or nobody does).
    IfOwner,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PutRule {
    pub overwrite: Overwrite,
    /// Most items one collection may hold; a new item beyond it is refused (`Put::Full`).
    pub max_items: Option<i64>,
}

/// What happened to one entry of a put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Added,
    Replaced,
    /// It existed and `Overwrite::Never` kept it.
    Kept,
    /// Another owner's item (`Overwrite::IfOwner`).
    NotOwner,
    /// The collection is at `max_items`.
    Full,
}

/// Which entries a read or delete touches: one namespace; optionally one collection, some items,
/// one owner.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EntryFilter {
    pub ns: String,
    pub key: Option<String>,
    pub items: Option<Vec<String>>,
    pub owner: Option<String>,
}

impl EntryFilter {
    pub fn collection(ns: &str, key: impl Into<String>) -> EntryFilter {
        EntryFilter { ns: ns.to_string(), key: Some(key.into()), ..Default::default() }
    }
    pub fn items(mut self, items: Vec<String>) -> EntryFilter {
        self.items = Some(items);
        self
    }
    pub fn owner(mut self, owner: impl Into<String>) -> EntryFilter {
        self.owner = Some(owner.into());
        self
    }
}

/// A page of entries in insertion order (or its reverse), after the cursor `after` (a `seq`).
#[derive(Clone, Debug, PartialEq)]
pub struct EntryQuery {
    pub filter: EntryFilter,
    pub after: Option<i64>,
    pub limit: i64,
    pub desc: bool,
}

impl EntryQuery {
    pub fn all(filter: EntryFilter) -> EntryQuery {
        EntryQuery { filter, after: None, limit: i64::MAX, desc: false }
    }
}

/// Size of what a filter matches: how many entries, and the bytes of their items and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EntryStats {
    pub count: i64,
    pub bytes: i64,
}

/// Blob ids become file names: a short, safe alphabet only.
pub fn check_blob_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(crate::error::Error::invalid("a blob id is 1 to 64 of A-Z a-z 0-9 _ -"));
    }
    Ok(())
}
