//! `soak`: a moderate mixed load held for a long time against a running server, with its
//! resident memory sampled throughout.
//!
//! Realtime sessions sit in group conversations and receive every message; the app's server
//! sends to those groups over REST at a steady rate; new users sign up (password hashing);
//! sessions drop and reconnect (churn), and every `--wave-secs` all of them reconnect at once.
//! A probe measures `/healthz` and the delivery latency of one more group each second. At the
//! end every acknowledged message is looked for in history, every session's pushes are checked
//! against what it should have received while connected, and against history's order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use confab_face_leancloud::realtime::proto::*;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use prost::Message as _;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::mem::{mb, rss};

#[derive(clap::Args, Clone)]
pub struct SoakArgs {
    /// The running confab.
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub app_id: String,
    #[arg(long)]
    pub app_key: String,
    #[arg(long)]
    pub master_key: String,
    /// Its process id (for its resident memory).
    #[arg(long)]
    pub server_pid: u32,
    #[arg(long, default_value_t = 30)]
    pub minutes: u64,
    #[arg(long, default_value_t = 20)]
    pub groups: usize,
    /// Sessions per group.
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// REST messages a second, over all groups.
    #[arg(long, default_value_t = 300)]
    pub rate: u64,
    /// New users (sign-ups) a second.
    #[arg(long, default_value_t = 5)]
    pub new_users: u64,
    /// Sessions that drop and reconnect each minute.
    #[arg(long, default_value_t = 60)]
    pub churn_per_min: u64,
    /// Every this many seconds every session reconnects at once (0: never).
    #[arg(long, default_value_t = 300)]
    pub wave_secs: u64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What one session saw: pushes (conversation, message id) in arrival order, and when it was
/// connected (wall-clock ms).
#[derive(Default)]
struct Seen {
    pushes: Vec<(String, String)>,
    connected: Vec<(i64, i64)>,
}

struct Session {
    peer: String,
    seen: Mutex<Seen>,
    /// Drop the connection and reconnect.
    bounce: Notify,
}

struct Shared {
    args: SoakArgs,
    http: reqwest::Client,
    stop: AtomicBool,
    pushes: AtomicU64,
    acked: Mutex<Vec<(String, String, i64)>>,
    send_errors: Mutex<HashMap<u16, u64>>,
    signups: AtomicU64,
    signup_errors: AtomicU64,
    logins: AtomicU64,
    login_errors: AtomicU64,
    /// (healthz ms, probe delivery ms) since the last sample.
    probe: Mutex<(Vec<u64>, Vec<u64>)>,
}

impl Shared {
    fn req(&self, method: reqwest::Method, path: &str, master: bool) -> reqwest::RequestBuilder {
        let key = if master { format!("{},master", self.args.master_key) } else { self.args.app_key.clone() };
        self.http
            .request(method, format!("{}{path}", self.args.url.trim_end_matches('/')))
            .header("X-LC-Id", &self.args.app_id)
            .header("X-LC-Key", key)
            .header("Content-Type", "application/json")
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(sh: &Shared, peer: &str) -> anyhow::Result<Socket> {
    let url = sh.args.url.replacen("http", "ws", 1).trim_end_matches('/').to_string() + "/";
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("Sec-WebSocket-Protocol", "lc.protobuf2.3".parse()?);
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false).await?;
    ws.send(Ws::Binary(crate::raw::open_command(&sh.args.app_id, peer).into())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Ws::Binary(b)))) => {
                let c = GenericCommand::decode(&b[..])?;
                if c.i == Some(1) {
                    anyhow::ensure!(c.op == Some(OpType::Opened as i32), "login refused: {c:?}");
                    return Ok(ws);
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => anyhow::bail!("closed during login"),
            Err(_) => anyhow::bail!("no answer to the login within 30 s"),
        }
    }
}

/// A session: connect, record pushes until bounced or stopped, reconnect.
async fn run_session(sh: Arc<Shared>, s: Arc<Session>) {
    while !sh.stopped() {
        let ws = match connect(&sh, &s.peer).await {
            Ok(ws) => ws,
            Err(_) => {
                sh.login_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        sh.logins.fetch_add(1, Ordering::Relaxed);
        let opened = wall_ms();
        let (mut sink, mut stream) = ws.split();
        let mut echo = tokio::time::interval(Duration::from_secs(60));
        echo.tick().await;
        loop {
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(Ws::Binary(b))) => {
                        if let Ok(c) = GenericCommand::decode(&b[..]) {
                            if let Some(d) = c.direct_message {
                                if let (Some(cid), Some(id)) = (d.cid, d.id) {
                                    s.seen.lock().pushes.push((cid, id));
                                    sh.pushes.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = s.bounce.notified() => break,
                _ = echo.tick() => {
                    let e = GenericCommand { cmd: Some(CommandType::Echo as i32), ..Default::default() };
                    if sink.send(Ws::Binary(e.encode_to_vec().into())).await.is_err() { break; }
                }
                _ = tokio::time::sleep(Duration::from_millis(200)) => if sh.stopped() { break },
            }
        }
        s.seen.lock().connected.push((opened, wall_ms()));
        drop((sink, stream));
        if !sh.stopped() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn every(period: Duration, sh: &Shared, mut f: impl FnMut()) {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !sh.stopped() {
        t.tick().await;
        f();
    }
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

pub async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(128).timeout(Duration::from_secs(60)).build()?;
    let sh = Arc::new(Shared {
        args: args.clone(),
        http,
        stop: AtomicBool::new(false),
        pushes: AtomicU64::new(0),
        acked: Mutex::new(Vec::new()),
        send_errors: Mutex::new(HashMap::new()),
        signups: AtomicU64::new(0),
        signup_errors: AtomicU64::new(0),
        logins: AtomicU64::new(0),
        login_errors: AtomicU64::new(0),
        probe: Mutex::new((Vec::new(), Vec::new())),
    });
    let tag = confab_engine::random_lower(5);
    // the groups and their sessions
    let mut groups: Vec<(String, Vec<Arc<Session>>)> = Vec::new();
    for g in 0..args.groups {
        let peers: Vec<String> = (0..args.members).map(|m| format!("soak-{tag}-g{g}-m{m}")).collect();
        let r: Value = sh
            .req(reqwest::Method::POST, "/1.2/rtm/conversations", true)
            .body(json!({"name": format!("soak {g}"), "m": peers}).to_string())
            .send()
            .await?
            .json()
            .await?;
        let cid = r["objectId"].as_str().context("objectId")?.to_string();
        let sessions = peers.into_iter().map(|peer| Arc::new(Session { peer, seen: Mutex::default(), bounce: Notify::new() })).collect();
        groups.push((cid, sessions));
    }
    let all: Vec<Arc<Session>> = groups.iter().flat_map(|(_, s)| s.iter().cloned()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for s in &all {
        tasks.spawn(run_session(sh.clone(), s.clone()));
    }
    let probe_peer = format!("soak-{tag}-probe");
    let r: Value = sh
        .req(reqwest::Method::POST, "/1.2/rtm/conversations", true)
        .body(json!({"name": "probe", "m": [probe_peer]}).to_string())
        .send()
        .await?
        .json()
        .await?;
    let probe_cid = r["objectId"].as_str().context("objectId")?.to_string();
    println!(
        "soak: {} sessions in {} groups, {} REST messages/s, {} sign-ups/s, {} reconnects/min, a wave every {} s, for {} min",
        all.len(),
        args.groups,
        args.rate,
        args.new_users,
        args.churn_per_min,
        args.wave_secs,
        args.minutes
    );
    let start = Instant::now();
    let cids: Arc<Vec<(String, Vec<String>)>> =
        Arc::new(groups.iter().map(|(c, s)| (c.clone(), s.iter().map(|x| x.peer.clone()).collect())).collect());

    // REST senders: `rate` a second, in ticks of 10 ms
    {
        let sh = sh.clone();
        let cids = cids.clone();
        tasks.spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(128));
            let per_tick = sh.args.rate as f64 / 100.0;
            let mut owed = 0.0;
            let sh2 = sh.clone();
            every(Duration::from_millis(10), &sh2, || {
                owed += per_tick;
                while owed >= 1.0 {
                    owed -= 1.0;
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        *sh.send_errors.lock().entry(0).or_default() += 1;
                        continue;
                    };
                    let (sh, cids) = (sh.clone(), cids.clone());
                    tokio::spawn(async move {
                        let (cid, peers) = &cids[rand::thread_rng().gen_range(0..cids.len())];
                        let from = &peers[rand::thread_rng().gen_range(0..peers.len())];
                        let body = json!({"from_client": from, "message": "a soak message of ordinary length"}).to_string();
                        let r =
                            sh.req(reqwest::Method::POST, &format!("/1.2/rtm/conversations/{cid}/messages"), true).body(body).send().await;
                        match r {
                            Ok(r) if r.status().is_success() => {
                                if let Ok(v) = r.json::<Value>().await {
                                    if let (Some(id), Some(ts)) = (v["msg-id"].as_str(), v["timestamp"].as_i64()) {
                                        sh.acked.lock().push((cid.clone(), id.to_string(), ts));
                                    }
                                }
                            }
                            Ok(r) => *sh.send_errors.lock().entry(r.status().as_u16()).or_default() += 1,
                            Err(_) => *sh.send_errors.lock().entry(1).or_default() += 1,
                        }
                        drop(permit);
                    });
                }
            })
            .await;
        });
    }
    // sign-ups
    if args.new_users > 0 {
        let sh = sh.clone();
        let tag = tag.clone();
        tasks.spawn(async move {
            let n = AtomicU64::new(0);
            let sh2 = sh.clone();
            every(Duration::from_millis(1000 / sh.args.new_users.max(1)), &sh2, || {
                let i = n.fetch_add(1, Ordering::Relaxed);
                let sh = sh.clone();
                let body = json!({"username": format!("soak-{tag}-user-{i}"), "password": "a soak password"}).to_string();
                tokio::spawn(async move {
                    match sh.req(reqwest::Method::POST, "/1.1/users", false).body(body).send().await {
                        Ok(r) if r.status().is_success() => sh.signups.fetch_add(1, Ordering::Relaxed),
                        _ => sh.signup_errors.fetch_add(1, Ordering::Relaxed),
                    };
                });
            })
            .await;
        });
    }
    // churn and waves
    {
        let sh = sh.clone();
        let all = all.clone();
        tasks.spawn(async move {
            let per_sec = sh.args.churn_per_min as f64 / 60.0;
            let (mut owed, mut last_wave) = (0.0, Instant::now());
            let sh2 = sh.clone();
            every(Duration::from_secs(1), &sh2, || {
                owed += per_sec;
                while owed >= 1.0 {
                    owed -= 1.0;
                    all[rand::thread_rng().gen_range(0..all.len())].bounce.notify_one();
                }
                if sh.args.wave_secs > 0 && last_wave.elapsed() >= Duration::from_secs(sh.args.wave_secs) {
                    last_wave = Instant::now();
                    for s in &all {
                        s.bounce.notify_one();
                    }
                }
            })
            .await;
        });
    }
    // the probe: /healthz, and one message a second to a group of its own
    {
        let sh = sh.clone();
        let (peer, cid) = (probe_peer.clone(), probe_cid.clone());
        tasks.spawn(async move {
            let Ok(ws) = connect(&sh, &peer).await else { return };
            let (_sink, mut stream) = ws.split();
            let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
            let s2 = sent.clone();
            let sh2 = sh.clone();
            let reader = tokio::spawn(async move {
                while let Some(Ok(frame)) = stream.next().await {
                    let Ws::Binary(b) = frame else { continue };
                    let Some(text) = GenericCommand::decode(&b[..]).ok().and_then(|c| c.direct_message).and_then(|d| d.msg) else {
                        continue;
                    };
                    if let Some(t) = s2.lock().remove(&text) {
                        sh2.probe.lock().1.push(t.elapsed().as_millis() as u64);
                    }
                }
            });
            let mut t = tokio::time::interval(Duration::from_secs(1));
            let mut i = 0u64;
            while !sh.stopped() {
                t.tick().await;
                let at = Instant::now();
                if sh.http.get(format!("{}/healthz", sh.args.url.trim_end_matches('/'))).send().await.is_ok() {
                    sh.probe.lock().0.push(at.elapsed().as_millis() as u64);
                }
                i += 1;
                let text = format!("probe {i}");
                sent.lock().insert(text.clone(), Instant::now());
                let body = json!({"from_client": "prober", "message": text}).to_string();
                let _ = sh.req(reqwest::Method::POST, &format!("/1.2/rtm/conversations/{cid}/messages"), true).body(body).send().await;
            }
            reader.abort();
        });
    }
    // samples
    let deadline = start + Duration::from_secs(args.minutes * 60);
    let mut samples = Vec::new();
    let (mut last_acked, mut last_pushes) = (0usize, 0u64);
    println!("  t(s)  rss(MB)  msgs/s  pushes/s  logins  healthz p99/max ms  probe p50/p99/max ms  send errors");
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(args.sample_secs).min(deadline.saturating_duration_since(Instant::now()))).await;
        let (r, _) = rss(args.server_pid)?;
        let acked = sh.acked.lock().len();
        let pushes = sh.pushes.load(Ordering::Relaxed);
        let (mut hz, mut pr) = std::mem::take(&mut *sh.probe.lock());
        let secs = args.sample_secs.max(1) as f64;
        println!(
            "{:6} {:8.1} {:7.0} {:9.0} {:7} {:8}/{:<8} {:6}/{}/{:<8} {:?}",
            start.elapsed().as_secs(),
            mb(r),
            (acked - last_acked) as f64 / secs,
            (pushes - last_pushes) as f64 / secs,
            sh.logins.load(Ordering::Relaxed),
            pct(&mut hz, 0.99),
            pct(&mut hz, 1.0),
            pct(&mut pr, 0.5),
            pct(&mut pr, 0.99),
            pct(&mut pr, 1.0),
            sh.send_errors.lock()
        );
        samples.push((start.elapsed().as_secs(), r));
        (last_acked, last_pushes) = (acked, pushes);
    }
    sh.stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    summary(&samples);
    if let Err(e) = verify(&sh, &groups).await {
        println!("soak: the history could not be read to verify: {e:#}");
    }
    Ok(())
}

/// The server's memory over the run: the first half against the second.
fn summary(samples: &[(u64, u64)]) {
    let half = samples.len() / 2;
    let max = |v: &[(u64, u64)]| v.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "soak: server RSS max {:.1} MB in the first half, {:.1} MB in the second, {:.1} MB at the end",
        mb(max(&samples[..half])),
        mb(max(&samples[half..])),
        mb(samples.last().map_or(0, |s| s.1))
    );
}

/// Every acknowledged message in history; every push a connected session should have had; the
/// pushes' order against history's.
async fn verify(sh: &Shared, groups: &[(String, Vec<Arc<Session>>)]) -> anyhow::Result<()> {
    let acked = sh.acked.lock().clone();
    let mut history: HashMap<String, HashMap<String, usize>> = HashMap::new();
    for (cid, _) in groups {
        let mut pos = HashMap::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let mut path = format!("/1.2/rtm/conversations/{cid}/messages?reversed=true&limit=1000");
            if let Some((ts, id)) = &after {
                path += &format!("&timestamp={ts}&msgid={id}");
            }
            let page: Vec<Value> = sh.req(reqwest::Method::GET, &path, true).send().await?.json().await?;
            for m in &page {
                let id = m["msg-id"].as_str().unwrap_or_default().to_string();
                let n = pos.len();
                pos.insert(id, n);
            }
            match page.last() {
                Some(m) if page.len() == 1000 => {
                    after = Some((m["timestamp"].as_i64().unwrap_or(0), m["msg-id"].as_str().unwrap_or_default().to_string()))
                }
                _ => break,
            }
        }
        history.insert(cid.clone(), pos);
    }
    let lost = acked.iter().filter(|(cid, id, _)| !history.get(cid).is_some_and(|h| h.contains_key(id))).count();
    let mut by_conv: HashMap<&str, Vec<(&str, i64)>> = HashMap::new();
    for (cid, id, ts) in &acked {
        by_conv.entry(cid.as_str()).or_default().push((id.as_str(), *ts));
    }
    let (mut expected, mut missing, mut swaps) = (0u64, 0u64, 0u64);
    for (cid, sessions) in groups {
        let pos = &history[cid];
        for s in sessions {
            let seen = s.seen.lock();
            let got: std::collections::HashSet<&str> = seen.pushes.iter().filter(|(c, _)| c == cid).map(|(_, id)| id.as_str()).collect();
            for (id, ts) in by_conv.get(cid.as_str()).map(Vec::as_slice).unwrap_or_default() {
                // connected well before and well after the message: it must have been pushed
                if seen.connected.iter().any(|(a, b)| a + 1000 <= *ts && *ts + 1000 <= *b) {
                    expected += 1;
                    if !got.contains(id) {
                        missing += 1;
                    }
                }
            }
            let order: Vec<usize> = seen.pushes.iter().filter(|(c, _)| c == cid).filter_map(|(_, id)| pos.get(id).copied()).collect();
            swaps += order.windows(2).filter(|w| w[0] > w[1]).count() as u64;
        }
    }
    println!(
        "soak: {} messages acknowledged, {lost} of them missing from history; {} pushes received; of {expected} pushes due to \
         connected sessions {missing} missing; {swaps} adjacent pushes out of history's order",
        acked.len(),
        sh.pushes.load(Ordering::Relaxed)
    );
    println!(
        "soak: {} logins ({} failed), {} sign-ups ({} failed); send errors {:?}",
        sh.logins.load(Ordering::Relaxed),
        sh.login_errors.load(Ordering::Relaxed),
        sh.signups.load(Ordering::Relaxed),
        sh.signup_errors.load(Ordering::Relaxed),
        sh.send_errors.lock()
    );
    Ok(())
}
