//! The Easemob REST calls only the client SDKs make, with the user's own token, over real HTTP
//! (specs/easemob-msync.md §12.2): roaming history (`messageroaming`, base64 `Meta`s as the msync
//! gateway delivers them), the SDK's conversation list, pins and marks, the user's devices online, a
//! token's expiry.

use base64::Engine as _;
use confab_engine::model::Plan;
use confab_face_easemob::msync::proto::meta::NameSpace;
use confab_face_easemob::msync::proto::{MessageBody, Meta};
use prost::Message as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::em_msync::{jid, text_of, Client};

/// The metas of a roaming answer, decoded.
fn metas(r: &Resp) -> Vec<Meta> {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["msgs"]
        .as_array()
        .unwrap_or_else(|| panic!("msgs: {}", r.body))
        .iter()
        .map(|m| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(m["msg"].as_str().expect("msg")).expect("base64");
            Meta::decode(bytes.as_slice()).expect("a Meta")
        })
        .collect()
}

fn texts(ms: &[Meta]) -> Vec<String> {
    ms.iter().map(text_of).collect()
}

async fn roam(app: &EmApp, user: &str, token: &str, body: Value) -> Resp {
    app.call(Method::POST, &format!("/users/{user}/messageroaming"), Em::Token(token.to_string()), Some(body)).await
}

async fn send(app: &EmApp, from: &str, to: &str, text: &str) -> String {
    let r = app.post("/messages/users", json!({"from": from, "to": [to], "type": "txt", "body": {"msg": text}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"][to].as_str().expect("message id").to_string()
}

async fn send_group(app: &EmApp, from: &str, gid: &str, kind: &str, body: Value) -> String {
    let r = app.post("/messages/chatgroups", json!({"from": from, "to": [gid], "type": kind, "body": body})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"][gid].as_str().expect("message id").to_string()
}

#[tokio::test]
async fn roaming_pages_a_one_to_one_history_newest_first_or_oldest_first_as_msync_metas() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (from, to) = if i % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
        ids.push(send(&app, from, to, &format!("m{i}")).await);
    }
    send(&app, "alice", "carol", "not for bob").await;
    let bob = app.user_token("bob").await;

    // back from the newest, two at a time
    let mut got = Vec::new();
    let mut start = json!(-1);
    let mut pages = 0;
    loop {
        let r = roam(
            &app,
            "bob",
            &bob,
            json!({"queue": "alice@easemob.com", "start": start, "pull_number": 2, "is_positive": false, "end": -1}),
        )
        .await;
        usergrid(&r.body, "post", &app);
        let ms = metas(&r);
        got.extend(ms.iter().map(|m| (m.id.unwrap().to_string(), text_of(m))));
        pages += 1;
        if r.body["data"]["is_last"] == true {
            break;
        }
        assert_eq!(ms.len(), 2);
        start = r.body["data"]["next_key"].clone();
        assert_eq!(start.as_str(), Some(got.last().unwrap().0.as_str()), "next_key: the last message of the page");
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<(String, String)> = (0..5).rev().map(|i| (ids[i].clone(), format!("m{i}"))).collect();
    assert_eq!(got, newest_first);

    // forward from the oldest
    let r = roam(&app, "bob", &bob, json!({"queue": "alice@easemob.com", "start": -1, "pull_number": 3, "is_positive": true})).await;
    assert_eq!(texts(&metas(&r)), ["m0", "m1", "m2"]);
    assert_eq!(r.body["data"]["is_last"], false);
    let next = r.body["data"]["next_key"].clone();
    let r = roam(&app, "bob", &bob, json!({"queue": "alice@easemob.com", "start": next, "pull_number": 3, "is_positive": true})).await;
    assert_eq!(texts(&metas(&r)), ["m3", "m4"]);
    assert_eq!(r.body["data"]["is_last"], true);
    assert_eq!(r.body["data"]["next_key"], "");

    // each meta as the SDK decodes it (§9): a CHAT meta, from the sender, to the other
    let ms = metas(&roam(&app, "bob", &bob, json!({"queue": "alice@easemob.com", "pull_number": 5})).await);
    for m in &ms {
        assert_eq!(m.ns, Some(NameSpace::Chat as i32));
        let b = MessageBody::decode(m.payload.as_deref().unwrap()).expect("body");
        let (from, to) = (b.from.unwrap().name.unwrap(), b.to.unwrap().name.unwrap());
        assert!(matches!((from.as_str(), to.as_str()), ("alice", "bob") | ("bob", "alice")), "{from} → {to}");
        assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some(from.as_str()));
        assert!(m.timestamp.unwrap() > 0);
    }
    // a peer never talked with: an empty last page
    let r = roam(&app, "bob", &bob, json!({"queue": "carol@easemob.com"})).await;
    assert!(metas(&r).is_empty());
    assert_eq!(r.body["data"]["is_last"], true);
}

#[tokio::test]
async fn roaming_gives_the_meta_the_gateway_delivers() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let key = crate::em_msync::app_key(&app);
    let mut alice = Client::login(&srv, &app, "alice", "webim_web_a").await;
    alice.text(1, "bob", false, "over msync").await;
    send(&app, "alice", "bob", "over rest").await;
    let mut bob = Client::login(&srv, &app, "bob", "webim_web_b").await;
    let pulled = bob.pull(jid(&key, "alice", false), None).await.metas;
    assert_eq!(texts(&pulled), ["over msync", "over rest"]);
    let token = app.user_token("bob").await;
    let mut roamed = metas(&roam(&app, "bob", &token, json!({"queue": "alice@easemob.com", "start": "", "pull_number": 10})).await);
    roamed.reverse();
    assert_eq!(roamed, pulled, "the same Meta bytes as a pull");
    // alice sees her own messages, from her device, to bob
    let token = app.user_token("alice").await;
    let mine = metas(&roam(&app, "alice", &token, json!({"queue": "bob@easemob.com", "pull_number": 10})).await);
    assert_eq!(texts(&mine), ["over rest", "over msync"]);
    assert_eq!(mine[1].from.as_ref().unwrap().client_resource.as_deref(), Some("webim_web_a"));
    assert_eq!(mine[1].to.as_ref().unwrap().name.as_deref(), Some("bob"));
}

#[tokio::test]
async fn roaming_filters_a_group_by_type_sender_and_time_and_refuses_outsiders() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let g = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob"]})).await;
    let gid = g.body["data"]["groupid"].as_str().unwrap().to_string();
    // a few ms apart, for the time bounds
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(3));
    send_group(&app, "alice", &gid, "txt", json!({"msg": "a1"})).await;
    pause().await;
    send_group(&app, "bob", &gid, "txt", json!({"msg": "b1"})).await;
    pause().await;
    send_group(&app, "alice", &gid, "cmd", json!({"action": "ping"})).await;
    pause().await;
    send_group(&app, "alice", &gid, "txt", json!({"msg": "a2"})).await;
    let queue = format!("{gid}@conference.easemob.com");
    let bob = app.user_token("bob").await;

    let all = metas(&roam(&app, "bob", &bob, json!({"queue": queue, "pull_number": 50})).await);
    assert_eq!(all.len(), 4);
    let b = MessageBody::decode(all[0].payload.as_deref().unwrap()).unwrap();
    assert_eq!(b.r#type, Some(2), "GROUPCHAT");
    assert_eq!(b.to.unwrap().name, Some(gid.clone()));
    assert_eq!(all[0].to.as_ref().unwrap().domain.as_deref(), Some("conference.easemob.com"));

    let txt = metas(&roam(&app, "bob", &bob, json!({"queue": queue, "msgType": "txt", "is_positive": true})).await);
    assert_eq!(texts(&txt), ["a1", "b1", "a2"]);
    let from_alice = metas(&roam(&app, "bob", &bob, json!({"queue": queue, "msgType": "txt", "userId": "alice"})).await);
    assert_eq!(texts(&from_alice), ["a2", "a1"]);
    let paged = roam(&app, "bob", &bob, json!({"queue": queue, "msgType": "txt", "pull_number": 1, "is_positive": true})).await;
    assert_eq!(texts(&metas(&paged)), ["a1"]);
    let next = paged.body["data"]["next_key"].clone();
    let paged =
        roam(&app, "bob", &bob, json!({"queue": queue, "msgType": "txt", "pull_number": 1, "is_positive": true, "start": next})).await;
    assert_eq!(texts(&metas(&paged)), ["b1"]);
    // both ends included: from b1's time to the command's
    let (b1, ping) = (all[2].timestamp.unwrap(), all[1].timestamp.unwrap());
    let between = metas(&roam(&app, "bob", &bob, json!({"queue": queue, "startTime": b1, "endTime": ping, "msgType": "txt,cmd"})).await);
    assert_eq!(between.iter().map(|m| m.id).collect::<Vec<_>>(), [all[1].id, all[2].id]);
    let after = metas(&roam(&app, "bob", &bob, json!({"queue": queue, "startTime": all[0].timestamp.unwrap()})).await);
    assert_eq!(texts(&after), ["a2"]);

    // carol is not in the group; bob's token reaches only bob's history
    let carol = app.user_token("carol").await;
    roam(&app, "carol", &carol, json!({"queue": queue})).await.em_error(403, "forbidden_op");
    roam(&app, "alice", &bob, json!({"queue": queue})).await.em_error(401, "unauthorized");
    roam(&app, "bob", &bob, json!({"queue": "999999@conference.easemob.com"})).await.em_error(404, "service_resource_not_found");
    roam(&app, "bob", &bob, json!({})).await.em_error(400, "illegal_argument");
    roam(&app, "bob", &bob, json!({"queue": queue, "pull_number": 51})).await.em_error(400, "illegal_argument");
    // a chat room: its history for those present only
    let room = app.post("/chatrooms", json!({"name": "r", "owner": "alice"})).await;
    let rid = room.body["data"]["id"].as_str().expect("room id").to_string();
    let mut alice_dev = Client::login(&srv, &app, "alice", "webim_web_a").await;
    let joined = alice_dev.room(1, &rid, confab_face_easemob::msync::proto::muc_body::Operation::Join, false).await;
    assert_eq!(crate::em_msync::code(&joined.status), 0);
    let r = app.post("/messages/chatrooms", json!({"from": "alice", "to": [rid], "type": "txt", "body": {"msg": "in the room"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let alice = app.user_token("alice").await;
    let room_queue = format!("{rid}@conference.easemob.com");
    let ms = metas(&roam(&app, "alice", &alice, json!({"queue": room_queue})).await);
    assert_eq!(texts(&ms), ["in the room"]);
    assert_eq!(MessageBody::decode(ms[0].payload.as_deref().unwrap()).unwrap().r#type, Some(3), "CHATROOM");
    roam(&app, "bob", &bob, json!({"queue": room_queue})).await.em_error(403, "forbidden_op");

    // the app token may read any user's
    let r = app.post("/users/bob/messageroaming", json!({"queue": queue, "pull_number": 1})).await;
    assert_eq!(metas(&r).len(), 1);
    // a recalled message leaves the history
    let id = send(&app, "alice", "bob", "oops").await;
    let r = app.post("/messages/msg_recall", json!({"msg_id": id, "to": "bob", "chat_type": "chat", "from": "alice", "force": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(metas(&roam(&app, "bob", &bob, json!({"queue": "alice@easemob.com"})).await).is_empty());
}

async fn list(app: &EmApp, user: &str, token: &str, query: &str) -> Value {
    let r = app.call(Method::GET, &format!("/sdk/user/{user}/user_channels/list?{query}"), Em::Token(token.to_string()), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].clone()
}

fn sessions(data: &Value) -> Vec<(String, String, i64, bool)> {
    data["channel_infos"]
        .as_array()
        .expect("channel_infos")
        .iter()
        .map(|c| {
            (
                c["session_to"].as_str().unwrap().to_string(),
                c["session_type"].as_str().unwrap().to_string(),
                c["unread_num"].as_i64().unwrap(),
                c["is_top"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_sdk_conversation_list_shows_unread_counts_last_messages_and_pins() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let g = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob"]})).await;
    let gid = g.body["data"]["groupid"].as_str().unwrap().to_string();
    // a few ms apart: the list is ordered by last message time
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(3));
    send(&app, "alice", "bob", "hi bob").await;
    send(&app, "alice", "bob", "again").await;
    pause().await;
    send_group(&app, "alice", &gid, "txt", json!({"msg": "to the group"})).await;
    pause().await;
    send(&app, "bob", "carol", "hi carol").await;
    let bob = app.user_token("bob").await;

    let data = list(&app, "bob", &bob, "limit=20&cursor=&need_mark=true&needEmptySession=false").await;
    assert_eq!(
        sessions(&data),
        [("carol".into(), "chat".into(), 0, false), (gid.clone(), "groupchat".into(), 1, false), ("alice".into(), "chat".into(), 2, false)]
    );
    assert_eq!(data["cursor"], "");
    let alice_row = &data["channel_infos"][2];
    assert_eq!(alice_row["marks"], json!([]));
    let meta = &alice_row["meta"];
    assert_eq!(meta["from"], "alice");
    assert_eq!(meta["to"], "bob");
    let payload: Value = serde_json::from_str(meta["payload"].as_str().expect("payload string")).expect("JSON");
    assert_eq!(payload["bodies"][0], json!({"type": "txt", "msg": "again"}));
    assert_eq!(payload["type"], "chat");
    assert!(meta["timestamp"].as_i64().unwrap() > 0 && meta["id"].is_string());

    // paging
    let first = list(&app, "bob", &bob, "limit=2").await;
    assert_eq!(sessions(&first).len(), 2);
    assert_eq!(first["cursor"], "2");
    let rest = list(&app, "bob", &bob, "limit=2&cursor=2").await;
    assert_eq!(sessions(&rest)[0].0, "alice");
    assert_eq!(rest["cursor"], "");

    // pin alice's conversation: first in the list, alone in the pinned list
    let path = "/sdk/user/bob/user_channel/top?resource=webim_web_1";
    let r = app.call(Method::POST, path, Em::Token(bob.clone()), Some(json!({"type": "chat", "to": "alice"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["is_top"], true);
    assert!(r.body["data"]["update_top_status_time"].as_i64().unwrap() > 0);
    let data = list(&app, "bob", &bob, "limit=20").await;
    assert_eq!(sessions(&data)[0], ("alice".into(), "chat".into(), 2, true));
    let pinned = list(&app, "bob", &bob, "limit=20&is_top=true").await;
    assert_eq!(sessions(&pinned).len(), 1);
    let r = app.call(Method::POST, path, Em::Token(bob.clone()), Some(json!({"type": "groupChat", "to": gid}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(sessions(&list(&app, "bob", &bob, "is_top=true").await).len(), 2);
    let r = app
        .call(Method::DELETE, &format!("/sdk/user/bob/user_channel/top?type=groupChat&to={gid}&resource=x"), Em::Token(bob.clone()), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["is_top"], false);
    assert_eq!(sessions(&list(&app, "bob", &bob, "is_top=true").await).len(), 1);
    // a conversation bob does not have
    let r = app.call(Method::POST, path, Em::Token(bob.clone()), Some(json!({"type": "chat", "to": "nobody"}))).await;
    r.em_error(404, "resource_not_found");

    // marks: on bob's conversations only, listed and searched by mark
    let marks = "/sdk/user/bob/user_channels/mark?resource=x";
    let targets = json!([{"to": "alice", "type": "chat"}, {"to": gid, "type": "groupchat"}, {"to": "nobody", "type": "chat"}]);
    let r = app.call(Method::POST, marks, Em::Token(bob.clone()), Some(json!({"mark": "mark_2", "targets": targets}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["ignore"], json!([{"to": "nobody", "type": "chat"}]));
    let r = app
        .call(Method::POST, marks, Em::Token(bob.clone()), Some(json!({"mark": "mark_0", "targets": [{"to": "alice", "type": "chat"}]})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let data = list(&app, "bob", &bob, "").await;
    assert_eq!(data["channel_infos"][0]["marks"], json!(["mark_0", "mark_2"]));
    let search = |mark: &'static str| {
        let (app, bob) = (&app, bob.clone());
        async move {
            let r = app
                .call(
                    Method::GET,
                    &format!("/sdk/user/bob/user_channels/mark/search?limit=10&cursor=&need_mark=true&mark={mark}"),
                    Em::Token(bob),
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            sessions(&r.body["data"]).into_iter().map(|s| s.0).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("mark_2").await, ["alice".to_string(), gid.clone()]);
    assert_eq!(search("mark_0").await, ["alice"]);
    assert!(search("mark_7").await.is_empty());
    let r = app
        .call(Method::DELETE, marks, Em::Token(bob.clone()), Some(json!({"mark": "mark_2", "targets": [{"to": gid, "type": "groupChat"}]})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(search("mark_2").await, ["alice"]);
    let r = app
        .call(Method::POST, marks, Em::Token(bob.clone()), Some(json!({"mark": "mark_20", "targets": [{"to": "alice", "type": "chat"}]})))
        .await;
    r.em_error(400, "illegal_argument");

    // deleteConversation: gone from the list, and unpinned
    let r = app
        .call(
            Method::DELETE,
            "/user/bob/user_channel?resource=x",
            Em::Token(bob.clone()),
            Some(json!({"channel": "alice", "type": "chat", "delete_roam": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let data = list(&app, "bob", &bob, "").await;
    assert!(sessions(&data).iter().all(|s| s.0 != "alice"), "{data}");
    assert!(sessions(&list(&app, "bob", &bob, "is_top=true").await).is_empty());
    assert!(search("mark_0").await.is_empty(), "and unmarked");

    // only bob's own list with bob's token
    let r = app.call(Method::GET, "/sdk/user/alice/user_channels/list", Em::Token(bob.clone()), None).await;
    r.em_error(401, "unauthorized");
    let r = app
        .call(Method::POST, "/sdk/user/alice/user_channel/top", Em::Token(bob.clone()), Some(json!({"type": "chat", "to": "bob"})))
        .await;
    r.em_error(401, "unauthorized");
}

#[tokio::test]
async fn resources_list_the_devices_online_and_a_token_says_when_it_expires() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let token = app.user_token("alice").await;
    let get = |path: &'static str, t: String| {
        let app = &app;
        async move { app.call(Method::GET, path, Em::Token(t), None).await }
    };
    let r = get("/users/alice/resources", token.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!([]));
    let _one = Client::login(&srv, &app, "alice", "webim_web_1").await;
    let _two = Client::login(&srv, &app, "alice", "webim_web_2").await;
    let r = get("/users/alice/resources", token.clone()).await;
    assert_eq!(r.body["data"], json!([{"res": "webim_web_1"}, {"res": "webim_web_2"}]));
    get("/users/bob/resources", token.clone()).await.em_error(401, "unauthorized");

    let r = get("/sdk/users/alice/token/expires", token.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let at = r.body["expire_timestamp"].as_i64().expect("expire_timestamp");
    assert!(at > now_ms() + 3_600_000, "{at}");
    get("/sdk/users/bob/token/expires", token).await.em_error(401, "unauthorized");
}

/// Bad input to the client-only calls: each answered with a 4xx in Easemob's envelope (never a
/// 5xx), and nothing of the history changed by it.
#[tokio::test]
async fn the_client_calls_answer_bad_input_in_easemobs_envelope() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    send(&app, "alice", "bob", "kept").await;
    let alice = app.user_token("alice").await;
    let bad_bodies = [
        json!({"queue": 7}),
        json!({"queue": "bob@easemob.com", "pull_number": "ten"}),
        json!({"queue": "bob@easemob.com", "pull_number": 0}),
        json!({"queue": "bob@easemob.com", "pull_number": 51}),
        json!({"queue": "bob@easemob.com", "start": "soon"}),
        json!([1, 2]),
    ];
    for body in bad_bodies {
        let r = roam(&app, "alice", &alice, body.clone()).await;
        assert!((400..500).contains(&r.status), "{body}: {} {:?}", r.status, r.body);
        assert!(r.body["error"].is_string(), "{body}: Easemob's envelope: {:?}", r.body);
    }
    let calls = [
        (Method::GET, "/sdk/user/alice/user_channels/list?limit=-1"),
        (Method::GET, "/sdk/user/alice/user_channels/list?cursor=%%%"),
        (Method::POST, "/users/alice/contacts/apply"),
        (Method::POST, "/sdk/user/alice/blocks"),
    ];
    for (m, path) in calls {
        let r = app.call(m.clone(), path, Em::Token(alice.clone()), Some(json!({"usernames": 5}))).await;
        assert!((400..500).contains(&r.status), "{m} {path}: {} {:?}", r.status, r.body);
        assert!(r.body["error"].is_string(), "{m} {path}: Easemob's envelope: {:?}", r.body);
    }
    // nothing lost: the history is as it was
    let r = roam(&app, "alice", &alice, json!({"queue": "bob@easemob.com", "start": -1, "pull_number": 10})).await;
    assert_eq!(texts(&metas(&r)), vec!["kept".to_string()]);
    srv.stop().await;
}
