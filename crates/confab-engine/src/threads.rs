//! Threads (Easemob 子区): a conversation of kind `Thread` that hangs from one message of a group
//! (`Conversation::parent`). Only the group's members may be in it, one message has at most one
//! thread, and the app has at most `em_threads_max`. A thread's messages are ordinary messages
//! of that conversation, so every face reads them.

use crate::conv::{Actor, Conversations, NewConversation};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::message::Messages;
use crate::model::{App, ConvKind, Conversation, Member, Role};
use crate::query::{ConvQuery, Field, Filter, MembershipQuery, Op, Scalar};
use crate::store::Store;

/// Threads. It holds the `Store` (a user's thread memberships) and the services it calls:
/// `Conversations` (a thread is one, its members the group's) and `Messages` (the message it hangs
/// from).
pub struct Threads {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) conversations: Arc<Conversations>,
    pub(crate) messages: Arc<Messages>,
}

impl Threads {
    /// How many threads the app has, or hang from one message.
    async fn count_threads(&self, app: &App, msg: Option<i64>) -> Result<i64> {
        let filter = match msg {
            Some(m) => Filter::Cond(Field::ParentMsg, Op::Eq(Scalar::Int(m))),
            None => Filter::True,
        };
        let q = ConvQuery { kinds: Some(vec![ConvKind::Thread]), filter, count: true, limit: 0, ..Default::default() };
        Ok(self.conversations.query_conversations(app, &q).await?.1.unwrap_or(0))
    }

    /// Start a thread on a group message, owned by `owner` (a member of the group, and the
    /// thread's first member). Errors: the group is not a group (`WrongKind`), the name is empty
    /// or too long (`Invalid`), the owner is not in the group (`NotMember`), the message is not
    /// the group's (`MessageNotFound`), the message has a thread already (`NotAllowed`), the app
    /// has `em_threads_max` threads (`TooMany`).
    pub async fn create_thread(&self, app: &App, group: &Conversation, msg: i64, name: &str, owner: &str) -> Result<Conversation> {
        if group.kind != ConvKind::Normal || group.unique {
            return Err(Error::WrongKind { expected: ConvKind::Normal });
        }
        let max_name = app.limits.em_thread_name_max_chars;
        if name.is_empty() || name.chars().count() > max_name {
            return Err(Error::invalid(format!("a thread name is 1 to {max_name} characters")));
        }
        self.conversations.check_in_group(app, group.id, &[owner.to_string()]).await?;
        let m = self.messages.message(app, msg).await?;
        if m.conv != group.id {
            return Err(Error::MessageNotFound);
        }
        if self.count_threads(app, Some(msg)).await? > 0 {
            return Err(Error::NotAllowed("the message has a thread already".into()));
        }
        let max = app.limits.em_threads_max;
        if max > 0 && self.count_threads(app, None).await? >= max {
            return Err(Error::too_many("threads", max as usize));
        }
        let new = NewConversation {
            kind: Some(ConvKind::Thread),
            name: Some(name.to_string()),
            creator: Some(owner.to_string()),
            members: vec![owner.to_string()],
            parent: Some((group.id, msg)),
            ..Default::default()
        };
        Ok(self.conversations.create_conversation(app, new).await?.0)
    }

    /// Rename a thread (1 to `em_thread_name_max_chars` characters).
    pub async fn rename_thread(&self, app: &App, thread: &Conversation, name: &str, actor: &Actor) -> Result<()> {
        let max_name = app.limits.em_thread_name_max_chars;
        if name.is_empty() || name.chars().count() > max_name {
            return Err(Error::invalid(format!("a thread name is 1 to {max_name} characters")));
        }
        let patch = crate::commands::ConvUpdate::name(name);
        self.conversations.update_conversation(app, thread.id, Some(ConvKind::Thread), &patch, actor).await?;
        Ok(())
    }

    // ------------------------------------------------------------------ with a user's token

    /// The group a thread hangs from, and `user`'s role in it (`NotMember` if none).
    async fn group_role(&self, app: &App, thread: &Conversation, user: &str) -> Result<(Conversation, Role)> {
        let (group, _) = thread.parent.ok_or(Error::WrongKind { expected: ConvKind::Thread })?;
        let group = self.conversations.conversation(app, group, None).await?;
        let m = self.conversations.member(app, &group, user).await?;
        if m.role == Role::Subscriber {
            return Err(Error::NotMember);
        }
        Ok((group, m.role))
    }

    /// A user may read a thread (its details, members, last message) when they are in its group.
    pub async fn check_reader(&self, app: &App, thread: &Conversation, user: &str) -> Result<()> {
        self.group_role(app, thread, user).await.map(drop)
    }

    /// A user may rename or destroy a thread when they own it, or own or administer its group
    /// (`NotAllowed` otherwise; outside the group: `NotMember`).
    async fn check_manager(&self, app: &App, thread: &Conversation, user: &str) -> Result<()> {
        let (_, role) = self.group_role(app, thread, user).await?;
        if thread.creator.as_deref() == Some(user) || matches!(role, Role::Owner | Role::Admin) {
            Ok(())
        } else {
            Err(Error::NotAllowed("only the thread's owner or the group's owner or an admin may change the thread".into()))
        }
    }

    /// A user renames a thread (its owner, or the group's owner or an admin).
    pub async fn rename_thread_as(&self, app: &App, thread: &Conversation, name: &str, user: &str) -> Result<()> {
        self.check_manager(app, thread, user).await?;
        self.rename_thread(app, thread, name, &Actor::Admin).await
    }

    /// A user destroys a thread (its owner, or the group's owner or an admin).
    pub async fn destroy_thread_as(&self, app: &App, thread: &Conversation, user: &str) -> Result<()> {
        self.check_manager(app, thread, user).await?;
        self.conversations.delete_conversation(app, thread.id, Some(ConvKind::Thread), &Actor::Admin).await
    }

    /// A member of the group joins one of its threads (joining again changes nothing).
    pub async fn join_thread(&self, app: &App, thread: &Conversation, user: &str) -> Result<()> {
        self.group_role(app, thread, user).await?;
        self.conversations.add_members(app, thread, vec![user.to_string()], &Actor::User(user.to_string())).await.map(drop)
    }

    /// A member leaves a thread (`NotMember` if they are not in it).
    pub async fn leave_thread(&self, app: &App, thread: &Conversation, user: &str) -> Result<()> {
        self.conversations.member(app, thread, user).await?;
        self.conversations.remove_members(app, thread, vec![user.to_string()], &Actor::User(user.to_string())).await.map(drop)
    }

    /// The group's owner or an admin removes a member from a thread (`NotAllowed` for anyone
    /// else; a user not in the thread: `NotMember`).
    pub async fn remove_thread_member(&self, app: &App, thread: &Conversation, by: &Actor, member: &str) -> Result<()> {
        if let Some(u) = by.user() {
            let (_, role) = self.group_role(app, thread, u).await?;
            if !matches!(role, Role::Owner | Role::Admin) {
                return Err(Error::NotAllowed("only the group's owner or an admin may remove a thread's members".into()));
            }
        }
        self.conversations.member(app, thread, member).await?;
        self.conversations.remove_members(app, thread, vec![member.to_string()], &Actor::Admin).await.map(drop)
    }

    /// The threads of one group by creation, newest first, after the thread `after`, at most
    /// `limit`.
    pub async fn group_threads(&self, app: &App, group: i64, after: Option<i64>, limit: i64) -> Result<Vec<Conversation>> {
        let mut filter = Filter::Cond(Field::ParentConv, Op::Eq(Scalar::Int(group)));
        if let Some(id) = after {
            filter = Filter::And(vec![filter, Filter::Cond(Field::Id, Op::Lt(Scalar::Int(id)))]);
        }
        let q = ConvQuery { kinds: Some(vec![ConvKind::Thread]), filter, order: vec![(Field::Id, true)], limit, ..Default::default() };
        Ok(self.conversations.query_conversations(app, &q).await?.0)
    }

    /// The app's threads by creation, after the thread `after` (exclusive), at most `limit`.
    pub async fn threads(&self, app: &App, after: Option<i64>, descending: bool, limit: i64) -> Result<Vec<Conversation>> {
        let filter = match after {
            Some(id) if descending => Filter::Cond(Field::Id, Op::Lt(Scalar::Int(id))),
            Some(id) => Filter::Cond(Field::Id, Op::Gt(Scalar::Int(id))),
            None => Filter::True,
        };
        let q =
            ConvQuery { kinds: Some(vec![ConvKind::Thread]), filter, order: vec![(Field::Id, descending)], limit, ..Default::default() };
        Ok(self.conversations.query_conversations(app, &q).await?.0)
    }

    /// The threads a user is in, by joining time, after `after` = (joined_at, thread id), at most
    /// `limit` memberships looked at; with `group`, only that group's. The position to go on from
    /// is the last membership's, returned even when the group filter kept none of the page.
    pub async fn user_threads(
        &self,
        app: &App,
        user: &str,
        group: Option<i64>,
        after: Option<(i64, i64)>,
        descending: bool,
        limit: i64,
    ) -> Result<(Vec<(Member, Conversation)>, Option<(i64, i64)>)> {
        app.validate_user_id(user)?;
        let q = MembershipQuery { role: None, kind: Some(ConvKind::Thread), after, descending, limit };
        let rows = self.store.user_memberships(app.id, user, &q).await?;
        let next = rows.last().map(|m| (m.joined_at, m.conv));
        let mut out = Vec::with_capacity(rows.len());
        for m in rows {
            if let Ok(c) = self.conversations.conversation(app, m.conv, Some(ConvKind::Thread)).await {
                if group.is_none() || c.parent.map(|p| p.0) == group {
                    out.push((m, c));
                }
            }
        }
        Ok((out, next))
    }
}
