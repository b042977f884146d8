//! Global speech mutes (Easemob 全局禁言): a user muted app-wide in one-to-one chats, in groups or
//! in chat rooms, for a while or for good. Kept as entries (`ns::GLOBAL_MUTES`, key = the user,
//! item = the scope, expiry = the end) and checked on every send a user makes, whatever face it
//! comes through.

use std::sync::Arc;

use crate::collections::Collections;
use crate::entries::{ns, Entry, EntryFilter, EntryQuery, PutRule};
use crate::error::{Error, Result};
use crate::ids::Stamps;
use crate::model::{App, ConvKind, Conversation};

/// Where a global mute applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MuteScope {
    /// One-to-one conversations.
    Chat,
    /// Groups (every conversation that is neither one-to-one nor a chat room).
    GroupChat,
    /// Chat rooms.
    Chatroom,
}

impl MuteScope {
    pub const ALL: [MuteScope; 3] = [MuteScope::Chat, MuteScope::GroupChat, MuteScope::Chatroom];

    /// Easemob's name: `chat`, `groupchat`, `chatroom`.
    pub fn name(self) -> &'static str {
        match self {
            MuteScope::Chat => "chat",
            MuteScope::GroupChat => "groupchat",
            MuteScope::Chatroom => "chatroom",
        }
    }

    pub fn parse(s: &str) -> Option<MuteScope> {
        MuteScope::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The scope a conversation's messages fall in.
    pub fn of(conv: &Conversation) -> MuteScope {
        match conv.kind {
            ConvKind::Chatroom => MuteScope::Chatroom,
            ConvKind::Normal if conv.unique => MuteScope::Chat,
            _ => MuteScope::GroupChat,
        }
    }
}

/// One user's global mute in one scope: until when (Unix ms; None = for good).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalMute {
    pub user: String,
    pub scope: MuteScope,
    pub until: Option<i64>,
}

fn mute_of(e: &Entry) -> Option<GlobalMute> {
    Some(GlobalMute { user: e.key.clone(), scope: MuteScope::parse(&e.item)?, until: e.expires_at })
}

/// The global mutes service. Built by `Engine::new`, reached as `engine.global_mutes()`; a send
/// asks it (`check_global_mute`) whatever face it comes through.
///
/// It holds only what it uses: `collections`, the keyed-collections service the mutes live in,
/// and `stamps`, the engine's clock (a mute's end).
pub struct GlobalMutes {
    pub(crate) collections: Arc<Collections>,
    pub(crate) stamps: Stamps,
}

impl GlobalMutes {
    /// Mute a user app-wide in one scope for `secs` seconds: `0` lifts the mute, `-1` mutes for
    /// good; other negative values are invalid.
    pub async fn set_global_mute(&self, app: &App, user: &str, scope: MuteScope, secs: i64) -> Result<()> {
        app.validate_user_id(user)?;
        match secs {
            0 => {
                let f = EntryFilter::collection(ns::GLOBAL_MUTES, user).items(vec![scope.name().to_string()]);
                self.collections.delete(app, &f).await?;
            }
            -1 => {
                let e = Entry::new(ns::GLOBAL_MUTES, user, scope.name(), serde_json::Value::Null);
                self.collections.put(app, vec![e], PutRule::default()).await?;
            }
            s if s > 0 => {
                let until = self.stamps.now().saturating_add(s.saturating_mul(1000));
                let e = Entry::new(ns::GLOBAL_MUTES, user, scope.name(), serde_json::Value::Null).expiring(Some(until));
                self.collections.put(app, vec![e], PutRule::default()).await?;
            }
            _ => return Err(Error::invalid("a mute lasts -1 (for good), 0 (lifted) or a positive number of seconds")),
        }
        Ok(())
    }

    /// A user's global mutes in force now.
    pub async fn global_mutes(&self, app: &App, user: &str) -> Result<Vec<GlobalMute>> {
        let q = EntryQuery::all(EntryFilter::collection(ns::GLOBAL_MUTES, user));
        Ok(self.collections.list(app, &q).await?.iter().filter_map(mute_of).collect())
    }

    /// Every global mute in force in the app, oldest first: `skip` of them passed over, at most
    /// `limit` returned.
    pub async fn all_global_mutes(&self, app: &App, skip: i64, limit: i64) -> Result<Vec<GlobalMute>> {
        let q = EntryQuery {
            filter: EntryFilter { ns: ns::GLOBAL_MUTES.to_string(), ..Default::default() },
            after: None,
            limit: skip.saturating_add(limit),
            desc: false,
        };
        Ok(self.collections.list(app, &q).await?.iter().skip(skip.max(0) as usize).filter_map(mute_of).collect())
    }

    /// Refuse a user's message to a conversation whose scope they are globally muted in.
    pub(crate) async fn check_global_mute(&self, app: &App, conv: &Conversation, user: &str) -> Result<()> {
        let scope = MuteScope::of(conv);
        if self.collections.get(app, ns::GLOBAL_MUTES, user, scope.name()).await?.is_some() {
            return Err(Error::Muted);
        }
        Ok(())
    }
}
