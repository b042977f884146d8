//! Who acts: the app's server or a user. A leaf, so that `hooks.rs` need not import `conv.rs`
//! for it; re-exported as `conv::Actor`.

/// Who acts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Actor {
    /// The app's server, with admin rights.
    #[default]
    Admin,
    /// A user, within the rules.
    User(String),
}

impl Actor {
    pub fn user(&self) -> Option<&str> {
        match self {
            Actor::Admin => None,
            Actor::User(u) => Some(u),
        }
    }
}
