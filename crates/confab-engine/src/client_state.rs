//! What the client SDKs keep on the server besides messages and conversations (Easemob's
//! client-only REST calls): pinned messages (per conversation, seen by all its members), a user's
//! own erasure of history (their view only), contact remarks, group member attributes, message
//! reports for the app's operator, and who in a group read a message. All of it lives in keyed
//! collections (namespaces in [`crate::entries::ns`]) or in the engine's member rows; the rules are here, the
//! faces translate.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use crate::entries::{ns, Entry, EntryFilter, EntryQuery, Put, PutRule};
use crate::error::{Error, Result};
use crate::model::{App, ConvKind, Conversation, Message, Role};
use crate::query::{Bound, HistoryQuery, HistoryScope, MemberQuery};
use crate::{Engine, MessageRef};

/// Most pinned messages one conversation holds.
pub const PINS_MAX: i64 = 20;
/// Longest contact remark, in characters.
pub const REMARK_MAX_CHARS: usize = 100;
/// Group member attributes: longest key and value (bytes), most bytes per member, most targets
/// one read may name.
pub const MEMBER_ATTR_KEY_MAX: usize = 16;
pub const MEMBER_ATTR_VALUE_MAX: usize = 512;
pub const MEMBER_ATTRS_MAX_BYTES: usize = 4096;
pub const MEMBER_ATTR_TARGETS_MAX: usize = 10;
/// Message reports: longest type and reason (characters), most reports an app keeps.
pub const REPORT_TYPE_MAX_CHARS: usize = 64;
pub const REPORT_REASON_MAX_CHARS: usize = 512;
pub const REPORTS_MAX: i64 = 100_000;

/// A pinned message: the message, who pinned it and when (Unix ms).
#[derive(Clone, Debug)]
pub struct PinnedMessage {
    pub msg: Message,
    pub by: String,
    pub at: i64,
}

/// The client state calls, reached as `engine.client_state()`.
pub struct ClientState<'e> {
    engine: &'e Engine,
}

impl Engine {
    pub fn client_state(&self) -> ClientState<'_> {
        ClientState { engine: self }
    }
}

impl ClientState<'_> {
    /// The user must be in the conversation (a chat room: present in it).
    async fn check_member(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        self.engine.conversations().member(app, conv, user).await.map(drop)
    }

    /// A message of the conversation, not recalled, that `user` may see.
    async fn visible_message(&self, app: &App, conv: &Conversation, user: &str, id: i64) -> Result<Message> {
        let m = self.engine.messages().message(app, id).await?;
        if m.conv != conv.id || m.recalled_at.is_some() {
            return Err(Error::MessageNotFound);
        }
        let q = HistoryQuery {
            scope: HistoryScope::ConvAs { conv: conv.id, user: user.to_string() },
            older_than: Some(Bound { timestamp: m.timestamp, id: Some(m.id), inclusive: true }),
            newer_than: Some(Bound { timestamp: m.timestamp, id: Some(m.id), inclusive: true }),
            ascending: true,
            limit: 1,
            mtype: None,
        };
        let seen = self.engine.messages().history(app, &q).await?;
        if seen.iter().any(|x| x.id == m.id) {
            Ok(m)
        } else {
            Err(Error::MessageNotFound)
        }
    }

    // ------------------------------------------------------------------ pinned messages

    /// A member pins (or unpins) a message of the conversation for all its members. At most
    /// [`PINS_MAX`] per conversation (`TooMany`); pinning again renews the pin. Errors: not a
    /// member (`NotMember`), not a message of the conversation the user sees (`MessageNotFound`).
    /// The time of the pin.
    pub async fn pin_message(&self, app: &App, conv: &Conversation, user: &str, msg: i64, pin: bool) -> Result<i64> {
        self.check_member(app, conv, user).await?;
        let now = self.engine.now();
        let key = conv.id.to_string();
        if !pin {
            let f = EntryFilter::collection(ns::MESSAGE_PINS, key).items(vec![msg.to_string()]);
            self.engine.collections().delete(app, &f).await?;
            return Ok(now);
        }
        self.visible_message(app, conv, user, msg).await?;
        let e = Entry::new(ns::MESSAGE_PINS, key, msg.to_string(), json!({"by": user, "at": now}));
        let put = self.engine.collections().put(app, vec![e], PutRule { max_items: Some(PINS_MAX), ..Default::default() }).await?;
        if put == [Put::Full] {
            return Err(Error::too_many("pinned messages", PINS_MAX as usize));
        }
        Ok(now)
    }

    /// A conversation's pinned messages, latest pin first (messages since recalled or deleted are
    /// left out, and forgotten). The user must be a member.
    pub async fn pinned_messages(&self, app: &App, conv: &Conversation, user: &str) -> Result<Vec<PinnedMessage>> {
        self.check_member(app, conv, user).await?;
        let q = EntryQuery::all(EntryFilter::collection(ns::MESSAGE_PINS, conv.id.to_string()));
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for e in self.engine.collections().list(app, &q).await? {
            let Ok(id) = e.item.parse::<i64>() else { continue };
            match self.engine.messages().message(app, id).await {
                Ok(m) if m.conv == conv.id && m.recalled_at.is_none() => {
                    let by = e.value.get("by").and_then(Value::as_str).unwrap_or_default().to_string();
                    let at = e.value.get("at").and_then(Value::as_i64).unwrap_or(e.updated_at);
                    out.push(PinnedMessage { msg: m, by, at });
                }
                Ok(_) | Err(Error::MessageNotFound) => gone.push(e.item),
                Err(x) => return Err(x),
            }
        }
        if !gone.is_empty() {
            let f = EntryFilter::collection(ns::MESSAGE_PINS, conv.id.to_string()).items(gone);
            self.engine.collections().delete(app, &f).await?;
        }
        out.sort_by_key(|p| std::cmp::Reverse((p.at, p.msg.id)));
        Ok(out)
    }

    // ------------------------------------------------------------------ erasing one's history

    /// Erase messages of a conversation from `user`'s own view (the others still see them):
    /// those named that the user sees; the count erased. The user must be a member, or have
    /// been one (a one-to-one conversation always has them).
    pub async fn erase_messages(&self, app: &App, conv: &Conversation, user: &str, ids: &[i64]) -> Result<usize> {
        app.validate_user_id(user)?;
        let mut n = 0;
        for id in ids {
            match self.visible_message(app, conv, user, *id).await {
                Ok(_) => {}
                Err(Error::MessageNotFound) => continue,
                Err(e) => return Err(e),
            }
            let r = MessageRef { id: *id, from: None, timestamp: None };
            match self.engine.messages().hide_message(app, conv, &r, user).await {
                Ok(()) => n += 1,
                Err(Error::MessageNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Erase every message of a conversation sent before `before` (Unix ms, exclusive) from
    /// `user`'s own view; the count erased.
    pub async fn erase_before(&self, app: &App, conv: &Conversation, user: &str, before: i64) -> Result<usize> {
        app.validate_user_id(user)?;
        let mut n = 0;
        let batch = app.limits.history_max_limit.max(1);
        loop {
            let q = HistoryQuery {
                scope: HistoryScope::ConvAs { conv: conv.id, user: user.to_string() },
                older_than: Some(Bound { timestamp: before, id: None, inclusive: false }),
                newer_than: None,
                ascending: false,
                limit: batch,
                mtype: None,
            };
            let got = self.engine.messages().history(app, &q).await?;
            let mut hidden = 0;
            for m in &got {
                let r = MessageRef { id: m.id, from: None, timestamp: None };
                match self.engine.messages().hide_message(app, conv, &r, user).await {
                    Ok(()) => hidden += 1,
                    Err(Error::MessageNotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            n += hidden;
            if (got.len() as i64) < batch || hidden == 0 {
                return Ok(n);
            }
        }
    }

    /// Erase all of a user's one-to-one and group history from their own view and take those
    /// conversations off their list (`hide_conversation`); the conversations touched.
    pub async fn erase_all(&self, app: &App, user: &str) -> Result<Vec<Conversation>> {
        let convs = self.engine.conversations().user_conversations(app, user, i64::from(u16::MAX)).await?;
        let now = self.engine.now();
        for c in &convs {
            self.erase_before(app, c, user, now + 1).await?;
            match self.engine.conversations().hide_conversation(app, c, user).await {
                Ok(()) | Err(Error::NotMember) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(convs)
    }

    // ------------------------------------------------------------------ contact remarks

    /// Set (an empty remark: clear) the remark `owner` keeps on a contact. The other must be
    /// their contact (`NotAllowed`); at most [`REMARK_MAX_CHARS`] characters (`Invalid`).
    pub async fn set_contact_remark(&self, app: &App, owner: &str, contact: &str, remark: &str) -> Result<()> {
        if remark.chars().count() > REMARK_MAX_CHARS {
            return Err(Error::invalid(format!("a remark is at most {REMARK_MAX_CHARS} characters")));
        }
        if !self.engine.social().contacts(app, owner).await?.iter().any(|c| c == contact) {
            return Err(Error::NotAllowed(format!("{contact} is not a contact of {owner}")));
        }
        if remark.is_empty() {
            let f = EntryFilter::collection(ns::CONTACT_REMARKS, owner).items(vec![contact.to_string()]);
            self.engine.collections().delete(app, &f).await?;
        } else {
            let e = Entry::new(ns::CONTACT_REMARKS, owner, contact, json!(remark));
            self.engine.collections().put(app, vec![e], PutRule::default()).await?;
        }
        Ok(())
    }

    /// The remarks `owner` keeps, by contact (contacts without one are absent).
    pub async fn contact_remarks(&self, app: &App, owner: &str) -> Result<HashMap<String, String>> {
        let q = EntryQuery::all(EntryFilter::collection(ns::CONTACT_REMARKS, owner));
        let rows = self.engine.collections().list(app, &q).await?;
        Ok(rows.into_iter().filter_map(|e| Some((e.item, e.value.as_str()?.to_string()))).collect())
    }

    // ------------------------------------------------------------------ group member attributes

    /// The group's role of a user, or `NotMember`.
    async fn group_role(&self, app: &App, group: &Conversation, user: &str) -> Result<Role> {
        let m = self.engine.conversations().member(app, group, user).await?;
        if m.role == Role::Subscriber {
            return Err(Error::NotMember);
        }
        Ok(m.role)
    }

    fn check_group(group: &Conversation) -> Result<()> {
        if group.kind != ConvKind::Normal || group.unique {
            return Err(Error::WrongKind { expected: ConvKind::Normal });
        }
        Ok(())
    }

    /// Set attributes of a group member: the member themself, or the group's owner or an admin
    /// (`NotAllowed` otherwise; a target outside the group: `NotMember`). Keys of 1 to
    /// [`MEMBER_ATTR_KEY_MAX`] bytes, values of at most [`MEMBER_ATTR_VALUE_MAX`] bytes (an empty
    /// value deletes the key), at most [`MEMBER_ATTRS_MAX_BYTES`] per member (`Invalid`). The
    /// member's attributes after the change.
    pub async fn set_member_attributes(
        &self,
        app: &App,
        group: &Conversation,
        by: Option<&str>,
        member: &str,
        attrs: &Map<String, Value>,
    ) -> Result<BTreeMap<String, String>> {
        Self::check_group(group)?;
        if let Some(by) = by {
            let role = self.group_role(app, group, by).await?;
            if by != member && !matches!(role, Role::Owner | Role::Admin) {
                return Err(Error::NotAllowed("only the group's owner or an admin may set another member's attributes".into()));
            }
        }
        self.group_role(app, group, member).await?;
        if attrs.is_empty() {
            return Err(Error::invalid("metaData must name at least one key"));
        }
        let key = group.id.to_string();
        let prev = self.engine.collections().get(app, ns::GROUP_MEMBER_ATTRIBUTES, &key, member).await?;
        let mut now: BTreeMap<String, String> = prev
            .and_then(|e| e.value.as_object().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect();
        for (k, v) in attrs {
            if k.is_empty() || k.len() > MEMBER_ATTR_KEY_MAX {
                return Err(Error::invalid(format!("a member attribute key is 1 to {MEMBER_ATTR_KEY_MAX} bytes")));
            }
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                _ => return Err(Error::invalid("member attribute values are strings")),
            };
            if v.len() > MEMBER_ATTR_VALUE_MAX {
                return Err(Error::invalid(format!("a member attribute value is at most {MEMBER_ATTR_VALUE_MAX} bytes")));
            }
            if v.is_empty() {
                now.remove(k);
            } else {
                now.insert(k.clone(), v);
            }
        }
        let size: usize = now.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MEMBER_ATTRS_MAX_BYTES {
            return Err(Error::invalid(format!("a member's attributes are at most {MEMBER_ATTRS_MAX_BYTES} bytes")));
        }
        if now.is_empty() {
            let f = EntryFilter::collection(ns::GROUP_MEMBER_ATTRIBUTES, key).items(vec![member.to_string()]);
            self.engine.collections().delete(app, &f).await?;
        } else {
            let e = Entry::new(ns::GROUP_MEMBER_ATTRIBUTES, key, member, json!(now));
            self.engine.collections().put(app, vec![e], PutRule::default()).await?;
        }
        Ok(now)
    }

    /// Attributes of some members (1 to [`MEMBER_ATTR_TARGETS_MAX`]), only `keys` when some are
    /// named, read by a member of the group (`reader` None: the app). Targets no longer in the
    /// group have none.
    pub async fn member_attributes(
        &self,
        app: &App,
        group: &Conversation,
        reader: Option<&str>,
        targets: &[String],
        keys: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        Self::check_group(group)?;
        if let Some(r) = reader {
            self.group_role(app, group, r).await?;
        }
        if targets.is_empty() || targets.len() > MEMBER_ATTR_TARGETS_MAX {
            return Err(Error::invalid(format!("targets name 1 to {MEMBER_ATTR_TARGETS_MAX} members")));
        }
        let q = MemberQuery { users: Some(targets.to_vec()), ..Default::default() };
        let members: Vec<String> = self.engine.conversations().list_members(app, group, &q).await?.into_iter().map(|m| m.user).collect();
        let f = EntryFilter::collection(ns::GROUP_MEMBER_ATTRIBUTES, group.id.to_string()).items(targets.to_vec());
        let mut out = BTreeMap::new();
        for e in self.engine.collections().list(app, &EntryQuery::all(f)).await? {
            if !members.contains(&e.item) {
                continue;
            }
            let attrs: BTreeMap<String, String> = e
                .value
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| keys.is_empty() || keys.contains(k))
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                .collect();
            out.insert(e.item, attrs);
        }
        for t in targets {
            out.entry(t.clone()).or_default();
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ reports, read receipts

    /// A user reports a message they can see (of a conversation they are in), for the app's operator (kept in
    /// [`ns::MESSAGE_REPORTS`], at most [`REPORTS_MAX`]; reporting again replaces the report).
    pub async fn report_message(&self, app: &App, reporter: &str, msg: i64, kind: &str, reason: &str) -> Result<()> {
        if kind.trim().is_empty() || kind.chars().count() > REPORT_TYPE_MAX_CHARS {
            return Err(Error::invalid(format!("a report type is 1 to {REPORT_TYPE_MAX_CHARS} characters")));
        }
        if reason.chars().count() > REPORT_REASON_MAX_CHARS {
            return Err(Error::invalid(format!("a report reason is at most {REPORT_REASON_MAX_CHARS} characters")));
        }
        let m = self.engine.messages().message(app, msg).await?;
        let conv = self.engine.conversations().conversation(app, m.conv, None).await.map_err(|_| Error::MessageNotFound)?;
        self.check_member(app, &conv, reporter).await?;
        self.visible_message(app, &conv, reporter, msg).await?;
        let value = json!({
            "msg": m.id.to_string(), "conv": conv.id.to_string(), "from": m.from, "reporter": reporter,
            "type": kind, "reason": reason, "at": self.engine.now(),
        });
        let e = Entry::new(ns::MESSAGE_REPORTS, "", format!("{}:{reporter}", m.id), value);
        let put = self.engine.collections().put(app, vec![e], PutRule { max_items: Some(REPORTS_MAX), ..Default::default() }).await?;
        if put == [Put::Full] {
            return Err(Error::too_many("message reports", REPORTS_MAX as usize));
        }
        Ok(())
    }

    /// The app's message reports, oldest first, after the report `after` (its `seq`).
    pub async fn message_reports(&self, app: &App, after: Option<i64>, limit: i64) -> Result<Vec<Entry>> {
        let q = EntryQuery { filter: EntryFilter::collection(ns::MESSAGE_REPORTS, ""), after, limit, desc: false };
        self.engine.collections().list(app, &q).await
    }

    /// The members of a group (its sender left out) whose read cursor passed one of its
    /// messages, in joining order. The reader must be a member (`NotMember`).
    pub async fn read_by(&self, app: &App, group: &Conversation, reader: Option<&str>, msg: i64) -> Result<Vec<String>> {
        Self::check_group(group)?;
        if let Some(r) = reader {
            self.group_role(app, group, r).await?;
        }
        let m = self.engine.messages().message(app, msg).await?;
        if m.conv != group.id {
            return Err(Error::MessageNotFound);
        }
        let members = self.engine.conversations().list_members(app, group, &MemberQuery::default()).await?;
        let mut read: Vec<_> =
            members.into_iter().filter(|x| x.user != m.from && x.role != Role::Subscriber && x.read_seq >= m.seq).collect();
        read.sort_by_key(|x| (x.joined_at, x.user.clone()));
        Ok(read.into_iter().map(|x| x.user).collect())
    }
}
