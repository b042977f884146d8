//! Group join requests and invitations that wait for an answer, and the group and chat room
//! events with no other source (specs/easemob-msync.md §10.2, §12.4): REST with user tokens and
//! a raw msync client, as the official SDK uses them. The rules are the engine's
//! (`conv/group_requests.rs`); these tests hold the face and the gateway to them.

use confab_engine::model::Plan;
use confab_face_easemob::msync::proto::muc_body::Operation as Op;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::em_msync::{code, muc_of, Client};

async fn as_user(app: &EmApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.call(method, path, Em::Token(token.to_string()), body).await
}

/// A group made by the app's server, owned by `owner`.
async fn group(app: &EmApp, owner: &str, members: &[&str], public: bool, approval: bool, confirm: bool) -> String {
    let body = json!({"groupname": "team", "public": public, "approval": approval, "invite_need_confirm": confirm,
        "owner": owner, "members": members, "maxusers": 5});
    let r = app.post("/chatgroups", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["groupid"].as_str().expect("groupid").to_string()
}

/// Every member of a group, as the app's server lists them.
async fn members(app: &EmApp, g: &str) -> Vec<String> {
    let r = app.get(&format!("/chatgroups/{g}/users?pagesize=100")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut out: Vec<String> = r.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .flat_map(|m| m.as_object().expect("member").values().filter_map(Value::as_str).map(str::to_string))
        .collect();
    out.sort();
    out
}

/// The one MUC event of the next frame: `(operation, mucId, from, to[0], reason)`.
async fn event(c: &mut Client) -> (i32, String, String, String, String) {
    let e = c.muc_events().await;
    assert_eq!(e.len(), 1, "{e:?}");
    let (op, g, to) = muc_of(&e[0]);
    let from = e[0].from.as_ref().and_then(|j| j.name.clone()).unwrap_or_default();
    (op, g, from, to, e[0].reason.clone().unwrap_or_default())
}

/// Nothing more came: the next frame is the answer to a heartbeat.
async fn quiet(c: &mut Client) {
    assert_eq!(code(&c.unread().await.status), 0);
}

#[tokio::test]
async fn join_requests_wait_for_the_owner_or_an_admin_and_the_applicant_hears_the_answer() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave", "erin", "fred"]).await;
    let (ta, tb, tc, td, te) = (
        app.user_token("alice").await,
        app.user_token("bob").await,
        app.user_token("carol").await,
        app.user_token("dave").await,
        app.user_token("erin").await,
    );
    let g = group(&app, "alice", &["bob", "erin"], true, true, false).await;
    assert_eq!(app.post(&format!("/chatgroups/{g}/admin"), json!({"newadmin": "bob"})).await.status, 200);
    let mut alice = Client::login(&srv, &app, "alice", "a").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let mut erin = Client::login(&srv, &app, "erin", "e").await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    for c in [&mut alice, &mut bob, &mut erin, &mut carol] {
        c.unread().await;
    }

    // carol asks to join (joinGroup): not a member yet; the owner and the admin hear APPLY with
    // her message, a plain member nothing
    let r = as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/apply?resource=c"), Some(json!({"message": "let me in"}))).await;
    assert_eq!((r.status, r.body["data"]["result"].clone()), (200, json!(false)), "{:?}", r.body);
    assert_eq!(members(&app, &g).await, ["alice", "bob", "erin"]);
    for (c, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        assert_eq!(event(c).await, (Op::Apply as i32, g.clone(), "carol".into(), name.into(), "let me in".into()));
    }
    quiet(&mut erin).await;

    // who may answer: not a plain member; nobody answers what was not asked
    let verify = |who: &str, ok: bool| json!({"applicant": who, "verifyResult": ok, "reason": ""});
    as_user(&app, &te, Method::POST, &format!("/chatgroups/{g}/apply_verify"), Some(verify("carol", true)))
        .await
        .em_error(403, "forbidden_op");
    as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/apply_verify"), Some(verify("dave", true)))
        .await
        .em_error(403, "forbidden_op");

    // the owner accepts (acceptGroupJoinRequest): carol hears APPLY_ACCEPT, the members PRESENCE,
    // and she is a member who can speak
    let r = as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/apply_verify?resource=a"), Some(verify("carol", true))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(event(&mut carol).await, (Op::ApplyAccept as i32, g.clone(), "alice".into(), "carol".into(), "".into()));
    for c in [&mut bob, &mut erin] {
        let (op, _, from, to, _) = event(c).await;
        assert_eq!((op, from, to), (Op::Presence as i32, "carol".into(), "carol".into()));
    }
    assert_eq!(members(&app, &g).await, ["alice", "bob", "carol", "erin"]);
    let (dl, _) = carol.text(1, &g, true, "hello all").await;
    assert_eq!(code(&dl.status), 0, "{dl:?}");
    for c in [&mut bob, &mut erin] {
        c.notice().await;
    }
    as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/apply_verify"), Some(verify("carol", true)))
        .await
        .em_error(403, "forbidden_op");

    // dave asks while alice is offline: she hears it at her next login; the admin declines with a
    // reason, and dave hears APPLY_DECLINE naming himself
    drop(alice);
    let mut dave = Client::login(&srv, &app, "dave", "d").await;
    dave.unread().await;
    let r = as_user(&app, &td, Method::POST, &format!("/chatgroups/{g}/apply"), Some(json!({"message": "me too"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (op, _, from, _, reason) = event(&mut bob).await;
    assert_eq!((op, from, reason), (Op::Apply as i32, "dave".to_string(), "me too".to_string()));
    let mut alice = Client::login(&srv, &app, "alice", "a2").await;
    alice.unread().await;
    assert_eq!(event(&mut alice).await, (Op::Apply as i32, g.clone(), "dave".into(), "alice".into(), "me too".into()));
    let r = as_user(
        &app,
        &tb,
        Method::POST,
        &format!("/chatgroups/{g}/apply_verify"),
        Some(json!({"applicant": "dave", "verifyResult": false, "reason": "not now"})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(event(&mut dave).await, (Op::ApplyDecline as i32, g.clone(), "bob".into(), "dave".into(), "not now".into()));
    assert_eq!(members(&app, &g).await, ["alice", "bob", "carol", "erin"]);
    // answered: nothing waits at alice's next login
    let mut alice3 = Client::login(&srv, &app, "alice", "a3").await;
    alice3.unread().await;
    quiet(&mut alice3).await;

    // refusals: a member asking, a private group, a full group
    as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/apply"), Some(json!({}))).await.em_error(400, "illegal_argument");
    let private = group(&app, "alice", &[], false, true, false).await;
    as_user(&app, &td, Method::POST, &format!("/chatgroups/{private}/apply"), Some(json!({}))).await.em_error(403, "forbidden_op");
    let tf = app.user_token("fred").await;
    assert_eq!(app.post(&format!("/chatgroups/{g}/users/fred"), json!({})).await.status, 200);
    let r = as_user(&app, &td, Method::POST, &format!("/chatgroups/{g}/apply"), Some(json!({}))).await;
    assert_eq!((r.status, r.body["error_description"].clone()), (403, json!("group member list is full!")), "{:?}", r.body);
    // a request to a group that goes away is forgotten with it
    let r = as_user(&app, &tf, Method::DELETE, &format!("/chatgroups/{g}/quit"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = as_user(&app, &td, Method::POST, &format!("/chatgroups/{g}/apply"), Some(json!({}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(app.delete(&format!("/chatgroups/{g}")).await.status, 200);
    drop(alice3);
    let mut alice4 = Client::login(&srv, &app, "alice", "a4").await;
    alice4.unread().await;
    quiet(&mut alice4).await;
    srv.stop().await;
}

#[tokio::test]
async fn invitations_that_need_confirming_wait_for_the_invitee_and_the_inviter_hears_the_answer() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave", "erin"]).await;
    let (ta, tb, tc, td) =
        (app.user_token("alice").await, app.user_token("bob").await, app.user_token("carol").await, app.user_token("dave").await);
    let g = group(&app, "alice", &["bob"], false, false, true).await;
    let mut alice = Client::login(&srv, &app, "alice", "a").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.unread().await;
    }

    // alice invites carol (inviteUsersToGroup): carol hears INVITE with the group's name and is
    // not a member until she answers
    let r = as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/invite?resource=a"), Some(json!({"usernames": ["carol"]}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = carol.muc_events().await;
    assert_eq!(muc_of(&e[0]), (Op::Invite as i32, g.clone(), "carol".into()));
    assert_eq!((e[0].from.as_ref().and_then(|j| j.name.as_deref()), e[0].muc_name.as_deref()), (Some("alice"), Some("team")));
    assert_eq!(members(&app, &g).await, ["alice", "bob"]);
    // a plain member of a group that does not let members invite may not
    as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/invite"), Some(json!({"usernames": ["dave"]})))
        .await
        .em_error(403, "forbidden_op");
    // dave, offline, is invited: he hears it at his next login
    let r = as_user(&app, &ta, Method::POST, &format!("/chatgroups/{g}/invite"), Some(json!({"usernames": ["dave"]}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut dave = Client::login(&srv, &app, "dave", "d").await;
    dave.unread().await;
    assert_eq!(event(&mut dave).await, (Op::Invite as i32, g.clone(), "alice".into(), "dave".into(), "".into()));

    // carol accepts (acceptGroupInvite): the members hear PRESENCE, alice INVITE_ACCEPT
    let verify = |who: &str, ok: bool| json!({"invitee": who, "verifyResult": ok});
    // only the invitee answers
    as_user(&app, &tb, Method::POST, &format!("/chatgroups/{g}/invite_verify"), Some(verify("carol", true)))
        .await
        .em_error(403, "forbidden_op");
    let r = as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/invite_verify?resource=c"), Some(verify("carol", true))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (op, _, from, _, _) = event(&mut bob).await;
    assert_eq!((op, from), (Op::Presence as i32, "carol".to_string()));
    let (op, _, from, _, _) = event(&mut alice).await;
    assert_eq!((op, from), (Op::Presence as i32, "carol".to_string()));
    let (op, _, from, _, _) = event(&mut alice).await;
    assert_eq!((op, from), (Op::InviteAccept as i32, "carol".to_string()));
    assert_eq!(members(&app, &g).await, ["alice", "bob", "carol"]);
    let (dl, _) = carol.text(1, &g, true, "thanks").await;
    assert_eq!(code(&dl.status), 0, "{dl:?}");
    for c in [&mut alice, &mut bob] {
        c.notice().await;
    }
    as_user(&app, &tc, Method::POST, &format!("/chatgroups/{g}/invite_verify"), Some(verify("carol", true)))
        .await
        .em_error(403, "forbidden_op");

    // dave declines (rejectGroupInvite): alice hears INVITE_DECLINE, dave is not a member
    let r = as_user(&app, &td, Method::POST, &format!("/chatgroups/{g}/invite_verify"), Some(verify("dave", false))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (op, _, from, _, _) = event(&mut alice).await;
    assert_eq!((op, from), (Op::InviteDecline as i32, "dave".to_string()));
    assert_eq!(members(&app, &g).await, ["alice", "bob", "carol"]);
    quiet(&mut bob).await;
    // answered: nothing waits at dave's next login
    let mut dave2 = Client::login(&srv, &app, "dave", "d2").await;
    dave2.unread().await;
    quiet(&mut dave2).await;

    // the app's server invites at once, whatever the group says (DIRECT_JOINED)
    let mut erin = Client::login(&srv, &app, "erin", "e").await;
    erin.unread().await;
    let r = app.post(&format!("/chatgroups/{g}/invite"), json!({"usernames": ["erin"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(muc_of(&erin.muc_events().await[0]), (Op::DirectJoined as i32, g.clone(), "erin".into()));
    assert_eq!(members(&app, &g).await, ["alice", "bob", "carol", "erin"]);
    srv.stop().await;
}

#[tokio::test]
async fn announcements_mute_all_allowlists_settings_and_chat_room_comings_and_goings_are_heard() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let g = group(&app, "alice", &["bob", "carol"], true, false, false).await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    for c in [&mut bob, &mut carol] {
        c.unread().await;
    }
    // the announcement, with its text (updateAnnouncement)
    let r = app.post(&format!("/chatgroups/{g}/announcement"), json!({"announcement": "read the rules"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for c in [&mut bob, &mut carol] {
        assert_eq!(event(c).await, (Op::UpdateAnnouncement as i32, g.clone(), "admin".into(), "".into(), "read the rules".into()));
    }
    // mute-all on and off (muteAllMembers / unmuteAllMembers)
    assert_eq!(app.post(&format!("/chatgroups/{g}/ban"), json!({})).await.status, 200);
    assert_eq!(app.delete(&format!("/chatgroups/{g}/ban")).await.status, 200);
    for c in [&mut bob, &mut carol] {
        assert_eq!(event(c).await.0, Op::BanGroup as i32);
        assert_eq!(event(c).await.0, Op::RemoveBanGroup as i32);
    }
    // the allowlist, naming the member (addUserToAllowlist / removeAllowlistMember)
    assert_eq!(app.post(&format!("/chatgroups/{g}/white/users"), json!({"usernames": ["carol"]})).await.status, 200);
    for c in [&mut bob, &mut carol] {
        let (op, _, _, to, _) = event(c).await;
        assert_eq!((op, to), (Op::AddUserWhiteList as i32, "carol".to_string()));
    }
    assert_eq!(app.delete(&format!("/chatgroups/{g}/white/users/carol")).await.status, 200);
    let (op, _, _, to, _) = event(&mut bob).await;
    assert_eq!((op, to), (Op::RemoveUserWhiteList as i32, "carol".to_string()));
    carol.muc_events().await;
    // settings (updateInfo): the changed ones in Easemob's names
    let r = app.put(&format!("/chatgroups/{g}"), json!({"description": "new words", "maxusers": 50})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = bob.muc_events().await;
    assert_eq!(e[0].operation, Some(Op::Update as i32));
    let ext: Value = serde_json::from_str(e[0].event_info.as_ref().and_then(|i| i.ext.as_deref()).expect("eventInfo.ext")).expect("JSON");
    assert_eq!((ext["description"].clone(), ext["max_users"].clone()), (json!("new words"), json!(50)), "{ext}");
    carol.muc_events().await;

    // a chat room: who comes in and goes is heard by those in it (memberPresence / memberAbsence),
    // its announcement too, and that it is destroyed
    let r = app.post("/chatrooms", json!({"name": "lobby", "description": "d", "owner": "alice", "maxusers": 10})).await;
    let room = r.body["data"]["id"].as_str().expect("id").to_string();
    assert_eq!(code(&bob.room(1, &room, Op::Join, false).await.status), 0);
    assert_eq!(code(&carol.room(2, &room, Op::Join, false).await.status), 0);
    let e = bob.muc_events().await;
    assert_eq!((muc_of(&e[0]), e[0].is_chatroom), ((Op::Presence as i32, room.clone(), "carol".into()), Some(true)));
    assert_eq!(code(&carol.room(3, &room, Op::Leave, false).await.status), 0);
    assert_eq!(muc_of(&bob.muc_events().await[0]), (Op::Absence as i32, room.clone(), "carol".into()));
    let r = app.post(&format!("/chatrooms/{room}/announcement"), json!({"announcement": "welcome"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = bob.muc_events().await;
    assert_eq!(
        (e[0].operation, e[0].reason.as_deref(), e[0].is_chatroom),
        (Some(Op::UpdateAnnouncement as i32), Some("welcome"), Some(true))
    );
    assert_eq!(app.delete(&format!("/chatrooms/{room}")).await.status, 200);
    let e = bob.muc_events().await;
    assert_eq!((muc_of(&e[0]).0, e[0].is_chatroom), (Op::Destroy as i32, Some(true)));
    // carol left the room before: she heard none of it
    quiet(&mut carol).await;
    srv.stop().await;
}
