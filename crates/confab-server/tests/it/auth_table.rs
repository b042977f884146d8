//! Every route of every face, read from the face's own route table (`routes()`: method, path and
//! the credential it needs), called over real HTTP with every credential weaker than or foreign to
//! what the table says: none, a bogus one, another app's of the right kind, a user's where the
//! app's is needed, another user's, and each other face's. Each is refused in the face's own
//! format — LeanCloud `{code, error}` with 401/403/400, MaxIM HTTP 200 with a body code, Easemob
//! 401 `{error, …}` — by its auth code, so a 404 (a bad path, or a lookup before the check) fails
//! the walk too; and afterwards nothing in the app has changed.

use crate::common::*;
use confab_engine::entries::{ns, EntryFilter, EntryQuery};
use confab_engine::model::{App, Plan, TokenKind};
use confab_engine::query::{ConvQuery, HistoryQuery, HistoryScope};
use reqwest::Method;
use serde_json::{json, Value};

/// One way of calling: a label, the headers it sends, and (LeanCloud session routes, whose token
/// travels in a header, the query or the body) the session token to put everywhere.
#[derive(Clone, Debug)]
struct Cred {
    label: String,
    headers: Vec<(String, String)>,
    session: Option<String>,
}

fn cred(label: &str, headers: &[(&str, &str)]) -> Cred {
    Cred { label: label.to_string(), headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), session: None }
}

/// The credentials a route must refuse, each with the refusal expected.
type Tries = Vec<(Cred, Refusal)>;

/// Routes to walk: method, concrete path, what each must refuse.
type Walk = Vec<(Method, String, Tries)>;

/// How a face refuses.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// LeanCloud: HTTP status and body code (one of these).
    Lc(u16, &'static [i64]),
    /// MaxIM: HTTP 200 and this body code.
    Mx(i64),
    /// Easemob: HTTP 401 and this `error`.
    Em(&'static str),
}

impl Refusal {
    /// Whether `r` is this refusal, in the face's own format.
    fn matches(&self, r: &Resp) -> bool {
        let b = &r.body;
        match *self {
            Refusal::Lc(status, codes) => r.status == status && codes.iter().any(|c| b["code"] == *c) && b["error"].is_string(),
            Refusal::Mx(code) => r.status == 200 && b["code"] == code && b["message"].is_string() && b["data"].is_null(),
            Refusal::Em(error) => {
                r.status == 401
                    && b["error"] == error
                    && ["exception", "timestamp", "duration", "error_description"].iter().all(|k| b.get(*k).is_some())
            }
        }
    }
}

/// One app as every face sees it, with a user token of each kind for bob (alice is the user
/// paths name; bob is the other user), and the ids paths name: a group and a chat room of
/// alice's with bob in them, a message in the group, a thread on it, a service conversation.
struct Side {
    em: EmApp,
    ids: Vec<(&'static str, String)>,
    app: App,
    alice: i64,
    bob_mx: String,
    bob_em: String,
    bob_lc_session: String,
    bob_lc_realtime: String,
    carol: i64,
    carol_mx: String,
}

impl Side {
    async fn new(srv: &TestServer) -> Side {
        let em = srv.em(Plan::Standard).await;
        let (gid, rid) = crate::em_bad_input::alice_and_bob(&em).await;
        em.users(&["carol"]).await;
        let m = em.post("/messages/chatgroups", json!({"from": "alice", "to": [gid], "type": "txt", "body": {"msg": "x"}})).await;
        let msg = m.body["data"][&gid].as_str().expect("message id").to_string();
        let t = em.post("/thread", json!({"group_id": gid, "msg_id": msg, "owner": "alice", "name": "t"})).await;
        let tid = t.body["data"]["thread_id"].as_str().expect("thread id").to_string();
        let svc = srv.lc_of(&em).post("/1.2/rtm/service-conversations", json!({"name": "news"})).await;
        let svc = svc.ok()["objectId"].as_str().expect("service conversation").to_string();
        // a one-to-one conversation of alice and bob, and a group that approves its members
        em.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "private"}})).await.ok();
        let direct = srv
            .engine()
            .conversations()
            .find_direct_conversation(&em.app, "alice", "bob")
            .await
            .expect("lookup")
            .expect("direct")
            .id
            .to_string();
        let g = em
            .post("/chatgroups", json!({"groupname": "closed", "public": true, "membersonly": true, "owner": "alice", "members": ["bob"]}))
            .await;
        let closed = g.body["data"]["groupid"].as_str().expect("group id").to_string();
        let ids = vec![
            ("group_id", gid),
            ("chatroom_id", rid),
            ("msg_id", msg),
            ("thread_id", tid),
            ("service_id", svc),
            ("direct_id", direct),
            ("closed_group_id", closed),
        ];
        let app = em.app.clone();
        let engine = srv.engine();
        let alice = engine.users().get_user(&app, "alice").await.expect("alice").num;
        let mut tokens = Vec::new();
        for kind in [TokenKind::MaximUser, TokenKind::LcSession, TokenKind::LcRealtime] {
            tokens.push(engine.users().issue_token(&app, Some("bob"), kind, None).await.expect("token").token);
        }
        let [bob_mx, bob_lc_session, bob_lc_realtime] = <[String; 3]>::try_from(tokens).expect("three tokens");
        let carol = engine.users().get_user(&app, "carol").await.expect("carol").num;
        let carol_mx = engine.users().issue_token(&app, Some("carol"), TokenKind::MaximUser, None).await.expect("token").token;
        let bob_em = em.user_token("bob").await;
        Side { app: em.app.clone(), em, ids, alice, bob_mx, bob_em, bob_lc_session, bob_lc_realtime, carol, carol_mx }
    }

    fn mx_admin(&self) -> &str {
        &self.app.keys.maxim.admin_token
    }
    fn mx_id(&self) -> &str {
        &self.app.keys.maxim.app_id
    }
    fn lc_id(&self) -> &str {
        &self.app.keys.leancloud.app_id
    }
    fn id(&self, name: &str) -> &str {
        self.ids.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name}"))
    }
}

/// Everything the app holds, to compare before and after the walk.
async fn snapshot(srv: &TestServer, app: &App) -> String {
    let (engine, store) = (srv.engine(), srv.store());
    let users = store.list_users(app.id, None, 10_000).await.expect("users");
    let q = ConvQuery { limit: 10_000, ..Default::default() };
    let (convs, _) = store.query_conversations(app.id, &q).await.expect("conversations");
    let ids: Vec<i64> = convs.iter().map(|c| c.id).collect();
    let members = store.member_lists(app.id, &ids).await.expect("members");
    let hq = HistoryQuery { scope: HistoryScope::App, older_than: None, newer_than: None, ascending: true, limit: 1000, mtype: None };
    let messages = engine.messages().history(app, &hq).await.expect("history");
    let broadcasts = store.list_broadcasts(app.id, None, 0, 0, 10_000).await.expect("broadcasts");
    let mut entries = Vec::new();
    for n in [
        ns::CONTACTS,
        ns::USER_BLOCKS,
        ns::USER_METADATA,
        ns::GLOBAL_MUTES,
        ns::ROOM_ATTRIBUTES,
        ns::ROOM_SUPER_ADMINS,
        ns::FILES,
        ns::GROUP_FILES,
        ns::PUSH_SETTINGS,
        ns::PUSH_TEMPLATES,
        ns::PUSH_LABELS,
        ns::PUSH_LABEL_USERS,
        ns::PRESENCE_SUBSCRIPTIONS,
        ns::PRESENCE_STATUS,
        ns::REACTIONS,
        ns::CONVERSATION_PINS,
        ns::CONVERSATION_MARKS,
        ns::MESSAGE_PINS,
        ns::CONTACT_REMARKS,
        ns::GROUP_MEMBER_ATTRIBUTES,
        ns::MESSAGE_REPORTS,
    ] {
        let f = EntryFilter { ns: n.to_string(), ..Default::default() };
        entries.push(store.entries(app.id, &EntryQuery::all(f), 0).await.expect("entries"));
    }
    format!("{users:?}\n{convs:?}\n{members:?}\n{messages:?}\n{broadcasts:?}\n{entries:?}")
}

/// A request with exactly these headers (and, for a session credential, its token in the
/// `X-LC-Session` header, the `session_token` query parameter and the body).
async fn call(srv: &TestServer, method: &Method, path: &str, c: &Cred, body: &Value) -> Resp {
    let mut url = format!("{}{path}", srv.base);
    let mut body = body.clone();
    let mut req_headers = c.headers.clone();
    if let Some(t) = &c.session {
        url.push_str(if url.contains('?') { "&" } else { "?" });
        url.push_str(&format!("session_token={}", urlencoding::encode(t)));
        body["session_token"] = json!(t);
        req_headers.push(("X-LC-Session".into(), t.clone()));
    }
    let mut req = srv.http.request(method.clone(), url).header("Content-Type", "application/json").body(body.to_string());
    for (k, v) in req_headers {
        req = req.header(k, v);
    }
    Resp::read(req.send().await.expect("request")).await
}

/// Walks rows: each credential the row's need refuses, with the refusal expected. Returns the
/// misses, one line each.
async fn walk(srv: &TestServer, rows: Walk, body: &Value) -> Vec<String> {
    let mut misses = Vec::new();
    for (method, path, tries) in rows {
        assert!(!path.contains('{'), "{method} {path}: every path parameter has a value");
        assert!(tries.len() >= 2, "{method} {path}: refuses something");
        for (c, refusal) in tries {
            let r = call(srv, &method, &path, &c, body).await;
            if !refusal.matches(&r) {
                misses.push(format!("{method} {path} with {}: expected {refusal:?}, got {} {}", c.label, r.status, r.body));
            }
        }
    }
    misses
}

/// The rows of a table that take less than its strongest credentials (`strong`), as
/// `METHOD path Need`, compared with the list a test pins: a miss when they differ.
fn pinned<N: std::fmt::Debug + PartialEq>(face: &str, routes: &[confab_routes::Route<N>], strong: &[N], pins: &[&str]) -> Option<String> {
    let mut rows: Vec<String> =
        routes.iter().filter(|r| !strong.contains(&r.need)).map(|r| format!("{} {} {:?}", r.method, r.path, r.need)).collect();
    rows.sort();
    let mut pins: Vec<String> = pins.iter().map(|p| p.to_string()).collect();
    pins.sort();
    (rows != pins).then(|| format!("{face}: only these routes may take less than its strongest credentials: {pins:#?}, not {rows:#?}"))
}

// ---------------------------------------------------------------------- MaxIM

/// The MaxIM table's rows, each with the credentials it must refuse.
fn maxim_rows(a: &Side, b: &Side) -> Walk {
    use confab_face_maxim::auth::Need;
    use Refusal::Mx;
    let app = |id: &str, token: &str| vec![("app_id".to_string(), id.to_string()), ("access-token".to_string(), token.to_string())];
    let with = |label: &str, headers: Vec<(String, String)>| Cred { label: label.into(), headers, session: None };
    // no app_id, an unknown one: 40000 on every route
    let no_app = vec![
        (cred("no app_id", &[("access-token", a.mx_admin())]), Mx(40000)),
        (cred("an unknown app_id", &[("app_id", "no-such-app"), ("access-token", a.mx_admin())]), Mx(40000)),
    ];
    let mut token = no_app.clone();
    token.extend([
        (cred("no token", &[("app_id", a.mx_id())]), Mx(10003)),
        (with("a bogus token", app(a.mx_id(), "bogus-token")), Mx(10008)),
        (with("another app's admin token", app(a.mx_id(), b.mx_admin())), Mx(10008)),
        (with("another app's user token", app(a.mx_id(), &b.bob_mx)), Mx(10008)),
        (with("this app's token on another app_id", app(b.mx_id(), &a.bob_mx)), Mx(10008)),
        (with("the LeanCloud master key", app(a.mx_id(), &a.app.keys.leancloud.master_key)), Mx(10008)),
        (with("an Easemob app token", app(a.mx_id(), &a.em.token)), Mx(10008)),
        (with("an Easemob user token", app(a.mx_id(), &a.bob_em)), Mx(10008)),
        (with("a LeanCloud session token", app(a.mx_id(), &a.bob_lc_session)), Mx(10008)),
    ]);
    let mut admin = token.clone();
    admin.push((with("a user token", app(a.mx_id(), &a.bob_mx)), Mx(10010)));
    let mut impersonating = app(a.mx_id(), &a.bob_mx);
    impersonating.push(("user_id".into(), a.alice.to_string()));
    admin.push((with("a user token naming another user", impersonating), Mx(10010)));
    confab_face_maxim::routes()
        .into_iter()
        .map(|r| {
            let tries = match r.need {
                Need::AppId => no_app.clone(),
                Need::Token => token.clone(),
                Need::Admin => admin.clone(),
            };
            (r.method, r.path, tries)
        })
        .collect()
}

// ---------------------------------------------------------------------- LeanCloud

/// The LeanCloud table's rows, each with the credentials it must refuse.
fn leancloud_rows(a: &Side, b: &Side, ids: &[(&str, String)]) -> Walk {
    use confab_face_leancloud::extract::Need;
    use Refusal::Lc;
    const UNAUTHORIZED: Refusal = Lc(401, &[401]);
    let (ak, mk) = (a.app.keys.leancloud.app_key.as_str(), format!("{},master", a.app.keys.leancloud.master_key));
    let ts = now_ms().to_string();
    let signed = |key: &str| format!("{},{ts}", hex::encode(<md5::Md5 as md5::Digest>::digest(format!("{ts}{key}"))));
    let b_mk = format!("{},master", b.app.keys.leancloud.master_key);
    let bearer = format!("Bearer {}", a.em.token);
    let keyless = vec![
        (cred("no credential", &[]), UNAUTHORIZED),
        (cred("X-LC-Id alone", &[("X-LC-Id", a.lc_id())]), UNAUTHORIZED),
        (cred("a bogus key", &[("X-LC-Id", a.lc_id()), ("X-LC-Key", "bogus-key")]), UNAUTHORIZED),
        (cred("a bogus master key", &[("X-LC-Id", a.lc_id()), ("X-LC-Key", "bogus-key,master")]), UNAUTHORIZED),
        (
            cred("a bogus signature", &[("X-LC-Id", a.lc_id()), ("X-LC-Sign", &format!("0123456789abcdef0123456789abcdef,{ts}"))]),
            UNAUTHORIZED,
        ),
        (cred("another app's app key", &[("X-LC-Id", a.lc_id()), ("X-LC-Key", &b.app.keys.leancloud.app_key)]), UNAUTHORIZED),
        (cred("another app's master key", &[("X-LC-Id", a.lc_id()), ("X-LC-Key", &b_mk)]), UNAUTHORIZED),
        (cred("this app's master key under another app's id", &[("X-LC-Id", b.lc_id()), ("X-LC-Key", &mk)]), UNAUTHORIZED),
        (cred("the MaxIM admin token", &[("app_id", a.mx_id()), ("access-token", a.mx_admin())]), UNAUTHORIZED),
        (cred("the MaxIM admin token as the key", &[("X-LC-Id", a.lc_id()), ("X-LC-Key", a.mx_admin())]), UNAUTHORIZED),
        (cred("the Easemob app token", &[("Authorization", &bearer)]), UNAUTHORIZED),
        (cred("the Easemob app token as the key", &[("X-LC-Id", a.lc_id()), ("X-LC-Key", &a.em.token)]), UNAUTHORIZED),
        (cred("a session token alone", &[("X-LC-Id", a.lc_id()), ("X-LC-Session", &a.bob_lc_session)]), UNAUTHORIZED),
    ];
    let app_key = |label: &str, session: Option<&str>| Cred {
        label: label.into(),
        headers: vec![("X-LC-Id".into(), a.lc_id().into()), ("X-LC-Key".into(), ak.into())],
        session: session.map(str::to_string),
    };
    let mut master = keyless.clone();
    master.push((app_key("the app key", None), Lc(403, &[119])));
    master.push((cred("the app key's signature", &[("X-LC-Id", a.lc_id()), ("X-LC-Sign", &signed(ak))]), Lc(403, &[119])));
    master.push((app_key("the app key and a session token", Some(&a.bob_lc_session)), Lc(403, &[119])));
    let mut user_session = keyless.clone();
    let no_user = Lc(400, &[211]);
    user_session.extend([
        (app_key("the app key without a session token", None), Lc(400, &[1, 211])),
        (app_key("a bogus session token", Some("bogus-session")), no_user),
        (app_key("another app's session token", Some(&b.bob_lc_session)), no_user),
        (app_key("a realtime session token", Some(&a.bob_lc_realtime)), no_user),
        (app_key("a MaxIM user token", Some(&a.bob_mx)), no_user),
        (app_key("an Easemob user token", Some(&a.bob_em)), no_user),
    ]);
    let mut im_session = keyless.clone();
    let expired = Lc(401, &[4112]);
    let im = |label: &str, token: &str| {
        let mut c = app_key(label, None);
        c.headers.push(("X-LC-IM-Session-Token".into(), token.into()));
        (c, expired)
    };
    im_session.extend([
        (app_key("the app key without a realtime session token", None), expired),
        im("a bogus realtime session token", "bogus-session"),
        im("another app's realtime session token", &b.bob_lc_realtime),
        im("another client's realtime session token", &a.bob_lc_realtime),
        im("a _User session token", &a.bob_lc_session),
        im("a MaxIM user token", &a.bob_mx),
        im("an Easemob user token", &a.bob_em),
    ]);
    // every request names alice and her conversations (the ImSession routes' `client_id`)
    let conv = ids.iter().find(|(k, _)| *k == "group_id").map(|(_, v)| v.clone()).unwrap_or_default();
    let query = format!("?client_id=alice&conv_id={conv}&where={}", urlencoding::encode(&json!({"cid": conv}).to_string()));
    confab_face_leancloud::routes()
        .into_iter()
        .map(|r| {
            let tries = match r.need {
                Need::AppKey => keyless.clone(),
                Need::Master | Need::MasterOrSignature => master.clone(),
                Need::UserSession => user_session.clone(),
                Need::ImSession => im_session.clone(),
            };
            (r.method, format!("{}{query}", lc_fill(&r.path, ids)), tries)
        })
        .collect()
}

/// A LeanCloud path with its parameters filled: `{id}` is the route's kind of conversation.
fn lc_fill(path: &str, ids: &[(&str, String)]) -> String {
    let id = |k: &str| ids.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str()).unwrap_or("none");
    let conv = if path.contains("/chatrooms/") {
        id("chatroom_id")
    } else if path.contains("/service-conversations/") {
        id("service_id")
    } else {
        id("group_id")
    };
    path.replace("{id}", conv).replace("{mid}", id("msg_id")).replace("{client_id}", "alice")
}

// ---------------------------------------------------------------------- beyond the table

/// What a user token may not reach although the route takes one: the ids in its body. Carol
/// (a MaxIM user token) may not make herself a member of alice and bob's one-to-one
/// conversation, nor of a group that approves its members, and so may not read their history.
async fn beyond_the_table(srv: &TestServer, a: &Side) -> Vec<String> {
    let carol = cred("carol's user token", &[("app_id", a.mx_id()), ("access-token", &a.carol_mx)]);
    let (direct, closed) = (a.id("direct_id"), a.id("closed_group_id"));
    let history = format!("/message/conversation?opposite_id={direct}");
    let members = format!("/group/member_list?group_id={direct}");
    let probes = [
        (Method::POST, "/group/apply", json!({"group_id": direct}), 20012),
        (Method::POST, "/group/invite", json!({"group_id": direct, "user_list": [a.carol]}), 20012),
        (Method::POST, "/group/invite", json!({"group_id": closed, "user_list": [a.carol]}), 20012),
        (Method::GET, history.as_str(), json!({}), 20002),
        (Method::GET, members.as_str(), json!({}), 20002),
    ];
    let mut misses = Vec::new();
    for (method, path, body, code) in probes {
        let r = call(srv, &method, path, &carol, &body).await;
        if !Refusal::Mx(code).matches(&r) {
            misses.push(format!("{method} {path} {body} with {}: expected {code}, got {} {}", carol.label, r.status, r.body));
        }
    }
    misses
}

// ---------------------------------------------------------------------- Easemob

/// The Easemob table's rows, each with the credentials it must refuse. Paths name alice where
/// they name a user; bob's tokens are the other user's.
fn easemob_rows(a: &Side, b: &Side) -> Walk {
    use confab_face_easemob::auth::Need;
    use Refusal::Em;
    let bearer = |label: &str, token: &str| cred(label, &[("Authorization", &format!("Bearer {token}"))]);
    let now = now_ms() / 1000;
    let client_secret = a.app.keys.easemob.client_secret.as_str();
    let (bob_dynamic, forged) = (
        crate::em_users::dynamic_token(&a.em, "bob", now, 600, client_secret),
        crate::em_users::dynamic_token(&a.em, "alice", now, 600, &b.app.keys.easemob.client_secret),
    );
    let bad = Em("auth_bad_access_token");
    let keyless = vec![
        (cred("no token", &[]), Em("unauthorized")),
        (bearer("a bogus token", "bogus-token"), bad),
        (bearer("another app's app token", &b.em.token), bad),
        (bearer("another app's user token", &b.bob_em), bad),
        (bearer("a dynamic token signed with another app's secret", &forged), bad),
        (bearer("the MaxIM admin token", a.mx_admin()), bad),
        (bearer("a MaxIM user token", &a.bob_mx), bad),
        (bearer("the LeanCloud master key", &a.app.keys.leancloud.master_key), bad),
        (bearer("a LeanCloud session token", &a.bob_lc_session), bad),
        (bearer("a LeanCloud realtime session token", &a.bob_lc_realtime), bad),
        (cred("the app token without Bearer", &[("Authorization", &a.em.token)]), Em("unauthorized")),
    ];
    let other_user = |refusal: Refusal| {
        let mut v = keyless.clone();
        v.push((bearer("another user's token", &a.bob_em), refusal));
        v.push((bearer("another user's dynamic token", &bob_dynamic), refusal));
        v
    };
    let registration: Tries = keyless.iter().map(|(c, _)| (c.clone(), Em("unauthorized"))).collect();
    let ids: Vec<(&str, &str)> = a.ids.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (org, app) = (a.app.keys.easemob.org_name.as_str(), a.app.keys.easemob.app_name.as_str());
    confab_face_easemob::routes()
        .into_iter()
        .filter(|r| !matches!(r.need, Need::None | Need::Link))
        .map(|r| {
            let tries = match r.need {
                Need::Token => keyless.clone(),
                Need::App | Need::AppOrUser => other_user(Em("unauthorized")),
                Need::MetadataOwner => other_user(Em("metadata_error")),
                Need::AppUnlessOpen => registration.clone(),
                Need::None | Need::Link => vec![],
            };
            let path = r.path.replace("{org}", org).replace("{app}", app);
            (r.method, crate::em_bad_input::fill(&path, &ids), tries)
        })
        .collect()
}

#[tokio::test]
async fn every_route_refuses_every_credential_its_table_does_not_accept() {
    // the routes a table may leave open or open to users, each for its vendor's reason; opening
    // another one is a change to these lists too
    use confab_face_easemob::auth::Need as Em;
    use confab_face_leancloud::extract::Need as Lc;
    use confab_face_maxim::auth::Need as Mx;
    let mut misses = Vec::new();
    let mx_pins = ["POST /token/id AppId", "POST /token/user AppId", "POST /user/register/v2 AppId"];
    misses.extend(pinned("MaxIM", &confab_face_maxim::routes(), &[Mx::Admin, Mx::Token], &mx_pins));
    let lc_pins = [
        "GET /1.1/classes/_ConversationMemberInfo ImSession",
        "GET /1.1/rtm/notifications ImSession",
        "GET /1.1/users/me UserSession",
        "GET /1.2/rtm/chatrooms/{id}/messages MasterOrSignature",
        "GET /1.2/rtm/clients/sign UserSession",
        "GET /1.2/rtm/clients/{client_id}/unread-count AppKey",
        "GET /1.2/rtm/conversations/{id}/messages MasterOrSignature",
        "GET /1.2/rtm/service-conversations/{id}/messages MasterOrSignature",
        "POST /1.1/login AppKey",
        "POST /1.1/rtm/sign UserSession",
        "POST /1.1/users AppKey",
    ];
    misses.extend(pinned("LeanCloud", &confab_face_leancloud::routes(), &[Lc::Master], &lc_pins));
    let em_pins = [
        // a group's user calls (the SDK's): the engine's group rules decide (em_sdk_social.rs)
        "DELETE /{org}/{app}/chatgroups/{group_id} Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/quit Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/users/{username} Token",
        "GET /{org}/{app}/chatgroups/{group_id} Token",
        "GET /{org}/{app}/chatgroups/{group_id}/users Token",
        "POST /{org}/{app}/chatgroups Token",
        "POST /{org}/{app}/chatgroups/{group_id}/apply Token",
        "POST /{org}/{app}/chatgroups/{group_id}/apply_verify Token",
        "POST /{org}/{app}/chatgroups/{group_id}/invite Token",
        "POST /{org}/{app}/chatgroups/{group_id}/invite_verify Token",
        "POST /{org}/{app}/chatgroups/{group_id}/users Token",
        "POST /{org}/{app}/chatgroups/{group_id}/users/{username} Token",
        // the management calls of groups and chat rooms (the SDK's): the engine's owner/admin/member
        // rules decide (`GroupCall`, em_group_roles.rs)
        "DELETE /{org}/{app}/chatgroups/{group_id}/admin/{username} Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/ban Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/blocks/users/{username} Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/mute/{username} Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/share_files/{file_id} Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/white/users/{username} Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id} Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id}/admin/{username} Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id}/ban Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id}/blocks/users/{username} Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id}/mute/{username} Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id}/share_files/{file_id} Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id}/users/{username} Token",
        "DELETE /{org}/{app}/chatrooms/{chatroom_id}/white/users/{username} Token",
        "GET /{org}/{app}/chatgroups/{group_id}/admin Token",
        "GET /{org}/{app}/chatgroups/{group_id}/announcement Token",
        "GET /{org}/{app}/chatgroups/{group_id}/blocks/users Token",
        "GET /{org}/{app}/chatgroups/{group_id}/mute Token",
        "GET /{org}/{app}/chatgroups/{group_id}/share_files Token",
        "GET /{org}/{app}/chatgroups/{group_id}/share_files/{file_id} Token",
        "GET /{org}/{app}/chatgroups/{group_id}/white/users Token",
        "GET /{org}/{app}/chatgroups/{group_id}/white/users/{username} Token",
        "GET /{org}/{app}/chatrooms Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id} Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/admin Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/announcement Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/blocks/users Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/mute Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/share_files Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/share_files/{file_id} Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/users Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/white/users Token",
        "GET /{org}/{app}/chatrooms/{chatroom_id}/white/users/{username} Token",
        "GET /{org}/{app}/publicchatgroups Token",
        "GET /{org}/{app}/sdk/chatgroups/{group_id}/mute/{username} Token",
        "GET /{org}/{app}/sdk/chatrooms/{chatroom_id}/mute/{username} Token",
        "POST /{org}/{app}/chatgroups/{group_id}/admin Token",
        "POST /{org}/{app}/chatgroups/{group_id}/announcement Token",
        "POST /{org}/{app}/chatgroups/{group_id}/ban Token",
        "POST /{org}/{app}/chatgroups/{group_id}/blocks/users Token",
        "POST /{org}/{app}/chatgroups/{group_id}/blocks/users/{username} Token",
        "POST /{org}/{app}/chatgroups/{group_id}/mute Token",
        "POST /{org}/{app}/chatgroups/{group_id}/share_files Token",
        "POST /{org}/{app}/chatgroups/{group_id}/white/users Token",
        "POST /{org}/{app}/chatgroups/{group_id}/white/users/{username} Token",
        "POST /{org}/{app}/chatrooms Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/admin Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/announcement Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/ban Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/blocks/users Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/blocks/users/{username} Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/mute Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/share_files Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/users Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/users/{username} Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/white/users Token",
        "POST /{org}/{app}/chatrooms/{chatroom_id}/white/users/{username} Token",
        "PUT /{org}/{app}/chatgroups/{group_id} Token",
        "PUT /{org}/{app}/chatrooms/{chatroom_id} Token",
        // the thread, shield, read-list and member-attribute calls the SDK makes with a user's
        // token: the engine's thread and group rules decide (em_client_rest2.rs)
        "POST /{org}/{app}/thread Token",
        "POST /{org}/{app}/thread/message Token",
        "GET /{org}/{app}/thread/{thread_id} Token",
        "PUT /{org}/{app}/thread/{thread_id} Token",
        "DELETE /{org}/{app}/thread/{thread_id} Token",
        "GET /{org}/{app}/thread/{thread_id}/users Token",
        "DELETE /{org}/{app}/thread/{thread_id}/users/{username} Token",
        "GET /{org}/{app}/threads/chatgroups/{group_id} Token",
        "POST /{org}/{app}/chatgroups/{group_id}/shield Token",
        "DELETE /{org}/{app}/chatgroups/{group_id}/shield Token",
        "GET /{org}/{app}/chatgroups/{group_id}/acks/{msg_id} Token",
        "PUT /{org}/{app}/sdk/metadata/chatgroup/{group_id}/user/{username} Token",
        "POST /{org}/{app}/sdk/metadata/chatgroup/{group_id}/get Token",
        "GET /{org}/{app}/chatfiles/{file_id} Link",
        "GET /{org}/{app}/chatmessages/{time}/download Link",
        "POST /{org}/{app}/chatfiles Token",
        "POST /{org}/{app}/messages/chatgroups Token",
        "POST /{org}/{app}/messages/chatrooms Token",
        "POST /{org}/{app}/messages/users Token",
        "POST /{org}/{app}/metadata/chatroom/{chatroom_id} Token",
        "POST /{org}/{app}/metadata/user/get Token",
        "POST /{org}/{app}/token None",
        "POST /{org}/{app}/users AppUnlessOpen",
    ];
    let em_routes = confab_face_easemob::routes();
    misses.extend(pinned("Easemob", &em_routes, &[Em::App, Em::AppOrUser, Em::MetadataOwner], &em_pins));
    // a user's own resource is one the path names
    let unnamed = em_routes.iter().filter(|r| matches!(r.need, Em::AppOrUser | Em::MetadataOwner) && !r.path.contains("{username}"));
    misses.extend(unnamed.map(|r| format!("Easemob: {} {} is for a user's own token, but its path names no user", r.method, r.path)));

    let srv = TestServer::start().await;
    let (a, b) = (Side::new(&srv).await, Side::new(&srv).await);
    let before = snapshot(&srv, &a.app).await;

    let mx_body = json!({
        "list": (0..100).map(|i| json!({"username": format!("walker_{i}"), "password": "p"})).collect::<Vec<_>>(),
        "type": 1, "targets": [a.alice], "content_type": 0, "content": "walk", "from_user_id": a.alice,
        "username": "walker", "password": "p", "name": "walk", "user_list": [a.alice],
    });
    misses.extend(walk(&srv, maxim_rows(&a, &b), &mx_body).await);
    let lc_body = json!({
        "from_client": "alice", "from_peer": "alice", "message": "walk", "client_ids": ["carol"], "client_id": "carol",
        "conv_id": a.ids[4].1, "m": ["alice", "carol"], "name": "walk", "username": "walker", "password": "p",
        "msg_id": a.ids[2].1, "timestamp": now_ms(), "recall": true, "to_clients": ["alice"],
    });
    misses.extend(walk(&srv, leancloud_rows(&a, &b, &a.ids), &lc_body).await);
    let em_body = json!({
        "username": "walker", "password": "p", "from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "walk"},
        "usernames": ["carol"], "targets": ["alice"], "msg_id": a.ids[2].1, "name": "walk", "group_id": a.ids[0].1,
        "owner": "alice", "metaData": {"k": "v"}, "keys": ["k"], "newpassword": "p2", "nickname": "walk",
    });
    misses.extend(walk(&srv, easemob_rows(&a, &b), &em_body).await);
    misses.extend(beyond_the_table(&srv, &a).await);

    let after = snapshot(&srv, &a.app).await;
    misses.extend((before != after).then(|| format!("the app changed:\nbefore {before}\nafter  {after}")));
    assert!(misses.is_empty(), "{} misses:\n{}", misses.len(), misses.join("\n"));
    srv.stop().await;
}

/// What no face's table holds is open by design (`/healthz`; LeanCloud's RTM router, which gives
/// out this server's WebSocket address; the WebSocket upgrades, LeanCloud's and Easemob's msync,
/// whose protocols log in) or
/// unknown: an unrouted path under a face's prefix is that face's 404.
#[tokio::test]
async fn outside_the_tables_only_health_the_rtm_router_and_the_upgrade_are_open_and_the_rest_is_404() {
    let open: Vec<String> = confab_server::routes().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(open, ["GET /healthz", "GET /v1/route", "GET /", "GET /websocket"]);
    let srv = TestServer::start().await;
    let a = Side::new(&srv).await;
    let none = cred("no credential", &[]);
    let r = call(&srv, &Method::GET, "/healthz", &none, &json!({})).await;
    assert_eq!((r.status, &r.body), (200, &json!({"status": "ok"})));
    let k = &a.app.keys.easemob;
    let em = format!("/{}/{}/no/such/route", k.org_name, k.app_name);
    for (path, face) in [("/message/nope", "mx"), ("/group/x/y", "mx"), ("/1.2/rtm/nope", "lc"), ("/1.1/nope/x", "lc"), (em.as_str(), "em")]
    {
        for method in [Method::GET, Method::POST] {
            let r = call(&srv, &method, path, &none, &json!({})).await;
            assert_eq!(r.status, 404, "{method} {path}: {:?}", r.body);
            match face {
                "mx" => assert!(r.body["code"] == 404 && r.body["message"].is_string(), "{path}: {:?}", r.body),
                "lc" => assert!(r.body["code"] == 404 && r.body["error"].is_string(), "{path}: {:?}", r.body),
                _ => assert_eq!(r.body["error"], "service_resource_not_found", "{path}: {:?}", r.body),
            }
        }
    }
    srv.stop().await;
}

/// A ban (Easemob `deactivate`) or a new password (Easemob's password call) ends the user's
/// tokens in every face, not only Easemob's: a MaxIM or LeanCloud token of the same user is the
/// same user's credential.
#[tokio::test]
async fn a_ban_or_a_new_password_ends_the_users_tokens_in_every_face() {
    let srv = TestServer::start().await;
    let a = Side::new(&srv).await;
    let mx = cred("bob's MaxIM token", &[("app_id", a.mx_id()), ("access-token", &a.bob_mx)]);
    let lc = cred(
        "bob's session token",
        &[("X-LC-Id", a.lc_id()), ("X-LC-Key", &a.app.keys.leancloud.app_key), ("X-LC-Session", &a.bob_lc_session)],
    );
    let em = cred("bob's Easemob token", &[("Authorization", &format!("Bearer {}", a.bob_em))]);
    let em_path = format!("/{}/{}/users/bob/contacts/users", a.app.keys.easemob.org_name, a.app.keys.easemob.app_name);
    let probes = [
        (&mx, "/user/profile", Refusal::Mx(10008)),
        (&lc, "/1.1/users/me", Refusal::Lc(400, &[211])),
        (&em, em_path.as_str(), Refusal::Em("auth_bad_access_token")),
    ];
    for (c, path, _) in &probes {
        assert_eq!(call(&srv, &Method::GET, path, c, &json!({})).await.status, 200, "{} works before", c.label);
    }
    a.em.post("/users/bob/deactivate", json!({})).await.ok();
    a.em.post("/users/bob/activate", json!({})).await.ok();
    for (c, path, refusal) in &probes {
        let r = call(&srv, &Method::GET, path, c, &json!({})).await;
        assert!(refusal.matches(&r), "{} after a ban: {} {}", c.label, r.status, r.body);
    }
    // a new password: the same, for tokens issued after the ban
    let engine = srv.engine();
    let fresh = engine.users().issue_token(&a.app, Some("bob"), TokenKind::MaximUser, None).await.expect("token").token;
    let mx = cred("bob's new MaxIM token", &[("app_id", a.mx_id()), ("access-token", &fresh)]);
    assert_eq!(call(&srv, &Method::GET, "/user/profile", &mx, &json!({})).await.body["code"], 200);
    a.em.put("/users/bob/password", json!({"newpassword": "pw-new"})).await.ok();
    let r = call(&srv, &Method::GET, "/user/profile", &mx, &json!({})).await;
    assert!(Refusal::Mx(10008).matches(&r), "after a new password: {}", r.body);
    srv.stop().await;
}
