//! Join requests and invitations that wait for an answer (Easemob's `apply` / `apply_verify`,
//! `invite` / `invite_verify`). A user asking to join a public group that needs approval
//! (`ConvSettings::approval`) leaves a request the owner or an admin answers; a user invited to
//! a group whose invitations need confirming (the `invite_need_confirm` custom field, true when
//! absent, as Easemob's default) is asked, and joins when they accept. Both are kept in keyed
//! collections (`group_applications` per group, `group_invitations` per invitee), at most
//! [`GROUP_REQUESTS_MAX`] per collection, lapsing after [`GROUP_REQUEST_TTL_MS`]; whom they
//! concern hears of them as `ConvChange::Request` (live; a user offline reads what waits for
//! them with [`Conversations::waiting_requests`] when they log in).

use serde_json::{json, Value};

use super::Conversations;
use crate::bus::Event;
use crate::conv::Actor;
use crate::entries::{ns, Entry, EntryFilter, EntryQuery, Put, PutRule};
use crate::error::{Error, Result};
use crate::model::{App, ConvChange, ConvKind, ConvRef, Conversation, RequestNews, Role};
use crate::query::{MemberQuery, MembershipQuery};
use crate::quotas::Quotas;
use crate::Outcome;

/// Requests one group, or invitations one user, may have waiting.
pub const GROUP_REQUESTS_MAX: i64 = 500;
/// Longest message a request or invitation may carry.
pub const GROUP_REQUEST_REASON_MAX_BYTES: usize = 1024;
/// How long a request or invitation waits for its answer.
pub const GROUP_REQUEST_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// The custom field saying whether invitations need the invitee's confirmation.
pub const INVITE_NEED_CONFIRM: &str = "invite_need_confirm";
/// Most groups a user manages that are looked through for requests at login.
const MANAGED_GROUPS_READ: i64 = 1000;

/// How asking to join ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joining {
    /// The user is a member now.
    Joined,
    /// The request waits for the owner's or an admin's answer.
    Asked,
}

/// A join request or invitation waiting for a user's answer, as it was told when made.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRequest {
    pub group: i64,
    pub group_name: Option<String>,
    /// `Applied` (a request to join, waiting for a manager) or `Invited`.
    pub news: RequestNews,
    /// The applicant, or the invitee.
    pub user: String,
    /// Who made it: the applicant, or the inviter.
    pub by: String,
    pub reason: Option<String>,
    /// Unix ms it was made.
    pub at: i64,
}

/// Whether invitations to `conv` wait for the invitee's answer.
pub fn invite_needs_confirm(conv: &Conversation) -> bool {
    conv.attrs.get(INVITE_NEED_CONFIRM).and_then(Value::as_bool).unwrap_or(true)
}

impl Conversations {
    fn check_is_group(conv: &Conversation) -> Result<()> {
        if conv.kind != ConvKind::Normal || conv.unique {
            return Err(Error::WrongKind { expected: ConvKind::Normal });
        }
        Ok(())
    }

    fn check_reason(reason: Option<&str>) -> Result<()> {
        if reason.is_some_and(|r| r.len() > GROUP_REQUEST_REASON_MAX_BYTES) {
            return Err(Error::too_large("reason", GROUP_REQUEST_REASON_MAX_BYTES));
        }
        Ok(())
    }

    /// `ConversationFull` when the group has no room for one more member.
    async fn check_room_for_one(&self, app: &App, conv: &Conversation) -> Result<()> {
        let max = self.max_members(app, conv);
        if self.store.count_members(app.id, conv.id, None).await? >= max {
            return Err(Error::ConversationFull { max });
        }
        Ok(())
    }

    async fn is_blocked_in(&self, app: &App, conv: &Conversation, user: &str) -> Result<bool> {
        Ok(!self.store.blocked_users(app.id, conv.id, Some(&[user.to_string()]), None, 1).await?.is_empty())
    }

    /// The owner and admins of a group.
    async fn managers(&self, app: &App, conv: &Conversation) -> Result<Vec<String>> {
        Ok(self.member_roles(app, conv).await?.into_iter().map(|m| m.user).collect())
    }

    async fn check_manages(&self, app: &App, conv: &Conversation, actor: &Actor, what: &str) -> Result<()> {
        if let Some(u) = actor.user() {
            if !matches!(self.member(app, conv, u).await?.role, Role::Owner | Role::Admin) {
                return Err(Error::NotAllowed(format!("only the group owner or admins may {what}")));
            }
        }
        Ok(())
    }

    /// Tell `recipients` of a request or its answer (live only: nothing is kept as a notice).
    #[allow(clippy::too_many_arguments)]
    fn tell_request(
        &self,
        app: &App,
        conv: &Conversation,
        by: Option<&str>,
        news: RequestNews,
        user: &str,
        reason: Option<&str>,
        recipients: Vec<String>,
    ) {
        if recipients.is_empty() {
            return;
        }
        let change = ConvChange::Request { news, user: user.to_string(), reason: reason.map(str::to_string) };
        let by = by.map(str::to_string);
        self.bus.deliver(Event::Conv { app: app.id, conv: ConvRef::of(conv), by, change, recipients, at: self.now() });
    }

    /// `user` becomes a member as if they had joined themselves (their own devices hear nothing
    /// of it, the members `Joined`): an accepted request or invitation. The group's approval
    /// rule is what was just satisfied, so it is not asked again; the member cap, the user's
    /// group quota, the blocklist and the app's hooks are.
    async fn admit(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        let mut admitted = conv.clone();
        admitted.settings.approval = false;
        let out = self.add_members_with(app, &admitted, vec![user.to_string()], &Actor::User(user.to_string()), Quotas::Counted).await?;
        match out.refused.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    // ------------------------------------------------------------------ join requests

    /// `user` asks to join a group. A public group that needs no approval is joined at once
    /// (`join_group`'s rules); one that needs approval keeps the request (renewing one there is)
    /// and its owner and admins hear of it (`Applied`, with `reason`). A member, a blocked user,
    /// a full group and a private group are refused.
    pub async fn apply_to_group(&self, app: &App, conv: &Conversation, user: &str, reason: Option<&str>) -> Result<Joining> {
        Self::check_is_group(conv)?;
        if !conv.settings.public || !conv.settings.approval {
            return self.join_group(app, conv, user).await.map(|_| Joining::Joined);
        }
        if self.store.get_member(app.id, conv.id, user).await?.is_some() {
            return Err(Error::invalid(format!("{user} is already in the group")));
        }
        Self::check_reason(reason)?;
        if self.is_blocked_in(app, conv, user).await? {
            return Err(Error::Blocked);
        }
        self.check_room_for_one(app, conv).await?;
        let at = self.now();
        let e = Entry::new(ns::GROUP_APPLICATIONS, conv.id.to_string(), user, json!({"reason": reason, "at": at}))
            .expiring(Some(at + GROUP_REQUEST_TTL_MS));
        let rule = PutRule { max_items: Some(GROUP_REQUESTS_MAX), ..Default::default() };
        if self.rooms.collections.put(app, vec![e], rule).await? == [Put::Full] {
            return Err(Error::too_many("join requests", GROUP_REQUESTS_MAX as usize));
        }
        let managers = self.managers(app, conv).await?;
        self.tell_request(app, conv, Some(user), RequestNews::Applied, user, reason, managers);
        Ok(Joining::Asked)
    }

    /// The owner or an admin (or the app's server) answers `applicant`'s request: accepted, the
    /// applicant joins (the member cap and their group quota hold; refused, the request stays)
    /// and hears `ApplyAccepted`, the members `Joined`; declined, it is forgotten and the
    /// applicant hears `ApplyDeclined` with `reason`. `NotAllowed` when `applicant` asked
    /// nothing (or the request lapsed), or the actor manages nothing.
    pub async fn answer_join_request(
        &self,
        app: &App,
        conv: &Conversation,
        applicant: &str,
        accept: bool,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        Self::check_is_group(conv)?;
        self.check_manages(app, conv, actor, "answer join requests").await?;
        Self::check_reason(reason)?;
        let key = conv.id.to_string();
        let nothing = || Error::NotAllowed(format!("{applicant} has not asked to join the group"));
        if self.rooms.collections.get(app, ns::GROUP_APPLICATIONS, &key, applicant).await?.is_none() {
            return Err(nothing());
        }
        if accept {
            self.admit(app, conv, applicant).await?;
        }
        let f = EntryFilter::collection(ns::GROUP_APPLICATIONS, key).items(vec![applicant.to_string()]);
        if self.rooms.collections.delete(app, &f).await?.is_empty() && !accept {
            // answered by someone else meanwhile
            return Err(nothing());
        }
        let news = if accept { RequestNews::ApplyAccepted } else { RequestNews::ApplyDeclined };
        self.tell_request(app, conv, actor.user(), news, applicant, reason, vec![applicant.to_string()]);
        Ok(())
    }

    // ------------------------------------------------------------------ invitations

    /// Invite users into a group. The app's server, or a group whose invitations need no
    /// confirming, adds them at once (`invite_to_group`); otherwise each user not a member yet is
    /// asked (`Invited`, with `reason`) and the invitation waits for their answer. Who may
    /// invite: the owner and admins, and members when the group lets members invite. A full
    /// group refuses; blocked users are refused one by one. The second value: whether the
    /// invitations wait.
    pub async fn invite_users(
        &self,
        app: &App,
        conv: &Conversation,
        users: Vec<String>,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<(Outcome, bool)> {
        Self::check_is_group(conv)?;
        let inviter = match actor.user() {
            Some(u) if invite_needs_confirm(conv) => u.to_string(),
            _ => return Ok((self.invite_to_group(app, conv, users, actor).await?, false)),
        };
        let me = self.member(app, conv, &inviter).await?;
        if !matches!(me.role, Role::Owner | Role::Admin) && !conv.settings.members_invite {
            return Err(Error::NotAllowed("only the group owner or admins may invite".into()));
        }
        Self::check_reason(reason)?;
        let users = super::dedup(users);
        if users.is_empty() {
            return Err(Error::invalid("name at least one user to invite"));
        }
        let q = MemberQuery { users: Some(users.clone()), ..Default::default() };
        let members: Vec<String> = self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| m.user).collect();
        let mut out = Outcome::default();
        let strangers: Vec<String> = users.into_iter().filter(|u| !members.contains(u)).collect();
        out.done.extend(members);
        if strangers.is_empty() {
            return Ok((out, true));
        }
        self.check_room_for_one(app, conv).await?;
        let at = self.now();
        let rule = PutRule { max_items: Some(GROUP_REQUESTS_MAX), ..Default::default() };
        for u in strangers {
            if self.is_blocked_in(app, conv, &u).await? {
                out.refused.push((u, Error::Blocked));
                continue;
            }
            let e = Entry::new(ns::GROUP_INVITATIONS, u.clone(), conv.id.to_string(), json!({"by": inviter, "reason": reason, "at": at}))
                .expiring(Some(at + GROUP_REQUEST_TTL_MS));
            if self.rooms.collections.put(app, vec![e], rule).await? == [Put::Full] {
                out.refused.push((u, Error::too_many("group invitations", GROUP_REQUESTS_MAX as usize)));
                continue;
            }
            self.tell_request(app, conv, Some(&inviter), RequestNews::Invited, &u, reason, vec![u.clone()]);
            out.done.push(u);
        }
        Ok((out, true))
    }

    /// `invitee` (or the app's server for them) answers an invitation: accepted, they join (the
    /// member cap and their group quota hold; refused, the invitation stays), the inviter hears
    /// `InviteAccepted` and the members `Joined`; declined, it is forgotten and the inviter hears
    /// `InviteDeclined`. `NotAllowed` when nobody invited them (or the invitation lapsed), or
    /// another user answers.
    pub async fn answer_invitation(&self, app: &App, conv: &Conversation, invitee: &str, accept: bool, actor: &Actor) -> Result<()> {
        Self::check_is_group(conv)?;
        if actor.user().is_some_and(|u| u != invitee) {
            return Err(Error::NotAllowed("only the invitee answers an invitation".into()));
        }
        let item = conv.id.to_string();
        let nothing = || Error::NotAllowed(format!("{invitee} has not been invited to the group"));
        let Some(e) = self.rooms.collections.get(app, ns::GROUP_INVITATIONS, invitee, &item).await? else {
            return Err(nothing());
        };
        if accept {
            self.admit(app, conv, invitee).await?;
        }
        let f = EntryFilter::collection(ns::GROUP_INVITATIONS, invitee).items(vec![item]);
        if self.rooms.collections.delete(app, &f).await?.is_empty() && !accept {
            return Err(nothing());
        }
        let news = if accept { RequestNews::InviteAccepted } else { RequestNews::InviteDeclined };
        if let Some(by) = e.value.get("by").and_then(Value::as_str) {
            self.tell_request(app, conv, Some(invitee), news, invitee, None, vec![by.to_string()]);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ waiting

    /// What waits for `user`'s answer, oldest first: invitations to groups, and requests to
    /// join the groups they own or administer (at most `MANAGED_GROUPS_READ` of each role are
    /// looked through). Invitations to groups that are gone are forgotten.
    pub async fn waiting_requests(&self, app: &App, user: &str) -> Result<Vec<GroupRequest>> {
        let cols = &self.rooms.collections;
        let mut out = Vec::new();
        for e in cols.list(app, &EntryQuery::all(EntryFilter::collection(ns::GROUP_INVITATIONS, user))).await? {
            let group = e.item.parse::<i64>().ok();
            let conv = match group {
                Some(id) => self.conversation(app, id, Some(ConvKind::Normal)).await.ok(),
                None => None,
            };
            let Some(conv) = conv else {
                cols.delete(app, &EntryFilter::collection(ns::GROUP_INVITATIONS, user).items(vec![e.item.clone()])).await?;
                continue;
            };
            out.push(GroupRequest {
                group: conv.id,
                group_name: conv.name.clone(),
                news: RequestNews::Invited,
                user: user.to_string(),
                by: e.value.get("by").and_then(Value::as_str).unwrap_or_default().to_string(),
                reason: e.value.get("reason").and_then(Value::as_str).map(str::to_string),
                at: e.value.get("at").and_then(Value::as_i64).unwrap_or(e.updated_at),
            });
        }
        for role in [Role::Owner, Role::Admin] {
            let q = MembershipQuery {
                role: Some(role),
                kind: Some(ConvKind::Normal),
                after: None,
                descending: false,
                limit: MANAGED_GROUPS_READ,
            };
            for m in self.store.user_memberships(app.id, user, &q).await? {
                let waiting = cols.list(app, &EntryQuery::all(EntryFilter::collection(ns::GROUP_APPLICATIONS, m.conv.to_string()))).await?;
                if waiting.is_empty() {
                    continue;
                }
                let Ok(conv) = self.conversation(app, m.conv, Some(ConvKind::Normal)).await else { continue };
                for e in waiting {
                    out.push(GroupRequest {
                        group: conv.id,
                        group_name: conv.name.clone(),
                        news: RequestNews::Applied,
                        by: e.item.clone(),
                        reason: e.value.get("reason").and_then(Value::as_str).map(str::to_string),
                        at: e.value.get("at").and_then(Value::as_i64).unwrap_or(e.updated_at),
                        user: e.item,
                    });
                }
            }
        }
        out.sort_by_key(|r| r.at);
        Ok(out)
    }

    /// A destroyed group's requests and invitations are forgotten.
    pub(crate) async fn forget_group_requests(&self, app: &App, conv: &Conversation) -> Result<()> {
        let cols = &self.rooms.collections;
        cols.delete(app, &EntryFilter::collection(ns::GROUP_APPLICATIONS, conv.id.to_string())).await?;
        let invitations =
            EntryFilter { ns: ns::GROUP_INVITATIONS.to_string(), items: Some(vec![conv.id.to_string()]), ..Default::default() };
        cols.delete(app, &invitations).await?;
        Ok(())
    }
}
