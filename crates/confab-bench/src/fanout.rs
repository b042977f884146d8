//! What every fan-out generator shares: the topology (groups of members, one sender each, a
//! window of messages in flight) and the result of one run, whichever server it ran against
//! (confab's realtime gateway, raw NATS core, ejabberd's MUC). The side-by-side rig
//! (`fanout-rig`) compares these.

use std::time::{Duration, Instant};

/// The topology on the command line (`nats-fanout`, `xmpp-fanout`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub(crate) struct TopologyArgs {
    /// Groups (conversations, subjects, rooms), one sender each.
    #[arg(long, default_value_t = 10)]
    conversations: usize,
    /// Clients per group, each its own connection (one of them sends).
    #[arg(long, default_value_t = 20)]
    members: usize,
    /// Messages each sender may have waiting for their ack (or echo).
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// How long to send.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

impl TopologyArgs {
    pub fn topology(self) -> Topology {
        Topology { groups: self.conversations, members: self.members, window: self.window, seconds: self.seconds, rate: None }
    }
}

/// `ws-fanout`'s and `msync-fanout`'s groups on the command line (the number of groups and the
/// seconds are the [`crate::Target`]'s `--conversations` and `--seconds`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub(crate) struct GroupArgs {
    /// Members per group conversation (one of them sends).
    #[arg(long, default_value_t = 20)]
    members: usize,
    /// Messages each sender may have waiting for their ack (or answer).
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Messages per second each sender sends, evenly spaced (still within the window);
    /// default: as fast as the window allows.
    #[arg(long)]
    rate: Option<f64>,
}

impl GroupArgs {
    pub fn topology(self, t: &crate::Target) -> Topology {
        Topology { groups: t.conversations, members: self.members, window: self.window, seconds: t.seconds, rate: self.rate }
    }
}

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
    /// Messages per second each sender sends, evenly spaced (an open loop: a late tick is made
    /// up at once), still within its window; None: as fast as the window allows.
    pub rate: Option<f64>,
}

impl Topology {
    /// The ticks a sender sends on, when it is paced.
    pub fn pacer(&self) -> Option<tokio::time::Interval> {
        self.rate.filter(|r| *r > 0.0).map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)))
    }
}

/// The run that `tasks` made (receivers: their latencies and 0; senders: no latencies and the
/// messages acknowledged), `delivered` counted by the receivers (read once they are done),
/// senders having begun at `began` for `seconds`.
pub(crate) async fn gather(
    mut tasks: tokio::task::JoinSet<(Vec<u32>, u64)>,
    delivered: &std::sync::atomic::AtomicU64,
    began: Instant,
    seconds: u64,
) -> anyhow::Result<FanoutRun> {
    let (mut lat, mut sent) = (Vec::new(), 0u64);
    while let Some(r) = tasks.join_next().await {
        let (l, s) = r?;
        lat.extend(l);
        sent += s;
    }
    let elapsed = Duration::from_secs(seconds).max(began.elapsed().min(Duration::from_secs(seconds)));
    let delivered = delivered.load(std::sync::atomic::Ordering::Relaxed);
    Ok(FanoutRun::new(sent, delivered, elapsed, lat).began_at(began))
}

/// User + system CPU time a process (`self`, or a pid) has used, in seconds, from
/// `/proc/PID/stat`; None when it cannot be read.
pub(crate) fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after the command (which may hold spaces) start after its closing parenthesis
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // utime and stime in clock ticks: `sysconf(_SC_CLK_TCK)`, Linux's USER_HZ, 100 on every
    // mainstream architecture
    Some(ticks as f64 / 100.0)
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct FanoutRun {
    /// Messages the senders sent (acknowledged, or echoed back to them; for REST, accepted).
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
    /// Requests that failed (REST runs).
    pub errors: u64,
}

impl FanoutRun {
    pub fn new(sent: u64, delivered: u64, elapsed: Duration, mut latencies_us: Vec<u32>) -> Self {
        latencies_us.sort_unstable();
        FanoutRun { sent, delivered, elapsed, latencies_us, began: None, errors: 0 }
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
