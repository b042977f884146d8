//! The unified model: every concept of the three vendors' systems, held once.
//!
//! Faces translate their own ids and field names into these types; nothing here knows about
//! HTTP, JSON envelopes or SQL.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits::Limits;

pub use crate::conv_kind::ConvKind;
pub use crate::plan::{Attrs, Plan};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeanCloudKeys {
    pub app_id: String,
    pub app_key: String,
    pub master_key: String,
    pub hook_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EasemobKeys {
    pub org_name: String,
    pub app_name: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaximKeys {
    pub app_id: String,
    pub admin_token: String,
}

/// Credentials for every face. All are made when the app is created, so an app can be reached
/// through any face from the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppKeys {
    pub leancloud: LeanCloudKeys,
    pub easemob: EasemobKeys,
    pub maxim: MaximKeys,
}

/// A tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct App {
    pub id: i64,
    pub name: String,
    pub plan: Plan,
    pub created_at: i64,
    pub keys: AppKeys,
    /// Per-app overrides of the plan's limits, as set by `confab app limits`.
    pub limit_overrides: Attrs,
    /// The effective limits: the plan's defaults with the overrides applied.
    #[serde(skip)]
    pub limits: Limits,
}

impl App {
    /// Check a user id against the app's rules: 1 to `user_id_max_chars` characters, no control
    /// characters. Faces with a stricter charset check theirs first.
    pub fn validate_user_id(&self, id: &str) -> crate::error::Result<()> {
        let n = id.chars().count();
        if n == 0 || n > self.limits.user_id_max_chars || id.chars().any(char::is_control) {
            return Err(crate::error::Error::invalid(format!(
                "invalid user id '{}': 1 to {} characters, no control characters",
                id.chars().take(80).collect::<String>(),
                self.limits.user_id_max_chars
            )));
        }
        Ok(())
    }
}

/// How a face finds the app a request is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AppLookup {
    /// By confab's own id (the outbox's items name their app so).
    Id(i64),
    LeanCloud(String),
    Easemob {
        org: String,
        app: String,
    },
    Maxim(String),
    Name(String),
}

/// A user of an app. `id` is the string id (LeanCloud client id, Easemob username);
/// `num` is the numeric id faces with int64 ids use (MaxIM). Both are unique per app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub app: i64,
    pub id: String,
    pub num: i64,
    /// A login name distinct from the id (a LeanCloud `_User.username`); None when the id is
    /// itself the login name.
    pub username: Option<String>,
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub nickname: Option<String>,
    pub attributes: Attrs,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

impl User {
    /// A user with no account yet (no login name, password or nickname), made at `at`.
    pub fn new(app: i64, id: impl Into<String>, num: i64, at: i64) -> User {
        User {
            app,
            id: id.into(),
            num,
            username: None,
            password_hash: None,
            nickname: None,
            attributes: Attrs::new(),
            disabled: false,
            created_at: at,
            updated_at: at,
            last_login_at: None,
        }
    }
}

/// What a token stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A LeanCloud `_User` session token (`X-LC-Session`, `/rtm/clients/sign`).
    LcSession,
    /// A LeanCloud realtime session token (`st`).
    LcRealtime,
    /// An Easemob user token.
    EasemobUser,
    /// An Easemob app (admin) token.
    EasemobApp,
    /// A MaxIM user token.
    MaximUser,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::LcSession => "lc_session",
            TokenKind::LcRealtime => "lc_realtime",
            TokenKind::EasemobUser => "easemob_user",
            TokenKind::EasemobApp => "easemob_app",
            TokenKind::MaximUser => "maxim_user",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lc_session" => TokenKind::LcSession,
            "lc_realtime" => TokenKind::LcRealtime,
            "easemob_user" => TokenKind::EasemobUser,
            "easemob_app" => TokenKind::EasemobApp,
            "maxim_user" => TokenKind::MaximUser,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub app: i64,
    /// The user the token acts as; None for app-level tokens.
    pub user: Option<String>,
    pub kind: TokenKind,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// The device the token was issued to (a realtime session's `tag:deviceId`).
    pub device: Option<String>,
}

/// Group-style settings, used by the faces that have them (Easemob groups and chatrooms,
/// MaxIM groups). Stored with the conversation; absent fields take their defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConvSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announcement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Member cap; None means the app's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_members: Option<i64>,
    /// Anyone may find and apply to join.
    pub public: bool,
    /// Joining needs an admin's approval.
    pub approval: bool,
    /// Members (not only admins) may invite.
    pub members_invite: bool,
    /// Only owner, admins and allowlisted members may speak.
    pub mute_all: bool,
    /// The conversation refuses every message and change until enabled again.
    pub disabled: bool,
}

/// A conversation of any kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub app: i64,
    pub id: i64,
    pub kind: ConvKind,
    pub name: Option<String>,
    /// The client id of whoever created it (LeanCloud `c`).
    pub creator: Option<String>,
    /// Created as "unique": one conversation per exact member set.
    pub unique: bool,
    pub unique_id: Option<String>,
    /// Custom fields, keyed by name (LeanCloud custom columns and `attr`, Easemob custom).
    pub attrs: Attrs,
    pub settings: ConvSettings,
    /// For threads: (parent conversation, anchor message).
    pub parent: Option<(i64, i64)>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_message_at: Option<i64>,
    /// Sequence number of the newest message (0 when none).
    pub last_seq: i64,
    /// For temporary conversations: when it stops existing.
    pub expires_at: Option<i64>,
    /// The id it had in the service it was imported from (a LeanCloud objectId), which the
    /// faces that speak that service's ids show and accept in place of `id`.
    #[serde(default)]
    pub foreign_id: Option<String>,
}

impl Conversation {
    /// A new conversation, created at `at`: no creator, attributes, parent or messages yet, not
    /// unique, default settings.
    pub fn new(app: i64, id: i64, kind: ConvKind, name: Option<String>, at: i64) -> Conversation {
        Conversation {
            app,
            id,
            kind,
            name,
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

    /// A temporary conversation past its time to live is gone, whatever the store still holds.
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// How a conversation is named to clients: its id, its kind and, if it was imported, the id it
/// had before. Events carry it so that a face can name the conversation without a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvRef {
    pub id: i64,
    pub kind: ConvKind,
    pub foreign_id: Option<String>,
}

impl ConvRef {
    pub fn of(c: &Conversation) -> ConvRef {
        ConvRef { id: c.id, kind: c.kind, foreign_id: c.foreign_id.clone() }
    }
}

/// Conversation role names as LeanCloud's member info has them.
impl Role {
    pub fn lc_name(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Manager",
            Role::Member | Role::Subscriber => "Member",
        }
    }
}

/// A member's role. Subscribers are members of service conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Subscriber,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Subscriber => "subscriber",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            "subscriber" => Role::Subscriber,
            _ => return None,
        })
    }
}

/// Membership of one user in one conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub conv: i64,
    pub user: String,
    pub role: Role,
    pub joined_at: i64,
    /// The member turned off notifications for this conversation (LeanCloud `mu`).
    pub notifications_off: bool,
    /// Speech-muted until this Unix ms (i64::MAX = forever).
    pub muted_until: Option<i64>,
    /// On the conversation's allowlist: may speak while mute-all is on.
    pub allowlisted: bool,
    /// Sequence number of the newest message this member has read.
    pub read_seq: i64,
    /// Sequence number of the newest message delivered to one of this member's devices.
    pub delivered_seq: i64,
    /// The member removed the conversation from their own list (one-way delete).
    pub hidden: bool,
    /// Display name inside this conversation.
    pub nickname: Option<String>,
}

impl Member {
    pub fn new(conv: i64, user: impl Into<String>, role: Role, now: i64) -> Self {
        Member {
            conv,
            user: user.into(),
            role,
            joined_at: now,
            notifications_off: false,
            muted_until: None,
            allowlisted: false,
            read_seq: 0,
            delivered_seq: 0,
            hidden: false,
            nickname: None,
        }
    }
}

/// Message payload: text (which may itself be JSON, e.g. LeanCloud typed messages) or bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    Text(String),
    Binary(Vec<u8>),
}

impl Content {
    pub fn len(&self) -> usize {
        match self {
            Content::Text(s) => s.len(),
            Content::Binary(b) => b.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    pub fn parse(s: &str) -> Option<Priority> {
        match s.to_ascii_lowercase().as_str() {
            "high" => Some(Priority::High),
            "normal" => Some(Priority::Normal),
            "low" => Some(Priority::Low),
            _ => None,
        }
    }
    pub fn code(self) -> i64 {
        match self {
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }
    }
    pub fn from_code(c: i64) -> Self {
        match c {
            1 => Priority::High,
            3 => Priority::Low,
            _ => Priority::Normal,
        }
    }
}

/// Who may see a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// Every member (or subscriber) of the conversation.
    #[default]
    All,
    /// Only these users (a service conversation's per-user message).
    Only(Vec<String>),
}

/// One stored (or, when transient, only delivered) message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub app: i64,
    pub id: i64,
    pub conv: i64,
    /// Per-conversation sequence number; 0 for transient messages, which are not stored.
    pub seq: i64,
    pub from: String,
    /// Server arrival time in Unix ms. Never decreases along a conversation's sequence.
    pub timestamp: i64,
    pub content: Content,
    /// Engine message type: see [`MessageType`].
    pub mtype: i64,
    /// Extension attributes (Easemob `ext`, MaxIM `ext`/`config`).
    pub ext: Option<Value>,
    pub mention_all: bool,
    pub mentions: Vec<String>,
    pub transient: bool,
    pub priority: Priority,
    /// A system notification (MaxIM notify) rather than a user's message.
    pub system: bool,
    pub audience: Audience,
    /// Offline push payload (JSON text), delivered with the message.
    pub push_data: Option<String>,
    pub from_ip: Option<String>,
    pub recalled_at: Option<i64>,
    pub edited_at: Option<i64>,
    /// The first time the message reached one of its recipients' devices.
    pub ack_at: Option<i64>,
    /// The sender asked for delivery and read receipts.
    pub receipt: bool,
    /// The id it had in the service it was imported from (a LeanCloud `msg-id`).
    #[serde(default)]
    pub foreign_id: Option<String>,
}

impl Message {
    /// A plain stored message to everyone in the conversation; set other fields as needed.
    pub fn new(app: i64, id: i64, conv: i64, from: impl Into<String>, timestamp: i64, content: Content) -> Message {
        Message {
            app,
            id,
            conv,
            seq: 0,
            from: from.into(),
            timestamp,
            content,
            mtype: MessageType::NONE,
            ext: None,
            mention_all: false,
            mentions: vec![],
            transient: false,
            priority: Priority::Normal,
            system: false,
            audience: Audience::All,
            push_data: None,
            from_ip: None,
            recalled_at: None,
            edited_at: None,
            ack_at: None,
            receipt: false,
            foreign_id: None,
        }
    }
}

/// Built-in message types, numbered as LeanCloud's `_lctype` where one exists.
pub struct MessageType;
impl MessageType {
    pub const NONE: i64 = 0;
    pub const TEXT: i64 = -1;
    pub const IMAGE: i64 = -2;
    pub const AUDIO: i64 = -3;
    pub const VIDEO: i64 = -4;
    pub const LOCATION: i64 = -5;
    pub const FILE: i64 = -6;
    /// A command (MaxIM COMMAND, Easemob cmd): for clients' logic, not for display.
    pub const COMMAND: i64 = -7;
    /// A forwarded message (MaxIM FORWARD).
    pub const FORWARD: i64 = -8;
    pub const RECALLED: i64 = -127;
}

/// An app-wide broadcast (LeanCloud `/rtm/broadcasts`): delivered to every user, online now or
/// logging in before `valid_till`; never part of a conversation's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    pub app: i64,
    pub id: i64,
    pub conv: i64,
    pub from: String,
    pub content: Content,
    pub timestamp: i64,
    pub valid_till: i64,
    pub push: Option<Value>,
    pub transient: bool,
}

/// A change to a conversation that its members hear about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ConvChange {
    /// These users joined (were added).
    Joined {
        members: Vec<String>,
    },
    /// These users left (were removed).
    Left {
        members: Vec<String>,
    },
    /// Attributes changed: the keys set (dotted paths allowed) and their new values.
    Updated {
        attrs: serde_json::Value,
    },
    /// These members may no longer speak.
    Muted {
        members: Vec<String>,
    },
    Unmuted {
        members: Vec<String>,
    },
    /// These users were removed and may not come back.
    Blocked {
        members: Vec<String>,
    },
    Unblocked {
        members: Vec<String>,
    },
    RoleChanged {
        member: String,
        role: Role,
    },
    /// The group was destroyed (its members are told as it goes; no notice is kept).
    Destroyed,
    /// The announcement was set (`text`; empty when cleared).
    Announcement {
        text: String,
    },
    /// Everyone but the owner, admins and allowlisted members was muted (`on`), or no longer.
    MuteAll {
        on: bool,
    },
    /// These members were put on the allowlist (they may speak while everyone is muted).
    Allowlisted {
        members: Vec<String>,
    },
    Unallowlisted {
        members: Vec<String>,
    },
    /// Group settings other than the announcement and mute-all changed: the settings set, by
    /// name (`description`, `avatar`, `max_members`, `public`, `approval`, `members_invite`),
    /// and their new values.
    Settings {
        changes: serde_json::Value,
    },
    /// A join request or an invitation that waits for an answer, or its answer
    /// (`conv/group_requests.rs`): `user` is who asks to join or is invited; told only to whom
    /// it concerns (the owner and admins, the applicant, the invitee, the inviter).
    Request {
        news: RequestNews,
        user: String,
        reason: Option<String>,
    },
}

/// What a group's join request or invitation is at (Easemob's `APPLY`, `INVITE` and their
/// answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestNews {
    /// `user` asks to join (told to the owner and admins).
    Applied,
    /// The request of `user` was accepted (told to `user`).
    ApplyAccepted,
    /// The request of `user` was declined (told to `user`).
    ApplyDeclined,
    /// `user` is invited (told to `user`).
    Invited,
    /// `user` accepted the invitation (told to the inviter).
    InviteAccepted,
    /// `user` declined the invitation (told to the inviter).
    InviteDeclined,
}

impl ConvChange {
    /// The users the change is about (the rest of the recipients only hear about it).
    pub fn subjects(&self) -> Vec<String> {
        match self {
            ConvChange::Joined { members }
            | ConvChange::Left { members }
            | ConvChange::Muted { members }
            | ConvChange::Unmuted { members }
            | ConvChange::Blocked { members }
            | ConvChange::Unblocked { members }
            | ConvChange::Allowlisted { members }
            | ConvChange::Unallowlisted { members } => members.clone(),
            ConvChange::RoleChanged { member, .. } | ConvChange::Request { user: member, .. } => vec![member.clone()],
            ConvChange::Updated { .. }
            | ConvChange::Destroyed
            | ConvChange::Announcement { .. }
            | ConvChange::MuteAll { .. }
            | ConvChange::Settings { .. } => vec![],
        }
    }
}

/// A conversation change as a member was told of it, kept so a client that was offline can
/// catch up (LeanCloud's `/1.1/rtm/notifications`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvNotice {
    pub id: i64,
    pub conv: i64,
    pub kind: ConvKind,
    /// The conversation's id in the service it was imported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_id: Option<String>,
    pub by: Option<String>,
    pub change: ConvChange,
    pub at: i64,
}

/// A conversation with unread messages for one user.
#[derive(Clone, Debug, PartialEq)]
pub struct UnreadEntry {
    pub conv: i64,
    pub kind: ConvKind,
    /// The conversation's id in the service it was imported from.
    pub foreign_id: Option<String>,
    pub count: i64,
    /// The newest unread message.
    pub last: Option<Message>,
    /// One of the unread messages mentions the user (or everyone).
    pub mentioned: bool,
}

/// Which cursor of a member moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    Read,
    Delivered,
}

/// What moving a cursor did: the range it covered and the messages in it whose senders asked
/// for receipts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CursorMove {
    pub from_seq: i64,
    pub to_seq: i64,
    pub receipts: Vec<Message>,
}

/// A member's cursors as times (the timestamps of the messages they point at).
#[derive(Clone, Debug, PartialEq)]
pub struct CursorTimes {
    pub user: String,
    pub read_at: Option<i64>,
    pub delivered_at: Option<i64>,
}
