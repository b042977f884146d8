//! The LeanCloud realtime gateway over a real WebSocket on a real port, without the JS SDK:
//! handshake and subprotocols, framing, `i` correlation, the session state machine, direct
//! messages, malformed input, back-pressure and TLS (protocol digest §2, §3, §6).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::common::ws::*;
use crate::common::*;
use confab_engine::model::{Content, Message, MessageType, Plan};
use confab_engine::{NewApp, NewConversation};
use confab_face_leancloud::realtime::codec;
use confab_face_leancloud::realtime::proto::*;
use confab_face_leancloud::realtime::{Gateway, GatewaySettings};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::MaybeTlsStream;

/// A running server with one app: (server, app id).
async fn server() -> (TestServer, LcApp) {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    (srv, app)
}

// ------------------------------------------------------------------ handshake

#[tokio::test]
async fn binary_subprotocol_is_echoed_and_replies_are_binary() {
    let (srv, app) = server().await;
    let mut c = Client::connect(&srv.base).await;
    assert_eq!(c.protocol.as_deref(), Some(BINARY));
    c.send(&GenericCommand { i: Some(7), ..command(CommandType::Echo, None) }).await;
    let m = c.next_frame(WAIT).await.expect("echo reply");
    assert!(matches!(m, WsMessage::Binary(_)), "binary frame expected, got {m:?}");
    assert_eq!(decode_frame(&m).i, Some(7));
    c.open(app.app_id(), Some("alice")).await;
    srv.stop().await;
}

#[tokio::test]
async fn base64_subprotocol_is_echoed_and_replies_are_text() {
    let (srv, app) = server().await;
    let mut c = Client::connect_url(&format!("{}/", ws_url(&srv.base)), Some(BASE64)).await;
    assert_eq!(c.protocol.as_deref(), Some(BASE64));
    assert!(c.base64);
    // the request goes as a base64 text frame too
    c.send(&GenericCommand { i: Some(3), ..command(CommandType::Echo, None) }).await;
    let m = c.next_frame(WAIT).await.expect("echo reply");
    let WsMessage::Text(t) = &m else { panic!("text frame expected, got {m:?}") };
    assert_eq!(codec::decode_text(t.as_str()).expect("base64 protobuf").i, Some(3));
    // a whole session over base64
    let r = c.open(app.app_id(), Some("alice")).await;
    assert_eq!(r.peer_id.as_deref(), Some("alice"));
    srv.stop().await;
}

#[tokio::test]
async fn subprotocol_in_the_query_string_selects_base64() {
    let (srv, _app) = server().await;
    let url = format!("{}/?subprotocol={BASE64}", ws_url(&srv.base));
    let mut c = Client::connect_url(&url, None).await;
    assert_eq!(c.protocol, None, "nothing offered in the header, nothing echoed");
    c.base64 = true;
    c.send(&GenericCommand { i: Some(5), ..command(CommandType::Echo, None) }).await;
    let m = c.next_frame(WAIT).await.expect("echo reply");
    let WsMessage::Text(t) = &m else { panic!("text frame expected, got {m:?}") };
    assert_eq!(codec::decode_text(t.as_str()).expect("base64 protobuf").i, Some(5));
    srv.stop().await;
}

/// A raw HTTP upgrade request; returns the response head (status line and headers).
async fn raw_upgrade(addr: SocketAddr, path: &str, protocol: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk)).await.expect("response").unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).to_lowercase()
}

#[tokio::test]
async fn unsupported_subprotocol_is_not_echoed() {
    let (srv, _app) = server().await;
    let addr = srv.server.as_ref().unwrap().addr;
    let head = raw_upgrade(addr, "/", "lc.json.3").await;
    assert!(head.starts_with("http/1.1 101"), "upgrade still happens: {head}");
    assert!(!head.contains("sec-websocket-protocol"), "an unsupported protocol must not be echoed: {head}");
    // a supported one among several offered: that one is echoed
    let head = raw_upgrade(addr, "/", &format!("lc.json.3, {BINARY}")).await;
    assert!(head.contains(&format!("sec-websocket-protocol: {BINARY}")), "{head}");
    // and the strict client refuses a handshake without the protocol it offered
    let err = tokio_tungstenite::connect_async(ws_request(&format!("{}/", ws_url(&srv.base)), Some("lc.json.3"))).await;
    assert!(err.is_err(), "a client offering only an unsupported protocol gets none back");
    srv.stop().await;
}

#[tokio::test]
async fn plain_get_is_404_json_and_other_paths_upgrade() {
    let (srv, app) = server().await;
    let r = srv.http.get(format!("{}/", srv.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(body["code"], 404, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let r = srv.http.get(format!("{}/rtm", srv.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // /rtm upgrades
    let mut c = Client::connect_url(&format!("{}/rtm", ws_url(&srv.base)), Some(BINARY)).await;
    assert_eq!(c.protocol.as_deref(), Some(BINARY));
    c.echo().await;
    c.open(app.app_id(), Some("alice")).await;
    srv.stop().await;
}

// ------------------------------------------------------------------ correlation

#[tokio::test]
async fn replies_carry_i_and_fire_and_forget_commands_get_no_reply() {
    let (srv, app) = server().await;
    let mut a = Client::connect(&srv.base).await;
    let mut b = Client::connect(&srv.base).await;
    a.open(app.app_id(), Some("alice")).await;
    b.open(app.app_id(), Some("bob")).await;
    let cid = app.conversation(json!({"m": ["alice", "bob"]})).await;

    // echo: same i, whatever it is (pushes, like the new conversation's, come without i)
    for i in [1000, 42, i32::MAX] {
        a.send(&GenericCommand { i: Some(i), ..command(CommandType::Echo, None) }).await;
        let r = a.reply_to(i).await;
        assert_eq!((r.cmd, r.i), (Some(CommandType::Echo as i32), Some(i)));
    }
    assert!(a.pushes.iter().all(|p| p.i.unwrap_or(0) == 0));

    // a push carries no i
    let ack = a.send_text(None, &cid, "hello").await;
    let uid = ack.ack_message.as_ref().unwrap().uid.clone().unwrap();
    let p = b.direct_push().await;
    assert_eq!(p.i.unwrap_or(0), 0, "a push must carry no i: {p:?}");

    // ack and read without i: no reply at all; the next frame is the echo's reply
    let mut ackc = command(CommandType::Ack, None);
    ackc.peer_id = Some("bob".into());
    ackc.ack_message = Some(AckCommand { cid: Some(cid.clone()), mid: Some(uid.clone()), ..Default::default() });
    b.send(&ackc).await;
    let mut readc = command(CommandType::Read, None);
    readc.read_message =
        Some(ReadCommand { convs: vec![ReadTuple { cid: cid.clone(), timestamp: Some(now_ms()), mid: Some(uid) }], ..Default::default() });
    b.send(&readc).await;
    // even failing ones (unknown conversation) stay silent
    let mut bad = ackc.clone();
    bad.ack_message = Some(AckCommand { cid: Some("123456789".into()), tots: Some(now_ms()), ..Default::default() });
    b.send(&bad).await;
    b.send(&GenericCommand { i: Some(99), ..command(CommandType::Echo, None) }).await;
    let r = b.next_cmd(WAIT).await.expect("echo reply");
    assert_eq!((r.cmd, r.i), (Some(CommandType::Echo as i32), Some(99)), "ack/read must not be answered: {r:?}");
    assert!(b.next_cmd(QUIET).await.is_none());
    srv.stop().await;
}

// ------------------------------------------------------------------ sessions

#[tokio::test]
async fn commands_before_open_and_bad_opens() {
    let (srv, app) = server().await;
    let mut c = Client::connect(&srv.base).await;
    // echo needs no session
    c.echo().await;
    // anything else does: 4105 with the request's i
    let mut q = command(CommandType::Conv, Some(OpType::Query));
    q.conv_message = Some(ConvCommand::default());
    q.i = Some(11);
    c.send(&q).await;
    let r = c.next_cmd(WAIT).await.expect("error reply");
    assert_error(&r, 4105);
    assert_eq!(r.i, Some(11));
    let r = c.send_text(None, "1", "hi").await;
    assert_error(&r, 4105);

    // unknown app
    let r = c.request(open_cmd("no-such-app", Some("alice"), SessionCommand::default())).await;
    assert_error(&r, 4100);
    // a peerId of 65 characters
    let long = "x".repeat(65);
    let r = c.request(open_cmd(app.app_id(), Some(&long), SessionCommand::default())).await;
    assert_error(&r, 4103);
    // 64 is fine, and the connection survived all of the above
    let ok = "y".repeat(64);
    let r = c.open(app.app_id(), Some(&ok)).await;
    assert_eq!(r.peer_id.as_deref(), Some(ok.as_str()));
    srv.stop().await;
}

#[tokio::test]
async fn open_answers_opened_with_peer_id_server_ts_and_token() {
    let (srv, app) = server().await;
    let mut c = Client::connect(&srv.base).await;
    let before = now_ms();
    let r = c.open(app.app_id(), Some("alice")).await;
    assert_eq!(r.peer_id.as_deref(), Some("alice"));
    let ts = r.server_ts.expect("serverTs");
    assert!(ts >= before - 1000 && ts <= now_ms() + 1000, "serverTs is ms since the epoch: {ts}");
    let sm = r.session_message.as_ref().expect("sessionMessage");
    assert!(sm.st.as_deref().is_some_and(|s| !s.is_empty()), "session token: {r:?}");
    assert!(sm.st_ttl.is_some_and(|t| t > 0), "stTtl: {r:?}");
    assert_eq!(sm.code, None, "a successful open has no code: {r:?}");
    assert_eq!(srv.server.as_ref().unwrap().gateway.session_count(), 1);

    // anonymous: the server invents a client id
    let mut anon = Client::connect(&srv.base).await;
    let r = anon.open(app.app_id(), None).await;
    let id = r.peer_id.clone().expect("an invented peerId");
    assert!(!id.is_empty());
    let r2 = Client::connect(&srv.base).await.open(app.app_id(), None).await;
    assert_ne!(r2.peer_id, Some(id), "each anonymous client gets its own id");
    srv.stop().await;
}

#[tokio::test]
async fn two_sessions_on_one_socket() {
    let (srv, app) = server().await;
    let mut x = Client::connect(&srv.base).await;
    let mut y = Client::connect(&srv.base).await;
    x.open(app.app_id(), Some("alice")).await;
    x.open(app.app_id(), Some("bob")).await;
    y.open(app.app_id(), Some("carol")).await;
    assert_eq!(srv.server.as_ref().unwrap().gateway.session_count(), 3);
    let cid = app.conversation(json!({"m": ["alice", "bob", "carol"]})).await;

    // no peerId: the first session (alice) sends
    let r = x.send_text(None, &cid, "from the first").await;
    assert_eq!(r.cmd, Some(CommandType::Ack as i32), "{r:?}");
    let p = y.direct_push().await;
    assert_eq!(p.direct_message.as_ref().unwrap().from_peer_id.as_deref(), Some("alice"));
    // bob, on the same socket, hears it, addressed to him
    let p = x.direct_push().await;
    assert_eq!(p.peer_id.as_deref(), Some("bob"), "a push on a shared socket names its client: {p:?}");
    assert_eq!(p.direct_message.as_ref().unwrap().from_peer_id.as_deref(), Some("alice"));
    x.no_direct().await;

    // peerId bob: bob sends
    x.send_text(Some("bob"), &cid, "from bob").await;
    let p = y.direct_push().await;
    assert_eq!(p.direct_message.as_ref().unwrap().from_peer_id.as_deref(), Some("bob"));
    // one session on y: peerId may be omitted, but if present it is carol
    assert!(p.peer_id.is_none() || p.peer_id.as_deref() == Some("carol"), "{p:?}");
    let p = x.direct_push().await;
    assert_eq!(p.peer_id.as_deref(), Some("alice"));
    x.no_direct().await;

    // carol sends: the shared socket gets one push per client, each naming its recipient
    y.send_text(None, &cid, "to both").await;
    let mut got = vec![x.direct_push().await, x.direct_push().await];
    got.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    assert_eq!(got[0].peer_id.as_deref(), Some("alice"));
    assert_eq!(got[1].peer_id.as_deref(), Some("bob"));
    for p in &got {
        let d = p.direct_message.as_ref().unwrap();
        assert_eq!((d.from_peer_id.as_deref(), d.msg.as_deref()), (Some("carol"), Some("to both")));
        assert_eq!(p.i.unwrap_or(0), 0);
    }
    x.no_direct().await;

    // an unknown peerId on this socket: 4105
    let r = x.send_text(Some("dave"), &cid, "who?").await;
    assert_error(&r, 4105);
    srv.stop().await;
}

#[tokio::test]
async fn session_close_and_reopen_with_token() {
    let (srv, app) = server().await;
    let gw = srv.server.as_ref().unwrap().gateway.clone();

    // close: `closed` with the same i, then commands for it are refused
    let mut c = Client::connect(&srv.base).await;
    let opened = c.open(app.app_id(), Some("alice")).await;
    let st1 = opened.session_message.unwrap().st.unwrap();
    let r = c.request(command(CommandType::Session, Some(OpType::Close))).await;
    assert_eq!((r.cmd, r.op), (Some(CommandType::Session as i32), Some(OpType::Closed as i32)), "{r:?}");
    assert_eq!(gw.session_count(), 0);
    let mut q = command(CommandType::Conv, Some(OpType::Query));
    q.conv_message = Some(ConvCommand::default());
    assert_error(&c.request(q.clone()).await, 4105);
    let mut named = q.clone();
    named.peer_id = Some("alice".into());
    assert_error(&c.request(named).await, 4105);
    // a logout revokes the token
    let r = c.request(open_cmd(app.app_id(), Some("alice"), SessionCommand { r: Some(true), st: Some(st1), ..Default::default() })).await;
    assert_error(&r, 4112);

    // the socket drops without a logout: the token still works on a new socket
    let mut c = Client::connect(&srv.base).await;
    let st = c.open(app.app_id(), Some("bob")).await.session_message.unwrap().st.unwrap();
    drop(c);
    eventually(5, || async { (gw.session_count() == 0).then_some(()) }).await;
    let mut c = Client::connect(&srv.base).await;
    let r =
        c.request(open_cmd(app.app_id(), Some("bob"), SessionCommand { r: Some(true), st: Some(st.clone()), ..Default::default() })).await;
    assert_opened(&r);
    assert_eq!(r.peer_id.as_deref(), Some("bob"));
    let sm = r.session_message.as_ref().unwrap();
    assert!(sm.st.is_some() && sm.st_ttl.is_some(), "a resumed session has a token: {r:?}");
    c.request(q.clone()).await; // usable

    // a bogus token: 4112, as an `error` command (the SDK retries only that form)
    let mut d = Client::connect(&srv.base).await;
    let r = d
        .request(open_cmd(app.app_id(), Some("bob"), SessionCommand { r: Some(true), st: Some("bogus".into()), ..Default::default() }))
        .await;
    assert_error(&r, 4112);
    // another client's token: 4112 too
    let r = d.request(open_cmd(app.app_id(), Some("carol"), SessionCommand { r: Some(true), st: Some(st), ..Default::default() })).await;
    assert_error(&r, 4112);
    // and the SDK's retry (no st) then works
    d.open(app.app_id(), Some("bob")).await;
    srv.stop().await;
}

// ------------------------------------------------------------------ catching up at login

/// What one login cost the store, and what it told the client.
struct LoginCost {
    /// SQLite VM steps of the unread summary, and of every store operation of the login.
    unread_steps: u64,
    login_steps: u64,
    /// The unread counts pushed after `opened`, and the REST `unread-count`.
    pushed: Vec<i64>,
    rest: i64,
}

/// Log `reader` in as the SDK does (with a `lastPatchTime`), counting the store's work.
async fn login_cost(srv: &TestServer, lc: &LcApp, reader: &str) -> LoginCost {
    let store = srv.server.as_ref().expect("running").sqlite().expect("the embedded store");
    store.count_work(true);
    store.work(true);
    let mut c = Client::connect(&srv.base).await;
    let session = SessionCommand { ua: Some("rust-test".into()), last_patch_time: Some(now_ms() - 60_000), ..Default::default() };
    assert_opened(&c.request(open_cmd(lc.app_id(), Some(reader), session)).await);
    let unread = loop {
        let p = c.push().await;
        if p.cmd == Some(CommandType::Unread as i32) {
            break p.unread_message.expect("unreadMessage");
        }
    };
    store.count_work(false);
    let work = store.work(true);
    let summary = work.get("unread_summary").expect("the login counted its unread messages");
    assert_eq!(summary.calls, 1);
    assert!(work.contains_key("patches_since"), "the login looked for edits and recalls");
    let r = lc.call(reqwest::Method::GET, &format!("/1.2/rtm/clients/{reader}/unread-count"), Auth::AppKey, None).await;
    LoginCost {
        unread_steps: summary.vm_steps,
        login_steps: work.values().map(|w| w.vm_steps).sum(),
        pushed: unread.convs.iter().map(|t| i64::from(t.unread)).collect(),
        rest: r.ok()["count"].as_i64().expect("count"),
    }
}

/// Store `n` unread messages from "sender" in `conv`, straight into the store by 64 writers
/// (group commit): 20,000 requests would take minutes.
async fn store_history(srv: &TestServer, lc: &LcApp, conv: i64, n: i64) {
    let running = srv.server.as_ref().expect("running");
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..64 {
        let (engine, store, app) = (running.engine.clone(), running.store().clone(), lc.app.id);
        writers.spawn(async move {
            for _ in (w..n).step_by(64) {
                let text = Content::Text("{\"_lctype\":-1,\"_lctext\":\"history\"}".into());
                let m = Message { mtype: MessageType::TEXT, ..Message::new(app, engine.next_id(), conv, "sender", engine.now(), text) };
                store.insert_message(&m).await.expect("insert");
            }
        });
    }
    while let Some(r) = writers.join_next().await {
        r.expect("writer");
    }
}

/// A login costs the same however long the unread history: with 20,000 unread messages the
/// store's work (SQLite VM steps, counted in-process) for the unread summary, and for the whole
/// login, is within a small factor of the work with 200; and another client's login does not
/// pay for that history at all. The counts pushed (and the REST `unread-count`) are the
/// documented ones: exact below `unread_count_max`, the cap above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_work_does_not_grow_with_the_unread_history() {
    if crate::common::sqlite_only("counting the work of each store operation") {
        return;
    }
    let (srv, lc) = server().await;
    let engine = srv.engine().clone();
    let cap = lc.app.limits.unread_count_max;
    assert_eq!(cap, 100, "the documented default");
    // three readers, each with the sender in a conversation of its own, none of it read
    let mut convs = Vec::new();
    for reader in ["few", "some", "many"] {
        let new = NewConversation { members: vec![reader.into(), "sender".into()], ..Default::default() };
        convs.push(engine.conversations().create_conversation(&lc.app, new).await.expect("conversation").0.id);
    }
    store_history(&srv, &lc, convs[0], 40).await;
    store_history(&srv, &lc, convs[1], 200).await;
    let few = login_cost(&srv, &lc, "few").await;
    let some = login_cost(&srv, &lc, "some").await;
    store_history(&srv, &lc, convs[2], 20_000).await;
    let many = login_cost(&srv, &lc, "many").await;
    let some_again = login_cost(&srv, &lc, "some").await;

    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    assert!(
        many.unread_steps <= 2 * some.unread_steps,
        "the unread catch-up must not grow with the history: {} VM steps at 20,000 unread messages, {} at 200",
        many.unread_steps,
        some.unread_steps
    );
    assert!(
        many.login_steps <= 2 * some.login_steps,
        "nor the whole login: {} VM steps at 20,000 unread messages, {} at 200",
        many.login_steps,
        some.login_steps
    );
    assert!(
        some_again.login_steps <= 2 * some.login_steps,
        "another client's history costs a login nothing: {} VM steps before it was stored, {} after ({:.1}×)",
        some.login_steps,
        some_again.login_steps,
        ratio(some_again.login_steps, some.login_steps)
    );
    // exact below the cap, the cap above it; the REST count follows the same rule
    let got: Vec<(Vec<i64>, i64)> = [&few, &some, &many, &some_again].iter().map(|c| (c.pushed.clone(), c.rest)).collect();
    assert_eq!(got, vec![(vec![40], 40), (vec![cap], cap), (vec![cap], cap), (vec![cap], cap)], "counts pushed at login, and REST");
    srv.stop().await;
}

// ------------------------------------------------------------------ direct messages

#[tokio::test]
async fn direct_message_between_sockets() {
    let (srv, app) = server().await;
    let mut a = Client::connect(&srv.base).await;
    let mut a2 = Client::connect(&srv.base).await;
    let mut b = Client::connect(&srv.base).await;
    a.open(app.app_id(), Some("alice")).await;
    a2.open(app.app_id(), Some("alice")).await;
    b.open(app.app_id(), Some("bob")).await;
    let cid = app.conversation(json!({"m": ["alice", "bob"]})).await;

    let text = r#"{"_lctext":"hi bob","_lctype":-1}"#;
    let mut send = command(CommandType::Direct, None);
    send.i = Some(22);
    send.priority = Some(1);
    send.direct_message = Some(DirectCommand {
        cid: Some(cid.clone()),
        msg: Some(text.into()),
        dt: Some("0f4a5c2e-client-uuid".into()),
        mention_all: Some(false),
        ..Default::default()
    });
    a.send(&send).await;
    let r = a.reply_to(22).await;
    assert_eq!(r.cmd, Some(CommandType::Ack as i32), "{r:?}");
    let ack = r.ack_message.as_ref().expect("ackMessage");
    assert_eq!(ack.code, None, "a successful ack must not carry a code: {r:?}");
    let uid = ack.uid.clone().expect("uid");
    let t = ack.t.expect("t");
    assert!((t - now_ms()).abs() < 60_000, "t is ms since the epoch: {t}");

    // the recipient
    let p = b.direct_push().await;
    assert_eq!(p.i.unwrap_or(0), 0);
    let d = p.direct_message.as_ref().unwrap();
    assert_eq!(d.cid.as_deref(), Some(cid.as_str()));
    assert_eq!(d.id.as_deref(), Some(uid.as_str()));
    assert_eq!(d.from_peer_id.as_deref(), Some("alice"));
    assert_eq!(d.timestamp, Some(t));
    assert_eq!(d.msg.as_deref(), Some(text));
    assert!(p.service.is_none() || p.service == Some(2), "IM pushes are service 2: {p:?}");
    // the sender's other device
    let p = a2.direct_push().await;
    let d = p.direct_message.as_ref().unwrap();
    assert_eq!((d.id.as_deref(), d.from_peer_id.as_deref()), (Some(uid.as_str()), Some("alice")));
    // not the sending session
    a.no_direct().await;

    // over 5 KB: 4109, nothing delivered, nothing stored
    let r = a.send_text(None, &cid, &"x".repeat(5 * 1024 + 1)).await;
    assert_error(&r, 4109);
    b.no_direct().await;
    a2.no_direct().await;
    let h = app.get(&format!("/1.2/rtm/conversations/{cid}/messages")).await;
    let h = h.ok().as_array().unwrap().clone();
    assert_eq!(h.len(), 1, "only the first message is stored: {h:?}");
    assert_eq!(h[0]["msg-id"], uid.as_str());

    // unknown conversation: 4401
    assert_error(&a.send_text(None, "123456789", "hello?").await, 4401);
    assert_error(&a.send_text(None, "not-a-conversation", "hello?").await, 4401);
    // a conversation alice is not in: refused too
    let other = app.conversation(json!({"m": ["carol", "dave"]})).await;
    let r = a.send_text(None, &other, "let me in").await;
    assert_eq!(r.cmd, Some(CommandType::Error as i32), "{r:?}");
    // the connection is fine
    let r = a.send_text(None, &cid, "still here").await;
    assert_eq!(r.cmd, Some(CommandType::Ack as i32), "{r:?}");
    assert_eq!(b.direct_push().await.direct_message.unwrap().msg.as_deref(), Some("still here"));
    srv.stop().await;
}

// ------------------------------------------------------------------ bad frames

#[tokio::test]
async fn garbage_frames_get_4114_and_the_connection_survives() {
    let (srv, app) = server().await;
    let mut c = Client::connect(&srv.base).await;
    c.open(app.app_id(), Some("alice")).await;

    // garbage bytes (a varint that never ends)
    c.send_raw(WsMessage::Binary(vec![0xff; 16].into())).await;
    let e = c.next_cmd(WAIT).await.expect("an error push");
    assert_error(&e, 4114);
    assert_eq!(e.i.unwrap_or(0), 0, "nothing to correlate: {e:?}");
    c.echo().await;

    // a text frame that is not base64
    c.send_raw(WsMessage::Text("this is not base64 !!".into())).await;
    let e = c.next_cmd(WAIT).await.expect("an error push");
    assert_error(&e, 4114);
    c.echo().await;

    // base64 of garbage
    c.send_raw(WsMessage::Text(codec::to_text(&[0xff; 16]).into())).await;
    assert_error(&c.next_cmd(WAIT).await.expect("an error push"), 4114);

    // an unknown cmd value, with an i: an error reply with that i
    let unknown = GenericCommand { cmd: Some(99), i: Some(77), ..Default::default() };
    c.send(&unknown).await;
    let r = c.next_cmd(WAIT).await.expect("error reply");
    assert_eq!(r.i, Some(77));
    assert_eq!(r.cmd, Some(CommandType::Error as i32), "{r:?}");
    // a known cmd the gateway does not serve, and an unknown session op
    let r = c.request(command(CommandType::Presence, None)).await;
    assert_eq!(r.cmd, Some(CommandType::Error as i32), "{r:?}");
    let r = c.request(command(CommandType::Session, Some(OpType::Conflict))).await;
    assert_eq!(r.cmd, Some(CommandType::Error as i32), "{r:?}");
    // an unknown cmd without i: no reply
    c.send(&GenericCommand { cmd: Some(99), ..Default::default() }).await;
    c.send(&GenericCommand { i: Some(78), ..command(CommandType::Echo, None) }).await;
    assert_eq!(c.next_cmd(WAIT).await.expect("echo").i, Some(78));
    // the session is still there
    assert_eq!(srv.server.as_ref().unwrap().gateway.session_count(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_with_4109_and_the_gateway_lives_on() {
    let (srv, app) = server().await;
    let gw = srv.server.as_ref().unwrap().gateway.clone();
    let max = gw.settings.max_frame;
    let mut c = Client::connect(&srv.base).await;
    c.open(app.app_id(), Some("alice")).await;
    // just under the limit is a (garbage) frame like any other
    c.send_raw(WsMessage::Binary(vec![0xff; max - 16].into())).await;
    assert_error(&c.next_cmd(WAIT).await.expect("an error push"), 4114);
    c.echo().await;
    // over it: closed with FRAME_TOO_LONG
    let mut big = command(CommandType::Echo, None);
    big.i = Some(5);
    big.app_id = Some("x".repeat(max + 1));
    let _ = c.ws.send(WsMessage::Binary(big.encode_to_vec().into())).await;
    let (code, _) = c.closed(WAIT).await;
    assert_eq!(code, Some(4109), "close code for a frame over {max} bytes");
    eventually(5, || async { (gw.session_count() == 0).then_some(()) }).await;

    // the same over base64
    let mut t = Client::connect_url(&format!("{}/", ws_url(&srv.base)), Some(BASE64)).await;
    t.open(app.app_id(), Some("bob")).await;
    let _ = t.ws.send(WsMessage::Text("A".repeat(max + 4).into())).await;
    let (code, _) = t.closed(WAIT).await;
    assert_eq!(code, Some(4109));

    // nothing crashed: a fresh connection works
    let mut fresh = Client::connect(&srv.base).await;
    fresh.echo().await;
    fresh.open(app.app_id(), Some("alice")).await;
    let cid = app.conversation(json!({"m": ["alice", "bob"]})).await;
    assert_eq!(fresh.send_text(None, &cid, "ok").await.cmd, Some(CommandType::Ack as i32));
    let r = srv.http.get(format!("{}/healthz", srv.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    srv.stop().await;
}

// ------------------------------------------------------------------ back-pressure

/// A server built from its pieces, with gateway settings of our own.
struct CustomServer {
    base: String,
    engine: Arc<confab_engine::Engine>,
    gateway: Arc<Gateway>,
    _backing: confab_server::Backing,
    _dir: tempfile::TempDir,
}

async fn custom_server(settings: GatewaySettings) -> CustomServer {
    let dir = tempfile::tempdir().unwrap();
    let config = confab_server::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..confab_server::Config::default()
    };
    let backing = confab_server::Backing::open(&config, confab_server::Opener::Tool).await.unwrap();
    let engine = confab_server::engine(&config, &backing, 0).unwrap();
    let gateways = confab_server::Gateways::start(engine.clone(), settings);
    let gateway = gateways.leancloud.clone();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = confab_server::router(engine.clone(), &gateways, &config).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    CustomServer { base: format!("http://{addr}"), engine, gateway, _backing: backing, _dir: dir }
}

/// A client whose socket has a tiny receive buffer, so that a client that does not read stalls
/// the server's writes quickly.
async fn connect_small_buffer(base: &str) -> Client {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(addr).await.unwrap();
    let (ws, resp) =
        tokio_tungstenite::client_async(ws_request(&format!("{}/", ws_url(base)), Some(BINARY)), MaybeTlsStream::Plain(stream))
            .await
            .expect("handshake");
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), BINARY);
    Client::wrap(ws, Some(BINARY.into()), false)
}

/// What a slow-consumer run saw: messages sent before the slow client's session was dropped,
/// and what the slow client then read (its close code and the frames before it).
struct SlowRun {
    dropped_after: usize,
    close: Option<u16>,
    frames: usize,
}

/// A slow client that stops reading, a watcher that reads everything and a sender that
/// pipelines `size`-byte messages until the slow client's session is dropped; then the slow
/// client reads again at once. The sender's messages all went through, the watcher got every one,
/// and the slow client can come back and catch up by history.
async fn slow_consumer(settings: GatewaySettings, size: usize) -> SlowRun {
    let srv = custom_server(settings).await;
    let app = srv.engine.apps().create_app(NewApp { name: "bp".into(), plan: Plan::Standard, ..Default::default() }).await.unwrap();
    srv.engine.apps().set_app_limit("bp", "rates.lc.message.per_minute", "1000000").await.unwrap();
    srv.engine.apps().set_app_limit("bp", "message_max_bytes", &(size + 100).to_string()).await.unwrap();
    let app_id = app.keys.leancloud.app_id.clone();
    let lc = LcApp { app, base: srv.base.clone(), http: reqwest::Client::new() };

    let mut slow = connect_small_buffer(&srv.base).await;
    slow.open(&app_id, Some("slow")).await;
    let mut watcher = Client::connect(&srv.base).await;
    watcher.open(&app_id, Some("watcher")).await;
    let sender = {
        let mut s = Client::connect(&srv.base).await;
        s.open(&app_id, Some("sender")).await;
        s
    };
    let cid = lc.conversation(json!({"m": ["slow", "sender", "watcher"]})).await;
    assert_eq!(srv.gateway.session_count(), 3);

    // the watcher reads everything, concurrently
    let watcher_task = tokio::spawn(async move {
        let mut n = 0usize;
        while let Some(p) = watcher.push_within(Duration::from_secs(3)).await {
            if p.cmd == Some(CommandType::Direct as i32) {
                n += 1;
            }
        }
        (watcher, n)
    });

    // the sender pipelines messages and reads its acks concurrently, until the slow client's
    // session is gone (its connection closed) or a cap is reached
    let (mut sink, mut stream) = sender.ws.split();
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = acked.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, WsMessage::Binary(_)) && decode_frame(&m).cmd == Some(CommandType::Ack as i32) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let body = "z".repeat(size);
    let cap = 4000;
    let mut sent = 0;
    while sent < cap && srv.gateway.session_count() == 3 {
        for _ in 0..10 {
            sent += 1;
            let mut c = command(CommandType::Direct, None);
            c.i = Some(sent as i32);
            c.direct_message = Some(DirectCommand { cid: Some(cid.clone()), msg: Some(body.clone()), ..Default::default() });
            sink.send(WsMessage::Binary(c.encode_to_vec().into())).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // without the slow client reading a byte, the server drops its session
    eventually(10, || async { (srv.gateway.session_count() == 2).then_some(()) }).await;
    let dropped_after = sent;
    // the slow client reads again a few seconds later (an app back from the background): a
    // bounded backlog, then the close frame
    let slow_reads = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        slow.closed(Duration::from_secs(20)).await
    });

    // the sender's messages all went through, and the watcher got every one
    let acked = || acked.load(std::sync::atomic::Ordering::SeqCst);
    eventually(30, || async { (acked() == sent).then_some(()) }).await;
    let _ = sink.send(WsMessage::Close(None)).await;
    let (mut watcher, seen) = watcher_task.await.unwrap();
    assert_eq!(seen, sent, "the reading client got every push");
    watcher.echo().await;
    let (close, frames) = slow_reads.await.unwrap();
    eprintln!("slow consumer closed ({close:?}) after {dropped_after} messages of {size} bytes; it had {frames} frames waiting");

    // and a new connection for the slow client works, catching up by history
    let mut again = Client::connect(&srv.base).await;
    again.open(&app_id, Some("slow")).await;
    let mut logs = command(CommandType::Logs, None);
    logs.logs_message = Some(LogsCommand { cid: Some(cid.clone()), l: Some(5), ..Default::default() });
    let r = again.request(logs).await;
    assert_eq!(r.logs_message.expect("logsMessage").logs.len(), 5);
    SlowRun { dropped_after, close, frames }
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_with_4200_and_others_carry_on() {
    // a reader's queue holds at least a commit's burst: a sender pipelines up to 64 sends, whose
    // commits the store groups, so a reading client may get 64 pushes at once
    let run = slow_consumer(GatewaySettings { out_queue: 128, ..GatewaySettings::default() }, 4000).await;
    assert_eq!(run.close, Some(4200), "SLOW_CONSUMER, not a bare end of stream");
    assert!(run.frames < run.dropped_after, "the server buffered only a bounded backlog ({} of {} pushes)", run.frames, run.dropped_after);
}

#[tokio::test]
async fn the_queue_bound_counts_bytes_as_well_as_frames() {
    // 1024 frames allowed, but only 2 MiB: 16 KB pushes close the connection long before 1024
    // (the bound holds a commit's burst of 64 pushes of 16 KB, what a reading client may get at once)
    let settings = GatewaySettings { out_queue: 1024, out_queue_bytes: 2 * 1024 * 1024, ..GatewaySettings::default() };
    let run = slow_consumer(settings, 16 * 1024).await;
    assert_eq!(run.close, Some(4200));
    assert!(run.dropped_after < 1024, "closed after {} pushes of 16 KB: the byte bound (128 of them) acted", run.dropped_after);
}

// ------------------------------------------------------------------ order and memory

/// Every push a client received of conversation `cid`, in arrival order: message ids.
async fn direct_ids(c: &mut Client, want: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(want);
    while ids.len() < want {
        let p = c.direct_push().await;
        ids.push(p.direct_message.and_then(|d| d.id).expect("a message id"));
    }
    ids
}

#[tokio::test]
async fn pushes_follow_the_conversation_order_with_four_senders() {
    let (srv, app) = server().await;
    srv.engine().apps().set_app_limit(&app.app.name, "rates.lc.message.per_minute", "1000000").await.unwrap();
    let cid = app.conversation(json!({"m": ["r1", "r2", "r3", "s1", "s2"]})).await;
    let mut receivers = Vec::new();
    for r in ["r1", "r2", "r3"] {
        let mut c = Client::connect(&srv.base).await;
        c.open(app.app_id(), Some(r)).await;
        receivers.push(c);
    }
    const EACH: usize = 250;
    // two realtime senders pipeline their messages; two REST senders send 16 at a time
    let mut senders = tokio::task::JoinSet::new();
    for s in ["s1", "s2"] {
        let mut c = Client::connect(&srv.base).await;
        c.open(app.app_id(), Some(s)).await;
        let cid = cid.clone();
        senders.spawn(async move {
            let (mut sink, mut stream) = c.ws.split();
            let reader = tokio::spawn(async move {
                let mut acks = Vec::new();
                while acks.len() < EACH {
                    let m = stream.next().await.expect("open").expect("frame");
                    if matches!(m, WsMessage::Binary(_)) {
                        let f = decode_frame(&m);
                        if f.cmd == Some(CommandType::Ack as i32) {
                            acks.push(f.i.expect("an ack names its command"));
                        }
                    }
                }
                // a connection's pipelined sends are answered in the order they came
                assert_eq!(acks, (0..EACH as i32).map(|i| i + 10).collect::<Vec<_>>(), "acks in the order of the sends");
            });
            for i in 0..EACH {
                let mut d = command(CommandType::Direct, None);
                d.i = Some(i as i32 + 10);
                d.direct_message = Some(DirectCommand { cid: Some(cid.clone()), msg: Some(format!("rt {i}")), ..Default::default() });
                sink.send(WsMessage::Binary(d.encode_to_vec().into())).await.unwrap();
            }
            reader.await.unwrap();
        });
    }
    for s in ["rest1", "rest2"] {
        let (lc, cid) = (LcApp { app: app.app.clone(), base: app.base.clone(), http: app.http.clone() }, cid.clone());
        senders.spawn(async move {
            let path = format!("/1.2/rtm/conversations/{cid}/messages");
            let sends = (0..EACH).map(|i| lc.post(&path, json!({"from_client": s, "message": format!("rest {i}")})));
            let answers: Vec<Resp> = futures_util::stream::iter(sends).buffer_unordered(16).collect().await;
            assert!(answers.iter().all(|r| r.status == 200));
        });
    }
    while let Some(r) = senders.join_next().await {
        r.unwrap();
    }
    // history is the conversation's order
    let history = app.get(&format!("/1.2/rtm/conversations/{cid}/messages?reversed=true&limit=1000")).await;
    let order: Vec<String> = history.ok().as_array().unwrap().iter().map(|m| m["msg-id"].as_str().unwrap().to_string()).collect();
    assert_eq!(order.len(), 4 * EACH);
    // each sender's messages keep the order it sent them in, pipelined or not
    for (from, prefix) in [("s1", "rt"), ("s2", "rt"), ("rest1", "rest"), ("rest2", "rest")] {
        let texts: Vec<String> = history
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["from"] == from)
            .map(|m| m["data"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts.len(), EACH, "{from}'s messages");
        if prefix == "rt" {
            let sent: Vec<String> = (0..EACH).map(|i| format!("rt {i}")).collect();
            assert_eq!(texts, sent, "{from}'s pipelined sends are in the conversation in the order it sent them");
        }
    }
    for (r, c) in receivers.iter_mut().enumerate() {
        let got = direct_ids(c, 4 * EACH).await;
        let swaps = got.windows(2).filter(|w| order.iter().position(|x| *x == w[0]) > order.iter().position(|x| *x == w[1])).count();
        assert_eq!(swaps, 0, "receiver {r}: {swaps} adjacent pushes out of the conversation's order");
        assert_eq!(got, order, "receiver {r} saw the history's order");
    }
}

#[tokio::test]
async fn an_idle_session_costs_the_server_a_few_kilobytes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, app_id, _) = crate::cli::serve_with_app(dir.path(), &[("RUST_LOG", "warn")]).await;
    let open = |n: std::ops::Range<usize>| {
        let (base, app_id) = (server.base().to_string(), app_id.clone());
        futures_util::stream::iter(n.map(move |i| {
            let (base, app_id) = (base.clone(), app_id.clone());
            async move {
                let mut c = Client::connect(&base).await;
                c.open(&app_id, Some(&format!("idle-{i}"))).await;
                c
            }
        }))
        .buffer_unordered(50)
        .collect::<Vec<Client>>()
    };
    // the fixed costs first (threads, pools, caches), then 400 more idle sessions
    let warm = open(0..100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss();
    let idle = open(100..500).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per = server.rss().saturating_sub(before) / 400;
    eprintln!("an idle session costs the server {per} bytes");
    // 157 KB before the WebSocket buffers were sized for idle clients
    assert!(per < 32 * 1024, "an idle session costs the server {per} bytes");
    drop((warm, idle));
}

// ------------------------------------------------------------------ TLS

#[tokio::test]
async fn wss_and_https_with_a_self_signed_certificate() {
    let (srv, cert) = TestServer::start_tls().await;
    assert!(srv.server.as_ref().expect("running").tls);
    let port = srv.addr().port();
    // https REST through the harness's client, which trusts that certificate
    let https = srv.app(Plan::Standard).await;

    // wss:// with rustls trusting only that certificate
    let mut c = Client::connect_with(&format!("wss://127.0.0.1:{port}/"), Some(BINARY), Some(tls_client(cert))).await;
    assert_eq!(c.protocol.as_deref(), Some(BINARY));
    let r = c.open(https.app_id(), Some("alice")).await;
    assert_eq!(r.peer_id.as_deref(), Some("alice"));
    c.echo().await;

    // plain ws:// to the TLS port does not work
    assert!(tokio_tungstenite::connect_async(ws_request(&format!("ws://127.0.0.1:{port}/"), Some(BINARY))).await.is_err());

    // https REST
    let cid = https.conversation(json!({"m": ["alice", "bob"]})).await;
    let r = https.http.get(format!("{}/healthz", https.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // and the message sent over REST reaches the wss client
    https.send(&cid, "bob", "over https").await;
    let p = c.direct_push().await;
    assert_eq!(p.direct_message.unwrap().msg.as_deref(), Some("over https"));
    drop(c);
    srv.stop().await;
}

// ------------------------------------------------------------------ imported conversations

#[tokio::test]
async fn an_imported_conversation_speaks_by_its_leancloud_ids() {
    use confab_leancloud_standin::{ConvKind as Lc, Dataset, DatasetSpec, StandInServer};
    let ds = Dataset::generate(DatasetSpec { seed: 21, messages_per_conversation: 60, special_every: 0, ..Default::default() });
    let standin = StandInServer::start(ds.clone()).await.unwrap();
    let (srv, app) = crate::lc_import::target(&ds).await;
    let url = standin.url();
    crate::lc_import::summary(&crate::lc_import::import(&srv, &crate::lc_import::live(&url, &ds)).await);
    let conv = ds.conversation(&ds.conversation_ids(Lc::Group)[0]).unwrap();
    let (alice, bob) = (conv.members[0].clone(), conv.members[1].clone());
    let old: Vec<confab_leancloud_standin::Message> = ds.messages(&conv.id).collect();

    let mut a = Client::connect(&srv.base).await;
    a.open(app.app_id(), Some(&alice)).await;
    let mut b = Client::connect(&srv.base).await;
    b.open(app.app_id(), Some(&bob)).await;
    // the SDK finds it by its objectId
    let mut q = command(CommandType::Conv, Some(OpType::Query));
    q.conv_message = Some(ConvCommand {
        r#where: Some(JsonObjectMessage { data: json!({"objectId": conv.id}).to_string() }),
        flag: Some(2),
        ..Default::default()
    });
    let r = a.request(q).await;
    let found: Value = serde_json::from_str(&r.conv_message.unwrap().results.unwrap().data).unwrap();
    assert_eq!(found[0]["objectId"], json!(conv.id));
    assert_eq!(found[0]["msg_mid"], json!(old.last().unwrap().msg_id), "its last message, by its msg-id");
    // history by the old ids, and paging by an old (timestamp, msg-id)
    let mut logs = command(CommandType::Logs, None);
    logs.logs_message = Some(LogsCommand { cid: Some(conv.id.clone()), l: Some(10), ..Default::default() });
    let got = a.request(logs.clone()).await.logs_message.unwrap().logs;
    let want: Vec<&str> = old[old.len() - 10..].iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(got.iter().map(|l| l.msg_id.as_deref().unwrap()).collect::<Vec<_>>(), want);
    let pivot = &old[old.len() - 10];
    logs.logs_message = Some(LogsCommand {
        cid: Some(conv.id.clone()),
        t: Some(pivot.timestamp),
        mid: Some(pivot.msg_id.clone()),
        l: Some(3),
        ..Default::default()
    });
    let got = a.request(logs).await.logs_message.unwrap().logs;
    let want: Vec<&str> = old[old.len() - 13..old.len() - 10].iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(got.iter().map(|l| l.msg_id.as_deref().unwrap()).collect::<Vec<_>>(), want);
    // a message sent to it: the push names the conversation by its objectId
    let ack = a.send_text(None, &conv.id, "hello from confab").await;
    assert_eq!(ack.cmd, Some(CommandType::Ack as i32), "{ack:?}");
    let p = b.direct_push().await.direct_message.unwrap();
    assert_eq!((p.cid.as_deref(), p.msg.as_deref()), (Some(conv.id.as_str()), Some("hello from confab")));
    // what the cut-over run brings counts as unread (what the first run brought was read at
    // the source); reading up to one of those by its msg-id moves the cursor to it
    let late = ds.append(&conv.id, 3).unwrap();
    crate::lc_import::summary(&crate::lc_import::import(&srv, &crate::lc_import::live(&url, &ds)).await);
    let me = srv.engine().imports().conversation_by_foreign(&app.app, &conv.id).await.unwrap();
    let store = srv.store();
    let unread = store.unread_count(app.app.id, &bob, Some(me.id), confab_engine::query::UnreadBounds { count_max: 100, scan_max: 1000 });
    let others: usize = late.iter().filter(|m| m.from != bob).count() + 1;
    assert_eq!(unread.await.unwrap(), others as i64, "the late messages (not bob's own) and ours");
    let mut read = command(CommandType::Read, None);
    read.read_message = Some(ReadCommand {
        convs: vec![ReadTuple { cid: conv.id.clone(), mid: Some(late[1].msg_id.clone()), timestamp: Some(late[1].timestamp) }],
        ..Default::default()
    });
    b.send(&read).await;
    b.echo().await;
    let bob_member = srv.store().get_member(app.app.id, me.id, &bob).await.unwrap().unwrap();
    let m = srv.engine().imports().message_by_foreign(&app.app, &late[1].msg_id).await.unwrap();
    assert_eq!(bob_member.read_seq, m.seq);
    // an old message of alice's, recalled by its msg-id
    let mine = old.iter().rev().find(|m| m.from == alice).expect("alice said something");
    let mut recall = command(CommandType::Patch, Some(OpType::Modify));
    recall.patch_message = Some(PatchCommand {
        patches: vec![PatchItem {
            cid: Some(conv.id.clone()),
            mid: Some(mine.msg_id.clone()),
            timestamp: Some(mine.timestamp),
            recall: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    });
    let r = a.request(recall).await;
    assert_eq!(r.op, Some(OpType::Modified as i32), "{r:?}");
    let patched = b.push().await.patch_message.unwrap().patches;
    assert_eq!(
        (patched[0].mid.as_deref(), patched[0].cid.as_deref(), patched[0].recall),
        (Some(mine.msg_id.as_str()), Some(conv.id.as_str()), Some(true))
    );
    srv.stop().await;
}
