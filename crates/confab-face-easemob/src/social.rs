//! A user's relations and settings: contacts and blocklists (§3.4), user metadata (§3.5), offline
//! push settings and templates (§3.10), push labels and tasks (§3.11), presence (§3.12).

use crate::Routes;

pub fn routes() -> Routes {
    vec![]
}
