//! Every Easemob endpoint of the seed, as docs/easemob.md lists them, answers bodies of the wrong
//! shape, unknown ids and missing tokens with an Easemob error — a 4xx with `error` and
//! `error_description` — and never with a 5xx.

use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

/// `(method, path template)` of every row of the endpoint table in docs/easemob.md.
fn endpoints() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/easemob.md")).expect("docs/easemob.md");
    let mut out = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| ") && l.contains("| `/")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | # | endpoint | method | `path` | rate | status |
        if cells.len() < 6 || cells[1].parse::<u32>().is_err() {
            continue;
        }
        out.push((cells[3].to_string(), cells[4].trim_matches('`').to_string()));
    }
    out
}

/// A concrete path for a template: placeholders become ids that exist (or a plausible value).
pub(crate) fn fill(template: &str, ids: &[(&str, &str)]) -> String {
    let path = template.split('?').next().unwrap_or(template).replace("${", "{");
    let mut out = String::new();
    let mut rest = path.as_str();
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').map(|j| i + j).expect("closing brace");
        let name = &rest[i + 1..j];
        let value = ids.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap_or("alice");
        out.push_str(value);
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    out
}

#[track_caller]
fn easemob_error_or_success(method: &str, path: &str, what: &str, r: &Resp) {
    assert!(r.status < 500, "{method} {path} with {what}: {} {:?}", r.status, r.body);
    if r.status >= 400 {
        assert!(r.body["error"].is_string(), "{method} {path} with {what}: an Easemob error, got {} {:?}", r.status, r.body);
        assert!(r.body.get("error_description").is_some(), "{method} {path} with {what}: {:?}", r.body);
    }
}

/// Users alice and bob, a group and a chat room of alice's with bob in them: their ids.
pub(crate) async fn alice_and_bob(app: &EmApp) -> (String, String) {
    app.users(&["alice", "bob"]).await;
    let g = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": "alice", "members": ["bob"]})).await;
    let gid = g.body["data"]["groupid"].as_str().unwrap().to_string();
    let r = app.post("/chatrooms", json!({"name": "r", "owner": "alice", "members": ["bob"]})).await;
    let rid = r.body["data"]["id"].as_str().unwrap().to_string();
    (gid, rid)
}

#[tokio::test]
async fn every_endpoint_answers_bad_input_with_an_easemob_error() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, rid) = alice_and_bob(&app).await;
    let m = app.post("/messages/chatgroups", json!({"from": "alice", "to": [gid], "type": "txt", "body": {"msg": "x"}})).await;
    let msg = m.body["data"][&gid].as_str().unwrap().to_string();
    let t = app.post("/thread", json!({"group_id": gid, "msg_id": msg, "owner": "alice", "name": "t"})).await;
    let tid = t.body["data"]["thread_id"].as_str().unwrap().to_string();
    let ids: Vec<(&str, &str)> = vec![
        ("group_id", &gid),
        ("group_ids", &gid),
        ("chatroom_id", &rid),
        ("thread_id", &tid),
        ("usernames", "alice,bob"),
        ("time", "2026010100"),
        ("file_uuid", "nope"),
        ("file_id", "nope"),
        ("labelname", "lbl"),
        ("name", "tpl"),
        ("chattype", "user"),
        ("type", "user"),
        ("key", "bob"),
        ("resource", "web"),
        ("status", "1"),
        ("expiry", "60"),
    ];

    let endpoints = endpoints();
    assert_eq!(endpoints.len(), 152, "the table lists every seed endpoint");
    let bodies = [
        ("an array", json!([1, 2])),
        ("a string", json!("text")),
        ("null", Value::Null),
        (
            "wrong types",
            json!({"usernames": 5, "username": [], "msgId": {}, "message": 1, "name": 7, "to": "x", "body": 3, "metaData": [], "keys": "k", "superadmin": 1, "newadmin": {}, "announcement": 5, "group_id": {}, "mute_duration": "soon"}),
        ),
    ];
    for (method, template) in &endpoints {
        let path = fill(template, &ids);
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        for (what, body) in &bodies {
            let r = app.call(m.clone(), &path, Em::App, Some(body.clone())).await;
            easemob_error_or_success(method, &path, what, &r);
        }
        // unknown ids
        let unknown =
            fill(template, &[("group_id", "424242"), ("chatroom_id", "424242"), ("thread_id", "424242"), ("username", "nobody-here")]);
        let r = app.call(m.clone(), &unknown, Em::App, Some(json!({}))).await;
        easemob_error_or_success(method, &unknown, "unknown ids", &r);
        // no token: refused, except the token endpoint and open registration
        let r = app.call(m.clone(), &path, Em::None, Some(json!({}))).await;
        easemob_error_or_success(method, &path, "no token", &r);
        // a chat file's download is its URL, open to whoever has it (docs/easemob.md)
        if !path.starts_with("/chatfiles/") {
            assert_eq!(r.status, 401, "{method} {path} without a token: {:?}", r.body);
        }
    }
    // malformed JSON on a body-taking endpoint of each family
    for path in ["/users", "/messages/users", "/chatgroups", "/chatrooms", "/thread", "/push/single", "/metadata/user/get"] {
        let r = app.call_raw(Method::POST, path, b"{not json".to_vec()).await;
        easemob_error_or_success("POST", path, "malformed JSON", &r);
        assert_eq!(r.status, 400, "POST {path} malformed JSON: {:?}", r.body);
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_user_token_reaches_nothing_of_another_user_and_no_admin_endpoint() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    let (gid, rid) = alice_and_bob(&app).await;
    let bob = app.user_token("bob").await;
    let ids: Vec<(&str, &str)> = vec![("group_id", &gid), ("group_ids", &gid), ("chatroom_id", &rid), ("usernames", "alice")];
    let mut reached = Vec::new();
    for (method, template) in endpoints() {
        // every path names alice where it names a user; bob's token must not reach it
        let path = fill(&template, &ids);
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let r = app.call(m, &path, Em::Token(bob.clone()), Some(json!({}))).await;
        // what a user token may do beyond its own user: send as itself (refused here for the empty
        // body), upload and download files, read users' metadata, read a room's attributes it is in
        let allowed = path.starts_with("/chatfiles")
            || (method == "POST" && path.starts_with("/messages/") && !path.contains("recall") && !path.ends_with("import"))
            || (method == "POST" && path == "/metadata/user/get")
            || (method == "POST" && path == format!("/metadata/chatroom/{rid}"));
        if allowed {
            continue;
        }
        // the group and chat room routes the SDK calls with a user's token, the engine's
        // owner/admin/member rules deciding: bob, a member of alice's public group and in her
        // room, may read them, and is refused the rest (a shared file that is not there is 404)
        let group_rules = (path.starts_with("/chatgroups") || path.starts_with("/chatrooms"))
            && ((method == "GET" && r.status == 200)
                || r.status == 403
                || (r.status == 400 && method == "POST")
                || (path.contains("/share_files/")
                    && r.status == 404
                    && r.body["error_description"].as_str().is_some_and(|d| d.contains("does not exist"))));
        if group_rules {
            continue;
        }
        // the thread routes the SDK calls with a user's token, the engine's thread rules deciding
        // (em_client_rest2.rs): here an unknown thread (404) or a body naming no group (400)
        let thread_rules = (path == "/thread" && method == "POST" && r.status == 400)
            || (path.starts_with("/thread/alice") && matches!(method.as_str(), "GET" | "PUT" | "DELETE") && r.status == 404);
        if thread_rules {
            continue;
        }
        if r.status != 401 {
            reached.push(format!("{method} {path} -> {}", r.status));
        }
    }
    assert!(reached.is_empty(), "bob's token reached: {reached:#?}");
    // a room's attributes only for who is in it
    app.delete(&format!("/chatrooms/{rid}/users/bob")).await;
    app.call(Method::POST, &format!("/metadata/chatroom/{rid}"), Em::Token(bob), Some(json!({}))).await.em_error(401, "unauthorized");
    srv.stop().await;
}
