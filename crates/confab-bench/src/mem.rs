//! Memory: what idle sessions cost (`conn-idle`), and what a flood of wrong-password logins does
//! to the server's resident memory (`login-flood`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_engine::NewApp;
use confab_face_leancloud::realtime::GatewaySettings;
use confab_server::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::raw;

/// Resident and peak memory of a process, in bytes, from `/proc/PID/status`.
pub fn rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("no process {pid}"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

pub fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Where `conn-idle` connects.
pub struct IdleTarget {
    /// A running confab: its address, app id and process id.
    pub remote: Option<(String, String, u32)>,
    pub sessions: usize,
    /// Sessions opened before the first measurement (fixed costs: threads, caches, pools).
    pub warmup: usize,
    pub concurrency: usize,
    /// In-process transport only: measure the in-memory pipes alone, without a server.
    pub pipes_only: bool,
}

/// Size of each direction of an in-process pipe: enough for the upgrade and the login.
const PIPE: usize = 4096;

/// Open idle sessions and report the server's resident memory per session. Over TCP against a
/// running server (`--url`, `--server-pid`), or in this process over in-memory pipes (the way to
/// reach more sessions than the file-descriptor limit allows), where the pipes' own cost is
/// measured separately with `--pipes-only` and subtracted by the reader.
pub async fn conn_idle(t: IdleTarget) -> anyhow::Result<()> {
    match &t.remote {
        Some((url, app_id, pid)) => idle_tcp(&t, url, app_id, *pid).await,
        None if t.pipes_only => idle_pipes(&t).await,
        None => idle_in_process(&t).await,
    }
}

/// Open `from..to` sessions with `open(i)`, `concurrency` at a time, keeping what it returns.
async fn open_many<C, F, Fut>(from: usize, to: usize, concurrency: usize, held: &mut Vec<C>, open: F) -> anyhow::Result<()>
where
    C: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<C>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in from..to {
        let permit = slots.clone().acquire_owned().await?;
        let fut = open(i);
        tasks.spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        });
        while let Some(r) = tasks.try_join_next() {
            held.push(r??);
        }
    }
    while let Some(r) = tasks.join_next().await {
        held.push(r??);
    }
    Ok(())
}

fn report_idle(what: &str, sessions: usize, warmup: usize, before: (u64, u64), after: (u64, u64), elapsed: Duration) {
    let n = (sessions - warmup).max(1) as f64;
    let per = after.0.saturating_sub(before.0) as f64 / n;
    println!(
        "conn-idle ({what}): {sessions} sessions opened in {:.1}s; RSS {:.1} MB with {warmup} sessions, {:.1} MB with {sessions} \
         (peak {:.1} MB): {:.0} bytes per idle session",
        elapsed.as_secs_f64(),
        mb(before.0),
        mb(after.0),
        mb(after.1),
        per
    );
}

async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Open the warm-up sessions, measure `pid`, open the rest, measure again, report; the sessions
/// are held until then.
async fn measure<C, F, Fut>(t: &IdleTarget, what: &str, pid: u32, open: F) -> anyhow::Result<()>
where
    C: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<C>> + Send + 'static,
{
    let start = Instant::now();
    let mut held = Vec::with_capacity(t.sessions);
    open_many(0, t.warmup, t.concurrency, &mut held, &open).await?;
    settle().await;
    let before = rss(pid)?;
    open_many(t.warmup, t.sessions, t.concurrency, &mut held, &open).await?;
    settle().await;
    let after = rss(pid)?;
    report_idle(what, t.sessions, t.warmup, before, after, start.elapsed());
    Ok(())
}

async fn idle_tcp(t: &IdleTarget, url: &str, app_id: &str, pid: u32) -> anyhow::Result<()> {
    let host = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let addr: std::net::SocketAddr = tokio::net::lookup_host(&host).await?.next().context("the server's address")?;
    let (host, app_id) = (Arc::new(host), Arc::new(app_id.to_string()));
    let tag = confab_engine::random_lower(6);
    let open = |i: usize| {
        let (host, app_id, peer) = (host.clone(), app_id.clone(), format!("idle-{tag}-{i}"));
        async move {
            let mut s = TcpStream::connect(addr).await?;
            raw::login(&mut s, &host, &app_id, &peer).await.with_context(|| format!("session {i}"))?;
            Ok(s)
        }
    };
    measure(t, "tcp", pid, open).await?;
    Ok(())
}

async fn idle_in_process(t: &IdleTarget) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config { data_dir: dir.path().into(), log: "warn".into(), ..Config::default() };
    let backing = confab_server::Backing::open(&config, confab_server::Opener::Tool).await?;
    let engine = confab_server::engine(&config, &backing, 0)?;
    let app = engine.apps().create_app(NewApp { name: "idle".into(), ..Default::default() }).await.map_err(anyhow::Error::msg)?;
    let gateways = confab_server::Gateways::start(engine.clone(), GatewaySettings::default());
    let router = confab_server::router(engine, &gateways, &config);
    let app_id = Arc::new(app.keys.leancloud.app_id.clone());
    let open = |i: usize| {
        let (router, app_id) = (router.clone(), app_id.clone());
        async move {
            let (mut client, server) = tokio::io::duplex(PIPE);
            let service = hyper_util::service::TowerToHyperService::new(router);
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(server), service).with_upgrades(),
            );
            raw::login(&mut client, "confab", &app_id, &format!("idle-{i}")).await.with_context(|| format!("session {i}"))?;
            Ok(client)
        }
    };
    measure(t, "in-process pipes, server and pipes", std::process::id(), open).await?;
    backing.close().await;
    Ok(())
}

/// The pipes alone: the same bytes through the same pipes, no server.
async fn idle_pipes(t: &IdleTarget) -> anyhow::Result<()> {
    let open = |_: usize| async move {
        let (mut client, mut server) = tokio::io::duplex(PIPE);
        let mut buf = [0u8; 512];
        client.write_all(&[b'x'; 230]).await?;
        let _ = server.read(&mut buf).await?;
        server.write_all(&[b'y'; 300]).await?;
        let _ = client.read(&mut buf).await?;
        Ok::<(DuplexStream, DuplexStream), anyhow::Error>((client, server))
    };
    measure(t, "in-process pipes alone", std::process::id(), open).await?;
    Ok(())
}

/// Sample a process's resident memory every `every` until told to stop; the samples (ms, bytes).
pub fn sample_rss(pid: u32, every: Duration) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<Vec<(u64, u64)>>) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        loop {
            if let Ok((r, _)) = rss(pid) {
                out.push((start.elapsed().as_millis() as u64, r));
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopped.changed() => break,
            }
        }
        out
    });
    (stop, task)
}

/// `login-flood`: wrong-password logins (LeanCloud `POST /1.1/login`) against one account, many
/// at a time, then ten quiet seconds; the server's resident memory throughout.
pub async fn login_flood(url: &str, app_id: &str, app_key: &str, pid: u32, logins: usize, concurrency: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let base = url.trim_end_matches('/').to_string();
    let req = |path: &str| {
        http.post(format!("{base}{path}")).header("X-LC-Id", app_id).header("X-LC-Key", app_key).header("Content-Type", "application/json")
    };
    let user = format!("flood-{}", confab_engine::random_lower(8));
    let r = req("/1.1/users").body(json!({"username": user, "password": "the-right-password"}).to_string()).send().await?;
    anyhow::ensure!(r.status().is_success(), "sign-up failed: {}", r.text().await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss(pid)?;
    let (stop, sampler) = sample_rss(pid, Duration::from_millis(50));
    let slots = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..logins {
        let permit = slots.clone().acquire_owned().await?;
        let body = json!({"username": user, "password": format!("wrong-{i}")}).to_string();
        let send = req("/1.1/login").body(body).send();
        tasks.spawn(async move {
            let t = Instant::now();
            let status = send.await.map(|r| r.status().as_u16()).unwrap_or(0);
            drop(permit);
            (status, t.elapsed())
        });
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut slowest = Duration::ZERO;
    while let Some(r) = tasks.join_next().await {
        let (s, took) = r?;
        *statuses.entry(s).or_default() += 1;
        slowest = slowest.max(took);
    }
    let flood = start.elapsed();
    let at_end = rss(pid)?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let later = rss(pid)?;
    let _ = stop.send(true);
    let samples = sampler.await?;
    let peak = samples.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let right = req("/1.1/login").body(json!({"username": user, "password": "the-right-password"}).to_string()).send().await?;
    let right: (u16, Value) = (right.status().as_u16(), right.json().await.unwrap_or(Value::Null));
    println!(
        "login-flood: {logins} wrong-password logins, {concurrency} at a time, in {:.2}s (slowest answer {:.2}s); answers {statuses:?}",
        flood.as_secs_f64(),
        slowest.as_secs_f64()
    );
    println!(
        "login-flood: server RSS {:.1} MB before, peak {:.1} MB, {:.1} MB at the end, {:.1} MB ten seconds later",
        mb(before.0),
        mb(peak),
        mb(at_end.0),
        mb(later.0)
    );
    println!("login-flood: then the right password: HTTP {} {}", right.0, right.1.get("code").map(Value::to_string).unwrap_or_default());
    Ok(())
}
