//! Easemob face over real HTTP: contacts and blocklists (§3.4, with the blocklist enforced by the
//! engine on one-to-one messages of any face), user metadata (§3.5), presence (§3.12), offline
//! push settings and templates (§3.10), push labels and push tasks delivered to a real local
//! webhook (§3.11).

use std::time::Duration;

use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

async fn limit(srv: &TestServer, app: &EmApp, key: &str, value: &str) {
    srv.engine().apps().set_app_limit(&app.app.name, key, value).await.expect("limit");
}

// ---------------------------------------------------------------------- contacts

#[tokio::test]
async fn contacts_are_mutual_capped_and_checked() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;

    let r = app.call(Method::POST, "/users/alice/contacts/users/bob", Em::App, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["entities"][0]["username"], "bob");
    let path = r.body["path"].as_str().unwrap();
    assert!(path.starts_with("/users/") && path.ends_with("/contacts") && !path.contains("alice"), "owner by uuid: {path}");
    assert!(r.body["uri"].as_str().unwrap().ends_with(path), "{:?}", r.body);

    // mutual, in the order added; adding again changes nothing
    app.call(Method::POST, "/users/alice/contacts/users/carol", Em::App, None).await;
    app.call(Method::POST, "/users/alice/contacts/users/bob", Em::App, None).await;
    let r = app.get("/users/alice/contacts/users").await;
    usergrid(&r.body, "get", &app);
    assert_eq!(strs(&r.body["data"]), ["bob", "carol"]);
    assert_eq!(r.body["count"], 2);
    assert_eq!(strs(&app.get("/users/bob/contacts/users").await.body["data"]), ["alice"]);

    // a user token acts for its own user only
    let bob = app.user_token("bob").await;
    let r = app.call(Method::GET, "/users/bob/contacts/users", Em::Token(bob.clone()), None).await;
    assert_eq!(strs(&r.body["data"]), ["alice"]);
    app.call(Method::GET, "/users/alice/contacts/users", Em::Token(bob.clone()), None).await.em_error(401, "unauthorized");
    app.call(Method::GET, "/users/alice/contacts/users", Em::None, None).await.em_error(401, "unauthorized");
    app.call(Method::POST, "/users/alice/contacts/users/nobody", Em::App, None).await.em_error(404, "service_resource_not_found");
    app.call(Method::POST, "/users/nobody/contacts/users/alice", Em::App, None).await.em_error(404, "service_resource_not_found");
    app.call(Method::POST, "/users/alice/contacts/users/alice", Em::App, None).await.em_error(400, "illegal_argument");

    // remove, on both sides
    let r = app.call(Method::DELETE, "/users/bob/contacts/users/alice", Em::Token(bob), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "delete", &app);
    assert_eq!(r.body["entities"][0]["username"], "alice");
    assert_eq!(strs(&app.get("/users/alice/contacts/users").await.body["data"]), ["carol"]);

    // the friend quota (the plan's: 3000; here 1) holds on either side
    limit(&srv, &app, "em_max_contacts", "1").await;
    app.call(Method::POST, "/users/alice/contacts/users/dave", Em::App, None).await.em_error(403, "exceed_limit");
    let r = app.call(Method::POST, "/users/dave/contacts/users/carol", Em::App, None).await;
    r.em_error(403, "exceed_limit");
    assert_eq!(r.body["error_description"], "user contact number exceed limit");
    assert!(strs(&app.get("/users/dave/contacts/users").await.body["data"]).is_empty(), "no half friendship");
    srv.stop().await;
}

#[tokio::test]
async fn dev_plan_friend_quota_is_100() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Dev).await;
    assert_eq!(app.app.limits.em_max_contacts, 100);
    assert_eq!(app.app.limits.em_max_user_blocks, 500);
    srv.stop().await;
}

// ---------------------------------------------------------------------- blocklist

#[tokio::test]
async fn blocklist_pages_caps_and_is_enforced_on_every_face() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    app.call(Method::POST, "/users/alice/contacts/users/bob", Em::App, None).await;

    let r = app.post("/users/alice/blocks/users", json!({"usernames": ["bob", "carol"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(strs(&r.body["data"]), ["bob", "carol"]);
    // blocked friends stay friends
    assert_eq!(strs(&app.get("/users/alice/contacts/users").await.body["data"]), ["bob"]);

    // newest first, paged with pageSize + cursor; no cursor on the last page
    let r = app.get("/users/alice/blocks/users").await;
    assert_eq!(strs(&r.body["data"]), ["carol", "bob"]);
    assert!(r.body.get("cursor").is_none(), "{:?}", r.body);
    let r = app.get("/users/alice/blocks/users?pageSize=1").await;
    assert_eq!(strs(&r.body["data"]), ["carol"]);
    assert_eq!(r.body["count"], 1);
    let c = r.body["cursor"].as_str().expect("cursor").to_string();
    let r = app.get(&format!("/users/alice/blocks/users?pageSize=1&cursor={c}")).await;
    assert_eq!(strs(&r.body["data"]), ["bob"]);
    assert!(r.body.get("cursor").is_none(), "last page: {:?}", r.body);
    app.get("/users/alice/blocks/users?pageSize=51").await.em_error(400, "illegal_argument");
    app.get("/users/alice/blocks/users?pageSize=x").await.em_error(400, "illegal_argument");

    // bad input
    app.post("/users/alice/blocks/users", json!({"usernames": ["nobody"]})).await.em_error(404, "service_resource_not_found");
    app.post("/users/alice/blocks/users", json!({"usernames": "x", "y": 1})).await.em_error(404, "service_resource_not_found");
    app.post("/users/alice/blocks/users", json!({"nope": []})).await.em_error(400, "illegal_argument");
    app.post("/users/alice/blocks/users", json!({"usernames": [1]})).await.em_error(400, "illegal_argument");
    let carol = app.user_token("carol").await;
    app.call(Method::POST, "/users/alice/blocks/users", Em::Token(carol), Some(json!({"usernames": ["dave"]})))
        .await
        .em_error(401, "unauthorized");

    // ONE ENGINE: bob is blocked by alice, so his one-to-one message to her is refused via the
    // LeanCloud REST face too (the unique conversation of the pair); alice may still write to him
    let lc = srv.lc_of(&app);
    let conv = lc.conversation(json!({"m": ["alice", "bob"], "unique": true})).await;
    let msgs = format!("/1.2/rtm/conversations/{conv}/messages");
    let r = lc.post(&msgs, json!({"from_client": "bob", "message": "hi"})).await;
    assert!(r.status >= 400 && r.status < 500, "blocked sender refused: {} {:?}", r.status, r.body);
    let r = lc.post(&msgs, json!({"from_client": "alice", "message": "hello"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // a group with more members is not a one-to-one conversation
    let group = lc.conversation(json!({"m": ["alice", "bob", "dave"]})).await;
    let r = lc.post(&format!("/1.2/rtm/conversations/{group}/messages"), json!({"from_client": "bob", "message": "all"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // unblock: bob may write again
    let r = app.delete("/users/alice/blocks/users/bob").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "delete", &app);
    assert_eq!(r.body["entities"][0]["username"], "bob");
    assert!(r.body["path"].as_str().unwrap().ends_with("/blocks"));
    let r = lc.post(&msgs, json!({"from_client": "bob", "message": "hi again"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(strs(&app.get("/users/alice/blocks/users").await.body["data"]), ["carol"]);

    // the blocklist cap (500 by default; here 2): over it nothing is added
    limit(&srv, &app, "em_max_user_blocks", "2").await;
    app.post("/users/alice/blocks/users", json!({"usernames": ["dave"]})).await;
    app.post("/users/alice/blocks/users", json!({"usernames": ["bob"]})).await.em_error(403, "exceed_limit");
    assert_eq!(strs(&app.get("/users/alice/blocks/users").await.body["data"]), ["dave", "carol"]);
    srv.stop().await;
}

#[tokio::test]
async fn deleting_a_user_forgets_their_relations() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    app.call(Method::POST, "/users/alice/contacts/users/bob", Em::App, None).await;
    app.call(Method::POST, "/users/carol/contacts/users/bob", Em::App, None).await;
    app.post("/users/alice/blocks/users", json!({"usernames": ["bob"]})).await;
    app.post("/users/bob/blocks/users", json!({"usernames": ["carol"]})).await;
    put_metadata(&app, "bob", Em::App, "nickname=Bob").await;
    assert_eq!(app.delete("/users/bob").await.status, 200);
    assert!(strs(&app.get("/users/alice/contacts/users").await.body["data"]).is_empty());
    assert!(strs(&app.get("/users/carol/contacts/users").await.body["data"]).is_empty());
    assert!(strs(&app.get("/users/alice/blocks/users").await.body["data"]).is_empty());
    assert_eq!(app.get("/metadata/user/bob").await.body["data"], json!({}));
    assert_eq!(app.get("/metadata/user/capacity").await.body["data"], 0);
    // a new bob starts with nothing
    app.users(&["bob"]).await;
    assert!(strs(&app.get("/users/bob/contacts/users").await.body["data"]).is_empty());
    assert!(strs(&app.get("/users/bob/blocks/users").await.body["data"]).is_empty());
    srv.stop().await;
}

// ---------------------------------------------------------------------- metadata

/// `PUT /metadata/user/{u}` with a form body, as the docs send it.
async fn put_metadata(app: &EmApp, user: &str, auth: Em, form: &str) -> Resp {
    let mut req = app
        .http
        .put(format!("{}/metadata/user/{user}", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    req = match auth {
        Em::App => req.bearer_auth(&app.token),
        Em::Token(t) => req.bearer_auth(t),
        Em::None => req,
    };
    Resp::read(req.send().await.expect("request")).await
}

#[tokio::test]
async fn user_metadata_set_get_batch_delete_and_capacity() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;

    let r = put_metadata(&app, "alice", Em::App, "avatarurl=https%3A%2F%2Fx.io%2Fa.png&ext=ext&nickname=Al+ice").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"avatarurl": "https://x.io/a.png", "ext": "ext", "nickname": "Al ice"}));
    assert!(r.body.get("timestamp").is_some() && r.body.get("duration").is_some());
    assert!(r.body.get("action").is_none() && r.body.get("entities").is_none(), "metadata envelope: {:?}", r.body);
    // merged with what is there; a user sets their own
    let alice = app.user_token("alice").await;
    let r = put_metadata(&app, "alice", Em::Token(alice.clone()), "gender=1").await;
    assert_eq!(r.body["data"], json!({"gender": "1"}));
    let r = app.get("/metadata/user/alice").await;
    assert_eq!(r.body["data"], json!({"avatarurl": "https://x.io/a.png", "ext": "ext", "nickname": "Al ice", "gender": "1"}));
    // JSON bodies are accepted too
    let r = app.put("/metadata/user/bob", json!({"nickname": "Bob"})).await;
    assert_eq!(r.body["data"], json!({"nickname": "Bob"}));

    // batch get: properties select, users without metadata are left out
    let r = app.post("/metadata/user/get", json!({"targets": ["alice", "bob", "nobody"], "properties": ["nickname"]})).await;
    assert_eq!(r.body["data"], json!({"alice": {"nickname": "Al ice"}, "bob": {"nickname": "Bob"}}));
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    app.post("/metadata/user/get", json!({"targets": many})).await.em_error(400, "BAD_REQUEST");
    // other users' metadata through a user token: batch yes, one user's no
    let r = app.call(Method::POST, "/metadata/user/get", Em::Token(alice.clone()), Some(json!({"targets": ["bob"]}))).await;
    assert_eq!(r.body["data"], json!({"bob": {"nickname": "Bob"}}));
    app.call(Method::GET, "/metadata/user/bob", Em::Token(alice.clone()), None).await.em_error(401, "metadata_error");
    put_metadata(&app, "bob", Em::Token(alice.clone()), "a=b").await.em_error(401, "metadata_error");
    put_metadata(&app, "alice", Em::None, "a=b").await.em_error(401, "unauthorized");

    // limits: conventional keys' lengths, 2 KB per user
    put_metadata(&app, "alice", Em::App, &format!("nickname={}", "n".repeat(65))).await.em_error(400, "illegal_argument");
    put_metadata(&app, "alice", Em::App, "gender=7").await.em_error(400, "illegal_argument");
    let r = put_metadata(&app, "alice", Em::App, &format!("ext={}", "x".repeat(2048))).await;
    r.em_error(403, "FORBIDDEN");
    assert!(r.body["error_description"].as_str().unwrap().contains("2048Bytes"), "{:?}", r.body);
    assert_eq!(app.get("/metadata/user/alice").await.body["data"]["ext"], "ext", "nothing changed");

    // capacity: bytes of the app's metadata, app token only
    let cap = app.get("/metadata/user/capacity").await.body["data"].as_i64().expect("bytes");
    assert!(cap > 0, "{cap}");
    app.call(Method::GET, "/metadata/user/capacity", Em::Token(alice), None).await.em_error(401, "unauthorized");

    // delete: true, also when there is nothing
    let r = app.delete("/metadata/user/alice").await;
    assert_eq!(r.body["data"], true);
    assert_eq!(app.get("/metadata/user/alice").await.body["data"], json!({}));
    assert_eq!(app.delete("/metadata/user/nobody").await.body["data"], true);
    let after = app.get("/metadata/user/capacity").await.body["data"].as_i64().unwrap();
    assert!(after < cap, "{after} < {cap}");
    srv.stop().await;
}

// ---------------------------------------------------------------------- presence

#[tokio::test]
async fn presence_status_subscriptions_and_sublist() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;

    let r = app.post("/users/bob/presence/android_123/2", json!({"ext": "in a meeting"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({"result": "ok"}), "presence envelope is result only");
    app.post("/users/bob/presence/android_123/2", json!({})).await.em_error(400, "illegal_argument");
    let r = app.post("/users/bob/presence/android_123/2", json!({"ext": "x".repeat(1025)})).await;
    r.em_error(400, "illegal_argument");
    assert_eq!(r.body["error_description"], "ext is too big");
    app.post("/users/bob/presence/android_123/busy", json!({"ext": ""})).await.em_error(400, "illegal_argument");

    // a live session (engine presence) shows as a resource online
    let carol_session = confab_engine::SessionRef { node: 0, session: 7, tag: None, device: Some("web_1".into()) };
    srv.engine().clients().session_opened(&app.app, "carol", carol_session, None, false).await.unwrap();

    let alice = app.user_token("alice").await;
    let r =
        app.call(Method::POST, "/users/alice/presence/3600", Em::Token(alice.clone()), Some(json!({"usernames": ["bob", "carol"]}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let res = r.body["result"].as_array().expect("result");
    assert_eq!(res[0]["uid"], "bob");
    assert_eq!(res[0]["ext"], "in a meeting");
    assert_eq!(res[0]["status"], json!({"android_123": "2"}));
    assert!(res[0]["last_time"].as_str().is_some_and(|t| t.parse::<i64>().unwrap() > 1_600_000_000), "{res:?}");
    let expiry: i64 = res[0]["expiry"].as_str().expect("expiry as string").parse().unwrap();
    let now = now_ms() / 1000;
    assert!((now + 3590..=now + 3610).contains(&expiry), "{expiry} vs {now}");
    assert_eq!(res[1]["status"], json!({"web_1": "1"}));

    // get without subscribing
    let r = app.post("/users/alice/presence", json!({"usernames": ["carol"]})).await;
    assert_eq!(r.body["result"][0]["uid"], "carol");
    assert!(r.body["result"][0].get("expiry").is_none());

    let r = app.get("/users/alice/presence/sublist?pageNum=1&pageSize=1").await;
    assert_eq!(r.body["result"]["totalnum"], "2");
    assert_eq!(r.body["result"]["sublist"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["result"]["sublist"][0]["uid"], "bob");
    let r = app.get("/users/alice/presence/sublist?pageNum=2&pageSize=1").await;
    assert_eq!(r.body["result"]["sublist"][0]["uid"], "carol");
    app.get("/users/alice/presence/sublist?pageSize=501").await.em_error(400, "illegal_argument");

    // errors
    app.post("/users/alice/presence/3600", json!({"usernames": ["alice"]})).await.em_error(400, "illegal_argument");
    app.post("/users/alice/presence/3600", json!({"usernames": []})).await.em_error(400, "illegal_argument");
    app.post("/users/alice/presence/2592001", json!({"usernames": ["bob"]})).await.em_error(400, "illegal_argument");
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    app.post("/users/alice/presence", json!({"usernames": many})).await.em_error(400, "illegal_argument");
    app.call(Method::POST, "/users/bob/presence", Em::Token(alice.clone()), Some(json!({"usernames": ["carol"]})))
        .await
        .em_error(401, "unauthorized");
    app.post("/users/nobody/presence", json!({"usernames": ["carol"]})).await.em_error(404, "service_resource_not_found");

    // the subscription cap
    limit(&srv, &app, "em_presence_subscriptions_max", "2").await;
    app.users(&["dave"]).await;
    let r = app.post("/users/alice/presence/60", json!({"usernames": ["dave"]})).await;
    r.em_error(400, "illegal_argument");
    assert_eq!(r.body["error_description"], "too many sub presence");

    // unsubscribe: a bare array (or {"users": […]})
    let r = app.call(Method::DELETE, "/users/alice/presence", Em::Token(alice.clone()), Some(json!(["bob"]))).await;
    assert_eq!(r.body, json!({"result": "ok"}));
    app.call(Method::DELETE, "/users/alice/presence", Em::App, Some(json!({"users": ["carol"]}))).await;
    assert_eq!(app.get("/users/alice/presence/sublist").await.body["result"]["totalnum"], "0");
    app.call(Method::DELETE, "/users/alice/presence", Em::App, Some(json!([]))).await.em_error(400, "illegal_argument");
    srv.stop().await;
}

// ---------------------------------------------------------------------- offline push

#[tokio::test]
async fn push_settings_language_and_templates() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;

    // conversation setting, default then set
    let r = app.get("/users/alice/notification/user/bob").await;
    usergrid(&r.body, "get", &app);
    assert_eq!(r.body["data"], json!({"type": "DEFAULT", "ignoreDuration": 0, "ignoreInterval": ""}));
    let r = app.put("/users/alice/notification/chatgroup/12345", json!({"type": "AT", "ignoreDuration": 86_400_000})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "put", &app);
    assert_eq!(r.body["data"]["type"], "AT");
    let until = r.body["data"]["ignoreDuration"].as_i64().unwrap();
    assert!((until - now_ms() - 86_400_000).abs() < 60_000, "absolute end: {until}");
    assert_eq!(app.get("/users/alice/notification/chatgroup/12345").await.body["data"]["type"], "AT");

    // app-wide: chattype user with the user's own id; only it takes ignoreInterval
    let alice = app.user_token("alice").await;
    let r = app
        .call(
            Method::PUT,
            "/users/alice/notification/user/alice",
            Em::Token(alice.clone()),
            Some(json!({"type": "NONE", "ignoreInterval": "21:30-08:00"})),
        )
        .await;
    assert_eq!(r.body["data"], json!({"type": "NONE", "ignoreDuration": 0, "ignoreInterval": "21:30-08:00"}));
    app.put("/users/alice/notification/user/alice", json!({"type": "DEFAULT"})).await.em_error(400, "illegal_argument");
    app.put("/users/alice/notification/user/bob", json!({"ignoreInterval": "21:30-08:00"})).await.em_error(400, "illegal_argument");
    app.put("/users/alice/notification/user/alice", json!({"ignoreInterval": "25:00-08:00"})).await.em_error(400, "illegal_argument");
    app.put("/users/alice/notification/user/bob", json!({"type": "SOME"})).await.em_error(400, "illegal_argument");
    app.put("/users/alice/notification/user/bob", json!({"ignoreDuration": 604_800_001})).await.em_error(400, "illegal_argument");
    app.put("/users/alice/notification/room/bob", json!({"type": "ALL"})).await.em_error(400, "illegal_argument");
    app.put("/users/nobody/notification/user/bob", json!({"type": "ALL"})).await.em_error(400, "required_property_not_found");
    app.call(Method::GET, "/users/bob/notification/user/alice", Em::Token(alice.clone()), None).await.em_error(401, "unauthorized");

    // translation language: PUT sets; GET (and the seed's PUT without a value) reads
    let r = app.put("/users/alice/notification/language", json!({"translationLanguage": "EU"})).await;
    assert_eq!(r.body["data"], json!({"language": "EU"}));
    assert_eq!(app.get("/users/alice/notification/language").await.body["data"], json!({"language": "EU"}));
    assert_eq!(app.put("/users/alice/notification/language", json!({})).await.body["data"], json!({"language": "EU"}));

    // templates
    let r =
        app.post("/notification/template", json!({"name": "test7", "title_pattern": "你好,{0}", "content_pattern": "推送测试,{0}"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["data"]["name"], "test7");
    assert_eq!(r.body["data"]["title_pattern"], "你好,{0}");
    assert!(r.body["data"]["createAt"].as_i64().is_some() && r.body["data"]["updateAt"].as_i64().is_some());
    assert_eq!(app.get("/notification/template/test7").await.body["data"]["content_pattern"], "推送测试,{0}");
    app.post("/notification/template", json!({"name": "bad name", "title_pattern": "x"})).await.em_error(400, "illegal_argument");
    app.post("/notification/template", json!({"name": "t"})).await.em_error(400, "illegal_argument");
    app.call(Method::POST, "/notification/template", Em::Token(alice), Some(json!({"name": "t", "title_pattern": "x"})))
        .await
        .em_error(401, "unauthorized");
    let r = app.delete("/notification/template/test7").await;
    usergrid(&r.body, "delete", &app);
    assert_eq!(r.body["data"]["name"], "test7");
    let r = app.get("/notification/template/test7").await;
    r.em_error(400, "EntityNotFoundException");
    assert_eq!(r.body["error_description"], "test7 template is not exist");
    srv.stop().await;
}

// ---------------------------------------------------------------------- push labels and tasks

/// A real webhook on 127.0.0.1:0: every body POSTed to it.
async fn webhook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/hook"), rx)
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("webhook called in time").expect("a body")
}

#[tokio::test]
async fn push_labels_and_tasks_reach_the_webhook() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["hx1", "hx2", "hx3"]).await;
    let (url, mut rx) = webhook().await;
    limit(&srv, &app, "push_webhook_url", &url).await;

    // labels
    let r = app.post("/push/label", json!({"name": "post-90s", "description": "hah"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["name"], "post-90s");
    assert_eq!(r.body["data"]["description"], "hah");
    assert!(r.body["data"]["createdAt"].as_i64().is_some() && r.body.get("timestamp").is_some());
    app.post("/push/label", json!({"name": "post-90s"})).await.em_error(400, "illegal_argument");
    app.post("/push/label", json!({"name": "bad name!"})).await.em_error(400, "illegal_argument");
    app.post("/push/label", json!({"name": "x", "description": "d".repeat(256)})).await.em_error(400, "illegal_argument");
    app.post("/push/label", json!({"name": "Post-90s"})).await; // case-sensitive: another label

    let r = app.post("/push/label/post-90s/user", json!({"usernames": ["hx1", "hx2", "nobody"]})).await;
    assert_eq!(r.body["data"]["success"], json!(["hx1", "hx2"]));
    assert!(r.body["data"]["fail"]["nobody"].is_string(), "{:?}", r.body);
    app.post("/push/label/Post-90s/user", json!({"usernames": ["hx2", "hx3"]})).await;
    let r = app.get("/push/label/post-90s").await;
    assert_eq!(r.body["data"]["count"], 2);
    let r = app.get("/push/label?limit=1").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let c = r.body["cursor"].as_str().expect("cursor").to_string();
    let r = app.get(&format!("/push/label?limit=1&cursor={c}")).await;
    assert_eq!(r.body["data"][0]["name"], "Post-90s");
    assert!(r.body.get("cursor").is_none());
    let r = app.get("/push/label/post-90s/user/hx1").await;
    assert_eq!(r.body["data"]["username"], "hx1");
    assert!(app.get("/push/label/post-90s/user/hx3").await.body.get("data").is_none());
    let r = app.get("/push/label/post-90s/user?limit=1").await;
    assert_eq!(r.body["data"][0]["username"], "hx1");
    assert!(r.body["cursor"].is_string());
    app.get("/push/label/nope").await.em_error(404, "resource_not_found");
    let hx1 = app.user_token("hx1").await;
    app.call(Method::GET, "/push/label", Em::Token(hx1), None).await.em_error(401, "unauthorized");

    // push to users: one task to the webhook, with the known users
    let msg = json!({"title": "Hi", "content": "hello there", "ext": {"k": "v"}});
    let r = app.post("/push/single", json!({"targets": ["hx1", "nobody"], "pushMessage": msg})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"][0], json!({"id": "hx1", "pushStatus": "ASYNC_SUCCESS", "desc": "async success."}));
    assert_eq!(r.body["data"][1]["pushStatus"], "FAIL");
    let got = next(&mut rx).await;
    assert_eq!(got["target"], "single");
    assert_eq!(got["users"], json!(["hx1"]));
    assert_eq!(got["pushMessage"], msg);
    assert_eq!(got["strategy"], 2);
    app.post("/push/single", json!({"targets": ["hx1", "hx2"], "async": false, "pushMessage": msg}))
        .await
        .em_error(400, "illegal_argument");
    app.post("/push/single", json!({"targets": ["hx1"], "pushMessage": {"title": "t".repeat(33)}})).await.em_error(400, "illegal_argument");
    app.post("/push/single", json!({"targets": ["hx1"]})).await.em_error(400, "illegal_argument");

    // push to labels: the intersection of their users
    let r = app.post("/push/list/label", json!({"targets": ["post-90s", "Post-90s"], "strategy": 1, "pushMessage": msg})).await;
    let task = r.body["data"]["taskId"].as_i64().expect("numeric taskId");
    let got = next(&mut rx).await;
    assert_eq!(got["taskId"], task);
    assert_eq!(got["users"], json!(["hx2"]));
    assert_eq!(got["labels"], json!(["post-90s", "Post-90s"]));
    assert_eq!(got["strategy"], 1);
    app.post("/push/list/label", json!({"targets": ["a", "b", "c", "d", "e", "f"], "pushMessage": msg}))
        .await
        .em_error(400, "illegal_argument");

    // push to every user: data is the bare task id; 5 a minute
    let r = app.post("/push/task", json!({"pushMessage": msg})).await;
    let id = r.body["data"].as_i64().expect("numeric task id");
    let got = next(&mut rx).await;
    assert_eq!((got["taskId"].as_i64(), got["target"].as_str()), (Some(id), Some("app")));
    for _ in 0..4 {
        assert_eq!(app.post("/push/task", json!({"pushMessage": msg})).await.status, 200);
    }
    app.post("/push/task", json!({"pushMessage": msg})).await.em_error(429, "reach_limit");

    // remove users, delete a label
    let r = app.call(Method::DELETE, "/push/label/post-90s/user", Em::App, Some(json!({"usernames": ["hx1", "hx3"]}))).await;
    assert_eq!(r.body["data"]["success"], json!(["hx1"]));
    assert!(r.body["data"]["fail"]["hx3"].is_string());
    assert_eq!(app.delete("/push/label/post-90s").await.body["data"], "success");
    app.get("/push/label/post-90s").await.em_error(404, "resource_not_found");

    // the label cap
    limit(&srv, &app, "em_push_labels_max", "1").await;
    app.post("/push/label", json!({"name": "third"})).await.em_error(403, "exceed_limit");
    srv.stop().await;
}
