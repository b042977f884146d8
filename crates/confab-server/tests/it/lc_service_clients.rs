//! LeanCloud face over real HTTP: service conversations and their subscribers, a client's
//! subscriptions, app-wide broadcasts, client calls (online, kick, stats), `_User` session tokens
//! and login signatures.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;

async fn service_conv(app: &LcApp, name: &str) -> String {
    let r = app.post("/1.2/rtm/service-conversations", json!({"name": name})).await;
    let b = r.ok();
    assert!(b["createdAt"].is_string(), "{b:?}");
    b["objectId"].as_str().unwrap().to_string()
}

fn arr(r: &Resp) -> Vec<Value> {
    r.ok().as_array().unwrap_or_else(|| panic!("array expected: {:?}", r.body)).clone()
}

// ====================================================================== subscribers

#[tokio::test]
async fn subscribers_list_page_and_count() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let svc = service_conv(&app, "news").await;
    let base = format!("/1.2/rtm/service-conversations/{svc}/subscribers");

    // 60 subscribers, subscribed out of client-id order
    let mut ids: Vec<String> = (0..60).map(|i| format!("c{i:02}")).collect();
    ids.reverse();
    ids.swap(3, 40);
    let before = now_ms();
    for id in &ids {
        let r = app.post(&base, json!({"client_id": id})).await;
        assert_eq!(r.ok(), &json!({}));
    }
    // subscribing twice is harmless
    assert_eq!(app.post(&base, json!({"client_id": "c10"})).await.ok(), &json!({}));
    assert_eq!(app.get(&format!("{base}/count")).await.ok(), &json!({"count": 60}));

    let mut sorted = ids.clone();
    sorted.sort();
    // default page: 50, ordered by client id, with the documented fields
    let page = arr(&app.get(&base).await);
    assert_eq!(page.len(), 50);
    let got: Vec<&str> = page.iter().map(|s| s["subscriber"].as_str().unwrap()).collect();
    assert_eq!(got, sorted[..50].iter().map(String::as_str).collect::<Vec<_>>());
    for s in &page {
        assert_eq!(s.as_object().unwrap().len(), 3, "{s:?}");
        assert_eq!(s["conv_id"], svc.as_str());
        let ts = s["timestamp"].as_i64().expect("timestamp in ms");
        assert!(ts >= before - 1000 && ts <= now_ms() + 1000, "{ts}");
    }
    // limit is at most 50
    assert_eq!(arr(&app.get(&format!("{base}?limit=100")).await).len(), 50);
    assert_eq!(arr(&app.get(&format!("{base}?limit=3")).await).len(), 3);

    // paging with the last client id walks every subscriber once
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => qs(&[("limit", "7"), ("client_id", c)]),
            None => qs(&[("limit", "7")]),
        };
        let page = arr(&app.get(&format!("{base}{q}")).await);
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        for s in &page {
            walked.push(s["subscriber"].as_str().unwrap().to_string());
        }
        cursor = walked.last().cloned();
        assert!(walked.len() <= 60, "paging does not end");
    }
    assert_eq!(walked, sorted);
    // the cursor itself is excluded
    let after = arr(&app.get(&format!("{base}{}", qs(&[("client_id", "c10")]))).await);
    assert_eq!(after[0]["subscriber"], "c11");

    // unsubscribe
    let r = app.delete(&format!("{base}/c05"), None).await;
    assert_eq!(r.ok(), &json!({}));
    assert_eq!(app.get(&format!("{base}/count")).await.ok(), &json!({"count": 59}));
    let all: Vec<Value> = arr(&app.get(&format!("{base}?limit=50")).await)
        .into_iter()
        .chain(arr(&app.get(&format!("{base}{}", qs(&[("client_id", "c50")]))).await))
        .collect();
    assert!(all.iter().all(|s| s["subscriber"] != "c05"));
    assert_eq!(all.len(), 59);

    // unsubscribing someone who is not subscribed is harmless
    assert_eq!(app.delete(&format!("{base}/ghost"), None).await.ok(), &json!({}));
    assert_eq!(app.get(&format!("{base}/count")).await.ok(), &json!({"count": 59}));

    // a normal conversation is not a service conversation: 4313, and nothing changes
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;
    app.post(&format!("/1.2/rtm/service-conversations/{conv}/subscribers"), json!({"client_id": "x"})).await.assert_error(400, 4313);
    app.get(&format!("/1.2/rtm/service-conversations/{conv}/subscribers")).await.assert_error(400, 4313);
    app.get(&format!("/1.2/rtm/service-conversations/{conv}/subscribers/count")).await.assert_error(400, 4313);
    app.delete(&format!("/1.2/rtm/service-conversations/{conv}/subscribers/a"), None).await.assert_error(400, 4313);
    assert_eq!(app.get(&format!("/1.2/rtm/conversations/{conv}/members")).await.ok(), &json!({"result": ["a", "b"]}));
    // unknown: 4303; missing client_id: 400
    app.post("/1.2/rtm/service-conversations/999/subscribers", json!({"client_id": "x"})).await.assert_error(404, 4303);
    app.post(&base, json!({})).await.assert_error(400, 1);
    srv.stop().await;
}

// ====================================================================== a client's subscriptions

#[tokio::test]
async fn client_service_conversations() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let mut convs = Vec::new();
    for i in 0..7 {
        convs.push(service_conv(&app, &format!("svc{i}")).await);
    }
    // subscribe in an order that is not creation order, one ms apart at least
    let order = [3usize, 0, 6, 1, 5, 2, 4];
    for &i in &order {
        app.post(&format!("/1.2/rtm/service-conversations/{}/subscribers", convs[i]), json!({"client_id": "alice"})).await.ok();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // bob subscribes to one; a normal conversation with alice is not listed
    app.post(&format!("/1.2/rtm/service-conversations/{}/subscribers", convs[0]), json!({"client_id": "bob"})).await.ok();
    app.conversation(json!({"m": ["alice", "bob"]})).await;
    let expected: Vec<&str> = order.iter().map(|&i| convs[i].as_str()).collect();
    let base = "/1.2/rtm/clients/alice/service-conversations";

    // new (default): oldest subscription first
    let list = arr(&app.get(base).await);
    let got: Vec<&str> = list.iter().map(|s| s["conv_id"].as_str().unwrap()).collect();
    assert_eq!(got, expected);
    for s in &list {
        assert_eq!(s["subscriber"], "alice");
        assert!(s["timestamp"].is_i64());
    }
    let ts: Vec<i64> = list.iter().map(|s| s["timestamp"].as_i64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    assert_eq!(arr(&app.get(&format!("{base}?direction=new")).await), list);
    // old: newest first
    let old = arr(&app.get(&format!("{base}?direction=old")).await);
    let mut rev = list.clone();
    rev.reverse();
    assert_eq!(old, rev);

    // paging with the last item's conv_id and timestamp walks all once, either way
    for (dir, want) in [("new", &list), ("old", &rev)] {
        let mut walked: Vec<Value> = Vec::new();
        let mut cursor: Option<(String, String)> = None;
        loop {
            let mut p = vec![("limit", "3".to_string()), ("direction", dir.to_string())];
            if let Some((c, t)) = &cursor {
                p.push(("conv_id", c.clone()));
                p.push(("timestamp", t.clone()));
            }
            let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let page = arr(&app.get(&format!("{base}{}", qs(&pairs))).await);
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            walked.extend(page.iter().cloned());
            let last = page.last().unwrap();
            cursor = Some((last["conv_id"].as_str().unwrap().to_string(), last["timestamp"].as_i64().unwrap().to_string()));
            assert!(walked.len() <= 7, "paging does not end");
        }
        assert_eq!(&walked, want, "direction {dir}");
    }

    // conv_id without timestamp: 400; a bad direction: 400
    app.get(&format!("{base}{}", qs(&[("conv_id", &convs[0])]))).await.assert_error(400, 1);
    app.get(&format!("{base}?direction=sideways")).await.assert_error(400, 1);
    // bob sees one; a client without subscriptions sees none
    assert_eq!(arr(&app.get("/1.2/rtm/clients/bob/service-conversations").await).len(), 1);
    assert_eq!(arr(&app.get("/1.2/rtm/clients/nobody/service-conversations").await).len(), 0);
    // unsubscribing removes it
    app.delete(&format!("/1.2/rtm/service-conversations/{}/subscribers/alice", convs[order[0]]), None).await.ok();
    let list = arr(&app.get(base).await);
    assert_eq!(list.len(), 6);
    assert_eq!(list[0]["conv_id"], expected[1]);
    srv.stop().await;
}

// ====================================================================== broadcasts

#[tokio::test]
async fn global_broadcasts() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    srv.engine().apps().set_app_limit(&app.app.name, "rates.lc.broadcast.per_minute", "100").await.unwrap();
    srv.engine().apps().set_app_limit(&app.app.name, "rates.lc.broadcast.per_day", "100").await.unwrap();
    let svc = service_conv(&app, "news").await;
    let svc2 = service_conv(&app, "other").await;
    app.post(&format!("/1.2/rtm/service-conversations/{svc}/subscribers"), json!({"client_id": "reader"})).await.ok();
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;

    let t0 = now_ms();
    let r = app.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc, "message": "first"})).await;
    let first = r.ok().clone();
    assert_eq!(first.as_object().unwrap().len(), 2, "{first:?}");
    let (m1, ts1) = (first["msg-id"].as_str().unwrap().to_string(), first["timestamp"].as_i64().unwrap());
    assert!(ts1 >= t0 - 1000 && ts1 <= now_ms() + 1000);
    let till = now_ms() + 7 * DAY_MS;
    let push = json!({"alert": "hello", "badge": "Increment"});
    let r = app
        .post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc, "message": "second", "valid_till": till, "push": push}))
        .await;
    let m2 = r.ok()["msg-id"].as_str().unwrap().to_string();
    let ts2 = r.ok()["timestamp"].as_i64().unwrap();
    // a JSON message object is accepted (as its text)
    app.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc2, "message": {"_lctype": -1, "_lctext": "typed"}}))
        .await
        .ok();

    // listed newest first, with the documented fields
    let list = arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["msg-id"], m2.as_str());
    assert_eq!(list[1]["msg-id"], m1.as_str());
    assert_eq!(list[0]["conv-id"], svc.as_str());
    assert_eq!(list[0]["from"], "sys");
    assert_eq!(list[0]["data"], "second");
    assert_eq!(list[0]["bin"], false);
    assert_eq!(list[0]["timestamp"], ts2);
    assert_eq!(list[0]["valid_till"], till);
    assert_eq!(list[0]["push"], push);
    // the default validity is 30 days
    let vt = list[1]["valid_till"].as_i64().unwrap();
    assert!((vt - (ts1 + 30 * DAY_MS)).abs() < 5000, "{vt} vs {ts1}");
    assert!(list[1].get("push").is_none() || list[1]["push"].is_null());
    // limit and skip
    let one = arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}&limit=1&skip=1")).await);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["msg-id"], m1.as_str());
    // other conversation's broadcasts are listed under it only
    let other = arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc2}")).await);
    assert_eq!(other.len(), 1);
    let typed: Value = serde_json::from_str(other[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(typed, json!({"_lctype": -1, "_lctext": "typed"}));

    // bad input: 400, nothing stored
    let now = now_ms();
    for (body, status, code) in [
        (json!({"from_client": "sys", "conv_id": svc, "message": "x", "valid_till": now + 31 * DAY_MS}), 400, 1),
        (json!({"from_client": "sys", "conv_id": svc, "message": "x", "valid_till": now - 1000}), 400, 1),
        (json!({"from_client": "sys", "conv_id": conv, "message": "x"}), 400, 4313),
        (json!({"from_client": "sys", "message": "x"}), 400, 1),
        (json!({"from_client": "sys", "conv_id": svc}), 400, 1),
        (json!({"conv_id": svc, "message": "x"}), 400, 1),
        (json!({"from_client": "sys", "conv_id": svc, "message": "x", "valid_till": "soon"}), 400, 111),
        (json!({"from_client": "sys", "conv_id": svc, "message": "x", "push": 5}), 400, 111),
        (json!({"from_client": "sys", "conv_id": "999", "message": "x"}), 404, 4303),
    ] {
        let r = app.post("/1.2/rtm/broadcasts", body.clone()).await;
        assert_eq!((r.status, r.body["code"].clone()), (status, json!(code)), "{body} -> {:?}", r.body);
    }
    assert_eq!(arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await).len(), 2);
    app.get("/1.2/rtm/broadcasts").await.assert_error(400, 1);
    app.get(&format!("/1.2/rtm/broadcasts?conv_id={conv}")).await.assert_error(400, 4313);

    // broadcasts never appear in history
    assert_eq!(arr(&app.get(&format!("/1.2/rtm/service-conversations/{svc}/messages")).await).len(), 0);
    assert_eq!(arr(&app.get(&format!("/1.2/rtm/service-conversations/{svc}/subscribers/reader/messages")).await).len(), 0);
    assert_eq!(arr(&app.get("/1.2/rtm/messages").await).len(), 0);
    assert_eq!(arr(&app.get("/1.2/rtm/clients/sys/messages").await).len(), 0);

    // edit through the service conversation's message path
    let edit = format!("/1.2/rtm/service-conversations/{svc}/messages/{m1}");
    assert_eq!(app.put(&edit, json!({"from_client": "sys", "message": "first, edited", "timestamp": ts1})).await.ok(), &json!({}));
    let list = arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await);
    assert_eq!(list[1]["data"], "first, edited");
    assert_eq!(list[1]["timestamp"], ts1);
    assert_eq!(list[0]["data"], "second");
    // the wrong timestamp or sender, or another service conversation: refused, unchanged
    app.put(&edit, json!({"from_client": "sys", "message": "no", "timestamp": ts1 + 1})).await.assert_error(404, 4404);
    app.put(&edit, json!({"from_client": "someone", "message": "no", "timestamp": ts1})).await.assert_error(403, 4403);
    app.put(
        &format!("/1.2/rtm/service-conversations/{svc2}/messages/{m1}"),
        json!({"from_client": "sys", "message": "no", "timestamp": ts1}),
    )
    .await
    .assert_error(404, 4404);
    assert_eq!(arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await)[1]["data"], "first, edited");

    // delete
    assert_eq!(app.delete(&format!("/1.2/rtm/broadcasts/{m2}"), None).await.ok(), &json!({}));
    let list = arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["msg-id"], m1.as_str());
    app.delete(&format!("/1.2/rtm/broadcasts/{m2}"), None).await.assert_error(404, 4404);
    // another app cannot delete it
    let stranger = srv.app(Plan::Standard).await;
    stranger.delete(&format!("/1.2/rtm/broadcasts/{m1}"), None).await.assert_error(404, 4404);
    assert_eq!(arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await).len(), 1);
    app.delete("/1.2/rtm/broadcasts/123456", None).await.assert_error(404, 4404);
    app.delete("/1.2/rtm/broadcasts/nope", None).await.assert_error(404, 4404);

    // a transient broadcast is sent but not kept
    let r = app.post("/1.2/rtm/broadcasts", json!({"from_client": "sys", "conv_id": svc, "message": "now only", "transient": true})).await;
    assert!(r.ok()["msg-id"].is_string());
    let list = arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["msg-id"], m1.as_str());

    // REST 1.1 broadcast lands in the same list
    let r = app.post("/1.1/rtm/broadcast", json!({"from_peer": "sys", "conv_id": svc, "message": "v11"})).await;
    let m3 = r.ok()["msg-id"].as_str().unwrap().to_string();
    let list = arr(&app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await);
    assert_eq!(list[0]["msg-id"], m3.as_str());
    assert_eq!(list[0]["data"], "v11");
    // the master key is required
    app.call(Method::POST, "/1.2/rtm/broadcasts", Auth::AppKey, Some(json!({"from_client": "sys", "conv_id": svc, "message": "x"})))
        .await
        .assert_error(403, 119);
    app.call(Method::GET, &format!("/1.2/rtm/broadcasts?conv_id={svc}"), Auth::AppKey, None).await.assert_error(403, 119);
    srv.stop().await;
}

// ====================================================================== clients

#[tokio::test]
async fn check_online_kick_and_stats() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let r = app.post("/1.2/rtm/clients/check-online", json!({"client_ids": ["Tom", "Jerry"]})).await;
    assert_eq!(r.ok(), &json!({"results": []}));
    let r = app.post("/1.2/rtm/clients/check-online", json!({"client_ids": []})).await;
    assert_eq!(r.ok(), &json!({"results": []}));
    assert_eq!(app.post("/1.2/rtm/clients/Tom/kick", json!({"reason": "why"})).await.ok(), &json!({}));
    assert_eq!(app.post("/1.2/rtm/clients/Tom/kick", json!({})).await.ok(), &json!({}));
    // an empty body is an empty object
    assert_eq!(app.call_raw(Method::POST, "/1.2/rtm/clients/Tom/kick", Vec::new()).await.ok(), &json!({}));

    let stats = || async { app.get("/1.2/rtm/stats").await.ok().clone() };
    assert_eq!(stats().await, json!({"result": {"online_user_count": 0, "user_count_today": 0}}));
    // signing up is not logging in
    for u in ["u1", "u2", "u3"] {
        let r = app.call(Method::POST, "/1.1/users", Auth::AppKey, Some(json!({"username": u, "password": "pw"}))).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    assert_eq!(stats().await["result"]["user_count_today"], 0);
    let login = |u: &'static str, p: &'static str| {
        let app = &app;
        async move { app.call(Method::POST, "/1.1/login", Auth::AppKey, Some(json!({"username": u, "password": p}))).await }
    };
    login("u1", "pw").await.ok();
    assert_eq!(stats().await["result"]["user_count_today"], 1);
    login("u1", "pw").await.ok();
    login("u2", "pw").await.ok();
    // a failed login does not count
    login("u3", "wrong").await.assert_error(400, 210);
    assert_eq!(stats().await, json!({"result": {"online_user_count": 0, "user_count_today": 2}}));
    // another app's logins are its own
    let other = srv.app(Plan::Standard).await;
    assert_eq!(other.get("/1.2/rtm/stats").await.ok()["result"]["user_count_today"], 0);
    srv.stop().await;
}

// ====================================================================== users and login signatures

/// A call with the app key.
async fn ak(app: &LcApp, m: Method, p: &str, b: Option<Value>) -> Resp {
    app.call(m, p, Auth::AppKey, b).await
}

#[tokio::test]
async fn users_and_login_signatures() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;

    // sign up
    let r = ak(&app, Method::POST, "/1.1/users", Some(json!({"username": "alice", "password": "s3cret"}))).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let user = r.body.clone();
    let oid = user["objectId"].as_str().unwrap().to_string();
    let token = user["sessionToken"].as_str().unwrap().to_string();
    assert!(user["createdAt"].is_string());
    assert!(!token.is_empty());
    // duplicate username: 202; missing password: 201; missing username: 200
    let r = ak(&app, Method::POST, "/1.1/users", Some(json!({"username": "alice", "password": "other"}))).await;
    r.assert_error(400, 202);
    ak(&app, Method::POST, "/1.1/users", Some(json!({"username": "bob"}))).await.assert_error(400, 201);
    ak(&app, Method::POST, "/1.1/users", Some(json!({"username": "bob", "password": ""}))).await.assert_error(400, 201);
    ak(&app, Method::POST, "/1.1/users", Some(json!({"password": "x"}))).await.assert_error(400, 200);
    // without credentials: 401
    let r = app.call(Method::POST, "/1.1/users", Auth::None, Some(json!({"username": "carol", "password": "x"}))).await;
    assert_eq!(r.status, 401);

    // log in
    let r = ak(&app, Method::POST, "/1.1/login", Some(json!({"username": "alice", "password": "s3cret"}))).await;
    let login = r.ok().clone();
    assert_eq!(login["objectId"], oid.as_str());
    assert_eq!(login["username"], "alice");
    let token2 = login["sessionToken"].as_str().unwrap().to_string();
    ak(&app, Method::POST, "/1.1/login", Some(json!({"username": "alice", "password": "wrong"}))).await.assert_error(400, 210);
    ak(&app, Method::POST, "/1.1/login", Some(json!({"username": "nobody", "password": "x"}))).await.assert_error(400, 211);

    // me
    for t in [&token, &token2] {
        let r = app
            .call(
                Method::GET,
                "/1.1/users/me",
                Auth::Headers(vec![
                    ("X-LC-Id".into(), app.app_id().into()),
                    ("X-LC-Key".into(), app.app_key().into()),
                    ("X-LC-Session".into(), t.to_string()),
                ]),
                None,
            )
            .await;
        assert_eq!(r.ok()["objectId"], oid.as_str());
        assert_eq!(r.ok()["username"], "alice");
    }
    let r = app
        .call(
            Method::GET,
            "/1.1/users/me",
            Auth::Headers(vec![
                ("X-LC-Id".into(), app.app_id().into()),
                ("X-LC-Key".into(), app.app_key().into()),
                ("X-LC-Session".into(), "bogus".into()),
            ]),
            None,
        )
        .await;
    r.assert_error(400, 211);

    // the login signature
    let (appid, mk) = (app.app_id().to_string(), app.master_key().to_string());
    let check = |b: &Value| {
        assert_eq!(b.as_object().unwrap().len(), 4, "{b:?}");
        assert_eq!(b["client_id"], oid.as_str());
        let ts = b["timestamp"].as_i64().expect("timestamp");
        assert!((ts - now_ms()).abs() < 60_000);
        let nonce = b["nonce"].as_str().expect("nonce");
        assert!(!nonce.is_empty());
        let want = hmac_sha1_hex(&mk, &format!("{appid}:{oid}::{ts}:{nonce}"));
        assert_eq!(b["signature"], want.as_str());
        nonce.to_string()
    };
    let get_sign = |t: &str| {
        let p = format!("/1.2/rtm/clients/sign{}", qs(&[("session_token", t)]));
        let app = &app;
        async move { ak(app, Method::GET, &p, None).await }
    };
    let n1 = check(get_sign(&token).await.ok());
    let n2 = check(get_sign(&token).await.ok());
    assert_ne!(n1, n2, "every call signs with a fresh nonce");
    check(get_sign(&token2).await.ok());
    let n3 = check(ak(&app, Method::POST, "/1.1/rtm/sign", Some(json!({"session_token": token}))).await.ok());
    let n4 = check(ak(&app, Method::POST, "/1.1/rtm/sign", Some(json!({"session_token": token}))).await.ok());
    let nonces: HashSet<String> = [n1, n2, n3, n4].into_iter().collect();
    assert_eq!(nonces.len(), 4);
    // the master key may sign too
    check(app.get(&format!("/1.2/rtm/clients/sign{}", qs(&[("session_token", &token)]))).await.ok());

    // bad or missing tokens
    let r = get_sign("bogus").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"code": 211, "error": "Could not find user."}));
    ak(&app, Method::POST, "/1.1/rtm/sign", Some(json!({"session_token": "bogus"}))).await.assert_error(400, 211);
    let r = ak(&app, Method::GET, "/1.2/rtm/clients/sign", None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = ak(&app, Method::GET, "/1.2/rtm/clients/sign?session_token=", None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = ak(&app, Method::POST, "/1.1/rtm/sign", Some(json!({}))).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    ak(&app, Method::POST, "/1.1/rtm/sign", Some(json!({"session_token": 5}))).await.assert_error(400, 111);
    // another app's token names no user here
    let other = srv.app(Plan::Standard).await;
    let r = other.call(Method::GET, &format!("/1.2/rtm/clients/sign{}", qs(&[("session_token", &token)])), Auth::AppKey, None).await;
    r.assert_error(400, 211);
    srv.stop().await;
}
