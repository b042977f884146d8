//! What the official Easemob web SDK does with a user token (issue 14): contacts (requests,
//! answers, removals, the blocklist) and groups (create, invite, join, leave, remove, destroy),
//! over real HTTP, with the ROSTER and MUC metas a raw msync client gets (specs/easemob-msync.md
//! §10, §12.3, §12.4). The rules are the engine's; these tests hold the face to them.

use confab_engine::model::Plan;
use confab_face_easemob::msync::proto::meta::NameSpace;
use confab_face_easemob::msync::proto::roster_body::Operation as Roster;
use confab_face_easemob::msync::proto::*;
use prost::Message as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::em_msync::{code, payload, Client};

/// `(operation, from, to[0], reason)` of each ROSTER meta of the next frame.
async fn roster(c: &mut Client) -> Vec<(i32, String, String, String)> {
    let f = c.next().await;
    let dl: CommSyncDl = payload(&f);
    assert_eq!(code(&dl.status), 0, "{dl:?}");
    dl.metas
        .iter()
        .map(|m| {
            assert_eq!(m.ns, Some(NameSpace::Roster as i32), "{m:?}");
            let b = RosterBody::decode(m.payload.as_deref().unwrap_or_default()).expect("RosterBody");
            assert_eq!(b.to.len(), 1, "the SDK reads to[0]: {b:?}");
            let name = |j: Option<&Jid>| j.and_then(|j| j.name.clone()).unwrap_or_default();
            (b.operation.unwrap_or(-1), name(b.from.as_ref()), name(b.to.first()), b.reason.unwrap_or_default())
        })
        .collect()
}

/// The next `n` ROSTER metas (one per frame), as `(operation, from)`, sorted.
async fn rosters(c: &mut Client, n: usize) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        out.extend(roster(c).await.into_iter().map(|(op, from, _, _)| (op, from)));
    }
    out.sort();
    out
}

async fn as_user(app: &EmApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.call(method, path, Em::Token(token.to_string()), body).await
}

#[tokio::test]
async fn sdk_contact_requests_answers_and_removals_reach_both_sides_as_roster_metas() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let (ta, tb, tc) = (app.user_token("alice").await, app.user_token("bob").await, app.user_token("carol").await);
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    bob.unread().await;

    // alice asks bob (addContact): bob hears ADD with her message
    let r =
        as_user(&app, &ta, Method::POST, "/users/alice/contacts/apply?resource=x", Some(json!({"usernames": ["bob"], "reason": "hi bob"})))
            .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(roster(&mut bob).await, vec![(Roster::Add as i32, "alice".into(), "bob".into(), "hi bob".into())]);
    // a user token asks only for its user; an answer needs a request
    as_user(&app, &ta, Method::POST, "/users/bob/contacts/apply", Some(json!({"usernames": ["carol"]})))
        .await
        .em_error(401, "unauthorized");
    as_user(&app, &tc, Method::POST, "/users/carol/contacts/accept/users/alice", None).await.em_error(403, "forbidden_op");
    as_user(&app, &ta, Method::POST, "/users/alice/contacts/apply", Some(json!({"usernames": ["alice"]})))
        .await
        .em_error(400, "illegal_argument");

    // bob agrees (acceptContactInvite): alice hears REMOTE_ACCEPT and ACCEPT, bob ACCEPT
    let mut alice = Client::login(&srv, &app, "alice", "a").await;
    alice.unread().await;
    let r = as_user(&app, &tb, Method::POST, "/users/bob/contacts/accept/users/alice?resource=b", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(rosters(&mut alice, 2).await, vec![(Roster::Accept as i32, "bob".into()), (Roster::RemoteAccept as i32, "bob".into())]);
    assert_eq!(rosters(&mut bob, 1).await, vec![(Roster::Accept as i32, "alice".into())]);
    let r = as_user(&app, &ta, Method::GET, "/users/alice/contacts/users?needReturnRemark=true", None).await;
    assert_eq!((strs(&r.body["data"]), r.body["entities"].clone()), (vec!["bob".to_string()], json!([{"username": "bob", "remark": ""}])));
    let r = as_user(&app, &tb, Method::GET, "/users/bob/contacts?needReturnRemark=true&limit=20&cursor=", None).await;
    assert_eq!(r.body["data"], json!({"contacts": [{"username": "alice", "remark": ""}], "cursor": ""}));
    // the request is answered: accepting again is refused
    as_user(&app, &tb, Method::POST, "/users/bob/contacts/accept/users/alice", None).await.em_error(403, "forbidden_op");

    // carol asks bob while he is offline: he hears it when he logs in, declines, and she hears that
    drop(bob);
    let r = as_user(&app, &tc, Method::POST, "/users/carol/contacts/apply", Some(json!({"usernames": ["bob"], "reason": "me too"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    carol.unread().await;
    let mut bob = Client::login(&srv, &app, "bob", "b2").await;
    bob.unread().await;
    assert_eq!(roster(&mut bob).await, vec![(Roster::Add as i32, "carol".into(), "bob".into(), "me too".into())]);
    let r = as_user(&app, &tb, Method::POST, "/users/bob/contacts/decline/users/carol", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(rosters(&mut carol, 1).await, vec![(Roster::RemoteDecline as i32, "bob".into())]);
    // declined: nothing is waiting at bob's next login
    let mut bob3 = Client::login(&srv, &app, "bob", "b3").await;
    assert_eq!(code(&bob3.unread().await.status), 0);
    assert_eq!(code(&bob3.unread().await.status), 0, "no ROSTER frame came between the two heartbeats");

    // alice removes bob (deleteContact): bob hears REMOVE
    let r = as_user(&app, &ta, Method::DELETE, "/users/alice/contacts/users/bob?resource=a", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(rosters(&mut bob, 1).await, vec![(Roster::Remove as i32, "alice".into())]);
    let r = as_user(&app, &tb, Method::GET, "/users/bob/contacts/users", None).await;
    assert_eq!(strs(&r.body["data"]), Vec::<String>::new());

    // the SDK's blocklist calls
    let r = as_user(&app, &ta, Method::POST, "/sdk/user/alice/blocks?resource=a", Some(json!({"usernames": ["carol"]}))).await;
    assert_eq!((r.status, strs(&r.body["data"])), (200, vec!["carol".to_string()]), "{:?}", r.body);
    let r = as_user(&app, &ta, Method::GET, "/users/alice/blocks/users", None).await;
    assert_eq!(strs(&r.body["data"]), vec!["carol".to_string()]);
    // carol's request to alice, who blocked her, is dropped without a word
    let r = as_user(&app, &tc, Method::POST, "/users/carol/contacts/apply", Some(json!({"usernames": ["alice"]}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(code(&alice.unread().await.status), 0, "alice heard nothing");
    let r = as_user(&app, &ta, Method::DELETE, "/sdk/user/alice/blocks?resource=a", Some(json!({"usernames": ["carol"]}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = as_user(&app, &ta, Method::GET, "/users/alice/blocks/users", None).await;
    assert_eq!(strs(&r.body["data"]), Vec::<String>::new());
    as_user(&app, &tc, Method::POST, "/sdk/user/alice/blocks", Some(json!({"usernames": ["bob"]}))).await.em_error(401, "unauthorized");
    srv.stop().await;
}

/// A group made by `owner` with their token, as the SDK's `createGroup` sends it.
async fn user_group(app: &EmApp, token: &str, owner: &str, public: bool, members: &[&str]) -> String {
    let body = json!({"owner": owner, "groupname": "team", "avatar": "", "desc": "d", "members": members, "public": public,
        "approval": false, "allowinvites": false, "invite_need_confirm": false, "maxusers": 200, "custom": ""});
    let r = as_user(app, token, Method::POST, "/chatgroups?resource=x", Some(body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["groupid"].as_str().expect("groupid").to_string()
}

#[tokio::test]
async fn sdk_groups_with_user_tokens_follow_the_engines_owner_admin_member_rules_and_members_hear_muc_events() {
    use crate::em_msync::muc_of;
    use confab_face_easemob::msync::proto::muc_body::Operation as Op;
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    let (ta, tb, tc, td) =
        (app.user_token("alice").await, app.user_token("bob").await, app.user_token("carol").await, app.user_token("dave").await);
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    bob.unread().await;
    carol.unread().await;

    // a user creates groups they own, not someone else's
    let g = user_group(&app, &ta, "alice", true, &[]).await;
    let body = json!({"owner": "bob", "groupname": "x", "public": true});
    as_user(&app, &ta, Method::POST, "/chatgroups", Some(body)).await.em_error(403, "forbidden_op");
    let private = user_group(&app, &ta, "alice", false, &[]).await;
    // anyone sees a public group; a private one only its members
    let r = as_user(&app, &td, Method::GET, &format!("/chatgroups/{g}?joined_time=true"), None).await;
    assert_eq!((r.status, r.body["data"][0]["owner"].clone()), (200, json!("alice")), "{:?}", r.body);
    as_user(&app, &td, Method::GET, &format!("/chatgroups/{private}"), None).await.em_error(403, "forbidden_op");
    as_user(&app, &td, Method::GET, &format!("/chatgroups/{private}/users"), None).await.em_error(403, "forbidden_op");

    // the owner invites bob: he is in, and hears DIRECT_JOINED
    let r = as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/invite?resource=x"), Some(json!({"usernames": ["bob"]}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(muc_of(&bob.muc_events().await[0]), (Op::DirectJoined as i32, g.clone(), "bob".into()));
    // a plain member may not invite (the group does not let members invite)
    let r = as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/invite"), Some(json!({"usernames": ["dave"]}))).await;
    r.em_error(403, "forbidden_op");
    let r = as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/users/dave"), Some(json!({}))).await;
    r.em_error(403, "forbidden_op");

    // carol joins the public group (joinGroup): bob hears PRESENCE; a private group refuses her
    let r = as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/apply?resource=c"), Some(json!({"message": "hi"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(muc_of(&bob.muc_events().await[0]), (Op::Presence as i32, g.clone(), "carol".into()));
    as_user(&app, &tc, Method::POST, &format!("/chatgroups/{private}/apply"), Some(json!({}))).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &tb, Method::GET, &format!("/chatgroups/{g}/users?limit=50&joined_time=true"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rows: Vec<Value> =
        r.body["data"].as_array().expect("data").iter().map(|m| json!({"owner": m["owner"], "member": m["member"]})).collect();
    assert_eq!(
        rows,
        vec![json!({"owner": "alice", "member": null}), json!({"owner": null, "member": "bob"}), json!({"owner": null, "member": "carol"})]
    );

    // removing takes the owner or an admin: bob may not, alice may (carol hears KICK, bob ABSENCE)
    as_user(&app, &tb, Method::DELETE, &format!("/chatgroups/{g}/users/carol"), None).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &ta, Method::DELETE, &format!("/chatgroups/{g}/users/carol?resource=x"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(muc_of(&carol.muc_events().await[0]), (Op::Kick as i32, g.clone(), "carol".into()));
    assert_eq!(muc_of(&bob.muc_events().await[0]), (Op::Absence as i32, g.clone(), "carol".into()));

    // the owner cannot quit; only the owner destroys; the members hear DESTROY
    as_user(&app, &ta, Method::DELETE, &format!("/chatgroups/{g}/quit"), None).await.em_error(403, "forbidden_op");
    as_user(&app, &tb, Method::DELETE, &format!("/chatgroups/{g}"), None).await.em_error(403, "forbidden_op");
    let r = as_user(&app, &ta, Method::DELETE, &format!("/chatgroups/{g}?resource=x"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = bob.muc_events().await;
    assert_eq!(muc_of(&e[0]), (Op::Destroy as i32, g.clone(), "bob".into()));
    assert_eq!(e[0].from.as_ref().and_then(|j| j.name.clone()).as_deref(), Some("alice"));
    as_user(&app, &tb, Method::GET, &format!("/chatgroups/{g}"), None).await.em_error(404, "service_resource_not_found");

    // a member quits (leaveGroup): then sees the private group no more
    let g3 = user_group(&app, &ta, "alice", false, &["bob"]).await;
    assert_eq!(muc_of(&bob.muc_events().await[0]), (Op::DirectJoined as i32, g3.clone(), "bob".into()));
    let r = as_user(&app, &tb, Method::DELETE, &format!("/chatgroups/{g3}/quit?resource=b"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    as_user(&app, &tb, Method::GET, &format!("/chatgroups/{g3}"), None).await.em_error(403, "forbidden_op");
    as_user(&app, &tb, Method::DELETE, &format!("/chatgroups/{g3}/quit"), None).await.em_error(403, "forbidden_op");
    // a full group refuses in the words the SDK maps (GROUP_MEMBERS_FULL)
    let body = json!({"owner": "alice", "groupname": "two", "public": true, "maxusers": 2, "members": ["bob"]});
    let r = as_user(&app, &ta, Method::POST, "/chatgroups", Some(body)).await;
    let two = r.body["data"]["groupid"].as_str().expect("groupid").to_string();
    bob.muc_events().await;
    let r = as_user(&app, &tc, Method::POST, &format!("/chatgroups/{two}/apply"), Some(json!({}))).await;
    r.em_error(403, "forbidden_op");
    assert_eq!(r.body["error_description"], "group member list is full!");
    let r = as_user(&app, &ta, Method::POST, &format!("/chatgroups/{two}/invite"), Some(json!({"usernames": ["dave"]}))).await;
    assert_eq!((r.status, r.body["error_description"].clone()), (403, json!("group member list is full!")));
    // carol, out of every group, heard nothing more: her next frame is her heartbeat's answer
    assert_eq!(code(&carol.unread().await.status), 0);
    srv.stop().await;
}
