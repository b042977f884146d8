//! confab's load generator.
//!
//! * `rest-send`: many clients sending messages over the LeanCloud REST API.
//! * `rest-history`: many clients reading history pages.
//! * `store-insert`: message inserts straight into the SQLite store, with and without group commit.
//! * `ws-fanout`: realtime clients (raw protocol over WebSocket) in group conversations; senders
//!   pipeline messages, every member receives them; delivery latency is measured end to end.
//!   With `--hook minimal|leanengine` every message first goes through a `_messageReceived`
//!   LeanCloud hook: the hook's cost on send throughput and latency.
//! * `msync-fanout`: the ws-fanout topology through the Easemob msync gateway (the web SDK's
//!   protocol) with raw msync clients: SYNC sends, NOTICE → SYNC pulls.
//! * `xmpp-fanout`: the same group fan-out through ejabberd's MUC (its own ejabberd without
//!   `--addr`), the XMPP peer of the side-by-side rig.
//! * `fanout-rig`: ws-fanout, nats-fanout and xmpp-fanout side by side, interleaved, each
//!   against a server the rig starts, with CPU and ratios (issue 12's yardstick).
//! * `cluster-rig`: rest-send and ws-fanout side by side against one node on SQLite, one on
//!   PostgreSQL and three on PostgreSQL + NATS, interleaved, with each process's CPU (issue 13).
//! * `nats-fanout`: the ws-fanout topology on raw NATS core pub/sub (async-nats clients, Debian's
//!   `nats-server`), the bus's speed to compare confab's fan-out with.
//! * `conn-idle`: idle realtime sessions, and the server's resident memory per session.
//! * `login-flood`: wrong-password logins, and the server's resident memory during and after.
//! * `soak`: a moderate mixed load for a long time, with the server's memory sampled.
//! * `fuzz`: random requests to every route of every face; no 5xx, and the memory left behind.
//! * `lc-import`: `confab import leancloud` from a LeanCloud stand-in: speed and memory.
//! * `login-catchup`: realtime logins of clients with a long unread history (login latency,
//!   `/healthz` meanwhile, and the store work of one login).
//!
//! Without `--url`, the REST modes start a confab server in this process on a fresh data directory (the
//! client and server then share the machine, as they would in a single-host deployment).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use confab_engine::model::*;
use confab_engine::store::NewUser;
use confab_engine::{NewApp, Store};
use confab_server::{Config, Server};
use confab_store_sqlite::{SqliteStore, StoreOptions};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "confab-bench", about = "Load generator for confab")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Target {
    /// A running confab (default: start one in this process). Several (repeated or
    /// comma-separated): the nodes of one cluster; REST clients take them in turn (client k the
    /// node k mod n), and so do the members of a fan-out (member k of the run the node k mod n).
    #[arg(long, value_delimiter = ',')]
    url: Vec<String>,
    #[arg(long, requires = "url")]
    app_id: Option<String>,
    #[arg(long, requires = "url")]
    master_key: Option<String>,
    /// Conversations to spread the load over.
    #[arg(long, default_value_t = 100)]
    conversations: usize,
    /// rest-send: one-to-one conversations (`unique`, the pair's own), each sent to by one of
    /// its two members (the path Easemob and MaxIM direct messages take), instead of group
    /// conversations sent to by the app's server.
    #[arg(long)]
    one_to_one: bool,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send messages over REST as fast as the clients can.
    RestSend(Target),
    /// Read history pages (20 messages) over REST.
    RestHistory(Target),
    /// Send Easemob one-to-one messages (`POST /{org}/{app}/messages/users`) as fast as the
    /// clients can, each pair's sender one of the pair (in-process server only).
    EmSend(Target),
    /// Group chat over the realtime gateway: messages/s in, pushes/s out, delivery latency.
    WsFanout {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        group: fanout::GroupArgs,
        /// Send every message through a `_messageReceived` LeanCloud hook that lets it through
        /// (in-process confab only): `minimal`, a hook server in this process (what calling a
        /// hook costs confab), or `leanengine`, LeanCloud's official LeanEngine SDK on Node.js
        /// (`interop/hooks/server.js`; run `npm ci` in `interop/` first).
        #[arg(long, value_parser = ["minimal", "leanengine"], conflicts_with = "url")]
        hook: Option<String>,
    },
    /// Group chat through the Easemob msync gateway (`ws-fanout`'s topology, raw msync clients
    /// logged in with user tokens; in-process server only): deliveries/s and latency.
    MsyncFanout {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        group: fanout::GroupArgs,
    },
    /// Group chat through ejabberd's MUC (`ws-fanout`'s topology): deliveries/s and latency.
    XmppFanout {
        /// A running XMPP server's c2s (plaintext, SASL ANONYMOUS; default: start an ejabberd).
        #[arg(long)]
        addr: Option<String>,
        /// Its domain (rooms at `conference.{domain}`).
        #[arg(long, requires = "addr")]
        domain: Option<String>,
        #[command(flatten)]
        topology: fanout::TopologyArgs,
    },
    /// The ws-fanout topology on raw NATS core pub/sub (one connection per client; member 0's
    /// own echo is its ack): deliveries/s and latency of the bus alone.
    NatsFanout(nats::NatsArgs),
    /// Group fan-out side by side in one sitting: confab (`confab serve`, windows 1 and 16), raw
    /// NATS core and ejabberd's MUC, interleaved, with each server's and the generator's CPU, and
    /// confab's ratios to the others.
    FanoutRig(rig::RigArgs),
    /// REST sends and group fan-out side by side in one sitting against one confab node on
    /// SQLite, one on PostgreSQL and a cluster of nodes on PostgreSQL + NATS, interleaved, with
    /// the CPU of every process (each node, PostgreSQL, nats-server, the generator).
    ClusterRig(cluster::ClusterArgs),
    /// Idle realtime sessions: the server's resident memory per session.
    ConnIdle {
        /// A running confab (`http://host:port`); without it, an in-process server over
        /// in-memory pipes (beyond the file-descriptor limit).
        #[arg(long, requires_all = ["app_id", "server_pid"])]
        url: Option<String>,
        #[arg(long)]
        app_id: Option<String>,
        /// The running server's process id.
        #[arg(long)]
        server_pid: Option<u32>,
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        /// Sessions opened before the first measurement.
        #[arg(long, default_value_t = 1000)]
        warmup: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// In-process only: the in-memory pipes alone, no server (their cost, to subtract).
        #[arg(long, conflicts_with = "url")]
        pipes_only: bool,
    },
    /// Wrong-password logins many at a time: the server's resident memory during and after.
    LoginFlood {
        #[arg(long)]
        url: String,
        #[arg(long)]
        app_id: String,
        #[arg(long)]
        app_key: String,
        #[arg(long)]
        server_pid: u32,
        #[arg(long, default_value_t = 128)]
        logins: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// A moderate mixed load for a long time: memory over time, nothing lost, pushes in order.
    Soak(soak::SoakArgs),
    /// Random requests to every route of every face: no 5xx, and what memory they leave behind.
    Fuzz(fuzz::FuzzArgs),
    /// `confab import leancloud` from a LeanCloud stand-in: messages a second and the importer's memory.
    LcImport(import::ImportArgs),
    /// The time of one password hash and one verification with confab's argon2 parameters.
    PasswordHash {
        #[arg(long, default_value_t = 20)]
        count: usize,
    },
    /// Insert messages straight into the store with N concurrent writers.
    StoreInsert {
        #[arg(long, default_value_t = 64)]
        writers: usize,
        #[arg(long, default_value_t = 20000)]
        messages: usize,
        /// Most writes per transaction (1 = no group commit).
        #[arg(long, default_value_t = 512)]
        max_group: usize,
        /// Acknowledge before the disk has the write (synchronous = NORMAL).
        #[arg(long)]
        no_durable: bool,
    },
    /// Realtime logins with a long unread history: login latency, /healthz meanwhile, and the
    /// store work of one login (in-process server only).
    LoginCatchup(login::LoginArgs),
}

mod cluster;
mod fanout;
mod fuzz;
mod hook;
mod import;
mod login;
mod mem;
mod msync;
mod nats;
mod raw;
mod rig;
mod soak;
mod ws;
mod xmpp;

pub(crate) struct Lc {
    /// The server's base URL, or each node's of a cluster (at least one).
    bases: Vec<String>,
    app_id: String,
    master_key: String,
    http: reqwest::Client,
    _server: Option<(Server, tempfile::TempDir)>,
}

impl Lc {
    async fn connect(t: &Target) -> anyhow::Result<Lc> {
        if !t.url.is_empty() {
            return Lc::remote(
                &t.url,
                &t.app_id.clone().context("--app-id")?,
                &t.master_key.clone().context("--master-key")?,
                t.concurrency,
            );
        }
        let http = reqwest::Client::builder().pool_max_idle_per_host(t.concurrency * 2).build()?;
        let dir = tempfile::tempdir()?;
        let config = Config { data_dir: dir.path().into(), listen: "127.0.0.1:0".parse()?, log: "warn".into(), ..Config::default() };
        let server = Server::start(&config).await?;
        let app =
            server.engine.apps().create_app(NewApp { name: "bench".into(), ..Default::default() }).await.map_err(anyhow::Error::msg)?;
        // the benchmark measures the server, not the rate limiter
        server.engine.apps().set_app_limit("bench", "rates.lc.message.per_minute", "100000000").await.map_err(anyhow::Error::msg)?;
        Ok(Lc {
            bases: vec![format!("http://{}", server.addr)],
            app_id: app.keys.leancloud.app_id.clone(),
            master_key: app.keys.leancloud.master_key.clone(),
            http,
            _server: Some((server, dir)),
        })
    }

    /// A running confab at `urls` (one, or the nodes of a cluster), and one of its apps.
    fn remote(urls: &[String], app_id: &str, master_key: &str, concurrency: usize) -> anyhow::Result<Lc> {
        anyhow::ensure!(!urls.is_empty(), "no server URL");
        Ok(Lc {
            bases: urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect(),
            app_id: app_id.to_string(),
            master_key: master_key.to_string(),
            http: reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build()?,
            _server: None,
        })
    }

    /// The base URL of node `k` (mod the number of nodes).
    fn base(&self, k: usize) -> &str {
        &self.bases[k % self.bases.len()]
    }

    /// A request to the first node.
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.req_via(0, method, path)
    }

    /// A request to node `k` (mod the number of nodes), as the app's server (master key).
    fn req_via(&self, k: usize, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base(k)))
            .header("X-LC-Id", &self.app_id)
            .header("X-LC-Key", format!("{},master", self.master_key))
            .header("Content-Type", "application/json")
    }

    /// Create a conversation with these members; its id.
    async fn group(&self, members: &[String]) -> anyhow::Result<String> {
        let r: Value = self
            .req(reqwest::Method::POST, "/1.2/rtm/conversations")
            .body(json!({"name": "bench group", "m": members}).to_string())
            .send()
            .await?
            .json()
            .await?;
        Ok(r["objectId"].as_str().context("objectId")?.to_string())
    }

    async fn conversations(&self, n: usize, unique: bool) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let r: Value = self
                .req(reqwest::Method::POST, "/1.2/rtm/conversations")
                .body(json!({"name": format!("bench {i}"), "m": [format!("u{i}a"), format!("u{i}b")], "unique": unique}).to_string())
                .send()
                .await?
                .json()
                .await?;
            ids.push(r["objectId"].as_str().context("objectId")?.to_string());
        }
        Ok(ids)
    }
}

/// Latencies in microseconds, summarised.
pub(crate) fn report(what: &str, mut lat: Vec<u32>, errors: usize, elapsed: Duration) {
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| if n == 0 { 0.0 } else { lat[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0 };
    println!(
        "{what}: {n} ok, {errors} errors in {:.1}s = {:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}

/// Run `f(worker, i)` from `concurrency` workers until `seconds` pass, and print the result.
async fn drive<F, Fut>(what: &str, concurrency: usize, seconds: u64, f: F) -> anyhow::Result<()>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let run = drive_run(concurrency, seconds, f).await?;
    report(what, run.latencies_us, run.errors as usize, run.elapsed);
    Ok(())
}

/// Run `f(worker, i)` from `concurrency` workers until `seconds` pass: the calls that returned
/// true are `sent`, with their latencies; the others `errors`.
async fn drive_run<F, Fut>(concurrency: usize, seconds: u64, f: F) -> anyhow::Result<fanout::FanoutRun>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let f = Arc::new(f);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let f = f.clone();
        tasks.spawn(async move {
            let (mut lat, mut errors, mut i) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < deadline {
                let t = Instant::now();
                if f(w, i).await {
                    lat.push(t.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (lat, errors)
        });
    }
    let (all, errors) = gather(tasks).await?;
    let run = fanout::FanoutRun::new(all.len() as u64, 0, start.elapsed(), all).began_at(start);
    Ok(fanout::FanoutRun { errors: errors as u64, ..run })
}

/// The latencies and error counts of workers, put together.
pub(crate) async fn gather(mut tasks: tokio::task::JoinSet<(Vec<u32>, usize)>) -> anyhow::Result<(Vec<u32>, usize)> {
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(r) = tasks.join_next().await {
        let (l, e) = r?;
        all.extend(l);
        errors += e;
    }
    Ok((all, errors))
}

async fn rest_send(t: Target) -> anyhow::Result<()> {
    let lc = Arc::new(Lc::connect(&t).await?);
    let convs = Arc::new(lc.conversations(t.conversations, t.one_to_one).await?);
    let run = rest_send_on(&lc, &convs, &t).await?;
    report("rest-send", run.latencies_us, run.errors as usize, run.elapsed);
    Ok(())
}

/// One `rest-send` run against `lc`'s server, to `convs` (made by [`Lc::conversations`] with
/// `t.one_to_one`): `sent` is the messages the server accepted. Client `w` sends to node `w`.
pub(crate) async fn rest_send_on(lc: &Arc<Lc>, convs: &Arc<Vec<String>>, t: &Target) -> anyhow::Result<fanout::FanoutRun> {
    let (lc, convs, one_to_one) = (lc.clone(), convs.clone(), t.one_to_one);
    let message = "{\"_lctype\":-1,\"_lctext\":\"a benchmark message of ordinary length\"}";
    drive_run(t.concurrency, t.seconds, move |w, i| {
        let (lc, convs) = (lc.clone(), convs.clone());
        async move {
            let k = (w * 7919 + i) % convs.len();
            let from = if one_to_one { format!("u{k}a") } else { "bench".to_string() };
            let body = json!({"from_client": from, "message": message}).to_string();
            let path = format!("/1.2/rtm/conversations/{}/messages", convs[k]);
            let r = lc.req_via(w, reqwest::Method::POST, &path).body(body).send().await;
            matches!(r, Ok(r) if r.status().is_success())
        }
    })
    .await
}

async fn em_send(t: Target) -> anyhow::Result<()> {
    anyhow::ensure!(t.url.is_empty(), "em-send starts its own server: drop --url");
    let lc = Lc::connect(&t).await?;
    let (server, _) = lc._server.as_ref().context("in-process server")?;
    let app =
        server.engine.apps().find_app(&AppLookup::Name("bench".into())).await.map_err(anyhow::Error::msg)?.context("the bench app")?;
    for (k, v) in [("rates.em.messages.users.per_second", "100000000"), ("rates.em.msg.users.per_minute", "100000000")] {
        server.engine.apps().set_app_limit("bench", k, v).await.map_err(anyhow::Error::msg)?;
    }
    let em = &app.keys.easemob;
    let base = format!("{}/{}/{}", lc.base(0), em.org_name, em.app_name);
    let grant = json!({"grant_type": "client_credentials", "client_id": em.client_id, "client_secret": em.client_secret});
    let r: Value = lc.http.post(format!("{base}/token")).json(&grant).send().await?.json().await?;
    let auth = format!("Bearer {}", r["access_token"].as_str().context("access_token")?);
    let (http, base, pairs) = (lc.http.clone(), Arc::new(base), t.conversations);
    drive("em-send", t.concurrency, t.seconds, move |w, i| {
        let (http, base, auth) = (http.clone(), base.clone(), auth.clone());
        async move {
            let k = (w * 7919 + i) % pairs;
            let body = json!({"from": format!("u{k}a"), "to": [format!("u{k}b")], "type": "txt", "body": {"msg": "a benchmark message of ordinary length"}});
            let r = http.post(format!("{base}/messages/users")).header("Authorization", &auth).json(&body).send().await;
            matches!(r, Ok(r) if r.status().is_success())
        }
    })
    .await
}

async fn rest_history(t: Target) -> anyhow::Result<()> {
    let lc = Arc::new(Lc::connect(&t).await?);
    let convs = Arc::new(lc.conversations(t.conversations, false).await?);
    for conv in convs.iter() {
        for k in 0..50 {
            lc.req(reqwest::Method::POST, &format!("/1.2/rtm/conversations/{conv}/messages"))
                .body(json!({"from_client": "bench", "message": format!("m{k}")}).to_string())
                .send()
                .await?;
        }
    }
    drive("rest-history", t.concurrency, t.seconds, move |w, i| {
        let (lc, convs) = (lc.clone(), convs.clone());
        async move {
            let conv = &convs[(w * 7919 + i) % convs.len()];
            let r = lc.req_via(w, reqwest::Method::GET, &format!("/1.2/rtm/conversations/{conv}/messages?limit=20")).send().await;
            matches!(r, Ok(r) if r.status().is_success())
        }
    })
    .await
}

async fn store_insert(writers: usize, messages: usize, max_group: usize, durable: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_with(dir.path(), StoreOptions { max_group, durable, ..Default::default() })?);
    let ids = Arc::new(confab_engine::ids::IdGen::new(0));
    let now = confab_engine::ids::Clock::now_ms(&confab_engine::ids::SystemClock);
    let conv = Conversation {
        app: 1,
        id: ids.next(),
        kind: ConvKind::Normal,
        name: None,
        creator: None,
        unique: false,
        unique_id: None,
        attrs: Default::default(),
        settings: Default::default(),
        parent: None,
        created_at: now,
        updated_at: now,
        last_message_at: None,
        last_seq: 0,
        expires_at: None,
        foreign_id: None,
    };
    store.ensure_users(1, &[NewUser { id: "bench".into(), num: ids.next() }], now).await.map_err(anyhow::Error::msg)?;
    // one conversation per writer, so the measurement is the commit path, not row contention
    let mut convs = Vec::new();
    for _ in 0..writers {
        let c = Conversation { id: ids.next(), ..conv.clone() };
        store.create_conversation(&c, &[]).await.map_err(anyhow::Error::msg)?;
        convs.push(c.id);
    }
    let per_writer = messages / writers;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for conv in convs {
        let (store, ids) = (store.clone(), ids.clone());
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(per_writer);
            for _ in 0..per_writer {
                let text = Content::Text("a benchmark message of ordinary length".into());
                let m = Message { mtype: MessageType::TEXT, ..Message::new(1, ids.next(), conv, "bench", 0, text) };
                let t = Instant::now();
                store.insert_message(&m).await.expect("insert");
                lat.push(t.elapsed().as_micros() as u32);
            }
            lat
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r?);
    }
    report(&format!("store-insert writers={writers} max_group={max_group} durable={durable}"), all, 0, start.elapsed());
    Ok(())
}

async fn password_hash(count: usize) -> anyhow::Result<()> {
    let settings = confab_engine::password::HashSettings::default();
    let hasher = confab_engine::password::Hasher::new(settings.clone()).map_err(anyhow::Error::msg)?;
    let stored = hasher.hash("a warm-up password".into()).await.map_err(anyhow::Error::msg)?;
    let (mut hash, mut verify) = (Vec::new(), Vec::new());
    for i in 0..count {
        let t = Instant::now();
        hasher.hash(format!("password {i}")).await.map_err(anyhow::Error::msg)?;
        hash.push(t.elapsed().as_micros() as u32);
        let t = Instant::now();
        hasher.verify(format!("password {i}"), stored.clone()).await.map_err(anyhow::Error::msg)?;
        verify.push(t.elapsed().as_micros() as u32);
    }
    println!(
        "argon2id m={} KiB t={} p=1 ({} workers, so at most that many times the memory); one at a time, {count} of each",
        settings.m_cost_kib, settings.t_cost, settings.workers
    );
    for (what, mut v) in [("hash", hash), ("verify", verify)] {
        v.sort_unstable();
        let ms = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0;
        println!("{what}: p50 {:.2} ms, p99 {:.2} ms", ms(0.5), ms(0.99));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::RestSend(t) => rest_send(t).await,
        Cmd::RestHistory(t) => rest_history(t).await,
        Cmd::EmSend(t) => em_send(t).await,
        Cmd::WsFanout { target, group, hook } => ws::fanout(target, group, hook).await,
        Cmd::MsyncFanout { target, group } => msync::fanout(target, group).await,
        Cmd::XmppFanout { addr, domain, topology } => xmpp::fanout(addr, domain, topology.topology()).await,
        Cmd::NatsFanout(a) => nats::fanout(a).await,
        Cmd::FanoutRig(args) => rig::rig(args).await,
        Cmd::ClusterRig(args) => cluster::cluster_rig(args).await,
        Cmd::ConnIdle { url, app_id, server_pid, sessions, warmup, concurrency, pipes_only } => {
            let remote = url.map(|u| (u, app_id.unwrap_or_default(), server_pid.unwrap_or_default()));
            mem::conn_idle(mem::IdleTarget { remote, sessions, warmup: warmup.min(sessions), concurrency, pipes_only }).await
        }
        Cmd::LoginFlood { url, app_id, app_key, server_pid, logins, concurrency } => {
            mem::login_flood(&url, &app_id, &app_key, server_pid, logins, concurrency).await
        }
        Cmd::Soak(args) => soak::soak(args).await,
        Cmd::Fuzz(args) => fuzz::fuzz(args).await,
        Cmd::LcImport(args) => import::lc_import(args).await,
        Cmd::PasswordHash { count } => password_hash(count).await,
        Cmd::StoreInsert { writers, messages, max_group, no_durable } => store_insert(writers, messages, max_group, !no_durable).await,
        Cmd::LoginCatchup(a) => login::login_catchup(a).await,
    }
}
