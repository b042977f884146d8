//! Easemob face over real HTTP: reactions (§3.13) — add, list by message ids, delete, details —
//! with the per-message cap, participants only, the caller rules, and a reaction on a message
//! sent through LeanCloud.

use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

async fn dm(app: &EmApp, from: &str, to: &str) -> String {
    let r = app.post("/messages/users", json!({"from": from, "to": [to], "type": "txt", "body": {"msg": "hi"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"][to].as_str().unwrap().to_string()
}

async fn react(app: &EmApp, user: &str, msg: &str, reaction: &str) -> Resp {
    app.post(&format!("/reaction/user/{user}"), json!({"msgId": msg, "message": reaction})).await
}

/// The `{requestStatusCode, timestamp, data}` envelope.
#[track_caller]
fn ok_envelope(r: &Resp) -> &Value {
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["requestStatusCode"], "ok", "{:?}", r.body);
    assert!(r.body["timestamp"].is_i64());
    &r.body["data"]
}

#[tokio::test]
async fn add_list_detail_and_delete() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let msg = dm(&app, "alice", "bob").await;

    let r = react(&app, "bob", &msg, "emoji_40").await;
    let d = ok_envelope(&r);
    assert_eq!(d["msgId"], msg.as_str());
    assert_eq!(d["msgType"], "chat");
    assert_eq!(d["groupId"], Value::Null);
    assert_eq!(d["reaction"], "emoji_40");
    assert!(d["id"].as_str().unwrap().parse::<i64>().is_ok());
    assert!(d["createdAt"].as_str().unwrap().ends_with('Z'), "ISO-8601: {d}");
    react(&app, "alice", &msg, "emoji_40").await;
    react(&app, "alice", &msg, "👍").await;
    // twice the same is refused
    react(&app, "bob", &msg, "emoji_40").await.em_error(400, "Bad Request");
    // only the conversation's members may react
    let r = react(&app, "carol", &msg, "emoji_1").await;
    r.em_error(400, "Bad Request");
    assert_eq!(r.body["error_description"], "the user operation is illegal!");

    let other = dm(&app, "bob", "alice").await;
    let r = app.get(&format!("/reaction/user/alice?msgIdList={msg},{other}&msgType=chat")).await;
    let d = ok_envelope(&r);
    assert_eq!(d[0]["msgId"], msg.as_str());
    let list = d[0]["reactionList"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["reaction"], "emoji_40");
    assert_eq!(list[0]["count"], 2);
    assert_eq!(list[0]["state"], true, "alice reacted");
    assert_eq!(list[0]["userList"], json!(["bob", "alice"]));
    assert_eq!(list[1]["reaction"], "👍");
    assert_eq!(d[1]["reactionList"], json!([]));
    let bob_view = app.get(&format!("/reaction/user/bob?msgIdList={msg}")).await;
    assert_eq!(ok_envelope(&bob_view)[0]["reactionList"][1]["state"], false, "bob did not thumb it");
    // the same reaction keeps its id
    assert_eq!(list[0]["reactionId"], ok_envelope(&bob_view)[0]["reactionList"][0]["reactionId"]);

    // listing limits
    let many = vec![msg.as_str(); 21].join(",");
    app.get(&format!("/reaction/user/alice?msgIdList={many}")).await.em_error(400, "Bad Request");
    app.get("/reaction/user/alice").await.em_error(400, "Bad Request");
    app.get(&format!("/reaction/user/alice?msgIdList={msg}&msgType=groupchat")).await.em_error(400, "Bad Request");

    // details page through the users, oldest first
    let r = app.get(&format!("/reaction/user/alice/detail?msgId={msg}&message=emoji_40&limit=1")).await;
    let d = ok_envelope(&r);
    assert_eq!((d["count"].as_i64(), d["state"].as_bool()), (Some(2), Some(true)));
    assert_eq!(d["userList"], json!(["bob"]));
    let cursor = d["cursor"].as_str().expect("cursor").to_string();
    let r = app.get(&format!("/reaction/user/alice/detail?msgId={msg}&message=emoji_40&limit=1&cursor={cursor}")).await;
    assert_eq!(ok_envelope(&r)["userList"], json!(["alice"]));
    assert!(r.body["data"].get("cursor").is_none());
    // the client SDK's names
    let r = app.get(&format!("/reaction/user/alice/detail?msgId={msg}&message=emoji_40&pageSize=1&currentPage=2")).await;
    assert_eq!(ok_envelope(&r)["userList"], json!(["alice"]));
    app.get(&format!("/reaction/user/alice/detail?msgId={msg}&message=emoji_40&limit=51")).await.em_error(400, "Bad Request");

    // delete
    let r = app.delete(&format!("/reaction/user/alice?msgId={msg}&message=emoji_40")).await;
    assert_eq!(r.body["requestStatusCode"], "ok", "{:?}", r.body);
    app.delete(&format!("/reaction/user/alice?msgId={msg}&message=emoji_40")).await.em_error(400, "Bad Request");
    let r = app.get(&format!("/reaction/user/bob?msgIdList={msg}")).await;
    assert_eq!(ok_envelope(&r)[0]["reactionList"][0]["userList"], json!(["bob"]));
    srv.stop().await;
}

#[tokio::test]
async fn the_per_message_cap_groups_callers_and_bad_input() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let g = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob"]})).await;
    let gid = g.body["data"]["groupid"].as_str().unwrap().to_string();
    let r = app.post("/messages/chatgroups", json!({"from": "alice", "to": [gid], "type": "txt", "body": {"msg": "hi all"}})).await;
    let msg = r.body["data"][&gid].as_str().unwrap().to_string();

    let d = ok_envelope(&react(&app, "bob", &msg, "r0").await).clone();
    assert_eq!((d["msgType"].as_str(), d["groupId"].as_str()), (Some("groupchat"), Some(gid.as_str())));
    let r = app.get(&format!("/reaction/user/bob?msgIdList={msg}&msgType=groupchat&groupId={gid}")).await;
    assert_eq!(ok_envelope(&r)[0]["reactionList"][0]["count"], 1);
    // 20 distinct reactions a message; more of an existing one is fine
    for i in 1..20 {
        ok_envelope(&react(&app, "bob", &msg, &format!("r{i}")).await);
    }
    let r = react(&app, "alice", &msg, "r20").await;
    r.em_error(400, "Bad Request");
    assert_eq!(r.body["error_description"], "The quantity has exceeded the limit!");
    ok_envelope(&react(&app, "alice", &msg, "r5").await);
    // the cap is the app's to change
    srv.engine().apps().set_app_limit(&app.app.name, "em_reactions_per_message_max", "21").await.expect("limit");
    ok_envelope(&react(&app, "alice", &msg, "r20").await);

    // a user token reacts only as itself
    let bob = app.user_token("bob").await;
    let r = app.call(Method::POST, "/reaction/user/bob", Em::Token(bob.clone()), Some(json!({"msgId": msg, "message": "r20"}))).await;
    ok_envelope(&r);
    app.call(Method::POST, "/reaction/user/alice", Em::Token(bob), Some(json!({"msgId": msg, "message": "x"})))
        .await
        .em_error(401, "unauthorized");
    app.call(Method::POST, "/reaction/user/bob", Em::None, Some(json!({"msgId": msg, "message": "x"}))).await.em_error(401, "unauthorized");

    // bad input
    react(&app, "bob", "not-a-number", "x").await.em_error(400, "Bad Request");
    react(&app, "bob", "424242", "x").await.em_error(400, "Bad Request");
    react(&app, "bob", &msg, &"e".repeat(129)).await.em_error(400, "Bad Request");
    app.post("/reaction/user/bob", json!({"msgId": msg})).await.em_error(400, "Bad Request");
    app.post("/reaction/user/nobody", json!({"msgId": msg, "message": "x"})).await.em_error(404, "service_resource_not_found");

    // a chat room message takes no reactions
    let room = app.post("/chatrooms", json!({"name": "r", "owner": "alice"})).await.body["data"]["id"].as_str().unwrap().to_string();
    let r = app.post("/messages/chatrooms", json!({"from": "alice", "to": [room], "type": "txt", "body": {"msg": "x"}})).await;
    let room_msg = r.body["data"][&room].as_str().unwrap().to_string();
    react(&app, "alice", &room_msg, "x").await.em_error(400, "Bad Request");
    srv.stop().await;
}

#[tokio::test]
async fn a_message_sent_through_leancloud_takes_reactions() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let lc = srv.lc_of(&app);
    let conv = lc.conversation(json!({"m": ["alice", "bob"], "unique": true})).await;
    let (msg, _) = lc.send(&conv, "alice", "from leancloud").await;
    let d = ok_envelope(&react(&app, "bob", &msg, "heart").await).clone();
    assert_eq!(d["msgType"], "chat");
    let r = app.get(&format!("/reaction/user/alice?msgIdList={msg}")).await;
    assert_eq!(ok_envelope(&r)[0]["reactionList"][0]["userList"], json!(["bob"]));
    srv.stop().await;
}
