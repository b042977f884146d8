//! The LeanEngine hook-server harness itself (`common::leanengine`): LeanCloud's official LeanEngine
//! SDK answers hook calls made here directly, as LeanCloud's IM server would make them, with what the
//! test scripted, and records them.

use std::time::{Duration, Instant};

use crate::common::leanengine::{leanengine_or_skip, master_sign, LeanEngine};
use crate::common::now_ms;
use serde_json::{json, Value};

const APP_ID: &str = "hooksapp1234567890abcdef-gzGzoHsz";
const APP_KEY: &str = "hooks-app-key";
const MASTER_KEY: &str = "hooks-master-key";
const HOOK_KEY: &str = "hooks-hook-key";

/// POST `{url}/1.1/functions/{name}` signed with the master key, with the hook key if given.
async fn call(le: &LeanEngine, name: &str, hook_key: Option<&str>, params: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/1.1/functions/{name}", le.url()))
        .header("X-LC-Id", APP_ID)
        .header("X-LC-Sign", master_sign(MASTER_KEY, now_ms()))
        .json(&params);
    if let Some(k) = hook_key {
        req = req.header("X-LC-Hook-Key", k);
    }
    let resp = req.send().await.expect("LeanEngine answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

async fn metadatas(le: &LeanEngine, sign: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}/1.1/functions/_ops/metadatas", le.url()))
        .header("X-LC-Id", APP_ID)
        .header("X-LC-Sign", sign)
        .send()
        .await
        .expect("LeanEngine answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn leanengine_answers_hooks_as_scripted() {
    if !leanengine_or_skip("leanengine_answers_hooks_as_scripted") {
        return;
    }
    let le = LeanEngine::start(APP_ID, APP_KEY, MASTER_KEY, HOOK_KEY, None).await;

    // unscripted: {} as the result
    let params = json!({"fromPeer": "Tom", "convId": "c1", "toPeers": ["Jerry"], "content": "hi", "bin": false});
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), params.clone()).await, (200, json!({"result": {}})));
    let calls = le.calls("_messageReceived").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["name"], "_messageReceived");
    assert_eq!(calls[0]["path"], "/1.1/functions/_messageReceived");
    assert_eq!(calls[0]["params"], params);
    assert_eq!(calls[0]["headers"]["x-lc-id"], APP_ID);
    assert_eq!(calls[0]["headers"]["x-lc-hook-key"], HOOK_KEY);
    assert!(calls[0]["headers"]["x-lc-sign"].as_str().unwrap().ends_with(",master"));
    assert!(calls[0]["headers"].get("x-lc-key").is_none());
    assert!((calls[0]["at"].as_i64().unwrap() - now_ms()).abs() < 60_000);

    // every answer form, in order, then the default
    le.script(
        "_messageReceived",
        json!([
            {"return": {"drop": true, "code": 123, "detail": "blocked"}},
            {"throw": {"code": 4321, "message": "not today"}},
            {"throw": {"code": 7, "message": "forbidden", "status": 403}},
            {"crash": "boom"},
            {"delayMs": 400, "return": {"content": "late"}},
            {"return": null},
        ]),
        Some(json!({"return": {"content": "default"}})),
    )
    .await;
    let m = |n: i64| json!({"fromPeer": "Tom", "n": n});
    assert_eq!(
        call(&le, "_messageReceived", Some(HOOK_KEY), m(1)).await,
        (200, json!({"result": {"drop": true, "code": 123, "detail": "blocked"}}))
    );
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), m(2)).await, (400, json!({"code": 4321, "error": "not today"})));
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), m(3)).await, (403, json!({"code": 7, "error": "forbidden"})));
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), m(4)).await, (500, json!({"code": 1, "error": "boom"})));
    let t = Instant::now();
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), m(5)).await, (200, json!({"result": {"content": "late"}})));
    assert!(t.elapsed() >= Duration::from_millis(400), "delayMs waited only {:?}", t.elapsed());
    // a function returning undefined: no `result` at all
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), m(6)).await, (200, json!({})));
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), m(7)).await, (200, json!({"result": {"content": "default"}})));
    assert_eq!(call(&le, "_messageReceived", Some(HOOK_KEY), m(8)).await, (200, json!({"result": {"content": "default"}})));
    let calls = le.wait_calls("_messageReceived", 9, Duration::from_secs(5)).await;
    let ns: Vec<&Value> = calls[1..].iter().map(|c| &c["params"]["n"]).collect();
    assert_eq!(ns, [1, 2, 3, 4, 5, 6, 7, 8]);

    // scripts are per hook: another hook still answers {}
    assert_eq!(call(&le, "_rtmClientSign", Some(HOOK_KEY), json!({"objectId": "u1"})).await, (200, json!({"result": {}})));
    le.script("_rtmClientSign", json!([{"return": false}]), None).await;
    assert_eq!(call(&le, "_rtmClientSign", Some(HOOK_KEY), json!({})).await, (200, json!({"result": false})));
    assert_eq!(call(&le, "_rtmClientSign", Some(HOOK_KEY), json!({})).await, (200, json!({"result": {}})));

    // LeanEngine's own checks: the hook key, the app id, the signature; such calls never reach the hook
    le.reset().await;
    let (status, body) = call(&le, "_messageReceived", None, json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], 401);
    assert!(body["error"].as_str().unwrap().starts_with("Hook key check failed, request from "), "{body}");
    assert_eq!(call(&le, "_messageReceived", Some("wrong"), json!({})).await.0, 401);
    let resp = reqwest::Client::new()
        .post(format!("{}/1.1/functions/_messageReceived", le.url()))
        .header("X-LC-Id", APP_ID)
        .header("X-LC-Sign", master_sign("not-the-master-key", now_ms()))
        .header("X-LC-Hook-Key", HOOK_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"code": 401, "error": "Unauthorized."}));
    // the plain app key passes too
    let resp = reqwest::Client::new()
        .post(format!("{}/1.1/functions/_clientOnline", le.url()))
        .header("X-LC-Id", APP_ID)
        .header("X-LC-Key", APP_KEY)
        .header("X-LC-Hook-Key", HOOK_KEY)
        .json(&json!({"peerId": "Tom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(le.calls("_messageReceived").await.is_empty());
    assert_eq!(le.calls("_clientOnline").await[0]["headers"]["x-lc-key"], APP_KEY);

    // _ops/metadatas: all 14 with master rights; 401 with the app key's sign
    let (status, body) = metadatas(&le, &master_sign(MASTER_KEY, now_ms())).await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = body["result"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_clientOffline",
            "_clientOnline",
            "_conversationAdd",
            "_conversationAdded",
            "_conversationRemove",
            "_conversationRemoved",
            "_conversationStart",
            "_conversationStarted",
            "_conversationUpdate",
            "_messageReceived",
            "_messageSent",
            "_messageUpdate",
            "_receiversOffline",
            "_rtmClientSign"
        ]
    );
    let ts = now_ms();
    let app_sign = format!("{},{ts}", hex::encode(<md5::Md5 as md5::Digest>::digest(format!("{ts}{APP_KEY}"))));
    assert_eq!(metadatas(&le, &app_sign).await, (401, json!({"code": 401, "error": "Unauthorized."})));
}

#[tokio::test]
async fn leanengine_with_some_hooks_and_a_short_timeout() {
    if !leanengine_or_skip("leanengine_with_some_hooks_and_a_short_timeout") {
        return;
    }
    let defined = ["_messageReceived", "_clientOnline"];
    let le = LeanEngine::start_with_timeout(APP_ID, APP_KEY, MASTER_KEY, HOOK_KEY, Some(&defined), Some(Duration::from_millis(300))).await;

    let (status, body) = metadatas(&le, &master_sign(MASTER_KEY, now_ms())).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"result": defined}));

    // an undefined hook: 404, whether or not the hook key is right
    let not_defined = json!({"code": 1, "error": "No such cloud function '_messageSent'"});
    assert_eq!(call(&le, "_messageSent", Some(HOOK_KEY), json!({})).await, (404, not_defined.clone()));
    assert_eq!(call(&le, "_messageSent", None, json!({})).await, (404, not_defined));

    // past LeanEngine's timeout: 503, code 124
    le.script("_clientOnline", json!([{"delayMs": 1000}]), None).await;
    let t = Instant::now();
    let answer = call(&le, "_clientOnline", Some(HOOK_KEY), json!({"peerId": "Tom"})).await;
    assert_eq!(answer, (503, json!({"code": 124, "error": "The request timed out on the server."})));
    assert!(t.elapsed() < Duration::from_millis(900), "answered after {:?}", t.elapsed());
    assert_eq!(le.calls("_clientOnline").await.len(), 1);
    assert_eq!(call(&le, "_clientOnline", Some(HOOK_KEY), json!({"peerId": "Tom"})).await, (200, json!({"result": {}})));
}
