//! A push task for the app's push webhook. A leaf, so that `hooks.rs` (`After::PushTask`) need
//! not import `social.rs` for it; re-exported as `social::PushTask` (and `confab_engine::PushTask`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A push to deliver to the app's push webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushTask {
    pub id: i64,
    /// `single` (to users), `label` (to the users of every label), `app` (to every user).
    pub target: String,
    pub users: Vec<String>,
    pub labels: Vec<String>,
    pub strategy: i64,
    pub message: Value,
    pub created_at: i64,
}
