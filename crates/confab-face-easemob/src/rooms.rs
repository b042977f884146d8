//! Groups and chat rooms (§3.6–§3.9): management, announcements, shared files, chat room custom
//! attributes and super admins, and the one generic mechanism behind every member-list endpoint.

use crate::Routes;

pub fn routes() -> Routes {
    vec![]
}
