//! The rules of groups as Easemob's users live them (its SDK acts with a user token): who may
//! see a group, invite, join, leave and destroy it. A group is a non-unique `Normal`
//! conversation with an owner and group settings (`ConvSettings`: `public`, `approval`,
//! `members_invite`); the app's server (`Actor::Admin`) may do anything. LeanCloud's own
//! conversation rules (`add_members`, `remove_members`) are unchanged: these are the rules of
//! the calls a face makes for group users.

use super::Conversations;
use crate::conv::Actor;
use crate::error::{Error, Result};
use crate::model::{App, ConvKind, Conversation, Role};
use crate::quotas::Quotas;
use crate::Outcome;

impl Conversations {
    fn check_group(conv: &Conversation) -> Result<()> {
        if conv.kind != ConvKind::Normal || conv.unique {
            return Err(Error::WrongKind { expected: ConvKind::Normal });
        }
        Ok(())
    }

    /// Whether `actor` may see a group's details and members: the app's server, a member, or
    /// anyone for a public group. `NotMember` otherwise.
    pub async fn check_may_see_group(&self, app: &App, conv: &Conversation, actor: &Actor) -> Result<()> {
        Self::check_group(conv)?;
        match actor.user() {
            None => Ok(()),
            Some(_) if conv.settings.public => Ok(()),
            Some(u) => self.member(app, conv, u).await.map(drop),
        }
    }

    /// Invite users into a group (they join at once): the owner and admins may, and members
    /// when the group lets members invite (`members_invite`). The group's member cap and each
    /// user's group quota apply.
    pub async fn invite_to_group(&self, app: &App, conv: &Conversation, users: Vec<String>, actor: &Actor) -> Result<Outcome> {
        Self::check_group(conv)?;
        if let Some(u) = actor.user() {
            let me = self.member(app, conv, u).await?;
            if !matches!(me.role, Role::Owner | Role::Admin) && !conv.settings.members_invite {
                return Err(Error::NotAllowed("only the group owner or admins may invite".into()));
            }
        }
        self.add_members_with(app, conv, users, actor, Quotas::Counted).await
    }

    /// `user` joins a public group that needs no approval (one that does takes requests, which
    /// confab does not keep: `NotAllowed`). A private group is joined by invitation only.
    pub async fn join_group(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        Self::check_group(conv)?;
        if self.store.get_member(app.id, conv.id, user).await?.is_some() {
            return Err(Error::invalid(format!("{user} is already in the group")));
        }
        if !conv.settings.public {
            return Err(Error::NotAllowed("the group is not public: it is joined by invitation".into()));
        }
        if conv.settings.approval {
            return Err(Error::NotAllowed("the group needs the owner's approval to join".into()));
        }
        self.add_members_with(app, conv, vec![user.to_string()], &Actor::User(user.to_string()), Quotas::Counted).await.map(drop)
    }

    /// `user` leaves a group. The owner cannot (they hand the group over or destroy it).
    pub async fn leave_group(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        Self::check_group(conv)?;
        if self.member(app, conv, user).await?.role == Role::Owner {
            return Err(Error::NotAllowed("the owner cannot quit the group".into()));
        }
        self.remove_members(app, conv, vec![user.to_string()], &Actor::User(user.to_string())).await.map(drop)
    }

    /// Remove members from a group: the owner may remove anyone else, an admin plain members
    /// (`remove_members`' rules); nobody removes the owner, and only members are removed.
    pub async fn remove_from_group(&self, app: &App, conv: &Conversation, users: Vec<String>, actor: &Actor) -> Result<Outcome> {
        Self::check_group(conv)?;
        for u in &users {
            if self.member(app, conv, u).await?.role == Role::Owner {
                return Err(Error::NotAllowed("forbidden operation on group owner!".into()));
            }
        }
        if let Some(u) = actor.user() {
            if users.iter().any(|x| x == u) {
                return Err(Error::NotAllowed("a member leaves a group by quitting it".into()));
            }
            let me = self.member(app, conv, u).await?;
            if !matches!(me.role, Role::Owner | Role::Admin) {
                return Err(Error::NotAllowed("only the group owner or admins may remove members".into()));
            }
        }
        self.remove_members(app, conv, users, actor).await
    }
}
