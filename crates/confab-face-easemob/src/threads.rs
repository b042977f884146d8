//! Threads of group messages (§3.14).

use crate::Routes;

pub fn routes() -> Routes {
    vec![]
}
