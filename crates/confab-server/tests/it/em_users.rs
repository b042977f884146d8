//! Easemob face over real HTTP: tokens (app, password, inherit, dynamic), the caller rules, and
//! the user accounts family (specs/easemob-rest.md §1, §3.1), with its limits and errors.

use crate::common::*;
use base64::Engine as _;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn names(v: &Value) -> Vec<String> {
    v["entities"]
        .as_array()
        .unwrap_or_else(|| panic!("entities in {v}"))
        .iter()
        .map(|e| e["username"].as_str().unwrap().to_string())
        .collect()
}

/// A dynamic token as an app server signs it: base64url("dt-" + json).
pub(crate) fn dynamic_token(app: &EmApp, user: &str, cur_time: i64, ttl: i64, secret: &str) -> String {
    let k = &app.app.keys.easemob;
    let appkey = format!("{}#{}", k.org_name, k.app_name);
    let sig = hex::encode(Sha256::digest(format!("{}{appkey}{user}{cur_time}{ttl}{secret}", k.client_id).as_bytes()));
    let body = json!({"signature": sig, "appkey": appkey, "userId": user, "curTime": cur_time, "ttl": ttl});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("dt-{body}"))
}

#[tokio::test]
async fn app_token_grant_and_its_errors() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let k = app.app.keys.easemob.clone();
    let token = |body: Value| app.call(Method::POST, "/token", Em::None, Some(body));

    let r =
        token(json!({"grant_type": "client_credentials", "client_id": k.client_id, "client_secret": k.client_secret, "ttl": 3600})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["expires_in"], 3600);
    assert!(r.body["application"].as_str().is_some_and(|a| a.len() == 36), "{:?}", r.body);
    let t = r.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.call(Method::GET, "/users", Em::Token(t), None).await.status, 200);

    token(json!({"grant_type": "client_credentials", "client_id": k.client_id, "client_secret": "nope"}))
        .await
        .em_error(400, "invalid_grant");
    token(json!({"grant_type": "client_credentials", "client_id": "nope", "client_secret": k.client_secret}))
        .await
        .em_error(400, "invalid_grant");
    token(json!({"grant_type": "client_credentials", "client_secret": k.client_secret})).await.em_error(400, "illegal_argument");
    token(json!({"grant_type": "something"})).await.em_error(400, "illegal_argument");
    token(json!({"grant_type": "client_credentials", "client_id": k.client_id, "client_secret": k.client_secret, "ttl": "x"}))
        .await
        .em_error(400, "illegal_argument");

    // malformed JSON and a wrong body type
    let raw = srv.http.post(format!("{}/token", app.base)).header("Content-Type", "application/json").body("{nope").send().await.unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(raw.json::<Value>().await.unwrap()["error"], "json_parse");
    app.call(Method::POST, "/token", Em::None, Some(json!([1, 2]))).await.em_error(400, "invalid_request_body");

    // an unknown org/app
    let r =
        srv.http.post(format!("{}/no-org/no-app/token", srv.base)).json(&json!({"grant_type": "client_credentials"})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "organization_application_not_found");
    srv.stop().await;
}

#[tokio::test]
async fn user_tokens_password_inherit_and_dynamic() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;

    // password grant; ttl may be a string
    let r = app
        .call(
            Method::POST,
            "/token",
            Em::None,
            Some(json!({"grant_type": "password", "username": "Alice", "password": "pw-alice", "ttl": "600"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["expires_in"], 600);
    assert_eq!(r.body["user"]["username"], "alice");
    assert_eq!(r.body["user"]["activated"], true);
    let pw = |u: &str, p: &str| {
        app.call(Method::POST, "/token", Em::None, Some(json!({"grant_type": "password", "username": u, "password": p})))
    };
    pw("alice", "wrong").await.em_error(400, "invalid_grant");
    pw("nobody", "x").await.em_error(404, "invalid_grant");

    // inherit needs the app token; autoCreateUser registers the user
    let inherit = |auth: Em, body: Value| app.call(Method::POST, "/token", auth, Some(body));
    inherit(Em::None, json!({"grant_type": "inherit", "username": "alice"})).await.em_error(401, "unauthorized");
    let user_tok = app.user_token("alice").await;
    inherit(Em::Token(user_tok.clone()), json!({"grant_type": "inherit", "username": "alice"})).await.em_error(401, "unauthorized");
    inherit(Em::App, json!({"grant_type": "inherit", "username": "bob"})).await.em_error(404, "invalid_grant");
    let r = inherit(Em::App, json!({"grant_type": "inherit", "username": "bob", "autoCreateUser": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["expires_in"], 60 * 86_400, "60 days by default");
    let bob_tok = r.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/users/bob").await.status, 200, "bob now exists");
    inherit(Em::App, json!({"grant_type": "inherit", "username": "bad name!", "autoCreateUser": true}))
        .await
        .em_error(400, "illegal_argument");
    let r = inherit(Em::App, json!({"grant_type": "inherit", "username": "alice", "ttl": 0})).await;
    assert_eq!(r.body["expires_in"], 0, "ttl 0 never expires: {:?}", r.body);

    // a user token reaches its own resources only
    let own = app.call(Method::PUT, "/users/bob", Em::Token(bob_tok.clone()), Some(json!({"nickname": "Bobby"}))).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    app.call(Method::PUT, "/users/alice", Em::Token(bob_tok.clone()), Some(json!({"nickname": "x"}))).await.em_error(401, "unauthorized");
    app.call(Method::GET, "/users", Em::Token(bob_tok.clone()), None).await.em_error(401, "unauthorized");
    app.call(Method::GET, "/users/bob", Em::Token(bob_tok), None).await.em_error(401, "unauthorized");

    // dynamic tokens: verified signature, appkey and expiry
    let now = now_ms() / 1000;
    let secret = app.app.keys.easemob.client_secret.clone();
    let good = dynamic_token(&app, "alice", now, 600, &secret);
    let r = app.call(Method::PUT, "/users/alice", Em::Token(good), Some(json!({"nickname": "Al"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entities"][0]["nickname"], "Al");
    for bad in [
        dynamic_token(&app, "alice", now, 600, "not-the-secret"),
        dynamic_token(&app, "alice", now - 1200, 600, &secret),
        "dt-garbage".to_string(),
    ] {
        app.call(Method::PUT, "/users/alice", Em::Token(bad), Some(json!({"nickname": "x"}))).await.em_error(401, "auth_bad_access_token");
    }
    srv.stop().await;
}

#[tokio::test]
async fn missing_bad_and_foreign_tokens() {
    let srv = TestServer::start().await;
    let a = srv.em(Plan::Standard).await;
    let b = srv.em(Plan::Standard).await;
    a.call(Method::GET, "/users", Em::None, None).await.em_error(401, "unauthorized");
    a.call(Method::GET, "/users", Em::Token("YWMtnot-a-token".into()), None).await.em_error(401, "auth_bad_access_token");
    // b's app token does not open a's users
    a.call(Method::GET, "/users", Em::Token(b.token.clone()), None).await.em_error(401, "auth_bad_access_token");
    // unknown endpoints and methods
    a.get("/no/such/thing").await.em_error(404, "service_resource_not_found");
    a.call(Method::PATCH, "/users", Em::App, None).await.em_error(405, "web_application");
    srv.stop().await;
}

#[tokio::test]
async fn register_single_batch_and_the_usage_limits() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;

    // authorized registration (the default): the app token is needed
    app.call(Method::POST, "/users", Em::None, Some(json!({"username": "u1", "password": "p"}))).await.em_error(401, "unauthorized");

    let r = app.post("/users", json!({"username": "User_1.A-b", "password": "p", "nickname": "First"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    let e = &r.body["entities"][0];
    assert_eq!(e["username"], "user_1.a-b", "case-insensitive, stored lowercase");
    assert_eq!(e["type"], "user");
    assert_eq!(e["nickname"], "First");
    assert_eq!(e["activated"], true);
    assert!(e["uuid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(e["created"].as_i64().is_some());

    app.post("/users", json!({"username": "USER_1.A-B", "password": "p"})).await.em_error(400, "duplicate_unique_property_exists");
    app.post("/users", json!({"username": "bad name", "password": "p"})).await.em_error(400, "illegal_argument");
    let r = app.post("/users", json!({"username": "x".repeat(65), "password": "p"})).await;
    r.em_error(400, "illegal_argument");
    assert_eq!(r.body["error_description"], "USERNAME_TOO_LONG");
    assert_eq!(app.post("/users", json!({"username": "y".repeat(64), "password": "p"})).await.status, 200, "64 bytes is allowed");
    let r = app.post("/users", json!({"username": "nopw"})).await;
    r.em_error(400, "illegal_argument");
    assert_eq!(r.body["error_description"], "password or pin must provided");
    let r = app.post("/users", json!({"username": "longnick", "password": "p", "nickname": "n".repeat(101)})).await;
    assert_eq!(r.body["error_description"], "NICKNAME_TOO_LONG");
    app.post("/users", json!({"username": 7, "password": "p"})).await.em_error(400, "illegal_argument");
    app.post("/users", json!("just a string")).await.em_error(400, "invalid_request_body");

    // batch: existing users are reported in data, the others are created
    let r = app
        .post(
            "/users",
            json!([{"username": "b1", "password": "p"}, {"username": "user_1.a-b", "password": "p"}, {"username": "b2", "password": "p"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(names(&r.body), ["b1", "b2"]);
    assert_eq!(r.body["data"][0]["username"], "user_1.a-b");
    assert!(r.body["data"][0]["registerUserFailReason"].as_str().is_some());

    // at most 60 at once; a bad entry fails the batch before anyone is created
    let sixty_one: Vec<Value> = (0..61).map(|i| json!({"username": format!("m{i}"), "password": "p"})).collect();
    app.post("/users", json!(sixty_one)).await.em_error(400, "illegal_argument");
    let r = app.post("/users", json!([{"username": "c1", "password": "p"}, {"username": "bad name", "password": "p"}])).await;
    r.em_error(400, "illegal_argument");
    app.get("/users/c1").await.em_error(404, "service_resource_not_found");
    let sixty: Vec<Value> = (0..60).map(|i| json!({"username": format!("m{i}"), "password": "p"})).collect();
    let r = app.post("/users", json!(sixty)).await;
    assert_eq!(r.body["entities"].as_array().map(Vec::len), Some(60), "{:?}", r.body);

    // open registration, when the app turns it on
    srv.engine().apps().set_app_limit(&app.app.name, "em_open_registration", "true").await.unwrap();
    let r = app.call(Method::POST, "/users", Em::None, Some(json!({"username": "open1", "password": "p"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    srv.stop().await;
}

#[tokio::test]
async fn the_user_quota_is_enforced_per_plan() {
    let srv = TestServer::start().await;
    let dev = srv.em(Plan::Dev).await;
    let first: Vec<Value> = (0..60).map(|i| json!({"username": format!("d{i}"), "password": "p"})).collect();
    assert_eq!(dev.post("/users", json!(first)).await.status, 200);
    let rest: Vec<Value> = (60..100).map(|i| json!({"username": format!("d{i}"), "password": "p"})).collect();
    assert_eq!(dev.post("/users", json!(rest)).await.status, 200);
    dev.post("/users", json!({"username": "one-too-many", "password": "p"})).await.em_error(429, "resource_limited");
    dev.call(Method::POST, "/token", Em::App, Some(json!({"grant_type": "inherit", "username": "auto", "autoCreateUser": true})))
        .await
        .em_error(429, "resource_limited");
    // the quota is per app and configurable
    srv.engine().apps().set_app_limit(&dev.app.name, "em_max_users", "101").await.unwrap();
    assert_eq!(dev.post("/users", json!({"username": "one-more", "password": "p"})).await.status, 200);
    let std = srv.em(Plan::Standard).await;
    std.users(&["s1"]).await;
    srv.stop().await;
}

#[tokio::test]
async fn get_update_list_with_cursor_and_delete() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let all: Vec<String> = (0..25).map(|i| format!("u{i:02}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    app.users(&refs).await;

    let r = app.get("/users/U03").await;
    assert_eq!(r.status, 200);
    usergrid(&r.body, "get", &app);
    assert_eq!(names(&r.body), ["u03"]);
    app.get("/users/nobody").await.em_error(404, "service_resource_not_found");

    // push display name and style
    let r = app.put("/users/u03", json!({"nickname": "Three", "notification_display_style": 1})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = &app.get("/users/u03").await.body["entities"][0];
    assert_eq!(e["nickname"], "Three");
    assert_eq!(e["notification_display_style"], 1);
    app.put("/users/u03", json!({"notification_display_style": 5})).await.em_error(400, "illegal_argument");
    app.put("/users/u03", json!({"username": "renamed"})).await.em_error(400, "illegal_argument");

    // the cursor walks every user exactly once, in creation order
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users?limit=10&cursor={c}"),
            None => "/users?limit=10".to_string(),
        };
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["count"], r.body["entities"].as_array().unwrap().len());
        seen.extend(names(&r.body));
        match r.body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, all);
    app.get("/users?limit=0").await.em_error(400, "illegal_argument");
    app.get("/users?limit=101").await.em_error(400, "illegal_argument");
    app.get("/users?cursor=@@@").await.em_error(400, "illegal_argument");

    // delete one, then a batch of the oldest
    let r = app.delete("/users/u00").await;
    assert_eq!(r.status, 200);
    assert_eq!(names(&r.body), ["u00"]);
    app.delete("/users/u00").await.em_error(404, "service_resource_not_found");
    let r = app.delete("/users?limit=5").await;
    assert_eq!(names(&r.body), ["u01", "u02", "u03", "u04", "u05"]);
    assert_eq!(app.get("/users?limit=100").await.body["count"], 19);
    srv.stop().await;
}

#[tokio::test]
async fn password_change_revokes_the_old_tokens() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["carol", "dave"]).await;
    let old = app.user_token("carol").await;
    let dave = app.user_token("dave").await;

    app.call(Method::PUT, "/users/carol/password", Em::Token(dave), Some(json!({"newpassword": "x"}))).await.em_error(401, "unauthorized");
    app.put("/users/carol/password", json!({})).await.em_error(400, "illegal_argument");
    app.put("/users/nobody/password", json!({"newpassword": "x"})).await.em_error(404, "entity_not_found");
    let r = app.call(Method::PUT, "/users/carol/password", Em::Token(old.clone()), Some(json!({"newpassword": "fresh"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["action"], "set user password");
    app.call(Method::PUT, "/users/carol", Em::Token(old), Some(json!({"nickname": "c"}))).await.em_error(401, "auth_bad_access_token");
    let login =
        |p: &str| app.call(Method::POST, "/token", Em::None, Some(json!({"grant_type": "password", "username": "carol", "password": p})));
    login("pw-carol").await.em_error(400, "invalid_grant");
    assert_eq!(login("fresh").await.status, 200);
    // POST is accepted as well as PUT
    assert_eq!(app.post("/users/carol/password", json!({"newpassword": "again"})).await.status, 200);
    assert_eq!(login("again").await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn status_offline_counts_deactivate_and_disconnect() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["erin", "frank"]).await;

    let r = app.get("/users/erin/status").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["erin"], "offline");
    let r = app.post("/users/batch/status", json!({"usernames": ["erin", "frank", "ghost"]})).await;
    assert_eq!(r.body["data"], json!([{"erin": "offline"}, {"frank": "offline"}, {"ghost": "offline"}]));
    let many: Vec<String> = (0..101).map(|i| format!("x{i}")).collect();
    app.post("/users/batch/status", json!({"usernames": many})).await.em_error(400, "illegal_argument");
    app.post("/users/batch/status", json!({"usernames": "erin"})).await.em_error(400, "illegal_argument");

    // two messages to erin, sent through the LeanCloud face: both are waiting for her
    let lc = srv.lc_of(&app);
    let conv = lc.conversation(json!({"name": "ef", "m": ["erin", "frank"]})).await;
    let (first, _) = lc.send(&conv, "frank", "hello").await;
    lc.send(&conv, "frank", "again").await;
    let r = app.get("/users/erin/offline_msg_count").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["erin"], 2);
    let r = app.get(&format!("/users/erin/offline_msg_status/{first}")).await;
    assert_eq!(r.body["data"][&first], "undelivered");
    app.get("/users/erin/offline_msg_status/123").await.em_error(404, "resource_not_found");

    // deactivate: no login, tokens stop working; activate lets her back in
    let tok = app.user_token("erin").await;
    let r = app.post("/users/erin/deactivate", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entities"][0]["activated"], false);
    app.call(Method::PUT, "/users/erin", Em::Token(tok), Some(json!({"nickname": "e"}))).await.em_error(401, "auth_bad_access_token");
    let login =
        || app.call(Method::POST, "/token", Em::None, Some(json!({"grant_type": "password", "username": "erin", "password": "pw-erin"})));
    login().await.em_error(400, "invalid_grant");
    assert_eq!(app.get("/users/erin").await.body["entities"][0]["activated"], false);
    assert_eq!(app.post("/users/erin/activate", json!({})).await.status, 200);
    assert_eq!(login().await.status, 200);

    let r = app.get("/users/erin/disconnect").await;
    assert_eq!(r.body["data"]["result"], true);
    app.get("/users/ghost/disconnect").await.em_error(404, "service_resource_not_found");
    srv.stop().await;
}

#[tokio::test]
async fn per_endpoint_rate_limits_answer_429() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["r1"]).await;
    srv.engine().apps().set_app_limit(&app.app.name, "rates.em.users.get.per_second", "3").await.unwrap();
    let mut codes = Vec::new();
    let mut last = None;
    for _ in 0..20 {
        let r = app.get("/users/r1").await;
        codes.push(r.status);
        if r.status == 429 {
            last = Some(r);
            break;
        }
    }
    let r = last.unwrap_or_else(|| panic!("no 429 in {codes:?}"));
    r.em_error(429, "reach_limit");
    assert!(codes.iter().filter(|c| **c == 200).count() >= 3, "the first calls pass: {codes:?}");
    // another endpoint has a bucket of its own
    assert_eq!(app.get("/users?limit=1").await.status, 200);
    srv.stop().await;
}
