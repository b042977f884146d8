//! The rules of groups as Easemob's users live them (its SDK acts with a user token): who may
//! see a group, invite, join, leave and destroy it. A group is a non-unique `Normal`
//! conversation with an owner and group settings (`ConvSettings`: `public`, `approval`,
//! `members_invite`); the app's server (`Actor::Admin`) may do anything. LeanCloud's own
//! conversation rules (`add_members`, `remove_members`) are unchanged: these are the rules of
//! the calls a face makes for group users.
//!
//! Chat rooms share the role rules of the management calls ([`GroupCall`]): a room is public
//! (anyone of the app reads it), its owner and admins manage it.

use super::Conversations;
use crate::conv::Actor;
use crate::error::{Error, Result};
use crate::model::{App, ConvKind, Conversation, Role};
use crate::quotas::Quotas;
use crate::Outcome;

/// A group or chat room call a user makes, for [`Conversations::check_group_call`]: each says
/// the role it needs (the one table of Easemob's owner/admin/member rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupCall<'a> {
    /// Details, members, admins, the announcement: a member, or anyone for a public group or
    /// a chat room.
    Read,
    /// Shared files: list, download, upload. A member (a chat room: one in it or holding a
    /// standing there).
    Files,
    /// Delete a shared file: the owner, an admin, or who uploaded it.
    DeleteFile { uploader: &'a str },
    /// Whether `user` is on the allowlist or muted: the user themself, the owner or an admin.
    AskAbout { user: &'a str },
    /// Change the name, description, avatar, custom data, the announcement, mute everyone, the
    /// mutes, blocks and the allowlist (and read those three lists): the owner or an admin.
    Manage,
    /// Hand the group over, make or unmake admins: the owner.
    Own,
}

impl GroupCall<'_> {
    fn refusal(self, room: bool) -> Error {
        let what = if room { "chatroom" } else { "group" };
        Error::NotAllowed(match self {
            GroupCall::Own => format!("only the {what} owner may do this"),
            GroupCall::DeleteFile { .. } => format!("only the {what} owner, an admin or the file's uploader may delete it"),
            _ => format!("only the {what} owner or an admin may do this"),
        })
    }
}

impl Conversations {
    fn check_group(conv: &Conversation) -> Result<()> {
        if conv.kind != ConvKind::Normal || conv.unique {
            return Err(Error::WrongKind { expected: ConvKind::Normal });
        }
        Ok(())
    }

    /// Whether `actor` may make `call` on a group or a chat room (see [`GroupCall`]). The app's
    /// server may do anything. A user outside a group is `NotMember`; a member without the role,
    /// `NotAllowed` saying which role it takes. A chat room's owner and admins keep their
    /// standing when they are not in the room.
    pub async fn check_group_call(&self, app: &App, conv: &Conversation, actor: &Actor, call: GroupCall<'_>) -> Result<()> {
        let room = conv.kind == ConvKind::Chatroom;
        if !room {
            Self::check_group(conv)?;
        }
        let Some(u) = actor.user() else { return Ok(()) };
        if call == GroupCall::Read && (room || conv.settings.public) {
            return Ok(());
        }
        let me = self.member(app, conv, u).await?;
        if me.role == Role::Subscriber {
            return Err(Error::NotMember);
        }
        let manager = matches!(me.role, Role::Owner | Role::Admin);
        let ok = match call {
            GroupCall::Read | GroupCall::Files => true,
            GroupCall::DeleteFile { uploader } => manager || uploader == u,
            GroupCall::AskAbout { user } => manager || user == u,
            GroupCall::Manage => manager,
            GroupCall::Own => me.role == Role::Owner,
        };
        if ok {
            Ok(())
        } else {
            Err(call.refusal(room))
        }
    }

    /// Whether `actor` may create a chat room: the app's server, or a chat room super admin
    /// (Easemob's rule; the list is the app's, `Rooms::add_room_super_admin`).
    pub async fn check_may_create_room(&self, app: &App, actor: &Actor) -> Result<()> {
        match actor.user() {
            None => Ok(()),
            Some(u) if self.rooms.is_room_super_admin(app, u).await? => Ok(()),
            Some(_) => Err(Error::NotAllowed("only a chatroom super admin may create a chatroom".into())),
        }
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
