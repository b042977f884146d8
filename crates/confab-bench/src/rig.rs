//! `fanout-rig`: group fan-out side by side, in one sitting and one topology — confab's realtime
//! gateway (`ws-fanout`, windows 1 and 16, against `confab serve` in a process of its own), raw
//! NATS core pub/sub (`nats-fanout`, Debian's `nats-server`) and ejabberd's MUC (`xmpp-fanout`,
//! Debian's `ejabberd`, plaintext c2s, no MAM) — interleaved, `--runs` rounds. For every run it
//! reads the CPU time the server's process and this generator's process used (from
//! `/proc/PID/stat`), and it ends with each system's means and the ratios the issue judges:
//! confab's deliveries per second against NATS's and ejabberd's.
//!
//! Every server runs on 127.0.0.1 on a port of its own, started by the rig and stopped at the
//! end; confab's on a fresh data directory, durable as it is by default.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::fanout::{cpu_secs, FanoutRun, Topology};
use crate::Lc;

#[derive(clap::Args)]
pub(crate) struct RigArgs {
    /// The `confab` binary (default: the one beside this program, `target/release/confab`).
    #[arg(long)]
    confab: Option<PathBuf>,
    /// Groups (conversations, subjects, rooms).
    #[arg(long, default_value_t = 10)]
    groups: usize,
    /// Members per group, each its own connection; one of them sends.
    #[arg(long, default_value_t = 20)]
    members: usize,
    /// Seconds each run sends for.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds; each round runs every system once, in turn.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The systems to run (a missing server program is an error, not a skipped row).
    #[arg(long, value_delimiter = ',', default_value = "confab,nats,ejabberd")]
    systems: Vec<String>,
}

/// `confab serve` on a fresh data directory, with an app whose message rate limit is out of the
/// way (the rig measures delivery, not the limiter).
struct ConfabServer {
    child: Child,
    _dir: tempfile::TempDir,
    lc: Arc<Lc>,
}

impl ConfabServer {
    async fn start(bin: &PathBuf) -> anyhow::Result<ConfabServer> {
        anyhow::ensure!(bin.exists(), "no confab binary at {} (cargo build --release -p confab-server -p confab-bench)", bin.display());
        let dir = tempfile::tempdir()?;
        let cli = |args: &[&str]| -> anyhow::Result<String> {
            let out = Command::new(bin).args(args).env("CONFAB_DATA_DIR", dir.path()).output()?;
            anyhow::ensure!(out.status.success(), "confab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Ok(String::from_utf8(out.stdout)?)
        };
        let app: Value = serde_json::from_str(&cli(&["app", "create", "--name", "bench", "--json"])?)?;
        cli(&["app", "set", "bench", "rates.lc.message.per_minute=100000000"])?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(bin)
            .arg("serve")
            .env("CONFAB_DATA_DIR", dir.path())
            .env("CONFAB_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start confab serve")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{base}/healthz")).send().await.is_err() {
            anyhow::ensure!(Instant::now() < ready, "confab serve did not answer /healthz within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let key = |k: &str| app["leancloud"][k].as_str().map(str::to_string).with_context(|| format!("app create --json: leancloud.{k}"));
        let lc = Lc::remote(&base, &key("app_id")?, &key("master_key")?, 256)?;
        Ok(ConfabServer { child, _dir: dir, lc: Arc::new(lc) })
    }
}

impl ConfabServer {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ConfabServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CPU time the server and this generator had used at one moment.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    server: Option<f64>,
    generator: Option<f64>,
}

/// One run's result with the CPU each side used, as a share of one core (100% = one core busy).
struct Row {
    system: &'static str,
    window: usize,
    run: FanoutRun,
    server_cpu: f64,
    generator_cpu: f64,
}

/// Run `run` and read the CPU the server (`pid`) and this process used while its senders sent: a
/// sampler reads both every 50 ms, and the run's `began` and `elapsed` pick the span (the whole
/// call when the generator does not say when it began).
async fn measured(
    system: &'static str,
    window: usize,
    pid: u32,
    run: impl std::future::Future<Output = anyhow::Result<FanoutRun>>,
) -> anyhow::Result<Row> {
    let server = pid.to_string();
    let sample = move || Sample { at: Instant::now(), server: cpu_secs(&server), generator: cpu_secs("self") };
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut samples = vec![sample()];
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => samples.push(sample()),
            }
        }
        samples.push(sample());
        samples
    });
    let run = run.await;
    let _ = stop_tx.send(());
    let samples = sampler.await?;
    let run = run?;
    let (from, to) = match run.began {
        Some(b) => (b, b + run.elapsed),
        None => (samples[0].at, samples[samples.len() - 1].at),
    };
    // the samples nearest the span's ends
    let nearest = |t: Instant| samples.iter().min_by_key(|s| s.at.max(t) - s.at.min(t)).copied();
    let (a, b) = (nearest(from), nearest(to));
    let share = |pick: fn(&Sample) -> Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b.at > a.at => match (pick(&a), pick(&b)) {
            (Some(x), Some(y)) => (y - x) / (b.at - a.at).as_secs_f64() * 100.0,
            _ => f64::NAN,
        },
        _ => f64::NAN,
    };
    let row = Row { system, window, server_cpu: share(|s| s.server), generator_cpu: share(|s| s.generator), run };
    println!(
        "{system} window {window}: {:.0} deliveries/s ({:.0} messages/s), p50 {:.1} ms, p99 {:.1} ms; server CPU {:.0}%, generator CPU {:.0}% (100% = one core busy)",
        row.run.deliveries_per_sec(),
        row.run.sent_per_sec(),
        row.run.latency_ms(0.5),
        row.run.latency_ms(0.99),
        row.server_cpu,
        row.generator_cpu
    );
    Ok(row)
}

pub(crate) async fn rig(a: RigArgs) -> anyhow::Result<()> {
    let want = |s: &str| a.systems.iter().any(|x| x == s);
    let topo = |window| Topology { groups: a.groups, members: a.members, window, seconds: a.seconds, rate: None };
    let bin = match &a.confab {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("confab"),
    };
    let confab = if want("confab") { Some(ConfabServer::start(&bin).await?) } else { None };
    let nats = if want("nats") { Some(crate::nats::NatsServer::start()?) } else { None };
    let ejabberd = if want("ejabberd") { Some(crate::xmpp::Ejabberd::start()?) } else { None };
    println!(
        "fanout-rig: {} groups of {}, one sender each, {} s a run, {} rounds, interleaved; {} cores",
        a.groups,
        a.members,
        a.seconds,
        a.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rows = Vec::new();
    for round in 1..=a.runs {
        println!("-- round {round}");
        if let Some(c) = &confab {
            for w in [1, 16] {
                rows.push(measured("confab", w, c.pid(), crate::ws::fanout_on(&c.lc, &topo(w), None)).await?);
            }
            // window 16 again, each sender paced at half the rate it just reached: the latency
            // with room to spare
            let full = rows.last().map_or(0.0, |r: &Row| r.run.sent_per_sec());
            let half = Topology { rate: Some(full / 2.0 / a.groups as f64), ..topo(16) };
            rows.push(measured("confab, half rate", 16, c.pid(), crate::ws::fanout_on(&c.lc, &half, None)).await?);
        }
        if let Some(n) = &nats {
            rows.push(measured("nats", 16, n.pid(), crate::nats::fanout_on(&n.url(), &topo(16))).await?);
        }
        if let Some(e) = &ejabberd {
            rows.push(measured("ejabberd", 16, e.pid(), crate::xmpp::fanout_on(e.addr(), e.domain(), &topo(16))).await?);
        }
    }
    summary(&rows);
    Ok(())
}

/// Each system's mean over its runs, and confab's ratios to the others.
fn summary(rows: &[Row]) {
    let mut keys: Vec<(&str, usize)> = rows.iter().map(|r| (r.system, r.window)).collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    println!("\n| system | window | deliveries/s, each run | mean | p50 ms (mean) | p99 ms (mean) | server CPU | generator CPU |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut means = Vec::new();
    for (system, window) in keys {
        let of: Vec<&Row> = rows.iter().filter(|r| r.system == system && r.window == window).collect();
        let n = of.len() as f64;
        let mean = |f: &dyn Fn(&Row) -> f64| of.iter().map(|r| f(r)).sum::<f64>() / n;
        let each: Vec<String> = of.iter().map(|r| format!("{:.0}", r.run.deliveries_per_sec())).collect();
        let rate = mean(&|r| r.run.deliveries_per_sec());
        println!(
            "| {system} | {window} | {} | {rate:.0} | {:.1} | {:.1} | {:.0}% | {:.0}% |",
            each.join(" · "),
            mean(&|r| r.run.latency_ms(0.5)),
            mean(&|r| r.run.latency_ms(0.99)),
            mean(&|r| r.server_cpu),
            mean(&|r| r.generator_cpu),
        );
        means.push((system, window, rate));
    }
    let rate = |s: &str, w: usize| means.iter().find(|m| m.0 == s && m.1 == w).map(|m| m.2);
    if let Some(c) = rate("confab", 16) {
        for peer in ["nats", "ejabberd"] {
            if let Some(p) = rate(peer, 16) {
                println!("confab (window 16) / {peer}: {:.3} ({:.1}%)", c / p, c / p * 100.0);
            }
        }
    }
}
