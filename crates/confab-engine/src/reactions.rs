//! Reactions to messages (Easemob 消息表情回复): a user reacts to a one-to-one or group message of
//! a conversation they are in, once per reaction, and a message holds at most
//! `em_reactions_per_message_max` distinct reactions. Kept as entries (`ns::REACTIONS`, key = the
//! message id, one item per user and reaction, in the order they reacted), so every face's
//! messages can carry them.

use std::sync::Arc;

use md5::{Digest, Md5};
use serde_json::json;

use crate::collections::Collections;
use crate::conv::Conversations;
use crate::entries::{ns, Entry, EntryFilter, EntryQuery, Overwrite, Put, PutRule};
use crate::error::{Error, Result};
use crate::hooks::After;
use crate::message::Messages;
use crate::model::{App, ConvKind, Conversation, Message};
use crate::teller::Teller;

/// Longest reaction (an emoji id), in characters.
pub const REACTION_MAX_CHARS: usize = 128;

/// One reaction on one message, as a user sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionSummary {
    /// Stable for the message and reaction.
    pub id: String,
    pub reaction: String,
    pub count: i64,
    /// Whether the asking user is among those who reacted.
    pub state: bool,
    /// Who reacted, in the order they did (all of them, or the page asked for).
    pub users: Vec<String>,
}

/// A user's reaction as stored: its id (the entry's sequence number) and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionRecord {
    pub id: i64,
    /// The message's conversation, and whether it is one-to-one (else a group).
    pub unique: bool,
    pub conv: i64,
    pub created_at: i64,
}

const SEP: char = '\u{1f}';

fn item(reaction: &str, user: &str) -> String {
    format!("{reaction}{SEP}{user}")
}

fn split(item: &str) -> Option<(&str, &str)> {
    item.split_once(SEP)
}

/// A reaction's id: the same for a message and reaction whoever reacted first.
pub fn reaction_id(msg: i64, reaction: &str) -> String {
    let d = Md5::digest(format!("{msg}{SEP}{reaction}").as_bytes());
    (u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 1).to_string()
}

fn check_reaction(reaction: &str) -> Result<()> {
    if reaction.is_empty() || reaction.chars().count() > REACTION_MAX_CHARS || reaction.chars().any(char::is_control) {
        return Err(Error::invalid(format!("a reaction is 1 to {REACTION_MAX_CHARS} characters, no control characters")));
    }
    Ok(())
}

/// The reactions service. Built by `Engine::new`, reached as `engine.reactions()`.
///
/// It holds only what it uses:
/// * `messages`: the message reacted to;
/// * `conversations`: its conversation and the user's membership;
/// * `collections`: the keyed-collections service the reactions live in;
/// * `teller`: tells the app's code a reaction was added or taken back.
pub struct Reactions {
    pub(crate) messages: Arc<Messages>,
    pub(crate) conversations: Arc<Conversations>,
    pub(crate) collections: Arc<Collections>,
    pub(crate) teller: Teller,
}

impl Reactions {
    /// The message, if `user` may react to it: a one-to-one or group message (`WrongKind`
    /// otherwise) of a conversation the user is in (`NotMember`).
    async fn reactable(&self, app: &App, user: &str, msg: i64) -> Result<(Message, Conversation, ReactionRecord)> {
        let m = self.messages.message(app, msg).await?;
        let conv = self.conversations.conversation(app, m.conv, Some(ConvKind::Normal)).await?;
        self.conversations.member(app, &conv, user).await?;
        let rec = ReactionRecord { id: 0, unique: conv.unique, conv: conv.id, created_at: 0 };
        Ok((m, conv, rec))
    }

    async fn message_reactions(&self, app: &App, msg: i64) -> Result<Vec<Entry>> {
        self.collections.list(app, &EntryQuery::all(EntryFilter::collection(ns::REACTIONS, msg.to_string()))).await
    }

    /// React. Reacting twice with the same reaction is `NotAllowed`; a reaction that would be the
    /// message's `em_reactions_per_message_max + 1`-th distinct one is `TooMany`.
    pub async fn add_reaction(&self, app: &App, user: &str, msg: i64, reaction: &str) -> Result<ReactionRecord> {
        check_reaction(reaction)?;
        let (m, conv, mut rec) = self.reactable(app, user, msg).await?;
        let existing = self.message_reactions(app, msg).await?;
        let max = app.limits.em_reactions_per_message_max;
        let mut distinct: Vec<&str> = existing.iter().filter_map(|e| split(&e.item)).map(|(r, _)| r).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if max > 0 && !distinct.contains(&reaction) && distinct.len() as i64 >= max {
            return Err(Error::too_many("reactions on a message", max as usize));
        }
        let e = Entry::new(ns::REACTIONS, msg.to_string(), item(reaction, user), json!({})).owned_by(user);
        let rule = PutRule { overwrite: Overwrite::Never, max_items: None };
        if self.collections.put(app, vec![e], rule).await? != [Put::Added] {
            return Err(Error::NotAllowed("the user has this reaction on the message already".into()));
        }
        let stored =
            self.collections.get(app, ns::REACTIONS, &msg.to_string(), &item(reaction, user)).await?.ok_or(Error::MessageNotFound)?;
        rec.id = stored.seq;
        rec.created_at = stored.created_at;
        let count = 1 + existing.iter().filter_map(|e| split(&e.item)).filter(|(r, _)| *r == reaction).count() as i64;
        self.teller.tell(app, After::Reacted { conv: &conv, msg: &m, user, reaction, added: true, count }).await;
        Ok(rec)
    }

    /// Take a reaction back; `NotAllowed` when the user had not reacted so.
    pub async fn remove_reaction(&self, app: &App, user: &str, msg: i64, reaction: &str) -> Result<()> {
        check_reaction(reaction)?;
        let (m, conv, _) = self.reactable(app, user, msg).await?;
        let f = EntryFilter::collection(ns::REACTIONS, msg.to_string()).items(vec![item(reaction, user)]);
        if self.collections.delete(app, &f).await?.is_empty() {
            return Err(Error::NotAllowed("the user has no such reaction on the message".into()));
        }
        if self.teller.hooks().active(app) {
            let count =
                self.message_reactions(app, msg).await?.iter().filter_map(|e| split(&e.item)).filter(|(r, _)| *r == reaction).count();
            self.teller.tell(app, After::Reacted { conv: &conv, msg: &m, user, reaction, added: false, count: count as i64 }).await;
        }
        Ok(())
    }

    /// The reactions on a message as `user` sees them, in the order each was first made; each
    /// with its first `users_max` users.
    pub async fn reactions(&self, app: &App, user: &str, msg: i64, users_max: usize) -> Result<Vec<ReactionSummary>> {
        self.reactable(app, user, msg).await?;
        let mut out: Vec<ReactionSummary> = Vec::new();
        for e in self.message_reactions(app, msg).await? {
            let Some((r, u)) = split(&e.item) else { continue };
            let i = match out.iter().position(|s| s.reaction == r) {
                Some(i) => i,
                None => {
                    out.push(ReactionSummary { id: reaction_id(msg, r), reaction: r.to_string(), count: 0, state: false, users: vec![] });
                    out.len() - 1
                }
            };
            let s = &mut out[i];
            s.count += 1;
            s.state |= u == user;
            if s.users.len() < users_max {
                s.users.push(u.to_string());
            }
        }
        Ok(out)
    }

    /// One reaction's users in the order they reacted: `skip` passed over, at most `limit`.
    pub async fn reaction_users(
        &self,
        app: &App,
        user: &str,
        msg: i64,
        reaction: &str,
        skip: usize,
        limit: usize,
    ) -> Result<ReactionSummary> {
        check_reaction(reaction)?;
        self.reactable(app, user, msg).await?;
        let users: Vec<String> = self
            .message_reactions(app, msg)
            .await?
            .iter()
            .filter_map(|e| split(&e.item))
            .filter(|(r, _)| *r == reaction)
            .map(|(_, u)| u.to_string())
            .collect();
        Ok(ReactionSummary {
            id: reaction_id(msg, reaction),
            reaction: reaction.to_string(),
            count: users.len() as i64,
            state: users.iter().any(|u| u == user),
            users: users.into_iter().skip(skip).take(limit).collect(),
        })
    }
}
