//! `nats-fanout`: the ws-fanout topology on raw NATS core pub/sub, the bus's own speed for the
//! side-by-side rig (issue 12).
//!
//! `--conversations` groups of `--members` clients, each client its own NATS connection
//! (async-nats, core pub/sub only, no JetStream). Group `g` is the subject `fanout.g{g}`; every
//! member subscribes to it. Member 0 publishes as fast as its `--window` allows: it receives its
//! own messages back (NATS echoes a message to the publishing connection's subscriptions), and
//! each echo returns a permit, as confab's acks do in ws-fanout. Members 1.. receive every
//! message; the payload is its send time (µs since the run's start), so they measure send →
//! receive. Timing as ws-fanout: senders stop at the deadline, receivers 2 s later; the rate is
//! over the sending time.
//!
//! Without `--url` it starts Debian's `nats-server` (`apt-get install nats-server`) on a free
//! port of 127.0.0.1, without JetStream, and stops it after the run ([`NatsServer`]).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use crate::fanout::{FanoutRun, Topology};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

#[derive(Args, Clone)]
pub(crate) struct NatsArgs {
    /// A running NATS server (default: start `/usr/sbin/nats-server` on a free port).
    #[arg(long)]
    url: Option<String>,
    #[command(flatten)]
    topology: crate::fanout::TopologyArgs,
}

pub(crate) async fn fanout(a: NatsArgs) -> anyhow::Result<()> {
    let topo = a.topology.topology();
    let (url, server) = match a.url {
        Some(url) => (url, None),
        None => {
            let server = NatsServer::start()?;
            (server.url(), Some(server))
        }
    };
    // (the server's and the generator's CPU: `fanout-rig`, over the sending span)
    fanout_on(&url, &topo).await?.print("nats-fanout", &topo);
    drop(server);
    Ok(())
}

/// A connection to `url` that counts the slow-consumer events of its subscriptions (messages
/// async-nats dropped because a subscriber's queue was full) in `slow`.
async fn connect(url: &str, slow: &Arc<AtomicU64>) -> anyhow::Result<async_nats::Client> {
    let slow = slow.clone();
    let client = async_nats::ConnectOptions::new()
        .event_callback(move |e| {
            if let async_nats::Event::SlowConsumer(_) = e {
                slow.fetch_add(1, Ordering::Relaxed);
            }
            async {}
        })
        .connect(url)
        .await?;
    Ok(client)
}

/// Subscribe to `subject` and wait until the server has the subscription: `flush` only writes
/// out the client's buffer, so a probe published to a subject of this connection's own must
/// come back (the server handles one connection's protocol in order).
async fn subscribe(client: &async_nats::Client, subject: &str, probe: String) -> anyhow::Result<async_nats::Subscriber> {
    let sub = client.subscribe(subject.to_string()).await?;
    let mut back = client.subscribe(probe.clone()).await?;
    client.publish(probe, "".into()).await?;
    client.flush().await?;
    tokio::time::timeout(Duration::from_secs(10), back.next())
        .await
        .context("subscription probe timed out")?
        .context("connection closed")?;
    back.unsubscribe().await?;
    Ok(sub)
}

/// One `nats-fanout` run against the NATS server at `url`.
pub(crate) async fn fanout_on(url: &str, topo: &Topology) -> anyhow::Result<FanoutRun> {
    let Topology { groups, members, window, seconds, .. } = *topo;
    let start = Instant::now();
    let slow = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for g in 0..groups {
        let subject = format!("fanout.g{g}");
        for m in 0..members {
            let client = connect(url, &slow).await.with_context(|| format!("connect g{g}m{m} to {url}"))?;
            let sub = subscribe(&client, &subject, format!("probe.g{g}.m{m}")).await?;
            if m == 0 {
                senders.push((subject.clone(), client, sub));
            } else {
                receivers.push((client, sub));
            }
        }
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (client, mut sub) in receivers {
        let delivered = delivered.clone();
        tasks.spawn(async move {
            let _client = client;
            let mut lat = Vec::new();
            let stop = deadline + Duration::from_secs(2);
            while let Ok(Some(m)) = tokio::time::timeout_at(stop.into(), sub.next()).await {
                if let Some(sent) = std::str::from_utf8(&m.payload).ok().and_then(|s| s.parse::<u64>().ok()) {
                    lat.push((start.elapsed().as_micros() as u64).saturating_sub(sent) as u32);
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            (lat, 0u64)
        });
    }
    let began = Instant::now();
    for (subject, client, mut echoes) in senders {
        tasks.spawn(async move {
            let subject = async_nats::Subject::from(subject);
            let slots = Arc::new(Semaphore::new(window));
            let acks = slots.clone();
            let echoed = Arc::new(AtomicU64::new(0));
            let count = echoed.clone();
            let reader = tokio::spawn(async move {
                while echoes.next().await.is_some() {
                    count.fetch_add(1, Ordering::Relaxed);
                    acks.add_permits(1);
                }
            });
            while Instant::now() < deadline {
                let Ok(permit) = slots.acquire().await else { break };
                permit.forget();
                let payload = start.elapsed().as_micros().to_string();
                if client.publish(subject.clone(), payload.into()).await.is_err() {
                    break;
                }
            }
            let _ = client.flush().await;
            // the echoes of the messages still in flight, then stop listening
            let _ = tokio::time::timeout(Duration::from_secs(2), slots.acquire_many(window as u32)).await;
            reader.abort();
            (Vec::new(), echoed.load(Ordering::Relaxed))
        });
    }
    let run = crate::fanout::gather(tasks, &delivered, began, seconds).await?;
    let slow = slow.load(Ordering::Relaxed);
    if slow > 0 {
        eprintln!("nats-fanout: {slow} slow-consumer events (async-nats dropped messages: a subscriber fell behind)");
    }
    Ok(run)
}

/// Debian's `nats-server` as a child process on a free port of 127.0.0.1, core NATS only (no
/// JetStream) unless started with [`NatsServer::start_jetstream`]; killed on drop.
pub(crate) struct NatsServer {
    child: Child,
    port: u16,
    /// Its output, shown if it fails to start.
    log: tempfile::NamedTempFile,
    /// JetStream's store directory, when it has JetStream.
    _store: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// Start it and wait until it accepts connections.
    pub fn start() -> anyhow::Result<NatsServer> {
        Self::launch(None)
    }

    /// Start it with JetStream (what a confab cluster's runtime needs), storing in a fresh temp
    /// directory.
    pub fn start_jetstream() -> anyhow::Result<NatsServer> {
        Self::launch(Some(tempfile::tempdir()?))
    }

    fn launch(store: Option<tempfile::TempDir>) -> anyhow::Result<NatsServer> {
        anyhow::ensure!(
            std::path::Path::new(NATS_SERVER).exists(),
            "{NATS_SERVER} not found: install Debian's NATS server (apt-get install nats-server)"
        );
        // a free port: bound by us, released, then given to the server
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let log = tempfile::NamedTempFile::new()?;
        let mut cmd = Command::new(NATS_SERVER);
        cmd.args(["--addr", "127.0.0.1", "--port", &port.to_string()]);
        if let Some(dir) = &store {
            cmd.arg("--jetstream").arg("--store_dir").arg(dir.path());
        }
        let child =
            cmd.stdin(Stdio::null()).stdout(log.reopen()?).stderr(log.reopen()?).spawn().with_context(|| format!("start {NATS_SERVER}"))?;
        let mut server = NatsServer { child, port, log, _store: store };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = server.child.try_wait()? {
                let out = std::fs::read_to_string(server.log.path()).unwrap_or_default();
                anyhow::bail!("{NATS_SERVER} exited ({status}) before accepting connections:\n{out}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            anyhow::ensure!(Instant::now() < until, "{NATS_SERVER} does not accept connections on {addr} after 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id (its CPU time is in `/proc/PID/stat`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
