//! msync delivery at speed, and across sessions: sends answered as they are stored while the
//! next frames are read, pulls answered from what the connection holds (`msync/held.rs`),
//! positions written behind, group changes missed while away told at the next login. What a
//! device gets must not change: every message once, in order, none recalled, nothing again
//! after a reconnect.

use confab_engine::model::Plan;
use confab_face_easemob::msync::proto::m_sync::Command;
use confab_face_easemob::msync::proto::*;
use serde_json::json;

use crate::common::*;
use crate::em_msync::{code, group, payload, text_of, Client};

fn jid_of(app: &EmApp, user: &str) -> Jid {
    crate::em_msync::jid(&crate::em_msync::app_key(app), user, false)
}

/// Pull `queue` as the SDK does after a NOTICE: page after page by `nextKey`; the texts.
async fn pull_all(c: &mut Client, queue: Jid) -> Vec<String> {
    let mut texts = Vec::new();
    let mut key = None;
    loop {
        let page = c.pull_past_notices(queue.clone(), key).await;
        texts.extend(page.metas.iter().map(text_of));
        if page.is_last == Some(true) {
            return texts;
        }
        key = Some(page.next_key.expect("nextKey on a page that is not the last"));
    }
}

/// Frames until `n` send answers came: their (metaId, serverId), in arrival order; NOTICEs seen
/// meanwhile are counted.
async fn answers(c: &mut Client, n: usize) -> (Vec<(u64, u64)>, usize) {
    let (mut out, mut notices) = (Vec::new(), 0);
    while out.len() < n {
        let f = c.next().await;
        match Command::try_from(f.command.unwrap_or_default()) {
            Ok(Command::Sync) => {
                let dl: CommSyncDl = payload(&f);
                assert_eq!(code(&dl.status), 0, "{dl:?}");
                out.push((dl.meta_id.expect("metaId"), dl.server_id.expect("serverId")));
            }
            Ok(Command::Notice) => notices += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    (out, notices)
}

#[tokio::test]
async fn msync_sends_in_flight_are_each_answered_in_order_and_a_live_member_pulls_each_once_in_order() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let gid = group(&app, "alice", &["bob", "carol"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "a").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    for c in [&mut alice, &mut bob] {
        c.unread().await;
    }
    // 45 group texts in flight at once: 45 answers, in the order sent, ids rising
    alice.texts_in_flight(1000, &gid, true, "g", 45).await;
    let (got, _) = answers(&mut alice, 45).await;
    assert_eq!(got.iter().map(|a| a.0).collect::<Vec<_>>(), (1000..1045).collect::<Vec<_>>());
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "server ids rise with the order sent");

    // bob, online: NOTICEs, and pulls that page through all 45 once, oldest first
    let q = bob.notice().await;
    let texts = pull_all(&mut bob, q.clone()).await;
    assert_eq!(texts, (0..45).map(|i| format!("g{i}")).collect::<Vec<_>>());
    // the NOTICEs still in flight bring pulls with nothing in them
    let again = bob.pull_past_notices(q.clone(), None).await;
    assert_eq!((again.metas.len(), again.is_last), (0, Some(true)));

    // one-to-one both ways: bob's own sends leave no hole in what he pulls of alice's
    let mut notices = 0;
    for round in 0..3 {
        bob.texts_in_flight(2000 + round, "alice", false, &format!("b{round}-"), 1).await;
        notices += answers(&mut bob, 1).await.1;
        alice.texts_in_flight(3000 + round, "bob", false, &format!("a{round}-"), 1).await;
        answers(&mut alice, 1).await;
    }
    let mut seen = Vec::new();
    let queue = jid_of(&app, "alice");
    while seen.len() < 3 {
        if notices == 0 {
            let f = bob.next().await;
            assert_eq!(f.command, Some(Command::Notice as i32), "{f:?}");
        }
        notices = notices.saturating_sub(1);
        seen.extend(pull_all(&mut bob, queue.clone()).await);
    }
    assert_eq!(seen, vec!["a0-0", "a1-0", "a2-0"], "alice's texts, each once, none of bob's own");

    // bob reconnects: his positions were written when the connection ended, nothing comes again
    bob.close().await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let u = bob.unread().await;
    assert!(u.unread.is_empty(), "{u:?}");
    srv.stop().await;
}

#[tokio::test]
async fn msync_a_last_page_written_into_a_connection_that_drops_is_pulled_again() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "a").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    for c in [&mut alice, &mut bob] {
        c.unread().await;
    }
    let (ack, _) = alice.text(1, "bob", false, "one").await;
    assert_eq!(code(&ack.status), 0);
    let q = bob.notice().await;
    assert_eq!(pull_all(&mut bob, q.clone()).await, vec!["one"]);
    // bob is heard from after that page (a heartbeat): it reached him
    bob.unread().await;
    let (ack, _) = alice.text(2, "bob", false, "two").await;
    assert_eq!(code(&ack.status), 0);
    bob.notice().await;
    assert_eq!(pull_all(&mut bob, q.clone()).await, vec!["two"]);
    // the network drops before bob says anything more: that page may not have reached him
    drop(bob);
    sessions_come_to(&srv, 1).await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let u = bob.unread().await;
    assert_eq!(u.unread.len(), 1, "{u:?}");
    assert_eq!(pull_all(&mut bob, q).await, vec!["two"], "the unconfirmed page again, not the one before it");
    srv.stop().await;
}

#[tokio::test]
async fn msync_a_message_recalled_before_it_is_pulled_is_not_delivered() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "a").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    for c in [&mut alice, &mut bob] {
        c.unread().await;
    }
    let (first, _) = alice.text(1, "bob", false, "kept").await;
    let (second, _) = alice.text(2, "bob", false, "recalled").await;
    let (third, _) = alice.text(3, "bob", false, "kept too").await;
    let ids: Vec<u64> = [&first, &second, &third].iter().map(|a| a.server_id.expect("id")).collect();
    let r = app.post("/messages/recall", json!({"msg_id": ids[1].to_string(), "to": "bob", "chat_type": "chat", "from": "alice"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // bob: three NOTICEs and the recall, then the pull has the two others only
    let mut queue = None;
    let mut recalls = 0;
    for _ in 0..4 {
        let f = bob.next().await;
        match Command::try_from(f.command.unwrap_or_default()) {
            Ok(Command::Notice) => queue = payload::<CommNotice>(&f).queue,
            Ok(Command::Sync) => recalls += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(recalls, 1, "the recall is told");
    let texts = pull_all(&mut bob, queue.expect("a NOTICE")).await;
    assert_eq!(texts, vec!["kept", "kept too"]);
    srv.stop().await;
}

/// Waits until no msync session is open on the server (a dropped client's end was handled).
async fn no_sessions(srv: &TestServer) {
    sessions_come_to(srv, 0).await;
}

/// Waits until `n` msync sessions are open on the server.
async fn sessions_come_to(srv: &TestServer, n: usize) {
    for _ in 0..100 {
        if srv.server.as_ref().expect("server").msync.session_count() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("a msync session did not end");
}

#[tokio::test]
async fn msync_a_device_back_from_away_hears_the_group_changes_it_missed_once() {
    use confab_face_easemob::msync::proto::muc_body::Operation as Op;
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let gid = group(&app, "alice", &["bob"]).await;
    // a device never seen before hears nothing of the past
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    assert!(bob.unread().await.unread.is_empty());
    assert_eq!(code(&bob.unread().await.status), 0, "no MUC events came before the second UNREAD's answer");
    drop(bob);
    no_sessions(&srv).await;

    // while bob is away: carol joins, bob is made an admin, the group is renamed
    assert_eq!(app.post(&format!("/chatgroups/{gid}/users/carol"), json!({})).await.status, 200);
    assert_eq!(app.post(&format!("/chatgroups/{gid}/admin"), json!({"newadmin": "bob"})).await.status, 200);
    assert_eq!(app.put(&format!("/chatgroups/{gid}"), json!({"groupname": "renamed"})).await.status, 200);

    // back: after the first UNREAD's answer, the three events, oldest first, as heard live
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    assert_eq!(code(&bob.unread().await.status), 0);
    let mut ops = Vec::new();
    for _ in 0..3 {
        for m in bob.muc_events().await {
            let (op, muc, to) = crate::em_msync::muc_of(&m);
            assert_eq!(muc, gid);
            ops.push((op, to));
        }
    }
    let want = [(Op::Presence, "carol"), (Op::AddAdmin, "bob"), (Op::Update, "")];
    assert_eq!(ops, want.iter().map(|(op, to)| (*op as i32, to.to_string())).collect::<Vec<_>>());
    // and once: the next login of the device hears none of them again
    drop(bob);
    no_sessions(&srv).await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    assert_eq!(code(&bob.unread().await.status), 0);
    assert_eq!(code(&bob.unread().await.status), 0, "the next frame is the heartbeat's answer, not an old event");
    srv.stop().await;
}
