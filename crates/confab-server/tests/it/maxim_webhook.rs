//! The MaxIM message webhook over real HTTP (specs/easemob-callbacks.md §6), with
//! `common::receiver` as the app's server: every message is POSTed as the vendor's own receiver
//! reads it (`{appId, msgId, from:{uid}, to:{uid}, type, ctype, content, ext}`) with the header
//! `signature` = the configured secret, and a 500 answer is retried.

use std::time::Duration;

use crate::common::receiver::{Receiver, Reply};
use crate::common::*;
use confab_engine::model::Plan;
use serde_json::{json, Value};

const SECRET: &str = "subscription-secret";

/// A MaxIM call with these headers; the envelope's data (asserting success).
async fn mx(app: &LcApp, path: &str, headers: &[(&str, &str)], body: Value) -> Value {
    let mut req = app.http.post(format!("{}{}", app.base, path)).header("app_id", app.app.keys.maxim.app_id.as_str());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let v: Value = req.json(&body).send().await.expect("request").json().await.expect("JSON");
    assert_eq!(v["code"], 200, "{path}: {v}");
    v
}

/// Register and log in: (user_id, token).
async fn user(app: &LcApp, name: &str) -> (i64, String) {
    let pw = format!("pw-{name}");
    let r = mx(app, "/user/register/v2", &[], json!({"username": name, "password": pw})).await;
    let id = r["data"]["user_id"].as_i64().expect("user_id");
    let r = mx(app, "/token/user", &[], json!({"name": name, "password": pw})).await;
    (id, r["data"]["token"].as_str().expect("token").to_string())
}

#[tokio::test]
async fn every_message_is_posted_with_the_signature_and_retried() {
    let srv = TestServer::start_with(|c| c.outbox_first_retry_ms = 200).await;
    let app = srv.app(Plan::Standard).await;
    let rcv = Receiver::start().await;
    let url = rcv.url("/messages");
    srv.engine().apps().set_app_settings(&app.app.name, &[("hooks.maxim.url", &url), ("hooks.maxim.secret", SECRET)]).await.unwrap();
    let (alice, token) = user(&app, "alice").await;
    let (bob, _) = user(&app, "bob").await;

    // a 500 first: the call is made again
    rcv.script("/messages", vec![Reply::status(500), Reply::ok(json!({}))]);
    let r = mx(
        &app,
        "/message/send",
        &[("access-token", &token)],
        json!({"type": 1, "targets": [bob], "content_type": 0, "content": "你好", "ext": "{\"k\":1}"}),
    )
    .await;
    let msg = r["msg_ids"][0].as_i64().expect("msg id");
    let calls = rcv.wait_calls("/messages", 2, Duration::from_secs(10)).await;
    assert_eq!(calls[0].raw, calls[1].raw, "the same call again");
    for c in &calls {
        assert_eq!(c.header("signature"), Some(SECRET), "the secret, verbatim");
        assert_eq!(c.header("content-type"), Some("application/json"));
    }
    let b = &calls[1].body;
    assert_eq!(b["appId"], app.app.keys.maxim.app_id);
    assert_eq!(b["msgId"], msg);
    assert_eq!(b["from"], json!({"uid": alice}));
    assert_eq!(b["to"], json!({"uid": bob}));
    assert_eq!(b["type"], "CHAT");
    assert_eq!(b["ctype"], "TEXT");
    assert_eq!(b["content"], "你好");
    assert_eq!(b["ext"], "{\"k\":1}");
    let (store, app_id) = (srv.store(), app.app.id);
    eventually(10, || {
        let store = store.clone();
        async move { (store.outbox_counts(app_id).await.unwrap() == (0, 0)).then_some(()) }
    })
    .await;
    assert_eq!(rcv.calls_to("/messages").len(), 2, "delivered once the receiver said 200");

    // a group message, an image: GROUPCHAT to the group's id
    let r = mx(&app, "/group/create", &[("access-token", &token)], json!({"name": "g", "type": 0, "user_list": [bob]})).await;
    let group = r["data"]["group_id"].as_i64().expect("group_id");
    let attachment = json!({"url": "https://example.com/a.png", "dName": "a.png"}).to_string();
    let r = mx(
        &app,
        "/message/send",
        &[("access-token", &token)],
        json!({"type": 2, "targets": [group], "content_type": 1, "content": "", "attachment": attachment}),
    )
    .await;
    let msg = r["msg_ids"][0].as_i64().expect("msg id");
    let calls = rcv.wait_calls("/messages", 3, Duration::from_secs(10)).await;
    let b = &calls.iter().find(|c| c.body["msgId"] == msg).expect("the group message's call").body;
    assert_eq!(b["type"], "GROUPCHAT");
    assert_eq!(b["ctype"], "IMAGE");
    assert_eq!(b["from"], json!({"uid": alice}));
    assert_eq!(b["to"], json!({"uid": group}));
    let a: Value = serde_json::from_str(b["attachment"].as_str().expect("attachment text")).expect("JSON attachment");
    assert_eq!(a["url"], "https://example.com/a.png");
    srv.stop().await;
}
