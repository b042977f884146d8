//! The engine's errors. It imports only leaves (`conv_kind`, `quota`), so every other file may
//! import it without making a circle.

use std::fmt::Display;

use crate::conv_kind::ConvKind;
use crate::quota::Quota;

/// Every way an engine call can fail. Each face maps these to its own error format in one place.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    #[error("app not found")]
    AppNotFound,
    #[error("conversation not found")]
    ConversationNotFound,
    /// The conversation exists but is of another kind than the call needs.
    #[error("conversation is not a {expected:?} conversation")]
    WrongKind { expected: ConvKind },
    #[error("message not found")]
    MessageNotFound,
    #[error("user not found: {0}")]
    UserNotFound(String),
    #[error("user already exists: {0}")]
    UserExists(String),
    /// The caller named a message but is not its sender.
    #[error("only the sender may change this message")]
    NotSender,
    #[error("not a member of the conversation")]
    NotMember,
    /// The member may not speak (speech-muted, or the conversation is muted for members).
    #[error("the member may not speak in this conversation")]
    Muted,
    /// The user is on the conversation's blocklist.
    #[error("blocked in this conversation")]
    Blocked,
    /// The caller's role does not allow the operation.
    #[error("{0}")]
    NotAllowed(String),
    /// Past the time an action is allowed in (a recall window).
    #[error("messages can be recalled within {window_secs} seconds of sending")]
    TooLate { window_secs: i64 },
    /// A plan quota would be passed (`quotas.rs`): nothing was written.
    #[error("over the quota of {quota} (at most {max})")]
    OverQuota { quota: Quota, max: i64 },
    #[error("conversation is full (at most {max} members)")]
    ConversationFull { max: i64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("wrong credentials")]
    BadCredentials,
    /// Bad input: a missing or malformed field, an out-of-range value.
    #[error("{0}")]
    Invalid(String),
    /// A message's content (with its push data) over the app's size limit, in bytes.
    #[error("message is too large (at most {max} bytes)")]
    MessageTooLarge { max: usize },
    /// A value over its size limit (bytes or characters).
    #[error("{what} is too large (at most {max})")]
    TooLarge { what: String, max: usize },
    /// A list with more items than allowed.
    #[error("too many {what} (at most {max})")]
    TooMany { what: String, max: usize },
    /// Over a rate limit (or the login back-off, or a full password-hashing queue): retry after
    /// this many seconds (`Retry-After`).
    #[error("rate limit exceeded ({bucket}); retry after {retry_after_secs} s")]
    RateLimited { bucket: String, retry_after_secs: u64 },
    /// The app's own code refused the action (a hook's answer), or the hook failed and the app
    /// refuses when its hooks fail (`failed`). `code` and `detail` are the app's, for the user.
    #[error("refused by the app's hook{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected { action: Refused, code: Option<String>, detail: Option<String>, failed: bool },
    #[error("internal error: {0}")]
    Internal(String),
}

/// What an app's hook refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A new message.
    Message,
    /// An edit or a recall.
    Patch,
    /// Creating a conversation, adding or removing members, changing it.
    Conversation,
    /// Signing a user in.
    SignIn,
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    pub fn internal(e: impl Display) -> Self {
        Error::Internal(e.to_string())
    }
    pub fn too_many(what: &str, max: usize) -> Self {
        Error::TooMany { what: what.to_string(), max }
    }
    pub fn too_large(what: &str, max: usize) -> Self {
        Error::TooLarge { what: what.to_string(), max }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
