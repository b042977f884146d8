//! MaxIM (Lanying IM) face over real HTTP: the envelope, the caller headers, users and tokens,
//! groups, and every `/message/*` call of the seed (send / notify with every content type,
//! transaction_id de-duplication, recall, ack, unread, history paging and status, deleting a
//! conversation). The contract is the seed (seeds/maxim-message-api.txt), specs/maxim-rest.md
//! and, where those leave a point open, the choices docs/maxim.md and the face document.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::common::*;
use confab_engine::model::{Plan, TokenKind};
use confab_engine::Event;
use reqwest::Method;
use serde_json::{json, Value};

// ---------------------------------------------------------------------- helpers

/// One request with exactly these headers: (HTTP status, JSON body or Null).
async fn mx_raw(app: &LcApp, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
    let mut req = app.http.request(method, format!("{}{}", app.base, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every MaxIM answer: `{code, message, data}`; success is code 200 with message null, an error
/// has its text in `message` and data null.
#[track_caller]
fn check_envelope(v: &Value) {
    let o = v.as_object().unwrap_or_else(|| panic!("an object envelope: {v}"));
    for k in ["code", "message", "data"] {
        assert!(o.contains_key(k), "envelope without {k}: {v}");
    }
    let code = v["code"].as_i64().unwrap_or_else(|| panic!("integer code: {v}"));
    if code == 200 {
        assert!(v["message"].is_null(), "success has message null: {v}");
    } else {
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "an error has its text: {v}");
        assert!(v["data"].is_null(), "an error has no data: {v}");
    }
}

/// A MaxIM call: the app's `app_id`, `access-token` when given, then `extra` headers. Asserts
/// HTTP 200 and the envelope; the whole envelope.
async fn mx(app: &LcApp, method: Method, path: &str, token: Option<&str>, extra: &[(&str, &str)], body: Option<Value>) -> Value {
    let mut h: Vec<(&str, &str)> = vec![("app_id", app.app.keys.maxim.app_id.as_str())];
    if let Some(t) = token {
        h.push(("access-token", t));
    }
    h.extend_from_slice(extra);
    let (status, v) = mx_raw(app, method.clone(), path, &h, body).await;
    assert_eq!(status, 200, "HTTP status of {method} {path}: {v}");
    check_envelope(&v);
    v
}

/// The data of a successful answer.
#[track_caller]
fn data(v: &Value) -> &Value {
    assert_eq!(v["code"], 200, "expected success, got {v}");
    &v["data"]
}

/// An error answer with this code.
#[track_caller]
fn err(v: &Value, code: i64) {
    assert_eq!(v["code"], code, "expected code {code}, got {v}");
}

fn ids_of(v: &Value) -> Vec<i64> {
    v.as_array().unwrap_or_else(|| panic!("an array: {v}")).iter().map(|x| x.as_i64().expect("an integer id")).collect()
}

struct User {
    id: i64,
    name: String,
    token: String,
}

/// A test server, one app on it, and MaxIM shortcuts.
struct Mx {
    srv: TestServer,
    app: LcApp,
}

impl Mx {
    async fn new() -> Mx {
        let srv = TestServer::start().await;
        let app = srv.app(Plan::Standard).await;
        Mx { srv, app }
    }

    fn admin(&self) -> &str {
        &self.app.app.keys.maxim.admin_token
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, extra: &[(&str, &str)], body: Option<Value>) -> Value {
        mx(&self.app, method, path, token, extra, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        self.call(Method::GET, path, Some(token), &[], None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.call(Method::POST, path, Some(token), &[], Some(body)).await
    }

    /// With the admin token, acting as `user` (the `user_id` header) when given.
    async fn admin_call(&self, method: Method, path: &str, user: Option<i64>, body: Option<Value>) -> Value {
        let uid = user.map(|u| u.to_string());
        let extra: Vec<(&str, &str)> = uid.iter().map(|u| ("user_id", u.as_str())).collect();
        self.call(method, path, Some(self.admin()), &extra, body).await
    }

    /// Register a user; its `user_id`.
    async fn register(&self, name: &str) -> i64 {
        let r = self
            .call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": name, "password": format!("pw-{name}")})))
            .await;
        data(&r)["user_id"].as_i64().unwrap_or_else(|| panic!("user_id in {r}"))
    }

    /// Register and log in.
    async fn user(&self, name: &str) -> User {
        let id = self.register(name).await;
        let r = self.call(Method::POST, "/token/user", None, &[], Some(json!({"name": name, "password": format!("pw-{name}")}))).await;
        let d = data(&r);
        assert_eq!(d["user_id"], id);
        User { id, name: name.to_string(), token: d["token"].as_str().expect("token").to_string() }
    }

    /// A group owned by `owner` with these other members; its id.
    async fn group(&self, owner: &User, members: &[i64]) -> i64 {
        let r = self.post("/group/create", &owner.token, json!({"name": "g", "type": 0, "user_list": members})).await;
        data(&r)["group_id"].as_i64().unwrap_or_else(|| panic!("group_id in {r}"))
    }

    /// Send (`/message/send`) a body; the envelope.
    async fn send_body(&self, token: &str, body: Value) -> Value {
        self.post("/message/send", token, body).await
    }

    /// Send text to targets of a kind (1 users, 2 groups); the msg_ids.
    async fn send(&self, from: &User, kind: i64, targets: &[i64], text: &str) -> Vec<i64> {
        let r = self.send_body(&from.token, json!({"type": kind, "targets": targets, "content_type": 0, "content": text})).await;
        assert_eq!(data(&r), &json!(true), "send answers data true: {r}");
        let ids = ids_of(&r["msg_ids"]);
        assert_eq!(ids.len(), targets.len(), "one msg_id per target: {r}");
        ids
    }

    /// History of a conversation as `who` sees it; the data.
    async fn history(&self, who: &User, opposite: i64, start: Option<i64>, limit: Option<i64>) -> Value {
        let mut path = format!("/message/conversation?opposite_id={opposite}");
        if let Some(s) = start {
            path += &format!("&msg_id_start={s}");
        }
        if let Some(l) = limit {
            path += &format!("&limit={l}");
        }
        let r = self.get(&path, &who.token).await;
        data(&r).clone()
    }

    /// Every message of a conversation as `who` sees it, newest first.
    async fn all_messages(&self, who: &User, opposite: i64) -> Vec<Value> {
        let h = self.history(who, opposite, None, Some(100)).await;
        assert_eq!(h["is_last"], true);
        h["messages"].as_array().expect("messages").clone()
    }

    async fn msg_ids_seen(&self, who: &User, opposite: i64) -> Vec<i64> {
        self.all_messages(who, opposite).await.iter().map(|m| m["msg_id"].as_i64().expect("msg_id")).collect()
    }

    /// `/message/unread` as a map: conversation uid → num.
    async fn unread(&self, who: &User) -> HashMap<i64, i64> {
        let r = self.get("/message/unread", &who.token).await;
        let mut out = HashMap::new();
        for e in data(&r).as_array().unwrap_or_else(|| panic!("an array: {r}")) {
            assert_eq!(e["conversation_id"]["device_sn"], 0, "{e}");
            let uid = e["conversation_id"]["uid"].as_i64().expect("uid");
            let num = e["num"].as_i64().expect("num");
            assert!(out.insert(uid, num).is_none(), "one entry per conversation: {r}");
        }
        out
    }

    /// Members of a group, walking every page.
    async fn members(&self, who: &str, group: i64) -> Vec<i64> {
        let r = self.get(&format!("/group/member_list?group_id={group}&limit=1000"), who).await;
        assert!(r.get("cursor").is_none(), "one page: {r}");
        data(&r).as_array().expect("members").iter().map(|m| m["user_id"].as_i64().expect("user_id")).collect()
    }
}

fn map(pairs: &[(i64, i64)]) -> HashMap<i64, i64> {
    pairs.iter().copied().collect()
}

// ====================================================================== envelope

#[tokio::test]
async fn every_answer_is_http_200_with_the_envelope() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    // success: code 200, message null
    let r = m.get("/user/profile", &alice.token).await;
    assert_eq!(r["code"], 200);
    assert!(r["message"].is_null());
    assert_eq!(r.as_object().unwrap().len(), 3, "exactly code, message, data: {r}");
    // errors are HTTP 200 too (checked by mx), with the text in message
    let r = m.get("/message/unread", "not-a-token").await;
    err(&r, 10008);
    let r = m.post("/message/send", &alice.token, json!({"type": 1})).await;
    err(&r, 10002);
    // a body that is not JSON, or not an object
    let h =
        [("app_id", m.app.app.keys.maxim.app_id.as_str()), ("access-token", alice.token.as_str()), ("Content-Type", "application/json")];
    for raw in ["{not json", "[1,2]"] {
        let resp = m.app.http.post(format!("{}/message/send", m.app.base)).headers(header_map(&h)).body(raw).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let v: Value = resp.json().await.unwrap();
        check_envelope(&v);
        err(&v, 10002);
    }
    // extra top-level fields: msg_ids next to data
    let bob = m.user("bob").await;
    // a JSON body without a Content-Type header is read all the same
    let resp = m
        .app
        .http
        .post(format!("{}/message/send", m.app.base))
        .headers(header_map(&h[..2]))
        .body(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "no type"}).to_string())
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    check_envelope(&v);
    assert_eq!(ids_of(&v["msg_ids"]).len(), 1);
    let r = m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "hi"})).await;
    assert_eq!(data(&r), &json!(true));
    assert_eq!(ids_of(&r["msg_ids"]).len(), 1);
    // an unknown path under the face is HTTP 404 with code 404
    for path in ["/message/nope", "/group/nope", "/user/nope", "/token/nope"] {
        let (status, v) = mx_raw(&m.app, Method::GET, path, &[("app_id", &m.app.app.keys.maxim.app_id)], None).await;
        assert_eq!(status, 404, "{path}: {v}");
        assert_eq!(v["code"], 404, "{path}: {v}");
    }
}

fn header_map(h: &[(&str, &str)]) -> reqwest::header::HeaderMap {
    let mut out = reqwest::header::HeaderMap::new();
    for (k, v) in h {
        out.insert(reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    out
}

// ====================================================================== authentication

#[tokio::test]
async fn app_id_and_access_token_headers() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let app_id = m.app.app.keys.maxim.app_id.clone();

    // missing app_id: 40000, on token calls and no-token calls alike
    let (s, v) = mx_raw(&m.app, Method::GET, "/message/unread", &[("access-token", &alice.token)], None).await;
    assert_eq!(s, 200);
    check_envelope(&v);
    err(&v, 40000);
    let (s, v) = mx_raw(&m.app, Method::POST, "/user/register/v2", &[], Some(json!({"username": "x1", "password": "p"}))).await;
    assert_eq!(s, 200);
    err(&v, 40000);
    // unknown app_id: 40000
    let (_, v) = mx_raw(&m.app, Method::GET, "/message/unread", &[("app_id", "nosuchapp"), ("access-token", &alice.token)], None).await;
    check_envelope(&v);
    err(&v, 40000);
    let (_, v) =
        mx_raw(&m.app, Method::POST, "/token/user", &[("app_id", "nosuchapp")], Some(json!({"name": "alice", "password": "pw-alice"})))
            .await;
    err(&v, 40000);
    // the LeanCloud app id is not a MaxIM app_id
    let (_, v) = mx_raw(&m.app, Method::GET, "/message/unread", &[("app_id", m.app.app_id()), ("access-token", &alice.token)], None).await;
    err(&v, 40000);

    // missing access-token: 10003 (an empty one too)
    err(&m.call(Method::GET, "/message/unread", None, &[], None).await, 10003);
    err(&m.call(Method::GET, "/message/unread", None, &[("access-token", "")], None).await, 10003);
    err(&m.call(Method::GET, "/user/profile", None, &[], None).await, 10003);
    // a bad token: 10008
    err(&m.get("/message/unread", "bogus").await, 10008);
    // an expired user token: 10008
    let expired = m.srv.engine().users().issue_token(&m.app.app, Some(&alice.name), TokenKind::MaximUser, Some(-60)).await.unwrap();
    err(&m.get("/message/unread", &expired.token).await, 10008);
    // a live one issued the same way works
    let live = m.srv.engine().users().issue_token(&m.app.app, Some(&alice.name), TokenKind::MaximUser, Some(60)).await.unwrap();
    assert_eq!(data(&m.get("/user/profile", &live.token).await)["user_id"], alice.id);
    // a token of another kind (LeanCloud session token) is not a MaxIM token
    let lc = m.srv.engine().users().issue_token(&m.app.app, Some(&alice.name), TokenKind::LcSession, Some(60)).await.unwrap();
    err(&m.get("/message/unread", &lc.token).await, 10008);
    // another app's user token: 10008
    let other = m.srv.app(Plan::Standard).await;
    let r = mx(&other, Method::POST, "/user/register/v2", None, &[], Some(json!({"username": "carol", "password": "pw"}))).await;
    data(&r);
    let r = mx(&other, Method::POST, "/token/user", None, &[], Some(json!({"name": "carol", "password": "pw"}))).await;
    let carol_token = data(&r)["token"].as_str().unwrap().to_string();
    err(&m.get("/message/unread", &carol_token).await, 10008);
    // the other app's admin token is not this app's
    err(
        &m.call(Method::GET, "/user/profile", Some(&other.app.keys.maxim.admin_token), &[("user_id", &alice.id.to_string())], None).await,
        10008,
    );

    // header names are case-insensitive (HTTP)
    let (_, v) = mx_raw(&m.app, Method::GET, "/user/profile", &[("App_Id", &app_id), ("Access-Token", &alice.token)], None).await;
    assert_eq!(data(&v)["user_id"], alice.id);
}

#[tokio::test]
async fn admin_token_user_id_and_group_id_headers() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let (a, b) = (alice.id.to_string(), bob.id.to_string());

    // the admin token acts as the user_id header's user
    let r = m.admin_call(Method::GET, "/user/profile", Some(alice.id), None).await;
    assert_eq!(data(&r)["user_id"], alice.id);
    assert_eq!(data(&r)["username"], "alice");
    let r = m.admin_call(Method::GET, "/user/profile", Some(bob.id), None).await;
    assert_eq!(data(&r)["user_id"], bob.id);
    // a call that acts as a user, with the admin token and no user_id: 10002
    err(&m.admin_call(Method::GET, "/user/profile", None, None).await, 10002);
    err(&m.admin_call(Method::GET, "/message/unread", None, None).await, 10002);
    // user_id of an unknown user: 10000; not a number: 10002
    err(&m.admin_call(Method::GET, "/user/profile", Some(123_456_789), None).await, 10000);
    err(&m.call(Method::GET, "/user/profile", Some(m.admin()), &[("user_id", "alice")], None).await, 10002);
    // the admin token with group_id (acting for a group's admin) is accepted
    let g = m.group(&alice, &[bob.id]).await;
    let r = m.call(Method::GET, &format!("/group/info?group_id={g}"), Some(m.admin()), &[("group_id", &g.to_string())], None).await;
    assert_eq!(data(&r)["group_id"], g);

    // a user token cannot impersonate: user_id of someone else is 10010, its own id is fine
    err(&m.call(Method::GET, "/user/profile", Some(&alice.token), &[("user_id", &b)], None).await, 10010);
    err(&m.call(Method::GET, "/message/unread", Some(&alice.token), &[("user_id", &b)], None).await, 10010);
    let r = m.call(Method::GET, "/user/profile", Some(&alice.token), &[("user_id", &a)], None).await;
    assert_eq!(data(&r)["user_id"], alice.id);
    // a user token with group_id: 10010
    err(&m.call(Method::GET, "/user/profile", Some(&alice.token), &[("group_id", &g.to_string())], None).await, 10010);
    // impersonation does not send: nothing reached bob
    let r = m
        .call(
            Method::POST,
            "/message/send",
            Some(&alice.token),
            &[("user_id", &b)],
            Some(json!({"type": 1, "targets": [alice.id], "content_type": 0, "content": "x"})),
        )
        .await;
    err(&r, 10010);
    assert!(m.all_messages(&alice, bob.id).await.is_empty());
}

// ====================================================================== users and tokens

#[tokio::test]
async fn register_v2_username_rules_and_duplicates() {
    let m = Mx::new().await;
    let r = m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": "alice", "password": "pw-alice"}))).await;
    let d = data(&r);
    let id = d["user_id"].as_i64().expect("user_id");
    assert!(id > 0);
    // UserSettings
    assert_eq!(d["auth_mode"], 0);
    assert_eq!(d["group_confirm"], false);
    for ok in ["bob_1", "张三", "_x", "1a", "Mix3d_名字"] {
        let r = m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": ok, "password": "p"}))).await;
        assert!(data(&r)["user_id"].as_i64().is_some(), "{ok}: {r}");
    }
    // letters, digits, _ or CJK; not all digits; not starting with mta or maxim
    let long = "x".repeat(65);
    for bad in ["", "123", "007", "maxim", "maxim_bob", "mta", "mta1", "a b", "a-b", "a.b", "émile", "a@b", long.as_str()] {
        let r = m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": bad, "password": "p"}))).await;
        err(&r, 10002);
    }
    // missing fields
    err(&m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"password": "p"}))).await, 10002);
    err(&m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": "nopw"}))).await, 10002);
    err(&m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": "emptypw", "password": ""}))).await, 10002);
    err(&m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": 5, "password": "p"}))).await, 10002);
    // a duplicate: 10004, and the first account is untouched
    let r = m.call(Method::POST, "/user/register/v2", None, &[], Some(json!({"username": "alice", "password": "other"}))).await;
    err(&r, 10004);
    let r = m.call(Method::POST, "/token/user", None, &[], Some(json!({"name": "alice", "password": "pw-alice"}))).await;
    assert_eq!(data(&r)["user_id"], id);
}

#[tokio::test]
async fn register_batch_answers_each_entry() {
    let m = Mx::new().await;
    m.register("taken").await;
    let list = json!([
        {"username": "u_one", "password": "p1"},
        {"username": "123", "password": "p2"},
        {"username": "taken", "password": "p3"},
        {"username": "u_two", "password": "p4"},
        {"username": "u_three"},
    ]);
    let r = m.call(Method::POST, "/user/register/batch", Some(m.admin()), &[], Some(json!({"list": list}))).await;
    let out = data(&r).as_array().expect("one result per entry").clone();
    assert_eq!(out.len(), 5);
    let names: Vec<&str> = out.iter().map(|e| e["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["u_one", "123", "taken", "u_two", "u_three"]);
    let success: Vec<bool> = out.iter().map(|e| e["success"].as_bool().unwrap()).collect();
    assert_eq!(success, [true, false, false, true, false]);
    for e in &out {
        if e["success"] == true {
            assert!(e["user_id"].as_i64().is_some(), "{e}");
            assert!(e["reason"].is_null(), "{e}");
        } else {
            assert!(e["user_id"].is_null(), "{e}");
            assert!(e["reason"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
        }
    }
    // the ones that succeeded can log in, as the ids answered
    let r = m.call(Method::POST, "/token/user", None, &[], Some(json!({"name": "u_two", "password": "p4"}))).await;
    assert_eq!(data(&r)["user_id"], out[3]["user_id"]);
    // more than 100 entries: 10002, nobody registered
    let many: Vec<Value> = (0..101).map(|i| json!({"username": format!("many_{i}"), "password": "p"})).collect();
    err(&m.call(Method::POST, "/user/register/batch", Some(m.admin()), &[], Some(json!({"list": many}))).await, 10002);
    let r = m.call(Method::POST, "/token/user", None, &[], Some(json!({"name": "many_0", "password": "p"}))).await;
    err(&r, 10000);
    // no list
    err(&m.call(Method::POST, "/user/register/batch", Some(m.admin()), &[], Some(json!({}))).await, 10002);
    err(&m.call(Method::POST, "/user/register/batch", Some(m.admin()), &[], Some(json!({"list": "x"}))).await, 10002);
}

#[tokio::test]
async fn token_user_and_token_id() {
    let m = Mx::new().await;
    let id = m.register("alice").await;
    let before = now_ms();
    let r = m.call(Method::POST, "/token/user", None, &[], Some(json!({"name": "alice", "password": "pw-alice"}))).await;
    let d = data(&r);
    assert_eq!(d["user_id"], id);
    let token = d["token"].as_str().expect("token").to_string();
    assert!(!token.is_empty());
    // expire: a ms timestamp, 7 days on
    let expire = d["expire"].as_i64().expect("expire");
    let week = 7 * 86_400_000;
    assert!(expire >= before + week - 60_000 && expire <= now_ms() + week + 60_000, "expire {expire}");
    assert_eq!(data(&m.get("/user/profile", &token).await)["user_id"], id);

    // by user id
    let r = m.call(Method::POST, "/token/id", None, &[], Some(json!({"user_id": id, "password": "pw-alice"}))).await;
    let d = data(&r);
    assert_eq!(d["user_id"], id);
    let token2 = d["token"].as_str().unwrap().to_string();
    assert_ne!(token, token2, "every login is a new token");
    assert!(d["expire"].as_i64().is_some());
    // both tokens work
    assert_eq!(data(&m.get("/user/profile", &token2).await)["user_id"], id);
    assert_eq!(data(&m.get("/user/profile", &token).await)["user_id"], id);

    // wrong password: 10002; unknown user: 10000
    err(&m.call(Method::POST, "/token/user", None, &[], Some(json!({"name": "alice", "password": "nope"}))).await, 10002);
    err(&m.call(Method::POST, "/token/id", None, &[], Some(json!({"user_id": id, "password": "nope"}))).await, 10002);
    err(&m.call(Method::POST, "/token/user", None, &[], Some(json!({"name": "nobody", "password": "x"}))).await, 10000);
    err(&m.call(Method::POST, "/token/id", None, &[], Some(json!({"user_id": 987_654_321, "password": "x"}))).await, 10000);
    // missing fields
    err(&m.call(Method::POST, "/token/user", None, &[], Some(json!({"name": "alice"}))).await, 10002);
    err(&m.call(Method::POST, "/token/id", None, &[], Some(json!({"password": "pw-alice"}))).await, 10002);
    err(&m.call(Method::POST, "/token/id", None, &[], Some(json!({"user_id": "abc", "password": "pw-alice"}))).await, 10002);
}

#[tokio::test]
async fn user_profile() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let r = m.get("/user/profile", &alice.token).await;
    let d = data(&r);
    assert_eq!(d["user_id"], alice.id);
    assert_eq!(d["username"], "alice");
    for k in ["nick_name", "avatar", "mobile", "email", "description", "public_info", "private_info"] {
        assert!(d.get(k).is_some(), "{k} in {d}");
    }
    let r = m.admin_call(Method::GET, "/user/profile", Some(alice.id), None).await;
    assert_eq!(data(&r), d);
}

// ====================================================================== groups

#[tokio::test]
async fn group_create_and_info() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;

    let before = now_ms();
    let body = json!({"name": "team", "description": "our team", "avatar": "https://a/x.png", "type": 0, "user_list": [bob.id, carol.id], "ext": "{\"k\":1}"});
    let r = m.post("/group/create", &alice.token, body).await;
    let d = data(&r).clone();
    let g = d["group_id"].as_i64().expect("group_id");
    assert_eq!(d["owner_id"], alice.id, "the acting user owns it");
    assert_eq!(d["name"], "team");
    assert_eq!(d["description"], "our team");
    assert_eq!(d["avatar"], "https://a/x.png");
    assert_eq!(d["type"], 0);
    assert_eq!(d["status"], 0);
    assert_eq!(d["count"], 3);
    assert_eq!(d["ext"], "{\"k\":1}");
    assert!(d["capacity"].as_i64().unwrap() >= 3);
    assert!(d["created_at"].as_i64().unwrap() >= before - 1000);
    assert!(g != alice.id && g != bob.id && g != carol.id, "group ids and user ids never collide");
    assert_eq!(m.members(&alice.token, g).await.into_iter().collect::<HashSet<_>>(), HashSet::from([alice.id, bob.id, carol.id]));

    // /group/info: the same, for members and the admin token alike
    let r = m.get(&format!("/group/info?group_id={g}"), &bob.token).await;
    assert_eq!(data(&r)["group_id"], g);
    assert_eq!(data(&r)["owner_id"], alice.id);
    assert_eq!(data(&r)["count"], 3);
    assert_eq!(data(&r)["name"], "team");
    let r = m.admin_call(Method::GET, &format!("/group/info?group_id={g}"), None, None).await;
    assert_eq!(data(&r)["owner_id"], alice.id);
    // unknown group, a user's id, no group_id
    err(&m.get("/group/info?group_id=12345", &alice.token).await, 20001);
    err(&m.get(&format!("/group/info?group_id={}", bob.id), &alice.token).await, 20001);
    err(&m.get("/group/info", &alice.token).await, 10002);
    err(&m.get("/group/info?group_id=abc", &alice.token).await, 10002);

    // no user_list: the owner alone
    let r = m.post("/group/create", &bob.token, json!({"name": "solo"})).await;
    assert_eq!(data(&r)["count"], 1);
    assert_eq!(data(&r)["owner_id"], bob.id);
    assert_eq!(data(&r)["type"], 0);

    // the admin token needs user_id (the owner): without it 10002, with it that user owns it
    err(&m.admin_call(Method::POST, "/group/create", None, Some(json!({"name": "x"}))).await, 10002);
    let r = m.admin_call(Method::POST, "/group/create", Some(carol.id), Some(json!({"name": "c", "user_list": [alice.id]}))).await;
    assert_eq!(data(&r)["owner_id"], carol.id);
    assert_eq!(data(&r)["count"], 2);

    // type 2: a chat room
    let r = m.post("/group/create", &alice.token, json!({"name": "room", "type": 2})).await;
    let room = data(&r)["group_id"].as_i64().unwrap();
    assert_eq!(data(&r)["type"], 2);
    assert_eq!(data(&r)["owner_id"], alice.id, "the creator owns a chat room");
    let r = m.get(&format!("/group/info?group_id={room}"), &alice.token).await;
    assert_eq!(data(&r)["type"], 2);
    assert_eq!(data(&r)["owner_id"], alice.id);
    // its creator may destroy it; nobody else
    assert_ne!(m.post(&format!("/group/destroy?group_id={room}"), &bob.token, json!({})).await["code"], 200);
    assert_eq!(data(&m.post(&format!("/group/destroy?group_id={room}"), &alice.token, json!({})).await), &json!(true));
    err(&m.get(&format!("/group/info?group_id={room}"), &alice.token).await, 20001);

    // bad type, unknown user in user_list, user_list not a list: nothing created
    err(&m.post("/group/create", &alice.token, json!({"type": 1})).await, 10002);
    err(&m.post("/group/create", &alice.token, json!({"user_list": [bob.id, 5]})).await, 10000);
    err(&m.post("/group/create", &alice.token, json!({"user_list": "x"})).await, 10002);
}

#[tokio::test]
async fn group_invite_and_apply() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let dave = m.user("dave").await;
    let erin = m.user("erin").await;
    let g = m.group(&alice, &[bob.id]).await;

    // invitees join at once; one result per user
    let r = m.post("/group/invite", &alice.token, json!({"group_id": g, "user_list": [carol.id, dave.id], "reason": "welcome"})).await;
    let out = data(&r).as_array().expect("results").clone();
    assert_eq!(out.len(), 2);
    let got: HashSet<i64> = out.iter().map(|e| e["user_id"].as_i64().unwrap()).collect();
    assert_eq!(got, HashSet::from([carol.id, dave.id]));
    assert!(out.iter().all(|e| e["result"] == "success"), "{r}");
    let members: HashSet<i64> = m.members(&alice.token, g).await.into_iter().collect();
    assert_eq!(members, HashSet::from([alice.id, bob.id, carol.id, dave.id]));
    assert_eq!(data(&m.get(&format!("/group/info?group_id={g}"), &alice.token).await)["count"], 4);
    // a member invites too; inviting a member again is a success and changes nothing
    let r = m.post("/group/invite", &bob.token, json!({"group_id": g, "user_list": [carol.id]})).await;
    assert_eq!(data(&r)[0]["result"], "success");
    assert_eq!(m.members(&alice.token, g).await.len(), 4);
    // an unknown user: 10000, nobody added
    err(&m.post("/group/invite", &alice.token, json!({"group_id": g, "user_list": [erin.id, 42]})).await, 10000);
    assert!(!m.members(&alice.token, g).await.contains(&erin.id));
    // empty list, unknown group, a non-member inviting
    err(&m.post("/group/invite", &alice.token, json!({"group_id": g, "user_list": []})).await, 10002);
    err(&m.post("/group/invite", &alice.token, json!({"group_id": 777, "user_list": [erin.id]})).await, 20001);
    err(&m.post("/group/invite", &erin.token, json!({"group_id": g, "user_list": [erin.id, bob.id]})).await, 20002);
    // the admin token invites
    let r = m.admin_call(Method::POST, "/group/invite", None, Some(json!({"group_id": g, "user_list": [erin.id]}))).await;
    assert_eq!(data(&r)[0]["user_id"], erin.id);
    assert_eq!(data(&r)[0]["result"], "success");
    assert!(m.members(&alice.token, g).await.contains(&erin.id));

    // apply: a group without approval takes the applicant at once
    let frank = m.user("frank").await;
    let r = m.post("/group/apply", &frank.token, json!({"group_id": g, "reason": "let me in"})).await;
    assert_eq!(data(&r), &json!({"user_id": frank.id, "result": "success", "reason": null}));
    assert!(m.members(&alice.token, g).await.contains(&frank.id));
    // frank is a member: he reads and sends
    m.send(&frank, 2, &[g], "hello group").await;
    // already a member: 20017
    err(&m.post("/group/apply", &frank.token, json!({"group_id": g})).await, 20017);
    err(&m.post("/group/apply", &alice.token, json!({"group_id": g})).await, 20017);
    // unknown group, no group_id; the admin token without user_id has nobody to apply
    err(&m.post("/group/apply", &frank.token, json!({"group_id": 888})).await, 20001);
    err(&m.post("/group/apply", &frank.token, json!({})).await, 10002);
    err(&m.admin_call(Method::POST, "/group/apply", None, Some(json!({"group_id": g}))).await, 10002);
    let grace = m.user("grace").await;
    let r = m.admin_call(Method::POST, "/group/apply", Some(grace.id), Some(json!({"group_id": g}))).await;
    assert_eq!(data(&r)["user_id"], grace.id);
    assert!(m.members(&alice.token, g).await.contains(&grace.id));
}

#[tokio::test]
async fn group_member_list_pages_with_a_cursor() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let outsider = m.user("outsider").await;
    // eleven more members, made through the engine (LeanCloud-style users have MaxIM ids too)
    let names: Vec<String> = (0..11).map(|i| format!("member_{i:02}")).collect();
    m.srv.engine().users().ensure_users(&m.app.app, &names).await.unwrap();
    let mut others = vec![];
    for n in &names {
        others.push(m.srv.engine().users().get_user(&m.app.app, n).await.unwrap().num);
    }
    let g = m.group(&alice, &others).await;
    let mut expected: HashSet<i64> = others.iter().copied().collect();
    expected.insert(alice.id);

    for limit in [1, 4, 5, 12, 50] {
        let mut seen = vec![];
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/group/member_list?group_id={g}&limit={limit}");
            if let Some(c) = &cursor {
                path += &format!("&cursor={}", urlencoding::encode(c));
            }
            let r = m.get(&path, &alice.token).await;
            let page = data(&r).as_array().expect("members").clone();
            assert_eq!(r["total"], 12, "total on every page: {r}");
            assert_eq!(r["version"], 0, "{r}");
            assert!(page.len() <= limit, "{r}");
            for row in &page {
                let uid = row["user_id"].as_i64().unwrap();
                assert!(row["join_time"].as_i64().is_some(), "{row}");
                if uid == alice.id {
                    assert_eq!(row["role"], "owner");
                }
                seen.push(uid);
            }
            pages += 1;
            assert!(pages <= 13, "paging ends");
            match r.get("cursor") {
                Some(c) => {
                    assert_eq!(page.len(), limit, "a full page before the last: {r}");
                    cursor = Some(c.as_str().expect("cursor is a string").to_string());
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 12, "limit {limit}: every member exactly once: {seen:?}");
        assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), expected, "limit {limit}");
        assert_eq!(pages, 12usize.div_ceil(limit), "limit {limit}");
    }
    // default page holds them all
    let r = m.get(&format!("/group/member_list?group_id={g}"), &alice.token).await;
    assert_eq!(data(&r).as_array().unwrap().len(), 12);
    assert!(r.get("cursor").is_none());
    // a non-member: 20002; the admin token: fine; unknown group: 20001
    err(&m.get(&format!("/group/member_list?group_id={g}"), &outsider.token).await, 20002);
    let r = m.admin_call(Method::GET, &format!("/group/member_list?group_id={g}"), None, None).await;
    assert_eq!(r["total"], 12);
    err(&m.get("/group/member_list?group_id=4242", &alice.token).await, 20001);
    err(&m.get("/group/member_list", &alice.token).await, 10002);
}

#[tokio::test]
async fn group_leave_kick_destroy() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let dave = m.user("dave").await;
    let outsider = m.user("outsider").await;
    let g = m.group(&alice, &[bob.id, carol.id, dave.id]).await;

    // leave: the owner cannot (20004)
    err(&m.post(&format!("/group/leave?group_id={g}"), &alice.token, json!({})).await, 20004);
    assert!(m.members(&alice.token, g).await.contains(&alice.id));
    // a member leaves (group_id in the query string)
    let r = m.post(&format!("/group/leave?group_id={g}"), &bob.token, json!({})).await;
    assert_eq!(data(&r), &json!(true));
    assert!(!m.members(&alice.token, g).await.contains(&bob.id));
    // again: not a member
    err(&m.post(&format!("/group/leave?group_id={g}"), &bob.token, json!({})).await, 20002);
    // DELETE, group_id in the body
    let r = m.call(Method::DELETE, "/group/leave", Some(&carol.token), &[], Some(json!({"group_id": g}))).await;
    assert_eq!(data(&r), &json!(true));
    assert_eq!(m.members(&alice.token, g).await.len(), 2);
    err(&m.post("/group/leave?group_id=999", &bob.token, json!({})).await, 20001);
    err(&m.post("/group/leave", &bob.token, json!({})).await, 10002);
    // bob, who left, cannot send to it
    err(&m.send_body(&bob.token, json!({"type": 2, "targets": [g], "content_type": 0, "content": "x"})).await, 20002);

    // kick: a plain member cannot (20012); the owner can
    m.post("/group/invite", &alice.token, json!({"group_id": g, "user_list": [bob.id, carol.id]})).await;
    err(&m.post("/group/kick", &dave.token, json!({"group_id": g, "user_list": [bob.id]})).await, 20012);
    err(&m.post("/group/kick", &dave.token, json!({"group_id": g, "user_list": [alice.id]})).await, 20012);
    // the owner cannot kick themself out either (that would be leaving: 20004)
    err(&m.post("/group/kick", &alice.token, json!({"group_id": g, "user_list": [alice.id]})).await, 20004);
    err(&m.post("/group/kick", &alice.token, json!({"group_id": g, "user_list": [bob.id, alice.id]})).await, 20004);
    assert!(m.members(&alice.token, g).await.contains(&bob.id), "nothing changed");
    assert_eq!(data(&m.get(&format!("/group/info?group_id={g}"), &dave.token).await)["owner_id"], alice.id);
    assert!(m.members(&alice.token, g).await.contains(&bob.id));
    err(&m.post("/group/kick", &outsider.token, json!({"group_id": g, "user_list": [bob.id]})).await, 20002);
    let r = m.post("/group/kick", &alice.token, json!({"group_id": g, "user_list": [bob.id]})).await;
    assert_eq!(data(&r), &json!(true));
    assert!(!m.members(&alice.token, g).await.contains(&bob.id));
    let r = m.call(Method::DELETE, "/group/kick", Some(&alice.token), &[], Some(json!({"group_id": g, "user_list": [carol.id]}))).await;
    assert_eq!(data(&r), &json!(true));
    assert!(!m.members(&alice.token, g).await.contains(&carol.id));
    err(&m.post("/group/kick", &alice.token, json!({"group_id": g, "user_list": [31337]})).await, 10000);
    err(&m.post("/group/kick", &alice.token, json!({"group_id": g, "user_list": []})).await, 10002);
    err(&m.post("/group/kick", &alice.token, json!({"group_id": 999, "user_list": [dave.id]})).await, 20001);
    // the admin token kicks
    m.post("/group/invite", &alice.token, json!({"group_id": g, "user_list": [bob.id]})).await;
    let r = m.admin_call(Method::POST, "/group/kick", None, Some(json!({"group_id": g, "user_list": [bob.id]}))).await;
    assert_eq!(data(&r), &json!(true));
    assert_eq!(m.members(&alice.token, g).await.into_iter().collect::<HashSet<_>>(), HashSet::from([alice.id, dave.id]));

    // destroy: a member that is not the owner: 20013; an outsider: 20002; the owner: true
    err(&m.post(&format!("/group/destroy?group_id={g}"), &dave.token, json!({})).await, 20013);
    err(&m.post(&format!("/group/destroy?group_id={g}"), &outsider.token, json!({})).await, 20002);
    data(&m.get(&format!("/group/info?group_id={g}"), &alice.token).await);
    let r = m.post(&format!("/group/destroy?group_id={g}"), &alice.token, json!({})).await;
    assert_eq!(data(&r), &json!(true));
    // gone: 20001 everywhere
    err(&m.get(&format!("/group/info?group_id={g}"), &alice.token).await, 20001);
    err(&m.get(&format!("/group/member_list?group_id={g}"), &alice.token).await, 20001);
    err(&m.post(&format!("/group/destroy?group_id={g}"), &alice.token, json!({})).await, 20001);
    err(&m.send_body(&dave.token, json!({"type": 2, "targets": [g], "content_type": 0, "content": "x"})).await, 20001);
    err(&m.post("/group/apply", &bob.token, json!({"group_id": g})).await, 20001);
    // DELETE with a body, and the admin token
    let g2 = m.group(&bob, &[carol.id]).await;
    let r = m.call(Method::DELETE, "/group/destroy", Some(m.admin()), &[], Some(json!({"group_id": g2}))).await;
    assert_eq!(data(&r), &json!(true));
    err(&m.get(&format!("/group/info?group_id={g2}"), &bob.token).await, 20001);
}

// ====================================================================== send and notify

#[tokio::test]
async fn send_to_several_users_and_groups_answers_one_msg_id_per_target() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let dave = m.user("dave").await;

    // type 1: users, msg_ids in the order of targets
    let ids = m.send(&alice, 1, &[bob.id, carol.id, dave.id], "hi all").await;
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3, "distinct ids");
    for (who, id) in [(&bob, ids[0]), (&carol, ids[1]), (&dave, ids[2])] {
        let msgs = m.all_messages(who, alice.id).await;
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0]["msg_id"], id, "{}'s message is msg_ids in target order", who.name);
        assert_eq!(msgs[0]["content"], "hi all");
        assert_eq!(msgs[0]["from_xid"]["uid"], alice.id);
        assert_eq!(msgs[0]["to_xid"]["uid"], who.id);
        // the sender sees the same message
        assert_eq!(m.msg_ids_seen(&alice, who.id).await, vec![id]);
    }
    // one target: one msg_id
    let one = m.send(&alice, 1, &[bob.id], "just bob").await;
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![one[0], ids[0]]);

    // type 2: groups
    let g1 = m.group(&alice, &[bob.id]).await;
    let g2 = m.group(&alice, &[carol.id]).await;
    let gids = m.send(&alice, 2, &[g2, g1], "hi groups").await;
    assert_eq!(m.msg_ids_seen(&carol, g2).await, vec![gids[0]]);
    assert_eq!(m.msg_ids_seen(&bob, g1).await, vec![gids[1]]);
    let msgs = m.all_messages(&bob, g1).await;
    assert_eq!(msgs[0]["to_xid"]["uid"], g1);
    assert_eq!(msgs[0]["from_xid"]["uid"], alice.id);

    // PUT works as POST
    let r = m
        .call(
            Method::PUT,
            "/message/send",
            Some(&alice.token),
            &[],
            Some(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "put"})),
        )
        .await;
    let put = ids_of(&r["msg_ids"]);
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await[0], put[0]);

    // notify: the same answer, a system message
    let r = m
        .post("/message/notify", &alice.token, json!({"type": 1, "targets": [bob.id, carol.id], "content_type": 0, "content": "notice"}))
        .await;
    assert_eq!(data(&r), &json!(true));
    let nids = ids_of(&r["msg_ids"]);
    assert_eq!(nids.len(), 2);
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await[0], nids[0]);
    assert_eq!(m.msg_ids_seen(&carol, alice.id).await[0], nids[1]);
    let stored = m.srv.engine().messages().message(&m.app.app, nids[0]).await.unwrap();
    assert!(stored.system, "notify marks a system notification");
    assert!(!m.srv.engine().messages().message(&m.app.app, put[0]).await.unwrap().system);
    let r = m
        .call(
            Method::PUT,
            "/message/notify",
            Some(m.admin()),
            &[],
            Some(json!({"type": 2, "targets": [g1], "from_user_id": alice.id, "content_type": 0, "content": "sys"})),
        )
        .await;
    assert_eq!(ids_of(&r["msg_ids"]).len(), 1);
    assert_eq!(m.all_messages(&bob, g1).await[0]["content"], "sys");
}

#[tokio::test]
async fn every_content_type_round_trips_through_history() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let names = ["TEXT", "IMAGE", "AUDIO", "VIDEO", "FILE", "LOCATION", "COMMAND", "FORWARD"];
    let mut sent = vec![];
    for ct in 0..8i64 {
        let attachment =
            json!({"url": format!("https://files/{ct}"), "dName": format!("f{ct}.bin"), "fLen": 100 + ct, "width": 828.0, "duration": 1})
                .to_string();
        let ext = format!("{{\"ext\":{ct}}}");
        let config = format!("{{\"antispam_prompt\":\"p{ct}\"}}");
        let body = json!({"type": 1, "targets": [bob.id], "content_type": ct, "content": format!("content {ct}"), "attachment": attachment, "ext": ext, "config": config});
        let r = m.send_body(&alice.token, body).await;
        sent.push((ids_of(&r["msg_ids"])[0], attachment, ext, config));
    }
    // a message with none of them: empty strings
    let plain = m.send(&alice, 1, &[bob.id], "plain").await[0];
    for viewer in [&bob, &alice] {
        let opposite = if viewer.id == bob.id { alice.id } else { bob.id };
        let mut msgs = m.all_messages(viewer, opposite).await;
        assert_eq!(msgs.len(), 9);
        let p = msgs.remove(0);
        assert_eq!(p["msg_id"], plain);
        assert_eq!(
            (p["ctype"].as_str(), p["attachment"].as_str(), p["ext"].as_str(), p["config"].as_str()),
            (Some("TEXT"), Some(""), Some(""), Some(""))
        );
        msgs.reverse();
        for (ct, (msg, (id, attachment, ext, config))) in msgs.iter().zip(&sent).enumerate() {
            assert_eq!(msg["msg_id"], *id);
            assert_eq!(msg["ctype"], names[ct], "{msg}");
            assert_eq!(msg["content"], format!("content {ct}"));
            assert_eq!(msg["attachment"], attachment.as_str());
            assert_eq!(msg["ext"], ext.as_str());
            assert_eq!(msg["config"], config.as_str());
            assert!(msg["timestamp"].as_i64().unwrap() > 1_600_000_000_000, "ms timestamp: {msg}");
            assert_eq!(msg["from_xid"], json!({"uid": alice.id, "device_sn": 0}));
            assert_eq!(msg["to_xid"], json!({"uid": bob.id, "device_sn": 0}));
            assert!(["UNREAD", "DELIVERED", "READ"].contains(&msg["status"].as_str().unwrap()));
        }
    }
    // 8 is not a content type; neither are 13 or -1; nothing is sent
    for ct in [8, 13, -1] {
        err(&m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": ct, "content": "x"})).await, 10002);
    }
    err(&m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content": "x"})).await, 10002);
    err(&m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": "text", "content": "x"})).await, 10002);
    assert_eq!(m.all_messages(&bob, alice.id).await.len(), 9);
}

#[tokio::test]
async fn send_rejects_bad_requests_and_sends_nothing() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let g = m.group(&bob, &[carol.id]).await;
    let (mr, tok) = (&m, alice.token.as_str());
    let send = move |body: Value| mr.send_body(tok, body);

    // type: 1 or 2
    for t in [0, 3, -1] {
        err(&send(json!({"type": t, "targets": [bob.id], "content_type": 0, "content": "x"})).await, 10002);
    }
    err(&send(json!({"targets": [bob.id], "content_type": 0, "content": "x"})).await, 10002);
    // targets: 1 to 100 integers
    err(&send(json!({"type": 1, "content_type": 0, "content": "x"})).await, 10002);
    err(&send(json!({"type": 1, "targets": [], "content_type": 0, "content": "x"})).await, 10002);
    err(&send(json!({"type": 1, "targets": ["bob"], "content_type": 0, "content": "x"})).await, 10002);
    err(&send(json!({"type": 1, "targets": bob.id, "content_type": 0, "content": "x"})).await, 10002);
    let mut many: Vec<i64> = vec![bob.id; 1];
    many.extend((0..100).map(|i| 1_000 + i));
    err(&send(json!({"type": 1, "targets": many, "content_type": 0, "content": "x"})).await, 10002);
    // content over the size limit
    err(&send(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "x".repeat(6000)})).await, 10002);
    // field types
    err(&send(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": 5})).await, 10002);
    err(&send(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "x", "ext": {"a": 1}})).await, 10002);
    err(&send(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "x", "online_only": 3})).await, 10002);
    // unknown user: 10000; unknown group: 20001; a user id as a group, a group id as a user
    err(&send(json!({"type": 1, "targets": [99_999], "content_type": 0, "content": "x"})).await, 10000);
    err(&send(json!({"type": 2, "targets": [99_999], "content_type": 0, "content": "x"})).await, 20001);
    err(&send(json!({"type": 2, "targets": [bob.id], "content_type": 0, "content": "x"})).await, 20001);
    err(&send(json!({"type": 1, "targets": [g], "content_type": 0, "content": "x"})).await, 10000);
    // a group the sender is not in: 20002
    err(&send(json!({"type": 2, "targets": [g], "content_type": 0, "content": "x"})).await, 20002);
    assert!(m.all_messages(&bob, alice.id).await.is_empty());
    assert!(m.all_messages(&bob, g).await.is_empty());

    // a bad target among good ones: the call fails and sends to none of them
    err(&send(json!({"type": 1, "targets": [bob.id, 99_999], "content_type": 0, "content": "x"})).await, 10000);
    assert!(m.all_messages(&bob, alice.id).await.is_empty(), "nothing sent to bob by a failed call");
    let g_mine = m.group(&alice, &[bob.id]).await;
    err(&send(json!({"type": 2, "targets": [g_mine, g], "content_type": 0, "content": "x"})).await, 20002);
    assert!(m.all_messages(&bob, g_mine).await.is_empty(), "nothing sent to the first group by a failed call");
}

#[tokio::test]
async fn from_user_id_admin_sends_and_user_tokens_send_as_themselves() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let g = m.group(&bob, &[carol.id]).await;

    // the admin token sends as from_user_id
    let r = m
        .admin_call(
            Method::POST,
            "/message/send",
            None,
            Some(json!({"type": 1, "from_user_id": alice.id, "targets": [bob.id], "content_type": 0, "content": "from the server"})),
        )
        .await;
    let id = ids_of(&r["msg_ids"])[0];
    let msgs = m.all_messages(&bob, alice.id).await;
    assert_eq!(msgs[0]["msg_id"], id);
    assert_eq!(msgs[0]["from_xid"]["uid"], alice.id);
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 1)]));
    assert!(m.unread(&alice).await.is_empty(), "the sender has nothing unread");
    // ... to any group, member or not (the app's server)
    let r = m
        .admin_call(
            Method::POST,
            "/message/send",
            None,
            Some(json!({"type": 2, "from_user_id": alice.id, "targets": [g], "content_type": 0, "content": "server says"})),
        )
        .await;
    assert_eq!(m.msg_ids_seen(&carol, g).await, ids_of(&r["msg_ids"]));
    // admin token without from_user_id or user_id: 10002; unknown from_user_id: 10000
    err(
        &m.admin_call(
            Method::POST,
            "/message/send",
            None,
            Some(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "x"})),
        )
        .await,
        10002,
    );
    err(
        &m.admin_call(
            Method::POST,
            "/message/send",
            None,
            Some(json!({"type": 1, "from_user_id": 4444, "targets": [bob.id], "content_type": 0, "content": "x"})),
        )
        .await,
        10000,
    );
    // admin token with user_id: sends as that user (and a member rule applies)
    let r = m
        .admin_call(
            Method::POST,
            "/message/send",
            Some(carol.id),
            Some(json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "as carol"})),
        )
        .await;
    assert_eq!(m.all_messages(&bob, carol.id).await[0]["msg_id"], ids_of(&r["msg_ids"])[0]);
    err(
        &m.admin_call(
            Method::POST,
            "/message/send",
            Some(alice.id),
            Some(json!({"type": 2, "targets": [g], "content_type": 0, "content": "x"})),
        )
        .await,
        20002,
    );
    err(
        &m.admin_call(
            Method::POST,
            "/message/send",
            Some(carol.id),
            Some(json!({"type": 1, "from_user_id": alice.id, "targets": [bob.id], "content_type": 0, "content": "x"})),
        )
        .await,
        10010,
    );

    // a user token: from_user_id of someone else is 10010, its own is fine
    err(
        &m.send_body(&alice.token, json!({"type": 1, "from_user_id": bob.id, "targets": [carol.id], "content_type": 0, "content": "x"}))
            .await,
        10010,
    );
    assert_eq!(m.all_messages(&carol, bob.id).await.len(), 1, "only carol's own message");
    let r = m
        .send_body(&alice.token, json!({"type": 1, "from_user_id": alice.id, "targets": [carol.id], "content_type": 0, "content": "me"}))
        .await;
    assert_eq!(m.all_messages(&carol, alice.id).await[0]["msg_id"], ids_of(&r["msg_ids"])[0]);
}

#[tokio::test]
async fn online_only_is_delivered_but_not_stored() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let mut rx = m.srv.engine().subscribe_events();
    let r = m
        .send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "now or never", "online_only": true}))
        .await;
    assert_eq!(data(&r), &json!(true));
    let id = ids_of(&r["msg_ids"])[0];
    // handed to delivery, for bob
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let ev = rx.recv().await.expect("bus open");
            if let Event::Message { msg, recipients, .. } = &*ev {
                if msg.id == id {
                    return (msg.clone(), recipients.clone());
                }
            }
        }
    })
    .await
    .expect("the message is delivered");
    assert!(ev.0.transient);
    assert_eq!(ev.0.from, "alice");
    assert!(ev.1.contains(&"bob".to_string()), "{:?}", ev.1);
    // never stored: not in history, not unread
    assert!(m.all_messages(&bob, alice.id).await.is_empty());
    assert!(m.unread(&bob).await.is_empty());
    assert!(m.srv.engine().messages().message(&m.app.app, id).await.is_err());
    // online_only false (and "false") is an ordinary message
    let r = m
        .send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "kept", "online_only": false}))
        .await;
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, ids_of(&r["msg_ids"]));
    // in a group too
    let g = m.group(&alice, &[bob.id]).await;
    m.send_body(&alice.token, json!({"type": 2, "targets": [g], "content_type": 0, "content": "live", "online_only": true})).await;
    assert!(m.all_messages(&bob, g).await.is_empty());
}

// ====================================================================== content types 9-12

#[tokio::test]
async fn read_ack_recall_append_replace_through_send() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let ids: Vec<i64> = {
        let mut v = vec![];
        for i in 0..3 {
            v.extend(m.send(&alice, 1, &[bob.id], &format!("m{i}")).await);
        }
        v
    };
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 3)]));

    // READ_ACK (9): bob has read up to the second message
    let r =
        m.send_body(&bob.token, json!({"type": 1, "targets": [alice.id], "content_type": 9, "related_mid": ids[1], "content": ""})).await;
    assert_eq!(data(&r), &json!(true));
    assert!(ids_of(&r["msg_ids"]).is_empty(), "an operation sends no message: {r}");
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 1)]));
    let statuses: Vec<String> = m.all_messages(&bob, alice.id).await.iter().map(|x| x["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses, ["UNREAD", "READ", "READ"]);
    // no message was added
    assert_eq!(m.all_messages(&alice, bob.id).await.len(), 3);
    // READ_ACK needs related_mid; an unknown one: 30404
    err(&m.send_body(&bob.token, json!({"type": 1, "targets": [alice.id], "content_type": 9, "content": ""})).await, 10002);
    err(
        &m.send_body(&bob.token, json!({"type": 1, "targets": [alice.id], "content_type": 9, "related_mid": 5, "content": ""})).await,
        30404,
    );

    // APPEND (11): alice streams onto her message
    let r = m
        .send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 11, "related_mid": ids[2], "content": ", more"}))
        .await;
    assert!(ids_of(&r["msg_ids"]).is_empty());
    let r = m
        .send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 11, "related_mid": ids[2], "content": " and more"}))
        .await;
    data(&r);
    let newest = &m.all_messages(&bob, alice.id).await[0];
    assert_eq!(newest["msg_id"], ids[2]);
    assert_eq!(newest["content"], "m2, more and more");
    assert_eq!(newest["ctype"], "TEXT");
    // REPLACE (12)
    m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 12, "related_mid": ids[2], "content": "replaced"}))
        .await;
    assert_eq!(m.all_messages(&bob, alice.id).await[0]["content"], "replaced");
    assert_eq!(m.all_messages(&alice, bob.id).await[0]["content"], "replaced");
    // bob cannot edit alice's message: 10010
    err(
        &m.send_body(&bob.token, json!({"type": 1, "targets": [alice.id], "content_type": 12, "related_mid": ids[2], "content": "hacked"}))
            .await,
        10010,
    );
    err(
        &m.send_body(&bob.token, json!({"type": 1, "targets": [alice.id], "content_type": 11, "related_mid": ids[2], "content": "!"}))
            .await,
        10010,
    );
    assert_eq!(m.all_messages(&alice, bob.id).await[0]["content"], "replaced");
    // the admin token edits any (as from_user_id's conversation)
    m.call(
        Method::POST,
        "/message/send",
        Some(m.admin()),
        &[],
        Some(json!({"type": 1, "from_user_id": alice.id, "targets": [bob.id], "content_type": 11, "related_mid": ids[2], "content": "+"})),
    )
    .await;
    assert_eq!(m.all_messages(&bob, alice.id).await[0]["content"], "replaced+");
    // unknown related message
    err(
        &m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 12, "related_mid": 77, "content": "x"})).await,
        30404,
    );

    // RECALL (10): bob cannot recall alice's message; alice can
    err(
        &m.send_body(&bob.token, json!({"type": 1, "targets": [alice.id], "content_type": 10, "related_mid": ids[0], "content": ""})).await,
        10010,
    );
    let r =
        m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 10, "related_mid": ids[0], "content": ""})).await;
    assert_eq!(data(&r), &json!(true));
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![ids[2], ids[1]]);
    assert_eq!(m.msg_ids_seen(&alice, bob.id).await, vec![ids[2], ids[1]]);

    // in a group: READ_ACK moves the group's read position
    let carol = m.user("carol").await;
    let g = m.group(&alice, &[bob.id, carol.id]).await;
    let gids: Vec<i64> = [m.send(&alice, 2, &[g], "g0").await[0], m.send(&alice, 2, &[g], "g1").await[0]].to_vec();
    assert_eq!(m.unread(&carol).await.get(&g), Some(&2));
    m.send_body(&carol.token, json!({"type": 2, "targets": [g], "content_type": 9, "related_mid": gids[0], "content": ""})).await;
    assert_eq!(m.unread(&carol).await.get(&g), Some(&1));
    m.send_body(&carol.token, json!({"type": 2, "targets": [g], "content_type": 9, "related_mid": gids[1], "content": ""})).await;
    assert_eq!(m.unread(&carol).await.get(&g), None);
    assert_eq!(m.unread(&bob).await.get(&g), Some(&2), "bob's read position did not move");
}

// ====================================================================== transaction_id

#[tokio::test]
async fn transaction_id_deduplicates() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let body = |tx_key: &str, tx: i64, text: &str| {
        let mut b = json!({"type": 1, "targets": [bob.id, carol.id], "content_type": 0, "content": text});
        b[tx_key] = json!(tx);
        b
    };

    let first = m.send_body(&alice.token, body("transaction_id", 42, "once")).await;
    let ids = ids_of(&first["msg_ids"]);
    assert_eq!(ids.len(), 2);
    // the same transaction_id again: not executed, the same msg_ids answered
    let again = m.send_body(&alice.token, body("transaction_id", 42, "once")).await;
    assert_eq!(again, first);
    // even with another body
    let other = m.send_body(&alice.token, body("transaction_id", 42, "different")).await;
    assert_eq!(ids_of(&other["msg_ids"]), ids);
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![ids[0]]);
    assert_eq!(m.msg_ids_seen(&carol, alice.id).await, vec![ids[1]]);
    assert_eq!(m.all_messages(&bob, alice.id).await[0]["content"], "once");
    // a different transaction_id: a new message
    let r = m.send_body(&alice.token, body("transaction_id", 43, "twice")).await;
    let ids2 = ids_of(&r["msg_ids"]);
    assert!(ids2.iter().all(|i| !ids.contains(i)));
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![ids2[0], ids[0]]);
    // no transaction_id: every call sends
    m.send(&alice, 1, &[bob.id], "plain").await;
    m.send(&alice, 1, &[bob.id], "plain").await;
    assert_eq!(m.all_messages(&bob, alice.id).await.len(), 4);
    // the doc's typo key "transaction_id " (trailing space) works, and is the same id
    let t1 = m.send_body(&alice.token, body("transaction_id ", 44, "typo")).await;
    let t2 = m.send_body(&alice.token, body("transaction_id ", 44, "typo")).await;
    assert_eq!(t1["msg_ids"], t2["msg_ids"]);
    let t3 = m.send_body(&alice.token, body("transaction_id", 44, "typo")).await;
    assert_eq!(t1["msg_ids"], t3["msg_ids"]);
    assert_eq!(m.all_messages(&bob, alice.id).await.len(), 5);
    // the key is per sender: bob's 42 is his own
    let r = m
        .send_body(&bob.token, json!({"type": 1, "targets": [alice.id], "content_type": 0, "content": "bob 42", "transaction_id": 42}))
        .await;
    let bob42 = ids_of(&r["msg_ids"]);
    assert!(!ids.contains(&bob42[0]));
    assert_eq!(m.all_messages(&alice, bob.id).await[0]["content"], "bob 42");
    // the admin token sending as alice shares alice's ids
    let r = m
        .admin_call(
            Method::POST,
            "/message/send",
            None,
            Some({
                let mut b = body("transaction_id", 42, "server");
                b["from_user_id"] = json!(alice.id);
                b
            }),
        )
        .await;
    assert_eq!(ids_of(&r["msg_ids"]), ids);
    assert_eq!(m.all_messages(&bob, alice.id).await.len(), 6);
    // a failed call is not remembered: its retry runs
    let g = m.group(&bob, &[]).await;
    let gb = json!({"type": 2, "targets": [g], "content_type": 0, "content": "retry", "transaction_id": 50});
    err(&m.send_body(&alice.token, gb.clone()).await, 20002);
    m.post("/group/invite", &bob.token, json!({"group_id": g, "user_list": [alice.id]})).await;
    let r = m.send_body(&alice.token, gb.clone()).await;
    assert_eq!(m.msg_ids_seen(&bob, g).await, ids_of(&r["msg_ids"]));
    // ... and a success is remembered
    let r2 = m.send_body(&alice.token, gb).await;
    assert_eq!(r2["msg_ids"], r["msg_ids"]);
    assert_eq!(m.all_messages(&bob, g).await.len(), 1);
    // a transaction_id that is not a number: 10002
    err(
        &m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "x", "transaction_id": "abc"}))
            .await,
        10002,
    );
}

#[tokio::test]
async fn concurrent_identical_requests_send_once() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let body = json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "race", "transaction_id": 777});
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let app = LcApp { app: m.app.app.clone(), base: m.app.base.clone(), http: m.app.http.clone() };
        let token = alice.token.clone();
        let body = body.clone();
        set.spawn(async move { mx(&app, Method::POST, "/message/send", Some(&token), &[], Some(body)).await });
    }
    let mut answers = vec![];
    while let Some(r) = set.join_next().await {
        answers.push(r.expect("task"));
    }
    assert_eq!(answers.len(), 12);
    let ids = ids_of(&answers[0]["msg_ids"]);
    assert_eq!(ids.len(), 1);
    for a in &answers {
        assert_eq!(data(a), &json!(true));
        assert_eq!(ids_of(&a["msg_ids"]), ids, "every caller gets the one message's id");
    }
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, ids, "one message");
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 1)]));
}

// ====================================================================== recall

#[tokio::test]
async fn recall_by_the_sender_and_the_admin_token() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let ids = [
        m.send(&alice, 1, &[bob.id], "one").await[0],
        m.send(&alice, 1, &[bob.id], "two").await[0],
        m.send(&alice, 1, &[bob.id], "three").await[0],
    ];
    let other = m.send(&alice, 1, &[carol.id], "for carol").await[0];
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 3)]));

    // the sender recalls: gone from both sides' history, and no longer unread
    let r = m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id, "msg_id": ids[0]})).await;
    assert_eq!(data(&r), &json!(true));
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![ids[2], ids[1]]);
    assert_eq!(m.msg_ids_seen(&alice, bob.id).await, vec![ids[2], ids[1]]);
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 2)]));
    // recalling it again is fine
    assert_eq!(data(&m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id, "msg_id": ids[0]})).await), &json!(true));
    // another user: 10010 (bob names the conversation from his side: alice)
    err(&m.post("/message/recall", &bob.token, json!({"conversation_id": alice.id, "msg_id": ids[1]})).await, 10010);
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![ids[2], ids[1]]);
    // unknown message: 30404; a message of another conversation: 30404
    err(&m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id, "msg_id": 123})).await, 30404);
    err(&m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id, "msg_id": other})).await, 30404);
    err(&m.post("/message/recall", &bob.token, json!({"conversation_id": carol.id, "msg_id": other})).await, 30404);
    // missing fields
    err(&m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id})).await, 10002);
    err(&m.post("/message/recall", &alice.token, json!({"msg_id": ids[1]})).await, 10002);
    // PUT, with the admin token (no user): any message
    let r = m.call(Method::PUT, "/message/recall", Some(m.admin()), &[], Some(json!({"conversation_id": bob.id, "msg_id": ids[1]}))).await;
    assert_eq!(data(&r), &json!(true));
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![ids[2]]);
    // the admin token acting as bob is bob: 10010
    err(
        &m.admin_call(Method::POST, "/message/recall", Some(bob.id), Some(json!({"conversation_id": alice.id, "msg_id": ids[2]}))).await,
        10010,
    );
    // and as alice, it recalls
    data(&m.admin_call(Method::POST, "/message/recall", Some(alice.id), Some(json!({"conversation_id": bob.id, "msg_id": ids[2]}))).await);
    assert!(m.msg_ids_seen(&bob, alice.id).await.is_empty());
    assert!(m.unread(&bob).await.is_empty());
    // a recalled message cannot be edited
    err(
        &m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 12, "related_mid": ids[2], "content": "x"}))
            .await,
        10010,
    );

    // in a group: the sender recalls with the group as conversation_id
    let g = m.group(&alice, &[bob.id]).await;
    let gm = m.send(&bob, 2, &[g], "oops").await[0];
    err(&m.post("/message/recall", &bob.token, json!({"conversation_id": alice.id, "msg_id": gm})).await, 30404);
    data(&m.post("/message/recall", &bob.token, json!({"conversation_id": g, "msg_id": gm})).await);
    assert!(m.all_messages(&alice, g).await.is_empty());
}

#[tokio::test]
async fn recall_window_binds_users_not_the_admin_token() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    m.srv.engine().apps().set_app_limit(&m.app.app.name, "recall_window_secs", "60").await.unwrap();
    // within the window
    let fresh = m.send(&alice, 1, &[bob.id], "fresh").await[0];
    data(&m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id, "msg_id": fresh})).await);
    // after it
    let old = [m.send(&alice, 1, &[bob.id], "old").await[0], m.send(&alice, 1, &[bob.id], "older").await[0]];
    m.srv.advance(Duration::from_millis(60_300));
    err(&m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id, "msg_id": old[0]})).await, 20012);
    err(
        &m.send_body(&alice.token, json!({"type": 1, "targets": [bob.id], "content_type": 10, "related_mid": old[1], "content": ""})).await,
        20012,
    );
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![old[1], old[0]]);
    // the admin token recalls any time
    data(&m.call(Method::POST, "/message/recall", Some(m.admin()), &[], Some(json!({"conversation_id": bob.id, "msg_id": old[0]}))).await);
    data(
        &m.call(
            Method::POST,
            "/message/send",
            Some(m.admin()),
            &[],
            Some(
                json!({"type": 1, "from_user_id": alice.id, "targets": [bob.id], "content_type": 10, "related_mid": old[1], "content": ""}),
            ),
        )
        .await,
    );
    assert!(m.msg_ids_seen(&bob, alice.id).await.is_empty());
}

// ====================================================================== ack and unread

#[tokio::test]
async fn ack_moves_the_read_position() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let mut ids = vec![];
    for i in 0..4 {
        ids.push(m.send(&alice, 1, &[bob.id], &format!("m{i}")).await[0]);
    }
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 4)]));
    let mr = &m;
    let ack = move |who: &User, conv: i64, mid: i64| {
        let path = format!("/message/ack?conversation_id={conv}&device_sn=0&msg_id={mid}");
        let token = who.token.clone();
        async move { mr.get(&path, &token).await }
    };
    // read up to the second: everything before it too
    let r = ack(&bob, alice.id, ids[1]).await;
    assert_eq!(data(&r), &json!(true));
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 2)]));
    // an earlier message does not move it back
    data(&ack(&bob, alice.id, ids[0]).await);
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 2)]));
    // the sender's ack changes nothing for the reader
    data(&ack(&alice, bob.id, ids[3]).await);
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 2)]));
    // the admin token acting as bob; device_sn left out
    let r = m.admin_call(Method::GET, &format!("/message/ack?conversation_id={}&msg_id={}", alice.id, ids[3]), Some(bob.id), None).await;
    assert_eq!(data(&r), &json!(true));
    assert!(m.unread(&bob).await.is_empty(), "nothing unread is not listed");
    // unknown message: 30404; a message of another conversation: 30404
    err(&ack(&bob, alice.id, 4321).await, 30404);
    let g = m.group(&alice, &[bob.id]).await;
    let gm = m.send(&alice, 2, &[g], "g").await[0];
    err(&ack(&bob, alice.id, gm).await, 30404);
    // a user bob never talked to: 30404; an unknown id: 20001
    err(&ack(&bob, carol.id, ids[0]).await, 30404);
    err(&ack(&bob, 55_555, ids[0]).await, 20001);
    // missing or bad parameters
    err(&m.get(&format!("/message/ack?conversation_id={}", alice.id), &bob.token).await, 10002);
    err(&m.get(&format!("/message/ack?msg_id={}", ids[0]), &bob.token).await, 10002);
    err(&m.get(&format!("/message/ack?conversation_id={}&msg_id=x", alice.id), &bob.token).await, 10002);
    err(&m.get(&format!("/message/ack?conversation_id={}&device_sn=x&msg_id={}", alice.id, ids[0]), &bob.token).await, 10002);
    // a group ack
    assert_eq!(m.unread(&bob).await, map(&[(g, 1)]));
    data(&ack(&bob, g, gm).await);
    assert!(m.unread(&bob).await.is_empty());
    // the admin token alone has no reader
    err(&m.admin_call(Method::GET, &format!("/message/ack?conversation_id={}&msg_id={}", alice.id, ids[3]), None, None).await, 10002);
}

#[tokio::test]
async fn unread_lists_conversations_by_the_other_user_or_the_group() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let dave = m.user("dave").await;
    assert!(m.unread(&bob).await.is_empty());

    m.send(&alice, 1, &[bob.id], "a1").await;
    m.send(&alice, 1, &[bob.id], "a2").await;
    m.send(&carol, 1, &[bob.id], "c1").await;
    let g = m.group(&alice, &[bob.id, carol.id]).await;
    for i in 0..3 {
        m.send(&alice, 2, &[g], &format!("g{i}")).await;
    }
    m.send(&bob, 2, &[g], "bob in g").await;
    // bob's own message in g is not counted
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 2), (carol.id, 1), (g, 3)]));
    // alice: bob's one message in the group; her own sends are not unread
    assert_eq!(m.unread(&alice).await, map(&[(g, 1)]));
    // carol: the group, four messages by others
    assert_eq!(m.unread(&carol).await, map(&[(g, 4)]));
    // dave: nothing
    assert!(m.unread(&dave).await.is_empty());
    // bob answers alice: alice has one unread from bob, bob's count for alice is unchanged
    m.send(&bob, 1, &[alice.id], "b1").await;
    assert_eq!(m.unread(&alice).await, map(&[(g, 1), (bob.id, 1)]));
    assert_eq!(m.unread(&bob).await.get(&alice.id), Some(&2));
    // the admin token with user_id reads bob's
    let r = m.admin_call(Method::GET, "/message/unread", Some(bob.id), None).await;
    assert_eq!(data(&r).as_array().unwrap().len(), 3);
}

// ====================================================================== history

#[tokio::test]
async fn history_pages_newest_first_exactly_once() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let mut ids = vec![];
    for i in 0..10 {
        // alternate senders: one conversation either way
        let (from, to) = if i % 3 == 2 { (&bob, alice.id) } else { (&alice, bob.id) };
        ids.push(m.send(from, 1, &[to], &format!("m{i}")).await[0]);
    }
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    for (viewer, opposite) in [(&bob, alice.id), (&alice, bob.id)] {
        // from 0 (the newest), limit 3: 3, 3, 3, 1
        let mut seen: Vec<i64> = vec![];
        let mut sizes = vec![];
        let mut start = 0;
        loop {
            let h = m.history(viewer, opposite, Some(start), Some(3)).await;
            let page: Vec<i64> = h["messages"].as_array().unwrap().iter().map(|x| x["msg_id"].as_i64().unwrap()).collect();
            sizes.push(page.len());
            seen.extend(&page);
            if h["is_last"] == true {
                assert_eq!(h["next_msg_id"], 0);
                break;
            }
            let next = h["next_msg_id"].as_i64().unwrap();
            assert_eq!(Some(&next), newest_first.get(seen.len()), "next_msg_id is the next older message");
            start = next;
            assert!(sizes.len() < 10);
        }
        assert_eq!(sizes, [3, 3, 3, 1]);
        assert_eq!(seen, newest_first, "every message exactly once, newest first");
    }
    // contents in order
    let h = m.history(&bob, alice.id, Some(0), Some(3)).await;
    let texts: Vec<&str> = h["messages"].as_array().unwrap().iter().map(|x| x["content"].as_str().unwrap()).collect();
    assert_eq!(texts, ["m9", "m8", "m7"]);
    assert_eq!(h["is_last"], false);
    // msg_id_start is included
    let h = m.history(&bob, alice.id, Some(ids[5]), Some(2)).await;
    let page: Vec<i64> = h["messages"].as_array().unwrap().iter().map(|x| x["msg_id"].as_i64().unwrap()).collect();
    assert_eq!(page, [ids[5], ids[4]]);
    assert_eq!(h["next_msg_id"], ids[3]);
    assert_eq!(h["is_last"], false);
    // the oldest: the last page
    let h = m.history(&bob, alice.id, Some(ids[0]), Some(5)).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 1);
    assert_eq!(h["is_last"], true);
    // exactly the rest fits: is_last
    let h = m.history(&bob, alice.id, Some(ids[2]), Some(3)).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 3);
    assert_eq!(h["is_last"], true);
    assert_eq!(h["next_msg_id"], 0);
    // no msg_id_start, no limit: the default page (20) holds all 10
    let h = m.history(&bob, alice.id, None, None).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 10);
    assert_eq!(h["is_last"], true);
    // limit 0 or negative: the default; a huge limit is capped, not an error
    assert_eq!(m.history(&bob, alice.id, None, Some(0)).await["messages"].as_array().unwrap().len(), 10);
    assert_eq!(m.history(&bob, alice.id, None, Some(-4)).await["messages"].as_array().unwrap().len(), 10);
    assert_eq!(m.history(&bob, alice.id, None, Some(100_000)).await["messages"].as_array().unwrap().len(), 10);
    // limit 1
    let h = m.history(&bob, alice.id, None, Some(1)).await;
    assert_eq!(h["messages"][0]["msg_id"], ids[9]);
    assert_eq!(h["next_msg_id"], ids[8]);

    // a msg_id_start not in this conversation: 30404
    let elsewhere = m.send(&alice, 1, &[carol.id], "elsewhere").await[0];
    err(&m.get(&format!("/message/conversation?opposite_id={}&msg_id_start={elsewhere}", alice.id), &bob.token).await, 30404);
    err(&m.get(&format!("/message/conversation?opposite_id={}&msg_id_start=31337", alice.id), &bob.token).await, 30404);
    // a user never talked to: an empty last page
    let dave = m.user("dave").await;
    let h = m.history(&bob, dave.id, None, None).await;
    assert_eq!(h, json!({"is_last": true, "next_msg_id": 0, "messages": []}));
    // an unknown id: 20001; a group bob is not in: 20002; bad parameters: 10002
    err(&m.get("/message/conversation?opposite_id=424242", &bob.token).await, 20001);
    let g = m.group(&alice, &[carol.id]).await;
    err(&m.get(&format!("/message/conversation?opposite_id={g}"), &bob.token).await, 20002);
    err(&m.get("/message/conversation", &bob.token).await, 10002);
    err(&m.get(&format!("/message/conversation?opposite_id={}&limit=x", alice.id), &bob.token).await, 10002);
    // the admin token acting as bob sees bob's view; alone it has no side
    let r = m.admin_call(Method::GET, &format!("/message/conversation?opposite_id={}&limit=3", alice.id), Some(bob.id), None).await;
    assert_eq!(data(&r)["messages"][0]["msg_id"], ids[9]);
    err(&m.admin_call(Method::GET, &format!("/message/conversation?opposite_id={}", alice.id), None, None).await, 10002);
}

#[tokio::test]
async fn history_status_and_xids() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(m.send(&alice, 1, &[bob.id], &format!("m{i}")).await[0]);
    }
    let statuses = |h: &[Value]| -> Vec<String> { h.iter().rev().map(|x| x["status"].as_str().unwrap().to_string()).collect() };
    // nobody has read anything
    assert_eq!(statuses(&m.all_messages(&bob, alice.id).await), ["UNREAD"; 5]);
    assert_eq!(statuses(&m.all_messages(&alice, bob.id).await), ["UNREAD"; 5]);
    // bob reads up to the third: READ for both sides, the rest UNREAD
    data(&m.get(&format!("/message/conversation?opposite_id={}", alice.id), &bob.token).await);
    data(&m.get(&format!("/message/ack?conversation_id={}&device_sn=0&msg_id={}", alice.id, ids[2]), &bob.token).await);
    let expect = ["READ", "READ", "READ", "UNREAD", "UNREAD"];
    assert_eq!(statuses(&m.all_messages(&bob, alice.id).await), expect);
    assert_eq!(statuses(&m.all_messages(&alice, bob.id).await), expect);
    // bob answers: alice has not read it
    let reply = m.send(&bob, 1, &[alice.id], "reply").await[0];
    let bob_view = m.all_messages(&bob, alice.id).await;
    assert_eq!(bob_view[0]["msg_id"], reply);
    assert_eq!(bob_view[0]["status"], "UNREAD");
    assert_eq!(bob_view[0]["from_xid"], json!({"uid": bob.id, "device_sn": 0}));
    assert_eq!(bob_view[0]["to_xid"], json!({"uid": alice.id, "device_sn": 0}));
    for x in &bob_view[1..] {
        assert_eq!(x["from_xid"], json!({"uid": alice.id, "device_sn": 0}));
        assert_eq!(x["to_xid"], json!({"uid": bob.id, "device_sn": 0}));
    }
    // alice reads the reply: it is READ for both; alice's own messages keep bob's position
    data(&m.get(&format!("/message/ack?conversation_id={}&msg_id={reply}", bob.id), &alice.token).await);
    assert_eq!(m.all_messages(&bob, alice.id).await[0]["status"], "READ");
    let alice_view = m.all_messages(&alice, bob.id).await;
    assert_eq!(alice_view[0]["status"], "READ");
    assert_eq!(statuses(&alice_view[1..]), expect);
    // the same xids from alice's side
    assert_eq!(alice_view[0]["from_xid"]["uid"], bob.id);
    assert_eq!(alice_view[0]["to_xid"]["uid"], alice.id);

    // a group: to_xid is the group; the sender's message is READ once any member read it
    let g = m.group(&alice, &[bob.id, carol.id]).await;
    let gm = m.send(&alice, 2, &[g], "to all").await[0];
    let h = m.all_messages(&carol, g).await;
    assert_eq!(h[0]["msg_id"], gm);
    assert_eq!(h[0]["from_xid"]["uid"], alice.id);
    assert_eq!(h[0]["to_xid"]["uid"], g);
    assert_eq!(h[0]["status"], "UNREAD");
    assert_eq!(m.all_messages(&alice, g).await[0]["status"], "UNREAD");
    data(&m.get(&format!("/message/ack?conversation_id={g}&msg_id={gm}"), &carol.token).await);
    assert_eq!(m.all_messages(&carol, g).await[0]["status"], "READ");
    assert_eq!(m.all_messages(&bob, g).await[0]["status"], "UNREAD", "bob has not read it");
    assert_eq!(m.all_messages(&alice, g).await[0]["status"], "READ", "carol read alice's message");
}

// ====================================================================== delete a conversation

#[tokio::test]
async fn delete_conversation_is_the_users_own_view() {
    let m = Mx::new().await;
    let alice = m.user("alice").await;
    let bob = m.user("bob").await;
    let carol = m.user("carol").await;
    let ids = [m.send(&alice, 1, &[bob.id], "one").await[0], m.send(&alice, 1, &[bob.id], "two").await[0]];
    let back = m.send(&bob, 1, &[alice.id], "back").await[0];
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 2)]));
    assert_eq!(m.unread(&alice).await, map(&[(bob.id, 1)]));

    let r = m.call(Method::DELETE, &format!("/message/conversation?conversation_id={}", alice.id), Some(&bob.token), &[], None).await;
    assert_eq!(data(&r), &json!(true));
    // bob: nothing unread there
    assert!(m.unread(&bob).await.is_empty());
    // alice is not affected: her unread and her history stay
    assert_eq!(m.unread(&alice).await, map(&[(bob.id, 1)]));
    assert_eq!(m.msg_ids_seen(&alice, bob.id).await, vec![back, ids[1], ids[0]]);
    // the history stays for bob too (the face's documented choice)
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await, vec![back, ids[1], ids[0]]);
    // a new message shows the conversation again
    m.send(&alice, 1, &[bob.id], "three").await;
    assert_eq!(m.unread(&bob).await, map(&[(alice.id, 1)]));
    // deleting it again is fine
    data(&m.call(Method::DELETE, &format!("/message/conversation?conversation_id={}", alice.id), Some(&bob.token), &[], None).await);
    assert!(m.unread(&bob).await.is_empty());

    // a group conversation: bob's view only
    let g = m.group(&alice, &[bob.id, carol.id]).await;
    m.send(&alice, 2, &[g], "g").await;
    assert_eq!(m.unread(&bob).await.get(&g), Some(&1));
    data(&m.call(Method::DELETE, &format!("/message/conversation?conversation_id={g}"), Some(&bob.token), &[], None).await);
    assert_eq!(m.unread(&bob).await.get(&g), None);
    assert_eq!(m.unread(&carol).await.get(&g), Some(&1));
    assert!(m.members(&alice.token, g).await.contains(&bob.id), "still a member");

    // a conversation bob never had: 20001; an unknown id: 20001; a group he is not in: 20002
    err(&m.call(Method::DELETE, &format!("/message/conversation?conversation_id={}", carol.id), Some(&bob.token), &[], None).await, 20001);
    err(&m.call(Method::DELETE, "/message/conversation?conversation_id=8888", Some(&bob.token), &[], None).await, 20001);
    let g2 = m.group(&alice, &[carol.id]).await;
    err(&m.call(Method::DELETE, &format!("/message/conversation?conversation_id={g2}"), Some(&bob.token), &[], None).await, 20002);
    err(&m.call(Method::DELETE, "/message/conversation", Some(&bob.token), &[], None).await, 10002);
    // the admin token acting as alice
    data(&m.admin_call(Method::DELETE, &format!("/message/conversation?conversation_id={}", bob.id), Some(alice.id), None).await);
    assert_eq!(m.unread(&alice).await.get(&bob.id), None);
}

// ====================================================================== decisions after review

/// A chat room (type 2) is a stored group marked as one: its creator owns it, members stay
/// members while offline, and it works like any group over REST.
#[tokio::test]
async fn a_chat_room_is_a_stored_group() {
    let m = Mx::new().await;
    let (alice, bob) = (m.user("alice").await, m.user("bob").await);
    let r = m.post("/group/create", &alice.token, json!({"name": "lobby", "type": 2, "user_list": [bob.id]})).await;
    let room = data(&r).clone();
    assert_eq!((room["type"].as_i64(), room["owner_id"].as_i64(), room["count"].as_i64()), (Some(2), Some(alice.id), Some(2)));
    let id = room["group_id"].as_i64().unwrap();
    assert_eq!(data(&m.get(&format!("/group/info?group_id={id}"), &bob.token).await)["type"], 2);
    let mut members = m.members(&alice.token, id).await;
    members.sort();
    let mut want = vec![alice.id, bob.id];
    want.sort();
    assert_eq!(members, want, "members are kept, not presence");
    let sent = m.send(&bob, 2, &[id], "hello room").await;
    assert_eq!(m.msg_ids_seen(&alice, id).await, sent);
    err(&m.post("/group/apply", &bob.token, json!({"group_id": id})).await, 20017);
    assert_eq!(data(&m.post(&format!("/group/leave?group_id={id}"), &bob.token, json!({})).await), &json!(true));
    assert_eq!(data(&m.post(&format!("/group/destroy?group_id={id}"), &alice.token, json!({})).await), &json!(true));
}

/// A group's owner and admins recall members' messages (moderation, any time); a plain member
/// cannot, and nobody moderates a one-to-one conversation.
#[tokio::test]
async fn group_owners_recall_members_messages() {
    let m = Mx::new().await;
    let (alice, bob, carol) = (m.user("alice").await, m.user("bob").await, m.user("carol").await);
    let g = m.group(&alice, &[bob.id, carol.id]).await;
    let bobs = m.send(&bob, 2, &[g], "spam").await[0];
    err(&m.post("/message/recall", &carol.token, json!({"conversation_id": g, "msg_id": bobs})).await, 10010);
    m.srv.engine().apps().set_app_limit(&m.app.app.name, "recall_window_secs", "1").await.unwrap();
    m.srv.advance(Duration::from_millis(1100));
    assert_eq!(data(&m.post("/message/recall", &alice.token, json!({"conversation_id": g, "msg_id": bobs})).await), &json!(true));
    assert!(m.msg_ids_seen(&carol, g).await.is_empty(), "recalled for everyone");
    // one-to-one: alice made the conversation (its owner), yet cannot recall bob's message
    m.send(&alice, 1, &[bob.id], "hi").await;
    let reply = m.send(&bob, 1, &[alice.id], "hi back").await[0];
    err(&m.post("/message/recall", &alice.token, json!({"conversation_id": bob.id, "msg_id": reply})).await, 10010);
}

/// `transaction_id`s are per endpoint: a notify reusing a send's id is a new message.
#[tokio::test]
async fn send_and_notify_do_not_share_transaction_ids() {
    let m = Mx::new().await;
    let (alice, bob) = (m.user("alice").await, m.user("bob").await);
    let body = json!({"type": 1, "targets": [bob.id], "content_type": 0, "content": "x", "transaction_id": 42});
    let sent = ids_of(&m.post("/message/send", &alice.token, body.clone()).await["msg_ids"]);
    let notified = ids_of(&m.post("/message/notify", &alice.token, body.clone()).await["msg_ids"]);
    assert_ne!(sent, notified);
    assert_eq!(ids_of(&m.post("/message/notify", &alice.token, body).await["msg_ids"]), notified, "a repeated notify is not");
    assert_eq!(m.msg_ids_seen(&bob, alice.id).await.len(), 2);
}

/// A wrong method answers in the envelope too.
#[tokio::test]
async fn wrong_method_is_an_envelope() {
    let m = Mx::new().await;
    let (status, v) = mx_raw(&m.app, Method::GET, "/message/send", &[("app_id", &m.app.app.keys.maxim.app_id)], None).await;
    assert_eq!(status, 405);
    assert_eq!(v["code"], 405);
    assert!(v["message"].is_string());
}
