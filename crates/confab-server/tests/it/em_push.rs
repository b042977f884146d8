//! Easemob's push rules at the push hand-off, over real HTTP with `common::receiver` as the
//! app's push relay (`push.webhook_url`), messages sent through the Easemob face: each
//! recipient's push settings (`NONE`, `AT` with and without a mention, the conversation's
//! setting over the app-wide one, do-not-disturb windows and durations, the legacy
//! `notification_no_disturbing`), `ext.em_ignore_notification`, the payload from a stored
//! template with args, from `em_push_title`/`em_push_content`, from display style 1, from the
//! template the recipient chose, and
//! recipients with different payloads getting one push each for the same message.

use std::time::Duration;

use crate::common::receiver::{Call, Receiver};
use crate::common::*;
use confab_engine::model::Plan;
use reqwest::Method;
use serde_json::{json, Value};

const RELAY: &str = "/push";
const WAIT: Duration = Duration::from_secs(15);
const TEMPLATE: &str = "您有新的消息";

/// An app with users alice, bob and carol (all offline) whose pushes go to a relay.
async fn setup(srv: &TestServer) -> (EmApp, Receiver) {
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob", "carol"]).await;
    let relay = Receiver::start().await;
    srv.engine().apps().set_app_settings(&app.app.name, &[("push.webhook_url", &relay.url(RELAY))]).await.expect("settings");
    (app, relay)
}

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.outbox_first_retry_ms = 100;
        c.outbox_max_retry_secs = 1;
    })
    .await
}

/// Every push made so far is made (or dropped by the rules): the app's outbox is empty.
async fn settle(srv: &TestServer, app: &EmApp) {
    eventually(15, || async {
        let r = srv.engine().app_code().hook_report(&app.app, 1).await.expect("report");
        (r.pending == 0 && r.failed == 0).then_some(())
    })
    .await;
}

/// Send as `from` to one user (`users`) or group (`chatgroups`); the message id.
async fn send(app: &EmApp, kind: &str, from: &str, to: &str, body: Value, ext: Option<Value>) -> String {
    let kind_of = if body.get("msg").is_some() {
        "txt"
    } else if body.get("action").is_some() {
        "cmd"
    } else {
        "img"
    };
    let mut b = json!({"from": from, "to": [to], "type": kind_of, "body": body});
    if let Some(e) = ext {
        b["ext"] = e;
    }
    let r = app.post(&format!("/messages/{kind}"), b).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"][to].as_str().expect("a message id").to_string()
}

async fn text(app: &EmApp, kind: &str, from: &str, to: &str, text: &str, ext: Option<Value>) -> String {
    send(app, kind, from, to, json!({"msg": text}), ext).await
}

async fn setting(app: &EmApp, user: &str, chattype: &str, key: &str, body: Value) {
    let r = app.put(&format!("/users/{user}/notification/{chattype}/{key}"), body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn group(app: &EmApp, owner: &str, members: &[&str]) -> String {
    let r = app.post("/chatgroups", json!({"groupname": "g", "public": true, "owner": owner, "members": members})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["groupid"].as_str().expect("groupid").to_string()
}

/// The pushes the relay got for a message (by its numeric id).
fn pushes_of(relay: &Receiver, msg: &str) -> Vec<Call> {
    relay.calls_to(RELAY).into_iter().filter(|c| c.body["msg"].as_i64().map(|m| m.to_string()).as_deref() == Some(msg)).collect()
}

/// Wait for `n` pushes of the message, then for the outbox to settle: exactly those.
async fn pushed(srv: &TestServer, app: &EmApp, relay: &Receiver, msg: &str, n: usize) -> Vec<Call> {
    if n > 0 {
        eventually(15, || async { (pushes_of(relay, msg).len() >= n).then_some(()) }).await;
    }
    settle(srv, app).await;
    let calls = pushes_of(relay, msg);
    assert_eq!(calls.len(), n, "pushes of {msg}: {:?}", calls.iter().map(|c| &c.body).collect::<Vec<_>>());
    calls
}

fn to(call: &Call) -> Vec<String> {
    sorted_strs(&call.body["to"])
}

/// "HH:MM-HH:MM" from `from` to `to` minutes after the current UTC minute.
fn window(from: i64, to: i64) -> String {
    let now = now_ms().div_euclid(60_000).rem_euclid(1440);
    let hm = |m: i64| {
        let m = (now + m).rem_euclid(1440);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    format!("{}-{}", hm(from), hm(to))
}

#[tokio::test]
async fn none_and_the_conversation_setting_over_the_app_wide_one() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;

    // with nothing set, bob is pushed to, with the app's template
    let m = text(&app, "users", "alice", "bob", "one", None).await;
    let p = pushed(&srv, &app, &relay, &m, 1).await;
    assert_eq!(to(&p[0]), ["bob"]);
    assert_eq!(p[0].body["payload"]["alert"], TEMPLATE);
    assert!(p[0].body.get("_payload").is_none(), "confab's own keys stay home: {}", p[0].body);

    // bob: NONE app-wide → nothing
    setting(&app, "bob", "user", "bob", json!({"type": "NONE"})).await;
    let m = text(&app, "users", "alice", "bob", "two", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;

    // … but ALL for alice's conversation: that one is pushed, carol's is not
    setting(&app, "bob", "user", "alice", json!({"type": "ALL"})).await;
    let m = text(&app, "users", "alice", "bob", "three", None).await;
    pushed(&srv, &app, &relay, &m, 1).await;
    let m = text(&app, "users", "carol", "bob", "four", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;

    // DEFAULT follows the app-wide setting again
    setting(&app, "bob", "user", "alice", json!({"type": "DEFAULT"})).await;
    let m = text(&app, "users", "alice", "bob", "five", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;

    // app-wide ALL, but NONE for a group: the group's messages are not pushed to bob
    setting(&app, "bob", "user", "bob", json!({"type": "ALL"})).await;
    let g = group(&app, "alice", &["bob", "carol"]).await;
    setting(&app, "bob", "chatgroup", &g, json!({"type": "NONE"})).await;
    let m = text(&app, "chatgroups", "alice", &g, "group", None).await;
    let p = pushed(&srv, &app, &relay, &m, 1).await;
    assert_eq!(to(&p[0]), ["carol"]);
    srv.stop().await;
}

#[tokio::test]
async fn at_pushes_only_mentions() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;
    let g = group(&app, "alice", &["bob", "carol"]).await;
    setting(&app, "bob", "chatgroup", &g, json!({"type": "AT"})).await;

    let m = text(&app, "chatgroups", "alice", &g, "no mention", None).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["carol"]);
    let m = text(&app, "chatgroups", "alice", &g, "@carol", Some(json!({"em_at_list": ["carol"]}))).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["carol"]);
    let m = text(&app, "chatgroups", "alice", &g, "@bob", Some(json!({"em_at_list": ["bob"]}))).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["bob", "carol"]);
    let m = text(&app, "chatgroups", "alice", &g, "@all", Some(json!({"em_at_list": "all"}))).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["bob", "carol"]);

    // AT app-wide: a one-to-one message mentions nobody
    setting(&app, "carol", "user", "carol", json!({"type": "AT"})).await;
    let m = text(&app, "users", "alice", "carol", "hi", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn do_not_disturb_windows_durations_and_the_legacy_fields() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;

    // a daily window around now (UTC) → nothing; one later today → pushed
    setting(&app, "bob", "user", "bob", json!({"ignoreInterval": window(-60, 60)})).await;
    let m = text(&app, "users", "alice", "bob", "quiet", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;
    setting(&app, "bob", "user", "bob", json!({"ignoreInterval": window(120, 180)})).await;
    let m = text(&app, "users", "alice", "bob", "loud", None).await;
    pushed(&srv, &app, &relay, &m, 1).await;

    // a one-shot duration, app-wide or for one conversation
    setting(&app, "bob", "user", "bob", json!({"ignoreInterval": "", "ignoreDuration": 3_600_000})).await;
    let m = text(&app, "users", "alice", "bob", "quiet", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;
    setting(&app, "bob", "user", "bob", json!({"ignoreDuration": 0})).await;
    setting(&app, "bob", "user", "alice", json!({"ignoreDuration": 3_600_000})).await;
    let m = text(&app, "users", "alice", "bob", "quiet", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;
    let m = text(&app, "users", "carol", "bob", "loud", None).await;
    pushed(&srv, &app, &relay, &m, 1).await;

    // the legacy do-not-disturb of PUT /users/{u}: all day when on without hours
    let r = app.put("/users/carol", json!({"notification_no_disturbing": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = text(&app, "users", "alice", "carol", "quiet", None).await;
    pushed(&srv, &app, &relay, &m, 0).await;
    let r = app.put("/users/carol", json!({"notification_no_disturbing": false})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = text(&app, "users", "alice", "carol", "loud", None).await;
    pushed(&srv, &app, &relay, &m, 1).await;

    // the SDK's legacy blockGroupMessages, with carol's own token: that group's pushes stop for
    // her, not for the others nor for her other conversations; false lets them through again
    let g = group(&app, "alice", &["bob", "carol"]).await;
    let carol = Em::Token(app.user_token("carol").await);
    let flag = |on: bool| json!({"entities": [{format!("notification_ignore_{g}"): on}]});
    let r = app.call(Method::PUT, "/users/carol?resource=web", carol.clone(), Some(flag(true))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = text(&app, "chatgroups", "alice", &g, "shh", None).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["bob"]);
    let m = text(&app, "users", "alice", "carol", "direct", None).await;
    pushed(&srv, &app, &relay, &m, 1).await;
    let r = app.call(Method::PUT, "/users/carol", carol.clone(), Some(flag(false))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = text(&app, "chatgroups", "alice", &g, "hello again", None).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["bob", "carol"]);
    let r = app.call(Method::PUT, "/users/carol", carol, Some(json!({"entities": [{"notification_ignore_": "yes"}]}))).await;
    assert_eq!(r.status, 400, "a malformed switch is refused: {:?}", r.body);
    srv.stop().await;
}

#[tokio::test]
async fn the_sdks_push_token_is_bound_to_the_user_and_unbound() {
    let srv = server().await;
    let (app, _relay) = setup(&srv).await;
    let bob = Em::Token(app.user_token("bob").await);
    let bind = |device: &str, token: &str| json!({"device_id": device, "device_token": token, "notifier_name": "fcm-app"});
    for (device, token) in [("phone", "t1"), ("tablet", "t2"), ("phone", "t3")] {
        let r = app.call(Method::PUT, "/users/bob", bob.clone(), Some(bind(device, token))).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // the app server reads the devices with the user: one per device, the newest token
    let info = |r: &Resp| r.body["entities"][0]["pushInfo"].clone();
    let r = app.get("/users/bob").await;
    assert_eq!(
        info(&r),
        json!([{"device_id": "tablet", "device_token": "t2", "notifier_name": "fcm-app"}, {"device_id": "phone", "device_token": "t3", "notifier_name": "fcm-app"}])
    );
    // unbindPushToken: an empty token forgets the device
    let r = app.call(Method::PUT, "/users/bob", bob.clone(), Some(bind("phone", ""))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(info(&app.get("/users/bob").await), json!([{"device_id": "tablet", "device_token": "t2", "notifier_name": "fcm-app"}]));
    // bad input: no device, a token without its push service, another user's token
    let r = app.call(Method::PUT, "/users/bob", bob.clone(), Some(json!({"device_token": "x", "notifier_name": "n"}))).await;
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("illegal_argument")), "{:?}", r.body);
    let r = app.call(Method::PUT, "/users/bob", bob, Some(json!({"device_id": "d", "device_token": "x"}))).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let alice = Em::Token(app.user_token("alice").await);
    let r = app.call(Method::PUT, "/users/bob", alice, Some(bind("evil", "t"))).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(info(&app.get("/users/bob").await).as_array().map(Vec::len), Some(1), "nothing changed");
    srv.stop().await;
}

#[tokio::test]
async fn em_ignore_notification_pushes_to_nobody() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;
    let g = group(&app, "alice", &["bob", "carol"]).await;
    let m = text(&app, "chatgroups", "alice", &g, "psst", Some(json!({"em_ignore_notification": true}))).await;
    pushed(&srv, &app, &relay, &m, 0).await;
    let m = text(&app, "chatgroups", "alice", &g, "hello", Some(json!({"em_ignore_notification": false}))).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["bob", "carol"]);
    srv.stop().await;
}

#[tokio::test]
async fn payloads_from_a_template_the_messages_title_and_content_and_display_style() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;
    let r = app.put("/users/alice", json!({"nickname": "Alice A."})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .post(
            "/notification/template",
            json!({"name": "order", "title_pattern": "{0} from {$fromNickname}", "content_pattern": "{0} shipped {1}: {$msg}"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // a stored template, its args and built-ins filled; em_push_ext passed along
    let ext = json!({
        "em_push_template": {"name": "order", "title_args": ["News"], "content_args": ["#42", "today"]},
        "em_push_ext": {"group_user_nickname": "Al"},
    });
    let m = text(&app, "users", "alice", "bob", "on its way", Some(ext)).await;
    let p = pushed(&srv, &app, &relay, &m, 1).await;
    assert_eq!(
        p[0].body["payload"],
        json!({"title": "News from Alice A.", "content": "#42 shipped today: on its way", "em_push_ext": {"group_user_nickname": "Al"}})
    );

    // the message's own title and content
    let ext = json!({"em_push_title": "Ding", "em_push_content": "You have mail"});
    let m = text(&app, "users", "alice", "bob", "secret text", Some(ext)).await;
    assert_eq!(pushed(&srv, &app, &relay, &m, 1).await[0].body["payload"], json!({"title": "Ding", "content": "You have mail"}));

    // display style 1: the sender's push nickname and the message's text, "[image]" for a picture
    let r = app.put("/users/bob", json!({"notification_display_style": 1})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = text(&app, "users", "alice", "bob", "see you at 8", None).await;
    assert_eq!(pushed(&srv, &app, &relay, &m, 1).await[0].body["payload"], json!({"title": "Alice A.", "content": "see you at 8"}));
    let m = send(&app, "users", "carol", "bob", json!({"url": "https://example.com/a.png", "filename": "a.png"}), None).await;
    assert_eq!(pushed(&srv, &app, &relay, &m, 1).await[0].body["payload"], json!({"title": "carol", "content": "[image]"}));

    // display style 0 again: the app's template
    let r = app.put("/users/bob", json!({"notification_display_style": 0})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = text(&app, "users", "alice", "bob", "plain", None).await;
    assert_eq!(pushed(&srv, &app, &relay, &m, 1).await[0].body["payload"]["alert"], TEMPLATE);

    // a template bob chose for his pushes (built-ins only; no args to fill)
    let r = app
        .post("/notification/template", json!({"name": "mine", "title_pattern": "{$fromNickname} says", "content_pattern": "{$msg}"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    app.put("/users/bob/notification/template", json!({"templateName": "nosuch"})).await.em_error(400, "EntityNotFoundException");
    app.put("/users/bob/notification/template", json!({})).await.em_error(400, "illegal_argument");
    app.put("/users/bob/notification/template", json!({"templateName": 7})).await.em_error(400, "illegal_argument");
    app.put("/users/nobody/notification/template", json!({"templateName": "nosuch"})).await.em_error(400, "required_property_not_found");
    let r = app.put("/users/bob/notification/template", json!({"templateName": "mine"})).await;
    assert_eq!(r.body["data"], json!({"templateName": "mine"}), "{:?}", r.body);
    assert_eq!(app.get("/users/bob/notification/template").await.body["data"], json!({"templateName": "mine"}));
    let m = text(&app, "users", "alice", "bob", "yo", None).await;
    assert_eq!(pushed(&srv, &app, &relay, &m, 1).await[0].body["payload"], json!({"title": "Alice A. says", "content": "yo"}));
    // the message's own title and content come before it
    let m = text(&app, "users", "alice", "bob", "yo", Some(json!({"em_push_title": "T"}))).await;
    assert_eq!(pushed(&srv, &app, &relay, &m, 1).await[0].body["payload"], json!({"title": "T", "content": "yo"}));
    let r = app.put("/users/bob/notification/template", json!({"templateName": ""})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = text(&app, "users", "alice", "bob", "plain", None).await;
    assert_eq!(pushed(&srv, &app, &relay, &m, 1).await[0].body["payload"]["alert"], TEMPLATE);
    srv.stop().await;
}

#[tokio::test]
async fn recipients_with_different_payloads_get_one_push_each_for_the_message() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;
    let r = app.put("/users/bob", json!({"notification_display_style": "1"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    app.users(&["dave"]).await;
    let g = group(&app, "alice", &["bob", "carol", "dave"]).await;

    let m = text(&app, "chatgroups", "alice", &g, "lunch?", None).await;
    let mut p = pushed(&srv, &app, &relay, &m, 2).await;
    p.sort_by_key(|c| c.body["to"].as_array().map_or(0, Vec::len));
    assert_eq!(to(&p[0]), ["bob"]);
    assert_eq!(p[0].body["payload"], json!({"title": "alice", "content": "lunch?"}));
    assert_eq!(to(&p[1]), ["carol", "dave"]);
    assert_eq!(p[1].body["payload"]["alert"], TEMPLATE);
    assert_eq!(p[0].body["msgId"], p[1].body["msgId"], "the same message");
    assert_ne!(p[0].body["id"], p[1].body["id"], "two pushes the relay tells apart");
    for c in &p {
        assert_eq!(c.body["kind"], "message");
        assert!(c.body.as_object().unwrap().keys().all(|k| !k.starts_with('_')), "{}", c.body);
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_payload_the_app_chose_is_kept_and_the_recipient_rules_still_apply() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;
    let r = app.put("/users/bob", json!({"notification_display_style": 1})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let lc = srv.lc_of(&app);
    let conv = lc.conversation(json!({"name": "trio", "m": ["alice", "bob", "carol"]})).await;
    let push_data = json!({"alert": "from the app"});
    let r = lc
        .post(&format!("/1.2/rtm/conversations/{conv}/messages"), json!({"from_client": "alice", "message": "hi", "push_data": push_data}))
        .await;
    r.ok();
    let calls = relay.wait_calls(RELAY, 1, WAIT).await;
    settle(&srv, &app).await;
    assert_eq!(relay.calls_to(RELAY).len(), 1);
    assert_eq!(to(&calls[0]), ["bob", "carol"]);
    assert_eq!(calls[0].body["payload"], push_data, "display style 1 does not replace the app's own payload");

    // carol turned pushes off: a LeanCloud message is not pushed to her either
    setting(&app, "carol", "user", "carol", json!({"type": "NONE"})).await;
    let r = lc.post(&format!("/1.2/rtm/conversations/{conv}/messages"), json!({"from_client": "alice", "message": "again"})).await;
    r.ok();
    let calls = relay.wait_calls(RELAY, 2, WAIT).await;
    settle(&srv, &app).await;
    assert_eq!(relay.calls_to(RELAY).len(), 2);
    assert_eq!(to(&calls[1]), ["bob"]);
    assert_eq!(calls[1].body["payload"], json!({"title": "alice", "content": "again"}));
    srv.stop().await;
}

#[tokio::test]
async fn command_messages_are_signals_and_push_to_nobody() {
    let srv = server().await;
    let (app, relay) = setup(&srv).await;
    let m = send(&app, "users", "alice", "bob", json!({"action": "refresh"}), None).await;
    pushed(&srv, &app, &relay, &m, 0).await;
    let m = text(&app, "users", "alice", "bob", "a person reads this", None).await;
    assert_eq!(to(&pushed(&srv, &app, &relay, &m, 1).await[0]), ["bob"]);
    srv.stop().await;
}
