//! Time the tests drive: the engine's clock is the wall clock plus an offset a test moves on,
//! so that a rule of time (a recall window, a mute's end, a login back-off, a token's expiry)
//! is tested by moving time rather than by sleeping through it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use confab_engine::ids::{Clock, SystemClock};

/// The wall clock, moved on by `advance` (never back: ids and sequences stay increasing).
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    /// Move the engine's time on by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}
