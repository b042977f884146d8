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
    srv.engine().set_app_settings(&app.app.name, &pairs).await.expect("settings");
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
    match srv.engine().message(&app.app, id.parse().expect("numeric id")).await {
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
    srv.engine().set_app_settings(&app.app.name, &[("hooks.easemob.pre_send_report", "false")]).await.unwrap();
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
    srv.engine().set_app_settings(&app.app.name, &[("hooks.easemob.pre_send_policy", "block")]).await.unwrap();
    for answer in bad_answers.clone() {
        rcv.script(PRE, vec![answer.clone()]);
        let r = user_send(&app, &alice, "users", "bob", "held").await;
        r.em_error(403, "forbidden_op");
        assert_eq!(r.body["error_description"], "custom internal error", "{answer:?}");
    }
    // block, not reported: the sender believes it sent, nothing is stored
    srv.engine().set_app_settings(&app.app.name, &[("hooks.easemob.pre_send_report", "false")]).await.unwrap();
    rcv.script(PRE, vec![Reply::ok(json!({"valid": true})).after(Duration::from_millis(1500))]);
    let id = sent_id(&user_send(&app, &alice, "users", "bob", "vanishes").await, "bob");
    assert_eq!(stored_text(&srv, &app, &id).await, None);

    // a longer wait lets the slow answer count
    srv.engine()
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
    let (engine, app_id) = (srv.engine().clone(), app.app.id);
    eventually(10, || {
        let engine = engine.clone();
        async move { (engine.store().outbox_counts(app_id).await.unwrap() == (0, 0)).then_some(()) }
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
    let (engine, app_id) = (srv.engine().clone(), app.app.id);
    let item = eventually(10, || {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            let items = engine.store().outbox_list(app_id, false, 100).await.unwrap();
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
