//! Limits are features: sizes, counts and rates, with each plan's documented defaults, settable
//! per app. The rate limiter lives here too: the [`RateLimiter`] trait (a cluster shares its
//! counters) and [`LocalRateLimiter`], in memory, for one process.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{Attrs, Plan};
use crate::settings::{HookSettings, PushSettings};
use crate::Error;

/// Allowance of one rate bucket. `None` means unlimited on that window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

impl RateRule {
    pub const fn minute_day(per_minute: u32, per_day: Option<u32>) -> Self {
        RateRule { per_second: None, per_minute: Some(per_minute), per_day }
    }
    pub const fn second(per_second: u32) -> Self {
        RateRule { per_second: Some(per_second), per_minute: None, per_day: None }
    }
    pub const fn minute(per_minute: u32) -> Self {
        RateRule { per_second: None, per_minute: Some(per_minute), per_day: None }
    }
    /// No window limits anything: nothing to count.
    pub fn is_unlimited(&self) -> bool {
        self.per_second.is_none() && self.per_minute.is_none() && self.per_day.is_none()
    }
}

/// A rate bucket: the name its settings go by (`rates.<name>.per_…`) and its default allowance.
/// Buckets exist only as the constants of [`bucket`], so a misspelt bucket does not compile.
/// A bucket is shared by every endpoint that counts against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    name: &'static str,
    allowance: Allowance,
}

/// The default allowance of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// The same on every plan.
    Fixed(RateRule),
    /// The plan's: LeanCloud's development tier (`dev`) and commercial defaults (`standard`).
    ByPlan { dev: RateRule, standard: RateRule },
    /// None of its own: the bucket takes its face's default (`em.default`) until it is given one.
    FaceDefault,
}

impl Bucket {
    /// The name of the bucket in settings (`rates.<name>.per_minute`) and in errors.
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The bucket's own default rule on a plan (`None`: it takes its face's default).
    pub fn default_rule(self, plan: Plan) -> Option<RateRule> {
        match self.allowance {
            Allowance::Fixed(r) => Some(r),
            Allowance::ByPlan { dev, standard } => Some(match plan {
                Plan::Dev => dev,
                Plan::Standard => standard,
            }),
            Allowance::FaceDefault => None,
        }
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The table of buckets: one line each, its constant, its name and its default allowance (none
/// written: [`Allowance::FaceDefault`]).
macro_rules! buckets {
    ($( $(#[$doc:meta])* $id:ident = $name:literal $(, $allow:expr)? ; )*) => {
        /// The rate buckets, one constant each (see [`Bucket`]).
        pub mod bucket {
            #[allow(unused_imports)]
            use super::{Allowance::{ByPlan, FaceDefault, Fixed}, Bucket, RateRule};
            $( $(#[$doc])* pub const $id: Bucket = Bucket { name: $name, allowance: buckets!(@allow $($allow)?) }; )*
            /// Every bucket.
            pub const ALL: &[Bucket] = &[$($id),*];
        }
    };
    (@allow) => { FaceDefault };
    (@allow $allow:expr) => { $allow };
}

// LeanCloud: development tier 120/min; 10/min and 100/day; 1/min and 10/day. Commercial
// defaults: 1800/min (max 9000); 30/min and 1000/day; 10/min and 30/day.
// Easemob: the endpoints whose rate differs from the default 100/s (the seed's tables), and the
// message quotas (`em.msg.*`, answered 403 rather than 429); every other endpoint counts in a
// bucket of its own under `em.default`'s rule.
buckets! {
    /// LeanCloud "normal messages": send (conversations, chat rooms, service per-user
    /// messages), edit and recall, in REST 1.1 and 1.2.
    LC_MESSAGE = "lc.message", ByPlan { dev: RateRule::minute(120), standard: RateRule::minute(1800) };
    /// LeanCloud "subscription messages": a service conversation's message to all subscribers.
    LC_SUBSCRIPTION = "lc.subscription",
        ByPlan { dev: RateRule::minute_day(10, Some(100)), standard: RateRule::minute_day(30, Some(1000)) };
    /// LeanCloud app-wide broadcasts.
    LC_BROADCAST = "lc.broadcast", ByPlan { dev: RateRule::minute_day(1, Some(10)), standard: RateRule::minute_day(10, Some(30)) };
    /// Every Easemob endpoint counts in its own bucket `em.<name>`; one without a rule of its own
    /// takes `em.default` (the seed: 100 calls a second).
    EM_DEFAULT = "em.default", Fixed(RateRule::second(100));
    EM_BLOCKS = "em.blocks", Fixed(RateRule::second(50));
    EM_CHATFILES_DOWNLOAD = "em.chatfiles.download";
    EM_CHATFILES_UPLOAD = "em.chatfiles.upload";
    EM_CHATGROUPS_ADMIN = "em.chatgroups.admin";
    EM_CHATGROUPS_ANNOUNCEMENT_GET = "em.chatgroups.announcement.get";
    EM_CHATGROUPS_ANNOUNCEMENT_SET = "em.chatgroups.announcement.set";
    EM_CHATGROUPS_BAN = "em.chatgroups.ban";
    EM_CHATGROUPS_BLOCKS = "em.chatgroups.blocks";
    EM_CHATGROUPS_CREATE = "em.chatgroups.create";
    EM_CHATGROUPS_DELETE = "em.chatgroups.delete";
    EM_CHATGROUPS_DISABLE = "em.chatgroups.disable";
    EM_CHATGROUPS_ENABLE = "em.chatgroups.enable";
    EM_CHATGROUPS_GET = "em.chatgroups.get";
    EM_CHATGROUPS_LIST = "em.chatgroups.list";
    EM_CHATGROUPS_MUTE = "em.chatgroups.mute";
    EM_CHATGROUPS_SHARE_FILES_DELETE = "em.chatgroups.share_files.delete";
    EM_CHATGROUPS_SHARE_FILES_DOWNLOAD = "em.chatgroups.share_files.download";
    EM_CHATGROUPS_SHARE_FILES_LIST = "em.chatgroups.share_files.list";
    EM_CHATGROUPS_SHARE_FILES_UPLOAD = "em.chatgroups.share_files.upload";
    EM_CHATGROUPS_UPDATE = "em.chatgroups.update";
    EM_CHATGROUPS_USERS = "em.chatgroups.users";
    EM_CHATGROUPS_WHITE = "em.chatgroups.white";
    EM_CHATMESSAGES = "em.chatmessages", Fixed(RateRule::minute(10));
    EM_CHATROOMS_ADMIN = "em.chatrooms.admin";
    EM_CHATROOMS_ANNOUNCEMENT_GET = "em.chatrooms.announcement.get";
    EM_CHATROOMS_ANNOUNCEMENT_SET = "em.chatrooms.announcement.set";
    EM_CHATROOMS_BAN = "em.chatrooms.ban";
    EM_CHATROOMS_BLOCKS = "em.chatrooms.blocks";
    EM_CHATROOMS_CREATE = "em.chatrooms.create", Fixed(RateRule::second(50));
    EM_CHATROOMS_DELETE = "em.chatrooms.delete";
    EM_CHATROOMS_GET = "em.chatrooms.get";
    EM_CHATROOMS_LIST = "em.chatrooms.list", Fixed(RateRule::second(50));
    EM_CHATROOMS_MUTE = "em.chatrooms.mute";
    EM_CHATROOMS_SUPER_ADMIN = "em.chatrooms.super_admin";
    EM_CHATROOMS_UPDATE = "em.chatrooms.update";
    EM_CHATROOMS_USERS = "em.chatrooms.users";
    EM_CHATROOMS_WHITE = "em.chatrooms.white";
    EM_CONTACTS_ADD = "em.contacts.add";
    EM_CONTACTS_LIST = "em.contacts.list";
    EM_CONTACTS_REMOVE = "em.contacts.remove";
    EM_JOINED_CHATGROUPS = "em.joined_chatgroups", Fixed(RateRule::second(50));
    EM_JOINED_CHATROOMS = "em.joined_chatrooms", Fixed(RateRule::second(50));
    EM_MESSAGES_CHATGROUPS = "em.messages.chatgroups", Fixed(RateRule::second(20));
    EM_MESSAGES_CHATGROUPS_IMPORT = "em.messages.chatgroups.import";
    EM_MESSAGES_CHATROOMS = "em.messages.chatrooms", Fixed(RateRule::second(20));
    EM_MESSAGES_CHATROOMS_IMPORT = "em.messages.chatrooms.import";
    EM_MESSAGES_RECALL = "em.messages.recall";
    EM_MESSAGES_USERS = "em.messages.users";
    EM_MESSAGES_USERS_IMPORT = "em.messages.users.import";
    EM_METADATA_BATCH = "em.metadata.batch";
    EM_METADATA_CAPACITY = "em.metadata.capacity";
    EM_METADATA_CHATROOM_DELETE = "em.metadata.chatroom.delete";
    EM_METADATA_CHATROOM_GET = "em.metadata.chatroom.get";
    EM_METADATA_CHATROOM_SET = "em.metadata.chatroom.set";
    EM_METADATA_DELETE = "em.metadata.delete";
    EM_METADATA_GET = "em.metadata.get";
    EM_METADATA_SET = "em.metadata.set";
    EM_MSG_CHATGROUPS = "em.msg.chatgroups", Fixed(RateRule::second(20));
    EM_MSG_CHATROOMS = "em.msg.chatrooms", Fixed(RateRule::second(100));
    /// Message quotas: each recipient counts one; Easemob answers the excess 403 rather than 429.
    EM_MSG_USERS = "em.msg.users", Fixed(RateRule::minute(6000));
    EM_MESSAGE_ROAMING = "em.message_roaming";
    EM_MUTES_GET = "em.mutes.get";
    EM_MUTES_LIST = "em.mutes.list";
    EM_MUTES_SET = "em.mutes.set";
    EM_NOTIFICATION_GET = "em.notification.get";
    EM_NOTIFICATION_LANGUAGE = "em.notification.language";
    EM_NOTIFICATION_SET = "em.notification.set";
    EM_PRESENCE_GET = "em.presence.get", Fixed(RateRule::second(50));
    EM_PRESENCE_SET = "em.presence.set", Fixed(RateRule::second(50));
    EM_PRESENCE_SUBLIST = "em.presence.sublist", Fixed(RateRule::second(50));
    EM_PRESENCE_SUBSCRIBE = "em.presence.subscribe", Fixed(RateRule::second(50));
    EM_PRESENCE_UNSUBSCRIBE = "em.presence.unsubscribe", Fixed(RateRule::second(50));
    EM_PUSH_LABEL = "em.push.label", Fixed(RateRule::minute(1200));
    EM_PUSH_LABEL_ADD = "em.push.label_add";
    EM_PUSH_LABEL_CREATE = "em.push.label_create";
    EM_PUSH_LABEL_DELETE = "em.push.label_delete";
    EM_PUSH_LABEL_GET = "em.push.label_get";
    EM_PUSH_LABEL_LIST = "em.push.label_list";
    EM_PUSH_LABEL_REMOVE = "em.push.label_remove";
    EM_PUSH_LABEL_USER = "em.push.label_user";
    EM_PUSH_LABEL_USERS = "em.push.label_users";
    EM_PUSH_SINGLE = "em.push.single", Fixed(RateRule::minute(1200));
    EM_PUSH_TASK = "em.push.task", Fixed(RateRule::minute_day(5, Some(100)));
    EM_PUSH_TEMPLATE_CREATE = "em.push_template.create", Fixed(RateRule::second(10));
    EM_PUSH_TEMPLATE_DELETE = "em.push_template.delete", Fixed(RateRule::second(10));
    EM_PUSH_TEMPLATE_GET = "em.push_template.get", Fixed(RateRule::second(10));
    EM_REACTION_ADD = "em.reaction.add";
    EM_REACTION_DELETE = "em.reaction.delete";
    EM_REACTION_DETAIL = "em.reaction.detail";
    EM_REACTION_LIST = "em.reaction.list";
    EM_THREAD_CREATE = "em.thread.create";
    EM_THREAD_DELETE = "em.thread.delete";
    EM_THREAD_LIST = "em.thread.list";
    EM_THREAD_UPDATE = "em.thread.update";
    EM_THREAD_USER = "em.thread.user";
    EM_THREAD_USERS = "em.thread.users";
    EM_THREAD_USERS_ADD = "em.thread.users.add";
    EM_THREAD_USERS_REMOVE = "em.thread.users.remove";
    EM_TOKEN = "em.token", Fixed(RateRule::second(300));
    EM_USER_CHANNEL = "em.user_channel";
    /// Counted per user (`Apps::rate_check_for`), beside the endpoint's own 100/s.
    EM_USER_CHANNEL_USER = "em.user_channel.user", Fixed(RateRule::minute(5));
    EM_USER_CHANNELS = "em.user_channels";
    /// Counted per user, like `EM_USER_CHANNEL_USER`.
    EM_USER_CHANNELS_USER = "em.user_channels.user", Fixed(RateRule::minute(5));
    EM_USERS_ACTIVATE = "em.users.activate";
    EM_USERS_DEACTIVATE = "em.users.deactivate";
    EM_USERS_DELETE = "em.users.delete";
    EM_USERS_DELETE_BATCH = "em.users.delete_batch", Fixed(RateRule::second(30));
    EM_USERS_DISCONNECT = "em.users.disconnect";
    EM_USERS_GET = "em.users.get";
    EM_USERS_LIST = "em.users.list";
    EM_USERS_OFFLINE_MSG_COUNT = "em.users.offline_msg_count";
    EM_USERS_OFFLINE_MSG_STATUS = "em.users.offline_msg_status";
    EM_USERS_PASSWORD = "em.users.password";
    EM_USERS_STATUS = "em.users.status";
    EM_USERS_STATUS_BATCH = "em.users.status_batch", Fixed(RateRule::second(50));
    EM_USERS_WRITE = "em.users.write";
}

/// Every limit of an app. Defaults come from the plan ([`Limits::for_plan`]); each field can be
/// overridden per app by name (`confab app limits NAME --set field=value`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest message content in bytes, push data included (LeanCloud: 5 KB).
    pub message_max_bytes: usize,
    /// Most client ids a message may mention.
    pub mentions_max: usize,
    /// Most recipients of a service conversation's per-user message (`to_clients`).
    pub recipients_max: usize,
    /// Most ids in one online-status query.
    pub check_online_max: usize,
    /// Longest kick reason, in characters.
    pub kick_reason_max_chars: usize,
    /// Default member cap of a conversation.
    pub conversation_max_members: i64,
    /// Longest client/user id, in characters.
    pub user_id_max_chars: usize,
    /// How far ahead a broadcast may be valid, in days (and its default validity).
    pub broadcast_max_valid_days: i64,
    /// Most a single history query returns.
    pub history_max_limit: i64,
    /// How long after sending a user may recall a message, in seconds (0: any time). The app's
    /// server recalls any time.
    pub recall_window_secs: i64,
    /// How long a repeated MaxIM `transaction_id` is recognised, in seconds.
    pub dedup_window_secs: i64,
    /// Where a conversation's unread count stops (100): below it the count is exact, at it it
    /// means "at least" (apps show "99+"). Every unread count (realtime login, LeanCloud
    /// `unread-count`, MaxIM `/message/unread`, Easemob) follows this rule; a total over
    /// conversations is the sum of their counts.
    pub unread_count_max: i64,
    /// How many of the newest messages after a member's read cursor an unread count looks at
    /// (1,000; never fewer than `unread_count_max`), so that a login costs the same however long
    /// the unread history. Only where most of those are the member's own, recalled or hidden does
    /// the count stop short of what lies further back.
    pub unread_scan_max: i64,
    /// Easemob quotas (0: unlimited; below 0: none at all): registered users, contacts per user,
    /// groups per app, members per group, groups a user joins, chat rooms per app (none on the
    /// free edition, `dev`), members per chat room.
    pub em_max_users: i64,
    pub em_max_contacts: i64,
    pub em_max_groups: i64,
    pub em_group_max_members: i64,
    pub em_max_groups_per_user: i64,
    pub em_max_chatrooms: i64,
    pub em_chatroom_max_members: i64,
    /// Largest Easemob message body, in bytes (the seed: 3 KB for every type).
    pub em_message_max_bytes: usize,
    /// Largest file upload, in bytes (the seed: 10 MB).
    pub em_file_max_bytes: usize,
    /// Easemob "open registration": `POST /users` without the app token.
    pub em_open_registration: bool,
    /// Users one user may block (Easemob: 500).
    pub em_max_user_blocks: i64,
    /// User metadata: bytes per user (2 KB) and for the whole app (10 GB).
    pub em_metadata_user_max_bytes: i64,
    pub em_metadata_app_max_bytes: i64,
    /// Group and chat room fields, in characters: name 128, description 512, `custom` 1024,
    /// announcement 512, avatar URL 1024.
    pub em_name_max_chars: usize,
    pub em_description_max_chars: usize,
    pub em_custom_max_chars: usize,
    pub em_announcement_max_chars: usize,
    pub em_avatar_max_chars: usize,
    /// Admins of one group or chat room besides the owner (99).
    pub em_max_admins: i64,
    /// Chat room custom attributes: keys per room (100), key length (128), value length (4096).
    pub em_room_attributes_max: i64,
    pub em_room_attribute_key_max_chars: usize,
    pub em_room_attribute_value_max_chars: usize,
    /// Shared files one group may hold (10,000).
    pub em_group_files_max: i64,
    /// Push labels per app (100) and users per label (200,000).
    pub em_push_labels_max: i64,
    pub em_push_label_users_max: i64,
    /// The app's hook servers (LeanCloud hooks, Easemob callbacks, MaxIM webhook).
    pub hooks: HookSettings,
    /// Where pushes go (push tasks and offline pushes; an HTTP POST of JSON to the app's relay):
    /// confab does not talk to APNs/FCM/vendor channels itself.
    pub push: PushSettings,
    /// Presence `ext` bytes (1024) and subscriptions per user (3000).
    pub em_presence_ext_max_bytes: usize,
    pub em_presence_subscriptions_max: i64,
    /// Distinct reactions on one message (20).
    pub em_reactions_per_message_max: i64,
    /// Thread name characters (64) and threads per app (100,000).
    pub em_thread_name_max_chars: usize,
    pub em_threads_max: i64,
    /// LeanCloud switches: require signatures for login, conversation changes, history.
    pub lc_sign_login: bool,
    pub lc_sign_conversation: bool,
    pub lc_sign_history: bool,
    /// Rate rules by bucket name (see [`bucket`]): every bucket's default, the app's overrides,
    /// and rules set for names no bucket has yet (kept, unused).
    pub rates: BTreeMap<String, RateRule>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_plan(Plan::Standard)
    }
}

impl Limits {
    /// The documented defaults of a plan.
    pub fn for_plan(plan: Plan) -> Limits {
        let rates = bucket::ALL.iter().filter_map(|b| Some((b.name.to_string(), b.default_rule(plan)?))).collect();
        // Easemob's free edition (dev) and basic edition (standard)
        let (em_users, em_contacts, em_groups, em_group_members, em_joined, em_rooms) = match plan {
            Plan::Dev => (100, 100, 100, 100, 100, -1),
            Plan::Standard => (0, 3000, 100_000, 300, 600, 100),
        };
        Limits {
            message_max_bytes: 5 * 1024,
            mentions_max: 20,
            recipients_max: 20,
            check_online_max: 20,
            kick_reason_max_chars: 20,
            conversation_max_members: 500,
            user_id_max_chars: 64,
            broadcast_max_valid_days: 30,
            history_max_limit: 1000,
            recall_window_secs: 0,
            dedup_window_secs: 600,
            unread_count_max: 100,
            unread_scan_max: 1000,
            em_max_users: em_users,
            em_max_contacts: em_contacts,
            em_max_groups: em_groups,
            em_group_max_members: em_group_members,
            em_max_groups_per_user: em_joined,
            em_max_chatrooms: em_rooms,
            em_chatroom_max_members: 0,
            em_message_max_bytes: 3 * 1024,
            em_file_max_bytes: 10 * 1024 * 1024,
            em_open_registration: false,
            em_max_user_blocks: 500,
            em_metadata_user_max_bytes: 2048,
            em_metadata_app_max_bytes: 10 * 1024 * 1024 * 1024,
            em_name_max_chars: 128,
            em_description_max_chars: 512,
            em_custom_max_chars: 1024,
            em_announcement_max_chars: 512,
            em_avatar_max_chars: 1024,
            em_max_admins: 99,
            em_room_attributes_max: 100,
            em_room_attribute_key_max_chars: 128,
            em_room_attribute_value_max_chars: 4096,
            em_group_files_max: 10_000,
            em_push_labels_max: 100,
            em_push_label_users_max: 200_000,
            hooks: HookSettings::default(),
            push: PushSettings::default(),
            em_presence_ext_max_bytes: 1024,
            em_presence_subscriptions_max: 3000,
            em_reactions_per_message_max: 20,
            em_thread_name_max_chars: 64,
            em_threads_max: 100_000,
            lc_sign_login: false,
            lc_sign_conversation: false,
            lc_sign_history: false,
            rates,
        }
    }

    /// The plan's defaults with per-app overrides applied. Overrides are a JSON object whose
    /// keys are field names; `rates` entries merge bucket by bucket and window by window.
    pub fn resolve(plan: Plan, overrides: &Attrs) -> Result<Limits, Error> {
        let mut base = serde_json::to_value(Limits::for_plan(plan)).map_err(Error::internal)?;
        merge(&mut base, &Value::Object(canonical(overrides)));
        let limits: Limits = serde_json::from_value(base).map_err(|e| Error::invalid(format!("limits: {e}")))?;
        limits.hooks.validate()?;
        limits.push.validate()?;
        Ok(limits)
    }

    /// Apply one `key=value` setting to an overrides object, checking that the result is valid.
    /// Keys are field names; nested settings are reached by dotted paths (`hooks.leancloud.url`,
    /// `push.webhook_url`, `rates.<bucket>.<per_second|per_minute|per_day>`, where the bucket
    /// may be new). A value is read as JSON where the setting is not a string
    /// (`hooks.leancloud.fail_on_error=true`, `push.template={"alert":"…"}`), else taken as it is.
    pub fn set_override(plan: Plan, overrides: &mut Attrs, key: &str, value: &str) -> Result<(), Error> {
        let key = ALIASES.iter().find(|(old, _)| *old == key).map_or(key, |(_, new)| *new);
        let known = serde_json::to_value(Limits::for_plan(plan)).map_err(Error::internal)?;
        let path: Vec<&str> = match key.strip_prefix("rates.") {
            // bucket names have dots of their own
            Some(rest) => {
                let (bucket, window) = rest
                    .rsplit_once('.')
                    .ok_or_else(|| Error::invalid("rate keys look like rates.<bucket>.<per_minute|per_day|per_second>"))?;
                vec!["rates", bucket, window]
            }
            None => key.split('.').collect(),
        };
        let unknown = || Error::invalid(format!("unknown setting '{key}'"));
        if path.iter().any(|p| p.is_empty()) {
            return Err(unknown());
        }
        // the default at the path says what the value is; a new rate bucket takes a rule's shape
        let mut default = &known;
        for (i, part) in path.iter().enumerate() {
            default = match default.get(part) {
                Some(d) => d,
                // a bucket without a rule yet
                None if path[0] == "rates" && i >= 1 => &Value::Null,
                None => return Err(unknown()),
            };
        }
        if path[0] == "rates" {
            if path.len() != 3 {
                return Err(Error::invalid("rate keys look like rates.<bucket>.<per_minute|per_day|per_second>"));
            }
            if !matches!(path[2], "per_second" | "per_minute" | "per_day") {
                return Err(Error::invalid(format!("unknown rate window '{}'", path[2])));
            }
        } else if default.is_object() && !WHOLE_VALUES.contains(&key) {
            return Err(Error::invalid(format!("'{key}' is a group of settings: set one of its keys")));
        }
        let parsed = if default.is_string() {
            Value::String(value.to_string())
        } else {
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()))
        };
        let mut candidate = canonical(overrides);
        let mut at = &mut candidate;
        for part in &path[..path.len() - 1] {
            let slot = at.entry(part.to_string()).or_insert_with(|| Value::Object(Default::default()));
            if !slot.is_object() {
                *slot = Value::Object(Default::default());
            }
            at = slot.as_object_mut().ok_or_else(|| Error::internal("an object"))?;
        }
        at.insert(path[path.len() - 1].to_string(), parsed);
        Limits::resolve(plan, &candidate).map_err(|e| match e {
            Error::Invalid(m) => Error::invalid(format!("{key}: {m}")),
            e => e,
        })?;
        *overrides = candidate;
        Ok(())
    }

    /// How far unread counts go (at least 1, and the window at least the cap).
    pub fn unread_bounds(&self) -> UnreadBounds {
        let count_max = self.unread_count_max.max(1);
        UnreadBounds { count_max, scan_max: self.unread_scan_max.max(count_max) }
    }

    /// The rule of a bucket: its own, else its face's default (`em.default` for `em.*`), else
    /// none. A bucket counts on its own either way.
    pub fn rate(&self, bucket: Bucket) -> RateRule {
        if let Some(r) = self.rates.get(bucket.name) {
            return *r;
        }
        let face = bucket.name.split('.').next().unwrap_or_default();
        self.rates.get(&format!("{face}.default")).copied().unwrap_or_default()
    }
}

/// Settings whose value is a JSON object set as a whole.
const WHOLE_VALUES: &[&str] = &["push.template"];

/// Settings that moved, by their old name.
const ALIASES: &[(&str, &str)] = &[("push_webhook_url", "push.webhook_url")];

/// Overrides with every moved setting at its current place.
fn canonical(overrides: &Attrs) -> Attrs {
    let mut out = overrides.clone();
    for (old, new) in ALIASES {
        if let Some(v) = out.remove(*old) {
            let (group, field) = new.split_once('.').unwrap_or((new, ""));
            let slot = out.entry(group.to_string()).or_insert_with(|| Value::Object(Default::default()));
            if let Some(obj) = slot.as_object_mut() {
                obj.entry(field.to_string()).or_insert(v);
            }
        }
    }
    out
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Window {
    start: i64,
    count: u32,
}

impl Window {
    /// Counts one call in a fixed window of `len` ms starting at the first call after the
    /// previous window ended (or, with `align`, at a multiple of `len`).
    fn admit(&mut self, now: i64, len: i64, align: bool, max: u32, cost: u32) -> bool {
        if now >= self.start + len {
            self.start = if align { now - now.rem_euclid(len) } else { now };
            self.count = 0;
        }
        if self.count.saturating_add(cost) > max {
            return false;
        }
        self.count += cost;
        true
    }
}

/// One counter's windows and penalty: what a rate limiter keeps per (app, counter), in memory
/// or, in a cluster, where every node reads and writes it ([`BucketState::take`] is the rule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    second: Window,
    minute: Window,
    day: Window,
    blocked_until: i64,
}

/// Counts calls against rate buckets, keyed by (app, counter): in one process
/// ([`LocalRateLimiter`]), or with counters a cluster's nodes share (NATS KV or the database), so
/// that an app's allowance is one for the cluster, not one per node.
///
/// Semantics, as LeanCloud documents them: a call over the per-minute allowance is refused, and
/// so is every call for the next minute ("一分钟内…持续返回 429，一分钟后会重新处理"). Over the daily
/// total, calls are refused until the day (UTC) ends. Per-second allowances (Easemob) simply
/// refuse the excess within that second. Refused calls do not count. A refusal
/// ([`Error::RateLimited`]) says how long to wait (`Retry-After`). Time is the engine's clock
/// (Unix ms), never the process's own, so every node counts in the same windows.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Count `cost` units (a message to 600 users costs 600) against the counter `counter` of
    /// `app` under `rule`, at `now`; a refusal names `bucket`, the rule's name. Any other error:
    /// the counters could not be reached (the call is refused with it).
    async fn take(&self, app: i64, bucket: &str, counter: &str, rule: RateRule, cost: u32, now: i64) -> Result<(), Error>;

    /// Count one call against `bucket`'s own counter.
    async fn check(&self, app: i64, bucket: &str, rule: RateRule, now: i64) -> Result<(), Error> {
        self.take(app, bucket, bucket, rule, 1, now).await
    }
}

/// The rate limiter of one process: counters in memory.
///
/// Counters live while they count: a key whose windows have all ended is dropped when the map
/// grows past [`PRUNE_AT`] (per-user counters would otherwise grow with every user ever seen).
#[derive(Debug, Default)]
pub struct LocalRateLimiter {
    state: Mutex<HashMap<(i64, String), BucketState>>,
}

/// Keys kept before the ended ones are pruned.
const PRUNE_AT: usize = 10_000;

impl BucketState {
    /// Count `cost` against this counter under `rule` at `now`, or refuse (naming `bucket`) and
    /// count nothing.
    pub fn take(&mut self, bucket: &str, rule: RateRule, cost: u32, now: i64) -> Result<(), Error> {
        let st = self;
        let refuse =
            |wait_ms: i64| Err(Error::RateLimited { bucket: bucket.to_string(), retry_after_secs: (wait_ms.max(1) as u64).div_ceil(1000) });
        if now < st.blocked_until {
            return refuse(st.blocked_until - now);
        }
        // Check every window before counting in any, so a refused call counts nowhere; a refusal
        // waits for the latest of the full windows to end.
        let wait = |w: &Window, len: i64, max: Option<u32>| match max {
            Some(max) if now < w.start + len && w.count.saturating_add(cost) > max => Some(w.start + len - now),
            Some(max) if cost > max => Some(len),
            _ => None,
        };
        let day = wait(&st.day, DAY_MS, rule.per_day);
        let minute = wait(&st.minute, MINUTE_MS, rule.per_minute);
        let second = wait(&st.second, 1000, rule.per_second);
        if minute.is_some() {
            st.blocked_until = now + MINUTE_MS;
        }
        let longest = [day, minute.map(|_| MINUTE_MS), second].into_iter().flatten().max();
        if let Some(ms) = longest {
            return refuse(ms);
        }
        if let Some(max) = rule.per_day {
            st.day.admit(now, DAY_MS, true, max, cost);
        }
        if let Some(max) = rule.per_minute {
            st.minute.admit(now, MINUTE_MS, false, max, cost);
        }
        if let Some(max) = rule.per_second {
            st.second.admit(now, 1000, false, max, cost);
        }
        Ok(())
    }

    /// Nothing left to remember at `now`: every window has ended and no penalty runs.
    pub fn ended(&self, now: i64) -> bool {
        let done = |w: &Window, len: i64| w.count == 0 || now >= w.start + len;
        now >= self.blocked_until && done(&self.second, 1000) && done(&self.minute, MINUTE_MS) && done(&self.day, DAY_MS)
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn take(&self, app: i64, bucket: &str, counter: &str, rule: RateRule, cost: u32, now: i64) -> Result<(), Error> {
        self.take_now(app, bucket, counter, rule, cost, now)
    }
}

impl LocalRateLimiter {
    fn take_now(&self, app: i64, bucket: &str, counter: &str, rule: RateRule, cost: u32, now: i64) -> Result<(), Error> {
        if rule.is_unlimited() {
            return Ok(());
        }
        let mut map = self.state.lock();
        if map.len() >= PRUNE_AT {
            map.retain(|_, st| !st.ended(now));
        }
        map.entry((app, counter.to_string())).or_default().take(bucket, rule, cost, now)
    }

    /// Counters held now.
    pub fn len(&self) -> usize {
        self.state.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How far a store counts a member's unread messages in one conversation, so that the work does
/// not grow with the history (`Limits::unread_count_max`, `Limits::unread_scan_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnreadBounds {
    /// A conversation's count stops here: below it the count is exact; equal to it, it means "at
    /// least this many" (an app shows "99+").
    pub count_max: i64,
    /// The store looks at no more than this many of the newest messages after the read cursor,
    /// as many of the messages addressed to the member alone, and as many of those that mention
    /// someone (for `UnreadEntry::mentioned`).
    pub scan_max: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_and_standard_defaults_differ_as_documented() {
        let dev = Limits::for_plan(Plan::Dev);
        let std = Limits::for_plan(Plan::Standard);
        assert_eq!(dev.rate(bucket::LC_MESSAGE).per_minute, Some(120));
        assert_eq!(std.rate(bucket::LC_MESSAGE).per_minute, Some(1800));
        assert_eq!(dev.rate(bucket::LC_BROADCAST), RateRule::minute_day(1, Some(10)));
        assert_eq!(std.rate(bucket::LC_SUBSCRIPTION), RateRule::minute_day(30, Some(1000)));
    }

    #[test]
    fn buckets_are_named_once_and_settable_by_name() {
        let mut seen = std::collections::HashSet::new();
        for b in bucket::ALL {
            assert!(seen.insert(b.name()), "{b} named twice");
            // a bucket without a rule of its own has a face default to take
            if b.default_rule(Plan::Standard).is_none() {
                assert!(b.name().starts_with("em."), "{b}");
            }
            let mut o = Attrs::new();
            Limits::set_override(Plan::Dev, &mut o, &format!("rates.{b}.per_second"), "7").unwrap();
            assert_eq!(Limits::resolve(Plan::Dev, &o).unwrap().rate(*b).per_second, Some(7), "{b}");
        }
        let std = Limits::for_plan(Plan::Standard);
        // the buckets with rules of their own: LeanCloud's three, `em.default` and the seed's table
        assert_eq!(std.rates.len(), 31);
        assert_eq!(std.rate(bucket::EM_USERS_GET), RateRule::second(100), "the face's default");
        assert_eq!(std.rate(bucket::EM_PUSH_TASK), RateRule::minute_day(5, Some(100)));
        let mut o = Attrs::new();
        Limits::set_override(Plan::Standard, &mut o, "rates.em.default.per_second", "5").unwrap();
        assert_eq!(Limits::resolve(Plan::Standard, &o).unwrap().rate(bucket::EM_USERS_GET).per_second, Some(5));
    }

    #[test]
    fn overrides_merge_and_are_checked() {
        let mut o = Attrs::new();
        Limits::set_override(Plan::Standard, &mut o, "rates.lc.message.per_minute", "9000").unwrap();
        Limits::set_override(Plan::Standard, &mut o, "message_max_bytes", "10240").unwrap();
        let l = Limits::resolve(Plan::Standard, &o).unwrap();
        assert_eq!(l.rate(bucket::LC_MESSAGE).per_minute, Some(9000));
        assert_eq!(l.message_max_bytes, 10240);
        // the other windows of the bucket and the other buckets keep their defaults
        assert_eq!(l.rate(bucket::LC_BROADCAST).per_day, Some(30));
        assert!(Limits::set_override(Plan::Standard, &mut o, "no_such_limit", "1").is_err());
        assert!(Limits::set_override(Plan::Standard, &mut o, "message_max_bytes", "lots").is_err());
        assert!(Limits::set_override(Plan::Standard, &mut o, "rates.lc.message.per_hour", "1").is_err());
        assert_eq!(Limits::resolve(Plan::Standard, &o).unwrap().message_max_bytes, 10240);
    }

    #[test]
    fn hook_and_push_settings_are_dotted_keys_checked_by_type() {
        let mut o = Attrs::new();
        Limits::set_override(Plan::Standard, &mut o, "hooks.leancloud.url", "http://127.0.0.1:3000").unwrap();
        Limits::set_override(Plan::Standard, &mut o, "hooks.leancloud.fail_on_error", "true").unwrap();
        // a secret of digits stays a string
        Limits::set_override(Plan::Standard, &mut o, "hooks.easemob.secret", "12345").unwrap();
        Limits::set_override(Plan::Standard, &mut o, "push.template", r#"{"alert":"hi ${fromClientId}"}"#).unwrap();
        // the old name of the push webhook still works
        Limits::set_override(Plan::Standard, &mut o, "push_webhook_url", "https://relay.example/push").unwrap();
        let l = Limits::resolve(Plan::Standard, &o).unwrap();
        assert_eq!(l.hooks.leancloud.url, "http://127.0.0.1:3000");
        assert!(l.hooks.leancloud.fail_on_error);
        assert_eq!(l.hooks.easemob.secret, "12345");
        assert_eq!(l.hooks.easemob.pre_send_wait_ms, 200, "untouched keys keep their defaults");
        assert_eq!(l.push.webhook_url, "https://relay.example/push");
        assert_eq!(l.push.template["alert"], "hi ${fromClientId}");
        for (k, v) in [
            ("hooks.leancloud.nope", "1"),
            ("hooks", "1"),
            ("hooks.leancloud", "1"),
            ("hooks.leancloud.url", "ftp://x"),
            ("hooks.leancloud.fail_on_error", "maybe"),
            ("hooks.easemob.pre_send_policy", "sometimes"),
            ("hooks.easemob.pre_send_wait_ms", "0"),
            ("push.template", "[1]"),
            ("hooks..url", "x"),
        ] {
            let before = o.clone();
            assert!(Limits::set_override(Plan::Standard, &mut o, k, v).is_err(), "{k}={v} refused");
            assert_eq!(o, before, "a refused setting changes nothing");
        }
    }

    #[tokio::test]
    async fn over_the_minute_allowance_blocks_for_a_minute() {
        let rl = LocalRateLimiter::default();
        let rule = RateRule::minute_day(3, None);
        let t = 1_000_000;
        for i in 0..3 {
            assert!(rl.check(1, "b", rule, t + i).await.is_ok());
        }
        assert!(rl.check(1, "b", rule, t + 10).await.is_err());
        // another app is unaffected
        assert!(rl.check(2, "b", rule, t + 10).await.is_ok());
        // the window has rolled over, but the penalty minute has not passed yet
        assert!(rl.check(1, "b", rule, t + 60_005).await.is_err());
        assert!(rl.check(1, "b", rule, t + 60_011).await.is_ok());
    }

    #[tokio::test]
    async fn costs_and_separate_counters_under_one_rule() {
        let rl = LocalRateLimiter::default();
        let rule = RateRule::second(10);
        let t = 5_000_000;
        assert!(rl.take(1, "msg", "msg", rule, 6, t).await.is_ok());
        assert!(rl.take(1, "msg", "msg", rule, 5, t + 1).await.is_err(), "6 + 5 > 10");
        assert!(rl.take(1, "msg", "msg", rule, 4, t + 2).await.is_ok(), "a refused call counted nothing");
        assert!(rl.take(1, "msg", "msg", rule, 11, t + 5000).await.is_err(), "more than a whole window");
        // one rule, a counter per subject
        assert!(rl.take(1, "per_user", "per_user/a", rule, 10, t).await.is_ok());
        assert!(rl.take(1, "per_user", "per_user/b", rule, 10, t).await.is_ok());
        assert_eq!(
            rl.take(1, "per_user", "per_user/a", rule, 1, t).await,
            Err(Error::RateLimited { bucket: "per_user".into(), retry_after_secs: 1 })
        );
    }

    #[tokio::test]
    async fn daily_total_holds_until_the_day_ends() {
        let rl = LocalRateLimiter::default();
        let rule = RateRule::minute_day(100, Some(2));
        let day = 20_000 * DAY_MS;
        assert!(rl.check(1, "b", rule, day + 1).await.is_ok());
        assert!(rl.check(1, "b", rule, day + 2).await.is_ok());
        assert!(rl.check(1, "b", rule, day + 3).await.is_err());
        assert!(rl.check(1, "b", rule, day + DAY_MS - 1).await.is_err());
        assert!(rl.check(1, "b", rule, day + DAY_MS).await.is_ok());
    }

    #[tokio::test]
    async fn a_refusal_says_how_long_to_wait() {
        let rl = LocalRateLimiter::default();
        let wait = |r: Result<(), Error>| match r {
            Err(Error::RateLimited { retry_after_secs, .. }) => retry_after_secs,
            other => panic!("{other:?}"),
        };
        let t = 7_000_000;
        // the penalty minute
        let rule = RateRule::minute(1);
        rl.check(1, "m", rule, t).await.unwrap();
        assert_eq!(wait(rl.check(1, "m", rule, t + 500).await), 60);
        assert_eq!(wait(rl.check(1, "m", rule, t + 30_500).await), 30, "what is left of the penalty");
        // the rest of the second
        let rule = RateRule::second(1);
        rl.check(1, "s", rule, t + 100).await.unwrap();
        assert_eq!(wait(rl.check(1, "s", rule, t + 700).await), 1);
        // the rest of the (UTC) day
        let rule = RateRule::minute_day(100, Some(1));
        let day = 20_000 * DAY_MS;
        rl.check(1, "d", rule, day + 1).await.unwrap();
        assert_eq!(wait(rl.check(1, "d", rule, day + DAY_MS - 3_600_000).await), 3600);
    }

    #[tokio::test]
    async fn counters_that_ended_are_pruned() {
        let rl = LocalRateLimiter::default();
        let rule = RateRule::second(5);
        for i in 0..PRUNE_AT {
            rl.take(1, "per_user", &format!("per_user/{i}"), rule, 1, 1_000).await.unwrap();
        }
        assert_eq!(rl.len(), PRUNE_AT);
        // a second later every one of those windows has ended
        rl.take(1, "per_user", "per_user/late", rule, 1, 2_000).await.unwrap();
        assert_eq!(rl.len(), 1);
        // a counter still counting is kept, and still refuses
        for _ in 0..4 {
            rl.take(1, "per_user", "per_user/late", rule, 1, 2_001).await.unwrap();
        }
        assert!(rl.take(1, "per_user", "per_user/late", rule, 1, 2_002).await.is_err());
    }
}
