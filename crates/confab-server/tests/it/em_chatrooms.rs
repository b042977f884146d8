//! Easemob face over real HTTP: chat rooms (§3.8) and their member lists (§3.9) — management,
//! members, admins, owner transfer, mutes, mute-all, allowlist, blocklist, custom attributes and
//! super admins — with limits, errors, and one-engine checks through the LeanCloud face.

use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

async fn room(app: &EmApp, owner: &str, members: &[&str]) -> String {
    let mut body = json!({"name": "r", "description": "d", "owner": owner});
    if !members.is_empty() {
        body["members"] = json!(members);
    }
    let r = app.post("/chatrooms", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["id"].as_str().expect("id").to_string()
}

async fn details(app: &EmApp, id: &str) -> Value {
    let r = app.get(&format!("/chatrooms/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["data"].is_array(), "details answer an array: {:?}", r.body);
    r.body["data"][0].clone()
}

/// The users of a member list answer (`[{"owner": u}, {"member": u}, …]`), in order.
fn roster(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("array: {v}"))
        .iter()
        .map(|x| x.get("owner").or(x.get("member")).and_then(Value::as_str).unwrap().to_string())
        .collect()
}

/// Whether `from` may send to the room through the engine's send path (which every face uses):
/// `Some(true)` sent, `Some(false)` muted, `None` not in the room.
async fn may_send(srv: &TestServer, app: &EmApp, id: &str, from: &str) -> Option<bool> {
    let e = srv.engine();
    let conv = e.conversations().conversation(&app.app, id.parse().unwrap(), None).await.expect("conversation");
    let new = confab_engine::NewMessage {
        from: from.to_string(),
        content: Some(confab_engine::model::Content::Text("hi".into())),
        ..Default::default()
    };
    match e.messages().send_message(&app.app, &conv, new, &confab_engine::Actor::User(from.to_string())).await {
        Ok(_) => Some(true),
        Err(confab_engine::Error::Muted) => Some(false),
        Err(confab_engine::Error::NotMember) => None,
        Err(other) => panic!("unexpected send error: {other:?}"),
    }
}

#[tokio::test]
async fn create_list_details_update_delete() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;

    let r =
        app.post("/chatrooms", json!({"name": "lobby", "description": "all", "owner": "alice", "members": ["bob"], "custom": "c1"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["action"], "post");
    let id = r.body["data"]["id"].as_str().unwrap().to_string();
    let d = details(&app, &id).await;
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["name"], "lobby");
    assert_eq!(d["description"], "all");
    assert_eq!(d["owner"], "alice");
    assert_eq!(d["maxusers"], 1000);
    assert_eq!(d["custom"], "c1");
    assert_eq!(d["mute"], false);
    assert_eq!(d["public"], true);
    assert_eq!(d["affiliations"], json!([{"owner": "alice"}, {"member": "bob"}]));
    assert_eq!(d["affiliations_count"], 2);

    // ONE ENGINE: the room is a LeanCloud chat room, and LeanCloud's history shows its messages
    let lc = srv.lc_of(&app);
    let r = lc.post(&format!("/1.2/rtm/chatrooms/{id}/messages"), json!({"from_client": "alice", "message": "hello room"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let h = lc.get(&format!("/1.2/rtm/chatrooms/{id}/messages")).await;
    assert_eq!(h.ok()[0]["data"], "hello room");

    // several ids at once; an unknown one fails the call
    let other = room(&app, "carol", &[]).await;
    let r = app.get(&format!("/chatrooms/{id},{other}")).await;
    assert_eq!(r.body["count"], 2, "{:?}", r.body);
    app.get(&format!("/chatrooms/{id},424242")).await.em_error(404, "service_resource_not_found");
    app.get("/chatrooms/abc").await.em_error(404, "service_resource_not_found");
    let many = vec![id.as_str(); 101].join(",");
    app.get(&format!("/chatrooms/{many}")).await.em_error(400, "invalid_parameter");

    // listing: newest first, with a cursor while more remain
    let third = room(&app, "bob", &[]).await;
    let r = app.get("/chatrooms?limit=2").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let page: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(page, [third.as_str(), other.as_str()]);
    assert_eq!(r.body["data"][0]["owner"], "bob");
    let cursor = r.body["cursor"].as_str().expect("cursor").to_string();
    let r = app.get(&format!("/chatrooms?limit=2&cursor={cursor}")).await;
    assert_eq!(r.body["data"][0]["id"], id.as_str());
    assert_eq!(r.body["data"][0]["affiliations_count"], 2);
    assert!(r.body.get("cursor").is_none(), "last page has no cursor: {:?}", r.body);
    app.get("/chatrooms?limit=0").await.em_error(400, "illegal_argument");
    app.get("/chatrooms?cursor=%%%").await.em_error(400, "invalid_parameter");

    // update: the name is answered as groupname
    let r = app.put(&format!("/chatrooms/{id}"), json!({"name": "hall", "description": "everyone", "maxusers": 50})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"groupname": true, "description": true, "maxusers": true}));
    let d = details(&app, &id).await;
    assert_eq!((d["name"].as_str(), d["description"].as_str(), d["maxusers"].as_i64()), (Some("hall"), Some("everyone"), Some(50)));
    app.put(&format!("/chatrooms/{id}"), json!({"chatroom_id": "x"})).await.em_error(400, "invalid_parameter");
    app.put(&format!("/chatrooms/{id}"), json!({"name": "n".repeat(129)})).await.em_error(403, "exceed_limit");
    app.put(&format!("/chatrooms/{id}"), json!({"maxusers": 10_001})).await.em_error(403, "exceed_limit");
    app.put(&format!("/chatrooms/{id}"), json!({"maxusers": 1})).await.em_error(403, "forbidden_op");
    app.put(&format!("/chatrooms/{id}"), json!({"maxusers": "many"})).await.em_error(400, "invalid_parameter");
    assert_eq!(details(&app, &id).await["maxusers"], 50, "a refused update changes nothing");

    // the announcement (the groups' code; over 512 characters chat rooms say forbidden_op)
    let r = app.post(&format!("/chatrooms/{id}/announcement"), json!({"announcement": "welcome"})).await;
    assert_eq!(r.body["data"], json!({"id": id, "result": true}), "{:?}", r.body);
    assert_eq!(app.get(&format!("/chatrooms/{id}/announcement")).await.body["data"], json!({"announcement": "welcome"}));
    app.post(&format!("/chatrooms/{id}/announcement"), json!({"announcement": "x".repeat(513)})).await.em_error(403, "forbidden_op");

    // hand the room over to someone in it
    let r = app.put(&format!("/chatrooms/{id}"), json!({"newowner": "bob"})).await;
    assert_eq!(r.body["data"], json!({"newowner": true}), "{:?}", r.body);
    assert_eq!(details(&app, &id).await["affiliations"], json!([{"owner": "bob"}, {"member": "alice"}]));
    app.put(&format!("/chatrooms/{id}"), json!({"newowner": "carol"})).await.em_error(403, "forbidden_op");

    // delete
    let r = app.delete(&format!("/chatrooms/{id}")).await;
    assert_eq!(r.body["data"], json!({"success": true, "id": id}), "{:?}", r.body);
    app.get(&format!("/chatrooms/{id}")).await.em_error(404, "service_resource_not_found");
    app.delete(&format!("/chatrooms/{id}")).await.em_error(404, "resource_not_found");
    srv.stop().await;
}

#[tokio::test]
async fn create_checks_input_quota_and_auth() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    app.post("/chatrooms", json!({"description": "d", "owner": "alice"})).await.em_error(400, "invalid_parameter");
    app.post("/chatrooms", json!({"name": "r", "description": "d"})).await.em_error(400, "invalid_parameter");
    app.post("/chatrooms", json!({"name": "r", "owner": "nobody"})).await.em_error(404, "resource_not_found");
    app.post("/chatrooms", json!({"name": "r", "owner": "alice", "members": "bob"})).await.em_error(400, "invalid_parameter");
    app.post("/chatrooms", json!({"name": "r", "owner": "alice", "members": []})).await.em_error(400, "invalid_parameter");
    app.post("/chatrooms", json!({"name": "r", "owner": "alice", "maxusers": 10_001})).await.em_error(403, "exceed_limit");
    app.post("/chatrooms", json!({"name": "r", "owner": "alice", "maxusers": 2, "members": ["bob", "carol"]}))
        .await
        .em_error(403, "exceed_limit");
    app.post("/chatrooms", json!({"name": "t".repeat(129), "owner": "alice"})).await.em_error(403, "exceed_limit");
    app.post("/chatrooms", json!({"name": "r", "description": "d".repeat(513), "owner": "alice"})).await.em_error(403, "exceed_limit");
    app.post("/chatrooms", json!({"name": 5, "owner": "alice"})).await.em_error(400, "invalid_parameter");
    app.call(Method::POST, "/chatrooms", Em::None, Some(json!({"name": "r", "owner": "alice"}))).await.em_error(401, "unauthorized");
    let token = app.user_token("alice").await;
    // a user creates rooms only as a chat room super admin (em_group_roles.rs); anyone lists them
    app.call(Method::POST, "/chatrooms", Em::Token(token.clone()), Some(json!({"name": "r", "owner": "alice"})))
        .await
        .em_error(403, "forbidden_op");
    assert_eq!(app.call(Method::GET, "/chatrooms", Em::Token(token), None).await.status, 200);
    assert_eq!(app.get("/chatrooms").await.body["count"], 0, "nothing was made");

    // the app's room quota
    srv.engine().apps().set_app_limit(&app.app.name, "em_max_chatrooms", "1").await.expect("limit");
    room(&app, "alice", &[]).await;
    app.post("/chatrooms", json!({"name": "r2", "owner": "alice"})).await.em_error(403, "exceed_limit");
    // the free edition (dev) has no chat rooms at all
    let dev = srv.em(Plan::Dev).await;
    dev.users(&["alice"]).await;
    dev.post("/chatrooms", json!({"name": "r", "owner": "alice"})).await.em_error(403, "exceed_limit");
    srv.stop().await;
}

#[tokio::test]
async fn members_admins_and_joined_rooms() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave", "erin"]).await;
    let id = room(&app, "alice", &[]).await;
    let users = format!("/chatrooms/{id}/users");

    let r = app.post(&format!("{users}/bob"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"result": true, "action": "add_member", "id": id, "user": "bob"}));
    let r = app.post(&users, json!({"usernames": ["carol", "dave"]})).await;
    assert_eq!(r.body["data"], json!({"newmembers": ["carol", "dave"], "action": "add_member", "id": id}), "{:?}", r.body);
    app.post(&format!("{users}/bob"), json!({})).await.em_error(403, "forbidden_op");
    app.post(&format!("{users}/nobody"), json!({})).await.em_error(404, "resource_not_found");
    app.post(&users, json!({"usernames": vec!["x"; 61]})).await.em_error(400, "invalid_parameter");
    let r = app.get(&users).await;
    assert_eq!(roster(&r.body["data"]), ["alice", "bob", "carol", "dave"], "{:?}", r.body);
    assert_eq!(r.body["data"][0], json!({"owner": "alice"}));
    let r = app.get(&format!("{users}?pagesize=2&pagenum=2")).await;
    assert_eq!(roster(&r.body["data"]), ["carol", "dave"]);

    // joined rooms: a user token may ask for itself only
    let r = app.get("/users/bob/joined_chatrooms").await;
    assert_eq!(r.body["data"], json!([{"id": id, "name": "r", "disabled": "false"}]), "{:?}", r.body);
    let bob = app.user_token("bob").await;
    let r = app.call(Method::GET, "/users/bob/joined_chatrooms", Em::Token(bob.clone()), None).await;
    assert_eq!(r.body["count"], 1, "{:?}", r.body);
    app.call(Method::GET, "/users/carol/joined_chatrooms", Em::Token(bob), None).await.em_error(401, "unauthorized");
    assert_eq!(app.get("/users/erin/joined_chatrooms").await.body["count"], 0);

    // remove: one answers an object, several an array; the owner stays; a stranger is 400 here
    let r = app.delete(&format!("{users}/dave")).await;
    assert_eq!(r.body["data"], json!({"result": true, "action": "remove_member", "user": "dave", "id": id}), "{:?}", r.body);
    app.delete(&format!("{users}/erin")).await.em_error(400, "forbidden_op");
    app.delete(&format!("{users}/alice")).await.em_error(403, "forbidden_op");
    let r = app.delete(&format!("{users}/carol,erin")).await;
    assert_eq!(r.body["data"][0]["result"], true, "{:?}", r.body);
    assert_eq!(r.body["data"][1]["result"], false);
    assert!(r.body["data"][1]["reason"].as_str().is_some());
    assert_eq!(roster(&app.get(&users).await.body["data"]), ["alice", "bob"]);
    assert_eq!(may_send(&srv, &app, &id, "carol").await, None, "a removed member may not speak");

    // admins
    let admin = format!("/chatrooms/{id}/admin");
    let r = app.post(&admin, json!({"newadmin": "bob"})).await;
    assert_eq!(r.body["data"], json!({"result": "success", "newadmin": "bob"}), "{:?}", r.body);
    assert_eq!(sorted_strs(&app.get(&admin).await.body["data"]), ["bob"]);
    app.post(&admin, json!({"newadmin": "erin"})).await.em_error(404, "resource_not_found");
    app.post(&admin, json!({"newadmin": "alice"})).await.em_error(403, "forbidden_op");
    app.post(&admin, json!({})).await.em_error(400, "invalid_parameter");
    let r = app.delete(&format!("{admin}/bob")).await;
    assert_eq!(r.body["data"], json!({"result": "success", "oldadmin": "bob"}));
    assert!(sorted_strs(&app.get(&admin).await.body["data"]).is_empty());
    app.delete(&format!("{admin}/bob")).await.em_error(403, "forbidden_op");

    // the room's own member cap
    app.put(&format!("/chatrooms/{id}"), json!({"maxusers": 3})).await;
    app.post(&format!("{users}/carol"), json!({})).await;
    app.post(&format!("{users}/dave"), json!({})).await.em_error(403, "exceed_limit");
    app.get("/chatrooms/424242/users").await.em_error(404, "service_resource_not_found");
    srv.stop().await;
}

#[tokio::test]
async fn mutes_allowlist_blocks_and_mute_all_are_enforced_by_the_engine() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave", "erin"]).await;
    let id = room(&app, "alice", &["bob", "carol", "dave"]).await;
    assert_eq!(may_send(&srv, &app, &id, "bob").await, Some(true));
    assert_eq!(may_send(&srv, &app, &id, "erin").await, None, "not in the room");

    // mutes
    let mute = format!("/chatrooms/{id}/mute");
    let r = app.post(&mute, json!({"usernames": ["bob"], "mute_duration": 60_000})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"][0]["result"], true);
    assert_eq!(r.body["data"][0]["user"], "bob");
    let expire = r.body["data"][0]["expire"].as_i64().unwrap();
    assert!(expire > now_ms() + 50_000, "{expire}");
    let r = app.get(&mute).await;
    assert_eq!(r.body["data"], json!([{"expire": expire, "user": "bob"}]), "{:?}", r.body);
    assert_eq!(may_send(&srv, &app, &id, "bob").await, Some(false));
    let r = app.post(&mute, json!({"usernames": ["erin"], "mute_duration": -1})).await;
    assert_eq!(r.body["data"][0]["result"], false, "only who is in the room: {:?}", r.body);
    app.post(&mute, json!({"usernames": ["carol"], "mute_duration": 0})).await.em_error(400, "invalid_parameter");
    let r = app.delete(&format!("{mute}/bob")).await;
    assert_eq!(r.body["data"], json!([{"result": true, "user": "bob"}]), "{:?}", r.body);
    assert_eq!(may_send(&srv, &app, &id, "bob").await, Some(true));

    // mute-all spares the owner, admins and the allowlist
    let white = format!("/chatrooms/{id}/white/users");
    let r = app.post(&format!("{white}/carol"), json!({})).await;
    assert_eq!(r.body["data"], json!({"result": true, "action": "add_user_whitelist", "user": "carol", "chatroomid": id}), "{:?}", r.body);
    assert_eq!(sorted_strs(&app.get(&white).await.body["data"]), ["carol"]);
    let r = app.post(&format!("/chatrooms/{id}/ban"), json!({})).await;
    assert_eq!(r.body["data"], json!({"mute": true}), "{:?}", r.body);
    assert_eq!(details(&app, &id).await["mute"], true);
    assert_eq!(may_send(&srv, &app, &id, "bob").await, Some(false));
    assert_eq!(may_send(&srv, &app, &id, "carol").await, Some(true));
    assert_eq!(may_send(&srv, &app, &id, "alice").await, Some(true));
    assert!(app.get(&mute).await.body["data"].as_array().unwrap().is_empty(), "mute-all lists nobody");
    let r = app.delete(&format!("/chatrooms/{id}/ban")).await;
    assert_eq!(r.body["data"], json!({"mute": false}));
    assert_eq!(may_send(&srv, &app, &id, "bob").await, Some(true));
    let r = app.delete(&format!("{white}/carol")).await;
    assert_eq!(r.body["data"][0]["action"], "remove_user_whitelist", "{:?}", r.body);

    // blocks: the blocked leave and may not come back until unblocked
    let blocks = format!("/chatrooms/{id}/blocks/users");
    let r = app.post(&format!("{blocks}/dave"), json!({})).await;
    assert_eq!(r.body["data"], json!({"result": true, "action": "add_blocks", "user": "dave", "chatroomid": id}), "{:?}", r.body);
    assert_eq!(sorted_strs(&app.get(&blocks).await.body["data"]), ["dave"]);
    assert_eq!(may_send(&srv, &app, &id, "dave").await, None);
    assert!(!roster(&app.get(&format!("/chatrooms/{id}/users")).await.body["data"]).contains(&"dave".to_string()));
    app.post(&format!("/chatrooms/{id}/users/dave"), json!({})).await.em_error(403, "forbidden_op");
    app.post(&format!("{blocks}/alice"), json!({})).await.em_error(403, "forbidden_op");
    let r = app.post(&blocks, json!({"usernames": ["erin", "nobody"]})).await;
    assert_eq!(r.body["data"][0]["result"], true, "{:?}", r.body);
    assert_eq!(r.body["data"][1]["result"], false);
    let r = app.delete(&format!("{blocks}/dave,erin")).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2, "{:?}", r.body);
    assert!(app.get(&blocks).await.body["data"].as_array().unwrap().is_empty());
    app.post(&format!("/chatrooms/{id}/users/dave"), json!({})).await;
    assert_eq!(may_send(&srv, &app, &id, "dave").await, Some(true));
    srv.stop().await;
}

#[tokio::test]
async fn custom_attributes_are_owned_forced_and_auto_deleted() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let id = room(&app, "alice", &["bob"]).await;
    let set = |u: &str| format!("/metadata/chatroom/{id}/user/{u}");

    let r = app.put(&set("alice"), json!({"metaData": {"topic": "rust", "mood": "ok"}, "autoDelete": "DELETE"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["action"], "put");
    assert_eq!(sorted_strs(&r.body["data"]["successKeys"]), ["mood", "topic"]);
    assert_eq!(r.body["data"]["errorKeys"], json!({}));
    let r = app.put(&set("alice"), json!({"metaData": {"keep": "yes"}, "autoDelete": "NO_DELETE"})).await;
    assert_eq!(r.body["data"]["successKeys"], json!(["keep"]));

    // bob may not overwrite alice's key, a too-long key fails alone
    let long = "k".repeat(129);
    let r = app.put(&set("bob"), json!({"metaData": {"topic": "go", "bobs": "b", long.clone(): "x", "no space": "x"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["successKeys"], json!(["bobs"]));
    assert!(r.body["data"]["errorKeys"]["no space"].is_string(), "the key charset: {:?}", r.body);
    assert_eq!(r.body["data"]["errorKeys"]["topic"], "others are not allowed to be set");
    assert!(r.body["data"]["errorKeys"][&long].as_str().unwrap().contains("128"), "{:?}", r.body);
    let r = app.put(&set("bob"), json!({"metaData": {"big": "v".repeat(4097)}})).await;
    assert!(r.body["data"]["errorKeys"]["big"].as_str().unwrap().contains("4096"), "{:?}", r.body);
    // read: all, or the keys named
    let r = app.post(&format!("/metadata/chatroom/{id}"), json!({})).await;
    assert_eq!(r.body["data"], json!({"bobs": "b", "keep": "yes", "mood": "ok", "topic": "rust"}), "{:?}", r.body);
    let r = app.post(&format!("/metadata/chatroom/{id}"), json!({"keys": ["topic", "none"]})).await;
    assert_eq!(r.body["data"], json!({"topic": "rust"}));
    // force overwrites (the app's server)
    let r = app.put(&format!("{}/forced", set("bob")), json!({"metaData": {"topic": "go"}})).await;
    assert_eq!(r.body["data"]["successKeys"], json!(["topic"]), "{:?}", r.body);

    // the call's own limits and errors
    let eleven: serde_json::Map<String, Value> = (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    app.put(&set("alice"), json!({"metaData": eleven})).await.em_error(400, "invalid_parameter");
    app.put(&set("alice"), json!({"metaData": {"n": 1}})).await.em_error(400, "invalid_parameter");
    app.put(&set("alice"), json!({"metaData": "x"})).await.em_error(400, "invalid_parameter");
    app.put(&set("alice"), json!({"metaData": {"a": "b"}, "autoDelete": "SOMETIMES"})).await.em_error(400, "invalid_parameter");
    app.put(&set("carol"), json!({"metaData": {"a": "b"}})).await.em_error(401, "unauthorized");
    app.put("/metadata/chatroom/424242/user/alice", json!({"metaData": {"a": "b"}})).await.em_error(404, "service_resource_not_found");
    // a user token acts only as itself, and never by force
    let bob = app.user_token("bob").await;
    let r = app.call(Method::PUT, &set("bob"), Em::Token(bob.clone()), Some(json!({"metaData": {"own": "1"}}))).await;
    assert_eq!(r.body["data"]["successKeys"], json!(["own"]), "{:?}", r.body);
    app.call(Method::PUT, &set("alice"), Em::Token(bob.clone()), Some(json!({"metaData": {"x": "1"}}))).await.em_error(401, "unauthorized");
    app.call(Method::PUT, &format!("{}/forced", set("bob")), Em::Token(bob), Some(json!({"metaData": {"x": "1"}})))
        .await
        .em_error(401, "unauthorized");

    // delete: own keys only, unless forced
    let r = app.call(Method::DELETE, &set("alice"), Em::App, Some(json!({"keys": ["mood", "bobs", "nothing"]}))).await;
    assert_eq!(r.body["status"], "ok", "{:?}", r.body);
    assert_eq!(r.body["data"]["successKeys"], json!(["mood"]));
    assert_eq!(r.body["data"]["errorKeys"]["bobs"], "others are not allowed to be deleted");
    assert!(r.body["data"]["errorKeys"]["nothing"].is_string());
    let r = app.call(Method::DELETE, &format!("{}/forced", set("alice")), Em::App, Some(json!({"keys": ["bobs"]}))).await;
    assert_eq!(r.body["data"]["successKeys"], json!(["bobs"]), "{:?}", r.body);
    app.call(Method::DELETE, &set("alice"), Em::App, Some(json!({}))).await.em_error(400, "invalid_parameter");

    // leaving the room takes the leaver's auto-delete keys with it (topic is bob's now)
    app.put(&set("alice"), json!({"metaData": {"mine": "1"}})).await;
    app.delete(&format!("/chatrooms/{id}/users/bob")).await;
    let r = app.post(&format!("/metadata/chatroom/{id}"), json!({})).await;
    assert_eq!(r.body["data"], json!({"keep": "yes", "mine": "1"}), "{:?}", r.body);
    // the room's attribute cap
    srv.engine().apps().set_app_limit(&app.app.name, "em_room_attributes_max", "2").await.expect("limit");
    let r = app.put(&set("alice"), json!({"metaData": {"third": "3"}})).await;
    assert!(r.body["data"]["errorKeys"]["third"].is_string(), "{:?}", r.body);
    srv.stop().await;
}

#[tokio::test]
async fn super_admins_are_added_listed_and_removed() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let r = app.post("/chatrooms/super_admin", json!({"superadmin": "alice"})).await;
    assert_eq!(r.body["data"], json!({"result": "success", "resource": ""}), "{:?}", r.body);
    app.post("/chatrooms/super_admin", json!({"superadmin": "bob"})).await;
    app.post("/chatrooms/super_admin", json!({"superadmin": "carol"})).await;
    app.post("/chatrooms/super_admin", json!({"superadmin": "nobody"})).await.em_error(404, "resource_not_found");
    app.post("/chatrooms/super_admin", json!({})).await.em_error(400, "invalid_parameter");
    let r = app.get("/chatrooms/super_admin").await;
    assert_eq!(r.body["data"], json!(["alice", "bob", "carol"]), "{:?}", r.body);
    let r = app.get("/chatrooms/super_admin?pagesize=2&pagenum=2").await;
    assert_eq!(r.body["data"], json!(["carol"]));
    let r = app.delete("/chatrooms/super_admin/bob").await;
    assert_eq!(r.body["data"], json!({"newSuperAdmin": "bob", "resource": ""}), "{:?}", r.body);
    app.delete("/chatrooms/super_admin/bob").await.em_error(404, "resource_not_found");
    assert_eq!(app.get("/chatrooms/super_admin").await.body["data"], json!(["alice", "carol"]));
    let token = app.user_token("alice").await;
    app.call(Method::GET, "/chatrooms/super_admin", Em::Token(token), None).await.em_error(401, "unauthorized");
    srv.stop().await;
}

/// A chat room keeps who went offline for the grace (30 minutes), on the engine's clock: a user
/// added while offline, and one whose realtime session closed, are in the room (roster, joined
/// rooms, may speak) until the grace ends, then out of it. Time is moved, not slept through.
#[tokio::test]
async fn the_offline_stay_in_a_room_for_the_grace_on_the_engine_s_clock() {
    use crate::common::ws::Client;
    use std::time::Duration;
    let srv = TestServer::start().await;
    let lc = srv.app(Plan::Standard).await;
    let app = srv.em_of(&lc).await;
    app.users(&["alice", "bob", "carol"]).await;
    let id = room(&app, "alice", &[]).await;
    let users = format!("/chatrooms/{id}/users");

    // carol is online when she joins, then her session ends; bob is added while offline
    let carol = Client::login(&srv.base, lc.app_id(), "carol").await;
    app.post(&format!("{users}/carol"), json!({})).await;
    app.post(&format!("{users}/bob"), json!({})).await;
    drop(carol);
    let e = srv.engine().clone();
    let lc_app = lc.app.clone();
    eventually(5, || {
        let (e, a) = (e.clone(), lc_app.clone());
        async move { e.clients().check_online(&a, &["carol".to_string()]).await.unwrap().is_empty().then_some(()) }
    })
    .await;

    let joined = |u: &'static str| {
        let app = &app;
        async move { app.get(&format!("/users/{u}/joined_chatrooms")).await.body["count"].clone() }
    };
    srv.advance(Duration::from_secs(29 * 60));
    assert_eq!(roster(&app.get(&users).await.body["data"]), ["alice", "bob", "carol"], "within the grace");
    assert_eq!(joined("bob").await, 1);
    assert_eq!(joined("carol").await, 1);
    assert_eq!(may_send(&srv, &app, &id, "bob").await, Some(true));
    assert_eq!(may_send(&srv, &app, &id, "carol").await, Some(true));

    srv.advance(Duration::from_secs(60 + 5));
    assert_eq!(roster(&app.get(&users).await.body["data"]), ["alice"], "the grace is over");
    assert_eq!(joined("bob").await, 0);
    assert_eq!(joined("carol").await, 0);
    assert_eq!(may_send(&srv, &app, &id, "bob").await, None);
    assert_eq!(may_send(&srv, &app, &id, "carol").await, None);
    srv.stop().await;
}
