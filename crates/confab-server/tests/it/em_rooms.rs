//! Easemob face over real HTTP: groups (§3.6) and their member lists (§3.7) — members, admins,
//! owner transfer, blocklist, allowlist, mutes and mute-all — with limits, errors, and one-engine
//! checks through the LeanCloud face.

use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

async fn group(app: &EmApp, owner: &str, members: &[&str]) -> String {
    let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": owner, "members": members})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["groupid"].as_str().expect("groupid").to_string()
}

async fn details(app: &EmApp, gid: &str) -> Value {
    let r = app.get(&format!("/chatgroups/{gid}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"][0].clone()
}

/// Whether `from` may send to the group: a message sent as that user through the engine's send
/// path, which every face uses (a server-side send would bypass the speaker rules).
async fn may_send(srv: &TestServer, app: &EmApp, gid: &str, from: &str) -> bool {
    let e = srv.engine();
    let conv = e.conversations().conversation(&app.app, gid.parse().unwrap(), None).await.expect("conversation");
    let new = confab_engine::NewMessage {
        from: from.to_string(),
        content: Some(confab_engine::model::Content::Text("hi".into())),
        ..Default::default()
    };
    match e.messages().send_message(&app.app, &conv, new, &confab_engine::Actor::User(from.to_string())).await {
        Ok(_) => true,
        Err(confab_engine::Error::Muted) => false,
        Err(other) => panic!("unexpected send error: {other:?}"),
    }
}

#[tokio::test]
async fn create_get_update_delete_a_group() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;

    let r = app
        .post(
            "/chatgroups",
            json!({"groupname": "team", "description": "desc", "public": false, "maxusers": 50, "owner": "alice",
                   "members": ["bob"], "custom": "c1", "membersonly": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    let gid = r.body["data"]["groupid"].as_str().unwrap().to_string();
    assert!(gid.parse::<i64>().is_ok(), "numeric id {gid}");

    let d = details(&app, &gid).await;
    assert_eq!(d["id"], gid.as_str());
    assert_eq!(d["name"], "team");
    assert_eq!(d["description"], "desc");
    assert_eq!(d["owner"], "alice");
    assert_eq!(d["maxusers"], 50);
    assert_eq!(d["public"], false);
    assert_eq!(d["membersonly"], true);
    assert_eq!(d["custom"], "c1");
    assert_eq!(d["affiliations_count"], 2);
    assert_eq!(d["mute"], false);
    assert_eq!(d["disabled"], false);
    assert!(d["affiliations"].as_array().unwrap().contains(&json!({"owner": "alice"})), "{d}");
    assert!(d["affiliations"].as_array().unwrap().contains(&json!({"member": "bob"})), "{d}");

    // several ids at once; an unknown one is 404
    let g2 = group(&app, "carol", &[]).await;
    let r = app.get(&format!("/chatgroups/{gid},{g2}")).await;
    assert_eq!(r.body["count"], 2, "{:?}", r.body);
    app.get("/chatgroups/123456789").await.em_error(404, "service_resource_not_found");
    app.get("/chatgroups/nope").await.em_error(404, "service_resource_not_found");
    app.get(&format!("/chatgroups/{gid},999999999")).await.em_error(404, "service_resource_not_found");

    // update: each field given answers true; unknown fields are refused
    let r = app.put(&format!("/chatgroups/{gid}"), json!({"groupname": "team2", "description": "d2", "maxusers": 100})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "put", &app);
    assert_eq!(r.body["data"], json!({"groupname": true, "description": true, "maxusers": true}));
    let d = details(&app, &gid).await;
    assert_eq!((d["name"].as_str(), d["description"].as_str(), d["maxusers"].as_i64()), (Some("team2"), Some("d2"), Some(100)));
    app.put(&format!("/chatgroups/{gid}"), json!({"groupid": "x"})).await.em_error(400, "invalid_parameter");
    app.put(&format!("/chatgroups/{gid}"), json!({"groupname": "x".repeat(129)})).await.em_error(400, "invalid_parameter");
    app.put(&format!("/chatgroups/{gid}"), json!({"maxusers": "many"})).await.em_error(400, "invalid_parameter");

    // delete
    let r = app.delete(&format!("/chatgroups/{g2}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"success": true, "groupid": g2}));
    app.get(&format!("/chatgroups/{g2}")).await.em_error(404, "service_resource_not_found");
    app.delete(&format!("/chatgroups/{g2}")).await.em_error(404, "service_resource_not_found");
    srv.stop().await;
}

#[tokio::test]
async fn create_checks_its_input_and_limits() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let create = |b: Value| app.post("/chatgroups", b);
    create(json!({"groupname": "g", "owner": "alice"})).await.em_error(400, "invalid_parameter");
    create(json!({"groupname": "g", "public": true})).await.em_error(400, "invalid_parameter");
    create(json!({"public": true, "owner": "ghost"})).await.em_error(404, "resource_not_found");
    create(json!({"public": true, "owner": "alice", "members": ["ghost"]})).await.em_error(404, "resource_not_found");
    create(json!({"public": "yes", "owner": "alice"})).await.em_error(400, "invalid_parameter");
    create(json!({"public": true, "owner": "alice", "groupname": "x".repeat(129)})).await.em_error(400, "invalid_parameter");
    create(json!({"public": true, "owner": "alice", "description": "x".repeat(513)})).await.em_error(400, "invalid_parameter");
    create(json!({"public": true, "owner": "alice", "members": "bob"})).await.em_error(400, "invalid_parameter");
    // more members than maxusers (the owner counts)
    create(json!({"public": true, "owner": "alice", "maxusers": 2, "members": ["bob", "carol"]})).await.em_error(403, "exceed_limit");
    // above the plan's member cap (standard: 300)
    create(json!({"public": true, "owner": "alice", "maxusers": 301})).await.em_error(403, "exceed_limit");
    // a body that is not an object, and bad JSON
    app.post("/chatgroups", json!([1])).await.em_error(400, "invalid_request_body");

    // auth: no token; a user token creates only groups its user owns (em_sdk_social.rs); a user
    // token on an admin endpoint
    app.call(Method::POST, "/chatgroups", Em::None, Some(json!({"public": true, "owner": "alice"}))).await.em_error(401, "unauthorized");
    let t = app.user_token("alice").await;
    app.call(Method::POST, "/chatgroups", Em::Token(t.clone()), Some(json!({"public": true, "owner": "bob"})))
        .await
        .em_error(403, "forbidden_op");
    app.call(Method::GET, "/chatgroups", Em::Token(t), None).await.em_error(401, "unauthorized");
    srv.stop().await;
}

#[tokio::test]
async fn app_and_user_group_quotas() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    srv.engine().apps().set_app_limit(&app.app.name, "em_max_groups", "3").await.expect("limit");
    srv.engine().apps().set_app_limit(&app.app.name, "em_max_groups_per_user", "2").await.expect("limit");
    group(&app, "alice", &[]).await;
    group(&app, "alice", &[]).await;
    // alice is in two groups: a third with her is refused, as is adding her to one
    app.post("/chatgroups", json!({"public": true, "owner": "alice"})).await.em_error(403, "exceed_limit");
    let g = group(&app, "bob", &[]).await;
    app.post(&format!("/chatgroups/{g}/users/alice"), json!({})).await.em_error(403, "exceed_limit");
    // the app holds three groups: no fourth
    app.post("/chatgroups", json!({"public": true, "owner": "bob"})).await.em_error(403, "exceed_limit");
    srv.stop().await;
}

#[tokio::test]
async fn list_groups_with_a_cursor_and_joined_groups() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut ids = vec![];
    for _ in 0..5 {
        ids.push(group(&app, "alice", &[]).await);
    }
    let b1 = group(&app, "bob", &["alice"]).await;
    ids.push(b1.clone());

    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/chatgroups?limit=4&cursor={c}"),
            None => "/chatgroups?limit=4".to_string(),
        };
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        usergrid(&r.body, "get", &app);
        for g in r.body["data"].as_array().unwrap() {
            assert!(g["lastModified"].is_string(), "{g}");
            assert_eq!(g["type"], "group");
            seen.push(g["groupid"].as_str().unwrap().to_string());
        }
        match r.body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // newest first, each once
    let mut expect = ids.clone();
    expect.reverse();
    assert_eq!(seen, expect);
    let r = app.get("/chatgroups?limit=1").await;
    assert_eq!(r.body["data"][0]["owner"], "bob");
    assert_eq!(r.body["data"][0]["affiliations"], 2);
    app.get("/chatgroups?limit=0").await.em_error(400, "illegal_argument");
    app.get("/chatgroups?cursor=@@@").await.em_error(400, "invalid_parameter");

    // the seed's joined path, and the current one
    let r = app.get("/users/bob/joined_chatgroups").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!([{"groupid": b1, "groupname": "g"}]));
    let r = app.get("/users/alice/joined_chatgroups?pagesize=4&pagenum=2").await;
    assert_eq!(r.body["count"], 2, "{:?}", r.body);
    let r = app.get("/chatgroups/user/alice?pagesize=2&pagenum=0").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["total"], 6);
    assert_eq!(r.body["entities"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["entities"][0]["groupId"], b1.as_str());
    assert_eq!(r.body["entities"][0]["owner"], "bob");
    app.get("/chatgroups/user/alice?pagesize=21").await.em_error(400, "illegal_argument");
    app.get("/users/ghost/joined_chatgroups").await.em_error(404, "service_resource_not_found");
    // a user may read their own list, not another's
    let t = app.user_token("bob").await;
    assert_eq!(app.call(Method::GET, "/users/bob/joined_chatgroups", Em::Token(t.clone()), None).await.status, 200);
    app.call(Method::GET, "/users/alice/joined_chatgroups", Em::Token(t), None).await.em_error(401, "unauthorized");
    srv.stop().await;
}

#[tokio::test]
async fn members_add_remove_single_and_batch() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave", "erin"]).await;
    let r = app.post("/chatgroups", json!({"public": true, "owner": "alice", "maxusers": 4})).await;
    let gid = r.body["data"]["groupid"].as_str().unwrap().to_string();

    let r = app.post(&format!("/chatgroups/{gid}/users/bob"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["data"], json!({"result": true, "groupid": gid, "action": "add_member", "user": "bob"}));
    app.post(&format!("/chatgroups/{gid}/users/bob"), json!({})).await.em_error(403, "forbidden_op");
    app.post(&format!("/chatgroups/{gid}/users/ghost"), json!({})).await.em_error(404, "resource_not_found");
    app.post("/chatgroups/999999/users/bob", json!({})).await.em_error(404, "service_resource_not_found");

    // batch: existing members are skipped; all existing fails
    let r = app.post(&format!("/chatgroups/{gid}/users"), json!({"usernames": ["bob", "carol"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"newmembers": ["carol"], "groupid": gid, "action": "add_member"}));
    app.post(&format!("/chatgroups/{gid}/users"), json!({"usernames": ["bob", "carol"]})).await.em_error(403, "forbidden_op");
    let many: Vec<String> = (0..61).map(|i| format!("u{i}")).collect();
    app.post(&format!("/chatgroups/{gid}/users"), json!({"usernames": many})).await.em_error(400, "invalid_parameter");
    app.post(&format!("/chatgroups/{gid}/users"), json!({"usernames": "bob"})).await.em_error(400, "invalid_parameter");
    // the member cap (4, the owner included)
    app.post(&format!("/chatgroups/{gid}/users/dave"), json!({})).await;
    app.post(&format!("/chatgroups/{gid}/users/erin"), json!({})).await.em_error(403, "exceed_limit");

    // list, paged, with join times
    let r = app.get(&format!("/chatgroups/{gid}/users?pagenum=1&pagesize=2")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!([{"owner": "alice"}, {"member": "bob"}]));
    assert_eq!(r.body["count"], 2);
    let r = app.get(&format!("/chatgroups/{gid}/users?pagenum=2&pagesize=2&joined_time=true")).await;
    let rows = r.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["member"], "carol");
    assert!(rows[0]["joined_time"].as_i64().unwrap() > 0);
    app.get(&format!("/chatgroups/{gid}/users?pagesize=1001")).await.em_error(400, "illegal_argument");

    // remove one; the owner and non-members cannot be removed
    let r = app.delete(&format!("/chatgroups/{gid}/users/bob")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"result": true, "action": "remove_member", "user": "bob", "groupid": gid}));
    app.delete(&format!("/chatgroups/{gid}/users/bob")).await.em_error(403, "forbidden_op");
    app.delete(&format!("/chatgroups/{gid}/users/alice")).await.em_error(403, "forbidden_op");
    // batch: per-user results
    let r = app.delete(&format!("/chatgroups/{gid}/users/carol,erin")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let d = r.body["data"].as_array().unwrap();
    assert_eq!(d[0]["result"], true);
    assert_eq!(d[0]["user"], "carol");
    assert_eq!(d[1]["result"], false);
    assert!(d[1]["reason"].is_string());
    let r = app.get(&format!("/chatgroups/{gid}/users")).await;
    assert_eq!(r.body["data"], json!([{"owner": "alice"}, {"member": "dave"}]));
    srv.stop().await;
}

#[tokio::test]
async fn admins_and_owner_transfer() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    let gid = group(&app, "alice", &["bob", "carol"]).await;
    let r = app.post(&format!("/chatgroups/{gid}/admin"), json!({"newadmin": "bob"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"result": "success", "newadmin": "bob"}));
    app.post(&format!("/chatgroups/{gid}/admin"), json!({"newadmin": "dave"})).await.em_error(404, "resource_not_found");
    app.post(&format!("/chatgroups/{gid}/admin"), json!({})).await.em_error(400, "invalid_parameter");
    let r = app.get(&format!("/chatgroups/{gid}/admin")).await;
    assert_eq!(r.body["data"], json!(["bob"]));
    assert_eq!(r.body["count"], 1);

    // the admin cap
    srv.engine().apps().set_app_limit(&app.app.name, "em_max_admins", "1").await.expect("limit");
    app.post(&format!("/chatgroups/{gid}/admin"), json!({"newadmin": "carol"})).await.em_error(403, "exceed_limit");

    let r = app.delete(&format!("/chatgroups/{gid}/admin/bob")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"result": "success", "oldadmin": "bob"}));
    app.delete(&format!("/chatgroups/{gid}/admin/bob")).await.em_error(403, "forbidden_op");
    assert_eq!(app.get(&format!("/chatgroups/{gid}/admin")).await.body["data"], json!([]));

    // transfer: to a member; not to a non-member or the owner
    let r = app.put(&format!("/chatgroups/{gid}"), json!({"newowner": "carol"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"newowner": true}));
    let d = details(&app, &gid).await;
    assert_eq!(d["owner"], "carol");
    assert!(d["affiliations"].as_array().unwrap().contains(&json!({"member": "alice"})), "{d}");
    app.put(&format!("/chatgroups/{gid}"), json!({"newowner": "dave"})).await.em_error(403, "forbidden_op");
    app.put(&format!("/chatgroups/{gid}"), json!({"newowner": "carol"})).await.em_error(403, "forbidden_op");
    srv.stop().await;
}

#[tokio::test]
async fn blocks_allowlist_mutes_and_mute_all() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    let gid = group(&app, "alice", &["bob", "carol", "dave"]).await;

    // blocks: the blocked member leaves and cannot come back
    let r = app.post(&format!("/chatgroups/{gid}/blocks/users/bob"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"result": true, "action": "add_blocks", "user": "bob", "groupid": gid}));
    app.post(&format!("/chatgroups/{gid}/blocks/users/alice"), json!({})).await.em_error(403, "forbidden_op");
    app.post(&format!("/chatgroups/{gid}/blocks/users/bob"), json!({})).await.em_error(403, "forbidden_op");
    assert_eq!(app.get(&format!("/chatgroups/{gid}/blocks/users")).await.body["data"], json!(["bob"]));
    assert!(!app.get(&format!("/chatgroups/{gid}/users")).await.body["data"].as_array().unwrap().contains(&json!({"member": "bob"})));
    app.post(&format!("/chatgroups/{gid}/users/bob"), json!({})).await.em_error(403, "forbidden_op");
    // batch block with one failure
    let r = app.post(&format!("/chatgroups/{gid}/blocks/users"), json!({"usernames": ["carol", "alice"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"][0]["result"], true);
    assert_eq!(r.body["data"][1]["result"], false);
    assert!(r.body["data"][1]["reason"].is_string());
    let r = app.delete(&format!("/chatgroups/{gid}/blocks/users/bob")).await;
    assert_eq!(r.body["data"], json!({"result": true, "action": "remove_blocks", "user": "bob", "groupid": gid}));
    let r = app.delete(&format!("/chatgroups/{gid}/blocks/users/carol%2Cbob")).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2, "{:?}", r.body);
    assert_eq!(app.get(&format!("/chatgroups/{gid}/blocks/users")).await.body["data"], json!([]));
    // unblocked, bob may join again
    assert_eq!(app.post(&format!("/chatgroups/{gid}/users/bob"), json!({})).await.status, 200);
    assert_eq!(app.post(&format!("/chatgroups/{gid}/users/carol"), json!({})).await.status, 200);

    // mutes with a duration: a muted member cannot send (the engine's send path)
    assert!(may_send(&srv, &app, &gid, "bob").await);
    let r = app.post(&format!("/chatgroups/{gid}/mute"), json!({"usernames": ["bob"], "mute_duration": 86_400_000})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let expire = r.body["data"][0]["expire"].as_i64().unwrap();
    assert!(expire > now_ms() + 86_000_000, "{:?}", r.body);
    assert_eq!(r.body["data"][0]["result"], true);
    let r = app.get(&format!("/chatgroups/{gid}/mute")).await;
    assert_eq!(r.body["data"], json!([{"expire": expire, "user": "bob"}]));
    assert!(!may_send(&srv, &app, &gid, "bob").await);
    app.post(&format!("/chatgroups/{gid}/mute"), json!({"usernames": ["bob"]})).await.em_error(400, "invalid_parameter");
    let r = app.post(&format!("/chatgroups/{gid}/mute"), json!({"usernames": ["alice"], "mute_duration": 1000})).await;
    assert_eq!(r.body["data"][0]["result"], false, "the owner cannot be muted: {:?}", r.body);
    let r = app.delete(&format!("/chatgroups/{gid}/mute/bob")).await;
    assert_eq!(r.body["data"], json!([{"result": true, "user": "bob"}]));
    assert_eq!(app.get(&format!("/chatgroups/{gid}/mute")).await.body["data"], json!([]));
    assert!(may_send(&srv, &app, &gid, "bob").await);
    // a mute ends by itself (the server's time moved on past it)
    app.post(&format!("/chatgroups/{gid}/mute"), json!({"usernames": ["dave"], "mute_duration": 60_000})).await;
    assert!(!may_send(&srv, &app, &gid, "dave").await);
    srv.advance(std::time::Duration::from_millis(60_100));
    assert!(may_send(&srv, &app, &gid, "dave").await);

    // allowlist and mute-all: only the owner, admins and allowlisted members speak
    let r = app.post(&format!("/chatgroups/{gid}/white/users/dave"), json!({})).await;
    assert_eq!(r.body["data"], json!({"result": true, "action": "add_user_whitelist", "user": "dave", "groupid": gid}));
    let r = app.post(&format!("/chatgroups/{gid}/white/users"), json!({"usernames": ["carol", "ghost"]})).await;
    assert_eq!(r.body["data"][0]["result"], true, "{:?}", r.body);
    assert_eq!(r.body["data"][1]["result"], false);
    assert_eq!(sorted_strs(&app.get(&format!("/chatgroups/{gid}/white/users")).await.body["data"]), vec!["carol", "dave"]);
    let r = app.delete(&format!("/chatgroups/{gid}/white/users/carol")).await;
    assert_eq!(r.body["data"], json!([{"result": true, "action": "remove_user_whitelist", "user": "carol", "groupid": gid}]));
    let r = app.post(&format!("/chatgroups/{gid}/ban"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"mute": true}));
    assert_eq!(details(&app, &gid).await["mute"], true);
    assert!(!may_send(&srv, &app, &gid, "bob").await);
    assert!(may_send(&srv, &app, &gid, "dave").await);
    assert!(may_send(&srv, &app, &gid, "alice").await);
    let r = app.delete(&format!("/chatgroups/{gid}/ban")).await;
    assert_eq!(r.body["data"], json!({"mute": false}));
    assert!(may_send(&srv, &app, &gid, "bob").await);
    srv.stop().await;
}

#[tokio::test]
async fn a_group_made_through_easemob_is_a_leancloud_conversation() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let lc = srv.lc_of(&app);
    app.users(&["alice", "bob"]).await;
    let gid = group(&app, "alice", &["bob"]).await;
    let r = lc.get(&format!("/1.2/rtm/conversations{}", qs(&[("where", &json!({"objectId": gid}).to_string())]))).await;
    let results = r.ok()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["name"], "g");
    assert_eq!(sorted_strs(&results[0]["m"]), vec!["alice", "bob"]);
    // a member added through Easemob is a member there too
    app.users(&["carol"]).await;
    app.post(&format!("/chatgroups/{gid}/users/carol"), json!({})).await;
    let r = lc.get(&format!("/1.2/rtm/conversations{}", qs(&[("where", &json!({"objectId": gid}).to_string())]))).await;
    assert_eq!(sorted_strs(&r.ok()["results"][0]["m"]), vec!["alice", "bob", "carol"]);
    srv.stop().await;
}

#[tokio::test]
async fn member_endpoints_have_a_rate_limit() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;
    let gid = group(&app, "alice", &[]).await;
    srv.engine().apps().set_app_limit(&app.app.name, "rates.em.chatgroups.admin.per_second", "2").await.expect("limit");
    let mut codes = Vec::new();
    let mut last = None;
    for _ in 0..20 {
        let r = app.get(&format!("/chatgroups/{gid}/admin")).await;
        codes.push(r.status);
        if r.status == 429 {
            last = Some(r);
            break;
        }
    }
    last.unwrap_or_else(|| panic!("no 429 in {codes:?}")).em_error(429, "reach_limit");
    assert!(codes.iter().filter(|c| **c == 200).count() >= 2, "{codes:?}");
    // other lists have buckets of their own
    assert_eq!(app.get(&format!("/chatgroups/{gid}/mute")).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn announcement_and_disable_enable() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let gid = group(&app, "alice", &["bob"]).await;
    let r = app.get(&format!("/chatgroups/{gid}/announcement")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"announcement": ""}));
    let r = app.post(&format!("/chatgroups/{gid}/announcement"), json!({"announcement": "hello all"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    usergrid(&r.body, "post", &app);
    assert_eq!(r.body["data"], json!({"id": gid, "result": true}));
    assert_eq!(app.get(&format!("/chatgroups/{gid}/announcement")).await.body["data"]["announcement"], "hello all");
    app.post(&format!("/chatgroups/{gid}/announcement"), json!({})).await.em_error(400, "illegal_argument");
    app.post(&format!("/chatgroups/{gid}/announcement"), json!({"announcement": "x".repeat(513)})).await.em_error(403, "FORBIDDEN");
    app.get("/chatgroups/424242/announcement").await.em_error(404, "service_resource_not_found");

    // disabled: nobody sends until it is enabled again
    assert!(may_send(&srv, &app, &gid, "bob").await);
    let r = app.post(&format!("/chatgroups/{gid}/disable"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!({"disabled": true}));
    assert_eq!(details(&app, &gid).await["disabled"], true);
    let conv = srv.engine().conversations().conversation(&app.app, gid.parse().unwrap(), None).await.unwrap();
    let new = confab_engine::NewMessage {
        from: "bob".into(),
        content: Some(confab_engine::model::Content::Text("x".into())),
        ..Default::default()
    };
    assert!(srv.engine().messages().send_message(&app.app, &conv, new, &confab_engine::Actor::User("bob".into())).await.is_err());
    let r = app.post(&format!("/chatgroups/{gid}/enable"), json!({})).await;
    assert_eq!(r.body["data"], json!({"disabled": false}));
    assert!(may_send(&srv, &app, &gid, "bob").await);
    app.post("/chatgroups/424242/disable", json!({})).await.em_error(404, "service_resource_not_found");
    srv.stop().await;
}

/// A `multipart/form-data` body with one `file` part.
fn multipart(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "XbOuNdArYx";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn share_files_keep_real_bytes() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;
    let gid = group(&app, "alice", &[]).await;
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let (ct, body) = multipart("pic.jpg", &bytes);
    let url = format!("{}/chatgroups/{gid}/share_files", app.base);
    let r = app.http.post(&url).bearer_auth(&app.token).header("Content-Type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let d = &v["data"];
    assert_eq!(d["file_name"], "pic.jpg");
    assert_eq!(d["file_size"], 3000);
    assert_eq!(d["group_id"], gid.as_str());
    let fid = d["file_id"].as_str().unwrap().to_string();
    assert!(d["file_url"].as_str().unwrap().ends_with(&format!("/share_files/{fid}")), "{d}");

    let r = app.get(&format!("/chatgroups/{gid}/share_files?pagenum=1&pagesize=10")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"][0]["file_id"], fid.as_str());
    assert_eq!(r.body["data"][0]["file_owner"], "alice");
    assert_eq!(r.body["data"][0]["file_size"], 3000);

    let got = app.http.get(format!("{url}/{fid}")).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);

    // no file part; not multipart
    let r = app
        .http
        .post(&url)
        .bearer_auth(&app.token)
        .header("Content-Type", "multipart/form-data; boundary=zz")
        .body("--zz--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.post(&format!("/chatgroups/{gid}/share_files"), json!({})).await.em_error(400, "illegal_argument");

    let r = app.delete(&format!("/chatgroups/{gid}/share_files/{fid}")).await;
    assert_eq!(r.body["data"], json!({"group_id": gid, "file_id": fid, "result": true}));
    app.delete(&format!("/chatgroups/{gid}/share_files/{fid}")).await.em_error(404, "resource_not_found");
    let gone = app.http.get(format!("{url}/{fid}")).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(app.get(&format!("/chatgroups/{gid}/share_files")).await.body["data"], json!([]));
    srv.stop().await;
}

/// Two admins changing different settings of a group at the same moment both land: a settings
/// change names only what it sets and the store applies it field by field in its write. A change
/// that sets a value the group already has is no change (the group is not touched).
#[tokio::test]
async fn settings_changed_at_once_both_hold_and_a_change_to_the_same_value_is_none() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    for round in 0..10 {
        let gid = group(&app, "alice", &["bob"]).await;
        let described = format!("round {round}");
        let (group_path, ban_path, news_path) =
            (format!("/chatgroups/{gid}"), format!("/chatgroups/{gid}/ban"), format!("/chatgroups/{gid}/announcement"));
        let (a, b, c) = tokio::join!(
            app.put(&group_path, json!({"description": described})),
            app.post(&ban_path, json!({})),
            app.post(&news_path, json!({"announcement": "news"})),
        );
        assert_eq!((a.status, b.status, c.status), (200, 200, 200), "{:?} {:?} {:?}", a.body, b.body, c.body);
        let d = details(&app, &gid).await;
        assert_eq!(d["description"], described.as_str(), "round {round}: {d}");
        assert_eq!(d["mute"], true, "round {round}: mute-all kept: {d}");
        let conv = srv.engine().conversations().conversation(&app.app, gid.parse().unwrap(), None).await.unwrap();
        assert_eq!(conv.settings.announcement.as_deref(), Some("news"), "round {round}");
    }

    let gid = group(&app, "alice", &["bob"]).await;
    let conv = srv.engine().conversations().conversation(&app.app, gid.parse().unwrap(), None).await.unwrap();
    let r = app.put(&format!("/chatgroups/{gid}"), json!({"public": true, "allowinvites": conv.settings.members_invite})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let again = srv.engine().conversations().conversation(&app.app, conv.id, None).await.unwrap();
    assert_eq!(again.updated_at, conv.updated_at, "setting values the group has changes nothing");
}

/// A user turns only their own notifications off; the app's server turns anyone's.
#[tokio::test]
async fn a_user_sets_only_their_own_notifications() {
    use confab_engine::{Actor, Error};
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let gid = group(&app, "alice", &["bob"]).await;
    let e = srv.engine();
    let convs = e.conversations();
    let conv = convs.conversation(&app.app, gid.parse().unwrap(), None).await.unwrap();
    let bob = Actor::User("bob".into());
    convs.set_notifications(&app.app, &conv, vec!["bob".into()], true, &bob).await.expect("bob mutes for himself");
    assert_eq!(convs.notifications_off(&app.app, &conv).await.unwrap(), vec!["bob".to_string()]);
    let refused = convs.set_notifications(&app.app, &conv, vec!["alice".into()], true, &bob).await;
    assert!(matches!(refused, Err(Error::NotAllowed(_))), "{refused:?}");
    convs
        .set_notifications(&app.app, &conv, vec!["alice".into(), "bob".into()], true, &Actor::Admin)
        .await
        .expect("the server mutes anyone");
    let mut off = convs.notifications_off(&app.app, &conv).await.unwrap();
    off.sort();
    assert_eq!(off, vec!["alice".to_string(), "bob".to_string()]);
}
