//! Easemob face over real HTTP: threads (§3.14) — create on a group message, rename, delete,
//! the app's and a user's lists with cursors, members (group members only) — with errors,
//! limits, and the thread's messages read through LeanCloud.

use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

/// A group of `members` owned by `owner`, and one message in it.
async fn group_with_message(app: &EmApp, owner: &str, members: &[&str]) -> (String, String) {
    let g = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": owner, "members": members})).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    let gid = g.body["data"]["groupid"].as_str().unwrap().to_string();
    let r = app.post("/messages/chatgroups", json!({"from": owner, "to": [gid], "type": "txt", "body": {"msg": "topic"}})).await;
    (gid.clone(), r.body["data"][&gid].as_str().unwrap().to_string())
}

async fn thread(app: &EmApp, gid: &str, msg: &str, owner: &str, name: &str) -> String {
    let r = app.post("/thread", json!({"group_id": gid, "msg_id": msg, "owner": owner, "name": name})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.get("count").is_none(), "no count: {:?}", r.body);
    r.body["data"]["thread_id"].as_str().unwrap().to_string()
}

#[track_caller]
fn ids(v: &Value) -> Vec<String> {
    v["entities"].as_array().unwrap_or_else(|| panic!("entities: {v}")).iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn create_rename_delete_and_their_errors() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let (gid, msg) = group_with_message(&app, "alice", &["bob"]).await;

    // numbers are accepted for the ids
    let r = app
        .post(
            "/thread",
            json!({"group_id": gid.parse::<i64>().unwrap(), "msg_id": msg.parse::<i64>().unwrap(), "owner": "bob", "name": "t1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["action"], "post");
    let tid = r.body["data"]["thread_id"].as_str().unwrap().to_string();
    // one thread a message
    let r = app.post("/thread", json!({"group_id": gid, "msg_id": msg, "owner": "alice", "name": "again"})).await;
    r.em_error(403, "group_error");
    assert_eq!(r.body["error_description"], "msg already create thread.not allow to create.");
    // the owner must be in the group, the message the group's, the name 1–64
    let (_, msg2) = group_with_message(&app, "alice", &["bob"]).await;
    let r = app.post("/thread", json!({"group_id": gid, "msg_id": msg, "owner": "carol", "name": "x"})).await;
    r.em_error(404, "group_error");
    let (gid2, _) = group_with_message(&app, "alice", &[]).await;
    app.post("/thread", json!({"group_id": gid2, "msg_id": msg2, "owner": "alice", "name": "x"})).await.em_error(404, "group_error");
    app.post("/thread", json!({"group_id": gid, "msg_id": "424242", "owner": "alice", "name": "x"})).await.em_error(404, "group_error");
    app.post("/thread", json!({"group_id": "424242", "msg_id": msg, "owner": "alice", "name": "x"})).await.em_error(404, "group_error");
    let (gid3, msg3) = group_with_message(&app, "alice", &["bob"]).await;
    let r = app.post("/thread", json!({"group_id": gid3, "msg_id": msg3, "owner": "alice", "name": "n".repeat(65)})).await;
    r.em_error(400, "group_error");
    assert_eq!(r.body["error_description"], "thread name limit reached.");
    app.post("/thread", json!({"group_id": gid3, "msg_id": [1], "owner": "alice", "name": "x"})).await.em_error(400, "param_illegal");
    // a one-to-one message is no group message
    let dm = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "x"}})).await;
    let dm_msg = dm.body["data"]["bob"].as_str().unwrap().to_string();
    app.post("/thread", json!({"group_id": gid3, "msg_id": dm_msg, "owner": "alice", "name": "x"})).await.em_error(404, "group_error");
    // a user token creates only threads it owns (the rest of the user rules: em_client_rest2.rs)
    let bob = app.user_token("bob").await;
    app.call(Method::POST, "/thread", Em::Token(bob), Some(json!({"group_id": gid3, "msg_id": msg3, "owner": "alice", "name": "x"})))
        .await
        .em_error(403, "forbidden_op");

    // rename
    let r = app.put(&format!("/thread/{tid}"), json!({"name": "renamed"})).await;
    assert_eq!(r.body["data"], json!({"name": "renamed"}), "{:?}", r.body);
    app.put(&format!("/thread/{tid}"), json!({"name": ""})).await.em_error(400, "group_error");
    app.put("/thread/424242", json!({"name": "x"})).await.em_error(404, "group_error");
    let r = app.get("/threads/user/bob").await;
    assert_eq!(r.body["entities"][0]["name"], "renamed", "{:?}", r.body);
    assert_eq!(r.body["entities"][0]["groupId"], gid.as_str());
    assert_eq!(r.body["entities"][0]["msgId"], msg.as_str());
    assert_eq!(r.body["entities"][0]["owner"], "bob");

    // delete
    let r = app.delete(&format!("/thread/{tid}")).await;
    assert_eq!(r.body["data"], json!({"status": "ok"}), "{:?}", r.body);
    app.delete(&format!("/thread/{tid}")).await.em_error(404, "group_error");
    assert!(ids(&app.get("/threads/user/bob").await.body).is_empty());
    // the message may carry a thread again
    thread(&app, &gid, &msg, "alice", "second").await;

    // the app's thread quota
    srv.engine().apps().set_app_limit(&app.app.name, "em_threads_max", "1").await.expect("limit");
    let r = app.post("/thread", json!({"group_id": gid3, "msg_id": msg3, "owner": "alice", "name": "x"})).await;
    r.em_error(403, "group_error");
    assert_eq!(r.body["error_description"], "thread number has reached limit.");
    srv.stop().await;
}

#[tokio::test]
async fn lists_with_cursors_and_sort() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut made = Vec::new();
    let mut groups = Vec::new();
    for i in 0..3 {
        let (gid, msg) = group_with_message(&app, "alice", &["bob"]).await;
        made.push(thread(&app, &gid, &msg, if i == 1 { "bob" } else { "alice" }, &format!("t{i}")).await);
        groups.push(gid);
    }
    // the app's threads, newest first by default, two a page
    let r = app.get("/thread?limit=2").await;
    assert_eq!(ids(&r.body), [made[2].clone(), made[1].clone()]);
    let cursor = r.body["properties"]["cursor"].as_str().expect("cursor").to_string();
    let r = app.get(&format!("/thread?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&r.body), [made[0].clone()]);
    assert!(r.body["properties"].get("cursor").is_none(), "{:?}", r.body);
    assert_eq!(ids(&app.get("/thread?sort=asc").await.body), made);
    app.get("/thread?limit=51").await.em_error(400, "group_error");
    app.get("/thread?sort=sideways").await.em_error(400, "group_error");

    // a user's threads, by joining time; an empty page ends the list
    let r = app.get("/threads/user/alice?limit=1&sort=asc").await;
    assert_eq!(ids(&r.body), [made[0].clone()]);
    let mut seen = ids(&r.body);
    let mut cursor = r.body["properties"]["cursor"].as_str().map(str::to_string);
    while let Some(k) = cursor {
        let r = app.get(&format!("/threads/user/alice?limit=1&sort=asc&cursor={k}")).await;
        if ids(&r.body).is_empty() {
            break;
        }
        seen.extend(ids(&r.body));
        cursor = r.body["properties"]["cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, [made[0].clone(), made[2].clone()], "alice owns t0 and t2");
    assert_eq!(ids(&app.get("/threads/user/bob").await.body), [made[1].clone()]);
    // in one group
    assert_eq!(ids(&app.get(&format!("/threads/chatgroups/{}/user/alice", groups[2])).await.body), [made[2].clone()]);
    assert!(ids(&app.get(&format!("/threads/chatgroups/{}/user/alice", groups[1])).await.body).is_empty());
    app.get("/threads/chatgroups/424242/user/alice").await.em_error(404, "group_error");
    // a user token reads its own list only
    let bob = app.user_token("bob").await;
    let r = app.call(Method::GET, "/threads/user/bob", Em::Token(bob.clone()), None).await;
    assert_eq!(ids(&r.body), [made[1].clone()]);
    app.call(Method::GET, "/threads/user/alice", Em::Token(bob.clone()), None).await.em_error(401, "unauthorized");
    app.call(Method::GET, "/thread", Em::Token(bob), None).await.em_error(401, "unauthorized");
    srv.stop().await;
}

#[tokio::test]
async fn members_come_from_the_group_and_messages_are_the_engines() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    let (gid, msg) = group_with_message(&app, "alice", &["bob", "carol"]).await;
    let tid = thread(&app, &gid, &msg, "alice", "t").await;
    let users = format!("/thread/{tid}/users");

    let r = app.post(&users, json!({"usernames": ["bob", "carol"]})).await;
    assert_eq!(r.body["data"], json!({"status": "ok"}), "{:?}", r.body);
    let r = app.get(&users).await;
    assert_eq!(r.body["data"]["affiliations"], json!(["alice", "bob", "carol"]), "{:?}", r.body);
    let r = app.get(&format!("{users}?limit=2")).await;
    assert_eq!(r.body["data"]["affiliations"], json!(["alice", "bob"]));
    let k = r.body["properties"]["cursor"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("{users}?limit=2&cursor={k}")).await.body["data"]["affiliations"], json!(["carol"]));
    // only the group's members, all or none
    let r = app.post(&users, json!({"usernames": ["dave"]})).await;
    r.em_error(403, "group_error");
    app.post(&users, json!({"usernames": vec!["bob"; 11]})).await.em_error(400, "group_error");
    app.post(&users, json!({"usernames": []})).await.em_error(400, "group_error");
    app.post(&users, json!({"usernames": ["nobody"]})).await.em_error(404, "resource_not_found");
    app.post("/thread/424242/users", json!({"usernames": ["bob"]})).await.em_error(404, "group_error");

    // the thread's messages are engine messages: LeanCloud reads them
    let lc = srv.lc_of(&app);
    let r = lc.post(&format!("/1.2/rtm/conversations/{tid}/messages"), json!({"from_client": "bob", "message": "in the thread"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let h = lc.get(&format!("/1.2/rtm/conversations/{tid}/messages")).await;
    assert_eq!(h.ok()[0]["data"], "in the thread");

    // remove: a result per user, in entities; both spellings of the path
    let r = app.call(Method::DELETE, &users, Em::App, Some(json!({"usernames": ["bob", "dave"]}))).await;
    assert_eq!(r.body["entities"], json!([{"result": true, "user": "bob"}, {"result": false, "user": "dave"}]), "{:?}", r.body);
    let r = app.call(Method::DELETE, &format!("/threads/{tid}/users"), Em::App, Some(json!({"usernames": ["carol"]}))).await;
    assert_eq!(r.body["entities"], json!([{"result": true, "user": "carol"}]), "{:?}", r.body);
    assert_eq!(app.get(&users).await.body["data"]["affiliations"], json!(["alice"]));

    // deleting the group takes its threads
    app.delete(&format!("/chatgroups/{gid}")).await;
    app.get(&users).await.em_error(404, "group_error");
    srv.stop().await;
}
