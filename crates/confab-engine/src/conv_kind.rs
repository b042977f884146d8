//! The kinds of conversation. A leaf, so that `error.rs` (`Error::WrongKind`) need not import
//! `model.rs` for it; re-exported as `model::ConvKind`.

use serde::{Deserialize, Serialize};

/// Conversation kinds. The numbers are LeanCloud's `conv_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvKind {
    /// One-to-one or group conversation with stored membership.
    Normal = 1,
    /// Chat room: membership is who is present (online).
    Chatroom = 2,
    /// Service conversation: subscribers, broadcasts, per-user messages.
    Service = 3,
    /// Temporary conversation with a time to live.
    Temporary = 4,
    /// A thread: child of a group conversation, anchored at one of its messages.
    Thread = 5,
}

impl ConvKind {
    pub fn code(self) -> i64 {
        self as i64
    }
    pub fn from_code(c: i64) -> Option<Self> {
        Some(match c {
            1 => ConvKind::Normal,
            2 => ConvKind::Chatroom,
            3 => ConvKind::Service,
            4 => ConvKind::Temporary,
            5 => ConvKind::Thread,
            _ => return None,
        })
    }
}
