//! Reactions to messages (§3.13).

use crate::Routes;

pub fn routes() -> Routes {
    vec![]
}
