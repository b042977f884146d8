//! What every fan-out generator shares: the topology (groups of members, one sender each, a
//! window of messages in flight) and the result of one run, whichever server it ran against
//! (confab's realtime gateway, raw NATS core, ejabberd's MUC). The side-by-side rig
//! (`fanout-rig`) compares these.

use std::time::{Duration, Instant};

/// The shape of a fan-out run: `groups` groups of `members` clients, each its own connection;
/// member 0 of each group sends, as fast as `window` messages awaiting their acknowledgement (or
/// their echo) allow; the others receive every message. Each message carries its send time, so
/// a receiver measures send → receive.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Topology {
    pub groups: usize,
    pub members: usize,
    pub window: usize,
    pub seconds: u64,
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct FanoutRun {
    /// Messages the senders sent (acknowledged, or echoed back to them).
    pub sent: u64,
    /// Messages the receivers got (each receiver counts each message once).
    pub delivered: u64,
    /// The time the senders sent for.
    pub elapsed: Duration,
    /// Send → receive latencies of the deliveries, in µs, sorted.
    pub latencies_us: Vec<u32>,
    /// When the senders began (after every client connected and joined), so that a watcher can
    /// tell the sending from the setup.
    pub began: Option<Instant>,
}

impl FanoutRun {
    pub fn new(sent: u64, delivered: u64, elapsed: Duration, mut latencies_us: Vec<u32>) -> Self {
        latencies_us.sort_unstable();
        FanoutRun { sent, delivered, elapsed, latencies_us, began: None }
    }

    /// The run, marked with when its senders began.
    pub fn began_at(self, began: Instant) -> Self {
        FanoutRun { began: Some(began), ..self }
    }

    pub fn deliveries_per_sec(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn sent_per_sec(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-quantile of the latencies in ms (0 with none).
    pub fn latency_ms(&self, p: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        self.latencies_us[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0
    }

    /// One line: what ran, sends and deliveries per second, latency quantiles.
    pub fn print(&self, what: &str, t: &Topology) {
        println!(
            "{what}: {} groups of {}, window {}: {} sent ({:.0}/s), {} delivered ({:.0}/s); latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
            t.groups,
            t.members,
            t.window,
            self.sent,
            self.sent_per_sec(),
            self.delivered,
            self.deliveries_per_sec(),
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.latency_ms(1.0),
        );
    }
}
