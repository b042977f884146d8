//! Messages: send, edit, recall, delete, history, unread; broadcasts.

use std::sync::Arc;

use serde_json::Value;

use crate::bus::{Bus, Event, Origin};
use crate::conv::{Actor, Conversations};
use crate::error::{Error, Result};
use crate::global_mutes::GlobalMutes;
use crate::hooks::{After, Before, OutboxItem, Verdict};
use crate::ids::Stamps;
use crate::model::*;
use crate::order::Sequencer;
use crate::presence::Presence;
use crate::query::*;
use crate::social::Social;
use crate::store::{MessagePatch, Store};
use crate::teller::Teller;
use crate::users::Users;

/// A message being sent (`Messages::begin_send`): completes when it is stored.
pub type Sending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Message>> + Send + Sync>>;

/// What `send_message` needs.
#[derive(Clone, Debug, Default)]
pub struct NewMessage {
    pub from: String,
    pub content: Option<Content>,
    pub mtype: i64,
    pub ext: Option<Value>,
    /// Delivered to who is online now, never stored.
    pub transient: bool,
    /// Do not copy the message to the sender's other sessions.
    pub no_sync: bool,
    pub push_data: Option<String>,
    pub priority: Priority,
    pub mention_all: bool,
    pub mentions: Vec<String>,
    pub system: bool,
    pub audience: Audience,
    pub from_ip: Option<String>,
    /// The sender asks for delivery and read receipts.
    pub receipt: bool,
    /// The session it was sent from (not echoed back to it).
    pub origin: Option<Origin>,
}

/// Where a member has got to in a conversation: a message, or a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Message(i64),
    Time(i64),
}

/// Identifies a stored message the way LeanCloud's REST API does: by id, checked against the
/// sender and the timestamp the caller gives.
#[derive(Clone, Debug)]
pub struct MessageRef {
    pub id: i64,
    pub from: Option<String>,
    pub timestamp: Option<i64>,
}

/// A message's new content.
#[derive(Clone, Debug)]
pub struct Edit {
    pub content: Content,
    pub mtype: i64,
    /// New mentions `(mention_all, ids)`, or None to keep the old ones (the realtime SDK sends
    /// the new message's mentions with an edit; LeanCloud's REST edit has none).
    pub mentions: Option<(bool, Vec<String>)>,
}

impl Edit {
    pub fn content(content: Content, mtype: i64) -> Edit {
        Edit { content, mtype, mentions: None }
    }
}

/// The result of changing a message: a conversation message, or an app-wide broadcast (a
/// service conversation's message id may name one).
#[derive(Clone, Debug)]
pub enum Changed {
    Message(Message),
    Broadcast(Broadcast),
}

/// What `create_broadcast` needs.
#[derive(Clone, Debug)]
pub struct NewBroadcast {
    pub conv: i64,
    pub from: String,
    pub content: Content,
    pub valid_till: Option<i64>,
    pub push: Option<Value>,
    pub transient: bool,
}

fn check_size(app: &App, content: &Content, push: Option<usize>) -> Result<()> {
    let max = app.limits.message_max_bytes;
    if content.len() + push.unwrap_or(0) > max {
        return Err(Error::MessageTooLarge { max });
    }
    Ok(())
}

/// Messages: sending (checked against mutes, blocklists and the app's hooks, stored, delivered
/// in order), editing, recalling, deleting, history, read and delivery cursors, unread counts;
/// and app-wide broadcasts. It holds the `Store` (messages, cursors, broadcasts, the outbox a
/// message's hook calls go to in its transaction), `Presence` (who is online or in a chat room),
/// the `Bus` (deliveries), the `Sequencer` (each conversation's deliveries in order), `Stamps`, a
/// `Teller`, and the services it calls: `Users` (a sender exists once named), `Conversations`
/// (membership), `Social` (user blocklists) and `GlobalMutes` (app-wide speech mutes).
pub struct Messages {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) order: Arc<Sequencer>,
    pub(crate) stamps: Stamps,
    pub(crate) teller: Teller,
    pub(crate) users: Arc<Users>,
    pub(crate) conversations: Arc<Conversations>,
    pub(crate) social: Arc<Social>,
    pub(crate) global_mutes: Arc<GlobalMutes>,
}

impl Messages {
    fn now(&self) -> i64 {
        self.stamps.now()
    }

    /// Check a message as `send_message` would, without sending it (LeanCloud "will" messages
    /// are checked when given and sent later).
    pub async fn check_message(&self, app: &App, conv: &Conversation, new: &NewMessage) -> Result<()> {
        self.check_new_message(app, conv, new, &Actor::User(new.from.clone())).await
    }

    async fn check_new_message(&self, app: &App, conv: &Conversation, new: &NewMessage, actor: &Actor) -> Result<()> {
        let content = new.content.as_ref().ok_or_else(|| Error::invalid("message is required"))?;
        check_size(app, content, new.push_data.as_ref().map(String::len))?;
        if new.mentions.len() > app.limits.mentions_max {
            return Err(Error::too_many("mentioned clients", app.limits.mentions_max));
        }
        for m in &new.mentions {
            app.validate_user_id(m)?;
        }
        if let Audience::Only(users) = &new.audience {
            if users.is_empty() {
                return Err(Error::invalid("a message needs at least one recipient"));
            }
            if users.len() > app.limits.recipients_max {
                return Err(Error::too_many("recipients", app.limits.recipients_max));
            }
        }
        if conv.settings.disabled {
            return Err(Error::Forbidden("the conversation is disabled".into()));
        }
        if let Some(u) = actor.user() {
            if u != new.from {
                return Err(Error::NotSender);
            }
            self.check_may_speak(app, conv, u).await?;
        }
        self.social.check_not_blocked(app, conv, &new.from).await?;
        Ok(())
    }

    /// Send a message to a conversation and hand it to the bus for delivery. The app's server
    /// sends for anyone (LeanCloud's master key: "we do not check whether from_client may
    /// send"); a user sends as themself, within the rules of `check_may_speak`.
    pub async fn send_message(&self, app: &App, conv: &Conversation, new: NewMessage, actor: &Actor) -> Result<Message> {
        self.begin_send(app, conv, new, actor).await?.await
    }

    /// `send_message` in two steps: the checks, the app's hooks and the store's insert *queued*
    /// now, in the order of the calls (`MessageStore::queue_message_with`); the returned future
    /// completes when the message is stored, or says why it was not. A connection pipelines its
    /// sends with it: each is begun in turn, their commits share the store's group commit, and
    /// the conversation's order is the order they were begun in. The message is stored and
    /// delivered even if the future is dropped.
    pub async fn begin_send(&self, app: &App, conv: &Conversation, new: NewMessage, actor: &Actor) -> Result<Sending> {
        self.check_new_message(app, conv, &new, actor).await?;
        if let Audience::Only(users) = &new.audience {
            self.users.ensure_users(app, users).await?;
        }
        self.users.ensure_users(app, &[&new.from]).await?;
        let content = new.content.ok_or_else(|| Error::invalid("message is required"))?;
        let now = self.now();
        // a subscriber's message to a service conversation is for the service (the app's server
        // reads it through its web hook and the history), not for the other subscribers: it is
        // addressed to the sender alone, as LeanCloud keeps it apart (`_SysMessage`)
        let audience = match (conv.kind, actor.user()) {
            (ConvKind::Service, Some(user)) => Audience::Only(vec![user.to_string()]),
            _ => new.audience,
        };
        let msg = Message {
            mtype: new.mtype,
            ext: new.ext,
            mention_all: new.mention_all,
            mentions: new.mentions,
            transient: new.transient,
            priority: new.priority,
            system: new.system,
            audience,
            push_data: new.push_data,
            from_ip: new.from_ip,
            receipt: new.receipt,
            ..Message::new(app.id, self.stamps.id_at(now), conv.id, new.from, now, content)
        };
        let mut msg = msg;
        let mut recipients = self.recipients(app, conv, &msg.audience).await?;
        let verdict =
            self.teller.ask(app, actor.user().map(|by| Before::Send { conv, msg: &mut msg, recipients: &mut recipients, by })).await?;
        match &verdict {
            Verdict::Vanish => return Ok(Box::pin(std::future::ready(Ok(msg)))),
            Verdict::Changed(_) => check_size(app, &msg.content, msg.push_data.as_ref().map(String::len))?,
            Verdict::Go => {}
        }
        let calls = self.sent_calls(app, conv, &msg, &recipients, actor).await?;
        let note = match verdict {
            Verdict::Changed(note) => Some(note),
            _ => None,
        };
        let (app_id, cref, no_sync, origin) = (app.id, ConvRef::of(conv), new.no_sync, new.origin);
        let patched_ref = cref.clone();
        let event = move |msg: Message| Event::Message { app: app_id, conv: cref, msg: Arc::new(msg), recipients, no_sync, origin };
        // the sender hears what the app's hook changed
        let changed = move |msg: &Message| {
            note.map(|note| Event::MessagePatched {
                app: msg.app,
                conv: patched_ref,
                msg: Arc::new(msg.clone()),
                recipients: vec![msg.from.clone()],
                origin: None,
                note: Some(note),
            })
        };
        if msg.transient {
            // online only: not stored, so nothing would catch it up; the sender hears the failure
            self.bus.publish(event(msg.clone())).map_err(Error::internal)?;
            if let Some(e) = changed(&msg) {
                self.bus.deliver(e);
            }
            if !calls.is_empty() {
                self.store.outbox_add(&calls).await?;
                self.teller.bell.notify_one();
            }
            return Ok(Box::pin(std::future::ready(Ok(msg))));
        }
        // Stored and delivered in the conversation's order (`order.rs`). The rest runs to the
        // end even if the caller goes away: a committed message is always delivered, and its
        // hook calls are kept with it.
        let ticket = self.order.begin(app.id, conv.id);
        let queued = self.store.queue_message_with(&msg, &calls);
        let (bell, bus, has_calls) = (self.teller.bell.clone(), self.bus.clone(), !calls.is_empty());
        let stored = tokio::spawn(async move {
            let stored = queued.await?;
            ticket.stored(stored.seq, Some(event(stored.clone())));
            if has_calls {
                bell.notify_one();
            }
            if let Some(e) = changed(&stored) {
                bus.deliver(e);
            }
            Ok::<_, Error>(stored)
        });
        Ok(Box::pin(async move { stored.await.map_err(Error::internal)? }))
    }

    /// The hook calls a message's sending makes: who of its recipients (the sender aside) is
    /// online, who is not, and which of those turned the conversation's notifications off.
    async fn sent_calls(
        &self,
        app: &App,
        conv: &Conversation,
        msg: &Message,
        recipients: &[String],
        by: &Actor,
    ) -> Result<Vec<OutboxItem>> {
        if !self.teller.hooks().active(app) {
            return Ok(vec![]);
        }
        let others: Vec<String> = recipients.iter().filter(|r| **r != msg.from).cloned().collect();
        // Presence out of reach: everyone is taken as offline. The message is still stored and
        // delivered through the bus (to whoever is connected); the app's hooks may then push to
        // some who were online, which is better than no push to those who were not.
        let online = match self.presence.online(app.id, &others).await {
            Ok(online) => online,
            Err(e) => {
                tracing::warn!(app = app.id, error = %e, "presence out of reach: a message's recipients taken as offline");
                vec![]
            }
        };
        let offline: Vec<String> = others.into_iter().filter(|r| !online.contains(r)).collect();
        let muted = if offline.is_empty() || conv.kind == ConvKind::Chatroom {
            vec![]
        } else {
            let off: std::collections::HashSet<String> = self.conversations.notifications_off(app, conv).await?.into_iter().collect();
            offline.iter().filter(|u| off.contains(*u)).cloned().collect()
        };
        Ok(self.teller.calls_for(app, &After::Sent { conv, msg, online: &online, offline: &offline, muted: &muted, by }))
    }

    /// Store a message made elsewhere (an import from another service) with its own time: kept
    /// in history and counted unread, delivered to nobody now. The store keeps a conversation's
    /// timestamps in order, so a message older than the conversation's newest takes that time.
    pub async fn import_message(&self, app: &App, conv: &Conversation, new: NewMessage, timestamp: i64) -> Result<Message> {
        let content = new.content.ok_or_else(|| Error::invalid("message is required"))?;
        check_size(app, &content, None)?;
        self.users.ensure_users(app, &[&new.from]).await?;
        let msg = Message {
            mtype: new.mtype,
            ext: new.ext,
            mention_all: new.mention_all,
            mentions: new.mentions,
            system: new.system,
            ..Message::new(app.id, self.stamps.id_at(timestamp), conv.id, new.from, timestamp, content)
        };
        self.store.insert_message(&msg).await
    }

    /// A user may speak in a conversation they are a member of (in a chat room: that they are
    /// in), unless speech-muted (in the conversation, or app-wide: `global_mutes`), or mute-all
    /// is on and they are neither owner, manager nor allowlisted. In a service conversation a
    /// subscriber speaks to the service alone (`send_message`).
    async fn check_may_speak(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        match conv.kind {
            ConvKind::Service => {
                let subscribed = self.store.get_member(app.id, conv.id, user).await?.is_some_and(|m| m.role == Role::Subscriber);
                return if subscribed {
                    Ok(())
                } else {
                    Err(Error::NotAllowed("only the app's server and subscribers send to a service conversation".into()))
                };
            }
            // a chat room's standing (mute, allowlist) outlives presence: being in the room comes
            // first. Presence out of reach: the send fails with that error before anything is
            // stored (the sender may retry), rather than let anyone speak in the room.
            ConvKind::Chatroom if !self.presence.in_room(app.id, conv.id, user, self.now()).await? => return Err(Error::NotMember),
            _ => {}
        }
        self.global_mutes.check_global_mute(app, conv, user).await?;
        let m = self.conversations.member(app, conv, user).await?;
        if m.muted_until.is_some_and(|t| t > self.now()) {
            return Err(Error::Muted);
        }
        if conv.settings.mute_all && m.role == Role::Member && !m.allowlisted {
            return Err(Error::Muted);
        }
        Ok(())
    }

    /// Who a conversation's message goes to.
    async fn recipients(&self, app: &App, conv: &Conversation, audience: &Audience) -> Result<Vec<String>> {
        if let Audience::Only(users) = audience {
            return Ok(users.clone());
        }
        Ok(match conv.kind {
            // a chat room's recipients are who is in it: presence out of reach fails the send
            // before anything is stored (nothing lost; the sender may retry)
            ConvKind::Chatroom => self.presence.room_members(app.id, conv.id, usize::MAX, self.now()).await?,
            ConvKind::Service => {
                let q = MemberQuery { roles: Some(vec![Role::Subscriber]), ..Default::default() };
                self.store.list_members(app.id, conv.id, &q).await?.into_iter().map(|m| m.user).collect()
            }
            _ => self.store.member_ids(app.id, conv.id).await?,
        })
    }

    /// The stored message `r` names in `conv`, checked against the sender and timestamp given.
    async fn stored_message(&self, app: &App, conv: &Conversation, r: &MessageRef) -> Result<Message> {
        let msg = self.store.get_message(app.id, r.id).await?.filter(|m| m.conv == conv.id).ok_or(Error::MessageNotFound)?;
        if r.timestamp.is_some_and(|t| t != msg.timestamp) {
            return Err(Error::MessageNotFound);
        }
        if r.from.as_ref().is_some_and(|f| *f != msg.from) {
            return Err(Error::NotSender);
        }
        Ok(msg)
    }

    /// Replace a message's content (and, when the edit says so, its mentions). In a service
    /// conversation the id may name a broadcast.
    pub async fn edit_message(
        &self,
        app: &App,
        conv: &Conversation,
        r: &MessageRef,
        edit: Edit,
        actor: &Actor,
        origin: Option<Origin>,
    ) -> Result<Changed> {
        let Edit { content, mtype, mentions } = edit;
        check_size(app, &content, None)?;
        if let Some((_, ids)) = &mentions {
            if ids.len() > app.limits.mentions_max {
                return Err(Error::too_many("mentioned clients", app.limits.mentions_max));
            }
            for m in ids {
                app.validate_user_id(m)?;
            }
        }
        match self.stored_message(app, conv, r).await {
            Ok(msg) => {
                if msg.recalled_at.is_some() {
                    return Err(Error::Forbidden("a recalled message cannot be edited".into()));
                }
                let mut new = Message { content, mtype, edited_at: Some(self.now()), ..msg.clone() };
                if let Some((all, ids)) = &mentions {
                    (new.mention_all, new.mentions) = (*all, ids.clone());
                }
                let mut recipients = self.recipients(app, conv, &msg.audience).await?;
                let verdict = self
                    .teller
                    .ask(
                        app,
                        actor.user().map(|by| Before::Patch {
                            conv,
                            old: &msg,
                            new: &mut new,
                            recall: false,
                            recipients: &mut recipients,
                            by,
                        }),
                    )
                    .await?;
                if verdict == Verdict::Vanish {
                    return Ok(Changed::Message(new));
                }
                check_size(app, &new.content, None)?;
                let patch = MessagePatch {
                    content: Some(new.content),
                    mtype: Some(new.mtype),
                    edited_at: new.edited_at,
                    mentions,
                    ..Default::default()
                };
                let msg = self.store.update_message(app.id, msg.id, &patch).await?.ok_or(Error::MessageNotFound)?;
                self.publish_patch(app, conv, &msg, recipients, origin);
                // the editor hears what the app's hook changed, as a sender does
                if let (Verdict::Changed(note), Some(by)) = (verdict, actor.user()) {
                    let (m, c) = (Arc::new(msg.clone()), ConvRef::of(conv));
                    self.bus.deliver(Event::MessagePatched {
                        app: app.id,
                        conv: c,
                        msg: m,
                        recipients: vec![by.to_string()],
                        origin: None,
                        note: Some(note),
                    });
                }
                self.teller.tell(app, After::Patched { conv, msg: &msg, recall: false, by: actor }).await;
                Ok(Changed::Message(msg))
            }
            Err(Error::MessageNotFound) if conv.kind == ConvKind::Service => {
                let b = self.broadcast_ref(app, conv, r).await?;
                self.store.update_broadcast(app.id, b.id, &content).await?;
                Ok(Changed::Broadcast(Broadcast { content, ..b }))
            }
            Err(e) => Err(e),
        }
    }

    /// Recall a message: its content is erased and every viewer sees it as recalled. A user
    /// recalls within the app's `recall_window_secs` (when set); the app's server any time.
    pub async fn recall_message(
        &self,
        app: &App,
        conv: &Conversation,
        r: &MessageRef,
        actor: &Actor,
        origin: Option<Origin>,
    ) -> Result<Message> {
        self.recall(app, conv, r, actor, origin, None).await
    }

    /// A recall under a window, as Easemob binds its recalls (its REST's and its clients'): the
    /// app's `recall_window_secs`, or `default_secs` when the app sets none; `Error::TooLate`
    /// past it. A user recalls their own messages (a group's managers any member's, any time).
    pub async fn recall_message_within(
        &self,
        app: &App,
        conv: &Conversation,
        r: &MessageRef,
        actor: &Actor,
        origin: Option<Origin>,
        default_secs: i64,
    ) -> Result<Message> {
        let window = if app.limits.recall_window_secs > 0 { app.limits.recall_window_secs } else { default_secs };
        self.recall(app, conv, r, actor, origin, Some(window)).await
    }

    /// `bound`: the window the recall is held to, if any (users are held to the app's otherwise).
    async fn recall(
        &self,
        app: &App,
        conv: &Conversation,
        r: &MessageRef,
        actor: &Actor,
        origin: Option<Origin>,
        bound: Option<i64>,
    ) -> Result<Message> {
        let msg = self.stored_message(app, conv, r).await?;
        if msg.recalled_at.is_some() {
            return Ok(msg);
        }
        if let Some(u) = actor.user() {
            if u != msg.from {
                // a group's owner and managers moderate: they recall members' messages any time
                // (not in one-to-one conversations, whose creator is their owner)
                let manager = conv.kind != ConvKind::Chatroom
                    && !conv.unique
                    && self.store.get_member(app.id, conv.id, u).await?.is_some_and(|m| matches!(m.role, Role::Owner | Role::Admin));
                if !manager {
                    return Err(Error::NotSender);
                }
            } else {
                self.check_recall_window(&msg, bound.unwrap_or(app.limits.recall_window_secs))?;
            }
        } else if let Some(window) = bound {
            self.check_recall_window(&msg, window)?;
        }
        let now = self.now();
        let mut recalled =
            Message { content: Content::Text(String::new()), mtype: MessageType::RECALLED, recalled_at: Some(now), ..msg.clone() };
        let mut recipients = self.recipients(app, conv, &msg.audience).await?;
        let verdict = self
            .teller
            .ask(
                app,
                actor.user().map(|by| Before::Patch { conv, old: &msg, new: &mut recalled, recall: true, recipients: &mut recipients, by }),
            )
            .await?;
        if verdict == Verdict::Vanish {
            return Ok(recalled);
        }
        let patch = MessagePatch {
            content: Some(Content::Text(String::new())),
            mtype: Some(MessageType::RECALLED),
            recalled_at: Some(now),
            ..Default::default()
        };
        let msg = self.store.update_message(app.id, msg.id, &patch).await?.ok_or(Error::MessageNotFound)?;
        self.publish_patch(app, conv, &msg, recipients, origin);
        self.teller.tell(app, After::Patched { conv, msg: &msg, recall: true, by: actor }).await;
        Ok(msg)
    }

    /// A recall `window_secs` (0: none) after the message was sent is too late.
    fn check_recall_window(&self, msg: &Message, window_secs: i64) -> Result<()> {
        if window_secs > 0 && self.now() - msg.timestamp > window_secs * 1000 {
            return Err(Error::TooLate { window_secs });
        }
        Ok(())
    }

    fn publish_patch(&self, app: &App, conv: &Conversation, msg: &Message, recipients: Vec<String>, origin: Option<Origin>) {
        let (msg, conv) = (Arc::new(msg.clone()), ConvRef::of(conv));
        self.bus.deliver(Event::MessagePatched { app: app.id, conv, msg, recipients, origin, note: None });
    }

    /// Delete a stored message from the server (clients keep what they have).
    pub async fn delete_message(&self, app: &App, conv: &Conversation, r: &MessageRef) -> Result<()> {
        let msg = self.stored_message(app, conv, r).await?;
        self.store.delete_message(app.id, msg.id).await?;
        Ok(())
    }

    /// Delete a message from one user's view only.
    pub async fn hide_message(&self, app: &App, conv: &Conversation, r: &MessageRef, user: &str) -> Result<()> {
        app.validate_user_id(user)?;
        let msg = self.stored_message(app, conv, r).await?;
        if !self.store.hide_message(app.id, msg.id, user).await? {
            return Err(Error::MessageNotFound);
        }
        Ok(())
    }

    /// A stored message by id.
    pub async fn message(&self, app: &App, id: i64) -> Result<Message> {
        self.store.get_message(app.id, id).await?.ok_or(Error::MessageNotFound)
    }

    pub async fn history(&self, app: &App, q: &HistoryQuery) -> Result<Vec<Message>> {
        if q.limit < 1 || q.limit > app.limits.history_max_limit {
            return Err(Error::invalid(format!("limit must be 1 to {}", app.limits.history_max_limit)));
        }
        if let HistoryScope::Sender(u) | HistoryScope::ConvAs { user: u, .. } = &q.scope {
            app.validate_user_id(u)?;
        }
        self.store.history(app.id, q).await
    }

    /// A user's unread messages in one conversation, or in all their normal and service
    /// conversations (the sum of each one's count), each counted up to the app's
    /// `unread_count_max` (see `Limits::unread_bounds`).
    pub async fn unread_count(&self, app: &App, user: &str, conv: Option<&Conversation>) -> Result<i64> {
        app.validate_user_id(user)?;
        self.store.unread_count(app.id, user, conv.map(|c| c.id), app.limits.unread_bounds()).await
    }

    /// Move a member's read or delivered cursor up to a position, and tell the senders who asked
    /// for receipts: one delivery receipt per message, one read receipt per sender.
    pub async fn advance_cursor(&self, app: &App, conv: &Conversation, user: &str, cursor: Cursor, to: Position) -> Result<()> {
        self.advance(app, conv, user, cursor, to).await.map(|_| ())
    }

    /// A reader's own acknowledgement of one message (Easemob's `DELIVER_ACK` / `READ_ACK`):
    /// the reader's cursor moves up to it, and its sender is told of that message by a receipt
    /// naming it, whether or not it asked for receipts (the reader chose to tell). A message
    /// that asked for receipts is told of by the cursor as it passes it, once.
    pub async fn acknowledge(&self, app: &App, conv: &Conversation, user: &str, cursor: Cursor, id: i64) -> Result<()> {
        let m = self.store.get_message(app.id, id).await?.filter(|m| m.conv == conv.id).ok_or(Error::MessageNotFound)?;
        self.advance(app, conv, user, cursor, Position::Message(id)).await?;
        if !m.receipt && m.from != user {
            self.bus.deliver(Event::Receipt {
                app: app.id,
                to: m.from,
                conv: ConvRef::of(conv),
                msg: Some((m.id, m.foreign_id)),
                at: self.now(),
                read: cursor == Cursor::Read,
                by: user.to_string(),
            });
        }
        Ok(())
    }

    /// A reader read a whole conversation (Easemob's `CHANNEL_ACK`): the read cursor moves to
    /// now, and the other members are told by a read receipt naming no message (those the cursor
    /// told already are not told again).
    pub async fn acknowledge_conversation(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        let now = self.now();
        let told = self.advance(app, conv, user, Cursor::Read, Position::Time(now)).await?;
        for m in self.conversations.members(app, conv).await? {
            if m != user && !told.contains(&m) {
                self.bus.deliver(Event::Receipt {
                    app: app.id,
                    to: m,
                    conv: ConvRef::of(conv),
                    msg: None,
                    at: now,
                    read: true,
                    by: user.to_string(),
                });
            }
        }
        Ok(())
    }

    /// `advance_cursor`; the senders it told.
    async fn advance(
        &self,
        app: &App,
        conv: &Conversation,
        user: &str,
        cursor: Cursor,
        to: Position,
    ) -> Result<std::collections::HashSet<String>> {
        if matches!(conv.kind, ConvKind::Chatroom) {
            return Ok(Default::default());
        }
        let (seq, named) = match to {
            Position::Message(id) => match self.store.get_message(app.id, id).await?.filter(|m| m.conv == conv.id) {
                Some(m) => (m.seq, Some(m)),
                None => return Err(Error::MessageNotFound),
            },
            Position::Time(t) => (self.store.seq_at(app.id, conv.id, t).await?, None),
        };
        let now = self.now();
        let moved = self.store.advance_cursor(app.id, conv.id, user, cursor, seq, now).await?;
        if cursor == Cursor::Read && moved.to_seq > moved.from_seq && self.teller.hooks().active(app) {
            let read = match to {
                Position::Message(_) => named,
                // the newest message at that time
                Position::Time(t) => {
                    let q = HistoryQuery {
                        scope: HistoryScope::Conv(conv.id),
                        older_than: Some(Bound { timestamp: t, id: None, inclusive: true }),
                        newer_than: None,
                        ascending: false,
                        limit: 1,
                        mtype: None,
                    };
                    self.store.history(app.id, &q).await?.into_iter().next()
                }
            };
            if let Some(msg) = &read {
                self.teller.tell(app, After::Read { conv, user, msg }).await;
            }
        }
        let mut told = std::collections::HashSet::new();
        for m in moved.receipts {
            let (msg, notify) = match cursor {
                Cursor::Delivered => (Some((m.id, m.foreign_id.clone())), true),
                Cursor::Read => (None, told.insert(m.from.clone())),
            };
            if notify {
                let read = cursor == Cursor::Read;
                self.bus.deliver(Event::Receipt {
                    app: app.id,
                    to: m.from,
                    conv: ConvRef::of(conv),
                    msg,
                    at: now,
                    read,
                    by: user.to_string(),
                });
            }
        }
        Ok(told)
    }

    /// Every member's cursors as times.
    pub async fn cursor_times(&self, app: &App, conv: &Conversation) -> Result<Vec<CursorTimes>> {
        self.store.cursor_times(app.id, conv.id).await
    }

    /// A user's conversations with unread messages whose last message is after `since`, each
    /// counted as `unread_count` counts.
    pub async fn unread_summary(&self, app: &App, user: &str, since: i64, limit: i64) -> Result<Vec<UnreadEntry>> {
        self.store.unread_summary(app.id, user, since, limit, app.limits.unread_bounds()).await
    }

    /// Messages edited or recalled after `since` in a user's conversations.
    pub async fn patches_since(&self, app: &App, user: &str, since: i64, limit: i64) -> Result<Vec<Message>> {
        self.store.patches_since(app.id, user, since, limit).await
    }

    // ------------------------------------------------------------------ broadcasts

    /// An app-wide broadcast from a service conversation, valid for at most
    /// `broadcast_max_valid_days` (the default too).
    pub async fn create_broadcast(&self, app: &App, conv: &Conversation, new: NewBroadcast) -> Result<Broadcast> {
        if conv.kind != ConvKind::Service {
            return Err(Error::WrongKind { expected: ConvKind::Service });
        }
        let push_len = new.push.as_ref().map(|p| p.to_string().len());
        check_size(app, &new.content, push_len)?;
        self.users.ensure_users(app, &[&new.from]).await?;
        let now = self.now();
        let max_till = now + app.limits.broadcast_max_valid_days * 86_400_000;
        let valid_till = new.valid_till.unwrap_or(max_till);
        if valid_till <= now || valid_till > max_till {
            return Err(Error::invalid(format!(
                "valid_till must be in the future and at most {} days ahead",
                app.limits.broadcast_max_valid_days
            )));
        }
        let b = Broadcast {
            app: app.id,
            id: self.stamps.id_at(now),
            conv: conv.id,
            from: new.from,
            content: new.content,
            timestamp: now,
            valid_till,
            push: new.push,
            transient: new.transient,
        };
        if !b.transient {
            self.store.insert_broadcast(&b).await?;
        }
        let event = Event::Broadcast { app: app.id, broadcast: Arc::new(b.clone()) };
        if b.transient {
            // not stored: nothing would catch it up; the caller hears the failure
            self.bus.publish(event).map_err(Error::internal)?;
        } else {
            self.bus.deliver(event);
        }
        Ok(b)
    }

    async fn broadcast_ref(&self, app: &App, conv: &Conversation, r: &MessageRef) -> Result<Broadcast> {
        let b = self.store.get_broadcast(app.id, r.id).await?.filter(|b| b.conv == conv.id).ok_or(Error::MessageNotFound)?;
        if r.timestamp.is_some_and(|t| t != b.timestamp) {
            return Err(Error::MessageNotFound);
        }
        if r.from.as_ref().is_some_and(|f| *f != b.from) {
            return Err(Error::NotSender);
        }
        Ok(b)
    }

    pub async fn delete_broadcast(&self, app: &App, id: i64) -> Result<()> {
        if !self.store.delete_broadcast(app.id, id).await? {
            return Err(Error::MessageNotFound);
        }
        Ok(())
    }

    /// Broadcasts still valid now that were sent after `since` (for a client logging in).
    pub async fn active_broadcasts(&self, app: &App, since: i64) -> Result<Vec<Broadcast>> {
        let mut all = self.store.list_broadcasts(app.id, None, self.now(), 0, 100).await?;
        all.retain(|b| b.timestamp > since);
        all.reverse();
        Ok(all)
    }

    pub async fn broadcasts(&self, app: &App, conv: &Conversation, skip: i64, limit: i64) -> Result<Vec<Broadcast>> {
        if skip < 0 || !(1..=1000).contains(&limit) {
            return Err(Error::invalid("skip must not be negative and limit must be 1 to 1000"));
        }
        self.store.list_broadcasts(app.id, Some(conv.id), self.now(), skip, limit).await
    }
}
