//! The real path from each REST face to a LeanCloud realtime client: a message sent through
//! LeanCloud REST (`/1.2/rtm/conversations/{id}/messages`), Easemob REST (`/messages/users`,
//! `/messages/chatgroups`) or MaxIM REST (`/message/send`, one-to-one and group) reaches a client
//! connected over a real WebSocket as a `direct` push, its content translated as each face
//! documents (docs/easemob.md "One message, every face", docs/maxim.md; the same mapping
//! `cross_face.rs` and `em_messages.rs` check through LeanCloud's REST history). Members who
//! are not online, and clients who are not members, get no push.

use crate::common::ws::Client;
use crate::common::*;
use confab_engine::model::Plan;
use confab_face_leancloud::realtime::proto::*;
use serde_json::{json, Value};

/// A push's `direct` part, checked to be one.
#[track_caller]
fn direct(p: &GenericCommand) -> &DirectCommand {
    assert_eq!(p.cmd, Some(CommandType::Direct as i32), "a direct push: {p:?}");
    p.direct_message.as_ref().unwrap_or_else(|| panic!("directMessage in {p:?}"))
}

/// A pushed message's `msg` parsed as JSON (a typed message).
#[track_caller]
fn typed(d: &DirectCommand) -> Value {
    let m = d.msg.as_deref().unwrap_or_else(|| panic!("msg in {d:?}"));
    serde_json::from_str(m).unwrap_or_else(|_| panic!("a typed message is JSON: {m}"))
}

// ---------------------------------------------------------------------- LeanCloud REST

#[tokio::test]
async fn a_leancloud_rest_send_reaches_an_online_member() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"name": "trio", "m": ["alice", "bob", "carol"]})).await;
    let mut bob = Client::login(&srv.base, app.app_id(), "bob").await;
    let mut dave = Client::login(&srv.base, app.app_id(), "dave").await;

    // plain text goes as it was sent
    let (id, ts) = app.send(&conv, "alice", "hello over REST").await;
    let p = bob.direct_push().await;
    let d = direct(&p);
    assert_eq!(d.cid.as_deref(), Some(conv.as_str()));
    assert_eq!(d.id.as_deref(), Some(id.as_str()));
    assert_eq!(d.from_peer_id.as_deref(), Some("alice"));
    assert_eq!(d.timestamp, Some(ts));
    assert_eq!(d.msg.as_deref(), Some("hello over REST"));
    assert_eq!(p.peer_id.as_deref(), Some("bob"), "the push names the session it is for");

    // a typed message (JSON text) goes as the same JSON
    let image = json!({"_lctype": -2, "_lcfile": {"url": "https://files.example/cat.png", "metaData": {"name": "cat.png"}}});
    let r =
        app.post(&format!("/1.2/rtm/conversations/{conv}/messages"), json!({"from_client": "carol", "message": image.to_string()})).await;
    let id = r.ok()["msg-id"].as_str().expect("msg-id").to_string();
    let p = bob.direct_push().await;
    let d = direct(&p);
    assert_eq!((d.id.as_deref(), d.from_peer_id.as_deref()), (Some(id.as_str()), Some("carol")));
    assert_eq!(typed(d), image);

    // dave is online but no member
    dave.no_direct().await;
    srv.stop().await;
}

// ---------------------------------------------------------------------- Easemob REST

#[tokio::test]
async fn easemob_sends_to_users_and_groups_reach_online_leancloud_clients() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    // an Easemob username is a LeanCloud client id
    let mut bob = Client::login(&srv.base, app.app.keys.leancloud.app_id.as_str(), "bob").await;
    let mut carol = Client::login(&srv.base, app.app.keys.leancloud.app_id.as_str(), "carol").await;

    // `/messages/users`: the pair's one-to-one conversation, a txt as LeanCloud's text message
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "hello bob"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["data"]["bob"].as_str().expect("data.bob").to_string();
    let pair =
        srv.engine().conversations().find_direct_conversation(&app.app, "alice", "bob").await.unwrap().expect("the pair's conversation");
    let p = bob.direct_push().await;
    let d = direct(&p);
    assert_eq!(d.id.as_deref(), Some(id.as_str()));
    assert_eq!(d.cid.as_deref(), Some(pair.id.to_string().as_str()));
    assert_eq!(d.from_peer_id.as_deref(), Some("alice"));
    assert_eq!(typed(d), json!({"_lctype": -1, "_lctext": "hello bob"}));

    // an img with ext: LeanCloud's image message, the ext as its attributes
    let url = "https://example.com/org/app/chatfiles/abc";
    let body = json!({"url": url, "filename": "a.jpg", "size": {"width": 10, "height": 20}});
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "img", "body": body, "ext": {"k": "v"}})).await;
    let id = r.body["data"]["bob"].as_str().expect("data.bob").to_string();
    let p = bob.direct_push().await;
    let d = direct(&p);
    assert_eq!(d.id.as_deref(), Some(id.as_str()));
    let m = typed(d);
    assert_eq!(m["_lctype"], -2, "{m}");
    assert_eq!(m["_lcfile"]["url"], url, "{m}");
    assert_eq!(m["_lcfile"]["metaData"]["width"], 10, "{m}");
    assert_eq!(m["_lcattrs"], json!({"k": "v"}), "{m}");
    carol.no_direct().await; // one-to-one: carol is not in it

    // `/messages/chatgroups`: the group's conversation, every online member but the sender
    let g = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob", "carol"]})).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    let gid = g.body["data"]["groupid"].as_str().expect("groupid").to_string();
    let r = app.post("/messages/chatgroups", json!({"from": "alice", "to": [gid], "type": "txt", "body": {"msg": "hi all"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["data"][&gid].as_str().expect("data.<groupid>").to_string();
    for c in [&mut bob, &mut carol] {
        let p = c.direct_push().await;
        let d = direct(&p);
        assert_eq!((d.id.as_deref(), d.cid.as_deref()), (Some(id.as_str()), Some(gid.as_str())));
        assert_eq!(d.from_peer_id.as_deref(), Some("alice"));
        assert_eq!(typed(d), json!({"_lctype": -1, "_lctext": "hi all"}));
    }
    srv.stop().await;
}

// ---------------------------------------------------------------------- MaxIM REST

/// A MaxIM call with this app's `app_id` and, when given, a user token; the envelope (code 200).
async fn mx(srv: &TestServer, app: &LcApp, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = srv.http.post(format!("{}{path}", srv.base)).header("app_id", &app.app.keys.maxim.app_id);
    if let Some(t) = token {
        req = req.header("access-token", t);
    }
    let r: Value = req.json(&body).send().await.expect("request").json().await.expect("a JSON envelope");
    assert_eq!(r["code"], 200, "{path}: {r}");
    r
}

/// A MaxIM user: registered, logged in; (numeric id, token).
async fn mx_user(srv: &TestServer, app: &LcApp, name: &str) -> (i64, String) {
    let r = mx(srv, app, "/user/register/v2", None, json!({"username": name, "password": "pw-123456"})).await;
    let id = r["data"]["user_id"].as_i64().expect("user_id");
    let r = mx(srv, app, "/token/user", None, json!({"name": name, "password": "pw-123456"})).await;
    (id, r["data"]["token"].as_str().expect("token").to_string())
}

/// `POST /message/send` with a user token; the one message id.
async fn mx_send(srv: &TestServer, app: &LcApp, token: &str, body: Value) -> i64 {
    let r = mx(srv, app, "/message/send", Some(token), body).await;
    let ids = r["msg_ids"].as_array().unwrap_or_else(|| panic!("msg_ids: {r}"));
    assert_eq!(ids.len(), 1, "{r}");
    ids[0].as_i64().expect("msg id")
}

#[tokio::test]
async fn maxim_sends_one_to_one_and_to_groups_reach_online_leancloud_clients() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let (_alice, alice_token) = mx_user(&srv, &app, "alice").await;
    let (bob_id, _) = mx_user(&srv, &app, "bob").await;
    let (carol_id, _) = mx_user(&srv, &app, "carol").await;
    // a MaxIM username is a LeanCloud client id
    let mut bob = Client::login(&srv.base, app.app_id(), "bob").await;
    let mut carol = Client::login(&srv.base, app.app_id(), "carol").await;

    // one-to-one (type 1): LeanCloud's unique conversation of the pair, TEXT as a text message
    let mid = mx_send(&srv, &app, &alice_token, json!({"type": 1, "targets": [bob_id], "content_type": 0, "content": "ping"})).await;
    let pair = app.conversation(json!({"m": ["alice", "bob"], "unique": true})).await;
    let p = bob.direct_push().await;
    let d = direct(&p);
    assert_eq!(d.id.as_deref(), Some(mid.to_string().as_str()));
    assert_eq!(d.cid.as_deref(), Some(pair.as_str()));
    assert_eq!(d.from_peer_id.as_deref(), Some("alice"));
    assert_eq!(typed(d), json!({"_lctype": -1, "_lctext": "ping"}));

    // an IMAGE: LeanCloud's image message with its file
    let att = json!({"url": "https://files.example/cat.png", "dName": "cat.png", "fLen": 508728, "width": 828, "height": 600});
    let body = json!({"type": 1, "targets": [bob_id], "content_type": 1, "content": "", "attachment": att.to_string()});
    let mid = mx_send(&srv, &app, &alice_token, body).await;
    let p = bob.direct_push().await;
    let d = direct(&p);
    assert_eq!(d.id.as_deref(), Some(mid.to_string().as_str()));
    let m = typed(d);
    assert_eq!(m["_lctype"], -2, "{m}");
    assert_eq!(m["_lcfile"]["url"], "https://files.example/cat.png", "{m}");
    assert_eq!(m["_lcfile"]["metaData"], json!({"name": "cat.png", "size": 508728, "width": 828, "height": 600}), "{m}");
    carol.no_direct().await; // one-to-one: carol is not in it

    // a group (type 2): the group's conversation, every online member
    let g = mx(&srv, &app, "/group/create", Some(&alice_token), json!({"name": "g", "type": 0, "user_list": [bob_id, carol_id]})).await;
    let gid = g["data"]["group_id"].as_i64().expect("group_id");
    let mid = mx_send(&srv, &app, &alice_token, json!({"type": 2, "targets": [gid], "content_type": 0, "content": "to the group"})).await;
    for c in [&mut bob, &mut carol] {
        let p = c.direct_push().await;
        let d = direct(&p);
        assert_eq!((d.id.as_deref(), d.cid.as_deref()), (Some(mid.to_string().as_str()), Some(gid.to_string().as_str())));
        assert_eq!(d.from_peer_id.as_deref(), Some("alice"));
        assert_eq!(typed(d), json!({"_lctype": -1, "_lctext": "to the group"}));
    }
    srv.stop().await;
}
