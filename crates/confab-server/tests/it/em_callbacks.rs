//! Easemob message callbacks over real HTTP (specs/easemob-callbacks.md §2–§5), with
//! `common::receiver` as the app's server: the pre-send callback (allow, deny with and without a
//! code, reported or not, replace, late, malformed and oversize answers under both policies) and
//! the post-send callbacks (1:1, group and chat-room messages of several types, `chat_offline`
//! per offline recipient, recall, group operations, REST sends called back but never pre-sent),
//! each signed; the immediate retry and then the outbox's.

use std::time::Duration;

use crate::common::receiver::{Call, Receiver, Reply};
use crate::common::*;
use confab_engine::model::{Content, Plan};
use confab_face_leancloud::realtime::proto::{CommandType, ReadCommand, ReadTuple};
use md5::{Digest, Md5};
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "rule-secret";
const PRE: &str = "/pre";
const POST: &str = "/post";

/// An app with users alice, bob and carol, and a receiver for its callbacks, with these settings
/// (the receiver's URLs substituted for `{pre}` and `{post}`).
async fn setup(srv: &TestServer, settings: &[(&str, &str)]) -> (EmApp, Receiver) {
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let rcv = Receiver::start().await;
    let (pre, post) = (rcv.url(PRE), rcv.url(POST));
    let mut set: Vec<(&str, String)> = vec![("hooks.easemob.secret", SECRET.to_string())];
    for (k, v) in settings {
        set.push((k, v.replace("{pre}", &pre).replace("{post}", &post)));
    }
    let pairs: Vec<(&str, &str)> = set.iter().map(|(k, v)| (*k, v.as_str())).collect();
    srv.engine().apps().set_app_settings(&app.app.name, &pairs).await.expect("settings");
    (app, rcv)
}

fn appkey(app: &EmApp) -> String {
    format!("{}#{}", app.app.keys.easemob.org_name, app.app.keys.easemob.app_name)
}

/// The signature, computed here: lowercase hex MD5 of callId + secret + timestamp.
#[track_caller]
fn assert_signed(b: &Value) {
    let call_id = b["callId"].as_str().unwrap_or_else(|| panic!("callId in {b}"));
    let ts = b["timestamp"].as_i64().unwrap_or_else(|| panic!("numeric timestamp in {b}"));
    let mut h = Md5::new();
    h.update(format!("{call_id}{SECRET}{ts}").as_bytes());
    assert_eq!(b["security"], hex::encode(h.finalize()), "security of {b}");
    assert_eq!(b["securityVersion"], "1.0.0", "{b}");
}

/// A send with a user token: the answer.
async fn user_send(app: &EmApp, token: &str, kind: &str, to: &str, text: &str) -> Resp {
    let body = json!({"to": [to], "type": "txt", "body": {"msg": text}});
    app.call(Method::POST, &format!("/messages/{kind}"), Em::Token(token.to_string()), Some(body)).await
}

#[track_caller]
fn sent_id(r: &Resp, to: &str) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"][to].as_str().unwrap_or_else(|| panic!("data.{to} in {:?}", r.body)).to_string()
}

async fn stored_text(srv: &TestServer, app: &EmApp, id: &str) -> Option<String> {
    match srv.engine().messages().message(&app.app, id.parse().expect("numeric id")).await {
        Ok(m) => match m.content {
            Content::Text(t) => Some(t),
            Content::Binary(_) => None,
        },
        Err(_) => None,
    }
}

/// Post-send calls whose body matches.
fn matching(rcv: &Receiver, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    rcv.calls_to(POST).into_iter().map(|c| c.body).filter(|b| f(b)).collect()
}

/// Wait for `n` post-send calls matching `f`.
async fn wait_for(rcv: &Receiver, n: usize, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = matching(rcv, &f);
        if got.len() >= n {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {n} callbacks arrived: {:?}", got.len(), rcv.calls_to(POST));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pre_send_allows_denies_and_replaces() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.pre_send_url", "{pre}"), ("hooks.easemob.url", "{post}")]).await;
    let alice = app.user_token("alice").await;

    // allow: the body, signed; the message is stored and called back after
    rcv.script(PRE, vec![Reply::ok(json!({"valid": true}))]);
    let id = sent_id(&user_send(&app, &alice, "users", "bob", "hello").await, "bob");
    let calls = rcv.calls_to(PRE);
    assert_eq!(calls.len(), 1);
    let b = &calls[0].body;
    assert!(b["callId"].as_str().unwrap().starts_with(&format!("{}_", appkey(&app))), "{b}");
    assert_eq!(b["chat_type"], "chat");
    assert_eq!(b["from"], "alice");
    assert_eq!(b["to"], "bob");
    assert!(b.get("group_id").is_none(), "{b}");
    assert_eq!(b["msg_id"], id);
    assert_eq!(b["payload"], json!({"bodies": [{"msg": "hello", "type": "txt"}], "ext": {}}));
    assert_signed(b);
    assert_eq!(stored_text(&srv, &app, &id).await.as_deref(), Some("hello"));
    wait_for(&rcv, 1, |c| c["eventType"] == "chat" && c["msg_id"] == id).await;

    // deny, reported: the sender gets the code, or Easemob's default texts
    let denials = [
        (json!({"valid": false, "code": "HX:10001"}), "HX:10001"),
        (json!({"valid": false}), "custom logic denied"),
        (json!({"valid": false, "code": ""}), "Message blocked by external logic"),
    ];
    for (answer, text) in denials {
        rcv.script(PRE, vec![Reply::ok(answer)]);
        let r = user_send(&app, &alice, "users", "bob", "spam").await;
        r.em_error(403, "forbidden_op");
        assert_eq!(r.body["error_description"], text);
    }

    // replace: what is stored (and delivered) is the app's text
    rcv.script(
        PRE,
        vec![Reply::ok(json!({"valid": true, "payload": {"ext": {"checked": "yes"}, "bodies": [{"msg": "w*****e", "type": "txt"}]}}))],
    );
    let id = sent_id(&user_send(&app, &alice, "users", "bob", "welcome").await, "bob");
    assert_eq!(stored_text(&srv, &app, &id).await.as_deref(), Some("w*****e"));
    let r = app.call(Method::GET, "/user/bob/user_channels", Em::Token(app.user_token("bob").await), None).await;
    let meta = &r.body["data"]["channel_infos"][0]["meta"];
    let p: Value = serde_json::from_str(meta["payload"].as_str().unwrap_or_else(|| panic!("{:?}", r.body))).unwrap();
    assert_eq!(p["bodies"][0]["msg"], "w*****e", "bob sees the new text: {p}");
    assert_eq!(p["ext"], json!({"checked": "yes"}));
    let cb = wait_for(&rcv, 1, |c| c["eventType"] == "chat" && c["msg_id"] == id).await;
    assert_eq!(cb[0]["payload"]["bodies"][0]["msg"], "w*****e");

    // no blocked message was stored or called back: only the two that went through
    let chats = matching(&rcv, |c| c["eventType"] == "chat" && c["chat_type"] == "chat");
    assert_eq!(chats.len(), 2, "{chats:?}");

    // not reported: the sender believes it sent; nothing is stored, delivered or called back
    srv.engine().apps().set_app_settings(&app.app.name, &[("hooks.easemob.pre_send_report", "false")]).await.unwrap();
    rcv.script(PRE, vec![Reply::ok(json!({"valid": false, "code": "HX:10001"}))]);
    let id = sent_id(&user_send(&app, &alice, "users", "bob", "quietly dropped").await, "bob");
    assert_eq!(stored_text(&srv, &app, &id).await, None);
    let r = app.call(Method::GET, "/user/bob/user_channels", Em::Token(app.user_token("bob").await), None).await;
    let p: Value = serde_json::from_str(r.body["data"]["channel_infos"][0]["meta"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(p["bodies"][0]["msg"], "w*****e", "bob's last message is still the one before");
    // a later message goes through, and its callback is the only new one
    rcv.script(PRE, vec![Reply::ok(json!({"valid": true}))]);
    let last = sent_id(&user_send(&app, &alice, "users", "bob", "fine").await, "bob");
    wait_for(&rcv, 1, |c| c["eventType"] == "chat" && c["msg_id"] == last).await;
    assert!(matching(&rcv, |c| c["msg_id"] == id).is_empty(), "a blocked message is not called back");
    srv.stop().await;
}

#[tokio::test]
async fn pre_send_late_malformed_and_oversize_answers_follow_the_policy() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.pre_send_url", "{pre}")]).await;
    let alice = app.user_token("alice").await;
    let late = Reply::ok(json!({"valid": false, "code": "too late"})).after(Duration::from_millis(1500));
    let bad_answers = [
        late,
        Reply::ok(json!({"valid": "no"})),
        Reply::raw(200, "not json"),
        Reply::status(500),
        // longer than 1000 characters: refused unread, whatever it says
        Reply::ok(json!({"valid": false, "code": "x".repeat(1200)})),
    ];

    // pass (the default): the message goes through, within the 200 ms wait (generous bound)
    for answer in bad_answers.clone() {
        rcv.script(PRE, vec![answer.clone()]);
        let started = std::time::Instant::now();
        let id = sent_id(&user_send(&app, &alice, "users", "bob", "let through").await, "bob");
        assert!(started.elapsed() < Duration::from_millis(1200), "the send waited {:?} for {answer:?}", started.elapsed());
        assert_eq!(stored_text(&srv, &app, &id).await.as_deref(), Some("let through"), "{answer:?}");
    }

    // block, reported: "custom internal error"
    srv.engine().apps().set_app_settings(&app.app.name, &[("hooks.easemob.pre_send_policy", "block")]).await.unwrap();
    for answer in bad_answers.clone() {
        rcv.script(PRE, vec![answer.clone()]);
        let r = user_send(&app, &alice, "users", "bob", "held").await;
        r.em_error(403, "forbidden_op");
        assert_eq!(r.body["error_description"], "custom internal error", "{answer:?}");
    }
    // block, not reported: the sender believes it sent, nothing is stored
    srv.engine().apps().set_app_settings(&app.app.name, &[("hooks.easemob.pre_send_report", "false")]).await.unwrap();
    rcv.script(PRE, vec![Reply::ok(json!({"valid": true})).after(Duration::from_millis(1500))]);
    let id = sent_id(&user_send(&app, &alice, "users", "bob", "vanishes").await, "bob");
    assert_eq!(stored_text(&srv, &app, &id).await, None);

    // a longer wait lets the slow answer count
    srv.engine()
        .apps()
        .set_app_settings(&app.app.name, &[("hooks.easemob.pre_send_wait_ms", "5000"), ("hooks.easemob.pre_send_policy", "pass")])
        .await
        .unwrap();
    rcv.script(PRE, vec![Reply::ok(json!({"valid": false})).after(Duration::from_millis(500))]);
    let id = sent_id(&user_send(&app, &alice, "users", "bob", "waited for").await, "bob");
    assert_eq!(stored_text(&srv, &app, &id).await, None, "the late-but-in-time answer blocked it");
    srv.stop().await;
}

#[tokio::test]
async fn post_send_every_chat_type_offline_and_rest_sends() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.pre_send_url", "{pre}"), ("hooks.easemob.url", "{post}")]).await;
    let key = appkey(&app);

    // 1:1 from the app's server (REST, app token): called back, never pre-sent
    let url = "https://example.com/chatfiles/a";
    let r =
        app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "hi"}, "ext": {"k": "v"}})).await;
    let txt = sent_id(&r, "bob");
    let r = app
        .post(
            "/messages/users",
            json!({"from": "alice", "to": ["bob"], "type": "img", "body": {"url": url, "filename": "a.jpg", "size": {"width": 3, "height": 4}}}),
        )
        .await;
    let img = sent_id(&r, "bob");
    let chat = wait_for(&rcv, 1, |c| c["msg_id"] == txt && c["eventType"] == "chat").await;
    let b = &chat[0];
    assert_eq!(b["chat_type"], "chat");
    assert_eq!(b["from"], "alice");
    assert_eq!(b["to"], "bob");
    assert_eq!(b["appkey"], key);
    assert!(b["host"].is_string());
    assert!(b.get("group_id").is_none(), "{b}");
    assert!(b["callId"].as_str().unwrap().starts_with(&format!("{key}_")));
    assert_eq!(b["payload"]["bodies"], json!([{"msg": "hi", "type": "txt"}]));
    assert_eq!(b["payload"]["ext"], json!({"k": "v"}));
    assert_signed(b);
    let b = &wait_for(&rcv, 1, |c| c["msg_id"] == img && c["eventType"] == "chat").await[0];
    assert_eq!(b["payload"]["bodies"][0]["type"], "img");
    assert_eq!(b["payload"]["bodies"][0]["url"], url);
    assert_signed(b);
    // bob is offline: one chat_offline each, to bob
    let off = wait_for(&rcv, 1, |c| c["msg_id"] == txt && c["eventType"] == "chat_offline").await;
    assert_eq!(off[0]["to"], "bob");
    assert_signed(&off[0]);

    // a group: alice owns it, bob and carol are members (offline)
    let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob", "carol"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let gid = r.body["data"]["groupid"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/messages/chatgroups",
            json!({"from": "alice", "to": [gid], "type": "loc", "body": {"lat": "39.9", "lng": "116.3", "addr": "Beijing"}}),
        )
        .await;
    let loc = sent_id(&r, &gid);
    let b = &wait_for(&rcv, 1, |c| c["msg_id"] == loc && c["eventType"] == "chat").await[0];
    assert_eq!(b["chat_type"], "groupchat");
    assert_eq!(b["group_id"], gid);
    assert_eq!(b["to"], gid);
    assert_eq!(b["callId"], format!("{key}_{loc}"));
    assert_eq!(b["payload"]["bodies"][0]["type"], "loc");
    assert_eq!(b["payload"]["bodies"][0]["addr"], "Beijing");
    assert_signed(b);
    let off = wait_for(&rcv, 2, |c| c["msg_id"] == loc && c["eventType"] == "chat_offline").await;
    let mut to: Vec<&str> = off.iter().map(|c| c["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["bob", "carol"], "one per offline member, to that member");
    assert!(off.iter().all(|c| c["group_id"] == gid.as_str()));

    // a custom message from a member, with a user token: pre-sent first, then called back
    let bob = app.user_token("bob").await;
    let body = json!({"to": [gid], "type": "custom", "body": {"customEvent": "flower", "customExts": {"n": "1"}}});
    let r = app.call(Method::POST, "/messages/chatgroups", Em::Token(bob), Some(body)).await;
    let custom = sent_id(&r, &gid);
    let pre = rcv.calls_to(PRE);
    assert_eq!(pre.len(), 1, "only the user's send was pre-sent: {pre:?}");
    assert_eq!(pre[0].body["chat_type"], "groupchat");
    assert_eq!(pre[0].body["group_id"], gid);
    assert_eq!(pre[0].body["to"], gid);
    assert_eq!(pre[0].body["payload"]["bodies"][0]["customEvent"], "flower");
    assert_signed(&pre[0].body);
    let b = &wait_for(&rcv, 1, |c| c["msg_id"] == custom && c["eventType"] == "chat").await[0];
    assert_eq!(b["from"], "bob");
    assert_eq!(b["payload"]["bodies"][0]["type"], "custom");

    // a chat room
    let r = app.post("/chatrooms", json!({"name": "r", "description": "d", "owner": "alice", "members": ["bob"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rid = r.body["data"]["id"].as_str().unwrap().to_string();
    let r = app.post("/messages/chatrooms", json!({"from": "alice", "to": [rid], "type": "cmd", "body": {"action": "refresh"}})).await;
    let cmd = sent_id(&r, &rid);
    let b = &wait_for(&rcv, 1, |c| c["msg_id"] == cmd && c["eventType"] == "chat").await[0];
    assert_eq!(b["chat_type"], "groupchat", "chat-room messages are called back as groupchat");
    assert_eq!(b["group_id"], rid);
    assert_eq!(b["payload"]["bodies"][0], json!({"action": "refresh", "type": "cmd"}));
    assert_signed(b);
    assert!(rcv.calls_to(PRE).len() == 1, "REST sends are never pre-sent");
    srv.stop().await;
}

#[tokio::test]
async fn recall_and_group_operations_are_called_back() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}")]).await;
    let key = appkey(&app);

    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "oops"}})).await;
    let id = sent_id(&r, "bob");
    let r = app.post("/messages/recall", json!({"msg_id": id, "to": "bob", "chat_type": "chat", "from": "alice"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &wait_for(&rcv, 1, |c| c["chat_type"] == "recall").await[0];
    assert_eq!(b["recall_id"], id);
    assert_eq!(b["payload"]["ack_message_id"], id);
    assert_eq!(b["from"], "alice");
    assert_eq!(b["to"], "bob", "the peer of a one-to-one recall");
    assert_eq!(b["appkey"], key);
    assert_ne!(b["msg_id"], id, "the recall event has its own id");
    assert_eq!(b["callId"], format!("{key}_{}", b["msg_id"].as_str().unwrap()));
    assert_signed(b);

    let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob"]})).await;
    let gid = r.body["data"]["groupid"].as_str().unwrap_or_else(|| panic!("{:?}", r.body)).to_string();
    let muc_id = format!("{key}_{gid}@conference.easemob.com");
    let create = &wait_for(&rcv, 1, |c| c["chat_type"] == "muc" && c["payload"]["operation"] == "create").await[0];
    assert_eq!(create["group_id"], gid);
    assert_eq!(create["payload"]["muc_id"], muc_id);
    assert_eq!(create["payload"]["is_chatroom"], false);
    assert_eq!(create["payload"]["status"]["error_code"], "ok");
    assert_eq!(create["to"], "alice", "create: to the owner");
    assert_signed(create);

    // the app's server adds and removes a member: presence, then kick
    assert_eq!(app.post(&format!("/chatgroups/{gid}/users/carol"), json!({})).await.status, 200);
    let b = &wait_for(&rcv, 1, |c| c["payload"]["operation"] == "presence" && c["to"] == "carol").await[0];
    assert_eq!(b["from"], key, "the app's server acts as the appkey");
    assert_eq!(b["payload"]["muc_id"], muc_id);
    assert_eq!(app.call(Method::DELETE, &format!("/chatgroups/{gid}/users/carol"), Em::App, None).await.status, 200);
    let b = &wait_for(&rcv, 1, |c| c["payload"]["operation"] == "kick" && c["to"] == "carol").await[0];
    assert_signed(b);
    srv.stop().await;
}

#[tokio::test]
async fn a_failed_callback_is_retried_at_once_then_by_the_outbox() {
    let srv = TestServer::start_with(|c| c.outbox_first_retry_ms = 400).await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}"), ("hooks.easemob.post_send_offline", "false")]).await;
    rcv.script(POST, vec![Reply::status(500), Reply::status(503), Reply::ok(json!({}))]);
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "keep trying"}})).await;
    let id = sent_id(&r, "bob");
    let calls: Vec<Call> = rcv.wait_calls(POST, 3, Duration::from_secs(10)).await;
    assert!(calls.iter().all(|c| c.body["msg_id"] == id));
    assert!(calls.iter().all(|c| c.raw == calls[0].raw), "the same signed body each time");
    assert!(calls[1].at - calls[0].at < Duration::from_millis(300), "the second try comes at once");
    assert!(calls[2].at - calls[1].at >= Duration::from_millis(300), "the third waits for the outbox's back-off");
    // delivered: the outbox is empty, and nothing more was called
    let (store, app_id) = (srv.store(), app.app.id);
    eventually(10, || {
        let store = store.clone();
        async move { (store.outbox_counts(app_id).await.unwrap() == (0, 0)).then_some(()) }
    })
    .await;
    assert_eq!(rcv.calls_to(POST).len(), 3, "delivered exactly once after the failures");
    srv.stop().await;
}

#[tokio::test]
async fn the_breaker_pauses_an_apps_callbacks_after_90_failures() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}"), ("hooks.easemob.post_send_offline", "false")]).await;
    rcv.script(POST, vec![Reply::status(500)]);
    // 45 messages, each tried twice at once: 90 failures within seconds
    let to: Vec<String> = (0..45).map(|i| format!("peer{i}")).collect();
    let r = app.post("/messages/users", json!({"from": "alice", "to": to, "type": "txt", "body": {"msg": "x"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    rcv.wait_calls(POST, 90, Duration::from_secs(20)).await;
    // the next callback is not made: it waits for the ban (5 minutes) to end
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "during the ban"}})).await;
    let id = sent_id(&r, "bob");
    let (store, app_id) = (srv.store(), app.app.id);
    let item = eventually(10, || {
        let store = store.clone();
        let id = id.clone();
        async move {
            let items = store.outbox_list(app_id, false, 100).await.unwrap();
            items.into_iter().find(|i| i.body["msg_id"] == id && i.attempts > 0)
        }
    })
    .await;
    assert!(item.last_error.as_deref().unwrap_or_default().contains("circuit breaker"), "{item:?}");
    let wait = item.next_at - now_ms();
    assert!((3 * 60_000..=5 * 60_000).contains(&wait), "due again when the ban ends, in {wait} ms");
    assert!(rcv.calls_to(POST).iter().all(|c| c.body["msg_id"] != id), "not called during the ban");
    // the calls in flight when the ban began end; no item is tried again during the ban
    assert!(rcv.calls_to(POST).len() <= 90 + 16, "{} calls", rcv.calls_to(POST).len());
    srv.stop().await;
}

/// A muc callback of this operation to `to`.
fn muc_op(op: &'static str, to: String) -> impl Fn(&Value) -> bool {
    move |c| c["chat_type"] == "muc" && c["payload"]["operation"] == op && c["to"] == to.as_str()
}

#[tokio::test]
async fn user_status_login_and_logout_are_called_back() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}")]).await;
    let key = appkey(&app);
    let mut bob = crate::common::ws::Client::connect(&srv.base).await;
    bob.open(&app.app.keys.leancloud.app_id, Some("bob")).await;
    let login = &wait_for(&rcv, 1, |c| c["reason"] == "login").await[0];
    assert_eq!(login["status"], "online");
    let user = login["user"].as_str().unwrap_or_else(|| panic!("user in {login}"));
    assert!(user.starts_with(&format!("{key}_bob@easemob.com/")), "{login}");
    assert!(login["callId"].as_str().unwrap().starts_with(&format!("{key}_")), "{login}");
    assert_eq!(login["appkey"], key);
    assert!(login["ip"].as_str().is_some_and(|ip| ip.starts_with("127.0.0.1")), "{login}");
    assert!(login.get("chat_type").is_none() && login.get("payload").is_none(), "no chat_type nor payload: {login}");
    assert_signed(login);
    // the connection goes: logout, for the same device
    drop(bob);
    let logout = &wait_for(&rcv, 1, |c| c["reason"] == "logout").await[0];
    assert_eq!(logout["status"], "offline");
    assert_eq!(logout["user"], user, "the same user and device");
    assert_ne!(logout["callId"], login["callId"]);
    assert_signed(logout);
    srv.stop().await;
}

#[tokio::test]
async fn a_one_to_one_read_is_called_back_as_read_ack() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}")]).await;
    let key = appkey(&app);
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "read me"}})).await;
    let id = sent_id(&r, "bob");
    let conv = srv.engine().messages().message(&app.app, id.parse().unwrap()).await.unwrap().conv;
    // bob reads it in a realtime session
    let mut bob = crate::common::ws::Client::connect(&srv.base).await;
    bob.open(&app.app.keys.leancloud.app_id, Some("bob")).await;
    let mut read = crate::common::ws::command(CommandType::Read, None);
    read.read_message = Some(ReadCommand {
        convs: vec![ReadTuple { cid: conv.to_string(), timestamp: None, mid: Some(id.clone()) }],
        ..Default::default()
    });
    bob.send(&read).await;
    let b = &wait_for(&rcv, 1, |c| c["chat_type"] == "read_ack").await[0];
    assert_eq!(b["eventType"], "chat");
    assert_eq!(b["from"], "bob");
    assert_eq!(b["to"], "alice", "to the peer");
    assert_eq!(b["payload"], json!({"ext": {}, "ack_message_id": id, "bodies": []}));
    assert_ne!(b["msg_id"], id, "the receipt has its own id");
    assert_eq!(b["callId"], format!("{key}_{}", b["msg_id"].as_str().unwrap()));
    assert!(b.get("group_id").is_none(), "{b}");
    assert_signed(b);
    // reading it again moves nothing: no second receipt
    bob.send(&read).await;
    bob.echo().await;
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "marker"}})).await;
    let marker = sent_id(&r, "bob");
    wait_for(&rcv, 1, |c| c["msg_id"] == marker && c["eventType"] == "chat").await;
    assert_eq!(matching(&rcv, |c| c["chat_type"] == "read_ack").len(), 1);
    // an import marked read: the recipient's receipt only (the sender reading their own is none)
    let body = json!({"from": "alice", "target": "bob", "type": "txt", "body": {"msg": "old"}, "is_ack_read": true});
    let r = app.post("/messages/users/import", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let imported = r.body["data"]["msg_id"].as_str().unwrap_or_else(|| panic!("{:?}", r.body)).to_string();
    let b = &wait_for(&rcv, 1, |c| c["chat_type"] == "read_ack" && c["payload"]["ack_message_id"] == imported).await[0];
    assert_eq!((b["from"].as_str(), b["to"].as_str()), (Some("bob"), Some("alice")));
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "marker 2"}})).await;
    let marker = sent_id(&r, "bob");
    wait_for(&rcv, 1, |c| c["msg_id"] == marker && c["eventType"] == "chat").await;
    assert_eq!(matching(&rcv, |c| c["chat_type"] == "read_ack").len(), 2, "{:?}", matching(&rcv, |c| c["chat_type"] == "read_ack"));
    srv.stop().await;
}

#[tokio::test]
async fn contact_operations_are_called_back_as_roster() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}")]).await;
    let key = appkey(&app);
    let roster = |op: &'static str| move |c: &Value| c["chat_type"] == "roster" && c["payload"]["operation"] == op;

    assert_eq!(app.post("/users/alice/contacts/users/bob", json!({})).await.status, 200);
    let b = &wait_for(&rcv, 1, roster("add")).await[0];
    assert_eq!(b["eventType"], "chat");
    assert_eq!((b["from"].as_str(), b["to"].as_str()), (Some("alice"), Some("bob")));
    assert_eq!(b["appkey"], key);
    assert_eq!(b["callId"], format!("{key}_{}", b["msg_id"].as_str().unwrap()));
    assert_signed(b);
    // adding again changes nothing: no second callback
    assert_eq!(app.post("/users/alice/contacts/users/bob", json!({})).await.status, 200);
    assert_eq!(app.call(Method::DELETE, "/users/bob/contacts/users/alice", Em::App, None).await.status, 200);
    let b = &wait_for(&rcv, 1, roster("remove")).await[0];
    assert_eq!((b["from"].as_str(), b["to"].as_str()), (Some("bob"), Some("alice")));
    assert_signed(b);
    assert_eq!(matching(&rcv, roster("add")).len(), 1, "the second add changed nothing");

    // the user blocklist: ban one per user blocked, allow when unblocked
    let r = app.post("/users/alice/blocks/users", json!({"usernames": ["bob", "carol"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let bans = wait_for(&rcv, 2, roster("ban")).await;
    let mut to: Vec<&str> = bans.iter().map(|c| c["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["bob", "carol"]);
    assert!(bans.iter().all(|c| c["from"] == "alice"));
    assert_signed(&bans[0]);
    assert_eq!(app.call(Method::DELETE, "/users/alice/blocks/users/carol", Em::App, None).await.status, 200);
    let b = &wait_for(&rcv, 1, roster("allow")).await[0];
    assert_eq!((b["from"].as_str(), b["to"].as_str()), (Some("alice"), Some("carol")));
    assert_signed(b);
    srv.stop().await;
}

#[tokio::test]
async fn reactions_and_threads_are_called_back_as_notify() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}")]).await;
    let key = appkey(&app);

    // a reaction on a one-to-one message, by its sender and by its recipient
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "like me"}})).await;
    let id = sent_id(&r, "bob");
    let r = app.post("/reaction/user/bob", json!({"msgId": id, "message": "emoji_1"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &wait_for(&rcv, 1, |c| c["chat_type"] == "notify" && c["from"] == "bob").await[0];
    assert_eq!(b["eventType"], "chat");
    assert_eq!(b["to"], "alice");
    assert_eq!(b["payload"]["type"], "reaction");
    let d = &b["payload"]["data"][0];
    assert_eq!(d["messageId"], id);
    assert_eq!((d["from"].as_str(), d["to"].as_str()), (Some("alice"), Some("bob")), "the message's sender and recipient");
    assert_eq!(d["channel_type"], "chat");
    assert_eq!(d["reactions"], json!([{"reaction": "emoji_1", "count": 1, "op": [{"operator": "bob", "reactionType": "create"}]}]));
    assert_eq!(b["callId"], format!("{key}_{}", b["msg_id"].as_str().unwrap()));
    assert_signed(b);
    assert_eq!(app.post("/reaction/user/alice", json!({"msgId": id, "message": "emoji_1"})).await.status, 200);
    let b = &wait_for(&rcv, 1, |c| c["chat_type"] == "notify" && c["from"] == "alice").await[0];
    assert_eq!(b["to"], "bob", "the peer of the reacting sender");
    assert_eq!(b["payload"]["data"][0]["to"], "bob");
    assert_eq!(b["payload"]["data"][0]["reactions"][0]["count"], 2);
    let r = app.call(Method::DELETE, &format!("/reaction/user/bob?msgId={id}&message=emoji_1"), Em::App, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &wait_for(&rcv, 1, |c| c["payload"]["data"][0]["reactions"][0]["op"][0]["reactionType"] == "delete").await[0];
    assert_eq!(b["from"], "bob");
    assert_eq!(b["payload"]["data"][0]["reactions"][0]["count"], 1, "alice's is left");
    assert_signed(b);

    // a thread on a group message: create, rename, a member joins and is removed, delete
    let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob", "carol"]})).await;
    let gid = r.body["data"]["groupid"].as_str().unwrap_or_else(|| panic!("{:?}", r.body)).to_string();
    let r = app.post("/messages/chatgroups", json!({"from": "alice", "to": [gid], "type": "txt", "body": {"msg": "topic"}})).await;
    let root = sent_id(&r, &gid);
    let r = app.post("/thread", json!({"group_id": gid, "name": "t1", "owner": "bob", "msg_id": root})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let tid = r.body["data"]["thread_id"].as_str().unwrap().to_string();
    let thread = |op: &'static str| move |c: &Value| c["payload"]["type"] == "thread" && c["payload"]["data"]["operation"] == op;
    let b = &wait_for(&rcv, 1, thread("create")).await[0];
    assert_eq!(b["chat_type"], "notify");
    assert_eq!(b["from"], "bob", "the thread's owner created it");
    assert_eq!(b["to"], gid);
    assert_eq!(b["group_id"], gid);
    let d = &b["payload"]["data"];
    assert_eq!(d["id"], tid);
    assert_eq!(d["name"], "t1");
    assert_eq!(d["muc_parent_id"], gid);
    assert_eq!(d["msg_parent_id"], root);
    assert!(d["timestamp"].as_i64().is_some(), "{d}");
    assert_signed(b);
    assert!(matching(&rcv, |c| c["chat_type"] == "muc" && c["group_id"] == tid.as_str()).is_empty(), "a thread is no muc");
    assert_eq!(app.put(&format!("/thread/{tid}"), json!({"name": "t2"})).await.status, 200);
    let b = &wait_for(&rcv, 1, thread("update")).await[0];
    assert_eq!(b["payload"]["data"]["name"], "t2");
    assert_eq!(b["from"], key, "the app's server acted");
    assert_eq!(app.post(&format!("/thread/{tid}/users"), json!({"usernames": ["carol"]})).await.status, 200);
    assert_eq!(wait_for(&rcv, 1, thread("join")).await[0]["to"], "carol");
    let r = app.call(Method::DELETE, &format!("/thread/{tid}/users"), Em::App, Some(json!({"usernames": ["carol"]}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(wait_for(&rcv, 1, thread("kick")).await[0]["to"], "carol");
    assert_eq!(app.delete(&format!("/thread/{tid}")).await.status, 200);
    let b = &wait_for(&rcv, 1, thread("delete")).await[0];
    assert_eq!(b["payload"]["data"]["id"], tid);
    assert_signed(b);
    srv.stop().await;
}

#[tokio::test]
async fn more_group_and_room_operations_are_called_back() {
    let srv = TestServer::start().await;
    let (app, rcv) = setup(&srv, &[("hooks.easemob.url", "{post}")]).await;
    let key = appkey(&app);
    let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob", "carol"]})).await;
    let gid = r.body["data"]["groupid"].as_str().unwrap_or_else(|| panic!("{:?}", r.body)).to_string();
    let muc_id = format!("{key}_{gid}@conference.easemob.com");
    let at = |p: &str| format!("/chatgroups/{gid}/{p}");

    // admins
    assert_eq!(app.post(&at("admin"), json!({"newadmin": "bob"})).await.status, 200);
    let b = &wait_for(&rcv, 1, muc_op("add_admin", "bob".into())).await[0];
    assert_eq!(b["from"], key);
    assert_eq!(b["group_id"], gid);
    assert_eq!(b["payload"]["muc_id"], muc_id);
    assert_eq!(b["payload"]["is_chatroom"], false);
    assert_eq!(b["payload"]["status"]["error_code"], "ok");
    assert_eq!(b["callId"], format!("{key}_{}", b["msg_id"].as_str().unwrap()));
    assert_signed(b);
    assert_eq!(app.delete(&at("admin/bob")).await.status, 200);
    assert_signed(&wait_for(&rcv, 1, muc_op("remove_admin", "bob".into())).await[0]);

    // speech mutes, one per member
    let r = app.post(&at("mute"), json!({"usernames": ["bob", "carol"], "mute_duration": 60000})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_for(&rcv, 1, muc_op("add_mute", "bob".into())).await;
    wait_for(&rcv, 1, muc_op("add_mute", "carol".into())).await;
    assert_eq!(app.delete(&at("mute/carol")).await.status, 200);
    assert_signed(&wait_for(&rcv, 1, muc_op("remove_mute", "carol".into())).await[0]);

    // mute-all and the announcement: to the group
    assert_eq!(app.post(&at("ban"), json!({})).await.status, 200);
    wait_for(&rcv, 1, muc_op("ban_group", gid.clone())).await;
    assert_eq!(app.delete(&at("ban")).await.status, 200);
    wait_for(&rcv, 1, muc_op("remove_ban_group", gid.clone())).await;
    assert_eq!(app.post(&at("announcement"), json!({"announcement": "read the rules"})).await.status, 200);
    let b = &wait_for(&rcv, 1, muc_op("update_announcement", gid.clone())).await[0];
    assert_eq!(b["payload"]["reason"], "read the rules", "the announcement, in reason");
    assert_eq!(app.post(&at("announcement"), json!({"announcement": ""})).await.status, 200);
    wait_for(&rcv, 1, muc_op("delete_announcement", gid.clone())).await;
    // name and description: update
    let r = app.put(&format!("/chatgroups/{gid}"), json!({"groupname": "g2", "description": "d2"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &wait_for(&rcv, 1, muc_op("update", gid.clone())).await[0];
    assert_signed(b);
    assert!(matching(&rcv, |c| c["payload"]["operation"] == "update_announcement").len() == 1, "an update is not an announcement");

    // the blocklist: ban (the member leaves), then allow
    assert_eq!(app.post(&at("blocks/users/carol"), json!({})).await.status, 200);
    assert_signed(&wait_for(&rcv, 1, muc_op("ban", "carol".into())).await[0]);
    assert_eq!(app.delete(&at("blocks/users/carol")).await.status, 200);
    assert_signed(&wait_for(&rcv, 1, muc_op("allow", "carol".into())).await[0]);

    // a new owner (Easemob spells it assing_owner), then the group goes
    assert_eq!(app.put(&format!("/chatgroups/{gid}"), json!({"newowner": "bob"})).await.status, 200);
    assert_signed(&wait_for(&rcv, 1, muc_op("assing_owner", "bob".into())).await[0]);
    assert_eq!(app.delete(&format!("/chatgroups/{gid}")).await.status, 200);
    let b = &wait_for(&rcv, 1, muc_op("destroy", gid.clone())).await[0];
    assert_eq!(b["payload"]["muc_id"], muc_id);
    assert_signed(b);

    // a chat room: the same operations, is_chatroom true
    let r = app.post("/chatrooms", json!({"name": "r", "description": "d", "owner": "alice", "members": ["bob"]})).await;
    let rid = r.body["data"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", r.body)).to_string();
    let r = app.post(&format!("/chatrooms/{rid}/mute"), json!({"usernames": ["bob"], "mute_duration": -1})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let in_room = |c: &Value| muc_op("add_mute", "bob".into())(c) && c["group_id"] == rid.as_str();
    let b = &wait_for(&rcv, 1, in_room).await[0];
    assert_eq!(b["payload"]["is_chatroom"], true);
    assert_eq!(app.delete(&format!("/chatrooms/{rid}")).await.status, 200);
    let b = &wait_for(&rcv, 1, muc_op("destroy", rid.clone())).await[0];
    assert_eq!(b["payload"]["is_chatroom"], true);
    assert_signed(b);
    srv.stop().await;
}
