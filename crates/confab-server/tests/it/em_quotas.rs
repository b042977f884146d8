//! Easemob plan quotas under concurrency, over real HTTP: creates fired at once against a small
//! quota make exactly as many as it allows (the store counts in the write's own transaction); the
//! rest get the answer a sequential over-quota create gets.

use crate::common::*;
use confab_engine::model::Plan;
use futures_util::future::join_all;
use serde_json::json;

/// Fire `n` creates at once; (made, the refusals' answers).
async fn at_once<F, Fut>(n: usize, f: F) -> (usize, Vec<Resp>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    let all = join_all((0..n).map(f)).await;
    let (made, refused): (Vec<Resp>, Vec<Resp>) = all.into_iter().partition(|r| r.status == 200);
    (made.len(), refused)
}

#[tokio::test]
async fn concurrent_creates_stop_at_the_quota() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let set = |k: &'static str, v: &'static str| {
        let (engine, name) = (srv.engine(), app.app.name.clone());
        async move { engine.apps().set_app_limit(&name, k, v).await.expect("limit") }
    };

    // users: two registered, room for three more
    set("em_max_users", "5").await;
    let (made, refused) = at_once(10, |i| app.post("/users", json!({"username": format!("u{i}"), "password": "p"}))).await;
    assert_eq!(made, 3, "exactly the users the quota has room for");
    refused.iter().for_each(|r| r.em_error(429, "resource_limited"));
    assert_eq!(srv.engine().users().count_users(&app.app).await.unwrap(), 5);

    // groups of the app
    set("em_max_groups", "3").await;
    let (made, refused) = at_once(12, |_| app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice"}))).await;
    assert_eq!(made, 3, "exactly three groups");
    for r in &refused {
        r.em_error(403, "exceed_limit");
        let want = format!("appKey:{}#{} has create too many groups!", app.app.keys.easemob.org_name, app.app.keys.easemob.app_name);
        assert_eq!(r.body["error_description"], want);
    }
    let listed = app.get("/chatgroups?limit=100").await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(3), "{:?}", listed.body);

    // groups one user joins: bob joins five groups at once, two at most
    set("em_max_groups", "0").await;
    let mut groups = Vec::new();
    for _ in 0..5 {
        let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice"})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        groups.push(r.body["data"]["groupid"].as_str().expect("groupid").to_string());
    }
    set("em_max_groups_per_user", "2").await;
    let paths: Vec<String> = groups.iter().map(|g| format!("/chatgroups/{g}/users/bob")).collect();
    let (made, refused) = at_once(paths.len(), |i| app.post(&paths[i], json!({}))).await;
    assert_eq!(made, 2, "bob is in two groups");
    refused.iter().for_each(|r| r.em_error(403, "exceed_limit"));
    let joined = app.get("/users/bob/joined_chatgroups").await;
    assert_eq!(joined.body["data"].as_array().map(Vec::len), Some(2), "{:?}", joined.body);

    // chat rooms of the app
    set("em_max_chatrooms", "2").await;
    let (made, refused) = at_once(10, |i| app.post("/chatrooms", json!({"name": format!("r{i}"), "owner": "alice"}))).await;
    assert_eq!(made, 2, "exactly two chat rooms");
    refused.iter().for_each(|r| r.em_error(403, "exceed_limit"));
    assert_eq!(app.get("/chatrooms?limit=100").await.body["data"].as_array().map(Vec::len), Some(2));
    srv.stop().await;
}
