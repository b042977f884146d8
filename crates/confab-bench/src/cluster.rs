//! `cluster-rig`: confab's three ways of running side by side, in one sitting (issue 13) — one
//! node on the embedded SQLite store, one node on PostgreSQL, and `--nodes` nodes on one
//! PostgreSQL database with NATS (JetStream) between them — each under two workloads:
//!
//! * REST sends (`rest-send`: `--concurrency` clients sending LeanCloud REST messages to
//!   `--conversations` two-member conversations as fast as they can; client k sends through node
//!   k mod n), messages a second and request latency;
//! * group fan-out (`ws-fanout`: `--groups` groups of `--members` realtime clients, member 0
//!   sending with a window of `--window`; member k of the run connects to node k mod n, so a
//!   group's members are spread over the nodes and every message crosses between them),
//!   deliveries a second and send → receive latency.
//!
//! Every setup is started by the rig as real processes (the release `confab` beside this
//! program; a `nats-server` with JetStream of its own on a free port for the cluster; a fresh
//! database per PostgreSQL setup on `--postgres`, dropped at the end), all of them before the
//! first run; then `--runs` rounds, each running every setup's workloads in turn. For each run
//! it reads the CPU time of every confab node, of PostgreSQL (the bench database's backends and
//! the server's shared processes, see [`Procs::Postgres`]), of nats-server and of this generator
//! over the sending span, and it ends with a table of means and what the servers spent per
//! message or delivery.

use std::sync::Arc;

use crate::fanout::Topology;
use crate::nats::NatsServer;
use crate::rig::{confab_bin, each_run, grouped, mean, measured, Confab, Count, PgDatabase, Procs, Row, Storage};
use crate::Target;

#[derive(clap::Args)]
pub(crate) struct ClusterArgs {
    /// The `confab` binary (default: the one beside this program, `target/release/confab`).
    #[arg(long)]
    confab: Option<std::path::PathBuf>,
    /// The PostgreSQL server, `postgres://user@host:port` (each PostgreSQL setup makes a fresh
    /// database on it, dropped at the end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// The setups: `sqlite` (one node), `pg` (one node on PostgreSQL), `cluster` (`--nodes` nodes
    /// on PostgreSQL + NATS).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,pg,cluster", value_parser = ["sqlite", "pg", "cluster"])]
    setups: Vec<String>,
    /// The workloads: `rest` (REST sends), `fanout` (realtime group fan-out).
    #[arg(long, value_delimiter = ',', default_value = "rest,fanout", value_parser = ["rest", "fanout"])]
    workloads: Vec<String>,
    /// The cluster's nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// REST: concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// REST: conversations to spread the sends over.
    #[arg(long, default_value_t = 100)]
    conversations: usize,
    /// Fan-out: groups, one sender each.
    #[arg(long, default_value_t = 10)]
    groups: usize,
    /// Fan-out: members per group, each its own connection.
    #[arg(long, default_value_t = 20)]
    members: usize,
    /// Fan-out: messages each sender may have waiting for their ack.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Seconds each workload sends for.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds; each runs every setup's workloads once, in turn.
    #[arg(long, default_value_t = 2)]
    runs: usize,
}

/// One setup, running: its nodes (and their database), its NATS server, and what to watch.
struct Setup {
    name: String,
    confab: Confab,
    /// The REST workload's conversations.
    convs: Arc<Vec<String>>,
    watch: Vec<(String, Procs)>,
    _nats: Option<NatsServer>,
}

impl Setup {
    async fn start(kind: &str, a: &ClusterArgs) -> anyhow::Result<Setup> {
        let bin = confab_bin(a.confab.as_deref())?;
        let db = |tag: &str| PgDatabase::create(&a.postgres, &format!("confab_bench_{}_{tag}", std::process::id()));
        let (name, storage, nats, nodes) = match kind {
            "sqlite" => ("SQLite, 1 node".to_string(), Storage::sqlite()?, None, 1),
            "pg" => ("PostgreSQL, 1 node".to_string(), Storage::Postgres(db("pg")?), None, 1),
            _ => (
                format!("PostgreSQL + NATS, {} nodes", a.nodes),
                Storage::Postgres(db("cluster")?),
                Some(NatsServer::start_jetstream()?),
                a.nodes,
            ),
        };
        let pg = match &storage {
            Storage::Postgres(db) => Some(db.name.clone()),
            Storage::Sqlite(_) => None,
        };
        let confab = Confab::start(&bin, storage, nats.as_ref().map(NatsServer::url).as_deref(), nodes).await?;
        let pids = confab.pids();
        let mut watch: Vec<(String, Procs)> = pids
            .iter()
            .enumerate()
            .map(|(i, &pid)| (if pids.len() == 1 { "confab".to_string() } else { format!("confab {}", i + 1) }, Procs::Pid(pid)))
            .collect();
        if let Some(db) = pg {
            watch.push(("postgres".into(), Procs::Postgres { db }));
        }
        if let Some(n) = &nats {
            watch.push(("nats".into(), Procs::Pid(n.pid())));
        }
        watch.push(("generator".into(), Procs::Generator));
        let convs = Arc::new(confab.lc.conversations(a.conversations, false).await?);
        Ok(Setup { name, confab, convs, watch, _nats: nats })
    }
}

pub(crate) async fn cluster_rig(a: ClusterArgs) -> anyhow::Result<()> {
    let mut setups = Vec::new();
    for kind in &a.setups {
        setups.push(Setup::start(kind, &a).await?);
    }
    let rest = Target {
        url: Vec::new(),
        app_id: None,
        master_key: None,
        conversations: a.conversations,
        one_to_one: false,
        concurrency: a.concurrency,
        seconds: a.seconds,
    };
    let topo = Topology { groups: a.groups, members: a.members, window: a.window, seconds: a.seconds, rate: None };
    let fanout = format!("fan-out, window {}", a.window);
    let want = |w: &str| a.workloads.iter().any(|x| x == w);
    println!(
        "cluster-rig: REST sends ({} clients, {} conversations) and fan-out ({} groups of {}, window {}), {} s each, {} rounds, interleaved; {} cores",
        a.concurrency,
        a.conversations,
        a.groups,
        a.members,
        a.window,
        a.seconds,
        a.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rows = Vec::new();
    for round in 1..=a.runs {
        println!("-- round {round}");
        for s in &setups {
            let lc = &s.confab.lc;
            if want("rest") {
                rows.push(measured(&s.name, "REST send", Count::Messages, &s.watch, crate::rest_send_on(lc, &s.convs, &rest)).await?);
            }
            if want("fanout") {
                rows.push(measured(&s.name, &fanout, Count::Deliveries, &s.watch, crate::ws::fanout_on(lc, &topo, None)).await?);
            }
        }
    }
    summary(&rows, a.seconds);
    for s in &mut setups {
        s.confab.report_logs(&s.name);
    }
    Ok(())
}

/// Each setup's and workload's means over its runs, with the CPU seconds of each process.
fn summary(rows: &[Row], seconds: u64) {
    println!("\nCPU: seconds used over the {seconds} s sending span (mean of the runs); server = confab + postgres + nats");
    println!("| setup | workload | per second, each run | mean | p50 ms | p99 ms | confab CPU s | postgres CPU s | nats CPU s | generator CPU s | server CPU µs each |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for of in grouped(rows) {
        let r0 = of[0];
        let cpu = |name: &str| mean(&of, |r| r.cpu_of(name));
        let or_dash = |v: f64| if v.is_nan() { "–".to_string() } else { format!("{v:.2}") };
        let nodes: Vec<&str> = r0.cpu.iter().map(|(n, _)| n.as_str()).filter(|n| n.starts_with("confab")).collect();
        let confab = nodes.iter().map(|n| format!("{:.2}", cpu(n))).collect::<Vec<_>>().join(" + ");
        let server = |r: &Row| r.cpu.iter().filter(|(n, _)| n != "generator").map(|(_, c)| c).sum::<f64>();
        // the servers' CPU per message (REST) or delivery (fan-out), from the runs' totals
        let items: f64 = of.iter().map(|r| r.rate() * r.run.elapsed.as_secs_f64()).sum();
        let per = of.iter().map(|r| server(r)).sum::<f64>() / items.max(1.0) * 1e6;
        println!(
            "| {} | {} ({}/s) | {} | {:.0} | {:.1} | {:.1} | {confab} | {} | {} | {:.2} | {per:.0} |",
            r0.system,
            r0.workload,
            r0.count.name(),
            each_run(&of),
            mean(&of, Row::rate),
            mean(&of, |r| r.run.latency_ms(0.5)),
            mean(&of, |r| r.run.latency_ms(0.99)),
            or_dash(cpu("postgres")),
            or_dash(cpu("nats")),
            cpu("generator"),
        );
    }
}
