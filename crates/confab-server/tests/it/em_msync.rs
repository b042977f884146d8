//! The Easemob msync gateway (`/websocket`) with a raw client: protobuf frames over a real
//! WebSocket, as the official web SDK sends them (specs/easemob-msync.md).

use std::time::Duration;

use confab_engine::model::Plan;
use confab_face_easemob::msync::proto::m_sync::Command;
use confab_face_easemob::msync::proto::message_body::content::Type as CType;
use confab_face_easemob::msync::proto::message_body::{Content, Type as BType};
use confab_face_easemob::msync::proto::meta::NameSpace;
use confab_face_easemob::msync::proto::status::ErrorCode;
use confab_face_easemob::msync::proto::*;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::common::*;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) struct Client {
    ws: Socket,
    app_key: String,
    user: String,
}

pub(crate) fn app_key(app: &EmApp) -> String {
    format!("{}#{}", app.app.keys.easemob.org_name, app.app.keys.easemob.app_name)
}

pub(crate) fn jid(app_key: &str, name: &str, group: bool) -> Jid {
    let domain = if group { "conference.easemob.com" } else { "easemob.com" };
    Jid { app_key: Some(app_key.into()), name: Some(name.into()), domain: Some(domain.into()), client_resource: None }
}

async fn open(srv: &TestServer) -> Socket {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/websocket", srv.addr())).await.expect("connect");
    ws
}

async fn send_frame(ws: &mut Socket, m: MSync) {
    ws.send(Ws::Binary(m.encode_to_vec().into())).await.expect("send");
}

fn cmd(c: Command, payload: Option<Vec<u8>>) -> MSync {
    MSync { command: Some(c as i32), payload, encrypt_type: vec![0], ..Default::default() }
}

/// The next binary frame; None when the socket closed.
async fn next(ws: &mut Socket) -> Option<MSync> {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame within 5 s");
        match got {
            Some(Ok(Ws::Binary(b))) => return Some(MSync::decode(b.as_ref()).expect("an MSync frame")),
            Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => return None,
            _ => {}
        }
    }
}

pub(crate) fn payload<T: prost::Message + Default>(m: &MSync) -> T {
    T::decode(m.payload.as_deref().unwrap_or_default()).expect("payload")
}

pub(crate) fn code(s: &Option<Status>) -> i32 {
    s.as_ref().expect("status").error_code.unwrap_or(0)
}

/// A PROVISION frame as the SDK sends it.
fn provision(app_key: &str, user: &str, resource: &str, token: &str) -> MSync {
    let p = Provision {
        os_type: Some(16),
        version: Some("4.21.1".into()),
        device_name: Some("webim".into()),
        resource: Some(resource.into()),
        compress_type: vec![0],
        encrypt_type: vec![0],
        protocol_compress_type: vec![2],
        session_id: Some("1:".into()),
        ..Default::default()
    };
    MSync {
        guid: Some(Jid { client_resource: Some(resource.into()), ..jid(app_key, user, false) }),
        auth: Some(format!("$t${token}")),
        ..cmd(Command::Provision, Some(p.encode_to_vec()))
    }
}

impl Client {
    pub(crate) async fn login(srv: &TestServer, app: &EmApp, user: &str, resource: &str) -> Client {
        let token = app.user_token(user).await;
        let mut ws = open(srv).await;
        send_frame(&mut ws, provision(&app_key(app), user, resource, &token)).await;
        let a = next(&mut ws).await.expect("the login answer");
        assert_eq!(a.command, Some(Command::Provision as i32));
        let p: Provision = payload(&a);
        assert_eq!(code(&p.status), ErrorCode::Ok as i32, "{p:?}");
        assert_eq!(p.resource.as_deref(), Some(resource), "the resource is echoed");
        assert!(p.protocol_compress_type.is_empty(), "no compression offered back");
        Client { ws, app_key: app_key(app), user: user.into() }
    }

    pub(crate) async fn next(&mut self) -> MSync {
        next(&mut self.ws).await.expect("a frame")
    }

    pub(crate) async fn unread(&mut self) -> CommUnreadDl {
        send_frame(&mut self.ws, cmd(Command::Unread, None)).await;
        let a = self.next().await;
        assert_eq!(a.command, Some(Command::Unread as i32));
        payload(&a)
    }

    /// Send a text; the answer.
    pub(crate) async fn text(&mut self, local_id: u64, to: &str, group: bool, text: &str) -> (CommSyncDl, Vec<u8>) {
        let (meta, bytes) = self.text_meta(local_id, to, group, text);
        let dl = self.sync(CommSyncUl { meta: Some(meta), ..Default::default() }).await;
        (dl, bytes)
    }

    /// A text as the SDK sends it: its meta, and its body's bytes.
    fn text_meta(&self, local_id: u64, to: &str, group: bool, text: &str) -> (Meta, Vec<u8>) {
        let body = MessageBody {
            r#type: Some(if group { BType::Groupchat } else { BType::Chat } as i32),
            from: Some(Jid { name: Some(self.user.clone()), ..Default::default() }),
            to: Some(Jid { name: Some(to.into()), ..Default::default() }),
            contents: vec![Content { r#type: Some(CType::Text as i32), text: Some(text.into()), ..Default::default() }],
            ..Default::default()
        };
        let bytes = body.encode_to_vec();
        let meta = Meta {
            id: Some(local_id),
            to: Some(jid(&self.app_key, to, group)),
            ns: Some(NameSpace::Chat as i32),
            payload: Some(bytes.clone()),
            ..Default::default()
        };
        (meta, bytes)
    }

    /// Send texts without waiting for their answers (the SDK keeps several in flight); ids
    /// `first_id..`, texts `prefix0..`.
    pub(crate) async fn texts_in_flight(&mut self, first_id: u64, to: &str, group: bool, prefix: &str, n: u64) {
        for i in 0..n {
            let (meta, _) = self.text_meta(first_id + i, to, group, &format!("{prefix}{i}"));
            let ul = CommSyncUl { meta: Some(meta), ..Default::default() };
            send_frame(&mut self.ws, cmd(Command::Sync, Some(ul.encode_to_vec()))).await;
        }
    }

    async fn sync(&mut self, ul: CommSyncUl) -> CommSyncDl {
        send_frame(&mut self.ws, cmd(Command::Sync, Some(ul.encode_to_vec()))).await;
        let a = self.next().await;
        assert_eq!(a.command, Some(Command::Sync as i32), "{a:?}");
        payload(&a)
    }

    pub(crate) async fn pull(&mut self, queue: Jid, key: Option<u64>) -> CommSyncDl {
        let dl = self.sync(CommSyncUl { queue: Some(queue.clone()), key, ..Default::default() }).await;
        assert_eq!(code(&dl.status), 0, "{dl:?}");
        assert_eq!(dl.queue.as_ref().and_then(|q| q.name.clone()), queue.name, "the queue is echoed");
        dl
    }

    /// A pull whose answer may come after NOTICEs already on their way (they are skipped).
    pub(crate) async fn pull_past_notices(&mut self, queue: Jid, key: Option<u64>) -> CommSyncDl {
        let ul = CommSyncUl { queue: Some(queue.clone()), key, ..Default::default() };
        send_frame(&mut self.ws, cmd(Command::Sync, Some(ul.encode_to_vec()))).await;
        loop {
            let a = self.next().await;
            if a.command == Some(Command::Notice as i32) {
                continue;
            }
            assert_eq!(a.command, Some(Command::Sync as i32), "{a:?}");
            let dl: CommSyncDl = payload(&a);
            assert_eq!(code(&dl.status), 0, "{dl:?}");
            assert_eq!(dl.queue.as_ref().and_then(|q| q.name.clone()), queue.name, "the queue is echoed");
            return dl;
        }
    }

    /// Close the connection as the SDK does (a close frame), and wait for the server's: by then
    /// the session is over and what the device got is written.
    pub(crate) async fn close(mut self) {
        self.ws.close(None).await.expect("close");
        while let Some(Ok(m)) = self.ws.next().await {
            if matches!(m, Ws::Close(_)) {
                break;
            }
        }
    }

    /// The NOTICE that comes next: its queue.
    pub(crate) async fn notice(&mut self) -> Jid {
        let n = self.next().await;
        assert_eq!(n.command, Some(Command::Notice as i32), "{n:?}");
        payload::<CommNotice>(&n).queue.expect("queue")
    }
}

pub(crate) fn text_of(meta: &Meta) -> String {
    let b = MessageBody::decode(meta.payload.as_deref().unwrap_or_default()).expect("a MessageBody");
    b.contents[0].text.clone().unwrap_or_default()
}

pub(crate) async fn group(app: &EmApp, owner: &str, members: &[&str]) -> String {
    let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": owner, "members": members})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["groupid"].as_str().expect("groupid").to_string()
}

#[tokio::test]
async fn msync_login_answers_ok_with_the_resource_and_refuses_a_bad_token_in_the_sdks_words() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let _alice = Client::login(&srv, &app, "alice", "webim_web_1").await;
    assert_eq!(srv.server.as_ref().expect("server").msync.session_count(), 1);

    // a bad token, and bob's token for alice: refused, then closed
    let bob_token = app.user_token("bob").await;
    for token in ["nope", bob_token.as_str()] {
        let mut ws = open(&srv).await;
        send_frame(&mut ws, provision(&app_key(&app), "alice", "webim_web_2", token)).await;
        let p: Provision = payload(&next(&mut ws).await.expect("an answer"));
        assert_eq!(code(&p.status), ErrorCode::Fail as i32);
        assert_eq!(p.status.and_then(|s| s.reason).as_deref(), Some("Sorry, token or password does not match login info"));
        assert!(next(&mut ws).await.is_none(), "closed after a refusal");
    }
    // an unknown user with a token of another: refused too
    let mut ws = open(&srv).await;
    send_frame(&mut ws, provision("nope#nope", "alice", "r", &bob_token)).await;
    let p: Provision = payload(&next(&mut ws).await.expect("an answer"));
    assert_eq!(code(&p.status), ErrorCode::Fail as i32);
    srv.stop().await;
}

#[tokio::test]
async fn msync_heartbeat_answers_unread_and_the_clients_statistics_need_no_answer() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "webim_web_1").await;
    let u = alice.unread().await;
    assert_eq!(code(&u.status), 0);
    assert!(u.unread.is_empty());
    assert!(u.timestamp.unwrap_or(0) > 1_600_000_000_000, "a time in ms");
    // the STATISTIC meta the SDK sends after UNREAD: no answer, the next frame is the next UNREAD's
    let stat = Meta {
        id: Some(1),
        ns: Some(NameSpace::Statistic as i32),
        payload: Some(StatisticsBody::default().encode_to_vec()),
        ..Default::default()
    };
    send_frame(&mut alice.ws, cmd(Command::Sync, Some(CommSyncUl { meta: Some(stat), ..Default::default() }.encode_to_vec()))).await;
    assert_eq!(code(&alice.unread().await.status), 0);
    srv.stop().await;
}

#[tokio::test]
async fn msync_one_to_one_send_is_acked_with_its_server_id_and_the_recipient_pulls_it_after_a_notice() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "webim_web_a").await;
    let mut alice2 = Client::login(&srv, &app, "alice", "webim_web_a2").await;
    let mut bob = Client::login(&srv, &app, "bob", "webim_web_b").await;
    for c in [&mut alice, &mut alice2, &mut bob] {
        assert!(c.unread().await.unread.is_empty());
    }
    let (ack, sent) = alice.text(531458918908, "bob", false, "hi").await;
    assert_eq!(code(&ack.status), 0, "{ack:?}");
    assert_eq!(ack.meta_id, Some(531458918908));
    let server_id = ack.server_id.expect("serverId");
    assert!(ack.timestamp.unwrap_or(0) > 0);

    // bob: NOTICE{alice}, then the pull
    let q = bob.notice().await;
    assert_eq!((q.name.as_deref(), q.domain.as_deref()), (Some("alice"), Some("easemob.com")));
    let page = bob.pull(q.clone(), None).await;
    assert_eq!(page.is_last, Some(true));
    assert_eq!(page.metas.len(), 1);
    let m = &page.metas[0];
    assert_eq!(m.id, Some(server_id), "the id the sender was told");
    assert_eq!(m.payload.as_deref(), Some(sent.as_slice()), "the body as sent, byte for byte");
    let from = m.from.clone().expect("from");
    assert_eq!((from.name.as_deref(), from.client_resource.as_deref()), (Some("alice"), Some("webim_web_a")));
    assert_eq!(m.to.as_ref().and_then(|t| t.name.as_deref()), Some("bob"));
    assert_eq!(m.ns, Some(NameSpace::Chat as i32));
    // the SDK's second pull: an empty last page
    let again = bob.pull(q, None).await;
    assert_eq!((again.metas.len(), again.is_last), (0, Some(true)));

    // alice's other device gets it too (multi-device), in the queue of bob
    let q = alice2.notice().await;
    assert_eq!(q.name.as_deref(), Some("bob"));
    let page = alice2.pull(q, None).await;
    assert_eq!(page.metas.iter().map(|m| m.id).collect::<Vec<_>>(), vec![Some(server_id)]);
    // and the device that sent it has nothing to pull
    assert!(alice.unread().await.unread.is_empty());

    // the engine holds it as the REST face's text
    let stored = srv.engine().messages().message(&app.app, server_id as i64).await.expect("stored");
    assert_eq!(stored.content, confab_engine::model::Content::Text("hi".into()));
    srv.stop().await;
}

#[tokio::test]
async fn msync_group_send_reaches_the_members_devices() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let gid = group(&app, "alice", &["bob"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "a").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.unread().await;
    }
    let (ack, _) = alice.text(7, &gid, true, "hello group").await;
    assert_eq!(code(&ack.status), 0, "{ack:?}");
    let q = bob.notice().await;
    assert_eq!((q.name.as_deref(), q.domain.as_deref()), (Some(gid.as_str()), Some("conference.easemob.com")));
    let page = bob.pull(q, None).await;
    assert_eq!(page.metas.len(), 1);
    assert_eq!(text_of(&page.metas[0]), "hello group");
    assert_eq!(page.metas[0].to.as_ref().and_then(|t| t.name.clone()), Some(gid.clone()));
    // not a member: refused in the SDK's words (GROUP_NOT_JOINED)
    let (ack, _) = carol.text(8, &gid, true, "let me in").await;
    assert_eq!((code(&ack.status), ack.status.and_then(|s| s.reason)), (1, Some("not in group or chatroom".into())));
    let (ack, _) = carol.text(9, "424242", true, "x").await;
    assert_eq!(ack.status.and_then(|s| s.reason).as_deref(), Some("group not found"));
    srv.stop().await;
}

#[tokio::test]
async fn msync_a_leancloud_rest_message_reaches_the_easemob_device_as_a_text_body() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    bob.unread().await;
    let conv = srv.engine().conversations().direct_conversation(&app.app, "alice", "bob").await.expect("conv");
    let lc = srv.lc_of(&app);
    let (mid, _) = lc.send(&conv.id.to_string(), "alice", "from leancloud").await;
    let q = bob.notice().await;
    assert_eq!(q.name.as_deref(), Some("alice"));
    let page = bob.pull(q, None).await;
    assert_eq!(page.metas.len(), 1);
    assert_eq!(page.metas[0].id.map(|i| i.to_string()), Some(mid));
    let b = MessageBody::decode(page.metas[0].payload.as_deref().unwrap_or_default()).expect("body");
    assert_eq!(b.r#type, Some(BType::Chat as i32));
    assert_eq!(b.from.and_then(|f| f.name).as_deref(), Some("alice"));
    assert_eq!(b.to.and_then(|f| f.name).as_deref(), Some("bob"));
    assert_eq!((b.contents[0].r#type, b.contents[0].text.as_deref()), (Some(0), Some("from leancloud")));
    assert_eq!(b.contents[0].sub_type, None, "a text, not a combined message");
    srv.stop().await;
}

#[tokio::test]
async fn msync_offline_messages_are_listed_by_unread_paged_and_pulled_exactly_once() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    for i in 0..25 {
        let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": format!("m{i}")}})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let mut bob = Client::login(&srv, &app, "bob", "webim_web_b").await;
    let u = bob.unread().await;
    assert_eq!(u.unread.len(), 1, "{u:?}");
    let q = u.unread[0].queue.clone().expect("queue");
    assert_eq!((q.name.as_deref(), u.unread[0].n), (Some("alice"), Some(25)));
    let first = bob.pull(q.clone(), None).await;
    assert_eq!((first.metas.len(), first.is_last), (20, Some(false)));
    let key = first.next_key.expect("nextKey");
    assert!(key > 0);
    let second = bob.pull(q.clone(), Some(key)).await;
    assert_eq!((second.metas.len(), second.is_last), (5, Some(true)));
    let texts: Vec<String> = first.metas.iter().chain(&second.metas).map(text_of).collect();
    assert_eq!(texts, (0..25).map(|i| format!("m{i}")).collect::<Vec<_>>(), "oldest first, each once");

    // the same device reconnecting: nothing again; nor a new device (no device got less)
    bob.close().await;
    let mut again = Client::login(&srv, &app, "bob", "webim_web_b").await;
    assert!(again.unread().await.unread.is_empty());
    let mut other = Client::login(&srv, &app, "bob", "webim_web_new").await;
    assert!(other.unread().await.unread.is_empty());
    // a message while both are away from it: the known device finds it at its next heartbeat
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "late"}})).await;
    assert_eq!(r.status, 200);
    let _ = again.notice().await;
    let u = again.unread().await;
    assert_eq!(u.unread.len(), 1);
    let page = again.pull(q, None).await;
    assert_eq!(page.metas.iter().map(text_of).collect::<Vec<_>>(), vec!["late"]);
    srv.stop().await;
}

#[tokio::test]
async fn msync_garbage_and_unknown_commands_are_answered_and_the_connection_goes_on() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;
    let mut ws = open(&srv).await;
    // before login
    send_frame(&mut ws, cmd(Command::Unread, None)).await;
    let u: CommUnreadDl = payload(&next(&mut ws).await.expect("answer"));
    assert_eq!(code(&u.status), ErrorCode::Unauthorized as i32);
    let mut alice = Client::login(&srv, &app, "alice", "r").await;
    // not protobuf; an unknown command; a SYNC whose payload is not a CommSyncUL; a text frame
    alice.ws.send(Ws::Binary(vec![0xff, 0xff, 0xff].into())).await.expect("send");
    assert_eq!(code(&payload::<CommSyncDl>(&alice.next().await).status), ErrorCode::PbParserError as i32);
    send_frame(&mut alice.ws, MSync { command: Some(7), ..Default::default() }).await;
    assert_eq!(code(&payload::<CommSyncDl>(&alice.next().await).status), ErrorCode::UnknownCommand as i32);
    send_frame(&mut alice.ws, cmd(Command::Sync, Some(vec![0x0a, 0xff]))).await;
    assert_eq!(code(&payload::<CommSyncDl>(&alice.next().await).status), ErrorCode::PbParserError as i32);
    alice.ws.send(Ws::Text("hello".into())).await.expect("send");
    assert_eq!(code(&payload::<CommSyncDl>(&alice.next().await).status), ErrorCode::PbParserError as i32);
    // a body that is not a MessageBody, an empty SYNC
    let bad = Meta { id: Some(3), ns: Some(NameSpace::Chat as i32), payload: Some(vec![0xff]), ..Default::default() };
    let dl = alice.sync(CommSyncUl { meta: Some(bad), ..Default::default() }).await;
    assert_eq!((code(&dl.status), dl.meta_id), (1, Some(3)));
    let dl = alice.sync(CommSyncUl::default()).await;
    assert_eq!(code(&dl.status), ErrorCode::MissingParameter as i32);
    // still logged in
    assert_eq!(code(&alice.unread().await.status), 0);
    // LOGOUT: the session ends
    send_frame(
        &mut alice.ws,
        cmd(
            Command::Logout,
            Some(Logout { session_id: Some("1:".into()), reason: Some("inner:logout".into()), status: None }.encode_to_vec()),
        ),
    )
    .await;
    assert!(next(&mut alice.ws).await.is_none(), "closed after the logout");
    eventually(5, || async { (srv.server.as_ref().expect("server").msync.session_count() == 0).then_some(()) }).await;
    srv.stop().await;
}

impl Client {
    /// Send a body of `kind` (an ack, a recall) naming a message; the answer.
    async fn ack(&mut self, local_id: u64, kind: BType, to: &str, group: bool, mid: Option<u64>) -> CommSyncDl {
        let body = MessageBody {
            r#type: Some(kind as i32),
            from: Some(Jid { name: Some(self.user.clone()), ..Default::default() }),
            to: Some(Jid { name: Some(to.into()), ..Default::default() }),
            ack_message_id: mid,
            ..Default::default()
        };
        let meta = Meta {
            id: Some(local_id),
            to: Some(jid(&self.app_key, to, group)),
            ns: Some(NameSpace::Chat as i32),
            payload: Some(body.encode_to_vec()),
            ..Default::default()
        };
        self.sync(CommSyncUl { meta: Some(meta), ..Default::default() }).await
    }

    /// The next frame, an unsolicited page: its metas' bodies.
    async fn unsolicited(&mut self) -> (CommSyncDl, Vec<MessageBody>) {
        let f = self.next().await;
        assert_eq!(f.command, Some(Command::Sync as i32), "{f:?}");
        let dl: CommSyncDl = payload(&f);
        assert_eq!((code(&dl.status), dl.is_last), (0, Some(true)), "{dl:?}");
        let bodies = dl.metas.iter().map(|m| MessageBody::decode(m.payload.as_deref().unwrap_or_default()).expect("body")).collect();
        (dl, bodies)
    }
}

#[tokio::test]
async fn msync_delivery_read_and_conversation_acks_move_the_cursors_and_reach_the_senders_devices() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "a1").await;
    let mut alice2 = Client::login(&srv, &app, "alice", "a2").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    for c in [&mut alice, &mut alice2, &mut bob] {
        c.unread().await;
    }
    let (ack, _) = alice.text(1, "bob", false, "hi").await;
    let sid = ack.server_id.expect("serverId");
    let _ = alice2.notice().await; // multi-device copy
    let q = bob.notice().await;
    bob.pull(q, None).await;

    // bob's delivery ack: answered, and both of alice's devices get DELIVER_ACK naming the message
    let dl = bob.ack(10, BType::DeliverAck, "alice", false, Some(sid)).await;
    assert_eq!((code(&dl.status), dl.meta_id), (0, Some(10)), "{dl:?}");
    assert!(dl.server_id.is_some());
    for a in [&mut alice, &mut alice2] {
        let (dl, bodies) = a.unsolicited().await;
        assert_eq!(dl.queue.and_then(|q| q.name).as_deref(), Some("bob"), "in bob's queue");
        assert_eq!(dl.metas[0].ns, Some(NameSpace::Chat as i32));
        let b = &bodies[0];
        assert_eq!((b.r#type, b.ack_message_id), (Some(BType::DeliverAck as i32), Some(sid)));
        assert_eq!(b.from.as_ref().and_then(|f| f.name.as_deref()), Some("bob"));
        assert_eq!(b.to.as_ref().and_then(|f| f.name.as_deref()), Some("alice"));
    }
    // the read ack: bob's read cursor moves (nothing unread), alice hears READ_ACK
    let conv = srv.engine().conversations().direct_conversation(&app.app, "alice", "bob").await.expect("conv");
    assert_eq!(srv.engine().messages().unread_count(&app.app, "bob", Some(&conv)).await.expect("unread"), 1);
    let dl = bob.ack(11, BType::ReadAck, "alice", false, Some(sid)).await;
    assert_eq!(code(&dl.status), 0, "{dl:?}");
    let (_, bodies) = alice.unsolicited().await;
    assert_eq!((bodies[0].r#type, bodies[0].ack_message_id), (Some(BType::ReadAck as i32), Some(sid)));
    assert_eq!(srv.engine().messages().unread_count(&app.app, "bob", Some(&conv)).await.expect("unread"), 0);
    let _ = alice2.unsolicited().await;

    // the conversation ack: CHANNEL_ACK, no id
    let dl = bob.ack(12, BType::ChannelAck, "alice", false, None).await;
    assert_eq!(code(&dl.status), 0, "{dl:?}");
    let (_, bodies) = alice.unsolicited().await;
    assert_eq!((bodies[0].r#type, bodies[0].ack_message_id), (Some(BType::ChannelAck as i32), None));
    let _ = alice2.unsolicited().await;

    // bad acks, in the protocol's form: no id, an unknown message, a message of others
    let dl = bob.ack(13, BType::ReadAck, "alice", false, None).await;
    assert_eq!((code(&dl.status), dl.meta_id), (ErrorCode::MissingParameter as i32, Some(13)));
    let dl = bob.ack(14, BType::DeliverAck, "alice", false, Some(4242)).await;
    assert_eq!((code(&dl.status), dl.status.and_then(|s| s.reason)), (1, Some("Sorry, message does not exist".into())));
    app.users(&["carol"]).await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    let dl = carol.ack(15, BType::ReadAck, "alice", false, Some(sid)).await;
    assert_eq!(code(&dl.status), 1, "not carol's to ack");
    // nothing more reached alice: her next frame is her heartbeat's answer
    assert_eq!(code(&alice.unread().await.status), 0);
    srv.stop().await;
}

#[tokio::test]
async fn msync_recall_by_the_sender_reaches_the_peer_and_other_devices_within_the_window_and_rest_recalls_reach_msync() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "a1").await;
    let mut alice2 = Client::login(&srv, &app, "alice", "a2").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    for c in [&mut alice, &mut alice2, &mut bob] {
        c.unread().await;
    }
    let (ack, _) = alice.text(1, "bob", false, "oops").await;
    let sid = ack.server_id.expect("serverId");
    let _ = alice2.notice().await;
    let _ = bob.notice().await;

    // bob may not recall alice's message (PERMISSION_DENIED to the SDK)
    let dl = bob.ack(2, BType::Recall, "alice", false, Some(sid)).await;
    assert_eq!((code(&dl.status), dl.status.as_ref().and_then(|s| s.reason.as_deref())), (1, Some("blocked")));
    // alice may: answered, bob and alice's other device get the RECALL body
    let dl = alice.ack(3, BType::Recall, "bob", false, Some(sid)).await;
    assert_eq!((code(&dl.status), dl.meta_id), (0, Some(3)), "{dl:?}");
    for (c, queue) in [(&mut bob, "alice"), (&mut alice2, "bob")] {
        let (dl, bodies) = c.unsolicited().await;
        assert_eq!(dl.queue.and_then(|q| q.name).as_deref(), Some(queue));
        assert_eq!((bodies[0].r#type, bodies[0].ack_message_id), (Some(BType::Recall as i32), Some(sid)));
        assert_eq!(bodies[0].from.as_ref().and_then(|f| f.name.as_deref()), Some("alice"));
    }
    let stored = srv.engine().messages().message(&app.app, sid as i64).await.expect("stored");
    assert!(stored.recalled_at.is_some());
    // a recalled message is not pulled any more
    let page = bob.pull(jid(&app_key(&app), "alice", false), None).await;
    assert!(page.metas.is_empty(), "{page:?}");

    // past Easemob's window (2 minutes when the app sets none): refused in the SDK's words
    let (ack, _) = alice.text(4, "bob", false, "old").await;
    let old = ack.server_id.expect("serverId");
    let _ = alice2.notice().await;
    let _ = bob.notice().await;
    srv.advance(Duration::from_secs(121));
    let dl = alice.ack(5, BType::Recall, "bob", false, Some(old)).await;
    assert_eq!(dl.status.and_then(|s| s.reason).as_deref(), Some("exceed recall time limit"));
    // bad recalls: no id, an unknown message
    let dl = alice.ack(6, BType::Recall, "bob", false, None).await;
    assert_eq!(code(&dl.status), ErrorCode::MissingParameter as i32);
    let dl = alice.ack(7, BType::Recall, "bob", false, Some(4242)).await;
    assert_eq!(dl.status.and_then(|s| s.reason).as_deref(), Some("Sorry, message does not exist"));

    // a recall by the app's server (Easemob REST, forced past the window) reaches every device
    let r = app.post("/messages/msg_recall", json!({"msg_id": old.to_string(), "to": "bob", "chat_type": "chat", "force": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for c in [&mut bob, &mut alice, &mut alice2] {
        let (_, bodies) = c.unsolicited().await;
        assert_eq!((bodies[0].r#type, bodies[0].ack_message_id), (Some(BType::Recall as i32), Some(old)));
    }
    srv.stop().await;
}

impl Client {
    /// A chat room join or leave as the SDK sends it (spec §10.1); the answer.
    pub(crate) async fn room(&mut self, local_id: u64, room: &str, op: muc_body::Operation, leave_others: bool) -> CommSyncDl {
        let body = MucBody {
            muc_id: Some(jid(&self.app_key, room, true)),
            operation: Some(op as i32),
            from: Some(Jid { name: Some(self.user.clone()), ..Default::default() }),
            is_chatroom: Some(true),
            leave_other_rooms: leave_others.then_some(true),
            ..Default::default()
        };
        let meta = Meta {
            id: Some(local_id),
            from: Some(jid(&self.app_key, &self.user, false)),
            to: Some(Jid { domain: Some("easemob.com".into()), ..Default::default() }),
            ns: Some(NameSpace::Muc as i32),
            payload: Some(body.encode_to_vec()),
            ..Default::default()
        };
        self.sync(CommSyncUl { meta: Some(meta), ..Default::default() }).await
    }

    /// Send a chat room text; the answer.
    async fn room_text(&mut self, local_id: u64, room: &str, text: &str) -> CommSyncDl {
        let body = MessageBody {
            r#type: Some(BType::Chatroom as i32),
            from: Some(Jid { name: Some(self.user.clone()), ..Default::default() }),
            to: Some(Jid { name: Some(room.into()), ..Default::default() }),
            contents: vec![Content { r#type: Some(CType::Text as i32), text: Some(text.into()), ..Default::default() }],
            ..Default::default()
        };
        let meta = Meta {
            id: Some(local_id),
            to: Some(jid(&self.app_key, room, true)),
            ns: Some(NameSpace::Chat as i32),
            payload: Some(body.encode_to_vec()),
            ext: vec![KeyValue { key: Some("chatroom_msg_tag".into()), r#type: Some(1), varint_value: Some(1), ..Default::default() }],
            ..Default::default()
        };
        self.sync(CommSyncUl { meta: Some(meta), ..Default::default() }).await
    }
}

async fn chatroom(app: &EmApp, owner: &str) -> String {
    let r = app.post("/chatrooms", json!({"name": "lobby", "description": "d", "owner": owner, "maxusers": 3})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn msync_chat_rooms_are_joined_and_left_over_msync_and_carry_room_messages() {
    use muc_body::Operation;
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "erin"]).await;
    let room = chatroom(&app, "alice").await;
    let other = chatroom(&app, "alice").await;
    let conv = srv.engine().conversations().conversation(&app.app, room.parse().expect("id"), None).await.expect("room");
    let mut alice = Client::login(&srv, &app, "alice", "a1").await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.unread().await;
    }
    // bob joins the other room, then this one leaving the others: the answer carries the info
    assert_eq!(code(&bob.room(1, &other, Operation::Join, false).await.status), 0);
    let dl = bob.room(2, &room, Operation::Join, true).await;
    assert_eq!((code(&dl.status), dl.meta_id), (0, Some(2)), "{dl:?}");
    assert_eq!(dl.metas.len(), 1);
    assert_eq!(dl.metas[0].ns, Some(NameSpace::Muc as i32));
    let b = MucBody::decode(dl.metas[0].payload.as_deref().unwrap_or_default()).expect("MUCBody");
    assert_eq!(b.muc_id.and_then(|j| j.name).as_deref(), Some(room.as_str()));
    assert_eq!(b.operation, Some(Operation::Join as i32));
    let st = b.status.expect("status");
    assert_eq!(st.error_code, Some(0));
    let info: serde_json::Value = serde_json::from_str(st.chatroom_info.as_deref().expect("chatroomInfo")).expect("JSON");
    assert_eq!(info["bob"]["member_count"], 2, "the owner and bob: {info}");
    assert_eq!(info["bob"]["is_all_mute"], false);
    assert!(info["bob"]["create_timestamp"].as_i64().unwrap_or(0) > 0);
    let rooms = srv.engine().conversations().rooms_of(&app.app, "bob").await.expect("rooms");
    assert_eq!(rooms, vec![conv.id], "left the other room");
    // alice, the owner, in both rooms, heard him come into the one, leave it and come into the other
    assert_eq!(muc_of(&alice.muc_events().await[0]), (Operation::Presence as i32, other.clone(), "bob".into()));
    assert_eq!(muc_of(&alice.muc_events().await[0]), (Operation::Absence as i32, other.clone(), "bob".into()));
    assert_eq!(muc_of(&alice.muc_events().await[0]), (Operation::Presence as i32, room.clone(), "bob".into()));

    // a room message from carol before she joins: refused; after: bob hears it, unsolicited
    let dl = carol.room_text(3, &room, "early").await;
    assert_eq!(dl.status.and_then(|s| s.reason).as_deref(), Some("not in group or chatroom"));
    assert_eq!(code(&carol.room(4, &room, Operation::Join, false).await.status), 0);
    for c in [&mut alice, &mut bob] {
        assert_eq!(muc_of(&c.muc_events().await[0]), (Operation::Presence as i32, room.clone(), "carol".into()));
    }
    let dl = carol.room_text(5, &room, "hello room").await;
    assert_eq!(code(&dl.status), 0, "{dl:?}");
    let sid = dl.server_id.expect("serverId");
    let (dl, bodies) = bob.unsolicited().await;
    assert_eq!(dl.queue.and_then(|q| q.name).as_deref(), Some(room.as_str()));
    assert_eq!(dl.metas[0].id, Some(sid));
    let from = dl.metas[0].from.clone().expect("from");
    assert_eq!((from.name.as_deref(), from.client_resource.as_deref()), (Some("carol"), Some("c")), "the sending device");
    assert_eq!((bodies[0].r#type, bodies[0].contents[0].text.as_deref()), (Some(BType::Chatroom as i32), Some("hello room")));
    let tag = dl.metas[0].ext.iter().find(|k| k.key.as_deref() == Some("chatroom_msg_tag")).and_then(|k| k.varint_value);
    assert_eq!(tag, Some(1), "normal priority, as sent");

    let (_, bodies) = alice.unsolicited().await;
    assert_eq!(bodies[0].contents[0].text.as_deref(), Some("hello room"), "the owner is in the room too");

    // errors in the SDK's words: no such room, a full room, a bad id, an unknown operation
    let dl = alice.room(6, "424242", Operation::Join, false).await;
    assert!(
        dl.status.as_ref().and_then(|s| s.reason.clone()).is_some_and(|r| r.contains("grpID") && r.contains("does not exist!")),
        "{dl:?}"
    );
    let mut erin = Client::login(&srv, &app, "erin", "e").await;
    let dl = erin.room(8, &room, Operation::Join, false).await;
    assert_eq!(dl.status.and_then(|s| s.reason).as_deref(), Some("group member list is full!"), "alice, bob, carol: full");
    let dl = erin.room(9, "x", Operation::Join, false).await;
    assert_eq!(dl.status.and_then(|s| s.reason).as_deref(), Some("group ID illegal, please check it"));
    let dl = erin.room(10, &room, Operation::Kick, false).await;
    assert_eq!((code(&dl.status), dl.meta_id), (1, Some(10)));
    let bad = Meta { id: Some(11), ns: Some(NameSpace::Muc as i32), payload: Some(vec![0xff]), ..Default::default() };
    let dl = erin.sync(CommSyncUl { meta: Some(bad), ..Default::default() }).await;
    assert_eq!((code(&dl.status), dl.meta_id), (1, Some(11)));

    // carol leaves: answered, and those in the room hear it; her messages are refused; bob no
    // longer hears of her
    let dl = carol.room(12, &room, Operation::Leave, false).await;
    assert_eq!((code(&dl.status), dl.meta_id, dl.metas.len()), (0, Some(12), 0));
    assert_eq!(muc_of(&bob.muc_events().await[0]), (Operation::Absence as i32, room.clone(), "carol".into()));
    assert!(!srv.engine().conversations().in_room(&app.app, &conv, "carol").await.expect("in room"));
    let dl = carol.room_text(13, &room, "gone").await;
    assert_eq!(code(&dl.status), 1);
    // erin joins in carol's place; her connection closes: she is no longer present (the engine's
    // grace, as for LeanCloud)
    assert_eq!(code(&erin.room(14, &room, Operation::Join, false).await.status), 0);
    assert_eq!(muc_of(&bob.muc_events().await[0]), (Operation::Presence as i32, room.clone(), "erin".into()));
    drop(erin);
    eventually(5, || async {
        let present = srv.engine().conversations().room_members(&app.app, &conv, 10).await.expect("members");
        (!present.contains(&"erin".to_string())).then_some(())
    })
    .await;
    // bob, still in, hears nothing more: his next frame is his heartbeat's answer
    assert_eq!(code(&bob.unread().await.status), 0);
    srv.stop().await;
}

impl Client {
    /// The kick that comes next (spec §11.2): an unsolicited STATISTIC meta in the user's own
    /// queue, then the close. Its operation and reason.
    async fn kicked(mut self) -> (i32, Option<String>) {
        let f = self.next().await;
        assert_eq!(f.command, Some(Command::Sync as i32), "{f:?}");
        let dl: CommSyncDl = payload(&f);
        assert_eq!((code(&dl.status), dl.is_last), (0, Some(true)), "{dl:?}");
        assert_eq!(dl.queue.as_ref().and_then(|q| q.name.as_deref()), Some(self.user.as_str()), "the user's own queue");
        assert_eq!(dl.metas.len(), 1);
        assert_eq!(dl.metas[0].ns, Some(NameSpace::Statistic as i32));
        let st = StatisticsBody::decode(dl.metas[0].payload.as_deref().unwrap_or_default()).expect("StatisticsBody");
        assert!(next(&mut self.ws).await.is_none(), "closed after the kick");
        (st.operation.unwrap_or(0), st.reason)
    }
}

#[tokio::test]
async fn msync_kicks_say_why_with_the_statistic_operation_then_close() {
    use statistics_body::Operation;
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;

    // the app's server ends the sessions (REST disconnect): USER_KICKED_BY_OTHER_DEVICE (217)
    let alice = Client::login(&srv, &app, "alice", "a").await;
    let r = app.get("/users/alice/disconnect").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(alice.kicked().await.0, Operation::UserKickedByOtherDevice as i32);

    // a password change: USER_KICKED_BY_CHANGE_PASSWORD (216), on every device
    let bob1 = Client::login(&srv, &app, "bob", "b1").await;
    let bob2 = Client::login(&srv, &app, "bob", "b2").await;
    let r = app.put("/users/bob/password", json!({"newpassword": "n3w"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(bob1.kicked().await.0, Operation::UserKickedByChangePassword as i32);
    assert_eq!(bob2.kicked().await.0, Operation::UserKickedByChangePassword as i32);

    // deactivation and deletion: USER_REMOVED (207)
    let carol = Client::login(&srv, &app, "carol", "c").await;
    let r = app.post("/users/carol/deactivate", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(carol.kicked().await.0, Operation::UserRemoved as i32);
    let dave = Client::login(&srv, &app, "dave", "d").await;
    assert_eq!(app.delete("/users/dave").await.status, 200);
    assert_eq!(dave.kicked().await.0, Operation::UserRemoved as i32);
    eventually(5, || async { (srv.server.as_ref().expect("server").msync.session_count() == 0).then_some(()) }).await;
    srv.stop().await;
}

#[tokio::test]
async fn msync_the_same_resource_logging_in_again_ends_the_older_session_and_other_devices_coexist() {
    use statistics_body::Operation;
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;
    let old = Client::login(&srv, &app, "alice", "webim_web_1").await;
    let mut other = Client::login(&srv, &app, "alice", "webim_web_2").await;
    // the same resource again, with a login extension: the older session hears
    // USER_LOGIN_ANOTHER_DEVICE (206) with it, then closes
    let token = app.user_token("alice").await;
    let mut ws = open(&srv).await;
    let mut p = provision(&app_key(&app), "alice", "webim_web_1", &token);
    let mut prov: Provision = payload(&p);
    prov.reason = Some("from the new tab".into());
    p.payload = Some(prov.encode_to_vec());
    send_frame(&mut ws, p).await;
    let a: Provision = payload(&next(&mut ws).await.expect("answer"));
    assert_eq!(code(&a.status), 0);
    let (op, reason) = old.kicked().await;
    assert_eq!((op, reason.as_deref()), (Operation::UserLoginAnotherDevice as i32, Some("from the new tab")));
    // the other device and the new session go on
    assert_eq!(code(&other.unread().await.status), 0);
    let mut new = Client { ws, app_key: app_key(&app), user: "alice".into() };
    assert_eq!(code(&new.unread().await.status), 0);
    assert_eq!(srv.server.as_ref().expect("server").msync.session_count(), 2);
    srv.stop().await;
}

impl Client {
    /// The next frame, MUC events (spec §10.2): their bodies.
    pub(crate) async fn muc_events(&mut self) -> Vec<MucBody> {
        let f = self.next().await;
        assert_eq!(f.command, Some(Command::Sync as i32), "{f:?}");
        let dl: CommSyncDl = payload(&f);
        assert_eq!((code(&dl.status), dl.is_last), (0, Some(true)), "{dl:?}");
        dl.metas
            .iter()
            .map(|m| {
                assert_eq!(m.ns, Some(NameSpace::Muc as i32), "{m:?}");
                MucBody::decode(m.payload.as_deref().unwrap_or_default()).expect("MUCBody")
            })
            .collect()
    }
}

/// `(operation, mucId, to[0])` of a MUC event.
pub(crate) fn muc_of(b: &MucBody) -> (i32, String, String) {
    let name = |j: Option<&Jid>| j.and_then(|j| j.name.clone()).unwrap_or_default();
    (b.operation.unwrap_or(-1), name(b.muc_id.as_ref()), name(b.to.first()))
}

#[tokio::test]
async fn msync_group_changes_reach_the_members_as_muc_events() {
    use muc_body::Operation as Op;
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    let gid = group(&app, "alice", &["bob", "carol"]).await;
    let mut bob = Client::login(&srv, &app, "bob", "b").await;
    let mut carol = Client::login(&srv, &app, "carol", "c").await;
    let mut dave = Client::login(&srv, &app, "dave", "d").await;
    for c in [&mut bob, &mut carol, &mut dave] {
        c.unread().await;
    }
    // dave is added by the app's server: he hears DIRECT_JOINED, the others PRESENCE
    assert_eq!(app.post(&format!("/chatgroups/{gid}/users/dave"), json!({})).await.status, 200);
    let d = dave.muc_events().await;
    assert_eq!(muc_of(&d[0]), (Op::DirectJoined as i32, gid.clone(), "dave".into()));
    assert_eq!((d[0].is_chatroom, d[0].muc_name.as_deref()), (Some(false), Some("g")));
    for c in [&mut bob, &mut carol] {
        assert_eq!(muc_of(&c.muc_events().await[0]), (Op::Presence as i32, gid.clone(), "dave".into()));
    }
    // carol is removed: she hears KICK, the others ABSENCE
    assert_eq!(app.delete(&format!("/chatgroups/{gid}/users/carol")).await.status, 200);
    assert_eq!(muc_of(&carol.muc_events().await[0]), (Op::Kick as i32, gid.clone(), "carol".into()));
    for c in [&mut bob, &mut dave] {
        assert_eq!(muc_of(&c.muc_events().await[0]), (Op::Absence as i32, gid.clone(), "carol".into()));
    }
    // bob is muted (with when it ends), made an admin; the group is renamed
    let r = app.post(&format!("/chatgroups/{gid}/mute"), json!({"usernames": ["bob"], "mute_duration": 86_400_000})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for c in [&mut bob, &mut dave] {
        let e = c.muc_events().await;
        assert_eq!(muc_of(&e[0]), (Op::AddMute as i32, gid.clone(), "bob".into()));
        let ext: serde_json::Value = serde_json::from_str(e[0].ext.as_deref().expect("ext")).expect("JSON");
        assert!(ext["user_mute_time"].as_i64().unwrap_or(0) > now_ms(), "{ext}");
    }
    assert_eq!(app.post(&format!("/chatgroups/{gid}/admin"), json!({"newadmin": "bob"})).await.status, 200);
    for c in [&mut bob, &mut dave] {
        assert_eq!(muc_of(&c.muc_events().await[0]), (Op::AddAdmin as i32, gid.clone(), "bob".into()));
    }
    assert_eq!(app.put(&format!("/chatgroups/{gid}"), json!({"groupname": "g2"})).await.status, 200);
    for c in [&mut bob, &mut dave] {
        let e = c.muc_events().await;
        assert_eq!(e[0].operation, Some(Op::Update as i32));
        let ext = e[0].event_info.as_ref().and_then(|i| i.ext.clone()).expect("eventInfo.ext");
        assert!(ext.contains("g2"), "{ext}");
    }
    // carol, no longer a member, heard none of it: her next frame is her heartbeat's answer
    assert_eq!(code(&carol.unread().await.status), 0);

    // a chat room's: bob, in the room, is muted there
    let room = chatroom(&app, "alice").await;
    assert_eq!(code(&bob.room(1, &room, muc_body::Operation::Join, false).await.status), 0);
    let r = app.post(&format!("/chatrooms/{room}/mute"), json!({"usernames": ["bob"], "mute_duration": -1})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = bob.muc_events().await;
    assert_eq!(muc_of(&e[0]), (Op::AddMute as i32, room.clone(), "bob".into()));
    assert_eq!(e[0].is_chatroom, Some(true));
    srv.stop().await;
}

/// One frame handled as the web SDK does (spec §6.1): a NOTICE joins the list unless its queue is
/// there by name, and is pulled if alone; a last page with metas pulls the list's first queue
/// again, an empty last page drops its queue and pulls the next. The texts got are kept; the pull
/// to send, if any.
async fn sdk_frame(c: &mut Client, list: &mut Vec<Jid>, texts: &mut Vec<String>) -> Option<CommSyncUl> {
    let pull = |q: &Jid, key| Some(CommSyncUl { queue: Some(q.clone()), key, ..Default::default() });
    let m = c.next().await;
    match Command::try_from(m.command.unwrap_or(0)) {
        Ok(Command::Notice) => {
            let q = payload::<CommNotice>(&m).queue.expect("queue");
            if list.iter().any(|x| x.name == q.name) {
                return None;
            }
            list.push(q);
            if list.len() == 1 {
                pull(&list[0], None)
            } else {
                None
            }
        }
        Ok(Command::Sync) => {
            let dl: CommSyncDl = payload(&m);
            assert_eq!(code(&dl.status), 0, "{dl:?}");
            texts.extend(dl.metas.iter().map(text_of));
            let q = dl.queue.clone().expect("queue");
            if dl.is_last == Some(true) {
                if dl.metas.is_empty() {
                    list.retain(|x| x.name != q.name);
                }
                list.first().and_then(|f| pull(f, None))
            } else {
                dl.next_key.and_then(|k| pull(&q, Some(k)))
            }
        }
        other => panic!("unexpected {other:?}: {m:?}"),
    }
}

#[tokio::test]
async fn msync_a_message_stored_while_its_queue_is_pulled_is_noticed_again_after_the_last_page() {
    // the SDK ignores a NOTICE of a queue it is pulling, and an empty last page then drops the
    // queue: a message stored after the pull read the store, whose NOTICE arrived before the page,
    // would wait for the next NOTICE. The server says NOTICE again after that page. The second
    // message is sent just as the device makes the SDK's second pull; many rounds hit the window.
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let mut phone = Client::login(&srv, &app, "alice", "webim_phone").await;
    let mut bob = Client::login(&srv, &app, "bob", "webim_web_b").await;
    assert!(phone.unread().await.unread.is_empty());
    let (mut list, mut texts) = (vec![], vec![]);
    for i in 0..40u64 {
        let (first, second) = (format!("first {i}"), format!("second {i}"));
        let (ack, _) = bob.text(1000 + 2 * i, "alice", false, &first).await;
        assert_eq!(code(&ack.status), 0, "{ack:?}");
        let mut sent_second = false;
        while !(texts.contains(&second) && list.is_empty()) {
            let Some(ul) = sdk_frame(&mut phone, &mut list, &mut texts).await else { continue };
            if sent_second || !texts.contains(&first) {
                send_frame(&mut phone.ws, cmd(Command::Sync, Some(ul.encode_to_vec()))).await;
                continue;
            }
            // the SDK's second pull: the next message races it (sent just before, or just after)
            sent_second = true;
            let pull = send_frame(&mut phone.ws, cmd(Command::Sync, Some(ul.encode_to_vec())));
            let send = bob.text(1001 + 2 * i, "alice", false, &second);
            let (ack, _) = if i % 2 == 0 { tokio::join!(pull, send).1 } else { tokio::join!(send, pull).0 };
            assert_eq!(code(&ack.status), 0, "{ack:?}");
        }
    }
    let want = (0..40).flat_map(|i| [format!("first {i}"), format!("second {i}")]).collect::<Vec<_>>();
    assert_eq!(texts, want, "every message once, in order");
    srv.stop().await;
}

#[tokio::test]
async fn msync_a_kick_meta_names_the_user_in_from_and_to() {
    // agora-chat 1.4.0 reads `from.name` of every meta it is handed: a STATISTIC meta without
    // `from` throws there, and the kick is never told to the app
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice"]).await;
    let mut alice = Client::login(&srv, &app, "alice", "webim_web_k").await;
    let r = app.get("/users/alice/disconnect").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let f = alice.next().await;
    let dl: CommSyncDl = payload(&f);
    assert_eq!(dl.metas.len(), 1, "{dl:?}");
    let meta = &dl.metas[0];
    assert_eq!(meta.ns, Some(NameSpace::Statistic as i32));
    for jid in [&meta.from, &meta.to] {
        let jid = jid.as_ref().expect("a JID");
        assert_eq!(jid.name.as_deref(), Some("alice"), "{meta:?}");
        assert_eq!(jid.app_key.as_deref(), Some(app_key(&app).as_str()));
    }
    srv.stop().await;
}

#[tokio::test]
async fn msync_a_kick_just_after_login_is_told_before_the_close() {
    // the SDK sends UNREAD as soon as it is logged in; a kick racing that heartbeat's answer is
    // still told (the STATISTIC meta), and the connection then closes with a close frame
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    for i in 0..20 {
        let user = format!("kicked{i}");
        app.users(&[user.as_str()]).await;
        let mut c = Client::login(&srv, &app, &user, "webim_web_race").await;
        send_frame(&mut c.ws, cmd(Command::Unread, None)).await;
        let r = app.get(&format!("/users/{user}/disconnect")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        // the SDK's frames after login (its statistics, the next heartbeat) are still on their
        // way: the server's close must not throw away what it wrote before
        for _ in 0..3 {
            let _ = c.ws.send(Ws::Binary(cmd(Command::Unread, None).encode_to_vec().into())).await;
        }
        let (mut told, mut closed) = (false, false);
        loop {
            let got = tokio::time::timeout(Duration::from_secs(5), c.ws.next()).await.expect("a frame within 5 s");
            match got {
                Some(Ok(Ws::Binary(b))) => {
                    let f = MSync::decode(b.as_ref()).expect("an MSync frame");
                    if f.command == Some(Command::Sync as i32) {
                        let dl: CommSyncDl = payload(&f);
                        told |= dl.metas.iter().any(|m| m.ns == Some(NameSpace::Statistic as i32));
                    }
                }
                Some(Ok(Ws::Close(_))) => {
                    closed = true;
                    break;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => break,
            }
        }
        assert!(told, "round {i}: the kick is told");
        assert!(closed, "round {i}: a close frame ends the connection");
    }
    srv.stop().await;
}
