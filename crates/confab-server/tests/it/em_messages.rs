//! Easemob face over real HTTP: global mutes and messages (specs/easemob-rest.md §3.2, §3.3) —
//! sending to users, groups and chat rooms, the limits and rates, the content as the other faces
//! see it, recall, chat files, the conversation list, import and the hourly history export.

use std::io::Read;

use crate::common::*;
use confab_engine::model::{Content, Plan};
use confab_engine::{Actor, NewMessage};
use reqwest::Method;
use serde_json::{json, Value};

/// LeanCloud REST history of a conversation, newest first.
async fn lc_history(lc: &LcApp, conv: &str) -> Vec<Value> {
    let r = lc.get(&format!("/1.2/rtm/conversations/{conv}/messages")).await;
    r.ok().as_array().unwrap_or_else(|| panic!("history of {conv}: {:?}", r.body)).clone()
}

#[track_caller]
fn lc_record(h: &[Value], id: &str) -> Value {
    h.iter().find(|m| m["msg-id"] == id).unwrap_or_else(|| panic!("message {id} in LeanCloud history {h:?}")).clone()
}

#[track_caller]
fn data_json(rec: &Value) -> Value {
    let d = rec["data"].as_str().unwrap_or_else(|| panic!("data string in {rec}"));
    serde_json::from_str(d).unwrap_or_else(|_| panic!("data is JSON: {d}"))
}

/// The one-to-one conversation of two users, as the engine (and LeanCloud) knows it.
async fn direct(srv: &TestServer, app: &EmApp, a: &str, b: &str) -> String {
    srv.engine().conversations().find_direct_conversation(&app.app, a, b).await.unwrap().expect("one-to-one conversation").id.to_string()
}

async fn send(app: &EmApp, kind: &str, body: Value) -> Resp {
    app.post(&format!("/messages/{kind}"), body).await
}

fn txt(from: &str, to: &[&str], msg: &str) -> Value {
    json!({"from": from, "to": to, "type": "txt", "body": {"msg": msg}})
}

/// The message id a send answered for a target.
#[track_caller]
fn sent_id(r: &Resp, target: &str) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["data"][target].as_str().unwrap_or_else(|| panic!("data.{target} in {:?}", r.body)).to_string();
    assert!(id.len() >= 15 && id.bytes().all(|b| b.is_ascii_digit()), "numeric message id {id}");
    id
}

#[tokio::test]
async fn one_to_one_every_type_reaches_leancloud_as_its_typed_message() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let lc = srv.lc_of(&app);

    let r = send(&app, "users", txt("alice", &["bob", "carol"], "hello")).await;
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["path"], "/messages/users");
    let to_bob = sent_id(&r, "bob");
    let to_carol = sent_id(&r, "carol");
    assert_ne!(to_bob, to_carol);

    // the engine's unique pair conversation, which LeanCloud shows as its text message
    let conv = direct(&srv, &app, "alice", "bob").await;
    let h = lc_history(&lc, &conv).await;
    let rec = lc_record(&h, &to_bob);
    assert_eq!(rec["from"], "alice");
    assert_eq!(data_json(&rec), json!({"_lctype": -1, "_lctext": "hello"}));

    // every type, with the shape each takes on the LeanCloud side
    let url = "https://example.com/org/app/chatfiles/abc";
    let cases = [
        ("img", json!({"url": url, "filename": "a.jpg", "size": {"width": 10, "height": 20}}), -2),
        ("audio", json!({"url": url, "filename": "a.amr", "length": 3}), -3),
        ("video", json!({"url": url, "filename": "a.mp4", "length": 5, "file_length": 999, "thumb": url}), -4),
        ("file", json!({"url": url, "filename": "a.pdf"}), -6),
        ("loc", json!({"lat": "39.9", "lng": "116.3", "addr": "Beijing"}), -5),
        ("cmd", json!({"action": "refresh"}), -7),
    ];
    for (kind, body, lctype) in cases {
        let r = send(&app, "users", json!({"from": "alice", "to": ["bob"], "type": kind, "body": body, "ext": {"k": "v"}})).await;
        let id = sent_id(&r, "bob");
        let d = data_json(&lc_record(&lc_history(&lc, &conv).await, &id));
        assert_eq!(d["_lctype"], lctype, "{kind}: {d}");
        assert_eq!(d["_lcattrs"], json!({"k": "v"}), "{kind}: {d}");
        match kind {
            "loc" => {
                assert_eq!(d["_lcloc"]["latitude"], 39.9, "{d}");
                assert_eq!(d["_lctext"], "Beijing");
            }
            "cmd" => assert_eq!(d["_lctext"], "refresh"),
            _ => {
                assert_eq!(d["_lcfile"]["url"], url, "{kind}: {d}");
                assert!(d["_lcfile"]["metaData"]["name"].is_string(), "{kind}: {d}");
            }
        }
        if kind == "img" {
            assert_eq!(d["_lcfile"]["metaData"]["width"], 10);
        }
    }
    let r = send(
        &app,
        "users",
        json!({"from": "alice", "to": ["bob"], "type": "custom", "body": {"customEvent": "gift", "customExts": {"n": "1"}}}),
    )
    .await;
    let id = sent_id(&r, "bob");
    assert_eq!(lc_record(&lc_history(&lc, &conv).await, &id)["data"], "gift");

    // `from` defaults to admin
    let r = send(&app, "users", json!({"to": ["bob"], "type": "txt", "body": {"msg": "from the server"}})).await;
    let id = sent_id(&r, "bob");
    let admin_conv = direct(&srv, &app, "admin", "bob").await;
    assert_eq!(lc_record(&lc_history(&lc, &admin_conv).await, &id)["from"], "admin");

    // ROUTE_ONLINE: delivered to who is online, not kept
    let r = send(&app, "users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "now or never"}, "routetype": "ROUTE_ONLINE", "sync_device": true})).await;
    let id = sent_id(&r, "bob");
    assert!(lc_history(&lc, &conv).await.iter().all(|m| m["msg-id"] != id.as_str()));

    // a LeanCloud message reads back as an Easemob txt in the conversation list
    lc.post(
        &format!("/1.2/rtm/conversations/{conv}/messages"),
        json!({"from_client": "bob", "message": json!({"_lctype": -1, "_lctext": "from lc"}).to_string()}),
    )
    .await
    .ok();
    let t = app.user_token("alice").await;
    let r = app.call(Method::GET, "/user/alice/user_channels", Em::Token(t), None).await;
    let infos = r.body["data"]["channel_infos"].as_array().unwrap_or_else(|| panic!("{:?}", r.body)).clone();
    let with_bob = infos.iter().find(|i| i["session_to"] == "bob").unwrap_or_else(|| panic!("bob in {infos:?}"));
    let p: Value = serde_json::from_str(with_bob["meta"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(p["bodies"][0], json!({"type": "txt", "msg": "from lc"}), "{p}");
    assert_eq!(p["from"], "bob");
    srv.stop().await;
}

#[tokio::test]
async fn send_errors_limits_and_auth() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;

    let bad = [
        (json!({"from": "", "to": ["bob"], "type": "txt", "body": {"msg": "x"}}), "param from can't be empty"),
        (json!({"from": "alice", "to": [], "type": "txt", "body": {"msg": "x"}}), "param to can't be empty"),
        (json!({"from": "alice", "to": ["bob"], "body": {"msg": "x"}}), "param type can't be empty"),
        (json!({"from": "alice", "to": ["bob"], "type": "txt"}), "param body can't be empty"),
        (json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "x"}, "ext": null}), "param ext must be JSONObject"),
        (json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "x"}, "ext": "s"}), "param ext must be JSONObject"),
        (json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "x".repeat(3 * 1024 + 1)}}), "message is too large"),
    ];
    for (body, desc) in bad {
        let r = send(&app, "users", body).await;
        r.em_error(400, "message_send_error");
        assert_eq!(r.body["error_description"], desc);
    }
    send(&app, "users", json!({"from": "alice", "to": ["bob"], "type": "video", "body": {"msg": "no url"}}))
        .await
        .em_error(400, "message_send_error");
    send(&app, "users", json!({"from": "alice", "to": ["bob"], "type": "nope", "body": {"msg": "x"}}))
        .await
        .em_error(400, "message_send_error");
    send(&app, "users", json!([1])).await.em_error(400, "invalid_request_body");
    send(&app, "users", json!({"from": "alice", "to": "bob", "type": 3, "body": {"msg": "x"}})).await.em_error(400, "invalid_request_body");
    let many: Vec<String> = (0..601).map(|i| format!("u{i}")).collect();
    let r = send(&app, "users", json!({"from": "alice", "to": many, "type": "txt", "body": {"msg": "x"}})).await;
    r.em_error(400, "message_send_error");
    assert_eq!(r.body["error_description"], "params to's size can't exceed limit 600");

    // auth: no token; a user token sends as its own user only
    app.call(Method::POST, "/messages/users", Em::None, Some(txt("alice", &["bob"], "x"))).await.em_error(401, "unauthorized");
    let t = app.user_token("alice").await;
    app.call(Method::POST, "/messages/users", Em::Token(t.clone()), Some(txt("bob", &["alice"], "x"))).await.em_error(401, "unauthorized");
    let r =
        app.call(Method::POST, "/messages/users", Em::Token(t), Some(json!({"to": ["bob"], "type": "txt", "body": {"msg": "mine"}}))).await;
    sent_id(&r, "bob");

    // rates: the call bucket (429) and the message quota, each recipient counting one (403);
    // the send above counted one
    srv.engine().apps().set_app_limit(&app.app.name, "rates.em.msg.users.per_minute", "4").await.unwrap();
    let r = send(&app, "users", txt("alice", &["bob", "u1", "u2"], "three")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = send(&app, "users", txt("alice", &["bob"], "one too many")).await;
    r.em_error(403, "message_send_error");
    assert_eq!(r.body["error_description"], "message send reach limit");
    srv.engine().apps().set_app_limit(&app.app.name, "rates.em.messages.users.per_second", "1").await.unwrap();
    srv.engine().apps().set_app_limit(&app.app.name, "rates.em.msg.users.per_minute", "1000").await.unwrap();
    let mut codes = vec![];
    for _ in 0..3 {
        codes.push(send(&app, "users", txt("alice", &["bob"], "fast")).await);
    }
    let limited = codes.iter().find(|r| r.status == 429).expect("a 429 among three calls at 1/s");
    limited.em_error(429, "reach_limit");
    srv.stop().await;
}

#[tokio::test]
async fn groups_and_chat_rooms_made_through_leancloud() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let lc = srv.lc_of(&app);
    let g1 = lc.conversation(json!({"name": "g1", "m": ["alice", "bob", "carol"]})).await;
    let g2 = lc.conversation(json!({"name": "g2", "m": ["alice", "bob"]})).await;
    let room = lc.post("/1.2/rtm/chatrooms", json!({"name": "room"})).await.ok()["objectId"].as_str().unwrap().to_string();

    let r = send(
        &app,
        "chatgroups",
        json!({"from": "alice", "to": [g1, g2], "type": "txt", "body": {"msg": "hi all"}, "need_group_ack": true}),
    )
    .await;
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["path"], "/messages/chatgroups");
    let id1 = sent_id(&r, &g1);
    sent_id(&r, &g2);
    let rec = lc_record(&lc_history(&lc, &g1).await, &id1);
    assert_eq!(data_json(&rec), json!({"_lctype": -1, "_lctext": "hi all"}));
    assert_eq!(rec["from"], "alice");

    let r = send(
        &app,
        "chatrooms",
        json!({"from": "alice", "to": [room], "type": "txt", "body": {"msg": "in the room"}, "chatroom_msg_level": "high"}),
    )
    .await;
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["path"], "/messages/chatrooms");
    let rid = sent_id(&r, &room);
    let h = lc.get(&format!("/1.2/rtm/chatrooms/{room}/messages")).await;
    assert!(h.ok().as_array().unwrap().iter().any(|m| m["msg-id"] == rid.as_str()), "{:?}", h.body);

    // targets of the wrong kind, unknown, or too many
    send(&app, "chatgroups", json!({"to": [room], "type": "txt", "body": {"msg": "x"}})).await.em_error(404, "service_resource_not_found");
    send(&app, "chatrooms", json!({"to": [g1], "type": "txt", "body": {"msg": "x"}})).await.em_error(404, "service_resource_not_found");
    send(&app, "chatgroups", json!({"to": ["12345"], "type": "txt", "body": {"msg": "x"}}))
        .await
        .em_error(404, "service_resource_not_found");
    send(&app, "chatgroups", json!({"to": ["not-a-number"], "type": "txt", "body": {"msg": "x"}}))
        .await
        .em_error(404, "service_resource_not_found");
    let r = send(&app, "chatgroups", json!({"to": [g1, g2, g1, g2], "type": "txt", "body": {"msg": "x"}})).await;
    r.em_error(400, "message_send_error");
    assert_eq!(r.body["error_description"], "params to's size can't exceed limit 3");
    let rooms: Vec<String> = (0..11).map(|_| room.clone()).collect();
    send(&app, "chatrooms", json!({"to": rooms, "type": "txt", "body": {"msg": "x"}})).await.em_error(400, "message_send_error");

    // a user token in a group: members only
    let dave_token = {
        app.users(&["dave"]).await;
        app.user_token("dave").await
    };
    app.call(
        Method::POST,
        "/messages/chatgroups",
        Em::Token(dave_token),
        Some(json!({"to": [g1], "type": "txt", "body": {"msg": "let me in"}})),
    )
    .await
    .em_error(403, "forbidden_op");

    // group message quota: a call with two groups counts two
    srv.engine().apps().set_app_limit(&app.app.name, "rates.em.msg.chatgroups.per_second", "1").await.unwrap();
    let r = send(&app, "chatgroups", json!({"to": [g1, g2], "type": "txt", "body": {"msg": "x"}})).await;
    r.em_error(403, "message_send_error");
    srv.stop().await;
}

/// A MaxIM text from a user token to a user.
async fn mx_send(srv: &TestServer, app_id: &str, token: &str, to: i64) -> Value {
    srv.http
        .post(format!("{}/message/send", srv.base))
        .header("app_id", app_id)
        .header("access-token", token)
        .json(&json!({"type": 1, "targets": [to], "content_type": 0, "content": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn global_mutes_are_kept_listed_and_enforced_on_every_face() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;

    let r = app.post("/mutes", json!({"username": "alice", "chat": 100, "groupchat": -1})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["path"], "/mutes");
    assert_eq!(r.body["data"], json!({"result": "ok"}));

    let r = app.get("/mutes/alice").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let d = &r.body["data"];
    let k = &app.app.keys.easemob;
    assert_eq!(d["userid"], format!("{}#{}_alice", k.org_name, k.app_name));
    assert!((99..=100).contains(&d["chat"].as_i64().unwrap()), "{d}");
    assert_eq!(d["groupchat"], -1);
    assert_eq!(d["chatroom"], 0);
    assert!(d["unixtime"].as_i64().unwrap() > 1_600_000_000);

    app.post("/mutes", json!({"username": "bob", "chatroom": 50})).await.ok();
    let r = app.get("/mutes?pageNum=1&pageSize=10").await;
    let rows = r.body["data"]["data"].as_array().unwrap_or_else(|| panic!("{:?}", r.body)).clone();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().any(|x| x["username"] == "alice" && x["groupchat"] == -1 && x.get("chat").is_none()));
    assert!(rows.iter().any(|x| x["username"] == "bob" && x["chatroom"].as_i64().is_some_and(|s| s > 0)));
    assert_eq!(r.body["params"]["pageSize"], json!(["10"]));
    let r = app.get("/mutes?pageNum=2&pageSize=2").await;
    assert_eq!(r.body["data"]["data"].as_array().unwrap().len(), 1);
    app.get("/mutes?pageSize=51").await.em_error(400, "illegal_argument");

    // errors
    app.post("/mutes", json!({"username": "nobody", "chat": 10})).await.em_error(400, "required_property_not_found");
    app.get("/mutes/nobody").await.em_error(400, "required_property_not_found");
    app.post("/mutes", json!({"username": "alice", "chat": -2})).await.em_error(400, "illegal_argument");
    app.post("/mutes", json!({"username": "alice", "chat": "x"})).await.em_error(400, "illegal_argument");
    let t = app.user_token("bob").await;
    app.call(Method::GET, "/mutes", Em::Token(t), None).await.em_error(401, "unauthorized");
    app.call(Method::GET, "/mutes", Em::None, None).await.em_error(401, "unauthorized");

    // enforced: alice's own sends one-to-one are refused, through Easemob...
    let t = app.user_token("alice").await;
    app.call(Method::POST, "/messages/users", Em::Token(t.clone()), Some(json!({"to": ["bob"], "type": "txt", "body": {"msg": "x"}})))
        .await
        .em_error(403, "forbidden_op");
    // ...and through the engine's send path every face uses (LeanCloud sessions, MaxIM users)
    let conv = srv.engine().conversations().direct_conversation(&app.app, "alice", "bob").await.unwrap();
    let new = NewMessage { from: "alice".into(), content: Some(Content::Text("x".into())), ..Default::default() };
    let e = srv.engine().messages().send_message(&app.app, &conv, new.clone(), &Actor::User("alice".into())).await.unwrap_err();
    assert!(matches!(e, confab_engine::Error::Muted), "{e:?}");
    // bob is muted in chat rooms only: he still speaks one-to-one
    let bob = NewMessage { from: "bob".into(), ..new.clone() };
    srv.engine().messages().send_message(&app.app, &conv, bob, &Actor::User("bob".into())).await.unwrap();

    // MaxIM: a MaxIM user muted through Easemob cannot send either
    let mx_base = srv.base.clone();
    let mx = |path: &str| format!("{mx_base}{path}");
    let mx_app = app.app.keys.maxim.app_id.clone();
    let reg = |name: &str| {
        srv.http.post(mx("/user/register/v2")).header("app_id", &mx_app).json(&json!({"username": name, "password": "pw-123456"})).send()
    };
    let mallory: Value = reg("mallory").await.unwrap().json().await.unwrap();
    let trent: Value = reg("trent").await.unwrap().json().await.unwrap();
    let trent_id = trent["data"]["user_id"].as_i64().expect("trent id");
    assert!(mallory["data"]["user_id"].is_i64(), "{mallory}");
    let tok: Value = srv
        .http
        .post(mx("/token/user"))
        .header("app_id", &mx_app)
        .json(&json!({"name": "mallory", "password": "pw-123456"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mtok = tok["data"]["token"].as_str().expect("token").to_string();
    assert_eq!(mx_send(&srv, &mx_app, &mtok, trent_id).await["code"], 200);
    app.post("/mutes", json!({"username": "mallory", "chat": -1})).await.ok();
    let r = mx_send(&srv, &mx_app, &mtok, trent_id).await;
    assert_ne!(r["code"], 200, "a globally muted MaxIM user is refused: {r}");

    // lifting the mute (0) lets alice speak again
    app.post("/mutes", json!({"username": "alice", "chat": 0})).await.ok();
    assert_eq!(app.get("/mutes/alice").await.body["data"]["chat"], 0);
    let r =
        app.call(Method::POST, "/messages/users", Em::Token(t), Some(json!({"to": ["bob"], "type": "txt", "body": {"msg": "back"}}))).await;
    sent_id(&r, "bob");
    srv.stop().await;
}

#[tokio::test]
async fn recall_on_every_path_with_its_errors() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let lc = srv.lc_of(&app);
    let id = sent_id(&send(&app, "users", txt("alice", &["bob"], "oops")).await, "bob");
    let conv = direct(&srv, &app, "alice", "bob").await;

    let r = app.post("/messages/recall", json!({"msg_id": id, "to": "bob", "chat_type": "chat", "from": "alice", "force": false})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"recalled": "yes", "chattype": "chat", "from": "alice", "to": "bob", "msg_id": id}));
    let rec = lc_record(&lc_history(&lc, &conv).await, &id);
    assert_eq!(rec["recall"], true, "{rec}");

    // the documented path, groups, and the batch forms
    let lc_conv = lc.conversation(json!({"name": "g", "m": ["alice", "bob"]})).await;
    let gid =
        sent_id(&send(&app, "chatgroups", json!({"from": "alice", "to": [lc_conv], "type": "txt", "body": {"msg": "x"}})).await, &lc_conv);
    let r = app.post("/messages/msg_recall", json!({"msg_id": gid, "to": lc_conv, "chat_type": "groupchat", "force": true})).await;
    assert_eq!(r.body["data"]["recalled"], "yes", "{:?}", r.body);
    let a = sent_id(&send(&app, "users", txt("alice", &["bob"], "a")).await, "bob");
    let b = sent_id(&send(&app, "users", txt("alice", &["bob"], "b")).await, "bob");
    let r = app.post("/messages/recall", json!({"msgs": [{"msg_id": a, "to": "bob", "chat_type": "chat", "force": true}]})).await;
    assert_eq!(r.body["data"][0]["recalled"], "yes", "{:?}", r.body);
    let r = app
        .post(
            "/messages/batch_recall",
            json!({"msgs": [{"msg_id": b, "to": "bob", "chat_type": "chat"}, {"msg_id": "1", "to": "bob", "chat_type": "chat"}]}),
        )
        .await;
    assert_eq!(r.body["data"][0]["recalled"], "yes", "{:?}", r.body);
    assert_eq!(r.body["data"][1]["recalled"], "not_found msg", "{:?}", r.body);

    // errors
    let c = sent_id(&send(&app, "users", txt("alice", &["bob"], "c")).await, "bob");
    app.post("/messages/recall", json!({"to": "bob", "chat_type": "chat"})).await.em_error(400, "message_recall_error");
    app.post("/messages/recall", json!({"msg_id": c, "chat_type": "chat"})).await.em_error(400, "message_recall_error");
    app.post("/messages/recall", json!({"msg_id": c, "to": "bob"})).await.em_error(400, "message_recall_error");
    app.post("/messages/recall", json!({"msg_id": c, "to": "carol", "chat_type": "chat"})).await.em_error(400, "message_recall_error");
    app.post("/messages/recall", json!({"msg_id": c, "to": "bob", "chat_type": "groupchat"})).await.em_error(400, "message_recall_error");
    app.post("/messages/recall", json!({"msg_id": "999", "to": "bob", "chat_type": "chat"})).await.em_error(403, "message_recall_error");
    app.post("/messages/recall", json!({"msg_id": c, "to": "bob", "chat_type": "chat", "from": "bob"}))
        .await
        .em_error(403, "message_recall_error");
    let t = app.user_token("alice").await;
    app.call(Method::POST, "/messages/recall", Em::Token(t), Some(json!({"msg_id": c, "to": "bob", "chat_type": "chat"})))
        .await
        .em_error(401, "unauthorized");

    // the recall window: past it only `force` recalls
    srv.engine().apps().set_app_limit(&app.app.name, "recall_window_secs", "1").await.unwrap();
    srv.advance(std::time::Duration::from_millis(1100));
    let r = app.post("/messages/recall", json!({"msg_id": c, "to": "bob", "chat_type": "chat", "force": false})).await;
    r.em_error(403, "message_recall_error");
    assert_eq!(r.body["error_description"], "exceed recall time limit");
    let r = app.post("/messages/recall", json!({"msg_id": c, "to": "bob", "chat_type": "chat", "force": true})).await;
    assert_eq!(r.body["data"]["recalled"], "yes", "{:?}", r.body);
    srv.stop().await;
}

/// A multipart body with one part.
fn multipart(field: &str, filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "XyZconfabBoundary42";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn chat_files_upload_and_download() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let upload = |field: &'static str, restrict: bool, data: Vec<u8>| {
        let (ctype, body) = multipart(field, "pic.png", &data);
        let mut req = srv.http.post(format!("{}/chatfiles", app.base)).bearer_auth(&app.token).header("Content-Type", ctype).body(body);
        if restrict {
            req = req.header("restrict-access", "true");
        }
        async move { Resp::read(req.send().await.unwrap()).await }
    };
    let r = upload("file", false, bytes.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["path"], "/chatfiles");
    let e = &r.body["entities"][0];
    assert_eq!(e["type"], "chatfile");
    assert!(e["share-secret"].is_string(), "{e}");
    let id = e["uuid"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);

    let got = srv.http.get(format!("{}/chatfiles/{id}", app.base)).header("Accept", "application/octet-stream").send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    let thumb = srv.http.get(format!("{}/chatfiles/{id}", app.base)).header("thumbnail", "true").send().await.unwrap();
    assert_eq!(thumb.status(), 200);

    // restricted: the share-secret, as a header or in the query
    let r = upload("file", true, b"secret bytes".to_vec()).await;
    let rid = r.body["entities"][0]["uuid"].as_str().unwrap().to_string();
    let secret = r.body["entities"][0]["share-secret"].as_str().unwrap().to_string();
    let plain = srv.http.get(format!("{}/chatfiles/{rid}", app.base)).send().await.unwrap();
    assert_eq!(plain.status(), 401);
    assert_eq!(plain.json::<Value>().await.unwrap()["error"], "auth_bad_access_token");
    let wrong = srv.http.get(format!("{}/chatfiles/{rid}", app.base)).header("share-secret", "nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = srv.http.get(format!("{}/chatfiles/{rid}", app.base)).header("share-secret", &secret).send().await.unwrap();
    assert_eq!(ok.bytes().await.unwrap().as_ref(), b"secret bytes");
    let ok = srv.http.get(format!("{}/chatfiles/{rid}?share-secret={secret}", app.base)).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    // errors
    let r = app.get("/chatfiles/00000000-0000-0000-0000-000000000000").await;
    r.em_error(404, "entity_not_found");
    upload("other", false, b"x".to_vec()).await.em_error(400, "illegal_argument");
    let r = app.post("/chatfiles", json!({"file": "x"})).await;
    r.em_error(415, "web_application");
    let (ctype, body) = multipart("file", "a.bin", b"x");
    let r = srv.http.post(format!("{}/chatfiles", app.base)).header("Content-Type", ctype).body(body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    srv.engine().apps().set_app_limit(&app.app.name, "em_file_max_bytes", "100").await.unwrap();
    let r = upload("file", false, vec![7u8; 101]).await;
    r.em_error(413, "file exceeding maximum limit");
    // bigger than the server's general body limit (1 MB), within the file limit
    srv.engine().apps().set_app_limit(&app.app.name, "em_file_max_bytes", "3000000").await.unwrap();
    let big = vec![1u8; 2_000_000];
    let r = upload("file", false, big.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let bid = r.body["entities"][0]["uuid"].as_str().unwrap().to_string();
    let got = srv.http.get(format!("{}/chatfiles/{bid}", app.base)).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().len(), big.len());
    srv.stop().await;
}

#[tokio::test]
async fn conversation_list_and_one_way_delete() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let lc = srv.lc_of(&app);
    let g = lc.conversation(json!({"name": "g", "m": ["alice", "bob", "carol"]})).await;
    sent_id(&send(&app, "users", txt("bob", &["alice"], "one")).await, "alice");
    sent_id(&send(&app, "chatgroups", json!({"from": "carol", "to": [g], "type": "txt", "body": {"msg": "two"}})).await, &g);
    let alice = app.user_token("alice").await;
    let appr = &app;
    let list = move |who: &'static str, tok: String| async move {
        appr.call(Method::GET, &format!("/user/{who}/user_channels"), Em::Token(tok), None).await
    };

    let r = list("alice", alice.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "get", &app);
    assert_eq!(r.body["path"], "/users/user_channels");
    let infos = r.body["data"]["channel_infos"].as_array().unwrap().clone();
    assert_eq!(infos.len(), 2, "{infos:?}");
    // newest first
    assert_eq!(infos[0]["session_to"], g.as_str());
    assert_eq!(infos[0]["session_type"], "groupchat");
    assert_eq!(infos[0]["unread_num"], 1);
    assert_eq!(infos[1]["session_to"], "bob");
    assert_eq!(infos[1]["session_type"], "chat");
    let p: Value = serde_json::from_str(infos[1]["meta"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(p["bodies"][0], json!({"type": "txt", "msg": "one"}));
    assert_eq!(infos[1]["meta"]["from"], "bob");
    // paging
    let r = app.call(Method::GET, "/users/alice/user_channels?limit=1", Em::App, None).await;
    assert_eq!(r.body["data"]["channel_infos"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"]["cursor"], "1");
    let r = app.call(Method::GET, "/users/alice/user_channels?limit=1&cursor=1", Em::App, None).await;
    assert_eq!(r.body["data"]["channel_infos"][0]["session_to"], "bob");
    assert!(r.body["data"].get("cursor").is_none());

    // one-way delete: gone for alice, kept for bob, back with a new message
    let del = move |who: &'static str, tok: Em, body: Value| async move {
        appr.call(Method::DELETE, &format!("/users/{who}/user_channel"), tok, Some(body)).await
    };
    let r = del("alice", Em::Token(alice.clone()), json!({"channel": "bob", "type": "chat", "delete_roam": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "delete", &app);
    assert_eq!(r.body["path"], "/users/user_channel");
    assert_eq!(r.body["data"], json!({"result": "ok"}));
    let r = app.call(Method::GET, "/users/alice/user_channels", Em::App, None).await;
    let infos = r.body["data"]["channel_infos"].as_array().unwrap().clone();
    assert_eq!(infos.len(), 1, "{infos:?}");
    let r = app.call(Method::GET, "/users/bob/user_channels", Em::App, None).await;
    assert!(r.body["data"]["channel_infos"].as_array().unwrap().iter().any(|i| i["session_to"] == "alice"));
    sent_id(&send(&app, "users", txt("bob", &["alice"], "again")).await, "alice");
    let r = app.call(Method::GET, "/user/alice/user_channels", Em::App, None).await;
    assert!(r.body["data"]["channel_infos"].as_array().unwrap().iter().any(|i| i["session_to"] == "bob"), "{:?}", r.body);
    let r = app.call(Method::GET, "/user/alice/user_channels", Em::App, None).await;
    assert_eq!(r.status, 429, "the sixth list of alice in a minute: {:?}", r.body);
    r.em_error(429, "reach_limit");

    // errors
    del("alice", Em::App, json!({"type": "chat", "delete_roam": true})).await.em_error(400, "illegal_argument");
    del("alice", Em::App, json!({"channel": "bob", "delete_roam": true})).await.em_error(400, "illegal_argument");
    del("alice", Em::App, json!({"channel": "bob", "type": "chat"})).await.em_error(400, "illegal_argument");
    let bob = app.user_token("bob").await;
    del("alice", Em::Token(bob.clone()), json!({"channel": "carol", "type": "chat", "delete_roam": false}))
        .await
        .em_error(401, "unauthorized");
    list("carol", bob).await.em_error(401, "unauthorized");
    del("nobody", Em::App, json!({"channel": "bob", "type": "chat", "delete_roam": false}))
        .await
        .em_error(404, "service_resource_not_found");
    // the per-user limit: 5 a minute
    let r = del("alice", Em::App, json!({"channel": g, "type": "groupchat", "delete_roam": false})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = del("alice", Em::App, json!({"channel": g, "type": "groupchat", "delete_roam": false})).await;
    r.em_error(429, "reach_limit");
    srv.stop().await;
}

#[tokio::test]
async fn import_keeps_the_given_time_and_delivers_nothing() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let lc = srv.lc_of(&app);
    let at = now_ms() - 86_400_000;
    let r = app
        .post(
            "/messages/users/import",
            json!({"from": "alice", "target": "bob", "type": "txt", "body": {"msg": "old"}, "msg_timestamp": at}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["path"], "/messages/users/import");
    let id = r.body["data"]["msg_id"].as_str().unwrap().to_string();
    let conv = direct(&srv, &app, "alice", "bob").await;
    let rec = lc_record(&lc_history(&lc, &conv).await, &id);
    assert_eq!(rec["timestamp"], at);
    assert_eq!(data_json(&rec)["_lctext"], "old");

    let g = lc.conversation(json!({"name": "g", "m": ["alice", "bob"]})).await;
    let r = app.post("/messages/chatgroups/import", json!({"from": "alice", "target": g, "type": "img", "body": {"url": "https://x/y.png"}, "msg_timestamp": at, "is_ack_read": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["path"], "/messages/chatgroups/import");
    let gid = r.body["data"]["msg_id"].as_str().unwrap().to_string();
    assert_eq!(lc_record(&lc_history(&lc, &g).await, &gid)["timestamp"], at);

    let r = app.post("/messages/users/import", json!({"from": "alice", "target": "bob", "body": {"msg": "x"}})).await;
    r.em_error(400, "illegal_argument");
    assert_eq!(r.body["error_description"], "type not allow empty");
    let r = app.post("/messages/users/import", json!({"from": "alice", "target": "bob", "type": "txt"})).await;
    assert_eq!(r.body["error_description"], "message body not allow empty");
    app.post("/messages/users/import", json!(["x"])).await.em_error(400, "invalid_request_body");
    app.post("/messages/chatgroups/import", json!({"from": "alice", "target": "42", "type": "txt", "body": {"msg": "x"}}))
        .await
        .em_error(404, "service_resource_not_found");
    let t = app.user_token("alice").await;
    app.call(
        Method::POST,
        "/messages/users/import",
        Em::Token(t),
        Some(json!({"from": "alice", "target": "bob", "type": "txt", "body": {"msg": "x"}})),
    )
    .await
    .em_error(401, "unauthorized");
    srv.stop().await;
}

/// `yyyyMMddHH` of a time.
fn hour_of(ms: i64) -> String {
    let iso = confab_engine::time::iso_ms(ms);
    iso[..13].chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn history_export_gives_a_gzip_of_the_hour() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let lc = srv.lc_of(&app);
    let g = lc.conversation(json!({"name": "g", "m": ["alice", "bob"]})).await;
    let id = sent_id(&send(&app, "users", txt("alice", &["bob"], "for the record")).await, "bob");
    let gid = sent_id(
        &send(
            &app,
            "chatgroups",
            json!({"from": "bob", "to": [g], "type": "loc", "body": {"lat": "1.5", "lng": "2.5", "addr": "here"}, "ext": {"a": 1}}),
        )
        .await,
        &g,
    );
    let hour = hour_of(now_ms());

    let r = app.get(&format!("/chatmessages/{hour}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "get", &app);
    assert_eq!(r.body["path"], format!("/chatmessages/{hour}"));
    let url = r.body["data"][0]["url"].as_str().unwrap_or_else(|| panic!("{:?}", r.body)).to_string();
    let got = srv.http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let gz = got.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let one = lines.iter().find(|l| l["msg_id"] == id.as_str()).unwrap_or_else(|| panic!("{id} in {lines:?}"));
    assert_eq!(one["chat_type"], "chat");
    assert_eq!(one["from"], "alice");
    assert_eq!(one["to"], "bob");
    assert_eq!(one["direction"], "outgoing");
    assert_eq!(one["payload"]["bodies"][0], json!({"type": "txt", "msg": "for the record"}));
    let two = lines.iter().find(|l| l["msg_id"] == gid.as_str()).unwrap();
    assert_eq!(two["chat_type"], "groupchat");
    assert_eq!(two["to"], g.as_str());
    assert_eq!(two["payload"]["bodies"][0]["addr"], "here");
    assert_eq!(two["payload"]["ext"], json!({"a": 1}));

    // a tampered link, a bad time, an hour with nothing
    let tampered = url.replace("Signature=", "Signature=00");
    assert_eq!(srv.http.get(&tampered).send().await.unwrap().status(), 403);
    app.get("/chatmessages/2018").await.em_error(400, "illegal_argument");
    app.get("/chatmessages/2018023012").await.em_error(400, "illegal_argument");
    app.get("/chatmessages/2001010100").await.em_error(404, "storage_object_not_found");
    let t = app.user_token("alice").await;
    app.call(Method::GET, &format!("/chatmessages/{hour}"), Em::Token(t), None).await.em_error(401, "unauthorized");
    // 10 a minute per app
    let mut last = 0;
    for _ in 0..10 {
        last = app.get("/chatmessages/2001010100").await.status;
    }
    assert_eq!(last, 429);
    srv.stop().await;
}
