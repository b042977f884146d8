//! `login-catchup`: realtime logins of clients whose conversations hold a long unread history.
//!
//! `--clients` members share `--conversations` group conversations holding `--history` messages
//! in all, none of them read (stored straight into the store, as a long-running app would have
//! them). Then `--logins` session opens (a new WebSocket each, `--concurrency` at a time, as a
//! reconnect wave) are timed from `session open` to `opened`: the reply waits for the catch-up
//! (unread counts, patches, broadcasts). `/healthz` is polled meanwhile. Last, one login with the
//! store's work counter on, followed by what the SDK asks right after (the unread conversations
//! by id, the client's conversations with their last messages, `/1.1/rtm/notifications`), prints
//! every store operation with its SQLite virtual machine steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_engine::model::*;
use confab_engine::{MessageStore, NewConversation};
use confab_face_leancloud::realtime::proto::*;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::ws::{self, Socket};
use crate::{gather, report, Lc, Target};

#[derive(clap::Args, Clone)]
pub struct LoginArgs {
    /// Unread messages in all, spread evenly over the conversations.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Clients, members of every conversation, that log in in turn.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Group conversations holding the history.
    #[arg(long, default_value_t = 1)]
    conversations: usize,
    /// Logins timed.
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// Logins at a time.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A login as the JS SDK makes it (protocol 3, `lastPatchTime` = when the client was made).
fn session() -> SessionCommand {
    SessionCommand { ua: Some("js/4.3.1".into()), last_patch_time: Some(now_ms()), config_bitmap: Some(59), ..Default::default() }
}

/// Wait for the `unread` push that follows `opened` (None if none comes within a second).
async fn unread_push(ws: &mut Socket) -> Option<UnreadCommand> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Ws::Binary(b) = frame {
            if let Ok(c) = GenericCommand::decode(&b[..]) {
                if c.cmd == Some(CommandType::Unread as i32) {
                    return c.unread_message;
                }
            }
        }
    }
    None
}

/// A `conv query` with this `where`, answered with `results` (asserted).
async fn conv_query(ws: &mut Socket, i: i32, r#where: Value, sort: Option<&str>, limit: i32, flag: i32) -> anyhow::Result<()> {
    let q = GenericCommand {
        cmd: Some(CommandType::Conv as i32),
        op: Some(OpType::Query as i32),
        i: Some(i),
        conv_message: Some(ConvCommand {
            r#where: Some(JsonObjectMessage { data: r#where.to_string() }),
            sort: sort.map(str::to_string),
            limit: Some(limit),
            flag: Some(flag),
            ..Default::default()
        }),
        ..Default::default()
    };
    ws.send(Ws::Binary(q.encode_to_vec().into())).await?;
    loop {
        if let Some(Ws::Binary(b)) = ws.next().await.transpose()? {
            let c = GenericCommand::decode(&b[..])?;
            if c.i == Some(i) {
                anyhow::ensure!(c.op == Some(OpType::Results as i32), "conv query failed: {c:?}");
                return Ok(());
            }
        }
    }
}

pub async fn login_catchup(a: LoginArgs) -> anyhow::Result<()> {
    let target = Target {
        url: Vec::new(),
        app_id: None,
        master_key: None,
        conversations: a.conversations,
        one_to_one: false,
        concurrency: a.concurrency,
        seconds: 0,
    };
    let lc = Arc::new(Lc::connect(&target).await?);
    let (server, _) = lc._server.as_ref().context("in-process server")?;
    let (engine, store) = (server.engine.clone(), server.sqlite().context("the embedded store")?.clone());
    let app = engine.apps().find_app(&AppLookup::Name("bench".into())).await.map_err(anyhow::Error::msg)?.context("the bench app")?;
    let clients: Vec<String> = (0..a.clients).map(|i| format!("c{i}")).collect();
    let mut members = clients.clone();
    members.push("sender".into());
    let mut convs = Vec::new();
    for k in 0..a.conversations.max(1) {
        let new = NewConversation { name: Some(format!("history {k}")), members: members.clone(), ..Default::default() };
        convs.push(engine.conversations().create_conversation(&app, new).await.map_err(anyhow::Error::msg)?.0.id);
    }
    // the history, by 64 writers (group commit)
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..64 {
        let (store, engine, convs) = (store.clone(), engine.clone(), convs.clone());
        let n = a.history / 64 + usize::from(w < a.history % 64);
        let app = app.id;
        tasks.spawn(async move {
            for i in 0..n {
                let conv = convs[(w + i * 64) % convs.len()];
                let text = Content::Text(format!("{{\"_lctype\":-1,\"_lctext\":\"history {w}/{i}\"}}"));
                let m = Message { mtype: MessageType::TEXT, ..Message::new(app, engine.next_id(), conv, "sender", engine.now(), text) };
                store.insert_message(&m).await.map_err(anyhow::Error::msg)?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    println!(
        "login-catchup: {} unread messages in {} conversation(s) of {} clients (stored in {:.1}s); {} logins, {} at a time",
        a.history,
        convs.len(),
        a.clients,
        t.elapsed().as_secs_f64(),
        a.logins,
        a.concurrency
    );

    // /healthz, one request after another, while the logins run
    let done = Arc::new(AtomicBool::new(false));
    let health = {
        let (lc, done) = (lc.clone(), done.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                if lc.http.get(format!("{}/healthz", lc.base(0))).send().await.is_ok_and(|r| r.status().is_success()) {
                    lat.push(t.elapsed().as_micros() as u32);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            lat
        })
    };
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..a.concurrency.max(1) {
        let (lc, next, clients) = (lc.clone(), next.clone(), clients.clone());
        let logins = a.logins;
        tasks.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= logins {
                    break;
                }
                let peer = &clients[i % clients.len()];
                let Ok(mut ws) = ws::socket(&lc, 0).await else {
                    errors += 1;
                    continue;
                };
                let t = Instant::now();
                match ws::open(&mut ws, &lc.app_id, peer, session()).await {
                    Ok(_) => lat.push(t.elapsed().as_micros() as u32),
                    Err(_) => errors += 1,
                }
                unread_push(&mut ws).await;
                let _ = ws.close(None).await;
            }
            (lat, errors)
        });
    }
    let (lat, errors) = gather(tasks).await?;
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    report("login (session open → opened)", lat, errors, elapsed);
    report("/healthz during the logins", health.await?, 0, elapsed);

    // one login and the SDK's next requests, with the store counting its work
    store.count_work(true);
    store.work(true);
    let mut ws = ws::socket(&lc, 0).await?;
    let opened = ws::open(&mut ws, &lc.app_id, &clients[0], session()).await?;
    let unread = unread_push(&mut ws).await;
    let counts: Vec<i32> = unread.as_ref().map(|u| u.convs.iter().map(|c| c.unread).collect()).unwrap_or_default();
    let cids: Vec<String> = unread.map(|u| u.convs.into_iter().map(|c| c.cid).collect()).unwrap_or_default();
    conv_query(&mut ws, 2, json!({"objectId": {"$in": cids}}), None, 999, 0).await?;
    conv_query(&mut ws, 3, json!({"m": clients[0]}), Some("-lm"), 10, 2).await?;
    let st = opened.session_message.and_then(|s| s.st).context("a session token")?;
    lc.req(reqwest::Method::GET, &format!("/1.1/rtm/notifications?client_id={}&start_ts=0&notification_type=permanent", clients[0]))
        .header("X-LC-IM-Session-Token", st)
        .send()
        .await?
        .error_for_status()?;
    let _ = ws.close(None).await;
    store.count_work(false);
    let mut work: Vec<(&str, confab_store_sqlite::OpWork)> = store.work(true).into_iter().collect();
    work.sort_by_key(|(_, w)| std::cmp::Reverse(w.vm_steps));
    println!("one login, then the SDK's conv queries and /1.1/rtm/notifications: unread counts pushed {counts:?}");
    println!("  {:<24} {:>6} {:>12}", "store operation", "calls", "VM steps");
    for (op, w) in work {
        println!("  {op:<24} {:>6} {:>12}", w.calls, w.vm_steps);
    }
    Ok(())
}
