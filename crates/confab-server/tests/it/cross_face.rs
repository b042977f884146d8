//! One engine, two faces, over real HTTP (and one real WebSocket): a MaxIM user is a LeanCloud
//! client with the same id; a LeanCloud client has a numeric id MaxIM can address; a MaxIM
//! one-to-one conversation is LeanCloud's `unique: true` conversation of the pair; a MaxIM group
//! is a LeanCloud conversation; messages, content types, recalls, read positions and members
//! cross in both directions. The contracts are /work/shared/specs/maxim-rest.md §1–§5 and
//! docs/leancloud-rest.md; content translation is the faces' `render.rs`.

use crate::common::ws::Client;
use crate::common::*;
use confab_engine::model::Plan;
use confab_face_leancloud::realtime::proto::*;
use reqwest::Method;
use serde_json::{json, Value};

// ---------------------------------------------------------------------- MaxIM helper

/// The app's MaxIM face: `app_id` header plus the admin token or a user token.
struct Mx {
    base: String,
    http: reqwest::Client,
    app_id: String,
    admin: String,
}

/// Who a MaxIM call acts as.
enum As<'a> {
    /// The admin token, no `user_id`.
    Admin,
    /// The admin token acting as this user (`user_id` header).
    AdminFor(i64),
    /// A user token.
    Token(&'a str),
    /// No `access-token` (registration, login).
    Anon,
}

impl Mx {
    fn of(srv: &TestServer, app: &LcApp) -> Mx {
        Mx {
            base: srv.base.clone(),
            http: srv.http.clone(),
            app_id: app.app.keys.maxim.app_id.clone(),
            admin: app.app.keys.maxim.admin_token.clone(),
        }
    }

    /// Any call; the whole JSON envelope (HTTP status must be 200, as MaxIM always answers).
    async fn call(&self, method: Method, path: &str, who: As<'_>, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{}", self.base, path)).header("app_id", &self.app_id);
        req = match who {
            As::Admin => req.header("access-token", &self.admin),
            As::AdminFor(n) => req.header("access-token", &self.admin).header("user_id", n.to_string()),
            As::Token(t) => req.header("access-token", t),
            As::Anon => req,
        };
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        assert_eq!(status, 200, "MaxIM answers HTTP 200 ({path}): {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON envelope from {path}: {text}"))
    }

    /// A call that must succeed (`code` 200); the envelope.
    async fn ok(&self, method: Method, path: &str, who: As<'_>, body: Option<Value>) -> Value {
        let r = self.call(method, path, who, body).await;
        assert_eq!(r["code"], 200, "{path}: {r}");
        r
    }

    /// `POST /user/register/v2`: the new user's numeric id.
    async fn register(&self, name: &str) -> i64 {
        let r = self.ok(Method::POST, "/user/register/v2", As::Anon, Some(json!({"username": name, "password": "pw-123456"}))).await;
        r["data"]["user_id"].as_i64().expect("user_id")
    }

    /// `POST /token/user`: a user token.
    async fn token(&self, name: &str) -> String {
        let r = self.ok(Method::POST, "/token/user", As::Anon, Some(json!({"name": name, "password": "pw-123456"}))).await;
        r["data"]["token"].as_str().expect("token").to_string()
    }

    /// `POST /message/send`; the one message id.
    async fn send(&self, who: As<'_>, body: Value) -> i64 {
        let r = self.ok(Method::POST, "/message/send", who, Some(body)).await;
        let ids = r["msg_ids"].as_array().unwrap_or_else(|| panic!("msg_ids: {r}"));
        assert_eq!(ids.len(), 1, "{r}");
        ids[0].as_i64().expect("msg id")
    }

    /// A text to a user (type 1) or group (type 2).
    async fn text(&self, who: As<'_>, kind: i64, target: i64, text: &str) -> i64 {
        self.send(who, json!({"type": kind, "targets": [target], "content_type": 0, "content": text})).await
    }

    /// `GET /message/conversation`: the messages, newest first.
    async fn history(&self, who: As<'_>, opposite: i64) -> Vec<Value> {
        let r = self.ok(Method::GET, &format!("/message/conversation?opposite_id={opposite}&limit=100"), who, None).await;
        r["data"]["messages"].as_array().unwrap_or_else(|| panic!("messages: {r}")).clone()
    }

    /// `GET /message/unread`: `{conversation uid: num}`.
    async fn unread(&self, who: As<'_>) -> Vec<(i64, i64)> {
        let r = self.ok(Method::GET, "/message/unread", who, None).await;
        r["data"]
            .as_array()
            .unwrap_or_else(|| panic!("unread: {r}"))
            .iter()
            .map(|e| (e["conversation_id"]["uid"].as_i64().unwrap(), e["num"].as_i64().unwrap()))
            .collect()
    }
}

// ---------------------------------------------------------------------- LeanCloud helpers

fn msgs_path(conv: &str) -> String {
    format!("/1.2/rtm/conversations/{conv}/messages")
}

/// LeanCloud REST history of a conversation, newest first.
async fn lc_history(app: &LcApp, conv: &str) -> Vec<Value> {
    let r = app.get(&msgs_path(conv)).await;
    r.ok().as_array().unwrap_or_else(|| panic!("history of {conv}: {:?}", r.body)).clone()
}

/// The LeanCloud record of message `id` in a history.
#[track_caller]
fn record(h: &[Value], id: i64) -> Value {
    h.iter()
        .find(|m| m["msg-id"].as_str().and_then(|s| s.parse::<i64>().ok()) == Some(id))
        .unwrap_or_else(|| panic!("message {id} in LeanCloud history {h:?}"))
        .clone()
}

/// A record's `data` parsed as JSON.
#[track_caller]
fn data_json(rec: &Value) -> Value {
    let d = rec["data"].as_str().unwrap_or_else(|| panic!("data string in {rec}"));
    serde_json::from_str(d).unwrap_or_else(|_| panic!("data is JSON: {d}"))
}

/// The MaxIM history item with this id.
#[track_caller]
fn item(h: &[Value], id: i64) -> Value {
    h.iter().find(|m| m["msg_id"] == id).unwrap_or_else(|| panic!("message {id} in MaxIM history {h:?}")).clone()
}

/// LeanCloud's unique conversation of exactly these clients (made if missing).
async fn lc_unique(app: &LcApp, members: &[&str]) -> String {
    app.conversation(json!({"m": members, "unique": true})).await
}

/// LeanCloud REST send; (msg-id as a number, timestamp).
async fn lc_send(app: &LcApp, conv: &str, from: &str, message: Value) -> (i64, i64) {
    let r = app.post(&msgs_path(conv), json!({"from_client": from, "message": message})).await;
    let b = r.ok();
    (b["msg-id"].as_str().expect("msg-id").parse().expect("numeric msg-id"), b["timestamp"].as_i64().expect("timestamp"))
}

async fn lc_unread(app: &LcApp, client: &str, conv: Option<&str>) -> i64 {
    let path = match conv {
        Some(c) => format!("/1.2/rtm/clients/{client}/unread-count{}", qs(&[("conv_id", c)])),
        None => format!("/1.2/rtm/clients/{client}/unread-count"),
    };
    app.get(&path).await.ok()["count"].as_i64().expect("count")
}

async fn setup() -> (TestServer, LcApp, Mx) {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let mx = Mx::of(&srv, &app);
    (srv, app, mx)
}

// ---------------------------------------------------------------------- identity

#[tokio::test]
async fn a_maxim_user_is_a_leancloud_client_with_its_username_as_id() {
    let (srv, app, mx) = setup().await;
    let alice = mx.register("alice").await;
    let u = srv.engine().users().get_user(&app.app, "alice").await.expect("engine user 'alice'");
    assert_eq!(u.num, alice, "the MaxIM user_id is the engine user's numeric id");
    let t = mx.token("alice").await;
    let p = mx.ok(Method::GET, "/user/profile", As::Token(&t), None).await;
    assert_eq!(p["data"]["username"], "alice");
    assert_eq!(p["data"]["user_id"], alice);

    // LeanCloud names her by "alice": a conversation with her, a message from her
    let conv = app.conversation(json!({"m": ["alice", "lc_bob"], "name": "mixed"})).await;
    let (mid, _) = lc_send(&app, &conv, "alice", json!("from the LeanCloud side")).await;
    assert_eq!(record(&lc_history(&app, &conv).await, mid)["from"], "alice");
    // the conversation is hers from MaxIM's side too: MaxIM sees it as a group she is in
    let h = mx.history(As::Token(&t), conv.parse().unwrap()).await;
    let m = item(&h, mid);
    assert_eq!(m["from_xid"]["uid"], alice);
    assert_eq!(m["content"], "from the LeanCloud side");
    // and her unread count exists on the LeanCloud side
    assert_eq!(lc_unread(&app, "alice", None).await, 0, "her own message is not unread");
    srv.stop().await;
}

#[tokio::test]
async fn a_leancloud_only_client_gets_a_numeric_id_maxim_can_address() {
    let (srv, app, mx) = setup().await;
    let alice = mx.register("alice").await;
    // "lc-carol.1" exists only because LeanCloud named her (not a valid MaxIM username)
    let other = app.conversation(json!({"m": ["lc-carol.1", "lc_dave"]})).await;
    let carol = srv.engine().users().get_user(&app.app, "lc-carol.1").await.expect("LeanCloud client is an engine user").num;
    assert!(carol > 0);
    let dave = srv.engine().users().get_user(&app.app, "lc_dave").await.unwrap().num;
    assert_ne!(carol, dave);

    // MaxIM alice → carol by number: lands in LeanCloud's unique conversation of the pair
    let mid = mx.text(As::AdminFor(alice), 1, carol, "hello carol").await;
    let unique = lc_unique(&app, &["lc-carol.1", "alice"]).await;
    assert_ne!(unique, other);
    let rec = record(&lc_history(&app, &unique).await, mid);
    assert_eq!(rec["from"], "alice");
    assert_eq!(rec["conv-id"], unique.as_str());
    assert_eq!(data_json(&rec), json!({"_lctype": -1, "_lctext": "hello carol"}));
    assert_eq!(lc_unread(&app, "lc-carol.1", Some(&unique)).await, 1);

    // carol answers over LeanCloud; MaxIM alice sees it from carol's number, to her own
    let (reply, _) = lc_send(&app, &unique, "lc-carol.1", json!("hi alice")).await;
    let h = mx.history(As::AdminFor(alice), carol).await;
    let m = item(&h, reply);
    assert_eq!((m["from_xid"]["uid"].as_i64(), m["to_xid"]["uid"].as_i64()), (Some(carol), Some(alice)));
    assert_eq!((m["ctype"].as_str(), m["content"].as_str()), (Some("TEXT"), Some("hi alice")));
    let m = item(&h, mid);
    assert_eq!((m["from_xid"]["uid"].as_i64(), m["to_xid"]["uid"].as_i64()), (Some(alice), Some(carol)));
    // the admin token may send as carol too (from_user_id), into the same conversation
    let as_carol =
        mx.send(As::Admin, json!({"type": 1, "targets": [alice], "from_user_id": carol, "content_type": 0, "content": "via admin"})).await;
    assert_eq!(record(&lc_history(&app, &unique).await, as_carol)["from"], "lc-carol.1");
    // MaxIM invites her into a group by number
    let g = mx.ok(Method::POST, "/group/create", As::AdminFor(alice), Some(json!({"name": "g", "user_list": [carol, dave]}))).await;
    let gid = g["data"]["group_id"].as_i64().unwrap();
    let members = conv_members(&app, &gid.to_string()).await;
    assert_eq!(members, vec!["alice", "lc-carol.1", "lc_dave"]);
    srv.stop().await;
}

/// `m` of a conversation by `where objectId`, sorted.
async fn conv_members(app: &LcApp, id: &str) -> Vec<String> {
    let r = app.get(&format!("/1.2/rtm/conversations{}", qs(&[("where", &json!({"objectId": id}).to_string())]))).await;
    let results = r.ok()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1, "conversation {id} is visible over LeanCloud REST: {results:?}");
    let mut m: Vec<String> = results[0]["m"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    m.sort();
    m
}

// ---------------------------------------------------------------------- one-to-one

#[tokio::test]
async fn a_maxim_one_to_one_is_the_leancloud_unique_conversation_of_the_pair() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let b = mx.register("bob").await;
    let ta = mx.token("alice").await;
    let tb = mx.token("bob").await;

    // MaxIM first, then LeanCloud asks for the unique conversation of [bob, alice]
    let m1 = mx.text(As::Token(&ta), 1, b, "hello bob").await;
    let conv = lc_unique(&app, &["bob", "alice"]).await;
    let again = lc_unique(&app, &["alice", "bob"]).await;
    assert_eq!(conv, again, "member order does not matter");
    let h = lc_history(&app, &conv).await;
    assert_eq!(h.len(), 1, "{h:?}");
    let rec = record(&h, m1);
    assert_eq!(rec["from"], "alice");
    assert_eq!(data_json(&rec), json!({"_lctype": -1, "_lctext": "hello bob"}), "MaxIM text is a LeanCloud TextMessage");
    // the conversation looks like a LeanCloud unique conversation of the two
    let r = app.get(&format!("/1.2/rtm/conversations{}", qs(&[("where", &json!({"objectId": conv}).to_string())]))).await;
    let c = r.ok()["results"][0].clone();
    assert_eq!(c["unique"], true, "{c}");
    assert!(c["uniqueId"].is_string(), "{c}");
    assert_eq!(conv_members(&app, &conv).await, vec!["alice", "bob"]);

    // a LeanCloud typed text in that conversation: MaxIM TEXT "hi", both sides see it
    let (m2, _) = lc_send(&app, &conv, "bob", json!({"_lctype": -1, "_lctext": "hi"})).await;
    for (token, peer, label) in [(&ta, b, "alice"), (&tb, a, "bob")] {
        let h = mx.history(As::Token(token), peer).await;
        assert_eq!(h.len(), 2, "{label}: {h:?}");
        let m = item(&h, m2);
        assert_eq!(m["ctype"], "TEXT", "{label}: {m}");
        assert_eq!(m["content"], "hi", "{label}: {m}");
        assert_eq!(m["from_xid"]["uid"], b, "{label}: {m}");
        assert_eq!(m["to_xid"]["uid"], a, "{label}: {m}");
        let m = item(&h, m1);
        assert_eq!((m["ctype"].as_str(), m["content"].as_str()), (Some("TEXT"), Some("hello bob")));
        assert_eq!(m["from_xid"]["uid"], a);
        assert_eq!(m["to_xid"]["uid"], b);
    }
    // a plain (untyped) LeanCloud text shows as TEXT with the text as it is
    let (m3, _) = lc_send(&app, &conv, "alice", json!("plain words")).await;
    let m = item(&mx.history(As::Token(&tb), a).await, m3);
    assert_eq!((m["ctype"].as_str(), m["content"].as_str()), (Some("TEXT"), Some("plain words")));
    // MaxIM bob → alice goes into the same conversation
    let m4 = mx.text(As::Token(&tb), 1, a, "back to you").await;
    assert_eq!(record(&lc_history(&app, &conv).await, m4)["from"], "bob");
    // MaxIM lists the conversation under the peer's number
    let unread = mx.unread(As::Token(&ta)).await;
    assert_eq!(unread, vec![(b, 2)], "alice: bob's LeanCloud 'hi' and MaxIM 'back to you'");
    srv.stop().await;
}

#[tokio::test]
async fn a_leancloud_unique_conversation_made_first_is_the_one_maxim_uses() {
    let (srv, app, mx) = setup().await;
    let c = mx.register("carol").await;
    let d = mx.register("dave").await;
    let conv = lc_unique(&app, &["carol", "dave"]).await;
    // a non-unique conversation of the same two is a different one (a group, to MaxIM)
    let plain = app.conversation(json!({"m": ["carol", "dave"]})).await;
    assert_ne!(conv, plain);
    let (lm, _) = lc_send(&app, &conv, "dave", json!({"_lctype": -1, "_lctext": "first"})).await;
    let m = mx.text(As::AdminFor(c), 1, d, "second").await;
    let h = lc_history(&app, &conv).await;
    assert_eq!(h.len(), 2, "{h:?}");
    record(&h, m);
    assert!(lc_history(&app, &plain).await.is_empty());
    let h = mx.history(As::AdminFor(d), c).await;
    assert_eq!(h.iter().map(|m| m["msg_id"].as_i64().unwrap()).collect::<Vec<_>>(), vec![m, lm], "newest first");
    // the plain one is reachable from MaxIM as a group (by its id), and is separate
    let mid = mx.text(As::AdminFor(c), 2, plain.parse().unwrap(), "to the pair-group").await;
    record(&lc_history(&app, &plain).await, mid);
    assert_eq!(mx.history(As::AdminFor(d), c).await.len(), 2);
    srv.stop().await;
}

// ---------------------------------------------------------------------- groups

#[tokio::test]
async fn a_maxim_group_is_a_leancloud_conversation() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let b = mx.register("bob").await;
    let ta = mx.token("alice").await;
    let tb = mx.token("bob").await;
    let g = mx.ok(Method::POST, "/group/create", As::Token(&ta), Some(json!({"name": "team", "description": "d", "user_list": [b]}))).await;
    let gid = g["data"]["group_id"].as_i64().expect("group_id");
    let cid = gid.to_string();

    // LeanCloud sees it, with its members, name and creator
    let r = app.get(&format!("/1.2/rtm/conversations{}", qs(&[("where", &json!({"objectId": cid}).to_string())]))).await;
    let results = r.ok()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["name"], "team");
    assert_eq!(results[0]["c"], "alice");
    assert_eq!(conv_members(&app, &cid).await, vec!["alice", "bob"]);
    // and in the member query too
    let r = app.get(&format!("/1.2/rtm/conversations{}", qs(&[("where", &json!({"m": "bob"}).to_string())]))).await;
    assert!(r.ok()["results"].as_array().unwrap().iter().any(|c| c["objectId"] == cid.as_str()));

    // LeanCloud REST message → MaxIM group history
    let (lm, _) = lc_send(&app, &cid, "bob", json!({"_lctype": -1, "_lctext": "hello team"})).await;
    let h = mx.history(As::Token(&ta), gid).await;
    let m = item(&h, lm);
    assert_eq!((m["ctype"].as_str(), m["content"].as_str()), (Some("TEXT"), Some("hello team")));
    assert_eq!(m["from_xid"]["uid"], b);
    assert_eq!(m["to_xid"]["uid"], gid, "a group message is to the group");

    // MaxIM group message → LeanCloud history
    let mm = mx.text(As::Token(&tb), 2, gid, "from maxim").await;
    let rec = record(&lc_history(&app, &cid).await, mm);
    assert_eq!(rec["from"], "bob");
    assert_eq!(data_json(&rec), json!({"_lctype": -1, "_lctext": "from maxim"}));
    assert_eq!(lc_unread(&app, "alice", Some(&cid)).await, 2);

    // LeanCloud adds members over REST: they appear in MaxIM's member list (by number)
    app.post(&format!("/1.2/rtm/conversations/{cid}/members"), json!({"client_ids": ["lc_carol", "dave"]})).await.ok();
    let carol = srv.engine().users().get_user(&app.app, "lc_carol").await.unwrap().num;
    let dave = srv.engine().users().get_user(&app.app, "dave").await.unwrap().num;
    let r = mx.ok(Method::GET, &format!("/group/member_list?group_id={gid}"), As::Token(&ta), None).await;
    let mut ids: Vec<i64> = r["data"].as_array().unwrap().iter().map(|m| m["user_id"].as_i64().unwrap()).collect();
    ids.sort();
    let mut want = vec![a, b, carol, dave];
    want.sort();
    assert_eq!(ids, want, "{r}");
    assert_eq!(r["total"], 4);
    let info = mx.ok(Method::GET, &format!("/group/info?group_id={gid}"), As::Token(&ta), None).await;
    assert_eq!(info["data"]["count"], 4);
    assert_eq!(info["data"]["owner_id"], a);
    // a LeanCloud-added member can speak in the group from MaxIM (admin acting as them) and reads it
    let cm = mx.text(As::AdminFor(carol), 2, gid, "carol here").await;
    assert_eq!(record(&lc_history(&app, &cid).await, cm)["from"], "lc_carol");
    assert!(mx.history(As::AdminFor(carol), gid).await.iter().any(|m| m["msg_id"] == cm));
    // MaxIM invites; LeanCloud sees the member; LeanCloud removes one; MaxIM no longer lists them
    let e = mx.register("erin").await;
    mx.ok(Method::POST, "/group/invite", As::Token(&ta), Some(json!({"group_id": gid, "user_list": [e]}))).await;
    assert!(conv_members(&app, &cid).await.contains(&"erin".to_string()));
    app.delete(&format!("/1.2/rtm/conversations/{cid}/members"), Some(json!({"client_ids": ["dave"]}))).await.ok();
    let r = mx.ok(Method::GET, &format!("/group/member_list?group_id={gid}"), As::Token(&ta), None).await;
    assert!(!r["data"].as_array().unwrap().iter().any(|m| m["user_id"] == dave), "{r}");
    assert_eq!(r["total"], 4);
    srv.stop().await;
}

#[tokio::test]
async fn a_leancloud_conversation_is_a_maxim_group() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let conv = app.conversation(json!({"name": "lc-made", "c": "alice", "m": ["alice", "lc_x", "lc_y"]})).await;
    let gid: i64 = conv.parse().unwrap();
    let info = mx.ok(Method::GET, &format!("/group/info?group_id={gid}"), As::AdminFor(a), None).await;
    assert_eq!(info["data"]["name"], "lc-made");
    assert_eq!(info["data"]["count"], 3);
    assert_eq!(info["data"]["owner_id"], a, "the LeanCloud creator owns it");
    let joined = mx.call(Method::GET, &format!("/group/member_list?group_id={gid}"), As::AdminFor(a), None).await;
    assert_eq!(joined["data"].as_array().map(Vec::len), Some(3), "{joined}");
    let m = mx.text(As::AdminFor(a), 2, gid, "hi all").await;
    let rec = record(&lc_history(&app, &conv).await, m);
    assert_eq!(rec["from"], "alice");
    srv.stop().await;
}

// ---------------------------------------------------------------------- content

#[tokio::test]
async fn images_cross_both_ways() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let b = mx.register("bob").await;
    let conv = lc_unique(&app, &["alice", "bob"]).await;

    // MaxIM image → LeanCloud ImageMessage (_lctype -2 with _lcfile)
    let att = json!({"url": "https://files.example/cat.png", "dName": "cat.png", "fLen": 508728, "width": 828, "height": 600});
    let mid =
        mx.send(As::AdminFor(a), json!({"type": 1, "targets": [b], "content_type": 1, "content": "", "attachment": att.to_string()})).await;
    let d = data_json(&record(&lc_history(&app, &conv).await, mid));
    assert_eq!(d["_lctype"], -2, "{d}");
    assert_eq!(d["_lcfile"]["url"], "https://files.example/cat.png", "{d}");
    assert_eq!(d["_lcfile"]["metaData"], json!({"name": "cat.png", "size": 508728, "width": 828, "height": 600}), "{d}");
    assert!(d.get("_lctext").is_none(), "no text: {d}");
    assert!(d.get("_lcattrs").is_none(), "no ext, no attributes: {d}");
    // an app extension that is a JSON object becomes the typed message's attributes
    let with_ext = mx
        .send(As::AdminFor(a), json!({"type": 1, "targets": [b], "content_type": 0, "content": "tagged", "ext": "{\"mood\":\"happy\"}"}))
        .await;
    let d = data_json(&record(&lc_history(&app, &conv).await, with_ext));
    assert_eq!((d["_lctext"].as_str(), &d["_lcattrs"]), (Some("tagged"), &json!({"mood": "happy"})), "{d}");
    // MaxIM shows its own image as it was sent
    let m = item(&mx.history(As::AdminFor(b), a).await, mid);
    assert_eq!(m["ctype"], "IMAGE");
    assert_eq!(serde_json::from_str::<Value>(m["attachment"].as_str().unwrap()).unwrap(), att);

    // with a caption
    let mid2 = mx
        .send(As::AdminFor(a), json!({"type": 1, "targets": [b], "content_type": 1, "content": "my cat", "attachment": att.to_string()}))
        .await;
    let d = data_json(&record(&lc_history(&app, &conv).await, mid2));
    assert_eq!((d["_lctype"].as_i64(), d["_lctext"].as_str()), (Some(-2), Some("my cat")), "{d}");

    // LeanCloud ImageMessage → MaxIM IMAGE with a MaxIM attachment
    let lc_image = json!({
        "_lctype": -2,
        "_lctext": "look",
        "_lcfile": {"url": "https://files.example/dog.jpg", "objId": "5f0000aa", "metaData": {"name": "dog.jpg", "format": "jpg", "size": 2048, "width": 10, "height": 20}},
        "_lcattrs": {"k": "v"}
    });
    let (lm, _) = lc_send(&app, &conv, "bob", lc_image).await;
    let m = item(&mx.history(As::AdminFor(a), b).await, lm);
    assert_eq!(m["ctype"], "IMAGE", "{m}");
    assert_eq!(m["content"], "look", "{m}");
    let att: Value = serde_json::from_str(m["attachment"].as_str().unwrap()).expect("attachment is JSON text");
    assert_eq!(att, json!({"url": "https://files.example/dog.jpg", "dName": "dog.jpg", "fLen": 2048, "width": 10, "height": 20}));
    assert_eq!(serde_json::from_str::<Value>(m["ext"].as_str().unwrap()).unwrap(), json!({"k": "v"}), "_lcattrs shows as ext");
    // and LeanCloud keeps its own content untouched
    assert_eq!(data_json(&record(&lc_history(&app, &conv).await, lm))["_lcfile"]["objId"], "5f0000aa");
    srv.stop().await;
}

#[tokio::test]
async fn other_types_and_location_cross() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let b = mx.register("bob").await;
    let conv = lc_unique(&app, &["alice", "bob"]).await;
    // MaxIM location → _lcloc
    let mid = mx
        .send(As::AdminFor(a), json!({"type": 1, "targets": [b], "content_type": 5, "content": "here", "attachment": json!({"lat": 31.2, "lon": 121.5}).to_string()}))
        .await;
    let d = data_json(&record(&lc_history(&app, &conv).await, mid));
    assert_eq!(d, json!({"_lctype": -5, "_lctext": "here", "_lcloc": {"latitude": 31.2, "longitude": 121.5}}));
    // LeanCloud location → MaxIM LOCATION
    let (lm, _) =
        lc_send(&app, &conv, "bob", json!({"_lctype": -5, "_lctext": "there", "_lcloc": {"latitude": 1.5, "longitude": 2.5}})).await;
    let m = item(&mx.history(As::AdminFor(a), b).await, lm);
    assert_eq!((m["ctype"].as_str(), m["content"].as_str()), (Some("LOCATION"), Some("there")));
    assert_eq!(serde_json::from_str::<Value>(m["attachment"].as_str().unwrap()).unwrap(), json!({"lat": 1.5, "lon": 2.5}));
    // MaxIM audio / file → LeanCloud audio / file messages
    let audio = json!({"url": "https://f.example/a.amr", "dName": "a.amr", "fLen": 1670, "duration": 1});
    let am = mx
        .send(As::AdminFor(a), json!({"type": 1, "targets": [b], "content_type": 2, "content": "", "attachment": audio.to_string()}))
        .await;
    let d = data_json(&record(&lc_history(&app, &conv).await, am));
    assert_eq!(d["_lctype"], -3);
    assert_eq!(d["_lcfile"]["metaData"], json!({"name": "a.amr", "size": 1670, "duration": 1}));
    let file = json!({"url": "https://f.example/r.pdf", "dName": "r.pdf"});
    let fm = mx
        .send(As::AdminFor(a), json!({"type": 1, "targets": [b], "content_type": 4, "content": "", "attachment": file.to_string()}))
        .await;
    let d = data_json(&record(&lc_history(&app, &conv).await, fm));
    assert_eq!((d["_lctype"].as_i64(), d["_lcfile"]["url"].as_str()), (Some(-6), Some("https://f.example/r.pdf")));
    srv.stop().await;
}

// ---------------------------------------------------------------------- recall

#[tokio::test]
async fn recall_through_one_face_shows_in_the_other() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let b = mx.register("bob").await;
    let ta = mx.token("alice").await;
    let conv = lc_unique(&app, &["alice", "bob"]).await;

    // MaxIM recall (the sender's token) → LeanCloud sees the recall marker
    let m1 = mx.text(As::Token(&ta), 1, b, "oops").await;
    let keep = mx.text(As::Token(&ta), 1, b, "keep").await;
    mx.ok(Method::POST, "/message/recall", As::Token(&ta), Some(json!({"conversation_id": b, "msg_id": m1}))).await;
    let h = lc_history(&app, &conv).await;
    let rec = record(&h, m1);
    assert_eq!(data_json(&rec), json!({"_lctype": -127}));
    assert_eq!(rec["recall"], true);
    assert!(rec["patch-timestamp"].is_i64());
    assert_eq!(data_json(&record(&h, keep))["_lctext"], "keep");
    // MaxIM's own history leaves it out
    let h = mx.history(As::AdminFor(b), a).await;
    assert!(h.iter().all(|m| m["msg_id"] != m1), "{h:?}");
    item(&h, keep);

    // MaxIM recall through /message/send content_type 10
    let m2 = mx.text(As::Token(&ta), 1, b, "also oops").await;
    mx.ok(
        Method::POST,
        "/message/send",
        As::Token(&ta),
        Some(json!({"type": 1, "targets": [b], "content_type": 10, "content": "", "related_mid": m2})),
    )
    .await;
    assert_eq!(data_json(&record(&lc_history(&app, &conv).await, m2)), json!({"_lctype": -127}));

    // LeanCloud recall → gone from MaxIM history (both sides)
    let (lm, lt) = lc_send(&app, &conv, "bob", json!({"_lctype": -1, "_lctext": "retract me"})).await;
    assert!(mx.history(As::Token(&ta), b).await.iter().any(|m| m["msg_id"] == lm));
    app.put(&format!("{}/{lm}/recall", msgs_path(&conv)), json!({"from_client": "bob", "timestamp": lt})).await.ok();
    assert!(mx.history(As::Token(&ta), b).await.iter().all(|m| m["msg_id"] != lm));
    assert!(mx.history(As::AdminFor(b), a).await.iter().all(|m| m["msg_id"] != lm));
    // and it no longer counts as unread for alice on either face
    assert_eq!(lc_unread(&app, "alice", Some(&conv)).await, 0);
    assert!(mx.unread(As::Token(&ta)).await.is_empty());
    // bob cannot recall alice's message through MaxIM
    let tb = mx.token("bob").await;
    let r = mx.call(Method::POST, "/message/recall", As::Token(&tb), Some(json!({"conversation_id": a, "msg_id": keep}))).await;
    assert_ne!(r["code"], 200, "{r}");
    assert_eq!(data_json(&record(&lc_history(&app, &conv).await, keep))["_lctext"], "keep");
    srv.stop().await;
}

#[tokio::test]
async fn group_recall_crosses_too() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let b = mx.register("bob").await;
    let g = mx.ok(Method::POST, "/group/create", As::AdminFor(a), Some(json!({"name": "g", "user_list": [b]}))).await;
    let gid = g["data"]["group_id"].as_i64().unwrap();
    let cid = gid.to_string();
    let m = mx.text(As::AdminFor(a), 2, gid, "group oops").await;
    mx.ok(Method::POST, "/message/recall", As::AdminFor(a), Some(json!({"conversation_id": gid, "msg_id": m}))).await;
    assert_eq!(data_json(&record(&lc_history(&app, &cid).await, m)), json!({"_lctype": -127}));
    let (lm, lt) = lc_send(&app, &cid, "bob", json!("lc oops")).await;
    app.put(&format!("{}/{lm}/recall", msgs_path(&cid)), json!({"from_client": "bob", "timestamp": lt})).await.ok();
    assert!(mx.history(As::AdminFor(a), gid).await.is_empty());
    srv.stop().await;
}

// ---------------------------------------------------------------------- read position

#[tokio::test]
async fn maxim_acks_move_the_read_position_leancloud_reports() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let b = mx.register("bob").await;
    let tb = mx.token("bob").await;
    let conv = lc_unique(&app, &["alice", "bob"]).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(lc_send(&app, &conv, "alice", json!(format!("m{i}"))).await.0);
    }
    assert_eq!(lc_unread(&app, "bob", None).await, 4);
    assert_eq!(mx.unread(As::Token(&tb)).await, vec![(a, 4)]);

    // GET /message/ack up to the second message
    mx.ok(Method::GET, &format!("/message/ack?conversation_id={a}&device_sn=0&msg_id={}", ids[1]), As::Token(&tb), None).await;
    assert_eq!(lc_unread(&app, "bob", Some(&conv)).await, 2);
    assert_eq!(mx.unread(As::Token(&tb)).await, vec![(a, 2)]);
    // an older ack does not move it back
    mx.ok(Method::GET, &format!("/message/ack?conversation_id={a}&device_sn=0&msg_id={}", ids[0]), As::Token(&tb), None).await;
    assert_eq!(lc_unread(&app, "bob", None).await, 2);
    // READ_ACK (content_type 9) through /message/send up to the last one
    mx.ok(
        Method::POST,
        "/message/send",
        As::Token(&tb),
        Some(json!({"type": 1, "targets": [a], "content_type": 9, "content": "", "related_mid": ids[3]})),
    )
    .await;
    assert_eq!(lc_unread(&app, "bob", None).await, 0);
    assert!(mx.unread(As::Token(&tb)).await.is_empty());
    // the sender sees it read in MaxIM history
    let h = mx.history(As::AdminFor(a), b).await;
    assert_eq!(item(&h, ids[3])["status"], "READ");

    // a group: the same
    let g = mx.ok(Method::POST, "/group/create", As::AdminFor(a), Some(json!({"name": "g", "user_list": [b]}))).await;
    let gid = g["data"]["group_id"].as_i64().unwrap();
    let (g1, _) = lc_send(&app, &gid.to_string(), "alice", json!("g1")).await;
    lc_send(&app, &gid.to_string(), "alice", json!("g2")).await;
    assert_eq!(lc_unread(&app, "bob", Some(&gid.to_string())).await, 2);
    mx.ok(Method::GET, &format!("/message/ack?conversation_id={gid}&device_sn=0&msg_id={g1}"), As::Token(&tb), None).await;
    assert_eq!(lc_unread(&app, "bob", Some(&gid.to_string())).await, 1);
    assert_eq!(mx.unread(As::Token(&tb)).await, vec![(gid, 1)]);
    srv.stop().await;
}

// ---------------------------------------------------------------------- online delivery

#[tokio::test]
async fn maxim_sends_reach_online_leancloud_clients() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("alice").await;
    let mut bob_rt = Client::login(&srv.base, app.app_id(), "bob").await;
    let bob = srv.engine().users().get_user(&app.app, "bob").await.expect("an open session makes the client a user").num;

    // one-to-one
    let mid = mx.text(As::AdminFor(a), 1, bob, "ping").await;
    let p = bob_rt.push_of(CommandType::Direct).await;
    let d = p.direct_message.expect("direct");
    assert_eq!(d.id.as_deref(), Some(mid.to_string().as_str()));
    assert_eq!(d.from_peer_id.as_deref(), Some("alice"));
    assert_eq!(serde_json::from_str::<Value>(d.msg.as_deref().unwrap()).unwrap(), json!({"_lctype": -1, "_lctext": "ping"}));
    let unique = lc_unique(&app, &["alice", "bob"]).await;
    assert_eq!(d.cid.as_deref(), Some(unique.as_str()));

    // group
    let g = mx.ok(Method::POST, "/group/create", As::AdminFor(a), Some(json!({"name": "g", "user_list": [bob]}))).await;
    let gid = g["data"]["group_id"].as_i64().unwrap();
    let gm = mx.text(As::AdminFor(a), 2, gid, "to the group").await;
    let d = bob_rt.push_of(CommandType::Direct).await.direct_message.unwrap();
    assert_eq!(d.id.as_deref(), Some(gm.to_string().as_str()));
    assert_eq!(d.cid.as_deref(), Some(gid.to_string().as_str()));

    // recall
    mx.ok(Method::POST, "/message/recall", As::AdminFor(a), Some(json!({"conversation_id": bob, "msg_id": mid}))).await;
    let p = bob_rt.push_of(CommandType::Patch).await;
    let patch = p.patch_message.expect("patch");
    let item = patch.patches.first().expect("one patch");
    assert_eq!(item.mid.as_deref(), Some(mid.to_string().as_str()));
    assert_eq!(item.recall, Some(true));
    srv.stop().await;
}

// ---------------------------------------------------------------------- edits

#[tokio::test]
async fn edits_cross_both_ways() {
    let (srv, app, mx) = setup().await;
    let a = mx.register("amy").await;
    let b = mx.register("ben").await;
    let conv = lc_unique(&app, &["amy", "ben"]).await;
    // MaxIM REPLACE (12) and APPEND (11) → LeanCloud sees the new text, with patch-timestamp
    let m = mx.text(As::AdminFor(a), 1, b, "before").await;
    mx.ok(
        Method::POST,
        "/message/send",
        As::AdminFor(a),
        Some(json!({"type": 1, "targets": [b], "content_type": 12, "content": "after", "related_mid": m})),
    )
    .await;
    let rec = record(&lc_history(&app, &conv).await, m);
    assert_eq!(data_json(&rec), json!({"_lctype": -1, "_lctext": "after"}));
    assert!(rec["patch-timestamp"].is_i64(), "{rec}");
    mx.ok(
        Method::POST,
        "/message/send",
        As::AdminFor(a),
        Some(json!({"type": 1, "targets": [b], "content_type": 11, "content": "!", "related_mid": m})),
    )
    .await;
    assert_eq!(data_json(&record(&lc_history(&app, &conv).await, m))["_lctext"], "after!");
    // LeanCloud edit of a MaxIM message → MaxIM shows the new content
    let ts = record(&lc_history(&app, &conv).await, m)["timestamp"].as_i64().unwrap();
    app.put(
        &format!("{}/{m}", msgs_path(&conv)),
        json!({"from_client": "amy", "message": {"_lctype": -1, "_lctext": "edited"}, "timestamp": ts}),
    )
    .await
    .ok();
    let it = item(&mx.history(As::AdminFor(b), a).await, m);
    assert_eq!((it["ctype"].as_str(), it["content"].as_str()), (Some("TEXT"), Some("edited")));
    srv.stop().await;
}

// ---------------------------------------------------------------------- accounts

#[tokio::test]
async fn a_login_name_is_one_user_across_faces() {
    let (srv, app, mx) = setup().await;
    let lc_signup = |name: &'static str, pw: &'static str| {
        let app = &app;
        async move { app.call(Method::POST, "/1.1/users", Auth::AppKey, Some(json!({"username": name, "password": pw}))).await }
    };
    // a MaxIM user logs in over LeanCloud's _User API as the same client
    let dan = mx.register("dan").await;
    let r = app.call(Method::POST, "/1.1/login", Auth::AppKey, Some(json!({"username": "dan", "password": "pw-123456"}))).await;
    assert_eq!(r.ok()["objectId"], "dan");
    // a LeanCloud _User logs in over MaxIM by username, as the same engine user
    let r = lc_signup("fay", "pw-123456").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let fay_id = r.body["objectId"].as_str().unwrap().to_string();
    let r = mx.ok(Method::POST, "/token/user", As::Anon, Some(json!({"name": "fay", "password": "pw-123456"}))).await;
    assert_eq!(r["data"]["user_id"], srv.engine().users().get_user(&app.app, &fay_id).await.unwrap().num);
    // so a name one face registered cannot be registered again through the other, and the
    // first user keeps logging in
    lc_signup("dan", "other").await.assert_error(400, 202);
    mx.token("dan").await;
    let r = mx.call(Method::POST, "/user/register/v2", As::Anon, Some(json!({"username": "fay", "password": "pw-123456"}))).await;
    assert_eq!(r["code"], 10004, "{r}");
    let r = mx.ok(Method::POST, "/token/user", As::Anon, Some(json!({"name": "fay", "password": "pw-123456"}))).await;
    assert_ne!(r["data"]["user_id"], dan);
    srv.stop().await;
}
