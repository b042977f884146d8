//! The rest of the Easemob client-only REST calls, with users' own tokens over real HTTP
//! (specs/easemob-msync.md §12.2, §12.3, §12.6): threads under the thread rules, pinned messages,
//! erasing one's own roaming history, contact remarks, silent-mode lists and group shields,
//! message reports, a group message's readers, group member attributes.

use confab_engine::model::{ConvKind, Cursor, Plan};
use confab_engine::Actor;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::em_msync::text_of;

async fn call(app: &EmApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.call(method, path, Em::Token(token.to_string()), body).await
}

#[track_caller]
fn ok(r: &Resp) -> &Value {
    assert_eq!(r.status, 200, "{:?}", r.body);
    &r.body
}

/// A public group of alice's with bob and carol in it (dave stays out), and a message of
/// alice's in it.
async fn group_and_message(app: &EmApp) -> (String, String) {
    app.users(&["alice", "bob", "carol", "dave"]).await;
    let g = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob", "carol"]})).await;
    let gid = ok(&g)["data"]["groupid"].as_str().expect("group id").to_string();
    let m = app.post("/messages/chatgroups", json!({"from": "alice", "to": [gid], "type": "txt", "body": {"msg": "root"}})).await;
    let msg = ok(&m)["data"][&gid].as_str().expect("message id").to_string();
    (gid, msg)
}

async fn send(app: &EmApp, from: &str, to: &str, text: &str) -> String {
    let r = app.post("/messages/users", json!({"from": from, "to": [to], "type": "txt", "body": {"msg": text}})).await;
    ok(&r)["data"][to].as_str().expect("message id").to_string()
}

async fn send_group(app: &EmApp, from: &str, gid: &str, text: &str) -> String {
    let r = app.post("/messages/chatgroups", json!({"from": from, "to": [gid], "type": "txt", "body": {"msg": text}})).await;
    ok(&r)["data"][gid].as_str().expect("message id").to_string()
}

/// The texts of a user's roaming history of a queue, oldest first.
async fn history(app: &EmApp, user: &str, token: &str, queue: &str) -> Vec<String> {
    let r =
        call(app, token, Method::POST, &format!("/users/{user}/messageroaming"), Some(json!({"queue": queue, "pull_number": 50}))).await;
    let mut out: Vec<String> = ok(&r)["data"]["msgs"]
        .as_array()
        .expect("msgs")
        .iter()
        .map(|m| {
            use base64::Engine as _;
            use prost::Message as _;
            let bytes = base64::engine::general_purpose::STANDARD.decode(m["msg"].as_str().expect("msg")).expect("base64");
            text_of(&confab_face_easemob::msync::proto::Meta::decode(bytes.as_slice()).expect("meta"))
        })
        .collect();
    out.reverse();
    out
}

#[tokio::test]
async fn threads_with_user_tokens_follow_the_thread_rules() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, msg) = group_and_message(&app).await;
    let [alice, bob, carol, dave] =
        [app.user_token("alice").await, app.user_token("bob").await, app.user_token("carol").await, app.user_token("dave").await];

    // createChatThread: a member creates a thread it owns; not for someone else, nor from outside
    let body = json!({"name": "t1", "msg_id": msg, "group_id": gid, "owner": "alice"});
    call(&app, &bob, Method::POST, "/thread", Some(body)).await.em_error(403, "forbidden_op");
    let body = json!({"name": "t1", "msg_id": msg, "group_id": gid, "owner": "dave"});
    call(&app, &dave, Method::POST, "/thread", Some(body)).await.em_error(403, "forbidden_op");
    let r = call(&app, &bob, Method::POST, "/thread", Some(json!({"name": "t1", "msg_id": msg, "group_id": gid, "owner": "bob"}))).await;
    let tid = ok(&r)["data"]["thread_id"].as_str().expect("thread id").to_string();

    // joinChatThread: a member of the group joins and reads the thread's details in data.detail
    let r = call(&app, &carol, Method::POST, &format!("/thread/{tid}/user/carol/join"), None).await;
    let d = &ok(&r)["data"]["detail"];
    assert_eq!((d["msgId"].as_str(), d["groupId"].as_str(), d["owner"].as_str()), (Some(msg.as_str()), Some(gid.as_str()), Some("bob")));
    assert_eq!(d["affiliations_count"], 2, "{d}");
    call(&app, &dave, Method::POST, &format!("/thread/{tid}/user/dave/join"), None).await.em_error(403, "forbidden_op");
    call(&app, &carol, Method::POST, &format!("/thread/{tid}/user/bob/join"), None).await.em_error(401, "unauthorized");

    // getChatThreadDetail, getChatThreadMembers, getChatThreads: the group's members read
    let r = call(&app, &alice, Method::GET, &format!("/thread/{tid}"), None).await;
    assert_eq!(ok(&r)["data"]["name"], "t1");
    assert_eq!(r.body["data"]["affiliations_count"], 2);
    call(&app, &dave, Method::GET, &format!("/thread/{tid}"), None).await.em_error(403, "forbidden_op");
    let r = call(&app, &carol, Method::GET, &format!("/thread/{tid}/users?limit=20&cursor="), None).await;
    assert_eq!(ok(&r)["data"]["affiliations"], json!(["bob", "carol"]));
    call(&app, &dave, Method::GET, &format!("/thread/{tid}/users"), None).await.em_error(403, "forbidden_op");
    let m2 = send_group(&app, "alice", &gid, "second root").await;
    let r = call(&app, &alice, Method::POST, "/thread", Some(json!({"name": "t2", "msg_id": m2, "group_id": gid}))).await;
    let t2 = ok(&r)["data"]["thread_id"].as_str().expect("thread id").to_string();
    let r = call(&app, &carol, Method::GET, &format!("/threads/chatgroups/{gid}?cursor=&limit=1"), None).await;
    let ents = ok(&r)["entities"].as_array().expect("entities").clone();
    assert_eq!(ents.len(), 1);
    assert_eq!(ents[0]["id"], t2, "newest first");
    assert_eq!(ents[0]["msgId"], m2);
    let cursor = r.body["properties"]["cursor"].as_str().expect("a cursor while more remain").to_string();
    let r = call(&app, &carol, Method::GET, &format!("/threads/chatgroups/{gid}?cursor={cursor}&limit=1"), None).await;
    assert_eq!(ok(&r)["entities"][0]["id"], tid);
    assert!(r.body["properties"].get("cursor").is_none(), "{}", r.body);
    call(&app, &dave, Method::GET, &format!("/threads/chatgroups/{gid}"), None).await.em_error(403, "forbidden_op");

    // getChatThreadLastMessage: each readable thread's last message, its payload an object
    let thread = srv.engine().conversations().conversation(&app.app, tid.parse().unwrap(), Some(ConvKind::Thread)).await.unwrap();
    let new = confab_engine::NewMessage {
        from: "carol".into(),
        content: Some(confab_engine::model::Content::Text("in the thread".into())),
        ..Default::default()
    };
    srv.engine().messages().send_message(&app.app, &thread, new, &Actor::User("carol".into())).await.unwrap();
    let r = call(&app, &bob, Method::POST, "/thread/message", Some(json!({"threadIds": [tid, t2, "999999"]}))).await;
    let ents = ok(&r)["entities"].as_array().expect("entities").clone();
    assert_eq!(ents.len(), 2, "an unknown thread is left out: {ents:?}");
    let last = &ents.iter().find(|e| e["thread_id"] == tid).expect("t1")["last_message"];
    assert_eq!(last["from"], "carol");
    assert_eq!(last["payload"]["bodies"][0]["msg"], "in the thread");
    assert_eq!(ents.iter().find(|e| e["thread_id"] == t2).expect("t2")["last_message"], json!({}));
    let r = call(&app, &dave, Method::POST, "/thread/message", Some(json!({"threadIds": [tid]}))).await;
    assert_eq!(ok(&r)["entities"], json!([]), "an outsider reads none");

    // changeChatThreadName / destroyChatThread: the thread's owner or the group's owner or admin
    call(&app, &carol, Method::PUT, &format!("/thread/{tid}"), Some(json!({"name": "mine"}))).await.em_error(403, "forbidden_op");
    ok(&call(&app, &bob, Method::PUT, &format!("/thread/{tid}"), Some(json!({"name": "renamed"}))).await);
    ok(&call(&app, &alice, Method::PUT, &format!("/thread/{tid}"), Some(json!({"name": "by the owner"}))).await);
    assert_eq!(ok(&call(&app, &carol, Method::GET, &format!("/thread/{tid}"), None).await)["data"]["name"], "by the owner");

    // removeChatThreadMember: the group's owner or an admin; leaveChatThread: a member
    call(&app, &bob, Method::DELETE, &format!("/thread/{tid}/users/carol"), None).await.em_error(403, "forbidden_op");
    ok(&call(&app, &alice, Method::DELETE, &format!("/thread/{tid}/users/carol"), None).await);
    let r = call(&app, &bob, Method::GET, &format!("/thread/{tid}/users"), None).await;
    assert_eq!(ok(&r)["data"]["affiliations"], json!(["bob"]));
    call(&app, &carol, Method::DELETE, &format!("/thread/{tid}/user/carol/quit"), None).await.em_error(403, "forbidden_op");
    ok(&call(&app, &carol, Method::POST, &format!("/thread/{tid}/user/carol/join"), None).await);
    ok(&call(&app, &carol, Method::DELETE, &format!("/thread/{tid}/user/carol/quit"), None).await);
    let r = call(&app, &bob, Method::GET, "/threads/user/carol", None).await;
    assert_eq!(r.status, 401, "carol's threads are hers to list");
    let r = call(&app, &carol, Method::GET, "/threads/user/carol", None).await;
    assert_eq!(ok(&r)["entities"], json!([]), "carol left");

    call(&app, &carol, Method::DELETE, &format!("/thread/{tid}"), None).await.em_error(403, "forbidden_op");
    ok(&call(&app, &bob, Method::DELETE, &format!("/thread/{tid}"), None).await);
    call(&app, &bob, Method::GET, &format!("/thread/{tid}"), None).await.em_error(404, "group_error");
    ok(&call(&app, &alice, Method::DELETE, &format!("/thread/{t2}"), None).await);
}

#[tokio::test]
async fn pinned_messages_are_the_conversations_and_every_member_sees_them() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, msg) = group_and_message(&app).await;
    let [alice, bob, dave] = [app.user_token("alice").await, app.user_token("bob").await, app.user_token("dave").await];
    let later = send_group(&app, "bob", &gid, "later").await;
    let pin = |token: &str, user: &str, m: &str| {
        let (token, path) = (token.to_string(), format!("/sdk/user/{user}/user_channel/pin?resource=web"));
        let body = json!({"to": gid, "type": "groupchat", "pin_msg_id": m});
        let app = &app;
        async move { call(app, &token, Method::POST, &path, Some(body)).await }
    };
    ok(&pin(&bob, "bob", &msg).await);
    ok(&pin(&alice, "alice", &later).await);
    // an outsider, or a message of another conversation
    pin(&dave, "dave", &msg).await.em_error(404, "resource_not_found");
    let other = send(&app, "alice", "bob", "private").await;
    pin(&bob, "bob", &other).await.em_error(404, "resource_not_found");

    // bob sees alice's pin and his own, latest first, a page at a time
    let list = |token: &str, user: &str, q: &str| {
        let (token, path) = (token.to_string(), format!("/sdk/user/{user}/user_channel/pin?to={gid}&type=groupchat{q}"));
        let app = &app;
        async move { call(app, &token, Method::GET, &path, None).await }
    };
    let r = list(&bob, "bob", "&limit=1&cursor=").await;
    let infos = ok(&r)["data"]["msg_infos"].as_array().expect("msg_infos").clone();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0]["pin_operator"], "alice");
    assert!(infos[0]["pin_opt_at"].as_i64().unwrap() > 0);
    let m = &infos[0]["message"];
    assert_eq!(m["id"], later);
    let pl: Value = serde_json::from_str(m["payload"].as_str().expect("payload is a JSON string")).unwrap();
    assert_eq!((pl["bodies"][0]["msg"].as_str(), pl["type"].as_str()), (Some("later"), Some("groupchat")));
    let cursor = r.body["data"]["cursor"].as_str().unwrap().to_string();
    assert!(!cursor.is_empty());
    let r = list(&bob, "bob", &format!("&limit=1&cursor={cursor}")).await;
    assert_eq!(ok(&r)["data"]["msg_infos"][0]["message"]["id"], msg);
    assert_eq!(r.body["data"]["cursor"], "");
    list(&dave, "dave", "").await.em_error(404, "resource_not_found");

    // any member unpins; a recalled message's pin goes with it
    let r = call(
        &app,
        &alice,
        Method::DELETE,
        "/sdk/user/alice/user_channel/pin",
        Some(json!({"to": gid, "type": "groupchat", "pin_msg_id": msg})),
    )
    .await;
    ok(&r);
    ok(&app
        .post("/messages/msg_recall", json!({"msg_id": later, "to": gid, "from": "bob", "chat_type": "groupchat", "force": true}))
        .await);
    let r = list(&alice, "alice", "").await;
    assert_eq!(ok(&r)["data"]["msg_infos"], json!([]));

    // one-to-one: the peer is `to`, and each side sees the other's pin
    ok(&call(
        &app,
        &alice,
        Method::POST,
        "/sdk/user/alice/user_channel/pin",
        Some(json!({"to": "bob", "type": "chat", "pin_msg_id": other})),
    )
    .await);
    let r = call(&app, &bob, Method::GET, "/sdk/user/bob/user_channel/pin?to=alice&type=chat", None).await;
    let infos = ok(&r)["data"]["msg_infos"].as_array().unwrap().clone();
    assert_eq!(infos.len(), 1);
    assert_eq!((infos[0]["message"]["from"].as_str(), infos[0]["message"]["to"].as_str()), (Some("alice"), Some("bob")));
}

#[tokio::test]
async fn erasing_roaming_history_is_for_the_user_alone() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, _) = group_and_message(&app).await;
    let [alice, bob] = [app.user_token("alice").await, app.user_token("bob").await];
    let m: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(send(&app, if i % 2 == 0 { "alice" } else { "bob" }, if i % 2 == 0 { "bob" } else { "alice" }, &format!("m{i}")).await);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        v
    };
    // removeHistoryMessages by ids: bob's view loses them, alice's keeps them
    let r = call(
        &app,
        &bob,
        Method::DELETE,
        &format!("/sdk/message/roaming/chat/user/bob?userId=alice&msgIdList={},{}&resource=w", m[0], m[1]),
        None,
    )
    .await;
    assert_eq!(ok(&r)["data"]["count"], 2);
    assert_eq!(history(&app, "bob", &bob, "alice@easemob.com").await, ["m2", "m3"]);
    assert_eq!(history(&app, "alice", &alice, "bob@easemob.com").await, ["m0", "m1", "m2", "m3"]);
    // by time: everything before m3
    let t3 = srv.engine().messages().message(&app.app, m[3].parse().unwrap()).await.unwrap().timestamp;
    ok(&call(&app, &bob, Method::DELETE, &format!("/sdk/message/roaming/chat/user/bob/time?userId=alice&delTime={t3}&&resource=w"), None)
        .await);
    assert_eq!(history(&app, "bob", &bob, "alice@easemob.com").await, ["m3"]);
    // groups too
    send_group(&app, "bob", &gid, "g1").await;
    let r = call(
        &app,
        &alice,
        Method::DELETE,
        &format!("/sdk/message/roaming/group/user/alice/time?groupId={gid}&delTime={}", now_ms() + 1000),
        None,
    )
    .await;
    ok(&r);
    assert!(history(&app, "alice", &alice, &format!("{gid}@conference.easemob.com")).await.is_empty());
    assert_eq!(history(&app, "bob", &bob, &format!("{gid}@conference.easemob.com")).await, ["root", "g1"]);
    // another user's token, or a bad request
    call(&app, &alice, Method::DELETE, "/sdk/message/roaming/chat/user/bob?userId=alice&msgIdList=1", None)
        .await
        .em_error(401, "unauthorized");
    call(&app, &bob, Method::DELETE, "/sdk/message/roaming/chat/user/bob?userId=alice&msgIdList=x", None)
        .await
        .em_error(400, "illegal_argument");
    call(&app, &bob, Method::DELETE, "/sdk/message/roaming/group/user/bob?groupId=42&msgIdList=1", None)
        .await
        .em_error(404, "service_resource_not_found");

    // deleteAllMessagesAndConversations: bob's list and history are empty, alice's untouched
    ok(&call(&app, &bob, Method::POST, "/sdk/message/roaming/user/bob/delete/all?resource=w", None).await);
    assert!(history(&app, "bob", &bob, "alice@easemob.com").await.is_empty());
    assert!(history(&app, "bob", &bob, &format!("{gid}@conference.easemob.com")).await.is_empty());
    let r = call(&app, &bob, Method::GET, "/sdk/user/bob/user_channels/list?limit=20", None).await;
    assert_eq!(ok(&r)["data"]["channel_infos"], json!([]));
    assert_eq!(history(&app, "alice", &alice, "bob@easemob.com").await.len(), 4);
    // a new message shows the conversation again, with only what came after
    send(&app, "alice", "bob", "again").await;
    assert_eq!(history(&app, "bob", &bob, "alice@easemob.com").await, ["again"]);

    // deleteConversation with delete_roam erases the history for the user as well
    let body = json!({"channel": "alice", "type": "chat", "delete_roam": true});
    ok(&call(&app, &bob, Method::DELETE, "/user/bob/user_channel", Some(body)).await);
    assert!(history(&app, "bob", &bob, "alice@easemob.com").await.is_empty());
    assert_eq!(history(&app, "alice", &alice, "bob@easemob.com").await.len(), 5);
}

#[tokio::test]
async fn contact_remarks_are_kept_and_listed() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    for f in ["bob", "carol"] {
        ok(&app.post(&format!("/users/alice/contacts/users/{f}"), json!({})).await);
    }
    let alice = app.user_token("alice").await;
    ok(&call(&app, &alice, Method::PUT, "/users/alice/contacts/users/bob?resource=w", Some(json!({"remark": "Bobby"}))).await);
    call(&app, &alice, Method::PUT, "/users/alice/contacts/users/dave", Some(json!({"remark": "x"}))).await.em_error(403, "forbidden_op");
    let long = "x".repeat(101);
    call(&app, &alice, Method::PUT, "/users/alice/contacts/users/bob", Some(json!({"remark": long})))
        .await
        .em_error(400, "illegal_argument");
    call(&app, &alice, Method::PUT, "/users/bob/contacts/users/alice", Some(json!({"remark": "x"}))).await.em_error(401, "unauthorized");

    // getAllContacts
    let r = call(&app, &alice, Method::GET, "/users/alice/contacts/users?needReturnRemark=true", None).await;
    let mut got: Vec<(String, String)> = ok(&r)["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["username"].as_str().unwrap().to_string(), e["remark"].as_str().unwrap().to_string()))
        .collect();
    got.sort();
    assert_eq!(got, [("bob".to_string(), "Bobby".to_string()), ("carol".to_string(), String::new())]);
    // getContactsWithCursor, one a page
    let r = call(&app, &alice, Method::GET, "/users/alice/contacts?needReturnRemark=true&limit=1&cursor=", None).await;
    assert_eq!(ok(&r)["data"]["contacts"], json!([{"username": "bob", "remark": "Bobby"}]));
    let cursor = r.body["data"]["cursor"].as_str().unwrap().to_string();
    let r = call(&app, &alice, Method::GET, &format!("/users/alice/contacts?needReturnRemark=true&limit=1&cursor={cursor}"), None).await;
    assert_eq!(ok(&r)["data"]["contacts"], json!([{"username": "carol", "remark": ""}]));
    assert_eq!(r.body["data"]["cursor"], "");

    // a friendship ended and begun again starts without the old remark
    ok(&app.delete("/users/alice/contacts/users/bob").await);
    ok(&app.post("/users/alice/contacts/users/bob", json!({})).await);
    let r = call(&app, &alice, Method::GET, "/users/alice/contacts?limit=10", None).await;
    assert!(ok(&r)["data"]["contacts"].as_array().unwrap().iter().all(|c| c["remark"] == ""), "{}", r.body);
}

#[tokio::test]
async fn silent_mode_lists_and_group_shields() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, _) = group_and_message(&app).await;
    let [bob, dave] = [app.user_token("bob").await, app.user_token("dave").await];
    ok(&call(&app, &bob, Method::PUT, "/users/bob/notification/user/alice", Some(json!({"type": "NONE"}))).await);
    ok(&call(&app, &bob, Method::PUT, &format!("/users/bob/notification/chatgroup/{gid}"), Some(json!({"type": "AT"}))).await);

    // getSilentModeForConversations
    let r = call(&app, &bob, Method::GET, &format!("/users/bob/notification?user=alice,carol&group={gid}"), None).await;
    let d = &ok(&r)["data"];
    assert_eq!(d["user"]["alice"]["type"], "NONE");
    assert_eq!(d["user"]["carol"]["type"], "DEFAULT");
    assert_eq!(d["group"][&gid]["type"], "AT");
    // getSilentModeRemindTypeConversations, one a page
    let r = call(&app, &bob, Method::GET, "/users/bob/notification/mute/type?limit=1", None).await;
    assert_eq!(ok(&r)["data"], json!([{"user": "alice", "value": "NONE"}]));
    let cursor = r.body["cursor"].as_str().unwrap().to_string();
    let r = call(&app, &bob, Method::GET, &format!("/users/bob/notification/mute/type?limit=1&cursor={cursor}"), None).await;
    assert_eq!(ok(&r)["data"], json!([{"group": gid, "value": "AT"}]));
    assert_eq!(r.body["cursor"], "");

    // blockGroupMessage: the group's remind type is NONE; unblocked, it is AT again
    ok(&call(&app, &bob, Method::POST, &format!("/chatgroups/{gid}/shield?version=v3&resource=w"), None).await);
    let r = call(&app, &bob, Method::GET, &format!("/users/bob/notification/chatgroup/{gid}"), None).await;
    assert_eq!(ok(&r)["data"]["type"], "NONE");
    ok(&call(&app, &bob, Method::DELETE, &format!("/chatgroups/{gid}/shield"), None).await);
    let r = call(&app, &bob, Method::GET, &format!("/users/bob/notification/chatgroup/{gid}"), None).await;
    assert_eq!(ok(&r)["data"]["type"], "AT");
    call(&app, &dave, Method::POST, &format!("/chatgroups/{gid}/shield"), None).await.em_error(403, "forbidden_op");
}

#[tokio::test]
async fn reports_readers_and_member_attributes() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, msg) = group_and_message(&app).await;
    let [alice, bob, carol, dave] =
        [app.user_token("alice").await, app.user_token("bob").await, app.user_token("carol").await, app.user_token("dave").await];

    // reportMessage: kept for the operator; a message one cannot see is not found
    let body = json!({"username": "bob", "reportType": "spam", "reportReason": "ads"});
    ok(&call(&app, &bob, Method::POST, &format!("/user/bob/moderation/report/message/{msg}"), Some(body.clone())).await);
    call(&app, &dave, Method::POST, &format!("/user/dave/moderation/report/message/{msg}"), Some(body))
        .await
        .em_error(404, "resource_not_found");
    let r = app.get("/moderation/reports").await;
    let e = &ok(&r)["entities"];
    assert_eq!(e.as_array().unwrap().len(), 1);
    assert_eq!((e[0]["reporter"].as_str(), e[0]["type"].as_str(), e[0]["reason"].as_str()), (Some("bob"), Some("spam"), Some("ads")));
    assert_eq!((e[0]["msg"].as_str(), e[0]["from"].as_str()), (Some(msg.as_str()), Some("alice")));
    call(&app, &bob, Method::GET, "/moderation/reports", None).await.em_error(401, "unauthorized");

    // getGroupMsgReadUser: those whose read cursor passed it
    let group = srv.engine().conversations().conversation(&app.app, gid.parse().unwrap(), None).await.unwrap();
    srv.engine().messages().acknowledge(&app.app, &group, "carol", Cursor::Read, msg.parse().unwrap()).await.unwrap();
    let r = call(&app, &bob, Method::GET, &format!("/chatgroups/{gid}/acks/{msg}?limit=500"), None).await;
    assert_eq!(ok(&r)["data"], json!(["carol"]));
    srv.engine().messages().acknowledge(&app.app, &group, "bob", Cursor::Read, msg.parse().unwrap()).await.unwrap();
    let r = call(&app, &alice, Method::GET, &format!("/chatgroups/{gid}/acks/{msg}"), None).await;
    let mut readers: Vec<String> = serde_json::from_value(ok(&r)["data"].clone()).unwrap();
    readers.sort();
    assert_eq!(readers, ["bob", "carol"]);
    call(&app, &dave, Method::GET, &format!("/chatgroups/{gid}/acks/{msg}"), None).await.em_error(403, "forbidden_op");
    // the SDK's first page says key=undefined; a page of one goes on from `key`
    let r = call(&app, &alice, Method::GET, &format!("/chatgroups/{gid}/acks/{msg}?limit=1&key=undefined"), None).await;
    assert_eq!((ok(&r)["data"].as_array().unwrap().len(), r.body["key"].as_str()), (1, Some("1")));
    let r = call(&app, &alice, Method::GET, &format!("/chatgroups/{gid}/acks/{msg}?limit=1&key=1"), None).await;
    assert_eq!((ok(&r)["data"].as_array().unwrap().len(), r.body["key"].as_str()), (1, Some("")));
    call(&app, &alice, Method::GET, &format!("/chatgroups/{gid}/acks/{msg}?key=x"), None).await.em_error(400, "illegal_argument");

    // setGroupMemberAttributes: one's own, or the owner anyone's; members read them
    let put = |token: &str, user: &str, meta: Value| {
        let (token, path) = (token.to_string(), format!("/sdk/metadata/chatgroup/{gid}/user/{user}?resource=w&version=v3"));
        let app = &app;
        async move { call(app, &token, Method::PUT, &path, Some(json!({"metaData": meta}))).await }
    };
    assert_eq!(ok(&put(&bob, "bob", json!({"nick": "B", "color": "red"})).await)["data"], json!({"nick": "B", "color": "red"}));
    put(&bob, "carol", json!({"nick": "C"})).await.em_error(403, "forbidden_op");
    ok(&put(&alice, "carol", json!({"nick": "C"})).await);
    put(&dave, "dave", json!({"nick": "D"})).await.em_error(403, "forbidden_op");
    put(&bob, "bob", json!({"a-key-longer-than-16": "x"})).await.em_error(400, "metadata_error");
    ok(&put(&bob, "bob", json!({"color": ""})).await);
    let get = |token: &str, body: Value| {
        let (token, path) = (token.to_string(), format!("/sdk/metadata/chatgroup/{gid}/get?version=v3"));
        let app = &app;
        async move { call(app, &token, Method::POST, &path, Some(body)).await }
    };
    let r = get(&carol, json!({"targets": ["bob", "carol", "alice"], "properties": []})).await;
    assert_eq!(ok(&r)["data"], json!({"alice": {}, "bob": {"nick": "B"}, "carol": {"nick": "C"}}));
    let r = get(&carol, json!({"targets": ["carol"], "properties": ["color"]})).await;
    assert_eq!(ok(&r)["data"], json!({"carol": {}}));
    get(&dave, json!({"targets": ["bob"]})).await.em_error(403, "forbidden_op");
    // the app token reads them too
    let r = app.get(&format!("/metadata/chatgroup/{gid}/user/bob")).await;
    assert_eq!(ok(&r)["data"], json!({"nick": "B"}));
    // a member who leaves the group has none to show
    ok(&app.delete(&format!("/chatgroups/{gid}/users/carol")).await);
    let r = get(&bob, json!({"targets": ["carol"]})).await;
    assert_eq!(ok(&r)["data"], json!({"carol": {}}));
}

#[tokio::test]
async fn the_calls_out_of_scope_are_not_served() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;
    let alice = app.user_token("alice").await;
    for (method, path) in [
        (Method::POST, "/users/alice/translate"),
        (Method::GET, "/users/alice/translate/support/language"),
        (Method::GET, "/users/alice/token/rtc?channelName=x"),
        (Method::POST, "/rtc_mapper/batch/get"),
        (Method::POST, "/sdk/users/alice/client/logs"),
    ] {
        call(&app, &alice, method, path, Some(json!({}))).await.em_error(404, "service_resource_not_found");
    }
}

/// A shielded group's messages are not pushed to the user who shielded it (they are to the
/// others); unshielded, they are again.
#[tokio::test]
async fn a_shielded_group_is_not_pushed_to_its_shielder() {
    use crate::common::receiver::Receiver;
    let srv = TestServer::start_with(|c| {
        c.outbox_first_retry_ms = 100;
        c.outbox_max_retry_secs = 1;
    })
    .await;
    let app = srv.em(Plan::Standard).await;
    let (gid, _) = group_and_message(&app).await;
    let relay = Receiver::start().await;
    srv.engine().apps().set_app_settings(&app.app.name, &[("push.webhook_url", &relay.url("/push"))]).await.expect("settings");
    let bob = app.user_token("bob").await;
    // whom one message was pushed to (at least `n` users), once the app's outbox has none left
    let pushed_to = |msg: String, n: usize| {
        let (srv, app, relay) = (&srv, &app, &relay);
        async move {
            let of = || -> Vec<String> {
                let mut to: Vec<String> = relay
                    .calls_to("/push")
                    .into_iter()
                    .filter(|c| c.body["msg"].as_i64().map(|m| m.to_string()).as_deref() == Some(msg.as_str()))
                    .flat_map(|c| sorted_strs(&c.body["to"]))
                    .collect();
                to.sort();
                to
            };
            eventually(15, || async { (of().len() >= n).then_some(()) }).await;
            eventually(15, || async {
                let r = srv.engine().app_code().hook_report(&app.app, 1).await.expect("report");
                (r.pending == 0 && r.failed == 0).then_some(())
            })
            .await;
            of()
        }
    };
    ok(&call(&app, &bob, Method::POST, &format!("/chatgroups/{gid}/shield"), None).await);
    let m = send_group(&app, "alice", &gid, "while shielded").await;
    assert_eq!(pushed_to(m, 1).await, ["carol"]);
    ok(&call(&app, &bob, Method::DELETE, &format!("/chatgroups/{gid}/shield"), None).await);
    let m = send_group(&app, "alice", &gid, "after").await;
    assert_eq!(pushed_to(m, 2).await, ["bob", "carol"]);
    srv.stop().await;
}

/// Every call of this file with bad input (wrong types, empty bodies, unknown ids, an array for
/// an object) is answered in Easemob's envelope, never a 500, and with the owner's token too.
#[tokio::test]
async fn bad_input_is_answered_in_easemobs_envelope() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, msg) = group_and_message(&app).await;
    let r = app.post("/thread", json!({"name": "t", "msg_id": msg, "group_id": gid, "owner": "alice"})).await;
    let tid = ok(&r)["data"]["thread_id"].as_str().unwrap().to_string();
    let alice = app.user_token("alice").await;
    let paths = [
        (Method::POST, "/thread".to_string()),
        (Method::POST, "/thread/message".to_string()),
        (Method::GET, format!("/thread/{tid}")),
        (Method::PUT, format!("/thread/{tid}")),
        (Method::GET, format!("/thread/{tid}/users?limit=0")),
        (Method::DELETE, format!("/thread/{tid}/users/nobody")),
        (Method::POST, format!("/thread/{tid}/user/alice/join")),
        (Method::DELETE, format!("/thread/{tid}/user/alice/quit")),
        (Method::GET, format!("/threads/chatgroups/{gid}?cursor=x!&limit=500")),
        (Method::GET, "/threads/chatgroups/424242".to_string()),
        (Method::POST, "/sdk/user/alice/user_channel/pin".to_string()),
        (Method::DELETE, "/sdk/user/alice/user_channel/pin".to_string()),
        (Method::GET, "/sdk/user/alice/user_channel/pin?to=424242&type=groupchat&limit=x".to_string()),
        (Method::GET, "/sdk/user/alice/user_channel/pin?to=bob&type=weird".to_string()),
        (Method::DELETE, "/sdk/message/roaming/chat/user/alice".to_string()),
        (Method::DELETE, "/sdk/message/roaming/weird/user/alice?userId=bob&msgIdList=1".to_string()),
        (Method::DELETE, "/sdk/message/roaming/group/user/alice/time?groupId=x&delTime=-5".to_string()),
        (Method::PUT, "/users/alice/contacts/users/nobody".to_string()),
        (Method::GET, "/users/alice/notification?user=,,,&group=x".to_string()),
        (Method::GET, "/users/alice/notification/mute/type?limit=-1&cursor=y".to_string()),
        (Method::POST, "/chatgroups/424242/shield".to_string()),
        (Method::POST, "/user/alice/moderation/report/message/x".to_string()),
        (Method::GET, format!("/chatgroups/{gid}/acks/x?limit=0")),
        (Method::PUT, format!("/sdk/metadata/chatgroup/{gid}/user/alice")),
        (Method::POST, format!("/sdk/metadata/chatgroup/{gid}/get")),
        (Method::POST, "/sdk/metadata/chatgroup/424242/get".to_string()),
    ];
    let bodies = [
        json!({}),
        json!([]),
        json!("text"),
        json!({"name": 5, "msg_id": {}, "group_id": [1], "threadIds": "x", "to": 7, "type": 1, "pin_msg_id": [1], "remark": 5,
               "reportType": [], "metaData": "x", "targets": "alice", "properties": 3}),
        json!({"name": "", "threadIds": [null, {}, "x"], "to": "", "type": "chat", "pin_msg_id": "1", "remark": "",
               "metaData": {"k": 1}, "targets": [], "reportType": "x".repeat(100)}),
    ];
    for (method, path) in &paths {
        for body in &bodies {
            for auth in [Em::App, Em::Token(alice.clone())] {
                let r = app.call(method.clone(), path, auth, Some(body.clone())).await;
                assert!(r.status < 500, "{method} {path} {body}: {} {:?}", r.status, r.body);
                if r.status >= 400 {
                    assert!(r.body["error"].is_string() && r.body["error_description"].is_string(), "{method} {path}: {:?}", r.body);
                }
            }
        }
    }
}
