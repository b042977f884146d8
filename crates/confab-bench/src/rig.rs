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
//!
//! The machinery is shared with `cluster-rig` (`cluster.rs`): [`Confab`] starts `confab serve`
//! nodes on SQLite or PostgreSQL, alone or as a cluster; [`measured`] runs one workload while it
//! samples the CPU of the watched processes ([`Procs`]); [`grouped`] and [`mean`] make the
//! tables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
    /// The systems to run (a missing server program is an error, not a skipped row): `confab`
    /// (ws-fanout, windows 1 and 16 and half rate), `nats`, `ejabberd`; and confab's two
    /// gateways at window 16 against the same server, `confab-lc` (LeanCloud realtime,
    /// `ws-fanout`) and `confab-msync` (Easemob msync, `msync-fanout`), which take turns going
    /// first from round to round.
    #[arg(long, value_delimiter = ',', default_value = "confab,nats,ejabberd",
          value_parser = ["confab", "confab-lc", "confab-msync", "nats", "ejabberd"])]
    systems: Vec<String>,
}

/// Where a [`Confab`]'s nodes keep their data: a fresh data directory of the embedded store, or a
/// fresh database on a PostgreSQL server (shared by the nodes of a cluster).
pub(crate) enum Storage {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

impl Storage {
    pub fn sqlite() -> anyhow::Result<Storage> {
        Ok(Storage::Sqlite(tempfile::tempdir()?))
    }

    /// The `confab` flags that name it.
    fn args(&self) -> Vec<std::ffi::OsString> {
        match self {
            Storage::Sqlite(dir) => vec!["--data-dir".into(), dir.path().into()],
            Storage::Postgres(db) => vec!["--database-url".into(), db.url().into()],
        }
    }
}

/// A fresh database on a PostgreSQL server, made with `psql` and dropped (`WITH (FORCE)`) on drop.
pub(crate) struct PgDatabase {
    /// The server, `postgres://user@host:port`.
    server: String,
    pub name: String,
}

impl PgDatabase {
    pub fn create(server: &str, name: &str) -> anyhow::Result<PgDatabase> {
        let db = PgDatabase { server: server.trim_end_matches('/').to_string(), name: name.to_string() };
        db.psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        db.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(db)
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Run `sql` in the server's `postgres` database.
    fn psql(&self, sql: &str) -> anyhow::Result<()> {
        let out = Command::new("psql")
            .arg(format!("{}/postgres", self.server))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .context("run psql (PostgreSQL's client)")?;
        anyhow::ensure!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
        Ok(())
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("{e}");
        }
    }
}

/// `confab serve` in processes of their own: one node, or the nodes of a cluster (node ids 1..,
/// one database, one NATS server), each on a port of its own, logging warnings and errors to a
/// file of its own; with an app whose message rate limit is out of the way (the rigs measure the
/// servers, not the limiter). The nodes are killed on drop, then the storage goes.
pub(crate) struct Confab {
    nodes: Nodes,
    pub lc: Arc<Lc>,
    /// The app as `confab app create --json` printed it (its Easemob credentials under
    /// `easemob`).
    pub app: Value,
    _storage: Storage,
}

/// The nodes' processes, each with its log; killed on drop.
struct Nodes(Vec<(Child, tempfile::NamedTempFile)>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Confab {
    /// `count` nodes on `storage`; with `nats_url`, as a cluster (PostgreSQL only).
    pub async fn start(bin: &Path, storage: Storage, nats_url: Option<&str>, count: usize) -> anyhow::Result<Confab> {
        anyhow::ensure!(bin.exists(), "no confab binary at {} (cargo build --release -p confab-server -p confab-bench)", bin.display());
        let command = || {
            let mut c = Command::new(bin);
            // the flags say everything; none of the environment's confab settings
            for k in ["CONFAB_DATA_DIR", "CONFAB_DATABASE_URL", "CONFAB_NATS_URL", "CONFAB_NODE_ID", "CONFAB_LISTEN", "CONFAB_CONFIG"] {
                c.env_remove(k);
            }
            c
        };
        let cli = |args: &[&str]| -> anyhow::Result<String> {
            let out = command().args(args).args(storage.args()).output()?;
            anyhow::ensure!(out.status.success(), "confab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Ok(String::from_utf8(out.stdout)?)
        };
        let app: Value = serde_json::from_str(&cli(&["app", "create", "--name", "bench", "--json"])?)?;
        let mut limits =
            vec!["app".to_string(), "limits".into(), "bench".into(), "--set".into(), "rates.lc.message.per_minute=100000000".into()];
        for (k, v) in crate::msync::LIMITS {
            limits.extend(["--set".to_string(), format!("{k}={v}")]);
        }
        cli(&limits.iter().map(String::as_str).collect::<Vec<_>>())?;
        let (mut nodes, mut bases) = (Nodes(Vec::new()), Vec::new());
        for node in 1..=count {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let log = tempfile::NamedTempFile::new()?;
            let mut c = command();
            c.arg("serve").args(storage.args()).arg("--listen").arg(format!("127.0.0.1:{port}"));
            if let Storage::Postgres(_) = storage {
                c.arg("--node-id").arg(node.to_string());
            }
            if let Some(url) = nats_url {
                c.arg("--nats-url").arg(url);
            }
            let child = c
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log.reopen()?)
                .spawn()
                .context("start confab serve")?;
            nodes.0.push((child, log));
            bases.push(format!("http://127.0.0.1:{port}"));
        }
        let http = reqwest::Client::new();
        let ready = Instant::now() + Duration::from_secs(30);
        for (i, base) in bases.iter().enumerate() {
            while http.get(format!("{base}/healthz")).send().await.is_err() {
                let (child, log) = &mut nodes.0[i];
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("confab serve (node {}) exited ({status}):\n{}", i + 1, std::fs::read_to_string(log.path())?);
                }
                anyhow::ensure!(Instant::now() < ready, "confab serve (node {}) did not answer /healthz within 30 s", i + 1);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let key = |k: &str| app["leancloud"][k].as_str().map(str::to_string).with_context(|| format!("app create --json: leancloud.{k}"));
        let lc = Arc::new(Lc::remote(&bases, &key("app_id")?, &key("master_key")?, 256)?);
        Ok(Confab { nodes, lc, app, _storage: storage })
    }

    /// Each node's process id.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.0.iter().map(|(c, _)| c.id()).collect()
    }

    /// What the nodes logged (warnings and errors), counted, with the first lines of each, and
    /// whether a node is gone.
    pub fn report_logs(&mut self, what: &str) {
        for (i, (child, log)) in self.nodes.0.iter_mut().enumerate() {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if let Ok(Some(status)) = child.try_wait() {
                println!("{what}, node {}: exited ({status})", i + 1);
            }
            if !lines.is_empty() {
                println!("{what}, node {}: {} log lines (warnings and errors), the first:", i + 1, lines.len());
                for l in lines.iter().take(3) {
                    println!("    {l}");
                }
            }
        }
    }
}

/// Processes whose CPU time a rig reads.
#[derive(Clone, Debug)]
pub(crate) enum Procs {
    /// One process.
    Pid(u32),
    /// This generator.
    Generator,
    /// The local PostgreSQL server's processes that work for database `db`: its backends (their
    /// titles name it), and the server's own shared ones (the postmaster, the checkpointer, the
    /// background and WAL writers, the launchers), which every database's writes feed. Found
    /// anew at every sample (`/proc/*/comm` is `postgres`), so that backends born during a run
    /// count too.
    Postgres { db: String },
}

/// The postgres processes that serve no one database (their titles end so).
const PG_SHARED: [&str; 7] = [
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "archiver",
    "stats collector",
];

impl Procs {
    /// Each process's CPU seconds used so far.
    fn read(&self) -> Vec<(u32, f64)> {
        match self {
            Procs::Pid(pid) => cpu_secs(&pid.to_string()).map(|c| vec![(*pid, c)]).unwrap_or_default(),
            Procs::Generator => cpu_secs("self").map(|c| vec![(std::process::id(), c)]).unwrap_or_default(),
            Procs::Postgres { db } => {
                let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
                dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "postgres"))
                    .filter(|pid| {
                        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                        let title = String::from_utf8_lossy(&title).replace('\0', " ");
                        match title.strip_prefix("postgres: ") {
                            // a backend ("15/main: USER DB HOST(PORT) STATE") or a shared process
                            Some(t) => t.split_whitespace().any(|w| w == db) || PG_SHARED.iter().any(|s| t.trim_end().ends_with(s)),
                            // the postmaster, titled by its command line
                            None => !title.is_empty(),
                        }
                    })
                    .filter_map(|pid| Some((pid, cpu_secs(&pid.to_string())?)))
                    .collect()
            }
        }
    }
}

/// The CPU time each watched set of processes had used at one moment, process by process.
struct Sample {
    at: Instant,
    cpu: Vec<Vec<(u32, f64)>>,
}

/// CPU seconds the `j`th set used between the first and the last of `samples`: each process's
/// last reading less its first (0 for a process born in between; one that ended counts to its
/// last reading).
fn used(samples: &[Sample], j: usize) -> f64 {
    let first: HashMap<u32, f64> = samples[0].cpu[j].iter().copied().collect();
    let mut last = HashMap::new();
    for s in samples {
        last.extend(s.cpu[j].iter().copied());
    }
    last.iter().map(|(pid, c)| c - first.get(pid).copied().unwrap_or(0.0)).sum()
}

/// What a run's rate counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// Messages the server accepted (REST).
    Messages,
    /// Messages the receivers got (fan-out).
    Deliveries,
}

impl Count {
    fn of(self, run: &FanoutRun) -> f64 {
        match self {
            Count::Messages => run.sent_per_sec(),
            Count::Deliveries => run.deliveries_per_sec(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Count::Messages => "messages",
            Count::Deliveries => "deliveries",
        }
    }
}

/// One run's result with the CPU each watched set of processes used while it sent.
pub(crate) struct Row {
    pub system: String,
    pub workload: String,
    pub count: Count,
    pub run: FanoutRun,
    /// CPU seconds by name, over the sending span.
    pub cpu: Vec<(String, f64)>,
    /// The sending span, in seconds.
    pub span: f64,
}

impl Row {
    /// Deliveries or messages a second, as the run counts.
    pub fn rate(&self) -> f64 {
        self.count.of(&self.run)
    }

    /// CPU seconds of the sets named `name` (NaN: none).
    pub fn cpu_of(&self, name: &str) -> f64 {
        self.cpu.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, c)| *c)
    }

    /// The same as a share of one core (100% = one core busy).
    pub fn share(&self, name: &str) -> f64 {
        self.cpu_of(name) / self.span * 100.0
    }
}

/// Run `run` and read the CPU each of `watch` used while its senders sent: a sampler reads them
/// every 50 ms, and the run's `began` and `elapsed` pick the span (the whole call when the
/// generator does not say when it began). Prints the run's line.
pub(crate) async fn measured(
    system: &str,
    workload: &str,
    count: Count,
    watch: &[(String, Procs)],
    run: impl std::future::Future<Output = anyhow::Result<FanoutRun>>,
) -> anyhow::Result<Row> {
    let procs: Vec<Procs> = watch.iter().map(|(_, p)| p.clone()).collect();
    let sample = move || Sample { at: Instant::now(), cpu: procs.iter().map(Procs::read).collect() };
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
    let nearest = |t: Instant| (0..samples.len()).min_by_key(|&i| samples[i].at.max(t) - samples[i].at.min(t)).unwrap_or(0);
    let (a, b) = (nearest(from), nearest(to));
    let span = &samples[a..=b.max(a)];
    let secs = (span[span.len() - 1].at - span[0].at).as_secs_f64();
    let cpu = watch.iter().enumerate().map(|(j, (name, _))| (name.clone(), if secs > 0.0 { used(span, j) } else { f64::NAN })).collect();
    let row = Row { system: system.to_string(), workload: workload.to_string(), count, run, cpu, span: secs };
    let mut also = Vec::new();
    if count == Count::Deliveries {
        also.push(format!("{:.0} messages/s", row.run.sent_per_sec()));
    }
    if row.run.errors > 0 {
        also.push(format!("{} errors", row.run.errors));
    }
    let also = if also.is_empty() { String::new() } else { format!(" ({})", also.join(", ")) };
    let cpu: Vec<String> = row.cpu.iter().map(|(n, c)| format!("{n} {c:.2} s ({:.0}%)", c / secs * 100.0)).collect();
    println!(
        "{system}, {workload}: {:.0} {}/s{also}, p50 {:.1} ms, p99 {:.1} ms; CPU {} (100% = one core busy)",
        row.rate(),
        count.name(),
        row.run.latency_ms(0.5),
        row.run.latency_ms(0.99),
        cpu.join(", ")
    );
    Ok(row)
}

/// The rows by system and workload, in the order each first ran.
pub(crate) fn grouped(rows: &[Row]) -> Vec<Vec<&Row>> {
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|g| g[0].system == r.system && g[0].workload == r.workload) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

/// The mean of `f` over `rows`.
pub(crate) fn mean(rows: &[&Row], f: impl Fn(&Row) -> f64) -> f64 {
    rows.iter().map(|r| f(r)).sum::<f64>() / rows.len() as f64
}

/// Each run's rate, `a · b · c`.
pub(crate) fn each_run(rows: &[&Row]) -> String {
    rows.iter().map(|r| format!("{:.0}", r.rate())).collect::<Vec<_>>().join(" · ")
}

pub(crate) async fn rig(a: RigArgs) -> anyhow::Result<()> {
    let want = |s: &str| a.systems.iter().any(|x| x == s);
    let topo = |window| Topology { groups: a.groups, members: a.members, window, seconds: a.seconds, rate: None };
    let bin = confab_bin(a.confab.as_deref())?;
    let mut confab = if want("confab") || want("confab-lc") || want("confab-msync") {
        Some(Confab::start(&bin, Storage::sqlite()?, None, 1).await?)
    } else {
        None
    };
    let em = match &confab {
        Some(c) if want("confab-msync") => Some(crate::msync::Em::new(&c.lc.bases, &c.app["easemob"]).await?),
        _ => None,
    };
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
    let watch = |pid: u32| [("server".to_string(), Procs::Pid(pid)), ("generator".to_string(), Procs::Generator)];
    let d = Count::Deliveries;
    let mut rows = Vec::new();
    for round in 1..=a.runs {
        println!("-- round {round}");
        if let Some(c) = confab.as_ref().filter(|_| want("confab")) {
            let w = watch(c.pids()[0]);
            for window in [1, 16] {
                rows.push(measured("confab", &format!("window {window}"), d, &w, crate::ws::fanout_on(&c.lc, &topo(window), None)).await?);
            }
            // window 16 again, each sender paced at half the rate it just reached: the latency
            // with room to spare
            let full = rows.last().map_or(0.0, |r: &Row| r.run.sent_per_sec());
            let half = Topology { rate: Some(full / 2.0 / a.groups as f64), ..topo(16) };
            rows.push(measured("confab, half rate", "window 16", d, &w, crate::ws::fanout_on(&c.lc, &half, None)).await?);
        }
        if let Some(c) = confab.as_ref().filter(|_| want("confab-lc") || want("confab-msync")) {
            let w = watch(c.pids()[0]);
            // the gateways take turns going first
            for lc_turn in if round % 2 == 1 { [true, false] } else { [false, true] } {
                if lc_turn && want("confab-lc") {
                    rows.push(measured("confab-lc", "window 16", d, &w, crate::ws::fanout_on(&c.lc, &topo(16), None)).await?);
                }
                if let Some(em) = em.as_ref().filter(|_| !lc_turn) {
                    rows.push(measured("confab-msync", "window 16", d, &w, crate::msync::fanout_on(em, &topo(16))).await?);
                }
            }
        }
        if let Some(n) = &nats {
            rows.push(measured("nats", "window 16", d, &watch(n.pid()), crate::nats::fanout_on(&n.url(), &topo(16))).await?);
        }
        if let Some(e) = &ejabberd {
            rows.push(
                measured("ejabberd", "window 16", d, &watch(e.pid()), crate::xmpp::fanout_on(e.addr(), e.domain(), &topo(16))).await?,
            );
        }
    }
    summary(&rows);
    if let Some(c) = &mut confab {
        c.report_logs("confab");
    }
    Ok(())
}

/// The `confab` binary: `given`, or the one beside this program (`target/release/confab`).
pub(crate) fn confab_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("confab"),
    })
}

/// Each system's mean over its runs, and confab's ratios to the others.
fn summary(rows: &[Row]) {
    println!("\n| system | window | deliveries/s, each run | mean | p50 ms (mean) | p99 ms (mean) | server CPU | generator CPU |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut means = Vec::new();
    for of in grouped(rows) {
        let (system, window) = (&of[0].system, of[0].workload.trim_start_matches("window "));
        let rate = mean(&of, Row::rate);
        println!(
            "| {system} | {window} | {} | {rate:.0} | {:.1} | {:.1} | {:.0}% | {:.0}% |",
            each_run(&of),
            mean(&of, |r| r.run.latency_ms(0.5)),
            mean(&of, |r| r.run.latency_ms(0.99)),
            mean(&of, |r| r.share("server")),
            mean(&of, |r| r.share("generator")),
        );
        means.push((system.as_str(), window, rate));
    }
    let rate = |s: &str, w: &str| means.iter().find(|m| m.0 == s && m.1 == w).map(|m| m.2);
    // the two gateways of one server: the rate, and the server's CPU per delivery
    if let (Some(m), Some(l)) = (rate("confab-msync", "16"), rate("confab-lc", "16")) {
        let per = |system: &str| {
            let of: Vec<&Row> = rows.iter().filter(|r| r.system == system).collect();
            mean(&of, |r| r.cpu_of("server") / (r.run.delivered.max(1) as f64) * 1e6)
        };
        println!(
            "confab-msync / confab-lc (window 16): {:.3} ({:.1}%) of the deliveries/s; server CPU per delivery {:.1} µs (msync) vs {:.1} µs (lc)",
            m / l,
            m / l * 100.0,
            per("confab-msync"),
            per("confab-lc")
        );
    }
    if let Some(c) = rate("confab", "16") {
        for peer in ["nats", "ejabberd"] {
            if let Some(p) = rate(peer, "16") {
                println!("confab (window 16) / {peer}: {:.3} ({:.1}%)", c / p, c / p * 100.0);
            }
        }
    }
}
