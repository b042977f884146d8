//! The group and chat room calls the Easemob web SDK makes with a user token, judged by the
//! engine's owner/admin/member rules (`GroupCall`, specs/easemob-msync.md §12.4, §12.5): who may
//! modify, hand over, name admins, mute, mute everyone, block, allowlist, post the announcement
//! and share files; what a refusal answers (403 `forbidden_op`, 404 `do not find this group`);
//! and that the members hear each change over msync with the acting user as its operator.

use confab_engine::model::Plan;
use confab_face_easemob::msync::proto::muc_body::Operation as Op;
use confab_face_easemob::msync::proto::MucBody;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::em_msync::{muc_of, Client};

async fn as_user(app: &EmApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.call(method, path, Em::Token(token.to_string()), body).await
}

#[track_caller]
fn ok(r: &Resp) -> &Value {
    assert_eq!(r.status, 200, "{:?}", r.body);
    &r.body["data"]
}

/// The first MUC event of `op` among the next few frames (other changes may be told first), as
/// `(operation, group, to[0], operator)`.
async fn heard(c: &mut Client, op: Op) -> (i32, String, String, String) {
    for _ in 0..12 {
        for b in c.muc_events().await {
            if b.operation == Some(op as i32) {
                return with_operator(&b);
            }
        }
    }
    panic!("no {op:?} heard");
}

fn with_operator(b: &MucBody) -> (i32, String, String, String) {
    let (o, g, to) = muc_of(b);
    (o, g, to, b.from.as_ref().and_then(|j| j.name.clone()).unwrap_or_default())
}

fn multipart(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "XbOuNdArYr";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(app: &EmApp, token: &str, path: &str, name: &str) -> (u16, Value) {
    let (ct, body) = multipart(name, b"shared bytes");
    let r = app.http.post(format!("{}{path}", app.base)).bearer_auth(token).header("Content-Type", ct).body(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn group_management_with_user_tokens_follows_owner_admin_member_rules_and_members_hear_the_operator() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave", "eve"]).await;
    let [ta, tb, tc, td, te] = [
        app.user_token("alice").await,
        app.user_token("bob").await,
        app.user_token("carol").await,
        app.user_token("dave").await,
        app.user_token("eve").await,
    ];
    let r =
        app.post("/chatgroups", json!({"groupname": "g", "public": false, "owner": "alice", "members": ["bob", "carol", "dave"]})).await;
    let g = ok(&r)["groupid"].as_str().unwrap().to_string();
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    carol.unread().await;

    // a plain member neither modifies the group nor names admins
    as_user(&app, &tb, Method::PUT, &format!("/chatgroups/{g}"), Some(json!({"groupname": "mine"}))).await.em_error(403, "forbidden_op");
    as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/admin"), Some(json!({"newadmin": "bob"})))
        .await
        .em_error(403, "forbidden_op");
    // the owner makes bob an admin: carol hears ADD_ADMIN, alice its operator
    let r = as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/admin?resource=a"), Some(json!({"newadmin": "bob"}))).await;
    assert_eq!(ok(&r)["newadmin"], "bob");
    assert_eq!(heard(&mut carol, Op::AddAdmin).await, (Op::AddAdmin as i32, g.clone(), "bob".into(), "alice".into()));
    // admins are named by the owner alone; members read the list, outsiders of a private group not
    as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/admin"), Some(json!({"newadmin": "dave"})))
        .await
        .em_error(403, "forbidden_op");
    assert_eq!(ok(&as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/admin"), None).await), &json!(["bob"]));
    as_user(&app, &te, Method::GET, &format!("/chatgroups/{g}/admin"), None).await.em_error(403, "forbidden_op");

    // an admin modifies the group (modifyGroup's fields); the app server's fields stay its own
    let body = json!({"groupname": "renamed", "description": "d", "custom": "c"});
    let r = as_user(&app, &tb, Method::PUT, &format!("/chatgroups/{g}?resource=b"), Some(body)).await;
    assert_eq!(ok(&r), &json!({"groupname": true, "description": true, "custom": true}));
    assert_eq!(heard(&mut carol, Op::Update).await.3, "bob");
    let r = as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}?joined_time=true"), None).await;
    assert_eq!((ok(&r)[0]["name"].clone(), ok(&r)[0]["description"].clone()), (json!("renamed"), json!("d")));
    as_user(&app, &tb, Method::PUT, &format!("/chatgroups/{g}"), Some(json!({"maxusers": 5}))).await.em_error(403, "forbidden_op");

    // mutes: the owner and admins, never of the owner nor, by an admin, of another admin
    let r =
        as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/mute"), Some(json!({"usernames": ["carol"], "mute_duration": 600000})))
            .await;
    assert_eq!(ok(&r)[0]["result"], true, "{:?}", r.body);
    assert_eq!(heard(&mut carol, Op::AddMute).await, (Op::AddMute as i32, g.clone(), "carol".into(), "bob".into()));
    let r = as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/admin"), Some(json!({"newadmin": "dave"}))).await;
    ok(&r);
    for target in ["alice", "dave"] {
        let body = json!({"usernames": [target], "mute_duration": -1});
        let r = as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/mute"), Some(body)).await;
        assert_eq!(ok(&r)[0]["result"], false, "bob muted {target}: {:?}", r.body);
    }
    let body = json!({"usernames": ["dave"], "mute_duration": 1000});
    as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/mute"), Some(body)).await.em_error(403, "forbidden_op");
    as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/mute"), None).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &tb, Method::GET, &format!("/chatgroups/{g}/mute"), None).await;
    assert_eq!(ok(&r).as_array().unwrap().iter().map(|m| m["user"].clone()).collect::<Vec<_>>(), vec![json!("carol")]);
    // isInGroupMutelist: carol asks about herself, an admin about anyone, carol not about others
    assert_eq!(ok(&as_user(&app, &tc, Method::GET, &format!("/sdk/chatgroups/{g}/mute/carol?version=v3"), None).await), &json!(true));
    assert_eq!(ok(&as_user(&app, &tb, Method::GET, &format!("/sdk/chatgroups/{g}/mute/dave"), None).await), &json!(false));
    as_user(&app, &tc, Method::GET, &format!("/sdk/chatgroups/{g}/mute/dave"), None).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &tb, Method::DELETE, &format!("/chatgroups/{g}/mute/carol"), None).await;
    assert_eq!(ok(&r)[0]["result"], true, "{:?}", r.body);
    assert_eq!(heard(&mut carol, Op::RemoveMute).await.3, "bob");

    // mute everyone: the owner and admins
    as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/ban"), None).await.em_error(403, "forbidden_op");
    assert_eq!(ok(&as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/ban"), None).await), &json!({"mute": true}));
    assert_eq!(heard(&mut carol, Op::BanGroup).await.3, "bob");
    assert_eq!(ok(&app.get(&format!("/chatgroups/{g}")).await)[0]["mute"], true);
    assert_eq!(ok(&as_user(&app, &tb, Method::DELETE, &format!("/chatgroups/{g}/ban"), None).await), &json!({"mute": false}));

    // the allowlist: the owner and admins; isInGroupAllowlist for oneself or by them
    as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/white/users"), Some(json!({"usernames": ["carol"]})))
        .await
        .em_error(403, "forbidden_op");
    let r = as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/white/users"), Some(json!({"usernames": ["carol"]}))).await;
    assert_eq!(ok(&r)[0]["result"], true, "{:?}", r.body);
    assert_eq!(heard(&mut carol, Op::AddUserWhiteList).await, (Op::AddUserWhiteList as i32, g.clone(), "carol".into(), "bob".into()));
    let r = as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/white/users/carol?version=v3"), None).await;
    assert_eq!(ok(&r), &json!({"member": "carol", "white": true}));
    as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/white/users/dave"), None).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &td, Method::GET, &format!("/chatgroups/{g}/white/users/carol"), None).await;
    assert_eq!(ok(&r)["white"], true, "an admin asks about a member");
    as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/white/users"), None).await.em_error(403, "forbidden_op");

    // the announcement: members read it, the owner and admins post it
    let body = json!({"announcement": "hello"});
    as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/announcement"), Some(body.clone())).await.em_error(403, "forbidden_op");
    ok(&as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/announcement"), Some(body)).await);
    assert_eq!(heard(&mut carol, Op::UpdateAnnouncement).await.3, "bob");
    assert_eq!(ok(&as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/announcement"), None).await)["announcement"], "hello");
    as_user(&app, &te, Method::GET, &format!("/chatgroups/{g}/announcement"), None).await.em_error(403, "forbidden_op");

    // shared files: members upload and list; the uploader, the owner or an admin delete
    let files = format!("/chatgroups/{g}/share_files");
    let (status, v) = upload(&app, &tc, &files, "c.txt").await;
    assert_eq!(status, 200, "{v}");
    let cf = v["data"]["file_id"].as_str().unwrap().to_string();
    let (status, v) = upload(&app, &tb, &files, "b.txt").await;
    assert_eq!(status, 200, "{v}");
    let bf = v["data"]["file_id"].as_str().unwrap().to_string();
    assert_eq!(upload(&app, &te, &files, "e.txt").await.0, 403);
    let r = as_user(&app, &tc, Method::GET, &format!("{files}?pagenum=1&pagesize=10"), None).await;
    let owners: Vec<Value> = ok(&r).as_array().unwrap().iter().map(|f| f["file_owner"].clone()).collect();
    assert_eq!(owners, vec![json!("carol"), json!("bob")]);
    as_user(&app, &te, Method::GET, &files, None).await.em_error(403, "forbidden_op");
    as_user(&app, &tc, Method::DELETE, &format!("{files}/{bf}"), None).await.em_error(403, "forbidden_op");
    ok(&as_user(&app, &tc, Method::DELETE, &format!("{files}/{cf}"), None).await);
    ok(&as_user(&app, &ta, Method::DELETE, &format!("{files}/{bf}"), None).await);

    // blocks: the owner and admins; never the owner, nor (by an admin) another admin
    as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/blocks/users"), None).await.em_error(403, "forbidden_op");
    as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/blocks/users/alice"), None).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/blocks/users"), Some(json!({"usernames": ["dave"]}))).await;
    assert_eq!(ok(&r)[0]["result"], false, "{:?}", r.body);

    // members, the SDK's cursor form: roles by key, joined times, a cursor while more remain
    let r = as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/users?limit=2&joined_time=true"), None).await;
    let page = ok(&r).as_array().unwrap().clone();
    assert_eq!((page[0]["owner"].clone(), page[1]["admin"].clone()), (json!("alice"), json!("bob")), "{page:?}");
    assert!(page.iter().all(|m| m["joined_time"].as_i64().is_some_and(|t| t > 0)), "{page:?}");
    let cursor = r.body["cursor"].as_str().expect("a cursor while more remain").to_string();
    let r = as_user(&app, &tc, Method::GET, &format!("/chatgroups/{g}/users?limit=2&cursor={cursor}&joined_time=true"), None).await;
    assert_eq!(
        ok(&r),
        &json!([{"member": "carol", "joined_time": ok(&r)[0]["joined_time"]}, {"admin": "dave", "joined_time": ok(&r)[1]["joined_time"]}])
    );
    assert!(r.body.get("cursor").is_none(), "{:?}", r.body);

    // the owner alone hands the group over, to a member: carol hears ASSIGN_OWNER from alice
    as_user(&app, &tb, Method::PUT, &format!("/chatgroups/{g}"), Some(json!({"newowner": "bob"}))).await.em_error(403, "forbidden_op");
    as_user(&app, &ta, Method::PUT, &format!("/chatgroups/{g}"), Some(json!({"newowner": "eve"}))).await.em_error(403, "forbidden_op");
    assert_eq!(
        ok(&as_user(&app, &ta, Method::PUT, &format!("/chatgroups/{g}"), Some(json!({"newowner": "carol"}))).await)["newowner"],
        true
    );
    assert_eq!(heard(&mut carol, Op::AssignOwner).await, (Op::AssignOwner as i32, g.clone(), "carol".into(), "alice".into()));
    assert_eq!(ok(&app.get(&format!("/chatgroups/{g}")).await)[0]["owner"], "carol");
    // the old owner is a plain member now
    as_user(&app, &ta, Method::DELETE, &format!("/chatgroups/{g}/admin/bob"), None).await.em_error(403, "forbidden_op");
    ok(&as_user(&app, &tc, Method::DELETE, &format!("/chatgroups/{g}/admin/bob"), None).await);

    // a group that is not there
    let r = as_user(&app, &tc, Method::GET, "/chatgroups/424242/admin", None).await;
    r.em_error(404, "service_resource_not_found");
    assert_eq!(r.body["error_description"], "do not find this group:424242");
    srv.stop().await;
}

#[tokio::test]
async fn public_groups_and_joined_counts_for_a_user_token() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "eve"]).await;
    let (tb, te) = (app.user_token("bob").await, app.user_token("eve").await);
    let mut public = Vec::new();
    for i in 0..3 {
        let r =
            app.post("/chatgroups", json!({"groupname": format!("pub{i}"), "public": true, "owner": "alice", "members": ["bob"]})).await;
        public.push(ok(&r)["groupid"].as_str().unwrap().to_string());
    }
    let r = app.post("/chatgroups", json!({"groupname": "hidden", "public": false, "owner": "alice", "members": ["bob"]})).await;
    let hidden = ok(&r)["groupid"].as_str().unwrap().to_string();

    // getPublicGroups: newest first, `id` and `name` (what the SDK maps), paged by a cursor
    let r = as_user(&app, &te, Method::GET, "/publicchatgroups?version=v3&limit=2", None).await;
    let rows = ok(&r).as_array().unwrap().clone();
    let ids: Vec<&str> = rows.iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![public[2].as_str(), public[1].as_str()]);
    assert_eq!(rows[0]["name"], "pub2");
    let cursor = r.body["cursor"].as_str().expect("cursor").to_string();
    let r = as_user(&app, &te, Method::GET, &format!("/publicchatgroups?limit=2&cursor={cursor}"), None).await;
    let ids: Vec<Value> = ok(&r).as_array().unwrap().iter().map(|g| g["id"].clone()).collect();
    assert_eq!(ids, vec![json!(public[0])], "the private group {hidden} is not listed");
    assert!(r.body.get("cursor").is_none(), "{:?}", r.body);

    // getJoinedGroupsCount: the user's own count only
    assert_eq!(ok(&as_user(&app, &tb, Method::GET, "/chatgroups/user/bob/joined_count", None).await), &json!(4));
    assert_eq!(ok(&as_user(&app, &te, Method::GET, "/chatgroups/user/eve/joined_count", None).await), &json!(0));
    as_user(&app, &te, Method::GET, "/chatgroups/user/bob/joined_count", None).await.em_error(401, "unauthorized");
    srv.stop().await;
}

#[tokio::test]
async fn chat_rooms_with_user_tokens_are_public_to_read_and_managed_by_their_owner_and_admins() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "eve"]).await;
    let [ta, tb, tc, te] =
        [app.user_token("alice").await, app.user_token("bob").await, app.user_token("carol").await, app.user_token("eve").await];
    let r = app.post("/chatrooms", json!({"name": "room", "description": "d", "owner": "alice", "members": ["bob", "carol"]})).await;
    let rid = ok(&r)["id"].as_str().unwrap().to_string();

    // anyone of the app reads a room and the room list (getChatRooms pages by pagenum)
    let r = as_user(&app, &te, Method::GET, &format!("/chatrooms/{rid}"), None).await;
    assert_eq!(ok(&r)[0]["owner"], "alice");
    let r = as_user(&app, &te, Method::GET, "/chatrooms?pagenum=1&pagesize=20", None).await;
    assert_eq!(ok(&r)[0]["id"], rid.as_str());
    assert_eq!(ok(&as_user(&app, &te, Method::GET, &format!("/chatrooms/{rid}/users"), None).await)[0]["owner"], "alice");

    // the owner and admins manage it
    as_user(&app, &tb, Method::PUT, &format!("/chatrooms/{rid}"), Some(json!({"name": "x"}))).await.em_error(403, "forbidden_op");
    as_user(&app, &tb, Method::POST, &format!("/chatrooms/{rid}/admin"), Some(json!({"newadmin": "bob"})))
        .await
        .em_error(403, "forbidden_op");
    ok(&as_user(&app, &ta, Method::POST, &format!("/chatrooms/{rid}/admin"), Some(json!({"newadmin": "bob"}))).await);
    assert_eq!(ok(&as_user(&app, &tb, Method::PUT, &format!("/chatrooms/{rid}"), Some(json!({"name": "x"}))).await)["groupname"], true);
    // the SDK's modifyChatRoom names the room `groupname`
    ok(&as_user(&app, &tb, Method::PUT, &format!("/chatrooms/{rid}?resource=b"), Some(json!({"groupname": "y", "description": "e"})))
        .await);
    assert_eq!(ok(&as_user(&app, &te, Method::GET, &format!("/chatrooms/{rid}"), None).await)[0]["name"], "y");
    let body = json!({"usernames": ["carol"], "mute_duration": 60000});
    as_user(&app, &te, Method::POST, &format!("/chatrooms/{rid}/mute"), Some(body.clone())).await.em_error(403, "forbidden_op");
    assert_eq!(ok(&as_user(&app, &tb, Method::POST, &format!("/chatrooms/{rid}/mute"), Some(body)).await)[0]["result"], true);
    let body = json!({"usernames": ["alice"], "mute_duration": 60000});
    assert_eq!(ok(&as_user(&app, &tb, Method::POST, &format!("/chatrooms/{rid}/mute"), Some(body)).await)[0]["result"], false);
    assert_eq!(ok(&as_user(&app, &tc, Method::GET, &format!("/sdk/chatrooms/{rid}/mute/carol"), None).await), &json!(true));
    as_user(&app, &tc, Method::POST, &format!("/chatrooms/{rid}/ban"), None).await.em_error(403, "forbidden_op");
    assert_eq!(ok(&as_user(&app, &tb, Method::POST, &format!("/chatrooms/{rid}/ban"), None).await), &json!({"mute": true}));
    let body = json!({"announcement": "room news"});
    as_user(&app, &tc, Method::POST, &format!("/chatrooms/{rid}/announcement"), Some(body.clone())).await.em_error(403, "forbidden_op");
    ok(&as_user(&app, &tb, Method::POST, &format!("/chatrooms/{rid}/announcement"), Some(body)).await);
    assert_eq!(ok(&as_user(&app, &te, Method::GET, &format!("/chatrooms/{rid}/announcement"), None).await)["announcement"], "room news");

    // an admin removes plain members only: not another admin
    ok(&as_user(&app, &ta, Method::POST, &format!("/chatrooms/{rid}/admin"), Some(json!({"newadmin": "carol"}))).await);
    as_user(&app, &tb, Method::DELETE, &format!("/chatrooms/{rid}/users/carol"), None).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &te, Method::GET, &format!("/chatrooms/{rid}/users"), None).await;
    assert!(ok(&r).as_array().unwrap().iter().any(|m| m["member"] == "carol"), "carol is still in the room: {:?}", r.body);

    // shared files: those in the room
    let files = format!("/chatrooms/{rid}/share_files");
    let (status, v) = upload(&app, &tc, &files, "r.txt").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(upload(&app, &te, &files, "e.txt").await.0, 403);
    let r = as_user(&app, &tc, Method::GET, &files, None).await;
    assert_eq!(ok(&r)[0]["file_owner"], "carol");

    // creating takes a chat room super admin, destroying the owner
    let body = json!({"name": "carols", "description": "d", "owner": "carol"});
    as_user(&app, &tc, Method::POST, "/chatrooms", Some(body.clone())).await.em_error(403, "forbidden_op");
    ok(&app.post("/chatrooms/super_admin", json!({"superadmin": "carol"})).await);
    let r = as_user(&app, &tc, Method::POST, "/chatrooms", Some(body)).await;
    let mine = ok(&r)["id"].as_str().unwrap().to_string();
    let r = as_user(&app, &tc, Method::POST, "/chatrooms", Some(json!({"name": "n", "description": "d", "owner": "bob"}))).await;
    r.em_error(403, "forbidden_op");
    as_user(&app, &tb, Method::DELETE, &format!("/chatrooms/{mine}"), None).await.em_error(403, "forbidden_op");
    ok(&as_user(&app, &tc, Method::DELETE, &format!("/chatrooms/{mine}"), None).await);
    app.get(&format!("/chatrooms/{mine}")).await.em_error(404, "service_resource_not_found");
    srv.stop().await;
}
