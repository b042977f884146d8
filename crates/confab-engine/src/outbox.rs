//! An item of the store's outbox: a call to the app's code, kept until it is made (`hooks.rs`
//! makes them, `store.rs` keeps them), and the counters of those calls. A leaf, so that neither
//! imports the other for them; re-exported as `hooks::OutboxItem` and `store::HookStat`.

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

/// Counters of one kind of call to an app's code, added up since the app began.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookStat {
    pub app: i64,
    /// `leancloud`, `easemob`, `maxim`, `push`.
    pub sink: String,
    /// The hook, callback or event.
    pub name: String,
    pub calls: u64,
    /// Calls that failed (an error status, no answer, a bad answer), timeouts included.
    pub failures: u64,
    pub timeouts: u64,
    /// Latency: the sum and the longest, in ms, and how many calls took at most
    /// [`HookStat::BUCKETS_MS`] each (the last bucket: longer).
    pub total_ms: u64,
    pub max_ms: u64,
    pub buckets: [u64; 6],
    /// When it last changed (Unix ms).
    pub updated_at: i64,
}

impl HookStat {
    pub const BUCKETS_MS: [u64; 5] = [10, 50, 200, 1000, 5000];

    /// Count one call that took `ms`.
    pub fn record(&mut self, ms: u64, failed: bool, timed_out: bool) {
        self.calls += 1;
        self.failures += u64::from(failed || timed_out);
        self.timeouts += u64::from(timed_out);
        self.total_ms += ms;
        self.max_ms = self.max_ms.max(ms);
        let b = Self::BUCKETS_MS.iter().position(|&le| ms <= le).unwrap_or(Self::BUCKETS_MS.len());
        self.buckets[b] += 1;
    }

    /// Add another's counts to this one.
    pub fn merge(&mut self, o: &HookStat) {
        self.calls += o.calls;
        self.failures += o.failures;
        self.timeouts += o.timeouts;
        self.total_ms += o.total_ms;
        self.max_ms = self.max_ms.max(o.max_ms);
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.updated_at = self.updated_at.max(o.updated_at);
    }
}
