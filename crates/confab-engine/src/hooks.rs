//! The app's own code takes part (LeanCloud IM hooks, Easemob callbacks, the MaxIM webhook,
//! offline pushes). The engine decides *when*: before a user's action it asks [`Hooks::before`],
//! which may let it through, change it or refuse it; after anything happened it asks
//! [`Hooks::after`] for the calls to make, and keeps them in the store's outbox, in the same
//! transaction as a message, so none is lost. Faces decide *how* (each vendor's bodies, answers
//! and signatures), and the server runs the outbox.
//!
//! One rule lives here: the app's own server is never asked before what it does itself (REST
//! calls with the master key or an admin token); it is told afterwards like everyone else.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::commands::ConvUpdate;
use crate::error::{Error, Refused, Result};
use crate::model::{App, ConvChange, Conversation, Message};
use crate::presence::SessionRef;
use crate::push_task::PushTask;

pub use crate::outbox::OutboxItem;

/// A user's action, before it happens. Hooks may change what the `&mut` fields hold.
#[derive(Debug)]
pub enum Before<'a> {
    /// A message, with its recipients resolved, before it is stored and delivered.
    Send { conv: &'a Conversation, msg: &'a mut Message, recipients: &'a mut Vec<String>, by: &'a str },
    /// An edit (`recall` false: `new` holds the new content) or a recall of `old`.
    Patch { conv: &'a Conversation, old: &'a Message, new: &'a mut Message, recall: bool, recipients: &'a mut Vec<String>, by: &'a str },
    /// A conversation about to be created with these first members (the creator included).
    Start { conv: &'a Conversation, members: &'a [String], by: &'a str },
    /// Members about to be added (a self-join: `by` is the only member).
    Add { conv: &'a Conversation, members: &'a [String], by: &'a str },
    /// Members about to be removed by someone else (leaving on one's own is not asked).
    Remove { conv: &'a Conversation, members: &'a [String], by: &'a str },
    /// A change of name or custom attributes.
    Update { conv: &'a Conversation, patch: &'a mut ConvUpdate, by: &'a str },
    /// A member turning the conversation's notifications off (`true`) or on.
    Mute { conv: &'a Conversation, off: &'a mut bool, by: &'a str },
    /// A user, known by a session of theirs (`session`: its token), about to be signed in to
    /// realtime (LeanCloud's `_rtmClientSign`).
    SignIn { user: &'a crate::model::User, session: &'a str },
}

/// What the hooks said of an action they let through.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Verdict {
    #[default]
    Go,
    /// Go, changed; the actor is told why (LeanCloud's `patchCode` / `patchReason`).
    Changed(AppNote),
    /// Do not do it, but let the actor believe it was done (Easemob's pre-send rule that does
    /// not report blocking).
    Vanish,
}

/// An app's code and text, passed to the user it concerns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppNote {
    pub code: Option<String>,
    pub detail: Option<String>,
}

impl AppNote {
    /// The error of the app's code refusing `action`, with this note for the user.
    pub fn refusing(self, action: Refused) -> Error {
        Error::Rejected { action, code: self.code, detail: self.detail, failed: false }
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Offline {
    /// The user logged out.
    Logout,
    /// The connection was lost, or the server closed it for an error (code, name).
    Lost { error: Option<(i64, String)> },
    /// Another device with the same tag logged in.
    Conflict,
    /// Kicked by the app's server.
    Kicked { reason: Option<String> },
}

/// Something that happened, for the app's code to be told.
#[derive(Debug)]
pub enum After<'a> {
    /// A message was stored (or, transient, delivered) for `online` and `offline` recipients;
    /// `muted` of the offline ones turned the conversation's notifications off.
    Sent {
        conv: &'a Conversation,
        msg: &'a Message,
        online: &'a [String],
        offline: &'a [String],
        muted: &'a [String],
        by: &'a Actor,
    },
    /// A message was edited, or recalled.
    Patched {
        conv: &'a Conversation,
        msg: &'a Message,
        recall: bool,
        by: &'a Actor,
    },
    /// A conversation was created with these first members.
    Started {
        conv: &'a Conversation,
        members: &'a [String],
        by: &'a Actor,
    },
    Added {
        conv: &'a Conversation,
        members: &'a [String],
        by: &'a Actor,
    },
    /// Members left (`by` is one of them when they left on their own) or were removed.
    Removed {
        conv: &'a Conversation,
        members: &'a [String],
        by: &'a Actor,
    },
    /// A session opened.
    Online {
        user: &'a str,
        session: &'a SessionRef,
        ip: Option<&'a str>,
        reconnect: bool,
    },
    /// The app's server asked for a push (Easemob push tasks).
    PushTask {
        task: &'a PushTask,
    },
    /// A session ended.
    Offline {
        user: &'a str,
        session: &'a SessionRef,
        ip: Option<&'a str>,
        why: &'a Offline,
    },
    /// A member's read cursor moved forward, up to the message `msg`.
    Read {
        conv: &'a Conversation,
        user: &'a str,
        msg: &'a Message,
    },
    /// Members' standing changed as the members were told (`ConvChange::Muted`, `Unmuted`,
    /// `Blocked`, `Unblocked`, `RoleChanged` — an owner handing over is `RoleChanged` to
    /// `Role::Owner`). Joins and departures are `Added` and `Removed`, changes of name,
    /// attributes and settings `Updated`.
    Changed {
        conv: &'a Conversation,
        change: &'a ConvChange,
        by: &'a Actor,
    },
    /// A conversation's name, attributes or settings changed: `conv` as it is now, `old` as it was.
    Updated {
        conv: &'a Conversation,
        old: &'a Conversation,
        by: &'a Actor,
    },
    /// A conversation was deleted (a group's threads go with it, each told).
    Deleted {
        conv: &'a Conversation,
        by: &'a Actor,
    },
    /// `owner`'s contacts or user blocklist changed, as to `others` (only those it changed).
    Contact {
        op: ContactOp,
        owner: &'a str,
        others: &'a [String],
    },
    /// `user` reacted to a message (`added`) or took the reaction back; `count`: how many users
    /// have that reaction on the message now.
    Reacted {
        conv: &'a Conversation,
        msg: &'a Message,
        user: &'a str,
        reaction: &'a str,
        added: bool,
        count: i64,
    },
}

/// What happened to a user's relations (`After::Contact`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactOp {
    /// They became friends (both sides).
    Added,
    /// Their friendship ended (both sides).
    Removed,
    /// The owner blocked them.
    Blocked,
    /// The owner unblocked them.
    Unblocked,
}

/// The app's code, as the engine sees it.
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Whether the app has any hook or push set up: when not, the engine skips the work of
    /// asking (who is online, which members muted the conversation).
    fn active(&self, app: &App) -> bool;
    /// Ask before a user's action. `Err` refuses it (`Error::Rejected`). Hooks that are only
    /// told afterwards let everything through.
    async fn before(&self, _app: &App, _action: Before<'_>) -> Result<Verdict> {
        Ok(Verdict::Go)
    }
    /// The calls to make now that `what` happened.
    fn after(&self, app: &App, what: &After<'_>) -> Vec<OutboxItem>;
}

/// No hooks: every action goes ahead and nothing is told.
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {
    fn active(&self, _: &App) -> bool {
        false
    }
    fn after(&self, _: &App, _: &After<'_>) -> Vec<OutboxItem> {
        vec![]
    }
}

/// Several hook systems (an app may use more than one vendor's): each is asked in turn and sees
/// what the ones before it changed; the first refusal wins.
pub struct HookChain(pub Vec<std::sync::Arc<dyn Hooks>>);

#[async_trait]
impl Hooks for HookChain {
    fn active(&self, app: &App) -> bool {
        self.0.iter().any(|h| h.active(app))
    }

    async fn before(&self, app: &App, mut action: Before<'_>) -> Result<Verdict> {
        let mut verdict = Verdict::Go;
        for h in &self.0 {
            if !h.active(app) {
                continue;
            }
            match h.before(app, action.reborrow()).await? {
                Verdict::Vanish => return Ok(Verdict::Vanish),
                Verdict::Changed(note) => verdict = Verdict::Changed(note),
                Verdict::Go => {}
            }
        }
        Ok(verdict)
    }

    fn after(&self, app: &App, what: &After<'_>) -> Vec<OutboxItem> {
        self.0.iter().filter(|h| h.active(app)).flat_map(|h| h.after(app, what)).collect()
    }
}

impl Before<'_> {
    /// The same action, borrowed again (to pass it down a chain).
    pub fn reborrow(&mut self) -> Before<'_> {
        match self {
            Before::Send { conv, msg, recipients, by } => Before::Send { conv, msg, recipients, by },
            Before::Patch { conv, old, new, recall, recipients, by } => Before::Patch { conv, old, new, recall: *recall, recipients, by },
            Before::Start { conv, members, by } => Before::Start { conv, members, by },
            Before::Add { conv, members, by } => Before::Add { conv, members, by },
            Before::Remove { conv, members, by } => Before::Remove { conv, members, by },
            Before::Update { conv, patch, by } => Before::Update { conv, patch, by },
            Before::Mute { conv, off, by } => Before::Mute { conv, off, by },
            Before::SignIn { user, session } => Before::SignIn { user, session },
        }
    }
}

pub(crate) static NO_HOOKS: NoHooks = NoHooks;
