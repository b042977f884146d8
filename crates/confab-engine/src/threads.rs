//! Threads (Easemob 子区): a conversation of kind `Thread` that hangs from one message of a group
//! (`Conversation::parent`). Only the group's members may be in it, one message has at most one
//! thread, and the app has at most `em_threads_max`. A thread's messages are ordinary messages
//! of that conversation, so every face reads them.

use crate::conv::{Actor, Conversations, NewConversation};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::message::Messages;
use crate::model::{App, ConvKind, Conversation, Member};
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
