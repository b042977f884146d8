//! LeanCloud face over real HTTP: authentication headers, the seed's rate-limit table, bad input
//! (and that a rejected write changes nothing), and history signatures.

use crate::common::*;
use confab_engine::model::Plan;
use md5::{Digest, Md5};
use reqwest::Method;
use serde_json::{json, Value};

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn hs(pairs: &[(&str, &str)]) -> Auth {
    Auth::Headers(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn unauthorized(r: &Resp) {
    assert_eq!(r.status, 401, "status of {:?}", r.body);
    assert_eq!(r.body, json!({"code": 401, "error": "Unauthorized."}));
}

fn too_many(r: &Resp) {
    r.assert_retry_after();
    assert_eq!(r.body, json!({"code": 429, "error": "Too many requests."}));
}

/// Number of messages in a conversation's history (master key).
async fn history_len(app: &LcApp, kind: &str, conv: &str) -> usize {
    let r = app.get(&format!("/1.2/rtm/{kind}/{conv}/messages?limit=1000")).await;
    r.ok().as_array().expect("array").len()
}

async fn service_conv(app: &LcApp, name: &str) -> String {
    let r = app.post("/1.2/rtm/service-conversations", json!({"name": name})).await;
    r.ok()["objectId"].as_str().unwrap().to_string()
}

// ====================================================================== authentication

#[test]
fn x_lc_sign_matches_the_documented_vectors() {
    // conventions §1: App Key UtOCzqb67d3sN12Kts4URwy8, Master Key DyJegPlemooo4X1tg94gQkw1
    assert_eq!(md5_hex("1453014943466UtOCzqb67d3sN12Kts4URwy8"), "d5bcbb897e19b2f6633c716dfdfaf9be");
    assert_eq!(md5_hex("1453014943466DyJegPlemooo4X1tg94gQkw1"), "e074720658078c898aa0d4b1b82bdf4b");
}

#[tokio::test]
async fn missing_unknown_and_wrong_credentials_are_401() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let other = srv.app(Plan::Standard).await;
    let path = "/1.2/rtm/conversations";

    unauthorized(&app.call(Method::GET, path, Auth::None, None).await);
    // an id alone, a key alone
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", app.app_id())]), None).await);
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Key", &format!("{},master", app.master_key()))]), None).await);
    // unknown app id
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", "no-such-app-id"), ("X-LC-Key", app.app_key())]), None).await);
    // wrong keys
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", app.app_id()), ("X-LC-Key", "wrong")]), None).await);
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", app.app_id()), ("X-LC-Key", "wrong,master")]), None).await);
    // the app key does not become a master key by appending ",master"
    let ak_master = format!("{},master", app.app_key());
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", app.app_id()), ("X-LC-Key", &ak_master)]), None).await);
    // the master key without ",master" is not the app key either
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", app.app_id()), ("X-LC-Key", app.master_key())]), None).await);
    // another app's keys
    let their_master = format!("{},master", other.master_key());
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", app.app_id()), ("X-LC-Key", &their_master)]), None).await);
    unauthorized(&app.call(Method::GET, path, hs(&[("X-LC-Id", app.app_id()), ("X-LC-Key", other.app_key())]), None).await);
    // 401 also on endpoints that take the app key, and on writes (nothing is created)
    unauthorized(&app.call(Method::GET, "/1.2/rtm/clients/bob/unread-count", Auth::None, None).await);
    unauthorized(&app.call(Method::POST, path, Auth::None, Some(json!({"name": "x"}))).await);
    let r = app.get(&format!("{path}?limit=0&count=1")).await;
    assert_eq!(r.ok()["count"], 0);

    // the master key works
    let r = app.call(Method::GET, path, Auth::Master, None).await;
    assert_eq!(r.ok(), &json!({"results": []}));
    srv.stop().await;
}

#[tokio::test]
async fn app_key_rights() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    app.send(&conv, "alice", "hi").await;

    // master-only endpoints: 403, code 119
    let master_only: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/1.2/rtm/conversations".into(), None),
        (Method::POST, "/1.2/rtm/conversations".into(), Some(json!({"name": "x"}))),
        (Method::GET, format!("/1.2/rtm/conversations/{conv}/messages"), None),
        (Method::POST, format!("/1.2/rtm/conversations/{conv}/messages"), Some(json!({"from_client": "alice", "message": "x"}))),
        (Method::GET, format!("/1.2/rtm/conversations/{conv}/members"), None),
        (Method::POST, "/1.2/rtm/clients/check-online".into(), Some(json!({"client_ids": ["alice"]}))),
        (Method::POST, "/1.2/rtm/clients/alice/kick".into(), Some(json!({}))),
        (Method::GET, "/1.2/rtm/stats".into(), None),
        (Method::GET, "/1.2/rtm/all-conversations".into(), None),
        (Method::POST, "/1.1/rtm/messages".into(), Some(json!({"from_peer": "alice", "conv_id": conv, "message": "x"}))),
    ];
    for (m, p, b) in master_only {
        let r = app.call(m.clone(), &p, Auth::AppKey, b).await;
        r.assert_error(403, 119);
        assert!(r.body["error"].as_str().unwrap().starts_with("That operation isn't allowed for clients."), "{m} {p}: {:?}", r.body);
    }
    // nothing was sent or created by those calls
    assert_eq!(history_len(&app, "conversations", &conv).await, 1);
    let r = app.get("/1.2/rtm/conversations?limit=0&count=1").await;
    assert_eq!(r.ok()["count"], 1);

    // the app key is enough for the unread count ...
    let r = app.call(Method::GET, "/1.2/rtm/clients/bob/unread-count", Auth::AppKey, None).await;
    assert_eq!(r.ok(), &json!({"count": 1}));
    let r = app.call(Method::GET, &format!("/1.2/rtm/clients/bob/unread-count?conv_id={conv}"), Auth::AppKey, None).await;
    assert_eq!(r.ok(), &json!({"count": 1}));
    // ... and for the login signature (not 403: a missing token is a parameter error)
    let r = app.call(Method::GET, "/1.2/rtm/clients/sign", Auth::AppKey, None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = app.call(Method::POST, "/1.1/users", Auth::AppKey, Some(json!({"username": "u1", "password": "pw"}))).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.body["sessionToken"].as_str().unwrap().to_string();
    let r = app.call(Method::GET, &format!("/1.2/rtm/clients/sign{}", qs(&[("session_token", &token)])), Auth::AppKey, None).await;
    assert!(r.ok()["signature"].is_string());
    let r = app.call(Method::POST, "/1.1/rtm/sign", Auth::AppKey, Some(json!({"session_token": token}))).await;
    assert!(r.ok()["signature"].is_string());
    srv.stop().await;
}

#[tokio::test]
async fn x_lc_sign_header() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let ts = now_ms().to_string();
    let app_sign = format!("{},{ts}", md5_hex(&format!("{ts}{}", app.app_key())));
    let master_sign = format!("{},{ts},master", md5_hex(&format!("{ts}{}", app.master_key())));
    let id = app.app_id().to_string();
    let sign = |s: &str| hs(&[("X-LC-Id", &id), ("X-LC-Sign", s)]);
    let unread = "/1.2/rtm/clients/bob/unread-count";

    // md5(timestamp + appKey), lowercase: app rights
    let r = app.call(Method::GET, unread, sign(&app_sign), None).await;
    assert_eq!(r.ok(), &json!({"count": 0}));
    app.call(Method::GET, "/1.2/rtm/conversations", sign(&app_sign), None).await.assert_error(403, 119);
    // an old timestamp is fine (no freshness window is documented)
    let old = "1453014943466";
    let old_sign = format!("{},{old}", md5_hex(&format!("{old}{}", app.app_key())));
    app.call(Method::GET, unread, sign(&old_sign), None).await.ok();

    // uppercase hex fails
    unauthorized(&app.call(Method::GET, unread, sign(&app_sign.to_uppercase()), None).await);
    let upper_master = format!("{},{ts},master", md5_hex(&format!("{ts}{}", app.master_key())).to_uppercase());
    unauthorized(&app.call(Method::GET, "/1.2/rtm/conversations", sign(&upper_master), None).await);
    // a wrong timestamp, a wrong key, a malformed header
    let shifted = format!("{},{}", md5_hex(&format!("{ts}{}", app.app_key())), now_ms() + 1_000_000);
    unauthorized(&app.call(Method::GET, unread, sign(&shifted), None).await);
    unauthorized(&app.call(Method::GET, unread, sign(&format!("{},{ts}", md5_hex(&format!("{ts}nope")))), None).await);
    unauthorized(&app.call(Method::GET, unread, sign("garbage"), None).await);
    unauthorized(&app.call(Method::GET, unread, sign(&format!("{app_sign},master,extra")), None).await);
    // the app key's sign with ",master" is not master; the master key's sign without it is nothing
    unauthorized(&app.call(Method::GET, "/1.2/rtm/conversations", sign(&format!("{app_sign},master")), None).await);
    let master_no_suffix = format!("{},{ts}", md5_hex(&format!("{ts}{}", app.master_key())));
    unauthorized(&app.call(Method::GET, unread, sign(&master_no_suffix), None).await);

    // "sign,ts,master" with the master key: master rights
    let r = app.call(Method::GET, "/1.2/rtm/conversations", sign(&master_sign), None).await;
    assert_eq!(r.ok(), &json!({"results": []}));
    let r = app.call(Method::POST, "/1.2/rtm/conversations", sign(&master_sign), Some(json!({"m": ["a", "b"]}))).await;
    let conv = r.ok()["objectId"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::POST,
            &format!("/1.2/rtm/conversations/{conv}/messages"),
            sign(&master_sign),
            Some(json!({"from_client": "a", "message": "signed"})),
        )
        .await;
    assert!(r.ok()["msg-id"].is_string());
    app.call(Method::GET, "/1.2/rtm/stats", sign(&master_sign), None).await.ok();
    srv.stop().await;
}

#[tokio::test]
async fn legacy_avoscloud_headers() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let id = app.app_id().to_string();
    let master = format!("{},master", app.master_key());
    let r = app
        .call(
            Method::GET,
            "/1.2/rtm/conversations",
            hs(&[("X-AVOSCloud-Application-Id", &id), ("X-AVOSCloud-Application-Key", &master)]),
            None,
        )
        .await;
    assert_eq!(r.ok(), &json!({"results": []}));
    let r = app
        .call(Method::GET, "/1.2/rtm/stats", hs(&[("X-AVOSCloud-Application-Id", &id), ("X-AVOSCloud-Master-Key", app.master_key())]), None)
        .await;
    r.ok();
    // the app key through the legacy header: app rights
    let legacy_app = hs(&[("X-AVOSCloud-Application-Id", &id), ("X-AVOSCloud-Application-Key", app.app_key())]);
    let r = app.call(Method::GET, "/1.2/rtm/clients/bob/unread-count", legacy_app.clone(), None).await;
    assert_eq!(r.ok(), &json!({"count": 0}));
    app.call(Method::GET, "/1.2/rtm/conversations", legacy_app, None).await.assert_error(403, 119);
    // the legacy sign header
    let ts = now_ms().to_string();
    let s = format!("{},{ts},master", md5_hex(&format!("{ts}{}", app.master_key())));
    let r = app
        .call(Method::GET, "/1.2/rtm/conversations", hs(&[("X-AVOSCloud-Application-Id", &id), ("X-AVOSCloud-Request-Sign", &s)]), None)
        .await;
    r.ok();
    // wrong legacy keys are 401 too
    unauthorized(
        &app.call(
            Method::GET,
            "/1.2/rtm/conversations",
            hs(&[("X-AVOSCloud-Application-Id", &id), ("X-AVOSCloud-Master-Key", "nope")]),
            None,
        )
        .await,
    );
    unauthorized(
        &app.call(
            Method::GET,
            "/1.2/rtm/conversations",
            hs(&[("X-AVOSCloud-Application-Id", "nope"), ("X-AVOSCloud-Master-Key", app.master_key())]),
            None,
        )
        .await,
    );
    srv.stop().await;
}

// ====================================================================== rate limits

#[tokio::test]
async fn dev_plan_allows_120_messages_a_minute_standard_more() {
    let srv = TestServer::start().await;
    let dev = srv.app(Plan::Dev).await;
    let std = srv.app(Plan::Standard).await;
    let dconv = dev.conversation(json!({"m": ["a", "b"]})).await;
    let sconv = std.conversation(json!({"m": ["a", "b"]})).await;
    let body = |i: usize| json!({"from_client": "a", "message": format!("m{i}")});

    for i in 0..120 {
        let r = dev.post(&format!("/1.2/rtm/conversations/{dconv}/messages"), body(i)).await;
        assert_eq!(r.status, 200, "dev message {i}: {:?}", r.body);
    }
    let r = dev.post(&format!("/1.2/rtm/conversations/{dconv}/messages"), body(120)).await;
    too_many(&r);
    // the penalty minute: the next calls are refused too, on every endpoint of the bucket
    too_many(&dev.post(&format!("/1.2/rtm/conversations/{dconv}/messages"), body(121)).await);
    too_many(&dev.post("/1.1/rtm/messages", json!({"from_peer": "a", "conv_id": dconv, "message": "x", "transient": false})).await);
    // refused calls stored nothing
    let h = dev.get(&format!("/1.2/rtm/conversations/{dconv}/messages?limit=1000")).await;
    let h = h.ok().as_array().unwrap().clone();
    assert_eq!(h.len(), 120);
    assert_eq!(h[0]["data"], "m119");
    // the edit of a stored message is refused and changes nothing
    let (mid, ts) = (h[0]["msg-id"].as_str().unwrap().to_string(), h[0]["timestamp"].as_i64().unwrap());
    too_many(
        &dev.put(
            &format!("/1.2/rtm/conversations/{dconv}/messages/{mid}"),
            json!({"from_client": "a", "message": "edited", "timestamp": ts}),
        )
        .await,
    );
    too_many(
        &dev.put(&format!("/1.2/rtm/conversations/{dconv}/messages/{mid}/recall"), json!({"from_client": "a", "timestamp": ts})).await,
    );
    let h = dev.get(&format!("/1.2/rtm/conversations/{dconv}/messages?limit=1")).await;
    assert_eq!(h.ok()[0]["data"], "m119");
    assert!(h.ok()[0].get("patch-timestamp").is_none());
    // reads are not rate limited
    dev.get(&format!("/1.2/rtm/conversations/{dconv}/messages")).await.ok();

    // the standard plan sends the same 125 messages without a 429 (and the dev app's penalty
    // does not touch it)
    for i in 0..125 {
        let r = std.post(&format!("/1.2/rtm/conversations/{sconv}/messages"), body(i)).await;
        assert_eq!(r.status, 200, "standard message {i}: {:?}", r.body);
    }
    assert_eq!(history_len(&std, "conversations", &sconv).await, 125);
    srv.stop().await;
}

#[tokio::test]
async fn message_bucket_is_shared_by_send_edit_recall_and_v11() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let other = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;
    let room = app.post("/1.2/rtm/chatrooms", json!({"name": "room"})).await.ok()["objectId"].as_str().unwrap().to_string();
    let svc = service_conv(&app, "svc").await;
    // two messages to edit and recall; they count too: 2 + 5 calls make the allowance of 7
    let (mid, ts) = app.send(&conv, "a", "original").await;
    let (mid2, ts2) = app.send(&conv, "a", "second").await;
    srv.engine().apps().set_app_limit(&app.app.name, "rates.lc.message.per_minute", "7").await.unwrap();
    let other_conv = other.conversation(json!({"m": ["a", "b"]})).await;

    // five calls over five different endpoints of the bucket
    app.post(&format!("/1.2/rtm/conversations/{conv}/messages"), json!({"from_client": "a", "message": "3"})).await.ok();
    app.post("/1.1/rtm/messages", json!({"from_peer": "a", "conv_id": conv, "message": "4", "transient": false})).await.ok();
    app.put(&format!("/1.2/rtm/conversations/{conv}/messages/{mid}"), json!({"from_client": "a", "message": "edited", "timestamp": ts}))
        .await
        .ok();
    app.put(&format!("/1.2/rtm/conversations/{conv}/messages/{mid2}/recall"), json!({"from_client": "a", "timestamp": ts2})).await.ok();
    app.post(&format!("/1.2/rtm/chatrooms/{room}/messages"), json!({"from_client": "a", "message": "room"})).await.ok();
    let before = app.get(&format!("/1.2/rtm/conversations/{conv}/messages")).await.ok().clone();
    assert_eq!(before.as_array().unwrap().len(), 4);

    // the sixth is refused, whichever endpoint it uses, and so is everything after it
    too_many(&app.post(&format!("/1.2/rtm/conversations/{conv}/messages"), json!({"from_client": "a", "message": "6"})).await);
    too_many(&app.post("/1.1/rtm/messages", json!({"from_peer": "a", "conv_id": conv, "message": "7", "transient": false})).await);
    too_many(
        &app.post("/1.1/rtm/patch/message", json!({"from_peer": "a", "conv_id": conv, "msg_id": mid, "timestamp": ts, "message": "again"}))
            .await,
    );
    too_many(
        &app.put(
            &format!("/1.2/rtm/conversations/{conv}/messages/{mid}"),
            json!({"from_client": "a", "message": "again", "timestamp": ts}),
        )
        .await,
    );
    too_many(&app.put(&format!("/1.2/rtm/conversations/{conv}/messages/{mid}/recall"), json!({"from_client": "a", "timestamp": ts})).await);
    too_many(&app.post(&format!("/1.2/rtm/chatrooms/{room}/messages"), json!({"from_client": "a", "message": "room"})).await);
    too_many(
        &app.post(
            &format!("/1.2/rtm/service-conversations/{svc}/messages"),
            json!({"from_client": "a", "to_clients": ["b"], "message": "x"}),
        )
        .await,
    );
    // nothing changed
    let after = app.get(&format!("/1.2/rtm/conversations/{conv}/messages")).await.ok().clone();
    assert_eq!(after, before);
    let edited = after.as_array().unwrap().iter().find(|m| m["msg-id"] == mid.as_str()).unwrap().clone();
    assert_eq!(edited["data"], "edited");
    assert_eq!(history_len(&app, "service-conversations", &svc).await, 0);

    // the other buckets are separate: a subscription message still goes out
    app.post(&format!("/1.2/rtm/service-conversations/{svc}/broadcasts"), json!({"from_client": "a", "message": "all"})).await.ok();
    // another app is unaffected
    other.send(&other_conv, "a", "fine").await;
    srv.stop().await;
}

#[tokio::test]
async fn subscription_bucket_dev_plan() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Dev).await;
    let svc = service_conv(&app, "svc").await;
    app.post(&format!("/1.2/rtm/service-conversations/{svc}/subscribers"), json!({"client_id": "sub"})).await.ok();
    for i in 0..10 {
        let r = if i % 2 == 0 {
            app.post(&format!("/1.2/rtm/service-conversations/{svc}/broadcasts"), json!({"from_client": "sys", "message": format!("s{i}")}))
                .await
        } else {
            app.post("/1.1/rtm/broadcast/subscriber", json!({"from_peer": "sys", "conv_id": svc, "message": format!("s{i}")})).await
        };
        assert_eq!(r.status, 200, "subscription message {i}: {:?}", r.body);
    }
    too_many(&app.post(&format!("/1.2/rtm/service-conversations/{svc}/broadcasts"), json!({"from_client": "sys", "message": "s10"})).await);
    too_many(&app.post("/1.1/rtm/broadcast/subscriber", json!({"from_peer": "sys", "conv_id": svc, "message": "s11"})).await);
    too_many(&app.post(&format!("/1.2/rtm/service-conversations/{svc}/broadcasts"), json!({"from_client": "sys", "message": "s12"})).await);
    assert_eq!(history_len(&app, "service-conversations", &svc).await, 10);
    let r = app.get(&format!("/1.2/rtm/service-conversations/{svc}/subscribers/sub/messages")).await;
    assert_eq!(r.ok().as_array().unwrap().len(), 10);
    // the message bucket is separate: a per-user message still goes out
    app.post(
        &format!("/1.2/rtm/service-conversations/{svc}/messages"),
        json!({"from_client": "sys", "to_clients": ["sub"], "message": "p"}),
    )
    .await
    .ok();
    assert_eq!(history_len(&app, "service-conversations", &svc).await, 11);
    srv.stop().await;
}

#[tokio::test]
async fn broadcast_bucket_dev_plan() {
    let srv = TestServer::start().await;
    let a = srv.app(Plan::Dev).await;
    let b = srv.app(Plan::Dev).await;
    let sa = service_conv(&a, "a").await;
    let sb = service_conv(&b, "b").await;

    // calls refused for their credentials do not count
    let body = json!({"from_client": "sys", "conv_id": sa, "message": "zero"});
    a.call(Method::POST, "/1.2/rtm/broadcasts", Auth::AppKey, Some(body.clone())).await.assert_error(403, 119);
    unauthorized(&a.call(Method::POST, "/1.1/rtm/broadcast", Auth::None, Some(body)).await);
    a.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": sa, "message": "one"})).await.ok();
    too_many(&a.post("/1.1/rtm/broadcast", json!({"from_peer": "sys", "conv_id": sa, "message": "two"})).await);
    too_many(&a.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": sa, "message": "three"})).await);
    let r = a.get(&format!("/1.2/rtm/broadcasts?conv_id={sa}")).await;
    let list = r.ok().as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["data"], "one");

    // the other app has its own allowance; 1.1 first this time
    b.post("/1.1/rtm/broadcast", json!({"from_peer": "sys", "conv_id": sb, "message": "one"})).await.ok();
    too_many(&b.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": sb, "message": "two"})).await);
    let r = b.get(&format!("/1.2/rtm/broadcasts?conv_id={sb}")).await;
    assert_eq!(r.ok().as_array().unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn daily_totals() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let other = srv.app(Plan::Standard).await;
    let e = srv.engine();
    e.apps().set_app_limit(&app.app.name, "rates.lc.broadcast.per_day", "2").await.unwrap();
    e.apps().set_app_limit(&app.app.name, "rates.lc.broadcast.per_minute", "100").await.unwrap();
    e.apps().set_app_limit(&app.app.name, "rates.lc.subscription.per_day", "2").await.unwrap();
    e.apps().set_app_limit(&app.app.name, "rates.lc.subscription.per_minute", "100").await.unwrap();
    let svc = service_conv(&app, "svc").await;
    let osvc = service_conv(&other, "svc").await;

    a_ok(&app.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc, "message": "1"})).await);
    a_ok(&app.post("/1.1/rtm/broadcast", json!({"from_peer": "sys", "conv_id": svc, "message": "2"})).await);
    too_many(&app.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc, "message": "3"})).await);
    too_many(&app.post("/1.1/rtm/broadcast", json!({"from_peer": "sys", "conv_id": svc, "message": "4"})).await);
    assert_eq!(app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await.ok().as_array().unwrap().len(), 2);

    a_ok(&app.post(&format!("/1.2/rtm/service-conversations/{svc}/broadcasts"), json!({"from_client": "sys", "message": "1"})).await);
    a_ok(&app.post("/1.1/rtm/broadcast/subscriber", json!({"from_peer": "sys", "conv_id": svc, "message": "2"})).await);
    too_many(&app.post(&format!("/1.2/rtm/service-conversations/{svc}/broadcasts"), json!({"from_client": "sys", "message": "3"})).await);
    assert_eq!(history_len(&app, "service-conversations", &svc).await, 2);

    // raising the daily total lets calls through again (the refusals did not count)
    e.apps().set_app_limit(&app.app.name, "rates.lc.broadcast.per_day", "3").await.unwrap();
    a_ok(&app.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc, "message": "5"})).await);
    too_many(&app.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc, "message": "6"})).await);

    // another app keeps its standard allowance
    for i in 0..3 {
        a_ok(&other.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": osvc, "message": i.to_string()})).await);
    }
    srv.stop().await;
}

#[track_caller]
fn a_ok(r: &Resp) {
    r.ok();
}

// ====================================================================== bad input

#[tokio::test]
async fn malformed_bodies_change_nothing() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;
    app.send(&conv, "a", "kept").await;
    let send = format!("/1.2/rtm/conversations/{conv}/messages");
    let members = format!("/1.2/rtm/conversations/{conv}/members");

    for body in [&b"{not json"[..], b"[1,2,3]", b"[]", b"\"text\"", b"42", b"null", b"{\"a\":1"] {
        app.call_raw(Method::POST, "/1.2/rtm/conversations", body.to_vec()).await.assert_error(400, 107);
        app.call_raw(Method::POST, &send, body.to_vec()).await.assert_error(400, 107);
        app.call_raw(Method::POST, &members, body.to_vec()).await.assert_error(400, 107);
    }
    let r = app.call_raw(Method::POST, &send, br#"[{"from_client":"a","message":"x"}]"#.to_vec()).await;
    r.assert_error(400, 107);

    // over 1 MiB: 413
    let big = json!({"from_client": "a", "message": "x".repeat(1024 * 1024 + 10)}).to_string().into_bytes();
    let r = app.call_raw(Method::POST, &send, big).await;
    r.assert_error(413, 413);
    // over 5 KB of message: 413, 4109
    app.post(&send, json!({"from_client": "a", "message": "x".repeat(5 * 1024 + 1)})).await.assert_error(413, 4109);

    // wrong types: 111
    app.post(&send, json!({"from_client": 1, "message": "x"})).await.assert_error(400, 111);
    app.post(&send, json!({"from_client": "a", "message": 5})).await.assert_error(400, 111);
    app.post(&send, json!({"from_client": "a", "message": "x", "transient": "yes"})).await.assert_error(400, 111);
    app.post(&send, json!({"from_client": "a", "message": "x", "mention_client_ids": "b"})).await.assert_error(400, 111);
    app.post("/1.2/rtm/conversations", json!({"name": 5})).await.assert_error(400, 111);
    app.post("/1.2/rtm/conversations", json!({"m": "a"})).await.assert_error(400, 111);
    app.post(&members, json!({"client_ids": "c"})).await.assert_error(400, 111);
    app.post(&members, json!({"client_ids": [1, 2]})).await.assert_error(400, 111);
    app.post("/1.2/rtm/clients/check-online", json!({"client_ids": "a"})).await.assert_error(400, 111);
    app.post("/1.2/rtm/clients/a/kick", json!({"reason": 3})).await.assert_error(400, 111);
    // missing parameters: 1
    app.post(&send, json!({"message": "x"})).await.assert_error(400, 1);
    app.post(&send, json!({"from_client": "a"})).await.assert_error(400, 1);

    // nothing was created, sent or added
    assert_eq!(app.get("/1.2/rtm/conversations?limit=0&count=1").await.ok()["count"], 1);
    let h = app.get(&format!("{send}?limit=1000")).await;
    assert_eq!(h.ok().as_array().unwrap().len(), 1);
    assert_eq!(h.ok()[0]["data"], "kept");
    assert_eq!(app.get(&members).await.ok(), &json!({"result": ["a", "b"]}));
    srv.stop().await;
}

#[tokio::test]
async fn unknown_ids() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;
    let (mid, ts) = app.send(&conv, "a", "hello").await;

    for id in ["123456789", "not-a-number", "5a5ecde6c3422b738c8779d7"] {
        app.get(&format!("/1.2/rtm/conversations/{id}/messages")).await.assert_error(404, 4303);
        app.post(&format!("/1.2/rtm/conversations/{id}/messages"), json!({"from_client": "a", "message": "x"}))
            .await
            .assert_error(404, 4303);
        app.put(&format!("/1.2/rtm/conversations/{id}"), json!({"name": "x"})).await.assert_error(404, 4303);
        app.get(&format!("/1.2/rtm/conversations/{id}/members")).await.assert_error(404, 4303);
        app.post("/1.1/rtm/messages", json!({"from_peer": "a", "conv_id": id, "message": "x"})).await.assert_error(404, 4303);
    }
    for m in ["987654321", "nope"] {
        app.put(&format!("/1.2/rtm/conversations/{conv}/messages/{m}"), json!({"from_client": "a", "message": "x", "timestamp": ts}))
            .await
            .assert_error(404, 4404);
        app.put(&format!("/1.2/rtm/conversations/{conv}/messages/{m}/recall"), json!({"from_client": "a", "timestamp": ts}))
            .await
            .assert_error(404, 4404);
        app.delete(
            &format!("/1.2/rtm/conversations/{conv}/messages/{m}{}", qs(&[("from_client", "a"), ("timestamp", &ts.to_string())])),
            None,
        )
        .await
        .assert_error(404, 4404);
    }
    // the right id with the wrong timestamp is not the message either; the wrong sender is 4403
    app.put(&format!("/1.2/rtm/conversations/{conv}/messages/{mid}"), json!({"from_client": "a", "message": "x", "timestamp": ts + 1}))
        .await
        .assert_error(404, 4404);
    app.put(&format!("/1.2/rtm/conversations/{conv}/messages/{mid}"), json!({"from_client": "b", "message": "x", "timestamp": ts}))
        .await
        .assert_error(403, 4403);
    app.delete(
        &format!("/1.2/rtm/conversations/{conv}/messages/{mid}{}", qs(&[("from_client", "a"), ("timestamp", &(ts - 1).to_string())])),
        None,
    )
    .await
    .assert_error(404, 4404);
    // the message is intact
    let h = app.get(&format!("/1.2/rtm/conversations/{conv}/messages")).await;
    assert_eq!(h.ok().as_array().unwrap().len(), 1);
    assert_eq!(h.ok()[0]["data"], "hello");
    assert!(h.ok()[0].get("patch-timestamp").is_none());
    srv.stop().await;
}

#[tokio::test]
async fn check_online_and_kick_limits() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let ids = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
    let r = app.post("/1.2/rtm/clients/check-online", json!({"client_ids": ids(20)})).await;
    assert_eq!(r.ok(), &json!({"results": []}));
    app.post("/1.2/rtm/clients/check-online", json!({"client_ids": ids(21)})).await.assert_error(400, 1);
    app.post("/1.2/rtm/clients/check-online", json!({})).await.assert_error(400, 1);

    assert_eq!(app.post("/1.2/rtm/clients/c1/kick", json!({"reason": "x".repeat(20)})).await.ok(), &json!({}));
    // 20 characters, not bytes
    assert_eq!(app.post("/1.2/rtm/clients/c1/kick", json!({"reason": "踢".repeat(20)})).await.ok(), &json!({}));
    app.post("/1.2/rtm/clients/c1/kick", json!({"reason": "x".repeat(21)})).await.assert_error(400, 1);
    srv.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["a"]})).await;
    for p in ["/1.2/rtm/nope", "/1.2/rtm/conversations/1/nope/x", "/1.2/rtm/clients/a/b/c", "/1.1/rtm/nope"] {
        let r = app.get(p).await;
        r.assert_error(404, 404);
    }
    let r = app.call(Method::PATCH, "/1.2/rtm/conversations", Auth::Master, Some(json!({}))).await;
    r.assert_error(405, 405);
    app.delete("/1.2/rtm/stats", None).await.assert_error(405, 405);
    app.get("/1.2/rtm/clients/check-online").await.assert_error(405, 405);
    app.get("/1.1/rtm/messages").await.assert_error(405, 405);
    app.put(&format!("/1.2/rtm/conversations/{conv}/messages"), json!({})).await.assert_error(405, 405);
    app.call(Method::GET, &format!("/1.2/rtm/conversations/{conv}"), Auth::Master, None).await.assert_error(405, 405);
    srv.stop().await;
}

#[tokio::test]
async fn rejected_member_and_mute_changes_keep_state() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;
    let members = format!("/1.2/rtm/conversations/{conv}/members");
    let mutes = format!("/1.2/rtm/conversations/{conv}/mutes");
    app.post(&mutes, json!({"client_ids": ["a"]})).await.ok();

    app.post(&mutes, json!({"client_ids": ["b", "stranger"]})).await.assert_error(400, 4317);
    app.delete(&members, Some(json!({"client_ids": 7}))).await.assert_error(400, 111);
    app.call_raw(Method::DELETE, &members, b"{oops".to_vec()).await.assert_error(400, 107);
    let too_many: Vec<String> = (0..501).map(|i| format!("u{i}")).collect();
    app.post(&members, json!({"client_ids": too_many})).await.assert_error(400, 4304);

    assert_eq!(app.get(&members).await.ok(), &json!({"result": ["a", "b"]}));
    let r = app.get(&mutes).await;
    let mu = r.ok();
    assert_eq!(mu, &json!({"result": ["a"]}), "{mu:?}");
    srv.stop().await;
}

// ====================================================================== history signatures

#[tokio::test]
async fn history_signatures() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let other = app.conversation(json!({"m": ["alice", "bob"]})).await;
    app.send(&conv, "alice", "one").await;
    app.send(&conv, "bob", "two").await;
    let (appid, mk) = (app.app_id().to_string(), app.master_key().to_string());
    let ts = now_ms().to_string();
    let sig = hmac_sha1_hex(&mk, &format!("{appid}:alice:{conv}:n0nce:{ts}"));
    let path = |c: &str, sig: &str, ts: &str| {
        format!(
            "/1.2/rtm/conversations/{c}/messages{}",
            qs(&[("client_id", "alice"), ("nonce", "n0nce"), ("signature_ts", ts), ("signature", sig)])
        )
    };

    // switch off: the app key gets 119, signature or not
    app.call(Method::GET, &path(&conv, &sig, &ts), Auth::AppKey, None).await.assert_error(403, 119);
    app.call(Method::GET, &format!("/1.2/rtm/conversations/{conv}/messages"), Auth::AppKey, None).await.assert_error(403, 119);
    // rights come before the lookup: an unknown conversation is 119 too, not 4303
    app.call(Method::GET, "/1.2/rtm/conversations/123456789/messages", Auth::AppKey, None).await.assert_error(403, 119);

    srv.engine().apps().set_app_limit(&app.app.name, "lc_sign_history", "true").await.unwrap();
    let r = app.call(Method::GET, &path(&conv, &sig, &ts), Auth::AppKey, None).await;
    let h = r.ok().as_array().unwrap().clone();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["data"], "two");
    // the usual history parameters still apply
    let r = app.call(Method::GET, &format!("{}&limit=1", path(&conv, &sig, &ts)), Auth::AppKey, None).await;
    assert_eq!(r.ok().as_array().unwrap().len(), 1);
    // seconds work too
    let secs = (now_ms() / 1000).to_string();
    let sig_s = hmac_sha1_hex(&mk, &format!("{appid}:alice:{conv}:n0nce:{secs}"));
    app.call(Method::GET, &path(&conv, &sig_s, &secs), Auth::AppKey, None).await.ok();

    // wrong signature: 403, 4302
    app.call(Method::GET, &path(&conv, &"0".repeat(40), &ts), Auth::AppKey, None).await.assert_error(403, 4302);
    app.call(Method::GET, &path(&conv, &sig.to_uppercase(), &ts), Auth::AppKey, None).await.assert_error(403, 4302);
    // signed for another conversation, another time, or with the app key
    app.call(Method::GET, &path(&other, &sig, &ts), Auth::AppKey, None).await.assert_error(403, 4302);
    let later = (ts.parse::<i64>().unwrap() + 1).to_string();
    app.call(Method::GET, &path(&conv, &sig, &later), Auth::AppKey, None).await.assert_error(403, 4302);
    let app_key_sig = hmac_sha1_hex(app.app_key(), &format!("{appid}:alice:{conv}:n0nce:{ts}"));
    app.call(Method::GET, &path(&conv, &app_key_sig, &ts), Auth::AppKey, None).await.assert_error(403, 4302);
    // expired (over six hours old)
    let old = (now_ms() - 7 * 3600 * 1000).to_string();
    let old_sig = hmac_sha1_hex(&mk, &format!("{appid}:alice:{conv}:n0nce:{old}"));
    app.call(Method::GET, &path(&conv, &old_sig, &old), Auth::AppKey, None).await.assert_error(403, 4302);
    // no signature at all: 403
    let r = app.call(Method::GET, &format!("/1.2/rtm/conversations/{conv}/messages"), Auth::AppKey, None).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.body["code"].is_i64());
    // without a valid signature an unknown conversation is 4302 as well; with one, 4303
    let unknown = "123456789";
    app.call(Method::GET, &format!("/1.2/rtm/conversations/{unknown}/messages"), Auth::AppKey, None).await.assert_error(403, 4302);
    app.call(Method::GET, &path(unknown, &sig, &ts), Auth::AppKey, None).await.assert_error(403, 4302);
    let unknown_sig = hmac_sha1_hex(&mk, &format!("{appid}:alice:{unknown}:n0nce:{ts}"));
    app.call(Method::GET, &path(unknown, &unknown_sig, &ts), Auth::AppKey, None).await.assert_error(404, 4303);
    // the official demo's order (…:signature_ts:nonce) is accepted too
    let demo = hmac_sha1_hex(&mk, &format!("{appid}:alice:{conv}:{ts}:n0nce"));
    app.call(Method::GET, &path(&conv, &demo, &ts), Auth::AppKey, None).await.ok();
    // a signature is no way around the missing credentials
    unauthorized(&app.call(Method::GET, &path(&conv, &sig, &ts), Auth::None, None).await);
    // the master key needs no signature
    app.get(&format!("/1.2/rtm/conversations/{conv}/messages")).await.ok();
    // other master-only endpoints stay master-only
    app.call(Method::GET, "/1.2/rtm/messages", Auth::AppKey, None).await.assert_error(403, 119);

    // switched off again
    srv.engine().apps().set_app_limit(&app.app.name, "lc_sign_history", "false").await.unwrap();
    app.call(Method::GET, &path(&conv, &sig, &ts), Auth::AppKey, None).await.assert_error(403, 119);
    srv.stop().await;
}
