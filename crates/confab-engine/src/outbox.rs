//! An item of the store's outbox: a call to the app's code, kept until it is made (`hooks.rs`
//! makes them, `store.rs` keeps them). A leaf, so that neither imports the other for it;
//! re-exported as `hooks::OutboxItem`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A call to make after the fact, kept until it is made. `sink` names who makes it (a face's
/// hooks: `leancloud`, `easemob`, `maxim`; or `push`), `name` what it is (a hook's name, an
/// event's kind), `body` what the sink needs to make it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: i64,
    pub app: i64,
    pub sink: String,
    pub name: String,
    pub body: Value,
    /// Calls made so far.
    pub attempts: u32,
    /// When it is due (Unix ms); while a node works on it, when that claim lapses.
    pub next_at: i64,
    pub created_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// It ran out of attempts: kept, not tried again until asked to.
    pub failed: bool,
}

impl OutboxItem {
    /// A new item, due now; the engine gives it its id and times.
    pub fn new(sink: &str, name: &str, body: Value) -> OutboxItem {
        OutboxItem {
            id: 0,
            app: 0,
            sink: sink.into(),
            name: name.into(),
            body,
            attempts: 0,
            next_at: 0,
            created_at: 0,
            last_error: None,
            failed: false,
        }
    }
}
