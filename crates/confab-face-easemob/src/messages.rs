//! Messages (spec §3.3) and global mutes (§3.2): sending to users, groups and chat rooms, files,
//! history export, recall, import, and the conversation list.

use crate::Routes;

pub fn routes() -> Routes {
    vec![]
}
