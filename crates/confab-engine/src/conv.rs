//! Conversations, members, roles, speech mutes, blocklists and subscriptions.
//!
//! Every change runs as an [`Actor`]: the app's server (LeanCloud's master key: admin rights,
//! all or nothing) or a user (the rules below decide, per user, what is allowed).

use std::collections::{HashMap, HashSet};

pub use crate::actor::Actor;

use md5::{Digest, Md5};
use serde_json::{Map, Value};

use crate::bus::{Bus, Event};
use std::sync::Arc;

use crate::commands::{AttrOp, ConvUpdate, SettingsChange};
use crate::error::{Error, Result};
use crate::hooks::{After, Before, Verdict};
use crate::ids::Stamps;
use crate::model::*;
use crate::presence::Presence;
use crate::query::*;
use crate::quotas::Quotas;
use crate::rooms::Rooms;
use crate::store::{ConvPatch, MemberPatch, Store};
use crate::teller::Teller;
use crate::users::Users;

pub mod group_requests;
mod groups;
pub use groups::GroupCall;

/// What a change to several users did: who it applied to and who was refused, and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub done: Vec<String>,
    pub refused: Vec<(String, Error)>,
}

/// What `create_conversation` needs.
#[derive(Clone, Debug, Default)]
pub struct NewConversation {
    /// Who creates it: a user (the app's hooks are asked first) or the app's server.
    pub actor: Actor,
    pub kind: Option<ConvKind>,
    pub name: Option<String>,
    pub creator: Option<String>,
    /// First members; duplicates are dropped. The creator becomes owner if listed.
    pub members: Vec<String>,
    /// One conversation per exact member set (normal conversations only).
    pub unique: bool,
    pub attrs: Attrs,
    pub settings: ConvSettings,
    /// Time to live of a temporary conversation, in seconds.
    pub ttl_secs: Option<i64>,
    /// A thread's group and the group message it hangs from (threads only).
    pub parent: Option<(i64, i64)>,
    /// Whether it counts against the app's plan quotas (groups or chat rooms per app, groups
    /// per member: `quotas.rs`), checked by the store in the insert's transaction.
    pub quotas: Quotas,
}

/// Temporary conversations: default and longest time to live, and member cap.
pub const TEMP_TTL_DEFAULT: i64 = 86_400;
pub const TEMP_TTL_MAX: i64 = 30 * 86_400;
pub const TEMP_MAX_MEMBERS: i64 = 10;

/// The id of the unique conversation of a member set: md5 of the sorted ids, concatenated
/// (LeanCloud's `uniqueId`; `md5("BillGatesSteveJobs")` is the documented example's id).
pub fn unique_id(members: &[String]) -> String {
    let mut sorted: Vec<&str> = members.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    hex::encode(Md5::digest(sorted.concat().as_bytes()))
}

pub fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(id.clone())).collect()
}

/// The attributes a patch sets, as `{"dotted.key": value}` (for the members' update notice).
fn patch_summary(patch: &ConvUpdate) -> Value {
    let mut m = Map::new();
    if let Some(n) = &patch.name {
        m.insert("name".into(), n.clone().map_or(Value::Null, Value::String));
    }
    for (path, op) in &patch.attrs {
        let v = match op {
            AttrOp::Set(v) => v.clone(),
            _ => Value::Null,
        };
        m.insert(path.join("."), v);
    }
    Value::Object(m)
}

/// The settings a change sets that members hear of as `ConvChange::Settings` (the announcement
/// and mute-all have changes of their own; disabling is not told), by name; None if none.
fn settings_summary(s: &SettingsChange) -> Option<Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("description", s.description.clone().map(Value::from));
    put("avatar", s.avatar.clone().map(Value::from));
    put("max_members", s.max_members.map(Value::from));
    put("public", s.public.map(Value::from));
    put("approval", s.approval.map(Value::from));
    put("members_invite", s.members_invite.map(Value::from));
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Conversations of every kind, their members, roles, speech mutes, blocklists and subscribers.
/// It holds the `Store` (conversations, members, notices), `Presence` (a chat room's members are
/// who is in it), the `Bus` (members hear of changes), `Stamps`, a `Teller` (the app's hooks are
/// asked before a user's change and told after), and the services it calls: `Users` (members
/// exist as soon as they are named) and `Rooms` (a chat room's attributes go with its members).
pub struct Conversations {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) stamps: Stamps,
    pub(crate) teller: Teller,
    pub(crate) users: Arc<Users>,
    pub(crate) rooms: Arc<Rooms>,
}

impl Conversations {
    fn now(&self) -> i64 {
        self.stamps.now()
    }

    fn max_members(&self, app: &App, conv: &Conversation) -> i64 {
        conv.settings.max_members.unwrap_or(app.limits.conversation_max_members)
    }

    /// Tell a conversation's members about a change, and keep the notice for those offline.
    async fn announce(
        &self,
        app: &App,
        conv: &Conversation,
        by: Option<String>,
        change: ConvChange,
        recipients: Vec<String>,
    ) -> Result<()> {
        let at = self.now();
        // notices are what LeanCloud's clients catch up with: changes it has no words for are
        // told live only
        let kept = matches!(
            change,
            ConvChange::Joined { .. }
                | ConvChange::Left { .. }
                | ConvChange::Updated { .. }
                | ConvChange::Muted { .. }
                | ConvChange::Unmuted { .. }
                | ConvChange::Blocked { .. }
                | ConvChange::Unblocked { .. }
                | ConvChange::RoleChanged { .. }
        );
        if kept && conv.kind != ConvKind::Chatroom && !recipients.is_empty() {
            let notice = ConvNotice {
                id: self.stamps.next_id(),
                conv: conv.id,
                kind: conv.kind,
                foreign_id: conv.foreign_id.clone(),
                by: by.clone(),
                change: change.clone(),
                at,
            };
            self.store.add_notices(app.id, &recipients, &notice).await?;
        }
        self.bus.deliver(Event::Conv { app: app.id, conv: ConvRef::of(conv), by, change, recipients, at });
        Ok(())
    }

    pub async fn create_conversation(&self, app: &App, new: NewConversation) -> Result<(Conversation, bool)> {
        let kind = new.kind.unwrap_or(ConvKind::Normal);
        let members = dedup(new.members);
        let now = self.now();
        let mut settings = new.settings;
        let mut expires_at = None;
        if kind == ConvKind::Temporary {
            let ttl = new.ttl_secs.unwrap_or(TEMP_TTL_DEFAULT);
            if !(1..=TEMP_TTL_MAX).contains(&ttl) {
                return Err(Error::invalid(format!("a temporary conversation lives 1 to {TEMP_TTL_MAX} seconds")));
            }
            expires_at = Some(now + ttl * 1000);
            settings.max_members = Some(settings.max_members.unwrap_or(TEMP_MAX_MEMBERS).min(TEMP_MAX_MEMBERS));
        }
        let mut conv = Conversation {
            app: app.id,
            id: self.stamps.next_id(),
            kind,
            name: new.name,
            creator: new.creator,
            unique: new.unique && kind == ConvKind::Normal,
            unique_id: None,
            attrs: new.attrs,
            settings,
            parent: new.parent.filter(|_| kind == ConvKind::Thread),
            created_at: now,
            updated_at: now,
            last_message_at: None,
            last_seq: 0,
            expires_at,
            foreign_id: None,
        };
        let max = self.max_members(app, &conv);
        if kind != ConvKind::Chatroom && members.len() as i64 > max {
            return Err(Error::ConversationFull { max });
        }
        let mut everyone = members.clone();
        everyone.extend(conv.creator.iter().cloned());
        let everyone = dedup(everyone);
        self.users.ensure_users(app, &everyone).await?;
        if conv.unique {
            conv.unique_id = Some(unique_id(&members));
        }
        let actor = new.actor;
        if self.teller.ask(app, actor.user().map(|by| Before::Start { conv: &conv, members: &everyone, by })).await? == Verdict::Vanish {
            return Ok((conv, false));
        }
        // a chat room's membership is presence: its first members are in the room; only the
        // creator's standing (owner) is stored
        let rows: Vec<Member> = if kind == ConvKind::Chatroom {
            conv.creator.iter().map(|u| Member::new(conv.id, u.clone(), Role::Owner, now)).collect()
        } else {
            members
                .iter()
                .map(|u| {
                    let role = if conv.creator.as_deref() == Some(u) { Role::Owner } else { Role::Member };
                    Member::new(conv.id, u.clone(), role, now)
                })
                .collect()
        };
        let quotas = crate::quotas::conv_quotas(app, &conv, new.quotas);
        let (conv, created) = self.store.create_conversation_within(&conv, &rows, quotas).await?;
        if created {
            self.teller.tell(app, After::Started { conv: &conv, members: &everyone, by: &actor }).await;
            if kind == ConvKind::Chatroom {
                // the room is made: presence out of reach does not undo it (an error would have the
                // caller make another); whoever is not in it joins it as usual
                for u in &members {
                    if let Err(e) = self.presence.room_join(app.id, conv.id, u, self.now()).await {
                        tracing::warn!(app = app.id, conv = conv.id, error = %e, "presence out of reach: a new chat room's member did not join");
                    }
                }
            } else {
                let invited: Vec<String> = members.into_iter().filter(|m| conv.creator.as_ref() != Some(m)).collect();
                if !invited.is_empty() {
                    self.announce(app, &conv, conv.creator.clone(), ConvChange::Joined { members: invited.clone() }, invited).await?;
                }
            }
        }
        Ok((conv, created))
    }

    /// The one-to-one conversation of two users (made on first use): the unique conversation of
    /// that member pair, so LeanCloud's `unique: true` conversation of the two is the same one.
    pub async fn direct_conversation(&self, app: &App, a: &str, b: &str) -> Result<Conversation> {
        // a read finds it after the first time; only a new pair takes the writer (whose unique
        // index settles two first messages racing)
        if let Some(c) = self.find_direct_conversation(app, a, b).await? {
            return Ok(c);
        }
        let new = NewConversation {
            creator: Some(a.to_string()),
            members: vec![a.to_string(), b.to_string()],
            unique: true,
            ..Default::default()
        };
        Ok(self.create_conversation(app, new).await?.0)
    }

    /// The one-to-one conversation of two users, if they have one.
    pub async fn find_direct_conversation(&self, app: &App, a: &str, b: &str) -> Result<Option<Conversation>> {
        let found = self.store.conversation_by_unique(app.id, &unique_id(&[a.to_string(), b.to_string()])).await?;
        Ok(found.filter(|c| c.kind == ConvKind::Normal))
    }

    /// Whether a conversation is one-to-one: created unique for two members and still holding
    /// two (`members` are its members).
    pub fn is_direct(conv: &Conversation, members: &[Member]) -> bool {
        conv.kind == ConvKind::Normal && conv.unique && members.len() == 2
    }

    /// A user removes a conversation from their own list: it is hidden and nothing in it is
    /// unread; others are not affected, and new messages show it again.
    pub async fn hide_conversation(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        self.member(app, conv, user).await?;
        let patch = MemberPatch { hidden: Some(true), read_seq: Some(conv.last_seq), ..Default::default() };
        self.store.update_members(app.id, conv.id, &[user.to_string()], &patch).await?;
        Ok(())
    }

    /// The conversation, checked to exist (and not to have expired) and, when `kind` is given,
    /// to be of that kind.
    /// How a conversation is named to clients (its kind, and the id it had elsewhere), for a
    /// gateway encoding an event of app `app`; None when it is gone.
    pub async fn conversation_ref(&self, app: i64, id: i64) -> Result<Option<ConvRef>> {
        Ok(self.store.get_conversation(app, id).await?.map(|c| ConvRef::of(&c)))
    }

    pub async fn conversation(&self, app: &App, id: i64, kind: Option<ConvKind>) -> Result<Conversation> {
        let conv = self.store.get_conversation(app.id, id).await?.ok_or(Error::ConversationNotFound)?;
        if conv.expired(self.now()) {
            return Err(Error::ConversationNotFound);
        }
        match kind {
            Some(k) if k != conv.kind => Err(Error::WrongKind { expected: k }),
            _ => Ok(conv),
        }
    }

    pub async fn query_conversations(&self, app: &App, q: &ConvQuery) -> Result<(Vec<Conversation>, Option<i64>)> {
        if q.limit < 0 || q.skip < 0 {
            return Err(Error::invalid("skip and limit must not be negative"));
        }
        q.filter.validate()?;
        self.store.query_conversations(app.id, q).await
    }

    /// A user's membership, or `NotMember`.
    /// A member's row. In a chat room, where membership is presence, a user's standing (owner,
    /// admin, mute, allowlist) is a stored row that outlives their presence; a user in the room
    /// without one is a plain member.
    pub async fn member(&self, app: &App, conv: &Conversation, user: &str) -> Result<Member> {
        match self.store.get_member(app.id, conv.id, user).await? {
            Some(m) => Ok(m),
            None if conv.kind == ConvKind::Chatroom && self.presence.in_room(app.id, conv.id, user, self.now()).await? => {
                Ok(Member::new(conv.id, user, Role::Member, 0))
            }
            None => Err(Error::NotMember),
        }
    }

    /// Chat rooms: give the users in the room who have no stored standing a plain member row, so
    /// that a role, mute or allowlist change has a row to change.
    async fn stand_in_room(&self, app: &App, conv: &Conversation, users: &[String]) -> Result<()> {
        if conv.kind != ConvKind::Chatroom {
            return Ok(());
        }
        let q = MemberQuery { users: Some(users.to_vec()), ..Default::default() };
        let known: HashSet<String> = self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| m.user).collect();
        let now = self.now();
        let mut rows = Vec::new();
        for u in users.iter().filter(|u| !known.contains(*u)) {
            if self.presence.in_room(app.id, conv.id, u, self.now()).await? {
                rows.push(Member::new(conv.id, u.clone(), Role::Member, now));
            }
        }
        if !rows.is_empty() {
            self.store.add_members(app.id, conv.id, &rows, None, now).await?;
        }
        Ok(())
    }

    /// Users may act on a conversation they belong to (chat rooms: that they are in, or whose
    /// owner or admin they are: that standing outlives presence and is the acting member).
    async fn check_belongs(&self, app: &App, conv: &Conversation, actor: &Actor) -> Result<Option<Member>> {
        let Some(u) = actor.user() else { return Ok(None) };
        if conv.kind == ConvKind::Chatroom {
            if let Some(m) = self.store.get_member(app.id, conv.id, u).await?.filter(|m| matches!(m.role, Role::Owner | Role::Admin)) {
                return Ok(Some(m));
            }
            return if self.presence.in_room(app.id, conv.id, u, self.now()).await? { Ok(None) } else { Err(Error::NotMember) };
        }
        Ok(Some(self.member(app, conv, u).await?))
    }

    /// Owner or admin, for changes that need a role (a conversation without an owner lets any
    /// member act, as conversations made by the app's server have none).
    async fn check_manager(&self, app: &App, conv: &Conversation, actor: &Actor) -> Result<Option<Member>> {
        let Some(m) = self.check_belongs(app, conv, actor).await? else { return Ok(None) };
        if matches!(m.role, Role::Owner | Role::Admin) || !self.has_owner(app, conv).await? {
            return Ok(Some(m));
        }
        Err(Error::NotAllowed("only the owner or a manager may do this".into()))
    }

    async fn has_owner(&self, app: &App, conv: &Conversation) -> Result<bool> {
        Ok(self.store.count_members(app.id, conv.id, Some(&[Role::Owner])).await? > 0)
    }

    pub async fn update_conversation(
        &self,
        app: &App,
        id: i64,
        kind: Option<ConvKind>,
        patch: &ConvUpdate,
        actor: &Actor,
    ) -> Result<Conversation> {
        let conv = self.conversation(app, id, kind).await?;
        self.check_belongs(app, &conv, actor).await?;
        let asked_for = !patch.is_empty();
        let mut patch = ConvUpdate { settings: patch.settings.changes_from(&conv.settings), ..patch.clone() };
        if asked_for && patch.is_empty() {
            // every setting it names holds that value already: nothing changes
            return Ok(conv);
        }
        let asked = actor.user().is_some() && !patch.is_empty() && self.teller.hooks().active(app);
        if asked
            && self.teller.ask(app, actor.user().map(|by| Before::Update { conv: &conv, patch: &mut patch, by })).await? == Verdict::Vanish
        {
            return Ok(conv);
        }
        let patch = &patch;
        let updated = self.store.update_conversation(app.id, id, &ConvPatch::from(patch), self.now()).await?;
        if !patch.is_empty() {
            // the name and custom fields as `Updated` (not for a chat room), the announcement,
            // mute-all and the other settings each as their own change
            let mut changes = vec![];
            if conv.kind != ConvKind::Chatroom && (patch.name.is_some() || !patch.attrs.is_empty()) {
                changes.push(ConvChange::Updated { attrs: patch_summary(patch) });
            }
            if let Some(text) = &patch.settings.announcement {
                changes.push(ConvChange::Announcement { text: text.clone() });
            }
            if let Some(on) = patch.settings.mute_all {
                changes.push(ConvChange::MuteAll { on });
            }
            if let Some(changes_) = settings_summary(&patch.settings) {
                changes.push(ConvChange::Settings { changes: changes_ });
            }
            if !changes.is_empty() {
                let mut recipients = self.members(app, &conv).await?;
                recipients.retain(|m| Some(m.as_str()) != actor.user());
                for change in changes {
                    self.announce(app, &conv, actor.user().map(str::to_string), change, recipients.clone()).await?;
                }
            }
        }
        if !patch.is_empty() {
            self.teller.tell(app, After::Updated { conv: &updated, old: &conv, by: actor }).await;
        }
        Ok(updated)
    }

    /// Delete a conversation: the app's server, or its owner.
    pub async fn delete_conversation(&self, app: &App, id: i64, kind: Option<ConvKind>, actor: &Actor) -> Result<()> {
        let conv = self.conversation(app, id, kind).await?;
        if let Some(u) = actor.user() {
            if self.member(app, &conv, u).await?.role != Role::Owner {
                return Err(Error::NotAllowed("only the owner may delete the conversation".into()));
            }
        }
        // a group's members and those in a chat room hear that it is gone (online only: nothing
        // of it is left to catch up with); a one-to-one conversation's do not
        let told = match conv.kind {
            ConvKind::Normal if !conv.unique => self.members(app, &conv).await?,
            ConvKind::Chatroom => self.members(app, &conv).await?,
            _ => vec![],
        };
        if conv.kind == ConvKind::Normal {
            self.forget_group_requests(app, &conv).await?;
        }
        self.store.delete_conversation(app.id, id).await?;
        if !told.is_empty() {
            let by = actor.user().map(str::to_string);
            self.bus.deliver(Event::Conv {
                app: app.id,
                conv: ConvRef::of(&conv),
                by,
                change: ConvChange::Destroyed,
                recipients: told,
                at: self.now(),
            });
        }
        self.teller.tell(app, After::Deleted { conv: &conv, by: actor }).await;
        match conv.kind {
            ConvKind::Chatroom => self.rooms.forget_room(app, &conv).await?,
            // a group's threads go with it
            ConvKind::Normal => {
                let q = ConvQuery {
                    kinds: Some(vec![ConvKind::Thread]),
                    filter: Filter::Cond(Field::ParentConv, Op::Eq(Scalar::Int(id))),
                    limit: i64::MAX,
                    ..Default::default()
                };
                for t in self.query_conversations(app, &q).await?.0 {
                    if self.store.delete_conversation(app.id, t.id).await? {
                        self.teller.tell(app, After::Deleted { conv: &t, by: actor }).await;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Every member (owners, admins, members) of a conversation, in the order they joined; for a
    /// chat room, who is present.
    pub async fn members(&self, app: &App, conv: &Conversation) -> Result<Vec<String>> {
        if conv.kind == ConvKind::Chatroom {
            return self.presence.room_members(app.id, conv.id, usize::MAX, self.now()).await;
        }
        Ok(self.store.member_lists(app.id, &[conv.id]).await?.into_iter().map(|m| m.user).collect())
    }

    /// The members of several conversations, by conversation, in the order they joined.
    pub async fn members_of(&self, app: &App, convs: &[i64]) -> Result<HashMap<i64, Vec<Member>>> {
        let mut out: HashMap<i64, Vec<Member>> = HashMap::new();
        for m in self.store.member_lists(app.id, convs).await? {
            out.entry(m.conv).or_default().push(m);
        }
        Ok(out)
    }

    /// Members, or for a chat room the number present.
    pub async fn member_count(&self, app: &App, conv: &Conversation) -> Result<i64> {
        if conv.kind == ConvKind::Chatroom {
            return Ok(self.presence.room_count(app.id, conv.id, self.now()).await? as i64);
        }
        self.store.count_members(app.id, conv.id, None).await
    }

    /// Add members. Users may add others to a conversation they belong to, or join one
    /// themselves — but not a unique one (a one-to-one conversation is its two members' own) nor
    /// one that approves its members; blocked users are refused. The app's server adds all or none.
    pub async fn add_members(&self, app: &App, conv: &Conversation, users: Vec<String>, actor: &Actor) -> Result<Outcome> {
        self.add_members_with(app, conv, users, actor, Quotas::Uncounted).await
    }

    /// `add_members`; counted, a group refuses (`OverQuota(GroupsPerUser)`) a user already in as
    /// many groups as the app's plan allows, checked by the store in the insert's transaction.
    pub async fn add_members_with(
        &self,
        app: &App,
        conv: &Conversation,
        users: Vec<String>,
        actor: &Actor,
        quotas: Quotas,
    ) -> Result<Outcome> {
        if conv.kind == ConvKind::Service {
            return Err(Error::WrongKind { expected: ConvKind::Normal });
        }
        let users = dedup(users);
        if users.is_empty() {
            return Err(Error::invalid("client_ids must name at least one client"));
        }
        self.users.ensure_users(app, &users).await?;
        let joining_self = actor.user().is_some_and(|u| users.len() == 1 && users[0] == u);
        if joining_self && (conv.unique || conv.settings.approval) && self.check_belongs(app, conv, actor).await.is_err() {
            return Err(Error::NotAllowed("this conversation takes new members by invitation only".into()));
        }
        if !joining_self {
            self.check_belongs(app, conv, actor).await?;
        }
        let blocked: HashSet<String> =
            self.store.blocked_users(app.id, conv.id, Some(&users), None, users.len() as i64).await?.into_iter().collect();
        if !blocked.is_empty() && (actor == &Actor::Admin || joining_self) {
            return Err(Error::Blocked);
        }
        if let (ConvKind::Thread, Some((group, _))) = (conv.kind, conv.parent) {
            self.check_in_group(app, group, &users).await?;
        }
        let mut out = Outcome::default();
        let (allowed, refused): (Vec<String>, Vec<String>) = users.into_iter().partition(|u| !blocked.contains(u));
        out.refused = refused.into_iter().map(|u| (u, Error::Blocked)).collect();
        if !allowed.is_empty()
            && self.teller.ask(app, actor.user().map(|by| Before::Add { conv, members: &allowed, by })).await? == Verdict::Vanish
        {
            out.done = allowed;
            return Ok(out);
        }
        if conv.kind == ConvKind::Chatroom {
            // a room with a member cap of its own (Easemob `maxusers`) holds at most that many
            if let Some(max) = conv.settings.max_members {
                let present = self.presence.room_roster(app.id, conv.id, self.now()).await?;
                let new = allowed.iter().filter(|u| !present.contains(u)).count();
                if (present.len() + new) as i64 > max {
                    return Err(Error::ConversationFull { max });
                }
            }
            let mut entered = vec![];
            for u in &allowed {
                if !self.presence.in_room(app.id, conv.id, u, self.now()).await? {
                    entered.push(u.clone());
                }
                self.presence.room_join(app.id, conv.id, u, self.now()).await?;
            }
            self.teller.tell(app, After::Added { conv, members: &allowed, by: actor }).await;
            // those in the room hear who came in (Easemob's PRESENCE)
            if !entered.is_empty() {
                let recipients = self.members(app, conv).await?;
                self.announce(app, conv, actor.user().map(str::to_string), ConvChange::Joined { members: entered }, recipients).await?;
            }
            out.done = allowed;
            return Ok(out);
        }
        let now = self.now();
        let rows: Vec<Member> = allowed.iter().map(|u| Member::new(conv.id, u.clone(), Role::Member, now)).collect();
        let per_member = crate::quotas::member_quota(app, conv, quotas);
        let added = self.store.add_members_within(app.id, conv.id, &rows, Some(self.max_members(app, conv)), per_member, now).await?;
        if !added.is_empty() {
            let recipients = self.members(app, conv).await?;
            self.announce(app, conv, actor.user().map(str::to_string), ConvChange::Joined { members: added.clone() }, recipients).await?;
            self.teller.tell(app, After::Added { conv, members: &added, by: actor }).await;
        }
        // those already members count as done: the call is idempotent
        out.done = allowed;
        Ok(out)
    }

    /// Remove members. Anyone may leave; removing others takes the owner or a manager (in a
    /// conversation that has an owner).
    pub async fn remove_members(&self, app: &App, conv: &Conversation, users: Vec<String>, actor: &Actor) -> Result<Outcome> {
        let users = dedup(users);
        if users.is_empty() {
            return Err(Error::invalid("client_ids must name at least one client"));
        }
        for u in &users {
            app.validate_user_id(u)?;
        }
        let leaving_self = actor.user().is_some_and(|u| users.len() == 1 && users[0] == u);
        if conv.kind == ConvKind::Chatroom {
            if !leaving_self {
                // a room's manager cannot remove its owner or another manager (as in a group)
                if let Some(me) = self.check_belongs(app, conv, actor).await?.filter(|m| m.role == Role::Admin) {
                    let q = MemberQuery { users: Some(users.clone()), roles: Some(vec![Role::Owner, Role::Admin]), ..Default::default() };
                    if self.store.list_members(app.id, conv.id, &q).await?.iter().any(|m| m.user != me.user) {
                        return Err(Error::NotAllowed("a manager cannot remove the owner or a manager".into()));
                    }
                }
                if self.teller.ask(app, actor.user().map(|by| Before::Remove { conv, members: &users, by })).await? == Verdict::Vanish {
                    return Ok(Outcome { done: users, refused: vec![] });
                }
            }
            let mut gone = vec![];
            for u in &users {
                if self.presence.in_room(app.id, conv.id, u, self.now()).await? {
                    gone.push(u.clone());
                }
                self.presence.room_leave(app.id, conv.id, u).await?;
            }
            self.rooms.forget_room_attributes(app, conv, &users).await?;
            self.teller.tell(app, After::Removed { conv, members: &users, by: actor }).await;
            // those in the room, and those who left it, hear who went (Easemob's ABSENCE, KICK)
            if !gone.is_empty() {
                let mut recipients = self.members(app, conv).await?;
                recipients.extend(gone.iter().cloned());
                self.announce(app, conv, actor.user().map(str::to_string), ConvChange::Left { members: gone }, recipients).await?;
            }
            return Ok(Outcome { done: users, refused: vec![] });
        }
        let mut refused = vec![];
        let mut targets = users.clone();
        if !leaving_self {
            if let Some(me) = self.check_manager(app, conv, actor).await? {
                // a manager cannot remove the owner or another manager
                if me.role != Role::Owner {
                    let q = MemberQuery { users: Some(users.clone()), roles: Some(vec![Role::Owner, Role::Admin]), ..Default::default() };
                    let senior: HashSet<String> = self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| m.user).collect();
                    targets.retain(|u| !senior.contains(u) || *u == me.user);
                    refused = senior
                        .into_iter()
                        .filter(|u| *u != me.user)
                        .map(|u| (u, Error::NotAllowed("a manager cannot remove the owner or a manager".into())))
                        .collect();
                }
            }
        }
        if !leaving_self
            && !targets.is_empty()
            && self.teller.ask(app, actor.user().map(|by| Before::Remove { conv, members: &targets, by })).await? == Verdict::Vanish
        {
            return Ok(Outcome { done: targets, refused });
        }
        let removed = self.store.remove_members(app.id, conv.id, &targets, self.now()).await?;
        if !removed.is_empty() {
            let mut recipients = self.members(app, conv).await?;
            recipients.extend(removed.iter().cloned());
            self.announce(app, conv, actor.user().map(str::to_string), ConvChange::Left { members: removed.clone() }, recipients).await?;
            self.teller.tell(app, After::Removed { conv, members: &removed, by: actor }).await;
        }
        targets.retain(|u| !refused.iter().any(|(r, _)| r == u));
        Ok(Outcome { done: targets, refused })
    }

    /// Apply a patch to members; every listed user must be a member (else `NotMember`, and
    /// nothing changes).
    async fn update_members(&self, app: &App, conv: &Conversation, users: Vec<String>, patch: &MemberPatch) -> Result<()> {
        let users = dedup(users);
        if users.is_empty() {
            return Err(Error::invalid("client_ids must name at least one client"));
        }
        for u in &users {
            app.validate_user_id(u)?;
        }
        self.stand_in_room(app, conv, &users).await?;
        let q = MemberQuery { users: Some(users.clone()), roles: Some(vec![Role::Owner, Role::Admin, Role::Member]), ..Default::default() };
        let present: HashSet<String> = self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| m.user).collect();
        if users.iter().any(|u| !present.contains(u)) {
            return Err(Error::NotMember);
        }
        self.store.update_members(app.id, conv.id, &users, patch).await?;
        self.store.update_conversation(app.id, conv.id, &ConvPatch::default(), self.now()).await?;
        Ok(())
    }

    /// Members turn the conversation's notifications off or on: a user for themself (the app's
    /// hooks are asked), the app's server for any members.
    pub async fn set_notifications(&self, app: &App, conv: &Conversation, users: Vec<String>, off: bool, actor: &Actor) -> Result<()> {
        if conv.kind == ConvKind::Chatroom {
            return Ok(());
        }
        let mut off = off;
        if let Some(by) = actor.user() {
            if users.iter().any(|u| u != by) {
                return Err(Error::NotAllowed("a user turns only their own notifications off or on".into()));
            }
            if self.teller.ask(app, Some(Before::Mute { conv, off: &mut off, by })).await? == Verdict::Vanish {
                return Ok(());
            }
        }
        self.update_members(app, conv, users, &MemberPatch { notifications_off: Some(off), ..Default::default() }).await
    }

    /// Allowlist members (they may speak while everyone is muted) or take them off the list: the
    /// app's server, or the owner or a manager. The members (chat rooms: those in the room) hear
    /// of it, from `actor`.
    pub async fn set_allowlisted(&self, app: &App, conv: &Conversation, users: Vec<String>, on: bool, actor: &Actor) -> Result<()> {
        self.check_manager(app, conv, actor).await?;
        let users = dedup(users);
        self.update_members(app, conv, users.clone(), &MemberPatch { allowlisted: Some(on), ..Default::default() }).await?;
        let mut recipients = self.members(app, conv).await?;
        recipients.extend(users.iter().filter(|u| !recipients.contains(u)).cloned().collect::<Vec<_>>());
        let change = if on { ConvChange::Allowlisted { members: users } } else { ConvChange::Unallowlisted { members: users } };
        self.announce(app, conv, actor.user().map(str::to_string), change, recipients).await
    }

    /// Members with notifications turned off (LeanCloud `mu`).
    pub async fn notifications_off(&self, app: &App, conv: &Conversation) -> Result<Vec<String>> {
        let q = MemberQuery { notifications_off: true, ..Default::default() };
        Ok(self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| m.user).collect())
    }

    /// Users who are not all members of the group: `NotMember`.
    pub(crate) async fn check_in_group(&self, app: &App, group: i64, users: &[String]) -> Result<()> {
        let q =
            MemberQuery { users: Some(users.to_vec()), roles: Some(vec![Role::Owner, Role::Admin, Role::Member]), ..Default::default() };
        let in_group: HashSet<String> = self.store.list_members(app.id, group, &q).await?.into_iter().map(|m| m.user).collect();
        if users.iter().all(|u| in_group.contains(u)) {
            Ok(())
        } else {
            Err(Error::NotMember)
        }
    }

    /// Targets of a role-protected change to members: they must be members, never the owner, and
    /// a manager cannot act on another manager.
    async fn split_targets(&self, app: &App, conv: &Conversation, me: Option<&Member>, users: &[String]) -> Result<Outcome> {
        self.stand_in_room(app, conv, users).await?;
        let q = MemberQuery { users: Some(users.to_vec()), ..Default::default() };
        let rows: HashMap<String, Member> =
            self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| (m.user.clone(), m)).collect();
        let mut out = Outcome::default();
        for u in users {
            match rows.get(u) {
                None => out.refused.push((u.clone(), Error::NotMember)),
                Some(m) if m.role == Role::Owner && me.is_some() => {
                    out.refused.push((u.clone(), Error::NotAllowed("the owner cannot be changed by others".into())))
                }
                Some(m) if m.role == Role::Admin && me.is_some_and(|me| me.role == Role::Admin && me.user != *u) => {
                    out.refused.push((u.clone(), Error::NotAllowed("a manager cannot change another manager".into())))
                }
                Some(_) => out.done.push(u.clone()),
            }
        }
        Ok(out)
    }

    /// Speech-mute members until `until` (None: forever), or lift it (`mute` false).
    pub async fn mute_members(
        &self,
        app: &App,
        conv: &Conversation,
        users: Vec<String>,
        mute: bool,
        until: Option<i64>,
        actor: &Actor,
    ) -> Result<Outcome> {
        let me = self.check_manager(app, conv, actor).await?;
        let users = dedup(users);
        let out = self.split_targets(app, conv, me.as_ref(), &users).await?;
        if !out.done.is_empty() {
            let muted_until = if mute { Some(until.unwrap_or(i64::MAX)) } else { None };
            self.store
                .update_members(app.id, conv.id, &out.done, &MemberPatch { muted_until: Some(muted_until), ..Default::default() })
                .await?;
            let change =
                if mute { ConvChange::Muted { members: out.done.clone() } } else { ConvChange::Unmuted { members: out.done.clone() } };
            let recipients = self.members(app, conv).await?;
            self.announce(app, conv, actor.user().map(str::to_string), change.clone(), recipients).await?;
            self.teller.tell(app, After::Changed { conv, change: &change, by: actor }).await;
        }
        Ok(out)
    }

    /// Speech-muted members by user id, after `after`.
    pub async fn muted_members(&self, app: &App, conv: &Conversation, after: Option<String>, limit: i64) -> Result<Vec<String>> {
        let q = MemberQuery { muted_at: Some(self.now()), after, limit: Some(limit), ..Default::default() };
        Ok(self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| m.user).collect())
    }

    /// Block users: they leave the conversation and cannot come back until unblocked.
    pub async fn block_members(&self, app: &App, conv: &Conversation, users: Vec<String>, actor: &Actor) -> Result<Outcome> {
        let me = self.check_manager(app, conv, actor).await?;
        let users = dedup(users);
        self.users.ensure_users(app, &users).await?;
        let mut out = self.split_targets(app, conv, me.as_ref(), &users).await?;
        let removed = out.done.clone();
        // non-members can be blocked too: they will not be able to join
        let not_members: Vec<String> = out.refused.iter().filter(|(_, e)| *e == Error::NotMember).map(|(u, _)| u.clone()).collect();
        out.refused.retain(|(_, e)| *e != Error::NotMember);
        out.done.extend(not_members);
        if !out.done.is_empty() {
            let blocked = self.store.block_users(app.id, conv.id, &out.done, self.now()).await?;
            if conv.kind == ConvKind::Chatroom {
                for u in &out.done {
                    self.presence.room_leave(app.id, conv.id, u).await?;
                }
                self.rooms.forget_room_attributes(app, conv, &out.done).await?;
            }
            if !blocked.is_empty() {
                let by = actor.user().map(str::to_string);
                let mut recipients = self.members(app, conv).await?;
                recipients.extend(blocked.iter().cloned());
                // members who were blocked left the conversation: everyone's member list says so
                if !removed.is_empty() {
                    self.announce(app, conv, by.clone(), ConvChange::Left { members: removed }, recipients.clone()).await?;
                }
                let change = ConvChange::Blocked { members: blocked };
                self.announce(app, conv, by, change.clone(), recipients).await?;
                self.teller.tell(app, After::Changed { conv, change: &change, by: actor }).await;
            }
        }
        Ok(out)
    }

    pub async fn unblock_members(&self, app: &App, conv: &Conversation, users: Vec<String>, actor: &Actor) -> Result<Outcome> {
        self.check_manager(app, conv, actor).await?;
        let users = dedup(users);
        let unblocked = self.store.unblock_users(app.id, conv.id, &users).await?;
        if !unblocked.is_empty() {
            let mut recipients = self.members(app, conv).await?;
            recipients.extend(unblocked.iter().cloned());
            let change = ConvChange::Unblocked { members: unblocked };
            self.announce(app, conv, actor.user().map(str::to_string), change.clone(), recipients).await?;
            self.teller.tell(app, After::Changed { conv, change: &change, by: actor }).await;
        }
        Ok(Outcome { done: users, refused: vec![] })
    }

    pub async fn blocked_members(&self, app: &App, conv: &Conversation, after: Option<&str>, limit: i64) -> Result<Vec<String>> {
        self.store.blocked_users(app.id, conv.id, None, after, limit).await
    }

    /// Change a member's role. Nobody is made owner this way; the owner may make managers and
    /// members, a manager may not change another manager.
    pub async fn set_role(&self, app: &App, conv: &Conversation, target: &str, role: Role, actor: &Actor) -> Result<()> {
        if !matches!(role, Role::Admin | Role::Member) {
            return Err(Error::NotAllowed("only Manager and Member roles can be given".into()));
        }
        let me = self.check_manager(app, conv, actor).await?;
        let out = self.split_targets(app, conv, me.as_ref(), &[target.to_string()]).await?;
        if let Some((_, e)) = out.refused.into_iter().next() {
            return Err(e);
        }
        self.store.update_members(app.id, conv.id, &[target.to_string()], &MemberPatch { role: Some(role), ..Default::default() }).await?;
        let recipients = self.members(app, conv).await?;
        let change = ConvChange::RoleChanged { member: target.to_string(), role };
        self.announce(app, conv, actor.user().map(str::to_string), change.clone(), recipients).await?;
        self.teller.tell(app, After::Changed { conv, change: &change, by: actor }).await;
        Ok(())
    }

    /// Hand the conversation to another member: they become its owner and the old owner a plain
    /// member. The app's server, or the owner, may do it.
    pub async fn transfer_owner(&self, app: &App, conv: &Conversation, new_owner: &str, actor: &Actor) -> Result<()> {
        self.stand_in_room(app, conv, &[new_owner.to_string()]).await?;
        if let Some(u) = actor.user() {
            if self.member(app, conv, u).await?.role != Role::Owner {
                return Err(Error::NotAllowed("only the owner may hand the conversation over".into()));
            }
        }
        let target = self.member(app, conv, new_owner).await?;
        if target.role == Role::Owner {
            return Err(Error::NotAllowed("new owner and old owner are the same".into()));
        }
        let old: Vec<String> = self.member_roles(app, conv).await?.into_iter().filter(|m| m.role == Role::Owner).map(|m| m.user).collect();
        if !old.is_empty() {
            self.store.update_members(app.id, conv.id, &old, &MemberPatch { role: Some(Role::Member), ..Default::default() }).await?;
        }
        self.store
            .update_members(app.id, conv.id, &[new_owner.to_string()], &MemberPatch { role: Some(Role::Owner), ..Default::default() })
            .await?;
        self.store.update_conversation(app.id, conv.id, &ConvPatch::default(), self.now()).await?;
        let recipients = self.members(app, conv).await?;
        let change = ConvChange::RoleChanged { member: new_owner.to_string(), role: Role::Owner };
        self.announce(app, conv, actor.user().map(str::to_string), change.clone(), recipients).await?;
        self.teller.tell(app, After::Changed { conv, change: &change, by: actor }).await;
        Ok(())
    }

    /// Members holding a role other than plain member.
    /// A page of a conversation's members, as the query asks (roles, after a user id, a limit).
    pub async fn list_members(&self, app: &App, conv: &Conversation, q: &MemberQuery) -> Result<Vec<Member>> {
        self.store.list_members(app.id, conv.id, q).await
    }

    /// Whether `user` is a member (none of `member`'s errors for a stranger).
    pub async fn is_member(&self, app: &App, conv: &Conversation, user: &str) -> Result<bool> {
        Ok(self.store.get_member(app.id, conv.id, user).await?.is_some())
    }

    pub async fn member_roles(&self, app: &App, conv: &Conversation) -> Result<Vec<Member>> {
        let q = MemberQuery { roles: Some(vec![Role::Owner, Role::Admin]), ..Default::default() };
        self.store.list_members(app.id, conv.id, &q).await
    }

    /// Up to `limit` users present in a chat room.
    pub async fn room_members(&self, app: &App, conv: &Conversation, limit: usize) -> Result<Vec<String>> {
        self.presence.room_members(app.id, conv.id, limit, self.now()).await
    }

    /// Whether a user is in a chat room (online, or offline for less than the grace).
    pub async fn in_room(&self, app: &App, conv: &Conversation, user: &str) -> Result<bool> {
        self.presence.in_room(app.id, conv.id, user, self.now()).await
    }

    /// Everyone in a chat room, online or within the grace, by user id.
    pub async fn room_roster(&self, app: &App, conv: &Conversation) -> Result<Vec<String>> {
        self.presence.room_roster(app.id, conv.id, self.now()).await
    }

    /// The chat rooms a user is in.
    pub async fn rooms_of(&self, app: &App, user: &str) -> Result<Vec<i64>> {
        self.presence.rooms_of(app.id, user, self.now()).await
    }

    pub async fn room_count(&self, app: &App, conv: &Conversation) -> Result<usize> {
        self.presence.room_count(app.id, conv.id, self.now()).await
    }

    // ------------------------------------------------------------------ subscriptions

    pub async fn subscribe(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        self.users.ensure_users(app, &[user]).await?;
        let row = Member::new(conv.id, user, Role::Subscriber, self.now());
        self.store.add_members(app.id, conv.id, &[row], None, self.now()).await?;
        Ok(())
    }

    pub async fn unsubscribe(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        app.validate_user_id(user)?;
        self.store.remove_members(app.id, conv.id, &[user.to_string()], self.now()).await?;
        Ok(())
    }

    /// Subscribers ordered by client id, after `after`.
    pub async fn subscribers(&self, app: &App, conv: &Conversation, after: Option<String>, limit: i64) -> Result<Vec<Member>> {
        let q = MemberQuery { roles: Some(vec![Role::Subscriber]), after, limit: Some(limit), ..Default::default() };
        self.store.list_members(app.id, conv.id, &q).await
    }

    pub async fn subscriber_count(&self, app: &App, conv: &Conversation) -> Result<i64> {
        self.store.count_members(app.id, conv.id, Some(&[Role::Subscriber])).await
    }

    /// The service conversations a user subscribes to, by subscription time.
    pub async fn subscriptions(
        &self,
        app: &App,
        user: &str,
        after: Option<(i64, i64)>,
        descending: bool,
        limit: i64,
    ) -> Result<Vec<Member>> {
        app.validate_user_id(user)?;
        let q = MembershipQuery { role: Some(Role::Subscriber), kind: Some(ConvKind::Service), after, descending, limit };
        self.store.user_memberships(app.id, user, &q).await
    }

    /// A user's conversation list: the one-to-one conversations and groups they are in and have
    /// not removed from their list (`hide_conversation`) since its last message, at most `limit`, by joining time.
    pub async fn user_conversations(&self, app: &App, user: &str, limit: i64) -> Result<Vec<Conversation>> {
        app.validate_user_id(user)?;
        let q = MembershipQuery { role: None, kind: None, after: None, descending: true, limit: limit.saturating_mul(4).max(limit) };
        let mut out = Vec::new();
        for m in self.store.user_memberships(app.id, user, &q).await? {
            if m.role == Role::Subscriber {
                continue;
            }
            match self.conversation(app, m.conv, None).await {
                // removed from the list, and nothing new since (a new message brings it back)
                Ok(c) if m.hidden && c.last_seq <= m.read_seq => {}
                Ok(c) if matches!(c.kind, ConvKind::Normal | ConvKind::Temporary) => out.push(c),
                _ => {}
            }
            if out.len() as i64 >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Conversation changes a user was told of after `since` (for clients catching up).
    pub async fn notices(&self, app: &App, user: &str, since: i64, limit: i64) -> Result<Vec<ConvNotice>> {
        app.validate_user_id(user)?;
        self.store.notices(app.id, user, since, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_id_matches_leanclouds_documented_example() {
        let m = vec!["SteveJobs".to_string(), "BillGates".to_string()];
        assert_eq!(unique_id(&m), "6c7b0e5afcae9aa1139a0afa25833dec");
    }
}
