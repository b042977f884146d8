//! LeanCloud IM REST messages over real HTTP: send (every parameter and limit), history (the
//! seed's six-row truth table, paging, limits, record fields), a client's and the app's history,
//! edit / recall / delete, chat rooms, unread counts, service conversations, REST 1.1 and
//! ordering under concurrent sends. The contract is docs/leancloud-rest.md and the seed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use confab_engine::model::{Content, Plan};
use confab_engine::{Actor, NewMessage};
use reqwest::Method;
use serde_json::{json, Value};

// ---------------------------------------------------------------------- helpers

const RECALLED: &str = "{\"_lctype\":-127}";

fn conv_msgs(conv: &str) -> String {
    format!("/1.2/rtm/conversations/{conv}/messages")
}

fn room_msgs(room: &str) -> String {
    format!("/1.2/rtm/chatrooms/{room}/messages")
}

fn svc(conv: &str) -> String {
    format!("/1.2/rtm/service-conversations/{conv}")
}

/// GET a history path; the records.
async fn history(app: &LcApp, path: &str) -> Vec<Value> {
    let r = app.get(path).await;
    r.ok().as_array().unwrap_or_else(|| panic!("array from {path}: {:?}", r.body)).clone()
}

fn mids(h: &[Value]) -> Vec<String> {
    h.iter().map(|m| m["msg-id"].as_str().expect("msg-id").to_string()).collect()
}

fn datas(h: &[Value]) -> Vec<String> {
    h.iter().map(|m| m["data"].as_str().expect("data").to_string()).collect()
}

/// POST a send body to `path`; (msg-id, timestamp) from a 200 answer of exactly those two keys.
#[track_caller]
fn sent(r: &Resp) -> (String, i64) {
    let b = r.ok();
    let o = b.as_object().expect("object answer");
    assert_eq!(o.len(), 2, "answer is exactly {{msg-id, timestamp}}: {b:?}");
    let id = b["msg-id"].as_str().expect("msg-id is a string").to_string();
    assert!(!id.is_empty());
    (id, b["timestamp"].as_i64().expect("timestamp is an integer"))
}

async fn send_to(app: &LcApp, path: &str, body: Value) -> (String, i64) {
    sent(&app.post(path, body).await)
}

/// Send, then wait so the next message gets a later millisecond.
async fn send_spaced(app: &LcApp, conv: &str, from: &str, text: &str) -> (String, i64) {
    let r = app.send(conv, from, text).await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    r
}

async fn chatroom(app: &LcApp, name: &str) -> String {
    let r = app.post("/1.2/rtm/chatrooms", json!({"name": name})).await;
    r.ok()["objectId"].as_str().expect("objectId").to_string()
}

async fn service_conv(app: &LcApp, name: &str, subscribers: &[&str]) -> String {
    let r = app.post("/1.2/rtm/service-conversations", json!({"name": name})).await;
    let id = r.ok()["objectId"].as_str().expect("objectId").to_string();
    for s in subscribers {
        let r = app.post(&format!("{}/subscribers", svc(&id)), json!({"client_id": s})).await;
        assert_eq!(r.ok(), &json!({}));
    }
    id
}

/// Walk a history path page by page with `msgid`/`timestamp` cursors.
async fn walk(app: &LcApp, path: &str, extra: &[(&str, &str)], page: usize) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut cursor: Option<(String, String)> = None;
    let limit = page.to_string();
    for _ in 0..10_000 {
        let mut params: Vec<(&str, &str)> = vec![("limit", &limit)];
        params.extend_from_slice(extra);
        if let Some((id, ts)) = &cursor {
            params.push(("msgid", id));
            params.push(("timestamp", ts));
        }
        let h = history(app, &format!("{path}{}", qs(&params))).await;
        assert!(h.len() <= page, "a page holds at most {page}");
        let Some(last) = h.last() else { return all };
        cursor = Some((last["msg-id"].as_str().unwrap().to_string(), last["timestamp"].as_i64().unwrap().to_string()));
        let short = h.len() < page;
        all.extend(h);
        if short {
            return all;
        }
    }
    panic!("paging did not end");
}

#[track_caller]
fn assert_distinct(ids: &[String]) {
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "duplicate ids in {ids:?}");
}

// ---------------------------------------------------------------------- send

#[tokio::test]
async fn send_answers_id_and_timestamp_and_history_record_has_every_field() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let before = now_ms();
    let (mid, ts) = send_to(&app, &conv_msgs(&conv), json!({"from_client": "alice", "message": "hello"})).await;
    let after = now_ms();
    assert!(ts >= before - 5 && ts <= after + 5, "timestamp {ts} is the server's time in ms ({before}..{after})");

    let h = history(&app, &conv_msgs(&conv)).await;
    assert_eq!(h.len(), 1);
    let rec = h[0].as_object().unwrap();
    assert_eq!(h[0]["timestamp"], ts);
    assert_eq!(h[0]["conv-id"], conv);
    assert_eq!(h[0]["data"], "hello");
    assert_eq!(h[0]["from"], "alice");
    assert_eq!(h[0]["msg-id"], mid);
    assert_eq!(h[0]["is-conv"], true);
    assert_eq!(h[0]["is-room"], false);
    assert_eq!(h[0]["to"], conv);
    assert_eq!(h[0]["bin"], false);
    assert_eq!(h[0]["from-ip"], "127.0.0.1");
    // optional fields appear only when they apply
    for k in ["patch-timestamp", "recall", "mention-all", "mention-client-ids", "ack-at"] {
        assert!(!rec.contains_key(k), "{k} absent from a plain, undelivered message: {rec:?}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn send_parameters() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob", "carol"]})).await;
    let path = conv_msgs(&conv);

    // transient: answered like any send, never stored
    let (tid, _) = send_to(&app, &path, json!({"from_client": "alice", "message": "whisper", "transient": true})).await;
    assert!(history(&app, &path).await.is_empty(), "a transient message is not in history");
    assert!(!mids(&history(&app, "/1.2/rtm/messages").await).contains(&tid));

    // transient:false and no_sync are stored
    let (a, _) = send_to(&app, &path, json!({"from_client": "alice", "message": "kept", "transient": false})).await;
    let (b, _) = send_to(&app, &path, json!({"from_client": "alice", "message": "nosync", "no_sync": true})).await;

    // push_data as a string and as an object
    let (c, _) = send_to(&app, &path, json!({"from_client": "alice", "message": "p1", "push_data": "you have mail"})).await;
    let (d, _) =
        send_to(&app, &path, json!({"from_client": "alice", "message": "p2", "push_data": {"alert": "hi", "badge": "Increment"}})).await;

    // priority: case-insensitive
    for p in ["high", "NORMAL", "Low", "hIgH"] {
        send_to(&app, &path, json!({"from_client": "alice", "message": format!("prio {p}"), "priority": p})).await;
    }
    app.post(&path, json!({"from_client": "alice", "message": "x", "priority": "urgent"})).await.assert_error(400, 1);
    app.post(&path, json!({"from_client": "alice", "message": "x", "priority": 1})).await.assert_error(400, 111);

    // mentions are visible in history
    let (e, _) = send_to(&app, &path, json!({"from_client": "alice", "message": "@all", "mention_all": true})).await;
    let (f, _) =
        send_to(&app, &path, json!({"from_client": "alice", "message": "@bob @carol", "mention_client_ids": ["bob", "carol"]})).await;

    // message as a JSON object: stored as its JSON text
    let rich = json!({"_lctype": -1, "_lctext": "typed", "_lcattrs": {"k": "v"}});
    let (g, _) = send_to(&app, &path, json!({"from_client": "alice", "message": rich})).await;

    // the master key sends for anyone, member or not
    let (h_id, _) = send_to(&app, &path, json!({"from_client": "stranger", "message": "not a member"})).await;

    let h = history(&app, &path).await;
    let by_id = |id: &str| h.iter().find(|m| m["msg-id"] == id).unwrap_or_else(|| panic!("{id} in history")).clone();
    assert_eq!(h.len(), 12, "everything but the transient message and the refused ones: {:?}", datas(&h));
    assert_eq!(by_id(&a)["data"], "kept");
    assert_eq!(by_id(&b)["data"], "nosync");
    assert_eq!(by_id(&c)["data"], "p1");
    assert_eq!(by_id(&d)["data"], "p2");
    assert_eq!(by_id(&e)["mention-all"], true);
    assert!(by_id(&e).get("mention-client-ids").is_none());
    assert_eq!(by_id(&f)["mention-client-ids"], json!(["bob", "carol"]));
    assert!(by_id(&f).get("mention-all").is_none());
    let g_data: Value = serde_json::from_str(by_id(&g)["data"].as_str().expect("data is a string")).expect("JSON text");
    assert_eq!(g_data, rich);
    assert_eq!(by_id(&h_id)["from"], "stranger");
    for p in ["high", "NORMAL", "Low", "hIgH"] {
        assert!(datas(&h).contains(&format!("prio {p}")));
    }
    srv.stop().await;
}

#[tokio::test]
async fn send_size_limit_counts_content_plus_push_data_in_bytes() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let path = conv_msgs(&conv);

    // exactly 5120 bytes: content alone, content plus push_data string, multibyte content
    send_to(&app, &path, json!({"from_client": "alice", "message": "a".repeat(5120)})).await;
    send_to(&app, &path, json!({"from_client": "alice", "message": "b".repeat(5000), "push_data": "p".repeat(120)})).await;
    send_to(&app, &path, json!({"from_client": "alice", "message": "é".repeat(2560)})).await;
    // push_data as an object counts as its JSON text
    let push = json!({"alert": "q".repeat(100)});
    let push_len = push.to_string().len();
    send_to(&app, &path, json!({"from_client": "alice", "message": "c".repeat(5120 - push_len), "push_data": push})).await;
    assert_eq!(history(&app, &path).await.len(), 4);

    // one byte more: 413 / 4109, nothing stored
    app.post(&path, json!({"from_client": "alice", "message": "a".repeat(5121)})).await.assert_error(413, 4109);
    app.post(&path, json!({"from_client": "alice", "message": "b".repeat(5000), "push_data": "p".repeat(121)}))
        .await
        .assert_error(413, 4109);
    app.post(&path, json!({"from_client": "alice", "message": format!("{}a", "é".repeat(2560))})).await.assert_error(413, 4109);
    app.post(&path, json!({"from_client": "alice", "message": "c".repeat(5121 - push_len), "push_data": push}))
        .await
        .assert_error(413, 4109);
    // transient messages are bound by the same limit
    app.post(&path, json!({"from_client": "alice", "message": "a".repeat(5121), "transient": true})).await.assert_error(413, 4109);
    assert_eq!(history(&app, &path).await.len(), 4, "refused messages are not stored");
    srv.stop().await;
}

#[tokio::test]
async fn send_refusals() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let path = conv_msgs(&conv);

    // mention_client_ids: 20 is fine, 21 is 400 and nothing is stored
    let twenty: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let twenty_one: Vec<String> = (0..21).map(|i| format!("c{i}")).collect();
    send_to(&app, &path, json!({"from_client": "alice", "message": "m20", "mention_client_ids": twenty})).await;
    app.post(&path, json!({"from_client": "alice", "message": "m21", "mention_client_ids": twenty_one})).await.assert_error(400, 1);
    app.post(&path, json!({"from_client": "alice", "message": "x", "mention_client_ids": "bob"})).await.assert_error(400, 111);

    // missing and mistyped fields
    app.post(&path, json!({"message": "no sender"})).await.assert_error(400, 1);
    app.post(&path, json!({"from_client": "alice"})).await.assert_error(400, 1);
    app.post(&path, json!({})).await.assert_error(400, 1);
    app.post(&path, json!({"from_client": "alice", "message": 42})).await.assert_error(400, 111);
    app.post(&path, json!({"from_client": "alice", "message": true})).await.assert_error(400, 111);
    app.post(&path, json!({"from_client": 7, "message": "x"})).await.assert_error(400, 111);
    app.post(&path, json!({"from_client": "alice", "message": "x", "transient": "yes"})).await.assert_error(400, 111);
    app.post(&path, json!({"from_client": "alice", "message": "x", "mention_all": 1})).await.assert_error(400, 111);
    app.call_raw(Method::POST, &path, b"{not json".to_vec()).await.assert_error(400, 107);
    app.call_raw(Method::POST, &path, b"[1,2]".to_vec()).await.assert_error(400, 107);

    // unknown conversations
    app.post(&conv_msgs("999999999"), json!({"from_client": "alice", "message": "x"})).await.assert_error(404, 4303);
    app.post(&conv_msgs("not-an-id"), json!({"from_client": "alice", "message": "x"})).await.assert_error(404, 4303);
    // a chat room is not a conversation on this path
    let room = chatroom(&app, "room").await;
    app.post(&conv_msgs(&room), json!({"from_client": "alice", "message": "x"})).await.assert_error(400, 4314);
    app.post(&room_msgs(&conv), json!({"from_client": "alice", "message": "x"})).await.assert_error(400, 4316);
    // another app's conversation is unknown here
    let other = srv.app(Plan::Standard).await;
    other.post(&path, json!({"from_client": "alice", "message": "x"})).await.assert_error(404, 4303);

    // sending needs the master key
    app.call(Method::POST, &path, Auth::AppKey, Some(json!({"from_client": "alice", "message": "x"}))).await.assert_error(403, 119);
    app.call(Method::POST, &path, Auth::None, Some(json!({"from_client": "alice", "message": "x"}))).await.assert_error(401, 401);

    let h = history(&app, &path).await;
    assert_eq!(datas(&h), vec!["m20"], "only the accepted message is stored");
    srv.stop().await;
}

// ---------------------------------------------------------------------- history

#[tokio::test]
async fn history_truth_table_of_the_seed() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let path = conv_msgs(&conv);
    let (id1, t1) = send_spaced(&app, &conv, "alice", "one").await;
    let (id2, t2) = send_spaced(&app, &conv, "bob", "two").await;
    let (id3, t3) = send_spaced(&app, &conv, "alice", "three").await;
    assert!(t1 < t2 && t2 < t3, "t1 < t2 < t3: {t1} {t2} {t3}");
    let (t1s, t3s) = (t1.to_string(), t3.to_string());

    let q = |start: (&str, &str), stop: (&str, &str), extra: &[(&'static str, &'static str)]| {
        let mut p: Vec<(&str, &str)> = vec![("timestamp", start.0), ("msgid", start.1), ("till_timestamp", stop.0), ("till_msgid", stop.1)];
        p.extend_from_slice(extra);
        format!("{path}{}", qs(&p))
    };
    let down = ((t3s.as_str(), id3.as_str()), (t1s.as_str(), id1.as_str()));
    let up = ((t1s.as_str(), id1.as_str()), (t3s.as_str(), id3.as_str()));

    // row 1: t3 id3 → t1 id1 = id2
    assert_eq!(mids(&history(&app, &q(down.0, down.1, &[])).await), vec![id2.clone()]);
    // row 2: include_start = id3 id2
    assert_eq!(mids(&history(&app, &q(down.0, down.1, &[("include_start", "true")])).await), vec![id3.clone(), id2.clone()]);
    // row 3: include_stop = id2 id1
    assert_eq!(mids(&history(&app, &q(down.0, down.1, &[("include_stop", "true")])).await), vec![id2.clone(), id1.clone()]);
    // row 4: reversed, t1 id1 → t3 id3 = id2
    assert_eq!(mids(&history(&app, &q(up.0, up.1, &[("reversed", "true")])).await), vec![id2.clone()]);
    // row 5: reversed + include_start = id1 id2
    assert_eq!(
        mids(&history(&app, &q(up.0, up.1, &[("include_start", "true"), ("reversed", "true")])).await),
        vec![id1.clone(), id2.clone()]
    );
    // row 6: reversed + include_stop = id2 id3
    assert_eq!(
        mids(&history(&app, &q(up.0, up.1, &[("include_stop", "true"), ("reversed", "true")])).await),
        vec![id2.clone(), id3.clone()]
    );
    // both ends included
    assert_eq!(
        mids(&history(&app, &q(down.0, down.1, &[("include_start", "true"), ("include_stop", "true")])).await),
        vec![id3.clone(), id2.clone(), id1.clone()]
    );

    // defaults: newest first; reversed oldest first
    assert_eq!(mids(&history(&app, &path).await), vec![id3.clone(), id2.clone(), id1.clone()]);
    assert_eq!(mids(&history(&app, &format!("{path}{}", qs(&[("reversed", "true")]))).await), vec![id1.clone(), id2.clone(), id3.clone()]);
    // a bare timestamp is a start point too
    assert_eq!(mids(&history(&app, &format!("{path}{}", qs(&[("timestamp", &t3s)]))).await), vec![id2.clone(), id1.clone()]);
    assert_eq!(mids(&history(&app, &format!("{path}{}", qs(&[("till_timestamp", &t1s)]))).await), vec![id3.clone(), id2.clone()]);
    assert_eq!(
        mids(&history(&app, &format!("{path}{}", qs(&[("timestamp", &t1s), ("reversed", "true")]))).await),
        vec![id2.clone(), id3.clone()]
    );
    assert_eq!(
        mids(&history(&app, &format!("{path}{}", qs(&[("till_timestamp", &t3s), ("reversed", "true")]))).await),
        vec![id1.clone(), id2.clone()]
    );
    // limit keeps the first ones in the walking direction
    assert_eq!(mids(&history(&app, &format!("{path}{}", qs(&[("limit", "2")]))).await), vec![id3.clone(), id2.clone()]);
    assert_eq!(mids(&history(&app, &format!("{path}{}", qs(&[("limit", "2"), ("reversed", "true")]))).await), vec![id1, id2]);

    // an id needs its timestamp
    app.get(&format!("{path}{}", qs(&[("msgid", &id3)]))).await.assert_error(400, 1);
    app.get(&format!("{path}{}", qs(&[("till_msgid", &id3)]))).await.assert_error(400, 1);
    app.get(&format!("{path}{}", qs(&[("timestamp", "soon")]))).await.assert_error(400, 111);
    app.get(&format!("{path}{}", qs(&[("reversed", "maybe")]))).await.assert_error(400, 111);
    app.get(&conv_msgs("424242")).await.assert_error(404, 4303);
    // history needs the master key (history signatures are off)
    app.call(Method::GET, &path, Auth::AppKey, None).await.assert_error(403, 119);
    srv.stop().await;
}

#[tokio::test]
async fn history_limit_default_cap_and_paging() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let path = conv_msgs(&conv);
    let mut sent_ids = Vec::new();
    for i in 0..105 {
        sent_ids.push(app.send(&conv, if i % 2 == 0 { "alice" } else { "bob" }, &format!("m{i}")).await.0);
    }
    let newest_first: Vec<String> = sent_ids.iter().rev().cloned().collect();

    // default limit 100, newest first
    let h = history(&app, &path).await;
    assert_eq!(mids(&h), newest_first[..100].to_vec());
    // a limit above 1000 is served (as 1000), not refused
    let h = history(&app, &format!("{path}{}", qs(&[("limit", "5000")]))).await;
    assert_eq!(mids(&h), newest_first);
    let h = history(&app, &format!("{path}{}", qs(&[("limit", "1000")]))).await;
    assert_eq!(h.len(), 105);
    // below 1 is refused
    app.get(&format!("{path}{}", qs(&[("limit", "0")]))).await.assert_error(400, 1);
    app.get(&format!("{path}{}", qs(&[("limit", "-3")]))).await.assert_error(400, 1);
    app.get(&format!("{path}{}", qs(&[("limit", "ten")]))).await.assert_error(400, 111);

    // paging with limit=2 walks every message once, in order, both ways
    let all = walk(&app, &path, &[], 2).await;
    assert_eq!(mids(&all), newest_first);
    let all = walk(&app, &path, &[("reversed", "true")], 2).await;
    assert_eq!(mids(&all), sent_ids);
    srv.stop().await;
}

#[tokio::test]
async fn history_limit_above_1000_is_served_as_1000() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv_id = app.conversation(json!({"m": ["alice"]})).await;
    // 1001 messages straight through the engine (HTTP would be slow and rate-limited)
    let engine = srv.engine();
    let conv = engine.conversations().conversation(&app.app, conv_id.parse().unwrap(), None).await.unwrap();
    for i in 0..1001 {
        let new = NewMessage { from: "alice".into(), content: Some(Content::Text(format!("m{i}"))), ..Default::default() };
        engine.messages().send_message(&app.app, &conv, new, &Actor::Admin).await.unwrap();
    }
    let path = conv_msgs(&conv_id);
    assert_eq!(history(&app, &path).await.len(), 100);
    let h = history(&app, &format!("{path}{}", qs(&[("limit", "1001")]))).await;
    assert_eq!(h.len(), 1000);
    assert_eq!(h[0]["data"], "m1000", "newest first");
    assert_eq!(h[999]["data"], "m1");
    assert_eq!(history(&app, &format!("{path}{}", qs(&[("limit", "100000")]))).await.len(), 1000);
    srv.stop().await;
}

#[tokio::test]
async fn client_history_and_app_history() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let c1 = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let c2 = app.conversation(json!({"m": ["alice", "carol"]})).await;
    let room = chatroom(&app, "lobby").await;

    let (a1, _) = send_spaced(&app, &c1, "alice", "a1").await;
    let (b1, _) = send_spaced(&app, &c1, "bob", "b1").await;
    let (a2, _) = send_spaced(&app, &c2, "alice", "a2").await;
    let (a3, _) = send_to(&app, &room_msgs(&room), json!({"from_client": "alice", "message": "a3"})).await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    let (c1m, _) = send_spaced(&app, &c2, "carol", "c1").await;
    // transient messages are in nobody's history
    send_to(&app, &conv_msgs(&c1), json!({"from_client": "alice", "message": "t", "transient": true})).await;
    // another app's messages are not this app's
    let other = srv.app(Plan::Standard).await;
    let oc = other.conversation(json!({"m": ["alice"]})).await;
    other.send(&oc, "alice", "elsewhere").await;

    // what alice sent, across conversations and the chat room, newest first
    let h = history(&app, "/1.2/rtm/clients/alice/messages").await;
    assert_eq!(mids(&h), vec![a3.clone(), a2.clone(), a1.clone()]);
    assert!(h.iter().all(|m| m["from"] == "alice"));
    assert_eq!(h[0]["conv-id"], room);
    assert_eq!(h[1]["conv-id"], c2);
    assert_eq!(h[2]["conv-id"], c1);
    assert_eq!(h[0]["is-conv"], true);
    let h = history(&app, &format!("/1.2/rtm/clients/alice/messages{}", qs(&[("reversed", "true")]))).await;
    assert_eq!(mids(&h), vec![a1.clone(), a2.clone(), a3.clone()]);
    assert!(history(&app, "/1.2/rtm/clients/nobody/messages").await.is_empty());
    // paging across conversations
    let all = walk(&app, "/1.2/rtm/clients/alice/messages", &[], 2).await;
    assert_eq!(mids(&all), vec![a3.clone(), a2.clone(), a1.clone()]);
    let all = walk(&app, "/1.2/rtm/clients/alice/messages", &[("reversed", "true")], 1).await;
    assert_eq!(mids(&all), vec![a1.clone(), a2.clone(), a3.clone()]);

    // the whole app
    let every = vec![c1m.clone(), a3.clone(), a2.clone(), b1.clone(), a1.clone()];
    assert_eq!(mids(&history(&app, "/1.2/rtm/messages").await), every);
    assert_eq!(mids(&walk(&app, "/1.2/rtm/messages", &[], 2).await), every);
    let mut oldest_first = every.clone();
    oldest_first.reverse();
    assert_eq!(mids(&walk(&app, "/1.2/rtm/messages", &[("reversed", "true")], 2).await), oldest_first);
    assert_eq!(mids(&history(&app, &format!("/1.2/rtm/messages{}", qs(&[("limit", "2")]))).await), vec![c1m.clone(), a3.clone()]);
    // the truth table holds across conversations too
    let (ts_a3, ts_a1) = (h_ts(&app, &a3).await, h_ts(&app, &a1).await);
    let range = qs(&[("timestamp", &ts_a3), ("msgid", &a3), ("till_timestamp", &ts_a1), ("till_msgid", &a1), ("include_stop", "true")]);
    let h = history(&app, &format!("/1.2/rtm/messages{range}")).await;
    assert_eq!(mids(&h), vec![a2.clone(), b1.clone(), a1.clone()]);
    assert_eq!(history(&other, "/1.2/rtm/messages").await.len(), 1);

    app.get(&format!("/1.2/rtm/messages{}", qs(&[("limit", "0")]))).await.assert_error(400, 1);
    app.get(&format!("/1.2/rtm/messages{}", qs(&[("msgid", &a1)]))).await.assert_error(400, 1);
    app.get(&format!("/1.2/rtm/clients/alice/messages{}", qs(&[("msgid", &a1)]))).await.assert_error(400, 1);
    app.call(Method::GET, "/1.2/rtm/messages", Auth::AppKey, None).await.assert_error(403, 119);
    app.call(Method::GET, "/1.2/rtm/clients/alice/messages", Auth::AppKey, None).await.assert_error(403, 119);

    // deleting a conversation deletes its messages from every history
    let r = app.delete(&format!("/1.2/rtm/conversations/{c2}"), None).await;
    assert_eq!(r.ok(), &json!({}));
    assert_eq!(mids(&history(&app, "/1.2/rtm/messages").await), vec![a3.clone(), b1.clone(), a1.clone()]);
    assert_eq!(mids(&history(&app, "/1.2/rtm/clients/alice/messages").await), vec![a3, a1]);
    assert!(history(&app, "/1.2/rtm/clients/carol/messages").await.is_empty());
    app.get(&conv_msgs(&c2)).await.assert_error(404, 4303);
    srv.stop().await;
}

/// The timestamp of a message, from the app's history.
async fn h_ts(app: &LcApp, mid: &str) -> String {
    let h = history(app, &format!("/1.2/rtm/messages{}", qs(&[("limit", "1000")]))).await;
    h.iter().find(|m| m["msg-id"] == mid).expect("message")["timestamp"].as_i64().unwrap().to_string()
}

// ---------------------------------------------------------------------- edit, recall, delete

/// Edit, recall and delete on a messages path (`…/{id}/messages`), the same for every kind.
async fn edit_recall_delete(app: &LcApp, path: &str) {
    let (m1, t1) = send_to(app, path, json!({"from_client": "alice", "message": "original"})).await;
    let (m2, t2) = send_to(app, path, json!({"from_client": "bob", "message": "second"})).await;
    let item = |mid: &str| format!("{path}/{mid}");
    let find = |h: &[Value], mid: &str| h.iter().find(|m| m["msg-id"] == mid).cloned();

    // edit
    let r = app.put(&item(&m1), json!({"from_client": "alice", "message": "edited", "timestamp": t1})).await;
    assert_eq!(r.ok(), &json!({}));
    let h = history(app, path).await;
    let rec = find(&h, &m1).expect("edited message still in history");
    assert_eq!(rec["data"], "edited");
    assert_eq!(rec["timestamp"], t1, "an edit keeps the message's timestamp");
    assert!(rec["patch-timestamp"].as_i64().expect("patch-timestamp") >= t1);
    assert!(rec.get("recall").is_none());
    assert_eq!(rec["from"], "alice");
    assert!(find(&h, &m2).unwrap().get("patch-timestamp").is_none(), "others untouched");
    // the timestamp may come as a string too, and the message as an object
    let r = app
        .put(&item(&m1), json!({"from_client": "alice", "message": {"_lctype": -1, "_lctext": "obj"}, "timestamp": t1.to_string()}))
        .await;
    assert_eq!(r.ok(), &json!({}));
    let rec = find(&history(app, path).await, &m1).unwrap();
    assert_eq!(serde_json::from_str::<Value>(rec["data"].as_str().unwrap()).unwrap(), json!({"_lctype": -1, "_lctext": "obj"}));

    // refusals
    app.put(&item(&m1), json!({"from_client": "alice", "message": "x", "timestamp": t1 + 1})).await.assert_error(404, 4404);
    app.put(&item(&m1), json!({"from_client": "bob", "message": "x", "timestamp": t1})).await.assert_error(403, 4403);
    app.put(&item("123456789"), json!({"from_client": "alice", "message": "x", "timestamp": t1})).await.assert_error(404, 4404);
    app.put(&item("nope"), json!({"from_client": "alice", "message": "x", "timestamp": t1})).await.assert_error(404, 4404);
    app.put(&item(&m1), json!({"from_client": "alice", "message": "x"})).await.assert_error(400, 1);
    app.put(&item(&m1), json!({"from_client": "alice", "timestamp": t1})).await.assert_error(400, 1);
    app.put(&item(&m1), json!({"message": "x", "timestamp": t1})).await.assert_error(400, 1);
    app.put(&item(&m1), json!({"from_client": "alice", "message": 5, "timestamp": t1})).await.assert_error(400, 111);
    app.put(&item(&m1), json!({"from_client": "alice", "message": "a".repeat(5121), "timestamp": t1})).await.assert_error(413, 4109);
    app.call(Method::PUT, &item(&m1), Auth::AppKey, Some(json!({"from_client": "alice", "message": "x", "timestamp": t1})))
        .await
        .assert_error(403, 119);
    let rec = find(&history(app, path).await, &m1).unwrap();
    assert!(rec["data"].as_str().unwrap().contains("obj"), "refused edits change nothing");

    // recall
    app.put(&format!("{}/recall", item(&m1)), json!({"from_client": "bob", "timestamp": t1})).await.assert_error(403, 4403);
    app.put(&format!("{}/recall", item(&m1)), json!({"from_client": "alice", "timestamp": t1 - 1})).await.assert_error(404, 4404);
    app.put(&format!("{}/recall", item("987654321")), json!({"from_client": "alice", "timestamp": t1})).await.assert_error(404, 4404);
    app.put(&format!("{}/recall", item(&m1)), json!({"from_client": "alice"})).await.assert_error(400, 1);
    let r = app.put(&format!("{}/recall", item(&m1)), json!({"from_client": "alice", "timestamp": t1})).await;
    assert_eq!(r.ok(), &json!({}));
    let h = history(app, path).await;
    let rec = find(&h, &m1).expect("a recalled message stays in history");
    assert_eq!(rec["data"], RECALLED);
    assert_eq!(rec["recall"], true);
    assert_eq!(rec["bin"], false);
    assert_eq!(rec["timestamp"], t1);
    assert!(rec["patch-timestamp"].as_i64().unwrap() >= t1);
    // a recalled message cannot be edited
    let r = app.put(&item(&m1), json!({"from_client": "alice", "message": "back", "timestamp": t1})).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.body["code"].is_i64() && r.body["error"].is_string());
    assert_eq!(find(&history(app, path).await, &m1).unwrap()["data"], RECALLED);

    // delete: query string
    let del = |mid: &str, from: &str, ts: &str| format!("{}{}", item(mid), qs(&[("from_client", from), ("timestamp", ts)]));
    app.delete(&format!("{}{}", item(&m2), qs(&[("from_client", "bob")])), None).await.assert_error(400, 1);
    app.delete(&format!("{}{}", item(&m2), qs(&[("timestamp", &t2.to_string())])), None).await.assert_error(400, 1);
    app.delete(&del(&m2, "bob", &(t2 + 1).to_string()), None).await.assert_error(404, 4404);
    app.delete(&del(&m2, "alice", &t2.to_string()), None).await.assert_error(403, 4403);
    app.delete(&del("55555", "bob", &t2.to_string()), None).await.assert_error(404, 4404);
    let r = app.delete(&del(&m2, "bob", &t2.to_string()), None).await;
    assert_eq!(r.ok(), &json!({}));
    let h = history(app, path).await;
    assert!(find(&h, &m2).is_none(), "a deleted message is gone");
    assert!(find(&h, &m1).is_some());
    app.delete(&del(&m2, "bob", &t2.to_string()), None).await.assert_error(404, 4404);
    app.put(&item(&m2), json!({"from_client": "bob", "message": "x", "timestamp": t2})).await.assert_error(404, 4404);
    // delete: JSON body; recalled messages can be deleted
    let r = app.delete(&item(&m1), Some(json!({"from_client": "alice", "timestamp": t1}))).await;
    assert_eq!(r.ok(), &json!({}));
    assert!(history(app, path).await.is_empty());
}

#[tokio::test]
async fn conversation_edit_recall_delete() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    edit_recall_delete(&app, &conv_msgs(&conv)).await;
    // a message id is only found in its own conversation
    let other = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let (mid, ts) = app.send(&other, "alice", "elsewhere").await;
    app.put(&format!("{}/{mid}", conv_msgs(&conv)), json!({"from_client": "alice", "message": "x", "timestamp": ts}))
        .await
        .assert_error(404, 4404);
    app.put(&format!("{}/{mid}/recall", conv_msgs(&conv)), json!({"from_client": "alice", "timestamp": ts})).await.assert_error(404, 4404);
    app.delete(&format!("{}/{mid}{}", conv_msgs(&conv), qs(&[("from_client", "alice"), ("timestamp", &ts.to_string())])), None)
        .await
        .assert_error(404, 4404);
    assert_eq!(history(&app, &conv_msgs(&other)).await.len(), 1);
    // unknown conversation
    app.put(&format!("{}/{mid}", conv_msgs("31337")), json!({"from_client": "alice", "message": "x", "timestamp": ts}))
        .await
        .assert_error(404, 4303);
    srv.stop().await;
}

#[tokio::test]
async fn chatroom_messages() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let room = chatroom(&app, "lobby").await;
    let path = room_msgs(&room);
    // send (nobody is a member of a chat room over REST), with every parameter
    let (m1, t1) = send_to(
        &app,
        &path,
        json!({"from_client": "alice", "message": "hi room", "priority": "HIGH", "mention_all": true, "mention_client_ids": ["bob"]}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    send_to(&app, &path, json!({"from_client": "bob", "message": "gone", "transient": true})).await;
    let (m2, t2) = send_to(&app, &path, json!({"from_client": "bob", "message": "hello"})).await;
    assert!(t2 > t1);
    let h = history(&app, &path).await;
    assert_eq!(mids(&h), vec![m2.clone(), m1.clone()]);
    assert_eq!(h[1]["conv-id"], room);
    assert_eq!(h[1]["to"], room);
    assert_eq!(h[1]["is-conv"], true);
    assert_eq!(h[1]["is-room"], false);
    assert_eq!(h[1]["mention-all"], true);
    assert_eq!(h[1]["mention-client-ids"], json!(["bob"]));
    assert_eq!(mids(&history(&app, &format!("{path}{}", qs(&[("reversed", "true")]))).await), vec![m1.clone(), m2.clone()]);
    let h = history(&app, &format!("{path}{}", qs(&[("timestamp", &t2.to_string()), ("msgid", &m2), ("include_start", "true")]))).await;
    assert_eq!(mids(&h), vec![m2.clone(), m1.clone()]);
    app.post(&path, json!({"from_client": "alice", "message": "a".repeat(5121)})).await.assert_error(413, 4109);
    app.post(&room_msgs("777"), json!({"from_client": "alice", "message": "x"})).await.assert_error(404, 4303);
    app.get(&room_msgs("777")).await.assert_error(404, 4303);
    // and then edit / recall / delete the same way as conversations
    let room2 = chatroom(&app, "second").await;
    edit_recall_delete(&app, &room_msgs(&room2)).await;
    srv.stop().await;
}

// ---------------------------------------------------------------------- unread

#[tokio::test]
async fn unread_count() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let c1 = app.conversation(json!({"m": ["alice", "bob", "carol"]})).await;
    let c2 = app.conversation(json!({"m": ["bob", "dave"]})).await;
    let room = chatroom(&app, "room").await;

    let unread = |client: &'static str, conv: Option<String>| {
        let app = &app;
        async move {
            let path = match &conv {
                Some(c) => format!("/1.2/rtm/clients/{client}/unread-count{}", qs(&[("conv_id", c)])),
                None => format!("/1.2/rtm/clients/{client}/unread-count"),
            };
            let r = app.call(Method::GET, &path, Auth::AppKey, None).await;
            let b = r.ok();
            assert_eq!(b.as_object().unwrap().len(), 1, "{b:?}");
            b["count"].as_i64().expect("count")
        }
    };
    assert_eq!(unread("bob", None).await, 0);

    let (a1, ta1) = app.send(&c1, "alice", "a1").await;
    app.send(&c1, "alice", "a2").await;
    app.send(&c1, "bob", "own").await;
    app.send(&c2, "dave", "d1").await;
    send_to(&app, &conv_msgs(&c1), json!({"from_client": "alice", "message": "t", "transient": true})).await;
    send_to(&app, &room_msgs(&room), json!({"from_client": "alice", "message": "in the room"})).await;

    // bob: alice's two in c1 and dave's in c2, not his own, not transient ones, not the room's
    assert_eq!(unread("bob", None).await, 3);
    assert_eq!(unread("bob", Some(c1.clone())).await, 2);
    assert_eq!(unread("bob", Some(c2.clone())).await, 1);
    assert_eq!(unread("alice", None).await, 1, "alice: bob's message");
    assert_eq!(unread("carol", None).await, 3);
    assert_eq!(unread("carol", Some(c2.clone())).await, 0, "carol is not in c2");
    assert_eq!(unread("dave", None).await, 0);
    assert_eq!(unread("nobody", None).await, 0);

    // recalled messages do not count
    let r = app.put(&format!("{}/{a1}/recall", conv_msgs(&c1)), json!({"from_client": "alice", "timestamp": ta1})).await;
    r.ok();
    assert_eq!(unread("bob", None).await, 2);
    assert_eq!(unread("bob", Some(c1.clone())).await, 1);

    // the master key works too; no key does not
    let r = app.call(Method::GET, "/1.2/rtm/clients/bob/unread-count", Auth::Master, None).await;
    assert_eq!(r.ok()["count"], 2);
    app.call(Method::GET, "/1.2/rtm/clients/bob/unread-count", Auth::None, None).await.assert_error(401, 401);
    // unknown conversations
    app.call(Method::GET, &format!("/1.2/rtm/clients/bob/unread-count{}", qs(&[("conv_id", "99999")])), Auth::AppKey, None)
        .await
        .assert_error(404, 4303);
    app.call(Method::GET, &format!("/1.2/rtm/clients/bob/unread-count{}", qs(&[("conv_id", "zzz")])), Auth::AppKey, None)
        .await
        .assert_error(404, 4303);
    srv.stop().await;
}

// ---------------------------------------------------------------------- service conversations

#[tokio::test]
async fn service_conversation_messages() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let sc = service_conv(&app, "news", &["s1", "s2", "s3"]).await;
    let seen = |client: &'static str| {
        let app = &app;
        let sc = sc.clone();
        async move { history(app, &format!("{}/subscribers/{client}/messages", svc(&sc))).await }
    };

    // a per-user message: only its recipients see it
    let (pm, pt) = send_to(
        &app,
        &format!("{}/messages", svc(&sc)),
        json!({"from_client": "sys", "to_clients": ["s1", "s2"], "message": "just you two"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    // a message to all subscribers
    let (bm, bt) =
        sent(&app.post(&format!("{}/broadcasts", svc(&sc)), json!({"from_client": "sys", "message": "everyone", "push": "news!"})).await);
    assert_eq!(mids(&seen("s1").await), vec![bm.clone(), pm.clone()]);
    assert_eq!(mids(&seen("s2").await), vec![bm.clone(), pm.clone()]);
    assert_eq!(mids(&seen("s3").await), vec![bm.clone()]);
    let s1 = seen("s1").await;
    assert_eq!(s1[1]["data"], "just you two");
    assert_eq!(s1[1]["from"], "sys");
    assert_eq!(s1[1]["conv-id"], sc);
    assert_eq!(s1[0]["data"], "everyone");
    assert_eq!(
        mids(&history(&app, &format!("{}/subscribers/s1/messages{}", svc(&sc), qs(&[("reversed", "true")]))).await),
        vec![pm.clone(), bm.clone()]
    );
    assert_eq!(mids(&history(&app, &format!("{}/subscribers/s1/messages{}", svc(&sc), qs(&[("limit", "1")]))).await), vec![bm.clone()]);

    // to_clients: required, at most 20
    let msgs = format!("{}/messages", svc(&sc));
    app.post(&msgs, json!({"from_client": "sys", "message": "x"})).await.assert_error(400, 1);
    let many: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    app.post(&msgs, json!({"from_client": "sys", "message": "x", "to_clients": many})).await.assert_error(400, 1);
    app.post(&msgs, json!({"from_client": "sys", "message": "x", "to_clients": []})).await.assert_error(400, 1);
    app.post(&msgs, json!({"from_client": "sys", "message": "x", "to_clients": "s1"})).await.assert_error(400, 111);
    app.post(&msgs, json!({"from_client": "sys", "to_clients": ["s1"], "message": "a".repeat(5121)})).await.assert_error(413, 4109);
    app.post(&format!("{}/broadcasts", svc(&sc)), json!({"from_client": "sys"})).await.assert_error(400, 1);
    app.post(&format!("{}/broadcasts", svc(&sc)), json!({"message": "x"})).await.assert_error(400, 1);
    assert_eq!(seen("s1").await.len(), 2, "refused sends store nothing");
    // a normal conversation is not a service conversation
    let conv = app.conversation(json!({"m": ["s1"]})).await;
    app.post(&format!("{}/messages", svc(&conv)), json!({"from_client": "sys", "to_clients": ["s1"], "message": "x"}))
        .await
        .assert_error(400, 4313);
    app.post(&format!("{}/broadcasts", svc(&conv)), json!({"from_client": "sys", "message": "x"})).await.assert_error(400, 4313);
    app.get(&format!("{}/subscribers/s1/messages", svc("8888"))).await.assert_error(404, 4303);

    // edit and recall a per-user message
    let r = app
        .put(&format!("{msgs}/{pm}"), json!({"from_client": "sys", "message": "edited", "timestamp": pt, "to_clients": ["s1", "s2"]}))
        .await;
    assert_eq!(r.ok(), &json!({}));
    let rec = seen("s2").await.into_iter().find(|m| m["msg-id"] == pm).unwrap();
    assert_eq!(rec["data"], "edited");
    assert!(rec["patch-timestamp"].is_i64());
    assert_eq!(mids(&seen("s3").await), vec![bm.clone()], "an edit does not widen the audience");
    app.put(&format!("{msgs}/{pm}"), json!({"from_client": "sys", "message": "x", "timestamp": pt, "to_clients": many}))
        .await
        .assert_error(400, 1);
    app.put(&format!("{msgs}/{pm}"), json!({"from_client": "other", "message": "x", "timestamp": pt})).await.assert_error(403, 4403);
    app.put(&format!("{msgs}/{pm}"), json!({"from_client": "sys", "message": "x", "timestamp": pt + 7})).await.assert_error(404, 4404);
    // the broadcast can be edited on the same path
    let r = app.put(&format!("{msgs}/{bm}"), json!({"from_client": "sys", "message": "everyone, edited", "timestamp": bt})).await;
    assert_eq!(r.ok(), &json!({}));
    assert_eq!(seen("s3").await[0]["data"], "everyone, edited");
    let r = app.put(&format!("{msgs}/{pm}/recall"), json!({"from_client": "sys", "timestamp": pt, "to_clients": ["s1", "s2"]})).await;
    assert_eq!(r.ok(), &json!({}));
    let rec = seen("s1").await.into_iter().find(|m| m["msg-id"] == pm).unwrap();
    assert_eq!(rec["data"], RECALLED);
    assert_eq!(rec["recall"], true);

    // delete from one subscriber's view only
    let sub_del = |client: &str, mid: &str, from: &str, ts: i64| {
        format!("{}/subscribers/{client}/messages/{mid}{}", svc(&sc), qs(&[("from_client", from), ("timestamp", &ts.to_string())]))
    };
    app.delete(&sub_del("s1", &bm, "sys", bt + 1), None).await.assert_error(404, 4404);
    app.delete(&sub_del("s1", &bm, "nope", bt), None).await.assert_error(403, 4403);
    app.delete(&format!("{}/subscribers/s1/messages/{bm}{}", svc(&sc), qs(&[("from_client", "sys")])), None).await.assert_error(400, 1);
    let r = app.delete(&sub_del("s1", &bm, "sys", bt), None).await;
    assert_eq!(r.ok(), &json!({}));
    assert_eq!(mids(&seen("s1").await), vec![pm.clone()]);
    assert_eq!(mids(&seen("s2").await), vec![bm.clone(), pm.clone()]);
    assert_eq!(mids(&seen("s3").await), vec![bm.clone()]);
    let r = app.delete(&sub_del("s2", &pm, "sys", pt), None).await;
    assert_eq!(r.ok(), &json!({}));
    assert_eq!(mids(&seen("s2").await), vec![bm.clone()]);
    assert_eq!(mids(&seen("s1").await), vec![pm.clone()], "s1 still sees the per-user message");
    // a message the client never saw cannot be removed from its view
    app.delete(&sub_del("s3", &pm, "sys", pt), None).await.assert_error(404, 4404);
    app.delete(&sub_del("s3", "notanid", "sys", pt), None).await.assert_error(404, 4404);

    // the service conversation's own history holds both kinds of message
    assert_eq!(mids(&history(&app, &msgs).await), vec![bm.clone(), pm.clone()]);
    // deleting on the server removes it from every view
    let r = app.delete(&format!("{msgs}/{bm}{}", qs(&[("from_client", "sys"), ("timestamp", &bt.to_string())])), None).await;
    assert_eq!(r.ok(), &json!({}));
    assert!(seen("s2").await.is_empty());
    assert!(seen("s3").await.is_empty());
    assert_eq!(mids(&history(&app, &msgs).await), vec![pm.clone()]);

    // subscriber broadcasts obey the 5 KB limit, push included
    let bc = format!("{}/broadcasts", svc(&sc));
    sent(&app.post(&bc, json!({"from_client": "sys", "message": "b".repeat(5000), "push": "p".repeat(120)})).await);
    app.post(&bc, json!({"from_client": "sys", "message": "b".repeat(5000), "push": "p".repeat(121)})).await.assert_error(413, 4109);
    srv.stop().await;
}

#[tokio::test]
async fn unread_count_of_subscriptions() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let sc = service_conv(&app, "news", &["s1", "s2"]).await;
    let unread = |client: &'static str| {
        let app = &app;
        async move {
            let r = app.call(Method::GET, &format!("/1.2/rtm/clients/{client}/unread-count"), Auth::AppKey, None).await;
            r.ok()["count"].as_i64().expect("count")
        }
    };
    let msgs = format!("{}/messages", svc(&sc));
    send_to(&app, &msgs, json!({"from_client": "sys", "to_clients": ["s1"], "message": "for s1"})).await;
    let (bm, bt) = sent(&app.post(&format!("{}/broadcasts", svc(&sc)), json!({"from_client": "sys", "message": "for all"})).await);
    assert_eq!(unread("s1").await, 2);
    assert_eq!(unread("s2").await, 1, "a per-user message counts only for its recipients");
    assert_eq!(unread("sys").await, 0);
    let r = app.call(Method::GET, &format!("/1.2/rtm/clients/s2/unread-count{}", qs(&[("conv_id", &sc)])), Auth::AppKey, None).await;
    assert_eq!(r.ok()["count"], 1);
    // hidden from s2's view: no longer unread for s2
    let path = format!("{}/subscribers/s2/messages/{bm}{}", svc(&sc), qs(&[("from_client", "sys"), ("timestamp", &bt.to_string())]));
    app.delete(&path, None).await.ok();
    assert_eq!(unread("s2").await, 0);
    assert_eq!(unread("s1").await, 2);
    srv.stop().await;
}

// ---------------------------------------------------------------------- REST 1.1

#[tokio::test]
async fn rest_v11_messages_patch_and_subscriber_broadcast() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let path = conv_msgs(&conv);

    // transient defaults to true in 1.1
    let (tid, _) = send_to(&app, "/1.1/rtm/messages", json!({"from_peer": "alice", "conv_id": conv, "message": "fleeting"})).await;
    assert!(history(&app, &path).await.is_empty());
    assert!(!mids(&history(&app, "/1.2/rtm/messages").await).contains(&tid));
    let (mid, ts) =
        send_to(&app, "/1.1/rtm/messages", json!({"from_peer": "alice", "conv_id": conv, "message": "kept", "transient": false})).await;
    let h = history(&app, &path).await;
    assert_eq!(mids(&h), vec![mid.clone()]);
    assert_eq!(h[0]["data"], "kept");
    assert_eq!(h[0]["from"], "alice");
    assert_eq!(h[0]["timestamp"], ts);
    app.post("/1.1/rtm/messages", json!({"from_peer": "alice", "message": "x"})).await.assert_error(400, 1);
    app.post("/1.1/rtm/messages", json!({"conv_id": conv, "message": "x"})).await.assert_error(400, 1);
    app.post("/1.1/rtm/messages", json!({"from_peer": "alice", "conv_id": "4040", "message": "x"})).await.assert_error(404, 4303);
    app.post("/1.1/rtm/messages", json!({"from_peer": "alice", "conv_id": conv, "message": "x", "to_peers": ["bob"]}))
        .await
        .assert_error(400, 1);

    // patch: edit
    let r = app
        .post("/1.1/rtm/patch/message", json!({"from_peer": "alice", "conv_id": conv, "msg_id": mid, "timestamp": ts, "message": "edited"}))
        .await;
    assert_eq!(r.ok(), &json!({}));
    let h = history(&app, &path).await;
    assert_eq!(h[0]["data"], "edited");
    assert!(h[0]["patch-timestamp"].is_i64());
    app.post("/1.1/rtm/patch/message", json!({"from_peer": "bob", "conv_id": conv, "msg_id": mid, "timestamp": ts, "message": "x"}))
        .await
        .assert_error(403, 4403);
    app.post("/1.1/rtm/patch/message", json!({"from_peer": "alice", "conv_id": conv, "msg_id": mid, "timestamp": ts + 1, "message": "x"}))
        .await
        .assert_error(404, 4404);
    app.post("/1.1/rtm/patch/message", json!({"from_peer": "alice", "conv_id": conv, "msg_id": mid, "timestamp": ts}))
        .await
        .assert_error(400, 1);
    // patch: recall
    let r = app
        .post("/1.1/rtm/patch/message", json!({"from_peer": "alice", "conv_id": conv, "msg_id": mid, "timestamp": ts, "recall": true}))
        .await;
    assert_eq!(r.ok(), &json!({}));
    let h = history(&app, &path).await;
    assert_eq!(h[0]["data"], RECALLED);
    assert_eq!(h[0]["recall"], true);

    // a message to every subscriber
    let sc = service_conv(&app, "news", &["s1", "s2"]).await;
    let (bm, _) = send_to(&app, "/1.1/rtm/broadcast/subscriber", json!({"from_peer": "sys", "conv_id": sc, "message": "to all"})).await;
    for s in ["s1", "s2"] {
        let h = history(&app, &format!("{}/subscribers/{s}/messages", svc(&sc))).await;
        assert_eq!(mids(&h), vec![bm.clone()]);
        assert_eq!(h[0]["data"], "to all");
    }
    app.post("/1.1/rtm/broadcast/subscriber", json!({"from_peer": "sys", "conv_id": conv, "message": "x"})).await.assert_error(400, 4313);
    // to_peers addresses a service conversation's clients
    let (pm, _) = send_to(
        &app,
        "/1.1/rtm/messages",
        json!({"from_peer": "sys", "conv_id": sc, "message": "only s2", "to_peers": ["s2"], "transient": false}),
    )
    .await;
    assert_eq!(mids(&history(&app, &format!("{}/subscribers/s2/messages", svc(&sc))).await), vec![pm, bm.clone()]);
    assert_eq!(mids(&history(&app, &format!("{}/subscribers/s1/messages", svc(&sc))).await), vec![bm]);
    srv.stop().await;
}

// ---------------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_keep_order_and_lose_nothing() {
    let srv = TestServer::start().await;
    let app = Arc::new(srv.app(Plan::Standard).await);
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let app = app.clone();
        let conv = conv.clone();
        set.spawn(async move {
            let from = if i % 2 == 0 { "alice" } else { "bob" };
            let r = app.post(&conv_msgs(&conv), json!({"from_client": from, "message": format!("n{i}")})).await;
            let (id, ts) = sent(&r);
            (id, ts, format!("n{i}"))
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = set.join_next().await {
        answers.push(r.expect("task"));
    }
    assert_eq!(answers.len(), 50);
    let ids: Vec<String> = answers.iter().map(|a| a.0.clone()).collect();
    assert_distinct(&ids);

    let path = conv_msgs(&conv);
    let h = history(&app, &path).await;
    assert_eq!(h.len(), 50);
    let hids = mids(&h);
    assert_distinct(&hids);
    assert_eq!(hids.iter().collect::<HashSet<_>>(), ids.iter().collect::<HashSet<_>>());
    // newest first: timestamps never increase
    for w in h.windows(2) {
        assert!(w[0]["timestamp"].as_i64().unwrap() >= w[1]["timestamp"].as_i64().unwrap(), "order: {:?} then {:?}", w[0], w[1]);
    }
    // each answer matches its record
    for (id, ts, text) in &answers {
        let rec = h.iter().find(|m| m["msg-id"] == *id).unwrap();
        assert_eq!(rec["timestamp"], *ts, "answered timestamp is the stored one");
        assert_eq!(rec["data"], *text);
    }
    // reversed: the same sequence backwards, timestamps never decrease
    let r = history(&app, &format!("{path}{}", qs(&[("reversed", "true")]))).await;
    let mut back = mids(&r);
    back.reverse();
    assert_eq!(back, hids);
    // paging with cursors (timestamps may be equal) walks every message exactly once, in order
    assert_eq!(mids(&walk(&app, &path, &[], 7).await), hids);
    let mut up = mids(&walk(&app, &path, &[("reversed", "true")], 7).await);
    up.reverse();
    assert_eq!(up, hids);
    // across the app too
    let all = walk(&app, "/1.2/rtm/messages", &[], 7).await;
    let all_ids = mids(&all);
    assert_distinct(&all_ids);
    assert_eq!(all_ids.iter().collect::<HashSet<_>>(), ids.iter().collect::<HashSet<_>>());
    for w in all.windows(2) {
        assert!(w[0]["timestamp"].as_i64().unwrap() >= w[1]["timestamp"].as_i64().unwrap());
    }
    drop(app);
    srv.stop().await;
}
