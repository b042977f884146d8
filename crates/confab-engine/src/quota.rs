//! A plan quota, as a write refused by it names it (`Error::OverQuota`). A leaf, so that
//! `error.rs` need not import `quotas.rs` for it; re-exported as `quotas::Quota` (and
//! `confab_engine::Quota`).

use std::fmt;

/// A quota a write was refused by (`Error::OverQuota`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Quota {
    /// Registered users of the app (`em_max_users`).
    Users,
    /// Groups of the app: normal conversations that are not unique (`em_max_groups`).
    Groups,
    /// Chat rooms of the app (`em_max_chatrooms`; below 0: none at all).
    Chatrooms,
    /// Groups this user is a member of (`em_max_groups_per_user`).
    GroupsPerUser(String),
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quota::Users => write!(f, "users"),
            Quota::Groups => write!(f, "groups"),
            Quota::Chatrooms => write!(f, "chat rooms"),
            Quota::GroupsPerUser(u) => write!(f, "groups of {u}"),
        }
    }
}
